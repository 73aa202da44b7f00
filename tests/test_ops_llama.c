/* test_ops_llama.c - RMSNormalization and RotaryEmbedding (opset 23)
 * against plain double-precision references written here from the
 * specification: odd sizes, every scale / cache / position_ids form, other
 * float types, 1 and 2 threads (sizes above the parallel threshold), and
 * the error cases. */
#include "kutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static onr_tensor *run1(onr_node *n, int n_in, onr_tensor **in, int nthreads)
{
    onr_tensor *out[1];
    onr_err err = {0};
    onr_status st = tk_run(n, 23, n_in, in, 1, out, nthreads, &err);
    if (st != ONR_OK) fail_msg("%s failed: %s", n->op_type, err.msg);
    return out[0];
}

static void expect_fail(onr_node *n, int n_in, onr_tensor **in, const char *needle)
{
    onr_tensor *out[1] = {0};
    onr_err err = {0};
    onr_status st = tk_run(n, 23, n_in, in, 1, out, 1, &err);
    if (st == ONR_OK) fail_msg("%s: expected a failure (%s)", n->op_type, needle ? needle : "any");
    if (needle && !strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    tk_free_all(1, out);
}

static int64_t numel(int rank, const int64_t *d)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= d[i];
    return n;
}

/* ---- RMSNormalization ------------------------------------------------------ */

/* Reference: y = x / sqrt(mean(x^2 over [axis, rank)) + eps) * scale, scale
 * broadcast unidirectionally to x. */
static float *ref_rms(const float *x, int rank, const int64_t *xd, int axis, const float *s,
                      int srank, const int64_t *sd, double eps)
{
    int64_t n = numel(rank - axis, xd + axis), outer = numel(axis, xd), tot = n * outer;
    float *y = malloc(sizeof(float) * (size_t)(tot ? tot : 1));
    int64_t sstr[8], own[8], idx[8];
    /* scale strides over x's dims */
    int64_t st = 1;
    for (int d = srank - 1; d >= 0; d--) {
        own[d] = st;
        st *= sd[d];
    }
    for (int d = 0; d < rank; d++) {
        int k = d - (rank - srank);
        sstr[d] = k < 0 || sd[k] == 1 ? 0 : own[k];
    }
    for (int64_t o = 0; o < outer; o++) {
        double ss = 0;
        for (int64_t i = 0; i < n; i++) ss += (double)x[o * n + i] * x[o * n + i];
        double rms = sqrt(ss / (double)n + eps);
        for (int64_t i = 0; i < n; i++) {
            int64_t e = o * n + i, r = e, so = 0;
            for (int d = rank - 1; d >= 0; d--) {
                idx[d] = r % xd[d];
                r /= xd[d];
            }
            for (int d = 0; d < rank; d++) so += idx[d] * sstr[d];
            y[e] = (float)(x[e] / rms * s[so]);
        }
    }
    return y;
}

static void rms_case(int rank, const int64_t *xd, int64_t axis, int srank, const int64_t *sd,
                     float eps, int nthreads, uint32_t seed)
{
    onr_node *n = tk_node("RMSNormalization");
    tk_attr_int(n, "axis", axis);
    tk_attr_float(n, "epsilon", eps);
    onr_tensor *in[] = {tk_rand_f32(rank, xd, seed), tk_rand_f32(srank, sd, seed + 1)};
    onr_tensor *y = run1(n, 2, in, nthreads);
    tk_assert_shape(y, rank, xd);
    int ax = (int)(axis < 0 ? axis + rank : axis);
    float *e = ref_rms(in[0]->data, rank, xd, ax, in[1]->data, srank, sd, eps);
    tk_assert_close_f32(y, e, y->numel, 1e-5f, 1e-6f);
    free(e);
    onr_tensor_free(y);
    tk_free_all(2, in);
    tk_node_free(n);
}

static void test_rms_f32_forms(void **state)
{
    (void)state;
    for (int th = 1; th <= 2; th++) {
        int64_t x3[] = {3, 5, 37}, s1[] = {37}, s2[] = {1, 37}, s5[] = {5, 37}, s0[] = {1};
        rms_case(3, x3, -1, 1, s1, 1e-5f, th, 1);  /* the usual form */
        rms_case(3, x3, 2, 2, s2, 1e-6f, th, 2);   /* positive axis, rank-2 scale */
        rms_case(3, x3, 1, 2, s5, 1e-5f, th, 3);   /* two normalized dims */
        rms_case(3, x3, -2, 1, s1, 1e-5f, th, 4);  /* scale over the last dim only */
        rms_case(3, x3, -1, 1, s0, 0.f, th, 5);    /* scalar-like scale, eps 0 */
        rms_case(3, x3, 0, 3, x3, 1e-5f, th, 6);   /* whole tensor */
        int64_t s351[] = {3, 1, 37};
        rms_case(3, x3, -1, 3, s351, 1e-5f, th, 7); /* scale varies along a leading dim */
        int64_t x1[] = {7}, s7[] = {7};
        rms_case(1, x1, 0, 1, s7, 1e-5f, th, 8);
        int64_t big[] = {64, 1029}, sb[] = {1029};    /* above the parallel threshold */
        rms_case(2, big, -1, 1, sb, 1e-5f, th, 9);
        int64_t big2[] = {2, 65, 129}, sb2[] = {2, 1, 129}; /* parallel, strided scale */
        rms_case(3, big2, -1, 3, sb2, 1e-5f, th, 10);
    }
}

static void test_rms_hand(void **state)
{
    (void)state;
    int64_t d[] = {2, 3}, sd[] = {3};
    const float x[] = {1, 2, 3, 0, 0, 0}, s[] = {1, 2, 0.5f};
    onr_node *n = tk_node("RMSNormalization"); /* default epsilon 1e-5, axis -1 */
    onr_tensor *in[] = {tk_f32(2, d, x), tk_f32(1, sd, s)};
    onr_tensor *y = run1(n, 2, in, 1);
    double r = sqrt(14.0 / 3 + 1e-5);
    const float e[] = {(float)(1 / r), (float)(4 / r), (float)(1.5 / r), 0, 0, 0};
    tk_assert_close_f32(y, e, 6, 1e-6f, 1e-7f);
    onr_tensor_free(y);
    tk_free_all(2, in);
    tk_node_free(n);
}

/* float16 X and scale (stash float): the normalized value is rounded to
 * float16 before the multiply, and Y is float16 (scale's type). */
static void test_rms_fp16_double(void **state)
{
    (void)state;
    int64_t d[] = {3, 11}, sd[] = {11};
    onr_tensor *xf = tk_rand_f32(2, d, 21), *sf = tk_rand_f32(1, sd, 22);
    uint16_t xh[33], sh[11];
    for (int i = 0; i < 33; i++) xh[i] = onr_float_to_half(((float *)xf->data)[i]);
    for (int i = 0; i < 11; i++) sh[i] = onr_float_to_half(((float *)sf->data)[i]);
    onr_node *n = tk_node("RMSNormalization");
    onr_tensor *in[] = {tk_typed(ONR_FLOAT16, 2, d, xh), tk_typed(ONR_FLOAT16, 1, sd, sh)};
    onr_tensor *y = run1(n, 2, in, 1);
    assert_int_equal(y->dtype, ONR_FLOAT16);
    for (int o = 0; o < 3; o++) {
        double ss = 0;
        for (int i = 0; i < 11; i++) {
            double v = onr_half_to_float(xh[o * 11 + i]);
            ss += v * v;
        }
        float rms = (float)sqrt((float)(ss / 11 + 1e-5));
        for (int i = 0; i < 11; i++) {
            float norm = onr_half_to_float(onr_float_to_half(onr_half_to_float(xh[o * 11 + i]) / rms));
            float e = norm * onr_half_to_float(sh[i]);
            float got = onr_half_to_float(((uint16_t *)y->data)[o * 11 + i]);
            if (fabsf(got - e) > 2e-3f * fabsf(e) + 1e-3f) fail_msg("fp16 [%d,%d]: %g vs %g", o, i, got, e);
        }
    }
    onr_tensor_free(y);
    tk_free_all(2, in);
    tk_node_free(n);
    /* double X and scale, stash double */
    double xdv[33], sdv[11];
    for (int i = 0; i < 33; i++) xdv[i] = ((float *)xf->data)[i];
    for (int i = 0; i < 11; i++) sdv[i] = ((float *)sf->data)[i];
    n = tk_node("RMSNormalization");
    tk_attr_int(n, "stash_type", ONR_DOUBLE);
    onr_tensor *in2[] = {tk_typed(ONR_DOUBLE, 2, d, xdv), tk_typed(ONR_DOUBLE, 1, sd, sdv)};
    y = run1(n, 2, in2, 2);
    assert_int_equal(y->dtype, ONR_DOUBLE);
    for (int o = 0; o < 3; o++) {
        double ss = 0;
        for (int i = 0; i < 11; i++) ss += xdv[o * 11 + i] * xdv[o * 11 + i];
        double rms = sqrt(ss / 11 + (double)1e-5f);
        for (int i = 0; i < 11; i++) {
            double e = xdv[o * 11 + i] / rms * sdv[i], got = ((double *)y->data)[o * 11 + i];
            if (fabs(got - e) > 1e-12 * fabs(e) + 1e-14) fail_msg("double [%d,%d]: %.17g vs %.17g", o, i, got, e);
        }
    }
    onr_tensor_free(y);
    tk_free_all(2, in2);
    tk_node_free(n);
    /* float32 X with a float16 scale: Y is float16 */
    n = tk_node("RMSNormalization");
    onr_tensor *in3[] = {onr_tensor_clone(xf), tk_typed(ONR_FLOAT16, 1, sd, sh)};
    y = run1(n, 2, in3, 1);
    assert_int_equal(y->dtype, ONR_FLOAT16);
    onr_tensor_free(y);
    tk_free_all(2, in3);
    tk_node_free(n);
    onr_tensor_free(xf);
    onr_tensor_free(sf);
}

static void test_rms_errors(void **state)
{
    (void)state;
    int64_t d[] = {2, 6}, s4[] = {4}, s6[] = {6}, s26[] = {3, 6};
    onr_node *n = tk_node("RMSNormalization");
    onr_tensor *a[] = {tk_rand_f32(2, d, 1), tk_rand_f32(1, s4, 2)};
    expect_fail(n, 2, a, "does not broadcast");
    tk_free_all(2, a);
    onr_tensor *b[] = {tk_rand_f32(2, d, 1), tk_rand_f32(2, s26, 2)};
    expect_fail(n, 2, b, "does not broadcast");
    tk_free_all(2, b);
    tk_node_free(n);
    n = tk_node("RMSNormalization");
    tk_attr_int(n, "axis", 2);
    onr_tensor *c[] = {tk_rand_f32(2, d, 1), tk_rand_f32(1, s6, 2)};
    expect_fail(n, 2, c, NULL);
    tk_node_free(n);
    n = tk_node("RMSNormalization");
    tk_attr_int(n, "stash_type", ONR_INT32);
    expect_fail(n, 2, c, "stash_type");
    tk_node_free(n);
    n = tk_node("RMSNormalization");
    tk_attr_float(n, "epsilon", -1.f);
    expect_fail(n, 2, c, "epsilon");
    tk_node_free(n);
    tk_free_all(2, c);
    /* empty rows: nothing to compute, shape kept */
    int64_t e[] = {0, 6};
    n = tk_node("RMSNormalization");
    onr_tensor *z[] = {tk_rand_f32(2, e, 1), tk_rand_f32(1, s6, 2)};
    onr_tensor *y = run1(n, 2, z, 1);
    tk_assert_shape(y, 2, e);
    onr_tensor_free(y);
    tk_free_all(2, z);
    tk_node_free(n);
}

/* ---- RotaryEmbedding ------------------------------------------------------- */

typedef struct rot_case {
    int x4;            /* X [B,H,S,D] (else [B,S,H*D] with num_heads) */
    int64_t B, H, S, D, rd_attr;
    int interleaved;
    int pos;           /* 1: position_ids [PB,PS] and 2-D caches [P,C]; 0: 3-D caches [CB,CS,C] */
    int64_t PB, PS, P, C, CB, CS;
    int neg;           /* use some negative position ids */
} rot_case;

/* Reference straight from the operator's definition, in double. */
static float *ref_rot(const rot_case *k, const float *x, const float *cc, const float *sc,
                      const int64_t *pid)
{
    int64_t tot = k->B * k->H * k->S * k->D, rd = k->rd_attr ? k->rd_attr : k->D, half = rd / 2;
    float *y = malloc(sizeof(float) * (size_t)tot);
    for (int64_t b = 0; b < k->B; b++)
        for (int64_t h = 0; h < k->H; h++)
            for (int64_t s = 0; s < k->S; s++) {
                int64_t xo = k->x4 ? ((b * k->H + h) * k->S + s) * k->D : ((b * k->S + s) * k->H + h) * k->D;
                int64_t co;
                if (k->pos) {
                    int64_t q = pid[(k->PB == 1 ? 0 : b) * k->PS + (k->PS == 1 ? 0 : s)];
                    if (q < 0) q += k->P;
                    co = q * k->C;
                } else {
                    co = ((k->CB == 1 ? 0 : b) * k->CS + (k->CS == 1 ? 0 : s)) * k->C;
                }
                for (int64_t d = 0; d < k->D; d++) y[xo + d] = x[xo + d];
                for (int64_t i = 0; i < half; i++) {
                    int64_t i1 = k->interleaved ? 2 * i : i, i2 = k->interleaved ? 2 * i + 1 : i + half;
                    double x1 = x[xo + i1], x2 = x[xo + i2], c = cc[co + i], sn = sc[co + i];
                    y[xo + i1] = (float)(c * x1 - sn * x2);
                    y[xo + i2] = (float)(sn * x1 + c * x2);
                }
            }
    return y;
}

static void rot_run_case(const rot_case *k, int nthreads)
{
    onr_node *n = tk_node("RotaryEmbedding");
    if (k->interleaved) tk_attr_int(n, "interleaved", 1);
    if (k->rd_attr) tk_attr_int(n, "rotary_embedding_dim", k->rd_attr);
    if (!k->x4) tk_attr_int(n, "num_heads", k->H);
    int64_t x4d[] = {k->B, k->H, k->S, k->D}, x3d[] = {k->B, k->S, k->H * k->D};
    int64_t c2[] = {k->P, k->C}, c3[] = {k->CB, k->CS, k->C}, pd[] = {k->PB, k->PS};
    onr_tensor *in[4] = {0};
    in[0] = k->x4 ? tk_rand_f32(4, x4d, 31) : tk_rand_f32(3, x3d, 31);
    in[1] = k->pos ? tk_rand_f32(2, c2, 32) : tk_rand_f32(3, c3, 32);
    in[2] = k->pos ? tk_rand_f32(2, c2, 33) : tk_rand_f32(3, c3, 33);
    int nin = 3;
    if (k->pos) {
        int64_t *pv = malloc(sizeof(int64_t) * (size_t)(k->PB * k->PS));
        for (int64_t i = 0; i < k->PB * k->PS; i++) {
            pv[i] = (i * 7 + 3) % k->P;
            if (k->neg && i % 2) pv[i] -= k->P;
        }
        in[3] = tk_i64(2, pd, pv);
        free(pv);
        nin = 4;
    }
    onr_tensor *y = run1(n, nin, in, nthreads);
    tk_assert_shape(y, in[0]->rank, in[0]->dims);
    float *e = ref_rot(k, in[0]->data, in[1]->data, in[2]->data, k->pos ? in[3]->data : NULL);
    tk_assert_close_f32(y, e, y->numel, 1e-5f, 1e-6f);
    free(e);
    onr_tensor_free(y);
    tk_free_all(nin, in);
    tk_node_free(n);
}

static void test_rot_forms(void **state)
{
    (void)state;
    const rot_case cases[] = {
        /* x4 B H S D rd il pos PB PS P C CB CS neg */
        {1, 2, 3, 5, 8, 0, 0, 1, 2, 5, 11, 4, 0, 0, 0},    /* 4-D, position_ids */
        {1, 2, 3, 5, 8, 0, 1, 1, 2, 5, 11, 4, 0, 0, 0},    /* interleaved */
        {1, 2, 3, 5, 10, 6, 0, 1, 2, 5, 11, 3, 0, 0, 0},   /* partial rotation */
        {1, 2, 3, 5, 10, 6, 1, 1, 2, 5, 11, 3, 0, 0, 0},   /* partial, interleaved */
        {1, 2, 3, 5, 8, 0, 0, 1, 1, 5, 11, 4, 0, 0, 1},    /* broadcast batch, negative ids */
        {1, 2, 3, 5, 8, 0, 0, 1, 2, 5, 11, 7, 0, 0, 0},    /* wider caches than rd/2 */
        {0, 2, 3, 5, 8, 0, 0, 1, 2, 5, 11, 4, 0, 0, 0},    /* 3-D with num_heads */
        {0, 2, 3, 5, 6, 4, 1, 1, 2, 5, 9, 2, 0, 0, 0},     /* 3-D, partial, interleaved */
        {1, 2, 3, 5, 8, 0, 0, 0, 0, 0, 0, 4, 2, 5, 0},     /* 3-D caches, no position_ids */
        {1, 2, 3, 5, 8, 0, 1, 0, 0, 0, 0, 4, 1, 5, 0},     /* caches broadcast over batch */
        {0, 3, 2, 7, 4, 0, 0, 0, 0, 0, 0, 2, 3, 7, 0},     /* 3-D X, 3-D caches */
        {1, 2, 8, 65, 64, 0, 0, 1, 2, 65, 80, 32, 0, 0, 0}, /* above the parallel threshold */
        {0, 2, 8, 65, 64, 32, 1, 1, 2, 65, 80, 16, 0, 0, 0},
    };
    for (int th = 1; th <= 2; th++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) rot_run_case(&cases[i], th);
}

static void test_rot_fp16(void **state)
{
    (void)state;
    int64_t xd[] = {1, 2, 3, 4}, cd[] = {3, 2}, pd[] = {1, 3};
    onr_tensor *xf = tk_rand_f32(4, xd, 5), *cf = tk_rand_f32(2, cd, 6), *sf = tk_rand_f32(2, cd, 7);
    uint16_t xh[24], ch[6], sh[6];
    for (int i = 0; i < 24; i++) xh[i] = onr_float_to_half(((float *)xf->data)[i]);
    for (int i = 0; i < 6; i++) {
        ch[i] = onr_float_to_half(((float *)cf->data)[i]);
        sh[i] = onr_float_to_half(((float *)sf->data)[i]);
    }
    const int64_t pv[] = {2, 0, 1};
    onr_node *n = tk_node("RotaryEmbedding");
    onr_tensor *in[] = {tk_typed(ONR_FLOAT16, 4, xd, xh), tk_typed(ONR_FLOAT16, 2, cd, ch),
                        tk_typed(ONR_FLOAT16, 2, cd, sh), tk_i64(2, pd, pv)};
    onr_tensor *y = run1(n, 4, in, 1);
    assert_int_equal(y->dtype, ONR_FLOAT16);
    float x32[24], c32[6], s32[6];
    for (int i = 0; i < 24; i++) x32[i] = onr_half_to_float(xh[i]);
    for (int i = 0; i < 6; i++) {
        c32[i] = onr_half_to_float(ch[i]);
        s32[i] = onr_half_to_float(sh[i]);
    }
    rot_case k = {1, 1, 2, 3, 4, 0, 0, 1, 1, 3, 3, 2, 0, 0, 0};
    float *e = ref_rot(&k, x32, c32, s32, pv);
    for (int i = 0; i < 24; i++) {
        float got = onr_half_to_float(((uint16_t *)y->data)[i]);
        if (fabsf(got - e[i]) > 1e-3f * fabsf(e[i]) + 1e-3f) fail_msg("fp16 [%d]: %g vs %g", i, got, e[i]);
    }
    free(e);
    onr_tensor_free(y);
    tk_free_all(4, in);
    tk_node_free(n);
    onr_tensor_free(xf);
    onr_tensor_free(cf);
    onr_tensor_free(sf);
}

static void test_rot_errors(void **state)
{
    (void)state;
    int64_t x4[] = {1, 2, 3, 4}, x3[] = {1, 3, 8}, c2[] = {5, 2}, c3[] = {1, 3, 2}, pd[] = {1, 3};
    int64_t cbad[] = {2, 3, 2};
    const int64_t pv[] = {0, 1, 2}, pbad[] = {0, 5, 1};
    onr_node *n = tk_node("RotaryEmbedding");
    onr_tensor *a[] = {tk_rand_f32(4, x4, 1), tk_rand_f32(2, c2, 2), tk_rand_f32(2, c2, 3),
                       tk_i64(2, pd, pbad)};
    expect_fail(n, 4, a, "outside");
    tk_free_all(4, a);
    onr_tensor *b[] = {tk_rand_f32(3, x3, 1), tk_rand_f32(2, c2, 2), tk_rand_f32(2, c2, 3),
                       tk_i64(2, pd, pv)};
    expect_fail(n, 4, b, "num_heads");
    tk_free_all(4, b);
    onr_tensor *c[] = {tk_rand_f32(4, x4, 1), tk_rand_f32(3, c3, 2), tk_rand_f32(3, c3, 3),
                       tk_i64(2, pd, pv)};
    expect_fail(n, 4, c, "2-D");
    tk_free_all(4, c);
    onr_tensor *d[] = {tk_rand_f32(4, x4, 1), tk_rand_f32(3, cbad, 2), tk_rand_f32(3, cbad, 3)};
    expect_fail(n, 3, d, "cos_cache");
    tk_free_all(3, d);
    int64_t csmall[] = {5, 1};
    onr_tensor *e[] = {tk_rand_f32(4, x4, 1), tk_rand_f32(2, csmall, 2), tk_rand_f32(2, csmall, 3),
                       tk_i64(2, pd, pv)};
    expect_fail(n, 4, e, "columns");
    tk_free_all(4, e);
    tk_node_free(n);
    n = tk_node("RotaryEmbedding");
    tk_attr_int(n, "rotary_embedding_dim", 3);
    onr_tensor *f[] = {tk_rand_f32(4, x4, 1), tk_rand_f32(2, c2, 2), tk_rand_f32(2, c2, 3),
                       tk_i64(2, pd, pv)};
    expect_fail(n, 4, f, "even");
    tk_node_free(n);
    n = tk_node("RotaryEmbedding");
    tk_attr_int(n, "num_heads", 3);
    f[0] = (onr_tensor_free(f[0]), tk_rand_f32(3, x3, 1));
    expect_fail(n, 4, f, "multiple");
    tk_node_free(n);
    n = tk_node("RotaryEmbedding");
    tk_attr_int(n, "interleaved", 2);
    expect_fail(n, 4, f, "interleaved");
    tk_free_all(4, f);
    tk_node_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rms_hand),
        cmocka_unit_test(test_rms_f32_forms),
        cmocka_unit_test(test_rms_fp16_double),
        cmocka_unit_test(test_rms_errors),
        cmocka_unit_test(test_rot_forms),
        cmocka_unit_test(test_rot_fp16),
        cmocka_unit_test(test_rot_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
