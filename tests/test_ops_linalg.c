/*
 * test_ops_linalg.c - MatMul, Gemm, Conv, ConvTranspose and the pools,
 * each checked against a plain reference loop written here (in double),
 * across shapes (odd sizes, batch, broadcast, groups, depthwise, dilations,
 * strides, asymmetric pads, auto_pad, ceil_mode, 1-D and 3-D), dtypes, and
 * 1 vs 2 threads (which must agree bit for bit); plus the error cases.
 * Weights (MatMul/Gemm B and C, Conv W and bias) run both as activations and
 * as constants that create prepacks (and consumes), at the GEMM kernels'
 * tile edges; one MatMul step is driven through changing activation shapes
 * to show its constant B is packed once, at create, and never again.
 */
#include "kutil.h"
#include "gemm/gemm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

/* A tensor of dt with deterministic values: floats in [-1, 1), integers
 * in [-5, 5] (unsigned: [0, 10]). */
static onr_tensor *make_t(onr_dtype dt, int rank, const int64_t *dims, uint32_t seed)
{
    onr_tensor *r = tk_rand_f32(rank, dims, seed);
    onr_tensor *t = tk_typed(dt, rank, dims, NULL);
    for (int64_t i = 0; i < t->numel; i++) {
        double v = ((const float *)r->data)[i];
        if (ONR_TYPES_UINT & ONR_T(dt)) v = floor((v + 1) * 5);
        else if (ONR_TYPES_SINT & ONR_T(dt)) v = floor(v * 5.5);
        onr_set_f64(t, i, v);
    }
    onr_tensor_free(r);
    return t;
}

static double get(const onr_tensor *t, int64_t i) { return onr_get_f64(t, i); }

/* Run with 1 and with 2 threads, the inputs in const_mask given as
 * constants: both succeed, consume the same inputs and agree bit for bit.
 * The 1-thread outputs stay in out; returns the inputs create consumed. */
static uint32_t run_both_const(onr_node *n, int64_t opset, int n_in, onr_tensor **in,
                               uint32_t const_mask, int n_out, onr_tensor **out)
{
    onr_tensor *o2[4] = {0};
    onr_err err = {0};
    if (tk_run_const(n, opset, n_in, in, const_mask, n_out, out, 1, &err))
        fail_msg("1 thread: %s", err.msg);
    uint32_t consumed = tk_last_consumed;
    if (tk_run_const(n, opset, n_in, in, const_mask, n_out, o2, 2, &err))
        fail_msg("2 threads: %s", err.msg);
    assert_int_equal(tk_last_consumed, consumed);
    assert_int_equal(consumed & ~const_mask, 0); /* only constants are consumed */
    for (int i = 0; i < n_out; i++) {
        assert_int_equal(out[i]->dtype, o2[i]->dtype);
        assert_int_equal(out[i]->numel, o2[i]->numel);
        size_t nb = onr_tensor_nbytes(out[i]);
        if (nb && memcmp(out[i]->data, o2[i]->data, nb) != 0)
            fail_msg("output %d differs between 1 and 2 threads", i);
    }
    tk_free_all(n_out, o2);
    return consumed;
}

/* Run with 1 and with 2 threads: both succeed and agree bit for bit. The
 * 1-thread outputs stay in out. */
static void run_both(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int n_out,
                     onr_tensor **out)
{
    run_both_const(n, opset, n_in, in, 0, n_out, out);
}

static void expect_close(const onr_tensor *t, const double *ref, int64_t n, double rtol,
                         double atol)
{
    assert_int_equal(t->numel, n);
    for (int64_t i = 0; i < n; i++) {
        double g = get(t, i), e = ref[i];
        if ((isnan(e) && isnan(g)) || g == e) continue;
        if (!(fabs(g - e) <= atol + rtol * fabs(e)))
            fail_msg("element %lld: got %.9g, expected %.9g", (long long)i, g, e);
    }
}

static double tol_for(onr_dtype dt)
{
    switch (dt) {
    case ONR_FLOAT: return 1e-4;
    case ONR_DOUBLE: return 1e-10;
    case ONR_FLOAT16: return 4e-3;
    case ONR_BFLOAT16: return 3e-2;
    default: return 0;
    }
}

/* The op fails with status st and a message containing `what`. */
static void expect_error(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int n_out,
                         onr_status st, const char *what)
{
    onr_tensor *out[4] = {0};
    onr_err err = {0};
    onr_status got = tk_run(n, opset, n_in, in, n_out, out, 1, &err);
    if (got != st) fail_msg("expected status %d, got %d (%s)", st, got, err.msg);
    if (what && !strstr(err.msg, what)) fail_msg("message '%s' lacks '%s'", err.msg, what);
    tk_free_all(n_out, out);
}

static int64_t numel(const int64_t *d, int n)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++) p *= d[i];
    return p;
}

/* ======================================================================
 * MatMul
 * ==================================================================== */

/* numpy matmul in double, written independently of the kernel. */
static double *ref_matmul(const onr_tensor *a, const onr_tensor *b, int *orank, int64_t *odims)
{
    int64_t ad[8], bd[8];
    int ar = a->rank, br = b->rank;
    memcpy(ad, a->dims, sizeof(int64_t) * (size_t)ar);
    memcpy(bd, b->dims, sizeof(int64_t) * (size_t)br);
    if (ar == 1) ad[1] = ad[0], ad[0] = 1, ar = 2;
    if (br == 1) bd[1] = 1, br = 2;
    int64_t M = ad[ar - 2], K = ad[ar - 1], N = bd[br - 1];
    int nb = (ar > br ? ar : br) - 2;
    int64_t bdims[8], ab[8], bb[8];
    for (int i = 0; i < nb; i++) {
        int ia = i - (nb - (ar - 2)), ib = i - (nb - (br - 2));
        ab[i] = ia >= 0 ? ad[ia] : 1;
        bb[i] = ib >= 0 ? bd[ib] : 1;
        bdims[i] = ab[i] > bb[i] ? ab[i] : bb[i];
        if (ab[i] == 0 || bb[i] == 0) bdims[i] = 0;
    }
    int64_t batch = numel(bdims, nb);
    double *y = calloc((size_t)(batch * M * N) + 1, sizeof(double));
    for (int64_t p = 0; p < batch; p++) {
        int64_t rem = p, oa = 0, ob = 0, sa = 1, sb = 1;
        for (int i = nb - 1; i >= 0; i--) {
            int64_t idx = rem % bdims[i];
            rem /= bdims[i];
            oa += (ab[i] == 1 ? 0 : idx) * sa;
            ob += (bb[i] == 1 ? 0 : idx) * sb;
            sa *= ab[i];
            sb *= bb[i];
        }
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += get(a, oa * M * K + i * K + k) * get(b, ob * K * N + k * N + j);
                y[(p * M + i) * N + j] = s;
            }
    }
    *orank = 0;
    for (int i = 0; i < nb; i++) odims[(*orank)++] = bdims[i];
    if (a->rank > 1) odims[(*orank)++] = M;
    if (b->rank > 1) odims[(*orank)++] = N;
    return y;
}

static const struct {
    int ar;
    int64_t ad[4];
    int br;
    int64_t bd[4];
} mm_cases[] = {
    {2, {3, 5}, 2, {5, 4}},
    {1, {7}, 1, {7}},
    {1, {7}, 2, {7, 3}},
    {2, {4, 7}, 1, {7}},
    {3, {2, 3, 7}, 1, {7}},
    {1, {5}, 3, {2, 5, 3}},
    {3, {2, 3, 5}, 2, {5, 4}},            /* batch folded into M */
    {4, {2, 1, 3, 5}, 3, {4, 5, 2}},      /* both broadcast: one GEMM per matrix */
    {2, {3, 5}, 3, {2, 5, 4}},            /* A broadcast: stride 0 */
    {3, {2, 3, 5}, 3, {2, 5, 4}},         /* strided batch */
    {3, {1, 17, 33}, 3, {3, 33, 19}},
    {4, {2, 3, 9, 1}, 4, {2, 1, 1, 11}},  /* K = 1 */
    {2, {3, 0}, 2, {0, 4}},               /* K = 0: zeros */
    {3, {0, 3, 5}, 2, {5, 4}},            /* empty batch */
    {2, {65, 97}, 2, {97, 81}},           /* above the threading threshold */
    {3, {4, 33, 40}, 3, {4, 40, 35}},
};

/* The inputs create should consume: B (bit 1) when constant and
 * packed (2-D) or widened (16-bit); a float32 B of another rank is used in
 * place. */
static uint32_t mm_expect_consumed(onr_dtype dt, int brank, uint32_t mask)
{
    int f = dt == ONR_FLOAT || dt == ONR_FLOAT16 || dt == ONR_BFLOAT16;
    return (mask & 2u) && f && (brank == 2 || dt != ONR_FLOAT) ? 2u : 0u;
}

/* A [ad] x B [bd] with the inputs in mask constant, against ref_matmul. */
static void matmul_dims(int ar, const int64_t *ad, int br, const int64_t *bd, onr_dtype dt,
                        int64_t opset, uint32_t mask, uint32_t seed)
{
    onr_tensor *in[2] = {make_t(dt, ar, ad, 10 + seed), make_t(dt, br, bd, 50 + seed)};
    onr_tensor *out[1] = {0};
    onr_node *n = tk_node("MatMul");
    uint32_t consumed = run_both_const(n, opset, 2, in, mask, 1, out);
    assert_int_equal(consumed, mm_expect_consumed(dt, br, mask));
    int orank;
    int64_t odims[8];
    double *ref = ref_matmul(in[0], in[1], &orank, odims);
    tk_assert_shape(out[0], orank, odims);
    assert_int_equal(out[0]->dtype, dt);
    double k = (double)ad[ar - 1];
    expect_close(out[0], ref, numel(odims, orank), tol_for(dt), tol_for(dt) * (1 + sqrt(k)));
    free(ref);
    tk_free_all(1, out);
    tk_free_all(2, in);
    tk_node_free(n);
}

static void matmul_case_const(int c, onr_dtype dt, int64_t opset, uint32_t mask)
{
    matmul_dims(mm_cases[c].ar, mm_cases[c].ad, mm_cases[c].br, mm_cases[c].bd, dt, opset, mask,
                (uint32_t)c);
}

static void matmul_case(int c, onr_dtype dt, int64_t opset)
{
    matmul_case_const(c, dt, opset, 0);
}

static void test_matmul_f32(void **state)
{
    (void)state;
    for (int c = 0; c < (int)(sizeof mm_cases / sizeof mm_cases[0]); c++) {
        matmul_case(c, ONR_FLOAT, 13);
        matmul_case(c, ONR_FLOAT, 1);
    }
}

static void test_matmul_types(void **state)
{
    (void)state;
    static const onr_dtype types[] = {ONR_DOUBLE, ONR_INT32, ONR_INT64, ONR_UINT32, ONR_UINT64,
                                      ONR_FLOAT16, ONR_BFLOAT16};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (int c = 0; c < (int)(sizeof mm_cases / sizeof mm_cases[0]); c++)
            matmul_case(c, types[t], 13);
}

static void test_matmul_int_wraps(void **state)
{
    (void)state;
    int64_t d[2] = {1, 2}, e[2] = {2, 1};
    int32_t av[2] = {INT32_MAX, 2}, bv[2] = {2, 1};
    onr_tensor *in[2] = {tk_i32(2, d, av), tk_i32(2, e, bv)};
    onr_tensor *out[1];
    onr_node *n = tk_node("MatMul");
    run_both(n, 13, 2, in, 1, out);
    /* 2*(2^31-1) + 2 = 2^32 wraps to 0 in int32 */
    assert_int_equal(((int32_t *)out[0]->data)[0], 0);
    tk_free_all(1, out);
    tk_free_all(2, in);
    tk_node_free(n);
}

static void test_matmul_errors(void **state)
{
    (void)state;
    onr_node *n = tk_node("MatMul");
    int64_t a[2] = {3, 4}, b[2] = {5, 2}, a3[3] = {2, 3, 4}, b3[3] = {3, 4, 2};
    onr_tensor *in[2] = {tk_rand_f32(2, a, 1), tk_rand_f32(2, b, 2)};
    expect_error(n, 13, 2, in, 1, ONR_E_MODEL, "inner dims");
    tk_free_all(2, in);
    in[0] = tk_rand_f32(3, a3, 1);
    in[1] = tk_rand_f32(3, b3, 2);
    expect_error(n, 13, 2, in, 1, ONR_E_MODEL, "cannot be broadcast");
    tk_free_all(2, in);
    in[0] = tk_rand_f32(0, NULL, 1);
    in[1] = tk_rand_f32(2, b, 2);
    expect_error(n, 13, 2, in, 1, ONR_E_MODEL, "rank >= 1");
    tk_free_all(2, in);
    in[0] = make_t(ONR_DOUBLE, 2, a, 1);
    in[1] = tk_rand_f32(2, b, 2);
    expect_error(n, 13, 2, in, 1, ONR_E_MODEL, "input 1");
    tk_free_all(2, in);
    /* integers only from opset 9 */
    in[0] = make_t(ONR_INT32, 2, a, 1);
    in[1] = make_t(ONR_INT32, 2, b, 2);
    expect_error(n, 8, 2, in, 1, ONR_E_UNSUPPORTED, "int32");
    expect_error(n, 13, 1, in, 1, ONR_E_MODEL, "2 inputs");
    tk_free_all(2, in);
    tk_node_free(n);
}

/* ======================================================================
 * Gemm
 * ==================================================================== */

typedef struct gemm_spec {
    int64_t M, N, K;
    int ta, tb;
    float alpha, beta;
    int crank; /* -1: no C */
    int64_t cd[2];
} gemm_spec;

static const gemm_spec gemm_cases[] = {
    {3, 4, 5, 0, 0, 1.f, 1.f, -1, {0}},
    {3, 4, 5, 1, 0, 1.f, 1.f, 2, {3, 4}},
    {3, 4, 5, 0, 1, 0.5f, 2.f, 1, {4}},
    {3, 4, 5, 1, 1, 0.25f, 0.35f, 2, {1, 4}},
    {7, 5, 3, 0, 0, 1.f, -1.f, 2, {7, 1}},
    {7, 5, 3, 0, 1, 2.f, 3.f, 0, {0}},
    {7, 5, 3, 1, 0, 1.f, 1.f, 2, {1, 1}},
    {7, 5, 3, 0, 0, 1.f, 1.f, 1, {1}},
    {6, 1, 4, 0, 0, 1.f, 1.f, 2, {6, 1}},
    {1, 6, 4, 0, 0, 1.f, 2.f, 2, {1, 6}},
    {4, 4, 4, 0, 0, 1.f, 0.f, 2, {4, 4}},
    {70, 65, 33, 0, 1, 1.f, 1.f, 1, {65}},
    {33, 70, 65, 1, 1, 1.5f, 0.5f, 2, {33, 70}},
    {3, 4, 0, 0, 0, 1.f, 1.f, 1, {4}}, /* K = 0: just beta * C */
};

static double *ref_gemm(const gemm_spec *gs, const onr_tensor *a, const onr_tensor *b,
                        const onr_tensor *cc)
{
    int64_t M = gs->M, N = gs->N, K = gs->K;
    int ta = gs->ta, tb = gs->tb;
    double *y = calloc((size_t)(M * N) + 1, sizeof(double));
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += get(a, ta ? k * M + i : i * K + k) * get(b, tb ? j * K + k : k * N + j);
            s *= gs->alpha;
            if (cc) {
                int64_t c0 = cc->rank == 2 ? cc->dims[0] : 1;
                int64_t c1 = cc->rank >= 1 ? cc->dims[cc->rank - 1] : 1;
                s += gs->beta * get(cc, (c0 == 1 ? 0 : i) * c1 + (c1 == 1 ? 0 : j));
            }
            y[i * N + j] = s;
        }
    return y;
}

/* The inputs create should consume: B (bit 1) and C (bit 2) when constant
 * and float32/16-bit (B packed, C kept as float32 times beta). */
static uint32_t gemm_expect_consumed(onr_dtype dt, int has_c, uint32_t mask)
{
    int f = dt == ONR_FLOAT || dt == ONR_FLOAT16 || dt == ONR_BFLOAT16;
    return f ? mask & (2u | (has_c ? 4u : 0u)) : 0u;
}

/* One Gemm of spec gs with the inputs in mask constant, against ref_gemm. */
static void gemm_run_spec(const gemm_spec *gs, onr_dtype dt, int64_t opset, uint32_t mask,
                          uint32_t seed)
{
    int64_t M = gs->M, N = gs->N, K = gs->K;
    int64_t ad[2] = {gs->ta ? K : M, gs->ta ? M : K};
    int64_t bd[2] = {gs->tb ? N : K, gs->tb ? K : N};
    int has_c = gs->crank >= 0;
    onr_tensor *in[3] = {make_t(dt, 2, ad, 100 + seed), make_t(dt, 2, bd, 200 + seed),
                         has_c ? make_t(dt, gs->crank, gs->cd, 300 + seed) : NULL};
    onr_node *n = tk_node("Gemm");
    if (gs->ta) tk_attr_int(n, "transA", 1);
    if (gs->tb) tk_attr_int(n, "transB", 1);
    if (gs->alpha != 1.f) tk_attr_float(n, "alpha", gs->alpha);
    if (gs->beta != 1.f) tk_attr_float(n, "beta", gs->beta);
    if (opset < 7) tk_attr_int(n, "broadcast", 1);
    onr_tensor *out[1];
    uint32_t consumed = run_both_const(n, opset, has_c ? 3 : 2, in, mask, 1, out);
    assert_int_equal(consumed, gemm_expect_consumed(dt, has_c, mask));
    int64_t od[2] = {M, N};
    tk_assert_shape(out[0], 2, od);
    double *ref = ref_gemm(gs, in[0], in[1], in[2]);
    expect_close(out[0], ref, M * N, tol_for(dt), tol_for(dt) * (2 + sqrt((double)K)));
    free(ref);
    tk_free_all(1, out);
    tk_free_all(3, in);
    tk_node_free(n);
}

static void gemm_case(int c, onr_dtype dt, int64_t opset)
{
    gemm_run_spec(&gemm_cases[c], dt, opset, 0, (uint32_t)c);
}

static void test_gemm_f32(void **state)
{
    (void)state;
    for (int c = 0; c < (int)(sizeof gemm_cases / sizeof gemm_cases[0]); c++) {
        gemm_case(c, ONR_FLOAT, 13);
        if (gemm_cases[c].crank >= 0) {
            gemm_case(c, ONR_FLOAT, 7);
            gemm_case(c, ONR_FLOAT, 6);
        }
    }
}

static void test_gemm_types(void **state)
{
    (void)state;
    static const onr_dtype types[] = {ONR_DOUBLE, ONR_FLOAT16, ONR_BFLOAT16};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (int c = 0; c < (int)(sizeof gemm_cases / sizeof gemm_cases[0]); c++)
            gemm_case(c, types[t], 13);
    /* integers need integral alpha and beta */
    static const onr_dtype itypes[] = {ONR_INT32, ONR_INT64, ONR_UINT32, ONR_UINT64};
    static const int icases[] = {0, 1, 6, 7, 8};
    for (size_t t = 0; t < sizeof itypes / sizeof itypes[0]; t++)
        for (size_t c = 0; c < sizeof icases / sizeof icases[0]; c++) gemm_case(icases[c], itypes[t], 13);
}

static void test_gemm_errors(void **state)
{
    (void)state;
    int64_t a[2] = {3, 4}, b[2] = {4, 5}, bad[2] = {5, 5}, cbad[1] = {3}, a3[3] = {1, 3, 4};
    onr_node *n = tk_node("Gemm");
    onr_tensor *in[3] = {tk_rand_f32(2, a, 1), tk_rand_f32(2, bad, 2), NULL};
    expect_error(n, 13, 2, in, 1, ONR_E_MODEL, "inner dims");
    onr_tensor_free(in[1]);
    in[1] = tk_rand_f32(2, b, 2);
    in[2] = tk_rand_f32(1, cbad, 3);
    expect_error(n, 13, 3, in, 1, ONR_E_MODEL, "does not broadcast");
    expect_error(n, 7, 2, in, 1, ONR_E_MODEL, "3");  /* C required before 11 */
    onr_tensor_free(in[2]);
    int64_t cn[1] = {5};
    in[2] = tk_rand_f32(1, cn, 3);
    /* opsets 1-6 without broadcast=1 need C of exactly [M, N] */
    expect_error(n, 6, 3, in, 1, ONR_E_MODEL, "does not broadcast");
    onr_tensor_free(in[0]);
    in[0] = tk_rand_f32(3, a3, 1);
    expect_error(n, 13, 3, in, 1, ONR_E_MODEL, "2-D");
    tk_free_all(3, in);
    tk_node_free(n);
    n = tk_node("Gemm");
    tk_attr_float(n, "alpha", 0.5f);
    in[0] = make_t(ONR_INT32, 2, a, 1);
    in[1] = make_t(ONR_INT32, 2, b, 2);
    expect_error(n, 13, 2, in, 1, ONR_E_UNSUPPORTED, "integral");
    tk_free_all(2, in);
    tk_node_free(n);
}

/* ======================================================================
 * Constant weights: prepacked at create, at the GEMM kernels' tile edges
 * ==================================================================== */

/* The SGEMM paths, forced in turn by the tile-edge sweeps (those this CPU
 * lacks are skipped). */
static const char *const gemm_isas[] = {"ref", "avx2", "avx512"};

/* Sizes around the active kernel's tiles: 1 and MR +- 1 rows, NR +- 1
 * columns, K across a K block. */
static void tile_sizes(int64_t *ms, int64_t *ns, int64_t *ks)
{
    onr_sgemm_blocking bl;
    onr_sgemm_get_blocking(&bl);
    int64_t mr = (int64_t)bl.mr, nr = (int64_t)bl.nr, kc = (int64_t)bl.kc;
    ms[0] = 1, ms[1] = mr, ms[2] = mr + 1, ms[3] = 2 * mr + 1;
    ns[0] = nr - 1, ns[1] = nr, ns[2] = nr + 1, ns[3] = 2 * nr + 1;
    ks[0] = 1, ks[1] = 17, ks[2] = kc + 1;
}

static void test_matmul_const(void **state)
{
    (void)state;
    static const onr_dtype types[] = {ONR_FLOAT, ONR_FLOAT16, ONR_BFLOAT16};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (int c = 0; c < (int)(sizeof mm_cases / sizeof mm_cases[0]); c++)
            matmul_case_const(c, types[t], 13, 2);
    /* double and integers read B in place: nothing consumed */
    matmul_case_const(0, ONR_DOUBLE, 13, 2);
    matmul_case_const(0, ONR_INT32, 13, 2);
}

static void test_matmul_const_tile_edges(void **state)
{
    (void)state;
    static const onr_dtype types[] = {ONR_FLOAT, ONR_FLOAT16};
    for (size_t isa = 0; isa < sizeof gemm_isas / sizeof gemm_isas[0]; isa++) {
        if (onr_sgemm_force_kernel(gemm_isas[isa]) != 0) continue;
        int64_t ms[4], ns[4], ks[3];
        tile_sizes(ms, ns, ks);
        uint32_t seed = 0;
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                for (int k = 0; k < 3; k++, seed++)
                    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
                        for (uint32_t mask = 0; mask <= 2; mask += 2) {
                            /* odd rows: a batch of 2 folded into M */
                            int64_t ad[3] = {2, ms[i], ks[k]}, bd[2] = {ks[k], ns[j]};
                            int ar = ms[i] % 2 ? 3 : 2;
                            matmul_dims(ar, ar == 3 ? ad : ad + 1, 2, bd, types[t], 13, mask,
                                        seed);
                        }
    }
    onr_sgemm_force_kernel(NULL);
}

static void test_gemm_const(void **state)
{
    (void)state;
    static const onr_dtype types[] = {ONR_FLOAT, ONR_FLOAT16, ONR_BFLOAT16};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (int c = 0; c < (int)(sizeof gemm_cases / sizeof gemm_cases[0]); c++)
            for (uint32_t mask = 2; mask <= 6; mask += 2) {
                gemm_run_spec(&gemm_cases[c], types[t], 13, mask, (uint32_t)c);
                if (types[t] == ONR_FLOAT && gemm_cases[c].crank >= 0) {
                    gemm_run_spec(&gemm_cases[c], ONR_FLOAT, 7, mask, (uint32_t)c);
                    gemm_run_spec(&gemm_cases[c], ONR_FLOAT, 6, mask, (uint32_t)c);
                }
            }
    gemm_run_spec(&gemm_cases[1], ONR_DOUBLE, 13, 6, 1);
    gemm_run_spec(&gemm_cases[1], ONR_INT64, 13, 6, 1);
}

/* Every transA/transB combination at tile edges, C rotating through none,
 * scalar, [N], [M,1] and [M,N], with B and C constant and not. */
static void test_gemm_const_tile_edges(void **state)
{
    (void)state;
    static const onr_dtype types[] = {ONR_FLOAT, ONR_FLOAT16};
    for (size_t isa = 0; isa < sizeof gemm_isas / sizeof gemm_isas[0]; isa++) {
        if (onr_sgemm_force_kernel(gemm_isas[isa]) != 0) continue;
        int64_t ms[4], ns[4], ks[3];
        tile_sizes(ms, ns, ks);
        uint32_t seed = 0;
        for (int tr = 0; tr < 4; tr++)
            for (int i = 0; i < 4; i += 1)
                for (int j = 0; j < 4; j += 2)
                    for (int k = 0; k < 3; k += 2, seed++)
                        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
                            for (uint32_t mask = 0; mask <= 6; mask += 6) {
                                gemm_spec gs = {ms[i], ns[j] + (j == 2), ks[k], tr & 1, tr >> 1,
                                                1.5f, 0.5f, -1, {0, 0}};
                                switch (seed % 5) {
                                case 1: gs.crank = 0; break;
                                case 2: gs.crank = 1, gs.cd[0] = gs.N; break;
                                case 3: gs.crank = 2, gs.cd[0] = gs.M, gs.cd[1] = 1; break;
                                case 4: gs.crank = 2, gs.cd[0] = gs.M, gs.cd[1] = gs.N; break;
                                default: break;
                                }
                                gemm_run_spec(&gs, types[t], 13, mask, seed);
                            }
    }
    onr_sgemm_force_kernel(NULL);
}

/* One MatMul step with a constant B, driven the way the executor drives a
 * plan with a symbolic sequence length: create once, then reshape and run
 * for activations [1,4,K], [1,5,K], [1,6,K], [1,5,K]. B is packed once, at
 * create; no shape change packs it again, and run never reads the original
 * (the step sees a shape-only stand-in for it, as after the planner frees
 * it). */
static void matmul_step_no_repack(onr_dtype dt, int nthreads)
{
    int64_t K = 37, N = 45, bd[2] = {K, N};
    static const int64_t seq[] = {4, 5, 6, 5, 5};
    onr_err err = {0};
    onr_node *n = tk_node("MatMul");
    n->opset = 13;
    n->n_in = 2;
    n->n_out = 1;
    const onr_op *op = onr_op_find("", "MatMul", 13);
    assert_non_null(op);
    onr_tensor *b = make_t(dt, 2, bd, 91);
    onr_tensor *y = calloc(1, sizeof *y);
    assert_non_null(y);
    onr_step s;
    assert_int_equal(onr_step_init(&s, n, op, 2, 1, &err), ONR_OK);
    s.in[1] = b;
    s.in_const[1] = 1;
    s.out[0] = y;
    size_t before = onr_sgemm_pack_count();
    if (onr_step_create(&s, nthreads, &err)) fail_msg("create: %s", err.msg);
    size_t packs = onr_sgemm_pack_count();
    assert_int_equal(packs, before + 1);
    assert_int_equal(s.consumed, 2);
    onr_tensor meta = *b;
    meta.data = NULL;
    meta.owns = 0;
    s.in[1] = &meta;
    for (size_t r = 0; r < sizeof seq / sizeof seq[0]; r++) {
        int64_t ad[3] = {1, seq[r], K}, yd[3] = {1, seq[r], N};
        onr_tensor *a = make_t(dt, 3, ad, 92 + (uint32_t)r);
        s.in[0] = a;
        int changed = -1;
        if (onr_step_reshape(&s, nthreads, &changed, &err)) fail_msg("reshape: %s", err.msg);
        assert_int_equal(changed, r == 0 || seq[r] != seq[r - 1]);
        tk_assert_shape(y, 3, yd);
        assert_int_equal(onr_tensor_alloc(y, &err), ONR_OK);
        void *scratch = NULL;
        size_t bytes = (s.scratch + 63) & ~(size_t)63;
        if (bytes) assert_int_equal(posix_memalign(&scratch, 64, bytes), 0);
        if (onr_step_run(&s, scratch, nthreads, &err)) fail_msg("run: %s", err.msg);
        free(scratch);
        int orank;
        int64_t odims[8];
        double *ref = ref_matmul(a, b, &orank, odims);
        expect_close(y, ref, seq[r] * N, tol_for(dt), tol_for(dt) * (1 + sqrt((double)K)));
        free(ref);
        onr_tensor_free(a);
        assert_int_equal(onr_sgemm_pack_count(), packs);
    }
    onr_step_destroy(&s);
    onr_tensor_free(y);
    onr_tensor_free(b);
    tk_node_free(n);
}

static void test_matmul_step_no_repack(void **state)
{
    (void)state;
    matmul_step_no_repack(ONR_FLOAT, 1);
    matmul_step_no_repack(ONR_FLOAT, 2);
    matmul_step_no_repack(ONR_FLOAT16, 2);
    matmul_step_no_repack(ONR_BFLOAT16, 1);
}

/* ======================================================================
 * Sliding-window geometry of the references (3 padded dims)
 * ==================================================================== */

typedef struct geo {
    int nsp;
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
} geo;

/* Fill the padded geometry; auto_pad may be NULL; out by the spec formula
 * (ceil with the drop rule for pools). */
static void geo_init(geo *g, int nsp, const int64_t *in, const int64_t *k, const int64_t *s,
                     const int64_t *d, const int64_t *pads, const char *auto_pad, int ceil_mode)
{
    g->nsp = nsp;
    for (int j = 0; j < 3; j++) {
        int i = j - (3 - nsp);
        g->in[j] = i >= 0 ? in[i] : 1;
        g->k[j] = i >= 0 ? k[i] : 1;
        g->s[j] = i >= 0 && s ? s[i] : 1;
        g->d[j] = i >= 0 && d ? d[i] : 1;
        g->pb[j] = i >= 0 && pads ? pads[i] : 0;
        g->pe[j] = i >= 0 && pads ? pads[nsp + i] : 0;
        int64_t dk = (g->k[j] - 1) * g->d[j] + 1;
        if (auto_pad && strncmp(auto_pad, "SAME", 4) == 0) {
            g->out[j] = (g->in[j] + g->s[j] - 1) / g->s[j];
            int64_t total = (g->out[j] - 1) * g->s[j] + dk - g->in[j];
            if (total < 0) total = 0;
            g->pb[j] = strcmp(auto_pad, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
            g->pe[j] = total - g->pb[j];
            continue;
        }
        if (auto_pad && strcmp(auto_pad, "VALID") == 0) g->pb[j] = g->pe[j] = 0;
        double q = (double)(g->in[j] + g->pb[j] + g->pe[j] - dk) / (double)g->s[j];
        g->out[j] = (int64_t)(ceil_mode ? ceil(q) : floor(q)) + 1;
        if (ceil_mode && (g->out[j] - 1) * g->s[j] >= g->in[j] + g->pb[j]) g->out[j]--;
    }
}

static int64_t g_numel(const int64_t v[3]) { return v[0] * v[1] * v[2]; }

static void set_window_attrs(onr_node *n, int nsp, const int64_t *s, const int64_t *d,
                             const int64_t *pads, const char *auto_pad)
{
    if (s) tk_attr_ints(n, "strides", nsp, s);
    if (d) tk_attr_ints(n, "dilations", nsp, d);
    if (auto_pad) tk_attr_string(n, "auto_pad", auto_pad);
    else if (pads) tk_attr_ints(n, "pads", 2 * nsp, pads);
}

/* ======================================================================
 * Conv
 * ==================================================================== */

typedef struct conv_case {
    int nsp;
    int64_t N, C, M, G;
    int64_t in[3], k[3];
    const int64_t *s, *d, *pads;
    const char *auto_pad;
    int bias;
} conv_case;

static const int64_t S1[3] = {1, 1, 1}, S2[3] = {2, 2, 2}, S21[3] = {2, 1, 3}, D2[3] = {2, 2, 2},
                     D12[3] = {1, 2, 3}, P1[6] = {1, 1, 1, 1, 1, 1}, PA[6] = {0, 1, 2, 2, 0, 1},
                     P0[6] = {0};

static const conv_case conv_cases[] = {
    {2, 1, 3, 4, 1, {7, 9}, {3, 3}, NULL, NULL, P1, NULL, 1},       /* im2col, pad 1 */
    {2, 2, 6, 4, 2, {5, 6}, {1, 1}, NULL, NULL, NULL, NULL, 1},     /* 1x1: direct GEMM */
    {2, 2, 5, 7, 1, {5, 6}, {1, 1}, S2, NULL, NULL, NULL, 0},       /* 1x1 stride 2 */
    {2, 1, 4, 6, 1, {11, 10}, {3, 2}, S21, D2, PA, NULL, 1},        /* strides, dilations, asym pads */
    {2, 2, 6, 4, 2, {8, 7}, {3, 3}, S2, NULL, PA, NULL, 1},         /* groups */
    {2, 2, 8, 8, 8, {9, 9}, {3, 3}, S1, NULL, P1, NULL, 1},         /* depthwise */
    {2, 1, 4, 8, 4, {9, 8}, {3, 3}, S2, D12, PA, NULL, 0},          /* depthwise, multiplier 2 */
    {2, 1, 3, 5, 1, {7, 8}, {3, 3}, S2, NULL, NULL, "SAME_UPPER", 1},
    {2, 1, 3, 5, 1, {7, 8}, {4, 3}, S21, NULL, NULL, "SAME_LOWER", 1},
    {2, 1, 3, 5, 1, {7, 8}, {3, 3}, S2, D2, NULL, "VALID", 0},
    {1, 2, 3, 5, 1, {13}, {4}, S2, D2, PA, NULL, 1},                 /* 1-D */
    {1, 1, 4, 4, 4, {13}, {3}, S1, NULL, P1, NULL, 1},               /* 1-D depthwise */
    {3, 1, 2, 3, 1, {5, 6, 7}, {2, 3, 2}, S21, D12, PA, NULL, 1},    /* 3-D */
    {3, 2, 4, 4, 2, {4, 5, 6}, {3, 3, 3}, S1, NULL, P1, "SAME_UPPER", 0},
    {2, 1, 64, 8, 1, {64, 64}, {3, 3}, S1, NULL, P1, NULL, 1},     /* several im2col bands */
    /* im2col gathered on 2 threads: stride 2, an odd row width */
    {2, 1, 32, 6, 1, {30, 30}, {3, 3}, S2, NULL, P1, NULL, 1},
    {2, 1, 16, 5, 1, {20, 21}, {3, 3}, S1, NULL, P1, NULL, 0},
    {2, 2, 3, 2, 1, {1, 1}, {1, 1}, S1, NULL, P1, NULL, 1},         /* input smaller than pads */
    {2, 0, 3, 2, 1, {4, 4}, {3, 3}, S1, NULL, NULL, NULL, 1},       /* empty batch */
    {2, 1, 0, 3, 1, {4, 4}, {3, 3}, S1, NULL, NULL, NULL, 1},       /* no input channels: bias */
    {2, 1, 2, 3, 1, {4, 4}, {4, 4}, S1, NULL, P0, NULL, 1},         /* kernel = input */
};

static double *ref_conv(const conv_case *cc, const geo *g, const onr_tensor *x,
                        const onr_tensor *w, const onr_tensor *b)
{
    int64_t IN = g_numel(g->in), OUT = g_numel(g->out), K = g_numel(g->k);
    int64_t Cg = cc->C / cc->G, Mg = cc->M / cc->G;
    double *y = calloc((size_t)(cc->N * cc->M * OUT) + 1, sizeof(double));
    for (int64_t n = 0; n < cc->N; n++)
        for (int64_t m = 0; m < cc->M; m++)
            for (int64_t o = 0; o < OUT; o++) {
                int64_t oo[3] = {o / (g->out[1] * g->out[2]), o / g->out[2] % g->out[1],
                                 o % g->out[2]};
                double s = b ? get(b, m) : 0;
                for (int64_t c = 0; c < Cg; c++)
                    for (int64_t kk = 0; kk < K; kk++) {
                        int64_t ko[3] = {kk / (g->k[1] * g->k[2]), kk / g->k[2] % g->k[1],
                                         kk % g->k[2]};
                        int64_t pos[3], ok = 1;
                        for (int j = 0; j < 3; j++) {
                            pos[j] = oo[j] * g->s[j] - g->pb[j] + ko[j] * g->d[j];
                            ok &= pos[j] >= 0 && pos[j] < g->in[j];
                        }
                        if (!ok) continue;
                        int64_t ci = m / Mg * Cg + c;
                        s += get(x, (n * cc->C + ci) * IN + (pos[0] * g->in[1] + pos[1]) * g->in[2] +
                                        pos[2]) *
                             get(w, (m * Cg + c) * K + kk);
                    }
                y[(n * cc->M + m) * OUT + o] = s;
            }
    return y;
}

/* The inputs Conv/ConvTranspose create should consume: a constant 16-bit W
 * (bit 1) and bias (bit 2) are widened to float32 once; float32 and double
 * ones are used in place (W is the GEMMs' A operand, not prepacked). */
static uint32_t conv_expect_consumed(onr_dtype dt, int bias, uint32_t mask)
{
    int half = dt == ONR_FLOAT16 || dt == ONR_BFLOAT16;
    return half ? mask & (2u | (bias ? 4u : 0u)) : 0u;
}

static void conv_run_case_const(const conv_case *cc, onr_dtype dt, int64_t opset,
                                int kernel_attr, uint32_t mask)
{
    int nsp = cc->nsp;
    int64_t xd[5] = {cc->N, cc->C}, wd[5] = {cc->M, cc->C / cc->G}, bd[1] = {cc->M};
    for (int i = 0; i < nsp; i++) xd[2 + i] = cc->in[i], wd[2 + i] = cc->k[i];
    onr_tensor *in[3] = {make_t(dt, 2 + nsp, xd, 7), make_t(dt, 2 + nsp, wd, 8),
                         cc->bias ? make_t(dt, 1, bd, 9) : NULL};
    onr_node *n = tk_node("Conv");
    if (cc->G != 1) tk_attr_int(n, "group", cc->G);
    if (kernel_attr) tk_attr_ints(n, "kernel_shape", nsp, cc->k);
    set_window_attrs(n, nsp, cc->s, cc->d, cc->pads, cc->auto_pad);
    onr_tensor *out[1];
    uint32_t consumed = run_both_const(n, opset, cc->bias ? 3 : 2, in, mask, 1, out);
    assert_int_equal(consumed, conv_expect_consumed(dt, cc->bias, mask));
    geo g;
    geo_init(&g, nsp, cc->in, cc->k, cc->s, cc->d, cc->pads, cc->auto_pad, 0);
    int64_t yd[5] = {cc->N, cc->M};
    for (int i = 0; i < nsp; i++) yd[2 + i] = g.out[3 - nsp + i];
    tk_assert_shape(out[0], 2 + nsp, yd);
    double *ref = ref_conv(cc, &g, in[0], in[1], in[2]);
    double depth = (double)(cc->C / cc->G * g_numel(g.k));
    expect_close(out[0], ref, numel(yd, 2 + nsp), tol_for(dt), tol_for(dt) * (2 + sqrt(depth)));
    free(ref);
    tk_free_all(1, out);
    tk_free_all(3, in);
    tk_node_free(n);
}

static void conv_run_case(const conv_case *cc, onr_dtype dt, int64_t opset, int kernel_attr)
{
    conv_run_case_const(cc, dt, opset, kernel_attr, 0);
}

static void test_conv_f32(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof conv_cases / sizeof conv_cases[0]; c++) {
        conv_run_case(&conv_cases[c], ONR_FLOAT, 11, (int)(c & 1));
        conv_run_case(&conv_cases[c], ONR_FLOAT, 1, 0);
    }
}

static void test_conv_types(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof conv_cases / sizeof conv_cases[0]; c++) {
        if (conv_cases[c].C == 64) continue; /* the big one is float32's */
        conv_run_case(&conv_cases[c], ONR_DOUBLE, 11, 0);
        conv_run_case(&conv_cases[c], ONR_FLOAT16, 11, 0);
        conv_run_case(&conv_cases[c], ONR_BFLOAT16, 22, 0);
    }
}

/* Output dims of the spec's own examples, independent of geo_init. */
static void test_conv_shapes(void **state)
{
    (void)state;
    static const struct {
        const char *auto_pad;
        int64_t in, k, s, d, pb, pe, out;
    } cases[] = {
        {NULL, 7, 3, 2, 1, 1, 1, 4},      {NULL, 7, 3, 2, 1, 0, 1, 3},
        {NULL, 5, 3, 1, 2, 0, 0, 1},      {"SAME_UPPER", 5, 3, 2, 1, 0, 0, 3},
        {"SAME_LOWER", 6, 4, 2, 1, 0, 0, 3}, {"VALID", 7, 3, 2, 1, 5, 5, 3},
        {"VALID", 8, 3, 3, 1, 0, 0, 2},   {"SAME_UPPER", 1, 5, 3, 1, 0, 0, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t xd[3] = {1, 1, cases[c].in}, wd[3] = {1, 1, cases[c].k};
        int64_t s[1] = {cases[c].s}, d[1] = {cases[c].d}, p[2] = {cases[c].pb, cases[c].pe};
        onr_tensor *in[2] = {tk_rand_f32(3, xd, 1), tk_rand_f32(3, wd, 2)};
        onr_node *n = tk_node("Conv");
        set_window_attrs(n, 1, s, d, p, NULL);
        if (cases[c].auto_pad) tk_attr_string(n, "auto_pad", cases[c].auto_pad);
        onr_tensor *out[1];
        run_both(n, 11, 2, in, 1, out);
        int64_t yd[3] = {1, 1, cases[c].out};
        tk_assert_shape(out[0], 3, yd);
        tk_free_all(1, out);
        tk_free_all(2, in);
        tk_node_free(n);
    }
}

static void conv_expect_error(const int64_t *xd, const int64_t *wd, int64_t bias_len,
                              onr_node *n, onr_status st, const char *what)
{
    int64_t bd[1] = {bias_len};
    onr_tensor *in[3] = {tk_rand_f32((int)xd[0], xd + 1, 1), tk_rand_f32((int)wd[0], wd + 1, 2),
                         bias_len >= 0 ? tk_rand_f32(1, bd, 3) : NULL};
    expect_error(n, 11, bias_len >= 0 ? 3 : 2, in, 1, st, what);
    tk_free_all(3, in);
    tk_node_free(n);
}

static void test_conv_errors(void **state)
{
    (void)state;
    /* rank-prefixed dims: {rank, d0, d1, ...} */
    const int64_t x[] = {4, 1, 4, 5, 5}, w[] = {4, 6, 4, 3, 3}, wbad[] = {4, 6, 3, 3, 3};
    const int64_t wbig[] = {4, 6, 4, 7, 7}, x2[] = {2, 4, 5}, w1d[] = {3, 6, 4, 3};
    onr_node *n;
    conv_expect_error(x, wbad, -1, tk_node("Conv"), ONR_E_MODEL, "channels");
    n = tk_node("Conv");
    tk_attr_int(n, "group", 3);
    conv_expect_error(x, w, -1, n, ONR_E_MODEL, "channels");
    n = tk_node("Conv");
    tk_attr_int(n, "group", 4); /* C/group = 1 but W says 4 */
    conv_expect_error(x, w, -1, n, ONR_E_MODEL, "channels");
    const int64_t w4[] = {4, 6, 1, 3, 3};
    n = tk_node("Conv");
    tk_attr_int(n, "group", 4); /* 6 output channels, 4 groups */
    conv_expect_error(x, w4, -1, n, ONR_E_MODEL, "divisible");
    n = tk_node("Conv");
    tk_attr_int(n, "group", 0);
    conv_expect_error(x, w, -1, n, ONR_E_MODEL, "group");
    conv_expect_error(x, wbig, -1, tk_node("Conv"), ONR_E_MODEL, "larger than the padded input");
    n = tk_node("Conv");
    const int64_t s0[2] = {0, 1};
    tk_attr_ints(n, "strides", 2, s0);
    conv_expect_error(x, w, -1, n, ONR_E_MODEL, "strides");
    n = tk_node("Conv");
    const int64_t sneg[2] = {1, -2};
    tk_attr_ints(n, "strides", 2, sneg);
    conv_expect_error(x, w, -1, n, ONR_E_MODEL, "strides");
    n = tk_node("Conv");
    const int64_t dil0[2] = {1, 0};
    tk_attr_ints(n, "dilations", 2, dil0);
    conv_expect_error(x, w, -1, n, ONR_E_MODEL, "dilations");
    n = tk_node("Conv");
    const int64_t pneg[4] = {0, -1, 0, 0};
    tk_attr_ints(n, "pads", 4, pneg);
    conv_expect_error(x, w, -1, n, ONR_E_MODEL, "pads");
    n = tk_node("Conv");
    const int64_t p3[3] = {0, 0, 0};
    tk_attr_ints(n, "pads", 3, p3);
    conv_expect_error(x, w, -1, n, ONR_E_MODEL, "pads");
    n = tk_node("Conv");
    tk_attr_string(n, "auto_pad", "SAME");
    conv_expect_error(x, w, -1, n, ONR_E_MODEL, "auto_pad");
    n = tk_node("Conv");
    const int64_t ks[2] = {3, 2};
    tk_attr_ints(n, "kernel_shape", 2, ks);
    conv_expect_error(x, w, -1, n, ONR_E_MODEL, "kernel_shape");
    conv_expect_error(x, w, 5, tk_node("Conv"), ONR_E_MODEL, "bias");
    conv_expect_error(x2, w, -1, tk_node("Conv"), ONR_E_MODEL, "rank >= 3");
    conv_expect_error(x, w1d, -1, tk_node("Conv"), ONR_E_MODEL, "rank");
    n = tk_node("Conv");
    const int64_t huge[2] = {INT64_C(1) << 40, 1};
    tk_attr_ints(n, "strides", 2, huge);
    conv_expect_error(x, w, -1, n, ONR_E_MODEL, "out of range");
    /* 4 spatial dims are not handled */
    const int64_t x6[] = {6, 1, 1, 2, 2, 2, 2}, w6[] = {6, 1, 1, 1, 1, 1, 1};
    conv_expect_error(x6, w6, -1, tk_node("Conv"), ONR_E_UNSUPPORTED, "spatial");
}

/* Constant W (and bias) for every Conv case, float32 and 16-bit. */
static void test_conv_const(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof conv_cases / sizeof conv_cases[0]; c++) {
        for (uint32_t mask = 2; mask <= 6; mask += 4) {
            conv_run_case_const(&conv_cases[c], ONR_FLOAT, 11, (int)(c & 1), mask);
            if (conv_cases[c].C == 64) continue; /* the big one is float32's */
            conv_run_case_const(&conv_cases[c], ONR_FLOAT16, 11, 0, mask);
            conv_run_case_const(&conv_cases[c], ONR_BFLOAT16, 22, 0, mask);
        }
    }
    conv_run_case_const(&conv_cases[0], ONR_DOUBLE, 11, 0, 6);
}

/* Conv at the GEMM tiles' edges: output channels per group (GEMM rows)
 * around MR, output positions (GEMM columns) around NR, for the 1x1 (one
 * GEMM) and 3-wide (im2col) paths, with groups, stride and dilation, W
 * constant and not. */
static void test_conv_tile_edges(void **state)
{
    (void)state;
    static const int64_t s2[1] = {2}, d2[1] = {2}, p1[2] = {1, 1}, p2[2] = {2, 1};
    for (size_t isa = 0; isa < sizeof gemm_isas / sizeof gemm_isas[0]; isa++) {
        if (onr_sgemm_force_kernel(gemm_isas[isa]) != 0) continue;
        onr_sgemm_blocking bl;
        onr_sgemm_get_blocking(&bl);
        int64_t mr = (int64_t)bl.mr, nr = (int64_t)bl.nr;
        const int64_t mgs[2] = {mr - 1, mr + 1}, outs[2] = {nr - 1, nr + 1};
        for (int im = 0; im < 2; im++)
            for (int io = 0; io < 2; io++)
                for (int v = 0; v < 4; v++) {
                    int64_t G = v & 1 ? 2 : 1, k = v < 2 ? 1 : 3;
                    conv_case cc = {1, 1, 3 * G, mgs[im] * G, G, {outs[io]}, {k}, NULL, NULL,
                                    k == 3 ? p1 : NULL, NULL, 1};
                    if (v == 3) { /* stride 2, dilation 2: in = 2 * (out - 1) + 1 */
                        cc.in[0] = 2 * (outs[io] - 1) + 1;
                        cc.s = s2, cc.d = d2, cc.pads = p2;
                    }
                    for (uint32_t mask = 0; mask <= 6; mask += 6) {
                        conv_run_case_const(&cc, ONR_FLOAT, 11, 0, mask);
                        conv_run_case_const(&cc, ONR_FLOAT16, 11, 0, mask);
                    }
                }
    }
    onr_sgemm_force_kernel(NULL);
}

/* ======================================================================
 * ConvTranspose
 * ==================================================================== */

typedef struct convt_case {
    int nsp;
    int64_t N, C, M, G;
    int64_t in[3], k[3];
    const int64_t *s, *d, *pads, *opad, *oshape;
    const char *auto_pad;
    int bias;
} convt_case;

static const int64_t OP1[3] = {1, 1, 1}, OP10[3] = {1, 0, 1}, OS1[3] = {10, 8, 5};
static const int64_t S32[3] = {3, 2, 1};

static const convt_case convt_cases[] = {
    {2, 1, 3, 2, 1, {3, 3}, {3, 3}, NULL, NULL, NULL, NULL, NULL, NULL, 1},
    {2, 2, 4, 6, 2, {4, 5}, {3, 2}, S21, NULL, PA, OP10, NULL, NULL, 1},
    {2, 1, 3, 4, 1, {4, 3}, {2, 3}, S2, D2, P1, OP1, NULL, NULL, 0},
    {2, 1, 2, 3, 1, {3, 3}, {3, 3}, S2, NULL, NULL, NULL, NULL, "SAME_UPPER", 1},
    {2, 1, 2, 3, 1, {3, 4}, {3, 3}, S21, NULL, NULL, NULL, NULL, "SAME_LOWER", 1},
    {2, 1, 2, 3, 1, {3, 4}, {3, 2}, S21, NULL, NULL, NULL, NULL, "VALID", 0},
    {2, 1, 1, 2, 1, {3, 3}, {3, 3}, S21, NULL, NULL, NULL, OS1, NULL, 1}, /* output_shape */
    {1, 2, 3, 4, 1, {7}, {3}, S2, D2, PA, OP1, NULL, NULL, 1},            /* 1-D */
    {3, 1, 2, 2, 2, {3, 4, 3}, {2, 3, 2}, S21, D12, PA, OP10, NULL, NULL, 1}, /* 3-D */
    {2, 1, 4, 4, 4, {5, 5}, {3, 3}, S2, NULL, P1, NULL, NULL, NULL, 1},  /* depthwise */
    {2, 1, 32, 16, 1, {40, 40}, {4, 4}, S2, NULL, P1, NULL, NULL, NULL, 1}, /* bands */
    /* kernel = stride, no padding: each output takes one tap (col2im_tiles) */
    {2, 2, 4, 6, 2, {5, 3}, {2, 2}, S2, NULL, NULL, NULL, NULL, NULL, 1},     /* UNet's */
    {2, 1, 3, 2, 1, {3, 4}, {3, 2}, S32, NULL, NULL, NULL, NULL, NULL, 0},
    {1, 2, 2, 3, 1, {5}, {3}, S32, NULL, NULL, NULL, NULL, NULL, 1},          /* 1-D */
    {3, 1, 2, 3, 1, {2, 3, 2}, {2, 2, 2}, S2, NULL, NULL, NULL, NULL, NULL, 1}, /* 3-D */
    {2, 1, 8, 256, 1, {48, 48}, {2, 2}, S2, NULL, NULL, NULL, NULL, NULL, 1}, /* bands */
    /* one tap each but padded, or an output padding: not the tiles path */
    {2, 1, 3, 2, 1, {3, 4}, {2, 2}, S2, NULL, P1, NULL, NULL, NULL, 1},
    {2, 1, 3, 2, 1, {3, 4}, {2, 2}, S2, NULL, NULL, OP1, NULL, NULL, 1},
};

/* Reference geometry: out and pads per the ConvTranspose spec. */
static void convt_geo(const convt_case *cc, geo *g)
{
    int nsp = cc->nsp;
    memset(g, 0, sizeof *g);
    g->nsp = nsp;
    for (int j = 0; j < 3; j++) {
        int i = j - (3 - nsp);
        g->in[j] = i >= 0 ? cc->in[i] : 1;
        g->k[j] = i >= 0 ? cc->k[i] : 1;
        g->s[j] = i >= 0 && cc->s ? cc->s[i] : 1;
        g->d[j] = i >= 0 && cc->d ? cc->d[i] : 1;
        int64_t op = i >= 0 && cc->opad ? cc->opad[i] : 0;
        int64_t full = g->s[j] * (g->in[j] - 1) + op + (g->k[j] - 1) * g->d[j] + 1;
        if (i < 0) {
            g->out[j] = 1;
            continue;
        }
        int same = cc->auto_pad && strncmp(cc->auto_pad, "SAME", 4) == 0;
        if (cc->oshape || same) {
            g->out[j] = cc->oshape ? cc->oshape[i] : g->in[j] * g->s[j];
            int64_t total = full - g->out[j];
            int64_t half = (int64_t)floor((double)total / 2);
            int upper = cc->auto_pad && strcmp(cc->auto_pad, "SAME_UPPER") == 0;
            g->pb[j] = upper ? half : total - half;
            g->pe[j] = total - g->pb[j];
        } else {
            int valid = cc->auto_pad && strcmp(cc->auto_pad, "VALID") == 0;
            g->pb[j] = cc->pads && !valid ? cc->pads[i] : 0;
            g->pe[j] = cc->pads && !valid ? cc->pads[nsp + i] : 0;
            g->out[j] = full - g->pb[j] - g->pe[j];
        }
    }
}

static double *ref_convt(const convt_case *cc, const geo *g, const onr_tensor *x,
                         const onr_tensor *w, const onr_tensor *b)
{
    int64_t IN = g_numel(g->in), OUT = g_numel(g->out), K = g_numel(g->k);
    int64_t Cg = cc->C / cc->G, Mg = cc->M / cc->G;
    double *y = calloc((size_t)(cc->N * cc->M * OUT) + 1, sizeof(double));
    for (int64_t n = 0; n < cc->N; n++)
        for (int64_t m = 0; m < cc->M; m++)
            for (int64_t o = 0; o < OUT; o++) y[(n * cc->M + m) * OUT + o] = b ? get(b, m) : 0;
    for (int64_t n = 0; n < cc->N; n++)
        for (int64_t c = 0; c < cc->C; c++)
            for (int64_t i = 0; i < IN; i++) {
                int64_t ii[3] = {i / (g->in[1] * g->in[2]), i / g->in[2] % g->in[1], i % g->in[2]};
                for (int64_t mm = 0; mm < Mg; mm++)
                    for (int64_t kk = 0; kk < K; kk++) {
                        int64_t ko[3] = {kk / (g->k[1] * g->k[2]), kk / g->k[2] % g->k[1],
                                         kk % g->k[2]};
                        int64_t pos[3], ok = 1;
                        for (int j = 0; j < 3; j++) {
                            pos[j] = ii[j] * g->s[j] - g->pb[j] + ko[j] * g->d[j];
                            ok &= pos[j] >= 0 && pos[j] < g->out[j];
                        }
                        if (!ok) continue;
                        int64_t m = c / Cg * Mg + mm;
                        y[(n * cc->M + m) * OUT + (pos[0] * g->out[1] + pos[1]) * g->out[2] + pos[2]] +=
                            get(x, (n * cc->C + c) * IN + i) * get(w, (c * Mg + mm) * K + kk);
                    }
            }
    return y;
}

static void convt_run_case_const(const convt_case *cc, onr_dtype dt, int64_t opset,
                                 uint32_t mask)
{
    int nsp = cc->nsp;
    int64_t xd[5] = {cc->N, cc->C}, wd[5] = {cc->C, cc->M / cc->G}, bd[1] = {cc->M};
    for (int i = 0; i < nsp; i++) xd[2 + i] = cc->in[i], wd[2 + i] = cc->k[i];
    onr_tensor *in[3] = {make_t(dt, 2 + nsp, xd, 17), make_t(dt, 2 + nsp, wd, 18),
                         cc->bias ? make_t(dt, 1, bd, 19) : NULL};
    onr_node *n = tk_node("ConvTranspose");
    if (cc->G != 1) tk_attr_int(n, "group", cc->G);
    set_window_attrs(n, nsp, cc->s, cc->d, cc->pads, cc->auto_pad);
    if (cc->opad) tk_attr_ints(n, "output_padding", nsp, cc->opad);
    if (cc->oshape) tk_attr_ints(n, "output_shape", nsp, cc->oshape);
    onr_tensor *out[1];
    uint32_t consumed = run_both_const(n, opset, cc->bias ? 3 : 2, in, mask, 1, out);
    assert_int_equal(consumed, conv_expect_consumed(dt, cc->bias, mask));
    geo g;
    convt_geo(cc, &g);
    int64_t yd[5] = {cc->N, cc->M};
    for (int i = 0; i < nsp; i++) yd[2 + i] = g.out[3 - nsp + i];
    tk_assert_shape(out[0], 2 + nsp, yd);
    double *ref = ref_convt(cc, &g, in[0], in[1], in[2]);
    double depth = (double)(cc->C / cc->G * g_numel(g.k));
    expect_close(out[0], ref, numel(yd, 2 + nsp), tol_for(dt), tol_for(dt) * (2 + sqrt(depth)));
    free(ref);
    tk_free_all(1, out);
    tk_free_all(3, in);
    tk_node_free(n);
}

static void convt_run_case(const convt_case *cc, onr_dtype dt, int64_t opset)
{
    convt_run_case_const(cc, dt, opset, 0);
}

static void test_convtranspose(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof convt_cases / sizeof convt_cases[0]; c++) {
        convt_run_case(&convt_cases[c], ONR_FLOAT, 11);
        convt_run_case(&convt_cases[c], ONR_DOUBLE, 1);
        convt_run_case(&convt_cases[c], ONR_FLOAT16, 11);
    }
}

/* The ONNX backend example convtranspose_autopad_same, as a spec anchor. */
static void test_convtranspose_spec_example(void **state)
{
    (void)state;
    int64_t xd[4] = {1, 1, 3, 3}, wd[4] = {1, 2, 3, 3}, s[2] = {2, 2};
    float xv[9], wv[18];
    for (int i = 0; i < 9; i++) xv[i] = (float)i;
    for (int i = 0; i < 18; i++) wv[i] = 1.f;
    onr_tensor *in[2] = {tk_f32(4, xd, xv), tk_f32(4, wd, wv)};
    onr_node *n = tk_node("ConvTranspose");
    tk_attr_ints(n, "strides", 2, s);
    tk_attr_string(n, "auto_pad", "SAME_UPPER");
    onr_tensor *out[1];
    run_both(n, 11, 2, in, 1, out);
    int64_t yd[4] = {1, 2, 6, 6};
    tk_assert_shape(out[0], 4, yd);
    static const float row0[6] = {0, 0, 1, 1, 3, 2}, row2[6] = {3, 3, 8, 5, 12, 7};
    static const float row5[6] = {6, 6, 13, 7, 15, 8};
    const float *y = out[0]->data;
    for (int j = 0; j < 6; j++) {
        assert_true(y[j] == row0[j]);
        assert_true(y[12 + j] == row2[j]);
        assert_true(y[30 + j] == row5[j]);
        assert_true(y[36 + 30 + j] == row5[j]);
    }
    tk_free_all(1, out);
    tk_free_all(2, in);
    tk_node_free(n);
}

static void test_convtranspose_errors(void **state)
{
    (void)state;
    int64_t xd[4] = {1, 4, 3, 3}, wd[4] = {4, 2, 3, 3}, wbad[4] = {3, 2, 3, 3};
    onr_tensor *in[2] = {tk_rand_f32(4, xd, 1), tk_rand_f32(4, wbad, 2)};
    onr_node *n = tk_node("ConvTranspose");
    expect_error(n, 11, 2, in, 1, ONR_E_MODEL, "channels");
    onr_tensor_free(in[1]);
    in[1] = tk_rand_f32(4, wd, 2);
    tk_attr_int(n, "group", 3);
    expect_error(n, 11, 2, in, 1, ONR_E_MODEL, "group");
    tk_node_free(n);
    n = tk_node("ConvTranspose");
    int64_t op[2] = {2, 0}, s[2] = {2, 2}, pads[4] = {3, 3, 3, 3}, os[2] = {5, 0};
    tk_attr_ints(n, "output_padding", 2, op);
    tk_attr_ints(n, "strides", 2, s);
    expect_error(n, 11, 2, in, 1, ONR_E_MODEL, "output_padding");
    tk_node_free(n);
    n = tk_node("ConvTranspose");
    tk_attr_ints(n, "pads", 4, pads);
    expect_error(n, 11, 2, in, 1, ONR_E_MODEL, "output size");
    tk_node_free(n);
    n = tk_node("ConvTranspose");
    tk_attr_ints(n, "output_shape", 2, os);
    expect_error(n, 11, 2, in, 1, ONR_E_MODEL, "output_shape");
    tk_node_free(n);
    tk_free_all(2, in);
}

static void test_convtranspose_const(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof convt_cases / sizeof convt_cases[0]; c++)
        for (uint32_t mask = 2; mask <= 6; mask += 4) {
            convt_run_case_const(&convt_cases[c], ONR_FLOAT, 11, mask);
            convt_run_case_const(&convt_cases[c], ONR_FLOAT16, 11, mask);
        }
}

/* ======================================================================
 * Pools
 * ==================================================================== */

enum { MAXP, AVGP, LPP };

typedef struct pool_case {
    int kind, nsp;
    int64_t N, C;
    int64_t in[3], k[3];
    const int64_t *s, *d, *pads;
    const char *auto_pad;
    int ceil_mode, cip, storage_order, p;
} pool_case;

static const int64_t P2[6] = {2, 2, 2, 2, 2, 2}, PB[6] = {1, 0, 2, 2, 1, 0};
static const int64_t PW2[4] = {0, 2, 1, 2}; /* 2 columns of padding before and after */

static const pool_case pool_cases[] = {
    {MAXP, 2, 1, 3, {7, 9}, {3, 3}, NULL, NULL, NULL, NULL, 0, 0, 0, 0},
    {MAXP, 2, 2, 3, {8, 9}, {3, 2}, S21, NULL, PA, NULL, 0, 0, 0, 0},
    {MAXP, 2, 2, 2, {9, 10}, {3, 3}, S2, D2, P1, NULL, 0, 0, 1, 0},
    {MAXP, 2, 1, 2, {8, 8}, {3, 3}, S2, NULL, PB, NULL, 1, 0, 0, 0},
    {MAXP, 2, 1, 2, {7, 8}, {3, 2}, S2, NULL, NULL, "SAME_UPPER", 0, 0, 0, 0},
    {MAXP, 2, 1, 2, {7, 8}, {2, 3}, S21, NULL, NULL, "SAME_LOWER", 0, 0, 1, 0},
    {MAXP, 2, 1, 2, {7, 8}, {2, 3}, S21, NULL, NULL, "VALID", 0, 0, 0, 0},
    {MAXP, 1, 2, 3, {13}, {4}, S2, D2, PA, NULL, 1, 0, 0, 0},
    {MAXP, 3, 1, 2, {5, 6, 7}, {2, 3, 2}, S21, D12, PA, NULL, 0, 0, 1, 0},
    {MAXP, 2, 4, 16, {56, 56}, {3, 3}, S2, NULL, P1, NULL, 0, 0, 0, 0}, /* threaded */
    /* 9 rows a window (folded 8 at a time), two full vectors of outputs */
    {MAXP, 2, 1, 2, {20, 70}, {9, 3}, S2, NULL, P1, NULL, 0, 0, 0, 0},
    /* stride 2 along W with 2 or 3 taps: rows folded in registers, 16
     * outputs a block (pool.c, pool_max_s2_rows_avx512) - blocks and a
     * tail, the last window past the row (ceil), 2 columns of padding
     * before (a tap from the block before), none (a tap from the block
     * after), a 3-D window of 4 rows */
    {MAXP, 2, 1, 3, {9, 75}, {3, 3}, S2, NULL, P1, NULL, 1, 0, 0, 0},
    {MAXP, 2, 2, 2, {6, 70}, {2, 3}, S2, NULL, PW2, NULL, 0, 0, 0, 0},
    {MAXP, 2, 1, 2, {5, 67}, {3, 3}, S2, NULL, NULL, NULL, 1, 0, 0, 0},
    {MAXP, 2, 1, 2, {4, 33}, {2, 2}, S2, NULL, NULL, NULL, 1, 0, 0, 0},
    {MAXP, 3, 1, 2, {3, 4, 40}, {2, 2, 2}, S2, NULL, NULL, NULL, 0, 0, 0, 0},
    {AVGP, 2, 1, 3, {7, 9}, {3, 3}, NULL, NULL, NULL, NULL, 0, 0, 0, 0},
    {AVGP, 2, 2, 3, {8, 9}, {3, 2}, S21, NULL, PA, NULL, 0, 0, 0, 0},
    {AVGP, 2, 2, 3, {8, 9}, {3, 2}, S21, NULL, PA, NULL, 0, 1, 0, 0},
    {AVGP, 2, 1, 2, {8, 8}, {3, 3}, S2, NULL, PB, NULL, 1, 1, 0, 0},
    {AVGP, 2, 1, 2, {8, 8}, {3, 3}, S2, NULL, PB, NULL, 1, 0, 0, 0},
    {AVGP, 2, 1, 2, {7, 8}, {3, 2}, S2, NULL, NULL, "SAME_UPPER", 0, 1, 0, 0},
    {AVGP, 2, 1, 2, {7, 8}, {3, 2}, S2, NULL, NULL, "SAME_LOWER", 0, 0, 0, 0},
    {AVGP, 2, 1, 2, {9, 9}, {3, 3}, S2, D2, P2, NULL, 1, 1, 0, 0},
    {AVGP, 1, 2, 3, {13}, {4}, S2, NULL, PA, NULL, 0, 1, 0, 0},
    {AVGP, 3, 1, 2, {5, 6, 7}, {2, 3, 2}, S21, NULL, PA, NULL, 0, 0, 0, 0},
    {LPP, 2, 1, 3, {7, 9}, {3, 3}, S2, NULL, P1, NULL, 0, 0, 0, 2},
    {LPP, 2, 1, 3, {7, 9}, {3, 2}, S21, D2, PA, NULL, 0, 0, 0, 3},
    {LPP, 1, 2, 2, {11}, {3}, S2, NULL, NULL, "SAME_UPPER", 0, 0, 0, 1},
    {LPP, 3, 1, 2, {4, 5, 6}, {2, 2, 2}, NULL, NULL, NULL, NULL, 0, 0, 0, 2},
};

static const char *const pool_ops[] = {"MaxPool", "AveragePool", "LpPool"};

/* Reference pool; idx gets MaxPool's indices. */
static double *ref_pool(const pool_case *pc, const geo *g, const onr_tensor *x, int64_t *idx)
{
    int64_t IN = g_numel(g->in), OUT = g_numel(g->out), K = g_numel(g->k);
    int64_t planes = pc->N * pc->C;
    double *y = calloc((size_t)(planes * OUT) + 1, sizeof(double));
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t o = 0; o < OUT; o++) {
            int64_t oo[3] = {o / (g->out[1] * g->out[2]), o / g->out[2] % g->out[1], o % g->out[2]};
            double best = -INFINITY, sum = 0;
            int64_t bi = -1, cnt = 0, cnt_pad = 0;
            for (int64_t kk = 0; kk < K; kk++) {
                int64_t ko[3] = {kk / (g->k[1] * g->k[2]), kk / g->k[2] % g->k[1], kk % g->k[2]};
                int64_t pos[3];
                int in_x = 1, in_pad = 1;
                for (int j = 0; j < 3; j++) {
                    pos[j] = oo[j] * g->s[j] - g->pb[j] + ko[j] * g->d[j];
                    in_x &= pos[j] >= 0 && pos[j] < g->in[j];
                    in_pad &= pos[j] >= -g->pb[j] && pos[j] < g->in[j] + g->pe[j];
                }
                cnt_pad += in_pad;
                if (!in_x) continue;
                cnt++;
                double v = get(x, pl * IN + (pos[0] * g->in[1] + pos[1]) * g->in[2] + pos[2]);
                if (pc->kind == MAXP && (bi < 0 || v > best)) {
                    best = v;
                    bi = pc->storage_order ? pos[0] + pos[1] * g->in[0] + pos[2] * g->in[0] * g->in[1]
                                           : (pos[0] * g->in[1] + pos[1]) * g->in[2] + pos[2];
                    bi += pl * IN;
                }
                sum += pc->kind == LPP ? pow(fabs(v), pc->p) : v;
            }
            y[pl * OUT + o] = pc->kind == MAXP  ? best
                              : pc->kind == AVGP ? sum / (double)(pc->cip ? cnt_pad : cnt)
                                                 : pow(sum, 1.0 / pc->p);
            if (idx) idx[pl * OUT + o] = bi;
        }
    return y;
}

static void pool_run_case(const pool_case *pc, onr_dtype dt, int64_t opset)
{
    int nsp = pc->nsp, with_idx = pc->kind == MAXP && opset >= 8 && dt == ONR_FLOAT;
    int64_t xd[5] = {pc->N, pc->C};
    for (int i = 0; i < nsp; i++) xd[2 + i] = pc->in[i];
    onr_tensor *in[1] = {make_t(dt, 2 + nsp, xd, 33)};
    onr_node *n = tk_node(pool_ops[pc->kind]);
    tk_attr_ints(n, "kernel_shape", nsp, pc->k);
    set_window_attrs(n, nsp, pc->s, pc->d, pc->pads, pc->auto_pad);
    if (pc->ceil_mode) tk_attr_int(n, "ceil_mode", 1);
    if (pc->cip) tk_attr_int(n, "count_include_pad", 1);
    if (pc->storage_order) tk_attr_int(n, "storage_order", 1);
    if (pc->p) tk_attr_int(n, "p", pc->p);
    onr_tensor *out[2] = {0};
    run_both(n, opset, 1, in, with_idx ? 2 : 1, out);
    geo g;
    geo_init(&g, nsp, pc->in, pc->k, pc->s, pc->d, pc->pads, pc->auto_pad, pc->ceil_mode);
    int64_t yd[5] = {pc->N, pc->C};
    for (int i = 0; i < nsp; i++) yd[2 + i] = g.out[3 - nsp + i];
    tk_assert_shape(out[0], 2 + nsp, yd);
    int64_t ny = numel(yd, 2 + nsp);
    int64_t *idx = calloc((size_t)ny + 1, sizeof(int64_t));
    double *ref = ref_pool(pc, &g, in[0], idx);
    double tol = dt == ONR_INT8 || dt == ONR_UINT8 ? 0 : tol_for(dt);
    /* a window all in padding: integer max pools give the type's lowest */
    for (int64_t i = 0; i < ny && (dt == ONR_INT8 || dt == ONR_UINT8); i++)
        if (isinf(ref[i])) ref[i] = dt == ONR_INT8 ? -128 : 0;
    expect_close(out[0], ref, ny, tol, tol);
    if (with_idx) {
        tk_assert_shape(out[1], 2 + nsp, yd);
        tk_assert_eq_i64(out[1], idx, ny);
    }
    free(ref);
    free(idx);
    tk_free_all(with_idx ? 2 : 1, out);
    tk_free_all(1, in);
    tk_node_free(n);
}

static void test_pools_f32(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof pool_cases / sizeof pool_cases[0]; c++) {
        pool_run_case(&pool_cases[c], ONR_FLOAT, pool_cases[c].kind == LPP ? 18 : 12);
        if (pool_cases[c].kind == MAXP && !pool_cases[c].storage_order)
            pool_run_case(&pool_cases[c], ONR_FLOAT, 7); /* no Indices output yet */
    }
}

static void test_pools_types(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof pool_cases / sizeof pool_cases[0]; c++) {
        pool_run_case(&pool_cases[c], ONR_DOUBLE, 19);
        pool_run_case(&pool_cases[c], ONR_FLOAT16, 19);
        pool_run_case(&pool_cases[c], ONR_BFLOAT16, 22);
        if (pool_cases[c].kind == MAXP) {
            pool_run_case(&pool_cases[c], ONR_INT8, 12);
            pool_run_case(&pool_cases[c], ONR_UINT8, 12);
        }
    }
}

/* The spec's examples maxpool_2d_ceil and averagepool_2d_ceil. */
static void test_pools_spec_examples(void **state)
{
    (void)state;
    int64_t xd[4] = {1, 1, 4, 4}, k[2] = {3, 3}, s[2] = {2, 2}, yd[4] = {1, 1, 2, 2};
    float xv[16];
    for (int i = 0; i < 16; i++) xv[i] = (float)(i + 1);
    static const float maxv[4] = {11, 12, 15, 16}, avgv[4] = {6, 7.5f, 12, 13.5f};
    for (int kind = 0; kind < 2; kind++) {
        onr_tensor *in[1] = {tk_f32(4, xd, xv)};
        onr_node *n = tk_node(kind ? "AveragePool" : "MaxPool");
        tk_attr_ints(n, "kernel_shape", 2, k);
        tk_attr_ints(n, "strides", 2, s);
        tk_attr_int(n, "ceil_mode", 1);
        onr_tensor *out[1];
        run_both(n, 12, 1, in, 1, out);
        tk_assert_shape(out[0], 4, yd);
        tk_assert_close_f32(out[0], kind ? avgv : maxv, 4, 0, 0);
        tk_free_all(1, out);
        tk_free_all(1, in);
        tk_node_free(n);
    }
}

/* One float MaxPool (2-D, opset 12, strides s or NULL) on x of shape xd
 * against want (yd's elements), NaN matching NaN. */
static void maxpool_expect(const int64_t *xd, const float *x, const int64_t *k, const int64_t *s,
                           const int64_t *yd, const float *want)
{
    onr_tensor *in[1] = {tk_f32(4, xd, x)};
    onr_node *n = tk_node("MaxPool");
    tk_attr_ints(n, "kernel_shape", 2, k);
    if (s) tk_attr_ints(n, "strides", 2, s);
    onr_tensor *out[1];
    run_both(n, 12, 1, in, 1, out);
    tk_assert_shape(out[0], 4, yd);
    tk_assert_close_f32(out[0], want, numel(yd, 4), 0, 0);
    tk_free_all(1, out);
    tk_free_all(1, in);
    tk_node_free(n);
}

/* NaN never wins a float MaxPool window; a window of NaN only (or of
 * padding only) gives -inf, as the row engine of the other types. */
static void test_maxpool_nan(void **state)
{
    (void)state;
    const int64_t xd[4] = {1, 1, 2, 6}, k[2] = {1, 2}, s[2] = {1, 2}, yd[4] = {1, 1, 2, 3};
    static const float xv[12] = {NAN, 1, 2, NAN, NAN, NAN, -3, -4, -INFINITY, 5, 7, NAN};
    static const float want[6] = {1, 2, -INFINITY, -3, 5, 7};
    maxpool_expect(xd, xv, k, s, yd, want);
    /* rows of 37 (full vectors and a tail), the window down a column: NaN
     * in either row never wins */
    const int64_t xd2[4] = {1, 1, 2, 37}, k2[2] = {2, 1}, yd2[4] = {1, 1, 1, 37};
    float xv2[74], want2[37];
    for (int i = 0; i < 37; i++) {
        xv2[i] = i % 3 == 0 ? NAN : (float)i;
        xv2[37 + i] = i % 5 == 0 ? NAN : (float)(40 - i);
        float a = xv2[i], b = xv2[37 + i];
        want2[i] = isnan(a) ? (isnan(b) ? -INFINITY : b) : isnan(b) ? a : (a > b ? a : b);
    }
    maxpool_expect(xd2, xv2, k2, NULL, yd2, want2);
}

static void test_global_pools(void **state)
{
    (void)state;
    static const struct {
        int rank;
        int64_t d[5];
    } shapes[] = {{4, {2, 3, 5, 7}}, {3, {1, 4, 9}}, {5, {1, 2, 3, 4, 5}}, {4, {1, 2, 64, 64}},
                  {2, {3, 4}}};
    static const char *const ops[] = {"GlobalMaxPool", "GlobalAveragePool", "GlobalLpPool"};
    static const onr_dtype types[] = {ONR_FLOAT, ONR_DOUBLE, ONR_FLOAT16};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
            for (int kind = 0; kind < 3; kind++) {
                int rank = shapes[sh].rank;
                onr_tensor *in[1] = {make_t(types[t], rank, shapes[sh].d, 5 + (uint32_t)sh)};
                onr_node *n = tk_node(ops[kind]);
                if (kind == LPP) tk_attr_int(n, "p", 3);
                onr_tensor *out[1];
                run_both(n, 2, 1, in, 1, out);
                int64_t yd[5] = {shapes[sh].d[0], shapes[sh].d[1], 1, 1, 1};
                tk_assert_shape(out[0], rank, yd);
                int64_t planes = yd[0] * yd[1], plane = in[0]->numel / planes;
                double *ref = calloc((size_t)planes, sizeof(double));
                for (int64_t p = 0; p < planes; p++) {
                    double best = -INFINITY, sum = 0;
                    for (int64_t i = 0; i < plane; i++) {
                        double v = get(in[0], p * plane + i);
                        best = v > best ? v : best;
                        sum += kind == LPP ? pow(fabs(v), 3) : v;
                    }
                    ref[p] = kind == MAXP ? best : kind == AVGP ? sum / (double)plane : cbrt(sum);
                }
                expect_close(out[0], ref, planes, tol_for(types[t]), tol_for(types[t]));
                free(ref);
                tk_free_all(1, out);
                tk_free_all(1, in);
                tk_node_free(n);
            }
}

static void pool_expect_error(const char *op, int rank, const int64_t *xd, onr_node *n,
                              int n_out, onr_status st, const char *what)
{
    onr_tensor *in[1] = {tk_rand_f32(rank, xd, 1)};
    expect_error(n, 12, 1, in, n_out, st, what);
    tk_free_all(1, in);
    tk_node_free(n);
    (void)op;
}

static void test_pool_errors(void **state)
{
    (void)state;
    int64_t xd[4] = {1, 2, 5, 5}, k[2] = {3, 3}, kbig[2] = {7, 3}, s0[2] = {1, 0}, x2[2] = {2, 5};
    onr_node *n = tk_node("MaxPool");
    pool_expect_error("MaxPool", 4, xd, n, 1, ONR_E_MODEL, "kernel_shape");
    n = tk_node("AveragePool");
    tk_attr_ints(n, "kernel_shape", 2, kbig);
    pool_expect_error("AveragePool", 4, xd, n, 1, ONR_E_MODEL, "larger than the padded input");
    n = tk_node("MaxPool");
    tk_attr_ints(n, "kernel_shape", 2, k);
    tk_attr_ints(n, "strides", 2, s0);
    pool_expect_error("MaxPool", 4, xd, n, 1, ONR_E_MODEL, "strides");
    n = tk_node("MaxPool");
    tk_attr_ints(n, "kernel_shape", 2, k);
    tk_attr_int(n, "storage_order", 2);
    pool_expect_error("MaxPool", 4, xd, n, 1, ONR_E_MODEL, "storage_order");
    n = tk_node("MaxPool");
    tk_attr_ints(n, "kernel_shape", 1, k);
    pool_expect_error("MaxPool", 4, xd, n, 1, ONR_E_MODEL, "kernel_shape");
    n = tk_node("MaxPool");
    tk_attr_ints(n, "kernel_shape", 2, k);
    pool_expect_error("MaxPool", 2, x2, n, 1, ONR_E_MODEL, "rank >= 3");
    n = tk_node("AveragePool");
    tk_attr_ints(n, "kernel_shape", 2, k);
    pool_expect_error("AveragePool", 4, xd, n, 2, ONR_E_MODEL, "outputs");
    n = tk_node("LpPool");
    tk_attr_ints(n, "kernel_shape", 2, k);
    tk_attr_int(n, "p", 0);
    pool_expect_error("LpPool", 4, xd, n, 1, ONR_E_MODEL, "p = 0");
    /* integer MaxPool from opset 12 only; no integer averages */
    onr_tensor *in[1] = {make_t(ONR_UINT8, 4, xd, 1)};
    n = tk_node("MaxPool");
    tk_attr_ints(n, "kernel_shape", 2, k);
    expect_error(n, 11, 1, in, 1, ONR_E_UNSUPPORTED, "uint8");
    tk_node_free(n);
    n = tk_node("AveragePool");
    tk_attr_ints(n, "kernel_shape", 2, k);
    expect_error(n, 19, 1, in, 1, ONR_E_UNSUPPORTED, "uint8");
    tk_node_free(n);
    tk_free_all(1, in);
}

/* MaxPool's Indices fed back through MaxUnpool put every max where it
 * came from and zeros elsewhere. */
static void test_maxunpool_roundtrip(void **state)
{
    (void)state;
    int64_t xd[4] = {2, 3, 6, 8}, k[2] = {2, 2};
    onr_tensor *in[1] = {tk_rand_f32(4, xd, 77)};
    onr_node *mp = tk_node("MaxPool");
    tk_attr_ints(mp, "kernel_shape", 2, k);
    tk_attr_ints(mp, "strides", 2, k);
    onr_tensor *pooled[2];
    run_both(mp, 12, 1, in, 2, pooled);
    onr_node *mu = tk_node("MaxUnpool");
    tk_attr_ints(mu, "kernel_shape", 2, k);
    tk_attr_ints(mu, "strides", 2, k);
    onr_tensor *out[1];
    run_both(mu, 11, 2, pooled, 1, out);
    tk_assert_shape(out[0], 4, xd);
    const float *x = in[0]->data, *y = out[0]->data;
    int64_t nonzero = 0;
    for (int64_t i = 0; i < out[0]->numel; i++) {
        if (y[i] != 0.f) {
            assert_true(y[i] == x[i]);
            nonzero++;
        }
    }
    assert_int_equal(nonzero, pooled[0]->numel);
    tk_free_all(1, out);
    tk_free_all(2, pooled);
    tk_free_all(1, in);
    tk_node_free(mp);
    tk_node_free(mu);
}

/* The ONNX example maxunpool_export_with_output_shape, and errors. */
static void test_maxunpool_output_shape(void **state)
{
    (void)state;
    int64_t xd[4] = {1, 1, 2, 2}, k[2] = {2, 2}, sd[1] = {4};
    float xv[4] = {5, 6, 7, 8};
    int64_t iv[4] = {5, 7, 13, 15}, os[4] = {1, 1, 5, 5}, bad_os[4] = {2, 1, 5, 5};
    onr_tensor *in[3] = {tk_f32(4, xd, xv), tk_i64(4, xd, iv), tk_i64(1, sd, os)};
    onr_node *n = tk_node("MaxUnpool");
    tk_attr_ints(n, "kernel_shape", 2, k);
    tk_attr_ints(n, "strides", 2, k);
    onr_tensor *out[1];
    run_both(n, 11, 3, in, 1, out);
    tk_assert_shape(out[0], 4, os);
    float expect[25] = {0};
    expect[6] = 5, expect[8] = 6, expect[16] = 7, expect[18] = 8;
    tk_assert_close_f32(out[0], expect, 25, 0, 0);
    tk_free_all(1, out);
    memcpy(in[2]->data, bad_os, sizeof bad_os);
    expect_error(n, 11, 3, in, 1, ONR_E_MODEL, "output_shape");
    ((int64_t *)in[1]->data)[3] = 16;
    expect_error(n, 11, 2, in, 1, ONR_E_RUNTIME, "out of range");
    ((int64_t *)in[1]->data)[3] = -1;
    expect_error(n, 11, 2, in, 1, ONR_E_RUNTIME, "out of range");
    tk_node_free(n);
    n = tk_node("MaxUnpool");
    expect_error(n, 11, 2, in, 1, ONR_E_MODEL, "kernel_shape");
    tk_node_free(n);
    tk_free_all(3, in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_f32),
        cmocka_unit_test(test_matmul_types),
        cmocka_unit_test(test_matmul_int_wraps),
        cmocka_unit_test(test_matmul_errors),
        cmocka_unit_test(test_gemm_f32),
        cmocka_unit_test(test_gemm_types),
        cmocka_unit_test(test_gemm_errors),
        cmocka_unit_test(test_matmul_const),
        cmocka_unit_test(test_matmul_const_tile_edges),
        cmocka_unit_test(test_gemm_const),
        cmocka_unit_test(test_gemm_const_tile_edges),
        cmocka_unit_test(test_matmul_step_no_repack),
        cmocka_unit_test(test_conv_f32),
        cmocka_unit_test(test_conv_types),
        cmocka_unit_test(test_conv_shapes),
        cmocka_unit_test(test_conv_errors),
        cmocka_unit_test(test_conv_const),
        cmocka_unit_test(test_conv_tile_edges),
        cmocka_unit_test(test_convtranspose),
        cmocka_unit_test(test_convtranspose_spec_example),
        cmocka_unit_test(test_convtranspose_errors),
        cmocka_unit_test(test_convtranspose_const),
        cmocka_unit_test(test_pools_f32),
        cmocka_unit_test(test_pools_types),
        cmocka_unit_test(test_pools_spec_examples), cmocka_unit_test(test_maxpool_nan),
        cmocka_unit_test(test_global_pools),
        cmocka_unit_test(test_pool_errors),
        cmocka_unit_test(test_maxunpool_roundtrip),
        cmocka_unit_test(test_maxunpool_output_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
