/*
 * gather.c - operators driven by index tensors: Gather, GatherElements,
 * GatherND, ScatterND, ScatterElements (and its deprecated name Scatter),
 * NonZero and OneHot.
 *
 * Index values come from tensors the model (or its user) supplies, so each
 * kernel checks every index against its axis before touching memory; a bad
 * index is a run-time error naming the value, never an out-of-bounds read.
 * Negative indices count from the end, as every opset of these ops allows.
 */
#include <math.h>
#include <string.h>

#include "ops/tensor.h"

#define TN_INDEX_TYPES (ONR_T(ONR_INT32) | ONR_T(ONR_INT64))

/* Check every index of t against an axis of size n. */
static int check_indices(onr_kctx *ctx, const onr_tensor *t, int64_t n, int axis)
{
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t v = tn_index_at(t, i);
        if (tn_wrap_index(v, n) < 0)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "index %lld (element %lld) is out of range for axis %d of size %lld",
                              (long long)v, (long long)i, axis, (long long)n);
    }
    return ONR_OK;
}

static int strings_oom(onr_kctx *ctx)
{
    return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory copying strings");
}

/* ---- Gather -------------------------------------------------------------------- */

static int gather_check(onr_kctx *ctx, int *axis)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st || (st = onr_check_input(ctx, 1, TN_INDEX_TYPES))) return st;
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1];
    if (x->rank == 0) return onr_seterr(ctx->err, ONR_E_MODEL, "cannot gather from a scalar");
    if ((st = onr_norm_axis(ctx->err, onr_attr_int(ctx->node, "axis", 0), x->rank, axis))) return st;
    if (x->rank - 1 + ind->rank > ONR_MAX_RANK)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "output rank %d exceeds the maximum %d",
                          x->rank - 1 + ind->rank, ONR_MAX_RANK);
    return ONR_OK;
}

static int gather_shape(onr_kctx *ctx)
{
    int axis, st = gather_check(ctx, &axis);
    if (st) return st;
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1];
    int64_t dims[ONR_MAX_RANK];
    int r = 0;
    for (int i = 0; i < axis; i++) dims[r++] = x->dims[i];
    for (int i = 0; i < ind->rank; i++) dims[r++] = ind->dims[i];
    for (int i = axis + 1; i < x->rank; i++) dims[r++] = x->dims[i];
    return onr_set_out(ctx, 0, x->dtype, r, dims);
}

/* Rows of `inner` elements; inner == 1 (gathering along the last axis) is
 * common enough to deserve a typed loop instead of a memcpy per element. */
#define GATHER_LOOP(T)                                                                   \
    do {                                                                                 \
        const T *xs = x->data;                                                           \
        T *ys = ctx->out[0]->data;                                                       \
        _Pragma("omp parallel for num_threads(ctx->nthreads) if (total * inner > ONR_PAR_MIN)") \
        for (int64_t q = 0; q < total; q++) {                                            \
            int64_t o = q / N, j = q - o * N, v = tn_index_at(ind, j);                   \
            if (v < 0) v += D;                                                           \
            const T *src = xs + (o * D + v) * inner;                                     \
            T *dst = ys + q * inner;                                                     \
            if (inner == 1) *dst = *src;                                                 \
            else memcpy(dst, src, (size_t)inner * sizeof(T));                            \
        }                                                                                \
    } while (0)

static int gather_run(onr_kctx *ctx)
{
    int axis, st = gather_check(ctx, &axis);
    if (st) return st;
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1];
    int64_t D = x->dims[axis], N = ind->numel;
    int64_t outer = tn_prod(x->dims, 0, axis), inner = tn_prod(x->dims, axis + 1, x->rank);
    if ((st = check_indices(ctx, ind, D, axis))) return st;
    if (ctx->out[0]->numel == 0) return ONR_OK;
    int64_t total = outer * N; /* non-empty output: no factor is saturated */
    if (ctx->out[0]->numel != total * inner)
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "output size does not match the inputs");
    switch (x->dtype == ONR_STRING ? 0 : onr_dtype_size(x->dtype)) {
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
                return strings_oom(ctx);
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_gather = {.shape = gather_shape, .run = gather_run,
                                     .types = ONR_TYPES_ALL};

/* ---- GatherElements / ScatterElements -------------------------------------------- */

/* Shared checks: indices (input 1) has data's rank and fits inside data on
 * every axis but `axis`. With updates (input 2), it has the indices' shape. */
static int elements_check(onr_kctx *ctx, int with_updates, int *axis)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st || (st = onr_check_input(ctx, 1, TN_INDEX_TYPES))) return st;
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1];
    char b1[256], b2[256];
    if (x->rank < 1 || ind->rank != x->rank)
        return onr_seterr(ctx->err, ONR_E_MODEL, "indices %s must have the rank of data %s (>= 1)",
                          TN_DIMS(b1, ind), TN_DIMS(b2, x));
    if ((st = onr_norm_axis(ctx->err, onr_attr_int(ctx->node, "axis", 0), x->rank, axis))) return st;
    for (int i = 0; i < x->rank; i++)
        if (i != *axis && ind->dims[i] > x->dims[i])
            return onr_seterr(ctx->err, ONR_E_MODEL, "indices %s exceed data %s on axis %d",
                              TN_DIMS(b1, ind), TN_DIMS(b2, x), i);
    if (!with_updates) return ONR_OK;
    if ((st = onr_check_input(ctx, 2, ONR_TYPES_ALL))) return st;
    const onr_tensor *u = ctx->in[2];
    int same = u->rank == ind->rank && u->dtype == x->dtype;
    for (int i = 0; same && i < u->rank; i++) same = u->dims[i] == ind->dims[i];
    if (!same)
        return onr_seterr(ctx->err, ONR_E_MODEL, "updates %s (%s) must match indices %s and data type %s",
                          TN_DIMS(b1, u), onr_dtype_name(u->dtype), TN_DIMS(b2, ind),
                          onr_dtype_name(x->dtype));
    return ONR_OK;
}

/* Walks the elements of indices in order with the data offset of each
 * element's position, the axis coordinate left out. */
typedef struct elem_walk {
    int rank, axis;
    int64_t coord[ONR_MAX_RANK], dstr[ONR_MAX_RANK];
    const int64_t *dims;
    int64_t base;
} elem_walk;

static void walk_init(elem_walk *w, const onr_tensor *x, const onr_tensor *ind, int axis)
{
    memset(w, 0, sizeof *w);
    w->rank = x->rank;
    w->axis = axis;
    w->dims = ind->dims;
    onr_strides(x->dims, x->rank, w->dstr);
}

static void walk_next(elem_walk *w)
{
    for (int k = w->rank - 1; k >= 0; k--) {
        int64_t s = k == w->axis ? 0 : w->dstr[k];
        w->base += s;
        if (++w->coord[k] < w->dims[k]) return;
        w->base -= s * w->dims[k];
        w->coord[k] = 0;
    }
}

static int gather_elements_shape(onr_kctx *ctx)
{
    int axis, st = elements_check(ctx, 0, &axis);
    if (st) return st;
    return onr_set_out(ctx, 0, ctx->in[0]->dtype, ctx->in[1]->rank, ctx->in[1]->dims);
}

static int gather_elements_run(onr_kctx *ctx)
{
    int axis, st = elements_check(ctx, 0, &axis);
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1];
    if (st || (st = tn_check_out(ctx, 0, ind->rank, ind->dims)) ||
        (st = check_indices(ctx, ind, x->dims[axis], axis)))
        return st;
    if (ind->numel == 0) return ONR_OK;
    size_t esz = tn_esz(x->dtype);
    elem_walk w;
    walk_init(&w, x, ind, axis);
    int64_t D = x->dims[axis], as = w.dstr[axis];
    char *y = ctx->out[0]->data;
    for (int64_t q = 0; q < ind->numel; q++, walk_next(&w)) {
        int64_t v = tn_index_at(ind, q);
        if (v < 0) v += D;
        if (tn_copy(x->dtype, y + (size_t)q * esz, (const char *)x->data + (size_t)(w.base + v * as) * esz, 1))
            return strings_oom(ctx);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_gatherelements = {.shape = gather_elements_shape,
                                             .run = gather_elements_run, .types = ONR_TYPES_ALL};

static int scatter_elements_shape(onr_kctx *ctx)
{
    int axis, st = elements_check(ctx, 1, &axis);
    tn_reduce red;
    if (st || (st = tn_parse_reduction(ctx, &red))) return st;
    if (red != TN_RED_NONE && ctx->in[0]->dtype == ONR_STRING)
        return onr_seterr(ctx->err, ONR_E_MODEL, "reductions do not apply to strings");
    return onr_set_out_like(ctx, 0, 0);
}

static int scatter_elements_run(onr_kctx *ctx)
{
    int axis, st = elements_check(ctx, 1, &axis);
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1], *u = ctx->in[2];
    tn_reduce red;
    if (st || (st = tn_parse_reduction(ctx, &red)) ||
        (st = tn_check_out(ctx, 0, x->rank, x->dims)) ||
        (st = check_indices(ctx, ind, x->dims[axis], axis)))
        return st;
    if (x->numel == 0) return ONR_OK; /* then indices are empty too */
    size_t esz = tn_esz(x->dtype);
    char *y = ctx->out[0]->data;
    if (tn_copy(x->dtype, y, x->data, x->numel)) return strings_oom(ctx);
    elem_walk w;
    walk_init(&w, x, ind, axis);
    int64_t D = x->dims[axis], as = w.dstr[axis];
    /* serial, in index order: duplicate indices resolve deterministically */
    for (int64_t q = 0; q < ind->numel; q++, walk_next(&w)) {
        int64_t v = tn_index_at(ind, q);
        if (v < 0) v += D;
        if (tn_reduce_into(x->dtype, red, y + (size_t)(w.base + v * as) * esz,
                           (const char *)u->data + (size_t)q * esz, 1))
            return strings_oom(ctx);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_scatterelements = {.shape = scatter_elements_shape,
                                              .run = scatter_elements_run, .types = ONR_TYPES_ALL};

/* ---- GatherND / ScatterND -------------------------------------------------------- */

typedef struct nd_p {
    int b, k;                     /* batch dims, index tuple length */
    int64_t batches, tuples, slice; /* per batch: tuples of k indices, slices of `slice` */
    int64_t bstride;              /* data elements per batch */
    int64_t st[ONR_MAX_RANK];     /* data strides of the k indexed axes */
    const int64_t *kd;            /* sizes of the k indexed axes */
} nd_p;

static int nd_params(onr_kctx *ctx, int b, nd_p *p)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
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
    p->kd = x->dims + b;
    for (int j = 0; j < p->k; j++) p->st[j] = tn_prod(x->dims, b + j + 1, r);
    return ONR_OK;
}

/* Offset inside a batch block of tuple t; -1 (with the error set) when an
 * index is out of range. */
static int64_t nd_offset(onr_kctx *ctx, const nd_p *p, const int64_t *t)
{
    int64_t off = 0;
    for (int j = 0; j < p->k; j++) {
        int64_t v = tn_wrap_index(t[j], p->kd[j]);
        if (v < 0) {
            onr_seterr(ctx->err, ONR_E_MODEL, "index %lld is out of range for axis %d of size %lld",
                       (long long)t[j], p->b + j, (long long)p->kd[j]);
            return -1;
        }
        off += v * p->st[j];
    }
    return off;
}

static int gathernd_batch(onr_kctx *ctx)
{
    return ctx->opset >= 12 ? (int)onr_attr_int(ctx->node, "batch_dims", 0) : 0;
}

static int gathernd_shape(onr_kctx *ctx)
{
    nd_p p;
    int st = nd_params(ctx, gathernd_batch(ctx), &p);
    if (st) return st;
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1];
    int r = ind->rank - 1 + x->rank - p.b - p.k;
    if (r > ONR_MAX_RANK)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "output rank %d exceeds the maximum", r);
    int64_t dims[ONR_MAX_RANK];
    int n = 0;
    for (int i = 0; i < ind->rank - 1; i++) dims[n++] = ind->dims[i];
    for (int i = p.b + p.k; i < x->rank; i++) dims[n++] = x->dims[i];
    return onr_set_out(ctx, 0, x->dtype, n, dims);
}

static int gathernd_run(onr_kctx *ctx)
{
    nd_p p;
    int st = nd_params(ctx, gathernd_batch(ctx), &p);
    if (st) return st;
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1];
    if (ctx->out[0]->numel == 0) return ONR_OK;
    if (ctx->out[0]->numel != p.batches * p.tuples * p.slice)
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "output size does not match the inputs");
    size_t esz = tn_esz(x->dtype);
    const int64_t *t = ind->data;
    char *y = ctx->out[0]->data;
    for (int64_t bi = 0; bi < p.batches; bi++)
        for (int64_t n = 0; n < p.tuples; n++, t += p.k) {
            int64_t off = nd_offset(ctx, &p, t);
            if (off < 0) return ONR_E_MODEL;
            if (tn_copy(x->dtype, y, (const char *)x->data + (size_t)(bi * p.bstride + off) * esz,
                        p.slice))
                return strings_oom(ctx);
            y += (size_t)p.slice * esz;
        }
    return ONR_OK;
}

const onr_op_impl onr_impl_gathernd = {.shape = gathernd_shape, .run = gathernd_run,
                                       .types = ONR_TYPES_ALL};

static int scatternd_check(onr_kctx *ctx, nd_p *p, tn_reduce *red)
{
    int st = nd_params(ctx, 0, p);
    if (st || (st = onr_check_input(ctx, 2, ONR_TYPES_ALL)) || (st = tn_parse_reduction(ctx, red)))
        return st;
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
    if (*red != TN_RED_NONE && x->dtype == ONR_STRING)
        return onr_seterr(ctx->err, ONR_E_MODEL, "reductions do not apply to strings");
    return ONR_OK;
}

static int scatternd_shape(onr_kctx *ctx)
{
    nd_p p;
    tn_reduce red;
    int st = scatternd_check(ctx, &p, &red);
    return st ? st : onr_set_out_like(ctx, 0, 0);
}

static int scatternd_run(onr_kctx *ctx)
{
    nd_p p;
    tn_reduce red;
    int st = scatternd_check(ctx, &p, &red);
    const onr_tensor *x = ctx->in[0], *ind = ctx->in[1], *u = ctx->in[2];
    if (st || (st = tn_check_out(ctx, 0, x->rank, x->dims))) return st;
    size_t esz = tn_esz(x->dtype);
    char *y = ctx->out[0]->data;
    const int64_t *t = ind->data;
    /* check every tuple first so a bad one leaves no partial update */
    for (int64_t n = 0; n < p.tuples; n++)
        if (nd_offset(ctx, &p, t + n * p.k) < 0) return ONR_E_MODEL;
    if (x->numel == 0) return ONR_OK;
    if (tn_copy(x->dtype, y, x->data, x->numel)) return strings_oom(ctx);
    for (int64_t n = 0; n < p.tuples; n++) {
        int64_t off = nd_offset(ctx, &p, t + n * p.k);
        if (tn_reduce_into(x->dtype, red, y + (size_t)off * esz,
                           (const char *)u->data + (size_t)(n * p.slice) * esz, p.slice))
            return strings_oom(ctx);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_scatternd = {.shape = scatternd_shape, .run = scatternd_run,
                                        .types = ONR_TYPES_ALL};

/* ---- NonZero ------------------------------------------------------------------- */

#define NONZERO_TYPES (ONR_TYPES_NUM | ONR_T(ONR_BOOL))

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

static int nonzero_shape(onr_kctx *ctx)
{
    int st = onr_check_input(ctx, 0, NONZERO_TYPES);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (!x->data && x->numel > 0) return ONR_SHAPE_DEFER;
    int64_t nnz = 0;
    for (int64_t i = 0; i < x->numel; i++) nnz += is_nonzero(x, i);
    /* a scalar reports like a 1-element vector, as numpy does */
    int64_t dims[2] = {x->rank > 0 ? x->rank : 1, nnz};
    return onr_set_out(ctx, 0, ONR_INT64, 2, dims);
}

static int nonzero_run(onr_kctx *ctx)
{
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    int r = x->rank > 0 ? x->rank : 1;
    int64_t nnz = y->rank == 2 ? y->dims[1] : -1, k = 0;
    int64_t coord[ONR_MAX_RANK] = {0};
    int64_t *o = y->data;
    if (y->rank != 2 || y->dims[0] != r)
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "output shape does not match the input");
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

const onr_op_impl onr_impl_nonzero = {.shape = nonzero_shape, .run = nonzero_run,
                                      .types = NONZERO_TYPES};

/* ---- OneHot -------------------------------------------------------------------- */

static int onehot_params(onr_kctx *ctx, int *axis, int64_t *depth)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_NUM);
    if (st || (st = onr_check_input(ctx, 1, ONR_TYPES_NUM)) ||
        (st = onr_check_input(ctx, 2, ONR_TYPES_ALL)))
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
    if ((st = onr_norm_axis(ctx->err, onr_attr_int(ctx->node, "axis", -1), ind->rank + 1, axis)))
        return st;
    double d;
    if ((st = onr_read_scalar(ctx, 1, &d))) return st;
    if (!(d >= 0) || d > 9.0e15)
        return onr_seterr(ctx->err, ONR_E_MODEL, "depth %g is invalid", d);
    *depth = (int64_t)d;
    return ONR_OK;
}

static int onehot_shape(onr_kctx *ctx)
{
    int axis;
    int64_t depth, dims[ONR_MAX_RANK];
    int st = onehot_params(ctx, &axis, &depth);
    if (st) return st;
    const onr_tensor *ind = ctx->in[0];
    for (int i = 0, j = 0; i <= ind->rank; i++) dims[i] = i == axis ? depth : ind->dims[j++];
    return onr_set_out(ctx, 0, ctx->in[2]->dtype, ind->rank + 1, dims);
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

static int onehot_run(onr_kctx *ctx)
{
    int axis;
    int64_t depth, dims[ONR_MAX_RANK];
    int st = onehot_params(ctx, &axis, &depth);
    if (st) return tn_nodefer(ctx, st);
    const onr_tensor *ind = ctx->in[0], *vals = ctx->in[2];
    for (int i = 0, j = 0; i <= ind->rank; i++) dims[i] = i == axis ? depth : ind->dims[j++];
    if ((st = tn_check_out(ctx, 0, ind->rank + 1, dims))) return st;
    onr_dtype dt = vals->dtype;
    size_t esz = tn_esz(dt);
    char *y = ctx->out[0]->data;
    const char *off = vals->data, *on = off + esz;
    if (tn_fill(dt, y, off, ctx->out[0]->numel)) return strings_oom(ctx);
    int64_t inner = tn_prod(ind->dims, axis, ind->rank);
    for (int64_t i = 0; i < ind->numel; i++) {
        int64_t v = onehot_index(ind, i, depth);
        if (v < 0) continue; /* out of range: the row stays all off */
        int64_t o = i / inner, in = i - o * inner;
        if (tn_copy(dt, y + (size_t)((o * depth + v) * inner + in) * esz, on, 1))
            return strings_oom(ctx);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_onehot = {.shape = onehot_shape, .run = onehot_run,
                                     .types = ONR_TYPES_NUM};

/* ---- Compress ----------------------------------------------------------------- */

/* Selected slices along `axis` (-1: the flattened input). The condition may
 * be shorter than the axis (the rest is dropped), not longer with a true. */
static int compress_params(onr_kctx *ctx, int *axis, int64_t *count)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st || (st = onr_check_input(ctx, 1, ONR_T(ONR_BOOL)))) return st;
    const onr_tensor *x = ctx->in[0], *c = ctx->in[1];
    if (c->rank != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "condition must be 1-D, has rank %d", c->rank);
    *axis = -1;
    if (onr_node_attr(ctx->node, "axis") &&
        (st = onr_norm_axis(ctx->err, onr_attr_int(ctx->node, "axis", 0), x->rank, axis)))
        return st;
    if (*axis >= 0 && x->rank == 0)
        return onr_seterr(ctx->err, ONR_E_MODEL, "cannot compress a scalar along an axis");
    if (!c->data && c->numel > 0) return ONR_SHAPE_DEFER;
    int64_t n = *axis >= 0 ? x->dims[*axis] : x->numel, k = 0;
    const uint8_t *cv = c->data;
    for (int64_t i = 0; i < c->numel; i++) {
        if (!cv[i]) continue;
        if (i >= n)
            return onr_seterr(ctx->err, ONR_E_MODEL, "condition selects index %lld beyond the axis size %lld",
                              (long long)i, (long long)n);
        k++;
    }
    *count = k;
    return ONR_OK;
}

static int compress_shape(onr_kctx *ctx)
{
    int axis;
    int64_t k;
    int st = compress_params(ctx, &axis, &k);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (axis < 0) return onr_set_out(ctx, 0, x->dtype, 1, &k);
    int64_t dims[ONR_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = k;
    return onr_set_out(ctx, 0, x->dtype, x->rank, dims);
}

static int compress_run(onr_kctx *ctx)
{
    int axis;
    int64_t k;
    int st = compress_params(ctx, &axis, &k);
    if (st) return tn_nodefer(ctx, st);
    const onr_tensor *x = ctx->in[0], *c = ctx->in[1];
    onr_tensor *y = ctx->out[0];
    if (y->numel == 0) return ONR_OK;
    int64_t n = axis >= 0 ? x->dims[axis] : x->numel;
    int64_t outer = axis >= 0 ? tn_prod(x->dims, 0, axis) : 1;
    int64_t inner = axis >= 0 ? tn_prod(x->dims, axis + 1, x->rank) : 1;
    if (y->numel != outer * k * inner)
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "output size does not match the inputs");
    size_t esz = tn_esz(x->dtype);
    const uint8_t *cv = c->data;
    int64_t m = c->numel < n ? c->numel : n;
    char *dst = y->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < m; i++) {
            if (!cv[i]) continue;
            if (tn_copy(x->dtype, dst, (const char *)x->data + (size_t)((o * n + i) * inner) * esz, inner))
                return strings_oom(ctx);
            dst += (size_t)inner * esz;
        }
    return ONR_OK;
}

const onr_op_impl onr_impl_compress = {.shape = compress_shape, .run = compress_run,
                                       .types = ONR_TYPES_ALL};
