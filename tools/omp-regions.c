/*
 * omp-regions.c - an LD_PRELOAD library (tools/omp-regions builds and
 * loads it) that times every OpenMP parallel region a process opens
 * through GOMP_parallel (libgomp's entry for `#pragma omp parallel`),
 * grouped by the region's outlined function: how many times it ran, its
 * wall time, how long after the call the last thread started (fork), how
 * long after the last thread finished the call returned (join), and the
 * imbalance: the last thread's finish minus the first's, each averaged
 * over the calls. At exit it writes one line per function to
 * $OMP_REGIONS_OUT: the function's offset in its object, its object's
 * path, then the figures; the script names the functions (addr2line).
 * A developer's tool: the timing calls add a few hundred nanoseconds to
 * each region.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*region_fn)(void *);
enum { MAX_THREADS = 64, MAX_FNS = 1024 };

typedef struct call {
    region_fn fn;
    void *data;
    double start[MAX_THREADS], done[MAX_THREADS];
} call;

static struct {
    region_fn fn;
    long calls;
    double wall, fork, join, imbalance;
} g_fns[MAX_FNS];
static int g_nfns;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void timed(void *p)
{
    call *c = p;
    int id = omp_get_thread_num();
    if (id < MAX_THREADS) c->start[id] = now();
    c->fn(c->data);
    if (id < MAX_THREADS) c->done[id] = now();
}

static void report(void)
{
    const char *path = getenv("OMP_REGIONS_OUT");
    FILE *f = fopen(path ? path : "omp-regions.txt", "w");
    if (!f) return;
    for (int i = 0; i < g_nfns; i++) {
        Dl_info di;
        const char *obj = "?";
        unsigned long off = (unsigned long)g_fns[i].fn;
        if (dladdr((void *)g_fns[i].fn, &di) && di.dli_fname) {
            obj = di.dli_fname;
            off -= (unsigned long)di.dli_fbase;
        }
        double n = (double)g_fns[i].calls;
        fprintf(f, "%#lx %s %ld %.3f %.3f %.3f %.3f\n", off, obj, g_fns[i].calls,
                g_fns[i].wall / n * 1e6, g_fns[i].fork / n * 1e6, g_fns[i].join / n * 1e6,
                g_fns[i].imbalance / n * 1e6);
    }
    fclose(f);
}

void GOMP_parallel(region_fn fn, void *data, unsigned num_threads, unsigned flags)
{
    /* (looked up by each thread that gets here first: the same pointer) */
    static void (*real)(region_fn, void *, unsigned, unsigned);
    if (!real) real = (void (*)(region_fn, void *, unsigned, unsigned))dlsym(RTLD_NEXT, "GOMP_parallel");
    if (!real) abort(); /* not linked with libgomp: nothing to time */
    static int registered;
    if (!__atomic_exchange_n(&registered, 1, __ATOMIC_SEQ_CST)) atexit(report);
    call *c = calloc(1, sizeof *c);
    if (!c) {
        real(fn, data, num_threads, flags);
        return;
    }
    c->fn = fn;
    c->data = data;
    double t0 = now();
    real(timed, c, num_threads, flags);
    double t1 = now(), first = 0, last = 0, started = t0;
    for (int i = 0; i < MAX_THREADS; i++) {
        if (c->done[i] == 0) continue;
        if (first == 0 || c->done[i] < first) first = c->done[i];
        if (c->done[i] > last) last = c->done[i];
        if (c->start[i] > started) started = c->start[i];
    }
    free(c);
    pthread_mutex_lock(&g_lock);
    int k = 0;
    while (k < g_nfns && g_fns[k].fn != fn) k++;
    if (k == g_nfns && g_nfns < MAX_FNS) g_fns[g_nfns++].fn = fn;
    if (k < MAX_FNS) {
        g_fns[k].calls++;
        g_fns[k].wall += t1 - t0;
        g_fns[k].fork += started - t0;
        g_fns[k].join += last > 0 ? t1 - last : 0;
        g_fns[k].imbalance += last - first;
    }
    pthread_mutex_unlock(&g_lock);
}
