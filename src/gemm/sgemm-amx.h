/*
 * sgemm-amx.h - float32 products on Intel AMX tiles (sgemm-amx.c), for
 * gemm.c's prepacked weights.
 *
 * AMX multiplies bfloat16 (8 significant bits), so each float32 operand is
 * split exactly into three bfloat16 terms by truncation: x0 = x with its
 * low 16 bits cleared, x1 the same of x - x0, x2 = x - x0 - x1 (at most 8
 * significant bits left, so exact), and x = x0 + x1 + x2 exactly (|x1| <
 * 2^-7 |x|, |x2| < 2^-15 |x|). A product a*b is the sum of the six term
 * products above 2^-23 of it (a0b0, a1b0, a2b0, a1b1, a0b1, a0b2), summed
 * in float32 tiles: the three left out are below 2^-21 |ab| together, under
 * float32's own rounding over a long K (the "bf16x6" of the literature).
 * Tested against a double reference like the float32 kernels.
 *
 * Layouts (uint16 bfloat16 bits; a tile is 16 rows of 64 bytes, 512
 * values, 1 KiB):
 *   A': rows in blocks of 32 (zero rows past m), K in steps of 32 (zeros
 *       past k); block (ib, kb) is 6 tiles at ((ib * KB + kb) * 6) * 512:
 *       tile t * 2 + h holds term t of rows 16h .. 16h+15, 32 k each.
 *   B': columns in blocks of 32 (zeros past n), the same K steps; block
 *       (jb, kb) is 6 tiles at onr_amx_b_offset: tile t * 2 + h holds
 *       term t of columns 16h .. 16h+15 as 16 rows of k pairs (row r: for
 *       each column, k = 2r then 2r + 1). The blocks lie in the order the
 *       products read them (one sequential stream): chunks of ONR_AMX_CB
 *       column blocks, in each K blocks of ONR_AMX_KCB steps, in each the
 *       chunk's column blocks, in each its K steps. Prepacked weights as B
 *       stay float32 panels, split a block at a time as they are read
 *       (onr_amx_split_panel): 4 bytes a value to bring from memory, not 6.
 * Non-finite values are the caller's to route elsewhere (inf - inf would
 * make a NaN term, and inf times a zero term of the other operand a NaN
 * product): the pack functions report them. Terms below float32's normal
 * range are read as zero by the tiles (values under 2^-110 or so lose
 * their low bits: an absolute error below 1e-33).
 */
#ifndef ONR_SGEMM_AMX_H
#define ONR_SGEMM_AMX_H

#include <stddef.h>
#include <stdint.h>

enum {
    ONR_AMX_MB = 32,            /* rows of an A' block, columns of a B' block */
    ONR_AMX_KS = 32,            /* K per step */
    ONR_AMX_BLOCK = 6 * 512,    /* values per block and K step */
    ONR_AMX_CB = 4,             /* B' column blocks per chunk */
    ONR_AMX_KCB = 2             /* K steps per K block */
};

/* Where B' block (jb, kb) starts (values), for KB K steps and JB column
 * blocks in all. */
static inline size_t onr_amx_b_offset(size_t KB, size_t JB, size_t jb, size_t kb)
{
    const size_t c = jb / ONR_AMX_CB, cw = JB - c * ONR_AMX_CB < ONR_AMX_CB ? JB - c * ONR_AMX_CB : ONR_AMX_CB;
    const size_t kq = kb / ONR_AMX_KCB, kw = KB - kq * ONR_AMX_KCB < ONR_AMX_KCB ? KB - kq * ONR_AMX_KCB : ONR_AMX_KCB;
    return (c * ONR_AMX_CB * KB + kq * ONR_AMX_KCB * cw + (jb % ONR_AMX_CB) * kw + kb % ONR_AMX_KCB) *
           (size_t)ONR_AMX_BLOCK;
}

/* A' rows [32 * ib0, 32 * ib1) of op(A) (m x k; trans_a: A is k x m).
 * Returns nonzero if one of those values is not finite (A' is then
 * incomplete). */
int onr_amx_pack_a(int trans_a, const float *a, size_t lda, size_t m, size_t k, size_t ib0,
                   size_t ib1, uint16_t *dst);

/* B' column blocks [jb0, jb1) of op(B) (k x n; trans_b: B is n x k).
 * Returns nonzero if one of those values is not finite. */
int onr_amx_pack_b(int trans_b, size_t k, size_t n, const float *b, size_t ldb, size_t jb0,
                   size_t jb1, uint16_t *dst);

/* nkb K steps of B' for one block of 32 columns, from a float32 panel of
 * 32 columns (row k at p + 32 k, zeros in columns past n): rows valid rows,
 * zeros after. The weights stay float32 in memory (4 bytes a value, not 6)
 * and are split where they are used. */
void onr_amx_split_panel(const float *p, size_t rows, size_t nkb, uint16_t *dst);

/* The calling thread's tiles: configured before its first kernel call,
 * released after its last (a thread holding tile state costs the OS a
 * larger save at every switch). */
void onr_amx_tiles_on(void);
void onr_amx_tiles_off(void);

/* A split to do (onr_amx_split_panel's p, rows, nkb, dst). */
typedef struct onr_amx_split {
    const float *p;
    size_t rows, nkb;
    uint16_t *dst;
} onr_amx_split;

/* A 32 x 32 block of sums over nkb K steps: a at A' block (ib, kb0), b at
 * B' block (jb, kb0); the sums start from s (row stride lds floats) when
 * load is set, else from zero, and are stored back to s. Meanwhile the
 * bytes [pf, pf + nkb * pf_step) are fetched towards L2, pf_step bytes
 * (a multiple of 64) per K step, spread between its tile products
 * (weights the caller multiplies next), and
 * next (if not NULL) is split, a K step after each K step's products, so
 * that the vector units split the next column block while the tiles
 * work. With half set, only the block's first 16 rows of sums are
 * computed and stored (its other rows are past the product's end: half
 * the tile products). */
void onr_amx_kernel(const uint16_t *a, const uint16_t *b, size_t nkb, float *s, size_t lds,
                    int load, const char *pf, size_t pf_step, const onr_amx_split *next, int half);

#endif
