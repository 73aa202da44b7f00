/*
 * test_functions.c - model-local functions (ModelProto.functions) are
 * inlined at load: formal inputs/outputs bound to the call, attributes by
 * reference with the call's value or the function's default, constants in
 * a body shared by several calls, calls nested inside functions, the
 * function's own opset imports, and clear errors for recursion and for
 * calls that do not fit the declaration.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kutil.h"
#include "pbw.h"

enum { F32 = 1 };

static void attr_ref(pbw *attrs, const char *name, const char *ref, int type)
{
    pbw a = {0};
    pbw_str(&a, 1, name);
    pbw_int(&a, 20, type);
    pbw_str(&a, 21, ref);
    pbw_msg(attrs, 5, &a);
}

static void opset(pbw *m, int field, const char *domain, int64_t v)
{
    pbw os = {0};
    pbw_str(&os, 1, domain);
    pbw_int(&os, 2, v);
    pbw_msg(m, field, &os);
}

/* custom.ScaledLeaky(X, S) -> Y = LeakyRelu(X * S * 2, alpha = @alpha),
 * alpha defaulting to 0.1; the 2 is a Constant tensor in the body. */
static void fn_scaled_leaky(pbw *m, int64_t onnx_opset)
{
    pbw f = {0}, at = {0};
    pbw_str(&f, 1, "ScaledLeaky");
    pbw_str(&f, 10, "custom");
    pbw_str(&f, 4, "X");
    pbw_str(&f, 4, "S");
    pbw_str(&f, 5, "Y");
    pbw_str(&f, 6, "alpha");
    pbw def = {0};
    pbw_str(&def, 1, "alpha");
    pbw_float(&def, 2, 0.1f);
    pbw_int(&def, 20, 1);
    pbw_msg(&f, 11, &def);
    /* Constant two = [2.0] */
    pbw t = {0}, a = {0};
    float two = 2.0f;
    pbw_int(&t, 2, F32);
    pbw_bytes(&t, 9, &two, sizeof two);
    pbw_str(&a, 1, "value");
    pbw_msg(&a, 5, &t);
    pbw_int(&a, 20, 4); /* TENSOR */
    pbw_msg(&at, 5, &a);
    pbw_node_in(&f, 7, "Constant", NULL, "c", NULL, (const char *[]){"two", NULL}, &at);
    pbw_node_in(&f, 7, "Mul", NULL, "m0", (const char *[]){"X", "S", NULL}, (const char *[]){"t", NULL},
             NULL);
    pbw_node_in(&f, 7, "Mul", NULL, "m1", (const char *[]){"t", "two", NULL},
             (const char *[]){"u", NULL}, NULL);
    attr_ref(&at, "alpha", "alpha", 1);
    pbw_node_in(&f, 7, "LeakyRelu", NULL, "lr", (const char *[]){"u", NULL}, (const char *[]){"Y", NULL},
             &at);
    opset(&f, 9, "", onnx_opset);
    pbw_msg(m, 25, &f);
}

/* custom.Twice(A, S) -> Z = Neg(ScaledLeaky(A, S, alpha = 0.5)): a call
 * inside a function. */
static void fn_twice(pbw *m)
{
    pbw f = {0}, at = {0};
    pbw_str(&f, 1, "Twice");
    pbw_str(&f, 10, "custom");
    pbw_str(&f, 4, "A");
    pbw_str(&f, 4, "S");
    pbw_str(&f, 5, "Z");
    pbw_attr_float(&at, "alpha", 0.5f);
    pbw_node_in(&f, 7, "ScaledLeaky", "custom", "inner", (const char *[]){"A", "S", NULL},
             (const char *[]){"m", NULL}, &at);
    pbw_node_in(&f, 7, "Neg", NULL, "neg", (const char *[]){"m", NULL}, (const char *[]){"Z", NULL},
             NULL);
    opset(&f, 9, "", 13);
    opset(&f, 9, "custom", 1);
    pbw_msg(m, 25, &f);
}

static pbw model_with_functions(void)
{
    pbw g = {0}, at = {0};
    int64_t d[] = {1, 4};
    pbw_str(&g, 2, "calls");
    pbw_value_info(&g, 11, "x", F32, 2, d);
    pbw_value_info(&g, 11, "s", F32, 2, d);
    pbw_value_info(&g, 12, "y1", F32, 2, d);
    pbw_value_info(&g, 12, "y2", F32, 2, d);
    pbw_value_info(&g, 12, "y3", F32, 2, d);
    pbw_node_in(&g, 1, "ScaledLeaky", "custom", "call1", (const char *[]){"x", "s", NULL},
             (const char *[]){"y1", NULL}, NULL);
    pbw_attr_float(&at, "alpha", 0.3f);
    pbw_node_in(&g, 1, "ScaledLeaky", "custom", "call2", (const char *[]){"x", "s", NULL},
             (const char *[]){"y2", NULL}, &at);
    pbw_node_in(&g, 1, "Twice", "custom", "call3", (const char *[]){"x", "s", NULL},
             (const char *[]){"y3", NULL}, NULL);
    pbw m = {0};
    pbw_int(&m, 1, 8);
    opset(&m, 8, "", 17);
    opset(&m, 8, "custom", 1);
    pbw_msg(&m, 7, &g);
    fn_scaled_leaky(&m, 13);
    fn_twice(&m);
    return m;
}

static void test_inline_and_run(void **state)
{
    (void)state;
    pbw m = model_with_functions();
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(m.b, m.n, NULL, &s);
    if (st) fail_msg("open: %s", onr_session_errmsg(s));
    float xv[] = {1.0f, -2.0f, 0.5f, -0.25f}, sv[] = {3.0f, 1.5f, -4.0f, 2.0f};
    int64_t d[] = {1, 4};
    onr_tensor *in[2] = {onr_tensor_wrap(ONR_FLOAT, 2, d, xv), onr_tensor_wrap(ONR_FLOAT, 2, d, sv)};
    st = onr_session_run(s, 2, NULL, (const onr_tensor *const *)in);
    if (st) fail_msg("run: %s", onr_session_errmsg(s));
    const float alpha[3] = {0.1f, 0.3f, 0.5f};
    for (int o = 0; o < 3; o++) {
        const onr_tensor *y = onr_session_output(s, o);
        assert_int_equal(onr_tensor_numel(y), 4);
        const float *yv = onr_tensor_data(y);
        for (int i = 0; i < 4; i++) {
            float u = xv[i] * sv[i] * 2.0f;
            float want = u > 0 ? u : alpha[o] * u;
            if (o == 2) want = -want;
            if (fabsf(yv[i] - want) > 1e-6f)
                fail_msg("output %d element %d: %g, expected %g", o, i, yv[i], want);
        }
    }
    onr_tensor_free(in[0]);
    onr_tensor_free(in[1]);
    onr_session_free(s);
    free(m.b);
}

/* The body's nodes use the function's opset: Unsqueeze with an axes
 * attribute is valid at 11 and not at 13, where the model stands. */
static void test_function_opset(void **state)
{
    (void)state;
    pbw f = {0}, at = {0}, g = {0}, m = {0};
    int64_t ax[] = {0};
    pbw_str(&f, 1, "AddDim");
    pbw_str(&f, 10, "custom");
    pbw_str(&f, 4, "X");
    pbw_str(&f, 5, "Y");
    pbw_attr_ints(&at, "axes", ax, 1);
    pbw_node_in(&f, 7, "Unsqueeze", NULL, "u", (const char *[]){"X", NULL}, (const char *[]){"Y", NULL},
             &at);
    opset(&f, 9, "", 11);
    int64_t din[] = {4}, dout[] = {1, 4};
    pbw_str(&g, 2, "g");
    pbw_value_info(&g, 11, "x", F32, 1, din);
    pbw_value_info(&g, 12, "y", F32, 2, dout);
    pbw_node_in(&g, 1, "AddDim", "custom", NULL, (const char *[]){"x", NULL}, (const char *[]){"y", NULL},
             NULL);
    pbw_int(&m, 1, 8);
    opset(&m, 8, "", 13);
    opset(&m, 8, "custom", 1);
    pbw_msg(&m, 7, &g);
    pbw_msg(&m, 25, &f);
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(m.b, m.n, NULL, &s);
    if (st) fail_msg("open: %s", onr_session_errmsg(s));
    float xv[] = {1, 2, 3, 4};
    onr_tensor *x = onr_tensor_wrap(ONR_FLOAT, 1, din, xv);
    st = onr_session_run(s, 1, NULL, (const onr_tensor *const *)&x);
    if (st) fail_msg("run: %s", onr_session_errmsg(s));
    const onr_tensor *y = onr_session_output(s, 0);
    assert_int_equal(onr_tensor_rank(y), 2);
    assert_int_equal(onr_tensor_dims(y)[0], 1);
    assert_int_equal(onr_tensor_dims(y)[1], 4);
    onr_tensor_free(x);
    onr_session_free(s);
    free(m.b);
}

static onr_status open_expect_error(pbw *m, const char *needle)
{
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(m->b, m->n, NULL, &s);
    const char *msg = onr_session_errmsg(s);
    if (st == ONR_OK) fail_msg("opened a model that should fail (%s)", needle);
    if (!strstr(msg, needle)) fail_msg("message '%s' does not mention '%s'", msg, needle);
    onr_session_free(s);
    free(m->b);
    return st;
}

static void test_recursion_refused(void **state)
{
    (void)state;
    pbw f = {0}, g = {0}, m = {0};
    int64_t d[] = {4};
    pbw_str(&f, 1, "Rec");
    pbw_str(&f, 10, "custom");
    pbw_str(&f, 4, "X");
    pbw_str(&f, 5, "Y");
    pbw_node_in(&f, 7, "Rec", "custom", "again", (const char *[]){"X", NULL},
             (const char *[]){"Y", NULL}, NULL);
    opset(&f, 9, "custom", 1);
    pbw_str(&g, 2, "g");
    pbw_value_info(&g, 11, "x", F32, 1, d);
    pbw_value_info(&g, 12, "y", F32, 1, d);
    pbw_node_in(&g, 1, "Rec", "custom", "top", (const char *[]){"x", NULL}, (const char *[]){"y", NULL},
             NULL);
    pbw_int(&m, 1, 8);
    opset(&m, 8, "", 13);
    opset(&m, 8, "custom", 1);
    pbw_msg(&m, 7, &g);
    pbw_msg(&m, 25, &f);
    assert_int_equal(open_expect_error(&m, "levels deep"), ONR_E_MODEL);
}

static void test_call_does_not_fit(void **state)
{
    (void)state;
    /* ScaledLeaky takes 2 inputs; call it with 3 */
    pbw g = {0}, m = {0};
    int64_t d[] = {1, 4};
    pbw_str(&g, 2, "g");
    pbw_value_info(&g, 11, "x", F32, 2, d);
    pbw_value_info(&g, 12, "y", F32, 2, d);
    pbw_node_in(&g, 1, "ScaledLeaky", "custom", "bad", (const char *[]){"x", "x", "x", NULL},
             (const char *[]){"y", NULL}, NULL);
    pbw_int(&m, 1, 8);
    opset(&m, 8, "", 13);
    opset(&m, 8, "custom", 1);
    pbw_msg(&m, 7, &g);
    fn_scaled_leaky(&m, 13);
    assert_int_equal(open_expect_error(&m, "calls function 'ScaledLeaky' with 3 inputs"),
                     ONR_E_MODEL);
}

/* A ref_attr_name outside any function body is a model error. */
static void test_ref_outside_function(void **state)
{
    (void)state;
    pbw g = {0}, at = {0}, m = {0};
    int64_t d[] = {4};
    pbw_str(&g, 2, "g");
    pbw_value_info(&g, 11, "x", F32, 1, d);
    pbw_value_info(&g, 12, "y", F32, 1, d);
    attr_ref(&at, "alpha", "a", 1);
    pbw_node(&g, "LeakyRelu", "lr", (const char *[]){"x", NULL}, (const char *[]){"y", NULL}, &at);
    m = pbw_model(&g, 8, 13);
    assert_int_equal(open_expect_error(&m, "outside a function body"), ONR_E_MODEL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inline_and_run),
        cmocka_unit_test(test_function_opset),
        cmocka_unit_test(test_recursion_refused),
        cmocka_unit_test(test_call_does_not_fit),
        cmocka_unit_test(test_ref_outside_function),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
