/*
 * conv.c - Conv and ConvTranspose over 1-D, 2-D and 3-D inputs (NCHW), with
 * groups, strides, dilations, explicit pads and auto_pad.
 *
 * Conv, float32, per image and group, picks one of three paths:
 *   - 1x1 kernel, stride 1, no pads: the input already is the column
 *     matrix, so Y_g = W_g[M/g, C/g] x X_g[C/g, HW] is one GEMM;
 *   - otherwise im2col: the columns of a band of output rows are gathered
 *     into scratch (bounded size) and multiplied, Y_g = W_g x col;
 *   - depthwise (one input channel per group): a direct loop, since its
 *     GEMMs would have K = kernel size only; 1-D and 2-D ones run the
 *     vectorised kernel of dwconv.c (CONV_DW), epilogue included, as do
 *     small groups (at most 16 input and 16 output channels per group,
 *     RegNet's and ResNeXt's): their GEMMs are too small to run well.
 * Bias goes through the GEMM epilogue (bias_row: output rows are channels).
 * ConvTranspose is the adjoint: col = W_g^T x X_g, then col2im scatters the
 * columns into the output, each output channel owned by one thread so the
 * sums do not depend on the thread count.
 * float16/bfloat16 run through float32 work buffers in scratch; double uses
 * direct loops.
 *
 * FusedConv (domain org.onnxrun, opset 1, float32 only) is Conv plus an
 * epilogue, on the same code path: Y = act(conv(X, W) + B + Z), or
 * act(conv(X, W) + B) + Z with residual_after_activation = 1, Z an optional
 * fourth input of Y's exact shape. Attributes: Conv's, `activation` (Relu,
 * Clip, Sigmoid, Silu = x*sigmoid(x), HardSigmoid, HardSwish, LeakyRelu, or
 * absent) and `activation_params` (Clip: min, max; HardSigmoid and
 * HardSwish: alpha, beta of max(0, min(1, alpha*x + beta)), HardSwish
 * multiplying that by x; LeakyRelu: alpha). An optional fifth input S,
 * float32 [N or 1, C, 1, ...], scales X per input channel first (Y =
 * conv(X * S, W) ...: squeeze-excitation's Mul before the projection,
 * fuse_conv.c); reshape applies it to a per-image copy of W when the layer
 * runs as GEMMs of one group and W has at most as many weights per input
 * channel as X has positions, in the transposed path's gather of col^T
 * (free), else to a copy of X (conv_scale_pick). Attribute `pool` =
 * "MaxPool" (with pool_kernel_shape, pool_strides, pool_pads; 2-D, no Z or
 * S) pools Y after the epilogue: a conv on the small-group kernel (an
 * image's stem) is pooled a band of rows at a time (dwconv.c), any other
 * writes its output to scratch first. The GEMM paths hand bias,
 * residual and the activations the SGEMM epilogue has (Relu, Clip, Sigmoid,
 * Silu) to the GEMM, which applies them where it writes its tile; the other
 * activations run in a pass over each GEMM block right after it, while it
 * is in cache. The direct (depthwise) path applies the whole epilogue to
 * each output row as soon as the row is done.
 *
 * Small outputs (7x7, and 14x14 from kernels of several taps: a column
 * count far from a multiple of the kernel's 32-wide tiles) run transposed
 * instead (CONV_GEMMT): Y_g^T = col^T x W_g^T, output positions as GEMM
 * rows (tiles of 12, little waste) and channels as columns. So do k x k
 * layers (9 taps or more, 16 or more input channels a group) whose column
 * matrix would not stay in cache, in bands of output positions gathered
 * and multiplied one at a time (conv_t_band). Layers of several taps over
 * 16 or more channels gather col^T tap-major (conv_colt_tapmajor), or,
 * for one 2-D kernel with dilation 1, read their taps in place from X laid
 * out by rows, a run of kernel rows per product (conv_t_rows_products). The threads
 * split the channels in runs of 16 (half a panel); each gathers its own col^T
 * straight from X (no column matrix), computes its columns of Y_g^T and
 * transposes them into its channels of Y with the rest of the epilogue, so
 * that the threads share only X. W_g^T is packed at create, when the
 * planner knows the output shape and it is one of those (the
 * onr_conv_force_transposed test hook forces it).
 *
 * create reads and validates the attributes; a constant 16-bit W (and bias)
 * is widened to float32 there, once, and its original consumed. W is the A
 * operand of these GEMMs, which the core does not prepack, so a float32 W is
 * used in place. reshape computes the geometry (output dims, pads after
 * auto_pad, path, im2col band, scratch layout) once per input shapes.
 */
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "gemm/gemm.h"
#include "ir/budget.h"
#include "ops/conv.h"
#include "ops/dwconv.h"
#include "ops/linalg.h"
#include "ops/winograd.h"

/* The SGEMM epilogue's vector sigmoid, at the baseline ISA (4 floats). */
#define ONR_ACT_VL 4
#include "gemm/sgemm-act-simd.h"

/* Upper bound of the im2col / col2im band in scratch. */
#define CONV_COL_BYTES ((int64_t)4 << 20)

/* The geometry of one Conv / ConvTranspose, from reshape. */
typedef struct conv_geom {
    int64_t N, C, M, G; /* batch, input channels, output channels, groups */
    int64_t Cg, Mg;     /* channels per group */
    int64_t K;          /* kernel taps */
    int64_t IN, OUT;    /* spatial sizes of one input / output plane */
    int64_t CK;         /* Conv: Cg*K (GEMM depth); ConvTranspose: Mg*K (GEMM rows) */
    onr_spatial sp;
    int kind;     /* Conv: CONV_GEMM, CONV_IM2COL, CONV_DIRECT, CONV_WINO, CONV_DW or CONV_GEMMT */
    int t_from;   /* CONV_GEMMT: the kind it replaced (CONV_GEMM: X is the column matrix) */
    int t_tapmajor; /* CONV_GEMMT from CONV_IM2COL: col^T's K ordered (tap, channel) */
    int64_t t_band; /* CONV_GEMMT: output positions gathered and multiplied at a time */
    int t_amx;      /* CONV_GEMMT: W_g^T packed for AMX (products of 64+ rows run on it) */
    int t_rows;     /* CONV_GEMMT tap-major: its taps read in place from X by rows
                     * (conv_t_rows_products) */
    int64_t t_p;    /* t_rows: floats a position of X by rows */
    int64_t band; /* output (Conv) or input (ConvTranspose) rows per column band */
    int nthreads; /* CONV_GEMMT: the parts its scratch holds (reshape's thread count) */
    int scale;    /* FusedConv's input scale S: CONV_SCALE_* */
    int64_t s_ld; /* S's stride between images: C, or 0 when one S serves all */
} conv_geom;

/* Where FusedConv's per-input-channel scale S is applied (reshape picks):
 * none; in W (a copy of W with each input channel's weights scaled, per
 * image: the GEMM and im2col paths of one group, when W has fewer weights
 * per input channel than X has positions); in the transposed path's
 * gather of col^T (free); or in a scaled copy of X (the other paths). */
enum { CONV_SCALE_NONE, CONV_SCALE_W, CONV_SCALE_COLT, CONV_SCALE_X };

static uint32_t conv_types(int64_t opset)
{
    uint32_t t = ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_FLOAT16);
    if (opset >= 22) t |= ONR_T(ONR_BFLOAT16);
    return t;
}

/* Input count, types and ranks shared by Conv and ConvTranspose. */
static int conv_inputs(onr_kctx *ctx, const char *op, int max_in)
{
    int st;
    if (ctx->n_in < 2 || ctx->n_in > max_in)
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s takes 2 to %d inputs, got %d", op, max_in,
                          ctx->n_in);
    uint32_t types = conv_types(ctx->opset);
    if ((st = onr_check_input(ctx, 0, types)) || (st = onr_check_input(ctx, 1, types))) return st;
    const onr_tensor *x = ctx->in[0], *w = ctx->in[1];
    const onr_tensor *b = ctx->n_in > 2 ? ctx->in[2] : NULL;
    if (w->dtype != x->dtype || (b && b->dtype != x->dtype))
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s inputs differ in type: X %s, W %s%s%s", op,
                          onr_dtype_name(x->dtype), onr_dtype_name(w->dtype), b ? ", B " : "",
                          b ? onr_dtype_name(b->dtype) : "");
    char s1[256], s2[256];
    if (x->rank < 3)
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s input X %s must be N x C x D1 ... (rank >= 3)",
                          op, onr_fmt_dims(s1, sizeof s1, x->dims, x->rank));
    if (x->rank > 2 + ONR_SP_MAX)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "%s over %d spatial dims (at most %d)", op,
                          x->rank - 2, ONR_SP_MAX);
    if (w->rank != x->rank)
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s weights W %s and input X %s differ in rank",
                          op, onr_fmt_dims(s1, sizeof s1, w->dims, w->rank),
                          onr_fmt_dims(s2, sizeof s2, x->dims, x->rank));
    return ONR_OK;
}

static int check_bias(onr_kctx *ctx, int64_t M)
{
    const onr_tensor *b = ctx->n_in > 2 ? ctx->in[2] : NULL;
    char s1[256];
    if (b && (b->rank != 1 || b->dims[0] != M))
        return onr_seterr(ctx->err, ONR_E_MODEL, "bias B %s must be [%lld]",
                          onr_fmt_dims(s1, sizeof s1, b->dims, b->rank), (long long)M);
    return ONR_OK;
}

/* FusedConv's activations. */
enum {
    CONV_ACT_NONE,
    CONV_ACT_RELU,
    CONV_ACT_CLIP,
    CONV_ACT_SIGMOID,
    CONV_ACT_SILU,
    CONV_ACT_HARDSIGMOID,
    CONV_ACT_HARDSWISH,
    CONV_ACT_LEAKYRELU,
};

/* FusedConv's epilogue, from create. */
typedef struct conv_epi {
    int act;       /* CONV_ACT_* */
    float a, b;    /* Clip: min, max; HardSigmoid/HardSwish: alpha, beta; LeakyRelu: alpha */
    int res_after; /* 1: act(v) + Z; 0: act(v + Z) */
} conv_epi;

/* float32 work buffers (16-bit types), the column band and GEMM workspace,
 * as run finds them in scratch; FusedConv's epilogue and residual (NULL for
 * Conv). */
typedef struct conv_bufs {
    float *x, *w, *b, *y, *col;
    void *ws;
    const conv_epi *epi;
    const float *z;
    const float *wino_u;            /* CONV_WINO: transformed weights */
    const onr_wino_geom *wino;      /* and its geometry (col is its scratch) */
    const void *wt;                 /* CONV_GEMMT: packed W^T per group */
    size_t wt_stride;
    const float *dw_wl;             /* CONV_DW: W laid out at create, or NULL */
    const void *w_amx;              /* CONV_GEMM: W packed as AMX terms, or NULL */
    float *wr;                      /* W summed back from them (W released), or NULL */
    int64_t ldw;                    /* W's row stride for the GEMM paths (0: CK) */
    const float *s;                 /* FusedConv's input scale S (NULL: none) */
    float *xs;                      /* scratch for the scaled W or X (g->scale) */
    const struct conv_params *pool; /* FusedConv with a pool: its params, else NULL */
    float *yc, *pt;                 /* the pool's conv output and rows (not banded) */
} conv_bufs;

/* Conv's and ConvTranspose's params: attributes and constants from create,
 * geometry and scratch layout from reshape. */
typedef struct conv_params {
    int64_t group;
    onr_sp_list kernel_shape;
    onr_window_attrs wa;
    onr_sp_list output_padding, output_shape; /* ConvTranspose */
    float *w32, *b32; /* constant 16-bit W and B, widened once; W also a float W
                       * copied with padded rows (w32_ld) */
    int64_t w32_ld;   /* w32's row stride when padded (conv_pad_create), else 0 */
    int fused;        /* FusedConv: epi applies, input 3 is the residual */
    conv_epi epi;
    conv_geom g;
    float *wino_u;      /* Winograd's transformed W (constant 3x3 W only) */
    onr_wino_geom wino; /* its geometry, when g.kind is CONV_WINO */
    void *wt;           /* CONV_GEMMT: W_g^T packed for onr_sgemm_packed, per group */
    size_t wt_stride;   /* bytes between groups' packs */
    int wt_tapmajor;    /* W_g^T's rows (K) ordered (tap, channel), not (channel, tap) */
    float *dw_wl;       /* depthwise / small groups: constant W laid out for dwconv.c */
    void *w_amx;        /* CONV_GEMM: constant W packed as AMX terms (onr_sgemm_pack_a), or NULL */
    int w_gone;         /* W consumed for the fixed shapes' path (conv_fixed_kind): reshape
                         * refuses any other path; w_gone_x is the shape it was for */
    int w_gone_rank;
    int64_t w_gone_x[ONR_MAX_RANK];
    int nthreads; /* run threads the workspace was sized for */
    size_t scratch;
    size_t off_x, off_w, off_b, off_y, off_col, off_ws, off_xs, off_wr;
    /* FusedConv's pool (MaxPool after the activation): its attributes, its
     * geometry over the conv output (reshape), and either the small-group
     * kernel's banded conv + pool (pool_banded, pool_dw its geometry) or
     * the conv output whole in scratch (off_yc) and a row per thread for
     * the pool (off_pt) */
    int pool;
    onr_sp_list pool_kernel;
    onr_window_attrs pool_wa;
    onr_spatial pool_sp;
    onr_dwpool pool_dw;
    int pool_banded;
    size_t off_yc, off_pt;
} conv_params;

static void conv_destroy(void *params)
{
    conv_params *p = params;
    free(p->w32);
    free(p->b32);
    free(p->wino_u);
    free(p->wt);
    free(p->dw_wl);
    free(p->w_amx);
}

/* create, shared: attributes, then the 16-bit constants widened. */
static int conv_create_common(onr_create_ctx *c, conv_params *p, int transpose)
{
    int st;
    p->group = onr_attr_int(c->node, "group", 1);
    if (p->group < 1 || p->group > ONR_SP_ATTR_MAX)
        return onr_seterr(c->err, ONR_E_MODEL, "group %lld must be >= 1", (long long)p->group);
    if ((st = onr_sp_list_attr(c, "kernel_shape", ONR_SP_MAX, 1, &p->kernel_shape)) ||
        (st = onr_window_attrs_read(c, &p->wa)))
        return st;
    if (transpose) {
        if ((st = onr_sp_list_attr(c, "output_padding", ONR_SP_MAX, 0, &p->output_padding)) ||
            (st = onr_sp_list_attr(c, "output_shape", ONR_SP_MAX + 2, 1, &p->output_shape)))
            return st;
        if (p->output_shape.n == 0) p->output_shape.present = 0; /* [] = absent */
        for (int i = 0; i < p->output_padding.n; i++) {
            int64_t op = p->output_padding.v[i];
            int64_t s = i < p->wa.strides.n ? p->wa.strides.v[i] : 1;
            int64_t d = i < p->wa.dilations.n ? p->wa.dilations.v[i] : 1;
            if (op >= (s > d ? s : d))
                return onr_seterr(c->err, ONR_E_MODEL,
                                  "output_padding[%d] = %lld must be less than the stride %lld or "
                                  "dilation %lld",
                                  i, (long long)op, (long long)s, (long long)d);
        }
    }
    for (int i = 1; i <= 2; i++) {
        const onr_tensor *t = onr_create_const(c, i);
        if (!t || !onr_is_half(t->dtype) || (!t->data && t->numel)) continue;
        float **dst = i == 1 ? &p->w32 : &p->b32;
        int st = onr_create_hold(c, i == 1 ? "widened weights" : "widened bias",
                                 (uint64_t)t->numel * sizeof(float));
        if (st) return st;
        if (!(*dst = onr_la_const_f32(c, t, 1.f))) return ONR_E_NOMEM;
        onr_create_consume(c, i);
    }
    return ONR_OK;
}

/* Kernel dims from W (must be >= 1) and the optional kernel_shape attribute,
 * which must agree with them. */
static int conv_kernel(onr_kctx *ctx, const conv_params *p, int64_t *kernel)
{
    const onr_tensor *w = ctx->in[1];
    int nsp = w->rank - 2;
    int64_t attr[ONR_SP_MAX];
    int st = onr_sp_list_get(ctx->err, &p->kernel_shape, nsp, 1, attr);
    if (st) return st;
    for (int i = 0; i < nsp; i++) {
        kernel[i] = w->dims[2 + i];
        if (kernel[i] < 1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "kernel dim %d of W is %lld, must be >= 1", i,
                              (long long)kernel[i]);
        if (p->kernel_shape.present && attr[i] != kernel[i])
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "kernel_shape[%d] = %lld disagrees with W's kernel dim %lld", i,
                              (long long)attr[i], (long long)kernel[i]);
    }
    return ONR_OK;
}

static void geom_sizes(conv_geom *g)
{
    g->K = onr_sp_numel(g->sp.k);
    g->IN = onr_sp_numel(g->sp.in);
    g->OUT = onr_sp_numel(g->sp.out);
}

/* Output dims N x M x spatial out. */
static int conv_set_out(onr_kctx *ctx, const conv_geom *g)
{
    int nsp = g->sp.nsp;
    int64_t dims[2 + ONR_SP_MAX] = {g->N, g->M};
    for (int i = 0; i < nsp; i++) dims[2 + i] = g->sp.out[3 - nsp + i];
    return onr_set_out(ctx, 0, ctx->in[0]->dtype, 2 + nsp, dims);
}

/* Scratch of the float paths: float32 copies of X, W, B and Y for 16-bit
 * types (W and B only when create did not widen them), then the column
 * band of col_floats and the GEMM workspace of ws_bytes. */
/* Scratch floats for the scaled W or X of FusedConv's input scale. */
static size_t conv_scale_floats(const conv_params *p)
{
    const conv_geom *g = &p->g;
    if (g->scale == CONV_SCALE_W)
        return (size_t)g->Mg * (size_t)(p->w32_ld > 0 ? p->w32_ld : g->CK);
    if (g->scale == CONV_SCALE_X) return (size_t)(g->N * g->C * g->IN);
    return 0;
}

static void conv_layout(onr_kctx *ctx, conv_params *p, size_t col_floats, size_t ws_bytes,
                        size_t *scratch)
{
    const onr_tensor *b = ctx->n_in > 2 ? ctx->in[2] : NULL;
    const conv_geom *g = &p->g;
    onr_dtype dt = ctx->in[0]->dtype;
    size_t used = 0;
    p->off_x = p->off_w = p->off_b = p->off_y = p->off_col = p->off_ws = p->off_xs = p->off_wr =
        ONR_NO_SCRATCH;
    if (dt != ONR_DOUBLE) {
        if (onr_is_half(dt)) {
            p->off_x = onr_carve_at(&used, sizeof(float) * (size_t)ctx->in[0]->numel);
            if (!p->w32) p->off_w = onr_carve_at(&used, sizeof(float) * (size_t)ctx->in[1]->numel);
            if (b && !p->b32) p->off_b = onr_carve_at(&used, sizeof(float) * (size_t)b->numel);
            p->off_y = onr_carve_at(&used, sizeof(float) * (size_t)(g->N * g->M * g->OUT));
        }
        if (col_floats) p->off_col = onr_carve_at(&used, sizeof(float) * col_floats);
        if (ws_bytes) p->off_ws = onr_carve_at(&used, ws_bytes);
        size_t xs = conv_scale_floats(p);
        if (xs) p->off_xs = onr_carve_at(&used, sizeof(float) * xs);
    }
    *scratch = p->scratch = used;
}

/* Shared tail of Conv and ConvTranspose runs: 16-bit types through float32
 * buffers (W and B from create when they were constant), float32
 * straight, double by its direct loop. */
typedef void (*conv_f32_fn)(const conv_geom *, const float *, const float *, const float *,
                            float *, const conv_bufs *, int);
typedef void (*conv_f64_fn)(const conv_geom *, const double *, const double *, const double *,
                            double *, int);

static int conv_dispatch(const onr_kctx *ctx, const char *op, conv_f32_fn f32, conv_f64_fn f64)
{
    const conv_params *p = ctx->params;
    const conv_geom *g = &p->g;
    const onr_tensor *x = ctx->in[0], *w = ctx->in[1];
    const onr_tensor *b = ctx->n_in > 2 ? ctx->in[2] : NULL;
    onr_tensor *y = ctx->out[0];
    int nt = ctx->nthreads < p->nthreads ? ctx->nthreads : p->nthreads;
    if (nt < 1) nt = 1;
    if (x->dtype == ONR_DOUBLE) {
        f64(g, x->data, w->data, b ? b->data : NULL, y->data, nt);
        return ONR_OK;
    }
    if (ctx->scratch_size < p->scratch)
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "%s scratch too small", op);
    conv_bufs bb = {
        .x = onr_scratch_at(ctx, p->off_x), .w = onr_scratch_at(ctx, p->off_w),
        .b = onr_scratch_at(ctx, p->off_b), .y = onr_scratch_at(ctx, p->off_y),
        .col = onr_scratch_at(ctx, p->off_col), .ws = onr_scratch_at(ctx, p->off_ws),
        .wino_u = p->wino_u, .wino = &p->wino, .wt = p->wt, .wt_stride = p->wt_stride,
        .dw_wl = p->dw_wl, .w_amx = p->w_amx, .ldw = p->w32_ld, .xs = onr_scratch_at(ctx, p->off_xs),
        .wr = onr_scratch_at(ctx, p->off_wr),
    };
    if (p->fused) { /* float32 only (reshape checked) */
        const onr_tensor *z = ctx->n_in > 3 ? ctx->in[3] : NULL;
        const onr_tensor *sc = ctx->n_in > 4 ? ctx->in[4] : NULL;
        bb.z = z ? z->data : NULL;
        bb.s = sc && g->scale != CONV_SCALE_NONE ? sc->data : NULL;
        if (bb.z || p->epi.act != CONV_ACT_NONE) bb.epi = &p->epi;
        if (p->pool) {
            bb.pool = p;
            bb.yc = onr_scratch_at(ctx, p->off_yc);
            bb.pt = onr_scratch_at(ctx, p->off_pt);
        }
    }
    if (x->dtype == ONR_FLOAT) {
        f32(g, x->data, p->w32 ? p->w32 : w->data, b ? b->data : NULL, y->data, &bb, nt);
        return ONR_OK;
    }
    const float *w32 = p->w32, *b32 = p->b32;
    onr_la_to_f32(x, bb.x, nt);
    if (!w32) {
        onr_la_to_f32(w, bb.w, nt);
        w32 = bb.w;
    }
    if (b && !b32) {
        onr_la_to_f32(b, bb.b, nt);
        b32 = bb.b;
    }
    f32(g, bb.x, w32, b ? b32 : NULL, bb.y, &bb, nt);
    onr_la_from_f32(y, bb.y, nt);
    return ONR_OK;
}

/* ======================================================================
 * Conv
 * ==================================================================== */

enum { CONV_GEMM, CONV_IM2COL, CONV_DIRECT, CONV_WINO, CONV_DW, CONV_GEMMT };
#define CONV_SMALL_GROUP 16
#define CONV_FEW_INPUTS 4

/* Whether dwconv.c's kernels take a layer of G groups of Cg inputs and Mg
 * outputs with kernels of `taps` taps: depthwise; groups of at most
 * CONV_SMALL_GROUP inputs and outputs (per-group GEMMs that small run far
 * below the FMA peak); or one group of 2 to CONV_FEW_INPUTS inputs and a
 * kernel of 9 taps or more (an image's stem: im2col makes a column matrix
 * taps x Cg times the image, and K = Cg x taps is short for the GEMM),
 * strides of at most 2 (smax: the largest) and at most ONR_GCONV_KW_MAX
 * taps across (kw: the kernel's width). */
static int conv_dw_takes(int64_t G, int64_t Cg, int64_t Mg, int64_t taps, int64_t smax, int64_t kw)
{
    if (G > 1) return Cg == 1 || (Cg <= CONV_SMALL_GROUP && Mg <= CONV_SMALL_GROUP);
    return Cg >= 2 && Cg <= CONV_FEW_INPUTS && taps >= 9 && smax <= 2 && kw <= ONR_GCONV_KW_MAX;
}

int onr_conv_pool_banded(int64_t group, const int64_t wdims[4], int64_t smax)
{
    if (group < 1 || wdims[0] % group != 0) return 0;
    return wdims[1] > 1 &&
           conv_dw_takes(group, wdims[1], wdims[0] / group, wdims[2] * wdims[3], smax, wdims[3]);
}

static atomic_size_t conv_pool_banded_runs;
size_t onr_conv_pool_banded_count(void)
{
    return atomic_load_explicit(&conv_pool_banded_runs, memory_order_relaxed);
}

static int conv_kind(const conv_geom *g)
{
    const onr_spatial *sp = &g->sp;
    /* with at most 2 spatial dims that matter */
    if (g->CK > 0 &&
        conv_dw_takes(g->G, g->Cg, g->Mg, g->K, sp->s[1] > sp->s[2] ? sp->s[1] : sp->s[2], sp->k[2]) &&
        sp->in[0] == 1 && sp->k[0] == 1 && sp->out[0] == 1 && sp->pb[0] == 0)
        return CONV_DW;
    if (g->CK == 0 || (g->Cg == 1 && g->G > 1)) return CONV_DIRECT;
    for (int j = 0; j < 3; j++)
        if (sp->k[j] != 1 || sp->s[j] != 1 || sp->pb[j] || sp->pe[j]) return CONV_IM2COL;
    return CONV_GEMM;
}

/* dwconv.c's geometry of a CONV_DW convolution (epilogue none). */
static onr_dwconv conv_dw_geom(const conv_geom *g)
{
    const onr_spatial *sp = &g->sp;
    onr_dwconv d = {
        .N = g->N, .C = g->C, .mult = g->Mg, .cg = g->Cg,
        .IH = sp->in[1], .IW = sp->in[2], .OH = sp->out[1], .OW = sp->out[2],
        .KH = sp->k[1], .KW = sp->k[2], .SH = sp->s[1], .SW = sp->s[2],
        .DH = sp->d[1], .DW = sp->d[2], .PT = sp->pb[1], .PL = sp->pb[2],
    };
    return d;
}

/* Rows (an output row = all of the innermost dim) per band of `depth` x row
 * floats, so a band stays under CONV_COL_BYTES; at least one row. */
static int64_t band_rows(int64_t rows, int64_t depth, int64_t row_len)
{
    int64_t per_row = depth * row_len * (int64_t)sizeof(float);
    int64_t t = per_row > 0 ? CONV_COL_BYTES / per_row : rows;
    if (t < 1) t = 1;
    return t < rows ? t : rows;
}

static int64_t conv_band(const conv_geom *g)
{
    return band_rows(g->sp.out[0] * g->sp.out[1], g->CK, g->sp.out[2]);
}

/* ---- Winograd F(4x4, 3x3) (winograd.c) --------------------------------- */

/* Create's float32 view of a constant W: the widened copy of a 16-bit W
 * (create_common), else W's own data; NULL when W is not a constant with
 * data and elements. Dense rows: conv_pad_create, the one that pads, runs
 * last. *wt gets the constant (NULL when there is none). */
/* The output positions (spatial dims' product) of the planner's output
 * shape for a W of rank wr, or -1 when create has none of that rank. */
static int64_t conv_hint_out(const onr_create_ctx *c, int wr)
{
    if (c->out0_rank != wr) return -1;
    int64_t out = 1;
    for (int d = 2; d < wr; d++) out *= c->out0_dims[d];
    return out;
}

static const float *conv_const_wf(onr_create_ctx *c, const conv_params *p, const onr_tensor **wt)
{
    const onr_tensor *w = onr_create_const(c, 1);
    *wt = w;
    if (!w || w->numel == 0 || !(w->dtype == ONR_FLOAT || p->w32) || (!w->data && !p->w32))
        return NULL;
    return p->w32 ? p->w32 : w->data;
}

/* A constant W of 3x3 kernels with strides and dilations 1 is transformed
 * once for the Winograd path (unless ONR_CONV_ALGO=im2col). In automatic
 * mode only groups of at least 8 input and output channels, and at most
 * WINO_U_MAX bytes of transformed weights (4x W's size), or
 * WINO_U_MAX_SEEN where the planner's output shape is one Winograd is
 * worth it for (onr_wino_worth): the transformed weights stream from
 * memory once a run, and on outputs of 16x16 and more the products they
 * save cost more. UNet's 512 -> 512 layer on 16x16 (38 MB transformed)
 * ran 6.9 ms through im2col and 3.9 ms on Winograd at 1 thread, its
 * 512 -> 256 one on 32x32 (19 MB) 13.4 and 5.1 ms (Zen 5). W itself is
 * kept for im2col. */
#define WINO_U_MAX ((size_t)16 << 20)
#define WINO_U_MAX_SEEN ((size_t)64 << 20)
static int conv_wino_create(onr_create_ctx *c, conv_params *p)
{
    const onr_tensor *w;
    const float *wf = conv_const_wf(c, p, &w);
    int mode = onr_wino_mode();
    if (mode == ONR_WINO_OFF || !wf || w->rank != 4 || w->dims[2] != 3 || w->dims[3] != 3)
        return ONR_OK;
    for (int i = 0; i < p->wa.strides.n; i++)
        if (p->wa.strides.v[i] != 1) return ONR_OK;
    for (int i = 0; i < p->wa.dilations.n; i++)
        if (p->wa.dilations.v[i] != 1) return ONR_OK;
    int64_t M = w->dims[0], Cg = w->dims[1];
    if (M % p->group != 0) return ONR_OK; /* reshape reports it */
    size_t n = onr_wino_weights_floats(M, Cg), max = WINO_U_MAX;
    if (c->out0_rank == 4 && p->group > 0) {
        onr_wino_geom wg = {.Cg = Cg, .Mg = M / p->group, .OH = c->out0_dims[2], .OW = c->out0_dims[3]};
        if (onr_wino_worth(&wg)) max = WINO_U_MAX_SEEN;
    }
    if (mode == ONR_WINO_AUTO && (Cg < 8 || M / p->group < 8 || n * sizeof(float) > max))
        return ONR_OK;
    /* an optimisation only: where the session's memory budget could not
     * hold the transformed weights and as much again (what the rest of the
     * model takes is not known yet), the layer runs im2col instead of the
     * model being refused (forced, it is refused naming them) */
    if (mode == ONR_WINO_AUTO && !onr_budget_fits(c->budget, 2 * (uint64_t)n * sizeof(float)))
        return ONR_OK;
    int st = onr_create_hold(c, "Winograd-transformed weights", (uint64_t)n * sizeof(float));
    if (st) return st;
    /* huge pages where it is big: fewer page faults while it is written */
    if (!(p->wino_u = onr_alloc_aligned(n * sizeof(float))))
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for %zu bytes of transformed weights",
                          n * sizeof(float));
    const int nt = c->nthreads > 0 ? c->nthreads : 1;
    /* its pages faulted in (and cleared) on every thread's CPU first, where
     * onr_zero_parallel splits it; else the transform faults them itself */
    if (nt > 1 && n * sizeof(float) >= ONR_ZERO_PARALLEL_MIN)
        onr_zero_parallel(p->wino_u, n * sizeof(float), nt);
    onr_wino_transform_weights(wf, M, Cg, p->group, p->wino_u, nt);
    return ONR_OK;
}

/* Reshape: whether this geometry runs on Winograd, and its plan. */
static int conv_wino_pick(conv_params *p)
{
    const conv_geom *g = &p->g;
    const onr_spatial *sp = &g->sp;
    int mode = onr_wino_mode();
    /* small groups run dwconv.c's direct kernel unless Winograd is forced */
    if (!p->wino_u || mode == ONR_WINO_OFF || sp->nsp != 2 || g->kind == CONV_DIRECT ||
        (g->kind == CONV_DW && (g->Cg == 1 || mode == ONR_WINO_AUTO)))
        return 0;
    for (int j = 1; j < 3; j++)
        if (sp->k[j] != 3 || sp->s[j] != 1 || sp->d[j] != 1) return 0;
    onr_wino_geom *w = &p->wino;
    memset(w, 0, sizeof *w);
    w->N = g->N;
    w->C = g->C;
    w->M = g->M;
    w->G = g->G;
    w->Cg = g->Cg;
    w->Mg = g->Mg;
    w->IH = sp->in[1];
    w->IW = sp->in[2];
    w->OH = sp->out[1];
    w->OW = sp->out[2];
    w->pt = sp->pb[1];
    w->pl = sp->pb[2];
    if (mode == ONR_WINO_AUTO && !onr_wino_worth(w)) return 0;
    onr_wino_plan(w, p->nthreads);
    return 1;
}

static void conv_wino_act(const void *e, float *y, int64_t n);

/* ---- transposed GEMM for small outputs (CONV_GEMMT) ----------------------- */

static void conv_epi_rows(const conv_epi *e, int full, float *y, const float *z, int64_t rows,
                          int64_t n, int64_t ld);
static int conv_gemm_act(int act);
static void im2col_f32(const conv_geom *g, const float *xg, int64_t r0, int64_t r1, float *col,
                       int nt);

static int conv_t_force = -1; /* -1 automatic, 0 never, 1 whenever W allows */
void onr_conv_force_transposed(int mode) { conv_t_force = mode < 0 ? -1 : mode != 0; }
static int conv_t_split = -1; /* -1 automatic, 0 channels, 1 positions */
void onr_conv_t_split(int mode) { conv_t_split = mode < 0 ? -1 : mode != 0; }

static atomic_size_t conv_t_runs, conv_t_tapmajor_runs;
size_t onr_conv_transposed_count(void) { return atomic_load_explicit(&conv_t_runs, memory_order_relaxed); }
size_t onr_conv_t_tapmajor_count(void)
{
    return atomic_load_explicit(&conv_t_tapmajor_runs, memory_order_relaxed);
}

/* Largest column matrix (CK x OUT floats) the transposed path gathers at
 * once: it has no bands. */
#define CONV_T_COL_FLOATS ((int64_t)4 << 20)
/* Fewest input channels per group for which the transposed path gathers
 * col^T tap-major (conv_colt_tapmajor): runs of this many floats copied. */
#define CONV_T_TAPMAJOR_MIN 16
/* Fewest output rows per band of a layer that reads its taps in place
 * (conv_t_rows_products; the rows of X a band reads again grow with fewer). */
#define CONV_T_ROWS_MIN 2
static int conv_t_tapmajor_takes(int64_t cg, int64_t k) { return k > 1 && cg >= CONV_T_TAPMAJOR_MIN; }

/* Whether an output of OUT positions per plane (depth CK) runs transposed:
 * the whole column matrix fits, and the kernel's column tiles would waste
 * a fifth or more of their width (49 columns fill 64), or a tenth for a
 * kernel of several taps (taps): gathering col^T straight from X then
 * costs less than im2col, packing and the waste (ResNet-50's 3x3 stride-2
 * layer to 14x14, 196 columns in 224: 1.5 -> 1.4 ms at 1 thread, 1.16 ->
 * 0.86 ms at 2). For 1x1 kernels each part's transpose or gather of X
 * costs more than the tiles gain (ResNet-50's 14x14 1x1 layers: 5 %
 * faster at 1 thread, 20 % slower at 2; ResNet-18's 1x1 stride-2 one
 * slower at 1 thread). */
static int64_t conv_t_lda(int64_t ck);

static int64_t conv_t_band_force; /* test hook: rows per band (0: automatic) */
void onr_conv_t_force_band(int64_t rows) { conv_t_band_force = rows > 0 ? rows : 0; }

/* Whether the transposed path runs in bands of output positions (and how
 * many rows each, conv_t_band): where col^T (out x ck) would not fit in
 * half the L2, and W_g^T (ck x mg), read again for each band, fits it. */
static int conv_t_banded(int64_t out, int64_t mg, int64_t ck)
{
    onr_sgemm_blocking bl;
    onr_sgemm_get_blocking(&bl);
    const int64_t l2 = (int64_t)bl.l2_bytes, f = (int64_t)sizeof(float);
    return out * conv_t_lda(ck) * f > l2 / 2 && ck * mg * f <= l2;
}

static int conv_t_worth(int64_t out, int64_t mg, int64_t ck, int64_t k)
{
    const int taps = k > 1;
    onr_sgemm_blocking bl;
    onr_sgemm_get_blocking(&bl);
    int64_t nr = (int64_t)bl.nr, pad_out = (out + nr - 1) / nr * nr, pad_m = (mg + nr - 1) / nr * nr;
    /* transposed, the channels fill the column tiles instead: they must
     * fill them well (grouped layers of 8 channels would not) */
    if (!(out > 0 && ck > 0 && out * ck <= CONV_T_COL_FLOATS)) return 0;
    /* a few positions (the squeeze-excitation layers, 1x1 on 1x1): the
     * columns would waste all but a few lanes either way, and transposed W
     * streams once from its packed form instead of being packed each run
     * (1152 -> 48 channels: 13.6 -> 3 us) */
    if (out * 4 <= nr) return 1;
    /* a k x k layer (9 taps or more) gathered tap-major, in bands: the
     * gathered band is still in cache when the GEMM reads it, and at 2
     * threads each gathers its own bands, where im2col's column matrix
     * went through memory (ResNet-50's 128-channel 3x3 stride-2 layer to
     * 28x28, alone, Zen 5: 1.35 -> 1.33 ms at 1 thread, 0.99 -> 0.75 at
     * 2; ResNet-18's 64 -> 128 one 0.68 -> 0.72, 0.50 -> 0.42; 2x2
     * stride-2 layers, a plain rearrangement for im2col, were slower) */
    if (k >= 9 && conv_t_tapmajor_takes(ck / k, k) && conv_t_banded(out, mg, ck)) return 1;
    return (double)out < (taps ? 0.9 : 0.8) * (double)pad_out && (double)mg >= 0.9 * (double)pad_m;
}

/* create: pack W_g^T of a constant float W when the planner's output shape
 * will run transposed (or the hook forces it). Depthwise and Winograd
 * layers never do. */
static int conv_amx_t_ok(int64_t m, int64_t out, int64_t k);

/* Whether W_g^T (CK x Mg) of a layer that runs transposed is packed for
 * AMX, so that its bands' products of 64 rows and more run there: kernels
 * of several taps whose W_g^T fits in half the L2 (the products split the
 * float panels into terms as they read them, once a band), on outputs of
 * at least CONV_T_AMX_MIN_OUT positions (bands of 96 and more rows).
 * ResNet-50's 3x3 stride-2 layer to 28 x 28 (128 channels, W_g^T 0.6 MB):
 * 1.88 -> 1.64 ms at 1 thread, 1.07 -> 0.90 at 2; its layer to 14 x 14
 * (256 channels, 2.4 MB, bands of 32 rows) lost, 1.01 -> 1.07-1.15 at 2
 * threads whatever the band. */
#define CONV_T_AMX_MIN_OUT 256
static int conv_t_amx_takes(const onr_create_ctx *c, const onr_tensor *w, int64_t Mg, int64_t CK,
                            int64_t K)
{
    const int64_t out = conv_hint_out(c, w->rank);
    if (!onr_sgemm_amx() || K < 2 || out < 0) return 0;
    onr_sgemm_blocking bl;
    onr_sgemm_get_blocking(&bl);
    return out >= CONV_T_AMX_MIN_OUT && (size_t)(CK * Mg) * sizeof(float) <= bl.l2_bytes / 2;
}

static int conv_t_create(onr_create_ctx *c, conv_params *p)
{
    const onr_tensor *w;
    const float *wf = conv_const_wf(c, p, &w);
    if (conv_t_force == 0 || !wf || w->rank < 3) return ONR_OK;
    int64_t M = w->dims[0], Cg = w->dims[1], K = 1, G = p->group;
    for (int d = 2; d < w->rank; d++) K *= w->dims[d];
    if (G < 1 || M % G != 0 || (Cg == 1 && G > 1) || Cg * K <= 0) return ONR_OK;
    int64_t Mg = M / G, CK = Cg * K;
    if (conv_t_force < 0) {
        const int64_t out = conv_hint_out(c, w->rank);
        if (out < 0 || !conv_t_worth(out, Mg, CK, K)) return ONR_OK;
        /* wide expansions (at least twice the inputs) whose float32
         * weights fit in L2 go to AMX instead (MobileNetV2's 7 x 7 layers
         * 160 -> 960 and 320 -> 1280: 0.133 -> 0.107 ms, 0.317 -> 0.253
         * at 1 thread, 0.089 -> 0.068, 0.178 -> 0.161 at 2); its 960 ->
         * 320 lost (0.228 -> 0.256 at 1 thread), and bigger weights stream
         * from memory, 1.5 times larger as terms (ResNet-50's last stage:
         * 1.0 -> 1.8 ms a layer) */
        if (G == 1 && K == 1 && onr_sgemm_amx() && conv_amx_t_ok(M, out, Cg)) return ONR_OK;
        /* 3x3 stride-1 layers of 9x9 and more go to Winograd */
        if (p->wino_u && w->rank == 4 && c->out0_dims[2] >= 9 && c->out0_dims[3] >= 9) return ONR_OK;
    }
    const int flags = conv_t_amx_takes(c, w, Mg, CK, K) ? ONR_PACK_AMX : 0;
    size_t one = onr_sgemm_pack_b_size_ex((size_t)CK, (size_t)Mg, flags), stride = (one + 63) / 64 * 64;
    if (stride > SIZE_MAX / (size_t)G) return ONR_OK;
    int st = onr_create_hold(c, "transposed packed weights", (uint64_t)stride * (uint64_t)G);
    if (st) return st;
    if (!(p->wt = onr_alloc_aligned(stride * (size_t)G)))
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for %zu bytes of packed weights",
                          stride * (size_t)G);
    p->wt_stride = stride;
    /* several taps over enough channels: col^T is gathered tap-major
     * (conv_colt_tapmajor), so W_g^T's rows go in that order too */
    float *perm = NULL;
    if (conv_t_tapmajor_takes(Cg, K)) {
        if (!(perm = malloc(sizeof(float) * (size_t)Mg * (size_t)CK))) {
            free(p->wt);
            p->wt = NULL;
            return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for %zu bytes of weights",
                              sizeof(float) * (size_t)Mg * (size_t)CK);
        }
        p->wt_tapmajor = 1;
    }
    for (int64_t grp = 0; grp < G; grp++) { /* B = W_g^T: K = CK rows, N = Mg columns */
        const float *wg = wf + grp * Mg * CK;
        if (perm) {
            for (int64_t m = 0; m < Mg; m++)
                for (int64_t ci = 0; ci < Cg; ci++)
                    for (int64_t kk = 0; kk < K; kk++)
                        perm[m * CK + kk * Cg + ci] = wg[m * CK + ci * K + kk];
            wg = perm;
        }
        onr_sgemm_pack_b_ex(1, (size_t)CK, (size_t)Mg, wg, (size_t)CK,
                            (char *)p->wt + (size_t)grp * stride, flags);
    }
    free(perm);
    return ONR_OK;
}

/* dst[c * ldd + r] = src[r * lds + c] for r < rows and c0 <= c < c1: 4 x 4
 * blocks (SSE), the rest one by one. */
static void conv_transpose_cols_s(const float *src, int64_t rows, int64_t c0, int64_t c1,
                                  int64_t lds, float *dst, int64_t ldd, const float *rs);

static void conv_transpose_cols(const float *src, int64_t rows, int64_t c0, int64_t c1, int64_t lds,
                                float *dst, int64_t ldd)
{
    conv_transpose_cols_s(src, rows, c0, c1, lds, dst, ldd, NULL);
}

/* The same with source row r scaled by rs[r] (rs NULL: none). */
static void conv_transpose_cols_s(const float *src, int64_t rows, int64_t c0, int64_t c1,
                                  int64_t lds, float *dst, int64_t ldd, const float *rs)
{
    int64_t r = 0;
#if defined(__SSE__)
    for (; r + 4 <= rows; r += 4) {
        int64_t c = c0;
        const __m128 s0 = _mm_set1_ps(rs ? rs[r] : 1.f), s1 = _mm_set1_ps(rs ? rs[r + 1] : 1.f);
        const __m128 s2 = _mm_set1_ps(rs ? rs[r + 2] : 1.f), s3 = _mm_set1_ps(rs ? rs[r + 3] : 1.f);
        for (; c + 4 <= c1; c += 4) {
            __m128 a0 = _mm_loadu_ps(src + r * lds + c), a1 = _mm_loadu_ps(src + (r + 1) * lds + c);
            __m128 a2 = _mm_loadu_ps(src + (r + 2) * lds + c), a3 = _mm_loadu_ps(src + (r + 3) * lds + c);
            if (rs) {
                a0 = _mm_mul_ps(a0, s0), a1 = _mm_mul_ps(a1, s1);
                a2 = _mm_mul_ps(a2, s2), a3 = _mm_mul_ps(a3, s3);
            }
            _MM_TRANSPOSE4_PS(a0, a1, a2, a3);
            _mm_storeu_ps(dst + c * ldd + r, a0);
            _mm_storeu_ps(dst + (c + 1) * ldd + r, a1);
            _mm_storeu_ps(dst + (c + 2) * ldd + r, a2);
            _mm_storeu_ps(dst + (c + 3) * ldd + r, a3);
        }
        for (; c < c1; c++)
            for (int64_t i = 0; i < 4; i++)
                dst[c * ldd + r + i] = rs ? src[(r + i) * lds + c] * rs[r + i] : src[(r + i) * lds + c];
    }
#endif
    for (; r < rows; r++)
        for (int64_t c = c0; c < c1; c++) dst[c * ldd + r] = rs ? src[r * lds + c] * rs[r] : src[r * lds + c];
}

/* A transpose cut in blocks of bw source columns (destination rows); epi
 * runs on each block's rows after it, while they are in cache. */
typedef struct conv_tr_job {
    const float *src;
    float *dst;
    int64_t rows, cols, lds, ldd, bw;
    const conv_epi *epi;
    const float *z;
} conv_tr_job;

static void conv_tr_block(void *ctx, int64_t bi)
{
    const conv_tr_job *j = ctx;
    int64_t c0 = bi * j->bw, c1 = c0 + j->bw < j->cols ? c0 + j->bw : j->cols;
    conv_transpose_cols(j->src, j->rows, c0, c1, j->lds, j->dst, j->ldd);
    if (j->epi)
        conv_epi_rows(j->epi, 1, j->dst + c0 * j->ldd, j->z ? j->z + c0 * j->ldd : NULL, c1 - c0,
                      j->rows, j->ldd);
}

/* Most kernel taps (kd x kh x kw) the transposed path gathers: its tap
 * table is on the stack. */
#define CONV_T_TAPS 64

/* Row stride of the transposed column matrix: CK, padded where rows of a
 * multiple of 2 KiB would alias in L1 (the GEMM then reads it in place). */
static int64_t conv_t_lda(int64_t ck) { return ck % 512 == 0 ? ck + 16 : ck; }

/* Each tap's offset in a channel plane for output position o (-1 where it
 * reads padding; at most CONV_T_TAPS taps: conv_t_pick); whether all read
 * inside. */
static int conv_t_offsets(const conv_geom *g, int64_t o, int64_t *off)
{
    const onr_spatial *sp = &g->sp;
    const int64_t OH = sp->out[1], OW = sp->out[2];
    const int64_t od = o / (OH * OW), oh = o / OW % OH, ow = o % OW;
    const int64_t id0 = od * sp->s[0] - sp->pb[0], ih0 = oh * sp->s[1] - sp->pb[1];
    const int64_t iw0 = ow * sp->s[2] - sp->pb[2];
    /* taps in (kd, kh, kw) order, the bounds checked a dimension at a time
     * (a division per tap made this a sixth of the gather) */
    int all = 1;
    int64_t kk = 0;
    for (int64_t kd = 0; kd < sp->k[0]; kd++) {
        const int64_t id = id0 + kd * sp->d[0];
        const int in_d = id >= 0 && id < sp->in[0];
        for (int64_t kh = 0; kh < sp->k[1]; kh++) {
            const int64_t ih = ih0 + kh * sp->d[1];
            const int in_h = in_d && ih >= 0 && ih < sp->in[1];
            const int64_t row = (id * sp->in[1] + ih) * sp->in[2];
            for (int64_t kw = 0; kw < sp->k[2]; kw++, kk++) {
                const int64_t iw = iw0 + kw * sp->d[2];
                const int in = in_h && iw >= 0 && iw < sp->in[2];
                off[kk] = in ? row + iw : -1;
                all &= in;
            }
        }
    }
    return all;
}

/* Rows [o0, o1) of col^T ordered tap-major, at[(o - o0) * lda + kk * Cg
 * + c] (W_g^T packed in that order: conv_t_create): the input positions
 * these outputs read, [lo, hi], transposed to channels-last into xt
 * (scaled by sc on the way), then each output's taps copied as runs of
 * Cg floats (taps side by side in the input, a 3x3 window's rows, as one
 * run), zeros where a tap reads padding. ResNet's 3x3 layers on 7x7
 * (512 channels, 4608 deep) gathered element by element in 82 us of a
 * 1.4 ms layer at 1 thread, and each part at 2 threads gathers again. */
static void conv_colt_tapmajor(const conv_geom *g, const float *xg, float *at, int64_t lda,
                               const float *sc, int64_t o0, int64_t o1, float *xt)
{
    const int64_t K = g->K, Cg = g->Cg;
    int64_t off[CONV_T_TAPS], lo = g->IN, hi = -1;
    for (int64_t o = o0; o < o1; o++) {
        conv_t_offsets(g, o, off);
        for (int64_t kk = 0; kk < K; kk++)
            if (off[kk] >= 0) {
                lo = off[kk] < lo ? off[kk] : lo;
                hi = off[kk] > hi ? off[kk] : hi;
            }
    }
    /* 16 positions (rows of xt) at a time: whole rows of xt at once, Cg
     * floats apart, would share few L1 sets (Cg a multiple of 256) */
    for (int64_t c0 = 0; c0 <= hi - lo; c0 += 16)
        conv_transpose_cols_s(xg + lo, Cg, c0, c0 + 16 < hi + 1 - lo ? c0 + 16 : hi + 1 - lo, g->IN,
                              xt, Cg, sc);
    for (int64_t o = o0; o < o1; o++) {
        conv_t_offsets(g, o, off);
        float *dst = at + (o - o0) * lda;
        for (int64_t kk = 0; kk < K;) {
            if (off[kk] < 0) {
                memset(dst + kk * Cg, 0, sizeof(float) * (size_t)Cg);
                kk++;
                continue;
            }
            int64_t run = 1;
            while (kk + run < K && off[kk + run] == off[kk] + run) run++;
            memcpy(dst + kk * Cg, xt + (off[kk] - lo) * Cg, sizeof(float) * (size_t)(run * Cg));
            kk += run;
        }
    }
}

/* Rows [o0, o1) of col^T of one group straight from X: at[(o - o0) * lda +
 * c * K + kk] = the input under tap kk (kd, kh, kw) of output position o, 0
 * where it reads padding (the transpose of im2col's column matrix, with no
 * column matrix); X itself transposed where it is the column matrix
 * (CONV_GEMM); tap-major (conv_colt_tapmajor, xt its buffer) where W_g^T
 * was packed so. */
static void conv_colt(const conv_geom *g, const float *xg, float *at, int64_t lda, const float *sc,
                      int64_t o0, int64_t o1, float *xt)
{
    if (g->t_from == CONV_GEMM) {
        conv_transpose_cols_s(xg + o0, g->CK, 0, o1 - o0, g->OUT, at, lda, sc);
        return;
    }
    if (g->t_tapmajor) {
        conv_colt_tapmajor(g, xg, at, lda, sc, o0, o1, xt);
        return;
    }
    const int64_t K = g->K;
    int64_t off[CONV_T_TAPS];
    for (int64_t o = o0; o < o1; o++) {
        const int all = conv_t_offsets(g, o, off);
        float *dst = at + (o - o0) * lda;
        const float *xc = xg;
        if (sc) {
            for (int64_t c = 0; c < g->Cg; c++, xc += g->IN, dst += K)
                for (int64_t kk = 0; kk < K; kk++) dst[kk] = off[kk] >= 0 ? xc[off[kk]] * sc[c] : 0.f;
        } else if (all) {
            for (int64_t c = 0; c < g->Cg; c++, xc += g->IN, dst += K)
                for (int64_t kk = 0; kk < K; kk++) dst[kk] = xc[off[kk]];
        } else {
            for (int64_t c = 0; c < g->Cg; c++, xc += g->IN, dst += K)
                for (int64_t kk = 0; kk < K; kk++) dst[kk] = off[kk] >= 0 ? xc[off[kk]] : 0.f;
        }
    }
}

/* Scratch of the transposed path: T (OUT x Mg floats), then per part its
 * col^T (a band of t_band x lda) and a one-thread GEMM workspace after it. */
static size_t conv_t_at_bytes(const conv_geom *g)
{
    if (g->t_rows) return 0; /* read in place */
    return ((size_t)g->t_band * (size_t)conv_t_lda(g->CK) * sizeof(float) + 63) / 64 * 64;
}

static int64_t conv_t_rows_most(const conv_geom *g);
static int64_t conv_t_rows_min(const conv_geom *g);
/* Grid rows of X by rows a band reads past its own output rows. */
static int64_t conv_t_rows_halo(const conv_geom *g) { return (g->sp.k[1] - 1) / g->sp.s[1]; }
static int64_t conv_t_rows_bands(const conv_geom *g, int64_t nrows);

/* Bytes of a part's GEMM workspace, after its col^T. */
static size_t conv_t_ws_bytes(const conv_geom *g)
{
    const int64_t rows = g->t_rows ? conv_t_rows_most(g) * g->sp.out[2] : g->t_band;
    size_t ws = onr_sgemm_workspace_size_ex((size_t)rows, (size_t)g->Mg, (size_t)g->CK, 1,
                                            g->t_amx ? ONR_PACK_AMX : 0);
    return (ws + 63) / 64 * 64;
}

/* Output positions per band of the transposed path: all of them where
 * col^T fits in half the L2, else bands of whole row tiles of about a
 * quarter of it (so the gathered band is still in cache when the GEMM
 * reads it), provided W_g^T, read again for each band, fits the L2. */
static int64_t conv_t_band(const conv_geom *g)
{
    onr_sgemm_blocking bl;
    onr_sgemm_get_blocking(&bl);
    const int64_t row = conv_t_lda(g->CK) * (int64_t)sizeof(float), mr = (int64_t)bl.mr;
    int64_t band = conv_t_band_force;
    if (g->t_rows) { /* whole output rows */
        const int64_t OW = g->sp.out[2], OH = g->sp.out[1];
        const int64_t drmax = conv_t_rows_halo(g);
        const int64_t grid_row = OW * g->t_p * (int64_t)sizeof(float);
        int64_t rows = (band + OW - 1) / OW;
        if (!band && g->CK * g->Mg * (int64_t)sizeof(float) > (int64_t)bl.l2_bytes) {
            rows = OH; /* W_g^T would stream from memory for each band: one */
        } else if (!band) { /* X by rows for a band in about half the L2 */
            rows = (int64_t)bl.l2_bytes / 2 / grid_row - drmax;
            if (rows < CONV_T_ROWS_MIN) rows = CONV_T_ROWS_MIN;
        }
        /* and at least a row tile of positions */
        if (rows < conv_t_rows_min(g)) rows = conv_t_rows_min(g);
        return rows < OH ? rows * OW : g->OUT;
    }
    if (!band) {
        /* (a quarter: the band measured as fast as an eighth, and faster
         * than half or no bands) */
        if (!conv_t_banded(g->OUT, g->Mg, g->CK)) return g->OUT;
        band = (int64_t)bl.l2_bytes / 4 / row / mr * mr;
    }
    band = (band + mr - 1) / mr * mr;
    /* on AMX, whole blocks of 32 rows (a block of fewer costs as much) */
    if (g->t_amx && band > 32) band = band / 32 * 32;
    return band < g->OUT ? band : g->OUT;
}

/* A part's col^T, its GEMM workspace and, gathering tap-major, X
 * transposed (IN x Cg floats at most). */
static size_t conv_t_xr_floats(const conv_geom *g, int64_t nb);

static size_t conv_t_part_bytes(const conv_geom *g)
{
    size_t xt = g->t_tapmajor ? (size_t)g->IN * (size_t)g->Cg * sizeof(float) : 0;
    if (g->t_rows) /* X by rows for a band, and one input row transposed */
        xt = (conv_t_xr_floats(g, conv_t_rows_most(g)) + (size_t)(g->sp.in[2] * g->Cg)) *
             sizeof(float);
    return onr_thread_stride(conv_t_at_bytes(g) + conv_t_ws_bytes(g) + xt);
}

static size_t conv_t_head_bytes(const conv_geom *g)
{
    return ((size_t)g->OUT * (size_t)g->Mg * sizeof(float) + 63) / 64 * 64;
}

/* One part of a group's transposed product: a run of the output channels
 * in units of 16 (half a panel of the AVX-512 kernel, so that 5 panels
 * split 2.5 / 2.5 between 2 threads, not 3 / 2: MobileNetV2's 160-channel
 * layers on 7x7). Each part gathers its own col^T from X, multiplies it
 * by its panels of W_g^T into its columns of T and writes its channels of
 * Y (with the epilogue), all on the thread that runs it: the threads
 * share only X, read once. Shared col^T and T, gathered and transposed by
 * all threads together, cost more than the product at 2 threads when the
 * cores share no cache (every line of them then crosses between cores). */
typedef struct conv_t_job {
    const conv_geom *g;
    const float *xg, *z;
    const float *sc; /* the group's input scale (FusedConv's S), or NULL */
    const void *wt;
    const onr_gemm_epilogue *ep;
    const conv_epi *epi; /* applied in the store (NULL: none, or done in the GEMM) */
    const _Atomic int *cancel;
    float *t, *y;
    char *parts_base;
    size_t part_bytes;
    int64_t units, pw, parts; /* units: of CONV_T_UNIT columns */
    int64_t unit;             /* split by rows: rows per unit (a band, or a row tile) */
    int by_rows;              /* the parts split the output positions instead */
    int64_t chunk;            /* split by channels: units of a panel (claims count panels) */
    int64_t per, claims;      /* split by channels: panels per band, panels in all bands */
    atomic_llong *next;       /* split by channels: each part's next claim (16 apart) */
} conv_t_job;

#define CONV_T_CLAIMS 64 /* most parts of a split by channels (claim counters) */
/* The columns a part of the transposed path takes at a time: panels of
 * W_g^T are split at this width (a multiple of it; the transpose into Y
 * works in blocks of 16 too). */
#define CONV_T_UNIT 16
/* ... on AMX, whole blocks of 32 (its products' column blocks) */
static int64_t conv_t_unit(const conv_geom *g) { return g->t_amx ? 2 * CONV_T_UNIT : CONV_T_UNIT; }

/* ---- taps read in place: X by rows -----------------------------------------
 *
 * A tap-major layer of one 2-D kernel with dilation 1 (ResNet's 3x3
 * stride-2 layers) reads its taps in place instead of gathering all of
 * col^T. For stride sh x sw, X of a band of output rows oh0 .. oh0 + nb
 * goes into a grid of rows r and positions q = 0 .. OW, each position
 * holding, for each of the sh input rows of its grid row and each of the
 * KW taps of a kernel row, the channels (t_p floats a position):
 *
 *   xr[(r * OW + q) * t_p + (rp * KW + kw) * Cg + c]
 *       = X[c][(oh0 + r) * sh + rp - pad_top][q * sw + kw - pad_left]
 *
 * (0 outside X). Output (oh, ow) under tap (kh, kw) reads grid position
 * (oh - oh0 + kh / sh) * OW + ow at (kh % sh * KW + kw) * Cg: the taps of
 * kernel rows dr * sh .. dr * sh + sh - 1 lie side by side in tap-major
 * order, so each such group of kernel rows is a run of K that a GEMM
 * reads in place (A's rows the output positions, t_p apart), summed onto
 * T run by run. X by rows holds sh * KW taps a position where col^T held
 * KH * KW (ResNet's 3x3 stride-2: two thirds, copied in runs of 3 * Cg,
 * and each input row transposed once a band). Standalone, in one
 * process, runs alternating, Zen 5: ResNet-50's 3x3 stride-2 layers to
 * 28x28 and 14x14 -3.6 / -4.0 % at 1 thread, -9 / -6 % at 2. */

static int conv_t_rows_force = -1;
void onr_conv_t_rows(int mode) { conv_t_rows_force = mode < 0 ? -1 : mode != 0; }
static atomic_size_t conv_t_rows_runs;
size_t onr_conv_t_rows_count(void)
{
    return atomic_load_explicit(&conv_t_rows_runs, memory_order_relaxed);
}

/* Floats of X by rows for a band of nb output rows: the grid rows its
 * taps read. */
static size_t conv_t_xr_floats(const conv_geom *g, int64_t nb)
{
    return (size_t)((nb + conv_t_rows_halo(g)) * g->sp.out[2] * g->t_p);
}

/* Fewest output rows a band of a layer that reads X by rows takes: a row
 * tile of positions at least (the SGEMM cuts K otherwise for fewer rows,
 * k_block, which would change the sums). */
static int64_t conv_t_rows_min(const conv_geom *g)
{
    onr_sgemm_blocking bl;
    onr_sgemm_get_blocking(&bl);
    const int64_t OW = g->sp.out[2] > 0 ? g->sp.out[2] : 1;
    return ((int64_t)bl.mr + OW - 1) / OW;
}

/* The bands of a run of nrows output rows: as few as keep each within
 * t_band's rows, but none under conv_t_rows_min (then up to twice that:
 * conv_t_rows_most); band i of n is rows nrows * i / n .. nrows * (i + 1)
 * / n. Any such bands give the same sums, so each part of a split by
 * rows takes its even share of the rows and bands it as it can. */
static int64_t conv_t_rows_bands(const conv_geom *g, int64_t nrows)
{
    const int64_t per = g->t_band / g->sp.out[2], least = conv_t_rows_min(g);
    int64_t n = per > 0 ? (nrows + per - 1) / per : 1;
    if (n > nrows / least) n = nrows / least;
    return n > 0 ? n : 1;
}

/* Most output rows a band takes (conv_t_rows_bands). */
static int64_t conv_t_rows_most(const conv_geom *g)
{
    const int64_t per = g->t_band / g->sp.out[2], least = 2 * conv_t_rows_min(g);
    return per > least ? per : least;
}

/* Reshape: whether a tap-major geometry reads its taps in place, and its
 * floats a position (t_p). */
static int conv_t_rows_pick(conv_geom *g)
{
    const onr_spatial *sp = &g->sp;
    if (!g->t_tapmajor || g->t_amx || conv_t_rows_force == 0 || sp->nsp != 2 || sp->d[1] != 1 ||
        sp->d[2] != 1)
        return 0;
    /* a position's taps, padded where positions a multiple of 2 KiB
     * apart would alias in L1 (the SGEMM would copy A then) */
    g->t_p = sp->s[1] * sp->k[2] * g->Cg;
    if (g->t_p % 512 == 0) g->t_p += 16;
    return 1;
}

/* X by rows (above) for output rows oh0 .. oh0 + nb into xr, each input
 * row transposed to channels-last in xrow first (scaled by sc on the
 * way), then copied a position's taps at a time; the grid rows before r0
 * are there already. */
static void conv_t_rows_gather(const conv_geom *g, const float *xg, const float *sc, int64_t oh0,
                               int64_t nb, int64_t r0, float *xr, float *xrow)
{
    const onr_spatial *sp = &g->sp;
    const int64_t sh = sp->s[1], sw = sp->s[2], IH = sp->in[1], IW = sp->in[2], KW = sp->k[2];
    const int64_t Cg = g->Cg, OW = sp->out[2], P = g->t_p;
    const int64_t drmax = conv_t_rows_halo(g);
    const size_t cb = sizeof(float) * (size_t)Cg;
    for (int64_t r = r0; r < nb + drmax; r++)
        for (int64_t rp = 0; rp < sh && rp < sp->k[1]; rp++) { /* (no tap reads rp >= KH) */
            const int64_t ih = (oh0 + r) * sh + rp - sp->pb[1];
            float *row = xr + r * OW * P + rp * KW * Cg;
            if (ih < 0 || ih >= IH) {
                for (int64_t q = 0; q < OW; q++) memset(row + q * P, 0, cb * (size_t)KW);
                continue;
            }
            /* 16 positions at a time: rows of xrow Cg floats apart would
             * share few L1 sets (Cg a multiple of 256) */
            for (int64_t c0 = 0; c0 < IW; c0 += 16)
                conv_transpose_cols_s(xg + ih * IW, Cg, c0, c0 + 16 < IW ? c0 + 16 : IW, g->IN, xrow,
                                      Cg, sc);
            for (int64_t q = 0; q < OW; q++) {
                /* taps kw reading columns iw = q * sw + kw - pad: those
                 * inside X are one run of xrow */
                const int64_t iw0 = q * sw - sp->pb[2];
                const int64_t k0 = iw0 < 0 ? -iw0 : 0, k1 = IW - iw0 < KW ? IW - iw0 : KW;
                float *dst = row + q * P;
                if (k1 <= k0) {
                    memset(dst, 0, cb * (size_t)KW);
                    continue;
                }
                if (k0 > 0) memset(dst, 0, cb * (size_t)k0);
                memcpy(dst + k0 * Cg, xrow + (iw0 + k0) * Cg, cb * (size_t)(k1 - k0));
                if (k1 < KW) memset(dst + k1 * Cg, 0, cb * (size_t)(KW - k1));
            }
        }
}

/* The products of a band of whole output rows (rows positions from
 * output row oh0) for W_g^T's channels [n0, n1), X by rows in xr: one
 * per run of kernel rows, summed onto T, the epilogue with the last. */
static void conv_t_rows_products(const conv_t_job *j, void *ws, const float *xr, size_t rows,
                                 float *t, int64_t n0, int64_t nm, int64_t n1)
{
    const conv_geom *g = j->g;
    const int64_t sh = g->sp.s[1], KH = g->sp.k[1], KW = g->sp.k[2];
    for (int64_t kh0 = 0; kh0 < KH; kh0 += sh) {
        const int64_t kh1 = kh0 + sh < KH ? kh0 + sh : KH;
        const size_t k0 = (size_t)(kh0 * KW * g->Cg), kn = (size_t)((kh1 - kh0) * KW * g->Cg);
        const float *a = xr + kh0 / sh * g->sp.out[2] * g->t_p;
        const float beta = kh0 ? 1.f : 0.f;
        const onr_gemm_epilogue *ep = kh1 == KH ? j->ep : NULL;
        if (nm > n0)
            onr_sgemm_packed_cols_k(rows, (size_t)g->Mg, (size_t)n0, (size_t)nm, k0, kn, 1.f, a,
                                    (size_t)g->t_p, j->wt, beta, t, (size_t)g->Mg, ep, ws);
        if (n1 > nm)
            onr_sgemm_packed_cols_k(rows, (size_t)g->Mg, (size_t)nm, (size_t)n1, k0, kn, 1.f, a,
                                    (size_t)g->t_p, j->wt, beta, t, (size_t)g->Mg, ep, ws);
    }
}

/* Rows [o0, o1) (whole bands) times W_g^T's channels [n0, n1) (n0 at a
 * unit) into T and Y's channels n0 .. n1, band by band, each band's
 * col^T gathered first (but the first when `gather` is 0: that one band
 * is in `at` already). */
static void conv_t_cols(const conv_t_job *j, float *at, size_t lda, void *ws, float *xt, int64_t o0,
                        int64_t o1, int64_t n0, int64_t n1, int gather)
{
    const conv_geom *g = j->g;
    /* a run that starts inside a panel: that panel's rest first, so the
     * product's tiles do not cross panels */
    int64_t nm = n0 % j->pw ? n0 - n0 % j->pw + j->pw : n0;
    if (nm > n1) nm = n1;
    /* band by band (the bands are the same whatever the parts: each
     * position's sums never depend on the thread count; reading X by rows,
     * the rows [o0, o1) in even bands, whose bounds never change a sum
     * either: conv_t_rows_bands) */
    const int64_t OW = g->sp.out[2], nrows = g->t_rows ? (o1 - o0) / OW : 0;
    const int64_t nbands = g->t_rows ? conv_t_rows_bands(g, nrows) : 0;
    int64_t prev = 0; /* reading X by rows: the band before's output rows */
    for (int64_t b0 = o0, bi = 0; b0 < o1; bi++) {
        const int64_t b1 = g->t_rows       ? o0 + nrows * (bi + 1) / nbands * OW
                           : b0 + g->t_band < o1 ? b0 + g->t_band
                                                 : o1;
        const size_t rows = (size_t)(b1 - b0);
        float *t = j->t + b0 * g->Mg;
        const _Atomic int *old = onr_sgemm_set_cancel(j->cancel);
        if (g->t_rows) { /* X by rows in xt (whole output rows), the taps read in place */
            const int64_t nb = (b1 - b0) / OW, drmax = conv_t_rows_halo(g);
            float *xr = xt + conv_t_xr_floats(g, conv_t_rows_most(g));
            int64_t r0 = 0;
            if (b0 > o0 && drmax) { /* the band before's last grid rows are this one's first */
                const int64_t span = OW * g->t_p;
                memmove(xt, xt + prev * span, sizeof(float) * (size_t)(drmax * span));
                r0 = drmax;
            }
            if (gather || b0 > o0) conv_t_rows_gather(g, j->xg, j->sc, b0 / OW, nb, r0, xt, xr);
            conv_t_rows_products(j, ws, xt, rows, t, n0, nm, n1);
            prev = nb;
        } else {
            if (gather || b0 > o0) conv_colt(g, j->xg, at, (int64_t)lda, j->sc, b0, b1, xt);
            if (nm > n0)
                onr_sgemm_packed_cols(0, rows, (size_t)g->Mg, (size_t)n0, (size_t)nm, (size_t)g->CK,
                                      1.f, at, lda, j->wt, 0.f, t, (size_t)g->Mg, j->ep, ws);
            if (n1 > nm)
                onr_sgemm_packed_cols(0, rows, (size_t)g->Mg, (size_t)nm, (size_t)n1, (size_t)g->CK,
                                      1.f, at, lda, j->wt, 0.f, t, (size_t)g->Mg, j->ep, ws);
        }
        onr_sgemm_set_cancel(old);
        /* Y's channels n0 .. n1 at positions b0 .. b1 from T, 16 channels
         * at a time (n0 starts a block of 16) */
        conv_tr_job tj = {.src = t, .dst = j->y + b0, .rows = b1 - b0, .cols = n1, .lds = g->Mg,
                          .ldd = g->OUT, .bw = 16, .epi = j->epi, .z = j->z ? j->z + b0 : NULL};
        for (int64_t ci = n0 / 16; ci * 16 < n1; ci++) conv_tr_block(&tj, ci);
        b0 = b1;
    }
}

/* One part of the product: rows [o0, o1) of col^T gathered (all of them
 * when the parts split the channels), times W_g^T's channels [n0, n1)
 * (all of them when the parts split the positions), into T and Y. */
static void conv_t_part(void *ctx, int64_t part)
{
    const conv_t_job *j = ctx;
    const conv_geom *g = j->g;
    const size_t lda = (size_t)conv_t_lda(g->CK);
    char *mine = j->parts_base + (size_t)part * j->part_bytes;
    float *at = (float *)mine;
    void *ws = mine + conv_t_at_bytes(g);
    float *xt = (float *)(mine + conv_t_at_bytes(g) + conv_t_ws_bytes(g));
    if (j->by_rows && g->t_rows) { /* an even share of the output rows */
        const int64_t OH = g->sp.out[1], OW = g->sp.out[2];
        const int64_t o0 = part * OH / j->parts * OW, o1 = (part + 1) * OH / j->parts * OW;
        if (o0 < o1) conv_t_cols(j, at, lda, ws, xt, o0, o1, 0, g->Mg, 1);
        return;
    }
    if (j->by_rows) { /* whole units of rows (bands, or row tiles) */
        const int64_t nu = (g->OUT + j->unit - 1) / j->unit;
        int64_t o0 = part * nu / j->parts * j->unit, o1 = (part + 1) * nu / j->parts * j->unit;
        if (o1 > g->OUT) o1 = g->OUT;
        if (o0 < o1) conv_t_cols(j, at, lda, ws, xt, o0, o1, 0, g->Mg, 1);
        return;
    }
    if (!j->next) { /* one part: every band, every channel */
        conv_t_cols(j, at, lda, ws, xt, 0, g->OUT, 0, g->Mg, 1);
        return;
    }
    /* split by channels: claims of (band, run of panels), each part's
     * contiguous share first, then what is left of the others' (from
     * their start: a part gathers a band's col^T once for all its claims
     * in it), so that a thread on a slower core takes fewer. This
     * project's VMs at times run one virtual CPU far slower than the
     * other (Zen 5: 155-186 against 227-230 GFLOP/s on the FMA probe):
     * fixed halves made 2 threads as slow as the slow one's half. Twelve
     * 1x1 layers 320 <-> 1280 on 7x7 (MobileNetV2's last ones) at 2
     * threads, in one process, runs alternating: -13..-21 % then (claims
     * of a quarter of a share); with equal CPUs claims of a quarter cost
     * +3.7 %, these -0.5 % (MobileNetV2 -0.5 %, EfficientNet-B0 -0.2 %,
     * ResNet-50 -0.1 %: noise). */
    const int64_t uw = conv_t_unit(g), per = j->per, total = j->claims;
    int64_t have = -1;
    for (int64_t q = 0; q < j->parts; q++) {
        const int64_t r = (part + q) % j->parts, end = (r + 1) * total / j->parts;
        const int64_t own = end - r * total / j->parts, tail = own / 4 > 1 ? own / 4 : 1;
        /* the owner's first claim all but a quarter of its share (each
         * claim is a product of its own, whose first block of weights
         * nothing fetched ahead), then claims of an eighth */
        int64_t s = q == 0 && own > tail ? own - tail : (own / 8 > 1 ? own / 8 : 1);
        for (;;) {
            int64_t c = (int64_t)atomic_fetch_add_explicit(&j->next[r * 16], s, memory_order_relaxed);
            if (c >= end) break;
            const int64_t c1 = c + s < end ? c + s : end;
            s = own / 8 > 1 ? own / 8 : 1;
            while (c < c1) { /* band by band */
                const int64_t band = c / per, e = c1 < (band + 1) * per ? c1 : (band + 1) * per;
                int64_t b0 = band * g->t_band, b1 = b0 + g->t_band < g->OUT ? b0 + g->t_band : g->OUT;
                if (g->t_rows) { /* the bands of all the rows (conv_t_rows_bands) */
                    const int64_t OH = g->sp.out[1], nb = conv_t_rows_bands(g, OH);
                    b0 = OH * band / nb * g->sp.out[2], b1 = OH * (band + 1) / nb * g->sp.out[2];
                }
                const int64_t n0 = (c - band * per) * j->chunk * uw;
                const int64_t n1 = (e - band * per) * j->chunk * uw < g->Mg ? (e - band * per) * j->chunk * uw : g->Mg;
                conv_t_cols(j, at, lda, ws, xt, b0, b1, n0, n1, band != have);
                have = band;
                c = e;
            }
        }
    }
}

static void conv_gemmt_f32(const conv_geom *g, const float *x, const float *b, float *y,
                           const conv_bufs *bb, int nt)
{
    const conv_epi *epi = bb->epi;
    atomic_fetch_add_explicit(&conv_t_runs, 1, memory_order_relaxed);
    if (g->t_tapmajor) atomic_fetch_add_explicit(&conv_t_tapmajor_runs, 1, memory_order_relaxed);
    if (g->t_rows) atomic_fetch_add_explicit(&conv_t_rows_runs, 1, memory_order_relaxed);
    int gact = epi ? conv_gemm_act(epi->act) : ONR_ACT_NONE;
    /* the activation in the GEMM unless a residual must come before it or
     * the GEMM has no such activation */
    int act_in_gemm = epi && gact >= 0 && !bb->z;
    const int64_t pw = (int64_t)onr_sgemm_packed_width(bb->wt);
    const int64_t units = (g->Mg + conv_t_unit(g) - 1) / conv_t_unit(g);
    /* parts: the threads there are now (one while the process is backed
     * off: each part gathers col^T again, for nothing on one thread), at
     * most the planned count the scratch holds (which part computes a
     * column never changes its value) */
    int64_t parts = nt < g->nthreads ? nt : g->nthreads;
    if (parts > 1) parts = onr_team_probe((int)parts);
    /* split the output positions instead of the channels where each
     * part's gather of all of col^T (OUT x CK) would cost more than each
     * part's read of all of W_g^T (CK x Mg, packed: a stream), counting a
     * gathered element twice (ResNet-50's 3x3 stride-2 layer to 14x14 on
     * Zen 5 at 2 threads: 1.01-1.13 -> 0.83-0.85 ms; its layer to 28x28
     * runs im2col, faster than this path at 1 thread and as fast at 2) */
    const int by_rows = conv_t_split >= 0 ? conv_t_split : 2 * g->OUT > g->Mg;
    if (parts > (by_rows ? g->OUT : units)) parts = by_rows ? g->OUT : units;
    /* split by rows, the parts take whole bands, or whole row tiles and
     * at least one (the SGEMM cuts K in longer blocks for fewer rows,
     * k_block, which would sum a part of fewer rows in another order than
     * one thread does) */
    onr_sgemm_blocking bl;
    onr_sgemm_get_blocking(&bl);
    const int64_t unit = g->t_band < g->OUT ? g->t_band : (int64_t)bl.mr;
    if (by_rows && parts > 1) {
        /* (reading X by rows, even shares of the output rows, each at
         * least a band's least: conv_t_rows_bands) */
        const int64_t most = g->t_rows             ? g->sp.out[1] / conv_t_rows_min(g)
                             : g->t_band < g->OUT ? (g->OUT + unit - 1) / unit
                                                  : g->OUT / unit;
        if (parts > most) parts = most;
    }
    if (parts > CONV_T_CLAIMS) parts = CONV_T_CLAIMS;
    if (parts < 1) parts = 1;
    const int64_t work = g->OUT * g->Mg * g->CK;
    if (work <= ONR_PAR_MIN) parts = 1;
    conv_t_job j = {.g = g, .epi = act_in_gemm ? NULL : epi, .cancel = onr_sgemm_get_cancel(),
                    .t = bb->col, .parts_base = (char *)bb->col + conv_t_head_bytes(g),
                    .part_bytes = conv_t_part_bytes(g), .units = units, .pw = pw, .parts = parts,
                    .unit = unit,
                    .by_rows = parts > 1 && by_rows};
    /* split by channels: claims of whole panels */
    atomic_llong next[16 * CONV_T_CLAIMS];
    if (parts > 1 && !by_rows) {
        const int64_t uw = conv_t_unit(g);
        j.chunk = pw > uw ? pw / uw : 1; /* claims count whole panels */
        j.per = (units + j.chunk - 1) / j.chunk;
        j.claims = j.per * (g->t_rows ? conv_t_rows_bands(g, g->sp.out[1])
                                      : (g->OUT + g->t_band - 1) / g->t_band);
        j.next = next;
    }
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t grp = 0; grp < g->G; grp++) {
            int64_t yoff = (n * g->M + grp * g->Mg) * g->OUT;
            onr_gemm_epilogue ep = {.bias_col = b ? b + grp * g->Mg : NULL};
            if (act_in_gemm) {
                ep.act = (onr_gemm_act)gact;
                ep.clip_min = epi->a;
                ep.clip_max = epi->b;
            }
            j.xg = x + (n * g->C + grp * g->Cg) * g->IN;
            j.sc = bb->s ? bb->s + n * g->s_ld + grp * g->Cg : NULL;
            j.wt = (const char *)bb->wt + (size_t)grp * bb->wt_stride;
            j.ep = b || act_in_gemm ? &ep : NULL;
            j.y = y + yoff;
            j.z = epi && bb->z ? bb->z + yoff : NULL;
            for (int64_t r = 0; j.next && r < parts; r++) atomic_init(&next[r * 16], r * j.claims / parts);
            if (parts == 1) conv_t_part(&j, 0);
            else onr_par_for(parts, (int)parts, 1, conv_t_part, &j);
        }
}

/* Reshape: whether this geometry runs transposed; its column floats
 * (column matrix and T) and workspace bytes. */
static int conv_t_pick(conv_params *p, size_t *col, size_t *ws)
{
    conv_geom *g = &p->g;
    if (!p->wt || (g->kind != CONV_GEMM && g->kind != CONV_IM2COL) || g->OUT == 0) return 0;
    if (g->OUT * g->CK > CONV_T_COL_FLOATS || (g->kind != CONV_GEMM && g->K > CONV_T_TAPS))
        return 0;
    if (conv_t_force < 0 && !conv_t_worth(g->OUT, g->Mg, g->CK, g->K)) return 0;
    g->t_from = g->kind;
    g->t_tapmajor = p->wt_tapmajor && g->kind == CONV_IM2COL;
    g->kind = CONV_GEMMT;
    g->t_amx = onr_sgemm_packed_is_amx(p->wt);
    g->t_rows = conv_t_rows_pick(g);
    g->t_band = conv_t_band(g);
    g->nthreads = p->nthreads;
    size_t bytes = conv_t_head_bytes(g) + (size_t)p->nthreads * conv_t_part_bytes(g);
    *col = (bytes + sizeof(float) - 1) / sizeof(float);
    *ws = 0;
    return 1;
}

static void conv_wino_f32(const conv_geom *g, const float *x, const float *b, float *y,
                          const conv_bufs *bb, int nt)
{
    (void)g;
    const conv_epi *epi = bb->epi;
    onr_wino_epi e = {.bias = b, .z = epi ? bb->z : NULL, .z_after = epi && epi->res_after};
    if (epi && (epi->act == CONV_ACT_RELU || epi->act == CONV_ACT_CLIP)) {
        e.clamp = 1; /* as conv_act_row, in the store */
        e.lo = epi->act == CONV_ACT_RELU ? 0.f : epi->a;
        e.hi = epi->act == CONV_ACT_RELU ? INFINITY : epi->b;
    } else if (epi && epi->act != CONV_ACT_NONE) {
        e.act = conv_wino_act;
        e.act_ctx = epi;
    }
    onr_wino_run(bb->wino, x, bb->wino_u, &e, y, bb->col, nt);
}

static int conv_t_create(onr_create_ctx *c, conv_params *p);
static int conv_dw_create(onr_create_ctx *c, conv_params *p);

/* A constant W whose rows (CK floats, the GEMM paths' A) are a multiple of
 * 2 KiB apart would alias in L1, and the SGEMM copies such an A on every
 * run (1x1 layers with 512, 1024 or 2048 inputs: 1-4 MB a run). Copied
 * once here with rows 16 floats longer, the kernels read it in place: 4-13 %
 * faster on ResNet-50's 1x1 shapes with W coming from memory. The copy
 * replaces W (consumed), so the memory stays the same. Groups of one only
 * (depthwise and small groups have their own layouts); Winograd, the
 * transposed path and dwconv.c made theirs from W before. */
static int conv_pad_on = 1;
void onr_conv_force_padded(int on) { conv_pad_on = on != 0; }

static atomic_size_t conv_pad_made;
size_t onr_conv_padded_count(void) { return atomic_load_explicit(&conv_pad_made, memory_order_relaxed); }

static int conv_pad_create(onr_create_ctx *c, conv_params *p)
{
    const onr_tensor *w;
    const float *src = conv_const_wf(c, p, &w);
    if (!conv_pad_on || p->group != 1 || !src || w->rank < 3) return ONR_OK;
    int64_t M = w->dims[0], Cg = w->dims[1], K = 1;
    for (int d = 2; d < w->rank; d++) K *= w->dims[d];
    int64_t CK = Cg * K, ld = CK + 16;
    if (Cg <= CONV_FEW_INPUTS || CK % 512 != 0) return ONR_OK;
    size_t bytes = (size_t)M * (size_t)ld * sizeof(float);
    int st = onr_create_hold(c, "weights with padded rows", (uint64_t)bytes);
    if (st) return st;
    float *wp = onr_alloc_aligned(bytes);
    if (!wp)
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for %zu bytes of padded weights",
                          bytes);
    for (int64_t m = 0; m < M; m++) {
        memcpy(wp + m * ld, src + m * CK, sizeof(float) * (size_t)CK);
        memset(wp + m * ld + CK, 0, sizeof(float) * 16);
    }
    free(p->w32);
    p->w32 = wp;
    p->w32_ld = ld;
    onr_create_consume(c, 1);
    atomic_fetch_add_explicit(&conv_pad_made, 1, memory_order_relaxed);
    return ONR_OK;
}

/* The forms of a constant W that Conv and FusedConv make at create:
 * Winograd-transformed, laid out for dwconv.c, packed transposed. */
/* A constant float W of 1x1 kernels in one group, with at least 64 input
 * and 96 output channels, is also packed as AMX terms where the CPU has
 * AMX (gemm.h): the layer then runs as a product on AMX tiles (CONV_GEMM;
 * strided, on its gathered columns, CONV_IM2COL: ResNet-50's downsampling
 * layers to 28 x 28 1.56 -> 1.04 ms, to 14 x 14 1.58 -> 1.32), with W
 * itself kept for the float32 kernels (an X holding a non-finite value).
 * k x k kernels stay on them: its 3x3 stride-2 layers on AMX after im2col
 * went 1.88 -> 2.5 ms to 28 x 28 (bands of few columns). Narrower layers
 * fill AMX's blocks of 32 x 32 too poorly for the activations' split to
 * pay: MobileNetV2's 16 -> 96 layer on 112 x 112 ran
 * at half the speed, ResNet-50's 256 -> 64 ones on 56 x 56 0.77 -> 1.11 ms,
 * where its 512 -> 128 on 28 x 28 went 0.77 -> 0.61 (1 thread, Intel Xeon
 * with AMX). The transposed path (7 x 7 outputs, stride 2) lost on AMX:
 * its few rows (49) leave the weights, 1.5 times larger as terms, to
 * stream from memory (ResNet-50's last stage 1.0 -> 1.8 ms a layer; as
 * A' with 49 columns, 0.9 -> 1.2): a layer with W packed for it
 * (conv_t_create, run first) gets no AMX copy, but for wide expansions
 * (conv_amx_t_ok).
 * Products under 2^24 multiply-adds stay on the float32 kernels unless
 * they have CONV_AMX_WIDE rows (conv_amx_takes): the choice must not
 * depend on the thread count (AMX's sums round differently), and at 2
 * threads MobileNetV2's narrower layers on 14 x 14 and 7 x 7 (96 and 160
 * outputs from 576 and 960 inputs) ran slower on AMX however its threads
 * split them (0.10 -> 0.11-0.13 ms; each AMX layer between float32 ones
 * also costs the next about 10 us: a 576 x 96 x 196 product on the
 * float32 kernels 161 -> 171 us right after one on AMX, alone).
 * Winograd's 36 products (at most a few hundred tiles each) lost on AMX
 * too: ResNet-50's 3x3 layers 0.83 -> 0.97 ms on 56 x 56, 1.35 -> 2.18
 * on 14 x 14. */
#define CONV_AMX_MIN_FMAS ((size_t)1 << 24)
/* Products of at least CONV_AMX_WIDE rows (output channels) go to AMX
 * from CONV_AMX_MIN_WIDE multiply-adds: MobileNetV2's expansions to 384
 * and more channels on 14 x 14 and 7 x 7, and its last layers (320 ->
 * 1280 on 7 x 7: 0.18 -> 0.16 ms at 2 threads); see conv_t_create for the
 * transposed path's layers. */
#define CONV_AMX_WIDE 256
#define CONV_AMX_MIN_WIDE ((size_t)1 << 20)
/* Whether an m x n x k product of a 1x1 layer (k inputs) runs on AMX. */
static int conv_amx_takes(size_t m, size_t n, size_t k)
{
    const size_t f = m * n * k;
    return k >= 64 && ((m >= 96 && f >= CONV_AMX_MIN_FMAS) ||
                       (m >= CONV_AMX_WIDE && f >= CONV_AMX_MIN_WIDE));
}

/* A layer that would run transposed: on AMX instead? (conv_t_create) */
static int conv_amx_t_ok(int64_t m, int64_t out, int64_t k)
{
    onr_sgemm_blocking bl;
    onr_sgemm_get_blocking(&bl);
    return m >= CONV_AMX_WIDE && m >= 2 * k && conv_amx_takes((size_t)m, (size_t)out, (size_t)k) &&
           (size_t)(m * k) * sizeof(float) <= bl.l2_bytes;
}

static int conv_amx_create(onr_create_ctx *c, conv_params *p)
{
    const onr_tensor *w;
    const float *src = conv_const_wf(c, p, &w);
    if (!src || p->wt || p->group != 1 || w->rank < 3 || w->dims[0] < 96 || w->dims[1] < 64)
        return ONR_OK; /* (conv_amx_takes never takes them) */
    for (int d = 2; d < w->rank; d++)
        if (w->dims[d] != 1) return ONR_OK;
    const size_t m = (size_t)w->dims[0], k = (size_t)w->dims[1];
    const int64_t out = conv_hint_out(c, w->rank); /* the planner's shape: big enough? */
    if (out >= 0 && !conv_amx_takes(m, (size_t)out, k)) return ONR_OK;
    const size_t ld = p->w32 && p->w32_ld ? (size_t)p->w32_ld : k;
    size_t bytes = onr_sgemm_pack_a_size(m, k);
    if (bytes == 0) return ONR_OK;
    int st = onr_create_hold(c, "weights packed for AMX", (uint64_t)bytes);
    if (st) return st;
    void *wa = onr_alloc_aligned(bytes);
    if (!wa)
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for %zu bytes of packed weights",
                          bytes);
    if (onr_sgemm_pack_a(0, m, k, src, ld, wa) != 0) {
        free(wa); /* a weight that is not finite: the float32 kernels only */
        return ONR_OK;
    }
    p->w_amx = wa;
    return ONR_OK;
}

static int conv_geom_init(onr_kctx *ctx, const conv_params *p, conv_geom *g);
static void conv_pick(conv_params *p, size_t *col, size_t *ws);

/* The path reshape takes for the planner's shapes when they are fixed
 * (create's fixed_shapes) and it reads a packed form only: CONV_WINO
 * (Winograd's U), CONV_GEMMT (the transposed path's W_g^T, a scale S
 * applied to its gathered columns) or CONV_GEMM on AMX (its terms; a
 * non-finite X, which AMX refuses, runs on W summed back from them into
 * scratch); else -1. Reshape's own choice, made now on those shapes (any
 * error: -1, reshape reports it). */
static int conv_fixed_kind(onr_create_ctx *c, conv_params *p)
{
    const onr_tensor *w = onr_create_const(c, 1);
    if (!c->fixed_shapes || !w || !w->data || w->dtype != ONR_FLOAT || p->w32 ||
        c->in0_dtype != ONR_FLOAT || c->in0_rank != w->rank || c->in0_rank > ONR_MAX_RANK ||
        (!p->wino_u && !p->wt && !p->w_amx))
        return -1;
    onr_tensor x = {.dtype = ONR_FLOAT, .rank = c->in0_rank, .numel = 1};
    for (int d = 0; d < x.rank; d++) x.numel *= (x.dims[d] = c->in0_dims[d]);
    onr_tensor *in[8] = {&x, (onr_tensor *)w, (onr_tensor *)onr_create_const(c, 2)};
    onr_err err = {0};
    onr_kctx k = {.params = p, .opset = c->opset, .n_in = c->n_in < 3 ? c->n_in : 3, .in = in,
                  .n_out = 0, .nthreads = c->nthreads > 0 ? c->nthreads : 1, .err = &err};
    conv_geom *g = &p->g;
    int kind = -1;
    if (conv_geom_init(&k, p, g) == ONR_OK) {
        size_t col, ws;
        p->nthreads = k.nthreads;
        conv_pick(p, &col, &ws);
        if (g->kind == CONV_WINO || g->kind == CONV_GEMMT) kind = g->kind;
        /* a 1x1 layer on AMX, no scale S (it would scale W itself): the
         * float32 path a non-finite X takes sums W back from the terms */
        else if (g->kind == CONV_GEMM && p->w_amx && g->G == 1 &&
                 conv_amx_takes((size_t)g->Mg, (size_t)g->OUT, (size_t)g->Cg) &&
                 !(c->node && c->node->n_in > 4 && c->node->inputs[4] >= 0))
            kind = CONV_GEMM;
    }
    memset(g, 0, sizeof *g); /* reshape starts afresh */
    memset(&p->wino, 0, sizeof p->wino);
    p->nthreads = 0;
    return kind;
}

static atomic_size_t conv_w_released;
size_t onr_conv_w_released_count(void)
{
    return atomic_load_explicit(&conv_w_released, memory_order_relaxed);
}

/* A W that the fixed shapes' path never reads (conv_fixed_kind) is
 * consumed: the planner releases it right after this create (its buffer
 * then holds the next weight copied out of the mapping), and no padded
 * copy is made for the float32 paths that will not run. ResNet-50's
 * session 267 -> 179 MB at its peak, its load 163 -> 115 ms (median of 7,
 * Intel Xeon VM: load is mostly the kernel clearing fresh pages). Returns
 * 1 when it did. */
static int conv_drop_w(onr_create_ctx *c, conv_params *p)
{
    if (conv_fixed_kind(c, p) < 0) return 0;
    atomic_fetch_add_explicit(&conv_w_released, 1, memory_order_relaxed);
    p->w_gone = 1;
    p->w_gone_rank = c->in0_rank;
    memcpy(p->w_gone_x, c->in0_dims, sizeof(int64_t) * (size_t)c->in0_rank);
    onr_create_consume(c, 1);
    return 1;
}

static int conv_create_weights(onr_create_ctx *c, conv_params *p)
{
    int st = conv_wino_create(c, p);
    if (!st) st = conv_dw_create(c, p);
    if (!st) st = conv_t_create(c, p);
    if (!st) st = conv_amx_create(c, p);
    if (st || conv_drop_w(c, p)) return st;
    return conv_pad_create(c, p);
}

static int conv_create(onr_create_ctx *c, void *params)
{
    int st = conv_create_common(c, params, 0);
    return st ? st : conv_create_weights(c, params);
}

static int conv_geom_init(onr_kctx *ctx, const conv_params *p, conv_geom *g)
{
    int st;
    if ((st = conv_inputs(ctx, p->fused ? "FusedConv" : "Conv", p->fused ? 5 : 3))) return st;
    const onr_tensor *x = ctx->in[0], *w = ctx->in[1];
    int nsp = x->rank - 2;
    int64_t kernel[ONR_SP_MAX];
    memset(g, 0, sizeof *g);
    g->G = p->group;
    if ((st = conv_kernel(ctx, p, kernel))) return st;
    g->N = x->dims[0];
    g->C = x->dims[1];
    g->M = w->dims[0];
    char s1[256];
    if (g->C % g->G != 0 || g->C / g->G != w->dims[1])
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "X has %lld channels but W %s with group %lld expects W dim 1 = C/group",
                          (long long)g->C, onr_fmt_dims(s1, sizeof s1, w->dims, w->rank),
                          (long long)g->G);
    if (g->M % g->G != 0)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "%lld output channels (W dim 0) are not divisible by group %lld",
                          (long long)g->M, (long long)g->G);
    if ((st = check_bias(ctx, g->M))) return st;
    g->Cg = g->C / g->G;
    g->Mg = g->M / g->G;
    if ((st = onr_spatial_window(ctx->err, &p->wa, nsp, x->dims + 2, kernel, 0, &g->sp)))
        return st;
    geom_sizes(g);
    g->CK = g->Cg * g->K;
    return ONR_OK;
}

/* FusedConv's optional fifth input S, a scale per input channel
 * (Y = conv(X * S, W) ...): float32 of X's rank, [N or 1, C, 1, ...]. Where
 * reshape applies it (g->scale): in W when the layer runs as GEMMs of one
 * group and W has no more weights per input channel (M x taps) than X has
 * positions, in the transposed path's gather, else in a copy of X. */
static int conv_scale_pick(onr_kctx *ctx, conv_params *p)
{
    conv_geom *g = &p->g;
    const onr_tensor *x = ctx->in[0], *sc = p->fused && ctx->n_in > 4 ? ctx->in[4] : NULL;
    g->scale = CONV_SCALE_NONE;
    g->s_ld = 0;
    if (!sc) return ONR_OK;
    int ok = sc->dtype == ONR_FLOAT && sc->rank == x->rank && sc->dims[1] == g->C &&
             (sc->dims[0] == 1 || sc->dims[0] == g->N);
    for (int d = 2; ok && d < sc->rank; d++) ok = sc->dims[d] == 1;
    if (!ok) {
        char s1[256], s2[256];
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "scale S %s %s must be float32 [N or 1, C, 1, ...] for X %s",
                          onr_dtype_name(sc->dtype), onr_fmt_dims(s1, sizeof s1, sc->dims, sc->rank),
                          onr_fmt_dims(s2, sizeof s2, x->dims, x->rank));
    }
    g->s_ld = sc->dims[0] == 1 ? 0 : g->C;
    if (x->dtype != ONR_FLOAT || g->OUT == 0) return ONR_OK; /* reshape's errors, or nothing to do */
    if (g->kind == CONV_GEMMT) g->scale = CONV_SCALE_COLT;
    else if ((g->kind == CONV_GEMM || g->kind == CONV_IM2COL) && g->G == 1 && g->M * g->K <= g->IN)
        g->scale = CONV_SCALE_W;
    else g->scale = CONV_SCALE_X;
    return ONR_OK;
}

/* The workspace of conv_product's m x n x k products on p's weights */
static size_t conv_product_ws(const conv_params *p, size_t m, size_t n, size_t k)
{
    size_t ws = onr_sgemm_workspace_size(m, n, k, p->nthreads);
    if (p->w_amx) {
        size_t wsa = onr_sgemm_packed_a_workspace_size(m, n, k, p->nthreads);
        if (wsa > ws) ws = wsa;
    }
    return ws;
}

/* The path p->g (its geometry set) runs on (g->kind, g->band) and the
 * column floats and workspace bytes it needs (p->nthreads set). */
static void conv_pick(conv_params *p, size_t *col, size_t *ws)
{
    conv_geom *g = &p->g;
    g->kind = conv_kind(g);
    g->band = conv_band(g);
    *col = *ws = 0;
    if (conv_wino_pick(p)) {
        g->kind = CONV_WINO;
        *col = (p->wino.scratch + sizeof(float) - 1) / sizeof(float);
    } else if (conv_t_pick(p, col, ws)) {
        /* sized there */
    } else if (g->kind == CONV_GEMM) {
        *ws = conv_product_ws(p, (size_t)g->Mg, (size_t)g->OUT, (size_t)g->Cg);
    } else if (g->kind == CONV_IM2COL) {
        size_t cols = (size_t)(g->band * g->sp.out[2]);
        *col = (size_t)g->CK * cols;
        *ws = conv_product_ws(p, (size_t)g->Mg, cols, (size_t)g->CK);
    } else if (g->kind == CONV_DW) {
        onr_dwconv d = conv_dw_geom(g);
        *ws = onr_dwconv_workspace_size(&d, p->nthreads);
    }
}

static int conv_reshape(onr_kctx *ctx, size_t *scratch)
{
    conv_params *p = ctx->params;
    conv_geom *g = &p->g;
    int st;
    if ((st = conv_geom_init(ctx, p, g)) || (st = conv_set_out(ctx, g))) return st;
    p->nthreads = ctx->nthreads > 0 ? ctx->nthreads : 1;
    size_t col, ws;
    conv_pick(p, &col, &ws);
    if ((st = conv_scale_pick(ctx, p))) return st;
    if (p->w_gone && ((g->kind != CONV_WINO && g->kind != CONV_GEMMT &&
                       !(g->kind == CONV_GEMM && p->w_amx && g->G == 1 && !g->scale)) ||
                      ctx->in[0]->dtype != ONR_FLOAT)) { /* never, with the shapes fixed */
        char s1[256], s2[256];
        return onr_seterr(ctx->err, ONR_E_RUNTIME,
                          "W was released after create packed it for input %s (the plan's "
                          "shapes are fixed); input %s %s needs it",
                          onr_fmt_dims(s1, sizeof s1, p->w_gone_x, p->w_gone_rank),
                          onr_dtype_name(ctx->in[0]->dtype),
                          onr_fmt_dims(s2, sizeof s2, ctx->in[0]->dims, ctx->in[0]->rank));
    }
    conv_layout(ctx, p, col, ws, scratch);
    if (p->w_gone && g->kind == CONV_GEMM) { /* W summed back, should AMX refuse X */
        size_t used = p->scratch;
        p->off_wr = onr_carve_at(&used, sizeof(float) * (size_t)(g->Mg * g->CK));
        *scratch = p->scratch = used;
    }
    return ONR_OK;
}

/* Gather the columns of output rows [r0, r1) of one group: col row
 * (c, kd, kh, kw), column (output row - r0, ow); zeros where the window
 * reads padding. */
/* dst[ow] = src[2 ow] for ow in [lo, hi), reading no further than src[lim
 * - 1] (the end of the input row): the even lanes of two loads, four
 * outputs at a time (SSE), where all eight floats lie inside the row. */
static void im2col_row_s2(float *dst, const float *src, int64_t lo, int64_t hi, int64_t lim)
{
    int64_t ow = lo;
#if defined(__SSE__)
    for (; ow + 4 <= hi && 2 * ow + 8 <= lim; ow += 4) {
        __m128 a = _mm_loadu_ps(src + 2 * ow), b = _mm_loadu_ps(src + 2 * ow + 4);
        _mm_storeu_ps(dst + ow, _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
    }
#endif
    (void)lim;
    for (; ow < hi; ow++) dst[ow] = src[2 * ow];
}

/* im2col's part `part` of `parts`: output rows q0 .. q1 of [r0, r1). */
typedef struct im2col_job {
    const conv_geom *g;
    const float *xg;
    float *col;
    int64_t r0, r1;
    int parts;
} im2col_job;

static void im2col_part(void *ctx, int64_t part)
{
    const im2col_job *j = ctx;
    const conv_geom *g = j->g;
    const onr_spatial *sp = &g->sp;
    const int64_t r0 = j->r0, r1 = j->r1, parts = j->parts;
    int64_t OW = sp->out[2], OH = sp->out[1], ncol = (r1 - r0) * OW, rows = g->CK;
    int64_t q0 = r0 + (r1 - r0) * part / parts, q1 = r0 + (r1 - r0) * (part + 1) / parts;
    for (int64_t r = 0; r < rows; r++) {
        int64_t c = r / g->K, kk = r % g->K;
        int64_t kd = kk / (sp->k[1] * sp->k[2]), kh = kk / sp->k[2] % sp->k[1], kw = kk % sp->k[2];
        const float *xc = j->xg + c * g->IN;
        float *dst = j->col + r * ncol + (q0 - r0) * OW;
        /* ow whose input column ow*s + w0 lies inside the row */
        int64_t w0 = kw * sp->d[2] - sp->pb[2], lo, hi;
        onr_sp_taps(w0, OW, sp->s[2], sp->in[2], &lo, &hi);
        for (int64_t orow = q0; orow < q1; orow++, dst += OW) {
            int64_t id = orow / OH * sp->s[0] - sp->pb[0] + kd * sp->d[0];
            int64_t ih = orow % OH * sp->s[1] - sp->pb[1] + kh * sp->d[1];
            if (id < 0 || id >= sp->in[0] || ih < 0 || ih >= sp->in[1] || lo == hi) {
                memset(dst, 0, sizeof(float) * (size_t)OW);
                continue;
            }
            const float *src = xc + (id * sp->in[1] + ih) * sp->in[2];
            for (int64_t ow = 0; ow < lo; ow++) dst[ow] = 0.f;
            if (sp->s[2] == 1) {
                memcpy(dst + lo, src + lo + w0, sizeof(float) * (size_t)(hi - lo));
            } else if (sp->s[2] == 2) {
                im2col_row_s2(dst, src + w0, lo, hi, sp->in[2] - w0);
            } else {
                for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * sp->s[2] + w0];
            }
            for (int64_t ow = hi; ow < OW; ow++) dst[ow] = 0.f;
        }
    }
}

static void im2col_f32(const conv_geom *g, const float *xg, int64_t r0, int64_t r1, float *col,
                       int nt)
{
    /* Threads split the output rows (columns of col), not col's rows: the
     * GEMM's threads take contiguous column ranges too, so each mostly
     * packs what its own core gathered, from the input rows its own core
     * wrote in the layer before (cores may share no cache). */
    int64_t ncol = (r1 - r0) * g->sp.out[2];
    int parts = g->CK * ncol > ONR_PAR_MIN && nt > 1 ? nt : 1;
    if (parts > r1 - r0) parts = (int)(r1 - r0);
    im2col_job j = {.g = g, .xg = xg, .col = col, .r0 = r0, .r1 = r1, .parts = parts};
    onr_par_for(parts, parts, 1, im2col_part, &j);
}

/* ---- FusedConv's epilogue outside the GEMM --------------------------------- */

/* The activation over n floats: plain loops the compiler vectorises, and
 * the SGEMM epilogue's vector code for the two that need exp. */
static void conv_act_row(const conv_epi *e, float *y, int64_t n)
{
    const float a = e->a, b = e->b;
    switch (e->act) {
    case CONV_ACT_RELU:
        for (int64_t i = 0; i < n; i++) y[i] = y[i] < 0.f ? 0.f : y[i];
        break;
    case CONV_ACT_CLIP:
        for (int64_t i = 0; i < n; i++) {
            float v = y[i] < a ? a : y[i];
            y[i] = v > b ? b : v;
        }
        break;
    case CONV_ACT_SIGMOID:
    case CONV_ACT_SILU: {
        /* the GEMM epilogue's vector exp, the tail through a zeroed vector */
        int ga = e->act == CONV_ACT_SIGMOID ? ONR_ACT_SIGMOID : ONR_ACT_SILU;
        int64_t i = 0;
        act_vf v;
        for (; i + ONR_ACT_VL <= n; i += ONR_ACT_VL) {
            memcpy(&v, y + i, sizeof v);
            v = act_apply(v, ga, 0.f, 0.f);
            memcpy(y + i, &v, sizeof v);
        }
        if (i < n) {
            size_t bytes = sizeof(float) * (size_t)(n - i);
            v = act_splat(0.f);
            memcpy(&v, y + i, bytes);
            v = act_apply(v, ga, 0.f, 0.f);
            memcpy(y + i, &v, bytes);
        }
        break;
    }
    case CONV_ACT_HARDSIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float v = a * y[i] + b;
            v = v < 0.f ? 0.f : v;
            y[i] = v > 1.f ? 1.f : v;
        }
        break;
    case CONV_ACT_HARDSWISH:
        for (int64_t i = 0; i < n; i++) {
            float v = a * y[i] + b;
            v = v < 0.f ? 0.f : v;
            y[i] = y[i] * (v > 1.f ? 1.f : v);
        }
        break;
    case CONV_ACT_LEAKYRELU:
        for (int64_t i = 0; i < n; i++) y[i] = y[i] < 0.f ? a * y[i] : y[i];
        break;
    default: break;
    }
}

static void conv_wino_act(const void *e, float *y, int64_t n) { conv_act_row(e, y, n); }

static void conv_add_row(float *y, const float *z, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] += z[i];
}

/* The epilogue over `rows` rows of n floats (leading dims ld for y and z):
 * full = 1 applies all of it (residual, activation, in the order asked);
 * full = 0 what the GEMM epilogue could not: the activation, then a
 * residual that comes after it (z NULL otherwise). */
static void conv_epi_rows(const conv_epi *e, int full, float *y, const float *z, int64_t rows,
                          int64_t n, int64_t ld)
{
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * ld;
        const float *zr = z ? z + r * ld : NULL;
        if (full && zr && !e->res_after) conv_add_row(yr, zr, n);
        conv_act_row(e, yr, n);
        if (zr && e->res_after) conv_add_row(yr, zr, n);
    }
}

/* The SGEMM epilogue's activation for ours, or -1 when it has none. */
static int conv_gemm_act(int act)
{
    switch (act) {
    case CONV_ACT_NONE: return ONR_ACT_NONE;
    case CONV_ACT_RELU: return ONR_ACT_RELU;
    case CONV_ACT_CLIP: return ONR_ACT_CLIP;
    case CONV_ACT_SIGMOID: return ONR_ACT_SIGMOID;
    case CONV_ACT_SILU: return ONR_ACT_SILU;
    default: return -1;
    }
}

/* The pass after one GEMM block of rows x n (leading dim ld), threads over
 * rows. */
typedef struct conv_post_job {
    const conv_epi *e;
    float *y;
    const float *z;
    int64_t n, ld;
} conv_post_job;

static void conv_post_row(void *ctx, int64_t r)
{
    const conv_post_job *j = ctx;
    conv_epi_rows(j->e, 0, j->y + r * j->ld, j->z ? j->z + r * j->ld : NULL, 1, j->n, j->ld);
}

static void conv_post(const conv_epi *e, float *y, const float *z, int64_t rows, int64_t n,
                      int64_t ld, int nt)
{
    conv_post_job j = {.e = e, .y = y, .z = z, .n = n, .ld = ld};
    onr_par_for(rows, nt, rows * n > ONR_PAR_MIN, conv_post_row, &j);
}

/* Direct convolution: each output plane (image, channel) by one thread,
 * built a row at a time: for every kernel tap the whole output row gets
 * w * (input row shifted by the tap), a contiguous loop when the stride is 1.
 * Each output sums its taps in (c, kd, kh, kw) order, then adds the bias.
 * The float instance serves depthwise convs, the double one everything. */
#define CONV_DIRECT(sfx, T, ROW_EPI)                                                           \
    static void conv_direct_##sfx(const conv_geom *g, const T *x, const T *w, const T *b,      \
                                  T *y, const conv_epi *epi, const float *z, int nt)           \
    {                                                                                          \
        (void)epi;                                                                             \
        (void)z;                                                                               \
        const onr_spatial *sp = &g->sp;                                                        \
        int64_t planes = g->N * g->M, work = planes * g->OUT * (g->CK + 1), OW = sp->out[2];   \
        _Pragma("omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN && nt > 1)") \
        for (int64_t pl = 0; pl < planes; pl++) {                                              \
            int64_t n = pl / g->M, m = pl % g->M;                                              \
            const T *xg = x + (n * g->C + m / g->Mg * g->Cg) * g->IN;                          \
            const T *wm = w + m * g->CK;                                                       \
            T bias = b ? b[m] : (T)0;                                                          \
            int64_t l0, h0, l1, h1, lo, hi;                                                    \
            for (int64_t od = 0; od < sp->out[0]; od++) {                                      \
                int64_t d0 = od * sp->s[0] - sp->pb[0];                                        \
                onr_sp_taps(d0, sp->k[0], sp->d[0], sp->in[0], &l0, &h0);                      \
                for (int64_t oh = 0; oh < sp->out[1]; oh++) {                                  \
                    int64_t e0 = oh * sp->s[1] - sp->pb[1];                                    \
                    onr_sp_taps(e0, sp->k[1], sp->d[1], sp->in[1], &l1, &h1);                  \
                    T *yr = y + pl * g->OUT + (od * sp->out[1] + oh) * OW;                     \
                    for (int64_t ow = 0; ow < OW; ow++) yr[ow] = 0;                            \
                    for (int64_t c = 0; c < g->Cg; c++) {                                      \
                        const T *xc = xg + c * g->IN, *wc = wm + c * g->K;                     \
                        for (int64_t kd = l0; kd < h0; kd++)                                   \
                            for (int64_t kh = l1; kh < h1; kh++) {                             \
                                int64_t id = d0 + kd * sp->d[0], ih = e0 + kh * sp->d[1];      \
                                const T *xr = xc + (id * sp->in[1] + ih) * sp->in[2];          \
                                const T *wr = wc + (kd * sp->k[1] + kh) * sp->k[2];            \
                                for (int64_t kw = 0; kw < sp->k[2]; kw++) {                    \
                                    T wv = wr[kw];                                             \
                                    int64_t off = kw * sp->d[2] - sp->pb[2];                   \
                                    onr_sp_taps(off, OW, sp->s[2], sp->in[2], &lo, &hi);       \
                                    if (sp->s[2] == 1) {                                       \
                                        for (int64_t ow = lo; ow < hi; ow++)                   \
                                            yr[ow] += wv * xr[ow + off];                       \
                                    } else {                                                   \
                                        for (int64_t ow = lo; ow < hi; ow++)                   \
                                            yr[ow] += wv * xr[ow * sp->s[2] + off];            \
                                    }                                                          \
                                }                                                              \
                            }                                                                  \
                    }                                                                          \
                    for (int64_t ow = 0; ow < OW; ow++) yr[ow] += bias;                        \
                    ROW_EPI;                                                                   \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }

CONV_DIRECT(f32, float, if (epi) conv_epi_rows(epi, 1, yr, z ? z + (yr - y) : NULL, 1, OW, 0))
CONV_DIRECT(f64, double, (void)0)

static void conv_direct_f64_run(const conv_geom *g, const double *x, const double *w,
                                const double *b, double *y, int nt)
{
    conv_direct_f64(g, x, w, b, y, NULL, NULL, nt);
}

/* A constant W of a layer conv_kind sends to dwconv.c (depthwise, or
 * small groups), 1-D or 2-D, laid out for its SIMD kernels once. */
static int conv_dw_create(onr_create_ctx *c, conv_params *p)
{
    const onr_tensor *w;
    const float *wf = conv_const_wf(c, p, &w);
    if (!wf || (w->rank != 3 && w->rank != 4)) return ONR_OK;
    int64_t M = w->dims[0], Cg = w->dims[1], G = p->group;
    if (M % G != 0) return ONR_OK; /* reshape reports it */
    int64_t Mg = M / G;
    onr_dwconv d = {.C = Cg * G, .mult = Mg, .cg = Cg, .KH = w->rank == 4 ? w->dims[2] : 1,
                    .KW = w->dims[w->rank - 1]};
    int64_t smax = 1;
    for (int i = 0; i < p->wa.strides.n; i++)
        if (p->wa.strides.v[i] > smax) smax = p->wa.strides.v[i];
    if (!conv_dw_takes(G, Cg, Mg, d.KH * d.KW, smax, d.KW)) return ONR_OK;
    size_t n = onr_dwconv_weights_floats(&d);
    if (n == 0) return ONR_OK;
    int st = onr_create_hold(c, "depthwise weights laid out", (uint64_t)n * sizeof(float));
    if (st) return st;
    if (!(p->dw_wl = onr_alloc_aligned(n * sizeof(float))))
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for %zu bytes of laid-out weights",
                          n * sizeof(float));
    onr_dwconv_prepare_weights(&d, wf, p->dw_wl);
    return ONR_OK;
}

/* dwconv.c's geometry of a CONV_DW convolution with the epilogue's
 * activation. */
static onr_dwconv conv_dw_geom_epi(const conv_geom *g, const conv_epi *epi)
{
    static const int acts[] = {
        [CONV_ACT_NONE] = ONR_DW_ACT_NONE,
        [CONV_ACT_RELU] = ONR_DW_ACT_RELU,
        [CONV_ACT_CLIP] = ONR_DW_ACT_CLIP,
        [CONV_ACT_SIGMOID] = ONR_DW_ACT_SIGMOID,
        [CONV_ACT_SILU] = ONR_DW_ACT_SILU,
        [CONV_ACT_HARDSIGMOID] = ONR_DW_ACT_HARDSIGMOID,
        [CONV_ACT_HARDSWISH] = ONR_DW_ACT_HARDSWISH,
        [CONV_ACT_LEAKYRELU] = ONR_DW_ACT_LEAKYRELU,
    };
    onr_dwconv d = conv_dw_geom(g);
    if (epi) {
        d.act = acts[epi->act];
        d.a = epi->a;
        d.b = epi->b;
        d.res_after = epi->res_after;
    }
    return d;
}

/* Depthwise, 1-D or 2-D: dwconv.c's kernel with the whole epilogue. */
static void conv_dw_f32(const conv_geom *g, const float *x, const float *w, const float *wl,
                        const float *b, float *y, const conv_epi *epi, const float *z, void *ws,
                        int nt)
{
    onr_dwconv d = conv_dw_geom_epi(g, epi);
    onr_dwconv_f32(&d, x, w, wl, b, epi ? z : NULL, y, ws, nt);
}

/* X * S (FusedConv's input scale) into xs, a plane per item. */
typedef struct conv_sx_job {
    const float *x, *s;
    float *xs;
    int64_t C, IN, s_ld;
} conv_sx_job;

static void conv_sx_plane(void *ctx, int64_t pl)
{
    const conv_sx_job *j = ctx;
    const float v = j->s[pl / j->C * j->s_ld + pl % j->C];
    const float *src = j->x + pl * j->IN;
    float *dst = j->xs + pl * j->IN;
    for (int64_t i = 0; i < j->IN; i++) dst[i] = src[i] * v;
}

/* W with each input channel's weights scaled by S (one image's): rows of
 * Mg x CK (stride ldw; one group). */
static void conv_scale_w(const conv_geom *g, const float *w, size_t ldw, const float *s, float *ws)
{
    for (int64_t m = 0; m < g->Mg; m++) {
        const float *src = w + (size_t)m * ldw;
        float *dst = ws + (size_t)m * ldw;
        if (g->K == 1) {
            for (int64_t c = 0; c < g->Cg; c++) dst[c] = src[c] * s[c];
        } else {
            for (int64_t c = 0; c < g->Cg; c++)
                for (int64_t k = 0; k < g->K; k++) dst[c * g->K + k] = src[c * g->K + k] * s[c];
        }
    }
}

static atomic_size_t conv_scale_runs[4];
size_t onr_conv_scale_count(int mode)
{
    return mode >= 1 && mode <= 3 ? atomic_load_explicit(&conv_scale_runs[mode], memory_order_relaxed)
                                  : 0;
}

/* One m x n x k product of W (row stride ldw) and B (k x n, dense) into C
 * (row stride ldc) with the epilogue: on AMX where W was packed for it,
 * amx_ok (one group, W not scaled) and it is big enough, unless B holds a
 * value that is not finite; else on the float32 kernels. */
static void conv_product(const conv_bufs *bb, int amx_ok, size_t m, size_t n, size_t k,
                         const float *w, size_t ldw, const float *b, float beta, float *c,
                         size_t ldc, const onr_gemm_epilogue *ep, int nt)
{
    if (amx_ok && bb->w_amx && conv_amx_takes(m, n, k) &&
        onr_sgemm_packed_a(m, n, k, 1.f, bb->w_amx, b, n, beta, c, ldc, ep, bb->ws, nt) == 0)
        return;
    if (!w) { /* released (conv_drop_w): summed back from its terms */
        onr_sgemm_unpack_a(bb->w_amx, bb->wr, k);
        w = bb->wr;
        ldw = k;
    }
    onr_sgemm(0, 0, m, n, k, 1.f, w, ldw, b, n, beta, c, ldc, ep, bb->ws, nt);
}

static void conv_f32(const conv_geom *g, const float *x, const float *w, const float *b,
                     float *y, const conv_bufs *bb, int nt)
{
    if (g->OUT == 0) return; /* an empty output (no column band was carved for it) */
    int kind = g->kind;
    const conv_epi *epi = bb->epi;
    if (bb->s) atomic_fetch_add_explicit(&conv_scale_runs[g->scale], 1, memory_order_relaxed);
    if (bb->s && g->scale == CONV_SCALE_X) {
        conv_sx_job sj = {.x = x, .s = bb->s, .xs = bb->xs, .C = g->C, .IN = g->IN, .s_ld = g->s_ld};
        onr_par_for(g->N * g->C, nt, g->N * g->C * g->IN > ONR_PAR_MIN, conv_sx_plane, &sj);
        x = bb->xs;
    }
    if (kind == CONV_DW) {
        conv_dw_f32(g, x, w, bb->dw_wl, b, y, epi, bb->z, bb->ws, nt);
        return;
    }
    if (kind == CONV_DIRECT) {
        conv_direct_f32(g, x, w, b, y, epi, bb->z, nt);
        return;
    }
    if (kind == CONV_WINO) {
        conv_wino_f32(g, x, b, y, bb, nt);
        return;
    }
    if (kind == CONV_GEMMT) {
        conv_gemmt_f32(g, x, b, y, bb, nt);
        return;
    }
    /* what the GEMM epilogue does, and what a pass after each block does */
    int gact = epi ? conv_gemm_act(epi->act) : ONR_ACT_NONE, post = gact < 0;
    int z_in_gemm = epi && bb->z && !(post && epi->res_after);
    size_t Mg = (size_t)g->Mg, OUT = (size_t)g->OUT, CK = (size_t)g->CK;
    size_t ldw = bb->ldw > 0 ? (size_t)bb->ldw : CK; /* W's row stride */
    int64_t rows = g->sp.out[0] * g->sp.out[1], OW = g->sp.out[2], band = g->band;
    const int scale_w = bb->s && g->scale == CONV_SCALE_W; /* one group */
    const int amx_ok = !scale_w && g->G == 1; /* W as packed for AMX */
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t grp = 0; grp < g->G; grp++) {
            const float *xg = x + (n * g->C + grp * g->Cg) * g->IN;
            const float *wg = w ? w + (size_t)grp * Mg * ldw : NULL; /* NULL: released */
            if (scale_w) {
                if (n == 0 || g->s_ld) conv_scale_w(g, w, ldw, bb->s + n * g->s_ld, bb->xs);
                wg = bb->xs;
            }
            int64_t yoff = (n * g->M + grp * g->Mg) * g->OUT;
            float *yg = y + yoff;
            const float *zg = epi && bb->z ? bb->z + yoff : NULL;
            /* the output is always computed in the same products (whole,
             * or the same bands) */
            onr_gemm_epilogue ep = {.bias_row = b ? b + grp * g->Mg : NULL, .fixed_shape = 1};
            if (epi && !post) {
                ep.act = (onr_gemm_act)gact;
                ep.clip_min = epi->a;
                ep.clip_max = epi->b;
            }
            /* Y written over Z (fconv_inplace_input): Z is C's start, beta
             * 1, so that a K block's partial sums never overwrite Z before
             * it is added */
            const int z_is_c = z_in_gemm && zg == yg;
            if (z_in_gemm && !z_is_c) {
                ep.ldr = OUT;
                ep.residual_before_act = !epi->res_after;
            }
            const float beta = z_is_c ? 1.f : 0.f;
            const onr_gemm_epilogue *epp = &ep;
            const float *zpost = post && epi->res_after ? zg : NULL;
            if (kind == CONV_GEMM) {
                ep.residual = z_in_gemm && !z_is_c ? zg : NULL;
                conv_product(bb, amx_ok, Mg, OUT, (size_t)g->Cg, wg, ldw, xg, beta, yg, OUT, epp, nt);
                if (post) conv_post(epi, yg, zpost, g->Mg, g->OUT, g->OUT, nt);
                continue;
            }
            for (int64_t r0 = 0; r0 < rows; r0 += band) {
                int64_t r1 = r0 + band < rows ? r0 + band : rows;
                size_t ncol = (size_t)((r1 - r0) * OW);
                ep.residual = z_in_gemm && !z_is_c ? zg + r0 * OW : NULL;
                im2col_f32(g, xg, r0, r1, bb->col, nt);
                conv_product(bb, amx_ok, Mg, ncol, CK, wg, ldw, bb->col, beta, yg + r0 * OW, OUT,
                             epp, nt);
                if (post)
                    conv_post(epi, yg + r0 * OW, zpost ? zpost + r0 * OW : NULL, g->Mg,
                              (int64_t)ncol, g->OUT, nt);
            }
        }
}

static int conv_run(const onr_kctx *ctx)
{
    return conv_dispatch(ctx, "Conv", conv_f32, conv_direct_f64_run);
}

const onr_op_impl onr_impl_Conv = {
    .create = conv_create,
    .reshape = conv_reshape,
    .run = conv_run,
    .destroy = conv_destroy,
    .params_size = sizeof(conv_params),
    .types = ONR_TYPES_FLOAT,
};

/* ======================================================================
 * FusedConv (org.onnxrun): Conv + bias + residual + activation
 * ==================================================================== */

static const struct {
    const char *name;
    int act, n_params; /* n_params: how many activation_params it takes at most */
    float a, b;        /* their defaults */
} conv_acts[] = {
    {"Relu", CONV_ACT_RELU, 0, 0.f, 0.f},
    {"Clip", CONV_ACT_CLIP, 2, -INFINITY, INFINITY},
    {"Sigmoid", CONV_ACT_SIGMOID, 0, 0.f, 0.f},
    {"Silu", CONV_ACT_SILU, 0, 0.f, 0.f},
    {"HardSigmoid", CONV_ACT_HARDSIGMOID, 2, 0.2f, 0.5f},
    {"HardSwish", CONV_ACT_HARDSWISH, 2, 1.f / 6.f, 0.5f},
    {"LeakyRelu", CONV_ACT_LEAKYRELU, 1, 0.01f, 0.f},
};

/* FusedConv's optional pool: pool = "MaxPool" with pool_kernel_shape,
 * pool_strides (default 1) and pool_pads (default 0), 2-D, applied to the
 * output after the epilogue (Y = MaxPool(act(conv + B)), a ResNet stem;
 * fuse_conv.c). No residual nor input scale with it (reshape checks). */
static int fconv_pool_create(onr_create_ctx *c, conv_params *p)
{
    const char *pool = onr_attr_string(c->node, "pool", "");
    if (!pool[0]) return ONR_OK;
    if (strcmp(pool, "MaxPool") != 0)
        return onr_seterr(c->err, ONR_E_UNSUPPORTED, "FusedConv pool '%s' (only MaxPool)", pool);
    p->pool = 1;
    p->pool_wa.ap = ONR_PAD_NOTSET;
    int st;
    if ((st = onr_sp_list_attr(c, "pool_kernel_shape", ONR_SP_MAX, 1, &p->pool_kernel)) ||
        (st = onr_sp_list_attr(c, "pool_strides", ONR_SP_MAX, 1, &p->pool_wa.strides)) ||
        (st = onr_sp_list_attr(c, "pool_pads", 2 * ONR_SP_MAX, 0, &p->pool_wa.pads)))
        return st;
    p->pool_wa.strides.name = "pool_strides";
    p->pool_wa.pads.name = "pool_pads";
    p->pool_wa.dilations.name = "pool_dilations";
    if (!p->pool_kernel.present)
        return onr_seterr(c->err, ONR_E_MODEL, "FusedConv pool MaxPool needs pool_kernel_shape");
    return ONR_OK;
}

static int fconv_create(onr_create_ctx *c, void *params)
{
    conv_params *p = params;
    int st = conv_create_common(c, p, 0);
    if (st || (st = conv_create_weights(c, p))) return st;
    p->fused = 1;
    if ((st = fconv_pool_create(c, p))) return st;
    p->epi.res_after = onr_attr_int(c->node, "residual_after_activation", 0) != 0;
    const char *name = onr_attr_string(c->node, "activation", "");
    size_t np = 0;
    const float *prm = onr_attr_floats(c->node, "activation_params", &np);
    p->epi.act = CONV_ACT_NONE;
    if (!name[0] || strcmp(name, "None") == 0) {
        if (np)
            return onr_seterr(c->err, ONR_E_MODEL,
                              "activation_params given (%zu values) without an activation", np);
        return ONR_OK;
    }
    for (size_t i = 0; i < sizeof conv_acts / sizeof conv_acts[0]; i++) {
        if (strcmp(name, conv_acts[i].name) != 0) continue;
        if (np > (size_t)conv_acts[i].n_params)
            return onr_seterr(c->err, ONR_E_MODEL,
                              "activation %s takes at most %d activation_params, got %zu", name,
                              conv_acts[i].n_params, np);
        p->epi.act = conv_acts[i].act;
        p->epi.a = np > 0 ? prm[0] : conv_acts[i].a;
        p->epi.b = np > 1 ? prm[1] : conv_acts[i].b;
        /* Clip with min > max gives max everywhere, as numpy.clip does */
        if (p->epi.act == CONV_ACT_CLIP && p->epi.a > p->epi.b) p->epi.a = p->epi.b;
        return ONR_OK;
    }
    return onr_seterr(c->err, ONR_E_UNSUPPORTED, "unknown activation '%s'", name);
}

/* The pool's geometry over the conv output, Y's pooled shape, and its
 * buffers: the small-group kernel's banded workspace in place of its
 * plain one, else the conv output whole and a row per thread after the
 * conv's scratch. */
static int fconv_pool_reshape(onr_kctx *ctx, conv_params *p, size_t *scratch)
{
    conv_geom *g = &p->g;
    const int nsp = g->sp.nsp;
    if (nsp != 2)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                          "FusedConv pool runs on 2-D convolutions, this one has %d spatial dims",
                          nsp);
    if ((ctx->n_in > 3 && ctx->in[3]) || (ctx->n_in > 4 && ctx->in[4]))
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                          "FusedConv pool takes no residual Z nor input scale S");
    int64_t k[ONR_SP_MAX], cin[ONR_SP_MAX] = {g->sp.out[1], g->sp.out[2]};
    int st = onr_sp_list_get(ctx->err, &p->pool_kernel, nsp, 1, k);
    if (st || (st = onr_spatial_window(ctx->err, &p->pool_wa, nsp, cin, k, 0, &p->pool_sp)))
        return st;
    onr_spatial *ps = &p->pool_sp;
    int64_t dims[4] = {g->N, g->M, ps->out[1], ps->out[2]};
    if ((st = onr_set_out(ctx, 0, ONR_FLOAT, 4, dims))) return st;
    p->pool_dw = (onr_dwpool){.KH = ps->k[1], .KW = ps->k[2], .SH = ps->s[1], .SW = ps->s[2],
                              .PT = ps->pb[1], .PL = ps->pb[2], .OH = ps->out[1], .OW = ps->out[2]};
    int dil1 = ps->d[1] == 1 && ps->d[2] == 1;
    p->pool_banded = g->kind == CONV_DW && g->Cg > 1 && dil1 && g->OUT > 0;
    p->off_yc = p->off_pt = ONR_NO_SCRATCH;
    if (p->pool_banded) {
        onr_dwconv d = conv_dw_geom(g);
        conv_layout(ctx, p, 0, onr_dwconv_pool_workspace_size(&d, &p->pool_dw, p->nthreads),
                    scratch);
        return ONR_OK;
    }
    size_t used = p->scratch;
    p->off_yc = onr_carve_at(&used, sizeof(float) * (size_t)(g->N * g->M * g->OUT));
    p->off_pt = onr_carve_at(&used, (size_t)p->nthreads *
                                        onr_thread_stride(sizeof(float) * onr_maxpool_tmp_floats(ps)));
    *scratch = p->scratch = used;
    return ONR_OK;
}

static int fconv_reshape(onr_kctx *ctx, size_t *scratch)
{
    int st = conv_reshape(ctx, scratch);
    if (st) return st;
    if (ctx->in[0]->dtype != ONR_FLOAT)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "FusedConv runs float32 only, X is %s",
                          onr_dtype_name(ctx->in[0]->dtype));
    if (((conv_params *)ctx->params)->pool)
        return fconv_pool_reshape(ctx, ctx->params, scratch);
    const onr_tensor *z = ctx->n_in > 3 ? ctx->in[3] : NULL, *y = ctx->out[0];
    if (!z) return ONR_OK;
    int same = z->dtype == ONR_FLOAT && z->rank == y->rank;
    for (int i = 0; same && i < y->rank; i++) same = z->dims[i] == y->dims[i];
    if (!same) {
        char s1[256], s2[256];
        return onr_seterr(ctx->err, ONR_E_MODEL, "residual Z %s %s must be float32 %s like Y",
                          onr_dtype_name(z->dtype), onr_fmt_dims(s1, sizeof s1, z->dims, z->rank),
                          onr_fmt_dims(s2, sizeof s2, y->dims, y->rank));
    }
    return ONR_OK;
}

/* FusedConv's Y may be written over its residual Z (a value that dies
 * here: the memory plan decides) on the GEMM and im2col paths, with the
 * residual before the activation: the GEMM starts from C = Z (beta 1).
 * Not on the others (the transposed path's transpose, Winograd's and the
 * depthwise kernels' stores, the direct loop's zeroed rows would write Y
 * before reading Z), nor for act(conv) + Z. ResNet's and MobileNetV2's
 * block ends: no output lines fetched only to be overwritten. */
static int fconv_inplace_input(const void *params)
{
    const conv_params *p = params;
    const int kind = p->g.kind;
    return p->fused && !p->pool && !p->epi.res_after && (kind == CONV_GEMM || kind == CONV_IM2COL)
               ? 3
               : -1;
}

/* The pool over planes [i * pool_chunk, ...) of the conv output. */
typedef struct fconv_pool_job {
    const conv_params *p;
    const float *yc;
    float *y, *pt;
    int64_t planes, chunk;
} fconv_pool_job;

static void fconv_pool_part(void *ctx, int64_t i)
{
    const fconv_pool_job *j = ctx;
    const onr_spatial *ps = &j->p->pool_sp;
    int64_t p0 = i * j->chunk, n = j->planes - p0 < j->chunk ? j->planes - p0 : j->chunk;
    float *pt = j->pt + (size_t)omp_get_thread_num() *
                            (onr_thread_stride(sizeof(float) * onr_maxpool_tmp_floats(ps)) /
                             sizeof(float));
    if (n > 0)
        onr_maxpool_planes_f32(ps, n, j->yc + p0 * j->p->g.OUT, j->p->g.OUT,
                               j->y + p0 * onr_sp_numel(ps->out), 0, pt);
}

/* FusedConv with a pool: the small-group kernel conv and pool a band of
 * rows at a time; any other path writes the conv output whole into
 * scratch, then it is pooled, a few planes a task. */
static void fconv_pool_f32(const conv_geom *g, const float *x, const float *w, const float *b,
                           float *y, const conv_bufs *bb, int nt)
{
    const conv_params *p = bb->pool;
    if (p->pool_banded) {
        atomic_fetch_add_explicit(&conv_pool_banded_runs, 1, memory_order_relaxed);
        onr_dwconv d = conv_dw_geom_epi(g, bb->epi);
        onr_dwconv_pool_f32(&d, &p->pool_dw, x, w, bb->dw_wl, b, y, bb->ws, nt);
        return;
    }
    conv_f32(g, x, w, b, bb->yc, bb, nt);
    const int64_t planes = g->N * g->M, tasks = 4 * (int64_t)(nt > 1 ? nt : 1);
    fconv_pool_job j = {.p = p, .yc = bb->yc, .y = y, .pt = bb->pt, .planes = planes,
                        .chunk = (planes + tasks - 1) / tasks};
    if (j.chunk < 1) j.chunk = 1;
    onr_par_for((planes + j.chunk - 1) / j.chunk, nt, planes * g->OUT > ONR_PAR_MIN, fconv_pool_part,
                &j);
}

static void fconv_f32(const conv_geom *g, const float *x, const float *w, const float *b, float *y,
                      const conv_bufs *bb, int nt)
{
    if (bb->pool) fconv_pool_f32(g, x, w, b, y, bb, nt);
    else conv_f32(g, x, w, b, y, bb, nt);
}

static int fconv_run(const onr_kctx *ctx)
{
    return conv_dispatch(ctx, "FusedConv", fconv_f32, conv_direct_f64_run);
}

const onr_op_impl onr_impl_FusedConv = {
    .create = fconv_create,
    .reshape = fconv_reshape,
    .run = fconv_run,
    .inplace_input = fconv_inplace_input,
    .destroy = conv_destroy,
    .params_size = sizeof(conv_params),
    .types = ONR_T(ONR_FLOAT),
};

/* ======================================================================
 * ConvTranspose
 * ==================================================================== */

static int64_t floordiv2(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

/* Output size and pads of one axis, per the ConvTranspose spec. Pads derived
 * from output_shape or SAME may be negative (extra output rows). */
static int convt_axis(onr_kctx *ctx, onr_spatial *sp, int j, int axis, onr_autopad ap,
                      int64_t opad, const int64_t *oshape)
{
    int64_t dk = (sp->k[j] - 1) * sp->d[j] + 1;
    if (sp->in[j] > 1 && sp->s[j] > ONR_SP_ATTR_MAX / (sp->in[j] - 1))
        return onr_seterr(ctx->err, ONR_E_MODEL, "stride %lld times input %lld is too large",
                          (long long)sp->s[j], (long long)sp->in[j]);
    int64_t full = sp->s[j] * (sp->in[j] - 1) + opad + dk;
    if (oshape || ap == ONR_PAD_SAME_UPPER || ap == ONR_PAD_SAME_LOWER) {
        int64_t out = oshape ? *oshape : sp->in[j] * sp->s[j];
        int64_t total = full - out;
        if (ap == ONR_PAD_SAME_UPPER) {
            sp->pb[j] = floordiv2(total);
            sp->pe[j] = total - sp->pb[j];
        } else {
            sp->pe[j] = floordiv2(total);
            sp->pb[j] = total - sp->pe[j];
        }
        sp->out[j] = out;
    } else {
        if (ap == ONR_PAD_VALID) sp->pb[j] = sp->pe[j] = 0;
        sp->out[j] = full - sp->pb[j] - sp->pe[j];
    }
    if (sp->out[j] < 1)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "output size %lld on spatial axis %d (input %lld, pads %lld+%lld) "
                          "must be >= 1",
                          (long long)sp->out[j], axis, (long long)sp->in[j], (long long)sp->pb[j],
                          (long long)sp->pe[j]);
    return ONR_OK;
}

static int convt_create(onr_create_ctx *c, void *params)
{
    return conv_create_common(c, params, 1);
}

/* output_shape: nsp values, or N, C and then nsp values. */
static int convt_output_shape(onr_kctx *ctx, const conv_params *p, int nsp, int64_t *oshape)
{
    const onr_sp_list *l = &p->output_shape;
    if (!l->present) return ONR_OK;
    if (l->n != nsp && l->n != nsp + 2)
        return onr_seterr(ctx->err, ONR_E_MODEL, "output_shape has %d values, expected %d", l->n,
                          nsp);
    for (int i = 0; i < nsp; i++) oshape[i] = l->v[l->n - nsp + i];
    return ONR_OK;
}

static int convt_geom_init(onr_kctx *ctx, const conv_params *p, conv_geom *g)
{
    int st;
    if ((st = conv_inputs(ctx, "ConvTranspose", 3))) return st;
    const onr_tensor *x = ctx->in[0], *w = ctx->in[1];
    int nsp = x->rank - 2;
    int64_t kernel[ONR_SP_MAX], s[ONR_SP_MAX], d[ONR_SP_MAX], pads[2 * ONR_SP_MAX];
    int64_t opad[ONR_SP_MAX], oshape[ONR_SP_MAX];
    memset(g, 0, sizeof *g);
    g->G = p->group;
    if ((st = conv_kernel(ctx, p, kernel)) ||
        (st = onr_sp_list_get(ctx->err, &p->wa.strides, nsp, 1, s)) ||
        (st = onr_sp_list_get(ctx->err, &p->wa.dilations, nsp, 1, d)) ||
        (st = onr_sp_list_get(ctx->err, &p->wa.pads, 2 * nsp, 0, pads)) ||
        (st = onr_sp_list_get(ctx->err, &p->output_padding, nsp, 0, opad)) ||
        (st = convt_output_shape(ctx, p, nsp, oshape)))
        return st;
    g->N = x->dims[0];
    g->C = x->dims[1];
    char s1[256];
    if (w->dims[0] != g->C || g->C % g->G != 0)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "X has %lld channels; W %s must have as many in dim 0, divisible by "
                          "group %lld",
                          (long long)g->C, onr_fmt_dims(s1, sizeof s1, w->dims, w->rank),
                          (long long)g->G);
    if (w->dims[1] > INT64_MAX / g->G)
        return onr_seterr(ctx->err, ONR_E_MODEL, "W dim 1 %lld times group %lld overflows",
                          (long long)w->dims[1], (long long)g->G);
    g->Mg = w->dims[1];
    g->M = g->Mg * g->G;
    g->Cg = g->C / g->G;
    if ((st = check_bias(ctx, g->M))) return st;
    onr_spatial *sp = &g->sp;
    sp->nsp = nsp;
    onr_sp_pad3(nsp, x->dims + 2, 1, sp->in);
    onr_sp_pad3(nsp, kernel, 1, sp->k);
    onr_sp_pad3(nsp, s, 1, sp->s);
    onr_sp_pad3(nsp, d, 1, sp->d);
    onr_sp_pad3(nsp, pads, 0, sp->pb);
    onr_sp_pad3(nsp, pads + nsp, 0, sp->pe);
    sp->out[0] = sp->out[1] = 1;
    for (int i = 0; i < nsp; i++) {
        int j = 3 - nsp + i;
        if ((st = convt_axis(ctx, sp, j, i, p->wa.ap, opad[i],
                             p->output_shape.present ? &oshape[i] : NULL)))
            return st;
    }
    geom_sizes(g);
    g->CK = g->Mg * g->K;
    return ONR_OK;
}

static int64_t convt_band(const conv_geom *g)
{
    return band_rows(g->sp.in[0] * g->sp.in[1], g->CK, g->sp.in[2]);
}

static int convt_reshape(onr_kctx *ctx, size_t *scratch)
{
    conv_params *p = ctx->params;
    conv_geom *g = &p->g;
    int st;
    if ((st = convt_geom_init(ctx, p, g)) || (st = conv_set_out(ctx, g))) return st;
    p->nthreads = ctx->nthreads > 0 ? ctx->nthreads : 1;
    g->band = convt_band(g);
    size_t cols = (size_t)(g->band * g->sp.in[2]);
    conv_layout(ctx, p, (size_t)g->CK * cols,
                onr_sgemm_workspace_size((size_t)g->CK, cols, (size_t)g->Cg, p->nthreads), scratch);
    return ONR_OK;
}

/* Scatter-add the columns of input rows [r0, r1): col row (m, kd, kh, kw),
 * column (input row - r0, iw). One thread per output channel. */
static void col2im_f32(const conv_geom *g, const float *col, int64_t r0, int64_t r1, float *yg,
                       int nt)
{
    const onr_spatial *sp = &g->sp;
    int64_t IW = sp->in[2], IH = sp->in[1], ncol = (r1 - r0) * IW;
    #pragma omp parallel for num_threads(onr_team(nt)) if (g->CK * ncol > ONR_PAR_MIN && nt > 1)
    for (int64_t m = 0; m < g->Mg; m++) {
        float *ym = yg + m * g->OUT;
        for (int64_t kk = 0; kk < g->K; kk++) {
            int64_t kd = kk / (sp->k[1] * sp->k[2]), kh = kk / sp->k[2] % sp->k[1];
            int64_t kw = kk % sp->k[2];
            const float *src = col + (m * g->K + kk) * ncol;
            /* iw whose output column iw*s + w0 lies inside the output row */
            int64_t w0 = kw * sp->d[2] - sp->pb[2], lo, hi;
            onr_sp_taps(w0, IW, sp->s[2], sp->out[2], &lo, &hi);
            for (int64_t row = r0; row < r1; row++) {
                int64_t od = row / IH * sp->s[0] - sp->pb[0] + kd * sp->d[0];
                int64_t oh = row % IH * sp->s[1] - sp->pb[1] + kh * sp->d[1];
                if (od < 0 || od >= sp->out[0] || oh < 0 || oh >= sp->out[1]) continue;
                float *yr = ym + (od * sp->out[1] + oh) * sp->out[2];
                const float *sr = src + (row - r0) * IW;
                for (int64_t iw = lo; iw < hi; iw++) yr[w0 + iw * sp->s[2]] += sr[iw];
            }
        }
    }
}

/* Whether every output position takes exactly one tap of one input
 * position: kernel = stride, no dilation, no padding, the output exactly
 * the input times the stride (UNet's 2x2 stride-2 upsampling). The columns
 * then go to Y by assignment with the bias (col2im_tiles), with no pass
 * that fills Y with the bias first and none that adds into it. */
static int convt_tiles(const conv_geom *g)
{
    const onr_spatial *sp = &g->sp;
    for (int j = 0; j < 3; j++)
        if (sp->k[j] != sp->s[j] || (sp->k[j] > 1 && sp->d[j] != 1) || sp->pb[j] != 0 ||
            sp->out[j] != sp->in[j] * sp->s[j])
            return 0;
    return 1;
}

/* col2im for convt_tiles: Y's rows of input rows [r0, r1) assigned from the
 * columns plus the bias (b NULL: none). One thread per output channel. */
static void col2im_tiles_f32(const conv_geom *g, const float *col, int64_t r0, int64_t r1,
                             const float *b, float *yg, int nt)
{
    const onr_spatial *sp = &g->sp;
    const int64_t IW = sp->in[2], IH = sp->in[1], ncol = (r1 - r0) * IW, KW = sp->k[2];
    const int64_t KH = sp->k[1], OH = sp->out[1], OW = sp->out[2];
    #pragma omp parallel for num_threads(onr_team(nt)) if (g->CK * ncol > ONR_PAR_MIN && nt > 1)
    for (int64_t m = 0; m < g->Mg; m++) {
        const float bias = b ? b[m] : 0.f;
        float *ym = yg + m * g->OUT;
        for (int64_t row = r0; row < r1; row++) {
            const int64_t id = row / IH, ih = row % IH;
            for (int64_t kd = 0; kd < sp->k[0]; kd++)
                for (int64_t kh = 0; kh < KH; kh++) {
                    float *yr = ym + ((id * sp->k[0] + kd) * OH + ih * KH + kh) * OW;
                    const float *src = col + (m * g->K + (kd * KH + kh) * KW) * ncol + (row - r0) * IW;
                    if (KW == 2) { /* two column rows interleaved */
                        const float *s0 = src, *s1 = src + ncol;
                        for (int64_t iw = 0; iw < IW; iw++) {
                            yr[2 * iw] = s0[iw] + bias;
                            yr[2 * iw + 1] = s1[iw] + bias;
                        }
                    } else {
                        for (int64_t kw = 0; kw < KW; kw++)
                            for (int64_t iw = 0; iw < IW; iw++)
                                yr[iw * KW + kw] = src[kw * ncol + iw] + bias;
                    }
                }
        }
    }
}

static void fill_bias_f32(const conv_geom *g, const float *b, float *yg, int nt)
{
    #pragma omp parallel for num_threads(onr_team(nt)) if (g->Mg * g->OUT > ONR_PAR_MIN && nt > 1)
    for (int64_t m = 0; m < g->Mg; m++) {
        float v = b ? b[m] : 0.f, *ym = yg + m * g->OUT;
        for (int64_t i = 0; i < g->OUT; i++) ym[i] = v;
    }
}

static void convt_f32(const conv_geom *g, const float *x, const float *w, const float *b,
                      float *y, const conv_bufs *bb, int nt)
{
    int64_t rows = g->sp.in[0] * g->sp.in[1], IW = g->sp.in[2], band = g->band;
    size_t CK = (size_t)g->CK;
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t grp = 0; grp < g->G; grp++) {
            const float *xg = x + (n * g->C + grp * g->Cg) * g->IN;
            const float *wg = w + grp * g->Cg * g->CK;
            float *yg = y + (n * g->M + grp * g->Mg) * g->OUT;
            const float *bg = b ? b + grp * g->Mg : NULL;
            /* no input columns (an empty row): the bias is all (and the
             * column band was never carved) */
            const int tiles = g->Cg > 0 && CK > 0 && IW > 0 && convt_tiles(g);
            if (!tiles) fill_bias_f32(g, bg, yg, nt);
            if (g->Cg == 0 || CK == 0 || IW == 0) continue;
            for (int64_t r0 = 0; r0 < rows; r0 += band) {
                int64_t r1 = r0 + band < rows ? r0 + band : rows;
                size_t ncol = (size_t)((r1 - r0) * IW);
                onr_sgemm(1, 0, CK, ncol, (size_t)g->Cg, 1.f, wg, CK, xg + r0 * IW,
                          (size_t)g->IN, 0.f, bb->col, ncol, NULL, bb->ws, nt);
                if (tiles) col2im_tiles_f32(g, bb->col, r0, r1, bg, yg, nt);
                else col2im_f32(g, bb->col, r0, r1, yg, nt);
            }
        }
}

/* Direct transposed convolution for double: each output plane by one
 * thread, scattering every input element of its group through the kernel. */
static void convt_direct_f64(const conv_geom *g, const double *x, const double *w,
                             const double *b, double *y, int nt)
{
    const onr_spatial *sp = &g->sp;
    int64_t planes = g->N * g->M, work = planes * g->Cg * g->IN * g->K;
    #pragma omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN && nt > 1)
    for (int64_t pl = 0; pl < planes; pl++) {
        int64_t n = pl / g->M, m = pl % g->M, grp = m / g->Mg, mm = m % g->Mg;
        double *yp = y + pl * g->OUT;
        for (int64_t i = 0; i < g->OUT; i++) yp[i] = b ? b[m] : 0.;
        for (int64_t c = 0; c < g->Cg; c++) {
            const double *xc = x + (n * g->C + grp * g->Cg + c) * g->IN;
            const double *wc = w + ((grp * g->Cg + c) * g->Mg + mm) * g->K;
            for (int64_t i = 0; i < g->IN; i++) {
                int64_t id = i / (sp->in[1] * sp->in[2]), ih = i / sp->in[2] % sp->in[1];
                int64_t iw = i % sp->in[2];
                for (int64_t kk = 0; kk < g->K; kk++) {
                    int64_t kd = kk / (sp->k[1] * sp->k[2]), kh = kk / sp->k[2] % sp->k[1];
                    int64_t kw = kk % sp->k[2];
                    int64_t od = id * sp->s[0] - sp->pb[0] + kd * sp->d[0];
                    int64_t oh = ih * sp->s[1] - sp->pb[1] + kh * sp->d[1];
                    int64_t ow = iw * sp->s[2] - sp->pb[2] + kw * sp->d[2];
                    if (od < 0 || od >= sp->out[0] || oh < 0 || oh >= sp->out[1] || ow < 0 ||
                        ow >= sp->out[2])
                        continue;
                    yp[(od * sp->out[1] + oh) * sp->out[2] + ow] += xc[i] * wc[kk];
                }
            }
        }
    }
}

static int convt_run(const onr_kctx *ctx)
{
    return conv_dispatch(ctx, "ConvTranspose", convt_f32, convt_direct_f64);
}

const onr_op_impl onr_impl_ConvTranspose = {
    .create = convt_create,
    .reshape = convt_reshape,
    .run = convt_run,
    .destroy = conv_destroy,
    .params_size = sizeof(conv_params),
    .types = ONR_TYPES_FLOAT,
};
