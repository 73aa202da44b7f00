/*
 * test_control.c - If, Loop and Scan through the session API, on models
 * written with pbw.h: trip counts and conditions (M = 0, cond false at
 * entry, while-loops), loop-carried values whose shape changes, outer-scope
 * values read two levels down, nested control flow (a Loop in an If in a
 * Loop), Scan's axes and directions against a plain-C reference, subgraph
 * errors that name their path, cancelling a loop that never ends, and no
 * allocation per iteration once shapes repeat (the allocator is wrapped,
 * see tests/CMakeLists.txt).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kutil.h"
#include "pbw.h"

#include "alloccount.h"

#define F32 1
#define I64 7
#define BOOL 9

#define S(...) ((const char *[]){__VA_ARGS__, NULL})

static const int64_t D2[] = {2};

static pbw graph_named(const char *name)
{
    pbw g = {0};
    pbw_str(&g, 2, name);
    return g;
}

static onr_session *open_model(pbw *m)
{
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(m->b, m->n, NULL, &s);
    free(m->b);
    if (st) fail_msg("open: %s", onr_session_errmsg(s));
    return s;
}

static onr_status open_status(pbw *m, char *msg, size_t len)
{
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(m->b, m->n, NULL, &s);
    free(m->b);
    snprintf(msg, len, "%s", onr_session_errmsg(s));
    onr_session_free(s);
    return st;
}

static void expect_f32(const onr_tensor *t, int rank, const int64_t *dims, const float *v)
{
    assert_non_null(t);
    assert_int_equal(onr_tensor_dtype(t), ONR_FLOAT);
    assert_int_equal(onr_tensor_rank(t), rank);
    for (int d = 0; d < rank; d++) assert_int_equal(onr_tensor_dims(t)[d], dims[d]);
    const float *got = onr_tensor_data(t);
    for (int64_t i = 0; i < onr_tensor_numel(t); i++)
        if (got[i] != v[i]) fail_msg("element %lld: %g, expected %g", (long long)i, got[i], v[i]);
}

/* ---- a summing Loop ----------------------------------------------------------------
 * y = y0; repeat: y = y + x (x read from the main graph); scan output: y.
 * Inputs M, cond (each may be left out: ""), y0 [2], x [2]. */
static pbw sum_loop_model(int has_m, int has_cond)
{
    pbw body = graph_named("body"), g = {0}, a = {0};
    pbw_value_info(&body, 11, "i", I64, 0, NULL);
    pbw_value_info(&body, 11, "c_in", BOOL, 0, NULL);
    pbw_value_info(&body, 11, "y_in", F32, 1, D2);
    pbw_node(&body, "Add", "add", S("y_in", "x"), S("y_out"), NULL);
    pbw_node(&body, "Identity", "c", S("c_in"), S("c_out"), NULL);
    pbw_node(&body, "Identity", "scan", S("y_out"), S("ys_row"), NULL);
    pbw_value_info(&body, 12, "c_out", BOOL, 0, NULL);
    pbw_value_info(&body, 12, "y_out", F32, 1, D2);
    pbw_value_info(&body, 12, "ys_row", F32, 1, D2);
    if (has_m) pbw_value_info(&g, 11, "M", I64, 0, NULL);
    if (has_cond) pbw_value_info(&g, 11, "cond", BOOL, 0, NULL);
    pbw_value_info(&g, 11, "y0", F32, 1, D2);
    pbw_value_info(&g, 11, "x", F32, 1, (const int64_t[]){-1});
    pbw_attr_graph(&a, "body", &body);
    pbw_node(&g, "Loop", "loop", S(has_m ? "M" : "", has_cond ? "cond" : "", "y0"),
             S("y", "ys"), &a);
    pbw_value_info(&g, 12, "y", F32, 1, D2);
    pbw_value_info(&g, 12, "ys", F32, -1, NULL);
    return pbw_model(&g, 8, 16);
}

static onr_status run_sum(onr_session *s, int has_m, int has_cond, int64_t m, uint8_t cond)
{
    onr_tensor *tm = tk_i64(0, NULL, &m), *tc = tk_bool(0, NULL, &cond);
    onr_tensor *y0 = tk_f32(1, D2, (const float[]){1, 2}), *x = tk_f32(1, D2, (const float[]){10, 20});
    const onr_tensor *in[4];
    int n = 0;
    if (has_m) in[n++] = tm;
    if (has_cond) in[n++] = tc;
    in[n++] = y0;
    in[n++] = x;
    onr_status st = onr_session_run(s, n, NULL, in);
    onr_tensor_free(tm), onr_tensor_free(tc), onr_tensor_free(y0), onr_tensor_free(x);
    return st;
}

static void check_sum(onr_session *s, int64_t iters)
{
    float y[2] = {1.f + 10.f * (float)iters, 2.f + 20.f * (float)iters};
    expect_f32(onr_session_output(s, 0), 1, D2, y);
    const onr_tensor *ys = onr_session_output(s, 1);
    assert_int_equal(onr_tensor_rank(ys), 2);
    assert_int_equal(onr_tensor_dims(ys)[0], iters);
    assert_int_equal(onr_tensor_dims(ys)[1], 2);
    const float *v = onr_tensor_data(ys);
    for (int64_t i = 0; i < iters; i++) {
        assert_true(v[2 * i] == 1.f + 10.f * (float)(i + 1));
        assert_true(v[2 * i + 1] == 2.f + 20.f * (float)(i + 1));
    }
}

static void test_loop_trip_counts(void **state)
{
    (void)state;
    pbw m = sum_loop_model(1, 1);
    onr_session *s = open_model(&m);
    int64_t counts[] = {5, 0, 1, 7, 3};
    for (int k = 0; k < 5; k++) {
        if (run_sum(s, 1, 1, counts[k], 1)) fail_msg("M=%lld: %s", (long long)counts[k], onr_session_errmsg(s));
        check_sum(s, counts[k]);
    }
    /* cond false at entry: no iteration, whatever M */
    if (run_sum(s, 1, 1, 5, 0)) fail_msg("%s", onr_session_errmsg(s));
    check_sum(s, 0);
    /* a negative M runs nothing */
    if (run_sum(s, 1, 1, -3, 1)) fail_msg("%s", onr_session_errmsg(s));
    check_sum(s, 0);
    onr_session_free(s);

    /* M alone (cond ""): the body's cond output is ignored */
    m = sum_loop_model(1, 0);
    s = open_model(&m);
    if (run_sum(s, 1, 0, 4, 1)) fail_msg("%s", onr_session_errmsg(s));
    check_sum(s, 4);
    onr_session_free(s);
}

/* No allocation per iteration, nor per run, once the shapes repeat. */
static void test_loop_allocates_nothing_when_shapes_repeat(void **state)
{
    (void)state;
    pbw m = sum_loop_model(1, 1);
    onr_session *s = open_model(&m);
    int64_t mm = 40;
    uint8_t c = 1;
    onr_tensor *tm = tk_i64(0, NULL, &mm), *tc = tk_bool(0, NULL, &c);
    onr_tensor *y0 = tk_f32(1, D2, (const float[]){1, 2}), *x = tk_f32(1, D2, (const float[]){10, 20});
    const onr_tensor *in[] = {tm, tc, y0, x};
    for (int rep = 0; rep < 4; rep++) {
        n_allocs = 0;
        counting = rep >= 2;
        onr_status st = onr_session_run(s, 4, NULL, in);
        counting = 0;
        if (st) fail_msg("%s", onr_session_errmsg(s));
        if (rep >= 2 && n_allocs) fail_msg("run %d of 40 iterations allocated %ld times", rep, n_allocs);
    }
    check_sum(s, 40);
    /* fewer iterations reuse the buffers too */
    *(int64_t *)onr_tensor_data(tm) = 10;
    n_allocs = 0;
    counting = 1;
    onr_status st = onr_session_run(s, 4, NULL, in);
    counting = 0;
    if (st) fail_msg("%s", onr_session_errmsg(s));
    if (n_allocs) fail_msg("a shorter run allocated %ld times", n_allocs);
    check_sum(s, 10);
    onr_tensor_free(tm), onr_tensor_free(tc), onr_tensor_free(y0), onr_tensor_free(x);
    onr_session_free(s);
}

/* A while-loop (no M): continues while iter < lim (lim from the main graph),
 * and the loop-carried value grows by one element each iteration. */
static void test_loop_while_growing_shape(void **state)
{
    (void)state;
    pbw body = graph_named("body"), g = {0}, a = {0}, ca = {0};
    int64_t one[] = {1};
    pbw_value_info(&body, 11, "i", I64, 0, NULL);
    pbw_value_info(&body, 11, "c_in", BOOL, 0, NULL);
    pbw_value_info(&body, 11, "y_in", F32, 1, (const int64_t[]){-1});
    pbw_attr_int(&ca, "axis", 0);
    pbw_node(&body, "Concat", "cat", S("y_in", "x"), S("y_out"), &ca);
    pbw_node(&body, "Less", "less", S("i", "lim"), S("c_out"), NULL);
    pbw_value_info(&body, 12, "c_out", BOOL, 0, NULL);
    pbw_value_info(&body, 12, "y_out", F32, 1, (const int64_t[]){-1});
    /* M = INT64_MAX, what exporters write for "no limit" (regression: it
     * was read through a double and came out negative) */
    int64_t big = INT64_MAX;
    pbw_init_i64(&g, "big", 0, NULL, &big, 1);
    pbw_value_info(&g, 11, "cond", BOOL, 0, NULL);
    pbw_value_info(&g, 11, "lim", I64, 0, NULL);
    pbw_value_info(&g, 11, "y0", F32, 1, one);
    pbw_value_info(&g, 11, "x", F32, 1, one);
    pbw_attr_graph(&a, "body", &body);
    pbw_node(&g, "Loop", "loop", S("big", "cond", "y0"), S("y"), &a);
    pbw_value_info(&g, 12, "y", F32, 1, (const int64_t[]){-1});
    pbw m = pbw_model(&g, 8, 13);
    onr_session *s = open_model(&m);
    uint8_t c = 1;
    for (int64_t lim = 0; lim < 6; lim++) {
        onr_tensor *tc = tk_bool(0, NULL, &c), *tl = tk_i64(0, NULL, &lim);
        onr_tensor *y0 = tk_f32(1, one, (const float[]){7}), *x = tk_f32(1, one, (const float[]){3});
        const onr_tensor *in[] = {tc, tl, y0, x};
        if (onr_session_run(s, 4, NULL, in)) fail_msg("%s", onr_session_errmsg(s));
        /* iterations 0..lim run (cond is checked after each) */
        const onr_tensor *y = onr_session_output(s, 0);
        assert_int_equal(onr_tensor_dims(y)[0], lim + 2);
        const float *v = onr_tensor_data(y);
        assert_true(v[0] == 7.f);
        for (int64_t k = 1; k < lim + 2; k++) assert_true(v[k] == 3.f);
        onr_tensor_free(tc), onr_tensor_free(tl), onr_tensor_free(y0), onr_tensor_free(x);
    }
    onr_session_free(s);
}

/* Loop (M = n) whose body holds If(flag): then a Loop of 2 iterations adding
 * x, else acc - x. x and flag come from the main graph: x is read two and
 * three levels down. acc = acc0 + 2 n x, or acc0 - n x. */
static pbw nested_model(void)
{
    pbw inner = graph_named("inner"), thenb = graph_named("then"), elseb = graph_named("else");
    pbw outer = graph_named("outer"), g = {0}, a = {0};
    pbw_value_info(&inner, 11, "j", I64, 0, NULL);
    pbw_value_info(&inner, 11, "c2", BOOL, 0, NULL);
    pbw_value_info(&inner, 11, "a_in", F32, 1, D2);
    pbw_node(&inner, "Add", "inner_add", S("a_in", "x"), S("a_out"), NULL);
    pbw_node(&inner, "Identity", "c2id", S("c2"), S("c2_out"), NULL);
    pbw_value_info(&inner, 12, "c2_out", BOOL, 0, NULL);
    pbw_value_info(&inner, 12, "a_out", F32, 1, D2);

    pbw_attr_graph(&a, "body", &inner);
    pbw_node(&thenb, "Loop", "inner_loop", S("two", "", "acc"), S("t_out"), &a);
    pbw_value_info(&thenb, 12, "t_out", F32, 1, D2);
    pbw_node(&elseb, "Sub", "else_sub", S("acc", "x"), S("e_out"), NULL);
    pbw_value_info(&elseb, 12, "e_out", F32, 1, D2);

    pbw_value_info(&outer, 11, "i", I64, 0, NULL);
    pbw_value_info(&outer, 11, "c", BOOL, 0, NULL);
    pbw_value_info(&outer, 11, "acc", F32, 1, D2);
    pbw_attr_graph(&a, "then_branch", &thenb);
    pbw_attr_graph(&a, "else_branch", &elseb);
    pbw_node(&outer, "If", "if", S("flag"), S("acc_out"), &a);
    pbw_node(&outer, "Identity", "cid", S("c"), S("c_out"), NULL);
    pbw_value_info(&outer, 12, "c_out", BOOL, 0, NULL);
    pbw_value_info(&outer, 12, "acc_out", F32, 1, D2);

    int64_t two = 2;
    pbw_init_i64(&g, "two", 0, NULL, &two, 1);
    pbw_value_info(&g, 11, "n", I64, 0, NULL);
    pbw_value_info(&g, 11, "flag", BOOL, 0, NULL);
    pbw_value_info(&g, 11, "acc0", F32, 1, D2);
    pbw_value_info(&g, 11, "x", F32, 1, D2);
    pbw_attr_graph(&a, "body", &outer);
    pbw_node(&g, "Loop", "outer_loop", S("n", "", "acc0"), S("acc_final"), &a);
    pbw_value_info(&g, 12, "acc_final", F32, 1, D2);
    return pbw_model(&g, 8, 16);
}

static void test_nested_control_flow(void **state)
{
    (void)state;
    pbw m = nested_model();
    onr_session *s = open_model(&m);
    for (int flag = 0; flag < 2; flag++)
        for (int64_t n = 0; n < 4; n++) {
            uint8_t f = (uint8_t)flag;
            onr_tensor *tn = tk_i64(0, NULL, &n), *tf = tk_bool(0, NULL, &f);
            onr_tensor *acc0 = tk_f32(1, D2, (const float[]){1, 2});
            onr_tensor *x = tk_f32(1, D2, (const float[]){10, 100});
            const onr_tensor *in[] = {tn, tf, acc0, x};
            if (onr_session_run(s, 4, NULL, in)) fail_msg("%s", onr_session_errmsg(s));
            float k = flag ? 2.f * (float)n : -(float)n;
            float want[2] = {1.f + k * 10.f, 2.f + k * 100.f};
            expect_f32(onr_session_output(s, 0), 1, D2, want);
            onr_tensor_free(tn), onr_tensor_free(tf), onr_tensor_free(acc0), onr_tensor_free(x);
        }
    onr_session_free(s);
}

/* If whose branches give different shapes: x + 1 [2], or x ++ x [4]. */
static void test_if_branch_shapes(void **state)
{
    (void)state;
    pbw t = graph_named("then"), e = graph_named("else"), g = {0}, a = {0}, ca = {0};
    float one = 1;
    pbw_init_f32(&t, "one", 0, NULL, &one, 1);
    pbw_node(&t, "Add", "then_add", S("x", "one"), S("t"), NULL);
    pbw_value_info(&t, 12, "t", F32, 1, D2);
    pbw_attr_int(&ca, "axis", 0);
    pbw_node(&e, "Concat", "else_cat", S("x", "x"), S("e"), &ca);
    pbw_value_info(&e, 12, "e", F32, 1, (const int64_t[]){4});
    pbw_value_info(&g, 11, "c", BOOL, 0, NULL);
    pbw_value_info(&g, 11, "x", F32, 1, D2);
    pbw_attr_graph(&a, "then_branch", &t);
    pbw_attr_graph(&a, "else_branch", &e);
    pbw_node(&g, "If", "if", S("c"), S("y"), &a);
    pbw_node(&g, "Neg", "neg", S("y"), S("z"), NULL); /* a reader laid out after the If runs */
    pbw_value_info(&g, 12, "z", F32, -1, NULL);
    pbw m = pbw_model(&g, 8, 13);
    onr_session *s = open_model(&m);
    for (int rep = 0; rep < 4; rep++) {
        uint8_t c = (uint8_t)(rep & 1);
        onr_tensor *tc = tk_bool(0, NULL, &c), *x = tk_f32(1, D2, (const float[]){3, 4});
        const onr_tensor *in[] = {tc, x};
        if (onr_session_run(s, 2, NULL, in)) fail_msg("%s", onr_session_errmsg(s));
        if (c) expect_f32(onr_session_output(s, 0), 1, D2, (const float[]){-4, -5});
        else expect_f32(onr_session_output(s, 0), 1, (const int64_t[]){4}, (const float[]){-3, -4, -3, -4});
        onr_tensor_free(tc), onr_tensor_free(x);
    }
    onr_session_free(s);
}

/* Scan-9+: X [2,3] scanned along axis 1 in reverse; state s += column; the
 * scan output (s after each step) stacked along axis 1, also in reverse. */
static void test_scan_axes_directions(void **state)
{
    (void)state;
    pbw body = graph_named("body"), g = {0}, a = {0};
    pbw_value_info(&body, 11, "s_in", F32, 1, D2);
    pbw_value_info(&body, 11, "col", F32, 1, D2);
    pbw_node(&body, "Add", "add", S("s_in", "col"), S("s_out"), NULL);
    pbw_node(&body, "Mul", "mul", S("s_out", "k"), S("row"), NULL);
    pbw_value_info(&body, 12, "s_out", F32, 1, D2);
    pbw_value_info(&body, 12, "row", F32, 1, D2);
    float k = 2;
    pbw_init_f32(&g, "k", 0, NULL, &k, 1);
    pbw_value_info(&g, 11, "s0", F32, 1, D2);
    pbw_value_info(&g, 11, "X", F32, 2, (const int64_t[]){2, 3});
    pbw_attr_graph(&a, "body", &body);
    pbw_attr_int(&a, "num_scan_inputs", 1);
    pbw_attr_ints(&a, "scan_input_axes", (const int64_t[]){1}, 1);
    pbw_attr_ints(&a, "scan_input_directions", (const int64_t[]){1}, 1);
    pbw_attr_ints(&a, "scan_output_axes", (const int64_t[]){-1}, 1);
    pbw_attr_ints(&a, "scan_output_directions", (const int64_t[]){1}, 1);
    pbw_node(&g, "Scan", "scan", S("s0", "X"), S("s", "Y"), &a);
    pbw_value_info(&g, 12, "s", F32, 1, D2);
    pbw_value_info(&g, 12, "Y", F32, 2, (const int64_t[]){2, 3});
    pbw m = pbw_model(&g, 8, 16);
    onr_session *s = open_model(&m);
    const float X[6] = {1, 2, 3, 4, 5, 6};
    onr_tensor *s0 = tk_f32(1, D2, (const float[]){100, 200});
    onr_tensor *x = tk_f32(2, (const int64_t[]){2, 3}, X);
    const onr_tensor *in[] = {s0, x};
    if (onr_session_run(s, 2, NULL, in)) fail_msg("%s", onr_session_errmsg(s));
    /* reference: steps t = 0..2 read column 2 - t; output column 2 - t */
    float st[2] = {100, 200}, Y[6];
    for (int t = 0; t < 3; t++) {
        int col = 2 - t;
        for (int r = 0; r < 2; r++) {
            st[r] += X[r * 3 + col];
            Y[r * 3 + (2 - t)] = 2 * st[r];
        }
    }
    expect_f32(onr_session_output(s, 0), 1, D2, st);
    expect_f32(onr_session_output(s, 1), 2, (const int64_t[]){2, 3}, Y);
    onr_tensor_free(s0), onr_tensor_free(x);
    onr_session_free(s);
}

/* Scan-8 (batch axis 0, optional sequence_lens): batch 1 stops after its
 * length; its scan output rows past the length stay zero. Also: a
 * missing num_scan_inputs is an error naming the attribute. */
static void test_scan8_sequence_lens(void **state)
{
    (void)state;
    pbw body = graph_named("body"), g = {0}, a = {0};
    pbw_value_info(&body, 11, "s_in", F32, 1, (const int64_t[]){1});
    pbw_value_info(&body, 11, "xt", F32, 1, (const int64_t[]){1});
    pbw_node(&body, "Add", "add", S("s_in", "xt"), S("s_out"), NULL);
    pbw_node(&body, "Identity", "id", S("s_out"), S("y_t"), NULL);
    pbw_value_info(&body, 12, "s_out", F32, 1, (const int64_t[]){1});
    pbw_value_info(&body, 12, "y_t", F32, 1, (const int64_t[]){1});
    pbw_value_info(&g, 11, "lens", I64, 1, D2);
    pbw_value_info(&g, 11, "s0", F32, 2, (const int64_t[]){2, 1});
    pbw_value_info(&g, 11, "X", F32, 3, (const int64_t[]){2, 3, 1});
    pbw body2 = {0};
    pbw_raw(&body2, body.b, body.n);
    pbw_attr_graph(&a, "body", &body);
    pbw_attr_int(&a, "num_scan_inputs", 1);
    pbw_node(&g, "Scan", "scan8", S("lens", "s0", "X"), S("s", "Y"), &a);
    pbw_value_info(&g, 12, "s", F32, -1, NULL);
    pbw_value_info(&g, 12, "Y", F32, -1, NULL);
    pbw m = pbw_model(&g, 8, 8);
    onr_session *s = open_model(&m);
    int64_t lens[2] = {3, 1};
    onr_tensor *tl = tk_i64(1, D2, lens);
    onr_tensor *s0 = tk_f32(2, (const int64_t[]){2, 1}, (const float[]){10, 20});
    onr_tensor *x = tk_f32(3, (const int64_t[]){2, 3, 1}, (const float[]){1, 2, 3, 4, 5, 6});
    const onr_tensor *in[] = {tl, s0, x};
    if (onr_session_run(s, 3, NULL, in)) fail_msg("%s", onr_session_errmsg(s));
    expect_f32(onr_session_output(s, 0), 2, (const int64_t[]){2, 1}, (const float[]){16, 24});
    expect_f32(onr_session_output(s, 1), 3, (const int64_t[]){2, 3, 1},
               (const float[]){11, 13, 16, 24, 0, 0});
    /* a length past the sequence is refused */
    lens[1] = 4;
    onr_tensor *tl2 = tk_i64(1, D2, lens);
    const onr_tensor *in2[] = {tl2, s0, x};
    assert_int_equal(onr_session_run(s, 3, NULL, in2), ONR_E_RUNTIME);
    if (!strstr(onr_session_errmsg(s), "sequence_lens[1]")) fail_msg("%s", onr_session_errmsg(s));
    onr_tensor_free(tl), onr_tensor_free(tl2), onr_tensor_free(s0), onr_tensor_free(x);
    onr_session_free(s);

    g = (pbw){0};
    pbw_value_info(&g, 11, "s0", F32, 1, (const int64_t[]){1});
    pbw_value_info(&g, 11, "X", F32, 2, (const int64_t[]){3, 1});
    pbw_attr_graph(&a, "body", &body2);
    pbw_node(&g, "Scan", "no_count", S("s0", "X"), S("s", "Y"), &a);
    pbw_value_info(&g, 12, "s", F32, -1, NULL);
    pbw_value_info(&g, 12, "Y", F32, -1, NULL);
    m = pbw_model(&g, 8, 16);
    char msg[1024];
    assert_int_equal(open_status(&m, msg, sizeof msg), ONR_E_MODEL);
    if (!strstr(msg, "no_count") || !strstr(msg, "num_scan_inputs")) fail_msg("message: %s", msg);
}

/* ---- errors --------------------------------------------------------------------------- */

static void test_bad_subgraphs(void **state)
{
    (void)state;
    char msg[1024];
    /* a body with the wrong number of inputs */
    pbw body = graph_named("body"), g = {0}, a = {0};
    pbw_value_info(&body, 11, "i", I64, 0, NULL);
    pbw_node(&body, "Identity", "id", S("i"), S("o"), NULL);
    pbw_value_info(&body, 12, "o", I64, 0, NULL);
    pbw_value_info(&g, 11, "y0", F32, 1, D2);
    pbw_attr_graph(&a, "body", &body);
    pbw_node(&g, "Loop", "bad_loop", S("", "", "y0"), S("y"), &a);
    pbw_value_info(&g, 12, "y", F32, 1, D2);
    pbw m = pbw_model(&g, 8, 13);
    assert_int_equal(open_status(&m, msg, sizeof msg), ONR_E_MODEL);
    if (!strstr(msg, "bad_loop") || !strstr(msg, "body has 1 inputs"))
        fail_msg("message: %s", msg);

    /* If without else_branch */
    pbw t = graph_named("then");
    g = (pbw){0};
    pbw_node(&t, "Identity", "tid", S("x"), S("t"), NULL);
    pbw_value_info(&t, 12, "t", F32, 1, D2);
    pbw_value_info(&g, 11, "c", BOOL, 0, NULL);
    pbw_value_info(&g, 11, "x", F32, 1, D2);
    pbw_attr_graph(&a, "then_branch", &t);
    pbw_node(&g, "If", "half_if", S("c"), S("y"), &a);
    pbw_value_info(&g, 12, "y", F32, 1, D2);
    m = pbw_model(&g, 8, 13);
    assert_int_equal(open_status(&m, msg, sizeof msg), ONR_E_MODEL);
    if (!strstr(msg, "half_if") || !strstr(msg, "else_branch")) fail_msg("message: %s", msg);

    /* an unsupported op inside a body is reported with its path */
    body = graph_named("body");
    g = (pbw){0};
    pbw_value_info(&body, 11, "i", I64, 0, NULL);
    pbw_value_info(&body, 11, "c", BOOL, 0, NULL);
    pbw_value_info(&body, 11, "y_in", F32, 1, D2);
    pbw_node(&body, "NoSuchOp", "weird", S("y_in"), S("y_out"), NULL);
    pbw_node(&body, "Identity", "cid", S("c"), S("c_out"), NULL);
    pbw_value_info(&body, 12, "c_out", BOOL, 0, NULL);
    pbw_value_info(&body, 12, "y_out", F32, 1, D2);
    pbw_value_info(&g, 11, "y0", F32, 1, D2);
    pbw_attr_graph(&a, "body", &body);
    pbw_node(&g, "Loop", "loop_3", S("", "", "y0"), S("y"), &a);
    pbw_value_info(&g, 12, "y", F32, 1, D2);
    m = pbw_model(&g, 8, 13);
    assert_int_equal(open_status(&m, msg, sizeof msg), ONR_E_UNSUPPORTED);
    if (!strstr(msg, "loop_3") || !strstr(msg, "body / ") || !strstr(msg, "NoSuchOp"))
        fail_msg("message: %s", msg);
}

/* A kernel error inside a body names the path down to the node. */
static void test_body_error_path(void **state)
{
    (void)state;
    pbw m = sum_loop_model(1, 1);
    onr_session *s = open_model(&m);
    int64_t mm = 3;
    uint8_t c = 1;
    onr_tensor *tm = tk_i64(0, NULL, &mm), *tc = tk_bool(0, NULL, &c);
    onr_tensor *y0 = tk_f32(1, D2, (const float[]){1, 2});
    onr_tensor *x = tk_f32(1, (const int64_t[]){3}, (const float[]){1, 2, 3});
    const onr_tensor *in[] = {tm, tc, y0, x};
    onr_status st = onr_session_run(s, 4, NULL, in);
    assert_int_not_equal(st, ONR_OK);
    const char *msg = onr_session_errmsg(s);
    if (!strstr(msg, "node 'loop' (Loop") || !strstr(msg, "body (iteration 0) / node 'add' (Add"))
        fail_msg("message: %s", msg);
    onr_tensor_free(tm), onr_tensor_free(tc), onr_tensor_free(y0), onr_tensor_free(x);
    onr_session_free(s);
}

/* A scan output whose shape changes between iterations is refused. */
static void test_loop_scan_shape_change(void **state)
{
    (void)state;
    pbw body = graph_named("body"), g = {0}, a = {0}, ca = {0};
    int64_t one[] = {1};
    pbw_value_info(&body, 11, "i", I64, 0, NULL);
    pbw_value_info(&body, 11, "c_in", BOOL, 0, NULL);
    pbw_value_info(&body, 11, "y_in", F32, 1, one);
    pbw_attr_int(&ca, "axis", 0);
    pbw_node(&body, "Concat", "cat", S("y_in", "y_in"), S("y_out"), &ca);
    pbw_node(&body, "Identity", "cid", S("c_in"), S("c_out"), NULL);
    pbw_value_info(&body, 12, "c_out", BOOL, 0, NULL);
    pbw_value_info(&body, 12, "y_out", F32, -1, NULL);
    pbw_value_info(&body, 12, "y_out", F32, -1, NULL);
    pbw_value_info(&g, 11, "y0", F32, 1, one);
    pbw_attr_graph(&a, "body", &body);
    int64_t three = 3;
    pbw_init_i64(&g, "M", 0, NULL, &three, 1);
    pbw_node(&g, "Loop", "loop", S("M", "", "y0"), S("y", "ys"), &a);
    pbw_value_info(&g, 12, "y", F32, -1, NULL);
    pbw_value_info(&g, 12, "ys", F32, -1, NULL);
    pbw m = pbw_model(&g, 8, 13);
    onr_session *s = open_model(&m);
    onr_tensor *y0 = tk_f32(1, one, (const float[]){5});
    const onr_tensor *in[] = {y0};
    assert_int_equal(onr_session_run(s, 1, NULL, in), ONR_E_RUNTIME);
    if (!strstr(onr_session_errmsg(s), "scan output")) fail_msg("%s", onr_session_errmsg(s));
    onr_tensor_free(y0);
    onr_session_free(s);
}

/* A loop with neither M nor a condition that ends ends by onr_session_cancel. */
static void *canceller(void *arg)
{
    struct timespec ts = {0, 30 * 1000 * 1000};
    nanosleep(&ts, NULL);
    onr_session_cancel(arg);
    return NULL;
}

static void test_cancel_endless_loop(void **state)
{
    (void)state;
    pbw m = sum_loop_model(0, 0);
    onr_session *s = open_model(&m);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, canceller, s), 0);
    onr_status st = run_sum(s, 0, 0, 0, 1);
    pthread_join(th, NULL);
    assert_int_equal(st, ONR_E_RUNTIME);
    if (!strstr(onr_session_errmsg(s), "cancelled")) fail_msg("%s", onr_session_errmsg(s));
    /* the next run starts uncancelled */
    onr_session_free(s);
    m = sum_loop_model(1, 0);
    s = open_model(&m);
    onr_session_cancel(s); /* no run going on: no effect */
    if (run_sum(s, 1, 0, 2, 1)) fail_msg("%s", onr_session_errmsg(s));
    check_sum(s, 2);
    onr_session_free(s);
}

/* ---- sequences and optionals ------------------------------------------------------- */

/* A Loop carrying a sequence: each iteration inserts x * (i + 1) at the
 * front; then ConcatFromSequence (axis 0) and SequenceLength; the sequence
 * itself is a graph output too. */
static void test_loop_carries_sequence(void **state)
{
    (void)state;
    pbw body = graph_named("body"), g = {0}, a = {0}, ca = {0};
    pbw_value_info(&body, 11, "i", I64, 0, NULL);
    pbw_value_info(&body, 11, "c", BOOL, 0, NULL);
    pbw_value_info(&body, 11, "s_in", F32, -1, NULL); /* a sequence: type left out */
    pbw_node(&body, "Add", "i1", S("i", "one"), S("ip1"), NULL);
    pbw_attr_int(&ca, "to", F32);
    pbw_node(&body, "Cast", "cast", S("ip1"), S("f"), &ca);
    pbw_node(&body, "Mul", "mul", S("x", "f"), S("xi"), NULL);
    pbw_node(&body, "SequenceInsert", "ins", S("s_in", "xi", "zero"), S("s_out"), NULL);
    pbw_node(&body, "Identity", "cid", S("c"), S("c_out"), NULL);
    pbw_value_info(&body, 12, "c_out", BOOL, 0, NULL);
    pbw_value_info(&body, 12, "s_out", F32, -1, NULL);
    int64_t one = 1, zero = 0;
    pbw_init_i64(&g, "one", 0, NULL, &one, 1);
    pbw_init_i64(&g, "zero", 0, NULL, &zero, 1);
    pbw_value_info(&g, 11, "M", I64, 0, NULL);
    pbw_value_info(&g, 11, "x", F32, 1, D2);
    pbw_node(&g, "SequenceEmpty", "empty", NULL, S("s0"), NULL);
    pbw_attr_graph(&a, "body", &body);
    pbw_node(&g, "Loop", "loop", S("M", "", "s0"), S("seq"), &a);
    pbw_attr_int(&a, "axis", 0);
    pbw_node(&g, "ConcatFromSequence", "cat", S("seq"), S("cat_out"), &a);
    pbw_node(&g, "SequenceLength", "len", S("seq"), S("n"), NULL);
    pbw_value_info(&g, 12, "cat_out", F32, -1, NULL);
    pbw_value_info(&g, 12, "n", I64, 0, NULL);
    pbw_value_info(&g, 12, "seq", F32, -1, NULL);
    pbw m = pbw_model(&g, 8, 13);
    onr_session *s = open_model(&m);
    for (int64_t iters = 1; iters <= 4; iters += 3) {
        onr_tensor *tm = tk_i64(0, NULL, &iters), *x = tk_f32(1, D2, (const float[]){1, 10});
        const onr_tensor *in[] = {tm, x};
        if (onr_session_run(s, 2, NULL, in)) fail_msg("%s", onr_session_errmsg(s));
        const onr_tensor *cat = onr_session_output(s, 0);
        assert_int_equal(onr_tensor_numel(cat), 2 * iters);
        const float *v = onr_tensor_data(cat);
        for (int64_t k = 0; k < iters; k++) { /* front insertion: last iteration first */
            assert_true(v[2 * k] == (float)(iters - k));
            assert_true(v[2 * k + 1] == 10.f * (float)(iters - k));
        }
        assert_int_equal(*(const int64_t *)onr_tensor_data(onr_session_output(s, 1)), iters);
        const onr_tensor *seq = onr_session_output(s, 2);
        assert_int_equal(onr_value_kind(seq), ONR_VALUE_SEQUENCE);
        assert_int_equal(onr_value_count(seq), iters);
        assert_int_equal(onr_tensor_dtype(seq), ONR_FLOAT);
        const onr_tensor *e0 = onr_value_element(seq, 0);
        assert_non_null(e0);
        assert_true(((const float *)onr_tensor_data(e0))[1] == 10.f * (float)iters);
        assert_null(onr_value_element(seq, iters));
        onr_tensor_free(tm), onr_tensor_free(x);
    }
    onr_session_free(s);
}

/* A Loop of M iterations appending x * i to a carried sequence. */
static onr_session *append_loop(void)
{
    pbw body = graph_named("body"), g = {0}, a = {0}, ca = {0};
    pbw_value_info(&body, 11, "i", I64, 0, NULL);
    pbw_value_info(&body, 11, "c", BOOL, 0, NULL);
    pbw_value_info(&body, 11, "s_in", F32, -1, NULL);
    pbw_attr_int(&ca, "to", F32);
    pbw_node(&body, "Cast", "cast", S("i"), S("f"), &ca);
    pbw_node(&body, "Mul", "mul", S("x", "f"), S("xi"), NULL);
    pbw_node(&body, "SequenceInsert", "ins", S("s_in", "xi"), S("s_out"), NULL);
    pbw_node(&body, "Identity", "cid", S("c"), S("c_out"), NULL);
    pbw_value_info(&body, 12, "c_out", BOOL, 0, NULL);
    pbw_value_info(&body, 12, "s_out", F32, -1, NULL);
    pbw_value_info(&g, 11, "M", I64, 0, NULL);
    pbw_value_info(&g, 11, "x", F32, 1, D2);
    pbw_node(&g, "SequenceEmpty", "empty", NULL, S("s0"), NULL);
    pbw_attr_graph(&a, "body", &body);
    pbw_node(&g, "Loop", "loop", S("M", "", "s0"), S("seq"), &a);
    pbw_node(&g, "SequenceLength", "len", S("seq"), S("n"), NULL);
    pbw_value_info(&g, 12, "seq", F32, -1, NULL);
    pbw_value_info(&g, 12, "n", I64, 0, NULL);
    pbw m = pbw_model(&g, 8, 13);
    return open_model(&m);
}

/* Element copies (onr_seq_copy_count) and allocations of one run. */
static void append_run(onr_session *s, int64_t iters, uint64_t *copies, long *allocs)
{
    onr_tensor *tm = tk_i64(0, NULL, &iters), *x = tk_f32(1, D2, (const float[]){1, -2});
    const onr_tensor *in[] = {tm, x};
    uint64_t c0 = onr_seq_copy_count();
    n_allocs = 0;
    counting = 1;
    onr_status st = onr_session_run(s, 2, NULL, in);
    counting = 0;
    *copies = onr_seq_copy_count() - c0;
    *allocs = n_allocs;
    if (st) fail_msg("%s", onr_session_errmsg(s));
    assert_int_equal(*(const int64_t *)onr_tensor_data(onr_session_output(s, 1)), iters);
    const onr_tensor *seq = onr_session_output(s, 0);
    assert_int_equal(onr_value_count(seq), iters);
    for (int64_t k = 0; k < iters; k++) {
        const float *v = onr_tensor_data(onr_value_element(seq, k));
        assert_true(v[0] == (float)k && v[1] == -2.f * (float)k);
    }
    onr_tensor_free(tm), onr_tensor_free(x);
}

/* Appending to a loop-carried sequence is O(element) per iteration: the
 * elements already in the sequence are neither copied nor reallocated (the
 * slot block grows geometrically), so 4x the iterations cost 4x the
 * copies and allocations, not 16x. */
static void test_loop_append_is_linear(void **state)
{
    (void)state;
    onr_session *s = append_loop();
    uint64_t c100, c400;
    long a100, a400;
    append_run(s, 100, &c100, &a100); /* warm: the plan's first layout */
    append_run(s, 100, &c100, &a100);
    append_run(s, 400, &c400, &a400);
    print_message("append loop: 100 iterations %llu copies %ld allocations, 400: %llu, %ld\n",
                  (unsigned long long)c100, a100, (unsigned long long)c400, a400);
    /* one element copy per iteration, slot copies at most 2 per element */
    assert_true(c100 >= 100 && c100 <= 3 * 100 + 16);
    assert_true(c400 >= 400 && c400 <= 3 * 400 + 16);
    assert_true(a400 <= 5 * a100);
    onr_session_free(s);
}

/* Values stay immutable while they share slot blocks: two insertions into
 * the same sequence, an erase of the last element (a prefix) then an
 * insertion into it, and an erase in the middle each see only their own
 * elements. */
static void test_sequence_sharing_keeps_values(void **state)
{
    (void)state;
    pbw g = {0}, ax = {0};
    int64_t zero = 0;
    pbw_init_i64(&g, "zero", 0, NULL, &zero, 1);
    static const char *const names[] = {"a", "b", "c", "d"};
    for (int k = 0; k < 4; k++) pbw_value_info(&g, 11, names[k], F32, 1, D2);
    pbw_node(&g, "SequenceEmpty", "empty", NULL, S("s0"), NULL);
    pbw_node(&g, "SequenceInsert", "i1", S("s0", "a"), S("s1"), NULL);
    pbw_node(&g, "SequenceInsert", "i2", S("s1", "b"), S("s2"), NULL);  /* [a b] */
    pbw_node(&g, "SequenceInsert", "i3", S("s1", "c"), S("s3"), NULL);  /* [a c] */
    pbw_node(&g, "SequenceErase", "e1", S("s2"), S("e"), NULL);         /* [a] */
    pbw_node(&g, "SequenceInsert", "i4", S("e", "d"), S("s4"), NULL);   /* [a d] */
    pbw_node(&g, "SequenceErase", "e2", S("s2", "zero"), S("s5"), NULL); /* [b] */
    pbw_node(&g, "SequenceInsert", "i5", S("s4", "c", "zero"), S("s6"), NULL); /* [c a d] */
    static const char *const seqs[] = {"s1", "s2", "s3", "e", "s4", "s5", "s6"};
    char out[7][8];
    for (int k = 0; k < 7; k++) {
        snprintf(out[k], sizeof out[k], "cat%d", k);
        pbw_attr_int(&ax, "axis", 0); /* pbw_node takes the attributes */
        pbw_node(&g, "ConcatFromSequence", out[k], (const char *[]){seqs[k], NULL},
                 (const char *[]){out[k], NULL}, &ax);
    }
    for (int k = 0; k < 7; k++) pbw_value_info(&g, 12, out[k], F32, -1, NULL);
    pbw m = pbw_model(&g, 8, 13);
    onr_session *s = open_model(&m);
    static const char *const want[] = {"a", "ab", "ac", "a", "ad", "b", "cad"};
    for (int round = 0; round < 3; round++) {
        onr_tensor *in[4];
        for (int k = 0; k < 4; k++)
            in[k] = tk_f32(1, D2, (const float[]){(float)(k + 1), (float)(10 * (k + 1) + round)});
        if (onr_session_run(s, 4, NULL, (const onr_tensor *const *)in))
            fail_msg("%s", onr_session_errmsg(s));
        for (int k = 0; k < 7; k++) {
            const onr_tensor *t = onr_session_output(s, k);
            size_t n = strlen(want[k]);
            assert_int_equal(onr_tensor_numel(t), 2 * (int64_t)n);
            const float *v = onr_tensor_data(t);
            for (size_t j = 0; j < n; j++) {
                int e = want[k][j] - 'a' + 1;
                if (v[2 * j] != (float)e || v[2 * j + 1] != (float)(10 * e + round))
                    fail_msg("%s: element %zu is (%g, %g), expected %c", out[k], j, v[2 * j],
                             v[2 * j + 1], want[k][j]);
            }
        }
        for (int k = 0; k < 4; k++) onr_tensor_free(in[k]);
    }
    onr_session_free(s);
}

/* Sequence and optional graph inputs through the C API, SequenceAt errors,
 * and .pb round trips of both kinds. */
static void test_sequence_optional_api(void **state)
{
    (void)state;
    pbw g = {0};
    pbw_value_info(&g, 11, "pos", I64, 0, NULL);
    pbw_seq_value_info(&g, 11, "seq", F32); /* input 'seq': sequence(tensor(float)) */
    {   /* input 'opt': optional(tensor(float)) */
        pbw tt = {0}, et = {0}, op = {0}, tp = {0}, vi = {0};
        pbw_int(&tt, 1, F32);
        pbw_msg(&et, 1, &tt);
        pbw_msg(&op, 1, &et);
        pbw_msg(&tp, 9, &op);
        pbw_str(&vi, 1, "opt");
        pbw_msg(&vi, 2, &tp);
        pbw_msg(&g, 11, &vi);
    }
    pbw_node(&g, "SequenceAt", "at", S("seq", "pos"), S("elem"), NULL);
    pbw_node(&g, "OptionalHasElement", "has", S("opt"), S("has"), NULL);
    pbw_value_info(&g, 12, "elem", F32, -1, NULL);
    pbw_value_info(&g, 12, "has", BOOL, 0, NULL);
    pbw m = pbw_model(&g, 8, 18);
    onr_session *s = open_model(&m);
    onr_value_info vi;
    assert_int_equal(onr_session_input_info(s, 1, &vi), ONR_OK);
    assert_int_equal(vi.kind, ONR_VALUE_SEQUENCE);
    assert_int_equal(vi.dtype, ONR_FLOAT);
    assert_int_equal(onr_session_input_info(s, 2, &vi), ONR_OK);
    assert_int_equal(vi.kind, ONR_VALUE_OPTIONAL);

    onr_tensor *a = tk_f32(1, D2, (const float[]){1, 2}), *b = tk_f32(0, NULL, (const float[]){7});
    const onr_tensor *items[] = {a, b};
    onr_tensor *seq = onr_sequence_new(ONR_FLOAT, 2, items);
    onr_tensor *none = onr_optional_new(ONR_FLOAT, NULL), *some = onr_optional_new(ONR_FLOAT, a);
    assert_non_null(seq), assert_non_null(none), assert_non_null(some);
    assert_int_equal(onr_value_count(none), 0);
    assert_int_equal(onr_value_count(some), 1);
    assert_null(onr_sequence_new(ONR_INT64, 2, items)); /* wrong element type */
    for (int64_t p = -2; p <= 2; p++) {
        onr_tensor *tp = tk_i64(0, NULL, &p);
        const onr_tensor *in[] = {tp, seq, p & 1 ? some : none};
        onr_status st = onr_session_run(s, 3, NULL, in);
        if (p == 2) {
            assert_int_equal(st, ONR_E_RUNTIME);
            if (!strstr(onr_session_errmsg(s), "position 2 is outside"))
                fail_msg("%s", onr_session_errmsg(s));
        } else {
            if (st) fail_msg("%s", onr_session_errmsg(s));
            const onr_tensor *e = onr_session_output(s, 0);
            assert_int_equal(onr_tensor_numel(e), (p + 2) % 2 == 0 ? 2 : 1);
            assert_int_equal(*(const uint8_t *)onr_tensor_data(onr_session_output(s, 1)), p & 1);
        }
        onr_tensor_free(tp);
    }
    /* a tensor where the sequence goes: refused at the input */
    {
        int64_t p = 0;
        onr_tensor *tp = tk_i64(0, NULL, &p);
        const onr_tensor *in[] = {tp, a, none};
        assert_int_equal(onr_session_run(s, 3, NULL, in), ONR_E_INPUT);
        onr_tensor_free(tp);
    }
    /* .pb round trips */
    char dir[256], path[512], msg[256];
    assert_int_equal(pbw_tmpdir_make(dir, sizeof dir, "control"), 0);
    const onr_tensor *vals[] = {seq, none, some};
    const onr_kind kinds[] = {ONR_VALUE_SEQUENCE, ONR_VALUE_OPTIONAL, ONR_VALUE_OPTIONAL};
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/v%d.pb", dir, k);
        if (onr_tensor_write_pb(vals[k], "v", path, msg, sizeof msg)) fail_msg("write: %s", msg);
        onr_tensor *back = NULL;
        if (onr_value_read_file(path, kinds[k], &back, msg, sizeof msg)) fail_msg("read: %s", msg);
        assert_int_equal(onr_value_kind(back), kinds[k]);
        assert_int_equal(onr_value_count(back), onr_value_count(vals[k]));
        for (int64_t i = 0; i < onr_value_count(back); i++) {
            const onr_tensor *x = onr_value_element(back, i), *y = onr_value_element(vals[k], i);
            assert_int_equal(onr_tensor_numel(x), onr_tensor_numel(y));
            assert_memory_equal(onr_tensor_data(x), onr_tensor_data(y), 4 * (size_t)onr_tensor_numel(x));
        }
        assert_string_equal(onr_tensor_name(back), "v");
        onr_tensor_free(back);
    }
    pbw_tmpdir_remove(dir);
    onr_tensor_free(seq), onr_tensor_free(none), onr_tensor_free(some);
    onr_tensor_free(a), onr_tensor_free(b);
    onr_session_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_trip_counts),
        cmocka_unit_test(test_loop_allocates_nothing_when_shapes_repeat),
        cmocka_unit_test(test_loop_while_growing_shape),
        cmocka_unit_test(test_nested_control_flow),
        cmocka_unit_test(test_if_branch_shapes),
        cmocka_unit_test(test_scan_axes_directions),
        cmocka_unit_test(test_scan8_sequence_lens),
        cmocka_unit_test(test_bad_subgraphs),
        cmocka_unit_test(test_body_error_path),
        cmocka_unit_test(test_loop_scan_shape_change),
        cmocka_unit_test(test_cancel_endless_loop),
        cmocka_unit_test(test_loop_carries_sequence),
        cmocka_unit_test(test_loop_append_is_linear),
        cmocka_unit_test(test_sequence_sharing_keeps_values),
        cmocka_unit_test(test_sequence_optional_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
