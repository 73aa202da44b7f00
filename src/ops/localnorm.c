/*
 * localnorm.c - MeanVarianceNormalization (9, 13) and LRN (1, 13). Opset 13
 * only adds bfloat16 to both; reshape refuses it below 13.
 *
 * MeanVarianceNormalization follows its function body:
 *   Y = (X - mean) / (sqrt(var) + 1e-9)
 * with mean and population variance over the `axes` (default [0, 2, 3]).
 * The function takes var as E[X^2] - E[X]^2; here it is the two-pass sum of
 * squared deviations in double, the same value without the cancellation.
 * Elements sharing their coordinates outside `axes` form a group; each
 * group's sums live in scratch and are accumulated in element order, one
 * thread, so the result does not depend on the thread count.
 *
 * LRN normalizes across channels of X [N, C, D1, ...]:
 *   Y[n,c,d] = X[n,c,d] / (bias + alpha / size * S)^beta,
 *   S = sum of X[n,i,d]^2 for i in [c - floor((size-1)/2), c + ceil((size-1)/2)]
 * clipped to [0, C-1], accumulated in double.
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"

static int check_float_13(onr_kctx *ctx, int i)
{
    int st = onr_check_input(ctx, i, ONR_TYPES_FLOAT);
    if (st) return st;
    if (ctx->in[i]->dtype == ONR_BFLOAT16 && ctx->opset < 13)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                          "input %d is bfloat16, allowed from opset 13 (this node is opset %lld)",
                          i, (long long)ctx->opset);
    return ONR_OK;
}

/* ---- MeanVarianceNormalization ---------------------------------------------- */

typedef struct mvn_params {
    int naxes;
    int64_t axes[ONR_MAX_RANK]; /* as given (may be negative) */
    /* reshape */
    uint32_t reduced;           /* bit d: dim d is reduced */
    int64_t groups;
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
    if (a->type != ONR_ATTR_INTS)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute axes must be a list of ints");
    if (a->n > ONR_MAX_RANK)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute axes has %zu entries, at most %d", a->n,
                          ONR_MAX_RANK);
    p->naxes = (int)a->n;
    for (size_t i = 0; i < a->n; i++) p->axes[i] = a->ints[i];
    return ONR_OK;
}

static int mvn_reshape(onr_kctx *ctx, size_t *scratch)
{
    mvn_params *p = ctx->params;
    *scratch = 0;
    int st = check_float_13(ctx, 0);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    p->reduced = 0;
    for (int i = 0; i < p->naxes; i++) {
        int a;
        if ((st = onr_norm_axis(ctx->err, p->axes[i], x->rank, &a))) return st;
        if (p->reduced >> a & 1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "axes lists dim %d twice", a);
        p->reduced |= 1u << a;
    }
    p->groups = 0;
    if (x->numel > 0) {
        p->groups = 1;
        for (int d = 0; d < x->rank; d++)
            if (!(p->reduced >> d & 1)) p->groups *= x->dims[d];
    }
    *scratch = (size_t)p->groups * 3 * sizeof(double);
    return onr_set_out_like(ctx, 0, 0);
}

/* Group of each element in turn: a coordinate counter over all dims. */
typedef struct grp_iter {
    int rank;
    int64_t coord[ONR_MAX_RANK], gstride[ONR_MAX_RANK];
    const int64_t *dims;
    int64_t g;
} grp_iter;

static void grp_init(grp_iter *it, const onr_tensor *x, uint32_t reduced)
{
    it->rank = x->rank;
    it->dims = x->dims;
    it->g = 0;
    int64_t s = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        it->coord[d] = 0;
        it->gstride[d] = reduced >> d & 1 ? 0 : s;
        if (!(reduced >> d & 1)) s *= x->dims[d];
    }
}

static void grp_next(grp_iter *it)
{
    for (int d = it->rank - 1; d >= 0; d--) {
        it->g += it->gstride[d];
        if (++it->coord[d] < it->dims[d]) return;
        it->g -= it->gstride[d] * it->coord[d];
        it->coord[d] = 0;
    }
}

static int mvn_run(const onr_kctx *ctx)
{
    const mvn_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    if (x->numel == 0) return ONR_OK;
    double *sum = ctx->scratch, *sq = sum + p->groups, *cnt = sq + p->groups;
    memset(sum, 0, sizeof(double) * 3 * (size_t)p->groups);
    grp_iter it;
    grp_init(&it, x, p->reduced);
    for (int64_t i = 0; i < x->numel; i++, grp_next(&it)) {
        sum[it.g] += onr_get_f64(x, i);
        cnt[it.g] += 1;
    }
    for (int64_t g = 0; g < p->groups; g++) sum[g] /= cnt[g];
    grp_init(&it, x, p->reduced);
    for (int64_t i = 0; i < x->numel; i++, grp_next(&it)) {
        double d = onr_get_f64(x, i) - sum[it.g];
        sq[it.g] += d * d;
    }
    for (int64_t g = 0; g < p->groups; g++) sq[g] = sqrt(sq[g] / cnt[g]) + 1e-9;
    grp_init(&it, x, p->reduced);
    for (int64_t i = 0; i < x->numel; i++, grp_next(&it))
        onr_set_f64(y, i, (onr_get_f64(x, i) - sum[it.g]) / sq[it.g]);
    return ONR_OK;
}

const onr_op_impl onr_impl_mvn = {.create = mvn_create, .reshape = mvn_reshape, .run = mvn_run,
    .params_size = sizeof(mvn_params), .types = ONR_TYPES_FLOAT};

/* ---- LRN ------------------------------------------------------------------------ */

typedef struct lrn_params {
    double alpha, beta, bias;
    int64_t size;
    int64_t N, C, inner;
} lrn_params;

static int lrn_create(onr_create_ctx *c, void *params)
{
    lrn_params *p = params;
    const onr_attr *s = onr_node_attr(c->node, "size");
    if (!s || s->type != ONR_ATTR_INT)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute size (int) is required");
    p->size = s->i;
    if (p->size < 1)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute size must be >= 1, it is %lld",
                          (long long)p->size);
    p->alpha = onr_attr_float(c->node, "alpha", 1e-4f);
    p->beta = onr_attr_float(c->node, "beta", 0.75f);
    p->bias = onr_attr_float(c->node, "bias", 1.0f);
    if (!isfinite(p->alpha) || !isfinite(p->beta) || !isfinite(p->bias))
        return onr_seterr(c->err, ONR_E_MODEL, "attributes alpha, beta, bias must be finite");
    return ONR_OK;
}

static int lrn_reshape(onr_kctx *ctx, size_t *scratch)
{
    lrn_params *p = ctx->params;
    *scratch = 0;
    int st = check_float_13(ctx, 0);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (x->rank < 2)
        return onr_seterr(ctx->err, ONR_E_MODEL, "X must have rank >= 2 (N, C, ...), it has rank %d",
                          x->rank);
    p->N = p->C = p->inner = 0;
    if (x->numel > 0) {
        p->N = x->dims[0], p->C = x->dims[1], p->inner = 1;
        for (int d = 2; d < x->rank; d++) p->inner *= x->dims[d];
    }
    return onr_set_out_like(ctx, 0, 0);
}

static int lrn_run(const onr_kctx *ctx)
{
    const lrn_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    int64_t lo = (p->size - 1) / 2, hi = p->size - 1 - lo; /* floor, ceil of (size-1)/2 */
    int64_t C = p->C, inner = p->inner, tasks = p->N * C;
    double k = p->alpha / (double)p->size;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (x->numel * 8 > ONR_PAR_MIN)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t n = t / C, c = t % C;
        int64_t c0 = c - lo < 0 ? 0 : c - lo, c1 = c + hi > C - 1 ? C - 1 : c + hi;
        for (int64_t i = 0; i < inner; i++) {
            double s = 0;
            for (int64_t j = c0; j <= c1; j++) {
                double v = onr_get_f64(x, (n * C + j) * inner + i);
                s += v * v;
            }
            int64_t e = (n * C + c) * inner + i;
            onr_set_f64(y, e, onr_get_f64(x, e) / pow(p->bias + k * s, p->beta));
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_lrn = {.create = lrn_create, .reshape = lrn_reshape, .run = lrn_run,
    .params_size = sizeof(lrn_params), .types = ONR_TYPES_FLOAT};
