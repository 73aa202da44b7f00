/* test_ops_training.c - Adagrad, Adam and Momentum (ai.onnx.preview.training):
 * one hand-computed update each, and clean errors for missing or bad
 * attributes, input/output counts that do not form groups, and tensors
 * whose shape or type differs from their X. */
#include "kutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static onr_node *opt_node(const char *op)
{
    onr_node *n = tk_node(op);
    free(n->domain);
    n->domain = onr_strdup("ai.onnx.preview.training");
    return n;
}

static void expect_fail(onr_node *n, int n_in, onr_tensor **in, int n_out, const char *needle)
{
    onr_tensor *out[6] = {0};
    onr_err err = {0};
    if (tk_run(n, 1, n_in, in, n_out, out, 1, &err) == ONR_OK)
        fail_msg("%s: expected an error mentioning '%s'", n->op_type, needle);
    if (!strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    tk_free_all(n_out, out);
}

static void test_updates(void **state)
{
    (void)state;
    const float r = 0.5f, x = 2.f, g = 1.f, v = 0.5f, h = 3.f;
    const int64_t t = 1, d[1] = {1};
    onr_tensor *R = tk_f32(0, NULL, &r), *T = tk_i64(0, NULL, &t), *X = tk_f32(1, d, &x),
               *G = tk_f32(1, d, &g), *V = tk_f32(1, d, &v), *H = tk_f32(1, d, &h);
    onr_tensor *out[3];
    onr_err err = {0};
    /* Adagrad: r' = 0.5 / 1.1; h' = 3 + 1 = 4; x' = 2 - r' * 1 / (2 + 1e-6) */
    onr_node *n = opt_node("Adagrad");
    tk_attr_float(n, "decay_factor", 0.1f);
    onr_tensor *ia[5] = {R, T, X, G, H};
    assert_int_equal(tk_run(n, 1, 5, ia, 2, out, 1, &err), ONR_OK);
    float wx = (float)(2 - 0.5 / 1.1 / (2 + 1e-6)), wh = 4;
    tk_assert_close_f32(out[0], &wx, 1, 1e-6f, 0);
    tk_assert_close_f32(out[1], &wh, 1, 0, 0);
    tk_free_all(2, out);
    tk_node_free(n);
    /* Adam, T = 1: v' = 0.9*0.5 + 0.1 = 0.55; h' = 0.999*3 + 0.001 = 2.998;
     * r' = 0.5 * sqrt(0.001) / 0.1 */
    n = opt_node("Adam");
    onr_tensor *id[6] = {R, T, X, G, V, H};
    assert_int_equal(tk_run(n, 1, 6, id, 3, out, 1, &err), ONR_OK);
    double rr = 0.5 * sqrt(1 - 0.999) / (1 - 0.9);
    float ax = (float)(2 - rr * 0.55 / (sqrt(2.998) + 1e-6)), av = 0.55f, ah = 2.998f;
    tk_assert_close_f32(out[0], &ax, 1, 1e-6f, 0);
    tk_assert_close_f32(out[1], &av, 1, 1e-6f, 0);
    tk_assert_close_f32(out[2], &ah, 1, 1e-6f, 0);
    tk_free_all(3, out);
    tk_node_free(n);
    /* Momentum nesterov, T = 1: v' = 0.9*0.5 + 0.8*1 = 1.25; x' = 2 - 0.5*(1 + 0.9*1.25) */
    n = opt_node("Momentum");
    tk_attr_float(n, "alpha", 0.9f);
    tk_attr_float(n, "beta", 0.8f);
    tk_attr_float(n, "norm_coefficient", 0.f);
    tk_attr_string(n, "mode", "nesterov");
    onr_tensor *im[5] = {R, T, X, G, V};
    assert_int_equal(tk_run(n, 1, 5, im, 2, out, 1, &err), ONR_OK);
    float mx = (float)(2 - 0.5 * (1 + 0.9 * 1.25)), mv = 1.25f;
    tk_assert_close_f32(out[0], &mx, 1, 1e-6f, 0);
    tk_assert_close_f32(out[1], &mv, 1, 1e-6f, 0);
    tk_free_all(2, out);
    tk_node_free(n);

    /* errors */
    n = opt_node("Momentum");
    expect_fail(n, 5, im, 2, "alpha (float) is required");
    tk_attr_float(n, "alpha", 0.9f);
    tk_attr_float(n, "beta", 0.8f);
    tk_attr_float(n, "norm_coefficient", 0.f);
    expect_fail(n, 5, im, 2, "mode (string) is required");
    tk_attr_string(n, "mode", "heavy");
    expect_fail(n, 5, im, 2, "not standard or nesterov");
    tk_node_free(n);
    n = opt_node("Adagrad");
    expect_fail(n, 4, ia, 2, "groups of the same number");
    expect_fail(n, 5, ia, 3, "needs 2");
    const int64_t d2[1] = {2};
    onr_tensor *G2 = tk_f32(1, d2, NULL), *Rd = tk_typed(ONR_DOUBLE, 0, NULL, NULL), *Ri = tk_i64(0, NULL, &t);
    onr_tensor *bad[5] = {R, T, X, G2, H}, *badr[5] = {Ri, T, X, G, H};
    expect_fail(n, 5, bad, 2, "must have the type and shape of X1");
    expect_fail(n, 5, badr, 2, "unsupported type");
    /* R may be double with float tensors */
    onr_tensor *okr[5] = {Rd, T, X, G, H};
    assert_int_equal(tk_run(n, 1, 5, okr, 2, out, 1, &err), ONR_OK);
    tk_free_all(2, out);
    tk_node_free(n);
    tk_free_all(1, &G2), tk_free_all(1, &Rd), tk_free_all(1, &Ri);
    tk_free_all(1, &R), tk_free_all(1, &T), tk_free_all(1, &X), tk_free_all(1, &G);
    tk_free_all(1, &V), tk_free_all(1, &H);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_updates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
