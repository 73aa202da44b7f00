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

/* The auto_pad attribute ("" counts as NOTSET); error on unknown values. */
int onr_autopad_attr(onr_kctx *ctx, onr_autopad *ap);

/* Ints attribute with one value per spatial dim (count n); def when absent;
 * every value must lie in [minv, ONR_SP_ATTR_MAX]. *present tells whether
 * the attribute was there (may be NULL). */
int onr_sp_ints(onr_kctx *ctx, const char *name, int n, int64_t def, int64_t minv,
                int64_t *vals, int *present);

/* Fill g for a sliding window (Conv, pools) over nsp spatial dims of size
 * in_sp, with the given kernel (already checked >= 1), reading strides,
 * dilations (when use_dil), pads and auto_pad from the node. ceil_mode picks
 * the pooling rounding. Errors when the dilated kernel does not fit the
 * padded input. */
int onr_spatial_window(onr_kctx *ctx, int nsp, const int64_t *in_sp, const int64_t *kernel,
                       int ceil_mode, int use_dil, onr_spatial *g);

/* Spatial dims of an N x C x D1.. tensor as 3 padded dims (leading 1s). */
void onr_sp_pad3(int nsp, const int64_t *src, int64_t fill, int64_t *dst);

/* Taps j in [*lo, *hi) of a window starting at `start` with step d and k
 * taps whose position start + j*d lies inside [0, in). */
static inline void onr_sp_taps(int64_t start, int64_t k, int64_t d, int64_t in, int64_t *lo,
                               int64_t *hi)
{
    int64_t l = start < 0 ? (-start + d - 1) / d : 0;
    int64_t h = in - start <= 0 ? 0 : (in - start + d - 1) / d;
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
/* t[i] = round(src[i]) for FLOAT16/BFLOAT16/FLOAT tensors. */
void onr_la_from_f32(onr_tensor *t, const float *src, int nthreads);

/* ---- scratch carving --------------------------------------------------- */

static inline size_t onr_al64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Hands out consecutive 64-byte aligned pieces of one scratch buffer; the
 * same sequence of onr_carve calls on a NULL base measures the total. */
typedef struct onr_carver {
    char *base;
    size_t used;
} onr_carver;

static inline void *onr_carve(onr_carver *c, size_t bytes)
{
    void *p = c->base ? c->base + c->used : NULL;
    c->used += onr_al64(bytes);
    return p;
}

#endif
