/*
 * test_ops_qlinear_f8.c - QLinearMatMul-21's float8 a/b/y (qgemm.c,
 * qlmm_run_f8): refused before 21, the same bytes at 1 and 4 threads,
 * NaN and saturation, the integer path untouched at 21. Values against
 * the specification's formula are in the spec cases qlinearmatmul21_*
 * (tools/spec_cases/qlinearmatmul_f8.py).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kutil.h"

static onr_tensor *scalar_f32(float v) { return tk_f32(0, NULL, &v); }

static onr_tensor *f8(onr_dtype dt, int rank, const int64_t *dims, const double *vals, int64_t n)
{
    uint8_t *b = malloc((size_t)n);
    for (int64_t i = 0; i < n; i++) b[i] = onr_f64_to_lowp(dt, vals[i], 1);
    onr_tensor *t = tk_typed(dt, rank, dims, b);
    free(b);
    return t;
}

/* y = QLinearMatMul(a, 1, 0, b, 1, 0, ys, 0) with a, b, y of type dt. */
static onr_status run(onr_dtype dt, int64_t opset, const int64_t *ad, const double *av,
                      const int64_t *bd, const double *bv, float ys, int nthreads, onr_tensor **y,
                      onr_err *err)
{
    onr_node *n = tk_node("QLinearMatMul");
    double zero = 0;
    onr_tensor *in[8] = {f8(dt, 2, ad, av, ad[0] * ad[1]), scalar_f32(1), f8(dt, 0, NULL, &zero, 1),
                         f8(dt, 2, bd, bv, bd[0] * bd[1]), scalar_f32(1), f8(dt, 0, NULL, &zero, 1),
                         scalar_f32(ys), f8(dt, 0, NULL, &zero, 1)};
    onr_tensor *out[1] = {NULL};
    onr_status st = tk_run(n, opset, 8, in, 1, out, nthreads, err);
    tk_free_all(8, in);
    tk_node_free(n);
    *y = out[0];
    return st;
}

static void test_refused_before_21(void **state)
{
    (void)state;
    const int64_t d[2] = {1, 1};
    const double one = 1;
    onr_tensor *y = NULL;
    onr_err e = {0};
    assert_int_equal(run(ONR_FLOAT8E4M3FN, 20, d, &one, d, &one, 1, 1, &y, &e), ONR_E_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "float8e4m3fn"));
    tk_free_all(1, &y);
    assert_int_equal(run(ONR_FLOAT8E4M3FN, 21, d, &one, d, &one, 1, 1, &y, &e), ONR_OK);
    assert_int_equal(y->dtype, ONR_FLOAT8E4M3FN);
    assert_true(onr_lowp_to_f64(ONR_FLOAT8E4M3FN, ((uint8_t *)y->data)[0]) == 1.0);
    tk_free_all(1, &y);
}

static void test_threads_nan_saturation(void **state)
{
    (void)state;
    const int64_t M = 37, K = 29, N = 41, ad[2] = {M, K}, bd[2] = {K, N};
    double *av = malloc(sizeof(double) * M * K), *bv = malloc(sizeof(double) * K * N);
    uint32_t s = 7;
    for (int64_t i = 0; i < M * K; i++) {
        s = s * 1664525u + 1013904223u;
        av[i] = ((int)(s >> 24) - 128) / 16.0;
    }
    for (int64_t i = 0; i < K * N; i++) {
        s = s * 1664525u + 1013904223u;
        bv[i] = ((int)(s >> 24) - 128) / 32.0;
    }
    av[5] = NAN; /* row 0: every output of it is NaN */
    static const onr_dtype dts[] = {ONR_FLOAT8E4M3FN, ONR_FLOAT8E4M3FNUZ, ONR_FLOAT8E5M2,
                                    ONR_FLOAT8E5M2FNUZ};
    for (int t = 0; t < 4; t++) {
        onr_tensor *y1 = NULL, *y4 = NULL;
        onr_err e = {0};
        assert_int_equal(run(dts[t], 21, ad, av, bd, bv, 0.05f, 1, &y1, &e), ONR_OK);
        assert_int_equal(run(dts[t], 21, ad, av, bd, bv, 0.05f, 4, &y4, &e), ONR_OK);
        assert_memory_equal(y1->data, y4->data, (size_t)(M * N));
        const uint8_t *p = y1->data;
        double mx = 0;
        int nan_row = 1, saturated = 0;
        for (int64_t n = 0; n < N; n++) nan_row &= isnan(onr_lowp_to_f64(dts[t], p[n]));
        for (int64_t i = N; i < M * N; i++) {
            double v = onr_lowp_to_f64(dts[t], p[i]);
            assert_false(isnan(v) || isinf(v));
            if (fabs(v) > mx) mx = fabs(v);
        }
        /* the largest finite value of each type: 448, 240, 57344, 57344 */
        const double top[] = {448, 240, 57344, 57344};
        for (int64_t i = N; i < M * N; i++) saturated += fabs(onr_lowp_to_f64(dts[t], p[i])) == top[t];
        assert_true(nan_row);
        assert_true(mx <= top[t]);
        if (t < 2) assert_true(saturated > 0); /* sums / 0.05 pass 448 and 240 */
        tk_free_all(1, &y1);
        tk_free_all(1, &y4);
    }
    free(av);
    free(bv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_before_21),
        cmocka_unit_test(test_threads_nan_saturation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
