/*
 * mvn.c - MeanVarianceNormalization (opsets 9 and 13; 13 adds bfloat16).
 *
 * Y = (X - mean) / (sqrt(var) + 1e-9), mean and variance over `axes`
 * (default [0, 2, 3]), exactly the specification's function body
 * (ReduceMean, Sub, Sqrt, Add epsilon, Div), evaluated in double per
 * group; the variance is the mean of squared deviations, which equals the
 * body's E[X^2] - E[X]^2 without its cancellation.
 *
 * The reduced axes are moved last in the iteration: each group (one index
 * of the kept axes) is visited with an odometer over the reduced axes.
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"

typedef struct mvn_params {
    int naxes;
    int64_t axes[ONR_MAX_RANK];
    /* reshape */
    int rank, nk, nr;
    int64_t kdims[ONR_MAX_RANK], kstr[ONR_MAX_RANK]; /* kept axes: dims, input strides */
    int64_t rdims[ONR_MAX_RANK], rstr[ONR_MAX_RANK]; /* reduced axes */
    int64_t groups, gsize;
} mvn_params;

static int mvn_create(onr_create_ctx *c, void *params)
{
    mvn_params *p = params;
    const onr_attr *a = onr_node_attr(c->node, "axes");
    if (!a) {
        p->naxes = 3;
        p->axes[0] = 0, p->axes[1] = 2, p->axes[2] = 3;
        return ONR_OK;
    }
    if (a->type != ONR_ATTR_INTS || a->n > ONR_MAX_RANK)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'axes' must be a list of at most %d ints",
                          ONR_MAX_RANK);
    p->naxes = (int)a->n;
    if (a->n) memcpy(p->axes, a->ints, a->n * sizeof(int64_t));
    return ONR_OK;
}

static int mvn_reshape(onr_kctx *ctx, size_t *scratch)
{
    mvn_params *p = ctx->params;
    *scratch = 0;
    uint32_t types = ONR_TYPES_FLOAT;
    if (ctx->opset < 13) types &= ~ONR_T(ONR_BFLOAT16);
    int st = onr_check_input(ctx, 0, types);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int red[ONR_MAX_RANK] = {0};
    for (int i = 0; i < p->naxes; i++) {
        int ax;
        if ((st = onr_norm_axis(ctx->err, p->axes[i], x->rank, &ax))) return st;
        if (red[ax])
            return onr_seterr(ctx->err, ONR_E_MODEL, "axes lists axis %d twice", ax);
        red[ax] = 1;
    }
    int64_t str[ONR_MAX_RANK];
    onr_strides(x->dims, x->rank, str);
    p->nk = p->nr = 0;
    p->groups = p->gsize = 1;
    for (int d = 0; d < x->rank; d++) {
        if (red[d]) {
            p->rdims[p->nr] = x->dims[d], p->rstr[p->nr++] = str[d];
            p->gsize *= x->numel ? x->dims[d] : 1;
        } else {
            p->kdims[p->nk] = x->dims[d], p->kstr[p->nk++] = str[d];
            p->groups *= x->numel ? x->dims[d] : 1;
        }
    }
    return onr_set_out_like(ctx, 0, 0);
}

/* Offset of element e of a group (odometer index over the reduced axes). */
static inline int64_t red_off(const mvn_params *p, int64_t e)
{
    int64_t off = 0;
    for (int i = p->nr - 1; i >= 0; i--) {
        off += (e % p->rdims[i]) * p->rstr[i];
        e /= p->rdims[i];
    }
    return off;
}

static int mvn_run(const onr_kctx *ctx)
{
    const mvn_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    if (x->numel == 0) return ONR_OK;
#pragma omp parallel for num_threads(ctx->nthreads) if (x->numel * 4 > ONR_PAR_MIN)
    for (int64_t g = 0; g < p->groups; g++) {
        int64_t base = 0, r = g;
        for (int i = p->nk - 1; i >= 0; i--) {
            base += (r % p->kdims[i]) * p->kstr[i];
            r /= p->kdims[i];
        }
        double s = 0, v = 0;
        for (int64_t e = 0; e < p->gsize; e++) s += onr_get_f64(x, base + red_off(p, e));
        double mean = s / (double)p->gsize;
        for (int64_t e = 0; e < p->gsize; e++) {
            double d = onr_get_f64(x, base + red_off(p, e)) - mean;
            v += d * d;
        }
        double den = sqrt(v / (double)p->gsize) + (double)1e-9f;
        for (int64_t e = 0; e < p->gsize; e++) {
            int64_t o = base + red_off(p, e);
            onr_set_f64(y, o, (onr_get_f64(x, o) - mean) / den);
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_mvn = {.create = mvn_create, .reshape = mvn_reshape, .run = mvn_run,
    .params_size = sizeof(mvn_params), .types = ONR_TYPES_FLOAT};
