/*
 * tensorscatter.c - TensorScatter (opset 24, its first version): the
 * functional form of an in-place KV-cache update.
 *
 *   present_cache = past_cache, then for every prefix index p of the dims
 *   before `axis` (p[0] is the batch b) and every s < sequence_length:
 *       present_cache[p, w, ...] = update[p, s, ...]
 *   with w = write_indices[b] + s (mode "linear") or that modulo
 *   max_sequence_length (mode "circular"); write_indices defaults to zeros.
 *
 * past_cache and update have the same rank and dims except along `axis`
 * (default -2; not 0, the batch dim), where past_cache has
 * max_sequence_length and update sequence_length <= it. write_indices is a
 * 1-D int64 tensor of batch_size values, read in run: a negative index, or
 * in linear mode one whose window runs past max_sequence_length, is an
 * error naming the batch (the reference implementation would index out of
 * bounds there).
 *
 * Every element type: the op moves elements without looking at them (one
 * byte each for the 8/4/2-bit types, owned copies for strings). reshape
 * reduces the geometry to [outer, max_seq, inner] / [outer, seq, inner];
 * run copies past to present, then each update row of `inner` elements.
 */
#include <string.h>

#include "ops/ops.h"
#include "ops/tensor.h"

#define TS_TYPES                                                                                 \
    (ONR_TYPES_ALL | ONR_T(ONR_FLOAT8E4M3FN) | ONR_T(ONR_FLOAT8E4M3FNUZ) |                       \
     ONR_T(ONR_FLOAT8E5M2) | ONR_T(ONR_FLOAT8E5M2FNUZ) | ONR_T(ONR_UINT4) | ONR_T(ONR_INT4) |     \
     ONR_T(ONR_FLOAT4E2M1) | ONR_T(ONR_FLOAT8E8M0) | ONR_T(ONR_UINT2) | ONR_T(ONR_INT2))

typedef struct ts_params {
    int64_t axis_attr; /* create */
    int circular;      /* create */
    /* reshape: past as [outer, maxs, inner], update as [outer, seq, inner];
     * the batch index of outer row o is o / per_batch */
    int64_t outer, maxs, seq, inner, per_batch, batch;
} ts_params;

static int ts_create(onr_create_ctx *c, void *params)
{
    ts_params *p = params;
    p->axis_attr = onr_attr_int(c->node, "axis", -2);
    const char *mode = onr_attr_string(c->node, "mode", "linear");
    if (strcmp(mode, "linear") != 0 && strcmp(mode, "circular") != 0)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attribute 'mode' must be \"linear\" or \"circular\", got \"%s\"", mode);
    p->circular = strcmp(mode, "circular") == 0;
    return ONR_OK;
}

static int ts_reshape(onr_kctx *ctx, size_t *scratch)
{
    ts_params *p = ctx->params;
    int st, ax;
    char b1[256], b2[256];
    *scratch = 0;
    if (ctx->n_in < 2 || ctx->n_in > 3 || ctx->n_out != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "expects 2 or 3 inputs and 1 output, got %d and %d",
                          ctx->n_in, ctx->n_out);
    if ((st = onr_check_input(ctx, 0, TS_TYPES)) || (st = onr_check_input(ctx, 1, TS_TYPES)))
        return st;
    const onr_tensor *past = ctx->in[0], *upd = ctx->in[1];
    if (upd->dtype != past->dtype)
        return onr_seterr(ctx->err, ONR_E_MODEL, "update is %s, past_cache is %s",
                          onr_dtype_name(upd->dtype), onr_dtype_name(past->dtype));
    if (past->rank < 2)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "past_cache must have a batch and a sequence dim, it has shape %s",
                          TN_DIMS(b1, past));
    if ((st = onr_norm_axis(ctx->err, p->axis_attr, past->rank, &ax))) return st;
    if (ax == 0)
        return onr_seterr(ctx->err, ONR_E_MODEL, "attribute 'axis' = %lld is the batch dim",
                          (long long)p->axis_attr);
    int same = upd->rank == past->rank;
    for (int i = 0; same && i < past->rank; i++)
        if (i != ax && upd->dims[i] != past->dims[i]) same = 0;
    if (!same || upd->dims[ax] > past->dims[ax])
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "update %s must match past_cache %s except along axis %d, where it may "
                          "be shorter",
                          TN_DIMS(b1, upd), TN_DIMS(b2, past), ax);
    p->batch = past->dims[0];
    p->outer = 1;
    for (int i = 0; i < ax; i++) p->outer *= past->dims[i];
    p->per_batch = p->batch ? p->outer / p->batch : 0;
    p->maxs = past->dims[ax];
    p->seq = upd->dims[ax];
    p->inner = 1;
    for (int i = ax + 1; i < past->rank; i++) p->inner *= past->dims[i];
    if (ctx->n_in > 2 && ctx->in[2]) {
        const onr_tensor *w = ctx->in[2];
        if ((st = onr_check_input(ctx, 2, ONR_T(ONR_INT64)))) return st;
        if (w->rank != 1 || w->dims[0] != p->batch)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "write_indices must be 1-D of batch_size %lld values, it has shape %s",
                              (long long)p->batch, TN_DIMS(b1, w));
    }
    return onr_set_out_like(ctx, 0, 0);
}

static int ts_run(const onr_kctx *ctx)
{
    const ts_params *p = ctx->params;
    const onr_tensor *past = ctx->in[0], *upd = ctx->in[1];
    const onr_tensor *w = ctx->n_in > 2 ? ctx->in[2] : NULL;
    onr_tensor *y = ctx->out[0];
    onr_dtype dt = past->dtype;
    size_t es = tn_esz(dt);
    const int64_t *wi = w ? (const int64_t *)w->data : NULL;
    /* the indices first, so a bad one leaves nothing half written */
    for (int64_t b = 0; wi && p->seq > 0 && b < p->batch; b++) {
        if (wi[b] < 0)
            return onr_seterr(ctx->err, ONR_E_MODEL, "write_indices[%lld] = %lld is negative",
                              (long long)b, (long long)wi[b]);
        if (!p->circular && wi[b] > p->maxs - p->seq)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "write_indices[%lld] = %lld: %lld rows from there pass "
                              "max_sequence_length %lld (mode \"linear\")",
                              (long long)b, (long long)wi[b], (long long)p->seq,
                              (long long)p->maxs);
    }
    if (y->data != past->data && tn_copy(dt, y->data, past->data, past->numel))
        return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory copying strings");
    if (p->seq == 0 || p->inner == 0) return ONR_OK;
    for (int64_t o = 0; o < p->outer; o++) {
        int64_t start = wi ? wi[o / p->per_batch] : 0;
        if (p->circular) start %= p->maxs;
        char *dst = (char *)y->data + (size_t)(o * p->maxs) * p->inner * es;
        const char *src = (const char *)upd->data + (size_t)(o * p->seq) * p->inner * es;
        /* linear: one contiguous block; circular: at most two */
        int64_t first = p->circular && start + p->seq > p->maxs ? p->maxs - start : p->seq;
        if (tn_copy(dt, dst + (size_t)(start * p->inner) * es, src, first * p->inner) ||
            (first < p->seq &&
             tn_copy(dt, dst, src + (size_t)(first * p->inner) * es, (p->seq - first) * p->inner)))
            return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory copying strings");
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_tensorscatter = {.create = ts_create, .reshape = ts_reshape,
                                            .run = ts_run, .params_size = sizeof(ts_params),
                                            .types = TS_TYPES};
