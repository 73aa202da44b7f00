/*
 * dwconv-avx512.c - the depthwise convolution kernel (dwconv-simd.h) on
 * AVX-512: 16 floats a vector, k-register masks at the borders, stride 2
 * through one two-source permute (vpermt2ps) of two loads. Compiled with
 * AVX-512 flags by its file name; only called after a CPU check.
 */
#include <immintrin.h>

#include "ops/dwconv.h"

#define ONR_ACT_VL 16
#include "gemm/sgemm-act-simd.h"

typedef __m512 dv;
typedef __mmask32 dmask;
enum { VL = 16 };

static inline dv dv_zero(void) { return _mm512_setzero_ps(); }
static inline dv dv_set1(float v) { return _mm512_set1_ps(v); }
static inline dv dv_add(dv a, dv b) { return _mm512_add_ps(a, b); }
static inline dv dv_fma(dv a, dv b, dv c) { return _mm512_fmadd_ps(a, b, c); }
static inline dv dv_load1(const float *p) { return _mm512_loadu_ps(p); }
static inline void dv_store(float *p, dv v) { _mm512_storeu_ps(p, v); }

static inline dv dv_even(dv a, dv b)
{
    const __m512i idx =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(a, idx, b);
}

static inline dv dv_odd(dv a, dv b)
{
    const __m512i idx =
        _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    return _mm512_permutex2var_ps(a, idx, b);
}

static inline dmask dm_make(int64_t c, int64_t in, int n)
{
    int64_t lo = c < 0 ? -c : 0, hi = in - c;
    if (lo > n) lo = n;
    if (hi > n) hi = n;
    if (hi <= lo) return 0;
    return (dmask)((((uint64_t)1 << hi) - 1) & ~(((uint64_t)1 << lo) - 1));
}

static inline dv dv_mload1(const float *p, dmask m) { return _mm512_maskz_loadu_ps((__mmask16)m, p); }

/* p[0 .. 2 VL) under m as two vectors */
static inline void dv_mload_pair(const float *p, dmask m, dv *a, dv *b)
{
    *a = _mm512_maskz_loadu_ps((__mmask16)m, p);
    *b = _mm512_maskz_loadu_ps((__mmask16)(m >> 16), p + 16);
}

static inline __mmask16 dm_first(int64_t n) { return (__mmask16)((1u << n) - 1); }
static inline dv dv_loadn(const float *p, int64_t n) { return _mm512_maskz_loadu_ps(dm_first(n), p); }
static inline void dv_storen(float *p, dv v, int64_t n) { _mm512_mask_storeu_ps(p, dm_first(n), v); }

#define ONR_DWCONV_ROWS onr_dwconv_rows_avx512
#define ONR_GCONV_ROWS onr_gconv_rows_avx512
#include "ops/dwconv-simd.h"

/* ---- small planes, 16 channels at a time (onr_dwconv_block16_avx512) ---- */

/* Rows r[0..16) transposed in place: four rounds, each swapping the
 * off-diagonal s x s blocks of row pairs (i, i + s). */
static inline __attribute__((always_inline)) void tr16_stage(__m512 r[16], const int s,
                                                               __m512i il, __m512i ih)
{
    for (int i = 0; i < 16; i++) {
        if (i & s) continue;
        __m512 a = r[i], b = r[i + s];
        r[i] = _mm512_permutex2var_ps(a, il, b);
        r[i + s] = _mm512_permutex2var_ps(a, ih, b);
    }
}

static inline __attribute__((always_inline)) void tr16(__m512 r[16])
{
    /* lane j of the low row: (j & s) ? b[j - s] : a[j]; of the high row:
     * (j & s) ? b[j] : a[j + s] (16 + k selects b[k]) */
    tr16_stage(r, 8, _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
               _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31));
    tr16_stage(r, 4, _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27),
               _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31));
    tr16_stage(r, 2, _mm512_setr_epi32(0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
               _mm512_setr_epi32(2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31));
    tr16_stage(r, 1, _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30),
               _mm512_setr_epi32(1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31));
}

/* Bias and activation over n vectors of 16 channels (one output row, in
 * L1), the activation chosen once a row: Relu and Clip as the row tiles'
 * dw_finish_plain (dw_act_k), the others through dw_act. */
static inline __attribute__((always_inline)) void dw_b16_epi_k(const onr_dwconv *g, float *o,
                                                                int64_t n, __m512 bv, const int act)
{
    const __m512 lo = _mm512_set1_ps(g->a), hi = _mm512_set1_ps(g->b);
    for (int64_t i = 0; i < n; i++) {
        __m512 v = _mm512_add_ps(_mm512_loadu_ps(o + 16 * i), bv);
        _mm512_storeu_ps(o + 16 * i, act < 0 ? dw_act(g, v) : dw_act_k(v, act, lo, hi));
    }
}

static void dw_b16_epi(const onr_dwconv *g, float *o, int64_t n, __m512 bv)
{
    switch (g->act) {
    case ONR_DW_ACT_NONE: dw_b16_epi_k(g, o, n, bv, ONR_DW_ACT_NONE); return;
    case ONR_DW_ACT_RELU: dw_b16_epi_k(g, o, n, bv, ONR_DW_ACT_RELU); return;
    case ONR_DW_ACT_CLIP: dw_b16_epi_k(g, o, n, bv, ONR_DW_ACT_CLIP); return;
    default: dw_b16_epi_k(g, o, n, bv, -1); return;
    }
}

/* Output rows of the blocked plane: xt (16 channels a position, PW
 * positions a row) to yt (16 a position), the taps of a KH x KW kernel
 * at stride SW along the row. With KH, KW and SW constants (the common
 * kernels below) the taps unroll and their weights stay in registers;
 * eight positions a step keep eight FMA chains in flight. */
static inline __attribute__((always_inline)) void
dw_b16_rows(const onr_dwconv *g, const float *xt, const float *wt, float *yt, int64_t PW,
            int64_t OH, const int KH, const int KW, const int SH, const int SW, int epi_here,
            __m512 bv)
{
    __m512 wv[49];
    for (int t = 0; t < KH * KW; t++) wv[t] = _mm512_loadu_ps(wt + 16 * t);
    const int64_t st = 16 * SW;
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *base = xt + 16 * (oh * SH * PW);
        float *o = yt + 16 * (oh * g->OW);
        int64_t ow = 0;
        for (; ow + 8 <= g->OW; ow += 8) {
            __m512 a[8];
            for (int u = 0; u < 8; u++) a[u] = _mm512_setzero_ps();
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++) {
                    const float *q = base + 16 * (kh * PW + ow * SW + kw);
                    for (int u = 0; u < 8; u++)
                        a[u] = _mm512_fmadd_ps(wv[kh * KW + kw], _mm512_loadu_ps(q + u * st), a[u]);
                }
            for (int u = 0; u < 8; u++) _mm512_storeu_ps(o + 16 * (ow + u), a[u]);
        }
        for (; ow < g->OW; ow++) {
            __m512 a0 = _mm512_setzero_ps();
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++)
                    a0 = _mm512_fmadd_ps(wv[kh * KW + kw],
                                         _mm512_loadu_ps(base + 16 * (kh * PW + ow * SW + kw)), a0);
            _mm512_storeu_ps(o + 16 * ow, a0);
        }
        if (epi_here) dw_b16_epi(g, o, g->OW, bv);
    }
}

void onr_dwconv_block16_avx512(const onr_dwconv *g, const float *x, const float *wt,
                               const float *b, const float *z, float *y, float *ws)
{
    const int64_t IN = g->IH * g->IW, OUT = g->OH * g->OW, BAND = onr_dwconv_blocked_band(g);
    const int64_t PW = onr_dwconv_blocked_pw(g);
    const int64_t c0 = g->PL < PW ? g->PL : PW, c1 = g->PL + g->IW < PW ? g->PL + g->IW : PW;
    const __m512 zero = _mm512_setzero_ps();
    /* without a residual the epilogue (bias, activation) runs on vectors
     * of 16 channels; with one, per plane after the transpose */
    const int epi_here = !z;
    const __m512 bv = b && epi_here ? _mm512_loadu_ps(b) : _mm512_setzero_ps();
    float *xt = ws;
    for (int64_t oh0 = 0; oh0 < g->OH; oh0 += BAND) {
        const int64_t nb = g->OH - oh0 < BAND ? g->OH - oh0 : BAND;
        const int64_t PH = (nb - 1) * g->SH + g->KH, pr0 = oh0 * g->SH; /* padded rows */
        float *yt = xt + 16 * PH * PW;
        /* the band's padded rows: the input rows they hold, transposed 16
         * positions at a time, and zeros around them */
        for (int64_t i = 0; i < PH; i++) {
            float *row = xt + 16 * i * PW;
            const int64_t ih = pr0 + i - g->PT;
            if (ih < 0 || ih >= g->IH) {
                for (int64_t k = 0; k < PW; k++) _mm512_storeu_ps(row + 16 * k, zero);
                continue;
            }
            for (int64_t k = 0; k < c0; k++) _mm512_storeu_ps(row + 16 * k, zero);
            for (int64_t k = c1; k < PW; k++) _mm512_storeu_ps(row + 16 * k, zero);
            const float *xr = x + ih * g->IW;
            for (int64_t pw0 = c0; pw0 < c1; pw0 += 16) {
                const int64_t n = c1 - pw0 < 16 ? c1 - pw0 : 16;
                const __mmask16 m = (__mmask16)((1u << n) - 1u);
                __m512 r[16];
                for (int c = 0; c < 16; c++) r[c] = _mm512_maskz_loadu_ps(m, xr + c * IN + pw0 - g->PL);
                tr16(r); /* r[j]: position pw0 + j, the 16 channels */
                /* a constant trip count (kept in registers; a loop to n
                 * becomes a memcpy of the spilled vectors) */
                for (int j = 0; j < 16; j++)
                    if (j < n) _mm512_storeu_ps(row + 16 * (pw0 + j), r[j]);
            }
        }
        if (g->KH == 3 && g->KW == 3 && g->SH == 1 && g->SW == 1)
            dw_b16_rows(g, xt, wt, yt, PW, nb, 3, 3, 1, 1, epi_here, bv);
        else if (g->KH == 3 && g->KW == 3 && g->SH == 2 && g->SW == 2)
            dw_b16_rows(g, xt, wt, yt, PW, nb, 3, 3, 2, 2, epi_here, bv);
        else if (g->KH == 5 && g->KW == 5 && g->SH == 1 && g->SW == 1)
            dw_b16_rows(g, xt, wt, yt, PW, nb, 5, 5, 1, 1, epi_here, bv);
        else if (g->KH == 5 && g->KW == 5 && g->SH == 2 && g->SW == 2)
            dw_b16_rows(g, xt, wt, yt, PW, nb, 5, 5, 2, 2, epi_here, bv);
        else if (g->KH == 7 && g->KW == 7 && g->SH == 1 && g->SW == 1)
            dw_b16_rows(g, xt, wt, yt, PW, nb, 7, 7, 1, 1, epi_here, bv);
        else
            dw_b16_rows(g, xt, wt, yt, PW, nb, (int)g->KH, (int)g->KW, (int)g->SH, (int)g->SW,
                        epi_here, bv);
        /* back to planes, then each plane's epilogue as the row tiles' */
        const int64_t q0 = oh0 * g->OW, q1 = q0 + nb * g->OW;
        for (int64_t p0 = q0; p0 < q1; p0 += 16) {
            const int64_t n = q1 - p0 < 16 ? q1 - p0 : 16;
            const float *src = yt + 16 * (p0 - q0);
            __m512 r[16];
            for (int64_t j = 0; j < 16; j++)
                r[j] = j < n ? _mm512_loadu_ps(src + 16 * j) : _mm512_setzero_ps();
            tr16(r); /* r[c]: channel c, positions p0 .. p0 + n */
            if (epi_here) {
                const __mmask16 m = (__mmask16)((1u << n) - 1u);
                for (int c = 0; c < 16; c++) _mm512_mask_storeu_ps(y + c * OUT + p0, m, r[c]);
                continue;
            }
            for (int c = 0; c < 16; c++) {
                dw_src t = {.g = g, .zp = z ? z + c * OUT : NULL, .yp = y + c * OUT,
                            .bias = b ? b[c] : 0.f};
                int64_t at = p0;
                dw_finish(&t, &r[c], 1, &at, n, NULL);
            }
        }
    }
}
