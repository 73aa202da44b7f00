/*
 * resize.c - Resize (opsets 10, 11, 13, 18, 19) and Upsample (7, 9).
 *
 * Every mode is separable: along each axis, output position o reads a fixed
 * number of taps (1 for nearest, 2 for linear, 4 for cubic, wider when
 * antialiasing stretches the filter) at input indices with weights, and an
 * N-D output is the sum over the product of the per-axis taps. reshape works
 * out per axis the sizes, scale, length_resized and tap count; run first
 * builds each axis's table (indices clamped to the input, weights, and for
 * tf_crop_and_resize an "outside" flag) in scratch, then one of three
 * kernels walks them:
 *   - gather: nearest mode, any element type (strings too), a copy per
 *     output element;
 *   - plane: float types with only the last two axes resized (the NCHW
 *     upsampling of UNet/FPN exports): a vertical pass into a per-thread
 *     row, then a horizontal pass, in float (double for double);
 *   - generic: the reference, any numeric type and rank, each output the
 *     full tap product accumulated in double; where that product passes
 *     RS_MAX_PRODUCT taps (tricubic, antialiasing, many axes), one pass
 *     per resized axis through double buffers instead.
 * Rows of the output run in parallel, each by one thread, so results do
 * not depend on the thread count.
 *
 * The coordinate of output o along an axis (x_original) follows
 * coordinate_transformation_mode with length_resized taken before flooring
 * (input length x scale), as the ONNX conformance data does. Output sizes
 * from scales are floor(in * scale) computed in float32, as ONNX shape
 * inference does. Opset 10 and Upsample map coordinates asymmetrically and
 * pick the nearest input by floor when upsampling and ceil when
 * downsampling (the opset-10 conformance data).
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "ops/image.h"
#include "ops/linalg.h"
#include "ops/resize.h"
#include "ops/tensor.h"

enum { RS_NEAREST, RS_LINEAR, RS_CUBIC };
static const img_name rs_modes[] = {
    {"nearest", 1, ONR_OPSET_MAX}, {"linear", 1, ONR_OPSET_MAX}, {"cubic", 11, ONR_OPSET_MAX}};

enum { CT_HALF_PIXEL, CT_HALF_PIXEL_SYM, CT_PYTORCH, CT_ALIGN_CORNERS, CT_ASYMMETRIC, CT_TF_NN,
       CT_TF_CROP };
static const img_name rs_ctms[] = {
    {"half_pixel", 11, ONR_OPSET_MAX},       {"half_pixel_symmetric", 19, ONR_OPSET_MAX},
    {"pytorch_half_pixel", 11, ONR_OPSET_MAX}, {"align_corners", 11, ONR_OPSET_MAX},
    {"asymmetric", 11, ONR_OPSET_MAX},       {"tf_half_pixel_for_nn", 11, 12},
    {"tf_crop_and_resize", 11, ONR_OPSET_MAX}};

/* NM_SIMPLE: opset 10 and Upsample (floor up, ceil down). */
enum { NM_PREFER_FLOOR, NM_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE };
static const img_name rs_nearest_modes[] = {{"round_prefer_floor", 11, ONR_OPSET_MAX},
                                            {"round_prefer_ceil", 11, ONR_OPSET_MAX},
                                            {"floor", 11, ONR_OPSET_MAX},
                                            {"ceil", 11, ONR_OPSET_MAX}};

enum { KAR_STRETCH, KAR_NOT_LARGER, KAR_NOT_SMALLER };
static const img_name rs_kars[] = {{"stretch", 18, ONR_OPSET_MAX},
                                   {"not_larger", 18, ONR_OPSET_MAX},
                                   {"not_smaller", 18, ONR_OPSET_MAX}};

enum { PATH_EMPTY, PATH_GATHER, PATH_PLANE, PATH_GENERIC };

/* Most taps x outputs one axis's table may hold (an antialias filter over
 * a tiny scale); beyond it the node is refused. */
#define RS_MAX_TABLE ((int64_t)1 << 26)

static int rs_force_ref;
void onr_resize_force_reference(int on) { rs_force_ref = on; }

typedef struct rs_axis {
    int64_t in, out;
    int64_t taps;       /* taps per output position */
    int64_t start;      /* first tap relative to ceil(x) - 1 */
    int identity;       /* out == in and output o reads input o alone */
    double scale;       /* output / input */
    double len;         /* length_resized before flooring */
    double roi0, roi1;  /* tf_crop_and_resize region, normalized */
    size_t idx_off, w_off, flag_off; /* this axis's table in scratch */
} rs_axis;

typedef struct resize_params {
    /* create */
    int upsample, mode, ctm, nearest, antialias, exclude_outside, kar;
    float cubic_a, extrap;
    int n_axes;
    int64_t axes[ONR_MAX_RANK];
    int n_scales_attr; /* Upsample-7 */
    float scales_attr[ONR_MAX_RANK];
    int i_roi, i_scales, i_sizes; /* input positions, -1 when the opset has none */
    /* reshape */
    int rank, path;
    onr_dtype dt;
    rs_axis ax[ONR_MAX_RANK];
    size_t rows_off, row_stride; /* plane path: per-thread rows of floats */
    int row_threads;             /* rows carved: at most this many threads */
    size_t wf_off;               /* plane path: horizontal weights as the row type */
    /* generic path, separable: the resized axes one pass each (n_pass, in
     * order[]), through two buffers of doubles (buf_off) */
    int n_pass, order[ONR_MAX_RANK];
    size_t buf_off[2];
} resize_params;

/* ---- create ------------------------------------------------------------ */

static int rs_create_common(onr_create_ctx *c, resize_params *p, int upsample)
{
    int64_t op = c->opset;
    int st = img_attr_enum(c, "mode", "nearest", rs_modes, upsample ? 2 : 3, &p->mode);
    if (st) return st;
    p->upsample = upsample;
    p->i_roi = p->i_scales = p->i_sizes = -1;
    p->cubic_a = -0.75f;
    if (upsample || op < 11) {
        p->ctm = CT_ASYMMETRIC;
        p->nearest = NM_SIMPLE;
        if (p->mode == RS_CUBIC)
            return onr_seterr(c->err, ONR_E_MODEL, "attribute 'mode' = 'cubic' is not valid at opset %lld",
                              (long long)op);
        if (upsample && op < 9) {
            size_t n;
            const onr_attr *a = onr_node_attr(c->node, "scales");
            if (!a || a->type != ONR_ATTR_FLOATS)
                return onr_seterr(c->err, ONR_E_MODEL,
                                  "attribute 'scales' (floats) is required before opset 9");
            const float *s = onr_attr_floats(c->node, "scales", &n);
            if (n > ONR_MAX_RANK)
                return onr_seterr(c->err, ONR_E_MODEL, "attribute 'scales' has %zu values, at most %d",
                                  n, ONR_MAX_RANK);
            memcpy(p->scales_attr, s, n * sizeof(float));
            p->n_scales_attr = (int)n;
        } else {
            p->i_scales = 1;
        }
        return ONR_OK;
    }
    p->i_roi = 1, p->i_scales = 2, p->i_sizes = 3;
    if ((st = img_attr_enum(c, "coordinate_transformation_mode", "half_pixel", rs_ctms, 7, &p->ctm)) ||
        (st = img_attr_enum(c, "nearest_mode", "round_prefer_floor", rs_nearest_modes, 4, &p->nearest)) ||
        (st = img_attr_float(c, "cubic_coeff_a", -0.75f, &p->cubic_a)) ||
        (st = img_attr_bool(c, "exclude_outside", &p->exclude_outside)) ||
        (st = img_attr_float(c, "extrapolation_value", 0.f, &p->extrap)))
        return st;
    if (!isfinite(p->cubic_a))
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'cubic_coeff_a' must be finite");
    if (op >= 18) {
        if ((st = img_attr_bool(c, "antialias", &p->antialias)) ||
            (st = img_attr_enum(c, "keep_aspect_ratio_policy", "stretch", rs_kars, 3, &p->kar)))
            return st;
        const onr_attr *a = onr_node_attr(c->node, "axes");
        if (a) {
            if (a->type != ONR_ATTR_INTS)
                return onr_seterr(c->err, ONR_E_MODEL, "attribute 'axes' must be a list of ints");
            if (a->n > ONR_MAX_RANK)
                return onr_seterr(c->err, ONR_E_MODEL, "attribute 'axes' has %zu values, at most %d",
                                  a->n, ONR_MAX_RANK);
            memcpy(p->axes, a->ints, a->n * sizeof(int64_t));
            p->n_axes = (int)a->n;
        }
    }
    return ONR_OK;
}

static int resize_create(onr_create_ctx *c, void *params) { return rs_create_common(c, params, 0); }
static int upsample_create(onr_create_ctx *c, void *params) { return rs_create_common(c, params, 1); }

/* ---- reshape ------------------------------------------------------------ */

static int rs_present(const onr_kctx *ctx, int i) { return i >= 0 && i < ctx->n_in && ctx->in[i]; }

/* sizes: int64 (int32 accepted), 1-D. */
static int rs_read_sizes(onr_kctx *ctx, int i, int64_t *v, int *n)
{
    const onr_tensor *t = ctx->in[i];
    if (!t->data && t->numel > 0) return ONR_SHAPE_DEFER;
    if (t->dtype != ONR_INT64 && t->dtype != ONR_INT32)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input 'sizes' must be int64, not %s",
                          onr_dtype_name(t->dtype));
    if (t->rank > 1 || t->numel > ONR_MAX_RANK)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input 'sizes' must be 1-D with at most %d values",
                          ONR_MAX_RANK);
    for (int64_t k = 0; k < t->numel; k++) v[k] = tn_index_at(t, k);
    *n = (int)t->numel;
    return ONR_OK;
}

/* Taps of one axis and where they start relative to ceil(x) - 1. */
static void rs_taps(const resize_params *p, rs_axis *a)
{
    if (a->identity || p->mode == RS_NEAREST) {
        a->taps = 1, a->start = 0;
        return;
    }
    double s = p->antialias && a->scale < 1 ? a->scale : 1;
    double support = p->mode == RS_LINEAR ? 1 : 2;
    double st = floor(-support / s) + 1;
    a->start = st < -1e15 ? INT64_MIN / 4 : (int64_t)st;
    a->taps = st < -1e15 ? INT64_MAX / 4 : 2 - 2 * a->start;
}

/* The generic path sums, for each output, over the product of its axes'
 * taps: fine for a few taps (trilinear 8, bicubic 16), exponential in the
 * rank beyond (cubic over 8 axes is 65536 per output). Past RS_MAX_PRODUCT
 * it resizes one axis per pass instead (the filter is separable), through
 * doubles, shrinking axes first so the intermediates stay small; the
 * buffers count as scratch. */
#define RS_MAX_PRODUCT 16
static int rs_plan_passes(onr_kctx *ctx, resize_params *p, size_t *used)
{
    int r = p->rank, n = 0;
    int64_t prod = 1;
    for (int d = 0; d < r; d++) {
        prod = prod > RS_MAX_PRODUCT ? prod : prod * p->ax[d].taps;
        if (p->ax[d].taps > 1 || !p->ax[d].identity) p->order[n++] = d;
    }
    if (prod <= RS_MAX_PRODUCT || rs_force_ref) return ONR_OK;
    /* shrinking axes first (smallest out/in), a stable insertion sort */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0; j--) {
            const rs_axis *a = &p->ax[p->order[j - 1]], *b = &p->ax[p->order[j]];
            if ((double)b->out * (double)a->in >= (double)a->out * (double)b->in) break;
            int t = p->order[j - 1];
            p->order[j - 1] = p->order[j];
            p->order[j] = t;
        }
    int64_t cur[ONR_MAX_RANK], peak = 0;
    for (int d = 0; d < r; d++) cur[d] = p->ax[d].in;
    for (int i = 0; i < n; i++) {
        cur[p->order[i]] = p->ax[p->order[i]].out;
        int64_t e = 1;
        for (int d = 0; d < r; d++) {
            if (cur[d] > 0 && e > INT64_MAX / 8 / cur[d])
                return onr_seterr(ctx->err, ONR_E_NOMEM, "Resize: an intermediate of the separable pass overflows");
            e *= cur[d];
        }
        peak = e > peak ? e : peak;
    }
    if ((uint64_t)peak * sizeof(double) > onr_max_tensor_bytes())
        return onr_seterr(ctx->err, ONR_E_NOMEM,
                          "Resize: the separable pass needs %lld doubles per buffer, over the tensor limit",
                          (long long)peak);
    p->n_pass = n;
    p->buf_off[0] = onr_carve_at(used, (size_t)peak * sizeof(double));
    p->buf_off[1] = n > 1 ? onr_carve_at(used, (size_t)peak * sizeof(double)) : p->buf_off[0];
    return ONR_OK;
}

static int resize_reshape(onr_kctx *ctx, size_t *scratch)
{
    resize_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int r = x->rank;
    const char *mname = rs_modes[p->mode].name;
    if (r == 0) return onr_seterr(ctx->err, ONR_E_MODEL, "input 'X' is a scalar, nothing to resize");
    if (p->mode != RS_NEAREST && !(ONR_TYPES_NUM & ONR_T(x->dtype)))
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "mode '%s' needs a numeric input, 'X' is %s",
                          mname, onr_dtype_name(x->dtype));
    p->rank = r;
    p->dt = x->dtype;

    /* the axes that roi, scales and sizes name */
    int axes[ONR_MAX_RANK], K = r;
    if (p->n_axes) {
        if ((st = tn_norm_axes(ctx->err, p->axes, p->n_axes, r, axes, "axes"))) return st;
        K = p->n_axes;
    } else {
        for (int d = 0; d < r; d++) axes[d] = d;
    }

    double sc[ONR_MAX_RANK];
    int64_t sz[ONR_MAX_RANK];
    int nsc = 0, nsz = 0;
    if (p->n_scales_attr) {
        nsc = p->n_scales_attr;
        for (int k = 0; k < nsc; k++) sc[k] = p->scales_attr[k];
    } else if (rs_present(ctx, p->i_scales)) {
        if ((st = img_read_floats(ctx, p->i_scales, "scales", sc, ONR_MAX_RANK, &nsc))) return st;
    } else if (p->i_sizes < 0) {
        return onr_seterr(ctx->err, ONR_E_MODEL, "input 'scales' is required at opset %lld",
                          (long long)ctx->opset);
    }
    if (rs_present(ctx, p->i_sizes) && (st = rs_read_sizes(ctx, p->i_sizes, sz, &nsz))) return st;
    if (p->i_sizes >= 0 && ctx->opset < 13 && !rs_present(ctx, p->i_scales))
        return onr_seterr(ctx->err, ONR_E_MODEL, "input 'scales' is required at opset %lld (empty when 'sizes' is given)",
                          (long long)ctx->opset);
    if (nsc && nsz)
        return onr_seterr(ctx->err, ONR_E_MODEL, "inputs 'scales' and 'sizes' are both given; only one may be");
    if (!nsc && !nsz)
        return onr_seterr(ctx->err, ONR_E_MODEL, "one of inputs 'scales' and 'sizes' must be given (non-empty)");
    if ((nsc ? nsc : nsz) != K)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input '%s' has %d values, expected %d (%s)",
                          nsc ? "scales" : "sizes", nsc ? nsc : nsz, K,
                          p->n_axes ? "one per entry of 'axes'" : "the rank of 'X'");

    double roi[2 * ONR_MAX_RANK];
    if (p->ctm == CT_TF_CROP) {
        int nroi = 0;
        if (!rs_present(ctx, p->i_roi))
            return onr_seterr(ctx->err, ONR_E_MODEL, "input 'roi' is required by tf_crop_and_resize");
        if ((st = img_read_floats(ctx, p->i_roi, "roi", roi, 2 * ONR_MAX_RANK, &nroi))) return st;
        if (nroi != 2 * K)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "input 'roi' has %d values, tf_crop_and_resize needs %d (starts and ends of %d axes)",
                              nroi, 2 * K, K);
        for (int k = 0; k < 2 * K; k++)
            if (!isfinite(roi[k]))
                return onr_seterr(ctx->err, ONR_E_MODEL, "input 'roi' value %d is not finite", k);
        if (x->dtype == ONR_STRING)
            return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                              "tf_crop_and_resize cannot extrapolate a string tensor");
    }

    int64_t odims[ONR_MAX_RANK];
    for (int d = 0; d < r; d++) {
        rs_axis *a = &p->ax[d];
        memset(a, 0, sizeof *a);
        a->in = a->out = x->dims[d];
        a->scale = 1, a->roi0 = 0, a->roi1 = 1;
        a->len = (double)a->in;
    }
    double kar_scale = 0;
    if (nsz && p->kar != KAR_STRETCH) {
        for (int k = 0; k < K; k++) {
            int64_t in = x->dims[axes[k]];
            double s = in > 0 ? (double)sz[k] / (double)in : 1;
            if (k == 0 || (p->kar == KAR_NOT_LARGER ? s < kar_scale : s > kar_scale)) kar_scale = s;
        }
    }
    for (int k = 0; k < K; k++) {
        rs_axis *a = &p->ax[axes[k]];
        if (p->ctm == CT_TF_CROP) a->roi0 = roi[k], a->roi1 = roi[K + k];
        double ext = p->ctm == CT_TF_CROP ? a->roi1 - a->roi0 : 1;
        if (nsc) {
            double s = sc[k];
            if (!(s > 0) || !isfinite(s))
                return onr_seterr(ctx->err, ONR_E_MODEL, "input 'scales' value %d is %g; scales must be positive",
                                  k, s);
            if (p->upsample && s < 1)
                return onr_seterr(ctx->err, ONR_E_MODEL, "Upsample scale %d is %g; it must be >= 1", k, s);
            float lf = (float)a->in * (float)ext * (float)s;
            if (!(lf < 9.0e18f))
                return onr_seterr(ctx->err, ONR_E_NOMEM,
                                  "output axis %d would have %g elements (input %lld x scale %g)",
                                  axes[k], (double)lf, (long long)a->in, s);
            a->out = lf > 0 ? (int64_t)floorf(lf) : 0;
            a->scale = s;
            a->len = (double)a->in * ext * s;
        } else {
            if (sz[k] < 0)
                return onr_seterr(ctx->err, ONR_E_MODEL, "input 'sizes' value %d is %lld; sizes must be >= 0",
                                  k, (long long)sz[k]);
            if (a->in == 0 && sz[k] > 0)
                return onr_seterr(ctx->err, ONR_E_MODEL, "cannot resize axis %d of size 0 to %lld",
                                  axes[k], (long long)sz[k]);
            if (a->in == 0) continue;
            if (p->kar != KAR_STRETCH) {
                double o = floor(kar_scale * (double)a->in + 0.5);
                if (!(o < 9.0e18))
                    return onr_seterr(ctx->err, ONR_E_NOMEM, "output axis %d would have %g elements",
                                      axes[k], o);
                a->out = (int64_t)o;
                a->scale = kar_scale;
            } else {
                a->out = sz[k];
                a->scale = (double)sz[k] / (double)a->in;
            }
            a->len = a->scale * (double)a->in;
        }
    }
    for (int d = 0; d < r; d++) odims[d] = p->ax[d].out;
    if ((st = onr_set_out(ctx, 0, x->dtype, r, odims))) return st;

    int64_t numel = 1;
    for (int d = 0; d < r; d++) numel = p->ax[d].out == 0 ? 0 : numel;
    if (numel == 0) {
        p->path = PATH_EMPTY;
        return ONR_OK;
    }
    size_t used = 0;
    for (int d = 0; d < r; d++) {
        rs_axis *a = &p->ax[d];
        /* an axis of one element stays that element whatever the mode and
         * the coordinate transform (every tap clamps to it, the weights sum
         * to 1), except where tf_crop_and_resize extrapolates */
        a->identity = a->in == a->out && p->ctm != CT_TF_CROP &&
                      ((a->scale == 1 && p->ctm != CT_TF_NN) || a->in == 1);
        rs_taps(p, a);
        if (a->taps > RS_MAX_TABLE / a->out)
            return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                              "axis %d: the antialias filter would need %lld taps for each of %lld outputs (scale %g)",
                              d, (long long)a->taps, (long long)a->out, a->scale);
        size_t n = (size_t)(a->taps * a->out);
        a->idx_off = onr_carve_at(&used, n * sizeof(int64_t));
        a->w_off = onr_carve_at(&used, n * sizeof(double));
        a->flag_off = onr_carve_at(&used, (size_t)a->out);
    }
    int plane = (ONR_TYPES_FLOAT & ONR_T(x->dtype)) && r >= 2 && p->mode != RS_NEAREST;
    for (int d = 0; d + 2 < r; d++) plane = plane && p->ax[d].identity;
    if (p->mode == RS_NEAREST && !(rs_force_ref && (ONR_TYPES_NUM & ONR_T(x->dtype))))
        p->path = PATH_GATHER;
    else if (plane && !rs_force_ref)
        p->path = PATH_PLANE;
    else
        p->path = PATH_GENERIC;
    p->n_pass = 0;
    if (p->path == PATH_GENERIC && (st = rs_plan_passes(ctx, p, &used))) return st;
    if (p->path == PATH_PLANE) {
        int nt = ctx->nthreads > 0 ? ctx->nthreads : 1;
        p->row_threads = nt;
        p->row_stride = onr_thread_stride((size_t)x->dims[r - 1] * sizeof(double));
        p->rows_off = onr_carve_at(&used, p->row_stride * (size_t)nt);
        const rs_axis *aw = &p->ax[r - 1];
        p->wf_off = onr_carve_at(&used, (size_t)(aw->out * aw->taps) * sizeof(double));
    }
    if (used > onr_max_tensor_bytes())
        return onr_seterr(ctx->err, ONR_E_NOMEM,
                          "the interpolation tables would take %zu bytes, over the tensor limit", used);
    *scratch = used;
    return ONR_OK;
}

/* ---- tables --------------------------------------------------------------- */

/* x_original of output position o along axis a. */
static double rs_coord(const resize_params *p, const rs_axis *a, int64_t o)
{
    double x = (double)o, s = a->scale, L = a->len, in = (double)a->in;
    switch (p->ctm) {
    case CT_HALF_PIXEL: return (x + 0.5) / s - 0.5;
    case CT_HALF_PIXEL_SYM: {
        double adj = (double)a->out / L, off = in / 2 * (1 - adj);
        return off + (x + 0.5) / s - 0.5;
    }
    case CT_PYTORCH: return L > 1 ? (x + 0.5) / s - 0.5 : 0;
    case CT_ALIGN_CORNERS: return L > 1 ? x * (in - 1) / (L - 1) : 0;
    case CT_TF_NN: return (x + 0.5) / s;
    case CT_TF_CROP:
        return L > 1 ? a->roi0 * (in - 1) + x * (a->roi1 - a->roi0) * (in - 1) / (L - 1)
                     : 0.5 * (a->roi0 + a->roi1) * (in - 1);
    default: return x / s; /* asymmetric */
    }
}

static int64_t rs_round(int mode, double x, double scale)
{
    double f = floor(x);
    switch (mode) {
    case NM_PREFER_FLOOR: return (int64_t)(x - f <= 0.5 ? f : f + 1);
    case NM_PREFER_CEIL: return (int64_t)(x - f < 0.5 ? f : f + 1);
    case NM_FLOOR: return (int64_t)f;
    case NM_CEIL: return (int64_t)ceil(x);
    default: return (int64_t)(scale < 1 ? ceil(x) : f); /* simple */
    }
}

static inline int64_t rs_clamp(int64_t i, int64_t n) { return i < 0 ? 0 : i >= n ? n - 1 : i; }

/* Keys' cubic convolution kernel with coefficient A. */
static inline double rs_cubic(double d, double A)
{
    d = fabs(d);
    if (d <= 1) return ((A + 2) * d - (A + 3)) * d * d + 1;
    if (d < 2) return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A;
    return 0;
}

static void rs_build_axis(const resize_params *p, const rs_axis *a, int64_t *idx, double *w,
                          uint8_t *flag)
{
    int64_t F = a->taps, in = a->in;
    double s = p->antialias && a->scale < 1 ? a->scale : 1;
    for (int64_t o = 0; o < a->out; o++) {
        int64_t *ix = idx + o * F;
        double *wt = w + o * F;
        flag[o] = 0;
        if (a->identity) {
            ix[0] = o, wt[0] = 1;
            continue;
        }
        double x = rs_coord(p, a, o);
        /* roi and scales are the model's: keep x where it converts to an
         * integer (beyond 2^52 a double has no fraction, so the taps are
         * the same edge pixels); NaN goes to an edge too */
        if (!(fabs(x) < 0x1p52)) x = x > 0 ? 0x1p52 : -0x1p52;
        if (p->ctm == CT_TF_CROP && (x < 0 || x > (double)(in - 1))) {
            flag[o] = 1;
            for (int64_t k = 0; k < F; k++) ix[k] = 0, wt[k] = 0;
            continue;
        }
        if (p->mode == RS_NEAREST) {
            ix[0] = rs_clamp(rs_round(p->nearest, x, a->scale), in), wt[0] = 1;
            continue;
        }
        /* taps b + start ... with b = ceil(x) - 1, so x - b is in (0, 1] */
        int64_t b = (int64_t)ceil(x) - 1;
        double sum = 0;
        for (int64_t k = 0; k < F; k++) {
            int64_t j = b + a->start + k;
            double d = ((double)j - x) * s, v;
            if (p->mode == RS_LINEAR) v = d > -1 && d < 1 ? 1 - fabs(d) : 0;
            else v = rs_cubic(d, p->cubic_a);
            if (p->exclude_outside && (j < 0 || j >= in)) v = 0;
            ix[k] = rs_clamp(j, in), wt[k] = v;
            sum += v;
        }
        if ((p->antialias || p->exclude_outside) && sum != 0)
            for (int64_t k = 0; k < F; k++) wt[k] /= sum;
    }
}

/* ---- kernels -------------------------------------------------------------- */

typedef struct rs_tab {
    const int64_t *idx;
    const double *w;
    const uint8_t *flag;
    int64_t taps, stride; /* input stride of the axis, in elements */
} rs_tab;

/* Output row q (all axes but the last) to its per-axis positions; returns
 * whether any of them is outside (tf_crop_and_resize). */
static inline int rs_row_pos(const resize_params *p, const rs_tab *t, int64_t q, int64_t *pos)
{
    int out = 0;
    for (int d = p->rank - 2; d >= 0; d--) {
        int64_t od = p->ax[d].out;
        pos[d] = q % od;
        q /= od;
        out |= t[d].flag[pos[d]];
    }
    return out;
}

/* The gather and plane paths skip their remaining rows once the run is
 * cancelled (onr_step_run then fails the step: "the run was cancelled"). */
#define RS_GATHER(T)                                                                             \
    do {                                                                                         \
        const T *xs = xv;                                                                        \
        T *ys = yv;                                                                              \
        T ev;                                                                                    \
        memcpy(&ev, &evb, sizeof ev);                                                                \
        _Pragma("omp parallel for num_threads(onr_team(nt)) if (numel > ONR_PAR_MIN && nt > 1)") \
        for (int64_t q = 0; q < rows; q++) {                                                     \
            if (onr_cancelled(ctx)) continue;                                                    \
            int64_t pos[ONR_MAX_RANK], base = 0;                                                 \
            int outside = rs_row_pos(p, t, q, pos);                                              \
            for (int d = 0; d < r - 1; d++) base += t[d].idx[pos[d]] * t[d].stride;              \
            T *yr = ys + q * OW;                                                                 \
            for (int64_t ow = 0; ow < OW; ow++)                                                  \
                yr[ow] = outside || lt->flag[ow] ? ev : xs[base + lt->idx[ow]];                  \
        }                                                                                        \
    } while (0)

static int rs_gather(const resize_params *p, const rs_tab *t, const onr_tensor *x, onr_tensor *y,
                     int nt, const onr_kctx *ctx)
{
    onr_err *err = ctx->err;
    int r = p->rank;
    const rs_tab *lt = &t[r - 1];
    int64_t OW = p->ax[r - 1].out, numel = y->numel, rows = numel / OW;
    const void *xv = x->data;
    void *yv = y->data;
    uint64_t evb = 0;
    if (p->dt != ONR_STRING) img_store(p->dt, &evb, 0, p->extrap);
    switch (tn_esz(p->dt)) {
    case 1: RS_GATHER(uint8_t); return ONR_OK;
    case 2: RS_GATHER(uint16_t); return ONR_OK;
    case 4: RS_GATHER(uint32_t); return ONR_OK;
    case 8:
        if (p->dt != ONR_STRING) {
            RS_GATHER(uint64_t);
            return ONR_OK;
        }
        break;
    default: break;
    }
    if (p->dt != ONR_STRING)
        return onr_seterr(err, ONR_E_UNSUPPORTED, "Resize: element type %s is not supported",
                          onr_dtype_name(p->dt));
    char *const *xs = x->data;
    char **ys = y->data;
    for (int64_t q = 0; q < rows; q++) {
        if (onr_cancelled(ctx)) return ONR_OK;
        int64_t pos[ONR_MAX_RANK], base = 0;
        rs_row_pos(p, t, q, pos);
        for (int d = 0; d < r - 1; d++) base += t[d].idx[pos[d]] * t[d].stride;
        for (int64_t ow = 0; ow < OW; ow++)
            if (tn_copy(ONR_STRING, ys + q * OW + ow, xs + base + lt->idx[ow], 1))
                return onr_seterr(err, ONR_E_NOMEM, "out of memory copying strings");
    }
    return ONR_OK;
}

static int rs_separable(const resize_params *p, const rs_tab *t, const onr_tensor *x, onr_tensor *y,
                        int nt, const onr_kctx *ctx);

/* The reference: every output element is the sum over the product of its
 * per-axis taps, in double. */
static int rs_generic(const resize_params *p, const rs_tab *t, const onr_tensor *x, onr_tensor *y,
                      int nt, const onr_kctx *ctx)
{
    if (p->n_pass) return rs_separable(p, t, x, y, nt, ctx);
    int r = p->rank;
    onr_dtype dt = p->dt;
    int64_t OW = p->ax[r - 1].out, numel = y->numel, rows = numel / OW, work = numel;
    for (int d = 0; d < r; d++) work = work > INT64_MAX / 8 ? work : work * t[d].taps;
    const void *xv = x->data;
    void *yv = y->data;
    double extrap = p->extrap;
    _Pragma("omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN && nt > 1)")
    for (int64_t q = 0; q < rows; q++) {
        if (onr_cancelled(ctx)) continue;
        int64_t pos[ONR_MAX_RANK], k[ONR_MAX_RANK];
        int outside = rs_row_pos(p, t, q, pos);
        for (int64_t ow = 0; ow < OW; ow++) {
            pos[r - 1] = ow;
            if (outside || t[r - 1].flag[ow]) {
                img_store(dt, yv, q * OW + ow, extrap);
                continue;
            }
            double acc = 0;
            for (int d = 0; d < r; d++) k[d] = 0;
            for (;;) {
                double wp = 1;
                int64_t off = 0;
                for (int d = 0; d < r; d++) {
                    int64_t e = pos[d] * t[d].taps + k[d];
                    wp *= t[d].w[e];
                    off += t[d].idx[e] * t[d].stride;
                }
                acc += wp * img_load(dt, xv, off);
                int d = r - 1;
                while (d >= 0 && ++k[d] == t[d].taps) k[d--] = 0;
                if (d < 0) break;
            }
            img_store(dt, yv, q * OW + ow, acc);
        }
    }
    if (onr_cancelled(ctx)) return onr_seterr(ctx->err, ONR_E_RUNTIME, "the run was cancelled");
    return ONR_OK;
}

/* One axis's pass of the separable path: src (type sdt, dims cur) to dst
 * (doubles, axis d resized to its output length). Rows (outer x output
 * position) run in parallel, inner elements contiguous. Cancelled runs skip
 * the remaining rows. */
static void rs_pass(const rs_tab *td, int64_t in_d, int64_t out_d, int64_t outer, int64_t inner,
                    onr_dtype sdt, const void *src, double *dst, int nt, const onr_kctx *ctx)
{
    int64_t F = td->taps, rows = outer * out_d, work = rows * inner * F;
    _Pragma("omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN && nt > 1)")
    for (int64_t q = 0; q < rows; q++) {
        if (onr_cancelled(ctx)) continue;
        int64_t o = q / out_d, j = q % out_d;
        double *dr = dst + q * inner;
        for (int64_t i = 0; i < inner; i++) dr[i] = 0;
        for (int64_t k = 0; k < F; k++) {
            double w = td->w[j * F + k];
            int64_t base = (o * in_d + td->idx[j * F + k]) * inner;
            if (sdt == ONR_DOUBLE) {
                const double *sr = (const double *)src + base;
                for (int64_t i = 0; i < inner; i++) dr[i] += w * sr[i];
            } else {
                for (int64_t i = 0; i < inner; i++) dr[i] += w * img_load(sdt, src, base + i);
            }
        }
    }
}

static int rs_separable(const resize_params *p, const rs_tab *t, const onr_tensor *x, onr_tensor *y,
                        int nt, const onr_kctx *ctx)
{
    int r = p->rank;
    int64_t cur[ONR_MAX_RANK];
    for (int d = 0; d < r; d++) cur[d] = p->ax[d].in;
    const void *src = x->data;
    onr_dtype sdt = p->dt;
    for (int i = 0; i < p->n_pass; i++) {
        int d = p->order[i];
        int64_t outer = 1, inner = 1;
        for (int e = 0; e < d; e++) outer *= cur[e];
        for (int e = d + 1; e < r; e++) inner *= cur[e];
        double *dst = onr_scratch_at(ctx, p->buf_off[i & 1]);
        rs_pass(&t[d], cur[d], p->ax[d].out, outer, inner, sdt, src, dst, nt, ctx);
        if (onr_cancelled(ctx)) return onr_seterr(ctx->err, ONR_E_RUNTIME, "the run was cancelled");
        cur[d] = p->ax[d].out;
        src = dst;
        sdt = ONR_DOUBLE;
    }
    /* store, with the extrapolation value where any axis is outside */
    int64_t OW = p->ax[r - 1].out, rows = y->numel / OW;
    double extrap = p->extrap;
    void *yv = y->data;
    _Pragma("omp parallel for num_threads(onr_team(nt)) if (y->numel > ONR_PAR_MIN && nt > 1)")
    for (int64_t q = 0; q < rows; q++) {
        int64_t pos[ONR_MAX_RANK];
        int outside = rs_row_pos(p, t, q, pos);
        for (int64_t ow = 0; ow < OW; ow++)
            img_store(p->dt, yv, q * OW + ow,
                      outside || t[r - 1].flag[ow] ? extrap : img_load(sdt, src, q * OW + ow));
    }
    return ONR_OK;
}

/* Only the last two axes resized (float types): per output row, the
 * vertical taps blend input rows into a row of A (float, or double for
 * double inputs), then the horizontal taps read it. DIRECT: T is A, so a
 * row read with weight 1 is used in place. */
#define RS_PLANE(sfx, T, A, LOAD, STORE, DIRECT)                                                 \
    static void rs_plane_##sfx(const resize_params *p, const rs_tab *t, const onr_tensor *x,     \
                               onr_tensor *y, void *rows, size_t row_stride, A *wf, int nt,      \
                               const onr_kctx *ctx)                                              \
    {                                                                                            \
        int r = p->rank;                                                                         \
        const rs_tab *th = &t[r - 2], *tw = &t[r - 1];                                           \
        int64_t IH = p->ax[r - 2].in, IW = p->ax[r - 1].in, OH = p->ax[r - 2].out,               \
                OW = p->ax[r - 1].out;                                                           \
        int64_t FH = th->taps, FW = tw->taps, planes = y->numel / (OH * OW), n = planes * OH;    \
        int64_t work = y->numel * (FH + FW);                                                     \
        const T *xs = x->data;                                                                   \
        T *ys = y->data;                                                                         \
        A ev = (A)p->extrap;                                                                     \
        /* the horizontal weights once in A; whether any column is outside */                   \
        int wflags = 0;                                                                          \
        for (int64_t k = 0; k < OW * FW; k++) wf[k] = (A)tw->w[k];                               \
        for (int64_t ow = 0; ow < OW; ow++) wflags |= tw->flag[ow];                              \
        _Pragma("omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN && nt > 1)") \
        for (int64_t q = 0; q < n; q++) {                                                        \
            if (onr_cancelled(ctx)) continue;                                                    \
            int64_t pl = q / OH, oh = q - pl * OH;                                               \
            T *yr = ys + q * OW;                                                                 \
            if (th->flag[oh]) {                                                                  \
                for (int64_t ow = 0; ow < OW; ow++) yr[ow] = STORE(ev);                          \
                continue;                                                                        \
            }                                                                                    \
            const T *xp = xs + pl * IH * IW;                                                     \
            const A *src;                                                                        \
            const int64_t *hi = th->idx + oh * FH;                                               \
            const double *hw = th->w + oh * FH;                                                  \
            A *acc = (A *)((char *)rows + (size_t)omp_get_thread_num() * row_stride);            \
            const T *r0 = xp + hi[0] * IW;                                                       \
            A w0 = (A)hw[0];                                                                     \
            if (DIRECT && FH == 1 && hw[0] == 1) {                                               \
                src = (const A *)(const void *)r0;                                               \
            } else if (FH == 2) {                                                                \
                const T *r1 = xp + hi[1] * IW;                                                   \
                A w1 = (A)hw[1];                                                                 \
                for (int64_t iw = 0; iw < IW; iw++) acc[iw] = w0 * LOAD(r0[iw]) + w1 * LOAD(r1[iw]); \
                src = acc;                                                                       \
            } else if (FH == 4) {                                                                \
                const T *r1 = xp + hi[1] * IW, *r2 = xp + hi[2] * IW, *r3 = xp + hi[3] * IW;     \
                A w1 = (A)hw[1], w2 = (A)hw[2], w3 = (A)hw[3];                                   \
                for (int64_t iw = 0; iw < IW; iw++)                                              \
                    acc[iw] = w0 * LOAD(r0[iw]) + w1 * LOAD(r1[iw]) + w2 * LOAD(r2[iw]) +        \
                              w3 * LOAD(r3[iw]);                                                 \
                src = acc;                                                                       \
            } else {                                                                             \
                for (int64_t iw = 0; iw < IW; iw++) acc[iw] = w0 * LOAD(r0[iw]);                 \
                for (int64_t k = 1; k < FH; k++) {                                               \
                    const T *rk = xp + hi[k] * IW;                                               \
                    A wk = (A)hw[k];                                                             \
                    for (int64_t iw = 0; iw < IW; iw++) acc[iw] += wk * LOAD(rk[iw]);            \
                }                                                                                \
                src = acc;                                                                       \
            }                                                                                    \
            const int64_t *wi = tw->idx;                                                         \
            if (FW == 1) {                                                                       \
                for (int64_t ow = 0; ow < OW; ow++) yr[ow] = STORE(wf[ow] * src[wi[ow]]);        \
            } else if (FW == 2) {                                                                \
                for (int64_t ow = 0; ow < OW; ow++)                                              \
                    yr[ow] = STORE(wf[2 * ow] * src[wi[2 * ow]] + wf[2 * ow + 1] * src[wi[2 * ow + 1]]); \
            } else if (FW == 4) {                                                                \
                for (int64_t ow = 0; ow < OW; ow++) {                                            \
                    const int64_t *i4 = wi + 4 * ow;                                             \
                    const A *w4 = wf + 4 * ow;                                                   \
                    yr[ow] = STORE(w4[0] * src[i4[0]] + w4[1] * src[i4[1]] + w4[2] * src[i4[2]] + \
                                   w4[3] * src[i4[3]]);                                          \
                }                                                                                \
            } else {                                                                             \
                for (int64_t ow = 0; ow < OW; ow++) {                                            \
                    A v = 0;                                                                     \
                    for (int64_t k = 0; k < FW; k++) v += wf[ow * FW + k] * src[wi[ow * FW + k]]; \
                    yr[ow] = STORE(v);                                                           \
                }                                                                                \
            }                                                                                    \
            if (wflags)                                                                          \
                for (int64_t ow = 0; ow < OW; ow++)                                              \
                    if (tw->flag[ow]) yr[ow] = STORE(ev);                                        \
        }                                                                                        \
    }

#define RS_ID(v) (v)
#define RS_LD_F16(v) onr_half_to_float(v)
#define RS_ST_F16(v) onr_float_to_half(v)
#define RS_LD_BF16(v) onr_bf16_to_float(v)
#define RS_ST_BF16(v) onr_float_to_bf16(v)
RS_PLANE(f32, float, float, RS_ID, RS_ID, 1)
RS_PLANE(f64, double, double, RS_ID, RS_ID, 1)
RS_PLANE(f16, uint16_t, float, RS_LD_F16, RS_ST_F16, 0)
RS_PLANE(bf16, uint16_t, float, RS_LD_BF16, RS_ST_BF16, 0)

static int resize_run(const onr_kctx *ctx)
{
    const resize_params *p = ctx->params;
    if (p->path == PATH_EMPTY) return ONR_OK;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    rs_tab t[ONR_MAX_RANK];
    int64_t stride = 1;
    for (int d = p->rank - 1; d >= 0; d--) {
        const rs_axis *a = &p->ax[d];
        int64_t *idx = onr_scratch_at(ctx, a->idx_off);
        double *w = onr_scratch_at(ctx, a->w_off);
        uint8_t *flag = onr_scratch_at(ctx, a->flag_off);
        rs_build_axis(p, a, idx, w, flag);
        t[d] = (rs_tab){idx, w, flag, a->taps, stride};
        stride *= a->in;
    }
    int nt = ctx->nthreads > 0 ? ctx->nthreads : 1;
    if (p->path == PATH_PLANE && nt > p->row_threads) nt = p->row_threads;
    switch (p->path) {
    case PATH_GATHER: return rs_gather(p, t, x, y, nt, ctx);
    case PATH_PLANE:
    {
        void *rows = onr_scratch_at(ctx, p->rows_off), *wf = onr_scratch_at(ctx, p->wf_off);
        switch (p->dt) {
        case ONR_DOUBLE: rs_plane_f64(p, t, x, y, rows, p->row_stride, wf, nt, ctx); break;
        case ONR_FLOAT16: rs_plane_f16(p, t, x, y, rows, p->row_stride, wf, nt, ctx); break;
        case ONR_BFLOAT16: rs_plane_bf16(p, t, x, y, rows, p->row_stride, wf, nt, ctx); break;
        default: rs_plane_f32(p, t, x, y, rows, p->row_stride, wf, nt, ctx); break;
        }
        return ONR_OK;
    }
    default: return rs_generic(p, t, x, y, nt, ctx);
    }
}

/* roi (opset 11+), scales and sizes give the output shape */
const onr_op_impl onr_impl_resize = {.create = resize_create, .reshape = resize_reshape,
                                     .run = resize_run, .params_size = sizeof(resize_params),
                                     .types = ONR_TYPES_ALL,
                                     .shape_inputs = 1u << 1 | 1u << 2 | 1u << 3};
const onr_op_impl onr_impl_upsample = {.create = upsample_create, .reshape = resize_reshape,
                                       .run = resize_run, .params_size = sizeof(resize_params),
                                       .types = ONR_TYPES_ALL, .shape_inputs = 1u << 1};
