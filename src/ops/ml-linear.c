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
#pragma omp parallel for num_threads(onr_team(nt)) if (nt > 1) schedule(static)
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
#pragma omp parallel for num_threads(onr_team(nt)) if (nt > 1) schedule(static)
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

/* ---- SVMClassifier, SVMRegressor ------------------------------------------------------ */

/* Kernels as the specification lists them; kernel_params = gamma, coef0,
 * degree. */
enum { K_LINEAR, K_POLY, K_RBF, K_SIGMOID };

typedef struct svm_kernel {
    int type;
    double gamma, coef0;
    int64_t degree;
} svm_kernel;

static int svm_kernel_attr(onr_create_ctx *c, svm_kernel *k)
{
    const char *s = onr_attr_string(c->node, "kernel_type", "LINEAR");
    static const char *names[] = {"LINEAR", "POLY", "RBF", "SIGMOID"};
    k->type = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) k->type = i;
    if (k->type < 0)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attribute kernel_type is '%s', not LINEAR, POLY, RBF or SIGMOID", s);
    size_t n;
    const float *p = onr_attr_floats(c->node, "kernel_params", &n);
    if (n != 0 && n != 3)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attribute kernel_params has %zu values, not 3 (gamma, coef0, degree)", n);
    k->gamma = n ? p[0] : 0, k->coef0 = n ? p[1] : 0, k->degree = 0;
    /* degree is a float in the model: NaN or beyond int64 cannot convert */
    if (n && !(fabsf(p[2]) < 0x1p62f))
        return onr_seterr(c->err, ONR_E_MODEL, "attribute kernel_params holds degree %g, not an integer power",
                          (double)p[2]);
    if (n) k->degree = (int64_t)p[2];
    return ONR_OK;
}

/* K(x, v) over f features; x is row of X (loaded through lin_x). */
static double svm_k(const svm_kernel *k, int type, const onr_tensor *x, int64_t off,
                    const double *v, int64_t f)
{
    double s = 0;
    if (type == K_RBF) {
        for (int64_t j = 0; j < f; j++) {
            double d = lin_x(x, off + j) - v[j];
            s += d * d;
        }
        return exp(-k->gamma * s);
    }
    for (int64_t j = 0; j < f; j++) s += lin_x(x, off + j) * v[j];
    if (type == K_POLY) return pow(s * k->gamma + k->coef0, (double)k->degree);
    if (type == K_SIGMOID) return tanh(s * k->gamma + k->coef0);
    return s;
}

/* As the reference (which follows onnxruntime): with vectors_per_class the
 * classifier is one-vs-one over support vectors (scores: one per class
 * pair, rho[pair] + the two partial sums; votes pick the class), else it
 * is linear (score j = rho[0] + <x, coefficients[j]>). prob_a / prob_b turn
 * the pair scores into class probabilities (Platt sigmoid, then libsvm's
 * pairwise coupling). The label and the score columns follow the
 * reference's rules for one rho and two labels (see svc_finish). */
typedef struct svc_params {
    svm_kernel k;
    ml_labels labels;
    int pt;
    double *coef, *sv, *rho, *pa, *pb;
    int64_t n_coef, n_sv, n_rho, n_pa, n_pb;
    int64_t cc, vc, f, pairs;
    int64_t *vpc, *start;
    int all_pos;
    int linear;
    int64_t n_scores, z_cols, rows, cols;
} svc_params;

static void svc_destroy(void *params)
{
    svc_params *P = params;
    free(P->coef), free(P->sv), free(P->rho), free(P->pa), free(P->pb);
    free(P->vpc), free(P->start);
    ml_labels_free(&P->labels);
}

static int svc_create(onr_create_ctx *c, void *params)
{
    svc_params *P = params;
    int rc;
    if ((rc = ml_labels_read(c, "classlabels_ints", "classlabels_strings", &P->labels)) ||
        (rc = ml_post_transform_attr(c, &P->pt)) || (rc = svm_kernel_attr(c, &P->k)) ||
        (rc = ml_attr_reals(c, "coefficients", 0, &P->coef, &P->n_coef, NULL)) ||
        (rc = ml_attr_reals(c, "support_vectors", 0, &P->sv, &P->n_sv, NULL)) ||
        (rc = ml_attr_reals(c, "rho", 0, &P->rho, &P->n_rho, NULL)) ||
        (rc = ml_attr_reals(c, "prob_a", 0, &P->pa, &P->n_pa, NULL)) ||
        (rc = ml_attr_reals(c, "prob_b", 0, &P->pb, &P->n_pb, NULL)))
        return rc;
    P->cc = P->labels.n > 1 ? P->labels.n : 1;
    if (P->cc > (1 << 15))
        return onr_seterr(c->err, ONR_E_UNSUPPORTED, "too many classes (%lld)", (long long)P->cc);
    int64_t nv;
    const int64_t *vpc = ml_attr_ints(c, "vectors_per_class", &nv);
    P->vpc = calloc((size_t)P->cc + 1, sizeof *P->vpc);
    P->start = calloc((size_t)P->cc + 1, sizeof *P->start);
    if (!P->vpc || !P->start) return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
    for (int64_t i = 0; i < nv; i++) {
        if (vpc[i] < 0 || vpc[i] > INT32_MAX)
            return onr_seterr(c->err, ONR_E_MODEL, "vectors_per_class[%lld] = %lld is out of range",
                              (long long)i, (long long)vpc[i]);
        P->vc += vpc[i];
    }
    if (P->n_rho < 1) return onr_seterr(c->err, ONR_E_MODEL, "attribute rho is required");
    P->all_pos = 1;
    for (int64_t i = 0; i < P->n_coef; i++) P->all_pos &= P->coef[i] >= 0;
    P->linear = P->vc == 0;
    if (P->linear) {
        if (P->n_coef == 0 || P->n_coef % P->cc)
            return onr_seterr(c->err, ONR_E_MODEL,
                              "attribute coefficients has %lld values, not a multiple of %lld classes",
                              (long long)P->n_coef, (long long)P->cc);
        P->f = P->n_coef / P->cc;
        P->n_scores = P->cc;
    } else {
        if (nv != P->cc)
            return onr_seterr(c->err, ONR_E_MODEL,
                              "attribute vectors_per_class has %lld values for %lld classes",
                              (long long)nv, (long long)P->cc);
        for (int64_t i = 0; i < nv; i++) P->vpc[i] = vpc[i], P->start[i] = i ? P->start[i - 1] + vpc[i - 1] : 0;
        if (P->n_sv == 0 || P->n_sv % P->vc)
            return onr_seterr(c->err, ONR_E_MODEL,
                              "attribute support_vectors has %lld values, not a multiple of %lld vectors",
                              (long long)P->n_sv, (long long)P->vc);
        P->f = P->n_sv / P->vc;
        if (P->n_coef != (P->cc - 1) * P->vc)
            return onr_seterr(c->err, ONR_E_MODEL,
                              "attribute coefficients has %lld values, not (classes - 1) x vectors = %lld",
                              (long long)P->n_coef, (long long)((P->cc - 1) * P->vc));
        P->pairs = P->cc * (P->cc - 1) / 2;
        if (P->n_rho < P->pairs)
            return onr_seterr(c->err, ONR_E_MODEL, "attribute rho has %lld values for %lld class pairs",
                              (long long)P->n_rho, (long long)P->pairs);
        if (P->n_pa != P->n_pb || (P->n_pa && P->n_pa < P->pairs))
            return onr_seterr(c->err, ONR_E_MODEL,
                              "attributes prob_a (%lld) and prob_b (%lld) must both hold one value per "
                              "class pair (%lld)",
                              (long long)P->n_pa, (long long)P->n_pb, (long long)P->pairs);
        P->n_scores = P->n_pa ? P->cc : P->pairs;
    }
    int two = P->n_rho == 1 && P->labels.n == 2;
    if (P->n_rho == 1 && P->labels.is_string && P->labels.n != 2)
        return onr_seterr(c->err, ONR_E_UNSUPPORTED,
                          "one rho with %lld string labels (not 2) has no defined label",
                          (long long)P->labels.n);
    P->z_cols = P->n_scores == 1 && two && P->pt != ML_PT_PROBIT ? 2 : P->n_scores;
    return ONR_OK;
}

/* Scratch doubles per thread, as svc_row lays them out: kernels (vc), pair
 * scores, votes (cc), scores (cc + 2), pairwise probabilities and Q
 * (cc x cc each), Qp and P (cc each). */
static size_t svc_per_row(const svc_params *P)
{
    size_t cc = (size_t)P->cc;
    return (size_t)P->vc + (size_t)P->pairs + 4 * cc + 2 * cc * cc + 2;
}

static int svc_reshape(onr_kctx *ctx, size_t *scratch)
{
    svc_params *P = ctx->params;
    int rc = ml_input_matrix(ctx, 0, &P->rows, &P->cols);
    if (rc) return rc;
    if (P->cols != P->f)
        return onr_seterr(ctx->err, ONR_E_INPUT, "X has %lld features but the model has %lld",
                          (long long)P->cols, (long long)P->f);
    *scratch = (size_t)ctx->nthreads * svc_per_row(P) * sizeof(double);
    int64_t d[2] = {P->rows, P->z_cols};
    if ((rc = onr_set_out(ctx, 0, P->labels.is_string ? ONR_STRING : ONR_INT64, 1, d))) return rc;
    return ctx->n_out > 1 && ctx->out[1] ? onr_set_out(ctx, 1, ONR_FLOAT, 2, d) : ONR_OK;
}

/* libsvm's multiclass_probability (pairwise coupling): r[k x k] pairwise
 * probabilities into p[k]; q is k x k scratch, qp k. */
static void svc_coupling(int64_t k, const double *r, double *q, double *qp, double *p)
{
    int64_t max_iter = k > 100 ? k : 100;
    double eps = 0.005 / (double)k;
    for (int64_t t = 0; t < k; t++) {
        p[t] = 1.0 / (double)k;
        q[t * k + t] = 0;
        for (int64_t j = 0; j < t; j++) {
            q[t * k + t] += r[j * k + t] * r[j * k + t];
            q[t * k + j] = q[j * k + t];
        }
        for (int64_t j = t + 1; j < k; j++) {
            q[t * k + t] += r[j * k + t] * r[j * k + t];
            q[t * k + j] = -r[j * k + t] * r[t * k + j];
        }
    }
    for (int64_t it = 0; it < max_iter; it++) {
        double pqp = 0;
        for (int64_t t = 0; t < k; t++) {
            qp[t] = 0;
            for (int64_t j = 0; j < k; j++) qp[t] += q[t * k + j] * p[j];
            pqp += p[t] * qp[t];
        }
        double max_err = 0;
        for (int64_t t = 0; t < k; t++) {
            double e = fabs(qp[t] - pqp);
            if (e > max_err) max_err = e;
        }
        if (max_err < eps) break;
        for (int64_t t = 0; t < k; t++) {
            double diff = (-qp[t] + pqp) / q[t * k + t];
            p[t] += diff;
            pqp = (pqp + diff * (diff * q[t * k + t] + 2 * qp[t])) / (1 + diff) / (1 + diff);
            for (int64_t j = 0; j < k; j++) {
                qp[j] = (qp[j] + diff * q[t * k + j]) / (1 + diff);
                p[j] /= 1 + diff;
            }
        }
    }
}

static double svc_logistic(double v)
{
    double e = 1.0 / (1.0 + exp(-fabs(v)));
    return v < 0 ? 1.0 - e : e;
}

/* One row: scores (n_scores), votes (cc, SVC mode), label index or value. */
static int svc_row(const onr_kctx *ctx, const svc_params *P, int64_t i, double *w)
{
    const onr_tensor *x = ctx->in[0];
    int64_t cc = P->cc, f = P->f, off = i * f;
    double *kern = w, *pair = kern + P->vc, *votes = pair + P->pairs, *sc = votes + cc;
    double *prob = sc + cc + 2, *q = prob + cc * cc, *qp = q + cc * cc, *pp = qp + cc;
    double *scores;
    int has_votes = !P->linear, has_proba = 0;
    if (P->linear) {
        for (int64_t j = 0; j < cc; j++) sc[j] = P->rho[0] + svm_k(&P->k, K_LINEAR, x, off, P->coef + j * f, f);
        scores = sc;
    } else {
        for (int64_t j = 0; j < P->vc; j++) kern[j] = svm_k(&P->k, P->k.type, x, off, P->sv + j * f, f);
        for (int64_t j = 0; j < cc; j++) votes[j] = 0;
        int64_t e = 0;
        for (int64_t a = 0; a < cc; a++)
            for (int64_t b = a + 1; b < cc; b++, e++) {
                double s1 = 0, s2 = 0;
                const double *ca = P->coef + (b - 1) * P->vc, *cb = P->coef + a * P->vc;
                for (int64_t j = P->start[a]; j < P->start[a] + P->vpc[a]; j++) s1 += ca[j] * kern[j];
                for (int64_t j = P->start[b]; j < P->start[b] + P->vpc[b]; j++) s2 += cb[j] * kern[j];
                double s = P->rho[e] + s1 + s2;
                pair[e] = s;
                votes[s > 0 ? a : b] += 1;
            }
        scores = pair;
        if (P->n_pa) {
            for (int64_t a = 0, e2 = 0; a < cc; a++)
                for (int64_t b = a + 1; b < cc; b++, e2++) {
                    double v = 1 - svc_logistic(pair[e2] * P->pa[e2] + P->pb[e2]);
                    v = v < 1e-7 ? 1e-7 : v > 1 - 1e-7 ? 1 - 1e-7 : v;
                    prob[a * cc + b] = v;
                    prob[b * cc + a] = 1 - v;
                }
            svc_coupling(cc, prob, q, qp, pp);
            for (int64_t j = 0; j < cc; j++) sc[j] = pp[j];
            scores = sc;
            has_proba = 1;
        }
    }
    /* the label */
    const double *mw = has_votes ? votes : scores;
    int64_t nmw = has_votes ? cc : P->n_scores, best = 0;
    for (int64_t j = 1; j < nmw; j++)
        if (mw[j] > mw[best]) best = j;
    double maxw = nmw ? mw[best] : 0;
    int64_t lab = best;     /* index into the labels */
    int raw = 0;            /* lab is a value, not an index (no 2 labels, one rho) */
    int add = -1;
    if (P->n_rho == 1) {
        if (P->labels.n == 2) {
            add = 2;
            lab = !has_proba && P->all_pos && maxw >= 0.5 ? 1 : best;
        } else {
            raw = 1;
            lab = maxw > 0 ? 1 : 0;
        }
    }
    /* the scores */
    float *z = ctx->n_out > 1 && ctx->out[1] ? (float *)ctx->out[1]->data + i * P->z_cols : NULL;
    double two[2];
    const double *zs = scores;
    int64_t nz = P->n_scores;
    if (nz >= 2) {
        for (int64_t j = 0; j < nz; j++) sc[j] = scores[j];
        ml_post_transform(P->pt, sc, nz);
        zs = sc;
    } else if (nz == 1) {
        double s = scores[0];
        if (P->pt == ML_PT_PROBIT) {
            two[0] = s;
            ml_post_transform(ML_PT_PROBIT, two, 1);
        } else if (add == 2) {
            two[0] = -s, two[1] = s;
            ml_post_transform(P->pt, two, 2);
            nz = 2;
        } else {
            two[0] = s;
        }
        zs = two;
    }
    if (z)
        for (int64_t j = 0; j < nz; j++) z[j] = (float)zs[j];
    onr_tensor *y = ctx->out[0];
    if (raw && !P->labels.is_string) {
        ((int64_t *)y->data)[i] = lab;
        return ONR_OK;
    }
    return ml_label_store(ctx, &P->labels, y, i, lab, 0);
}

static int svc_run(const onr_kctx *ctx)
{
    const svc_params *P = ctx->params;
    int nt = ctx->nthreads > 0 ? ctx->nthreads : 1;
    if (P->labels.is_string) nt = 1;
    size_t per = svc_per_row(P);
    int fail = 0;
    int64_t work = P->rows * ((P->vc + P->cc) * P->f + P->cc * P->cc);
#pragma omp parallel for num_threads(onr_team(nt)) if (nt > 1 && work > ONR_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < P->rows; i++) {
        double *w = (double *)ctx->scratch + (size_t)omp_get_thread_num() * per;
        if (svc_row(ctx, P, i, w)) fail = 1;
    }
    return fail ? ONR_E_NOMEM : ONR_OK;
}

const onr_op_impl onr_impl_ml_svm_classifier = {
    .create = svc_create, .reshape = svc_reshape, .run = svc_run, .destroy = svc_destroy,
    .params_size = sizeof(svc_params), .types = T_LIN_IN};

/* SVMRegressor: with n_supports > 0, sum_j coefficients[j] K(x, sv_j) +
 * rho[0]; else <x, coefficients> + rho[0]. one_class gives 1 when the score
 * is > 0, else -1. Y is [N, 1] float. */
typedef struct svr_params {
    svm_kernel k;
    int pt;
    int one_class;
    double *coef, *sv, *rho;
    int64_t n_coef, n_sv, n_rho, ns, f;
    int64_t rows, cols;
} svr_params;

static void svr_destroy(void *params)
{
    svr_params *P = params;
    free(P->coef), free(P->sv), free(P->rho);
}

static int svr_create(onr_create_ctx *c, void *params)
{
    svr_params *P = params;
    int rc;
    if ((rc = ml_post_transform_attr(c, &P->pt)) || (rc = svm_kernel_attr(c, &P->k)) ||
        (rc = ml_attr_reals(c, "coefficients", 0, &P->coef, &P->n_coef, NULL)) ||
        (rc = ml_attr_reals(c, "support_vectors", 0, &P->sv, &P->n_sv, NULL)) ||
        (rc = ml_attr_reals(c, "rho", 0, &P->rho, &P->n_rho, NULL)))
        return rc;
    int64_t oc = onr_attr_int(c->node, "one_class", 0);
    if (oc != 0 && oc != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute one_class = %lld is not 0 or 1", (long long)oc);
    P->one_class = (int)oc;
    P->ns = onr_attr_int(c->node, "n_supports", 0);
    if (P->ns < 0 || P->ns > INT32_MAX)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute n_supports = %lld is out of range",
                          (long long)P->ns);
    if (P->n_rho < 1) return onr_seterr(c->err, ONR_E_MODEL, "attribute rho is required");
    if (P->ns > 0) {
        if (P->n_sv == 0 || P->n_sv % P->ns)
            return onr_seterr(c->err, ONR_E_MODEL,
                              "attribute support_vectors has %lld values, not a multiple of n_supports = %lld",
                              (long long)P->n_sv, (long long)P->ns);
        if (P->n_coef != P->ns)
            return onr_seterr(c->err, ONR_E_MODEL,
                              "attribute coefficients has %lld values, not n_supports = %lld",
                              (long long)P->n_coef, (long long)P->ns);
        P->f = P->n_sv / P->ns;
    } else {
        P->f = P->n_coef;
    }
    return ONR_OK;
}

static int svr_reshape(onr_kctx *ctx, size_t *scratch)
{
    svr_params *P = ctx->params;
    int rc = ml_input_matrix(ctx, 0, &P->rows, &P->cols);
    if (rc) return rc;
    if (P->cols != P->f)
        return onr_seterr(ctx->err, ONR_E_INPUT, "X has %lld features but the model has %lld",
                          (long long)P->cols, (long long)P->f);
    *scratch = 0;
    int64_t d[2] = {P->rows, 1};
    return onr_set_out(ctx, 0, ONR_FLOAT, 2, d);
}

static int svr_run(const onr_kctx *ctx)
{
    const svr_params *P = ctx->params;
    const onr_tensor *x = ctx->in[0];
    float *y = ctx->out[0]->data;
    int nt = ctx->nthreads > 0 ? ctx->nthreads : 1;
    int64_t work = P->rows * (P->ns + 1) * (P->f + 1);
#pragma omp parallel for num_threads(onr_team(nt)) if (nt > 1 && work > ONR_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < P->rows; i++) {
        double s = 0;
        if (P->ns > 0) {
            for (int64_t j = 0; j < P->ns; j++)
                s += P->coef[j] * svm_k(&P->k, P->k.type, x, i * P->f, P->sv + j * P->f, P->f);
        } else {
            s = svm_k(&P->k, K_LINEAR, x, i * P->f, P->coef, P->f);
        }
        s += P->rho[0];
        if (P->one_class) s = s > 0 ? 1 : -1;
        ml_post_transform(P->pt, &s, 1);
        y[i] = (float)s;
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_ml_svm_regressor = {
    .create = svr_create, .reshape = svr_reshape, .run = svr_run, .destroy = svr_destroy,
    .params_size = sizeof(svr_params), .types = T_LIN_IN};
