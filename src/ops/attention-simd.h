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

#include "ops/exp-poly.h"

typedef float (*onr_att_bias_max_fn)(float *s, const float *m, int64_t n, float init);
typedef float (*onr_att_exp_sum_fn)(float *s, int64_t n, float mx);

float onr_att_bias_max_avx2(float *s, const float *m, int64_t n, float init);
float onr_att_exp_sum_avx2(float *s, int64_t n, float mx);
float onr_att_bias_max_avx512(float *s, const float *m, int64_t n, float init);
float onr_att_exp_sum_avx512(float *s, int64_t n, float mx);
/* K^T for the slabs: 16 rows of D floats (src[j][d]) to D rows of 16
 * (dst[d*ld + j]); AVX-512 only (the others transpose element by element). */
void onr_att_kt16_avx512(const float *const src[16], int64_t D, float *dst, size_t ld);

/* exp below this is taken as 0 (the core is exact down to -87.3). */
#define ONR_ATT_XMIN (-87.f)

/* Scalar exp(x) for x <= 0 (NaN stays NaN, -inf gives 0). */
static inline float onr_att_exp(float x)
{
    float e = onr_exp_core(x < ONR_ATT_XMIN ? ONR_ATT_XMIN : x);
    return x < ONR_ATT_XMIN ? 0.f : e;
}

#endif
