/* test_ops_reduce.c - the Reduce* operators and ArgMax/ArgMin: hand-checked
 * values for every op, axes as attribute and as input, negative axes,
 * keepdims, empty axes, noop_with_empty_axes, empty reductions, integer,
 * float16 and double inputs, the float32 fast paths against a reference,
 * thread-count independence, error cases. */
#include "kutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The ONNX documentation's example: shape [3, 2, 2]. */
static const int64_t ex_dims[] = {3, 2, 2};
static const float ex[] = {5, 1, 20, 2, 30, 1, 40, 2, 55, 1, 60, 2};

static void expect_fail(onr_node *n, int64_t opset, int n_in, onr_tensor **in, onr_status code,
                        const char *needle)
{
    onr_tensor *out[1];
    onr_err err = {0};
    onr_status st = tk_run(n, opset, n_in, in, 1, out, 1, &err);
    if (st != code) fail_msg("%s: expected status %d, got %d (%s)", n->op_type, code, st, err.msg);
    if (needle && !strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    tk_free_all(1, out);
}

/* Reduce the example over `axes` at `opset`, passing axes the way that
 * opset wants (attribute or input). */
static onr_tensor *reduce_ex(const char *op, int64_t opset, int naxes, const int64_t *axes,
                             int64_t keepdims, int input_form)
{
    onr_node *n = tk_node(op);
    if (keepdims >= 0) tk_attr_int(n, "keepdims", keepdims);
    onr_tensor *in[2] = {tk_f32(3, ex_dims, ex), NULL};
    int n_in = 1;
    if (input_form) {
        int64_t d = naxes;
        if (naxes >= 0) in[1] = tk_i64(1, &d, axes);
        n_in = 2;
    } else if (naxes >= 0) {
        tk_attr_ints(n, "axes", naxes, axes);
    }
    onr_tensor *y = tk_run1(n, opset, n_in, in, 1);
    tk_free_all(2, in);
    tk_node_free(n);
    return y;
}

typedef struct excase {
    const char *op;
    int axes_input_since;
    float ax1[6];  /* axes [1], keepdims 1: shape [3, 1, 2] */
    float all;     /* all axes */
} excase;

static const excase cases[] = {
    {"ReduceSum", 13, {25, 3, 70, 3, 115, 3}, 219},
    {"ReduceMean", 18, {12.5f, 1.5f, 35, 1.5f, 57.5f, 1.5f}, 18.25f},
    {"ReduceMax", 18, {20, 2, 40, 2, 60, 2}, 60},
    {"ReduceMin", 18, {5, 1, 30, 1, 55, 1}, 1},
    {"ReduceProd", 18, {100, 2, 1200, 2, 3300, 2}, 3.168e9f},
    {"ReduceL1", 18, {25, 3, 70, 3, 115, 3}, 219},
    {"ReduceL2", 18, {20.615528f, 2.236068f, 50, 2.236068f, 81.394103f, 2.236068f}, 97.800818f},
    {"ReduceLogSum", 18, {3.2188758f, 1.0986123f, 4.2484951f, 1.0986123f, 4.7449321f, 1.0986123f}, 5.3890717f},
    {"ReduceLogSumExp", 18, {20.000000306f, 2.3132617f, 40.0000454f, 2.3132617f, 60.0067153f, 2.3132617f}, 60.0067153f},
    {"ReduceSumSquare", 18, {425, 5, 2500, 5, 6625, 5}, 9565},
};

static void test_reduce_examples(void **state)
{
    (void)state;
    const int64_t ax1[] = {1}, axn[] = {-2}, d312[] = {3, 1, 2}, d32[] = {3, 2};
    const int64_t d111[] = {1, 1, 1};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const excase *k = &cases[c];
        float all = k->all;
        int64_t opsets[] = {1, 11, 13, 18, 20};
        for (int oi = 0; oi < 5; oi++) {
            int64_t opset = opsets[oi];
            int input_form = opset >= k->axes_input_since;
            onr_tensor *y = reduce_ex(k->op, opset, 1, ax1, -1, input_form);
            tk_assert_shape(y, 3, d312);
            tk_assert_close_f32(y, k->ax1, 6, 2e-6f, 1e-6f);
            onr_tensor_free(y);
            /* negative axis, keepdims 0 */
            y = reduce_ex(k->op, opset, 1, axn, 0, input_form);
            tk_assert_shape(y, 2, d32);
            tk_assert_close_f32(y, k->ax1, 6, 2e-6f, 1e-6f);
            onr_tensor_free(y);
            /* no axes: reduce everything */
            y = reduce_ex(k->op, opset, -1, NULL, 1, input_form);
            tk_assert_shape(y, 3, d111);
            tk_assert_close_f32(y, &all, 1, 2e-6f, 1e-6f);
            onr_tensor_free(y);
            y = reduce_ex(k->op, opset, -1, NULL, 0, input_form);
            tk_assert_shape(y, 0, NULL);
            tk_assert_close_f32(y, &all, 1, 2e-6f, 1e-6f);
            onr_tensor_free(y);
        }
    }
}

/* Empty axes input: reduce all, or identity with noop_with_empty_axes. */
static void test_reduce_empty_axes_noop(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t opset = cases[c].axes_input_since;
        float all = cases[c].all;
        for (int noop = 0; noop <= 1; noop++) {
            onr_node *n = tk_node(cases[c].op);
            tk_attr_int(n, "noop_with_empty_axes", noop);
            int64_t zero = 0;
            onr_tensor *in[] = {tk_f32(3, ex_dims, ex), tk_i64(1, &zero, NULL)};
            onr_tensor *y = tk_run1(n, opset, 2, in, 1);
            if (noop) {
                tk_assert_shape(y, 3, ex_dims);
                tk_assert_close_f32(y, ex, 12, 0, 0);
            } else {
                tk_assert_close_f32(y, &all, 1, 2e-6f, 1e-6f);
            }
            onr_tensor_free(y);
            /* an omitted axes input behaves the same */
            onr_tensor *in1[] = {in[0], NULL};
            y = tk_run1(n, opset, 2, in1, 1);
            assert_int_equal(y->numel, noop ? 12 : 1);
            onr_tensor_free(y);
            tk_free_all(2, in);
            tk_node_free(n);
        }
    }
}

static void test_reduce_multi_axes(void **state)
{
    (void)state;
    /* axes {0, 2} of [3, 2, 2]: a general (two reduced groups) layout */
    const int64_t axes[] = {2, 0}, d[] = {1, 2, 1};
    const float esum[] = {5 + 1 + 30 + 1 + 55 + 1, 20 + 2 + 40 + 2 + 60 + 2};
    onr_tensor *y = reduce_ex("ReduceSum", 11, 2, axes, 1, 0);
    tk_assert_shape(y, 3, d);
    tk_assert_close_f32(y, esum, 2, 0, 0);
    onr_tensor_free(y);
    const float emax[] = {55, 60};
    y = reduce_ex("ReduceMax", 18, 2, axes, 1, 1);
    tk_assert_close_f32(y, emax, 2, 0, 0);
    onr_tensor_free(y);
    const float else_[] = {55, 60};
    y = reduce_ex("ReduceLogSumExp", 13, 2, axes, 0, 0);
    tk_assert_shape(y, 1, (const int64_t[]){2});
    tk_assert_close_f32(y, else_, 2, 1e-6f, 0);
    onr_tensor_free(y);
}

/* Reference for the float32 paths: reduce [outer, R, inner] along R. */
static void ref_reduce(const char *op, const float *x, float *y, int64_t outer, int64_t R,
                       int64_t inner)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < inner; c++) {
            double s = 0, mx = -INFINITY, mn = INFINITY, sa = 0, sq = 0, p = 1;
            for (int64_t r = 0; r < R; r++) {
                double v = x[(o * R + r) * inner + c];
                s += v;
                sa += fabs(v);
                sq += v * v;
                p *= v;
                mx = v > mx ? v : mx;
                mn = v < mn ? v : mn;
            }
            double lse = 0;
            for (int64_t r = 0; r < R; r++) lse += exp(x[(o * R + r) * inner + c] - mx);
            double v = !strcmp(op, "ReduceSum")         ? s
                       : !strcmp(op, "ReduceMean")      ? s / (double)R
                       : !strcmp(op, "ReduceMax")       ? mx
                       : !strcmp(op, "ReduceMin")       ? mn
                       : !strcmp(op, "ReduceProd")      ? p
                       : !strcmp(op, "ReduceL1")        ? sa
                       : !strcmp(op, "ReduceL2")        ? sqrt(sq)
                       : !strcmp(op, "ReduceLogSum")    ? log(s)
                       : !strcmp(op, "ReduceLogSumExp") ? mx + log(lse)
                                                        : sq;
            y[o * inner + c] = (float)v;
        }
}

/* [B, S, 768] over the last axis (the LayerNorm pattern), over a middle axis,
 * and over the first axis; 1 and 2 threads must agree bit for bit. */
static void test_reduce_f32_paths(void **state)
{
    (void)state;
    int64_t d[] = {4, 24, 770}; /* 770: chunk tails in both layouts */
    onr_tensor *x = tk_rand_f32(3, d, 99);
    float *e = malloc(sizeof(float) * 24 * 770); /* the largest output: axis 0 */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *op = cases[c].op;
        if (!strcmp(op, "ReduceLogSum")) continue; /* log of negative sums */
        for (int ax = 0; ax < 3; ax++) {
            int64_t axes[] = {ax - 3};
            onr_node *n = tk_node(op);
            int64_t one = 1;
            onr_tensor *in[] = {x, tk_i64(1, &one, axes)};
            int64_t opset = cases[c].axes_input_since;
            onr_tensor *y1 = tk_run1(n, opset, 2, in, 1), *y2 = tk_run1(n, opset, 2, in, 2);
            assert_memory_equal(y1->data, y2->data, (size_t)y1->numel * 4);
            int64_t outer = 1, inner = 1;
            for (int k = 0; k < ax; k++) outer *= d[k];
            for (int k = ax + 1; k < 3; k++) inner *= d[k];
            ref_reduce(op, x->data, e, outer, d[ax], inner);
            float rtol = !strcmp(op, "ReduceProd") ? 1e-4f : 1e-5f;
            tk_assert_close_f32(y1, e, y1->numel, rtol, 1e-6f);
            onr_tensor_free(y1);
            onr_tensor_free(y2);
            onr_tensor_free(in[1]);
            tk_node_free(n);
        }
    }
    free(e);
    onr_tensor_free(x);
}

/* Reducing over a zero-sized axis gives each op's identity. */
static void test_reduce_empty_set(void **state)
{
    (void)state;
    int64_t d[] = {2, 0, 3}, ed[] = {2, 1, 3};
    const struct { const char *op; float v; } ids[] = {
        {"ReduceSum", 0}, {"ReduceProd", 1}, {"ReduceMax", -INFINITY}, {"ReduceMin", INFINITY},
        {"ReduceL1", 0}, {"ReduceL2", 0}, {"ReduceSumSquare", 0}, {"ReduceLogSum", -INFINITY},
        {"ReduceLogSumExp", -INFINITY}, {"ReduceMean", NAN},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        onr_node *n = tk_node(ids[i].op);
        int64_t one = 1, ax = 1;
        onr_tensor *in[] = {tk_f32(3, d, NULL), tk_i64(1, &one, &ax)};
        onr_tensor *y = tk_run1(n, 18, 2, in, 1);
        tk_assert_shape(y, 3, ed);
        float e[6];
        for (int k = 0; k < 6; k++) e[k] = ids[i].v;
        tk_assert_close_f32(y, e, 6, 0, 0);
        onr_tensor_free(y);
        tk_free_all(2, in);
        tk_node_free(n);
    }
    /* int32 max over an empty axis: the type's minimum */
    onr_node *n = tk_node("ReduceMax");
    int64_t one = 1, ax = 1;
    onr_tensor *in[] = {tk_typed(ONR_INT32, 3, d, NULL), tk_i64(1, &one, &ax)};
    onr_tensor *y = tk_run1(n, 18, 2, in, 1);
    for (int k = 0; k < 6; k++) assert_int_equal(((int32_t *)y->data)[k], INT32_MIN);
    onr_tensor_free(y);
    tk_free_all(2, in);
    tk_node_free(n);
}

static void test_reduce_lse_large(void **state)
{
    (void)state;
    int64_t d[] = {3, 2};
    const float x[] = {1000, 1000, -1000, -1000, -INFINITY, INFINITY};
    const float e[] = {1000.6931472f, -999.3068528f, INFINITY};
    onr_node *n = tk_node("ReduceLogSumExp");
    tk_attr_ints(n, "axes", 1, (const int64_t[]){1});
    tk_attr_int(n, "keepdims", 0);
    onr_tensor *in[] = {tk_f32(2, d, x)};
    onr_tensor *y = tk_run1(n, 13, 1, in, 1);
    tk_assert_close_f32(y, e, 3, 1e-7f, 0);
    onr_tensor_free(y);
    tk_free_all(1, in);
    tk_node_free(n);
}

static void test_reduce_int_types(void **state)
{
    (void)state;
    int64_t d[] = {2, 2}, one = 1, ax1 = 1;
    /* int64: exact beyond 2^53 */
    const int64_t big[] = {(1ll << 60) + 1, 2, -7, 0};
    onr_node *n = tk_node("ReduceSum");
    tk_attr_int(n, "keepdims", 0);
    onr_tensor *in[] = {tk_i64(2, d, big), tk_i64(1, &one, &ax1)};
    onr_tensor *y = tk_run1(n, 13, 2, in, 1);
    tk_assert_eq_i64(y, (const int64_t[]){(1ll << 60) + 3, -7}, 2);
    onr_tensor_free(y);
    tk_node_free(n);
    /* mean truncates toward zero like the reference's astype */
    n = tk_node("ReduceMean");
    tk_attr_int(n, "keepdims", 0);
    y = tk_run1(n, 18, 2, in, 1);
    tk_assert_eq_i64(y, (const int64_t[]){((1ll << 60) + 3) / 2, -3}, 2);
    onr_tensor_free(y);
    tk_node_free(n);
    tk_free_all(2, in);
    /* int32 prod / L1 / sum square / L2 */
    const int32_t i32[] = {-3, 4, 5, -6};
    onr_tensor *ii[] = {tk_i32(2, d, i32)};
    const struct { const char *op; int32_t e[2]; } ic[] = {
        {"ReduceProd", {-12, -30}}, {"ReduceL1", {7, 11}}, {"ReduceSumSquare", {25, 61}},
        {"ReduceL2", {5, 7}}, {"ReduceMin", {-3, -6}}, {"ReduceMax", {4, 5}},
        {"ReduceLogSum", {0, 0}} /* log(1) = 0, log(-1) = NaN -> 0 */,
    };
    for (size_t k = 0; k < sizeof ic / sizeof ic[0]; k++) {
        n = tk_node(ic[k].op);
        tk_attr_ints(n, "axes", 1, (const int64_t[]){-1});
        y = tk_run1(n, 13, 1, ii, 1);
        assert_int_equal(y->dtype, ONR_INT32);
        assert_int_equal(((int32_t *)y->data)[0], ic[k].e[0]);
        assert_int_equal(((int32_t *)y->data)[1], ic[k].e[1]);
        onr_tensor_free(y);
        tk_node_free(n);
    }
    tk_free_all(1, ii);
    /* uint8 max/min compare unsigned; int8 sum wraps like the type */
    const uint8_t u8[] = {200, 100, 255, 0};
    onr_tensor *iu[] = {tk_typed(ONR_UINT8, 2, d, u8)};
    n = tk_node("ReduceMax");
    tk_attr_int(n, "keepdims", 0);
    y = tk_run1(n, 12, 1, iu, 1);
    assert_int_equal(((uint8_t *)y->data)[0], 255);
    onr_tensor_free(y);
    tk_node_free(n);
    tk_free_all(1, iu);
    const int8_t i8[] = {100, 100, -128, -1};
    onr_tensor *i8in[] = {tk_typed(ONR_INT8, 2, d, i8)};
    n = tk_node("ReduceSum");
    tk_attr_ints(n, "axes", 1, (const int64_t[]){1});
    tk_attr_int(n, "keepdims", 0);
    y = tk_run1(n, 11, 1, i8in, 1);
    assert_int_equal(((int8_t *)y->data)[0], -56);
    assert_int_equal(((int8_t *)y->data)[1], 127);
    onr_tensor_free(y);
    tk_node_free(n);
    tk_free_all(1, i8in);
    /* bool ReduceMax / ReduceMin (opset 20) */
    const uint8_t b[] = {0, 1, 0, 0};
    onr_tensor *ib[] = {tk_bool(2, d, b)};
    n = tk_node("ReduceMax");
    y = tk_run1(n, 20, 1, ib, 1);
    assert_int_equal(y->dtype, ONR_BOOL);
    assert_int_equal(((uint8_t *)y->data)[0], 1);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("ReduceMin");
    y = tk_run1(n, 20, 1, ib, 1);
    assert_int_equal(((uint8_t *)y->data)[0], 0);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("ReduceSum");
    expect_fail(n, 13, 1, ib, ONR_E_UNSUPPORTED, "bool");
    tk_node_free(n);
    tk_free_all(1, ib);
}

static void test_reduce_fp16_double(void **state)
{
    (void)state;
    uint16_t h[12];
    double dv[12];
    for (int i = 0; i < 12; i++) {
        h[i] = onr_float_to_half(ex[i]);
        dv[i] = ex[i];
    }
    const int64_t axes[] = {1};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        onr_node *n = tk_node(cases[c].op);
        tk_attr_ints(n, "axes", 1, axes);
        onr_tensor *ih[] = {tk_typed(ONR_FLOAT16, 3, ex_dims, h)};
        onr_tensor *id[] = {tk_typed(ONR_DOUBLE, 3, ex_dims, dv)};
        int64_t opset = cases[c].axes_input_since == 13 ? 12 : 17; /* axes still an attribute */
        onr_tensor *yh = tk_run1(n, opset, 1, ih, 1);
        onr_tensor *yd = tk_run1(n, opset, 1, id, 1);
        assert_int_equal(yh->dtype, ONR_FLOAT16);
        assert_int_equal(yd->dtype, ONR_DOUBLE);
        for (int i = 0; i < 6; i++) {
            float e = cases[c].ax1[i];
            float gh = onr_half_to_float(((uint16_t *)yh->data)[i]);
            double gd = ((double *)yd->data)[i];
            if (fabsf(gh - e) > 1e-3f * fabsf(e) + 1e-3f) fail_msg("%s f16[%d]: %g vs %g", cases[c].op, i, gh, e);
            if (fabs(gd - e) > 1e-6 * fabs(e)) fail_msg("%s f64[%d]: %g vs %g", cases[c].op, i, gd, e);
        }
        onr_tensor_free(yh);
        onr_tensor_free(yd);
        tk_free_all(1, ih);
        tk_free_all(1, id);
        tk_node_free(n);
    }
}

static void test_reduce_errors(void **state)
{
    (void)state;
    onr_tensor *x = tk_f32(3, ex_dims, ex);
    int64_t one = 1, two = 2;
    /* axes attribute where an input is expected, and the reverse */
    onr_node *n = tk_node("ReduceMean");
    tk_attr_ints(n, "axes", 1, (const int64_t[]){0});
    onr_tensor *in[] = {x, NULL};
    expect_fail(n, 18, 1, in, ONR_E_MODEL, "axes is an input");
    tk_node_free(n);
    n = tk_node("ReduceMean");
    onr_tensor *ax = tk_i64(1, &one, (const int64_t[]){0});
    onr_tensor *in2[] = {x, ax};
    expect_fail(n, 13, 2, in2, ONR_E_MODEL, "attribute before opset 18");
    onr_tensor_free(ax);
    tk_node_free(n);
    /* out of range, repeated */
    n = tk_node("ReduceSum");
    ax = tk_i64(1, &one, (const int64_t[]){3});
    onr_tensor *in3[] = {x, ax};
    expect_fail(n, 13, 2, in3, ONR_E_MODEL, "axis 3 is out of range");
    onr_tensor_free(ax);
    ax = tk_i64(1, &two, (const int64_t[]){1, -2});
    in3[1] = ax;
    expect_fail(n, 13, 2, in3, ONR_E_MODEL, "repeated");
    onr_tensor_free(ax);
    /* axes of the wrong type / rank */
    ax = tk_f32(1, &one, (const float[]){0});
    in3[1] = ax;
    expect_fail(n, 13, 2, in3, ONR_E_MODEL, "int64 or int32");
    onr_tensor_free(ax);
    int64_t d11[] = {1, 1};
    ax = tk_i64(2, d11, (const int64_t[]){0});
    in3[1] = ax;
    expect_fail(n, 13, 2, in3, ONR_E_MODEL, "1-D");
    onr_tensor_free(ax);
    tk_node_free(n);
    /* axes input of unknown data defers the shape fn (run fails cleanly) */
    n = tk_node("ReduceSum");
    ax = tk_i64(1, &one, (const int64_t[]){0});
    void *keep = ax->data;
    ax->data = NULL;
    in3[1] = ax;
    expect_fail(n, 13, 2, in3, ONR_E_RUNTIME, NULL);
    ax->data = keep;
    onr_tensor_free(ax);
    tk_node_free(n);
    /* strings are not numbers */
    n = tk_node("ReduceMax");
    onr_tensor *s = tk_typed(ONR_STRING, 1, &one, NULL);
    onr_tensor *in4[] = {s};
    expect_fail(n, 18, 1, in4, ONR_E_UNSUPPORTED, "string");
    onr_tensor_free(s);
    tk_node_free(n);
    onr_tensor_free(x);
}

/* The axes input is a shape input: a constant one (as in most models) is
 * read by reshape like an activation and nothing is consumed; an axes
 * attribute longer than any rank is a create error. */
static void test_reduce_axes_const_input(void **state)
{
    (void)state;
    int64_t one = 1, zero = 0, two = 2;
    const int64_t d312[] = {3, 1, 2}, d1[] = {1};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        onr_node *n = tk_node(cases[c].op);
        onr_tensor *in[] = {tk_f32(3, ex_dims, ex), tk_i64(1, &one, (const int64_t[]){1})};
        onr_tensor *y[1];
        assert_int_equal(tk_run_const(n, cases[c].axes_input_since, 2, in, 0x2u, 1, y, 1, NULL),
                         ONR_OK);
        assert_int_equal(tk_last_consumed, 0);
        tk_assert_shape(y[0], 3, d312);
        tk_assert_close_f32(y[0], cases[c].ax1, 6, 2e-6f, 1e-6f);
        tk_free_all(1, y);
        /* int32 axes [0, 2], keepdims 0 */
        onr_tensor *a32 = tk_i32(1, &two, (const int32_t[]){0, -1});
        onr_tensor *in2[] = {in[0], a32};
        tk_attr_int(n, "keepdims", 0);
        assert_int_equal(tk_run_const(n, cases[c].axes_input_since, 2, in2, 0x2u, 1, y, 1, NULL),
                         ONR_OK);
        tk_assert_shape(y[0], 1, (const int64_t[]){2});
        tk_free_all(1, y);
        onr_tensor_free(a32);
        tk_node_free(n);
        /* a constant empty axes input with noop_with_empty_axes: a copy */
        n = tk_node(cases[c].op);
        tk_attr_int(n, "noop_with_empty_axes", 1);
        onr_tensor *ae = tk_i64(1, &zero, NULL);
        onr_tensor *in3[] = {in[0], ae};
        assert_int_equal(tk_run_const(n, cases[c].axes_input_since, 2, in3, 0x3u, 1, y, 1, NULL),
                         ONR_OK);
        assert_int_equal(tk_last_consumed, 0);
        tk_assert_close_f32(y[0], ex, 12, 0, 0);
        tk_free_all(1, y);
        onr_tensor_free(ae);
        tk_node_free(n);
        tk_free_all(2, in);
    }
    /* 13 attribute axes: more than ONR_MAX_RANK */
    int64_t many[13] = {0};
    onr_node *n = tk_node("ReduceMax");
    tk_attr_ints(n, "axes", 13, many);
    onr_tensor *x[] = {tk_f32(1, d1, (const float[]){1})};
    expect_fail(n, 13, 1, x, ONR_E_MODEL, "axes has 13 values");
    tk_free_all(1, x);
    tk_node_free(n);
}

/* ---- ArgMax / ArgMin ----------------------------------------------------- */

static void test_argmax_argmin(void **state)
{
    (void)state;
    int64_t d[] = {2, 3};
    const float x[] = {2, 5, 5, 7, 1, 7};
    struct {
        const char *op;
        int64_t axis, keepdims, last;
        int64_t rank, dims[2], e[3];
    } cs[] = {
        {"ArgMax", 1, 1, 0, 2, {2, 1}, {1, 0}},
        {"ArgMax", -1, 0, 1, 1, {2}, {2, 2}},
        {"ArgMax", 0, 1, 0, 2, {1, 3}, {1, 0, 1}},
        {"ArgMin", 1, 0, 0, 1, {2}, {0, 1}},
        {"ArgMin", -2, 0, 1, 1, {3}, {0, 1, 0}},
        {"ArgMin", 0, 1, 0, 2, {1, 3}, {0, 1, 0}},
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        onr_node *n = tk_node(cs[k].op);
        tk_attr_int(n, "axis", cs[k].axis);
        tk_attr_int(n, "keepdims", cs[k].keepdims);
        tk_attr_int(n, "select_last_index", cs[k].last);
        onr_tensor *in[] = {tk_f32(2, d, x)};
        onr_tensor *y = tk_run1(n, 13, 1, in, 1);
        tk_assert_shape(y, (int)cs[k].rank, cs[k].dims);
        tk_assert_eq_i64(y, cs[k].e, y->numel);
        onr_tensor_free(y);
        /* select_last_index does not exist before opset 12 */
        if (cs[k].last) {
            y = tk_run1(n, 11, 1, in, 1);
            onr_tensor_free(y);
        }
        tk_free_all(1, in);
        tk_node_free(n);
    }
    /* default axis 0, keepdims 1; int64 beyond 2^53 and uint64 compare exactly */
    const int64_t big[] = {(1ll << 60) + 1, -5, (1ll << 60) + 2, -4};
    int64_t d22[] = {2, 2};
    onr_node *n = tk_node("ArgMax");
    onr_tensor *ib[] = {tk_i64(2, d22, big)};
    onr_tensor *y = tk_run1(n, 13, 1, ib, 1);
    tk_assert_shape(y, 2, (const int64_t[]){1, 2});
    tk_assert_eq_i64(y, (const int64_t[]){1, 1}, 2);
    onr_tensor_free(y);
    tk_free_all(1, ib);
    tk_node_free(n);
    n = tk_node("ArgMax");
    tk_attr_int(n, "axis", 1);
    const uint64_t u[] = {1ull << 63, 1, 5, (1ull << 63) + 1};
    onr_tensor *iu[] = {tk_typed(ONR_UINT64, 2, d22, u)};
    y = tk_run1(n, 13, 1, iu, 1);
    tk_assert_eq_i64(y, (const int64_t[]){0, 1}, 2);
    onr_tensor_free(y);
    tk_free_all(1, iu);
    tk_node_free(n);
    /* NaN is the extreme for both; first NaN by default, last with select_last_index */
    const float xn[] = {1, NAN, 3, NAN};
    int64_t d4[] = {4};
    for (int last = 0; last <= 1; last++)
        for (int mn = 0; mn <= 1; mn++) {
            n = tk_node(mn ? "ArgMin" : "ArgMax");
            tk_attr_int(n, "select_last_index", last);
            onr_tensor *in[] = {tk_f32(1, d4, xn)};
            y = tk_run1(n, 13, 1, in, 1);
            assert_int_equal(((int64_t *)y->data)[0], last ? 3 : 1);
            onr_tensor_free(y);
            tk_free_all(1, in);
            tk_node_free(n);
        }
}

/* Column layout (axis 0 of a wide matrix), chunk tails, threads. */
static void test_argmax_columns(void **state)
{
    (void)state;
    int64_t d[] = {40, 1030};
    onr_tensor *x = tk_rand_f32(2, d, 5);
    onr_node *n = tk_node("ArgMin");
    tk_attr_int(n, "keepdims", 0);
    onr_tensor *in[] = {x};
    onr_tensor *y1 = tk_run1(n, 13, 1, in, 1), *y2 = tk_run1(n, 13, 1, in, 2);
    assert_memory_equal(y1->data, y2->data, 1030 * 8);
    const float *p = x->data;
    for (int64_t c = 0; c < 1030; c++) {
        int64_t bi = 0;
        for (int64_t r = 1; r < 40; r++)
            if (p[r * 1030 + c] < p[bi * 1030 + c]) bi = r;
        assert_int_equal(((int64_t *)y1->data)[c], bi);
    }
    onr_tensor_free(y1);
    onr_tensor_free(y2);
    tk_node_free(n);
    onr_tensor_free(x);
}

static void test_argmax_errors(void **state)
{
    (void)state;
    int64_t d[] = {2, 0};
    onr_node *n = tk_node("ArgMax");
    tk_attr_int(n, "axis", 1);
    onr_tensor *in[] = {tk_f32(2, d, NULL)};
    expect_fail(n, 13, 1, in, ONR_E_MODEL, "empty axis");
    tk_free_all(1, in);
    onr_tensor *is[] = {tk_f32(0, NULL, (const float[]){1})};
    expect_fail(n, 13, 1, is, ONR_E_MODEL, "scalar");
    tk_free_all(1, is);
    tk_node_free(n);
    n = tk_node("ArgMin");
    tk_attr_int(n, "axis", -3);
    int64_t d2[] = {2, 2};
    onr_tensor *i2[] = {tk_f32(2, d2, (const float[]){1, 2, 3, 4})};
    expect_fail(n, 13, 1, i2, ONR_E_MODEL, "axis -3");
    tk_free_all(1, i2);
    tk_node_free(n);
}

/* A zero dim lets the others be huge: outputs of zero size finish at once,
 * outputs too large to allocate fail cleanly. */
static void test_reduce_empty_huge_dims(void **state)
{
    (void)state;
    int64_t d[] = {1ll << 62, 0, 1ll << 62}, one = 1;
    for (int64_t ax = 0; ax < 3; ax++) {
        onr_node *n = tk_node("ReduceLogSumExp");
        onr_tensor *in[] = {tk_f32(3, d, NULL), tk_i64(1, &one, &ax)};
        if (ax == 1) {
            expect_fail(n, 18, 2, in, ONR_E_NOMEM, NULL);
        } else {
            onr_tensor *y = tk_run1(n, 18, 2, in, 2);
            assert_int_equal(y->numel, 0);
            onr_tensor_free(y);
        }
        tk_free_all(2, in);
        tk_node_free(n);
        n = tk_node("ArgMax");
        tk_attr_int(n, "axis", ax);
        onr_tensor *ia[] = {tk_f32(3, d, NULL)};
        if (ax == 1) {
            expect_fail(n, 13, 1, ia, ONR_E_MODEL, "empty axis");
        } else {
            onr_tensor *y = tk_run1(n, 13, 1, ia, 2);
            assert_int_equal(y->numel, 0);
            onr_tensor_free(y);
        }
        tk_free_all(1, ia);
        tk_node_free(n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reduce_examples),
        cmocka_unit_test(test_reduce_empty_axes_noop),
        cmocka_unit_test(test_reduce_multi_axes),
        cmocka_unit_test(test_reduce_f32_paths),
        cmocka_unit_test(test_reduce_empty_set),
        cmocka_unit_test(test_reduce_lse_large),
        cmocka_unit_test(test_reduce_int_types),
        cmocka_unit_test(test_reduce_fp16_double),
        cmocka_unit_test(test_reduce_errors),
        cmocka_unit_test(test_reduce_axes_const_input),
        cmocka_unit_test(test_argmax_argmin),
        cmocka_unit_test(test_argmax_columns),
        cmocka_unit_test(test_argmax_errors),
        cmocka_unit_test(test_reduce_empty_huge_dims),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
