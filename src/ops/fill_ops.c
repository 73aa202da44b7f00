/*
 * fill_ops.c - operators that produce values rather than move them:
 * Constant, ConstantOfShape, Range, Trilu, CumSum and EyeLike.
 *
 * create reads the attributes (the constant's value, upper, exclusive,
 * reverse, k, dtype); reshape reads the inputs the output shape depends on
 * (ConstantOfShape's shape, Range's bounds, CumSum's axis for its geometry)
 * and run fills the output.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/tensor.h"

/* In run: every input value is known, a missing one is an error (the
 * message of tn_nodefer). */
static int unknown_at_run(onr_err *err)
{
    return onr_seterr(err, ONR_E_RUNTIME, "an input value is still unknown at run time");
}

/* ---- Constant ------------------------------------------------------------------ */

/* A value of an 8-, 4- or 2-bit type only from the opset that lists it
 * (tensor.h): Constant's float8 came at 19, ConstantOfShape's at 20; and
 * bfloat16 from bf16_since (Constant: 13; ConstantOfShape: 20, with
 * float8). */
static int lowp_value_ok(const onr_create_ctx *c, onr_dtype dt, int float8_since, int bf16_since)
{
    int since = dt == ONR_BFLOAT16 ? bf16_since : tn_lowp_since(dt, float8_since);
    if (since && c->opset < since)
        return onr_seterr(c->err, ONR_E_MODEL, "a %s value needs opset %d or later, this is %lld",
                          onr_dtype_name(dt), since, (long long)c->opset);
    return ONR_OK;
}

/* The value, as the node's attribute holds it: src borrows the attribute's
 * data (the node outlives its steps), so a large constant is not held
 * twice. */
typedef struct constant_params {
    onr_dtype dtype;
    int rank;
    int64_t dims[ONR_MAX_RANK];
    int64_t numel;
    const void *src;
} constant_params;

/* Exactly one of these attributes holds the value. */
static const char *const constant_attrs[] = {"value",        "value_float",  "value_floats",
                                             "value_int",    "value_ints",   "value_string",
                                             "value_strings", "sparse_value"};

static int constant_attr(onr_create_ctx *c, const onr_attr **out)
{
    const onr_attr *found = NULL;
    int n = 0;
    for (size_t i = 0; i < sizeof constant_attrs / sizeof constant_attrs[0]; i++) {
        const onr_attr *a = onr_node_attr(c->node, constant_attrs[i]);
        if (a) {
            found = a;
            n++;
        }
    }
    if (n != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "Constant needs exactly one value attribute, has %d", n);
    if (strcmp(found->name, "sparse_value") == 0)
        return onr_seterr(c->err, ONR_E_UNSUPPORTED, "sparse_value is not supported");
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
            return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' has the wrong type", found->name);
    *out = found;
    return ONR_OK;
}

static int constant_create(onr_create_ctx *c, void *params)
{
    constant_params *p = params;
    const onr_attr *a = NULL;
    int st = constant_attr(c, &a);
    if (st) return st;
    p->rank = 0;
    p->numel = 1;
    switch (a->type) {
    case ONR_ATTR_TENSOR:
        p->dtype = a->t->dtype;
        p->rank = a->t->rank;
        memcpy(p->dims, a->t->dims, sizeof p->dims);
        p->numel = a->t->numel;
        p->src = a->t->data;
        break;
    case ONR_ATTR_FLOAT: p->dtype = ONR_FLOAT; p->src = &a->f; break;
    case ONR_ATTR_FLOATS: p->dtype = ONR_FLOAT; p->rank = 1; p->src = a->floats; break;
    case ONR_ATTR_INT: p->dtype = ONR_INT64; p->src = &a->i; break;
    case ONR_ATTR_INTS: p->dtype = ONR_INT64; p->rank = 1; p->src = a->ints; break;
    case ONR_ATTR_STRING: p->dtype = ONR_STRING; p->src = &a->s; break;
    default: p->dtype = ONR_STRING; p->rank = 1; p->src = a->strings; break;
    }
    if (p->rank == 1 && a->type != ONR_ATTR_TENSOR) p->numel = p->dims[0] = (int64_t)a->n;
    if (p->numel > 0 && !p->src) return onr_seterr(c->err, ONR_E_MODEL, "the value has no data");
    return lowp_value_ok(c, p->dtype, 19, 13);
}

static int constant_reshape(onr_kctx *ctx, size_t *scratch)
{
    const constant_params *p = ctx->params;
    *scratch = 0;
    return onr_set_out(ctx, 0, p->dtype, p->rank, p->dims);
}

static int constant_run(const onr_kctx *ctx)
{
    const constant_params *p = ctx->params;
    onr_tensor *y = ctx->out[0];
    if (tn_copy(y->dtype, y->data, p->src, p->numel))
        return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory copying strings");
    return ONR_OK;
}

const onr_op_impl onr_impl_constant = {.create = constant_create, .reshape = constant_reshape,
                                       .run = constant_run, .params_size = sizeof(constant_params),
                                       .types = ONR_TYPES_ALL | TN_TYPES_LOWP};

/* ---- ConstantOfShape --------------------------------------------------------- */

typedef struct cos_params {
    int has_value; /* without a value: float zeros */
    onr_dtype dtype;
    union {
        unsigned char bytes[16];
        char *s; /* STRING: owned copy */
    } value;
} cos_params;

static int cos_create(onr_create_ctx *c, void *params)
{
    cos_params *p = params;
    const onr_attr *a = onr_node_attr(c->node, "value");
    p->dtype = ONR_FLOAT;
    if (!a) return ONR_OK;
    if (a->type != ONR_ATTR_TENSOR || !a->t || a->t->numel != 1 || !a->t->data)
        return onr_seterr(c->err, ONR_E_MODEL, "value must be a one-element tensor");
    const onr_tensor *v = a->t;
    if (v->dtype == ONR_STRING) {
        const char *s = ((char *const *)v->data)[0];
        if (!(p->value.s = onr_strdup(s ? s : "")))
            return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
    } else {
        size_t esz = onr_dtype_size(v->dtype);
        if (esz == 0 || esz > sizeof p->value.bytes)
            return onr_seterr(c->err, ONR_E_UNSUPPORTED, "value of type %s is not supported",
                              onr_dtype_name(v->dtype));
        memcpy(p->value.bytes, v->data, esz);
        int st = lowp_value_ok(c, v->dtype, 20, 20);
        if (st) return st;
    }
    p->dtype = v->dtype;
    p->has_value = 1;
    return ONR_OK;
}

static void cos_destroy(void *params)
{
    cos_params *p = params;
    if (p->has_value && p->dtype == ONR_STRING) free(p->value.s);
}

/* The output shape is input 0's values: a shape input. */
static int cos_reshape(onr_kctx *ctx, size_t *scratch)
{
    const cos_params *p = ctx->params;
    int64_t dims[ONR_MAX_RANK];
    int n;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_T(ONR_INT64));
    if (st || (st = onr_read_ints(ctx, 0, dims, ONR_MAX_RANK, &n))) return st;
    for (int i = 0; i < n; i++)
        if (dims[i] < 0) {
            char b[256];
            return onr_seterr(ctx->err, ONR_E_MODEL, "shape %s has a negative dim",
                              onr_fmt_dims(b, sizeof b, dims, n));
        }
    return onr_set_out(ctx, 0, p->dtype, n, dims);
}

static int cos_run(const onr_kctx *ctx)
{
    const cos_params *p = ctx->params;
    onr_tensor *y = ctx->out[0];
    if (!p->has_value) return tn_zero(y->dtype, y->data, y->numel);
    if (tn_fill(y->dtype, y->data, &p->value, y->numel))
        return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory filling strings");
    return ONR_OK;
}

const onr_op_impl onr_impl_constantofshape = {
    .create = cos_create, .reshape = cos_reshape, .run = cos_run, .destroy = cos_destroy,
    .params_size = sizeof(cos_params), .types = ONR_T(ONR_INT64), .shape_inputs = 1u << 0};

/* ---- Range --------------------------------------------------------------------- */

#define RANGE_TYPES (ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_INT16) | \
                     ONR_T(ONR_INT32) | ONR_T(ONR_INT64))

typedef struct range_params {
    int64_t n; /* elements: reshape counts them from the three inputs */
} range_params;

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

/* The length is the inputs' values: all three are shape inputs. */
static int range_reshape(onr_kctx *ctx, size_t *scratch)
{
    range_params *p = ctx->params;
    int64_t n;
    *scratch = 0;
    int st = range_count(ctx, &n);
    if (st || (st = onr_set_out(ctx, 0, ctx->in[0]->dtype, 1, &n))) return st;
    p->n = n;
    return ONR_OK;
}

static int range_run(const onr_kctx *ctx)
{
    const range_params *p = ctx->params;
    int64_t n = p->n;
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

const onr_op_impl onr_impl_range = {.reshape = range_reshape, .run = range_run,
                                    .params_size = sizeof(range_params), .types = RANGE_TYPES,
                                    .shape_inputs = (1u << 0) | (1u << 1) | (1u << 2)};

/* ---- Trilu --------------------------------------------------------------------- */

typedef struct trilu_params {
    int upper; /* attribute */
    /* reshape */
    int64_t N, M, mats; /* rows, columns, matrices */
    size_t esz;
} trilu_params;

static int trilu_create(onr_create_ctx *c, void *params)
{
    trilu_params *p = params;
    p->upper = onr_attr_int(c->node, "upper", 1) != 0;
    return ONR_OK;
}

/* k (input 1) moves the diagonal, not the shape: run reads it. */
static int trilu_reshape(onr_kctx *ctx, size_t *scratch)
{
    trilu_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    char b[256];
    if (x->rank < 2)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input %s must have rank >= 2", TN_DIMS(b, x));
    if (ctx->n_in > 1 && ctx->in[1]) {
        if ((st = onr_check_input(ctx, 1, ONR_T(ONR_INT64)))) return st;
        if (ctx->in[1]->numel != 1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "k must hold one value, it has %lld",
                              (long long)ctx->in[1]->numel);
    }
    if ((st = onr_set_out_like(ctx, 0, 0))) return st;
    p->N = x->dims[x->rank - 2];
    p->M = x->dims[x->rank - 1];
    p->mats = x->numel > 0 ? x->numel / (p->N * p->M) : 0;
    p->esz = tn_esz(x->dtype);
    return ONR_OK;
}

static int trilu_run(const onr_kctx *ctx)
{
    const trilu_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    if (x->numel == 0) return ONR_OK;
    int64_t N = p->N, M = p->M, k = 0;
    if (ctx->n_in > 1 && ctx->in[1]) {
        if (!ctx->in[1]->data) return unknown_at_run(ctx->err);
        k = ((const int64_t *)ctx->in[1]->data)[0];
    }
    /* beyond +-(N + M) every k gives the same result; clamping avoids overflow */
    if (k > N + M) k = N + M;
    if (k < -(N + M)) k = -(N + M);
    int upper = p->upper;
    size_t esz = p->esz;
    for (int64_t b = 0; b < p->mats; b++)
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

const onr_op_impl onr_impl_trilu = {.create = trilu_create, .reshape = trilu_reshape,
                                    .run = trilu_run, .params_size = sizeof(trilu_params),
                                    .types = ONR_TYPES_ALL};

/* ---- CumSum -------------------------------------------------------------------- */

#define CUMSUM_TYPES (ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_INT32) | ONR_T(ONR_INT64) | \
                      ONR_T(ONR_UINT32) | ONR_T(ONR_UINT64) | ONR_T(ONR_FLOAT16) |                \
                      ONR_T(ONR_BFLOAT16))

enum { CUMSUM_AXIS_UNKNOWN, CUMSUM_AXIS_OK, CUMSUM_AXIS_BAD };

typedef struct cumsum_params {
    int excl, rev;    /* attributes */
    int axis_const;   /* create: the axis input is a constant */
    /* reshape */
    int axis_state;   /* CUMSUM_AXIS_*: whether reshape had a valid axis value */
    int64_t axis_val; /* the value (for run's error when it was bad) */
    int rank;
    int64_t L, outer, inner; /* the scan's length, and the sizes around the axis */
} cumsum_params;

static int cumsum_create(onr_create_ctx *c, void *params)
{
    cumsum_params *p = params;
    p->excl = onr_attr_int(c->node, "exclusive", 0) != 0;
    p->rev = onr_attr_int(c->node, "reverse", 0) != 0;
    p->axis_const = onr_create_const(c, 1) != NULL;
    return ONR_OK;
}

/* The output has the input's shape; the axis value (input 1, a shape input)
 * only sets the geometry. A bad axis value that is not a constant is
 * reported by run: at build time an activation's buffer may not hold its
 * value yet, and reshape runs again once it changes. */
static int cumsum_reshape(onr_kctx *ctx, size_t *scratch)
{
    cumsum_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, CUMSUM_TYPES);
    if (st || (st = onr_check_input(ctx, 1, ONR_T(ONR_INT32) | ONR_T(ONR_INT64)))) return st;
    const onr_tensor *x = ctx->in[0], *a = ctx->in[1];
    if (a->numel != 1 || a->rank > 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "axis must hold one value, it has %lld",
                          (long long)a->numel);
    if ((st = onr_set_out_like(ctx, 0, 0))) return st;
    p->rank = x->rank;
    p->axis_state = CUMSUM_AXIS_UNKNOWN;
    p->L = p->outer = p->inner = 0;
    int axis = 0;
    if (a->data) {
        p->axis_val = tn_index_at(a, 0);
        onr_err tmp = {0};
        if (onr_norm_axis(p->axis_const ? ctx->err : &tmp, p->axis_val, x->rank, &axis)) {
            if (p->axis_const) return ONR_E_MODEL;
            p->axis_state = CUMSUM_AXIS_BAD;
        } else {
            p->axis_state = CUMSUM_AXIS_OK;
        }
    }
    int known = p->axis_state == CUMSUM_AXIS_OK;
    if (known && x->numel > 0) {
        p->L = x->rank ? x->dims[axis] : 1;
        p->outer = x->rank ? tn_prod(x->dims, 0, axis) : 1;
        p->inner = x->rank ? tn_prod(x->dims, axis + 1, x->rank) : 1;
    }
    /* fp16/bf16 sum in float accumulators, one per inner position; without
     * the axis value, room for the largest inner size (axis 0) */
    if ((x->dtype == ONR_FLOAT16 || x->dtype == ONR_BFLOAT16) && x->numel > 0) {
        int64_t inner = known ? p->inner : tn_prod(x->dims, x->rank > 0 ? 1 : 0, x->rank);
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

static int cumsum_run(const onr_kctx *ctx)
{
    const cumsum_params *cp = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    if (cp->axis_state == CUMSUM_AXIS_UNKNOWN) return unknown_at_run(ctx->err);
    if (cp->axis_state == CUMSUM_AXIS_BAD) {
        int axis;
        return onr_norm_axis(ctx->err, cp->axis_val, cp->rank, &axis); /* sets the message */
    }
    if (x->numel == 0) return ONR_OK;
    int excl = cp->excl, rev = cp->rev;
    int64_t L = cp->L, outer = cp->outer, inner = cp->inner;
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

const onr_op_impl onr_impl_cumsum = {.create = cumsum_create, .reshape = cumsum_reshape,
                                     .run = cumsum_run, .params_size = sizeof(cumsum_params),
                                     .types = CUMSUM_TYPES, .shape_inputs = 1u << 1};

/* ---- EyeLike ------------------------------------------------------------------- */

#define EYELIKE_TYPES (ONR_TYPES_NUM | ONR_T(ONR_BOOL))

typedef struct eyelike_params {
    int64_t k;     /* diagonal offset */
    int64_t dtype; /* -1: the input's type */
} eyelike_params;

static int eyelike_create(onr_create_ctx *c, void *params)
{
    eyelike_params *p = params;
    p->k = onr_attr_int(c->node, "k", 0);
    p->dtype = -1;
    const onr_attr *a = onr_attr_get(c->node, "dtype", ONR_ATTR_INT);
    if (a) {
        int64_t d = a->i;
        if (d < 0 || d >= 32 || !(EYELIKE_TYPES & ONR_T(d)))
            return onr_seterr(c->err, ONR_E_UNSUPPORTED, "dtype %lld is not supported", (long long)d);
        p->dtype = d;
    }
    return ONR_OK;
}

static int eyelike_reshape(onr_kctx *ctx, size_t *scratch)
{
    const eyelike_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, EYELIKE_TYPES);
    if (st) return st;
    char b[256];
    if (ctx->in[0]->rank != 2)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input %s must be 2-D", TN_DIMS(b, ctx->in[0]));
    onr_dtype dt = p->dtype >= 0 ? (onr_dtype)p->dtype : ctx->in[0]->dtype;
    return onr_set_out(ctx, 0, dt, 2, ctx->in[0]->dims);
}

/* Reads only the input's shape. */
static int eyelike_run(const onr_kctx *ctx)
{
    const eyelike_params *p = ctx->params;
    onr_tensor *y = ctx->out[0];
    int64_t R = y->dims[0], C = y->dims[1], k = p->k;
    tn_zero(y->dtype, y->data, y->numel);
    for (int64_t i = 0; i < R; i++) {
        if (k >= C - i || k < -i) continue; /* column i + k outside [0, C) */
        onr_set_f64(y, i * C + i + k, 1.0);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_eyelike = {.create = eyelike_create, .reshape = eyelike_reshape,
                                      .run = eyelike_run, .params_size = sizeof(eyelike_params),
                                      .types = EYELIKE_TYPES};
