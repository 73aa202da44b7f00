/*
 * gradient.c - the registry's side of Gradient (ai.onnx.preview.training,
 * opset 1) and the one operator its expansion needs that ONNX lacks.
 *
 * Gradient is never a step: the planner's pass (plan/pass_gradient.c)
 * replaces each Gradient node with standard nodes (the forward sub-graph,
 * the seed, the backward nodes) before operators are resolved. Its row
 * here (ONR_OP_EXPANDED) claims the opset that pass implements, so `info
 * --ops` lists it and a newer opset is refused like any other.
 *
 * SumToShape (domain org.onnxrun, opset 1): SumToShape(G, like) -> Y, the
 * gradient of a broadcast: Y has like's shape and G's type, and is G
 * summed over the axes along which like's shape was broadcast to G's
 * (numpy rules: like's shape right-aligned against G's, each of its dims
 * equal to G's or 1). Only like's shape is read. ONNX's own operators can
 * do this only through a chain of shape computations (which axes to sum is
 * known only once the shapes are), so the expansion uses this instead.
 * Sums are accumulated in double, in G's element order (deterministic).
 */
#include <string.h>

#include "ops/ops.h"

const onr_op_impl onr_impl_gradient = {.flags = ONR_OP_EXPANDED};

typedef struct sts_params {
    int copy;                    /* the shapes are equal: a plain copy */
    int rank;                    /* G's rank */
    int64_t gdims[ONR_MAX_RANK]; /* G's dims */
    int64_t ostr[ONR_MAX_RANK];  /* Y's element stride per G axis (0: summed) */
} sts_params;

static int sts_reshape(onr_kctx *ctx, size_t *scratch)
{
    sts_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_FLOAT);
    if (st) return st;
    const onr_tensor *g = ctx->in[0], *like = ctx->in[1];
    if (!like) return onr_seterr(ctx->err, ONR_E_MODEL, "input 1 (like) is required");
    char b1[256], b2[256];
    int ok = like->rank <= g->rank;
    for (int d = 0; ok && d < like->rank; d++) {
        int64_t ld = like->dims[d], gd = g->dims[g->rank - like->rank + d];
        ok = ld == gd || ld == 1;
    }
    if (!ok)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "the gradient %s cannot be summed to shape %s: that shape does not "
                          "broadcast to it",
                          onr_fmt_dims(b1, sizeof b1, g->dims, g->rank),
                          onr_fmt_dims(b2, sizeof b2, like->dims, like->rank));
    if ((st = onr_set_out(ctx, 0, g->dtype, like->rank, like->dims))) return st;
    p->rank = g->rank;
    p->copy = like->numel == g->numel;
    memcpy(p->gdims, g->dims, sizeof(int64_t) * (size_t)g->rank);
    onr_bcast_strides(like->dims, like->rank, g->dims, g->rank, p->ostr);
    if (!p->copy) *scratch = (size_t)like->numel * sizeof(double);
    return ONR_OK;
}

static int sts_run(const onr_kctx *ctx)
{
    const sts_params *p = ctx->params;
    const onr_tensor *g = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    if (p->copy) { /* like's shape is G's (or differs only by 1s where G has 1s) */
        memcpy(y->data, g->data, onr_tensor_nbytes(g));
        return ONR_OK;
    }
    double *acc = ctx->scratch;
    for (int64_t k = 0; k < y->numel; k++) acc[k] = 0;
    int64_t idx[ONR_MAX_RANK] = {0}, off = 0;
    for (int64_t i = 0; i < g->numel; i++) {
        acc[off] += onr_load_f64(g->dtype, g->data, i);
        for (int d = p->rank - 1; d >= 0; d--) { /* next index of G, Y's offset with it */
            off += p->ostr[d];
            if (++idx[d] < p->gdims[d]) break;
            off -= p->ostr[d] * p->gdims[d];
            idx[d] = 0;
        }
    }
    for (int64_t k = 0; k < y->numel; k++) onr_set_f64(y, k, acc[k]);
    return ONR_OK;
}

const onr_op_impl onr_impl_sum_to_shape = {.reshape = sts_reshape, .run = sts_run,
                                           .params_size = sizeof(sts_params),
                                           .types = ONR_TYPES_FLOAT};
