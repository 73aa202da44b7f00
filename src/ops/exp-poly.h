/*
 * exp-poly.h - the float32 exp used by the softmax-family kernels
 * (softmax.c, and Attention's streaming kernel in attention*.c): x = n ln2
 * + r with |r| <= ln2/2 (Cody-Waite split of ln2), 2^n built in the
 * exponent bits, e^r from a degree-5 polynomial (the usual coefficients, as
 * in XNNPACK's f32 exp), within 2 ulp of expf on the normal range. The
 * constants serve the SIMD versions too; each caller decides what happens
 * below its own cutoff (the core is valid for x >= -87.3).
 */
#ifndef ONR_OPS_EXP_POLY_H
#define ONR_OPS_EXP_POLY_H

#include <stdint.h>
#include <string.h>

#define ONR_EXP_LOG2E 0x1.715476p+0f
#define ONR_EXP_MAGIC 0x1.8000FEp23f /* 1.5 * 2^23 + 127: round and bias in one add */
#define ONR_EXP_LN2_HI 0x1.62E400p-1f
#define ONR_EXP_LN2_LO 0x1.7F7D1Cp-20f
#define ONR_EXP_C5 0x1.0F9F9Cp-7f
#define ONR_EXP_C4 0x1.573A1Ap-5f
#define ONR_EXP_C3 0x1.555A80p-3f
#define ONR_EXP_C2 0x1.FFFDC6p-2f
#define ONR_EXP_C1 0x1.FFFFF6p-1f

/* e^x for x in the normal range (NaN stays NaN), as plain C the compiler
 * vectorizes. */
static inline float onr_exp_core(float x)
{
    float n = x * ONR_EXP_LOG2E + ONR_EXP_MAGIC;
    uint32_t bits;
    memcpy(&bits, &n, sizeof bits);
    bits <<= 23; /* the low bits of n hold round(x log2e) + 127: 2^n */
    float sc;
    memcpy(&sc, &bits, sizeof sc);
    n -= ONR_EXP_MAGIC;
    float r = x - n * ONR_EXP_LN2_HI;
    r -= n * ONR_EXP_LN2_LO;
    float p = ONR_EXP_C5 * r + ONR_EXP_C4;
    p = p * r + ONR_EXP_C3;
    p = p * r + ONR_EXP_C2;
    p = p * r + ONR_EXP_C1;
    r *= sc;
    return r * p + sc;
}

#endif
