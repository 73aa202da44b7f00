/*
 * fuse_rmsnorm.c - RMS normalization as exporters write it, fused into
 * RMSNormalization (ai.onnx opset 23):
 *
 *   x' = Cast(X)?                         (HF llama: .to(float32))
 *   P  = Pow(x', 2) | Mul(x', x')
 *   M  = ReduceMean(P, axes = trailing, keepdims = 1)  (axes attribute < 18, input 18+)
 *   A  = Add(M, eps) | Add(eps, M)
 *   S  = Sqrt(A)
 *   N  = Mul(x', Reciprocal(S)) | Mul(x', Div(1, S)) | Div(x', S)   (Mul either way round)
 *   N' = Cast(N)?                         (.to(input_dtype))
 *   Y  = Mul(N', gamma) | Mul(gamma, N')
 *
 * -> Y = RMSNormalization(X, gamma, axis = -(number of reduced axes),
 *                         epsilon = eps, stash_type = type of x').
 *
 * Conditions (else nothing changes): eps, the exponent and the 1 are
 * constant scalars whose rank does not exceed X's; gamma is constant and
 * broadcasts unidirectionally to X's static dims (so Y keeps X's shape);
 * the reduced axes are the trailing ones; keepdims = 1; x' is float or
 * double; Y has X's type (the Casts are no-ops, or float16/bfloat16 X with
 * float stage one, which is exactly the operator's stash_type = 1); every
 * intermediate is read only inside the pattern (the leading Cast too, else
 * it stays and its output is the fused node's X). An X made by
 * Sub(a, ReduceMean(a)) is a decomposed LayerNormalization: left to
 * fuse_norm.c (numerically its tail is an RMS norm, but fusing it here
 * would turn that pass's near-misses into fusions).
 */
#include "plan/fuse.h"
#include "plan/passes.h"

#include <math.h>
#include <string.h>

/* v's producer when it is a Cast with attribute `to`, else -1. */
static int cast_of(const onr_edit *e, int v, int64_t *to)
{
    int c = onr_fuse_src(e, v, "Cast");
    if (c < 0 || e->g->nodes[c].n_in != 1) return -1;
    *to = onr_attr_int(&e->g->nodes[c], "to", 0);
    return c;
}

/* A constant scalar whose rank cannot widen a result of rank r. */
static int scalar_le(const onr_edit *e, int v, int r, double *x)
{
    const onr_tensor *t = onr_fuse_const(e, v);
    return t && t->rank <= r && onr_fuse_const_scalar(e, v, x);
}

/* The reduced axes of ReduceMean node m as the count of trailing axes of
 * a rank-r input (r may be -1: then they must be negative), or 0. */
static int trailing_axes(const onr_edit *e, int m, int r)
{
    const onr_node *n = &e->g->nodes[m];
    if (onr_attr_int(n, "keepdims", 1) != 1) return 0;
    int64_t ax[ONR_MAX_RANK];
    size_t cnt = 0;
    if (n->opset >= 18) {
        if (n->n_in < 2 || n->inputs[1] < 0) return 0;
        const onr_tensor *t = onr_fuse_const(e, n->inputs[1]);
        if (!t || t->dtype != ONR_INT64 || t->rank > 1 || t->numel < 1 || t->numel > ONR_MAX_RANK) return 0;
        cnt = (size_t)t->numel;
        memcpy(ax, t->data, sizeof(int64_t) * cnt);
    } else {
        if (n->n_in != 1) return 0;
        const int64_t *a = onr_attr_ints(n, "axes", &cnt);
        if (!a || cnt < 1 || cnt > ONR_MAX_RANK) return 0;
        memcpy(ax, a, sizeof(int64_t) * cnt);
    }
    /* as negative axes, each once, forming -cnt..-1 */
    int seen[ONR_MAX_RANK + 1] = {0};
    for (size_t i = 0; i < cnt; i++) {
        int64_t a = ax[i];
        if (a >= 0) {
            if (r < 0 || a >= r) return 0;
            a -= r;
        }
        if (a < -(int64_t)cnt || a > -1 || (r >= 0 && a < -r)) return 0;
        if (seen[-a]++) return 0;
    }
    return (int)cnt;
}

/* The normalization: N = x' * (1/S) or x' / S; fills x' and S's node. */
static int match_norm(const onr_edit *e, int nn, int r, int *xv, int *sqrt_node, int *recip_node)
{
    const onr_node *n = &e->g->nodes[nn];
    if (n->n_in != 2) return 0;
    double one;
    if (onr_fuse_is(e, nn, "Div")) {
        int s = onr_fuse_src(e, n->inputs[1], "Sqrt");
        if (s < 0) return 0;
        *xv = n->inputs[0];
        *sqrt_node = s;
        *recip_node = -1;
        return 1;
    }
    if (!onr_fuse_is(e, nn, "Mul")) return 0;
    for (int k = 0; k < 2; k++) {
        int rv = n->inputs[k];
        int rc = onr_fuse_src(e, rv, "Reciprocal"), s = -1;
        if (rc >= 0 && e->g->nodes[rc].n_in == 1) {
            s = onr_fuse_src(e, e->g->nodes[rc].inputs[0], "Sqrt");
        } else if ((rc = onr_fuse_src(e, rv, "Div")) >= 0 && e->g->nodes[rc].n_in == 2 &&
                   scalar_le(e, e->g->nodes[rc].inputs[0], r, &one) && one == 1.0) {
            s = onr_fuse_src(e, e->g->nodes[rc].inputs[1], "Sqrt");
        }
        if (s < 0) continue;
        *xv = n->inputs[1 - k];
        *sqrt_node = s;
        *recip_node = rc;
        return 1;
    }
    return 0;
}

/* gamma (constant) broadcasts unidirectionally to static dims xd[0..r). */
static int gamma_ok(const onr_edit *e, int gv, int r, const int64_t *xd)
{
    const onr_tensor *g = onr_fuse_const(e, gv);
    if (!g || g->rank > r) return 0;
    for (int d = 0; d < g->rank; d++) {
        int64_t want = xd[r - g->rank + d];
        if (g->dims[d] != 1 && g->dims[d] != want) return 0;
        if (g->dims[d] != 1 && want < 0) return 0;
    }
    return 1;
}

/* v = Sub(a, ReduceMean(a)): a LayerNormalization's centring, whose chain
 * is fuse_norm.c's to fuse (or to leave, as its near-misses expect). */
static int centred(const onr_edit *e, int v)
{
    int s = onr_fuse_src(e, v, "Sub");
    if (s < 0 || e->g->nodes[s].n_in != 2) return 0;
    int m = onr_fuse_src(e, e->g->nodes[s].inputs[1], "ReduceMean");
    return m >= 0 && e->g->nodes[m].inputs[0] == e->g->nodes[s].inputs[0];
}

static int try_gamma(onr_edit *e, int mul, int gv, int nv, onr_err *err)
{
    int nodes[10], nn = 0;
    nodes[nn++] = mul;
    /* nv is the normalized side; from here on it walks up the chain */
    onr_dtype tout = onr_fuse_dtype(e, e->g->nodes[mul].outputs[0]);
    int64_t to = 0;
    int cast_out = cast_of(e, nv, &to);
    if (cast_out >= 0) {
        nodes[nn++] = cast_out;
        nv = e->g->nodes[cast_out].inputs[0];
    }
    int norm = onr_fuse_producer(e, nv);
    if (norm < 0) return 0;
    int64_t xd[ONR_MAX_RANK];
    int xv = -1, sq = -1, rc = -1;
    /* rank from the normalized value (same shape as x') */
    int r = onr_fuse_shape(e, nv, xd);
    if (r < 1 || !match_norm(e, norm, r, &xv, &sq, &rc)) return 0;
    nodes[nn++] = norm;
    if (rc >= 0) nodes[nn++] = rc;
    nodes[nn++] = sq;
    int add = onr_fuse_src(e, e->g->nodes[sq].inputs[0], "Add");
    if (add < 0 || e->g->nodes[add].n_in != 2) return 0;
    nodes[nn++] = add;
    double eps = 0, two = 0;
    int rm = -1;
    for (int k = 0; k < 2 && rm < 0; k++) {
        int m = onr_fuse_src(e, e->g->nodes[add].inputs[k], "ReduceMean");
        if (m >= 0 && scalar_le(e, e->g->nodes[add].inputs[1 - k], r, &eps)) rm = m;
    }
    if (rm < 0 || !isfinite(eps) || eps < 0) return 0;
    nodes[nn++] = rm;
    int naxes = trailing_axes(e, rm, r);
    if (naxes < 1) return 0;
    int pw = onr_fuse_producer(e, e->g->nodes[rm].inputs[0]);
    if (pw < 0) return 0;
    const onr_node *p = &e->g->nodes[pw];
    if (onr_fuse_is(e, pw, "Pow") && p->n_in == 2 && p->inputs[0] == xv) {
        if (!scalar_le(e, p->inputs[1], r, &two) || two != 2.0) return 0;
    } else if (!(onr_fuse_is(e, pw, "Mul") && p->n_in == 2 && p->inputs[0] == xv && p->inputs[1] == xv)) {
        return 0;
    }
    nodes[nn++] = pw;
    /* types */
    onr_dtype u = onr_fuse_dtype(e, xv);
    if (u != ONR_FLOAT && u != ONR_DOUBLE) return 0;
    if (cast_out >= 0 ? to != tout : u != tout) return 0;
    /* X: through a leading Cast when it belongs to the pattern */
    int x = xv, cast_in = cast_of(e, xv, &to);
    int keep[1] = {e->g->nodes[mul].outputs[0]};
    if (cast_in >= 0) {
        int xin = e->g->nodes[cast_in].inputs[0];
        onr_dtype xt = onr_fuse_dtype(e, xin);
        int ok = xt == tout && (xt == u || (u == ONR_FLOAT && (xt == ONR_FLOAT16 || xt == ONR_BFLOAT16)));
        nodes[nn] = cast_in;
        if (ok && onr_fuse_closed(e, nodes, nn + 1, keep, 1)) {
            x = xin;
            nn++;
        }
    }
    if (x == xv && u != tout) return 0; /* the fused op's stage two runs in X's type */
    if (centred(e, x) || centred(e, xv)) return 0;
    if (!onr_fuse_closed(e, nodes, nn, keep, 1)) return 0;
    if (!gamma_ok(e, gv, r, xd)) return 0;
    int ins[2] = {x, gv}, outs[1] = {keep[0]};
    /* replaced nodes in graph order, the anchor last */
    int rep[10], nr = 0;
    for (int k = nn - 1; k >= 0; k--) rep[nr++] = nodes[k];
    int f = onr_fuse_emit(e, "RMSNormalization", "", 23, 2, ins, 1, outs, rep, nr, err);
    if (f < 0) return -1;
    if (onr_edit_set_attr_int(e, f, "axis", -naxes, err) ||
        onr_edit_set_attr_float(e, f, "epsilon", (float)eps, err) ||
        onr_edit_set_attr_int(e, f, "stash_type", u, err))
        return -1;
    return 1;
}

static int match(onr_edit *e, int node, void *ctx, onr_err *err)
{
    (void)ctx;
    if (!onr_fuse_is(e, node, "Mul")) return 0;
    const onr_node *m = &e->g->nodes[node];
    if (m->n_in != 2 || m->n_out != 1 || m->inputs[0] == m->inputs[1]) return 0;
    for (int k = 0; k < 2; k++) {
        if (!onr_fuse_const(e, m->inputs[k])) continue;
        int r = try_gamma(e, node, m->inputs[k], m->inputs[1 - k], err);
        if (r) return r;
    }
    return 0;
}

onr_status onr_pass_fuse_rmsnorm(onr_edit *e, onr_err *err)
{
    return onr_fuse_sweep(e, match, NULL, err);
}
