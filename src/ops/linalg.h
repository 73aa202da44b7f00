/*
 * linalg.h - private helpers of the linear-algebra family (matmul.c, conv.c,
 * pool.c): the sliding-window geometry Conv and the pools share (kernel,
 * strides, dilations, pads, auto_pad, output sizes exactly as the ONNX spec
 * gives them), float16/bfloat16 <-> float32 work buffers, and scratch carving.
 *
 * Spatial ranks 1..3 are all handled as 3-D: a 1-D or 2-D window gets leading
 * unit dims (in = k = s = d = 1, no pads), which changes neither the memory
 * layout nor the result, so every loop is written once.
 */
#ifndef ONR_OPS_LINALG_H
#define ONR_OPS_LINALG_H

#include "ops/ops.h"

#define ONR_SP_MAX 3
/* Largest kernel/stride/dilation/pad value accepted: keeps every product of
 * two of them (and with a dim) far from int64 overflow. */
#define ONR_SP_ATTR_MAX (INT64_C(1) << 31)

typedef enum onr_autopad {
    ONR_PAD_NOTSET,
    ONR_PAD_SAME_UPPER,
    ONR_PAD_SAME_LOWER,
    ONR_PAD_VALID
} onr_autopad;

/* A window over 3 (padded) spatial dims; index 2 is the innermost. */
typedef struct onr_spatial {
    int nsp; /* spatial rank of the tensors (1..3) */
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
} onr_spatial;

/* An ints attribute with one value per spatial dim (or two, for pads), read
 * and range-checked in create; its count is checked against the input's
 * spatial rank in reshape (onr_sp_list_get), the only place that rank is
 * known. */
#define ONR_SP_LIST_MAX (2 * ONR_MAX_RANK)
typedef struct onr_sp_list {
    const char *name; /* the attribute's name (a literal) */
    int present, n;
    int64_t v[ONR_SP_LIST_MAX];
} onr_sp_list;

/* Read attribute `name` into l: at most maxn values, each in [minv,
 * ONR_SP_ATTR_MAX]. Absent: l->present = 0. More than maxn values is
 * ONR_E_UNSUPPORTED (only a window over more dims would take them). */
int onr_sp_list_attr(const onr_create_ctx *c, const char *name, int maxn, int64_t minv,
                     onr_sp_list *l);
/* The list's n values (error when it has another count), or def n times
 * when the attribute was absent. */
int onr_sp_list_get(onr_err *err, const onr_sp_list *l, int n, int64_t def, int64_t *vals);

/* The window attributes Conv and the pools share, read in create. */
typedef struct onr_window_attrs {
    onr_autopad ap;
    onr_sp_list strides, dilations, pads;
} onr_window_attrs;

/* Read auto_pad ("" counts as NOTSET), strides, dilations and pads (for up
 * to ONR_SP_MAX dims). */
int onr_window_attrs_read(const onr_create_ctx *c, onr_window_attrs *wa);

/* Fill g for a sliding window (Conv, pools) over nsp spatial dims of size
 * in_sp, with the given kernel (already checked >= 1) and the window
 * attributes. ceil_mode picks the pooling rounding. Errors when a list's
 * count does not match nsp or the dilated kernel does not fit the padded
 * input. */
int onr_spatial_window(onr_err *err, const onr_window_attrs *wa, int nsp, const int64_t *in_sp,
                       const int64_t *kernel, int ceil_mode, onr_spatial *g);

/* MaxPool (no Indices) of `planes` float32 planes of the geometry sp, the
 * input planes ldx floats apart, the output planes ldy (0: packed), on the
 * calling thread (pool.c; FusedConv's pool): tmp holds
 * onr_maxpool_tmp_floats(sp) floats. */
size_t onr_maxpool_tmp_floats(const onr_spatial *sp);
void onr_maxpool_planes_f32(const onr_spatial *sp, int64_t planes, const float *x, int64_t ldx,
                            float *y, int64_t ldy, float *tmp);

/* Spatial dims of an N x C x D1.. tensor as 3 padded dims (leading 1s). */
void onr_sp_pad3(int nsp, const int64_t *src, int64_t fill, int64_t *dst);

/* Taps j in [*lo, *hi) of a window starting at `start` with step d and k
 * taps whose position start + j*d lies inside [0, in). */
static inline void onr_sp_taps(int64_t start, int64_t k, int64_t d, int64_t in, int64_t *lo,
                               int64_t *hi)
{
    /* dilation 1 without the divisions: MaxPool computes a window per
     * output row, and that code, mostly these divisions, was a quarter of
     * ResNet's 3x3 / 2 pool */
    int64_t l = start < 0 ? (d == 1 ? -start : (-start + d - 1) / d) : 0;
    int64_t h = in - start <= 0 ? 0 : (d == 1 ? in - start : (in - start + d - 1) / d);
    if (h > k) h = k;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

static inline int64_t onr_sp_numel(const int64_t v[3]) { return v[0] * v[1] * v[2]; }

/* ---- 16-bit floats through float32 work buffers ----------------------- */

static inline int onr_is_half(onr_dtype dt) { return dt == ONR_FLOAT16 || dt == ONR_BFLOAT16; }
/* dst[i] = t[i] as float, for FLOAT16/BFLOAT16/FLOAT tensors. */
void onr_la_to_f32(const onr_tensor *t, float *dst, int nthreads);
/* create: a malloc'd float32 copy of constant t (FLOAT16/BFLOAT16/FLOAT),
 * each element multiplied by scale; NULL with an error set when out of
 * memory. Never NULL for an empty t. */
float *onr_la_const_f32(const onr_create_ctx *c, const onr_tensor *t, float scale);
/* t[i] = round(src[i]) for FLOAT16/BFLOAT16/FLOAT tensors. */
void onr_la_from_f32(onr_tensor *t, const float *src, int nthreads);

/* ---- scratch carving --------------------------------------------------- */

static inline size_t onr_al64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Offsets of scratch pieces, computed once in reshape and kept in params:
 * onr_carve_at() reserves one and returns its offset, onr_scratch_at()
 * gives its address in run (NULL for ONR_NO_SCRATCH). */
#define ONR_NO_SCRATCH SIZE_MAX
static inline size_t onr_carve_at(size_t *used, size_t bytes)
{
    size_t off = *used;
    *used += onr_al64(bytes);
    return off;
}
static inline void *onr_scratch_at(const onr_kctx *ctx, size_t off)
{
    return off == ONR_NO_SCRATCH ? NULL : (char *)ctx->scratch + off;
}

#endif
