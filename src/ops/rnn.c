/*
 * rnn.c - the recurrent operators RNN, GRU and LSTM (opsets 7 to 22, the
 * newest): every direction, layout 0 and 1 (opset 14+), the eleven
 * activation functions with activation_alpha / activation_beta, clip, GRU
 * linear_before_reset, LSTM input_forget and peepholes, initial states and
 * per-batch sequence_lens; float, double and float16 (bfloat16 from 22).
 *
 * The three share one shape: G gates (1, 3, 4) of H units per direction,
 * W [D, G*H, I], R [D, G*H, H], B [D, 2*G*H], and one recurrence engine
 * (rnn-engine.h) that differs only in the row update. float32 runs it in
 * float with the SGEMM core: X * W^T for the whole sequence and both
 * directions is one product, H * R^T one per step; W and R are packed once
 * at create when constant (and consumed). Other types, and float32 when a
 * test forces it, run the same engine in double with plain loops: the
 * reference the fast path is tested against.
 *
 * Choices where the specification is silent (the same as the widely used
 * runtimes):
 *  - activation_alpha / activation_beta are consumed in order by the
 *    activations that take them (Affine, LeakyRelu, ThresholdedRelu,
 *    ScaledTanh, HardSigmoid, Elu); a list that runs out leaves the
 *    defaults (the ONNX operators' own: LeakyRelu 0.01, HardSigmoid 0.2 /
 *    0.5, Elu 1, ThresholdedRelu 1, Affine 1 / 0, ScaledTanh 1 / 1);
 *  - activation names match case-insensitively; for a bidirectional node a
 *    list for one direction serves both;
 *  - clip bounds the input of every activation: each gate's, and C's before
 *    h (the cell state itself is kept unclipped);
 *  - LSTM input_forget: f = 1 - i;
 *  - sequence_lens: lengths in [0, seq_length]; Y past a sequence's end is
 *    zero, Y_h / Y_c are the state after the sequence's last step (after
 *    its step 0 for the reverse direction), zero for a length of 0.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gemm/gemm.h"
#include "ops/linalg.h"
#include "ops/rnn.h"

enum { RNN_KIND_RNN, RNN_KIND_GRU, RNN_KIND_LSTM };
/* the engine's row phases: the whole update, or GRU's z/r then h gates */
enum { RNN_PH_RNN, RNN_PH_LSTM, RNN_PH_GRU_ZR, RNN_PH_GRU_H };

enum {
    RNN_RELU, RNN_TANH, RNN_SIGMOID, RNN_AFFINE, RNN_LEAKYRELU, RNN_THRESHOLDEDRELU,
    RNN_SCALEDTANH, RNN_HARDSIGMOID, RNN_ELU, RNN_SOFTSIGN, RNN_SOFTPLUS
};

/* The activations the spec lists, with the alpha / beta each takes and
 * their defaults. */
static const struct {
    const char *name;
    int uses_alpha, uses_beta;
    float alpha, beta;
} act_table[] = {
    [RNN_RELU] = {"Relu", 0, 0, 0, 0},
    [RNN_TANH] = {"Tanh", 0, 0, 0, 0},
    [RNN_SIGMOID] = {"Sigmoid", 0, 0, 0, 0},
    [RNN_AFFINE] = {"Affine", 1, 1, 1.f, 0.f},
    [RNN_LEAKYRELU] = {"LeakyRelu", 1, 0, 0.01f, 0},
    [RNN_THRESHOLDEDRELU] = {"ThresholdedRelu", 1, 0, 1.f, 0},
    [RNN_SCALEDTANH] = {"ScaledTanh", 1, 1, 1.f, 1.f},
    [RNN_HARDSIGMOID] = {"HardSigmoid", 1, 1, 0.2f, 0.5f},
    [RNN_ELU] = {"Elu", 1, 0, 1.f, 0},
    [RNN_SOFTSIGN] = {"Softsign", 0, 0, 0, 0},
    [RNN_SOFTPLUS] = {"Softplus", 0, 0, 0, 0},
};
#define RNN_NACT_KINDS ((int)(sizeof act_table / sizeof act_table[0]))

typedef struct rnn_act {
    int kind;
    float alpha, beta;
} rnn_act;

#define RNN_MAX_ACTS 6 /* LSTM's 3 per direction, bidirectional */

typedef struct rnn_params {
    /* create: attributes */
    int kind;
    int G, nacts;       /* gates, activations per direction */
    int D, reverse;     /* directions; direction == "reverse" */
    int layout;
    int64_t hidden;     /* hidden_size attribute, 0 when absent */
    int has_clip;
    float clip;
    int lbr;            /* GRU linear_before_reset */
    int input_forget;   /* LSTM */
    rnn_act act[RNN_MAX_ACTS];
    int force_ref;
    /* create: constant float32 weights packed for the SGEMM core */
    void *wpack;        /* W^T: K = I, N = D*G*H */
    void *rpack[2][2];  /* per direction, R's rows [0, rsplit) and the rest */
    int64_t pk_i, pk_h; /* the I and H they were packed for */
    /* reshape: geometry */
    int64_t S, B, I, H, GH;
    int64_t rsplit;     /* R rows of the first recurrent product */
    int ref, nt;
    size_t ws_step;     /* bytes of SGEMM workspace per direction, for the steps */
    size_t off_x, off_w, off_r, off_bx, off_rbh, off_p, off_xw, off_h, off_c, off_g, off_rh,
        off_ws, off_lens;
} rnn_params;

/* A time step's recurrent product (B x G*H x H multiply-adds) below this
 * runs on one thread: steps are sequential, so each parallel one pays a
 * fork/join on the critical path, hundreds of times per sequence. */
#define RNN_STEP_PAR_FMAS ((int64_t)1 << 22)

static int g_force_ref;

int onr_rnn_force_reference(int on)
{
    int old = g_force_ref;
    g_force_ref = on;
    return old;
}

/* ---- geometry shared by both engines ---------------------------------------- */

static inline int rnn_dir_reverse(const rnn_params *p, int d) { return d == 1 || p->reverse; }

/* Row of X (and of XW) holding time t of batch entry b. */
static inline int64_t rnn_xrow(const rnn_params *p, int64_t t, int64_t b)
{
    return p->layout ? b * p->S + t : t * p->B + b;
}
/* Element offset of Y's row (t, d, b): [S, D, B, H] or, layout 1, [B, S, D, H]. */
static inline int64_t rnn_yoff(const rnn_params *p, int64_t t, int64_t d, int64_t b)
{
    return (p->layout ? (b * p->S + t) * p->D + d : (t * p->D + d) * p->B + b) * p->H;
}
/* Element offset of row (d, b) of Y_h, Y_c, initial_h, initial_c:
 * [D, B, H] or, layout 1, [B, D, H]. */
static inline int64_t rnn_hoff(const rnn_params *p, int64_t d, int64_t b)
{
    return (p->layout ? b * p->D + d : d * p->B + b) * p->H;
}

/* ---- the two engines ------------------------------------------------------- */

#define RT float
#define SFX f32
#define RNN_SGEMM 1
#define R_TANH tanhf
#define R_EXP expf
#define R_EXPM1 expm1f
#define R_LOG1P log1pf
#define R_FABS fabsf
#include "ops/rnn-engine.h"
#undef RT
#undef SFX
#undef RNN_SGEMM
#undef R_TANH
#undef R_EXP
#undef R_EXPM1
#undef R_LOG1P
#undef R_FABS

#define RT double
#define SFX f64
#define RNN_SGEMM 0
#define R_TANH tanh
#define R_EXP exp
#define R_EXPM1 expm1
#define R_LOG1P log1p
#define R_FABS fabs
#include "ops/rnn-engine.h"
#undef RT
#undef SFX
#undef RNN_SGEMM
#undef R_TANH
#undef R_EXP
#undef R_EXPM1
#undef R_LOG1P
#undef R_FABS

/* ---- create: attributes ------------------------------------------------------ */

static const char *kind_name(int kind)
{
    return kind == RNN_KIND_RNN ? "RNN" : kind == RNN_KIND_GRU ? "GRU" : "LSTM";
}

/* Attribute `name` if present, checked to be of type `type`. */
static int attr_typed(onr_create_ctx *c, const char *name, onr_attr_type type,
                      const onr_attr **out)
{
    const onr_attr *a = onr_node_attr(c->node, name);
    *out = NULL;
    if (!a) return ONR_OK;
    if (a->type != type)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' has type %d, expected %d", name,
                          (int)a->type, (int)type);
    *out = a;
    return ONR_OK;
}

static int read_activations(onr_create_ctx *c, rnn_params *p)
{
    static const int defaults[3][3] = {
        [RNN_KIND_RNN] = {RNN_TANH},
        [RNN_KIND_GRU] = {RNN_SIGMOID, RNN_TANH},
        [RNN_KIND_LSTM] = {RNN_SIGMOID, RNN_TANH, RNN_TANH},
    };
    const onr_attr *acts, *al, *be;
    int st;
    if ((st = attr_typed(c, "activations", ONR_ATTR_STRINGS, &acts)) ||
        (st = attr_typed(c, "activation_alpha", ONR_ATTR_FLOATS, &al)) ||
        (st = attr_typed(c, "activation_beta", ONR_ATTR_FLOATS, &be)))
        return st;
    int total = p->nacts * p->D;
    if (acts && (int)acts->n != total && (int)acts->n != p->nacts)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attribute 'activations' has %zu names, %s with %d direction(s) needs %d",
                          acts->n, kind_name(p->kind), p->D, total);
    size_t ia = 0, ib = 0;
    for (int k = 0; k < total; k++) {
        int kind = defaults[p->kind][k % p->nacts];
        if (acts) {
            const char *name = acts->strings[acts->n == (size_t)total ? k : k % p->nacts];
            kind = -1;
            for (int q = 0; q < RNN_NACT_KINDS; q++)
                if (name && !strcasecmp(name, act_table[q].name)) kind = q;
            if (kind < 0)
                return onr_seterr(c->err, ONR_E_MODEL,
                                  "attribute 'activations': unknown activation '%s' (allowed: Relu, "
                                  "Tanh, Sigmoid, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, "
                                  "HardSigmoid, Elu, Softsign, Softplus)",
                                  name ? name : "");
        }
        rnn_act *a = &p->act[k];
        a->kind = kind;
        a->alpha = act_table[kind].alpha;
        a->beta = act_table[kind].beta;
        if (act_table[kind].uses_alpha && al && ia < al->n) a->alpha = al->floats[ia++];
        if (act_table[kind].uses_beta && be && ib < be->n) a->beta = be->floats[ib++];
        if (!isfinite(a->alpha) || !isfinite(a->beta))
            return onr_seterr(c->err, ONR_E_MODEL,
                              "activation %d (%s): activation_alpha/beta must be finite", k,
                              act_table[kind].name);
    }
    return ONR_OK;
}

static int read_attrs(onr_create_ctx *c, rnn_params *p)
{
    const onr_attr *a;
    int st;
    p->G = p->kind == RNN_KIND_RNN ? 1 : p->kind == RNN_KIND_GRU ? 3 : 4;
    p->nacts = p->kind == RNN_KIND_RNN ? 1 : p->kind == RNN_KIND_GRU ? 2 : 3;
    if ((st = attr_typed(c, "direction", ONR_ATTR_STRING, &a))) return st;
    const char *dir = a ? a->s : "forward";
    p->D = 1;
    if (!strcmp(dir, "bidirectional")) p->D = 2;
    else if (!strcmp(dir, "reverse")) p->reverse = 1;
    else if (strcmp(dir, "forward"))
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attribute 'direction' is '%s', expected forward, reverse or bidirectional",
                          dir);
    if ((st = attr_typed(c, "hidden_size", ONR_ATTR_INT, &a))) return st;
    if (a && (a->i <= 0 || a->i > (INT64_C(1) << 31)))
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'hidden_size' is %lld, must be in [1, 2^31]",
                          (long long)a->i);
    p->hidden = a ? a->i : 0;
    if ((st = attr_typed(c, "layout", ONR_ATTR_INT, &a))) return st;
    if (a && c->opset < 14)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'layout' needs opset 14, the node has %lld",
                          (long long)c->opset);
    if (a && a->i != 0 && a->i != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'layout' is %lld, must be 0 or 1",
                          (long long)a->i);
    p->layout = a ? (int)a->i : 0;
    if ((st = attr_typed(c, "clip", ONR_ATTR_FLOAT, &a))) return st;
    if (a && !(a->f > 0))
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'clip' is %g, must be > 0", (double)a->f);
    p->has_clip = a != NULL;
    p->clip = a ? a->f : 0;
    if (p->kind == RNN_KIND_GRU) {
        if ((st = attr_typed(c, "linear_before_reset", ONR_ATTR_INT, &a))) return st;
        p->lbr = a && a->i != 0;
    }
    if (p->kind == RNN_KIND_LSTM) {
        if ((st = attr_typed(c, "input_forget", ONR_ATTR_INT, &a))) return st;
        p->input_forget = a && a->i != 0;
    }
    return read_activations(c, p);
}

/* ---- create: packing constant float32 W and R --------------------------------- */

static void *pack(onr_create_ctx *c, int trans_b, int64_t k, int64_t n, const float *b, int64_t ldb)
{
    size_t bytes = onr_sgemm_pack_b_size((size_t)k, (size_t)n);
    if (onr_create_hold(c, "packed weights", bytes)) return NULL;
    void *buf = onr_alloc_aligned(bytes);
    if (!buf) {
        onr_seterr(c->err, ONR_E_NOMEM, "out of memory packing %lld x %lld weights", (long long)k,
                   (long long)n);
        return NULL;
    }
    onr_sgemm_pack_b(trans_b, (size_t)k, (size_t)n, b, (size_t)ldb, buf);
    return buf;
}

static void rnn_destroy(void *params)
{
    rnn_params *p = params;
    free(p->wpack);
    for (int d = 0; d < 2; d++)
        for (int q = 0; q < 2; q++) free(p->rpack[d][q]);
    memset(p->rpack, 0, sizeof p->rpack);
    p->wpack = NULL;
}

/* Pack W and R when both are constant float32 of a consistent shape
 * (reshape reports any other shape); GRU with linear_before_reset = 0
 * packs R's z, r rows apart from its h rows (two products per step). */
static int pack_weights(onr_create_ctx *c, rnn_params *p)
{
    const onr_tensor *w = onr_create_const(c, 1), *r = onr_create_const(c, 2);
    if (p->force_ref || !w || !r || w->dtype != ONR_FLOAT || r->dtype != ONR_FLOAT ||
        w->rank != 3 || r->rank != 3 || !w->data || !r->data)
        return ONR_OK;
    int64_t H = r->dims[2], GH = r->dims[1], I = w->dims[2];
    if (w->dims[0] != p->D || r->dims[0] != p->D || GH != p->G * H || w->dims[1] != GH ||
        (p->hidden && p->hidden != H) || H == 0)
        return ONR_OK;
    int64_t split = p->kind == RNN_KIND_GRU && !p->lbr ? 2 * H : GH;
    if (I > 0 && !(p->wpack = pack(c, 1, I, p->D * GH, w->data, I))) goto oom;
    for (int d = 0; d < p->D; d++) {
        const float *rd = (const float *)r->data + d * GH * H;
        if (!(p->rpack[d][0] = pack(c, 1, H, split, rd, H))) goto oom;
        if (split < GH && !(p->rpack[d][1] = pack(c, 1, H, GH - split, rd + split * H, H)))
            goto oom;
    }
    p->pk_i = I;
    p->pk_h = H;
    if (I > 0) onr_create_consume(c, 1);
    onr_create_consume(c, 2);
    return ONR_OK;
oom:
    rnn_destroy(p);
    return ONR_E_NOMEM;
}

static int rnn_create_kind(onr_create_ctx *c, void *params, int kind)
{
    rnn_params *p = params;
    p->kind = kind;
    int max_in = kind == RNN_KIND_LSTM ? 8 : 6, max_out = kind == RNN_KIND_LSTM ? 3 : 2;
    if (c->n_in < 3 || c->n_in > max_in)
        return onr_seterr(c->err, ONR_E_MODEL, "%s takes 3 to %d inputs, the node has %d",
                          kind_name(kind), max_in, c->n_in);
    if (c->n_out > max_out)
        return onr_seterr(c->err, ONR_E_MODEL, "%s has at most %d outputs, the node has %d",
                          kind_name(kind), max_out, c->n_out);
    int st = read_attrs(c, p);
    if (st) return st;
    p->force_ref = g_force_ref;
    return pack_weights(c, p);
}

static int rnn_create(onr_create_ctx *c, void *p) { return rnn_create_kind(c, p, RNN_KIND_RNN); }
static int gru_create(onr_create_ctx *c, void *p) { return rnn_create_kind(c, p, RNN_KIND_GRU); }
static int lstm_create(onr_create_ctx *c, void *p) { return rnn_create_kind(c, p, RNN_KIND_LSTM); }

/* ---- reshape ------------------------------------------------------------------ */

static const char *in_names[] = {"X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"};

/* Optional input i, or NULL. */
static const onr_tensor *opt_in(const onr_kctx *ctx, int i)
{
    return i < ctx->n_in ? ctx->in[i] : NULL;
}

/* Input i (a T input) must have X's type and exactly the given dims. */
static int check_dims(onr_kctx *ctx, int i, int rank, const int64_t *dims, const char *what)
{
    const onr_tensor *t = ctx->in[i], *x = ctx->in[0];
    char s1[128], s2[128];
    if (t->dtype != x->dtype)
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s (input %d) is %s but X is %s", in_names[i],
                          i, onr_dtype_name(t->dtype), onr_dtype_name(x->dtype));
    int ok = t->rank == rank;
    for (int k = 0; ok && k < rank; k++) ok = t->dims[k] == dims[k];
    if (!ok)
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s (input %d) has shape %s, expected %s %s",
                          in_names[i], i, onr_fmt_dims(s1, sizeof s1, t->dims, t->rank),
                          onr_fmt_dims(s2, sizeof s2, dims, rank), what);
    return ONR_OK;
}

/* Reserve count elements of elsz bytes; fails beyond the tensor size limit. */
static int carve(onr_kctx *ctx, size_t *used, size_t *off, int64_t count, size_t elsz,
                 const char *what)
{
    uint64_t lim = onr_max_tensor_bytes();
    if (!elsz) count = 0, elsz = 1;
    if (count < 0 || (uint64_t)count > lim / elsz)
        return onr_seterr(ctx->err, ONR_E_NOMEM, "%s needs %lld elements of scratch, over the limit",
                          what, (long long)count);
    *off = onr_carve_at(used, (size_t)count * elsz);
    return ONR_OK;
}

static int rnn_reshape(onr_kctx *ctx, size_t *scratch)
{
    rnn_params *p = ctx->params;
    *scratch = 0;
    uint32_t types = ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_FLOAT16);
    if (ctx->opset >= 22) types |= ONR_T(ONR_BFLOAT16);
    int st;
    for (int i = 0; i < 3; i++)
        if ((st = onr_check_input(ctx, i, types))) return st;
    const onr_tensor *x = ctx->in[0], *w = ctx->in[1], *r = ctx->in[2];
    char s1[128];
    if (x->rank != 3)
        return onr_seterr(ctx->err, ONR_E_MODEL, "X (input 0) must have rank 3 (%s), has shape %s",
                          p->layout ? "batch, seq, input" : "seq, batch, input",
                          onr_fmt_dims(s1, sizeof s1, x->dims, x->rank));
    int64_t S = x->dims[p->layout ? 1 : 0], B = x->dims[p->layout ? 0 : 1], I = x->dims[2];
    int64_t D = p->D, G = p->G, H = p->hidden;
    if (!H) { /* hidden_size absent: from W */
        if (w->rank != 3 || w->dims[1] % G)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "W (input 1) has shape %s: no hidden_size attribute and dim 1 is not "
                              "a multiple of %lld gates",
                              onr_fmt_dims(s1, sizeof s1, w->dims, w->rank), (long long)G);
        H = w->dims[1] / G;
    }
    int64_t GH = G * H;
    int64_t wd[3] = {D, GH, I}, rd[3] = {D, GH, H}, bd[2] = {D, 2 * GH}, pd[2] = {D, 3 * H};
    int64_t hd[3] = {D, B, H}, hl[3] = {B, D, H};
    if ((st = check_dims(ctx, 1, 3, wd, "(num_directions, gates*hidden_size, input_size)")) ||
        (st = check_dims(ctx, 2, 3, rd, "(num_directions, gates*hidden_size, hidden_size)")))
        return st;
    if (opt_in(ctx, 3) && (st = check_dims(ctx, 3, 2, bd, "(num_directions, 2*gates*hidden_size)")))
        return st;
    const onr_tensor *sl = opt_in(ctx, 4);
    if (sl) {
        if (sl->dtype != ONR_INT32)
            return onr_seterr(ctx->err, ONR_E_MODEL, "sequence_lens (input 4) must be int32, not %s",
                              onr_dtype_name(sl->dtype));
        if (sl->rank != 1 || sl->dims[0] != B)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "sequence_lens (input 4) has shape %s, expected [%lld] (batch_size)",
                              onr_fmt_dims(s1, sizeof s1, sl->dims, sl->rank), (long long)B);
    }
    for (int i = 5; i <= 6; i++)
        if (opt_in(ctx, i) && (i == 5 || p->kind == RNN_KIND_LSTM) &&
            (st = check_dims(ctx, i, 3, p->layout ? hl : hd,
                             p->layout ? "(batch_size, num_directions, hidden_size)"
                                       : "(num_directions, batch_size, hidden_size)")))
            return st;
    if (p->kind == RNN_KIND_LSTM && opt_in(ctx, 7) &&
        (st = check_dims(ctx, 7, 2, pd, "(num_directions, 3*hidden_size)")))
        return st;
    /* (a constant's shape never changes; W's type was checked above) */
    if ((p->wpack || p->rpack[0][0]) && (p->pk_h != H || p->pk_i != I))
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "weights were packed for I = %lld, H = %lld",
                          (long long)p->pk_i, (long long)p->pk_h);
    /* outputs */
    int64_t yd[4] = {S, D, B, H}, yl[4] = {B, S, D, H};
    if (ctx->n_out > 0 && ctx->out[0] &&
        (st = onr_set_out(ctx, 0, x->dtype, 4, p->layout ? yl : yd)))
        return st;
    for (int i = 1; i < ctx->n_out; i++)
        if (ctx->out[i] && (st = onr_set_out(ctx, i, x->dtype, 3, p->layout ? hl : hd))) return st;

    p->S = S, p->B = B, p->I = I, p->H = H, p->GH = GH;
    p->rsplit = p->kind == RNN_KIND_GRU && !p->lbr ? 2 * H : GH;
    p->ref = p->force_ref || x->dtype != ONR_FLOAT;
    p->nt = ctx->nthreads > 0 ? ctx->nthreads : 1;
    size_t es = p->ref ? sizeof(double) : sizeof(float), used = 0;
    /* X*W^T has S*B rows even when X is empty (input_size 0: the biases);
     * S*B is bounded here so no loop runs over a hostile sequence */
    int64_t sb;
    if (GH == 0) sb = 0;
    else if (__builtin_mul_overflow(S, B, &sb))
        return onr_seterr(ctx->err, ONR_E_NOMEM, "seq_length %lld x batch_size %lld overflows",
                          (long long)S, (long long)B);
    p->off_x = p->off_w = p->off_r = p->off_p = p->off_c = p->off_rh = p->off_ws = ONR_NO_SCRATCH;
    p->off_rbh = ONR_NO_SCRATCH;
    if (p->ref && ((st = carve(ctx, &used, &p->off_x, x->numel, es, "X")) ||
                   (st = carve(ctx, &used, &p->off_w, w->numel, es, "W")) ||
                   (st = carve(ctx, &used, &p->off_r, r->numel, es, "R"))))
        return st;
    if ((st = carve(ctx, &used, &p->off_bx, D * GH, es, "bias")) ||
        (st = carve(ctx, &used, &p->off_xw, sb, es * (size_t)(D * GH), "X*W")) ||
        (st = carve(ctx, &used, &p->off_h, D * B * H, es, "state")) ||
        (st = carve(ctx, &used, &p->off_g, D * B * GH, es, "gates")) ||
        (st = carve(ctx, &used, &p->off_lens, B, sizeof(int64_t), "sequence_lens")))
        return st;
    if (p->kind == RNN_KIND_GRU && p->lbr && (st = carve(ctx, &used, &p->off_rbh, D * H, es, "bias")))
        return st;
    if (p->kind == RNN_KIND_GRU && !p->lbr &&
        (st = carve(ctx, &used, &p->off_rh, D * B * H, es, "r*h")))
        return st;
    if (p->kind == RNN_KIND_LSTM && ((st = carve(ctx, &used, &p->off_c, D * B * H, es, "cell")) ||
                                     (st = carve(ctx, &used, &p->off_p, D * 3 * H, es, "P"))))
        return st;
    if (!p->ref) {
        /* the input product uses all of it; during the steps each
         * direction has its own part (they run concurrently) */
        size_t a = onr_sgemm_workspace_size((size_t)(S * B), (size_t)(D * GH), (size_t)I, p->nt);
        p->ws_step = onr_al64(onr_sgemm_workspace_size((size_t)B, (size_t)GH, (size_t)H, p->nt));
        size_t b = p->ws_step * (size_t)D;
        p->off_ws = onr_carve_at(&used, a > b ? a : b);
    }
    *scratch = used;
    return ONR_OK;
}

/* ---- run --------------------------------------------------------------------- */

static int rnn_run(const onr_kctx *ctx)
{
    const rnn_params *p = ctx->params;
    int64_t *lens = onr_scratch_at(ctx, p->off_lens);
    const onr_tensor *sl = opt_in(ctx, 4);
    for (int64_t b = 0; b < p->B; b++) {
        lens[b] = sl ? ((const int32_t *)sl->data)[b] : p->S;
        if (lens[b] < 0 || lens[b] > p->S)
            return onr_seterr(ctx->err, ONR_E_INPUT,
                              "sequence_lens[%lld] = %lld is outside [0, seq_length = %lld]",
                              (long long)b, (long long)lens[b], (long long)p->S);
    }
    if (p->ref) run_f64(ctx, p, lens);
    else run_f32(ctx, p, lens);
    return ONR_OK;
}

/* float16, float, double from opset 7; bfloat16 joins at 22 */
#define RNN_TYPES (ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_FLOAT16))
#define RNN_IMPL(create_fn, types_mask)                                                    \
    {.create = create_fn, .reshape = rnn_reshape, .run = rnn_run, .destroy = rnn_destroy, \
     .params_size = sizeof(rnn_params), .types = types_mask, .flags = ONR_OP_OPT_OUT0}

const onr_op_impl onr_impl_rnn = RNN_IMPL(rnn_create, RNN_TYPES);
const onr_op_impl onr_impl_rnn22 = RNN_IMPL(rnn_create, RNN_TYPES | ONR_T(ONR_BFLOAT16));
const onr_op_impl onr_impl_gru = RNN_IMPL(gru_create, RNN_TYPES);
const onr_op_impl onr_impl_gru22 = RNN_IMPL(gru_create, RNN_TYPES | ONR_T(ONR_BFLOAT16));
const onr_op_impl onr_impl_lstm = RNN_IMPL(lstm_create, RNN_TYPES);
const onr_op_impl onr_impl_lstm22 = RNN_IMPL(lstm_create, RNN_TYPES | ONR_T(ONR_BFLOAT16));
