/* test_ops_newops.c - the operators the spec audit (tools/spec-audit.md)
 * added or extended: BitwiseAnd/Or/Xor/Not (18), Swish (24), IsNaN/IsInf
 * float8 (20), TensorScatter (24), BitCast (26). Hand values, opset limits
 * and bad types, shapes or attributes (an error naming the problem, never a
 * crash). numpy-checked cases over every type: testdata/spec/{bitwise*,
 * swish24*, isnan20*, isinf20*, tensorscatter*, bitcast*}
 * (tools/spec_cases/newops.py). */
#include "kutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void expect_fail(onr_node *n, int64_t opset, int n_in, onr_tensor **in, onr_status code,
                        const char *needle)
{
    onr_tensor *out[2] = {0};
    onr_err err = {0};
    onr_status st = tk_run(n, opset, n_in, in, 1, out, 1, &err);
    if (st != code) fail_msg("%s: expected status %d, got %d (%s)", n->op_type, code, st, err.msg);
    if (needle && !strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    tk_free_all(1, out);
}

/* ---- Bitwise ---------------------------------------------------------------------- */

static void test_bitwise(void **state)
{
    (void)state;
    int64_t d[] = {4}, d1[] = {1};
    const int32_t a[] = {0x0F0F, -1, 0, 0x1234}, b[] = {0x00FF};
    onr_tensor *in[] = {tk_i32(1, d, a), tk_i32(1, d1, b)}, *out[1];
    onr_err err = {0};
    static const char *ops[] = {"BitwiseAnd", "BitwiseOr", "BitwiseXor"};
    const int64_t want[3][4] = {{0x000F, 0x00FF, 0, 0x0034},
                                {0x0FFF, -1, 0x00FF, 0x12FF},
                                {0x0FF0, ~0x00FF, 0x00FF, 0x12CB}};
    for (int k = 0; k < 3; k++) {
        onr_node *n = tk_node(ops[k]);
        assert_int_equal(tk_run(n, 18, 2, in, 1, out, 1, &err), ONR_OK);
        tk_assert_shape(out[0], 1, d);
        for (int i = 0; i < 4; i++) assert_int_equal(((int32_t *)out[0]->data)[i], want[k][i]);
        tk_free_all(1, out);
        /* the op does not exist before opset 18 */
        expect_fail(n, 17, 2, in, ONR_E_UNSUPPORTED, ops[k]);
        tk_node_free(n);
    }
    tk_free_all(2, in);

    onr_node *n = tk_node("BitwiseAnd");
    /* floats and bools are not integer types */
    onr_tensor *fl[] = {tk_f32(1, d, NULL), tk_f32(1, d, NULL)};
    expect_fail(n, 18, 2, fl, ONR_E_UNSUPPORTED, "float32");
    tk_free_all(2, fl);
    const uint8_t bv[] = {1, 0, 1, 1};
    onr_tensor *bo[] = {tk_bool(1, d, bv), tk_bool(1, d, bv)};
    expect_fail(n, 18, 2, bo, ONR_E_UNSUPPORTED, "bool");
    tk_free_all(2, bo);
    /* mixed integer types, shapes that do not broadcast */
    const int64_t l[] = {1, 2, 3, 4};
    onr_tensor *mix[] = {tk_i32(1, d, a), tk_i64(1, d, l)};
    expect_fail(n, 18, 2, mix, ONR_E_MODEL, NULL);
    tk_free_all(2, mix);
    int64_t d3[] = {3};
    onr_tensor *clash[] = {tk_i64(1, d, l), tk_i64(1, d3, l)};
    expect_fail(n, 18, 2, clash, ONR_E_MODEL, NULL);
    tk_free_all(2, clash);
    tk_node_free(n);

    /* BitwiseNot: uint8 and int64 by hand, a float is refused */
    n = tk_node("BitwiseNot");
    const uint8_t u[] = {0, 1, 0x80, 0xFF};
    onr_tensor *ui[] = {tk_typed(ONR_UINT8, 1, d, u)};
    assert_int_equal(tk_run(n, 18, 1, ui, 1, out, 1, &err), ONR_OK);
    const uint8_t nu[] = {0xFF, 0xFE, 0x7F, 0};
    assert_memory_equal(out[0]->data, nu, 4);
    tk_free_all(1, out);
    tk_free_all(1, ui);
    const int64_t s[] = {0, -1, INT64_MIN, 5};
    onr_tensor *si[] = {tk_i64(1, d, s)};
    assert_int_equal(tk_run(n, 26, 1, si, 1, out, 1, &err), ONR_OK);
    const int64_t ns[] = {-1, 0, INT64_MAX, -6};
    tk_assert_eq_i64(out[0], ns, 4);
    tk_free_all(1, out);
    tk_free_all(1, si);
    onr_tensor *nf[] = {tk_f32(1, d, NULL)};
    expect_fail(n, 18, 1, nf, ONR_E_UNSUPPORTED, "float32");
    tk_free_all(1, nf);
    tk_node_free(n);
}

/* ---- Swish ----------------------------------------------------------------------- */

static void test_swish(void **state)
{
    (void)state;
    int64_t d[] = {5};
    const float x[] = {-3, -0.5f, 0, 0.5f, 3};
    onr_tensor *in[] = {tk_f32(1, d, x)}, *out[1];
    onr_err err = {0};
    onr_node *n = tk_node("Swish");
    tk_attr_float(n, "alpha", 1.5f);
    assert_int_equal(tk_run(n, 24, 1, in, 1, out, 1, &err), ONR_OK);
    float e[5];
    for (int i = 0; i < 5; i++) e[i] = (float)(x[i] / (1 + exp(-1.5 * x[i])));
    tk_assert_close_f32(out[0], e, 5, 1e-5f, 1e-7f);
    tk_free_all(1, out);
    /* not before opset 24 */
    expect_fail(n, 23, 1, in, ONR_E_UNSUPPORTED, "Swish");
    tk_node_free(n);
    /* alpha of the wrong type names the attribute */
    n = tk_node("Swish");
    tk_attr_string(n, "alpha", "one");
    expect_fail(n, 24, 1, in, ONR_E_MODEL, "alpha");
    tk_node_free(n);
    tk_free_all(1, in);
    /* integers are not float types */
    n = tk_node("Swish");
    const int64_t iv[] = {1, 2, 3, 4, 5};
    onr_tensor *ii[] = {tk_i64(1, d, iv)};
    expect_fail(n, 24, 1, ii, ONR_E_UNSUPPORTED, "int64");
    tk_free_all(1, ii);
    /* bfloat16 through the float path */
    const uint16_t bf[] = {0x3F80 /* 1 */, 0xC000 /* -2 */, 0, 0x4100 /* 8 */, 0x7FC0 /* NaN */};
    onr_tensor *bi[] = {tk_typed(ONR_BFLOAT16, 1, d, bf)};
    assert_int_equal(tk_run(n, 24, 1, bi, 1, out, 1, &err), ONR_OK);
    assert_int_equal(out[0]->dtype, ONR_BFLOAT16);
    const double ex[] = {1 / (1 + exp(-1.)), -2 / (1 + exp(2.)), 0, 8 / (1 + exp(-8.))};
    for (int i = 0; i < 4; i++) assert_true(fabs(onr_get_f64(out[0], i) - ex[i]) <= 1e-2 * fabs(ex[i]) + 1e-6);
    assert_true(isnan(onr_get_f64(out[0], 4)));
    tk_free_all(1, out);
    tk_free_all(1, bi);
    tk_node_free(n);
}

/* ---- IsNaN / IsInf on float8 --------------------------------------------------- */

static void test_isnan_float8(void **state)
{
    (void)state;
    int64_t d[] = {4};
    /* e5m2: +inf, -inf, NaN, 1.0 */
    const uint8_t v[] = {0x7C, 0xFC, 0x7E, 0x3C};
    onr_tensor *in[] = {tk_typed(ONR_FLOAT8E5M2, 1, d, v)}, *out[1];
    onr_err err = {0};
    onr_node *n = tk_node("IsNaN");
    assert_int_equal(tk_run(n, 20, 1, in, 1, out, 1, &err), ONR_OK);
    const uint8_t nan[] = {0, 0, 1, 0};
    assert_memory_equal(out[0]->data, nan, 4);
    tk_free_all(1, out);
    /* float8 inputs arrived at version 20 */
    expect_fail(n, 19, 1, in, ONR_E_UNSUPPORTED, "float8e5m2");
    tk_node_free(n);
    n = tk_node("IsInf");
    tk_attr_int(n, "detect_positive", 0);
    assert_int_equal(tk_run(n, 20, 1, in, 1, out, 1, &err), ONR_OK);
    const uint8_t neg[] = {0, 1, 0, 0};
    assert_memory_equal(out[0]->data, neg, 4);
    tk_free_all(1, out);
    expect_fail(n, 13, 1, in, ONR_E_UNSUPPORTED, "float8e5m2");
    tk_node_free(n);
    tk_free_all(1, in);
}

/* ---- TensorScatter --------------------------------------------------------------- */

static void test_tensorscatter(void **state)
{
    (void)state;
    /* past [2, 4, 1], update [2, 2, 1], axis 1 */
    int64_t dp[] = {2, 4, 1}, du[] = {2, 2, 1}, dw[] = {2};
    const float past[] = {0, 1, 2, 3, 10, 11, 12, 13}, upd[] = {-1, -2, -3, -4};
    const int64_t wi[] = {3, 1};
    onr_tensor *in[] = {tk_f32(3, dp, past), tk_f32(3, du, upd), tk_i64(1, dw, wi)}, *out[1];
    onr_err err = {0};
    onr_node *n = tk_node("TensorScatter");
    tk_attr_int(n, "axis", 1);
    tk_attr_string(n, "mode", "circular");
    assert_int_equal(tk_run(n, 24, 3, in, 1, out, 1, &err), ONR_OK);
    const float e[] = {-2, 1, 2, -1, 10, -3, -4, 13}; /* batch 0 wraps: rows 3, 0 */
    tk_assert_shape(out[0], 3, dp);
    tk_assert_close_f32(out[0], e, 8, 0, 0);
    tk_free_all(1, out);
    expect_fail(n, 23, 3, in, ONR_E_UNSUPPORTED, "TensorScatter");
    tk_node_free(n);
    /* linear: write index 3 + 2 rows pass max_sequence_length 4 */
    n = tk_node("TensorScatter");
    tk_attr_int(n, "axis", 1);
    expect_fail(n, 24, 3, in, ONR_E_MODEL, "write_indices[0] = 3");
    tk_node_free(n);
    tk_free_all(3, in);
    /* negative write index */
    const int64_t neg[] = {0, -1};
    onr_tensor *in2[] = {tk_f32(3, dp, past), tk_f32(3, du, upd), tk_i64(1, dw, neg)};
    n = tk_node("TensorScatter");
    tk_attr_int(n, "axis", 1);
    tk_attr_string(n, "mode", "circular");
    expect_fail(n, 24, 3, in2, ONR_E_MODEL, "negative");
    tk_node_free(n);
    /* axis 0 (the batch), out of range, a bad mode */
    n = tk_node("TensorScatter");
    tk_attr_int(n, "axis", 0);
    expect_fail(n, 24, 3, in2, ONR_E_MODEL, "batch");
    tk_node_free(n);
    n = tk_node("TensorScatter");
    tk_attr_int(n, "axis", 3);
    expect_fail(n, 24, 3, in2, ONR_E_MODEL, NULL);
    tk_node_free(n);
    n = tk_node("TensorScatter");
    tk_attr_string(n, "mode", "ring");
    expect_fail(n, 24, 3, in2, ONR_E_MODEL, "mode");
    tk_node_free(n);
    tk_free_all(3, in2);
    /* shapes: update longer than the cache, other dims differ, wrong
     * write_indices length and type, mixed element types */
    n = tk_node("TensorScatter");
    tk_attr_int(n, "axis", 1);
    int64_t dlong[] = {2, 5, 1}, doth[] = {2, 2, 3}, dw3[] = {3};
    const int64_t w3[] = {0, 0, 0};
    onr_tensor *b1[] = {tk_f32(3, dp, NULL), tk_f32(3, dlong, NULL)};
    expect_fail(n, 24, 2, b1, ONR_E_MODEL, "shorter");
    tk_free_all(2, b1);
    onr_tensor *b2[] = {tk_f32(3, dp, NULL), tk_f32(3, doth, NULL)};
    expect_fail(n, 24, 2, b2, ONR_E_MODEL, "must match");
    tk_free_all(2, b2);
    onr_tensor *b3[] = {tk_f32(3, dp, NULL), tk_f32(3, du, NULL), tk_i64(1, dw3, w3)};
    expect_fail(n, 24, 3, b3, ONR_E_MODEL, "write_indices");
    tk_free_all(3, b3);
    const int32_t w32[] = {0, 0};
    onr_tensor *b4[] = {tk_f32(3, dp, NULL), tk_f32(3, du, NULL), tk_i32(1, dw, w32)};
    expect_fail(n, 24, 3, b4, ONR_E_UNSUPPORTED, "int32");
    tk_free_all(3, b4);
    onr_tensor *b5[] = {tk_f32(3, dp, NULL), tk_typed(ONR_DOUBLE, 3, du, NULL)};
    expect_fail(n, 24, 2, b5, ONR_E_MODEL, "float64");
    tk_free_all(2, b5);
    int64_t d1[] = {4};
    onr_tensor *b6[] = {tk_f32(1, d1, NULL), tk_f32(1, d1, NULL)};
    expect_fail(n, 24, 2, b6, ONR_E_MODEL, "batch and a sequence");
    tk_free_all(2, b6);
    tk_node_free(n);
}

/* ---- BitCast --------------------------------------------------------------------- */

static void test_bitcast(void **state)
{
    (void)state;
    int64_t d[] = {3};
    const float x[] = {1.0f, -2.0f, 0.0f};
    onr_tensor *in[] = {tk_f32(1, d, x)}, *out[1];
    onr_err err = {0};
    onr_node *n = tk_node("BitCast");
    tk_attr_int(n, "to", ONR_INT32);
    assert_int_equal(tk_run(n, 26, 1, in, 1, out, 1, &err), ONR_OK);
    assert_int_equal(out[0]->dtype, ONR_INT32);
    tk_assert_shape(out[0], 1, d);
    const int32_t e[] = {0x3F800000, (int32_t)0xC0000000u, 0};
    assert_memory_equal(out[0]->data, e, sizeof e);
    tk_free_all(1, out);
    expect_fail(n, 25, 1, in, ONR_E_UNSUPPORTED, "BitCast");
    tk_node_free(n);
    /* widths differ, `to` missing, a string or unknown `to` */
    n = tk_node("BitCast");
    tk_attr_int(n, "to", ONR_INT64);
    expect_fail(n, 26, 1, in, ONR_E_MODEL, "differ in width");
    tk_node_free(n);
    n = tk_node("BitCast");
    expect_fail(n, 26, 1, in, ONR_E_MODEL, "'to' is required");
    tk_node_free(n);
    n = tk_node("BitCast");
    tk_attr_int(n, "to", ONR_STRING);
    expect_fail(n, 26, 1, in, ONR_E_MODEL, "'to'");
    tk_node_free(n);
    n = tk_node("BitCast");
    tk_attr_int(n, "to", 99);
    expect_fail(n, 26, 1, in, ONR_E_MODEL, "'to'");
    tk_node_free(n);
    n = tk_node("BitCast");
    tk_attr_string(n, "to", "int32");
    expect_fail(n, 26, 1, in, ONR_E_MODEL, "to");
    tk_node_free(n);
    tk_free_all(1, in);
    /* uint4 -> int4 sign-extends; int4 -> uint4 keeps the nibble */
    int64_t d4[] = {4};
    const uint8_t u4[] = {0, 7, 8, 15};
    onr_tensor *i4[] = {tk_typed(ONR_UINT4, 1, d4, u4)};
    n = tk_node("BitCast");
    tk_attr_int(n, "to", ONR_INT4);
    assert_int_equal(tk_run(n, 26, 1, i4, 1, out, 1, &err), ONR_OK);
    const int8_t s4[] = {0, 7, -8, -1};
    assert_memory_equal(out[0]->data, s4, 4);
    tk_node_free(n);
    n = tk_node("BitCast");
    tk_attr_int(n, "to", ONR_UINT4);
    onr_tensor *back[] = {out[0]};
    onr_tensor *out2[1];
    assert_int_equal(tk_run(n, 26, 1, back, 1, out2, 1, &err), ONR_OK);
    assert_memory_equal(out2[0]->data, u4, 4);
    tk_free_all(1, out2);
    tk_free_all(1, out);
    /* uint4 -> uint8: 4 bits against 8 */
    tk_node_free(n);
    n = tk_node("BitCast");
    tk_attr_int(n, "to", ONR_UINT8);
    expect_fail(n, 26, 1, i4, ONR_E_MODEL, "differ in width");
    tk_node_free(n);
    tk_free_all(1, i4);
}

/* ---- DeformConv ------------------------------------------------------------------ */

static void test_deformconv(void **state)
{
    (void)state;
    /* 1x1 kernel, offset (+0.5, 0) on a 1x1x2x2 input: y = x sampled half a row down */
    int64_t dx[] = {1, 1, 2, 2}, dw[] = {1, 1, 1, 1}, doff[] = {1, 2, 2, 2}, dm[] = {1, 1, 2, 2};
    const float x[] = {1, 2, 3, 4}, w[] = {2};
    const float off[] = {0.5f, 0.5f, 0.5f, 0.5f, 0, 0, 0, 0};
    onr_tensor *in[] = {tk_f32(4, dx, x), tk_f32(4, dw, w), tk_f32(4, doff, off)}, *out[1];
    onr_err err = {0};
    onr_node *n = tk_node("DeformConv");
    assert_int_equal(tk_run(n, 19, 3, in, 1, out, 1, &err), ONR_OK);
    /* row 0 samples between rows 0 and 1; row 1 between row 1 and outside (0) */
    const float e[] = {2 * 2, 2 * 3, 2 * 1.5f, 2 * 2};
    tk_assert_shape(out[0], 4, dx);
    tk_assert_close_f32(out[0], e, 4, 1e-6f, 0);
    tk_free_all(1, out);
    expect_fail(n, 18, 3, in, ONR_E_UNSUPPORTED, "DeformConv");
    tk_node_free(n);

    /* offset of the wrong shape, a mask of the wrong shape, a bias of the wrong size */
    n = tk_node("DeformConv");
    int64_t dbad[] = {1, 4, 2, 2}, db[] = {2};
    onr_tensor *b1[] = {tk_f32(4, dx, x), tk_f32(4, dw, w), tk_f32(4, dbad, NULL)};
    expect_fail(n, 19, 3, b1, ONR_E_MODEL, "offset has shape");
    tk_free_all(3, b1);
    onr_tensor *b2[] = {tk_f32(4, dx, x), tk_f32(4, dw, w), tk_f32(4, doff, off), NULL,
                        tk_f32(4, dbad, NULL)};
    expect_fail(n, 19, 5, b2, ONR_E_MODEL, "mask has shape");
    tk_free_all(5, b2);
    onr_tensor *b3[] = {tk_f32(4, dx, x), tk_f32(4, dw, w), tk_f32(4, doff, off), tk_f32(1, db, NULL),
                        tk_f32(4, dm, NULL)};
    expect_fail(n, 19, 5, b3, ONR_E_MODEL, "B has shape");
    tk_free_all(5, b3);
    /* bfloat16 arrived at 22; mixed types */
    onr_tensor *b4[] = {tk_typed(ONR_BFLOAT16, 4, dx, NULL), tk_typed(ONR_BFLOAT16, 4, dw, NULL),
                        tk_typed(ONR_BFLOAT16, 4, doff, NULL)};
    expect_fail(n, 19, 3, b4, ONR_E_UNSUPPORTED, "bfloat16");
    assert_int_equal(tk_run(n, 22, 3, b4, 1, out, 1, &err), ONR_OK);
    tk_free_all(1, out);
    tk_free_all(3, b4);
    onr_tensor *b5[] = {tk_f32(4, dx, x), tk_typed(ONR_DOUBLE, 4, dw, NULL), tk_f32(4, doff, off)};
    expect_fail(n, 19, 3, b5, ONR_E_MODEL, "W");
    tk_free_all(3, b5);
    /* a kernel larger than the input, 4 spatial dims */
    int64_t dwbig[] = {1, 1, 3, 3};
    onr_tensor *b6[] = {tk_f32(4, dx, x), tk_f32(4, dwbig, NULL), tk_f32(4, doff, off)};
    expect_fail(n, 19, 3, b6, ONR_E_MODEL, NULL);
    tk_free_all(3, b6);
    int64_t d6[] = {1, 1, 1, 1, 1, 1};
    onr_tensor *b7[] = {tk_f32(6, d6, NULL), tk_f32(6, d6, NULL), tk_f32(6, d6, NULL)};
    expect_fail(n, 19, 3, b7, ONR_E_UNSUPPORTED, "spatial");
    tk_free_all(3, b7);
    tk_node_free(n);
    /* group that does not divide, offset_group that does not divide, kernel_shape != W */
    n = tk_node("DeformConv");
    tk_attr_int(n, "group", 2);
    expect_fail(n, 19, 3, in, ONR_E_MODEL, "group");
    tk_node_free(n);
    n = tk_node("DeformConv");
    tk_attr_int(n, "offset_group", 3);
    expect_fail(n, 19, 3, in, ONR_E_MODEL, "offset_group");
    tk_node_free(n);
    n = tk_node("DeformConv");
    tk_attr_int(n, "group", 0);
    expect_fail(n, 19, 3, in, ONR_E_MODEL, "'group'");
    tk_node_free(n);
    n = tk_node("DeformConv");
    const int64_t ks[] = {2, 2};
    tk_attr_ints(n, "kernel_shape", 2, ks);
    expect_fail(n, 19, 3, in, ONR_E_MODEL, "kernel_shape");
    tk_node_free(n);
    n = tk_node("DeformConv");
    const int64_t st0[] = {0, 1};
    tk_attr_ints(n, "strides", 2, st0);
    expect_fail(n, 19, 3, in, ONR_E_MODEL, "strides");
    tk_node_free(n);
    tk_free_all(3, in);
}

/* The float32 path (float columns, 2-D row sampler, sgemm) against the
 * double reference path on the same values, over strides, pads, dilations,
 * groups, offset groups, a mask and a bias, offsets that leave the input,
 * and enough channels that the columns split into several tiles; 1 and 2
 * threads give the same float32 result. */
static onr_tensor *to_f64(const onr_tensor *t)
{
    double *v = malloc(sizeof(double) * (size_t)(t->numel ? t->numel : 1));
    for (int64_t i = 0; i < t->numel; i++) v[i] = ((const float *)t->data)[i];
    onr_tensor *r = tk_typed(ONR_DOUBLE, t->rank, t->dims, v);
    free(v);
    return r;
}

static void dc_compare(int64_t C, int64_t H, int64_t Wd, int64_t OC, int64_t kh, int64_t kw,
                       int64_t group, int64_t og, int64_t s, int64_t pad, int64_t dil, float scale,
                       int with_mask, int with_bias)
{
    int64_t oh = (H + 2 * pad - dil * (kh - 1) - 1) / s + 1, ow = (Wd + 2 * pad - dil * (kw - 1) - 1) / s + 1;
    int64_t dx[] = {2, C, H, Wd}, dw[] = {OC, C / group, kh, kw};
    int64_t doff[] = {2, og * kh * kw * 2, oh, ow}, dm[] = {2, og * kh * kw, oh, ow}, db[] = {OC};
    onr_tensor *f[5] = {tk_rand_f32(4, dx, 1), tk_rand_f32(4, dw, 2), tk_rand_f32(4, doff, 3),
                        with_bias ? tk_rand_f32(1, db, 4) : NULL,
                        with_mask ? tk_rand_f32(4, dm, 5) : NULL};
    float *ov = f[2]->data;
    for (int64_t i = 0; i < f[2]->numel; i++) ov[i] *= scale;
    onr_tensor *d[5];
    for (int i = 0; i < 5; i++) d[i] = f[i] ? to_f64(f[i]) : NULL;
    onr_node *n = tk_node("DeformConv");
    const int64_t st[] = {s, s}, pd[] = {pad, pad, pad, pad}, dl[] = {dil, dil};
    tk_attr_ints(n, "strides", 2, st);
    tk_attr_ints(n, "pads", 4, pd);
    tk_attr_ints(n, "dilations", 2, dl);
    tk_attr_int(n, "group", group);
    tk_attr_int(n, "offset_group", og);
    onr_tensor *yf[1], *yf2[1], *yd[1];
    onr_err err = {0};
    assert_int_equal(tk_run(n, 19, 5, f, 1, yf, 1, &err), ONR_OK);
    assert_int_equal(tk_run(n, 19, 5, f, 1, yf2, 2, &err), ONR_OK);
    assert_int_equal(tk_run(n, 19, 5, d, 1, yd, 1, &err), ONR_OK);
    assert_int_equal(yf[0]->numel, yd[0]->numel);
    assert_memory_equal(yf[0]->data, yf2[0]->data, (size_t)yf[0]->numel * sizeof(float));
    for (int64_t i = 0; i < yf[0]->numel; i++) {
        double a = ((const float *)yf[0]->data)[i], e = ((const double *)yd[0]->data)[i];
        if (fabs(a - e) > 1e-4 * (1 + fabs(e)))
            fail_msg("element %lld: float32 path %g, double path %g", (long long)i, a, e);
    }
    tk_free_all(1, yf);
    tk_free_all(1, yf2);
    tk_free_all(1, yd);
    for (int i = 0; i < 5; i++) {
        if (f[i]) tk_free_all(1, &f[i]);
        if (d[i]) tk_free_all(1, &d[i]);
    }
    tk_node_free(n);
}

static void test_deformconv_paths(void **state)
{
    (void)state;
    dc_compare(3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 2.f, 0, 0);
    dc_compare(4, 9, 8, 6, 3, 2, 2, 2, 2, 0, 2, 3.f, 1, 1);
    dc_compare(6, 5, 5, 3, 2, 2, 3, 3, 1, 2, 1, 8.f, 1, 0); /* offsets far outside */
    dc_compare(128, 40, 40, 4, 3, 3, 1, 2, 1, 1, 1, 1.f, 1, 1); /* several column tiles */
}

/* ---- MaxRoiPool ------------------------------------------------------------------ */

static void test_maxroipool(void **state)
{
    (void)state;
    int64_t dx[] = {1, 1, 2, 3}, dr[] = {1, 5};
    const float x[] = {1, 5, 2, 4, 3, 6}, roi[] = {0, 0, 0, 2, 1};
    onr_tensor *in[] = {tk_f32(4, dx, x), tk_f32(2, dr, roi)}, *out[1];
    onr_err err = {0};
    onr_node *n = tk_node("MaxRoiPool");
    const int64_t ps[] = {1, 2};
    tk_attr_ints(n, "pooled_shape", 2, ps);
    assert_int_equal(tk_run(n, 1, 2, in, 1, out, 1, &err), ONR_OK);
    /* 2 x 3 region in 1 x 2 bins: columns [0, 2) and [1, 3) */
    const float e[] = {5, 6};
    int64_t dy[] = {1, 1, 1, 2};
    tk_assert_shape(out[0], 4, dy);
    tk_assert_close_f32(out[0], e, 2, 0, 0);
    tk_free_all(1, out);
    tk_free_all(2, in);
    /* batch index out of range, not an integer count, non-finite values */
    const float bad_b[] = {1, 0, 0, 1, 1}, nan_r[] = {0, NAN, 0, 1, 1};
    onr_tensor *b1[] = {tk_f32(4, dx, x), tk_f32(2, dr, bad_b)};
    expect_fail(n, 1, 2, b1, ONR_E_INPUT, "batch index");
    tk_free_all(2, b1);
    onr_tensor *b2[] = {tk_f32(4, dx, x), tk_f32(2, dr, nan_r)};
    expect_fail(n, 1, 2, b2, ONR_E_INPUT, "non-finite");
    tk_free_all(2, b2);
    /* rois of the wrong shape or type, X not 4-D, bfloat16 before 22 */
    int64_t dr4[] = {1, 4}, dx3[] = {1, 2, 3};
    onr_tensor *b3[] = {tk_f32(4, dx, x), tk_f32(2, dr4, NULL)};
    expect_fail(n, 1, 2, b3, ONR_E_MODEL, "num_rois, 5");
    tk_free_all(2, b3);
    onr_tensor *b4[] = {tk_f32(4, dx, x), tk_typed(ONR_DOUBLE, 2, dr, NULL)};
    expect_fail(n, 1, 2, b4, ONR_E_MODEL, "rois is float64");
    tk_free_all(2, b4);
    onr_tensor *b5[] = {tk_f32(3, dx3, NULL), tk_f32(2, dr, roi)};
    expect_fail(n, 1, 2, b5, ONR_E_MODEL, "4-D");
    tk_free_all(2, b5);
    onr_tensor *b6[] = {tk_typed(ONR_BFLOAT16, 4, dx, NULL), tk_typed(ONR_BFLOAT16, 2, dr, NULL)};
    expect_fail(n, 1, 2, b6, ONR_E_UNSUPPORTED, "bfloat16");
    assert_int_equal(tk_run(n, 22, 2, b6, 1, out, 1, &err), ONR_OK);
    tk_free_all(1, out);
    tk_free_all(2, b6);
    tk_node_free(n);
    /* pooled_shape missing, of the wrong length, not positive */
    onr_tensor *ok[] = {tk_f32(4, dx, x), tk_f32(2, dr, roi)};
    n = tk_node("MaxRoiPool");
    expect_fail(n, 1, 2, ok, ONR_E_MODEL, "pooled_shape");
    tk_node_free(n);
    n = tk_node("MaxRoiPool");
    const int64_t p3[] = {1, 1, 1};
    tk_attr_ints(n, "pooled_shape", 3, p3);
    expect_fail(n, 1, 2, ok, ONR_E_MODEL, "pooled_shape");
    tk_node_free(n);
    n = tk_node("MaxRoiPool");
    const int64_t p0[] = {0, 2};
    tk_attr_ints(n, "pooled_shape", 2, p0);
    expect_fail(n, 1, 2, ok, ONR_E_MODEL, "pooled_shape");
    tk_node_free(n);
    n = tk_node("MaxRoiPool");
    tk_attr_ints(n, "pooled_shape", 2, ps);
    tk_attr_float(n, "spatial_scale", INFINITY);
    expect_fail(n, 1, 2, ok, ONR_E_MODEL, "spatial_scale");
    tk_node_free(n);
    tk_free_all(2, ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitwise),
        cmocka_unit_test(test_swish),
        cmocka_unit_test(test_isnan_float8),
        cmocka_unit_test(test_tensorscatter),
        cmocka_unit_test(test_bitcast),
        cmocka_unit_test(test_deformconv),
        cmocka_unit_test(test_deformconv_paths),
        cmocka_unit_test(test_maxroipool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
