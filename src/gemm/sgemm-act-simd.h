/*
 * sgemm-act-simd.h - vector activation functions for the SIMD microkernels'
 * epilogues, written once with GCC vector extensions and included by each
 * ISA file (which defines ONR_ACT_VL = floats per vector before including
 * it), so the compiler emits that file's ISA. Inputs NaN stay NaN.
 *
 * exp is exp-poly.h's (rel. error 2.4e-7 over the clamped range); erf-GELU
 * uses erfc (Numerical Recipes' erfcc, rel. error < 1.2e-7) so it keeps
 * relative accuracy for negative inputs; tanh-GELU is x*sigmoid(2u).
 */
#ifndef ONR_SGEMM_ACT_SIMD_H
#define ONR_SGEMM_ACT_SIMD_H

#include "gemm/gemm.h"
#include "ops/exp-poly.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif

#ifndef ONR_ACT_VL
#error "define ONR_ACT_VL (floats per vector) before including sgemm-act-simd.h"
#endif

typedef float act_vf __attribute__((vector_size(ONR_ACT_VL * 4)));
typedef int act_vi __attribute__((vector_size(ONR_ACT_VL * 4)));

static inline act_vf act_splat(float x) { return (act_vf){0} + x; }

/* m ? a : b, with m a comparison result (all-ones / all-zeros lanes). */
static inline act_vf act_sel(act_vi m, act_vf a, act_vf b)
{
    return (act_vf)((m & (act_vi)a) | (~m & (act_vi)b));
}

/* max(lo, x) and min(hi, x) lane by lane, x NaN passing and x = -0 beside
 * lo = 0 staying -0 (the instructions return their second operand when
 * either is NaN or the two are equal): x < lo ? lo : x and x > hi ? hi : x
 * in one instruction each. */
static inline act_vf act_vmax(act_vf lo, act_vf x)
{
#if defined(__AVX512F__) && ONR_ACT_VL == 16
    return (act_vf)_mm512_max_ps((__m512)lo, (__m512)x);
#elif defined(__AVX__) && ONR_ACT_VL == 8
    return (act_vf)_mm256_max_ps((__m256)lo, (__m256)x);
#else
    return act_sel(x < lo, lo, x);
#endif
}

static inline act_vf act_vmin(act_vf hi, act_vf x)
{
#if defined(__AVX512F__) && ONR_ACT_VL == 16
    return (act_vf)_mm512_min_ps((__m512)hi, (__m512)x);
#elif defined(__AVX__) && ONR_ACT_VL == 8
    return (act_vf)_mm256_min_ps((__m256)hi, (__m256)x);
#else
    return act_sel(x > hi, hi, x);
#endif
}

/* min(hi, x) then max(lo, x), NaN x passing. */
static inline act_vf act_clamp(act_vf x, float lo, float hi)
{
    return act_vmax(act_splat(lo), act_vmin(act_splat(hi), x));
}

/* round(s / ln 2), s already clamped */
static inline act_vf act_exp_n(act_vf s)
{
#if defined(__AVX512F__) && ONR_ACT_VL == 16
    return (act_vf)_mm512_roundscale_ps((__m512)(s * 1.44269504088896341f),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
    act_vf fx = s * 1.44269504088896341f;
    return (fx + 12582912.0f) - 12582912.0f; /* round to nearest */
#endif
}

/* 2^n e^r for |r| <= ln2/2 (a little more after act_exp_hl's reduction):
 * e^r = 1 + r P(r) from exp-poly.h's degree-5 polynomial, 2^n by scalef
 * (AVX-512) or in the exponent bits. */
static inline __attribute__((always_inline)) act_vf act_exp_r(act_vf fx, act_vf r)
{
    act_vf p = ONR_EXP_C5 * r + ONR_EXP_C4;
    p = p * r + ONR_EXP_C3;
    p = p * r + ONR_EXP_C2;
    p = p * r + ONR_EXP_C1;
    p = p * r + 1.0f;
#if defined(__AVX512F__) && ONR_ACT_VL == 16
    return (act_vf)_mm512_scalef_ps((__m512)p, (__m512)fx);
#else
    act_vi e = (__builtin_convertvector(fx, act_vi) + 127) << 23;
    return p * (act_vf)e;
#endif
}

/* exp(x) for the sigmoids and tanh-GELU: x = n ln2 + r with ln2 in two
 * parts (exp-poly.h's), then act_exp_r. Three operations fewer than the
 * Cephes expf form it replaced (SiLU 0.38 -> 0.29 ns an element on Zen 4,
 * relative error 2.4e-7 against 1.7e-7). */
static inline __attribute__((always_inline)) act_vf act_exp(act_vf x)
{
    x = act_clamp(x, -87.3f, 88.0f);
    act_vf fx = act_exp_n(x);
    return act_exp_r(fx, (x - fx * ONR_EXP_LN2_HI) - fx * ONR_EXP_LN2_LO);
}

/* exp(hi + lo) for |lo| small beside hi: n = round((hi + lo) / ln 2) and
 * r = (hi - n ln2_hi) + lo - n ln2_lo, so an exact hi (GELU's -x^2/2) is
 * reduced without rounding the sum first. Only for hi + lo in [-87.3, 88]:
 * outside, the lane is garbage (the caller selects it away). */
static inline act_vf act_exp_hl(act_vf hi, act_vf lo)
{
    act_vf fx = act_exp_n(act_clamp(hi + lo, -87.3f, 88.0f));
    return act_exp_r(fx, ((hi - fx * ONR_EXP_LN2_HI) + lo) - fx * ONR_EXP_LN2_LO);
}

/* 1 / d for GELU's t (d in [1, 5.6], other lanes selected away): AVX-512's
 * 14-bit estimate and one Newton step, relative error about 1e-7 (GELU
 * 1.08 -> 0.87 ns an element on Zen 4 with act_exp_hl; where the division
 * does not stand alone in a long chain, as in Sigmoid's, it is no slower,
 * so those keep it), elsewhere the division. */
static inline act_vf act_rcp(act_vf d)
{
#if defined(__AVX512F__) && ONR_ACT_VL == 16
    act_vf r = (act_vf)_mm512_rcp14_ps((__m512)d);
    return r * (2.0f - d * r);
#else
    return 1.0f / d;
#endif
}

static inline act_vf act_abs(act_vf x) { return (act_vf)((act_vi)x & 0x7fffffff); }

/* 0.5 x (1 + erf(x / sqrt 2)) through erfc(z), z = |x| / sqrt 2 >= 0, as
 * t exp(-z^2 + P(t)), t = 1 / (1 + z/2): the Chebyshev fit of Numerical
 * Recipes (erfcc), relative error < 1.2e-7 for every z >= 0, so GELU's
 * negative tail keeps its relative accuracy (a few ulp in all). */
static inline act_vf act_gelu_erf(act_vf x)
{
    act_vf z = act_abs(x) * 0.70710678118654752f;
    act_vf t = act_rcp(1.0f + 0.5f * z);
    act_vf p = act_splat(0.17087277f);
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    /* exp(-z^2 + P) = exp(-x^2/2 + P) from x, not from the rounded z:
     * x^2 = s + e exactly (s the rounded square; e by an FMA, or with
     * a = ah + al, ah of 12 significant bits, where there is none), -s/2
     * exact, and one exp reduces the two parts apart, so no rounding of an
     * argument near -z^2 (worth z^2 * 6e-8 relative: 3e-6 at x = -10)
     * reaches the result */
    act_vf a = act_abs(x);
#if defined(__FMA__) && defined(__AVX512F__) && ONR_ACT_VL == 16
    act_vf s = a * a;
    act_vf e = (act_vf)_mm512_fmsub_ps((__m512)a, (__m512)a, (__m512)s);
#elif defined(__FMA__) && defined(__AVX__) && ONR_ACT_VL == 8
    act_vf s = a * a;
    act_vf e = (act_vf)_mm256_fmsub_ps((__m256)a, (__m256)a, (__m256)s);
#else
    act_vf ah = (act_vf)((act_vi)a & (int)0xfffff000u), al = a - ah;
    act_vf s = ah * ah, e = al * (a + ah);
#endif
    act_vf q = t * act_exp_hl(-0.5f * s, p - 0.5f * e);
    /* beyond |x| = 13 erfc is below float's range (and exp clamps): 0, so
     * GELU(-13..) is -0, GELU(-inf) is NaN (-inf * 0, as the formula) and
     * GELU(+inf) is +inf */
    q = act_sel(a > 13.0f, act_splat(0.0f), q);
    act_vf one_plus_erf = act_sel(x >= 0.0f, 2.0f - q, q);
    return 0.5f * x * one_plus_erf;
}

static inline act_vf act_apply(act_vf v, int act, float lo, float hi)
{
    switch (act) {
    case ONR_ACT_RELU: return act_vmax(act_splat(0.0f), v);
    case ONR_ACT_CLIP: return act_vmin(act_splat(hi), act_vmax(act_splat(lo), v));
    case ONR_ACT_SIGMOID: return 1.0f / (1.0f + act_exp(-v));
    case ONR_ACT_SILU: return v / (1.0f + act_exp(-v));
    case ONR_ACT_GELU_ERF: return act_gelu_erf(v);
    case ONR_ACT_GELU_TANH: {
        act_vf u = 0.79788456080286536f * (v + 0.044715f * v * v * v);
        return v / (1.0f + act_exp(-2.0f * u));
    }
    default: return v;
    }
}

#endif
