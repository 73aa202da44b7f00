/*
 * rmsnorm.c - RMSNormalization (ai.onnx opset 23).
 *
 * Y = Cast<T>(XU / sqrt(mean(XU^2 over axes [axis, rank)) + epsilon)) * scale
 * with XU = Cast<stash_type>(X), as the operator's function body defines it:
 * stage one runs in the stash type, its result is rounded to X's type T,
 * stage two multiplies by scale. Y has scale's type V (the schema's output
 * type; when T == V, the usual case, this is the function body exactly).
 * scale broadcasts unidirectionally to X: usually it spans the normalized
 * dims only ("row-invariant") and is used as n values, in place when it
 * already is a float32 array of n values, else expanded into scratch; a
 * scale that also varies along the leading dims is read through strides.
 *
 * The float32 path (X, scale float32, stash float or double) sums squares
 * in double with 8 lanes in a fixed order (vectorizes without
 * reassociation, so the result does not depend on the thread count) and
 * writes y = x * (1/rms) * s. Other types go through element accessors and
 * compute in double, rounding XU and the normalized value to the stash
 * type and T so a float16 model sees the roundings the function body
 * makes. Rows are split over threads above a work threshold; one thread
 * owns a row.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

typedef struct rms_params {
    int64_t axis_attr;
    double eps;
    onr_dtype stash;
    /* reshape */
    int axis;
    int64_t outer, n;
    int row_inv; /* scale is the same for every row: n values */
    int direct;  /* ... and is a float32 array of exactly n values, used in place */
    int fast;    /* float32 X, scale and Y, stash float or double */
    int64_t sstr[ONR_MAX_RANK]; /* scale strides over X's dims (0 where broadcast) */
} rms_params;

static int is_float_type(onr_dtype dt)
{
    return dt == ONR_FLOAT || dt == ONR_DOUBLE || dt == ONR_FLOAT16 || dt == ONR_BFLOAT16;
}

static int rms_create(onr_create_ctx *c, void *params)
{
    rms_params *p = params;
    p->axis_attr = onr_attr_int(c->node, "axis", -1);
    float e = onr_attr_float(c->node, "epsilon", 1e-5f);
    if (!isfinite(e) || e < 0)
        return onr_seterr(c->err, ONR_E_MODEL, "epsilon %g must be finite and >= 0", (double)e);
    p->eps = e;
    int64_t st = onr_attr_int(c->node, "stash_type", ONR_FLOAT);
    if (st < 0 || st >= ONR_DTYPE_COUNT || !is_float_type((onr_dtype)st))
        return onr_seterr(c->err, ONR_E_MODEL, "stash_type %lld is not a float type", (long long)st);
    p->stash = (onr_dtype)st;
    if (c->n_in != 2)
        return onr_seterr(c->err, ONR_E_MODEL, "has %d inputs, RMSNormalization takes X and scale",
                          c->n_in);
    if (c->n_out != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "has %d outputs, RMSNormalization has one", c->n_out);
    return ONR_OK;
}

static int rms_reshape(onr_kctx *ctx, size_t *scratch)
{
    rms_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_FLOAT);
    if (st || (st = onr_check_input(ctx, 1, ONR_TYPES_FLOAT))) return st;
    const onr_tensor *x = ctx->in[0], *s = ctx->in[1];
    if (x->rank == 0)
        return onr_seterr(ctx->err, ONR_E_MODEL, "X must have rank >= 1, it is a scalar");
    if ((st = onr_norm_axis(ctx->err, p->axis_attr, x->rank, &p->axis))) return st;
    /* scale: unidirectional broadcast to X */
    int ok = s->rank <= x->rank;
    for (int d = 0; ok && d < s->rank; d++) {
        int64_t want = x->dims[x->rank - s->rank + d];
        ok = s->dims[d] == want || s->dims[d] == 1;
    }
    if (!ok) {
        char s1[256], s2[256];
        return onr_seterr(ctx->err, ONR_E_MODEL, "scale %s does not broadcast to X %s",
                          onr_fmt_dims(s1, sizeof s1, s->dims, s->rank),
                          onr_fmt_dims(s2, sizeof s2, x->dims, x->rank));
    }
    onr_bcast_strides(s->dims, s->rank, x->dims, x->rank, p->sstr);
    p->row_inv = 1;
    for (int d = 0; d < p->axis; d++)
        if (p->sstr[d]) p->row_inv = 0;
    if (x->numel == 0) {
        p->outer = p->n = 0;
    } else {
        p->outer = p->n = 1;
        for (int d = 0; d < p->axis; d++) p->outer *= x->dims[d];
        for (int d = p->axis; d < x->rank; d++) p->n *= x->dims[d];
    }
    if ((st = onr_set_out(ctx, 0, s->dtype, x->rank, x->dims))) return st;
    p->fast = x->dtype == ONR_FLOAT && s->dtype == ONR_FLOAT &&
              (p->stash == ONR_FLOAT || p->stash == ONR_DOUBLE);
    p->direct = p->fast && p->row_inv && s->numel == p->n;
    if (p->row_inv) {
        if (!p->direct) *scratch = (size_t)p->n * (p->fast ? sizeof(float) : sizeof(double));
    } else {
        *scratch = (size_t)p->n * sizeof(int64_t);
    }
    return ONR_OK;
}

/* Offsets of scale's elements for the n positions of one row (relative to
 * the row's base), walking the normalized dims. */
static void rms_inner_offsets(const onr_tensor *x, const rms_params *p, int64_t *off)
{
    int64_t idx[ONR_MAX_RANK] = {0};
    const int64_t *nd = x->dims + p->axis;
    const int64_t *str = p->sstr + p->axis;
    int nr = x->rank - p->axis;
    for (int64_t i = 0; i < p->n; i++) {
        int64_t o = 0;
        for (int d = 0; d < nr; d++) o += idx[d] * str[d];
        off[i] = o;
        for (int d = nr - 1; d >= 0 && ++idx[d] == nd[d]; d--) idx[d] = 0;
    }
}

/* Scale's offset for the first element of row o. */
static int64_t rms_row_base(const onr_tensor *x, const rms_params *p, int64_t o)
{
    int64_t b = 0;
    for (int d = p->axis - 1; d >= 0; d--) {
        b += (o % x->dims[d]) * p->sstr[d];
        o /= x->dims[d];
    }
    return b;
}


static void rms_row_f32(const float *x, float *y, int64_t n, const float *s, double eps)
{
    double a[8] = {0}, t = 0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += (double)x[i + k] * x[i + k];
    for (; i < n; i++) t += (double)x[i] * x[i];
    double ms = ((((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))) + t) / (double)n;
    float inv = (float)(1.0 / sqrt(ms + eps));
    for (i = 0; i < n; i++) y[i] = x[i] * inv * s[i];
}

/* Any types: row o of x, with scale read through sv (row-invariant
 * expanded values) or the tensor and offsets. */
static void rms_row_any(const onr_tensor *x, const onr_tensor *sc, onr_tensor *y, const rms_params *p,
                        int64_t o, const double *sv, const int64_t *soff)
{
    int64_t off = o * p->n, n = p->n;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = onr_round_to(p->stash, onr_get_f64(x, off + i));
        sum += v * v;
    }
    double rms = onr_round_to(p->stash, sqrt(onr_round_to(p->stash, sum / (double)n + p->eps)));
    int64_t base = sv ? 0 : rms_row_base(x, p, o);
    for (int64_t i = 0; i < n; i++) {
        double v = onr_round_to(p->stash, onr_get_f64(x, off + i));
        double norm = onr_round_to(x->dtype, onr_round_to(p->stash, v / rms));
        double s = sv ? sv[i] : onr_get_f64(sc, base + soff[i]);
        onr_set_f64(y, off + i, norm * s);
    }
}

static int rms_run(const onr_kctx *ctx)
{
    const rms_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0], *sc = ctx->in[1];
    onr_tensor *y = ctx->out[0];
    if (x->numel == 0) return ONR_OK;
    const int64_t outer = p->outer, n = p->n;
    int par = x->numel * 3 > ONR_PAR_MIN;
    if (p->fast && p->row_inv) {
        const float *s = sc->data;
        if (!p->direct) {
            float *w = ctx->scratch;
            int64_t idx[ONR_MAX_RANK] = {0};
            int nr = x->rank - p->axis;
            for (int64_t i = 0; i < n; i++) {
                int64_t o = 0;
                for (int d = 0; d < nr; d++) o += idx[d] * p->sstr[p->axis + d];
                w[i] = ((const float *)sc->data)[o];
                for (int d = nr - 1; d >= 0 && ++idx[d] == x->dims[p->axis + d]; d--) idx[d] = 0;
            }
            s = w;
        }
        const float *xd = x->data;
        float *yd = y->data;
        double eps = p->eps;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (par)
        for (int64_t o = 0; o < outer; o++) rms_row_f32(xd + o * n, yd + o * n, n, s, eps);
        return ONR_OK;
    }
    const double *sv = NULL;
    const int64_t *soff = NULL;
    if (p->row_inv) {
        double *w = ctx->scratch;
        int64_t idx[ONR_MAX_RANK] = {0};
        int nr = x->rank - p->axis;
        for (int64_t i = 0; i < n; i++) {
            int64_t o = 0;
            for (int d = 0; d < nr; d++) o += idx[d] * p->sstr[p->axis + d];
            w[i] = onr_get_f64(sc, o);
            for (int d = nr - 1; d >= 0 && ++idx[d] == x->dims[p->axis + d]; d--) idx[d] = 0;
        }
        sv = w;
    } else {
        int64_t *w = ctx->scratch;
        rms_inner_offsets(x, p, w);
        soff = w;
    }
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (par)
    for (int64_t o = 0; o < outer; o++) rms_row_any(x, sc, y, p, o, sv, soff);
    return ONR_OK;
}

const onr_op_impl onr_impl_rms_norm = {.create = rms_create, .reshape = rms_reshape,
    .run = rms_run, .params_size = sizeof(rms_params), .types = ONR_TYPES_FLOAT};
