/*
 * roi.c - RoiAlign (opsets 10, 16, 22).
 *
 * Each region of interest (x1, y1, x2, y2 in input coordinates times
 * spatial_scale) is cut into output_height x output_width bins; each bin
 * averages (mode avg) or takes the largest weighted corner of (mode max)
 * a grid of bilinear samples, sampling_ratio per side or, when 0,
 * ceil(roi size / output size). Opset 16 added coordinate_transformation_mode:
 * half_pixel (the default) shifts the region by -0.5 pixel;
 * output_half_pixel (opset 10's behaviour) does not and makes every region
 * at least 1x1. A sample more than one pixel outside the input contributes
 * 0; inside that margin it reads the clamped edge. The max mode follows
 * the ONNX reference: per sample the largest of the four weighted corners,
 * then the largest over the samples.
 *
 * Region values come from a tensor at run time, so run checks them (finite,
 * batch index in range) and refuses a bin needing more than RA_MAX_SAMPLES
 * samples, or more than RA_MAX_TOTAL samples in all, instead of running
 * for hours.
 */
#include <math.h>
#include <omp.h>

#include "ops/image.h"
#include "ops/tensor.h"

#define RA_MAX_SAMPLES ((int64_t)1 << 22)
/* ... and more than this many samples over all regions and channels */
#define RA_MAX_TOTAL 17179869184.0 /* 2^34 */

enum { RA_AVG, RA_MAX };
static const img_name ra_modes[] = {{"avg", 10, ONR_OPSET_MAX}, {"max", 10, ONR_OPSET_MAX}};
static const img_name ra_ctms[] = {{"half_pixel", 16, ONR_OPSET_MAX},
                                   {"output_half_pixel", 16, ONR_OPSET_MAX}};

typedef struct ra_params {
    int mode, half_pixel;
    int64_t oh, ow, sampling;
    float scale;
    /* reshape */
    int64_t N, C, H, W, R;
} ra_params;

static int ra_create(onr_create_ctx *c, void *params)
{
    ra_params *p = params;
    int st, ctm = 1;
    if ((st = img_attr_enum(c, "mode", "avg", ra_modes, 2, &p->mode)) ||
        (st = img_attr_int(c, "output_height", 1, &p->oh)) ||
        (st = img_attr_int(c, "output_width", 1, &p->ow)) ||
        (st = img_attr_int(c, "sampling_ratio", 0, &p->sampling)) ||
        (st = img_attr_float(c, "spatial_scale", 1.f, &p->scale)))
        return st;
    if (c->opset >= 16 &&
        (st = img_attr_enum(c, "coordinate_transformation_mode", "half_pixel", ra_ctms, 2, &ctm)))
        return st;
    p->half_pixel = ctm == 0;
    if (p->oh < 1 || p->ow < 1 || p->oh > INT32_MAX || p->ow > INT32_MAX)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attributes 'output_height' %lld and 'output_width' %lld must be positive",
                          (long long)p->oh, (long long)p->ow);
    if (p->sampling < 0 || p->sampling > 4096)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'sampling_ratio' %lld must be in [0, 4096]",
                          (long long)p->sampling);
    if (!isfinite(p->scale))
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'spatial_scale' must be finite");
    return ONR_OK;
}

static int ra_reshape(onr_kctx *ctx, size_t *scratch)
{
    ra_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_FLOAT);
    if (st || (st = onr_check_input(ctx, 1, ONR_TYPES_FLOAT)) ||
        (st = onr_check_input(ctx, 2, ONR_T(ONR_INT64) | ONR_T(ONR_INT32))))
        return st;
    const onr_tensor *x = ctx->in[0], *rois = ctx->in[1], *bi = ctx->in[2];
    char b1[256], b2[256];
    if (x->rank != 4)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input 'X' %s must be 4-D (N, C, H, W)",
                          TN_DIMS(b1, x));
    if (rois->rank != 2 || rois->dims[1] != 4 || bi->rank != 1 || bi->dims[0] != rois->dims[0])
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "input 'rois' %s must be [num_rois, 4] and 'batch_indices' %s [num_rois]",
                          TN_DIMS(b1, rois), TN_DIMS(b2, bi));
    p->N = x->dims[0], p->C = x->dims[1], p->H = x->dims[2], p->W = x->dims[3];
    p->R = rois->dims[0];
    int64_t od[4] = {p->R, p->C, p->oh, p->ow};
    return onr_set_out(ctx, 0, x->dtype, 4, od);
}

/* One bilinear sample at (y, x): four input offsets and weights; returns
 * 0 when the sample is outside the margin (contributes nothing). */
static int ra_sample(double y, double x, int64_t H, int64_t W, int64_t *pos, double *w)
{
    if (H <= 0 || W <= 0 || y < -1.0 || y > (double)H || x < -1.0 || x > (double)W) return 0;
    if (y <= 0) y = 0;
    if (x <= 0) x = 0;
    int64_t yl = (int64_t)y, xl = (int64_t)x, yh, xh;
    if (yl >= H - 1) yh = yl = H - 1, y = (double)yl;
    else yh = yl + 1;
    if (xl >= W - 1) xh = xl = W - 1, x = (double)xl;
    else xh = xl + 1;
    double ly = y - (double)yl, lx = x - (double)xl, hy = 1 - ly, hx = 1 - lx;
    pos[0] = yl * W + xl, pos[1] = yl * W + xh, pos[2] = yh * W + xl, pos[3] = yh * W + xh;
    w[0] = hy * hx, w[1] = hy * lx, w[2] = ly * hx, w[3] = ly * lx;
    return 1;
}

static int ra_run(const onr_kctx *ctx)
{
    const ra_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0], *rois = ctx->in[1], *bi = ctx->in[2];
    onr_tensor *y = ctx->out[0];
    int64_t R = p->R, C = p->C, H = p->H, W = p->W, OH = p->oh, OW = p->ow;
    double off = p->half_pixel ? 0.5 : 0;
    /* check every region before computing any */
    double total = 0;
    for (int64_t n = 0; n < R; n++) {
        int64_t b = bi->dtype == ONR_INT64 ? ((const int64_t *)bi->data)[n]
                                            : ((const int32_t *)bi->data)[n];
        if (b < 0 || b >= p->N)
            return onr_seterr(ctx->err, ONR_E_INPUT,
                              "batch_indices[%lld] = %lld is out of range for a batch of %lld",
                              (long long)n, (long long)b, (long long)p->N);
        for (int k = 0; k < 4; k++)
            if (!isfinite(onr_get_f64(rois, n * 4 + k)))
                return onr_seterr(ctx->err, ONR_E_INPUT, "rois[%lld] holds a non-finite value",
                                  (long long)n);
        double rh = (onr_get_f64(rois, n * 4 + 3) - onr_get_f64(rois, n * 4 + 1)) * p->scale,
               rw = (onr_get_f64(rois, n * 4 + 2) - onr_get_f64(rois, n * 4 + 0)) * p->scale;
        double gh = p->sampling > 0 ? (double)p->sampling : ceil(rh / (double)OH),
               gw = p->sampling > 0 ? (double)p->sampling : ceil(rw / (double)OW);
        /* each alone too: inf * 0 and 1e30 * -1 pass a product test, and a
         * count beyond int64 cannot be converted */
        if (!(gh <= (double)RA_MAX_SAMPLES && gw <= (double)RA_MAX_SAMPLES) ||
            gh * gw > (double)RA_MAX_SAMPLES)
            return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                              "rois[%lld] (%g x %g) would need %g samples per bin, more than %lld",
                              (long long)n, rh, rw, gh * gw, (long long)RA_MAX_SAMPLES);
        total += gh > 0 && gw > 0 ? gh * gw * (double)(OH * OW) * (double)C : 0;
    }
    if (total > RA_MAX_TOTAL)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                          "the %lld regions would need %g bilinear samples in all, more than %g",
                          (long long)R, total, RA_MAX_TOTAL);
    if (y->numel == 0) return ONR_OK;
    onr_dtype dt = x->dtype;
    int nt = ctx->nthreads > 0 ? ctx->nthreads : 1;
    #pragma omp parallel for num_threads(onr_team(nt)) if (y->numel * 16 > ONR_PAR_MIN && nt > 1)
    for (int64_t q = 0; q < R * C; q++) {
        int64_t n = q / C, c = q - n * C;
        int64_t b = bi->dtype == ONR_INT64 ? ((const int64_t *)bi->data)[n]
                                            : ((const int32_t *)bi->data)[n];
        double x1 = onr_get_f64(rois, n * 4) * p->scale - off,
               y1 = onr_get_f64(rois, n * 4 + 1) * p->scale - off,
               x2 = onr_get_f64(rois, n * 4 + 2) * p->scale - off,
               y2 = onr_get_f64(rois, n * 4 + 3) * p->scale - off;
        double rw = x2 - x1, rh = y2 - y1;
        if (!p->half_pixel) {
            rw = rw > 1 ? rw : 1;
            rh = rh > 1 ? rh : 1;
        }
        double bh = rh / (double)OH, bw = rw / (double)OW;
        int64_t gh = p->sampling > 0 ? p->sampling : (int64_t)ceil(rh / (double)OH),
                gw = p->sampling > 0 ? p->sampling : (int64_t)ceil(rw / (double)OW);
        if (gh < 0) gh = 0;
        if (gw < 0) gw = 0;
        double count = (double)(gh * gw > 1 ? gh * gw : 1);
        const void *xp = (const char *)x->data + (size_t)((b * C + c) * H * W) * onr_dtype_size(dt);
        for (int64_t ph = 0; ph < OH; ph++)
            for (int64_t pw = 0; pw < OW; pw++) {
                double acc = 0;
                int any = 0;
                for (int64_t iy = 0; iy < gh; iy++) {
                    double sy = y1 + (double)ph * bh + ((double)iy + 0.5) * bh / (double)gh;
                    for (int64_t ix = 0; ix < gw; ix++) {
                        double sx = x1 + (double)pw * bw + ((double)ix + 0.5) * bw / (double)gw;
                        int64_t pos[4];
                        double w[4] = {0, 0, 0, 0}, v;
                        int in = ra_sample(sy, sx, H, W, pos, w);
                        if (p->mode == RA_AVG) {
                            v = 0;
                            for (int k = 0; in && k < 4; k++) v += w[k] * img_load(dt, xp, pos[k]);
                            acc += v;
                        } else {
                            v = in ? w[0] * img_load(dt, xp, pos[0]) : 0;
                            for (int k = 1; in && k < 4; k++) {
                                double t = w[k] * img_load(dt, xp, pos[k]);
                                v = t > v ? t : v;
                            }
                            acc = !any || v > acc ? v : acc;
                            any = 1;
                        }
                    }
                }
                img_store(dt, y->data, (q * OH + ph) * OW + pw, p->mode == RA_AVG ? acc / count : acc);
            }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_roi_align = {.create = ra_create, .reshape = ra_reshape, .run = ra_run,
                                        .params_size = sizeof(ra_params),
                                        .types = ONR_TYPES_FLOAT};
