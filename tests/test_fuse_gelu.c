/*
 * test_fuse_gelu.c - the Gelu fusion (src/plan/fuse_gelu.c): the erf form
 * in the operand orders the TorchScript exporter (Div by sqrt 2, Mul(.,
 * 0.5) last) and the dynamo exporter (Mul by 1/sqrt 2, Mul(x, 0.5) first,
 * constants on the left) write, GPT-2's tanh form with Pow(x, 3) and with
 * x*x*x, and near-misses that must stay unfused: wrong constants, a
 * non-constant scale, an intermediate read outside the pattern, a constant
 * that broadcasts x wider, an integer x. Each model runs fused and unfused
 * (tk_fuse_check) and the outputs agree within rtol 1e-4 / atol 1e-5; the
 * Gelu kernel itself is checked against double-precision references on
 * float, double, float16 and bfloat16, both approximations.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kutil.h"
#include "pbw.h"

enum { F32 = 1, I32 = 6 };

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

static const int64_t XD[3] = {2, 3, 37};

/* A graph under construction: x [2, 3, 37] float in, y out. */
typedef struct gb {
    pbw g;
    int n;
} gb;

static void gb_start_dims(gb *b, const int64_t *declared)
{
    memset(b, 0, sizeof *b);
    pbw_str(&b->g, 2, "gelu_test");
    pbw_value_info(&b->g, 11, "x", F32, 3, declared);
}

static void gb_start(gb *b) { gb_start_dims(b, XD); }

/* A scalar constant (rank 0, or rank `rank` of ones). */
static void gb_const(gb *b, const char *name, float v, int rank)
{
    int64_t ones[6] = {1, 1, 1, 1, 1, 1};
    pbw_init_f32(&b->g, name, rank, ones, &v, 1);
}

static void gb_node(gb *b, const char *op, const char *a, const char *c, const char *out)
{
    char name[32];
    snprintf(name, sizeof name, "n%d", b->n++);
    if (c) pbw_node(&b->g, op, name, NAMES(a, c), NAMES(out), NULL);
    else pbw_node(&b->g, op, name, NAMES(a), NAMES(out), NULL);
}

static void run_check(gb *b, const char **extra_out, int n_extra, int extra_in, int want_gelu,
                      int want_replaced)
{
    for (int i = 0; i < n_extra; i++) pbw_value_info(&b->g, 12, extra_out[i], F32, -1, NULL);
    pbw_value_info(&b->g, 12, "y", F32, -1, NULL);
    pbw m = pbw_model(&b->g, 8, 13);
    onr_tensor *in[2];
    in[0] = tk_rand_f32(3, XD, 7);
    float *x = in[0]->data;
    for (int64_t i = 0; i < in[0]->numel; i++) x[i] *= 6.f; /* [-6, 6) */
    int n_in = 1;
    if (extra_in) {
        float s = 0.70710678f;
        in[n_in++] = tk_f32(0, NULL, &s);
    }
    tk_fuse_report r;
    tk_fuse_check(m.b, m.n, n_in, in, "Gelu", 1e-4f, 1e-5f, 1, &r);
    assert_int_equal(r.n_op, want_gelu);
    assert_int_equal(r.n_fused, want_gelu);
    assert_int_equal(r.replaced, want_replaced);
    if (want_gelu) assert_int_equal(r.steps_fused, r.steps_unfused - want_replaced + want_gelu);
    else assert_int_equal(r.steps_fused, r.steps_unfused);
    tk_free_all(n_in, in);
    free(m.b);
}

/* ---- erf form --------------------------------------------------------- */

/* TorchScript (BERT): Div(x, sqrt2), Erf, Add(e, 1), Mul(x, p), Mul(., 0.5) */
static void erf_torchscript(gb *b, float div, float one, float half, const char *scale)
{
    gb_const(b, "c_sqrt2", div, 0);
    gb_const(b, "c_one", one, 0);
    gb_const(b, "c_half", half, 0);
    gb_node(b, "Div", "x", scale ? scale : "c_sqrt2", "d");
    gb_node(b, "Erf", "d", NULL, "e");
    gb_node(b, "Add", "e", "c_one", "p");
    gb_node(b, "Mul", "x", "p", "xp");
    gb_node(b, "Mul", "xp", "c_half", "y");
}

static void test_erf_torchscript(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    erf_torchscript(&b, 1.4142135f, 1.f, 0.5f, NULL);
    run_check(&b, NULL, 0, 0, 1, 5);
}

/* dynamo style: Mul(1/sqrt2, x), Erf, Add(1, e), Mul(x, 0.5) first, Mul(h, p) */
static void test_erf_dynamo(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    gb_const(&b, "c_isq", 0.70710678f, 0);
    gb_const(&b, "c_one", 1.f, 0);
    gb_const(&b, "c_half", 0.5f, 1);
    gb_node(&b, "Mul", "c_isq", "x", "d");
    gb_node(&b, "Erf", "d", NULL, "e");
    gb_node(&b, "Add", "c_one", "e", "p");
    gb_node(&b, "Mul", "c_half", "x", "h");
    gb_node(&b, "Mul", "p", "h", "y");
    run_check(&b, NULL, 0, 0, 1, 5);
}

/* x * (0.5 * (1 + erf)) */
static void test_erf_half_on_p(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    gb_const(&b, "c_isq", 0.70710678f, 0);
    gb_const(&b, "c_one", 1.f, 0);
    gb_const(&b, "c_half", 0.5f, 0);
    gb_node(&b, "Mul", "x", "c_isq", "d");
    gb_node(&b, "Erf", "d", NULL, "e");
    gb_node(&b, "Add", "e", "c_one", "p");
    gb_node(&b, "Mul", "c_half", "p", "ph");
    gb_node(&b, "Mul", "ph", "x", "y");
    run_check(&b, NULL, 0, 0, 1, 5);
}

/* two GELUs in a chain both fuse */
static void test_erf_twice(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    gb_const(&b, "c_sqrt2", 1.4142135f, 0);
    gb_const(&b, "c_one", 1.f, 0);
    gb_const(&b, "c_half", 0.5f, 0);
    gb_node(&b, "Div", "x", "c_sqrt2", "d");
    gb_node(&b, "Erf", "d", NULL, "e");
    gb_node(&b, "Add", "e", "c_one", "p");
    gb_node(&b, "Mul", "x", "p", "xp");
    gb_node(&b, "Mul", "xp", "c_half", "g1");
    gb_node(&b, "Div", "g1", "c_sqrt2", "d2");
    gb_node(&b, "Erf", "d2", NULL, "e2");
    gb_node(&b, "Add", "c_one", "e2", "p2");
    gb_node(&b, "Mul", "p2", "g1", "xp2");
    gb_node(&b, "Mul", "c_half", "xp2", "y");
    run_check(&b, NULL, 0, 0, 2, 10);
}

/* a symbolic batch dim (shape inference cannot run): still fuses */
static void test_erf_symbolic(void **state)
{
    (void)state;
    gb b;
    const int64_t sym[3] = {-1, 3, 37};
    gb_start_dims(&b, sym);
    erf_torchscript(&b, 1.4142135f, 1.f, 0.5f, NULL);
    run_check(&b, NULL, 0, 0, 1, 5);
}

/* near-misses of the erf form */
static void test_erf_wrong_sqrt2(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    erf_torchscript(&b, 1.5f, 1.f, 0.5f, NULL);
    run_check(&b, NULL, 0, 0, 0, 0);
}

static void test_erf_wrong_half(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    erf_torchscript(&b, 1.4142135f, 1.f, 0.5002f, NULL); /* 4e-4 off: beyond 1e-4 */
    run_check(&b, NULL, 0, 0, 0, 0);
}

static void test_erf_within_tolerance(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    erf_torchscript(&b, 1.414213f, 1.f, 0.50002f, NULL); /* within 1e-4 */
    run_check(&b, NULL, 0, 0, 1, 5);
}

static void test_erf_wrong_one(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    erf_torchscript(&b, 1.4142135f, 2.f, 0.5f, NULL);
    run_check(&b, NULL, 0, 0, 0, 0);
}

static void test_erf_scale_not_const(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    pbw_value_info(&b.g, 11, "s", F32, 0, NULL);
    gb_const(&b, "c_one", 1.f, 0);
    gb_const(&b, "c_half", 0.5f, 0);
    gb_node(&b, "Mul", "x", "s", "d");
    gb_node(&b, "Erf", "d", NULL, "e");
    gb_node(&b, "Add", "e", "c_one", "p");
    gb_node(&b, "Mul", "x", "p", "xp");
    gb_node(&b, "Mul", "xp", "c_half", "y");
    run_check(&b, NULL, 0, 1, 0, 0);
}

static void test_erf_intermediate_read_outside(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    erf_torchscript(&b, 1.4142135f, 1.f, 0.5f, NULL);
    const char *extra[] = {"e"}; /* Erf's output is also a graph output */
    run_check(&b, extra, 1, 0, 0, 0);
}

static void test_erf_intermediate_read_by_node(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    erf_torchscript(&b, 1.4142135f, 1.f, 0.5f, NULL);
    gb_node(&b, "Neg", "xp", NULL, "z"); /* x * p read by another node */
    const char *extra[] = {"z"};
    run_check(&b, extra, 1, 0, 0, 0);
}

/* 0.5 as [1,1,1,1]: the product broadcasts x [2,3,37] to rank 4 */
static void test_erf_broadcasting_const(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    gb_const(&b, "c_sqrt2", 1.4142135f, 0);
    gb_const(&b, "c_one", 1.f, 0);
    gb_const(&b, "c_half", 0.5f, 4);
    gb_node(&b, "Div", "x", "c_sqrt2", "d");
    gb_node(&b, "Erf", "d", NULL, "e");
    gb_node(&b, "Add", "e", "c_one", "p");
    gb_node(&b, "Mul", "x", "p", "xp");
    gb_node(&b, "Mul", "xp", "c_half", "y");
    run_check(&b, NULL, 0, 0, 0, 0);
}

/* ---- tanh form ---------------------------------------------------------- */

/* GPT-2: h = x*0.5; c = Pow(x,3) | x*x*x; s = c*0.044715; t = x+s;
 * u = t*0.7978846; Tanh; p = Tanh+1; y = h*p */
static void tanh_gpt2(gb *b, int cube_mul, float k1, float k2, float expo)
{
    gb_const(b, "c_half", 0.5f, 0);
    gb_const(b, "c_three", expo, 0);
    gb_const(b, "c_k1", k1, 0);
    gb_const(b, "c_k2", k2, 0);
    gb_const(b, "c_one", 1.f, 0);
    gb_node(b, "Mul", "x", "c_half", "h");
    if (cube_mul) {
        gb_node(b, "Mul", "x", "x", "sq");
        gb_node(b, "Mul", "x", "sq", "c");
    } else {
        gb_node(b, "Pow", "x", "c_three", "c");
    }
    gb_node(b, "Mul", "c", "c_k1", "s");
    gb_node(b, "Add", "x", "s", "t");
    gb_node(b, "Mul", "t", "c_k2", "u");
    gb_node(b, "Tanh", "u", NULL, "th");
    gb_node(b, "Add", "th", "c_one", "p");
    gb_node(b, "Mul", "h", "p", "y");
}

static void test_tanh_pow(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    tanh_gpt2(&b, 0, 0.044715f, 0.7978846f, 3.f);
    run_check(&b, NULL, 0, 0, 1, 8);
}

static void test_tanh_cube_mul(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    tanh_gpt2(&b, 1, 0.044715f, 0.7978846f, 3.f);
    run_check(&b, NULL, 0, 0, 1, 9);
}

static void test_tanh_wrong_k1(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    tanh_gpt2(&b, 0, 0.05f, 0.7978846f, 3.f);
    run_check(&b, NULL, 0, 0, 0, 0);
}

static void test_tanh_wrong_k2(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    tanh_gpt2(&b, 0, 0.044715f, 0.8f, 3.f);
    run_check(&b, NULL, 0, 0, 0, 0);
}

static void test_tanh_wrong_power(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    tanh_gpt2(&b, 0, 0.044715f, 0.7978846f, 2.f);
    run_check(&b, NULL, 0, 0, 0, 0);
}

static void test_tanh_intermediate_read_outside(void **state)
{
    (void)state;
    gb b;
    gb_start(&b);
    tanh_gpt2(&b, 0, 0.044715f, 0.7978846f, 3.f);
    const char *extra[] = {"th"};
    run_check(&b, extra, 1, 0, 0, 0);
}

/* float16 GPT-2 tanh form: float16 constants (0.044715 is 1.5e-4 off in
 * float16) still match; fused computes in float32 and rounds once, so the
 * comparison allows float16's precision */
static void f16_scalar(pbw *g, const char *name, float v)
{
    pbw t = {0};
    uint16_t h = onr_float_to_half(v);
    pbw_tensor_head(&t, name, 10, 0, NULL);
    pbw_bytes(&t, 9, &h, 2);
    pbw_msg(g, 5, &t);
}

static void test_tanh_float16(void **state)
{
    (void)state;
    pbw g = {0};
    pbw_str(&g, 2, "gelu_f16");
    pbw_value_info(&g, 11, "x", 10, 3, XD);
    f16_scalar(&g, "c_half", 0.5f);
    f16_scalar(&g, "c_three", 3.f);
    f16_scalar(&g, "c_k1", 0.044715f);
    f16_scalar(&g, "c_k2", 0.7978846f);
    f16_scalar(&g, "c_one", 1.f);
    pbw_node(&g, "Mul", "a", NAMES("x", "c_half"), NAMES("h"), NULL);
    pbw_node(&g, "Pow", "b", NAMES("x", "c_three"), NAMES("c"), NULL);
    pbw_node(&g, "Mul", "c", NAMES("c", "c_k1"), NAMES("s"), NULL);
    pbw_node(&g, "Add", "d", NAMES("x", "s"), NAMES("t"), NULL);
    pbw_node(&g, "Mul", "e", NAMES("t", "c_k2"), NAMES("u"), NULL);
    pbw_node(&g, "Tanh", "f", NAMES("u"), NAMES("th"), NULL);
    pbw_node(&g, "Add", "g", NAMES("th", "c_one"), NAMES("p"), NULL);
    pbw_node(&g, "Mul", "h", NAMES("h", "p"), NAMES("y"), NULL);
    pbw_value_info(&g, 12, "y", 10, -1, NULL);
    pbw m = pbw_model(&g, 8, 13);
    onr_tensor *x32 = tk_rand_f32(3, XD, 7);
    onr_tensor *in[1] = {tk_typed(ONR_FLOAT16, 3, XD, NULL)};
    for (int64_t i = 0; i < x32->numel; i++) onr_set_f64(in[0], i, 4 * onr_get_f64(x32, i));
    tk_fuse_report r;
    tk_fuse_check(m.b, m.n, 1, in, "Gelu", 1e-2f, 2e-3f, 1, &r);
    assert_int_equal(r.n_fused, 1);
    assert_int_equal(r.replaced, 8);
    onr_tensor_free(x32);
    tk_free_all(1, in);
    free(m.b);
}

/* ---- the Gelu kernel ------------------------------------------------------ */

static double gelu_ref(double x, int tanh_form)
{
    /* 0.5 (1 + tanh u) = 1 / (1 + exp(-2u)): no cancellation for u << 0 */
    if (tanh_form) return x / (1 + exp(-2 * 0.7978845608028654 * (x + 0.044715 * x * x * x)));
    return 0.5 * x * erfc(-x / sqrt(2.0));
}

static void kernel_case(onr_dtype dt, int tanh_form, int64_t n, float rtol, float atol)
{
    int64_t d[1] = {n};
    onr_tensor *x32 = tk_rand_f32(1, d, 11);
    float *xv = x32->data;
    for (int64_t i = 0; i < n; i++) xv[i] *= 12.f; /* [-12, 12) */
    if (n > 4) xv[0] = -30.f, xv[1] = 30.f, xv[2] = 0.f, xv[3] = -5e-4f;
    onr_tensor *x = x32;
    if (dt != ONR_FLOAT) {
        x = tk_typed(dt, 1, d, NULL);
        for (int64_t i = 0; i < n; i++) onr_set_f64(x, i, xv[i]);
    }
    onr_node *node = tk_node("Gelu");
    if (tanh_form) tk_attr_string(node, "approximate", "tanh");
    onr_tensor *in[1] = {x}, *out[1] = {NULL};
    onr_err err = {0};
    assert_int_equal(tk_run(node, 20, 1, in, 1, out, 1, &err), ONR_OK);
    assert_int_equal(out[0]->dtype, dt);
    for (int64_t i = 0; i < n; i++) {
        double xi = onr_get_f64(x, i), want = gelu_ref(xi, tanh_form), got = onr_get_f64(out[0], i);
        if (!(fabs(got - want) <= atol + rtol * fabs(want)))
            fail_msg("Gelu(%s, %s) x=%.9g: got %.9g want %.9g", onr_dtype_name(dt),
                     tanh_form ? "tanh" : "none", xi, got, want);
    }
    tk_free_all(1, out);
    if (x != x32) onr_tensor_free(x);
    onr_tensor_free(x32);
    tk_node_free(node);
}

static void test_gelu_kernel(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        /* float32: a few ulp; the tails (x < -5) lose a little more to
         * the rounding of exp's argument (tanh form: up to ~1e-5) */
        kernel_case(ONR_FLOAT, t, 1000, t ? 1.5e-5f : 3e-6f, 1e-36f);
        kernel_case(ONR_FLOAT, t, 3, t ? 1.5e-5f : 3e-6f, 1e-36f);
        kernel_case(ONR_DOUBLE, t, 257, 1e-12f, 0.f);
        kernel_case(ONR_FLOAT16, t, 257, 2e-3f, 1e-7f);
        kernel_case(ONR_BFLOAT16, t, 257, 1e-2f, 1e-7f);
    }
}

static void test_gelu_kernel_bad_attr(void **state)
{
    (void)state;
    int64_t d[1] = {4};
    onr_tensor *in[1] = {tk_rand_f32(1, d, 1)}, *out[1] = {NULL};
    onr_node *node = tk_node("Gelu");
    tk_attr_string(node, "approximate", "fast");
    onr_err err = {0};
    assert_int_not_equal(tk_run(node, 20, 1, in, 1, out, 1, &err), ONR_OK);
    assert_non_null(strstr(err.msg, "approximate"));
    tk_free_all(1, out); /* tk_run allocates the outputs even when it fails */
    tk_free_all(1, in);
    tk_node_free(node);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_erf_torchscript),
        cmocka_unit_test(test_erf_dynamo),
        cmocka_unit_test(test_erf_half_on_p),
        cmocka_unit_test(test_erf_twice),
        cmocka_unit_test(test_erf_within_tolerance),
        cmocka_unit_test(test_erf_symbolic),
        cmocka_unit_test(test_erf_wrong_sqrt2),
        cmocka_unit_test(test_erf_wrong_half),
        cmocka_unit_test(test_erf_wrong_one),
        cmocka_unit_test(test_erf_scale_not_const),
        cmocka_unit_test(test_erf_intermediate_read_outside),
        cmocka_unit_test(test_erf_intermediate_read_by_node),
        cmocka_unit_test(test_erf_broadcasting_const),
        cmocka_unit_test(test_tanh_pow),
        cmocka_unit_test(test_tanh_cube_mul),
        cmocka_unit_test(test_tanh_wrong_k1),
        cmocka_unit_test(test_tanh_wrong_k2),
        cmocka_unit_test(test_tanh_wrong_power),
        cmocka_unit_test(test_tanh_intermediate_read_outside),
        cmocka_unit_test(test_tanh_float16),
        cmocka_unit_test(test_gelu_kernel),
        cmocka_unit_test(test_gelu_kernel_bad_attr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
