/*
 * winograd.h - Winograd F(4x4, 3x3) for 2-D float32 convolution with a 3x3
 * kernel, stride 1 and dilation 1 (any pads, groups, batch), as conv.c's
 * CONV_WINO path.
 *
 * Each output channel's 4x4 block of outputs (a tile) comes from a 6x6
 * block of input: Y = A^T [ (G g G^T) .* (B^T d B) ] A, summed over input
 * channels. With U = G g G^T (the weights, transformed once at create) and
 * V = B^T d B (the input, transformed a block of tiles at a time), the sum
 * over channels is 36 independent GEMMs, one per position xi of the 6x6:
 *
 *     Mx[xi] (Mg x T) = U[xi] (Mg x Cg) * V[xi] (Cg x T)
 *
 * 36 multiply-adds per 16 outputs and channel pair instead of 144. The
 * output transform (A^T Mx A) then applies the epilogue (bias, residual,
 * activation) to each output row while it is in cache.
 *
 * Work goes in blocks of tiles (a few tile rows, or part of one) whose V and
 * Mx stay near the cache; each block is transformed, multiplied and
 * transformed back before the next. Blocks are fixed by the shapes only
 * and each phase splits over threads by channel (transforms) or as the
 * SGEMM core does (bit-identical for any thread count), so every output is
 * the same sequence of operations whatever the thread count.
 *
 * Transforms: a portable version and AVX2 / AVX-512 builds of the same
 * loops (winograd-avx2.c, winograd-avx512.c), chosen from the CPU.
 */
#ifndef ONR_OPS_WINOGRAD_H
#define ONR_OPS_WINOGRAD_H

#include <stddef.h>
#include <stdint.h>

/* Geometry of one Winograd convolution and its scratch, from plan. */
typedef struct onr_wino_geom {
    int64_t N, C, M, G, Cg, Mg;
    int64_t IH, IW, OH, OW;
    int64_t pt, pl;      /* top and left pads (the others follow from OH, OW) */
    int64_t TY, TX;      /* tiles of one image: ceil(OH/4) x ceil(OW/4) */
    int shared;          /* few tiles: every block on all threads, phase by phase
                            (R x SX tiles); else each thread its own blocks
                            (runs of tblk consecutive tiles of its share) */
    int64_t R, SX;       /* shared: a block is R tile rows (of all N*TY) x SX columns */
    int64_t tblk;        /* tiles per block (shared: R * SX) */
    int one_block;       /* all tiles in one block whatever the thread count, and
                            columns for the SGEMM's tail: products of fixed shape */
    int64_t ldt;         /* row stride of V and Mx (tiles, padded) */
    int64_t ldu;         /* row stride of U (input channels, padded) */
    size_t vs, ms;       /* floats from one of the 36 matrices of V (Mx) to the next */
    int nthreads;        /* threads the scratch was sized for */
    size_t off_v, off_m, off_tmp, off_ws; /* offsets in the scratch of thread 0's */
    size_t per_thread;   /* bytes between one thread's buffers and the next's */
    size_t tmp_floats;   /* per-thread transform buffer */
    size_t scratch;      /* bytes */
} onr_wino_geom;

/* What the output transform applies, in conv.c's order:
 * v = conv + bias[m]; v += z (unless z_after); act(v); v += z (if z_after). */
typedef struct onr_wino_epi {
    const float *bias;   /* M values, or NULL */
    const float *z;      /* residual of Y's shape, or NULL */
    int z_after;
    /* clamp: the activation is v < lo ? lo : v, then v > hi ? hi : v (Relu,
     * Clip), applied as the row is stored; else act over n floats of an
     * output row, or NULL */
    int clamp;
    float lo, hi;
    void (*act)(const void *ctx, float *y, int64_t n);
    const void *act_ctx;
} onr_wino_epi;

/* Algorithm choice (ONR_CONV_ALGO=auto|im2col|winograd, read once; tests
 * may force it). */
enum { ONR_WINO_AUTO, ONR_WINO_OFF, ONR_WINO_FORCE };
int onr_wino_mode(void);
/* Test hook: force a mode (ONR_WINO_*); -1 restores the environment's. */
void onr_wino_force(int mode);

/* Row stride of the transformed weights for Cg input channels. */
int64_t onr_wino_ldu(int64_t Cg);
/* Floats of U for M output channels of Cg inputs each (all groups). */
size_t onr_wino_weights_floats(int64_t M, int64_t Cg);
/* U from W [M, Cg, 3, 3] (groups G): U[grp][xi][m][c], row stride ldu; on
 * nt threads (the same values on any number). */
void onr_wino_transform_weights(const float *w, int64_t M, int64_t Cg, int64_t G, float *u, int nt);

/* Whether the automatic rule takes Winograd for this geometry (filled as
 * far as N..OW and pads). */
int onr_wino_worth(const onr_wino_geom *g);

/* Fill the blocking and scratch layout of g (N..pl set by the caller). */
void onr_wino_plan(onr_wino_geom *g, int nthreads);

/* y = conv(x, w) + epilogue, from U; scratch of g->scratch bytes
 * (64-byte aligned). nt <= g->nthreads. */
void onr_wino_run(const onr_wino_geom *g, const float *x, const float *u,
                  const onr_wino_epi *e, float *y, void *scratch, int nt);

/* ---- the transforms (winograd-kern.h, one build per ISA) ------------------ */

/* The transforms work on the nt tiles of a block as one flat run.
 *
 * Input: d[(i*6 + p)*nt + j] = input row i, column p of tile j's 6x6
 * window; the 36 positions of tile j to v[xi*vstride + j]. tmp: 36*nt
 * floats. */
typedef void (*onr_wino_in_fn)(const float *d, int64_t nt, float *v, size_t vstride, float *tmp);
/* Output: from Mx (position xi of tile j at mx[xi*mstride + j]) the 4x4
 * outputs of each tile plus bias: output row r of tile j at
 * out[r*4nt + 4j .. 4j+3]. tmp: 24*nt floats. */
typedef void (*onr_wino_out_fn)(const float *mx, size_t mstride, int64_t nt, float bias,
                                float *out, float *tmp);

/* Gather: the six columns of nx tiles from one input row (see winograd-kern.h). */
typedef void (*onr_wino_gather_fn)(const float *row, int64_t IW, int64_t ix0, int64_t nx,
                                   float *d, int64_t ld);
void onr_wino_gather_ref(const float *, int64_t, int64_t, int64_t, float *, int64_t);
void onr_wino_gather_avx2(const float *, int64_t, int64_t, int64_t, float *, int64_t);
void onr_wino_gather_avx512(const float *, int64_t, int64_t, int64_t, float *, int64_t);
/* Store: y[i] = clamp(s[i] + zb[i]) + za[i] over one row (winograd-kern.h). */
typedef void (*onr_wino_store_fn)(float *y, const float *s, const float *zb, const float *za,
                                  int64_t n, float lo, float hi);
void onr_wino_store_ref(float *, const float *, const float *, const float *, int64_t, float, float);
void onr_wino_store_avx2(float *, const float *, const float *, const float *, int64_t, float, float);
void onr_wino_store_avx512(float *, const float *, const float *, const float *, int64_t, float,
                           float);
void onr_wino_in_ref(const float *, int64_t, float *, size_t, float *);
void onr_wino_out_ref(const float *, size_t, int64_t, float, float *, float *);
void onr_wino_in_avx2(const float *, int64_t, float *, size_t, float *);
void onr_wino_out_avx2(const float *, size_t, int64_t, float, float *, float *);
void onr_wino_in_avx512(const float *, int64_t, float *, size_t, float *);
void onr_wino_out_avx512(const float *, size_t, int64_t, float, float *, float *);
/* Test hook: how many convolutions onr_wino_run has computed in this
 * process (a relaxed atomic counter), so tests can tell which path ran. */
size_t onr_wino_run_count(void);
/* Test hook: transforms of "ref", "avx2" or "avx512" (must be supported);
 * NULL: the CPU's best. Returns 0 on success. */
int onr_wino_force_isa(const char *name);

#endif
