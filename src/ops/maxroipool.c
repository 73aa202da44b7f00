/*
 * maxroipool.c - MaxRoiPool (opsets 1 and 22; 22 adds bfloat16): Fast
 * R-CNN's region-of-interest max pooling.
 *
 * Region r of rois ([num_rois, 5]: batch index, x1, y1, x2, y2) covers, in
 * input pixels, [round(y1 * s), round(y2 * s)] x [round(x1 * s),
 * round(x2 * s)] (s = spatial_scale; both ends inclusive, at least one pixel
 * per side). It is cut into pooled_shape = [ph, pw] bins of fractional size
 * roi / pooled; bin (i, j) spans rows [floor(i * bh), ceil((i + 1) * bh))
 * from the region's start, clipped to the input, likewise for columns, and
 * its output is the largest input value there, or 0 for a bin the clipping
 * emptied (the specification's reference implementation). round() is the
 * reference's: half to even.
 *
 * Region values come from a tensor, so run checks them first (finite, batch
 * index an integer in range). float16, float, double (and bfloat16 from 22);
 * comparisons in double, so the output is an input value exactly.
 */
#include <math.h>

#include "ops/image.h"
#include "ops/tensor.h"

typedef struct mrp_params {
    int64_t ph, pw; /* create */
    float scale;    /* create */
    int64_t N, C, H, W, R; /* reshape */
} mrp_params;

static int mrp_create(onr_create_ctx *c, void *params)
{
    mrp_params *p = params;
    const onr_attr *a = onr_node_attr(c->node, "pooled_shape");
    if (!a) return onr_seterr(c->err, ONR_E_MODEL, "attribute 'pooled_shape' is required");
    size_t n = 0;
    const int64_t *v = onr_attr_ints(c->node, "pooled_shape", &n);
    if (!v || n != 2 || v[0] < 1 || v[1] < 1 || v[0] > INT32_MAX || v[1] > INT32_MAX)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attribute 'pooled_shape' must be two positive ints (height, width)");
    p->ph = v[0];
    p->pw = v[1];
    int st = img_attr_float(c, "spatial_scale", 1.f, &p->scale);
    if (st) return st;
    if (!isfinite(p->scale))
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'spatial_scale' must be finite");
    return ONR_OK;
}

static int mrp_reshape(onr_kctx *ctx, size_t *scratch)
{
    mrp_params *p = ctx->params;
    char b1[256];
    *scratch = 0;
    if (ctx->n_in != 2 || !ctx->in[1] || ctx->n_out != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "expects 2 inputs and 1 output, got %d and %d",
                          ctx->n_in, ctx->n_out);
    uint32_t types = ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_FLOAT16) |
                     (ctx->opset >= 22 ? ONR_T(ONR_BFLOAT16) : 0);
    int st = onr_check_input(ctx, 0, types);
    if (st || (st = onr_check_input(ctx, 1, types))) return st;
    const onr_tensor *x = ctx->in[0], *rois = ctx->in[1];
    if (rois->dtype != x->dtype)
        return onr_seterr(ctx->err, ONR_E_MODEL, "rois is %s, X is %s", onr_dtype_name(rois->dtype),
                          onr_dtype_name(x->dtype));
    if (x->rank != 4)
        return onr_seterr(ctx->err, ONR_E_MODEL, "X %s must be 4-D (N, C, H, W)", TN_DIMS(b1, x));
    if (rois->rank != 2 || rois->dims[1] != 5)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "rois %s must be [num_rois, 5] (batch index, x1, y1, x2, y2)",
                          TN_DIMS(b1, rois));
    p->N = x->dims[0], p->C = x->dims[1], p->H = x->dims[2], p->W = x->dims[3];
    p->R = rois->dims[0];
    int64_t od[4] = {p->R, p->C, p->ph, p->pw};
    return onr_set_out(ctx, 0, x->dtype, 4, od);
}

/* The reference's round(v * scale) as an integer pixel, kept far from
 * int64 overflow (the clip to the input below makes huge values 0 or H). */
static int64_t mrp_px(double v, float scale)
{
    double r = nearbyint(v * (double)scale);
    if (r > 4e15) r = 4e15;
    if (r < -4e15) r = -4e15;
    return (int64_t)r;
}

static int64_t mrp_clip(int64_t v, int64_t n) { return v < 0 ? 0 : v > n ? n : v; }

static int mrp_run(const onr_kctx *ctx)
{
    const mrp_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0], *rois = ctx->in[1];
    onr_tensor *y = ctx->out[0];
    const int64_t C = p->C, H = p->H, W = p->W, PH = p->ph, PW = p->pw;
    for (int64_t r = 0; r < p->R; r++) {
        double b = onr_get_f64(rois, r * 5);
        for (int k = 0; k < 5; k++)
            if (!isfinite(onr_get_f64(rois, r * 5 + k)))
                return onr_seterr(ctx->err, ONR_E_INPUT, "rois[%lld] holds a non-finite value",
                                  (long long)r);
        if (b < 0 || b >= (double)p->N)
            return onr_seterr(ctx->err, ONR_E_INPUT,
                              "rois[%lld] has batch index %g, out of range for a batch of %lld",
                              (long long)r, b, (long long)p->N);
    }
    int64_t work = p->R * C * H * W;
    int nt = ctx->nthreads > 1 && work > ONR_PAR_MIN ? ctx->nthreads : 1;
#pragma omp parallel for num_threads(onr_team(nt)) if (nt > 1) schedule(static)
    for (int64_t rc = 0; rc < p->R * C; rc++) {
        int64_t r = rc / C, c = rc % C;
        int64_t b = (int64_t)onr_get_f64(rois, r * 5);
        int64_t x1 = mrp_px(onr_get_f64(rois, r * 5 + 1), p->scale);
        int64_t y1 = mrp_px(onr_get_f64(rois, r * 5 + 2), p->scale);
        int64_t x2 = mrp_px(onr_get_f64(rois, r * 5 + 3), p->scale);
        int64_t y2 = mrp_px(onr_get_f64(rois, r * 5 + 4), p->scale);
        double rh = (double)(y2 - y1 + 1 > 1 ? y2 - y1 + 1 : 1);
        double rw = (double)(x2 - x1 + 1 > 1 ? x2 - x1 + 1 : 1);
        double bh = rh / (double)PH, bw = rw / (double)PW;
        int64_t base = (b * C + c) * H * W, ob = rc * PH * PW;
        for (int64_t i = 0; i < PH; i++) {
            int64_t hs = mrp_clip((int64_t)floor((double)i * bh) + y1, H);
            int64_t he = mrp_clip((int64_t)ceil((double)(i + 1) * bh) + y1, H);
            for (int64_t j = 0; j < PW; j++) {
                int64_t ws = mrp_clip((int64_t)floor((double)j * bw) + x1, W);
                int64_t we = mrp_clip((int64_t)ceil((double)(j + 1) * bw) + x1, W);
                double m = 0;
                if (he > hs && we > ws) {
                    m = -INFINITY;
                    for (int64_t h = hs; h < he; h++)
                        for (int64_t w = ws; w < we; w++) {
                            double v = onr_get_f64(x, base + h * W + w);
                            if (v > m || v != v) m = v; /* NaN wins, as numpy's max */
                        }
                }
                onr_set_f64(y, ob + i * PW + j, m);
            }
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_maxroipool = {.create = mrp_create, .reshape = mrp_reshape,
                                         .run = mrp_run, .params_size = sizeof(mrp_params),
                                         .types = ONR_TYPES_FLOAT};
