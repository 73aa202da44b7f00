/*
 * dwconv-simd.h - the depthwise convolution kernel (dwconv.h), written once
 * over a few vector primitives that each ISA file defines before including
 * it (dwconv-avx2.c, dwconv-avx512.c):
 *
 *   dv, VL                 a vector of VL floats
 *   dmask                  lane mask for up to 2 VL lanes
 *   dv_zero, dv_set1, dv_add, dv_fma(a, b, c) = a*b + c
 *   dv_load1(p)            p[0 .. VL)
 *   dv_load2(p)            p[0], p[2], .., p[2 VL - 2] (reads p[0 .. 2 VL))
 *   dm_make(c, in, n)      lanes j < n whose column c + j lies in [0, in)
 *   dv_mload1 / dv_mload2  the same under a dmask; masked-off lanes read 0
 *                          and never touch memory
 *   dv_loadn, dv_storen    first n lanes (n <= VL), the rest untouched
 *   dv_store
 *   ONR_DWCONV_ROWS        the name of the rows function to define
 *
 * An output plane is cut into tiles of R rows x U vectors along the row:
 * R = 4 on rows whose every kernel row lies inside the input (the rows'
 * accumulators are independent, so the FMA latency is hidden even on 7-wide
 * planes), R = 1 on the top and bottom rows, where only the kernel rows
 * inside the input are summed. Along the row, blocks of VL outputs whose
 * every tap lies inside the input row take plain loads (U = 2 where two
 * such blocks are next to each other); the blocks at the borders and the
 * tail take masked loads, the padding reading as 0 (which adds nothing), and
 * masked stores. Every output is summed the same way in every kind of tile.
 */
#ifndef ONR_DWCONV_SIMD_H
#define ONR_DWCONV_SIMD_H

#include "ops/dwconv.h"

#define DW_INLINE static inline __attribute__((always_inline))
#define DW_UNROLL _Pragma("GCC unroll 8")

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
        h = act_sel(h < 0.f, act_splat(0.f), h);
        h = act_sel(h > 1.f, act_splat(1.f), h);
        return (dv)(g->act == ONR_DW_ACT_HARDSWISH ? x * h : h);
    }
    case ONR_DW_ACT_LEAKYRELU: return (dv)act_sel(x < 0.f, g->a * x, x);
    default: return v;
    }
}

/* v + bias, then the residual and the activation, stored to y[i..]: n
 * lanes (n < VL: a masked tail, Z read likewise). */
DW_INLINE void dw_finish(const onr_dwconv *g, dv v, float bias, const float *zp, float *yp,
                         int64_t i, int64_t n)
{
    v = dv_add(v, dv_set1(bias));
    dv z = dv_zero();
    if (zp) z = n == VL ? dv_load1(zp + i) : dv_loadn(zp + i, n);
    if (zp && !g->res_after) v = dv_add(v, z);
    if (g->act != ONR_DW_ACT_NONE) v = dw_act(g, v);
    if (zp && g->res_after) v = dv_add(v, z);
    if (n == VL)
        dv_store(yp + i, v);
    else
        dv_storen(yp + i, v, n);
}

/* One tile: rows oh .. oh+R-1, U vectors from column ow0, kernel rows
 * [kh0, kh1) (the same for all R rows), S the stride along W; masked (U =
 * 1 only): a border or tail block storing n lanes. R, U, S and masked are
 * constants after inlining. */
DW_INLINE void dw_tile(const onr_dwconv *g, const float *xp, const float *wm, float bias,
                       const float *zp, float *yp, int64_t oh, int64_t kh0, int64_t kh1,
                       int64_t ow0, int64_t n, const int R, const int U, const int S,
                       const int masked)
{
    dv acc[4][2];
    DW_UNROLL for (int r = 0; r < R; r++)
        DW_UNROLL for (int u = 0; u < U; u++) acc[r][u] = dv_zero();
    const int64_t IW = g->IW, KW = g->KW, DW = g->DW, c0 = ow0 * S - g->PL;
    const float *row[4];
    for (int64_t kh = kh0; kh < kh1; kh++) {
        DW_UNROLL for (int r = 0; r < R; r++) row[r] = xp + ((oh + r) * g->SH - g->PT + kh * g->DH) * IW;
        const float *wr = wm + kh * KW;
        for (int64_t kw = 0; kw < KW; kw++) {
            dv wv = dv_set1(wr[kw]);
            int64_t c = c0 + kw * DW;
            if (masked) {
                dmask mk = dm_make(c, IW, S * VL);
                DW_UNROLL for (int r = 0; r < R; r++) {
                    dv v = S == 1 ? dv_mload1(row[r] + c, mk) : dv_mload2(row[r] + c, mk);
                    acc[r][0] = dv_fma(wv, v, acc[r][0]);
                }
            } else {
                DW_UNROLL for (int r = 0; r < R; r++)
                    DW_UNROLL for (int u = 0; u < U; u++) {
                        const float *p = row[r] + c + u * S * VL;
                        dv v = S == 1 ? dv_load1(p) : dv_load2(p);
                        acc[r][u] = dv_fma(wv, v, acc[r][u]);
                    }
            }
        }
    }
    DW_UNROLL for (int r = 0; r < R; r++)
        DW_UNROLL for (int u = 0; u < U; u++)
            dw_finish(g, acc[r][u], bias, zp, yp, (oh + r) * g->OW + ow0 + u * VL,
                      masked ? n : VL);
}

static int64_t dw_floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Blocks of VL outputs along a row: [0, ba) and [bb, nb) masked, [ba, bb)
 * with every tap inside the input row. */
typedef struct dw_cols {
    int64_t ba, bb, nb;
} dw_cols;

static dw_cols dw_col_blocks(const onr_dwconv *g, int64_t S)
{
    dw_cols c;
    int64_t span = VL * S;
    c.nb = (g->OW + VL - 1) / VL;
    c.ba = (g->PL + span - 1) / span; /* b*span - PL >= 0 */
    /* b*span + (KW-1)*DW - PL + span <= IW, and (b+1)*VL <= OW */
    int64_t hi = dw_floordiv(g->IW + g->PL - (g->KW - 1) * g->DW - span, span) + 1;
    int64_t full = g->OW / VL;
    c.bb = hi < full ? hi : full;
    if (c.ba > c.nb) c.ba = c.nb;
    if (c.bb < c.ba) c.bb = c.ba;
    return c;
}

/* R rows from oh over the whole row. */
DW_INLINE void dw_rowtile(const onr_dwconv *g, const float *xp, const float *wm, float bias,
                          const float *zp, float *yp, int64_t oh, int64_t kh0, int64_t kh1,
                          const dw_cols *cb, const int R, const int S)
{
    int64_t b = 0;
    for (; b < cb->ba; b++)
        dw_tile(g, xp, wm, bias, zp, yp, oh, kh0, kh1, b * VL, g->OW - b * VL < VL ? g->OW - b * VL : VL,
                R, 1, S, 1);
    for (; b + 2 <= cb->bb; b += 2)
        dw_tile(g, xp, wm, bias, zp, yp, oh, kh0, kh1, b * VL, VL, R, 2, S, 0);
    if (b < cb->bb) dw_tile(g, xp, wm, bias, zp, yp, oh, kh0, kh1, b * VL, VL, R, 1, S, 0), b++;
    for (; b < cb->nb; b++)
        dw_tile(g, xp, wm, bias, zp, yp, oh, kh0, kh1, b * VL, g->OW - b * VL < VL ? g->OW - b * VL : VL,
                R, 1, S, 1);
}

DW_INLINE void dw_rows(const onr_dwconv *g, const float *xp, const float *wm, float bias,
                       const float *zp, float *yp, int64_t oh0, int64_t oh1, const int S)
{
    dw_cols cb = dw_col_blocks(g, S);
    /* rows whose kernel rows all lie inside the input: [ra, rb) */
    int64_t ra = (g->PT + g->SH - 1) / g->SH;
    int64_t rb = dw_floordiv(g->IH - 1 + g->PT - (g->KH - 1) * g->DH, g->SH) + 1;
    for (int64_t oh = oh0; oh < oh1;) {
        if (oh >= ra && oh + 4 <= rb && oh + 4 <= oh1) {
            dw_rowtile(g, xp, wm, bias, zp, yp, oh, 0, g->KH, &cb, 4, S);
            oh += 4;
            continue;
        }
        int64_t ih0 = oh * g->SH - g->PT;
        int64_t kh0 = ih0 < 0 ? (-ih0 + g->DH - 1) / g->DH : 0;
        int64_t kh1 = g->IH - ih0 <= 0 ? 0 : (g->IH - ih0 + g->DH - 1) / g->DH;
        if (kh1 > g->KH) kh1 = g->KH;
        if (kh0 > kh1) kh0 = kh1;
        dw_rowtile(g, xp, wm, bias, zp, yp, oh, kh0, kh1, &cb, 1, S);
        oh++;
    }
}

void ONR_DWCONV_ROWS(const onr_dwconv *g, const float *xp, const float *wm, float bias,
                     const float *zp, float *yp, int64_t oh0, int64_t oh1)
{
    if (g->SW == 1)
        dw_rows(g, xp, wm, bias, zp, yp, oh0, oh1, 1);
    else
        dw_rows(g, xp, wm, bias, zp, yp, oh0, oh1, 2);
}

#endif
