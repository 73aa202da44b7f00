/*
 * test_fuse_gemm.c - the GEMM epilogue fusion (src/plan/fuse_gemm.c) and
 * its operator, FusedMatMul (org.onnxrun, src/ops/matmul.c).
 *
 * Fusion: MatMul + per-column bias Add (either operand order, bias [N] or
 * [1, 1, N]) + Relu / Gelu (written out, fused by the Gelu pass first, both
 * forms) / Sigmoid / Clip / SiLU written out; a 2-D Transpose of a non-constant B becoming
 * trans_b; a non-constant B; Gemm + Relu. Near-misses stay unfused: an
 * [M, N] bias, a non-constant bias, a bias of higher rank than the
 * product, a MatMul output read elsewhere, Gemm with alpha != 1; an
 * activation input read elsewhere keeps the activation out but the bias
 * in. Every model runs fused and unfused (tk_fuse_check: rtol 1e-4,
 * atol 1e-5).
 *
 * Kernel: FusedMatMul against a double reference across shapes at the
 * microkernel edges, batched and broadcast A, constant (prepacked) and
 * non-constant B, trans_b, constant and non-constant bias, every
 * activation, 1 and 2 threads (bit-identical), float16, and bad input.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kutil.h"
#include "pbw.h"

#include "gemm/gemm.h"
#include "onnxrun.h"

enum { F32 = 1 };

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- model builder ---------------------------------------------------------- */

typedef struct gb {
    pbw g;
    int n, n_in;
    onr_tensor *in[4];
} gb;

static void gb_start(gb *b)
{
    memset(b, 0, sizeof *b);
    pbw_str(&b->g, 2, "gemm_test");
}

/* A graph input with random data. */
static void gb_input(gb *b, const char *name, int rank, const int64_t *dims)
{
    pbw_value_info(&b->g, 11, name, F32, rank, dims);
    b->in[b->n_in] = tk_rand_f32(rank, dims, 100u + (uint32_t)b->n_in);
    float *x = b->in[b->n_in]->data;
    for (int64_t i = 0; i < b->in[b->n_in]->numel; i++) x[i] *= 2.f;
    b->n_in++;
}

/* A random constant. */
static void gb_weight(gb *b, const char *name, int rank, const int64_t *dims, uint32_t seed)
{
    onr_tensor *t = tk_rand_f32(rank, dims, seed);
    pbw_init_f32(&b->g, name, rank, dims, t->data, (size_t)t->numel);
    onr_tensor_free(t);
}

static void gb_scalar(gb *b, const char *name, float v) { pbw_init_f32(&b->g, name, 0, NULL, &v, 1); }

static void gb_node(gb *b, const char *op, const char *a, const char *c, const char *out,
                    pbw *attrs)
{
    char name[32];
    snprintf(name, sizeof name, "n%d", b->n++);
    if (c) pbw_node(&b->g, op, name, NAMES(a, c), NAMES(out), attrs);
    else pbw_node(&b->g, op, name, NAMES(a), NAMES(out), attrs);
}

/* Fused vs unfused with `y` (and extra outputs) as graph outputs: want
 * FusedMatMul steps standing for want_replaced loaded nodes. */
static void gb_check(gb *b, const char **extra, int n_extra, int want, int want_replaced,
                     int nthreads)
{
    for (int i = 0; i < n_extra; i++) pbw_value_info(&b->g, 12, extra[i], F32, -1, NULL);
    pbw_value_info(&b->g, 12, "y", F32, -1, NULL);
    pbw m = pbw_model(&b->g, 8, 13);
    tk_fuse_report r;
    tk_fuse_check(m.b, m.n, b->n_in, b->in, "FusedMatMul", 1e-4f, 1e-5f, nthreads, &r);
    assert_int_equal(r.n_op, want);
    assert_int_equal(r.n_fused, want);
    assert_int_equal(r.replaced, want_replaced);
    if (!want) assert_int_equal(r.steps_fused, r.steps_unfused);
    tk_free_all(b->n_in, b->in);
    free(m.b);
}

static const int64_t AD[3] = {2, 5, 24}, WD[2] = {24, 33}, BD[1] = {33};

/* A [2,5,24] x W [24,33] */
static void mm(gb *b)
{
    gb_input(b, "a", 3, AD);
    gb_weight(b, "w", 2, WD, 1);
    gb_node(b, "MatMul", "a", "w", "mm", NULL);
}

/* ---- fusion patterns -------------------------------------------------------- */

static void test_bias(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    mm(&b);
    gb_weight(&b, "bias", 1, BD, 2);
    gb_node(&b, "Add", "mm", "bias", "y", NULL);
    gb_check(&b, NULL, 0, 1, 2, 1);
}

static void test_bias_first_rank3(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    mm(&b);
    const int64_t d[3] = {1, 1, 33};
    gb_weight(&b, "bias", 3, d, 2);
    gb_node(&b, "Add", "bias", "mm", "y", NULL);
    gb_check(&b, NULL, 0, 1, 2, 2);
}

static void test_bias_relu(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    mm(&b);
    gb_weight(&b, "bias", 1, BD, 2);
    gb_node(&b, "Add", "mm", "bias", "z", NULL);
    gb_node(&b, "Relu", "z", NULL, "y", NULL);
    gb_check(&b, NULL, 0, 1, 3, 1);
}

/* BERT's intermediate: MatMul, Add(bias, .), erf GELU written out */
static void test_bias_gelu_erf(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    mm(&b);
    gb_weight(&b, "bias", 1, BD, 2);
    gb_scalar(&b, "c_sqrt2", 1.4142135f);
    gb_scalar(&b, "c_one", 1.f);
    gb_scalar(&b, "c_half", 0.5f);
    gb_node(&b, "Add", "bias", "mm", "z", NULL);
    gb_node(&b, "Div", "z", "c_sqrt2", "d", NULL);
    gb_node(&b, "Erf", "d", NULL, "e", NULL);
    gb_node(&b, "Add", "e", "c_one", "p", NULL);
    gb_node(&b, "Mul", "z", "p", "zp", NULL);
    gb_node(&b, "Mul", "zp", "c_half", "y", NULL);
    gb_check(&b, NULL, 0, 1, 7, 1);
}

/* GPT-2's c_fc: MatMul, Add, tanh GELU written out */
static void test_bias_gelu_tanh(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    mm(&b);
    gb_weight(&b, "bias", 1, BD, 2);
    gb_scalar(&b, "c_half", 0.5f);
    gb_scalar(&b, "c_three", 3.f);
    gb_scalar(&b, "c_k1", 0.044715f);
    gb_scalar(&b, "c_k2", 0.7978846f);
    gb_scalar(&b, "c_one", 1.f);
    gb_node(&b, "Add", "bias", "mm", "z", NULL);
    gb_node(&b, "Mul", "z", "c_half", "h", NULL);
    gb_node(&b, "Pow", "z", "c_three", "c", NULL);
    gb_node(&b, "Mul", "c", "c_k1", "s", NULL);
    gb_node(&b, "Add", "z", "s", "t", NULL);
    gb_node(&b, "Mul", "t", "c_k2", "u", NULL);
    gb_node(&b, "Tanh", "u", NULL, "th", NULL);
    gb_node(&b, "Add", "th", "c_one", "p", NULL);
    gb_node(&b, "Mul", "h", "p", "y", NULL);
    gb_check(&b, NULL, 0, 1, 10, 2);
}

static void test_sigmoid_no_bias(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    mm(&b);
    gb_node(&b, "Sigmoid", "mm", NULL, "y", NULL);
    gb_check(&b, NULL, 0, 1, 2, 1);
}

static void test_bias_clip(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    mm(&b);
    gb_weight(&b, "bias", 1, BD, 2);
    gb_scalar(&b, "lo", -0.5f);
    gb_scalar(&b, "hi", 0.75f);
    gb_node(&b, "Add", "mm", "bias", "z", NULL);
    pbw_node(&b.g, "Clip", "clip", NAMES("z", "lo", "hi"), NAMES("y"), NULL);
    gb_check(&b, NULL, 0, 1, 3, 1);
}

/* SiLU written out: Mul(Sigmoid(z), z) */
static void test_bias_silu(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    mm(&b);
    gb_weight(&b, "bias", 1, BD, 2);
    gb_node(&b, "Add", "mm", "bias", "z", NULL);
    gb_node(&b, "Sigmoid", "z", NULL, "s", NULL);
    gb_node(&b, "Mul", "s", "z", "y", NULL);
    gb_check(&b, NULL, 0, 1, 4, 1);
}

/* z * sigmoid(z) where the sigmoid is also a graph output: bias only */
static void test_silu_sigmoid_read_elsewhere(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    mm(&b);
    gb_weight(&b, "bias", 1, BD, 2);
    gb_node(&b, "Add", "mm", "bias", "z", NULL);
    gb_node(&b, "Sigmoid", "z", NULL, "s", NULL);
    gb_node(&b, "Mul", "z", "s", "y", NULL);
    const char *extra[] = {"s"};
    gb_check(&b, extra, 1, 1, 2, 1);
}

/* Transpose of a non-constant 2-D B -> trans_b */
static void test_transpose_b(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    const int64_t bt[2] = {33, 24};
    gb_input(&b, "a", 3, AD);
    gb_input(&b, "bt", 2, bt);
    gb_weight(&b, "bias", 1, BD, 2);
    gb_node(&b, "Transpose", "bt", NULL, "w", NULL); /* no perm: reverse */
    gb_node(&b, "MatMul", "a", "w", "mm", NULL);
    gb_node(&b, "Add", "mm", "bias", "y", NULL);
    gb_check(&b, NULL, 0, 1, 3, 2);
}

static void test_transpose_b_perm(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    const int64_t bt[2] = {33, 24}, perm[2] = {1, 0};
    gb_input(&b, "a", 3, AD);
    gb_input(&b, "bt", 2, bt);
    pbw at = {0};
    pbw_attr_ints(&at, "perm", perm, 2);
    gb_node(&b, "Transpose", "bt", NULL, "w", &at);
    gb_node(&b, "MatMul", "a", "w", "mm", NULL);
    gb_node(&b, "Relu", "mm", NULL, "y", NULL);
    gb_check(&b, NULL, 0, 1, 3, 1);
}

/* MatMul(T, T) with T a Transpose: T stays (A reads it too); Relu fuses */
static void test_transpose_b_also_a(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    const int64_t sq[2] = {24, 24};
    gb_input(&b, "x", 2, sq);
    gb_node(&b, "Transpose", "x", NULL, "t", NULL);
    gb_node(&b, "MatMul", "t", "t", "mm", NULL);
    gb_node(&b, "Relu", "mm", NULL, "y", NULL);
    gb_check(&b, NULL, 0, 1, 2, 1);
}

/* a non-constant batched B with a bias */
static void test_nonconst_b(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    const int64_t bd[3] = {2, 24, 33};
    gb_input(&b, "a", 3, AD);
    gb_input(&b, "w", 3, bd);
    gb_weight(&b, "bias", 1, BD, 2);
    gb_node(&b, "MatMul", "a", "w", "mm", NULL);
    gb_node(&b, "Add", "mm", "bias", "y", NULL);
    gb_check(&b, NULL, 0, 1, 2, 2);
}

/* ViT-style Gemm(transB = 1, C [N]) + Relu */
static void test_gemm_relu(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    const int64_t a2[2] = {7, 24}, wt[2] = {33, 24};
    gb_input(&b, "a", 2, a2);
    gb_weight(&b, "w", 2, wt, 1);
    gb_weight(&b, "c", 1, BD, 2);
    pbw at = {0};
    pbw_attr_int(&at, "transB", 1);
    pbw_node(&b.g, "Gemm", "gemm", NAMES("a", "w", "c"), NAMES("g"), &at);
    gb_node(&b, "Relu", "g", NULL, "y", NULL);
    gb_check(&b, NULL, 0, 1, 2, 1);
}

/* ---- near-misses ------------------------------------------------------------ */

/* an [M, N] "bias" is no per-column bias: it is taken as the residual */
static void test_bias_full_mn(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    const int64_t a2[2] = {5, 24}, bm[2] = {5, 33};
    gb_input(&b, "a", 2, a2);
    gb_weight(&b, "w", 2, WD, 1);
    gb_weight(&b, "bias", 2, bm, 2);
    gb_node(&b, "MatMul", "a", "w", "mm", NULL);
    gb_node(&b, "Add", "mm", "bias", "y", NULL);
    gb_check(&b, NULL, 0, 1, 2, 1);
}

/* GPT-2's projection: MatMul, Add(bias, .), Add(x, .) residual */
static void test_bias_residual(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    mm(&b);
    const int64_t rd[3] = {2, 5, 33};
    gb_input(&b, "r", 3, rd);
    gb_weight(&b, "bias", 1, BD, 2);
    gb_node(&b, "Add", "bias", "mm", "z", NULL);
    gb_node(&b, "Add", "r", "z", "y", NULL);
    gb_check(&b, NULL, 0, 1, 3, 1);
}

/* bias, Gelu, then the residual (after the activation) */
static void test_bias_relu_residual_batched(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    const int64_t bd[3] = {2, 24, 33}, rd[3] = {2, 5, 33};
    gb_input(&b, "a", 3, AD);
    gb_input(&b, "w", 3, bd);
    gb_input(&b, "r", 3, rd);
    gb_weight(&b, "bias", 1, BD, 2);
    gb_node(&b, "MatMul", "a", "w", "mm", NULL);
    gb_node(&b, "Add", "mm", "bias", "z", NULL);
    gb_node(&b, "Relu", "z", NULL, "h", NULL);
    gb_node(&b, "Add", "h", "r", "y", NULL);
    gb_check(&b, NULL, 0, 1, 4, 2);
}

/* a residual that broadcasts ([5, 33] onto [2, 5, 33]) stays an Add */
static void test_residual_broadcast(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    mm(&b);
    const int64_t rd[2] = {5, 33};
    gb_input(&b, "r", 2, rd);
    gb_weight(&b, "bias", 1, BD, 2);
    gb_node(&b, "Add", "mm", "bias", "z", NULL);
    gb_node(&b, "Add", "z", "r", "y", NULL);
    gb_check(&b, NULL, 0, 1, 2, 1);
}

static void test_bias_not_const(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    mm(&b);
    gb_input(&b, "bias", 1, BD);
    gb_node(&b, "Add", "mm", "bias", "y", NULL);
    gb_check(&b, NULL, 0, 0, 0, 1);
}

static void test_bias_higher_rank(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    mm(&b);
    const int64_t d[4] = {1, 1, 1, 33};
    gb_weight(&b, "bias", 4, d, 2);
    gb_node(&b, "Add", "mm", "bias", "y", NULL);
    gb_check(&b, NULL, 0, 0, 0, 1);
}

static void test_matmul_output_read_elsewhere(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    mm(&b);
    gb_weight(&b, "bias", 1, BD, 2);
    gb_node(&b, "Add", "mm", "bias", "z", NULL);
    gb_node(&b, "Relu", "z", NULL, "y", NULL);
    const char *extra[] = {"mm"};
    gb_check(&b, extra, 1, 0, 0, 1);
}

/* the Add's output feeds Relu and a graph output: bias fuses, Relu stays */
static void test_act_input_read_elsewhere(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    mm(&b);
    gb_weight(&b, "bias", 1, BD, 2);
    gb_node(&b, "Add", "mm", "bias", "z", NULL);
    gb_node(&b, "Relu", "z", NULL, "y", NULL);
    const char *extra[] = {"z"};
    gb_check(&b, extra, 1, 1, 2, 1);
}

static void test_gemm_alpha(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    const int64_t a2[2] = {7, 24};
    gb_input(&b, "a", 2, a2);
    gb_weight(&b, "w", 2, WD, 1);
    pbw at = {0};
    pbw_attr_float(&at, "alpha", 2.f);
    pbw_node(&b.g, "Gemm", "gemm", NAMES("a", "w"), NAMES("g"), &at);
    gb_node(&b, "Relu", "g", NULL, "y", NULL);
    gb_check(&b, NULL, 0, 0, 0, 1);
}

/* a 1-D A: the product is [N], so a [1, N] bias would widen it */
static void test_vector_a_bias_rank2(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    const int64_t av[1] = {24}, b2[2] = {1, 33};
    gb_input(&b, "a", 1, av);
    gb_weight(&b, "w", 2, WD, 1);
    gb_weight(&b, "bias", 2, b2, 2);
    gb_node(&b, "MatMul", "a", "w", "mm", NULL);
    gb_node(&b, "Add", "mm", "bias", "y", NULL);
    gb_check(&b, NULL, 0, 0, 0, 1);
}

/* a bare MatMul stays MatMul */
static void test_bare_matmul(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    gb_input(&b, "a", 3, AD);
    gb_weight(&b, "w", 2, WD, 1);
    gb_node(&b, "MatMul", "a", "w", "y", NULL);
    gb_check(&b, NULL, 0, 0, 0, 1);
}

/* A symbolic batch: the fused step packs its weights once, at open, and
 * runs at several batch sizes without packing again */
static void test_pack_once(void **state)
{
    (void)state;
    pbw g = {0};
    pbw_str(&g, 2, "pack_once");
    const int64_t ad[3] = {-1, 5, 24};
    pbw_value_info(&g, 11, "a", F32, 3, ad);
    onr_tensor *w = tk_rand_f32(2, WD, 1), *bias = tk_rand_f32(1, BD, 2);
    pbw_init_f32(&g, "w", 2, WD, w->data, (size_t)w->numel);
    pbw_init_f32(&g, "bias", 1, BD, bias->data, (size_t)bias->numel);
    pbw_node(&g, "MatMul", "mm", NAMES("a", "w"), NAMES("m"), NULL);
    pbw_node(&g, "Add", "add", NAMES("m", "bias"), NAMES("z"), NULL);
    pbw_node(&g, "Relu", "relu", NAMES("z"), NAMES("y"), NULL);
    pbw_value_info(&g, 12, "y", F32, -1, NULL);
    pbw m = pbw_model(&g, 8, 13);
    size_t before = onr_sgemm_pack_count();
    onr_session *s = NULL;
    assert_int_equal(onr_session_open_memory(m.b, m.n, NULL, &s), ONR_OK);
    assert_int_equal(tk_count_steps(s, "FusedMatMul"), 1);
    assert_int_equal(onr_session_step_count(s), 1);
    assert_int_equal(onr_sgemm_pack_count() - before, 1);
    for (int64_t n = 1; n <= 3; n++) {
        const int64_t xd[3] = {n, 5, 24};
        onr_tensor *x = tk_rand_f32(3, xd, (uint32_t)n);
        if (onr_session_run(s, 1, NULL, (const onr_tensor *const *)&x))
            fail_msg("%s", onr_session_errmsg(s));
        const onr_tensor *y = onr_session_output(s, 0);
        const int64_t yd[3] = {n, 5, 33};
        tk_assert_shape(y, 3, yd);
        const float *xv = x->data, *wv = w->data, *bv = bias->data, *yv = y->data;
        for (int64_t i = 0; i < n * 5; i++)
            for (int j = 0; j < 33; j++) {
                double acc = bv[j];
                for (int k = 0; k < 24; k++) acc += (double)xv[i * 24 + k] * wv[k * 33 + j];
                acc = acc < 0 ? 0 : acc;
                assert_true(fabs(yv[i * 33 + j] - acc) <= 1e-5 * (1 + fabs(acc)));
            }
        onr_tensor_free(x);
    }
    assert_int_equal(onr_sgemm_pack_count() - before, 1);
    onr_session_free(s);
    onr_tensor_free(w);
    onr_tensor_free(bias);
    free(m.b);
}

/* ---- the FusedMatMul kernel ---------------------------------------------- */

static double act_ref(int act, double v, double lo, double hi)
{
    switch (act) {
    case ONR_ACT_RELU: return v < 0 ? 0 : v;
    case ONR_ACT_CLIP: return v < lo ? lo : v > hi ? hi : v;
    case ONR_ACT_SIGMOID: return 1 / (1 + exp(-v));
    case ONR_ACT_SILU: return v / (1 + exp(-v));
    case ONR_ACT_GELU_ERF: return 0.5 * v * erfc(-v / sqrt(2.0));
    case ONR_ACT_GELU_TANH:
        return v / (1 + exp(-2 * 0.7978845608028654 * (v + 0.044715 * v * v * v)));
    default: return v;
    }
}

static onr_node *fused_node(int tb, int act, float lo, float hi)
{
    onr_node *n = tk_node("FusedMatMul");
    free(n->domain);
    n->domain = onr_strdup("org.onnxrun");
    if (tb) tk_attr_int(n, "trans_b", 1);
    static const char *names[] = {"", "Relu", "Clip", "Sigmoid", "Silu", "Gelu", "Gelu"};
    if (act) tk_attr_string(n, "activation", names[act]);
    if (act == ONR_ACT_GELU_TANH) tk_attr_string(n, "approximate", "tanh");
    if (act == ONR_ACT_CLIP) {
        tk_attr_float(n, "clip_min", lo);
        tk_attr_float(n, "clip_max", hi);
    }
    return n;
}

/* A [ab, M, K] (ab = 0: 2-D A) x B [bb, K, N] or [bb, N, K] (bb = 0: 2-D B),
 * optional bias [N]; const_mask says which of B and bias are constants. */
static void kcase_r(int64_t ab, int64_t M, int64_t K, int64_t N, int64_t bb, int tb, int bias,
                    int act, uint32_t const_mask, int res)
{
    int64_t ad[3], bd[3], cd[1] = {N};
    int ar = 0, br = 0;
    if (ab) ad[ar++] = ab;
    ad[ar++] = M;
    ad[ar++] = K;
    if (bb) bd[br++] = bb;
    bd[br++] = tb ? N : K;
    bd[br++] = tb ? K : N;
    onr_tensor *in[4] = {tk_rand_f32(ar, ad, 5), tk_rand_f32(br, bd, 6),
                         bias ? tk_rand_f32(1, cd, 7) : NULL, NULL};
    float lo = -0.3f, hi = 0.4f;
    onr_node *n = fused_node(tb, act, lo, hi);
    onr_tensor *o1[1] = {NULL}, *o2[1] = {NULL};
    onr_err err = {0};
    int n_in = res ? 4 : bias ? 3 : 2;
    int64_t batch = ab > bb ? ab : bb;
    int64_t od[3];
    int orr = 0;
    if (batch) od[orr++] = batch;
    od[orr++] = M;
    od[orr++] = N;
    if (res) in[3] = tk_rand_f32(orr, od, 8);
    if (tk_run_const(n, 1, n_in, in, const_mask, 1, o1, 1, &err)) fail_msg("1 thread: %s", err.msg);
    uint32_t consumed = tk_last_consumed;
    if (tk_run_const(n, 1, n_in, in, const_mask, 1, o2, 2, &err)) fail_msg("2 threads: %s", err.msg);
    /* a constant 2-D B and a constant bias are packed / widened once */
    if ((const_mask & 2) && !bb) assert_true(consumed & 2);
    if ((const_mask & 4) && bias) assert_true(consumed & 4);
    tk_assert_shape(o1[0], orr, od);
    assert_memory_equal(o1[0]->data, o2[0]->data, sizeof(float) * (size_t)o1[0]->numel);
    const float *a = in[0]->data, *b = in[1]->data, *c = bias ? in[2]->data : NULL;
    const float *rr = res ? in[3]->data : NULL;
    const float *y = o1[0]->data;
    int64_t nb = batch ? batch : 1;
    for (int64_t p = 0; p < nb; p++)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                const float *ap = a + (ab > 1 ? p : 0) * M * K + i * K;
                const float *bp = b + (bb > 1 ? p : 0) * K * N;
                double acc = 0, mag = 0;
                for (int64_t k = 0; k < K; k++) {
                    double t = (double)ap[k] * (tb ? bp[j * K + k] : bp[k * N + j]);
                    acc += t;
                    mag += fabs(t);
                }
                if (c) acc += c[j], mag += fabs(c[j]);
                double want = act_ref(act, acc, lo, hi), got = y[(p * M + i) * N + j];
                if (rr) want += rr[(p * M + i) * N + j];
                double tol = 1e-5 * (mag + 1) + 1e-5 * fabs(want);
                if (!(fabs(got - want) <= tol))
                    fail_msg("FusedMatMul ab=%lld M=%lld K=%lld N=%lld bb=%lld tb=%d bias=%d act=%d "
                             "const=%u [%lld,%lld,%lld]: got %.8g want %.8g",
                             (long long)ab, (long long)M, (long long)K, (long long)N, (long long)bb,
                             tb, bias, act, const_mask, (long long)p, (long long)i, (long long)j,
                             got, want);
            }
    tk_free_all(1, o1);
    tk_free_all(1, o2);
    for (int i = 0; i < 4; i++) onr_tensor_free(in[i]);
    tk_node_free(n);
}

static void kcase(int64_t ab, int64_t M, int64_t K, int64_t N, int64_t bb, int tb, int bias,
                  int act, uint32_t const_mask)
{
    kcase_r(ab, M, K, N, bb, tb, bias, act, const_mask, 0);
}

static void test_kernel_shapes(void **state)
{
    (void)state;
    static const int64_t Ms[] = {1, 5, 13, 37}, Ns[] = {1, 7, 16, 33, 65}, Ks[] = {1, 9, 64};
    for (size_t mi = 0; mi < 4; mi++)
        for (size_t ni = 0; ni < 5; ni++)
            for (size_t ki = 0; ki < 3; ki++)
                for (int tb = 0; tb < 2; tb++) {
                    int act = (int)((mi + ni + ki) % 7);
                    kcase(0, Ms[mi], Ks[ki], Ns[ni], 0, tb, 1, act, 2 | 4); /* packed */
                    kcase(0, Ms[mi], Ks[ki], Ns[ni], 0, tb, (int)(ni & 1), act, 0);
                }
}

static void test_kernel_batched(void **state)
{
    (void)state;
    for (int act = 0; act <= ONR_ACT_GELU_TANH; act++)
        for (int tb = 0; tb < 2; tb++) {
            kcase(3, 13, 20, 33, 0, tb, 1, act, 2 | 4); /* folded into one GEMM, packed B */
            kcase(3, 13, 20, 33, 0, tb, 1, act, 0);     /* folded, B not constant */
            kcase(3, 13, 20, 33, 3, tb, 1, act, 4);     /* strided batch */
            kcase(1, 13, 20, 33, 3, tb, 0, act, 2);     /* A broadcast over B's batch */
        }
    /* a residual on each GEMM shape: folded (packed or not), strided
     * batch, one GEMM per matrix (A [3,1,...] x B [1,2,...] broadcast) */
    kcase_r(3, 13, 20, 33, 0, 0, 1, ONR_ACT_RELU, 2 | 4, 1);
    kcase_r(3, 13, 20, 33, 0, 1, 0, ONR_ACT_GELU_ERF, 0, 1);
    kcase_r(3, 13, 20, 33, 3, 0, 1, ONR_ACT_NONE, 0, 1);
    kcase_r(0, 37, 64, 65, 0, 0, 1, ONR_ACT_SILU, 2 | 4, 1);
}

/* one GEMM per output matrix (A [2,1,M,K] x B [1,3,K,N]), with bias,
 * activation and a residual [2,3,M,N] */
static void test_kernel_loop_residual(void **state)
{
    (void)state;
    enum { M = 7, K = 11, N = 18 };
    const int64_t ad[4] = {2, 1, M, K}, bd[4] = {1, 3, K, N}, cd[1] = {N}, rd[4] = {2, 3, M, N};
    onr_tensor *in[4] = {tk_rand_f32(4, ad, 1), tk_rand_f32(4, bd, 2), tk_rand_f32(1, cd, 3),
                         tk_rand_f32(4, rd, 4)};
    for (int t = 1; t <= 2; t++) {
        onr_node *n = fused_node(0, ONR_ACT_SIGMOID, 0, 0);
        onr_tensor *o[1] = {NULL};
        onr_err err = {0};
        if (tk_run_const(n, 1, 4, in, 4, 1, o, t, &err)) fail_msg("%s", err.msg);
        tk_assert_shape(o[0], 4, rd);
        const float *a = in[0]->data, *b = in[1]->data, *c = in[2]->data, *r = in[3]->data;
        for (int p = 0; p < 6; p++)
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double acc = c[j];
                    for (int k = 0; k < K; k++)
                        acc += (double)a[(p / 3) * M * K + i * K + k] * b[(p % 3) * K * N + k * N + j];
                    double want = act_ref(ONR_ACT_SIGMOID, acc, 0, 0) + r[(p * M + i) * N + j];
                    double got = ((float *)o[0]->data)[(p * M + i) * N + j];
                    if (fabs(got - want) > 1e-5 * (1 + fabs(want)))
                        fail_msg("loop residual [%d,%d,%d]: %g vs %g", p, i, j, got, want);
                }
        tk_free_all(1, o);
        tk_node_free(n);
    }
    /* a residual of another shape is refused */
    const int64_t bad[4] = {2, 3, M, 1};
    onr_tensor *r2 = tk_rand_f32(4, bad, 5), *keep = in[3];
    in[3] = r2;
    onr_node *n = fused_node(0, 0, 0, 0);
    onr_tensor *o[1] = {NULL};
    onr_err err = {0};
    assert_int_not_equal(tk_run(n, 1, 4, in, 1, o, 1, &err), ONR_OK);
    assert_non_null(strstr(err.msg, "residual"));
    tk_free_all(1, o);
    tk_node_free(n);
    in[3] = keep;
    onr_tensor_free(r2);
    tk_free_all(4, in);
}

static void test_kernel_f16(void **state)
{
    (void)state;
    const int64_t ad[2] = {6, 17}, bd[2] = {17, 9}, cd[1] = {9};
    onr_tensor *f[3] = {tk_rand_f32(2, ad, 1), tk_rand_f32(2, bd, 2), tk_rand_f32(1, cd, 3)};
    onr_tensor *h[3];
    for (int i = 0; i < 3; i++) {
        h[i] = tk_typed(ONR_FLOAT16, f[i]->rank, f[i]->dims, NULL);
        for (int64_t k = 0; k < f[i]->numel; k++) onr_set_f64(h[i], k, onr_get_f64(f[i], k));
    }
    for (uint32_t cm = 0; cm < 8; cm += 2) {
        onr_node *n = fused_node(0, ONR_ACT_RELU, 0, 0);
        onr_tensor *o[1] = {NULL};
        onr_err err = {0};
        if (tk_run_const(n, 1, 3, h, cm, 1, o, 1, &err)) fail_msg("%s", err.msg);
        assert_int_equal(o[0]->dtype, ONR_FLOAT16);
        for (int64_t i = 0; i < 6; i++)
            for (int64_t j = 0; j < 9; j++) {
                double acc = onr_get_f64(h[2], j);
                for (int64_t k = 0; k < 17; k++)
                    acc += onr_get_f64(h[0], i * 17 + k) * onr_get_f64(h[1], k * 9 + j);
                acc = acc < 0 ? 0 : acc;
                double got = onr_get_f64(o[0], i * 9 + j);
                if (fabs(got - acc) > 2e-3 * (fabs(acc) + 1)) fail_msg("f16 %g vs %g", got, acc);
            }
        tk_free_all(1, o);
        tk_node_free(n);
    }
    tk_free_all(3, f);
    tk_free_all(3, h);
}

static void test_kernel_errors(void **state)
{
    (void)state;
    const int64_t ad[2] = {4, 5}, bd[2] = {5, 6}, cbad[1] = {5}, b1[1] = {5};
    onr_tensor *in[3] = {tk_rand_f32(2, ad, 1), tk_rand_f32(2, bd, 2), tk_rand_f32(1, cbad, 3)};
    onr_tensor *o[1] = {NULL};
    onr_err err = {0};
    onr_node *n = fused_node(0, 0, 0, 0);
    assert_int_not_equal(tk_run(n, 1, 3, in, 1, o, 1, &err), ONR_OK); /* bias of 5, N = 6 */
    assert_non_null(strstr(err.msg, "bias"));
    tk_free_all(1, o); /* tk_run allocates the outputs even when it fails */
    tk_node_free(n);
    n = fused_node(0, 0, 0, 0);
    tk_attr_string(n, "activation", "Swish");
    memset(&err, 0, sizeof err);
    assert_int_not_equal(tk_run(n, 1, 2, in, 1, o, 1, &err), ONR_OK);
    assert_non_null(strstr(err.msg, "activation"));
    tk_free_all(1, o);
    tk_node_free(n);
    n = fused_node(1, 0, 0, 0); /* trans_b: B [5, 6] is [N, K], K = 6, but A's K is 5 */
    assert_int_not_equal(tk_run(n, 1, 2, in, 1, o, 1, &err), ONR_OK);
    tk_free_all(1, o);
    tk_node_free(n);
    onr_tensor *v[2] = {in[0], tk_rand_f32(1, b1, 4)};
    n = fused_node(1, 0, 0, 0); /* trans_b with a 1-D B */
    memset(&err, 0, sizeof err);
    assert_int_not_equal(tk_run(n, 1, 2, v, 1, o, 1, &err), ONR_OK);
    assert_non_null(strstr(err.msg, "trans_b"));
    tk_free_all(1, o);
    tk_node_free(n);
    onr_tensor_free(v[1]);
    tk_free_all(3, in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bias),
        cmocka_unit_test(test_bias_first_rank3),
        cmocka_unit_test(test_bias_relu),
        cmocka_unit_test(test_bias_gelu_erf),
        cmocka_unit_test(test_bias_gelu_tanh),
        cmocka_unit_test(test_sigmoid_no_bias),
        cmocka_unit_test(test_bias_clip),
        cmocka_unit_test(test_bias_silu),
        cmocka_unit_test(test_silu_sigmoid_read_elsewhere),
        cmocka_unit_test(test_transpose_b),
        cmocka_unit_test(test_transpose_b_perm),
        cmocka_unit_test(test_transpose_b_also_a),
        cmocka_unit_test(test_nonconst_b),
        cmocka_unit_test(test_gemm_relu),
        cmocka_unit_test(test_bias_full_mn),
        cmocka_unit_test(test_bias_residual),
        cmocka_unit_test(test_bias_relu_residual_batched),
        cmocka_unit_test(test_residual_broadcast),
        cmocka_unit_test(test_bias_not_const),
        cmocka_unit_test(test_bias_higher_rank),
        cmocka_unit_test(test_matmul_output_read_elsewhere),
        cmocka_unit_test(test_act_input_read_elsewhere),
        cmocka_unit_test(test_gemm_alpha),
        cmocka_unit_test(test_vector_a_bias_rank2),
        cmocka_unit_test(test_bare_matmul),
        cmocka_unit_test(test_pack_once),
        cmocka_unit_test(test_kernel_shapes),
        cmocka_unit_test(test_kernel_batched),
        cmocka_unit_test(test_kernel_loop_residual),
        cmocka_unit_test(test_kernel_f16),
        cmocka_unit_test(test_kernel_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
