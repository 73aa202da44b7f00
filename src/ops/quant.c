/*
 * quant.c - QuantizeLinear and DequantizeLinear (opsets 10 to 25) and
 * DynamicQuantizeLinear (11).
 *
 *   QuantizeLinear:   y = saturate(round(x / y_scale) + y_zero_point)
 *   DequantizeLinear: y = (x - x_zero_point) * x_scale
 *
 * The scale (and the zero point, of the same shape) is a scalar (per
 * tensor), a 1-D tensor along `axis` (per axis, opset 13+) or x's shape with
 * the axis dim divided into blocks of `block_size` (blocked, opset 21+).
 * reshape reduces all three to one walk: x is [outer, len, inner] around the
 * axis, and each row (outer, len index) reads its scales from a base index
 * with a stride of 0 (per tensor, per axis) or 1 (blocked).
 *
 * Arithmetic follows the specification's precision rules exactly: Quantize
 * divides in the precision type (the `precision` attribute, else y_scale's
 * type: x and the scale are rounded to it, the quotient is computed in double
 * and rounded to it, which is the correctly rounded result for float32,
 * float16 and bfloat16), then rounds half to even, adds the zero point and
 * saturates. Dequantize multiplies in the output type the same way. An int32
 * scale divides in double.
 *
 * Types by opset: x/y int8, uint8 (10); float8 e4m3fn/e4m3fnuz/e5m2/
 * e5m2fnuz with `saturate` (19); int16, uint16, int4, uint4 (21); float4e2m1
 * (23); float8e8m0 scales (24); int2, uint2 (25); DequantizeLinear also
 * int32. Integer outputs round half to even and saturate to their range;
 * float8/float4 outputs take x / y_scale + y_zero_point converted with the
 * Cast rules (lowp.c). The 8/4/2-bit types hold one element per byte here.
 *
 * run converts the (small) scale and zero-point tensors into double arrays
 * in scratch once, then walks x in chunks of QCH elements, in parallel above
 * the work threshold; every element depends only on its own inputs, so the
 * results do not depend on the thread count.
 */
#include <string.h>

#include "ops/quant.h"

#define QCH 1024 /* elements per chunk: the double buffer below lives on the stack */
#define T_FLOATS (ONR_T(ONR_FLOAT) | ONR_T(ONR_FLOAT16) | ONR_T(ONR_BFLOAT16))

enum { Q_TENSOR, Q_AXIS, Q_BLOCK };

typedef struct q_params {
    /* create: attributes (0 when the opset does not have them) */
    int64_t axis, block;
    int saturate;
    onr_dtype out_attr;  /* output_dtype, ONR_UNDEFINED when absent */
    onr_dtype prec_attr; /* QuantizeLinear's precision, ONR_UNDEFINED when absent */
    /* reshape */
    onr_dtype odt, pdt;               /* output type; type the arithmetic rounds to */
    int mode;                         /* Q_* */
    int64_t outer, len, inner, slen;  /* x as [outer, len, inner]; scale dim along the axis */
    int64_t ns;                       /* scale elements */
} q_params;

/* ---- attributes --------------------------------------------------------------- */

static int int_attr(onr_create_ctx *c, const char *name, int64_t def, int64_t *v)
{
    const onr_attr *a = onr_node_attr(c->node, name);
    if (!a) {
        *v = def;
        return ONR_OK;
    }
    if (a->type != ONR_ATTR_INT)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' must be an int", name);
    *v = a->i;
    return ONR_OK;
}

/* A data-type attribute: 0 (absent) or a type whose bit is in allowed. */
static int type_attr(onr_create_ctx *c, const char *name, uint32_t allowed, onr_dtype *out)
{
    int64_t v = 0;
    int st = int_attr(c, name, 0, &v);
    if (st) return st;
    *out = ONR_UNDEFINED;
    if (v == 0) return ONR_OK;
    if (v > 0 && v < ONR_DTYPE_COUNT && (allowed & ONR_T(v))) {
        *out = (onr_dtype)v;
        return ONR_OK;
    }
    if (v > 0 && v < 64)
        return onr_seterr(c->err, ONR_E_UNSUPPORTED, "%s = %lld (%s) is not supported here", name,
                          (long long)v, v < ONR_DTYPE_COUNT ? onr_dtype_name((onr_dtype)v)
                                                            : "a type onnx-run lacks");
    return onr_seterr(c->err, ONR_E_MODEL, "%s = %lld is not a data type", name, (long long)v);
}

/* Output types QuantizeLinear may produce at an opset (onnx-run's subset of
 * the schema's list: the others are refused by name in reshape). */
static uint32_t q_out_types(int64_t opset)
{
    uint32_t t = ONR_T(ONR_UINT8) | ONR_T(ONR_INT8);
    if (opset >= 19) t |= ONR_TYPES_F8;
    if (opset >= 21) t |= ONR_T(ONR_UINT16) | ONR_T(ONR_INT16) | ONR_TYPES_Q4;
    if (opset >= 23) t |= ONR_T(ONR_FLOAT4E2M1);
    if (opset >= 25) t |= ONR_TYPES_Q2;
    return t;
}

/* Input types DequantizeLinear reads at an opset: Quantize's outputs and int32. */
static uint32_t dq_in_types(int64_t opset) { return q_out_types(opset) | ONR_T(ONR_INT32); }

/* Scale types from opset 24 add float8e8m0. */
static uint32_t e8m0_from24(int64_t opset) { return opset >= 24 ? ONR_T(ONR_FLOAT8E8M0) : 0; }

static int is_lowp_float_out(onr_dtype dt)
{
    return (ONR_T(dt) & (ONR_TYPES_F8 | ONR_T(ONR_FLOAT4E2M1))) != 0;
}

static int q_create_common(onr_create_ctx *c, q_params *p, int quantize)
{
    int64_t v = 1;
    int st;
    p->axis = 1;
    if (c->opset >= 13 && (st = int_attr(c, "axis", 1, &p->axis))) return st;
    if (c->opset >= 21) {
        if ((st = int_attr(c, "block_size", 0, &p->block))) return st;
        if (p->block < 0)
            return onr_seterr(c->err, ONR_E_MODEL, "block_size must be >= 0, got %lld",
                              (long long)p->block);
    }
    p->saturate = 1;
    if (quantize && c->opset >= 19) {
        if ((st = int_attr(c, "saturate", 1, &v))) return st;
        if (v != 0 && v != 1)
            return onr_seterr(c->err, ONR_E_MODEL, "saturate must be 0 or 1, got %lld",
                              (long long)v);
        p->saturate = (int)v;
    }
    if (quantize && c->opset >= 21 &&
        (st = type_attr(c, "output_dtype", q_out_types(c->opset), &p->out_attr)))
        return st;
    if (!quantize && c->opset >= 23 && (st = type_attr(c, "output_dtype", T_FLOATS, &p->out_attr)))
        return st;
    if (quantize && c->opset >= 23 &&
        (st = type_attr(c, "precision", T_FLOATS | ONR_T(ONR_DOUBLE), &p->prec_attr)))
        return st;
    return ONR_OK;
}

static int q_create(onr_create_ctx *c, void *params) { return q_create_common(c, params, 1); }
static int dq_create(onr_create_ctx *c, void *params) { return q_create_common(c, params, 0); }

/* ---- reshape ------------------------------------------------------------------ */

static int64_t prod(const int64_t *d, int a, int b)
{
    int64_t n = 1;
    for (int i = a; i < b; i++) n *= d[i];
    return n;
}

/* Granularity from the scale's shape (input 1), checked against x (input 0)
 * and the zero point (input 2, optional); fills the walk geometry. */
static int q_geometry(onr_kctx *ctx, q_params *p)
{
    const onr_tensor *x = ctx->in[0], *s = ctx->in[1];
    const onr_tensor *z = ctx->n_in > 2 ? ctx->in[2] : NULL;
    char s1[256], s2[256];
    int ax = 0, st;
    if (z && (z->rank != s->rank || memcmp(z->dims, s->dims, sizeof(int64_t) * s->rank)))
        return onr_seterr(ctx->err, ONR_E_MODEL, "zero point %s and scale %s differ in shape",
                          onr_fmt_dims(s1, sizeof s1, z->dims, z->rank),
                          onr_fmt_dims(s2, sizeof s2, s->dims, s->rank));
    p->ns = s->numel;
    if (s->numel == 1 && (s->rank <= 1 || !p->block)) {
        p->mode = Q_TENSOR;
        p->outer = p->len = 1;
        p->inner = x->numel;
        p->slen = 1;
        return ONR_OK;
    }
    if (ctx->opset < 13)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "scale must be a scalar before opset 13, it has shape %s",
                          onr_fmt_dims(s1, sizeof s1, s->dims, s->rank));
    if ((st = onr_norm_axis(ctx->err, p->axis, x->rank, &ax))) return st;
    p->outer = prod(x->dims, 0, ax);
    p->len = x->dims[ax];
    p->inner = prod(x->dims, ax + 1, x->rank);
    if (!p->block) {
        if (s->rank != 1 || s->dims[0] != p->len)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "per-axis scale %s must be 1-D with the %lld elements of axis %d "
                              "of x %s",
                              onr_fmt_dims(s1, sizeof s1, s->dims, s->rank), (long long)p->len, ax,
                              onr_fmt_dims(s2, sizeof s2, x->dims, x->rank));
        p->mode = Q_AXIS;
        p->slen = p->len;
        return ONR_OK;
    }
    int ok = s->rank == x->rank;
    for (int d = 0; ok && d < x->rank; d++)
        ok = d == ax ? s->dims[d] == (x->dims[d] + p->block - 1) / p->block
                     : s->dims[d] == x->dims[d];
    if (!ok)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "blocked scale %s does not fit x %s with block_size %lld on axis %d "
                          "(expected x's shape with ceil(%lld / %lld) on that axis)",
                          onr_fmt_dims(s1, sizeof s1, s->dims, s->rank),
                          onr_fmt_dims(s2, sizeof s2, x->dims, x->rank), (long long)p->block, ax,
                          (long long)p->len, (long long)p->block);
    p->mode = Q_BLOCK;
    p->slen = s->dims[ax];
    return ONR_OK;
}

static int q_nin(onr_kctx *ctx)
{
    if (ctx->n_in < 2 || ctx->n_in > 3 || ctx->n_out != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "expects 2 or 3 inputs and 1 output, got %d and %d",
                          ctx->n_in, ctx->n_out);
    return ONR_OK;
}

/* Scratch: the scale and zero point as double arrays. */
static size_t q_scratch(const q_params *p) { return (size_t)p->ns * 2 * sizeof(double); }

static int q_reshape(onr_kctx *ctx, size_t *scratch)
{
    q_params *p = ctx->params;
    int64_t op = ctx->opset;
    uint32_t xt = op >= 19 ? T_FLOATS | ONR_T(ONR_INT32) : ONR_T(ONR_FLOAT) | ONR_T(ONR_INT32);
    int st;
    if ((st = q_nin(ctx)) || (st = onr_check_input(ctx, 0, xt))) return st;
    const onr_tensor *x = ctx->in[0];
    uint32_t stypes = op < 19 ? ONR_T(ONR_FLOAT)
                      : op < 23 ? ONR_T(x->dtype)
                                : T_FLOATS | ONR_T(ONR_INT32) | e8m0_from24(op);
    if (op >= 19 && op < 23 && ctx->in[1] && ctx->in[1]->dtype != x->dtype)
        return onr_seterr(ctx->err, ONR_E_MODEL, "y_scale (%s) must have x's type (%s) at opset %lld",
                          onr_dtype_name(ctx->in[1]->dtype), onr_dtype_name(x->dtype),
                          (long long)op);
    if ((st = onr_check_input(ctx, 1, stypes))) return st;
    const onr_tensor *z = ctx->n_in > 2 ? ctx->in[2] : NULL;
    onr_dtype odt = z ? z->dtype : p->out_attr ? p->out_attr : ONR_UINT8;
    if (z && p->out_attr && z->dtype != p->out_attr)
        return onr_seterr(ctx->err, ONR_E_MODEL, "output_dtype %s differs from y_zero_point's %s",
                          onr_dtype_name(p->out_attr), onr_dtype_name(z->dtype));
    if (!(q_out_types(op) & ONR_T(odt)))
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                          "quantizing to %s is not supported at opset %lld", onr_dtype_name(odt),
                          (long long)op);
    p->odt = odt;
    onr_dtype sdt = ctx->in[1]->dtype;
    p->pdt = p->prec_attr                               ? p->prec_attr
             : sdt == ONR_INT32 || sdt == ONR_FLOAT8E8M0 ? ONR_DOUBLE
                                                         : sdt;
    if ((st = q_geometry(ctx, p))) return st;
    *scratch = q_scratch(p);
    return onr_set_out(ctx, 0, odt, x->rank, x->dims);
}

static int dq_reshape(onr_kctx *ctx, size_t *scratch)
{
    q_params *p = ctx->params;
    int64_t op = ctx->opset;
    int st;
    if ((st = q_nin(ctx)) || (st = onr_check_input(ctx, 0, dq_in_types(op)))) return st;
    if ((st = onr_check_input(ctx, 1, op < 19 ? ONR_T(ONR_FLOAT) : T_FLOATS | e8m0_from24(op))))
        return st;
    const onr_tensor *x = ctx->in[0], *z = ctx->n_in > 2 ? ctx->in[2] : NULL;
    if (z && z->dtype != x->dtype)
        return onr_seterr(ctx->err, ONR_E_MODEL, "x_zero_point (%s) must have x's type (%s)",
                          onr_dtype_name(z->dtype), onr_dtype_name(x->dtype));
    p->odt = op < 19 ? ONR_FLOAT : p->out_attr ? p->out_attr : ctx->in[1]->dtype;
    if (p->odt == ONR_FLOAT8E8M0)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "a float8e8m0 x_scale needs output_dtype (float, float16 or bfloat16)");
    p->pdt = p->odt;
    if ((st = q_geometry(ctx, p))) return st;
    *scratch = q_scratch(p);
    return onr_set_out(ctx, 0, p->odt, x->rank, x->dims);
}

/* ---- run ----------------------------------------------------------------------- */

/* dst[k] = element i + k of x (type dt) as double. */
static void load_row(onr_dtype dt, const void *x, int64_t i, int64_t n, double *dst)
{
#define LD(CT, E)                                                    \
    do {                                                             \
        const CT *s_ = (const CT *)x + i;                            \
        for (int64_t k = 0; k < n; k++) dst[k] = (E);                \
    } while (0)
    switch (dt) {
    case ONR_FLOAT: LD(float, s_[k]); break;
    case ONR_DOUBLE: LD(double, s_[k]); break;
    case ONR_FLOAT16: LD(uint16_t, onr_half_to_float(s_[k])); break;
    case ONR_BFLOAT16: LD(uint16_t, onr_bf16_to_float(s_[k])); break;
    case ONR_INT8: LD(int8_t, s_[k]); break;
    case ONR_UINT8: LD(uint8_t, s_[k]); break;
    case ONR_INT16: LD(int16_t, s_[k]); break;
    case ONR_UINT16: LD(uint16_t, s_[k]); break;
    case ONR_INT32: LD(int32_t, s_[k]); break;
    default: for (int64_t k = 0; k < n; k++) dst[k] = onr_load_f64(dt, x, i + k); break;
    }
#undef LD
}

/* Element i + k of y (type dt) = src[k], already rounded/clamped to dt
 * (8- and 4-bit floats: converted here, saturating when sat is 1). */
static void store_row(onr_dtype dt, void *y, int64_t i, int64_t n, const double *src, int sat)
{
#define ST(CT, E)                                                    \
    do {                                                             \
        CT *d_ = (CT *)y + i;                                        \
        for (int64_t k = 0; k < n; k++) d_[k] = (E);                 \
    } while (0)
    switch (dt) {
    case ONR_FLOAT: ST(float, (float)src[k]); break;
    case ONR_FLOAT16: ST(uint16_t, onr_float_to_half((float)src[k])); break;
    case ONR_BFLOAT16: ST(uint16_t, onr_float_to_bf16((float)src[k])); break;
    case ONR_INT8: ST(int8_t, (int8_t)src[k]); break;
    case ONR_UINT8: ST(uint8_t, (uint8_t)src[k]); break;
    case ONR_INT16: ST(int16_t, (int16_t)src[k]); break;
    case ONR_UINT16: ST(uint16_t, (uint16_t)src[k]); break;
    case ONR_INT4:
    case ONR_INT2: ST(uint8_t, (uint8_t)(int8_t)src[k]); break;
    case ONR_UINT4:
    case ONR_UINT2: ST(uint8_t, (uint8_t)src[k]); break;
    default: ST(uint8_t, onr_f64_to_lowp(dt, src[k], sat)); break; /* float8, float4 */
    }
#undef ST
}

/* Quantize / dequantize n elements of one row segment in place in v; s and
 * z advance by sstride (0 or 1). */
static void q_seg(const q_params *p, double *v, int64_t n, const double *s, const double *z,
                  int sstride)
{
    onr_dtype P = p->pdt;
    double lo, hi;
    onr_q_range(p->odt, &lo, &hi);
    int fl = is_lowp_float_out(p->odt); /* float8/float4: + zero point, rounded in the store */
    for (int64_t k = 0; k < n; k++) {
        double q = onr_round_to(P, onr_round_to(P, v[k]) / s[k * sstride]);
        v[k] = fl ? q + z[k * sstride] : onr_q_int(q, z[k * sstride], lo, hi);
    }
}

static void dq_seg(const q_params *p, double *v, int64_t n, const double *s, const double *z,
                   int sstride)
{
    onr_dtype P = p->pdt;
    for (int64_t k = 0; k < n; k++) {
        double d = onr_round_to(P, v[k] - z[k * sstride]);
        v[k] = onr_round_to(P, d * s[k * sstride]);
    }
}

static int q_run_common(const onr_kctx *ctx, int quantize)
{
    const q_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0], *st = ctx->in[1];
    const onr_tensor *zt = ctx->n_in > 2 ? ctx->in[2] : NULL;
    onr_tensor *y = ctx->out[0];
    double *s = ctx->scratch, *z = s + p->ns;
    load_row(st->dtype, st->data, 0, p->ns, s);
    for (int64_t k = 0; k < p->ns; k++) s[k] = onr_round_to(p->pdt, s[k]);
    if (zt) load_row(zt->dtype, zt->data, 0, p->ns, z);
    else memset(z, 0, sizeof(double) * (size_t)p->ns);

    int64_t n = x->numel, nch = (n + QCH - 1) / QCH;
    int nt = n * 4 > ONR_PAR_MIN && ctx->nthreads > 1 ? ctx->nthreads : 1;
#pragma omp parallel for num_threads(onr_team(nt)) if (nt > 1) schedule(static)
    for (int64_t c = 0; c < nch; c++) {
        double v[QCH];
        int64_t i0 = c * QCH, i1 = i0 + QCH < n ? i0 + QCH : n;
        load_row(x->dtype, x->data, i0, i1 - i0, v);
        for (int64_t i = i0; i < i1;) {
            int64_t r = i / p->inner, in = i % p->inner;
            int64_t m = p->inner - in < i1 - i ? p->inner - in : i1 - i;
            int64_t base = 0;
            int stride = 0;
            if (p->mode == Q_AXIS) {
                base = r % p->len;
            } else if (p->mode == Q_BLOCK) {
                base = ((r / p->len) * p->slen + (r % p->len) / p->block) * p->inner + in;
                stride = 1;
            }
            if (quantize) q_seg(p, v + (i - i0), m, s + base, z + base, stride);
            else dq_seg(p, v + (i - i0), m, s + base, z + base, stride);
            i += m;
        }
        store_row(y->dtype, y->data, i0, i1 - i0, v, p->saturate);
    }
    return ONR_OK;
}

static int q_run(const onr_kctx *ctx) { return q_run_common(ctx, 1); }
static int dq_run(const onr_kctx *ctx) { return q_run_common(ctx, 0); }

const onr_op_impl onr_impl_QuantizeLinear = {.create = q_create, .reshape = q_reshape,
                                             .run = q_run, .params_size = sizeof(q_params),
                                             .types = T_FLOATS | ONR_T(ONR_INT32)};
const onr_op_impl onr_impl_DequantizeLinear = {
    .create = dq_create, .reshape = dq_reshape, .run = dq_run, .params_size = sizeof(q_params),
    .types = ONR_TYPES_QINT | ONR_T(ONR_INT32) | ONR_TYPES_F8 | ONR_TYPES_Q4 | ONR_TYPES_Q2 |
             ONR_T(ONR_FLOAT4E2M1)};

/* ---- DynamicQuantizeLinear ------------------------------------------------------ */

/* Its function body, in float32: the range [min(x), max(x)] widened to
 * hold 0, scale = range / 255, zero point = saturate(round(0 - min /
 * scale)), y = QuantizeLinear(x, scale, zero point) to uint8. NaN elements
 * do not widen the range. An all-zero (or empty) x gives scale 0: the body
 * would divide 0 by 0 there, onnx-run outputs zero point 0 and y = 0. */
static int dql_reshape(onr_kctx *ctx, size_t *scratch)
{
    int st;
    *scratch = 0;
    if (ctx->n_in != 1 || ctx->n_out != 3)
        return onr_seterr(ctx->err, ONR_E_MODEL, "expects 1 input and 3 outputs, got %d and %d",
                          ctx->n_in, ctx->n_out);
    if ((st = onr_check_input(ctx, 0, ONR_T(ONR_FLOAT)))) return st;
    const onr_tensor *x = ctx->in[0];
    if ((st = onr_set_out(ctx, 0, ONR_UINT8, x->rank, x->dims)) ||
        (st = onr_set_out(ctx, 1, ONR_FLOAT, 0, NULL)))
        return st;
    return onr_set_out(ctx, 2, ONR_UINT8, 0, NULL);
}

static int dql_run(const onr_kctx *ctx)
{
    const onr_tensor *x = ctx->in[0];
    const float *xv = x->data;
    int64_t n = x->numel;
    float mn = 0.f, mx = 0.f; /* the range always holds 0 */
    int nt = n > ONR_PAR_MIN && ctx->nthreads > 1 ? ctx->nthreads : 1;
#pragma omp parallel for num_threads(onr_team(nt)) if (nt > 1) reduction(min : mn) reduction(max : mx)
    for (int64_t i = 0; i < n; i++) {
        if (xv[i] < mn) mn = xv[i];
        if (xv[i] > mx) mx = xv[i];
    }
    float scale = (mx - mn) / 255.f;
    float zpf = 0.f;
    if (scale > 0.f) {
        zpf = 0.f - mn / scale;
        zpf = zpf < 0.f ? 0.f : zpf > 255.f ? 255.f : zpf;
        zpf = nearbyintf(zpf);
    }
    uint8_t *y = ctx->out[0]->data;
    if (ctx->out[1]) *(float *)ctx->out[1]->data = scale;
    if (ctx->out[2]) *(uint8_t *)ctx->out[2]->data = (uint8_t)zpf;
    if (!(scale > 0.f)) {
        memset(y, 0, (size_t)n);
        return ONR_OK;
    }
#pragma omp parallel for num_threads(onr_team(nt)) if (nt > 1) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = (uint8_t)onr_q_int(xv[i] / scale, zpf, 0, 255);
    return ONR_OK;
}

const onr_op_impl onr_impl_DynamicQuantizeLinear = {.reshape = dql_reshape, .run = dql_run,
                                                    .types = ONR_T(ONR_FLOAT)};
