/* test_ops_random.c - RandomNormal/Uniform(+Like), Bernoulli, Multinomial
 * and Dropout's training mode: shapes and types, seeded runs identical
 * across runs and thread counts, unseeded runs different, ranges, and
 * mean / variance / frequencies of large draws within statistical bounds
 * (about 6 standard errors, so a correct generator fails with negligible
 * probability); bad attributes and inputs give clean errors. */
#include "kutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void expect_fail(onr_node *n, int64_t opset, int n_in, onr_tensor **in, const char *needle)
{
    onr_tensor *out[1];
    onr_err err = {0};
    onr_status st = tk_run(n, opset, n_in, in, 1, out, 1, &err);
    if (st == ONR_OK) fail_msg("%s: expected an error mentioning '%s'", n->op_type, needle);
    if (!strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    tk_free_all(1, out);
}

static void moments(const onr_tensor *t, double *mean, double *var)
{
    double s = 0, q = 0;
    for (int64_t i = 0; i < t->numel; i++) s += onr_get_f64(t, i);
    *mean = s / (double)t->numel;
    for (int64_t i = 0; i < t->numel; i++) {
        double d = onr_get_f64(t, i) - *mean;
        q += d * d;
    }
    *var = q / (double)t->numel;
}

static int same(const onr_tensor *a, const onr_tensor *b)
{
    return a->numel == b->numel && a->dtype == b->dtype &&
           memcmp(a->data, b->data, onr_tensor_nbytes(a)) == 0;
}

#define NDRAW 200000

static void test_random_normal(void **state)
{
    (void)state;
    const int64_t shape[2] = {400, 500};
    onr_node *n = tk_node("RandomNormal");
    tk_attr_ints(n, "shape", 2, shape);
    tk_attr_float(n, "mean", 2.f);
    tk_attr_float(n, "scale", 3.f);
    tk_attr_float(n, "seed", 7.f);
    onr_tensor *a = tk_run1(n, 1, 0, NULL, 1), *b = tk_run1(n, 22, 0, NULL, 4);
    tk_assert_shape(a, 2, shape);
    assert_int_equal(a->dtype, ONR_FLOAT);
    assert_true(same(a, b)); /* seeded: same output across runs and thread counts */
    double m, v;
    moments(a, &m, &v);
    double se = 3.0 / sqrt((double)a->numel);
    assert_true(fabs(m - 2.0) < 6 * se);
    assert_true(fabs(v - 9.0) < 6 * 9.0 * sqrt(2.0 / (double)a->numel));
    /* the fraction within one sigma is about 0.6827 */
    int64_t in1 = 0;
    for (int64_t i = 0; i < a->numel; i++) in1 += fabs(((float *)a->data)[i] - 2.0) < 3.0;
    double f = (double)in1 / (double)a->numel;
    assert_true(fabs(f - 0.682689) < 6 * sqrt(0.2167 / (double)a->numel));
    onr_tensor_free(a);
    onr_tensor_free(b);
    tk_node_free(n);

    /* unseeded runs differ; another seed differs; double output */
    n = tk_node("RandomNormal");
    tk_attr_ints(n, "shape", 2, shape);
    tk_attr_int(n, "dtype", ONR_DOUBLE);
    a = tk_run1(n, 1, 0, NULL, 1), b = tk_run1(n, 1, 0, NULL, 1);
    assert_int_equal(a->dtype, ONR_DOUBLE);
    assert_false(same(a, b));
    onr_tensor_free(a);
    onr_tensor_free(b);
    tk_node_free(n);
    onr_node *s1 = tk_node("RandomNormal"), *s2 = tk_node("RandomNormal");
    tk_attr_ints(s1, "shape", 2, shape);
    tk_attr_ints(s2, "shape", 2, shape);
    tk_attr_float(s1, "seed", 1.f);
    tk_attr_float(s2, "seed", 2.f);
    a = tk_run1(s1, 1, 0, NULL, 1), b = tk_run1(s2, 1, 0, NULL, 1);
    assert_false(same(a, b));
    onr_tensor_free(a);
    onr_tensor_free(b);
    tk_node_free(s1);
    tk_node_free(s2);

    /* bfloat16: from opset 22 only; float16 at 1 */
    n = tk_node("RandomNormal");
    tk_attr_ints(n, "shape", 1, shape);
    tk_attr_int(n, "dtype", ONR_BFLOAT16);
    expect_fail(n, 21, 0, NULL, "bfloat16 from opset 22");
    a = tk_run1(n, 22, 0, NULL, 1);
    assert_int_equal(a->dtype, ONR_BFLOAT16);
    onr_tensor_free(a);
    tk_node_free(n);
    n = tk_node("RandomNormal");
    tk_attr_ints(n, "shape", 1, shape);
    tk_attr_int(n, "dtype", ONR_INT32);
    expect_fail(n, 1, 0, NULL, "dtype 6 is not an allowed type");
    tk_node_free(n);
    n = tk_node("RandomNormal");
    expect_fail(n, 1, 0, NULL, "shape (ints) is required");
    tk_node_free(n);
    const int64_t negs[2] = {2, -1};
    n = tk_node("RandomNormal");
    tk_attr_ints(n, "shape", 2, negs);
    expect_fail(n, 1, 0, NULL, "negative dim");
    tk_node_free(n);
    /* an empty shape is fine */
    const int64_t zero[2] = {0, 5};
    n = tk_node("RandomNormal");
    tk_attr_ints(n, "shape", 2, zero);
    a = tk_run1(n, 1, 0, NULL, 2);
    tk_assert_shape(a, 2, zero);
    onr_tensor_free(a);
    tk_node_free(n);
}

static void test_random_uniform(void **state)
{
    (void)state;
    const int64_t shape[1] = {NDRAW};
    onr_node *n = tk_node("RandomUniform");
    tk_attr_ints(n, "shape", 1, shape);
    tk_attr_float(n, "low", -1.f);
    tk_attr_float(n, "high", 3.f);
    tk_attr_float(n, "seed", 0.f);
    onr_tensor *a = tk_run1(n, 1, 0, NULL, 1), *b = tk_run1(n, 1, 0, NULL, 3);
    assert_true(same(a, b));
    const float *v = a->data;
    for (int64_t i = 0; i < a->numel; i++) assert_true(v[i] >= -1.f && v[i] <= 3.f);
    double m, var;
    moments(a, &m, &var);
    double sd = 4.0 / sqrt(12.0);
    assert_true(fabs(m - 1.0) < 6 * sd / sqrt((double)NDRAW));
    assert_true(fabs(var - sd * sd) < 6 * sd * sd * sqrt(0.8 / (double)NDRAW));
    /* each quarter of the range gets a quarter of the draws */
    int64_t q[4] = {0};
    for (int64_t i = 0; i < a->numel; i++) {
        int k = (int)floor(v[i] + 1.0);
        q[k > 3 ? 3 : k]++;
    }
    for (int k = 0; k < 4; k++)
        assert_true(fabs(q[k] / (double)NDRAW - 0.25) < 6 * sqrt(0.1875 / NDRAW));
    onr_tensor_free(a);
    onr_tensor_free(b);
    tk_node_free(n);
    n = tk_node("RandomUniform");
    tk_attr_ints(n, "shape", 1, shape);
    tk_attr_float(n, "low", 2.f);
    tk_attr_float(n, "high", 1.f);
    expect_fail(n, 1, 0, NULL, "below low");
    tk_node_free(n);
}

static void test_random_like(void **state)
{
    (void)state;
    int64_t dims[3] = {2, 3, 4};
    onr_tensor *xf = tk_typed(ONR_DOUBLE, 3, dims, NULL), *xi = tk_i64(3, dims, NULL);
    onr_tensor *inf[1] = {xf}, *ini[1] = {xi};
    const char *ops[2] = {"RandomNormalLike", "RandomUniformLike"};
    for (int o = 0; o < 2; o++) {
        onr_node *n = tk_node(ops[o]);
        onr_tensor *y = tk_run1(n, 1, 1, inf, 1);
        tk_assert_shape(y, 3, dims);
        assert_int_equal(y->dtype, ONR_DOUBLE);
        onr_tensor_free(y);
        expect_fail(n, 1, 1, ini, "input's type");
        tk_node_free(n);
        n = tk_node(ops[o]);
        tk_attr_int(n, "dtype", ONR_FLOAT16);
        y = tk_run1(n, 22, 1, ini, 1);
        tk_assert_shape(y, 3, dims);
        assert_int_equal(y->dtype, ONR_FLOAT16);
        onr_tensor_free(y);
        tk_node_free(n);
    }
    tk_free_all(1, inf);
    tk_free_all(1, ini);
}

static void test_bernoulli(void **state)
{
    (void)state;
    int64_t dims[1] = {NDRAW};
    onr_tensor *p = tk_f32(1, dims, NULL);
    float *pv = p->data;
    for (int64_t i = 0; i < NDRAW; i++) pv[i] = i % 4 == 0 ? 0.f : i % 4 == 1 ? 1.f : 0.3f;
    onr_tensor *in[1] = {p};
    onr_node *n = tk_node("Bernoulli");
    tk_attr_float(n, "seed", 5.f);
    onr_tensor *a = tk_run1(n, 15, 1, in, 1), *b = tk_run1(n, 22, 1, in, 4);
    assert_int_equal(a->dtype, ONR_FLOAT);
    assert_true(same(a, b));
    int64_t ones = 0, cnt = 0;
    for (int64_t i = 0; i < NDRAW; i++) {
        float v = ((float *)a->data)[i];
        if (i % 4 == 0) assert_true(v == 0.f);
        else if (i % 4 == 1) assert_true(v == 1.f);
        else {
            assert_true(v == 0.f || v == 1.f);
            ones += v == 1.f;
            cnt++;
        }
    }
    assert_true(fabs(ones / (double)cnt - 0.3) < 6 * sqrt(0.21 / (double)cnt));
    onr_tensor_free(a);
    onr_tensor_free(b);
    tk_node_free(n);
    /* dtype: bool and int32 outputs; a string dtype is refused */
    onr_dtype outs[3] = {ONR_BOOL, ONR_INT32, ONR_DOUBLE};
    for (int k = 0; k < 3; k++) {
        n = tk_node("Bernoulli");
        tk_attr_int(n, "dtype", outs[k]);
        a = tk_run1(n, 15, 1, in, 1);
        assert_int_equal(a->dtype, outs[k]);
        for (int64_t i = 0; i < 8; i++)
            if (i % 4 < 2) assert_true(onr_get_f64(a, i) == (double)(i % 4));
        onr_tensor_free(a);
        tk_node_free(n);
    }
    n = tk_node("Bernoulli");
    tk_attr_int(n, "dtype", ONR_STRING);
    expect_fail(n, 15, 1, in, "dtype 8");
    tk_node_free(n);
    /* unseeded runs differ */
    n = tk_node("Bernoulli");
    a = tk_run1(n, 15, 1, in, 1), b = tk_run1(n, 15, 1, in, 1);
    assert_false(same(a, b));
    onr_tensor_free(a);
    onr_tensor_free(b);
    tk_node_free(n);
    tk_free_all(1, in);
}

static void test_multinomial(void **state)
{
    (void)state;
    int64_t dims[2] = {2, 4};
    const float lp[8] = {logf(0.2f), logf(0.5f), logf(0.3f), -INFINITY, 0, 0, 0, 0};
    onr_tensor *x = tk_f32(2, dims, lp);
    onr_tensor *in[1] = {x};
    onr_node *n = tk_node("Multinomial");
    tk_attr_int(n, "sample_size", 50000);
    tk_attr_int(n, "dtype", ONR_INT64);
    tk_attr_float(n, "seed", 3.f);
    onr_tensor *a = tk_run1(n, 7, 1, in, 1), *b = tk_run1(n, 22, 1, in, 2);
    int64_t od[2] = {2, 50000};
    tk_assert_shape(a, 2, od);
    assert_int_equal(a->dtype, ONR_INT64);
    assert_true(same(a, b));
    const int64_t *s = a->data;
    int64_t c[2][4] = {{0}};
    for (int r = 0; r < 2; r++)
        for (int64_t i = 0; i < 50000; i++) {
            assert_true(s[r * 50000 + i] >= 0 && s[r * 50000 + i] < 4);
            c[r][s[r * 50000 + i]]++;
        }
    assert_int_equal(c[0][3], 0); /* a -inf class is never drawn */
    const double want[2][4] = {{0.2, 0.5, 0.3, 0}, {0.25, 0.25, 0.25, 0.25}};
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 4; k++)
            assert_true(fabs(c[r][k] / 50000.0 - want[r][k]) <
                        6 * sqrt(want[r][k] * (1 - want[r][k]) / 50000.0) + 1e-12);
    onr_tensor_free(a);
    onr_tensor_free(b);
    tk_node_free(n);
    n = tk_node("Multinomial"); /* default: int32, one sample */
    a = tk_run1(n, 7, 1, in, 1);
    int64_t d1[2] = {2, 1};
    tk_assert_shape(a, 2, d1);
    assert_int_equal(a->dtype, ONR_INT32);
    onr_tensor_free(a);
    tk_node_free(n);
    n = tk_node("Multinomial");
    tk_attr_int(n, "sample_size", 0);
    expect_fail(n, 7, 1, in, "sample_size must be >= 1");
    tk_node_free(n);
    n = tk_node("Multinomial");
    tk_attr_int(n, "dtype", ONR_FLOAT);
    expect_fail(n, 7, 1, in, "must be int32 (6) or int64 (7)");
    tk_node_free(n);
    const float bad[4] = {-INFINITY, -INFINITY, NAN, -INFINITY};
    int64_t bd[2] = {1, 4};
    onr_tensor *xb = tk_f32(2, bd, bad);
    onr_tensor *inb[1] = {xb};
    n = tk_node("Multinomial");
    expect_fail(n, 7, 1, inb, "no finite log-probability");
    tk_node_free(n);
    tk_free_all(1, inb);
    tk_free_all(1, in);
}

static void test_dropout_training(void **state)
{
    (void)state;
    int64_t dims[2] = {400, 500};
    onr_tensor *x = tk_f32(2, dims, NULL);
    for (int64_t i = 0; i < x->numel; i++) ((float *)x->data)[i] = 1.f + (float)(i % 3);
    const float r75 = 0.75f;
    const uint8_t yes = 1, no = 0;
    onr_tensor *ratio = tk_f32(0, NULL, &r75), *t = tk_bool(0, NULL, &yes), *f = tk_bool(0, NULL, &no);
    onr_node *n = tk_node("Dropout");
    tk_attr_int(n, "seed", 42);
    onr_tensor *in[3] = {x, ratio, t};
    onr_tensor *o1[2], *o2[2];
    onr_err err = {0};
    assert_int_equal(tk_run(n, 13, 3, in, 2, o1, 1, &err), ONR_OK);
    assert_int_equal(tk_run(n, 22, 3, in, 2, o2, 4, &err), ONR_OK);
    assert_true(same(o1[0], o2[0]) && same(o1[1], o2[1]));
    assert_int_equal(o1[1]->dtype, ONR_BOOL);
    int64_t kept = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        uint8_t m = ((uint8_t *)o1[1]->data)[i];
        float y = ((float *)o1[0]->data)[i], xv = ((float *)x->data)[i];
        assert_true(m ? y == xv * 4.f : y == 0.f);
        kept += m;
    }
    double fk = kept / (double)x->numel;
    assert_true(fabs(fk - 0.25) < 6 * sqrt(0.1875 / (double)x->numel));
    tk_free_all(2, o1);
    tk_free_all(2, o2);
    /* training_mode false (or absent): a copy and an all-true mask */
    onr_tensor *inf[3] = {x, ratio, f};
    assert_int_equal(tk_run(n, 12, 3, inf, 2, o1, 1, &err), ONR_OK);
    assert_memory_equal(o1[0]->data, x->data, onr_tensor_nbytes(x));
    for (int64_t i = 0; i < x->numel; i++) assert_true(((uint8_t *)o1[1]->data)[i] == 1);
    tk_free_all(2, o1);
    /* default ratio 0.5 in training */
    onr_tensor *ind[3] = {x, NULL, t};
    onr_tensor *y = tk_run1(n, 13, 3, ind, 2);
    int64_t z = 0;
    for (int64_t i = 0; i < y->numel; i++) z += ((float *)y->data)[i] == 0.f;
    assert_true(fabs(z / (double)y->numel - 0.5) < 6 * sqrt(0.25 / (double)y->numel));
    onr_tensor_free(y);
    tk_node_free(n);
    /* ratio 1 in training: error; ratio not a scalar: error */
    const float one = 1.f, two[2] = {0.1f, 0.2f};
    int64_t d2[1] = {2};
    onr_tensor *r1 = tk_f32(0, NULL, &one), *r2 = tk_f32(1, d2, two);
    onr_tensor *ib[3] = {x, r1, t}, *ib2[3] = {x, r2, t};
    n = tk_node("Dropout");
    expect_fail(n, 13, 3, ib, "not in [0, 1)");
    expect_fail(n, 13, 3, ib2, "must be a scalar");
    tk_node_free(n);
    tk_free_all(1, &r1), tk_free_all(1, &r2);
    tk_free_all(1, &ratio), tk_free_all(1, &t), tk_free_all(1, &f), tk_free_all(1, &x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_normal),
        cmocka_unit_test(test_random_uniform),
        cmocka_unit_test(test_random_like),
        cmocka_unit_test(test_bernoulli),
        cmocka_unit_test(test_multinomial),
        cmocka_unit_test(test_dropout_training),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
