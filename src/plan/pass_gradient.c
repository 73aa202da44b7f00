/*
 * pass_gradient.c - Gradient (ai.onnx.preview.training, opset 1) expanded
 * into ordinary nodes, before operators are resolved (see passes.h).
 *
 * Gradient(X1..Xn, Z1..Zm) with attributes xs (n names), zs (m names) and
 * y gives dY/dXi: the named tensors define a sub-graph of the Gradient's
 * own graph - the nodes y depends on, traced back until a value named in
 * xs or zs, a constant (initializer, or the output of a node with no
 * inputs such as Constant) - and the node's inputs are the values at which
 * it is differentiated. Each Gradient node becomes:
 *
 *  1. the forward sub-graph, fed by the node's inputs: a node none of whose
 *     inputs changed is read as it is (so when every input is the named
 *     tensor itself, the expansion reuses the forward values); the others
 *     are copied (attributes shared) with fresh values;
 *  2. the seed: ones of Y's shape and type (Expand of CastLike(1) to
 *     Shape(Y)), so a non-scalar Y gives the gradient of sum(Y) (the
 *     vector-Jacobian product with ones, as ONNX Runtime's Gradient does);
 *  3. backward nodes per forward node in reverse topological order: each
 *     rule (the table `rules` below) turns the gradient of a node's output
 *     into contributions to its inputs; contributions reaching one value
 *     through several uses are added (Sum). A contribution to an operand
 *     that was broadcast is summed back to its shape by SumToShape
 *     (org.onnxrun, ops/gradient.c);
 *  4. for each output, Identity of Xi's gradient, or zeros of Xi's shape
 *     when Y does not depend on it.
 *
 * Only values that depend on xs through differentiable inputs carry a
 * gradient (activity): a node whose outputs are integers or booleans
 * (Shape, comparisons, ArgMax, a Cast to an integer type) stops it, as do
 * the inputs a rule marks non-differentiable (Reshape's shape, ...). A node
 * on the path with an active input and no rule is refused, naming it. The
 * ranks of intermediate values are not known here (shape inference runs
 * later), so every rule is written for any rank; MatMul assumes operands
 * of rank 2 or more unless an operand is a graph input or a constant of
 * rank 1 (the Einsum it becomes refuses a 1-D operand otherwise).
 * Second-order gradients (a y depending on another Gradient's output) are
 * refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/fuse.h"
#include "plan/passes.h"

#define GRAD_DOMAIN "ai.onnx.preview.training"
/* opset of the ai.onnx nodes the expansion makes (CastLike needs 15;
 * ReduceSum, Unsqueeze and Split take their axes and sizes as inputs) */
#define GRAD_OPSET 15

/* Nodes all of a graph's expansions may add (each is about the size of
 * its sub-graph, so a model of many Gradient nodes over one long chain
 * would grow quadratically): as many as inlining functions may make. */
#define GRAD_MAX_NODES (1 << 20)

enum { ROLE_X = 1, ROLE_Z = 2 };

typedef struct vlist {
    int *v;
    int n, cap;
} vlist;

/* The pass's state. The per-value arrays cover the values there were
 * before the current expansion (only those are traced); each expansion
 * resets the entries it set (touched, sub), so its cost follows the size
 * of its sub-graph, not the graph's. Emitting stops at the first error. */
typedef struct gx {
    onr_edit *e;
    onr_err *err;
    int st;
    char gname[256];  /* the Gradient node's name (nodes move as nodes are added) */
    int n_orig;       /* nodes before any expansion: later ones were made by one */
    int cap;          /* entries of the per-value arrays */
    uint8_t *role;    /* per value: ROLE_X / ROLE_Z when named in xs / zs */
    uint8_t *seen;    /* per value: visited by the trace */
    uint8_t *active;  /* per value: depends on xs through differentiable inputs */
    int *fwd;         /* per value: what the expansion reads for it (itself or a copy) */
    vlist *grad;      /* per value: gradient contributions */
    uint8_t *in_sub;  /* per node (n_orig): in the differentiated sub-graph */
    vlist sub;        /* its nodes, in ascending (topological) order */
    vlist touched;    /* values whose entries the expansion set */
    onr_names names;  /* the values' names, as loaded */
    int last;         /* the node emit made last (for its attributes) */
    int serial;       /* for unique names */
} gx;

static int fail(gx *x, onr_status code, const char *fmt, const char *a, const char *b)
{
    if (!x->st) x->st = onr_seterr(x->err, code, fmt, x->gname, a, b);
    return -1;
}

static int nomem(gx *x)
{
    if (!x->st) x->st = onr_seterr(x->err, ONR_E_NOMEM, "out of memory");
    return -1;
}

/* Whether one more node may be added (else the error is set). */
static int room(gx *x)
{
    if (x->st) return 0;
    if (x->e->g->n_nodes - x->n_orig < GRAD_MAX_NODES) return 1;
    x->st = onr_seterr(x->err, ONR_E_MODEL,
                       "Gradient '%s': expanding the graph's Gradient nodes makes more than %d "
                       "nodes",
                       x->gname, GRAD_MAX_NODES);
    return 0;
}

/* ---- emitting nodes ------------------------------------------------------- */

/* A node of op (ai.onnx at GRAD_OPSET, or `domain` at opset 1) with inputs
 * in[0..n_in) and n_out outputs: out[k] when out is given and out[k] >= 0,
 * else a new value (written to out[k]). Returns output 0, or -1 after an
 * error. */
static int emit_in(gx *x, const char *op, const char *domain, int n_in, const int *in, int n_out,
                   int *out)
{
    if (!room(x)) return -1;
    char name[400];
    snprintf(name, sizeof name, "%s/%s_%d", x->gname, op, ++x->serial);
    int one = -1, *o = out ? out : &one;
    for (int k = 0; k < n_out; k++) {
        if (o[k] >= 0) continue;
        char vn[420];
        snprintf(vn, sizeof vn, "%s:%d", name, k);
        if ((o[k] = onr_edit_add_value(x->e, vn, x->err)) < 0) return nomem(x);
    }
    int i = onr_edit_add_node(x->e, op, domain, name, n_in, in, n_out, o, x->err);
    if (i < 0) return nomem(x);
    x->e->g->nodes[i].opset = domain ? 1 : GRAD_OPSET;
    x->last = i;
    return o[0];
}

static int emit(gx *x, const char *op, int n_in, const int *in)
{
    return emit_in(x, op, NULL, n_in, in, 1, NULL);
}

static int op1(gx *x, const char *op, int a) { return emit(x, op, 1, &a); }

static int op2(gx *x, const char *op, int a, int b)
{
    const int in[2] = {a, b};
    return emit(x, op, 2, in);
}

/* Attributes of the node emit made last. */
static void attr_int(gx *x, const char *name, int64_t v)
{
    if (!x->st) x->st = onr_edit_set_attr_int(x->e, x->last, name, v, x->err);
}

static void attr_float(gx *x, const char *name, float v)
{
    if (!x->st) x->st = onr_edit_set_attr_float(x->e, x->last, name, v, x->err);
}

/* A new constant value holding t (taken). */
static int konst(gx *x, onr_tensor *t)
{
    if (x->st || !t) {
        onr_tensor_free(t);
        return x->st ? -1 : nomem(x);
    }
    int v = onr_fuse_add_const(x->e, x->gname, t, x->err);
    return v < 0 ? nomem(x) : v;
}

/* A 1-D int64 constant (axes, indices). */
static int konst_ints(gx *x, const int64_t *v, int n)
{
    const int64_t d = n;
    onr_tensor *t = onr_tensor_new(ONR_INT64, 1, &d);
    if (t) memcpy(t->data, v, (size_t)n * sizeof *v);
    return konst(x, t);
}

/* The scalar c in the element type of value like. */
static int scalar_like(gx *x, double c, int like)
{
    onr_tensor *t = onr_tensor_new(ONR_FLOAT, 0, NULL);
    if (t) *(float *)t->data = (float)c;
    return op2(x, "CastLike", konst(x, t), like);
}

/* c everywhere, in v's shape and type. */
static int fill_like(gx *x, double c, int v)
{
    return op2(x, "Expand", scalar_like(x, c, v), op1(x, "Shape", v));
}

/* g summed over the axes along which v was broadcast to g's shape. */
static int sum_to(gx *x, int g, int v)
{
    const int in[2] = {g, v};
    return emit_in(x, "SumToShape", ONR_FUSE_DOMAIN, 2, in, 1, NULL);
}

/* ---- gradients ------------------------------------------------------------ */

static void vlist_add(gx *x, vlist *l, int v)
{
    if (v < 0) return;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 4;
        int *nv = realloc(l->v, (size_t)cap * sizeof *nv);
        if (!nv) {
            nomem(x);
            return;
        }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
}

/* The gradient of value v (of the loaded graph): its contributions added
 * (once: the sum replaces them), or -1 when nothing reached v. */
static int grad_of(gx *x, int v)
{
    vlist *l = &x->grad[v];
    if (l->n <= 1) return l->n ? l->v[0] : -1;
    int s = emit(x, "Sum", l->n, l->v);
    l->n = 0;
    vlist_add(x, l, s);
    return s;
}

/* What a rule sees: the forward node, the values the expansion reads for
 * its inputs (in[k], -1 when omitted) and output (y), and y's gradient. */
typedef struct rule_ctx {
    const onr_node *n;
    const int *in;
    int y, gy;
} rule_ctx;

/* Input k carries a gradient (is present and active). */
static int need(const gx *x, const rule_ctx *r, int k)
{
    return k < r->n->n_in && r->n->inputs[k] >= 0 && x->active[r->n->inputs[k]];
}

/* Contribution d to input k's gradient. */
static void give(gx *x, const rule_ctx *r, int k, int d)
{
    if (need(x, r, k)) vlist_add(x, &x->grad[r->n->inputs[k]], d);
}

typedef void (*rule_fn)(gx *x, const rule_ctx *r);

static void r_identity(gx *x, const rule_ctx *r) { give(x, r, 0, r->gy); }
static void r_neg(gx *x, const rule_ctx *r) { give(x, r, 0, op1(x, "Neg", r->gy)); }

static void r_add(gx *x, const rule_ctx *r)
{
    for (int k = 0; k < 2; k++)
        if (need(x, r, k)) give(x, r, k, sum_to(x, r->gy, r->in[k]));
}

static void r_sub(gx *x, const rule_ctx *r)
{
    if (need(x, r, 0)) give(x, r, 0, sum_to(x, r->gy, r->in[0]));
    if (need(x, r, 1)) give(x, r, 1, sum_to(x, op1(x, "Neg", r->gy), r->in[1]));
}

static void r_mul(gx *x, const rule_ctx *r)
{
    for (int k = 0; k < 2; k++)
        if (need(x, r, k)) give(x, r, k, sum_to(x, op2(x, "Mul", r->gy, r->in[1 - k]), r->in[k]));
}

/* y = a / b: da = g / b, db = -g y / b */
static void r_div(gx *x, const rule_ctx *r)
{
    if (need(x, r, 0)) give(x, r, 0, sum_to(x, op2(x, "Div", r->gy, r->in[1]), r->in[0]));
    if (need(x, r, 1)) {
        int d = op2(x, "Div", op2(x, "Mul", r->gy, r->y), r->in[1]);
        give(x, r, 1, sum_to(x, op1(x, "Neg", d), r->in[1]));
    }
}

static void r_sum(gx *x, const rule_ctx *r)
{
    for (int k = 0; k < r->n->n_in; k++)
        if (need(x, r, k)) give(x, r, k, sum_to(x, r->gy, r->in[k]));
}

/* y = sqrt(x): dx = g / (2 y) */
static void r_sqrt(gx *x, const rule_ctx *r)
{
    give(x, r, 0, op2(x, "Div", r->gy, op2(x, "Add", r->y, r->y)));
}

static void r_exp(gx *x, const rule_ctx *r) { give(x, r, 0, op2(x, "Mul", r->gy, r->y)); }
static void r_log(gx *x, const rule_ctx *r) { give(x, r, 0, op2(x, "Div", r->gy, r->in[0])); }

/* y = a^p: da = g p a^(p-1), dp = g y log(a) (in p's type: Pow's exponent
 * may have another) */
static void r_pow(gx *x, const rule_ctx *r)
{
    int a = r->in[0], p = r->in[1];
    if (need(x, r, 0)) {
        int pm1 = op2(x, "Sub", p, scalar_like(x, 1, p));
        int d = op2(x, "Mul", op2(x, "Mul", r->gy, op2(x, "CastLike", p, a)), op2(x, "Pow", a, pm1));
        give(x, r, 0, sum_to(x, d, a));
    }
    if (need(x, r, 1)) {
        int d = op2(x, "Mul", op2(x, "Mul", r->gy, r->y), op1(x, "Log", a));
        give(x, r, 1, op2(x, "CastLike", sum_to(x, d, p), p));
    }
}

/* dx = g where x > 0, else 0 */
static void r_relu(gx *x, const rule_ctx *r)
{
    int pos = op2(x, "Greater", r->in[0], scalar_like(x, 0, r->in[0]));
    const int in[3] = {pos, r->gy, scalar_like(x, 0, r->gy)};
    give(x, r, 0, emit(x, "Where", 3, in));
}

/* dx = g y (1 - y) */
static void r_sigmoid(gx *x, const rule_ctx *r)
{
    int d = op2(x, "Mul", r->y, op2(x, "Sub", scalar_like(x, 1, r->y), r->y));
    give(x, r, 0, op2(x, "Mul", r->gy, d));
}

/* dx = g (1 - y^2) */
static void r_tanh(gx *x, const rule_ctx *r)
{
    int d = op2(x, "Sub", scalar_like(x, 1, r->y), op2(x, "Mul", r->y, r->y));
    give(x, r, 0, op2(x, "Mul", r->gy, d));
}

static void r_abs(gx *x, const rule_ctx *r)
{
    give(x, r, 0, op2(x, "Mul", r->gy, op1(x, "Sign", r->in[0])));
}

/* Cast between float types: the gradient goes back to the input's type. */
static void r_cast(gx *x, const rule_ctx *r) { give(x, r, 0, op2(x, "CastLike", r->gy, r->in[0])); }

/* Reshape, Flatten, Squeeze, Unsqueeze: the gradient in the input's shape. */
static void r_reshape(gx *x, const rule_ctx *r)
{
    give(x, r, 0, op2(x, "Reshape", r->gy, op1(x, "Shape", r->in[0])));
}

/* Rank of v when it is sure here (a graph input or a constant), else -1:
 * declared shapes of intermediate values are never trusted. */
static int sure_rank(const gx *x, int v)
{
    const onr_value *val = &x->e->g->values[v];
    return val->konst ? val->konst->rank : val->is_input ? val->rank : -1;
}

static int einsum(gx *x, const char *equation, int a, int b)
{
    int d = op2(x, "Einsum", a, b);
    if (!x->st) x->st = onr_edit_set_attr_string(x->e, x->last, "equation", equation, x->err);
    return d;
}

/* Y = A B with numpy batch broadcasting: dA = g B^T, dB = A^T g, each
 * summed to its operand's shape. A 1-D operand known as such is made 2-D
 * first (A [K] -> [1,K], B [K] -> [K,1], g unsqueezed to match). */
static void r_matmul(gx *x, const rule_ctx *r)
{
    int a = r->in[0], b = r->in[1], g = r->gy;
    int a1 = sure_rank(x, a) == 1, b1 = sure_rank(x, b) == 1;
    const int64_t first = 0, last = -1, second_last = -2, one = 1;
    if (b1) {
        b = op2(x, "Unsqueeze", b, konst_ints(x, &one, 1));
        g = op2(x, "Unsqueeze", g, konst_ints(x, &last, 1));
    }
    if (a1) {
        a = op2(x, "Unsqueeze", a, konst_ints(x, &first, 1));
        g = op2(x, "Unsqueeze", g, konst_ints(x, &second_last, 1));
    }
    if (need(x, r, 0)) {
        int d = sum_to(x, einsum(x, "...ij,...kj->...ik", g, b), a);
        give(x, r, 0, a1 ? op2(x, "Reshape", d, op1(x, "Shape", r->in[0])) : d);
    }
    if (need(x, r, 1)) {
        int d = sum_to(x, einsum(x, "...ik,...ij->...kj", a, g), b);
        give(x, r, 1, b1 ? op2(x, "Reshape", d, op1(x, "Shape", r->in[1])) : d);
    }
}

/* Y = alpha A' B' + beta C (A' = A^T when transA, B' likewise): Gemm
 * again for A and B, beta g summed to C's shape. */
static void r_gemm(gx *x, const rule_ctx *r)
{
    const onr_node *n = r->n;
    float alpha = onr_attr_float(n, "alpha", 1.f), beta = onr_attr_float(n, "beta", 1.f);
    int ta = onr_attr_int(n, "transA", 0) != 0, tb = onr_attr_int(n, "transB", 0) != 0;
    int a = r->in[0], b = r->in[1], g = r->gy;
    if (need(x, r, 0)) { /* dA' = alpha g B'^T; dA is dA' or its transpose */
        int d;
        if (ta) {
            d = op2(x, "Gemm", b, g);
            attr_int(x, "transA", tb);
            attr_int(x, "transB", 1);
        } else {
            d = op2(x, "Gemm", g, b);
            attr_int(x, "transB", !tb);
        }
        if (alpha != 1.f) attr_float(x, "alpha", alpha);
        give(x, r, 0, d);
    }
    if (need(x, r, 1)) { /* dB' = alpha A'^T g */
        int d;
        if (tb) {
            d = op2(x, "Gemm", g, a);
            attr_int(x, "transA", 1);
            attr_int(x, "transB", ta);
        } else {
            d = op2(x, "Gemm", a, g);
            attr_int(x, "transA", !ta);
        }
        if (alpha != 1.f) attr_float(x, "alpha", alpha);
        give(x, r, 1, d);
    }
    if (need(x, r, 2)) {
        int d = beta == 1.f ? g : op2(x, "Mul", g, scalar_like(x, beta, g));
        give(x, r, 2, sum_to(x, d, r->in[2]));
    }
}

static void r_transpose(gx *x, const rule_ctx *r)
{
    size_t n = 0;
    const int64_t *perm = onr_attr_ints(r->n, "perm", &n);
    int64_t inv[ONR_MAX_RANK];
    int ok = n <= ONR_MAX_RANK;
    for (size_t i = 0; ok && i < n; i++) inv[i] = -1;
    for (size_t i = 0; ok && i < n; i++) {
        ok = perm[i] >= 0 && (size_t)perm[i] < n && inv[perm[i]] < 0;
        if (ok) inv[perm[i]] = (int64_t)i;
    }
    if (!ok) {
        fail(x, ONR_E_MODEL, "Gradient '%s': Transpose '%s' has a perm that is not a permutation%s",
             r->n->name, "");
        return;
    }
    int d = op1(x, "Transpose", r->gy);
    if (n && !x->st) x->st = onr_edit_set_attr_ints(x->e, x->last, "perm", inv, n, x->err);
    give(x, r, 0, d);
}

/* The axes of a reduction or Softmax-like node: the attribute (before
 * `input_since`) as a constant, or input 1; -1 when absent. */
static int reduce_axes(gx *x, const rule_ctx *r, int64_t input_since)
{
    if (r->n->opset >= input_since) return r->n->n_in > 1 ? r->in[1] : -1;
    size_t n = 0;
    const int64_t *axes = onr_attr_ints(r->n, "axes", &n);
    return axes && n ? konst_ints(x, axes, (int)n) : -1;
}

/* ReduceSum / ReduceMean: g with the reduced axes restored (keepdims 0),
 * expanded to the input's shape; the mean divides by |x| / |y|. */
static void reduce_grad(gx *x, const rule_ctx *r, int64_t input_since, int mean)
{
    int g = r->gy, axes = reduce_axes(x, r, input_since);
    if (!onr_attr_int(r->n, "keepdims", 1) && axes >= 0) g = op2(x, "Unsqueeze", g, axes);
    int d = op2(x, "Expand", g, op1(x, "Shape", r->in[0]));
    if (mean) {
        int ny = op2(x, "CastLike", op1(x, "Size", r->y), r->gy);
        int nx = op2(x, "CastLike", op1(x, "Size", r->in[0]), r->gy);
        d = op2(x, "Mul", d, op2(x, "Div", ny, nx));
    }
    give(x, r, 0, d);
}

static void r_reduce_sum(gx *x, const rule_ctx *r) { reduce_grad(x, r, 13, 0); }
static void r_reduce_mean(gx *x, const rule_ctx *r) { reduce_grad(x, r, 18, 1); }

/* dx = y (g - sum(g y)) along the softmax axis; before opset 13 the input
 * is seen as 2-D, flattened at axis. */
static void r_softmax(gx *x, const rule_ctx *r)
{
    int v13 = r->n->opset >= 13;
    int64_t axis = onr_attr_int(r->n, "axis", v13 ? -1 : 1), one = 1;
    int g = r->gy, y = r->y;
    if (!v13) {
        g = op1(x, "Flatten", g);
        attr_int(x, "axis", axis);
        y = op1(x, "Flatten", y);
        attr_int(x, "axis", axis);
    }
    int s = op2(x, "ReduceSum", op2(x, "Mul", g, y), konst_ints(x, v13 ? &axis : &one, 1));
    int d = op2(x, "Mul", y, op2(x, "Sub", g, s));
    give(x, r, 0, v13 ? d : op2(x, "Reshape", d, op1(x, "Shape", r->in[0])));
}

/* g split back along the axis, each input's size there from its shape. */
static void r_concat(gx *x, const rule_ctx *r)
{
    int n = r->n->n_in;
    int64_t axis = onr_attr_int(r->n, "axis", r->n->opset < 4 ? 1 : 0);
    int *sizes = malloc(((size_t)n + 1) * sizeof *sizes);
    int *parts = malloc(((size_t)n + 1) * sizeof *parts);
    if (!sizes || !parts) {
        free(sizes), free(parts);
        nomem(x);
        return;
    }
    int at = konst_ints(x, &axis, 1);
    for (int k = 0; k < n; k++) {
        sizes[k] = op2(x, "Gather", op1(x, "Shape", r->in[k]), at);
        parts[k] = -1;
    }
    int split = emit(x, "Concat", n, sizes);
    attr_int(x, "axis", 0);
    const int in[2] = {r->gy, split};
    emit_in(x, "Split", NULL, 2, in, n, parts);
    attr_int(x, "axis", axis);
    for (int k = 0; k < n && !x->st; k++) give(x, r, k, parts[k]);
    free(sizes), free(parts);
}

/* The operators with a gradient: their rule and which inputs are
 * differentiable (bit k: input k; the others carry no gradient). */
typedef struct grad_rule {
    const char *op;
    rule_fn fn;
    uint32_t diff;
} grad_rule;

#define ALL_INPUTS 0xffffffffu
static const grad_rule rules[] = {
    {"Add", r_add, 3},           {"Sub", r_sub, 3},
    {"Mul", r_mul, 3},           {"Div", r_div, 3},
    {"Neg", r_neg, 1},           {"Identity", r_identity, 1},
    {"Sum", r_sum, ALL_INPUTS},  {"Sqrt", r_sqrt, 1},
    {"Exp", r_exp, 1},           {"Log", r_log, 1},
    {"Pow", r_pow, 3},           {"Relu", r_relu, 1},
    {"Sigmoid", r_sigmoid, 1},   {"Tanh", r_tanh, 1},
    {"Abs", r_abs, 1},           {"MatMul", r_matmul, 3},
    {"Gemm", r_gemm, 7},         {"Transpose", r_transpose, 1},
    {"Reshape", r_reshape, 1},   {"Flatten", r_reshape, 1},
    {"Squeeze", r_reshape, 1},   {"Unsqueeze", r_reshape, 1},
    {"ReduceSum", r_reduce_sum, 1}, {"ReduceMean", r_reduce_mean, 1},
    {"Softmax", r_softmax, 1},   {"Cast", r_cast, 1},
    {"Concat", r_concat, ALL_INPUTS},
};

/* Operators whose outputs are integers or booleans: they carry no gradient
 * back, whatever reads them. */
static const char *const no_grad_ops[] = {"Shape", "Size", "Equal", "Less", "Greater",
                                          "LessOrEqual", "GreaterOrEqual", "ArgMax", "ArgMin",
                                          "IsNaN", "IsInf", "NonZero", NULL};

static const grad_rule *find_rule(const onr_node *n)
{
    if (*n->domain) return NULL;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (strcmp(rules[i].op, n->op_type) == 0) return &rules[i];
    return NULL;
}

static int no_grad_op(const onr_node *n)
{
    for (int i = 0; !*n->domain && no_grad_ops[i]; i++)
        if (strcmp(no_grad_ops[i], n->op_type) == 0) return 1;
    return 0;
}

static int is_float_type(int64_t t)
{
    return t >= 0 && t < 32 && (ONR_TYPES_FLOAT >> t & 1u);
}

/* Whether node n (with an active input) makes its outputs active, or -1
 * (error set) when it has no gradient. */
static int node_activity(gx *x, const onr_node *n)
{
    if (no_grad_op(n)) return 0;
    if (!*n->domain && strcmp(n->op_type, "Cast") == 0) {
        const onr_attr *to = onr_node_attr(n, "to");
        return to && to->type == ONR_ATTR_INT && is_float_type(to->i);
    }
    const grad_rule *rule = find_rule(n);
    if (!rule) {
        char what[300];
        snprintf(what, sizeof what, "%s%s%s", n->domain, *n->domain ? "." : "", n->op_type);
        return fail(x, ONR_E_UNSUPPORTED, "Gradient '%s': no gradient for operator '%s' (node '%s')",
                    what, n->name);
    }
    /* before opset 7 the binary operators broadcast by attribute */
    if (n->opset < 7 && onr_attr_int(n, "broadcast", 0))
        return fail(x, ONR_E_UNSUPPORTED,
                    "Gradient '%s': no gradient for operator '%s' with the legacy broadcast "
                    "attribute (node '%s'): opset 7 or later broadcasts as numpy does",
                    n->op_type, n->name);
    return 1;
}

/* ---- one Gradient node ----------------------------------------------------- */

static int is_gradient_op(const onr_node *n)
{
    return strcmp(n->domain, GRAD_DOMAIN) == 0 && strcmp(n->op_type, "Gradient") == 0;
}

/* A Gradient node this pass expands: at an opset its registry row claims
 * (others are left for op resolution to refuse, naming the opset). */
static int is_gradient(const onr_node *n)
{
    return is_gradient_op(n) && onr_op_find(n->domain, n->op_type, n->opset) != NULL;
}

/* The value named by attribute list entry `name` (xs[i], zs[i] or y). */
static int named(gx *x, const char *what, const char *name)
{
    int v = onr_names_find(&x->names, name);
    if (v < 0) return fail(x, ONR_E_MODEL, "Gradient '%s': %s '%s' is not a value of the graph",
                           what, name);
    return v;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Mark the sub-graph y depends on (x->in_sub), stopping at xs, zs and
 * constants; a value with no producer that is none of these is an error. */

static void trace(gx *x, int y)
{
    const onr_graph *g = x->e->g;
    vlist stack = {0};
    vlist_add(x, &stack, y);
    vlist_add(x, &x->touched, y);
    x->seen[y] = 1;
    while (stack.n > 0 && !x->st) {
        int v = stack.v[--stack.n];
        const onr_value *val = &g->values[v];
        if (x->role[v] || val->konst) continue;
        int p = val->producer;
        if (p < 0) {
            fail(x, ONR_E_MODEL,
                 "Gradient '%s': y '%s' depends on '%s', which is neither in xs nor zs nor a "
                 "constant",
                 g->values[y].name, val->name);
            break;
        }
        if (p >= x->n_orig || is_gradient_op(&g->nodes[p])) {
            fail(x, ONR_E_UNSUPPORTED,
                 "Gradient '%s': y '%s' depends on '%s', the output of a Gradient node: "
                 "second-order gradients are not supported",
                 g->values[y].name, val->name);
            break;
        }
        if (x->in_sub[p]) continue; /* reached through another of its outputs */
        x->in_sub[p] = 1;
        vlist_add(x, &x->sub, p);
        const onr_node *n = &g->nodes[p];
        for (int o = 0; o < n->n_out; o++) vlist_add(x, &x->touched, n->outputs[o]);
        for (int k = 0; k < n->n_in; k++) {
            int u = n->inputs[k];
            if (u < 0 || x->seen[u]) continue;
            x->seen[u] = 1;
            vlist_add(x, &stack, u);
            vlist_add(x, &x->touched, u);
        }
    }
    free(stack.v);
    if (x->sub.n) qsort(x->sub.v, (size_t)x->sub.n, sizeof *x->sub.v, cmp_int);
}

/* Which values of the sub-graph depend on xs through differentiable
 * inputs; refuses a node on that path with no gradient. */
static void mark_active(gx *x)
{
    const onr_graph *g = x->e->g;
    for (int j = 0; j < x->sub.n && !x->st; j++) {
        const onr_node *n = &g->nodes[x->sub.v[j]];
        const grad_rule *rule = find_rule(n);
        int any = 0;
        for (int k = 0; k < n->n_in && !any; k++) {
            int v = n->inputs[k];
            int diff = !rule || k >= 32 || (rule->diff >> k & 1u);
            any = v >= 0 && x->active[v] && diff;
        }
        if (!any) continue;
        int act = node_activity(x, n);
        if (act <= 0) continue;
        for (int o = 0; o < n->n_out; o++)
            if (n->outputs[o] >= 0 && !x->role[n->outputs[o]]) x->active[n->outputs[o]] = 1;
    }
}

/* The forward sub-graph at the Gradient's inputs: x->fwd maps each value
 * to what the expansion reads for it; a node whose inputs all map to
 * themselves is read as it is, the others are copied. */
static void forward(gx *x)
{
    onr_graph *g = x->e->g;
    for (int j = 0; j < x->sub.n && !x->st; j++) {
        int i = x->sub.v[j];
        const onr_node n = g->nodes[i]; /* copying adds nodes: g->nodes moves */
        int changed = 0;
        for (int k = 0; k < n.n_in && !changed; k++)
            changed = n.inputs[k] >= 0 && x->fwd[n.inputs[k]] != n.inputs[k];
        if (!changed) continue;
        if (!room(x)) return;
        int *in = malloc(((size_t)n.n_in + 1) * sizeof *in);
        int *out = malloc(((size_t)n.n_out + 1) * sizeof *out);
        if (!in || !out) {
            free(in), free(out);
            nomem(x);
            return;
        }
        for (int k = 0; k < n.n_in; k++) in[k] = n.inputs[k] >= 0 ? x->fwd[n.inputs[k]] : -1;
        char name[400];
        for (int o = 0; o < n.n_out && !x->st; o++) {
            out[o] = -1;
            if (n.outputs[o] < 0) continue;
            snprintf(name, sizeof name, "%s/%s#%d", x->gname, g->values[n.outputs[o]].name,
                     ++x->serial);
            if ((out[o] = onr_edit_add_value(x->e, name, x->err)) < 0) nomem(x);
            else if (!x->role[n.outputs[o]]) x->fwd[n.outputs[o]] = out[o];
        }
        snprintf(name, sizeof name, "%s/%s", x->gname, n.name);
        if (!x->st && onr_edit_copy_node(x->e, i, name, in, out, x->err) < 0) nomem(x);
        free(in), free(out);
    }
}

/* Backward through the sub-graph in reverse topological order. */
static void backward(gx *x)
{
    const onr_graph *g = x->e->g;
    for (int j = x->sub.n - 1; j >= 0 && !x->st; j--) {
        const onr_node n = g->nodes[x->sub.v[j]];
        const grad_rule *rule = find_rule(&n);
        if (!rule || n.n_out < 1 || n.outputs[0] < 0 || !x->active[n.outputs[0]]) continue;
        int gy = grad_of(x, n.outputs[0]);
        if (gy < 0) continue; /* the output does not reach y */
        int *in = malloc(((size_t)n.n_in + 1) * sizeof *in);
        if (!in) {
            nomem(x);
            return;
        }
        for (int k = 0; k < n.n_in; k++) in[k] = n.inputs[k] >= 0 ? x->fwd[n.inputs[k]] : -1;
        rule_ctx r = {.n = &n, .in = in, .y = x->fwd[n.outputs[0]], .gy = gy};
        rule->fn(x, &r);
        free(in);
    }
}

/* The names in a STRINGS attribute (count in *n); NULL when absent. */
static char **names_attr(gx *x, const onr_node *n, const char *name, size_t *count, int required)
{
    const onr_attr *a = onr_node_attr(n, name);
    *count = 0;
    if (!a && !required) return NULL;
    if (!a || a->type != ONR_ATTR_STRINGS) {
        fail(x, ONR_E_MODEL, "Gradient '%s': attribute %s (strings) is required%s", name, "");
        return NULL;
    }
    *count = a->n;
    return a->strings;
}

static void expand(gx *x, int gi)
{
    onr_edit *e = x->e;
    const onr_node gn = e->g->nodes[gi];
    size_t nxs, nzs;
    char **xs = names_attr(x, &gn, "xs", &nxs, 1);
    char **zs = names_attr(x, &gn, "zs", &nzs, 0);
    const onr_attr *ya = onr_node_attr(&gn, "y");
    if (x->st) return;
    if (!ya || ya->type != ONR_ATTR_STRING) {
        fail(x, ONR_E_MODEL, "Gradient '%s': attribute y (string) is required%s%s", "", "");
        return;
    }
    if ((size_t)gn.n_in != nxs + nzs || (size_t)gn.n_out > nxs) {
        char a[64], b[64];
        snprintf(a, sizeof a, "%d inputs and %d outputs", gn.n_in, gn.n_out);
        snprintf(b, sizeof b, "%zu inputs and at most %zu outputs", nxs + nzs, nxs);
        fail(x, ONR_E_MODEL, "Gradient '%s': has %s; xs and zs make %s", a, b);
        return;
    }
    int y = named(x, "y", ya->s);
    int *xv = malloc((nxs + 1) * sizeof *xv);
    if (!xv) {
        nomem(x);
        return;
    }
    /* the named values, and what the expansion reads for them */
    for (size_t i = 0; i < nxs + nzs && !x->st; i++) {
        const char *nm = i < nxs ? xs[i] : zs[i - nxs];
        char what[32];
        snprintf(what, sizeof what, "%s[%zu]", i < nxs ? "xs" : "zs", i < nxs ? i : i - nxs);
        int v = named(x, what, nm), in = gn.inputs[i];
        if (v < 0) break;
        if (in < 0) {
            fail(x, ONR_E_MODEL, "Gradient '%s': the input for %s '%s' is omitted", what, nm);
            break;
        }
        if (x->role[v] && x->fwd[v] != in) {
            fail(x, ONR_E_MODEL, "Gradient '%s': '%s' is named twice in xs and zs with different "
                 "inputs%s", nm, "");
            break;
        }
        if (i < nxs) xv[i] = v;
        vlist_add(x, &x->touched, v);
        if (!x->role[v] || i < nxs) x->role[v] = i < nxs ? ROLE_X : ROLE_Z;
        x->active[v] = x->role[v] == ROLE_X;
        x->fwd[v] = in;
    }
    if (!x->st) trace(x, y);
    if (!x->st) mark_active(x);
    if (!x->st) forward(x);
    /* the seed */
    if (!x->st && x->active[y]) vlist_add(x, &x->grad[y], fill_like(x, 1, x->fwd[y]));
    if (!x->st) backward(x);
    onr_edit_remove_node(e, gi);
    for (int i = 0; i < gn.n_out && !x->st; i++) {
        int out = gn.outputs[i];
        if (out < 0) continue;
        int d = grad_of(x, xv[i]);
        if (d < 0) d = fill_like(x, 0, x->fwd[xv[i]]);
        emit_in(x, "Identity", NULL, 1, &d, 1, &out);
    }
    free(xv);
}

/* The per-value arrays cover n values (new entries cleared). */
static void grow(gx *x, int n)
{
    if (n <= x->cap) return;
    size_t c = (size_t)n + 64;
    uint8_t *role = realloc(x->role, c), *seen = role ? realloc(x->seen, c) : NULL;
    if (role) x->role = role;
    if (seen) x->seen = seen;
    uint8_t *active = seen ? realloc(x->active, c) : NULL;
    if (active) x->active = active;
    int *fwd = active ? realloc(x->fwd, c * sizeof *fwd) : NULL;
    if (fwd) x->fwd = fwd;
    vlist *grad = fwd ? realloc(x->grad, c * sizeof *grad) : NULL;
    if (!grad) {
        nomem(x);
        return;
    }
    x->grad = grad;
    for (size_t v = (size_t)x->cap; v < c; v++) {
        x->role[v] = x->seen[v] = x->active[v] = 0;
        x->fwd[v] = (int)v;
        x->grad[v] = (vlist){0};
    }
    x->cap = (int)c;
}

/* Clear the entries the last expansion set. */
static void reset(gx *x)
{
    for (int k = 0; k < x->touched.n; k++) {
        int v = x->touched.v[k];
        if (v < 0) continue;
        x->role[v] = x->seen[v] = x->active[v] = 0;
        x->fwd[v] = v;
        free(x->grad[v].v);
        x->grad[v] = (vlist){0};
    }
    for (int k = 0; k < x->sub.n; k++) x->in_sub[x->sub.v[k]] = 0;
    x->touched.n = x->sub.n = 0;
}

static const char *value_name(const void *ctx, int id)
{
    return ((const onr_edit *)ctx)->g->values[id].name;
}

onr_status onr_pass_gradient(onr_edit *e, onr_err *err)
{
    int any = 0;
    for (int i = 0; i < e->g->n_nodes && !any; i++) any = !e->dead[i] && is_gradient(&e->g->nodes[i]);
    if (!any) return ONR_OK;
    onr_status st = onr_edit_compact(e, err); /* topological order: the sub-graphs need it */
    if (st) return st;
    gx x = {.e = e, .err = err, .n_orig = e->g->n_nodes};
    x.names = (onr_names){.key = value_name, .ctx = e};
    for (int v = 0; v < e->g->n_values && !x.st; v++)
        if (onr_names_find(&x.names, e->g->values[v].name) < 0 && onr_names_put(&x.names, v))
            nomem(&x);
    if (!(x.in_sub = calloc((size_t)x.n_orig + 1, 1))) nomem(&x);
    for (int i = 0; i < x.n_orig && !x.st; i++) {
        if (e->dead[i] || !is_gradient(&e->g->nodes[i])) continue;
        snprintf(x.gname, sizeof x.gname, "%s", e->g->nodes[i].name);
        grow(&x, e->g->n_values);
        if (!x.st) expand(&x, i);
        reset(&x);
    }
    st = x.st;
    for (int v = 0; v < x.cap; v++) free(x.grad[v].v);
    free(x.role), free(x.seen), free(x.active), free(x.fwd), free(x.grad), free(x.in_sub);
    free(x.sub.v), free(x.touched.v);
    onr_names_free(&x.names);
    if (!st) st = onr_edit_compact(e, err);
    return st;
}
