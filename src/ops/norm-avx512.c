/*
 * norm-avx512.c - ChannelLayerNormalization's block kernel (norm-cln.h)
 * compiled with AVX-512 flags by its file name: the double sums of 16
 * positions take 2 vectors per channel instead of 8. Multiplies and adds
 * are not contracted into FMAs, so its results are the baseline build's
 * (and LayerNormalization's) bit for bit. Only called after a CPU check.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

#include "ops/norm.h"

#define ONR_CLN_B 16
#define CLN_BLOCK onr_cln_block_avx512
#include "ops/norm-cln.h"

/* ---- LayerNormalization's and SkipLayerNormalization's rows ------------- */

/* The baseline build's loops (norm.c: stats_f32, var_f32, row_affine_f32)
 * read a row that may be the one they write (in place), so the compiler
 * keeps them scalar. Here the same operations in the same order, 16 at a
 * time: lane l of the double sums takes elements l, l + 8, l + 16, ... as
 * the baseline's a[l] does, the tail and the final sum go the baseline's
 * way, and the float steps are the same (no FMA), so every result is the
 * baseline's bit for bit. A vector of 16 is read before it is written,
 * so y may be x (or dst may be x or skip) as there. */
#include <immintrin.h>
#include <math.h>

/* (((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + t) / n */
static double lanes_sum(__m512d a, double t, int64_t n)
{
    double l[8];
    _mm512_storeu_pd(l, a);
    return (((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])) + t) / (double)n;
}

/* floats 8..15 of v */
static inline __m256 hi8(__m512 v)
{
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

/* a + v's 16 floats as doubles, floats 0..7 first (the baseline's order) */
static inline __m512d add16(__m512d a, __m512 v)
{
    a = _mm512_add_pd(a, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    return _mm512_add_pd(a, _mm512_cvtps_pd(hi8(v)));
}

static inline __m512d sq_add(__m512d a, __m256 v, __m512d m)
{
    __m512d d = _mm512_sub_pd(_mm512_cvtps_pd(v), m);
    return _mm512_add_pd(a, _mm512_mul_pd(d, d));
}

/* Population variance of x[0, n) around m. */
static double var_row(const float *x, int64_t n, double m)
{
    __m512d a = _mm512_setzero_pd(), vm = _mm512_set1_pd(m);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        a = sq_add(a, _mm512_castps512_ps256(v), vm);
        a = sq_add(a, hi8(v), vm);
    }
    if (i + 8 <= n) {
        a = sq_add(a, _mm256_loadu_ps(x + i), vm);
        i += 8;
    }
    double t = 0;
    for (; i < n; i++) t += (x[i] - m) * (x[i] - m);
    return lanes_sum(a, t, n);
}

/* y = (x - mean) * inv * s + b in float32 (b NULL: no shift). */
static void affine_row(const float *x, float *y, int64_t n, const float *s, const float *b,
                       double mean, double inv)
{
    const float fm = (float)mean, fi = (float)inv;
    const __m512 vm = _mm512_set1_ps(fm), vi = _mm512_set1_ps(fi);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm), vi),
                                 _mm512_loadu_ps(s + i));
        if (b) v = _mm512_add_ps(v, _mm512_loadu_ps(b + i));
        _mm512_storeu_ps(y + i, v);
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm), vi),
                                 _mm512_maskz_loadu_ps(k, s + i));
        if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, b + i));
        _mm512_mask_storeu_ps(y + i, k, v);
    }
}

void onr_ln_row_f32_avx512(const float *x, float *y, int64_t n, const float *s, const float *b,
                           double eps, double *mean_out, double *inv_out)
{
    double mean = 0, var = 0;
    if (n > 0) {
        __m512d a = _mm512_setzero_pd();
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) {
            __m512 v = _mm512_loadu_ps(x + i);
            a = add16(a, v);
        }
        if (i + 8 <= n) {
            a = _mm512_add_pd(a, _mm512_cvtps_pd(_mm256_loadu_ps(x + i)));
            i += 8;
        }
        double t = 0;
        for (; i < n; i++) t += x[i];
        mean = lanes_sum(a, t, n);
        var = var_row(x, n, mean);
    }
    *mean_out = mean;
    *inv_out = 1.0 / sqrt(var + eps);
    affine_row(x, y, n, s, b, mean, *inv_out);
}

void onr_sln_row_f32_avx512(const float *x, const float *k, const float *bias, const float *g,
                            const float *b, float *dst, float *y, int64_t n, double eps,
                            double *mean_out, double *inv_out)
{
    __m512d a = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + i));
        v = _mm512_add_ps(v, _mm512_loadu_ps(k + i));
        _mm512_storeu_ps(dst + i, v);
        a = add16(a, v);
    }
    if (i + 8 <= n) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
        v = _mm256_add_ps(v, _mm256_loadu_ps(k + i));
        _mm256_storeu_ps(dst + i, v);
        a = _mm512_add_pd(a, _mm512_cvtps_pd(v));
        i += 8;
    }
    double t = 0;
    for (; i < n; i++) {
        float v = (bias ? x[i] + bias[i] : x[i]) + k[i];
        dst[i] = v;
        t += v;
    }
    double mean = lanes_sum(a, t, n);
    double var = var_row(dst, n, mean);
    *mean_out = mean;
    *inv_out = 1.0 / sqrt(var + eps);
    affine_row(dst, y, n, g, b, mean, *inv_out);
}
