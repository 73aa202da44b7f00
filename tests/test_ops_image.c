/* test_ops_image.c - GridSample, AffineGrid, RoiAlign, Col2Im and
 * CenterCropPad: bad shapes, attributes and run-time values (an error naming
 * them, never a crash), far-away and non-finite coordinates, and results
 * identical at 1 and 2 threads. */
#include "kutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void expect_err(onr_node *n, int64_t opset, int n_in, onr_tensor **in, const char *needle)
{
    onr_tensor *y[1] = {NULL};
    onr_err err = {0};
    onr_status st = tk_run(n, opset, n_in, in, 1, y, 1, &err);
    onr_tensor_free(y[0]); /* allocated even when the run fails */
    if (st == ONR_OK) fail_msg("%s: expected an error mentioning '%s'", n->op_type, needle);
    if (!strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static onr_tensor *run_ok(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int nthreads)
{
    onr_tensor *y[1];
    onr_err err = {0};
    if (tk_run(n, opset, n_in, in, 1, y, nthreads, &err)) fail_msg("%s: %s", n->op_type, err.msg);
    return y[0];
}

/* Same result at 1 and 2 threads, bit for bit. */
static void same_at_threads(onr_node *n, int64_t opset, int n_in, onr_tensor **in)
{
    onr_tensor *a = run_ok(n, opset, n_in, in, 1), *b = run_ok(n, opset, n_in, in, 2);
    tk_assert_shape(b, a->rank, a->dims);
    assert_memory_equal(a->data, b->data, onr_tensor_nbytes(a));
    onr_tensor_free(a);
    onr_tensor_free(b);
}

static void test_gridsample(void **state)
{
    (void)state;
    static const char *modes20[] = {"linear", "nearest", "cubic"};
    static const char *pads[] = {"zeros", "border", "reflection"};
    int64_t xd[] = {2, 5, 17, 19}, gd[] = {2, 23, 29, 2};
    onr_tensor *in[2] = {tk_rand_f32(4, xd, 1), tk_rand_f32(4, gd, 2)};
    float *g = in[1]->data;
    for (int64_t i = 0; i < in[1]->numel; i++) g[i] *= 1.3f;
    /* far away and non-finite coordinates: defined results, no crash */
    g[0] = 1e30f, g[1] = -1e30f, g[2] = NAN, g[3] = INFINITY, g[4] = -INFINITY, g[5] = 3.5f;
    for (int m = 0; m < 3; m++)
        for (int p = 0; p < 3; p++)
            for (int a = 0; a < 2; a++) {
                onr_node *n = tk_node("GridSample");
                tk_attr_string(n, "mode", modes20[m]);
                tk_attr_string(n, "padding_mode", pads[p]);
                tk_attr_int(n, "align_corners", a);
                same_at_threads(n, 20, 2, in);
                tk_node_free(n);
            }
    /* opset 16: 4-D only, the old mode names */
    onr_node *n = tk_node("GridSample");
    tk_attr_string(n, "mode", "linear");
    expect_err(n, 16, 2, in, "'mode'");
    tk_node_free(n);
    n = tk_node("GridSample");
    tk_attr_string(n, "mode", "bicubic");
    expect_err(n, 20, 2, in, "'mode'");
    tk_node_free(n);
    n = tk_node("GridSample");
    tk_attr_string(n, "padding_mode", "wrap");
    expect_err(n, 16, 2, in, "padding_mode");
    tk_node_free(n);
    int64_t x5[] = {1, 1, 2, 3, 4}, g5[] = {1, 2, 2, 2, 3}, gbad[] = {2, 3, 3, 3};
    onr_tensor *in5[2] = {tk_rand_f32(5, x5, 3), tk_rand_f32(5, g5, 4)};
    n = tk_node("GridSample");
    expect_err(n, 16, 2, in5, "4-D");
    onr_tensor *o = run_ok(n, 20, 2, in5, 1);
    onr_tensor_free(o);
    onr_tensor *bad[2] = {in[0], tk_rand_f32(4, gbad, 5)};
    expect_err(n, 20, 2, bad, "'grid'");
    tk_node_free(n);
    onr_tensor_free(bad[1]);
    tk_free_all(2, in5);
    tk_free_all(2, in);
}

static void test_affine_grid(void **state)
{
    (void)state;
    int64_t td[] = {2, 2, 3}, sd[] = {4};
    const int64_t size[] = {2, 1, 3, 4}, size_bad[] = {3, 1, 3, 4}, huge[] = {2, 1, 1 << 30, 1 << 30};
    onr_tensor *in[2] = {tk_rand_f32(3, td, 1), tk_i64(1, sd, size)};
    onr_node *n = tk_node("AffineGrid");
    onr_tensor *y = run_ok(n, 20, 2, in, 1);
    int64_t yd[] = {2, 3, 4, 2};
    tk_assert_shape(y, 4, yd);
    onr_tensor_free(y);
    onr_tensor_free(in[1]);
    in[1] = tk_i64(1, sd, size_bad);
    expect_err(n, 20, 2, in, "'theta'");
    onr_tensor_free(in[1]);
    in[1] = tk_i64(1, sd, huge);
    expect_err(n, 20, 2, in, "too large");
    tk_node_free(n);
    tk_free_all(2, in);
}

static void test_roi_align(void **state)
{
    (void)state;
    int64_t xd[] = {2, 3, 13, 11}, rd[] = {3, 4}, bd[] = {3};
    const float rois[] = {0, 0, 5, 5, 2.5f, 1, 9, 12, -4, -4, 20, 20};
    const int64_t bi[] = {0, 1, 1}, bi_bad[] = {0, 2, 1};
    onr_tensor *in[3] = {tk_rand_f32(4, xd, 1), tk_f32(2, rd, rois), tk_i64(1, bd, bi)};
    for (int m = 0; m < 2; m++) {
        onr_node *n = tk_node("RoiAlign");
        tk_attr_string(n, "mode", m ? "max" : "avg");
        tk_attr_int(n, "output_height", 5);
        tk_attr_int(n, "output_width", 4);
        same_at_threads(n, 16, 3, in);
        tk_node_free(n);
    }
    onr_node *n = tk_node("RoiAlign");
    onr_tensor *keep = in[2];
    in[2] = tk_i64(1, bd, bi_bad);
    expect_err(n, 16, 3, in, "batch_indices");
    onr_tensor_free(in[2]);
    in[2] = keep;
    float *r = in[1]->data;
    r[5] = NAN;
    expect_err(n, 16, 3, in, "non-finite");
    r[5] = 1, r[6] = 1e12f;
    expect_err(n, 16, 3, in, "samples per bin");
    r[6] = 9;
    tk_node_free(n);
    n = tk_node("RoiAlign");
    tk_attr_int(n, "output_height", 0);
    expect_err(n, 16, 3, in, "output_height");
    tk_node_free(n);
    n = tk_node("RoiAlign");
    tk_attr_string(n, "coordinate_transformation_mode", "pixel");
    expect_err(n, 16, 3, in, "coordinate_transformation_mode");
    tk_node_free(n);
    n = tk_node("RoiAlign");
    tk_attr_int(n, "sampling_ratio", -1);
    expect_err(n, 16, 3, in, "sampling_ratio");
    tk_node_free(n);
    tk_free_all(3, in);
}

static void test_col2im(void **state)
{
    (void)state;
    int64_t xd[] = {1, 4, 6}, sd[] = {2};
    const int64_t img[] = {3, 4}, blk[] = {2, 2}, blk0[] = {0, 2}, img_bad[] = {4, 4};
    onr_tensor *in[3] = {tk_rand_f32(3, xd, 1), tk_i64(1, sd, img), tk_i64(1, sd, blk)};
    onr_node *n = tk_node("Col2Im");
    same_at_threads(n, 18, 3, in);
    onr_tensor_free(in[1]);
    in[1] = tk_i64(1, sd, img_bad);
    expect_err(n, 18, 3, in, "number of blocks");
    onr_tensor_free(in[1]);
    in[1] = tk_i64(1, sd, img);
    onr_tensor_free(in[2]);
    in[2] = tk_i64(1, sd, blk0);
    expect_err(n, 18, 3, in, "block 0");
    tk_node_free(n);
    n = tk_node("Col2Im");
    const int64_t pads3[] = {0, 0, 0};
    tk_attr_ints(n, "pads", 3, pads3);
    onr_tensor_free(in[2]);
    in[2] = tk_i64(1, sd, blk);
    expect_err(n, 18, 3, in, "'pads'");
    tk_node_free(n);
    tk_free_all(3, in);
}

static void test_center_crop_pad(void **state)
{
    (void)state;
    int64_t xd[] = {3, 2}, sd[] = {2}, yd[] = {2, 5};
    onr_tensor *x = tk_typed(ONR_STRING, 2, xd, NULL);
    const char *v[] = {"a", "b", "c", "d", "e", "f"};
    for (int i = 0; i < 6; i++) {
        free(((char **)x->data)[i]); /* the "" a new tensor holds */
        ((char **)x->data)[i] = onr_strdup(v[i]);
    }
    const int64_t shape[] = {2, 5}, neg[] = {2, -1};
    onr_tensor *in[2] = {x, tk_i64(1, sd, shape)};
    onr_node *n = tk_node("CenterCropPad");
    onr_tensor *y = run_ok(n, 18, 2, in, 1);
    tk_assert_shape(y, 2, yd);
    /* rows 0..1 of 3 (crop start 0), columns padded 1 before, 2 after */
    const char *e[] = {"", "a", "b", "", "", "", "c", "d", "", ""};
    for (int i = 0; i < 10; i++) {
        const char *s = ((char **)y->data)[i];
        assert_string_equal(s ? s : "", e[i]);
    }
    onr_tensor_free(y);
    onr_tensor_free(in[1]);
    in[1] = tk_i64(1, sd, neg);
    expect_err(n, 18, 2, in, "negative");
    tk_node_free(n);
    tk_free_all(2, in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gridsample),     cmocka_unit_test(test_affine_grid),
        cmocka_unit_test(test_roi_align),      cmocka_unit_test(test_col2im),
        cmocka_unit_test(test_center_crop_pad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
