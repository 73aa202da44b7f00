/*
 * map.c - the ai.onnx.ml operators that make or read maps (opset 1 of
 * ai.onnx.ml, the only one): ZipMap (a [N, C] float tensor to N maps of
 * the C class labels), CastMap (a map(int64, float|string) to a tensor in
 * key order, dense or sparse) and DictVectorizer (a map to a tensor indexed
 * by a vocabulary).
 *
 * A map is a container value (ir.h: kind ONR_VALUE_MAP, a keys tensor and
 * a values tensor). Maps are never in the arena, and a map's entry count is
 * not part of a step's shape key, so every op here is ONR_OP_DYNAMIC_OUT:
 * reshape checks kinds and types when they change, run checks the entry
 * count's consequences and sizes its output (onr_out_resize) -- allocating,
 * the exception the flag allows. CastMap over keys that are not already in
 * ascending order sorts (key, index) pairs it allocates in run.
 *
 * Output shapes follow ONNX Runtime, which the ONNX text leaves open:
 * CastMap and DictVectorizer give [1, n] (one map is one row), ZipMap one
 * map per row of X (a 1-D X is one row).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

#define DYN (ONR_OP_DYNAMIC_OUT | ONR_OP_NOFOLD)

static int no_scratch(size_t *scratch)
{
    *scratch = 0;
    return ONR_OK;
}

static const char *sget(const onr_tensor *t, int64_t i)
{
    const char *s = ((char *const *)t->data)[i];
    return s ? s : "";
}

/* Replace string slot i of t by a copy of s. */
static int sset(onr_tensor *t, int64_t i, const char *s, onr_err *err)
{
    if (onr_str_assign(&((char **)t->data)[i], s))
        return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    return ONR_OK;
}

/* Input 0 must be a map with scalar values whose key type is in `keys`
 * and value type in `vals` (bitmasks of dtypes). */
static int want_map(const onr_kctx *ctx, uint32_t keys, uint32_t vals)
{
    const onr_tensor *m = ctx->n_in > 0 ? ctx->in[0] : NULL;
    if (!m) return onr_seterr(ctx->err, ONR_E_MODEL, "input 0 (X) is missing");
    if (m->kind != ONR_VALUE_MAP || !m->data)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input 0 (X) is %s, expected a map",
                          m->kind == ONR_VALUE_SEQUENCE   ? "a sequence"
                          : m->kind == ONR_VALUE_OPTIONAL ? "an optional"
                                                          : "a tensor");
    const onr_tensor *k = onr_map_keys_of(m), *v = onr_map_values_of(m);
    if (!(keys & ONR_T(k->dtype)) || !(vals & ONR_T(v->dtype)))
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "input 0 (X) is a map(%s, %s): not a type "
                          "this operator takes", onr_dtype_name(k->dtype), onr_dtype_name(v->dtype));
    if (v->rank != 1)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                          "input 0 (X): map values must be scalars (values of rank %d)", v->rank - 1);
    return ONR_OK;
}

/* ---- ZipMap ---------------------------------------------------------------------- */

typedef struct zipmap_params {
    onr_tensor *labels; /* the keys of every map: [C] int64 or string */
} zipmap_params;

static int zipmap_create(onr_create_ctx *c, void *params)
{
    zipmap_params *p = params;
    const onr_attr *s = onr_attr_get(c->node, "classlabels_strings", ONR_ATTR_STRINGS);
    const onr_attr *i = onr_attr_get(c->node, "classlabels_int64s", ONR_ATTR_INTS);
    int has_s = s && s->n > 0, has_i = i && i->n > 0;
    if (has_s == has_i)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'classlabels_strings' or "
                          "'classlabels_int64s' must be given, and only one of them (%s)",
                          has_s ? "both are" : "neither is");
    int64_t n = (int64_t)(has_s ? s->n : i->n);
    onr_tensor *vals = NULL;
    if (!(p->labels = onr_tensor_new(has_s ? ONR_STRING : ONR_INT64, 1, &n)) ||
        !(vals = onr_tensor_new(ONR_FLOAT, 1, &n))) {
        onr_tensor_free(vals);
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for %lld class labels", (long long)n);
    }
    int st = ONR_OK;
    for (int64_t j = 0; j < n && !st; j++) {
        if (has_s) st = sset(p->labels, j, s->strings[j], c->err);
        else ((int64_t *)p->labels->data)[j] = i->ints[j];
    }
    if (!st && (st = onr_map_check(p->labels, vals, c->err)))
        onr_err_prefix(c->err, "attribute '%s': ", has_s ? "classlabels_strings" : "classlabels_int64s");
    onr_tensor_free(vals);
    return st;
}

static void zipmap_destroy(void *params)
{
    zipmap_params *p = params;
    onr_tensor_free(p->labels);
    p->labels = NULL;
}

static int zipmap_reshape(onr_kctx *ctx, size_t *scratch)
{
    const zipmap_params *p = ctx->params;
    int st = onr_check_input(ctx, 0, ONR_T(ONR_FLOAT));
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (x->kind) return onr_seterr(ctx->err, ONR_E_MODEL, "input 0 (X) must be a tensor");
    if (x->rank != 1 && x->rank != 2)
        return onr_seterr(ctx->err, ONR_E_MODEL, "X must be 1-D or 2-D [N, C], got rank %d", x->rank);
    if (x->dims[x->rank - 1] != p->labels->numel) {
        char b[256];
        return onr_seterr(ctx->err, ONR_E_MODEL, "X %s has %lld columns but there are %lld class labels",
                          onr_fmt_dims(b, sizeof b, x->dims, x->rank),
                          (long long)x->dims[x->rank - 1], (long long)p->labels->numel);
    }
    return no_scratch(scratch);
}

static int zipmap_run(const onr_kctx *ctx)
{
    const zipmap_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    int64_t C = p->labels->numel, N = x->rank == 2 ? x->dims[0] : 1;
    onr_tensor *y = ctx->out[0];
    int st = onr_value_container(y, ONR_VALUE_SEQUENCE, ONR_FLOAT, N, ctx->err);
    for (int64_t r = 0; r < N && !st; r++) {
        onr_tensor *m = calloc(1, sizeof *m);
        if (!m) return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory");
        ((onr_tensor **)y->data)[r] = m;
        if ((st = onr_map_alloc(m, p->labels->dtype, ONR_FLOAT, C, ctx->err))) break;
        onr_tensor *k = onr_map_keys_of(m);
        if (k->dtype == ONR_STRING) {
            for (int64_t j = 0; j < C && !st; j++) st = sset(k, j, sget(p->labels, j), ctx->err);
        } else if (C) {
            memcpy(k->data, p->labels->data, (size_t)C * sizeof(int64_t));
        }
        if (C) memcpy(onr_map_values_of(m)->data, (const float *)x->data + r * C, (size_t)C * sizeof(float));
    }
    return st;
}

const onr_op_impl onr_impl_ZipMap = {.create = zipmap_create, .reshape = zipmap_reshape,
    .run = zipmap_run, .destroy = zipmap_destroy, .params_size = sizeof(zipmap_params),
    .types = ONR_T(ONR_FLOAT), .flags = DYN};

/* ---- CastMap --------------------------------------------------------------------- */

typedef struct castmap_params {
    onr_dtype to; /* FLOAT, STRING or INT64 */
    int sparse;
    int64_t max_map;
} castmap_params;

static int castmap_create(onr_create_ctx *c, void *params)
{
    castmap_params *p = params;
    const char *to = onr_attr_string(c->node, "cast_to", "TO_FLOAT");
    const char *form = onr_attr_string(c->node, "map_form", "DENSE");
    p->to = strcmp(to, "TO_FLOAT") == 0    ? ONR_FLOAT
            : strcmp(to, "TO_STRING") == 0 ? ONR_STRING
            : strcmp(to, "TO_INT64") == 0  ? ONR_INT64
                                           : ONR_UNDEFINED;
    if (p->to == ONR_UNDEFINED)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'cast_to' is '%.100s', not one of "
                          "TO_FLOAT, TO_STRING, TO_INT64", to);
    if (strcmp(form, "DENSE") != 0 && strcmp(form, "SPARSE") != 0)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'map_form' is '%.100s', not DENSE or SPARSE",
                          form);
    p->sparse = form[0] == 'S';
    p->max_map = onr_attr_int(c->node, "max_map", 1);
    if (p->sparse && p->max_map <= 0)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'max_map' is %lld; a SPARSE map_form "
                          "needs it > 0", (long long)p->max_map);
    return ONR_OK;
}

#define CASTMAP_KEYS ONR_T(ONR_INT64)
#define CASTMAP_VALS (ONR_T(ONR_FLOAT) | ONR_T(ONR_STRING))

static int castmap_reshape(onr_kctx *ctx, size_t *scratch)
{
    int st = want_map(ctx, CASTMAP_KEYS, CASTMAP_VALS);
    return st ? st : no_scratch(scratch);
}

/* Value i of map values v (float or string) into element j of y. */
static int cast_one(const onr_kctx *ctx, const onr_tensor *v, int64_t i, onr_tensor *y, int64_t j)
{
    if (v->dtype == ONR_FLOAT) {
        float f = ((const float *)v->data)[i];
        switch (y->dtype) {
        case ONR_FLOAT: ((float *)y->data)[j] = f; return ONR_OK;
        case ONR_INT64: /* truncation; NaN and out of range as x86's conversion gives them */
            ((int64_t *)y->data)[j] = f >= -9223372036854775808.0f && f < 9223372036854775808.0f
                                          ? (int64_t)f
                                          : INT64_MIN;
            return ONR_OK;
        default: {
            char b[64]; /* std::to_string's "%f" */
            snprintf(b, sizeof b, "%f", (double)f);
            if (!isfinite(f)) snprintf(b, sizeof b, "%s%s", f < 0 ? "-" : "", isnan(f) ? "nan" : "inf");
            return sset(y, j, b, ctx->err);
        }
        }
    }
    const char *s = sget(v, i);
    char *end = NULL;
    errno = 0;
    switch (y->dtype) {
    case ONR_FLOAT: {
        float f = strtof(s, &end);
        if (end == s)
            return onr_seterr(ctx->err, ONR_E_RUNTIME, "map value %lld ('%.100s') is not a number",
                              (long long)i, s);
        ((float *)y->data)[j] = f;
        return ONR_OK;
    }
    case ONR_INT64: {
        long long k = strtoll(s, &end, 10);
        if (end == s || errno == ERANGE)
            return onr_seterr(ctx->err, ONR_E_RUNTIME, "map value %lld ('%.100s') is not an int64",
                              (long long)i, s);
        ((int64_t *)y->data)[j] = k;
        return ONR_OK;
    }
    default: return sset(y, j, s, ctx->err);
    }
}

typedef struct key_ix {
    int64_t key, ix;
} key_ix;

static int cmp_key_ix(const void *a, const void *b)
{
    const key_ix *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

static int castmap_run(const onr_kctx *ctx)
{
    const castmap_params *p = ctx->params;
    int st = want_map(ctx, CASTMAP_KEYS, CASTMAP_VALS); /* the entry count is not in the step's key */
    if (st) return st;
    const onr_tensor *m = ctx->in[0], *k = onr_map_keys_of(m), *v = onr_map_values_of(m);
    const int64_t *key = k->data;
    int64_t n = k->numel, dims[2] = {1, p->sparse ? p->max_map : n};
    if ((st = onr_out_resize(ctx, 0, p->to, 2, dims))) return st;
    onr_tensor *y = ctx->out[0];
    if (p->sparse) {
        for (int64_t j = 0; j < p->max_map && !st; j++) { /* the pad where no key is */
            if (p->to == ONR_FLOAT) ((float *)y->data)[j] = 0;
            else if (p->to == ONR_INT64) ((int64_t *)y->data)[j] = 0;
            else st = sset(y, j, "0.f", ctx->err); /* ONNX Runtime's pad for strings */
        }
        for (int64_t i = 0; i < n && !st; i++) {
            if (key[i] < 0 || key[i] >= p->max_map)
                return onr_seterr(ctx->err, ONR_E_RUNTIME, "map key %lld is outside [0, max_map "
                                  "%lld) of the SPARSE form", (long long)key[i], (long long)p->max_map);
            st = cast_one(ctx, v, i, y, key[i]);
        }
        return st;
    }
    /* dense: the values in ascending key order */
    int sorted = 1;
    for (int64_t i = 1; i < n && sorted; i++) sorted = key[i - 1] < key[i];
    if (sorted) {
        for (int64_t i = 0; i < n && !st; i++) st = cast_one(ctx, v, i, y, i);
        return st;
    }
    key_ix *ix = malloc((size_t)n * sizeof *ix);
    if (!ix) return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory sorting %lld keys", (long long)n);
    for (int64_t i = 0; i < n; i++) ix[i] = (key_ix){key[i], i};
    qsort(ix, (size_t)n, sizeof *ix, cmp_key_ix); /* keys are distinct: no ties */
    for (int64_t j = 0; j < n && !st; j++) st = cast_one(ctx, v, ix[j].ix, y, j);
    free(ix);
    return st;
}

const onr_op_impl onr_impl_CastMap = {.create = castmap_create, .reshape = castmap_reshape,
    .run = castmap_run, .params_size = sizeof(castmap_params), .types = ONR_T(ONR_INT64),
    .flags = DYN};

/* ---- DictVectorizer ------------------------------------------------------------------ */

typedef struct vocab_entry {
    const char *s; /* string word (in strs), or NULL */
    int64_t i;     /* int64 word */
    int64_t ix;    /* its position in the vocabulary */
} vocab_entry;

typedef struct dictvec_params {
    onr_dtype key;       /* INT64 or STRING */
    int64_t n;           /* vocabulary size */
    vocab_entry *sorted; /* by word, then position: a word listed twice maps to its first */
    char **strs;         /* string_vocabulary (copied) */
} dictvec_params;

static int cmp_vocab(const void *a, const void *b)
{
    const vocab_entry *x = a, *y = b;
    int c = x->s ? strcmp(x->s, y->s) : (x->i > y->i) - (x->i < y->i);
    return c ? c : (x->ix > y->ix) - (x->ix < y->ix);
}

static void dictvec_destroy(void *params)
{
    dictvec_params *p = params;
    for (int64_t i = 0; p->strs && i < p->n; i++) free(p->strs[i]);
    free(p->strs);
    free(p->sorted);
    memset(p, 0, sizeof *p);
}

static int dictvec_create(onr_create_ctx *c, void *params)
{
    dictvec_params *p = params;
    const onr_attr *s = onr_attr_get(c->node, "string_vocabulary", ONR_ATTR_STRINGS);
    const onr_attr *i = onr_attr_get(c->node, "int64_vocabulary", ONR_ATTR_INTS);
    int has_s = s && s->n > 0, has_i = i && i->n > 0;
    if (has_s == has_i)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'string_vocabulary' or "
                          "'int64_vocabulary' must be given, and only one of them (%s)",
                          has_s ? "both are" : "neither is");
    p->key = has_s ? ONR_STRING : ONR_INT64;
    p->n = (int64_t)(has_s ? s->n : i->n);
    p->sorted = malloc((size_t)p->n * sizeof *p->sorted);
    if (has_s) p->strs = calloc((size_t)p->n, sizeof *p->strs);
    if (!p->sorted || (has_s && !p->strs))
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for a vocabulary of %lld", (long long)p->n);
    for (int64_t j = 0; j < p->n; j++) {
        if (has_s && !(p->strs[j] = onr_strdup(s->strings[j] ? s->strings[j] : "")))
            return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
        p->sorted[j] = (vocab_entry){has_s ? p->strs[j] : NULL, has_i ? i->ints[j] : 0, j};
    }
    qsort(p->sorted, (size_t)p->n, sizeof *p->sorted, cmp_vocab);
    return ONR_OK;
}

#define DICTVEC_VALS (ONR_T(ONR_INT64) | ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_STRING))

static int dictvec_check(const onr_kctx *ctx)
{
    const dictvec_params *p = ctx->params;
    return want_map(ctx, ONR_T(p->key), DICTVEC_VALS);
}

static int dictvec_reshape(onr_kctx *ctx, size_t *scratch)
{
    int st = dictvec_check(ctx);
    return st ? st : no_scratch(scratch);
}

/* Position in the vocabulary of key i of k, or -1: a binary search. */
static int64_t vocab_find(const dictvec_params *p, const onr_tensor *k, int64_t i)
{
    vocab_entry want = {p->key == ONR_STRING ? sget(k, i) : NULL,
                        p->key == ONR_STRING ? 0 : ((const int64_t *)k->data)[i], -1};
    int64_t lo = 0, hi = p->n; /* the first entry not below the key (ix -1 sorts first) */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (cmp_vocab(&p->sorted[mid], &want) < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo == p->n) return -1;
    const vocab_entry *e = &p->sorted[lo];
    return (want.s ? strcmp(e->s, want.s) == 0 : e->i == want.i) ? e->ix : -1;
}

static int dictvec_run(const onr_kctx *ctx)
{
    const dictvec_params *p = ctx->params;
    int st = dictvec_check(ctx);
    if (st) return st;
    const onr_tensor *m = ctx->in[0], *k = onr_map_keys_of(m), *v = onr_map_values_of(m);
    int64_t dims[2] = {1, p->n};
    if ((st = onr_out_resize(ctx, 0, v->dtype, 2, dims))) return st;
    onr_tensor *y = ctx->out[0];
    if (y->dtype != ONR_STRING) memset(y->data, 0, (size_t)p->n * onr_dtype_size(y->dtype));
    size_t esz = onr_dtype_size(v->dtype);
    for (int64_t i = 0; i < k->numel && !st; i++) {
        int64_t j = vocab_find(p, k, i); /* keys outside the vocabulary are dropped */
        if (j < 0) continue;
        if (y->dtype == ONR_STRING) st = sset(y, j, sget(v, i), ctx->err);
        else memcpy((char *)y->data + (size_t)j * esz, (const char *)v->data + (size_t)i * esz, esz);
    }
    return st;
}

const onr_op_impl onr_impl_DictVectorizer = {.create = dictvec_create, .reshape = dictvec_reshape,
    .run = dictvec_run, .destroy = dictvec_destroy, .params_size = sizeof(dictvec_params),
    .types = ONR_T(ONR_INT64) | ONR_T(ONR_STRING), .flags = DYN};
