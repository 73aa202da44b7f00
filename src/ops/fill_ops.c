/*
 * fill_ops.c - operators that produce values rather than move them:
 * Constant, ConstantOfShape, Range, Trilu and CumSum.
 */
#include <math.h>
#include <string.h>

#include "ops/tensor.h"

/* ---- Constant ------------------------------------------------------------------ */

/* Exactly one of these attributes holds the value. */
static const char *const constant_attrs[] = {"value",        "value_float",  "value_floats",
                                             "value_int",    "value_ints",   "value_string",
                                             "value_strings", "sparse_value"};

static int constant_attr(onr_kctx *ctx, const onr_attr **out)
{
    const onr_attr *found = NULL;
    int n = 0;
    for (size_t i = 0; i < sizeof constant_attrs / sizeof constant_attrs[0]; i++) {
        const onr_attr *a = onr_node_attr(ctx->node, constant_attrs[i]);
        if (a) {
            found = a;
            n++;
        }
    }
    if (n != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "Constant needs exactly one value attribute, has %d", n);
    if (strcmp(found->name, "sparse_value") == 0)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "sparse_value is not supported");
    /* the attribute's type must be the one its name says */
    static const struct {
        const char *name;
        onr_attr_type type;
    } types[] = {{"value", ONR_ATTR_TENSOR},          {"value_float", ONR_ATTR_FLOAT},
                 {"value_floats", ONR_ATTR_FLOATS},   {"value_int", ONR_ATTR_INT},
                 {"value_ints", ONR_ATTR_INTS},       {"value_string", ONR_ATTR_STRING},
                 {"value_strings", ONR_ATTR_STRINGS}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(found->name, types[i].name) == 0 &&
            (found->type != types[i].type || (types[i].type == ONR_ATTR_TENSOR && !found->t)))
            return onr_seterr(ctx->err, ONR_E_MODEL, "attribute '%s' has the wrong type", found->name);
    *out = found;
    return ONR_OK;
}

static int constant_shape(onr_kctx *ctx)
{
    const onr_attr *a;
    int st = constant_attr(ctx, &a);
    if (st) return st;
    int64_t n = (int64_t)a->n;
    switch (a->type) {
    case ONR_ATTR_TENSOR: return onr_set_out(ctx, 0, a->t->dtype, a->t->rank, a->t->dims);
    case ONR_ATTR_FLOAT: return onr_set_out(ctx, 0, ONR_FLOAT, 0, NULL);
    case ONR_ATTR_FLOATS: return onr_set_out(ctx, 0, ONR_FLOAT, 1, &n);
    case ONR_ATTR_INT: return onr_set_out(ctx, 0, ONR_INT64, 0, NULL);
    case ONR_ATTR_INTS: return onr_set_out(ctx, 0, ONR_INT64, 1, &n);
    case ONR_ATTR_STRING: return onr_set_out(ctx, 0, ONR_STRING, 0, NULL);
    default: return onr_set_out(ctx, 0, ONR_STRING, 1, &n);
    }
}

static int constant_run(onr_kctx *ctx)
{
    const onr_attr *a;
    int st = constant_attr(ctx, &a);
    if (st) return st;
    onr_tensor *y = ctx->out[0];
    const void *src;
    switch (a->type) {
    case ONR_ATTR_TENSOR: src = a->t->data; break;
    case ONR_ATTR_FLOAT: src = &a->f; break;
    case ONR_ATTR_FLOATS: src = a->floats; break;
    case ONR_ATTR_INT: src = &a->i; break;
    case ONR_ATTR_INTS: src = a->ints; break;
    case ONR_ATTR_STRING: src = &a->s; break;
    default: src = a->strings; break;
    }
    int64_t n = a->type == ONR_ATTR_TENSOR ? a->t->numel : y->numel;
    if (n != y->numel)
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "output size does not match the value");
    if (n > 0 && !src) return onr_seterr(ctx->err, ONR_E_MODEL, "the value has no data");
    if (tn_copy(y->dtype, y->data, src, n))
        return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory copying strings");
    return ONR_OK;
}

const onr_op_impl onr_impl_constant = {.shape = constant_shape, .run = constant_run,
                                       .types = ONR_TYPES_ALL};

/* ---- ConstantOfShape --------------------------------------------------------- */

static int cos_value(onr_kctx *ctx, const onr_tensor **v)
{
    const onr_attr *a = onr_node_attr(ctx->node, "value");
    *v = NULL;
    if (!a) return ONR_OK;
    if (a->type != ONR_ATTR_TENSOR || !a->t || a->t->numel != 1 || !a->t->data)
        return onr_seterr(ctx->err, ONR_E_MODEL, "value must be a one-element tensor");
    *v = a->t;
    return ONR_OK;
}

static int cos_dims(onr_kctx *ctx, int64_t *dims, int *n)
{
    int st = onr_check_input(ctx, 0, ONR_T(ONR_INT64));
    if (st || (st = onr_read_ints(ctx, 0, dims, ONR_MAX_RANK, n))) return st;
    for (int i = 0; i < *n; i++)
        if (dims[i] < 0) {
            char b[256];
            return onr_seterr(ctx->err, ONR_E_MODEL, "shape %s has a negative dim",
                              onr_fmt_dims(b, sizeof b, dims, *n));
        }
    return ONR_OK;
}

static int cos_shape(onr_kctx *ctx)
{
    const onr_tensor *v;
    int64_t dims[ONR_MAX_RANK];
    int n, st = cos_value(ctx, &v);
    if (st || (st = cos_dims(ctx, dims, &n))) return st;
    return onr_set_out(ctx, 0, v ? v->dtype : ONR_FLOAT, n, dims);
}

static int cos_run(onr_kctx *ctx)
{
    const onr_tensor *v;
    int st = cos_value(ctx, &v);
    if (st) return st;
    onr_tensor *y = ctx->out[0];
    if (!v) return tn_zero(y->dtype, y->data, y->numel);
    if (v->dtype != y->dtype)
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "output type does not match the value");
    if (tn_fill(y->dtype, y->data, v->data, y->numel))
        return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory filling strings");
    return ONR_OK;
}

const onr_op_impl onr_impl_constantofshape = {.shape = cos_shape, .run = cos_run,
                                              .types = ONR_T(ONR_INT64)};

/* ---- Range --------------------------------------------------------------------- */

#define RANGE_TYPES (ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_INT16) | \
                     ONR_T(ONR_INT32) | ONR_T(ONR_INT64))

static int64_t range_int_at(const onr_tensor *t)
{
    switch (t->dtype) {
    case ONR_INT16: return ((const int16_t *)t->data)[0];
    case ONR_INT32: return ((const int32_t *)t->data)[0];
    default: return ((const int64_t *)t->data)[0];
    }
}

/* Element count max(ceil((limit - start) / delta), 0); integers exactly. */
static int range_count(onr_kctx *ctx, int64_t *n)
{
    for (int i = 0; i < 3; i++) {
        int st = onr_check_input(ctx, i, RANGE_TYPES);
        if (st) return st;
        if (ctx->in[i]->dtype != ctx->in[0]->dtype)
            return onr_seterr(ctx->err, ONR_E_MODEL, "input %d is %s, input 0 is %s", i,
                              onr_dtype_name(ctx->in[i]->dtype), onr_dtype_name(ctx->in[0]->dtype));
        if (ctx->in[i]->numel != 1 || ctx->in[i]->rank > 1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "input %d must be a scalar", i);
        if (!ctx->in[i]->data) return ONR_SHAPE_DEFER;
    }
    onr_dtype dt = ctx->in[0]->dtype;
    if (dt == ONR_FLOAT || dt == ONR_DOUBLE) {
        double s = onr_get_f64(ctx->in[0], 0), l = onr_get_f64(ctx->in[1], 0),
               d = onr_get_f64(ctx->in[2], 0);
        double c = ceil((l - s) / d);
        if (d == 0 || isnan(c) || c > 4.0e18)
            return onr_seterr(ctx->err, ONR_E_MODEL, "Range(%g, %g, %g) has no valid length", s, l, d);
        *n = c > 0 ? (int64_t)c : 0;
        return ONR_OK;
    }
    int64_t s = range_int_at(ctx->in[0]), l = range_int_at(ctx->in[1]), d = range_int_at(ctx->in[2]);
    if (d == 0) return onr_seterr(ctx->err, ONR_E_MODEL, "Range delta is 0");
    uint64_t c = 0; /* differences taken in uint64 are exact when positive */
    if (d > 0 && l > s) c = ((uint64_t)l - (uint64_t)s - 1) / (uint64_t)d + 1;
    if (d < 0 && s > l) c = ((uint64_t)s - (uint64_t)l - 1) / (0 - (uint64_t)d) + 1;
    if (c > (uint64_t)INT64_MAX)
        return onr_seterr(ctx->err, ONR_E_NOMEM, "Range has %llu elements", (unsigned long long)c);
    *n = (int64_t)c;
    return ONR_OK;
}

static int range_shape(onr_kctx *ctx)
{
    int64_t n;
    int st = range_count(ctx, &n);
    return st ? st : onr_set_out(ctx, 0, ctx->in[0]->dtype, 1, &n);
}

static int range_run(onr_kctx *ctx)
{
    int64_t n;
    int st = range_count(ctx, &n);
    if (st || (st = tn_check_out(ctx, 0, 1, &n))) return tn_nodefer(ctx, st);
    onr_tensor *y = ctx->out[0];
    if (y->dtype == ONR_FLOAT || y->dtype == ONR_DOUBLE) {
        double s = onr_get_f64(ctx->in[0], 0), d = onr_get_f64(ctx->in[2], 0);
        for (int64_t i = 0; i < n; i++) onr_set_f64(y, i, s + (double)i * d);
        return ONR_OK;
    }
    /* start + i * delta stays between start and limit; wrap-free in uint64 */
    uint64_t s = (uint64_t)range_int_at(ctx->in[0]), d = (uint64_t)range_int_at(ctx->in[2]);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = (int64_t)(s + (uint64_t)i * d);
        switch (y->dtype) {
        case ONR_INT16: ((int16_t *)y->data)[i] = (int16_t)v; break;
        case ONR_INT32: ((int32_t *)y->data)[i] = (int32_t)v; break;
        default: ((int64_t *)y->data)[i] = v; break;
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_range = {.shape = range_shape, .run = range_run, .types = RANGE_TYPES};

/* ---- Trilu --------------------------------------------------------------------- */

static int trilu_shape(onr_kctx *ctx)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st) return st;
    char b[256];
    if (ctx->in[0]->rank < 2)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input %s must have rank >= 2",
                          TN_DIMS(b, ctx->in[0]));
    if (ctx->n_in > 1 && ctx->in[1]) {
        if ((st = onr_check_input(ctx, 1, ONR_T(ONR_INT64)))) return st;
        if (ctx->in[1]->numel != 1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "k must hold one value, it has %lld",
                              (long long)ctx->in[1]->numel);
    }
    return onr_set_out_like(ctx, 0, 0);
}

static int trilu_run(onr_kctx *ctx)
{
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    int st = tn_check_out(ctx, 0, x->rank, x->dims);
    if (st) return st;
    if (x->numel == 0) return ONR_OK;
    int64_t N = x->dims[x->rank - 2], M = x->dims[x->rank - 1];
    int64_t k = 0;
    if (ctx->n_in > 1 && ctx->in[1]) {
        if (!ctx->in[1]->data) return tn_nodefer(ctx, ONR_SHAPE_DEFER);
        k = ((const int64_t *)ctx->in[1]->data)[0];
    }
    /* beyond +-(N + M) every k gives the same result; clamping avoids overflow */
    if (k > N + M) k = N + M;
    if (k < -(N + M)) k = -(N + M);
    int upper = onr_attr_int(ctx->node, "upper", 1) != 0;
    size_t esz = tn_esz(x->dtype);
    int64_t mats = (N > 0 && M > 0) ? x->numel / (N * M) : 0;
    for (int64_t b = 0; b < mats; b++)
        for (int64_t i = 0; i < N; i++) {
            int64_t row = (b * N + i) * M;
            char *dst = (char *)y->data + (size_t)row * esz;
            const char *src = (const char *)x->data + (size_t)row * esz;
            /* upper keeps j >= i + k; lower keeps j <= i + k */
            int64_t c = upper ? i + k : i + k + 1;
            c = c < 0 ? 0 : c > M ? M : c;
            int64_t zero0 = upper ? 0 : c, zero1 = upper ? c : M;
            int64_t keep0 = upper ? c : 0, keep1 = upper ? M : c;
            if (tn_zero(x->dtype, dst + (size_t)zero0 * esz, zero1 - zero0) ||
                tn_copy(x->dtype, dst + (size_t)keep0 * esz, src + (size_t)keep0 * esz, keep1 - keep0))
                return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory copying strings");
        }
    return ONR_OK;
}

const onr_op_impl onr_impl_trilu = {.shape = trilu_shape, .run = trilu_run,
                                    .types = ONR_TYPES_ALL};

/* ---- CumSum -------------------------------------------------------------------- */

#define CUMSUM_TYPES (ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_INT32) | ONR_T(ONR_INT64) | \
                      ONR_T(ONR_UINT32) | ONR_T(ONR_UINT64) | ONR_T(ONR_FLOAT16) |                \
                      ONR_T(ONR_BFLOAT16))

static int cumsum_axis(onr_kctx *ctx, int *axis)
{
    int st = onr_check_input(ctx, 0, CUMSUM_TYPES);
    if (st || (st = onr_check_input(ctx, 1, ONR_T(ONR_INT32) | ONR_T(ONR_INT64)))) return st;
    const onr_tensor *a = ctx->in[1];
    if (a->numel != 1 || a->rank > 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "axis must hold one value, it has %lld",
                          (long long)a->numel);
    if (!a->data) return ONR_SHAPE_DEFER;
    int r = ctx->in[0]->rank;
    return onr_norm_axis(ctx->err, tn_index_at(a, 0), r, axis);
}

static int cumsum_shape(onr_kctx *ctx)
{
    int axis, st = cumsum_axis(ctx, &axis);
    if (st && st != ONR_SHAPE_DEFER) return st; /* the shape does not need the axis value */
    return onr_set_out_like(ctx, 0, 0);
}

static int cumsum_prepare(onr_kctx *ctx, size_t *scratch)
{
    /* fp16/bf16 sum in float accumulators, one per inner position. The
     * planner prepares again only when shapes change, not when the axis
     * value does, so reserve for the largest inner size (axis 0). */
    const onr_tensor *x = ctx->in[0];
    *scratch = 0;
    if (x->dtype == ONR_FLOAT16 || x->dtype == ONR_BFLOAT16) {
        int64_t inner = tn_prod(x->dims, x->rank > 0 ? 1 : 0, x->rank);
        *scratch = (size_t)(inner > 0 ? inner : 1) * sizeof(float);
    }
    return ONR_OK;
}

/* Step s of the scan visits k (reversed: L-1-s); the previous step's output
 * row plus x at k (inclusive) or at the previous k (exclusive). */
#define CUMSUM_NATIVE(T, U)                                                              \
    do {                                                                                 \
        const T *xs = (const T *)x->data + o * L * inner;                                \
        T *ys = (T *)y->data + o * L * inner;                                            \
        for (int64_t s = 0; s < L; s++) {                                                \
            int64_t k = rev ? L - 1 - s : s, p = rev ? k + 1 : k - 1;                    \
            T *yk = ys + k * inner;                                                      \
            if (s == 0) {                                                                \
                for (int64_t j = 0; j < inner; j++) yk[j] = excl ? (T)0 : xs[k * inner + j]; \
                continue;                                                                \
            }                                                                            \
            const T *yp = ys + p * inner, *xa = xs + (excl ? p : k) * inner;             \
            for (int64_t j = 0; j < inner; j++) yk[j] = (T)((U)yp[j] + (U)xa[j]);        \
        }                                                                                \
    } while (0)

#define CUMSUM_HALF(TOF, FROMF)                                                          \
    do {                                                                                 \
        const uint16_t *xs = (const uint16_t *)x->data + o * L * inner;                  \
        uint16_t *ys = (uint16_t *)y->data + o * L * inner;                              \
        for (int64_t j = 0; j < inner; j++) acc[j] = 0.f;                                \
        for (int64_t s = 0; s < L; s++) {                                                \
            int64_t k = rev ? L - 1 - s : s;                                             \
            for (int64_t j = 0; j < inner; j++) {                                        \
                float v = TOF(xs[k * inner + j]);                                        \
                if (!excl) acc[j] += v;                                                  \
                ys[k * inner + j] = FROMF(acc[j]);                                       \
                if (excl) acc[j] += v;                                                   \
            }                                                                            \
        }                                                                                \
    } while (0)

static int cumsum_run(onr_kctx *ctx)
{
    int axis, st = cumsum_axis(ctx, &axis);
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    if (st || (st = tn_check_out(ctx, 0, x->rank, x->dims))) return tn_nodefer(ctx, st);
    if (x->numel == 0) return ONR_OK;
    int excl = onr_attr_int(ctx->node, "exclusive", 0) != 0;
    int rev = onr_attr_int(ctx->node, "reverse", 0) != 0;
    int64_t L = x->rank ? x->dims[axis] : 1;
    int64_t outer = x->rank ? tn_prod(x->dims, 0, axis) : 1;
    int64_t inner = x->rank ? tn_prod(x->dims, axis + 1, x->rank) : 1;
    float *acc = ctx->scratch;
    if ((x->dtype == ONR_FLOAT16 || x->dtype == ONR_BFLOAT16) &&
        ctx->scratch_size < (size_t)inner * sizeof(float))
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "CumSum scratch is too small");
    for (int64_t o = 0; o < outer; o++) {
        switch (x->dtype) {
        case ONR_FLOAT: CUMSUM_NATIVE(float, float); break;
        case ONR_DOUBLE: CUMSUM_NATIVE(double, double); break;
        case ONR_INT32: CUMSUM_NATIVE(int32_t, uint32_t); break;
        case ONR_INT64: CUMSUM_NATIVE(int64_t, uint64_t); break;
        case ONR_UINT32: CUMSUM_NATIVE(uint32_t, uint32_t); break;
        case ONR_UINT64: CUMSUM_NATIVE(uint64_t, uint64_t); break;
        case ONR_FLOAT16: CUMSUM_HALF(onr_half_to_float, onr_float_to_half); break;
        default: CUMSUM_HALF(onr_bf16_to_float, onr_float_to_bf16); break;
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_cumsum = {.shape = cumsum_shape, .prepare = cumsum_prepare,
                                     .run = cumsum_run, .types = CUMSUM_TYPES};

/* ---- EyeLike ------------------------------------------------------------------- */

#define EYELIKE_TYPES (ONR_TYPES_NUM | ONR_T(ONR_BOOL))

static int eyelike_dtype(onr_kctx *ctx, onr_dtype *dt)
{
    int st = onr_check_input(ctx, 0, EYELIKE_TYPES);
    if (st) return st;
    char b[256];
    if (ctx->in[0]->rank != 2)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input %s must be 2-D", TN_DIMS(b, ctx->in[0]));
    int64_t d = onr_attr_int(ctx->node, "dtype", ctx->in[0]->dtype);
    if (d < 0 || d >= 32 || !(EYELIKE_TYPES & ONR_T(d)))
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "dtype %lld is not supported", (long long)d);
    *dt = (onr_dtype)d;
    return ONR_OK;
}

static int eyelike_shape(onr_kctx *ctx)
{
    onr_dtype dt;
    int st = eyelike_dtype(ctx, &dt);
    return st ? st : onr_set_out(ctx, 0, dt, 2, ctx->in[0]->dims);
}

/* Reads only the input's shape. */
static int eyelike_run(onr_kctx *ctx)
{
    onr_tensor *y = ctx->out[0];
    int st = tn_check_out(ctx, 0, 2, ctx->in[0]->dims);
    if (st) return st;
    int64_t R = y->dims[0], C = y->dims[1], k = onr_attr_int(ctx->node, "k", 0);
    tn_zero(y->dtype, y->data, y->numel);
    for (int64_t i = 0; i < R; i++) {
        if (k >= C - i || k < -i) continue; /* column i + k outside [0, C) */
        onr_set_f64(y, i * C + i + k, 1.0);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_eyelike = {.shape = eyelike_shape, .run = eyelike_run,
                                      .types = EYELIKE_TYPES};
