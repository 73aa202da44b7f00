/* test_ops_signal.c - DFT, STFT, the window functions and MelWeightMatrix:
 * every transform path (radix-2, direct, Bluestein) against a plain O(n^2)
 * long-double DFT over many lengths, forward and inverse, RFFT / IRFFT
 * round trips, thread-count independence, other float types, empty inputs
 * and bad attributes and inputs (clean errors). */
#include "kutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void expect_fail(onr_node *n, int64_t opset, int n_in, onr_tensor **in,
                        const char *needle)
{
    onr_tensor *out[1];
    onr_err err = {0};
    onr_status st = tk_run(n, opset, n_in, in, 1, out, 1, &err);
    if (st == ONR_OK) fail_msg("%s: expected an error mentioning '%s'", n->op_type, needle ? needle : "(any)");
    if (needle && !strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    tk_free_all(1, out);
}

/* Plain DFT of n complex values (interleaved) in long double, with a
 * table of the n roots so it stays fast at a few thousand points. */
static void ref_dft(const float *x, int64_t n, int inverse, double *y)
{
    const long double pi = 3.141592653589793238462643383279502884L;
    long double *c = malloc(sizeof(long double) * 2 * (size_t)n);
    for (int64_t k = 0; k < n; k++) {
        long double a = (inverse ? 2 : -2) * pi * (long double)k / (long double)n;
        c[2 * k] = cosl(a), c[2 * k + 1] = sinl(a);
    }
    for (int64_t k = 0; k < n; k++) {
        long double sr = 0, si = 0;
        for (int64_t j = 0; j < n; j++) {
            const long double *w = c + 2 * ((k * j) % n);
            sr += x[2 * j] * w[0] - x[2 * j + 1] * w[1];
            si += x[2 * j] * w[1] + x[2 * j + 1] * w[0];
        }
        y[2 * k] = (double)(inverse ? sr / n : sr);
        y[2 * k + 1] = (double)(inverse ? si / n : si);
    }
    free(c);
}

/* Max |fft - ref| relative to the largest |ref| for a length-n complex line. */
static double dft_err(int64_t n, int inverse, int nthreads)
{
    int64_t dims[3] = {1, n, 2};
    onr_tensor *x = tk_rand_f32(3, dims, (uint32_t)(n * 7 + inverse));
    onr_node *node = tk_node("DFT");
    if (inverse) tk_attr_int(node, "inverse", 1);
    onr_tensor *in[1] = {x};
    onr_tensor *y = tk_run1(node, 20, 1, in, nthreads);
    tk_assert_shape(y, 3, dims);
    double *ref = malloc(sizeof(double) * 2 * (size_t)n);
    ref_dft(x->data, n, inverse, ref);
    double e = 0, mx = 1e-30;
    const float *py = y->data;
    for (int64_t k = 0; k < 2 * n; k++) {
        double d = fabs(py[k] - ref[k]);
        if (d > e) e = d;
        if (fabs(ref[k]) > mx) mx = fabs(ref[k]);
    }
    free(ref);
    onr_tensor_free(y);
    tk_free_all(1, in);
    tk_node_free(node);
    return e / mx;
}

static void test_dft_lengths_vs_reference(void **state)
{
    (void)state;
    /* 1..70 covers pow2 and the direct path, the rest Bluestein and big pow2 */
    for (int64_t n = 1; n <= 70; n++)
        for (int inv = 0; inv < 2; inv++) {
            double e = dft_err(n, inv, 1);
            if (e > 2e-6) fail_msg("n=%lld inverse=%d: relative error %g", (long long)n, inv, e);
        }
    const int64_t more[] = {97, 127, 128, 131, 255, 256, 257, 1000, 1021, 1024, 4096};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        for (int inv = 0; inv < 2; inv++) {
            double e = dft_err(more[i], inv, 2);
            if (e > 2e-6)
                fail_msg("n=%lld inverse=%d: relative error %g", (long long)more[i], inv, e);
        }
}

/* Many lines with several threads give bit-identical results to one. */
static void test_dft_threads(void **state)
{
    (void)state;
    const int64_t lens[] = {64, 45, 300};
    for (int li = 0; li < 3; li++) {
        int64_t dims[4] = {16, lens[li], 5, 2};
        onr_tensor *x = tk_rand_f32(4, dims, 11);
        onr_node *node = tk_node("DFT");
        tk_attr_int(node, "axis", 1);
        onr_tensor *in[1] = {x};
        onr_tensor *a = tk_run1(node, 17, 1, in, 1), *b = tk_run1(node, 17, 1, in, 4);
        assert_int_equal(a->numel, b->numel);
        assert_memory_equal(a->data, b->data, onr_tensor_nbytes(a));
        onr_tensor_free(a);
        onr_tensor_free(b);
        tk_free_all(1, in);
        tk_node_free(node);
    }
}

/* RFFT then IRFFT at the same length gives the signal back, even and odd. */
static void test_rfft_irfft_roundtrip(void **state)
{
    (void)state;
    for (int64_t n = 5; n <= 8; n++) {
        int64_t dims[3] = {3, n, 1};
        onr_tensor *x = tk_rand_f32(3, dims, 3);
        onr_node *f = tk_node("DFT");
        tk_attr_int(f, "onesided", 1);
        onr_tensor *in[1] = {x};
        onr_tensor *spec = tk_run1(f, 20, 1, in, 1);
        int64_t sd[3] = {3, n / 2 + 1, 2};
        tk_assert_shape(spec, 3, sd);
        onr_node *b = tk_node("DFT");
        tk_attr_int(b, "onesided", 1);
        tk_attr_int(b, "inverse", 1);
        int64_t nv = n;
        onr_tensor *len = tk_i64(0, NULL, &nv);
        onr_tensor *in2[2] = {spec, len};
        onr_tensor *back = tk_run1(b, 20, 2, in2, 1);
        tk_assert_shape(back, 3, dims);
        tk_assert_close_f32(back, x->data, x->numel, 1e-5f, 1e-5f);
        onr_tensor_free(back);
        tk_free_all(2, in2);
        tk_free_all(1, in);
        tk_node_free(f);
        tk_node_free(b);
    }
}

/* float16, bfloat16 and double lines match the float32 result within their precision. */
static void test_dft_types(void **state)
{
    (void)state;
    const float xs[8] = {1, 0, 2, 0, -1, 0, 0.5f, 0};
    int64_t dims[3] = {1, 4, 2};
    double ref[8];
    ref_dft(xs, 4, 0, ref);
    const onr_dtype dts[3] = {ONR_FLOAT16, ONR_BFLOAT16, ONR_DOUBLE};
    for (int t = 0; t < 3; t++) {
        onr_tensor *x = tk_typed(dts[t], 3, dims, NULL);
        for (int i = 0; i < 8; i++) onr_set_f64(x, i, xs[i]);
        onr_node *node = tk_node("DFT");
        onr_tensor *in[1] = {x};
        onr_tensor *y = tk_run1(node, 17, 1, in, 1);
        assert_int_equal(y->dtype, dts[t]);
        for (int i = 0; i < 8; i++) assert_true(fabs(onr_get_f64(y, i) - ref[i]) < 1e-2);
        onr_tensor_free(y);
        tk_free_all(1, in);
        tk_node_free(node);
    }
}

static void test_dft_empty(void **state)
{
    (void)state;
    int64_t dims[3] = {0, 6, 1};
    onr_tensor *x = tk_f32(3, dims, NULL);
    onr_node *node = tk_node("DFT");
    tk_attr_int(node, "onesided", 1);
    onr_tensor *in[1] = {x};
    onr_tensor *y = tk_run1(node, 20, 1, in, 2);
    int64_t od[3] = {0, 4, 2};
    tk_assert_shape(y, 3, od);
    onr_tensor_free(y);
    tk_node_free(node);
    /* an empty signal axis with no dft_length has nothing to transform */
    int64_t d0[3] = {2, 0, 1};
    onr_tensor *e = tk_f32(3, d0, NULL);
    node = tk_node("DFT");
    onr_tensor *in2[1] = {e};
    expect_fail(node, 20, 1, in2, "has length 0");
    tk_free_all(1, in2);
    tk_free_all(1, in);
    tk_node_free(node);
}

static void test_dft_errors(void **state)
{
    (void)state;
    int64_t dims[3] = {1, 4, 1}, cd[3] = {1, 4, 2}, bad[3] = {1, 4, 3};
    onr_tensor *x = tk_f32(3, dims, NULL), *c = tk_f32(3, cd, NULL), *b3 = tk_f32(3, bad, NULL);
    onr_tensor *in[1] = {x}, *inc[1] = {c}, *inb[1] = {b3};
    onr_node *n;

    n = tk_node("DFT");
    tk_attr_int(n, "inverse", 2);
    expect_fail(n, 17, 1, in, "inverse must be 0 or 1");
    tk_node_free(n);
    n = tk_node("DFT");
    tk_attr_int(n, "onesided", -1);
    expect_fail(n, 20, 1, in, "onesided must be 0 or 1");
    tk_node_free(n);
    n = tk_node("DFT");
    tk_attr_int(n, "axis", 2);
    expect_fail(n, 17, 1, in, "axis 2 is out of range");
    tk_node_free(n);
    n = tk_node("DFT");
    tk_attr_int(n, "axis", -1);
    expect_fail(n, 17, 1, in, "axis -1 is out of range");
    tk_node_free(n);
    n = tk_node("DFT");
    tk_attr_int(n, "axis", 1);
    expect_fail(n, 20, 1, in, "replaced by an input");
    tk_node_free(n);
    n = tk_node("DFT");
    expect_fail(n, 20, 1, inb, "last dim of 1 (real) or 2");
    tk_node_free(n);
    n = tk_node("DFT");
    tk_attr_int(n, "onesided", 1);
    expect_fail(n, 20, 1, inc, "needs real input");
    tk_node_free(n);
    n = tk_node("DFT");
    tk_attr_int(n, "onesided", 1);
    tk_attr_int(n, "inverse", 1);
    expect_fail(n, 20, 1, in, "needs complex input");
    tk_node_free(n);
    /* dft_length 0, negative, not scalar; axis input out of range */
    const int64_t zero = 0, neg = -3, two[2] = {2, 2}, ax = 2;
    int64_t d2[1] = {2};
    onr_tensor *l0 = tk_i64(0, NULL, &zero), *ln = tk_i64(0, NULL, &neg);
    onr_tensor *l2 = tk_i64(1, d2, two), *a2 = tk_i64(0, NULL, &ax);
    onr_tensor *i0[2] = {x, l0}, *i1[2] = {x, ln}, *i2[2] = {x, l2}, *i3[3] = {x, NULL, a2};
    n = tk_node("DFT");
    expect_fail(n, 20, 2, i0, "dft_length must be >= 1");
    expect_fail(n, 20, 2, i1, "dft_length must be >= 1");
    expect_fail(n, 20, 2, i2, "must be a scalar");
    expect_fail(n, 20, 3, i3, "axis 2 is out of range");
    tk_node_free(n);
    /* a huge dft_length is refused by the size limit, not allocated */
    const int64_t huge = INT64_MAX / 4;
    onr_tensor *lh = tk_i64(0, NULL, &huge);
    onr_tensor *i4[2] = {x, lh};
    n = tk_node("DFT");
    expect_fail(n, 20, 2, i4, NULL);
    tk_node_free(n);
    onr_tensor *ints = tk_i64(3, dims, NULL);
    onr_tensor *i5[1] = {ints};
    n = tk_node("DFT");
    expect_fail(n, 20, 1, i5, "unsupported type");
    tk_node_free(n);
    tk_free_all(1, i5);
    tk_free_all(1, in), tk_free_all(1, inc), tk_free_all(1, inb);
    tk_free_all(1, &l0), tk_free_all(1, &ln), tk_free_all(1, &l2), tk_free_all(1, &a2);
    tk_free_all(1, &lh);
}

/* STFT: the hand-computed frames of a short ramp, then errors. */
static void test_stft(void **state)
{
    (void)state;
    float sig[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t dims[3] = {1, 8, 1};
    const int64_t step = 3, flen = 4;
    onr_tensor *x = tk_f32(3, dims, sig), *st = tk_i64(0, NULL, &step), *fl = tk_i64(0, NULL, &flen);
    onr_node *n = tk_node("STFT");
    onr_tensor *in[4] = {x, st, NULL, fl};
    onr_tensor *y = tk_run1(n, 17, 4, in, 1);
    int64_t od[4] = {1, 2, 3, 2}; /* frames (8-4)/3+1 = 2, bins 4/2+1 = 3 */
    tk_assert_shape(y, 4, od);
    /* frame 0: 1 2 3 4 -> X0 = 10, X1 = -2+2i, X2 = -2; frame 1: 4 5 6 7 -> 22, -2+2i, -2 */
    const float want[12] = {10, 0, -2, 2, -2, 0, 22, 0, -2, 2, -2, 0};
    tk_assert_close_f32(y, want, 12, 1e-6f, 1e-6f);
    onr_tensor_free(y);
    tk_node_free(n);

    const int64_t zero = 0, big = 9;
    onr_tensor *z = tk_i64(0, NULL, &zero), *bg = tk_i64(0, NULL, &big);
    int64_t wd[1] = {4};
    onr_tensor *wd64 = tk_typed(ONR_DOUBLE, 1, wd, NULL);
    onr_tensor *e1[2] = {x, z}, *e2[4] = {x, st, NULL, bg}, *e3[3] = {x, st, wd64};
    n = tk_node("STFT");
    expect_fail(n, 17, 2, e1, "frame_step must be >= 1");
    expect_fail(n, 17, 4, e2, "longer than the signal");
    expect_fail(n, 17, 3, e3, "window is float64");
    tk_node_free(n);
    n = tk_node("STFT");
    tk_attr_int(n, "onesided", 7);
    expect_fail(n, 17, 2, in, "onesided must be 0 or 1");
    tk_node_free(n);
    int64_t cd[3] = {1, 8, 2};
    onr_tensor *c = tk_f32(3, cd, NULL);
    onr_tensor *e4[2] = {c, st};
    n = tk_node("STFT");
    expect_fail(n, 17, 2, e4, "needs a real signal");
    tk_node_free(n);
    /* empty batch */
    int64_t ed[3] = {0, 8, 1};
    onr_tensor *ex = tk_f32(3, ed, NULL);
    onr_tensor *e5[4] = {ex, st, NULL, fl};
    n = tk_node("STFT");
    y = tk_run1(n, 17, 4, e5, 2);
    int64_t eod[4] = {0, 2, 3, 2};
    tk_assert_shape(y, 4, eod);
    onr_tensor_free(y);
    tk_node_free(n);
    tk_free_all(1, &ex);
    tk_free_all(1, &c);
    tk_free_all(1, &z), tk_free_all(1, &bg), tk_free_all(1, &wd64);
    tk_free_all(1, &x), tk_free_all(1, &st), tk_free_all(1, &fl);
}

static void test_windows(void **state)
{
    (void)state;
    const char *ops[3] = {"HannWindow", "HammingWindow", "BlackmanWindow"};
    for (int o = 0; o < 3; o++) {
        /* symmetric size 1 is [1]; periodic size 1 is a0 - a1 + a2 */
        const int64_t one = 1, four = 4, negv = -2;
        onr_tensor *s1 = tk_i64(0, NULL, &one), *s4 = tk_i64(0, NULL, &four), *sn = tk_i64(0, NULL, &negv);
        onr_node *n = tk_node(ops[o]);
        tk_attr_int(n, "periodic", 0);
        onr_tensor *in[1] = {s1};
        onr_tensor *y = tk_run1(n, 17, 1, in, 1);
        const float w1 = 1;
        tk_assert_close_f32(y, &w1, 1, 0, 0);
        onr_tensor_free(y);
        /* symmetric windows are symmetric and end at a0 - a1 + a2 */
        onr_tensor *in4[1] = {s4};
        y = tk_run1(n, 17, 1, in4, 1);
        const float *w = y->data;
        assert_true(fabsf(w[0] - w[3]) < 1e-7f && fabsf(w[1] - w[2]) < 1e-7f);
        onr_tensor_free(y);
        onr_tensor *inn[1] = {sn};
        expect_fail(n, 17, 1, inn, "size must be >= 0");
        tk_node_free(n);
        n = tk_node(ops[o]);
        tk_attr_int(n, "output_datatype", ONR_STRING);
        expect_fail(n, 17, 1, in4, "output_datatype 8");
        tk_node_free(n);
        n = tk_node(ops[o]);
        tk_attr_int(n, "output_datatype", 99);
        expect_fail(n, 17, 1, in4, "output_datatype 99");
        tk_node_free(n);
        n = tk_node(ops[o]);
        tk_attr_int(n, "periodic", 2);
        expect_fail(n, 17, 1, in4, "periodic must be 0 or 1");
        tk_node_free(n);
        onr_tensor *fs = tk_f32(0, NULL, &w1);
        onr_tensor *inf[1] = {fs};
        n = tk_node(ops[o]);
        expect_fail(n, 17, 1, inf, "unsupported type");
        tk_node_free(n);
        tk_free_all(1, inf);
        tk_free_all(1, in), tk_free_all(1, in4), tk_free_all(1, inn);
    }
}

static void test_mel(void **state)
{
    (void)state;
    const int64_t mels = 4, dft = 32, sr = 8000;
    const float lo = 100, hi = 4000, bad_hi = 9000;
    onr_tensor *m = tk_i64(0, NULL, &mels), *d = tk_i64(0, NULL, &dft), *s = tk_i64(0, NULL, &sr);
    onr_tensor *l = tk_f32(0, NULL, &lo), *h = tk_f32(0, NULL, &hi), *bh = tk_f32(0, NULL, &bad_hi);
    onr_node *n = tk_node("MelWeightMatrix");
    onr_tensor *in[5] = {m, d, s, l, h};
    onr_tensor *y = tk_run1(n, 17, 5, in, 1);
    int64_t od[2] = {17, 4};
    tk_assert_shape(y, 2, od);
    /* every filter is a triangle with its peak 1 */
    for (int j = 0; j < 4; j++) {
        float mx = 0;
        for (int b = 0; b < 17; b++) mx = fmaxf(mx, ((float *)y->data)[b * 4 + j]);
        assert_true(fabsf(mx - 1) < 1e-6f);
    }
    onr_tensor_free(y);
    onr_tensor *bad[5] = {m, d, s, l, bh};
    expect_fail(n, 17, 5, bad, "outside the 17 spectrogram bins");
    onr_tensor *swapped[5] = {m, d, s, h, l};
    expect_fail(n, 17, 5, swapped, "lower_edge_hertz");
    tk_node_free(n);
    tk_free_all(5, in);
    tk_free_all(1, &bh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dft_lengths_vs_reference),
        cmocka_unit_test(test_dft_threads),
        cmocka_unit_test(test_rfft_irfft_roundtrip),
        cmocka_unit_test(test_dft_types),
        cmocka_unit_test(test_dft_empty),
        cmocka_unit_test(test_dft_errors),
        cmocka_unit_test(test_stft),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_mel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
