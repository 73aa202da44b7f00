/*
 * fuse_attention.c - scaled dot-product attention subgraphs become the
 * standard ONNX Attention operator (ai.onnx, opset 23).
 *
 * Anchored at a Softmax over the last axis, the pattern is
 *
 *   scores = MatMul(Qh, Kt) [* c | / c]...        scale constants
 *            [+ mask | Where(cond, scores, fill)]  at most one mask + causal
 *   Y      = MatMul(Softmax(scores), Vh)
 *
 * where the heads come from a head split of a 3-D projection:
 *
 *   Qh = Transpose(Reshape(q [B,S,H*D], [B,S,H,D]), [0,2,1,3])   (optionally * c)
 *   Kt = Transpose(Reshape(k, [B,S,Hk,D]), [0,2,3,1])            or
 *        Transpose(Kh, [0,1,3,2])                                 or
 *        Reshape(Transpose(Reshape(Kh, [B*H,S,D]), [0,2,1]), [B,H,D,S])
 *                                          (torch dynamo's key transpose)
 *   Kh, Vh optionally repeated for grouped-query attention:
 *        Reshape(Expand(Unsqueeze(Kh, 2), [B,Hk,n,S,D]), [B,Hk*n,S,D])
 *
 * and, in the 3-D form, the head merge Transpose(Y, [0,2,1,3]) + Reshape
 * to [B,S,H*D] folds into the op too: Attention(q, k, v) with q_num_heads
 * and kv_num_heads writes the merged value. torch.nn.MultiheadAttention's
 * sequence-first layout (ViT) folds in the same way: heads of [S,B,E] ->
 * Reshape [S,B*H,D] -> Transpose [1,0,2]; the op's inputs get a view
 * Reshape to [1,S,E] (a Transpose to [B,S,E] when B > 1) and its output
 * the way back.
 *
 * Each of Q, K, V is fed 3-D when its split folds in, else as its 4-D head
 * value (rotary embedding applied on [B,H,S,D], say); Y is 3-D (merge
 * folded in) when Q is. When the 3-D choice is not closed (a split shared
 * by two sides) every side is fed 4-D.
 *
 * Masks: an additive float mask that broadcasts into the scores (without
 * growing them) passes as attn_mask, its computation staying outside;
 * Where(cond, scores, -inf) passes cond as a boolean attn_mask, and so
 * does Where(Not(cond), -inf, scores) (the Not is left dead); a constant
 * lower-triangular mask over S_q == S_kv (additive 0 / -inf or <= -1e30,
 * or a boolean keep-triangle in a Where) becomes is_causal = 1 and may sit
 * next to one other mask (HF: causal then padding); another constant
 * Where condition becomes a constant additive mask (0 / fill). Casts to
 * float of float values around the softmax (HF's .to(dtype)) are dropped.
 * The scale attribute is the product of every constant multiplied or
 * divided into the scores, Q and K (split sqrt(scale) included), 1 when
 * there is none; masks must come after every scale (else the mask would
 * be scaled too).
 *
 * Symbolic batch and sequence dims: the shapes come from pass_shapes.c,
 * dims compared by name (onr_fuse_dim_eq); a causal triangle sliced by the
 * run-time length (torch's bias[:, :, :t, :t]) counts as causal when the
 * scores' last two dims are one symbol; a sequence-first split with a
 * symbolic batch takes H = E / D and feeds the op through Transposes.
 *
 * What is not matched (documented limits): values symbolic shape
 * inference cannot shape (no ranks: every check here needs them; a
 * head-split Reshape whose leading entries are 0 (copy) is accepted when
 * ranks are known);
 * sequence-first masks over the merged batch-head axis; a Where with a
 * run-time condition and a finite fill (-inf only: a fully masked row
 * would differ); two non-causal masks, or masks needing new ops to
 * combine or invert.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/fuse.h"
#include "plan/passes.h"

#define ATT_OPSET 23
#define NMAX 48

/* Masked entries are those at or below this (or -inf). */
#define MASK_NEG (-1e30)

/* A set of node indices (a pattern part); overflow means no match. */
typedef struct nset {
    int n, over;
    int v[NMAX];
} nset;

static void ns_add(nset *s, int node)
{
    if (s->n < NMAX) s->v[s->n++] = node;
    else s->over = 1;
}

static void ns_cat(nset *d, const nset *s)
{
    for (int i = 0; i < s->n; i++) ns_add(d, s->v[i]);
    d->over |= s->over;
}

/* A head split: head = Transpose(Reshape(src [scaled], ...)) (head_split()). */
typedef struct split {
    int ok;
    int lead;          /* 2: [B,S,E] -> [B,S,H,D]; 1: [S,B,E] -> [S,B*H,D] */
    int src;           /* the 3-D value split (before any scale) */
    int64_t B, S, H, D; /* -1 when symbolic */
    double scale;      /* constants multiplied into src */
    nset nodes;        /* Reshape, Transpose, scale nodes */
} split;

/* One of Q, K, V. */
typedef struct side {
    split sp;          /* sp.ok: the head value is a split of a 3-D value */
    int h4;            /* 4-D head value [B,H,S,D] (before any repeat), or -1 */
    int64_t B, H, S, D;
    int64_t rep;       /* grouped-query repeat on this side (1: none) */
    double scale;      /* constants multiplied in after the split */
    nset glue;         /* nodes between the split and the MatMul */
} side;

typedef struct att {
    nset core;         /* Softmax, both MatMuls, scale and mask nodes */
    double scale;
    int mask;          /* value passed as attn_mask, or -1 */
    int wcond;         /* constant Where condition to turn into a float mask, or -1 */
    int winv;          /* wcond True means masked */
    double wfill;
    int causal;
    side q, k, v;
} att;

/* ---- small helpers -------------------------------------------------------- */

static const onr_node *node(const onr_edit *e, int i) { return &e->g->nodes[i]; }

static int perm_is(const onr_edit *e, int t, const int64_t *p, int r)
{
    size_t c = 0;
    const int64_t *q = onr_attr_ints(node(e, t), "perm", &c);
    if (!q || (int)c != r) return 0;
    for (int i = 0; i < r; i++)
        if (q[i] != p[i]) return 0;
    return 1;
}

static int is_float(const onr_edit *e, int v) { return onr_fuse_dtype(e, v) == ONR_FLOAT; }

/* A float constant holding one element, not raising the rank of the value
 * v it multiplies. */
static int scale_const(const onr_edit *e, int c, int v, double *x)
{
    int64_t d[ONR_MAX_RANK];
    const onr_tensor *t = onr_fuse_const(e, c);
    int vrank = onr_fuse_shape(e, v, d);
    if (!t || t->dtype != ONR_FLOAT || onr_fuse_const(e, v) || vrank < 0 || t->rank > vrank) return 0;
    return onr_fuse_const_scalar(e, c, x) && isfinite(*x) && *x != 0;
}

/* Follow up to max Mul/Div by scalar constants back from v, multiplying
 * *scale and adding the nodes to ns; returns the value under them. */
static int strip_scale_n(const onr_edit *e, int v, double *scale, nset *ns, int max)
{
    for (int k = 0; k < max; k++) {
        int p = onr_fuse_producer(e, v);
        if (p < 0 || node(e, p)->n_in != 2) break;
        const onr_node *n = node(e, p);
        int mul = onr_fuse_is(e, p, "Mul"), div = onr_fuse_is(e, p, "Div");
        if (!mul && !div) break;
        double c = 0;
        int slot;
        if (scale_const(e, n->inputs[1], n->inputs[0], &c)) slot = 0;
        else if (mul && scale_const(e, n->inputs[0], n->inputs[1], &c)) slot = 1;
        else break;
        *scale *= div ? 1.0 / c : c;
        ns_add(ns, p);
        v = n->inputs[slot];
    }
    return v;
}

static int strip_scale(const onr_edit *e, int v, double *scale, nset *ns)
{
    return strip_scale_n(e, v, scale, ns, 4);
}

/* Output dim i of Reshape r is input dim i: equal static dims, symbolic
 * dims of the same name, or a 0 (copy) entry in a constant shape with
 * allowzero unset. */
static int dim_kept(const onr_edit *e, int r, int i, const int64_t *sd, const int64_t *od)
{
    if (od[i] >= 0 && sd[i] >= 0) return od[i] == sd[i];
    const onr_node *n = node(e, r);
    if (onr_fuse_dim_eq(e, n->inputs[0], i, n->outputs[0], i)) return 1;
    const onr_tensor *t = onr_fuse_const(e, n->inputs[1]);
    if (!t || t->rank != 1 || i >= t->numel || onr_attr_int(n, "allowzero", 0)) return 0;
    return onr_get_f64(t, i) == 0;
}

/* Reshape r splits the last dim of its 3-D input into (H, D), keeping the
 * leading dims (lead 2: [B,S,E] -> [B,S,H,D]; lead 1, sequence-first:
 * [S,B,E] -> [S,B*H,D], B static). */
static int split_reshape(const onr_edit *e, int r, int lead, split *sp)
{
    const onr_node *n = node(e, r);
    int64_t od[ONR_MAX_RANK], sd[ONR_MAX_RANK];
    if (n->n_in != 2 || n->n_out != 1) return 0;
    if (onr_fuse_shape(e, n->outputs[0], od) != lead + 2 || onr_fuse_shape(e, n->inputs[0], sd) != 3)
        return 0;
    int64_t H = od[lead], D = od[lead + 1], E = sd[2];
    if (lead == 1) {
        /* [S,B,E] -> [S,B*H,D] (head index b*H + h): the element counts
         * force the first dim; with a symbolic B, S kept and E = H*D force
         * the second */
        if (sd[1] < 0 && D > 0 && E > 0 && E % D == 0 && dim_kept(e, r, 0, sd, od)) H = E / D;
        else if (sd[1] <= 0 || H <= 0 || H % sd[1]) return 0;
        else H /= sd[1];
    }
    if (H <= 0 || D <= 0 || E <= 0 || H > E || D > E || H * D != E) return 0;
    if (lead == 1) {
        sp->B = sd[1];
        sp->S = sd[0];
    } else {
        /* one leading dim kept and E = H*D force the other */
        if (!dim_kept(e, r, 0, sd, od) && !dim_kept(e, r, 1, sd, od)) return 0;
        sp->B = sd[0] >= 0 ? sd[0] : od[0];
        sp->S = sd[1] >= 0 ? sd[1] : od[1];
    }
    sp->H = H;
    sp->D = D;
    sp->lead = lead;
    return 1;
}

/* v = Transpose(Reshape(x)) splitting heads, with the transpose giving the
 * head layout (kt 0: [B,H,S,D] / [H,S,D]) or K transposed (kt 1:
 * [B,H,D,S] / [H,D,S]). Scale constants on x are stripped when allowed. */
static int head_split(const onr_edit *e, int v, int kt, int allow_scale, split *sp)
{
    static const int64_t p4[2][4] = {{0, 2, 1, 3}, {0, 2, 3, 1}};
    static const int64_t p3[2][3] = {{1, 0, 2}, {1, 2, 0}};
    memset(sp, 0, sizeof *sp);
    int t = onr_fuse_src(e, v, "Transpose");
    if (t < 0) return 0;
    int r = onr_fuse_src(e, node(e, t)->inputs[0], "Reshape");
    if (r < 0) return 0;
    if (!(perm_is(e, t, p4[kt], 4) && split_reshape(e, r, 2, sp)) &&
        !(perm_is(e, t, p3[kt], 3) && split_reshape(e, r, 1, sp)))
        return 0;
    ns_add(&sp->nodes, t);
    ns_add(&sp->nodes, r);
    sp->scale = 1;
    int x = node(e, r)->inputs[0];
    sp->src = allow_scale ? strip_scale(e, x, &sp->scale, &sp->nodes) : x;
    if (!is_float(e, sp->src)) return 0;
    sp->ok = 1;
    return 1;
}

/* u = Reshape(Expand(Unsqueeze(w)), [B,Hk*n,S,D]) repeating each head of w
 * [B,Hk,S,D] n times (repeat_kv); returns w and sets *rep, else u, rep 1. */
static int repeat_kv(const onr_edit *e, int u, int64_t *rep, nset *ns)
{
    int64_t ud[ONR_MAX_RANK], xd[ONR_MAX_RANK], qd[ONR_MAX_RANK], wd[ONR_MAX_RANK];
    *rep = 1;
    int r = onr_fuse_src(e, u, "Reshape");
    if (r < 0) return u;
    int x = onr_fuse_src(e, node(e, r)->inputs[0], "Expand");
    if (x < 0) return u;
    int q = onr_fuse_src(e, node(e, x)->inputs[0], "Unsqueeze");
    if (q < 0) return u;
    int w = node(e, q)->inputs[0];
    if (onr_fuse_shape(e, u, ud) != 4 || onr_fuse_shape(e, node(e, x)->outputs[0], xd) != 5 ||
        onr_fuse_shape(e, node(e, q)->outputs[0], qd) != 5 || onr_fuse_shape(e, w, wd) != 4)
        return u;
    /* every dim static: [B,Hk,S,D] -> [B,Hk,1,S,D] -> [B,Hk,n,S,D] -> [B,Hk*n,S,D] */
    for (int i = 0; i < 4; i++)
        if (wd[i] <= 0 || ud[i] <= 0) return u;
    int64_t n = xd[2];
    if (n <= 0 || qd[0] != wd[0] || qd[1] != wd[1] || qd[2] != 1 || qd[3] != wd[2] || qd[4] != wd[3] ||
        xd[0] != wd[0] || xd[1] != wd[1] || xd[3] != wd[2] || xd[4] != wd[3] || ud[0] != wd[0] ||
        ud[1] != wd[1] * n || ud[2] != wd[2] || ud[3] != wd[3])
        return u;
    ns_add(ns, r);
    ns_add(ns, x);
    ns_add(ns, q);
    *rep = n;
    return w;
}

/* The side whose head value (after the glue already stripped) is u: an
 * optional repeat, then a head split of a 3-D value or any 4-D value. */
static int side_heads(const onr_edit *e, int u, int allow_scale, side *s)
{
    int w = repeat_kv(e, u, &s->rep, &s->glue);
    if (head_split(e, w, 0, allow_scale, &s->sp)) {
        s->h4 = s->sp.lead == 2 ? w : -1;
        s->B = s->sp.B;
        s->H = s->sp.H;
        s->S = s->sp.S;
        s->D = s->sp.D;
        return 1;
    }
    int64_t d[ONR_MAX_RANK];
    if (onr_fuse_shape(e, w, d) != 4 || d[1] <= 0 || d[3] <= 0 || !is_float(e, w)) return 0;
    s->h4 = w;
    s->B = d[0];
    s->H = d[1];
    s->S = d[2];
    s->D = d[3];
    return 1;
}

static void side_init(side *s)
{
    memset(s, 0, sizeof *s);
    s->h4 = -1;
    s->rep = 1;
    s->scale = 1;
}

/* K from the second input of the scores MatMul: K transposed. */
static int side_k(const onr_edit *e, int v, side *s)
{
    static const int64_t swap4[4] = {0, 1, 3, 2}, swap3[3] = {0, 2, 1};
    side_init(s);
    v = strip_scale(e, v, &s->scale, &s->glue);
    if (head_split(e, v, 1, 1, &s->sp)) {
        s->B = s->sp.B;
        s->H = s->sp.H;
        s->S = s->sp.S;
        s->D = s->sp.D;
        return 1;
    }
    int t = onr_fuse_src(e, v, "Transpose");
    if (t >= 0 && (perm_is(e, t, swap4, 4) || perm_is(e, t, swap3, 3))) {
        ns_add(&s->glue, t);
        int u = strip_scale(e, node(e, t)->inputs[0], &s->scale, &s->glue);
        if (!side_heads(e, u, 1, s)) return 0;
        /* a 3-D swap needs the sequence-first split, a 4-D one a 4-D head */
        return perm_is(e, t, swap3, 3) ? s->sp.ok && s->sp.lead == 1 && s->rep == 1 : 1;
    }
    /* dynamo: Reshape(Transpose(Reshape(Kh, [B*H,S,D]), [0,2,1]), [B,H,D,S]) */
    int r2 = onr_fuse_src(e, v, "Reshape");
    int t2 = r2 >= 0 ? onr_fuse_src(e, node(e, r2)->inputs[0], "Transpose") : -1;
    int r1 = t2 >= 0 ? onr_fuse_src(e, node(e, t2)->inputs[0], "Reshape") : -1;
    if (r1 < 0 || !perm_is(e, t2, swap3, 3)) return 0;
    int kh = node(e, r1)->inputs[0];
    int64_t kd[ONR_MAX_RANK], d1[ONR_MAX_RANK], d2[ONR_MAX_RANK];
    if (onr_fuse_shape(e, kh, kd) != 4 || onr_fuse_shape(e, node(e, r1)->outputs[0], d1) != 3 ||
        onr_fuse_shape(e, v, d2) != 4)
        return 0;
    for (int i = 0; i < 4; i++)
        if (kd[i] <= 0) return 0;
    if (d1[0] != kd[0] * kd[1] || d1[1] != kd[2] || d1[2] != kd[3] || d2[0] != kd[0] ||
        d2[1] != kd[1] || d2[2] != kd[3] || d2[3] != kd[2])
        return 0;
    ns_add(&s->glue, r2);
    ns_add(&s->glue, t2);
    ns_add(&s->glue, r1);
    int u = strip_scale(e, kh, &s->scale, &s->glue);
    return side_heads(e, u, 1, s);
}

/* ---- the scores chain ------------------------------------------------------ */

/* A mask value m of shape md broadcasting into scores of shape sd without
 * growing them (rank and dims), as attn_mask needs. */
static int mask_fits(const int64_t *md, int mr, const int64_t *sd, int sr)
{
    if (mr < 0 || sr < 2 || mr > sr) return 0;
    for (int i = 0; i < mr; i++) {
        int64_t m = md[mr - 1 - i], s = sd[sr - 1 - i];
        if (m == 1 || (m >= 0 && m == s)) continue;
        if (m < 0 && s != 1) continue; /* symbolic: the kernel checks it at run time */
        return 0;
    }
    return 1;
}

/* Whether constant t (last two dims Sq x Skv, leading dims 1) keeps
 * exactly the lower triangle: keep(i,j) <=> j <= i. kind 0: t is a
 * boolean-ish condition (nonzero = keep, inverted by inv); kind 1: an
 * additive mask (0 = keep, <= MASK_NEG = masked). */
static int causal_const(const onr_tensor *t, int kind, int inv, const int64_t *sd, int sr)
{
    if (!t || t->rank < 2 || sr < 2) return 0;
    int64_t sq = t->dims[t->rank - 2], skv = t->dims[t->rank - 1];
    if (sq != skv || sq != sd[sr - 2] || skv != sd[sr - 1] || sq < 1) return 0;
    if (t->numel != sq * skv) return 0;
    for (int64_t i = 0; i < sq; i++)
        for (int64_t j = 0; j < skv; j++) {
            double x = onr_get_f64(t, i * skv + j);
            int keep;
            if (kind == 0) keep = (x != 0) != (inv != 0);
            else if (x == 0) keep = 1;
            else if (x <= MASK_NEG) keep = 0;
            else return 0;
            if (keep != (j <= i)) return 0;
        }
    return 1;
}

/* A constant lower-triangular mask sliced to the scores' size: c is (up to
 * no-op Casts to bool) T, or Equal(T', 0) (inverting), where T' is T after
 * Slices from 0 with step 1 along its last two axes (ends anything: the
 * sequence length at run time), T a constant whose leading dims are 1 and
 * whose square last two keep the lower triangle; and the scores (of value
 * sv, rank sr) have equal last two dims (static, or one symbolic dim by
 * name). The top-left block of a causal square is the causal mask over
 * S_q == S_kv: what torch exports for bias[:, :, :t, :t] with a dynamic t. */
static int sliced_causal(const onr_edit *e, int c, int inv, int sv, int sr)
{
    if (sr < 2 || !onr_fuse_dim_eq(e, sv, sr - 2, sv, sr - 1)) return 0;
    for (int k = 0; k < 2; k++) { /* Casts of a bool to bool */
        int p = onr_fuse_src(e, c, "Cast");
        if (p < 0 || node(e, p)->n_in != 1 || onr_attr_int(node(e, p), "to", 0) != ONR_BOOL ||
            onr_fuse_dtype(e, node(e, p)->inputs[0]) != ONR_BOOL)
            break;
        c = node(e, p)->inputs[0];
    }
    int eq = onr_fuse_src(e, c, "Equal");
    if (eq >= 0 && node(e, eq)->n_in == 2) {
        int z = -1;
        for (int i = 0; i < 2 && z < 0; i++) {
            double x;
            if (onr_fuse_const_scalar(e, node(e, eq)->inputs[i], &x) && x == 0) z = i;
        }
        if (z < 0) return 0;
        c = node(e, eq)->inputs[1 - z];
        inv = !inv;
    }
    int sliced = 0;
    for (int k = 0; k < 2; k++) {
        int sl = onr_fuse_src(e, c, "Slice");
        if (sl < 0) break;
        const onr_node *n = node(e, sl);
        int64_t cd[ONR_MAX_RANK];
        int cr = onr_fuse_shape(e, n->inputs[0], cd);
        if (n->opset < 10 || n->n_in < 4 || cr < 2) return 0;
        const onr_tensor *st = onr_fuse_const(e, n->inputs[1]), *ax = onr_fuse_const(e, n->inputs[3]);
        if (!st || !ax || st->numel < 1 || st->numel != ax->numel || st->numel > 2 ||
            !onr_fuse_const_all(e, n->inputs[1], 0, 0))
            return 0;
        if (n->n_in > 4 && n->inputs[4] >= 0 && !onr_fuse_const_all(e, n->inputs[4], 1, 0)) return 0;
        for (int64_t i = 0; i < ax->numel; i++) {
            double a = onr_get_f64(ax, i);
            if (a < 0) a += cr;
            if (a != cr - 1 && a != cr - 2) return 0;
        }
        c = n->inputs[0];
        sliced = 1;
    }
    const onr_tensor *t = onr_fuse_const(e, c);
    if (!sliced || !t || t->rank < 2) return 0;
    for (int d = 0; d < t->rank - 2; d++)
        if (t->dims[d] != 1) return 0;
    return causal_const(t, 0, inv, t->dims, t->rank);
}

/* Node p is a Cast of a float value to float (a no-op). */
static int same_type_cast(const onr_edit *e, int p)
{
    return onr_fuse_is(e, p, "Cast") && node(e, p)->n_in == 1 &&
           onr_attr_int(node(e, p), "to", 0) == ONR_FLOAT && is_float(e, node(e, p)->inputs[0]);
}

static int match_qk(const onr_edit *e, int mm, att *m);

/* Scores value v (read by the node after it in the chain): masks (stage 0)
 * then scale constants, down to the Q.K MatMul. */
static int match_scores(const onr_edit *e, int v, int stage, att *m, int depth)
{
    int p = onr_fuse_producer(e, v);
    if (p < 0 || depth > 8) return 0;
    const onr_node *n = node(e, p);
    int64_t sd[ONR_MAX_RANK], md[ONR_MAX_RANK], od[ONR_MAX_RANK];
    if (onr_fuse_is(e, p, "MatMul") && n->n_in == 2) {
        ns_add(&m->core, p);
        return match_qk(e, p, m);
    }
    int orank = onr_fuse_shape(e, v, od);
    if (orank < 0) return 0;
    if (same_type_cast(e, p)) {
        /* Cast to float of a float (exporters write .to(dtype)) */
        att m2 = *m;
        ns_add(&m2.core, p);
        if (match_scores(e, n->inputs[0], stage, &m2, depth + 1)) {
            *m = m2;
            return 1;
        }
        return 0;
    }
    if (stage == 0 && onr_fuse_is(e, p, "Add") && n->n_in == 2) {
        for (int s = 0; s < 2; s++) {
            int x = n->inputs[s], mv = n->inputs[1 - s];
            if (x == mv || onr_fuse_shape(e, x, sd) != orank || memcmp(sd, od, sizeof(int64_t) * (size_t)orank))
                continue;
            int mr = onr_fuse_shape(e, mv, md);
            if (!is_float(e, mv) || !mask_fits(md, mr, sd, orank)) continue;
            att m2 = *m;
            if (causal_const(onr_fuse_const(e, mv), 1, 0, sd, orank)) {
                if (m2.causal) continue;
                m2.causal = 1;
            } else if (m2.mask < 0 && m2.wcond < 0) {
                m2.mask = mv;
            } else {
                continue;
            }
            ns_add(&m2.core, p);
            if (match_scores(e, x, 0, &m2, depth + 1)) {
                *m = m2;
                return 1;
            }
        }
        return 0;
    }
    if (stage == 0 && onr_fuse_is(e, p, "Where") && n->n_in == 3) {
        int c = n->inputs[0];
        for (int s = 1; s <= 2; s++) {
            int x = n->inputs[s], f = n->inputs[3 - s], inv = s == 2;
            double fill = 0;
            if (x == f || x == c || onr_fuse_shape(e, x, sd) != orank ||
                memcmp(sd, od, sizeof(int64_t) * (size_t)orank))
                continue;
            /* fill: one value, -inf or low enough that exp() gives 0 */
            const onr_tensor *ft = onr_fuse_const(e, f);
            if (!ft || ft->dtype != ONR_FLOAT || ft->rank > orank ||
                !onr_fuse_const_scalar(e, f, &fill) || !(fill <= MASK_NEG))
                continue;
            int cr = onr_fuse_shape(e, c, md);
            if (onr_fuse_dtype(e, c) != ONR_BOOL || !mask_fits(md, cr, sd, orank)) continue;
            att m2 = *m;
            const onr_tensor *ct = onr_fuse_const(e, c);
            if ((ct && causal_const(ct, 0, inv, sd, orank)) ||
                (!ct && sliced_causal(e, c, inv, v, orank))) {
                if (m2.causal) continue;
                m2.causal = 1;
            } else if (m2.mask >= 0 || m2.wcond >= 0) {
                continue;
            } else if (ct) {
                m2.wcond = c; /* becomes 0 / fill */
                m2.winv = inv;
                m2.wfill = fill;
            } else if (!inv && isinf(fill)) {
                m2.mask = c; /* True = attend, False = -inf: exactly Attention's bool mask */
            } else if (inv && isinf(fill) && onr_fuse_src(e, c, "Not") >= 0 &&
                       node(e, onr_fuse_src(e, c, "Not"))->n_in == 1) {
                m2.mask = node(e, onr_fuse_src(e, c, "Not"))->inputs[0]; /* Where(Not(keep), -inf, s) */
            } else {
                continue;
            }
            ns_add(&m2.core, p);
            if (match_scores(e, x, 0, &m2, depth + 1)) {
                *m = m2;
                return 1;
            }
        }
        return 0;
    }
    if ((onr_fuse_is(e, p, "Mul") || onr_fuse_is(e, p, "Div")) && n->n_in == 2) {
        double s = 1;
        nset tmp = {0};
        int x = strip_scale_n(e, v, &s, &tmp, 1);
        if (x == v) return 0;
        att m2 = *m;
        m2.scale *= s;
        ns_add(&m2.core, p);
        if (match_scores(e, x, 1, &m2, depth + 1)) {
            *m = m2;
            return 1;
        }
    }
    return 0;
}

/* The scores MatMul: Q (input 0) and K transposed (input 1). */
static int match_qk(const onr_edit *e, int mm, att *m)
{
    const onr_node *n = node(e, mm);
    side_init(&m->q);
    int u = strip_scale(e, n->inputs[0], &m->q.scale, &m->q.glue);
    if (!side_heads(e, u, 1, &m->q) || m->q.rep != 1) return 0;
    return side_k(e, n->inputs[1], &m->k);
}

/* ---- emitting --------------------------------------------------------------- */

static onr_tensor *new_tensor(onr_dtype dt, int rank, const int64_t *dims, onr_err *err)
{
    onr_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        onr_seterr(err, ONR_E_NOMEM, "out of memory");
        return NULL;
    }
    if (onr_tensor_set_shape(t, dt, rank, dims, err) || onr_tensor_alloc(t, err)) {
        onr_tensor_clear(t);
        free(t);
        return NULL;
    }
    return t;
}

/* Transpose [1,0,2] of the 3-D x (swapping sequence and batch) writing a
 * new value; returns it or -1. */
static int add_transpose(onr_edit *e, const char *name, int x, int out, onr_err *err)
{
    static const int64_t perm[3] = {1, 0, 2};
    const onr_op *op = onr_op_find("", "Transpose", 13);
    if (!op) {
        onr_seterr(err, ONR_E_UNSUPPORTED, "attention fusion: no Transpose kernel");
        return -1;
    }
    if (out < 0) {
        int64_t d[ONR_MAX_RANK], t[3];
        if ((out = onr_fuse_add_value(e, name, err)) < 0) return -1;
        if (onr_fuse_shape(e, x, d) == 3) {
            t[0] = d[1], t[1] = d[0], t[2] = d[2];
            onr_fuse_set_meta(e, out, ONR_FLOAT, 3, t);
        }
    }
    int i = onr_edit_add_node(e, "Transpose", "", name, 1, &x, 1, &out, err);
    if (i < 0) return -1;
    e->g->nodes[i].opset = 13;
    e->g->nodes[i].op = op;
    if (onr_edit_set_attr_ints(e, i, "perm", perm, 3, err)) return -1;
    return out;
}

/* The constant float mask of a constant Where condition: 0 where kept,
 * fill where masked. */
static int where_mask(onr_edit *e, const att *m, const char *name, onr_err *err)
{
    const onr_tensor *c = onr_fuse_const(e, m->wcond);
    onr_tensor *t = new_tensor(ONR_FLOAT, c->rank, c->dims, err);
    if (!t) return -1;
    float *d = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        int keep = (onr_get_f64(c, i) != 0) != (m->winv != 0);
        d[i] = keep ? 0.0f : (float)m->wfill;
    }
    return onr_fuse_add_const(e, name, t, err);
}

/* At most one of dims[0..rank) is symbolic (-1): a Reshape infers it. */
static int one_sym(const int64_t *dims, int rank)
{
    int n = 0;
    for (int i = 0; i < rank; i++) n += dims[i] < 0;
    return n <= 1;
}

/* The matched sides agree on heads, head size, sequence and batch. */
static int dims_agree(const att *m)
{
    const side *q = &m->q, *k = &m->k, *v = &m->v;
    if (q->H <= 0 || k->H <= 0 || v->H <= 0 || q->D <= 0 || v->D <= 0) return 0;
    if (k->H != v->H || q->H != k->H * k->rep || k->rep != v->rep || q->D != k->D) return 0;
    if (k->S >= 0 && v->S >= 0 && k->S != v->S) return 0;
    if (q->B >= 0 && k->B >= 0 && q->B != k->B) return 0;
    if (q->B >= 0 && v->B >= 0 && q->B != v->B) return 0;
    return 1;
}

/* The nodes of the pattern into all when side i is fed 3-D (f[i]: its
 * split folds into the op) or 4-D (its head value), and the head merge
 * tr, rs folds in when merge: every one read only inside it except keep,
 * and the op's inputs made outside it. */
static int form_ok(const onr_edit *e, const att *m, const int *f, int merge, int tr, int rs, int keep,
                   nset *all)
{
    const side *sides[3] = {&m->q, &m->k, &m->v};
    int ins[4] = {-1, -1, -1, m->mask};
    *all = m->core;
    for (int i = 0; i < 3; i++) {
        ns_cat(all, &sides[i]->glue);
        if (f[i]) ns_cat(all, &sides[i]->sp.nodes);
        ins[i] = f[i] ? sides[i]->sp.src : sides[i]->h4;
        if (ins[i] < 0) return 0;
    }
    if (merge) {
        ns_add(all, tr);
        ns_add(all, rs);
    }
    if (all->over || !onr_fuse_closed(e, all->v, all->n, &keep, 1)) return 0;
    for (int i = 0; i < 4; i++) {
        int p = onr_fuse_producer(e, ins[i]);
        for (int j = 0; p >= 0 && j < all->n; j++)
            if (all->v[j] == p) return 0;
    }
    return 1;
}

static int try_softmax(onr_edit *e, int sm, void *ctx, onr_err *err)
{
    (void)ctx;
    if (!onr_fuse_is(e, sm, "Softmax")) return 0;
    const onr_node *sn = node(e, sm);
    int64_t sd[ONR_MAX_RANK], od[ONR_MAX_RANK], td[ONR_MAX_RANK];
    int rank = onr_fuse_shape(e, sn->inputs[0], sd);
    if (sn->n_in != 1 || sn->n_out != 1 || (rank != 3 && rank != 4) || !is_float(e, sn->inputs[0]))
        return 0;
    /* the last axis (before opset 13 the input is coerced to 2-D at axis,
     * which is the same only when axis is the last one) */
    int64_t axis = onr_attr_int(sn, "axis", sn->opset >= 13 ? -1 : 1);
    if (axis != -1 && axis != rank - 1) return 0;
    int probs = sn->outputs[0];
    int mm2 = onr_fuse_sole_consumer(e, probs);
    int casts[2], n_casts = 0;
    while (n_casts < 2 && same_type_cast(e, mm2)) { /* .to(dtype) after the softmax */
        casts[n_casts++] = mm2;
        probs = node(e, mm2)->outputs[0];
        mm2 = onr_fuse_sole_consumer(e, probs);
    }
    if (mm2 < 0 || !onr_fuse_is(e, mm2, "MatMul") || node(e, mm2)->n_in != 2 ||
        node(e, mm2)->inputs[0] != probs || node(e, mm2)->inputs[1] == probs)
        return 0;

    att m;
    memset(&m, 0, sizeof m);
    m.scale = 1;
    m.mask = m.wcond = -1;
    ns_add(&m.core, sm);
    for (int i = 0; i < n_casts; i++) ns_add(&m.core, casts[i]);
    ns_add(&m.core, mm2);
    if (!match_scores(e, sn->inputs[0], 0, &m, 0)) return 0;
    side_init(&m.v);
    if (!side_heads(e, node(e, mm2)->inputs[1], 0, &m.v) || !dims_agree(&m)) return 0;

    /* the form: Q, K, V each 3-D when a split of a 3-D value folds in,
     * else its 4-D head value; the head merge folds in when Q is 3-D (the
     * op's output is 3-D then). Sequence-first splits (lead 1) have no 4-D
     * head value: all three or nothing. */
    int y = node(e, mm2)->outputs[0];
    const side *sides[3] = {&m.q, &m.k, &m.v};
    int lead = 0, f[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        f[i] = sides[i]->sp.ok;
        if (f[i]) lead = lead ? (lead == sides[i]->sp.lead ? lead : -1) : sides[i]->sp.lead;
    }
    if (lead < 0 || (lead == 1 && !(f[0] && f[1] && f[2]))) return 0;
    int tr = -1, rs = -1, out = -1, direct = 0;
    int64_t B = m.q.B, E = m.q.H * m.v.D;
    if (f[0]) {
        static const int64_t m4[4] = {0, 2, 1, 3}, m3[3] = {1, 0, 2};
        tr = onr_fuse_sole_consumer(e, y);
        if (tr >= 0 && onr_fuse_is(e, tr, "Transpose") && perm_is(e, tr, lead == 2 ? m4 : m3, lead + 2))
            rs = onr_fuse_sole_consumer(e, node(e, tr)->outputs[0]);
        if (rs >= 0 && onr_fuse_is(e, rs, "Reshape") && node(e, rs)->n_in == 2 &&
            node(e, rs)->inputs[0] == node(e, tr)->outputs[0]) {
            out = node(e, rs)->outputs[0];
            int orank = onr_fuse_shape(e, out, od), trank = onr_fuse_shape(e, node(e, tr)->outputs[0], td);
            int ostatic = orank >= 1, tstatic = trank == lead + 2;
            for (int i = 0; i < orank; i++) ostatic &= od[i] >= 0;
            for (int i = 0; i < trank; i++) tstatic &= td[i] >= 0;
            if (lead == 2 && orank == 3 && od[2] == E && trank == 4 &&
                (dim_kept(e, rs, 0, td, od) || dim_kept(e, rs, 1, td, od)))
                direct = 1;
            else if (!(ostatic && tstatic) && !(lead == 1 && trank == 3 && orank >= 1 && one_sym(od, orank)))
                out = -1; /* sequence-first: [S,B,E] reshaped to od, one dim inferred */
            if (lead == 2 && tstatic) B = td[0];
        }
        if (out < 0) f[0] = 0;
    }
    if (lead == 1 && !f[0]) return 0;
    /* sequence-first with a batch: the op's mask broadcasts over [B,H,..],
     * a mask over the merged batch-head axis does not */
    if (lead == 1 && B != 1) {
        int64_t md[ONR_MAX_RANK];
        int mv = m.mask >= 0 ? m.mask : m.wcond, mr = mv >= 0 ? onr_fuse_shape(e, mv, md) : 0;
        if (mr >= 3 && md[mr - 3] != 1) return 0;
    }
    /* this form when its nodes are closed, else every side 4-D */
    nset all;
    if (!form_ok(e, &m, f, f[0], tr, rs, f[0] ? out : y, &all)) {
        if (lead == 1) return 0;
        f[0] = f[1] = f[2] = 0;
        if (!form_ok(e, &m, f, 0, -1, -1, y, &all)) return 0;
    }
    const int keep = f[0] ? out : y;

    double scale = m.scale * m.q.scale * m.k.scale;
    if (f[0]) scale *= m.q.sp.scale;
    if (f[1]) scale *= m.k.sp.scale;
    if (!(scale > 0) || !isfinite(scale) || !isfinite((float)scale)) return 0;

    /* ---- edit ---- */
    char name[300];
    snprintf(name, sizeof name, "%s", sn->name);
    int ins[4] = {-1, -1, -1, -1};
    for (int i = 0; i < 3; i++) {
        if (!f[i]) ins[i] = sides[i]->h4;
        else if (lead == 2) ins[i] = sides[i]->sp.src;
        else {
            /* [S,B,E] -> [B,S,E]: a view when B is 1 */
            const int64_t shp[3] = {1, -1, sides[i]->sp.H * sides[i]->sp.D};
            static const char *const tag[3] = {"q", "k", "v"};
            char nm[320];
            snprintf(nm, sizeof nm, "%s/attention_%s", name, tag[i]);
            ins[i] = B == 1 ? onr_fuse_add_reshape(e, nm, sides[i]->sp.src, shp, 3, -1, err)
                            : add_transpose(e, nm, sides[i]->sp.src, -1, err);
            if (ins[i] < 0) return -1;
        }
    }
    if (m.mask >= 0) ins[3] = m.mask;
    else if (m.wcond >= 0 && (ins[3] = where_mask(e, &m, name, err)) < 0) return -1;
    int n_in = ins[3] >= 0 ? 4 : 3;

    int yv = keep;
    if (f[0] && !direct) {
        /* Attention writes [B,S,H*Dv]; a view Reshape gives the merge's shape */
        if ((yv = onr_fuse_add_value(e, name, err)) < 0) return -1;
        const int64_t yd[3] = {B, m.q.S >= 0 ? m.q.S : -1, E};
        onr_fuse_set_meta(e, yv, ONR_FLOAT, 3, yd);
    }
    int a = onr_fuse_emit(e, "Attention", "", ATT_OPSET, n_in, ins, 1, &yv, all.v, all.n, err);
    if (a < 0) return -1;
    if (onr_edit_set_attr_float(e, a, "scale", (float)scale, err)) return -1;
    if (m.causal && onr_edit_set_attr_int(e, a, "is_causal", 1, err)) return -1;
    if (f[0] || f[1] || f[2]) {
        if (onr_edit_set_attr_int(e, a, "q_num_heads", m.q.H, err) ||
            onr_edit_set_attr_int(e, a, "kv_num_heads", m.k.H, err))
            return -1;
    }
    if (f[0]) {
        if (!direct) {
            char nm[320];
            snprintf(nm, sizeof nm, "%s/attention_out", name);
            int orank = onr_fuse_shape(e, keep, od), x = yv;
            if (lead == 1 && B != 1 && (x = add_transpose(e, nm, yv, -1, err)) < 0) return -1;
            if (onr_fuse_add_reshape(e, nm, x, od, orank, keep, err) < 0) return -1;
        }
    }
    return 1;
}

onr_status onr_pass_fuse_attention(onr_edit *e, onr_err *err)
{
    /* without the kernel there is nothing to fuse into */
    if (!onr_op_find("", "Attention", ATT_OPSET)) return ONR_OK;
    return onr_fuse_sweep(e, try_softmax, NULL, err);
}
