/*
 * binary.c - elementwise operators over broadcast inputs: arithmetic (Add,
 * Sub, Mul, Div, Pow, Mod), variadic Max/Min/Sum/Mean, comparisons, logic,
 * BitShift, BitwiseAnd/Or/Xor (18), PRelu and Where.
 *
 * One driver (ew_exec) walks the broadcast output and hands runs of its
 * innermost dimension to a per-op, per-dtype kernel. The shape is collapsed
 * first: size-1 dims are dropped and neighbouring dims merged wherever every
 * input steps through them the same way, so same-shape and scalar operands
 * become one flat run, and [B,S,768] + [768] becomes rows of 768 with both
 * operands contiguous. Within a run an input is either contiguous or one
 * value repeated (its "mode" bit set), so kernels are plain loops the
 * compiler vectorizes; the outer dims are walked with an odometer.
 * float16/bfloat16 reuse the float32 kernel on small converted chunks
 * (compute in float, round on store).
 *
 * create reads the attributes (fmod, direction, opset < 7 broadcast/axis);
 * reshape checks the types, sets the output shape, picks the kernel and
 * collapses the shape into an ew_plan kept in the params (PRelu's slope
 * layout included); run only walks the plan. Every op here may write its
 * output over an input (ONR_OP_INPLACE): see "running in place" below.
 */
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#include "ops/ops.h"

/* Floating-point exceptions are never enabled and errno is never read, so
 * let the compiler turn the selects in the kernels (NaN checks, PRelu)
 * into vector blends; otherwise it keeps them as branches and the loops
 * stay scalar. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "no-math-errno")
#endif

/* ---- broadcast driver ------------------------------------------------------- */

#define EW_MAX_IN 3

/* Parameters some kernels read (Mod's fmod and BitShift's direction from
 * create, the input types of mixed-type Pow from reshape). */
typedef struct bin_prm {
    int fmod;
    int left;
    onr_dtype ta, tb, tc;
} bin_prm;

/* out[0..n) = f(in[0][..], in[1][..], ...); bit k of mode set means input k
 * is a single value repeated over the run (only in[k][0] is read). */
typedef void (*ew_kern)(const void *const *in, void *out, int64_t n, int mode, const void *prm);

typedef struct ew_plan {
    int nin, rank;                       /* collapsed rank, always >= 1 */
    int64_t n;                           /* output elements */
    int64_t dims[ONR_MAX_RANK];
    int64_t st[EW_MAX_IN][ONR_MAX_RANK]; /* element strides, 0 on broadcast dims */
    size_t esz[EW_MAX_IN], osz;
} ew_plan;

static size_t elem_size(onr_dtype dt)
{
    return dt == ONR_STRING ? sizeof(char *) : onr_dtype_size(dt);
}

static int is_half(onr_dtype dt) { return dt == ONR_FLOAT16 || dt == ONR_BFLOAT16; }

static void ew_plan_init(ew_plan *p, int nin, const onr_tensor *const *in, const onr_tensor *out)
{
    int64_t st[EW_MAX_IN][ONR_MAX_RANK];
    p->nin = nin;
    p->n = out->numel;
    p->osz = elem_size(out->dtype);
    for (int k = 0; k < nin; k++) {
        onr_bcast_strides(in[k]->dims, in[k]->rank, out->dims, out->rank, st[k]);
        p->esz[k] = elem_size(in[k]->dtype);
    }
    /* Merge dim d into the previous kept dim when, for every input, one step
     * of the previous dim equals a full sweep of d (both contiguous, or both
     * broadcast). */
    p->rank = 0;
    for (int d = 0; d < out->rank; d++) {
        if (out->dims[d] == 1) continue;
        int r = p->rank, merge = r > 0;
        for (int k = 0; k < nin && merge; k++)
            merge = p->st[k][r - 1] == st[k][d] * out->dims[d];
        if (merge) {
            p->dims[r - 1] *= out->dims[d];
            for (int k = 0; k < nin; k++) p->st[k][r - 1] = st[k][d];
            continue;
        }
        p->dims[r] = out->dims[d];
        for (int k = 0; k < nin; k++) p->st[k][r] = st[k][d];
        p->rank++;
    }
    if (p->rank == 0) { /* every dim is 1: one element */
        p->rank = 1;
        p->dims[0] = 1;
        for (int k = 0; k < nin; k++) p->st[k][0] = 1;
    }
}

/* Output elements [s, e): rows of the innermost dim, outer dims by odometer. */
static void ew_range(const ew_plan *p, const void *const *in, void *out, int64_t s, int64_t e,
                     ew_kern kern, const void *prm)
{
    const int R = p->rank, nin = p->nin;
    const int64_t L = p->dims[R - 1];
    int64_t idx[ONR_MAX_RANK], off[EW_MAX_IN] = {0};
    int mode = 0;
    for (int k = 0; k < nin; k++)
        if (p->st[k][R - 1] == 0) mode |= 1 << k;
    int64_t row = s / L, col = s % L;
    for (int d = R - 2; d >= 0; d--) {
        idx[d] = row % p->dims[d];
        row /= p->dims[d];
        for (int k = 0; k < nin; k++) off[k] += idx[d] * p->st[k][d];
    }
    for (int64_t pos = s; pos < e;) {
        int64_t len = L - col < e - pos ? L - col : e - pos;
        const void *src[EW_MAX_IN];
        for (int k = 0; k < nin; k++)
            src[k] = (const char *)in[k] + (size_t)(off[k] + col * p->st[k][R - 1]) * p->esz[k];
        kern(src, (char *)out + (size_t)pos * p->osz, len, mode, prm);
        pos += len;
        col = 0;
        for (int d = R - 2; d >= 0; d--) {
            for (int k = 0; k < nin; k++) off[k] += p->st[k][d];
            if (++idx[d] < p->dims[d]) break;
            for (int k = 0; k < nin; k++) off[k] -= p->st[k][d] * p->dims[d];
            idx[d] = 0;
        }
    }
}

/* Split the output into one contiguous slice per thread; each element is
 * computed the same way whatever the split, so results do not depend on
 * the thread count. */
static void ew_exec(const ew_plan *p, const void *const *in, void *out, ew_kern kern,
                    const void *prm, int cost, int nthreads)
{
    if (p->n <= 0) return;
    int64_t work = p->n * cost;
    int nt = work > ONR_PAR_MIN && nthreads > 1 ? nthreads : 1;
    if (nt == 1) { /* no region: see onr_par_for */
        ew_range(p, in, out, 0, p->n, kern, prm);
        return;
    }
    int64_t chunk = ((p->n + nt - 1) / nt + 63) & ~(int64_t)63;
#pragma omp parallel for num_threads(onr_team(nt)) schedule(static)
    for (int t = 0; t < nt; t++) {
        int64_t s = t * chunk, e = s + chunk < p->n ? s + chunk : p->n;
        if (s < e) ew_range(p, in, out, s, e, kern, prm);
    }
}

/* ---- float16 / bfloat16 through the float32 kernels ---------------------- */

#define HALF_CHUNK 256

typedef struct half_ctx {
    ew_kern f; /* the float32 kernel */
    const void *prm;
    int nin;
    onr_dtype dt[EW_MAX_IN], odt;
    size_t esz[EW_MAX_IN];
} half_ctx;

static void half_load(onr_dtype dt, const void *src, float *dst, int64_t n)
{
    const uint16_t *s = src;
    if (dt == ONR_FLOAT16)
        for (int64_t i = 0; i < n; i++) dst[i] = onr_half_to_float(s[i]);
    else
        for (int64_t i = 0; i < n; i++) dst[i] = onr_bf16_to_float(s[i]);
}

static void half_store(onr_dtype dt, const float *src, void *dst, int64_t n)
{
    uint16_t *d = dst;
    if (dt == ONR_FLOAT16)
        for (int64_t i = 0; i < n; i++) d[i] = onr_float_to_half(src[i]);
    else
        for (int64_t i = 0; i < n; i++) d[i] = onr_float_to_bf16(src[i]);
}

static void half_kern(const void *const *in, void *out, int64_t n, int mode, const void *prm)
{
    const half_ctx *h = prm;
    float buf[EW_MAX_IN][HALF_CHUNK], obuf[HALF_CHUNK];
    for (int64_t off = 0; off < n; off += HALF_CHUNK) {
        int64_t m = n - off < HALF_CHUNK ? n - off : HALF_CHUNK;
        const void *src[EW_MAX_IN];
        for (int k = 0; k < h->nin; k++) {
            int rep = (mode >> k) & 1;
            const char *s = (const char *)in[k] + (rep ? 0 : (size_t)off * h->esz[k]);
            if (is_half(h->dt[k])) {
                half_load(h->dt[k], s, buf[k], rep ? 1 : m);
                src[k] = buf[k];
            } else {
                src[k] = s;
            }
        }
        if (is_half(h->odt)) {
            h->f(src, obuf, m, mode, h->prm);
            half_store(h->odt, obuf, (uint16_t *)out + off, m);
        } else {
            h->f(src, (char *)out + (size_t)off * elem_size(h->odt), m, mode, h->prm);
        }
    }
}

/* ---- kernel generators -------------------------------------------------- */

/* A binary kernel: x is the element of A, y of B, T the type of A, P the
 * bin_prm; EXPR gives the result. Four loops so each is a plain vector loop. */
#define EW_BIN(fn, TA, TB, TC, EXPR)                                                       \
    static void fn(const void *const *in, void *out, int64_t n, int mode, const void *prm) \
    {                                                                                      \
        typedef TA T;                                                                      \
        typedef TB U;                                                                      \
        const T *a = in[0];                                                                \
        const U *b = in[1];                                                                \
        TC *c = out;                                                                       \
        const bin_prm *P = prm;                                                            \
        (void)P;                                                                           \
        switch (mode) {                                                                    \
        case 0:                                                                            \
            for (int64_t i = 0; i < n; i++) {                                              \
                T x = a[i];                                                                \
                U y = b[i];                                                                \
                c[i] = (TC)(EXPR);                                                         \
            }                                                                              \
            break;                                                                         \
        case 1: {                                                                          \
            T x = a[0];                                                                    \
            for (int64_t i = 0; i < n; i++) {                                              \
                U y = b[i];                                                                \
                c[i] = (TC)(EXPR);                                                         \
            }                                                                              \
        } break;                                                                           \
        case 2: {                                                                          \
            U y = b[0];                                                                    \
            for (int64_t i = 0; i < n; i++) {                                              \
                T x = a[i];                                                                \
                c[i] = (TC)(EXPR);                                                         \
            }                                                                              \
        } break;                                                                           \
        default: {                                                                         \
            T x = a[0];                                                                    \
            U y = b[0];                                                                    \
            TC v = (TC)(EXPR);                                                             \
            for (int64_t i = 0; i < n; i++) c[i] = v;                                      \
        }                                                                                  \
        }                                                                                  \
    }

/* Per-family instantiation: X(op, suffix, ctype, EXPR). */
#define FOR_FLT(X, op, E) X(op, f32, float, E) X(op, f64, double, E)
#define FOR_SINT(X, op, E) \
    X(op, i8, int8_t, E) X(op, i16, int16_t, E) X(op, i32, int32_t, E) X(op, i64, int64_t, E)
#define FOR_UINT(X, op, E) \
    X(op, u8, uint8_t, E) X(op, u16, uint16_t, E) X(op, u32, uint32_t, E) X(op, u64, uint64_t, E)
#define SAME(op, sfx, CT, E) EW_BIN(op##_##sfx, CT, CT, CT, E)
#define TOBOOL(op, sfx, CT, E) EW_BIN(op##_##sfx, CT, CT, uint8_t, E)

#define TBL_FLT(op) [ONR_FLOAT] = op##_f32, [ONR_DOUBLE] = op##_f64
#define TBL_SINT(op) \
    [ONR_INT8] = op##_i8, [ONR_INT16] = op##_i16, [ONR_INT32] = op##_i32, [ONR_INT64] = op##_i64
#define TBL_UINT(op) \
    [ONR_UINT8] = op##_u8, [ONR_UINT16] = op##_u16, [ONR_UINT32] = op##_u32, [ONR_UINT64] = op##_u64
#define TBL_NUM(op) TBL_FLT(op), TBL_SINT(op), TBL_UINT(op)

/* Integer arithmetic wraps (two's complement) instead of overflowing. */
#define WRAP(x, o, y) (T)((uint64_t)(x) o (uint64_t)(y))

/* Integer division and remainder never trap: by zero gives 0, and
 * MIN / -1 wraps. */
static inline int64_t sdiv(int64_t a, int64_t b)
{
    if (b == 0) return 0;
    if (b == -1) return (int64_t)(0 - (uint64_t)a);
    return a / b;
}
static inline int64_t srem(int64_t a, int64_t b) { return b == 0 || b == -1 ? 0 : a % b; }
/* Python-style remainder: takes the sign of the divisor. */
static inline int64_t smod(int64_t a, int64_t b)
{
    int64_t r = srem(a, b);
    return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
}
static inline uint64_t udiv(uint64_t a, uint64_t b) { return b ? a / b : 0; }
static inline uint64_t urem(uint64_t a, uint64_t b) { return b ? a % b : 0; }

/* -- arithmetic -- */
FOR_FLT(SAME, add, x + y)
FOR_SINT(SAME, add, WRAP(x, +, y))
FOR_UINT(SAME, add, WRAP(x, +, y))
FOR_FLT(SAME, sub, x - y)
FOR_SINT(SAME, sub, WRAP(x, -, y))
FOR_UINT(SAME, sub, WRAP(x, -, y))
FOR_FLT(SAME, mul, x * y)
FOR_SINT(SAME, mul, WRAP(x, *, y))
FOR_UINT(SAME, mul, WRAP(x, *, y))
FOR_FLT(SAME, div, x / y)
FOR_SINT(SAME, div, sdiv(x, y))
FOR_UINT(SAME, div, udiv(x, y))
FOR_FLT(SAME, mod, fmod(x, y))
FOR_SINT(SAME, mod, P->fmod ? srem(x, y) : smod(x, y))
FOR_UINT(SAME, mod, urem(x, y))
/* NaN in either operand propagates, as numpy.maximum does. */
FOR_FLT(SAME, max, (x != x || x > y) ? x : y)
FOR_SINT(SAME, max, x > y ? x : y)
FOR_UINT(SAME, max, x > y ? x : y)
FOR_FLT(SAME, min, (x != x || x < y) ? x : y)
FOR_SINT(SAME, min, x < y ? x : y)
FOR_UINT(SAME, min, x < y ? x : y)
FOR_FLT(SAME, prelu, x < 0 ? x * y : x)
FOR_SINT(SAME, prelu, x < 0 ? WRAP(x, *, y) : x)
FOR_UINT(SAME, prelu, ((void)y, x)) /* never negative */
/* Shifts by the type's width or more give 0 rather than undefined behaviour. */
FOR_UINT(SAME, shift,
         y >= 8 * sizeof(T) ? 0 : P->left ? (T)((uint64_t)x << y) : (T)(x >> y))

/* -- BitwiseAnd/Or/Xor (opset 18): the integer types only -- */
FOR_SINT(SAME, band, x & y)
FOR_UINT(SAME, band, x & y)
FOR_SINT(SAME, bor, x | y)
FOR_UINT(SAME, bor, x | y)
FOR_SINT(SAME, bxor, x ^ y)
FOR_UINT(SAME, bxor, x ^ y)

/* -- comparisons and logic (bool out) -- */
FOR_FLT(TOBOOL, eq, x == y)
FOR_SINT(TOBOOL, eq, x == y)
FOR_UINT(TOBOOL, eq, x == y)
FOR_FLT(TOBOOL, lt, x < y)
FOR_SINT(TOBOOL, lt, x < y)
FOR_UINT(TOBOOL, lt, x < y)
FOR_FLT(TOBOOL, le, x <= y)
FOR_SINT(TOBOOL, le, x <= y)
FOR_UINT(TOBOOL, le, x <= y)
FOR_FLT(TOBOOL, gt, x > y)
FOR_SINT(TOBOOL, gt, x > y)
FOR_UINT(TOBOOL, gt, x > y)
FOR_FLT(TOBOOL, ge, x >= y)
FOR_SINT(TOBOOL, ge, x >= y)
FOR_UINT(TOBOOL, ge, x >= y)
EW_BIN(eq_b, uint8_t, uint8_t, uint8_t, (x != 0) == (y != 0))
EW_BIN(eq_str, char *, char *, uint8_t, strcmp(x ? x : "", y ? y : "") == 0)
EW_BIN(and_b, uint8_t, uint8_t, uint8_t, (x != 0) & (y != 0))
EW_BIN(or_b, uint8_t, uint8_t, uint8_t, (x != 0) | (y != 0))
EW_BIN(xor_b, uint8_t, uint8_t, uint8_t, (x != 0) ^ (y != 0))

/* -- Pow -- */
EW_BIN(pow_f32_any, float, float, float, pow(x, y))
EW_BIN(pow_f64, double, double, double, pow(x, y))

/* float32 x**2 with a constant exponent is common (variance in decomposed
 * LayerNorm): keep it a vector loop. */
static void pow_f32(const void *const *in, void *out, int64_t n, int mode, const void *prm)
{
    if (mode == 2 && *(const float *)in[1] == 2.f) {
        const float *a = in[0];
        float *c = out;
        for (int64_t i = 0; i < n; i++) c[i] = a[i] * a[i];
        return;
    }
    pow_f32_any(in, out, n, mode, prm);
}

static int is_int(onr_dtype dt) { return (ONR_T(dt) & ONR_TYPES_INT) != 0; }

/* Double to int64 without undefined behaviour: NaN gives 0, out of range
 * saturates. */
static int64_t f64_to_i64(double v)
{
    if (v != v) return 0;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

/* Exact integer power with wrap-around, as numpy computes int ** int. A
 * negative exponent gives the truncated reciprocal (0 unless |base| is 1). */
static int64_t ipow(int64_t b, int64_t e)
{
    if (e < 0) return b == 1 ? 1 : b == -1 ? (e & 1 ? -1 : 1) : 0;
    uint64_t r = 1, x = (uint64_t)b;
    for (; e; e >>= 1) {
        if (e & 1) r *= x;
        x *= x;
    }
    return (int64_t)r;
}

/* Pow with any base/exponent type pair: the general (slow) path. */
static void pow_mixed(const void *const *in, void *out, int64_t n, int mode, const void *prm)
{
    const bin_prm *P = prm;
    int64_t sa = !(mode & 1), sb = !(mode & 2);
    for (int64_t i = 0; i < n; i++) {
        if (is_int(P->ta)) {
            int64_t r = is_int(P->tb)
                            ? ipow(onr_load_i64(P->ta, in[0], i * sa), onr_load_i64(P->tb, in[1], i * sb))
                            : f64_to_i64(pow(onr_load_f64(P->ta, in[0], i * sa),
                                             onr_load_f64(P->tb, in[1], i * sb)));
            if (P->tc == ONR_INT32)
                ((int32_t *)out)[i] = (int32_t)r;
            else
                ((int64_t *)out)[i] = r;
            continue;
        }
        double r = pow(onr_load_f64(P->ta, in[0], i * sa), onr_load_f64(P->tb, in[1], i * sb));
        switch (P->tc) {
        case ONR_FLOAT: ((float *)out)[i] = (float)r; break;
        case ONR_DOUBLE: ((double *)out)[i] = r; break;
        case ONR_FLOAT16: ((uint16_t *)out)[i] = onr_float_to_half((float)r); break;
        case ONR_BFLOAT16: ((uint16_t *)out)[i] = onr_float_to_bf16((float)r); break;
        default: break;
        }
    }
}

/* -- Where: select by element size, the type does not matter -- */
#define WHERE_KERN(fn, T)                                                                  \
    static void fn(const void *const *in, void *out, int64_t n, int mode, const void *prm) \
    {                                                                                      \
        const uint8_t *c = in[0];                                                          \
        const T *x = in[1], *y = in[2];                                                    \
        T *o = out;                                                                        \
        (void)prm;                                                                         \
        /* both sides are loaded before selecting so the loops vectorize */               \
        if (mode == 0) {                                                                   \
            for (int64_t i = 0; i < n; i++) {                                              \
                T xv = x[i], yv = y[i];                                                    \
                o[i] = c[i] ? xv : yv;                                                     \
            }                                                                              \
        } else if (mode == 4) { /* masked fill: Where(mask, x, const) */                   \
            T yv = y[0];                                                                   \
            for (int64_t i = 0; i < n; i++) {                                              \
                T xv = x[i];                                                               \
                o[i] = c[i] ? xv : yv;                                                     \
            }                                                                              \
        } else {                                                                           \
            int64_t sc = !(mode & 1), sx = !(mode & 2), sy = !(mode & 4);                  \
            for (int64_t i = 0; i < n; i++) {                                              \
                T xv = x[i * sx], yv = y[i * sy];                                          \
                o[i] = c[i * sc] ? xv : yv;                                                \
            }                                                                              \
        }                                                                                  \
    }
WHERE_KERN(where_1, uint8_t)
WHERE_KERN(where_2, uint16_t)
WHERE_KERN(where_4, uint32_t)
WHERE_KERN(where_8, uint64_t)

/* ---- operator descriptors ------------------------------------------------ */

typedef struct bin_op {
    const char *name;
    uint32_t types;  /* allowed type of input A (and B unless mixed) */
    uint32_t btypes; /* Pow: allowed exponent types; 0 = same as A */
    int out_bool;
    int cost; /* rough per-element cost for the parallel threshold */
    /* create: read and validate the attributes into p; may be NULL */
    int (*attrs)(onr_create_ctx *c, bin_prm *p);
    /* reshape: check the attributes against the input types; may be NULL */
    int (*check)(onr_kctx *ctx, const bin_prm *p);
    ew_kern k[ONR_DTYPE_COUNT];
} bin_op;

/* The kernel reshape chose. For float16/bfloat16 through the float32 kernel
 * fn is half_kern and half holds the converter's types; run points half.prm
 * at the op's parameters on a copy. */
typedef struct ew_kernel {
    ew_kern fn;
    half_ctx half;
} ew_kernel;

/* Kernel for op with inputs of types ta, tb and output odt: the native one,
 * float32's through the float16/bfloat16 converter, or mixed Pow. */
static int pick_kernel(onr_kctx *ctx, const bin_op *op, onr_dtype ta, onr_dtype tb, onr_dtype odt,
                       ew_kernel *k)
{
    memset(k, 0, sizeof *k);
    if (ta == tb && op->k[ta]) {
        k->fn = op->k[ta];
    } else if (ta == tb && is_half(ta) && op->k[ONR_FLOAT]) {
        half_ctx *h = &k->half;
        h->f = op->k[ONR_FLOAT];
        h->nin = 2;
        h->dt[0] = ta;
        h->dt[1] = tb;
        h->esz[0] = elem_size(ta);
        h->esz[1] = elem_size(tb);
        h->odt = odt;
        k->fn = half_kern;
    } else if (op->btypes) {
        k->fn = pow_mixed; /* mixed or integer Pow */
    } else {
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "%s is not implemented for %s and %s",
                          op->name, onr_dtype_name(ta), onr_dtype_name(tb));
    }
    return ONR_OK;
}

/* Run a plan: data[k] are the inputs' buffers, prm the kernel parameters. */
static void ew_run(const onr_kctx *ctx, const ew_plan *p, const ew_kernel *k, const void *prm,
                   const void *const *data, void *out, int cost)
{
    half_ctx h;
    if (k->fn == half_kern) {
        h = k->half;
        h.prm = prm;
        prm = &h;
    }
    ew_exec(p, data, out, k->fn, prm, cost, ctx->nthreads);
}

/* ---- running in place (ONR_OP_INPLACE) ------------------------------------ *
 *
 * The executor may hand run an output buffer that is an input's buffer when
 * both have the same byte size. An input with the output's element size and
 * element count has the output's layout (a broadcast input has fewer
 * elements), so element i is read just before element i is written: safe,
 * in the float16/bfloat16 chunks too (a chunk is converted before its
 * results are stored). An input with the same byte size but another element
 * size (float32 [1,4] against a bool [4,4] output, a float64 exponent of a
 * float32 Pow) does not: reshape reserves scratch for those, and run copies
 * such an input there first when the output is its buffer.
 */

/* Bit k: input k needs the copy if the output overwrites it; sets *scratch. */
static unsigned alias_hazards(int nin, const onr_tensor *const *in, const onr_tensor *out,
                              size_t *scratch)
{
    size_t ob = (size_t)out->numel * elem_size(out->dtype);
    unsigned mask = 0;
    for (int k = 0; k < nin; k++) {
        const onr_tensor *t = in[k];
        if (!t) continue;
        int same_layout = t->numel == out->numel && elem_size(t->dtype) == elem_size(out->dtype);
        if (!same_layout && ob && (size_t)t->numel * elem_size(t->dtype) == ob) mask |= 1u << k;
    }
    *scratch = mask ? ob : 0;
    return mask;
}

/* data[k] of the inputs in mask that are the output's buffer -> a copy in scratch. */
static void alias_redirect(const onr_kctx *ctx, int nin, unsigned mask, const void **data)
{
    const void *o = ctx->out[0]->data;
    int copied = 0;
    for (int k = 0; k < nin; k++) {
        if (!(mask >> k & 1u) || data[k] != o) continue;
        if (!copied) memcpy(ctx->scratch, o, ctx->scratch_size);
        copied = 1;
        data[k] = ctx->scratch;
    }
}

/* ---- shared checks ------------------------------------------------------------ */

static int type_mismatch(onr_kctx *ctx, int i)
{
    return onr_seterr(ctx->err, ONR_E_MODEL, "input %d has type %s, input 0 has %s", i,
                      onr_dtype_name(ctx->in[i]->dtype), onr_dtype_name(ctx->in[0]->dtype));
}

static int count_inputs(onr_kctx *ctx, int lo, int hi)
{
    if (ctx->n_in < lo || ctx->n_in > hi) {
        if (lo == hi)
            return onr_seterr(ctx->err, ONR_E_MODEL, "expects %d inputs, got %d", lo, ctx->n_in);
        return onr_seterr(ctx->err, ONR_E_MODEL, "expects at least %d inputs, got %d", lo,
                          ctx->n_in);
    }
    return ONR_OK;
}

/* Shape of every n-input broadcasting op: check types, broadcast, set out. */
static int bcast_out(onr_kctx *ctx, int n, onr_dtype odt)
{
    int64_t dims[ONR_MAX_RANK];
    int rank = 0;
    int st = onr_broadcast_shape(ctx, n, (const onr_tensor *const *)ctx->in, dims, &rank);
    if (st) return st;
    return onr_set_out(ctx, 0, odt, rank, dims);
}

/* ---- Add, Sub, ..., comparisons, logic, BitShift ------------------------------- */

typedef struct bin_params {
    bin_prm prm;        /* create: fmod, direction; reshape: the types mixed Pow reads */
    int legacy;         /* create: opset < 7, B broadcasts by the attributes below */
    int bcast;          /* create: the `broadcast` attribute (opset < 7) */
    int has_axis;       /* create: `axis` given (opset < 7) */
    int64_t axis;
    ew_kernel k;        /* reshape */
    ew_plan plan;       /* reshape: A and B (legacy: B's view) broadcast to the output */
    unsigned hazards;   /* reshape: see alias_hazards */
} bin_params;

static int bin_create(onr_create_ctx *c, bin_params *P, const bin_op *op)
{
    int st;
    if (op->attrs && (st = op->attrs(c, &P->prm))) return st;
    if (c->opset >= 7) return ONR_OK;
    P->legacy = 1;
    int64_t b = onr_attr_int(c->node, "broadcast", 0);
    if (b != 0 && b != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "broadcast must be 0 or 1, got %lld",
                          (long long)b);
    P->bcast = (int)b;
    P->has_axis = onr_node_attr(c->node, "axis") != NULL;
    P->axis = onr_attr_int(c->node, "axis", 0);
    return ONR_OK;
}

/* Before opset 7, B broadcast to A only when the `broadcast` attribute was
 * set, matching A's dims from `axis` (default: A's trailing dims). *bv gets
 * B's data under the numpy-equivalent shape: B's dims followed by ones. */
static int legacy_b_view(onr_kctx *ctx, const bin_params *P, onr_tensor *bv)
{
    const onr_tensor *a = ctx->in[0], *b = ctx->in[1];
    char s1[256], s2[256];
    *bv = *b;
    onr_fmt_dims(s1, sizeof s1, a->dims, a->rank);
    onr_fmt_dims(s2, sizeof s2, b->dims, b->rank);
    if (!P->bcast) {
        int same = a->rank == b->rank;
        for (int d = 0; d < a->rank && same; d++) same = a->dims[d] == b->dims[d];
        if (!same)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "shapes %s and %s differ and the broadcast attribute is not set",
                              s1, s2);
        return ONR_OK;
    }
    if (b->numel == 1) { /* a single value broadcasts anywhere */
        bv->rank = 0;
        return ONR_OK;
    }
    int64_t axis = P->has_axis ? P->axis : a->rank - b->rank;
    if (axis < 0) axis += a->rank;
    if (axis < 0 || axis + b->rank > a->rank)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "B shape %s does not fit A shape %s at axis %lld", s2, s1,
                          (long long)axis);
    for (int d = 0; d < b->rank; d++)
        if (b->dims[d] != a->dims[axis + d] && b->dims[d] != 1)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "B shape %s does not match A shape %s from axis %lld", s2, s1,
                              (long long)axis);
    bv->rank = a->rank - (int)axis;
    for (int d = b->rank; d < bv->rank; d++) bv->dims[d] = 1;
    return ONR_OK;
}

static int bin_reshape(onr_kctx *ctx, size_t *scratch, const bin_op *op)
{
    bin_params *P = ctx->params;
    int st;
    if ((st = count_inputs(ctx, 2, 2)) || (st = onr_check_input(ctx, 0, op->types)) ||
        (st = onr_check_input(ctx, 1, op->btypes ? op->btypes : op->types)))
        return st;
    if (!op->btypes && ctx->in[0]->dtype != ctx->in[1]->dtype) return type_mismatch(ctx, 1);
    if (op->check && (st = op->check(ctx, &P->prm))) return st;
    const onr_tensor *a = ctx->in[0];
    onr_dtype odt = op->out_bool ? ONR_BOOL : a->dtype;
    onr_tensor bv = *ctx->in[1];
    if (P->legacy) { /* the result always has A's shape */
        if ((st = legacy_b_view(ctx, P, &bv)) || (st = onr_set_out(ctx, 0, odt, a->rank, a->dims)))
            return st;
    } else if ((st = bcast_out(ctx, 2, odt))) {
        return st;
    }
    P->prm.ta = a->dtype;
    P->prm.tb = bv.dtype;
    P->prm.tc = odt;
    if ((st = pick_kernel(ctx, op, a->dtype, bv.dtype, odt, &P->k))) return st;
    const onr_tensor *ins[2] = {a, &bv};
    ew_plan_init(&P->plan, 2, ins, ctx->out[0]);
    P->hazards = alias_hazards(2, (const onr_tensor *const *)ctx->in, ctx->out[0], scratch);
    return ONR_OK;
}

static int bin_run(const onr_kctx *ctx, const bin_op *op)
{
    const bin_params *P = ctx->params;
    const void *data[2] = {ctx->in[0]->data, ctx->in[1]->data};
    alias_redirect(ctx, 2, P->hazards, data);
    ew_run(ctx, &P->plan, &P->k, &P->prm, data, ctx->out[0]->data, op->cost);
    return ONR_OK;
}

/* -- attribute readers and checks -- */

static int mod_attrs(onr_create_ctx *c, bin_prm *p)
{
    int64_t f = onr_attr_int(c->node, "fmod", 0);
    if (f != 0 && f != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "fmod must be 0 or 1, got %lld", (long long)f);
    p->fmod = (int)f;
    return ONR_OK;
}

static int mod_check(onr_kctx *ctx, const bin_prm *p)
{
    if (p->fmod == 0 && (ONR_T(ctx->in[0]->dtype) & ONR_TYPES_FLOAT))
        return onr_seterr(ctx->err, ONR_E_MODEL, "fmod must be 1 for %s inputs",
                          onr_dtype_name(ctx->in[0]->dtype));
    return ONR_OK;
}

static int shift_attrs(onr_create_ctx *c, bin_prm *p)
{
    const char *d = onr_attr_string(c->node, "direction", NULL);
    if (!d || (strcmp(d, "LEFT") != 0 && strcmp(d, "RIGHT") != 0))
        return onr_seterr(c->err, ONR_E_MODEL, "direction must be \"LEFT\" or \"RIGHT\", got %s%s%s",
                          d ? "\"" : "", d ? d : "none", d ? "\"" : "");
    p->left = strcmp(d, "LEFT") == 0;
    return ONR_OK;
}

/* ---- variadic Max, Min, Sum, Mean ----------------------------------------------- *
 *
 * The inputs fold pairwise into the output: out = in0 op in1, then
 * out = out op in[i]. One plan per fold, sized by the input count in create.
 */

#define VAR_MAX_IN (1 << 20)

typedef struct var_params {
    int nplans;       /* create: n_in - 1 */
    ew_plan *plans;   /* create: allocated; reshape: filled */
    ew_kernel k;      /* reshape */
    int hazard;       /* reshape: an input past the second has the output's bytes */
} var_params;

static int var_create(onr_create_ctx *c, void *params)
{
    var_params *P = params;
    if (c->n_in < 2 || c->n_in > VAR_MAX_IN) return ONR_OK; /* reshape reports the count */
    if (!(P->plans = calloc((size_t)c->n_in - 1, sizeof *P->plans)))
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for %d inputs", c->n_in);
    P->nplans = c->n_in - 1;
    return ONR_OK;
}

static void var_destroy(void *params)
{
    var_params *P = params;
    free(P->plans);
}

static int var_reshape(onr_kctx *ctx, size_t *scratch, const bin_op *op)
{
    var_params *P = ctx->params;
    int st;
    if ((st = count_inputs(ctx, 1, VAR_MAX_IN))) return st;
    for (int i = 0; i < ctx->n_in; i++) {
        if ((st = onr_check_input(ctx, i, op->types))) return st;
        if (ctx->in[i]->dtype != ctx->in[0]->dtype) return type_mismatch(ctx, i);
    }
    if ((st = bcast_out(ctx, ctx->n_in, ctx->in[0]->dtype))) return st;
    if (ctx->n_in == 1) return ONR_OK;
    if (P->nplans != ctx->n_in - 1)
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "%s was created for %d inputs, has %d",
                          op->name, P->nplans + 1, ctx->n_in);
    onr_tensor *out = ctx->out[0];
    onr_dtype dt = out->dtype;
    if ((st = pick_kernel(ctx, op, dt, dt, dt, &P->k))) return st;
    const onr_tensor *first[2] = {ctx->in[0], ctx->in[1]};
    ew_plan_init(&P->plans[0], 2, first, out);
    for (int i = 2; i < ctx->n_in; i++) {
        const onr_tensor *pair[2] = {out, ctx->in[i]};
        ew_plan_init(&P->plans[i - 1], 2, pair, out);
    }
    /* The first fold writes the whole output, so an input folded later must
     * not be the output's buffer: keep a copy in scratch when it could be. */
    P->hazard = 0;
    *scratch = 0;
    for (int i = 2; i < ctx->n_in && !P->hazard; i++)
        P->hazard = ctx->in[i]->numel == out->numel && out->numel > 0;
    if (P->hazard) *scratch = onr_tensor_nbytes(out);
    return ONR_OK;
}

static void scale(onr_tensor *t, double s)
{
    if (t->dtype == ONR_FLOAT) {
        float *p = t->data, f = (float)s;
        for (int64_t i = 0; i < t->numel; i++) p[i] /= f;
    } else if (t->dtype == ONR_DOUBLE) {
        double *p = t->data;
        for (int64_t i = 0; i < t->numel; i++) p[i] /= s;
    } else {
        for (int64_t i = 0; i < t->numel; i++) onr_set_f64(t, i, onr_get_f64(t, i) / s);
    }
}

static int var_run(const onr_kctx *ctx, const bin_op *op, int mean)
{
    const var_params *P = ctx->params;
    onr_tensor *out = ctx->out[0];
    static const bin_prm prm = {0};
    if (out->numel == 0) return ONR_OK;
    if (ctx->n_in == 1) { /* the output has input 0's shape */
        if (out->data != ctx->in[0]->data)
            memcpy(out->data, ctx->in[0]->data, onr_tensor_nbytes(out));
        return ONR_OK;
    }
    const void *saved = NULL; /* the output's buffer as an input, copied before the first fold */
    for (int i = 2; i < ctx->n_in && !saved; i++)
        if (ctx->in[i]->data == out->data) saved = out->data;
    if (saved) {
        if (!P->hazard || ctx->scratch_size < onr_tensor_nbytes(out))
            return onr_seterr(ctx->err, ONR_E_RUNTIME, "%s: input is the output's buffer",
                              op->name);
        memcpy(ctx->scratch, out->data, onr_tensor_nbytes(out));
    }
    const void *data[2] = {ctx->in[0]->data, ctx->in[1]->data};
    ew_run(ctx, &P->plans[0], &P->k, &prm, data, out->data, op->cost);
    for (int i = 2; i < ctx->n_in; i++) {
        data[0] = out->data;
        data[1] = saved && ctx->in[i]->data == saved ? ctx->scratch : ctx->in[i]->data;
        ew_run(ctx, &P->plans[i - 1], &P->k, &prm, data, out->data, op->cost);
    }
    if (mean) scale(out, ctx->n_in);
    return ONR_OK;
}

/* ---- registry entries -------------------------------------------------------- */

/* A descriptor, its create, reshape and run wrappers, and its registry entry. */
#define BIN_OP(Sym, types_, btypes_, out_bool_, cost_, attrs_, check_, ...)                    \
    static const bin_op op_##Sym = {#Sym, types_, btypes_, out_bool_, cost_,                    \
                                    attrs_, check_, {__VA_ARGS__}};                             \
    static int Sym##_create(onr_create_ctx *c, void *p) { return bin_create(c, p, &op_##Sym); } \
    static int Sym##_reshape(onr_kctx *c, size_t *s) { return bin_reshape(c, s, &op_##Sym); }   \
    static int Sym##_run(const onr_kctx *c) { return bin_run(c, &op_##Sym); }                         \
    const onr_op_impl onr_impl_##Sym = {.create = Sym##_create, .reshape = Sym##_reshape,      \
                                        .run = Sym##_run, .params_size = sizeof(bin_params),    \
                                        .types = types_, .flags = ONR_OP_INPLACE};

#define VAR_OP(Sym, types_, mean_, ...)                                                       \
    static const bin_op op_##Sym = {#Sym, types_, 0, 0, 1, NULL, NULL, {__VA_ARGS__}};         \
    static int Sym##_reshape(onr_kctx *c, size_t *s) { return var_reshape(c, s, &op_##Sym); }  \
    static int Sym##_run(const onr_kctx *c) { return var_run(c, &op_##Sym, mean_); }                 \
    const onr_op_impl onr_impl_##Sym = {.create = var_create, .reshape = Sym##_reshape,       \
                                        .run = Sym##_run, .destroy = var_destroy,              \
                                        .params_size = sizeof(var_params), .types = types_,    \
                                        .flags = ONR_OP_INPLACE};

#define T_BOOL ONR_T(ONR_BOOL)
#define T_POWBASE (ONR_TYPES_FLOAT | ONR_T(ONR_INT32) | ONR_T(ONR_INT64))

BIN_OP(Add, ONR_TYPES_NUM, 0, 0, 1, NULL, NULL, TBL_NUM(add))
BIN_OP(Sub, ONR_TYPES_NUM, 0, 0, 1, NULL, NULL, TBL_NUM(sub))
BIN_OP(Mul, ONR_TYPES_NUM, 0, 0, 1, NULL, NULL, TBL_NUM(mul))
BIN_OP(Div, ONR_TYPES_NUM, 0, 0, 2, NULL, NULL, TBL_NUM(div))
BIN_OP(Mod, ONR_TYPES_NUM, 0, 0, 8, mod_attrs, mod_check, TBL_NUM(mod))
BIN_OP(Pow, T_POWBASE, ONR_TYPES_NUM, 0, 16, NULL, NULL, [ONR_FLOAT] = pow_f32,
       [ONR_DOUBLE] = pow_f64)
BIN_OP(BitShift, ONR_TYPES_UINT, 0, 0, 1, shift_attrs, NULL, TBL_UINT(shift))
BIN_OP(Equal, ONR_TYPES_NUM | T_BOOL | ONR_T(ONR_STRING), 0, 1, 1, NULL, NULL, TBL_NUM(eq),
       [ONR_BOOL] = eq_b, [ONR_STRING] = eq_str)
BIN_OP(Less, ONR_TYPES_NUM, 0, 1, 1, NULL, NULL, TBL_NUM(lt))
BIN_OP(LessOrEqual, ONR_TYPES_NUM, 0, 1, 1, NULL, NULL, TBL_NUM(le))
BIN_OP(Greater, ONR_TYPES_NUM, 0, 1, 1, NULL, NULL, TBL_NUM(gt))
BIN_OP(GreaterOrEqual, ONR_TYPES_NUM, 0, 1, 1, NULL, NULL, TBL_NUM(ge))
BIN_OP(And, T_BOOL, 0, 1, 1, NULL, NULL, [ONR_BOOL] = and_b)
BIN_OP(Or, T_BOOL, 0, 1, 1, NULL, NULL, [ONR_BOOL] = or_b)
BIN_OP(Xor, T_BOOL, 0, 1, 1, NULL, NULL, [ONR_BOOL] = xor_b)
BIN_OP(BitwiseAnd, ONR_TYPES_INT, 0, 0, 1, NULL, NULL, TBL_SINT(band), TBL_UINT(band))
BIN_OP(BitwiseOr, ONR_TYPES_INT, 0, 0, 1, NULL, NULL, TBL_SINT(bor), TBL_UINT(bor))
BIN_OP(BitwiseXor, ONR_TYPES_INT, 0, 0, 1, NULL, NULL, TBL_SINT(bxor), TBL_UINT(bxor))

VAR_OP(Max, ONR_TYPES_NUM, 0, TBL_NUM(max))
VAR_OP(Min, ONR_TYPES_NUM, 0, TBL_NUM(min))
VAR_OP(Sum, ONR_TYPES_FLOAT, 0, TBL_NUM(add))
VAR_OP(Mean, ONR_TYPES_FLOAT, 1, TBL_NUM(add))

/* ---- PRelu ------------------------------------------------------------------------ *
 *
 * The slope broadcasts to X's shape in one direction only. Before opset 7 a
 * 1-D slope of X's channel count applied along axis 1.
 */
static const bin_op op_PRelu = {"PRelu", ONR_TYPES_NUM, 0, 0, 1, NULL, NULL, {TBL_NUM(prelu)}};

typedef struct prelu_params {
    ew_kernel k;      /* reshape */
    ew_plan plan;     /* reshape: X and the slope (its layout by opset) to X's shape */
    unsigned hazards; /* reshape: see alias_hazards */
} prelu_params;

static void prelu_slope_view(onr_kctx *ctx, onr_tensor *sv)
{
    const onr_tensor *x = ctx->in[0];
    *sv = *ctx->in[1];
    if (ctx->opset < 7 && x->rank >= 2 && sv->rank == 1 && sv->numel == x->dims[1] &&
        sv->numel != 1) {
        sv->rank = x->rank - 1;
        for (int d = 1; d < sv->rank; d++) sv->dims[d] = 1;
    }
}

static int prelu_reshape(onr_kctx *ctx, size_t *scratch)
{
    prelu_params *P = ctx->params;
    int st;
    if ((st = count_inputs(ctx, 2, 2)) || (st = onr_check_input(ctx, 0, op_PRelu.types)) ||
        (st = onr_check_input(ctx, 1, op_PRelu.types)))
        return st;
    if (ctx->in[0]->dtype != ctx->in[1]->dtype) return type_mismatch(ctx, 1);
    const onr_tensor *x = ctx->in[0];
    onr_tensor sv;
    prelu_slope_view(ctx, &sv);
    const onr_tensor *ts[2] = {x, &sv};
    int64_t dims[ONR_MAX_RANK];
    int rank = 0, same;
    st = onr_broadcast_shape(ctx, 2, ts, dims, &rank);
    same = !st && rank == x->rank;
    for (int d = 0; d < x->rank && same; d++) same = dims[d] == x->dims[d];
    if (!same) {
        char s1[256], s2[256];
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "slope shape %s does not broadcast to X shape %s",
                          onr_fmt_dims(s1, sizeof s1, ctx->in[1]->dims, ctx->in[1]->rank),
                          onr_fmt_dims(s2, sizeof s2, x->dims, x->rank));
    }
    if ((st = onr_set_out_like(ctx, 0, 0)) ||
        (st = pick_kernel(ctx, &op_PRelu, x->dtype, x->dtype, x->dtype, &P->k)))
        return st;
    ew_plan_init(&P->plan, 2, ts, ctx->out[0]);
    P->hazards = alias_hazards(2, (const onr_tensor *const *)ctx->in, ctx->out[0], scratch);
    return ONR_OK;
}

static int prelu_run(const onr_kctx *ctx)
{
    const prelu_params *P = ctx->params;
    static const bin_prm prm = {0};
    const void *data[2] = {ctx->in[0]->data, ctx->in[1]->data};
    alias_redirect(ctx, 2, P->hazards, data);
    ew_run(ctx, &P->plan, &P->k, &prm, data, ctx->out[0]->data, op_PRelu.cost);
    return ONR_OK;
}

const onr_op_impl onr_impl_PRelu = {.reshape = prelu_reshape, .run = prelu_run,
                                    .params_size = sizeof(prelu_params), .types = ONR_TYPES_NUM,
                                    .flags = ONR_OP_INPLACE};

/* ---- Where(cond, X, Y): all three broadcast together ------------------------------ */

typedef struct where_params {
    ew_kern k;        /* reshape: by element size */
    ew_plan plan;     /* reshape */
    unsigned hazards; /* reshape: see alias_hazards */
} where_params;

static int where_reshape(onr_kctx *ctx, size_t *scratch)
{
    static const ew_kern by_size[9] = {[1] = where_1, [2] = where_2, [4] = where_4, [8] = where_8};
    where_params *P = ctx->params;
    int st;
    if ((st = count_inputs(ctx, 3, 3)) || (st = onr_check_input(ctx, 0, T_BOOL)) ||
        (st = onr_check_input(ctx, 1, ONR_TYPES_NUM | T_BOOL)) ||
        (st = onr_check_input(ctx, 2, ONR_TYPES_NUM | T_BOOL)))
        return st;
    if (ctx->in[1]->dtype != ctx->in[2]->dtype)
        return onr_seterr(ctx->err, ONR_E_MODEL, "X has type %s but Y has %s",
                          onr_dtype_name(ctx->in[1]->dtype), onr_dtype_name(ctx->in[2]->dtype));
    if ((st = bcast_out(ctx, 3, ctx->in[1]->dtype))) return st;
    onr_tensor *out = ctx->out[0];
    size_t es = onr_dtype_size(out->dtype);
    if (es > 8 || !by_size[es])
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "Where is not implemented for %s",
                          onr_dtype_name(out->dtype));
    P->k = by_size[es];
    ew_plan_init(&P->plan, 3, (const onr_tensor *const *)ctx->in, out);
    P->hazards = alias_hazards(3, (const onr_tensor *const *)ctx->in, out, scratch);
    return ONR_OK;
}

static int where_run(const onr_kctx *ctx)
{
    const where_params *P = ctx->params;
    const void *data[3] = {ctx->in[0]->data, ctx->in[1]->data, ctx->in[2]->data};
    alias_redirect(ctx, 3, P->hazards, data);
    ew_exec(&P->plan, data, ctx->out[0]->data, P->k, NULL, 1, ctx->nthreads);
    return ONR_OK;
}

const onr_op_impl onr_impl_Where = {.reshape = where_reshape, .run = where_run,
                                    .params_size = sizeof(where_params),
                                    .types = ONR_TYPES_NUM | T_BOOL, .flags = ONR_OP_INPLACE};
