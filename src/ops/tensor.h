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

/* out[...] = src[offset + sum_k idx_k * strides[k]] for every index of the
 * dims (row-major output, contiguous). strides are in elements and may be
 * zero (broadcast) or negative (reversed slices). The caller guarantees
 * every source index is inside the source tensor. Parallel above the work
 * threshold for non-string types. */
int tn_strided_copy(onr_kctx *ctx, onr_dtype dt, void *dst, const void *src, int rank,
                    const int64_t *dims, const int64_t *strides, int64_t offset);

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
int tn_norm_axes(onr_kctx *ctx, const int64_t *vals, int n, int rank, int *axes,
                 const char *what);

/* The run-time output must have the dims the shape fn set; a mismatch means
 * the plan is stale and copying would go out of bounds. */
int tn_check_out(onr_kctx *ctx, int i, int rank, const int64_t *dims);

/* In a run fn: every input value is known, so a parameter function that
 * still defers is an error with a message; other codes pass through. */
int tn_nodefer(onr_kctx *ctx, int st);

/* Input i present and with data (value inputs a kernel must read). */
int tn_need_data(onr_kctx *ctx, int i);

/* Read an optional int list input i (int32/int64, rank <= 1) into vals;
 * *present = 0 when the input is omitted. ONR_SHAPE_DEFER when its data is
 * not known yet. */
int tn_read_ints_opt(onr_kctx *ctx, int i, int64_t *vals, int max, int *count, int *present);

/* Typed element reductions used by ScatterND/ScatterElements. */
typedef enum tn_reduce { TN_RED_NONE, TN_RED_ADD, TN_RED_MUL, TN_RED_MAX, TN_RED_MIN } tn_reduce;

/* Parse a `reduction` attribute value allowed at this opset. */
int tn_parse_reduction(onr_kctx *ctx, tn_reduce *red);

/* dst[i] = red(dst[i], src[i]) for n elements of numeric/bool type dt;
 * TN_RED_NONE copies. */
int tn_reduce_into(onr_dtype dt, tn_reduce red, void *dst, const void *src, int64_t n);

/* Format dims of a tensor into buf, for messages. */
#define TN_DIMS(buf, t) onr_fmt_dims(buf, sizeof buf, (t)->dims, (t)->rank)

#endif
