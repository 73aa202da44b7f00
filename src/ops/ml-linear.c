/*
 * ml-linear.c - the linear models of ai.onnx.ml: LinearClassifier and
 * LinearRegressor (ml opset 1 and every newer one).
 *
 * Scores are dot products of a row of X with a row of coefficients plus
 * the intercept, in double; integer inputs go through float first, as the
 * reference casts them. Post transforms are ml.h's. Rows are split among
 * threads; each row's sum runs in a fixed order, so results do not depend
 * on the thread count.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ml.h"

#define T_LIN_IN (ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_INT64) | ONR_T(ONR_INT32))

static double lin_x(const onr_tensor *x, int64_t i)
{
    double v = onr_get_f64(x, i);
    return x->dtype == ONR_DOUBLE ? v : (double)(float)v;
}

/* ---- LinearClassifier ----------------------------------------------------------- */

/* As the reference: E = len(coefficients) / C score columns; with one
 * column and two labels the scores become [-s, s] (then post transform)
 * and the label is the argmax; with one column otherwise the label is
 * labels[0] when the (transformed) score is >= 0 (NONE) or >= 0.5, else 0
 * (or ""). Without labels the label is the column index. */
typedef struct lc_params {
    double *coef, *icpt;
    int64_t n_coef, n_icpt;
    ml_labels labels;
    int pt;
    int64_t rows, cols, e, n_scores;
} lc_params;

static void lc_destroy(void *params)
{
    lc_params *P = params;
    free(P->coef), free(P->icpt);
    ml_labels_free(&P->labels);
}

static int lc_create(onr_create_ctx *c, void *params)
{
    lc_params *P = params;
    int rc, present;
    if ((rc = ml_labels_read(c, "classlabels_ints", "classlabels_strings", &P->labels)) ||
        (rc = ml_post_transform_attr(c, &P->pt)) ||
        (rc = ml_attr_reals(c, "coefficients", 0, &P->coef, &P->n_coef, &present)) ||
        (rc = ml_attr_reals(c, "intercepts", 0, &P->icpt, &P->n_icpt, NULL)))
        return rc;
    if (!present || P->n_coef == 0)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute coefficients is required");
    int64_t mc = onr_attr_int(c->node, "multi_class", 0);
    if (mc != 0 && mc != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute multi_class = %lld is not 0 or 1",
                          (long long)mc);
    return ONR_OK;
}

static int lc_reshape(onr_kctx *ctx, size_t *scratch)
{
    lc_params *P = ctx->params;
    int rc = ml_input_matrix(ctx, 0, &P->rows, &P->cols);
    if (rc) return rc;
    if (P->cols < 1 || P->n_coef % P->cols)
        return onr_seterr(ctx->err, ONR_E_INPUT,
                          "X has %lld features, which do not divide the %lld coefficients",
                          (long long)P->cols, (long long)P->n_coef);
    P->e = P->n_coef / P->cols;
    if (P->n_icpt != 0 && P->n_icpt != P->e)
        return onr_seterr(ctx->err, ONR_E_INPUT, "attribute intercepts has %lld values, not %lld",
                          (long long)P->n_icpt, (long long)P->e);
    P->n_scores = P->e == 1 && P->labels.n == 2 ? 2 : P->e;
    if (P->n_scores > 1 && P->labels.n && P->labels.n < P->n_scores)
        return onr_seterr(ctx->err, ONR_E_INPUT, "%lld score columns but only %lld class labels",
                          (long long)P->n_scores, (long long)P->labels.n);
    *scratch = (size_t)ctx->nthreads * ((size_t)P->n_scores + 1) * sizeof(double);
    int64_t d[2] = {P->rows, P->n_scores};
    if ((rc = onr_set_out(ctx, 0, P->labels.is_string ? ONR_STRING : ONR_INT64, 1, d))) return rc;
    return ctx->n_out > 1 && ctx->out[1] ? onr_set_out(ctx, 1, ONR_FLOAT, 2, d) : ONR_OK;
}

static int lc_run(const onr_kctx *ctx)
{
    const lc_params *P = ctx->params;
    const onr_tensor *x = ctx->in[0];
    float *z = ctx->n_out > 1 && ctx->out[1] ? ctx->out[1]->data : NULL;
    int nt = ctx->nthreads > 0 ? ctx->nthreads : 1;
    if (P->labels.is_string || P->rows * P->n_coef < ONR_PAR_MIN) nt = 1;
    int64_t ns = P->n_scores, C = P->cols;
    int fail = 0;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t i = 0; i < P->rows; i++) {
        double *s = (double *)ctx->scratch + (size_t)omp_get_thread_num() * (size_t)(ns + 1);
        for (int64_t k = 0; k < P->e; k++) {
            double acc = P->n_icpt ? P->icpt[k] : 0;
            const double *w = P->coef + k * C;
            double dot = 0;
            for (int64_t j = 0; j < C; j++) dot += lin_x(x, i * C + j) * w[j];
            s[k] = dot + acc;
        }
        if (ns == 2 && P->e == 1) s[1] = s[0], s[0] = -s[1];
        ml_post_transform(P->pt, s, ns);
        if (z)
            for (int64_t k = 0; k < ns; k++) z[i * ns + k] = (float)s[k];
        int64_t lab;
        if (ns > 1) {
            lab = 0;
            for (int64_t k = 1; k < ns; k++)
                if (s[k] > s[lab]) lab = k;
        } else {
            int pos = s[0] >= (P->pt == ML_PT_NONE ? 0.0 : 0.5);
            lab = P->labels.n ? (pos ? 0 : -1) : pos;
        }
        if (ml_label_store(ctx, &P->labels, ctx->out[0], i, lab, 0)) fail = 1;
    }
    return fail ? ONR_E_NOMEM : ONR_OK;
}

const onr_op_impl onr_impl_ml_linear_classifier = {
    .create = lc_create, .reshape = lc_reshape, .run = lc_run, .destroy = lc_destroy,
    .params_size = sizeof(lc_params), .types = T_LIN_IN};

/* ---- LinearRegressor ------------------------------------------------------------- */

typedef struct lr_params {
    double *coef, *icpt;
    int64_t n_coef, n_icpt, targets;
    int pt;
    int64_t rows, cols;
} lr_params;

static void lr_destroy(void *params)
{
    lr_params *P = params;
    free(P->coef), free(P->icpt);
}

static int lr_create(onr_create_ctx *c, void *params)
{
    lr_params *P = params;
    int rc;
    if ((rc = ml_post_transform_attr(c, &P->pt)) ||
        (rc = ml_attr_reals(c, "coefficients", 0, &P->coef, &P->n_coef, NULL)) ||
        (rc = ml_attr_reals(c, "intercepts", 0, &P->icpt, &P->n_icpt, NULL)))
        return rc;
    P->targets = onr_attr_int(c->node, "targets", 1);
    if (P->targets < 1 || P->targets > (1 << 24))
        return onr_seterr(c->err, ONR_E_MODEL, "attribute targets = %lld is out of range",
                          (long long)P->targets);
    if (P->n_coef % P->targets)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attribute coefficients has %lld values, not a multiple of targets = %lld",
                          (long long)P->n_coef, (long long)P->targets);
    if (P->n_icpt != 0 && P->n_icpt != P->targets)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute intercepts has %lld values, not %lld",
                          (long long)P->n_icpt, (long long)P->targets);
    return ONR_OK;
}

static int lr_reshape(onr_kctx *ctx, size_t *scratch)
{
    lr_params *P = ctx->params;
    int rc = ml_input_matrix(ctx, 0, &P->rows, &P->cols);
    if (rc) return rc;
    if (P->cols * P->targets != P->n_coef)
        return onr_seterr(ctx->err, ONR_E_INPUT,
                          "X has %lld features but the coefficients give %lld per target",
                          (long long)P->cols, (long long)(P->n_coef / P->targets));
    *scratch = (size_t)ctx->nthreads * (size_t)P->targets * sizeof(double);
    int64_t d[2] = {P->rows, P->targets};
    return onr_set_out(ctx, 0, ONR_FLOAT, 2, d);
}

static int lr_run(const onr_kctx *ctx)
{
    const lr_params *P = ctx->params;
    const onr_tensor *x = ctx->in[0];
    float *y = ctx->out[0]->data;
    int nt = ctx->nthreads > 0 ? ctx->nthreads : 1;
    if (P->rows * (P->n_coef + 1) < ONR_PAR_MIN) nt = 1;
    int64_t C = P->cols, T = P->targets;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t i = 0; i < P->rows; i++) {
        double *s = (double *)ctx->scratch + (size_t)omp_get_thread_num() * (size_t)T;
        for (int64_t k = 0; k < T; k++) {
            const double *w = P->coef + k * C;
            double dot = 0;
            for (int64_t j = 0; j < C; j++) dot += lin_x(x, i * C + j) * w[j];
            s[k] = dot + (P->n_icpt ? P->icpt[k] : 0);
        }
        ml_post_transform(P->pt, s, T);
        for (int64_t k = 0; k < T; k++) y[i * T + k] = (float)s[k];
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_ml_linear_regressor = {
    .create = lr_create, .reshape = lr_reshape, .run = lr_run, .destroy = lr_destroy,
    .params_size = sizeof(lr_params), .types = T_LIN_IN};
