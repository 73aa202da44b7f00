/*
 * cast.c - Cast and CastLike between every numeric type, bool, float16,
 * bfloat16 and string.
 *
 * Rather than one loop per (source, destination) pair, values travel
 * through a small carrier buffer: floating sources load into double (exact
 * for every float type), integer and bool sources into int64 (uint64 bit
 * patterns kept, with a flag), and each destination stores from either
 * carrier. Both passes are plain loops over a chunk that stays in L1.
 * float32 <-> float16/bfloat16, the casts of mixed-precision models, skip
 * the carrier.
 *
 * Conversions that C leaves undefined are defined here: float to integer
 * truncates toward zero through int64 (saturating; NaN gives 0) and then
 * wraps to the narrower type, as numpy does on x86 for in-range int64.
 *
 * The 8-, 4- and 2-bit types (one byte per element in memory) go through
 * the carriers too: float8/float4/float8e8m0 values load exactly into
 * double, int4/int2 into int64. Stores to them follow the specification:
 * float8 rounds to nearest even and, past the largest finite value (or
 * from infinity), saturates to it when `saturate` is 1 (the default) or
 * gives infinity (float8e5m2) / NaN otherwise; float4e2m1 always saturates
 * and maps NaN to +6; int4/uint4/int2/uint2 round to nearest even and clamp
 * to their range. float8e8m0 (Cast-24 on) takes the power of two that
 * `round_mode` picks (up, the default; down; nearest, ties up) with the
 * ends `saturate` decides (onr_f64_to_e8m0 in lowp.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

#define CAST_CHUNK 256
#define T_LOWP_INT (ONR_T(ONR_INT4) | ONR_T(ONR_UINT4) | ONR_T(ONR_INT2) | ONR_T(ONR_UINT2))
#define T_LOWP_FLOAT                                                                           \
    (ONR_T(ONR_FLOAT8E4M3FN) | ONR_T(ONR_FLOAT8E4M3FNUZ) | ONR_T(ONR_FLOAT8E5M2) |              \
     ONR_T(ONR_FLOAT8E5M2FNUZ) | ONR_T(ONR_FLOAT4E2M1) | ONR_T(ONR_FLOAT8E8M0))
#define T_CASTABLE (ONR_TYPES_NUM | ONR_T(ONR_BOOL) | ONR_T(ONR_STRING) | T_LOWP_INT | T_LOWP_FLOAT)

static int is_float(onr_dtype dt) { return (ONR_T(dt) & (ONR_TYPES_FLOAT | T_LOWP_FLOAT)) != 0; }

/* First Cast opset whose schema lists type dt. */
static int type_since(onr_dtype dt)
{
    switch (dt) {
    case ONR_FLOAT8E4M3FN:
    case ONR_FLOAT8E4M3FNUZ:
    case ONR_FLOAT8E5M2:
    case ONR_FLOAT8E5M2FNUZ: return 19;
    case ONR_INT4:
    case ONR_UINT4: return 21;
    case ONR_FLOAT4E2M1: return 23;
    case ONR_FLOAT8E8M0: return 24;
    case ONR_INT2:
    case ONR_UINT2: return 25;
    default: return 1;
    }
}

/* ---- loads into the carriers -------------------------------------------- */

#define LOAD_LOOP(CT, EXPR)                                    \
    do {                                                       \
        const CT *s = src;                                     \
        for (int64_t i = 0; i < n; i++) dst[i] = (EXPR);       \
    } while (0)

static void load_f64(onr_dtype dt, const void *src, double *dst, int64_t n)
{
    switch (dt) {
    case ONR_FLOAT: LOAD_LOOP(float, s[i]); break;
    case ONR_DOUBLE: LOAD_LOOP(double, s[i]); break;
    case ONR_FLOAT16: LOAD_LOOP(uint16_t, onr_half_to_float(s[i])); break;
    case ONR_BFLOAT16: LOAD_LOOP(uint16_t, onr_bf16_to_float(s[i])); break;
    default: LOAD_LOOP(uint8_t, onr_lowp_to_f64(dt, s[i])); break; /* float8, float4 */
    }
}

static void load_i64(onr_dtype dt, const void *src, int64_t *dst, int64_t n)
{
    switch (dt) {
    case ONR_INT8: LOAD_LOOP(int8_t, s[i]); break;
    case ONR_INT16: LOAD_LOOP(int16_t, s[i]); break;
    case ONR_INT32: LOAD_LOOP(int32_t, s[i]); break;
    case ONR_INT64: LOAD_LOOP(int64_t, s[i]); break;
    case ONR_UINT8: LOAD_LOOP(uint8_t, s[i]); break;
    case ONR_UINT16: LOAD_LOOP(uint16_t, s[i]); break;
    case ONR_UINT32: LOAD_LOOP(uint32_t, s[i]); break;
    case ONR_UINT64: LOAD_LOOP(uint64_t, (int64_t)s[i]); break;
    case ONR_BOOL: LOAD_LOOP(uint8_t, s[i] != 0); break;
    case ONR_INT4:
    case ONR_INT2: LOAD_LOOP(int8_t, s[i]); break;
    case ONR_UINT4:
    case ONR_UINT2: LOAD_LOOP(uint8_t, s[i]); break;
    default: break;
    }
}

/* ---- stores from the carriers ------------------------------------------- */

/* Double to int64 without undefined behaviour: truncates, saturates, NaN 0. */
static int64_t f64_to_i64(double v)
{
    if (v != v) return 0;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

static uint64_t f64_to_u64(double v)
{
    if (v >= 18446744073709551615.0) return UINT64_MAX;
    if (v >= 9223372036854775808.0) return (uint64_t)v;
    return (uint64_t)f64_to_i64(v);
}

/* An 8-, 4- or 2-bit element: rm is the float8e8m0 round_mode. */
static uint8_t store_lowp(onr_dtype dt, double v, int sat, int rm)
{
    return dt == ONR_FLOAT8E8M0 ? onr_f64_to_e8m0(v, sat, rm) : onr_f64_to_lowp(dt, v, sat);
}

#define STORE_LOOP(CT, EXPR)                                   \
    do {                                                       \
        CT *d = (void *)(dst);                                 \
        for (int64_t i = 0; i < n; i++) d[i] = (CT)(EXPR);     \
    } while (0)

static void store_from_f64(onr_dtype dt, const double *src, void *dst, int64_t n, int sat,
                           int rm)
{
    switch (dt) {
    case ONR_FLOAT: STORE_LOOP(float, src[i]); break;
    case ONR_DOUBLE: STORE_LOOP(double, src[i]); break;
    case ONR_FLOAT16: STORE_LOOP(uint16_t, onr_float_to_half((float)src[i])); break;
    case ONR_BFLOAT16: STORE_LOOP(uint16_t, onr_float_to_bf16((float)src[i])); break;
    case ONR_BOOL: STORE_LOOP(uint8_t, src[i] != 0); break;
    case ONR_INT8: STORE_LOOP(int8_t, f64_to_i64(src[i])); break;
    case ONR_INT16: STORE_LOOP(int16_t, f64_to_i64(src[i])); break;
    case ONR_INT32: STORE_LOOP(int32_t, f64_to_i64(src[i])); break;
    case ONR_INT64: STORE_LOOP(int64_t, f64_to_i64(src[i])); break;
    case ONR_UINT8: STORE_LOOP(uint8_t, f64_to_i64(src[i])); break;
    case ONR_UINT16: STORE_LOOP(uint16_t, f64_to_i64(src[i])); break;
    case ONR_UINT32: STORE_LOOP(uint32_t, f64_to_i64(src[i])); break;
    case ONR_UINT64: STORE_LOOP(uint64_t, f64_to_u64(src[i])); break;
    default: STORE_LOOP(uint8_t, store_lowp(dt, src[i], sat, rm)); break;
    }
}

/* uns: the int64 values are uint64 bit patterns. */
static void store_from_i64(onr_dtype dt, const int64_t *src, int uns, void *dst, int64_t n,
                           int sat, int rm)
{
#define AS_DBL(v) (uns ? (double)(uint64_t)(v) : (double)(v))
    switch (dt) {
    case ONR_FLOAT:
        if (uns) STORE_LOOP(float, (uint64_t)src[i]);
        else STORE_LOOP(float, src[i]);
        break;
    case ONR_DOUBLE: STORE_LOOP(double, AS_DBL(src[i])); break;
    case ONR_FLOAT16: STORE_LOOP(uint16_t, onr_float_to_half((float)AS_DBL(src[i]))); break;
    case ONR_BFLOAT16: STORE_LOOP(uint16_t, onr_float_to_bf16((float)AS_DBL(src[i]))); break;
    case ONR_BOOL: STORE_LOOP(uint8_t, src[i] != 0); break;
    /* integer to integer keeps the low bits (two's complement wrap) */
    case ONR_INT8: STORE_LOOP(int8_t, (uint64_t)src[i]); break;
    case ONR_INT16: STORE_LOOP(int16_t, (uint64_t)src[i]); break;
    case ONR_INT32: STORE_LOOP(int32_t, (uint64_t)src[i]); break;
    case ONR_INT64: STORE_LOOP(int64_t, src[i]); break;
    case ONR_UINT8: STORE_LOOP(uint8_t, (uint64_t)src[i]); break;
    case ONR_UINT16: STORE_LOOP(uint16_t, (uint64_t)src[i]); break;
    case ONR_UINT32: STORE_LOOP(uint32_t, (uint64_t)src[i]); break;
    case ONR_UINT64: STORE_LOOP(uint64_t, (uint64_t)src[i]); break;
    default: STORE_LOOP(uint8_t, store_lowp(dt, AS_DBL(src[i]), sat, rm)); break;
    }
#undef AS_DBL
}

/* ---- numeric casts ---------------------------------------------------------- */

/* Elements [s, e) from x (type sdt) to y (type ddt), neither a string. */
static void cast_slice(onr_dtype sdt, const void *x, onr_dtype ddt, void *y, int64_t s, int64_t e,
                       int sat, int rm)
{
    size_t ses = onr_dtype_size(sdt), des = onr_dtype_size(ddt);
    const char *src = (const char *)x + (size_t)s * ses;
    char *dst = (char *)y + (size_t)s * des;
    int64_t n = e - s;
    if (sdt == ONR_FLOAT && (ddt == ONR_FLOAT16 || ddt == ONR_BFLOAT16)) {
        const float *f = (const float *)src;
        if (ddt == ONR_FLOAT16) STORE_LOOP(uint16_t, onr_float_to_half(f[i]));
        else STORE_LOOP(uint16_t, onr_float_to_bf16(f[i]));
        return;
    }
    if (ddt == ONR_FLOAT && (sdt == ONR_FLOAT16 || sdt == ONR_BFLOAT16)) {
        const uint16_t *h = (const uint16_t *)src;
        if (sdt == ONR_FLOAT16) STORE_LOOP(float, onr_half_to_float(h[i]));
        else STORE_LOOP(float, onr_bf16_to_float(h[i]));
        return;
    }
    for (int64_t off = 0; off < n; off += CAST_CHUNK) {
        int64_t m = n - off < CAST_CHUNK ? n - off : CAST_CHUNK;
        if (is_float(sdt)) {
            double buf[CAST_CHUNK];
            load_f64(sdt, src + (size_t)off * ses, buf, m);
            store_from_f64(ddt, buf, dst + (size_t)off * des, m, sat, rm);
        } else {
            int64_t buf[CAST_CHUNK];
            load_i64(sdt, src + (size_t)off * ses, buf, m);
            store_from_i64(ddt, buf, sdt == ONR_UINT64, dst + (size_t)off * des, m, sat, rm);
        }
    }
}

/* ---- strings ------------------------------------------------------------------ */

/* Value v (exactly representable in dt) converted back into dt and compared:
 * does a decimal string round-trip? */
static int roundtrips(double parsed, double v, onr_dtype dt)
{
    switch (dt) {
    case ONR_FLOAT: return (float)parsed == (float)v;
    case ONR_FLOAT16: return onr_float_to_half((float)parsed) == onr_float_to_half((float)v);
    case ONR_BFLOAT16: return onr_float_to_bf16((float)parsed) == onr_float_to_bf16((float)v);
    case ONR_DOUBLE: return parsed == v;
    case ONR_FLOAT8E8M0: /* read back through float32 (as Cast does), whatever round_mode */
        return (float)parsed == (float)v;
    default: return onr_f64_to_lowp(dt, parsed, 1) == onr_f64_to_lowp(dt, v, 1);
    }
}

/* The shortest decimal that reads back as the same value of type dt, laid
 * out as Python/numpy print it: positional for 1e-4 <= |v| < 1e16 ("0.5",
 * "100.0"), otherwise scientific ("1e-05", "1.5e+20"). */
static void fmt_float(char *buf, size_t len, double v, onr_dtype dt)
{
    if (isnan(v)) {
        snprintf(buf, len, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, len, v > 0 ? "inf" : "-inf");
        return;
    }
    char sci[64];
    int p = 1;
    for (; p < 17; p++) {
        snprintf(sci, sizeof sci, "%.*e", p - 1, v);
        if (roundtrips(strtod(sci, NULL), v, dt)) break;
    }
    snprintf(sci, sizeof sci, "%.*e", p - 1, v);
    const char *e = strchr(sci, 'e');
    int exp10 = e ? atoi(e + 1) : 0;
    if (exp10 < -4 || exp10 >= 16) {
        snprintf(buf, len, "%s", sci);
        return;
    }
    int decimals = p - 1 - exp10;
    snprintf(buf, len, "%.*f", decimals > 0 ? decimals : 0, v);
    if (!strchr(buf, '.') && strlen(buf) + 2 < len) strcat(buf, ".0");
}

static int cast_to_string(const onr_kctx *ctx, const onr_tensor *x, onr_tensor *y)
{
    char **out = y->data;
    char buf[64];
    for (int64_t i = 0; i < x->numel; i++) {
        const char *s = buf;
        if (x->dtype == ONR_STRING)
            s = ((char *const *)x->data)[i];
        else if (x->dtype == ONR_BOOL)
            s = ((const uint8_t *)x->data)[i] ? "True" : "False";
        else if (is_float(x->dtype))
            fmt_float(buf, sizeof buf, onr_get_f64(x, i), x->dtype);
        else if (x->dtype == ONR_UINT64)
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)((const uint64_t *)x->data)[i]);
        else {
            int64_t v = 0;
            load_i64(x->dtype, (const char *)x->data + (size_t)i * onr_dtype_size(x->dtype), &v, 1);
            snprintf(buf, sizeof buf, "%lld", (long long)v);
        }
        if (onr_str_assign(&out[i], s))
            return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory for a string");
    }
    return ONR_OK;
}

/* Strings parse as numbers: floats with strtod ("1e-5", "INF", "-inf",
 * "NaN" in any case), integers with strtoll/strtoull (so "100.5" gives 100).
 * Text that is not a number gives 0. */
static void cast_from_string(const onr_tensor *x, onr_tensor *y, int sat, int rm)
{
    char *const *in = x->data;
    size_t des = onr_dtype_size(y->dtype);
    for (int64_t i = 0; i < x->numel; i++) {
        const char *s = in[i] ? in[i] : "";
        void *dst = (char *)y->data + (size_t)i * des;
        if (is_float(y->dtype) || y->dtype == ONR_BOOL) {
            double v = strtod(s, NULL);
            store_from_f64(y->dtype, &v, dst, 1, sat, rm);
        } else if (y->dtype == ONR_UINT64) {
            int64_t v = (int64_t)strtoull(s, NULL, 10);
            store_from_i64(y->dtype, &v, 1, dst, 1, sat, rm);
        } else {
            int64_t v = strtoll(s, NULL, 10);
            store_from_i64(y->dtype, &v, 0, dst, 1, sat, rm);
        }
    }
}

/* ---- operators ------------------------------------------------------------------- */

/* What run does, chosen in reshape from the two types. */
enum { CAST_NUMERIC, CAST_COPY, CAST_TO_STRING, CAST_FROM_STRING };

typedef struct cast_params {
    onr_dtype to; /* create (Cast): the target type */
    int saturate; /* create (opset 19+): float8 targets read it */
    int round_mode; /* create (opset 24+): ONR_E8M0_*, float8e8m0 targets read it */
    int mode;     /* reshape: CAST_* */
} cast_params;

/* Complex types are valid targets onnx-run does not cast to; anything else
 * past the known types is not a type at all. */
static int cast_target(onr_err *err, int64_t to)
{
    if (to > 0 && to < ONR_DTYPE_COUNT && (ONR_T(to) & T_CASTABLE)) return ONR_OK;
    if (to == ONR_COMPLEX64 || to == ONR_COMPLEX128)
        return onr_seterr(err, ONR_E_UNSUPPORTED, "cast to complex type %lld is not supported",
                          (long long)to);
    return onr_seterr(err, ONR_E_MODEL, "'to' is not a valid data type: %lld", (long long)to);
}

/* Cast-1..5 named the target type with a string. */
static int64_t legacy_type(const char *name)
{
    static const char *const names[ONR_DTYPE_COUNT] = {
        [ONR_FLOAT] = "FLOAT",   [ONR_UINT8] = "UINT8",     [ONR_INT8] = "INT8",
        [ONR_UINT16] = "UINT16", [ONR_INT16] = "INT16",     [ONR_INT32] = "INT32",
        [ONR_INT64] = "INT64",   [ONR_STRING] = "STRING",   [ONR_BOOL] = "BOOL",
        [ONR_FLOAT16] = "FLOAT16", [ONR_DOUBLE] = "DOUBLE", [ONR_UINT32] = "UINT32",
        [ONR_UINT64] = "UINT64", [ONR_BFLOAT16] = "BFLOAT16"};
    for (int t = 1; t < ONR_DTYPE_COUNT; t++)
        if (names[t] && strcmp(names[t], name) == 0) return t;
    return -1;
}

/* saturate (Cast-19, CastLike-19): 0 or 1; round_mode (Cast-24,
 * CastLike-24): up, down or nearest. Earlier opsets have neither: their
 * defaults hold. */
static int saturate_attr(onr_create_ctx *c, cast_params *P)
{
    static const char *const modes[] = {[ONR_E8M0_UP] = "up", [ONR_E8M0_DOWN] = "down",
                                        [ONR_E8M0_NEAREST] = "nearest"};
    P->saturate = 1;
    P->round_mode = ONR_E8M0_UP;
    if (c->opset >= 19) {
        int64_t s = onr_attr_int(c->node, "saturate", 1);
        if (s != 0 && s != 1)
            return onr_seterr(c->err, ONR_E_MODEL, "saturate must be 0 or 1, got %lld",
                              (long long)s);
        P->saturate = (int)s;
    }
    if (c->opset < 24) return ONR_OK;
    const char *rm = onr_attr_string(c->node, "round_mode", "up");
    for (int i = 0; i < 3; i++)
        if (strcmp(rm, modes[i]) == 0) {
            P->round_mode = i;
            return ONR_OK;
        }
    return onr_seterr(c->err, ONR_E_MODEL,
                      "attribute 'round_mode' is '%s', not 'up', 'down' or 'nearest'", rm);
}

static int cast_create(onr_create_ctx *c, void *params)
{
    cast_params *P = params;
    const onr_attr *a = onr_node_attr(c->node, "to");
    int64_t to = -1;
    int st;
    if (a && a->type == ONR_ATTR_INT) {
        to = a->i;
    } else if (a && a->type == ONR_ATTR_STRING && c->opset < 6) {
        if ((to = legacy_type(a->s)) < 0)
            return onr_seterr(c->err, ONR_E_MODEL, "'to' names no known type: \"%s\"", a->s);
    } else {
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'to' must be an INT (a type number)%s",
                          a ? "" : ", and is missing");
    }
    if ((st = cast_target(c->err, to))) return st;
    P->to = (onr_dtype)to;
    return saturate_attr(c, P);
}

static int castlike_create(onr_create_ctx *c, void *params)
{
    return saturate_attr(c, params);
}

static int cast_common_reshape(onr_kctx *ctx, int nin, onr_dtype to)
{
    cast_params *P = ctx->params;
    int st;
    if (ctx->n_in != nin)
        return onr_seterr(ctx->err, ONR_E_MODEL, "expects %d input%s and 1 output, got %d and %d",
                          nin, nin > 1 ? "s" : "", ctx->n_in, ctx->n_out);
    if ((st = onr_check_input(ctx, 0, T_CASTABLE)) || (st = cast_target(ctx->err, to))) return st;
    const onr_tensor *x = ctx->in[0];
    onr_dtype newer = type_since(x->dtype) > type_since((onr_dtype)to) ? x->dtype : (onr_dtype)to;
    if (ctx->opset < type_since(newer))
        return onr_seterr(ctx->err, ONR_E_MODEL, "type %s needs opset %d or later, this is %lld",
                          onr_dtype_name(newer), type_since(newer), (long long)ctx->opset);
    P->mode = to == ONR_STRING               ? CAST_TO_STRING
              : x->dtype == ONR_STRING        ? CAST_FROM_STRING
              : x->dtype == to                ? CAST_COPY
                                              : CAST_NUMERIC;
    return onr_set_out(ctx, 0, to, x->rank, x->dims);
}

static int cast_reshape(onr_kctx *ctx, size_t *scratch)
{
    const cast_params *P = ctx->params;
    *scratch = 0;
    return cast_common_reshape(ctx, 1, P->to);
}

static int castlike_reshape(onr_kctx *ctx, size_t *scratch)
{
    *scratch = 0;
    if (ctx->n_in != 2 || !ctx->in[1])
        return onr_seterr(ctx->err, ONR_E_MODEL, "expects 2 inputs, got %d", ctx->n_in);
    return cast_common_reshape(ctx, 2, ctx->in[1]->dtype);
}

static int cast_run(const onr_kctx *ctx)
{
    const cast_params *P = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    switch (P->mode) {
    case CAST_TO_STRING: return cast_to_string(ctx, x, y);
    case CAST_FROM_STRING: cast_from_string(x, y, P->saturate, P->round_mode); return ONR_OK;
    case CAST_COPY:
        if (y->data != x->data) memcpy(y->data, x->data, onr_tensor_nbytes(y));
        return ONR_OK;
    default: break;
    }
    int64_t n = x->numel, work = n * 2;
    int nt = work > ONR_PAR_MIN && ctx->nthreads > 1 ? ctx->nthreads : 1;
    int64_t chunk = ((n + nt - 1) / nt + 63) & ~(int64_t)63;
#pragma omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN) schedule(static)
    for (int t = 0; t < nt; t++) {
        int64_t s = t * chunk, e = s + chunk < n ? s + chunk : n;
        if (s < e)
            cast_slice(x->dtype, x->data, y->dtype, y->data, s, e, P->saturate, P->round_mode);
    }
    return ONR_OK;
}

/* No ONR_OP_INPLACE: a string tensor's elements are owned pointers (and its
 * dtype size is 0, so a byte-size rule cannot tell it apart), so writing a
 * cast over its input would free or leak them. Numeric casts between types
 * of one size would be safe, but the flag is per operator. */
const onr_op_impl onr_impl_Cast = {.create = cast_create, .reshape = cast_reshape,
                                   .run = cast_run, .params_size = sizeof(cast_params),
                                   .types = T_CASTABLE};
const onr_op_impl onr_impl_CastLike = {.create = castlike_create, .reshape = castlike_reshape,
                                       .run = cast_run, .params_size = sizeof(cast_params),
                                       .types = T_CASTABLE};
