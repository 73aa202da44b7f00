/* test_ops_quant.c - the quantization family: QuantizeLinear /
 * DequantizeLinear (rounding ties, saturation, zero-point edges, per-axis,
 * blocked, the opset 21/23 attributes and precision rule, bad shapes),
 * DynamicQuantizeLinear, MatMulInteger, QLinearMatMul, ConvInteger and
 * QLinearConv against naive references, thread-count independence. */
#include "kutil.h"
#include "load/load.h"
#include "pbw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_OF(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

/* Every element of t (any integer type) as int64 equals e. */
static void assert_ints(const onr_tensor *t, onr_dtype dt, const int64_t *e, int64_t n)
{
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->numel, n);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = (int64_t)onr_get_f64(t, i);
        if (v != e[i]) fail_msg("element %lld: got %lld, expected %lld", (long long)i, (long long)v,
                                (long long)e[i]);
    }
}

/* QuantizeLinear of float x (1-D) with a scalar scale and optional zero
 * point of type zdt (value zp), at opset. */
static onr_tensor *quant1(int64_t opset, const float *x, int64_t n, float scale, onr_dtype zdt,
                          double zp)
{
    onr_node *node = tk_node("QuantizeLinear");
    int64_t d[] = {n};
    onr_tensor *in[3] = {tk_f32(1, d, x), tk_f32(0, NULL, &scale), NULL};
    int nin = 2;
    if (zdt != ONR_UNDEFINED) {
        in[2] = tk_typed(zdt, 0, NULL, NULL);
        onr_set_f64(in[2], 0, zp);
        nin = 3;
    }
    onr_tensor *y = tk_run1(node, opset, nin, in, 1);
    tk_free_all(nin, in);
    tk_node_free(node);
    return y;
}

/* ---- QuantizeLinear ---------------------------------------------------------- */

static void test_q_round_half_even(void **state)
{
    (void)state;
    const float x[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.49f, -3.51f};
    const int64_t e8[] = {0, 2, 2, 0, -2, -2, 3, -4};
    const int64_t eu[] = {128, 130, 130, 128, 126, 126, 131, 124};
    onr_tensor *y = quant1(13, x, N_OF(x), 1.f, ONR_INT8, 0);
    assert_ints(y, ONR_INT8, e8, N_OF(x));
    onr_tensor_free(y);
    y = quant1(10, x, N_OF(x), 1.f, ONR_UINT8, 128);
    assert_ints(y, ONR_UINT8, eu, N_OF(x));
    onr_tensor_free(y);
    /* the tie is decided on x / scale: 5 / 2 = 2.5 -> 2, 7 / 2 = 3.5 -> 4 */
    const float x2[] = {5, 7, -5, -7};
    const int64_t e2[] = {2, 4, -2, -4};
    y = quant1(19, x2, 4, 2.f, ONR_INT8, 0);
    assert_ints(y, ONR_INT8, e2, 4);
    onr_tensor_free(y);
}

static void test_q_saturation(void **state)
{
    (void)state;
    const float x[] = {1000, -1000, INFINITY, -INFINITY, NAN, 127.5f, -128.5f};
    const int64_t eu8[] = {255, 0, 255, 0, 0, 128, 0};
    const int64_t ei8[] = {127, -128, 127, -128, -128, 127, -128};
    const int64_t ei16[] = {1000, -1000, 32767, -32768, -32768, 128, -128};
    const int64_t eu16[] = {1000, 0, 65535, 0, 0, 128, 0};
    onr_tensor *y = quant1(13, x, N_OF(x), 1.f, ONR_UNDEFINED, 0); /* default uint8 */
    assert_ints(y, ONR_UINT8, eu8, N_OF(x));
    onr_tensor_free(y);
    y = quant1(13, x, N_OF(x), 1.f, ONR_INT8, 0);
    assert_ints(y, ONR_INT8, ei8, N_OF(x));
    onr_tensor_free(y);
    y = quant1(21, x, N_OF(x), 1.f, ONR_INT16, 0);
    assert_ints(y, ONR_INT16, ei16, N_OF(x));
    onr_tensor_free(y);
    y = quant1(21, x, N_OF(x), 1.f, ONR_UINT16, 0);
    assert_ints(y, ONR_UINT16, eu16, N_OF(x));
    onr_tensor_free(y);
}

static void test_q_zero_point_edges(void **state)
{
    (void)state;
    const float x[] = {0, 1, -1, -255, -256, 200};
    const int64_t e255[] = {255, 255, 254, 0, 0, 255};
    onr_tensor *y = quant1(13, x, N_OF(x), 1.f, ONR_UINT8, 255);
    assert_ints(y, ONR_UINT8, e255, N_OF(x));
    onr_tensor_free(y);
    const int64_t e_i8[] = {-128, -127, -128, -128, -128, 72};
    y = quant1(13, x, N_OF(x), 1.f, ONR_INT8, -128);
    assert_ints(y, ONR_INT8, e_i8, N_OF(x));
    onr_tensor_free(y);
    /* zero point 127 with a large negative quotient and int8 */
    const int64_t e127[] = {127, 127, 126, -128, -128, 127};
    y = quant1(13, x, N_OF(x), 1.f, ONR_INT8, 127);
    assert_ints(y, ONR_INT8, e127, N_OF(x));
    onr_tensor_free(y);
}

/* Per-axis and blocked, checked element by element against the formula. */
static void test_q_per_axis_and_blocked(void **state)
{
    (void)state;
    int64_t xd[] = {2, 3, 4};
    onr_tensor *x = tk_rand_f32(3, xd, 3);
    float *xv = x->data;
    for (int i = 0; i < 24; i++) xv[i] *= 50;
    /* per axis 1, scales [3] */
    int64_t sd[] = {3};
    const float s[] = {0.5f, 1.f, 2.f};
    const uint8_t z[] = {10, 128, 250};
    for (int64_t axis = 1; axis >= -2; axis -= 3) {
        onr_node *n = tk_node("QuantizeLinear");
        tk_attr_int(n, "axis", axis);
        onr_tensor *in[] = {x, tk_f32(1, sd, s), tk_typed(ONR_UINT8, 1, sd, z)};
        onr_tensor *y = tk_run1(n, 13, 3, in, 1);
        int64_t e[24];
        for (int i = 0; i < 24; i++) {
            int c = (i / 4) % 3;
            double v = nearbyint((double)(xv[i] / s[c])) + z[c];
            e[i] = v < 0 ? 0 : v > 255 ? 255 : (int64_t)v;
        }
        assert_ints(y, ONR_UINT8, e, 24);
        onr_tensor_free(y);
        tk_free_all(2, in + 1);
        tk_node_free(n);
    }
    /* blocked along axis 2 (size 4) with block 3: scale [2, 3, 2] */
    {
        int64_t bd[] = {2, 3, 2};
        float bs[12];
        int8_t bz[12];
        for (int i = 0; i < 12; i++) bs[i] = 0.25f * (float)(i + 1), bz[i] = (int8_t)(i - 6);
        onr_node *n = tk_node("QuantizeLinear");
        tk_attr_int(n, "axis", 2);
        tk_attr_int(n, "block_size", 3);
        onr_tensor *in[] = {x, tk_f32(3, bd, bs), tk_typed(ONR_INT8, 3, bd, bz)};
        onr_tensor *y = tk_run1(n, 21, 3, in, 1);
        int64_t e[24];
        for (int i = 0; i < 24; i++) {
            int row = i / 4, k = i % 4, si = row * 2 + k / 3;
            double v = nearbyint((double)(xv[i] / bs[si])) + bz[si];
            e[i] = v < -128 ? -128 : v > 127 ? 127 : (int64_t)v;
        }
        assert_ints(y, ONR_INT8, e, 24);
        onr_tensor_free(y);
        /* the same through DequantizeLinear: y back to float */
        onr_node *dn = tk_node("DequantizeLinear");
        tk_attr_int(dn, "axis", -1);
        tk_attr_int(dn, "block_size", 3);
        onr_tensor *din[] = {tk_typed(ONR_INT8, 3, xd, NULL), in[1], in[2]};
        for (int i = 0; i < 24; i++) ((int8_t *)din[0]->data)[i] = (int8_t)e[i];
        onr_tensor *r = tk_run1(dn, 21, 3, din, 1);
        float fe[24];
        for (int i = 0; i < 24; i++) {
            int si = (i / 4) * 2 + (i % 4) / 3;
            fe[i] = (float)(e[i] - bz[si]) * bs[si];
        }
        tk_assert_close_f32(r, fe, 24, 0, 0);
        onr_tensor_free(r);
        onr_tensor_free(din[0]);
        tk_free_all(2, in + 1);
        tk_node_free(n);
        tk_node_free(dn);
    }
    onr_tensor_free(x);
}

static void test_q_bad_shapes(void **state)
{
    (void)state;
    int64_t xd[] = {2, 3};
    onr_tensor *x = tk_rand_f32(2, xd, 1);
    /* per-axis scale of the wrong length */
    int64_t s4[] = {4};
    const float sv[] = {1, 1, 1, 1};
    onr_node *n = tk_node("QuantizeLinear");
    onr_tensor *in[] = {x, tk_f32(1, s4, sv)};
    tk_expect_fail(n, 13, 2, in, 1, ONR_E_MODEL, "per-axis scale [4]");
    /* a vector scale before opset 13 */
    int64_t s3[] = {3};
    onr_tensor *in2[] = {x, tk_f32(1, s3, sv)};
    tk_expect_fail(n, 10, 2, in2, 1, ONR_E_MODEL, "before opset 13");
    /* axis out of range */
    tk_attr_int(n, "axis", 2);
    tk_expect_fail(n, 13, 2, in2, 1, ONR_E_MODEL, "axis 2");
    tk_node_free(n);
    /* zero point shape differs from the scale's */
    n = tk_node("QuantizeLinear");
    onr_tensor *z = tk_typed(ONR_UINT8, 0, NULL, NULL);
    onr_tensor *in3[] = {x, in2[1], z};
    tk_expect_fail(n, 13, 3, in3, 1, ONR_E_MODEL, "differ in shape");
    /* blocked scale that does not fit */
    int64_t bd[] = {2, 3};
    float b6[6] = {1, 1, 1, 1, 1, 1};
    tk_attr_int(n, "block_size", 2);
    onr_tensor *in4[] = {x, tk_f32(2, bd, b6)};
    tk_expect_fail(n, 21, 2, in4, 1, ONR_E_MODEL, "blocked scale [2,3]");
    tk_node_free(n);
    /* bad attributes */
    n = tk_node("QuantizeLinear");
    tk_attr_int(n, "block_size", -1);
    tk_expect_fail(n, 21, 2, in2, 1, ONR_E_MODEL, "block_size");
    tk_node_free(n);
    n = tk_node("QuantizeLinear");
    tk_attr_int(n, "saturate", 2);
    tk_expect_fail(n, 19, 2, in2, 1, ONR_E_MODEL, "saturate");
    tk_node_free(n);
    n = tk_node("QuantizeLinear");
    tk_attr_float(n, "axis", 1.f);
    tk_expect_fail(n, 13, 2, in2, 1, ONR_E_MODEL, "'axis' must be an int");
    tk_node_free(n);
    n = tk_node("QuantizeLinear");
    tk_attr_int(n, "output_dtype", ONR_INT8);
    tk_expect_fail(n, 21, 3, in3, 1, ONR_E_MODEL, "output_dtype int8 differs"); /* zp is uint8 */
    tk_node_free(n);
    /* uint16 before opset 21 */
    n = tk_node("QuantizeLinear");
    onr_tensor *z16 = tk_typed(ONR_UINT16, 0, NULL, NULL);
    onr_tensor *one = tk_f32(0, NULL, sv);
    onr_tensor *in5[] = {x, one, z16};
    tk_expect_fail(n, 19, 3, in5, 1, ONR_E_UNSUPPORTED, "uint16");
    /* scale type must match x at 19..22 */
    uint16_t h1 = 0x3c00;
    onr_tensor *sh = tk_typed(ONR_FLOAT16, 0, NULL, &h1);
    onr_tensor *in6[] = {x, sh};
    tk_expect_fail(n, 19, 2, in6, 1, ONR_E_MODEL, "must have x's type");
    tk_node_free(n);
    onr_tensor_free(z16);
    onr_tensor_free(one);
    onr_tensor_free(sh);
    onr_tensor_free(z);
    onr_tensor_free(in[1]);
    onr_tensor_free(in2[1]);
    onr_tensor_free(in4[1]);
    onr_tensor_free(x);
}

/* Opset 23: the division is done in y_scale's type (float16 here) unless
 * precision says otherwise; output_dtype picks the type without a zero point. */
static void test_q_precision_output_dtype(void **state)
{
    (void)state;
    const float xv = 1000.3f;
    uint16_t three = 0x4200; /* 3.0 in float16 */
    onr_tensor *x = tk_f32(0, NULL, &xv), *s = tk_typed(ONR_FLOAT16, 0, NULL, &three);
    onr_node *n = tk_node("QuantizeLinear");
    tk_attr_int(n, "output_dtype", ONR_INT16);
    onr_tensor *in[] = {x, s};
    /* float16: 1000.3 -> 1000.5, / 3 = 333.5 exactly, ties to even -> 334 */
    onr_tensor *y = tk_run1(n, 23, 2, in, 1);
    const int64_t e1[] = {334};
    assert_ints(y, ONR_INT16, e1, 1);
    onr_tensor_free(y);
    tk_node_free(n);
    /* precision = float: 1000.3 / 3 = 333.43 -> 333 */
    n = tk_node("QuantizeLinear");
    tk_attr_int(n, "output_dtype", ONR_INT16);
    tk_attr_int(n, "precision", ONR_FLOAT);
    y = tk_run1(n, 23, 2, in, 1);
    const int64_t e2[] = {333};
    assert_ints(y, ONR_INT16, e2, 1);
    onr_tensor_free(y);
    tk_node_free(n);
    tk_free_all(2, in);
}

static void test_q_threads(void **state)
{
    (void)state;
    int64_t xd[] = {64, 37, 29};
    onr_tensor *x = tk_rand_f32(3, xd, 11);
    int64_t sd[] = {37};
    float s[37];
    for (int i = 0; i < 37; i++) s[i] = 0.003f * (float)(i + 1);
    onr_tensor *st = tk_f32(1, sd, s);
    onr_node *n = tk_node("QuantizeLinear");
    onr_tensor *z = tk_typed(ONR_INT8, 1, sd, NULL);
    onr_tensor *in[] = {x, st, z};
    onr_tensor *y1 = tk_run1(n, 13, 3, in, 1), *y2 = tk_run1(n, 13, 3, in, 2);
    assert_memory_equal(y1->data, y2->data, (size_t)y1->numel);
    onr_node *dn = tk_node("DequantizeLinear");
    onr_tensor *din[] = {y1, st, z};
    onr_tensor *r1 = tk_run1(dn, 13, 3, din, 1), *r2 = tk_run1(dn, 13, 3, din, 2);
    assert_memory_equal(r1->data, r2->data, (size_t)r1->numel * 4);
    /* round trip within half a step */
    const float *xv = x->data, *rv = r1->data;
    for (int64_t i = 0; i < x->numel; i++) {
        float step = s[(i / 29) % 37];
        if (fabsf(xv[i]) < 127 * step) assert_true(fabsf(rv[i] - xv[i]) <= 0.5f * step + 1e-6f);
    }
    tk_free_all(3, in);
    onr_tensor_free(y1);
    onr_tensor_free(y2);
    onr_tensor_free(r1);
    onr_tensor_free(r2);
    tk_node_free(n);
    tk_node_free(dn);
}

/* ---- DequantizeLinear -------------------------------------------------------------- */

static void test_dq_types(void **state)
{
    (void)state;
    int64_t d[] = {4};
    const int32_t xi[] = {-5, 0, 7, 2147483647};
    float sc = 0.5f;
    onr_node *n = tk_node("DequantizeLinear");
    onr_tensor *in[] = {tk_i32(1, d, xi), tk_f32(0, NULL, &sc)};
    onr_tensor *y = tk_run1(n, 10, 2, in, 1);
    const float e[] = {-2.5f, 0, 3.5f, 1073741824.f};
    tk_assert_close_f32(y, e, 4, 0, 0);
    onr_tensor_free(y);
    tk_free_all(2, in);
    /* int16 with a zero point at 21, output float16 through output_dtype at 23 */
    const int16_t x16[] = {-32768, -1, 0, 32767};
    int16_t z16 = -1;
    onr_tensor *in2[] = {tk_typed(ONR_INT16, 1, d, x16), tk_f32(0, NULL, &sc),
                         tk_typed(ONR_INT16, 0, NULL, &z16)};
    y = tk_run1(n, 21, 3, in2, 1);
    const float e2[] = {-16383.5f, 0, 0.5f, 16384.f};
    tk_assert_close_f32(y, e2, 4, 0, 0);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("DequantizeLinear");
    tk_attr_int(n, "output_dtype", ONR_FLOAT16);
    y = tk_run1(n, 23, 3, in2, 1);
    assert_int_equal(y->dtype, ONR_FLOAT16);
    const uint16_t *h = y->data;
    assert_true(onr_half_to_float(h[0]) == -16384.f); /* rounded to float16 */
    assert_true(onr_half_to_float(h[3]) == 16384.f);
    onr_tensor_free(y);
    /* uint16 before 21 is refused, a zero point of another type too */
    onr_tensor *in3[] = {tk_typed(ONR_UINT16, 1, d, NULL), in2[1]};
    tk_expect_fail(n, 19, 2, in3, 1, ONR_E_UNSUPPORTED, "uint16");
    onr_tensor *in4[] = {in3[0], in2[1], in2[2]};
    tk_expect_fail(n, 23, 3, in4, 1, ONR_E_MODEL, "must have x's type");
    onr_tensor_free(in3[0]);
    tk_free_all(3, in2);
    tk_node_free(n);
}

/* ---- DynamicQuantizeLinear ----------------------------------------------------------- */

static void test_dynq(void **state)
{
    (void)state;
    int64_t d[] = {6};
    const float x[] = {0, 2, -3, -2.5f, 1.34f, 0.5f};
    onr_node *n = tk_node("DynamicQuantizeLinear");
    onr_tensor *in[] = {tk_f32(1, d, x)}, *out[3];
    onr_err err = {0};
    assert_int_equal(tk_run(n, 11, 1, in, 3, out, 1, &err), ONR_OK);
    float scale = (2.f - -3.f) / 255.f;
    assert_true(*(float *)out[1]->data == scale);
    float zpf = nearbyintf(0.f - -3.f / scale);
    assert_int_equal(*(uint8_t *)out[2]->data, (uint8_t)zpf);
    for (int i = 0; i < 6; i++) {
        double v = nearbyint((double)(x[i] / scale)) + zpf;
        v = v < 0 ? 0 : v > 255 ? 255 : v;
        assert_int_equal(((uint8_t *)out[0]->data)[i], (uint8_t)v);
    }
    tk_free_all(3, out);
    /* all zeros: scale 0, zero point 0, y 0 (no 0 / 0) */
    memset(in[0]->data, 0, sizeof x);
    assert_int_equal(tk_run(n, 11, 1, in, 3, out, 1, &err), ONR_OK);
    assert_true(*(float *)out[1]->data == 0.f);
    assert_int_equal(*(uint8_t *)out[2]->data, 0);
    for (int i = 0; i < 6; i++) assert_int_equal(((uint8_t *)out[0]->data)[i], 0);
    tk_free_all(3, out);
    tk_free_all(1, in);
    tk_node_free(n);
}

/* ---- integer matmuls ------------------------------------------------------------------ */

static void fill_q(onr_tensor *t, uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 7;
    for (int64_t i = 0; i < t->numel; i++) {
        s = s * 1664525u + 1013904223u;
        if (t->dtype == ONR_UINT8) ((uint8_t *)t->data)[i] = (uint8_t)(s >> 24);
        else ((int8_t *)t->data)[i] = (int8_t)(s >> 24);
    }
}

/* A [2, 3, 5] (int8, per-row zero point [3]) x B [5, 4] (uint8, per-column [4]). */
static void test_matmulinteger(void **state)
{
    (void)state;
    int64_t ad[] = {2, 3, 5}, bd[] = {5, 4}, zad[] = {3}, zbd[] = {4};
    onr_tensor *a = tk_typed(ONR_INT8, 3, ad, NULL), *b = tk_typed(ONR_UINT8, 2, bd, NULL);
    onr_tensor *za = tk_typed(ONR_INT8, 1, zad, NULL), *zb = tk_typed(ONR_UINT8, 1, zbd, NULL);
    fill_q(a, 1), fill_q(b, 2), fill_q(za, 3), fill_q(zb, 4);
    onr_node *n = tk_node("MatMulInteger");
    onr_tensor *in[] = {a, b, za, zb};
    for (int nt = 1; nt <= 2; nt++) {
        onr_tensor *y = tk_run1(n, 10, 4, in, nt);
        int64_t od[] = {2, 3, 4}, e[24];
        tk_assert_shape(y, 3, od);
        for (int bt = 0; bt < 2; bt++)
            for (int m = 0; m < 3; m++)
                for (int j = 0; j < 4; j++) {
                    int64_t acc = 0;
                    for (int k = 0; k < 5; k++)
                        acc += (int64_t)(((int8_t *)a->data)[(bt * 3 + m) * 5 + k] -
                                         ((int8_t *)za->data)[m]) *
                               (((uint8_t *)b->data)[k * 4 + j] - ((uint8_t *)zb->data)[j]);
                    e[(bt * 3 + m) * 4 + j] = acc;
                }
        assert_ints(y, ONR_INT32, e, 24);
        onr_tensor_free(y);
    }
    /* a per-row zero point of the wrong length */
    int64_t bad[] = {2};
    onr_tensor *zbad = tk_typed(ONR_INT8, 1, bad, NULL);
    onr_tensor *in2[] = {a, b, zbad};
    tk_expect_fail(n, 10, 3, in2, 1, ONR_E_MODEL, "A's zero point has shape [2]");
    /* inner dims that differ */
    onr_tensor *in3[] = {b, b};
    tk_expect_fail(n, 10, 2, in3, 1, ONR_E_MODEL, "inner dims differ");
    onr_tensor_free(zbad);
    tk_free_all(4, in);
    tk_node_free(n);
}

static void test_qlinearmatmul(void **state)
{
    (void)state;
    int64_t ad[] = {3, 6}, bd[] = {6, 5}, sbd[] = {5};
    onr_tensor *a = tk_typed(ONR_UINT8, 2, ad, NULL), *b = tk_typed(ONR_INT8, 2, bd, NULL);
    fill_q(a, 5), fill_q(b, 6);
    float sa = 0.02f, sb[5] = {0.01f, 0.02f, 0.03f, 0.015f, 0.005f}, sy = 0.3f;
    uint8_t za = 120;
    int8_t zb[5] = {0, 1, -1, 3, -7};
    int8_t zy = -3;
    onr_tensor *in[] = {a, tk_f32(0, NULL, &sa), tk_typed(ONR_UINT8, 0, NULL, &za),
                        b, tk_f32(1, sbd, sb), tk_typed(ONR_INT8, 1, sbd, zb),
                        tk_f32(0, NULL, &sy), tk_typed(ONR_INT8, 0, NULL, &zy)};
    onr_node *n = tk_node("QLinearMatMul");
    onr_tensor *y = tk_run1(n, 10, 8, in, 1);
    int64_t e[15];
    for (int m = 0; m < 3; m++)
        for (int j = 0; j < 5; j++) {
            int64_t acc = 0;
            for (int k = 0; k < 6; k++)
                acc += (int64_t)(((uint8_t *)a->data)[m * 6 + k] - za) *
                       (((int8_t *)b->data)[k * 5 + j] - zb[j]);
            float mult = sa * sb[j] / sy;
            double v = nearbyint((double)acc * mult) + zy;
            e[m * 5 + j] = v < -128 ? -128 : v > 127 ? 127 : (int64_t)v;
        }
    assert_ints(y, ONR_INT8, e, 15);
    onr_tensor_free(y);
    /* float scales are the only ones before 21 */
    uint16_t h = 0x3c00;
    onr_tensor *sh = tk_typed(ONR_FLOAT16, 0, NULL, &h), *keep = in[1];
    in[1] = sh;
    tk_expect_fail(n, 10, 8, in, 1, ONR_E_UNSUPPORTED, "float16");
    in[1] = keep;
    onr_tensor_free(sh);
    tk_free_all(8, in);
    tk_node_free(n);
}

/* ---- integer convolutions ----------------------------------------------------------- */

/* Naive 2-D conv of (x - xz) and (w - wz[m]) with pads/strides/dilations/group. */
static void ref_conv2d(const onr_tensor *x, int xz, const onr_tensor *w, const int *wz, int G,
                       const int *pads, const int *str, const int *dil, int64_t *y, int OH, int OW)
{
    int N = (int)x->dims[0], C = (int)x->dims[1], H = (int)x->dims[2], W = (int)x->dims[3];
    int M = (int)w->dims[0], Cg = C / G, Mg = M / G, KH = (int)w->dims[2], KW = (int)w->dims[3];
    for (int n = 0; n < N; n++)
        for (int m = 0; m < M; m++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    int64_t acc = 0;
                    for (int c = 0; c < Cg; c++)
                        for (int kh = 0; kh < KH; kh++)
                            for (int kw = 0; kw < KW; kw++) {
                                int ih = oh * str[0] - pads[0] + kh * dil[0];
                                int iw = ow * str[1] - pads[1] + kw * dil[1];
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                int ci = (m / Mg) * Cg + c;
                                int64_t xv = (int64_t)onr_get_f64(x, ((n * C + ci) * H + ih) * W + iw);
                                int64_t wv = (int64_t)onr_get_f64(w, ((m * Cg + c) * KH + kh) * KW + kw);
                                acc += (xv - xz) * (wv - wz[m]);
                            }
                    y[((n * M + m) * OH + oh) * OW + ow] = acc;
                }
}

static void test_convinteger(void **state)
{
    (void)state;
    int64_t xd[] = {2, 4, 7, 6}, wd[] = {6, 2, 3, 2}, wzd[] = {6};
    onr_tensor *x = tk_typed(ONR_UINT8, 4, xd, NULL), *w = tk_typed(ONR_INT8, 4, wd, NULL);
    fill_q(x, 8), fill_q(w, 9);
    uint8_t xz = 131;
    int8_t wz[6] = {0, -3, 5, 1, -1, 2};
    int wzi[6] = {0, -3, 5, 1, -1, 2};
    onr_tensor *in[] = {x, w, tk_typed(ONR_UINT8, 0, NULL, &xz), tk_typed(ONR_INT8, 1, wzd, wz)};
    onr_node *n = tk_node("ConvInteger");
    const int64_t pads[] = {1, 0, 2, 1}, str[] = {2, 1}, dil[] = {1, 2};
    tk_attr_ints(n, "pads", 4, pads);
    tk_attr_ints(n, "strides", 2, str);
    tk_attr_ints(n, "dilations", 2, dil);
    tk_attr_int(n, "group", 2);
    int OH = (7 + 1 + 2 - 3) / 2 + 1, OW = (6 + 0 + 1 - 3) / 1 + 1;
    int64_t *e = malloc(sizeof(int64_t) * 2 * 6 * (size_t)(OH * OW));
    const int p2[] = {1, 0}, s2[] = {2, 1}, d2[] = {1, 2};
    ref_conv2d(x, xz, w, wzi, 2, p2, s2, d2, e, OH, OW);
    for (int nt = 1; nt <= 2; nt++) {
        onr_tensor *y = tk_run1(n, 10, 4, in, nt);
        int64_t od[] = {2, 6, OH, OW};
        tk_assert_shape(y, 4, od);
        assert_ints(y, ONR_INT32, e, y->numel);
        onr_tensor_free(y);
    }
    /* QLinearConv on the same data: per-channel w_scale, bias, int8 output */
    float xs = 0.05f, ws[6] = {0.01f, 0.02f, 0.005f, 0.03f, 0.01f, 0.002f}, ys = 0.7f;
    int8_t yz = 4;
    int32_t bias[6] = {100, -200, 0, 5, -5, 1000};
    onr_node *qn = tk_node("QLinearConv");
    tk_attr_ints(qn, "pads", 4, pads);
    tk_attr_ints(qn, "strides", 2, str);
    tk_attr_ints(qn, "dilations", 2, dil);
    tk_attr_int(qn, "group", 2);
    onr_tensor *qin[] = {x, tk_f32(0, NULL, &xs), in[2], w, tk_f32(1, wzd, ws), in[3],
                         tk_f32(0, NULL, &ys), tk_typed(ONR_INT8, 0, NULL, &yz),
                         tk_i32(1, wzd, bias)};
    onr_tensor *y = tk_run1(qn, 10, 9, qin, 2);
    for (int64_t i = 0; i < y->numel; i++) {
        int m = (int)((i / (OH * OW)) % 6);
        float mult = xs * ws[m] / ys;
        double v = nearbyint((double)(e[i] + bias[m]) * mult) + yz;
        v = v < -128 ? -128 : v > 127 ? 127 : v;
        assert_int_equal(((int8_t *)y->data)[i], (int8_t)v);
    }
    onr_tensor_free(y);
    /* a w_zero_point of the wrong length */
    int64_t bad[] = {4};
    onr_tensor *zbad = tk_typed(ONR_INT8, 1, bad, NULL), *keep = in[3];
    in[3] = zbad;
    tk_expect_fail(n, 10, 4, in, 1, ONR_E_MODEL, "one per output channel (6)");
    in[3] = keep;
    onr_tensor_free(zbad);
    tk_free_all(3, qin + 6); /* x, w and the zero points are in[]: freed below */
    onr_tensor_free(qin[1]);
    onr_tensor_free(qin[4]);
    tk_free_all(4, in);
    free(e);
    tk_node_free(n);
    tk_node_free(qn);
}


/* ---- 8-, 4- and 2-bit types ------------------------------------------------------- */

/* Every bit pattern decodes, and every non-NaN pattern encodes back to
 * itself; the special encodings of each format, both ways. */
static void test_lowp_float_encodings(void **state)
{
    (void)state;
    static const onr_dtype f8[] = {ONR_FLOAT8E4M3FN, ONR_FLOAT8E4M3FNUZ, ONR_FLOAT8E5M2,
                                   ONR_FLOAT8E5M2FNUZ, ONR_FLOAT4E2M1};
    for (int t = 0; t < 5; t++) {
        int n = f8[t] == ONR_FLOAT4E2M1 ? 16 : 256;
        for (int c = 0; c < n; c++) {
            double v = onr_lowp_to_f64(f8[t], (uint8_t)c);
            if (isnan(v) || (f8[t] == ONR_FLOAT4E2M1 && c == 0x8)) continue; /* -0 gives +0 */
            uint8_t back = onr_f64_to_lowp(f8[t], v, 0);
            if (back != c) fail_msg("%s: 0x%02x -> %g -> 0x%02x", onr_dtype_name(f8[t]), c, v, back);
        }
    }
    /* decode: NaN / inf / largest / smallest patterns */
    assert_true(isnan(onr_lowp_to_f64(ONR_FLOAT8E4M3FN, 0x7F)));
    assert_true(isnan(onr_lowp_to_f64(ONR_FLOAT8E4M3FN, 0xFF)));
    assert_true(onr_lowp_to_f64(ONR_FLOAT8E4M3FN, 0x7E) == 448);
    assert_true(onr_lowp_to_f64(ONR_FLOAT8E4M3FN, 0x01) == ldexp(1, -9));
    assert_true(onr_lowp_to_f64(ONR_FLOAT8E4M3FN, 0x80) == 0 && signbit(onr_lowp_to_f64(ONR_FLOAT8E4M3FN, 0x80)));
    assert_true(isnan(onr_lowp_to_f64(ONR_FLOAT8E4M3FNUZ, 0x80)));
    assert_true(onr_lowp_to_f64(ONR_FLOAT8E4M3FNUZ, 0x7F) == 240);
    assert_true(onr_lowp_to_f64(ONR_FLOAT8E4M3FNUZ, 0x01) == ldexp(1, -10));
    assert_true(onr_lowp_to_f64(ONR_FLOAT8E5M2, 0x7C) == INFINITY);
    assert_true(onr_lowp_to_f64(ONR_FLOAT8E5M2, 0xFC) == -INFINITY);
    assert_true(isnan(onr_lowp_to_f64(ONR_FLOAT8E5M2, 0x7D)));
    assert_true(onr_lowp_to_f64(ONR_FLOAT8E5M2, 0x7B) == 57344);
    assert_true(isnan(onr_lowp_to_f64(ONR_FLOAT8E5M2FNUZ, 0x80)));
    assert_true(onr_lowp_to_f64(ONR_FLOAT8E5M2FNUZ, 0x7F) == 57344);
    assert_true(onr_lowp_to_f64(ONR_FLOAT4E2M1, 0x7) == 6 && onr_lowp_to_f64(ONR_FLOAT4E2M1, 0x9) == -0.5);
    assert_true(onr_lowp_to_f64(ONR_FLOAT8E8M0, 127) == 1 && isnan(onr_lowp_to_f64(ONR_FLOAT8E8M0, 0xFF)));
    /* encode: NaN, inf and overflow, saturating or not */
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E4M3FN, NAN, 1) & 0x7F, 0x7F);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E4M3FN, INFINITY, 1), 0x7E);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E4M3FN, -INFINITY, 1), 0xFE);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E4M3FN, INFINITY, 0), 0x7F);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E4M3FN, -1e6, 0), 0xFF);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E4M3FN, 464, 0), 0x7E); /* tie to even: 448 */
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E4M3FN, 465, 0), 0x7F); /* rounds past 448 */
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E4M3FN, -0.0, 1), 0x80);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E4M3FN, ldexp(1, -10), 1), 0); /* tie to 0 */
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E4M3FNUZ, -0.0, 1), 0);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E4M3FNUZ, NAN, 1), 0x80);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E4M3FNUZ, 248, 0), 0x80);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E4M3FNUZ, 248, 1), 0x7F);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E5M2, INFINITY, 0), 0x7C);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E5M2, -INFINITY, 0), 0xFC);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E5M2, 61440, 0), 0x7C);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E5M2, 61440, 1), 0x7B);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E5M2, -INFINITY, 1), 0xFB);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E5M2FNUZ, INFINITY, 0), 0x80);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT8E5M2FNUZ, INFINITY, 1), 0x7F);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT4E2M1, NAN, 0), 0x7);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT4E2M1, -100, 0), 0xF);
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT4E2M1, 5, 1), 0x6);  /* tie: 4 */
    assert_int_equal(onr_f64_to_lowp(ONR_FLOAT4E2M1, 0.75, 1), 0x2); /* tie: 1.0 */
    /* integers: ties to even, clamped */
    assert_int_equal((int8_t)onr_f64_to_lowp(ONR_INT4, 2.5, 1), 2);
    assert_int_equal((int8_t)onr_f64_to_lowp(ONR_INT4, -100, 1), -8);
    assert_int_equal(onr_f64_to_lowp(ONR_UINT4, 15.5, 1), 15);
    assert_int_equal((int8_t)onr_f64_to_lowp(ONR_INT2, -1.5, 1), -2);
    assert_int_equal(onr_f64_to_lowp(ONR_UINT2, 9, 1), 3);
}

/* Packing with odd element counts, and .pb write/read round trips. */
static void test_lowp_packing(void **state)
{
    (void)state;
    const int8_t i4[5] = {1, -2, 7, -8, 3};
    uint8_t packed[3], back[5];
    onr_lowp_pack(ONR_INT4, (const uint8_t *)i4, 5, packed);
    assert_int_equal(onr_lowp_packed_bytes(ONR_INT4, 5), 3);
    assert_int_equal(packed[0], 0xE1);
    assert_int_equal(packed[1], 0x87);
    assert_int_equal(packed[2], 0x03); /* the unused high nibble is 0 */
    onr_lowp_unpack(ONR_INT4, packed, 5, back);
    assert_memory_equal(back, i4, 5);
    const uint8_t u2[7] = {0, 1, 2, 3, 3, 2, 1};
    uint8_t p2[2], b2[7];
    onr_lowp_pack(ONR_UINT2, u2, 7, p2);
    assert_int_equal(p2[0], 0xE4);
    assert_int_equal(p2[1], 0x1B);
    onr_lowp_unpack(ONR_UINT2, p2, 7, b2);
    assert_memory_equal(b2, u2, 7);
    static const onr_dtype types[] = {ONR_INT4, ONR_UINT4, ONR_FLOAT4E2M1, ONR_INT2,
                                      ONR_UINT2, ONR_FLOAT8E5M2};
    for (int t = 0; t < 6; t++) {
        int64_t d[] = {7};
        onr_tensor *x = onr_tensor_new(types[t], 1, d);
        for (int i = 0; i < 7; i++)
            ((uint8_t *)x->data)[i] = onr_f64_to_lowp(types[t], i - 3, 1);
        uint8_t *buf;
        size_t len;
        onr_err err = {0};
        assert_int_equal(onr_save_tensor_pb(x, "t", &buf, &len, &err), ONR_OK);
        onr_tensor *y = NULL;
        assert_int_equal(onr_load_tensor_pb(buf, len, &y, &err), ONR_OK);
        assert_int_equal(y->dtype, types[t]);
        tk_assert_shape(y, 1, d);
        assert_memory_equal(x->data, y->data, 7);
        free(buf);
        onr_tensor_free(x);
        onr_tensor_free(y);
    }
}

/* The TensorProto forms the loader reads: int32_data (one packed byte per
 * value for 4-bit types, one pattern per value for float8) and raw_data of
 * the wrong packed length. */
static void test_lowp_loader_forms(void **state)
{
    (void)state;
    onr_err err = {0};
    onr_tensor *t = NULL;
    int64_t d3[] = {3};
    pbw p = {0};
    pbw_tensor_head(&p, "a", ONR_INT4, 1, d3);
    pbw_packed_i32(&p, 5, (const int32_t[]){0x21, 0x0F}, 2);
    assert_int_equal(onr_load_tensor_pb(p.b, p.n, &t, &err), ONR_OK);
    assert_int_equal(t->dtype, ONR_INT4);
    assert_int_equal(((int8_t *)t->data)[0], 1);
    assert_int_equal(((int8_t *)t->data)[1], 2);
    assert_int_equal(((int8_t *)t->data)[2], -1);
    onr_tensor_free(t);
    free(p.b);
    /* three int32 values for three int4 elements: the count is of packed bytes */
    p = (pbw){0};
    pbw_tensor_head(&p, "b", ONR_INT4, 1, d3);
    pbw_packed_i32(&p, 5, (const int32_t[]){1, 2, 3}, 3);
    assert_int_equal(onr_load_tensor_pb(p.b, p.n, &t, &err), ONR_E_MODEL);
    assert_non_null(strstr(err.msg, "'b'"));
    free(p.b);
    /* raw_data of the wrong packed length */
    err = (onr_err){0};
    p = (pbw){0};
    pbw_tensor_head(&p, "c", ONR_UINT4, 1, d3);
    pbw_bytes(&p, 9, "\x12\x34\x56", 3);
    assert_int_equal(onr_load_tensor_pb(p.b, p.n, &t, &err), ONR_E_MODEL);
    assert_non_null(strstr(err.msg, "raw_data holds 3 bytes"));
    free(p.b);
    /* float8 in int32_data: one bit pattern each */
    p = (pbw){0};
    int64_t d2[] = {2};
    pbw_tensor_head(&p, "f", ONR_FLOAT8E4M3FN, 1, d2);
    pbw_packed_i32(&p, 5, (const int32_t[]){0x38, 0xFF}, 2);
    assert_int_equal(onr_load_tensor_pb(p.b, p.n, &t, &err), ONR_OK);
    assert_true(onr_get_f64(t, 0) == 1.0 && isnan(onr_get_f64(t, 1)));
    onr_tensor_free(t);
    free(p.b);
}

/* Cast and QuantizeLinear through the executor: saturate on and off, and
 * the opset a type needs. */
static void test_lowp_ops(void **state)
{
    (void)state;
    int64_t d[] = {5};
    const float x[] = {1.0f, 500.f, -INFINITY, NAN, 0.3f};
    onr_node *n = tk_node("Cast");
    tk_attr_int(n, "to", ONR_FLOAT8E4M3FN);
    tk_attr_int(n, "saturate", 0);
    onr_tensor *in[] = {tk_f32(1, d, x)};
    onr_tensor *y = tk_run1(n, 19, 1, in, 1);
    const uint8_t *b = y->data;
    assert_int_equal(y->dtype, ONR_FLOAT8E4M3FN);
    assert_int_equal(b[0], 0x38);
    assert_int_equal(b[1] & 0x7F, 0x7F);
    assert_int_equal(b[2], 0xFF);
    assert_int_equal(b[3] & 0x7F, 0x7F);
    assert_int_equal(b[4], onr_f64_to_lowp(ONR_FLOAT8E4M3FN, 0.3f, 1));
    /* back to float */
    onr_node *nb = tk_node("Cast");
    tk_attr_int(nb, "to", ONR_FLOAT);
    onr_tensor *in2[] = {y};
    onr_tensor *f = tk_run1(nb, 19, 1, in2, 1);
    assert_true(((float *)f->data)[0] == 1.0f && isnan(((float *)f->data)[1]));
    onr_tensor_free(f);
    onr_tensor_free(y);
    /* float8 before opset 19 is not a Cast type */
    tk_expect_fail(n, 18, 1, in, 1, ONR_E_MODEL, "needs opset 19");
    tk_node_free(n);
    tk_node_free(nb);
    /* int4 QuantizeLinear with an odd count, via output_dtype */
    n = tk_node("QuantizeLinear");
    tk_attr_int(n, "output_dtype", ONR_INT4);
    float sc = 0.25f;
    onr_tensor *qin[] = {in[0], tk_f32(0, NULL, &sc)};
    y = tk_run1(n, 21, 2, qin, 1);
    assert_int_equal(y->dtype, ONR_INT4);
    const int64_t e4[] = {4, 7, -8, -8, 1};
    assert_ints(y, ONR_INT4, e4, 5);
    onr_tensor_free(y);
    y = tk_run1(n, 19, 2, qin, 1); /* output_dtype is not an attribute before 21: uint8 */
    assert_int_equal(y->dtype, ONR_UINT8);
    onr_tensor_free(y);
    tk_node_free(n);
    onr_tensor_free(qin[1]);
    tk_free_all(1, in);
}

/* The integer GEMM kernel at its block edges (rows not a multiple of 4,
 * columns past one 256-column block, several im2col bands), for the CPU's
 * variant and the baseline C one, at 1 and 2 threads. */
extern int onr_qmm_force_c;

static void test_qgemm_edges(void **state)
{
    (void)state;
    int64_t ad[] = {7, 33}, bd[] = {33, 300};
    onr_tensor *a = tk_typed(ONR_INT8, 2, ad, NULL), *b = tk_typed(ONR_UINT8, 2, bd, NULL);
    fill_q(a, 11), fill_q(b, 12);
    int64_t *e = malloc(sizeof(int64_t) * 7 * 300);
    for (int m = 0; m < 7; m++)
        for (int n = 0; n < 300; n++) {
            int64_t acc = 0;
            for (int k = 0; k < 33; k++)
                acc += (int64_t)((int8_t *)a->data)[m * 33 + k] * ((uint8_t *)b->data)[k * 300 + n];
            e[m * 300 + n] = acc;
        }
    int64_t xd[] = {1, 64, 64, 64}, wd[] = {4, 64, 3, 3};
    onr_tensor *x = tk_typed(ONR_UINT8, 4, xd, NULL), *w = tk_typed(ONR_INT8, 4, wd, NULL);
    fill_q(x, 13), fill_q(w, 14);
    int64_t *ec = malloc(sizeof(int64_t) * 4 * 64 * 64);
    const int pads[] = {1, 1}, ones[] = {1, 1}, wz[4] = {0, 0, 0, 0};
    ref_conv2d(x, 0, w, wz, 1, pads, ones, ones, ec, 64, 64);
    const int64_t p4[] = {1, 1, 1, 1};
    for (int force = 0; force <= 1; force++) {
        onr_qmm_force_c = force;
        for (int nt = 1; nt <= 2; nt++) {
            onr_node *n = tk_node("MatMulInteger");
            onr_tensor *in[] = {a, b};
            onr_tensor *y = tk_run1(n, 10, 2, in, nt);
            assert_ints(y, ONR_INT32, e, 7 * 300);
            onr_tensor_free(y);
            tk_node_free(n);
            n = tk_node("ConvInteger");
            tk_attr_ints(n, "pads", 4, p4);
            onr_tensor *cin[] = {x, w};
            y = tk_run1(n, 10, 2, cin, nt);
            assert_ints(y, ONR_INT32, ec, 4 * 64 * 64);
            onr_tensor_free(y);
            tk_node_free(n);
        }
    }
    onr_qmm_force_c = 0;
    free(e);
    free(ec);
    onr_tensor_free(a);
    onr_tensor_free(b);
    onr_tensor_free(x);
    onr_tensor_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q_round_half_even),
        cmocka_unit_test(test_q_saturation),
        cmocka_unit_test(test_q_zero_point_edges),
        cmocka_unit_test(test_q_per_axis_and_blocked),
        cmocka_unit_test(test_q_bad_shapes),
        cmocka_unit_test(test_q_precision_output_dtype),
        cmocka_unit_test(test_q_threads),
        cmocka_unit_test(test_dq_types),
        cmocka_unit_test(test_dynq),
        cmocka_unit_test(test_matmulinteger),
        cmocka_unit_test(test_qlinearmatmul),
        cmocka_unit_test(test_convinteger),
        cmocka_unit_test(test_qgemm_edges),
        cmocka_unit_test(test_lowp_float_encodings),
        cmocka_unit_test(test_lowp_packing),
        cmocka_unit_test(test_lowp_loader_forms),
        cmocka_unit_test(test_lowp_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
