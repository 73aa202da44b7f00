/*
 * copy_ops.c - operators that rearrange elements: Transpose, Concat, Split,
 * Slice, Expand, Tile, Pad, ReverseSequence, DepthToSpace and SpaceToDepth.
 *
 * They never look at element values, so every dtype of one size shares one
 * code path; STRING goes through tn_copy, which duplicates strings. The 8-,
 * 4- and 2-bit types take one byte per element in memory (packed only in
 * files), so they share the 1-byte path; tensor.h says which operators take
 * them from which opset (Transpose and Pad do, the others none).
 * create reads the attributes once; reshape reads the inputs whose values
 * set the output shape (listed in .shape_inputs), checks them, and stores
 * the whole geometry in the params: a planned strided copy (tn_copy_plan)
 * or the block sizes and loop counts of the row copies. run only copies.
 */
#include <stdlib.h>
#include <string.h>

#include "ops/tensor.h"

/* ---- Transpose ----------------------------------------------------------------- */

typedef struct transpose_params {
    int has_perm;
    int n;                      /* perm values */
    int perm_ok;                /* perm is a permutation of 0..n-1 */
    int64_t perm[ONR_MAX_RANK];
    tn_copy_plan plan;          /* reshape */
} transpose_params;

static int transpose_create(onr_create_ctx *c, void *params)
{
    transpose_params *p = params;
    if (!onr_node_attr(c->node, "perm")) return ONR_OK; /* reverse the axes */
    size_t n;
    const int64_t *v = onr_attr_ints(c->node, "perm", &n);
    if (n > ONR_MAX_RANK)
        return onr_seterr(c->err, ONR_E_MODEL, "perm has %zu values, at most %d", n,
                          ONR_MAX_RANK);
    uint8_t seen[ONR_MAX_RANK] = {0};
    p->has_perm = 1;
    p->n = (int)n;
    p->perm_ok = 1;
    for (size_t i = 0; i < n; i++) {
        p->perm[i] = v[i];
        if (v[i] < 0 || v[i] >= (int64_t)n || seen[v[i]]) p->perm_ok = 0;
        else seen[v[i]] = 1;
    }
    /* whether it fits the input is known in reshape, whose message names it */
    return ONR_OK;
}

static int transpose_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    transpose_params *p = ctx->params;
    int st = tn_check_data(ctx, 0, 21);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int r = x->rank, perm[ONR_MAX_RANK];
    if (p->has_perm && (!p->perm_ok || p->n != r)) {
        char b1[256], b2[256];
        return onr_seterr(ctx->err, ONR_E_MODEL, "perm %s is not a permutation of the axes of %s",
                          onr_fmt_dims(b1, sizeof b1, p->perm, p->n), TN_DIMS(b2, x));
    }
    for (int i = 0; i < r; i++) perm[i] = p->has_perm ? (int)p->perm[i] : r - 1 - i;
    int64_t istr[ONR_MAX_RANK] = {0}, dims[ONR_MAX_RANK], str[ONR_MAX_RANK];
    if (x->numel > 0) onr_strides(x->dims, r, istr); /* else never read */
    for (int i = 0; i < r; i++) {
        dims[i] = x->dims[perm[i]];
        str[i] = istr[perm[i]];
    }
    if ((st = onr_set_out(ctx, 0, x->dtype, r, dims))) return st;
    return tn_copy_plan_make(&p->plan, x->dtype, r, dims, str, 0, ctx->err);
}

static int transpose_run(const onr_kctx *ctx)
{
    const transpose_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    return tn_copy_plan_run(&p->plan, x->dtype, ctx->out[0]->data, x->data, ctx->nthreads,
                            ctx->err);
}

const onr_op_impl onr_impl_transpose = {.create = transpose_create, .reshape = transpose_reshape,
                                        .run = transpose_run,
                                        .params_size = sizeof(transpose_params),
                                        .types = ONR_TYPES_ALL | TN_TYPES_LOWP};

/* ---- Concat -------------------------------------------------------------------- */

typedef struct concat_params {
    int64_t axis_attr; /* as given: its range depends on the rank */
    int n;             /* inputs */
    int64_t *blk;      /* reshape: elements of input i per outer index (n, from create) */
    int axis;          /* reshape: normalized axis */
    int empty;
    int64_t outer, row; /* reshape: outer indices, output elements per outer index */
} concat_params;

static int concat_create(onr_create_ctx *c, void *params)
{
    concat_params *p = params;
    if (c->n_in < 1) return onr_seterr(c->err, ONR_E_MODEL, "Concat needs at least one input");
    const onr_attr *a = onr_attr_get(c->node, "axis", ONR_ATTR_INT);
    if (!a && c->opset >= 4) return onr_seterr(c->err, ONR_E_MODEL, "attribute 'axis' is missing");
    p->axis_attr = a ? a->i : 1; /* Concat-1 defaulted to 1 */
    p->n = c->n_in;
    if (!(p->blk = calloc((size_t)p->n, sizeof *p->blk)))
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
    return ONR_OK;
}

static void concat_destroy(void *params)
{
    concat_params *p = params;
    free(p->blk);
    p->blk = NULL;
}

static int concat_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    concat_params *p = ctx->params;
    for (int i = 0; i < ctx->n_in; i++) {
        int st = tn_check_data(ctx, i, 0);
        if (st) return st;
    }
    const onr_tensor *x0 = ctx->in[0];
    if (x0->rank == 0) return onr_seterr(ctx->err, ONR_E_MODEL, "cannot concatenate scalars");
    int axis, st = onr_norm_axis(ctx->err, p->axis_attr, x0->rank, &axis);
    if (st) return st;
    int64_t dims[ONR_MAX_RANK];
    memcpy(dims, x0->dims, sizeof dims);
    dims[axis] = 0;
    for (int i = 0; i < ctx->n_in; i++) {
        const onr_tensor *x = ctx->in[i];
        char b1[256], b2[256];
        if (x->dtype != x0->dtype)
            return onr_seterr(ctx->err, ONR_E_MODEL, "input %d is %s but input 0 is %s", i,
                              onr_dtype_name(x->dtype), onr_dtype_name(x0->dtype));
        int same = x->rank == x0->rank;
        for (int d = 0; same && d < x->rank; d++) same = d == axis || x->dims[d] == x0->dims[d];
        if (!same)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "input %d has shape %s, incompatible with input 0 %s on axis %d", i,
                              TN_DIMS(b1, x), TN_DIMS(b2, x0), axis);
        if (__builtin_add_overflow(dims[axis], x->dims[axis], &dims[axis]))
            return onr_seterr(ctx->err, ONR_E_NOMEM, "concatenated axis %d overflows", axis);
    }
    if ((st = onr_set_out(ctx, 0, x0->dtype, x0->rank, dims))) return st;
    p->axis = axis;
    p->empty = 0;
    for (int d = 0; d < x0->rank; d++) p->empty |= dims[d] == 0;
    if (p->empty) return ONR_OK; /* the products below could overflow */
    int64_t inner = tn_prod(dims, axis + 1, x0->rank);
    p->outer = tn_prod(dims, 0, axis);
    p->row = dims[axis] * inner;
    for (int i = 0; i < ctx->n_in; i++) p->blk[i] = ctx->in[i]->dims[axis] * inner;
    return ONR_OK;
}

static int concat_run(const onr_kctx *ctx)
{
    const concat_params *p = ctx->params;
    onr_tensor *y = ctx->out[0];
    if (p->empty) return ONR_OK;
    onr_dtype dt = y->dtype;
    size_t esz = tn_esz(dt);
    int64_t outer = p->outer, row = p->row;
    int fail = 0;
    /* one output row per outer index: the inputs' blocks side by side */
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) \
    if (dt != ONR_STRING && outer > 1 && outer * row > ONR_PAR_MIN) reduction(| : fail)
    for (int64_t o = 0; o < outer; o++) {
        char *dst = (char *)y->data + (size_t)(o * row) * esz;
        for (int i = 0; i < p->n; i++) {
            int64_t blk = p->blk[i];
            fail |= tn_copy(dt, dst, (const char *)ctx->in[i]->data + (size_t)(o * blk) * esz, blk);
            dst += (size_t)blk * esz;
        }
    }
    return fail ? onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory copying strings") : ONR_OK;
}

const onr_op_impl onr_impl_concat = {.create = concat_create, .reshape = concat_reshape,
                                     .run = concat_run, .destroy = concat_destroy,
                                     .params_size = sizeof(concat_params),
                                     .types = ONR_TYPES_ALL};

/* ---- Split --------------------------------------------------------------------- */

typedef struct split_params {
    int64_t axis_attr;     /* as given */
    int n;                 /* outputs */
    int64_t attr_n;        /* opset < 13: values of the split attribute, -1 when absent */
    int has_num_outputs;   /* opset >= 18 */
    int64_t *attr;         /* n values of the split attribute (when attr_n == n) */
    int64_t *sizes;        /* reshape: n part sizes along the axis */
    int axis;              /* reshape */
    int empty;             /* reshape: the input is empty, so is every output */
    int64_t outer, inner, row;
} split_params;

static int split_create(onr_create_ctx *c, void *params)
{
    split_params *p = params;
    int n = c->n_out;
    if (n < 1) return onr_seterr(c->err, ONR_E_MODEL, "Split needs at least one output");
    p->n = n;
    p->axis_attr = onr_attr_int(c->node, "axis", 0);
    p->attr_n = -1;
    if (!(p->attr = calloc(2 * (size_t)n, sizeof *p->attr)))
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
    p->sizes = p->attr + n;
    const onr_attr *a = c->opset < 13 ? onr_attr_get(c->node, "split", ONR_ATTR_INTS) : NULL;
    if (a) {
        /* opset 1 prefers a non-empty split input: the count is checked
         * when the attribute is used */
        if (c->opset >= 2 && a->n != (size_t)n)
            return onr_seterr(c->err, ONR_E_MODEL, "split has %lld values for %d outputs",
                              (long long)a->n, n);
        p->attr_n = (int64_t)a->n;
        for (int i = 0; i < n && i < p->attr_n; i++) {
            if (a->ints[i] < 0)
                return onr_seterr(c->err, ONR_E_MODEL, "split value %lld is invalid",
                                  (long long)a->ints[i]);
            p->attr[i] = a->ints[i];
        }
    }
    if (c->opset >= 18 && onr_node_attr(c->node, "num_outputs")) {
        int64_t no = onr_attr_int(c->node, "num_outputs", n);
        if (no != n)
            return onr_seterr(c->err, ONR_E_MODEL, "num_outputs is %lld but the node has %d outputs",
                              (long long)no, n);
        p->has_num_outputs = 1;
    }
    return ONR_OK;
}

static void split_destroy(void *params)
{
    split_params *p = params;
    free(p->attr);
    p->attr = p->sizes = NULL;
}

/* The part sizes from a list (the split input, or the attribute). */
static int split_list(onr_kctx *ctx, split_params *p, int64_t dim, int64_t count,
                      const onr_tensor *t)
{
    int n = p->n;
    if (p->has_num_outputs)
        return onr_seterr(ctx->err, ONR_E_MODEL, "both split and num_outputs are given");
    if (count != n)
        return onr_seterr(ctx->err, ONR_E_MODEL, "split has %lld values for %d outputs",
                          (long long)count, n);
    int64_t sum = 0;
    for (int i = 0; i < n; i++) {
        int64_t v = t ? tn_index_at(t, i) : p->attr[i];
        if (v < 0 || v > dim)
            return onr_seterr(ctx->err, ONR_E_MODEL, "split value %lld is invalid", (long long)v);
        p->sizes[i] = v;
        sum += v;
        if (sum > dim) break;
    }
    if (sum != dim)
        return onr_seterr(ctx->err, ONR_E_MODEL, "split sizes sum to %lld, dim %d is %lld",
                          (long long)sum, p->axis, (long long)dim);
    return ONR_OK;
}

/* Equal parts: they must divide before opset 18; from 18 the last part may
 * be smaller. */
static int split_chunks(onr_kctx *ctx, split_params *p, int64_t dim)
{
    int n = p->n;
    int64_t chunk;
    if (ctx->opset >= 18) {
        chunk = (dim + n - 1) / n;
    } else {
        if (dim % n)
            return onr_seterr(ctx->err, ONR_E_MODEL, "dim %lld of axis %d does not split evenly into %d",
                              (long long)dim, p->axis, n);
        chunk = dim / n;
    }
    if (dim - chunk * (n - 1) < 0)
        return onr_seterr(ctx->err, ONR_E_MODEL, "dim %lld of axis %d cannot give %d chunks of %lld",
                          (long long)dim, p->axis, n, (long long)chunk);
    for (int i = 0; i < n; i++) p->sizes[i] = i < n - 1 ? chunk : dim - chunk * (n - 1);
    return ONR_OK;
}

static int split_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    split_params *p = ctx->params;
    int st = tn_check_data(ctx, 0, 0);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (x->rank == 0) return onr_seterr(ctx->err, ONR_E_MODEL, "cannot split a scalar");
    if ((st = onr_norm_axis(ctx->err, p->axis_attr, x->rank, &p->axis))) return st;
    int64_t dim = x->dims[p->axis];
    /* an empty split input counts as absent, as exporters sometimes emit one */
    if ((ctx->opset >= 13 || ctx->opset == 1) && ctx->n_in > 1 && ctx->in[1] &&
        ctx->in[1]->numel > 0) {
        const onr_tensor *t = ctx->in[1];
        if ((st = onr_check_input(ctx, 1, ctx->opset >= 13 ? ONR_T(ONR_INT64)
                                                           : ONR_T(ONR_INT64) | ONR_T(ONR_INT32))))
            return st;
        if ((st = tn_need_data(ctx, 1))) return st;
        if (t->rank > 1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "split must be 1-D, has rank %d", t->rank);
        st = split_list(ctx, p, dim, t->numel, t);
    } else if (p->attr_n >= 0) {
        st = split_list(ctx, p, dim, p->attr_n, NULL);
    } else {
        st = split_chunks(ctx, p, dim);
    }
    if (st) return st;
    int64_t dims[ONR_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    for (int i = 0; i < p->n; i++) {
        dims[p->axis] = p->sizes[i];
        if ((st = onr_set_out(ctx, i, x->dtype, x->rank, dims))) return st;
    }
    p->empty = x->numel == 0;
    if (!p->empty) {
        p->outer = tn_prod(x->dims, 0, p->axis);
        p->inner = tn_prod(x->dims, p->axis + 1, x->rank);
        p->row = dim * p->inner;
    }
    return ONR_OK;
}

static int split_run(const onr_kctx *ctx)
{
    const split_params *p = ctx->params;
    if (p->empty) return ONR_OK; /* every output is empty too */
    const onr_tensor *x = ctx->in[0];
    size_t esz = tn_esz(x->dtype);
    int64_t outer = p->outer, row = p->row, off = 0;
    for (int i = 0; i < p->n; i++) {
        int64_t blk = p->sizes[i] * p->inner;
        onr_tensor *y = i < ctx->n_out ? ctx->out[i] : NULL;
        if (y) {
            int fail = 0;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) \
    if (x->dtype != ONR_STRING && outer > 1 && outer * blk > ONR_PAR_MIN) reduction(| : fail)
            for (int64_t o = 0; o < outer; o++)
                fail |= tn_copy(x->dtype, (char *)y->data + (size_t)(o * blk) * esz,
                                (const char *)x->data + (size_t)(o * row + off) * esz, blk);
            if (fail) return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory copying strings");
        }
        off += blk;
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_split = {.create = split_create, .reshape = split_reshape,
                                    .run = split_run, .destroy = split_destroy,
                                    .params_size = sizeof(split_params), .types = ONR_TYPES_ALL,
                                    .shape_inputs = 1u << 1};

/* ---- Slice --------------------------------------------------------------------- */

/* starts, ends, axes, steps: attributes before opset 10 (create), inputs
 * 1..4 after (reshape). */
enum { SL_STARTS, SL_ENDS, SL_AXES, SL_STEPS, SL_LISTS };
static const char *const slice_names[SL_LISTS] = {"starts", "ends", "axes", "steps"};

typedef struct slice_params {
    int attr;                            /* opset < 10 */
    int n[SL_LISTS], present[SL_LISTS];  /* attribute form */
    int64_t vals[SL_LISTS][ONR_MAX_RANK];
    tn_copy_plan plan;                   /* reshape */
} slice_params;

static int slice_check_lists(onr_err *err, const int *n, const int *present)
{
    if (!present[SL_STARTS] || !present[SL_ENDS])
        return onr_seterr(err, ONR_E_MODEL, "starts and ends are required");
    int ns = n[SL_STARTS];
    if (n[SL_ENDS] != ns || (present[SL_AXES] && n[SL_AXES] != ns) ||
        (present[SL_STEPS] && n[SL_STEPS] != ns))
        return onr_seterr(err, ONR_E_MODEL,
                          "starts, ends, axes and steps differ in length (%d, %d, %d, %d)", ns,
                          n[SL_ENDS], present[SL_AXES] ? n[SL_AXES] : ns,
                          present[SL_STEPS] ? n[SL_STEPS] : ns);
    return ONR_OK;
}

static int slice_create(onr_create_ctx *c, void *params)
{
    slice_params *p = params;
    if (c->opset >= 10) return ONR_OK;
    p->attr = 1;
    for (int k = 0; k < SL_LISTS; k++) {
        size_t cnt;
        const int64_t *v = onr_attr_ints(c->node, slice_names[k], &cnt);
        if (cnt > ONR_MAX_RANK)
            return onr_seterr(c->err, ONR_E_MODEL, "%s has %zu values, more than the rank",
                              slice_names[k], cnt);
        if (cnt) memcpy(p->vals[k], v, cnt * sizeof *v);
        p->n[k] = (int)cnt;
        p->present[k] = onr_node_attr(c->node, slice_names[k]) != NULL;
    }
    return slice_check_lists(c->err, p->n, p->present);
}

/* Clamp start/end the way the spec says and derive the output length. */
static void slice_axis(int64_t dim, int64_t s, int64_t e, int64_t step, int64_t *start,
                       int64_t *len)
{
    if (dim == 0) {
        *start = 0;
        *len = 0;
        return;
    }
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (step > 0) {
        s = s < 0 ? 0 : s > dim ? dim : s;
        e = e < 0 ? 0 : e > dim ? dim : e;
        *len = e > s ? (e - s - 1) / step + 1 : 0;
    } else {
        s = s < 0 ? 0 : s > dim - 1 ? dim - 1 : s;
        e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
        *len = s > e ? (s - e - 1) / (step == INT64_MIN ? INT64_MAX : -step) + 1 : 0;
    }
    *start = s;
}

static int slice_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    slice_params *p = ctx->params;
    int st = tn_check_data(ctx, 0, 0);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int64_t v[SL_LISTS][ONR_MAX_RANK];
    int n[SL_LISTS], present[SL_LISTS], axes[ONR_MAX_RANK];
    if (p->attr) {
        memcpy(v, p->vals, sizeof v);
        memcpy(n, p->n, sizeof n);
        memcpy(present, p->present, sizeof present);
    } else {
        for (int k = 0; k < SL_LISTS; k++) {
            int in = k + 1;
            if (in < ctx->n_in && ctx->in[in]) {
                if ((st = onr_check_input(ctx, in, ONR_T(ONR_INT64) | ONR_T(ONR_INT32))))
                    return st;
                if (ctx->in[in]->numel > ONR_MAX_RANK)
                    return onr_seterr(ctx->err, ONR_E_MODEL,
                                      "%s has %lld values, more than the rank", slice_names[k],
                                      (long long)ctx->in[in]->numel);
            }
            if ((st = tn_read_ints_opt(ctx, in, v[k], ONR_MAX_RANK, &n[k], &present[k])))
                return st;
        }
        if ((st = slice_check_lists(ctx->err, n, present))) return st;
    }
    int ns = n[SL_STARTS];
    if (!present[SL_AXES]) {
        if (ns > x->rank)
            return onr_seterr(ctx->err, ONR_E_MODEL, "%d starts for rank %d", ns, x->rank);
        for (int i = 0; i < ns; i++) v[SL_AXES][i] = i;
    }
    if ((st = tn_norm_axes(ctx->err, v[SL_AXES], ns, x->rank, axes, "axes"))) return st;
    int64_t istr[ONR_MAX_RANK] = {0}, start[ONR_MAX_RANK], step[ONR_MAX_RANK];
    int64_t dims[ONR_MAX_RANK], strides[ONR_MAX_RANK], offset = 0;
    if (x->numel > 0) onr_strides(x->dims, x->rank, istr);
    for (int d = 0; d < x->rank; d++) {
        start[d] = 0;
        step[d] = 1;
        dims[d] = x->dims[d];
    }
    for (int i = 0; i < ns; i++) {
        int d = axes[i];
        step[d] = present[SL_STEPS] ? v[SL_STEPS][i] : 1;
        if (step[d] == 0) return onr_seterr(ctx->err, ONR_E_MODEL, "step of axis %d is 0", d);
        slice_axis(x->dims[d], v[SL_STARTS][i], v[SL_ENDS][i], step[d], &start[d], &dims[d]);
    }
    for (int d = 0; d < x->rank; d++) {
        /* a step only matters (and cannot overflow) when it is taken */
        strides[d] = dims[d] > 1 ? istr[d] * step[d] : 0;
        offset += dims[d] > 0 ? start[d] * istr[d] : 0;
    }
    if ((st = onr_set_out(ctx, 0, x->dtype, x->rank, dims))) return st;
    return tn_copy_plan_make(&p->plan, x->dtype, x->rank, dims, strides, offset, ctx->err);
}

static int slice_run(const onr_kctx *ctx)
{
    const slice_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    return tn_copy_plan_run(&p->plan, x->dtype, ctx->out[0]->data, x->data, ctx->nthreads,
                            ctx->err);
}

const onr_op_impl onr_impl_slice = {.create = slice_create, .reshape = slice_reshape,
                                    .run = slice_run, .params_size = sizeof(slice_params),
                                    .types = ONR_TYPES_ALL,
                                    .shape_inputs = 1u << 1 | 1u << 2 | 1u << 3 | 1u << 4};

/* ---- Expand -------------------------------------------------------------------- */

typedef struct expand_params {
    tn_copy_plan plan; /* reshape */
} expand_params;

static int expand_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    expand_params *p = ctx->params;
    int st = tn_check_data(ctx, 0, 0);
    if (st || (st = onr_check_input(ctx, 1, ONR_T(ONR_INT64)))) return st;
    int64_t shp[ONR_MAX_RANK], dims[ONR_MAX_RANK], str[ONR_MAX_RANK] = {0};
    int n;
    if ((st = onr_read_ints(ctx, 1, shp, ONR_MAX_RANK, &n))) return st;
    const onr_tensor *x = ctx->in[0];
    int r = x->rank > n ? x->rank : n;
    char b1[256], b2[256];
    for (int i = 0; i < r; i++) {
        int ia = i - (r - x->rank), ib = i - (r - n);
        int64_t a = ia >= 0 ? x->dims[ia] : 1, b = ib >= 0 ? shp[ib] : 1;
        if (b < 0 || (a != b && a != 1 && b != 1))
            return onr_seterr(ctx->err, ONR_E_MODEL, "cannot expand %s to shape %s", TN_DIMS(b1, x),
                              onr_fmt_dims(b2, sizeof b2, shp, n));
        dims[i] = a == 1 ? b : a;
    }
    if ((st = onr_set_out(ctx, 0, x->dtype, r, dims))) return st;
    /* an empty input gives an empty output: its strides are never read */
    if (x->numel > 0) onr_bcast_strides(x->dims, x->rank, dims, r, str);
    return tn_copy_plan_make(&p->plan, x->dtype, r, dims, str, 0, ctx->err);
}

static int expand_run(const onr_kctx *ctx)
{
    const expand_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    return tn_copy_plan_run(&p->plan, x->dtype, ctx->out[0]->data, x->data, ctx->nthreads,
                            ctx->err);
}

const onr_op_impl onr_impl_expand = {.reshape = expand_reshape, .run = expand_run,
                                     .params_size = sizeof(expand_params),
                                     .types = ONR_TYPES_ALL, .shape_inputs = 1u << 1};

/* ---- Tile ---------------------------------------------------------------------- */

typedef struct tile_params {
    tn_copy_plan plan; /* reshape */
} tile_params;

/* Repeats per axis: input 1 (repeats), or for Tile-1 the scalar inputs
 * tiles (1) and axis (2). */
static int tile_reps(onr_kctx *ctx, int64_t *reps)
{
    int st = tn_check_data(ctx, 0, 0);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    for (int i = 0; i < x->rank; i++) reps[i] = 1;
    if (ctx->opset < 6) {
        double tiles, axis;
        int a;
        if ((st = tn_need_data(ctx, 1)) || (st = tn_need_data(ctx, 2))) return st;
        if ((st = onr_read_scalar(ctx, 1, &tiles)) || (st = onr_read_scalar(ctx, 2, &axis)))
            return st;
        if (!(axis >= -ONR_MAX_RANK && axis <= ONR_MAX_RANK))
            return onr_seterr(ctx->err, ONR_E_MODEL, "axis %g is out of range for rank %d", axis,
                              x->rank);
        if ((st = onr_norm_axis(ctx->err, (int64_t)axis, x->rank, &a))) return st;
        if (!(tiles >= 0 && tiles <= 1e15))
            return onr_seterr(ctx->err, ONR_E_MODEL, "tiles %g is invalid", tiles);
        reps[a] = (int64_t)tiles;
        return ONR_OK;
    }
    if ((st = onr_check_input(ctx, 1, ONR_T(ONR_INT64)))) return st;
    int64_t v[ONR_MAX_RANK];
    int n;
    if ((st = onr_read_ints(ctx, 1, v, ONR_MAX_RANK, &n))) return st;
    if (n != x->rank)
        return onr_seterr(ctx->err, ONR_E_MODEL, "repeats has %d values for rank %d", n, x->rank);
    for (int i = 0; i < n; i++) {
        if (v[i] < 0)
            return onr_seterr(ctx->err, ONR_E_MODEL, "repeats[%d] = %lld is negative", i,
                              (long long)v[i]);
        reps[i] = v[i];
    }
    return ONR_OK;
}

/* Tile is a strided copy over interleaved (repeat, dim) axes: the repeat
 * axis has source stride 0. */
static int tile_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    tile_params *p = ctx->params;
    int64_t reps[ONR_MAX_RANK], dims[ONR_MAX_RANK];
    int st = tile_reps(ctx, reps);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    for (int i = 0; i < x->rank; i++) {
        if (reps[i] > 0 && x->dims[i] > INT64_MAX / reps[i])
            return onr_seterr(ctx->err, ONR_E_NOMEM, "tiling dim %lld by %lld overflows",
                              (long long)x->dims[i], (long long)reps[i]);
        dims[i] = x->dims[i] * reps[i];
    }
    if ((st = onr_set_out(ctx, 0, x->dtype, x->rank, dims))) return st;
    int64_t istr[ONR_MAX_RANK] = {0}, d2[TN_MAX_DIMS], s2[TN_MAX_DIMS];
    if (x->numel > 0) onr_strides(x->dims, x->rank, istr); /* else the copy is empty */
    for (int i = 0; i < x->rank; i++) {
        d2[2 * i] = reps[i];
        s2[2 * i] = 0;
        d2[2 * i + 1] = x->dims[i];
        s2[2 * i + 1] = istr[i];
    }
    return tn_copy_plan_make(&p->plan, x->dtype, 2 * x->rank, d2, s2, 0, ctx->err);
}

static int tile_run(const onr_kctx *ctx)
{
    const tile_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    return tn_copy_plan_run(&p->plan, x->dtype, ctx->out[0]->data, x->data, ctx->nthreads,
                            ctx->err);
}

const onr_op_impl onr_impl_tile = {.reshape = tile_reshape, .run = tile_run,
                                   .params_size = sizeof(tile_params), .types = ONR_TYPES_ALL,
                                   .shape_inputs = 1u << 1 | 1u << 2};

/* ---- Pad ----------------------------------------------------------------------- */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };
static const char *const pad_mode_names[] = {"constant", "reflect", "edge", "wrap"};

typedef struct pad_params {
    int mode;
    int attr;                         /* opset < 11: pads and value are attributes */
    int np;
    int64_t pads[2 * ONR_MAX_RANK];   /* attribute form */
    float value;                      /* attribute form */
    /* reshape */
    int64_t before[ONR_MAX_RANK], after[ONR_MAX_RANK];
    int64_t dims[ONR_MAX_RANK];       /* output dims */
    int64_t istr[ONR_MAX_RANK];       /* input strides (0 for an empty input) */
    int64_t rows;                     /* output rows (the last axis) */
    uint64_t cval;                    /* constant value bits from the attribute */
    int cinput;                       /* constant_value input given: run reads it */
} pad_params;

static int pad_create(onr_create_ctx *c, void *params)
{
    static const int since[] = {1, 1, 1, 19};
    pad_params *p = params;
    const char *s = onr_attr_string(c->node, "mode", "constant");
    p->mode = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(s, pad_mode_names[i]) == 0 && c->opset >= since[i]) p->mode = i;
    if (p->mode < 0)
        return onr_seterr(c->err, ONR_E_MODEL, "pad mode '%s' is not valid at opset %lld", s,
                          (long long)c->opset);
    if (c->opset >= 11) return ONR_OK;
    const char *name = c->opset < 2 ? "paddings" : "pads";
    size_t cnt;
    const int64_t *v = onr_attr_ints(c->node, name, &cnt);
    if (!onr_node_attr(c->node, name))
        return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' is missing", name);
    if (cnt > 2 * ONR_MAX_RANK || cnt % 2)
        return onr_seterr(c->err, ONR_E_MODEL, "%s has %zu values, not two per axis", name, cnt);
    if (cnt) memcpy(p->pads, v, cnt * sizeof *p->pads);
    p->np = (int)cnt;
    p->value = onr_attr_float(c->node, "value", 0.f);
    p->attr = 1;
    return ONR_OK;
}

static int pad_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    pad_params *p = ctx->params;
    int st = tn_check_data(ctx, 0, 21);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int r = x->rank;
    int64_t pads[2 * ONR_MAX_RANK], av[ONR_MAX_RANK];
    int np, na = r, axes[ONR_MAX_RANK];
    for (int i = 0; i < r; i++) axes[i] = i;
    if (p->attr) {
        memcpy(pads, p->pads, sizeof pads);
        np = p->np;
    } else {
        if ((st = onr_check_input(ctx, 1, ONR_T(ONR_INT64)))) return st;
        if ((st = onr_read_ints(ctx, 1, pads, 2 * ONR_MAX_RANK, &np))) return st;
        int pa = 0;
        if (ctx->opset >= 18 && ctx->n_in > 3 && ctx->in[3]) {
            if ((st = onr_check_input(ctx, 3, ONR_T(ONR_INT64) | ONR_T(ONR_INT32)))) return st;
            if ((st = tn_read_ints_opt(ctx, 3, av, ONR_MAX_RANK, &na, &pa))) return st;
            if ((st = tn_norm_axes(ctx->err, av, na, r, axes, "axes"))) return st;
        }
    }
    if (np != 2 * na)
        return onr_seterr(ctx->err, ONR_E_MODEL, "pads has %d values for %d axes", np, na);
    char b[256];
    for (int i = 0; i < r; i++) p->before[i] = p->after[i] = 0;
    for (int i = 0; i < na; i++) {
        p->before[axes[i]] = pads[i];
        p->after[axes[i]] = pads[na + i];
    }
    for (int i = 0; i < r; i++) {
        int64_t d = x->dims[i], lo = p->before[i], hi = p->after[i];
        /* |pads| beyond the size limit would only overflow below */
        if (lo > (1ll << 50) || hi > (1ll << 50) || lo < -d || hi < -d || lo + hi + d < 0)
            return onr_seterr(ctx->err, ONR_E_MODEL, "pads %lld, %lld are invalid for dim %d of %s",
                              (long long)lo, (long long)hi, i, TN_DIMS(b, x));
        p->dims[i] = d + lo + hi;
        if (p->mode != PAD_CONSTANT && d == 0 && p->dims[i] > 0)
            return onr_seterr(ctx->err, ONR_E_MODEL, "cannot pad the empty axis %d of %s in mode %s",
                              i, TN_DIMS(b, x), pad_mode_names[p->mode]);
    }
    /* the constant: attribute `value` (float) before opset 11, else input 2,
     * whose value run reads (it does not change the shape) */
    p->cval = 0;
    p->cinput = 0;
    if (p->attr) {
        onr_tensor t = {.dtype = x->dtype, .data = &p->cval};
        if (x->dtype != ONR_STRING) onr_set_f64(&t, 0, p->value);
    } else if (ctx->n_in > 2 && ctx->in[2] && ctx->in[2]->numel > 0) {
        const onr_tensor *c = ctx->in[2];
        if (c->dtype != x->dtype)
            return onr_seterr(ctx->err, ONR_E_MODEL, "constant_value is %s but data is %s",
                              onr_dtype_name(c->dtype), onr_dtype_name(x->dtype));
        p->cinput = 1;
    }
    if ((st = onr_set_out(ctx, 0, x->dtype, r, p->dims))) return st;
    memset(p->istr, 0, sizeof p->istr); /* an empty input is never read */
    if (x->numel > 0) onr_strides(x->dims, r, p->istr);
    int empty = 0;
    for (int i = 0; i < r; i++) empty |= p->dims[i] == 0;
    p->rows = r > 0 && !empty ? tn_prod(p->dims, 0, r - 1) : 0;
    return ONR_OK;
}

/* Source index of padded index i along an axis of size d; -1 = constant. */
static int64_t pad_map(int mode, int64_t i, int64_t d)
{
    if (i >= 0 && i < d) return i;
    switch (mode) {
    case PAD_EDGE: return i < 0 ? 0 : d - 1;
    case PAD_WRAP: {
        int64_t m = i % d;
        return m < 0 ? m + d : m;
    }
    case PAD_REFLECT: {
        if (d == 1) return 0;
        int64_t per = 2 * (d - 1), m = i % per;
        if (m < 0) m += per;
        return m >= d ? per - m : m;
    }
    default: return -1;
    }
}

/* One output row (the last axis) whose source row starts at src (NULL: the
 * whole row is the constant cv). */
static int pad_row(const pad_params *p, onr_dtype dt, int r, int64_t d, const void *cv, char *dst,
                   const char *src)
{
    size_t esz = tn_esz(dt);
    int64_t L = p->dims[r - 1], lo = p->before[r - 1];
    if (!src) return tn_fill(dt, dst, cv, L);
    int64_t m0 = lo > 0 ? lo : 0, m1 = lo + d < L ? lo + d : L; /* copied part [m0, m1) */
    if (m1 < m0) m1 = m0;
    int st = tn_copy(dt, dst + (size_t)m0 * esz, src + (size_t)(m0 - lo) * esz, m1 - m0);
    if (p->mode == PAD_CONSTANT)
        return st | tn_fill(dt, dst, cv, m0) |
               tn_fill(dt, dst + (size_t)m1 * esz, cv, L - m1);
    for (int64_t j = 0; j < L && !st; j++) {
        if (j == m0) j = m1;
        if (j >= L) break;
        st = tn_copy(dt, dst + (size_t)j * esz, src + (size_t)pad_map(p->mode, j - lo, d) * esz, 1);
    }
    return st;
}

static int pad_run(const onr_kctx *ctx)
{
    const pad_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    onr_dtype dt = x->dtype;
    int r = x->rank;
    uint64_t cval = p->cval;
    const char *cstr = "";
    if (p->cinput) {
        const onr_tensor *c = ctx->in[2];
        if (!c->data) return tn_nodefer(ctx, ONR_SHAPE_DEFER);
        if (dt == ONR_STRING)
            cstr = ((char *const *)c->data)[0] ? ((char *const *)c->data)[0] : "";
        else
            memcpy(&cval, c->data, onr_dtype_size(dt));
    }
    const void *cv = dt == ONR_STRING ? (const void *)&cstr : (const void *)&cval;
    if (r == 0) return tn_copy(dt, y->data, x->data, 1);
    if (p->rows == 0) return ONR_OK;
    size_t esz = tn_esz(dt);
    int64_t rows = p->rows, L = p->dims[r - 1];
    int fail = 0;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) \
    if (dt != ONR_STRING && rows * L > ONR_PAR_MIN && rows > 1) reduction(| : fail)
    for (int64_t q = 0; q < rows; q++) {
        /* map the row's outer coordinates to the source row */
        int64_t rem = q, soff = 0;
        int constant = 0;
        for (int k = r - 2; k >= 0; k--) {
            int64_t o = rem % p->dims[k];
            rem /= p->dims[k];
            int64_t i = pad_map(p->mode, o - p->before[k], x->dims[k]);
            if (i < 0) constant = 1;
            else soff += i * p->istr[k];
        }
        const char *src = constant ? NULL : (const char *)x->data + (size_t)soff * esz;
        fail |= pad_row(p, dt, r, x->dims[r - 1], cv, (char *)y->data + (size_t)(q * L) * esz,
                        src);
    }
    return fail ? onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory copying strings") : ONR_OK;
}

const onr_op_impl onr_impl_pad = {.create = pad_create, .reshape = pad_reshape, .run = pad_run,
                                  .params_size = sizeof(pad_params),
                                  .types = ONR_TYPES_ALL | TN_TYPES_LOWP,
                                  .shape_inputs = 1u << 1 | 1u << 3};

/* ---- ReverseSequence ------------------------------------------------------------ */

typedef struct revseq_params {
    int batch, time;          /* (1, 0) or (0, 1) */
    int empty;                /* reshape */
    int64_t B, T, inner, bstr, tstr;
} revseq_params;

static int revseq_create(onr_create_ctx *c, void *params)
{
    revseq_params *p = params;
    int64_t b = onr_attr_int(c->node, "batch_axis", 1), t = onr_attr_int(c->node, "time_axis", 0);
    if (!((b == 0 && t == 1) || (b == 1 && t == 0)))
        return onr_seterr(c->err, ONR_E_MODEL, "batch_axis %lld / time_axis %lld are invalid",
                          (long long)b, (long long)t);
    p->batch = (int)b;
    p->time = (int)t;
    return ONR_OK;
}

static int revseq_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    revseq_params *p = ctx->params;
    int st = tn_check_data(ctx, 0, 0);
    if (st || (st = onr_check_input(ctx, 1, ONR_T(ONR_INT64)))) return st;
    const onr_tensor *x = ctx->in[0], *lens = ctx->in[1];
    char b1[256], b2[256];
    if (x->rank < 2)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "batch_axis %d / time_axis %d are invalid for input %s", p->batch,
                          p->time, TN_DIMS(b1, x));
    if (lens->rank != 1 || lens->dims[0] != x->dims[p->batch])
        return onr_seterr(ctx->err, ONR_E_MODEL, "sequence_lens %s does not match batch of %s",
                          TN_DIMS(b1, lens), TN_DIMS(b2, x));
    if ((st = onr_set_out_like(ctx, 0, 0))) return st;
    p->empty = x->numel == 0;
    if (p->empty) return ONR_OK; /* the products below could overflow */
    p->B = x->dims[p->batch];
    p->T = x->dims[p->time];
    p->inner = tn_prod(x->dims, 2, x->rank);
    p->bstr = (p->batch == 0 ? p->T : 1) * p->inner;
    p->tstr = (p->time == 0 ? p->B : 1) * p->inner;
    return ONR_OK;
}

/* sequence_lens is data: run checks its values. */
static int revseq_run(const onr_kctx *ctx)
{
    const revseq_params *p = ctx->params;
    if (p->empty) return ONR_OK;
    const onr_tensor *x = ctx->in[0];
    const int64_t *lens = ctx->in[1]->data;
    int64_t B = p->B, T = p->T, inner = p->inner, bstr = p->bstr, tstr = p->tstr;
    size_t esz = tn_esz(x->dtype);
    for (int64_t i = 0; i < B; i++)
        if (lens[i] < 0 || lens[i] > T)
            return onr_seterr(ctx->err, ONR_E_MODEL, "sequence_lens[%lld] = %lld is outside [0, %lld]",
                              (long long)i, (long long)lens[i], (long long)T);
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < T; j++) {
            int64_t src = j < lens[i] ? lens[i] - 1 - j : j;
            if (tn_copy(x->dtype, (char *)ctx->out[0]->data + (size_t)(i * bstr + j * tstr) * esz,
                        (const char *)x->data + (size_t)(i * bstr + src * tstr) * esz, inner))
                return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory copying strings");
        }
    return ONR_OK;
}

const onr_op_impl onr_impl_reversesequence = {.create = revseq_create, .reshape = revseq_reshape,
                                              .run = revseq_run,
                                              .params_size = sizeof(revseq_params),
                                              .types = ONR_TYPES_ALL};

/* ---- DepthToSpace, SpaceToDepth --------------------------------------------------- */

/* Both are a reshape to 6-D, a transpose and a reshape back: one strided copy
 * whose output is viewed as 6-D with the source strides permuted. */
typedef struct d2s_params {
    int to_space; /* DepthToSpace */
    int crd;      /* DepthToSpace mode CRD (else DCR) */
    int64_t b;    /* blocksize */
    tn_copy_plan plan; /* reshape */
} d2s_params;

#define D2S_MAX_BLOCK (1 << 20)

static int d2s_create_common(onr_create_ctx *c, d2s_params *p, int to_space)
{
    p->to_space = to_space;
    p->b = onr_attr_int(c->node, "blocksize", 0);
    if (p->b < 1 || p->b > D2S_MAX_BLOCK)
        return onr_seterr(c->err, ONR_E_MODEL, "blocksize %lld is invalid (need 1 to %d)",
                          (long long)p->b, D2S_MAX_BLOCK);
    if (!to_space) return ONR_OK;
    const char *mode = onr_attr_string(c->node, "mode", "DCR");
    p->crd = strcmp(mode, "CRD") == 0;
    if ((!p->crd && strcmp(mode, "DCR") != 0) || (p->crd && c->opset < 11))
        return onr_seterr(c->err, ONR_E_MODEL, "mode '%s' is not valid", mode);
    return ONR_OK;
}

static int d2s_create(onr_create_ctx *c, void *params) { return d2s_create_common(c, params, 1); }
static int s2d_create(onr_create_ctx *c, void *params) { return d2s_create_common(c, params, 0); }

static int d2s_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    d2s_params *p = ctx->params;
    int st = tn_check_data(ctx, 0, 0);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int64_t b = p->b, out[4], dims[6], str[6];
    char buf[256];
    if (x->rank != 4)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input %s / blocksize %lld: need 4-D input and blocksize >= 1",
                          TN_DIMS(buf, x), (long long)b);
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    /* zero-size inputs may carry huge dims; keep every product in range */
    int64_t lim = INT64_MAX / (b * b);
    if (C > lim || H > lim || W > lim)
        return onr_seterr(ctx->err, ONR_E_NOMEM, "input %s is too large for blocksize %lld",
                          TN_DIMS(buf, x), (long long)b);
    if (p->to_space) {
        int crd = p->crd;
        if (C % (b * b))
            return onr_seterr(ctx->err, ONR_E_MODEL, "channels of %s do not divide by blocksize^2 = %lld",
                              TN_DIMS(buf, x), (long long)(b * b));
        int64_t c = C / (b * b), HW = H * W;
        /* source: DCR [N, b1, b2, c, H, W]; CRD [N, c, b1, b2, H, W] -> [N, c, H, b1, W, b2] */
        if (x->numel == 0) HW = 0; /* strides unused; keep them from overflowing */
        int64_t s_b1 = crd ? b * HW : b * c * HW, s_b2 = crd ? HW : c * HW, s_c = crd ? b * b * HW : HW;
        const int64_t d6[6] = {N, c, H, b, W, b}, s6[6] = {C * HW, s_c, W, s_b1, 1, s_b2};
        memcpy(dims, d6, sizeof dims);
        memcpy(str, s6, sizeof str);
        out[0] = N, out[1] = c, out[2] = H * b, out[3] = W * b;
    } else {
        if (H % b || W % b)
            return onr_seterr(ctx->err, ONR_E_MODEL, "height and width of %s do not divide by blocksize %lld",
                              TN_DIMS(buf, x), (long long)b);
        int64_t h = H / b, w = W / b;
        /* source [N, C, h, b1, w, b2] -> [N, b1, b2, C, h, w] */
        int64_t HW = x->numel > 0 ? H * W : 0;
        const int64_t d6[6] = {N, b, b, C, h, w}, s6[6] = {C * HW, W, 1, HW, b * W, b};
        memcpy(dims, d6, sizeof dims);
        memcpy(str, s6, sizeof str);
        out[0] = N, out[1] = C * b * b, out[2] = h, out[3] = w;
    }
    if ((st = onr_set_out(ctx, 0, x->dtype, 4, out))) return st;
    return tn_copy_plan_make(&p->plan, x->dtype, 6, dims, str, 0, ctx->err);
}

static int d2s_run(const onr_kctx *ctx)
{
    const d2s_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    return tn_copy_plan_run(&p->plan, x->dtype, ctx->out[0]->data, x->data, ctx->nthreads,
                            ctx->err);
}

const onr_op_impl onr_impl_depthtospace = {.create = d2s_create, .reshape = d2s_reshape,
                                           .run = d2s_run, .params_size = sizeof(d2s_params),
                                           .types = ONR_TYPES_ALL};
const onr_op_impl onr_impl_spacetodepth = {.create = s2d_create, .reshape = d2s_reshape,
                                           .run = d2s_run, .params_size = sizeof(d2s_params),
                                           .types = ONR_TYPES_ALL};
