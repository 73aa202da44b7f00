/* test_ops_misc.c - Det, LRN, MeanVarianceNormalization and CumProd: hand
 * values, empty inputs and bad shapes or attributes (error, no crash).
 * numpy-checked cases over types and opsets: testdata/spec/{det,lrn,mvn,
 * cumprod}* (tools/spec_cases/misc.py). */
#include "kutil.h"

#include <math.h>
#include <string.h>

static void expect_fail(onr_node *n, int64_t opset, int n_in, onr_tensor **in, onr_status code,
                        const char *needle)
{
    onr_tensor *out[1] = {0};
    onr_err err = {0};
    onr_status st = tk_run(n, opset, n_in, in, 1, out, 1, &err);
    if (st != code) fail_msg("%s: expected status %d, got %d (%s)", n->op_type, code, st, err.msg);
    if (needle && !strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    tk_free_all(1, out);
}

static void test_det(void **state)
{
    (void)state;
    int64_t d[] = {2, 2, 2};
    const float x[] = {1, 2, 3, 4, 0, 1, 1, 0}; /* -2, -1 (needs a row swap) */
    onr_tensor *in[] = {tk_f32(3, d, x)}, *out[1];
    onr_err err = {0};
    onr_node *n = tk_node("Det");
    assert_int_equal(tk_run(n, 11, 1, in, 1, out, 1, &err), ONR_OK);
    const float e[] = {-2, -1};
    int64_t d2[] = {2};
    tk_assert_shape(out[0], 1, d2);
    tk_assert_close_f32(out[0], e, 2, 1e-6f, 0);
    tk_free_all(1, out);
    tk_free_all(1, in);
    /* 0 x 0 matrices: determinant 1; no matrices: empty output */
    int64_t dz[] = {3, 0, 0}, de[] = {0, 4, 4}, d3[] = {3}, d0[] = {0};
    onr_tensor *zin[] = {tk_f32(3, dz, NULL)};
    assert_int_equal(tk_run(n, 22, 1, zin, 1, out, 1, &err), ONR_OK);
    const float ones[] = {1, 1, 1};
    tk_assert_shape(out[0], 1, d3);
    tk_assert_close_f32(out[0], ones, 3, 0, 0);
    tk_free_all(1, out);
    tk_free_all(1, zin);
    onr_tensor *ein[] = {tk_f32(3, de, NULL)};
    assert_int_equal(tk_run(n, 22, 1, ein, 1, out, 1, &err), ONR_OK);
    tk_assert_shape(out[0], 1, d0);
    tk_free_all(1, out);
    tk_free_all(1, ein);
    /* not square, rank 1, bfloat16 before 22 */
    int64_t dn[] = {2, 3}, d1[] = {4};
    onr_tensor *bad[] = {tk_f32(2, dn, NULL)};
    expect_fail(n, 11, 1, bad, ONR_E_MODEL, "must be [*, M, M]");
    tk_free_all(1, bad);
    onr_tensor *bad1[] = {tk_f32(1, d1, NULL)};
    expect_fail(n, 11, 1, bad1, ONR_E_MODEL, "must be [*, M, M]");
    tk_free_all(1, bad1);
    int64_t dsq[] = {2, 2};
    onr_tensor *bf[] = {tk_typed(ONR_BFLOAT16, 2, dsq, NULL)};
    expect_fail(n, 11, 1, bf, ONR_E_UNSUPPORTED, "bfloat16");
    tk_free_all(1, bf);
    tk_node_free(n);
}

static void test_lrn_mvn(void **state)
{
    (void)state;
    /* LRN size 2 on C = 2: channel 0 sums channels 0..1, channel 1 only itself */
    int64_t d[] = {1, 2, 1};
    const float x[] = {1, 2};
    onr_tensor *in[] = {tk_f32(3, d, x)}, *out[1];
    onr_err err = {0};
    onr_node *n = tk_node("LRN");
    tk_attr_int(n, "size", 2);
    tk_attr_float(n, "alpha", 2.f);
    tk_attr_float(n, "beta", 1.f);
    tk_attr_float(n, "bias", 1.f);
    assert_int_equal(tk_run(n, 13, 1, in, 1, out, 1, &err), ONR_OK);
    const float e[] = {1.f / (1 + 1 * 5), 2.f / (1 + 1 * 4)};
    tk_assert_close_f32(out[0], e, 2, 1e-6f, 0);
    tk_free_all(1, out);
    tk_node_free(n);
    n = tk_node("LRN");
    expect_fail(n, 13, 1, in, ONR_E_MODEL, "attribute size (int) is required");
    tk_attr_int(n, "size", 0);
    expect_fail(n, 13, 1, in, ONR_E_MODEL, "attribute size must be >= 1");
    tk_node_free(n);
    /* MVN: default axes need rank 4; a repeated axis is an error */
    n = tk_node("MeanVarianceNormalization");
    expect_fail(n, 13, 1, in, ONR_E_MODEL, "axis 3 is out of range");
    tk_node_free(n);
    n = tk_node("MeanVarianceNormalization");
    const int64_t ax[] = {1, -2};
    tk_attr_ints(n, "axes", 2, ax);
    expect_fail(n, 13, 1, in, ONR_E_MODEL, "axes lists dim 1 twice");
    tk_node_free(n);
    n = tk_node("MeanVarianceNormalization");
    const int64_t ax1[] = {1};
    tk_attr_ints(n, "axes", 1, ax1);
    assert_int_equal(tk_run(n, 9, 1, in, 1, out, 1, &err), ONR_OK);
    const float em[] = {-1.f / (1 + 1e-9f), 1.f / (1 + 1e-9f)};
    tk_assert_close_f32(out[0], em, 2, 1e-6f, 0);
    tk_free_all(1, out);
    tk_node_free(n);
    tk_free_all(1, in);
}

static void test_cumprod(void **state)
{
    (void)state;
    int64_t d[] = {4};
    const float x[] = {1, 2, 3, 4};
    const int64_t ax0 = 0, ax_bad = 1;
    onr_tensor *in[] = {tk_f32(1, d, x), tk_i64(0, NULL, &ax0)}, *out[1];
    onr_err err = {0};
    onr_node *n = tk_node("CumProd");
    tk_attr_int(n, "exclusive", 1);
    tk_attr_int(n, "reverse", 1);
    assert_int_equal(tk_run(n, 26, 2, in, 1, out, 2, &err), ONR_OK);
    const float e[] = {24, 12, 4, 1};
    tk_assert_close_f32(out[0], e, 4, 0, 0);
    tk_free_all(1, out);
    tk_node_free(n);
    n = tk_node("CumProd");
    onr_tensor *bad[] = {in[0], tk_i64(0, NULL, &ax_bad)};
    expect_fail(n, 26, 2, bad, ONR_E_MODEL, "axis 1 is out of range for rank 1");
    onr_tensor_free(bad[1]);
    int64_t d2[] = {2};
    const int64_t two[] = {0, 0};
    onr_tensor *bad2[] = {in[0], tk_i64(1, d2, two)};
    expect_fail(n, 26, 2, bad2, ONR_E_MODEL, "axis must hold one value");
    onr_tensor_free(bad2[1]);
    onr_tensor *i8[] = {tk_typed(ONR_INT8, 1, d, NULL), in[1]};
    expect_fail(n, 26, 2, i8, ONR_E_UNSUPPORTED, "int8");
    onr_tensor_free(i8[0]);
    tk_node_free(n);
    n = tk_node("CumProd");
    tk_attr_int(n, "reverse", 3);
    expect_fail(n, 26, 2, in, ONR_E_MODEL, "'reverse' must be an int 0 or 1");
    tk_node_free(n);
    tk_free_all(2, in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_det),
        cmocka_unit_test(test_lrn_mvn),
        cmocka_unit_test(test_cumprod),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
