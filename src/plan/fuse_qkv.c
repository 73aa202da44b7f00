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
 *   2. one product split on its last axis (GPT-2's c_attn, HF's fused
 *      qkv projections):
 *        q, k, v = Split(P, axis -1)     Attention(q, k, v, ...)
 *      each part read only by the Attention as its Q, K or V
 *      -> org.onnxrun.Attention(P, P, P, ...): the Split's copy is gone.
 *
 * Both need 3-D Q, K and V with q_num_heads / kv_num_heads (the attention
 * fusion makes them so: fuse_attention.c), float32, and distinct values
 * for Q, K and V. The packed node keeps every other input, output and
 * attribute of the Attention, and records its ai.onnx opset (onnx_opset).
 * Runs after the GEMM fusion, which makes the FusedMatMuls.
 */
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
    const onr_tensor *w = onr_fuse_const(e, p->w);
    if (!w || w->dtype != ONR_FLOAT || w->rank != 2 || !w->data) return 0;
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
    int replaced[4];
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
    onr_tensor *w = onr_tensor_new(ONR_FLOAT, 2, wd);
    onr_tensor *b = any_bias ? onr_tensor_new(ONR_FLOAT, 1, &N) : NULL;
    if (!w || (any_bias && !b)) {
        onr_tensor_free(w), onr_tensor_free(b);
        return onr_seterr(err, ONR_E_NOMEM, "out of memory packing Q, K and V weights"), -1;
    }
    float *wp = w->data, *bp = b ? b->data : NULL;
    int64_t c0 = 0;
    for (int i = 0; i < 3; i++) {
        const onr_tensor *wi = onr_fuse_const(e, p[i].w);
        const float *src = wi->data;
        const int64_t n = p[i].n;
        for (int64_t r = 0; r < K; r++) memcpy(wp + r * N + c0, src + r * n, sizeof(float) * (size_t)n);
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

/* Case 2: the three parts of one Split on the last axis, in order. */
static int fuse_split(onr_edit *e, int a, onr_err *err)
{
    const onr_node *an = &e->g->nodes[a];
    int s = onr_fuse_src(e, an->inputs[0], "Split");
    if (s < 0) return 0;
    const onr_node *sn = &e->g->nodes[s];
    if (sn->n_out != 3 || sn->n_in < 1) return 0;
    for (int i = 0; i < 3; i++)
        if (sn->outputs[i] != an->inputs[i]) return 0;
    int pv = sn->inputs[0];
    int64_t pd[ONR_MAX_RANK], od[ONR_MAX_RANK];
    if (pv < 0 || !is_f32(e, pv) || onr_fuse_shape(e, pv, pd) != 3 || pd[2] < 1) return 0;
    int64_t qkv[3], sum = 0;
    for (int i = 0; i < 3; i++) {
        int v = sn->outputs[i];
        if (onr_fuse_shape(e, v, od) != 3 || od[2] < 1) return 0;
        /* the leading dims are P's: the split is on the last axis */
        for (int d = 0; d < 2; d++)
            if (!onr_fuse_dim_eq(e, v, d, pv, d)) return 0;
        qkv[i] = od[2];
        sum += od[2];
    }
    if (sum != pd[2]) return 0;
    int nodes[2] = {s, a};
    if (!closed_with_att(e, nodes, 2, a)) return 0;
    return emit_packed(e, a, pv, qkv, &s, 1, err);
}

static int fuse_qkv_at(onr_edit *e, int i, void *ctx, onr_err *err)
{
    (void)ctx;
    if (!onr_fuse_is(e, i, "Attention") || !att_inputs_ok(e, i)) return 0;
    int r = fuse_three(e, i, err);
    if (r) return r;
    return fuse_split(e, i, err);
}

onr_status onr_pass_fuse_qkv(onr_edit *e, onr_err *err)
{
    if (!onr_op_find(ONR_FUSE_DOMAIN, "Attention", 1) || !onr_op_find(ONR_FUSE_DOMAIN, "FusedMatMul", 1))
        return ONR_OK;
    return onr_fuse_sweep(e, fuse_qkv_at, NULL, err);
}
