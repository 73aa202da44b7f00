/*
 * dwconv-avx2.c - the depthwise convolution kernel (dwconv-simd.h) on
 * AVX2+FMA: 8 floats a vector, vmaskmovps at the borders (masked-off lanes
 * never fault), stride 2 rows split by a shuffle and a lane permute.
 * Compiled with -mavx2 -mfma by its file name; only called after a CPU
 * check.
 */
#include <immintrin.h>

#include "ops/dwconv.h"

#define ONR_ACT_VL 8
#include "gemm/sgemm-act-simd.h"

typedef __m256 dv;
typedef struct dmask {
    __m256i m0, m1;
} dmask;
enum { VL = 8 };

static inline dv dv_zero(void) { return _mm256_setzero_ps(); }
static inline dv dv_set1(float v) { return _mm256_set1_ps(v); }
static inline dv dv_add(dv a, dv b) { return _mm256_add_ps(a, b); }
static inline dv dv_fma(dv a, dv b, dv c) { return _mm256_fmadd_ps(a, b, c); }
static inline dv dv_load1(const float *p) { return _mm256_loadu_ps(p); }
static inline void dv_store(float *p, dv v) { _mm256_storeu_ps(p, v); }

/* a0 a2 a4 a6 b0 b2 b4 b6 */
static inline dv dv_even(dv a, dv b)
{
    __m256 t = _mm256_shuffle_ps(a, b, 0x88); /* a0 a2 b0 b2 | a4 a6 b4 b6 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xd8));
}

/* a1 a3 a5 a7 b1 b3 b5 b7 */
static inline dv dv_odd(dv a, dv b)
{
    __m256 t = _mm256_shuffle_ps(a, b, 0xdd); /* a1 a3 b1 b3 | a5 a7 b5 b7 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xd8));
}

/* lanes j in [lo, hi) of 16 */
static inline dmask dm_make(int64_t c, int64_t in, int n)
{
    int64_t lo = c < 0 ? -c : 0, hi = in - c;
    if (lo > n) lo = n;
    if (hi > n) hi = n;
    if (hi < lo) hi = lo;
    const __m256i i0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i i1 = _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15);
    __m256i l = _mm256_set1_epi32((int)lo), h = _mm256_set1_epi32((int)hi);
    dmask m;
    m.m0 = _mm256_andnot_si256(_mm256_cmpgt_epi32(l, i0), _mm256_cmpgt_epi32(h, i0));
    m.m1 = _mm256_andnot_si256(_mm256_cmpgt_epi32(l, i1), _mm256_cmpgt_epi32(h, i1));
    return m;
}

static inline dv dv_mload1(const float *p, dmask m) { return _mm256_maskload_ps(p, m.m0); }

/* p[0 .. 2 VL) under m as two vectors */
static inline void dv_mload_pair(const float *p, dmask m, dv *a, dv *b)
{
    *a = _mm256_maskload_ps(p, m.m0);
    *b = _mm256_maskload_ps(p + 8, m.m1);
}

static inline __m256i dm_first(int64_t n)
{
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), iota);
}
static inline dv dv_loadn(const float *p, int64_t n) { return _mm256_maskload_ps(p, dm_first(n)); }
static inline void dv_storen(float *p, dv v, int64_t n) { _mm256_maskstore_ps(p, dm_first(n), v); }

#define ONR_DWCONV_ROWS onr_dwconv_rows_avx2
#define ONR_GCONV_ROWS onr_gconv_rows_avx2
#include "ops/dwconv-simd.h"
