/*
 * dwconv-simd.h - the depthwise convolution kernel (dwconv.h), written once
 * over a few vector primitives that each ISA file defines before including
 * it (dwconv-avx2.c, dwconv-avx512.c):
 *
 *   dv, VL                 a vector of VL floats
 *   dmask                  lane mask for up to 2 VL lanes
 *   dv_zero, dv_set1, dv_add, dv_fma(a, b, c) = a*b + c
 *   dv_load1(p)            p[0 .. VL)
 *   dv_even(a, b), dv_odd  the even / odd lanes of a then b
 *   dm_make(c, in, n)      lanes j < n whose column c + j lies in [0, in)
 *   dv_mload1(p, m)        p[0 .. VL) under a dmask; masked-off lanes read 0
 *                          and never touch memory
 *   dv_mload_pair(p, m)    p[0 .. 2 VL) under m as two vectors
 *   dv_loadn, dv_storen    first n lanes (n <= VL), the rest untouched
 *   dv_store
 *   ONR_DWCONV_ROWS        the name of the rows function to define
 *
 * An output plane is cut into tiles of R rows x U vectors along the row, R
 * x U = 8 independent accumulators (R = 8 when a row is one vector, as on
 * 7x7 and 14x14 planes; else R = 4, U = 2), so the FMA latency is hidden.
 * Kernel rows above or below the input read a row of zeros (when the input
 * row fits the zero buffer; wider ones take single-row tiles on the top and
 * bottom rows that sum only the kernel rows inside the input). A tile past
 * the last row recomputes the last row rather than shrink. Along the row,
 * blocks of VL outputs whose every tap lies inside the input row take plain
 * loads; the blocks at the borders and the tail take masked loads, the
 * padding reading as 0 (which adds nothing), and masked stores.
 *
 * Stride 2 along W: the input rows the row range needs are split once into
 * their even and odd columns (in the workspace), and every tap becomes a
 * stride-1 load from one of the two (a tap at input column 2*ow + off reads
 * the even row at ow + off/2 when off is even, the odd row at ow + (off-1)/2
 * when odd). Without a workspace, stride 2 runs the reference.
 *
 * The epilogue runs once per tile, out of line, on the accumulators passed
 * through a small buffer: inlined into every kind of tile it made the code
 * many times larger for nothing measurable.
 *
 * Every output is summed the same way in every kind of tile, so the result
 * does not depend on how rows are split among threads.
 */
#ifndef ONR_DWCONV_SIMD_H
#define ONR_DWCONV_SIMD_H

#include "ops/dwconv.h"

#define DW_INLINE static inline __attribute__((always_inline))
#define DW_UNROLL _Pragma("GCC unroll 16")

/* Zero row for the kernel rows outside the input (never written). */
enum { DW_ZERO_MAX = 2048 };
static const float dw_zeros[DW_ZERO_MAX];

enum { DW_S1, DW_S2D }; /* stride 1; stride 2 from rows split into even and odd columns */

/* One plane's sources: rows of xe (and xo, the odd columns for DW_S2D) with
 * row stride rs; we and wo the widths of a row of each. */
typedef struct dw_src {
    const onr_dwconv *g;
    const float *xe, *xo, *wm, *zp;
    float *yp;
    float bias;
    int64_t rs, we, wo;
    int zero_rows; /* kernel rows outside the input read dw_zeros */
} dw_src;

DW_INLINE dv dw_act(const onr_dwconv *g, dv v)
{
    act_vf x = (act_vf)v;
    switch (g->act) {
    case ONR_DW_ACT_RELU: return (dv)act_apply(x, ONR_ACT_RELU, 0.f, 0.f);
    case ONR_DW_ACT_CLIP: return (dv)act_apply(x, ONR_ACT_CLIP, g->a, g->b);
    case ONR_DW_ACT_SIGMOID: return (dv)act_apply(x, ONR_ACT_SIGMOID, 0.f, 0.f);
    case ONR_DW_ACT_SILU: return (dv)act_apply(x, ONR_ACT_SILU, 0.f, 0.f);
    case ONR_DW_ACT_HARDSIGMOID:
    case ONR_DW_ACT_HARDSWISH: {
        act_vf h = g->a * x + g->b;
        h = act_vmin(act_splat(1.f), act_vmax(act_splat(0.f), h));
        return (dv)(g->act == ONR_DW_ACT_HARDSWISH ? x * h : h);
    }
    case ONR_DW_ACT_LEAKYRELU: return (dv)act_sel(x < 0.f, g->a * x, x);
    default: return v;
    }
}

/* The epilogue of a tile of nv vectors acc[k] (k = r*U + u), vector k going
 * to y[i[k] ..]: v + bias (bk[k] when bk is given, else t->bias), then the
 * residual and the activation; n lanes each (n < VL: a masked tail, Z read
 * likewise). */
/* v through an activation known at compile time: none, Relu or Clip (lo,
 * hi: Clip's bounds, splat); max and min, where NaN passes. */
DW_INLINE dv dw_act_k(dv v, const int act, dv lo, dv hi)
{
    if (act == ONR_DW_ACT_RELU) v = (dv)act_vmax((act_vf)dv_zero(), (act_vf)v);
    if (act == ONR_DW_ACT_CLIP) v = (dv)act_vmin((act_vf)hi, act_vmax((act_vf)lo, (act_vf)v));
    return v;
}

/* Full vectors, no residual, an activation known at compile time. */
DW_INLINE void dw_finish_plain(const dw_src *t, const dv *acc, int nv, const int64_t *i,
                               const float *bk, const int act)
{
    const onr_dwconv *g = t->g;
    const dv lo = dv_set1(g->a), hi = dv_set1(g->b);
    for (int k = 0; k < nv; k++)
        dv_store(t->yp + i[k], dw_act_k(dv_add(acc[k], dv_set1(bk ? bk[k] : t->bias)), act, lo, hi));
}

/* Full vectors, no residual, an activation with exp known at compile time
 * (dw_act's switch folds away, so the vectors' exps overlap: the stems
 * with SiLU, 24 vectors a tile). */
DW_INLINE void dw_finish_exp(const dw_src *t, const dv *acc, int nv, const int64_t *i,
                             const float *bk, const int act)
{
    onr_dwconv gk = *t->g;
    gk.act = act;
    for (int k = 0; k < nv; k++)
        dv_store(t->yp + i[k], dw_act(&gk, dv_add(acc[k], dv_set1(bk ? bk[k] : t->bias))));
}

static __attribute__((noinline)) void dw_finish(const dw_src *t, const dv *acc, int nv,
                                                const int64_t *i, int64_t n, const float *bk)
{
    const onr_dwconv *g = t->g;
    if (n == VL && !t->zp) { /* the common case without per-vector tests */
        switch (g->act) {
        case ONR_DW_ACT_NONE: dw_finish_plain(t, acc, nv, i, bk, ONR_DW_ACT_NONE); return;
        case ONR_DW_ACT_RELU: dw_finish_plain(t, acc, nv, i, bk, ONR_DW_ACT_RELU); return;
        case ONR_DW_ACT_CLIP: dw_finish_plain(t, acc, nv, i, bk, ONR_DW_ACT_CLIP); return;
        case ONR_DW_ACT_SILU: dw_finish_exp(t, acc, nv, i, bk, ONR_DW_ACT_SILU); return;
        case ONR_DW_ACT_SIGMOID: dw_finish_exp(t, acc, nv, i, bk, ONR_DW_ACT_SIGMOID); return;
        default: break;
        }
    }
    for (int k = 0; k < nv; k++) {
        dv v = dv_add(acc[k], dv_set1(bk ? bk[k] : t->bias)), z = dv_zero();
        if (t->zp) z = n == VL ? dv_load1(t->zp + i[k]) : dv_loadn(t->zp + i[k], n);
        if (t->zp && !g->res_after) v = dv_add(v, z);
        if (g->act != ONR_DW_ACT_NONE) v = dw_act(g, v);
        if (t->zp && g->res_after) v = dv_add(v, z);
        if (n == VL)
            dv_store(t->yp + i[k], v);
        else
            dv_storen(t->yp + i[k], v, n);
    }
}

/* Tap kw of a block starting at output column ow0: the source column c in
 * the row (odd: the odd row) and the width of that row. */
DW_INLINE int64_t dw_tap(const dw_src *t, int64_t ow0, int64_t kw, const int mode, int *odd,
                         int64_t *width)
{
    const onr_dwconv *g = t->g;
    int64_t off = kw * g->DW - g->PL;
    if (mode == DW_S2D) {
        *odd = (int)(off & 1);
        *width = *odd ? t->wo : t->we;
        return ow0 + (off - *odd) / 2;
    }
    *odd = 0;
    *width = t->we;
    return ow0 + off;
}

/* The tile of dw_tile for a 3x3 kernel with vertical stride SHC (1 or 2)
 * and dilation 1 whose R rows (all real, oh + R <= the end) read only
 * input rows inside it, taking every tap: input-row-stationary. Each input
 * row is loaded once per tap column and feeds the (up to 3) output rows
 * that read it, with the 9 weights in registers: half the loads of dw_tile
 * at stride 1. Masked (border and tail) blocks as dw_tile's. The
 * FMAs of each output run in the same order (kernel row, then column), so
 * the sums are bit-identical to dw_tile's. Where a vector is 16 floats
 * (enough registers). */
DW_INLINE void dw_tile3(const dw_src *t, int64_t oh, int64_t ow0, int64_t n, const int R,
                        const int U, const int mode, const int masked, const int SHC)
{
    const onr_dwconv *g = t->g;
    dv w[3][3];
    DW_UNROLL for (int kh = 0; kh < 3; kh++)
        DW_UNROLL for (int kw = 0; kw < 3; kw++) w[kh][kw] = dv_set1(t->wm[kh * 3 + kw]);
    int64_t c[3];
    int odd[3];
    dmask mk[3];
    DW_UNROLL for (int kw = 0; kw < 3; kw++) {
        int64_t width;
        c[kw] = dw_tap(t, ow0, kw, mode, &odd[kw], &width);
        if (masked) mk[kw] = dm_make(c[kw], width, VL);
    }
    dv acc[8][2];
    DW_UNROLL for (int r = 0; r < R; r++)
        DW_UNROLL for (int u = 0; u < U; u++) acc[r][u] = dv_zero();
    const int64_t ih0 = oh * SHC - g->PT;
    /* input row j feeds output row r through kernel row j - SHC * r */
    DW_UNROLL for (int j = 0; j < (R - 1) * SHC + 3; j++) {
        const float *re = t->xe + (ih0 + j) * t->rs;
        const float *ro = mode == DW_S2D ? t->xo + (ih0 + j) * t->rs : re;
        DW_UNROLL for (int kw = 0; kw < 3; kw++) {
            const float *src = (odd[kw] ? ro : re) + c[kw];
            DW_UNROLL for (int u = 0; u < U; u++) {
                dv x = masked ? dv_mload1(src, mk[kw]) : dv_load1(src + u * VL);
                DW_UNROLL for (int r = 0; r < R; r++) {
                    const int kh = j - SHC * r;
                    if (kh >= 0 && kh < 3) acc[r][u] = dv_fma(w[kh][kw], x, acc[r][u]);
                }
            }
        }
    }
    dv out[8];
    int64_t at[8];
    DW_UNROLL for (int r = 0; r < R; r++)
        DW_UNROLL for (int u = 0; u < U; u++) {
            out[r * U + u] = acc[r][u];
            at[r * U + u] = (oh + r) * g->OW + ow0 + u * VL;
        }
    dw_finish(t, out, R * U, at, masked ? n : VL, NULL);
}

/* dw_tile3's 4-row tiles out of line, one call per tile: inlined beside
 * the general tiles they made the hot loops of other kernel sizes slower
 * (code size). */
static __attribute__((noinline)) void dw_tile3_r4(const dw_src *t, int64_t oh, int64_t ow0,
                                                  int64_t n, int U, int mode, int masked)
{
    const int s2 = t->g->SH == 2;
#define DW_T3(M, S) do {                                                                       \
        if (masked) dw_tile3(t, oh, ow0, n, 4, 1, M, 1, S);                                    \
        else if (U == 2) dw_tile3(t, oh, ow0, n, 4, 2, M, 0, S);                               \
        else dw_tile3(t, oh, ow0, n, 4, 1, M, 0, S);                                           \
    } while (0)
    if (mode == DW_S1) {
        if (s2) DW_T3(DW_S1, 2);
        else DW_T3(DW_S1, 1);
    } else {
        if (s2) DW_T3(DW_S2D, 2);
        else DW_T3(DW_S2D, 1);
    }
#undef DW_T3
}

/* One tile: rows oh .. oh+R-1 (those past oh_end recompute oh_end-1), U
 * vectors from column ow0, kernel rows [kh0, kh1) (the same for all R rows:
 * R > 1 only where they all lie inside the input, or zero rows stand in);
 * masked (U = 1 only): a border or tail block storing n lanes. R, U, mode
 * and masked are constants after inlining. */
DW_INLINE void dw_tile(const dw_src *t, int64_t oh, int64_t oh_end, int64_t kh0, int64_t kh1,
                       int64_t ow0, int64_t n, const int R, const int U, const int mode,
                       const int masked, const int KWC, const int checked)
{
    const onr_dwconv *g = t->g;
    if (VL == 16 && KWC == 3 && R == 4 && !checked && g->KH == 3 && (g->SH == 1 || g->SH == 2) &&
        g->DH == 1 && kh0 == 0 && kh1 == 3 && oh + R <= oh_end) {
        dw_tile3_r4(t, oh, ow0, n, U, mode, masked);
        return;
    }
    int64_t o[8];
    DW_UNROLL for (int r = 0; r < R; r++) o[r] = oh + r < oh_end ? oh + r : oh_end - 1;
    dv acc[8][2];
    DW_UNROLL for (int r = 0; r < R; r++)
        DW_UNROLL for (int u = 0; u < U; u++) acc[r][u] = dv_zero();
    for (int64_t kh = kh0; kh < kh1; kh++) {
        const float *re[8], *ro[8];
        DW_UNROLL for (int r = 0; r < R; r++) {
            int64_t ih = o[r] * g->SH - g->PT + kh * g->DH;
            if (!checked) { /* every kernel row of the tile lies inside the input */
                re[r] = t->xe + ih * t->rs;
                ro[r] = mode == DW_S2D ? t->xo + ih * t->rs : dw_zeros;
                continue;
            }
            int in = ih >= 0 && ih < g->IH;
            re[r] = in ? t->xe + ih * t->rs : dw_zeros;
            ro[r] = in && mode == DW_S2D ? t->xo + ih * t->rs : dw_zeros;
        }
        const int64_t KW = KWC ? KWC : g->KW;
        const float *wr = t->wm + kh * KW;
        for (int64_t kw = 0; kw < KW; kw++) {
            dv wv = dv_set1(wr[kw]);
            int odd;
            int64_t width, c = dw_tap(t, ow0, kw, mode, &odd, &width);
            if (masked) {
                dmask mk = dm_make(c, width, VL);
                DW_UNROLL for (int r = 0; r < R; r++) {
                    dv v = dv_mload1((odd ? ro[r] : re[r]) + c, mk);
                    acc[r][0] = dv_fma(wv, v, acc[r][0]);
                }
            } else {
                DW_UNROLL for (int r = 0; r < R; r++)
                    DW_UNROLL for (int u = 0; u < U; u++) {
                        dv v = dv_load1((odd ? ro[r] : re[r]) + c + u * VL);
                        acc[r][u] = dv_fma(wv, v, acc[r][u]);
                    }
            }
        }
    }
    dv out[8];
    int64_t at[8];
    DW_UNROLL for (int r = 0; r < R; r++)
        DW_UNROLL for (int u = 0; u < U; u++) {
            out[r * U + u] = acc[r][u];
            at[r * U + u] = o[r] * g->OW + ow0 + u * VL;
        }
    dw_finish(t, out, R * U, at, masked ? n : VL, NULL);
}

static int64_t dw_floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Blocks of VL outputs along a row: [0, ba) and [bb, nb) masked, [ba, bb)
 * with every tap inside its source row. */
typedef struct dw_cols {
    int64_t ba, bb, nb;
} dw_cols;

static dw_cols dw_col_blocks(const dw_src *t, const int mode)
{
    const onr_dwconv *g = t->g;
    /* block b reads source columns [b*VL + c, + VL) for each tap's c */
    const int64_t step = VL, len = VL;
    dw_cols cb;
    cb.nb = (g->OW + VL - 1) / VL;
    cb.ba = 0;
    cb.bb = g->OW / VL; /* (b+1)*VL <= OW */
    for (int64_t kw = 0; kw < g->KW; kw++) {
        int odd;
        int64_t width, c = dw_tap(t, 0, kw, mode, &odd, &width);
        int64_t lo = c >= 0 ? 0 : (-c + step - 1) / step;
        int64_t hi = dw_floordiv(width - len - c, step) + 1;
        if (lo > cb.ba) cb.ba = lo;
        if (hi < cb.bb) cb.bb = hi;
    }
    if (cb.ba > cb.nb) cb.ba = cb.nb;
    if (cb.bb < cb.ba) cb.bb = cb.ba;
    return cb;
}

/* R rows from oh over the whole row. */
DW_INLINE void dw_rowtile(const dw_src *t, int64_t oh, int64_t oh_end, int64_t kh0, int64_t kh1,
                          const dw_cols *cb, const int R, const int mode, const int KWC,
                          const int checked)
{
    const int64_t OW = t->g->OW;
    int64_t b = 0;
    for (; b < cb->ba; b++)
        dw_tile(t, oh, oh_end, kh0, kh1, b * VL, OW - b * VL < VL ? OW - b * VL : VL, R, 1, mode,
                1, KWC, checked);
    if (R <= 4)
        for (; b + 2 <= cb->bb; b += 2) dw_tile(t, oh, oh_end, kh0, kh1, b * VL, VL, R, 2, mode, 0, KWC, checked);
    for (; b < cb->bb; b++) dw_tile(t, oh, oh_end, kh0, kh1, b * VL, VL, R, 1, mode, 0, KWC, checked);
    for (; b < cb->nb; b++)
        dw_tile(t, oh, oh_end, kh0, kh1, b * VL, OW - b * VL < VL ? OW - b * VL : VL, R, 1, mode,
                1, KWC, checked);
}

DW_INLINE void dw_rows_k(const dw_src *t, int64_t oh0, int64_t oh1, const int mode, const int KWC)
{
    const onr_dwconv *g = t->g;
    dw_cols cb = dw_col_blocks(t, mode);
    /* rows whose kernel rows all lie inside the input: [ra, rb) */
    int64_t ra = (g->PT + g->SH - 1) / g->SH;
    int64_t rb = dw_floordiv(g->IH - 1 + g->PT - (g->KH - 1) * g->DH, g->SH) + 1;
    if (t->zero_rows) {
        /* 4-row tiles inside [ra, rb) skip the row checks: the same sums */
        const int R = cb.nb == 1 ? 8 : 4;
        for (int64_t oh = oh0; oh < oh1; oh += R) {
            int inside = oh >= ra && oh + R <= rb && oh + R <= oh1;
            /* (8-row tiles, planes a vector wide, are rarely inside: one
             * kind of them keeps the code small) */
            if (R == 8) dw_rowtile(t, oh, oh1, 0, g->KH, &cb, 8, mode, KWC, 1);
            else if (inside) dw_rowtile(t, oh, oh1, 0, g->KH, &cb, 4, mode, KWC, 0);
            else dw_rowtile(t, oh, oh1, 0, g->KH, &cb, 4, mode, KWC, 1);
        }
        return;
    }
    for (int64_t oh = oh0; oh < oh1;) {
        if (oh >= ra && oh + 4 <= rb && oh + 4 <= oh1) {
            dw_rowtile(t, oh, oh1, 0, g->KH, &cb, 4, mode, KWC, 0);
            oh += 4;
            continue;
        }
        int64_t ih0 = oh * g->SH - g->PT;
        int64_t kh0 = ih0 < 0 ? (-ih0 + g->DH - 1) / g->DH : 0;
        int64_t kh1 = g->IH - ih0 <= 0 ? 0 : (g->IH - ih0 + g->DH - 1) / g->DH;
        if (kh1 > g->KH) kh1 = g->KH;
        if (kh0 > kh1) kh0 = kh1;
        dw_rowtile(t, oh, oh1, kh0, kh1, &cb, 1, mode, KWC, 0); /* kernel rows inside only */
        oh++;
    }
}

/* One function for each (stride mode, kernel width), as gc_row's below
 * (compile time). */
#define DW_ROWS_FN(MODE, KWC)                                                                  \
    static __attribute__((noinline)) void dw_rows_##MODE##_##KWC(const dw_src *t, int64_t oh0, \
                                                                 int64_t oh1)                  \
    {                                                                                          \
        dw_rows_k(t, oh0, oh1, MODE, KWC);                                                     \
    }
DW_ROWS_FN(DW_S1, 3)
DW_ROWS_FN(DW_S1, 0)
DW_ROWS_FN(DW_S2D, 3)
DW_ROWS_FN(DW_S2D, 0)
#undef DW_ROWS_FN
/* Kernel width 3 (MobileNet, EfficientNet) with its tap loop unrolled; any
 * other width through a loop. */
DW_INLINE void dw_rows(const dw_src *t, int64_t oh0, int64_t oh1, const int mode)
{
    if (mode == DW_S1) {
        if (t->g->KW == 3) dw_rows_DW_S1_3(t, oh0, oh1);
        else dw_rows_DW_S1_0(t, oh0, oh1);
    } else {
        if (t->g->KW == 3) dw_rows_DW_S2D_3(t, oh0, oh1);
        else dw_rows_DW_S2D_0(t, oh0, oh1);
    }
}

/* Split input rows [r0, r1) of xp into their even and odd columns. */
static void dw_split(const onr_dwconv *g, const float *xp, float *xe, float *xo, int64_t rs,
                     int64_t r0, int64_t r1)
{
    for (int64_t ih = r0; ih < r1; ih++) {
        const float *s = xp + ih * g->IW;
        float *e = xe + ih * rs, *od = xo + ih * rs;
        int64_t j = 0;
        for (; 2 * j + 2 * VL <= g->IW; j += VL) {
            dv a = dv_load1(s + 2 * j), b = dv_load1(s + 2 * j + VL);
            dv_store(e + j, dv_even(a, b));
            dv_store(od + j, dv_odd(a, b));
        }
        for (; 2 * j < g->IW; j += VL) { /* the tail under a mask */
            dv a, b;
            dv_mload_pair(s + 2 * j, dm_make(2 * j, g->IW, 2 * VL), &a, &b);
            int64_t ne = (g->IW + 1) / 2 - j, no = g->IW / 2 - j;
            dv_storen(e + j, dv_even(a, b), ne < VL ? ne : VL);
            if (no > 0) dv_storen(od + j, dv_odd(a, b), no < VL ? no : VL);
        }
    }
}

/* ---- small groups (cg > 1) ------------------------------------------------
 *
 * A tile is MB output channels of one group x U vectors of one output row:
 * MB x U accumulators (at most 24, 8 where a vector is 8 floats), every
 * input vector loaded once for the MB channels. The sum runs over the cg
 * input planes (c-major), then the kernel rows inside the input, then the
 * taps along the row, the same order in every kind of tile. Stride 2 splits
 * each of the cg planes' rows into even and odd columns, as above. */

enum { GC_MB = 8, GC_UMAX = VL >= 16 ? 3 : 1, GC_KW_MAX = ONR_GCONV_KW_MAX };

typedef struct gc_src {
    dw_src t;          /* the first plane's view: xe/xo of input plane 0 */
    int64_t ps;        /* floats between input planes in xe (and xo) */
    int64_t out;       /* floats between output planes: OH x OW */
    int64_t odd_off;   /* stride 2: floats from an even row to its odd row */
    const float *wt;   /* this block's filters, tap-major: wt[tap * MB + m] */
    const float *bias; /* MB biases or NULL */
} gc_src;

/* Tap kw of a block at column ow0: the offset of its first source float
 * from the even row's start (the odd row follows the even plane, IH rows
 * of rs floats, in the split layout) and its border mask. */
typedef struct gc_taps {
    int64_t off[GC_KW_MAX];
    dmask mk[GC_KW_MAX];
} gc_taps;

DW_INLINE void gc_tap_table(const gc_src *s, int64_t ow0, const int mode, const int masked,
                            gc_taps *tt)
{
    const dw_src *t = &s->t;
    for (int64_t kw = 0; kw < t->g->KW; kw++) {
        int odd;
        int64_t width, col = dw_tap(t, ow0, kw, mode, &odd, &width);
        tt->off[kw] = col + (odd ? s->odd_off : 0);
        if (masked) tt->mk[kw] = dm_make(col, width, VL);
    }
}

/* KWC: the kernel width when known at compile time (3), else 0. mf: the
 * tile's first vector reads past the row's start for some taps (masked
 * loads); ml: its last vector past the row's end. n: the valid outputs of
 * the last vector (VL unless a lone masked vector ends the row early). */
DW_INLINE void gc_tile(const gc_src *s, int64_t oh, int64_t kh0, int64_t kh1, int64_t ow0,
                       int64_t n, const int MB, const int U, const int mode, const int mf,
                       const int ml, const int KWC)
{
    const dw_src *t = &s->t;
    const onr_dwconv *g = t->g;
    const int64_t KW = KWC ? KWC : g->KW, KK = g->KH * KW;
    gc_taps tt, tl;
    gc_tap_table(s, ow0, mode, mf, &tt);
    if (ml) gc_tap_table(s, ow0 + (U - 1) * VL, mode, 1, &tl);
    dv acc[GC_MB][3];
    DW_UNROLL for (int m = 0; m < MB; m++)
        DW_UNROLL for (int u = 0; u < U; u++) acc[m][u] = dv_zero();
    for (int64_t c = 0; c < g->cg; c++) {
        const float *pe = t->xe + c * s->ps;
        for (int64_t kh = kh0; kh < kh1; kh++) {
            const float *re = pe + (oh * g->SH - g->PT + kh * g->DH) * t->rs;
            const float *wr = s->wt + (c * KK + kh * KW) * MB;
            DW_UNROLL for (int64_t kw = 0; kw < KW; kw++, wr += MB) {
                const float *src = re + tt.off[kw];
                dv v[3];
                DW_UNROLL for (int u = 0; u < U; u++) {
                    if (u == 0 && mf) v[0] = dv_mload1(src, tt.mk[kw]);
                    else if (u == U - 1 && ml) v[u] = dv_mload1(src + u * VL, tl.mk[kw]);
                    else v[u] = dv_load1(src + u * VL);
                }
                DW_UNROLL for (int m = 0; m < MB; m++) {
                    dv wv = dv_set1(wr[m]);
                    DW_UNROLL for (int u = 0; u < U; u++) acc[m][u] = dv_fma(wv, v[u], acc[m][u]);
                }
            }
        }
    }
    /* one epilogue call for the tile: output (and residual) planes s->out
     * floats apart, a bias per plane */
    dv out[GC_MB * 3];
    int64_t at[GC_MB * 3];
    float bk[GC_MB * 3];
    DW_UNROLL for (int m = 0; m < MB; m++)
        DW_UNROLL for (int u = 0; u < U; u++) {
            out[m * U + u] = acc[m][u];
            at[m * U + u] = m * s->out + oh * g->OW + ow0 + u * VL;
            bk[m * U + u] = s->bias ? s->bias[m] : 0.f;
        }
    dw_finish(t, out, MB * U, at, mf || ml ? n : VL, bk);
}

/* A tile of U vectors (2 or 3) whose first (fl) and/or last (ll) vector
 * is masked, all of them full. */
DW_INLINE void gc_tile_edges(const gc_src *s, int64_t oh, int64_t kh0, int64_t kh1, int64_t ow0,
                             const int MB, const int U, const int mode, int fl, int ll,
                             const int KWC)
{
    if (fl && ll) gc_tile(s, oh, kh0, kh1, ow0, VL, MB, U, mode, 1, 1, KWC);
    else if (fl) gc_tile(s, oh, kh0, kh1, ow0, VL, MB, U, mode, 1, 0, KWC);
    else if (ll) gc_tile(s, oh, kh0, kh1, ow0, VL, MB, U, mode, 0, 1, KWC);
    else gc_tile(s, oh, kh0, kh1, ow0, VL, MB, U, mode, 0, 0, KWC);
}

/* One output row: its blocks of VL outputs, MB channels each. */
DW_INLINE void gc_row_k(const gc_src *s, int64_t oh, int64_t kh0, int64_t kh1, const dw_cols *cb,
                        const int MB, const int mode, const int KWC)
{
    const int64_t OW = s->t.g->OW;
    int64_t b = 0;
    if (GC_UMAX == 3 && OW % VL == 0 && cb->nb >= 2 && cb->ba <= 1 && cb->nb - cb->bb <= 1) {
        /* full vectors, at most one masked at each end: the masked ones
         * join their neighbours in tiles of 2 or 3 vectors, so no tile is
         * a single vector. ResNet's 7x7/2 stem to 112 columns: tiles of 3,
         * 2, 2 vectors instead of 1, 3, 2, 1. The single-vector tiles (8
         * FMAs a tap, each on its own accumulator) ran at two thirds of
         * the others' rate: the layer alone 1.32 -> 1.19 ms at 1 thread
         * (Zen 5), in ResNet-18 1.43 -> 1.26. Sums in the same order. */
        const int mfirst = cb->ba == 1, mlast = cb->bb < cb->nb;
        while (b < cb->nb) {
            const int64_t left = cb->nb - b;
            const int U = left >= 5 || left == 3 ? 3 : 2;
            const int fl = b == 0 && mfirst, ll = b + U == cb->nb && mlast;
            if (U == 3) gc_tile_edges(s, oh, kh0, kh1, b * VL, MB, 3, mode, fl, ll, KWC);
            else gc_tile_edges(s, oh, kh0, kh1, b * VL, MB, 2, mode, fl, ll, KWC);
            b += U;
        }
        return;
    }
    for (; b < cb->ba; b++)
        gc_tile(s, oh, kh0, kh1, b * VL, OW - b * VL < VL ? OW - b * VL : VL, MB, 1, mode, 1, 0, KWC);
    if (GC_UMAX == 3) {
        for (; b + 3 <= cb->bb; b += 3) gc_tile(s, oh, kh0, kh1, b * VL, VL, MB, 3, mode, 0, 0, KWC);
        for (; b + 2 <= cb->bb; b += 2) gc_tile(s, oh, kh0, kh1, b * VL, VL, MB, 2, mode, 0, 0, KWC);
    }
    for (; b < cb->bb; b++) gc_tile(s, oh, kh0, kh1, b * VL, VL, MB, 1, mode, 0, 0, KWC);
    for (; b < cb->nb; b++)
        gc_tile(s, oh, kh0, kh1, b * VL, OW - b * VL < VL ? OW - b * VL : VL, MB, 1, mode, 1, 0, KWC);
}

/* Each (channel block, mode, kernel width) row is a function of its own,
 * called once a row: inlined into one, the 16 of them made a 450 KB
 * function that took gcc 50 s to compile, and 6 minutes with the
 * sanitizers (the CI's critical path). */
#define GC_ROW_FN(MB, MODE, KWC)                                                               \
    static __attribute__((noinline)) void gc_row_##MB##_##MODE##_##KWC(                       \
        const gc_src *s, int64_t oh, int64_t kh0, int64_t kh1, const dw_cols *cb)              \
    {                                                                                          \
        gc_row_k(s, oh, kh0, kh1, cb, MB, MODE, KWC);                                          \
    }
#define GC_ROW_FNS(MB) GC_ROW_FN(MB, DW_S1, 3) GC_ROW_FN(MB, DW_S1, 0) \
    GC_ROW_FN(MB, DW_S2D, 3) GC_ROW_FN(MB, DW_S2D, 0)
GC_ROW_FNS(8)
/* ResNet's stem (7x7 / 2 over 3 channels) with its taps unrolled: 1.76 ->
 * 1.70 ms at 1 thread, 0.87 -> 0.84 at 2 (the layer alone, Intel Xeon) */
GC_ROW_FN(8, DW_S2D, 7)
GC_ROW_FNS(4)
GC_ROW_FNS(2)
GC_ROW_FNS(1)
#undef GC_ROW_FNS
#undef GC_ROW_FN

#define GC_ROW_CALL(MB, MODE)                                                                  \
    (s->t.g->KW == 3 ? gc_row_##MB##_##MODE##_3(s, oh, kh0, kh1, cb)                           \
                     : gc_row_##MB##_##MODE##_0(s, oh, kh0, kh1, cb))
DW_INLINE void gc_row(const gc_src *s, int64_t oh, int64_t kh0, int64_t kh1, const dw_cols *cb,
                      const int MB, const int mode)
{
    if (mode == DW_S1) {
        if (MB == 8) GC_ROW_CALL(8, DW_S1);
        else if (MB == 4) GC_ROW_CALL(4, DW_S1);
        else if (MB == 2) GC_ROW_CALL(2, DW_S1);
        else GC_ROW_CALL(1, DW_S1);
    } else {
        if (MB == 8 && s->t.g->KW == 7) gc_row_8_DW_S2D_7(s, oh, kh0, kh1, cb);
        else if (MB == 8) GC_ROW_CALL(8, DW_S2D);
        else if (MB == 4) GC_ROW_CALL(4, DW_S2D);
        else if (MB == 2) GC_ROW_CALL(2, DW_S2D);
        else GC_ROW_CALL(1, DW_S2D);
    }
}
#undef GC_ROW_CALL

DW_INLINE void gc_rows(const gc_src *s, int nm, int64_t oh0, int64_t oh1, const int mode)
{
    const onr_dwconv *g = s->t.g;
    dw_cols cb = dw_col_blocks(&s->t, mode);
    for (int64_t oh = oh0; oh < oh1; oh++) {
        int64_t ih0 = oh * g->SH - g->PT;
        int64_t kh0 = ih0 < 0 ? (-ih0 + g->DH - 1) / g->DH : 0;
        int64_t kh1 = g->IH - ih0 <= 0 ? 0 : (g->IH - ih0 + g->DH - 1) / g->DH;
        if (kh1 > g->KH) kh1 = g->KH;
        if (kh0 > kh1) kh0 = kh1;
        /* channel blocks of 8, 4, 2, 1 (filters reordered per block) */
        gc_src sb = *s;
        for (int m0 = 0; m0 < nm;) {
            int left = nm - m0;
            sb.wt = s->wt + m0 * g->cg * g->KH * g->KW;
            sb.t.zp = s->t.zp ? s->t.zp + m0 * s->out : NULL;
            sb.t.yp = s->t.yp + m0 * s->out;
            sb.bias = s->bias ? s->bias + m0 : NULL;
            if (left >= 8) gc_row(&sb, oh, kh0, kh1, &cb, 8, mode), m0 += 8;
            else if (left >= 4) gc_row(&sb, oh, kh0, kh1, &cb, 4, mode), m0 += 4;
            else if (left >= 2) gc_row(&sb, oh, kh0, kh1, &cb, 2, mode), m0 += 2;
            else gc_row(&sb, oh, kh0, kh1, &cb, 1, mode), m0 += 1;
        }
    }
}

void ONR_GCONV_ROWS(const onr_dwconv *g, const float *xg, const float *wl, const float *bias,
                    const float *zp, float *yp, int nm, int64_t oh0, int64_t oh1, float *ws)
{
    gc_src s = {.t = {.g = g, .xe = xg, .xo = NULL, .wm = NULL, .zp = zp, .yp = yp,
                      .rs = g->IW, .we = g->IW, .wo = 0, .zero_rows = 0},
                .ps = g->IH * g->IW, .out = g->OH * g->OW, .wt = wl, .bias = bias};
    if (g->SW == 1) {
        gc_rows(&s, nm, oh0, oh1, DW_S1);
        return;
    }
    /* stride 2 (the driver sends no other, and then always a workspace):
     * the input rows these output rows read, of each of the cg planes */
    int64_t r0 = oh0 * g->SH - g->PT, r1 = (oh1 - 1) * g->SH - g->PT + (g->KH - 1) * g->DH + 1;
    r0 = r0 < 0 ? 0 : r0;
    r1 = r1 > g->IH ? g->IH : r1;
    s.t.we = (g->IW + 1) / 2;
    s.t.wo = g->IW / 2;
    s.t.rs = s.t.we;
    s.ps = 2 * g->IH * s.t.rs;
    s.t.xe = ws;
    s.t.xo = ws + g->IH * s.t.rs;
    s.odd_off = g->IH * s.t.rs;
    for (int64_t c = 0; c < g->cg; c++)
        dw_split(g, xg + c * g->IH * g->IW, ws + c * s.ps, ws + c * s.ps + g->IH * s.t.rs,
                 s.t.rs, r0, r1);
    gc_rows(&s, nm, oh0, oh1, DW_S2D);
}

void ONR_DWCONV_ROWS(const onr_dwconv *g, const float *xp, const float *wm, float bias,
                     const float *zp, float *yp, int64_t oh0, int64_t oh1, float *ws)
{
    dw_src t = {.g = g, .xe = xp, .xo = NULL, .wm = wm, .zp = zp, .yp = yp, .bias = bias,
                .rs = g->IW, .we = g->IW, .wo = 0, .zero_rows = g->IW <= DW_ZERO_MAX};
    if (g->SW == 1) {
        dw_rows(&t, oh0, oh1, DW_S1);
    } else if (!ws) {
        onr_dwconv_rows_ref(g, xp, wm, bias, zp, yp, oh0, oh1, ws);
    } else {
        /* the input rows these output rows read */
        int64_t r0 = oh0 * g->SH - g->PT, r1 = (oh1 - 1) * g->SH - g->PT + (g->KH - 1) * g->DH + 1;
        r0 = r0 < 0 ? 0 : r0;
        r1 = r1 > g->IH ? g->IH : r1;
        t.we = (g->IW + 1) / 2;
        t.wo = g->IW / 2;
        t.rs = t.we;
        t.xe = ws;
        t.xo = ws + g->IH * t.rs;
        dw_split(g, xp, ws, ws + g->IH * t.rs, t.rs, r0, r1);
        dw_rows(&t, oh0, oh1, DW_S2D);
    }
}

#endif
