/*
 * sgemm-12x32-avx512.c - AVX-512F SGEMM microkernel: 12 rows x 32 columns
 * of C held in 24 zmm accumulators; each k step loads two B vectors and
 * broadcasts 12 A values (24 FMAs per 14 loads). Compiled with AVX-512
 * flags by its file name; only called after a CPU check.
 *
 * Edge tiles: one specialization per row count 1..12 (the A panel is packed
 * with the tile's own row count, never padded), and column tails use masked
 * loads and stores, so nothing past nr columns of B or C is touched.
 */
#include <immintrin.h>

#include "gemm/sgemm-ukernel.h"

#define ONR_ACT_VL 16
#include "gemm/sgemm-act-simd.h"

enum { MR = 12, NR = 32 };

static inline __mmask16 tail_mask(size_t n) /* first n lanes, n in [0, 16] */
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

/* Epilogue of one row of the tile, on values still in registers. */
static void epi_row(const onr_sgemm_tile_epi *e, size_t i, int nv, __mmask16 m0, __mmask16 m1,
                    __m512 *t)
{
    const __mmask16 m[2] = {m0, m1};
    if (e->bias_row) {
        __m512 br = _mm512_set1_ps(e->bias_row[i]);
        for (int v = 0; v < nv; v++) t[v] = _mm512_add_ps(t[v], br);
    }
    for (int v = 0; v < nv; v++) {
        __m512 x = t[v];
        if (e->bias_col) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m[v], e->bias_col + 16 * v));
        __m512 r = _mm512_setzero_ps();
        if (e->residual) r = _mm512_maskz_loadu_ps(m[v], e->residual + i * e->ldr + 16 * v);
        if (e->residual && e->residual_before_act) x = _mm512_add_ps(x, r);
        x = (__m512)act_apply((act_vf)x, e->act, e->clip_min, e->clip_max);
        if (e->residual && !e->residual_before_act) x = _mm512_add_ps(x, r);
        t[v] = x;
    }
}

/* Rows of a stored tile through one activation (a constant after
 * inlining) with the row or column bias (added in epi_row's order): four
 * vectors at a time, so the long dependency chains of exp overlap (a
 * Linear's GELU, with its column bias, went through epi_row two vectors
 * at a time: ConvNeXt-T's 96 -> 384 layer with GELU took 2.14 ms at 1
 * thread, the 384 -> 96 one after it 1.20, Zen 5). */
static inline __attribute__((always_inline)) void
act_rows(const onr_sgemm_tile_epi *e, size_t mr, __mmask16 m0, __mmask16 m1, float *c, size_t ldc,
         const int act)
{
    const float *br = e->bias_row;
    const __m512 bc0 = e->bias_col ? _mm512_maskz_loadu_ps(m0, e->bias_col) : _mm512_setzero_ps();
    const __m512 bc1 = e->bias_col ? _mm512_maskz_loadu_ps(m1, e->bias_col + 16) : _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 2 <= mr; i += 2) {
        float *c0 = c + i * ldc, *c1 = c0 + ldc;
        __m512 t0 = _mm512_maskz_loadu_ps(m0, c0), t1 = _mm512_maskz_loadu_ps(m1, c0 + 16);
        __m512 t2 = _mm512_maskz_loadu_ps(m0, c1), t3 = _mm512_maskz_loadu_ps(m1, c1 + 16);
        if (br) {
            __m512 b0 = _mm512_set1_ps(br[i]), b1 = _mm512_set1_ps(br[i + 1]);
            t0 = _mm512_add_ps(t0, b0), t1 = _mm512_add_ps(t1, b0);
            t2 = _mm512_add_ps(t2, b1), t3 = _mm512_add_ps(t3, b1);
        }
        if (e->bias_col) {
            t0 = _mm512_add_ps(t0, bc0), t1 = _mm512_add_ps(t1, bc1);
            t2 = _mm512_add_ps(t2, bc0), t3 = _mm512_add_ps(t3, bc1);
        }
        t0 = (__m512)act_apply((act_vf)t0, act, e->clip_min, e->clip_max);
        t1 = (__m512)act_apply((act_vf)t1, act, e->clip_min, e->clip_max);
        t2 = (__m512)act_apply((act_vf)t2, act, e->clip_min, e->clip_max);
        t3 = (__m512)act_apply((act_vf)t3, act, e->clip_min, e->clip_max);
        _mm512_mask_storeu_ps(c0, m0, t0), _mm512_mask_storeu_ps(c0 + 16, m1, t1);
        _mm512_mask_storeu_ps(c1, m0, t2), _mm512_mask_storeu_ps(c1 + 16, m1, t3);
    }
    for (; i < mr; i++) {
        float *c0 = c + i * ldc;
        __m512 t0 = _mm512_maskz_loadu_ps(m0, c0), t1 = _mm512_maskz_loadu_ps(m1, c0 + 16);
        if (br) {
            __m512 b0 = _mm512_set1_ps(br[i]);
            t0 = _mm512_add_ps(t0, b0), t1 = _mm512_add_ps(t1, b0);
        }
        if (e->bias_col) t0 = _mm512_add_ps(t0, bc0), t1 = _mm512_add_ps(t1, bc1);
        t0 = (__m512)act_apply((act_vf)t0, act, e->clip_min, e->clip_max);
        t1 = (__m512)act_apply((act_vf)t1, act, e->clip_min, e->clip_max);
        _mm512_mask_storeu_ps(c0, m0, t0), _mm512_mask_storeu_ps(c0 + 16, m1, t1);
    }
}

/* The epilogue over a stored tile of mr rows (c, row stride ldc). */
static __attribute__((noinline)) void epi_tile(const onr_sgemm_tile_epi *e, size_t mr, int nv,
                                               __mmask16 m0, __mmask16 m1, float *c, size_t ldc)
{
    const __mmask16 m[2] = {m0, m1};
    if (!e->residual) { /* the activation and a bias only */
        if (nv == 1) m1 = 0; /* the second vector reads and writes nothing */
        switch (e->act) {
        case ONR_ACT_SIGMOID: act_rows(e, mr, m0, m1, c, ldc, ONR_ACT_SIGMOID); return;
        case ONR_ACT_SILU: act_rows(e, mr, m0, m1, c, ldc, ONR_ACT_SILU); return;
        case ONR_ACT_GELU_ERF: act_rows(e, mr, m0, m1, c, ldc, ONR_ACT_GELU_ERF); return;
        case ONR_ACT_GELU_TANH: act_rows(e, mr, m0, m1, c, ldc, ONR_ACT_GELU_TANH); return;
        default: break;
        }
    }
    for (size_t i = 0; i < mr; i++, c += ldc) {
        __m512 t[2];
        for (int v = 0; v < nv; v++) t[v] = _mm512_maskz_loadu_ps(m[v], c + 16 * v);
        epi_row(e, i, nv, m0, m1, t);
        for (int v = 0; v < nv; v++) _mm512_mask_storeu_ps(c + 16 * v, m[v], t[v]);
    }
}

/* The tile's epilogue straight from the registers: + C (acc_c, the last
 * K block of several), + the bias (a row's, or the columns' where bcol),
 * + the residual (has_rs: before the activation, or with none), then
 * max(lo, .) and min(hi, .) (Relu: 0 and +inf; Clip: its bounds; none:
 * -inf and +inf, which change nothing, -0 and NaN included: each
 * instruction returns its second operand, the value, when either is NaN
 * or both are zeros); the general code's operations in its order. */
static inline __attribute__((always_inline)) void
epi_fast(const size_t mr, const int nv, const int full, int acc_c, int bcol, int has_rs,
         __m512 acc[][2], const __mmask16 *m, float *c, size_t ldc, const float *bias,
         const float *rs, size_t ldr, __m512 lo, __m512 hi)
{
    __m512 bc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    if (bcol)
        for (int v = 0; v < nv; v++)
            bc[v] = full ? _mm512_loadu_ps(bias + 16 * v) : _mm512_maskz_loadu_ps(m[v], bias + 16 * v);
#pragma GCC unroll 12
    for (size_t i = 0; i < mr; i++) {
        float *cr = c + i * ldc;
        const __m512 bi = bcol ? _mm512_setzero_ps() : _mm512_set1_ps(bias[i]);
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            __m512 t = acc[i][v];
            if (acc_c)
                t = _mm512_add_ps(t, full ? _mm512_loadu_ps(cr + 16 * v)
                                          : _mm512_maskz_loadu_ps(m[v], cr + 16 * v));
            t = _mm512_add_ps(t, bcol ? bc[v] : bi);
            if (has_rs)
                t = _mm512_add_ps(t, full ? _mm512_loadu_ps(rs + i * ldr + 16 * v)
                                          : _mm512_maskz_loadu_ps(m[v], rs + i * ldr + 16 * v));
            t = _mm512_min_ps(hi, _mm512_max_ps(lo, t));
            if (full) _mm512_storeu_ps(cr + 16 * v, t);
            else _mm512_mask_storeu_ps(cr + 16 * v, m[v], t);
        }
    }
}

/* mr, nv (vectors per row: 1 or 2), full (no column tail) and half are
 * compile-time constants in every specialization below. half: the row's
 * last vector holds at most 8 columns, so the k loop computes it in a
 * 256-bit register (a column tail of 1-8 or 17-24), widened to 512 bits
 * for the stores and the epilogue. Where 512-bit FMAs issue at half the
 * rate of 256-bit ones (Zen 4) that tail costs half as much; elsewhere the
 * same. */
static inline __attribute__((always_inline)) void
ukernel_tpl(const size_t mr, const int nv, const int full, const int half, const int pf,
            const int from_p, size_t nr,
            size_t kc,
            const float *restrict a, size_t lda, const float *restrict b, size_t ldb,
            float *restrict c, size_t ldc, float alpha, float beta, const onr_sgemm_tile_epi *epi)
{
    /* A rows in groups of four: [g + (i%4)*lda] keeps the addressing in
     * base + index*scale form with few registers. */
    const float *g0 = a, *g1 = a + 4 * lda, *g2 = a + 8 * lda;
    {   /* pull the C tile in while the k loop runs, and the residual the
         * epilogue adds (a 1x1 convolution's: it comes from memory, the
         * tensor of a few layers before; prefetched here, ResNet-50 -2.1 /
         * -1.8 % at 1 / 2 threads, MobileNetV2 -1.8 / -0.5 %,
         * EfficientNet-B0 -1.2 / -0.2 %, in one process, runs alternating,
         * Zen 5); the asm hides the addresses from CSE so they do not
         * stay live in registers */
        const float *cp = c;
        __asm__("" : "+r"(cp));
        for (size_t i = 0; i < mr; i++, cp += ldc) {
            _mm_prefetch((const char *)cp, _MM_HINT_T0);
            if (nv > 1) _mm_prefetch((const char *)(cp + 16), _MM_HINT_T0);
        }
        if (epi && epi->residual) {
            const float *rp = epi->residual;
            __asm__("" : "+r"(rp));
            for (size_t i = 0; i < mr; i++, rp += epi->ldr) {
                _mm_prefetch((const char *)rp, _MM_HINT_T0);
                if (nv > 1) _mm_prefetch((const char *)(rp + 16), _MM_HINT_T0);
            }
        }
    }
    const __mmask16 m0 = full ? (__mmask16)0xFFFF : tail_mask(nr);
    const __mmask16 m1 = full ? (__mmask16)0xFFFF : tail_mask(nr > 16 ? nr - 16 : 0);
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (size_t i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            /* from_p (kc 0): the sums come from a tile stored at b (finish) */
            acc[i][v] = !from_p ? _mm512_setzero_ps()
                        : full  ? _mm512_loadu_ps(b + i * ldb + 16 * v)
                                : _mm512_maskz_loadu_ps(v ? m1 : m0, b + i * ldb + 16 * v);

    /* half: the row's last vector accumulates in a 256-bit register, widened
     * after the loop */
    const __mmask8 mh = (__mmask8)(nv > 1 ? m1 : m0);
    __m256 acch[MR];
    if (half)
#pragma GCC unroll 12
        for (size_t i = 0; i < mr; i++) acch[i] = _mm256_setzero_ps();

    /* A B read in place (row stride ldb other than a packed panel's NR:
     * a convolution's activations, Winograd's transformed input, attention's
     * K^T and V) has each of the tile's kc rows in its own cache lines, its
     * next tile's beside them: the kernel prefetches those (the tile to the
     * right, which the next call reads) instead of rows further down, which
     * with a short K lie past B (a 1x1 layer's 16-64 input channels), and
     * which the hardware's stream prefetcher finds by itself when K is
     * long. Measured on Zen 5 in one process, runs alternating between the
     * two (ABBA), 1 / 2 threads, with the host partly busy (ResNet-50 at
     * 42 ms; 39 when quiet): MobileNetV2 -3.2 / -3.7 %, ResNet-50 -2.0 /
     * -1.7 %; busier (47 ms): ResNet-18 -4.9 / -4.4 %, EfficientNet-B0
     * -5.8 / -3.9 %, RegNetY -7.1 / -2.3 %, UNet -8.8 / -5.4 %; ConvNeXt-T
     * and the transformers within 1-3 % either way (results/). Dropping
     * only the 64-rows-ahead prefetch gained half as much, no B prefetch
     * at all less, two tiles ahead less. MobileNetV2's 1x1 32 -> 16 layer
     * on 112x112 (K = 32) alone: 0.11-0.14 -> 0.082 ms (ORT: 0.080). */
    const int b_in_place = ldb != NR;
    /* pf: the next A block's lines, one per k step (onr_sgemm_ahead) */
    const char *ah = pf ? onr_sgemm_ahead_cur.p : NULL, *ah_end = pf ? onr_sgemm_ahead_cur.end : NULL;
    for (size_t k = 0; k < kc; k++) {
        if (pf && ah < ah_end) {
            _mm_prefetch(ah, _MM_HINT_T1);
            ah += 64;
            if (__builtin_expect(ah >= ah_end, 0)) {
                onr_sgemm_ahead *h = &onr_sgemm_ahead_cur;
                if (h->rows) {
                    h->rows--;
                    h->row += h->ld;
                    ah = h->row;
                    ah_end = h->row + h->span;
                }
            }
        }
        if (b_in_place) {
            /* this row's columns of the next tile */
            _mm_prefetch((const char *)(b + NR), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + NR + 16), _MM_HINT_T0);
        } else {
            /* packed B streams from L2 or memory (GEMV): stay ~2 KiB ahead
             * into L1, and 64 rows ahead towards L2 for the first sweep over
             * a block of weights that comes from memory */
            _mm_prefetch((const char *)(b + 16 * ldb), _MM_HINT_T0);
            if (nv > 1 && !half) _mm_prefetch((const char *)(b + 16 * ldb + 16), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + 64 * ldb), _MM_HINT_T1);
            if (nv > 1 && !half) _mm_prefetch((const char *)(b + 64 * ldb + 16), _MM_HINT_T1);
        }
        __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
        __m256 bh = _mm256_setzero_ps();
        if (half) {
            if (nv > 1) b0 = _mm512_loadu_ps(b);
            bh = _mm256_maskz_loadu_ps(mh, b + 16 * (nv - 1));
        } else if (full) {
            b0 = _mm512_loadu_ps(b);
            if (nv > 1) b1 = _mm512_loadu_ps(b + 16);
        } else {
            b0 = _mm512_maskz_loadu_ps(m0, b);
            if (nv > 1) b1 = _mm512_maskz_loadu_ps(m1, b + 16);
        }
#pragma GCC unroll 12
        for (size_t i = 0; i < mr; i++) {
            const float *g = i < 4 ? g0 : (i < 8 ? g1 : g2);
            const float s = g[(i % 4) * lda];
            __m512 av = _mm512_set1_ps(s);
            if (!half || nv > 1) acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
            if (half) acch[i] = _mm256_fmadd_ps(_mm256_set1_ps(s), bh, acch[i]);
            else if (nv > 1) acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
        }
        g0++, g1++, g2++;
        b += ldb;
    }
    if (pf) onr_sgemm_ahead_cur.p = ah, onr_sgemm_ahead_cur.end = ah_end;
    if (half)
#pragma GCC unroll 12
        for (size_t i = 0; i < mr; i++) acc[i][nv - 1] = _mm512_zextps256_ps512(acch[i]);

    const __mmask16 m[2] = {m0, m1};
    if (!epi) { /* the common case: straight from the registers */
        const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
        const int unit = alpha == 1.0f;
        float *cr = c;
        if (beta == 0.0f) {
#pragma GCC unroll 12
            for (size_t i = 0; i < mr; i++, cr += ldc)
#pragma GCC unroll 2
                for (int v = 0; v < nv; v++) {
                    __m512 t = unit ? acc[i][v] : _mm512_mul_ps(va, acc[i][v]);
                    if (full) _mm512_storeu_ps(cr + 16 * v, t);
                    else _mm512_mask_storeu_ps(cr + 16 * v, m[v], t);
                }
        } else {
#pragma GCC unroll 12
            for (size_t i = 0; i < mr; i++, cr += ldc)
#pragma GCC unroll 2
                for (int v = 0; v < nv; v++) {
                    __m512 t = unit ? acc[i][v] : _mm512_mul_ps(va, acc[i][v]);
                    __m512 cv = full ? _mm512_loadu_ps(cr + 16 * v)
                                     : _mm512_maskz_loadu_ps(m[v], cr + 16 * v);
                    t = _mm512_fmadd_ps(vb, cv, t);
                    if (full) _mm512_storeu_ps(cr + 16 * v, t);
                    else _mm512_mask_storeu_ps(cr + 16 * v, m[v], t);
                }
        }
        return;
    }
    /* the common epilogues straight from the registers (epi_fast): one
     * bias (a convolution's per row, a Linear layer's or a transposed
     * convolution's per column), Relu, Clip or none, maybe a residual
     * before it (with none, before and after are the same), after C where
     * K ran in several blocks. The general code below tested each flag for
     * each vector: a 1x1 convolution 64 -> 256 on 56x56 with bias and Relu
     * took 0.57-0.59 ms at 1 thread, without them 0.50, here 0.52. */
    float lo_s, hi_s;
    if (ONR_EPI_FAST && onr_sgemm_epi_fast(epi, alpha, beta, &lo_s, &hi_s)) {
        const __m512 lo = _mm512_set1_ps(lo_s), hi = _mm512_set1_ps(hi_s);
        const float *rs = epi->residual;
        const size_t ldr = epi->ldr;
        /* one copy per kernel, the cases as flags (tested once a vector,
         * the same way every time): eight copies, one per case, took
         * clang's sanitizer build of this file over 20 minutes */
        epi_fast(mr, nv, full, beta != 0.0f, epi->bias_col != NULL, rs != NULL, acc, m, c, ldc,
                 epi->bias_col ? epi->bias_col : epi->bias_row, rs, ldr, lo, hi);
        return;
    }
    if (!epi->bias_col &&
        (epi->act == ONR_ACT_NONE || epi->act == ONR_ACT_RELU || epi->act == ONR_ACT_CLIP) &&
        alpha == 1.0f && (beta == 0.0f || beta == 1.0f)) {
        /* the rest of the convolutions' epilogues (no bias, a residual
         * after the activation) inline: a call per row cost a few percent
         * of a whole CNN */
        const int relu = epi->act == ONR_ACT_RELU, clip = epi->act == ONR_ACT_CLIP;
        const int acc_c = beta != 0.0f, pre = epi->residual_before_act;
        const __m512 lo = _mm512_set1_ps(epi->clip_min), hi = _mm512_set1_ps(epi->clip_max);
        const float *br = epi->bias_row, *rs = epi->residual;
        const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 12
        for (size_t i = 0; i < mr; i++) {
            float *cr = c + i * ldc;
            const __m512 bi = br ? _mm512_set1_ps(br[i]) : zero;
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) {
                __m512 t = acc[i][v];
                if (acc_c)
                    t = _mm512_add_ps(t, full ? _mm512_loadu_ps(cr + 16 * v)
                                              : _mm512_maskz_loadu_ps(m[v], cr + 16 * v));
                if (br) t = _mm512_add_ps(t, bi); /* after C, as epi_row's order */
                __m512 r = zero;
                if (rs)
                    r = full ? _mm512_loadu_ps(rs + i * epi->ldr + 16 * v)
                             : _mm512_maskz_loadu_ps(m[v], rs + i * epi->ldr + 16 * v);
                if (rs && pre) t = _mm512_add_ps(t, r);
                if (relu) t = _mm512_max_ps(zero, t); /* NaN and -0 pass, as act_apply */
                if (clip) t = _mm512_min_ps(hi, _mm512_max_ps(lo, t)); /* NaN passes */
                if (rs && !pre) t = _mm512_add_ps(t, r);
                if (full) _mm512_storeu_ps(cr + 16 * v, t);
                else _mm512_mask_storeu_ps(cr + 16 * v, m[v], t);
            }
        }
        return;
    }
    /* the rest (column bias, the activations that need exp): the tile is
     * stored as alpha*acc + beta*C, then one call applies the epilogue to
     * it in L1; a call per row made the compiler spill all 24 accumulators */
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    float *cr = c;
#pragma GCC unroll 12
    for (size_t i = 0; i < mr; i++, cr += ldc)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            __m512 t = _mm512_mul_ps(va, acc[i][v]);
            if (beta != 0.0f) {
                __m512 cv = full ? _mm512_loadu_ps(cr + 16 * v) : _mm512_maskz_loadu_ps(m[v], cr + 16 * v);
                t = _mm512_fmadd_ps(vb, cv, t);
            }
            if (full) _mm512_storeu_ps(cr + 16 * v, t);
            else _mm512_mask_storeu_ps(cr + 16 * v, m[v], t);
        }
    epi_tile(epi, mr, nv, m0, m1, c, ldc);
}

#define ARGS                                                                                   \
    size_t nr, size_t kc, const float *restrict a, size_t lda, const float *restrict b,        \
        size_t ldb, float *restrict c, size_t ldc, float alpha, float beta,                    \
        const onr_sgemm_tile_epi *epi
#define PASS nr, kc, a, lda, b, ldb, c, ldc, alpha, beta, epi
#define DEF(R)                                                                                 \
    static void k##R##_h(ARGS) { ukernel_tpl(R, 1, 0, 1, 0, 0, PASS); }                        \
    static void k##R##_1(ARGS) { ukernel_tpl(R, 1, 0, 0, 0, 0, PASS); }                        \
    static void k##R##_2h(ARGS) { ukernel_tpl(R, 2, 0, 1, 0, 0, PASS); }                       \
    static void k##R##_2t(ARGS) { ukernel_tpl(R, 2, 0, 0, 0, 0, PASS); }                       \
    static void k##R##_2f(ARGS) { ukernel_tpl(R, 2, 1, 0, 0, 0, PASS); }                       \
    static void p##R##_h(ARGS) { ukernel_tpl(R, 1, 0, 1, 1, 0, PASS); }                        \
    static void p##R##_1(ARGS) { ukernel_tpl(R, 1, 0, 0, 1, 0, PASS); }                        \
    static void p##R##_2h(ARGS) { ukernel_tpl(R, 2, 0, 1, 1, 0, PASS); }                       \
    static void p##R##_2t(ARGS) { ukernel_tpl(R, 2, 0, 0, 1, 0, PASS); }                       \
    static void p##R##_2f(ARGS) { ukernel_tpl(R, 2, 1, 0, 1, 0, PASS); }                       \
    static void f##R##_1(ARGS) { ukernel_tpl(R, 1, 0, 0, 0, 1, PASS); }                        \
    static void f##R##_2t(ARGS) { ukernel_tpl(R, 2, 0, 0, 0, 1, PASS); }                       \
    static void f##R##_2f(ARGS) { ukernel_tpl(R, 2, 1, 0, 0, 1, PASS); }
DEF(1) DEF(2) DEF(3) DEF(4) DEF(5) DEF(6) DEF(7) DEF(8) DEF(9) DEF(10) DEF(11) DEF(12)
#undef DEF

typedef void (*kfn)(ARGS);
#define ROW(R) {k##R##_h, k##R##_1, k##R##_2h, k##R##_2t, k##R##_2f}
#define PROW(R) {p##R##_h, p##R##_1, p##R##_2h, p##R##_2t, p##R##_2f}
static const kfn table[2][MR + 1][5] = {
    {{0, 0, 0, 0, 0}, ROW(1), ROW(2), ROW(3), ROW(4), ROW(5), ROW(6),
     ROW(7),          ROW(8), ROW(9), ROW(10), ROW(11), ROW(12)},
    {{0, 0, 0, 0, 0}, PROW(1), PROW(2), PROW(3), PROW(4), PROW(5), PROW(6),
     PROW(7),          PROW(8), PROW(9), PROW(10), PROW(11), PROW(12)}};
#undef ROW
#undef PROW
#define FROW(R) {f##R##_1, f##R##_2t, f##R##_2f}
static const kfn ftable[MR + 1][3] = {{0, 0, 0}, FROW(1), FROW(2), FROW(3), FROW(4), FROW(5),
                                      FROW(6),   FROW(7), FROW(8), FROW(9), FROW(10), FROW(11),
                                      FROW(12)};
#undef FROW

/* columns 1-8: one 256-bit vector; 9-16: one 512-bit; 17-24: 512 + 256;
 * 25-31: two, the second masked; 32: two, unmasked */
static int variant(size_t nr) { return nr <= 8 ? 0 : nr <= 16 ? 1 : nr <= 24 ? 2 : nr < NR ? 3 : 4; }

static void ukernel(size_t mr, size_t nr, size_t kc, const float *a, size_t lda, const float *b,
                    size_t ldb, float *c, size_t ldc, float alpha, float beta,
                    const onr_sgemm_tile_epi *epi)
{
    table[0][mr][variant(nr)](PASS);
}

/* The finishing of a tile whose sums were stored at b (row stride ldb):
 * the same code as after the k loop, so C gets the same bits as when the
 * kernel had computed those sums itself (kc is 0; A is never read, and b
 * stands in for it, which may be NULL). */
static void finish(size_t mr, size_t nr, size_t kc, const float *a, size_t lda, const float *b,
                   size_t ldb, float *c, size_t ldc, float alpha, float beta,
                   const onr_sgemm_tile_epi *epi)
{
    kc = 0;
    a = b;
    lda = 0;
    ftable[mr][nr <= 16 ? 0 : nr < NR ? 1 : 2](PASS);
}

/* The same, prefetching onr_sgemm_ahead_cur's lines as it goes. */
static void ukernel_ahead(size_t mr, size_t nr, size_t kc, const float *a, size_t lda,
                          const float *b, size_t ldb, float *c, size_t ldc, float alpha,
                          float beta, const onr_sgemm_tile_epi *epi)
{
    table[1][mr][variant(nr)](PASS);
}

/* ---- the last columns: dot products along k (onr_sgemm_tail_fn) ------- */

enum { TAIL_MAX = 8 };

/* NC columns (1..TAIL_MAX) in blocks of R rows (R * NC accumulators, at
 * most 24); in the last block rows past mr read row mr-1 again and are
 * not stored. */
static inline __attribute__((always_inline)) void
tail_tpl(const int R, const int NC, size_t mr, size_t kc, const float *restrict a, size_t lda,
         const float *restrict bt, size_t ldbt, float *restrict c, size_t ldc, float alpha,
         float beta, const onr_sgemm_tile_epi *epi)
{
    const __mmask16 km = tail_mask(kc % 16);
    for (size_t i0 = 0; i0 < mr; i0 += (size_t)R) {
        const float *ar[12];
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) ar[r] = a + (i0 + r < mr ? i0 + r : mr - 1) * lda;
        __m512 acc[12][TAIL_MAX];
#pragma GCC unroll 12
        for (int r = 0; r < R; r++)
#pragma GCC unroll 8
            for (int j = 0; j < NC; j++) acc[r][j] = _mm512_setzero_ps();
        size_t k = 0;
        for (; k + 16 <= kc; k += 16) {
            __m512 bv[TAIL_MAX];
#pragma GCC unroll 8
            for (int j = 0; j < NC; j++) bv[j] = _mm512_load_ps(bt + j * ldbt + k);
#pragma GCC unroll 12
            for (int r = 0; r < R; r++) {
                const __m512 av = _mm512_loadu_ps(ar[r] + k);
#pragma GCC unroll 8
                for (int j = 0; j < NC; j++) acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]);
            }
        }
        if (k < kc) { /* B^T is zero past kc; A is not read there */
            __m512 bv[TAIL_MAX];
#pragma GCC unroll 8
            for (int j = 0; j < NC; j++) bv[j] = _mm512_load_ps(bt + j * ldbt + k);
#pragma GCC unroll 12
            for (int r = 0; r < R; r++) {
                const __m512 av = _mm512_maskz_loadu_ps(km, ar[r] + k);
#pragma GCC unroll 8
                for (int j = 0; j < NC; j++) acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]);
            }
        }
        /* the sums, eight accumulators at a time: halves added, then
         * horizontal adds across them (37 instructions per eight where a
         * reduction each took about 80) */
        float sums[24] __attribute__((aligned(32)));
#pragma GCC unroll 3
        for (int g = 0; g < (R * NC + 7) / 8; g++) {
            __m256 h[8];
#pragma GCC unroll 8
            for (int q = 0; q < 8; q++) {
                const int e = g * 8 + q;
                if (e < R * NC) {
                    const __m512 x = acc[e / NC][e % NC];
                    const __m256 hi =
                        _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1));
                    h[q] = _mm256_add_ps(_mm512_castps512_ps256(x), hi);
                } else {
                    h[q] = _mm256_setzero_ps();
                }
            }
            const __m256 h01 = _mm256_hadd_ps(h[0], h[1]), h23 = _mm256_hadd_ps(h[2], h[3]);
            const __m256 h45 = _mm256_hadd_ps(h[4], h[5]), h67 = _mm256_hadd_ps(h[6], h[7]);
            const __m256 q0 = _mm256_hadd_ps(h01, h23), q1 = _mm256_hadd_ps(h45, h67);
            _mm256_store_ps(sums + 8 * g, _mm256_add_ps(_mm256_permute2f128_ps(q0, q1, 0x20),
                                                        _mm256_permute2f128_ps(q0, q1, 0x31)));
        }
        /* each row's NC values as one vector, through the tile's epilogue */
        const size_t rows = mr - i0 < (size_t)R ? mr - i0 : (size_t)R;
        const __mmask16 cm = tail_mask((size_t)NC);
        for (size_t r = 0; r < rows; r++) {
            float *cr = c + (i0 + r) * ldc;
            __m512 t = _mm512_maskz_loadu_ps(cm, sums + r * NC);
            t = _mm512_mul_ps(_mm512_set1_ps(alpha), t);
            if (beta != 0.0f)
                t = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(cm, cr), t);
            if (epi) epi_row(epi, i0 + r, 1, cm, 0, &t);
            _mm512_mask_storeu_ps(cr, cm, t);
        }
    }
}

#define TARGS                                                                                  \
    size_t mr, size_t kc, const float *restrict a, size_t lda, const float *restrict bt,       \
        size_t ldbt, float *restrict c, size_t ldc, float alpha, float beta,                   \
        const onr_sgemm_tile_epi *epi
#define TPASS mr, kc, a, lda, bt, ldbt, c, ldc, alpha, beta, epi
static void t1(TARGS) { tail_tpl(12, 1, TPASS); }
static void t2(TARGS) { tail_tpl(12, 2, TPASS); }
static void t3(TARGS) { tail_tpl(8, 3, TPASS); }
static void t4(TARGS) { tail_tpl(6, 4, TPASS); }
static void t5(TARGS) { tail_tpl(4, 5, TPASS); }
static void t6(TARGS) { tail_tpl(4, 6, TPASS); }
static void t7(TARGS) { tail_tpl(3, 7, TPASS); }
static void t8(TARGS) { tail_tpl(3, 8, TPASS); }
typedef void (*tfn)(TARGS);
static const tfn tails[TAIL_MAX + 1] = {0, t1, t2, t3, t4, t5, t6, t7, t8};

static void tail(size_t mr, size_t nr, size_t kc, const float *a, size_t lda, const float *bt,
                 size_t ldbt, float *c, size_t ldc, float alpha, float beta,
                 const onr_sgemm_tile_epi *epi)
{
    tails[nr](TPASS);
}
#undef TARGS
#undef TPASS

const onr_sgemm_config onr_sgemm_config_avx512 = {
    "avx512-12x32", "avx512", MR, NR, ukernel, ukernel_ahead, tail, TAIL_MAX, finish};
