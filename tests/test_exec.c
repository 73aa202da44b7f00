/*
 * test_exec.c - the executor and the memory plan: runs after the first at
 * a given shape allocate nothing, with static shapes the first one neither
 * (counted by wrapping the allocator of the statically linked library), steps whose input shapes did not change are
 * not reshaped, symbolic lengths reuse the layout of shapes seen before,
 * weights are packed only at create, graph outputs are handed out without
 * a copy, and the arena is smaller than one buffer per activation. Then
 * onr_par_for: every index once, serially where it should be, and at 2
 * threads with one thread's share slow, items taken by the other.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemm/gemm.h"
#include "kutil.h"
#include "load/load.h"
#include "pbw.h"
#include "plan/plan.h"

/* ---- allocation counter (the test links with -Wl,--wrap=...) ------------ */

#include "alloccount.h"

#define F32 1
#define I64 7

static float W[8 * 16], B[16];

static void init_weights(void)
{
    for (int i = 0; i < 8 * 16; i++) W[i] = (float)((i * 7) % 11 - 5) * 0.125f;
    for (int i = 0; i < 16; i++) B[i] = (float)(i % 3) - 1.0f;
}

/* x [2,8] -> MatMul W[8,16] -> Add B -> Relu -> Softmax -> Reshape [4,8]
 * -> Transpose -> y [8,4]; every shape static. */
static pbw static_model(void)
{
    init_weights();
    pbw g = {0}, a = {0};
    int64_t dx[] = {2, 8}, dw[] = {8, 16}, db[] = {16}, ds[] = {2}, shp[] = {4, 8}, dy[] = {8, 4};
    pbw_init_f32(&g, "W", 2, dw, W, 128);
    pbw_init_f32(&g, "B", 1, db, B, 16);
    pbw_init_i64(&g, "shp", 1, ds, shp, 2);
    pbw_value_info(&g, 11, "x", F32, 2, dx);
    pbw_node(&g, "MatMul", "mm", (const char *[]){"x", "W", NULL}, (const char *[]){"h", NULL}, NULL);
    pbw_node(&g, "Add", "add", (const char *[]){"h", "B", NULL}, (const char *[]){"hb", NULL}, NULL);
    pbw_node(&g, "Relu", "relu", (const char *[]){"hb", NULL}, (const char *[]){"r", NULL}, NULL);
    pbw_node(&g, "Softmax", "sm", (const char *[]){"r", NULL}, (const char *[]){"p", NULL}, NULL);
    pbw_node(&g, "Reshape", "rs", (const char *[]){"p", "shp", NULL}, (const char *[]){"q", NULL},
             NULL);
    pbw_attr_ints(&a, "perm", (const int64_t[]){1, 0}, 2);
    pbw_node(&g, "Transpose", "tr", (const char *[]){"q", NULL}, (const char *[]){"y", NULL}, &a);
    pbw_value_info(&g, 12, "y", F32, 2, dy);
    return pbw_model(&g, 8, 13);
}

/* x [1,S,8] -> MatMul W -> Add B -> Relu -> Reshape to [S,16] through
 * Shape -> Gather(1) -> Unsqueeze -> Concat(.., [16]) -> Softmax -> y [S,16]. */
static pbw symbolic_model(void)
{
    init_weights();
    pbw g = {0}, a = {0};
    int64_t dx[] = {1, -1, 8}, dw[] = {8, 16}, db[] = {16}, d1[] = {1};
    int64_t one = 1, zero = 0, sixteen = 16;
    pbw_init_f32(&g, "W", 2, dw, W, 128);
    pbw_init_f32(&g, "B", 1, db, B, 16);
    pbw_init_i64(&g, "idx1", 0, NULL, &one, 1);
    pbw_init_i64(&g, "axes0", 1, d1, &zero, 1);
    pbw_init_i64(&g, "c16", 1, d1, &sixteen, 1);
    pbw_value_info(&g, 11, "x", F32, 3, dx);
    pbw_node(&g, "MatMul", "mm", (const char *[]){"x", "W", NULL}, (const char *[]){"h", NULL}, NULL);
    pbw_node(&g, "Add", "add", (const char *[]){"h", "B", NULL}, (const char *[]){"hb", NULL}, NULL);
    pbw_node(&g, "Relu", "relu", (const char *[]){"hb", NULL}, (const char *[]){"r", NULL}, NULL);
    pbw_node(&g, "Shape", "shape", (const char *[]){"r", NULL}, (const char *[]){"sh", NULL}, NULL);
    pbw_node(&g, "Gather", "gather", (const char *[]){"sh", "idx1", NULL},
             (const char *[]){"s", NULL}, NULL);
    pbw_node(&g, "Unsqueeze", "unsq", (const char *[]){"s", "axes0", NULL},
             (const char *[]){"s1", NULL}, NULL);
    pbw_attr_int(&a, "axis", 0);
    pbw_node(&g, "Concat", "cat", (const char *[]){"s1", "c16", NULL},
             (const char *[]){"newshape", NULL}, &a);
    pbw_node(&g, "Reshape", "rs", (const char *[]){"r", "newshape", NULL},
             (const char *[]){"q", NULL}, NULL);
    pbw_node(&g, "Softmax", "sm", (const char *[]){"q", NULL}, (const char *[]){"y", NULL}, NULL);
    pbw_value_info(&g, 12, "y", F32, -1, NULL);
    return pbw_model(&g, 8, 13);
}

/* Plain-C reference: rows of x [rows,8] -> softmax(relu(x W + B)) [rows,16]. */
static void reference(const float *x, int64_t rows, float *y)
{
    for (int64_t r = 0; r < rows; r++) {
        float h[16], mx = -INFINITY, sum = 0;
        for (int j = 0; j < 16; j++) {
            float acc = 0;
            for (int k = 0; k < 8; k++) acc += x[r * 8 + k] * W[k * 16 + j];
            h[j] = fmaxf(acc + B[j], 0.f);
            mx = fmaxf(mx, h[j]);
        }
        for (int j = 0; j < 16; j++) sum += (h[j] = expf(h[j] - mx));
        for (int j = 0; j < 16; j++) y[r * 16 + j] = h[j] / sum;
    }
}

static onr_plan *build(const pbw *m, onr_model **model)
{
    onr_err err = {0};
    if (onr_load_buffer(m->b, m->n, NULL, model, &err)) fail_msg("load: %s", err.msg);
    onr_plan *p = NULL;
    onr_plan_opts o = {.nthreads = 1, .fuse = 1};
    if (onr_plan_build(*model, &o, &p, &err)) fail_msg("plan: %s", err.msg);
    return p;
}

/* Run p on x [dims] and check output 0 against the reference. */
static void run_check(onr_plan *p, onr_tensor *x, int64_t rows, int transposed)
{
    onr_err err = {0};
    onr_tensor *in = onr_plan_input(p, 0);
    *in = *x;
    in->owns = 0;
    in->cap = 0;
    in->name = NULL;
    if (onr_plan_run(p, &err)) fail_msg("run: %s", err.msg);
    counting = 0;
    float *ref = malloc(sizeof(float) * (size_t)rows * 16);
    assert_non_null(ref);
    reference(x->data, rows, ref);
    const onr_tensor *y = onr_plan_output(p, 0);
    assert_int_equal(y->numel, rows * 16);
    const float *got = y->data;
    for (int64_t i = 0; i < rows * 16; i++) {
        /* y = transpose of the [4,8] view of the [2,16] result */
        int64_t src = transposed ? (i % 4) * 8 + i / 4 : i;
        if (fabsf(got[i] - ref[src]) > 1e-5f)
            fail_msg("element %lld: %g, expected %g", (long long)i, got[i], ref[src]);
    }
    free(ref);
}

static void test_static_runs_allocate_nothing(void **state)
{
    (void)state;
    pbw m = static_model();
    onr_model *model = NULL;
    onr_plan *p = build(&m, &model);
    free(m.b);
    onr_tensor *x = tk_rand_f32(2, (const int64_t[]){2, 8}, 3);
    size_t packs = onr_sgemm_pack_count();
    /* static shapes: every step was reshaped and laid out at build, and the
     * graph output's buffer allocated there (onr_plan_alloc_outputs), so
     * even the first run allocates nothing */
    assert_non_null(onr_plan_output(p, 0)->data);
    for (int rep = 0; rep < 4; rep++) {
        n_allocs = 0;
        counting = 1;
        run_check(p, x, 2, 1);
        if (n_allocs) fail_msg("run %d allocated %ld times", rep, n_allocs);
    }
    for (int i = 0; i < p->n_steps; i++)
        if (p->steps[i].n_reshape != 1)
            fail_msg("step %d (%s) reshaped %lld times, once expected", i,
                     p->steps[i].node->op_type, (long long)p->steps[i].n_reshape);
    assert_int_equal(onr_sgemm_pack_count(), packs);
    size_t arena, acts;
    onr_plan_memory(p, &arena, &acts);
    if (!(arena > 0 && arena < acts)) fail_msg("arena %zu for %zu bytes of activations", arena, acts);
    onr_tensor_free(x);
    onr_plan_free(p);
    onr_model_free(model);
}

static void test_symbolic_lengths_reuse_layout(void **state)
{
    (void)state;
    pbw m = symbolic_model();
    onr_model *model = NULL;
    onr_plan *p = build(&m, &model);
    free(m.b);
    size_t packs = onr_sgemm_pack_count();
    static const int64_t lens[] = {4, 5, 6, 5, 4, 6, 4};
    onr_tensor *xs[7];
    for (int i = 0; i < 7; i++) xs[i] = tk_rand_f32(3, (const int64_t[]){1, lens[i], 8}, 10 + (uint32_t)i);
    for (int i = 0; i < 7; i++) {
        n_allocs = 0;
        counting = i >= 3; /* 4, 5 and 6 were seen: nothing more to allocate */
        run_check(p, xs[i], lens[i], 0);
        if (n_allocs) fail_msg("run at length %lld allocated %ld times", (long long)lens[i], n_allocs);
    }
    /* weights were packed at create only */
    assert_int_equal(onr_sgemm_pack_count(), packs);
    /* the same length twice in a row: no step is reshaped again */
    int64_t before = 0, after = 0;
    for (int i = 0; i < p->n_steps; i++) before += p->steps[i].n_reshape;
    run_check(p, xs[6], lens[6], 0);
    for (int i = 0; i < p->n_steps; i++) after += p->steps[i].n_reshape;
    assert_int_equal(before, after);
    for (int i = 0; i < 7; i++) onr_tensor_free(xs[i]);
    onr_plan_free(p);
    onr_model_free(model);
}

/* Through the public API: the output is the plan's buffer (no copy), stable
 * across runs; take_output hands it over and the next run makes a new one. */
static void test_session_outputs_not_copied(void **state)
{
    (void)state;
    pbw m = static_model();
    onr_session *s = NULL;
    onr_options *o = onr_options_new();
    onr_options_set_threads(o, 1);
    if (onr_session_open_memory(m.b, m.n, o, &s)) fail_msg("%s", onr_session_errmsg(s));
    onr_options_free(o);
    free(m.b);
    onr_tensor *x = tk_rand_f32(2, (const int64_t[]){2, 8}, 5);
    const onr_tensor *in = x;
    assert_int_equal(onr_session_run(s, 1, NULL, &in), ONR_OK);
    const void *d0 = onr_tensor_data(onr_session_output(s, 0));
    float first[32];
    memcpy(first, d0, sizeof first);
    n_allocs = 0;
    counting = 1;
    assert_int_equal(onr_session_run(s, 1, NULL, &in), ONR_OK);
    counting = 0;
    assert_int_equal(n_allocs, 0);
    assert_ptr_equal(onr_tensor_data(onr_session_output(s, 0)), d0);
    onr_tensor *t = onr_session_take_output(s, 0);
    assert_non_null(t);
    assert_ptr_equal(onr_tensor_data(t), d0);
    assert_int_equal(onr_session_run(s, 1, NULL, &in), ONR_OK);
    const onr_tensor *y2 = onr_session_output(s, 0);
    assert_true(onr_tensor_data(y2) != d0);
    assert_memory_equal(onr_tensor_data(y2), first, sizeof first);
    assert_memory_equal(onr_tensor_data(t), first, sizeof first); /* ours, untouched */
    onr_tensor_free(t);
    onr_tensor_free(x);
    onr_session_free(s);
}

/* String values between steps (and a string output nobody reads) own
 * their pointer arrays: never arena bytes (a string has no element size,
 * and they were given none), correct on every run, nothing leaked (ASan). */
static void test_string_intermediates(void **state)
{
    (void)state;
    pbw g = {0}, up = {0}, lo = {0};
    int64_t d3[] = {3}, d1[] = {-1};
    pbw_value_info(&g, 11, "x", 8, 1, d3);
    pbw_attr_string(&up, "case_change_action", "UPPER");
    pbw_attr_string(&lo, "case_change_action", "LOWER");
    pbw_node(&g, "StringNormalizer", "up", (const char *[]){"x", NULL}, (const char *[]){"m", NULL}, &up);
    pbw_node(&g, "StringNormalizer", "lo", (const char *[]){"m", NULL}, (const char *[]){"y", NULL}, &lo);
    pbw_node(&g, "Unique", "uq", (const char *[]){"m", NULL},
             (const char *[]){"u", "idx", NULL}, NULL);
    pbw_value_info(&g, 12, "y", 8, 1, d3);
    pbw_value_info(&g, 12, "idx", 7, 1, d1);
    pbw m = pbw_model(&g, 8, 11);
    onr_session *s = NULL;
    if (onr_session_open_memory(m.b, m.n, NULL, &s)) fail_msg("%s", onr_session_errmsg(s));
    free(m.b);
    const char *words[][3] = {{"aB", "cD", "ab"}, {"Xy", "xY", "zz"}, {"", "q", "Q"}};
    const char *want[][3] = {{"ab", "cd", "ab"}, {"xy", "xy", "zz"}, {"", "q", "q"}};
    const int64_t want_idx[][3] = {{0, 1, 0}, {0, 2, 0}, {0, 1, 0}};
    const int64_t want_n[] = {2, 2, 2};
    for (int r = 0; r < 3; r++) {
        onr_tensor *x = onr_tensor_new(ONR_STRING, 1, d3);
        assert_non_null(x);
        for (int i = 0; i < 3; i++) {
            char **d = onr_tensor_data(x);
            free(d[i]);
            d[i] = onr_strdup(words[r][i]);
        }
        const onr_tensor *in = x;
        if (onr_session_run(s, 1, NULL, &in)) fail_msg("run %d: %s", r, onr_session_errmsg(s));
        const onr_tensor *y = onr_session_output(s, 0), *ix = onr_session_output(s, 1);
        for (int i = 0; i < 3; i++)
            assert_string_equal(((char *const *)onr_tensor_data(y))[i], want[r][i]);
        assert_int_equal(onr_tensor_numel(ix), want_n[r]);
        for (int64_t i = 0; i < want_n[r]; i++)
            assert_int_equal(((const int64_t *)onr_tensor_data(ix))[i], want_idx[r][i]);
        onr_tensor_free(x);
    }
    onr_session_free(s);
}

/* onr_par_for: every index once; serially (par 0, or one thread) outside
 * any OpenMP region, since libgomp ends even a one-thread region with a
 * futex system call. */
typedef struct par_probe {
    int seen[64];
    int in_region[64];
} par_probe;

static void par_probe_fn(void *ctx, int64_t i)
{
    par_probe *p = ctx;
    #pragma omp atomic
    p->seen[i]++;
    p->in_region[i] = omp_in_parallel();
}

static void test_par_for(void **state)
{
    (void)state;
    static const struct {
        int nt, par, serial;
    } cases[] = {{1, 1, 1}, {2, 0, 1}, {1, 0, 1}, {2, 1, 0}, {3, 1, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int64_t n = 0; n <= 64; n += n < 3 ? 1 : 61) {
            par_probe p = {{0}, {0}};
            onr_par_for(n, cases[c].nt, cases[c].par, par_probe_fn, &p);
            for (int64_t i = 0; i < 64; i++) {
                assert_int_equal(p.seen[i], i < n);
                if (i < n && cases[c].serial) assert_int_equal(p.in_region[i], 0);
            }
        }
}

/* onr_par_for at 2 threads with the first half of the items slow (the
 * first thread's share: a core that runs slower): every item still runs
 * once, and a thread done early takes items of the other's share (the
 * stealing, src/ops/common.c). Skipped when the region ran on one thread
 * (the contention back-off, team.h, on a busy machine). */
typedef struct par_slow {
    int seen[32], who[32];
} par_slow;

static void par_slow_fn(void *ctx, int64_t i)
{
    par_slow *p = ctx;
    if (i < 16) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    #pragma omp atomic
    p->seen[i]++;
    p->who[i] = omp_get_thread_num();
}

static void test_par_for_steals(void **state)
{
    (void)state;
    par_slow p;
    memset(&p, 0, sizeof p);
    onr_par_for(32, 2, 1, par_slow_fn, &p);
    int ran1 = 0, moved = 0;
    for (int i = 0; i < 32; i++) {
        assert_int_equal(p.seen[i], 1);
        ran1 |= p.who[i] == 1;
        moved |= (i < 16) != (p.who[i] == 0); /* not on its share's thread */
    }
    if (!ran1) {
        print_message("par_for ran on one thread (backed off): stealing not checked\n");
        return;
    }
    assert_true(moved);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_static_runs_allocate_nothing),
        cmocka_unit_test(test_symbolic_lengths_reuse_layout),
        cmocka_unit_test(test_session_outputs_not_copied),
        cmocka_unit_test(test_string_intermediates),
        cmocka_unit_test(test_par_for),
        cmocka_unit_test(test_par_for_steals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
