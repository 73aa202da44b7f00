/*
 * unary.c - elementwise operators of one input: math functions (Abs, Exp,
 * Sin, ...), activations (Relu, Sigmoid, Gelu, ...), Clip, IsNaN/IsInf and
 * Not.
 *
 * Each op has a float32 and a float64 kernel generated from one body (with
 * <tgmath.h> the same expression calls expf or exp); exp, tanh and erf in
 * float32 use the vectorizable approximations below. Native kernels exist
 * for the integer types an op's schema allows where exactness matters (Abs,
 * Neg, Sign, Relu, Clip). float16/bfloat16 run the float32 kernel on small
 * converted chunks; other integer inputs (Erf, Shrink) run the float64
 * kernel the same way. Kernels are tight loops over contiguous data; the
 * tensor is split into one slice per thread above a work threshold.
 *
 * create reads the attributes (alpha, beta, gamma, ...) into un_prm;
 * reshape picks the kernel and its conversion path; run computes. Clip-11's
 * bounds are inputs whose values run reads (no shape depends on them).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#include "ops/ops.h"

#define ONR_ACT_VL 4
#include "gemm/sgemm-act-simd.h"

/* Floating-point exceptions are never enabled and errno is never read, so
 * let the compiler turn the selects in the kernels (clamps, NaN checks)
 * into vector blends and sqrt into an instruction; otherwise it keeps them
 * as branches and calls and the loops stay scalar. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "no-math-errno")
#endif

/* Attribute values a kernel reads, already defaulted and validated. */
typedef struct un_prm {
    double alpha, beta, gamma;
    int flag;
    int64_t lo_i, hi_i; /* Clip bounds for signed / unsigned integer types */
    uint64_t lo_u, hi_u;
} un_prm;

/* y[0..n) = f(x[0..n)); x and y may be the same buffer. */
typedef void (*un_kern)(const void *x, void *y, int64_t n, const un_prm *P);

typedef struct un_op {
    const char *name;
    uint32_t types;
    int cost;   /* rough per-element cost for the parallel threshold */
    int max_in; /* 1, or 3 for Clip-11's optional bounds */
    int (*attrs)(onr_create_ctx *c, un_prm *p); /* create: read the attributes; may be NULL */
    un_kern k[ONR_DTYPE_COUNT];
} un_op;

/* ---- kernel generators -------------------------------------------------- */

/* The body computes y from x (type T), the attributes A, B, G (alpha,
 * beta, gamma, read once before the loop) and the parameters P. */
#define UN_KERN(fn, CT, ...)                                                    \
    static void fn(const void *xs, void *ys, int64_t n, const un_prm *P)        \
    {                                                                           \
        typedef CT T;                                                           \
        const T *X = xs;                                                        \
        T *Y = ys;                                                              \
        const T A = (T)P->alpha, B = (T)P->beta, G = (T)P->gamma;               \
        (void)A, (void)B, (void)G;                                              \
        for (int64_t i = 0; i < n; i++) {                                       \
            T x = X[i], y;                                                      \
            __VA_ARGS__;                                                        \
            Y[i] = y;                                                           \
        }                                                                       \
    }
/* Integer kernels get no A, B, G: the float attributes (Clip's -inf/+inf
 * bounds, anything a model writes) may not fit the integer type, and such
 * a conversion is undefined; integer bounds come typed in P (lo_i, hi_u). */
#define UN_KERN_INT(fn, CT, ...)                                                \
    static void fn(const void *xs, void *ys, int64_t n, const un_prm *P)        \
    {                                                                           \
        typedef CT T;                                                           \
        const T *X = xs;                                                        \
        T *Y = ys;                                                              \
        (void)P;                                                                \
        for (int64_t i = 0; i < n; i++) {                                       \
            T x = X[i], y;                                                      \
            __VA_ARGS__;                                                        \
            Y[i] = y;                                                           \
        }                                                                       \
    }
#define UN_FLT(op, ...) UN_KERN(op##_f32, float, __VA_ARGS__) UN_KERN(op##_f64, double, __VA_ARGS__)
#define UN_SINT(op, ...)                                                                  \
    UN_KERN_INT(op##_i8, int8_t, __VA_ARGS__) UN_KERN_INT(op##_i16, int16_t, __VA_ARGS__) \
        UN_KERN_INT(op##_i32, int32_t, __VA_ARGS__)                                       \
            UN_KERN_INT(op##_i64, int64_t, __VA_ARGS__)
#define UN_UINT(op, ...)                                                                  \
    UN_KERN_INT(op##_u8, uint8_t, __VA_ARGS__) UN_KERN_INT(op##_u16, uint16_t, __VA_ARGS__) \
        UN_KERN_INT(op##_u32, uint32_t, __VA_ARGS__)                                      \
            UN_KERN_INT(op##_u64, uint64_t, __VA_ARGS__)

#define TBL_FLT(op) [ONR_FLOAT] = op##_f32, [ONR_DOUBLE] = op##_f64
#define TBL_SINT(op) \
    [ONR_INT8] = op##_i8, [ONR_INT16] = op##_i16, [ONR_INT32] = op##_i32, [ONR_INT64] = op##_i64
#define TBL_UINT(op) \
    [ONR_UINT8] = op##_u8, [ONR_UINT16] = op##_u16, [ONR_UINT32] = op##_u32, [ONR_UINT64] = op##_u64

/* ---- float32 exp, tanh, erf that vectorize ------------------------------- *
 *
 * libm's expf/tanhf/erff are scalar calls (7-22 ns each); these branch-free
 * versions are plain arithmetic the compiler turns into vector code. Checked
 * against double-precision libm in the tests: exp within 1 ulp, tanh and
 * erf within 8 ulp. The float64 kernels keep libm.
 */

static inline float f_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* e^x: x = n ln2 + r, |r| <= ln2/2, e^r by the Cephes polynomial, 2^n
 * applied in two halves so results down to the subnormals and up to
 * overflow come out right. NaN propagates. */
static inline float fast_expf(float x)
{
    float xc = x < -104.f ? -104.f : x;
    xc = xc > 89.f ? 89.f : xc;
    float t = xc * 1.44269504088896341f + 12582912.f; /* round to integer: + 1.5 * 2^23 */
    float n = t - 12582912.f;
    float r = xc - n * 0.693359375f - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.f;
    uint32_t tb;
    memcpy(&tb, &t, 4);
    int32_t ni = (int32_t)(tb - 0x4B400000u); /* n, from the low bits of t */
    int32_t n1 = ni / 2, n2 = ni - n1;
    y = y * f_from_bits((uint32_t)(n1 + 127) << 23) * f_from_bits((uint32_t)(n2 + 127) << 23);
    return x != x ? x : y;
}

/* tanh by an odd rational approximation on [-7.9, 7.9] (beyond, it is
 * +-1 in float); tiny inputs return x. */
static inline float fast_tanhf(float x)
{
    float xc = x < -7.90531110763549805f ? -7.90531110763549805f : x;
    xc = xc > 7.90531110763549805f ? 7.90531110763549805f : xc;
    float x2 = xc * xc;
    float p = -2.76076847742355e-16f;
    p = x2 * p + 2.00018790482477e-13f;
    p = x2 * p + -8.60467152213735e-11f;
    p = x2 * p + 5.12229709037114e-08f;
    p = x2 * p + 1.48572235717979e-05f;
    p = x2 * p + 6.37261928875436e-04f;
    p = x2 * p + 4.89352455891786e-03f;
    p = xc * p;
    float q = 1.19825839466702e-06f;
    q = x2 * q + 1.18534705686654e-04f;
    q = x2 * q + 2.26843463243900e-03f;
    q = x2 * q + 4.89352518554385e-03f;
    float y = p / q;
    return fabsf(x) < 0.0004f ? x : y;
}

/* erf by an odd rational approximation on [-4, 4] (beyond, it is +-1). */
static inline float fast_erff(float x)
{
    float xc = x < -4.f ? -4.f : x;
    xc = xc > 4.f ? 4.f : xc;
    float x2 = xc * xc;
    float p = -2.72614225801306e-10f;
    p = x2 * p + 2.77068142495902e-08f;
    p = x2 * p + -2.10102402082508e-06f;
    p = x2 * p + -5.69250639462346e-05f;
    p = x2 * p + -7.34990630326855e-04f;
    p = x2 * p + -2.95459980854025e-03f;
    p = x2 * p + -1.60960333262415e-02f;
    p = xc * p;
    float q = -1.45660718464996e-05f;
    q = x2 * q + -2.13374055278905e-04f;
    q = x2 * q + -1.68282697438203e-03f;
    q = x2 * q + -7.37332916720468e-03f;
    q = x2 * q + -1.42647390514189e-02f;
    return x != x ? x : p / q;
}

/* ---- kernels ---------------------------------------------------------------- */

#define K(c) ((T)(c))

/* -- math -- */
UN_FLT(abs, y = fabs(x))
UN_SINT(abs, y = x < 0 ? (T)(0 - (uint64_t)x) : x) /* MIN wraps to MIN */
UN_UINT(abs, y = x)
UN_FLT(neg, y = -x)
UN_SINT(neg, y = (T)(0 - (uint64_t)x))
UN_FLT(sqrt, y = sqrt(x))
UN_KERN(exp_f32, float, y = fast_expf(x))
UN_KERN(exp_f64, double, y = exp(x))
UN_FLT(log, y = log(x))
UN_FLT(recip, y = K(1) / x)
UN_KERN(erf_f32, float, y = fast_erff(x))
UN_KERN(erf_f64, double, y = erf(x))
UN_KERN(tanh_f32, float, y = fast_tanhf(x))
UN_KERN(tanh_f64, double, y = tanh(x))
UN_FLT(floor, y = floor(x))
UN_FLT(ceil, y = ceil(x))
UN_FLT(round, y = nearbyint(x)) /* default rounding mode: half to even */
UN_FLT(sign, y = x > 0 ? K(1) : x < 0 ? K(-1) : x) /* 0 and NaN stay */
UN_SINT(sign, y = (T)((x > 0) - (x < 0)))
UN_UINT(sign, y = x > 0)
UN_FLT(sin, y = sin(x))
UN_FLT(cos, y = cos(x))
UN_FLT(tan, y = tan(x))
UN_FLT(asin, y = asin(x))
UN_FLT(acos, y = acos(x))
UN_FLT(atan, y = atan(x))
UN_FLT(sinh, y = sinh(x))
UN_FLT(cosh, y = cosh(x))
UN_FLT(asinh, y = asinh(x))
UN_FLT(acosh, y = acosh(x))
UN_FLT(atanh, y = atanh(x))

/* -- activations -- */
UN_FLT(relu, y = x < 0 ? K(0) : x) /* NaN stays NaN */
UN_SINT(relu, y = x < 0 ? 0 : x)
UN_KERN(sigmoid_f32, float, y = 1.f / (1.f + fast_expf(-x)))
UN_KERN(sigmoid_f64, double, y = 1 / (1 + exp(-x)))
UN_FLT(leaky, y = x < 0 ? A * x : x)
UN_FLT(elu, y = x < 0 ? A * expm1(x) : x)
UN_FLT(selu, y = x <= 0 ? G * A * expm1(x) : G * x)
UN_FLT(celu, y = x > 0 ? x : A * expm1(x / A))
UN_FLT(threlu, y = x > A ? x : K(0))
/* log(1 + e^x) without overflow for large |x| */
UN_FLT(softplus, y = x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)))
UN_FLT(softsign, y = x / (K(1) + fabs(x)))
UN_FLT(hsigmoid, T v = A * x + B; y = v < 0 ? K(0) : v > 1 ? K(1) : v)
UN_FLT(hswish, T v = x * K(1.0 / 6) + K(0.5); y = x * (v < 0 ? K(0) : v > 1 ? K(1) : v))
/* Swish (24): x * sigmoid(alpha x), as the function body's Mul(X, Sigmoid(Mul(alpha, X))) */
UN_KERN(swish_f32, float, y = x / (1.f + fast_expf(-A * x)))
UN_KERN(swish_f64, double, y = x / (1 + exp(-A * x)))
UN_FLT(mish, T sp = x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); y = x * tanh(sp))
/* float64 Gelu with libm, written so negative x keeps its relative
 * accuracy where 1 + erf(.) and 1 + tanh(.) would cancel: the erf form as
 * 0.5 x erfc(-x / sqrt 2), the tanh form as x / (1 + exp(-2u)). */
UN_KERN(gelu_erf_f64, double, y = 0.5 * x * erfc(-x * 0.70710678118654752440))
UN_KERN(gelu_tanh_f64, double,
        y = x / (1 + exp(-2 * 0.7978845608028654 * (x + 0.044715 * x * x * x))))
/* float32 Gelu: the GEMM epilogue's vector activations (sgemm-act-simd.h,
 * 4 lanes: baseline SSE2), so a Gelu step and a FusedMatMul's epilogue
 * compute the same values. The erf form goes through erfc, keeping the
 * relative accuracy for negative x that 1 + erf(x) would lose. */
static void gelu_f32(const void *xs, void *ys, int64_t n, const un_prm *P)
{
    const float *x = xs;
    float *y = ys;
    int act = P->flag ? ONR_ACT_GELU_TANH : ONR_ACT_GELU_ERF;
    int64_t i = 0;
    for (; i + ONR_ACT_VL <= n; i += ONR_ACT_VL) {
        act_vf v;
        memcpy(&v, x + i, sizeof v);
        v = act_apply(v, act, 0.f, 0.f);
        memcpy(y + i, &v, sizeof v);
    }
    if (i < n) { /* the tail through one zero-padded vector */
        act_vf v = {0};
        memcpy(&v, x + i, sizeof(float) * (size_t)(n - i));
        v = act_apply(v, act, 0.f, 0.f);
        memcpy(y + i, &v, sizeof(float) * (size_t)(n - i));
    }
}
static void gelu_f64(const void *x, void *y, int64_t n, const un_prm *P)
{
    (P->flag ? gelu_tanh_f64 : gelu_erf_f64)(x, y, n, P);
}
UN_FLT(shrink, y = x < -A ? x + B : x > A ? x - B : K(0))
/* BitwiseNot (18): every integer type; unsigned so ~ never promotes a sign */
UN_SINT(bnot, y = (T) ~(uint64_t)x)
UN_UINT(bnot, y = (T) ~(uint64_t)x)

/* -- Clip: y = min(max(x, lo), hi), so lo > hi gives hi as numpy.clip does -- */
UN_FLT(clip, T v = x < A ? A : x; y = v > B ? B : v)
UN_SINT(clip, T lo = (T)P->lo_i, hi = (T)P->hi_i; T v = x < lo ? lo : x; y = v > hi ? hi : v)
UN_UINT(clip, T lo = (T)P->lo_u, hi = (T)P->hi_u; T v = x < lo ? lo : x; y = v > hi ? hi : v)

/* ---- driver ----------------------------------------------------------------- */

#define UN_CHUNK 256

static int is_half(onr_dtype dt) { return dt == ONR_FLOAT16 || dt == ONR_BFLOAT16; }

/* Double to int64 without undefined behaviour (NaN gives 0, saturates). */
static int64_t f64_to_i64(double v)
{
    if (v != v) return 0;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

/* Store a double into an integer tensor element, converting safely. */
static void store_int(onr_dtype dt, void *p, int64_t i, double v)
{
    if (dt == ONR_UINT64) {
        ((uint64_t *)p)[i] = v >= 18446744073709551615.0 ? UINT64_MAX
                             : v >= 9223372036854775808.0 ? (uint64_t)v
                                                          : (uint64_t)f64_to_i64(v);
        return;
    }
    int64_t r = f64_to_i64(v);
    switch (dt) {
    case ONR_INT8: ((int8_t *)p)[i] = (int8_t)r; break;
    case ONR_INT16: ((int16_t *)p)[i] = (int16_t)r; break;
    case ONR_INT32: ((int32_t *)p)[i] = (int32_t)r; break;
    case ONR_INT64: ((int64_t *)p)[i] = r; break;
    case ONR_UINT8: ((uint8_t *)p)[i] = (uint8_t)r; break;
    case ONR_UINT16: ((uint16_t *)p)[i] = (uint16_t)r; break;
    case ONR_UINT32: ((uint32_t *)p)[i] = (uint32_t)r; break;
    default: break;
    }
}

/* How run reaches the kernel for the input type (chosen in reshape). */
enum { UN_NATIVE, UN_VIA_F32 /* float16/bfloat16 */, UN_VIA_F64 /* integers */ };

typedef struct un_params {
    un_prm prm; /* create: the attributes (Clip-11: run fills in the bounds on a copy) */
    un_kern k;  /* reshape: the kernel, native or the float one the input converts to */
    int via;    /* reshape: UN_NATIVE, UN_VIA_F32 or UN_VIA_F64 */
} un_params;

/* Elements [s, e) of x through the kernel. A native kernel runs on the
 * tensors directly; otherwise small chunks are converted to float (half
 * types) or double (integers), computed, and converted back. Element i of
 * y is written only after element i of x was read, so y may be x. */
static void un_slice(const un_params *P, const onr_tensor *x, onr_tensor *y, int64_t s, int64_t e,
                     const un_prm *prm)
{
    onr_dtype dt = x->dtype;
    size_t es = onr_dtype_size(dt);
    if (P->via == UN_NATIVE) {
        P->k((const char *)x->data + (size_t)s * es, (char *)y->data + (size_t)s * es, e - s, prm);
        return;
    }
    for (int64_t off = s; off < e; off += UN_CHUNK) {
        int64_t m = e - off < UN_CHUNK ? e - off : UN_CHUNK;
        if (P->via == UN_VIA_F32) {
            float buf[UN_CHUNK];
            const uint16_t *src = (const uint16_t *)x->data + off;
            uint16_t *dst = (uint16_t *)y->data + off;
            if (dt == ONR_FLOAT16)
                for (int64_t i = 0; i < m; i++) buf[i] = onr_half_to_float(src[i]);
            else
                for (int64_t i = 0; i < m; i++) buf[i] = onr_bf16_to_float(src[i]);
            P->k(buf, buf, m, prm);
            if (dt == ONR_FLOAT16)
                for (int64_t i = 0; i < m; i++) dst[i] = onr_float_to_half(buf[i]);
            else
                for (int64_t i = 0; i < m; i++) dst[i] = onr_float_to_bf16(buf[i]);
        } else {
            double buf[UN_CHUNK];
            for (int64_t i = 0; i < m; i++) buf[i] = onr_get_f64(x, off + i);
            P->k(buf, buf, m, prm);
            for (int64_t i = 0; i < m; i++) store_int(dt, y->data, off + i, buf[i]);
        }
    }
}

static int un_create(onr_create_ctx *c, void *params, const un_op *op)
{
    un_params *P = params;
    return op->attrs ? op->attrs(c, &P->prm) : ONR_OK;
}

static int clip_check(onr_kctx *ctx, int i, int is_lo);

static int un_reshape(onr_kctx *ctx, size_t *scratch, const un_op *op)
{
    un_params *P = ctx->params;
    int st;
    *scratch = 0;
    if (ctx->n_in < 1 || ctx->n_in > op->max_in)
        return onr_seterr(ctx->err, ONR_E_MODEL, "expects %s input%s and 1 output, got %d and %d",
                          op->max_in > 1 ? "1 to 3" : "1", op->max_in > 1 ? "s" : "", ctx->n_in,
                          ctx->n_out);
    if ((st = onr_check_input(ctx, 0, op->types))) return st;
    if (op->max_in > 1 && ((st = clip_check(ctx, 1, 1)) || (st = clip_check(ctx, 2, 0))))
        return st;
    onr_dtype dt = ctx->in[0]->dtype;
    if (op->k[dt]) {
        P->k = op->k[dt];
        P->via = UN_NATIVE;
    } else if (is_half(dt) && op->k[ONR_FLOAT]) {
        P->k = op->k[ONR_FLOAT];
        P->via = UN_VIA_F32;
    } else if ((ONR_T(dt) & ONR_TYPES_INT) && op->k[ONR_DOUBLE]) {
        P->k = op->k[ONR_DOUBLE];
        P->via = UN_VIA_F64;
    } else {
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "%s is not implemented for %s", op->name,
                          onr_dtype_name(dt));
    }
    return onr_set_out_like(ctx, 0, 0);
}

static void clip_read(const onr_kctx *ctx, un_prm *p);

static int un_run(const onr_kctx *ctx, const un_op *op)
{
    const un_params *P = ctx->params;
    const un_prm *prm = &P->prm;
    un_prm bounds;
    if (op->max_in > 1) { /* Clip-11: the bounds are values of this run */
        bounds = P->prm;
        clip_read(ctx, &bounds);
        prm = &bounds;
    }
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    int64_t n = x->numel, work = n * op->cost;
    int nt = work > ONR_PAR_MIN && ctx->nthreads > 1 ? ctx->nthreads : 1;
    int64_t chunk = ((n + nt - 1) / nt + 63) & ~(int64_t)63;
#pragma omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN) schedule(static)
    for (int t = 0; t < nt; t++) {
        int64_t s = t * chunk, e = s + chunk < n ? s + chunk : n;
        if (s < e) un_slice(P, x, y, s, e, prm);
    }
    return ONR_OK;
}

/* ---- attributes ----------------------------------------------------------- */

static int leaky_attrs(onr_create_ctx *c, un_prm *p)
{
    p->alpha = onr_attr_float(c->node, "alpha", 0.01f);
    return ONR_OK;
}

static int alpha1_attrs(onr_create_ctx *c, un_prm *p)
{
    p->alpha = onr_attr_float(c->node, "alpha", 1.f);
    return ONR_OK;
}

static int selu_attrs(onr_create_ctx *c, un_prm *p)
{
    p->alpha = onr_attr_float(c->node, "alpha", 1.67326319217681884765625f);
    p->gamma = onr_attr_float(c->node, "gamma", 1.05070102214813232421875f);
    return ONR_OK;
}

static int hsigmoid_attrs(onr_create_ctx *c, un_prm *p)
{
    p->alpha = onr_attr_float(c->node, "alpha", 0.2f);
    p->beta = onr_attr_float(c->node, "beta", 0.5f);
    return ONR_OK;
}

static int celu_attrs(onr_create_ctx *c, un_prm *p)
{
    p->alpha = onr_attr_float(c->node, "alpha", 1.f);
    if (p->alpha == 0) return onr_seterr(c->err, ONR_E_MODEL, "Celu alpha must not be 0");
    return ONR_OK;
}

static int shrink_attrs(onr_create_ctx *c, un_prm *p)
{
    p->alpha = onr_attr_float(c->node, "lambd", 0.5f);
    p->beta = onr_attr_float(c->node, "bias", 0.f);
    return ONR_OK;
}

static int gelu_attrs(onr_create_ctx *c, un_prm *p)
{
    const char *a = onr_attr_string(c->node, "approximate", "none");
    if (strcmp(a, "none") != 0 && strcmp(a, "tanh") != 0)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "approximate must be \"none\" or \"tanh\", got \"%s\"", a);
    p->flag = strcmp(a, "tanh") == 0;
    return ONR_OK;
}

/* ---- registry entries ------------------------------------------------------ */

/* Every op here writes element i of its output only after reading element i
 * of its input (the half and integer paths convert a chunk before storing
 * it), and Clip-11 reads its bounds before the loop: safe in place. */
#define UN_OPN(Sym, max_in_, types_, cost_, attrs_, ...)                                      \
    static const un_op op_##Sym = {#Sym, types_, cost_, max_in_, attrs_, {__VA_ARGS__}};      \
    static int Sym##_create(onr_create_ctx *c, void *p) { return un_create(c, p, &op_##Sym); } \
    static int Sym##_reshape(onr_kctx *c, size_t *s) { return un_reshape(c, s, &op_##Sym); }   \
    static int Sym##_run(const onr_kctx *c) { return un_run(c, &op_##Sym); }                         \
    const onr_op_impl onr_impl_##Sym = {.create = Sym##_create, .reshape = Sym##_reshape,      \
                                        .run = Sym##_run, .params_size = sizeof(un_params),     \
                                        .types = types_, .flags = ONR_OP_INPLACE};
#define UN_OP(Sym, ...) UN_OPN(Sym, 1, __VA_ARGS__)

#define T_FLT ONR_TYPES_FLOAT
#define T_NUM ONR_TYPES_NUM
#define T_SIGNED (ONR_TYPES_FLOAT | ONR_TYPES_SINT)

UN_OP(Abs, T_NUM, 1, NULL, TBL_FLT(abs), TBL_SINT(abs), TBL_UINT(abs))
UN_OP(Neg, T_SIGNED, 1, NULL, TBL_FLT(neg), TBL_SINT(neg))
UN_OP(Sqrt, T_FLT, 2, NULL, TBL_FLT(sqrt))
UN_OP(Exp, T_FLT, 8, NULL, TBL_FLT(exp))
UN_OP(Log, T_FLT, 8, NULL, TBL_FLT(log))
UN_OP(Reciprocal, T_FLT, 2, NULL, TBL_FLT(recip))
UN_OP(Erf, T_NUM, 8, NULL, TBL_FLT(erf))
UN_OP(Tanh, T_FLT, 8, NULL, TBL_FLT(tanh))
UN_OP(Floor, T_FLT, 1, NULL, TBL_FLT(floor))
UN_OP(Ceil, T_FLT, 1, NULL, TBL_FLT(ceil))
UN_OP(Round, T_FLT, 1, NULL, TBL_FLT(round))
UN_OP(Sign, T_NUM, 1, NULL, TBL_FLT(sign), TBL_SINT(sign), TBL_UINT(sign))
UN_OP(Sin, T_FLT, 8, NULL, TBL_FLT(sin))
UN_OP(Cos, T_FLT, 8, NULL, TBL_FLT(cos))
UN_OP(Tan, T_FLT, 8, NULL, TBL_FLT(tan))
UN_OP(Asin, T_FLT, 8, NULL, TBL_FLT(asin))
UN_OP(Acos, T_FLT, 8, NULL, TBL_FLT(acos))
UN_OP(Atan, T_FLT, 8, NULL, TBL_FLT(atan))
UN_OP(Sinh, T_FLT, 8, NULL, TBL_FLT(sinh))
UN_OP(Cosh, T_FLT, 8, NULL, TBL_FLT(cosh))
UN_OP(Asinh, T_FLT, 8, NULL, TBL_FLT(asinh))
UN_OP(Acosh, T_FLT, 8, NULL, TBL_FLT(acosh))
UN_OP(Atanh, T_FLT, 8, NULL, TBL_FLT(atanh))
UN_OP(Relu, T_SIGNED, 1, NULL, TBL_FLT(relu), TBL_SINT(relu))
UN_OP(Sigmoid, T_FLT, 8, NULL, TBL_FLT(sigmoid))
UN_OP(LeakyRelu, T_FLT, 1, leaky_attrs, TBL_FLT(leaky))
UN_OP(Elu, T_FLT, 8, alpha1_attrs, TBL_FLT(elu))
UN_OP(Selu, T_FLT, 8, selu_attrs, TBL_FLT(selu))
UN_OP(Celu, T_FLT, 8, celu_attrs, TBL_FLT(celu))
UN_OP(ThresholdedRelu, T_FLT, 1, alpha1_attrs, TBL_FLT(threlu))
UN_OP(Softplus, T_FLT, 8, NULL, TBL_FLT(softplus))
UN_OP(Softsign, T_FLT, 2, NULL, TBL_FLT(softsign))
UN_OP(HardSigmoid, T_FLT, 1, hsigmoid_attrs, TBL_FLT(hsigmoid))
UN_OP(HardSwish, T_FLT, 1, NULL, TBL_FLT(hswish))
UN_OP(Mish, T_FLT, 16, NULL, TBL_FLT(mish))
UN_OP(Gelu, T_FLT, 8, gelu_attrs, TBL_FLT(gelu))
UN_OP(Shrink, T_NUM, 1, shrink_attrs, TBL_FLT(shrink))
/* Swish: the function body casts alpha to X's type (CastLike) before the
 * multiply, so reshape rounds it to the input's precision (kept exact in
 * beta by create). */
static int swish_attrs(onr_create_ctx *c, un_prm *p)
{
    p->alpha = p->beta = onr_attr_float(c->node, "alpha", 1.f);
    return ONR_OK;
}
static const un_op op_Swish = {"Swish", T_FLT, 8, 1, swish_attrs, {TBL_FLT(swish)}};
static int Swish_create(onr_create_ctx *c, void *p) { return un_create(c, p, &op_Swish); }
static int Swish_reshape(onr_kctx *c, size_t *s)
{
    int st = un_reshape(c, s, &op_Swish);
    un_params *P = c->params;
    if (!st) P->prm.alpha = onr_round_to(c->in[0]->dtype, P->prm.beta);
    return st;
}
static int Swish_run(const onr_kctx *c) { return un_run(c, &op_Swish); }
const onr_op_impl onr_impl_Swish = {.create = Swish_create, .reshape = Swish_reshape,
                                    .run = Swish_run, .params_size = sizeof(un_params),
                                    .types = T_FLT, .flags = ONR_OP_INPLACE};
UN_OP(BitwiseNot, ONR_TYPES_INT, 1, NULL, TBL_SINT(bnot), TBL_UINT(bnot))

/* ---- Clip ---------------------------------------------------------------------- */

/* Clip-6..10: bounds are float attributes, defaulting to the float range. */
static int clip6_attrs(onr_create_ctx *c, un_prm *p)
{
    p->alpha = onr_attr_float(c->node, "min", -3.402823466e+38f);
    p->beta = onr_attr_float(c->node, "max", 3.402823466e+38f);
    return ONR_OK;
}

/* Clip-11+: bounds are optional scalar inputs of the input's type; absent
 * bounds do not clip. reshape checks their type and shape; run reads their
 * values (they are not shape inputs: no output shape depends on them). */
static int clip_check(onr_kctx *ctx, int i, int is_lo)
{
    const onr_tensor *b = i < ctx->n_in ? ctx->in[i] : NULL;
    onr_dtype dt = ctx->in[0]->dtype;
    if (!b) return ONR_OK;
    if (b->dtype != dt)
        return onr_seterr(ctx->err, ONR_E_MODEL, "Clip %s has type %s, input has %s",
                          is_lo ? "min" : "max", onr_dtype_name(b->dtype), onr_dtype_name(dt));
    if (b->numel != 1) {
        char s[256];
        return onr_seterr(ctx->err, ONR_E_MODEL, "Clip %s must be a scalar, has shape %s",
                          is_lo ? "min" : "max", onr_fmt_dims(s, sizeof s, b->dims, b->rank));
    }
    return ONR_OK;
}

/* The value of bound input i (or the whole range when absent) into p. */
static void clip_bound(const onr_kctx *ctx, int i, int is_lo, un_prm *p)
{
    static const int64_t smin[ONR_DTYPE_COUNT] = {[ONR_INT8] = INT8_MIN, [ONR_INT16] = INT16_MIN,
                                                  [ONR_INT32] = INT32_MIN, [ONR_INT64] = INT64_MIN};
    static const int64_t smax[ONR_DTYPE_COUNT] = {[ONR_INT8] = INT8_MAX, [ONR_INT16] = INT16_MAX,
                                                  [ONR_INT32] = INT32_MAX, [ONR_INT64] = INT64_MAX};
    static const uint64_t umax[ONR_DTYPE_COUNT] = {[ONR_UINT8] = UINT8_MAX,
                                                   [ONR_UINT16] = UINT16_MAX,
                                                   [ONR_UINT32] = UINT32_MAX,
                                                   [ONR_UINT64] = UINT64_MAX};
    const onr_tensor *b = i < ctx->n_in ? ctx->in[i] : NULL;
    onr_dtype dt = ctx->in[0]->dtype;
    double *f = is_lo ? &p->alpha : &p->beta;
    int64_t *si = is_lo ? &p->lo_i : &p->hi_i;
    uint64_t *ui = is_lo ? &p->lo_u : &p->hi_u;
    if (!b || !b->data) { /* absent: the whole range */
        *f = is_lo ? -INFINITY : INFINITY;
        *si = is_lo ? smin[dt] : smax[dt];
        *ui = is_lo ? 0 : umax[dt];
        return;
    }
    *f = onr_get_f64(b, 0);
    switch (dt) {
    case ONR_INT8: *si = *(const int8_t *)b->data; break;
    case ONR_INT16: *si = *(const int16_t *)b->data; break;
    case ONR_INT32: *si = *(const int32_t *)b->data; break;
    case ONR_INT64: *si = *(const int64_t *)b->data; break;
    case ONR_UINT8: *ui = *(const uint8_t *)b->data; break;
    case ONR_UINT16: *ui = *(const uint16_t *)b->data; break;
    case ONR_UINT32: *ui = *(const uint32_t *)b->data; break;
    case ONR_UINT64: *ui = *(const uint64_t *)b->data; break;
    default: break;
    }
}

static void clip_read(const onr_kctx *ctx, un_prm *p)
{
    clip_bound(ctx, 1, 1, p);
    clip_bound(ctx, 2, 0, p);
}

UN_OP(Clip6, T_FLT, 1, clip6_attrs, TBL_FLT(clip))
UN_OPN(Clip, 3, T_NUM, 1, NULL, TBL_FLT(clip), TBL_SINT(clip), TBL_UINT(clip))

/* ---- IsNaN, IsInf, Not: bool outputs ------------------------------------------ */

static int bool_out_reshape(onr_kctx *ctx, size_t *scratch, uint32_t types)
{
    int st;
    *scratch = 0;
    if (ctx->n_in < 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "expects 1 input and 1 output, got %d and %d",
                          ctx->n_in, ctx->n_out);
    if ((st = onr_check_input(ctx, 0, types))) return st;
    const onr_tensor *x = ctx->in[0];
    return onr_set_out(ctx, 0, ONR_BOOL, x->rank, x->dims);
}

/* IsNaN and IsInf have float inputs and a bool output: never the same byte
 * size, so no in-place flag (it could never apply). Version 20 of both adds
 * the four float8 types (read through onr_get_f64, one byte an element);
 * e4m3fn and e4m3fnuz have no infinities, so IsInf is false for them. */
#define T_F8                                                                          \
    (ONR_T(ONR_FLOAT8E4M3FN) | ONR_T(ONR_FLOAT8E4M3FNUZ) | ONR_T(ONR_FLOAT8E5M2) |    \
     ONR_T(ONR_FLOAT8E5M2FNUZ))
static int isnan_reshape(onr_kctx *ctx, size_t *scratch)
{
    return bool_out_reshape(ctx, scratch, T_FLT | (ctx->opset >= 20 ? T_F8 : 0));
}
static int isnan_run(const onr_kctx *ctx)
{
    const onr_tensor *x = ctx->in[0];
    uint8_t *y = ctx->out[0]->data;
    for (int64_t i = 0; i < x->numel; i++) y[i] = isnan(onr_get_f64(x, i)) != 0;
    return ONR_OK;
}
const onr_op_impl onr_impl_IsNaN = {.reshape = isnan_reshape, .run = isnan_run, .types = T_FLT | T_F8};

typedef struct isinf_params {
    int neg, pos; /* create: detect_negative, detect_positive */
} isinf_params;

static int isinf_flag(onr_create_ctx *c, const char *name, int *out)
{
    int64_t v = onr_attr_int(c->node, name, 1);
    if (v != 0 && v != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "%s must be 0 or 1, got %lld", name, (long long)v);
    *out = (int)v;
    return ONR_OK;
}

static int isinf_create(onr_create_ctx *c, void *params)
{
    isinf_params *P = params;
    int st = isinf_flag(c, "detect_negative", &P->neg);
    return st ? st : isinf_flag(c, "detect_positive", &P->pos);
}

static int isinf_run(const onr_kctx *ctx)
{
    const isinf_params *P = ctx->params;
    const onr_tensor *x = ctx->in[0];
    uint8_t *y = ctx->out[0]->data;
    for (int64_t i = 0; i < x->numel; i++) {
        double v = onr_get_f64(x, i);
        y[i] = isinf(v) && (v > 0 ? P->pos : P->neg);
    }
    return ONR_OK;
}
const onr_op_impl onr_impl_IsInf = {.create = isinf_create, .reshape = isnan_reshape,
                                    .run = isinf_run, .params_size = sizeof(isinf_params),
                                    .types = T_FLT | T_F8};

/* Not: bool to bool, element i read before it is written: safe in place. */
static int not_reshape(onr_kctx *ctx, size_t *scratch)
{
    return bool_out_reshape(ctx, scratch, ONR_T(ONR_BOOL));
}
static int not_run(const onr_kctx *ctx)
{
    const uint8_t *x = ctx->in[0]->data;
    uint8_t *y = ctx->out[0]->data;
    for (int64_t i = 0; i < ctx->in[0]->numel; i++) y[i] = !x[i];
    return ONR_OK;
}
const onr_op_impl onr_impl_Not = {.reshape = not_reshape, .run = not_run,
                                  .types = ONR_T(ONR_BOOL), .flags = ONR_OP_INPLACE};
