/*
 * winograd-kern.h - the F(4x4, 3x3) input and output transforms (see
 * winograd.h), written once as plain loops over a row of tiles that the
 * compiler vectorises; included by winograd.c (portable build) and by
 * winograd-avx2.c / winograd-avx512.c (built with those ISAs), each
 * defining WINO_SFX first.
 *
 * Both transforms work on a row of nx tiles at a time, vectorised across
 * the tiles: the columns of the tiles' windows are first split by their
 * phase (column mod 4), so that "column j of every tile" is a contiguous
 * run, and the 1-D transforms become elementwise operations on runs.
 *
 *   B^T (rows of d):                     A^T (rows of m):
 *     s0 = 4 d0 - 5 d2 + d4                a0 = m0 + (m1 + m2) + (m3 + m4)
 *     s1 = (d3 + d4) - 4 (d1 + d2)         a1 = (m1 - m2) + 2 (m3 - m4)
 *     s2 = (d4 - d3) + 4 (d1 - d2)         a2 = (m1 + m2) + 4 (m3 + m4)
 *     s3 = (d4 - d2) + 2 (d3 - d1)         a3 = (m1 - m2) + 8 (m3 - m4) + m5
 *     s4 = (d4 - d2) - 2 (d3 - d1)
 *     s5 = 4 d1 - 5 d3 + d5
 */
#include <stdint.h>
#include <string.h>

#include "ops/winograd.h"

#define WINO_CAT2(a, b) a##b
#define WINO_CAT(a, b) WINO_CAT2(a, b)
#define WINO_FN(name) WINO_CAT(name, WINO_SFX)

/* B^T applied down 6 runs of n floats: s[k*ld + j] from d[i*ld + j]. */
static inline void WINO_FN(wino_bt_)(const float *restrict d, float *restrict s, int64_t n,
                                     int64_t ld)
{
    const float *d0 = d, *d1 = d + ld, *d2 = d + 2 * ld, *d3 = d + 3 * ld, *d4 = d + 4 * ld,
                *d5 = d + 5 * ld;
    float *s0 = s, *s1 = s + ld, *s2 = s + 2 * ld, *s3 = s + 3 * ld, *s4 = s + 4 * ld,
          *s5 = s + 5 * ld;
    for (int64_t j = 0; j < n; j++) {
        float a = d1[j] + d2[j], b = d1[j] - d2[j], c = d4[j] - d2[j], e = d3[j] - d1[j];
        s0[j] = 4.f * d0[j] - 5.f * d2[j] + d4[j];
        s1[j] = (d3[j] + d4[j]) - 4.f * a;
        s2[j] = (d4[j] - d3[j]) + 4.f * b;
        s3[j] = c + 2.f * e;
        s4[j] = c - 2.f * e;
        s5[j] = 4.f * d1[j] - 5.f * d3[j] + d5[j];
    }
}

void WINO_FN(onr_wino_in_)(const float *x, int64_t IH, int64_t IW, int64_t iy0, int64_t ix0,
                           int64_t nx, float *v, size_t vstride, float *tmp)
{
    /* d: the 6 input rows, each split into 4 phase runs of np = nx + 1
     * (tile t's columns are phases 0..3 at t, then 0..1 at t + 1); zeros
     * where the window lies in padding */
    const int64_t np = nx + 1, L = 4 * np;
    float *restrict d = tmp, *restrict s = tmp + 6 * L;
    /* t in [tlo, thi): all four columns ix0 + 4t + p inside the row */
    int64_t tlo = ix0 >= 0 ? 0 : (-ix0 + 3) / 4;
    int64_t thi = IW - ix0 >= 4 ? (IW - ix0 - 4) / 4 + 1 : 0;
    if (tlo > np) tlo = np;
    if (thi > np) thi = np;
    if (thi < tlo) thi = tlo;
    for (int64_t i = 0; i < 6; i++) {
        float *restrict di = d + i * L;
        int64_t iy = iy0 + i;
        if (iy < 0 || iy >= IH) {
            memset(di, 0, sizeof(float) * (size_t)L);
            continue;
        }
        const float *row = x + iy * IW;
        for (int64_t t = 0; t < np; t++) {
            if (t == tlo) t = thi; /* the inside part below */
            if (t >= np) break;
            for (int64_t p = 0; p < 4; p++) {
                int64_t col = ix0 + 4 * t + p;
                di[p * np + t] = col >= 0 && col < IW ? row[col] : 0.f;
            }
        }
        float *restrict q0 = di, *restrict q1 = di + np, *restrict q2 = di + 2 * np,
                        *restrict q3 = di + 3 * np;
        for (int64_t t = tlo; t < thi; t++) {
            const float *c4 = row + ix0 + 4 * t;
            q0[t] = c4[0];
            q1[t] = c4[1];
            q2[t] = c4[2];
            q3[t] = c4[3];
        }
    }
    WINO_FN(wino_bt_)(d, s, L, L);
    /* B^T across each row k of s: columns e0..e5 of tile t */
    for (int64_t k = 0; k < 6; k++) {
        const float *restrict e0 = s + k * L, *restrict e1 = e0 + np, *restrict e2 = e0 + 2 * np,
                              *restrict e3 = e0 + 3 * np, *restrict e4 = e0 + 1,
                              *restrict e5 = e1 + 1;
        float *restrict v0 = v + (size_t)(6 * k) * vstride, *restrict v1 = v0 + vstride,
                        *restrict v2 = v1 + vstride, *restrict v3 = v2 + vstride,
                        *restrict v4 = v3 + vstride, *restrict v5 = v4 + vstride;
        for (int64_t t = 0; t < nx; t++) {
            float a = e1[t] + e2[t], b = e1[t] - e2[t], c = e4[t] - e2[t], f = e3[t] - e1[t];
            v0[t] = 4.f * e0[t] - 5.f * e2[t] + e4[t];
            v1[t] = (e3[t] + e4[t]) - 4.f * a;
            v2[t] = (e4[t] - e3[t]) + 4.f * b;
            v3[t] = c + 2.f * f;
            v4[t] = c - 2.f * f;
            v5[t] = 4.f * e1[t] - 5.f * e3[t] + e5[t];
        }
    }
}

void WINO_FN(onr_wino_out_)(const float *mx, size_t ms, int64_t nx, float bias, float *y,
                            int64_t OH, int64_t OW, int64_t oy0, int64_t ox0, float *tmp)
{
    /* A^T down the 6 rows of each column l: q[(a*6 + l)*nx + t] */
    float *restrict q = tmp;
    for (int64_t l = 0; l < 6; l++) {
        const float *restrict m0 = mx + (size_t)l * ms, *restrict m1 = m0 + 6 * ms,
                              *restrict m2 = m1 + 6 * ms, *restrict m3 = m2 + 6 * ms,
                              *restrict m4 = m3 + 6 * ms, *restrict m5 = m4 + 6 * ms;
        float *restrict q0 = q + l * nx, *restrict q1 = q0 + 6 * nx, *restrict q2 = q1 + 6 * nx,
                        *restrict q3 = q2 + 6 * nx;
        for (int64_t t = 0; t < nx; t++) {
            float a = m1[t] + m2[t], b = m1[t] - m2[t], c = m3[t] + m4[t], e = m3[t] - m4[t];
            q0[t] = m0[t] + a + c;
            q1[t] = b + 2.f * e;
            q2[t] = a + 4.f * c;
            q3[t] = b + 8.f * e + m5[t];
        }
    }
    /* A^T across: output row a, columns 4t..4t+3 */
    int64_t full = (OW - ox0) / 4; /* tiles wholly inside the row */
    if (full > nx) full = nx;
    for (int64_t r = 0; r < 4 && oy0 + r < OH; r++) {
        const float *restrict w0 = q + r * 6 * nx, *restrict w1 = w0 + nx, *restrict w2 = w1 + nx,
                              *restrict w3 = w2 + nx, *restrict w4 = w3 + nx,
                              *restrict w5 = w4 + nx;
        float *restrict yr = y + (oy0 + r) * OW + ox0;
        for (int64_t t = 0; t < full; t++) {
            float a = w1[t] + w2[t], b = w1[t] - w2[t], c = w3[t] + w4[t], e = w3[t] - w4[t];
            yr[4 * t] = (w0[t] + a + c) + bias;
            yr[4 * t + 1] = (b + 2.f * e) + bias;
            yr[4 * t + 2] = (a + 4.f * c) + bias;
            yr[4 * t + 3] = (b + 8.f * e + w5[t]) + bias;
        }
        for (int64_t t = full; t < nx; t++) {
            float a = w1[t] + w2[t], b = w1[t] - w2[t], c = w3[t] + w4[t], e = w3[t] - w4[t];
            float o[4] = {w0[t] + a + c, b + 2.f * e, a + 4.f * c, b + 8.f * e + w5[t]};
            for (int64_t j = 0; j < 4 && ox0 + 4 * t + j < OW; j++) yr[4 * t + j] = o[j] + bias;
        }
    }
}
