/*
 * grid.c - GridSample (opsets 16, 20, 22) and AffineGrid (20).
 *
 * GridSample reads X [N, C, D1..Dr] at the points of grid [N, O1..Or, r],
 * whose last axis holds normalized coordinates in reverse axis order
 * (grid[..., 0] is along Dr, the width). Per output point, each spatial
 * axis gets its taps (1 nearest, 2 linear, 4 cubic) with weights and input
 * indices after the padding mode; the value is the sum over the product of
 * the per-axis taps, in double, the same for every channel, so the taps are
 * worked out once per point and reused across C. Opset 16 is 4-D only with
 * the mode names bilinear/bicubic; 20 renamed them linear/cubic and allows
 * any number of spatial axes; 22 only widened the types.
 *
 * Following the ONNX reference (and PyTorch): nearest rounds half to even
 * (half away from zero for 3 spatial axes) before the padding mode is
 * applied; a coordinate outside [-0.5, size-0.5] ([0, size-1] with
 * align_corners) is clamped (border) or reflected (reflection), and each
 * tap outside the input reads 0 (zeros), the edge (border) or its
 * reflection (reflection).
 *
 * AffineGrid builds grid [N, H, W, 2] (or [N, D, H, W, 3]) from theta
 * [N, 2, 3] ([N, 3, 4]): theta times the base grid (x, y[, z], 1) of
 * normalized pixel centres (corners with align_corners).
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "ops/image.h"
#include "ops/tensor.h"

enum { GS_LINEAR, GS_NEAREST, GS_CUBIC };
static const img_name gs_mode_names[] = {{"bilinear", 16, 19}, {"nearest", 16, ONR_OPSET_MAX},
                                         {"bicubic", 16, 19},  {"linear", 20, ONR_OPSET_MAX},
                                         {"cubic", 20, ONR_OPSET_MAX}};
static const int gs_mode_of[] = {GS_LINEAR, GS_NEAREST, GS_CUBIC, GS_LINEAR, GS_CUBIC};
enum { PAD_ZEROS, PAD_BORDER, PAD_REFLECTION };
static const img_name gs_pad_names[] = {{"zeros", 16, ONR_OPSET_MAX},
                                        {"border", 16, ONR_OPSET_MAX},
                                        {"reflection", 16, ONR_OPSET_MAX}};

#define GS_MAX_SP (ONR_MAX_RANK - 2)
/* Tap combinations worked out once per output point (more are decoded per
 * channel). */
#define GS_MAX_COMB 64

typedef struct gs_params {
    int mode, pad, align;
    /* reshape */
    int r;                      /* spatial axes */
    int64_t N, C, in_sp, out_sp; /* elements per spatial block */
    int64_t in_dims[GS_MAX_SP];
    onr_dtype dt, gdt;
} gs_params;

static int gs_create(onr_create_ctx *c, void *params)
{
    gs_params *p = params;
    int m = 0, st = img_attr_enum(c, "mode", c->opset >= 20 ? "linear" : "bilinear", gs_mode_names, 5, &m);
    if (st || (st = img_attr_enum(c, "padding_mode", "zeros", gs_pad_names, 3, &p->pad)) ||
        (st = img_attr_bool(c, "align_corners", &p->align)))
        return st;
    p->mode = gs_mode_of[m];
    return ONR_OK;
}

static int gs_reshape(onr_kctx *ctx, size_t *scratch)
{
    gs_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_NUM | ONR_T(ONR_BOOL));
    if (st || (st = onr_check_input(ctx, 1, ONR_TYPES_FLOAT))) return st;
    const onr_tensor *x = ctx->in[0], *g = ctx->in[1];
    char b1[256], b2[256];
    int r = x->rank - 2;
    if (r < 1 || (ctx->opset < 20 && r != 2))
        return onr_seterr(ctx->err, ONR_E_MODEL, "input 'X' %s must be %s", TN_DIMS(b1, x),
                          ctx->opset < 20 ? "4-D (N, C, H, W) before opset 20"
                                          : "at least 3-D (N, C, D1, ...)");
    if (g->rank != r + 2 || g->dims[r + 1] != r || g->dims[0] != x->dims[0])
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "input 'grid' %s must be [N, out dims..., %d] with N as in 'X' %s",
                          TN_DIMS(b1, g), r, TN_DIMS(b2, x));
    if (p->mode != GS_NEAREST && !(ONR_TYPES_NUM & ONR_T(x->dtype)))
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "interpolating needs a numeric 'X', not %s",
                          onr_dtype_name(x->dtype));
    int64_t od[ONR_MAX_RANK];
    od[0] = x->dims[0], od[1] = x->dims[1];
    p->in_sp = p->out_sp = 1;
    for (int d = 0; d < r; d++) {
        od[2 + d] = g->dims[1 + d];
        p->in_dims[d] = x->dims[2 + d];
        p->in_sp *= x->dims[2 + d];
        p->out_sp *= g->dims[1 + d];
    }
    if ((st = onr_set_out(ctx, 0, x->dtype, r + 2, od))) return st;
    p->r = r, p->N = x->dims[0], p->C = x->dims[1], p->dt = x->dtype, p->gdt = g->dtype;
    return ONR_OK;
}

/* Reflect x into [lo, hi] (by whole bounces). */
static double gs_reflect(double x, double lo, double hi)
{
    double rng = hi - lo;
    if (rng <= 0) return lo;
    if (x < lo) {
        double dx = lo - x, n = floor(dx / rng), rem = dx - n * rng;
        return fmod(n, 2) == 0 ? lo + rem : hi - rem;
    }
    if (x > hi) {
        double dx = x - hi, n = floor(dx / rng), rem = dx - n * rng;
        return fmod(n, 2) == 0 ? hi - rem : lo + rem;
    }
    return x;
}

static inline double gs_cubic(double d)
{
    const double A = -0.75;
    d = fabs(d);
    if (d <= 1) return ((A + 2) * d - (A + 3)) * d * d + 1;
    if (d < 2) return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A;
    return 0;
}

/* Taps of one spatial axis of size n at normalized coordinate g: input
 * indices (-1: reads zero) and weights; returns the tap count. */
static int gs_axis_taps(const gs_params *p, double g, int64_t n, int three_d, int64_t *idx,
                        double *w)
{
    double lo = p->align ? 0 : -0.5, hi = p->align ? (double)n - 1 : (double)n - 0.5;
    double x = p->align ? (g + 1) / 2 * (double)(n - 1) : ((g + 1) * (double)n - 1) / 2;
    if (!isfinite(x)) x = 0 * g != 0 ? -2 : x > 0 ? hi + 2 : lo - 2; /* NaN: reads zero/edge */
    if (p->mode == GS_NEAREST)
        x = three_d ? (x >= 0 ? floor(x + 0.5) : ceil(x - 0.5)) : nearbyint(x);
    if (x < lo || x > hi) {
        if (p->pad == PAD_BORDER) x = x < 0 ? 0 : x > (double)n - 1 ? (double)n - 1 : x;
        else if (p->pad == PAD_REFLECTION) x = gs_reflect(x, lo, hi);
    }
    /* keep the index arithmetic in range for far-away points */
    if (x < -4) x = -4;
    if (x > (double)n + 4) x = (double)n + 4;
    int T;
    int64_t base;
    if (p->mode == GS_NEAREST) {
        T = 1, base = (int64_t)x, w[0] = 1;
    } else {
        double f = floor(x), t = x - f;
        if (p->mode == GS_LINEAR) {
            T = 2, base = (int64_t)f;
            w[0] = 1 - t, w[1] = t;
        } else {
            T = 4, base = (int64_t)f - 1;
            for (int k = 0; k < 4; k++) w[k] = gs_cubic(t - (k - 1));
        }
    }
    for (int k = 0; k < T; k++) {
        int64_t i = base + k;
        if (i < 0 || i >= n) {
            if (p->pad == PAD_ZEROS) i = -1;
            else if (p->pad == PAD_BORDER) i = i < 0 ? 0 : n - 1;
            else {
                i = (int64_t)gs_reflect((double)i, lo, hi);
                i = i < 0 ? 0 : i >= n ? n - 1 : i;
            }
        }
        idx[k] = i;
    }
    return T;
}

/* Combination c (mixed radix over the per-axis tap counts) to its input
 * offset (-1: reads zero) and weight. */
static inline void gs_combo(int r, int64_t c, const int *T, const int64_t (*idx)[4],
                            const double (*w)[4], const int64_t *stride, int64_t *off, double *wt)
{
    int64_t o = 0;
    double wp = 1;
    for (int d = r - 1; d >= 0; d--) {
        int k = (int)(c % T[d]);
        c /= T[d];
        int64_t i = idx[d][k];
        wp *= w[d][k];
        if (i < 0) o = -1;
        if (o >= 0) o += i * stride[d];
    }
    *off = o, *wt = wp;
}

static int gs_run(const onr_kctx *ctx)
{
    const gs_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0], *g = ctx->in[1];
    onr_tensor *y = ctx->out[0];
    if (y->numel == 0) return ONR_OK;
    int r = p->r, nt = ctx->nthreads > 0 ? ctx->nthreads : 1;
    int64_t N = p->N, C = p->C, IS = p->in_sp, OS = p->out_sp, pts = N * OS;
    int64_t stride[GS_MAX_SP], s = 1;
    for (int d = r - 1; d >= 0; d--) stride[d] = s, s *= p->in_dims[d];
    onr_dtype dt = p->dt;
    size_t esz = onr_dtype_size(dt);
    int64_t work = y->numel * (p->mode == GS_NEAREST ? 1 : p->mode == GS_LINEAR ? 2 * r : 4 * r);
    const char *xs = x->data;
    char *ys = y->data;
    #pragma omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN && nt > 1)
    for (int64_t q = 0; q < pts; q++) {
        int64_t n = q / OS, o = q - n * OS, idx[GS_MAX_SP][4], offs[GS_MAX_COMB];
        double w[GS_MAX_SP][4], wts[GS_MAX_COMB];
        int T[GS_MAX_SP];
        int64_t ncomb = 1;
        for (int d = 0; d < r; d++) {
            double gv = onr_get_f64(g, q * r + (r - 1 - d));
            T[d] = gs_axis_taps(p, gv, p->in_dims[d], r == 3, idx[d], w[d]);
            ncomb *= T[d];
        }
        int pre = ncomb <= GS_MAX_COMB;
        if (pre)
            for (int64_t c = 0; c < ncomb; c++)
                gs_combo(r, c, T, (const int64_t(*)[4])idx, (const double(*)[4])w, stride, &offs[c], &wts[c]);
        if (pre && dt == ONR_FLOAT && p->mode != GS_NEAREST) {
            /* float32: the taps inside the input, then direct loads (the
             * same sums, in the same order, as the typed path below) */
            int nv = 0;
            for (int64_t c = 0; c < ncomb; c++)
                if (offs[c] >= 0) offs[nv] = offs[c], wts[nv++] = wts[c];
            for (int64_t ch = 0; ch < C; ch++) {
                const float *xc = (const float *)xs + (n * C + ch) * IS;
                double acc = 0;
                for (int i = 0; i < nv; i++) acc += wts[i] * xc[offs[i]];
                ((float *)ys)[(n * C + ch) * OS + o] = (float)acc;
            }
            continue;
        }
        for (int64_t ch = 0; ch < C; ch++) {
            const char *xc = xs + (size_t)((n * C + ch) * IS) * esz;
            int64_t yo = (n * C + ch) * OS + o;
            if (p->mode == GS_NEAREST) {
                /* an exact copy of the element, zero outside */
                if (offs[0] < 0) memset(ys + (size_t)yo * esz, 0, esz);
                else memcpy(ys + (size_t)yo * esz, xc + (size_t)offs[0] * esz, esz);
                continue;
            }
            double acc = 0;
            for (int64_t c = 0; c < ncomb; c++) {
                int64_t off;
                double wt;
                if (pre) off = offs[c], wt = wts[c];
                else gs_combo(r, c, T, (const int64_t(*)[4])idx, (const double(*)[4])w, stride, &off, &wt);
                if (off >= 0) acc += wt * img_load(dt, xc, off);
            }
            img_store(dt, ys, yo, acc);
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_grid_sample = {.create = gs_create, .reshape = gs_reshape,
                                          .run = gs_run, .params_size = sizeof(gs_params),
                                          .types = ONR_TYPES_NUM | ONR_T(ONR_BOOL)};

/* ---- AffineGrid ------------------------------------------------------------ */

typedef struct ag_params {
    int align;
    int r; /* 2 or 3 spatial axes */
    int64_t N, sp[3];
} ag_params;

static int ag_create(onr_create_ctx *c, void *params)
{
    ag_params *p = params;
    return img_attr_bool(c, "align_corners", &p->align);
}

static int ag_reshape(onr_kctx *ctx, size_t *scratch)
{
    ag_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_FLOAT);
    if (st || (st = onr_check_input(ctx, 1, ONR_T(ONR_INT64) | ONR_T(ONR_INT32)))) return st;
    const onr_tensor *th = ctx->in[0];
    int64_t size[5];
    int n = 0;
    if ((st = onr_read_ints(ctx, 1, size, 5, &n))) return st;
    char b[256];
    if (n != 4 && n != 5)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "input 'size' must hold 4 (N, C, H, W) or 5 (N, C, D, H, W) values, has %d", n);
    p->r = n - 2;
    if (th->rank != 3 || th->dims[0] != size[0] || th->dims[1] != p->r || th->dims[2] != p->r + 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input 'theta' %s must be [N, %d, %d] with N = %lld",
                          TN_DIMS(b, th), p->r, p->r + 1, (long long)size[0]);
    int64_t od[5];
    od[0] = size[0];
    for (int d = 0; d < p->r; d++) {
        if (size[2 + d] < 0)
            return onr_seterr(ctx->err, ONR_E_MODEL, "input 'size' value %d is negative", 2 + d);
        od[1 + d] = p->sp[d] = size[2 + d];
    }
    od[1 + p->r] = p->r;
    p->N = size[0];
    return onr_set_out(ctx, 0, th->dtype, p->r + 2, od);
}

/* Normalized coordinate of pixel i of n. */
static double ag_base(int align, int64_t i, int64_t n)
{
    if (n <= 1) return 0;
    return align ? -1 + 2.0 * (double)i / (double)(n - 1) : (2.0 * (double)i + 1) / (double)n - 1;
}

static int ag_run(const onr_kctx *ctx)
{
    const ag_params *p = ctx->params;
    const onr_tensor *th = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    int r = p->r;
    int64_t D = r == 3 ? p->sp[0] : 1, H = p->sp[r - 2], W = p->sp[r - 1], pts = D * H * W;
    for (int64_t n = 0; n < p->N; n++) {
        double t[12];
        for (int k = 0; k < r * (r + 1); k++) t[k] = onr_get_f64(th, n * r * (r + 1) + k);
        for (int64_t i = 0; i < pts; i++) {
            int64_t wi = i % W, hi = (i / W) % H, di = i / (W * H);
            double v[4] = {ag_base(p->align, wi, W), ag_base(p->align, hi, H), 0, 0};
            if (r == 3) v[2] = ag_base(p->align, di, D);
            v[r] = 1;
            for (int k = 0; k < r; k++) {
                double acc = 0;
                for (int j = 0; j <= r; j++) acc += t[k * (r + 1) + j] * v[j];
                img_store(y->dtype, y->data, (n * pts + i) * r + k, acc);
            }
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_affine_grid = {.create = ag_create, .reshape = ag_reshape,
                                          .run = ag_run, .params_size = sizeof(ag_params),
                                          .types = ONR_TYPES_FLOAT, .shape_inputs = 1u << 1};
