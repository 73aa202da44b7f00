/*
 * test_gemm.c - the SGEMM core against a double-accumulating naive
 * reference, for every microkernel this CPU can run (each forced in turn):
 * shapes around the tile edges, transposes, alpha/beta, NaN-filled C with
 * beta = 0, padded leading dimensions, every epilogue, prepacked B, batched
 * strides (incl. broadcast), 1 vs 2 threads bit-identical, NaN/Inf
 * propagation, and tails next to an unmapped page.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "gemm/gemm.h"
#include "gemm/team.h"

static const char *const g_isas[] = {"ref", "avx2", "avx512"};

static uint32_t g_seed = 12345u;
static float frand(void)
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)((g_seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}
static void fill(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = frand();
}
static float *falloc(size_t n) /* at least 1 float so empty shapes are valid */
{
    float *p = aligned_alloc(64, ((n ? n : 1) * sizeof(float) + 63) / 64 * 64);
    assert_non_null(p);
    return p;
}
static void *walloc(size_t bytes) { return aligned_alloc(64, (bytes + 64) / 64 * 64); }

static double act_ref(onr_gemm_act act, double v, double lo, double hi)
{
    switch (act) {
    case ONR_ACT_RELU: return v < 0 ? 0 : v;
    case ONR_ACT_CLIP: return v < lo ? lo : (v > hi ? hi : v);
    case ONR_ACT_SIGMOID: return 1 / (1 + exp(-v));
    case ONR_ACT_SILU: return v / (1 + exp(-v));
    case ONR_ACT_GELU_ERF: return 0.5 * v * (1 + erf(v / sqrt(2.0)));
    case ONR_ACT_GELU_TANH: return 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    default: return v;
    }
}

/* Expected C and a per-element error bound, from the original C. */
static void ref_gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                     size_t lda, const float *b, size_t ldb, float beta, const float *c0,
                     size_t ldc, const onr_gemm_epilogue *ep, double *want, double *tol)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double acc = 0, mag = 0;
            for (size_t p = 0; p < k; p++) {
                double x = ta ? a[p * lda + i] : a[i * lda + p];
                double y = tb ? b[j * ldb + p] : b[p * ldb + j];
                acc += x * y;
                mag += fabs(x * y);
            }
            double v = alpha * acc;
            mag *= fabs(alpha);
            if (beta != 0) {
                v += beta * (double)c0[i * ldc + j];
                mag += fabs(beta * (double)c0[i * ldc + j]);
            }
            if (ep) {
                if (ep->bias_col) v += ep->bias_col[j], mag += fabs(ep->bias_col[j]);
                if (ep->bias_row) v += ep->bias_row[i], mag += fabs(ep->bias_row[i]);
                double r = ep->residual ? ep->residual[i * ep->ldr + j] : 0;
                if (ep->residual && ep->residual_before_act) v += r, mag += fabs(r);
                v = act_ref(ep->act, v, ep->clip_min, ep->clip_max);
                if (ep->residual && !ep->residual_before_act) v += r, mag += fabs(r);
            }
            want[i * n + j] = v;
            tol[i * n + j] = 1.2e-7 * (double)(k + 8) * mag + 3e-6 * (1 + fabs(v)) * (ep != NULL) +
                             1e-30;
        }
}

static void check(size_t m, size_t n, const float *c, size_t ldc, const double *want,
                  const double *tol, const char *what)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double got = c[i * ldc + j], w = want[i * n + j];
            if (!(fabs(got - w) <= tol[i * n + j])) {
                fail_msg("%s: C[%zu,%zu] = %.9g, want %.9g (tol %.3g) kernel %s", what, i, j, got,
                         w, tol[i * n + j], onr_sgemm_kernel_name());
            }
        }
}

/* One product through onr_sgemm (or the packed path) vs the reference. */
typedef struct gcase {
    int ta, tb, packed, threads;
    size_t m, n, k, pad;
    float alpha, beta;
    const onr_gemm_epilogue *ep;
} gcase;

static void run_case(const gcase *g, const char *what)
{
    size_t m = g->m, n = g->n, k = g->k;
    size_t lda = (g->ta ? m : k) + g->pad, ldb = (g->tb ? k : n) + g->pad, ldc = n + g->pad;
    float *a = falloc((g->ta ? k : m) * lda), *b = falloc((g->tb ? n : k) * ldb);
    float *c = falloc(m * ldc), *c0 = falloc(m * ldc);
    fill(a, (g->ta ? k : m) * lda);
    fill(b, (g->tb ? n : k) * ldb);
    if (g->beta == 0.f)
        for (size_t i = 0; i < m * ldc; i++) c0[i] = NAN;
    else fill(c0, m * ldc);
    memcpy(c, c0, m * ldc * sizeof(float));
    double *want = malloc((m * n + 1) * sizeof(double)), *tol = malloc((m * n + 1) * sizeof(double));
    ref_gemm(g->ta, g->tb, m, n, k, g->alpha, a, lda, b, ldb, g->beta, c0, ldc, g->ep, want, tol);
    void *ws = walloc(onr_sgemm_workspace_size(m, n, k, g->threads));
    if (g->packed) {
        void *pb = walloc(onr_sgemm_pack_b_size(k, n));
        onr_sgemm_pack_b(g->tb, k, n, b, ldb, pb);
        onr_sgemm_packed(g->ta, m, n, k, g->alpha, a, lda, pb, g->beta, c, ldc, g->ep, ws,
                         g->threads);
        free(pb);
    } else {
        onr_sgemm(g->ta, g->tb, m, n, k, g->alpha, a, lda, b, ldb, g->beta, c, ldc, g->ep, ws,
                  g->threads);
    }
    check(m, n, c, ldc, want, tol, what);
    /* padding columns of C are never written */
    for (size_t i = 0; i < m; i++)
        for (size_t j = n; j < ldc; j++)
            assert_memory_equal(&c[i * ldc + j], &c0[i * ldc + j], sizeof(float));
    free(ws);
    free(want);
    free(tol);
    free(a);
    free(b);
    free(c);
    free(c0);
}

/* Run fn once per kernel this CPU supports. */
static void for_each_kernel(void (*fn)(void))
{
    for (size_t i = 0; i < sizeof g_isas / sizeof *g_isas; i++) {
        if (onr_sgemm_force_kernel(g_isas[i]) != 0) {
            printf("  (kernel %s not supported here, skipped)\n", g_isas[i]);
            continue;
        }
        fn();
    }
    onr_sgemm_force_kernel(NULL);
}

static const size_t g_sizes[] = {0, 1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129, 255, 257};
enum { NSIZES = sizeof g_sizes / sizeof *g_sizes };
static const float g_alphas[] = {1.f, 0.5f, -1.25f, 0.f};
static const float g_betas[] = {0.f, 1.f, -0.75f};

static void sweep_kernel(void)
{
    char what[128];
    for (size_t im = 0; im < NSIZES; im++)
        for (size_t in = 0; in < NSIZES; in++) {
            size_t idx = im * NSIZES + in;
            gcase g = {0};
            g.m = g_sizes[im];
            g.n = g_sizes[in];
            g.k = g_sizes[(im * 7 + in * 3 + 5) % NSIZES];
            if (g.m * g.n * g.k > 1200000) g.k = g_sizes[(im + in) % 8]; /* keep ASan runs short */
            g.ta = (int)(idx & 1);
            g.tb = (int)((idx >> 1) & 1) ^ (int)(im & 1);
            g.packed = (idx % 3) == 0;
            g.pad = (idx % 5 == 0) ? 0 : (idx % 5) * 3;
            g.alpha = g_alphas[idx % 4 == 3 ? 0 : (idx / 3) % 3];
            g.beta = g_betas[idx % 3];
            g.threads = 1 + (int)(idx % 2);
            snprintf(what, sizeof what, "m=%zu n=%zu k=%zu ta=%d tb=%d packed=%d pad=%zu a=%g b=%g",
                     g.m, g.n, g.k, g.ta, g.tb, g.packed, g.pad, g.alpha, g.beta);
            run_case(&g, what);
        }
    /* every K of the list at a few fixed tile-edge shapes */
    for (size_t ik = 0; ik < NSIZES; ik++)
        for (int t = 0; t < 4; t++) {
            gcase g = {0};
            g.m = t < 2 ? 13 : 1;
            g.n = t % 2 ? 47 : 33;
            g.k = g_sizes[ik];
            g.ta = t & 1;
            g.tb = t >> 1;
            g.packed = t == 1;
            g.alpha = 1.f;
            g.beta = ik % 2 ? 0.f : 1.f;
            g.threads = 1;
            snprintf(what, sizeof what, "k sweep m=%zu n=%zu k=%zu", g.m, g.n, g.k);
            run_case(&g, what);
        }
}
static void test_sizes(void **state)
{
    (void)state;
    for_each_kernel(sweep_kernel);
}

static void large_kernel(void)
{
    /* K over several K blocks, M and N over several cache blocks */
    gcase g1 = {0, 1, 0, 2, 301, 517, 1100, 3, 1.f, 0.f, NULL};
    run_case(&g1, "large 301x517x1100");
    gcase g2 = {1, 0, 1, 2, 260, 800, 700, 0, 0.75f, 0.5f, NULL};
    run_case(&g2, "large packed 260x800x700");
    gcase g3 = {0, 0, 1, 2, 1, 3001, 900, 0, 1.f, 0.f, NULL}; /* GEMV */
    run_case(&g3, "gemv packed 1x3001x900");
    gcase g4 = {0, 1, 0, 2, 5, 1003, 777, 1, 1.f, 1.f, NULL}; /* small M */
    run_case(&g4, "small-m 5x1003x777");
    gcase g5 = {0, 0, 0, 1, 40, 70, 1024, 0, 1.f, 0.f, NULL}; /* lda 1024: A copied, not read in place */
    run_case(&g5, "aliasing lda 40x70x1024");
    /* A copied, its rows one block: each K block of A copied once for all
     * of N (several N blocks, several K blocks, epilogue on the last) */
    static float bias[800];
    fill(bias, 800);
    onr_gemm_epilogue ep = {0};
    ep.bias_col = bias;
    ep.act = ONR_ACT_RELU;
    gcase g6 = {0, 0, 1, 2, 30, 800, 1024, 0, 0.5f, 1.f, &ep};
    run_case(&g6, "aliasing lda, one A block, many N blocks 30x800x1024");
    gcase g7 = {1, 1, 0, 1, 19, 700, 900, 0, 1.f, 0.f, &ep};
    run_case(&g7, "A transposed, one A block 19x700x900");
    /* A copied, more rows than one A block, swept whole over all of N
     * (ViT's FFN output: 197 x 768 x 3072 scaled down): aliasing and
     * transposed, prepacked and not, one and two threads */
    const size_t before = onr_sgemm_sweep_count();
    gcase g9 = {0, 0, 1, 1, 197, 800, 1024, 0, 1.f, 0.f, &ep};
    run_case(&g9, "aliasing lda, rows swept 197x800x1024");
    gcase g10 = {1, 0, 0, 1, 250, 600, 700, 0, 0.5f, 1.f, &ep};
    run_case(&g10, "A transposed, rows swept 250x600x700");
    gcase g11 = {0, 1, 1, 2, 197, 800, 1024, 0, 1.f, -0.5f, &ep};
    run_case(&g11, "aliasing lda, rows swept, 2 threads 197x800x1024");
    onr_sgemm_blocking bl;
    onr_sgemm_get_blocking(&bl);
    /* (each K block is at most KC: 197 rows of it fit the sweep's half of L2) */
    if (bl.mc < 197 && 197 * (bl.kc + 32) * sizeof(float) <= bl.l2_bytes / 2)
        assert_true(onr_sgemm_sweep_count() - before >= 2);
    /* a few rows past a full tile: the last two row tiles share them */
    gcase g8 = {0, 0, 0, 2, 64, 300, 200, 0, 1.f, -0.5f, &ep};
    run_case(&g8, "row remainder 64x300x200");
}
static void test_large(void **state)
{
    (void)state;
    for_each_kernel(large_kernel);
}

static void epilogue_kernel(void)
{
    const size_t m = 29, n = 45, k = 53;
    float *bc = falloc(n), *br = falloc(m), *r = falloc(m * (n + 3));
    fill(bc, n);
    fill(br, m);
    fill(r, m * (n + 3));
    char what[96];
    for (int act = ONR_ACT_NONE; act <= ONR_ACT_GELU_TANH; act++)
        for (int variant = 0; variant < 8; variant++) {
            onr_gemm_epilogue ep = {0};
            ep.act = (onr_gemm_act)act;
            ep.clip_min = -0.5f;
            ep.clip_max = 0.75f;
            ep.bias_col = (variant & 1) ? bc : NULL;
            ep.bias_row = (variant & 2) ? br : NULL;
            ep.residual = (variant & 4) ? r : NULL;
            ep.ldr = n + 3;
            ep.residual_before_act = variant == 5 || variant == 7;
            for (int packed = 0; packed < 2; packed++) {
                gcase g = {packed, 1 - packed, packed, 1, m, n, k, 0, 1.5f,
                           packed ? 0.f : 0.5f, &ep};
                snprintf(what, sizeof what, "epilogue act=%d variant=%d packed=%d", act, variant,
                         packed);
                run_case(&g, what);
            }
        }
    /* alpha 1, beta 0: the kernels' epilogues from the registers (one
     * bias, a row's or the columns'; Relu, Clip or none; maybe a residual
     * before, or after with none) and the cases next to them that take
     * the general code (a residual after an activation, both biases, no
     * bias), on tiles of every row count and column tails (m 29, n 45),
     * K in one block and in several (then C is added first) */
    const int fast_acts[] = {ONR_ACT_NONE, ONR_ACT_RELU, ONR_ACT_CLIP};
    for (int ai = 0; ai < 3; ai++)
        for (int variant = 0; variant < 8; variant++)
            for (size_t kk = 7; kk <= 1200; kk += 1193) {
                onr_gemm_epilogue ep = {0};
                ep.act = (onr_gemm_act)fast_acts[ai];
                ep.clip_min = -0.5f;
                ep.clip_max = 0.75f;
                ep.bias_row = variant < 3 || variant == 6 ? br : NULL;
                ep.bias_col = variant >= 3 && variant <= 6 ? bc : NULL;
                ep.residual = variant % 3 != 0 && variant < 6 ? r : NULL;
                ep.ldr = n + 3;
                ep.residual_before_act = variant == 1 || variant == 4;
                for (int packed = 0; packed < 2; packed++) {
                    gcase g = {packed, 1 - packed, packed, 1, m, n, kk, 0, 1.f, 0.f, &ep};
                    snprintf(what, sizeof what, "epilogue alpha 1 act=%d variant=%d k=%zu packed=%d",
                             fast_acts[ai], variant, kk, packed);
                    run_case(&g, what);
                }
            }
    /* K == 0: beta*C, then the epilogue */
    onr_gemm_epilogue ep = {bc, br, ONR_ACT_RELU, 0, 0, r, n + 3, 0, 0, 0};
    gcase g = {0, 0, 0, 1, m, n, 0, 2, 1.f, 0.5f, &ep};
    run_case(&g, "epilogue k=0");
    /* activations over a wide input range (values far from the origin) */
    onr_gemm_epilogue ep2 = {0};
    for (int act = ONR_ACT_SIGMOID; act <= ONR_ACT_GELU_TANH; act++) {
        ep2.act = (onr_gemm_act)act;
        gcase g2 = {0, 0, 0, 1, 17, 40, 33, 0, 9.f, 0.f, &ep2};
        run_case(&g2, "epilogue wide range");
    }
    free(bc);
    free(br);
    free(r);
}
static void test_epilogues(void **state)
{
    (void)state;
    for_each_kernel(epilogue_kernel);
}

/* Batched: strides (incl. 0 = broadcast) against per-product references. */
static void batch_kernel(void)
{
    const struct { size_t m, n, k, batch; int bcast_a, bcast_b, ta, tb, threads; } cases[] = {
        {128, 128, 64, 12, 0, 0, 0, 1, 2},  /* attention Q.K^T, across the batch */
        {128, 64, 128, 12, 0, 0, 0, 0, 2},  /* attention P.V */
        {17, 33, 9, 5, 1, 0, 1, 0, 2},      /* A broadcast */
        {31, 20, 70, 3, 0, 1, 0, 1, 1},     /* B broadcast */
        {200, 300, 150, 2, 0, 0, 1, 1, 2},  /* big products: threads inside each */
        {5, 7, 0, 3, 0, 0, 0, 0, 2},        /* K == 0 */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        size_t m = cases[ci].m, n = cases[ci].n, k = cases[ci].k, bt = cases[ci].batch;
        int ta = cases[ci].ta, tb = cases[ci].tb;
        size_t lda = (ta ? m : k) + 1, ldb = (tb ? k : n) + 2, ldc = n + 1;
        size_t sa = cases[ci].bcast_a ? 0 : (ta ? k : m) * lda + 5;
        size_t sb = cases[ci].bcast_b ? 0 : (tb ? n : k) * ldb + 3;
        size_t sc = m * ldc + 7, sr = m * n;
        float *a = falloc(sa * bt + (ta ? k : m) * lda), *b = falloc(sb * bt + (tb ? n : k) * ldb);
        float *c = falloc(sc * bt), *c0 = falloc(sc * bt), *r = falloc(sr * bt), *bias = falloc(n);
        fill(a, sa * bt + (ta ? k : m) * lda);
        fill(b, sb * bt + (tb ? n : k) * ldb);
        fill(c0, sc * bt);
        fill(r, sr * bt);
        fill(bias, n);
        memcpy(c, c0, sc * bt * sizeof(float));
        onr_gemm_epilogue ep = {0};
        ep.bias_col = bias;
        ep.residual = r;
        ep.ldr = n;
        ep.residual_batch_stride = sr;
        ep.act = ONR_ACT_GELU_ERF;
        float beta = ci % 2 ? 0.25f : 0.f;
        void *ws = walloc(onr_sgemm_batch_workspace_size(m, n, k, bt, cases[ci].threads));
        onr_sgemm_batch(ta, tb, m, n, k, 0.5f, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, bt, &ep,
                        ws, cases[ci].threads);
        double *want = malloc((m * n + 1) * sizeof(double)), *tol = malloc((m * n + 1) * sizeof(double));
        for (size_t p = 0; p < bt; p++) {
            onr_gemm_epilogue e = ep;
            e.residual = r + p * sr;
            ref_gemm(ta, tb, m, n, k, 0.5f, a + p * sa, lda, b + p * sb, ldb, beta, c0 + p * sc,
                     ldc, &e, want, tol);
            check(m, n, c + p * sc, ldc, want, tol, "batch");
        }
        /* threads: bit-identical */
        float *c2 = falloc(sc * bt);
        memcpy(c2, c0, sc * bt * sizeof(float));
        onr_sgemm_batch(ta, tb, m, n, k, 0.5f, a, lda, sa, b, ldb, sb, beta, c2, ldc, sc, bt, &ep,
                        ws, 1);
        for (size_t p = 0; p < bt; p++)
            for (size_t i = 0; i < m; i++)
                assert_memory_equal(c + p * sc + i * ldc, c2 + p * sc + i * ldc, n * sizeof(float));
        free(c2);
        free(ws);
        free(want);
        free(tol);
        free(a);
        free(b);
        free(c);
        free(c0);
        free(r);
        free(bias);
    }
}
static void test_batch(void **state)
{
    (void)state;
    for_each_kernel(batch_kernel);
}

/* 1, 2 and 3 threads give bit-identical C, packed and not, whatever tasks
 * the threads claim: shapes that split rows, columns or both, and ones whose
 * B is packed once and shared (few column tiles, many rows: convolution's
 * deep layers, e.g. 512 x 49 x 4608 scaled down). */
static void threads_kernel(void)
{
    const size_t shapes[][3] = {{128, 768, 96}, {197, 130, 400}, {1, 2000, 300}, {700, 64, 50},
                                {64, 64, 2000}, {64, 3001, 64}, {49, 700, 300},
                                {256, 49, 1500},  {300, 196, 700}, {1024, 20, 512},
                                {100, 33, 2100},  {200, 60, 4000}, {197, 300, 1024}};
    onr_gemm_epilogue ep = {0};
    ep.act = ONR_ACT_GELU_TANH;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = falloc(m * k), *b = falloc(k * n), *c1 = falloc(m * n), *c2 = falloc(m * n);
        fill(a, m * k);
        fill(b, k * n);
        void *ws = walloc(onr_sgemm_workspace_size(m, n, k, 3));
        void *pb = walloc(onr_sgemm_pack_b_size(k, n));
        onr_sgemm_pack_b(0, k, n, b, n, pb);
        float *bt = falloc(k * n); /* B^T: the trans_b path packs from it */
        for (size_t p = 0; p < k; p++)
            for (size_t j = 0; j < n; j++) bt[j * k + p] = b[p * n + j];
        /* packed: 0 B as is, 1 prepacked, 2 B^T with trans_b */
        for (int packed = 0; packed < 3; packed++) {
            for (int t = 1; t <= 3; t++) {
                float *c = t == 1 ? c1 : c2;
                if (packed == 1)
                    onr_sgemm_packed(0, m, n, k, 1.f, a, k, pb, 0.f, c, n, &ep, ws, t);
                else if (packed == 2)
                    onr_sgemm(0, 1, m, n, k, 1.f, a, k, bt, k, 0.f, c, n, &ep, ws, t);
                else onr_sgemm(0, 0, m, n, k, 1.f, a, k, b, n, 0.f, c, n, &ep, ws, t);
                if (t > 1) assert_memory_equal(c1, c2, m * n * sizeof(float));
            }
            /* and right: against the double reference */
            double *want = malloc(m * n * sizeof(double)), *tol = malloc(m * n * sizeof(double));
            assert_non_null(want);
            assert_non_null(tol);
            ref_gemm(0, 0, m, n, k, 1.f, a, k, b, n, 0.f, c1, n, &ep, want, tol);
            for (size_t i = 0; i < m * n; i++)
                if (fabs((double)c1[i] - want[i]) > tol[i])
                    fail_msg("%zux%zux%zu packed=%d: C[%zu] = %g, want %g", m, n, k, packed, i,
                             (double)c1[i], want[i]);
            free(want);
            free(tol);
        }
        free(bt);
        free(pb);
        free(ws);
        free(a);
        free(b);
        free(c1);
        free(c2);
    }
}
/* fixed_shape: the columns past a multiple of 16 as dot products along k,
 * against the reference (epilogues, alpha and beta, B read in place,
 * copied or prepacked, K in several blocks); 1 and 3 threads give the same
 * bits; the tail is taken where the kernel has one, and only when asked. */
static void dot_tail_kernel(void)
{
    static const size_t ns[] = {1, 4, 8, 9, 20, 24, 25, 33, 49, 100, 196};
    static const size_t ms[] = {1, 5, 12, 13, 37};
    static const size_t ks[] = {1, 15, 16, 17, 100, 1300};
    char what[160];
    float *bc = falloc(200), *br = falloc(40), *r = falloc(40 * 200);
    fill(bc, 200);
    fill(br, 40);
    fill(r, 40 * 200);
    size_t idx = 0;
    for (size_t in = 0; in < sizeof ns / sizeof *ns; in++)
        for (size_t im = 0; im < sizeof ms / sizeof *ms; im++)
            for (size_t ik = 0; ik < sizeof ks / sizeof *ks; ik++, idx++) {
                size_t m = ms[im], n = ns[in], k = ks[ik];
                if (m * n * k > 2000000) continue; /* keep ASan runs short */
                onr_gemm_epilogue ep = {0};
                ep.fixed_shape = 1;
                switch (idx % 4) {
                case 1: ep.bias_row = br, ep.act = ONR_ACT_RELU, ep.residual = r, ep.ldr = n; break;
                case 2: ep.bias_col = bc, ep.act = ONR_ACT_GELU_TANH; break;
                case 3:
                    ep.act = ONR_ACT_CLIP, ep.clip_min = -0.5f, ep.clip_max = 0.5f;
                    ep.residual = r, ep.ldr = n, ep.residual_before_act = 1;
                    break;
                default: break;
                }
                gcase g = {(int)(idx & 1), (int)((idx >> 1) & 1), idx % 3 == 0, 1, m, n, k,
                           idx % 2 ? 3 : 0, idx % 5 == 0 ? 0.5f : 1.f, idx % 3 == 1 ? 0.75f : 0.f,
                           &ep};
                snprintf(what, sizeof what,
                         "dot tail m=%zu n=%zu k=%zu ta=%d tb=%d packed=%d epi=%zu", m, n, k, g.ta,
                         g.tb, g.packed, idx % 4);
                run_case(&g, what);
            }
    free(bc);
    free(br);
    free(r);

    /* bits at 1 and 3 threads; the tail taken only with fixed_shape */
    const size_t m = 100, n = 196, k = 300;
    float *a = falloc(m * k), *b = falloc(k * n), *c1 = falloc(m * n), *c3 = falloc(m * n);
    fill(a, m * k);
    fill(b, k * n);
    void *ws = walloc(onr_sgemm_workspace_size(m, n, k, 3));
    onr_gemm_epilogue ep = {0};
    ep.fixed_shape = 1;
    const int has_tail = strncmp(onr_sgemm_kernel_name(), "avx512", 6) == 0;
    size_t before = onr_sgemm_tail_count();
    onr_sgemm(0, 0, m, n, k, 1.f, a, k, b, n, 0.f, c1, n, &ep, ws, 1);
    assert_int_equal(onr_sgemm_tail_count() > before, has_tail);
    onr_sgemm(0, 0, m, n, k, 1.f, a, k, b, n, 0.f, c3, n, &ep, ws, 3);
    assert_memory_equal(c1, c3, m * n * sizeof(float));
    ep.fixed_shape = 0;
    before = onr_sgemm_tail_count();
    onr_sgemm(0, 0, m, n, k, 1.f, a, k, b, n, 0.f, c3, n, &ep, ws, 1);
    assert_int_equal(onr_sgemm_tail_count(), before);
    free(ws);
    free(a);
    free(b);
    free(c1);
    free(c3);
}
static void test_dot_tail(void **state)
{
    (void)state;
    for_each_kernel(dot_tail_kernel);
}

/* The K split (two threads, one K block each, the partial product added
 * through the kernel's finishing code): the same bits as one thread and
 * the reference's values, with every kind of epilogue, alpha and beta, A
 * transposed or not, the dot-product tail; taken where expected. */
static void ksplit_kernel(void)
{
    const struct { size_t m, n, k; int fixed, split; } cases[] = {
        {96, 196, 576, 0, 1},  /* two K blocks of 288: split */
        {96, 196, 576, 1, 1},  /* and the tail's 4 columns */
        {64, 196, 384, 1, 1},  /* one K block, two for a fixed shape */
        {64, 196, 384, 0, 0},  /* one K block: no split */
        {40, 100, 1100, 1, 0}, /* three K blocks at two threads: no split */
        {300, 196, 576, 0, 0}, /* rows over half of K: no split */
    };
    const int has_finish = strncmp(onr_sgemm_kernel_name(), "avx512", 6) == 0;
    char what[160];
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++)
        for (int v = 0; v < 4; v++) {
            const size_t m = cases[ci].m, n = cases[ci].n, k = cases[ci].k;
            const int ta = v & 1;
            const float alpha = v == 2 ? 0.5f : 1.f, beta = v >= 2 ? 0.75f : 0.f;
            float *a = falloc(m * k), *b = falloc(k * n), *c0 = falloc(m * n);
            float *c1 = falloc(m * n), *c2 = falloc(m * n), *r = falloc(m * n);
            float *bc = falloc(n), *br = falloc(m);
            fill(a, m * k), fill(b, k * n), fill(c0, m * n), fill(r, m * n);
            fill(bc, n), fill(br, m);
            onr_gemm_epilogue ep = {0};
            ep.fixed_shape = cases[ci].fixed;
            if (v == 1) ep.bias_row = br, ep.act = ONR_ACT_RELU, ep.residual = r, ep.ldr = n;
            if (v == 2) ep.bias_col = bc, ep.act = ONR_ACT_GELU_ERF;
            if (v == 3) {
                ep.act = ONR_ACT_CLIP, ep.clip_min = -0.3f, ep.clip_max = 0.4f;
                ep.residual = r, ep.ldr = n, ep.residual_before_act = 1;
            }
            const size_t lda = ta ? m : k;
            void *ws = walloc(onr_sgemm_workspace_size(m, n, k, 2));
            memcpy(c1, c0, m * n * sizeof(float));
            memcpy(c2, c0, m * n * sizeof(float));
            onr_sgemm(ta, 0, m, n, k, alpha, a, lda, b, n, beta, c1, n, &ep, ws, 1);
            onr_team_reset(); /* two threads now, not one after a back-off */
            const size_t before = onr_sgemm_ksplit_count();
            onr_sgemm(ta, 0, m, n, k, alpha, a, lda, b, n, beta, c2, n, &ep, ws, 2);
            snprintf(what, sizeof what, "k split m=%zu n=%zu k=%zu fixed=%d variant=%d", m, n, k,
                     cases[ci].fixed, v);
            if ((onr_sgemm_ksplit_count() > before) != (has_finish && cases[ci].split))
                fail_msg("%s: split taken %d, expected %d (kernel %s)", what,
                         onr_sgemm_ksplit_count() > before, has_finish && cases[ci].split,
                         onr_sgemm_kernel_name());
            assert_memory_equal(c1, c2, m * n * sizeof(float));
            double *want = malloc(m * n * sizeof(double)), *tol = malloc(m * n * sizeof(double));
            ref_gemm(ta, 0, m, n, k, alpha, a, lda, b, n, beta, c0, n, &ep, want, tol);
            check(m, n, c2, n, want, tol, what);
            free(want), free(tol), free(ws);
            free(a), free(b), free(c0), free(c1), free(c2), free(r), free(bc), free(br);
        }
}
static void test_ksplit(void **state)
{
    (void)state;
    for_each_kernel(ksplit_kernel);
}

static void test_threads(void **state)
{
    (void)state;
    for_each_kernel(threads_kernel);
}

/* A raised cancel flag stops a product at its next block: with the flag
 * up before the call nothing of C is written, at 1 and 2 threads; lowered
 * again, the same call computes C. */
static void test_cancel(void **state)
{
    (void)state;
    const size_t m = 300, n = 700, k = 900;
    float *a = falloc(m * k), *b = falloc(k * n), *c = falloc(m * n), *want = falloc(m * n);
    fill(a, m * k);
    fill(b, k * n);
    void *ws = aligned_alloc(64, (onr_sgemm_workspace_size(m, n, k, 2) + 63) / 64 * 64);
    assert_non_null(ws);
    onr_sgemm(0, 0, m, n, k, 1, a, k, b, n, 0, want, n, NULL, ws, 1);
    _Atomic int flag = 1;
    for (int t = 1; t <= 2; t++) {
        for (size_t i = 0; i < m * n; i++) c[i] = -7;
        assert_null(onr_sgemm_set_cancel(&flag));
        onr_sgemm(0, 0, m, n, k, 1, a, k, b, n, 0, c, n, NULL, ws, t);
        for (size_t i = 0; i < m * n; i++)
            if (c[i] != -7) fail_msg("%d threads: C[%zu] written after the cancel", t, i);
        flag = 0;
        onr_sgemm(0, 0, m, n, k, 1, a, k, b, n, 0, c, n, NULL, ws, t);
        assert_true(onr_sgemm_set_cancel(NULL) == &flag);
        assert_memory_equal(c, want, m * n * sizeof(float));
        flag = 1;
    }
    free(ws);
    free(a);
    free(b);
    free(c);
    free(want);
}

/* onr_sgemm_gen: B generated block by block gives the same C as onr_sgemm
 * on that B, bit for bit, at 1, 2 and 3 threads (tasks, shared B) and on
 * the NULL-workspace path; the generator is asked only for blocks inside B. */
typedef struct gen_b {
    const float *b;
    size_t ldb, k, n;
    int out_of_range;
} gen_b;

static void gen_from_b(void *ctx, size_t p0, size_t kc, size_t j0, size_t nc, float *dst,
                       size_t ldd)
{
    gen_b *g = ctx;
    if (p0 + kc > g->k || j0 + nc > g->n || nc > ldd) {
        g->out_of_range = 1; /* one thread at a time never matters: only ever set */
        return;
    }
    for (size_t k = 0; k < kc; k++)
        memcpy(dst + k * ldd, g->b + (p0 + k) * g->ldb + j0, nc * sizeof(float));
}

static void gen_kernel(void)
{
    const size_t shapes[][3] = {{64, 3136 / 4, 576 / 4}, {256, 49, 1500}, {5, 300, 77},
                                {100, 33, 2100},         {1, 1, 1},       {37, 200, 0}};
    onr_gemm_epilogue ep = {0};
    ep.act = ONR_ACT_RELU;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = falloc(m * k), *b = falloc(k * n), *want = falloc(m * n), *c = falloc(m * n);
        float *bias = falloc(m);
        fill(a, m * k);
        fill(b, k * n);
        fill(bias, m);
        ep.bias_row = bias;
        void *ws = walloc(onr_sgemm_workspace_size(m, n, k, 3));
        gen_b g = {b, n, k, n, 0};
        for (int t = 1; t <= 3; t++) {
            fill(want, m * n);
            memcpy(c, want, m * n * sizeof(float));
            onr_sgemm(0, 0, m, n, k, 1.f, a, k, b, n, 0.5f, want, n, &ep, ws, t);
            onr_sgemm_gen(0, m, n, k, 1.f, a, k, gen_from_b, &g, 0.5f, c, n, &ep, ws, t);
            assert_memory_equal(want, c, m * n * sizeof(float));
        }
        if (m * n * k < 100000) { /* the unpacked path */
            fill(want, m * n);
            memcpy(c, want, m * n * sizeof(float));
            onr_sgemm(0, 0, m, n, k, 1.f, a, k, b, n, 0.5f, want, n, &ep, NULL, 1);
            onr_sgemm_gen(0, m, n, k, 1.f, a, k, gen_from_b, &g, 0.5f, c, n, &ep, NULL, 1);
            assert_memory_equal(want, c, m * n * sizeof(float));
        }
        assert_int_equal(g.out_of_range, 0);
        free(ws);
        free(bias);
        free(a);
        free(b);
        free(want);
        free(c);
    }
}
static void test_gen(void **state)
{
    (void)state;
    for_each_kernel(gen_kernel);
}

/* NaN and Inf in A or B propagate (no skipping of zeros). */
static void nan_kernel(void)
{
    const size_t m = 20, n = 40, k = 35;
    for (int packed = 0; packed < 2; packed++) {
        float *a = falloc(m * k), *b = falloc(k * n), *c = falloc(m * n);
        fill(a, m * k);
        fill(b, k * n);
        a[3 * k + 7] = NAN;          /* row 3 of C: all NaN */
        b[11 * n + 33] = INFINITY;   /* column 33: +-Inf ... */
        for (size_t i = 0; i < m; i++) a[i * k + 11] = (i == 5) ? 0.f : 1.f; /* ... 0*Inf = NaN in row 5 */
        b[2 * n + 17] = NAN;         /* column 17: all NaN (times A's col 2) */
        for (size_t i = 0; i < m; i++) a[i * k + 2] = 0.f;
        void *ws = walloc(onr_sgemm_workspace_size(m, n, k, 1));
        void *pb = walloc(onr_sgemm_pack_b_size(k, n));
        onr_sgemm_pack_b(0, k, n, b, n, pb);
        if (packed) onr_sgemm_packed(0, m, n, k, 1.f, a, k, pb, 0.f, c, n, NULL, ws, 1);
        else onr_sgemm(0, 0, m, n, k, 1.f, a, k, b, n, 0.f, c, n, NULL, ws, 1);
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                float v = c[i * n + j];
                if (i == 3 || j == 17 || (i == 5 && j == 33)) assert_true(isnan(v));
                else if (j == 33) assert_true(isinf(v));
                else assert_true(isfinite(v));
            }
        free(pb);
        free(ws);
        free(a);
        free(b);
        free(c);
    }
}
static void test_nan_inf(void **state)
{
    (void)state;
    for_each_kernel(nan_kernel);
}

/* Buffers that end exactly where an unmapped page begins. */
typedef struct guarded {
    char *map;
    size_t len;
    float *p;
} guarded;
static guarded guard_alloc(size_t nfloats)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), bytes = nfloats * sizeof(float);
    size_t data_pages = (bytes + pg - 1) / pg + 1;
    guarded g;
    g.len = (data_pages + 1) * pg;
    g.map = mmap(NULL, g.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g.map != MAP_FAILED);
    assert_int_equal(mprotect(g.map + data_pages * pg, pg, PROT_NONE), 0);
    g.p = (float *)(g.map + data_pages * pg - bytes);
    return g;
}
static void guard_free(guarded g) { munmap(g.map, g.len); }

static void tail_kernel(void)
{
    for (size_t n = 1; n <= 40; n++)
        for (int t = 0; t < 4; t++) {
            size_t m = 1 + (n * 7 + (size_t)t) % 14, k = 1 + (n * 5) % 19;
            int ta = t & 1, tb = t >> 1;
            guarded A = guard_alloc(m * k), B = guard_alloc(k * n), C = guard_alloc(m * n);
            guarded R = guard_alloc(m * n), BC = guard_alloc(n), BR = guard_alloc(m);
            fill(A.p, m * k);
            fill(B.p, k * n);
            fill(C.p, m * n);
            fill(R.p, m * n);
            fill(BC.p, n);
            fill(BR.p, m);
            onr_gemm_epilogue ep = {BC.p, BR.p, ONR_ACT_SILU, 0, 0, R.p, n, t & 1, 0, (int)(n & 1)};
            double *want = malloc(m * n * sizeof(double)), *tol = malloc(m * n * sizeof(double));
            ref_gemm(ta, tb, m, n, k, 1.f, A.p, ta ? m : k, B.p, tb ? k : n, 0.5f, C.p, n, &ep,
                     want, tol);
            void *ws = walloc(onr_sgemm_workspace_size(m, n, k, 1));
            onr_sgemm(ta, tb, m, n, k, 1.f, A.p, ta ? m : k, B.p, tb ? k : n, 0.5f, C.p, n, &ep, ws,
                      1);
            check(m, n, C.p, n, want, tol, "tail");
            /* the packed path with beta = 0 and no epilogue */
            guarded PB = guard_alloc(onr_sgemm_pack_b_size(k, n) / sizeof(float));
            onr_sgemm_pack_b(tb, k, n, B.p, tb ? k : n, PB.p);
            onr_sgemm_packed(ta, m, n, k, 1.f, A.p, ta ? m : k, PB.p, 0.f, C.p, n, NULL, ws, 1);
            guard_free(PB);
            free(ws);
            free(want);
            free(tol);
            guard_free(A);
            guard_free(B);
            guard_free(C);
            guard_free(R);
            guard_free(BC);
            guard_free(BR);
        }
}
static void test_tails_guard_page(void **state)
{
    (void)state;
    for_each_kernel(tail_kernel);
}

/* B packed for one kernel, multiplied after another was forced. */
static void test_packed_other_kernel(void **state)
{
    (void)state;
    const size_t m = 37, n = 70, k = 41;
    for (size_t p = 0; p < 3; p++)
        for (size_t q = 0; q < 3; q++) {
            if (onr_sgemm_force_kernel(g_isas[p]) != 0 || onr_sgemm_force_kernel(g_isas[q]) != 0)
                continue;
            float *a = falloc(m * k), *b = falloc(k * n), *c = falloc(m * n);
            fill(a, m * k);
            fill(b, k * n);
            onr_sgemm_force_kernel(g_isas[p]);
            void *pb = walloc(onr_sgemm_pack_b_size(k, n));
            onr_sgemm_pack_b(1, k, n, b, k, pb);
            onr_sgemm_force_kernel(g_isas[q]);
            void *ws = walloc(onr_sgemm_workspace_size(m, n, k, 2));
            onr_sgemm_packed(0, m, n, k, 1.f, a, k, pb, 0.f, c, n, NULL, ws, 2);
            double *want = malloc(m * n * sizeof(double)), *tol = malloc(m * n * sizeof(double));
            ref_gemm(0, 1, m, n, k, 1.f, a, k, b, k, 0.f, c, n, NULL, want, tol);
            check(m, n, c, n, want, tol, "packed for another kernel");
            free(want);
            free(tol);
            free(ws);
            free(pb);
            free(a);
            free(b);
            free(c);
        }
    onr_sgemm_force_kernel(NULL);
}

/* No workspace: the slow path still computes the right thing. */
static void test_null_workspace(void **state)
{
    (void)state;
    const size_t m = 9, n = 21, k = 13;
    float *a = falloc(m * k), *b = falloc(k * n), *c = falloc(m * n);
    fill(a, m * k);
    fill(b, k * n);
    double *want = malloc(m * n * sizeof(double)), *tol = malloc(m * n * sizeof(double));
    ref_gemm(0, 0, m, n, k, 2.f, a, k, b, n, 0.f, c, n, NULL, want, tol);
    onr_sgemm(0, 0, m, n, k, 2.f, a, k, b, n, 0.f, c, n, NULL, NULL, 2);
    check(m, n, c, n, want, tol, "null workspace");
    free(want);
    free(tol);
    free(a);
    free(b);
    free(c);
}

/* onr_sgemm_packed_cols: the columns split in runs of whole panels give C
 * bit for bit as the whole product (with bias, residual and activation);
 * without a workspace, and with K = 0, the range matches the reference and
 * no other column of C is written. */
static void packed_cols_kernel(void)
{
    const size_t m = 37, n = 150, ks[2] = {70, 0};
    for (int ki = 0; ki < 2; ki++) {
        const size_t k = ks[ki];
        float *a = falloc(m * k), *b = falloc(k * n), *c = falloc(m * n), *c1 = falloc(m * n);
        float *bias = falloc(n), *r = falloc(m * n);
        fill(a, m * k), fill(b, k * n), fill(bias, n), fill(r, m * n);
        onr_gemm_epilogue ep = {0};
        ep.bias_col = bias, ep.residual = r, ep.ldr = n, ep.act = ONR_ACT_SIGMOID;
        void *pb = walloc(onr_sgemm_pack_b_size(k, n)), *ws = walloc(onr_sgemm_workspace_size(m, n, k, 1));
        onr_sgemm_pack_b(0, k, n, b, n, pb);
        const size_t w = onr_sgemm_packed_width(pb);
        assert_true(w >= 1);
        onr_sgemm_packed(0, m, n, k, 1.f, a, k, pb, 0.f, c1, n, &ep, ws, 1);
        double *want = malloc(m * n * sizeof(double)), *tol = malloc(m * n * sizeof(double));
        assert_non_null(want), assert_non_null(tol);
        ref_gemm(0, 0, m, n, k, 1.f, a, k, b, n, 0.f, c1, n, &ep, want, tol);
        check(m, n, c1, n, want, tol, "packed_cols: whole product");
        for (int no_ws = 0; no_ws < 2; no_ws++) {
            for (size_t i = 0; i < m * n; i++) c[i] = -7.f;
            /* runs of 1, 2, ... panels; the last one past n is clipped */
            for (size_t n0 = 0, run = 1; n0 < n; n0 += run * w, run++)
                onr_sgemm_packed_cols(0, m, n, n0, n0 + run * w, k, 1.f, a, k, pb, 0.f, c, n, &ep,
                                      no_ws ? NULL : ws);
            if (no_ws) check(m, n, c, n, want, tol, "packed_cols: no workspace");
            else assert_memory_equal(c, c1, m * n * sizeof(float));
        }
        /* one range alone: the other columns untouched */
        for (size_t i = 0; i < m * n; i++) c[i] = -7.f;
        onr_sgemm_packed_cols(0, m, n, w, 2 * w, k, 1.f, a, k, pb, 0.f, c, n, &ep, ws);
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                if ((j < w || j >= 2 * w) && c[i * n + j] != -7.f)
                    fail_msg("packed_cols k=%zu: C[%zu,%zu] outside [%zu, %zu) written", k, i, j, w,
                             2 * w);
                else if (j >= w && j < 2 * w && c[i * n + j] != c1[i * n + j])
                    fail_msg("packed_cols k=%zu: C[%zu,%zu] differs from the whole product", k, i, j);
        free(want), free(tol), free(pb), free(ws);
        free(a), free(b), free(c), free(c1), free(bias), free(r);
    }
}

static void test_packed_cols(void **state)
{
    (void)state;
    for_each_kernel(packed_cols_kernel);
}

/* onr_sgemm_packed_cols_k: rows [k0, k0 + k) of a packed B give C bit for
 * bit as those rows packed alone (A of k columns, with a row stride wider
 * than k), with and without a workspace; summed run by run (beta 1) over
 * all of B's rows, the reference product; a range past B's rows does
 * nothing. */
static void packed_cols_k_kernel(void)
{
    const size_t m = 29, n = 70, K = 90, lda = 100;
    float *a = falloc(m * lda), *b = falloc(K * n), *c = falloc(m * n), *c1 = falloc(m * n);
    float *bias = falloc(n);
    fill(a, m * lda), fill(b, K * n), fill(bias, n);
    onr_gemm_epilogue ep = {0};
    ep.bias_col = bias, ep.act = ONR_ACT_RELU;
    void *pb = walloc(onr_sgemm_pack_b_size(K, n)), *pk = walloc(onr_sgemm_pack_b_size(K, n));
    void *ws = walloc(onr_sgemm_workspace_size(m, n, K, 1));
    onr_sgemm_pack_b(0, K, n, b, n, pb);
    const size_t w = onr_sgemm_packed_width(pb);
    const size_t runs[][2] = {{0, 90}, {0, 17}, {17, 40}, {57, 33}, {89, 1}};
    for (size_t ri = 0; ri < sizeof runs / sizeof runs[0]; ri++) {
        const size_t k0 = runs[ri][0], k = runs[ri][1];
        onr_sgemm_pack_b(0, k, n, b + k0 * n, n, pk);
        onr_sgemm_packed_cols(0, m, n, 0, n, k, 1.f, a + k0, lda, pk, 0.f, c1, n, &ep, ws);
        for (int no_ws = 0; no_ws < 2; no_ws++) {
            for (size_t i = 0; i < m * n; i++) c[i] = -7.f;
            onr_sgemm_packed_cols_k(m, n, 0, w, k0, k, 1.f, a + k0, lda, pb, 0.f, c, n, &ep,
                                    no_ws ? NULL : ws);
            onr_sgemm_packed_cols_k(m, n, w, n, k0, k, 1.f, a + k0, lda, pb, 0.f, c, n, &ep,
                                    no_ws ? NULL : ws);
            if (!no_ws) assert_memory_equal(c, c1, m * n * sizeof(float));
            else
                for (size_t i = 0; i < m * n; i++)
                    if (!(fabsf(c[i] - c1[i]) <= 1e-4f * (1.f + fabsf(c1[i]))))
                        fail_msg("packed_cols_k rows %zu+%zu, no workspace: C[%zu] %g, want %g", k0,
                                 k, i, c[i], c1[i]);
        }
    }
    /* B's rows in three runs, summed onto C, the epilogue with the last */
    double *want = malloc(m * n * sizeof(double)), *tol = malloc(m * n * sizeof(double));
    assert_non_null(want), assert_non_null(tol);
    ref_gemm(0, 0, m, n, K, 1.f, a, lda, b, n, 0.f, c1, n, &ep, want, tol);
    onr_sgemm_packed_cols_k(m, n, 0, n, 0, 30, 1.f, a, lda, pb, 0.f, c, n, NULL, ws);
    onr_sgemm_packed_cols_k(m, n, 0, n, 30, 45, 1.f, a + 30, lda, pb, 1.f, c, n, NULL, ws);
    onr_sgemm_packed_cols_k(m, n, 0, n, 75, 15, 1.f, a + 75, lda, pb, 1.f, c, n, &ep, ws);
    check(m, n, c, n, want, tol, "packed_cols_k: runs summed");
    /* past B's rows: nothing written */
    for (size_t i = 0; i < m * n; i++) c[i] = -7.f;
    onr_sgemm_packed_cols_k(m, n, 0, n, 80, 11, 1.f, a, lda, pb, 0.f, c, n, NULL, ws);
    onr_sgemm_packed_cols_k(m, n, 0, n, 91, 0, 1.f, a, lda, pb, 0.f, c, n, NULL, ws);
    for (size_t i = 0; i < m * n; i++)
        if (c[i] != -7.f) fail_msg("packed_cols_k past B's rows wrote C[%zu]", i);
    free(want), free(tol), free(pb), free(pk), free(ws);
    free(a), free(b), free(c), free(c1), free(bias);
}

static void test_packed_cols_k(void **state)
{
    (void)state;
    for_each_kernel(packed_cols_k_kernel);
}

/* The AVX-512 kernels prefetch the next block of an A read in place while
 * the block before it runs: a batch of products (Winograd's 36 positions:
 * contiguous A, one K block), a product of several row blocks and one of
 * several K blocks (rows apart: A's row stride wider than the block) each
 * hand the next block over whole, and the results stay those of the
 * reference. */
static void test_ahead(void **state)
{
    (void)state;
    if (onr_sgemm_force_kernel("avx512") != 0) {
        printf("  (no AVX-512 kernel here: nothing prefetches, skipped)\n");
        return;
    }
    /* the shapes follow this machine's blocking (KC and MC come from its
     * cache sizes): 3 K blocks is 3 KC less a little, more rows than MC
     * are several row blocks */
    onr_sgemm_blocking bl;
    onr_sgemm_get_blocking(&bl);
    const size_t k3 = 3 * bl.kc - 40, m2 = bl.mc + bl.mc / 2, m3 = 2 * bl.mc + 40;
    const struct { size_t m, n, k, lda, batch, want; } cases[] = {
        {m2, 16, 256, 256, 6, 6 + 5}, /* 2 row blocks a product, then the next product's first */
        {96, 64, k3, k3, 1, 2},       /* 3 K blocks of 96 contiguous rows */
        {m3, 40, 300, 310, 1, 2},     /* 3 row blocks, rows 310 floats apart */
    };
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        size_t m = cases[t].m, n = cases[t].n, k = cases[t].k, lda = cases[t].lda, nb = cases[t].batch;
        float *a = falloc(nb * m * lda), *b = falloc(nb * k * n), *c = falloc(nb * m * n);
        fill(a, nb * m * lda);
        fill(b, nb * k * n);
        void *ws = walloc(onr_sgemm_batch_workspace_size(m, n, k, nb, 1));
        size_t before = onr_sgemm_ahead_count();
        onr_sgemm_batch(0, 0, m, n, k, 1.f, a, lda, m * lda, b, n, k * n, 0.f, c, n, m * n, nb,
                        NULL, ws, 1);
        size_t got = onr_sgemm_ahead_count() - before;
        if (got < cases[t].want)
            fail_msg("%zux%zux%zu lda %zu batch %zu: %zu blocks prefetched whole, want %zu", m, n,
                     k, lda, nb, got, cases[t].want);
        double *want = malloc(m * n * sizeof(double)), *tol = malloc(m * n * sizeof(double));
        assert_non_null(want);
        assert_non_null(tol);
        for (size_t p = 0; p < nb; p++) {
            ref_gemm(0, 0, m, n, k, 1.f, a + p * m * lda, lda, b + p * k * n, n, 0.f,
                     c + p * m * n, n, NULL, want, tol);
            for (size_t i = 0; i < m * n; i++)
                if (fabs((double)c[p * m * n + i] - want[i]) > tol[i])
                    fail_msg("case %zu product %zu: C[%zu] = %g, want %g", t, p, i,
                             (double)c[p * m * n + i], want[i]);
        }
        free(want);
        free(tol);
        free(ws);
        free(a);
        free(b);
        free(c);
    }
    onr_sgemm_force_kernel(NULL);
}

static void test_dispatch(void **state)
{
    (void)state;
    assert_int_equal(onr_sgemm_force_kernel("ref"), 0);
    assert_string_equal(onr_sgemm_kernel_name(), "ref-4x16");
    assert_int_not_equal(onr_sgemm_force_kernel("no-such-kernel"), 0);
    assert_int_equal(onr_sgemm_force_kernel(NULL), 0);
    onr_sgemm_blocking bl;
    onr_sgemm_get_blocking(&bl);
    assert_true(bl.mr >= 1 && bl.nr >= 1 && bl.kc >= 64 && bl.nc >= bl.nr && bl.mc >= bl.mr);
    assert_true(bl.mc % bl.mr == 0 && bl.nc % bl.nr == 0);
    printf("  kernel %s, MRxNR %zux%zu, MC %zu KC %zu NC %zu (L1d %zu, L2 %zu)\n",
           onr_sgemm_kernel_name(), bl.mr, bl.nr, bl.mc, bl.kc, bl.nc, bl.l1d_bytes, bl.l2_bytes);
}


/* ---- AMX (weights packed with ONR_PACK_AMX) ---------------------------- */

/* values with all 24 bits of their significand in use (fill's have 16:
 * the AMX terms past the second would be zero) */
static void fill_full(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = frand() * (1.0f + 0.001f * frand());
}

/* c = op(A) B through weights packed for AMX, at 1 thread, then at 2 and 3
 * (bit-identical); returns the packed weights (caller frees). */
static void *amx_product(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                         const float *a, const float *b, float beta, float *c,
                         const onr_gemm_epilogue *ep, const float *c0)
{
    const size_t lda = ta ? m : k, ldb = tb ? k : n;
    void *pb = walloc(onr_sgemm_pack_b_size_ex(k, n, ONR_PACK_AMX));
    onr_sgemm_pack_b_ex(tb, k, n, b, ldb, pb, ONR_PACK_AMX);
    void *ws = walloc(onr_sgemm_workspace_size_ex(m, n, k, 3, ONR_PACK_AMX));
    float *c2 = falloc(m * n);
    for (int t = 1; t <= 3; t++) {
        float *dst = t == 1 ? c : c2;
        memcpy(dst, c0, m * n * sizeof(float));
        onr_team_reset();
        const size_t before = onr_sgemm_amx_count();
        onr_sgemm_packed(ta, m, n, k, alpha, a, lda, pb, beta, dst, n, ep, ws, t);
        if ((onr_sgemm_amx_count() > before) != (m >= 64))
            fail_msg("amx %zux%zux%zu: AMX taken %d, expected %d", m, n, k,
                     onr_sgemm_amx_count() > before, m >= 64);
        if (t > 1 && memcmp(c, c2, m * n * sizeof(float)) != 0)
            fail_msg("amx %zux%zux%zu: %d threads differ from 1", m, n, k, t);
    }
    free(c2);
    free(ws);
    return pb;
}

/* Products on AMX: every edge of the 32 x 32 blocks, of K steps and of the
 * tasks (row parts of 256, column chunks of 128), A and B transposed or
 * not, alpha and beta, each kind of epilogue: as accurate as float32 (the
 * float32 kernels' bound against a double reference), the same bits at
 * every thread count, and taken only where weights were packed for it
 * (and for 64 rows or more: the last two shapes run on the float32
 * kernels). */
static void test_amx_products(void **state)
{
    (void)state;
    if (onr_sgemm_force_kernel("amx") != 0) {
        printf("  (no AMX here: skipped)\n");
        return;
    }
    const size_t shapes[][3] = {{64, 1, 1},   {65, 7, 3},    {96, 33, 31},  {64, 32, 32},
                                {97, 65, 97}, {64, 128, 64}, {128, 300, 768}, {97, 130, 1000},
                                {300, 64, 70}, {64, 160, 200}, {140, 257, 33}, {1, 160, 200},
                                {63, 40, 50}, {80, 48, 64},   {113, 40, 96}, {70, 50, 40}};
    char what[160];
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (int v = 0; v < 4; v++) {
            const size_t m = shapes[si][0], n = shapes[si][1], k = shapes[si][2];
            const int ta = v == 1 || v == 3, tb = v >= 2;
            const float alpha = v == 2 ? 0.5f : 1.f, beta = v == 3 ? 0.75f : 0.f;
            float *a = falloc(m * k), *b = falloc(k * n), *c0 = falloc(m * n), *c = falloc(m * n);
            float *r = falloc(m * n), *bc = falloc(n), *br = falloc(m);
            fill_full(a, m * k), fill_full(b, k * n);
            fill(c0, m * n), fill(r, m * n), fill(bc, n), fill(br, m);
            onr_gemm_epilogue ep = {0};
            if (v == 1) ep.bias_row = br, ep.act = ONR_ACT_RELU, ep.residual = r, ep.ldr = n;
            if (v == 2) ep.bias_col = bc, ep.act = ONR_ACT_GELU_ERF;
            if (v == 3) {
                ep.act = ONR_ACT_CLIP, ep.clip_min = -0.3f, ep.clip_max = 0.4f;
                ep.residual = r, ep.ldr = n, ep.residual_before_act = 1;
            }
            const size_t lda = ta ? m : k, ldb = tb ? k : n;
            void *pb = amx_product(ta, tb, m, n, k, alpha, a, b, beta, c, v ? &ep : NULL, c0);
            assert_true(onr_sgemm_packed_is_amx(pb));
            double *want = malloc(m * n * sizeof(double)), *tol = malloc(m * n * sizeof(double));
            assert_non_null(want), assert_non_null(tol);
            ref_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c0, n, v ? &ep : NULL, want, tol);
            snprintf(what, sizeof what, "amx m=%zu n=%zu k=%zu variant=%d", m, n, k, v);
            check(m, n, c, n, want, tol, what);
            /* the same weights with AMX off, and with no workspace */
            assert_int_equal(onr_sgemm_force_kernel("avx512"), 0);
            void *ws = walloc(onr_sgemm_workspace_size_ex(m, n, k, 2, ONR_PACK_AMX));
            for (int nows = 0; nows < 2; nows++) {
                memcpy(c, c0, m * n * sizeof(float));
                onr_sgemm_packed(ta, m, n, k, alpha, a, lda, pb, beta, c, n, v ? &ep : NULL,
                                 nows ? NULL : ws, 2);
                snprintf(what, sizeof what, "amx weights, amx off, m=%zu n=%zu k=%zu variant=%d ws=%d",
                         m, n, k, v, !nows);
                check(m, n, c, n, want, tol, what);
            }
            assert_int_equal(onr_sgemm_force_kernel("amx"), 0);
            free(ws), free(want), free(tol), free(pb);
            free(a), free(b), free(c0), free(c), free(r), free(bc), free(br);
        }
    /* without the flag: float32 panels */
    float *b = falloc(64 * 64);
    fill(b, 64 * 64);
    void *pb = walloc(onr_sgemm_pack_b_size(64, 64));
    onr_sgemm_pack_b(0, 64, 64, b, 64, pb);
    assert_false(onr_sgemm_packed_is_amx(pb));
    free(pb), free(b);
    onr_sgemm_force_kernel(NULL);
}

/* Weights as A packed for AMX (a convolution's): products against B read
 * in place, every kind of epilogue, beta, at 1-3 threads (the same bits;
 * the threads sharing B' or each packing its own columns'),
 * against the double reference; a B holding a non-finite value, or AMX
 * off, returns nonzero (C untouched where beta is not 0); no pack without
 * AMX. */
/* onr_sgemm_unpack_a gives back each value onr_sgemm_pack_a split: bit for
 * bit from 2^-110 up (both signs, every exponent to 2^100, zeros of either
 * sign), within 1e-33 below; as A and as op(A) of a transposed A, 70 x 77
 * (blocks of rows and K steps cut short). */
static void test_amx_unpack_a(void **state)
{
    (void)state;
    if (onr_sgemm_force_kernel("amx") != 0) {
        printf("  (no AMX here: skipped)\n");
        return;
    }
    enum { M = 70, K = 77 };
    float *a = malloc(sizeof(float) * M * K), *at = malloc(sizeof(float) * M * K);
    float *back = malloc(sizeof(float) * M * K);
    void *pk = malloc(onr_sgemm_pack_a_size(M, K));
    assert_true(a && at && back && pk);
    uint32_t s = 12345;
    for (int i = 0; i < M * K; i++) {
        s = s * 1664525u + 1013904223u;
        float m = (float)((s >> 8) & 0xFFFF) / 65536.f + 0.5f;
        int e = (int)((s >> 24) % 240) - 140; /* 2^-140 .. 2^99 */
        a[i] = ldexpf(s & 1 ? -m : m, e);
    }
    a[0] = 0.f, a[1] = -0.f, a[K] = 1.f, a[M * K - 1] = -3.0e38f;
    for (int t = 0; t < 2; t++) {
        if (t) /* A stored K x M: op(A) is the same matrix */
            for (int i = 0; i < M; i++)
                for (int k = 0; k < K; k++) at[k * M + i] = a[i * K + k];
        assert_int_equal(onr_sgemm_pack_a(t, M, K, t ? at : a, t ? M : K, pk), 0);
        onr_sgemm_unpack_a(pk, back, K);
        for (int i = 0; i < M * K; i++) {
            if (fabsf(a[i]) >= 0x1p-110f) {
                if (memcmp(&back[i], &a[i], sizeof(float)) != 0)
                    fail_msg("value %d: %a came back as %a", i, (double)a[i], (double)back[i]);
            } else if (!(fabsf(back[i] - a[i]) <= 1e-33f)) {
                fail_msg("value %d: %a came back as %a", i, (double)a[i], (double)back[i]);
            }
        }
    }
    onr_sgemm_force_kernel(NULL);
    free(a), free(at), free(back), free(pk);
}

static void test_amx_packed_a(void **state)
{
    (void)state;
    if (onr_sgemm_force_kernel("amx") != 0) {
        printf("  (no AMX here: skipped)\n");
        return;
    }
    /* 800 columns: 25 blocks, enough for each of 2 and 3 threads to pack
     * and run its own (run_amx's by_cols, with beta 1). With beta 0 the
     * threads split by blocks (amx_stream_share), 96 x 196: 7 column
     * blocks of 3 row blocks, split inside a column block at 2 and 3
     * threads, 160 x 49 one of 5; or by rows (amx_rows_own) at 576 x 49
     * (18 row blocks) and 576 x 200 (in two column parts) */
    const size_t shapes[][3] = {{96, 49, 64},   {130, 196, 100}, {256, 300, 512}, {33, 1, 31},
                                {100, 800, 70}, {96, 196, 576},  {160, 49, 960},  {576, 49, 96},
                                {576, 200, 80}};
    char what[160];
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (int v = 0; v < 3; v++) {
            const size_t m = shapes[si][0], n = shapes[si][1], k = shapes[si][2], ldb = n + 3;
            float *a = falloc(m * k), *b = falloc(k * ldb), *c0 = falloc(m * n), *c = falloc(m * n);
            float *c2 = falloc(m * n), *r = falloc(m * n), *br = falloc(m);
            fill_full(a, m * k), fill_full(b, k * ldb), fill(c0, m * n), fill(r, m * n), fill(br, m);
            onr_gemm_epilogue ep = {0};
            ep.bias_row = br;
            if (v == 1) ep.act = ONR_ACT_RELU, ep.residual = r, ep.ldr = n;
            if (v == 2) ep.act = ONR_ACT_CLIP, ep.clip_min = -0.3f, ep.clip_max = 0.4f;
            const float beta = v == 2 ? 1.f : 0.f;
            void *pa = walloc(onr_sgemm_pack_a_size(m, k));
            assert_int_equal(onr_sgemm_pack_a(0, m, k, a, k, pa), 0);
            void *ws = walloc(onr_sgemm_packed_a_workspace_size(m, n, k, 3));
            for (int t = 1; t <= 3; t++) {
                float *dst = t == 1 ? c : c2;
                memcpy(dst, c0, m * n * sizeof(float));
                onr_team_reset();
                assert_int_equal(onr_sgemm_packed_a(m, n, k, 1.f, pa, b, ldb, beta, dst, n, &ep, ws, t), 0);
                if (t > 1) assert_memory_equal(c, c2, m * n * sizeof(float));
            }
            double *want = malloc(m * n * sizeof(double)), *tol = malloc(m * n * sizeof(double));
            assert_non_null(want), assert_non_null(tol);
            ref_gemm(0, 0, m, n, k, 1.f, a, k, b, ldb, beta, c0, n, &ep, want, tol);
            snprintf(what, sizeof what, "amx packed A m=%zu n=%zu k=%zu variant=%d", m, n, k, v);
            check(m, n, c, n, want, tol, what);
            /* a NaN in B: refused, at 1 and 2 threads; C untouched where
             * the product reads it (beta 1; with beta 0 the column parts
             * before the NaN's may be written) */
            b[(k / 2) * ldb + n / 2] = NAN;
            for (int t = 1; t <= 2; t++) {
                memcpy(c2, c0, m * n * sizeof(float));
                assert_int_not_equal(onr_sgemm_packed_a(m, n, k, 1.f, pa, b, ldb, beta, c2, n, &ep, ws, t), 0);
                if (beta != 0.f) assert_memory_equal(c2, c0, m * n * sizeof(float));
            }
            assert_int_equal(onr_sgemm_force_kernel("avx512"), 0);
            assert_int_equal(onr_sgemm_pack_a_size(m, k), 0);
            assert_int_not_equal(onr_sgemm_pack_a(0, m, k, a, k, pa), 0);
            b[(k / 2) * ldb + n / 2] = 0.5f;
            assert_int_not_equal(onr_sgemm_packed_a(m, n, k, 1.f, pa, b, ldb, beta, c2, n, &ep, ws, 1), 0);
            assert_int_equal(onr_sgemm_force_kernel("amx"), 0);
            free(want), free(tol), free(ws), free(pa);
            free(a), free(b), free(c0), free(c), free(c2), free(r), free(br);
        }
    onr_sgemm_force_kernel(NULL);
}

/* Non-finite values: weights holding one never go to AMX; an A holding
 * one makes the product run on the float32 kernels (an inf times a zero
 * term would be a NaN where float32 gives inf), with the same infs and
 * NaNs as the reference. A raised cancel flag leaves C
 * untouched. packed_cols gives the whole product's bits. */
static void test_amx_special(void **state)
{
    (void)state;
    if (onr_sgemm_force_kernel("amx") != 0) {
        printf("  (no AMX here: skipped)\n");
        return;
    }
    const size_t m = 70, n = 100, k = 90;
    float *a = falloc(m * k), *b = falloc(k * n), *c = falloc(m * n), *c0 = falloc(m * n);
    fill_full(a, m * k), fill_full(b, k * n);
    memset(c0, 0, m * n * sizeof(float));
    b[5 * n + 7] = INFINITY;
    void *pb = walloc(onr_sgemm_pack_b_size_ex(k, n, ONR_PACK_AMX));
    onr_sgemm_pack_b_ex(0, k, n, b, n, pb, ONR_PACK_AMX);
    assert_false(onr_sgemm_packed_is_amx(pb));
    free(pb);
    b[5 * n + 7] = 1.f;
    /* 1.0 has zero low terms: inf * 1.0 must stay inf */
    for (size_t p = 0; p < k; p++) b[p * n + 3] = 1.f;
    a[2 * k + 4] = INFINITY;
    a[9 * k + 1] = NAN;
    a[40 * k + 0] = -INFINITY;
    double *want = malloc(m * n * sizeof(double)), *tol = malloc(m * n * sizeof(double));
    assert_non_null(want), assert_non_null(tol);
    ref_gemm(0, 0, m, n, k, 1.f, a, k, b, n, 0.f, c0, n, NULL, want, tol);
    pb = amx_product(0, 0, m, n, k, 1.f, a, b, 0.f, c, NULL, c0);
    assert_true(onr_sgemm_packed_is_amx(pb));
    for (size_t i = 0; i < m * n; i++) {
        if (isnan(want[i]) || isinf(want[i])) {
            if (isnan(want[i]) ? !isnan(c[i]) : (double)c[i] != want[i])
                fail_msg("amx non-finite A: C[%zu] = %g, want %g", i, (double)c[i], want[i]);
        } else if (!(fabs((double)c[i] - want[i]) <= tol[i])) {
            fail_msg("amx non-finite A: C[%zu] = %.9g, want %.9g", i, (double)c[i], want[i]);
        }
    }
    assert_true(isinf(c[2 * n + 3]) && c[2 * n + 3] > 0);
    /* cancel before the call: nothing written */
    fill(a, m * k);
    void *ws = walloc(onr_sgemm_workspace_size_ex(m, n, k, 2, ONR_PACK_AMX));
    _Atomic int flag = 1;
    for (int t = 1; t <= 2; t++) {
        for (size_t i = 0; i < m * n; i++) c[i] = -7;
        onr_sgemm_set_cancel(&flag);
        onr_sgemm_packed(0, m, n, k, 1.f, a, k, pb, 0.f, c, n, NULL, ws, t);
        onr_sgemm_set_cancel(NULL);
        for (size_t i = 0; i < m * n; i++)
            if (c[i] != -7) fail_msg("amx, %d threads: C[%zu] written after the cancel", t, i);
    }
    /* packed_cols: runs of whole panels give the whole product's bits */
    float *whole = falloc(m * n);
    onr_sgemm_packed(0, m, n, k, 1.f, a, k, pb, 0.f, whole, n, NULL, ws, 2);
    const size_t w = onr_sgemm_packed_width(pb);
    for (size_t i = 0; i < m * n; i++) c[i] = -7;
    for (size_t n0 = 0, run = 1; n0 < n; n0 += run * w, run++)
        onr_sgemm_packed_cols(0, m, n, n0, n0 + run * w, k, 1.f, a, k, pb, 0.f, c, n, NULL, ws);
    assert_memory_equal(c, whole, m * n * sizeof(float));
    free(whole), free(ws), free(pb), free(want), free(tol);
    free(a), free(b), free(c), free(c0);
    onr_sgemm_force_kernel(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_epilogues),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_dot_tail),
        cmocka_unit_test(test_ksplit),
        cmocka_unit_test(test_gen),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_nan_inf),
        cmocka_unit_test(test_tails_guard_page),
        cmocka_unit_test(test_packed_other_kernel),
        cmocka_unit_test(test_null_workspace),
        cmocka_unit_test(test_packed_cols),
        cmocka_unit_test(test_packed_cols_k),
        cmocka_unit_test(test_ahead),
        cmocka_unit_test(test_amx_products),
        cmocka_unit_test(test_amx_special),
        cmocka_unit_test(test_amx_packed_a),
        cmocka_unit_test(test_amx_unpack_a),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
