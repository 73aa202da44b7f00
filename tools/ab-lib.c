/*
 * ab-lib.c - two builds of libonnxrun.so in one process, runs alternating
 * (tools/ab-lib builds and runs it; see there).
 *
 *   ab-lib LIB_A LIB_B MODEL THREADS RUNS SESSIONS
 *
 * Both libraries are dlopen'ed (RTLD_LOCAL | RTLD_DEEPBIND: each calls its
 * own code and keeps its own globals; libgomp, shared, is loaded once).
 * For each of SESSIONS session pairs, a session of MODEL is opened in each
 * build, both run a few times, then RUNS runs of each in the order A B B A
 * A B B A ...: the two see the same phases of a host that changes speed
 * for seconds at a time, and the same process. Prints per pair the
 * medians and B / A, then the median of the pairs' ratios and the range.
 * Inputs: MODEL's test_data_set_0/input_K.pb when MODEL is a case folder
 * holding them, else generated from the declared shapes (symbolic dims 1;
 * floats in [-0.5, 0.5), other types 0), the same bytes for both builds.
 * OpenMP's workers spin as the CLI has them (GOMP_SPINCOUNT for
 * ONR_SPIN_US on this CPU, spin.h) unless the environment sets a policy;
 * libgomp reads it when the first library loads it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gemm/spin.h"
#include "onnxrun.h"

typedef struct lib {
    void *h;
    onr_options *(*options_new)(void);
    void (*options_set_threads)(onr_options *, int);
    void (*options_free)(onr_options *);
    onr_status (*session_open)(const char *, const onr_options *, onr_session **);
    const char *(*session_errmsg)(const onr_session *);
    void (*session_free)(onr_session *);
    int (*input_count)(const onr_session *);
    onr_status (*input_info)(const onr_session *, int, onr_value_info *);
    onr_tensor *(*tensor_new)(onr_dtype, int, const int64_t *);
    void *(*tensor_data)(const onr_tensor *);
    int64_t (*tensor_numel)(const onr_tensor *);
    size_t (*dtype_size)(onr_dtype);
    void (*tensor_free)(onr_tensor *);
    onr_status (*tensor_read_file)(const char *, onr_tensor **, char *, size_t);
    onr_status (*run)(onr_session *, int, const char *const *, const onr_tensor *const *);
} lib;

static void *sym(void *h, const char *path, const char *name)
{
    void *p = dlsym(h, name);
    if (!p) {
        fprintf(stderr, "ab-lib: %s has no %s\n", path, name);
        exit(1);
    }
    return p;
}

static void lib_open(lib *L, const char *path)
{
    L->h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!L->h) {
        fprintf(stderr, "ab-lib: %s\n", dlerror());
        exit(1);
    }
#define S(f, n) *(void **)&L->f = sym(L->h, path, n)
    S(options_new, "onr_options_new");
    S(options_set_threads, "onr_options_set_threads");
    S(options_free, "onr_options_free");
    S(session_open, "onr_session_open");
    S(session_errmsg, "onr_session_errmsg");
    S(session_free, "onr_session_free");
    S(input_count, "onr_session_input_count");
    S(input_info, "onr_session_input_info");
    S(tensor_new, "onr_tensor_new");
    S(tensor_data, "onr_tensor_data");
    S(tensor_numel, "onr_tensor_numel");
    S(dtype_size, "onr_dtype_size");
    S(tensor_free, "onr_tensor_free");
    S(tensor_read_file, "onr_tensor_read_file");
    S(run, "onr_session_run");
#undef S
}

enum { MAX_IN = 64 };

typedef struct side {
    lib *L;
    onr_session *s;
    int n;
    onr_tensor *in[MAX_IN];
} side;

/* The model file and the case folder's input K (NULL when none). */
static void paths(const char *model, char *file, size_t fl, char *dir, size_t dl)
{
    struct stat st;
    if (stat(model, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(file, fl, "%s/model.onnx", model);
        snprintf(dir, dl, "%s/test_data_set_0", model);
    } else {
        snprintf(file, fl, "%s", model);
        const char *sl = strrchr(model, '/');
        int len = sl ? (int)(sl - model) : 1;
        snprintf(dir, dl, "%.*s/test_data_set_0", len, sl ? model : ".");
    }
}

static void side_open(side *S, lib *L, const char *model, int threads)
{
    char file[4096], dir[4096], pb[4200], msg[256];
    paths(model, file, sizeof file, dir, sizeof dir);
    S->L = L;
    onr_options *o = L->options_new();
    L->options_set_threads(o, threads);
    if (L->session_open(file, o, &S->s) != ONR_OK) {
        fprintf(stderr, "ab-lib: %s: %s\n", file, L->session_errmsg(S->s));
        exit(1);
    }
    L->options_free(o);
    S->n = L->input_count(S->s);
    if (S->n > MAX_IN) {
        fprintf(stderr, "ab-lib: more than %d inputs\n", MAX_IN);
        exit(1);
    }
    for (int i = 0; i < S->n; i++) {
        snprintf(pb, sizeof pb, "%s/input_%d.pb", dir, i);
        struct stat st;
        if (stat(pb, &st) == 0) {
            if (L->tensor_read_file(pb, &S->in[i], msg, sizeof msg) != ONR_OK) {
                fprintf(stderr, "ab-lib: %s: %s\n", pb, msg);
                exit(1);
            }
            continue;
        }
        onr_value_info vi;
        L->input_info(S->s, i, &vi);
        int64_t d[16];
        int rank = vi.rank < 0 ? 0 : vi.rank > 16 ? 16 : vi.rank;
        for (int k = 0; k < rank; k++) d[k] = vi.dims[k] < 0 ? 1 : vi.dims[k];
        S->in[i] = L->tensor_new(vi.dtype, rank, d);
        if (!S->in[i]) {
            fprintf(stderr, "ab-lib: input %d: cannot make one of its type\n", i);
            exit(1);
        }
        if (vi.dtype == ONR_FLOAT) {
            float *p = L->tensor_data(S->in[i]);
            int64_t m = L->tensor_numel(S->in[i]);
            for (int64_t q = 0; q < m; q++) p[q] = (float)((q * 7919) % 1000) / 1000.f - 0.5f;
        }
    }
}

static void side_close(side *S)
{
    for (int i = 0; i < S->n; i++) S->L->tensor_free(S->in[i]);
    S->L->session_free(S->s);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static double side_run(side *S)
{
    double t0 = now_ms();
    if (S->L->run(S->s, S->n, NULL, (const onr_tensor *const *)S->in) != ONR_OK) {
        fprintf(stderr, "ab-lib: run: %s\n", S->L->session_errmsg(S->s));
        exit(1);
    }
    return now_ms() - t0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: ab-lib LIB_A LIB_B MODEL THREADS RUNS SESSIONS\n");
        return 2;
    }
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT")) {
        char count[32];
        snprintf(count, sizeof count, "%ld", onr_spin_count_for(ONR_SPIN_US));
        setenv("GOMP_SPINCOUNT", count, 0);
    }
    lib A, B;
    lib_open(&A, argv[1]);
    lib_open(&B, argv[2]);
    const char *model = argv[3];
    int threads = atoi(argv[4]), runs = atoi(argv[5]), sessions = atoi(argv[6]);
    if (threads < 1 || runs < 2 || sessions < 1) {
        fprintf(stderr, "ab-lib: THREADS >= 1, RUNS >= 2, SESSIONS >= 1\n");
        return 2;
    }
    double *ta = malloc(sizeof(double) * (size_t)runs), *tb = malloc(sizeof(double) * (size_t)runs);
    double *ratio = malloc(sizeof(double) * (size_t)sessions);
    if (!ta || !tb || !ratio) return 1;
    printf("%-8s %10s %10s %7s\n", "sessions", "A ms", "B ms", "B / A");
    for (int p = 0; p < sessions; p++) {
        side sa, sb;
        /* which opens first alternates too */
        if (p % 2 == 0) side_open(&sa, &A, model, threads), side_open(&sb, &B, model, threads);
        else side_open(&sb, &B, model, threads), side_open(&sa, &A, model, threads);
        for (int w = 0; w < 3; w++) side_run(&sa), side_run(&sb);
        int na = 0, nb = 0;
        for (int r = 0; r < 2 * runs; r++) {
            if (r % 4 == 1 || r % 4 == 2) tb[nb++] = side_run(&sb);
            else ta[na++] = side_run(&sa);
        }
        double ma = median(ta, na), mb = median(tb, nb);
        ratio[p] = mb / ma;
        printf("pair %-3d %10.3f %10.3f %7.4f\n", p + 1, ma, mb, ratio[p]);
        side_close(&sa);
        side_close(&sb);
    }
    double lo = ratio[0], hi = ratio[0];
    for (int p = 1; p < sessions; p++) {
        if (ratio[p] < lo) lo = ratio[p];
        if (ratio[p] > hi) hi = ratio[p];
    }
    double med = median(ratio, sessions);
    printf("B / A: median %.4f over %d session pairs (range %.4f .. %.4f)\n", med, sessions, lo, hi);
    free(ta), free(tb), free(ratio);
    return 0;
}
