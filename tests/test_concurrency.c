/*
 * test_concurrency.c - one session run from several threads at once.
 *
 * Each model of testdata/ is opened once; a set of input variants (its data
 * sets, perturbed) is run single-threaded for reference outputs; then 8
 * threads run 50 times each, every run with a variant of its own, through
 * the three per-call paths (onr_session_run_into into the caller's tensors,
 * one onr_run context kept for all runs, a new onr_run per run), and every
 * output must equal the reference bit for bit (same thread count, same
 * kernels). The models cover symbolic shapes that change from run to run
 * (BERT), packed weights shared by the instances (MatMul, LayerNorm, GRU),
 * and control flow (Loop, If). tools/test runs this test under
 * ThreadSanitizer too (tests/tsan.supp).
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "gemm/gemm.h"
#include "kutil.h"
#include "onnxrun.h"
#include "pbw.h"

/* Instances in a session's pool (src/api/session.c, for tests). */
int onr_session_pool_size(const onr_session *s);

#define THREADS 8
#define RUNS 50
#define MAX_VARIANTS 12
#define MAX_IO 8

typedef struct variant {
    int n_in, n_out;
    onr_tensor *in[MAX_IO];
    onr_tensor *ref[MAX_IO];
} variant;

typedef struct model_case {
    onr_session *s;
    int n_var;
    variant v[MAX_VARIANTS];
} model_case;

typedef struct worker {
    model_case *mc;
    int id;
    int failures;
    int runs;
    char msg[512];
} worker;

static const char *source_dir(void)
{
    const char *d = getenv("ONR_SOURCE_DIR");
    return d ? d : ".";
}

/* Threads per run: ONR_CONC_THREADS (tools/test's TSan stage sets 1 and 2). */
static int kernel_threads(void)
{
    const char *e = getenv("ONR_CONC_THREADS");
    int n = e ? atoi(e) : 2;
    return n > 0 ? n : 1;
}

static onr_tensor *clone(const onr_tensor *t)
{
    onr_tensor *c = onr_tensor_new(onr_tensor_dtype(t), onr_tensor_rank(t), onr_tensor_dims(t));
    assert_non_null(c);
    size_t bytes = (size_t)onr_tensor_numel(t) * onr_dtype_size(onr_tensor_dtype(t));
    if (bytes) memcpy(onr_tensor_data(c), onr_tensor_data(t), bytes);
    return c;
}

/* Variant k of an input: floats shifted by a k-dependent pattern, integers
 * rotated by k places (ids stay ids, masks stay masks), others unchanged. */
static onr_tensor *perturb(const onr_tensor *t, int k)
{
    onr_tensor *c = clone(t);
    int64_t n = onr_tensor_numel(c);
    if (!k || n == 0) return c;
    switch (onr_tensor_dtype(c)) {
    case ONR_FLOAT: {
        float *d = onr_tensor_data(c);
        for (int64_t i = 0; i < n; i++) d[i] += 0.05f * (float)((i * 7 + k) % 11 - 5) * (float)k;
        break;
    }
    case ONR_INT64: {
        const int64_t *s = onr_tensor_data(t);
        int64_t *d = onr_tensor_data(c);
        for (int64_t i = 0; i < n; i++) d[i] = s[(i + k) % n];
        break;
    }
    case ONR_INT32: {
        const int32_t *s = onr_tensor_data(t);
        int32_t *d = onr_tensor_data(c);
        for (int64_t i = 0; i < n; i++) d[i] = s[(i + k) % n];
        break;
    }
    default: break;
    }
    return c;
}

static int same_tensor(const onr_tensor *a, const onr_tensor *b, char *msg, size_t len)
{
    if (!a || !b) return snprintf(msg, len, "missing output"), 0;
    if (onr_tensor_dtype(a) != onr_tensor_dtype(b) || onr_tensor_rank(a) != onr_tensor_rank(b))
        return snprintf(msg, len, "type or rank differs"), 0;
    for (int d = 0; d < onr_tensor_rank(a); d++)
        if (onr_tensor_dims(a)[d] != onr_tensor_dims(b)[d])
            return snprintf(msg, len, "dim %d: %lld vs %lld", d, (long long)onr_tensor_dims(a)[d],
                            (long long)onr_tensor_dims(b)[d]),
                   0;
    size_t bytes = (size_t)onr_tensor_numel(a) * onr_dtype_size(onr_tensor_dtype(a));
    if (bytes && memcmp(onr_tensor_data(a), onr_tensor_data(b), bytes) != 0)
        return snprintf(msg, len, "values differ"), 0;
    return 1;
}

static onr_session *open_dir(const char *name, int threads)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/testdata/%s/model.onnx", source_dir(), name);
    onr_options *o = onr_options_new();
    onr_options_set_threads(o, threads);
    onr_session *s = NULL;
    onr_status st = onr_session_open(path, o, &s);
    onr_options_free(o);
    if (st) fail_msg("open %s: %s", path, onr_session_errmsg(s));
    return s;
}

/* Variants from the model's data sets (each perturbed per_set times) and
 * their reference outputs, run one at a time on the shared session. */
static void load_case(model_case *mc, const char *name, int per_set)
{
    memset(mc, 0, sizeof *mc);
    mc->s = open_dir(name, kernel_threads());
    int n_in = onr_session_input_count(mc->s), n_out = onr_session_output_count(mc->s);
    assert_true(n_in <= MAX_IO && n_out <= MAX_IO);
    for (int set = 0; set < 4 && mc->n_var < MAX_VARIANTS; set++) {
        onr_tensor *base[MAX_IO] = {0};
        int ok = 1;
        for (int i = 0; i < n_in && ok; i++) {
            char path[1024], msg[256];
            snprintf(path, sizeof path, "%s/testdata/%s/test_data_set_%d/input_%d.pb",
                     source_dir(), name, set, i);
            ok = onr_tensor_read_file(path, &base[i], msg, sizeof msg) == ONR_OK;
        }
        for (int k = 0; ok && k < per_set && mc->n_var < MAX_VARIANTS; k++) {
            variant *v = &mc->v[mc->n_var++];
            v->n_in = n_in;
            v->n_out = n_out;
            for (int i = 0; i < n_in; i++) v->in[i] = perturb(base[i], k);
            onr_run *r = onr_run_new(mc->s);
            assert_non_null(r);
            if (onr_run_exec(r, n_in, NULL, (const onr_tensor *const *)v->in, 0, NULL, NULL))
                fail_msg("%s reference run: %s", name, onr_run_errmsg(r));
            for (int j = 0; j < n_out; j++) {
                v->ref[j] = onr_run_take_output(r, j);
                assert_non_null(v->ref[j]);
                assert_int_equal(onr_value_kind(v->ref[j]), ONR_VALUE_TENSOR);
            }
            onr_run_free(r);
        }
        for (int i = 0; i < n_in; i++) onr_tensor_free(base[i]);
    }
    assert_true(mc->n_var > 0);
}

static void free_case(model_case *mc)
{
    for (int k = 0; k < mc->n_var; k++) {
        for (int i = 0; i < mc->v[k].n_in; i++) onr_tensor_free(mc->v[k].in[i]);
        for (int j = 0; j < mc->v[k].n_out; j++) onr_tensor_free(mc->v[k].ref[j]);
    }
    onr_session_free(mc->s);
}

static void note_fail(worker *w, int it, int k, const char *what, const char *detail)
{
    if (!w->failures++)
        snprintf(w->msg, sizeof w->msg, "thread %d run %d (variant %d): %s: %s", w->id, it, k,
                 what, detail);
}

/* Mode by thread: 0 run_into the caller's tensors, 1 one onr_run for all
 * runs, 2 a new onr_run per run. No cmocka call here (not thread-safe). */
static void *work(void *arg)
{
    worker *w = arg;
    model_case *mc = w->mc;
    int mode = w->id % 3;
    onr_run *keep = mode == 1 ? onr_run_new(mc->s) : NULL;
    for (int it = 0; it < RUNS; it++) {
        int k = (w->id * 5 + it * 3) % mc->n_var;
        const variant *v = &mc->v[k];
        const onr_tensor *const *in = (const onr_tensor *const *)v->in;
        char why[256];
        w->runs++;
        if (mode == 0) {
            onr_tensor *out[MAX_IO];
            for (int j = 0; j < v->n_out; j++)
                out[j] = onr_tensor_new(onr_tensor_dtype(v->ref[j]), onr_tensor_rank(v->ref[j]),
                                        onr_tensor_dims(v->ref[j]));
            onr_status st = onr_session_run_into(mc->s, v->n_in, NULL, in, v->n_out, NULL, out);
            if (st) note_fail(w, it, k, "run_into", onr_status_name(st));
            for (int j = 0; j < v->n_out && !st; j++)
                if (!same_tensor(out[j], v->ref[j], why, sizeof why)) note_fail(w, it, k, "output", why);
            for (int j = 0; j < v->n_out; j++) onr_tensor_free(out[j]);
        } else {
            onr_run *r = keep ? keep : onr_run_new(mc->s);
            if (!r) {
                note_fail(w, it, k, "onr_run_new", "NULL");
                continue;
            }
            if (onr_run_exec(r, v->n_in, NULL, in, 0, NULL, NULL)) {
                note_fail(w, it, k, "exec", onr_run_errmsg(r));
            } else {
                for (int j = 0; j < v->n_out; j++) {
                    onr_tensor *t = NULL;
                    const onr_tensor *o = mode == 2 ? (t = onr_run_take_output(r, j))
                                                    : onr_run_output(r, j);
                    if (!same_tensor(o, v->ref[j], why, sizeof why)) note_fail(w, it, k, "output", why);
                    onr_tensor_free(t);
                }
            }
            if (!keep) onr_run_free(r);
        }
    }
    onr_run_free(keep);
    return NULL;
}

static void run_threads(model_case *mc, const char *name)
{
    pthread_t th[THREADS];
    worker w[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (worker){.mc = mc, .id = t};
        assert_int_equal(pthread_create(&th[t], NULL, work, &w[t]), 0);
    }
    int failures = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        if (w[t].failures) {
            print_error("%s: %d failures; first: %s\n", name, w[t].failures, w[t].msg);
            failures += w[t].failures;
        }
        assert_int_equal(w[t].runs, RUNS);
    }
    if (failures) fail_msg("%s: %d of %d runs wrong", name, failures, THREADS * RUNS);
    /* one instance per caller running at once, at most (plus the one whose
     * outputs onr_session_output shows, which contexts keep clear of) */
    int pool = onr_session_pool_size(mc->s);
    if (pool < 1 || pool > THREADS + 1) fail_msg("%s: %d plan instances", name, pool);
    print_message("%s: %d plan instances for %d threads\n", name, pool, THREADS);
}

/* Every packed weight, those inside If/Loop bodies included (the control
 * ops' clone hook makes each instance's sub-plans instances of the
 * template's), is shared by the instances: nothing is packed again. */
static void check_model(const char *name, int per_set)
{
    model_case mc;
    load_case(&mc, name, per_set);
    size_t packs = onr_sgemm_pack_count();
    run_threads(&mc, name);
    /* the extra plan instances share the packed weights: nothing packed again */
    assert_int_equal(onr_sgemm_pack_count(), packs);
    /* and the session still runs from one thread as before */
    const variant *v = &mc.v[mc.n_var - 1];
    assert_int_equal(onr_session_run(mc.s, v->n_in, NULL, (const onr_tensor *const *)v->in), ONR_OK);
    char why[256];
    for (int j = 0; j < v->n_out; j++)
        if (!same_tensor(onr_session_output(mc.s, j), v->ref[j], why, sizeof why))
            fail_msg("%s: serial run after the threads: output %d: %s", name, j, why);
    free_case(&mc);
}

/* BERT with symbolic batch and sequence: shapes change from run to run. */
static void test_bert_dynamic(void **state)
{
    (void)state;
    check_model("tiny_bert_dynamic", 4);
}

/* A greedy decoder: a Loop whose body runs a small model. */
static void test_greedy_decoder_loop(void **state)
{
    (void)state;
    check_model("tiny_greedy_decoder_loop", 3);
}

/* An If whose branch depends on the data. */
static void test_data_dependent_if(void **state)
{
    (void)state;
    check_model("tiny_data_dependent_if", 5);
}

/* A GRU: its weights are packed once and consumed. */
static void test_gru(void **state)
{
    (void)state;
    check_model("tiny_gru", 6);
}

/* Two models' sessions at once, each from four threads. */
typedef struct pair_arg {
    model_case *mc;
    const char *name;
} pair_arg;

static void *run_case(void *arg)
{
    pair_arg *p = arg;
    pthread_t th[THREADS / 2];
    worker *w = calloc(THREADS / 2, sizeof *w);
    for (int t = 0; t < THREADS / 2; t++) {
        w[t] = (worker){.mc = p->mc, .id = t};
        pthread_create(&th[t], NULL, work, &w[t]);
    }
    intptr_t failures = 0;
    for (int t = 0; t < THREADS / 2; t++) {
        pthread_join(th[t], NULL);
        failures += w[t].failures;
    }
    free(w);
    return (void *)failures;
}

static void test_two_models_mixed(void **state)
{
    (void)state;
    model_case a, b;
    load_case(&a, "tiny_bert_dynamic", 2);
    load_case(&b, "tiny_greedy_decoder_loop", 2);
    pthread_t ta, tb;
    pair_arg pa = {&a, "bert"}, pb = {&b, "decoder"};
    assert_int_equal(pthread_create(&ta, NULL, run_case, &pa), 0);
    assert_int_equal(pthread_create(&tb, NULL, run_case, &pb), 0);
    void *fa, *fb;
    pthread_join(ta, &fa);
    pthread_join(tb, &fb);
    if (fa || fb) fail_msg("wrong runs: %ld bert, %ld decoder", (long)(intptr_t)fa, (long)(intptr_t)fb);
    free_case(&a);
    free_case(&b);
}

/* ---- cancel ------------------------------------------------------------------
 * A Loop with neither M nor a condition never ends: y = y + x forever. */
#define F32 1
#define BOOL 9
#define I64 7
#define S(...) ((const char *[]){__VA_ARGS__, NULL})

static onr_session *endless_loop(void)
{
    static const int64_t d2[] = {2};
    pbw body = {0}, g = {0}, a = {0};
    pbw_str(&body, 2, "body");
    pbw_value_info(&body, 11, "i", I64, 0, NULL);
    pbw_value_info(&body, 11, "c_in", BOOL, 0, NULL);
    pbw_value_info(&body, 11, "y_in", F32, 1, d2);
    pbw_node(&body, "Add", "add", S("y_in", "x"), S("y_out"), NULL);
    pbw_node(&body, "Identity", "c", S("c_in"), S("c_out"), NULL);
    pbw_value_info(&body, 12, "c_out", BOOL, 0, NULL);
    pbw_value_info(&body, 12, "y_out", F32, 1, d2);
    pbw_value_info(&g, 11, "y0", F32, 1, d2);
    pbw_value_info(&g, 11, "x", F32, 1, d2);
    pbw_attr_graph(&a, "body", &body);
    pbw_node(&g, "Loop", "loop", S("", "", "y0"), S("y"), &a);
    pbw_value_info(&g, 12, "y", F32, 1, d2);
    pbw m = pbw_model(&g, 8, 16);
    onr_options *o = onr_options_new();
    onr_options_set_threads(o, 1);
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(m.b, m.n, o, &s);
    onr_options_free(o);
    free(m.b);
    if (st) fail_msg("open: %s", onr_session_errmsg(s));
    return s;
}

typedef struct endless_arg {
    onr_session *s;
    onr_run *r; /* NULL: onr_session_run */
    onr_status st;
    char msg[256];
} endless_arg;

static void *run_endless(void *arg)
{
    endless_arg *e = arg;
    onr_tensor *y0 = tk_f32(1, (const int64_t[]){2}, (const float[]){1, 2});
    onr_tensor *x = tk_f32(1, (const int64_t[]){2}, (const float[]){0, 0});
    const onr_tensor *in[] = {y0, x};
    e->st = e->r ? onr_run_exec(e->r, 2, NULL, in, 0, NULL, NULL) : onr_session_run(e->s, 2, NULL, in);
    snprintf(e->msg, sizeof e->msg, "%s", e->r ? onr_run_errmsg(e->r) : "");
    onr_tensor_free(y0);
    onr_tensor_free(x);
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* onr_session_cancel stops every run in progress; onr_run_cancel one. */
static void test_cancel_all_and_one(void **state)
{
    (void)state;
    onr_session *s = endless_loop();
    enum { N = 4 };
    endless_arg e[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        e[i] = (endless_arg){.s = s, .r = i ? onr_run_new(s) : NULL};
        assert_int_equal(pthread_create(&th[i], NULL, run_endless, &e[i]), 0);
    }
    sleep_ms(100);
    onr_session_cancel(s);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(e[i].st, ONR_E_RUNTIME);
        if (e[i].r && !strstr(e[i].msg, "cancelled")) fail_msg("run %d: %s", i, e[i].msg);
    }
    /* one context cancelled, the other keeps going until cancelled itself */
    endless_arg one = {.s = s, .r = e[1].r}, other = {.s = s, .r = e[2].r};
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, run_endless, &one), 0);
    assert_int_equal(pthread_create(&t2, NULL, run_endless, &other), 0);
    sleep_ms(100);
    onr_run_cancel(one.r);
    pthread_join(t1, NULL);
    assert_int_equal(one.st, ONR_E_RUNTIME);
    sleep_ms(50);
    onr_run_cancel(other.r);
    pthread_join(t2, NULL);
    assert_int_equal(other.st, ONR_E_RUNTIME);
    for (int i = 1; i < N; i++) onr_run_free(e[i].r);
    onr_session_free(s);
}

/* A context's outputs stay its own while the session runs elsewhere. */
static void test_run_outputs_are_per_context(void **state)
{
    (void)state;
    model_case mc;
    load_case(&mc, "tiny_data_dependent_if", 3);
    onr_run *a = onr_run_new(mc.s), *b = onr_run_new(mc.s);
    const variant *va = &mc.v[0], *vb = &mc.v[mc.n_var - 1];
    assert_int_equal(onr_run_exec(a, va->n_in, NULL, (const onr_tensor *const *)va->in, 0, NULL, NULL), ONR_OK);
    assert_int_equal(onr_run_exec(b, vb->n_in, NULL, (const onr_tensor *const *)vb->in, 0, NULL, NULL), ONR_OK);
    assert_int_equal(onr_session_run(mc.s, vb->n_in, NULL, (const onr_tensor *const *)vb->in), ONR_OK);
    char why[256];
    for (int j = 0; j < va->n_out; j++) {
        if (!same_tensor(onr_run_output(a, j), va->ref[j], why, sizeof why)) fail_msg("a: %s", why);
        if (!same_tensor(onr_run_output(b, j), vb->ref[j], why, sizeof why)) fail_msg("b: %s", why);
        if (!same_tensor(onr_session_output(mc.s, j), vb->ref[j], why, sizeof why))
            fail_msg("session: %s", why);
    }
    /* a failed exec is the context's own: its message, no outputs */
    assert_int_equal(onr_run_exec(a, 0, NULL, NULL, 0, NULL, NULL), ONR_E_INPUT);
    assert_non_null(strstr(onr_run_errmsg(a), "not given"));
    assert_null(onr_run_output(a, 0));
    assert_string_equal(onr_run_errmsg(b), "");
    assert_string_equal(onr_session_errmsg(mc.s), "");
    assert_null(onr_run_new(NULL));
    assert_int_equal(onr_run_exec(NULL, 0, NULL, NULL, 0, NULL, NULL), ONR_E_ARG);
    onr_run_free(a);
    onr_run_free(b);
    free_case(&mc);
}

/* Failing and succeeding runs at once: each gets its own status and
 * message; onr_session_errmsg may be read meanwhile. */
typedef struct mixed_arg {
    model_case *mc;
    int bad;
    int wrong;
} mixed_arg;

static void *mixed_work(void *arg)
{
    mixed_arg *a = arg;
    const variant *v = &a->mc->v[0];
    onr_run *r = onr_run_new(a->mc->s);
    for (int it = 0; it < 30; it++) {
        char why[256];
        /* bad: the last input left out */
        const onr_tensor *const *in = (const onr_tensor *const *)v->in;
        onr_status st = onr_run_exec(r, v->n_in - a->bad, NULL, in, 0, NULL, NULL);
        if (a->bad) {
            a->wrong += st != ONR_E_INPUT || !strstr(onr_run_errmsg(r), "is not given");
        } else {
            a->wrong += st != ONR_OK || *onr_run_errmsg(r);
            for (int j = 0; j < v->n_out && !st; j++)
                a->wrong += !same_tensor(onr_run_output(r, j), v->ref[j], why, sizeof why);
        }
        const char *m = onr_session_errmsg(a->mc->s); /* the last session-level run's */
        a->wrong += m == NULL;
    }
    onr_run_free(r);
    return NULL;
}

static void test_errors_are_per_call(void **state)
{
    (void)state;
    model_case mc;
    load_case(&mc, "tiny_bert_dynamic", 1);
    pthread_t th[4];
    mixed_arg a[4];
    for (int t = 0; t < 4; t++) {
        a[t] = (mixed_arg){.mc = &mc, .bad = t & 1};
        assert_int_equal(pthread_create(&th[t], NULL, mixed_work, &a[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        if (a[t].wrong) fail_msg("thread %d: %d wrong results", t, a[t].wrong);
    }
    free_case(&mc);
}

/* ---- subgraph weights and shared sequences across instances ------------------ */

/* A Loop whose body multiplies the carried y [1,4] by W (a body
 * initializer: MatMul) and by Wo^T (an outer-scope initializer: Gemm,
 * transB): both are packed when the session plans the body, once. */
static float loop_w[16], loop_wo[16];

static onr_session *weights_loop(void)
{
    static const int64_t d14[] = {1, 4}, d44[] = {4, 4};
    for (int i = 0; i < 16; i++) {
        loop_w[i] = (float)((i * 7) % 5) * 0.25f - 0.5f;
        loop_wo[i] = (float)((i * 3) % 7) * 0.125f - 0.25f;
    }
    pbw body = {0}, g = {0}, a = {0}, ga = {0};
    pbw_str(&body, 2, "body");
    pbw_init_f32(&body, "W", 2, d44, loop_w, 16);
    pbw_value_info(&body, 11, "i", I64, 0, NULL);
    pbw_value_info(&body, 11, "c_in", BOOL, 0, NULL);
    pbw_value_info(&body, 11, "y_in", F32, 2, d14);
    pbw_node(&body, "MatMul", "mm", S("y_in", "W"), S("t"), NULL);
    pbw_attr_int(&ga, "transB", 1);
    pbw_node(&body, "Gemm", "gemm", S("t", "Wo"), S("y_out"), &ga);
    pbw_node(&body, "Identity", "c", S("c_in"), S("c_out"), NULL);
    pbw_value_info(&body, 12, "c_out", BOOL, 0, NULL);
    pbw_value_info(&body, 12, "y_out", F32, 2, d14);
    pbw_init_f32(&g, "Wo", 2, d44, loop_wo, 16);
    pbw_value_info(&g, 11, "M", I64, 0, NULL);
    pbw_value_info(&g, 11, "y0", F32, 2, d14);
    pbw_attr_graph(&a, "body", &body);
    pbw_node(&g, "Loop", "loop", S("M", "", "y0"), S("y"), &a);
    pbw_value_info(&g, 12, "y", F32, 2, d14);
    pbw m = pbw_model(&g, 8, 16);
    onr_options *o = onr_options_new();
    onr_options_set_threads(o, kernel_threads());
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(m.b, m.n, o, &s);
    onr_options_free(o);
    free(m.b);
    if (st) fail_msg("open: %s", onr_session_errmsg(s));
    return s;
}

/* y0 = (seed, 1, -1, 0.5) through M iterations, in double. */
static void weights_loop_ref(int64_t m, float seed, double *y)
{
    y[0] = seed, y[1] = 1, y[2] = -1, y[3] = 0.5;
    for (int64_t it = 0; it < m; it++) {
        double t[4] = {0};
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 4; k++) t[j] += y[k] * loop_w[k * 4 + j];
        for (int j = 0; j < 4; j++) {
            y[j] = 0;
            for (int k = 0; k < 4; k++) y[j] += t[k] * loop_wo[j * 4 + k];
        }
    }
}

typedef struct wl_arg {
    onr_session *s;
    int id, wrong;
} wl_arg;

static void *weights_loop_work(void *arg)
{
    static const int64_t d14[] = {1, 4};
    wl_arg *a = arg;
    onr_run *r = onr_run_new(a->s);
    for (int it = 0; it < 20; it++) {
        int64_t m = (a->id + it) % 5;
        float seed = (float)(a->id * 20 + it) * 0.125f;
        onr_tensor *tm = tk_i64(0, NULL, &m), *y0 = tk_f32(2, d14, (const float[]){seed, 1, -1, 0.5f});
        const onr_tensor *in[] = {tm, y0};
        if (onr_run_exec(r, 2, NULL, in, 0, NULL, NULL)) {
            a->wrong++;
        } else {
            double ref[4];
            weights_loop_ref(m, seed, ref);
            const float *y = onr_tensor_data(onr_run_output(r, 0));
            for (int j = 0; j < 4; j++)
                a->wrong += !(fabs(y[j] - ref[j]) <= 1e-4 * (1 + fabs(ref[j])));
        }
        onr_tensor_free(tm), onr_tensor_free(y0);
    }
    onr_run_free(r);
    return NULL;
}

/* Weights inside a Loop body are packed once however many plan instances
 * run the session: each instance's Loop gets an instance of the body's
 * plan (the clone hook), sharing the packed MatMul and Gemm weights. */
static void test_loop_body_weights_packed_once(void **state)
{
    (void)state;
    size_t p0 = onr_sgemm_pack_count();
    onr_session *s = weights_loop();
    size_t p1 = onr_sgemm_pack_count();
    assert_int_equal(p1 - p0, 2); /* MatMul's W and Gemm's Wo, when the body was planned */
    /* four contexts holding four instances at once */
    onr_run *r[4];
    static const int64_t d14[] = {1, 4};
    int64_t m = 3;
    onr_tensor *tm = tk_i64(0, NULL, &m), *y0 = tk_f32(2, d14, (const float[]){2, 1, -1, 0.5f});
    const onr_tensor *in[] = {tm, y0};
    for (int k = 0; k < 4; k++) {
        r[k] = onr_run_new(s);
        if (onr_run_exec(r[k], 2, NULL, in, 0, NULL, NULL)) fail_msg("%s", onr_run_errmsg(r[k]));
    }
    assert_true(onr_session_pool_size(s) >= 4);
    for (int k = 0; k < 4; k++) onr_run_free(r[k]);
    onr_tensor_free(tm), onr_tensor_free(y0);
    /* and threads running at once */
    pthread_t th[THREADS];
    wl_arg a[THREADS];
    for (int t = 0; t < THREADS; t++) {
        a[t] = (wl_arg){.s = s, .id = t};
        assert_int_equal(pthread_create(&th[t], NULL, weights_loop_work, &a[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        if (a[t].wrong) fail_msg("thread %d: %d wrong results", t, a[t].wrong);
    }
    print_message("loop body weights: %d plan instances, %zu packs\n", onr_session_pool_size(s),
                  onr_sgemm_pack_count() - p0);
    assert_int_equal(onr_sgemm_pack_count(), p1);
    onr_session_free(s);
}

/* One sequence given to runs on several threads at once, each appending
 * its own tensor: the sequence has room in its slot block, so exactly one
 * run may claim the next slot in place (a compare-and-swap) and the others
 * copy the slots; every output holds its own tensor, the input stays. */
typedef struct seq_arg {
    onr_session *s;
    const onr_tensor *seq;
    int id, wrong;
    pthread_barrier_t *go;
} seq_arg;

static void *append_work(void *arg)
{
    static const int64_t d2[] = {2};
    seq_arg *a = arg;
    onr_run *r = onr_run_new(a->s);
    onr_tensor *x = tk_f32(1, d2, (const float[]){(float)a->id, (float)-a->id});
    const onr_tensor *in[] = {a->seq, x};
    pthread_barrier_wait(a->go);
    if (onr_run_exec(r, 2, NULL, in, 0, NULL, NULL)) {
        a->wrong++;
    } else {
        const onr_tensor *y = onr_run_output(r, 0);
        a->wrong += onr_value_count(y) != 3;
        for (int64_t k = 0; k < 3 && onr_value_count(y) == 3; k++) {
            const float *v = onr_tensor_data(onr_value_element(y, k));
            float want = k < 2 ? (float)(100 + k) : (float)a->id;
            a->wrong += v[0] != want;
        }
    }
    onr_run_free(r);
    onr_tensor_free(x);
    return NULL;
}

static void test_shared_sequence_appended_at_once(void **state)
{
    (void)state;
    static const int64_t d2[] = {2};
    pbw g = {0};
    pbw_seq_value_info(&g, 11, "seq", F32); /* input 'seq': sequence(tensor(float)) */
    pbw_value_info(&g, 11, "x", F32, 1, d2);
    pbw_node(&g, "SequenceInsert", "ins", S("seq", "x"), S("out"), NULL);
    pbw_value_info(&g, 12, "out", F32, -1, NULL);
    pbw m = pbw_model(&g, 8, 13);
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(m.b, m.n, NULL, &s);
    free(m.b);
    if (st) fail_msg("open: %s", onr_session_errmsg(s));
    for (int round = 0; round < 10; round++) {
        /* a sequence with room to append: the output of an append */
        onr_tensor *e0 = tk_f32(1, d2, (const float[]){100, 0}), *e1 = tk_f32(1, d2, (const float[]){101, 0});
        const onr_tensor *items[] = {e0};
        onr_tensor *one = onr_sequence_new(ONR_FLOAT, 1, items);
        const onr_tensor *in[] = {one, e1};
        if (onr_session_run(s, 2, NULL, in)) fail_msg("%s", onr_session_errmsg(s));
        onr_tensor *two = onr_session_take_output(s, 0);
        assert_int_equal(onr_value_count(two), 2);
        pthread_t th[THREADS];
        seq_arg a[THREADS];
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, THREADS);
        uint64_t c0 = onr_seq_copy_count();
        for (int t = 0; t < THREADS; t++) {
            a[t] = (seq_arg){.s = s, .seq = two, .id = t + 1, .go = &go};
            assert_int_equal(pthread_create(&th[t], NULL, append_work, &a[t]), 0);
        }
        for (int t = 0; t < THREADS; t++) {
            pthread_join(th[t], NULL);
            if (a[t].wrong) fail_msg("round %d thread %d: %d wrong", round, t, a[t].wrong);
        }
        pthread_barrier_destroy(&go);
        /* each run copies its x; one appended in place, the others copied
         * the two slots into a new block */
        assert_int_equal(onr_seq_copy_count() - c0, THREADS + 2 * (THREADS - 1));
        assert_int_equal(onr_value_count(two), 2);
        onr_tensor_free(two), onr_tensor_free(one), onr_tensor_free(e0), onr_tensor_free(e1);
    }
    onr_session_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bert_dynamic),
        cmocka_unit_test(test_greedy_decoder_loop),
        cmocka_unit_test(test_data_dependent_if),
        cmocka_unit_test(test_gru),
        cmocka_unit_test(test_two_models_mixed),
        cmocka_unit_test(test_cancel_all_and_one),
        cmocka_unit_test(test_run_outputs_are_per_context),
        cmocka_unit_test(test_errors_are_per_call),
        cmocka_unit_test(test_loop_body_weights_packed_once),
        cmocka_unit_test(test_shared_sequence_appended_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
