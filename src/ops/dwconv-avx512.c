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

void onr_dwconv_block16_avx512(const onr_dwconv *g, const float *x, const float *wt,
                               const float *b, const float *z, float *y, float *ws)
{
    const int64_t IN = g->IH * g->IW, OUT = g->OH * g->OW;
    const int64_t PH = (g->OH - 1) * g->SH + g->KH, PW = (g->OW - 1) * g->SW + g->KW;
    float *xt = ws, *yt = xt + 16 * PH * PW;
    /* the padded plane: zero, then the input positions it holds */
    for (int64_t i = 0; i < PH * PW; i++) _mm512_storeu_ps(xt + 16 * i, _mm512_setzero_ps());
    for (int64_t p0 = 0; p0 < IN; p0 += 16) {
        const int64_t n = IN - p0 < 16 ? IN - p0 : 16;
        const __mmask16 m = (__mmask16)((1u << n) - 1u);
        __m512 r[16];
        for (int c = 0; c < 16; c++) r[c] = _mm512_maskz_loadu_ps(m, x + c * IN + p0);
        tr16(r); /* r[j]: position p0 + j, the 16 channels */
        for (int64_t j = 0; j < n; j++) {
            int64_t ih = (p0 + j) / g->IW + g->PT, iw = (p0 + j) % g->IW + g->PL;
            if (ih < PH && iw < PW) _mm512_storeu_ps(xt + 16 * (ih * PW + iw), r[j]);
        }
    }
    /* without a residual the epilogue (bias, activation) runs here, on
     * vectors of 16 channels; with one, per plane after the transpose */
    const int epi_here = !z;
    const __m512 bv = b && epi_here ? _mm512_loadu_ps(b) : _mm512_setzero_ps();
#define DW_B16_EPI(a) (epi_here ? dw_act(g, _mm512_add_ps(a, bv)) : (a))
    /* every tap, kernel-row-major, as the row tiles sum */
    for (int64_t oh = 0; oh < g->OH; oh++) {
        int64_t ow = 0;
        for (; ow + 4 <= g->OW; ow += 4) {
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int64_t kh = 0; kh < g->KH; kh++) {
                const float *row = xt + 16 * ((oh * g->SH + kh) * PW + ow * g->SW);
                const float *wr = wt + 16 * kh * g->KW;
                const int64_t st = 16 * g->SW;
                for (int64_t kw = 0; kw < g->KW; kw++) {
                    const __m512 wv = _mm512_loadu_ps(wr + 16 * kw);
                    const float *q = row + 16 * kw;
                    a0 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(q), a0);
                    a1 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(q + st), a1);
                    a2 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(q + 2 * st), a2);
                    a3 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(q + 3 * st), a3);
                }
            }
            float *o = yt + 16 * (oh * g->OW + ow);
            _mm512_storeu_ps(o, DW_B16_EPI(a0)), _mm512_storeu_ps(o + 16, DW_B16_EPI(a1));
            _mm512_storeu_ps(o + 32, DW_B16_EPI(a2)), _mm512_storeu_ps(o + 48, DW_B16_EPI(a3));
        }
        for (; ow < g->OW; ow++) {
            __m512 a0 = _mm512_setzero_ps();
            for (int64_t kh = 0; kh < g->KH; kh++) {
                const float *row = xt + 16 * ((oh * g->SH + kh) * PW + ow * g->SW);
                const float *wr = wt + 16 * kh * g->KW;
                for (int64_t kw = 0; kw < g->KW; kw++)
                    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(wr + 16 * kw),
                                         _mm512_loadu_ps(row + 16 * kw), a0);
            }
            _mm512_storeu_ps(yt + 16 * (oh * g->OW + ow), DW_B16_EPI(a0));
        }
    }
#undef DW_B16_EPI
    /* back to planes, then each plane's epilogue as the row tiles' */
    for (int64_t p0 = 0; p0 < OUT; p0 += 16) {
        const int64_t n = OUT - p0 < 16 ? OUT - p0 : 16;
        __m512 r[16];
        for (int64_t j = 0; j < 16; j++)
            r[j] = j < n ? _mm512_loadu_ps(yt + 16 * (p0 + j)) : _mm512_setzero_ps();
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
