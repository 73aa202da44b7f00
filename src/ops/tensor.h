/*
 * tensor.h - helpers private to the tensor-manipulation operators
 * (shape_ops.c, copy_ops.c, gather.c, fill_ops.c; implemented in tensor.c).
 *
 * These operators mostly move elements without looking at them, so the
 * helpers work on element sizes (1/2/4/8 bytes) and treat STRING tensors
 * (arrays of owned char *) as the one type that needs per-element copies.
 */
#ifndef ONR_OPS_TENSOR_H
#define ONR_OPS_TENSOR_H

#include "ops/ops.h"

/* Strided copies may interleave two dims per axis (Tile), so they take up to
 * twice the tensor rank. */
#define TN_MAX_DIMS (2 * ONR_MAX_RANK)

/* Bytes per element as stored: sizeof(char *) for STRING. */
size_t tn_esz(onr_dtype dt);

/* Copy n elements of type dt from src to dst (may not overlap). STRING
 * elements are duplicated and dst's old strings freed. Returns ONR_OK or
 * ONR_E_NOMEM (STRING only). */
int tn_copy(onr_dtype dt, void *dst, const void *src, int64_t n);

/* Fill n elements of dst with the single element at val. */
int tn_fill(onr_dtype dt, void *dst, const void *val, int64_t n);

/* Fill n elements with zero of type dt (all-zero bits; "" for STRING). */
int tn_zero(onr_dtype dt, void *dst, int64_t n);

/* A strided copy planned once (in reshape) and run many times:
 *   out[...] = src[offset + sum_k idx_k * strides[k]] for every index of the
 * dims (row-major output, contiguous). strides are in elements and may be
 * zero (broadcast) or negative (reversed slices). The planner coalesces the
 * index space (drops size-1 dims, merges dims contiguous in the source too)
 * and picks the inner loop; run only walks it. The caller guarantees every
 * source index is inside the source tensor. */
typedef struct tn_copy_plan {
    int empty;               /* a dim is 0: nothing to copy (strides unused) */
    size_t esz;              /* element bytes; 0 for STRING (per-element copies) */
    int r;                   /* coalesced rank */
    int64_t d[TN_MAX_DIMS];  /* dims */
    int64_t s[TN_MAX_DIMS];  /* source strides */
    int64_t os[TN_MAX_DIMS]; /* destination strides (contiguous) */
    int mode;                /* inner loop: rows, fill, tiled 2-D transpose, gather */
    int p;                   /* tiled mode: the axis with source stride 1 */
    int no;                  /* outer axes walked by the odometer */
    int oax[TN_MAX_DIMS];
    int64_t m;               /* outer positions */
    int64_t inner;           /* elements per outer position */
    int64_t units;           /* units of work split across threads */
    int64_t offset;          /* source element of output index 0 */
} tn_copy_plan;

/* Plan the copy of elements of type dt (reshape). Strides are not read when
 * a dim is 0. ONR_E_UNSUPPORTED for element sizes other than 1/2/4/8. */
int tn_copy_plan_make(tn_copy_plan *pl, onr_dtype dt, int rank, const int64_t *dims,
                      const int64_t *strides, int64_t offset, onr_err *err);

/* Run a planned copy (run): parallel above the work threshold for
 * non-string types. */
int tn_copy_plan_run(const tn_copy_plan *pl, onr_dtype dt, void *dst, const void *src,
                     int nthreads, onr_err *err);

/* Value i of an int32/int64 tensor. */
static inline int64_t tn_index_at(const onr_tensor *t, int64_t i)
{
    return t->dtype == ONR_INT64 ? ((const int64_t *)t->data)[i]
                                 : (int64_t)((const int32_t *)t->data)[i];
}

/* Normalize a possibly negative index into [0, n); -1 when out of range. */
static inline int64_t tn_wrap_index(int64_t v, int64_t n)
{
    if (v < 0) v += n;
    return (v >= 0 && v < n) ? v : -1;
}

/* Product of dims[a..b), saturating at INT64_MAX. Kernels that multiply
 * dims further return early on empty tensors, where only a zero elsewhere
 * keeps the true product in range. */
int64_t tn_prod(const int64_t *dims, int a, int b);

/* Read axes given as a list into axes[0..n) normalized to [0, rank), with
 * duplicates rejected; `what` names them in messages. */
int tn_norm_axes(onr_err *err, const int64_t *vals, int n, int rank, int *axes,
                 const char *what);

/* The run-time output must have the dims the shape fn set; a mismatch means
 * the plan is stale and copying would go out of bounds (old-contract ops,
 * whose run recomputes the geometry). */
int tn_check_out(const onr_kctx *ctx, int i, int rank, const int64_t *dims);

/* In a run fn: every input value is known, so a parameter function that
 * still defers is an error with a message; other codes pass through. */
int tn_nodefer(const onr_kctx *ctx, int st);

/* Input i present and with data (value inputs a kernel must read). */
int tn_need_data(const onr_kctx *ctx, int i);

/* Read an optional int list input i (int32/int64, rank <= 1) into vals;
 * *present = 0 when the input is omitted. ONR_SHAPE_DEFER when its data is
 * not known yet. */
int tn_read_ints_opt(onr_kctx *ctx, int i, int64_t *vals, int max, int *count, int *present);

/* Typed element reductions used by ScatterND/ScatterElements. */
typedef enum tn_reduce { TN_RED_NONE, TN_RED_ADD, TN_RED_MUL, TN_RED_MAX, TN_RED_MIN } tn_reduce;

/* Read and check the `reduction` attribute allowed at this opset (create). */
int tn_reduction_attr(const onr_create_ctx *c, tn_reduce *red);
/* TRANSITION: the same from an old-contract shape/run fn (gather.c's
 * Scatter ops until that family is converted; removed with ctx->node). */

/* dst[i] = red(dst[i], src[i]) for n elements of numeric/bool type dt;
 * TN_RED_NONE copies. */
int tn_reduce_into(onr_dtype dt, tn_reduce red, void *dst, const void *src, int64_t n);

/* ---- the 8-, 4- and 2-bit element types ------------------------------------
 * In memory each element is one byte (onnxrun.h), so the copy paths of the
 * 1-byte types move them unchanged; what differs per operator is which
 * opset's schema lists them. The specification adds them in groups:
 *   float8e4m3fn/e4m3fnuz/e5m2/e5m2fnuz  19 (Reshape, Shape, Size, Identity,
 *                                          Constant, Cast), 20 (ConstantOfShape),
 *                                          21 (Flatten, Squeeze, Unsqueeze,
 *                                          Transpose, Pad)
 *   int4, uint4                          21
 *   float4e2m1                           23
 *   float8e8m0                           24
 *   int2, uint2                          25
 * Gather, GatherElements, GatherND, Concat, Split, Slice, Expand, Tile and
 * Where list none of them at any opset (their type lists stop at IR 4). */
#define TN_TYPES_LOWP                                                                      \
    (ONR_T(ONR_FLOAT8E4M3FN) | ONR_T(ONR_FLOAT8E4M3FNUZ) | ONR_T(ONR_FLOAT8E5M2) |          \
     ONR_T(ONR_FLOAT8E5M2FNUZ) | ONR_T(ONR_UINT4) | ONR_T(ONR_INT4) |                       \
     ONR_T(ONR_FLOAT4E2M1) | ONR_T(ONR_FLOAT8E8M0) | ONR_T(ONR_UINT2) | ONR_T(ONR_INT2))

/* First opset at which an operator whose float8 types came at float8_since
 * lists dt; 0 for a type that is not a low-precision one. */
int tn_lowp_since(onr_dtype dt, int float8_since);

/* Require input i present with a type the operator's schema lists at
 * ctx->opset: any of ONR_TYPES_ALL, or a low-precision type from the opset
 * of its group (float8_since: the operator's first opset with float8; 0 for
 * operators that list none). The message names the type and the opset that
 * admits it. */
int tn_check_data(onr_kctx *ctx, int i, int float8_since);

/* Format dims of a tensor into buf, for messages. */
#define TN_DIMS(buf, t) onr_fmt_dims(buf, sizeof buf, (t)->dims, (t)->rank)

#endif
