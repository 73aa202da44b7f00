/*
 * gemm-bench.c - onnx-run's SGEMM against OpenBLAS and oneDNN on this
 * machine, relative to this machine's own measured limits.
 *
 * At start it measures the FMA peak (register-only FMA loops, AVX-512 and
 * AVX2, 1 and 2 threads; the best is "peak") and a streaming-read
 * bandwidth. Then, per shape and thread count, it times onnx-run (B
 * prepacked; batched shapes through onr_sgemm_batch), OpenBLAS
 * (cblas_sgemm) and oneDNN (dnnl_sgemm) interleaved round-robin in the same
 * process, and reports medians. OpenBLAS is also run in a child process
 * with OPENBLAS_CORETYPE=Haswell and the better of the two is reported.
 *
 *   gemm-bench [--json] [--reps N] [--threads LIST] [--shape MxNxK[xB]]
 *              [--no-haswell]
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fma-peak.h"
#include "gemm/gemm.h"

extern void openblas_set_num_threads(int);
extern char *openblas_get_corename(void);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n)
{
    qsort(v, n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- machine limits ---------------------------------------------------- */

#define FMA_ITERS 20000000L

/* GFLOP/s of the register-only FMA loop on `threads` threads (best of 5). */
static double measure_peak(int avx512, int threads) { return fma_peak(avx512, threads, FMA_ITERS, 5); }

static volatile double g_sink;

/* GB/s of a plain streaming read of a buffer far larger than the caches. */
static double measure_bandwidth(int threads)
{
    size_t n = (size_t)256 << 20; /* 1 GiB of floats */
    float *p = aligned_alloc(64, n * sizeof(float));
    if (!p) return 0;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++) p[i] = 1.0f;
    double best = 0;
    for (int rep = 0; rep < 4; rep++) {
        double t0 = now();
#pragma omp parallel num_threads(threads)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            size_t chunk = n / nt / 32 * 32;
            g_sink += fma_stream_sum(p + (size_t)t * chunk, chunk) * 0;
        }
        double gbs = n * sizeof(float) / (now() - t0) * 1e-9;
        if (gbs > best) best = gbs;
    }
    free(p);
    return best;
}

/* ---- the shapes -------------------------------------------------------- */

typedef struct shape {
    size_t m, n, k, batch;
} shape;

/* the last slot: a --shape not in the list */
static shape g_shapes[] = {
    {128, 768, 768, 1},  {128, 2304, 768, 1}, {128, 3072, 768, 1}, {128, 768, 3072, 1},
    {128, 128, 64, 12},  {128, 64, 128, 12},  {197, 768, 768, 1},  {197, 3072, 768, 1},
    {3136, 64, 576, 1},  {3136, 256, 64, 1},  {784, 128, 1152, 1}, {196, 256, 2304, 1},
    {49, 512, 4608, 1},  {64, 50257, 768, 1}, {1, 768, 768, 1},    {1, 3072, 768, 1},
    {1, 50257, 768, 1},  {0, 0, 0, 0},
};

enum { LIB_ONR, LIB_OPENBLAS, LIB_ONEDNN, LIB_COUNT };

typedef struct bufs {
    const shape *s;
    float *a, *b, *c;
    void *packed, *ws;
} bufs;

static void call_lib(int lib, const bufs *B, int threads)
{
    const shape *s = B->s;
    size_t m = s->m, n = s->n, k = s->k;
    if (lib == LIB_ONR) {
        if (s->batch == 1)
            onr_sgemm_packed(0, m, n, k, 1.f, B->a, k, B->packed, 0.f, B->c, n, NULL, B->ws,
                             threads);
        else
            onr_sgemm_batch(0, 0, m, n, k, 1.f, B->a, k, m * k, B->b, n, k * n, 0.f, B->c, n,
                            m * n, s->batch, NULL, B->ws, threads);
        return;
    }
    for (size_t p = 0; p < s->batch; p++) {
        const float *a = B->a + p * m * k, *b = B->b + p * k * n;
        float *c = B->c + p * m * n;
        if (lib == LIB_OPENBLAS)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.f, a,
                        (int)k, b, (int)n, 0.f, c, (int)n);
        else
            dnnl_sgemm('N', 'N', (dnnl_dim_t)m, (dnnl_dim_t)n, (dnnl_dim_t)k, 1.f, a,
                       (dnnl_dim_t)k, b, (dnnl_dim_t)n, 0.f, c, (dnnl_dim_t)n);
    }
}

static void set_threads(int lib, int threads)
{
    if (lib == LIB_OPENBLAS) openblas_set_num_threads(threads);
    if (lib == LIB_ONEDNN) omp_set_num_threads(threads);
}

/* Median seconds per call of each library in libs, timed round-robin. */
static void time_shape(const shape *s, int threads, int reps, const int *libs, int nlibs,
                       double *secs)
{
    size_t m = s->m, n = s->n, k = s->k, bt = s->batch;
    bufs B = {s, 0, 0, 0, 0, 0};
    B.a = aligned_alloc(64, (m * k * bt * 4 + 63) / 64 * 64);
    B.b = aligned_alloc(64, (k * n * bt * 4 + 63) / 64 * 64);
    B.c = aligned_alloc(64, (m * n * bt * 4 + 63) / 64 * 64);
    for (size_t i = 0; i < m * k * bt; i++) B.a[i] = (float)((i * 7 % 13) - 6) * 0.1f;
    for (size_t i = 0; i < k * n * bt; i++) B.b[i] = (float)((i * 5 % 11) - 5) * 0.1f;
    memset(B.c, 0, m * n * bt * 4);
    B.packed = aligned_alloc(64, (onr_sgemm_pack_b_size(k, n) + 63) / 64 * 64);
    onr_sgemm_pack_b(0, k, n, B.b, n, B.packed);
    size_t wsz = bt > 1 ? onr_sgemm_batch_workspace_size(m, n, k, bt, threads)
                        : onr_sgemm_workspace_size(m, n, k, threads);
    B.ws = aligned_alloc(64, (wsz + 64) / 64 * 64);

    int calls[LIB_COUNT];
    for (int l = 0; l < nlibs; l++) { /* warm up and size one sample to ~15 ms */
        set_threads(libs[l], threads);
        call_lib(libs[l], &B, threads);
        double t0 = now();
        call_lib(libs[l], &B, threads);
        double dt = now() - t0;
        calls[l] = dt >= 0.015 ? 1 : (int)(0.015 / (dt > 1e-7 ? dt : 1e-7)) + 1;
    }
    double *samples = malloc(sizeof(double) * reps * LIB_COUNT);
    for (int r = 0; r < reps; r++)
        for (int q = 0; q < nlibs; q++) {
            int l = (q + r) % nlibs; /* rotate who goes first */
            /* let the previous library's spinning workers go to sleep so
             * they do not steal the cores this one's threads need */
            if (threads > 1 && nlibs > 1) usleep(20000);
            set_threads(libs[l], threads);
            double t0 = now();
            for (int c = 0; c < calls[l]; c++) call_lib(libs[l], &B, threads);
            samples[l * reps + r] = (now() - t0) / calls[l];
        }
    for (int l = 0; l < nlibs; l++) secs[l] = median(samples + l * reps, reps);
    free(samples);
    free(B.a);
    free(B.b);
    free(B.c);
    free(B.packed);
    free(B.ws);
}

static double gflops(const shape *s, double sec)
{
    return 2.0 * s->m * s->n * s->k * s->batch / sec * 1e-9;
}

/* ---- driver ------------------------------------------------------------ */

typedef struct opts {
    int json, reps, haswell, nthr, threads[4];
    shape only;
} opts;

/* OpenBLAS with OPENBLAS_CORETYPE=Haswell, from a child process (the core
 * type is fixed when the library loads). Fills gf[shape][thread idx]. */
static void run_haswell_child(const opts *o, double gf[][4])
{
    char self[512], cmd[1024], args[256] = "";
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return;
    self[len] = 0;
    size_t pos = 0;
    for (int t = 0; t < o->nthr; t++)
        pos += snprintf(args + pos, sizeof args - pos, "%s%d", t ? "," : "", o->threads[t]);
    snprintf(cmd, sizeof cmd, "OPENBLAS_CORETYPE=Haswell '%s' --openblas-only --reps %d --threads %s",
             self, o->reps, args);
    if (o->only.m) {
        size_t p2 = strlen(cmd);
        snprintf(cmd + p2, sizeof cmd - p2, " --shape %zux%zux%zux%zu", o->only.m, o->only.n,
                 o->only.k, o->only.batch);
    }
    FILE *f = popen(cmd, "r");
    if (!f) return;
    size_t si, ti;
    double v;
    while (fscanf(f, "%zu %zu %lf", &si, &ti, &v) == 3)
        if (si < sizeof g_shapes / sizeof *g_shapes && ti < 4) gf[si][ti] = v;
    pclose(f);
}

static int parse_args(int argc, char **argv, opts *o, int *openblas_only)
{
    memset(o, 0, sizeof *o);
    o->reps = 11;
    o->haswell = 1;
    o->nthr = 2;
    o->threads[0] = 1;
    o->threads[1] = 2;
    *openblas_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) o->json = 1;
        else if (!strcmp(argv[i], "--no-haswell")) o->haswell = 0;
        else if (!strcmp(argv[i], "--openblas-only")) *openblas_only = 1;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) o->reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            o->nthr = 0;
            for (char *t = strtok(argv[++i], ","); t && o->nthr < 4; t = strtok(NULL, ","))
                o->threads[o->nthr++] = atoi(t);
        } else if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            o->only.batch = 1;
            if (sscanf(argv[++i], "%zux%zux%zux%zu", &o->only.m, &o->only.n, &o->only.k,
                       &o->only.batch) < 3)
                return -1;
        } else return -1;
    }
    if (o->reps < 1) o->reps = 1;
    return 0;
}

/* Put a --shape the list lacks in its last slot. */
static void add_custom_shape(const opts *o)
{
    const size_t n = sizeof g_shapes / sizeof *g_shapes;
    if (!o->only.m) return;
    for (size_t i = 0; i + 1 < n; i++)
        if (g_shapes[i].m == o->only.m && g_shapes[i].n == o->only.n &&
            g_shapes[i].k == o->only.k && g_shapes[i].batch == o->only.batch)
            return;
    g_shapes[n - 1] = o->only;
}

static int shape_selected(const opts *o, const shape *s)
{
    if (!s->m) return 0; /* the empty custom slot */
    return !o->only.m || (s->m == o->only.m && s->n == o->only.n && s->k == o->only.k &&
                          s->batch == o->only.batch);
}

int main(int argc, char **argv)
{
    opts o;
    int openblas_only;
    if (parse_args(argc, argv, &o, &openblas_only) != 0) {
        fprintf(stderr, "usage: gemm-bench [--json] [--reps N] [--threads 1,2] "
                        "[--shape MxNxK[xBATCH]] [--no-haswell]\n");
        return 2;
    }
    /* OpenBLAS workers spin 2^28 cycles after each call by default; with
     * round-robin timing they would steal cores from the next library.
     * 2^22 cycles (~1.5 ms) keeps back-to-back calls hot. Read at load
     * time, hence the re-exec. */
    if (!getenv("OPENBLAS_THREAD_TIMEOUT")) {
        setenv("OPENBLAS_THREAD_TIMEOUT", "22", 1);
        execv("/proc/self/exe", argv);
    }
    add_custom_shape(&o);
    const size_t nshapes = sizeof g_shapes / sizeof *g_shapes;
    if (openblas_only) {
        int lib = LIB_OPENBLAS;
        for (size_t s = 0; s < nshapes; s++) {
            if (!shape_selected(&o, &g_shapes[s])) continue;
            for (int t = 0; t < o.nthr; t++) {
                double sec;
                time_shape(&g_shapes[s], o.threads[t], o.reps, &lib, 1, &sec);
                printf("%zu %d %.3f\n", s, t, gflops(&g_shapes[s], sec));
                fflush(stdout);
            }
        }
        return 0;
    }

    static double hsw[sizeof g_shapes / sizeof *g_shapes][4];
    if (o.haswell) run_haswell_child(&o, hsw);

    double peak[4], bw[4];
    int has512 = __builtin_cpu_supports("avx512f");
    for (int t = 0; t < o.nthr; t++) {
        double p2 = measure_peak(0, o.threads[t]);
        double p5 = has512 ? measure_peak(1, o.threads[t]) : 0;
        peak[t] = p2 > p5 ? p2 : p5;
        bw[t] = measure_bandwidth(o.threads[t]);
        if (!o.json)
            printf("threads %d: FMA peak %.1f GFLOP/s (AVX2 %.1f, AVX-512 %.1f), stream read %.1f GB/s\n",
                   o.threads[t], peak[t], p2, p5, bw[t]);
    }
    onr_sgemm_blocking bl;
    onr_sgemm_get_blocking(&bl);
    if (!o.json) {
        printf("onnx-run kernel %s (MRxNR %zux%zu, MC %zu KC %zu NC %zu; L1d %zu KiB, L2 %zu KiB)\n",
               onr_sgemm_kernel_name(), bl.mr, bl.nr, bl.mc, bl.kc, bl.nc, bl.l1d_bytes >> 10,
               bl.l2_bytes >> 10);
        printf("OpenBLAS core %s (default) %s; oneDNN %d.%d; %d reps, medians\n\n",
               openblas_get_corename(), o.haswell ? "and Haswell (child process), best shown" : "",
               dnnl_version()->major, dnnl_version()->minor, o.reps);
        printf("| shape MxNxK (batch) | thr | onnx-run GF/s | %%peak | OpenBLAS GF/s | %%peak | "
               "oneDNN GF/s | %%peak | onnx-run / best lib | GEMV GB/s (%% of stream) |\n");
        printf("|---|---|---|---|---|---|---|---|---|---|\n");
    }
    for (size_t si = 0; si < nshapes; si++) {
        const shape *s = &g_shapes[si];
        if (!shape_selected(&o, s)) continue;
        for (int t = 0; t < o.nthr; t++) {
            int libs[LIB_COUNT] = {LIB_ONR, LIB_OPENBLAS, LIB_ONEDNN};
            double sec[LIB_COUNT], gf[LIB_COUNT];
            time_shape(s, o.threads[t], o.reps, libs, LIB_COUNT, sec);
            for (int l = 0; l < LIB_COUNT; l++) gf[l] = gflops(s, sec[l]);
            double ob_default = gf[LIB_OPENBLAS];
            if (hsw[si][t] > gf[LIB_OPENBLAS]) gf[LIB_OPENBLAS] = hsw[si][t];
            double best_lib = gf[1] > gf[2] ? gf[1] : gf[2];
            if (o.json) {
                printf("{\"m\":%zu,\"n\":%zu,\"k\":%zu,\"batch\":%zu,\"threads\":%d,"
                       "\"peak_gflops\":%.2f,\"onnxrun_gflops\":%.2f,\"openblas_gflops\":%.2f,"
                       "\"onednn_gflops\":%.2f,\"openblas_default_gflops\":%.2f,"
                       "\"openblas_haswell_gflops\":%.2f,\"stream_gbs\":%.2f}\n",
                       s->m, s->n, s->k, s->batch, o.threads[t], peak[t], gf[0], gf[1], gf[2],
                       ob_default, hsw[si][t], bw[t]);
            } else {
                char shp[64], gemv[48] = "";
                snprintf(shp, sizeof shp, "%zux%zux%zu%s", s->m, s->n, s->k,
                         s->batch > 1 ? " (x12)" : "");
                if (s->batch > 1) snprintf(shp, sizeof shp, "%zux%zux%zu (x%zu)", s->m, s->n, s->k, s->batch);
                if (s->m == 1) {
                    double gbs = (double)s->k * s->n * 4 / sec[0] * 1e-9;
                    snprintf(gemv, sizeof gemv, "%.1f (%.0f%%)", gbs, 100 * gbs / bw[t]);
                }
                printf("| %s | %d | %.1f | %.0f%% | %.1f | %.0f%% | %.1f | %.0f%% | %.2f | %s |\n",
                       shp, o.threads[t], gf[0], 100 * gf[0] / peak[t], gf[1],
                       100 * gf[1] / peak[t], gf[2], 100 * gf[2] / peak[t], gf[0] / best_lib,
                       gemv);
            }
            fflush(stdout);
        }
    }
    return 0;
}
