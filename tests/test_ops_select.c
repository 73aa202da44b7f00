/* test_ops_select.c - TopK, Unique and NonMaxSuppression: edge cases the
 * spec-derived cases (testdata/spec/topk*, unique*, nms*) do not reach: NaN,
 * -0, int64 extremes, k out of range, empty inputs, 1 vs 2 threads, and
 * bad attributes or inputs that must fail with a message. */
#include "kutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static onr_status run_node(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int n_out,
                           onr_tensor **out, int nt, onr_err *err)
{
    memset(out, 0, sizeof(*out) * (size_t)n_out);
    return tk_run(n, opset, n_in, in, n_out, out, nt, err);
}

/* ---- TopK ----------------------------------------------------------------- */

static onr_tensor *kten(int64_t k)
{
    int64_t d[] = {1};
    return tk_i64(1, d, &k);
}

static void test_topk_nan_and_zero(void **state)
{
    (void)state;
    int64_t d[] = {6};
    const float x[] = {1.f, NAN, -0.f, 0.f, INFINITY, NAN};
    onr_tensor *in[] = {tk_f32(1, d, x), kten(6)}, *out[2];
    onr_err err = {0};
    for (int largest = 0; largest <= 1; largest++) {
        onr_node *n = tk_node("TopK");
        tk_attr_int(n, "largest", largest);
        assert_int_equal(run_node(n, 11, 2, in, 2, out, 1, &err), ONR_OK);
        /* NaN above everything; -0 and 0 tie, so index order */
        const int64_t e_l[] = {1, 5, 4, 0, 2, 3}, e_s[] = {2, 3, 0, 4, 1, 5};
        tk_assert_eq_i64(out[1], largest ? e_l : e_s, 6);
        const float *v = out[0]->data;
        assert_true(largest ? isnan(v[0]) && isnan(v[1]) : isnan(v[4]) && isnan(v[5]));
        assert_true(signbit(v[largest ? 4 : 0])); /* values copied bit for bit: -0 */
        tk_free_all(2, out);
        tk_node_free(n);
    }
    tk_free_all(2, in);
}

static void test_topk_int64_extremes(void **state)
{
    (void)state;
    int64_t d[] = {4};
    const int64_t x[] = {INT64_MAX - 1, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    onr_tensor *in[] = {tk_i64(1, d, x), kten(2)}, *out[2];
    onr_err err = {0};
    onr_node *n = tk_node("TopK");
    assert_int_equal(run_node(n, 11, 2, in, 2, out, 1, &err), ONR_OK);
    const int64_t ev[] = {INT64_MAX, INT64_MAX - 1}, ei[] = {1, 0};
    tk_assert_eq_i64(out[0], ev, 2);
    tk_assert_eq_i64(out[1], ei, 2);
    tk_free_all(2, out);
    tk_node_free(n);
    tk_free_all(2, in);
}

/* A large strided case: 1 and 2 threads agree, and agree with a simple
 * selection reference. */
static void test_topk_threads(void **state)
{
    (void)state;
    int64_t d[] = {64, 300, 8};
    onr_tensor *x = tk_rand_f32(3, d, 5);
    float *xv = x->data;
    for (int64_t i = 0; i < x->numel; i += 7) xv[i] = 0.5f; /* ties */
    onr_tensor *in[] = {x, kten(17)}, *o1[2], *o2[2];
    onr_err err = {0};
    onr_node *n = tk_node("TopK");
    tk_attr_int(n, "axis", 1);
    assert_int_equal(run_node(n, 11, 2, in, 2, o1, 1, &err), ONR_OK);
    assert_int_equal(run_node(n, 11, 2, in, 2, o2, 2, &err), ONR_OK);
    assert_memory_equal(o1[1]->data, o2[1]->data, (size_t)o1[1]->numel * 8);
    /* reference: repeatedly take the best not yet taken */
    const int64_t *ix = o1[1]->data;
    for (int64_t o = 0; o < 64; o++)
        for (int64_t c = 0; c < 8; c++) {
            char taken[300] = {0};
            for (int64_t j = 0; j < 17; j++) {
                int64_t best = -1;
                for (int64_t i = 0; i < 300; i++) {
                    if (taken[i]) continue;
                    if (best < 0 || xv[(o * 300 + i) * 8 + c] > xv[(o * 300 + best) * 8 + c]) best = i;
                }
                taken[best] = 1;
                assert_int_equal(ix[(o * 17 + j) * 8 + c], best);
            }
        }
    tk_free_all(2, o1);
    tk_free_all(2, o2);
    tk_node_free(n);
    tk_free_all(2, in);
}

static void test_topk_errors_and_empty(void **state)
{
    (void)state;
    int64_t d[] = {2, 3};
    onr_tensor *in[] = {tk_rand_f32(2, d, 1), kten(4)};
    onr_node *n = tk_node("TopK");
    tk_expect_fail(n, 11, 2, in, 2, ONR_E_MODEL, "k = 4 is outside [0, 3], the size of axis 1");
    onr_tensor_free(in[1]);
    in[1] = kten(-1);
    tk_expect_fail(n, 11, 2, in, 2, ONR_E_MODEL, "k = -1 is outside");
    tk_node_free(n);
    /* opset 1 without k; largest before opset 11; bad largest; axis */
    n = tk_node("TopK");
    tk_expect_fail(n, 1, 1, in, 2, ONR_E_MODEL, "attribute 'k' is missing");
    tk_attr_int(n, "k", 9);
    tk_expect_fail(n, 1, 1, in, 2, ONR_E_MODEL, "k = 9 is outside");
    tk_node_free(n);
    n = tk_node("TopK");
    tk_attr_int(n, "largest", 0);
    tk_expect_fail(n, 10, 2, in, 2, ONR_E_MODEL, "arrived at opset 11");
    tk_node_free(n);
    n = tk_node("TopK");
    tk_attr_int(n, "largest", 2);
    tk_expect_fail(n, 11, 2, in, 2, ONR_E_MODEL, "must be 0 or 1");
    tk_node_free(n);
    n = tk_node("TopK");
    tk_attr_int(n, "axis", 2);
    tk_expect_fail(n, 11, 2, in, 2, ONR_E_MODEL, "axis 2 is out of range");
    tk_node_free(n);
    /* int32 input before opset 11 is not in the schema */
    n = tk_node("TopK");
    onr_tensor *ii[] = {tk_typed(ONR_INT32, 2, d, NULL), kten(1)};
    tk_expect_fail(n, 10, 2, ii, 2, ONR_E_UNSUPPORTED, "int32");
    tk_free_all(2, ii);
    tk_node_free(n);
    tk_free_all(2, in);
    /* empty outer dim: empty outputs with k along the axis */
    int64_t de[] = {0, 5}, dout[] = {0, 2};
    onr_tensor *ein[] = {tk_f32(2, de, NULL), kten(2)}, *out[2];
    onr_err err = {0};
    n = tk_node("TopK");
    assert_int_equal(run_node(n, 11, 2, ein, 2, out, 1, &err), ONR_OK);
    tk_assert_shape(out[0], 2, dout);
    tk_assert_shape(out[1], 2, dout);
    tk_free_all(2, out);
    tk_node_free(n);
    tk_free_all(2, ein);
}


/* ---- Unique --------------------------------------------------------------- */

static void test_unique_nan_empty_scalar(void **state)
{
    (void)state;
    int64_t d[] = {6};
    const float x[] = {NAN, 1.f, NAN, -0.f, 0.f, 1.f};
    onr_tensor *in[] = {tk_f32(1, d, x)}, *out[4];
    onr_err err = {0};
    onr_node *n = tk_node("Unique");
    assert_int_equal(run_node(n, 11, 1, in, 4, out, 1, &err), ONR_OK);
    int64_t du[] = {3};
    tk_assert_shape(out[0], 1, du);
    const float *y = out[0]->data;
    assert_true(y[0] == 0.f && y[1] == 1.f && isnan(y[2])); /* NaNs fold, last */
    const int64_t ei[] = {3, 1, 0}, einv[] = {2, 1, 2, 0, 0, 1}, ec[] = {2, 2, 2};
    tk_assert_eq_i64(out[1], ei, 3);
    tk_assert_eq_i64(out[2], einv, 6);
    tk_assert_eq_i64(out[3], ec, 3);
    tk_free_all(4, out);
    tk_free_all(1, in);
    /* empty input: empty outputs */
    int64_t de[] = {0, 3}, z[] = {0};
    onr_tensor *ein[] = {tk_f32(2, de, NULL)};
    assert_int_equal(run_node(n, 11, 1, ein, 4, out, 1, &err), ONR_OK);
    for (int i = 0; i < 4; i++) tk_assert_shape(out[i], 1, z);
    tk_free_all(4, out);
    tk_free_all(1, ein);
    /* a scalar flattens to one element */
    const int64_t sv = 7;
    onr_tensor *sin[] = {tk_i64(0, NULL, &sv)};
    assert_int_equal(run_node(n, 11, 1, sin, 1, out, 1, &err), ONR_OK);
    int64_t one[] = {1};
    tk_assert_shape(out[0], 1, one);
    tk_assert_eq_i64(out[0], &sv, 1);
    tk_free_all(1, out);
    tk_node_free(n);
    /* axis on a scalar, axis out of range, bad sorted */
    n = tk_node("Unique");
    tk_attr_int(n, "axis", 0);
    tk_expect_fail(n, 11, 1, sin, 1, ONR_E_MODEL, "axis given but the input is a scalar");
    tk_node_free(n);
    n = tk_node("Unique");
    tk_attr_int(n, "axis", 1);
    onr_tensor *v[] = {tk_f32(1, d, x)};
    tk_expect_fail(n, 11, 1, v, 1, ONR_E_MODEL, "axis 1 is out of range");
    tk_node_free(n);
    n = tk_node("Unique");
    tk_attr_int(n, "sorted", 2);
    tk_expect_fail(n, 11, 1, v, 1, ONR_E_MODEL, "'sorted' must be an int 0 or 1");
    tk_node_free(n);
    tk_free_all(1, v);
    tk_free_all(1, sin);
}

/* A larger random case against a quadratic reference (first occurrence
 * order, sorted = 0). */
static void test_unique_vs_reference(void **state)
{
    (void)state;
    enum { N = 3000 };
    int64_t d[] = {N}, *x = malloc(sizeof(int64_t) * N);
    uint32_t s = 99;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (int64_t)(s >> 20) - 2048;
    }
    onr_tensor *in[] = {tk_i64(1, d, x)}, *out[4];
    onr_err err = {0};
    onr_node *n = tk_node("Unique");
    tk_attr_int(n, "sorted", 0);
    assert_int_equal(run_node(n, 11, 1, in, 4, out, 1, &err), ONR_OK);
    const int64_t *y = out[0]->data, *fi = out[1]->data, *inv = out[2]->data, *cnt = out[3]->data;
    int64_t u = 0;
    for (int i = 0; i < N; i++) {
        int64_t j = 0;
        while (j < u && y[j] != x[i]) j++;
        if (j == u) {
            assert_true(u < out[0]->numel);
            assert_int_equal(y[u], x[i]);
            assert_int_equal(fi[u], i);
            u++;
        }
        assert_int_equal(inv[i], j);
    }
    assert_int_equal(u, out[0]->numel);
    int64_t total = 0;
    for (int64_t j = 0; j < u; j++) total += cnt[j];
    assert_int_equal(total, N);
    tk_free_all(4, out);
    tk_free_all(1, in);
    tk_node_free(n);
    free(x);
}

/* ---- NonMaxSuppression ---------------------------------------------------- */

static void test_nms_edges_and_errors(void **state)
{
    (void)state;
    /* two identical boxes and a degenerate (zero-area) one that never suppresses */
    int64_t db[] = {1, 3, 4}, ds[] = {1, 1, 3}, d1[] = {1};
    const float boxes[] = {0, 0, 1, 1, 1, 1, 0, 0, 0.5f, 0.5f, 0.5f, 0.5f};
    const float scores[] = {0.5f, 0.9f, 0.7f};
    const int64_t mo = 10;
    const float iou = 0.5f;
    onr_tensor *in[] = {tk_f32(3, db, boxes), tk_f32(3, ds, scores), tk_i64(1, d1, &mo),
                        tk_f32(1, d1, &iou)}, *out[1];
    onr_err err = {0};
    onr_node *n = tk_node("NonMaxSuppression");
    assert_int_equal(run_node(n, 11, 4, in, 1, out, 1, &err), ONR_OK);
    /* box 1 (flipped corners of box 0) first, box 2 kept, box 0 suppressed */
    const int64_t e[] = {0, 0, 1, 0, 0, 2};
    int64_t de[] = {2, 3};
    tk_assert_shape(out[0], 2, de);
    tk_assert_eq_i64(out[0], e, 6);
    tk_free_all(1, out);
    /* only boxes and scores: max_output defaults to 0, nothing selected */
    assert_int_equal(run_node(n, 11, 2, in, 1, out, 1, &err), ONR_OK);
    int64_t d0[] = {0, 3};
    tk_assert_shape(out[0], 2, d0);
    tk_free_all(1, out);
    /* iou_threshold outside [0, 1] */
    float bad = 1.5f;
    onr_tensor *in2[] = {in[0], in[1], in[2], tk_f32(1, d1, &bad)};
    tk_expect_fail(n, 11, 4, in2, 1, ONR_E_MODEL, "iou_threshold 1.5 is outside [0, 1]");
    onr_tensor_free(in2[3]);
    /* scores not matching boxes; boxes not [B, N, 4] */
    int64_t ds_bad[] = {1, 1, 2};
    onr_tensor *in3[] = {in[0], tk_f32(3, ds_bad, scores)};
    tk_expect_fail(n, 11, 2, in3, 1, ONR_E_MODEL, "must be [batches, classes, boxes]");
    onr_tensor_free(in3[1]);
    int64_t db_bad[] = {1, 4, 3};
    onr_tensor *in4[] = {tk_f32(3, db_bad, boxes), in[1]};
    tk_expect_fail(n, 11, 2, in4, 1, ONR_E_MODEL, "must be [batches, boxes, 4]");
    onr_tensor_free(in4[0]);
    tk_node_free(n);
    n = tk_node("NonMaxSuppression");
    tk_attr_int(n, "center_point_box", 2);
    tk_expect_fail(n, 11, 2, in, 1, ONR_E_MODEL, "'center_point_box' must be an int 0 or 1");
    tk_node_free(n);
    tk_free_all(4, in);
    /* no boxes at all */
    int64_t dbe[] = {2, 0, 4}, dse[] = {2, 3, 0};
    onr_tensor *ein[] = {tk_f32(3, dbe, NULL), tk_f32(3, dse, NULL), tk_i64(1, d1, &mo)};
    n = tk_node("NonMaxSuppression");
    assert_int_equal(run_node(n, 10, 3, ein, 1, out, 1, &err), ONR_OK);
    tk_assert_shape(out[0], 2, d0);
    tk_free_all(1, out);
    tk_node_free(n);
    tk_free_all(3, ein);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topk_nan_and_zero),
        cmocka_unit_test(test_topk_int64_extremes),
        cmocka_unit_test(test_topk_threads),
        cmocka_unit_test(test_topk_errors_and_empty),
        cmocka_unit_test(test_unique_nan_empty_scalar),
        cmocka_unit_test(test_unique_vs_reference),
        cmocka_unit_test(test_nms_edges_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
