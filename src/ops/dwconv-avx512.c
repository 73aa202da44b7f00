/*
 * dwconv-avx512.c - the depthwise convolution kernel (dwconv-simd.h) on
 * AVX-512: 16 floats a vector, k-register masks at the borders, stride 2
 * through one two-source permute (vpermt2ps) of two loads. Compiled with
 * AVX-512 flags by its file name; only called after a CPU check.
 */
#include <immintrin.h>

#include "ops/dwconv.h"

#define ONR_ACT_VL 16
#include "gemm/sgemm-act-simd.h"

typedef __m512 dv;
typedef __mmask32 dmask;
enum { VL = 16 };

static inline dv dv_zero(void) { return _mm512_setzero_ps(); }
static inline dv dv_set1(float v) { return _mm512_set1_ps(v); }
static inline dv dv_add(dv a, dv b) { return _mm512_add_ps(a, b); }
static inline dv dv_fma(dv a, dv b, dv c) { return _mm512_fmadd_ps(a, b, c); }
static inline dv dv_load1(const float *p) { return _mm512_loadu_ps(p); }
static inline void dv_store(float *p, dv v) { _mm512_storeu_ps(p, v); }

static inline dv dv_even(dv a, dv b)
{
    const __m512i idx =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(a, idx, b);
}

static inline dv dv_odd(dv a, dv b)
{
    const __m512i idx =
        _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    return _mm512_permutex2var_ps(a, idx, b);
}

static inline dmask dm_make(int64_t c, int64_t in, int n)
{
    int64_t lo = c < 0 ? -c : 0, hi = in - c;
    if (lo > n) lo = n;
    if (hi > n) hi = n;
    if (hi <= lo) return 0;
    return (dmask)((((uint64_t)1 << hi) - 1) & ~(((uint64_t)1 << lo) - 1));
}

static inline dv dv_mload1(const float *p, dmask m) { return _mm512_maskz_loadu_ps((__mmask16)m, p); }

/* p[0 .. 2 VL) under m as two vectors */
static inline void dv_mload_pair(const float *p, dmask m, dv *a, dv *b)
{
    *a = _mm512_maskz_loadu_ps((__mmask16)m, p);
    *b = _mm512_maskz_loadu_ps((__mmask16)(m >> 16), p + 16);
}

static inline __mmask16 dm_first(int64_t n) { return (__mmask16)((1u << n) - 1); }
static inline dv dv_loadn(const float *p, int64_t n) { return _mm512_maskz_loadu_ps(dm_first(n), p); }
static inline void dv_storen(float *p, dv v, int64_t n) { _mm512_mask_storeu_ps(p, dm_first(n), v); }

#define ONR_DWCONV_ROWS onr_dwconv_rows_avx512
#define ONR_GCONV_ROWS onr_gconv_rows_avx512
#include "ops/dwconv-simd.h"
