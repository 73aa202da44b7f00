/*
 * softmax.c - Softmax, LogSoftmax and Hardmax.
 *
 * The three share one geometry. Before opset 13 the input is coerced to 2-D
 * at `axis` (default 1) and the op runs over each row of that matrix; from
 * opset 13 it runs along the single axis `axis` (default -1). Both become
 * [outer, n, inner] with the op applied along n (inner == 1 for the old form).
 * create decides the axis rule from the opset and reads the attribute;
 * reshape normalizes the axis against the rank and computes the geometry.
 *
 * All are numerically stable: the row max is subtracted before exp, so large
 * inputs never overflow. float32 has direct loops for contiguous rows
 * (inner == 1, the attention case) and for strided columns, taken in blocks
 * of SB columns so each pass reads whole cache lines. double, float16 and
 * bfloat16 go through a plain path that computes in double and rounds on
 * store. Hardmax marks the first maximum (NaN counting as the maximum, as
 * numpy's argmax does).
 */
#include <math.h>
#include <string.h>

#include "ops/exp-poly.h"

#include "ops/ops.h"

#define SB 64 /* columns per block in the strided float32 path */

typedef enum { SM_SOFTMAX, SM_LOGSOFTMAX, SM_HARDMAX } smkind;

/* Params: the kind and the axis attribute (create), the [outer, n, inner]
 * geometry (reshape). */
typedef struct sm_params {
    smkind kind;
    int legacy;   /* opset < 13: coerce to 2-D at axis */
    int64_t axis; /* the attribute, normalized against the rank in reshape */
    int64_t outer, n, inner;
} sm_params;

static int sm_create(onr_create_ctx *c, sm_params *p, smkind kind)
{
    p->kind = kind;
    p->legacy = c->opset < 13;
    p->axis = onr_attr_int(c->node, "axis", p->legacy ? 1 : -1);
    return ONR_OK;
}

static int softmax_create(onr_create_ctx *c, void *params) { return sm_create(c, params, SM_SOFTMAX); }
static int logsoftmax_create(onr_create_ctx *c, void *params) { return sm_create(c, params, SM_LOGSOFTMAX); }
static int hardmax_create(onr_create_ctx *c, void *params) { return sm_create(c, params, SM_HARDMAX); }

static int sm_reshape(onr_kctx *ctx, size_t *scratch)
{
    sm_params *g = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_FLOAT);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (x->rank < 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input must have rank >= 1, it is a scalar");
    int axis;
    if ((st = onr_norm_axis(ctx->err, g->axis, x->rank, &axis))) return st;
    g->outer = g->n = g->inner = 1;
    if (x->numel > 0) { /* else other dims' product could overflow; nothing to do */
        for (int d = 0; d < axis; d++) g->outer *= x->dims[d];
        if (g->legacy) {
            for (int d = axis; d < x->rank; d++) g->n *= x->dims[d];
        } else {
            g->n = x->dims[axis];
            for (int d = axis + 1; d < x->rank; d++) g->inner *= x->dims[d];
        }
    }
    return onr_set_out_like(ctx, 0, 0);
}

/* Is x a better maximum than b for Hardmax: larger, or the first NaN. */
static inline int hm_better(double x, double b) { return x > b || (x != x && b == b); }

/* ---- float32 ----------------------------------------------------------- */

/* exp(x) for x <= 0 (and NaN): onr_exp_core (exp-poly.h). Below -87.3
 * the result is 0, as the true value is below the normal range and does
 * not matter next to the row's largest term, which is 1. */
static inline float exp_nonpos(float x)
{
    float e = onr_exp_core(x);
    /* flush to 0 below the cutoff with a bit mask, not a branch, so the loop
     * vectorizes; NaN compares false and is kept */
    uint32_t keep = 0u - (uint32_t)!(x < -0x1.5D589Ep6f), eb;
    memcpy(&eb, &e, sizeof eb);
    eb &= keep;
    memcpy(&e, &eb, sizeof e);
    return e;
}

/* Largest value of a row, 8 lanes (NaN need not propagate: a NaN input
 * makes its exp, and so the whole row, NaN anyway). */
static float row_max(const float *x, int64_t n)
{
    float m[8];
    int64_t i = 0;
    for (int k = 0; k < 8; k++) m[k] = x[0];
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
    for (; i < n; i++) m[0] = x[i] > m[0] ? x[i] : m[0];
    for (int k = 1; k < 8; k++) m[0] = m[k] > m[0] ? m[k] : m[0];
    return m[0];
}

/* Sum of a row in double, 8 lanes in a fixed order. */
static double row_sum(const float *x, int64_t n)
{
    double a[8] = {0}, t = 0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += x[i + k];
    for (; i < n; i++) t += x[i];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) + t;
}

/* First maximum (NaN first), for Hardmax. */
static int64_t row_argmax(const float *x, int64_t n)
{
    int64_t im = 0;
    for (int64_t i = 1; i < n; i++)
        if (hm_better(x[i], x[im])) im = i;
    return im;
}

static void sm_row_f32(smkind k, const float *x, float *y, int64_t n)
{
    if (k == SM_HARDMAX) {
        int64_t im = row_argmax(x, n);
        for (int64_t i = 0; i < n; i++) y[i] = 0.f;
        y[im] = 1.f;
        return;
    }
    float m = row_max(x, n);
    for (int64_t i = 0; i < n; i++) y[i] = exp_nonpos(x[i] - m);
    double s = row_sum(y, n);
    if (k == SM_SOFTMAX) {
        float inv = (float)(1.0 / s);
        for (int64_t i = 0; i < n; i++) y[i] *= inv;
    } else {
        float sub = m + (float)log(s);
        for (int64_t i = 0; i < n; i++) y[i] = x[i] - sub;
    }
}

/* nb columns (nb <= SB) at row stride ld, n rows: the same passes as a row,
 * each done row after row across the block. */
static void sm_cols_f32(smkind k, const float *x, float *y, int64_t n, int64_t ld, int64_t nb)
{
    float m[SB];
    double s[SB];
    if (k == SM_HARDMAX) {
        int64_t im[SB];
        for (int64_t c = 0; c < nb; c++) im[c] = 0;
        for (int64_t r = 1; r < n; r++)
            for (int64_t c = 0; c < nb; c++)
                if (hm_better(x[r * ld + c], x[im[c] * ld + c])) im[c] = r;
        for (int64_t r = 0; r < n; r++)
            for (int64_t c = 0; c < nb; c++) y[r * ld + c] = im[c] == r ? 1.f : 0.f;
        return;
    }
    for (int64_t c = 0; c < nb; c++) {
        m[c] = x[c];
        s[c] = 0;
    }
    for (int64_t r = 1; r < n; r++)
        for (int64_t c = 0; c < nb; c++) m[c] = x[r * ld + c] > m[c] ? x[r * ld + c] : m[c];
    for (int64_t r = 0; r < n; r++) {
        float *py = y + r * ld;
        const float *px = x + r * ld;
        for (int64_t c = 0; c < nb; c++) py[c] = exp_nonpos(px[c] - m[c]);
        for (int64_t c = 0; c < nb; c++) s[c] += py[c];
    }
    if (k == SM_SOFTMAX) {
        float inv[SB];
        for (int64_t c = 0; c < nb; c++) inv[c] = (float)(1.0 / s[c]);
        for (int64_t r = 0; r < n; r++)
            for (int64_t c = 0; c < nb; c++) y[r * ld + c] *= inv[c];
    } else {
        float sub[SB];
        for (int64_t c = 0; c < nb; c++) sub[c] = m[c] + (float)log(s[c]);
        for (int64_t r = 0; r < n; r++)
            for (int64_t c = 0; c < nb; c++) y[r * ld + c] = x[r * ld + c] - sub[c];
    }
}

/* ---- other float types: one strided line, computed in double ------------ */

static void sm_line_any(smkind k, const onr_tensor *x, onr_tensor *y, int64_t off, int64_t n,
                        int64_t ld)
{
    double m = onr_get_f64(x, off);
    int64_t im = 0;
    for (int64_t r = 1; r < n; r++) {
        double v = onr_get_f64(x, off + r * ld);
        if (hm_better(v, m)) {
            m = v;
            im = r;
        }
    }
    if (k == SM_HARDMAX) {
        for (int64_t r = 0; r < n; r++) onr_set_f64(y, off + r * ld, r == im ? 1.0 : 0.0);
        return;
    }
    double s = 0;
    for (int64_t r = 0; r < n; r++) s += exp(onr_get_f64(x, off + r * ld) - m);
    double ls = log(s);
    for (int64_t r = 0; r < n; r++) {
        double v = onr_get_f64(x, off + r * ld) - m;
        onr_set_f64(y, off + r * ld, k == SM_SOFTMAX ? exp(v) / s : v - ls);
    }
}

static int sm_run(const onr_kctx *ctx)
{
    const sm_params *g = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    smkind k = g->kind;
    if (x->numel == 0) return ONR_OK;
    int64_t work = x->numel * 8;
    if (x->dtype == ONR_FLOAT && g->inner == 1) {
        const float *px = x->data;
        float *py = y->data;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (work > ONR_PAR_MIN)
        for (int64_t o = 0; o < g->outer; o++) sm_row_f32(k, px + o * g->n, py + o * g->n, g->n);
    } else if (x->dtype == ONR_FLOAT) {
        const float *px = x->data;
        float *py = y->data;
        int64_t nblk = (g->inner + SB - 1) / SB, tasks = g->outer * nblk;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (work > ONR_PAR_MIN)
        for (int64_t t = 0; t < tasks; t++) {
            int64_t o = t / nblk, c0 = (t % nblk) * SB;
            int64_t off = o * g->n * g->inner + c0;
            sm_cols_f32(k, px + off, py + off, g->n, g->inner,
                        g->inner - c0 < SB ? g->inner - c0 : SB);
        }
    } else {
        int64_t lines = g->outer * g->inner;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (work > ONR_PAR_MIN)
        for (int64_t l = 0; l < lines; l++) {
            int64_t o = l / g->inner, c = l % g->inner;
            sm_line_any(k, x, y, o * g->n * g->inner + c, g->n, g->inner);
        }
    }
    return ONR_OK;
}

/* In place: Softmax and Hardmax read a whole row (or column block) before
 * writing any of it, and afterwards only read element i of x before
 * writing element i of y (Softmax: y = exp(x - max), then y *= 1/sum;
 * Hardmax: argmax first, then the one-hot row), so y may overwrite x.
 * LogSoftmax's float32 paths keep exp(x - max) in y and then read x again
 * (y = x - (max + log sum)), so it may not. */
const onr_op_impl onr_impl_softmax = {.create = softmax_create, .reshape = sm_reshape,
    .run = sm_run, .params_size = sizeof(sm_params), .types = ONR_TYPES_FLOAT,
    .flags = ONR_OP_INPLACE};
const onr_op_impl onr_impl_log_softmax = {.create = logsoftmax_create, .reshape = sm_reshape,
    .run = sm_run, .params_size = sizeof(sm_params), .types = ONR_TYPES_FLOAT};
const onr_op_impl onr_impl_hardmax = {.create = hardmax_create, .reshape = sm_reshape,
    .run = sm_run, .params_size = sizeof(sm_params), .types = ONR_TYPES_FLOAT,
    .flags = ONR_OP_INPLACE};
