/*
 * fuse_gemm.c - a matrix product's bias and activation move into the GEMM
 * epilogue: FusedMatMul (org.onnxrun, opset 1; defined in ops/matmul.c).
 *
 *   MatMul(A, B)                         B: any (a constant 2-D B is
 *     [Transpose(B, perm [1, 0])]           prepacked once at create); a
 *                                           2-D Transpose of B feeding only
 *                                           this MatMul becomes trans_b
 *   [Add(., bias) | Add(bias, .)]        bias constant, N elements, shape
 *                                           [N] or [1, ..., 1, N] of rank <=
 *                                           the product's (a per-column
 *                                           bias; [M, N] is not one)
 *   [Relu | Gelu | Sigmoid | Clip        Clip with constant (or absent)
 *    | Mul(., Sigmoid(.))]                  bounds, or opset < 11 attributes;
 *                                           x * sigmoid(x) is SiLU
 *   [Add(., R) | Add(R, .)]              a residual R of exactly the
 *                                           product's static shape (any
 *                                           value: the skip connection)
 *   -> FusedMatMul(A, B, bias, R) trans_b, activation, approximate,
 *      clip_min, clip_max
 *
 *   Gemm(A, B, C) with alpha 1, transA 0, beta 1 (or no C), C a constant
 *   per-column bias, followed by one of the activations
 *   -> FusedMatMul(A, B, C) trans_b = transB, activation
 *
 * Every intermediate must be read only inside the pattern (a MatMul output
 * also read elsewhere keeps its Add), all values float32 (16-bit types
 * would round differently from the unfused graph), and something must
 * fuse: a bare MatMul stays MatMul. Runs after the Gelu pass, so a Gelu
 * written out in elementary ops is one Gelu node by then, and after
 * SkipLayerNormalization, which may have taken a bias Add already.
 */
#include <math.h>
#include <string.h>

#include "plan/fuse.h"
#include "plan/passes.h"

static int is_f32(const onr_edit *e, int v) { return onr_fuse_dtype(e, v) == ONR_FLOAT; }
/* float32, or not known (shape inference stops at symbolic dims): for the
 * results of ops whose output type is their input's */
static int f32_or_unknown(const onr_edit *e, int v)
{
    onr_dtype dt = onr_fuse_dtype(e, v);
    return dt == ONR_FLOAT || dt == ONR_UNDEFINED;
}

/* bias value v fits a product with N columns and rank prank: a constant
 * of N elements, every dim 1 but the last (== N), rank <= prank. */
static int per_column_bias(const onr_edit *e, int v, int64_t N, int prank)
{
    const onr_tensor *t = onr_fuse_const(e, v);
    if (!t || t->dtype != ONR_FLOAT || t->rank < 1 || t->rank > prank || t->numel != N) return 0;
    return t->dims[t->rank - 1] == N;
}

/* The activation node `a` reading v: fills the FusedMatMul attributes;
 * 1 when it is one the epilogue computes. */
typedef struct gm_act {
    const char *name;      /* activation attribute */
    const char *approx;    /* Gelu's approximate */
    float lo, hi;          /* Clip */
    int clip;
} gm_act;

static int match_act(const onr_edit *e, int a, int v, gm_act *act)
{
    memset(act, 0, sizeof *act);
    if (a < 0) return 0;
    const onr_node *n = &e->g->nodes[a];
    if (n->n_in < 1 || n->inputs[0] != v || n->n_out != 1 || !f32_or_unknown(e, n->outputs[0]))
        return 0;
    if (onr_fuse_is(e, a, "Relu") && n->n_in == 1) {
        act->name = "Relu";
    } else if (onr_fuse_is(e, a, "Sigmoid") && n->n_in == 1) {
        act->name = "Sigmoid";
    } else if (onr_fuse_is(e, a, "Gelu") && n->n_in == 1) {
        const char *ap = onr_attr_string(n, "approximate", "none");
        if (strcmp(ap, "none") != 0 && strcmp(ap, "tanh") != 0) return 0;
        act->name = "Gelu";
        act->approx = ap;
    } else if (onr_fuse_is(e, a, "Clip")) {
        act->name = "Clip";
        act->clip = 1;
        act->lo = -INFINITY;
        act->hi = INFINITY;
        if (n->opset < 11) {
            if (n->n_in != 1) return 0;
            act->lo = onr_attr_float(n, "min", -3.402823466e+38f);
            act->hi = onr_attr_float(n, "max", 3.402823466e+38f);
        } else {
            double x;
            for (int k = 1; k < n->n_in && k < 3; k++) {
                if (n->inputs[k] < 0) continue;
                const onr_tensor *t = onr_fuse_const(e, n->inputs[k]);
                if (!t || t->dtype != ONR_FLOAT || !onr_fuse_const_scalar(e, n->inputs[k], &x))
                    return 0;
                if (k == 1) act->lo = (float)x;
                else act->hi = (float)x;
            }
            if (n->n_in > 3) return 0;
        }
        if (isnan(act->lo) || isnan(act->hi)) return 0;
    } else {
        return 0;
    }
    return 1;
}

/* SiLU written out: v read by exactly Sigmoid(v) and Mul(v, Sigmoid(v))
 * (either order); fills the two nodes and the Mul's output. */
static int match_silu(const onr_edit *e, int v, int *sig, int *mul, int *out)
{
    if (onr_fuse_n_uses(e, v) != 2) return 0;
    const int *c = onr_edit_consumers(e, v);
    for (int k = 0; k < 2; k++) {
        int s = c[k], m = c[1 - k];
        if (!onr_fuse_is(e, s, "Sigmoid") || !onr_fuse_is(e, m, "Mul")) continue;
        const onr_node *sn = &e->g->nodes[s], *mn = &e->g->nodes[m];
        if (sn->n_in != 1 || sn->n_out != 1 || mn->n_out != 1) continue;
        int o = onr_fuse_other_slot(mn, v);
        if (o < 0 || mn->inputs[o] != sn->outputs[0] || !f32_or_unknown(e, mn->outputs[0]))
            continue;
        *sig = s;
        *mul = m;
        *out = mn->outputs[0];
        return 1;
    }
    return 0;
}

/* v has ref's shape: same rank, static dims equal, symbolic dims of the
 * same name (pass_shapes.c names them; unnamed ones match nothing) (dims:
 * scratch). */
static int same_static_shape(const onr_edit *e, int v, int ref, int64_t *dims)
{
    int64_t rd[ONR_MAX_RANK];
    int r = onr_fuse_shape(e, v, dims), rr = onr_fuse_shape(e, ref, rd);
    if (r < 0 || r != rr) return 0;
    for (int d = 0; d < r; d++)
        if (!onr_fuse_dim_eq(e, v, d, ref, d)) return 0;
    return 1;
}

static int set_attrs(onr_edit *e, int node, int tb, const gm_act *act, onr_err *err)
{
    if (tb && onr_edit_set_attr_int(e, node, "trans_b", 1, err)) return -1;
    if (!act->name) return 0;
    if (onr_edit_set_attr_string(e, node, "activation", act->name, err)) return -1;
    if (act->approx && onr_edit_set_attr_string(e, node, "approximate", act->approx, err))
        return -1;
    if (act->clip) {
        /* the kernel's bounds are floats; +-inf clips nothing, like the largest float */
        float lo = isinf(act->lo) ? -3.402823466e+38f : act->lo;
        float hi = isinf(act->hi) ? 3.402823466e+38f : act->hi;
        if (onr_edit_set_attr_float(e, node, "clip_min", lo, err) ||
            onr_edit_set_attr_float(e, node, "clip_max", hi, err))
            return -1;
    }
    return 0;
}

/* MatMul at node m. */
static int fuse_matmul(onr_edit *e, int m, onr_err *err)
{
    const onr_node *mn = &e->g->nodes[m];
    if (mn->n_in != 2 || mn->n_out != 1) return 0;
    int a = mn->inputs[0], b = mn->inputs[1], y = mn->outputs[0];
    if (!is_f32(e, a) || !is_f32(e, b) || !f32_or_unknown(e, y)) return 0;
    /* N from B (its last dim must be known; a 1-D B drops N); the product's
     * rank from A's and B's (dims may be symbolic) */
    int64_t adims[ONR_MAX_RANK], bdims[ONR_MAX_RANK];
    int arank = onr_fuse_shape(e, a, adims), brank = onr_fuse_shape(e, b, bdims);
    if (arank < 1 || brank < 2) return 0;
    int64_t N = bdims[brank - 1];
    int yrank = arank == 1 ? brank - 1 : arank > brank ? arank : brank; /* numpy */
    if (N < 0) return 0;
    int nodes[6], k = 0, tb = 0, bsrc = b;
    nodes[k++] = m;
    /* a 2-D Transpose of a non-constant B read only here: trans_b */
    int t = onr_fuse_src(e, b, "Transpose");
    if (t >= 0 && a != b && !onr_fuse_is_const(e, b) && brank == 2 &&
        onr_fuse_sole_consumer(e, b) == m) {
        const onr_node *tn = &e->g->nodes[t];
        size_t np = 0;
        const int64_t *perm = onr_attr_ints(tn, "perm", &np);
        /* no perm reverses the dims: [1, 0] for 2-D */
        if (tn->n_in == 1 && (!perm || (np == 2 && perm[0] == 1 && perm[1] == 0))) {
            bsrc = tn->inputs[0];
            tb = 1;
            nodes[k++] = t;
        }
    }
    int out = y, bias = -1;
    int c = onr_fuse_sole_consumer(e, y);
    if (onr_fuse_is(e, c, "Add")) {
        const onr_node *an = &e->g->nodes[c];
        int o = onr_fuse_other_slot(an, y);
        if (o >= 0 && per_column_bias(e, an->inputs[o], N, yrank) &&
            f32_or_unknown(e, an->outputs[0])) {
            bias = an->inputs[o];
            out = an->outputs[0];
            nodes[k++] = c;
            c = onr_fuse_sole_consumer(e, out);
        }
    }
    gm_act act;
    int sig, mul, sout, k_noact = k, out_noact = out;
    if (match_act(e, c, out, &act)) {
        out = e->g->nodes[c].outputs[0];
        nodes[k++] = c;
    } else if (match_silu(e, out, &sig, &mul, &sout)) {
        memset(&act, 0, sizeof act);
        act.name = "Silu";
        out = sout;
        nodes[k++] = sig;
        nodes[k++] = mul;
    } else {
        memset(&act, 0, sizeof act);
    }
    if (k > k_noact && !onr_fuse_closed(e, nodes, k, &out, 1)) {
        /* the activation's intermediate is read elsewhere: leave it out */
        k = k_noact;
        out = out_noact;
        memset(&act, 0, sizeof act);
    }
    /* a residual Add of exactly the product's shape: act(v) + R */
    int res = -1, ra = onr_fuse_sole_consumer(e, out);
    if (onr_fuse_is(e, ra, "Add")) {
        const onr_node *rn = &e->g->nodes[ra];
        int o = onr_fuse_other_slot(rn, out);
        int64_t rd[ONR_MAX_RANK], od[ONR_MAX_RANK];
        if (o >= 0 && is_f32(e, rn->inputs[o]) && is_f32(e, rn->outputs[0]) &&
            same_static_shape(e, rn->inputs[o], y, rd) &&
            same_static_shape(e, rn->outputs[0], y, od)) {
            int out2 = rn->outputs[0];
            nodes[k++] = ra;
            if (onr_fuse_closed(e, nodes, k, &out2, 1)) {
                res = rn->inputs[o];
                out = out2;
            } else {
                k--;
            }
        }
    }
    if (k == 1) return 0;
    if (!onr_fuse_closed(e, nodes, k, &out, 1)) return 0;
    int ins[4] = {a, bsrc, bias, res};
    int node = onr_fuse_emit(e, "FusedMatMul", ONR_FUSE_DOMAIN, 1,
                             res >= 0 ? 4 : bias >= 0 ? 3 : 2, ins, 1, &out, nodes, k, err);
    if (node < 0 || set_attrs(e, node, tb, &act, err)) return -1;
    return 1;
}

/* Gemm at node g followed by an activation. */
static int fuse_gemm_act(onr_edit *e, int g, onr_err *err)
{
    const onr_node *gn = &e->g->nodes[g];
    if (gn->n_in < 2 || gn->n_in > 3 || gn->n_out != 1 || gn->opset < 11) return 0;
    int a = gn->inputs[0], b = gn->inputs[1], cv = gn->n_in > 2 ? gn->inputs[2] : -1;
    int y = gn->outputs[0];
    if (!is_f32(e, a) || !is_f32(e, b) || !f32_or_unknown(e, y)) return 0;
    if (onr_attr_int(gn, "transA", 0) != 0 || onr_attr_float(gn, "alpha", 1.f) != 1.f) return 0;
    float beta = onr_attr_float(gn, "beta", 1.f);
    int tb = onr_attr_int(gn, "transB", 0) != 0;
    int64_t bdims[ONR_MAX_RANK];
    if (onr_fuse_shape(e, b, bdims) != 2 || bdims[tb ? 0 : 1] < 0) return 0; /* N known */
    if (cv >= 0) {
        if (beta == 0.f) cv = -1; /* beta 0 ignores C */
        else if (beta != 1.f || !per_column_bias(e, cv, bdims[tb ? 0 : 1], 2)) return 0;
    }
    int c = onr_fuse_sole_consumer(e, y);
    gm_act act;
    if (!match_act(e, c, y, &act)) return 0;
    int nodes[2] = {g, c}, out = e->g->nodes[c].outputs[0];
    if (!onr_fuse_closed(e, nodes, 2, &out, 1)) return 0;
    int ins[3] = {a, b, cv};
    int node = onr_fuse_emit(e, "FusedMatMul", ONR_FUSE_DOMAIN, 1, cv >= 0 ? 3 : 2, ins, 1, &out,
                             nodes, 2, err);
    if (node < 0 || set_attrs(e, node, tb, &act, err)) return -1;
    return 1;
}

static int fuse_gemm_at(onr_edit *e, int i, void *ctx, onr_err *err)
{
    (void)ctx;
    if (onr_fuse_is(e, i, "MatMul")) return fuse_matmul(e, i, err);
    if (onr_fuse_is(e, i, "Gemm")) return fuse_gemm_act(e, i, err);
    return 0;
}

onr_status onr_pass_fuse_gemm(onr_edit *e, onr_err *err)
{
    return onr_fuse_sweep(e, fuse_gemm_at, NULL, err);
}
