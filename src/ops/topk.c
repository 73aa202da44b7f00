/*
 * topk.c - TopK (opsets 1, 10, 11, 24).
 *
 * opset 1 takes k as an attribute; from 10 it is the second input (a 1-D
 * tensor holding one value, read by reshape); 11 adds `largest`, `sorted`
 * and the integer types; 24 adds bfloat16. k must lie in [0, dim]: a larger
 * k is an error, not a read past the axis.
 *
 * Each line along the axis is scanned once, keeping the k best in a binary
 * heap whose root is the worst kept (O(n log k)), then the heap is sorted in
 * place. Ranking compares order-preserving integer keys (sortkey.h), ties
 * broken by the lower index first, as the specification asks; NaN ranks
 * above every number (first for largest, last for smallest), as torch.topk
 * does. With sorted = 0 the order is unspecified; the sorted order is
 * returned then too. Values are copied bit for bit from the input.
 */
#include <omp.h>
#include <string.h>

#include "ops/ops.h"
#include "ops/sortkey.h"

typedef struct topk_params {
    int k_attr;       /* opset 1: k from the attribute */
    int64_t k;        /* attribute value, then the k in use (reshape) */
    int64_t axis;
    int largest, sorted;
    /* reshape */
    int64_t outer, n, inner;
} topk_params;

typedef struct topk_ent {
    uint64_t key;
    int64_t idx;
} topk_ent;

static int int_attr(onr_create_ctx *c, const char *name, int64_t def, int64_t *v)
{
    const onr_attr *a = onr_node_attr(c->node, name);
    if (a && a->type != ONR_ATTR_INT)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' must be an int", name);
    *v = a ? a->i : def;
    return ONR_OK;
}

static int topk_create(onr_create_ctx *c, void *params)
{
    topk_params *p = params;
    int64_t largest = 1, sorted = 1;
    int st;
    if ((st = int_attr(c, "axis", -1, &p->axis))) return st;
    if ((st = int_attr(c, "largest", 1, &largest)) || (st = int_attr(c, "sorted", 1, &sorted)))
        return st;
    if (c->opset < 11 && (onr_node_attr(c->node, "largest") || onr_node_attr(c->node, "sorted")))
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attributes 'largest' and 'sorted' arrived at opset 11, the node has %lld",
                          (long long)c->opset);
    if ((largest != 0 && largest != 1) || (sorted != 0 && sorted != 1))
        return onr_seterr(c->err, ONR_E_MODEL, "attributes 'largest' and 'sorted' must be 0 or 1");
    p->largest = (int)largest;
    p->sorted = (int)sorted;
    if (c->opset < 10) {
        p->k_attr = 1;
        if (!onr_node_attr(c->node, "k"))
            return onr_seterr(c->err, ONR_E_MODEL, "attribute 'k' is missing");
        if ((st = int_attr(c, "k", 0, &p->k))) return st;
    }
    return ONR_OK;
}

static int topk_reshape(onr_kctx *ctx, size_t *scratch)
{
    topk_params *p = ctx->params;
    *scratch = 0;
    uint32_t types = ctx->opset >= 11 ? ONR_TYPES_NUM : ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_FLOAT16);
    if (ctx->opset < 24) types &= ~ONR_T(ONR_BFLOAT16);
    int st = onr_check_input(ctx, 0, types);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (x->rank < 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input must have rank >= 1, it is a scalar");
    int axis;
    if ((st = onr_norm_axis(ctx->err, p->axis, x->rank, &axis))) return st;
    int64_t k = p->k;
    if (!p->k_attr) {
        if (ctx->n_in < 2 || !ctx->in[1])
            return onr_seterr(ctx->err, ONR_E_MODEL, "input K is missing");
        int64_t kv[1];
        int cnt;
        if ((st = onr_read_ints(ctx, 1, kv, 1, &cnt))) return st;
        if (cnt != 1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "K must hold one value, it holds %d", cnt);
        k = kv[0];
    }
    if (k < 0 || k > x->dims[axis])
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "k = %lld is outside [0, %lld], the size of axis %d", (long long)k,
                          (long long)x->dims[axis], axis);
    p->k = k;
    p->n = x->dims[axis];
    p->outer = p->inner = 1;
    int64_t dims[ONR_MAX_RANK];
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    dims[axis] = k;
    if (x->numel > 0) {
        for (int d = 0; d < axis; d++) p->outer *= x->dims[d];
        for (int d = axis + 1; d < x->rank; d++) p->inner *= x->dims[d];
    } else {
        p->outer = 0;
    }
    *scratch = (size_t)ctx->nthreads * (size_t)k * sizeof(topk_ent);
    if ((st = onr_set_out(ctx, 0, x->dtype, x->rank, dims))) return st;
    return onr_set_out(ctx, 1, ONR_INT64, x->rank, dims);
}

/* a ranks before b */
static inline int before(const topk_ent *a, const topk_ent *b, int largest)
{
    if (a->key != b->key) return largest ? a->key > b->key : a->key < b->key;
    return a->idx < b->idx;
}

/* Restore the heap (root = the entry ranking last) below i. */
static void sift_down(topk_ent *h, int64_t n, int64_t i, int largest)
{
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && before(&h[w], &h[l], largest)) w = l;
        if (r < n && before(&h[w], &h[r], largest)) w = r;
        if (w == i) return;
        topk_ent t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void topk_line(const topk_params *p, const onr_tensor *x, int64_t base, topk_ent *h)
{
    int64_t k = p->k, m = 0;
    for (int64_t i = 0; i < p->n; i++) {
        topk_ent e = {onr_sort_key(x->dtype, x->data, base + i * p->inner), i};
        if (m < k) {
            /* sift up */
            int64_t j = m++;
            h[j] = e;
            while (j > 0 && before(&h[(j - 1) / 2], &h[j], p->largest)) {
                topk_ent t = h[j];
                h[j] = h[(j - 1) / 2];
                h[(j - 1) / 2] = t;
                j = (j - 1) / 2;
            }
        } else if (before(&e, &h[0], p->largest)) {
            h[0] = e;
            sift_down(h, m, 0, p->largest);
        }
    }
    /* heap sort: the worst goes to the end each time */
    for (int64_t end = m - 1; end > 0; end--) {
        topk_ent t = h[0];
        h[0] = h[end];
        h[end] = t;
        sift_down(h, end, 0, p->largest);
    }
}

static int topk_run(const onr_kctx *ctx)
{
    const topk_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *v = ctx->out[0], *ix = ctx->n_out > 1 ? ctx->out[1] : NULL;
    if (p->k == 0 || p->outer == 0) return ONR_OK;
    size_t es = onr_dtype_size(x->dtype);
    int64_t lines = p->outer * p->inner, work = lines * p->n * 4;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (work > ONR_PAR_MIN)
    for (int64_t l = 0; l < lines; l++) {
        topk_ent *h = (topk_ent *)ctx->scratch + (size_t)omp_get_thread_num() * (size_t)p->k;
        int64_t o = l / p->inner, c = l % p->inner;
        topk_line(p, x, o * p->n * p->inner + c, h);
        int64_t ob = o * p->k * p->inner + c;
        for (int64_t j = 0; j < p->k; j++) {
            int64_t src = o * p->n * p->inner + c + h[j].idx * p->inner, dst = ob + j * p->inner;
            if (v) memcpy((char *)v->data + (size_t)dst * es, (const char *)x->data + (size_t)src * es, es);
            if (ix) ((int64_t *)ix->data)[dst] = h[j].idx;
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_topk = {.create = topk_create, .reshape = topk_reshape,
    .run = topk_run, .params_size = sizeof(topk_params), .types = ONR_TYPES_NUM,
    .shape_inputs = 1u << 1};
