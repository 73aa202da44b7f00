/*
 * sgemm-amx.c - float32 products on AMX tiles as sums of bfloat16 term
 * products (sgemm-amx.h): the term split of both operands, and the 32 x 32
 * block kernel. Compiled with AMX and AVX-512 flags by its file name; only
 * called after gemm.c has found AMX usable (CPU and OS).
 */
#include <immintrin.h>

#include "gemm/sgemm-amx.h"

/* term t of 16 floats as bfloat16 bits in the high half of each lane */
typedef struct terms {
    __m512i t[3];
} terms;

static inline terms split16(__m512 x)
{
    const __m512i hi = _mm512_set1_epi32((int)0xFFFF0000u);
    terms r;
    r.t[0] = _mm512_and_si512(_mm512_castps_si512(x), hi);
    const __m512 r1 = _mm512_sub_ps(x, _mm512_castsi512_ps(r.t[0]));
    r.t[1] = _mm512_and_si512(_mm512_castps_si512(r1), hi);
    const __m512 r2 = _mm512_sub_ps(r1, _mm512_castsi512_ps(r.t[1]));
    r.t[2] = _mm512_castps_si512(r2); /* at most 8 significant bits: its high half is exact */
    return r;
}

/* lanes whose exponent is all ones (inf, NaN) */
static inline __mmask16 nonfinite(__m512 x)
{
    const __m512i e = _mm512_set1_epi32(0x7F800000);
    return _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(x), e), e);
}

/* 16 floats from a row of op(A) or op(B) that is strided (transposed):
 * elements base[q * stride] for q < valid, zeros after */
static inline __m512 gather16(const float *base, size_t stride, size_t valid)
{
    float t[16];
    size_t q = 0;
    for (; q < valid; q++) t[q] = base[q * stride];
    for (; q < 16; q++) t[q] = 0.f;
    return _mm512_loadu_ps(t);
}

static inline __mmask16 first(size_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

int onr_amx_pack_a(int trans_a, const float *a, size_t lda, size_t m, size_t k, size_t ib0,
                   size_t ib1, uint16_t *dst)
{
    const size_t KB = (k + ONR_AMX_KS - 1) / ONR_AMX_KS;
    __mmask16 bad = 0;
    for (size_t ib = ib0; ib < ib1; ib++)
        for (size_t kb = 0; kb < KB; kb++) {
            uint16_t *blk = dst + (ib * KB + kb) * ONR_AMX_BLOCK;
            for (size_t r = 0; r < ONR_AMX_MB; r++) {
                const size_t i = ib * ONR_AMX_MB + r;
                uint16_t *row = blk + (r / 16) * 512 + (r % 16) * 32;
                for (size_t h = 0; h < 2; h++) {
                    const size_t k0 = kb * ONR_AMX_KS + h * 16;
                    const size_t valid = i < m && k0 < k ? (k - k0 < 16 ? k - k0 : 16) : 0;
                    __m512 x;
                    if (valid == 0) x = _mm512_setzero_ps();
                    else if (trans_a) x = gather16(a + k0 * lda + i, lda, valid);
                    else x = _mm512_maskz_loadu_ps(first(valid), a + i * lda + k0);
                    bad |= nonfinite(x);
                    const terms s = split16(x);
                    for (int t = 0; t < 3; t++)
                        _mm256_storeu_si256((__m256i *)(row + t * 1024 + h * 16),
                                            _mm512_cvtepi32_epi16(_mm512_srli_epi32(s.t[t], 16)));
                }
            }
        }
    return bad != 0;
}

/* Term t of two K rows (x0: k = 2r, x1: k = 2r + 1) of 16 columns as tile
 * rows in the pair layout: each lane holds k = 2r in its low half, 2r + 1
 * in its high half. Row r of tile t * 2 + h is at dst + t * 1024. */
static inline __attribute__((always_inline)) void put_pairs(uint16_t *dst, __m512 x0, __m512 x1)
{
    const __m512i lo = _mm512_set1_epi32(0xFFFF);
    const terms s0 = split16(x0), s1 = split16(x1);
    for (int t = 0; t < 3; t++)
        _mm512_storeu_si512((void *)(dst + t * 1024),
                            _mm512_or_si512(_mm512_andnot_si512(lo, s1.t[t]),
                                            _mm512_srli_epi32(s0.t[t], 16)));
}

int onr_amx_pack_b(int trans_b, size_t k, size_t n, const float *b, size_t ldb, size_t jb0,
                   size_t jb1, uint16_t *dst)
{
    const size_t KB = (k + ONR_AMX_KS - 1) / ONR_AMX_KS, JB = (n + ONR_AMX_MB - 1) / ONR_AMX_MB;
    __mmask16 bad = 0;
    for (size_t jb = jb0; jb < jb1; jb++)
        for (size_t kb = 0; kb < KB; kb++) {
            uint16_t *blk = dst + onr_amx_b_offset(KB, JB, jb, kb);
            for (size_t h = 0; h < 2; h++) {
                const size_t j0 = jb * ONR_AMX_MB + h * 16;
                const size_t cols = j0 < n ? (n - j0 < 16 ? n - j0 : 16) : 0;
                for (size_t r = 0; r < 16; r++) {
                    __m512 x[2];
                    for (size_t e = 0; e < 2; e++) {
                        const size_t p = kb * ONR_AMX_KS + 2 * r + e;
                        if (p >= k || cols == 0) x[e] = _mm512_setzero_ps();
                        else if (trans_b) x[e] = gather16(b + j0 * ldb + p, ldb, cols);
                        else x[e] = _mm512_maskz_loadu_ps(first(cols), b + p * ldb + j0);
                        bad |= nonfinite(x[e]);
                    }
                    put_pairs(blk + h * 512 + r * 32, x[0], x[1]);
                }
            }
        }
    return bad != 0;
}

/* K step kb of a float panel (rows valid rows from p) as B' tiles at dst */
static inline void split_step(const float *p, size_t rows, size_t kb, uint16_t *dst)
{
    for (size_t r = 0; r < 16; r++) {
        const size_t k = kb * ONR_AMX_KS + 2 * r;
        const float *r0 = p + k * 32, *r1 = r0 + 32;
        for (size_t h = 0; h < 2; h++)
            put_pairs(dst + h * 512 + r * 32,
                      k < rows ? _mm512_loadu_ps(r0 + 16 * h) : _mm512_setzero_ps(),
                      k + 1 < rows ? _mm512_loadu_ps(r1 + 16 * h) : _mm512_setzero_ps());
    }
}

void onr_amx_split_panel(const float *p, size_t rows, size_t nkb, uint16_t *dst)
{
    for (size_t kb = 0; kb < nkb; kb++) split_step(p, rows, kb, dst + kb * ONR_AMX_BLOCK);
}

typedef struct tile_config {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* every tile 16 rows of 64 bytes (a static object: GCC's ldtilecfg
 * builtin tells the compiler of only its first byte, so stores into a
 * local configuration just before it may be dropped) */
static const tile_config g_config = {
    .palette = 1,
    .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
    .rows = {16, 16, 16, 16, 16, 16, 16, 16},
};

void onr_amx_tiles_on(void) { _tile_loadconfig(&g_config); }

void onr_amx_tiles_off(void) { _tile_release(); }

/* tiles: 0-3 the sums (rows half r, columns half c at 2r + c), 4-5 A's
 * row halves, 6-7 B's column halves. With half set, only the first row
 * half (tiles 0, 1, 4): a block's last 16 rows are padding. */
#define DP4()                                                                                  \
    do {                                                                                       \
        _tile_dpbf16ps(0, 4, 6);                                                               \
        _tile_dpbf16ps(1, 4, 7);                                                               \
        if (!half) {                                                                           \
            _tile_dpbf16ps(2, 5, 6);                                                           \
            _tile_dpbf16ps(3, 5, 7);                                                           \
        }                                                                                      \
    } while (0)
#define LOAD_A(t)                                                                              \
    do {                                                                                       \
        _tile_loadd(4, a + (t) * 1024, 64);                                                    \
        if (!half) _tile_loadd(5, a + (t) * 1024 + 512, 64);                                   \
    } while (0)
#define LOAD_B(t)                                                                              \
    do {                                                                                       \
        _tile_loadd(6, b + (t) * 1024, 64);                                                    \
        _tile_loadd(7, b + (t) * 1024 + 512, 64);                                              \
    } while (0)

static inline __attribute__((always_inline)) void
kernel_body(const uint16_t *a, const uint16_t *b, size_t nkb, float *s, size_t lds, int load,
            const char *pf, size_t pf_step, const onr_amx_split *next, const int half)
{
    const size_t st = lds * sizeof(float);
    if (load) {
        _tile_loadd(0, s, st);
        _tile_loadd(1, s + 16, st);
        if (!half) {
            _tile_loadd(2, s + 16 * lds, st);
            _tile_loadd(3, s + 16 * lds + 16, st);
        }
    } else {
        _tile_zero(0);
        _tile_zero(1);
        if (!half) {
            _tile_zero(2);
            _tile_zero(3);
        }
    }
    for (size_t kb = 0; kb < nkb; kb++, a += ONR_AMX_BLOCK, b += ONR_AMX_BLOCK) {
        /* the K step's fetches spread between its products */
        size_t q = 0;
#define PF(part)                                                                               \
    do {                                                                                       \
        if (pf)                                                                                \
            for (; q < pf_step * (part) / 6; q += 64) _mm_prefetch(pf + q, _MM_HINT_T1);     \
    } while (0)
        /* b0 with a0, a1, a2; b1 with a1, a0; b2 with a0: each tile pair
         * loaded once where it can stay */
        LOAD_B(0);
        LOAD_A(0);
        DP4();
        PF(1);
        LOAD_A(1);
        DP4();
        PF(2);
        LOAD_A(2);
        DP4();
        PF(3);
        LOAD_B(1);
        LOAD_A(1);
        DP4();
        PF(4);
        LOAD_A(0);
        DP4();
        PF(5);
        LOAD_B(2);
        DP4();
        PF(6);
        if (pf) pf += pf_step;
#undef PF
        /* while the tiles work: one K step of the next block's B' */
        if (next && kb < next->nkb) split_step(next->p, next->rows, kb, next->dst + kb * ONR_AMX_BLOCK);
    }
    if (next)
        for (size_t kb = nkb; kb < next->nkb; kb++)
            split_step(next->p, next->rows, kb, next->dst + kb * ONR_AMX_BLOCK);
    _tile_stored(0, s, st);
    _tile_stored(1, s + 16, st);
    if (!half) {
        _tile_stored(2, s + 16 * lds, st);
        _tile_stored(3, s + 16 * lds + 16, st);
    }
}

void onr_amx_kernel(const uint16_t *a, const uint16_t *b, size_t nkb, float *s, size_t lds, int load,
                    const char *pf, size_t pf_step, const onr_amx_split *next, int half)
{
    if (half)
        kernel_body(a, b, nkb, s, lds, load, pf, pf_step, next, 1);
    else
        kernel_body(a, b, nkb, s, lds, load, pf, pf_step, next, 0);
}
