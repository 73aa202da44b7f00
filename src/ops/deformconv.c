/*
 * deformconv.c - DeformConv (opsets 19 and 22; 22 adds bfloat16):
 * convolution whose taps sample the input at learned fractional offsets
 * (deformable convolution v1, and v2 with the optional mask).
 *
 * For batch n, output channel oc (in conv group g), output position o and
 * kernel tap k of input channel c (offset group og = c / (C / offset_group)):
 *
 *   p    = o * strides - pads_begin + k * dilations + offset[n, og, k, :, o]
 *   Y[n, oc, o] = B[oc] + sum_{c in g, k} W[oc, c - g*C/group, k]
 *                          * mask[n, og, k, o] * X[n, c](p)
 *
 * where the offset input is [N, offset_group * K * nsp, o...] read as
 * [N, offset_group, K, nsp, o...] (K = the kernel's taps, row-major; nsp
 * components in the order of the spatial axes), the mask (default 1)
 * [N, offset_group * K, o...], and X[n, c](p) is N-linear interpolation of
 * the 2^nsp integer neighbours of p, a neighbour outside the input counting
 * as 0 (the specification's reference implementation). Output sizes are
 * Conv's: floor((in + pads - dilation * (k - 1) - 1) / stride) + 1.
 *
 * Spatial ranks 1 to 3 (the window geometry Conv uses, linalg.h); the
 * specification's general N-D case beyond 3 is refused as unsupported.
 * float16, float, double (and bfloat16 from 22); everything is computed in
 * double and rounded on store.
 *
 * run works in tiles of output positions: it samples the columns
 * col[c * K + k][t] = mask * X(p) for a tile (scratch sized in reshape, at
 * most DC_TILE elements unless one column alone is larger), then multiplies
 * each group's W rows with them. float32 keeps its columns in float and
 * multiplies with the project's sgemm (bias as its row epilogue); the other
 * types (and the reference the float32 path is tested against) keep them in
 * double and accumulate in double. Sampling goes parallel over column rows
 * above the work threshold, the double product over output channels, sgemm
 * by its own rules, so the result does not depend on the thread count.
 */
#include <math.h>
#include <string.h>

#include "gemm/gemm.h"
#include "ops/linalg.h"

#define DC_TILE (1 << 20) /* doubles of column scratch per tile */

enum { DC_X, DC_W, DC_OFF, DC_B, DC_MASK };

typedef struct dc_params {
    /* create */
    onr_window_attrs wa;
    onr_sp_list kernel;
    int64_t group, ogroup;
    /* reshape */
    onr_spatial g;
    int64_t N, C, OC, K, P, tile; /* P: output positions; tile: positions per pass */
    int nthreads;
    int fast;          /* float32 columns and sgemm */
    size_t ws_off;     /* sgemm workspace in scratch (fast path) */
} dc_params;

static int dc_create(onr_create_ctx *c, void *params)
{
    dc_params *p = params;
    int st;
    memset(&p->wa, 0, sizeof p->wa);
    p->wa.ap = ONR_PAD_NOTSET;
    if ((st = onr_sp_list_attr(c, "kernel_shape", ONR_SP_MAX, 1, &p->kernel)) ||
        (st = onr_sp_list_attr(c, "strides", ONR_SP_MAX, 1, &p->wa.strides)) ||
        (st = onr_sp_list_attr(c, "dilations", ONR_SP_MAX, 1, &p->wa.dilations)) ||
        (st = onr_sp_list_attr(c, "pads", 2 * ONR_SP_MAX, 0, &p->wa.pads)))
        return st;
    p->group = onr_attr_int(c->node, "group", 1);
    p->ogroup = onr_attr_int(c->node, "offset_group", 1);
    if (p->group < 1 || p->group > ONR_SP_ATTR_MAX)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'group' = %lld must be >= 1",
                          (long long)p->group);
    if (p->ogroup < 1 || p->ogroup > ONR_SP_ATTR_MAX)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'offset_group' = %lld must be >= 1",
                          (long long)p->ogroup);
    p->nthreads = c->nthreads;
    return ONR_OK;
}

/* Input i present, of x's type, with the given dims. */
static int dc_check_dims(onr_kctx *ctx, int i, const char *name, int rank, const int64_t *dims)
{
    const onr_tensor *t = ctx->in[i], *x = ctx->in[DC_X];
    char b1[256], b2[256];
    if (t->dtype != x->dtype)
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s is %s, X is %s", name,
                          onr_dtype_name(t->dtype), onr_dtype_name(x->dtype));
    int same = t->rank == rank;
    for (int j = 0; same && j < rank; j++) same = t->dims[j] == dims[j];
    if (!same)
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s has shape %s, expected %s", name,
                          onr_fmt_dims(b1, sizeof b1, t->dims, t->rank),
                          onr_fmt_dims(b2, sizeof b2, dims, rank));
    return ONR_OK;
}

static int dc_reshape(onr_kctx *ctx, size_t *scratch)
{
    dc_params *p = ctx->params;
    int st;
    char b1[256];
    *scratch = 0;
    if (ctx->n_in < 3 || ctx->n_in > 5 || ctx->n_out != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "expects 3 to 5 inputs and 1 output, got %d and %d",
                          ctx->n_in, ctx->n_out);
    uint32_t types = ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_FLOAT16) |
                     (ctx->opset >= 22 ? ONR_T(ONR_BFLOAT16) : 0);
    if ((st = onr_check_input(ctx, DC_X, types)) || (st = onr_check_input(ctx, DC_W, types)) ||
        (st = onr_check_input(ctx, DC_OFF, types)))
        return st;
    const onr_tensor *x = ctx->in[DC_X], *w = ctx->in[DC_W];
    if (x->rank < 3 || x->rank > 2 + ONR_SP_MAX)
        return onr_seterr(ctx->err, x->rank < 3 ? ONR_E_MODEL : ONR_E_UNSUPPORTED,
                          "X has shape %s: 1 to %d spatial dims are handled",
                          onr_fmt_dims(b1, sizeof b1, x->dims, x->rank), ONR_SP_MAX);
    int nsp = x->rank - 2;
    if (w->dtype != x->dtype || w->rank != x->rank)
        return onr_seterr(ctx->err, ONR_E_MODEL, "W (%s %s) must be a %s tensor of rank %d",
                          onr_dtype_name(w->dtype), onr_fmt_dims(b1, sizeof b1, w->dims, w->rank),
                          onr_dtype_name(x->dtype), x->rank);
    int64_t N = x->dims[0], C = x->dims[1], OC = w->dims[0];
    if (C % p->group || OC % p->group || w->dims[1] * p->group != C)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "X has %lld channels and W %s: with group %lld, W must be "
                          "[oC, C / group, k...] and C and oC divisible by group",
                          (long long)C, onr_fmt_dims(b1, sizeof b1, w->dims, w->rank),
                          (long long)p->group);
    if (C % p->ogroup)
        return onr_seterr(ctx->err, ONR_E_MODEL, "%lld channels do not divide into offset_group %lld",
                          (long long)C, (long long)p->ogroup);
    int64_t kernel[ONR_SP_MAX], K = 1;
    for (int i = 0; i < nsp; i++) kernel[i] = w->dims[2 + i];
    if (p->kernel.present) {
        int64_t ka[ONR_SP_MAX];
        if ((st = onr_sp_list_get(ctx->err, &p->kernel, nsp, 1, ka))) return st;
        for (int i = 0; i < nsp; i++)
            if (ka[i] != kernel[i])
                return onr_seterr(ctx->err, ONR_E_MODEL, "kernel_shape disagrees with W %s",
                                  onr_fmt_dims(b1, sizeof b1, w->dims, w->rank));
    }
    for (int i = 0; i < nsp; i++) {
        if (kernel[i] < 1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "W %s has an empty kernel",
                              onr_fmt_dims(b1, sizeof b1, w->dims, w->rank));
        K *= kernel[i];
    }
    if ((st = onr_spatial_window(ctx->err, &p->wa, nsp, x->dims + 2, kernel, 0, &p->g))) return st;
    int64_t od[ONR_MAX_RANK];
    od[0] = N;
    od[1] = p->ogroup * K * nsp;
    for (int i = 0; i < nsp; i++) od[2 + i] = p->g.out[3 - nsp + i];
    if ((st = dc_check_dims(ctx, DC_OFF, "offset", x->rank, od))) return st;
    if (ctx->n_in > DC_MASK && ctx->in[DC_MASK]) {
        od[1] = p->ogroup * K;
        if ((st = dc_check_dims(ctx, DC_MASK, "mask", x->rank, od))) return st;
    }
    if (ctx->n_in > DC_B && ctx->in[DC_B] && (st = dc_check_dims(ctx, DC_B, "B", 1, &OC)))
        return st;
    p->N = N;
    p->C = C;
    p->OC = OC;
    p->K = K;
    p->P = onr_sp_numel(p->g.out);
    /* column scratch: C*K rows of `tile` positions */
    int64_t ck = C * K, tile = ck > 0 ? DC_TILE / ck : p->P;
    if (tile < 1) tile = 1;
    if (tile > p->P) tile = p->P;
    p->tile = tile;
    p->fast = x->dtype == ONR_FLOAT;
    size_t used = 0;
    onr_carve_at(&used, (size_t)(ck * tile) * (p->fast ? sizeof(float) : sizeof(double)));
    p->ws_off = ONR_NO_SCRATCH;
    if (p->fast) {
        int64_t cgk = C / p->group * K;
        p->ws_off = onr_carve_at(&used, onr_sgemm_workspace_size((size_t)(OC / p->group),
                                                                (size_t)tile, (size_t)cgk,
                                                                p->nthreads > 1 ? p->nthreads : 1));
    }
    *scratch = used;
    od[1] = OC;
    return onr_set_out(ctx, 0, x->dtype, x->rank, od);
}

static double dc_ld(const onr_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case ONR_FLOAT: return ((const float *)t->data)[i];
    case ONR_DOUBLE: return ((const double *)t->data)[i];
    default: return onr_get_f64(t, i);
    }
}

/* X[n, c] at the fractional point q over the last nsp of 3 padded dims
 * (the leading unused ones have size 1 and coordinate 0): N-linear
 * interpolation of the 2^nsp integer neighbours, those outside counting as
 * 0. xf: the data when X is float32 (read directly), else NULL. */
static double dc_sample(const onr_tensor *x, const float *xf, int64_t base, int nsp,
                        const int64_t in[3], const double q[3])
{
    int64_t lo[3] = {0, 0, 0}, st[3] = {in[1] * in[2], in[2], 1};
    double fr[3] = {0, 0, 0};
    for (int i = 3 - nsp; i < 3; i++) {
        double f = floor(q[i]);
        if (!(f > -2 && f < (double)in[i])) return 0; /* every neighbour outside (or NaN) */
        lo[i] = (int64_t)f;
        fr[i] = q[i] - f;
    }
    double v = 0;
    for (int corner = 0; corner < (1 << nsp); corner++) {
        double wgt = 1;
        int64_t idx = base;
        for (int i = 3 - nsp; i < 3; i++) {
            int hi = (corner >> (2 - i)) & 1;
            int64_t pos = lo[i] + hi;
            double wi = hi ? fr[i] : 1 - fr[i];
            if (wi == 0 || pos < 0 || pos >= in[i]) {
                wgt = 0;
                break;
            }
            wgt *= wi;
            idx += pos * st[i];
        }
        if (wgt != 0) v += wgt * (xf ? (double)xf[idx] : dc_ld(x, idx));
    }
    return v;
}

/* One column row of the float32 2-D case: tap kk of one input channel
 * (x: its H x W plane; off: its two offset planes, dy then dx; mask: its
 * plane or NULL) at output positions t0 .. t0 + tn. The same arithmetic as
 * dc_sample in double, with the bounds tests hoisted: a point whose 2 x 2
 * neighbourhood misses the plane gives 0. */
static void dc_row_2d_f32(const dc_params *p, const float *x, const float *off, const float *mask,
                          const int64_t kk[3], int64_t t0, int64_t tn, float *dst)
{
    const onr_spatial *g = &p->g;
    const int64_t H = g->in[1], W = g->in[2], OW = g->out[2], P = p->P;
    int64_t oh = t0 / OW, ow = t0 % OW;
    const double bh = (double)(kk[1] * g->d[1] - g->pb[1]), bw = (double)(kk[2] * g->d[2] - g->pb[2]);
    for (int64_t t = 0; t < tn; t++) {
        int64_t o = t0 + t;
        double m = mask ? mask[o] : 1.0, v = 0;
        double h = (double)(oh * g->s[1]) + bh + off[o], w = (double)(ow * g->s[2]) + bw + off[P + o];
        if (m != 0 && !(h > -1 && w > -1 && h < (double)H && w < (double)W)) {
            v = m * 0.0; /* outside: 0, or NaN for a NaN or infinite mask, as m * X(p) */
        } else if (m != 0) {
            double fh = floor(h), fw = floor(w), lh = h - fh, lw = w - fw;
            int64_t h0 = (int64_t)fh, w0 = (int64_t)fw;
            int left = w0 >= 0, right = w0 + 1 < W && lw != 0;
            double top = 0, bot = 0;
            if (h0 >= 0) {
                const float *r = x + h0 * W;
                top = (left ? (1 - lw) * r[w0] : 0) + (right ? lw * r[w0 + 1] : 0);
            }
            if (h0 + 1 < H && lh != 0) {
                const float *r = x + (h0 + 1) * W;
                bot = (left ? (1 - lw) * r[w0] : 0) + (right ? lw * r[w0 + 1] : 0);
            }
            v = m * ((1 - lh) * top + lh * bot);
        }
        dst[t] = (float)v;
        if (++ow == OW) ow = 0, oh++;
    }
}

static int dc_run(const onr_kctx *ctx)
{
    const dc_params *p = ctx->params;
    const onr_spatial *g = &p->g;
    const onr_tensor *x = ctx->in[DC_X], *w = ctx->in[DC_W], *off = ctx->in[DC_OFF];
    const onr_tensor *b = ctx->n_in > DC_B ? ctx->in[DC_B] : NULL;
    const onr_tensor *mask = ctx->n_in > DC_MASK ? ctx->in[DC_MASK] : NULL;
    onr_tensor *y = ctx->out[0];
    double *col = ctx->scratch;
    float *colf = ctx->scratch;
    const float *xf = x->dtype == ONR_FLOAT ? x->data : NULL;
    const int nsp = g->nsp;
    const int64_t C = p->C, K = p->K, P = p->P, OC = p->OC;
    const int64_t cg = C / p->group, ocg = OC / p->group, cpo = C / p->ogroup;
    const int64_t inner = onr_sp_numel(g->in);
    int nt = ctx->nthreads > 1 ? ctx->nthreads : 1;
    if (P == 0 || OC == 0) return ONR_OK;
    for (int64_t n = 0; n < p->N; n++) {
        for (int64_t t0 = 0; t0 < P; t0 += p->tile) {
            int64_t tn = P - t0 < p->tile ? P - t0 : p->tile;
            int64_t work = C * K * tn * 8;
            /* columns: one row per (c, k) */
#pragma omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN && nt > 1) schedule(static)
            for (int64_t row = 0; row < C * K; row++) {
                int64_t c = row / K, k = row % K, og = c / cpo;
                int64_t kk[3] = {k / (g->k[1] * g->k[2]), (k / g->k[2]) % g->k[1], k % g->k[2]};
                /* offset channels of (og, k): og*K*nsp + k*nsp + i; mask: og*K + k */
                int64_t ob = (n * p->ogroup * K + og * K + k) * nsp * P;
                int64_t mb = (n * p->ogroup * K + og * K + k) * P;
                int64_t xb = (n * C + c) * inner;
                if (p->fast && nsp == 2) {
                    dc_row_2d_f32(p, xf + xb, (const float *)off->data + ob,
                                  mask ? (const float *)mask->data + mb : NULL, kk, t0, tn,
                                  colf + row * tn);
                    continue;
                }
                /* the output position as an odometer over 3 padded dims */
                int64_t oo[3] = {t0 / (g->out[1] * g->out[2]), (t0 / g->out[2]) % g->out[1],
                                 t0 % g->out[2]};
                for (int64_t t = 0; t < tn; t++) {
                    int64_t o = t0 + t;
                    double q[3];
                    for (int i = 0; i < 3; i++) q[i] = (double)(oo[i] * g->s[i] - g->pb[i] + kk[i] * g->d[i]);
                    for (int i = 0; i < nsp; i++) q[3 - nsp + i] += dc_ld(off, ob + i * P + o);
                    double m = mask ? dc_ld(mask, mb + o) : 1.0;
                    double v = m == 0 ? 0 : m * dc_sample(x, xf, xb, nsp, g->in, q);
                    if (p->fast)
                        colf[row * tn + t] = (float)v;
                    else
                        col[row * tn + t] = v;
                    if (++oo[2] == g->out[2]) {
                        oo[2] = 0;
                        if (++oo[1] == g->out[1]) oo[1] = 0, oo[0]++;
                    }
                }
            }
            /* Y[n, oc, t0 + t] = B[oc] + W[oc, :] . col[group rows][t] */
            if (p->fast) {
                for (int64_t gi = 0; gi < p->group; gi++) {
                    onr_gemm_epilogue ep = {0};
                    ep.bias_row = b ? (const float *)b->data + gi * ocg : NULL;
                    onr_sgemm(0, 0, (size_t)ocg, (size_t)tn, (size_t)(cg * K), 1.f,
                              (const float *)w->data + gi * ocg * cg * K, (size_t)(cg * K),
                              colf + gi * cg * K * tn, (size_t)tn, 0.f,
                              (float *)y->data + (n * OC + gi * ocg) * P + t0, (size_t)P, &ep,
                              onr_scratch_at(ctx, p->ws_off), nt);
                }
                continue;
            }
            work = OC * cg * K * tn;
#pragma omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN && nt > 1) schedule(static)
            for (int64_t oc = 0; oc < OC; oc++) {
                int64_t gi = oc / ocg;
                const double *cb = col + gi * cg * K * tn;
                double bias = b ? dc_ld(b, oc) : 0;
                for (int64_t t = 0; t < tn; t++) {
                    double acc = bias;
                    for (int64_t j = 0; j < cg * K; j++) acc += dc_ld(w, oc * cg * K + j) * cb[j * tn + t];
                    onr_set_f64(y, (n * OC + oc) * P + t0 + t, acc);
                }
            }
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_deformconv = {.create = dc_create, .reshape = dc_reshape,
                                         .run = dc_run, .params_size = sizeof(dc_params),
                                         .types = ONR_TYPES_FLOAT};
