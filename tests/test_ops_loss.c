/* test_ops_loss.c - NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss:
 * the specification's worked examples, a double reference over N-D inputs
 * with weights and (negative) ignore_index for every reduction, the
 * log_prob output, other float types, and bad inputs (out-of-range classes,
 * shapes, attributes) that must fail cleanly. */
#include "kutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The three examples of the NLL specification (N=2, C=3, d1=2). */
static void test_nll_spec_examples(void **state)
{
    (void)state;
    int64_t dx[] = {2, 3, 2}, dt[] = {2, 2}, dw[] = {3};
    const float x[] = {1, 2, 2, 2, 3, 2, 0, 1, 2, 2, 1, 2};
    const int64_t t[] = {2, 1, 0, 2};
    const float w[] = {0.2f, 0.3f, 0.1f};
    onr_tensor *in[] = {tk_f32(3, dx, x), tk_i64(2, dt, t), tk_f32(1, dw, w)};
    onr_tensor *out[1];
    onr_err err = {0};
    /* none, no weight */
    onr_node *n = tk_node("NegativeLogLikelihoodLoss");
    tk_attr_string(n, "reduction", "none");
    assert_int_equal(tk_run(n, 13, 2, in, 1, out, 1, &err), ONR_OK);
    const float e_none[] = {-3, -2, -0, -2};
    tk_assert_shape(out[0], 2, dt);
    tk_assert_close_f32(out[0], e_none, 4, 1e-6f, 0);
    tk_free_all(1, out);
    tk_node_free(n);
    /* sum, weighted: -1.1 */
    n = tk_node("NegativeLogLikelihoodLoss");
    tk_attr_string(n, "reduction", "sum");
    assert_int_equal(tk_run(n, 12, 3, in, 1, out, 1, &err), ONR_OK);
    const float e_sum[] = {-1.1f};
    tk_assert_shape(out[0], 0, NULL);
    tk_assert_close_f32(out[0], e_sum, 1, 1e-6f, 0);
    tk_free_all(1, out);
    tk_node_free(n);
    /* mean (default), weighted: -1.57 */
    n = tk_node("NegativeLogLikelihoodLoss");
    assert_int_equal(tk_run(n, 22, 3, in, 1, out, 1, &err), ONR_OK);
    const float e_mean[] = {-1.1f / 0.7f};
    tk_assert_close_f32(out[0], e_mean, 1, 1e-6f, 0);
    tk_free_all(1, out);
    tk_node_free(n);
    tk_free_all(3, in);
}

/* Reference in double over [N, C, D]: the loss per sample and the reduced
 * value. sce: take the log-softmax along C first (into lp when non-NULL). */
static double ref_loss(int sce, const double *x, const int64_t *t, const double *w, int64_t N,
                       int64_t C, int64_t D, int has_ii, int64_t ii, int red, double *none,
                       double *lp)
{
    double ls = 0, ws = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < D; d++) {
            const double *px = x + n * C * D + d;
            double lse = 0;
            if (sce) {
                double m = px[0], s = 0;
                for (int64_t c = 1; c < C; c++) m = px[c * D] > m ? px[c * D] : m;
                for (int64_t c = 0; c < C; c++) s += exp(px[c * D] - m);
                lse = m + log(s);
                if (lp)
                    for (int64_t c = 0; c < C; c++) lp[n * C * D + c * D + d] = px[c * D] - lse;
            }
            int64_t c = t[n * D + d];
            double l = 0, wc = 0;
            if (!(has_ii && c == ii)) {
                wc = w ? w[c] : 1;
                l = -(px[c * D] - lse) * wc;
            }
            if (none) none[n * D + d] = l;
            ls += l;
            ws += wc;
        }
    return red == 1 ? ls : ls / ws;
}

static const char *red_names[] = {"none", "sum", "mean"};

/* Both ops, N-D, every reduction, with and without weights and
 * ignore_index (negative too), int32 and int64 targets, 1 and 2 threads. */
static void test_loss_vs_reference(void **state)
{
    (void)state;
    enum { N = 3, C = 5, D1 = 4, D2 = 3, D = D1 * D2 };
    int64_t dx[] = {N, C, D1, D2}, dt[] = {N, D1, D2}, dw[] = {C};
    double xd[N * C * D], wd[C], none[N * D], lp[N * C * D];
    int64_t t[N * D];
    int32_t t32[N * D];
    float xf[N * C * D], wf[C], enone[N * D], elp[N * C * D];
    uint32_t s = 12345;
    for (int i = 0; i < N * C * D; i++) {
        s = s * 1103515245u + 12345u;
        xf[i] = (float)((int)(s >> 16) % 2000 - 1000) / 137.f;
        xd[i] = xf[i];
    }
    for (int i = 0; i < C; i++) wd[i] = wf[i] = 0.25f + 0.5f * (float)i;
    for (int i = 0; i < N * D; i++) {
        t[i] = (i * 7) % C;
        if (i % 5 == 3) t[i] = -3; /* ignored when ignore_index = -3 */
        t32[i] = (int32_t)t[i];
    }
    for (int sce = 0; sce < 2; sce++)
        for (int red = 0; red < 3; red++)
            for (int weighted = 0; weighted < 2; weighted++)
                for (int i32 = 0; i32 < 2; i32++)
                    for (int nt = 1; nt <= 2; nt++) {
                        onr_node *n = tk_node(sce ? "SoftmaxCrossEntropyLoss" : "NegativeLogLikelihoodLoss");
                        tk_attr_string(n, "reduction", red_names[red]);
                        tk_attr_int(n, "ignore_index", -3);
                        onr_tensor *in[] = {tk_f32(4, dx, xf),
                                            i32 ? tk_i32(3, dt, t32) : tk_i64(3, dt, t),
                                            weighted ? tk_f32(1, dw, wf) : NULL};
                        onr_tensor *out[2];
                        onr_err err = {0};
                        int nout = sce ? 2 : 1;
                        onr_status st = tk_run(n, 13, 3, in, nout, out, nt, &err);
                        if (st) fail_msg("%s: %s", n->op_type, err.msg);
                        double r = ref_loss(sce, xd, t, weighted ? wd : NULL, N, C, D, 1, -3,
                                            red, none, lp);
                        if (red == 0) {
                            for (int i = 0; i < N * D; i++) enone[i] = (float)none[i];
                            tk_assert_shape(out[0], 3, dt);
                            tk_assert_close_f32(out[0], enone, N * D, 1e-5f, 1e-6f);
                        } else {
                            float e = (float)r;
                            tk_assert_shape(out[0], 0, NULL);
                            tk_assert_close_f32(out[0], &e, 1, 1e-5f, 1e-6f);
                        }
                        if (sce) {
                            for (int i = 0; i < N * C * D; i++) elp[i] = (float)lp[i];
                            tk_assert_shape(out[1], 4, dx);
                            tk_assert_close_f32(out[1], elp, N * C * D, 1e-5f, 1e-6f);
                        }
                        tk_free_all(nout, out);
                        tk_free_all(3, in);
                        tk_node_free(n);
                    }
}

/* SCE with the log_prob output omitted, large scores (no overflow), 2-D. */
static void test_sce_2d_large(void **state)
{
    (void)state;
    int64_t dx[] = {2, 3}, dt[] = {2};
    const float x[] = {1000, 1001, 1002, -5, 0, 5};
    const int64_t t[] = {0, 2};
    onr_node *n = tk_node("SoftmaxCrossEntropyLoss");
    tk_attr_string(n, "reduction", "none");
    onr_tensor *in[] = {tk_f32(2, dx, x), tk_i64(1, dt, t)};
    onr_tensor *out[1];
    onr_err err = {0};
    assert_int_equal(tk_run(n, 12, 2, in, 1, out, 1, &err), ONR_OK);
    double l0 = log(1 + exp(1.0) + exp(2.0)), l1 = log(exp(-10.0) + exp(-5.0) + 1);
    const float e[] = {(float)l0, (float)l1};
    tk_assert_close_f32(out[0], e, 2, 1e-6f, 0);
    tk_free_all(1, out);
    tk_free_all(2, in);
    tk_node_free(n);
}

/* double, float16 and bfloat16 inputs (bfloat16 only from NLL-22 / SCE-13). */
static void test_loss_other_types(void **state)
{
    (void)state;
    int64_t dx[] = {2, 3}, dt[] = {2}, dw[] = {3};
    const double xd[] = {-1.5, -0.25, -2, -0.5, -3, -1};
    const double wd[] = {1, 2, 0.5};
    const int64_t t[] = {1, 2};
    /* NLL mean weighted: (0.25*2 + 1*0.5) / 2.5 = 0.4 */
    uint16_t xh[6], wh[3], xb[6], wb[3];
    for (int i = 0; i < 6; i++) {
        xh[i] = onr_float_to_half((float)xd[i]);
        xb[i] = onr_float_to_bf16((float)xd[i]);
    }
    for (int i = 0; i < 3; i++) {
        wh[i] = onr_float_to_half((float)wd[i]);
        wb[i] = onr_float_to_bf16((float)wd[i]);
    }
    struct { onr_dtype dt; const void *x, *w; } cases[] = {
        {ONR_DOUBLE, xd, wd}, {ONR_FLOAT16, xh, wh}, {ONR_BFLOAT16, xb, wb}};
    for (int k = 0; k < 3; k++) {
        onr_node *n = tk_node("NegativeLogLikelihoodLoss");
        onr_tensor *in[] = {tk_typed(cases[k].dt, 2, dx, cases[k].x), tk_i64(1, dt, t),
                            tk_typed(cases[k].dt, 1, dw, cases[k].w)};
        onr_tensor *out[1];
        onr_err err = {0};
        assert_int_equal(tk_run(n, 22, 3, in, 1, out, 1, &err), ONR_OK);
        assert_int_equal(out[0]->dtype, cases[k].dt);
        assert_true(fabs(onr_get_f64(out[0], 0) - 0.4) < 2e-3);
        tk_free_all(1, out);
        if (cases[k].dt == ONR_BFLOAT16) /* not in the opset-13 schema */
            tk_expect_fail(n, 13, 3, in, 1, ONR_E_UNSUPPORTED, "bfloat16");
        tk_node_free(n);
        /* SCE, sum, log_prob in the same type */
        n = tk_node("SoftmaxCrossEntropyLoss");
        tk_attr_string(n, "reduction", "sum");
        onr_tensor *out2[2];
        assert_int_equal(tk_run(n, 13, 2, in, 2, out2, 1, &err), ONR_OK);
        double e = 0;
        for (int r = 0; r < 2; r++) {
            double s = 0;
            for (int c = 0; c < 3; c++) s += exp(xd[r * 3 + c]);
            e -= xd[r * 3 + t[r]] - log(s);
        }
        assert_int_equal(out2[1]->dtype, cases[k].dt);
        assert_true(fabs(onr_get_f64(out2[0], 0) - e) < 2e-2 * fabs(e));
        tk_free_all(2, out2);
        tk_free_all(3, in);
        tk_node_free(n);
    }
}

/* mean with every sample ignored is 0/0 = NaN; empty batch: none gives an
 * empty tensor, sum 0, mean NaN. */
static void test_loss_degenerate(void **state)
{
    (void)state;
    int64_t dx[] = {2, 3}, dt[] = {2};
    const float x[] = {1, 2, 3, 4, 5, 6};
    const int64_t t[] = {7, 7};
    onr_node *n = tk_node("NegativeLogLikelihoodLoss");
    tk_attr_int(n, "ignore_index", 7);
    onr_tensor *in[] = {tk_f32(2, dx, x), tk_i64(1, dt, t)};
    onr_tensor *out[2];
    onr_err err = {0};
    assert_int_equal(tk_run(n, 13, 2, in, 1, out, 1, &err), ONR_OK);
    assert_true(isnan(((float *)out[0]->data)[0]));
    tk_free_all(1, out);
    tk_free_all(2, in);
    tk_node_free(n);
    int64_t ex[] = {0, 3, 2}, et[] = {0, 2};
    for (int red = 0; red < 3; red++)
        for (int sce = 0; sce < 2; sce++) {
            n = tk_node(sce ? "SoftmaxCrossEntropyLoss" : "NegativeLogLikelihoodLoss");
            tk_attr_string(n, "reduction", red_names[red]);
            onr_tensor *ein[] = {tk_f32(3, ex, NULL), tk_i64(2, et, NULL)};
            assert_int_equal(tk_run(n, 13, 2, ein, 1 + sce, out, 2, &err), ONR_OK);
            if (red == 0) {
                tk_assert_shape(out[0], 2, et);
            } else {
                float v = ((float *)out[0]->data)[0];
                assert_true(red == 1 ? v == 0 : isnan(v));
            }
            tk_free_all(1 + sce, out);
            tk_free_all(2, ein);
            tk_node_free(n);
        }
}

static void test_loss_errors(void **state)
{
    (void)state;
    int64_t dx[] = {2, 3}, dt[] = {2}, dt_bad[] = {3}, dw_bad[] = {2}, dx1[] = {3};
    const float x[] = {1, 2, 3, 4, 5, 6}, w[] = {1, 1};
    const int64_t t_hi[] = {0, 3}, t_neg[] = {-1, 0}, t[] = {0, 1, 2};
    const char *ops[] = {"NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"};
    for (int k = 0; k < 2; k++) {
        /* class out of range: error naming it, also with an ignore_index that does not match */
        onr_node *n = tk_node(ops[k]);
        onr_tensor *in[] = {tk_f32(2, dx, x), tk_i64(1, dt, t_hi)};
        tk_expect_fail(n, 13, 2, in, 1, ONR_E_INPUT, "3 (element 1) is not a class in [0, 3)");
        tk_free_all(2, in);
        tk_attr_int(n, "ignore_index", -100);
        onr_tensor *in2[] = {tk_f32(2, dx, x), tk_i64(1, dt, t_neg)};
        tk_expect_fail(n, 13, 2, in2, 1, ONR_E_INPUT, "-1 (element 0)");
        tk_free_all(2, in2);
        tk_node_free(n);
        /* target shape */
        n = tk_node(ops[k]);
        onr_tensor *in3[] = {tk_f32(2, dx, x), tk_i64(1, dt_bad, t)};
        tk_expect_fail(n, 13, 2, in3, 1, ONR_E_MODEL, "does not match");
        tk_free_all(2, in3);
        /* weight of the wrong length, input of rank 1, float target */
        onr_tensor *in4[] = {tk_f32(2, dx, x), tk_i64(1, dt, t), tk_f32(1, dw_bad, w)};
        tk_expect_fail(n, 13, 3, in4, 1, ONR_E_MODEL, "must be [C] with C = 3");
        tk_free_all(3, in4);
        onr_tensor *in5[] = {tk_f32(1, dx1, x), tk_i64(1, dt, t)};
        tk_expect_fail(n, 13, 2, in5, 1, ONR_E_MODEL, "rank 1");
        tk_free_all(2, in5);
        onr_tensor *in6[] = {tk_f32(2, dx, x), tk_f32(1, dt, x)};
        tk_expect_fail(n, 13, 2, in6, 1, ONR_E_UNSUPPORTED, "input 1");
        tk_free_all(2, in6);
        tk_node_free(n);
        /* attributes */
        n = tk_node(ops[k]);
        tk_attr_string(n, "reduction", "average");
        onr_tensor *in7[] = {tk_f32(2, dx, x), tk_i64(1, dt, t)};
        tk_expect_fail(n, 13, 2, in7, 1, ONR_E_MODEL, "'reduction' is 'average'");
        tk_node_free(n);
        n = tk_node(ops[k]);
        tk_attr_float(n, "ignore_index", 1.f);
        tk_expect_fail(n, 13, 2, in7, 1, ONR_E_MODEL, "'ignore_index' must be an int");
        tk_node_free(n);
        n = tk_node(ops[k]);
        tk_attr_int(n, "reduction", 1);
        tk_expect_fail(n, 13, 2, in7, 1, ONR_E_MODEL, "'reduction' must be a string");
        tk_node_free(n);
        tk_free_all(2, in7);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nll_spec_examples),
        cmocka_unit_test(test_loss_vs_reference),
        cmocka_unit_test(test_sce_2d_large),
        cmocka_unit_test(test_loss_other_types),
        cmocka_unit_test(test_loss_degenerate),
        cmocka_unit_test(test_loss_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
