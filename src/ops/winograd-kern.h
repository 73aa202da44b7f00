/*
 * winograd-kern.h - the F(4x4, 3x3) input and output transforms (see
 * winograd.h), written once as plain loops over a row of tiles that the
 * compiler vectorises; included by winograd.c (portable build) and by
 * winograd-avx2.c / winograd-avx512.c (built with those ISAs), each
 * defining WINO_SFX first.
 *
 * Both transforms work on all the tiles of a block at once (one channel),
 * vectorised across the tiles: the input windows come gathered as 36 runs
 * ("row i, column p of every tile", winograd.c), so that both 1-D
 * transforms are elementwise operations on runs of nt floats.
 *
 * The interpolation points are 0, 1, -1, 1/2, -2 (and infinity), not the
 * usual 0, +-1, +-2: their B and A have smaller entries, and the rounding
 * error of the whole convolution comes out about half as large (measured
 * on random data, 64 channels), which ResNet-50's logits need to stay well
 * inside rtol 1e-3 / atol 1e-4 of PyTorch.
 *
 *   B^T (rows of d):                          A^T (rows of m):
 *     s0 = d0 + d4 - 2 d2 + 1.5 (d3 - d1)       a0 = m0 + (m1 + m2) + (m3 + m4)
 *     s1 = d4 - d1 + 0.5 d2 + 2.5 d3            a1 = (m1 - m2) + 0.5 m3 - 2 m4
 *     s2 = d4 + d1 - 2.5 d2 + 0.5 d3            a2 = (m1 + m2) + 0.25 m3 + 4 m4
 *     s3 = d4 - d2 + 2 (d3 - d1)                a3 = (m1 - m2) + 0.125 m3 - 8 m4 + m5
 *     s4 = d4 - d2 - 0.5 (d3 - d1)
 *     s5 = d5 + d1 - 2 d3 + 1.5 (d4 - d2)
 */
#include <stdint.h>
#include <string.h>

#include "ops/winograd.h"

#define WINO_CAT2(a, b) a##b
#define WINO_CAT(a, b) WINO_CAT2(a, b)
#define WINO_FN(name) WINO_CAT(name, WINO_SFX)

/* (GCC 12 vectorises these loops when they index restrict parameters; a
 * restrict pointer declared inside the function stops it. noinline keeps
 * the parameters' restrict.) */

/* B^T down 6 runs of n floats: s[k*ld + j] from d[i*ld + j]. (In two
 * loops of three outputs: GCC 12 gives up on one with six.) */
static __attribute__((noinline)) void WINO_FN(wino_bt_rows_)(const float *restrict d,
                                                             float *restrict s, int64_t n,
                                                             int64_t ld)
{
    for (int64_t j = 0; j < n; j++) {
        float d0 = d[j], d1 = d[ld + j], d2 = d[2 * ld + j], d3 = d[3 * ld + j];
        float d4 = d[4 * ld + j];
        s[j] = d0 + d4 - 2.f * d2 + 1.5f * (d3 - d1);
        s[ld + j] = d4 - d1 + 0.5f * d2 + 2.5f * d3;
        s[2 * ld + j] = d4 + d1 - 2.5f * d2 + 0.5f * d3;
    }
    for (int64_t j = 0; j < n; j++) {
        float d1 = d[ld + j], d2 = d[2 * ld + j], d3 = d[3 * ld + j];
        float d4 = d[4 * ld + j], d5 = d[5 * ld + j];
        s[3 * ld + j] = d4 - d2 + 2.f * (d3 - d1);
        s[4 * ld + j] = d4 - d2 - 0.5f * (d3 - d1);
        s[5 * ld + j] = d5 + d1 - 2.f * d3 + 1.5f * (d4 - d2);
    }
}

/* B^T across: tile j's six columns are the runs ph[p*nt + j], p = 0..5. */
static __attribute__((noinline)) void WINO_FN(wino_bt_cols_)(const float *restrict ph,
                                                             int64_t nt, float *restrict v,
                                                             size_t vs)
{
    for (int64_t j = 0; j < nt; j++) {
        float e0 = ph[j], e1 = ph[nt + j], e2 = ph[2 * nt + j], e3 = ph[3 * nt + j];
        float e4 = ph[4 * nt + j];
        v[j] = e0 + e4 - 2.f * e2 + 1.5f * (e3 - e1);
        v[vs + j] = e4 - e1 + 0.5f * e2 + 2.5f * e3;
        v[2 * vs + j] = e4 + e1 - 2.5f * e2 + 0.5f * e3;
    }
    for (int64_t j = 0; j < nt; j++) {
        float e1 = ph[nt + j], e2 = ph[2 * nt + j], e3 = ph[3 * nt + j];
        float e4 = ph[4 * nt + j], e5 = ph[5 * nt + j];
        v[3 * vs + j] = e4 - e2 + 2.f * (e3 - e1);
        v[4 * vs + j] = e4 - e2 - 0.5f * (e3 - e1);
        v[5 * vs + j] = e5 + e1 - 2.f * e3 + 1.5f * (e4 - e2);
    }
}

#ifndef WINO_OWN_GATHER
/* n groups of 4 floats split by position: d[p*ld + t] = s[4t + p]. */
static __attribute__((noinline)) void WINO_FN(wino_split4_)(const float *restrict s,
                                                            float *restrict d, int64_t ld,
                                                            int64_t n)
{
    for (int64_t t = 0; t < n; t++) {
        d[t] = s[4 * t];
        d[ld + t] = s[4 * t + 1];
        d[2 * ld + t] = s[4 * t + 2];
        d[3 * ld + t] = s[4 * t + 3];
    }
}

/* The six columns of each of nx tiles in one input row: d[p*ld + t] =
 * row[ix0 + 4t + p], 0 outside [0, IW) (row NULL: all 0). */
void WINO_FN(onr_wino_gather_)(const float *row, int64_t IW, int64_t ix0, int64_t nx, float *d,
                               int64_t ld)
{
    if (!row) {
        for (int64_t p = 0; p < 6; p++) memset(d + p * ld, 0, sizeof(float) * (size_t)nx);
        return;
    }
    /* t in [tlo, thi): all six columns inside the row */
    int64_t tlo = ix0 >= 0 ? 0 : (-ix0 + 3) / 4;
    int64_t thi = IW - ix0 >= 6 ? (IW - ix0 - 6) / 4 + 1 : 0;
    if (thi > nx) thi = nx;
    if (tlo > thi) tlo = thi;
    for (int64_t t = 0; t < nx; t++) {
        if (t == tlo) t = thi; /* the inside part below */
        if (t >= nx) break;
        for (int64_t p = 0; p < 6; p++) {
            int64_t col = ix0 + 4 * t + p;
            d[p * ld + t] = col >= 0 && col < IW ? row[col] : 0.f;
        }
    }
    if (tlo == thi) return;
    WINO_FN(wino_split4_)(row + ix0 + 4 * tlo, d + tlo, ld, thi - tlo);
    /* columns 4, 5 of tile t are columns 0, 1 of tile t + 1 */
    memcpy(d + 4 * ld + tlo, d + tlo + 1, sizeof(float) * (size_t)(thi - 1 - tlo));
    memcpy(d + 5 * ld + tlo, d + ld + tlo + 1, sizeof(float) * (size_t)(thi - 1 - tlo));
    d[4 * ld + thi - 1] = row[ix0 + 4 * thi];
    d[5 * ld + thi - 1] = row[ix0 + 4 * thi + 1];
}
#endif

void WINO_FN(onr_wino_in_)(const float *d, int64_t nt, float *v, size_t vstride, float *tmp)
{
    /* d[(i*6 + p)*nt + j]: input row i, column p of tile j's window; down
     * the rows first (runs of 6nt), then across each row k */
    WINO_FN(wino_bt_rows_)(d, tmp, 6 * nt, 6 * nt);
    for (int64_t k = 0; k < 6; k++)
        WINO_FN(wino_bt_cols_)(tmp + k * 6 * nt, nt, v + (size_t)(6 * k) * vstride, vstride);
}

/* A^T down the 6 rows of column l: q[(a*6 + l)*nt + j], a = 0..3. */
static __attribute__((noinline)) void WINO_FN(wino_at_rows_)(const float *restrict m, size_t ms, float *restrict q,
                                          int64_t nt)
{
    for (int64_t j = 0; j < nt; j++) {
        float m0 = m[j], m1 = m[6 * ms + j], m2 = m[12 * ms + j], m3 = m[18 * ms + j];
        float m4 = m[24 * ms + j], m5 = m[30 * ms + j];
        float a = m1 + m2, b = m1 - m2;
        q[j] = m0 + a + (m3 + m4);
        q[6 * nt + j] = b + 0.5f * m3 - 2.f * m4;
        q[12 * nt + j] = a + 0.25f * m3 + 4.f * m4;
        q[18 * nt + j] = b + 0.125f * m3 - 8.f * m4 + m5;
    }
}

/* A^T across one row of q (6 runs of nt), plus bias, interleaved into o. */
static __attribute__((noinline)) void WINO_FN(wino_at_cols_)(const float *restrict q, int64_t nt, float bias,
                                          float *restrict o)
{
    for (int64_t t = 0; t < nt; t++) {
        float w0 = q[t], w1 = q[nt + t], w2 = q[2 * nt + t], w3 = q[3 * nt + t];
        float w4 = q[4 * nt + t], w5 = q[5 * nt + t];
        float a = w1 + w2, b = w1 - w2;
        o[4 * t] = (w0 + a + (w3 + w4)) + bias;
        o[4 * t + 1] = (b + 0.5f * w3 - 2.f * w4) + bias;
        o[4 * t + 2] = (a + 0.25f * w3 + 4.f * w4) + bias;
        o[4 * t + 3] = (b + 0.125f * w3 - 8.f * w4 + w5) + bias;
    }
}

void WINO_FN(onr_wino_out_)(const float *mx, size_t ms, int64_t nt, float bias, float *out,
                            float *tmp)
{
    for (int64_t l = 0; l < 6; l++) WINO_FN(wino_at_rows_)(mx + (size_t)l * ms, ms, tmp + l * nt, nt);
    for (int64_t r = 0; r < 4; r++)
        WINO_FN(wino_at_cols_)(tmp + r * 6 * nt, nt, bias, out + r * 4 * nt);
}

/* One output row of n floats from the output transform's s into y, with
 * the epilogue (winograd.h, onr_wino_epi): v = s[i] (+ zb[i]), clamped to
 * [lo, hi] as conv.c's Relu and Clip (v < lo ? lo : v, then v > hi ? hi :
 * v; -inf and inf keep v, NaN too), (+ za[i]); zb, za NULL: not added. One
 * pass where a copy, a residual pass and an activation pass were (the copy
 * and the Relu pass took a tenth of a 64-channel 56x56 layer). */
void WINO_FN(onr_wino_store_)(float *restrict y, const float *restrict s, const float *restrict zb,
                              const float *restrict za, int64_t n, float lo, float hi)
{
    if (zb)
        for (int64_t i = 0; i < n; i++) {
            float v = s[i] + zb[i];
            v = v < lo ? lo : v;
            y[i] = v > hi ? hi : v;
        }
    else
        for (int64_t i = 0; i < n; i++) {
            float v = s[i];
            v = v < lo ? lo : v;
            y[i] = v > hi ? hi : v;
        }
    if (za)
        for (int64_t i = 0; i < n; i++) y[i] += za[i];
}
