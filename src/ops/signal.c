/*
 * signal.c - the signal-processing operators of opset 17+: DFT (17, 20; the
 * axis became an input at 20), STFT (17), HannWindow, HammingWindow,
 * BlackmanWindow (17) and MelWeightMatrix (17).
 *
 * One transform core serves DFT and STFT: a line of n complex values in
 * double precision is transformed in place, by an iterative radix-2 FFT
 * when n is a power of two, by a direct O(n^2) sum with an exact twiddle
 * table for short other lengths, and by Bluestein's chirp-z algorithm (a
 * circular convolution done with power-of-two FFTs) for long other lengths.
 * Every value is accumulated in double whatever the tensor type, and each
 * line is computed the same way on any thread, so results do not depend
 * on the thread count.
 *
 * The scratch from reshape holds the shared tables (twiddles, Bluestein's
 * chirp and its transformed kernel, built once per run before the parallel
 * loop) and one work line per thread.
 *
 * DFT modes (the specification's newest text, which both versions follow):
 *   onesided=0          full complex transform of length dft_length;
 *   onesided=1 forward  real input only, bins 0 .. dft_length/2 (RFFT);
 *   onesided=1 inverse  complex input only, the one-sided spectrum is
 *                       extended by conjugate symmetry and the real signal
 *                       of length dft_length is returned as [..., 1]
 *                       (IRFFT; dft_length defaults to 2 * (bins - 1)).
 * The inverse is scaled by 1/dft_length. dft_length pads the signal with
 * zeros or keeps its first values.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "ops/ops.h"

#define SIG_DIRECT_MAX 16 /* other lengths up to this are summed directly (beyond, Bluestein is cheaper) */
#define SIG_PI 3.14159265358979323846264338327950288

/* ---- the transform core ---------------------------------------------------- */

static int is_pow2(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

static int64_t next_pow2(int64_t n)
{
    int64_t m = 1;
    while (m < n) m <<= 1;
    return m;
}

/* How a length-n transform is done, and the doubles of scratch it needs. */
typedef enum { FT_POW2, FT_DIRECT, FT_BLUESTEIN } ft_kind;

typedef struct ft_plan {
    ft_kind kind;
    int64_t n;       /* transform length */
    int64_t m;       /* power-of-two FFT length (n, or Bluestein's padded length) */
    int64_t shared;  /* doubles of shared tables */
    int64_t line;    /* doubles of one thread's work line */
} ft_plan;

static void ft_plan_make(ft_plan *p, int64_t n)
{
    p->n = n;
    if (is_pow2(n)) {
        p->kind = FT_POW2;
        p->m = n;
        p->shared = n;      /* n/2 complex twiddles */
        p->line = 2 * n;
    } else if (n <= SIG_DIRECT_MAX) {
        p->kind = FT_DIRECT;
        p->m = n;
        p->shared = 2 * n;  /* n complex roots */
        p->line = 4 * n;    /* input copy and result */
    } else {
        p->kind = FT_BLUESTEIN;
        p->m = next_pow2(2 * n - 1);
        /* m/2 twiddles, n chirp values, the m-point transformed kernel */
        p->shared = p->m + 2 * n + 2 * p->m;
        p->line = 2 * p->m;
    }
}

/* Twiddles w[k] = exp(-2 pi i k / m), k < m/2. */
static void twiddles(double *w, int64_t m)
{
    for (int64_t k = 0; k < m / 2; k++) {
        double a = -2.0 * SIG_PI * (double)k / (double)m;
        w[2 * k] = cos(a);
        w[2 * k + 1] = sin(a);
    }
}

/* In-place radix-2 FFT of m complex values (interleaved), forward sign,
 * unscaled; w from twiddles(w, m). */
static void fft_pow2(double *a, int64_t m, const double *w)
{
    for (int64_t i = 1, j = 0; i < m; i++) {
        int64_t bit = m >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            double tr = a[2 * i], ti = a[2 * i + 1];
            a[2 * i] = a[2 * j], a[2 * i + 1] = a[2 * j + 1];
            a[2 * j] = tr, a[2 * j + 1] = ti;
        }
    }
    for (int64_t len = 2; len <= m; len <<= 1) {
        int64_t half = len / 2, step = m / len;
        for (int64_t s = 0; s < m; s += len)
            for (int64_t k = 0; k < half; k++) {
                double wr = w[2 * k * step], wi = w[2 * k * step + 1];
                double *u = a + 2 * (s + k), *v = a + 2 * (s + k + half);
                double vr = v[0] * wr - v[1] * wi, vi = v[0] * wi + v[1] * wr;
                v[0] = u[0] - vr, v[1] = u[1] - vi;
                u[0] += vr, u[1] += vi;
            }
    }
}

/* Build the shared tables of a plan into t (p->shared doubles). */
static void ft_tables(const ft_plan *p, double *t)
{
    int64_t n = p->n, m = p->m;
    if (p->kind == FT_POW2) {
        twiddles(t, n);
    } else if (p->kind == FT_DIRECT) {
        for (int64_t k = 0; k < n; k++) {
            double a = -2.0 * SIG_PI * (double)k / (double)n;
            t[2 * k] = cos(a), t[2 * k + 1] = sin(a);
        }
    } else {
        double *w = t, *chirp = t + m, *kern = chirp + 2 * n;
        twiddles(w, m);
        /* chirp[k] = exp(-i pi k^2 / n), with k^2 taken mod 2n exactly */
        int64_t q = 0;
        for (int64_t k = 0; k < n; k++) {
            double a = -SIG_PI * (double)q / (double)n;
            chirp[2 * k] = cos(a), chirp[2 * k + 1] = sin(a);
            q = (q + 2 * k + 1) % (2 * n);
        }
        memset(kern, 0, sizeof(double) * 2 * (size_t)m);
        for (int64_t k = 0; k < n; k++) {
            kern[2 * k] = chirp[2 * k], kern[2 * k + 1] = -chirp[2 * k + 1];
            if (k) {
                kern[2 * (m - k)] = chirp[2 * k];
                kern[2 * (m - k) + 1] = -chirp[2 * k + 1];
            }
        }
        fft_pow2(kern, m, w);
    }
}

/* Forward transform (exp(-2 pi i k j / n), unscaled) of the n complex
 * values at x; work holds p->line doubles and may be x itself for
 * FT_POW2. The result is written to y (n complex). */
static void ft_forward(const ft_plan *p, const double *t, double *work, double *x)
{
    int64_t n = p->n, m = p->m;
    if (p->kind == FT_POW2) {
        fft_pow2(x, n, t);
    } else if (p->kind == FT_DIRECT) {
        double *y = work;
        for (int64_t k = 0; k < n; k++) {
            double sr = 0, si = 0;
            int64_t idx = 0; /* k * j mod n */
            for (int64_t j = 0; j < n; j++) {
                double wr = t[2 * idx], wi = t[2 * idx + 1];
                sr += x[2 * j] * wr - x[2 * j + 1] * wi;
                si += x[2 * j] * wi + x[2 * j + 1] * wr;
                idx += k;
                if (idx >= n) idx -= n;
            }
            y[2 * k] = sr, y[2 * k + 1] = si;
        }
        memcpy(x, y, sizeof(double) * 2 * (size_t)n);
    } else {
        const double *w = t, *chirp = t + m, *kern = chirp + 2 * n;
        double *a = work;
        for (int64_t k = 0; k < n; k++) {
            double cr = chirp[2 * k], ci = chirp[2 * k + 1];
            a[2 * k] = x[2 * k] * cr - x[2 * k + 1] * ci;
            a[2 * k + 1] = x[2 * k] * ci + x[2 * k + 1] * cr;
        }
        memset(a + 2 * n, 0, sizeof(double) * 2 * (size_t)(m - n));
        fft_pow2(a, m, w);
        /* multiply by the kernel's transform, then inverse FFT via conj */
        for (int64_t k = 0; k < m; k++) {
            double ar = a[2 * k], ai = a[2 * k + 1], br = kern[2 * k], bi = kern[2 * k + 1];
            a[2 * k] = ar * br - ai * bi;
            a[2 * k + 1] = -(ar * bi + ai * br);
        }
        fft_pow2(a, m, w);
        double s = 1.0 / (double)m;
        for (int64_t k = 0; k < n; k++) {
            double ar = a[2 * k] * s, ai = -a[2 * k + 1] * s;
            double cr = chirp[2 * k], ci = chirp[2 * k + 1];
            x[2 * k] = ar * cr - ai * ci;
            x[2 * k + 1] = ar * ci + ai * cr;
        }
    }
}

/* Forward or inverse (exp(+...), unscaled) transform of x in place. */
static void ft_run(const ft_plan *p, const double *t, double *work, double *x, int inverse)
{
    int64_t n = p->n;
    if (inverse)
        for (int64_t k = 0; k < n; k++) x[2 * k + 1] = -x[2 * k + 1];
    ft_forward(p, t, work, x);
    if (inverse)
        for (int64_t k = 0; k < n; k++) x[2 * k + 1] = -x[2 * k + 1];
}

/* Doubles of scratch a plan needs with nthreads work lines: the tables,
 * then per thread the line x (2n) and the work area. run uses at most the
 * threads reshape sized the scratch for (the count may change later
 * without a reshape). */
static int64_t ft_scratch_doubles(const ft_plan *p, int nthreads)
{
    return p->shared + (int64_t)(nthreads > 0 ? nthreads : 1) * (2 * p->n + p->line);
}

/* Read a scalar integer input (rank 0 or one element) into *v. */
static int read_int_scalar(onr_kctx *ctx, int i, const char *what, int64_t *v)
{
    const onr_tensor *t = ctx->in[i];
    if (t->dtype != ONR_INT64 && t->dtype != ONR_INT32)
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s (input %d) must be int32 or int64, not %s",
                          what, i, onr_dtype_name(t->dtype));
    if (t->numel != 1 || t->rank > 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s (input %d) must be a scalar, it has %lld values",
                          what, i, (long long)t->numel);
    if (!t->data) return ONR_SHAPE_DEFER;
    *v = t->dtype == ONR_INT64 ? *(const int64_t *)t->data : *(const int32_t *)t->data;
    return ONR_OK;
}

/* ---- DFT --------------------------------------------------------------------- */

typedef struct dft_params {
    int64_t axis_attr; /* opset 17: the attribute; 20: the input's default */
    int inverse, onesided;
    /* reshape */
    int64_t outer, inner; /* lines: outer x inner, each along the axis */
    int64_t len_in;       /* input length along the axis */
    int cin, cout;        /* last dims: 1 real, 2 complex */
    int64_t n;            /* dft_length */
    int64_t nout;         /* output length along the axis */
    int nt;               /* threads the scratch has work lines for */
    ft_plan plan;
} dft_params;

static int read_flag(onr_create_ctx *c, const char *name, int def, int *out)
{
    int64_t v = onr_attr_int(c->node, name, def);
    if (v != 0 && v != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute %s must be 0 or 1, not %lld", name,
                          (long long)v);
    *out = (int)v;
    return ONR_OK;
}

static int dft_create(onr_create_ctx *c, void *params)
{
    dft_params *p = params;
    int st = read_flag(c, "inverse", 0, &p->inverse);
    if (!st) st = read_flag(c, "onesided", 0, &p->onesided);
    if (st) return st;
    if (c->opset < 20) {
        p->axis_attr = onr_attr_int(c->node, "axis", 1);
    } else {
        if (onr_node_attr(c->node, "axis"))
            return onr_seterr(c->err, ONR_E_MODEL,
                              "attribute axis was replaced by an input at opset 20");
        p->axis_attr = -2;
    }
    return ONR_OK;
}

static int dft_reshape(onr_kctx *ctx, size_t *scratch)
{
    dft_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_FLOAT);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int r = x->rank;
    if (r < 2 || (x->dims[r - 1] != 1 && x->dims[r - 1] != 2))
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "input must have rank >= 2 with a last dim of 1 (real) or 2 "
                          "(complex), it has rank %d and last dim %lld",
                          r, (long long)(r ? x->dims[r - 1] : 0));
    p->cin = (int)x->dims[r - 1];
    int64_t axis = p->axis_attr;
    if (ctx->opset >= 20 && ctx->n_in > 2 && ctx->in[2]) {
        if ((st = read_int_scalar(ctx, 2, "axis", &axis))) return st;
    }
    int64_t a = axis < 0 ? axis + r : axis;
    if (a < 0 || a > r - 2)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "axis %lld is out of range for rank %d: it must be in [%d, -2] or "
                          "[0, %d] (the last dim holds the real and imaginary parts)",
                          (long long)axis, r, -r, r - 2);
    int irfft = p->inverse && p->onesided;
    if (p->onesided && !p->inverse && p->cin != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "onesided=1 forward DFT needs real input (last dim 1), it is complex");
    if (irfft && p->cin != 2)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "onesided=1 inverse DFT (IRFFT) needs complex input (last dim 2), "
                          "it is real");
    p->len_in = x->dims[a];
    int64_t n = irfft ? 2 * (p->len_in - 1) : p->len_in;
    if (ctx->n_in > 1 && ctx->in[1]) {
        if ((st = read_int_scalar(ctx, 1, "dft_length", &n))) return st;
        if (n < 1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "dft_length must be >= 1, it is %lld",
                              (long long)n);
    } else if (n < 1) {
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "the DFT axis %d has length %lld: no transform length (give dft_length)",
                          (int)a, (long long)p->len_in);
    }
    p->n = n;
    p->nout = p->onesided && !p->inverse ? n / 2 + 1 : n;
    p->cout = irfft ? 1 : 2;
    int64_t dims[ONR_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[a] = p->nout;
    dims[r - 1] = p->cout;
    if ((st = onr_set_out(ctx, 0, x->dtype, r, dims))) return st;
    p->outer = p->inner = 0; /* an empty input: no lines (and no product to overflow) */
    if (x->numel > 0) {
        p->outer = p->inner = 1;
        for (int d = 0; d < a; d++) p->outer *= x->dims[d];
        for (int d = (int)a + 1; d < r - 1; d++) p->inner *= x->dims[d];
    }
    /* the transform's memory is checked like a tensor's: n is a model value */
    int64_t cells;
    const int64_t line[1] = {2 * n};
    if ((st = onr_dims_numel(line, 1, ONR_DOUBLE, &cells, ctx->err))) return st;
    ft_plan_make(&p->plan, n);
    p->nt = ctx->nthreads > 0 ? ctx->nthreads : 1;
    int64_t dbl = ft_scratch_doubles(&p->plan, p->nt);
    const int64_t sdims[1] = {dbl};
    if ((st = onr_dims_numel(sdims, 1, ONR_DOUBLE, &cells, ctx->err))) return st;
    *scratch = (size_t)dbl * sizeof(double);
    return ONR_OK;
}

/* Store a double into element i of y. */
static inline void put(onr_tensor *y, int64_t i, double v)
{
    if (y->dtype == ONR_FLOAT)
        ((float *)y->data)[i] = (float)v;
    else
        onr_set_f64(y, i, v);
}

static inline double get(const onr_tensor *x, int64_t i)
{
    return x->dtype == ONR_FLOAT ? ((const float *)x->data)[i] : onr_get_f64(x, i);
}

/* One DFT line: gather, transform, scatter. */
static void dft_line(const dft_params *p, const double *tab, double *xl, double *work,
                     const onr_tensor *x, onr_tensor *y, int64_t o, int64_t i)
{
    int64_t n = p->n, inner = p->inner;
    int irfft = p->inverse && p->onesided;
    memset(xl, 0, sizeof(double) * 2 * (size_t)n);
    if (irfft) {
        /* bins 0 .. n/2 from the input (zeros past its end), the rest by
         * conjugate symmetry */
        int64_t half = n / 2, have = p->len_in < half + 1 ? p->len_in : half + 1;
        for (int64_t k = 0; k < have; k++) {
            int64_t e = ((o * p->len_in + k) * inner + i) * 2;
            xl[2 * k] = get(x, e);
            xl[2 * k + 1] = get(x, e + 1);
        }
        for (int64_t k = 1; k < (n + 1) / 2; k++) {
            xl[2 * (n - k)] = xl[2 * k];
            xl[2 * (n - k) + 1] = -xl[2 * k + 1];
        }
    } else {
        int64_t have = p->len_in < n ? p->len_in : n;
        for (int64_t k = 0; k < have; k++) {
            int64_t e = ((o * p->len_in + k) * inner + i) * p->cin;
            xl[2 * k] = get(x, e);
            if (p->cin == 2) xl[2 * k + 1] = get(x, e + 1);
        }
    }
    ft_run(&p->plan, tab, work, xl, p->inverse);
    double s = p->inverse ? 1.0 / (double)n : 1.0;
    for (int64_t k = 0; k < p->nout; k++) {
        int64_t e = ((o * p->nout + k) * inner + i) * p->cout;
        put(y, e, xl[2 * k] * s);
        if (p->cout == 2) put(y, e + 1, xl[2 * k + 1] * s);
    }
}

static int dft_run(const onr_kctx *ctx)
{
    const dft_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    int64_t lines = p->outer * p->inner;
    if (lines == 0) return ONR_OK;
    double *tab = ctx->scratch;
    ft_tables(&p->plan, tab);
    double *lines_mem = tab + p->plan.shared;
    int64_t per = 2 * p->n + p->plan.line;
    int64_t work = lines * p->n * 16;
    int nt = ctx->nthreads < p->nt ? ctx->nthreads : p->nt;
#pragma omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN && lines > 1)
    for (int64_t l = 0; l < lines; l++) {
        double *xl = lines_mem + (int64_t)omp_get_thread_num() * per;
        dft_line(p, tab, xl, xl + 2 * p->n, x, y, l / p->inner, l % p->inner);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_dft = {.create = dft_create, .reshape = dft_reshape, .run = dft_run,
    .params_size = sizeof(dft_params), .types = ONR_TYPES_FLOAT,
    .shape_inputs = 1u << 1 | 1u << 2};

/* ---- STFT -------------------------------------------------------------------- */

/* signal [batch, length, 1 or 2] -> [batch, frames, bins, 2]. Frame f
 * starts at f * frame_step; its value j < frame_length is
 * signal[f * step + j] * window[j] (zero past the signal's end or the
 * window's), and the frame is transformed at length frame_length. The
 * window defaults to ones; frame_length to the window's length, or the
 * signal's when neither is given. frames = (length - frame_length) /
 * frame_step + 1. */
typedef struct stft_params {
    int onesided;
    int64_t batch, len, step, flen, wlen, frames, bins;
    int cin;
    int nt; /* threads the scratch has work lines for */
    ft_plan plan;
} stft_params;

static int stft_create(onr_create_ctx *c, void *params)
{
    stft_params *p = params;
    return read_flag(c, "onesided", 1, &p->onesided);
}

static int stft_reshape(onr_kctx *ctx, size_t *scratch)
{
    stft_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_FLOAT);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (x->rank != 3 || (x->dims[2] != 1 && x->dims[2] != 2))
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "signal must be [batch, length, 1 or 2], it has rank %d", x->rank);
    p->cin = (int)x->dims[2];
    if (p->onesided && p->cin != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "onesided=1 needs a real signal (last dim 1); set onesided=0 for "
                          "a complex one");
    p->batch = x->dims[0];
    p->len = x->dims[1];
    if ((st = onr_check_input(ctx, 1, ONR_T(ONR_INT32) | ONR_T(ONR_INT64)))) return st;
    if ((st = read_int_scalar(ctx, 1, "frame_step", &p->step))) return st;
    if (p->step < 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "frame_step must be >= 1, it is %lld",
                          (long long)p->step);
    const onr_tensor *w = ctx->n_in > 2 ? ctx->in[2] : NULL;
    p->wlen = -1;
    if (w) {
        if (w->dtype != x->dtype)
            return onr_seterr(ctx->err, ONR_E_MODEL, "window is %s, signal is %s",
                              onr_dtype_name(w->dtype), onr_dtype_name(x->dtype));
        if (w->rank != 1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "window must be 1-D, it has rank %d",
                              w->rank);
        p->wlen = w->dims[0];
    }
    if (ctx->n_in > 3 && ctx->in[3]) {
        if ((st = read_int_scalar(ctx, 3, "frame_length", &p->flen))) return st;
    } else {
        p->flen = p->wlen >= 0 ? p->wlen : p->len;
    }
    if (p->flen < 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "frame_length must be >= 1, it is %lld",
                          (long long)p->flen);
    if (p->flen > p->len)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "frame_length %lld is longer than the signal (%lld)",
                          (long long)p->flen, (long long)p->len);
    p->frames = (p->len - p->flen) / p->step + 1;
    p->bins = p->onesided ? p->flen / 2 + 1 : p->flen;
    int64_t dims[4] = {p->batch, p->frames, p->bins, 2};
    if ((st = onr_set_out(ctx, 0, x->dtype, 4, dims))) return st;
    ft_plan_make(&p->plan, p->flen);
    p->nt = ctx->nthreads > 0 ? ctx->nthreads : 1;
    int64_t dbl = ft_scratch_doubles(&p->plan, p->nt), cells;
    const int64_t sdims[1] = {dbl};
    if ((st = onr_dims_numel(sdims, 1, ONR_DOUBLE, &cells, ctx->err))) return st;
    *scratch = (size_t)dbl * sizeof(double);
    return ONR_OK;
}

static int stft_run(const onr_kctx *ctx)
{
    const stft_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    const onr_tensor *w = ctx->n_in > 2 ? ctx->in[2] : NULL;
    onr_tensor *y = ctx->out[0];
    int64_t tasks = p->batch * p->frames, n = p->flen;
    if (tasks == 0) return ONR_OK;
    double *tab = ctx->scratch;
    ft_tables(&p->plan, tab);
    double *mem = tab + p->plan.shared;
    int64_t per = 2 * n + p->plan.line;
    int64_t work = tasks * n * 16;
    int nt = ctx->nthreads < p->nt ? ctx->nthreads : p->nt;
#pragma omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN && tasks > 1)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t b = t / p->frames, f = t % p->frames, t0 = f * p->step;
        double *xl = mem + (int64_t)omp_get_thread_num() * per;
        memset(xl, 0, sizeof(double) * 2 * (size_t)n);
        for (int64_t j = 0; j < n && t0 + j < p->len; j++) {
            double wj = 1.0;
            if (w) {
                if (j >= p->wlen) break;
                wj = get(w, j);
            }
            int64_t e = (b * p->len + t0 + j) * p->cin;
            xl[2 * j] = get(x, e) * wj;
            if (p->cin == 2) xl[2 * j + 1] = get(x, e + 1) * wj;
        }
        ft_run(&p->plan, tab, xl + 2 * n, xl, 0);
        for (int64_t k = 0; k < p->bins; k++) {
            int64_t e = (t * p->bins + k) * 2;
            put(y, e, xl[2 * k]);
            put(y, e + 1, xl[2 * k + 1]);
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_stft = {.create = stft_create, .reshape = stft_reshape,
    .run = stft_run, .params_size = sizeof(stft_params), .types = ONR_TYPES_FLOAT,
    .shape_inputs = 1u << 1 | 1u << 3};

/* ---- window functions ---------------------------------------------------------- */

/* w[k] = a0 - a1 cos(2 pi k / N) + a2 cos(4 pi k / N), N = size when
 * periodic, size - 1 when symmetric. A symmetric window of size 1 is [1]
 * (N = 0 leaves the formula undefined; 1 is what SciPy and PyTorch give).
 * The output type is output_datatype (any numeric type; integer types get
 * the values truncated, as a cast would). */
typedef struct win_params {
    double a0, a1, a2;
    int periodic;
    onr_dtype dt;
    int64_t size;
} win_params;

#define T_NUMERIC_OUT ONR_TYPES_NUM

static int read_out_dtype(onr_create_ctx *c, onr_dtype *dt)
{
    int64_t v = onr_attr_int(c->node, "output_datatype", ONR_FLOAT);
    if (v <= 0 || v >= ONR_DTYPE_COUNT || !(T_NUMERIC_OUT & ONR_T((onr_dtype)v)))
        return onr_seterr(c->err, ONR_E_MODEL,
                          "output_datatype %lld is not a numeric tensor type", (long long)v);
    *dt = (onr_dtype)v;
    return ONR_OK;
}

static int win_create(onr_create_ctx *c, win_params *p, double a0, double a1, double a2)
{
    p->a0 = a0, p->a1 = a1, p->a2 = a2;
    int st = read_flag(c, "periodic", 1, &p->periodic);
    return st ? st : read_out_dtype(c, &p->dt);
}

static int hann_create(onr_create_ctx *c, void *p) { return win_create(c, p, 0.5, 0.5, 0); }
static int hamming_create(onr_create_ctx *c, void *p)
{
    return win_create(c, p, 25.0 / 46.0, 21.0 / 46.0, 0);
}
static int blackman_create(onr_create_ctx *c, void *p) { return win_create(c, p, 0.42, 0.5, 0.08); }

static int win_reshape(onr_kctx *ctx, size_t *scratch)
{
    win_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_T(ONR_INT32) | ONR_T(ONR_INT64));
    if (st) return st;
    if ((st = read_int_scalar(ctx, 0, "size", &p->size))) return st;
    if (p->size < 0)
        return onr_seterr(ctx->err, ONR_E_MODEL, "size must be >= 0, it is %lld",
                          (long long)p->size);
    return onr_set_out(ctx, 0, p->dt, 1, &p->size);
}

static int win_run(const onr_kctx *ctx)
{
    const win_params *p = ctx->params;
    onr_tensor *y = ctx->out[0];
    int64_t N = p->periodic ? p->size : p->size - 1;
    for (int64_t k = 0; k < p->size; k++) {
        double v = 1.0;
        if (N > 0) {
            double a = 2.0 * SIG_PI * (double)k / (double)N;
            v = p->a0 - p->a1 * cos(a) + p->a2 * cos(2 * a);
        }
        onr_set_f64(y, k, v);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_hann_window = {.create = hann_create, .reshape = win_reshape,
    .run = win_run, .params_size = sizeof(win_params),
    .types = ONR_T(ONR_INT32) | ONR_T(ONR_INT64), .shape_inputs = 1u << 0};
const onr_op_impl onr_impl_hamming_window = {.create = hamming_create, .reshape = win_reshape,
    .run = win_run, .params_size = sizeof(win_params),
    .types = ONR_T(ONR_INT32) | ONR_T(ONR_INT64), .shape_inputs = 1u << 0};
const onr_op_impl onr_impl_blackman_window = {.create = blackman_create, .reshape = win_reshape,
    .run = win_run, .params_size = sizeof(win_params),
    .types = ONR_T(ONR_INT32) | ONR_T(ONR_INT64), .shape_inputs = 1u << 0};

/* ---- MelWeightMatrix ------------------------------------------------------------ */

/* [dft_length/2 + 1, num_mel_bins] triangular filters, as the reference
 * computes them: num_mel_bins + 2 points equally spaced on the mel scale
 * (mel = 2595 log10(1 + hz/700)) from lower_edge_hertz with a step of
 * (high_mel - low_mel) / (num_mel_bins + 2), mapped back to hertz and to
 * spectrogram bins floor((dft_length + 1) * hz / sample_rate); filter i
 * rises from point i to point i+1 and falls to point i+2 (a zero-width
 * rise puts 1 at the centre). A point outside the spectrogram's bins is an
 * error. */
typedef struct mel_params {
    onr_dtype dt;
    int64_t mels, dft, bins;
} mel_params;

static int mel_create(onr_create_ctx *c, void *params)
{
    mel_params *p = params;
    return read_out_dtype(c, &p->dt);
}

static int mel_reshape(onr_kctx *ctx, size_t *scratch)
{
    mel_params *p = ctx->params;
    *scratch = 0;
    int st;
    for (int i = 0; i < 5; i++) {
        uint32_t ok = i < 3 ? ONR_T(ONR_INT32) | ONR_T(ONR_INT64) : ONR_TYPES_FLOAT;
        if ((st = onr_check_input(ctx, i, ok))) return st;
        if (ctx->in[i]->numel != 1 || ctx->in[i]->rank > 1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "input %d must be a scalar", i);
    }
    if ((st = read_int_scalar(ctx, 0, "num_mel_bins", &p->mels))) return st;
    if ((st = read_int_scalar(ctx, 1, "dft_length", &p->dft))) return st;
    if (p->mels < 1 || p->dft < 1)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "num_mel_bins (%lld) and dft_length (%lld) must be >= 1",
                          (long long)p->mels, (long long)p->dft);
    p->bins = p->dft / 2 + 1;
    int64_t dims[2] = {p->bins, p->mels};
    return onr_set_out(ctx, 0, p->dt, 2, dims);
}

static int mel_run(const onr_kctx *ctx)
{
    const mel_params *p = ctx->params;
    onr_tensor *y = ctx->out[0];
    double sr = onr_get_f64(ctx->in[2], 0);
    double lo = onr_get_f64(ctx->in[3], 0), hi = onr_get_f64(ctx->in[4], 0);
    if (!(sr > 0) || !isfinite(lo) || !isfinite(hi) || lo < 0 || hi < lo)
        return onr_seterr(ctx->err, ONR_E_RUNTIME,
                          "need sample_rate > 0 and 0 <= lower_edge_hertz (%g) <= "
                          "upper_edge_hertz (%g); sample_rate is %g",
                          lo, hi, sr);
    double lmel = 2595.0 * log10(1.0 + lo / 700.0), hmel = 2595.0 * log10(1.0 + hi / 700.0);
    double step = (hmel - lmel) / (double)(p->mels + 2);
    for (int64_t k = 0; k < y->numel; k++) onr_set_f64(y, k, 0);
    int64_t prev2 = 0, prev1 = 0;
    for (int64_t i = 0; i < p->mels + 2; i++) {
        double hz = 700.0 * (pow(10.0, ((double)i * step + lmel) / 2595.0) - 1.0);
        double b = floor((double)(p->dft + 1) * hz / sr);
        if (!(b >= 0 && b < (double)p->bins))
            return onr_seterr(ctx->err, ONR_E_RUNTIME,
                              "mel point %lld (%g Hz) falls on bin %g, outside the %lld "
                              "spectrogram bins: upper_edge_hertz is above the range that "
                              "sample_rate and dft_length cover",
                              (long long)i, hz, b, (long long)p->bins);
        int64_t cur = (int64_t)b;
        if (i >= 2) {
            int64_t m = i - 2, lo_b = prev2, c = prev1, hi_b = cur;
            if (c == lo_b) {
                onr_set_f64(y, c * p->mels + m, 1);
            } else {
                for (int64_t j = lo_b; j <= c; j++)
                    onr_set_f64(y, j * p->mels + m, (double)(j - lo_b) / (double)(c - lo_b));
            }
            for (int64_t j = c; j < hi_b; j++)
                onr_set_f64(y, j * p->mels + m, (double)(hi_b - j) / (double)(hi_b - c));
        }
        prev2 = prev1;
        prev1 = cur;
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_mel_weight_matrix = {.create = mel_create, .reshape = mel_reshape,
    .run = mel_run, .params_size = sizeof(mel_params),
    .types = ONR_T(ONR_INT32) | ONR_T(ONR_INT64), .shape_inputs = 1u << 0 | 1u << 1};
