/*
 * test_fuse_qkv.c - Q, K and V read packed from one tensor: the planner's
 * fuse_qkv.c and the org.onnxrun Attention it emits (ops/attention.c).
 *
 * Graphs: an ai.onnx Attention (opset 23, 3-D Q/K/V with q_num_heads and
 * kv_num_heads) fed by three projections of one input (MatMul, with or
 * without bias Adds, grouped-query heads, causal, an additive mask, a KV
 * cache with present outputs), or by a Split of one projection on its last
 * axis. Each is run fused and unfused (tk_fuse_check: rtol 1e-4, atol
 * 1e-5, at 1 and 2 threads), and the fused plan must hold one packed
 * Attention (org.onnxrun) and one product, no Split. Near-misses (another
 * input for one projection, a projection also read elsewhere, a weight that
 * is not constant, an activation on a projection, Q and K the same value,
 * a Split on the sequence axis or in another order, 4-D Q/K/V) must keep
 * the ai.onnx Attention and agree too. The packed operator itself runs
 * against the ai.onnx one on copies of the columns (streaming and reference
 * paths, a packed tensor wider than Q, K and V), and its errors name what
 * is wrong.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kutil.h"
#include "onnxrun.h"
#include "ops/attention.h"
#include "pbw.h"

enum { F32 = 1, I64 = 7 };

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- graphs ----------------------------------------------------------------- */

enum { P_THREE, P_SPLIT, P_SLICE };
enum {
    NM_NONE,
    NM_OTHER_X,    /* K projects another input */
    NM_V_OUTPUT,   /* V's product is also a graph output */
    NM_W_INPUT,    /* Q's weight is a graph input */
    NM_RELU,       /* Q's product goes through Relu */
    NM_QK_SAME,    /* Attention(q, q, v) */
    NM_SPLIT_SEQ,  /* Split on the sequence axis */
    NM_SPLIT_ORDER, /* Split outputs read as K, Q, V (Slices: Q's and K's ranges swapped) */
    NM_SLICE_STEP,  /* Q sliced with step 2 */
    NM_VIEW_SHAPES  /* Q's view shape differs from K's and V's (same numbers) */
};

typedef struct cfg {
    int form;
    int B, S, H, Hk, D;
    int bias;   /* bit i: projection i has a bias Add (P_SPLIT: any bit, one bias) */
    int causal;
    int mask;   /* an additive float mask input [B, 1, 1, T] */
    int past;   /* P past keys (inputs) and the present outputs */
    int view;   /* P_SLICE: each part through a Reshape [B, -1, width] */
    int miss;
} cfg;

typedef struct bld {
    pbw g;
    int id;
} bld;

static const char *nm(bld *b)
{
    static char names[64][16];
    char *s = names[b->id % 64];
    snprintf(s, 16, "t%d", b->id++);
    return s;
}

static const char *op1(bld *b, const char *op, const char *const *ins, pbw *attrs)
{
    const char *o = nm(b);
    pbw_node(&b->g, op, NULL, ins, NAMES(o), attrs);
    return o;
}

static float *rnd(size_t n, uint32_t seed)
{
    float *w = malloc(sizeof(float) * (n ? n : 1));
    uint32_t s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        w[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 0.8f;
    }
    return w;
}

static const char *cf32(bld *b, int rank, const int64_t *dims, uint32_t seed)
{
    const char *n = nm(b);
    size_t cnt = 1;
    for (int i = 0; i < rank; i++) cnt *= (size_t)dims[i];
    float *v = rnd(cnt, seed);
    pbw_init_f32(&b->g, n, rank, dims, v, cnt);
    free(v);
    return n;
}

/* x @ W [E, n] (+ bias [n]); W a graph input "w_in" when win */
static const char *proj(bld *b, const char *x, int E, int n, int bias, int win, uint32_t seed)
{
    const int64_t d[2] = {E, n}, bd[1] = {n};
    const char *w = win ? "w_in" : cf32(b, 2, d, seed);
    const char *y = op1(b, "MatMul", NAMES(x, w), NULL);
    if (bias) y = op1(b, "Add", NAMES(y, cf32(b, 1, bd, seed + 7)), NULL);
    return y;
}

static pbw build(const cfg *c)
{
    bld bb = {0}, *b = &bb;
    const int E = c->H * c->D, Ek = c->Hk * c->D, S = c->S, T = c->past + S;
    const int64_t xd[3] = {c->B, S, E};
    pbw_value_info(&b->g, 11, "x", F32, 3, xd);
    if (c->miss == NM_OTHER_X) pbw_value_info(&b->g, 11, "x2", F32, 3, xd);
    if (c->miss == NM_W_INPUT) {
        const int64_t wd[2] = {E, E};
        pbw_value_info(&b->g, 11, "w_in", F32, 2, wd);
    }
    const char *q, *k, *v;
    if (c->form == P_THREE) {
        q = proj(b, "x", E, E, c->bias & 1, c->miss == NM_W_INPUT, 1);
        k = proj(b, c->miss == NM_OTHER_X ? "x2" : "x", E, Ek, c->bias & 2, 0, 2);
        v = proj(b, "x", E, Ek, c->bias & 4, 0, 3);
        if (c->miss == NM_RELU) q = op1(b, "Relu", NAMES(q), NULL);
    } else if (c->form == P_SLICE) {
        const char *p = proj(b, "x", E, E + 2 * Ek + (c->miss == NM_SLICE_STEP ? E : 0), c->bias != 0, 0, 5);
        int64_t lo[3] = {0, E, E + Ek}, hi[3] = {E, E + Ek, E + 2 * Ek};
        if (c->miss == NM_SPLIT_ORDER) lo[0] = Ek, hi[0] = Ek + E, lo[1] = 0, hi[1] = Ek; /* K first */
        static char outs[3][16];
        for (int i = 0; i < 3; i++) {
            const int64_t one[1] = {1}, ax[1] = {-1}, st[1] = {c->miss == NM_SLICE_STEP && i == 0 ? 2 : 1};
            int64_t l1[1] = {lo[i]}, h1[1] = {hi[i]};
            if (c->miss == NM_SLICE_STEP && i == 0) h1[0] = 2 * E; /* E columns, every other one */
            if (c->miss == NM_SLICE_STEP && i > 0) l1[0] += E, h1[0] += E;
            char sn[4][16];
            snprintf(sn[0], 16, "%s", nm(b));
            pbw_init_i64(&b->g, sn[0], 1, one, l1, 1);
            snprintf(sn[1], 16, "%s", nm(b));
            pbw_init_i64(&b->g, sn[1], 1, one, h1, 1);
            snprintf(sn[2], 16, "%s", nm(b));
            pbw_init_i64(&b->g, sn[2], 1, one, ax, 1);
            snprintf(sn[3], 16, "%s", nm(b));
            pbw_init_i64(&b->g, sn[3], 1, one, st, 1);
            const char *o = op1(b, "Slice", NAMES(p, sn[0], sn[1], sn[2], sn[3]), NULL);
            if (c->view) {
                const int w = i == 0 ? E : Ek;
                int64_t shp[3] = {c->B, -1, w};
                if (c->miss == NM_VIEW_SHAPES && i == 0) shp[0] = -1, shp[1] = c->S;
                const int64_t three[1] = {3};
                char rs[16];
                snprintf(rs, 16, "%s", nm(b));
                pbw_init_i64(&b->g, rs, 1, three, shp, 3);
                o = op1(b, "Reshape", NAMES(o, rs), NULL);
            }
            snprintf(outs[i], sizeof outs[i], "%s", o);
        }
        q = outs[0], k = outs[1], v = outs[2]; /* NM_SPLIT_ORDER: K's columns come first */
    } else {
        const int seq = c->miss == NM_SPLIT_SEQ;
        const char *x = "x";
        if (seq) { /* [B, 3S, E]: the three parts stacked along the sequence */
            pbw a = {0};
            pbw_attr_int(&a, "axis", 1);
            x = op1(b, "Concat", NAMES("x", "x", "x"), &a);
        }
        const int n = seq ? E : E + 2 * Ek;
        const char *p = proj(b, x, E, n, c->bias != 0, 0, 4);
        const int64_t sizes[3] = {seq ? S : E, seq ? S : Ek, seq ? S : Ek}, sd[1] = {3};
        const char *sz = nm(b);
        pbw_init_i64(&b->g, sz, 1, sd, sizes, 3);
        static char outs[3][16];
        for (int i = 0; i < 3; i++) snprintf(outs[i], sizeof outs[i], "%s", nm(b));
        pbw a = {0};
        pbw_attr_int(&a, "axis", seq ? 1 : (c->B == 1 ? 2 : -1));
        pbw_node(&b->g, "Split", NULL, NAMES(p, sz), NAMES(outs[0], outs[1], outs[2]), &a);
        q = outs[0], k = outs[1], v = outs[2];
        if (c->miss == NM_SPLIT_ORDER) q = outs[1], k = outs[0];
    }
    if (c->miss == NM_QK_SAME) k = q;
    static char ins[6][16];
    snprintf(ins[0], 16, "%s", q);
    snprintf(ins[1], 16, "%s", k);
    snprintf(ins[2], 16, "%s", v);
    strcpy(ins[3], c->mask ? "mask" : "");
    strcpy(ins[4], c->past ? "past_k" : "");
    strcpy(ins[5], c->past ? "past_v" : "");
    int n_in = c->past ? 6 : c->mask ? 4 : 3;
    if (c->mask) {
        const int64_t md[4] = {c->B, 1, 1, T};
        pbw_value_info(&b->g, 11, "mask", F32, 4, md);
    }
    if (c->past) {
        const int64_t pd[4] = {c->B, c->Hk, c->past, c->D};
        pbw_value_info(&b->g, 11, "past_k", F32, 4, pd);
        pbw_value_info(&b->g, 11, "past_v", F32, 4, pd);
    }
    pbw a = {0};
    pbw_attr_int(&a, "q_num_heads", c->H);
    pbw_attr_int(&a, "kv_num_heads", c->Hk);
    if (c->causal) pbw_attr_int(&a, "is_causal", 1);
    const char *const in6[7] = {ins[0], ins[1], ins[2], ins[3], ins[4], ins[5], NULL};
    const char *in_n[7];
    for (int i = 0; i < 7; i++) in_n[i] = i < n_in ? in6[i] : NULL;
    if (c->past) pbw_node(&b->g, "Attention", "att", in_n, NAMES("y", "present_k", "present_v"), &a);
    else pbw_node(&b->g, "Attention", "att", in_n, NAMES("y"), &a);
    pbw_value_info(&b->g, 12, "y", F32, -1, NULL);
    if (c->past) {
        pbw_value_info(&b->g, 12, "present_k", F32, -1, NULL);
        pbw_value_info(&b->g, 12, "present_v", F32, -1, NULL);
    }
    if (c->miss == NM_V_OUTPUT) {
        pbw_node(&b->g, "Identity", NULL, NAMES(v), NAMES("v_out"), NULL);
        pbw_value_info(&b->g, 12, "v_out", F32, -1, NULL);
    }
    return pbw_model(&b->g, 8, 23);
}

static cfg base(int form)
{
    cfg c = {.form = form, .B = 2, .S = 5, .H = 2, .Hk = 2, .D = 4, .bias = 7};
    return c;
}

/* The fused plan's steps: packed Attentions, ai.onnx ones, products, Splits. */
typedef struct counts {
    int packed, plain, products, splits;
} counts;

static counts count_steps(const void *model, size_t len)
{
    onr_options *o = onr_options_new();
    assert_non_null(o);
    onr_session *s = NULL;
    if (onr_session_open_memory(model, len, o, &s)) fail_msg("open failed: %s", s ? onr_session_errmsg(s) : "?");
    onr_options_free(o);
    counts n = {0};
    for (int i = 0; i < onr_session_step_count(s); i++) {
        const char *t = onr_session_step_op(s, i, NULL);
        char d[512];
        assert_int_equal(onr_session_step_describe(s, i, d, sizeof d), 0);
        if (strcmp(t, "Attention") == 0) {
            if (strncmp(d, "org.onnxrun.Attention", 21) == 0) n.packed++;
            else n.plain++;
        }
        n.products += strcmp(t, "MatMul") == 0 || strcmp(t, "FusedMatMul") == 0;
        n.splits += strcmp(t, "Split") == 0;
    }
    onr_session_free(s);
    return n;
}

/* Build c, check fused against unfused at 1 and 2 threads, and the plan. */
static void check(const cfg *c, int want_packed)
{
    pbw m = build(c);
    onr_tensor *in[6] = {0};
    int n = 0;
    const int E = c->H * c->D, T = c->past + c->S;
    const int64_t xd[3] = {c->B, c->S, E};
    in[n++] = tk_rand_f32(3, xd, 11);
    if (c->miss == NM_OTHER_X) in[n++] = tk_rand_f32(3, xd, 12);
    if (c->miss == NM_W_INPUT) {
        const int64_t wd[2] = {E, E};
        in[n++] = tk_rand_f32(2, wd, 13);
    }
    if (c->mask) {
        const int64_t md[4] = {c->B, 1, 1, T};
        float *v = malloc(sizeof(float) * (size_t)(c->B * T));
        for (int i = 0; i < c->B * T; i++) v[i] = i % T == 0 ? 0.f : (i % 3 == 1 ? -10000.f : 0.25f * (float)(i % 4));
        in[n++] = tk_f32(4, md, v);
        free(v);
    }
    if (c->past) {
        const int64_t pd[4] = {c->B, c->Hk, c->past, c->D};
        in[n++] = tk_rand_f32(4, pd, 14);
        in[n++] = tk_rand_f32(4, pd, 15);
    }
    tk_fuse_report r;
    for (int t = 1; t <= 2; t++) tk_fuse_check(m.b, m.n, n, in, "Attention", 1e-4f, 1e-5f, t, &r);
    counts k = count_steps(m.b, m.n);
    if (want_packed) {
        if (k.packed != 1 || k.plain != 0 || k.products != 1 || k.splits != 0)
            fail_msg("form %d miss %d: %d packed and %d ai.onnx Attention, %d products, %d Splits (want 1, 0, 1, 0)",
                     c->form, c->miss, k.packed, k.plain, k.products, k.splits);
    } else if (k.packed != 0 || k.plain != 1) {
        fail_msg("form %d miss %d: %d packed and %d ai.onnx Attention (want 0 and 1)", c->form, c->miss, k.packed,
                 k.plain);
    }
    tk_free_all(n, in);
    free(m.b);
}

/* ---- what packs ------------------------------------------------------------- */

static void test_three_projections(void **st)
{
    (void)st;
    cfg c = base(P_THREE);
    check(&c, 1); /* BERT: three MatMul + bias */
    c.bias = 0;   /* no biases */
    check(&c, 1);
    c.bias = 5; /* Q and V with a bias, K without: K's columns get zeros */
    check(&c, 1);
    c.bias = 7;
    c.mask = 1; /* the mask stays an input of the packed step */
    check(&c, 1);
    c.B = 1, c.S = 1; /* one query */
    check(&c, 1);
}

static void test_gqa_causal_past(void **st)
{
    (void)st;
    cfg c = base(P_THREE);
    c.H = 4, c.Hk = 2; /* Q 16 columns, K and V 8 each */
    c.causal = 1;
    check(&c, 1);
    c.past = 3; /* present = past + the packed K/V columns */
    check(&c, 1);
    c.mask = 1;
    check(&c, 1);
    c.S = 40, c.past = 0, c.mask = 0; /* several query tiles on the streaming path */
    check(&c, 1);
}

static void test_split(void **st)
{
    (void)st;
    cfg c = base(P_SPLIT);
    check(&c, 1); /* GPT-2: c_attn then Split(axis -1) */
    c.B = 1;      /* axis 2, positive */
    c.causal = 1;
    check(&c, 1);
    c.H = 4, c.Hk = 1, c.past = 2, c.mask = 1, c.bias = 0;
    check(&c, 1);
}

/* three Slices of one product on its last axis (nn.MultiheadAttention's
 * in_proj), directly or through view Reshapes (the attention fusion's for
 * a sequence-first layout with batch 1) */
static void test_slices(void **st)
{
    (void)st;
    cfg c = base(P_SLICE);
    check(&c, 1);
    c.view = 1;
    check(&c, 1);
    c.B = 1, c.causal = 1, c.H = 4, c.Hk = 2;
    check(&c, 1);
}

/* ---- what does not ---------------------------------------------------------- */

static void test_near_misses(void **st)
{
    (void)st;
    const int three[] = {NM_OTHER_X, NM_V_OUTPUT, NM_W_INPUT, NM_RELU, NM_QK_SAME};
    for (size_t i = 0; i < sizeof three / sizeof *three; i++) {
        cfg c = base(P_THREE);
        c.miss = three[i];
        check(&c, 0);
    }
    const int split[] = {NM_SPLIT_SEQ, NM_SPLIT_ORDER, NM_V_OUTPUT};
    for (size_t i = 0; i < sizeof split / sizeof *split; i++) {
        cfg c = base(P_SPLIT);
        c.miss = split[i];
        check(&c, 0);
    }
    const int slice[] = {NM_SPLIT_ORDER, NM_SLICE_STEP, NM_V_OUTPUT, NM_VIEW_SHAPES};
    for (size_t i = 0; i < sizeof slice / sizeof *slice; i++) {
        cfg c = base(P_SLICE);
        c.miss = slice[i];
        c.view = slice[i] == NM_VIEW_SHAPES;
        check(&c, 0);
    }
}

/* ---- the packed operator ---------------------------------------------------- */

/* Columns [c0, c0 + n) of a [B, S, w] tensor. */
static onr_tensor *cols(const onr_tensor *p, int64_t c0, int64_t n)
{
    const int64_t d[3] = {p->dims[0], p->dims[1], n};
    float *v = malloc(sizeof(float) * (size_t)(d[0] * d[1] * n));
    const float *s = p->data;
    for (int64_t r = 0; r < d[0] * d[1]; r++) memcpy(v + r * n, s + r * p->dims[2] + c0, sizeof(float) * (size_t)n);
    onr_tensor *t = tk_f32(3, d, v);
    free(v);
    return t;
}

static onr_node *att_node(int packed, int H, int Hk, const int64_t *qkv, int causal)
{
    onr_node *n = tk_node("Attention");
    if (packed) {
        free(n->domain);
        n->domain = onr_strdup("org.onnxrun");
        if (qkv) tk_attr_ints(n, "qkv_sizes", 3, qkv);
    }
    tk_attr_int(n, "q_num_heads", H);
    tk_attr_int(n, "kv_num_heads", Hk);
    if (causal) tk_attr_int(n, "is_causal", 1);
    return n;
}

static void op_case(int B, int S, int H, int Hk, int D, int extra, int causal, int path)
{
    const int64_t qkv[3] = {H * D, Hk * D, Hk * D}, w = qkv[0] + qkv[1] + qkv[2] + extra;
    const int64_t pd[3] = {B, S, w};
    onr_tensor *p = tk_rand_f32(3, pd, (uint32_t)(B * 1000 + S * 10 + H));
    onr_tensor *sep[3] = {cols(p, 0, qkv[0]), cols(p, qkv[0], qkv[1]), cols(p, qkv[0] + qkv[1], qkv[2])};
    int old = onr_attention_force_path(path);
    for (int t = 1; t <= 2; t++) {
        onr_node *ref = att_node(0, H, Hk, NULL, causal), *pk = att_node(1, H, Hk, qkv, causal);
        onr_tensor *want = tk_run1(ref, 23, 3, sep, t);
        onr_tensor *pin[3] = {p, p, p};
        onr_tensor *got = tk_run1(pk, 1, 3, pin, t);
        tk_assert_shape(got, 3, want->dims);
        /* the same kernel on the same numbers, read in place: bit for bit */
        if (memcmp(got->data, want->data, sizeof(float) * (size_t)want->numel) != 0)
            fail_msg("packed B %d S %d H %d/%d D %d extra %d path %d, %d threads: differs", B, S, H, Hk, D, extra, path,
                     t);
        tk_free_all(1, &want);
        tk_free_all(1, &got);
        tk_node_free(ref);
        tk_node_free(pk);
    }
    onr_attention_force_path(old);
    tk_free_all(3, sep);
    tk_free_all(1, &p);
}

static void test_packed_op(void **st)
{
    (void)st;
    for (int path = 0; path <= 1; path++) {
        op_case(2, 7, 2, 2, 4, 0, 0, path);
        op_case(1, 33, 4, 2, 8, 5, 1, path); /* a wider tensor: columns after V unused */
        op_case(2, 1, 3, 1, 2, 0, 1, path);
    }
    op_case(1, 300, 2, 2, 16, 0, 1, 0); /* several query and key tiles */
}

static void test_packed_errors(void **st)
{
    (void)st;
    const int64_t pd[3] = {1, 4, 24}, p4[4] = {1, 2, 4, 12};
    onr_tensor *p = tk_rand_f32(3, pd, 3), *q4 = tk_rand_f32(4, p4, 4);
    onr_tensor *in[3] = {p, p, p};
    const int64_t ok[3] = {8, 8, 8}, wide[3] = {8, 8, 16}, odd[3] = {8, 7, 9}, neg[3] = {8, 0, 8};
    const struct {
        const int64_t *qkv; /* NULL: the attribute is missing */
        const char *msg;
    } bad[] = {{NULL, "qkv_sizes"}, {neg, "qkv_sizes"}, {wide, "fewer than qkv_sizes"}, {odd, "heads"}};
    onr_node *n;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        n = att_node(1, 2, 2, bad[i].qkv, 0);
        tk_expect_fail(n, 1, 3, in, 1, ONR_E_MODEL, bad[i].msg);
        tk_node_free(n);
    }
    n = att_node(1, 2, 2, ok, 0);
    onr_tensor *in4[3] = {q4, p, p};
    tk_expect_fail(n, 1, 3, in4, 1, ONR_E_MODEL, "must be 3-D");
    tk_attr_int(n, "onnx_opset", 22);
    tk_expect_fail(n, 1, 3, in, 1, ONR_E_MODEL, "onnx_opset");
    tk_node_free(n);
    tk_free_all(1, &p);
    tk_free_all(1, &q4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_projections), cmocka_unit_test(test_gqa_causal_past),
        cmocka_unit_test(test_split),             cmocka_unit_test(test_slices),
        cmocka_unit_test(test_near_misses),
        cmocka_unit_test(test_packed_op),         cmocka_unit_test(test_packed_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
