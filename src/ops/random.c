/*
 * random.c - the random operators: RandomNormal, RandomUniform,
 * RandomNormalLike, RandomUniformLike (1, 22), Bernoulli (15, 22),
 * Multinomial (7, 22) and Dropout from opset 12 (12, 13, 22), whose
 * training mode draws a mask. Opset 22 only adds bfloat16 to the random
 * ops' types (Dropout has it from 13); bfloat16 below that is refused.
 *
 * The generator is counter based: draw i of a run is SplitMix64's output
 * for state key + (i + 1) * golden, so element i's value depends only on
 * the key and i - never on which thread computes it or in which order - and
 * a run is the same at any thread count. The key comes from the op's seed
 * attribute when it has one (the same seed gives the same output, every
 * run, on every machine), otherwise from a fresh value per run (clock,
 * process id, a global counter), so unseeded runs differ. The values are
 * not numpy's: the ONNX suite's cases that compare exact draws of numpy's
 * Mersenne Twister stay expected failures.
 *
 * Uniform draws use the top 53 bits; normal draws use Box-Muller on two
 * uniforms of their own (draws 2i and 2i+1). Every random op is flagged
 * ONR_OP_NOFOLD: it is never evaluated at load.
 */
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ops/ops.h"

#define RND_PI 3.14159265358979323846

/* ---- the generator ----------------------------------------------------------- */

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rnd_u64(uint64_t key, uint64_t i)
{
    return mix64(key + (i + 1) * 0x9E3779B97F4A7C15ull);
}

/* Uniform in [0, 1). */
static inline double rnd_unit(uint64_t key, uint64_t i)
{
    return (double)(rnd_u64(key, i) >> 11) * 0x1.0p-53;
}

/* Standard normal from draws 2i and 2i+1. */
static inline double rnd_normal(uint64_t key, uint64_t i)
{
    double u1 = 1.0 - rnd_unit(key, 2 * i); /* (0, 1] */
    double u2 = rnd_unit(key, 2 * i + 1);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * RND_PI * u2);
}

/* The seed, or a new key per run. */
typedef struct rnd_seed {
    int seeded;
    uint64_t key;
} rnd_seed;

/* 0: unseeded runs draw from the clock; else from this key and the run
 * count alone (onr_random_fix_unseeded). */
static _Atomic uint64_t g_unseeded_key;

void onr_random_fix_unseeded(uint64_t key)
{
    atomic_store_explicit(&g_unseeded_key, key, memory_order_relaxed);
}

static uint64_t rnd_key(const rnd_seed *s, const void *salt)
{
    if (s->seeded) return s->key;
    static _Atomic uint64_t runs;
    uint64_t fixed = atomic_load_explicit(&g_unseeded_key, memory_order_relaxed);
    if (fixed) return mix64(fixed ^ mix64(atomic_fetch_add(&runs, 1) + 1));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t k = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    k ^= (uint64_t)getpid() << 40;
    k ^= mix64(atomic_fetch_add(&runs, 1) + 1);
    k ^= mix64((uint64_t)(uintptr_t)salt);
    return mix64(k);
}

/* seed: a float attribute (an int one for Dropout). */
static void read_seed(onr_create_ctx *c, rnd_seed *s)
{
    const onr_attr *a = onr_node_attr(c->node, "seed");
    s->seeded = a != NULL;
    if (!a) return;
    uint64_t bits;
    if (a->type == ONR_ATTR_INT) {
        bits = (uint64_t)a->i;
    } else {
        double d = a->f; /* by value, so 0.0 and -0.0 (and 1 as int or float) agree */
        d = d == 0 ? 0 : d;
        if (d == floor(d) && fabs(d) < 9.0e15) {
            bits = (uint64_t)(int64_t)d;
        } else {
            memcpy(&bits, &d, sizeof bits);
            bits ^= 0x5DEECE66Dull;
        }
    }
    s->key = mix64(bits ^ 0x6A09E667F3BCC909ull);
}

static int is_float_dt(onr_dtype dt)
{
    return dt == ONR_FLOAT || dt == ONR_DOUBLE || dt == ONR_FLOAT16 || dt == ONR_BFLOAT16;
}

/* A float output dtype allowed at this opset (bfloat16 from 22). */
static int check_float_dtype(onr_err *err, int64_t opset, int64_t v, const char *what)
{
    if (v <= 0 || v >= ONR_DTYPE_COUNT || !is_float_dt((onr_dtype)v) ||
        (v == ONR_BFLOAT16 && opset < 22))
        return onr_seterr(err, ONR_E_MODEL, "%s %lld is not an allowed type here (float16, "
                          "float, double%s)", what, (long long)v,
                          opset >= 22 ? ", bfloat16" : "; bfloat16 from opset 22");
    return ONR_OK;
}

/* Input types of the ops whose input is a float tensor, per opset. */
static int check_float_input(onr_kctx *ctx, int i)
{
    int st = onr_check_input(ctx, i, ONR_TYPES_FLOAT);
    if (st) return st;
    if (ctx->in[i]->dtype == ONR_BFLOAT16 && ctx->opset < 22)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                          "input %d is bfloat16, allowed from opset 22 (this node is opset %lld)",
                          i, (long long)ctx->opset);
    return ONR_OK;
}

/* ---- RandomNormal, RandomUniform and their *Like forms --------------------- */

typedef struct rnd_params {
    int normal;  /* else uniform */
    int like;    /* shape (and maybe type) from input 0 */
    int has_dtype;
    onr_dtype dt;
    double a, b; /* normal: mean, scale; uniform: low, high */
    int rank;
    int64_t dims[ONR_MAX_RANK];
    rnd_seed seed;
} rnd_params;

static int rnd_create(onr_create_ctx *c, rnd_params *p, int normal, int like)
{
    p->normal = normal, p->like = like;
    read_seed(c, &p->seed);
    if (normal) {
        p->a = onr_attr_float(c->node, "mean", 0.f);
        p->b = onr_attr_float(c->node, "scale", 1.f);
    } else {
        p->a = onr_attr_float(c->node, "low", 0.f);
        p->b = onr_attr_float(c->node, "high", 1.f);
    }
    if (!isfinite(p->a) || !isfinite(p->b))
        return onr_seterr(c->err, ONR_E_MODEL, "attributes %s must be finite (%g, %g)",
                          normal ? "mean and scale" : "low and high", p->a, p->b);
    if (!normal && p->b < p->a)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute high (%g) is below low (%g)", p->b, p->a);
    const onr_attr *d = onr_node_attr(c->node, "dtype");
    p->has_dtype = d != NULL;
    p->dt = ONR_FLOAT;
    if (d) {
        int st = check_float_dtype(c->err, c->opset, d->i, "attribute dtype");
        if (st) return st;
        p->dt = (onr_dtype)d->i;
    }
    if (!like) {
        size_t n = 0;
        const onr_attr *sa = onr_node_attr(c->node, "shape");
        const int64_t *s = onr_attr_ints(c->node, "shape", &n);
        if (!sa || sa->type != ONR_ATTR_INTS)
            return onr_seterr(c->err, ONR_E_MODEL, "attribute shape (ints) is required");
        if (n > ONR_MAX_RANK)
            return onr_seterr(c->err, ONR_E_UNSUPPORTED, "attribute shape has rank %zu, at most %d",
                              n, ONR_MAX_RANK);
        for (size_t i = 0; i < n; i++) {
            if (s[i] < 0)
                return onr_seterr(c->err, ONR_E_MODEL, "attribute shape has a negative dim %lld",
                                  (long long)s[i]);
            p->dims[i] = s[i];
        }
        p->rank = (int)n;
    }
    return ONR_OK;
}

static int rn_create(onr_create_ctx *c, void *p) { return rnd_create(c, p, 1, 0); }
static int ru_create(onr_create_ctx *c, void *p) { return rnd_create(c, p, 0, 0); }
static int rnl_create(onr_create_ctx *c, void *p) { return rnd_create(c, p, 1, 1); }
static int rul_create(onr_create_ctx *c, void *p) { return rnd_create(c, p, 0, 1); }

static int rnd_reshape(onr_kctx *ctx, size_t *scratch)
{
    rnd_params *p = ctx->params;
    *scratch = 0;
    if (!p->like) return onr_set_out(ctx, 0, p->dt, p->rank, p->dims);
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    onr_dtype dt = p->dt;
    if (!p->has_dtype) {
        if ((st = check_float_dtype(ctx->err, ctx->opset, x->dtype, "the input's type (no dtype given)")))
            return st;
        dt = x->dtype;
    }
    return onr_set_out(ctx, 0, dt, x->rank, x->dims);
}

static int rnd_run(const onr_kctx *ctx)
{
    const rnd_params *p = ctx->params;
    onr_tensor *y = ctx->out[0];
    uint64_t key = rnd_key(&p->seed, p);
    int64_t n = y->numel;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (n * 16 > ONR_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        double v = p->normal ? p->a + p->b * rnd_normal(key, (uint64_t)i)
                             : p->a + (p->b - p->a) * rnd_unit(key, (uint64_t)i);
        if (y->dtype == ONR_FLOAT)
            ((float *)y->data)[i] = (float)v;
        else
            onr_set_f64(y, i, v);
    }
    return ONR_OK;
}

#define RND_IMPL(sym, cr, tps)                                                                   \
    const onr_op_impl onr_impl_##sym = {.create = cr, .reshape = rnd_reshape, .run = rnd_run,   \
        .params_size = sizeof(rnd_params), .types = tps, .flags = ONR_OP_NOFOLD};
RND_IMPL(random_normal, rn_create, 0)
RND_IMPL(random_uniform, ru_create, 0)
RND_IMPL(random_normal_like, rnl_create, ONR_TYPES_ALL)
RND_IMPL(random_uniform_like, rul_create, ONR_TYPES_ALL)

/* ---- Bernoulli ------------------------------------------------------------------ */

/* y[i] = 1 with probability x[i]: draw u in [0, 1), y = u < x (a NaN or
 * non-positive x gives 0, x >= 1 gives 1). Output type: dtype, else x's. */
typedef struct bern_params {
    int has_dtype;
    onr_dtype dt;
    rnd_seed seed;
} bern_params;

#define T_BERN_OUT (ONR_TYPES_NUM | ONR_T(ONR_BOOL))

static int bern_create(onr_create_ctx *c, void *params)
{
    bern_params *p = params;
    read_seed(c, &p->seed);
    const onr_attr *d = onr_node_attr(c->node, "dtype");
    p->has_dtype = d != NULL;
    if (d) {
        if (d->i <= 0 || d->i >= ONR_DTYPE_COUNT || !(T_BERN_OUT & ONR_T((onr_dtype)d->i)) ||
            (d->i == ONR_BFLOAT16 && c->opset < 22))
            return onr_seterr(c->err, ONR_E_MODEL,
                              "attribute dtype %lld is not a numeric or bool type allowed at opset %lld",
                              (long long)d->i, (long long)c->opset);
        p->dt = (onr_dtype)d->i;
    }
    return ONR_OK;
}

static int bern_reshape(onr_kctx *ctx, size_t *scratch)
{
    bern_params *p = ctx->params;
    *scratch = 0;
    int st = check_float_input(ctx, 0);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    return onr_set_out(ctx, 0, p->has_dtype ? p->dt : x->dtype, x->rank, x->dims);
}

static int bern_run(const onr_kctx *ctx)
{
    const bern_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    uint64_t key = rnd_key(&p->seed, p);
    int64_t n = y->numel;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (n * 8 > ONR_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        double pr = onr_get_f64(x, i);
        onr_set_f64(y, i, rnd_unit(key, (uint64_t)i) < pr ? 1.0 : 0.0);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_bernoulli = {.create = bern_create, .reshape = bern_reshape,
    .run = bern_run, .params_size = sizeof(bern_params), .types = ONR_TYPES_FLOAT,
    .flags = ONR_OP_NOFOLD};

/* ---- Multinomial ------------------------------------------------------------------ */

/* input [batch, classes] of unnormalized log-probabilities; output [batch,
 * sample_size] of class indices (int32 or int64, dtype; default int32).
 * Each row's probabilities exp(x - max) are accumulated in double into
 * scratch (one row per thread); sample s of row b draws u = draw(b *
 * sample_size + s) times the total and takes the first class whose running
 * sum exceeds it (binary search). A row with no finite weight (all -inf or
 * NaN) is an error. */
typedef struct mult_params {
    int64_t samples;
    onr_dtype dt;
    rnd_seed seed;
    int64_t batch, classes;
    int nt; /* threads the scratch has rows for */
} mult_params;

static int mult_create(onr_create_ctx *c, void *params)
{
    mult_params *p = params;
    read_seed(c, &p->seed);
    p->samples = onr_attr_int(c->node, "sample_size", 1);
    if (p->samples < 1)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute sample_size must be >= 1, it is %lld",
                          (long long)p->samples);
    int64_t d = onr_attr_int(c->node, "dtype", ONR_INT32);
    if (d != ONR_INT32 && d != ONR_INT64)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute dtype %lld must be int32 (6) or int64 (7)",
                          (long long)d);
    p->dt = (onr_dtype)d;
    return ONR_OK;
}

static int mult_reshape(onr_kctx *ctx, size_t *scratch)
{
    mult_params *p = ctx->params;
    *scratch = 0;
    int st = check_float_input(ctx, 0);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (x->rank != 2)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input must be [batch, classes], it has rank %d",
                          x->rank);
    p->batch = x->dims[0], p->classes = x->dims[1];
    if (p->classes < 1 && p->batch > 0)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input has no classes to draw from");
    int64_t dims[2] = {p->batch, p->samples};
    if ((st = onr_set_out(ctx, 0, p->dt, 2, dims))) return st;
    int64_t cells;
    p->nt = ctx->nthreads > 0 ? ctx->nthreads : 1;
    const int64_t sd[1] = {p->classes * p->nt};
    if ((st = onr_dims_numel(sd, 1, ONR_DOUBLE, &cells, ctx->err))) return st;
    *scratch = (size_t)cells * sizeof(double);
    return ONR_OK;
}

static int mult_run(const onr_kctx *ctx)
{
    const mult_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    uint64_t key = rnd_key(&p->seed, p);
    int64_t C = p->classes, S = p->samples;
    int fail = 0, nt = ctx->nthreads < p->nt ? ctx->nthreads : p->nt;
#pragma omp parallel for num_threads(onr_team(nt)) if (p->batch * (C + S * 8) > ONR_PAR_MIN) \
    reduction(| : fail)
    for (int64_t b = 0; b < p->batch; b++) {
        double *cdf = (double *)ctx->scratch + (int64_t)omp_get_thread_num() * C;
        double mx = -INFINITY;
        for (int64_t c = 0; c < C; c++) {
            double v = onr_get_f64(x, b * C + c);
            if (v > mx) mx = v;
        }
        double tot = 0;
        for (int64_t c = 0; c < C; c++) {
            double v = onr_get_f64(x, b * C + c);
            tot += v == v && isfinite(mx) ? exp(v - mx) : 0;
            cdf[c] = tot;
        }
        if (!(tot > 0) || !isfinite(tot)) {
            fail = 1;
            continue;
        }
        for (int64_t s = 0; s < S; s++) {
            double u = rnd_unit(key, (uint64_t)(b * S + s)) * tot;
            int64_t lo = 0, hi = C - 1; /* first c with cdf[c] > u */
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                if (cdf[mid] > u)
                    hi = mid;
                else
                    lo = mid + 1;
            }
            if (p->dt == ONR_INT32)
                ((int32_t *)y->data)[b * S + s] = (int32_t)lo;
            else
                ((int64_t *)y->data)[b * S + s] = lo;
        }
    }
    if (fail)
        return onr_seterr(ctx->err, ONR_E_RUNTIME,
                          "a row of the input has no finite log-probability to draw from");
    return ONR_OK;
}

const onr_op_impl onr_impl_multinomial = {.create = mult_create, .reshape = mult_reshape,
    .run = mult_run, .params_size = sizeof(mult_params), .types = ONR_TYPES_FLOAT,
    .flags = ONR_OP_NOFOLD};

/* ---- Dropout (opset 12+) ------------------------------------------------------------ */

/* Inputs data, ratio (scalar, default 0.5), training_mode (bool scalar,
 * default false); outputs output and the optional bool mask. Unless
 * training_mode is true and ratio non-zero the output is a copy of the
 * input and the mask all true. Otherwise mask[i] = draw(i) >= ratio and
 * output = data * mask / (1 - ratio); ratio must lie in [0, 1). Inference
 * Dropouts never get here in a model: the identity pass removes them (a
 * copy, not a view, keeps this kernel simple where one survives, e.g.
 * when training_mode is an activation). */
typedef struct drop_params {
    rnd_seed seed;
    int mask;
} drop_params;

static int drop_create(onr_create_ctx *c, void *params)
{
    drop_params *p = params;
    read_seed(c, &p->seed);
    return ONR_OK;
}

static int drop_reshape(onr_kctx *ctx, size_t *scratch)
{
    drop_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_FLOAT);
    if (st) return st;
    if (ctx->in[0]->dtype == ONR_BFLOAT16 && ctx->opset < 13)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                          "input 0 is bfloat16, allowed from opset 13 (this node is opset %lld)",
                          (long long)ctx->opset);
    if (ctx->n_in > 1 && ctx->in[1]) {
        if ((st = onr_check_input(ctx, 1, ONR_TYPES_FLOAT))) return st;
        if (ctx->in[1]->numel != 1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "ratio (input 1) must be a scalar, it has %lld values",
                              (long long)ctx->in[1]->numel);
    }
    if (ctx->n_in > 2 && ctx->in[2]) {
        if ((st = onr_check_input(ctx, 2, ONR_T(ONR_BOOL)))) return st;
        if (ctx->in[2]->numel != 1)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "training_mode (input 2) must be a scalar, it has %lld values",
                              (long long)ctx->in[2]->numel);
    }
    p->mask = ctx->n_out > 1 && ctx->out[1];
    const onr_tensor *x = ctx->in[0];
    if ((st = onr_set_out_like(ctx, 0, 0))) return st;
    return onr_set_out(ctx, 1, ONR_BOOL, x->rank, x->dims);
}

static int drop_run(const onr_kctx *ctx)
{
    const drop_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    uint8_t *mask = p->mask ? ctx->out[1]->data : NULL;
    const onr_tensor *tm = ctx->n_in > 2 ? ctx->in[2] : NULL;
    const onr_tensor *rt = ctx->n_in > 1 ? ctx->in[1] : NULL;
    int training = tm && ((const uint8_t *)tm->data)[0];
    double ratio = rt ? onr_get_f64(rt, 0) : 0.5;
    int64_t n = x->numel;
    if (!training || ratio == 0) {
        if (y->data != x->data) memcpy(y->data, x->data, onr_tensor_nbytes(x));
        if (mask) memset(mask, 1, (size_t)n);
        return ONR_OK;
    }
    if (!(ratio > 0 && ratio < 1))
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "ratio %g is not in [0, 1)", ratio);
    uint64_t key = rnd_key(&p->seed, p);
    double scale = 1.0 / (1.0 - ratio);
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (n * 8 > ONR_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        int keep = rnd_unit(key, (uint64_t)i) >= ratio;
        if (mask) mask[i] = (uint8_t)keep;
        if (x->dtype == ONR_FLOAT)
            ((float *)y->data)[i] = keep ? (float)(((const float *)x->data)[i] * scale) : 0.f;
        else
            onr_set_f64(y, i, keep ? onr_get_f64(x, i) * scale : 0.0);
    }
    return ONR_OK;
}

/* In place: element i of the output depends on element i of data only. */
const onr_op_impl onr_impl_dropout_train = {.create = drop_create, .reshape = drop_reshape,
    .run = drop_run, .params_size = sizeof(drop_params), .types = ONR_TYPES_FLOAT,
    .flags = ONR_OP_NOFOLD | ONR_OP_INPLACE};
