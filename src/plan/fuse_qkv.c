/*
 * fuse_qkv.c - Q, K and V of an Attention from one product: the
 * attention reads them in place, as column ranges of one tensor
 * (Attention in domain org.onnxrun, opset 1, attribute qkv_sizes:
 * ops/attention.c).
 *
 *   1. three projections of the same input (BERT, HF encoders):
 *        q = X.Wq [+ bq]   k = X.Wk [+ bk]   v = X.Wv [+ bv]
 *        Attention(q, k, v, ...)
 *      each a MatMul or a FusedMatMul without activation, residual or
 *      trans_b (the GEMM fusion sets it only for a B that is not
 *      constant), W constant 2-D float32 of the same depth,
 *      biases constant per-column (a missing one is zeros), each product
 *      read only by the Attention as its Q, K or V
 *      -> P = FusedMatMul(X, [Wq Wk Wv], [bq bk bv])
 *         org.onnxrun.Attention(P, P, P, ...) qkv_sizes [nq, nk, nv]
 *      one GEMM instead of three (the input read once, one parallel
 *      region, wider column blocks for the threads);
 *   2. one product cut on its last axis (GPT-2's c_attn, HF's fused qkv
 *      projections, nn.MultiheadAttention's in_proj):
 *        q, k, v = Split(P, axis -1)  or  three Slices of P on the last
 *        axis with constant bounds, step 1, consecutive from column 0,
 *        each perhaps through a view Reshape to [s0, s1, width] (the same
 *        s0, s1 for all three)
 *        Attention(q, k, v, ...)
 *      each part read only by the Attention as its Q, K or V
 *      -> org.onnxrun.Attention(P', P', P', ...), P' = P or Reshape(P,
 *         [s0, s1, P's width]) (a view): the copies are gone.
 *
 * Both need 3-D Q, K and V with q_num_heads / kv_num_heads (the attention
 * fusion makes them so: fuse_attention.c), float32, and distinct values
 * for Q, K and V. The packed node keeps every other input, output and
 * attribute of the Attention, and records its ai.onnx opset (onnx_opset).
 * Runs after the GEMM fusion, which makes the FusedMatMuls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/fuse.h"
#include "plan/passes.h"

/* A projection feeding Q, K or V: X.W [+ b]. */
typedef struct proj {
    int node, x, w, bias;
    int64_t k, n;
} proj;

static int is_f32(const onr_edit *e, int v) { return onr_fuse_dtype(e, v) == ONR_FLOAT; }

/* Value v is produced by a MatMul or an epilogue-free FusedMatMul with a
 * constant 2-D float32 weight and (optionally) a per-column constant bias. */
static int match_proj(const onr_edit *e, int v, proj *p)
{
    int m = onr_fuse_producer(e, v);
    if (m < 0) return 0;
    const onr_node *n = &e->g->nodes[m];
    if (n->n_out != 1 || n->outputs[0] != v) return 0;
    int fused = n->domain && strcmp(n->domain, ONR_FUSE_DOMAIN) == 0 && strcmp(n->op_type, "FusedMatMul") == 0;
    if (!fused && !onr_fuse_is(e, m, "MatMul")) return 0;
    if (fused) {
        if (n->n_in < 2 || n->n_in > 3) return 0; /* a residual (input 3) is not a plain projection */
        if (strcmp(onr_attr_string(n, "activation", ""), "") != 0) return 0;
        if (onr_attr_int(n, "trans_b", 0) != 0) return 0;
    } else if (n->n_in != 2) {
        return 0;
    }
    memset(p, 0, sizeof *p);
    p->node = m;
    p->x = n->inputs[0];
    p->w = n->inputs[1];
    p->bias = fused && n->n_in > 2 ? n->inputs[2] : -1;
    if (p->x < 0 || p->w < 0 || !is_f32(e, p->x) || !is_f32(e, v)) return 0;
    const onr_tensor *w = onr_fuse_const_desc(e, p->w); /* (a lazy weight is copied into the concatenation only) */
    if (!w || w->dtype != ONR_FLOAT || w->rank != 2) return 0;
    p->k = w->dims[0];
    p->n = w->dims[1];
    if (p->k < 1 || p->n < 1) return 0;
    if (p->bias >= 0) {
        const onr_tensor *b = onr_fuse_const(e, p->bias);
        if (!b || b->dtype != ONR_FLOAT || b->numel != p->n || b->rank < 1 || b->dims[b->rank - 1] != p->n ||
            !b->data)
            return 0;
    }
    return 1;
}

/* The Attention at node a reads three distinct 3-D float32 values as Q, K
 * and V, each only there (one slot), with the head counts as attributes. */
static int att_inputs_ok(const onr_edit *e, int a)
{
    const onr_node *n = &e->g->nodes[a];
    if (n->n_in < 3 || onr_attr_int(n, "q_num_heads", 0) < 1 || onr_attr_int(n, "kv_num_heads", 0) < 1)
        return 0;
    if (n->opset != 23 && n->opset != 24) return 0;
    for (int i = 0; i < 3; i++) {
        int v = n->inputs[i];
        int64_t d[ONR_MAX_RANK];
        if (v < 0 || !is_f32(e, v) || onr_fuse_shape(e, v, d) != 3) return 0;
        for (int j = 0; j < i; j++)
            if (n->inputs[j] == v) return 0;
        if (onr_fuse_sole_consumer(e, v) != a || onr_fuse_n_uses(e, v) != 1) return 0;
    }
    /* and no other input of it is Q, K or V (a mask that is Q...) */
    for (int i = 3; i < n->n_in; i++)
        for (int j = 0; j < 3; j++)
            if (n->inputs[i] == n->inputs[j]) return 0;
    return 1;
}

/* The packed Attention replacing node a (and `more` nodes), reading P. */
static int emit_packed(onr_edit *e, int a, int pv, const int64_t qkv[3], const int *more, int n_more,
                       onr_err *err)
{
    const onr_node *an = &e->g->nodes[a];
    int n_in = an->n_in, n_out = an->n_out, n_attr = an->n_attr;
    int64_t opset = an->opset;
    const onr_attr *attrs = an->attrs;
    int *ins = malloc(sizeof(int) * (size_t)(n_in + n_out));
    int replaced[8];
    if (!ins) return onr_seterr(err, ONR_E_NOMEM, "out of memory"), -1;
    int *outs = ins + n_in;
    for (int i = 0; i < n_in; i++) ins[i] = i < 3 ? pv : an->inputs[i];
    for (int i = 0; i < n_out; i++) outs[i] = an->outputs[i];
    for (int i = 0; i < n_more; i++) replaced[i] = more[i];
    replaced[n_more] = a;
    /* the node's attributes stay valid while it is only marked removed */
    int node = onr_fuse_emit(e, "Attention", ONR_FUSE_DOMAIN, 1, n_in, ins, n_out, outs, replaced, n_more + 1,
                             err);
    free(ins);
    if (node < 0) return -1;
    for (int i = 0; i < n_attr; i++) {
        const onr_attr *t = &attrs[i];
        int st = 0;
        switch (t->type) {
        case ONR_ATTR_INT: st = onr_edit_set_attr_int(e, node, t->name, t->i, err); break;
        case ONR_ATTR_FLOAT: st = onr_edit_set_attr_float(e, node, t->name, t->f, err); break;
        case ONR_ATTR_STRING: st = onr_edit_set_attr_string(e, node, t->name, t->s, err); break;
        case ONR_ATTR_INTS: st = onr_edit_set_attr_ints(e, node, t->name, t->ints, t->n, err); break;
        case ONR_ATTR_FLOATS: st = onr_edit_set_attr_floats(e, node, t->name, t->floats, t->n, err); break;
        default: break; /* Attention has no other kind */
        }
        if (st) return -1;
    }
    if (onr_edit_set_attr_ints(e, node, "qkv_sizes", qkv, 3, err) ||
        onr_edit_set_attr_int(e, node, "onnx_opset", opset, err))
        return -1;
    return 1;
}

/* The outputs of nodes[0..n) other than the Attention's are read only
 * inside the set, and so are the Attention's Q, K, V. */
static int closed_with_att(const onr_edit *e, const int *nodes, int n, int a)
{
    const onr_node *an = &e->g->nodes[a];
    int keep[8], nk = 0;
    for (int i = 0; i < an->n_out && nk < 8; i++)
        if (an->outputs[i] >= 0) keep[nk++] = an->outputs[i];
    return an->n_out <= 8 && onr_fuse_closed(e, nodes, n, keep, nk);
}

/* Case 1: three projections of one input. */
static int fuse_three(onr_edit *e, int a, onr_err *err)
{
    const onr_node *an = &e->g->nodes[a];
    proj p[3];
    for (int i = 0; i < 3; i++)
        if (!match_proj(e, an->inputs[i], &p[i])) return 0;
    int any_bias = 0;
    for (int i = 0; i < 3; i++) {
        if (p[i].x != p[0].x || p[i].k != p[0].k) return 0;
        for (int j = 0; j < i; j++)
            if (p[i].node == p[j].node) return 0;
        any_bias |= p[i].bias >= 0;
    }
    int64_t xd[ONR_MAX_RANK];
    int xr = onr_fuse_shape(e, p[0].x, xd);
    if (xr < 2 || xd[xr - 1] != p[0].k) return 0;
    int nodes[4] = {p[0].node, p[1].node, p[2].node, a};
    if (!closed_with_att(e, nodes, 4, a)) return 0;

    /* the concatenated weights and biases */
    const int64_t K = p[0].k, N = p[0].n + p[1].n + p[2].n;
    const int64_t wd[2] = {K, N};
    onr_tensor *w = onr_tensor_new_uninit(ONR_FLOAT, 2, wd); /* every element written below */
    onr_tensor *b = any_bias ? onr_tensor_new(ONR_FLOAT, 1, &N) : NULL;
    if (!w || (any_bias && !b)) {
        onr_tensor_free(w), onr_tensor_free(b);
        return onr_seterr(err, ONR_E_NOMEM, "out of memory packing Q, K and V weights"), -1;
    }
    float *wp = w->data, *bp = b ? b->data : NULL;
    int64_t c0 = 0;
    for (int i = 0; i < 3; i++) {
        const char *src = onr_fuse_const_bytes(e, p[i].w); /* in place, or a lazy one in the mapping */
        const int64_t n = p[i].n;
        const size_t row = sizeof(float) * (size_t)n;
        for (int64_t r = 0; r < K; r++) memcpy(wp + r * N + c0, src + (size_t)r * row, row);
        if (bp) {
            if (p[i].bias >= 0) memcpy(bp + c0, onr_fuse_const(e, p[i].bias)->data, sizeof(float) * (size_t)n);
            else memset(bp + c0, 0, sizeof(float) * (size_t)n);
        }
        c0 += n;
    }
    const char *nm = e->g->nodes[p[0].node].name;
    int wv = onr_fuse_add_const(e, nm && *nm ? nm : "qkv", w, err);
    if (wv < 0) {
        onr_tensor_free(b);
        return -1;
    }
    int bv = -1;
    if (b && (bv = onr_fuse_add_const(e, nm && *nm ? nm : "qkv", b, err)) < 0) return -1;
    int pv = onr_fuse_add_value(e, nm && *nm ? nm : "qkv", err);
    if (pv < 0) return -1;
    xd[xr - 1] = N;
    if (onr_edit_set_shape(e, pv, ONR_FLOAT, xr, xd, NULL, err)) return -1;
    int ins[3] = {p[0].x, wv, bv};
    const int mm[3] = {p[0].node, p[1].node, p[2].node};
    int node = onr_fuse_emit(e, "FusedMatMul", ONR_FUSE_DOMAIN, 1, bv >= 0 ? 3 : 2, ins, 1, &pv, mm, 3, err);
    if (node < 0) return -1;
    const int64_t qkv[3] = {p[0].n, p[1].n, p[2].n};
    return emit_packed(e, a, pv, qkv, NULL, 0, err);
}

/* Case 2: Q, K, V are consecutive column ranges of one product P, cut by
 * one Split or by three Slices on the last axis, each perhaps through a
 * view Reshape that keeps its last dim ([S, 1, E] -> [1, S, E]: the
 * attention fusion's, for nn.MultiheadAttention's sequence-first
 * layout). */
typedef struct part {
    int p;             /* the product */
    int cut, view;     /* the Split / Slice node, the Reshape node or -1 */
    int64_t c0, n;     /* columns [c0, c0 + n) of p */
    int64_t shape[3];  /* the view's target shape */
} part;

/* A constant integer list (int64 or int32) of at most 4 values. */
static int const_ints(const onr_edit *e, int v, int64_t *out, int *n)
{
    const onr_tensor *t = v >= 0 ? onr_fuse_const(e, v) : NULL;
    if (!t || t->rank > 1 || t->numel < 1 || t->numel > 4 || (t->dtype != ONR_INT64 && t->dtype != ONR_INT32))
        return 0;
    for (int64_t i = 0; i < t->numel; i++)
        out[i] = t->dtype == ONR_INT64 ? ((const int64_t *)t->data)[i] : ((const int32_t *)t->data)[i];
    *n = (int)t->numel;
    return 1;
}

static int match_part(const onr_edit *e, int v, part *pt)
{
    memset(pt, 0, sizeof *pt);
    pt->view = -1;
    int r = onr_fuse_src(e, v, "Reshape");
    if (r >= 0) {
        const onr_node *rn = &e->g->nodes[r];
        int nsh = 0;
        if (rn->n_in != 2 || !const_ints(e, rn->inputs[1], pt->shape, &nsh) || nsh != 3 ||
            onr_attr_int(rn, "allowzero", 0) != 0)
            return 0;
        for (int d = 0; d < 3; d++)
            if (pt->shape[d] == 0 || pt->shape[d] < -1) return 0;
        if (pt->shape[2] < 1 || onr_fuse_n_uses(e, rn->inputs[0]) != 1) return 0;
        pt->view = r;
        v = rn->inputs[0];
    }
    int64_t vd[ONR_MAX_RANK], pd[ONR_MAX_RANK];
    int vr = onr_fuse_shape(e, v, vd);
    if (vr < 1 || vd[vr - 1] < 1) return 0;
    if (pt->view >= 0 && vd[vr - 1] != pt->shape[2]) return 0;
    int c = onr_fuse_producer(e, v);
    if (c < 0) return 0;
    const onr_node *cn = &e->g->nodes[c];
    if (cn->n_in < 1 || cn->inputs[0] < 0) return 0;
    int pv = cn->inputs[0];
    if (!is_f32(e, pv) || onr_fuse_shape(e, pv, pd) != vr || pd[vr - 1] < 1) return 0;
    /* the cut is on the last axis: every other dim is P's */
    for (int d = 0; d + 1 < vr; d++)
        if (!onr_fuse_dim_eq(e, v, d, pv, d)) return 0;
    pt->p = pv;
    pt->cut = c;
    pt->n = vd[vr - 1];
    if (onr_fuse_is(e, c, "Split")) {
        int k = 0;
        while (k < cn->n_out && cn->outputs[k] != v) k++;
        if (k == cn->n_out) return 0;
        int64_t c0 = 0, od[ONR_MAX_RANK];
        for (int i = 0; i < k; i++) {
            if (cn->outputs[i] < 0 || onr_fuse_shape(e, cn->outputs[i], od) != vr || od[vr - 1] < 0) return 0;
            c0 += od[vr - 1];
        }
        pt->c0 = c0;
        return 1;
    }
    if (!onr_fuse_is(e, c, "Slice") || cn->n_out != 1 || cn->opset < 10 || cn->n_in < 3) return 0;
    int64_t st[4], en[4], ax[4] = {-1}, sp[4] = {1};
    int ns = 0, ne = 0, na = 1, nsp = 1;
    if (!const_ints(e, cn->inputs[1], st, &ns) || !const_ints(e, cn->inputs[2], en, &ne) || ns != 1 || ne != 1)
        return 0;
    if (cn->n_in > 3 && cn->inputs[3] >= 0 && !const_ints(e, cn->inputs[3], ax, &na)) return 0;
    if (cn->n_in > 4 && cn->inputs[4] >= 0 && !const_ints(e, cn->inputs[4], sp, &nsp)) return 0;
    if (na != 1 || nsp != 1 || sp[0] != 1 || (ax[0] != -1 && ax[0] != vr - 1)) return 0;
    int64_t w = pd[vr - 1], s0 = st[0] < 0 ? st[0] + w : st[0], e0 = en[0] < 0 ? en[0] + w : en[0];
    if (e0 > w) e0 = w;
    if (s0 < 0 || s0 >= w || e0 - s0 != pt->n) return 0;
    pt->c0 = s0;
    return 1;
}

static int fuse_parts(onr_edit *e, int a, onr_err *err)
{
    const onr_node *an = &e->g->nodes[a];
    part pt[3];
    for (int i = 0; i < 3; i++)
        if (!match_part(e, an->inputs[i], &pt[i])) return 0;
    const int views = pt[0].view >= 0;
    int64_t c0 = 0;
    for (int i = 0; i < 3; i++) {
        if (pt[i].p != pt[0].p || (pt[i].view >= 0) != views || pt[i].c0 != c0) return 0;
        if (views && (pt[i].shape[0] != pt[0].shape[0] || pt[i].shape[1] != pt[0].shape[1])) return 0;
        c0 += pt[i].n;
    }
    /* the nodes replaced: the cuts (a Split once), the views, the Attention */
    int nodes[8], nn = 0;
    for (int i = 0; i < 3; i++) {
        int dup = 0;
        for (int j = 0; j < nn; j++) dup |= nodes[j] == pt[i].cut;
        if (!dup) nodes[nn++] = pt[i].cut;
    }
    if (nn == 1 && e->g->nodes[pt[0].cut].n_out != 3) return 0; /* a Split with more parts */
    if (nn != 1 && nn != 3) return 0;
    for (int i = 0; i < 3 && views; i++) nodes[nn++] = pt[i].view;
    nodes[nn++] = a;
    if (!closed_with_att(e, nodes, nn, a)) return 0;
    int in = pt[0].p;
    if (views) {
        int64_t pd[ONR_MAX_RANK];
        int pr = onr_fuse_shape(e, in, pd);
        const int64_t shp[3] = {pt[0].shape[0], pt[0].shape[1], pd[pr - 1]};
        char nm[320];
        snprintf(nm, sizeof nm, "%s/qkv_view", e->g->nodes[a].name ? e->g->nodes[a].name : "attention");
        if ((in = onr_fuse_add_reshape(e, nm, in, shp, 3, -1, err)) < 0) return -1;
    } else {
        int64_t pd[ONR_MAX_RANK];
        if (onr_fuse_shape(e, in, pd) != 3) return 0;
    }
    const int64_t qkv[3] = {pt[0].n, pt[1].n, pt[2].n};
    return emit_packed(e, a, in, qkv, nodes, nn - 1, err);
}

static int fuse_qkv_at(onr_edit *e, int i, void *ctx, onr_err *err)
{
    (void)ctx;
    if (!onr_fuse_is(e, i, "Attention") || !att_inputs_ok(e, i)) return 0;
    int r = fuse_three(e, i, err);
    if (r) return r;
    return fuse_parts(e, i, err);
}

onr_status onr_pass_fuse_qkv(onr_edit *e, onr_err *err)
{
    if (!onr_op_find(ONR_FUSE_DOMAIN, "Attention", 1) || !onr_op_find(ONR_FUSE_DOMAIN, "FusedMatMul", 1))
        return ONR_OK;
    return onr_fuse_sweep(e, fuse_qkv_at, NULL, err);
}
