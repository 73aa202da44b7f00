/*
 * common.c - helpers shared by operator files: output shapes, broadcasting,
 * axis normalization, reading small integer inputs, generic element access.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "ir/budget.h"

int onr_set_out(onr_kctx *ctx, int i, onr_dtype dt, int rank, const int64_t *dims)
{
    if (i >= ctx->n_out || !ctx->out[i]) return ONR_OK; /* omitted optional output */
    return onr_tensor_set_shape(ctx->out[i], dt, rank, dims, ctx->err);
}

int onr_set_out_like(onr_kctx *ctx, int i, int j)
{
    const onr_tensor *x = ctx->in[j];
    return onr_set_out(ctx, i, x->dtype, x->rank, x->dims);
}

int onr_broadcast_shape(onr_kctx *ctx, int n, const onr_tensor *const *ts, int64_t *dims,
                        int *rank)
{
    int r = 0;
    for (int k = 0; k < n; k++)
        if (ts[k] && ts[k]->rank > r) r = ts[k]->rank;
    for (int d = 0; d < r; d++) dims[d] = 1;
    for (int k = 0; k < n; k++) {
        const onr_tensor *t = ts[k];
        if (!t) continue;
        int off = r - t->rank;
        for (int d = 0; d < t->rank; d++) {
            int64_t a = dims[off + d], b = t->dims[d];
            if (a == b || b == 1) continue;
            if (a == 1) {
                dims[off + d] = b;
                continue;
            }
            char s1[256], s2[256];
            int k0 = 0;
            while (k0 < k && !ts[k0]) k0++;
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "shapes %s and %s cannot be broadcast (dim %d: %lld vs %lld)",
                              onr_fmt_dims(s1, sizeof s1, ts[k0]->dims, ts[k0]->rank),
                              onr_fmt_dims(s2, sizeof s2, t->dims, t->rank), off + d,
                              (long long)a, (long long)b);
        }
    }
    *rank = r;
    return ONR_OK;
}

int onr_norm_axis(onr_err *err, int64_t axis, int rank, int *out)
{
    int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= (rank > 0 ? rank : 1))
        return onr_seterr(err, ONR_E_MODEL, "axis %lld is out of range for rank %d",
                          (long long)axis, rank);
    *out = (int)a;
    return ONR_OK;
}

int onr_check_input(onr_kctx *ctx, int i, uint32_t types)
{
    if (i >= ctx->n_in || !ctx->in[i])
        return onr_seterr(ctx->err, ONR_E_MODEL, "required input %d is missing", i);
    onr_dtype dt = ctx->in[i]->dtype;
    if ((unsigned)dt >= 32 || !(types & ONR_T(dt)))
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "input %d has unsupported type %s", i,
                          onr_dtype_name(dt));
    return ONR_OK;
}

int onr_read_ints(onr_kctx *ctx, int i, int64_t *vals, int max, int *count)
{
    const onr_tensor *t = ctx->in[i];
    if (!t->data && t->numel > 0) return ONR_SHAPE_DEFER;
    if (t->dtype != ONR_INT64 && t->dtype != ONR_INT32)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input %d must be int64 or int32, not %s", i,
                          onr_dtype_name(t->dtype));
    if (t->rank > 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input %d must be 1-D, has rank %d", i, t->rank);
    if (t->numel > max)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input %d has %lld values, at most %d allowed",
                          i, (long long)t->numel, max);
    for (int64_t k = 0; k < t->numel; k++)
        vals[k] = t->dtype == ONR_INT64 ? ((const int64_t *)t->data)[k]
                                        : ((const int32_t *)t->data)[k];
    *count = (int)t->numel;
    return ONR_OK;
}

int onr_read_scalar(onr_kctx *ctx, int i, double *v)
{
    const onr_tensor *t = ctx->in[i];
    if (!t->data) return ONR_SHAPE_DEFER;
    if (t->numel < 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input %d must hold a value, it is empty", i);
    if (t->dtype == ONR_STRING || !onr_dtype_size(t->dtype))
        return onr_seterr(ctx->err, ONR_E_MODEL, "input %d must be numeric, not %s", i,
                          onr_dtype_name(t->dtype));
    *v = onr_get_f64(t, 0);
    return ONR_OK;
}

double onr_round_to(onr_dtype dt, double v)
{
    switch (dt) {
    case ONR_FLOAT: return (float)v;
    case ONR_FLOAT16: return onr_half_to_float(onr_float_to_half((float)v));
    case ONR_BFLOAT16: return onr_bf16_to_float(onr_float_to_bf16((float)v));
    default: return v;
    }
}

double onr_load_f64(onr_dtype dt, const void *p, int64_t i)
{
    switch (dt) {
    case ONR_FLOAT: return ((const float *)p)[i];
    case ONR_DOUBLE: return ((const double *)p)[i];
    case ONR_FLOAT16: return onr_half_to_float(((const uint16_t *)p)[i]);
    case ONR_BFLOAT16: return onr_bf16_to_float(((const uint16_t *)p)[i]);
    case ONR_INT8: return ((const int8_t *)p)[i];
    case ONR_INT16: return ((const int16_t *)p)[i];
    case ONR_INT32: return ((const int32_t *)p)[i];
    case ONR_INT64: return (double)((const int64_t *)p)[i];
    case ONR_UINT8: return ((const uint8_t *)p)[i];
    case ONR_UINT16: return ((const uint16_t *)p)[i];
    case ONR_UINT32: return ((const uint32_t *)p)[i];
    case ONR_UINT64: return (double)((const uint64_t *)p)[i];
    case ONR_BOOL: return ((const uint8_t *)p)[i] != 0;
    default:
        return onr_dtype_is_lowp(dt) ? onr_lowp_to_f64(dt, ((const uint8_t *)p)[i]) : 0;
    }
}

double onr_get_f64(const onr_tensor *t, int64_t i) { return onr_load_f64(t->dtype, t->data, i); }

int64_t onr_f64_to_i64_sat(double v, int64_t lo, int64_t hi)
{
    if (v != v) return 0;
    if (v <= (double)lo) return lo;
    if (v >= (double)hi) return hi; /* (double)INT64_MAX rounds up to 2^63: still exact */
    return (int64_t)v;
}

uint64_t onr_f64_to_u64_sat(double v, uint64_t hi)
{
    if (!(v > 0)) return 0; /* NaN too */
    if (v >= (double)hi) return hi;
    return (uint64_t)v;
}

void onr_set_f64(onr_tensor *t, int64_t i, double v)
{
    void *p = t->data;
    switch (t->dtype) {
    case ONR_FLOAT: ((float *)p)[i] = (float)v; break;
    case ONR_DOUBLE: ((double *)p)[i] = v; break;
    case ONR_FLOAT16: ((uint16_t *)p)[i] = onr_float_to_half((float)v); break;
    case ONR_BFLOAT16: ((uint16_t *)p)[i] = onr_float_to_bf16((float)v); break;
    /* integers: truncated and clamped to the type (NaN gives 0); a plain
     * conversion of an out-of-range value (inf, 1e30) is undefined */
    case ONR_INT8: ((int8_t *)p)[i] = (int8_t)onr_f64_to_i64_sat(v, INT8_MIN, INT8_MAX); break;
    case ONR_INT16: ((int16_t *)p)[i] = (int16_t)onr_f64_to_i64_sat(v, INT16_MIN, INT16_MAX); break;
    case ONR_INT32: ((int32_t *)p)[i] = (int32_t)onr_f64_to_i64_sat(v, INT32_MIN, INT32_MAX); break;
    case ONR_INT64: ((int64_t *)p)[i] = onr_f64_to_i64_sat(v, INT64_MIN, INT64_MAX); break;
    case ONR_UINT8: ((uint8_t *)p)[i] = (uint8_t)onr_f64_to_u64_sat(v, UINT8_MAX); break;
    case ONR_UINT16: ((uint16_t *)p)[i] = (uint16_t)onr_f64_to_u64_sat(v, UINT16_MAX); break;
    case ONR_UINT32: ((uint32_t *)p)[i] = (uint32_t)onr_f64_to_u64_sat(v, UINT32_MAX); break;
    case ONR_UINT64: ((uint64_t *)p)[i] = onr_f64_to_u64_sat(v, UINT64_MAX); break;
    case ONR_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default:
        if (onr_dtype_is_lowp(t->dtype)) ((uint8_t *)p)[i] = onr_f64_to_lowp(t->dtype, v, 1);
        break;
    }
}

void onr_strides(const int64_t *dims, int rank, int64_t *strides)
{
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        strides[d] = s;
        s *= dims[d];
    }
}

void onr_bcast_strides(const int64_t *dims, int rank, const int64_t *odims, int orank,
                       int64_t *strides)
{
    int64_t own[ONR_MAX_RANK];
    onr_strides(dims, rank, own);
    int off = orank - rank;
    for (int d = 0; d < orank; d++) {
        int sd = d - off;
        strides[d] = (sd < 0 || dims[sd] == 1 || odims[d] == 1) ? 0 : own[sd];
    }
}

/* ---- outputs of ONR_OP_DYNAMIC_OUT ops ------------------------------------ */

int onr_out_resize(const onr_kctx *ctx, int i, onr_dtype dt, int rank, const int64_t *dims)
{
    if (i >= ctx->n_out || !ctx->out[i]) return ONR_OK;
    onr_tensor *t = ctx->out[i];
    if (!t->owns) { /* never free a buffer this tensor does not own */
        t->data = NULL;
        t->cap = 0;
    }
    /* strings are freed by count: release them under the old shape */
    if (t->dtype == ONR_STRING || dt == ONR_STRING) {
        char *name = t->name;
        t->name = NULL;
        onr_tensor_clear(t);
        t->name = name;
    }
    int st = onr_tensor_set_shape(t, dt, rank, dims, ctx->err);
    if (!st) st = onr_tensor_alloc(t, ctx->err);
    return st;
}

int onr_out_grow(const onr_kctx *ctx, int i, size_t bytes, size_t keep)
{
    if (i >= ctx->n_out || !ctx->out[i]) return ONR_OK;
    onr_tensor *t = ctx->out[i];
    if (!t->owns) {
        t->data = NULL;
        t->cap = 0;
        keep = 0;
    }
    if (t->data && t->cap >= bytes) return ONR_OK;
    if (bytes > onr_max_tensor_bytes())
        return onr_seterr(ctx->err, ONR_E_NOMEM,
                          "output %d would need %zu bytes, more than the %llu-byte limit", i, bytes,
                          (unsigned long long)onr_max_tensor_bytes());
    size_t cap = t->cap + t->cap / 2;
    if (cap < bytes) cap = bytes;
    cap = (cap + 63) & ~(size_t)63;
    if (!cap) cap = 64;
    if (onr_budget_run_take(cap, ctx->err)) return ONR_E_NOMEM;
    void *p = onr_alloc_aligned(cap);
    if (!p) return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory for %zu bytes", cap);
    if (keep > t->cap) keep = t->cap;
    if (keep && t->data) memcpy(p, t->data, keep);
    memset((char *)p + keep, 0, cap - keep); /* string slots start NULL */
    if (t->owns) free(t->data);
    t->data = p;
    t->cap = cap;
    t->owns = 1;
    return ONR_OK;
}

/* onr_par_for's ranges: thread t's items [lo, hi) packed in one word (lo
 * in the low half), on a line of its own. */
#define PAR_THREADS_MAX 64
typedef struct par_range {
    _Alignas(64) _Atomic uint64_t r;
} par_range;

static uint64_t par_pack(int64_t lo, int64_t hi) { return (uint64_t)lo | (uint64_t)hi << 32; }

/* The owner's next claim from the front of its range: `want` items at
 * most; 0 when the range is empty. */
static int64_t par_claim_front(par_range *pr, int64_t want, int64_t *lo)
{
    uint64_t cur = atomic_load_explicit(&pr->r, memory_order_relaxed);
    for (;;) {
        int64_t l = (int64_t)(cur & 0xffffffffu), h = (int64_t)(cur >> 32);
        if (l >= h) return 0;
        int64_t take = want < h - l ? want : h - l;
        if (atomic_compare_exchange_weak_explicit(&pr->r, &cur, par_pack(l + take, h),
                                                  memory_order_relaxed, memory_order_relaxed)) {
            *lo = l;
            return take;
        }
    }
}

/* A thief's claim from the back of another's range: half of what is
 * left (at least one item). */
static int64_t par_claim_back(par_range *pr, int64_t *lo)
{
    uint64_t cur = atomic_load_explicit(&pr->r, memory_order_relaxed);
    for (;;) {
        int64_t l = (int64_t)(cur & 0xffffffffu), h = (int64_t)(cur >> 32);
        if (l >= h) return 0;
        int64_t take = (h - l + 1) / 2;
        if (atomic_compare_exchange_weak_explicit(&pr->r, &cur, par_pack(l, h - take),
                                                  memory_order_relaxed, memory_order_relaxed)) {
            *lo = h - take;
            return take;
        }
    }
}

void onr_par_for(int64_t n, int nt, int par, onr_par_fn fn, void *ctx)
{
    if (par && n > 1 && (nt = onr_team_probe(nt)) > 1) {
        /* schedule(static)'s split, written out so that each thread can
         * say what its share cost (the contention back-off, team.h). Each
         * thread does its own share first, so that the next layer mostly
         * reads what its own core wrote (letting a thread done early take
         * the others' rows in turn measured 4 % slower on EfficientNet-B0
         * at 2 threads): three quarters of it at once, then an eighth at
         * a time. A thread that is done then takes half of what is left
         * of another's share, from its end, and again: this project's VMs
         * at times run one virtual CPU at 70-80 % of the other's speed,
         * and fixed shares made every region as slow as the slow one's
         * half. A thread the team did not get (a smaller team than asked
         * for) leaves its whole share to be taken so. */
        const int steal = nt <= PAR_THREADS_MAX && n < (int64_t)1 << 31;
        par_range rg[PAR_THREADS_MAX];
        for (int t = 0; t < nt && steal; t++) {
            int64_t lo, hi;
            onr_team_share(n, nt, t, &lo, &hi);
            atomic_init(&rg[t].r, par_pack(lo, hi));
        }
        onr_team_region reg;
        onr_team_begin(&reg);
        #pragma omp parallel num_threads(nt)
        {
            int64_t w0 = onr_team_work_start(&reg);
            const int me = omp_get_thread_num();
            if (!steal) {
                int64_t lo, hi;
                onr_team_share(n, omp_get_num_threads(), me, &lo, &hi);
                for (int64_t i = lo; i < hi; i++) fn(ctx, i);
            } else {
                int64_t lo, hi, got;
                onr_team_share(n, nt, me, &lo, &hi);
                const int64_t own = hi - lo, rest = own / 8 > 1 ? own / 8 : 1;
                int64_t want = own - own / 4 > 1 ? own - own / 4 : 1;
                while ((got = par_claim_front(&rg[me], want, &lo)) > 0) {
                    for (int64_t i = lo; i < lo + got; i++) fn(ctx, i);
                    want = rest;
                }
                for (int v = 1; v < nt; v++) {
                    par_range *pr = &rg[(me + v) % nt];
                    while ((got = par_claim_back(pr, &lo)) > 0)
                        for (int64_t i = lo; i < lo + got; i++) fn(ctx, i);
                }
            }
            onr_team_work_done(&reg, w0);
        }
        onr_team_end(&reg);
        return;
    }
    for (int64_t i = 0; i < n; i++) fn(ctx, i);
}
