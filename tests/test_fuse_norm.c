/*
 * test_fuse_norm.c - layer-norm fusions (src/plan/fuse_norm.c) and their
 * kernels (src/ops/norm.c):
 *
 *  - onr_pass_fuse_layernorm: the TorchScript decomposition of LayerNorm
 *    and its variants (duplicated Sub, Reciprocal + Mul, Mul(d, d), no
 *    gamma / beta, trailing axes sets, opset-18 axes input, no-op Casts)
 *    fuse into one LayerNormalization; near-misses (axis not last or not
 *    trailing, non-constant eps or gamma, Pow exponent 3, keepdims=0, an
 *    intermediate read outside or a graph output, float16...) do not;
 *  - onr_pass_fuse_skip_layernorm: Add -> LayerNormalization becomes
 *    SkipLayerNormalization, post-LN and pre-LN (the sum read elsewhere,
 *    output 3), absorbing a bias Add; near-misses (broadcast Add, axis not
 *    last, bias Add read elsewhere, symbolic dims of other names) do not;
 *  - every case checks with tk_fuse_check that the fused and unfused plans
 *    agree and counts the fused steps and the nodes they replaced;
 *  - kernels: SkipLayerNormalization against Add + LayerNormalization run
 *    by the real kernels (row lengths around the 8-lane blocks, broadcast
 *    skip, every optional input and output, double, threads, errors);
 *    LayerNormalization's one-pass float32 statistics against a double
 *    reference (large means, short rows, no B) and in place in a model;
 *  - onr_pass_fuse_channel_layernorm: Transpose to channels last ->
 *    LayerNormalization [-> Transpose back] becomes
 *    ChannelLayerNormalization, bit-identical to the unfused graph at 1
 *    and 2 threads (ranks 3 to 5, position blocks and channel lane groups
 *    whole and cut); near-misses (another perm, another axis, the
 *    transposed X or Mean read elsewhere, a 2-D Scale) do not fuse, and
 *    the kernel rejects bad inputs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kutil.h"
#include "pbw.h"
#include "gemm/gemm.h"
#include "ops/norm.h"

enum { F32 = 1, F16 = 10, F64 = 11 };

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

static const float RTOL = 1e-4f, ATOL = 1e-5f;

/* ---- model building ----------------------------------------------------- */

static void init_scalar(pbw *g, const char *name, float v)
{
    pbw_init_f32(g, name, 0, NULL, &v, 1);
}

/* H values a + b * i / H (gamma, beta). */
static void init_vec(pbw *g, const char *name, int64_t H, float a, float b)
{
    float *v = malloc((size_t)H * sizeof *v);
    assert_non_null(v);
    for (int64_t i = 0; i < H; i++) v[i] = a + b * (float)i / (float)H;
    pbw_init_f32(g, name, 1, &H, v, (size_t)H);
    free(v);
}

static pbw finish(pbw *g, int64_t opset)
{
    const char *dom[] = {""};
    const int64_t ver[] = {opset};
    return pbw_model_opsets(g, 8, 1, dom, ver);
}

/* Run tk_fuse_check on the model (freed) with the inputs (freed). */
static tk_fuse_report check(pbw *m, int n_in, onr_tensor **in, const char *op)
{
    tk_fuse_report r;
    tk_fuse_check(m->b, m->n, n_in, in, op, RTOL, ATOL, 1, &r);
    free(m->b);
    for (int i = 0; i < n_in; i++) onr_tensor_free(in[i]);
    return r;
}

/* What a decomposed LayerNorm looks like; zero = the TorchScript export. */
typedef struct ln_var {
    int opset;        /* 0: 13 */
    int axes;         /* 0: [-1], 1: [2], 2: [1, 2] (trailing pair), 3: [1] (not last),
                         4: [0, 2] (not a trailing set) */
    int axes2_differ; /* the second ReduceMean over another axis */
    int dup_sub;      /* two Sub(x, m) nodes */
    int recip;        /* Mul(d, Reciprocal(s)) instead of Div */
    int mul_sq;       /* Mul(d, d) instead of Pow(d, 2) */
    float pow_exp;    /* 0: 2 */
    int eps_input;    /* eps a graph input */
    int no_gamma, no_beta;
    int gamma_input;  /* gamma a graph input */
    int gamma_bcast;  /* gamma of shape [5, H]: varies along a non-normalized axis */
    int casts;        /* no-op Cast(to=float) before and after */
    int cast_leak;    /* the first Cast's output also read by a Neg */
    int leak;         /* the Sub's output also a graph output */
    int leak_node;    /* the Sqrt's output also read by another node */
    int keepdims0;    /* ReduceMean keepdims=0 (shapes no longer line up) */
    int residual;     /* x = Add(a, r): the skip fusion follows */
} ln_var;

enum { LN_H = 12 };

/* x [2, 5, H] -> decomposed LayerNorm -> y; returns the model and its inputs
 * in in[] (count in *n_in). */
static pbw build_ln(const ln_var *v, onr_tensor **in, int *n_in)
{
    int64_t opset = v->opset ? v->opset : 13, H = LN_H;
    /* keepdims=0: a square x so that x - m still broadcasts (wrongly) */
    int64_t xd[3] = {v->keepdims0 ? H : 2, v->keepdims0 ? H : 5, H};
    pbw g = {0}, a;
    const char *x = "x";
    *n_in = 0;
    if (v->residual) {
        pbw_node(&g, "Add", "res", NAMES("a", "r"), NAMES("x"), NULL);
    }
    if (v->casts) {
        a = (pbw){0};
        pbw_attr_int(&a, "to", 1);
        pbw_node(&g, "Cast", "cast_in", NAMES("x"), NAMES("xc"), &a);
        x = "xc";
    }
    static const int64_t axes_sets[][2] = {{-1, 0}, {2, 0}, {1, 2}, {1, 0}, {0, 2}};
    static const int axes_n[] = {1, 1, 2, 1, 2};
    for (int k = 0; k < 2; k++) {
        int set = k == 1 && v->axes2_differ ? 3 : v->axes;
        const char *src = k == 0 ? x : "p", *dst = k == 0 ? "m" : "var";
        a = (pbw){0};
        if (v->keepdims0) pbw_attr_int(&a, "keepdims", 0);
        if (opset >= 18) {
            char an[16];
            snprintf(an, sizeof an, "axes%d", k);
            int64_t n = axes_n[set];
            pbw_init_i64(&g, an, 1, &n, axes_sets[set], (size_t)n);
            pbw_node(&g, "ReduceMean", k ? "rm2" : "rm1", NAMES(src, an), NAMES(dst),
                     v->keepdims0 ? &a : NULL);
        } else {
            pbw_attr_ints(&a, "axes", axes_sets[set], (size_t)axes_n[set]);
            pbw_node(&g, "ReduceMean", k ? "rm2" : "rm1", NAMES(src), NAMES(dst), &a);
        }
        if (k == 0) {
            pbw_node(&g, "Sub", "sub", NAMES(x, "m"), NAMES("d"), NULL);
            if (v->dup_sub) pbw_node(&g, "Sub", "sub2", NAMES(x, "m"), NAMES("d2"), NULL);
            if (v->mul_sq) {
                pbw_node(&g, "Mul", "sq", NAMES("d", "d"), NAMES("p"), NULL);
            } else {
                init_scalar(&g, "two", v->pow_exp ? v->pow_exp : 2.0f);
                pbw_node(&g, "Pow", "pow", NAMES("d", "two"), NAMES("p"), NULL);
            }
        }
    }
    if (!v->eps_input) init_scalar(&g, "eps", 1e-5f);
    pbw_node(&g, "Add", "add_eps", NAMES("var", "eps"), NAMES("ve"), NULL);
    pbw_node(&g, "Sqrt", "sqrt", NAMES("ve"), NAMES("sd"), NULL);
    const char *dd = v->dup_sub ? "d2" : "d";
    /* the pattern's last node writes the graph output y (or the Cast does) */
    const char *o_nrm = !v->casts && v->no_gamma && v->no_beta ? "y" : "nrm";
    const char *o_g = !v->casts && v->no_beta ? "y" : "ng";
    const char *o_b = !v->casts ? "y" : "nb";
    if (v->recip) {
        pbw_node(&g, "Reciprocal", "recip", NAMES("sd"), NAMES("rs"), NULL);
        pbw_node(&g, "Mul", "mul_rs", NAMES("rs", dd), NAMES(o_nrm), NULL);
    } else {
        pbw_node(&g, "Div", "div", NAMES(dd, "sd"), NAMES(o_nrm), NULL);
    }
    const char *cur = o_nrm;
    if (!v->no_gamma) {
        if (v->gamma_bcast) {
            float gv[5 * LN_H];
            for (int i = 0; i < 5 * LN_H; i++) gv[i] = 0.5f + 0.01f * (float)i;
            int64_t gd[2] = {5, H};
            pbw_init_f32(&g, "gamma", 2, gd, gv, 5 * LN_H);
        } else if (!v->gamma_input) {
            init_vec(&g, "gamma", H, 0.5f, 1.0f);
        }
        pbw_node(&g, "Mul", "mul_g", NAMES(cur, "gamma"), NAMES(o_g), NULL);
        cur = o_g;
    }
    if (!v->no_beta) {
        init_vec(&g, "beta", H, -0.25f, 0.5f);
        pbw_node(&g, "Add", "add_b", NAMES("beta", cur), NAMES(o_b), NULL);
        cur = o_b;
    }
    if (v->casts) {
        a = (pbw){0};
        pbw_attr_int(&a, "to", 1);
        pbw_node(&g, "Cast", "cast_out", NAMES(cur), NAMES("y"), &a);
    }
    if (v->leak_node) pbw_node(&g, "Neg", "leak", NAMES("sd"), NAMES("sd_neg"), NULL);
    if (v->cast_leak) pbw_node(&g, "Neg", "leak_x", NAMES("xc"), NAMES("xc_neg"), NULL);
    /* inputs */
    if (v->residual) {
        pbw_value_info(&g, 11, "a", F32, 3, xd);
        pbw_value_info(&g, 11, "r", F32, 3, xd);
        in[(*n_in)++] = tk_rand_f32(3, xd, 11);
        in[(*n_in)++] = tk_rand_f32(3, xd, 12);
    } else {
        pbw_value_info(&g, 11, "x", F32, 3, xd);
        onr_tensor *t = tk_rand_f32(3, xd, 7);
        float *p = t->data;
        for (int64_t i = 0; i < t->numel; i++) p[i] = 3.0f * p[i] + 1.5f;
        in[(*n_in)++] = t;
    }
    if (v->eps_input) {
        int64_t none = 0;
        pbw_value_info(&g, 11, "eps", F32, 0, &none);
        const float e = 1e-5f;
        in[(*n_in)++] = tk_f32(0, NULL, &e);
    }
    if (v->gamma_input) {
        pbw_value_info(&g, 11, "gamma", F32, 1, &H);
        in[(*n_in)++] = tk_rand_f32(1, &H, 3);
    }
    pbw_value_info(&g, 12, "y", F32, -1, NULL);
    if (v->leak) pbw_value_info(&g, 12, "d", F32, -1, NULL);
    if (v->leak_node) pbw_value_info(&g, 12, "sd_neg", F32, -1, NULL);
    if (v->cast_leak) pbw_value_info(&g, 12, "xc_neg", F32, -1, NULL);
    return finish(&g, opset);
}

/* Build and check a LayerNorm variant: expect `fused` LayerNormalization
 * steps made by fusion, standing for `replaced` nodes. */
static tk_fuse_report ln_case(const ln_var *v, int fused, int replaced)
{
    onr_tensor *in[4];
    int n_in;
    pbw m = build_ln(v, in, &n_in);
    tk_fuse_report r = check(&m, n_in, in, "LayerNormalization");
    assert_int_equal(r.n_fused, fused);
    if (fused) {
        assert_int_equal(r.replaced, replaced);
        assert_int_equal(r.steps_unfused - r.steps_fused, replaced - 1);
    } else {
        assert_int_equal(r.steps_unfused, r.steps_fused);
    }
    return r;
}

/* ---- LayerNormalization fusion ------------------------------------------- */

static void test_ln_torchscript(void **state)
{
    (void)state;
    ln_var v = {0};
    ln_case(&v, 1, 9); /* rm, sub, pow, rm, add, sqrt, div, mul, add */
    v.opset = 17;      /* exporters at 17 may still decompose (custom modules) */
    ln_case(&v, 1, 9);
    v.opset = 11;
    ln_case(&v, 1, 9);
}

static void test_ln_variants(void **state)
{
    (void)state;
    ln_var v = {.dup_sub = 1};
    ln_case(&v, 1, 10);
    v = (ln_var){.recip = 1};
    ln_case(&v, 1, 10);
    v = (ln_var){.mul_sq = 1, .recip = 1, .dup_sub = 1};
    ln_case(&v, 1, 11);
    v = (ln_var){.no_gamma = 1};
    ln_case(&v, 1, 8);
    v = (ln_var){.no_beta = 1};
    ln_case(&v, 1, 8);
    v = (ln_var){.no_gamma = 1, .no_beta = 1};
    ln_case(&v, 1, 7);
    v = (ln_var){.axes = 1}; /* positive last axis */
    ln_case(&v, 1, 9);
    v = (ln_var){.axes = 2}; /* the trailing pair: LayerNormalization axis 1; gamma [H] broadcasts */
    ln_case(&v, 1, 9);
    v = (ln_var){.casts = 1};
    ln_case(&v, 1, 11);
    v.cast_leak = 1; /* the input Cast's output is read elsewhere: it stays */
    ln_case(&v, 1, 10);
}

static void test_ln_opset18_axes_input(void **state)
{
    (void)state;
    ln_var v = {.opset = 18};
    ln_case(&v, 1, 9);
    v.axes = 2;
    ln_case(&v, 1, 9);
    v.axes = 3; /* not the last axis */
    ln_case(&v, 0, 0);
}

static void test_ln_near_misses(void **state)
{
    (void)state;
    ln_var v = {.axes = 3}; /* axis 1 of 3: not trailing */
    ln_case(&v, 0, 0);
    v = (ln_var){.axes = 4}; /* {0, 2}: not a trailing set */
    ln_case(&v, 0, 0);
    v = (ln_var){.axes2_differ = 1};
    ln_case(&v, 0, 0);
    v = (ln_var){.eps_input = 1};
    ln_case(&v, 0, 0);
    v = (ln_var){.pow_exp = 3.0f};
    ln_case(&v, 0, 0);
    v = (ln_var){.leak = 1}; /* d is a graph output */
    ln_case(&v, 0, 0);
    v = (ln_var){.leak_node = 1}; /* sqrt's output read by a Neg */
    ln_case(&v, 0, 0);
    v = (ln_var){.keepdims0 = 1};
    ln_case(&v, 0, 0);
    /* non-constant gamma: the normalization fuses, the Mul stays outside */
    v = (ln_var){.gamma_input = 1};
    tk_fuse_report r = ln_case(&v, 1, 7);
    (void)r;
    /* gamma [5, H] varies along axis 1, which is not normalized: Mul stays */
    v = (ln_var){.gamma_bcast = 1};
    ln_case(&v, 1, 7);
}

/* float16 patterns round at every step: not fused. */
static void test_ln_fp16_not_fused(void **state)
{
    (void)state;
    int64_t H = 8, xd[2] = {3, 8};
    pbw g = {0}, a = {0};
    pbw_attr_ints(&a, "axes", (const int64_t[]){-1}, 1);
    pbw_node(&g, "ReduceMean", "rm1", NAMES("x"), NAMES("m"), &a);
    pbw_node(&g, "Sub", "sub", NAMES("x", "m"), NAMES("d"), NULL);
    pbw_node(&g, "Mul", "sq", NAMES("d", "d"), NAMES("p"), NULL);
    a = (pbw){0};
    pbw_attr_ints(&a, "axes", (const int64_t[]){-1}, 1);
    pbw_node(&g, "ReduceMean", "rm2", NAMES("p"), NAMES("var"), &a);
    pbw t = {0};
    uint16_t e = onr_float_to_half(1e-3f);
    pbw_tensor_head(&t, "eps", F16, 0, NULL);
    pbw_bytes(&t, 9, &e, 2);
    pbw_msg(&g, 5, &t);
    pbw_node(&g, "Add", "add_eps", NAMES("var", "eps"), NAMES("ve"), NULL);
    pbw_node(&g, "Sqrt", "sqrt", NAMES("ve"), NAMES("sd"), NULL);
    pbw_node(&g, "Div", "div", NAMES("d", "sd"), NAMES("y"), NULL);
    pbw_value_info(&g, 11, "x", F16, 2, xd);
    pbw_value_info(&g, 12, "y", F16, -1, NULL);
    pbw m = finish(&g, 13);
    uint16_t xv[24];
    for (int i = 0; i < 24; i++) xv[i] = onr_float_to_half((float)(i % 7) * 0.25f - 0.5f);
    onr_tensor *in[1] = {tk_typed(ONR_FLOAT16, 2, xd, xv)};
    (void)H;
    tk_fuse_report r;
    tk_fuse_check(m.b, m.n, 1, in, "LayerNormalization", 1e-2f, 1e-2f, 1, &r);
    free(m.b);
    onr_tensor_free(in[0]);
    assert_int_equal(r.n_op, 0);
}

/* ---- SkipLayerNormalization fusion ----------------------------------------- */

typedef struct sk_var {
    int bias;         /* MatMul + Add(bias) feeding the residual Add */
    int bias_leak;    /* the bias Add's output also a graph output */
    int pre_ln;       /* the sum also read by a later node */
    int sum_output;   /* the sum also a graph output */
    int skip_bcast;   /* r of shape [5, H] */
    int axis;         /* LayerNormalization's axis (0: -1) */
    int no_beta;
    int sym;          /* symbolic batch: 1 same names, 2 different names */
    int ln_outputs;   /* LN also writes Mean and InvStdDev (graph outputs) */
    int decomposed;   /* opset 13 decomposed LayerNorm instead of the op */
} sk_var;

enum { SK_H = 16 };

static pbw build_skip(const sk_var *v, onr_tensor **in, int *n_in)
{
    int64_t H = SK_H, xd[3] = {2, 5, H}, rd[2] = {5, H};
    pbw g = {0}, a = {0};
    const char *h = "h";
    if (v->bias) {
        float w[SK_H * SK_H];
        for (int i = 0; i < SK_H * SK_H; i++) w[i] = (float)((i * 7) % 11) * 0.05f - 0.25f;
        int64_t wd[2] = {H, H};
        pbw_init_f32(&g, "W", 2, wd, w, SK_H * SK_H);
        init_vec(&g, "bias", H, 0.1f, 0.3f);
        pbw_node(&g, "MatMul", "mm", NAMES("h", "W"), NAMES("mmo"), NULL);
        pbw_node(&g, "Add", "add_bias", NAMES("bias", "mmo"), NAMES("hb"), NULL);
        h = "hb";
    }
    pbw_node(&g, "Add", "res", NAMES(h, "r"), NAMES("s"), NULL);
    init_vec(&g, "gamma", H, 0.5f, 1.0f);
    if (!v->no_beta) init_vec(&g, "beta", H, -0.25f, 0.5f);
    if (v->decomposed) {
        pbw_attr_ints(&a, "axes", (const int64_t[]){-1}, 1);
        pbw_node(&g, "ReduceMean", "rm1", NAMES("s"), NAMES("m"), &a);
        pbw_node(&g, "Sub", "sub", NAMES("s", "m"), NAMES("d"), NULL);
        init_scalar(&g, "two", 2.0f);
        pbw_node(&g, "Pow", "pow", NAMES("d", "two"), NAMES("p"), NULL);
        a = (pbw){0};
        pbw_attr_ints(&a, "axes", (const int64_t[]){-1}, 1);
        pbw_node(&g, "ReduceMean", "rm2", NAMES("p"), NAMES("var"), &a);
        init_scalar(&g, "eps", 1e-5f);
        pbw_node(&g, "Add", "add_eps", NAMES("var", "eps"), NAMES("ve"), NULL);
        pbw_node(&g, "Sqrt", "sqrt", NAMES("ve"), NAMES("sd"), NULL);
        pbw_node(&g, "Div", "div", NAMES("d", "sd"), NAMES("nrm"), NULL);
        pbw_node(&g, "Mul", "mul_g", NAMES("nrm", "gamma"), NAMES("ng"), NULL);
        pbw_node(&g, "Add", "add_b", NAMES("ng", "beta"), NAMES("y"), NULL);
    } else {
        pbw_attr_float(&a, "epsilon", 1e-5f);
        if (v->axis) pbw_attr_int(&a, "axis", v->axis);
        const char *const *outs = v->ln_outputs ? NAMES("y", "mean", "inv") : NAMES("y");
        pbw_node(&g, "LayerNormalization", "ln",
                 v->no_beta ? NAMES("s", "gamma") : NAMES("s", "gamma", "beta"), outs, &a);
    }
    if (v->pre_ln) pbw_node(&g, "Mul", "later", NAMES("s", "y"), NAMES("z"), NULL);
    const char *n1[3] = {"B", "S", NULL}, *n2[3] = {"B2", "S", NULL};
    int64_t sd[3] = {-1, 5, H};
    if (v->sym) {
        pbw_value_info_named(&g, 11, "h", F32, 3, sd, n1);
        pbw_value_info_named(&g, 11, "r", F32, 3, sd, v->sym == 2 ? n2 : n1);
    } else {
        pbw_value_info(&g, 11, "h", F32, 3, xd);
        if (v->skip_bcast) pbw_value_info(&g, 11, "r", F32, 2, rd);
        else pbw_value_info(&g, 11, "r", F32, 3, xd);
    }
    pbw_value_info(&g, 12, v->pre_ln ? "z" : "y", F32, -1, NULL);
    if (v->sum_output) pbw_value_info(&g, 12, "s", F32, -1, NULL);
    if (v->bias_leak) pbw_value_info(&g, 12, "hb", F32, -1, NULL);
    if (v->ln_outputs) {
        pbw_value_info(&g, 12, "mean", F32, -1, NULL);
        pbw_value_info(&g, 12, "inv", F32, -1, NULL);
    }
    *n_in = 2;
    in[0] = tk_rand_f32(3, xd, 21);
    in[1] = v->skip_bcast ? tk_rand_f32(2, rd, 22) : tk_rand_f32(3, xd, 22);
    return finish(&g, v->decomposed ? 13 : 17);
}

static tk_fuse_report sk_case(const sk_var *v, int fused, int replaced)
{
    onr_tensor *in[2];
    int n_in;
    pbw m = build_skip(v, in, &n_in);
    tk_fuse_report r = check(&m, n_in, in, "SkipLayerNormalization");
    assert_int_equal(r.n_fused, fused);
    if (fused) {
        assert_int_equal(r.replaced, replaced);
        /* a bias Add left out (its output read elsewhere) is fuse_gemm.c's:
         * MatMul + bias becomes one FusedMatMul step, one step fewer */
        int gemm = v->bias && v->bias_leak;
        assert_int_equal(r.steps_unfused - r.steps_fused, replaced - 1 + gemm);
    }
    return r;
}

static void test_skip_post_ln(void **state)
{
    (void)state;
    sk_var v = {0};
    sk_case(&v, 1, 2); /* Add + LN */
    v.bias = 1;        /* bias Add absorbed too */
    sk_case(&v, 1, 3);
    v.no_beta = 1;
    sk_case(&v, 1, 3);
    v = (sk_var){.bias = 1, .axis = 2}; /* positive last axis */
    sk_case(&v, 1, 3);
    v = (sk_var){.bias = 1, .ln_outputs = 1}; /* Mean, InvStdDev carried over */
    sk_case(&v, 1, 3);
}

static void test_skip_pre_ln(void **state)
{
    (void)state;
    sk_var v = {.pre_ln = 1};
    sk_case(&v, 1, 2);
    v.bias = 1;
    sk_case(&v, 1, 3);
    v = (sk_var){.sum_output = 1, .bias = 1};
    sk_case(&v, 1, 3);
}

static void test_skip_after_decomposed(void **state)
{
    (void)state;
    sk_var v = {.decomposed = 1, .bias = 1};
    sk_case(&v, 1, 11); /* bias Add, residual Add, and the 9 LN nodes */
    v.pre_ln = 1;
    sk_case(&v, 1, 11);
}

static void test_skip_symbolic(void **state)
{
    (void)state;
    sk_var v = {.sym = 1};
    sk_case(&v, 1, 2);
    v.pre_ln = 1;
    sk_case(&v, 1, 2);
    /* a bias Add between: symbolic shape inference (pass_shapes.c) names
     * its output's batch dim "B", as r's: fused, the bias absorbed */
    v = (sk_var){.sym = 1, .bias = 1};
    sk_case(&v, 1, 3);
    /* decomposed LayerNorm below symbolic dims: shape inference leaves the
     * sum's rank and type unknown; axes [-1] and eps's type carry it */
    v = (sk_var){.sym = 1, .decomposed = 1};
    sk_case(&v, 1, 10);
    v = (sk_var){.sym = 2}; /* batch dims of different names: might broadcast */
    tk_fuse_report r = sk_case(&v, 0, 0);
    assert_int_equal(r.n_op, 0);
}

static void test_skip_near_misses(void **state)
{
    (void)state;
    sk_var v = {.skip_bcast = 1};
    tk_fuse_report r = sk_case(&v, 0, 0);
    assert_int_equal(r.n_op, 0);
    v = (sk_var){.axis = 1}; /* normalizes [5, H] */
    r = sk_case(&v, 0, 0);
    assert_int_equal(r.n_op, 0);
    /* the bias Add's output is read elsewhere: fused without it */
    v = (sk_var){.bias = 1, .bias_leak = 1};
    sk_case(&v, 1, 2);
}

/* ---- kernels ------------------------------------------------------------------ */

static onr_node *sln_node(float eps)
{
    onr_node *n = tk_node("SkipLayerNormalization");
    free(n->domain);
    n->domain = strdup("org.onnxrun");
    tk_attr_float(n, "epsilon", eps);
    return n;
}

/* SkipLayerNormalization of x [rows... , H] and skip against Add(Add(x,
 * bias), skip) + LayerNormalization run by the real kernels. */
static void sln_vs_unfused(int64_t B, int64_t S, int64_t H, int skip_rank, int with_bias,
                           int with_beta, int nthreads)
{
    int64_t xd[3] = {B, S, H}, hd[1] = {H};
    int64_t kd[3] = {B, S, H};
    int kr = 3;
    if (skip_rank == 2) kd[0] = S, kd[1] = H, kr = 2;
    if (skip_rank == 4) kd[0] = 1, kr = 3; /* [1, S, H] */
    onr_tensor *x = tk_rand_f32(3, xd, 1), *k = tk_rand_f32(kr, kd, 2);
    onr_tensor *gm = tk_rand_f32(1, hd, 3), *bt = tk_rand_f32(1, hd, 4), *bs = tk_rand_f32(1, hd, 5);
    float *px = x->data;
    for (int64_t i = 0; i < x->numel; i++) px[i] = px[i] * 4 + 2; /* a mean far from 0 */
    onr_err err = {0};
    /* unfused */
    onr_tensor *sum1[1], *sum[1], *ln[3];
    onr_node *add = tk_node("Add");
    onr_tensor *xb = x;
    if (with_bias) {
        onr_tensor *i1[] = {x, bs};
        assert_int_equal(tk_run(add, 14, 2, i1, 1, sum1, 1, &err), ONR_OK);
        xb = sum1[0];
    }
    onr_tensor *i2[] = {xb, k};
    assert_int_equal(tk_run(add, 14, 2, i2, 1, sum, 1, &err), ONR_OK);
    onr_node *lnn = tk_node("LayerNormalization");
    tk_attr_float(lnn, "epsilon", 1e-5f);
    onr_tensor *i3[] = {sum[0], gm, with_beta ? bt : NULL};
    assert_int_equal(tk_run(lnn, 17, 3, i3, 3, ln, 1, &err), ONR_OK);
    /* fused */
    onr_node *n = sln_node(1e-5f);
    onr_tensor *i4[] = {x, k, gm, with_beta ? bt : NULL, with_bias ? bs : NULL};
    onr_tensor *o[4];
    int st = tk_run(n, 1, 5, i4, 4, o, nthreads, &err);
    if (st) fail_msg("SkipLayerNormalization: %s", err.msg);
    tk_assert_shape(o[0], 3, xd);
    /* the same float32 arithmetic as Add + LayerNormalization: bit-identical */
    tk_assert_close_f32(o[0], ln[0]->data, ln[0]->numel, 0, 0);
    tk_assert_shape(o[1], 3, ln[1]->dims);
    tk_assert_close_f32(o[1], ln[1]->data, ln[1]->numel, 1e-5f, 1e-6f);
    tk_assert_close_f32(o[2], ln[2]->data, ln[2]->numel, 1e-5f, 1e-6f);
    /* the sum is bit-identical to the unfused adds */
    tk_assert_close_f32(o[3], sum[0]->data, sum[0]->numel, 0, 0);
    /* Y alone (no optional outputs) is the same */
    onr_tensor *y1[1];
    assert_int_equal(tk_run(n, 1, 5, i4, 1, y1, nthreads, &err), ONR_OK);
    tk_assert_close_f32(y1[0], o[0]->data, o[0]->numel, 0, 0);
    tk_free_all(1, y1);
    tk_free_all(4, o);
    tk_free_all(3, ln);
    tk_free_all(1, sum);
    if (with_bias) tk_free_all(1, sum1);
    onr_tensor *all[] = {x, k, gm, bt, bs};
    tk_free_all(5, all);
    tk_node_free(n);
    tk_node_free(add);
    tk_node_free(lnn);
}

static void test_sln_kernel_vs_add_ln(void **state)
{
    (void)state;
    static const int64_t Hs[] = {1, 2, 7, 8, 9, 15, 16, 17, 33, 100};
    for (size_t i = 0; i < sizeof Hs / sizeof Hs[0]; i++) {
        sln_vs_unfused(2, 3, Hs[i], 3, 1, 1, 1);
        sln_vs_unfused(2, 3, Hs[i], 3, 0, 1, 1);
        sln_vs_unfused(2, 3, Hs[i], 3, 1, 0, 1);
        sln_vs_unfused(2, 3, Hs[i], 2, 1, 1, 1); /* skip [S, H] */
        sln_vs_unfused(2, 3, Hs[i], 4, 0, 1, 1); /* skip [1, S, H] */
    }
}

static void test_sln_kernel_threads(void **state)
{
    (void)state;
    sln_vs_unfused(2, 128, 768, 3, 1, 1, 4);
    /* bit-identical whatever the thread count */
    int64_t xd[3] = {1, 128, 768}, hd[1] = {768};
    onr_tensor *in[] = {tk_rand_f32(3, xd, 1), tk_rand_f32(3, xd, 2), tk_rand_f32(1, hd, 3),
                        tk_rand_f32(1, hd, 4), tk_rand_f32(1, hd, 5)};
    onr_node *n = sln_node(1e-12f);
    onr_tensor *a[1], *b[1];
    onr_err err = {0};
    assert_int_equal(tk_run(n, 1, 5, in, 1, a, 1, &err), ONR_OK);
    assert_int_equal(tk_run(n, 1, 5, in, 1, b, 4, &err), ONR_OK);
    assert_memory_equal(a[0]->data, b[0]->data, (size_t)a[0]->numel * sizeof(float));
    tk_free_all(1, a);
    tk_free_all(1, b);
    tk_free_all(5, in);
    tk_node_free(n);
}

/* The AVX-512 rows against the baseline ones, bit for bit: every length
 * from 0 to 70 (vectors of 16, a half of 8, scalar tails) and BERT's 768,
 * with and without bias and B, out of place and in place (y over x; dst
 * over x or over skip). Values far from zero mean, so the double lanes'
 * order shows in the last bits. */
static void test_norm_rows_simd(void **state)
{
    (void)state;
    if (!onr_cpu_supports("avx512")) skip();
    enum { NMAX = 768 };
    static float x[NMAX], k[NMAX], bias[NMAX], g[NMAX], b[NMAX];
    static float y1[NMAX], y2[NMAX], d1[NMAX], d2[NMAX], w1[NMAX], w2[NMAX];
    uint32_t r = 12345;
    for (int i = 0; i < NMAX; i++) {
        float v[5];
        for (int j = 0; j < 5; j++) {
            r = r * 1664525u + 1013904223u;
            v[j] = (float)(r >> 8) / (float)(1u << 24) * 2.f - 1.f;
        }
        x[i] = 3.f + v[0] * 7.f, k[i] = v[1] * 100.f, bias[i] = v[2], g[i] = 1.f + v[3], b[i] = v[4];
    }
    for (int64_t n = 0; n <= NMAX; n = n < 70 ? n + 1 : NMAX) {
        for (int var = 0; var < 4; var++) {
            const float *bi = var & 1 ? bias : NULL, *bb = var & 2 ? b : NULL;
            double m1, i1, m2, i2;
            /* LayerNormalization: out of place, then in place */
            onr_ln_row_f32_ref(x, y1, n, g, bb, 1e-5, &m1, &i1);
            onr_ln_row_f32_avx512(x, y2, n, g, bb, 1e-5, &m2, &i2);
            assert_memory_equal(y1, y2, sizeof(float) * (size_t)n);
            assert_memory_equal(&m1, &m2, sizeof m1);
            assert_memory_equal(&i1, &i2, sizeof i1);
            memcpy(w1, x, sizeof x), memcpy(w2, x, sizeof x);
            onr_ln_row_f32_ref(w1, w1, n, g, bb, 1e-5, &m1, &i1);
            onr_ln_row_f32_avx512(w2, w2, n, g, bb, 1e-5, &m2, &i2);
            assert_memory_equal(w1, y1, sizeof(float) * (size_t)n);
            assert_memory_equal(w2, y1, sizeof(float) * (size_t)n);
            /* SkipLayerNormalization: dst and y apart, y over dst, dst over x, dst over skip */
            onr_sln_row_f32_ref(x, k, bi, g, bb, d1, y1, n, 1e-12, &m1, &i1);
            onr_sln_row_f32_avx512(x, k, bi, g, bb, d2, y2, n, 1e-12, &m2, &i2);
            assert_memory_equal(d1, d2, sizeof(float) * (size_t)n);
            assert_memory_equal(y1, y2, sizeof(float) * (size_t)n);
            assert_memory_equal(&m1, &m2, sizeof m1);
            assert_memory_equal(&i1, &i2, sizeof i1);
            onr_sln_row_f32_avx512(x, k, bi, g, bb, d2, d2, n, 1e-12, &m2, &i2);
            assert_memory_equal(d2, y1, sizeof(float) * (size_t)n);
            memcpy(w2, x, sizeof x);
            onr_sln_row_f32_avx512(w2, k, bi, g, bb, w2, w2, n, 1e-12, &m2, &i2);
            assert_memory_equal(w2, y1, sizeof(float) * (size_t)n);
            memcpy(w2, k, sizeof k);
            onr_sln_row_f32_avx512(x, w2, bi, g, bb, w2, w2, n, 1e-12, &m2, &i2);
            assert_memory_equal(w2, y1, sizeof(float) * (size_t)n);
            assert_memory_equal(&i1, &i2, sizeof i1);
        }
        if (n == NMAX) break;
    }
}

/* The double path (the reference one, in double) agrees with float32. */
static void test_sln_kernel_double(void **state)
{
    (void)state;
    int64_t xd[2] = {3, 10}, hd[1] = {10};
    onr_tensor *f[5] = {tk_rand_f32(2, xd, 1), tk_rand_f32(2, xd, 2), tk_rand_f32(1, hd, 3),
                        tk_rand_f32(1, hd, 4), tk_rand_f32(1, hd, 5)};
    onr_tensor *d[5];
    for (int i = 0; i < 5; i++) {
        double buf[30];
        for (int64_t j = 0; j < f[i]->numel; j++) buf[j] = ((const float *)f[i]->data)[j];
        d[i] = tk_typed(ONR_DOUBLE, f[i]->rank, f[i]->dims, buf);
    }
    onr_node *n = sln_node(1e-5f);
    onr_tensor *of[4], *od[4];
    onr_err err = {0};
    assert_int_equal(tk_run(n, 1, 5, f, 4, of, 1, &err), ONR_OK);
    assert_int_equal(tk_run(n, 1, 5, d, 4, od, 1, &err), ONR_OK);
    assert_int_equal(od[0]->dtype, ONR_DOUBLE);
    assert_int_equal(od[1]->dtype, ONR_FLOAT);
    for (int k = 0; k < 4; k++)
        for (int64_t j = 0; j < of[k]->numel; j++)
            assert_true(fabs(onr_get_f64(od[k], j) - onr_get_f64(of[k], j)) < 1e-5);
    tk_free_all(4, of);
    tk_free_all(4, od);
    tk_free_all(5, f);
    tk_free_all(5, d);
    tk_node_free(n);
}

static void test_sln_kernel_errors(void **state)
{
    (void)state;
    int64_t xd[3] = {2, 3, 4}, bad[3] = {2, 1, 4}, h[1] = {4}, h5[1] = {5};
    onr_node *n = sln_node(1e-5f);
    onr_err err = {0};
    onr_tensor *o[1];
    /* skip [2, 1, 4]: a broadcast in the middle */
    onr_tensor *in1[] = {tk_rand_f32(3, xd, 1), tk_rand_f32(3, bad, 2), tk_rand_f32(1, h, 3)};
    assert_int_not_equal(tk_run(n, 1, 3, in1, 1, o, 1, &err), ONR_OK);
    tk_free_all(1, o);
    assert_non_null(strstr(err.msg, "skip"));
    tk_free_all(3, in1);
    /* gamma of 5 values for H = 4 */
    onr_tensor *in2[] = {tk_rand_f32(3, xd, 1), tk_rand_f32(3, xd, 2), tk_rand_f32(1, h5, 3)};
    err = (onr_err){0};
    assert_int_not_equal(tk_run(n, 1, 3, in2, 1, o, 1, &err), ONR_OK);
    tk_free_all(1, o);
    assert_non_null(strstr(err.msg, "gamma"));
    tk_free_all(3, in2);
    /* skip of another type */
    int32_t iv[24] = {0};
    onr_tensor *in3[] = {tk_rand_f32(3, xd, 1), tk_i32(3, xd, iv), tk_rand_f32(1, h, 3)};
    err = (onr_err){0};
    assert_int_not_equal(tk_run(n, 1, 3, in3, 1, o, 1, &err), ONR_OK);
    tk_free_all(1, o);
    tk_free_all(3, in3);
    tk_node_free(n);
}

/* ---- LayerNormalization kernel ---------------------------------------------- */

static void ref_ln(const float *x, const float *s, const float *b, double *y, int64_t outer,
                   int64_t n, double eps)
{
    for (int64_t o = 0; o < outer; o++) {
        double m = 0, v = 0;
        for (int64_t i = 0; i < n; i++) m += x[o * n + i];
        m /= (double)n;
        for (int64_t i = 0; i < n; i++) v += (x[o * n + i] - m) * (x[o * n + i] - m);
        v /= (double)n;
        double r = 1 / sqrt(v + eps);
        for (int64_t i = 0; i < n; i++)
            y[o * n + i] = (x[o * n + i] - m) * r * s[i] + (b ? b[i] : 0);
    }
}

/* One-pass statistics: rows of every length around the 8-lane blocks, and
 * rows whose mean is large against their spread, agree with a two-pass
 * double reference. */
static void test_ln_kernel_one_pass(void **state)
{
    (void)state;
    for (int64_t nn = 1; nn <= 40; nn++)
        for (int big = 0; big < 2; big++)
            for (int nob = 0; nob < 2; nob++) {
                int64_t xd[2] = {3, nn};
                onr_tensor *x = tk_rand_f32(2, xd, (uint32_t)nn), *s = tk_rand_f32(1, &nn, 9),
                           *b = tk_rand_f32(1, &nn, 10);
                float *px = x->data;
                if (big)
                    for (int64_t i = 0; i < x->numel; i++) px[i] = 1e4f + px[i];
                double *e = malloc((size_t)x->numel * sizeof *e);
                ref_ln(px, s->data, nob ? NULL : b->data, e, 3, nn, 1e-5);
                onr_node *n = tk_node("LayerNormalization");
                onr_tensor *in[] = {x, s, nob ? NULL : b}, *o[1];
                onr_err err = {0};
                assert_int_equal(tk_run(n, 17, 3, in, 1, o, 1, &err), ONR_OK);
                const float *py = o[0]->data;
                /* big: x itself is only known to float precision (1e-3 at 1e4) */
                double tol = big ? 2e-3 : 2e-5;
                for (int64_t i = 0; i < x->numel; i++)
                    if (!(fabs(py[i] - e[i]) <= tol * (1 + fabs(e[i]))))
                        fail_msg("n=%lld big=%d nob=%d elem %lld: %.9g vs %.9g", (long long)nn, big,
                                 nob, (long long)i, py[i], e[i]);
                free(e);
                tk_free_all(1, o);
                onr_tensor *all[] = {x, s, b};
                tk_free_all(3, all);
                tk_node_free(n);
            }
}

/* LayerNormalization written in place over its input inside a model: the
 * result equals the reference. x -> Relu -> LN -> Neg (Relu's output dies
 * at the LN, whose output the planner puts in its block: `onnx-run info
 * --plan` shows "[in place +0]" for this graph). */
static void test_ln_kernel_in_place(void **state)
{
    (void)state;
    int64_t H = 24, xd[2] = {6, 24};
    pbw g = {0}, a = {0};
    pbw_node(&g, "Relu", "relu", NAMES("x"), NAMES("rx"), NULL);
    init_vec(&g, "gamma", H, 0.5f, 1.0f);
    init_vec(&g, "beta", H, -0.25f, 0.5f);
    pbw_attr_float(&a, "epsilon", 1e-5f);
    /* an intermediate output (a graph output is owned, never in place) */
    pbw_node(&g, "LayerNormalization", "ln", NAMES("rx", "gamma", "beta"), NAMES("ly"), &a);
    pbw_node(&g, "Neg", "neg", NAMES("ly"), NAMES("y"), NULL);
    pbw_value_info(&g, 11, "x", F32, 2, xd);
    pbw_value_info(&g, 12, "y", F32, -1, NULL);
    pbw m = finish(&g, 17);
    onr_session *s = NULL;
    assert_int_equal(onr_session_open_memory(m.b, m.n, NULL, &s), ONR_OK);
    onr_tensor *x = tk_rand_f32(2, xd, 5);
    assert_int_equal(onr_session_run(s, 1, NULL, (const onr_tensor *const *)&x), ONR_OK);
    const onr_tensor *y = onr_session_output(s, 0);
    float rx[6 * 24], gv[24], bv[24];
    double e[6 * 24];
    for (int i = 0; i < 6 * 24; i++) rx[i] = fmaxf(((const float *)x->data)[i], 0.f);
    for (int i = 0; i < 24; i++) gv[i] = 0.5f + 1.0f * (float)i / 24, bv[i] = -0.25f + 0.5f * (float)i / 24;
    ref_ln(rx, gv, bv, e, 6, 24, 1e-5);
    for (int i = 0; i < 6 * 24; i++)
        assert_true(fabs(-((const float *)y->data)[i] - e[i]) <= 1e-5 * (1 + fabs(e[i])));
    onr_tensor_free(x);
    onr_session_free(s);
    free(m.b);
}

/* ---- ChannelLayerNormalization ------------------------------------------------ */

/* X [2, C, spatial...] -> Transpose to channels last -> LayerNormalization
 * over the last axis [-> Transpose back]; variants of ConvNeXt's pattern. */
typedef struct cl_var {
    int rank;       /* 0: 4 */
    int64_t C;      /* 0: 20 (two 8-lane groups and a tail) */
    int64_t P;      /* positions along the last spatial dim (0: 5) */
    int back;       /* the Transpose back to channels first */
    int back_bad;   /* ... with another perm */
    int bad_perm;   /* the first Transpose's perm is another one */
    int axis;       /* LayerNormalization's axis (0: -1) */
    int no_beta;
    int t_leak;     /* the transposed X also a graph output */
    int y_leak;     /* the LN's output also a graph output (with back) */
    int mean_out;   /* the LN writes Mean too (a graph output) */
    int scale_2d;   /* Scale of shape [1, C] */
} cl_var;

static pbw build_cl(const cl_var *v, onr_tensor **in)
{
    int r = v->rank ? v->rank : 4;
    int64_t C = v->C ? v->C : 20, P = v->P ? v->P : 5;
    int64_t xd[5] = {2, C, 3, 2, P}, perm[5], back[5];
    xd[r - 1] = P;
    perm[0] = back[0] = 0;
    for (int d = 1; d < r; d++) {
        perm[d] = d == r - 1 ? 1 : d + 1;
        back[d] = d == 1 ? r - 1 : d - 1;
    }
    /* channels still last, the spatial axes reversed: [0, r-1, ..., 2, 1] */
    if (v->bad_perm)
        for (int d = 1; d < r; d++) perm[d] = r - d;
    /* the same as the way back: channels first again, spatial axes reversed */
    if (v->back_bad)
        for (int d = 1; d < r; d++) back[d] = r - d;
    pbw g = {0}, a = {0}, b = {0}, c = {0};
    pbw_attr_ints(&a, "perm", perm, (size_t)r);
    pbw_node(&g, "Transpose", "t1", NAMES("x"), NAMES("xt"), &a);
    if (v->scale_2d) {
        int64_t sd[2] = {1, C};
        float sv[64];
        for (int64_t i = 0; i < C; i++) sv[i] = 0.5f + (float)i / (float)C;
        pbw_init_f32(&g, "gamma", 2, sd, sv, (size_t)C);
    } else {
        init_vec(&g, "gamma", C, 0.5f, 1.0f);
    }
    if (!v->no_beta) init_vec(&g, "beta", C, -0.25f, 0.5f);
    pbw_attr_float(&b, "epsilon", 1e-6f);
    if (v->axis) pbw_attr_int(&b, "axis", v->axis);
    pbw_node(&g, "LayerNormalization", "ln",
             v->no_beta ? NAMES("xt", "gamma") : NAMES("xt", "gamma", "beta"),
             v->mean_out ? NAMES("y", "mean") : NAMES("y"), &b);
    if (v->back) {
        pbw_attr_ints(&c, "perm", back, (size_t)r);
        pbw_node(&g, "Transpose", "t2", NAMES("y"), NAMES("z"), &c);
    }
    pbw_value_info(&g, 11, "x", F32, r, xd);
    pbw_value_info(&g, 12, v->back ? "z" : "y", F32, -1, NULL);
    if (v->t_leak) pbw_value_info(&g, 12, "xt", F32, -1, NULL);
    if (v->y_leak) pbw_value_info(&g, 12, "y", F32, -1, NULL);
    if (v->mean_out) pbw_value_info(&g, 12, "mean", F32, -1, NULL);
    in[0] = tk_rand_f32(r, xd, 31);
    float *xv = in[0]->data; /* a large mean in some channels: the stats' precision shows */
    for (int64_t i = 0; i < in[0]->numel; i += 3) xv[i] += 40.f;
    return finish(&g, 17);
}

/* Fused and unfused agree bit for bit (the same statistics and affine
 * step), at 1 and 2 threads. */
static void cl_case(const cl_var *v, int fused, int replaced)
{
    for (int nt = 1; nt <= 2; nt++) {
        onr_tensor *in[1];
        pbw m = build_cl(v, in);
        tk_fuse_report r;
        tk_fuse_check(m.b, m.n, 1, in, "ChannelLayerNormalization", 0.f, 0.f, nt, &r);
        free(m.b);
        onr_tensor_free(in[0]);
        assert_int_equal(r.n_fused, fused);
        if (fused) assert_int_equal(r.replaced, replaced);
    }
}

static void cl_fused_cases(void)
{
    cl_case(&(cl_var){0}, 1, 2);                         /* channels last out */
    cl_case(&(cl_var){.back = 1}, 1, 3);                 /* and back: NCHW in, NCHW out */
    cl_case(&(cl_var){.no_beta = 1, .back = 1}, 1, 3);
    cl_case(&(cl_var){.axis = 3}, 1, 2);                 /* positive last axis */
    cl_case(&(cl_var){.rank = 3, .P = 37}, 1, 2);        /* [N, C, L]: blocks of 16 and a tail */
    cl_case(&(cl_var){.rank = 3, .P = 37, .back = 1}, 1, 3);
    cl_case(&(cl_var){.rank = 5, .C = 7}, 1, 2);         /* 3-D, fewer channels than a lane group */
    cl_case(&(cl_var){.C = 64, .P = 16, .back = 1}, 1, 3); /* whole blocks, whole lane groups */
    cl_case(&(cl_var){.back = 1, .y_leak = 1}, 1, 2);    /* y read elsewhere: no fold of the back */
    cl_case(&(cl_var){.back = 1, .back_bad = 1}, 1, 2);  /* the second Transpose is no inverse */
}

/* The AVX-512 build where the CPU has it, then the baseline build: both
 * bit for bit the unfused graph's. */
static void test_cl_fused(void **state)
{
    (void)state;
    cl_fused_cases();
    onr_cln_force_ref(1);
    cl_fused_cases();
    onr_cln_force_ref(0);
}

static void test_cl_near_misses(void **state)
{
    (void)state;
    cl_case(&(cl_var){.bad_perm = 1}, 0, 0);   /* not channels last */
    cl_case(&(cl_var){.axis = 2}, 0, 0);       /* normalizes [W, C] */
    cl_case(&(cl_var){.t_leak = 1}, 0, 0);     /* the transposed X read elsewhere */
    cl_case(&(cl_var){.mean_out = 1}, 0, 0);   /* Mean written */
    cl_case(&(cl_var){.scale_2d = 1}, 0, 0);   /* Scale [1, C] */
}

static void test_cl_kernel_errors(void **state)
{
    (void)state;
    onr_node *n = tk_node("ChannelLayerNormalization");
    free(n->domain);
    n->domain = onr_strdup("org.onnxrun");
    int64_t xd[3] = {2, 4, 3}, c4[1] = {4}, c5[1] = {5}, x1[1] = {4};
    onr_err err = {0};
    onr_tensor *o[1];
    onr_tensor *in1[] = {tk_rand_f32(3, xd, 1), tk_rand_f32(1, c5, 2)}; /* Scale of 5 for C = 4 */
    assert_int_not_equal(tk_run(n, 1, 2, in1, 1, o, 1, &err), ONR_OK);
    assert_non_null(strstr(err.msg, "Scale"));
    tk_free_all(1, o);
    tk_free_all(2, in1);
    onr_tensor *in2[] = {tk_rand_f32(1, x1, 1), tk_rand_f32(1, c4, 2)}; /* X of rank 1 */
    err = (onr_err){0};
    assert_int_not_equal(tk_run(n, 1, 2, in2, 1, o, 1, &err), ONR_OK);
    assert_non_null(strstr(err.msg, "rank"));
    tk_free_all(1, o);
    tk_free_all(2, in2);
    tk_attr_int(n, "channels_last", 2);
    onr_tensor *in3[] = {tk_rand_f32(3, xd, 1), tk_rand_f32(1, c4, 2)};
    err = (onr_err){0};
    assert_int_not_equal(tk_run(n, 1, 2, in3, 1, o, 1, &err), ONR_OK);
    assert_non_null(strstr(err.msg, "channels_last"));
    tk_free_all(1, o);
    tk_free_all(2, in3);
    tk_node_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ln_torchscript),
        cmocka_unit_test(test_ln_variants),
        cmocka_unit_test(test_ln_opset18_axes_input),
        cmocka_unit_test(test_ln_near_misses),
        cmocka_unit_test(test_ln_fp16_not_fused),
        cmocka_unit_test(test_skip_post_ln),
        cmocka_unit_test(test_skip_pre_ln),
        cmocka_unit_test(test_skip_after_decomposed),
        cmocka_unit_test(test_skip_symbolic),
        cmocka_unit_test(test_skip_near_misses),
        cmocka_unit_test(test_sln_kernel_vs_add_ln),
        cmocka_unit_test(test_sln_kernel_threads),
        cmocka_unit_test(test_norm_rows_simd),
        cmocka_unit_test(test_sln_kernel_double),
        cmocka_unit_test(test_sln_kernel_errors),
        cmocka_unit_test(test_ln_kernel_one_pass),
        cmocka_unit_test(test_ln_kernel_in_place),
        cmocka_unit_test(test_cl_fused),
        cmocka_unit_test(test_cl_near_misses),
        cmocka_unit_test(test_cl_kernel_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
