/* test_ub.c - undefined behaviour that only clang's UBSan reports (the
 * clang stage of tools/test builds with -fsanitize=...,float-cast-overflow
 * and makes every report fatal), one case per class found:
 *   - float-to-integer conversion of a value out of the type's range
 *     (inf, NaN, 1e30): onr_set_f64, Clip's integer kernels (whose absent
 *     bounds are -inf/+inf as floats), SplitToSequence's split values,
 *     Resize coordinates from a NaN roi, RoiAlign sample counts;
 *   - NULL + 0: a kernel carving scratch of 0 bytes (BatchNormalization of
 *     an empty batch or no channels).
 * Under gcc they check the results are the defined ones. */
#include "kutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static onr_tensor *run1(onr_node *n, int64_t opset, int n_in, onr_tensor **in)
{
    onr_tensor *out[1];
    onr_err err = {0};
    onr_status st = tk_run(n, opset, n_in, in, 1, out, 1, &err);
    if (st != ONR_OK) fail_msg("%s failed: %s", n->op_type, err.msg);
    return out[0];
}

/* onr_set_f64 clamps to the integer type and maps NaN to 0 */
static void test_set_f64_saturates(void **state)
{
    (void)state;
    static const onr_dtype types[] = {ONR_INT8, ONR_INT16, ONR_INT32, ONR_INT64,
                                      ONR_UINT8, ONR_UINT16, ONR_UINT32, ONR_UINT64};
    static const double lo[] = {-128, -32768, -2147483648.0, -9223372036854775808.0, 0, 0, 0, 0};
    static const double hi[] = {127, 32767, 2147483647.0, 9223372036854775807.0,
                                255, 65535, 4294967295.0, 18446744073709551615.0};
    const double vals[] = {INFINITY, -INFINITY, NAN, 1e30, -1e30, 9.3e18, 2.5, -2.5};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        int64_t d[] = {8};
        onr_tensor *x = onr_tensor_new(types[t], 1, d);
        for (int i = 0; i < 8; i++) onr_set_f64(x, i, vals[i]);
        double want[8] = {hi[t], lo[t], 0, hi[t], lo[t], 9.3e18 > hi[t] ? hi[t] : 9.3e18,
                          2, lo[t] < 0 ? -2 : 0};
        for (int i = 0; i < 8; i++) {
            double got = onr_get_f64(x, i);
            if (got != want[i])
                fail_msg("%s: %g stored as %.17g, want %.17g", onr_dtype_name(types[t]), vals[i],
                         got, want[i]);
        }
        onr_tensor_free(x);
    }
}

/* Clip-13 on every integer type with the bounds absent, one, or both */
static void test_clip_int_bounds(void **state)
{
    (void)state;
    static const onr_dtype types[] = {ONR_INT8, ONR_INT16, ONR_INT32, ONR_INT64,
                                      ONR_UINT8, ONR_UINT16, ONR_UINT32, ONR_UINT64};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        int64_t d[] = {4};
        onr_tensor *x = onr_tensor_new(types[t], 1, d);
        for (int i = 0; i < 4; i++) onr_set_f64(x, i, 3 * i); /* 0 3 6 9 */
        for (int mode = 0; mode < 3; mode++) {
            onr_tensor *lo = onr_tensor_new(types[t], 0, NULL), *hi = onr_tensor_new(types[t], 0, NULL);
            onr_set_f64(lo, 0, 2);
            onr_set_f64(hi, 0, 7);
            onr_node *n = tk_node("Clip");
            onr_tensor *in[] = {x, mode == 1 ? lo : NULL, mode >= 1 ? hi : NULL};
            onr_tensor *y = run1(n, 13, 3, in);
            const double want[3][4] = {{0, 3, 6, 9}, {2, 3, 6, 7}, {0, 3, 6, 7}};
            for (int i = 0; i < 4; i++) assert_true(onr_get_f64(y, i) == want[mode][i]);
            onr_tensor_free(y);
            onr_tensor_free(lo);
            onr_tensor_free(hi);
            tk_node_free(n);
        }
        onr_tensor_free(x);
    }
}

/* BatchNormalization with no batch or no channels: empty outputs, and the
 * scratch the kernel carves (2 or 4 arrays of C doubles) is 0 bytes */
static void test_batchnorm_empty(void **state)
{
    (void)state;
    for (int training = 0; training < 2; training++)
        for (int empty_c = 0; empty_c < 2; empty_c++) {
            int64_t C = empty_c ? 0 : 2;
            int64_t dx[] = {empty_c ? 2 : 0, C, 3}, dc[] = {C};
            const float p[] = {1, 1};
            onr_node *n = tk_node("BatchNormalization");
            if (training) tk_attr_int(n, "training_mode", 1);
            onr_tensor *in[] = {tk_f32(3, dx, NULL), tk_f32(1, dc, p), tk_f32(1, dc, p),
                                tk_f32(1, dc, p), tk_f32(1, dc, p)};
            onr_tensor *out[3];
            onr_err err = {0};
            onr_status st = tk_run(n, 15, 5, in, training ? 3 : 1, out, 1, &err);
            if (st) fail_msg("BatchNormalization (training %d, C %lld): %s", training,
                             (long long)C, err.msg);
            tk_assert_shape(out[0], 3, dx);
            tk_free_all(training ? 3 : 1, out);
            tk_free_all(5, in);
            tk_node_free(n);
        }
}

/* SplitToSequence with splits far beyond the axis: an error, no overflow */
static void test_split_to_sequence_huge(void **state)
{
    (void)state;
    int64_t dx[] = {4}, d2[] = {2};
    const float x[] = {1, 2, 3, 4};
    const int64_t big[] = {INT64_MAX, INT64_MAX}, one[] = {INT64_MAX};
    for (int k = 0; k < 2; k++) {
        onr_node *n = tk_node("SplitToSequence");
        onr_tensor *in[] = {tk_f32(1, dx, x), k ? tk_i64(0, NULL, one) : tk_i64(1, d2, big)};
        onr_tensor *out[1];
        onr_err err = {0};
        onr_status st = tk_run(n, 11, 2, in, 1, out, 1, &err);
        if (k == 0) {
            assert_int_not_equal(st, ONR_OK); /* [max, max] does not sum to 4 */
        } else {
            /* one chunk of INT64_MAX: the whole axis in one piece */
            if (st) fail_msg("SplitToSequence: %s", err.msg);
            assert_int_equal(onr_value_count(out[0]), 1);
        }
        tk_free_all(1, out); /* tk_run makes the outputs, failed or not */
        tk_free_all(2, in);
        tk_node_free(n);
    }
}

/* Resize (tf_crop_and_resize, nearest and linear) with a NaN and a huge roi */
static void test_resize_nan_roi(void **state)
{
    (void)state;
    int64_t dx[] = {1, 1, 2, 2}, dr[] = {8}, ds[] = {4};
    const float x[] = {1, 2, 3, 4};
    const float rois[2][8] = {{0, 0, 0, 0, 1, 1, NAN, NAN}, {0, 0, -1e30f, 0, 1, 1, 1e30f, 1}};
    const int64_t sizes[] = {1, 1, 3, 3};
    for (int mode = 0; mode < 2; mode++)
        for (int r = 0; r < 2; r++) {
            onr_node *n = tk_node("Resize");
            tk_attr_string(n, "mode", mode ? "linear" : "nearest");
            tk_attr_string(n, "coordinate_transformation_mode", "tf_crop_and_resize");
            onr_tensor *in[] = {tk_f32(4, dx, x), tk_f32(1, dr, rois[r]), NULL, tk_i64(1, ds, sizes)};
            onr_tensor *out[1];
            onr_err err = {0};
            tk_run(n, 13, 4, in, 1, out, 1, &err); /* an error or a result: no UB */
            tk_free_all(1, out);
            tk_free_all(4, in);
            tk_node_free(n);
        }
}

/* RoiAlign with finite rois whose extent overflows to inf */
static void test_roialign_huge_roi(void **state)
{
    (void)state;
    int64_t dx[] = {1, 1, 2, 2}, dr[] = {1, 4}, db[] = {1};
    const float x[] = {1, 2, 3, 4};
    const double rois[] = {-1.7e308, -1.7e308, 1.7e308, 1.7e308};
    const int64_t b[] = {0};
    onr_node *n = tk_node("RoiAlign");
    onr_tensor *in[] = {tk_typed(ONR_DOUBLE, 4, dx, NULL), tk_typed(ONR_DOUBLE, 2, dr, rois),
                        tk_i64(1, db, b)};
    for (int i = 0; i < 4; i++) onr_set_f64(in[0], i, x[i]);
    onr_tensor *out[1];
    onr_err err = {0};
    onr_status st = tk_run(n, 16, 3, in, 1, out, 1, &err);
    assert_int_not_equal(st, ONR_OK); /* too many samples, said so */
    assert_non_null(strstr(err.msg, "samples"));
    tk_free_all(1, out);
    tk_free_all(3, in);
    tk_node_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_f64_saturates),
        cmocka_unit_test(test_clip_int_bounds),
        cmocka_unit_test(test_batchnorm_empty),
        cmocka_unit_test(test_split_to_sequence_huge),
        cmocka_unit_test(test_resize_nan_roi),
        cmocka_unit_test(test_roialign_huge_roi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
