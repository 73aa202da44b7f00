/*
 * attention-avx2.c - Attention's float32 row operations for AVX2 + FMA
 * (see attention-simd.h; called only when the CPU has them). Tails are
 * scalar, never touching memory past n.
 */
#include <immintrin.h>

#include "ops/attention-simd.h"

static inline float hmax8(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline float hsum8(__m256 v)
{
    __m128 m = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_add_ps(m, _mm_movehl_ps(m, m));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

float onr_att_bias_max_avx2(float *s, const float *m, int64_t n, float init)
{
    __m256 vm = _mm256_set1_ps(init);
    int64_t c = 0;
    for (; c + 8 <= n; c += 8) {
        __m256 v = _mm256_loadu_ps(s + c);
        if (m) {
            v = _mm256_add_ps(v, _mm256_loadu_ps(m + c));
            _mm256_storeu_ps(s + c, v);
        }
        vm = _mm256_max_ps(vm, v);
    }
    float mx = hmax8(vm);
    for (; c < n; c++) {
        if (m) s[c] += m[c];
        mx = s[c] > mx ? s[c] : mx;
    }
    return mx;
}

static inline __m256 exp8(__m256 x)
{
    const __m256 xmin = _mm256_set1_ps(ONR_ATT_XMIN);
    __m256 xc = _mm256_max_ps(xmin, x); /* NaN x is kept (second operand) */
    __m256 n = _mm256_fmadd_ps(xc, _mm256_set1_ps(ONR_EXP_LOG2E), _mm256_set1_ps(ONR_EXP_MAGIC));
    __m256 sc = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(n), 23));
    n = _mm256_sub_ps(n, _mm256_set1_ps(ONR_EXP_MAGIC));
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ONR_EXP_LN2_HI), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ONR_EXP_LN2_LO), r);
    __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(ONR_EXP_C5), r, _mm256_set1_ps(ONR_EXP_C4));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(ONR_EXP_C3));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(ONR_EXP_C2));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(ONR_EXP_C1));
    __m256 e = _mm256_fmadd_ps(_mm256_mul_ps(r, sc), q, sc);
    __m256 lo = _mm256_cmp_ps(x, xmin, _CMP_LT_OQ); /* false for NaN */
    return _mm256_andnot_ps(lo, e);
}

float onr_att_exp_sum_avx2(float *s, int64_t n, float mx)
{
    __m256 vmx = _mm256_set1_ps(mx), acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= n; c += 16) {
        __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + c), vmx));
        __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + c + 8), vmx));
        _mm256_storeu_ps(s + c, e0);
        _mm256_storeu_ps(s + c + 8, e1);
        acc0 = _mm256_add_ps(acc0, e0);
        acc1 = _mm256_add_ps(acc1, e1);
    }
    for (; c + 8 <= n; c += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + c), vmx));
        _mm256_storeu_ps(s + c, e);
        acc0 = _mm256_add_ps(acc0, e);
    }
    float sum = hsum8(_mm256_add_ps(acc0, acc1));
    for (; c < n; c++) {
        float e = onr_att_exp(s[c] - mx);
        s[c] = e;
        sum += e;
    }
    return sum;
}
