/*
 * reduce.c - the Reduce* operators (Sum, Mean, Max, Min, Prod, L1, L2,
 * LogSum, LogSumExp, SumSquare) and ArgMax / ArgMin.
 *
 * Every reduction is described by a small table entry (rop): how each
 * element is transformed (|x|, x*x, exp(x - shift)), how elements fold
 * together (sum, product, max, min) and how the folded value is finished
 * (mean, sqrt, log). Two accumulation domains share one set of drivers:
 *   - double, for the float types and for the integer forms of L2 / LogSum /
 *     LogSumExp (whose results are not integers anyway);
 *   - 64-bit integer bits, for the other integer reductions, so int64 sums
 *     are exact and overflow wraps like the output type would.
 * Elements are converted chunk by chunk (RB at a time) into a small stack
 * buffer of the domain's type, so only the loaders know about dtypes.
 *
 * Geometry: reduced axes are collapsed with their neighbours, so most
 * reductions become [outer, R, inner]: inner == 1 folds contiguous rows,
 * inner > 1 folds RB-wide column blocks row after row (cache friendly, and
 * vectorizable). Anything else (several separate reduced groups) walks each
 * output's reduced elements with an odometer. float32 has direct loops for
 * the common folds in both layouts. Each output is computed by one thread in
 * a fixed order, so results do not depend on the thread count.
 *
 * create reads keepdims, noop_with_empty_axes, select_last_index and the
 * axes attribute (the form before ReduceSum-13 / the others' 18); from
 * those opsets the axes are input 1, declared a shape input, and reshape
 * reads them. reshape builds the whole job (domain, loader, stages,
 * collapsed geometry) into the params; run copies it and only folds.
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"

#define RB 256 /* elements converted and folded per chunk */

/* ---- the reductions ----------------------------------------------------- */

typedef enum { RK_SUM, RK_PROD, RK_MAX, RK_MIN, RK_MAXFIN } rkind; /* MAXFIN: max of finite values */
typedef enum { RT_ID, RT_ABS, RT_SQ, RT_EXP } rtrans;               /* EXP: exp(x - shift) */
typedef enum { RF_ID, RF_MEAN, RF_SQRT, RF_LOG, RF_LSE } rfin;

typedef struct rop {
    rkind kind;
    rtrans trans;
    rfin fin;
    int axes_input_since; /* first opset where axes is an input, not an attribute */
    int int_exact;        /* integer inputs fold in the integer domain */
    int allow_bool;
} rop;

/* LogSumExp is two passes: the max of the finite values (the shift), then
 * the sum of exp(x - shift); see stage_of(). */
static const rop rop_sum = {RK_SUM, RT_ID, RF_ID, 13, 1, 0};
static const rop rop_mean = {RK_SUM, RT_ID, RF_MEAN, 18, 1, 0};
static const rop rop_max = {RK_MAX, RT_ID, RF_ID, 18, 1, 1};
static const rop rop_min = {RK_MIN, RT_ID, RF_ID, 18, 1, 1};
static const rop rop_prod = {RK_PROD, RT_ID, RF_ID, 18, 1, 0};
static const rop rop_l1 = {RK_SUM, RT_ABS, RF_ID, 18, 1, 0};
static const rop rop_l2 = {RK_SUM, RT_SQ, RF_SQRT, 18, 0, 0};
static const rop rop_logsum = {RK_SUM, RT_ID, RF_LOG, 18, 0, 0};
static const rop rop_lse = {RK_SUM, RT_EXP, RF_LSE, 18, 0, 0};
static const rop rop_sumsq = {RK_SUM, RT_SQ, RF_ID, 18, 1, 0};

/* ---- element values and loaders ----------------------------------------- */

/* One element in either domain. */
typedef union rval {
    double d;
    uint64_t q; /* integer domain: two's complement bits, sign- or zero-extended */
} rval;

typedef void (*ld_fn)(const void *base, int64_t off, int64_t stride, int64_t n, rval *dst);

#define LOADER(NAME, T, FIELD, CONV)                                                          \
    static void ld_##NAME(const void *base, int64_t off, int64_t s, int64_t n, rval *d)      \
    {                                                                                         \
        const T *p = (const T *)base + off;                                                   \
        for (int64_t i = 0; i < n; i++) d[i].FIELD = CONV(p[i * s]);                          \
    }
#define AS_D(v) ((double)(v))
#define AS_Q_SIGNED(v) ((uint64_t)(int64_t)(v))
#define AS_Q_UNSIGNED(v) ((uint64_t)(v))
#define AS_Q_BOOL(v) ((uint64_t)((v) != 0))

LOADER(d_f32, float, d, AS_D)
LOADER(d_f64, double, d, AS_D)
LOADER(d_f16, uint16_t, d, onr_half_to_float)
LOADER(d_bf16, uint16_t, d, onr_bf16_to_float)
LOADER(d_i8, int8_t, d, AS_D)
LOADER(d_i16, int16_t, d, AS_D)
LOADER(d_i32, int32_t, d, AS_D)
LOADER(d_i64, int64_t, d, AS_D)
LOADER(d_u8, uint8_t, d, AS_D)
LOADER(d_u16, uint16_t, d, AS_D)
LOADER(d_u32, uint32_t, d, AS_D)
LOADER(d_u64, uint64_t, d, AS_D)
LOADER(q_i8, int8_t, q, AS_Q_SIGNED)
LOADER(q_i16, int16_t, q, AS_Q_SIGNED)
LOADER(q_i32, int32_t, q, AS_Q_SIGNED)
LOADER(q_i64, int64_t, q, AS_Q_SIGNED)
LOADER(q_u8, uint8_t, q, AS_Q_UNSIGNED)
LOADER(q_u16, uint16_t, q, AS_Q_UNSIGNED)
LOADER(q_u32, uint32_t, q, AS_Q_UNSIGNED)
LOADER(q_u64, uint64_t, q, AS_Q_UNSIGNED)
LOADER(q_bool, uint8_t, q, AS_Q_BOOL)

/* Per dtype: loaders into each domain, signedness and the value range of the
 * integer types (the identities of max/min and the saturation bounds when a
 * double result is stored into an integer type). */
typedef struct rtype {
    ld_fn ldd, ldq;
    uint8_t is_float, is_unsigned;
    int64_t lo;  /* as signed value */
    uint64_t hi; /* as unsigned value */
} rtype;

static const rtype rtypes[ONR_DTYPE_COUNT] = {
    [ONR_FLOAT] = {ld_d_f32, NULL, 1, 0, 0, 0},
    [ONR_DOUBLE] = {ld_d_f64, NULL, 1, 0, 0, 0},
    [ONR_FLOAT16] = {ld_d_f16, NULL, 1, 0, 0, 0},
    [ONR_BFLOAT16] = {ld_d_bf16, NULL, 1, 0, 0, 0},
    [ONR_INT8] = {ld_d_i8, ld_q_i8, 0, 0, INT8_MIN, INT8_MAX},
    [ONR_INT16] = {ld_d_i16, ld_q_i16, 0, 0, INT16_MIN, INT16_MAX},
    [ONR_INT32] = {ld_d_i32, ld_q_i32, 0, 0, INT32_MIN, INT32_MAX},
    [ONR_INT64] = {ld_d_i64, ld_q_i64, 0, 0, INT64_MIN, INT64_MAX},
    [ONR_UINT8] = {ld_d_u8, ld_q_u8, 0, 1, 0, UINT8_MAX},
    [ONR_UINT16] = {ld_d_u16, ld_q_u16, 0, 1, 0, UINT16_MAX},
    [ONR_UINT32] = {ld_d_u32, ld_q_u32, 0, 1, 0, UINT32_MAX},
    [ONR_UINT64] = {ld_d_u64, ld_q_u64, 0, 1, 0, UINT64_MAX},
    [ONR_BOOL] = {ld_d_u8, ld_q_bool, 0, 1, 0, 1},
};

/* Store the low bytes of an integer-domain value (wraps like a C cast). */
static void put_q(void *data, onr_dtype dt, int64_t i, uint64_t v)
{
    switch (onr_dtype_size(dt)) {
    case 1: ((uint8_t *)data)[i] = dt == ONR_BOOL ? (v != 0) : (uint8_t)v; break;
    case 2: ((uint16_t *)data)[i] = (uint16_t)v; break;
    case 4: ((uint32_t *)data)[i] = (uint32_t)v; break;
    default: ((uint64_t *)data)[i] = v; break;
    }
}

/* Store a double into any numeric type: float types round, integer types
 * truncate toward zero and saturate (NaN gives 0), never undefined casts. */
static void put_d(onr_tensor *y, int64_t i, double v)
{
    const rtype *rt = &rtypes[y->dtype];
    if (rt->is_float) {
        onr_set_f64(y, i, v);
        return;
    }
    uint64_t q;
    if (v != v) {
        q = 0;
    } else if (rt->is_unsigned) {
        q = v <= 0 ? 0 : v >= (double)rt->hi ? rt->hi : (uint64_t)v;
    } else {
        q = v <= (double)rt->lo   ? (uint64_t)rt->lo
            : v >= (double)rt->hi ? rt->hi
                                  : (uint64_t)(int64_t)v;
    }
    put_q(y->data, y->dtype, i, q);
}

/* ---- one reduction job -------------------------------------------------- */

typedef struct rstage {
    rkind kind;
    rtrans trans;
} rstage;

typedef struct rjob {
    const rop *op;
    const onr_tensor *x;
    onr_tensor *y;
    ld_fn ld;
    int qdom;        /* integer domain */
    int is_unsigned; /* integer domain: compare and divide unsigned */
    int nstages;     /* 2 for LogSumExp */
    rstage st[2];
    rval init[2];
    int64_t count; /* elements folded into each output (for the mean) */
    /* geometry: kept and reduced dims (collapsed) with their input strides */
    int nk, nr;
    int64_t kdim[ONR_MAX_RANK], kstr[ONR_MAX_RANK];
    int64_t rdim[ONR_MAX_RANK], rstr[ONR_MAX_RANK];
    int64_t n_out;
    /* the [outer, R, inner] form when there is one reduced group */
    int simple;
    int64_t outer, R, inner;
} rjob;

/* Identity of a fold, so empty reductions give 0, 1, -inf / type min, ... */
static rval fold_init(const rjob *j, rkind k)
{
    rval v;
    const rtype *rt = &rtypes[j->x->dtype];
    if (!j->qdom) {
        v.d = k == RK_PROD ? 1.0 : k == RK_MAX || k == RK_MAXFIN ? -INFINITY
              : k == RK_MIN                                      ? INFINITY
                                                                 : 0.0;
    } else {
        v.q = k == RK_PROD ? 1
              : k == RK_MAX ? (rt->is_unsigned ? 0 : (uint64_t)rt->lo)
              : k == RK_MIN ? rt->hi
                            : 0;
    }
    return v;
}

/* Transform a chunk in place; shift has one value (sstep 0) or one per element. */
static void trans_d(rtrans t, rval *b, int64_t n, const rval *shift, int sstep)
{
    switch (t) {
    case RT_ID: break;
    case RT_ABS:
        for (int64_t i = 0; i < n; i++) b[i].d = fabs(b[i].d);
        break;
    case RT_SQ:
        for (int64_t i = 0; i < n; i++) b[i].d *= b[i].d;
        break;
    case RT_EXP:
        for (int64_t i = 0; i < n; i++) b[i].d = exp(b[i].d - shift[i * sstep].d);
        break;
    }
}

static void trans_q(rtrans t, int is_unsigned, rval *b, int64_t n)
{
    if (t == RT_ABS && !is_unsigned)
        for (int64_t i = 0; i < n; i++) b[i].q = (int64_t)b[i].q < 0 ? 0 - b[i].q : b[i].q;
    else if (t == RT_SQ)
        for (int64_t i = 0; i < n; i++) b[i].q *= b[i].q;
}

/* max/min that propagate NaN like numpy's maximum.reduce */
static inline double dmax(double a, double x) { return (x > a || x != x) ? x : a; }
static inline double dmin(double a, double x) { return (x < a || x != x) ? x : a; }
static inline double dmaxfin(double a, double x) { return (isfinite(x) && x > a) ? x : a; }

/* Fold b[0..n) into acc[0] (astep 0: a row) or into acc[i] (astep 1: columns). */
static void fold_d(rkind k, rval *acc, int astep, const rval *b, int64_t n)
{
    switch (k) {
    case RK_SUM:
        for (int64_t i = 0; i < n; i++) acc[i * astep].d += b[i].d;
        break;
    case RK_PROD:
        for (int64_t i = 0; i < n; i++) acc[i * astep].d *= b[i].d;
        break;
    case RK_MAX:
        for (int64_t i = 0; i < n; i++) acc[i * astep].d = dmax(acc[i * astep].d, b[i].d);
        break;
    case RK_MIN:
        for (int64_t i = 0; i < n; i++) acc[i * astep].d = dmin(acc[i * astep].d, b[i].d);
        break;
    case RK_MAXFIN:
        for (int64_t i = 0; i < n; i++) acc[i * astep].d = dmaxfin(acc[i * astep].d, b[i].d);
        break;
    }
}

static void fold_q(rkind k, int is_unsigned, rval *acc, int astep, const rval *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint64_t a = acc[i * astep].q, x = b[i].q;
        int gt = is_unsigned ? x > a : (int64_t)x > (int64_t)a;
        int lt = is_unsigned ? x < a : (int64_t)x < (int64_t)a;
        switch (k) {
        case RK_SUM: a += x; break;
        case RK_PROD: a *= x; break;
        case RK_MAX: if (gt) a = x; break;
        case RK_MIN: if (lt) a = x; break;
        default: break;
        }
        acc[i * astep].q = a;
    }
}

/* Load, transform and fold n elements starting at off with the given stride. */
static void fold_chunk(const rjob *j, int s, rval *acc, int astep, const rval *shift, int sstep,
                       int64_t off, int64_t stride, int64_t n)
{
    rval buf[RB];
    j->ld(j->x->data, off, stride, n, buf);
    if (j->qdom) {
        trans_q(j->st[s].trans, j->is_unsigned, buf, n);
        fold_q(j->st[s].kind, j->is_unsigned, acc, astep, buf, n);
    } else {
        trans_d(j->st[s].trans, buf, n, shift, sstep);
        fold_d(j->st[s].kind, acc, astep, buf, n);
    }
}

/* The shift of LogSumExp: max of the finite values, 0 when there are none
 * (then exp(x - 0) gives 0 for -inf and inf for +inf, as it should). */
static rval lse_shift(rval m)
{
    if (!isfinite(m.d)) m.d = 0;
    return m;
}

/* Finish one output and store it at index o. */
static void finish(const rjob *j, int64_t o, rval acc, rval shift)
{
    if (j->qdom) {
        uint64_t v = acc.q;
        if (j->op->fin == RF_MEAN && j->count > 0)
            v = j->is_unsigned ? v / (uint64_t)j->count
                               : (uint64_t)((int64_t)v / j->count);
        else if (j->op->fin == RF_MEAN)
            v = 0;
        put_q(j->y->data, j->y->dtype, o, v);
        return;
    }
    double v = acc.d;
    switch (j->op->fin) {
    case RF_ID: break;
    case RF_MEAN: v = v / (double)j->count; break;
    case RF_SQRT: v = sqrt(v); break;
    case RF_LOG: v = log(v); break;
    case RF_LSE: v = log(v) + shift.d; break;
    }
    put_d(j->y, o, v);
}

/* ---- float32 direct loops ------------------------------------------------ */

/* Sum of f(x) over a contiguous row in double, in 8 independent lanes so the
 * compiler can vectorize without reassociating (same result every time). */
#define ROW_SUM_F32(NAME, F)                                                 \
    static double NAME(const float *x, int64_t n)                            \
    {                                                                        \
        double a[8] = {0};                                                   \
        int64_t i = 0;                                                       \
        for (; i + 8 <= n; i += 8)                                           \
            for (int k = 0; k < 8; k++) {                                    \
                double v = x[i + k];                                         \
                a[k] += F;                                                   \
            }                                                                \
        double t = 0;                                                        \
        for (; i < n; i++) {                                                 \
            double v = x[i];                                                 \
            t += F;                                                          \
        }                                                                    \
        return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) + t; \
    }
ROW_SUM_F32(row_sum_f32, v)
ROW_SUM_F32(row_sumsq_f32, v * v)
ROW_SUM_F32(row_sumabs_f32, fabs(v))

/* Max / min of a contiguous row in 8 lanes; NaN is tracked in separate
 * integer lanes (the compare-select alone would drop it) so both loops
 * vectorize. */
#define ROW_EXT_F32(NAME, OP, INIT)                                               \
    static float NAME(const float *x, int64_t n)                                  \
    {                                                                             \
        float m[8];                                                               \
        int32_t nan[8] = {0};                                                     \
        int64_t i = 0;                                                            \
        for (int k = 0; k < 8; k++) m[k] = INIT;                                  \
        for (; i + 8 <= n; i += 8)                                                \
            for (int k = 0; k < 8; k++) {                                         \
                m[k] = x[i + k] OP m[k] ? x[i + k] : m[k];                        \
                nan[k] |= x[i + k] != x[i + k];                                   \
            }                                                                     \
        for (; i < n; i++) {                                                      \
            m[0] = x[i] OP m[0] ? x[i] : m[0];                                    \
            nan[0] |= x[i] != x[i];                                               \
        }                                                                         \
        for (int k = 1; k < 8; k++) {                                             \
            m[0] = m[k] OP m[0] ? m[k] : m[0];                                    \
            nan[0] |= nan[k];                                                     \
        }                                                                         \
        return nan[0] ? NAN : m[0];                                               \
    }
ROW_EXT_F32(row_max_f32, >, -INFINITY)
ROW_EXT_F32(row_min_f32, <, INFINITY)

/* Does the float32 fast path cover this job's fold? */
static int f32_direct(const rjob *j)
{
    return j->x->dtype == ONR_FLOAT && j->nstages == 1 &&
           (j->st[0].kind == RK_MAX || j->st[0].kind == RK_MIN ||
            (j->st[0].kind == RK_SUM && j->st[0].trans != RT_EXP));
}

/* One contiguous float32 row folded directly into acc. */
static rval f32_row(const rjob *j, const float *x, int64_t n, rval acc)
{
    switch (j->st[0].kind) {
    case RK_MAX: acc.d = dmax(acc.d, row_max_f32(x, n)); break;
    case RK_MIN: acc.d = dmin(acc.d, row_min_f32(x, n)); break;
    default:
        acc.d += j->st[0].trans == RT_SQ    ? row_sumsq_f32(x, n)
                 : j->st[0].trans == RT_ABS ? row_sumabs_f32(x, n)
                                            : row_sum_f32(x, n);
        break;
    }
    return acc;
}

/* Fold R rows of nb float32 columns (row stride ld) into acc[0..nb). */
static void f32_cols(const rjob *j, const float *x, int64_t R, int64_t ld, int64_t nb, rval *acc)
{
    double a[RB];
    float m[RB];
    rkind k = j->st[0].kind;
    rtrans t = j->st[0].trans;
    if (k == RK_MAX || k == RK_MIN) {
        int32_t nan[RB];
        for (int64_t c = 0; c < nb; c++) {
            m[c] = (float)acc[c].d;
            nan[c] = 0;
        }
        for (int64_t r = 0; r < R; r++) {
            const float *p = x + r * ld;
            if (k == RK_MAX)
                for (int64_t c = 0; c < nb; c++) m[c] = p[c] > m[c] ? p[c] : m[c];
            else
                for (int64_t c = 0; c < nb; c++) m[c] = p[c] < m[c] ? p[c] : m[c];
            for (int64_t c = 0; c < nb; c++) nan[c] |= p[c] != p[c];
        }
        for (int64_t c = 0; c < nb; c++) acc[c].d = nan[c] ? NAN : m[c];
        return;
    }
    for (int64_t c = 0; c < nb; c++) a[c] = acc[c].d;
    for (int64_t r = 0; r < R; r++) {
        const float *p = x + r * ld;
        if (t == RT_SQ)
            for (int64_t c = 0; c < nb; c++) a[c] += (double)p[c] * p[c];
        else if (t == RT_ABS)
            for (int64_t c = 0; c < nb; c++) a[c] += fabs((double)p[c]);
        else
            for (int64_t c = 0; c < nb; c++) a[c] += p[c];
    }
    for (int64_t c = 0; c < nb; c++) acc[c].d = a[c];
}

/* ---- drivers ------------------------------------------------------------- */

/* Output o in the general layout: walk every reduced line (the innermost
 * reduced dim) with an odometer over the other reduced dims. */
static void reduce_one(const rjob *j, int64_t o)
{
    int64_t base = 0, rem = o;
    for (int d = j->nk - 1; d >= 0; d--) {
        base += (rem % j->kdim[d]) * j->kstr[d];
        rem /= j->kdim[d];
    }
    int last = j->nr - 1;
    int64_t len = j->nr ? j->rdim[last] : 1, lstride = j->nr ? j->rstr[last] : 1;
    int64_t nlines = 1;
    for (int d = 0; d < last; d++) nlines *= j->rdim[d];
    int fast = f32_direct(j) && lstride == 1;
    rval acc = j->init[0], shift = {0};
    for (int s = 0; s < j->nstages; s++) {
        if (s == 1) {
            shift = lse_shift(acc);
            acc = j->init[1];
        }
        int64_t idx[ONR_MAX_RANK] = {0};
        for (int64_t l = 0; l < nlines; l++) {
            int64_t off = base;
            for (int d = 0; d < last; d++) off += idx[d] * j->rstr[d];
            if (fast) {
                acc = f32_row(j, (const float *)j->x->data + off, len, acc);
            } else {
                for (int64_t i0 = 0; i0 < len; i0 += RB) {
                    int64_t n = len - i0 < RB ? len - i0 : RB;
                    fold_chunk(j, s, &acc, 0, &shift, 0, off + i0 * lstride, lstride, n);
                }
            }
            for (int d = last - 1; d >= 0 && ++idx[d] == j->rdim[d]; d--) idx[d] = 0;
        }
    }
    finish(j, o, acc, shift);
}

/* Columns [c0, c0+nb) of outer slice o in the [outer, R, inner] layout. */
static void reduce_cols(const rjob *j, int64_t o, int64_t c0, int64_t nb)
{
    rval acc[RB], shift[RB];
    int64_t off0 = o * j->R * j->inner + c0;
    for (int64_t c = 0; c < nb; c++) acc[c] = j->init[0];
    for (int s = 0; s < j->nstages; s++) {
        if (s == 1)
            for (int64_t c = 0; c < nb; c++) {
                shift[c] = lse_shift(acc[c]);
                acc[c] = j->init[1];
            }
        if (f32_direct(j)) {
            f32_cols(j, (const float *)j->x->data + off0, j->R, j->inner, nb, acc);
            continue;
        }
        for (int64_t r = 0; r < j->R; r++)
            fold_chunk(j, s, acc, 1, shift, 1, off0 + r * j->inner, 1, nb);
    }
    for (int64_t c = 0; c < nb; c++) finish(j, o * j->inner + c0 + c, acc[c], shift[c]);
}

static void reduce_run(const rjob *j, int nthreads)
{
    int64_t work = j->n_out * (j->count > 0 ? j->count : 1);
    if (j->simple && j->inner > 1) {
        int64_t nblk = (j->inner + RB - 1) / RB, tasks = j->outer * nblk;
#pragma omp parallel for num_threads(onr_team(nthreads)) if (work > ONR_PAR_MIN)
        for (int64_t t = 0; t < tasks; t++) {
            int64_t o = t / nblk, c0 = (t % nblk) * RB;
            reduce_cols(j, o, c0, j->inner - c0 < RB ? j->inner - c0 : RB);
        }
        return;
    }
#pragma omp parallel for num_threads(onr_team(nthreads)) if (work > ONR_PAR_MIN)
    for (int64_t o = 0; o < j->n_out; o++) reduce_one(j, o);
}

/* ---- params, axes and shapes ------------------------------------------- */

/* create: the attributes; reshape: which axes, the output shape and the
 * whole job but its tensors (run copies it and sets x and y). */
typedef struct red_params {
    const rop *op;
    int keepdims, noop_empty;
    int from_input; /* axes is input 1 (a shape input), not the attribute */
    int naxes_attr;
    int64_t axes_attr[ONR_MAX_RANK];
    /* reshape */
    int noop;  /* empty axes with noop_with_empty_axes: y = x */
    int empty; /* x has no elements: every output is the fold of nothing */
    rjob job;
} red_params;

static int reduce_create(onr_create_ctx *c, red_params *p, const rop *op)
{
    p->op = op;
    p->from_input = c->opset >= op->axes_input_since;
    p->keepdims = onr_attr_int(c->node, "keepdims", 1) != 0;
    /* noop_with_empty_axes came with the axes input */
    p->noop_empty = p->from_input && onr_attr_int(c->node, "noop_with_empty_axes", 0) != 0;
    if (p->from_input) {
        if (onr_node_attr(c->node, "axes"))
            return onr_seterr(c->err, ONR_E_MODEL,
                              "axes is an input from opset %d on, not an attribute",
                              op->axes_input_since);
        return ONR_OK;
    }
    size_t nattr = 0;
    const int64_t *attr = onr_attr_ints(c->node, "axes", &nattr);
    if (nattr > ONR_MAX_RANK)
        return onr_seterr(c->err, ONR_E_MODEL, "axes has %zu values, at most %d allowed", nattr,
                          ONR_MAX_RANK);
    p->naxes_attr = (int)nattr;
    if (nattr) memcpy(p->axes_attr, attr, sizeof(int64_t) * nattr);
    return ONR_OK;
}

/* Which axes to reduce: mask[d] set for reduced dims; *noop when the op
 * leaves the input unchanged (empty axes with noop_with_empty_axes). Reads
 * the values of the axes input (ONR_SHAPE_DEFER while they are unknown). */
static int reduce_axes(onr_kctx *ctx, const red_params *p, uint8_t *mask, int *noop)
{
    const onr_tensor *x = ctx->in[0];
    int rank = x->rank;
    int64_t axes[ONR_MAX_RANK];
    int naxes = 0;
    *noop = 0;
    if (p->from_input) {
        if (ctx->n_in > 1 && ctx->in[1]) {
            int st = onr_read_ints(ctx, 1, axes, ONR_MAX_RANK, &naxes);
            if (st) return st;
        }
    } else {
        if (ctx->n_in > 1 && ctx->in[1])
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "axes is an attribute before opset %d, the node has %d inputs",
                              p->op->axes_input_since, ctx->n_in);
        naxes = p->naxes_attr;
        if (naxes) memcpy(axes, p->axes_attr, sizeof(int64_t) * (size_t)naxes);
    }
    memset(mask, 0, ONR_MAX_RANK);
    if (naxes == 0) {
        if (p->noop_empty) *noop = 1;
        else
            for (int d = 0; d < rank; d++) mask[d] = 1;
        return ONR_OK;
    }
    for (int k = 0; k < naxes; k++) {
        int64_t a = axes[k] < 0 ? axes[k] + rank : axes[k];
        if (a < 0 || a >= rank)
            return onr_seterr(ctx->err, ONR_E_MODEL, "axis %lld is out of range for rank %d",
                              (long long)axes[k], rank);
        if (mask[a])
            return onr_seterr(ctx->err, ONR_E_MODEL, "axis %lld is repeated in axes",
                              (long long)axes[k]);
        mask[a] = 1;
    }
    return ONR_OK;
}

/* Output dims of a reduction: reduced dims become 1 or disappear. */
static int reduced_dims(const onr_tensor *x, const uint8_t *mask, int keepdims, int64_t *dims)
{
    int r = 0;
    for (int d = 0; d < x->rank; d++) {
        if (!mask[d]) dims[r++] = x->dims[d];
        else if (keepdims) dims[r++] = 1;
    }
    return r;
}

/* Collapse the dims: drop size-1 dims, merge neighbours reduced alike. */
static void reduce_geometry(rjob *j, const onr_tensor *x, const uint8_t *mask)
{
    int64_t dims[ONR_MAX_RANK];
    uint8_t red[ONR_MAX_RANK];
    int n = 0;
    for (int d = 0; d < x->rank; d++) {
        if (x->dims[d] == 1) continue;
        if (n > 0 && red[n - 1] == mask[d]) {
            dims[n - 1] *= x->dims[d];
        } else {
            dims[n] = x->dims[d];
            red[n++] = mask[d];
        }
    }
    int64_t str[ONR_MAX_RANK];
    onr_strides(dims, n, str);
    j->nk = j->nr = 0;
    j->n_out = 1;
    j->count = 1;
    for (int d = 0; d < n; d++) {
        if (red[d]) {
            j->rdim[j->nr] = dims[d];
            j->rstr[j->nr++] = str[d];
            j->count *= dims[d];
        } else {
            j->kdim[j->nk] = dims[d];
            j->kstr[j->nk++] = str[d];
            j->n_out *= dims[d];
        }
    }
    j->simple = j->nr <= 1;
    j->outer = 1;
    j->inner = 1;
    j->R = j->count;
    for (int d = 0; d < n && !red[d]; d++) j->outer *= dims[d];
    if (j->nr == 1)
        for (int d = n - 1; d >= 0 && !red[d]; d--) j->inner *= dims[d];
    else
        j->outer = j->n_out; /* no reduced dim left: each element is its own output */
}

static int reduce_reshape(onr_kctx *ctx, size_t *scratch)
{
    red_params *p = ctx->params;
    const rop *op = p->op;
    *scratch = 0;
    uint32_t types = ONR_TYPES_NUM | (op->allow_bool ? ONR_T(ONR_BOOL) : 0);
    int st = onr_check_input(ctx, 0, types);
    if (st) return st;
    uint8_t mask[ONR_MAX_RANK];
    if ((st = reduce_axes(ctx, p, mask, &p->noop))) return st;
    const onr_tensor *x = ctx->in[0];
    if (p->noop) return onr_set_out_like(ctx, 0, 0);
    int64_t dims[ONR_MAX_RANK];
    int r = reduced_dims(x, mask, p->keepdims, dims);
    if ((st = onr_set_out(ctx, 0, x->dtype, r, dims))) return st;
    /* the job: domain, loader, stages and their identities, geometry */
    rjob j = {.op = op, .x = x};
    const rtype *rt = &rtypes[x->dtype];
    j.qdom = !rt->is_float && op->int_exact;
    j.is_unsigned = rt->is_unsigned;
    j.ld = j.qdom ? rt->ldq : rt->ldd;
    if (op->fin == RF_LSE) {
        j.nstages = 2;
        j.st[0] = (rstage){RK_MAXFIN, RT_ID};
        j.st[1] = (rstage){RK_SUM, RT_EXP};
    } else {
        j.nstages = 1;
        j.st[0] = (rstage){op->kind, op->trans};
    }
    for (int s = 0; s < j.nstages; s++) j.init[s] = fold_init(&j, j.st[s].kind);
    /* no geometry for an empty x: the other dims' product could overflow */
    p->empty = x->numel == 0;
    if (p->empty) j.count = 0;
    else reduce_geometry(&j, x, mask);
    j.x = NULL; /* run's tensors are its own */
    p->job = j;
    return ONR_OK;
}

static int reduce_run_kernel(const onr_kctx *ctx)
{
    const red_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    if (p->noop) {
        if (onr_tensor_nbytes(x)) memcpy(y->data, x->data, onr_tensor_nbytes(x));
        return ONR_OK;
    }
    rjob j = p->job;
    j.x = x;
    j.y = y;
    if (p->empty) {
        rval none = {0};
        for (int64_t o = 0; o < y->numel; o++) finish(&j, o, j.init[j.nstages - 1], none);
        return ONR_OK;
    }
    if (j.n_out == 0) return ONR_OK;
    reduce_run(&j, ctx->nthreads);
    return ONR_OK;
}

/* Input 1 (the axes, from opset 13 for ReduceSum and 18 for the others) is
 * a shape input: reshape reads its values. */
/* `extra` is the types beyond the numeric ones (a constant: static
 * initializers cannot read ropv, which is a const object, not a constant
 * expression; it must agree with ropv.allow_bool). */
#define REDUCE_OP(sym, ropv, extra)                                                       \
    static int sym##_create(onr_create_ctx *c, void *params)                              \
    {                                                                                     \
        return reduce_create(c, params, &ropv);                                           \
    }                                                                                     \
    const onr_op_impl onr_impl_##sym = {.create = sym##_create, .reshape = reduce_reshape, \
        .run = reduce_run_kernel, .params_size = sizeof(red_params),                      \
        .types = ONR_TYPES_NUM | (extra),                                                 \
        .shape_inputs = 1u << 1};

REDUCE_OP(reduce_sum, rop_sum, 0)
REDUCE_OP(reduce_mean, rop_mean, 0)
REDUCE_OP(reduce_max, rop_max, ONR_T(ONR_BOOL))
REDUCE_OP(reduce_min, rop_min, ONR_T(ONR_BOOL))
REDUCE_OP(reduce_prod, rop_prod, 0)
REDUCE_OP(reduce_l1, rop_l1, 0)
REDUCE_OP(reduce_l2, rop_l2, 0)
REDUCE_OP(reduce_log_sum, rop_logsum, 0)
REDUCE_OP(reduce_log_sum_exp, rop_lse, 0)
REDUCE_OP(reduce_sum_square, rop_sumsq, 0)

/* ---- ArgMax / ArgMin ----------------------------------------------------- */

typedef struct ajob {
    const onr_tensor *x;
    int64_t *y;
    ld_fn ld;
    int qdom, is_unsigned, is_min, last;
    int64_t outer, R, inner;
} ajob;

/* Should x replace the current best b? NaN counts as the extreme (numpy's
 * argmax/argmin pick the first NaN); ties go to the first index, or to the
 * last with select_last_index. */
static int arg_better(const ajob *a, rval x, rval b)
{
    if (!a->qdom) {
        if (x.d != x.d) return a->last || b.d == b.d;
        if (b.d != b.d) return 0;
        return a->is_min ? (a->last ? x.d <= b.d : x.d < b.d) : (a->last ? x.d >= b.d : x.d > b.d);
    }
    int lt = a->is_unsigned ? x.q < b.q : (int64_t)x.q < (int64_t)b.q;
    int gt = a->is_unsigned ? x.q > b.q : (int64_t)x.q > (int64_t)b.q;
    int eq = x.q == b.q;
    return (a->is_min ? lt : gt) || (a->last && eq);
}

/* Columns [c0, c0+nb) of outer slice o (inner == 1 gives one row). */
static void arg_cols(const ajob *a, int64_t o, int64_t c0, int64_t nb)
{
    rval best[RB], buf[RB];
    int64_t idx[RB];
    int64_t off0 = o * a->R * a->inner + c0;
    for (int64_t c = 0; c < nb; c++) idx[c] = 0;
    a->ld(a->x->data, off0, 1, nb, best);
    for (int64_t r = 1; r < a->R; r++) {
        a->ld(a->x->data, off0 + r * a->inner, 1, nb, buf);
        for (int64_t c = 0; c < nb; c++)
            if (arg_better(a, buf[c], best[c])) {
                best[c] = buf[c];
                idx[c] = r;
            }
    }
    for (int64_t c = 0; c < nb; c++) a->y[o * a->inner + c0 + c] = idx[c];
}

/* One contiguous row (inner == 1), read in chunks. */
static void arg_row(const ajob *a, int64_t o)
{
    rval best, buf[RB];
    int64_t bi = 0, off0 = o * a->R;
    a->ld(a->x->data, off0, 1, 1, &best);
    for (int64_t i0 = 0; i0 < a->R; i0 += RB) {
        int64_t n = a->R - i0 < RB ? a->R - i0 : RB;
        a->ld(a->x->data, off0 + i0, 1, n, buf);
        for (int64_t i = 0; i < n; i++)
            if (i0 + i > 0 && arg_better(a, buf[i], best)) {
                best = buf[i];
                bi = i0 + i;
            }
    }
    a->y[o] = bi;
}

typedef struct arg_params {
    int64_t axis_attr;
    int keepdims, last, is_min;
    /* reshape */
    ld_fn ld;
    int qdom, is_unsigned;
    int64_t outer, R, inner;
} arg_params;

static int arg_create(onr_create_ctx *c, arg_params *p, int is_min)
{
    p->is_min = is_min;
    p->axis_attr = onr_attr_int(c->node, "axis", 0);
    p->keepdims = onr_attr_int(c->node, "keepdims", 1) != 0;
    p->last = c->opset >= 12 && onr_attr_int(c->node, "select_last_index", 0) != 0;
    return ONR_OK;
}

static int argmax_create(onr_create_ctx *c, void *params) { return arg_create(c, params, 0); }
static int argmin_create(onr_create_ctx *c, void *params) { return arg_create(c, params, 1); }

static int arg_reshape(onr_kctx *ctx, size_t *scratch)
{
    arg_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_NUM);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (x->rank < 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input must have rank >= 1, it is a scalar");
    int axis;
    if ((st = onr_norm_axis(ctx->err, p->axis_attr, x->rank, &axis))) return st;
    if (x->dims[axis] == 0)
        return onr_seterr(ctx->err, ONR_E_MODEL, "cannot take the arg max/min of an empty axis %d",
                          axis);
    uint8_t mask[ONR_MAX_RANK] = {0};
    mask[axis] = 1;
    int64_t dims[ONR_MAX_RANK];
    int r = reduced_dims(x, mask, p->keepdims, dims);
    if ((st = onr_set_out(ctx, 0, ONR_INT64, r, dims))) return st;
    const rtype *rt = &rtypes[x->dtype];
    p->qdom = !rt->is_float;
    p->is_unsigned = rt->is_unsigned;
    p->ld = p->qdom ? rt->ldq : rt->ldd;
    p->outer = p->inner = 1;
    p->R = x->dims[axis];
    if (x->numel) { /* else the products could overflow (run does nothing) */
        for (int d = 0; d < axis; d++) p->outer *= x->dims[d];
        for (int d = axis + 1; d < x->rank; d++) p->inner *= x->dims[d];
    }
    return ONR_OK;
}

static int arg_run(const onr_kctx *ctx)
{
    const arg_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    if (x->numel == 0) return ONR_OK;
    ajob a = {.x = x, .y = ctx->out[0]->data, .ld = p->ld, .qdom = p->qdom,
              .is_unsigned = p->is_unsigned, .is_min = p->is_min, .last = p->last,
              .outer = p->outer, .R = p->R, .inner = p->inner};
    if (a.inner == 1) {
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (x->numel > ONR_PAR_MIN)
        for (int64_t o = 0; o < a.outer; o++) arg_row(&a, o);
        return ONR_OK;
    }
    int64_t nblk = (a.inner + RB - 1) / RB, tasks = a.outer * nblk;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (x->numel > ONR_PAR_MIN)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t o = t / nblk, c0 = (t % nblk) * RB;
        arg_cols(&a, o, c0, a.inner - c0 < RB ? a.inner - c0 : RB);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_argmax = {.create = argmax_create, .reshape = arg_reshape,
    .run = arg_run, .params_size = sizeof(arg_params), .types = ONR_TYPES_NUM};
const onr_op_impl onr_impl_argmin = {.create = argmin_create, .reshape = arg_reshape,
    .run = arg_run, .params_size = sizeof(arg_params), .types = ONR_TYPES_NUM};
