/*
 * fuse_norm.c - layer-norm fusions.
 *
 * onr_pass_fuse_layernorm: a decomposed LayerNorm becomes one
 * LayerNormalization (ai.onnx, opset 17). What the exporters write:
 *
 *   m  = ReduceMean(x, axes)                 axes: a trailing set of x's axes,
 *   d  = Sub(x, m)                             keepdims=1; attribute before
 *   v  = ReduceMean(Pow(d, 2), axes)           opset 18, constant input after
 *   s  = Sqrt(Add(v, eps))                   Pow(d, 2) or Mul(d, d)
 *   n  = Div(d', s) | Mul(d', Reciprocal(s)) d' is d or a second Sub(x, m)
 *   y  = Add(Mul(n, gamma), beta)            both optional, constants
 *
 * optionally inside Cast(to=float) nodes that are no-ops (float32 in and
 * out). eps, gamma, beta must be constants; gamma and beta must broadcast
 * to the normalized shape without growing y (LayerNormalization's Scale/B
 * semantics) and be of x's type; every intermediate must be read only
 * inside the pattern. A missing gamma becomes a constant Scale of one 1; a
 * non-constant one (or one varying along a non-normalized axis) stays a
 * Mul after the fused node. x must be float32 or double (fp16 patterns
 * round at every step, which the fused kernel does not). Below symbolic
 * dims shape inference leaves x's rank and type unknown: then the axes
 * must be negative ({-k, ..., -1}) and the type is eps's.
 *
 * onr_pass_fuse_skip_layernorm: Add(a, b) -> LayerNormalization over the
 * last axis (float32, stash_type 1, Scale and B of shape [H]) becomes
 * SkipLayerNormalization (org.onnxrun, 1; see ops/norm.c). a and b must
 * have one shape (static dims equal, symbolic dims of the same name), so
 * the Add does not broadcast: the kernel's skip broadcasting is not used
 * by the fusion. (Symbolic dims are named by pass_shapes.c; an unnamed
 * one matches nothing.) When the sum is read elsewhere too (pre-LN
 * blocks: GPT-2, ViT) the fused node writes it as output 3, under the
 * Add's own value, so its readers need no rewiring. LN's Mean and
 * InvStdDev become outputs 1 and 2.
 * A bias Add right before (Add(X, const [H]) read only by the residual
 * Add, X non-constant with last dim H: the MatMul + bias of a Linear) is
 * absorbed as input 4 (bias); the fused sum is (X + bias) + skip, the
 * unfused order, so the fused results are bit-identical on float32. The
 * GEMM-epilogue pass runs later and would otherwise fold that bias into
 * the MatMul: this pass takes it first (either way the bias costs no pass
 * of its own).
 *
 * onr_pass_fuse_channel_layernorm: Transpose(X, [0, 2, ..., r-1, 1]) ->
 * LayerNormalization over the last axis (float32, stash_type 1, Scale and
 * B [C], no Mean / InvStdDev outputs) [-> Transpose([0, r-1, 1, ...,
 * r-2])], each intermediate read only inside, becomes
 * ChannelLayerNormalization (org.onnxrun, 1; ops/norm.c) of X with
 * channels_last 1 (or 0 with the transpose back): ConvNeXt's LayerNorms
 * over the channels of NCHW activations. Bit-identical to the unfused
 * graph.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan/fuse.h"
#include "plan/passes.h"

/* ---- small accessors --------------------------------------------------------- */

static const onr_node *nd(const onr_edit *e, int i) { return &e->g->nodes[i]; }

static int in_of(const onr_edit *e, int i, int k)
{
    const onr_node *n = nd(e, i);
    return k < n->n_in ? n->inputs[k] : -1;
}

static int out0(const onr_edit *e, int i) { return nd(e, i)->n_out > 0 ? nd(e, i)->outputs[0] : -1; }

/* The sole consumer of v when it is an ai.onnx op_type node, else -1. */
static int next_is(const onr_edit *e, int v, const char *op_type)
{
    int c = onr_fuse_sole_consumer(e, v);
    return c >= 0 && onr_fuse_is(e, c, op_type) ? c : -1;
}

/* Cast node c converts float32 to float32 (a no-op). */
static int cast_noop_f32(const onr_edit *e, int c)
{
    return onr_fuse_is(e, c, "Cast") && nd(e, c)->n_in >= 1 &&
           onr_attr_int(nd(e, c), "to", 0) == ONR_FLOAT &&
           onr_fuse_dtype(e, in_of(e, c, 0)) == ONR_FLOAT;
}

/* ReduceMean node r averages a trailing set of the axes of a rank-`rank`
 * input with keepdims=1: its first axis (as LayerNormalization's axis) in
 * *axis. rank < 0 (unknown: symbolic dims stop shape inference) accepts
 * negative axes {-k, ..., -1} only, and *axis is then -k. Axes come from
 * the attribute before opset 18 and from a constant input from 18 on; an
 * absent or empty axes list (all axes, or none with noop_with_empty_axes)
 * is not matched. */
static int reduce_axis(const onr_edit *e, int r, int rank, int64_t *axis)
{
    const onr_node *n = nd(e, r);
    if (onr_attr_int(n, "keepdims", 1) != 1) return 0;
    int64_t ax[ONR_MAX_RANK];
    int k = 0, maxk = rank >= 1 ? rank : ONR_MAX_RANK;
    if (n->opset >= 18) {
        const onr_tensor *t = n->n_in > 1 ? onr_fuse_const(e, n->inputs[1]) : NULL;
        if (!t || (t->dtype != ONR_INT64 && t->dtype != ONR_INT32) || t->numel < 1 ||
            t->numel > maxk)
            return 0;
        for (int64_t i = 0; i < t->numel; i++)
            ax[k++] = t->dtype == ONR_INT64 ? ((const int64_t *)t->data)[i]
                                            : ((const int32_t *)t->data)[i];
    } else {
        size_t cnt = 0;
        const int64_t *a = onr_attr_ints(n, "axes", &cnt);
        if (!a || cnt < 1 || cnt > (size_t)maxk) return 0;
        for (size_t i = 0; i < cnt; i++) ax[k++] = a[i];
    }
    /* distinct, in range, and exactly {R - k, ..., R - 1}; R = rank, or
     * 0 for negative axes of an unknown rank */
    int R = rank >= 1 ? rank : 0;
    uint32_t seen = 0;
    int64_t lo = R;
    for (int i = 0; i < k; i++) {
        int64_t a = rank >= 1 && ax[i] < 0 ? ax[i] + rank : ax[i];
        if (a < R - maxk || a >= R) return 0;
        uint32_t bit = 1u << (a - (R - maxk));
        if (seen & bit) return 0;
        seen |= bit;
        if (a < lo) lo = a;
    }
    if (lo != R - k) return 0;
    *axis = lo;
    return 1;
}

/* Constant v can be LayerNormalization's Scale or B for x (rank, dims,
 * dtype dt) normalized from `axis`: same type, rank <= x's, and each dim 1
 * or, over the normalized axes, equal to x's static dim (so Mul/Add with it
 * neither grows the result nor varies along the other axes). With x's rank
 * unknown (axis = -k) v's dims of more than 1 must lie within the last k;
 * that they equal x's is then left to the kernel, which reports a
 * mismatch as an error where Mul/Add would have broadcast a dim of 1. */
static int ln_param_ok(const onr_edit *e, int v, onr_dtype dt, int rank, const int64_t *xd,
                       int64_t axis)
{
    const onr_tensor *t = onr_fuse_const(e, v);
    if (!t || t->dtype != dt || t->numel < 1) return 0;
    if (rank < 0) {
        for (int d = 0; d < t->rank; d++)
            if (t->dims[d] != 1 && d - t->rank < axis) return 0;
        return t->rank <= -axis;
    }
    if (t->rank > rank) return 0;
    for (int d = 0; d < t->rank; d++) {
        int xi = d + rank - t->rank;
        if (t->dims[d] == 1) continue;
        if (xi < axis || xd[xi] < 0 || t->dims[d] != xd[xi]) return 0;
    }
    return 1;
}

/* ---- LayerNormalization from its decomposition ------------------------------ */

enum { LN_MAX_NODES = 16 };

static int ln_match(onr_edit *e, int r1, void *ctx, onr_err *err)
{
    ONR_UNUSED(ctx);
    if (!onr_fuse_is(e, r1, "ReduceMean") || nd(e, r1)->n_in < 1) return 0;
    int x = in_of(e, r1, 0), m = out0(e, r1);
    /* x's type; unknown when symbolic dims stopped shape inference, and
     * then eps's (Add(var, eps) has one type) */
    onr_dtype dt = onr_fuse_dtype(e, x);
    if ((dt != ONR_FLOAT && dt != ONR_DOUBLE && dt != ONR_UNDEFINED) || m < 0) return 0;
    int64_t xd[ONR_MAX_RANK], axis, axis2;
    int rank = onr_fuse_shape(e, x, xd);
    if (rank == 0 || !reduce_axis(e, r1, rank, &axis)) return 0;

    int nodes[LN_MAX_NODES], nn = 0;
    /* m's readers: one or two Sub(x, m) */
    int subs[2], ns = 0, nu = onr_fuse_n_uses(e, m);
    if (nu < 1 || nu > 2) return 0;
    const int *cm = onr_edit_consumers(e, m);
    for (int k = 0; k < nu; k++) {
        int s = cm[k];
        if (!onr_fuse_is(e, s, "Sub") || in_of(e, s, 0) != x || in_of(e, s, 1) != m) return 0;
        if (ns == 0 || subs[0] != s) subs[ns++] = s;
    }
    /* the squared difference: Pow(d, 2) or Mul(d, d), of one of the d's */
    int sq = -1;
    for (int k = 0; k < ns; k++) {
        int d = out0(e, subs[k]), n = onr_fuse_n_uses(e, d);
        if (n < 0) return 0;
        const int *cd = onr_edit_consumers(e, d);
        for (int j = 0; j < n; j++) {
            int c = cd[j];
            double p;
            if ((onr_fuse_is(e, c, "Pow") && in_of(e, c, 0) == d &&
                 onr_fuse_const_scalar(e, in_of(e, c, 1), &p) && p == 2.0) ||
                (onr_fuse_is(e, c, "Mul") && in_of(e, c, 0) == d && in_of(e, c, 1) == d)) {
                if (sq >= 0 && sq != c) return 0;
                sq = c;
            }
        }
    }
    if (sq < 0) return 0;
    int r2 = next_is(e, out0(e, sq), "ReduceMean");
    if (r2 < 0 || !reduce_axis(e, r2, rank, &axis2) || axis2 != axis) return 0;
    int ae = next_is(e, out0(e, r2), "Add");
    if (ae < 0) return 0;
    int es = onr_fuse_other_slot(nd(e, ae), out0(e, r2));
    double eps;
    if (es < 0 || !onr_fuse_const_scalar(e, in_of(e, ae, es), &eps) || !isfinite(eps) || eps < 0)
        return 0;
    if (dt == ONR_UNDEFINED) dt = onr_fuse_dtype(e, in_of(e, ae, es));
    if (dt != ONR_FLOAT && dt != ONR_DOUBLE) return 0;
    int sr = next_is(e, out0(e, ae), "Sqrt");
    if (sr < 0) return 0;
    /* n = d' / s, or d' * (1 / s) */
    int dv = -1, rc = -1, dprime = -1, sv = out0(e, sr);
    int c = onr_fuse_sole_consumer(e, sv);
    if (onr_fuse_is(e, c, "Div") && in_of(e, c, 1) == sv) {
        dv = c;
        dprime = in_of(e, c, 0);
    } else if (onr_fuse_is(e, c, "Reciprocal")) {
        rc = c;
        dv = next_is(e, out0(e, rc), "Mul");
        if (dv < 0) return 0;
        int sl = onr_fuse_other_slot(nd(e, dv), out0(e, rc));
        if (sl < 0) return 0;
        dprime = in_of(e, dv, sl);
    } else {
        return 0;
    }
    int ok = 0;
    for (int k = 0; k < ns; k++) ok |= out0(e, subs[k]) == dprime;
    if (!ok) return 0;

    nodes[nn++] = r1;
    for (int k = 0; k < ns; k++) nodes[nn++] = subs[k];
    nodes[nn++] = sq;
    nodes[nn++] = r2;
    nodes[nn++] = ae;
    nodes[nn++] = sr;
    if (rc >= 0) nodes[nn++] = rc;
    nodes[nn++] = dv;

    /* gamma, beta */
    int y = out0(e, dv), gamma = -1, beta = -1;
    int mg = next_is(e, y, "Mul");
    if (mg >= 0) {
        int sl = onr_fuse_other_slot(nd(e, mg), y);
        if (sl >= 0 && ln_param_ok(e, in_of(e, mg, sl), dt, rank, xd, axis)) {
            gamma = in_of(e, mg, sl);
            nodes[nn++] = mg;
            y = out0(e, mg);
        }
    }
    int ab = next_is(e, y, "Add");
    if (ab >= 0) {
        int sl = onr_fuse_other_slot(nd(e, ab), y);
        if (sl >= 0 && ln_param_ok(e, in_of(e, ab, sl), dt, rank, xd, axis)) {
            beta = in_of(e, ab, sl);
            nodes[nn++] = ab;
            y = out0(e, ab);
        }
    }
    /* no-op Casts around it */
    int X = x;
    int cout = next_is(e, y, "Cast");
    if (cout >= 0 && cast_noop_f32(e, cout)) {
        nodes[nn++] = cout;
        y = out0(e, cout);
    }
    int cin = onr_fuse_src(e, x, "Cast");
    if (cin >= 0 && cast_noop_f32(e, cin)) {
        nodes[nn++] = cin;
        if (onr_fuse_closed(e, nodes, nn, &y, 1)) X = in_of(e, cin, 0);
        else nn--; /* x is read elsewhere too: keep the Cast */
    }
    if (!onr_fuse_closed(e, nodes, nn, &y, 1)) return 0;

    /* edit */
    int scale = gamma;
    if (scale < 0) {
        const int64_t one = 1;
        onr_tensor *t = calloc(1, sizeof *t);
        if (!t) {
            onr_seterr(err, ONR_E_NOMEM, "out of memory");
            return -1;
        }
        if (onr_tensor_set_shape(t, dt, 1, &one, err) || onr_tensor_alloc(t, err)) {
            onr_tensor_free(t);
            return -1;
        }
        if (dt == ONR_FLOAT) ((float *)t->data)[0] = 1.0f;
        else ((double *)t->data)[0] = 1.0;
        scale = onr_fuse_add_const(e, nd(e, dv)->name, t, err);
        if (scale < 0) return -1;
    }
    const int ins[3] = {X, scale, beta};
    int f = onr_fuse_emit(e, "LayerNormalization", "", 17, beta >= 0 ? 3 : 2, ins, 1, &y, nodes,
                          nn, err);
    if (f < 0) return -1;
    if (onr_edit_set_attr_int(e, f, "axis", axis, err) ||
        onr_edit_set_attr_float(e, f, "epsilon", (float)eps, err))
        return -1;
    return 1;
}

onr_status onr_pass_fuse_layernorm(onr_edit *e, onr_err *err)
{
    return onr_fuse_sweep(e, ln_match, NULL, err);
}

/* ---- SkipLayerNormalization --------------------------------------------------- */

/* u and x have one shape: same rank, static dims equal, symbolic dims with
 * the same name (graph inputs' names; symbolic shape inference,
 * pass_shapes.c, names those of intermediate values). */
static int same_shape(const onr_edit *e, int u, int x)
{
    int64_t ud[ONR_MAX_RANK], xd[ONR_MAX_RANK];
    int ru = onr_fuse_shape(e, u, ud), rx = onr_fuse_shape(e, x, xd);
    if (ru < 0 || ru != rx) return 0;
    for (int d = 0; d < ru; d++)
        if (!onr_fuse_dim_eq(e, u, d, x, d)) return 0;
    return 1;
}

/* v is a float32 vector of shape [H] (constant or not). */
static int vec_h(const onr_edit *e, int v, int64_t H)
{
    int64_t d[ONR_MAX_RANK];
    return onr_fuse_dtype(e, v) == ONR_FLOAT && onr_fuse_shape(e, v, d) == 1 && d[0] == H;
}

static int sln_match(onr_edit *e, int ln, void *ctx, onr_err *err)
{
    ONR_UNUSED(ctx);
    if (!onr_fuse_is(e, ln, "LayerNormalization")) return 0;
    const onr_node *n = nd(e, ln);
    if (n->n_in < 2 || n->n_out < 1 || n->n_out > 3) return 0;
    int x = n->inputs[0], y = n->outputs[0];
    onr_dtype xdt = onr_fuse_dtype(e, x); /* unknown below symbolic dims */
    if ((xdt != ONR_FLOAT && xdt != ONR_UNDEFINED) || y < 0) return 0;
    int add = onr_fuse_src(e, x, "Add");
    if (add < 0 || nd(e, add)->n_in != 2) return 0;
    int a = in_of(e, add, 0), b = in_of(e, add, 1);
    /* a and b of one shape, so the Add does not broadcast and x has that
     * shape too (x's own shape is unknown when dims are symbolic) */
    int64_t ad[ONR_MAX_RANK], xd[ONR_MAX_RANK];
    int rank = onr_fuse_shape(e, a, ad), xr = onr_fuse_shape(e, x, xd);
    if (rank < 1 || (xr >= 0 && xr != rank) || onr_fuse_dtype(e, a) != ONR_FLOAT ||
        onr_fuse_dtype(e, b) != ONR_FLOAT || !same_shape(e, a, b))
        return 0;
    int64_t H = ad[rank - 1], axis = onr_attr_int(n, "axis", -1);
    if (H < 1 || (axis != -1 && axis != rank - 1) || onr_attr_int(n, "stash_type", 1) != 1)
        return 0;
    float eps = onr_attr_float(n, "epsilon", 1e-5f);
    int gamma = n->inputs[1], beta = n->n_in > 2 ? n->inputs[2] : -1;
    if (!vec_h(e, gamma, H) || (beta >= 0 && !vec_h(e, beta, H))) return 0;

    int nodes[3], nn = 0;
    /* a bias Add feeding one side: Add(X, const [H]) read only by `add`;
     * X's last dim is H, so the bias does not grow it: X has v's shape */
    int X = a, skip = b, bias = -1;
    for (int side = 0; side < 2 && bias < 0 && a != b; side++) {
        int v = in_of(e, add, side), p = onr_fuse_src(e, v, "Add");
        if (p < 0 || nd(e, p)->n_in != 2 || onr_fuse_sole_consumer(e, v) != add) continue;
        for (int sl = 0; sl < 2; sl++) {
            int cst = in_of(e, p, sl), o = in_of(e, p, 1 - sl);
            int64_t od[ONR_MAX_RANK];
            if (onr_fuse_const(e, cst) && vec_h(e, cst, H) && !onr_fuse_const(e, o) &&
                onr_fuse_dtype(e, o) == ONR_FLOAT && onr_fuse_shape(e, o, od) == rank &&
                od[rank - 1] == H) {
                nodes[nn++] = p;
                X = o;
                bias = cst;
                skip = in_of(e, add, 1 - side);
                break;
            }
        }
    }
    nodes[nn++] = add;
    nodes[nn++] = ln;
    /* the sum: read only by the LN (post-LN) or also elsewhere (pre-LN) */
    int sum = -1;
    if (onr_fuse_sole_consumer(e, x) != ln) {
        if (onr_fuse_n_uses(e, x) < 0) return 0; /* changed this sweep: next one */
        sum = x;
    }
    int outs[4] = {y, n->n_out > 1 ? n->outputs[1] : -1, n->n_out > 2 ? n->outputs[2] : -1, sum};
    int keep[4], nk = 0;
    for (int k = 0; k < 4; k++)
        if (outs[k] >= 0) keep[nk++] = outs[k];
    if (!onr_fuse_closed(e, nodes, nn, keep, nk)) return 0;
    int n_out = sum >= 0 ? 4 : outs[2] >= 0 ? 3 : outs[1] >= 0 ? 2 : 1;
    const int ins[5] = {X, skip, gamma, beta, bias};
    int n_in = bias >= 0 ? 5 : beta >= 0 ? 4 : 3;
    int f = onr_fuse_emit(e, "SkipLayerNormalization", ONR_FUSE_DOMAIN, 1, n_in, ins, n_out, outs,
                          nodes, nn, err);
    if (f < 0) return -1;
    if (onr_edit_set_attr_float(e, f, "epsilon", eps, err)) return -1;
    return 1;
}

onr_status onr_pass_fuse_skip_layernorm(onr_edit *e, onr_err *err)
{
    return onr_fuse_sweep(e, sln_match, NULL, err);
}

/* ---- ChannelLayerNormalization ----------------------------------------------- */

/* perm of rank r is [0, 2, ..., r-1, 1] (to channels last, last 1) or [0,
 * r-1, 1, ..., r-2] (back to channels first, last 0). */
static int is_cl_perm(const onr_node *t, int r, int last)
{
    size_t np = 0;
    const int64_t *perm = onr_attr_ints(t, "perm", &np);
    if (!perm || (int)np != r || perm[0] != 0) return 0;
    for (int d = 1; d < r; d++) {
        int64_t want = last ? (d == r - 1 ? 1 : d + 1) : (d == 1 ? r - 1 : d - 1);
        if (perm[d] != want) return 0;
    }
    return 1;
}

static int cln_match(onr_edit *e, int ln, void *ctx, onr_err *err)
{
    ONR_UNUSED(ctx);
    if (!onr_fuse_is(e, ln, "LayerNormalization")) return 0;
    const onr_node *n = nd(e, ln);
    if (n->n_in < 2 || n->n_in > 3 || n->n_out < 1) return 0;
    for (int k = 1; k < n->n_out; k++) /* Mean and InvStdDev: not made */
        if (n->outputs[k] >= 0) return 0;
    int t = onr_fuse_src(e, n->inputs[0], "Transpose");
    if (t < 0 || nd(e, t)->n_in != 1 || onr_fuse_sole_consumer(e, n->inputs[0]) != ln) return 0;
    int X = in_of(e, t, 0), y = n->outputs[0];
    int64_t xd[ONR_MAX_RANK];
    int r = onr_fuse_shape(e, X, xd);
    if (r < 3 || onr_fuse_dtype(e, X) != ONR_FLOAT || !is_cl_perm(nd(e, t), r, 1)) return 0;
    int64_t C = xd[1], axis = onr_attr_int(n, "axis", -1);
    if (C < 1 || (axis != -1 && axis != r - 1) || onr_attr_int(n, "stash_type", 1) != 1) return 0;
    int gamma = n->inputs[1], beta = n->n_in > 2 ? n->inputs[2] : -1;
    if (!vec_h(e, gamma, C) || (beta >= 0 && !vec_h(e, beta, C))) return 0;
    float eps = onr_attr_float(n, "epsilon", 1e-5f);
    int nodes[3] = {t, ln}, nn = 2, out = y, last = 1;
    /* back to channels first right after, read only there: no transpose at all */
    int t2 = onr_fuse_sole_consumer(e, y);
    if (onr_fuse_is(e, t2, "Transpose") && nd(e, t2)->n_in == 1 && nd(e, t2)->n_out == 1 &&
        is_cl_perm(nd(e, t2), r, 0)) {
        nodes[nn++] = t2;
        out = nd(e, t2)->outputs[0];
        last = 0;
    }
    if (!onr_fuse_closed(e, nodes, nn, &out, 1)) return 0;
    const int ins[3] = {X, gamma, beta};
    int f = onr_fuse_emit(e, "ChannelLayerNormalization", ONR_FUSE_DOMAIN, 1, beta >= 0 ? 3 : 2,
                          ins, 1, &out, nodes, nn, err);
    if (f < 0) return -1;
    if (onr_edit_set_attr_float(e, f, "epsilon", eps, err) ||
        onr_edit_set_attr_int(e, f, "channels_last", last, err))
        return -1;
    return 1;
}

onr_status onr_pass_fuse_channel_layernorm(onr_edit *e, onr_err *err)
{
    return onr_fuse_sweep(e, cln_match, NULL, err);
}
