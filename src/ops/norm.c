/*
 * norm.c - normalization operators: BatchNormalization, InstanceNormalization,
 * GroupNormalization, LayerNormalization and LpNormalization.
 *
 * All of them normalize contiguous runs of the input: a (batch, channel)
 * plane for Batch/Instance norm, a (batch, group) block for GroupNorm, the
 * trailing dims for LayerNorm. A run's mean and variance are taken in two
 * passes with double accumulators (exact enough for long runs, and the
 * result does not depend on the thread count since one thread owns a run);
 * the run is then written as y = (x - mean) * a + b with a per-run or
 * per-element a and b.
 *
 * float32 has direct loops; double, float16 and bfloat16 go through element
 * accessors and compute in double, rounding on store. Parameter tensors
 * (scale, bias, mean, var) may be any float type (BatchNormalization-15
 * allows them to differ from X), so they are always read through
 * onr_get_f64 or converted once into scratch.
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"

/* ---- shared pieces --------------------------------------------------------- */

/* Mean and population variance of n contiguous float32 values; 8 double
 * lanes in a fixed order so the compiler vectorizes without reassociating. */
static void stats_f32(const float *x, int64_t n, double *mean, double *var)
{
    if (n <= 0) {
        *mean = *var = 0;
        return;
    }
    double a[8] = {0}, t = 0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += x[i + k];
    for (; i < n; i++) t += x[i];
    double m = (((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) + t) / (double)n;
    for (int k = 0; k < 8; k++) a[k] = 0;
    t = 0;
    for (i = 0; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            double d = x[i + k] - m;
            a[k] += d * d;
        }
    for (; i < n; i++) t += (x[i] - m) * (x[i] - m);
    *mean = m;
    *var = (((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) + t) / (double)n;
}

/* The same for any float type, at elements [off, off + n) of x. */
static void stats_any(const onr_tensor *x, int64_t off, int64_t n, double *mean, double *var)
{
    if (x->dtype == ONR_FLOAT) {
        stats_f32((const float *)x->data + off, n, mean, var);
        return;
    }
    if (n <= 0) {
        *mean = *var = 0;
        return;
    }
    double s = 0, q = 0;
    for (int64_t i = 0; i < n; i++) s += onr_get_f64(x, off + i);
    double m = s / (double)n;
    for (int64_t i = 0; i < n; i++) {
        double d = onr_get_f64(x, off + i) - m;
        q += d * d;
    }
    *mean = m;
    *var = q / (double)n;
}

/* y = (x - m) * a + b over elements [off, off + n). */
static void affine_any(const onr_tensor *x, onr_tensor *y, int64_t off, int64_t n, double m,
                       double a, double b)
{
    if (x->dtype == ONR_FLOAT) {
        const float *px = (const float *)x->data + off;
        float *py = (float *)y->data + off;
        float fm = (float)m, fa = (float)a, fb = (float)b;
        for (int64_t i = 0; i < n; i++) py[i] = (px[i] - fm) * fa + fb;
        return;
    }
    for (int64_t i = 0; i < n; i++) onr_set_f64(y, off + i, (onr_get_f64(x, off + i) - m) * a + b);
}

/* Require input i to be a float tensor of rank 1 with n elements. */
static int check_vec(onr_kctx *ctx, int i, const char *what, int64_t n)
{
    int st = onr_check_input(ctx, i, ONR_TYPES_FLOAT);
    if (st) return st;
    const onr_tensor *t = ctx->in[i];
    if (t->rank != 1 || t->dims[0] != n)
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s (input %d) must have shape [%lld], not rank %d with %lld elements",
                          what, i, (long long)n, t->rank, (long long)t->numel);
    return ONR_OK;
}

/* Product of dims [from, to). 0 for an empty tensor: a zero dim lets the
 * other dims be anything, so their product could overflow, and loops over
 * it would do nothing for a very long time. */
static int64_t dims_prod(const onr_tensor *x, int from, int to)
{
    if (x->numel == 0) return 0;
    int64_t p = 1;
    for (int d = from; d < to; d++) p *= x->dims[d];
    return p;
}

/* X must be a float tensor of rank >= 2: (N, C, D1, ...). */
static int check_nc(onr_kctx *ctx)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_FLOAT);
    if (st) return st;
    if (ctx->in[0]->rank < 2)
        return onr_seterr(ctx->err, ONR_E_MODEL, "X must have rank >= 2 (N, C, ...), it has rank %d",
                          ctx->in[0]->rank);
    return ONR_OK;
}

/* ---- BatchNormalization ---------------------------------------------------- */

/* Inference: y = (x - mean[c]) / sqrt(var[c] + eps) * scale[c] + B[c].
 * Training (opset 14+, training_mode=1): the batch's own mean and population
 * variance per channel replace the inputs, and the optional outputs carry
 * the running statistics  input * momentum + batch * (1 - momentum).
 * Opsets < 9 have `spatial`: with spatial=0 the parameters hold one value per
 * element of a (C, D1, ...) plane. */

typedef struct bn_cfg {
    int training, spatial;
    int64_t N, C, HW;
} bn_cfg;

static int bn_config(onr_kctx *ctx, bn_cfg *c)
{
    const onr_tensor *x = ctx->in[0];
    c->N = x->dims[0];
    c->C = x->dims[1];
    c->HW = dims_prod(x, 2, x->rank);
    c->spatial = ctx->opset < 9 ? onr_attr_int(ctx->node, "spatial", 1) != 0 : 1;
    c->training = ctx->opset >= 14 && onr_attr_int(ctx->node, "training_mode", 0) != 0;
    return ONR_OK;
}

static int bn_shape(onr_kctx *ctx)
{
    int st = check_nc(ctx);
    if (st) return st;
    if (ctx->n_in < 5)
        return onr_seterr(ctx->err, ONR_E_MODEL, "needs 5 inputs (X, scale, B, mean, var), has %d",
                          ctx->n_in);
    bn_cfg c;
    bn_config(ctx, &c);
    static const char *names[] = {"", "scale", "B", "mean", "var"};
    for (int i = 1; i < 5; i++) {
        if ((st = onr_check_input(ctx, i, ONR_TYPES_FLOAT))) return st;
        const onr_tensor *p = ctx->in[i];
        if (c.spatial ? (p->rank != 1 || p->dims[0] != c.C) : p->numel != c.C * c.HW)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "%s (input %d) has %lld elements (rank %d), expected %lld", names[i],
                              i, (long long)p->numel, p->rank,
                              (long long)(c.spatial ? c.C : c.C * c.HW));
    }
    int extra = 0;
    for (int i = 1; i < ctx->n_out; i++) extra |= ctx->out[i] != NULL;
    if (extra && !c.training)
        return onr_seterr(ctx->err, ctx->opset >= 14 ? ONR_E_MODEL : ONR_E_UNSUPPORTED,
                          ctx->opset >= 14 ? "outputs 1.. (running mean and var) need training_mode=1"
                                           : "the training outputs of BatchNormalization before opset 14 are not supported");
    if (c.training && !c.spatial)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "training mode with spatial=0");
    if (ctx->n_out > 3)
        return onr_seterr(ctx->err, ONR_E_MODEL, "has %d outputs, at most 3 allowed", ctx->n_out);
    if ((st = onr_set_out_like(ctx, 0, 0))) return st;
    for (int i = 1; i < ctx->n_out && i < 3; i++)
        if ((st = onr_set_out(ctx, i, ctx->in[i + 2]->dtype, 1, &c.C))) return st;
    return ONR_OK;
}

static int bn_prepare(onr_kctx *ctx, size_t *scratch)
{
    bn_cfg c;
    bn_config(ctx, &c);
    /* per channel: mean, multiplier a, bias b (and the batch variance) */
    *scratch = c.spatial ? (size_t)c.C * 4 * sizeof(double) : 0;
    return ONR_OK;
}

/* Per-element parameters (spatial=0): slow generic path, rare models only. */
static void bn_run_per_element(onr_kctx *ctx, const bn_cfg *c, double eps)
{
    const onr_tensor *x = ctx->in[0], *s = ctx->in[1], *b = ctx->in[2], *m = ctx->in[3],
                     *v = ctx->in[4];
    onr_tensor *y = ctx->out[0];
    int64_t plane = c->C * c->HW;
#pragma omp parallel for num_threads(ctx->nthreads) if (x->numel * 4 > ONR_PAR_MIN)
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t p = 0; p < plane; p++) {
            double a = onr_get_f64(s, p) / sqrt(onr_get_f64(v, p) + eps);
            onr_set_f64(y, n * plane + p,
                        (onr_get_f64(x, n * plane + p) - onr_get_f64(m, p)) * a + onr_get_f64(b, p));
        }
}

/* Batch mean and population variance of channel ch (over N planes). */
static void bn_batch_stats(const onr_tensor *x, const bn_cfg *c, int64_t ch, double *mean,
                           double *var)
{
    double s = 0, q = 0, cnt = (double)(c->N * c->HW);
    for (int64_t n = 0; n < c->N; n++) {
        double pm, pv;
        stats_any(x, (n * c->C + ch) * c->HW, c->HW, &pm, &pv);
        s += pm * (double)c->HW;
    }
    double m = cnt > 0 ? s / cnt : 0;
    /* combine the planes' variances around the common mean */
    for (int64_t n = 0; n < c->N; n++) {
        double pm, pv;
        stats_any(x, (n * c->C + ch) * c->HW, c->HW, &pm, &pv);
        q += (pv + (pm - m) * (pm - m)) * (double)c->HW;
    }
    *mean = m;
    *var = cnt > 0 ? q / cnt : 0;
}

static int bn_run(onr_kctx *ctx)
{
    const onr_tensor *x = ctx->in[0], *s = ctx->in[1], *b = ctx->in[2], *mi = ctx->in[3],
                     *vi = ctx->in[4];
    onr_tensor *y = ctx->out[0];
    bn_cfg c;
    bn_config(ctx, &c);
    double eps = onr_attr_float(ctx->node, "epsilon", 1e-5f);
    if (!c.spatial) {
        if (x->numel) bn_run_per_element(ctx, &c, eps);
        return ONR_OK;
    }
    double *mean = ctx->scratch, *mul = mean + c.C, *add = mul + c.C, *var = add + c.C;
    if (c.training && x->numel == 0) {
        for (int64_t ch = 0; ch < c.C; ch++) mean[ch] = var[ch] = 0;
    } else if (c.training) {
#pragma omp parallel for num_threads(ctx->nthreads) if (x->numel * 2 > ONR_PAR_MIN)
        for (int64_t ch = 0; ch < c.C; ch++) bn_batch_stats(x, &c, ch, &mean[ch], &var[ch]);
    } else {
        for (int64_t ch = 0; ch < c.C; ch++) {
            mean[ch] = onr_get_f64(mi, ch);
            var[ch] = onr_get_f64(vi, ch);
        }
    }
    for (int64_t ch = 0; ch < c.C; ch++) {
        mul[ch] = onr_get_f64(s, ch) / sqrt(var[ch] + eps);
        add[ch] = onr_get_f64(b, ch);
    }
    int64_t planes = x->numel ? c.N * c.C : 0;
#pragma omp parallel for num_threads(ctx->nthreads) if (x->numel > ONR_PAR_MIN)
    for (int64_t p = 0; p < planes; p++) {
        int64_t ch = p % c.C;
        affine_any(x, y, p * c.HW, c.HW, mean[ch], mul[ch], add[ch]);
    }
    if (c.training) {
        double mom = onr_attr_float(ctx->node, "momentum", 0.9f);
        for (int i = 1; i < ctx->n_out && i < 3; i++) {
            onr_tensor *o = ctx->out[i];
            if (!o) continue;
            const onr_tensor *run = i == 1 ? mi : vi;
            const double *cur = i == 1 ? mean : var;
            for (int64_t ch = 0; ch < c.C; ch++)
                onr_set_f64(o, ch, onr_get_f64(run, ch) * mom + cur[ch] * (1.0 - mom));
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_batch_norm = {.shape = bn_shape, .prepare = bn_prepare, .run = bn_run, .types = ONR_TYPES_FLOAT};

/* ---- InstanceNormalization and GroupNormalization -------------------------- */

/* Both normalize a (batch, group) block of cpg channels x HW elements and
 * then scale each channel: InstanceNorm is the case groups == C. Before
 * opset 21 GroupNormalization's scale and bias are per group, after it per
 * channel. */

typedef struct gn_cfg {
    int64_t N, C, G, HW;
    int per_group_params;
} gn_cfg;

static int gn_config(onr_kctx *ctx, int instance, gn_cfg *c)
{
    const onr_tensor *x = ctx->in[0];
    c->N = x->dims[0];
    c->C = x->dims[1];
    c->HW = dims_prod(x, 2, x->rank);
    c->G = instance ? c->C : onr_attr_int(ctx->node, "num_groups", 0);
    c->per_group_params = !instance && ctx->opset < 21;
    if (!instance) {
        if (!onr_node_attr(ctx->node, "num_groups"))
            return onr_seterr(ctx->err, ONR_E_MODEL, "attribute num_groups is required");
        if (c->G < 1 || c->C % c->G != 0)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "num_groups %lld must be >= 1 and divide the %lld channels",
                              (long long)c->G, (long long)c->C);
    }
    return ONR_OK;
}

static int gn_shape_common(onr_kctx *ctx, int instance)
{
    int st = check_nc(ctx);
    if (st) return st;
    if (ctx->n_in < 3)
        return onr_seterr(ctx->err, ONR_E_MODEL, "needs 3 inputs (X, scale, B), has %d", ctx->n_in);
    gn_cfg c;
    if ((st = gn_config(ctx, instance, &c))) return st;
    int64_t np = c.per_group_params ? c.G : c.C;
    if ((st = check_vec(ctx, 1, "scale", np)) || (st = check_vec(ctx, 2, "B", np))) return st;
    if (!instance && ctx->opset >= 21) {
        int64_t stash = onr_attr_int(ctx->node, "stash_type", 1);
        if (stash != ONR_FLOAT && stash != ONR_DOUBLE && stash != ONR_FLOAT16 && stash != ONR_BFLOAT16)
            return onr_seterr(ctx->err, ONR_E_MODEL, "stash_type %lld is not a float type",
                              (long long)stash);
    }
    return onr_set_out_like(ctx, 0, 0);
}

static int gn_run_common(onr_kctx *ctx, int instance)
{
    const onr_tensor *x = ctx->in[0], *s = ctx->in[1], *b = ctx->in[2];
    onr_tensor *y = ctx->out[0];
    gn_cfg c;
    int st = gn_config(ctx, instance, &c);
    if (st) return st;
    double eps = onr_attr_float(ctx->node, "epsilon", 1e-5f);
    if (x->numel == 0) return ONR_OK;
    int64_t cpg = c.C / c.G, blocks = c.N * c.G, len = cpg * c.HW;
#pragma omp parallel for num_threads(ctx->nthreads) if (x->numel > ONR_PAR_MIN)
    for (int64_t blk = 0; blk < blocks; blk++) {
        int64_t g = blk % c.G, off = blk * len;
        double mean, var;
        stats_any(x, off, len, &mean, &var);
        double inv = 1.0 / sqrt(var + eps);
        for (int64_t k = 0; k < cpg; k++) {
            int64_t pi = c.per_group_params ? g : g * cpg + k;
            affine_any(x, y, off + k * c.HW, c.HW, mean, onr_get_f64(s, pi) * inv,
                       onr_get_f64(b, pi));
        }
    }
    return ONR_OK;
}

static int in_shape(onr_kctx *ctx) { return gn_shape_common(ctx, 1); }
static int in_run(onr_kctx *ctx) { return gn_run_common(ctx, 1); }
static int gn_shape(onr_kctx *ctx) { return gn_shape_common(ctx, 0); }
static int gn_run(onr_kctx *ctx) { return gn_run_common(ctx, 0); }

const onr_op_impl onr_impl_instance_norm = {.shape = in_shape, .run = in_run, .types = ONR_TYPES_FLOAT};
const onr_op_impl onr_impl_group_norm = {.shape = gn_shape, .run = gn_run, .types = ONR_TYPES_FLOAT};

/* ---- LayerNormalization ---------------------------------------------------- */

/* Normalizes over dims [axis, rank) ("the normalized shape", n elements);
 * Scale and B broadcast unidirectionally to that shape. Optional outputs
 * Mean and InvStdDev have X's dims with the normalized ones set to 1 and the
 * type named by stash_type. Scale and B are expanded once into scratch
 * unless they already are float32 arrays of n values (the usual case). */

typedef struct ln_cfg {
    int axis;
    int64_t outer, n;
} ln_cfg;

static int ln_config(onr_kctx *ctx, ln_cfg *c)
{
    const onr_tensor *x = ctx->in[0];
    int st = onr_norm_axis(ctx->err, onr_attr_int(ctx->node, "axis", -1), x->rank, &c->axis);
    if (st) return st;
    if (x->rank == 0)
        return onr_seterr(ctx->err, ONR_E_MODEL, "X must have rank >= 1, it is a scalar");
    c->outer = dims_prod(x, 0, c->axis);
    c->n = dims_prod(x, c->axis, x->rank);
    return ONR_OK;
}

/* Does parameter p broadcast to the normalized shape of x? */
static int ln_check_param(onr_kctx *ctx, int i, const ln_cfg *c)
{
    const onr_tensor *x = ctx->in[0], *p = ctx->in[i];
    int nr = x->rank - c->axis;
    for (int d = 0; d < p->rank; d++) {
        int xd = d - (p->rank - nr); /* dim of the normalized shape it lines up with */
        int64_t want = xd >= 0 ? x->dims[c->axis + xd] : 1;
        if (p->dims[d] != want && p->dims[d] != 1) {
            char s1[256], s2[256];
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "%s %s does not broadcast to the normalized shape %s",
                              i == 1 ? "Scale" : "B", onr_fmt_dims(s1, sizeof s1, p->dims, p->rank),
                              onr_fmt_dims(s2, sizeof s2, x->dims + c->axis, nr));
        }
    }
    return ONR_OK;
}

static int ln_shape(onr_kctx *ctx)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_FLOAT);
    if (st) return st;
    ln_cfg c;
    if ((st = ln_config(ctx, &c))) return st;
    if ((st = onr_check_input(ctx, 1, ONR_TYPES_FLOAT)) || (st = ln_check_param(ctx, 1, &c)))
        return st;
    if (ctx->n_in > 2 && ctx->in[2] &&
        ((st = onr_check_input(ctx, 2, ONR_TYPES_FLOAT)) || (st = ln_check_param(ctx, 2, &c))))
        return st;
    int64_t stash = onr_attr_int(ctx->node, "stash_type", 1);
    if (stash != ONR_FLOAT && stash != ONR_DOUBLE && stash != ONR_FLOAT16 && stash != ONR_BFLOAT16)
        return onr_seterr(ctx->err, ONR_E_MODEL, "stash_type %lld is not a float type",
                          (long long)stash);
    if (ctx->n_out > 3)
        return onr_seterr(ctx->err, ONR_E_MODEL, "has %d outputs, at most 3 allowed", ctx->n_out);
    if ((st = onr_set_out_like(ctx, 0, 0))) return st;
    const onr_tensor *x = ctx->in[0];
    int64_t sd[ONR_MAX_RANK];
    for (int d = 0; d < x->rank; d++) sd[d] = d < c.axis ? x->dims[d] : 1;
    for (int i = 1; i < ctx->n_out; i++)
        if ((st = onr_set_out(ctx, i, (onr_dtype)stash, x->rank, sd))) return st;
    return ONR_OK;
}

/* float32 params usable in place: present, float, and exactly the n values
 * (an absent B is expanded to zeros). */
static int ln_param_direct(const onr_tensor *p, const ln_cfg *c)
{
    return p && p->dtype == ONR_FLOAT && p->numel == c->n;
}

static int ln_prepare(onr_kctx *ctx, size_t *scratch)
{
    ln_cfg c;
    int st = ln_config(ctx, &c);
    if (st) return st;
    const onr_tensor *b = ctx->n_in > 2 ? ctx->in[2] : NULL;
    size_t esz = ctx->in[0]->dtype == ONR_FLOAT ? sizeof(float) : sizeof(double);
    *scratch = 0;
    if (!(ctx->in[0]->dtype == ONR_FLOAT && ln_param_direct(ctx->in[1], &c))) *scratch += (size_t)c.n * esz;
    if (!(ctx->in[0]->dtype == ONR_FLOAT && ln_param_direct(b, &c))) *scratch += (size_t)c.n * esz;
    return ONR_OK;
}

/* Expand parameter p (or zeros when absent) to the n values of the
 * normalized shape, as float (f32 != 0) or double. */
static void ln_expand(const onr_tensor *x, const ln_cfg *c, const onr_tensor *p, void *dst, int f32)
{
    int nr = x->rank - c->axis;
    const int64_t *nd = x->dims + c->axis;
    int64_t pdims[ONR_MAX_RANK], str[ONR_MAX_RANK], idx[ONR_MAX_RANK] = {0};
    int pr = 0;
    if (p) /* drop leading dims beyond the normalized rank (they are all 1) */
        for (int d = p->rank > nr ? p->rank - nr : 0; d < p->rank; d++) pdims[pr++] = p->dims[d];
    if (p) onr_bcast_strides(pdims, pr, nd, nr, str);
    for (int64_t i = 0; i < c->n; i++) {
        double v = 0;
        if (p) {
            int64_t off = 0;
            for (int d = 0; d < nr; d++) off += idx[d] * str[d];
            v = onr_get_f64(p, off);
            for (int d = nr - 1; d >= 0 && ++idx[d] == nd[d]; d--) idx[d] = 0;
        }
        if (f32) ((float *)dst)[i] = (float)v;
        else ((double *)dst)[i] = v;
    }
}

static void ln_row_f32(const float *x, float *y, int64_t n, const float *s, const float *b,
                       double eps, double *mean_out, double *inv_out)
{
    double mean, var;
    stats_f32(x, n, &mean, &var);
    double inv = 1.0 / sqrt(var + eps);
    float fm = (float)mean, fi = (float)inv;
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - fm) * fi * s[i] + b[i];
    *mean_out = mean;
    *inv_out = inv;
}

static void ln_row_any(const onr_tensor *x, onr_tensor *y, int64_t off, int64_t n, const double *s,
                       const double *b, double eps, double *mean_out, double *inv_out)
{
    double mean, var;
    stats_any(x, off, n, &mean, &var);
    double inv = 1.0 / sqrt(var + eps);
    for (int64_t i = 0; i < n; i++)
        onr_set_f64(y, off + i, (onr_get_f64(x, off + i) - mean) * inv * s[i] + b[i]);
    *mean_out = mean;
    *inv_out = inv;
}

static int ln_run(onr_kctx *ctx)
{
    const onr_tensor *x = ctx->in[0], *sc = ctx->in[1];
    const onr_tensor *bi = ctx->n_in > 2 ? ctx->in[2] : NULL;
    onr_tensor *y = ctx->out[0];
    onr_tensor *om = ctx->n_out > 1 ? ctx->out[1] : NULL, *oi = ctx->n_out > 2 ? ctx->out[2] : NULL;
    ln_cfg c;
    int st = ln_config(ctx, &c);
    if (st) return st;
    double eps = onr_attr_float(ctx->node, "epsilon", 1e-5f);
    if (x->numel == 0) { /* the statistics of nothing (outputs may still have rows) */
        for (int64_t o = 0; om && o < om->numel; o++) onr_set_f64(om, o, NAN);
        for (int64_t o = 0; oi && o < oi->numel; o++) onr_set_f64(oi, o, NAN);
        return ONR_OK;
    }
    int f32 = x->dtype == ONR_FLOAT;
    char *scr = ctx->scratch;
    size_t esz = f32 ? sizeof(float) : sizeof(double);
    const void *s = sc->data, *b = bi ? bi->data : NULL;
    if (!(f32 && ln_param_direct(sc, &c))) {
        ln_expand(x, &c, sc, scr, f32);
        s = scr;
        scr += (size_t)c.n * esz;
    }
    if (!(f32 && ln_param_direct(bi, &c))) {
        ln_expand(x, &c, bi, scr, f32);
        b = scr;
    }
#pragma omp parallel for num_threads(ctx->nthreads) if (x->numel * 2 > ONR_PAR_MIN)
    for (int64_t o = 0; o < c.outer; o++) {
        double mean, inv;
        if (f32)
            ln_row_f32((const float *)x->data + o * c.n, (float *)y->data + o * c.n, c.n, s, b, eps,
                       &mean, &inv);
        else
            ln_row_any(x, y, o * c.n, c.n, s, b, eps, &mean, &inv);
        if (om) onr_set_f64(om, o, mean);
        if (oi) onr_set_f64(oi, o, inv);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_layer_norm = {.shape = ln_shape, .prepare = ln_prepare, .run = ln_run, .types = ONR_TYPES_FLOAT};

/* ---- LpNormalization ------------------------------------------------------- */

/* y = x / ||x||_p along axis (p = 1 or 2); a zero norm gives zeros (the
 * opset-22 text; older specs left it undefined). */

static int lp_geometry(onr_kctx *ctx, int64_t *outer, int64_t *n, int64_t *inner, int *p)
{
    const onr_tensor *x = ctx->in[0];
    if (x->rank < 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input must have rank >= 1, it is a scalar");
    int axis;
    int st = onr_norm_axis(ctx->err, onr_attr_int(ctx->node, "axis", -1), x->rank, &axis);
    if (st) return st;
    int64_t pv = onr_attr_int(ctx->node, "p", 2);
    if (pv != 1 && pv != 2)
        return onr_seterr(ctx->err, ONR_E_MODEL, "p must be 1 or 2, not %lld", (long long)pv);
    *p = (int)pv;
    *outer = dims_prod(x, 0, axis);
    *n = x->dims[axis];
    *inner = dims_prod(x, axis + 1, x->rank);
    return ONR_OK;
}

static int lp_shape(onr_kctx *ctx)
{
    int st = onr_check_input(ctx, 0, ONR_TYPES_FLOAT);
    if (st) return st;
    int64_t outer, n, inner;
    int p;
    if ((st = lp_geometry(ctx, &outer, &n, &inner, &p))) return st;
    return onr_set_out_like(ctx, 0, 0);
}

static void lp_line(const onr_tensor *x, onr_tensor *y, int64_t off, int64_t n, int64_t ld, int p)
{
    double s = 0;
    if (x->dtype == ONR_FLOAT && ld == 1) {
        const float *px = (const float *)x->data + off;
        float *py = (float *)y->data + off;
        for (int64_t i = 0; i < n; i++) s += p == 1 ? fabs((double)px[i]) : (double)px[i] * px[i];
        double norm = p == 1 ? s : sqrt(s);
        float inv = norm > 0 ? (float)(1.0 / norm) : 0.f;
        for (int64_t i = 0; i < n; i++) py[i] = px[i] * inv;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double v = onr_get_f64(x, off + i * ld);
        s += p == 1 ? fabs(v) : v * v;
    }
    double norm = p == 1 ? s : sqrt(s);
    for (int64_t i = 0; i < n; i++)
        onr_set_f64(y, off + i * ld, norm > 0 ? onr_get_f64(x, off + i * ld) / norm : 0.0);
}

static int lp_run(onr_kctx *ctx)
{
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    int64_t outer = 0, n = 0, inner = 1;
    int p = 2;
    int st = lp_geometry(ctx, &outer, &n, &inner, &p);
    if (st) return st;
    int64_t lines = outer * inner;
#pragma omp parallel for num_threads(ctx->nthreads) if (x->numel * 2 > ONR_PAR_MIN)
    for (int64_t l = 0; l < lines; l++) {
        int64_t o = l / inner, c = l % inner;
        lp_line(x, y, o * n * inner + c, n, inner, p);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_lp_norm = {.shape = lp_shape, .run = lp_run, .types = ONR_TYPES_FLOAT};
