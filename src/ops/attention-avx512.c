/*
 * attention-avx512.c - Attention's float32 row operations for AVX-512F
 * (see attention-simd.h; called only when the CPU has it). Tails use masked
 * loads and stores, never touching memory past n.
 */
#include <immintrin.h>

#include "ops/attention-simd.h"
#include "ops/tr16-avx512.h"

float onr_att_bias_max_avx512(float *s, const float *m, int64_t n, float init)
{
    __m512 vm = _mm512_set1_ps(init);
    int64_t c = 0;
    for (; c + 16 <= n; c += 16) {
        __m512 v = _mm512_loadu_ps(s + c);
        if (m) {
            v = _mm512_add_ps(v, _mm512_loadu_ps(m + c));
            _mm512_storeu_ps(s + c, v);
        }
        vm = _mm512_max_ps(vm, v);
    }
    if (c < n) {
        __mmask16 k = (__mmask16)((1u << (n - c)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(k, s + c);
        if (m) {
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, m + c));
            _mm512_mask_storeu_ps(s + c, k, v);
        }
        vm = _mm512_mask_max_ps(vm, k, vm, v);
    }
    return _mm512_reduce_max_ps(vm);
}

static inline __m512 exp16(__m512 x)
{
    const __m512 xmin = _mm512_set1_ps(ONR_ATT_XMIN);
    /* max(xmin, x) returns x when x is NaN (the second operand), keeping it */
    __m512 xc = _mm512_max_ps(xmin, x);
    __m512 n = _mm512_fmadd_ps(xc, _mm512_set1_ps(ONR_EXP_LOG2E), _mm512_set1_ps(ONR_EXP_MAGIC));
    __m512 sc = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(n), 23));
    n = _mm512_sub_ps(n, _mm512_set1_ps(ONR_EXP_MAGIC));
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(ONR_EXP_LN2_HI), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(ONR_EXP_LN2_LO), r);
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(ONR_EXP_C5), r, _mm512_set1_ps(ONR_EXP_C4));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(ONR_EXP_C3));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(ONR_EXP_C2));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(ONR_EXP_C1));
    __m512 e = _mm512_fmadd_ps(_mm512_mul_ps(r, sc), q, sc);
    __mmask16 lo = _mm512_cmp_ps_mask(x, xmin, _CMP_LT_OQ); /* false for NaN */
    return _mm512_maskz_mov_ps((__mmask16)~lo, e);
}

float onr_att_exp_sum_avx512(float *s, int64_t n, float mx)
{
    __m512 vmx = _mm512_set1_ps(mx), acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= n; c += 32) {
        __m512 e0 = exp16(_mm512_sub_ps(_mm512_loadu_ps(s + c), vmx));
        __m512 e1 = exp16(_mm512_sub_ps(_mm512_loadu_ps(s + c + 16), vmx));
        _mm512_storeu_ps(s + c, e0);
        _mm512_storeu_ps(s + c + 16, e1);
        acc0 = _mm512_add_ps(acc0, e0);
        acc1 = _mm512_add_ps(acc1, e1);
    }
    for (; c < n; c += 16) {
        int64_t left = n - c;
        __mmask16 k = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + c), vmx));
        _mm512_mask_storeu_ps(s + c, k, e);
        acc0 = _mm512_mask_add_ps(acc0, k, acc0, e);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

/* 16 rows of D floats (src[j][d]) -> D rows of 16 (dst[d*ld + j]): 16 x 16
 * blocks transposed in registers (tr16), the columns past a multiple of 16
 * one by one. */
void onr_att_kt16_avx512(const float *const src[16], int64_t D, float *dst, size_t ld)
{
    int64_t d0 = 0;
    for (; d0 + 16 <= D; d0 += 16) {
        __m512 r[16];
        for (int j = 0; j < 16; j++) r[j] = _mm512_loadu_ps(src[j] + d0);
        tr16(r); /* r[c]: column d0 + c of the 16 rows */
        for (int c = 0; c < 16; c++) _mm512_storeu_ps(dst + (size_t)(d0 + c) * ld, r[c]);
    }
    for (; d0 < D; d0++)
        for (int j = 0; j < 16; j++) dst[(size_t)d0 * ld + j] = src[j][d0];
}
