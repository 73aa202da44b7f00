/*
 * winograd-kern.h - the F(4x4, 3x3) input and output transforms (see
 * winograd.h), written once as plain loops over a row of tiles that the
 * compiler vectorises; included by winograd.c (portable build) and by
 * winograd-avx2.c / winograd-avx512.c (built with those ISAs), each
 * defining WINO_SFX first.
 *
 * Both transforms work on all the tiles of a block at once (one channel),
 * vectorised across the tiles: the 1-D transform down the rows is
 * elementwise on the gathered input rows; across, the columns are first
 * split by their phase (column mod 4), so that "column j of every tile" is
 * a contiguous run, and the transform is elementwise on runs again.
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

/* One run of 4*np floats split by phase: ph[p*np + j] = s[4j + p]. */
static __attribute__((noinline)) void WINO_FN(wino_split_)(const float *restrict s, float *restrict ph, int64_t np)
{
    for (int64_t j = 0; j < np; j++) {
        ph[j] = s[4 * j];
        ph[np + j] = s[4 * j + 1];
        ph[2 * np + j] = s[4 * j + 2];
        ph[3 * np + j] = s[4 * j + 3];
    }
}

/* B^T across: tile j's columns are phases 0..3 at j, then 0..1 at j + 1. */
static __attribute__((noinline)) void WINO_FN(wino_bt_cols_)(const float *restrict ph,
                                                             int64_t np, float *restrict v,
                                                             size_t vs, int64_t nt)
{
    for (int64_t j = 0; j < nt; j++) {
        float e0 = ph[j], e1 = ph[np + j], e2 = ph[2 * np + j], e3 = ph[3 * np + j];
        float e4 = ph[j + 1];
        v[j] = e0 + e4 - 2.f * e2 + 1.5f * (e3 - e1);
        v[vs + j] = e4 - e1 + 0.5f * e2 + 2.5f * e3;
        v[2 * vs + j] = e4 + e1 - 2.5f * e2 + 0.5f * e3;
    }
    for (int64_t j = 0; j < nt; j++) {
        float e1 = ph[np + j], e2 = ph[2 * np + j], e3 = ph[3 * np + j];
        float e4 = ph[j + 1], e5 = ph[np + j + 1];
        v[3 * vs + j] = e4 - e2 + 2.f * (e3 - e1);
        v[4 * vs + j] = e4 - e2 - 0.5f * (e3 - e1);
        v[5 * vs + j] = e5 + e1 - 2.f * e3 + 1.5f * (e4 - e2);
    }
}

void WINO_FN(onr_wino_in_)(const float *rows, int64_t nt, float *v, size_t vstride, float *tmp)
{
    /* rows: 6 runs of L = 4*(nt + 1) floats, tile j's columns at 4j..4j+5 */
    const int64_t np = nt + 1, L = 4 * np;
    float *s = tmp, *ph = tmp + 6 * L;
    WINO_FN(wino_bt_rows_)(rows, s, L, L);
    for (int64_t k = 0; k < 6; k++) {
        WINO_FN(wino_split_)(s + k * L, ph + k * L, np);
        WINO_FN(wino_bt_cols_)(ph + k * L, np, v + (size_t)(6 * k) * vstride, vstride, nt);
    }
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
