/*
 * gather.c - operators driven by index tensors: Gather, GatherElements,
 * GatherND, ScatterND, ScatterElements (and its deprecated name Scatter),
 * NonZero, OneHot and Compress.
 *
 * Index values come from tensors the model (or its user) supplies, so each
 * kernel checks every index against its axis before touching memory; a bad
 * index is a run-time error naming the value, never an out-of-bounds read.
 * Negative indices count from the end, as every opset of these ops allows.
 *
 * create reads the attributes (axis, batch_dims, reduction); reshape checks
 * the input types and shapes and stores the geometry run walks (axis sizes,
 * strides, element size); run checks the index values and moves elements.
 */
#include <math.h>
#include <string.h>

#include "ops/tensor.h"

#define TN_INDEX_TYPES (ONR_T(ONR_INT32) | ONR_T(ONR_INT64))

/* Check every index of t against an axis of size n. */
static int check_indices(onr_err *err, const onr_tensor *t, int64_t n, int axis)
{
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t v = tn_index_at(t, i);
        if (tn_wrap_index(v, n) < 0)
            return onr_seterr(err, ONR_E_MODEL,
                              "index %lld (element %lld) is out of range for axis %d of size %lld",
                              (long long)v, (long long)i, axis, (long long)n);
    }
    return ONR_OK;
}

static int strings_oom(onr_err *err)
{
    return onr_seterr(err, ONR_E_NOMEM, "out of memory copying strings");
}

/* ---- Gather -------------------------------------------------------------------- */

typedef struct gather_params {
    int64_t axis; /* attribute */
    /* reshape */
    int ax;
    int64_t D, N, outer, inner, total; /* total = outer * N, 0 for an empty output */
    size_t esz;                        /* 1/2/4/8: typed loop; 0: strings */
} gather_params;

static int gather_create(onr_create_ctx *c, void *params)
{
    gather_params *p = params;
    p->axis = onr_attr_int(c->node, "axis", 0);
    return ONR_OK;
}

static int gather_reshape(onr_kctx *ctx, size_t *scratch)
{
    gather_params *p = ctx->params;
    *scratch = 0;
    int axis, st = tn_check_data(ctx, 0, 0);
    if (st || (st = onr_check_input(ctx, 1, TN_INDEX_TYPES))) return st;
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1];
    if (x->rank == 0) return onr_seterr(ctx->err, ONR_E_MODEL, "cannot gather from a scalar");
    if ((st = onr_norm_axis(ctx->err, p->axis, x->rank, &axis))) return st;
    if (x->rank - 1 + ind->rank > ONR_MAX_RANK)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "output rank %d exceeds the maximum %d",
                          x->rank - 1 + ind->rank, ONR_MAX_RANK);
    int64_t dims[ONR_MAX_RANK];
    int r = 0;
    for (int i = 0; i < axis; i++) dims[r++] = x->dims[i];
    for (int i = 0; i < ind->rank; i++) dims[r++] = ind->dims[i];
    for (int i = axis + 1; i < x->rank; i++) dims[r++] = x->dims[i];
    if ((st = onr_set_out(ctx, 0, x->dtype, r, dims))) return st;
    p->ax = axis;
    p->D = x->dims[axis];
    p->N = ind->numel;
    p->outer = tn_prod(x->dims, 0, axis);
    p->inner = tn_prod(x->dims, axis + 1, x->rank);
    /* a non-empty output has no saturated factor */
    p->total = p->outer > 0 && p->N > 0 && p->inner > 0 ? p->outer * p->N : 0;
    p->esz = x->dtype == ONR_STRING ? 0 : onr_dtype_size(x->dtype);
    return ONR_OK;
}

/* Rows of `inner` elements; inner == 1 (gathering along the last axis) is
 * common enough to deserve a typed loop instead of a memcpy per element. */
#define GATHER_LOOP(T)                                                                   \
    do {                                                                                 \
        const T *xs = x->data;                                                           \
        T *ys = ctx->out[0]->data;                                                       \
        _Pragma("omp parallel for num_threads(onr_team(ctx->nthreads)) if (total * inner > ONR_PAR_MIN)") \
        for (int64_t q = 0; q < total; q++) {                                            \
            int64_t o = q / N, j = q - o * N, v = tn_index_at(ind, j);                   \
            if (v < 0) v += D;                                                           \
            const T *src = xs + (o * D + v) * inner;                                     \
            T *dst = ys + q * inner;                                                     \
            if (inner == 1) *dst = *src;                                                 \
            else memcpy(dst, src, (size_t)inner * sizeof(T));                            \
        }                                                                                \
    } while (0)

static int gather_run(const onr_kctx *ctx)
{
    const gather_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1];
    int64_t D = p->D, N = p->N, inner = p->inner, total = p->total;
    int st = check_indices(ctx->err, ind, D, p->ax);
    if (st) return st;
    if (total == 0) return ONR_OK;
    if (p->esz && (uintptr_t)x->data % p->esz) { /* a table left in the mapping (ONR_OP_LAZY_IN0) */
        const char *xs = x->data;
        char *ys = ctx->out[0]->data;
        const size_t row = (size_t)inner * p->esz;
        _Pragma("omp parallel for num_threads(onr_team(ctx->nthreads)) if (total * inner > ONR_PAR_MIN)")
        for (int64_t q = 0; q < total; q++) {
            int64_t o = q / N, v = tn_index_at(ind, q - o * N);
            if (v < 0) v += D;
            memcpy(ys + (size_t)q * row, xs + (size_t)(o * D + v) * row, row);
        }
        return ONR_OK;
    }
    switch (p->esz) {
    case 1: GATHER_LOOP(uint8_t); break;
    case 2: GATHER_LOOP(uint16_t); break;
    case 4: GATHER_LOOP(uint32_t); break;
    case 8: GATHER_LOOP(uint64_t); break;
    default:
        for (int64_t q = 0; q < total; q++) {
            int64_t o = q / N, v = tn_index_at(ind, q - o * N);
            if (v < 0) v += D;
            if (tn_copy(x->dtype, (char **)ctx->out[0]->data + q * inner,
                        (char *const *)x->data + (o * D + v) * inner, inner))
                return strings_oom(ctx->err);
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_gather = {.create = gather_create, .reshape = gather_reshape,
                                     .run = gather_run, .params_size = sizeof(gather_params),
                                     .types = ONR_TYPES_ALL, .flags = ONR_OP_LAZY_IN0};

/* ---- GatherElements / ScatterElements -------------------------------------------- */

/* Walks the elements of indices in order with the data offset of each
 * element's position, the axis coordinate left out. */
typedef struct elem_geom {
    int rank, ax;
    int64_t D;                  /* data's size along the axis */
    int64_t dstr[ONR_MAX_RANK]; /* data strides */
    int64_t idims[ONR_MAX_RANK];
    size_t esz;
} elem_geom;

typedef struct elements_params {
    int64_t axis;  /* attribute */
    tn_reduce red; /* ScatterElements */
    elem_geom g;   /* reshape */
} elements_params;

static int gather_elements_create(onr_create_ctx *c, void *params)
{
    elements_params *p = params;
    p->axis = onr_attr_int(c->node, "axis", 0);
    p->red = TN_RED_NONE;
    return ONR_OK;
}

static int scatter_elements_create(onr_create_ctx *c, void *params)
{
    elements_params *p = params;
    p->axis = onr_attr_int(c->node, "axis", 0);
    return tn_reduction_attr(c, &p->red);
}

/* Shared checks: indices (input 1) has data's rank and fits inside data on
 * every axis but `axis`. With updates (input 2), it has the indices' shape. */
static int elements_reshape(onr_kctx *ctx, int with_updates)
{
    elements_params *p = ctx->params;
    int axis, st = tn_check_data(ctx, 0, 0);
    if (st || (st = onr_check_input(ctx, 1, TN_INDEX_TYPES))) return st;
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1];
    char b1[256], b2[256];
    if (x->rank < 1 || ind->rank != x->rank)
        return onr_seterr(ctx->err, ONR_E_MODEL, "indices %s must have the rank of data %s (>= 1)",
                          TN_DIMS(b1, ind), TN_DIMS(b2, x));
    if ((st = onr_norm_axis(ctx->err, p->axis, x->rank, &axis))) return st;
    for (int i = 0; i < x->rank; i++)
        if (i != axis && ind->dims[i] > x->dims[i])
            return onr_seterr(ctx->err, ONR_E_MODEL, "indices %s exceed data %s on axis %d",
                              TN_DIMS(b1, ind), TN_DIMS(b2, x), i);
    if (with_updates) {
        if ((st = tn_check_data(ctx, 2, 0))) return st;
        const onr_tensor *u = ctx->in[2];
        int same = u->rank == ind->rank && u->dtype == x->dtype;
        for (int i = 0; same && i < u->rank; i++) same = u->dims[i] == ind->dims[i];
        if (!same)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "updates %s (%s) must match indices %s and data type %s",
                              TN_DIMS(b1, u), onr_dtype_name(u->dtype), TN_DIMS(b2, ind),
                              onr_dtype_name(x->dtype));
        if (p->red != TN_RED_NONE && x->dtype == ONR_STRING)
            return onr_seterr(ctx->err, ONR_E_MODEL, "reductions do not apply to strings");
        st = onr_set_out_like(ctx, 0, 0);
    } else {
        st = onr_set_out(ctx, 0, x->dtype, ind->rank, ind->dims);
    }
    if (st) return st;
    elem_geom *g = &p->g;
    g->rank = x->rank;
    g->ax = axis;
    g->D = x->dims[axis];
    onr_strides(x->dims, x->rank, g->dstr);
    memcpy(g->idims, ind->dims, sizeof g->idims);
    g->esz = tn_esz(x->dtype);
    return ONR_OK;
}

static int gather_elements_reshape(onr_kctx *ctx, size_t *scratch)
{
    *scratch = 0;
    return elements_reshape(ctx, 0);
}

static int scatter_elements_reshape(onr_kctx *ctx, size_t *scratch)
{
    *scratch = 0;
    return elements_reshape(ctx, 1);
}

/* Position of a walk over the indices: coordinates and the data offset of
 * the current element with its axis coordinate left out. */
typedef struct elem_walk {
    int64_t coord[ONR_MAX_RANK];
    int64_t base;
} elem_walk;

static void walk_next(const elem_geom *g, elem_walk *w)
{
    for (int k = g->rank - 1; k >= 0; k--) {
        int64_t s = k == g->ax ? 0 : g->dstr[k];
        w->base += s;
        if (++w->coord[k] < g->idims[k]) return;
        w->base -= s * g->idims[k];
        w->coord[k] = 0;
    }
}

static int gather_elements_run(const onr_kctx *ctx)
{
    const elem_geom *g = &((const elements_params *)ctx->params)->g;
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1];
    int st = check_indices(ctx->err, ind, g->D, g->ax);
    if (st) return st;
    if (ind->numel == 0) return ONR_OK;
    size_t esz = g->esz;
    elem_walk w;
    memset(&w, 0, sizeof w);
    int64_t D = g->D, as = g->dstr[g->ax];
    char *y = ctx->out[0]->data;
    for (int64_t q = 0; q < ind->numel; q++, walk_next(g, &w)) {
        int64_t v = tn_index_at(ind, q);
        if (v < 0) v += D;
        if (tn_copy(x->dtype, y + (size_t)q * esz,
                    (const char *)x->data + (size_t)(w.base + v * as) * esz, 1))
            return strings_oom(ctx->err);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_gatherelements = {
    .create = gather_elements_create, .reshape = gather_elements_reshape,
    .run = gather_elements_run, .params_size = sizeof(elements_params), .types = ONR_TYPES_ALL};

static int scatter_elements_run(const onr_kctx *ctx)
{
    const elements_params *p = ctx->params;
    const elem_geom *g = &p->g;
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1], *u = ctx->in[2];
    int st = check_indices(ctx->err, ind, g->D, g->ax);
    if (st) return st;
    if (x->numel == 0) return ONR_OK; /* then indices are empty too */
    size_t esz = g->esz;
    char *y = ctx->out[0]->data;
    if (tn_copy(x->dtype, y, x->data, x->numel)) return strings_oom(ctx->err);
    elem_walk w;
    memset(&w, 0, sizeof w);
    int64_t D = g->D, as = g->dstr[g->ax];
    /* serial, in index order: duplicate indices resolve deterministically */
    for (int64_t q = 0; q < ind->numel; q++, walk_next(g, &w)) {
        int64_t v = tn_index_at(ind, q);
        if (v < 0) v += D;
        if (tn_reduce_into(x->dtype, p->red, y + (size_t)(w.base + v * as) * esz,
                           (const char *)u->data + (size_t)q * esz, 1))
            return strings_oom(ctx->err);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_scatterelements = {
    .create = scatter_elements_create, .reshape = scatter_elements_reshape,
    .run = scatter_elements_run, .params_size = sizeof(elements_params), .types = ONR_TYPES_ALL};

/* ---- GatherND / ScatterND -------------------------------------------------------- */

typedef struct nd_geom {
    int b, k;                       /* batch dims, index tuple length */
    int64_t batches, tuples, slice; /* per batch: tuples of k indices, slices of `slice` */
    int64_t bstride;                /* data elements per batch */
    int64_t st[ONR_MAX_RANK];       /* data strides of the k indexed axes */
    int64_t kd[ONR_MAX_RANK];       /* sizes of the k indexed axes */
    size_t esz;
} nd_geom;

typedef struct nd_params {
    int b;         /* batch_dims attribute (GatherND, opset >= 12) */
    tn_reduce red; /* ScatterND */
    nd_geom g;     /* reshape */
} nd_params;

static int nd_reshape(onr_kctx *ctx, int b, nd_geom *p)
{
    int st = tn_check_data(ctx, 0, 0);
    if (st || (st = onr_check_input(ctx, 1, ONR_T(ONR_INT64)))) return st;
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1];
    char b1[256], b2[256];
    int r = x->rank, q = ind->rank;
    if (r < 1 || q < 1 || b < 0 || b >= r || b >= q)
        return onr_seterr(ctx->err, ONR_E_MODEL, "data %s / indices %s / batch_dims %d are invalid",
                          TN_DIMS(b1, x), TN_DIMS(b2, ind), b);
    int64_t k = ind->dims[q - 1];
    if (k < 1 || k > r - b)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "indices %s: last dim must be in [1, %d] for data %s", TN_DIMS(b1, ind),
                          r - b, TN_DIMS(b2, x));
    for (int i = 0; i < b; i++)
        if (x->dims[i] != ind->dims[i])
            return onr_seterr(ctx->err, ONR_E_MODEL, "batch dim %d differs: data %s, indices %s", i,
                              TN_DIMS(b1, x), TN_DIMS(b2, ind));
    p->b = b;
    p->k = (int)k;
    p->batches = tn_prod(x->dims, 0, b);
    p->tuples = tn_prod(ind->dims, b, q - 1);
    p->slice = tn_prod(x->dims, b + p->k, r);
    p->bstride = tn_prod(x->dims, b, r);
    memset(p->kd, 0, sizeof p->kd);
    memset(p->st, 0, sizeof p->st);
    for (int j = 0; j < p->k; j++) {
        p->kd[j] = x->dims[b + j];
        p->st[j] = tn_prod(x->dims, b + j + 1, r);
    }
    p->esz = tn_esz(x->dtype);
    return ONR_OK;
}

/* Offset inside a batch block of tuple t; -1 (with the error set) when an
 * index is out of range. */
static int64_t nd_offset(onr_err *err, const nd_geom *p, const int64_t *t)
{
    int64_t off = 0;
    for (int j = 0; j < p->k; j++) {
        int64_t v = tn_wrap_index(t[j], p->kd[j]);
        if (v < 0) {
            onr_seterr(err, ONR_E_MODEL, "index %lld is out of range for axis %d of size %lld",
                       (long long)t[j], p->b + j, (long long)p->kd[j]);
            return -1;
        }
        off += v * p->st[j];
    }
    return off;
}

static int gathernd_create(onr_create_ctx *c, void *params)
{
    nd_params *p = params;
    int64_t b = c->opset >= 12 ? onr_attr_int(c->node, "batch_dims", 0) : 0;
    if (b < 0 || b >= ONR_MAX_RANK)
        return onr_seterr(c->err, ONR_E_MODEL, "batch_dims %lld is invalid", (long long)b);
    p->b = (int)b;
    p->red = TN_RED_NONE;
    return ONR_OK;
}

static int gathernd_reshape(onr_kctx *ctx, size_t *scratch)
{
    nd_params *pp = ctx->params;
    nd_geom *p = &pp->g;
    *scratch = 0;
    int st = nd_reshape(ctx, pp->b, p);
    if (st) return st;
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1];
    int r = ind->rank - 1 + x->rank - p->b - p->k;
    if (r > ONR_MAX_RANK)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "output rank %d exceeds the maximum", r);
    int64_t dims[ONR_MAX_RANK];
    int n = 0;
    for (int i = 0; i < ind->rank - 1; i++) dims[n++] = ind->dims[i];
    for (int i = p->b + p->k; i < x->rank; i++) dims[n++] = x->dims[i];
    return onr_set_out(ctx, 0, x->dtype, n, dims);
}

static int gathernd_run(const onr_kctx *ctx)
{
    const nd_geom *p = &((const nd_params *)ctx->params)->g;
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1];
    if (ctx->out[0]->numel == 0) return ONR_OK;
    size_t esz = p->esz;
    const int64_t *t = ind->data;
    char *y = ctx->out[0]->data;
    for (int64_t bi = 0; bi < p->batches; bi++)
        for (int64_t n = 0; n < p->tuples; n++, t += p->k) {
            int64_t off = nd_offset(ctx->err, p, t);
            if (off < 0) return ONR_E_MODEL;
            if (tn_copy(x->dtype, y, (const char *)x->data + (size_t)(bi * p->bstride + off) * esz,
                        p->slice))
                return strings_oom(ctx->err);
            y += (size_t)p->slice * esz;
        }
    return ONR_OK;
}

const onr_op_impl onr_impl_gathernd = {.create = gathernd_create, .reshape = gathernd_reshape,
                                       .run = gathernd_run, .params_size = sizeof(nd_params),
                                       .types = ONR_TYPES_ALL};

static int scatternd_create(onr_create_ctx *c, void *params)
{
    nd_params *p = params;
    p->b = 0;
    return tn_reduction_attr(c, &p->red);
}

static int scatternd_reshape(onr_kctx *ctx, size_t *scratch)
{
    nd_params *pp = ctx->params;
    nd_geom *p = &pp->g;
    *scratch = 0;
    int st = nd_reshape(ctx, 0, p);
    if (st || (st = tn_check_data(ctx, 2, 0))) return st;
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1], *u = ctx->in[2];
    /* updates: indices.shape[:-1] + data.shape[k:] */
    int same = u->dtype == x->dtype && u->rank == ind->rank - 1 + x->rank - p->k;
    for (int i = 0; same && i < ind->rank - 1; i++) same = u->dims[i] == ind->dims[i];
    for (int i = p->k; same && i < x->rank; i++) same = u->dims[ind->rank - 1 + i - p->k] == x->dims[i];
    char b1[256], b2[256], b3[256];
    if (!same)
        return onr_seterr(ctx->err, ONR_E_MODEL, "updates %s (%s) do not fit data %s (%s) and indices %s",
                          TN_DIMS(b1, u), onr_dtype_name(u->dtype), TN_DIMS(b2, x),
                          onr_dtype_name(x->dtype), TN_DIMS(b3, ind));
    if (pp->red != TN_RED_NONE && x->dtype == ONR_STRING)
        return onr_seterr(ctx->err, ONR_E_MODEL, "reductions do not apply to strings");
    return onr_set_out_like(ctx, 0, 0);
}

static int scatternd_run(const onr_kctx *ctx)
{
    const nd_params *pp = ctx->params;
    const nd_geom *p = &pp->g;
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1], *u = ctx->in[2];
    size_t esz = p->esz;
    char *y = ctx->out[0]->data;
    const int64_t *t = ind->data;
    /* check every tuple first so a bad one leaves no partial update */
    for (int64_t n = 0; n < p->tuples; n++)
        if (nd_offset(ctx->err, p, t + n * p->k) < 0) return ONR_E_MODEL;
    if (x->numel == 0) return ONR_OK;
    if (tn_copy(x->dtype, y, x->data, x->numel)) return strings_oom(ctx->err);
    for (int64_t n = 0; n < p->tuples; n++) {
        int64_t off = nd_offset(ctx->err, p, t + n * p->k);
        if (tn_reduce_into(x->dtype, pp->red, y + (size_t)off * esz,
                           (const char *)u->data + (size_t)(n * p->slice) * esz, p->slice))
            return strings_oom(ctx->err);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_scatternd = {.create = scatternd_create, .reshape = scatternd_reshape,
                                        .run = scatternd_run, .params_size = sizeof(nd_params),
                                        .types = ONR_TYPES_ALL};

/* ---- NonZero ------------------------------------------------------------------- */

#define NONZERO_TYPES (ONR_TYPES_NUM | ONR_T(ONR_BOOL))

typedef struct nonzero_params {
    int r;       /* rows of the output: the input's rank (1 for a scalar) */
    int64_t nnz; /* columns: the nonzero count reshape found */
} nonzero_params;

/* Float zero includes -0 (sign bit set), so floats compare by value. */
static int is_nonzero(const onr_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case ONR_FLOAT: return ((const float *)t->data)[i] != 0.f;
    case ONR_DOUBLE: return ((const double *)t->data)[i] != 0.0;
    case ONR_FLOAT16:
    case ONR_BFLOAT16: return (((const uint16_t *)t->data)[i] & 0x7fff) != 0;
    default: break;
    }
    switch (onr_dtype_size(t->dtype)) {
    case 1: return ((const uint8_t *)t->data)[i] != 0;
    case 2: return ((const uint16_t *)t->data)[i] != 0;
    case 4: return ((const uint32_t *)t->data)[i] != 0;
    default: return ((const uint64_t *)t->data)[i] != 0;
    }
}

/* The output shape is the count of nonzeros: reshape reads the data (a
 * shape input; large ones make the step reshape on every run). */
static int nonzero_reshape(onr_kctx *ctx, size_t *scratch)
{
    nonzero_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, NONZERO_TYPES);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (!x->data && x->numel > 0) return ONR_SHAPE_DEFER;
    int64_t nnz = 0;
    for (int64_t i = 0; i < x->numel; i++) nnz += is_nonzero(x, i);
    /* a scalar reports like a 1-element vector, as numpy does */
    int64_t dims[2] = {x->rank > 0 ? x->rank : 1, nnz};
    if ((st = onr_set_out(ctx, 0, ONR_INT64, 2, dims))) return st;
    p->r = (int)dims[0];
    p->nnz = nnz;
    return ONR_OK;
}

static int nonzero_run(const onr_kctx *ctx)
{
    const nonzero_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    int r = p->r;
    int64_t nnz = p->nnz, k = 0;
    int64_t coord[ONR_MAX_RANK] = {0};
    int64_t *o = ctx->out[0]->data;
    for (int64_t i = 0; i < x->numel; i++) {
        if (is_nonzero(x, i)) {
            if (k == nnz)
                return onr_seterr(ctx->err, ONR_E_RUNTIME, "input changed after its shape was set");
            for (int d = 0; d < r; d++) o[d * nnz + k] = coord[d];
            k++;
        }
        for (int d = x->rank - 1; d >= 0; d--) {
            if (++coord[d] < x->dims[d]) break;
            coord[d] = 0;
        }
    }
    if (k != nnz)
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "input changed after its shape was set");
    return ONR_OK;
}

const onr_op_impl onr_impl_nonzero = {.reshape = nonzero_reshape, .run = nonzero_run,
                                      .params_size = sizeof(nonzero_params),
                                      .types = NONZERO_TYPES, .shape_inputs = 1u << 0};

/* ---- OneHot -------------------------------------------------------------------- */

typedef struct onehot_params {
    int64_t axis; /* attribute */
    /* reshape */
    int64_t depth, inner; /* inner: indices elements after the new axis */
    size_t esz;
} onehot_params;

static int onehot_create(onr_create_ctx *c, void *params)
{
    onehot_params *p = params;
    p->axis = onr_attr_int(c->node, "axis", -1);
    return ONR_OK;
}

/* The output shape holds depth (input 1): a shape input. */
static int onehot_reshape(onr_kctx *ctx, size_t *scratch)
{
    onehot_params *p = ctx->params;
    *scratch = 0;
    int axis, st = onr_check_input(ctx, 0, ONR_TYPES_NUM);
    if (st || (st = onr_check_input(ctx, 1, ONR_TYPES_NUM)) ||
        (st = tn_check_data(ctx, 2, 0)))
        return st;
    const onr_tensor *ind = ctx->in[0], *vals = ctx->in[2];
    if (ind->rank + 1 > ONR_MAX_RANK)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "output rank exceeds the maximum");
    if (vals->numel != 2 || vals->rank > 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "values must hold [off, on], it has %lld elements",
                          (long long)vals->numel);
    if (ctx->in[1]->numel != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "depth must hold one value, it has %lld",
                          (long long)ctx->in[1]->numel);
    if ((st = onr_norm_axis(ctx->err, p->axis, ind->rank + 1, &axis))) return st;
    double d;
    if ((st = onr_read_scalar(ctx, 1, &d))) return st;
    if (!(d >= 0) || d > 9.0e15)
        return onr_seterr(ctx->err, ONR_E_MODEL, "depth %g is invalid", d);
    int64_t depth = (int64_t)d, dims[ONR_MAX_RANK];
    for (int i = 0, j = 0; i <= ind->rank; i++) dims[i] = i == axis ? depth : ind->dims[j++];
    if ((st = onr_set_out(ctx, 0, vals->dtype, ind->rank + 1, dims))) return st;
    p->depth = depth;
    p->inner = tn_prod(ind->dims, axis, ind->rank);
    p->esz = tn_esz(vals->dtype);
    return ONR_OK;
}

/* An index as an integer; non-integer types truncate, non-finite = -1. */
static int64_t onehot_index(const onr_tensor *t, int64_t i, int64_t depth)
{
    int64_t v;
    if (t->dtype == ONR_INT64 || t->dtype == ONR_INT32) {
        v = tn_index_at(t, i);
    } else {
        double d = onr_get_f64(t, i);
        if (!isfinite(d) || fabs(d) > 9.0e18) return -1;
        v = (int64_t)d;
    }
    return tn_wrap_index(v, depth);
}

static int onehot_run(const onr_kctx *ctx)
{
    const onehot_params *p = ctx->params;
    const onr_tensor *ind = ctx->in[0], *vals = ctx->in[2];
    onr_dtype dt = vals->dtype;
    size_t esz = p->esz;
    int64_t depth = p->depth, inner = p->inner;
    char *y = ctx->out[0]->data;
    const char *off = vals->data, *on = off + esz;
    if (tn_fill(dt, y, off, ctx->out[0]->numel)) return strings_oom(ctx->err);
    for (int64_t i = 0; i < ind->numel; i++) {
        int64_t v = onehot_index(ind, i, depth);
        if (v < 0) continue; /* out of range: the row stays all off */
        int64_t o = i / inner, in = i - o * inner;
        if (tn_copy(dt, y + (size_t)((o * depth + v) * inner + in) * esz, on, 1))
            return strings_oom(ctx->err);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_onehot = {.create = onehot_create, .reshape = onehot_reshape,
                                     .run = onehot_run, .params_size = sizeof(onehot_params),
                                     .types = ONR_TYPES_NUM, .shape_inputs = 1u << 1};

/* ---- Compress ----------------------------------------------------------------- */

typedef struct compress_params {
    int has_axis; /* without it: the flattened input */
    int64_t axis;
    /* reshape */
    int64_t n, m;         /* slices along the axis; condition values that apply */
    int64_t outer, inner; /* around the axis (1 and 1 when flattened) */
} compress_params;

static int compress_create(onr_create_ctx *c, void *params)
{
    compress_params *p = params;
    p->has_axis = onr_node_attr(c->node, "axis") != NULL;
    p->axis = onr_attr_int(c->node, "axis", 0);
    return ONR_OK;
}

/* Selected slices along `axis` (-1: the flattened input). The condition may
 * be shorter than the axis (the rest is dropped), not longer with a true.
 * The output shape counts the condition's trues: a shape input. */
static int compress_reshape(onr_kctx *ctx, size_t *scratch)
{
    compress_params *p = ctx->params;
    *scratch = 0;
    int st = tn_check_data(ctx, 0, 0);
    if (st || (st = onr_check_input(ctx, 1, ONR_T(ONR_BOOL)))) return st;
    const onr_tensor *x = ctx->in[0], *c = ctx->in[1];
    if (c->rank != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "condition must be 1-D, has rank %d", c->rank);
    int axis = -1;
    if (p->has_axis && (st = onr_norm_axis(ctx->err, p->axis, x->rank, &axis))) return st;
    if (axis >= 0 && x->rank == 0)
        return onr_seterr(ctx->err, ONR_E_MODEL, "cannot compress a scalar along an axis");
    if (!c->data && c->numel > 0) return ONR_SHAPE_DEFER;
    int64_t n = axis >= 0 ? x->dims[axis] : x->numel, k = 0;
    const uint8_t *cv = c->data;
    for (int64_t i = 0; i < c->numel; i++) {
        if (!cv[i]) continue;
        if (i >= n)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "condition selects index %lld beyond the axis size %lld",
                              (long long)i, (long long)n);
        k++;
    }
    if (axis < 0) {
        st = onr_set_out(ctx, 0, x->dtype, 1, &k);
    } else {
        int64_t dims[ONR_MAX_RANK];
        memcpy(dims, x->dims, sizeof dims);
        dims[axis] = k;
        st = onr_set_out(ctx, 0, x->dtype, x->rank, dims);
    }
    if (st) return st;
    p->n = n;
    p->m = c->numel < n ? c->numel : n;
    p->outer = axis >= 0 ? tn_prod(x->dims, 0, axis) : 1;
    p->inner = axis >= 0 ? tn_prod(x->dims, axis + 1, x->rank) : 1;
    return ONR_OK;
}

static int compress_run(const onr_kctx *ctx)
{
    const compress_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0], *c = ctx->in[1];
    onr_tensor *y = ctx->out[0];
    if (y->numel == 0) return ONR_OK; /* non-empty: no factor below is saturated */
    int64_t n = p->n, inner = p->inner;
    size_t esz = tn_esz(x->dtype);
    const uint8_t *cv = c->data;
    char *dst = y->data;
    for (int64_t o = 0; o < p->outer; o++)
        for (int64_t i = 0; i < p->m; i++) {
            if (!cv[i]) continue;
            if (tn_copy(x->dtype, dst, (const char *)x->data + (size_t)((o * n + i) * inner) * esz,
                        inner))
                return strings_oom(ctx->err);
            dst += (size_t)inner * esz;
        }
    return ONR_OK;
}

const onr_op_impl onr_impl_compress = {.create = compress_create, .reshape = compress_reshape,
                                       .run = compress_run, .params_size = sizeof(compress_params),
                                       .types = ONR_TYPES_ALL, .shape_inputs = 1u << 1};
