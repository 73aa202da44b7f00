/*
 * test_fuse_attention.c - the attention fusion (src/plan/fuse_attention.c):
 * hand-built graphs of what the PyTorch exporters write for attention
 * (TorchScript BERT/GPT-2/nn.MultiheadAttention, dynamo's
 * scaled_dot_product_attention with split sqrt(scale) and its key
 * transpose, HF llama repeat_kv), each checked with tk_fuse_check: how many
 * Attention steps the fused plan has, how many loaded nodes they replace,
 * and fused against unfused outputs (rtol 1e-4, atol 1e-5). Near-misses
 * (softmax on another axis, a non-constant scale, a mask that grows the
 * scores, scores read elsewhere, inconsistent head split, K not
 * transposed, ...) must leave the graph alone and still agree.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kutil.h"
#include "pbw.h"

enum { F32 = 1, I64 = 7, BOOL = 9 };

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- the graph builder ------------------------------------------------------ */

enum { K_DIRECT, K_SWAP, K_DYNAMO, K_NONE };
enum { SC_NONE, SC_DIV, SC_MUL, SC_SPLIT, SC_Q3D, SC_INPUT, SC_AFTER_MASK };
enum {
    M_NONE,
    M_ADD_IN,        /* Add(scores, float input [B,1,1,S]) */
    M_ADD_CAUSAL,    /* Add(scores, constant [S,S] 0 / -inf) */
    M_WHERE_CAUSAL,  /* Where(upper-triangle constant, -inf, scores) (GPT-2) */
    M_WHERE_BOOL,    /* Where(bool input [B,1,1,S], scores, -inf) */
    M_WHERE_CONST,   /* Where(constant non-causal bool, scores, finfo.min) */
    M_ADD_BIG,       /* Add(scores, float input [2,H,S,S]) with B = 1: grows */
    M_CAUSAL_ADD_IN, /* Where causal, then Add input mask */
    M_WHERE_BOOL_INV, /* Where(bool input, -inf, scores): True = masked */
    M_WHERE_NOT,      /* Where(Not(bool input), -inf, scores) */
    M_ADD2,           /* Add(Add(scores, constant causal), input mask) (HF llama) */
    M_ADD_BH          /* sequence-first: Add(scores, input [B*H,1,S]) */
};

typedef struct cfg {
    int opset;
    int B, S, H, Hk, D;
    int sbe;         /* sequence-first [S,B,E] (nn.MultiheadAttention) */
    int kform;
    int scale;
    int mask;
    int axis;        /* Softmax axis attribute, 99: absent */
    int scores_out;  /* the scores are also a graph output */
    int merge;       /* 1: head merge Transpose + Reshape; 0: 4-D output */
    int q4;          /* Q is a 4-D graph input [B,H,S,D] */
    int badsplit;    /* Q head transpose [0,2,3,1] (needs S == D) */
    int kvsame;      /* K and V are the same split */
    int casts;       /* Cast to float around the softmax (HF .to(dtype)) */
    int symbolic;    /* x's batch is the symbolic dim "N"; head splits copy it (0) */
} cfg;

typedef struct bld {
    pbw g;
    int id;
    const cfg *c;
} bld;

static const char *nm(bld *b)
{
    static char buf[64][16];
    char *s = buf[b->id % 64];
    snprintf(s, 16, "t%d", b->id++);
    return s;
}

/* A node with one output; returns the output name (valid for 64 calls). */
static const char *op1(bld *b, const char *op, const char *const *ins, pbw *attrs)
{
    const char *o = nm(b);
    pbw_node(&b->g, op, o, ins, NAMES(o), attrs);
    return o;
}

static const char *ci64(bld *b, int n, const int64_t *v)
{
    const char *o = nm(b);
    const int64_t d[1] = {n};
    pbw_init_i64(&b->g, o, 1, d, v, (size_t)n);
    return o;
}

static const char *cf32(bld *b, int rank, const int64_t *dims, const float *v, size_t n)
{
    const char *o = nm(b);
    pbw_init_f32(&b->g, o, rank, dims, v, n);
    return o;
}

static const char *cbool(bld *b, int rank, const int64_t *dims, const uint8_t *v, size_t n)
{
    const char *o = nm(b);
    pbw t = {0};
    pbw_tensor_head(&t, o, BOOL, rank, dims);
    pbw_bytes(&t, 9, v, n);
    pbw_msg(&b->g, 5, &t);
    return o;
}

static const char *scalar(bld *b, float x) { return cf32(b, 0, NULL, &x, 1); }

static const char *transpose(bld *b, const char *x, int r, const int64_t *perm)
{
    pbw a = {0};
    pbw_attr_ints(&a, "perm", perm, (size_t)r);
    return op1(b, "Transpose", NAMES(x), &a);
}

static const char *reshape(bld *b, const char *x, int r, const int64_t *shape)
{
    const char *s = ci64(b, r, shape);
    char sx[16];
    snprintf(sx, sizeof sx, "%s", s);
    return op1(b, "Reshape", NAMES(x, sx), NULL);
}

static const char *bin(bld *b, const char *op, const char *x, const char *y)
{
    char sx[16], sy[16];
    snprintf(sx, sizeof sx, "%s", x);
    snprintf(sy, sizeof sy, "%s", y);
    return op1(b, op, NAMES(sx, sy), NULL);
}

/* a projection x @ W, W [E, n] constant */
static const char *proj(bld *b, const char *x, int E, int n, uint32_t seed)
{
    float *w = malloc(sizeof(float) * (size_t)(E * n));
    uint32_t s = seed;
    for (int i = 0; i < E * n; i++) {
        s = s * 1664525u + 1013904223u;
        w[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 0.8f;
    }
    const int64_t d[2] = {E, n};
    const char *wn = cf32(b, 2, d, w, (size_t)(E * n));
    free(w);
    return bin(b, "MatMul", x, wn);
}

/* the head split of a projection p: [B,S,H,D] + [0,2,1,3] (or sbe) */
static const char *heads(bld *b, const char *p, int H, const int64_t *perm)
{
    const cfg *c = b->c;
    if (c->sbe) {
        const int64_t shp[3] = {c->S, c->B * H, c->D}, pq[3] = {1, 0, 2};
        return transpose(b, reshape(b, p, 3, shp), 3, perm ? perm : pq);
    }
    const int64_t shp[4] = {c->symbolic ? 0 : c->B, c->S, H, c->D}, pq[4] = {0, 2, 1, 3};
    return transpose(b, reshape(b, p, 4, shp), 4, perm ? perm : pq);
}

/* repeat_kv: [B,Hk,S,D] -> [B,H,S,D] */
static const char *repeat(bld *b, const char *kh)
{
    const cfg *c = b->c;
    if (c->Hk == c->H) return kh;
    const int64_t ax[1] = {2}, ex[5] = {c->B, c->Hk, c->H / c->Hk, c->S, c->D},
                  rs[4] = {c->B, c->H, c->S, c->D};
    const char *u = bin(b, "Unsqueeze", kh, ci64(b, 1, ax));
    const char *x = bin(b, "Expand", u, ci64(b, 5, ex));
    return reshape(b, x, 4, rs);
}

static void causal_bool(uint8_t *m, int S, int keep_lower)
{
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) m[i * S + j] = (uint8_t)((j <= i) == (keep_lower != 0));
}

static pbw build(const cfg *c)
{
    bld bb = {.c = c}, *b = &bb;
    const int E = c->H * c->D, Ek = c->Hk * c->D, S = c->S;
    const int64_t xd3[3] = {c->symbolic ? -1 : c->B, S, E}, xs[3] = {S, c->B, E};
    pbw_value_info(&b->g, 11, "x", F32, 3, c->sbe ? xs : xd3);
    const char *x = "x";
    float sc = 1.0f / sqrtf((float)c->D);

    /* Q */
    const char *qh;
    if (c->q4) {
        const int64_t qd[4] = {c->B, c->H, S, c->D};
        pbw_value_info(&b->g, 11, "q4", F32, 4, qd);
        qh = "q4";
    } else {
        const char *q = proj(b, x, E, E, 1);
        if (c->scale == SC_Q3D) q = bin(b, "Mul", q, scalar(b, sc));
        const int64_t bad4[4] = {0, 2, 3, 1}, bad3[3] = {1, 2, 0};
        qh = heads(b, q, c->H, c->badsplit ? (c->sbe ? bad3 : bad4) : NULL);
    }
    if (c->scale == SC_SPLIT) qh = bin(b, "Mul", qh, scalar(b, sqrtf(sc)));

    /* K transposed */
    const char *k = proj(b, x, E, Ek, 2), *kt = NULL, *kh = NULL;
    const char *v = c->kvsame ? NULL : proj(b, x, E, Ek, 3);
    if (c->kform == K_DIRECT) {
        const int64_t p4[4] = {0, 2, 3, 1}, p3[3] = {1, 2, 0};
        kt = heads(b, k, c->Hk, c->sbe ? p3 : p4);
    } else if (c->kform == K_SWAP || c->kform == K_NONE) {
        const int64_t p4[4] = {0, 1, 3, 2}, p3[3] = {0, 2, 1};
        kh = repeat(b, heads(b, k, c->Hk, NULL));
        kt = c->kform == K_NONE ? kh : transpose(b, kh, c->sbe ? 3 : 4, c->sbe ? p3 : p4);
    } else {
        const int64_t r1[3] = {c->B * c->H, S, c->D}, p[3] = {0, 2, 1}, r2[4] = {c->B, c->H, c->D, S};
        kh = repeat(b, heads(b, k, c->Hk, NULL));
        kt = reshape(b, transpose(b, reshape(b, kh, 3, r1), 3, p), 4, r2);
    }
    if (c->scale == SC_SPLIT) kt = bin(b, "Mul", kt, scalar(b, sqrtf(sc)));
    char qhs[16], kts[16];
    snprintf(qhs, sizeof qhs, "%s", qh);
    snprintf(kts, sizeof kts, "%s", kt);
    const char *s = bin(b, "MatMul", qhs, kts);
    if (c->scores_out) {
        const int64_t sd[4] = {c->B, c->H, S, S};
        pbw_value_info(&b->g, 12, s, F32, 4, sd);
    }
    if (c->scale == SC_DIV) s = bin(b, "Div", s, scalar(b, sqrtf((float)c->D)));
    if (c->scale == SC_MUL) s = bin(b, "Mul", scalar(b, sc), s);
    if (c->scale == SC_INPUT) {
        const int64_t one[1] = {1};
        pbw_value_info(&b->g, 11, "sc", F32, 1, one);
        s = bin(b, "Div", s, "sc");
    }

    /* mask */
    uint8_t *tri = malloc((size_t)(S * S));
    float *ftri = malloc(sizeof(float) * (size_t)(S * S));
    const int64_t mb[4] = {c->B, 1, 1, S}, ss[2] = {S, S}, s4[4] = {1, 1, S, S},
                  big[4] = {2, c->H, S, S};
    switch (c->mask) {
    case M_ADD_IN:
        pbw_value_info(&b->g, 11, "mask", F32, 4, mb);
        s = bin(b, "Add", s, "mask");
        break;
    case M_ADD_BH: {
        const int64_t bh[3] = {c->B * c->H, 1, S};
        pbw_value_info(&b->g, 11, "mask", F32, 3, bh);
        s = bin(b, "Add", s, "mask");
        break;
    }
    case M_ADD_BIG:
        pbw_value_info(&b->g, 11, "mask", F32, 4, big);
        s = bin(b, "Add", "mask", s);
        break;
    case M_ADD_CAUSAL:
    case M_ADD2:
        for (int i = 0; i < S * S; i++) ftri[i] = (i % S) <= (i / S) ? 0.0f : -3.4028234663852886e38f;
        s = bin(b, "Add", s, cf32(b, c->mask == M_ADD2 ? 4 : 2, c->mask == M_ADD2 ? s4 : ss, ftri, (size_t)(S * S)));
        if (c->mask == M_ADD2) {
            pbw_value_info(&b->g, 11, "mask", F32, 4, mb);
            s = bin(b, "Add", s, "mask");
        }
        break;
    case M_WHERE_CAUSAL:
    case M_CAUSAL_ADD_IN: {
        causal_bool(tri, S, 0);
        const char *cnd = cbool(b, 4, s4, tri, (size_t)(S * S));
        char cs[16], fs[16], xs2[16];
        snprintf(cs, sizeof cs, "%s", cnd);
        snprintf(fs, sizeof fs, "%s", scalar(b, -INFINITY));
        snprintf(xs2, sizeof xs2, "%s", s);
        s = op1(b, "Where", NAMES(cs, fs, xs2), NULL);
        if (c->mask == M_CAUSAL_ADD_IN) {
            pbw_value_info(&b->g, 11, "mask", F32, 4, mb);
            s = bin(b, "Add", "mask", s);
        }
        break;
    }
    case M_WHERE_BOOL:
    case M_WHERE_BOOL_INV:
    case M_WHERE_NOT: {
        pbw_value_info(&b->g, 11, "bmask", BOOL, 4, mb);
        const char *cn = c->mask == M_WHERE_NOT ? op1(b, "Not", NAMES("bmask"), NULL) : "bmask";
        char cs[16];
        snprintf(cs, sizeof cs, "%s", cn);
        char fs[16], xs2[16];
        snprintf(fs, sizeof fs, "%s", scalar(b, -INFINITY));
        snprintf(xs2, sizeof xs2, "%s", s);
        s = c->mask == M_WHERE_BOOL ? op1(b, "Where", NAMES(cs, xs2, fs), NULL)
                                    : op1(b, "Where", NAMES(cs, fs, xs2), NULL);
        break;
    }
    case M_WHERE_CONST: {
        for (int i = 0; i < S * S; i++) tri[i] = (uint8_t)((i * 7 + 3) % 5 != 0 || i % S == 0);
        const char *cnd = cbool(b, 2, ss, tri, (size_t)(S * S));
        char cs[16], fs[16], xs2[16];
        snprintf(cs, sizeof cs, "%s", cnd);
        snprintf(fs, sizeof fs, "%s", scalar(b, -3.4028234663852886e38f));
        snprintf(xs2, sizeof xs2, "%s", s);
        s = op1(b, "Where", NAMES(cs, xs2, fs), NULL);
        break;
    }
    default:
        break;
    }
    free(tri);
    free(ftri);
    if (c->scale == SC_AFTER_MASK) s = bin(b, "Div", s, scalar(b, sqrtf((float)c->D)));

    pbw attrs = {0};
    if (c->casts) {
        pbw_attr_int(&attrs, "to", F32);
        s = op1(b, "Cast", NAMES(s), &attrs);
    }
    if (c->axis != 99) pbw_attr_int(&attrs, "axis", c->axis);
    const char *p = op1(b, "Softmax", NAMES(s), &attrs);
    if (c->casts) {
        pbw_attr_int(&attrs, "to", F32);
        p = op1(b, "Cast", NAMES(p), &attrs);
    }

    const char *vh = c->kvsame ? kh : (c->kform == K_DIRECT ? heads(b, v, c->Hk, NULL)
                                                            : repeat(b, heads(b, v, c->Hk, NULL)));
    const char *y = bin(b, "MatMul", p, vh);
    if (c->merge) {
        const int64_t m4[4] = {0, 2, 1, 3}, m3[3] = {1, 0, 2};
        const int64_t o3[3] = {c->symbolic ? 0 : c->B, S, E}, o2[2] = {S * c->B, E};
        y = c->sbe ? reshape(b, transpose(b, y, 3, m3), 2, o2) : reshape(b, transpose(b, y, 4, m4), 3, o3);
    }
    /* an output node after the pattern, as in a model */
    char ys[16];
    snprintf(ys, sizeof ys, "%s", y);
    pbw_node(&b->g, "Identity", "out", NAMES(ys), NAMES("y"), NULL);
    pbw_value_info(&b->g, 12, "y", F32, -1, NULL);
    return pbw_model(&b->g, 8, c->opset);
}

static cfg base(void)
{
    cfg c = {.opset = 13, .B = 2, .S = 7, .H = 2, .Hk = 2, .D = 4, .kform = K_DIRECT,
             .scale = SC_DIV, .mask = M_NONE, .axis = -1, .merge = 1};
    return c;
}

/* Build c's model, run it fused and unfused on random inputs, and check the
 * number of Attention steps and the loaded nodes they replace (-1: any). */
static void check(const cfg *c, int want_att, int want_replaced)
{
    pbw m = build(c);
    onr_tensor *in[4] = {0};
    int n = 0;
    const int64_t xd3[3] = {c->B, c->S, c->H * c->D}, xs[3] = {c->S, c->B, c->H * c->D};
    in[n++] = tk_rand_f32(3, c->sbe ? xs : xd3, 11);
    if (c->q4) {
        const int64_t qd[4] = {c->B, c->H, c->S, c->D};
        in[n++] = tk_rand_f32(4, qd, 12);
    }
    if (c->scale == SC_INPUT) {
        const int64_t one[1] = {1};
        const float half = 0.5f;
        in[n++] = tk_f32(1, one, &half);
    }
    if (c->mask == M_ADD_IN || c->mask == M_CAUSAL_ADD_IN || c->mask == M_ADD_BIG || c->mask == M_ADD2 ||
        c->mask == M_ADD_BH) {
        int64_t md[4] = {c->B, 1, 1, c->S};
        if (c->mask == M_ADD_BIG) md[0] = 2, md[1] = c->H, md[2] = c->S;
        if (c->mask == M_ADD_BH) md[0] = 1, md[1] = c->B * c->H, md[2] = 1;
        int64_t cnt = md[0] * md[1] * md[2] * md[3];
        float *v = malloc(sizeof(float) * (size_t)cnt);
        for (int64_t i = 0; i < cnt; i++) v[i] = (i * 5 + 1) % 4 == 0 ? -10000.0f : 0.0f;
        v[0] = 0; /* key 0 always visible: no fully masked row */
        in[n++] = c->mask == M_ADD_BH ? tk_f32(3, md + 1, v) : tk_f32(4, md, v);
        free(v);
    }
    if (c->mask == M_WHERE_BOOL || c->mask == M_WHERE_BOOL_INV || c->mask == M_WHERE_NOT) {
        const int64_t md[4] = {c->B, 1, 1, c->S};
        uint8_t *v = malloc((size_t)(c->B * c->S));
        for (int i = 0; i < c->B * c->S; i++) v[i] = (uint8_t)((i % c->S == 0) || (i * 3) % 4 != 0);
        if (c->mask == M_WHERE_BOOL_INV)
            for (int i = 0; i < c->B * c->S; i++) v[i] = (uint8_t)!v[i];
        in[n++] = tk_bool(4, md, v);
        free(v);
    }
    tk_fuse_report r;
    tk_fuse_check(m.b, m.n, n, in, "Attention", 1e-4f, 1e-5f, 2, &r);
    if (r.n_op != want_att || (want_replaced >= 0 && r.replaced != want_replaced))
        fail_msg("Attention steps %d (want %d), replacing %d nodes (want %d); steps %d fused, %d unfused",
                 r.n_op, want_att, r.replaced, want_replaced, r.steps_fused, r.steps_unfused);
    assert_int_equal(r.n_fused, r.n_op);
    tk_free_all(n, in);
    free(m.b);
}

/* ---- patterns that fuse ----------------------------------------------------- */

/* BERT (TorchScript): K transposed [0,2,3,1], Div, additive input mask */
static void test_bert(void **st)
{
    (void)st;
    cfg c = base();
    c.mask = M_ADD_IN;
    check(&c, 1, 13); /* 3 x (Reshape, Transpose), MatMul, Div, Add, Softmax, MatMul, merge 2 */
    c.opset = 17;
    check(&c, 1, 13);
    c.mask = M_NONE;
    c.scale = SC_MUL;
    check(&c, 1, 12);
    c.scale = SC_NONE; /* unscaled: scale = 1 */
    check(&c, 1, 11);
}

/* GPT-2: Where(upper-triangle constant, -inf, scores) -> is_causal */
static void test_gpt2_causal(void **st)
{
    (void)st;
    cfg c = base();
    c.mask = M_WHERE_CAUSAL;
    c.scale = SC_MUL;
    check(&c, 1, 13);
    c.mask = M_ADD_CAUSAL; /* dynamo's constant 0 / -inf triangle */
    check(&c, 1, 13);
    c.mask = M_CAUSAL_ADD_IN; /* causal and a padding mask */
    check(&c, 1, 14);
    c.casts = 1; /* HF: Cast to float before and after the softmax */
    check(&c, 1, 16);
    c.casts = 0;
    c.mask = M_ADD2; /* HF llama: Add constant causal (finfo.min), Add padding mask */
    check(&c, 1, 14);
}

/* K transposed as a head split then [0,1,3,2]; dynamo's key transpose */
static void test_k_forms(void **st)
{
    (void)st;
    cfg c = base();
    c.kform = K_SWAP;
    check(&c, 1, 13);
    c.kform = K_DYNAMO;
    c.scale = SC_SPLIT; /* dynamo: sqrt(scale) on Q and on K transposed */
    c.mask = M_ADD_IN;
    check(&c, 1, 17);
    c.opset = 18;
    check(&c, 1, 17);
    c.kform = K_SWAP; /* TorchScript's scaled_dot_product_attention, is_causal */
    c.mask = M_ADD_CAUSAL;
    c.opset = 14;
    check(&c, 1, 15);
}

/* scale multiplied into the 3-D Q projection (HF BART style) */
static void test_q3d_scale(void **st)
{
    (void)st;
    cfg c = base();
    c.scale = SC_Q3D;
    check(&c, 1, 12);
}

/* Where(bool input, scores, -inf) passes the condition as a bool mask; a
 * constant non-causal condition becomes a constant float mask */
static void test_where_masks(void **st)
{
    (void)st;
    cfg c = base();
    c.mask = M_WHERE_BOOL;
    check(&c, 1, 13);
    c.mask = M_WHERE_CONST;
    check(&c, 1, 13);
    c.mask = M_WHERE_NOT; /* the Not stays (dead, dropped) and its input is the mask */
    check(&c, 1, 13);
}

/* nn.MultiheadAttention (ViT): sequence-first [S,B,E], 3-D heads [B*H,S,D];
 * with a batch of 1 the op's inputs and output are views, else Transposes */
static void test_mha_seq_first(void **st)
{
    (void)st;
    cfg c = base();
    c.sbe = 1;
    c.B = 1;
    check(&c, 1, 12);
    c.kform = K_SWAP;
    check(&c, 1, 13);
    c.mask = M_ADD_CAUSAL; /* attn_mask [S,S] */
    check(&c, 1, 14);
    c.B = 3;
    check(&c, 1, 14);
    c.kform = K_DIRECT;
    c.mask = M_NONE;
    check(&c, 1, 12);
    c.mask = M_ADD_BH; /* a mask over the merged batch-head axis */
    check(&c, 0, 0);
}

/* grouped-query heads (HF llama repeat_kv), in the 3-D form */
static void test_gqa(void **st)
{
    (void)st;
    cfg c = base();
    c.H = 4;
    c.Hk = 2;
    c.kform = K_SWAP;
    check(&c, 1, 19); /* + 2 x (Unsqueeze, Expand, Reshape) */
    c.kform = K_DYNAMO;
    c.mask = M_ADD_CAUSAL;
    check(&c, 1, 22);
    c.Hk = 1; /* multi-query */
    check(&c, 1, 22);
}

/* Q a 4-D value (e.g. after a rotary embedding) or no head merge: Q and Y
 * stay 4-D while K and V still fold their splits in (3-D) */
static void test_4d_form(void **st)
{
    (void)st;
    cfg c = base();
    c.q4 = 1;
    c.kform = K_SWAP;
    check(&c, 1, 9); /* K split + Transpose, V split, MatMul, Div, Softmax, MatMul */
    c.q4 = 0;
    c.merge = 0;
    check(&c, 1, 9);
    c.H = 4;
    c.Hk = 2;
    c.mask = M_WHERE_CAUSAL;
    check(&c, 1, 16); /* + repeat_kv of K and V, Where */
    c.kvsame = 1; /* K and V one repeat: both sides claim it, no fusion */
    check(&c, 0, 0);
    c.H = c.Hk = 2;
    c.mask = M_WHERE_CAUSAL;
    c.kvsame = 1; /* K and V one split: every side 4-D */
    check(&c, 1, 6);
}

/* opset 11 Softmax: only an explicit last axis is the same */
static void test_softmax_opset11(void **st)
{
    (void)st;
    cfg c = base();
    c.opset = 11;
    c.axis = 3;
    check(&c, 1, 12);
    c.axis = -1;
    check(&c, 1, 12);
    c.axis = 99; /* default axis 1: coerced 2-D softmax, not the same */
    check(&c, 0, 0);
    c.opset = 13; /* default -1 from 13 */
    check(&c, 1, 12);
}

/* a symbolic batch: folding leaves the values without shapes, and the pass
 * (which checks every shape) leaves the graph alone -- a documented limit */
static void test_symbolic_batch(void **st)
{
    (void)st;
    cfg c = base();
    c.symbolic = 1;
    c.mask = M_ADD_IN;
    check(&c, 0, 0);
}

/* ---- near-misses ------------------------------------------------------------ */

static void test_near_misses(void **st)
{
    (void)st;
    cfg c = base();
    c.axis = 2; /* softmax over the query axis */
    check(&c, 0, 0);
    c = base();
    c.scale = SC_INPUT; /* scale not a constant */
    check(&c, 0, 0);
    c = base();
    c.B = 1;
    c.merge = 0;
    c.mask = M_ADD_BIG; /* mask [2,H,S,S] grows the scores of batch 1 */
    check(&c, 0, 0);
    c = base();
    c.scores_out = 1; /* scores read outside the pattern */
    check(&c, 0, 0);
    c = base();
    c.S = c.D = 4;
    c.badsplit = 1; /* Q transposed [0,2,3,1]: not a head split, fed as a 4-D value */
    check(&c, 1, 8);
    c.sbe = 1;
    c.B = 1; /* sequence-first has no 4-D fallback */
    check(&c, 0, 0);
    c = base();
    c.S = c.D = 4;
    c.kform = K_NONE; /* K not transposed */
    check(&c, 0, 0);
    c = base();
    c.mask = M_WHERE_BOOL_INV; /* True = masked needs a Not */
    check(&c, 0, 0);
    c = base();
    c.mask = M_ADD_IN;
    c.scale = SC_AFTER_MASK; /* scale applied to the mask too */
    check(&c, 0, 0);
    c = base();
    c.kform = K_SWAP;
    c.kvsame = 1; /* K and V share their split: fused once would read it twice */
    check(&c, 1, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bert),
        cmocka_unit_test(test_gpt2_causal),
        cmocka_unit_test(test_k_forms),
        cmocka_unit_test(test_q3d_scale),
        cmocka_unit_test(test_where_masks),
        cmocka_unit_test(test_mha_seq_first),
        cmocka_unit_test(test_gqa),
        cmocka_unit_test(test_4d_form),
        cmocka_unit_test(test_softmax_opset11),
        cmocka_unit_test(test_symbolic_batch),
        cmocka_unit_test(test_near_misses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
