/*
 * sgemm-act-simd.h - vector activation functions for the SIMD microkernels'
 * epilogues, written once with GCC vector extensions and included by each
 * ISA file (which defines ONR_ACT_VL = floats per vector before including
 * it), so the compiler emits that file's ISA. Inputs NaN stay NaN.
 *
 * exp is exp-poly.h's (rel. error 2.4e-7 over the clamped range); erf-GELU
 * is relu(x) - a Phi(-a), a = |x|, a Phi(-a) = exp(-a^2/2) w R(w) / 2 with
 * w = a / (1 + 0.3 a) and R a fitted polynomial, so it keeps relative
 * accuracy for negative inputs (5.2e-7 for x >= -5, 1.5e-6 down to
 * x = -12.5; see act_gelu_erf);
 * tanh-GELU is x*sigmoid(2u).
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
typedef unsigned act_vu __attribute__((vector_size(ONR_ACT_VL * 4)));

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

/* 2^n e^r for |r| <= ln2/2:
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

#if defined(__FMA__) && \
    ((defined(__AVX512F__) && ONR_ACT_VL == 16) || (defined(__AVX__) && ONR_ACT_VL == 8))
#define ONR_ACT_FMA 1
/* a b + c with one rounding, whatever the compiler's contraction setting */
static inline act_vf act_fma(act_vf a, act_vf b, act_vf c)
{
#if ONR_ACT_VL == 16
    return (act_vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#else
    return (act_vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#endif
}
#endif

static inline act_vf act_abs(act_vf x) { return (act_vf)((act_vi)x & 0x7fffffff); }

/* GELU, erf form: x Phi(x) = relu(x) - a Phi(-a), a = min(|x|, 13), with
 * 2 a Phi(-a) = a erfc(a / sqrt 2) = exp(-a^2/2) w R(w), w = a / (1 + 0.3 a)
 * (the t = 1 / (1 + k z) of Abramowitz-Stegun 7.1.26 and Numerical Recipes'
 * erfcc, here a t), three independent parts:
 * - exp(-a^2/2) / 2 = 2^n e^(r/2) / 2: s = a*a and its exact error e = a^2 -
 *   s (FMA; Dekker's split where there is none), n = round(-s / (2 ln2)) by
 *   the 1.5 * 2^23 shifter, r = -s - 2n ln2 - e in [-ln2, ln2] (ln2 in two
 *   parts without FMA), so no rounding of an argument near -a^2/2 reaches
 *   the result; e^(r/2) / 2 by a degree-5 minimax polynomial (1.2e-7);
 * - R(w) = (1 + 0.3 a) erfcx(a / sqrt 2), degree 7 in w (relative minimax
 *   with float coefficients: 5.7e-8 for a <= 5.1, 1.9e-7 to 13), w by one
 *   division (on Zen 5 faster than rcp14 and a Newton step: 0.21 against
 *   0.23 ns an element);
 * - 2^n folded into w by an integer add to its exponent field (w 2^n stays
 *   normal, or n = 0: n is 0 for a < 0.83 and >= -122 in all), and the
 *   result t - (w 2^n) (q R) in one FMA, t = x for x >= 0 and +0 for x < 0:
 *   x - min(0, x), or one fixupimm on AVX-512, which also gives NaN for
 *   -inf (as the formula's -inf * 0), +inf for +inf, NaN for NaN, +0 for
 *   -0 and 0 (so GELU(-0) = +0).
 * x gives x exactly from x = 5.35 up (x Phi(-x) under half an ulp of x),
 * and beyond the clamp x <= -13 gives -7.9e-38.
 * Error against 0.5 x erfc(-x / sqrt 2) in double over every float in
 * [-20, 20], AVX-512 and AVX2 alike: relative <= 5.0e-7 for x >= -5 (worst
 * at x = -4.637; 6.2 ulp at most, x = -1.838), <= 8.5e-7 on [-12.5, -5),
 * absolute <= 2.4e-7 (x = 4.024, half an ulp); 4 ulps or 1e-6 absolute
 * everywhere. The SSE2 fallback (no FMA): 5.2e-7 (6.9 ulp), 1.5e-6 on
 * [-12.5, -5). 26 instructions a vector on AVX-512 against 44 for the erfc
 * form with a degree-9 polynomial in the exponent that it replaced:
 * 0.21-0.23 against 0.58-0.67 ns an element (16 lanes, L1-resident, Zen 5,
 * same runs), 0.42 against 1.13 with AVX2's 8 lanes. */
static inline act_vf act_gelu_erf(act_vf x)
{
#if defined(__AVX512DQ__) && ONR_ACT_VL == 16
    /* min(|x|, 13) in one instruction (range: min by magnitude, sign off) */
    act_vf ab = (act_vf)_mm512_range_ps((__m512)x, (__m512)act_splat(13.0f), 0x0a);
#else
    act_vf ab = act_vmin(act_splat(13.0f), act_abs(x));
#endif
    /* s - ne = ab^2 exactly */
    act_vf s = ab * ab;
#ifdef ONR_ACT_FMA
    act_vf ne = act_fma(-ab, ab, s);
#else
    act_vf ah = (act_vf)((act_vi)ab & (int)0xfffff000u), al = ab - ah;
    s = ah * ah; /* exact: ah has 12 significant bits */
    act_vf ne = -(al * (ab + ah));
#endif
    /* y = 1.5 * 2^23 + n, n = round(-s / (2 ln2)) in [-122, 0] */
    act_vf y = s * -0x1.715476p-1f + 0x1.8p23f;
    act_vf n = y - 0x1.8p23f;
#ifdef ONR_ACT_FMA
    act_vf r = act_fma(n, act_splat(-0x1.62e430p+0f), -s) + ne;
#else
    act_vf r = ((-s - n * (2 * ONR_EXP_LN2_HI)) + ne) - n * (2 * ONR_EXP_LN2_LO);
#endif
    act_vf q = 0x1.15306ap-13f * r + 0x1.57b8c6p-10f; /* e^(r/2) / 2 */
    q = q * r + 0x1.554f92p-7f;
    q = q * r + 0x1.fffbfap-5f;
    q = q * r + 0x1.000002p-2f;
    q = q * r + 0x1.000002p-1f;
    /* w = ab / (1 + 0.3 ab), R(w) = (1 + 0.3 ab) erfcx(ab / sqrt 2) */
    act_vf d = ab * 0x1.333334p-2f + 1.0f;
    act_vf w = ab / d;
    act_vf R = -0x1.1009fep-16f * w + 0x1.271dd4p-13f;
    R = R * w - 0x1.5757dcp-14f;
    R = R * w - 0x1.1164c4p-9f;
    R = R * w - 0x1.24a53ap-8f;
    R = R * w + 0x1.c7d68ap-4f;
    R = R * w - 0x1.fdd5e4p-2f;
    R = R * w + 1.0f;
    /* w 2^n: n in y's low mantissa bits, shifted into the exponent field */
    act_vf ws = (act_vf)((act_vu)w + ((act_vu)y << 23));
#if defined(__AVX512F__) && ONR_ACT_VL == 16
    /* fixupimm by x's class: QNaN/SNaN -> QNaN(x), 0 -> +0, 1.0 -> x,
     * -inf -> QNaN, +inf -> x, negative -> +0, positive -> x */
    act_vf t = (act_vf)_mm512_fixupimm_ps((__m512)x, (__m512)x, _mm512_set1_epi32(0x18131822), 0);
#else
    act_vf t = x - act_vmin(act_splat(0.0f), x); /* -inf - -inf: NaN */
#endif
    return t - ws * (q * R);
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
