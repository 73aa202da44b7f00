/*
 * spin.h - the GOMP_SPINCOUNT that makes libgomp's idle workers spin about
 * ONR_SPIN_US microseconds on this CPU before they sleep (the header's
 * "Waiting threads"). libgomp's spin loop waits one PAUSE per count, and
 * PAUSE's latency differs several-fold between CPUs: 11 ns on an Intel
 * Xeon with AMX, about 30 ns on AMD Zen 5, so the fixed count of 2000 the
 * CLI used to set spun 22 us on the former instead of 60, and there
 * ResNet-50 at 2 threads ran 5 % slower and MobileNetV2 7 % (33.9 against
 * 35.7 ms, 4.1-4.2 against 4.5-5.2; 11000 gained nothing more). This times
 * the same loop (a relaxed load, a test, PAUSE) and scales the count.
 *
 * Header-only: the library (onr_gomp_spincount, for the CLI) and the
 * Python package's _spin module share it; the package must set the count
 * before the extension that links libgomp is loaded.
 */
#ifndef ONR_GEMM_SPIN_H
#define ONR_GEMM_SPIN_H

#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ONR_SPIN_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define ONR_SPIN_RELAX() __asm__ volatile("yield" ::: "memory")
#else
#define ONR_SPIN_RELAX() __asm__ volatile("" ::: "memory")
#endif

/* Counts outside this range are clamped: a broken clock must not make the
 * workers spin for long, nor never. */
#define ONR_SPIN_COUNT_MIN 200L
#define ONR_SPIN_COUNT_MAX 100000L

/* The count for target_us microseconds: the fastest of a few timings of
 * 1000 iterations (so a preemption during one does not count), about
 * 0.1-0.3 ms in all. */
static inline long onr_spin_count_for(long target_us)
{
    enum { N = 1000, REPS = 7 };
    volatile int flag = 0;
    double best = -1.0;
    for (int r = 0; r < REPS; r++) {
        struct timespec a, b;
        if (clock_gettime(CLOCK_MONOTONIC, &a) != 0) break;
        for (int i = 0; i < N; i++) {
            if (flag) break;
            ONR_SPIN_RELAX();
        }
        if (clock_gettime(CLOCK_MONOTONIC, &b) != 0) break;
        double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
        if (ns > 0 && (best < 0 || ns < best)) best = ns;
    }
    if (best <= 0) return 2000; /* no usable clock: the count the CLI used before */
    double c = (double)target_us * 1000.0 / (best / N);
    return c < ONR_SPIN_COUNT_MIN ? ONR_SPIN_COUNT_MIN
           : c > ONR_SPIN_COUNT_MAX ? ONR_SPIN_COUNT_MAX
                                    : (long)c;
}

#endif
