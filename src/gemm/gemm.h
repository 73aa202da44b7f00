/*
 * gemm.h - onnx-run's single-precision matrix multiply core.
 *
 * Plain math on pointers: C = alpha * op(A) * op(B) + beta * C, row-major,
 * op = identity or transpose, any leading dimensions, any M, N, K >= 0.
 * Knows nothing of the IR or ONNX. Never allocates on the multiply path:
 * callers query workspace sizes and hand the memory in.
 *
 * Workspace: onr_sgemm_workspace_size() / onr_sgemm_batch_workspace_size()
 * return an upper bound valid for every kernel this CPU can run. A NULL
 * workspace is accepted but selects a slow unpacked path.
 *
 * Semantics shared by every entry point:
 *  - beta == 0 overwrites C (C may hold NaN/garbage); K == 0 gives beta * C
 *    (then the epilogue).
 *  - The epilogue, when given, is applied to each element as
 *        v = alpha*acc + beta*C + bias_col[j] + bias_row[i]
 *        v = residual_before_act ? act(v + R[i,j]) : act(v) + R[i,j]
 *    (R only when residual != NULL).
 *  - Results are bit-identical for every thread count (K is never split).
 */
#ifndef ONR_GEMM_H
#define ONR_GEMM_H

#include <stddef.h>

typedef enum onr_gemm_act {
    ONR_ACT_NONE = 0,
    ONR_ACT_RELU,
    ONR_ACT_CLIP,      /* min(max(v, clip_min), clip_max) */
    ONR_ACT_SIGMOID,
    ONR_ACT_SILU,      /* v * sigmoid(v) */
    ONR_ACT_GELU_ERF,  /* 0.5 v (1 + erf(v / sqrt 2)) */
    ONR_ACT_GELU_TANH  /* 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))) */
} onr_gemm_act;

typedef struct onr_gemm_epilogue {
    const float *bias_col; /* length N: added to every row, or NULL */
    const float *bias_row; /* length M: added to every column, or NULL */
    onr_gemm_act act;
    float clip_min, clip_max;
    const float *residual; /* M x N with leading dim ldr, or NULL; never overlapping C
                              (C holds partial sums while K blocks accumulate) */
    size_t ldr;
    int residual_before_act; /* 1: act(v + R); 0: act(v) + R */
    /* onr_sgemm_batch only: elements between product p's R and product
     * p+1's (0: every product adds the same R). Biases are shared. */
    size_t residual_batch_stride;
    /* 1: the caller computes these elements only in products of this
     * same shape (a convolution's output: the whole product, or the same
     * bands), never in wider or narrower, taller or shorter ones
     * (Winograd's per-thread blocks, attention's tiles). The GEMM may then
     * take ways whose rounding depends on the shape: the columns the
     * width leaves past a multiple of 16 as dot products (gemm.c,
     * tail_cols), a long K in two blocks for the K split (k_block). An
     * epilogue with only this set is no epilogue. */
    int fixed_shape;
} onr_gemm_epilogue;

/* Bytes of workspace onr_sgemm needs for these sizes and thread count
 * (an upper bound; 64-byte aligned memory expected). */
size_t onr_sgemm_workspace_size(size_t m, size_t n, size_t k, int nthreads);

/* C = alpha*op(A)*op(B) + beta*C [+ epilogue]. ep may be NULL. */
void onr_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
               const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
               size_t ldc, const onr_gemm_epilogue *ep, void *workspace, int nthreads);

/* B generated while it is packed (implicit GEMM: a convolution's im2col
 * done one cache block at a time, inside the threads' tasks, with no column
 * matrix in memory): gen writes rows [p0, p0+kc) x columns [j0, j0+nc) of
 * B to dst[k*ldd + j] (k < kc, j < nc). It is called from any of the
 * product's threads, concurrently for disjoint blocks, each element of B
 * possibly more than once, and must only write those. The workspace is
 * onr_sgemm_workspace_size's; a NULL workspace asks gen for one element at
 * a time (slow, allocation-free). Same results as onr_sgemm on the B that
 * gen describes, for every thread count. */
typedef void (*onr_sgemm_bgen)(void *ctx, size_t p0, size_t kc, size_t j0, size_t nc, float *dst,
                               size_t ldd);
void onr_sgemm_gen(int trans_a, size_t m, size_t n, size_t k, float alpha, const float *a,
                   size_t lda, onr_sgemm_bgen gen, void *gen_ctx, float beta, float *c,
                   size_t ldc, const onr_gemm_epilogue *ep, void *workspace, int nthreads);

/* Prepacked B (constant weights): size first, then pack once. The packed
 * buffer depends on the kernel chosen at start-up, never on thread count. */
size_t onr_sgemm_pack_b_size(size_t k, size_t n);
void onr_sgemm_pack_b(int trans_b, size_t k, size_t n, const float *b, size_t ldb, void *packed);
/* The same with flags. ONR_PACK_AMX: where AMX is in use (onr_sgemm_amx)
 * and every weight is finite, products on these weights run on AMX
 * (sgemm-amx.h: as accurate as float32; the panels are the same floats,
 * split into bfloat16 terms as they are read); they need
 * onr_sgemm_workspace_size_ex's workspace with the same flag. */
enum { ONR_PACK_AMX = 1 };
size_t onr_sgemm_pack_b_size_ex(size_t k, size_t n, int flags);
void onr_sgemm_pack_b_ex(int trans_b, size_t k, size_t n, const float *b, size_t ldb,
                         void *packed, int flags);
size_t onr_sgemm_workspace_size_ex(size_t m, size_t n, size_t k, int nthreads, int flags);
/* Whether weights packed with ONR_PACK_AMX go through AMX now: the CPU has
 * AMX-BF16, the OS allows it, and no other kernel was asked for
 * (ONR_GEMM_KERNEL, onr_sgemm_force_kernel: "amx" asks for it). */
int onr_sgemm_amx(void);
/* Weights as A (a convolution's: m output channels x k), packed once as
 * AMX terms: where AMX is in use onr_sgemm_pack_a_size is not 0 and
 * onr_sgemm_pack_a returns 0 (else nonzero: AMX is off, or a weight is not
 * finite). onr_sgemm_packed_a computes C = alpha*A*B + beta*C [+ ep] on
 * them with B read in place (k x n, row stride ldb), returning 0; it
 * returns nonzero when it cannot (AMX off since, a non-finite value in B),
 * having written nothing where beta is not 0 (with beta 0, C may be partly
 * written): the caller then runs onr_sgemm on its floats. */
size_t onr_sgemm_pack_a_size(size_t m, size_t k);
int onr_sgemm_pack_a(int trans_a, size_t m, size_t k, const float *a, size_t lda, void *packed);
/* op(A) back from what onr_sgemm_pack_a made of it (m x k), each value
 * the sum of its terms: exactly A's where |a| >= 2^-110 (sgemm-amx.h:
 * below, within 1e-33, as the AMX products read it). Into dst, row
 * stride ldd. */
void onr_sgemm_unpack_a(const void *packed, float *dst, size_t ldd);
size_t onr_sgemm_packed_a_workspace_size(size_t m, size_t n, size_t k, int nthreads);
int onr_sgemm_packed_a(size_t m, size_t n, size_t k, float alpha, const void *packed_a,
                       const float *b, size_t ldb, float beta, float *c, size_t ldc,
                       const onr_gemm_epilogue *ep, void *workspace, int nthreads);
/* Test hook: products (or packed_cols ranges) begun on AMX, in this
 * process (a relaxed atomic counter; a non-finite input still counts). */
size_t onr_sgemm_amx_count(void);
/* Test hook: whether products on packed weights may run on AMX. */
int onr_sgemm_packed_is_amx(const void *packed_b);
void onr_sgemm_packed(int trans_a, size_t m, size_t n, size_t k, float alpha, const float *a,
                      size_t lda, const void *packed_b, float beta, float *c, size_t ldc,
                      const onr_gemm_epilogue *ep, void *workspace, int nthreads);
/* Columns [n0, n1) of onr_sgemm_packed's product, on the calling thread
 * only (C, the epilogue's columns and B's columns keep their indices in the
 * whole product): for callers that split the columns between their own
 * threads. n0 must be a multiple of onr_sgemm_packed_width(packed_b). Every
 * element is the same sequence of operations as in the whole product. The
 * workspace is onr_sgemm_workspace_size(m, n, k, 1). */
size_t onr_sgemm_packed_width(const void *packed_b);
void onr_sgemm_packed_cols(int trans_a, size_t m, size_t n, size_t n0, size_t n1, size_t k,
                           float alpha, const float *a, size_t lda, const void *packed_b,
                           float beta, float *c, size_t ldc, const onr_gemm_epilogue *ep,
                           void *workspace);
/* The same on rows [k0, k0 + k) of the packed B (row-major A of k
 * columns): a product whose K comes in runs from different places of A
 * (a convolution's taps read in place, conv.c), summed run by run with
 * beta 1 after the first. Not for B packed as AMX terms (it does nothing
 * then, nor for rows past B's). */
void onr_sgemm_packed_cols_k(size_t m, size_t n, size_t n0, size_t n1, size_t k0, size_t k,
                             float alpha, const float *a, size_t lda, const void *packed_b,
                             float beta, float *c, size_t ldc, const onr_gemm_epilogue *ep,
                             void *workspace);
/* Test hook: how many times onr_sgemm_pack_b has run in this process (a
 * relaxed atomic counter), so tests can check that operators pack their
 * weights once, at create, and never again whatever the activation shapes. */
size_t onr_sgemm_pack_count(void);
/* Test hook: how many blocks of an A read in place the calling thread's
 * kernels have prefetched whole while the block before them ran (so the
 * driver did not touch them again): the weights of a convolution, or
 * Winograd's transformed weights position after position. */
size_t onr_sgemm_ahead_count(void);
/* Regions (on this thread) whose copied A, more rows than one A block, was
 * copied once per K block and swept over all their columns (tests). */
size_t onr_sgemm_sweep_count(void);
/* Blocks (on this thread) whose last columns went through the kernel's
 * dot-product tail (onr_gemm_epilogue.fixed_shape; tests). */
size_t onr_sgemm_tail_count(void);
/* The columns a fixed-shape product of width n leaves to the kernel's tail
 * (dot products along k) with the kernel in use; 0: none. */
size_t onr_sgemm_tail_cols(size_t n);
/* Products (on this thread) run as a K split, one K block per thread
 * (gemm.c, run_ksplit; tests). */
size_t onr_sgemm_ksplit_count(void);

/* The calling thread's cancel flag (the executor sets the run's around each
 * step; NULL: none), returning the one it replaces. A product whose flag
 * is raised stops at its next cache block, leaving C partly written: the
 * step then fails with "the run was cancelled". */
const _Atomic int *onr_sgemm_set_cancel(const _Atomic int *flag);
/* The calling thread's cancel flag (to hand to threads a caller starts). */
const _Atomic int *onr_sgemm_get_cancel(void);

/* Batched, strided: for p in [0, batch): C_p = alpha*op(A_p)*op(B_p) + beta*C_p,
 * with A_p = a + p*stride_a (elements), likewise B and C. A stride of 0
 * broadcasts that operand. */
size_t onr_sgemm_batch_workspace_size(size_t m, size_t n, size_t k, size_t batch, int nthreads);
void onr_sgemm_batch(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                     const float *a, size_t lda, size_t stride_a, const float *b, size_t ldb,
                     size_t stride_b, float beta, float *c, size_t ldc, size_t stride_c,
                     size_t batch, const onr_gemm_epilogue *ep, void *workspace, int nthreads);

/* Name of the microkernel in use ("avx512-...", "avx2-...", "ref"). */
const char *onr_sgemm_kernel_name(void);

/* Whether this CPU runs the code of instruction set `isa`: "ref" always,
 * "avx2" (AVX2 + FMA), "avx512" (AVX-512 F/BW/DQ/VL, AVX2, FMA): exactly
 * the flags CMake compiles a -avx2.c / -avx512.c file with; "amx"
 * (AMX-TILE, AMX-BF16 and AVX-512, with the OS's leave to use the tiles:
 * -amx.c). Every kernel family checks its SIMD builds with it. 0 for any
 * other name. The CPU is asked once; later calls are a load and a string
 * compare. */
int onr_cpu_supports(const char *isa);
/* Force a path for tests: "ref", "avx2", "avx512", "amx" (AVX-512 with AMX
 * for weights packed for it; must be supported by the CPU); NULL restores
 * the automatic choice. Returns 0 on success. Also read
 * once from the ONR_GEMM_KERNEL environment variable at start-up. */
int onr_sgemm_force_kernel(const char *name);

/* The tile and cache blocking in use (for tools and reports): microkernel
 * rows x columns, and the M, K, N block sizes derived from the CPU's caches. */
typedef struct onr_sgemm_blocking {
    size_t mr, nr, mc, kc, nc;
    size_t l1d_bytes, l2_bytes;
} onr_sgemm_blocking;
void onr_sgemm_get_blocking(onr_sgemm_blocking *out);

#endif
