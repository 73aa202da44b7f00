/*
 * sgemm-ukernel.h - the contract between the blocked SGEMM driver (gemm.c)
 * and its per-ISA microkernels (sgemm-*-avx512.c, sgemm-*-avx2.c,
 * sgemm-ref.c).
 *
 * A microkernel computes one MR x NR tile of C (fewer rows/columns at the
 * edges) from a packed A micro-panel and a B micro-panel:
 *
 *   A: mr rows of kc floats, row i at a + i*lda (A itself when it is
 *      row-major, else a copy made by the driver); never zero-padded.
 *   B: kc rows of at least nr floats, row k at b + k*ldb (ldb == NR for a
 *      packed panel, whose columns beyond nr are zero padding; the row
 *      stride of B itself when reading B in place). Columns >= nr are never
 *      read unless they are padding inside a packed panel.
 *   C: c = alpha*acc + beta*c, with beta == 0 never reading c. When epi is
 *      not NULL (last K block of a product with an epilogue) the epilogue
 *      is applied to the values before they are stored.
 */
#ifndef ONR_SGEMM_UKERNEL_H
#define ONR_SGEMM_UKERNEL_H

#include <math.h>
#include <stddef.h>

#include "gemm/gemm.h"

/* The epilogue as one tile sees it: pointers already offset to the tile. */
typedef struct onr_sgemm_tile_epi {
    const float *bias_col; /* at the tile's first column, or NULL */
    const float *bias_row; /* at the tile's first row, or NULL */
    const float *residual; /* at the tile's (0, 0), or NULL */
    size_t ldr;
    int act; /* onr_gemm_act */
    float clip_min, clip_max;
    int residual_before_act;
} onr_sgemm_tile_epi;

/* Whether the kernels have their register epilogue (epi_fast) at all
 * (tested beside onr_sgemm_epi_fast, a constant, so the code goes): not
 * in clang's sanitizer builds, where it made clang with ASan and UBSan
 * spend over 20 minutes on the AVX-512 kernel file. GCC's sanitizer
 * build and the Release tests run it. */
#if defined(__clang__) && defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ONR_EPI_FAST 0
#endif
#endif
#ifndef ONR_EPI_FAST
#define ONR_EPI_FAST 1
#endif

/* Whether a kernel applies epilogue e from its registers (the kernels'
 * epi_fast): alpha 1, beta 0 or 1, exactly one bias (a row's or the
 * columns'), Relu, Clip or none, a residual only before the activation
 * or with none. Then the activation is min(*hi, max(*lo, x)): Relu 0 and
 * +inf, Clip its bounds, none -inf and +inf (which change nothing, -0 and
 * NaN included). */
static inline int onr_sgemm_epi_fast(const onr_sgemm_tile_epi *e, float alpha, float beta,
                                     float *lo, float *hi)
{
    const int relu = e->act == ONR_ACT_RELU, clip = e->act == ONR_ACT_CLIP;
    if (!(e->act == ONR_ACT_NONE || relu || clip) || alpha != 1.0f ||
        !(beta == 0.0f || beta == 1.0f) || !e->bias_row == !e->bias_col ||
        (e->residual && !e->residual_before_act && e->act != ONR_ACT_NONE))
        return 0;
    *lo = relu ? 0.0f : clip ? e->clip_min : -INFINITY;
    *hi = clip ? e->clip_max : INFINITY;
    return 1;
}

typedef void (*onr_sgemm_ukernel_fn)(size_t mr, size_t nr, size_t kc, const float *a, size_t lda,
                                     const float *b, size_t ldb, float *c, size_t ldc,
                                     float alpha, float beta, const onr_sgemm_tile_epi *epi);

/* C[0..mr) x [0..nr) of rows of A (as for a ukernel) times nr columns of
 * B given transposed: column j's kc values at bt + j * ldbt (bt 64-byte
 * aligned, ldbt a multiple of 16, zeros from kc up to the next multiple of
 * 16). Dot products along k, sixteen k at a time: a few columns cost
 * FMAs in proportion to their number, where a tile of the ukernel's costs
 * as many per k step as a full one. */
typedef void (*onr_sgemm_tail_fn)(size_t mr, size_t nr, size_t kc, const float *a, size_t lda,
                                  const float *bt, size_t ldbt, float *c, size_t ldc, float alpha,
                                  float beta, const onr_sgemm_tile_epi *epi);

/* Lines the kernels prefetch towards L2 as they run, one per k step,
 * in address order: [p, end) (whole 64-byte lines), then, while rows is
 * not 0, the next row's span: row += ld, [row, row + span), rows--. It
 * walks the next block of an A read in place (weights coming from
 * memory), so that its trip overlaps this tile's FMAs instead of stalling
 * the next block. gemm.c sets it per block and calls a config's
 * ukernel_ahead while it holds lines, which advances it past what it
 * prefetched. */
typedef struct onr_sgemm_ahead {
    const char *p, *end, *row;
    size_t ld, span, rows;
} onr_sgemm_ahead;
extern _Thread_local onr_sgemm_ahead onr_sgemm_ahead_cur;

/* A kernel, its tile and its name, chosen together (XNNPACK gemm-config
 * style). Packing routines are shared C code parameterized by mr/nr. */
typedef struct onr_sgemm_config {
    const char *name;  /* "avx512-12x32", ... */
    const char *isa;   /* "avx512", "avx2", "ref": the ONR_GEMM_KERNEL name */
    size_t mr, nr;
    onr_sgemm_ukernel_fn ukernel;
    /* the same product, prefetching onr_sgemm_ahead_cur's lines as it
     * goes (NULL: the kernel has no such variant) */
    onr_sgemm_ukernel_fn ukernel_ahead;
    /* the last columns of a product, where its width leaves 1..tail_max
     * past a multiple of 16 (NULL: the kernel has none; gemm.c) */
    onr_sgemm_tail_fn tail;
    size_t tail_max;
    /* a tile's last step with its sums read from a stored tile (b, ldb)
     * instead of computed (kc 0): the same code after the sums, so the
     * same bits in C (gemm.c's K split; NULL: the kernel has none) */
    onr_sgemm_ukernel_fn finish;
} onr_sgemm_config;

extern const onr_sgemm_config onr_sgemm_config_ref;
extern const onr_sgemm_config onr_sgemm_config_avx2;
extern const onr_sgemm_config onr_sgemm_config_avx512;

/* Scalar epilogue of one value at tile row i, column j (shared by the
 * reference kernel and the SIMD kernels' scalar fallbacks). */
float onr_sgemm_epi_scalar(const onr_sgemm_tile_epi *e, float v, size_t i, size_t j);

#endif
