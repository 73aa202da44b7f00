/*
 * fma-peak.c - the machine's fp32 FMA peak, the probe tools/bench runs
 * before the benchmark (the peak at each thread count) and before and after
 * each model (a busy machine shows as a lower 1-thread figure).
 *
 *   fma-peak [--iters N] [--reps R] [--mem MIB] THREADS...
 *
 * Prints one JSON line: {"isa":"avx512"|"avx2","gflops":{"1":G,...},
 * "median":{"1":G,...}}: per thread count the best and the median over R
 * timings (default 9) of N iterations (default 4e6, a few ms) of the
 * register-only loop, with the faster of AVX-512 and AVX2 where the CPU has
 * both (the higher best on the first thread count; the two are timed
 * interleaved there). The best is the peak; on a busy machine the median
 * falls below it.
 * With --mem, also "mem_gbs":{"best":B,"median":M}: one thread reading a
 * buffer of MIB MiB (larger than the caches: from memory), R timings. A
 * host whose memory other machines load slows memory-bound kernels by half
 * while the FMA loop, all in registers, runs at its peak (session 15:
 * ResNet-18 at 2 threads 8.2 or 12.2 ms, the FMA probe at 99 % in both);
 * this read falls with them (38 against 30 GB/s).
 * Built by tools/bench with `cc -O2 -fopenmp`; needs nothing else.
 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fma-peak.h"

/* v[0 .. n) in ascending order (n <= 256: an insertion sort). */
static void sort_up(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double x = v[j];
            v[j] = v[j - 1];
            v[j - 1] = x;
        }
}

static double median_sorted(const double *v, int n)
{
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One thread reading mib MiB, reps times: the best and median GB/s. */
static int mem_read(long mib, int reps, double *best, double *med)
{
    size_t n = (size_t)mib << 18; /* floats: a multiple of 32 */
    float *a = aligned_alloc(64, n * sizeof *a);
    if (!a) return 1;
    for (size_t i = 0; i < n; i++) a[i] = 1.0f;
    double v[256];
    for (int r = 0; r < reps; r++) {
        double t0 = fma_now();
        fma_sink += fma_stream_sum(a, n) * 0;
        double dt = fma_now() - t0;
        v[r] = (double)(n * sizeof *a) / (dt > 0 ? dt : 1e-9) / 1e9;
    }
    sort_up(v, reps);
    *best = v[reps - 1];
    *med = median_sorted(v, reps);
    free(a);
    return 0;
}

int main(int argc, char **argv)
{
    long iters = 4000000L, mem_mib = 0;
    int reps = 9, n = 0, threads[64];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
            iters = atol(argv[++i]);
        } else if (strcmp(argv[i], "--mem") == 0 && i + 1 < argc) {
            mem_mib = atol(argv[++i]);
            if (mem_mib < 1 || mem_mib > 4096) {
                fprintf(stderr, "fma-peak: --mem wants 1-4096 MiB\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else {
            int t = atoi(argv[i]);
            if (t < 1 || t > 4096 || n == 64) {
                fprintf(stderr, "fma-peak: bad thread count '%s'\n", argv[i]);
                return 2;
            }
            threads[n++] = t;
        }
    }
    if (iters < 1 || reps < 1) {
        fprintf(stderr, "fma-peak: --iters and --reps must be positive\n");
        return 2;
    }
    if (n == 0) threads[n++] = 1;
    if (reps > 256) reps = 256;
    __builtin_cpu_init();
    int has512 = __builtin_cpu_supports("avx512f"), has2 = __builtin_cpu_supports("avx2") &&
                                                          __builtin_cpu_supports("fma");
    if (!has512 && !has2) {
        fprintf(stderr, "fma-peak: the CPU has neither AVX-512F nor AVX2+FMA\n");
        return 1;
    }
    /* per thread count: R timings of each loop, interleaved; the loop is the
     * one with the higher best on the first thread count */
    int use512 = has512;
    double best[64], med[64], v[2][256];
    for (int k = 0; k < n; k++) {
        for (int r = 0; r < reps; r++)
            for (int w = 0; w < 2; w++) {
                int is512 = w == 0;
                v[w][r] = (is512 ? has512 : has2) && (k == 0 || is512 == use512)
                              ? fma_peak(is512, threads[k], iters, 1)
                              : 0;
            }
        for (int w = 0; w < 2; w++) sort_up(v[w], reps);
        if (k == 0) use512 = v[0][reps - 1] >= v[1][reps - 1];
        const double *u = v[use512 ? 0 : 1];
        best[k] = u[reps - 1];
        med[k] = median_sorted(u, reps);
    }
    printf("{\"isa\":\"%s\",\"gflops\":{", use512 ? "avx512" : "avx2");
    for (int k = 0; k < n; k++) printf("%s\"%d\":%.2f", k ? "," : "", threads[k], best[k]);
    printf("},\"median\":{");
    for (int k = 0; k < n; k++) printf("%s\"%d\":%.2f", k ? "," : "", threads[k], med[k]);
    printf("}");
    if (mem_mib) {
        double best_gbs, med_gbs;
        if (mem_read(mem_mib, reps, &best_gbs, &med_gbs)) {
            fprintf(stderr, "fma-peak: no memory for %ld MiB\n", mem_mib);
            return 1;
        }
        printf(",\"mem_gbs\":{\"best\":%.2f,\"median\":%.2f}", best_gbs, med_gbs);
    }
    printf("}\n");
    return 0;
}
