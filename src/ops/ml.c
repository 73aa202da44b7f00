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
    const onr_tensor *x = i < ctx->n_in ? ctx->in[i] : NULL;
    if (!x) return onr_seterr(ctx->err, ONR_E_MODEL, "input %d (X) is required", i);
    if (x->rank == 2)
        *rows = x->dims[0], *cols = x->dims[1];
    else if (x->rank == 1)
        *rows = 1, *cols = x->dims[0];
    else
        return onr_seterr(ctx->err, ONR_E_INPUT, "input X must be [N, C] or [C], not rank %d",
                          x->rank);
    return ONR_OK;
}

/* ---- LabelEncoder (1, 2, 4) ------------------------------------------------------ */

/* Version 1 maps strings to their index in classes_strings (default_int64
 * when absent) and int64s to classes_strings[x] (default_string when out of
 * range); the input type picks the direction. Versions 2 and 4 map keys_*
 * to values_* (one of each), default_* for keys not found. Duplicate keys:
 * the first wins in 1 and 2 (the specification is silent; onnxruntime keeps
 * the first), the last in 4 (as its text says). Float keys compare bit for
 * bit in 2 (as its text says, so NaN keys can match); in 4 by value, every
 * NaN matching a NaN key (its text). Lookups are binary searches over keys
 * sorted at create. */
enum { LE_STR, LE_INT, LE_REAL, LE_FBITS };

typedef struct le_key {
    union {
        int64_t i;
        double d;
        const char *s;
    } k;
    int64_t idx;
} le_key;

typedef struct le_params {
    int v1;
    int kkind;            /* key kind */
    onr_dtype kdt, vdt;   /* key (input) and value (output) types */
    int64_t n;
    le_key *keys;         /* sorted */
    char **kstr;          /* owned copies of string keys */
    char **vstr;          /* string values (owned) */
    int64_t *vint;
    double *vreal;
    char *dstr;           /* default, per value kind */
    int64_t dint;
    double dreal;
    int last_wins;
    char *v1_default_str; /* version 1, int64 -> string */
} le_params;

static void le_destroy(void *params)
{
    le_params *P = params;
    for (int64_t i = 0; i < P->n; i++) {
        if (P->kstr) free(P->kstr[i]);
        if (P->vstr) free(P->vstr[i]);
    }
    free(P->kstr), free(P->vstr), free(P->vint), free(P->vreal), free(P->keys);
    free(P->dstr), free(P->v1_default_str);
}

static int le_cmp_str(const void *a, const void *b)
{
    const le_key *x = a, *y = b;
    int c = strcmp(x->k.s, y->k.s);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}
static int le_cmp_int(const void *a, const void *b)
{
    const le_key *x = a, *y = b;
    if (x->k.i != y->k.i) return x->k.i < y->k.i ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}
/* NaN sorts after every number; equal values by index. */
static int le_real_order(double a, double b)
{
    int na = isnan(a), nb = isnan(b);
    if (na || nb) return na - nb;
    return a < b ? -1 : a > b;
}
static int le_cmp_real(const void *a, const void *b)
{
    const le_key *x = a, *y = b;
    int c = le_real_order(x->k.d, y->k.d);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static int le_key_order(int kind, const le_key *a, const le_key *probe)
{
    switch (kind) {
    case LE_STR: return strcmp(a->k.s, probe->k.s);
    case LE_REAL: return le_real_order(a->k.d, probe->k.d);
    default: return a->k.i < probe->k.i ? -1 : a->k.i > probe->k.i;
    }
}

/* Index into the values of probe's key, or -1. */
static int64_t le_find(const le_params *P, const le_key *probe)
{
    int64_t lo = 0, hi = P->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (le_key_order(P->kkind, &P->keys[mid], probe) < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo >= P->n || le_key_order(P->kkind, &P->keys[lo], probe) != 0) return -1;
    if (P->last_wins)
        while (lo + 1 < P->n && le_key_order(P->kkind, &P->keys[lo + 1], probe) == 0) lo++;
    return P->keys[lo].idx;
}

static int le_is_int(onr_dtype dt) { return dt == ONR_INT64 || dt == ONR_INT32 || dt == ONR_INT16; }
static int le_is_real(onr_dtype dt) { return dt == ONR_FLOAT || dt == ONR_DOUBLE; }

/* One keys_* / values_* attribute: its type and element count. */
typedef struct le_src {
    const char *name;
    onr_dtype dt;
    int64_t n;
    const onr_attr *a;
} le_src;

static int le_pick(onr_create_ctx *c, const char *what, int with_tensor, le_src *out)
{
    char nm[4][32];
    const char *suf[4] = {"strings", "int64s", "floats", "tensor"};
    onr_attr_type ty[4] = {ONR_ATTR_STRINGS, ONR_ATTR_INTS, ONR_ATTR_FLOATS, ONR_ATTR_TENSOR};
    onr_dtype dts[3] = {ONR_STRING, ONR_INT64, ONR_FLOAT};
    int found = 0;
    for (int i = 0; i < (with_tensor ? 4 : 3); i++) {
        snprintf(nm[i], sizeof nm[i], "%s_%s", what, suf[i]);
        const onr_attr *a = onr_attr_get(c->node, nm[i], ty[i]);
        if (!a) continue;
        if (found++)
            return onr_seterr(c->err, ONR_E_MODEL, "attributes %s and %s are both given (one %s_* only)",
                              out->name, nm[i], what);
        static const char *const knames[4] = {"keys_strings", "keys_int64s", "keys_floats",
                                              "keys_tensor"};
        static const char *const vnames[4] = {"values_strings", "values_int64s", "values_floats",
                                              "values_tensor"};
        out->a = a;
        out->name = what[0] == 'k' ? knames[i] : vnames[i];
        if (i < 3) {
            out->dt = dts[i];
            out->n = (int64_t)a->n;
        } else {
            if (!a->t || (a->t->numel && !a->t->data))
                return onr_seterr(c->err, ONR_E_MODEL, "attribute %s has no data", nm[i]);
            out->dt = a->t->dtype;
            out->n = a->t->numel;
            if (out->dt != ONR_STRING && !le_is_int(out->dt) && !le_is_real(out->dt))
                return onr_seterr(c->err, ONR_E_MODEL,
                                  "attribute %s has type %s (string, int64, int32, int16, float or "
                                  "double expected)",
                                  nm[i], onr_dtype_name(out->dt));
        }
    }
    if (!found)
        return onr_seterr(c->err, ONR_E_MODEL, "one of the %s_* attributes must be given", what);
    return ONR_OK;
}

static const char *le_src_str(const le_src *s, int64_t i)
{
    const char *v = s->a->type == ONR_ATTR_TENSOR ? ((char *const *)s->a->t->data)[i]
                                                  : s->a->strings[i];
    return v ? v : "";
}
static double le_src_real(const le_src *s, int64_t i)
{
    return s->a->type == ONR_ATTR_TENSOR ? onr_get_f64(s->a->t, i) : (double)s->a->floats[i];
}
/* Element i of an int64/int32/int16 array. */
static int64_t le_int_at(onr_dtype dt, const void *p, int64_t i)
{
    return dt == ONR_INT64 ? ((const int64_t *)p)[i]
           : dt == ONR_INT32 ? ((const int32_t *)p)[i]
                             : ((const int16_t *)p)[i];
}
static int64_t le_src_int(const le_src *s, int64_t i)
{
    return s->a->type == ONR_ATTR_TENSOR ? le_int_at(s->a->t->dtype, s->a->t->data, i)
                                         : s->a->ints[i];
}

static int le_create_v1(onr_create_ctx *c, le_params *P)
{
    int64_t n;
    char *const *cls = ml_attr_strings(c, "classes_strings", &n);
    P->v1 = 1, P->n = n, P->kkind = LE_STR;
    P->dint = onr_attr_int(c->node, "default_int64", -1);
    P->v1_default_str = onr_strdup(onr_attr_string(c->node, "default_string", "_Unused"));
    P->keys = malloc(((size_t)n + 1) * sizeof *P->keys);
    P->kstr = calloc((size_t)n + 1, sizeof *P->kstr);
    if (!P->keys || !P->kstr || !P->v1_default_str)
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for classes_strings");
    for (int64_t i = 0; i < n; i++) {
        if (!(P->kstr[i] = onr_strdup(cls[i] ? cls[i] : "")))
            return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for classes_strings");
        P->keys[i].k.s = P->kstr[i];
        P->keys[i].idx = i;
    }
    qsort(P->keys, (size_t)n, sizeof *P->keys, le_cmp_str);
    return ONR_OK;
}

static int le_create(onr_create_ctx *c, void *params)
{
    le_params *P = params;
    if (c->opset < 2) return le_create_v1(c, P);
    int v4 = c->opset >= 4, rc;
    le_src ks = {0}, vs = {0};
    if ((rc = le_pick(c, "keys", v4, &ks)) || (rc = le_pick(c, "values", v4, &vs))) return rc;
    if (ks.n != vs.n)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute %s has %lld elements but %s has %lld",
                          ks.name, (long long)ks.n, vs.name, (long long)vs.n);
    int64_t n = P->n = ks.n;
    P->kdt = ks.dt, P->vdt = vs.dt, P->last_wins = v4;
    P->kkind = ks.dt == ONR_STRING ? LE_STR : le_is_int(ks.dt) ? LE_INT : v4 ? LE_REAL : LE_FBITS;
    P->keys = malloc(((size_t)n + 1) * sizeof *P->keys);
    if (!P->keys) return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for LabelEncoder keys");
    if (P->kkind == LE_STR && !(P->kstr = calloc((size_t)n + 1, sizeof *P->kstr)))
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for LabelEncoder keys");
    for (int64_t i = 0; i < n; i++) {
        le_key *k = &P->keys[i];
        k->idx = i;
        switch (P->kkind) {
        case LE_STR:
            if (!(P->kstr[i] = onr_strdup(le_src_str(&ks, i))))
                return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for LabelEncoder keys");
            k->k.s = P->kstr[i];
            break;
        case LE_INT: k->k.i = le_src_int(&ks, i); break;
        case LE_REAL: k->k.d = le_src_real(&ks, i); break;
        default: {
            float f = (float)le_src_real(&ks, i);
            uint32_t b;
            memcpy(&b, &f, 4);
            k->k.i = b;
        }
        }
    }
    qsort(P->keys, (size_t)n, sizeof *P->keys,
          P->kkind == LE_STR ? le_cmp_str : P->kkind == LE_REAL ? le_cmp_real : le_cmp_int);
    /* values and the default of their type */
    const onr_attr *dt = v4 ? onr_attr_get(c->node, "default_tensor", ONR_ATTR_TENSOR) : NULL;
    if (dt && (!dt->t || dt->t->numel != 1 || dt->t->dtype != vs.dt || !dt->t->data))
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attribute default_tensor must hold one %s (the values' type)",
                          onr_dtype_name(vs.dt));
    if (vs.dt == ONR_STRING) {
        if (!(P->vstr = calloc((size_t)n + 1, sizeof *P->vstr)))
            return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for LabelEncoder values");
        for (int64_t i = 0; i < n; i++)
            if (!(P->vstr[i] = onr_strdup(le_src_str(&vs, i))))
                return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for LabelEncoder values");
        const char *d = dt ? ((char *const *)dt->t->data)[0]
                           : onr_attr_string(c->node, "default_string", "_Unused");
        if (!(P->dstr = onr_strdup(d ? d : "")))
            return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
    } else if (le_is_int(vs.dt)) {
        if (!(P->vint = malloc(((size_t)n + 1) * sizeof *P->vint)))
            return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for LabelEncoder values");
        for (int64_t i = 0; i < n; i++) P->vint[i] = le_src_int(&vs, i);
        P->dint = dt ? le_int_at(dt->t->dtype, dt->t->data, 0) : onr_attr_int(c->node, "default_int64", -1);
    } else {
        if (!(P->vreal = malloc(((size_t)n + 1) * sizeof *P->vreal)))
            return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for LabelEncoder values");
        for (int64_t i = 0; i < n; i++) P->vreal[i] = le_src_real(&vs, i);
        P->dreal = dt ? onr_get_f64(dt->t, 0) : onr_attr_float(c->node, "default_float", -0.0f);
    }
    return ONR_OK;
}

#define T_LE (ONR_T(ONR_STRING) | ONR_T(ONR_INT64) | ONR_T(ONR_INT32) | ONR_T(ONR_INT16) | \
              ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE))

static int le_reshape(onr_kctx *ctx, size_t *scratch)
{
    le_params *P = ctx->params;
    const onr_tensor *x = ctx->in[0];
    *scratch = 0;
    int rc = onr_check_input(ctx, 0, T_LE); /* X may be named "": absent */
    if (rc) return rc;
    onr_dtype out;
    if (P->v1) {
        if (x->dtype != ONR_STRING && x->dtype != ONR_INT64)
            return onr_seterr(ctx->err, ONR_E_INPUT, "X must be string or int64, not %s",
                              onr_dtype_name(x->dtype));
        out = x->dtype == ONR_STRING ? ONR_INT64 : ONR_STRING;
    } else {
        if (x->dtype != P->kdt)
            return onr_seterr(ctx->err, ONR_E_INPUT, "X is %s but the keys are %s",
                              onr_dtype_name(x->dtype), onr_dtype_name(P->kdt));
        out = P->vdt;
    }
    return onr_set_out(ctx, 0, out, x->rank, x->dims);
}

static int le_run(const onr_kctx *ctx)
{
    const le_params *P = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    for (int64_t i = 0; i < x->numel; i++) {
        le_key probe;
        int64_t j;
        if (P->v1) {
            if (x->dtype == ONR_STRING) {
                const char *s = ((char *const *)x->data)[i];
                probe.k.s = s ? s : "";
                j = le_find(P, &probe);
                ((int64_t *)y->data)[i] = j < 0 ? P->dint : j;
            } else {
                int64_t k = ((const int64_t *)x->data)[i];
                const char *s = k >= 0 && k < P->n ? P->kstr[k] : P->v1_default_str;
                if (onr_str_assign(&((char **)y->data)[i], s))
                    return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory for a string");
            }
            continue;
        }
        switch (P->kkind) {
        case LE_STR: {
            const char *s = ((char *const *)x->data)[i];
            probe.k.s = s ? s : "";
            break;
        }
        case LE_INT: probe.k.i = le_int_at(x->dtype, x->data, i); break;
        case LE_REAL: probe.k.d = onr_get_f64(x, i); break;
        default: {
            uint32_t b;
            memcpy(&b, (const float *)x->data + i, 4);
            probe.k.i = b;
        }
        }
        j = le_find(P, &probe);
        if (P->vdt == ONR_STRING) {
            if (onr_str_assign(&((char **)y->data)[i], j < 0 ? P->dstr : P->vstr[j]))
                return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory for a string");
        } else if (P->vint) {
            int64_t v = j < 0 ? P->dint : P->vint[j];
            if (P->vdt == ONR_INT64) ((int64_t *)y->data)[i] = v;
            else if (P->vdt == ONR_INT32) ((int32_t *)y->data)[i] = (int32_t)v;
            else ((int16_t *)y->data)[i] = (int16_t)v;
        } else {
            double v = j < 0 ? P->dreal : P->vreal[j];
            if (P->vdt == ONR_FLOAT) ((float *)y->data)[i] = (float)v;
            else ((double *)y->data)[i] = v;
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_ml_label_encoder = {
    .create = le_create, .reshape = le_reshape, .run = le_run, .destroy = le_destroy,
    .params_size = sizeof(le_params),
    .types = T_LE};

/* ---- Scaler, Normalizer, Binarizer, Imputer -------------------------------------- */

#define T_ML_NUM (ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_INT64) | ONR_T(ONR_INT32))

static int ml_check_num(onr_kctx *ctx)
{
    return onr_check_input(ctx, 0, T_ML_NUM);
}

/* Scaler: Y = (X - offset) * scale along the last axis (each list of
 * length 1 or the feature count; an absent list leaves X as it is). */
typedef struct sc_params {
    double *offset, *scale;
    int64_t n_off, n_scale, f;
} sc_params;

static void sc_destroy(void *params)
{
    sc_params *P = params;
    free(P->offset), free(P->scale);
}

static int sc_create(onr_create_ctx *c, void *params)
{
    sc_params *P = params;
    int rc;
    if ((rc = ml_attr_reals(c, "offset", 0, &P->offset, &P->n_off, NULL)) ||
        (rc = ml_attr_reals(c, "scale", 0, &P->scale, &P->n_scale, NULL)))
        return rc;
    return ONR_OK;
}

static int sc_reshape(onr_kctx *ctx, size_t *scratch)
{
    sc_params *P = ctx->params;
    const onr_tensor *x = ctx->in[0];
    int rc = ml_check_num(ctx);
    if (rc) return rc;
    *scratch = 0;
    P->f = x->rank ? x->dims[x->rank - 1] : 1;
    if (P->n_off > 1 && P->n_off != P->f)
        return onr_seterr(ctx->err, ONR_E_INPUT, "attribute offset has %lld values for %lld features",
                          (long long)P->n_off, (long long)P->f);
    if (P->n_scale > 1 && P->n_scale != P->f)
        return onr_seterr(ctx->err, ONR_E_INPUT, "attribute scale has %lld values for %lld features",
                          (long long)P->n_scale, (long long)P->f);
    return onr_set_out(ctx, 0, ONR_FLOAT, x->rank, x->dims);
}

static int sc_run(const onr_kctx *ctx)
{
    const sc_params *P = ctx->params;
    const onr_tensor *x = ctx->in[0];
    float *y = ctx->out[0]->data;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t j = P->f ? i % P->f : 0;
        double o = P->n_off ? P->offset[P->n_off == 1 ? 0 : j] : 0;
        double s = P->n_scale ? P->scale[P->n_scale == 1 ? 0 : j] : 1;
        y[i] = (float)((onr_get_f64(x, i) - o) * s);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_ml_scaler = {
    .create = sc_create, .reshape = sc_reshape, .run = sc_run, .destroy = sc_destroy,
    .params_size = sizeof(sc_params), .types = T_ML_NUM};

/* Normalizer over the last axis of [N, C] (or all of [C]): MAX divides by
 * the row's largest magnitude max |X| (the ONNX reference, and what
 * scikit-learn's max norm, the usual producer, means; the specification's
 * formula writes max(X)), L1 by the sum of |X|, L2 by sqrt(sum X^2); a zero
 * divisor leaves the row as it is. Output float. */
typedef struct nm_params {
    int norm; /* 0 MAX, 1 L1, 2 L2 */
    int64_t rows, cols;
} nm_params;

static int nm_create(onr_create_ctx *c, void *params)
{
    nm_params *P = params;
    const char *s = onr_attr_string(c->node, "norm", "MAX");
    if (strcmp(s, "MAX") == 0) P->norm = 0;
    else if (strcmp(s, "L1") == 0) P->norm = 1;
    else if (strcmp(s, "L2") == 0) P->norm = 2;
    else return onr_seterr(c->err, ONR_E_MODEL, "attribute norm is '%s', not MAX, L1 or L2", s);
    return ONR_OK;
}

static int nm_reshape(onr_kctx *ctx, size_t *scratch)
{
    nm_params *P = ctx->params;
    int rc = ml_check_num(ctx);
    if (rc || (rc = ml_input_matrix(ctx, 0, &P->rows, &P->cols))) return rc;
    *scratch = 0;
    return onr_set_out(ctx, 0, ONR_FLOAT, ctx->in[0]->rank, ctx->in[0]->dims);
}

static int nm_run(const onr_kctx *ctx)
{
    const nm_params *P = ctx->params;
    const onr_tensor *x = ctx->in[0];
    float *y = ctx->out[0]->data;
    for (int64_t r = 0; r < P->rows; r++) {
        int64_t o = r * P->cols;
        double d = 0;
        for (int64_t j = 0; j < P->cols; j++) {
            double v = onr_get_f64(x, o + j);
            if (P->norm == 0) d = fabs(v) > d ? fabs(v) : d;
            else if (P->norm == 1) d += fabs(v);
            else d += v * v;
        }
        if (P->norm == 2) d = sqrt(d);
        for (int64_t j = 0; j < P->cols; j++) {
            double v = onr_get_f64(x, o + j);
            y[o + j] = (float)(d != 0 ? v / d : v);
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_ml_normalizer = {
    .create = nm_create, .reshape = nm_reshape, .run = nm_run,
    .params_size = sizeof(nm_params), .types = T_ML_NUM};

/* Binarizer: 1 where X > threshold, else 0 (NaN gives 0), X's type. */
typedef struct bz_params {
    double threshold;
} bz_params;

static int bz_create(onr_create_ctx *c, void *params)
{
    ((bz_params *)params)->threshold = onr_attr_float(c->node, "threshold", 0.0f);
    return ONR_OK;
}

static int bz_reshape(onr_kctx *ctx, size_t *scratch)
{
    int rc = ml_check_num(ctx);
    *scratch = 0;
    return rc ? rc : onr_set_out_like(ctx, 0, 0);
}

static int bz_run(const onr_kctx *ctx)
{
    const bz_params *P = ctx->params;
    const onr_tensor *x = ctx->in[0];
    for (int64_t i = 0; i < x->numel; i++) {
        double v = x->dtype == ONR_INT64 ? (double)((const int64_t *)x->data)[i] : onr_get_f64(x, i);
        int one = x->dtype == ONR_INT64 ? ((const int64_t *)x->data)[i] > P->threshold
                                        : v > P->threshold;
        onr_set_f64(ctx->out[0], i, one ? 1.0 : 0.0);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_ml_binarizer = {
    .create = bz_create, .reshape = bz_reshape, .run = bz_run,
    .params_size = sizeof(bz_params), .types = T_ML_NUM, .flags = ONR_OP_INPLACE};

/* Imputer: elements equal to the replaced value (NaN matches NaN) become
 * the imputed value of their feature (last axis; one value broadcasts).
 * Floats for float inputs, int64s for integer inputs. */
typedef struct im_params {
    double *fvals;
    int64_t nf;
    int64_t *ivals;
    int64_t ni;
    double rf;
    int64_t ri;
    int64_t f;
} im_params;

static void im_destroy(void *params)
{
    im_params *P = params;
    free(P->fvals), free(P->ivals);
}

static int im_create(onr_create_ctx *c, void *params)
{
    im_params *P = params;
    int rc = ml_attr_reals(c, "imputed_value_floats", 0, &P->fvals, &P->nf, NULL);
    if (rc) return rc;
    const int64_t *iv = ml_attr_ints(c, "imputed_value_int64s", &P->ni);
    if (P->nf && P->ni)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attributes imputed_value_floats and imputed_value_int64s are both given");
    if (!P->nf && !P->ni)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "one of imputed_value_floats or imputed_value_int64s must be given");
    if (P->ni) {
        if (!(P->ivals = malloc((size_t)P->ni * sizeof *P->ivals)))
            return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
        memcpy(P->ivals, iv, (size_t)P->ni * sizeof *P->ivals);
    }
    P->rf = onr_attr_float(c->node, "replaced_value_float", 0.0f);
    P->ri = onr_attr_int(c->node, "replaced_value_int64", 0);
    return ONR_OK;
}

static int im_reshape(onr_kctx *ctx, size_t *scratch)
{
    im_params *P = ctx->params;
    const onr_tensor *x = ctx->in[0];
    int rc = ml_check_num(ctx);
    if (rc) return rc;
    *scratch = 0;
    int is_float = x->dtype == ONR_FLOAT || x->dtype == ONR_DOUBLE;
    if (is_float != (P->nf > 0))
        return onr_seterr(ctx->err, ONR_E_INPUT, "X is %s but the imputed values are %s",
                          onr_dtype_name(x->dtype), P->nf ? "floats" : "int64s");
    P->f = x->rank ? x->dims[x->rank - 1] : 1;
    int64_t n = P->nf ? P->nf : P->ni;
    if (n != 1 && n != P->f)
        return onr_seterr(ctx->err, ONR_E_INPUT, "%lld imputed values for %lld features",
                          (long long)n, (long long)P->f);
    return onr_set_out_like(ctx, 0, 0);
}

static int im_run(const onr_kctx *ctx)
{
    const im_params *P = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    size_t es = onr_dtype_size(x->dtype);
    if (y->data != x->data) memcpy(y->data, x->data, (size_t)x->numel * es);
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t j = P->f ? i % P->f : 0;
        if (P->nf) {
            double v = onr_get_f64(x, i);
            if (v == P->rf || (isnan(v) && isnan(P->rf)))
                onr_set_f64(y, i, P->fvals[P->nf == 1 ? 0 : j]);
        } else {
            int64_t v = x->dtype == ONR_INT64 ? ((const int64_t *)x->data)[i]
                                              : ((const int32_t *)x->data)[i];
            if (v == P->ri) {
                int64_t w = P->ivals[P->ni == 1 ? 0 : j];
                if (y->dtype == ONR_INT64) ((int64_t *)y->data)[i] = w;
                else ((int32_t *)y->data)[i] = (int32_t)w;
            }
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_ml_imputer = {
    .create = im_create, .reshape = im_reshape, .run = im_run, .destroy = im_destroy,
    .params_size = sizeof(im_params), .types = T_ML_NUM, .flags = ONR_OP_INPLACE};

/* ---- ArrayFeatureExtractor, OneHotEncoder, FeatureVectorizer, CategoryMapper ------- */

/* Z = X[..., indices] with the indices flattened; 1-D X gives [1, k]
 * (the reference and onnxruntime). An index outside [0, last dim) is an
 * error. */
static int afe_reshape(onr_kctx *ctx, size_t *scratch)
{
    const onr_tensor *x = ctx->in[0], *ix = ctx->in[1];
    int rc = onr_check_input(ctx, 0, T_ML_NUM | ONR_T(ONR_STRING));
    if (rc || (rc = onr_check_input(ctx, 1, ONR_T(ONR_INT64)))) return rc;
    *scratch = 0;
    if (x->rank < 1)
        return onr_seterr(ctx->err, ONR_E_INPUT, "X must have at least one axis");
    int64_t d[ONR_MAX_RANK];
    int r = x->rank;
    if (r == 1) {
        d[0] = 1, d[1] = ix->numel, r = 2;
    } else {
        memcpy(d, x->dims, (size_t)r * sizeof *d);
        d[r - 1] = ix->numel;
    }
    return onr_set_out(ctx, 0, x->dtype, r, d);
}

static int afe_run(const onr_kctx *ctx)
{
    const onr_tensor *x = ctx->in[0], *ix = ctx->in[1];
    onr_tensor *z = ctx->out[0];
    const int64_t *idx = ix->data;
    int64_t last = x->dims[x->rank - 1], k = ix->numel;
    int64_t outer = last ? x->numel / last : 0;
    size_t es = onr_dtype_size(x->dtype);
    for (int64_t j = 0; j < k; j++)
        if (idx[j] < 0 || idx[j] >= last)
            return onr_seterr(ctx->err, ONR_E_INPUT, "index %lld is out of range [0, %lld)",
                              (long long)idx[j], (long long)last);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < k; j++) {
            int64_t src = o * last + idx[j], dst = o * k + j;
            if (x->dtype == ONR_STRING) {
                if (onr_str_assign(&((char **)z->data)[dst], ((char *const *)x->data)[src]))
                    return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory for a string");
            } else {
                memcpy((char *)z->data + (size_t)dst * es, (const char *)x->data + (size_t)src * es, es);
            }
        }
    return ONR_OK;
}

const onr_op_impl onr_impl_ml_array_feature_extractor = {
    .reshape = afe_reshape, .run = afe_run, .types = T_ML_NUM | ONR_T(ONR_STRING)};

/* OneHotEncoder: Y = X.shape + [categories], float; numbers are truncated
 * to int64 and looked up in cats_int64s, strings in cats_strings. A value
 * not found gives a zero row (zeros = 1) or an error (zeros = 0). */
typedef struct oh_params {
    le_params map; /* keys: the categories, values: their index */
    int zeros;
    int is_string;
} oh_params;

static void oh_destroy(void *params) { le_destroy(&((oh_params *)params)->map); }

/* Sorted category keys: strings or int64s, idx = position. */
static int cats_keys(onr_create_ctx *c, le_params *m, char *const *strs, const int64_t *ints, int64_t n,
                     int is_string)
{
    m->n = n, m->kkind = is_string ? LE_STR : LE_INT;
    m->keys = malloc(((size_t)n + 1) * sizeof *m->keys);
    if (!m->keys || (is_string && !(m->kstr = calloc((size_t)n + 1, sizeof *m->kstr))))
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for the categories");
    for (int64_t i = 0; i < n; i++) {
        m->keys[i].idx = i;
        if (is_string) {
            if (!(m->kstr[i] = onr_strdup(strs[i] ? strs[i] : "")))
                return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for the categories");
            m->keys[i].k.s = m->kstr[i];
        } else {
            m->keys[i].k.i = ints[i];
        }
    }
    qsort(m->keys, (size_t)n, sizeof *m->keys, is_string ? le_cmp_str : le_cmp_int);
    return ONR_OK;
}

static int oh_create(onr_create_ctx *c, void *params)
{
    oh_params *P = params;
    int64_t ni, ns;
    const int64_t *ints = ml_attr_ints(c, "cats_int64s", &ni);
    char *const *strs = ml_attr_strings(c, "cats_strings", &ns);
    if ((ni > 0) == (ns > 0))
        return onr_seterr(c->err, ONR_E_MODEL,
                          "exactly one of cats_int64s or cats_strings must be given");
    int64_t z = onr_attr_int(c->node, "zeros", 1);
    if (z != 0 && z != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute zeros = %lld is not 0 or 1", (long long)z);
    P->zeros = (int)z;
    P->is_string = ns > 0;
    return cats_keys(c, &P->map, strs, ints, ns ? ns : ni, ns > 0);
}

static int oh_reshape(onr_kctx *ctx, size_t *scratch)
{
    oh_params *P = ctx->params;
    const onr_tensor *x = ctx->in[0];
    int rc = onr_check_input(ctx, 0, T_ML_NUM | ONR_T(ONR_STRING));
    if (rc) return rc;
    *scratch = 0;
    if ((x->dtype == ONR_STRING) != P->is_string)
        return onr_seterr(ctx->err, ONR_E_INPUT, "X is %s but the categories are %s",
                          onr_dtype_name(x->dtype), P->is_string ? "strings" : "int64s");
    if (x->rank >= ONR_MAX_RANK)
        return onr_seterr(ctx->err, ONR_E_INPUT, "X has too many axes");
    int64_t d[ONR_MAX_RANK];
    memcpy(d, x->dims, (size_t)x->rank * sizeof *d);
    d[x->rank] = P->map.n;
    return onr_set_out(ctx, 0, ONR_FLOAT, x->rank + 1, d);
}

static int oh_run(const onr_kctx *ctx)
{
    const oh_params *P = ctx->params;
    const onr_tensor *x = ctx->in[0];
    float *y = ctx->out[0]->data;
    int64_t nc = P->map.n;
    memset(y, 0, (size_t)(x->numel * nc) * sizeof *y);
    for (int64_t i = 0; i < x->numel; i++) {
        le_key probe;
        if (P->is_string) {
            const char *s = ((char *const *)x->data)[i];
            probe.k.s = s ? s : "";
        } else if (x->dtype == ONR_INT64) {
            probe.k.i = ((const int64_t *)x->data)[i];
        } else {
            double v = onr_get_f64(x, i);
            probe.k.i = isnan(v) ? INT64_MIN : v >= 9.2e18 ? INT64_MAX : v <= -9.2e18 ? INT64_MIN
                                                                                      : (int64_t)v;
        }
        int64_t j = le_find(&P->map, &probe);
        if (j >= 0) y[i * nc + j] = 1;
        else if (!P->zeros)
            return onr_seterr(ctx->err, ONR_E_INPUT,
                              "element %lld of X is not a category (and zeros = 0)", (long long)i);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_ml_one_hot_encoder = {
    .create = oh_create, .reshape = oh_reshape, .run = oh_run, .destroy = oh_destroy,
    .params_size = sizeof(oh_params), .types = T_ML_NUM | ONR_T(ONR_STRING)};

/* FeatureVectorizer: inputs [N, C_i] (1-D as [1, C_i], as the text says)
 * concatenated along axis 1, each cut or zero-padded to inputdimensions[i]
 * columns; float output. */
typedef struct fv_params {
    int64_t *dims;
    int64_t n, total, rows;
} fv_params;

static void fv_destroy(void *params) { free(((fv_params *)params)->dims); }

static int fv_create(onr_create_ctx *c, void *params)
{
    fv_params *P = params;
    const int64_t *d = ml_attr_ints(c, "inputdimensions", &P->n);
    if (P->n != c->n_in)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute inputdimensions has %lld values for %d inputs",
                          (long long)P->n, c->n_in);
    if (!(P->dims = malloc(((size_t)P->n + 1) * sizeof *P->dims)))
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
    for (int64_t i = 0; i < P->n; i++) {
        if (d[i] < 0 || d[i] > INT32_MAX)
            return onr_seterr(c->err, ONR_E_MODEL, "inputdimensions[%lld] = %lld is out of range",
                              (long long)i, (long long)d[i]);
        P->dims[i] = d[i];
        P->total += d[i];
    }
    return ONR_OK;
}

static int fv_reshape(onr_kctx *ctx, size_t *scratch)
{
    fv_params *P = ctx->params;
    *scratch = 0;
    for (int i = 0; i < ctx->n_in; i++) {
        int rc = onr_check_input(ctx, i, T_ML_NUM);
        if (rc) return rc;
        int64_t r = 0, cols = 0;
        if ((rc = ml_input_matrix(ctx, i, &r, &cols))) return rc;
        if (i == 0) P->rows = r;
        else if (r != P->rows)
            return onr_seterr(ctx->err, ONR_E_INPUT, "input %d has %lld rows but input 0 has %lld", i,
                              (long long)r, (long long)P->rows);
    }
    int64_t d[2] = {P->rows, P->total};
    return onr_set_out(ctx, 0, ONR_FLOAT, 2, d);
}

static int fv_run(const onr_kctx *ctx)
{
    const fv_params *P = ctx->params;
    float *y = ctx->out[0]->data;
    int64_t at = 0;
    for (int i = 0; i < ctx->n_in; i++) {
        const onr_tensor *x = ctx->in[i];
        int64_t cols = x->rank == 2 ? x->dims[1] : x->dims[0];
        for (int64_t r = 0; r < P->rows; r++)
            for (int64_t j = 0; j < P->dims[i]; j++)
                y[r * P->total + at + j] = j < cols ? (float)onr_get_f64(x, r * cols + j) : 0.0f;
        at += P->dims[i];
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_ml_feature_vectorizer = {
    .create = fv_create, .reshape = fv_reshape, .run = fv_run, .destroy = fv_destroy,
    .params_size = sizeof(fv_params), .types = T_ML_NUM};

/* CategoryMapper: strings to int64 through cats_strings -> cats_int64s
 * (default_int64 when absent) or int64 to strings the other way
 * (default_string); the input type picks the direction. A repeated key
 * maps to its first pair. */
typedef struct cm_params {
    le_params s2i, i2s; /* keys sorted; idx = pair position */
    int64_t *ints;
    char **strs;
    int64_t n, dint;
    char *dstr;
} cm_params;

static void cm_destroy(void *params)
{
    cm_params *P = params;
    le_destroy(&P->s2i), le_destroy(&P->i2s);
    if (P->strs)
        for (int64_t i = 0; i < P->n; i++) free(P->strs[i]);
    free(P->strs), free(P->ints), free(P->dstr);
}

static int cm_create(onr_create_ctx *c, void *params)
{
    cm_params *P = params;
    int64_t ni, ns;
    const int64_t *ints = ml_attr_ints(c, "cats_int64s", &ni);
    char *const *strs = ml_attr_strings(c, "cats_strings", &ns);
    if (ni != ns)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attributes cats_int64s (%lld) and cats_strings (%lld) differ in length",
                          (long long)ni, (long long)ns);
    P->n = ni;
    P->dint = onr_attr_int(c->node, "default_int64", -1);
    P->dstr = onr_strdup(onr_attr_string(c->node, "default_string", "_Unused"));
    P->ints = malloc(((size_t)ni + 1) * sizeof *P->ints);
    P->strs = calloc((size_t)ni + 1, sizeof *P->strs);
    if (!P->dstr || !P->ints || !P->strs) return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
    for (int64_t i = 0; i < ni; i++) {
        P->ints[i] = ints[i];
        if (!(P->strs[i] = onr_strdup(strs[i] ? strs[i] : "")))
            return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
    }
    int rc = cats_keys(c, &P->s2i, strs, ints, ni, 1);
    return rc ? rc : cats_keys(c, &P->i2s, strs, ints, ni, 0);
}

static int cm_reshape(onr_kctx *ctx, size_t *scratch)
{
    const onr_tensor *x = ctx->in[0];
    int rc = onr_check_input(ctx, 0, ONR_T(ONR_STRING) | ONR_T(ONR_INT64));
    *scratch = 0;
    return rc ? rc : onr_set_out(ctx, 0, x->dtype == ONR_STRING ? ONR_INT64 : ONR_STRING, x->rank, x->dims);
}

static int cm_run(const onr_kctx *ctx)
{
    const cm_params *P = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    for (int64_t i = 0; i < x->numel; i++) {
        le_key probe;
        if (x->dtype == ONR_STRING) {
            const char *s = ((char *const *)x->data)[i];
            probe.k.s = s ? s : "";
            int64_t j = le_find(&P->s2i, &probe);
            ((int64_t *)y->data)[i] = j < 0 ? P->dint : P->ints[j];
        } else {
            probe.k.i = ((const int64_t *)x->data)[i];
            int64_t j = le_find(&P->i2s, &probe);
            if (onr_str_assign(&((char **)y->data)[i], j < 0 ? P->dstr : P->strs[j]))
                return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory for a string");
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_ml_category_mapper = {
    .create = cm_create, .reshape = cm_reshape, .run = cm_run, .destroy = cm_destroy,
    .params_size = sizeof(cm_params), .types = ONR_T(ONR_STRING) | ONR_T(ONR_INT64)};
