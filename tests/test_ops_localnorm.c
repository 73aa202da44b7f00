/* test_ops_localnorm.c - MeanVarianceNormalization and LRN: against plain
 * double references, thread-count independence, bfloat16 only from opset
 * 13, empty inputs, bad attributes and shapes (clean errors). */
#include "kutil.h"

#include <math.h>
#include <string.h>

static onr_tensor *run1(onr_node *n, int64_t opset, onr_tensor *x, int nthreads)
{
    onr_tensor *out[1], *in[1] = {x};
    onr_err err = {0};
    if (tk_run(n, opset, 1, in, 1, out, nthreads, &err) != ONR_OK)
        fail_msg("%s failed: %s", n->op_type, err.msg);
    return out[0];
}

static void expect_fail(onr_node *n, int64_t opset, onr_tensor *x, const char *needle)
{
    onr_tensor *out[1], *in[1] = {x};
    onr_err err = {0};
    if (tk_run(n, opset, 1, in, 1, out, 1, &err) == ONR_OK)
        fail_msg("%s: expected an error mentioning '%s'", n->op_type, needle);
    if (!strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    tk_free_all(1, out);
}

/* MVN over axes {1} of a [2, 3, 4] tensor, by hand. */
static void test_mvn_axis1(void **state)
{
    (void)state;
    int64_t d[3] = {2, 3, 4};
    onr_tensor *x = tk_rand_f32(3, d, 5);
    onr_node *n = tk_node("MeanVarianceNormalization");
    const int64_t ax[1] = {-2};
    tk_attr_ints(n, "axes", 1, ax);
    onr_tensor *y = run1(n, 13, x, 1), *y4 = run1(n, 9, x, 4);
    assert_memory_equal(y->data, y4->data, onr_tensor_nbytes(y));
    float want[24];
    const float *xv = x->data;
    for (int a = 0; a < 2; a++)
        for (int c = 0; c < 4; c++) {
            double m = 0, v = 0;
            for (int b = 0; b < 3; b++) m += xv[(a * 3 + b) * 4 + c] / 3.0;
            for (int b = 0; b < 3; b++) v += pow(xv[(a * 3 + b) * 4 + c] - m, 2) / 3.0;
            for (int b = 0; b < 3; b++)
                want[(a * 3 + b) * 4 + c] = (float)((xv[(a * 3 + b) * 4 + c] - m) / (sqrt(v) + 1e-9));
        }
    tk_assert_close_f32(y, want, 24, 1e-5f, 1e-6f);
    onr_tensor_free(y);
    onr_tensor_free(y4);
    tk_node_free(n);
    onr_tensor_free(x);
}

static void test_mvn_errors(void **state)
{
    (void)state;
    int64_t d3[3] = {2, 3, 4};
    onr_tensor *x = tk_rand_f32(3, d3, 1);
    onr_node *n = tk_node("MeanVarianceNormalization"); /* default [0,2,3] needs rank 4 */
    expect_fail(n, 13, x, "axis 3 is out of range");
    tk_node_free(n);
    const int64_t dup[2] = {1, -2};
    n = tk_node("MeanVarianceNormalization");
    tk_attr_ints(n, "axes", 2, dup);
    expect_fail(n, 13, x, "twice");
    tk_node_free(n);
    onr_tensor *b = tk_typed(ONR_BFLOAT16, 3, d3, NULL);
    const int64_t a0[1] = {0};
    n = tk_node("MeanVarianceNormalization");
    tk_attr_ints(n, "axes", 1, a0);
    expect_fail(n, 9, b, "from opset 13");
    onr_tensor *y = run1(n, 13, b, 1);
    assert_int_equal(y->dtype, ONR_BFLOAT16);
    onr_tensor_free(y);
    /* empty input, huge dims beside the zero */
    int64_t de[3] = {1ll << 40, 0, 1ll << 40};
    onr_tensor *e = tk_f32(3, de, NULL);
    y = run1(n, 13, e, 2);
    tk_assert_shape(y, 3, de);
    onr_tensor_free(y);
    tk_node_free(n);
    onr_tensor *xi = tk_i64(3, d3, NULL);
    n = tk_node("MeanVarianceNormalization");
    tk_attr_ints(n, "axes", 1, a0);
    expect_fail(n, 13, xi, "unsupported type");
    tk_node_free(n);
    tk_free_all(1, &xi), tk_free_all(1, &e), tk_free_all(1, &b), tk_free_all(1, &x);
}

static void test_lrn(void **state)
{
    (void)state;
    int64_t d[4] = {2, 5, 3, 3};
    onr_tensor *x = tk_rand_f32(4, d, 9);
    onr_node *n = tk_node("LRN");
    tk_attr_int(n, "size", 4);
    tk_attr_float(n, "alpha", 0.5f);
    tk_attr_float(n, "beta", 0.6f);
    tk_attr_float(n, "bias", 1.5f);
    onr_tensor *y = run1(n, 13, x, 1), *y4 = run1(n, 1, x, 4);
    assert_memory_equal(y->data, y4->data, onr_tensor_nbytes(y));
    float want[90];
    const float *xv = x->data;
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 5; c++)
            for (int i = 0; i < 9; i++) {
                double s = 0;
                for (int j = c - 1; j <= c + 2; j++) /* floor(3/2) = 1 below, ceil = 2 above */
                    if (j >= 0 && j < 5) s += (double)xv[(b * 5 + j) * 9 + i] * xv[(b * 5 + j) * 9 + i];
                want[(b * 5 + c) * 9 + i] = (float)(xv[(b * 5 + c) * 9 + i] / pow(1.5 + 0.5 / 4 * s, 0.6));
            }
    tk_assert_close_f32(y, want, 90, 1e-5f, 1e-7f);
    onr_tensor_free(y);
    onr_tensor_free(y4);
    tk_node_free(n);
    n = tk_node("LRN");
    expect_fail(n, 13, x, "size (int) is required");
    tk_node_free(n);
    n = tk_node("LRN");
    tk_attr_int(n, "size", 0);
    expect_fail(n, 13, x, "size must be >= 1");
    tk_node_free(n);
    int64_t d1[1] = {4};
    onr_tensor *v = tk_rand_f32(1, d1, 2);
    n = tk_node("LRN");
    tk_attr_int(n, "size", 3);
    expect_fail(n, 13, v, "rank >= 2");
    int64_t de[3] = {0, 4, 1ll << 40};
    onr_tensor *e = tk_f32(3, de, NULL);
    y = run1(n, 13, e, 2);
    tk_assert_shape(y, 3, de);
    onr_tensor_free(y);
    tk_node_free(n);
    tk_free_all(1, &e), tk_free_all(1, &v), tk_free_all(1, &x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mvn_axis1),
        cmocka_unit_test(test_mvn_errors),
        cmocka_unit_test(test_lrn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
