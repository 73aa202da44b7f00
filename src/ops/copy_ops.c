/*
 * copy_ops.c - operators that rearrange elements: Transpose, Concat, Split,
 * Slice, Expand, Tile, Pad and ReverseSequence.
 *
 * They never look at element values, so every dtype of one size shares one
 * code path; STRING goes through tn_copy, which duplicates strings. Ops whose
 * output shape depends on input values (Slice, Split, Expand, Tile, Pad)
 * compute their parameters in one function that both the shape fn and the
 * run fn call, and run checks the output still has the shape it implies.
 */
#include <stdlib.h>
#include <string.h>

#include "ops/tensor.h"

/* ---- Transpose ----------------------------------------------------------------- */

static int transpose_perm(onr_kctx *ctx, int rank, int *perm)
{
    size_t n;
    const int64_t *p = onr_attr_ints(ctx->node, "perm", &n);
    if (!onr_node_attr(ctx->node, "perm")) {
        for (int i = 0; i < rank; i++) perm[i] = rank - 1 - i;
        return ONR_OK;
    }
    uint8_t seen[ONR_MAX_RANK] = {0};
    int ok = n == (size_t)rank;
    for (size_t i = 0; ok && i < n; i++) {
        ok = p[i] >= 0 && p[i] < rank && !seen[p[i]];
        if (ok) {
            seen[p[i]] = 1;
            perm[i] = (int)p[i];
        }
    }
    if (ok) return ONR_OK;
    char b1[256], b2[256];
    return onr_seterr(ctx->err, ONR_E_MODEL, "perm %s is not a permutation of the axes of %s",
                      onr_fmt_dims(b1, sizeof b1, p, (int)(n < 64 ? n : 64)),
                      TN_DIMS(b2, ctx->in[0]));
}

static int transpose_shape(onr_kctx *ctx)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int perm[ONR_MAX_RANK];
    if ((st = transpose_perm(ctx, x->rank, perm))) return st;
    int64_t dims[ONR_MAX_RANK];
    for (int i = 0; i < x->rank; i++) dims[i] = x->dims[perm[i]];
    return onr_set_out(ctx, 0, x->dtype, x->rank, dims);
}

static int transpose_run(onr_kctx *ctx)
{
    const onr_tensor *x = ctx->in[0];
    int perm[ONR_MAX_RANK];
    int st = transpose_perm(ctx, x->rank, perm);
    if (st) return st;
    int64_t istr[ONR_MAX_RANK], dims[ONR_MAX_RANK], str[ONR_MAX_RANK];
    for (int i = 0; i < x->rank; i++) dims[i] = x->dims[perm[i]];
    if ((st = tn_check_out(ctx, 0, x->rank, dims))) return st;
    if (x->numel == 0) return ONR_OK;
    onr_strides(x->dims, x->rank, istr);
    for (int i = 0; i < x->rank; i++) str[i] = istr[perm[i]];
    return tn_strided_copy(ctx, x->dtype, ctx->out[0]->data, x->data, x->rank, dims, str, 0);
}

const onr_op_impl onr_impl_transpose = {.shape = transpose_shape, .run = transpose_run,
                                        .types = ONR_TYPES_ALL};

/* ---- Concat -------------------------------------------------------------------- */

static int concat_axis(onr_kctx *ctx, int *axis)
{
    if (ctx->n_in < 1) return onr_seterr(ctx->err, ONR_E_MODEL, "Concat needs at least one input");
    for (int i = 0; i < ctx->n_in; i++) {
        int st = onr_check_input(ctx, i, ONR_TYPES_ALL);
        if (st) return st;
    }
    const onr_attr *a = onr_node_attr(ctx->node, "axis");
    if (!a && ctx->opset >= 4) return onr_seterr(ctx->err, ONR_E_MODEL, "attribute 'axis' is missing");
    int64_t ax = a ? a->i : 1; /* Concat-1 defaulted to 1 */
    int rank = ctx->in[0]->rank;
    if (rank == 0) return onr_seterr(ctx->err, ONR_E_MODEL, "cannot concatenate scalars");
    return onr_norm_axis(ctx->err, ax, rank, axis);
}

static int concat_dims(onr_kctx *ctx, int *axis, int64_t *dims)
{
    int st = concat_axis(ctx, axis);
    if (st) return st;
    const onr_tensor *x0 = ctx->in[0];
    memcpy(dims, x0->dims, sizeof(int64_t) * ONR_MAX_RANK);
    dims[*axis] = 0;
    for (int i = 0; i < ctx->n_in; i++) {
        const onr_tensor *x = ctx->in[i];
        char b1[256], b2[256];
        if (x->dtype != x0->dtype)
            return onr_seterr(ctx->err, ONR_E_MODEL, "input %d is %s but input 0 is %s", i,
                              onr_dtype_name(x->dtype), onr_dtype_name(x0->dtype));
        int same = x->rank == x0->rank;
        for (int d = 0; same && d < x->rank; d++) same = d == *axis || x->dims[d] == x0->dims[d];
        if (!same)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "input %d has shape %s, incompatible with input 0 %s on axis %d", i,
                              TN_DIMS(b1, x), TN_DIMS(b2, x0), *axis);
        if (__builtin_add_overflow(dims[*axis], x->dims[*axis], &dims[*axis]))
            return onr_seterr(ctx->err, ONR_E_NOMEM, "concatenated axis %d overflows", *axis);
    }
    return ONR_OK;
}

static int concat_shape(onr_kctx *ctx)
{
    int64_t dims[ONR_MAX_RANK];
    int axis, st = concat_dims(ctx, &axis, dims);
    return st ? st : onr_set_out(ctx, 0, ctx->in[0]->dtype, ctx->in[0]->rank, dims);
}

static int concat_run(onr_kctx *ctx)
{
    int64_t dims[ONR_MAX_RANK];
    int axis, st = concat_dims(ctx, &axis, dims);
    if (st || (st = tn_check_out(ctx, 0, ctx->in[0]->rank, dims))) return st;
    onr_tensor *y = ctx->out[0];
    if (y->numel == 0) return ONR_OK;
    onr_dtype dt = y->dtype;
    size_t esz = tn_esz(dt);
    int64_t outer = tn_prod(y->dims, 0, axis), inner = tn_prod(y->dims, axis + 1, y->rank);
    int64_t row = y->dims[axis] * inner;
    int fail = 0;
    /* one output row per outer index: the inputs' blocks side by side */
#pragma omp parallel for num_threads(ctx->nthreads) \
    if (dt != ONR_STRING && outer > 1 && outer * row > ONR_PAR_MIN) reduction(| : fail)
    for (int64_t o = 0; o < outer; o++) {
        char *dst = (char *)y->data + (size_t)(o * row) * esz;
        for (int i = 0; i < ctx->n_in; i++) {
            const onr_tensor *x = ctx->in[i];
            int64_t blk = x->dims[axis] * inner;
            fail |= tn_copy(dt, dst, (const char *)x->data + (size_t)(o * blk) * esz, blk);
            dst += (size_t)blk * esz;
        }
    }
    return fail ? onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory copying strings") : ONR_OK;
}

const onr_op_impl onr_impl_concat = {.shape = concat_shape, .run = concat_run,
                                     .types = ONR_TYPES_ALL};

/* ---- Split --------------------------------------------------------------------- */

/* Where the sizes come from: a list (attribute or input), or equal chunks. */
typedef struct split_p {
    int axis;
    int64_t dim;
    const int64_t *list; /* attribute list or int64 input data */
    const onr_tensor *list_t;
    int64_t chunk;       /* equal chunks: all but the last have this size */
} split_p;

static int64_t split_size(const split_p *p, int i, int n)
{
    if (p->list) return p->list[i];
    if (p->list_t) return tn_index_at(p->list_t, i);
    return i < n - 1 ? p->chunk : p->dim - p->chunk * (n - 1);
}

static int split_params(onr_kctx *ctx, split_p *p)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int n = ctx->n_out;
    memset(p, 0, sizeof *p);
    if (x->rank == 0) return onr_seterr(ctx->err, ONR_E_MODEL, "cannot split a scalar");
    if (n < 1) return onr_seterr(ctx->err, ONR_E_MODEL, "Split needs at least one output");
    if ((st = onr_norm_axis(ctx->err, onr_attr_int(ctx->node, "axis", 0), x->rank, &p->axis))) return st;
    p->dim = x->dims[p->axis];
    int64_t count = -1;
    const onr_attr *a = onr_node_attr(ctx->node, "split");
    /* an empty split input counts as absent, as exporters sometimes emit one */
    if ((ctx->opset >= 13 || ctx->opset == 1) && ctx->n_in > 1 && ctx->in[1] &&
        ctx->in[1]->numel > 0) {
        if ((st = onr_check_input(ctx, 1, ctx->opset >= 13 ? ONR_T(ONR_INT64)
                                                           : ONR_T(ONR_INT64) | ONR_T(ONR_INT32))))
            return st;
        if ((st = tn_need_data(ctx, 1))) return st;
        p->list_t = ctx->in[1];
        count = ctx->in[1]->numel;
        if (ctx->in[1]->rank > 1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "split must be 1-D, has rank %d",
                              ctx->in[1]->rank);
    } else if (ctx->opset < 13 && a && a->type == ONR_ATTR_INTS) {
        p->list = a->ints;
        count = (int64_t)a->n;
    }
    if (count >= 0) {
        if (ctx->opset >= 18 && onr_node_attr(ctx->node, "num_outputs"))
            return onr_seterr(ctx->err, ONR_E_MODEL, "both split and num_outputs are given");
        if (count != n)
            return onr_seterr(ctx->err, ONR_E_MODEL, "split has %lld values for %d outputs",
                              (long long)count, n);
        int64_t sum = 0;
        for (int i = 0; i < n; i++) {
            int64_t v = split_size(p, i, n);
            if (v < 0 || v > p->dim)
                return onr_seterr(ctx->err, ONR_E_MODEL, "split value %lld is invalid", (long long)v);
            sum += v;
            if (sum > p->dim) break;
        }
        if (sum != p->dim)
            return onr_seterr(ctx->err, ONR_E_MODEL, "split sizes sum to %lld, dim %d is %lld",
                              (long long)sum, p->axis, (long long)p->dim);
        return ONR_OK;
    }
    if (ctx->opset >= 18) {
        int64_t no = onr_attr_int(ctx->node, "num_outputs", n);
        if (no != n)
            return onr_seterr(ctx->err, ONR_E_MODEL, "num_outputs is %lld but the node has %d outputs",
                              (long long)no, n);
        p->chunk = (p->dim + n - 1) / n; /* the last chunk may be smaller */
    } else {
        if (p->dim % n)
            return onr_seterr(ctx->err, ONR_E_MODEL, "dim %lld of axis %d does not split evenly into %d",
                              (long long)p->dim, p->axis, n);
        p->chunk = p->dim / n;
    }
    if (p->dim - p->chunk * (n - 1) < 0)
        return onr_seterr(ctx->err, ONR_E_MODEL, "dim %lld of axis %d cannot give %d chunks of %lld",
                          (long long)p->dim, p->axis, n, (long long)p->chunk);
    return ONR_OK;
}

static int split_shape(onr_kctx *ctx)
{
    split_p p;
    int st = split_params(ctx, &p);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int64_t dims[ONR_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    for (int i = 0; i < ctx->n_out; i++) {
        dims[p.axis] = split_size(&p, i, ctx->n_out);
        if ((st = onr_set_out(ctx, i, x->dtype, x->rank, dims))) return st;
    }
    return ONR_OK;
}

static int split_run(onr_kctx *ctx)
{
    split_p p;
    int st = split_params(ctx, &p);
    if (st) return tn_nodefer(ctx, st);
    const onr_tensor *x = ctx->in[0];
    if (x->numel == 0) return ONR_OK; /* every output is empty too */
    size_t esz = tn_esz(x->dtype);
    int64_t outer = tn_prod(x->dims, 0, p.axis), inner = tn_prod(x->dims, p.axis + 1, x->rank);
    int64_t row = p.dim * inner, off = 0;
    int64_t dims[ONR_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    for (int i = 0; i < ctx->n_out; i++) {
        int64_t blk = split_size(&p, i, ctx->n_out) * inner;
        onr_tensor *y = ctx->out[i];
        if (y) {
            dims[p.axis] = split_size(&p, i, ctx->n_out);
            if ((st = tn_check_out(ctx, i, x->rank, dims))) return st;
            int fail = 0;
#pragma omp parallel for num_threads(ctx->nthreads) \
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

const onr_op_impl onr_impl_split = {.shape = split_shape, .run = split_run,
                                    .types = ONR_TYPES_ALL};

/* ---- Slice --------------------------------------------------------------------- */

typedef struct slice_p {
    int64_t dims[ONR_MAX_RANK];    /* output dims */
    int64_t strides[ONR_MAX_RANK]; /* source strides, times the step */
    int64_t offset;                /* source element of output index 0 */
} slice_p;

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

/* One of starts/ends/axes/steps: attribute (opset < 10) or input. */
static int slice_list(onr_kctx *ctx, const char *name, int input, int64_t *vals, int *n,
                      int *present)
{
    if (ctx->opset < 10) {
        size_t cnt;
        const int64_t *v = onr_attr_ints(ctx->node, name, &cnt);
        *present = onr_node_attr(ctx->node, name) != NULL;
        if (cnt > ONR_MAX_RANK)
            return onr_seterr(ctx->err, ONR_E_MODEL, "%s has %zu values, more than the rank", name,
                              cnt);
        if (cnt) memcpy(vals, v, cnt * sizeof *vals);
        *n = (int)cnt;
        return ONR_OK;
    }
    if (input < ctx->n_in && ctx->in[input]) {
        int st = onr_check_input(ctx, input, ONR_T(ONR_INT64) | ONR_T(ONR_INT32));
        if (st) return st;
        if (ctx->in[input]->numel > ONR_MAX_RANK)
            return onr_seterr(ctx->err, ONR_E_MODEL, "%s has %lld values, more than the rank",
                              name, (long long)ctx->in[input]->numel);
    }
    return tn_read_ints_opt(ctx, input, vals, ONR_MAX_RANK, n, present);
}

static int slice_params(onr_kctx *ctx, slice_p *p)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int64_t starts[ONR_MAX_RANK], ends[ONR_MAX_RANK], avals[ONR_MAX_RANK], steps[ONR_MAX_RANK];
    int ns, ne, na, nst, ps, pe, pa, pst, axes[ONR_MAX_RANK];
    if ((st = slice_list(ctx, "starts", 1, starts, &ns, &ps)) ||
        (st = slice_list(ctx, "ends", 2, ends, &ne, &pe)) ||
        (st = slice_list(ctx, "axes", 3, avals, &na, &pa)) ||
        (st = slice_list(ctx, "steps", 4, steps, &nst, &pst)))
        return st;
    if (!ps || !pe) return onr_seterr(ctx->err, ONR_E_MODEL, "starts and ends are required");
    if (ns != ne || (pa && na != ns) || (pst && nst != ns))
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "starts, ends, axes and steps differ in length (%d, %d, %d, %d)", ns, ne,
                          pa ? na : ns, pst ? nst : ns);
    if (!pa) {
        if (ns > x->rank)
            return onr_seterr(ctx->err, ONR_E_MODEL, "%d starts for rank %d", ns, x->rank);
        for (int i = 0; i < ns; i++) avals[i] = i;
    }
    if ((st = tn_norm_axes(ctx, avals, ns, x->rank, axes, "axes"))) return st;
    int64_t istr[ONR_MAX_RANK] = {0}, start[ONR_MAX_RANK], step[ONR_MAX_RANK];
    if (x->numel > 0) onr_strides(x->dims, x->rank, istr);
    for (int d = 0; d < x->rank; d++) {
        start[d] = 0;
        step[d] = 1;
        p->dims[d] = x->dims[d];
    }
    for (int i = 0; i < ns; i++) {
        int d = axes[i];
        step[d] = pst ? steps[i] : 1;
        if (step[d] == 0) return onr_seterr(ctx->err, ONR_E_MODEL, "step of axis %d is 0", d);
        slice_axis(x->dims[d], starts[i], ends[i], step[d], &start[d], &p->dims[d]);
    }
    p->offset = 0;
    for (int d = 0; d < x->rank; d++) {
        /* a step only matters (and cannot overflow) when it is taken */
        p->strides[d] = p->dims[d] > 1 ? istr[d] * step[d] : 0;
        p->offset += p->dims[d] > 0 ? start[d] * istr[d] : 0;
    }
    return ONR_OK;
}

static int slice_shape(onr_kctx *ctx)
{
    slice_p p;
    int st = slice_params(ctx, &p);
    return st ? st : onr_set_out(ctx, 0, ctx->in[0]->dtype, ctx->in[0]->rank, p.dims);
}

static int slice_run(onr_kctx *ctx)
{
    slice_p p;
    int st = slice_params(ctx, &p);
    if (st) return tn_nodefer(ctx, st);
    const onr_tensor *x = ctx->in[0];
    if ((st = tn_check_out(ctx, 0, x->rank, p.dims))) return st;
    return tn_strided_copy(ctx, x->dtype, ctx->out[0]->data, x->data, x->rank, p.dims, p.strides,
                           p.offset);
}

const onr_op_impl onr_impl_slice = {.shape = slice_shape, .run = slice_run,
                                    .types = ONR_TYPES_ALL};

/* ---- Expand -------------------------------------------------------------------- */

static int expand_dims(onr_kctx *ctx, int64_t *dims, int *rank)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st || (st = onr_check_input(ctx, 1, ONR_T(ONR_INT64)))) return st;
    int64_t shp[ONR_MAX_RANK];
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
    *rank = r;
    return ONR_OK;
}

static int expand_shape(onr_kctx *ctx)
{
    int64_t dims[ONR_MAX_RANK];
    int r, st = expand_dims(ctx, dims, &r);
    return st ? st : onr_set_out(ctx, 0, ctx->in[0]->dtype, r, dims);
}

static int expand_run(onr_kctx *ctx)
{
    int64_t dims[ONR_MAX_RANK], str[ONR_MAX_RANK];
    int r, st = expand_dims(ctx, dims, &r);
    if (st || (st = tn_check_out(ctx, 0, r, dims))) return tn_nodefer(ctx, st);
    const onr_tensor *x = ctx->in[0];
    if (ctx->out[0]->numel == 0) return ONR_OK;
    onr_bcast_strides(x->dims, x->rank, dims, r, str);
    return tn_strided_copy(ctx, x->dtype, ctx->out[0]->data, x->data, r, dims, str, 0);
}

const onr_op_impl onr_impl_expand = {.shape = expand_shape, .run = expand_run,
                                     .types = ONR_TYPES_ALL};

/* ---- Tile ---------------------------------------------------------------------- */

static int tile_reps(onr_kctx *ctx, int64_t *reps)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    for (int i = 0; i < x->rank; i++) reps[i] = 1;
    if (ctx->opset < 6) { /* Tile-1: scalar inputs tiles and axis */
        double tiles, axis;
        int a;
        if ((st = tn_need_data(ctx, 1)) || (st = tn_need_data(ctx, 2))) return st;
        if ((st = onr_read_scalar(ctx, 1, &tiles)) || (st = onr_read_scalar(ctx, 2, &axis)) ||
            (st = onr_norm_axis(ctx->err, (int64_t)axis, x->rank, &a)))
            return st;
        if (tiles < 0 || tiles > 1e15)
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

static int tile_dims(onr_kctx *ctx, int64_t *reps, int64_t *dims)
{
    int st = tile_reps(ctx, reps);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    for (int i = 0; i < x->rank; i++) {
        if (reps[i] > 0 && x->dims[i] > INT64_MAX / reps[i])
            return onr_seterr(ctx->err, ONR_E_NOMEM, "tiling dim %lld by %lld overflows",
                              (long long)x->dims[i], (long long)reps[i]);
        dims[i] = x->dims[i] * reps[i];
    }
    return ONR_OK;
}

static int tile_shape(onr_kctx *ctx)
{
    int64_t reps[ONR_MAX_RANK], dims[ONR_MAX_RANK];
    int st = tile_dims(ctx, reps, dims);
    return st ? st : onr_set_out(ctx, 0, ctx->in[0]->dtype, ctx->in[0]->rank, dims);
}

/* Tile is a strided copy over interleaved (repeat, dim) axes: the repeat
 * axis has source stride 0. */
static int tile_run(onr_kctx *ctx)
{
    int64_t reps[ONR_MAX_RANK], dims[ONR_MAX_RANK];
    int st = tile_dims(ctx, reps, dims);
    const onr_tensor *x = ctx->in[0];
    if (st || (st = tn_check_out(ctx, 0, x->rank, dims))) return tn_nodefer(ctx, st);
    if (ctx->out[0]->numel == 0) return ONR_OK;
    int64_t istr[ONR_MAX_RANK], d2[TN_MAX_DIMS], s2[TN_MAX_DIMS];
    onr_strides(x->dims, x->rank, istr);
    for (int i = 0; i < x->rank; i++) {
        d2[2 * i] = reps[i];
        s2[2 * i] = 0;
        d2[2 * i + 1] = x->dims[i];
        s2[2 * i + 1] = istr[i];
    }
    return tn_strided_copy(ctx, x->dtype, ctx->out[0]->data, x->data, 2 * x->rank, d2, s2, 0);
}

const onr_op_impl onr_impl_tile = {.shape = tile_shape, .run = tile_run, .types = ONR_TYPES_ALL};

/* ---- Pad ----------------------------------------------------------------------- */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

typedef struct pad_p {
    int mode;
    int64_t before[ONR_MAX_RANK], after[ONR_MAX_RANK];
    int64_t dims[ONR_MAX_RANK];
    uint64_t cval;    /* constant value bits (non-string) */
    const char *cstr; /* constant value (string) */
} pad_p;

static int pad_mode(onr_kctx *ctx, int *mode)
{
    static const struct {
        const char *name;
        int mode, since;
    } modes[] = {{"constant", PAD_CONSTANT, 1}, {"reflect", PAD_REFLECT, 1},
                 {"edge", PAD_EDGE, 1}, {"wrap", PAD_WRAP, 19}};
    const char *s = onr_attr_string(ctx->node, "mode", "constant");
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(s, modes[i].name) == 0 && ctx->opset >= modes[i].since) {
            *mode = modes[i].mode;
            return ONR_OK;
        }
    return onr_seterr(ctx->err, ONR_E_MODEL, "pad mode '%s' is not valid at opset %lld", s,
                      (long long)ctx->opset);
}

/* The constant: attribute `value` (float) before opset 11, else input 2. */
static int pad_constant(onr_kctx *ctx, pad_p *p)
{
    const onr_tensor *x = ctx->in[0];
    p->cval = 0;
    p->cstr = "";
    if (ctx->opset < 11) {
        onr_tensor t = {.dtype = x->dtype, .data = &p->cval};
        onr_set_f64(&t, 0, onr_attr_float(ctx->node, "value", 0.f));
        return ONR_OK;
    }
    if (ctx->n_in <= 2 || !ctx->in[2] || ctx->in[2]->numel == 0) return ONR_OK;
    const onr_tensor *c = ctx->in[2];
    if (c->dtype != x->dtype)
        return onr_seterr(ctx->err, ONR_E_MODEL, "constant_value is %s but data is %s",
                          onr_dtype_name(c->dtype), onr_dtype_name(x->dtype));
    if (!c->data) return ONR_SHAPE_DEFER;
    if (x->dtype == ONR_STRING)
        p->cstr = ((char *const *)c->data)[0] ? ((char *const *)c->data)[0] : "";
    else
        memcpy(&p->cval, c->data, onr_dtype_size(x->dtype));
    return ONR_OK;
}

static int pad_params(onr_kctx *ctx, pad_p *p, int need_value)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st || (st = pad_mode(ctx, &p->mode))) return st;
    const onr_tensor *x = ctx->in[0];
    int r = x->rank;
    int64_t pads[2 * ONR_MAX_RANK], av[ONR_MAX_RANK];
    int np, na = r, axes[ONR_MAX_RANK];
    for (int i = 0; i < r; i++) axes[i] = i;
    if (ctx->opset < 11) {
        const char *name = ctx->opset < 2 ? "paddings" : "pads";
        size_t cnt;
        const int64_t *v = onr_attr_ints(ctx->node, name, &cnt);
        if (!onr_node_attr(ctx->node, name))
            return onr_seterr(ctx->err, ONR_E_MODEL, "attribute '%s' is missing", name);
        if (cnt > 2 * ONR_MAX_RANK)
            return onr_seterr(ctx->err, ONR_E_MODEL, "%s has %zu values for rank %d", name, cnt, r);
        memcpy(pads, v, cnt * sizeof *pads);
        np = (int)cnt;
    } else {
        if ((st = onr_check_input(ctx, 1, ONR_T(ONR_INT64)))) return st;
        if ((st = onr_read_ints(ctx, 1, pads, 2 * ONR_MAX_RANK, &np))) return st;
        int pa = 0;
        if (ctx->opset >= 18 && ctx->n_in > 3 && ctx->in[3]) {
            if ((st = onr_check_input(ctx, 3, ONR_T(ONR_INT64) | ONR_T(ONR_INT32)))) return st;
            if ((st = tn_read_ints_opt(ctx, 3, av, ONR_MAX_RANK, &na, &pa))) return st;
            if ((st = tn_norm_axes(ctx, av, na, r, axes, "axes"))) return st;
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
                              i, TN_DIMS(b, x), onr_attr_string(ctx->node, "mode", ""));
    }
    return need_value ? pad_constant(ctx, p) : ONR_OK;
}

static int pad_shape(onr_kctx *ctx)
{
    pad_p p;
    int st = pad_params(ctx, &p, 0);
    return st ? st : onr_set_out(ctx, 0, ctx->in[0]->dtype, ctx->in[0]->rank, p.dims);
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
 * whole row is the constant). */
static int pad_row(const pad_p *p, onr_dtype dt, int r, int64_t d, char *dst, const char *src)
{
    size_t esz = tn_esz(dt);
    int64_t L = p->dims[r - 1], lo = p->before[r - 1];
    const void *cv = dt == ONR_STRING ? (const void *)&p->cstr : (const void *)&p->cval;
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

static int pad_run(onr_kctx *ctx)
{
    pad_p p;
    int st = pad_params(ctx, &p, 1);
    const onr_tensor *x = ctx->in[0];
    if (st || (st = tn_check_out(ctx, 0, x->rank, p.dims)))
        return tn_nodefer(ctx, st);
    onr_tensor *y = ctx->out[0];
    size_t esz = tn_esz(x->dtype);
    int r = x->rank;
    if (r == 0) return tn_copy(x->dtype, y->data, x->data, 1);
    if (y->numel == 0) return ONR_OK;
    int64_t rows = y->numel / p.dims[r - 1], L = p.dims[r - 1];
    int64_t istr[ONR_MAX_RANK] = {0}; /* an empty input is never read */
    if (x->numel > 0) onr_strides(x->dims, r, istr);
    int fail = 0;
#pragma omp parallel for num_threads(ctx->nthreads) \
    if (x->dtype != ONR_STRING && y->numel > ONR_PAR_MIN && rows > 1) reduction(| : fail)
    for (int64_t q = 0; q < rows; q++) {
        /* map the row's outer coordinates to the source row */
        int64_t rem = q, soff = 0;
        int constant = 0;
        for (int k = r - 2; k >= 0; k--) {
            int64_t o = rem % p.dims[k];
            rem /= p.dims[k];
            int64_t i = pad_map(p.mode, o - p.before[k], x->dims[k]);
            if (i < 0) constant = 1;
            else soff += i * istr[k];
        }
        const char *src = constant ? NULL : (const char *)x->data + (size_t)soff * esz;
        fail |= pad_row(&p, x->dtype, r, x->dims[r - 1], (char *)y->data + (size_t)(q * L) * esz,
                        src);
    }
    return fail ? onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory copying strings") : ONR_OK;
}

const onr_op_impl onr_impl_pad = {.shape = pad_shape, .run = pad_run, .types = ONR_TYPES_ALL};

/* ---- ReverseSequence ------------------------------------------------------------ */

static int revseq_axes(onr_kctx *ctx, int *batch, int *time)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st || (st = onr_check_input(ctx, 1, ONR_T(ONR_INT64)))) return st;
    const onr_tensor *x = ctx->in[0], *lens = ctx->in[1];
    int64_t b = onr_attr_int(ctx->node, "batch_axis", 1), t = onr_attr_int(ctx->node, "time_axis", 0);
    char b1[256], b2[256];
    if (x->rank < 2 || !((b == 0 && t == 1) || (b == 1 && t == 0)))
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "batch_axis %lld / time_axis %lld are invalid for input %s", (long long)b,
                          (long long)t, TN_DIMS(b1, x));
    if (lens->rank != 1 || lens->dims[0] != x->dims[b])
        return onr_seterr(ctx->err, ONR_E_MODEL, "sequence_lens %s does not match batch of %s",
                          TN_DIMS(b1, lens), TN_DIMS(b2, x));
    *batch = (int)b;
    *time = (int)t;
    return ONR_OK;
}

static int revseq_shape(onr_kctx *ctx)
{
    int b, t, st = revseq_axes(ctx, &b, &t);
    return st ? st : onr_set_out_like(ctx, 0, 0);
}

static int revseq_run(onr_kctx *ctx)
{
    int b, t, st = revseq_axes(ctx, &b, &t);
    const onr_tensor *x = ctx->in[0];
    if (st || (st = tn_check_out(ctx, 0, x->rank, x->dims))) return st;
    if (x->numel == 0) return ONR_OK;
    const int64_t *lens = ctx->in[1]->data;
    int64_t B = x->dims[b], T = x->dims[t], inner = tn_prod(x->dims, 2, x->rank);
    int64_t bstr = (b == 0 ? T : 1) * inner, tstr = (t == 0 ? B : 1) * inner;
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

const onr_op_impl onr_impl_reversesequence = {.shape = revseq_shape, .run = revseq_run,
                                              .types = ONR_TYPES_ALL};

/* ---- DepthToSpace, SpaceToDepth --------------------------------------------------- */

/* Both are a reshape to 6-D, a transpose and a reshape back: one strided copy
 * whose output is viewed as 6-D with the source strides permuted. */
typedef struct d2s_p {
    int64_t out[4];  /* output dims (NCHW) */
    int64_t dims[6]; /* output viewed as 6-D */
    int64_t str[6];  /* source strides for those dims */
} d2s_p;

static int d2s_params(onr_kctx *ctx, int to_space, d2s_p *p)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int64_t b = onr_attr_int(ctx->node, "blocksize", 0);
    char buf[256];
    if (x->rank != 4 || b < 1 || b > (1 << 20))
        return onr_seterr(ctx->err, ONR_E_MODEL, "input %s / blocksize %lld: need 4-D input and blocksize >= 1",
                          TN_DIMS(buf, x), (long long)b);
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    /* zero-size inputs may carry huge dims; keep every product in range */
    int64_t lim = INT64_MAX / (b * b);
    if (C > lim || H > lim || W > lim)
        return onr_seterr(ctx->err, ONR_E_NOMEM, "input %s is too large for blocksize %lld",
                          TN_DIMS(buf, x), (long long)b);
    if (to_space) {
        const char *mode = onr_attr_string(ctx->node, "mode", "DCR");
        int crd = strcmp(mode, "CRD") == 0;
        if ((!crd && strcmp(mode, "DCR") != 0) || (crd && ctx->opset < 11))
            return onr_seterr(ctx->err, ONR_E_MODEL, "mode '%s' is not valid", mode);
        if (C % (b * b))
            return onr_seterr(ctx->err, ONR_E_MODEL, "channels of %s do not divide by blocksize^2 = %lld",
                              TN_DIMS(buf, x), (long long)(b * b));
        int64_t c = C / (b * b), HW = H * W;
        /* source: DCR [N, b1, b2, c, H, W]; CRD [N, c, b1, b2, H, W] -> [N, c, H, b1, W, b2] */
        if (x->numel == 0) HW = 0; /* strides unused; keep them from overflowing */
        int64_t s_b1 = crd ? b * HW : b * c * HW, s_b2 = crd ? HW : c * HW, s_c = crd ? b * b * HW : HW;
        const int64_t dims[6] = {N, c, H, b, W, b}, str[6] = {C * HW, s_c, W, s_b1, 1, s_b2};
        memcpy(p->dims, dims, sizeof dims);
        memcpy(p->str, str, sizeof str);
        p->out[0] = N, p->out[1] = c, p->out[2] = H * b, p->out[3] = W * b;
        return ONR_OK;
    }
    if (H % b || W % b)
        return onr_seterr(ctx->err, ONR_E_MODEL, "height and width of %s do not divide by blocksize %lld",
                          TN_DIMS(buf, x), (long long)b);
    int64_t h = H / b, w = W / b;
    /* source [N, C, h, b1, w, b2] -> [N, b1, b2, C, h, w] */
    int64_t HW = x->numel > 0 ? H * W : 0;
    const int64_t dims[6] = {N, b, b, C, h, w}, str[6] = {C * HW, W, 1, HW, b * W, b};
    memcpy(p->dims, dims, sizeof dims);
    memcpy(p->str, str, sizeof str);
    p->out[0] = N, p->out[1] = C * b * b, p->out[2] = h, p->out[3] = w;
    return ONR_OK;
}

static int d2s_shape_common(onr_kctx *ctx, int to_space)
{
    d2s_p p;
    int st = d2s_params(ctx, to_space, &p);
    return st ? st : onr_set_out(ctx, 0, ctx->in[0]->dtype, 4, p.out);
}

static int d2s_run_common(onr_kctx *ctx, int to_space)
{
    d2s_p p;
    int st = d2s_params(ctx, to_space, &p);
    if (st || (st = tn_check_out(ctx, 0, 4, p.out))) return st;
    const onr_tensor *x = ctx->in[0];
    if (x->numel == 0) return ONR_OK;
    return tn_strided_copy(ctx, x->dtype, ctx->out[0]->data, x->data, 6, p.dims, p.str, 0);
}

static int d2s_shape(onr_kctx *ctx) { return d2s_shape_common(ctx, 1); }
static int d2s_run(onr_kctx *ctx) { return d2s_run_common(ctx, 1); }
static int s2d_shape(onr_kctx *ctx) { return d2s_shape_common(ctx, 0); }
static int s2d_run(onr_kctx *ctx) { return d2s_run_common(ctx, 0); }

const onr_op_impl onr_impl_depthtospace = {.shape = d2s_shape, .run = d2s_run,
                                           .types = ONR_TYPES_ALL};
const onr_op_impl onr_impl_spacetodepth = {.shape = s2d_shape, .run = s2d_run,
                                           .types = ONR_TYPES_ALL};
