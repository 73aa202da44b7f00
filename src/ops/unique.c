/*
 * unique.c - Unique (opset 11, the only version).
 *
 * The input is cut into n items: its elements (no axis: the flattened
 * tensor) or its slices along `axis`. A stable merge sort of the item
 * indices, comparing items element by element (exact integer keys from
 * sortkey.h for numbers, byte order for strings, which is code-point order
 * for UTF-8), puts equal items next to each other with the first occurrence
 * first. Each run of equal items is one unique: sorted = 1 emits them in
 * ascending order (as numpy.unique does), sorted = 0 in order of first
 * occurrence. Outputs: Y, indices (first occurrence), inverse_indices (the
 * unique of every item), counts; the last three int64 and optional.
 *
 * Every NaN compares equal to every other NaN and above all numbers, so NaNs
 * fold into one unique at the end (numpy.unique's equal_nan default).
 *
 * Y's length depends on the data, so reshape reads the input (a shape
 * input) and runs the sort once to count; run sorts again in scratch
 * (6 int64 per item) and writes the outputs.
 */
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "ops/sortkey.h"
#include "ops/tensor.h"

#define UNIQUE_TYPES (ONR_TYPES_NUM | ONR_T(ONR_BOOL) | ONR_T(ONR_STRING))

typedef struct unique_params {
    int has_axis, sorted;
    int64_t axis_attr;
    /* reshape */
    int axis;             /* -1: flattened */
    int64_t n, outer, inner; /* items; an item is outer x inner elements */
    int64_t nuniq;
} unique_params;

static int unique_create(onr_create_ctx *c, void *params)
{
    unique_params *p = params;
    const onr_attr *a = onr_node_attr(c->node, "axis");
    if (a && a->type != ONR_ATTR_INT)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'axis' must be an int");
    p->has_axis = a != NULL;
    p->axis_attr = a ? a->i : 0;
    a = onr_node_attr(c->node, "sorted");
    if (a && (a->type != ONR_ATTR_INT || (a->i != 0 && a->i != 1)))
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'sorted' must be an int 0 or 1");
    p->sorted = a ? (int)a->i : 1;
    return ONR_OK;
}

/* Element e of item s, as an element offset in the input. */
static inline int64_t item_elem(const unique_params *p, int64_t s, int64_t e)
{
    return (e / p->inner) * p->n * p->inner + s * p->inner + e % p->inner;
}

/* <0, 0, >0 as item a sorts before, with, after item b. */
static int item_cmp(const unique_params *p, const onr_tensor *x, int64_t a, int64_t b)
{
    int64_t len = p->outer * p->inner;
    for (int64_t e = 0; e < len; e++) {
        int64_t ia = item_elem(p, a, e), ib = item_elem(p, b, e);
        if (x->dtype == ONR_STRING) {
            const char *sa = ((char *const *)x->data)[ia], *sb = ((char *const *)x->data)[ib];
            int c = strcmp(sa ? sa : "", sb ? sb : "");
            if (c) return c;
        } else {
            uint64_t ka = onr_sort_key(x->dtype, x->data, ia), kb = onr_sort_key(x->dtype, x->data, ib);
            if (ka != kb) return ka < kb ? -1 : 1;
        }
    }
    return 0;
}

/* Stable bottom-up merge sort of perm[0..n) (tmp: n more), then group ids:
 * gid[item] = its unique in sorted order; first[g] = first item of group g,
 * cnt[g] its size. Returns the number of groups. */
static int64_t unique_sort(const unique_params *p, const onr_tensor *x, int64_t *perm,
                           int64_t *tmp, int64_t *gid, int64_t *first, int64_t *cnt)
{
    int64_t n = p->n;
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi)
                tmp[o++] = item_cmp(p, x, perm[j], perm[i]) < 0 ? perm[j++] : perm[i++];
            while (i < mid) tmp[o++] = perm[i++];
            while (j < hi) tmp[o++] = perm[j++];
        }
        memcpy(perm, tmp, sizeof(int64_t) * (size_t)n);
    }
    int64_t g = -1;
    for (int64_t j = 0; j < n; j++) {
        if (j == 0 || item_cmp(p, x, perm[j - 1], perm[j]) != 0) {
            g++;
            if (first) first[g] = perm[j];
            if (cnt) cnt[g] = 0;
        }
        if (gid) gid[perm[j]] = g;
        if (cnt) cnt[g]++;
    }
    return g + 1;
}

static int unique_reshape(onr_kctx *ctx, size_t *scratch)
{
    unique_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, UNIQUE_TYPES);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (!x->data && x->numel > 0) return ONR_SHAPE_DEFER;
    p->axis = -1;
    p->outer = p->inner = 1;
    p->n = x->numel;
    if (p->has_axis) {
        if (x->rank < 1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "axis given but the input is a scalar");
        if ((st = onr_norm_axis(ctx->err, p->axis_attr, x->rank, &p->axis))) return st;
        p->n = x->dims[p->axis];
        if (x->numel > 0) {
            for (int d = 0; d < p->axis; d++) p->outer *= x->dims[d];
            for (int d = p->axis + 1; d < x->rank; d++) p->inner *= x->dims[d];
        } else {
            p->outer = 0; /* items are empty: all equal */
        }
    }
    size_t bytes = (size_t)p->n * 6 * sizeof(int64_t);
    p->nuniq = 0;
    if (p->n > 0) {
        int64_t *buf = malloc(bytes);
        if (!buf)
            return onr_seterr(ctx->err, ONR_E_NOMEM, "Unique: no memory to sort %lld items",
                              (long long)p->n);
        p->nuniq = unique_sort(p, x, buf, buf + p->n, NULL, NULL, NULL);
        free(buf);
    }
    *scratch = bytes;
    int64_t dims[ONR_MAX_RANK], u = p->nuniq, n = p->n;
    if (p->axis < 0) {
        st = onr_set_out(ctx, 0, x->dtype, 1, &u);
    } else {
        memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
        dims[p->axis] = u;
        st = onr_set_out(ctx, 0, x->dtype, x->rank, dims);
    }
    if (!st) st = onr_set_out(ctx, 1, ONR_INT64, 1, &u);
    if (!st) st = onr_set_out(ctx, 2, ONR_INT64, 1, &n);
    if (!st) st = onr_set_out(ctx, 3, ONR_INT64, 1, &u);
    return st;
}

static int unique_run(const onr_kctx *ctx)
{
    const unique_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    onr_tensor *oi = ctx->n_out > 1 ? ctx->out[1] : NULL, *oinv = ctx->n_out > 2 ? ctx->out[2] : NULL,
               *oc = ctx->n_out > 3 ? ctx->out[3] : NULL;
    int64_t n = p->n;
    if (n == 0) return ONR_OK;
    int64_t *perm = ctx->scratch, *tmp = perm + n, *gid = tmp + n, *first = gid + n,
            *cnt = first + n, *order = cnt + n;
    int64_t u = unique_sort(p, x, perm, tmp, gid, first, cnt);
    if (u != p->nuniq)
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "Unique: the input changed after reshape");
    /* order[g] = output position of sorted group g */
    if (p->sorted) {
        for (int64_t g = 0; g < u; g++) order[g] = g;
    } else {
        int64_t k = 0;
        for (int64_t i = 0; i < n; i++)
            if (first[gid[i]] == i) order[gid[i]] = k++;
    }
    size_t es = x->dtype == ONR_STRING ? sizeof(char *) : onr_dtype_size(x->dtype);
    int64_t len = p->outer * p->inner;
    for (int64_t g = 0; g < u; g++) {
        int64_t o = order[g];
        if (y)
            for (int64_t e = 0; e < len; e++) {
                /* the output item o, element e: same layout with u items */
                int64_t dst = (e / p->inner) * u * p->inner + o * p->inner + e % p->inner;
                int st = tn_copy(x->dtype, (char *)y->data + (size_t)dst * es,
                                 (const char *)x->data + (size_t)item_elem(p, first[g], e) * es, 1);
                if (st) return onr_seterr(ctx->err, st, "Unique: no memory for a string");
            }
        if (oi) ((int64_t *)oi->data)[o] = first[g];
        if (oc) ((int64_t *)oc->data)[o] = cnt[g];
    }
    if (oinv)
        for (int64_t i = 0; i < n; i++) ((int64_t *)oinv->data)[i] = order[gid[i]];
    return ONR_OK;
}

const onr_op_impl onr_impl_unique = {.create = unique_create, .reshape = unique_reshape,
    .run = unique_run, .params_size = sizeof(unique_params), .types = UNIQUE_TYPES,
    .shape_inputs = 1u << 0};
