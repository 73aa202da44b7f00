/*
 * attention-simd.h - the row operations of Attention's float32 streaming
 * kernel (attention.c): a portable version here, AVX2/FMA and AVX-512
 * versions in attention-avx2.c / attention-avx512.c (chosen at run time).
 *
 *   bias_max(s, m, n, init): s[c] += m[c] for c < n (m may be NULL), then
 *       return max(init, s[0..n)) (NaN need not propagate here: exp_sum
 *       turns a NaN score into a NaN sum).
 *   exp_sum(s, n, mx): s[c] = exp(s[c] - mx), return the sum (NaN when any
 *       term is NaN); exp of -inf (and anything below -87) is 0.
 */
#ifndef ONR_OPS_ATTENTION_SIMD_H
#define ONR_OPS_ATTENTION_SIMD_H

#include <stdint.h>
#include <string.h>

typedef float (*onr_att_bias_max_fn)(float *s, const float *m, int64_t n, float init);
typedef float (*onr_att_exp_sum_fn)(float *s, int64_t n, float mx);

float onr_att_bias_max_avx2(float *s, const float *m, int64_t n, float init);
float onr_att_exp_sum_avx2(float *s, int64_t n, float mx);
float onr_att_bias_max_avx512(float *s, const float *m, int64_t n, float init);
float onr_att_exp_sum_avx512(float *s, int64_t n, float mx);

/* Constants of exp(x) = 2^n e^r, x = n ln2 + r (Cody-Waite split of ln2),
 * e^r by a degree-5 polynomial (coefficients as commonly used for f32 exp,
 * e.g. XNNPACK's), within a few ulp of expf on [-87, 0]. */
#define ONR_ATT_LOG2E 1.44269504f
#define ONR_ATT_MAGIC 12583039.f /* 1.5 * 2^23 + 127: round and bias in one add */
#define ONR_ATT_LN2_HI 0.693145752f
#define ONR_ATT_LN2_LO 1.42860677e-6f
#define ONR_ATT_C5 0x1.0F9F9Cp-7f
#define ONR_ATT_C4 0x1.573A1Ap-5f
#define ONR_ATT_C3 0x1.555A80p-3f
#define ONR_ATT_C2 0x1.FFFDC6p-2f
#define ONR_ATT_C1 0x1.FFFFF6p-1f
#define ONR_ATT_XMIN (-87.f)

/* Scalar exp(x) for x <= 0 (NaN stays NaN, -inf gives 0). */
static inline float onr_att_exp(float x)
{
    float xc = x < ONR_ATT_XMIN ? ONR_ATT_XMIN : x;
    float n = xc * ONR_ATT_LOG2E + ONR_ATT_MAGIC;
    uint32_t bits;
    memcpy(&bits, &n, sizeof bits);
    bits <<= 23;
    float sc;
    memcpy(&sc, &bits, sizeof sc);
    n -= ONR_ATT_MAGIC;
    float r = xc - n * ONR_ATT_LN2_HI;
    r -= n * ONR_ATT_LN2_LO;
    float q = ONR_ATT_C5 * r + ONR_ATT_C4;
    q = q * r + ONR_ATT_C3;
    q = q * r + ONR_ATT_C2;
    q = q * r + ONR_ATT_C1;
    float e = sc + (r * sc) * q;
    return x < ONR_ATT_XMIN ? 0.f : e;
}

#endif
