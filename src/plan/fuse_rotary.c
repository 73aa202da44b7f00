/*
 * fuse_rotary.c - HF llama's apply_rotary_pos_emb as exported, fused into
 * RotaryEmbedding (ai.onnx opset 23):
 *
 *   lo  = Slice(q, 0, D/2, axis -1)      hi = Slice(q, D/2, >= D, axis -1)
 *   rot = Concat(Neg(hi), lo, axis -1)   (rotate_half)
 *   out = Add(Mul(q, cos), Mul(rot, sin))   (any operand order)
 *
 * with q 4-D [B, H, S, D] (HF applies it after the head-split transpose)
 * and cos / sin either
 *   - Unsqueeze(Gather(cache, position_ids, axis 0), axes [1]) with a
 *     constant cache [P, D] and int64 position_ids [B, S] (the same for cos
 *     and sin): the op gets the caches' first halves [P, D/2] as new
 *     constants and position_ids; or
 *   - constants broadcasting to q as [.., S, D] with 1 on the head axis
 *     ([S, D], [B, 1, S, D], ...): the op gets their first halves as 3-D
 *     constants [B or 1, S or 1, D/2] and no position_ids; or
 *   - Unsqueeze(c, axes [1]) of an activation c [B, S, D] whose halves are
 *     equal by construction, as newer HF versions compute it in the graph:
 *     c = Cos / Sin (Concat(freqs, freqs, axis -1)), possibly through
 *     elementwise unary ops (Cast, Neg, ...) and Mul / Div / Add / Sub by a
 *     constant scalar (attention_scaling): the op gets a Slice of c's first
 *     half (one per c, shared by q and k) and no position_ids.
 * HF builds the caches as cat(freqs, freqs): the fusion checks that both
 * halves of every constant row are equal (else the rotation is not the
 * op's and nothing changes). Slices may take attributes (opset < 10) or
 * constant inputs (10+, steps 1); the two slices must split at D/2 exactly,
 * Neg must sit on the upper half (the other way round is the inverse
 * rotation), and Concat must join on the last axis. Every intermediate is
 * read only inside the pattern. cos / sin that are other activations
 * (graph inputs, ...) are left alone: their halves cannot be proven equal
 * at plan time, and slicing them would change the rotation if they differ.
 *
 * A known batch or sequence dim of position_ids / the caches must equal
 * q's or be 1; where a dim is symbolic the op checks it at run time (a
 * mismatch the unfused graph would broadcast becomes an error there, never
 * a silent difference).
 */
#include "plan/fuse.h"
#include "plan/passes.h"

#include <stdlib.h>
#include <string.h>

#define MEMO_MAX 64

typedef struct rot_ctx {
    int n;
    int src[MEMO_MAX], half[MEMO_MAX]; /* constant or activation -> its first half */
} rot_ctx;

/* Up to max ints of a constant int32/int64 tensor of rank <= 1. */
static int const_ints(const onr_edit *e, int v, int64_t *out, int max)
{
    const onr_tensor *t = onr_fuse_const(e, v);
    if (!t || t->rank > 1 || t->numel < 1 || t->numel > max) return -1;
    if (t->dtype != ONR_INT64 && t->dtype != ONR_INT32) return -1;
    for (int64_t i = 0; i < t->numel; i++)
        out[i] = t->dtype == ONR_INT64 ? ((const int64_t *)t->data)[i] : ((const int32_t *)t->data)[i];
    return (int)t->numel;
}

static int64_t clampi(int64_t v, int64_t d)
{
    if (v < 0) v += d;
    return v < 0 ? 0 : v > d ? d : v;
}

/* Slice node sl over one axis, the last of rank r, dim D: start and end
 * clamped as Slice does; 0 when not that form. */
static int slice_last(const onr_edit *e, int sl, int r, int64_t D, int64_t *start, int64_t *end)
{
    const onr_node *n = &e->g->nodes[sl];
    int64_t st[2] = {0}, en[2] = {0}, ax[2] = {0}, sp[2] = {1};
    int ns, ne, na = 1;
    if (n->opset < 10) {
        size_t c1 = 0, c2 = 0, c3 = 0;
        const int64_t *a = onr_attr_ints(n, "starts", &c1), *b = onr_attr_ints(n, "ends", &c2);
        const int64_t *c = onr_attr_ints(n, "axes", &c3);
        if (!a || !b || c1 != 1 || c2 != 1 || (c && c3 != 1) || n->n_in != 1) return 0;
        st[0] = a[0];
        en[0] = b[0];
        ax[0] = c ? c[0] : 0;
        ns = ne = 1;
    } else {
        if (n->n_in < 3) return 0;
        ns = const_ints(e, n->inputs[1], st, 1);
        ne = const_ints(e, n->inputs[2], en, 1);
        if (ns != 1 || ne != 1) return 0;
        if (n->n_in > 3 && n->inputs[3] >= 0 && (na = const_ints(e, n->inputs[3], ax, 1)) != 1) return 0;
        if (n->n_in > 4 && n->inputs[4] >= 0 && (const_ints(e, n->inputs[4], sp, 1) != 1 || sp[0] != 1))
            return 0;
    }
    if (ax[0] < 0) ax[0] += r;
    if (ax[0] != r - 1) return 0;
    *start = clampi(st[0], D);
    *end = clampi(en[0], D);
    return 1;
}

/* Where a rotation's cos or sin comes from. */
typedef struct rot_src {
    int konst;  /* the constant: the full cache [P, D] or the broadcast tensor */
    int act;    /* or the activation [B, S, D] with equal halves (konst -1) */
    int pos;    /* position_ids (gather form), else -1 */
    int64_t dims[3]; /* the op's cache shape: [P, D/2] or [Bc, Sc, D/2] */
    int rank;
} rot_src;

/* Value v (last dim D) has equal halves by construction: Concat(f, f) on
 * its last axis, or an elementwise function of such a value alone (unary
 * ops, or a binary op with a constant scalar). */
static int halves_by_construction(const onr_edit *e, int v, int64_t D, int depth)
{
    static const char *const unary[] = {"Cos", "Sin", "Cast", "Neg", "Identity", "Exp", "Sqrt",
                                        "Reciprocal", "Abs", "Tanh", "Sigmoid"};
    static const char *const binary[] = {"Mul", "Div", "Add", "Sub"};
    int p = onr_fuse_producer(e, v);
    if (p < 0 || depth > 8) return 0;
    const onr_node *n = &e->g->nodes[p];
    int64_t vd[ONR_MAX_RANK];
    int r = onr_fuse_shape(e, v, vd);
    if (r < 1 || vd[r - 1] != D) return 0;
    if (onr_fuse_is(e, p, "Concat")) {
        int64_t ax = onr_attr_int(n, "axis", 0);
        return n->n_in == 2 && n->inputs[0] == n->inputs[1] && (ax == -1 || ax == r - 1);
    }
    for (size_t k = 0; k < sizeof unary / sizeof unary[0]; k++)
        if (onr_fuse_is(e, p, unary[k]))
            return n->n_in == 1 && halves_by_construction(e, n->inputs[0], D, depth + 1);
    for (size_t k = 0; k < sizeof binary / sizeof binary[0]; k++)
        if (onr_fuse_is(e, p, binary[k]) && n->n_in == 2) {
            double x;
            for (int i = 0; i < 2; i++) {
                const onr_tensor *t = onr_fuse_const(e, n->inputs[1 - i]);
                if (t && t->rank <= r && onr_fuse_const_scalar(e, n->inputs[1 - i], &x))
                    return halves_by_construction(e, n->inputs[i], D, depth + 1);
            }
            return 0;
        }
    return 0;
}

static int resolve(const onr_edit *e, int v, const int64_t *qd, rot_src *o)
{
    int64_t D = qd[3];
    const onr_tensor *t = onr_fuse_const(e, v);
    if (t) { /* broadcasts to q as [.., S, D] with 1 on the head axis */
        if (t->rank < 1 || t->rank > 4 || t->dims[t->rank - 1] != D) return 0;
        int64_t al[4] = {1, 1, 1, D};
        for (int d = 0; d < t->rank; d++) al[4 - t->rank + d] = t->dims[d];
        if (al[1] != 1) return 0;
        for (int d = 0; d < 3; d += 2)
            if (al[d] != 1 && qd[d] >= 0 && al[d] != qd[d]) return 0;
        o->konst = v;
        o->act = -1;
        o->pos = -1;
        o->rank = 3;
        o->dims[0] = al[0];
        o->dims[1] = al[2];
        o->dims[2] = D / 2;
        return 1;
    }
    int u = onr_fuse_src(e, v, "Unsqueeze");
    if (u < 0) return 0;
    const onr_node *un = &e->g->nodes[u];
    int64_t ax[2];
    if (un->opset < 13) {
        size_t c = 0;
        const int64_t *a = onr_attr_ints(un, "axes", &c);
        if (!a || c != 1 || un->n_in != 1) return 0;
        ax[0] = a[0];
    } else if (un->n_in != 2 || const_ints(e, un->inputs[1], ax, 1) != 1) {
        return 0;
    }
    if (ax[0] != 1 && ax[0] != -3) return 0;
    int g = onr_fuse_src(e, un->inputs[0], "Gather");
    if (g < 0) { /* an activation [B, S, D] with provably equal halves */
        int c = un->inputs[0];
        int64_t cd[ONR_MAX_RANK];
        if (onr_fuse_shape(e, c, cd) != 3 || cd[2] != D || !halves_by_construction(e, c, D, 0)) return 0;
        for (int d = 0; d < 2; d++)
            if (cd[d] >= 0 && qd[2 * d] >= 0 && cd[d] != 1 && cd[d] != qd[2 * d]) return 0;
        o->konst = -1;
        o->act = c;
        o->pos = -1;
        o->rank = 3;
        o->dims[0] = cd[0];
        o->dims[1] = cd[1];
        o->dims[2] = D / 2;
        return 1;
    }
    const onr_node *gn = &e->g->nodes[g];
    if (gn->n_in != 2 || onr_attr_int(gn, "axis", 0) != 0) return 0;
    const onr_tensor *c = onr_fuse_const(e, gn->inputs[0]);
    int pos = gn->inputs[1];
    int64_t pd[ONR_MAX_RANK];
    if (!c || c->rank != 2 || c->dims[1] != D) return 0;
    if (onr_fuse_dtype(e, pos) != ONR_INT64 || onr_fuse_shape(e, pos, pd) != 2) return 0;
    if ((pd[0] >= 0 && qd[0] >= 0 && pd[0] != 1 && pd[0] != qd[0]) ||
        (pd[1] >= 0 && qd[2] >= 0 && pd[1] != 1 && pd[1] != qd[2]))
        return 0;
    o->konst = gn->inputs[0];
    o->act = -1;
    o->pos = pos;
    o->rank = 2;
    o->dims[0] = c->dims[0];
    o->dims[1] = D / 2;
    return 1;
}

/* Rows of D values whose two halves are equal (HF's cat(freqs, freqs)). */
static int halves_equal(const onr_tensor *t, int64_t D)
{
    int64_t h = D / 2, rows = t->numel / D;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < h; i++)
            if (onr_get_f64(t, r * D + i) != onr_get_f64(t, r * D + h + i)) return 0;
    return 1;
}

static int i64_const(onr_edit *e, const char *hint, int64_t v, onr_err *err)
{
    int64_t one = 1;
    onr_tensor *t = onr_tensor_new(ONR_INT64, 1, &one);
    if (!t) {
        onr_seterr(err, ONR_E_NOMEM, "out of memory");
        return -1;
    }
    ((int64_t *)t->data)[0] = v;
    return onr_fuse_add_const(e, hint, t, err);
}

/* Slice(c, [0], [D/2], [-1]) as a new node (made once per activation). */
static int half_act(onr_edit *e, rot_ctx *rc, int c, int64_t D, onr_err *err)
{
    for (int k = 0; k < rc->n; k++)
        if (rc->src[k] == c) return rc->half[k];
    const char *hint = e->g->values[c].name;
    int st = i64_const(e, hint, 0, err), en = st < 0 ? -1 : i64_const(e, hint, D / 2, err);
    int ax = en < 0 ? -1 : i64_const(e, hint, -1, err);
    int out = ax < 0 ? -1 : onr_fuse_add_value(e, hint, err);
    if (out < 0) return -1;
    const onr_op *op = onr_op_find("", "Slice", 13);
    int ins[4] = {c, st, en, ax};
    int n = op ? onr_edit_add_node(e, "Slice", "", hint, 4, ins, 1, &out, err) : -1;
    if (n < 0) {
        if (!op) onr_seterr(err, ONR_E_UNSUPPORTED, "no Slice kernel");
        return -1;
    }
    e->g->nodes[n].opset = 13;
    e->g->nodes[n].op = op;
    onr_value *ov = &e->g->values[out];
    const onr_value *cv = &e->g->values[c];
    ov->dtype = cv->dtype;
    ov->rank = cv->rank;
    memcpy(ov->dims, cv->dims, sizeof(int64_t) * (size_t)(cv->rank > 0 ? cv->rank : 0));
    if (ov->rank > 0) ov->dims[ov->rank - 1] = D / 2;
    if (rc->n < MEMO_MAX) {
        rc->src[rc->n] = c;
        rc->half[rc->n++] = out;
    }
    return out;
}

/* The first halves of constant v's rows as a new constant of the op's
 * shape (made once per constant). */
static int half_const(onr_edit *e, rot_ctx *rc, const rot_src *s, int64_t D, onr_err *err)
{
    if (s->konst < 0) return half_act(e, rc, s->act, D, err);
    for (int k = 0; k < rc->n; k++)
        if (rc->src[k] == s->konst) return rc->half[k];
    const onr_tensor *t = onr_fuse_const(e, s->konst);
    onr_tensor *h = onr_tensor_new(t->dtype, s->rank, s->dims);
    if (!h) {
        onr_seterr(err, ONR_E_NOMEM, "out of memory");
        return -1;
    }
    size_t es = onr_tensor_nbytes(t) / (size_t)t->numel, hb = (size_t)(D / 2) * es;
    int64_t rows = t->numel / D;
    for (int64_t r = 0; r < rows; r++)
        memcpy((char *)h->data + (size_t)r * hb, (const char *)t->data + (size_t)(r * D) * es, hb);
    int v = onr_fuse_add_const(e, e->g->values[s->konst].name, h, err);
    if (v >= 0 && rc->n < MEMO_MAX) {
        rc->src[rc->n] = s->konst;
        rc->half[rc->n++] = v;
    }
    return v;
}

static int try_order(onr_edit *e, int add, int m1, int m2, rot_ctx *rc, onr_err *err)
{
    const onr_node *b = &e->g->nodes[m2];
    int cat = -1, sinv = -1;
    for (int k = 0; k < 2 && cat < 0; k++)
        if ((cat = onr_fuse_src(e, b->inputs[k], "Concat")) >= 0) sinv = b->inputs[1 - k];
    if (cat < 0) return 0;
    const onr_node *cn = &e->g->nodes[cat];
    if (cn->n_in != 2) return 0;
    int neg = onr_fuse_src(e, cn->inputs[0], "Neg");
    if (neg < 0) return 0;
    int slb = onr_fuse_src(e, e->g->nodes[neg].inputs[0], "Slice");
    int sla = onr_fuse_src(e, cn->inputs[1], "Slice");
    if (sla < 0 || slb < 0) return 0;
    int q = e->g->nodes[sla].inputs[0];
    if (e->g->nodes[slb].inputs[0] != q) return 0;
    int64_t qd[ONR_MAX_RANK];
    if (onr_fuse_shape(e, q, qd) != 4) return 0;
    int64_t D = qd[3];
    onr_dtype dt = onr_fuse_dtype(e, q);
    if (D < 2 || D % 2 || (dt != ONR_FLOAT && dt != ONR_FLOAT16 && dt != ONR_BFLOAT16)) return 0;
    int64_t ca = onr_attr_int(cn, "axis", 0);
    if (ca != -1 && ca != 3) return 0;
    int64_t s0, e0, s1, e1;
    if (!slice_last(e, sla, 4, D, &s0, &e0) || !slice_last(e, slb, 4, D, &s1, &e1)) return 0;
    if (s0 != 0 || e0 != D / 2 || s1 != D / 2 || e1 != D) return 0;
    const onr_node *a = &e->g->nodes[m1];
    int cosv = a->inputs[0] == q ? a->inputs[1] : a->inputs[1] == q ? a->inputs[0] : -1;
    if (cosv < 0 || cosv == q) return 0;
    rot_src cs = {0}, ss = {0};
    if (!resolve(e, cosv, qd, &cs) || !resolve(e, sinv, qd, &ss)) return 0;
    if (cs.pos != ss.pos || cs.rank != ss.rank || memcmp(cs.dims, ss.dims, sizeof cs.dims)) return 0;
    if ((cs.konst < 0) != (ss.konst < 0)) return 0;
    if (cs.konst >= 0) {
        const onr_tensor *ct = onr_fuse_const(e, cs.konst), *st = onr_fuse_const(e, ss.konst);
        if (ct->dtype != dt || st->dtype != dt || !halves_equal(ct, D) || !halves_equal(st, D)) return 0;
    } else if (onr_fuse_dtype(e, cs.act) != dt || onr_fuse_dtype(e, ss.act) != dt) {
        return 0;
    }
    int nodes[7] = {sla, slb, neg, cat, m2, m1, add};
    int keep[1] = {e->g->nodes[add].outputs[0]};
    if (!onr_fuse_closed(e, nodes, 7, keep, 1)) return 0;
    int ch = half_const(e, rc, &cs, D, err);
    int sh = ch < 0 ? -1 : half_const(e, rc, &ss, D, err);
    if (sh < 0) return -1;
    int ins[4] = {q, ch, sh, cs.pos};
    int f = onr_fuse_emit(e, "RotaryEmbedding", "", 23, cs.pos >= 0 ? 4 : 3, ins, 1, keep, nodes, 7, err);
    return f < 0 ? -1 : 1;
}

static int match(onr_edit *e, int node, void *ctx, onr_err *err)
{
    if (!onr_fuse_is(e, node, "Add")) return 0;
    const onr_node *n = &e->g->nodes[node];
    if (n->n_in != 2 || n->n_out != 1) return 0;
    for (int o = 0; o < 2; o++) {
        int m1 = onr_fuse_src(e, n->inputs[o], "Mul"), m2 = onr_fuse_src(e, n->inputs[1 - o], "Mul");
        if (m1 < 0 || m2 < 0 || m1 == m2) continue;
        if (e->g->nodes[m1].n_in != 2 || e->g->nodes[m2].n_in != 2) continue;
        int r = try_order(e, node, m1, m2, ctx, err);
        if (r) return r;
    }
    return 0;
}

onr_status onr_pass_fuse_rotary(onr_edit *e, onr_err *err)
{
    rot_ctx rc = {0};
    return onr_fuse_sweep(e, match, &rc, err);
}
