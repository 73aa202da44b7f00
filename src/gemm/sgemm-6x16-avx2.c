/*
 * sgemm-6x16-avx2.c - AVX2+FMA SGEMM microkernel: 6 rows x 16 columns of C
 * in 12 ymm accumulators; each k step loads two B vectors and broadcasts 6
 * A values. Compiled with -mavx2 -mfma by its file name; only called after
 * a CPU check.
 *
 * Edge tiles: one specialization per row count 1..6; column tails use
 * vmaskmovps loads and stores (masked-off lanes never fault), so nothing
 * past nr columns of B or C is touched.
 */
#include <immintrin.h>

#include "gemm/sgemm-ukernel.h"

#define ONR_ACT_VL 8
#include "gemm/sgemm-act-simd.h"

enum { MR = 6, NR = 16 };

static inline __m256i tail_mask(size_t n) /* first n lanes, n in [0, 8] */
{
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n > 8 ? 8 : n)), iota);
}

static void epi_row(const onr_sgemm_tile_epi *e, size_t i, int nv, int full, __m256i m0, __m256i m1,
                    __m256 *t)
{
    const __m256i m[2] = {m0, m1};
    if (e->bias_row) {
        __m256 br = _mm256_set1_ps(e->bias_row[i]);
        for (int v = 0; v < nv; v++) t[v] = _mm256_add_ps(t[v], br);
    }
    for (int v = 0; v < nv; v++) {
        __m256 x = t[v];
        if (e->bias_col)
            x = _mm256_add_ps(x, full ? _mm256_loadu_ps(e->bias_col + 8 * v)
                                      : _mm256_maskload_ps(e->bias_col + 8 * v, m[v]));
        __m256 r = _mm256_setzero_ps();
        if (e->residual)
            r = full ? _mm256_loadu_ps(e->residual + i * e->ldr + 8 * v)
                     : _mm256_maskload_ps(e->residual + i * e->ldr + 8 * v, m[v]);
        if (e->residual && e->residual_before_act) x = _mm256_add_ps(x, r);
        x = (__m256)act_apply((act_vf)x, e->act, e->clip_min, e->clip_max);
        if (e->residual && !e->residual_before_act) x = _mm256_add_ps(x, r);
        t[v] = x;
    }
}

/* The epilogue over a stored tile of mr rows (c, row stride ldc); full:
 * no column tail, so plain loads and stores (vmaskmovps stores are slow on
 * AMD cores). With this kernel forced, ResNet-50 took 136 ms at 1 thread
 * when every tile went through here with masked loads and stores, 78 with
 * its common cases in epi_fast (Zen 5); how much of that the masked
 * stores were was not measured apart. */
static __attribute__((noinline)) void epi_tile(const onr_sgemm_tile_epi *e, size_t mr, int nv,
                                               int full, __m256i m0, __m256i m1, float *c,
                                               size_t ldc)
{
    const __m256i m[2] = {m0, m1};
    for (size_t i = 0; i < mr; i++, c += ldc) {
        __m256 t[2];
        for (int v = 0; v < nv; v++)
            t[v] = full ? _mm256_loadu_ps(c + 8 * v) : _mm256_maskload_ps(c + 8 * v, m[v]);
        epi_row(e, i, nv, full, m0, m1, t);
        for (int v = 0; v < nv; v++)
            if (full) _mm256_storeu_ps(c + 8 * v, t[v]);
            else _mm256_maskstore_ps(c + 8 * v, m[v], t[v]);
    }
}

/* The tile's epilogue straight from the registers: + C (acc_c), + the
 * bias (a row's, or the columns' where bcol), + the residual (has_rs),
 * then max(lo, .) and min(hi, .); as in the AVX-512 kernel, which says
 * why that equals epi_row's operations in its order. */
static inline __attribute__((always_inline)) void
epi_fast(const size_t mr, const int nv, const int full, int acc_c, int bcol, int has_rs,
         __m256 acc[][2], const __m256i *m, float *c, size_t ldc,
         const float *bias, const float *rs, size_t ldr, __m256 lo, __m256 hi)
{
    __m256 bc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    if (bcol)
        for (int v = 0; v < nv; v++)
            bc[v] = full ? _mm256_loadu_ps(bias + 8 * v) : _mm256_maskload_ps(bias + 8 * v, m[v]);
#pragma GCC unroll 6
    for (size_t i = 0; i < mr; i++) {
        float *cr = c + i * ldc;
        const __m256 bi = bcol ? _mm256_setzero_ps() : _mm256_set1_ps(bias[i]);
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            __m256 t = acc[i][v];
            if (acc_c)
                t = _mm256_add_ps(t, full ? _mm256_loadu_ps(cr + 8 * v)
                                          : _mm256_maskload_ps(cr + 8 * v, m[v]));
            t = _mm256_add_ps(t, bcol ? bc[v] : bi);
            if (has_rs)
                t = _mm256_add_ps(t, full ? _mm256_loadu_ps(rs + i * ldr + 8 * v)
                                          : _mm256_maskload_ps(rs + i * ldr + 8 * v, m[v]));
            t = _mm256_min_ps(hi, _mm256_max_ps(lo, t));
            if (full) _mm256_storeu_ps(cr + 8 * v, t);
            else _mm256_maskstore_ps(cr + 8 * v, m[v], t);
        }
    }
}

static inline __attribute__((always_inline)) void
ukernel_tpl(const size_t mr, const int nv, const int full, size_t nr, size_t kc,
            const float *restrict a, size_t lda, const float *restrict b, size_t ldb,
            float *restrict c, size_t ldc, float alpha, float beta, const onr_sgemm_tile_epi *epi)
{
    /* A rows in groups of four: [g + (i%4)*lda] keeps the addressing in
     * base + index*scale form with few registers. */
    const float *g0 = a, *g1 = a + 4 * lda;
    {   /* pull the C tile in while the k loop runs; the asm hides the
         * addresses from CSE so they do not stay live in registers */
        const float *cp = c;
        __asm__("" : "+r"(cp));
        for (size_t i = 0; i < mr; i++, cp += ldc) _mm_prefetch((const char *)cp, _MM_HINT_T0);
        if (epi && epi->residual) { /* and the residual the epilogue adds */
            const float *rp = epi->residual;
            __asm__("" : "+r"(rp));
            for (size_t i = 0; i < mr; i++, rp += epi->ldr) _mm_prefetch((const char *)rp, _MM_HINT_T0);
        }
    }
    const __m256i m0 = tail_mask(nr);
    const __m256i m1 = tail_mask(nr > 8 ? nr - 8 : 0);
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (size_t i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) acc[i][v] = _mm256_setzero_ps();

    for (size_t k = 0; k < kc; k++) {
        __m256 b0, b1 = _mm256_setzero_ps();
        if (full) {
            b0 = _mm256_loadu_ps(b);
            if (nv > 1) b1 = _mm256_loadu_ps(b + 8);
        } else {
            b0 = _mm256_maskload_ps(b, m0);
            if (nv > 1) b1 = _mm256_maskload_ps(b + 8, m1);
        }
#pragma GCC unroll 6
        for (size_t i = 0; i < mr; i++) {
            const float *g = i < 4 ? g0 : g1;
            __m256 av = _mm256_broadcast_ss(g + (i % 4) * lda);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            if (nv > 1) acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
        }
        g0++, g1++;
        b += ldb;
    }

    const __m256i m[2] = {m0, m1};
    if (!epi) { /* the common case: straight from the registers */
        const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
        const int unit = alpha == 1.0f;
        float *cr = c;
#pragma GCC unroll 6
        for (size_t i = 0; i < mr; i++, cr += ldc)
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) {
                __m256 t = unit ? acc[i][v] : _mm256_mul_ps(va, acc[i][v]);
                if (beta != 0.0f) {
                    __m256 cv = full ? _mm256_loadu_ps(cr + 8 * v)
                                     : _mm256_maskload_ps(cr + 8 * v, m[v]);
                    t = _mm256_fmadd_ps(vb, cv, t);
                }
                if (full) _mm256_storeu_ps(cr + 8 * v, t);
                else _mm256_maskstore_ps(cr + 8 * v, m[v], t);
            }
        return;
    }
    /* the common epilogues from the registers (epi_fast): one bias, Relu,
     * Clip or none, maybe a residual before it (or with none), after C */
    float lo_s, hi_s;
    if (ONR_EPI_FAST && onr_sgemm_epi_fast(epi, alpha, beta, &lo_s, &hi_s)) {
        const __m256 lo = _mm256_set1_ps(lo_s), hi = _mm256_set1_ps(hi_s);
        const float *rs = epi->residual;
        const size_t ldr = epi->ldr;
        /* one copy per kernel, the cases as flags (as in the AVX-512 file) */
        epi_fast(mr, nv, full, beta != 0.0f, epi->bias_col != NULL, rs != NULL, acc, m, c, ldc,
                 epi->bias_col ? epi->bias_col : epi->bias_row, rs, ldr, lo, hi);
        return;
    }
    /* the rest: the tile is stored as alpha*acc + beta*C, then one call
     * applies the epilogue in L1 (a call per row spilled every accumulator) */
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    float *cr = c;
#pragma GCC unroll 6
    for (size_t i = 0; i < mr; i++, cr += ldc)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            __m256 t = _mm256_mul_ps(va, acc[i][v]);
            if (beta != 0.0f) {
                __m256 cv = full ? _mm256_loadu_ps(cr + 8 * v) : _mm256_maskload_ps(cr + 8 * v, m[v]);
                t = _mm256_fmadd_ps(vb, cv, t);
            }
            if (full) _mm256_storeu_ps(cr + 8 * v, t);
            else _mm256_maskstore_ps(cr + 8 * v, m[v], t);
        }
    epi_tile(epi, mr, nv, full, m0, m1, c, ldc);
}

#define ARGS                                                                                   \
    size_t nr, size_t kc, const float *restrict a, size_t lda, const float *restrict b,        \
        size_t ldb, float *restrict c, size_t ldc, float alpha, float beta,                    \
        const onr_sgemm_tile_epi *epi
#define PASS nr, kc, a, lda, b, ldb, c, ldc, alpha, beta, epi
#define DEF(R)                                                                                 \
    static void k##R##_1(ARGS) { ukernel_tpl(R, 1, 0, PASS); }                                 \
    static void k##R##_2t(ARGS) { ukernel_tpl(R, 2, 0, PASS); }                                \
    static void k##R##_2f(ARGS) { ukernel_tpl(R, 2, 1, PASS); }
DEF(1) DEF(2) DEF(3) DEF(4) DEF(5) DEF(6)
#undef DEF

typedef void (*kfn)(ARGS);
#define ROW(R) {k##R##_1, k##R##_2t, k##R##_2f}
static const kfn table[MR + 1][3] = {{0, 0, 0}, ROW(1), ROW(2), ROW(3), ROW(4), ROW(5), ROW(6)};
#undef ROW

static void ukernel(size_t mr, size_t nr, size_t kc, const float *a, size_t lda, const float *b,
                    size_t ldb, float *c, size_t ldc, float alpha, float beta,
                    const onr_sgemm_tile_epi *epi)
{
    int variant = nr <= 8 ? 0 : (nr < NR ? 1 : 2);
    table[mr][variant](PASS);
}

const onr_sgemm_config onr_sgemm_config_avx2 = {"avx2-6x16", "avx2", MR,   NR, ukernel,
                                                NULL,        NULL,   0,    NULL};
