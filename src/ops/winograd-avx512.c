/*
 * winograd-avx512.c - the Winograd transforms (winograd-kern.h) built for
 * AVX512; winograd.c calls them after a CPU check. The gather is written
 * with permutes here (the portable one is in winograd-kern.h).
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* The lanes of columns [c, c + 16) that lie in [0, IW) and below lim. */
static inline __mmask16 wino_lanes(int64_t c, int64_t IW, int64_t lim)
{
    int64_t lo = c < 0 ? -c : 0, hi = IW - c < lim - c ? IW - c : lim - c;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)(((hi >= 16 ? 0xFFFFu : (1u << hi) - 1u)) & ~((1u << lo) - 1u));
}

/* The six columns of each of nx tiles in one input row: d[p*ld + t] =
 * row[ix0 + 4t + p], 0 outside [0, IW) (row NULL: all 0); as the portable
 * gather, 16 tiles at a time: five loads (zero outside the row, the
 * padding included, so no tile is special), columns 0..3 the four
 * positions of each group of 4 floats (two permutes per pair of positions
 * and two 256-bit half shuffles), columns 4 and 5 those of columns 0 and 1
 * a tile over. The portable one (a scalar loop for the border tiles, a
 * split loop and two copies) took 21 ns a 56-float row of 14 tiles on
 * Zen 5, this 7. */
__attribute__((target("avx512f"))) void onr_wino_gather_avx512(const float *row, int64_t IW,
                                                               int64_t ix0, int64_t nx, float *d,
                                                               int64_t ld)
{
    if (!row) {
        for (int64_t p = 0; p < 6; p++) memset(d + p * ld, 0, sizeof(float) * (size_t)nx);
        return;
    }
    if (nx <= 7) {
        /* a short segment (a 28x28 or 14x14 plane's tile row: 7 or 4
         * tiles): its 4 nx + 2 columns in two loads, each column p of the
         * tiles one permute of them (column 4t + p in lane t; lanes past
         * nx not stored). With the general loop's five masked loads and
         * its shuffles, ResNet-50's 14x14 layers spent a tenth of their
         * time here. */
        const int64_t lim = ix0 + 4 * nx + 2;
        __m512 l0, l1;
        for (int k = 0; k < 2; k++) {
            int64_t ck = ix0 + 16 * k;
            __mmask16 m = wino_lanes(ck, IW, lim);
            const float *p = (const float *)((uintptr_t)row + (uintptr_t)ck * sizeof(float));
            __m512 v = m == 0xFFFF ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
            if (k) l1 = v;
            else l0 = v;
        }
        const __mmask16 mo = (__mmask16)((1u << nx) - 1u);
        const __m512i i0 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
        for (int64_t p = 0; p < 6; p++) {
            __m512i ip = _mm512_add_epi32(i0, _mm512_set1_epi32((int)p));
            _mm512_mask_storeu_ps(d + p * ld, mo, _mm512_permutex2var_ps(l0, ip, l1));
        }
        return;
    }
    const __m512i i01 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    const __m512i i23 = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    for (int64_t t = 0; t < nx; t += 16) {
        int64_t c = ix0 + 4 * t, r = nx - t < 16 ? nx - t : 16, lim = c + 4 * r + 2;
        __m512 l[5];
        for (int k = 0; k < 5; k++) {
            int64_t ck = c + 16 * k;
            __mmask16 m = wino_lanes(ck, IW, lim);
            /* masked-out lanes are not read, wherever row + ck points */
            const float *p = (const float *)((uintptr_t)row + (uintptr_t)ck * sizeof(float));
            l[k] = m == 0xFFFF ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
        }
        __m512 a01 = _mm512_permutex2var_ps(l[0], i01, l[1]), b01 = _mm512_permutex2var_ps(l[2], i01, l[3]);
        __m512 a23 = _mm512_permutex2var_ps(l[0], i23, l[1]), b23 = _mm512_permutex2var_ps(l[2], i23, l[3]);
        __m512 c0 = _mm512_shuffle_f32x4(a01, b01, 0x44), c1 = _mm512_shuffle_f32x4(a01, b01, 0xEE);
        __m512 c2 = _mm512_shuffle_f32x4(a23, b23, 0x44), c3 = _mm512_shuffle_f32x4(a23, b23, 0xEE);
        __m512i e = _mm512_castps_si512(l[4]); /* columns c + 64, c + 65 in lanes 0, 1 */
        __m512 c4 = _mm512_castsi512_ps(_mm512_alignr_epi32(e, _mm512_castps_si512(c0), 1));
        __m512 c5 = _mm512_castsi512_ps(
            _mm512_alignr_epi32(_mm512_alignr_epi32(e, e, 1), _mm512_castps_si512(c1), 1));
        float *o = d + t;
        if (r == 16) {
            _mm512_storeu_ps(o, c0);
            _mm512_storeu_ps(o + ld, c1);
            _mm512_storeu_ps(o + 2 * ld, c2);
            _mm512_storeu_ps(o + 3 * ld, c3);
            _mm512_storeu_ps(o + 4 * ld, c4);
            _mm512_storeu_ps(o + 5 * ld, c5);
        } else {
            __mmask16 m = (__mmask16)((1u << r) - 1u);
            _mm512_mask_storeu_ps(o, m, c0);
            _mm512_mask_storeu_ps(o + ld, m, c1);
            _mm512_mask_storeu_ps(o + 2 * ld, m, c2);
            _mm512_mask_storeu_ps(o + 3 * ld, m, c3);
            _mm512_mask_storeu_ps(o + 4 * ld, m, c4);
            _mm512_mask_storeu_ps(o + 5 * ld, m, c5);
        }
    }
}
#define WINO_OWN_GATHER 1

#define WINO_SFX avx512
#include "ops/winograd-kern.h"
