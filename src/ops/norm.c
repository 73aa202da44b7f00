/*
 * norm.c - normalization operators: BatchNormalization, InstanceNormalization,
 * GroupNormalization, LayerNormalization, LpNormalization and the project's
 * SkipLayerNormalization (org.onnxrun, 1: residual add + LayerNormalization).
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
 * onr_get_f64 or converted once (at create when they are constants,
 * else into scratch).
 *
 * create reads and checks the attributes and packs constant parameters;
 * reshape checks the input shapes against them and stores the geometry
 * (N, C, HW, outer/n/inner) in the params; run only computes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm/gemm.h"
#include "ops/norm.h"
#include "ops/ops.h"

/* ---- shared pieces --------------------------------------------------------- */

/* Which build of the float32 row and block kernels runs: the AVX-512 one
 * (norm-avx512.c) where the CPU has it, unless onr_cln_force_ref(1). */
static _Atomic int norm_isa = -1;
void onr_cln_force_ref(int on) { norm_isa = on == 1; }
static int norm_avx512(void) { return norm_isa != 1 && onr_cpu_supports("avx512"); }

typedef void (*ln_row_fn)(const float *, float *, int64_t, const float *, const float *, double,
                          double *, double *);
typedef void (*sln_row_fn)(const float *, const float *, const float *, const float *,
                           const float *, float *, float *, int64_t, double, double *, double *);

/* Mean and population variance of n contiguous float32 values; 8 double
 * lanes in a fixed order so the compiler vectorizes without reassociating. */
/* Population variance of n float32 values around their mean m (the second
 * pass of stats_f32). */
static double var_f32(const float *x, int64_t n, double m)
{
    double a[8] = {0}, t = 0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            double d = x[i + k] - m;
            a[k] += d * d;
        }
    for (; i < n; i++) t += (x[i] - m) * (x[i] - m);
    return (((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) + t) / (double)n;
}

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
    *mean = m;
    *var = var_f32(x, n, m);
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

/* epsilon must be a finite value >= 0 (sqrt(var + eps) of a negative or
 * NaN epsilon is NaN for every output). */
static int read_eps(onr_create_ctx *c, double *eps)
{
    float e = onr_attr_float(c->node, "epsilon", 1e-5f);
    if (!isfinite(e) || e < 0)
        return onr_seterr(c->err, ONR_E_MODEL, "epsilon %g must be finite and >= 0", (double)e);
    *eps = e;
    return ONR_OK;
}

static int is_float_type(onr_dtype dt)
{
    return dt == ONR_FLOAT || dt == ONR_DOUBLE || dt == ONR_FLOAT16 || dt == ONR_BFLOAT16;
}

/* stash_type: the type of the Mean / InvStdDev outputs, a float type. */
static int read_stash(onr_create_ctx *c, onr_dtype *stash)
{
    int64_t v = onr_attr_int(c->node, "stash_type", 1);
    if (v < 0 || v >= ONR_DTYPE_COUNT || !is_float_type((onr_dtype)v))
        return onr_seterr(c->err, ONR_E_MODEL, "stash_type %lld is not a float type",
                          (long long)v);
    *stash = (onr_dtype)v;
    return ONR_OK;
}

/* ---- BatchNormalization ---------------------------------------------------- */

/* Inference: y = (x - mean[c]) / sqrt(var[c] + eps) * scale[c] + B[c], run
 * as y = x * a[c] + s[c] with a = scale / sqrt(var + eps) and
 * s = B - mean * a. When scale, B, mean and var are constants (the usual
 * model) create folds them into a and s once and consumes the four inputs;
 * otherwise run computes a and s into scratch the same way, so constant and
 * activation parameters give the same results.
 * Training (opset 14+, training_mode=1): the batch's own mean and population
 * variance per channel replace the inputs, and the optional outputs carry
 * the running statistics  input * momentum + batch * (1 - momentum).
 * Opsets < 9 have `spatial`: with spatial=0 the parameters hold one value per
 * element of a (C, D1, ...) plane. */

typedef struct bn_params {
    double eps, momentum;
    int spatial, training;
    /* create, constant parameters: nfold per-channel (per-element for
     * spatial=0) multipliers and shifts, float32 for the float32 loop and
     * double for the other X types; one allocation (fold_mem) */
    int folded;
    int64_t nfold;
    const float *fscale, *fshift;
    const double *dscale, *dshift;
    void *fold_mem;
    /* reshape: X is (N, C, D1, ...), HW = D1 * ... */
    int64_t N, C, HW;
} bn_params;

static int bn_create(onr_create_ctx *c, void *params)
{
    bn_params *p = params;
    p->spatial = c->opset < 9 ? onr_attr_int(c->node, "spatial", 1) != 0 : 1;
    p->training = c->opset >= 14 && onr_attr_int(c->node, "training_mode", 0) != 0;
    int st = read_eps(c, &p->eps);
    if (st) return st;
    p->momentum = onr_attr_float(c->node, "momentum", 0.9f);
    if (p->training && !isfinite(p->momentum))
        return onr_seterr(c->err, ONR_E_MODEL, "momentum %g must be finite", p->momentum);
    if (p->training && !p->spatial)
        return onr_seterr(c->err, ONR_E_UNSUPPORTED, "training mode with spatial=0");
    if (c->n_out > 3)
        return onr_seterr(c->err, ONR_E_MODEL, "has %d outputs, at most 3 allowed", c->n_out);
    /* training reads mean and var for the running statistics and replaces
     * them by the batch's: nothing to fold */
    if (p->training || c->n_in < 5) return ONR_OK;
    const onr_tensor *k[5] = {0};
    for (int i = 1; i < 5; i++) {
        k[i] = onr_create_const(c, i);
        if (!k[i] || !is_float_type(k[i]->dtype) || k[i]->numel != k[1]->numel ||
            (k[i]->numel && !k[i]->data))
            return ONR_OK; /* reshape reports wrong shapes or types */
    }
    int64_t n = k[1]->numel;
    size_t bytes = (size_t)n * 2 * (sizeof(double) + sizeof(float));
    st = onr_create_hold(c, "folded scale and shift", bytes);
    if (st) return st;
    char *mem = malloc(bytes ? bytes : 1);
    if (!mem) return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
    double *ds = (double *)mem, *dh = ds + n;
    float *fs = (float *)(dh + n), *fh = fs + n;
    for (int64_t i = 0; i < n; i++) {
        double a = onr_get_f64(k[1], i) / sqrt(onr_get_f64(k[4], i) + p->eps);
        ds[i] = a;
        dh[i] = onr_get_f64(k[2], i) - onr_get_f64(k[3], i) * a;
        fs[i] = (float)ds[i];
        fh[i] = (float)dh[i];
    }
    p->fold_mem = mem;
    p->dscale = ds, p->dshift = dh, p->fscale = fs, p->fshift = fh;
    p->nfold = n;
    p->folded = 1;
    for (int i = 1; i < 5; i++) onr_create_consume(c, i);
    return ONR_OK;
}

static void bn_destroy(void *params)
{
    bn_params *p = params;
    free(p->fold_mem);
}

static int bn_reshape(onr_kctx *ctx, size_t *scratch)
{
    bn_params *p = ctx->params;
    *scratch = 0;
    int st = check_nc(ctx);
    if (st) return st;
    if (ctx->n_in < 5)
        return onr_seterr(ctx->err, ONR_E_MODEL, "needs 5 inputs (X, scale, B, mean, var), has %d",
                          ctx->n_in);
    const onr_tensor *x = ctx->in[0];
    p->N = x->dims[0];
    p->C = x->dims[1];
    p->HW = dims_prod(x, 2, x->rank);
    static const char *names[] = {"", "scale", "B", "mean", "var"};
    for (int i = 1; i < 5; i++) {
        if ((st = onr_check_input(ctx, i, ONR_TYPES_FLOAT))) return st;
        const onr_tensor *q = ctx->in[i];
        if (p->spatial ? (q->rank != 1 || q->dims[0] != p->C) : q->numel != p->C * p->HW)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "%s (input %d) has %lld elements (rank %d), expected %lld", names[i],
                              i, (long long)q->numel, q->rank,
                              (long long)(p->spatial ? p->C : p->C * p->HW));
    }
    int extra = 0;
    for (int i = 1; i < ctx->n_out; i++) extra |= ctx->out[i] != NULL;
    if (extra && !p->training)
        return onr_seterr(ctx->err, ctx->opset >= 14 ? ONR_E_MODEL : ONR_E_UNSUPPORTED,
                          ctx->opset >= 14 ? "outputs 1.. (running mean and var) need training_mode=1"
                                           : "the training outputs of BatchNormalization before opset 14 are not supported");
    if ((st = onr_set_out_like(ctx, 0, 0))) return st;
    for (int i = 1; i < ctx->n_out && i < 3; i++)
        if ((st = onr_set_out(ctx, i, ctx->in[i + 2]->dtype, 1, &p->C))) return st;
    /* per channel: mean, multiplier, shift and the batch variance */
    if (p->spatial && !p->folded) *scratch = (size_t)p->C * 4 * sizeof(double);
    return ONR_OK;
}

/* Per-element parameters (spatial=0): slow generic path, rare models only. */
static void bn_run_per_element(const onr_kctx *ctx, const bn_params *bp)
{
    const onr_tensor *x = ctx->in[0], *s = ctx->in[1], *b = ctx->in[2], *m = ctx->in[3],
                     *v = ctx->in[4];
    onr_tensor *y = ctx->out[0];
    int64_t plane = bp->C * bp->HW;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (x->numel * 4 > ONR_PAR_MIN)
    for (int64_t n = 0; n < bp->N; n++)
        for (int64_t p = 0; p < plane; p++) {
            double a, sh;
            if (bp->folded) {
                a = bp->dscale[p];
                sh = bp->dshift[p];
            } else {
                a = onr_get_f64(s, p) / sqrt(onr_get_f64(v, p) + bp->eps);
                sh = onr_get_f64(b, p) - onr_get_f64(m, p) * a;
            }
            onr_set_f64(y, n * plane + p, onr_get_f64(x, n * plane + p) * a + sh);
        }
}

/* Batch mean and population variance of channel ch (over N planes). */
static void bn_batch_stats(const onr_tensor *x, const bn_params *c, int64_t ch, double *mean,
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

static int bn_run(const onr_kctx *ctx)
{
    const bn_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    if (!p->spatial) {
        if (x->numel) bn_run_per_element(ctx, p);
        return ONR_OK;
    }
    int64_t C = p->C, HW = p->HW, planes = x->numel ? p->N * C : 0;
    if (!p->training) {
        const double *mul = p->dscale, *add = p->dshift;
        if (!p->folded) { /* the same fold as create's, into scratch */
            const onr_tensor *s = ctx->in[1], *b = ctx->in[2], *mi = ctx->in[3], *vi = ctx->in[4];
            double *m2 = ctx->scratch, *a2 = m2 + C;
            for (int64_t ch = 0; ch < C; ch++) {
                m2[ch] = onr_get_f64(s, ch) / sqrt(onr_get_f64(vi, ch) + p->eps);
                a2[ch] = onr_get_f64(b, ch) - onr_get_f64(mi, ch) * m2[ch];
            }
            mul = m2, add = a2;
        }
        if (x->dtype == ONR_FLOAT) {
            const float *px = x->data;
            float *py = y->data;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (x->numel > ONR_PAR_MIN)
            for (int64_t q = 0; q < planes; q++) {
                int64_t ch = q % C;
                float a = p->folded ? p->fscale[ch] : (float)mul[ch];
                float sh = p->folded ? p->fshift[ch] : (float)add[ch];
                const float *xr = px + q * HW;
                float *yr = py + q * HW;
                for (int64_t i = 0; i < HW; i++) yr[i] = xr[i] * a + sh;
            }
        } else {
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (x->numel > ONR_PAR_MIN)
            for (int64_t q = 0; q < planes; q++) {
                int64_t ch = q % C;
                affine_any(x, y, q * HW, HW, 0.0, mul[ch], add[ch]);
            }
        }
        return ONR_OK;
    }
    /* training: normalize by the batch statistics, (x - mean) * a + B */
    const onr_tensor *s = ctx->in[1], *b = ctx->in[2], *mi = ctx->in[3], *vi = ctx->in[4];
    double *mean = ctx->scratch, *mul = mean + C, *add = mul + C, *var = add + C;
    if (x->numel == 0) {
        for (int64_t ch = 0; ch < C; ch++) mean[ch] = var[ch] = 0;
    } else {
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (x->numel * 2 > ONR_PAR_MIN)
        for (int64_t ch = 0; ch < C; ch++) bn_batch_stats(x, p, ch, &mean[ch], &var[ch]);
    }
    for (int64_t ch = 0; ch < C; ch++) {
        mul[ch] = onr_get_f64(s, ch) / sqrt(var[ch] + p->eps);
        add[ch] = onr_get_f64(b, ch);
    }
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (x->numel > ONR_PAR_MIN)
    for (int64_t q = 0; q < planes; q++) {
        int64_t ch = q % C;
        affine_any(x, y, q * HW, HW, mean[ch], mul[ch], add[ch]);
    }
    double mom = p->momentum;
    for (int i = 1; i < ctx->n_out && i < 3; i++) {
        onr_tensor *o = ctx->out[i];
        if (!o) continue;
        const onr_tensor *run = i == 1 ? mi : vi;
        const double *cur = i == 1 ? mean : var;
        for (int64_t ch = 0; ch < C; ch++)
            onr_set_f64(o, ch, onr_get_f64(run, ch) * mom + cur[ch] * (1.0 - mom));
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_batch_norm = {.create = bn_create, .reshape = bn_reshape,
    .run = bn_run, .destroy = bn_destroy, .params_size = sizeof(bn_params),
    .types = ONR_TYPES_FLOAT};

/* ---- InstanceNormalization and GroupNormalization -------------------------- */

/* Both normalize a (batch, group) block of cpg channels x HW elements and
 * then scale each channel: InstanceNorm is the case groups == C. Before
 * opset 21 GroupNormalization's scale and bias are per group, after it per
 * channel. */

typedef struct gn_params {
    int instance, per_group_params;
    int64_t num_groups; /* GroupNormalization's attribute */
    double eps;
    /* reshape */
    int64_t N, C, G, HW;
} gn_params;

static int gn_create_common(onr_create_ctx *c, gn_params *p, int instance)
{
    p->instance = instance;
    p->per_group_params = !instance && c->opset < 21;
    int st = read_eps(c, &p->eps);
    if (st) return st;
    if (instance) return ONR_OK;
    if (!onr_node_attr(c->node, "num_groups"))
        return onr_seterr(c->err, ONR_E_MODEL, "attribute num_groups is required");
    p->num_groups = onr_attr_int(c->node, "num_groups", 0);
    if (p->num_groups < 1)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "num_groups %lld must be >= 1 and divide the channels",
                          (long long)p->num_groups);
    if (c->opset >= 21) { /* the statistics' type: computed in double anyway */
        onr_dtype stash;
        if ((st = read_stash(c, &stash))) return st;
    }
    return ONR_OK;
}

static int in_create(onr_create_ctx *c, void *params) { return gn_create_common(c, params, 1); }
static int gn_create(onr_create_ctx *c, void *params) { return gn_create_common(c, params, 0); }

static int gn_reshape(onr_kctx *ctx, size_t *scratch)
{
    gn_params *p = ctx->params;
    *scratch = 0;
    int st = check_nc(ctx);
    if (st) return st;
    if (ctx->n_in < 3)
        return onr_seterr(ctx->err, ONR_E_MODEL, "needs 3 inputs (X, scale, B), has %d", ctx->n_in);
    const onr_tensor *x = ctx->in[0];
    p->N = x->dims[0];
    p->C = x->dims[1];
    p->HW = dims_prod(x, 2, x->rank);
    p->G = p->instance ? p->C : p->num_groups;
    if (!p->instance && p->C % p->G != 0)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "num_groups %lld must be >= 1 and divide the %lld channels",
                          (long long)p->G, (long long)p->C);
    int64_t np = p->per_group_params ? p->G : p->C;
    if ((st = check_vec(ctx, 1, "scale", np)) || (st = check_vec(ctx, 2, "B", np))) return st;
    return onr_set_out_like(ctx, 0, 0);
}

static int gn_run(const onr_kctx *ctx)
{
    const gn_params *c = ctx->params;
    const onr_tensor *x = ctx->in[0], *s = ctx->in[1], *b = ctx->in[2];
    onr_tensor *y = ctx->out[0];
    if (x->numel == 0) return ONR_OK;
    double eps = c->eps;
    int64_t cpg = c->C / c->G, blocks = c->N * c->G, len = cpg * c->HW;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (x->numel > ONR_PAR_MIN)
    for (int64_t blk = 0; blk < blocks; blk++) {
        int64_t g = blk % c->G, off = blk * len;
        double mean, var;
        stats_any(x, off, len, &mean, &var);
        double inv = 1.0 / sqrt(var + eps);
        for (int64_t k = 0; k < cpg; k++) {
            int64_t pi = c->per_group_params ? g : g * cpg + k;
            affine_any(x, y, off + k * c->HW, c->HW, mean, onr_get_f64(s, pi) * inv,
                       onr_get_f64(b, pi));
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_instance_norm = {.create = in_create, .reshape = gn_reshape,
    .run = gn_run, .params_size = sizeof(gn_params), .types = ONR_TYPES_FLOAT};
const onr_op_impl onr_impl_group_norm = {.create = gn_create, .reshape = gn_reshape,
    .run = gn_run, .params_size = sizeof(gn_params), .types = ONR_TYPES_FLOAT};

/* ---- LayerNormalization ---------------------------------------------------- */

/* Normalizes over dims [axis, rank) ("the normalized shape", n elements);
 * Scale and B broadcast unidirectionally to that shape. Optional outputs
 * Mean and InvStdDev have X's dims with the normalized ones set to 1 and the
 * type named by stash_type. Scale and B are expanded once into scratch
 * unless they already are float32 arrays of n values (the usual case).
 * Constant float16 / bfloat16 Scale and B are widened to float32 at create
 * (exactly) and consumed, so a float32 X uses them in place too. */

typedef struct ln_params {
    int64_t axis_attr;
    double eps;
    onr_dtype stash;
    /* create: constant fp16/bf16 Scale (0) and B (1) as float32 tensors of
     * the same shape; data NULL when the input is used as it is */
    onr_tensor wide[2];
    /* reshape */
    int axis;
    int64_t outer, n;
    int direct[2]; /* the parameter is used in place as n float32 values */
} ln_params;

static int ln_create(onr_create_ctx *c, void *params)
{
    ln_params *p = params;
    p->axis_attr = onr_attr_int(c->node, "axis", -1);
    int st = read_eps(c, &p->eps);
    if (st || (st = read_stash(c, &p->stash))) return st;
    if (c->n_out > 3)
        return onr_seterr(c->err, ONR_E_MODEL, "has %d outputs, at most 3 allowed", c->n_out);
    for (int i = 1; i <= 2; i++) {
        const onr_tensor *k = onr_create_const(c, i);
        if (!k || (k->dtype != ONR_FLOAT16 && k->dtype != ONR_BFLOAT16) || k->numel == 0 ||
            !k->data || k->rank > ONR_MAX_RANK)
            continue;
        if ((st = onr_create_hold(c, "widened scale and bias", (uint64_t)k->numel * sizeof(float))))
            return st;
        float *w = malloc((size_t)k->numel * sizeof(float));
        if (!w) return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
        const uint16_t *h = k->data;
        for (int64_t e = 0; e < k->numel; e++)
            w[e] = k->dtype == ONR_FLOAT16 ? onr_half_to_float(h[e]) : onr_bf16_to_float(h[e]);
        onr_tensor *t = &p->wide[i - 1];
        t->dtype = ONR_FLOAT;
        t->rank = k->rank;
        memcpy(t->dims, k->dims, sizeof(int64_t) * (size_t)k->rank);
        t->numel = k->numel;
        t->data = w;
        onr_create_consume(c, i);
    }
    return ONR_OK;
}

static void ln_destroy(void *params)
{
    ln_params *p = params;
    free(p->wide[0].data);
    free(p->wide[1].data);
}

/* Scale (i = 1) or B (i = 2) as run reads it: the widened copy, the input,
 * or NULL for an absent B. */
static const onr_tensor *ln_param(const onr_kctx *ctx, const ln_params *p, int i)
{
    if (p->wide[i - 1].data) return &p->wide[i - 1];
    return i < ctx->n_in ? ctx->in[i] : NULL;
}

/* Does parameter p broadcast to the normalized shape of x? */
static int ln_check_param(onr_kctx *ctx, int i, int axis)
{
    const onr_tensor *x = ctx->in[0], *p = ctx->in[i];
    int nr = x->rank - axis;
    for (int d = 0; d < p->rank; d++) {
        int xd = d - (p->rank - nr); /* dim of the normalized shape it lines up with */
        int64_t want = xd >= 0 ? x->dims[axis + xd] : 1;
        if (p->dims[d] != want && p->dims[d] != 1) {
            char s1[256], s2[256];
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "%s %s does not broadcast to the normalized shape %s",
                              i == 1 ? "Scale" : "B", onr_fmt_dims(s1, sizeof s1, p->dims, p->rank),
                              onr_fmt_dims(s2, sizeof s2, x->dims + axis, nr));
        }
    }
    return ONR_OK;
}

/* float32 params usable in place: present, float, and exactly the n values
 * (an absent B is expanded to zeros, except on the float32 path). */
static int ln_param_direct(const onr_tensor *p, int64_t n)
{
    return p && p->dtype == ONR_FLOAT && p->numel == n;
}

static int ln_reshape(onr_kctx *ctx, size_t *scratch)
{
    ln_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_FLOAT);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (x->rank == 0)
        return onr_seterr(ctx->err, ONR_E_MODEL, "X must have rank >= 1, it is a scalar");
    /* axis may be r (the schema's range is [-r, r]): the function body
     * flattens X to [numel, 1], so each element is its own row */
    if (p->axis_attr == x->rank) p->axis = x->rank;
    else if ((st = onr_norm_axis(ctx->err, p->axis_attr, x->rank, &p->axis))) return st;
    p->outer = dims_prod(x, 0, p->axis);
    p->n = dims_prod(x, p->axis, x->rank);
    if ((st = onr_check_input(ctx, 1, ONR_TYPES_FLOAT)) || (st = ln_check_param(ctx, 1, p->axis)))
        return st;
    if (ctx->n_in > 2 && ctx->in[2] &&
        ((st = onr_check_input(ctx, 2, ONR_TYPES_FLOAT)) || (st = ln_check_param(ctx, 2, p->axis))))
        return st;
    if ((st = onr_set_out_like(ctx, 0, 0))) return st;
    int64_t sd[ONR_MAX_RANK];
    for (int d = 0; d < x->rank; d++) sd[d] = d < p->axis ? x->dims[d] : 1;
    for (int i = 1; i < ctx->n_out; i++)
        if ((st = onr_set_out(ctx, i, p->stash, x->rank, sd))) return st;
    int f32 = x->dtype == ONR_FLOAT;
    size_t esz = f32 ? sizeof(float) : sizeof(double);
    for (int i = 1; i <= 2; i++) {
        const onr_tensor *t = ln_param(ctx, p, i);
        /* an absent B costs nothing on the float32 path (b = NULL) */
        p->direct[i - 1] = f32 && (ln_param_direct(t, p->n) || (i == 2 && !t));
        if (!p->direct[i - 1]) *scratch += (size_t)p->n * esz;
    }
    return ONR_OK;
}

/* Expand parameter p (or zeros when absent) to the n values of the
 * normalized shape, as float (f32 != 0) or double. */
static void ln_expand(const onr_tensor *x, const ln_params *c, const onr_tensor *p, void *dst,
                      int f32)
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

/* y[i] = (x[i] - mean) * inv * s[i] + b[i] in float32 (b NULL: no shift).
 * Reads x[i], s[i], b[i] before writing y[i] and nothing after, so y may be
 * x, s or b (in-place runs). */
static void row_affine_f32(const float *x, float *y, int64_t n, const float *s, const float *b,
                           double mean, double inv)
{
    float fm = (float)mean, fi = (float)inv;
    if (b)
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] - fm) * fi * s[i] + b[i];
    else
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] - fm) * fi * s[i];
}

/* A float32 row: the statistics in two passes with double lanes
 * (stats_f32), then the output. A single pass (sums of x - x[0] and of its
 * square together) measured 40% slower on BERT rows (128 x 768, SSE2
 * build: the two sets of double lanes crowd the registers), and float
 * lanes no faster, so the two passes stay; the row is in L1 by then. */
void onr_ln_row_f32_ref(const float *x, float *y, int64_t n, const float *s, const float *b,
                        double eps, double *mean_out, double *inv_out)
{
    double mean, var;
    stats_f32(x, n, &mean, &var);
    *mean_out = mean;
    *inv_out = 1.0 / sqrt(var + eps);
    row_affine_f32(x, y, n, s, b, mean, *inv_out);
}

static void ln_row_any(const onr_tensor *x, onr_tensor *y, int64_t off, int64_t n, const double *s,
                       const double *b, double eps, double *mean_out, double *inv_out)
{
    double mean, var;
    stats_any(x, off, n, &mean, &var);
    double inv = 1.0 / sqrt(var + eps);
    /* the specification's function: Normalized is cast to X's type, then
     * scaled and shifted in that type (each product and sum rounded) */
    onr_dtype t = y->dtype;
    for (int64_t i = 0; i < n; i++) {
        double v = onr_round_to(t, (onr_get_f64(x, off + i) - mean) * inv);
        onr_set_f64(y, off + i, onr_round_to(t, v * s[i]) + b[i]);
    }
    *mean_out = mean;
    *inv_out = inv;
}

static int ln_run(const onr_kctx *ctx)
{
    const ln_params *c = ctx->params;
    const onr_tensor *x = ctx->in[0], *sc = ln_param(ctx, c, 1), *bi = ln_param(ctx, c, 2);
    onr_tensor *y = ctx->out[0];
    onr_tensor *om = ctx->n_out > 1 ? ctx->out[1] : NULL, *oi = ctx->n_out > 2 ? ctx->out[2] : NULL;
    double eps = c->eps;
    if (x->numel == 0) { /* the statistics of nothing (outputs may still have rows) */
        for (int64_t o = 0; om && o < om->numel; o++) onr_set_f64(om, o, NAN);
        for (int64_t o = 0; oi && o < oi->numel; o++) onr_set_f64(oi, o, NAN);
        return ONR_OK;
    }
    int f32 = x->dtype == ONR_FLOAT;
    char *scr = ctx->scratch;
    size_t esz = f32 ? sizeof(float) : sizeof(double);
    const void *s = sc->data, *b = bi ? bi->data : NULL;
    if (!c->direct[0]) {
        ln_expand(x, c, sc, scr, f32);
        s = scr;
        scr += (size_t)c->n * esz;
    }
    if (!c->direct[1]) {
        ln_expand(x, c, bi, scr, f32);
        b = scr;
    }
    const ln_row_fn ln_row = norm_avx512() ? onr_ln_row_f32_avx512 : onr_ln_row_f32_ref;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (x->numel * 2 > ONR_PAR_MIN)
    for (int64_t o = 0; o < c->outer; o++) {
        double mean, inv;
        if (f32)
            ln_row((const float *)x->data + o * c->n, (float *)y->data + o * c->n, c->n, s, b,
                       eps, &mean, &inv);
        else
            ln_row_any(x, y, o * c->n, c->n, s, b, eps, &mean, &inv);
        if (om) onr_set_f64(om, o, mean);
        if (oi) onr_set_f64(oi, o, inv);
    }
    return ONR_OK;
}

/* In place (Y over X, Scale or B when that block dies here and has Y's
 * byte size): a row's statistics are taken from X before any of the row is
 * written, rows are disjoint and each thread owns whole rows, and the write
 * loop reads element i of X, Scale and B before writing element i of Y.
 * Scale or B can only have Y's size on the float32 path when there is one
 * row (and then they are read in place, element for element); on the other
 * paths they were expanded into scratch before any row is written. */
const onr_op_impl onr_impl_layer_norm = {.create = ln_create, .reshape = ln_reshape,
    .run = ln_run, .destroy = ln_destroy, .params_size = sizeof(ln_params),
    .types = ONR_TYPES_FLOAT, .flags = ONR_OP_INPLACE};

/* ---- SkipLayerNormalization (org.onnxrun, 1) ------------------------------- */

/* The residual add of a transformer block and the LayerNormalization over
 * the last axis after it, in one pass over each row:
 *
 *   inputs   0 X [..., H], 1 skip (X's shape, or X's trailing dims such as
 *            [S, H] or [1, S, H] for X [B, S, H]: reused for every leading
 *            index), 2 gamma [H], 3 beta [H] (optional), 4 bias [H]
 *            (optional), all of X's type
 *   outputs  0 Y = LayerNorm(sum) * gamma + beta, X's shape
 *            1 mean, 2 inv_std_var (optional): float32, X's dims with the
 *              last set to 1 (LayerNormalization's Mean / InvStdDev)
 *            3 sum (optional) = (X + bias) + skip, X's shape: the residual
 *              stream that pre-LN blocks (GPT-2, ViT) read again
 *   attribute epsilon (default 1e-5)
 *
 * The sum is rounded to X's type before the statistics are taken, as the
 * unfused Add -> LayerNormalization does, and added in the order
 * (X + bias) + skip of the exporters' Linear-then-residual graphs, so
 * output 3 equals the unfused sum exactly on the float32 path.
 * float32 has direct loops (the sum, summed as it is written, then the
 * variance and the output while the row is in L1; the same arithmetic as
 * Add + LayerNormalization, so the fused results are bit-identical); the
 * other float types go through double accessors. */

typedef struct sln_params {
    double eps;
    /* reshape */
    int64_t rows, H, skip_rows;
} sln_params;

static int sln_create(onr_create_ctx *c, void *params)
{
    sln_params *p = params;
    int st = read_eps(c, &p->eps);
    if (st) return st;
    if (c->n_in < 3 || c->n_in > 5)
        return onr_seterr(c->err, ONR_E_MODEL, "has %d inputs, needs 3 to 5 (X, skip, gamma, beta, bias)",
                          c->n_in);
    if (c->n_out < 1 || c->n_out > 4)
        return onr_seterr(c->err, ONR_E_MODEL, "has %d outputs, 1 to 4 allowed", c->n_out);
    return ONR_OK;
}

/* Optional input i (beta, bias) or NULL. */
static const onr_tensor *sln_opt(const onr_kctx *ctx, int i)
{
    return i < ctx->n_in ? ctx->in[i] : NULL;
}

static int sln_reshape(onr_kctx *ctx, size_t *scratch)
{
    sln_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_FLOAT);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (x->rank < 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "X must have rank >= 1, it is a scalar");
    p->H = x->dims[x->rank - 1];
    p->rows = dims_prod(x, 0, x->rank - 1);
    if ((st = onr_check_input(ctx, 1, ONR_T(x->dtype)))) return st;
    /* skip: X's dims aligned at the right, leading dims of 1 allowed */
    const onr_tensor *k = ctx->in[1];
    int ok = 1, lead = 1;
    for (int d = 0; d < k->rank && ok; d++) {
        int xd = d - (k->rank - x->rank);
        if (xd < 0) ok = k->dims[d] == 1;
        else if (k->dims[d] == x->dims[xd]) lead = 0;
        else ok = lead && k->dims[d] == 1;
    }
    if (!ok || k->rank < 1 || k->dims[k->rank - 1] != p->H) {
        char s1[256], s2[256];
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "skip %s must have X's shape %s or its trailing dims",
                          onr_fmt_dims(s1, sizeof s1, k->dims, k->rank),
                          onr_fmt_dims(s2, sizeof s2, x->dims, x->rank));
    }
    p->skip_rows = p->H > 0 ? k->numel / p->H : 0;
    static const char *names[] = {"", "", "gamma", "beta", "bias"};
    for (int i = 2; i < 5; i++) {
        const onr_tensor *t = i == 2 ? ctx->in[2] : sln_opt(ctx, i);
        if (i > 2 && !t) continue;
        if ((st = onr_check_input(ctx, i, ONR_T(x->dtype))) ||
            (st = check_vec(ctx, i, names[i], p->H)))
            return st;
    }
    if ((st = onr_set_out_like(ctx, 0, 0))) return st;
    int64_t sd[ONR_MAX_RANK];
    for (int d = 0; d < x->rank; d++) sd[d] = d < x->rank - 1 ? x->dims[d] : 1;
    for (int i = 1; i < ctx->n_out && i < 3; i++)
        if ((st = onr_set_out(ctx, i, ONR_FLOAT, x->rank, sd))) return st;
    if (ctx->n_out > 3 && (st = onr_set_out_like(ctx, 3, 0))) return st;
    return ONR_OK;
}

/* One float32 row: dst = (x + bias) + skip with its statistics, then
 * y = (dst - mean) * inv * gamma + beta. dst is output 3's row or y's own
 * row. Every loop reads element i of its inputs before writing element i,
 * so y may be x or skip (in place). */
void onr_sln_row_f32_ref(const float *x, const float *k, const float *bias, const float *g,
                         const float *b, float *dst, float *y, int64_t n, double eps,
                         double *mean_out, double *inv_out)
{
    /* the sum, summed as it is written: the lanes and order of stats_f32's
     * first pass, so the statistics equal the unfused LayerNormalization's */
    double a[8] = {0}, t = 0;
    int64_t i = 0;
    if (bias)
        for (; i + 8 <= n; i += 8)
            for (int l = 0; l < 8; l++) {
                float v = (x[i + l] + bias[i + l]) + k[i + l];
                dst[i + l] = v;
                a[l] += v;
            }
    else
        for (; i + 8 <= n; i += 8)
            for (int l = 0; l < 8; l++) {
                float v = x[i + l] + k[i + l];
                dst[i + l] = v;
                a[l] += v;
            }
    for (; i < n; i++) {
        float v = (bias ? x[i] + bias[i] : x[i]) + k[i];
        dst[i] = v;
        t += v;
    }
    double mean = (((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) + t) / (double)n;
    double var = var_f32(dst, n, mean);
    *mean_out = mean;
    *inv_out = 1.0 / sqrt(var + eps);
    row_affine_f32(dst, y, n, g, b, mean, *inv_out);
}

/* Any float type, in double: the reference path. */
static void sln_row_any(const onr_tensor *x, const onr_tensor *k, const onr_tensor *bias,
                        const onr_tensor *g, const onr_tensor *b, onr_tensor *dst, onr_tensor *y,
                        int64_t xo, int64_t ko, int64_t n, double eps, double *mean_out,
                        double *inv_out)
{
    for (int64_t i = 0; i < n; i++) {
        /* read everything element i needs before writing it (in place) */
        double xv = onr_get_f64(x, xo + i), kv = onr_get_f64(k, ko + i);
        if (bias) xv = onr_round_to(dst->dtype, xv + onr_get_f64(bias, i));
        onr_set_f64(dst, xo + i, xv + kv); /* rounded to X's type */
    }
    double mean, var;
    stats_any(dst, xo, n, &mean, &var);
    double inv = 1.0 / sqrt(var + eps);
    for (int64_t i = 0; i < n; i++)
        onr_set_f64(y, xo + i, (onr_get_f64(dst, xo + i) - mean) * inv * onr_get_f64(g, i) +
                                   (b ? onr_get_f64(b, i) : 0.0));
    *mean_out = mean;
    *inv_out = inv;
}

static int sln_run(const onr_kctx *ctx)
{
    const sln_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0], *k = ctx->in[1], *g = ctx->in[2], *b = sln_opt(ctx, 3),
                     *bias = sln_opt(ctx, 4);
    onr_tensor *y = ctx->out[0];
    onr_tensor *om = ctx->n_out > 1 ? ctx->out[1] : NULL, *oi = ctx->n_out > 2 ? ctx->out[2] : NULL;
    onr_tensor *os = ctx->n_out > 3 ? ctx->out[3] : NULL;
    onr_tensor *dst = os ? os : y;
    int64_t H = p->H;
    if (x->numel == 0) {
        for (int64_t o = 0; om && o < om->numel; o++) onr_set_f64(om, o, NAN);
        for (int64_t o = 0; oi && o < oi->numel; o++) onr_set_f64(oi, o, NAN);
        return ONR_OK;
    }
    int f32 = x->dtype == ONR_FLOAT;
    const sln_row_fn sln_row = norm_avx512() ? onr_sln_row_f32_avx512 : onr_sln_row_f32_ref;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (x->numel * 3 > ONR_PAR_MIN)
    for (int64_t o = 0; o < p->rows; o++) {
        double mean, inv;
        int64_t xo = o * H, ko = (o % p->skip_rows) * H;
        if (f32)
            sln_row((const float *)x->data + xo, (const float *)k->data + ko,
                        bias ? (const float *)bias->data : NULL, g->data,
                        b ? (const float *)b->data : NULL, (float *)dst->data + xo,
                        (float *)y->data + xo, H, p->eps, &mean, &inv);
        else
            sln_row_any(x, k, bias, g, b, dst, y, xo, ko, H, p->eps, &mean, &inv);
        if (om) ((float *)om->data)[o] = (float)mean;
        if (oi) ((float *)oi->data)[o] = (float)inv;
    }
    return ONR_OK;
}

/* In place: Y (output 0) over X or skip when that block dies here (same
 * byte size, so skip is not broadcast): see onr_sln_row_f32_ref / sln_row_any,
 * which read element i before writing element i and finish a row's sum and
 * statistics before its output. */
const onr_op_impl onr_impl_skip_layer_norm = {.create = sln_create, .reshape = sln_reshape,
    .run = sln_run, .params_size = sizeof(sln_params), .types = ONR_TYPES_FLOAT,
    .flags = ONR_OP_INPLACE};

/* ---- ChannelLayerNormalization (org.onnxrun, 1) ---------------------------- */

/* LayerNormalization over the channel axis of X [N, C, D1, ..., Dk]:
 *
 *   inputs   0 X float32 [N, C, ...] (rank >= 2), 1 Scale [C], 2 B [C]
 *            (optional), float32
 *   output   0 Y: X's shape (channels_last 0), or [N, D1, ..., Dk, C]
 *            (channels_last 1)
 *   attributes epsilon (default 1e-5), channels_last (default 0)
 *
 * It is Transpose(X, [0, 2, ..., r-1, 1]) -> LayerNormalization (axis -1)
 * [-> Transpose back, [0, r-1, 1, ..., r-2]]: what ConvNeXt exports around
 * every LayerNorm, which the planner (fuse_norm.c) turns into this. Each
 * position's statistics are onr_ln_row_f32_ref's (double sums in the same 8 lanes
 * over the channels, the same affine step in float32), so Y is bit for bit
 * the unfused graph's; the channel rows of 16 positions are read together,
 * so X is read in place with no transposed copy. */
typedef struct cln_params {
    double eps;
    int last;
    int64_t N, C, P; /* reshape: batch, channels, positions per channel */
} cln_params;

static int cln_create(onr_create_ctx *c, void *params)
{
    cln_params *p = params;
    int st = read_eps(c, &p->eps);
    if (st) return st;
    int64_t last = onr_attr_int(c->node, "channels_last", 0);
    if (last != 0 && last != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "channels_last must be 0 or 1, got %lld",
                          (long long)last);
    p->last = (int)last;
    return ONR_OK;
}

static int cln_vec(onr_kctx *ctx, int i, int64_t C, const char *what)
{
    const onr_tensor *t = ctx->in[i];
    if (t->dtype == ONR_FLOAT && t->rank == 1 && t->dims[0] == C) return ONR_OK;
    char s1[256];
    return onr_seterr(ctx->err, ONR_E_MODEL, "%s must be float32 [%lld], got %s %s", what,
                      (long long)C, onr_dtype_name(t->dtype), onr_fmt_dims(s1, sizeof s1, t->dims, t->rank));
}

static int cln_reshape(onr_kctx *ctx, size_t *scratch)
{
    cln_params *p = ctx->params;
    *scratch = 0;
    if (ctx->n_in < 2 || ctx->n_in > 3 || !ctx->in[0] || !ctx->in[1])
        return onr_seterr(ctx->err, ONR_E_MODEL, "takes X, Scale and an optional B, got %d inputs",
                          ctx->n_in);
    int st = onr_check_input(ctx, 0, ONR_T(ONR_FLOAT));
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (x->rank < 2)
        return onr_seterr(ctx->err, ONR_E_MODEL, "X must have rank >= 2 ([N, C, ...]), it has %d",
                          x->rank);
    p->N = x->dims[0];
    p->C = x->dims[1];
    p->P = dims_prod(x, 2, x->rank);
    if ((st = cln_vec(ctx, 1, p->C, "Scale"))) return st;
    if (ctx->n_in > 2 && ctx->in[2] && (st = cln_vec(ctx, 2, p->C, "B"))) return st;
    if (!p->last) return onr_set_out_like(ctx, 0, 0);
    int64_t yd[ONR_MAX_RANK];
    yd[0] = p->N;
    for (int d = 2; d < x->rank; d++) yd[d - 1] = x->dims[d];
    yd[x->rank - 1] = p->C;
    return onr_set_out(ctx, 0, ONR_FLOAT, x->rank, yd);
}

/* The block kernel (norm-cln.h), baseline build; the AVX-512 one is
 * norm-avx512.c's, chosen once by CPU. */
#define ONR_CLN_B 16
#define CLN_BLOCK onr_cln_block_ref
#include "ops/norm-cln.h"
#undef CLN_BLOCK

typedef void (*cln_block_fn)(const float *, float *, int64_t, int64_t, int64_t, int, const float *,
                             const float *, double, int);
static cln_block_fn cln_pick(void)
{
    return norm_avx512() ? onr_cln_block_avx512 : onr_cln_block_ref;
}

static int cln_run(const onr_kctx *ctx)
{
    const cln_params *p = ctx->params;
    const float *x = ctx->in[0]->data, *s = ctx->in[1]->data;
    const float *b = ctx->n_in > 2 && ctx->in[2] ? ctx->in[2]->data : NULL;
    float *y = ctx->out[0]->data;
    const int64_t C = p->C, P = p->P, nblk = (P + ONR_CLN_B - 1) / ONR_CLN_B;
    if (p->N == 0 || C == 0 || P == 0) return ONR_OK;
    const int64_t units = p->N * nblk;
    const cln_block_fn block = cln_pick();
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (p->N * C * P * 3 > ONR_PAR_MIN)
    for (int64_t u = 0; u < units; u++) {
        int64_t n = u / nblk, p0 = u % nblk * ONR_CLN_B;
        int nb = (int)(P - p0 < ONR_CLN_B ? P - p0 : ONR_CLN_B);
        block(x + n * C * P, y + n * C * P, C, P, p0, nb, s, b, p->eps, p->last);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_channel_layer_norm = {.create = cln_create, .reshape = cln_reshape,
    .run = cln_run, .params_size = sizeof(cln_params), .types = ONR_T(ONR_FLOAT)};

/* ---- LpNormalization ------------------------------------------------------- */

/* y = x / ||x||_p along axis (p = 1 or 2); a zero norm gives zeros (the
 * opset-22 text; older specs left it undefined). */

typedef struct lp_params {
    int64_t axis_attr;
    int p;
    int64_t outer, n, inner; /* reshape */
} lp_params;

static int lp_create(onr_create_ctx *c, void *params)
{
    lp_params *p = params;
    p->axis_attr = onr_attr_int(c->node, "axis", -1);
    int64_t pv = onr_attr_int(c->node, "p", 2);
    if (pv != 1 && pv != 2)
        return onr_seterr(c->err, ONR_E_MODEL, "p must be 1 or 2, not %lld", (long long)pv);
    p->p = (int)pv;
    return ONR_OK;
}

static int lp_reshape(onr_kctx *ctx, size_t *scratch)
{
    lp_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_FLOAT);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (x->rank < 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input must have rank >= 1, it is a scalar");
    int axis;
    if ((st = onr_norm_axis(ctx->err, p->axis_attr, x->rank, &axis))) return st;
    p->outer = dims_prod(x, 0, axis);
    p->n = x->dims[axis];
    p->inner = dims_prod(x, axis + 1, x->rank);
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

static int lp_run(const onr_kctx *ctx)
{
    const lp_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    int64_t lines = p->outer * p->inner;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (x->numel * 2 > ONR_PAR_MIN)
    for (int64_t l = 0; l < lines; l++) {
        int64_t o = l / p->inner, c = l % p->inner;
        lp_line(x, y, o * p->n * p->inner + c, p->n, p->inner, p->p);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_lp_norm = {.create = lp_create, .reshape = lp_reshape, .run = lp_run,
    .params_size = sizeof(lp_params), .types = ONR_TYPES_FLOAT};
