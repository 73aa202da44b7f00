/*
 * ml.c - the ai.onnx.ml operators that transform tensors element by
 * element or by lookup (LabelEncoder, Scaler, Normalizer, Binarizer,
 * ArrayFeatureExtractor, Imputer, OneHotEncoder, FeatureVectorizer,
 * CategoryMapper), and the helpers the ml family shares (ml.h): post
 * transforms, attribute readers, class labels. Tree ensembles are in
 * ml-tree.c, linear models and SVMs in ml-linear.c.
 *
 * The ai.onnx.ml operators take their semantics from the specification's
 * text and, where the text is silent, from the ONNX reference
 * implementation (onnx/reference/ops/aionnxml); where that disagrees
 * with itself or is undefined, the choice is written beside the code.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ml.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---- shared helpers ------------------------------------------------------------ */

int ml_post_transform_attr(onr_create_ctx *c, int *pt)
{
    static const char *names[] = {"NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT"};
    const char *s = onr_attr_string(c->node, "post_transform", "NONE");
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0) {
            *pt = i;
            return ONR_OK;
        }
    return onr_seterr(c->err, ONR_E_MODEL,
                      "attribute post_transform is '%s', not NONE, SOFTMAX, LOGISTIC, "
                      "SOFTMAX_ZERO or PROBIT",
                      s);
}

static double ml_logistic(double v)
{
    double e = 1.0 / (1.0 + exp(-fabs(v)));
    return v < 0 ? 1.0 - e : e;
}

/* Winitzki's approximation (a = 0.147), as the reference's erf_inv. */
static double ml_erfinv(double x)
{
    double sgn = x < 0 ? -1.0 : 1.0;
    x = (1.0 - x) * (1.0 + x);
    if (x == 0) return 0;
    double lg = log(x);
    double v = 2.0 / (M_PI * 0.147) + 0.5 * lg;
    double v2 = 1.0 / 0.147 * lg;
    return sgn * sqrt(-v + sqrt(v * v - v2));
}

void ml_post_transform(int pt, double *v, int64_t n)
{
    if (n <= 0) return;
    switch (pt) {
    case ML_PT_SOFTMAX: {
        double mx = v[0], s = 0;
        for (int64_t i = 1; i < n; i++) mx = v[i] > mx ? v[i] : mx;
        for (int64_t i = 0; i < n; i++) s += (v[i] = exp(v[i] - mx));
        for (int64_t i = 0; i < n; i++) v[i] /= s;
        break;
    }
    case ML_PT_LOGISTIC:
        for (int64_t i = 0; i < n; i++) v[i] = ml_logistic(v[i]);
        break;
    case ML_PT_SOFTMAX_ZERO: {
        double mx = v[0], s = 0;
        for (int64_t i = 1; i < n; i++) mx = v[i] > mx ? v[i] : mx;
        double eneg = exp(-mx);
        for (int64_t i = 0; i < n; i++) {
            if (v[i] > 0.0000001 || v[i] < -0.0000001)
                v[i] = exp(v[i] - mx);
            else
                v[i] *= eneg;
            s += v[i];
        }
        for (int64_t i = 0; i < n; i++) v[i] = s == 0 ? 0.5 : v[i] / s;
        break;
    }
    case ML_PT_PROBIT:
        for (int64_t i = 0; i < n; i++) v[i] = 1.41421356 * ml_erfinv(v[i] * 2 - 1);
        break;
    default: break;
    }
}

int ml_attr_reals(onr_create_ctx *c, const char *name, int with_tensor, double **out,
                  int64_t *n, int *present)
{
    *out = NULL, *n = 0;
    if (present) *present = 0;
    char tname[96];
    snprintf(tname, sizeof tname, "%s_as_tensor", name);
    const onr_attr *t = with_tensor ? onr_attr_get(c->node, tname, ONR_ATTR_TENSOR) : NULL;
    const onr_attr *f = onr_attr_get(c->node, name, ONR_ATTR_FLOATS);
    if (t && f)
        return onr_seterr(c->err, ONR_E_MODEL, "attributes %s and %s are both given", name, tname);
    if (t) {
        const onr_tensor *x = t->t;
        if (!x || (x->dtype != ONR_FLOAT && x->dtype != ONR_DOUBLE))
            return onr_seterr(c->err, ONR_E_MODEL, "attribute %s must be a float or double tensor",
                              tname);
        if (x->numel && !x->data)
            return onr_seterr(c->err, ONR_E_MODEL, "attribute %s has no data", tname);
        *n = x->numel;
        if (!(*out = malloc(((size_t)*n + 1) * sizeof **out)))
            return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for attribute %s", tname);
        for (int64_t i = 0; i < *n; i++) (*out)[i] = onr_get_f64(x, i);
    } else if (f) {
        *n = (int64_t)f->n;
        if (!(*out = malloc(((size_t)*n + 1) * sizeof **out)))
            return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for attribute %s", name);
        for (int64_t i = 0; i < *n; i++) (*out)[i] = f->floats[i];
    }
    if (present) *present = t || f;
    return ONR_OK;
}

const int64_t *ml_attr_ints(onr_create_ctx *c, const char *name, int64_t *n)
{
    const onr_attr *a = onr_attr_get(c->node, name, ONR_ATTR_INTS);
    *n = a ? (int64_t)a->n : 0;
    return a ? a->ints : NULL;
}

char *const *ml_attr_strings(onr_create_ctx *c, const char *name, int64_t *n)
{
    const onr_attr *a = onr_attr_get(c->node, name, ONR_ATTR_STRINGS);
    *n = a ? (int64_t)a->n : 0;
    return a ? a->strings : NULL;
}

int ml_labels_read(onr_create_ctx *c, const char *ints_name, const char *strs_name, ml_labels *l)
{
    int64_t ni, ns;
    const int64_t *ints = ml_attr_ints(c, ints_name, &ni);
    char *const *strs = ml_attr_strings(c, strs_name, &ns);
    memset(l, 0, sizeof *l);
    if (ni && ns)
        return onr_seterr(c->err, ONR_E_MODEL, "attributes %s and %s are both given (one only)",
                          ints_name, strs_name);
    if (ns) {
        l->is_string = 1, l->n = ns;
        if (!(l->strs = calloc((size_t)ns, sizeof *l->strs)))
            return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for %s", strs_name);
        for (int64_t i = 0; i < ns; i++)
            if (!(l->strs[i] = onr_strdup(strs[i] ? strs[i] : "")))
                return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for %s", strs_name);
    } else if (ni) {
        l->n = ni;
        if (!(l->ints = malloc((size_t)ni * sizeof *l->ints)))
            return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for %s", ints_name);
        memcpy(l->ints, ints, (size_t)ni * sizeof *l->ints);
    }
    return ONR_OK;
}

void ml_labels_free(ml_labels *l)
{
    if (l->strs)
        for (int64_t i = 0; i < l->n; i++) free(l->strs[i]);
    free(l->strs);
    free(l->ints);
    memset(l, 0, sizeof *l);
}

int ml_label_store(const onr_kctx *ctx, const ml_labels *l, onr_tensor *y, int64_t i, int64_t k,
                   int64_t fallback)
{
    if (l->is_string) {
        const char *s = k >= 0 && k < l->n ? l->strs[k] : "";
        if (onr_str_assign(&((char **)y->data)[i], s))
            return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory for a string label");
    } else {
        ((int64_t *)y->data)[i] = k < 0 ? fallback : k < l->n ? l->ints[k] : k;
    }
    return ONR_OK;
}

int ml_input_matrix(onr_kctx *ctx, int i, int64_t *rows, int64_t *cols)
{
    const onr_tensor *x = ctx->in[i];
    if (x->rank == 2)
        *rows = x->dims[0], *cols = x->dims[1];
    else if (x->rank == 1)
        *rows = 1, *cols = x->dims[0];
    else
        return onr_seterr(ctx->err, ONR_E_INPUT, "input X must be [N, C] or [C], not rank %d",
                          x->rank);
    return ONR_OK;
}
