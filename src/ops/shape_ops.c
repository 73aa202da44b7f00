/*
 * shape_ops.c - operators that change only a tensor's shape (Reshape,
 * Flatten, Squeeze, Unsqueeze, Identity, inference-mode Dropout) and those
 * that report it (Shape, Size).
 *
 * The first group are views: their registry entries carry ONR_OP_VIEW, so
 * the executor makes output 0 share input 0's data and their run functions
 * have nothing to move. All the work is in the shape functions, which the
 * planner also uses to fold Shape -> Gather -> Concat -> Reshape chains.
 */
#include <string.h>

#include "ops/tensor.h"

static int run_nothing(onr_kctx *ctx)
{
    ONR_UNUSED(ctx);
    return ONR_OK;
}

/* ---- Reshape ----------------------------------------------------------------- */

/* Output dims from the requested shape: 0 copies the input dim (unless
 * allowzero), one -1 is inferred from the element count. */
static int reshape_dims(onr_kctx *ctx, const int64_t *req, int n, int allowzero,
                        int64_t *dims)
{
    const onr_tensor *x = ctx->in[0];
    char b1[256], b2[256];
    int infer = -1, has_zero = 0;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
        int64_t v = req[i];
        if (v == -1) {
            if (infer >= 0)
                return onr_seterr(ctx->err, ONR_E_MODEL, "shape %s has more than one -1",
                                  onr_fmt_dims(b1, sizeof b1, req, n));
            infer = i;
            continue;
        }
        if (v < -1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "shape %s has invalid dim %lld",
                              onr_fmt_dims(b1, sizeof b1, req, n), (long long)v);
        if (v == 0 && !allowzero) {
            if (i >= x->rank)
                return onr_seterr(ctx->err, ONR_E_MODEL,
                                  "shape %s copies dim %d (0) but the input %s has rank %d",
                                  onr_fmt_dims(b1, sizeof b1, req, n), i, TN_DIMS(b2, x), x->rank);
            v = x->dims[i];
        }
        if (v == 0) has_zero = 1;
        dims[i] = v;
        /* saturate: a product beyond the input's element count fails below */
        known = (v != 0 && known > INT64_MAX / v) ? INT64_MAX : known * v;
    }
    if (infer >= 0) {
        if (has_zero && allowzero)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "shape %s has both 0 and -1 with allowzero=1",
                              onr_fmt_dims(b1, sizeof b1, req, n));
        if (known == 0 || x->numel % known != 0)
            return onr_seterr(ctx->err, ONR_E_MODEL, "cannot reshape %s (%lld elements) to %s",
                              TN_DIMS(b1, x), (long long)x->numel,
                              onr_fmt_dims(b2, sizeof b2, req, n));
        dims[infer] = x->numel / known;
        known = x->numel;
    }
    if (known != x->numel)
        return onr_seterr(ctx->err, ONR_E_MODEL, "cannot reshape %s (%lld elements) to %s",
                          TN_DIMS(b1, x), (long long)x->numel, onr_fmt_dims(b2, sizeof b2, req, n));
    return ONR_OK;
}

static int reshape_shape(onr_kctx *ctx)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st) return st;
    int64_t req[ONR_MAX_RANK], dims[ONR_MAX_RANK];
    int n = 0;
    if (ctx->opset < 5) {
        size_t cnt;
        const int64_t *v = onr_attr_ints(ctx->node, "shape", &cnt);
        if (!onr_node_attr(ctx->node, "shape"))
            return onr_seterr(ctx->err, ONR_E_MODEL, "attribute 'shape' is missing");
        if (cnt > ONR_MAX_RANK)
            return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "shape has %zu dims, at most %d",
                              cnt, ONR_MAX_RANK);
        memcpy(req, v, cnt * sizeof *req);
        n = (int)cnt;
    } else {
        if ((st = onr_check_input(ctx, 1, ONR_T(ONR_INT64)))) return st;
        if ((st = onr_read_ints(ctx, 1, req, ONR_MAX_RANK, &n))) return st;
    }
    int allowzero = ctx->opset >= 14 && onr_attr_int(ctx->node, "allowzero", 0) != 0;
    if ((st = reshape_dims(ctx, req, n, allowzero, dims))) return st;
    return onr_set_out(ctx, 0, ctx->in[0]->dtype, n, dims);
}

const onr_op_impl onr_impl_reshape = {.shape = reshape_shape, .run = run_nothing,
                                      .types = ONR_TYPES_ALL, .flags = ONR_OP_VIEW};

/* ---- Flatten ----------------------------------------------------------------- */

static int flatten_shape(onr_kctx *ctx)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int64_t axis = onr_attr_int(ctx->node, "axis", 1);
    int64_t a = axis < 0 ? axis + x->rank : axis;
    if (a < 0 || a > x->rank)
        return onr_seterr(ctx->err, ONR_E_MODEL, "axis %lld is out of range for rank %d",
                          (long long)axis, x->rank);
    int64_t dims[2] = {tn_prod(x->dims, 0, (int)a), tn_prod(x->dims, (int)a, x->rank)};
    return onr_set_out(ctx, 0, x->dtype, 2, dims);
}

const onr_op_impl onr_impl_flatten = {.shape = flatten_shape, .run = run_nothing,
                                      .types = ONR_TYPES_ALL, .flags = ONR_OP_VIEW};

/* ---- Squeeze / Unsqueeze ------------------------------------------------------- */

/* The axes list: an attribute before opset 13, the optional input 1 after. */
static int read_axes(onr_kctx *ctx, int64_t *vals, int max, int *n, int *present)
{
    if (ctx->opset < 13) {
        size_t cnt;
        const int64_t *v = onr_attr_ints(ctx->node, "axes", &cnt);
        *present = onr_node_attr(ctx->node, "axes") != NULL;
        if (cnt > (size_t)max)
            return onr_seterr(ctx->err, ONR_E_MODEL, "axes has %zu values, at most %d", cnt, max);
        if (cnt) memcpy(vals, v, cnt * sizeof *vals);
        *n = (int)cnt;
        return ONR_OK;
    }
    if (ctx->n_in > 1 && ctx->in[1]) {
        int st = onr_check_input(ctx, 1, ONR_T(ONR_INT64));
        if (st) return st;
    }
    return tn_read_ints_opt(ctx, 1, vals, max, n, present);
}

static int squeeze_shape(onr_kctx *ctx)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int64_t vals[ONR_MAX_RANK];
    int axes[ONR_MAX_RANK], n, present;
    if ((st = read_axes(ctx, vals, ONR_MAX_RANK, &n, &present))) return st;
    if ((st = tn_norm_axes(ctx, vals, n, x->rank, axes, "axes"))) return st;
    uint8_t drop[ONR_MAX_RANK] = {0};
    char b[256];
    for (int i = 0; i < n; i++) {
        if (x->dims[axes[i]] != 1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "cannot squeeze axis %d of shape %s (dim %lld)",
                              axes[i], TN_DIMS(b, x), (long long)x->dims[axes[i]]);
        drop[axes[i]] = 1;
    }
    if (n == 0) /* no axes: every dim of size 1 goes */
        for (int i = 0; i < x->rank; i++) drop[i] = x->dims[i] == 1;
    int64_t dims[ONR_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!drop[i]) dims[r++] = x->dims[i];
    return onr_set_out(ctx, 0, x->dtype, r, dims);
}

const onr_op_impl onr_impl_squeeze = {.shape = squeeze_shape, .run = run_nothing,
                                      .types = ONR_TYPES_ALL, .flags = ONR_OP_VIEW};

static int unsqueeze_shape(onr_kctx *ctx)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int64_t vals[ONR_MAX_RANK];
    int axes[ONR_MAX_RANK], n, present;
    if ((st = read_axes(ctx, vals, ONR_MAX_RANK, &n, &present))) return st;
    if (!present)
        return onr_seterr(ctx->err, ONR_E_MODEL, "axes are required");
    int r = x->rank + n;
    if (r > ONR_MAX_RANK)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "output rank %d exceeds the maximum %d", r,
                          ONR_MAX_RANK);
    if ((st = tn_norm_axes(ctx, vals, n, r, axes, "axes"))) return st;
    uint8_t ins[ONR_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) ins[axes[i]] = 1;
    int64_t dims[ONR_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++) dims[i] = ins[i] ? 1 : x->dims[j++];
    return onr_set_out(ctx, 0, x->dtype, r, dims);
}

const onr_op_impl onr_impl_unsqueeze = {.shape = unsqueeze_shape, .run = run_nothing,
                                        .types = ONR_TYPES_ALL, .flags = ONR_OP_VIEW};

/* ---- Identity, Dropout ------------------------------------------------------ */

static int identity_shape(onr_kctx *ctx)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    return st ? st : onr_set_out_like(ctx, 0, 0);
}

const onr_op_impl onr_impl_identity = {.shape = identity_shape, .run = run_nothing,
                                       .types = ONR_TYPES_ALL, .flags = ONR_OP_VIEW};

/* Inference only: the output is the input and the mask all true (before
 * opset 10 the mask has the input's type, so "true" is 1 of that type). */
static int dropout_shape(onr_kctx *ctx)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_FLOAT);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (ctx->opset >= 12) {
        if (ctx->n_in > 1 && ctx->in[1] && (st = onr_check_input(ctx, 1, ONR_TYPES_FLOAT)))
            return st;
        if (ctx->n_in > 2 && ctx->in[2] && (st = onr_check_input(ctx, 2, ONR_T(ONR_BOOL))))
            return st;
    }
    if ((st = onr_set_out_like(ctx, 0, 0))) return st;
    return onr_set_out(ctx, 1, ctx->opset >= 10 ? ONR_BOOL : x->dtype, x->rank, x->dims);
}

static int dropout_run(onr_kctx *ctx)
{
    if (ctx->opset >= 12 && ctx->n_in > 2 && ctx->in[2] && ctx->in[2]->numel > 0 &&
        ctx->in[2]->data && ((const uint8_t *)ctx->in[2]->data)[0]) {
        /* training mode: only ratio 0 is deterministic */
        double ratio = 0.5;
        if (ctx->n_in > 1 && ctx->in[1]) {
            int st = onr_read_scalar(ctx, 1, &ratio);
            if (st) return tn_nodefer(ctx, st);
        }
        if (ratio != 0)
            return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                              "Dropout in training mode (ratio %g) is not supported", ratio);
    }
    onr_tensor *mask = ctx->n_out > 1 ? ctx->out[1] : NULL;
    if (!mask) return ONR_OK;
    if (mask->dtype == ONR_BOOL) {
        memset(mask->data, 1, (size_t)mask->numel);
    } else {
        for (int64_t i = 0; i < mask->numel; i++) onr_set_f64(mask, i, 1.0);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_dropout = {.shape = dropout_shape, .run = dropout_run,
                                      .types = ONR_TYPES_FLOAT, .flags = ONR_OP_VIEW};

/* ---- Shape, Size -------------------------------------------------------------- */

/* [start, end) of the dims Shape reports (opset 15 slicing attributes). */
static void shape_range(onr_kctx *ctx, int rank, int64_t *start, int64_t *end)
{
    int64_t s = 0, e = rank;
    if (ctx->opset >= 15) {
        s = onr_attr_int(ctx->node, "start", 0);
        e = onr_attr_int(ctx->node, "end", rank);
    }
    if (s < 0) s += rank;
    if (e < 0) e += rank;
    s = s < 0 ? 0 : s > rank ? rank : s;
    e = e < 0 ? 0 : e > rank ? rank : e;
    *start = s;
    *end = e > s ? e : s;
}

static int shape_shape(onr_kctx *ctx)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st) return st;
    int64_t s, e;
    shape_range(ctx, ctx->in[0]->rank, &s, &e);
    int64_t n = e - s;
    return onr_set_out(ctx, 0, ONR_INT64, 1, &n);
}

/* Reads only the input's dims, never its data (which may not exist yet). */
static int shape_run(onr_kctx *ctx)
{
    int64_t s, e;
    shape_range(ctx, ctx->in[0]->rank, &s, &e);
    int64_t n = e - s;
    int st = tn_check_out(ctx, 0, 1, &n);
    if (st) return st;
    int64_t *o = ctx->out[0]->data;
    for (int64_t i = s; i < e; i++) o[i - s] = ctx->in[0]->dims[i];
    return ONR_OK;
}

const onr_op_impl onr_impl_shape = {.shape = shape_shape, .run = shape_run,
                                    .types = ONR_TYPES_ALL};

static int size_shape(onr_kctx *ctx)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    return st ? st : onr_set_out(ctx, 0, ONR_INT64, 0, NULL);
}

static int size_run(onr_kctx *ctx)
{
    *(int64_t *)ctx->out[0]->data = ctx->in[0]->numel;
    return ONR_OK;
}

const onr_op_impl onr_impl_size = {.shape = size_shape, .run = size_run, .types = ONR_TYPES_ALL};
