/* test_ops_resize.c - Resize and Upsample: the fast paths (nearest gather,
 * float32 plane) against the plain-C reference on odd sizes and at 1 and 2
 * threads, hand-checked values, and bad scales / sizes / roi / attributes
 * and absurd output sizes (an error naming the input, no huge allocation). */
#include "kutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/exec.h"
#include "ops/ops.h"
#include "ops/resize.h"

/* Resize X at opset with optional roi / scales / sizes (NULL: omitted). */
static onr_status rs_run(onr_node *n, int64_t opset, onr_tensor *x, onr_tensor *roi,
                         onr_tensor *scales, onr_tensor *sizes, onr_tensor **y, int nthreads,
                         onr_err *err)
{
    onr_tensor *in[4] = {x, roi, scales, sizes};
    return tk_run(n, opset, 4, in, 1, y, nthreads, err);
}

/* A string tensor of copies of vals. */
static onr_tensor *strs(int rank, const int64_t *dims, const char *const *vals)
{
    onr_tensor *t = tk_typed(ONR_STRING, rank, dims, NULL);
    for (int64_t i = 0; i < t->numel; i++) {
        free(((char **)t->data)[i]); /* the "" a new tensor holds */
        ((char **)t->data)[i] = onr_strdup(vals[i]);
    }
    return t;
}

static onr_tensor *f32s(int n, const float *v)
{
    int64_t d[] = {n};
    return tk_f32(1, d, v);
}

static onr_tensor *i64s(int n, const int64_t *v)
{
    int64_t d[] = {n};
    return tk_i64(1, d, v);
}

/* Run with the fast paths and with the reference; compare. */
static void fast_vs_ref(onr_node *n, int64_t opset, onr_tensor *x, onr_tensor *roi,
                        onr_tensor *scales, onr_tensor *sizes, float tol)
{
    onr_tensor *ref, *fast, *fast2;
    onr_err err = {0};
    onr_resize_force_reference(1);
    onr_status st = rs_run(n, opset, x, roi, scales, sizes, &ref, 1, &err);
    onr_resize_force_reference(0);
    if (st) fail_msg("reference: %s", err.msg);
    if ((st = rs_run(n, opset, x, roi, scales, sizes, &fast, 1, &err))) fail_msg("fast: %s", err.msg);
    if ((st = rs_run(n, opset, x, roi, scales, sizes, &fast2, 2, &err)))
        fail_msg("fast, 2 threads: %s", err.msg);
    tk_assert_shape(fast, ref->rank, ref->dims);
    assert_int_equal(fast->dtype, ref->dtype);
    for (int64_t i = 0; i < ref->numel; i++) {
        double a = onr_get_f64(fast, i), e = onr_get_f64(ref, i);
        if (!(fabs(a - e) <= tol + tol * fabs(e)))
            fail_msg("%s element %lld: fast %.9g, reference %.9g", onr_dtype_name(ref->dtype),
                     (long long)i, a, e);
    }
    /* the thread count never changes a result */
    assert_memory_equal(fast->data, fast2->data, onr_tensor_nbytes(fast));
    onr_tensor_free(ref);
    onr_tensor_free(fast);
    onr_tensor_free(fast2);
}

static void test_fast_vs_reference(void **state)
{
    (void)state;
    static const char *modes[] = {"linear", "cubic", "nearest"};
    static const char *ctms[] = {"half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel",
                                 "tf_crop_and_resize", "half_pixel_symmetric"};
    static const int64_t sizes_v[][4] = {{2, 3, 11, 4}, {2, 3, 1, 9}, {2, 3, 5, 5}, {2, 3, 3, 2}};
    int64_t xd[] = {2, 3, 7, 5};
    onr_tensor *x = tk_rand_f32(4, xd, 7);
    const float roi_v[] = {0, 0, 0.1f, -0.2f, 1, 1, 0.8f, 1.3f};
    onr_tensor *roi = f32s(8, roi_v);
    for (int m = 0; m < 3; m++)
        for (int c = 0; c < 6; c++)
            for (int s = 0; s < 4; s++)
                for (int aa = 0; aa < 2; aa++) {
                    onr_node *n = tk_node("Resize");
                    tk_attr_string(n, "mode", modes[m]);
                    tk_attr_string(n, "coordinate_transformation_mode", ctms[c]);
                    tk_attr_int(n, "antialias", aa);
                    tk_attr_int(n, "exclude_outside", s & 1);
                    tk_attr_float(n, "extrapolation_value", 3.5f);
                    onr_tensor *sz = i64s(4, sizes_v[s]);
                    fast_vs_ref(n, 19, x, roi, NULL, sz, 2e-5f);
                    onr_tensor_free(sz);
                    tk_node_free(n);
                }
    /* scales: fractional lengths, upsampling by 2 (the UNet case) */
    const float sc[][4] = {{1, 1, 2, 2}, {1, 1, 0.45f, 1.7f}, {1, 1, 3, 0.5f}};
    for (int m = 0; m < 3; m++)
        for (int s = 0; s < 3; s++) {
            onr_node *n = tk_node("Resize");
            tk_attr_string(n, "mode", modes[m]);
            onr_tensor *st = f32s(4, sc[s]);
            fast_vs_ref(n, 13, x, NULL, st, NULL, 2e-5f);
            onr_tensor_free(st);
            tk_node_free(n);
        }
    onr_tensor_free(roi);
    onr_tensor_free(x);
}

/* The plane path for double, float16 and bfloat16 against the reference. */
static void test_fast_vs_reference_types(void **state)
{
    (void)state;
    static const onr_dtype types[] = {ONR_DOUBLE, ONR_FLOAT16, ONR_BFLOAT16};
    static const float tols[] = {1e-12f, 2e-3f, 1.6e-2f};
    static const char *modes[] = {"linear", "cubic"};
    int64_t xd[] = {1, 3, 6, 9};
    onr_tensor *xf = tk_rand_f32(4, xd, 11);
    const float sc[][4] = {{1, 1, 2, 2}, {1, 1, 0.6f, 1.3f}};
    for (int ti = 0; ti < 3; ti++) {
        onr_tensor *x = tk_typed(types[ti], 4, xd, NULL);
        for (int64_t i = 0; i < x->numel; i++) onr_set_f64(x, i, ((float *)xf->data)[i]);
        for (int m = 0; m < 2; m++)
            for (int k = 0; k < 2; k++)
                for (int aa = 0; aa < 2; aa++) {
                    onr_node *n = tk_node("Resize");
                    tk_attr_string(n, "mode", modes[m]);
                    tk_attr_int(n, "antialias", aa);
                    onr_tensor *s = f32s(4, sc[k]);
                    fast_vs_ref(n, 18, x, NULL, s, NULL, tols[ti]);
                    onr_tensor_free(s);
                    tk_node_free(n);
                }
        onr_tensor_free(x);
    }
    onr_tensor_free(xf);
}

/* Outer axes resized as well (no plane path): the generic path, separable
 * where the tap product is wide (tricubic, antialiasing, six axes) against
 * the one-output-at-a-time reference, float and uint8. */
static void test_separable_vs_reference(void **state)
{
    (void)state;
    int64_t xd[] = {3, 7, 6}, xd6[] = {2, 3, 2, 2, 3, 2};
    onr_tensor *xf = tk_rand_f32(3, xd, 5), *x6 = tk_rand_f32(6, xd6, 9);
    onr_tensor *xu = tk_typed(ONR_UINT8, 3, xd, NULL);
    for (int64_t i = 0; i < xu->numel; i++) onr_set_f64(xu, i, (double)(i * 37 % 256));
    const float sc[][3] = {{2, 0.5f, 1.5f}, {0.4f, 3, 1}, {1.7f, 1.2f, 0.3f}};
    const float roi_v[] = {0.1f, -0.2f, 0.3f, 0.9f, 1.1f, 0.8f};
    onr_tensor *roi = f32s(6, roi_v);
    static const char *modes[] = {"linear", "cubic"};
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < 3; k++)
            for (int aa = 0; aa < 2; aa++)
                for (int tf = 0; tf < 2; tf++) {
                    onr_node *n = tk_node("Resize");
                    tk_attr_string(n, "mode", modes[m]);
                    tk_attr_int(n, "antialias", aa);
                    tk_attr_float(n, "extrapolation_value", -2.5f);
                    if (tf) tk_attr_string(n, "coordinate_transformation_mode", "tf_crop_and_resize");
                    onr_tensor *s = f32s(3, sc[k]);
                    fast_vs_ref(n, 18, xf, tf ? roi : NULL, s, NULL, 1e-5f);
                    fast_vs_ref(n, 18, xu, tf ? roi : NULL, s, NULL, 0);
                    onr_tensor_free(s);
                    tk_node_free(n);
                }
    /* cubic over six axes: 4096 taps per output in the product form */
    const float sc6[] = {1.5f, 2, 1.5f, 2, 1, 1.5f};
    onr_tensor *s6 = f32s(6, sc6);
    onr_node *n = tk_node("Resize");
    tk_attr_string(n, "mode", "cubic");
    fast_vs_ref(n, 18, x6, NULL, s6, NULL, 1e-5f);
    tk_node_free(n);
    onr_tensor_free(s6);
    onr_tensor_free(roi);
    onr_tensor_free(xu);
    onr_tensor_free(xf);
    onr_tensor_free(x6);
}

/* A large plane, parallel above the work threshold. */
static void test_fast_vs_reference_large(void **state)
{
    (void)state;
    int64_t xd[] = {1, 8, 61, 67};
    onr_tensor *x = tk_rand_f32(4, xd, 3);
    const float sc[] = {1, 1, 2, 2};
    onr_tensor *s = f32s(4, sc);
    for (int m = 0; m < 2; m++) {
        onr_node *n = tk_node("Resize");
        tk_attr_string(n, "mode", m ? "nearest" : "linear");
        fast_vs_ref(n, 13, x, NULL, s, NULL, 1e-5f);
        tk_node_free(n);
    }
    onr_tensor_free(s);
    onr_tensor_free(x);
}

/* Hand-checked: 2x2 -> 4x4 bilinear, half_pixel. */
static void test_linear_hand(void **state)
{
    (void)state;
    int64_t xd[] = {1, 1, 2, 2}, yd[] = {1, 1, 4, 4};
    const float xv[] = {1, 2, 3, 4};
    const float e[] = {1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f,
                       2.5f, 2.75f, 3.25f, 3.5f, 3, 3.25f, 3.75f, 4};
    const float sc[] = {1, 1, 2, 2};
    onr_tensor *x = tk_f32(4, xd, xv), *s = f32s(4, sc), *y;
    onr_node *n = tk_node("Resize");
    tk_attr_string(n, "mode", "linear");
    onr_err err = {0};
    if (rs_run(n, 13, x, NULL, s, NULL, &y, 1, &err)) fail_msg("%s", err.msg);
    tk_assert_shape(y, 4, yd);
    tk_assert_close_f32(y, e, 16, 1e-6f, 1e-6f);
    onr_tensor_free(y);
    onr_tensor_free(x);
    onr_tensor_free(s);
    tk_node_free(n);
}

/* linear with tf_half_pixel_for_nn (opset 11): x_orig = (o + 0.5) / scale
 * on every axis, the outer ones too, so an outer axis of 2 mixes its two
 * entries (generic path) while axes of 1 stay put (they count as identity
 * and take the plane path, the fuzzer's slow Resize to 30 M outputs). Each
 * against a plain separable linear interpolation written here. */
static double tfnn_linear_ref(const float *x, const int64_t *xd, const int64_t *yd,
                              const int64_t *o)
{
    int64_t lo[4], hi[4];
    double w[4];
    for (int d = 0; d < 4; d++) {
        double c = ((double)o[d] + 0.5) * (double)xd[d] / (double)yd[d];
        if (c < 0) c = 0;
        if (c > (double)(xd[d] - 1)) c = (double)(xd[d] - 1);
        lo[d] = (int64_t)floor(c);
        hi[d] = lo[d] + 1 < xd[d] ? lo[d] + 1 : lo[d];
        w[d] = c - (double)lo[d];
    }
    double v = 0;
    for (int k = 0; k < 16; k++) {
        double wt = 1;
        int64_t off = 0;
        for (int d = 0; d < 4; d++) {
            int up = k >> d & 1;
            wt *= up ? w[d] : 1 - w[d];
            off = off * xd[d] + (up ? hi[d] : lo[d]);
        }
        v += wt * x[off];
    }
    return v;
}

static void test_tf_nn_linear_outer_axes(void **state)
{
    (void)state;
    static const int64_t shapes[][2][4] = {
        {{1, 1, 3, 4}, {1, 1, 5, 7}}, {{1, 2, 3, 4}, {1, 2, 5, 7}}, {{2, 1, 2, 3}, {2, 1, 4, 2}}};
    for (int c = 0; c < 3; c++) {
        const int64_t *xd = shapes[c][0], *yd = shapes[c][1];
        onr_tensor *x = tk_rand_f32(4, xd, 11 + c), *sz = i64s(4, yd), *y;
        onr_node *n = tk_node("Resize");
        tk_attr_string(n, "mode", "linear");
        tk_attr_string(n, "coordinate_transformation_mode", "tf_half_pixel_for_nn");
        onr_err err = {0};
        onr_tensor *roi = f32s(0, NULL), *sc = f32s(0, NULL);
        if (rs_run(n, 11, x, roi, sc, sz, &y, 1, &err)) fail_msg("%s", err.msg);
        tk_assert_shape(y, 4, yd);
        int64_t o[4];
        for (int64_t i = 0; i < y->numel; i++) {
            int64_t r = i;
            for (int d = 3; d >= 0; d--) o[d] = r % yd[d], r /= yd[d];
            double e = tfnn_linear_ref(x->data, xd, yd, o), a = ((float *)y->data)[i];
            if (!(fabs(a - e) <= 1e-5 + 1e-5 * fabs(e)))
                fail_msg("shape %d, element %lld: %.9g, expected %.9g", c, (long long)i, a, e);
        }
        onr_tensor_free(y), onr_tensor_free(x), onr_tensor_free(sz);
        onr_tensor_free(roi), onr_tensor_free(sc);
        tk_node_free(n);
    }
}

/* A cancelled run stops every path (nearest gather, float plane, the
 * reference) before its rows, and fails with "the run was cancelled": the
 * fuzzer's nearest Resize to 53 M floats ran on past the watchdog's
 * cancel. */
static void test_cancelled(void **state)
{
    (void)state;
    static const char *modes[] = {"nearest", "linear", "cubic"};
    int64_t xd[] = {2, 3, 5, 4}, yv[] = {2, 3, 40, 32}, yv3[] = {2, 2, 40, 32};
    onr_tensor *x = tk_rand_f32(4, xd, 3);
    for (int m = 0; m < 3; m++)
        for (int outer = 0; outer < 2; outer++) { /* outer: C resized too, the reference */
            onr_node *n = tk_node("Resize");
            tk_attr_string(n, "mode", modes[m]);
            n->opset = 13;
            onr_tensor *sz = i64s(4, outer ? yv3 : yv), y = {0};
            const onr_op *op = onr_op_find("", "Resize", 13);
            assert_non_null(op);
            onr_step st;
            onr_err err = {0};
            assert_int_equal(onr_step_init(&st, n, op, 4, 1, &err), ONR_OK);
            st.in[0] = x, st.in[3] = sz, st.in_const[3] = 1;
            st.out[0] = &y;
            if (onr_step_create(&st, 1, &err) || onr_step_reshape(&st, 1, NULL, &err) ||
                onr_tensor_alloc(&y, &err))
                fail_msg("%s: %s", modes[m], err.msg);
            void *scratch = NULL;
            if (st.scratch) assert_int_equal(posix_memalign(&scratch, 64, st.scratch), 0);
            _Atomic int flag = 1;
            st.cancel = &flag;
            size_t nb = onr_tensor_nbytes(&y);
            memset(y.data, 0xff, nb);
            onr_status rs = onr_step_run(&st, scratch, 1, &err);
            if (rs != ONR_E_RUNTIME || !strstr(err.msg, "cancelled"))
                fail_msg("%s%s: status %d, '%s'", modes[m], outer ? " (outer axis)" : "", rs,
                         err.msg);
            /* cancelled before it began: the kernel skipped every row */
            for (size_t b = 0; b < nb; b++)
                if (((unsigned char *)y.data)[b] != 0xff)
                    fail_msg("%s%s: byte %zu written after the cancel", modes[m],
                             outer ? " (outer axis)" : "", b);
            flag = 0; /* not cancelled: the same step runs */
            if (onr_step_run(&st, scratch, 1, &err)) fail_msg("%s: %s", modes[m], err.msg);
            free(scratch);
            onr_step_destroy(&st);
            free(y.data);
            onr_tensor_free(sz);
            tk_node_free(n);
        }
    onr_tensor_free(x);
}

/* Nearest copies strings and bools. */
static void test_nearest_strings(void **state)
{
    (void)state;
    int64_t xd[] = {2, 2}, yd[] = {2, 4};
    const char *xv[] = {"a", "bb", "ccc", "d"};
    onr_tensor *x = strs(2, xd, xv), *y;
    const float sc[] = {1, 2};
    onr_tensor *s = f32s(2, sc);
    onr_node *n = tk_node("Resize");
    onr_err err = {0};
    if (rs_run(n, 13, x, NULL, s, NULL, &y, 1, &err)) fail_msg("%s", err.msg);
    tk_assert_shape(y, 2, yd);
    const char *e[] = {"a", "a", "bb", "bb", "ccc", "ccc", "d", "d"};
    for (int i = 0; i < 8; i++) assert_string_equal(((char **)y->data)[i], e[i]);
    onr_tensor_free(y);
    onr_tensor_free(x);
    tk_node_free(n);
    /* linear on strings is refused */
    n = tk_node("Resize");
    tk_attr_string(n, "mode", "linear");
    x = strs(2, xd, xv);
    assert_int_equal(rs_run(n, 13, x, NULL, s, NULL, &y, 1, &err), ONR_E_UNSUPPORTED);
    onr_tensor_free(y);
    assert_non_null(strstr(err.msg, "numeric"));
    onr_tensor_free(x);
    onr_tensor_free(s);
    tk_node_free(n);
}

/* Expect an error whose message contains needle. */
static void expect_err(onr_node *n, int64_t opset, onr_tensor *x, onr_tensor *roi,
                       onr_tensor *scales, onr_tensor *sizes, const char *needle)
{
    onr_tensor *y = NULL;
    onr_err err = {0};
    onr_status st = rs_run(n, opset, x, roi, scales, sizes, &y, 1, &err);
    onr_tensor_free(y); /* allocated even when the run fails */
    if (st == ONR_OK) fail_msg("expected an error mentioning '%s'", needle);
    if (!strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    int64_t xd[] = {1, 1, 4, 4};
    onr_tensor *x = tk_rand_f32(4, xd, 1);
    onr_node *n = tk_node("Resize");
    tk_attr_string(n, "mode", "linear");
    const float neg[] = {1, 1, -2, 2}, zero[] = {1, 1, 0, 2}, three[] = {1, 2, 2};
    float nanv[] = {1, 1, 2, 2};
    nanv[2] = NAN;
    onr_tensor *t;
    expect_err(n, 13, x, NULL, t = f32s(4, neg), NULL, "scales");
    onr_tensor_free(t);
    expect_err(n, 13, x, NULL, t = f32s(4, zero), NULL, "scales");
    onr_tensor_free(t);
    expect_err(n, 13, x, NULL, t = f32s(4, nanv), NULL, "scales");
    onr_tensor_free(t);
    expect_err(n, 13, x, NULL, t = f32s(3, three), NULL, "'scales' has 3 values");
    onr_tensor_free(t);
    const int64_t nsz[] = {1, 1, -3, 4}, sz3[] = {1, 4, 4};
    expect_err(n, 13, x, NULL, NULL, t = i64s(4, nsz), "sizes");
    onr_tensor_free(t);
    expect_err(n, 13, x, NULL, NULL, t = i64s(3, sz3), "'sizes' has 3 values");
    onr_tensor_free(t);
    const float ok[] = {1, 1, 2, 2};
    const int64_t oks[] = {1, 1, 8, 8};
    onr_tensor *t2;
    expect_err(n, 13, x, NULL, t = f32s(4, ok), t2 = i64s(4, oks), "only one");
    onr_tensor_free(t);
    onr_tensor_free(t2);
    expect_err(n, 13, x, NULL, NULL, NULL, "one of inputs 'scales' and 'sizes'");
    /* opset 11: scales is required, empty when sizes is given */
    expect_err(n, 11, x, NULL, NULL, t = i64s(4, oks), "'scales' is required");
    onr_tensor_free(t);
    tk_node_free(n);

    /* tf_crop_and_resize needs roi of 2 * rank values */
    n = tk_node("Resize");
    tk_attr_string(n, "coordinate_transformation_mode", "tf_crop_and_resize");
    expect_err(n, 13, x, NULL, t = f32s(4, ok), NULL, "roi");
    const float roi3[] = {0, 0, 1};
    expect_err(n, 13, x, t2 = f32s(3, roi3), t, NULL, "'roi' has 3 values");
    onr_tensor_free(t2);
    float roinan[] = {0, 0, 0, 0, 1, 1, 1, 1};
    roinan[5] = INFINITY;
    expect_err(n, 13, x, t2 = f32s(8, roinan), t, NULL, "roi");
    onr_tensor_free(t2);
    onr_tensor_free(t);
    tk_node_free(n);

    /* axes: out of range, duplicated */
    n = tk_node("Resize");
    const int64_t ax_bad[] = {2, 4}, ax_dup[] = {3, -1};
    tk_attr_ints(n, "axes", 2, ax_bad);
    const float sc2[] = {2, 2};
    expect_err(n, 18, x, NULL, t = f32s(2, sc2), NULL, "axes value 4");
    tk_node_free(n);
    n = tk_node("Resize");
    tk_attr_ints(n, "axes", 2, ax_dup);
    expect_err(n, 18, x, NULL, t, NULL, "axes");
    onr_tensor_free(t);
    tk_node_free(n);
    onr_tensor_free(x);
}

static void test_bad_attributes(void **state)
{
    (void)state;
    int64_t xd[] = {1, 1, 4, 4};
    onr_tensor *x = tk_rand_f32(4, xd, 1);
    const float ok[] = {1, 1, 2, 2};
    onr_tensor *s = f32s(4, ok);
    onr_node *n = tk_node("Resize");
    tk_attr_string(n, "mode", "bilinear");
    expect_err(n, 13, x, NULL, s, NULL, "'mode'");
    tk_node_free(n);
    n = tk_node("Resize");
    tk_attr_string(n, "coordinate_transformation_mode", "half_pixel_symmetric");
    expect_err(n, 18, x, NULL, s, NULL, "not valid at opset 18");
    tk_node_free(n);
    n = tk_node("Resize");
    tk_attr_string(n, "coordinate_transformation_mode", "tf_half_pixel_for_nn");
    expect_err(n, 13, x, NULL, s, NULL, "tf_half_pixel_for_nn");
    tk_node_free(n);
    n = tk_node("Resize");
    tk_attr_int(n, "exclude_outside", 2);
    expect_err(n, 13, x, NULL, s, NULL, "exclude_outside");
    tk_node_free(n);
    n = tk_node("Resize");
    tk_attr_int(n, "cubic_coeff_a", -1);
    expect_err(n, 13, x, NULL, s, NULL, "cubic_coeff_a");
    tk_node_free(n);
    n = tk_node("Resize");
    tk_attr_string(n, "keep_aspect_ratio_policy", "fit");
    expect_err(n, 18, x, NULL, s, NULL, "keep_aspect_ratio_policy");
    tk_node_free(n);
    n = tk_node("Resize");
    tk_attr_string(n, "mode", "cubic");
    expect_err(n, 10, x, s, NULL, NULL, "cubic");
    tk_node_free(n);
    /* Upsample: scales >= 1, attribute before opset 9 */
    n = tk_node("Upsample");
    const float down[] = {1, 1, 0.5f, 2};
    tk_attr_floats(n, "scales", 4, down);
    expect_err(n, 7, x, NULL, NULL, NULL, ">= 1");
    tk_node_free(n);
    n = tk_node("Upsample");
    expect_err(n, 7, x, NULL, NULL, NULL, "'scales'");
    tk_node_free(n);
    onr_tensor_free(s);
    onr_tensor_free(x);
}

/* Output sizes no machine could hold: a clean error before any table or
 * output is allocated. */
static void test_absurd_sizes(void **state)
{
    (void)state;
    int64_t xd[] = {1, 1, 4, 4};
    onr_tensor *x = tk_rand_f32(4, xd, 1), *t;
    onr_node *n = tk_node("Resize");
    tk_attr_string(n, "mode", "linear");
    const float huge[] = {1, 1, 1e9f, 1e9f}, inf_like[] = {1, 1, 3e38f, 3e38f};
    expect_err(n, 13, x, NULL, t = f32s(4, huge), NULL, "too large");
    onr_tensor_free(t);
    expect_err(n, 13, x, NULL, t = f32s(4, inf_like), NULL, "would have");
    onr_tensor_free(t);
    const int64_t big[] = {1, 1, (int64_t)1 << 40, (int64_t)1 << 40};
    expect_err(n, 13, x, NULL, NULL, t = i64s(4, big), "too large");
    onr_tensor_free(t);
    tk_node_free(n);
    /* an antialias filter stretched over a tiny scale: refused, not allocated */
    n = tk_node("Resize");
    tk_attr_string(n, "mode", "linear");
    tk_attr_int(n, "antialias", 1);
    tk_attr_string(n, "coordinate_transformation_mode", "tf_crop_and_resize");
    const float roi[] = {0, 0, 0, 0, 1, 1, 1e9f, 1e9f};
    const float tiny[] = {1, 1, 1e-8f, 1e-8f};
    onr_tensor *r;
    expect_err(n, 18, x, r = f32s(8, roi), t = f32s(4, tiny), NULL, "antialias");
    onr_tensor_free(r);
    onr_tensor_free(t);
    tk_node_free(n);
    /* an empty axis with a huge scale elsewhere is an empty output */
    int64_t ed[] = {0, 3};
    onr_tensor *e = tk_f32(2, ed, NULL), *y;
    const float sc[] = {1, 1e12f};
    n = tk_node("Resize");
    onr_err err = {0};
    t = f32s(2, sc);
    onr_status st = rs_run(n, 13, e, NULL, t, NULL, &y, 1, &err);
    if (st == ONR_OK) assert_int_equal(y->numel, 0);
    onr_tensor_free(y);
    onr_tensor_free(t);
    onr_tensor_free(e);
    tk_node_free(n);
    onr_tensor_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_vs_reference),
        cmocka_unit_test(test_fast_vs_reference_types),
        cmocka_unit_test(test_fast_vs_reference_large),
        cmocka_unit_test(test_separable_vs_reference),
        cmocka_unit_test(test_linear_hand),
        cmocka_unit_test(test_tf_nn_linear_outer_axes),
        cmocka_unit_test(test_cancelled),
        cmocka_unit_test(test_nearest_strings),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_bad_attributes),
        cmocka_unit_test(test_absurd_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
