/*
 * crop.c - Col2Im (opset 18) and CenterCropPad (opset 18).
 *
 * Col2Im folds columns [N, C * prod(block), L] back into an image
 * [N, C, image...]: column (c, block offset k) at block position l lands on
 * pixel l * stride - pad_begin + k * dilation, overlapping blocks summed.
 * It runs as a gather: each output pixel adds, over the block offsets, the
 * one column entry that lands on it (if the block position is whole and in
 * range), in double, so outputs are independent and the thread count never
 * changes a result.
 *
 * CenterCropPad crops (input larger) or zero-pads (input smaller) each
 * listed axis to the given size around the centre: the window or the
 * input starts at floor(difference / 2). Any element type; strings pad
 * with "".
 */
#include <string.h>

#include "ops/image.h"
#include "ops/tensor.h"

/* ---- Col2Im -------------------------------------------------------------- */

#define C2I_MAX_SP (ONR_MAX_RANK - 2)

typedef struct c2i_params {
    int n_dil, n_pads, n_strides;
    int64_t dil[C2I_MAX_SP], pads[2 * C2I_MAX_SP], strides[C2I_MAX_SP];
    /* reshape */
    int r;
    int64_t N, C, P, L;
    int64_t img[C2I_MAX_SP], blk[C2I_MAX_SP], nblk[C2I_MAX_SP];
    int64_t d[C2I_MAX_SP], pb[C2I_MAX_SP], s[C2I_MAX_SP];
} c2i_params;

static int c2i_ints(onr_create_ctx *c, const char *name, int max, int64_t *v, int *n)
{
    const onr_attr *a = onr_node_attr(c->node, name);
    *n = 0;
    if (!a) return ONR_OK;
    if (a->type != ONR_ATTR_INTS)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' must be a list of ints", name);
    if (a->n > (size_t)max)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' has %zu values, at most %d", name,
                          a->n, max);
    memcpy(v, a->ints, a->n * sizeof(int64_t));
    *n = (int)a->n;
    return ONR_OK;
}

static int c2i_create(onr_create_ctx *c, void *params)
{
    c2i_params *p = params;
    int st;
    if ((st = c2i_ints(c, "dilations", C2I_MAX_SP, p->dil, &p->n_dil)) ||
        (st = c2i_ints(c, "pads", 2 * C2I_MAX_SP, p->pads, &p->n_pads)) ||
        (st = c2i_ints(c, "strides", C2I_MAX_SP, p->strides, &p->n_strides)))
        return st;
    return ONR_OK;
}

static int c2i_reshape(onr_kctx *ctx, size_t *scratch)
{
    c2i_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_NUM | ONR_T(ONR_BOOL));
    if (st || (st = onr_check_input(ctx, 1, ONR_T(ONR_INT64) | ONR_T(ONR_INT32))) ||
        (st = onr_check_input(ctx, 2, ONR_T(ONR_INT64) | ONR_T(ONR_INT32))))
        return st;
    const onr_tensor *x = ctx->in[0];
    int ni = 0, nb = 0;
    int64_t img[ONR_MAX_RANK], blk[ONR_MAX_RANK];
    if ((st = onr_read_ints(ctx, 1, img, ONR_MAX_RANK, &ni)) ||
        (st = onr_read_ints(ctx, 2, blk, ONR_MAX_RANK, &nb)))
        return st;
    char b[256];
    int r = ni;
    if (r < 1 || r > C2I_MAX_SP || nb != r)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "inputs 'image_shape' (%d values) and 'block_shape' (%d) must have the same length, 1 to %d",
                          ni, nb, C2I_MAX_SP);
    if ((p->n_dil && p->n_dil != r) || (p->n_strides && p->n_strides != r) ||
        (p->n_pads && p->n_pads != 2 * r))
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "attributes 'dilations'/'strides' need %d values and 'pads' %d", r, 2 * r);
    if (x->rank != 3)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input %s must be 3-D [N, C * prod(block_shape), L]",
                          TN_DIMS(b, x));
    int64_t P = 1, L = 1;
    for (int d = 0; d < r; d++) {
        p->d[d] = p->n_dil ? p->dil[d] : 1;
        p->s[d] = p->n_strides ? p->strides[d] : 1;
        p->pb[d] = p->n_pads ? p->pads[d] : 0;
        int64_t pe = p->n_pads ? p->pads[r + d] : 0;
        if (blk[d] < 1 || img[d] < 0 || p->d[d] < 1 || p->s[d] < 1 || p->pb[d] < 0 || pe < 0 ||
            blk[d] > INT32_MAX || img[d] > INT32_MAX || p->d[d] > INT32_MAX || p->s[d] > INT32_MAX ||
            p->pb[d] > INT32_MAX || pe > INT32_MAX)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "axis %d: image %lld, block %lld, dilation %lld, stride %lld, pads %lld/%lld out of range",
                              d, (long long)img[d], (long long)blk[d], (long long)p->d[d],
                              (long long)p->s[d], (long long)p->pb[d], (long long)pe);
        int64_t span = p->d[d] * (blk[d] - 1) + 1, full = img[d] + p->pb[d] + pe;
        p->nblk[d] = full >= span ? (full - span) / p->s[d] + 1 : 0;
        p->img[d] = img[d], p->blk[d] = blk[d];
        if (P > INT32_MAX || (p->nblk[d] > 0 && L > INT64_MAX / p->nblk[d]))
            return onr_seterr(ctx->err, ONR_E_MODEL, "block_shape or image_shape is too large");
        P *= blk[d];
        L *= p->nblk[d];
    }
    if (x->dims[1] % P != 0 || x->dims[2] != L)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "input %s: dim 1 must be a multiple of prod(block_shape) = %lld and dim 2 the number of blocks %lld",
                          TN_DIMS(b, x), (long long)P, (long long)L);
    p->r = r, p->N = x->dims[0], p->C = x->dims[1] / P, p->P = P, p->L = L;
    int64_t od[ONR_MAX_RANK];
    od[0] = p->N, od[1] = p->C;
    for (int d = 0; d < r; d++) od[2 + d] = img[d];
    return onr_set_out(ctx, 0, x->dtype, r + 2, od);
}

static int c2i_run(const onr_kctx *ctx)
{
    const c2i_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    if (y->numel == 0) return ONR_OK;
    int r = p->r, nt = ctx->nthreads > 0 ? ctx->nthreads : 1;
    int64_t S = y->numel / (p->N * p->C), P = p->P, L = p->L;
    onr_dtype dt = x->dtype;
    #pragma omp parallel for num_threads(onr_team(nt)) if (y->numel * P > ONR_PAR_MIN && nt > 1)
    for (int64_t q = 0; q < y->numel; q++) {
        int64_t nc = q / S, pix = q - nc * S, pos[C2I_MAX_SP];
        for (int d = r - 1; d >= 0; d--) pos[d] = pix % p->img[d], pix /= p->img[d];
        double acc = 0;
        for (int64_t k = 0; k < P; k++) {
            /* block offset k -> per-axis offsets; block position l must be whole */
            int64_t kk = k, l = 0, ok = 1, mul = 1, ko[C2I_MAX_SP];
            for (int d = r - 1; d >= 0; d--) ko[d] = kk % p->blk[d], kk /= p->blk[d];
            for (int d = r - 1; d >= 0 && ok; d--) {
                int64_t t = pos[d] + p->pb[d] - ko[d] * p->d[d];
                if (t < 0 || t % p->s[d] != 0 || t / p->s[d] >= p->nblk[d]) ok = 0;
                else l += t / p->s[d] * mul, mul *= p->nblk[d];
            }
            if (ok) acc += img_load(dt, x->data, ((nc * P) + k) * L + l);
        }
        img_store(dt, y->data, q, acc);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_col2im = {.create = c2i_create, .reshape = c2i_reshape, .run = c2i_run,
                                     .params_size = sizeof(c2i_params),
                                     .types = ONR_TYPES_NUM | ONR_T(ONR_BOOL),
                                     .shape_inputs = 1u << 1 | 1u << 2};

/* ---- CenterCropPad ---------------------------------------------------------- */

typedef struct ccp_params {
    int n_axes;
    int64_t axes[ONR_MAX_RANK];
    /* reshape */
    int r;
    int64_t in[ONR_MAX_RANK], out[ONR_MAX_RANK], shift[ONR_MAX_RANK]; /* input = output + shift */
} ccp_params;

static int ccp_create(onr_create_ctx *c, void *params)
{
    ccp_params *p = params;
    return c2i_ints(c, "axes", ONR_MAX_RANK, p->axes, &p->n_axes);
}

static int ccp_reshape(onr_kctx *ctx, size_t *scratch)
{
    ccp_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_TYPES_ALL);
    if (st || (st = onr_check_input(ctx, 1, ONR_T(ONR_INT64) | ONR_T(ONR_INT32)))) return st;
    const onr_tensor *x = ctx->in[0];
    int r = x->rank, K = r, axes[ONR_MAX_RANK], n = 0;
    int64_t shape[ONR_MAX_RANK];
    if ((st = onr_read_ints(ctx, 1, shape, ONR_MAX_RANK, &n))) return st;
    if (p->n_axes) {
        if ((st = tn_norm_axes(ctx->err, p->axes, p->n_axes, r, axes, "axes"))) return st;
        K = p->n_axes;
    } else {
        for (int d = 0; d < r; d++) axes[d] = d;
    }
    if (n != K)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input 'shape' has %d values, expected %d", n, K);
    p->r = r;
    for (int d = 0; d < r; d++) p->in[d] = p->out[d] = x->dims[d], p->shift[d] = 0;
    for (int k = 0; k < K; k++) {
        int d = axes[k];
        if (shape[k] < 0)
            return onr_seterr(ctx->err, ONR_E_MODEL, "input 'shape' value %d is negative", k);
        p->out[d] = shape[k];
        p->shift[d] = shape[k] <= p->in[d] ? (p->in[d] - shape[k]) / 2 : -((shape[k] - p->in[d]) / 2);
    }
    return onr_set_out(ctx, 0, x->dtype, r, p->out);
}

static int ccp_run(const onr_kctx *ctx)
{
    const ccp_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    if (y->numel == 0) return ONR_OK;
    int r = p->r;
    if (r == 0) return tn_copy(x->dtype, y->data, x->data, 1) ? onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory") : ONR_OK;
    onr_dtype dt = x->dtype;
    size_t esz = tn_esz(dt);
    int64_t OW = p->out[r - 1], rows = y->numel / OW, istr[ONR_MAX_RANK];
    onr_strides(p->in, r, istr);
    /* the output columns [lo, hi) that read the input along the last axis */
    int64_t sh = p->shift[r - 1], lo = sh < 0 ? -sh : 0, hi = p->in[r - 1] - sh;
    hi = hi < OW ? hi : OW;
    for (int64_t q = 0; q < rows; q++) {
        int64_t qq = q, src = 0;
        int inside = 1;
        for (int d = r - 2; d >= 0; d--) {
            int64_t o = qq % p->out[d], i = o + p->shift[d];
            qq /= p->out[d];
            if (i < 0 || i >= p->in[d]) inside = 0;
            src += i * istr[d];
        }
        char *yr = (char *)y->data + (size_t)(q * OW) * esz;
        int bad = 0;
        if (!inside || hi <= lo) {
            if (tn_zero(dt, yr, OW)) return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory");
            continue;
        }
        bad |= tn_zero(dt, yr, lo);
        bad |= tn_copy(dt, yr + (size_t)lo * esz, (const char *)x->data + (size_t)(src + lo + sh) * esz,
                       hi - lo);
        bad |= tn_zero(dt, yr + (size_t)hi * esz, OW - hi);
        if (bad) return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory copying strings");
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_center_crop_pad = {.create = ccp_create, .reshape = ccp_reshape,
                                              .run = ccp_run, .params_size = sizeof(ccp_params),
                                              .types = ONR_TYPES_ALL, .shape_inputs = 1u << 1};
