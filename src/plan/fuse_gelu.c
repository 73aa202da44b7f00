/*
 * fuse_gelu.c - the GELU activation spelled out in elementary ops becomes
 * one Gelu (ai.onnx, opset 20).
 *
 * erf form (BERT, ViT; TorchScript exporter opsets 11-17 and the dynamo
 * exporter alike):
 *     d = Div(x, sqrt 2) | Mul(x, 1/sqrt 2)      constant on either side of Mul
 *     e = Erf(d)
 *     p = Add(e, 1) | Add(1, e)
 *     y = x * 0.5 * p in any association and operand order:
 *         Mul(Mul(x, p), 0.5), Mul(Mul(x, 0.5), p), Mul(x, Mul(p, 0.5)), ...
 *   -> Gelu(x, approximate = "none")
 *
 * tanh form (GPT-2's gelu_new, HF NewGELU):
 *     c = Pow(x, 3) | Mul(Mul(x, x), x) | Mul(x, Mul(x, x))
 *     s = Mul(c, 0.044715)
 *     t = Add(x, s)
 *     u = Mul(t, sqrt(2/pi))
 *     p = Add(Tanh(u), 1)
 *     y = x * 0.5 * p as above
 *   -> Gelu(x, approximate = "tanh")
 *
 * The match starts at the Erf or Tanh node and walks back to x and forward
 * to y. Every constant is a one-element tensor within 1e-4 (relative) of
 * its value (half an ulp for float16 / bfloat16 constants), of rank no
 * more than x's (so no broadcast changes y's shape);
 * every intermediate is read only inside the pattern (onr_fuse_closed); x
 * is a float type.
 */
#include <math.h>

#include "plan/fuse.h"
#include "plan/passes.h"

#define GELU_RTOL 1e-4

/* v is a one-element constant within GELU_RTOL of want whose rank is at
 * most xrank, x's rank (unknown x rank: only a rank-0 constant), so it
 * broadcasts without widening x's shape. */
static int is_const(const onr_edit *e, int v, double want, int xrank)
{
    const onr_tensor *t = onr_fuse_const(e, v);
    double x;
    if (!t || !onr_fuse_const_scalar(e, v, &x)) return 0;
    if (t->rank > 0 && (xrank < 0 || t->rank > xrank)) return 0;
    /* a 16-bit constant is as close as its type allows: half an ulp
     * (float16 0.044715 is 1.5e-4 off) */
    double rtol = t->dtype == ONR_FLOAT16    ? 4.9e-4
                  : t->dtype == ONR_BFLOAT16 ? 3.9e-3
                                             : GELU_RTOL;
    return fabs(x - want) <= rtol * fabs(want);
}

/* Binary node i (of type op) reads x in one slot and a constant ~c in the
 * other. */
static int bin_x_const(const onr_edit *e, int i, const char *op, int x, double c, int xrank,
                       int const_second_only)
{
    if (!onr_fuse_is(e, i, op)) return 0;
    const onr_node *n = &e->g->nodes[i];
    int o = onr_fuse_other_slot(n, x);
    if (o < 0) return 0;
    if (const_second_only && o != 1) return 0;
    return is_const(e, n->inputs[o], c, xrank);
}

static int is_float(onr_dtype dt)
{
    return dt == ONR_FLOAT || dt == ONR_DOUBLE || dt == ONR_FLOAT16 || dt == ONR_BFLOAT16;
}

/* The pattern's nodes, at most 11. */
typedef struct gl_set {
    int n[12];
    int k;
} gl_set;

static void add(gl_set *s, int i) { s->n[s->k++] = i; }

/* From p (the 1 + erf/tanh value), match y = x * 0.5 * p; adds the Mul
 * nodes to s and returns y's value, or -1. */
static int match_product(const onr_edit *e, int x, int p, int xrank, gl_set *s)
{
    int m1 = onr_fuse_sole_consumer(e, p);
    if (!onr_fuse_is(e, m1, "Mul")) return -1;
    const onr_node *n1 = &e->g->nodes[m1];
    int o = onr_fuse_other_slot(n1, p);
    if (o < 0) return -1;
    int o1 = n1->inputs[o], y1 = n1->outputs[0];
    if (o1 == x) { /* (x * p) * 0.5 */
        int m2 = onr_fuse_sole_consumer(e, y1);
        if (!bin_x_const(e, m2, "Mul", y1, 0.5, xrank, 0)) return -1;
        add(s, m1);
        add(s, m2);
        return e->g->nodes[m2].outputs[0];
    }
    if (is_const(e, o1, 0.5, xrank)) { /* x * (p * 0.5) */
        int m2 = onr_fuse_sole_consumer(e, y1);
        if (!onr_fuse_is(e, m2, "Mul") || onr_fuse_other_slot(&e->g->nodes[m2], y1) < 0 ||
            e->g->nodes[m2].inputs[onr_fuse_other_slot(&e->g->nodes[m2], y1)] != x)
            return -1;
        add(s, m1);
        add(s, m2);
        return e->g->nodes[m2].outputs[0];
    }
    int h = onr_fuse_producer(e, o1); /* (x * 0.5) * p */
    if (h >= 0 && bin_x_const(e, h, "Mul", x, 0.5, xrank, 0)) {
        add(s, h);
        add(s, m1);
        return y1;
    }
    return -1;
}

/* p = Add(v, 1) with v the Erf/Tanh output; returns p or -1. */
static int match_plus_one(const onr_edit *e, int v, int xrank, gl_set *s)
{
    int a = onr_fuse_sole_consumer(e, v);
    if (!bin_x_const(e, a, "Add", v, 1.0, xrank, 0)) return -1;
    add(s, a);
    return e->g->nodes[a].outputs[0];
}

/* x^3 as Pow(x, 3), Mul(Mul(x, x), x) or Mul(x, Mul(x, x)) producing c;
 * returns x or -1. */
static int match_cube(const onr_edit *e, int c, gl_set *s)
{
    int i = onr_fuse_producer(e, c);
    if (i < 0) return -1;
    const onr_node *n = &e->g->nodes[i];
    if (onr_fuse_is(e, i, "Pow")) {
        if (n->n_in != 2) return -1;
        int x = n->inputs[0];
        int64_t d[ONR_MAX_RANK];
        int xrank = onr_fuse_shape(e, x, d);
        if (!is_const(e, n->inputs[1], 3.0, xrank)) return -1;
        add(s, i);
        return x;
    }
    if (!onr_fuse_is(e, i, "Mul") || n->n_in != 2) return -1;
    for (int k = 0; k < 2; k++) {
        int sq = onr_fuse_producer(e, n->inputs[k]), x = n->inputs[1 - k];
        if (!onr_fuse_is(e, sq, "Mul")) continue;
        const onr_node *q = &e->g->nodes[sq];
        if (q->n_in == 2 && q->inputs[0] == x && q->inputs[1] == x) {
            add(s, sq);
            add(s, i);
            return x;
        }
    }
    return -1;
}

static int match_erf(onr_edit *e, int i, gl_set *s, int *px)
{
    const onr_node *erf = &e->g->nodes[i];
    if (erf->n_in != 1 || erf->n_out != 1) return -1;
    int d = onr_fuse_producer(e, erf->inputs[0]);
    if (d < 0) return -1;
    const onr_node *dn = &e->g->nodes[d];
    if (dn->n_in != 2) return -1;
    int x = -1;
    int64_t dims[ONR_MAX_RANK];
    if (onr_fuse_is(e, d, "Div")) {
        x = dn->inputs[0];
        if (!bin_x_const(e, d, "Div", x, 1.4142135623730951, onr_fuse_shape(e, x, dims), 1)) return -1;
    } else if (onr_fuse_is(e, d, "Mul")) {
        for (int k = 0; k < 2 && x < 0; k++)
            if (bin_x_const(e, d, "Mul", dn->inputs[k], 0.7071067811865476,
                            onr_fuse_shape(e, dn->inputs[k], dims), 0))
                x = dn->inputs[k];
    }
    if (x < 0) return -1;
    add(s, d);
    add(s, i);
    *px = x;
    return erf->outputs[0];
}

static int match_tanh(onr_edit *e, int i, gl_set *s, int *px)
{
    const onr_node *th = &e->g->nodes[i];
    if (th->n_in != 1 || th->n_out != 1) return -1;
    /* u = t * sqrt(2/pi) */
    int mu = onr_fuse_producer(e, th->inputs[0]);
    if (!onr_fuse_is(e, mu, "Mul")) return -1;
    const onr_node *nu = &e->g->nodes[mu];
    if (nu->n_in != 2) return -1;
    for (int k = 0; k < 2; k++) {
        gl_set t = *s;
        int tv = nu->inputs[k];
        /* t = x + s, s = c * 0.044715 */
        int at = onr_fuse_src(e, tv, "Add");
        if (at < 0) continue;
        const onr_node *na = &e->g->nodes[at];
        if (na->n_in != 2) continue;
        for (int j = 0; j < 2; j++) {
            gl_set u = t;
            int x = na->inputs[j], sv = na->inputs[1 - j];
            int64_t dims[ONR_MAX_RANK];
            int xrank = onr_fuse_shape(e, x, dims);
            if (!bin_x_const(e, mu, "Mul", tv, 0.7978845608028654, xrank, 0)) break;
            int ms = onr_fuse_src(e, sv, "Mul");
            if (ms < 0) continue;
            const onr_node *nm = &e->g->nodes[ms];
            if (nm->n_in != 2) continue;
            for (int c = 0; c < 2; c++) {
                gl_set w = u;
                if (!is_const(e, nm->inputs[1 - c], 0.044715, xrank)) continue;
                if (match_cube(e, nm->inputs[c], &w) != x) continue;
                add(&w, ms);
                add(&w, at);
                add(&w, mu);
                add(&w, i);
                *s = w;
                *px = x;
                return th->outputs[0];
            }
        }
    }
    return -1;
}

static int fuse_gelu_at(onr_edit *e, int i, void *ctx, onr_err *err)
{
    (void)ctx;
    int tanh_form;
    if (onr_fuse_is(e, i, "Erf")) tanh_form = 0;
    else if (onr_fuse_is(e, i, "Tanh")) tanh_form = 1;
    else return 0;
    gl_set s = {.k = 0};
    int x = -1;
    int v = tanh_form ? match_tanh(e, i, &s, &x) : match_erf(e, i, &s, &x);
    if (v < 0 || !is_float(onr_fuse_dtype(e, x))) return 0;
    int64_t dims[ONR_MAX_RANK], ydims[ONR_MAX_RANK];
    int xrank = onr_fuse_shape(e, x, dims);
    int p = match_plus_one(e, v, xrank, &s);
    if (p < 0) return 0;
    int y = match_product(e, x, p, xrank, &s);
    if (y < 0) return 0;
    /* y has x's type and shape: the constants (one element, rank <= x's)
     * cannot widen it; where shape inference knows y, check anyway */
    onr_dtype ydt = onr_fuse_dtype(e, y);
    if (ydt != ONR_UNDEFINED && ydt != onr_fuse_dtype(e, x)) return 0;
    int yrank = onr_fuse_shape(e, y, ydims);
    if (yrank >= 0 && xrank >= 0) {
        if (yrank != xrank) return 0;
        for (int d = 0; d < xrank; d++)
            if (dims[d] >= 0 && ydims[d] >= 0 && dims[d] != ydims[d]) return 0;
    }
    if (!onr_fuse_closed(e, s.n, s.k, &y, 1)) return 0;
    int node = onr_fuse_emit(e, "Gelu", "", 20, 1, &x, 1, &y, s.n, s.k, err);
    if (node < 0) return -1;
    if (onr_edit_set_attr_string(e, node, "approximate", tanh_form ? "tanh" : "none", err))
        return -1;
    return 1;
}

onr_status onr_pass_fuse_gelu(onr_edit *e, onr_err *err)
{
    return onr_fuse_sweep(e, fuse_gelu_at, NULL, err);
}
