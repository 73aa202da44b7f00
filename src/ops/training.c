/*
 * training.c - the optimizers of domain ai.onnx.preview.training (opset 1):
 * Adagrad, Adam and Momentum (standard and Nesterov).
 *
 * Each takes a learning rate R and an update count T (scalars), then n
 * tensors of each of its groups (X1..Xn, G1..Gn, and one or two state
 * groups) and returns n tensors of each updated group. Every tensor of
 * index i has the shape of Xi. The update is elementwise, computed in
 * double and stored in the tensor's type (float or double):
 *   all:      g = norm_coefficient * x + grad
 *   Adagrad:  r' = R / (1 + T * decay_factor); h' = h + g^2;
 *             x' = x - r' * g / (sqrt(h') + epsilon)
 *   Adam:     v' = alpha v + (1 - alpha) g; h' = beta h + (1 - beta) g^2;
 *             r' = T > 0 ? R sqrt(1 - beta^T) / (1 - alpha^T) : R;
 *             x' = (1 - norm_coefficient_post) (x - r' v' / (sqrt(h') + epsilon))
 *   Momentum: b = T > 0 ? beta : 1; v' = alpha v + b g;
 *             standard x' = x - R v'; nesterov x' = x - R (g + alpha v')
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"

typedef enum { OPT_ADAGRAD, OPT_ADAM, OPT_MOMENTUM } opt_kind;

typedef struct opt_params {
    opt_kind kind;
    int gin, gout; /* tensor groups in (after R, T) and out */
    double decay, eps, norm, norm_post, alpha, beta;
    int nesterov;
    int n; /* reshape: tensors per group */
} opt_params;

static int opt_attr_req(onr_create_ctx *c, const char *name, double *v)
{
    const onr_attr *a = onr_node_attr(c->node, name);
    if (!a || a->type != ONR_ATTR_FLOAT)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute %s (float) is required", name);
    *v = a->f;
    return ONR_OK;
}

static int opt_finish(onr_create_ctx *c, opt_params *p)
{
    const double v[6] = {p->decay, p->eps, p->norm, p->norm_post, p->alpha, p->beta};
    for (int i = 0; i < 6; i++)
        if (!isfinite(v[i])) return onr_seterr(c->err, ONR_E_MODEL, "attributes must be finite");
    if (c->n_in < 2 + p->gin || (c->n_in - 2) % p->gin)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "has %d inputs: needs R, T and %d groups of the same number of tensors",
                          c->n_in, p->gin);
    int n = (c->n_in - 2) / p->gin;
    if (c->n_out != n * p->gout)
        return onr_seterr(c->err, ONR_E_MODEL, "has %d outputs for %d tensors: needs %d", c->n_out,
                          n, n * p->gout);
    return ONR_OK;
}

static int adagrad_create(onr_create_ctx *c, void *params)
{
    opt_params *p = params;
    p->kind = OPT_ADAGRAD, p->gin = 3, p->gout = 2;
    p->decay = onr_attr_float(c->node, "decay_factor", 0.f);
    p->eps = onr_attr_float(c->node, "epsilon", 1e-6f);
    p->norm = onr_attr_float(c->node, "norm_coefficient", 0.f);
    return opt_finish(c, p);
}

static int adam_create(onr_create_ctx *c, void *params)
{
    opt_params *p = params;
    p->kind = OPT_ADAM, p->gin = 4, p->gout = 3;
    p->alpha = onr_attr_float(c->node, "alpha", 0.9f);
    p->beta = onr_attr_float(c->node, "beta", 0.999f);
    p->eps = onr_attr_float(c->node, "epsilon", 1e-6f);
    p->norm = onr_attr_float(c->node, "norm_coefficient", 0.f);
    p->norm_post = onr_attr_float(c->node, "norm_coefficient_post", 0.f);
    return opt_finish(c, p);
}

static int momentum_create(onr_create_ctx *c, void *params)
{
    opt_params *p = params;
    p->kind = OPT_MOMENTUM, p->gin = 3, p->gout = 2;
    int st = opt_attr_req(c, "alpha", &p->alpha);
    if (!st) st = opt_attr_req(c, "beta", &p->beta);
    if (!st) st = opt_attr_req(c, "norm_coefficient", &p->norm);
    if (st) return st;
    const onr_attr *m = onr_node_attr(c->node, "mode");
    if (!m || m->type != ONR_ATTR_STRING)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute mode (string) is required");
    if (strcmp(m->s, "standard") == 0) p->nesterov = 0;
    else if (strcmp(m->s, "nesterov") == 0) p->nesterov = 1;
    else
        return onr_seterr(c->err, ONR_E_MODEL, "attribute mode is '%s', not standard or nesterov",
                          m->s);
    return opt_finish(c, p);
}

#define T_F (ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE))

static int opt_reshape(onr_kctx *ctx, size_t *scratch)
{
    opt_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, T_F);
    if (!st) st = onr_check_input(ctx, 1, ONR_T(ONR_INT64));
    if (st) return st;
    if (ctx->in[0]->numel != 1 || ctx->in[1]->numel != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "R and T must be scalars");
    p->n = (ctx->n_in - 2) / p->gin;
    for (int i = 0; i < p->n; i++) {
        const onr_tensor *x = NULL;
        for (int g = 0; g < p->gin; g++) {
            int k = 2 + g * p->n + i;
            if ((st = onr_check_input(ctx, k, T_F))) return st;
            const onr_tensor *t = ctx->in[k];
            if (!x) {
                x = t;
                continue;
            }
            if (t->dtype != x->dtype || t->rank != x->rank ||
                memcmp(t->dims, x->dims, sizeof(int64_t) * (size_t)x->rank) != 0) {
                char a[256], b[256];
                return onr_seterr(ctx->err, ONR_E_MODEL,
                                  "input %d (%s %s) must have the type and shape of X%d (%s %s)", k,
                                  onr_dtype_name(t->dtype), onr_fmt_dims(a, sizeof a, t->dims, t->rank),
                                  i + 1, onr_dtype_name(x->dtype),
                                  onr_fmt_dims(b, sizeof b, x->dims, x->rank));
            }
        }
        for (int g = 0; g < p->gout; g++)
            if ((st = onr_set_out(ctx, g * p->n + i, x->dtype, x->rank, x->dims))) return st;
    }
    return ONR_OK;
}

static int opt_run(const onr_kctx *ctx)
{
    const opt_params *p = ctx->params;
    double R = onr_get_f64(ctx->in[0], 0);
    int64_t T = *(const int64_t *)ctx->in[1]->data;
    int n = p->n;
    double r = R;
    if (p->kind == OPT_ADAGRAD) r = R / (1.0 + (double)T * p->decay);
    if (p->kind == OPT_ADAM && T > 0)
        r = R * sqrt(1.0 - pow(p->beta, (double)T)) / (1.0 - pow(p->alpha, (double)T));
    double b = T > 0 ? p->beta : 1.0;
    for (int i = 0; i < n; i++) {
        const onr_tensor *x = ctx->in[2 + i], *gr = ctx->in[2 + n + i];
        const onr_tensor *s1 = ctx->in[2 + 2 * n + i];
        const onr_tensor *s2 = p->kind == OPT_ADAM ? ctx->in[2 + 3 * n + i] : NULL;
        onr_tensor *ox = ctx->out[i], *o1 = ctx->out[n + i];
        onr_tensor *o2 = p->kind == OPT_ADAM ? ctx->out[2 * n + i] : NULL;
        for (int64_t e = 0; e < x->numel; e++) {
            double xv = onr_get_f64(x, e), g = p->norm * xv + onr_get_f64(gr, e);
            double v1 = onr_get_f64(s1, e), nx, n1, n2 = 0;
            if (p->kind == OPT_ADAGRAD) {
                n1 = v1 + g * g;
                nx = xv - r * g / (sqrt(n1) + p->eps);
            } else if (p->kind == OPT_ADAM) {
                n1 = p->alpha * v1 + (1 - p->alpha) * g;
                n2 = p->beta * onr_get_f64(s2, e) + (1 - p->beta) * g * g;
                nx = (1 - p->norm_post) * (xv - r * n1 / (sqrt(n2) + p->eps));
            } else {
                n1 = p->alpha * v1 + b * g;
                nx = p->nesterov ? xv - r * (g + p->alpha * n1) : xv - r * n1;
            }
            if (ox) onr_set_f64(ox, e, nx);
            if (o1) onr_set_f64(o1, e, n1);
            if (o2) onr_set_f64(o2, e, n2);
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_adagrad = {.create = adagrad_create, .reshape = opt_reshape,
    .run = opt_run, .params_size = sizeof(opt_params), .types = T_F};
const onr_op_impl onr_impl_adam = {.create = adam_create, .reshape = opt_reshape,
    .run = opt_run, .params_size = sizeof(opt_params), .types = T_F};
const onr_op_impl onr_impl_momentum = {.create = momentum_create, .reshape = opt_reshape,
    .run = opt_run, .params_size = sizeof(opt_params), .types = T_F};
