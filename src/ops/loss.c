/*
 * loss.c - NegativeLogLikelihoodLoss (opsets 12, 13, 22) and
 * SoftmaxCrossEntropyLoss (opsets 12, 13).
 *
 * Both see the class scores as [N, C, D] (D the product of the trailing
 * dims d1..dk, 1 for a 2-D input) and the targets as [N, D]. One sample
 * (n, d) picks class c = target[n, d]; its loss is -x[n, c, d] * w[c] (w = 1
 * without weights), or 0 with weight 0 when c equals ignore_index. For
 * SoftmaxCrossEntropyLoss x is LogSoftmax(scores) along C, computed here per
 * sample in double (max-subtracted, so large scores never overflow) and
 * written to the optional log_prob output when it is asked for.
 *
 * reduction "none" gives the [N, d1..dk] losses; "sum" their sum; "mean"
 * the sum divided by the sum of the picked weights (the count of samples not
 * ignored without weights), which is NaN when every sample is ignored, as
 * 0/0 is in the specification's reference. A target outside [0, C) that is
 * not ignore_index is an error naming the sample, not a read out of bounds.
 *
 * Sums are taken in double over fixed chunks of samples, then the chunks'
 * partial sums in order, so the result does not depend on the thread count.
 * Types: float, double, float16 and bfloat16 (bfloat16 from opset 22 for
 * NLL and 13 for SCE, as the schemas list it); targets int32 or int64.
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"

#define LOSS_CHUNK 1024 /* samples per partial sum */

typedef enum { LOSS_NONE, LOSS_SUM, LOSS_MEAN } loss_reduction;

typedef struct loss_params {
    int sce;                  /* SoftmaxCrossEntropyLoss (else NLL) */
    loss_reduction reduction; /* create */
    int has_ignore;
    int64_t ignore_index;
    int64_t n, c, d; /* reshape: [N, C, D] */
    int64_t nchunks;
} loss_params;

static const char *const reduction_names[] = {"none", "sum", "mean"};

static int loss_create(onr_create_ctx *c, loss_params *p)
{
    const onr_attr *a = onr_node_attr(c->node, "reduction");
    p->reduction = LOSS_MEAN;
    if (a) {
        if (a->type != ONR_ATTR_STRING)
            return onr_seterr(c->err, ONR_E_MODEL, "attribute 'reduction' must be a string");
        int found = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(a->s, reduction_names[i]) == 0) found = i;
        if (found < 0)
            return onr_seterr(c->err, ONR_E_MODEL,
                              "attribute 'reduction' is '%s'; it must be none, sum or mean", a->s);
        p->reduction = (loss_reduction)found;
    }
    a = onr_node_attr(c->node, "ignore_index");
    if (a) {
        if (a->type != ONR_ATTR_INT)
            return onr_seterr(c->err, ONR_E_MODEL, "attribute 'ignore_index' must be an int");
        p->has_ignore = 1;
        p->ignore_index = a->i;
    }
    return ONR_OK;
}

static int nll_create(onr_create_ctx *c, void *params)
{
    loss_params *p = params;
    p->sce = 0;
    return loss_create(c, p);
}

static int sce_create(onr_create_ctx *c, void *params)
{
    loss_params *p = params;
    p->sce = 1;
    return loss_create(c, p);
}

static int loss_reshape(onr_kctx *ctx, size_t *scratch)
{
    loss_params *p = ctx->params;
    const char *xn = p->sce ? "scores" : "input", *tn = p->sce ? "labels" : "target";
    uint32_t types = ONR_TYPES_FLOAT;
    /* bfloat16 joined the schemas at NLL-22 and SCE-13 */
    if (ctx->opset < (p->sce ? 13 : 22)) types &= ~ONR_T(ONR_BFLOAT16);
    int st = onr_check_input(ctx, 0, types);
    if (!st) st = onr_check_input(ctx, 1, ONR_T(ONR_INT32) | ONR_T(ONR_INT64));
    if (st) return st;
    const onr_tensor *x = ctx->in[0], *t = ctx->in[1];
    const onr_tensor *w = ctx->n_in > 2 ? ctx->in[2] : NULL;
    char s1[256], s2[256];
    if (x->rank < 2)
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s must be [N, C, d1..dk], it has rank %d", xn,
                          x->rank);
    int ok = t->rank == x->rank - 1 && t->dims[0] == x->dims[0];
    for (int i = 2; ok && i < x->rank; i++) ok = t->dims[i - 1] == x->dims[i];
    if (!ok)
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s %s does not match %s %s (want N, d1..dk)", tn,
                          onr_fmt_dims(s1, sizeof s1, t->dims, t->rank), xn,
                          onr_fmt_dims(s2, sizeof s2, x->dims, x->rank));
    if (w) {
        if (w->dtype != x->dtype)
            return onr_seterr(ctx->err, ONR_E_MODEL, "weight is %s, %s is %s",
                              onr_dtype_name(w->dtype), xn, onr_dtype_name(x->dtype));
        if (w->rank != 1 || w->dims[0] != x->dims[1])
            return onr_seterr(ctx->err, ONR_E_MODEL, "weight %s must be [C] with C = %lld",
                              onr_fmt_dims(s1, sizeof s1, w->dims, w->rank),
                              (long long)x->dims[1]);
    }
    p->n = x->dims[0];
    p->c = x->dims[1];
    p->d = 1;
    if (t->numel > 0) /* else the product of the other dims could overflow; nothing to do */
        for (int i = 2; i < x->rank; i++) p->d *= x->dims[i];
    int64_t samples = t->numel;
    p->nchunks = (samples + LOSS_CHUNK - 1) / LOSS_CHUNK;
    *scratch = p->reduction == LOSS_NONE ? 0 : (size_t)p->nchunks * 2 * sizeof(double);
    if (p->reduction == LOSS_NONE)
        st = onr_set_out(ctx, 0, x->dtype, t->rank, t->dims);
    else
        st = onr_set_out(ctx, 0, x->dtype, 0, NULL);
    if (!st && p->sce) st = onr_set_out_like(ctx, 1, 0);
    return st;
}

/* Class of every sample checked before any arithmetic: in [0, C) or
 * ignore_index. */
static int loss_check_targets(const onr_kctx *ctx, const loss_params *p, const onr_tensor *t)
{
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t c = t->dtype == ONR_INT64 ? ((const int64_t *)t->data)[i]
                                          : ((const int32_t *)t->data)[i];
        if (p->has_ignore && c == p->ignore_index) continue;
        if (c < 0 || c >= p->c)
            return onr_seterr(ctx->err, ONR_E_INPUT,
                              "%s %lld (element %lld) is not a class in [0, %lld)%s",
                              p->sce ? "label" : "target", (long long)c, (long long)i,
                              (long long)p->c, p->has_ignore ? " nor ignore_index" : "");
    }
    return ONR_OK;
}

/* Log-probability of class c of sample (n, dd), from the scores in double;
 * for SCE writes the whole log-softmax line to log_prob when it is given. */
static double sample_logp(const loss_params *p, const onr_tensor *x, onr_tensor *lp, int64_t n,
                          int64_t dd, int64_t c)
{
    int64_t base = n * p->c * p->d + dd;
    if (!p->sce) return c >= 0 ? onr_get_f64(x, base + c * p->d) : 0; /* c < 0: ignored */
    double m = -INFINITY, s = 0;
    for (int64_t k = 0; k < p->c; k++) {
        double v = onr_get_f64(x, base + k * p->d);
        if (v > m || v != v) m = v;
    }
    if (isinf(m)) m = 0; /* all -inf (or +inf present): keep the arithmetic IEEE */
    for (int64_t k = 0; k < p->c; k++) s += exp(onr_get_f64(x, base + k * p->d) - m);
    double ls = m + log(s);
    if (lp)
        for (int64_t k = 0; k < p->c; k++)
            onr_set_f64(lp, base + k * p->d, onr_get_f64(x, base + k * p->d) - ls);
    return c >= 0 ? onr_get_f64(x, base + c * p->d) - ls : 0;
}

static int loss_run(const onr_kctx *ctx)
{
    const loss_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0], *t = ctx->in[1];
    const onr_tensor *w = ctx->n_in > 2 ? ctx->in[2] : NULL;
    onr_tensor *y = ctx->out[0];
    onr_tensor *lp = p->sce && ctx->n_out > 1 ? ctx->out[1] : NULL;
    int st = loss_check_targets(ctx, p, t);
    if (st) return st;
    double *part = ctx->scratch; /* [nchunks][2]: loss sum, weight sum */
    int64_t samples = t->numel;
    int64_t work = samples * (p->sce ? p->c * 4 : 1);
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (work > ONR_PAR_MIN)
    for (int64_t ch = 0; ch < p->nchunks; ch++) {
        double ls = 0, ws = 0;
        int64_t i1 = (ch + 1) * LOSS_CHUNK < samples ? (ch + 1) * LOSS_CHUNK : samples;
        for (int64_t i = ch * LOSS_CHUNK; i < i1; i++) {
            int64_t n = i / p->d, dd = i % p->d;
            int64_t c = t->dtype == ONR_INT64 ? ((const int64_t *)t->data)[i]
                                              : ((const int32_t *)t->data)[i];
            int ign = p->has_ignore && c == p->ignore_index;
            /* an ignored sample still gets its log_prob line */
            double lpv = sample_logp(p, x, lp, n, dd, ign ? -1 : c);
            double wc = ign ? 0 : w ? onr_get_f64(w, c) : 1;
            double l = ign ? 0 : -lpv * wc;
            if (p->reduction == LOSS_NONE)
                onr_set_f64(y, i, l);
            ls += l;
            ws += wc;
        }
        if (p->reduction != LOSS_NONE) {
            part[2 * ch] = ls;
            part[2 * ch + 1] = ws;
        }
    }
    if (p->reduction == LOSS_NONE) return ONR_OK;
    double ls = 0, ws = 0;
    for (int64_t ch = 0; ch < p->nchunks; ch++) {
        ls += part[2 * ch];
        ws += part[2 * ch + 1];
    }
    onr_set_f64(y, 0, p->reduction == LOSS_SUM ? ls : ls / ws);
    return ONR_OK;
}

const onr_op_impl onr_impl_nll_loss = {.create = nll_create, .reshape = loss_reshape,
    .run = loss_run, .params_size = sizeof(loss_params), .types = ONR_TYPES_FLOAT};
const onr_op_impl onr_impl_softmax_ce_loss = {.create = sce_create, .reshape = loss_reshape,
    .run = loss_run, .params_size = sizeof(loss_params), .types = ONR_TYPES_FLOAT};
