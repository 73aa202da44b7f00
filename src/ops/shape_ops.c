/*
 * shape_ops.c - operators that change only a tensor's shape (Reshape,
 * Flatten, Squeeze, Unsqueeze, Identity, inference-mode Dropout) and those
 * that report it (Shape, Size). All but Dropout take the 8-, 4- and 2-bit types
 * from the opsets tensor.h lists (tn_check_data).
 *
 * The first group are views: their registry entries carry ONR_OP_VIEW, so
 * the executor makes output 0 share input 0's data and they need no run
 * (Dropout's run only fills the optional mask). All the work
 * is in reshape, which the planner also uses to fold Shape -> Gather ->
 * Concat -> Reshape chains. Attributes are read once, in create; the inputs
 * that replaced attributes in later opsets (Reshape's shape, Squeeze's and
 * Unsqueeze's axes) are read by reshape and listed in .shape_inputs.
 */
#include <string.h>

#include "ops/tensor.h"

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

typedef struct reshape_params {
    int attr;                  /* opset < 5: the shape is the attribute below */
    int n;
    int64_t req[ONR_MAX_RANK]; /* requested shape (attribute form) */
    int allowzero;             /* opset >= 14 */
} reshape_params;

static int reshape_create(onr_create_ctx *c, void *params)
{
    reshape_params *p = params;
    if (c->opset < 5) {
        size_t cnt;
        const int64_t *v = onr_attr_ints(c->node, "shape", &cnt);
        if (!onr_node_attr(c->node, "shape"))
            return onr_seterr(c->err, ONR_E_MODEL, "attribute 'shape' is missing");
        if (cnt > ONR_MAX_RANK)
            return onr_seterr(c->err, ONR_E_UNSUPPORTED, "shape has %zu dims, at most %d", cnt,
                              ONR_MAX_RANK);
        if (cnt) memcpy(p->req, v, cnt * sizeof *p->req);
        p->attr = 1;
        p->n = (int)cnt;
    }
    if (c->opset >= 14) {
        int64_t az = onr_attr_int(c->node, "allowzero", 0);
        if (az != 0 && az != 1)
            return onr_seterr(c->err, ONR_E_MODEL, "attribute 'allowzero' is %lld, not 0 or 1",
                              (long long)az);
        p->allowzero = (int)az;
    }
    return ONR_OK;
}

static int reshape_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    const reshape_params *p = ctx->params;
    int st = tn_check_data(ctx, 0, 19);
    if (st) return st;
    int64_t req[ONR_MAX_RANK], dims[ONR_MAX_RANK];
    int n = 0;
    if (p->attr) {
        memcpy(req, p->req, sizeof req);
        n = p->n;
    } else {
        if ((st = onr_check_input(ctx, 1, ONR_T(ONR_INT64)))) return st;
        if ((st = onr_read_ints(ctx, 1, req, ONR_MAX_RANK, &n))) return st;
    }
    if ((st = reshape_dims(ctx, req, n, p->allowzero, dims))) return st;
    return onr_set_out(ctx, 0, ctx->in[0]->dtype, n, dims);
}

const onr_op_impl onr_impl_reshape = {.create = reshape_create, .reshape = reshape_reshape,
                                      .params_size = sizeof(reshape_params),
                                      .types = ONR_TYPES_ALL | TN_TYPES_LOWP, .flags = ONR_OP_VIEW,
                                      .shape_inputs = 1u << 1};

/* ---- Flatten ----------------------------------------------------------------- */

typedef struct flatten_params {
    int64_t axis; /* as given: its range depends on the input rank */
} flatten_params;

static int flatten_create(onr_create_ctx *c, void *params)
{
    flatten_params *p = params;
    p->axis = onr_attr_int(c->node, "axis", 1);
    if (p->axis < -ONR_MAX_RANK || p->axis > ONR_MAX_RANK)
        return onr_seterr(c->err, ONR_E_MODEL, "axis %lld is out of range for any rank",
                          (long long)p->axis);
    return ONR_OK;
}

static int flatten_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    const flatten_params *p = ctx->params;
    int st = tn_check_data(ctx, 0, 21);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int64_t a = p->axis < 0 ? p->axis + x->rank : p->axis;
    if (a < 0 || a > x->rank)
        return onr_seterr(ctx->err, ONR_E_MODEL, "axis %lld is out of range for rank %d",
                          (long long)p->axis, x->rank);
    int64_t dims[2] = {tn_prod(x->dims, 0, (int)a), tn_prod(x->dims, (int)a, x->rank)};
    return onr_set_out(ctx, 0, x->dtype, 2, dims);
}

const onr_op_impl onr_impl_flatten = {.create = flatten_create, .reshape = flatten_reshape,
                                      .params_size = sizeof(flatten_params),
                                      .types = ONR_TYPES_ALL | TN_TYPES_LOWP, .flags = ONR_OP_VIEW};

/* ---- Squeeze / Unsqueeze ------------------------------------------------------- */

/* The axes list: an attribute before opset 13 (read by create), the
 * optional input 1 after (read by reshape). */
typedef struct axes_params {
    int attr;                   /* opset < 13 */
    int present;                /* attribute form: the attribute exists */
    int n;
    int64_t axes[ONR_MAX_RANK]; /* attribute values */
} axes_params;

static int axes_create(onr_create_ctx *c, void *params)
{
    axes_params *p = params;
    if (c->opset >= 13) return ONR_OK;
    size_t cnt;
    const int64_t *v = onr_attr_ints(c->node, "axes", &cnt);
    if (cnt > ONR_MAX_RANK)
        return onr_seterr(c->err, ONR_E_MODEL, "axes has %zu values, at most %d", cnt,
                          ONR_MAX_RANK);
    if (cnt) memcpy(p->axes, v, cnt * sizeof *p->axes);
    p->attr = 1;
    p->present = onr_node_attr(c->node, "axes") != NULL;
    p->n = (int)cnt;
    return ONR_OK;
}

static int unsqueeze_create(onr_create_ctx *c, void *params)
{
    int st = axes_create(c, params);
    const axes_params *p = params;
    if (!st && p->attr && !p->present)
        return onr_seterr(c->err, ONR_E_MODEL, "axes are required");
    return st;
}

static int read_axes(onr_kctx *ctx, int64_t *vals, int *n, int *present)
{
    const axes_params *p = ctx->params;
    if (p->attr) {
        memcpy(vals, p->axes, sizeof p->axes);
        *n = p->n;
        *present = p->present;
        return ONR_OK;
    }
    if (ctx->n_in > 1 && ctx->in[1]) {
        int st = onr_check_input(ctx, 1, ONR_T(ONR_INT64));
        if (st) return st;
    }
    return tn_read_ints_opt(ctx, 1, vals, ONR_MAX_RANK, n, present);
}

static int squeeze_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    int st = tn_check_data(ctx, 0, 21);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int64_t vals[ONR_MAX_RANK];
    int axes[ONR_MAX_RANK], n, present;
    if ((st = read_axes(ctx, vals, &n, &present))) return st;
    if ((st = tn_norm_axes(ctx->err, vals, n, x->rank, axes, "axes"))) return st;
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

const onr_op_impl onr_impl_squeeze = {.create = axes_create, .reshape = squeeze_reshape,
                                      .params_size = sizeof(axes_params),
                                      .types = ONR_TYPES_ALL | TN_TYPES_LOWP, .flags = ONR_OP_VIEW,
                                      .shape_inputs = 1u << 1};

static int unsqueeze_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    int st = tn_check_data(ctx, 0, 21);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int64_t vals[ONR_MAX_RANK];
    int axes[ONR_MAX_RANK], n, present;
    if ((st = read_axes(ctx, vals, &n, &present))) return st;
    if (!present)
        return onr_seterr(ctx->err, ONR_E_MODEL, "axes are required");
    int r = x->rank + n;
    if (r > ONR_MAX_RANK)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "output rank %d exceeds the maximum %d", r,
                          ONR_MAX_RANK);
    if ((st = tn_norm_axes(ctx->err, vals, n, r, axes, "axes"))) return st;
    uint8_t ins[ONR_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) ins[axes[i]] = 1;
    int64_t dims[ONR_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++) dims[i] = ins[i] ? 1 : x->dims[j++];
    return onr_set_out(ctx, 0, x->dtype, r, dims);
}

const onr_op_impl onr_impl_unsqueeze = {.create = unsqueeze_create, .reshape = unsqueeze_reshape,
                                        .params_size = sizeof(axes_params),
                                        .types = ONR_TYPES_ALL | TN_TYPES_LOWP, .flags = ONR_OP_VIEW,
                                        .shape_inputs = 1u << 1};

/* ---- Identity, Dropout ------------------------------------------------------ */

static int identity_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    if (x && y) y->kind = x->kind;
    if (x && x->kind) { /* a sequence or optional: the view shares its slots */
        if (y) y->dtype = x->dtype;
        return onr_tensor_set_shape(y, x->dtype, x->rank, x->dims, ctx->err);
    }
    int st = tn_check_data(ctx, 0, 19);
    return st ? st : onr_set_out_like(ctx, 0, 0);
}

const onr_op_impl onr_impl_identity = {.reshape = identity_reshape,
                                       .types = ONR_TYPES_ALL | TN_TYPES_LOWP, .flags = ONR_OP_VIEW};

/* Inference only: output 0 is the input (a view) and the mask all true
 * (before opset 10 the mask has the input's type, so "true" is 1 of that
 * type). Training mode (input 2, opset 12) is an input value that run
 * checks; only ratio 0 is deterministic there. */
typedef struct dropout_params {
    double ratio;      /* attribute before opset 12 (unused in inference) */
    int64_t seed;      /* attribute from opset 12 (unused: no randomness) */
    int training_in;   /* reshape: the training_mode input is given */
    int mask;          /* reshape: the mask output is wanted */
} dropout_params;

static int dropout_create(onr_create_ctx *c, void *params)
{
    dropout_params *p = params;
    p->ratio = 0.5;
    if (c->opset < 12) {
        p->ratio = onr_attr_float(c->node, "ratio", 0.5f);
        if (!(p->ratio >= 0 && p->ratio < 1))
            return onr_seterr(c->err, ONR_E_MODEL, "attribute 'ratio' is %g, not in [0, 1)",
                              p->ratio);
    } else {
        p->seed = onr_attr_int(c->node, "seed", 0);
    }
    return ONR_OK;
}

static int dropout_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    dropout_params *p = ctx->params;
    int st = onr_check_input(ctx, 0, ONR_TYPES_FLOAT);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    p->training_in = 0;
    if (ctx->opset >= 12) {
        if (ctx->n_in > 1 && ctx->in[1] && (st = onr_check_input(ctx, 1, ONR_TYPES_FLOAT)))
            return st;
        if (ctx->n_in > 2 && ctx->in[2] && (st = onr_check_input(ctx, 2, ONR_T(ONR_BOOL))))
            return st;
        p->training_in = ctx->n_in > 2 && ctx->in[2] && ctx->in[2]->numel > 0;
    }
    p->mask = ctx->n_out > 1 && ctx->out[1];
    if ((st = onr_set_out_like(ctx, 0, 0))) return st;
    return onr_set_out(ctx, 1, ctx->opset >= 10 ? ONR_BOOL : x->dtype, x->rank, x->dims);
}

/* Output 0 is aliased by the executor; only training mode and the mask
 * need work (nothing at all in inference mode without a mask). */
static int dropout_run(const onr_kctx *ctx)
{
    const dropout_params *p = ctx->params;
    const onr_tensor *tm = p->training_in ? ctx->in[2] : NULL;
    if (tm && tm->data && ((const uint8_t *)tm->data)[0]) {
        double ratio = 0.5;
        const onr_tensor *rt = ctx->n_in > 1 ? ctx->in[1] : NULL;
        if (rt) { /* a float type (reshape checked) */
            if (!rt->data || rt->numel < 1)
                return onr_seterr(ctx->err, ONR_E_MODEL, "input 1 must hold a value, it is empty");
            ratio = onr_get_f64(rt, 0);
        }
        if (ratio != 0)
            return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                              "Dropout in training mode (ratio %g) is not supported", ratio);
    }
    if (!p->mask) return ONR_OK;
    onr_tensor *mask = ctx->out[1];
    if (mask->dtype == ONR_BOOL) {
        memset(mask->data, 1, (size_t)mask->numel);
    } else {
        for (int64_t i = 0; i < mask->numel; i++) onr_set_f64(mask, i, 1.0);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_dropout = {.create = dropout_create, .reshape = dropout_reshape,
                                      .run = dropout_run, .params_size = sizeof(dropout_params),
                                      .types = ONR_TYPES_FLOAT, .flags = ONR_OP_VIEW};

/* ---- Shape, Size -------------------------------------------------------------- */

/* Both depend only on the input's shape, never its data (which may not
 * exist yet): reshape computes the values, run writes them out. */
typedef struct shape_params {
    int64_t start, end;         /* opset 15 slicing attributes, as given */
    int has_end;
    int64_t n;                  /* reshape: the values Shape reports */
    int64_t vals[ONR_MAX_RANK];
} shape_params;

static int shape_create(onr_create_ctx *c, void *params)
{
    shape_params *p = params;
    if (c->opset >= 15) {
        p->start = onr_attr_int(c->node, "start", 0);
        p->has_end = onr_node_attr(c->node, "end") != NULL;
        p->end = onr_attr_int(c->node, "end", 0);
    }
    return ONR_OK;
}

static int shape_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    shape_params *p = ctx->params;
    int st = tn_check_data(ctx, 0, 19);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int64_t rank = x->rank, s = p->start, e = p->has_end ? p->end : rank;
    if (s < 0) s += rank;
    if (e < 0) e += rank;
    s = s < 0 ? 0 : s > rank ? rank : s;
    e = e < 0 ? 0 : e > rank ? rank : e;
    if (e < s) e = s;
    p->n = e - s;
    for (int64_t i = s; i < e; i++) p->vals[i - s] = x->dims[i];
    return onr_set_out(ctx, 0, ONR_INT64, 1, &p->n);
}

static int shape_run(const onr_kctx *ctx)
{
    const shape_params *p = ctx->params;
    if (p->n) memcpy(ctx->out[0]->data, p->vals, (size_t)p->n * sizeof *p->vals);
    return ONR_OK;
}

const onr_op_impl onr_impl_shape = {.create = shape_create, .reshape = shape_reshape,
                                    .run = shape_run, .params_size = sizeof(shape_params),
                                    .types = ONR_TYPES_ALL | TN_TYPES_LOWP};

typedef struct size_params {
    int64_t numel; /* reshape: the input's element count */
} size_params;

static int size_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    size_params *p = ctx->params;
    int st = tn_check_data(ctx, 0, 19);
    if (st) return st;
    p->numel = ctx->in[0]->numel;
    return onr_set_out(ctx, 0, ONR_INT64, 0, NULL);
}

static int size_run(const onr_kctx *ctx)
{
    const size_params *p = ctx->params;
    *(int64_t *)ctx->out[0]->data = p->numel;
    return ONR_OK;
}

const onr_op_impl onr_impl_size = {.reshape = size_reshape, .run = size_run,
                                   .params_size = sizeof(size_params),
                                   .types = ONR_TYPES_ALL | TN_TYPES_LOWP};
