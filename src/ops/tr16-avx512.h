/*
 * tr16-avx512.h - in-register transposes of float rows for the AVX-512
 * kernel files (dwconv-avx512.c's 16-channel blocks, attention-avx512.c's
 * K^T slabs). Include only from a file compiled with AVX-512 flags.
 */
#ifndef ONR_OPS_TR16_AVX512_H
#define ONR_OPS_TR16_AVX512_H

#include <immintrin.h>

/* The 4 x 4 blocks of rows r[4m .. 4m+4) inside each 128-bit lane
 * transposed into u (n rows, a multiple of 4): lane L of u[4m + k] holds
 * element 4L + k of rows 4m .. 4m+3. Two rounds of in-lane shuffles
 * (unpack, shufps), cheaper on Zen 4 than two-source permutes. */
static inline __attribute__((always_inline)) void tr4_lanes(const __m512 *r, __m512 *u,
                                                              const int n)
{
    __m512 t[16];
    for (int i = 0; i < n; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < n; i += 4) {
        u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
}

/* Rows r[0..16) transposed in place (row j, lane c -> row c, lane j). Two
 * rounds inside 128-bit lanes and two of whole lanes: 10-15 % faster on
 * the 3x3 layers than four rounds of two-source permutes. */
static inline __attribute__((always_inline)) void tr16(__m512 r[16])
{
    /* lane L of u[4m + k] holds element 4L + k of rows 4m .. 4m+3 */
    __m512 u[16];
    tr4_lanes(r, u, 16);
    /* two rounds of whole 128-bit lanes: r[4L + k] takes lane L of u[k],
     * u[4 + k], u[8 + k], u[12 + k] */
    for (int k = 0; k < 4; k++) {
        __m512 x0 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0x44);
        __m512 x1 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0xEE);
        __m512 y0 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0x44);
        __m512 y1 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0xEE);
        r[k] = _mm512_shuffle_f32x4(x0, y0, 0x88);
        r[4 + k] = _mm512_shuffle_f32x4(x0, y0, 0xDD);
        r[8 + k] = _mm512_shuffle_f32x4(x1, y1, 0x88);
        r[12 + k] = _mm512_shuffle_f32x4(x1, y1, 0xDD);
    }
}

#endif
