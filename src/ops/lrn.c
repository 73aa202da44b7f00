/*
 * lrn.c - LRN, local response normalization (opsets 1 and 13; 13 adds
 * bfloat16).
 *
 * For X of shape [N, C, D1..Dk]: Y = X / (bias + alpha / size * S)^beta,
 * where S sums X^2 over the channels max(0, c - floor((size-1)/2)) ..
 * min(C-1, c + ceil((size-1)/2)). Computed in double per element, a window
 * sum that slides along C; every element's value is independent of the
 * thread count.
 */
#include <math.h>

#include "ops/ops.h"

typedef struct lrn_params {
    float alpha, beta, bias;
    int64_t size;
    int64_t n, c, inner; /* reshape */
} lrn_params;

static int float_attr(onr_create_ctx *c, const char *name, float def, float *v)
{
    const onr_attr *a = onr_node_attr(c->node, name);
    if (a && a->type != ONR_ATTR_FLOAT)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' must be a float", name);
    *v = a ? a->f : def;
    return ONR_OK;
}

static int lrn_create(onr_create_ctx *c, void *params)
{
    lrn_params *p = params;
    int st;
    if ((st = float_attr(c, "alpha", 1e-4f, &p->alpha)) || (st = float_attr(c, "beta", 0.75f, &p->beta)) ||
        (st = float_attr(c, "bias", 1.0f, &p->bias)))
        return st;
    const onr_attr *a = onr_node_attr(c->node, "size");
    if (!a) return onr_seterr(c->err, ONR_E_MODEL, "attribute 'size' is missing");
    if (a->type != ONR_ATTR_INT || a->i < 1)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'size' must be an int >= 1");
    p->size = a->i;
    return ONR_OK;
}

static int lrn_reshape(onr_kctx *ctx, size_t *scratch)
{
    lrn_params *p = ctx->params;
    *scratch = 0;
    uint32_t types = ONR_TYPES_FLOAT;
    if (ctx->opset < 13) types &= ~ONR_T(ONR_BFLOAT16);
    int st = onr_check_input(ctx, 0, types);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (x->rank < 2)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input must be [N, C, D1..Dk], it has rank %d",
                          x->rank);
    p->n = x->dims[0];
    p->c = x->dims[1];
    p->inner = 1;
    if (x->numel > 0)
        for (int d = 2; d < x->rank; d++) p->inner *= x->dims[d];
    return onr_set_out_like(ctx, 0, 0);
}

static int lrn_run(const onr_kctx *ctx)
{
    const lrn_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    if (x->numel == 0) return ONR_OK;
    int64_t lo_off = (p->size - 1) / 2, hi_off = p->size - 1 - lo_off; /* floor, ceil */
    int64_t lines = p->n * p->inner, C = p->c, in = p->inner;
    double scale = (double)p->alpha / (double)p->size;
#pragma omp parallel for num_threads(ctx->nthreads) if (x->numel * 4 > ONR_PAR_MIN)
    for (int64_t l = 0; l < lines; l++) {
        int64_t base = (l / in) * C * in + l % in;
        for (int64_t c = 0; c < C; c++) {
            int64_t c0 = c - lo_off < 0 ? 0 : c - lo_off, c1 = c + hi_off > C - 1 ? C - 1 : c + hi_off;
            double s = 0;
            for (int64_t i = c0; i <= c1; i++) {
                double v = onr_get_f64(x, base + i * in);
                s += v * v;
            }
            double v = onr_get_f64(x, base + c * in);
            onr_set_f64(y, base + c * in, v / pow((double)p->bias + scale * s, (double)p->beta));
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_lrn = {.create = lrn_create, .reshape = lrn_reshape, .run = lrn_run,
    .params_size = sizeof(lrn_params), .types = ONR_TYPES_FLOAT};
