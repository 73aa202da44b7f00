/* test_ops_nn.c - Softmax / LogSoftmax / Hardmax and the normalization
 * operators (Batch, Instance, Group, Layer, Lp): hand-checked values, both
 * opset forms where semantics changed, other float types, error cases. */
#include "kutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_OF(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

/* Reference softmax family over [outer, n, inner] in double. kind: 0 soft,
 * 1 log, 2 hard. */
static void ref_softmax(int kind, const float *x, float *y, int64_t outer, int64_t n, int64_t inner)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < inner; c++) {
            const float *px = x + o * n * inner + c;
            float *py = y + o * n * inner + c;
            double m = px[0];
            int64_t im = 0;
            for (int64_t r = 1; r < n; r++)
                if (px[r * inner] > m) {
                    m = px[r * inner];
                    im = r;
                }
            double s = 0;
            for (int64_t r = 0; r < n; r++) s += exp(px[r * inner] - m);
            for (int64_t r = 0; r < n; r++) {
                double v = px[r * inner] - m;
                py[r * inner] = (float)(kind == 0 ? exp(v) / s : kind == 1 ? v - log(s) : (r == im));
            }
        }
}

static const char *sm_names[] = {"Softmax", "LogSoftmax", "Hardmax"};

/* ---- Softmax family ------------------------------------------------------ */

static void test_softmax_hand(void **state)
{
    (void)state;
    int64_t d[] = {2, 3};
    const float x[] = {1, 2, 3, 0, 0, 0};
    const float e_soft[] = {0.09003057f, 0.24472847f, 0.66524096f, 1.f / 3, 1.f / 3, 1.f / 3};
    const float e_log[] = {-2.40760596f, -1.40760596f, -0.40760596f, -1.09861229f, -1.09861229f, -1.09861229f};
    const float e_hard[] = {0, 0, 1, 1, 0, 0};
    const float *exp_[] = {e_soft, e_log, e_hard};
    for (int k = 0; k < 3; k++)
        for (int64_t opset = 1; opset <= 13; opset += 12) { /* 2-D: both forms agree */
            onr_node *n = tk_node(sm_names[k]);
            onr_tensor *in[] = {tk_f32(2, d, x)};
            onr_tensor *y = tk_run1(n, opset, 1, in, 1);
            tk_assert_shape(y, 2, d);
            tk_assert_close_f32(y, exp_[k], 6, 1e-6f, 1e-7f);
            onr_tensor_free(y);
            tk_free_all(1, in);
            tk_node_free(n);
        }
}

/* The axis semantics change at opset 13: the 3-D case differs. */
static void test_softmax_axis_semantics(void **state)
{
    (void)state;
    int64_t d[] = {2, 3, 4};
    for (int k = 0; k < 3; k++) {
        onr_tensor *x = tk_rand_f32(3, d, 7 + k);
        float e[24];
        /* opset 11, default axis 1: coerced to [2, 12], one row per batch */
        onr_node *n = tk_node(sm_names[k]);
        onr_tensor *in[] = {x};
        onr_tensor *y = tk_run1(n, 11, 1, in, 1);
        ref_softmax(k, x->data, e, 2, 12, 1);
        tk_assert_shape(y, 3, d);
        tk_assert_close_f32(y, e, 24, 1e-5f, 1e-6f);
        onr_tensor_free(y);
        /* opset 13, default axis -1: along the last dim only */
        y = tk_run1(n, 13, 1, in, 1);
        ref_softmax(k, x->data, e, 6, 4, 1);
        tk_assert_close_f32(y, e, 24, 1e-5f, 1e-6f);
        onr_tensor_free(y);
        tk_node_free(n);
        /* opset 13, axis 1 (strided path) and -2 (same axis) */
        for (int64_t ax = 1; ax >= -2; ax -= 3) {
            n = tk_node(sm_names[k]);
            tk_attr_int(n, "axis", ax);
            y = tk_run1(n, 13, 1, in, 1);
            ref_softmax(k, x->data, e, 2, 3, 4);
            tk_assert_close_f32(y, e, 24, 1e-5f, 1e-6f);
            onr_tensor_free(y);
            tk_node_free(n);
        }
        /* opset 11, axis 2 and -1: rows of 4 */
        n = tk_node(sm_names[k]);
        tk_attr_int(n, "axis", -1);
        y = tk_run1(n, 11, 1, in, 1);
        ref_softmax(k, x->data, e, 6, 4, 1);
        tk_assert_close_f32(y, e, 24, 1e-5f, 1e-6f);
        onr_tensor_free(y);
        tk_node_free(n);
        /* opset 11, axis 0: the whole tensor is one row */
        n = tk_node(sm_names[k]);
        tk_attr_int(n, "axis", 0);
        y = tk_run1(n, 11, 1, in, 1);
        ref_softmax(k, x->data, e, 1, 24, 1);
        tk_assert_close_f32(y, e, 24, 1e-5f, 1e-6f);
        onr_tensor_free(y);
        tk_node_free(n);
        onr_tensor_free(x);
    }
}

static void test_softmax_large_values(void **state)
{
    (void)state;
    int64_t d[] = {2, 4};
    const float x[] = {1000, 1001, 1002, 1003, -1000, -1001, -1002, 3.4e38f};
    const float e_soft[] = {0.0320586f, 0.08714432f, 0.23688282f, 0.64391426f, 0, 0, 0, 1};
    const float e_log[] = {-3.4401897f, -2.4401897f, -1.4401897f, -0.4401897f, -3.4e38f, -3.4e38f, -3.4e38f, 0};
    onr_node *n = tk_node("Softmax");
    onr_tensor *in[] = {tk_f32(2, d, x)};
    onr_tensor *y = tk_run1(n, 13, 1, in, 1);
    tk_assert_close_f32(y, e_soft, 8, 1e-5f, 1e-7f);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("LogSoftmax");
    y = tk_run1(n, 13, 1, in, 1);
    tk_assert_close_f32(y, e_log, 8, 1e-5f, 1e-6f);
    onr_tensor_free(y);
    /* the same along a strided axis */
    int64_t dt[] = {4, 2};
    const float xt[] = {1000, -1000, 1001, -1001, 1002, -1002, 1003, 3.4e38f};
    const float et[] = {-3.4401897f, -3.4e38f, -2.4401897f, -3.4e38f, -1.4401897f, -3.4e38f, -0.4401897f, 0};
    onr_tensor *int_[] = {tk_f32(2, dt, xt)};
    tk_attr_int(n, "axis", 0);
    y = tk_run1(n, 13, 1, int_, 1);
    tk_assert_close_f32(y, et, 8, 1e-5f, 1e-6f);
    onr_tensor_free(y);
    tk_node_free(n);
    tk_free_all(1, int_);
    tk_free_all(1, in);
}

/* The float32 paths use their own exp: check it across the whole range of
 * x - max, through softmax([x, 0]) = [e^x / (1 + e^x), 1 / (1 + e^x)]. */
static void test_softmax_exp_accuracy(void **state)
{
    (void)state;
    enum { N = 4001 };
    int64_t d[] = {N, 2};
    float *x = malloc(sizeof(float) * 2 * N), *e = malloc(sizeof(float) * 2 * N);
    for (int i = 0; i < N; i++) {
        x[2 * i] = -100.f + 0.025f * (float)i; /* -100 .. 0 */
        x[2 * i + 1] = 0.f;
        double ex = exp((double)x[2 * i]);
        e[2 * i] = (float)(ex / (1 + ex));
        e[2 * i + 1] = (float)(1 / (1 + ex));
    }
    onr_node *n = tk_node("Softmax");
    onr_tensor *in[] = {tk_f32(2, d, x)};
    onr_tensor *y = tk_run1(n, 13, 1, in, 1);
    tk_assert_close_f32(y, e, 2 * N, 3e-7f, 1e-37f);
    onr_tensor_free(y);
    tk_free_all(1, in);
    tk_node_free(n);
    free(x);
    free(e);
}

static void test_softmax_other_types(void **state)
{
    (void)state;
    int64_t d[] = {2, 3};
    const double xd[] = {1, 2, 3, 1000, 1000, 1000};
    const double ed[] = {0.090030573170380462, 0.24472847105479767, 0.66524095577481771,
                         1.0 / 3, 1.0 / 3, 1.0 / 3};
    onr_node *n = tk_node("Softmax");
    onr_tensor *in[] = {tk_typed(ONR_DOUBLE, 2, d, xd)};
    onr_tensor *y = tk_run1(n, 13, 1, in, 1);
    assert_int_equal(y->dtype, ONR_DOUBLE);
    for (int i = 0; i < 6; i++) assert_true(fabs(((double *)y->data)[i] - ed[i]) < 1e-14);
    onr_tensor_free(y);
    tk_free_all(1, in);
    /* float16 along axis 0 (strided generic path) and bfloat16 */
    uint16_t h[6], b[6];
    for (int i = 0; i < 6; i++) {
        h[i] = onr_float_to_half((float)xd[i % 3] * (i < 3 ? 1 : 2));
        b[i] = onr_float_to_bf16((float)xd[i % 3]);
    }
    onr_tensor *ih[] = {tk_typed(ONR_FLOAT16, 2, d, h)};
    y = tk_run1(n, 13, 1, ih, 1);
    assert_int_equal(y->dtype, ONR_FLOAT16);
    const float eh[] = {0.09003057f, 0.24472847f, 0.66524096f, 0.01587624f, 0.11731043f, 0.86681333f};
    for (int i = 0; i < 6; i++)
        assert_true(fabsf(onr_half_to_float(((uint16_t *)y->data)[i]) - eh[i]) < 1e-3f);
    onr_tensor_free(y);
    tk_free_all(1, ih);
    onr_tensor *ib[] = {tk_typed(ONR_BFLOAT16, 2, d, b)};
    tk_attr_int(n, "axis", 0);
    y = tk_run1(n, 13, 1, ib, 1);
    assert_int_equal(y->dtype, ONR_BFLOAT16);
    for (int i = 0; i < 6; i++)
        assert_true(fabsf(onr_bf16_to_float(((uint16_t *)y->data)[i]) - 0.5f) < 1e-2f);
    onr_tensor_free(y);
    tk_free_all(1, ib);
    tk_node_free(n);
}

static void test_hardmax_ties_nan(void **state)
{
    (void)state;
    int64_t d[] = {3, 3};
    const float x[] = {3, 1, 3, NAN, 2, NAN, 1, 1, 1};
    const float e[] = {1, 0, 0, 1, 0, 0, 1, 0, 0};
    onr_node *n = tk_node("Hardmax");
    onr_tensor *in[] = {tk_f32(2, d, x)};
    onr_tensor *y = tk_run1(n, 13, 1, in, 1);
    tk_assert_close_f32(y, e, 9, 0, 0);
    onr_tensor_free(y);
    /* column-wise (axis 0): first max of each column */
    tk_attr_int(n, "axis", 0);
    const float e0[] = {0, 0, 0, 1, 1, 1, 0, 0, 0};
    y = tk_run1(n, 13, 1, in, 1);
    tk_assert_close_f32(y, e0, 9, 0, 0);
    onr_tensor_free(y);
    tk_free_all(1, in);
    tk_node_free(n);
}

/* Large enough to go parallel: results identical for 1 and 2 threads. */
static void test_softmax_threads(void **state)
{
    (void)state;
    int64_t d[] = {64, 12, 128};
    onr_tensor *x = tk_rand_f32(3, d, 3);
    for (int64_t ax = 1; ax <= 2; ax++) {
        onr_node *n = tk_node("Softmax");
        tk_attr_int(n, "axis", ax);
        onr_tensor *in[] = {x};
        onr_tensor *y1 = tk_run1(n, 13, 1, in, 1), *y2 = tk_run1(n, 13, 1, in, 2);
        assert_memory_equal(y1->data, y2->data, (size_t)x->numel * 4);
        float *e = malloc((size_t)x->numel * 4);
        ref_softmax(0, x->data, e, ax == 1 ? 64 : 768, ax == 1 ? 12 : 128, ax == 1 ? 128 : 1);
        tk_assert_close_f32(y1, e, x->numel, 1e-5f, 1e-7f);
        free(e);
        onr_tensor_free(y1);
        onr_tensor_free(y2);
        tk_node_free(n);
    }
    onr_tensor_free(x);
}

static void test_softmax_errors(void **state)
{
    (void)state;
    int64_t d[] = {2, 3};
    onr_node *n = tk_node("Softmax");
    tk_attr_int(n, "axis", 2);
    onr_tensor *in[] = {tk_f32(2, d, NULL)};
    tk_expect_fail(n, 13, 1, in, 1, ONR_E_MODEL, "axis 2");
    tk_expect_fail(n, 11, 1, in, 1, ONR_E_MODEL, "out of range");
    tk_node_free(n);
    tk_free_all(1, in);
    n = tk_node("LogSoftmax");
    onr_tensor *ii[] = {tk_i64(2, d, (const int64_t[]){1, 2, 3, 4, 5, 6})};
    tk_expect_fail(n, 13, 1, ii, 1, ONR_E_UNSUPPORTED, "int64");
    tk_free_all(1, ii);
    onr_tensor *is[] = {tk_f32(0, NULL, (const float[]){1})};
    tk_expect_fail(n, 13, 1, is, 1, ONR_E_MODEL, "scalar");
    tk_free_all(1, is);
    tk_expect_fail(n, 13, 0, NULL, 1, ONR_E_MODEL, "missing");
    tk_node_free(n);
}

/* ---- BatchNormalization --------------------------------------------------- */

static void test_batchnorm_inference(void **state)
{
    (void)state;
    int64_t dx[] = {2, 2, 2}, dc[] = {2};
    const float x[] = {1, 3, 2, 4, 5, -1, 0, 2};
    const float s[] = {1, 2}, b[] = {0, 1}, m[] = {1, 2}, v[] = {4, 1};
    /* eps 0: y = (x - m) / sqrt(v) * s + b */
    const float e[] = {0, 1, 1, 5, 2, -1, -3, 1};
    for (int64_t opset = 7; opset <= 15; opset += 2) {
        onr_node *n = tk_node("BatchNormalization");
        tk_attr_float(n, "epsilon", 0.f);
        onr_tensor *in[] = {tk_f32(3, dx, x), tk_f32(1, dc, s), tk_f32(1, dc, b), tk_f32(1, dc, m),
                            tk_f32(1, dc, v)};
        onr_tensor *y = tk_run1(n, opset, 5, in, 1);
        tk_assert_shape(y, 3, dx);
        tk_assert_close_f32(y, e, 8, 1e-6f, 1e-6f);
        onr_tensor_free(y);
        tk_free_all(5, in);
        tk_node_free(n);
    }
    /* default epsilon 1e-5, rank-2 input (HW = 1), double params with fp16 X (opset 15) */
    int64_t d2[] = {1, 2};
    uint16_t xh[] = {onr_float_to_half(3.f), onr_float_to_half(3.f)};
    const double sd[] = {1, 2}, bd[] = {0, 1}, md[] = {1, 2}, vd[] = {4, 1};
    onr_node *n = tk_node("BatchNormalization");
    onr_tensor *in[] = {tk_typed(ONR_FLOAT16, 2, d2, xh), tk_typed(ONR_DOUBLE, 1, dc, sd),
                        tk_typed(ONR_DOUBLE, 1, dc, bd), tk_typed(ONR_DOUBLE, 1, dc, md),
                        tk_typed(ONR_DOUBLE, 1, dc, vd)};
    onr_tensor *y = tk_run1(n, 15, 5, in, 1);
    assert_int_equal(y->dtype, ONR_FLOAT16);
    assert_true(fabsf(onr_half_to_float(((uint16_t *)y->data)[0]) - 1.f) < 1e-3f);
    assert_true(fabsf(onr_half_to_float(((uint16_t *)y->data)[1]) - 3.f) < 2e-3f);
    onr_tensor_free(y);
    tk_free_all(5, in);
    tk_node_free(n);
}

static void test_batchnorm_spatial0(void **state)
{
    (void)state;
    /* opset 7, spatial = 0: one parameter per (c, hw) element */
    int64_t dx[] = {2, 2, 2}, dp[] = {2, 2};
    const float x[] = {1, 2, 3, 4, 5, 6, 7, 8};
    const float s[] = {1, 2, 3, 4}, b[] = {0, 0, 1, 1}, m[] = {1, 1, 1, 1}, v[] = {1, 4, 1, 4};
    const float e[] = {0, 1, 7, 7, 4, 5, 19, 15};
    onr_node *n = tk_node("BatchNormalization");
    tk_attr_int(n, "spatial", 0);
    tk_attr_float(n, "epsilon", 0.f);
    onr_tensor *in[] = {tk_f32(3, dx, x), tk_f32(2, dp, s), tk_f32(2, dp, b), tk_f32(2, dp, m),
                        tk_f32(2, dp, v)};
    onr_tensor *y = tk_run1(n, 7, 5, in, 1);
    tk_assert_close_f32(y, e, 8, 1e-6f, 1e-6f);
    onr_tensor_free(y);
    /* the same params at opset 9 (no spatial attribute) are the wrong shape */
    tk_expect_fail(n, 9, 5, in, 1, ONR_E_MODEL, "scale");
    tk_free_all(5, in);
    tk_node_free(n);
}

static void test_batchnorm_training(void **state)
{
    (void)state;
    /* x per channel: c0 = {1, 3, 5, 7} (mean 4, var 5), c1 = {2, 2, 2, 2} (mean 2, var 0) */
    int64_t dx[] = {2, 2, 2}, dc[] = {2};
    const float x[] = {1, 3, 2, 2, 5, 7, 2, 2};
    const float s[] = {1, 1}, b[] = {0, 10}, m[] = {0, 1}, v[] = {1, 1};
    onr_node *n = tk_node("BatchNormalization");
    tk_attr_int(n, "training_mode", 1);
    tk_attr_float(n, "epsilon", 0.f);
    tk_attr_float(n, "momentum", 0.5f);
    onr_tensor *in[] = {tk_f32(3, dx, x), tk_f32(1, dc, s), tk_f32(1, dc, b), tk_f32(1, dc, m),
                        tk_f32(1, dc, v)};
    onr_tensor *out[3];
    onr_err err = {0};
    assert_int_equal(tk_run(n, 15, 5, in, 3, out, 1, &err), ONR_OK);
    float r5 = 1.f / sqrtf(5.f);
    const float ey[] = {-3 * r5, -1 * r5, NAN, NAN, 1 * r5, 3 * r5, NAN, NAN};
    /* channel 1 has zero variance and epsilon 0: 0/0 */
    tk_assert_close_f32(out[0], ey, 8, 1e-5f, 1e-6f);
    const float erm[] = {2, 1.5f}, erv[] = {3, 0.5f};
    tk_assert_close_f32(out[1], erm, 2, 1e-6f, 0);
    tk_assert_close_f32(out[2], erv, 2, 1e-6f, 0);
    tk_free_all(3, out);
    /* running outputs without training mode are an error; before 14 unsupported */
    onr_node *n2 = tk_node("BatchNormalization");
    tk_expect_fail(n2, 15, 5, in, 3, ONR_E_MODEL, "training_mode");
    tk_expect_fail(n2, 9, 5, in, 3, ONR_E_UNSUPPORTED, "training");
    tk_node_free(n2);
    tk_free_all(5, in);
    tk_node_free(n);
}

static void test_batchnorm_errors(void **state)
{
    (void)state;
    int64_t dx[] = {1, 3, 2}, dc[] = {2}, d1[] = {3};
    onr_node *n = tk_node("BatchNormalization");
    onr_tensor *in[] = {tk_f32(3, dx, NULL), tk_f32(1, dc, NULL), tk_f32(1, d1, NULL),
                        tk_f32(1, d1, NULL), tk_f32(1, d1, NULL)};
    memset(in[0]->data, 0, 24);
    tk_expect_fail(n, 15, 5, in, 1, ONR_E_MODEL, "scale (input 1)");
    tk_expect_fail(n, 15, 4, in, 1, ONR_E_MODEL, "needs 5 inputs");
    tk_free_all(5, in);
    onr_tensor *i1[] = {tk_f32(1, d1, NULL), tk_f32(1, d1, NULL), tk_f32(1, d1, NULL),
                        tk_f32(1, d1, NULL), tk_f32(1, d1, NULL)};
    tk_expect_fail(n, 15, 5, i1, 1, ONR_E_MODEL, "rank >= 2");
    tk_free_all(5, i1);
    tk_node_free(n);
}

/* Plain-C reference: y = (x - m) / sqrt(v + eps) * s + b in double, the
 * parameters per channel (plane = 0) or per element of a (C, HW) plane. */
static void ref_batchnorm(const float *x, const float *s, const float *b, const float *m,
                          const float *v, float *y, int64_t N, int64_t C, int64_t HW,
                          int per_element, double eps)
{
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < HW; i++) {
                int64_t k = per_element ? c * HW + i : c, e = (n * C + c) * HW + i;
                y[e] = (float)((x[e] - (double)m[k]) / sqrt((double)v[k] + eps) * s[k] + b[k]);
            }
}

/* Constant scale/B/mean/var are folded at create into one scale and shift
 * and the four inputs consumed (run gets shape-only stand-ins for them);
 * the same parameters as activations give bit-identical results, and both
 * match the reference. Shapes cover HW of 1, odd sizes and more than one
 * vector, per-channel and per-element (spatial=0) parameters, threads. */
static void test_batchnorm_const_params(void **state)
{
    (void)state;
    const struct {
        int64_t opset, N, C, HW;
        int spatial0, nthreads;
    } cs[] = {
        {15, 2, 3, 1, 0, 1},   {15, 1, 5, 7, 0, 1},  {9, 3, 4, 17, 0, 1},
        {14, 2, 2, 65, 0, 2},  {15, 4, 16, 1031, 0, 2}, {7, 2, 3, 5, 1, 1},
        {7, 2, 2, 33, 1, 2},   {6, 1, 3, 8, 0, 1},
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        int64_t N = cs[k].N, C = cs[k].C, HW = cs[k].HW, np = cs[k].spatial0 ? C * HW : C;
        int64_t dx[] = {N, C, HW}, dp[] = {C, HW};
        onr_tensor *x = tk_rand_f32(3, dx, 100 + (uint32_t)k);
        onr_tensor *prm[4];
        for (int i = 0; i < 4; i++)
            prm[i] = cs[k].spatial0 ? tk_rand_f32(2, dp, 200 + 4 * (uint32_t)k + (uint32_t)i)
                                    : tk_rand_f32(1, &C, 200 + 4 * (uint32_t)k + (uint32_t)i);
        float *pv = prm[3]->data, *pm = prm[2]->data;
        for (int64_t i = 0; i < np; i++) {
            pv[i] = pv[i] * pv[i] + 0.25f; /* variances > 0 */
            pm[i] *= 3;
        }
        float *e = malloc(sizeof(float) * (size_t)x->numel);
        ref_batchnorm(x->data, prm[0]->data, prm[1]->data, prm[2]->data, prm[3]->data, e, N, C,
                      HW, cs[k].spatial0, 1e-3);
        onr_node *n = tk_node("BatchNormalization");
        tk_attr_float(n, "epsilon", 1e-3f);
        if (cs[k].spatial0) tk_attr_int(n, "spatial", 0);
        onr_tensor *in[] = {x, prm[0], prm[1], prm[2], prm[3]}, *ya[1], *yc[1];
        onr_err err = {0};
        if (tk_run(n, cs[k].opset, 5, in, 1, ya, cs[k].nthreads, &err)) fail_msg("%s", err.msg);
        assert_int_equal(tk_last_consumed, 0);
        if (tk_run_const(n, cs[k].opset, 5, in, 0x1Eu, 1, yc, cs[k].nthreads, &err))
            fail_msg("%s", err.msg);
        assert_int_equal(tk_last_consumed, 0x1Eu);
        tk_assert_shape(yc[0], 3, dx);
        tk_assert_close_f32(ya[0], e, x->numel, 1e-5f, 1e-5f);
        tk_assert_close_f32(yc[0], e, x->numel, 1e-5f, 1e-5f);
        assert_memory_equal(ya[0]->data, yc[0]->data, sizeof(float) * (size_t)x->numel);
        tk_free_all(1, ya);
        tk_free_all(1, yc);
        /* only some parameters constant: nothing is folded */
        if (tk_run_const(n, cs[k].opset, 5, in, 0x6u, 1, yc, cs[k].nthreads, &err))
            fail_msg("%s", err.msg);
        assert_int_equal(tk_last_consumed, 0);
        tk_assert_close_f32(yc[0], e, x->numel, 1e-5f, 1e-5f);
        tk_free_all(1, yc);
        free(e);
        tk_node_free(n);
        tk_free_all(4, prm);
        onr_tensor_free(x);
    }
}

/* Folded constants with other X and parameter types: double X keeps double
 * precision, fp16 parameters fold like float ones; training mode reads
 * mean and var itself and packs nothing. */
static void test_batchnorm_const_types(void **state)
{
    (void)state;
    int64_t dx[] = {2, 2, 3}, dc[] = {2};
    const double xd[] = {1, 2, 3, 4, 5, 6, -1, -2, -3, 0.5, 0.25, 0.125};
    const double sd[] = {1.5, -2}, bd[] = {0.25, 1}, md[] = {2, -1}, vd[] = {3, 0.5};
    double e[12];
    for (int i = 0; i < 12; i++) {
        int c = (i / 3) % 2;
        e[i] = (xd[i] - md[c]) / sqrt(vd[c] + 1e-5f) * sd[c] + bd[c];
    }
    onr_node *n = tk_node("BatchNormalization");
    onr_tensor *in[] = {tk_typed(ONR_DOUBLE, 3, dx, xd), tk_typed(ONR_DOUBLE, 1, dc, sd),
                        tk_typed(ONR_DOUBLE, 1, dc, bd), tk_typed(ONR_DOUBLE, 1, dc, md),
                        tk_typed(ONR_DOUBLE, 1, dc, vd)};
    onr_tensor *y[1];
    assert_int_equal(tk_run_const(n, 15, 5, in, 0x1Eu, 1, y, 1, NULL), ONR_OK);
    assert_int_equal(tk_last_consumed, 0x1Eu);
    assert_int_equal(y[0]->dtype, ONR_DOUBLE);
    for (int i = 0; i < 12; i++) assert_true(fabs(((double *)y[0]->data)[i] - e[i]) < 1e-12);
    tk_free_all(1, y);
    /* float32 X with float16 constant parameters */
    float xf[12];
    uint16_t sh[2], bh[2], mh[2], vh[2];
    for (int i = 0; i < 12; i++) xf[i] = (float)xd[i];
    for (int i = 0; i < 2; i++) {
        sh[i] = onr_float_to_half((float)sd[i]);
        bh[i] = onr_float_to_half((float)bd[i]);
        mh[i] = onr_float_to_half((float)md[i]);
        vh[i] = onr_float_to_half((float)vd[i]);
    }
    onr_tensor *ih[] = {tk_f32(3, dx, xf), tk_typed(ONR_FLOAT16, 1, dc, sh),
                        tk_typed(ONR_FLOAT16, 1, dc, bh), tk_typed(ONR_FLOAT16, 1, dc, mh),
                        tk_typed(ONR_FLOAT16, 1, dc, vh)};
    onr_tensor *ya[1];
    assert_int_equal(tk_run_const(n, 15, 5, ih, 0x1Eu, 1, y, 1, NULL), ONR_OK);
    assert_int_equal(tk_last_consumed, 0x1Eu);
    assert_int_equal(tk_run(n, 15, 5, ih, 1, ya, 1, NULL), ONR_OK);
    float ef[12];
    for (int i = 0; i < 12; i++) ef[i] = (float)e[i];
    tk_assert_close_f32(y[0], ef, 12, 1e-5f, 1e-5f);
    assert_memory_equal(y[0]->data, ya[0]->data, sizeof ef);
    tk_free_all(1, y);
    tk_free_all(1, ya);
    tk_free_all(5, ih);
    tk_node_free(n);
    /* training mode: constant parameters stay inputs */
    n = tk_node("BatchNormalization");
    tk_attr_int(n, "training_mode", 1);
    onr_tensor *out[3];
    assert_int_equal(tk_run_const(n, 15, 5, in, 0x1Eu, 3, out, 1, NULL), ONR_OK);
    assert_int_equal(tk_last_consumed, 0);
    assert_int_equal(out[1]->dtype, ONR_DOUBLE);
    tk_free_all(3, out);
    tk_node_free(n);
    /* bad epsilon / momentum are create errors naming the attribute */
    n = tk_node("BatchNormalization");
    tk_attr_float(n, "epsilon", NAN);
    tk_expect_fail(n, 15, 5, in, 1, ONR_E_MODEL, "epsilon");
    tk_node_free(n);
    n = tk_node("BatchNormalization");
    tk_attr_float(n, "epsilon", -1.f);
    tk_expect_fail(n, 15, 5, in, 1, ONR_E_MODEL, "epsilon -1");
    tk_node_free(n);
    n = tk_node("BatchNormalization");
    tk_attr_int(n, "training_mode", 1);
    tk_attr_float(n, "momentum", INFINITY);
    tk_expect_fail(n, 15, 5, in, 1, ONR_E_MODEL, "momentum");
    tk_node_free(n);
    n = tk_node("BatchNormalization");
    tk_expect_fail(n, 15, 5, in, 4, ONR_E_MODEL, "at most 3");
    tk_node_free(n);
    tk_free_all(5, in);
}

/* ---- InstanceNormalization / GroupNormalization ---------------------------- */

static void test_instancenorm(void **state)
{
    (void)state;
    /* each (n, c) plane normalized: {1, 2, 3} -> {-1.2247, 0, 1.2247} */
    int64_t dx[] = {1, 2, 3}, dc[] = {2};
    const float x[] = {1, 2, 3, 10, 10, 13}, s[] = {1, 2}, b[] = {0, 1};
    const float k = 1.22474487f, k2 = 0.70710678f; /* sqrt(1.5), 1/sqrt(2) */
    const float e[] = {-k, 0, k, 1 - 2 * k2, 1 - 2 * k2, 1 + 4 * k2};
    onr_node *n = tk_node("InstanceNormalization");
    tk_attr_float(n, "epsilon", 0.f);
    onr_tensor *in[] = {tk_f32(3, dx, x), tk_f32(1, dc, s), tk_f32(1, dc, b)};
    onr_tensor *y = tk_run1(n, 6, 3, in, 1);
    tk_assert_close_f32(y, e, 6, 1e-5f, 1e-6f);
    onr_tensor_free(y);
    /* double X, same values */
    double xd[6];
    for (int i = 0; i < 6; i++) xd[i] = x[i];
    onr_tensor *ind[] = {tk_typed(ONR_DOUBLE, 3, dx, xd), in[1], in[2]};
    y = tk_run1(n, 22, 3, ind, 1);
    for (int i = 0; i < 6; i++) assert_true(fabs(((double *)y->data)[i] - e[i]) < 1e-6);
    onr_tensor_free(y);
    onr_tensor_free(ind[0]);
    /* scale of the wrong length */
    int64_t d3[] = {3};
    onr_tensor *bad[] = {in[0], tk_f32(1, d3, NULL), in[2]};
    tk_expect_fail(n, 6, 3, bad, 1, ONR_E_MODEL, "scale");
    onr_tensor_free(bad[1]);
    tk_free_all(3, in);
    tk_node_free(n);
}

static void test_groupnorm(void **state)
{
    (void)state;
    /* N=1, C=4, HW=2, 2 groups: group 0 = {1,2,3,4}, group 1 = {5,5,7,7} */
    int64_t dx[] = {1, 4, 2}, dg[] = {2}, dc[] = {4};
    const float x[] = {1, 2, 3, 4, 5, 5, 7, 7};
    const float r = 0.4472136f; /* 1/sqrt(5) for var 1.25: (x - 2.5) / sqrt(1.25) */
    const float z[] = {-1.5f * 2 * r, -0.5f * 2 * r, 0.5f * 2 * r, 1.5f * 2 * r, -1, -1, 1, 1};
    /* opset 18: per-group scale/bias */
    const float sg[] = {2, 3}, bg[] = {1, -1};
    float e18[8];
    for (int i = 0; i < 8; i++) e18[i] = z[i] * sg[i / 4] + bg[i / 4];
    onr_node *n = tk_node("GroupNormalization");
    tk_attr_int(n, "num_groups", 2);
    tk_attr_float(n, "epsilon", 0.f);
    onr_tensor *in18[] = {tk_f32(3, dx, x), tk_f32(1, dg, sg), tk_f32(1, dg, bg)};
    onr_tensor *y = tk_run1(n, 18, 3, in18, 1);
    tk_assert_close_f32(y, e18, 8, 1e-5f, 1e-6f);
    onr_tensor_free(y);
    /* per-group params are the wrong shape at 21 */
    tk_expect_fail(n, 21, 3, in18, 1, ONR_E_MODEL, "[4]");
    /* opset 21: per-channel scale/bias */
    const float sc[] = {1, 2, 3, 4}, bc[] = {0, 1, 2, 3};
    float e21[8];
    for (int i = 0; i < 8; i++) e21[i] = z[i] * sc[i / 2] + bc[i / 2];
    onr_tensor *in21[] = {in18[0], tk_f32(1, dc, sc), tk_f32(1, dc, bc)};
    y = tk_run1(n, 21, 3, in21, 1);
    tk_assert_close_f32(y, e21, 8, 1e-5f, 1e-6f);
    onr_tensor_free(y);
    tk_node_free(n);
    /* num_groups must divide C, and is required */
    n = tk_node("GroupNormalization");
    tk_attr_int(n, "num_groups", 3);
    tk_expect_fail(n, 21, 3, in21, 1, ONR_E_MODEL, "divide");
    tk_node_free(n);
    n = tk_node("GroupNormalization");
    tk_expect_fail(n, 21, 3, in21, 1, ONR_E_MODEL, "num_groups");
    tk_node_free(n);
    tk_free_all(3, in18);
    onr_tensor_free(in21[1]);
    onr_tensor_free(in21[2]);
}

/* ---- LayerNormalization ------------------------------------------------------ */

static void ref_layernorm(const float *x, const float *s, const float *b, float *y, float *mean,
                          float *inv, int64_t outer, int64_t n, double eps)
{
    for (int64_t o = 0; o < outer; o++) {
        double m = 0, v = 0;
        for (int64_t i = 0; i < n; i++) m += x[o * n + i];
        m /= (double)n;
        for (int64_t i = 0; i < n; i++) v += (x[o * n + i] - m) * (x[o * n + i] - m);
        v /= (double)n;
        double r = 1 / sqrt(v + eps);
        for (int64_t i = 0; i < n; i++)
            y[o * n + i] = (float)((x[o * n + i] - m) * r * s[i] + (b ? b[i] : 0));
        mean[o] = (float)m;
        inv[o] = (float)r;
    }
}

static void test_layernorm_hand(void **state)
{
    (void)state;
    int64_t dx[] = {2, 4}, dp[] = {4};
    const float x[] = {1, 2, 3, 4, -1, -1, 1, 1};
    const float s[] = {1, 1, 2, 2}, b[] = {0, 1, 0, 1};
    const float k = 0.4472136f * 2; /* (x - 2.5)/sqrt(1.25) */
    const float e[] = {-1.5f * k, -0.5f * k + 1, 0.5f * k * 2, 1.5f * k * 2 + 1, -1, 0, 2, 3};
    const float em[] = {2.5f, 0}, ei[] = {0.8944272f, 1};
    onr_node *n = tk_node("LayerNormalization");
    tk_attr_float(n, "epsilon", 0.f);
    onr_tensor *in[] = {tk_f32(2, dx, x), tk_f32(1, dp, s), tk_f32(1, dp, b)};
    onr_tensor *out[3];
    onr_err err = {0};
    assert_int_equal(tk_run(n, 17, 3, in, 3, out, 1, &err), ONR_OK);
    tk_assert_close_f32(out[0], e, 8, 1e-5f, 1e-6f);
    int64_t dm[] = {2, 1};
    tk_assert_shape(out[1], 2, dm);
    tk_assert_shape(out[2], 2, dm);
    tk_assert_close_f32(out[1], em, 2, 1e-6f, 0);
    tk_assert_close_f32(out[2], ei, 2, 1e-6f, 0);
    tk_free_all(3, out);
    /* no bias: B omitted */
    onr_tensor *in2[] = {in[0], in[1], NULL};
    onr_tensor *y = tk_run1(n, 17, 2, in2, 1);
    const float e2[] = {-1.5f * k, -0.5f * k, 0.5f * k * 2, 1.5f * k * 2, -1, -1, 2, 2};
    tk_assert_close_f32(y, e2, 8, 1e-5f, 1e-6f);
    onr_tensor_free(y);
    tk_free_all(3, in);
    tk_node_free(n);
}

static void test_layernorm_axes(void **state)
{
    (void)state;
    int64_t dx[] = {2, 3, 5};
    onr_tensor *x = tk_rand_f32(3, dx, 11);
    for (int64_t axis = -3; axis <= 2; axis++) {
        int a = (int)(axis < 0 ? axis + 3 : axis);
        int64_t outer = 1, nn = 1;
        for (int d = 0; d < 3; d++) {
            if (d < a) outer *= dx[d];
            else nn *= dx[d];
        }
        onr_tensor *s = tk_rand_f32(3 - a, dx + a, 5), *b = tk_rand_f32(3 - a, dx + a, 6);
        onr_node *n = tk_node("LayerNormalization");
        tk_attr_int(n, "axis", axis);
        tk_attr_float(n, "epsilon", 0.1f);
        onr_tensor *in[] = {x, s, b}, *out[3];
        assert_int_equal(tk_run(n, 17, 3, in, 3, out, 1, NULL), ONR_OK);
        float e[30], em[6], ei[6];
        ref_layernorm(x->data, s->data, b->data, e, em, ei, outer, nn, 0.1);
        tk_assert_close_f32(out[0], e, 30, 1e-5f, 1e-6f);
        tk_assert_close_f32(out[1], em, outer, 1e-5f, 1e-6f);
        tk_assert_close_f32(out[2], ei, outer, 1e-5f, 1e-6f);
        assert_int_equal(out[1]->rank, 3);
        tk_free_all(3, out);
        tk_node_free(n);
        onr_tensor_free(s);
        onr_tensor_free(b);
    }
    onr_tensor_free(x);
}

static void test_layernorm_broadcast_types(void **state)
{
    (void)state;
    /* Scale [1, 4] and scalar-like B [1] broadcast to the normalized shape [4] */
    int64_t dx[] = {2, 4}, ds[] = {1, 4}, db[] = {1};
    const float x[] = {1, 2, 3, 4, -1, -1, 1, 1};
    const float s[] = {1, 1, 2, 2}, b[] = {0.5f};
    const float k = 0.4472136f * 2;
    const float e[] = {-1.5f * k + .5f, -0.5f * k + .5f, k + .5f, 3 * k + .5f, -.5f, -.5f, 2.5f, 2.5f};
    onr_node *n = tk_node("LayerNormalization");
    tk_attr_float(n, "epsilon", 0.f);
    onr_tensor *in[] = {tk_f32(2, dx, x), tk_f32(2, ds, s), tk_f32(1, db, b)};
    onr_tensor *y = tk_run1(n, 17, 3, in, 1);
    tk_assert_close_f32(y, e, 8, 1e-5f, 1e-6f);
    onr_tensor_free(y);
    /* float16 X and params, Mean in float (stash_type 1) */
    uint16_t xh[8], sh[4], bh[1] = {onr_float_to_half(0.5f)};
    for (int i = 0; i < 8; i++) xh[i] = onr_float_to_half(x[i]);
    for (int i = 0; i < 4; i++) sh[i] = onr_float_to_half(s[i]);
    onr_tensor *ih[] = {tk_typed(ONR_FLOAT16, 2, dx, xh), tk_typed(ONR_FLOAT16, 2, ds, sh),
                        tk_typed(ONR_FLOAT16, 1, db, bh)};
    onr_tensor *out[2];
    assert_int_equal(tk_run(n, 17, 3, ih, 2, out, 1, NULL), ONR_OK);
    assert_int_equal(out[0]->dtype, ONR_FLOAT16);
    for (int i = 0; i < 8; i++)
        assert_true(fabsf(onr_half_to_float(((uint16_t *)out[0]->data)[i]) - e[i]) < 4e-3f);
    assert_int_equal(out[1]->dtype, ONR_FLOAT);
    assert_true(fabsf(((float *)out[1]->data)[0] - 2.5f) < 1e-6f);
    tk_free_all(2, out);
    tk_free_all(3, ih);
    /* Scale that does not broadcast */
    int64_t d3[] = {3};
    onr_tensor *bad[] = {in[0], tk_f32(1, d3, NULL), NULL};
    tk_expect_fail(n, 17, 2, bad, 1, ONR_E_MODEL, "does not broadcast");
    onr_tensor_free(bad[1]);
    tk_node_free(n);
    /* bad stash_type, axis out of range */
    n = tk_node("LayerNormalization");
    tk_attr_int(n, "stash_type", 7);
    tk_expect_fail(n, 17, 3, in, 1, ONR_E_MODEL, "stash_type 7");
    tk_node_free(n);
    /* axis = rank is allowed (the schema's range is [-r, r]): each element
     * is its own row; rank + 1 is out of range */
    n = tk_node("LayerNormalization");
    tk_attr_int(n, "axis", 3);
    tk_expect_fail(n, 17, 3, in, 1, ONR_E_MODEL, "axis 3");
    tk_node_free(n);
    tk_free_all(3, in);
}

/* float16 / bfloat16 constant Scale and B are widened to float32 at create
 * and consumed; results are the same as with the parameters as activations
 * (the widening is exact) and match the reference, for float16 and float32
 * X, direct ([n]) and broadcast ([1, n], [1]) parameter shapes. A float32
 * constant Scale is read in place (not consumed). */
static void test_layernorm_fp16_const_scale(void **state)
{
    (void)state;
    enum { OUTER = 5, NN = 37 };
    int64_t dx[] = {OUTER, NN}, dn[] = {NN}, d1n[] = {1, NN}, d1[] = {1};
    onr_tensor *xf = tk_rand_f32(2, dx, 31);
    float *px = xf->data;
    uint16_t xh[OUTER * NN];
    for (int i = 0; i < OUTER * NN; i++) {
        xh[i] = onr_float_to_half(px[i] * 2 + 1);
        px[i] = onr_half_to_float(xh[i]); /* the same values in both types */
    }
    float sv[NN], bv[NN];
    uint16_t sh[NN], bh[NN], sb[NN];
    for (int i = 0; i < NN; i++) {
        sh[i] = onr_float_to_half(0.5f + 0.03125f * (float)i);
        bh[i] = onr_float_to_half(-0.25f + 0.015625f * (float)i);
        sb[i] = onr_float_to_bf16(0.5f + 0.03125f * (float)i);
        sv[i] = onr_half_to_float(sh[i]);
        bv[i] = onr_half_to_float(bh[i]);
    }
    float e[OUTER * NN], em[OUTER], ei[OUTER];
    ref_layernorm(px, sv, bv, e, em, ei, OUTER, NN, 1e-5);
    for (int form = 0; form < 2; form++) /* Scale [n] / [1, n], B [n] */
        for (int xt = 0; xt < 2; xt++) { /* float32 / float16 X */
            onr_node *n = tk_node("LayerNormalization");
            onr_tensor *in[] = {xt ? tk_typed(ONR_FLOAT16, 2, dx, xh) : xf,
                                tk_typed(ONR_FLOAT16, form ? 2 : 1, form ? d1n : dn, sh),
                                tk_typed(ONR_FLOAT16, 1, dn, bh)};
            onr_tensor *yc[3], *ya[3];
            onr_err err = {0};
            if (tk_run_const(n, 17, 3, in, 0x6u, 3, yc, 1, &err)) fail_msg("%s", err.msg);
            assert_int_equal(tk_last_consumed, 0x6u);
            if (tk_run(n, 17, 3, in, 3, ya, 1, &err)) fail_msg("%s", err.msg);
            assert_int_equal(tk_last_consumed, 0);
            assert_int_equal(yc[0]->dtype, xt ? ONR_FLOAT16 : ONR_FLOAT);
            size_t esz = xt ? 2 : 4;
            assert_memory_equal(yc[0]->data, ya[0]->data, esz * OUTER * NN);
            assert_memory_equal(yc[1]->data, ya[1]->data, sizeof(float) * OUTER);
            assert_memory_equal(yc[2]->data, ya[2]->data, sizeof(float) * OUTER);
            for (int i = 0; i < OUTER * NN; i++) {
                float g = xt ? onr_half_to_float(((uint16_t *)yc[0]->data)[i])
                             : ((float *)yc[0]->data)[i];
                float tol = xt ? 4e-3f + 1e-3f * fabsf(e[i]) : 1e-5f + 1e-5f * fabsf(e[i]);
                if (fabsf(g - e[i]) > tol) fail_msg("x %d form %d [%d]: %g vs %g", xt, form, i, g, e[i]);
            }
            tk_assert_close_f32(yc[1], em, OUTER, 1e-5f, 1e-6f);
            tk_assert_close_f32(yc[2], ei, OUTER, 1e-5f, 1e-6f);
            tk_free_all(3, yc);
            tk_free_all(3, ya);
            if (xt) onr_tensor_free(in[0]);
            tk_free_all(2, in + 1);
            tk_node_free(n);
        }
    /* bfloat16 Scale, B a constant [1] broadcast (float16) */
    onr_node *n = tk_node("LayerNormalization");
    uint16_t b1 = onr_float_to_half(0.75f);
    onr_tensor *in[] = {xf, tk_typed(ONR_BFLOAT16, 1, dn, sb), tk_typed(ONR_FLOAT16, 1, d1, &b1)};
    onr_tensor *yc[1], *ya[1];
    assert_int_equal(tk_run_const(n, 17, 3, in, 0x6u, 1, yc, 1, NULL), ONR_OK);
    assert_int_equal(tk_last_consumed, 0x6u);
    assert_int_equal(tk_run(n, 17, 3, in, 1, ya, 1, NULL), ONR_OK);
    assert_memory_equal(yc[0]->data, ya[0]->data, sizeof(float) * OUTER * NN);
    float s2[NN], b2[NN];
    for (int i = 0; i < NN; i++) {
        s2[i] = onr_bf16_to_float(sb[i]);
        b2[i] = 0.75f;
    }
    ref_layernorm(px, s2, b2, e, em, ei, OUTER, NN, 1e-5);
    tk_assert_close_f32(yc[0], e, OUTER * NN, 1e-5f, 1e-5f);
    tk_free_all(1, yc);
    tk_free_all(1, ya);
    tk_free_all(2, in + 1);
    /* float32 constant Scale: used in place, nothing consumed */
    onr_tensor *sf = tk_f32(1, dn, sv);
    onr_tensor *in2[] = {xf, sf};
    assert_int_equal(tk_run_const(n, 17, 2, in2, 0x2u, 1, yc, 1, NULL), ONR_OK);
    assert_int_equal(tk_last_consumed, 0);
    onr_tensor_free(yc[0]);
    onr_tensor_free(sf);
    tk_node_free(n);
    onr_tensor_free(xf);
}

/* The BERT shape: [B, S, 768] over the last axis, threads give identical results. */
static void test_layernorm_threads(void **state)
{
    (void)state;
    int64_t dx[] = {2, 64, 768}, dp[] = {768};
    onr_tensor *x = tk_rand_f32(3, dx, 21), *s = tk_rand_f32(1, dp, 22), *b = tk_rand_f32(1, dp, 23);
    float *px = x->data;
    for (int64_t i = 0; i < x->numel; i++) px[i] = px[i] * 3 + 100; /* offset mean */
    onr_node *n = tk_node("LayerNormalization");
    onr_tensor *in[] = {x, s, b};
    onr_tensor *y1 = tk_run1(n, 17, 3, in, 1), *y2 = tk_run1(n, 17, 3, in, 2);
    assert_memory_equal(y1->data, y2->data, (size_t)x->numel * 4);
    float *e = malloc((size_t)x->numel * 4), em[128], ei[128];
    ref_layernorm(x->data, s->data, b->data, e, em, ei, 128, 768, 1e-5);
    tk_assert_close_f32(y1, e, x->numel, 1e-4f, 1e-5f);
    free(e);
    onr_tensor_free(y1);
    onr_tensor_free(y2);
    tk_free_all(3, in);
    tk_node_free(n);
}

/* ---- LpNormalization --------------------------------------------------------- */

static void test_lpnorm(void **state)
{
    (void)state;
    int64_t d[] = {2, 2};
    const float x[] = {3, 4, 0, 0};
    const float e2[] = {0.6f, 0.8f, 0, 0}, e1[] = {3.f / 7, 4.f / 7, 0, 0};
    const float e2a0[] = {1, 1, 0, 0}; /* axis 0: columns {3, 0} and {4, 0} */
    onr_node *n = tk_node("LpNormalization");
    onr_tensor *in[] = {tk_f32(2, d, x)};
    onr_tensor *y = tk_run1(n, 1, 1, in, 1);
    tk_assert_close_f32(y, e2, 4, 1e-6f, 0);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("LpNormalization");
    tk_attr_int(n, "p", 1);
    y = tk_run1(n, 22, 1, in, 1);
    tk_assert_close_f32(y, e1, 4, 1e-6f, 0);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("LpNormalization");
    tk_attr_int(n, "axis", 0);
    y = tk_run1(n, 1, 1, in, 1);
    tk_assert_close_f32(y, e2a0, 4, 1e-6f, 0);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("LpNormalization");
    tk_attr_int(n, "p", 3);
    tk_expect_fail(n, 1, 1, in, 1, ONR_E_MODEL, "p must be 1 or 2");
    tk_node_free(n);
    tk_free_all(1, in);
}

/* A zero dim lets the others be huge: every op must finish at once, without
 * overflowing products of the other dims. */
/* GlobalAveragePool and GlobalMaxPool against sums in double, on planes
 * of 1, 7, 8, 9, 16, 17, 49 and 3136 elements (vectors and their tails), a NaN
 * the max skips, and 1 / 2 threads bit for bit. */
static void test_global_pools(void **state)
{
    (void)state;
    const int64_t sides[][2] = {{1, 1}, {1, 7}, {2, 4}, {3, 3}, {4, 4}, {1, 17}, {7, 7}, {56, 56}};
    for (size_t si = 0; si < sizeof sides / sizeof sides[0]; si++) {
        int64_t d[4] = {2, 3, sides[si][0], sides[si][1]}, IN = d[2] * d[3];
        onr_tensor *x = tk_rand_f32(4, d, 17 + (uint32_t)si);
        float *xv = x->data;
        if (IN > 2) xv[IN + 1] = NAN; /* plane 1 */
        for (int op = 0; op < 2; op++) {
            onr_node *n = tk_node(op ? "GlobalMaxPool" : "GlobalAveragePool");
            onr_tensor *in[1] = {x};
            onr_tensor *y1 = tk_run1(n, 13, 1, in, 1), *y2 = tk_run1(n, 13, 1, in, 2);
            for (int64_t pl = 0; pl < 6; pl++) {
                double sum = 0, mx = -INFINITY;
                for (int64_t i = 0; i < IN; i++) {
                    double v = xv[pl * IN + i];
                    sum += v;
                    if (v > mx) mx = v;
                }
                float got = ((float *)y1->data)[pl];
                if (op) {
                    assert_true(got == (float)mx);
                } else if (isnan(sum)) {
                    assert_true(isnan(got));
                } else if (!(fabs(got - sum / (double)IN) <= 1e-6 * (1 + fabs(sum / (double)IN)))) {
                    fail_msg("plane %lld of %lld: got %.9g, want %.9g", (long long)pl, (long long)IN,
                             got, sum / (double)IN);
                }
            }
            assert_memory_equal(y1->data, y2->data, onr_tensor_nbytes(y1));
            onr_tensor_free(y1), onr_tensor_free(y2);
            tk_node_free(n);
        }
        onr_tensor_free(x);
    }
}

static void test_nn_empty_huge_dims(void **state)
{
    (void)state;
    int64_t d[] = {1ll << 62, 0, 1ll << 62}, dc[] = {0};
    const char *ops[] = {"Softmax", "LogSoftmax", "Hardmax", "LpNormalization"};
    for (int k = 0; k < 4; k++)
        for (int64_t ax = -3; ax < 3; ax++) {
            onr_node *n = tk_node(ops[k]);
            tk_attr_int(n, "axis", ax);
            onr_tensor *in[] = {tk_f32(3, d, NULL)};
            onr_tensor *y = tk_run1(n, ax == -3 ? 11 : 13, 1, in, 2);
            assert_int_equal(y->numel, 0);
            onr_tensor_free(y);
            tk_free_all(1, in);
            tk_node_free(n);
        }
    /* InstanceNorm / GroupNorm / BatchNorm with C = 0 */
    int64_t dx[] = {1ll << 62, 0, 1ll << 62};
    onr_node *n = tk_node("InstanceNormalization");
    onr_tensor *in[] = {tk_f32(3, dx, NULL), tk_f32(1, dc, NULL), tk_f32(1, dc, NULL),
                        tk_f32(1, dc, NULL), tk_f32(1, dc, NULL)};
    onr_tensor *y = tk_run1(n, 6, 3, in, 2);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("GroupNormalization");
    tk_attr_int(n, "num_groups", 1ll << 62);
    y = tk_run1(n, 21, 3, in, 2);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("BatchNormalization");
    y = tk_run1(n, 15, 5, in, 2);
    onr_tensor_free(y);
    tk_node_free(n);
    tk_free_all(5, in);
    /* LayerNorm: empty rows still give (NaN) statistics */
    int64_t dln[] = {3, 0};
    onr_tensor *il[] = {tk_f32(2, dln, NULL), tk_f32(1, dc, NULL)}, *out[3];
    n = tk_node("LayerNormalization");
    assert_int_equal(tk_run(n, 17, 2, il, 3, out, 1, NULL), ONR_OK);
    assert_int_equal(out[1]->numel, 3);
    assert_true(isnan(((float *)out[1]->data)[2]));
    tk_free_all(3, out);
    tk_free_all(2, il);
    tk_node_free(n);
    /* and over the huge dims: axis 0, Mean [1, 1, 1] */
    n = tk_node("LayerNormalization");
    tk_attr_int(n, "axis", 0);
    onr_tensor *ih[] = {tk_f32(3, d, NULL), tk_f32(3, d, NULL)};
    assert_int_equal(tk_run(n, 17, 2, ih, 3, out, 2, NULL), ONR_OK);
    assert_int_equal(out[1]->numel, 1);
    assert_true(isnan(((float *)out[2]->data)[0]));
    tk_free_all(3, out);
    tk_free_all(2, ih);
    tk_node_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_global_pools),
        cmocka_unit_test(test_softmax_hand),
        cmocka_unit_test(test_softmax_axis_semantics),
        cmocka_unit_test(test_softmax_large_values),
        cmocka_unit_test(test_softmax_exp_accuracy),
        cmocka_unit_test(test_softmax_other_types),
        cmocka_unit_test(test_hardmax_ties_nan),
        cmocka_unit_test(test_softmax_threads),
        cmocka_unit_test(test_softmax_errors),
        cmocka_unit_test(test_batchnorm_inference),
        cmocka_unit_test(test_batchnorm_spatial0),
        cmocka_unit_test(test_batchnorm_training),
        cmocka_unit_test(test_batchnorm_errors),
        cmocka_unit_test(test_batchnorm_const_params),
        cmocka_unit_test(test_batchnorm_const_types),
        cmocka_unit_test(test_instancenorm),
        cmocka_unit_test(test_groupnorm),
        cmocka_unit_test(test_layernorm_hand),
        cmocka_unit_test(test_layernorm_axes),
        cmocka_unit_test(test_layernorm_broadcast_types),
        cmocka_unit_test(test_layernorm_fp16_const_scale),
        cmocka_unit_test(test_layernorm_threads),
        cmocka_unit_test(test_lpnorm),
        cmocka_unit_test(test_nn_empty_huge_dims),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
