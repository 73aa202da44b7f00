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
#include "ops/tr16-avx512.h"

/* ---- small planes, 16 channels at a time (onr_dwconv_block16_avx512) ---- */

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

/* The 8 x 8 blocks of r[0..8) (each 256-bit half of the 8 rows on its own)
 * transposed in place: position u's 16 channels in r[u] become channel c's
 * 8 positions in the low half of r[c] and channel c + 8's in its high half.
 * Two rounds inside 128-bit lanes (unpack, shufps) and one of two-source
 * permutes: 5-10 % faster on the 3x3 layers than three rounds of permutes. */
static inline __attribute__((always_inline)) void tr8x2(__m512 r[8])
{
    __m512 u[8];
    tr4_lanes(r, u, 8);
    /* 128-bit lane L of u[k] (k < 4): channel 4L + k at positions 0-3, of
     * u[k + 4] at positions 4-7; lanes 0 and 2 (1 and 3) of the two make
     * r[k] (r[k + 4]) */
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    const __m512i hi = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    for (int k = 0; k < 4; k++) {
        r[k] = _mm512_permutex2var_ps(u[k], lo, u[k + 4]);
        r[k + 4] = _mm512_permutex2var_ps(u[k], hi, u[k + 4]);
    }
}

/* a[0..8), 8 positions of 16 channels, transposed (tr8x2) and stored to
 * the 16 planes (OUT floats apart) at o. */
static inline __attribute__((always_inline)) void dw_b16_store8(__m512 a[8], float *o,
                                                                int64_t OUT)
{
    tr8x2(a);
    for (int c = 0; c < 8; c++) {
        _mm256_storeu_ps(o + c * OUT, _mm512_castps512_ps256(a[c]));
        _mm256_storeu_ps(o + (c + 8) * OUT, _mm512_extractf32x8_ps(a[c], 1));
    }
}

/* An activation of several operations (the sigmoids, HardSwish, ...) on
 * a row of outputs in L1, rb (16 channels a position), to the planes: out
 * of line, once a row, where no weights are live (beside them, called or
 * inlined every block, the 25 of a 5x5 kernel spilled). */
static inline __attribute__((always_inline)) void
dw_b16_row_act_k(const onr_dwconv *g, const float *rb, __m512 bv, float *orow, int64_t OUT,
                 const int act)
{
    const int64_t OW = g->OW;
    onr_dwconv gk = *g;
    gk.act = act; /* known here: dw_act's switch folds away */
    for (int64_t ow = 0; ow < OW; ow += 8) {
        const int64_t o0 = ow + 8 <= OW ? ow : OW - 8;
        __m512 a[8];
        for (int u = 0; u < 8; u++)
            a[u] = dw_act(&gk, _mm512_add_ps(_mm512_loadu_ps(rb + 16 * (o0 + u)), bv));
        dw_b16_store8(a, orow + o0, OUT);
    }
}

/* The activation chosen once per row, not per vector: an indirect jump
 * before each vector's SiLU kept the eight of a block from overlapping
 * (MobileNet's and EfficientNet's 3x3 layers with SiLU: the activation
 * cost 0.30 ns an element against 0.21 alone). */
static __attribute__((noinline)) void dw_b16_row_act(const onr_dwconv *g, const float *rb,
                                                     __m512 bv, float *orow, int64_t OUT)
{
    switch (g->act) {
    case ONR_DW_ACT_SILU: dw_b16_row_act_k(g, rb, bv, orow, OUT, ONR_DW_ACT_SILU); break;
    case ONR_DW_ACT_SIGMOID: dw_b16_row_act_k(g, rb, bv, orow, OUT, ONR_DW_ACT_SIGMOID); break;
    case ONR_DW_ACT_HARDSWISH: dw_b16_row_act_k(g, rb, bv, orow, OUT, ONR_DW_ACT_HARDSWISH); break;
    case ONR_DW_ACT_HARDSIGMOID:
        dw_b16_row_act_k(g, rb, bv, orow, OUT, ONR_DW_ACT_HARDSIGMOID);
        break;
    default: dw_b16_row_act_k(g, rb, bv, orow, OUT, g->act); break;
    }
}

/* The band's outputs without a residual, straight to the 16 planes (rows
 * at least 8 wide): 8 positions of an output row at a time, the taps as
 * dw_b16_rows', bias and activation on the 16-channel vectors, then an
 * 8 x 8 transpose of each half into rows of 8 positions. A row's last
 * block ends at the row's end, overlapping the one before (the same sums,
 * stored twice). No transposed copy of the outputs and no pass over them
 * after: on MobileNetV2's 56x56 planes that was more than half the time. */
static inline __attribute__((always_inline)) void
dw_b16_direct(const onr_dwconv *g, const float *xt, const float *wt, float *y, float *rb,
              int64_t OUT, int64_t PW, int64_t oh0, int64_t nb, const int KH, const int KW,
              const int SH, const int SW, __m512 bv)
{
    __m512 wv[49];
    for (int t = 0; t < KH * KW; t++) wv[t] = _mm512_loadu_ps(wt + 16 * t);
    const __m512 lo = _mm512_set1_ps(g->a), hi = _mm512_set1_ps(g->b);
    const int64_t OW = g->OW;
    const int simple = g->act == ONR_DW_ACT_NONE || g->act == ONR_DW_ACT_RELU ||
                       g->act == ONR_DW_ACT_CLIP;
    for (int64_t oh = 0; oh < nb; oh++) {
        const float *row = xt + 16 * (oh * SH * PW);
        float *orow = y + (oh0 + oh) * OW;
        for (int64_t ow = 0; ow < OW; ow += 8) {
            const int64_t o0 = ow + 8 <= OW ? ow : OW - 8;
            const float *q = row + 16 * (o0 * SW);
            __m512 a[8];
            for (int u = 0; u < 8; u++) a[u] = _mm512_setzero_ps();
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++) {
                    const float *qt = q + 16 * (kh * PW + kw);
                    for (int u = 0; u < 8; u++)
                        a[u] = _mm512_fmadd_ps(wv[kh * KW + kw], _mm512_loadu_ps(qt + 16 * SW * u),
                                               a[u]);
                }
            if (!simple) { /* to the row buffer, for the pass below */
                for (int u = 0; u < 8; u++) _mm512_storeu_ps(rb + 16 * (o0 + u), a[u]);
                continue;
            }
            for (int u = 0; u < 8; u++) a[u] = _mm512_add_ps(a[u], bv);
            if (g->act == ONR_DW_ACT_RELU)
                for (int u = 0; u < 8; u++) a[u] = dw_act_k(a[u], ONR_DW_ACT_RELU, lo, hi);
            if (g->act == ONR_DW_ACT_CLIP)
                for (int u = 0; u < 8; u++) a[u] = dw_act_k(a[u], ONR_DW_ACT_CLIP, lo, hi);
            dw_b16_store8(a, orow + o0, OUT);
        }
        if (!simple) dw_b16_row_act(g, rb, bv, orow, OUT);
    }
}

/* CALL(KH, KW, SH, SW) with g's kernel and strides as constants for the
 * common kernels (their taps unroll and their weights stay in registers),
 * as variables for the rest. */
#define DW_B16_GEOMETRY(g, CALL)                                                                \
    do {                                                                                       \
        if ((g)->KH == 3 && (g)->KW == 3 && (g)->SH == 1 && (g)->SW == 1) CALL(3, 3, 1, 1);     \
        else if ((g)->KH == 3 && (g)->KW == 3 && (g)->SH == 2 && (g)->SW == 2) CALL(3, 3, 2, 2);\
        else if ((g)->KH == 5 && (g)->KW == 5 && (g)->SH == 1 && (g)->SW == 1) CALL(5, 5, 1, 1);\
        else if ((g)->KH == 5 && (g)->KW == 5 && (g)->SH == 2 && (g)->SW == 2) CALL(5, 5, 2, 2);\
        else if ((g)->KH == 7 && (g)->KW == 7 && (g)->SH == 1 && (g)->SW == 1) CALL(7, 7, 1, 1);\
        else CALL((int)(g)->KH, (int)(g)->KW, (int)(g)->SH, (int)(g)->SW);                     \
    } while (0)

void onr_dwconv_block16_avx512(const onr_dwconv *g, const float *x, const float *wt,
                               const float *b, const float *z, float *y, float *ws, int64_t r0,
                               int64_t r1)
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
    for (int64_t oh0 = r0; oh0 < r1; oh0 += BAND) {
        const int64_t nb = r1 - oh0 < BAND ? r1 - oh0 : BAND;
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
                /* the same columns of the next input row, 16 planes apart:
                 * too many streams for the hardware to follow (MobileNetV2
                 * -1.0 % at 1 thread, -1.7 % at 2, alternating runs in one
                 * process on Zen 5; EfficientNet-B0 -0.3 / -0.8 %) */
                if (ih + 1 < g->IH)
                    for (int c = 0; c < 16; c++)
                        _mm_prefetch((const char *)(xr + c * IN + g->IW + pw0 - g->PL), _MM_HINT_T0);
                tr16(r); /* r[j]: position pw0 + j, the 16 channels */
                /* a constant trip count (kept in registers; a loop to n
                 * becomes a memcpy of the spilled vectors) */
                if (n == 16)
                    for (int j = 0; j < 16; j++) _mm512_storeu_ps(row + 16 * (pw0 + j), r[j]);
                else
                    for (int j = 0; j < 16; j++)
                        if (j < n) _mm512_storeu_ps(row + 16 * (pw0 + j), r[j]);
            }
        }
#define B16_DIRECT(KH, KW, SH, SW)                                                                 \
    dw_b16_direct(g, xt, wt, y, yt, OUT, PW, oh0, nb, KH, KW, SH, SW, bv)
#define B16_ROWS(KH, KW, SH, SW) dw_b16_rows(g, xt, wt, yt, PW, nb, KH, KW, SH, SW, epi_here, bv)
        if (epi_here && g->OW >= 8) {
            DW_B16_GEOMETRY(g, B16_DIRECT);
            continue;
        }
        DW_B16_GEOMETRY(g, B16_ROWS);
#undef B16_DIRECT
#undef B16_ROWS
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
