/*
 * test_ops_elementwise.c - the elementwise family: broadcasting binary ops,
 * variadic ops, comparisons and logic, Where, unary math and activations,
 * Clip at both opset forms, Cast/CastLike, and their error cases.
 *
 * Expected values are worked out by hand, or for transcendental functions
 * computed here in double precision as the reference. Broadcasting is also
 * checked against a naive per-element index computation over many shapes,
 * at one and several threads.
 */
#include "kutil.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------------- */

/* Run a node built by the caller; returns the status, output in *out. */
static onr_status run1(onr_node *n, int64_t opset, int n_in, onr_tensor **in, onr_tensor **out,
                       onr_err *err)
{
    return tk_run(n, opset, n_in, in, 1, out, 1, err);
}

/* Run op_type on inputs (which it frees), expecting success; returns the output. */
static onr_tensor *op_ok(const char *op_type, int64_t opset, int n_in, onr_tensor **in)
{
    onr_node *n = tk_node(op_type);
    onr_tensor *out = NULL;
    onr_err err = {0};
    onr_status st = run1(n, opset, n_in, in, &out, &err);
    if (st != ONR_OK) fail_msg("%s failed: %s", op_type, err.msg);
    tk_free_all(n_in, in);
    tk_node_free(n);
    return out;
}

/* Run op_type expecting failure with status want; message must contain needle. */
static void op_fails(onr_node *n, int64_t opset, int n_in, onr_tensor **in, onr_status want,
                     const char *needle)
{
    onr_tensor *out = NULL;
    onr_err err = {0};
    onr_status st = run1(n, opset, n_in, in, &out, &err);
    if (st != want) fail_msg("%s: expected status %d, got %d (%s)", n->op_type, want, st, err.msg);
    if (needle && !strstr(err.msg, needle))
        fail_msg("%s: message \"%s\" lacks \"%s\"", n->op_type, err.msg, needle);
    tk_free_all(1, &out);
    tk_free_all(n_in, in);
    tk_node_free(n);
}

static void assert_bytes(const onr_tensor *t, onr_dtype dt, const void *expected, int64_t n)
{
    assert_non_null(t);
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->numel, n);
    if (n && memcmp(t->data, expected, (size_t)n * onr_dtype_size(dt)) != 0) {
        for (int64_t i = 0; i < n; i++)
            if (onr_get_f64(t, i) != onr_get_f64(&(onr_tensor){.dtype = dt, .data = (void *)expected}, i))
                fail_msg("element %lld: got %g, expected %g", (long long)i, onr_get_f64(t, i),
                         onr_get_f64(&(onr_tensor){.dtype = dt, .data = (void *)expected}, i));
        fail_msg("bytes differ");
    }
}

static void assert_bools(const onr_tensor *t, const uint8_t *expected, int64_t n)
{
    assert_bytes(t, ONR_BOOL, expected, n);
}

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define F(...) ((const float[]){__VA_ARGS__})
#define NELEM(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

/* ---- broadcasting ------------------------------------------------------------- */

static void test_add_inner_broadcast(void **state)
{
    (void)state;
    float a[24], b[4] = {100, 200, 300, 400}, want[24];
    for (int i = 0; i < 24; i++) {
        a[i] = (float)i;
        want[i] = (float)i + b[i % 4];
    }
    onr_tensor *in[2] = {tk_f32(3, D(2, 3, 4), a), tk_f32(1, D(4), b)};
    onr_tensor *y = op_ok("Add", 14, 2, in);
    tk_assert_shape(y, 3, D(2, 3, 4));
    tk_assert_close_f32(y, want, 24, 0, 0);
    onr_tensor_free(y);
}

static void test_mul_two_sided_broadcast(void **state)
{
    (void)state;
    /* [2,1,4] * [3,1] -> [2,3,4]: y[i,j,k] = a[i,0,k] * b[j,0] */
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[3] = {1, 10, 100}, want[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) want[(i * 3 + j) * 4 + k] = a[i * 4 + k] * b[j];
    onr_tensor *in[2] = {tk_f32(3, D(2, 1, 4), a), tk_f32(2, D(3, 1), b)};
    onr_tensor *y = op_ok("Mul", 7, 2, in);
    tk_assert_shape(y, 3, D(2, 3, 4));
    tk_assert_close_f32(y, want, 24, 0, 0);
    onr_tensor_free(y);
}

static void test_scalar_operands(void **state)
{
    (void)state;
    float s = 10;
    onr_tensor *in[2] = {tk_f32(2, D(2, 2), F(1, 2, 3, 4)), tk_f32(0, NULL, &s)};
    onr_tensor *y = op_ok("Sub", 13, 2, in);
    tk_assert_shape(y, 2, D(2, 2));
    tk_assert_close_f32(y, F(-9, -8, -7, -6), 4, 0, 0);
    onr_tensor_free(y);

    onr_tensor *in2[2] = {tk_f32(0, NULL, &s), tk_f32(2, D(2, 2), F(1, 2, 4, 5))};
    y = op_ok("Div", 13, 2, in2);
    tk_assert_close_f32(y, F(10, 5, 2.5f, 2), 4, 0, 0);
    onr_tensor_free(y);

    /* scalar op scalar stays rank 0 */
    float t = 3;
    onr_tensor *in3[2] = {tk_f32(0, NULL, &s), tk_f32(0, NULL, &t)};
    y = op_ok("Mul", 14, 2, in3);
    assert_int_equal(y->rank, 0);
    tk_assert_close_f32(y, F(30), 1, 0, 0);
    onr_tensor_free(y);
}

static void test_zero_size(void **state)
{
    (void)state;
    onr_tensor *in[2] = {tk_f32(2, D(0, 3), NULL), tk_f32(1, D(3), F(1, 2, 3))};
    onr_tensor *y = op_ok("Add", 14, 2, in);
    tk_assert_shape(y, 2, D(0, 3));
    assert_int_equal(y->numel, 0);
    onr_tensor_free(y);

    /* 0 broadcasts against 1 */
    onr_tensor *in2[2] = {tk_f32(2, D(2, 0), NULL), tk_f32(2, D(1, 1), F(5))};
    y = op_ok("Less", 13, 2, in2);
    tk_assert_shape(y, 2, D(2, 0));
    assert_int_equal(y->dtype, ONR_BOOL);
    onr_tensor_free(y);

    /* but not against 2 */
    onr_tensor *in3[2] = {tk_f32(1, D(0), NULL), tk_f32(1, D(2), F(1, 2))};
    op_fails(tk_node("Add"), 14, 2, in3, ONR_E_MODEL, "broadcast");

    /* unary on empty */
    onr_tensor *in4[1] = {tk_f32(2, D(3, 0), NULL)};
    y = op_ok("Exp", 13, 1, in4);
    tk_assert_shape(y, 2, D(3, 0));
    onr_tensor_free(y);
}

static void test_broadcast_errors(void **state)
{
    (void)state;
    onr_tensor *in[2] = {tk_f32(2, D(2, 3), NULL), tk_f32(1, D(4), NULL)};
    op_fails(tk_node("Add"), 14, 2, in, ONR_E_MODEL, "[2,3]");

    onr_tensor *in2[2] = {tk_f32(2, D(2, 3), NULL), tk_i64(1, D(3), NULL)};
    op_fails(tk_node("Mul"), 14, 2, in2, ONR_E_MODEL, "int64");

    onr_tensor *in3[1] = {tk_f32(1, D(3), NULL)};
    op_fails(tk_node("Add"), 14, 1, in3, ONR_E_MODEL, "2 inputs");

    onr_tensor *in4[3] = {tk_bool(1, D(2), NULL), tk_f32(1, D(3), NULL), tk_f32(1, D(2), NULL)};
    op_fails(tk_node("Where"), 16, 3, in4, ONR_E_MODEL, "broadcast");

    onr_tensor *in5[3] = {tk_bool(1, D(2), NULL), tk_f32(1, D(2), NULL), tk_i32(1, D(2), NULL)};
    op_fails(tk_node("Where"), 16, 3, in5, ONR_E_MODEL, "int32");

    onr_tensor *in6[2] = {tk_bool(1, D(2), NULL), tk_bool(1, D(2), NULL)};
    op_fails(tk_node("Add"), 14, 2, in6, ONR_E_UNSUPPORTED, "bool");

    onr_tensor *in7[2] = {tk_f32(1, D(2), NULL), tk_f32(1, D(2), NULL)};
    op_fails(tk_node("And"), 7, 2, in7, ONR_E_UNSUPPORTED, "float32");
}

/* Naive reference: every output index mapped to each input's index. */
static void ref_add(const onr_tensor *a, const onr_tensor *b, const int64_t *od, int orank,
                    float *out)
{
    int64_t n = 1;
    for (int d = 0; d < orank; d++) n *= od[d];
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i, ia = 0, ib = 0, sa = 1, sb = 1;
        for (int d = orank - 1; d >= 0; d--) {
            int64_t idx = rem % od[d];
            rem /= od[d];
            int da = d - (orank - a->rank), db = d - (orank - b->rank);
            if (da >= 0) {
                ia += (a->dims[da] == 1 ? 0 : idx) * sa;
                sa *= a->dims[da];
            }
            if (db >= 0) {
                ib += (b->dims[db] == 1 ? 0 : idx) * sb;
                sb *= b->dims[db];
            }
        }
        out[i] = ((const float *)a->data)[ia] + ((const float *)b->data)[ib];
    }
}

static uint32_t lcg(uint32_t *s) { return (*s = *s * 1664525u + 1013904223u) >> 16; }

/* Random shapes: each input dim is the output's or 1, ranks may differ. */
static void test_broadcast_vs_reference(void **state)
{
    (void)state;
    uint32_t s = 12345;
    for (int iter = 0; iter < 400; iter++) {
        int orank = (int)(lcg(&s) % 6);
        int64_t od[6], ad[6], bd[6], rd[6];
        for (int d = 0; d < orank; d++) od[d] = 1 + lcg(&s) % 5;
        int ar = (int)(lcg(&s) % (orank + 1)), br = (int)(lcg(&s) % (orank + 1));
        for (int d = 0; d < ar; d++) ad[d] = lcg(&s) % 3 ? od[orank - ar + d] : 1;
        for (int d = 0; d < br; d++) bd[d] = lcg(&s) % 3 ? od[orank - br + d] : 1;
        int rr = ar > br ? ar : br;
        int64_t n = 1;
        for (int d = 0; d < rr; d++) {
            int da = d - (rr - ar), db = d - (rr - br);
            int64_t x = da >= 0 ? ad[da] : 1, y = db >= 0 ? bd[db] : 1;
            rd[d] = x > y ? x : y;
            n *= rd[d];
        }
        onr_tensor *a = tk_rand_f32(ar, ad, (uint32_t)iter);
        onr_tensor *b = tk_rand_f32(br, bd, (uint32_t)iter + 1000);
        float *want = malloc(sizeof(float) * (size_t)n);
        ref_add(a, b, rd, rr, want);
        for (int swap = 0; swap < 2; swap++) {
            onr_tensor *in[2] = {swap ? b : a, swap ? a : b};
            onr_node *node = tk_node("Add");
            onr_tensor *out = NULL;
            assert_int_equal(tk_run(node, 14, 2, in, 1, &out, 1 + iter % 3, NULL), ONR_OK);
            tk_assert_shape(out, rr, rd);
            tk_assert_close_f32(out, want, n, 0, 0);
            onr_tensor_free(out);
            tk_node_free(node);
        }
        free(want);
        onr_tensor_free(a);
        onr_tensor_free(b);
    }
}

/* Large enough to go parallel; results must be identical at any thread count. */
static void test_threads_identical(void **state)
{
    (void)state;
    const char *ops[] = {"Add", "Mul", "Div", "Pow", "Max"};
    const int64_t shapes[][3] = {{64, 96, 48}, {1, 96, 48}, {64, 1, 48}, {64, 96, 1}, {1, 1, 1}};
    onr_tensor *a = tk_rand_f32(3, D(64, 96, 48), 1);
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        for (int si = 0; si < 5; si++) {
            onr_tensor *b = tk_rand_f32(3, shapes[si], 7 + si);
            if (!strcmp(ops[o], "Pow")) {
                float *p = a->data;
                for (int64_t i = 0; i < a->numel; i++) p[i] = fabsf(p[i]);
            }
            onr_tensor *in[2] = {a, b}, *o1 = NULL, *o4 = NULL;
            onr_node *n = tk_node(ops[o]);
            assert_int_equal(tk_run(n, 14, 2, in, 1, &o1, 1, NULL), ONR_OK);
            assert_int_equal(tk_run(n, 14, 2, in, 1, &o4, 4, NULL), ONR_OK);
            assert_memory_equal(o1->data, o4->data, (size_t)o1->numel * sizeof(float));
            /* spot-check against the scalar formula */
            const float *pa = a->data, *pb = b->data, *py = o1->data;
            for (int64_t i = 0; i < o1->numel; i += 997) {
                int64_t k = i % 48, j = (i / 48) % 96, m = i / (48 * 96);
                int64_t ib = (shapes[si][0] == 1 ? 0 : m) * shapes[si][1] * shapes[si][2] +
                             (shapes[si][1] == 1 ? 0 : j) * shapes[si][2] +
                             (shapes[si][2] == 1 ? 0 : k);
                float x = pa[i], yv = pb[ib], want;
                switch (o) {
                case 0: want = x + yv; break;
                case 1: want = x * yv; break;
                case 2: want = x / yv; break;
                case 3: want = powf(x, yv); break;
                default: want = x > yv ? x : yv; break;
                }
                assert_true(py[i] == want || (isnan(want) && isnan(py[i])));
            }
            tk_free_all(1, &o1);
            tk_free_all(1, &o4);
            onr_tensor_free(b);
            tk_node_free(n);
        }
    }
    onr_tensor_free(a);
}

/* ---- arithmetic on other types --------------------------------------------- */

static void test_int_arith(void **state)
{
    (void)state;
    int32_t a[] = {INT32_MAX, -7, 7, -7, 5}, b[] = {1, 2, -2, 0, -1};
    onr_tensor *in[2] = {tk_i32(1, D(5), a), tk_i32(1, D(5), b)};
    onr_tensor *y = op_ok("Add", 14, 2, in);
    assert_bytes(y, ONR_INT32, (int32_t[]){INT32_MIN, -5, 5, -7, 4}, 5);
    onr_tensor_free(y);

    /* C-style truncating division; by zero gives 0 instead of a trap */
    onr_tensor *in2[2] = {tk_i32(1, D(5), a), tk_i32(1, D(5), b)};
    y = op_ok("Div", 14, 2, in2);
    assert_bytes(y, ONR_INT32, (int32_t[]){INT32_MAX, -3, -3, 0, -5}, 5);
    onr_tensor_free(y);

    int64_t mn = INT64_MIN, m1 = -1;
    onr_tensor *in3[2] = {tk_i64(0, NULL, &mn), tk_i64(0, NULL, &m1)};
    y = op_ok("Div", 14, 2, in3);
    tk_assert_eq_i64(y, (int64_t[]){INT64_MIN}, 1);
    onr_tensor_free(y);

    uint8_t u[] = {1, 200, 16}, v[] = {2, 100, 16};
    onr_tensor *in4[2] = {tk_typed(ONR_UINT8, 1, D(3), u), tk_typed(ONR_UINT8, 1, D(3), v)};
    y = op_ok("Sub", 14, 2, in4);
    assert_bytes(y, ONR_UINT8, (uint8_t[]){255, 100, 0}, 3);
    onr_tensor_free(y);

    onr_tensor *in5[2] = {tk_typed(ONR_UINT8, 1, D(3), u), tk_typed(ONR_UINT8, 1, D(3), v)};
    y = op_ok("Mul", 14, 2, in5);
    assert_bytes(y, ONR_UINT8, (uint8_t[]){2, (uint8_t)(20000 % 256), 0}, 3);
    onr_tensor_free(y);

    uint16_t w[] = {65535, 3};
    onr_tensor *in6[2] = {tk_typed(ONR_UINT16, 1, D(2), w), tk_typed(ONR_UINT16, 1, D(2), w)};
    y = op_ok("Mul", 14, 2, in6);
    assert_bytes(y, ONR_UINT16, (uint16_t[]){1, 9}, 2);
    onr_tensor_free(y);

    int8_t i8[] = {-128, 100, -3}, j8[] = {-1, 100, 2};
    onr_tensor *in7[2] = {tk_typed(ONR_INT8, 1, D(3), i8), tk_typed(ONR_INT8, 1, D(3), j8)};
    y = op_ok("Sub", 14, 2, in7);
    assert_bytes(y, ONR_INT8, (int8_t[]){-127, 0, -5}, 3);
    onr_tensor_free(y);
}

static void test_mod(void **state)
{
    (void)state;
    int32_t a[] = {-4, 7, 5, -7, 3, 9}, b[] = {3, -3, 0, -3, 2, 4};
    /* fmod=0: sign of the divisor, like Python */
    onr_tensor *in[2] = {tk_i32(1, D(6), a), tk_i32(1, D(6), b)};
    onr_tensor *y = op_ok("Mod", 13, 2, in);
    assert_bytes(y, ONR_INT32, (int32_t[]){2, -2, 0, -1, 1, 1}, 6);
    onr_tensor_free(y);
    /* fmod=1: sign of the dividend, like C */
    onr_node *n = tk_node("Mod");
    tk_attr_int(n, "fmod", 1);
    onr_tensor *in2[2] = {tk_i32(1, D(6), a), tk_i32(1, D(6), b)};
    assert_int_equal(run1(n, 13, 2, in2, &y, NULL), ONR_OK);
    assert_bytes(y, ONR_INT32, (int32_t[]){-1, 1, 0, -1, 1, 1}, 6);
    tk_free_all(1, &y);
    tk_free_all(2, in2);
    tk_node_free(n);

    n = tk_node("Mod");
    tk_attr_int(n, "fmod", 1);
    onr_tensor *in3[2] = {tk_f32(1, D(3), F(-4.5f, 7, 5.25f)), tk_f32(1, D(3), F(2, -3, 0.5f))};
    assert_int_equal(run1(n, 13, 2, in3, &y, NULL), ONR_OK);
    tk_assert_close_f32(y, F(-0.5f, 1, 0.25f), 3, 0, 0);
    tk_free_all(1, &y);
    tk_free_all(2, in3);
    tk_node_free(n);

    /* float needs fmod=1 */
    onr_tensor *in4[2] = {tk_f32(1, D(1), F(1)), tk_f32(1, D(1), F(2))};
    op_fails(tk_node("Mod"), 13, 2, in4, ONR_E_MODEL, "fmod");
}

static void test_pow(void **state)
{
    (void)state;
    onr_tensor *in[2] = {tk_f32(1, D(4), F(2, 3, -2, 4)), tk_f32(1, D(4), F(3, 0.5f, 2, -0.5f))};
    onr_tensor *y = op_ok("Pow", 15, 2, in);
    tk_assert_close_f32(y, F(8, sqrtf(3), 4, 0.5f), 4, 1e-6f, 0);
    onr_tensor_free(y);

    float two = 2;
    onr_tensor *in2[2] = {tk_f32(1, D(3), F(-3, 1.5f, 0)), tk_f32(0, NULL, &two)};
    y = op_ok("Pow", 7, 2, in2);
    tk_assert_close_f32(y, F(9, 2.25f, 0), 3, 0, 0);
    onr_tensor_free(y);

    /* mixed types: float base, int64 exponent */
    onr_tensor *in3[2] = {tk_f32(1, D(3), F(1, 2, 3)), tk_i64(1, D(3), (int64_t[]){4, 5, 6})};
    y = op_ok("Pow", 15, 2, in3);
    tk_assert_close_f32(y, F(1, 32, 729), 3, 0, 0);
    onr_tensor_free(y);

    /* int base, int exponent: exact */
    onr_tensor *in4[2] = {tk_i64(1, D(3), (int64_t[]){3, -2, 7}), tk_i64(1, D(3), (int64_t[]){39, 3, 0})};
    y = op_ok("Pow", 15, 2, in4);
    tk_assert_eq_i64(y, (int64_t[]){4052555153018976267LL, -8, 1}, 3);
    onr_tensor_free(y);

    /* int base, float exponent: truncated */
    onr_tensor *in5[2] = {tk_i32(1, D(2), (int32_t[]){4, 10}), tk_f32(1, D(2), F(0.5f, -1))};
    y = op_ok("Pow", 15, 2, in5);
    assert_bytes(y, ONR_INT32, (int32_t[]){2, 0}, 2);
    onr_tensor_free(y);

    /* bool base is not allowed */
    onr_tensor *in6[2] = {tk_bool(1, D(1), (uint8_t[]){1}), tk_f32(1, D(1), F(1))};
    op_fails(tk_node("Pow"), 15, 2, in6, ONR_E_UNSUPPORTED, "bool");
}

static void test_half_types(void **state)
{
    (void)state;
    const float av[] = {1.5f, -2, 0.25f, 1000}, bv[] = {0.5f, 3, 0.125f, 24};
    uint16_t ah[4], bh[4], bfa[4], bfb[4];
    for (int i = 0; i < 4; i++) {
        ah[i] = onr_float_to_half(av[i]);
        bh[i] = onr_float_to_half(bv[i]);
        bfa[i] = onr_float_to_bf16(av[i]);
        bfb[i] = onr_float_to_bf16(bv[i]);
    }
    onr_tensor *in[2] = {tk_typed(ONR_FLOAT16, 1, D(4), ah), tk_typed(ONR_FLOAT16, 1, D(4), bh)};
    onr_tensor *y = op_ok("Add", 14, 2, in);
    assert_int_equal(y->dtype, ONR_FLOAT16);
    const float want[] = {2, 1, 0.375f, 1024};
    for (int i = 0; i < 4; i++) assert_true(onr_half_to_float(((uint16_t *)y->data)[i]) == want[i]);
    onr_tensor_free(y);

    /* fp16 with a broadcast scalar; result rounds to fp16 (1/3 -> 0x3555) */
    uint16_t one = onr_float_to_half(1), three = onr_float_to_half(3);
    onr_tensor *in2[2] = {tk_typed(ONR_FLOAT16, 1, D(1), &one), tk_typed(ONR_FLOAT16, 0, NULL, &three)};
    y = op_ok("Div", 14, 2, in2);
    assert_int_equal(((uint16_t *)y->data)[0], 0x3555);
    onr_tensor_free(y);

    onr_tensor *in3[2] = {tk_typed(ONR_BFLOAT16, 1, D(4), bfa), tk_typed(ONR_BFLOAT16, 1, D(4), bfb)};
    y = op_ok("Mul", 14, 2, in3);
    assert_int_equal(y->dtype, ONR_BFLOAT16);
    const float wm[] = {0.75f, -6, 0.03125f, 24000};
    for (int i = 0; i < 4; i++)
        assert_true(onr_bf16_to_float(((uint16_t *)y->data)[i]) ==
                    onr_bf16_to_float(onr_float_to_bf16(wm[i])));
    onr_tensor_free(y);

    onr_tensor *in4[2] = {tk_typed(ONR_FLOAT16, 1, D(4), ah), tk_typed(ONR_FLOAT16, 1, D(4), bh)};
    y = op_ok("Greater", 13, 2, in4);
    assert_bools(y, (uint8_t[]){1, 0, 1, 1}, 4);
    onr_tensor_free(y);

    onr_tensor *in5[1] = {tk_typed(ONR_FLOAT16, 1, D(4), ah)};
    y = op_ok("Relu", 14, 1, in5);
    assert_int_equal(((uint16_t *)y->data)[1], 0);
    assert_int_equal(((uint16_t *)y->data)[0], ah[0]);
    onr_tensor_free(y);

    onr_tensor *in6[1] = {tk_typed(ONR_FLOAT16, 1, D(4), ah)};
    y = op_ok("Sqrt", 13, 1, in6);
    assert_true(onr_half_to_float(((uint16_t *)y->data)[2]) == 0.5f);
    assert_true(isnan(onr_half_to_float(((uint16_t *)y->data)[1])));
    onr_tensor_free(y);
}

/* ---- variadic ----------------------------------------------------------------- */

static void test_variadic(void **state)
{
    (void)state;
    onr_tensor *in[3] = {tk_f32(1, D(3), F(3, 2, 1)), tk_f32(2, D(2, 1), F(1.5f, NAN)),
                         tk_f32(0, NULL, F(2))};
    onr_tensor *y = op_ok("Max", 13, 3, in);
    tk_assert_shape(y, 2, D(2, 3));
    tk_assert_close_f32(y, F(3, 2, 2, NAN, NAN, NAN), 6, 0, 0);
    onr_tensor_free(y);

    onr_tensor *in2[3] = {tk_f32(1, D(3), F(3, 2, 1)), tk_f32(2, D(2, 1), F(1.5f, -1)),
                          tk_f32(0, NULL, F(2))};
    y = op_ok("Min", 8, 3, in2);
    tk_assert_close_f32(y, F(1.5f, 1.5f, 1, -1, -1, -1), 6, 0, 0);
    onr_tensor_free(y);

    onr_tensor *in3[3] = {tk_f32(1, D(3), F(3, 2, 1)), tk_f32(2, D(2, 1), F(1, 10)),
                          tk_f32(0, NULL, F(2))};
    y = op_ok("Sum", 13, 3, in3);
    tk_assert_close_f32(y, F(6, 5, 4, 15, 14, 13), 6, 0, 0);
    onr_tensor_free(y);

    onr_tensor *in4[2] = {tk_f32(1, D(3), F(3, 2, 1)), tk_f32(1, D(3), F(1, 1, 1))};
    y = op_ok("Mean", 13, 2, in4);
    tk_assert_close_f32(y, F(2, 1.5f, 1), 3, 0, 0);
    onr_tensor_free(y);

    onr_tensor *in5[1] = {tk_f32(1, D(2), F(7, 8))};
    y = op_ok("Sum", 13, 1, in5);
    tk_assert_close_f32(y, F(7, 8), 2, 0, 0);
    onr_tensor_free(y);

    onr_tensor *in6[2] = {tk_typed(ONR_UINT64, 1, D(2), (uint64_t[]){UINT64_MAX, 1}),
                          tk_typed(ONR_UINT64, 1, D(1), (uint64_t[]){2})};
    y = op_ok("Max", 13, 2, in6);
    assert_bytes(y, ONR_UINT64, (uint64_t[]){UINT64_MAX, 2}, 2);
    onr_tensor_free(y);

    onr_tensor *in7[2] = {tk_i32(1, D(2), (int32_t[]){1, 2}), tk_i32(1, D(2), (int32_t[]){1, 2})};
    op_fails(tk_node("Sum"), 13, 2, in7, ONR_E_UNSUPPORTED, "int32");
    onr_tensor *in8[2] = {tk_f32(1, D(2), NULL), tk_f32(1, D(3), NULL)};
    op_fails(tk_node("Max"), 13, 2, in8, ONR_E_MODEL, "broadcast");
}

/* ---- comparisons, logic, shifts ------------------------------------------- */

static void test_compare_logic(void **state)
{
    (void)state;
    float two = 2;
    onr_tensor *in[2] = {tk_f32(1, D(4), F(1, 2, 3, NAN)), tk_f32(0, NULL, &two)};
    onr_tensor *y = op_ok("Less", 13, 2, in);
    assert_bools(y, (uint8_t[]){1, 0, 0, 0}, 4);
    onr_tensor_free(y);

    const char *cmp[] = {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"};
    const uint8_t want[][3] = {{0, 1, 0}, {1, 0, 0}, {1, 1, 0}, {0, 0, 1}, {0, 1, 1}};
    for (int c = 0; c < 5; c++) {
        onr_tensor *ii[2] = {tk_i64(1, D(3), (int64_t[]){-5, 4, INT64_MAX}),
                             tk_i64(1, D(3), (int64_t[]){4, 4, 4})};
        y = op_ok(cmp[c], 16, 2, ii);
        assert_bools(y, want[c], 3);
        onr_tensor_free(y);
    }

    onr_tensor *in2[2] = {tk_bool(2, D(2, 2), (uint8_t[]){0, 0, 1, 1}),
                          tk_bool(1, D(2), (uint8_t[]){0, 1})};
    y = op_ok("And", 7, 2, in2);
    assert_bools(y, (uint8_t[]){0, 0, 0, 1}, 4);
    onr_tensor_free(y);
    onr_tensor *in3[2] = {tk_bool(2, D(2, 2), (uint8_t[]){0, 0, 1, 1}),
                          tk_bool(1, D(2), (uint8_t[]){0, 1})};
    y = op_ok("Or", 7, 2, in3);
    assert_bools(y, (uint8_t[]){0, 1, 1, 1}, 4);
    onr_tensor_free(y);
    onr_tensor *in4[2] = {tk_bool(2, D(2, 2), (uint8_t[]){0, 0, 1, 1}),
                          tk_bool(1, D(2), (uint8_t[]){0, 1})};
    y = op_ok("Xor", 7, 2, in4);
    assert_bools(y, (uint8_t[]){0, 1, 1, 0}, 4);
    onr_tensor_free(y);
    onr_tensor *in5[2] = {tk_bool(1, D(2), (uint8_t[]){0, 1}), tk_bool(1, D(2), (uint8_t[]){0, 0})};
    y = op_ok("Equal", 11, 2, in5);
    assert_bools(y, (uint8_t[]){1, 0}, 2);
    onr_tensor_free(y);
    onr_tensor *in6[1] = {tk_bool(1, D(3), (uint8_t[]){0, 1, 0})};
    y = op_ok("Not", 1, 1, in6);
    assert_bools(y, (uint8_t[]){1, 0, 1}, 3);
    onr_tensor_free(y);

    /* Equal on strings (opset 19) */
    char *sa[] = {"abc", "", "x"}, *sb[] = {"abc", "", "y"};
    onr_tensor *s1 = onr_tensor_new(ONR_STRING, 1, D(3)), *s2 = onr_tensor_new(ONR_STRING, 1, D(3));
    for (int i = 0; i < 3; i++) {
        free(((char **)s1->data)[i]);
        free(((char **)s2->data)[i]);
        ((char **)s1->data)[i] = onr_strdup(sa[i]);
        ((char **)s2->data)[i] = onr_strdup(sb[i]);
    }
    onr_tensor *in7[2] = {s1, s2};
    y = op_ok("Equal", 19, 2, in7);
    assert_bools(y, (uint8_t[]){1, 1, 0}, 3);
    onr_tensor_free(y);
}

static void test_bitshift(void **state)
{
    (void)state;
    uint8_t x[] = {16, 4, 1, 255}, s[] = {1, 2, 8, 7};
    onr_node *n = tk_node("BitShift");
    tk_attr_string(n, "direction", "LEFT");
    onr_tensor *in[2] = {tk_typed(ONR_UINT8, 1, D(4), x), tk_typed(ONR_UINT8, 1, D(4), s)}, *y;
    assert_int_equal(run1(n, 11, 2, in, &y, NULL), ONR_OK);
    assert_bytes(y, ONR_UINT8, (uint8_t[]){32, 16, 0, 128}, 4);
    tk_free_all(1, &y);
    tk_free_all(2, in);
    tk_node_free(n);

    n = tk_node("BitShift");
    tk_attr_string(n, "direction", "RIGHT");
    uint64_t xs[] = {UINT64_MAX, 1024}, ss[] = {63, 64};
    onr_tensor *in2[2] = {tk_typed(ONR_UINT64, 1, D(2), xs), tk_typed(ONR_UINT64, 1, D(2), ss)};
    assert_int_equal(run1(n, 11, 2, in2, &y, NULL), ONR_OK);
    assert_bytes(y, ONR_UINT64, (uint64_t[]){1, 0}, 2);
    tk_free_all(1, &y);
    tk_free_all(2, in2);
    tk_node_free(n);

    n = tk_node("BitShift");
    tk_attr_string(n, "direction", "UP");
    onr_tensor *in3[2] = {tk_typed(ONR_UINT8, 1, D(4), x), tk_typed(ONR_UINT8, 1, D(4), s)};
    op_fails(n, 11, 2, in3, ONR_E_MODEL, "UP");
    onr_tensor *in4[2] = {tk_typed(ONR_UINT8, 1, D(4), x), tk_typed(ONR_UINT8, 1, D(4), s)};
    op_fails(tk_node("BitShift"), 11, 2, in4, ONR_E_MODEL, "direction");
}

static void test_prelu_where(void **state)
{
    (void)state;
    onr_tensor *in[2] = {tk_f32(2, D(2, 3), F(-1, 2, -3, 4, -5, 0)), tk_f32(1, D(3), F(0.5f, 2, 0.1f))};
    onr_tensor *y = op_ok("PRelu", 16, 2, in);
    tk_assert_shape(y, 2, D(2, 3));
    tk_assert_close_f32(y, F(-0.5f, 2, -0.3f, 4, -10, 0), 6, 1e-6f, 0);
    onr_tensor_free(y);

    onr_tensor *in2[2] = {tk_i32(1, D(3), (int32_t[]){-2, 3, -4}), tk_i32(0, NULL, (int32_t[]){3})};
    y = op_ok("PRelu", 9, 2, in2);
    assert_bytes(y, ONR_INT32, (int32_t[]){-6, 3, -12}, 3);
    onr_tensor_free(y);

    /* slope must broadcast to X, not the other way */
    onr_tensor *in3[2] = {tk_f32(1, D(3), NULL), tk_f32(2, D(2, 3), NULL)};
    op_fails(tk_node("PRelu"), 16, 2, in3, ONR_E_MODEL, "slope");

    /* Where: [2,1] cond, [1,3] x, scalar y */
    onr_tensor *in4[3] = {tk_bool(2, D(2, 1), (uint8_t[]){1, 0}), tk_f32(2, D(1, 3), F(1, 2, 3)),
                          tk_f32(0, NULL, F(-1))};
    y = op_ok("Where", 16, 3, in4);
    tk_assert_shape(y, 2, D(2, 3));
    tk_assert_close_f32(y, F(1, 2, 3, -1, -1, -1), 6, 0, 0);
    onr_tensor_free(y);

    onr_tensor *in5[3] = {tk_bool(1, D(3), (uint8_t[]){1, 0, 1}), tk_i64(1, D(3), (int64_t[]){1, 2, 3}),
                          tk_i64(2, D(2, 3), (int64_t[]){10, 20, 30, 40, 50, 60})};
    y = op_ok("Where", 9, 3, in5);
    tk_assert_eq_i64(y, (int64_t[]){1, 20, 3, 1, 50, 3}, 6);
    onr_tensor_free(y);

    onr_tensor *in6[3] = {tk_bool(1, D(2), (uint8_t[]){0, 1}), tk_bool(1, D(2), (uint8_t[]){1, 1}),
                          tk_bool(1, D(2), (uint8_t[]){0, 0})};
    y = op_ok("Where", 16, 3, in6);
    assert_bools(y, (uint8_t[]){0, 1}, 2);
    onr_tensor_free(y);
}

/* ---- unary ------------------------------------------------------------------ */

typedef double (*ref_fn)(double);
static double r_sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double r_recip(double x) { return 1 / x; }
static double r_softsign(double x) { return x / (1 + fabs(x)); }
static double r_softplus(double x) { return log(1 + exp(x)); }
static double r_mish(double x) { return x * tanh(log(1 + exp(x))); }
static double r_gelu(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double r_neg(double x) { return -x; }

static void check_unary(const char *op, int64_t opset, ref_fn f, const float *xs, int n)
{
    float want[16];
    for (int i = 0; i < n; i++) want[i] = (float)f(xs[i]);
    onr_tensor *in[1] = {tk_f32(1, D(n), xs)};
    onr_tensor *y = op_ok(op, opset, 1, in);
    tk_assert_close_f32(y, want, n, 2e-6f, 1e-7f);
    onr_tensor_free(y);
    /* float64 path */
    double xd[16], wd[16];
    for (int i = 0; i < n; i++) {
        xd[i] = xs[i];
        wd[i] = f(xs[i]);
    }
    onr_tensor *in2[1] = {tk_typed(ONR_DOUBLE, 1, D(n), xd)};
    y = op_ok(op, opset, 1, in2);
    for (int i = 0; i < n; i++) {
        double g = ((double *)y->data)[i];
        if (!(g == wd[i] || (isnan(g) && isnan(wd[i])) || fabs(g - wd[i]) <= 1e-12 * fabs(wd[i]) + 1e-15))
            fail_msg("%s f64 element %d: got %.17g, want %.17g", op, i, g, wd[i]);
    }
    onr_tensor_free(y);
}

static void test_unary_math(void **state)
{
    (void)state;
    const float xs[] = {-2.5f, -1, -0.5f, 0, 0.25f, 1, 3};
    const float pos[] = {0.01f, 0.5f, 1, 2, 10};
    const float unit[] = {-0.99f, -0.5f, 0, 0.3f, 0.9f};
    const float big[] = {1, 1.5f, 2, 10};
    int n = NELEM(xs);
    check_unary("Abs", 13, fabs, xs, n);
    check_unary("Neg", 13, r_neg, xs, n);
    check_unary("Exp", 13, exp, xs, n);
    check_unary("Erf", 13, erf, xs, n);
    check_unary("Tanh", 13, tanh, xs, n);
    check_unary("Sigmoid", 13, r_sigmoid, xs, n);
    check_unary("Floor", 13, floor, xs, n);
    check_unary("Ceil", 13, ceil, xs, n);
    check_unary("Sin", 7, sin, xs, n);
    check_unary("Cos", 7, cos, xs, n);
    check_unary("Tan", 7, tan, xs, n);
    check_unary("Atan", 7, atan, xs, n);
    check_unary("Sinh", 9, sinh, xs, n);
    check_unary("Cosh", 9, cosh, xs, n);
    check_unary("Asinh", 9, asinh, xs, n);
    check_unary("Softsign", 1, r_softsign, xs, n);
    check_unary("Softplus", 1, r_softplus, xs, n);
    check_unary("Mish", 18, r_mish, xs, n);
    check_unary("Gelu", 20, r_gelu, xs, n);
    check_unary("Sqrt", 13, sqrt, pos, NELEM(pos));
    check_unary("Log", 13, log, pos, NELEM(pos));
    check_unary("Reciprocal", 13, r_recip, pos, NELEM(pos));
    check_unary("Asin", 7, asin, unit, NELEM(unit));
    check_unary("Acos", 7, acos, unit, NELEM(unit));
    check_unary("Atanh", 9, atanh, unit, NELEM(unit));
    check_unary("Acosh", 9, acosh, big, NELEM(big));

    /* hand-checked exact values */
    onr_tensor *in[1] = {tk_f32(1, D(8), F(0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 2.4f, -2.6f))};
    onr_tensor *y = op_ok("Round", 11, 1, in);
    tk_assert_close_f32(y, F(0, 2, 2, -0.f, -2, -2, 2, -3), 8, 0, 0);
    onr_tensor_free(y);
    onr_tensor *in2[1] = {tk_f32(1, D(5), F(-3, -0.f, 0, 2, NAN))};
    y = op_ok("Sign", 13, 1, in2);
    tk_assert_close_f32(y, F(-1, 0, 0, 1, NAN), 5, 0, 0);
    onr_tensor_free(y);
    onr_tensor *in3[1] = {tk_f32(1, D(4), F(-1, 0, 2, NAN))};
    y = op_ok("Relu", 6, 1, in3);
    tk_assert_close_f32(y, F(0, 0, 2, NAN), 4, 0, 0);
    onr_tensor_free(y);
    /* Softplus of a large input does not overflow */
    onr_tensor *in4[1] = {tk_f32(1, D(2), F(100, -100))};
    y = op_ok("Softplus", 1, 1, in4);
    tk_assert_close_f32(y, F(100, 3.7200760e-44f), 2, 1e-6f, 1e-30f);
    onr_tensor_free(y);
}

/* float32 Exp, Tanh, Erf, Sigmoid and Gelu use fast approximations: check
 * them in ulps against double-precision libm over a dense sweep and at the
 * edges (overflow, subnormal results, infinities, NaN). */
static double ulps(float got, double want)
{
    float w = (float)want;
    if (isnan(w)) return isnan(got) ? 0 : 1e9;
    if (isinf(w) || isinf(got)) return got == w ? 0 : 1e9;
    double sp = nextafterf(fabsf(w), INFINITY) - fabsf(w);
    return fabs((double)got - want) / sp;
}

static void check_fast(const char *op, int64_t opset, ref_fn f, double max_ulps, double atol)
{
    enum { N = 40001 + 16 };
    static float x[N];
    for (int i = 0; i < 40001; i++) x[i] = -20.f + (float)i * 1e-3f;
    const float edge[16] = {0, -0.f, 1e-7f, -3e-4f, 88.7f, 88.73f, 89.5f, -87.5f,
                            -103.f, -110.f, INFINITY, -INFINITY, NAN, 7.9f, 4.f, -1e-30f};
    memcpy(x + 40001, edge, sizeof edge);
    onr_tensor *in[1] = {tk_f32(1, D(N), x)};
    onr_tensor *y = op_ok(op, opset, 1, in);
    double worst = 0;
    int at = 0;
    for (int i = 0; i < N; i++) {
        double want = f(x[i]);
        float got = ((float *)y->data)[i];
        if (fabs((double)got - want) <= atol) continue;
        double u = ulps(got, want);
        if (u > worst) {
            worst = u;
            at = i;
        }
    }
    if (worst > max_ulps)
        fail_msg("%s: %.1f ulps at x=%.9g (got %.9g, want %.9g)", op, worst, x[at],
                 ((float *)y->data)[at], f(x[at]));
    onr_tensor_free(y);
}

static double r_gelu_tanh(double x)
{
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

static void test_fast_math_accuracy(void **state)
{
    (void)state;
    check_fast("Exp", 13, exp, 1.5, 0);
    check_fast("Tanh", 13, tanh, 8, 0);
    check_fast("Erf", 13, erf, 8, 0);
    check_fast("Sigmoid", 13, r_sigmoid, 4, 0);
    /* 1 + erf(x) cancels for x << 0 in float, as in every float Gelu, so a
     * few ulps of erf near -1 show as an absolute error below 1e-6 */
    check_fast("Gelu", 20, r_gelu, 8, 1e-6);
    onr_tensor *in[1] = {tk_f32(1, D(6), F(INFINITY, -INFINITY, NAN, 100, -100, 0))};
    onr_tensor *y = op_ok("Tanh", 13, 1, in);
    tk_assert_close_f32(y, F(1, -1, NAN, 1, -1, 0), 6, 0, 0);
    onr_tensor_free(y);
    onr_tensor *in2[1] = {tk_f32(1, D(4), F(INFINITY, -INFINITY, NAN, 0))};
    y = op_ok("Erf", 13, 1, in2);
    tk_assert_close_f32(y, F(1, -1, NAN, 0), 4, 0, 0);
    onr_tensor_free(y);
    onr_node *n = tk_node("Gelu");
    tk_attr_string(n, "approximate", "tanh");
    onr_tensor *in3[1] = {tk_f32(1, D(5), F(-6, -1, 0.5f, 3, 10))};
    assert_int_equal(run1(n, 20, 1, in3, &y, NULL), ONR_OK);
    for (int i = 0; i < 5; i++) {
        double w = r_gelu_tanh(((float *)in3[0]->data)[i]);
        assert_true(fabs(((float *)y->data)[i] - w) <= 1e-6 * fabs(w) + 2e-7);
    }
    tk_free_all(1, &y);
    tk_free_all(1, in3);
    tk_node_free(n);
}

static void test_unary_int(void **state)
{
    (void)state;
    int32_t a[] = {INT32_MIN, -5, 0, 7};
    onr_tensor *in[1] = {tk_i32(1, D(4), a)};
    onr_tensor *y = op_ok("Abs", 13, 1, in);
    assert_bytes(y, ONR_INT32, (int32_t[]){INT32_MIN, 5, 0, 7}, 4);
    onr_tensor_free(y);
    onr_tensor *in2[1] = {tk_i32(1, D(4), a)};
    y = op_ok("Relu", 14, 1, in2);
    assert_bytes(y, ONR_INT32, (int32_t[]){0, 0, 0, 7}, 4);
    onr_tensor_free(y);
    onr_tensor *in3[1] = {tk_typed(ONR_INT8, 1, D(3), (int8_t[]){-128, 5, -1})};
    y = op_ok("Neg", 13, 1, in3);
    assert_bytes(y, ONR_INT8, (int8_t[]){-128, -5, 1}, 3);
    onr_tensor_free(y);
    onr_tensor *in4[1] = {tk_i64(1, D(3), (int64_t[]){-9, 0, INT64_MAX})};
    y = op_ok("Sign", 13, 1, in4);
    tk_assert_eq_i64(y, (int64_t[]){-1, 0, 1}, 3);
    onr_tensor_free(y);
    /* Shrink on ints goes through double */
    onr_node *n = tk_node("Shrink");
    tk_attr_float(n, "lambd", 1.5f);
    tk_attr_float(n, "bias", 1.5f);
    onr_tensor *in5[1] = {tk_i32(1, D(5), (int32_t[]){-3, -1, 0, 1, 3})};
    assert_int_equal(run1(n, 9, 1, in5, &y, NULL), ONR_OK);
    assert_bytes(y, ONR_INT32, (int32_t[]){-1, 0, 0, 0, 1}, 5);
    tk_free_all(1, &y);
    tk_free_all(1, in5);
    tk_node_free(n);
    /* unsigned Neg is not in the schema */
    onr_tensor *in6[1] = {tk_typed(ONR_UINT8, 1, D(1), (uint8_t[]){1})};
    op_fails(tk_node("Neg"), 13, 1, in6, ONR_E_UNSUPPORTED, "uint8");
    onr_tensor *in7[1] = {tk_i32(1, D(1), (int32_t[]){1})};
    op_fails(tk_node("Exp"), 13, 1, in7, ONR_E_UNSUPPORTED, "int32");
}

/* Run a unary op with float attributes name=value pairs (NULL-terminated). */
static onr_tensor *act(const char *op, int64_t opset, const float *x, int n, ...)
{
    onr_node *node = tk_node(op);
    va_list ap;
    va_start(ap, n);
    for (const char *name; (name = va_arg(ap, const char *));)
        tk_attr_float(node, name, (float)va_arg(ap, double));
    va_end(ap);
    onr_tensor *in[1] = {tk_f32(1, D(n), x)}, *y = NULL;
    onr_err err = {0};
    if (run1(node, opset, 1, in, &y, &err) != ONR_OK) fail_msg("%s: %s", op, err.msg);
    tk_free_all(1, in);
    tk_node_free(node);
    return y;
}

static void test_activations(void **state)
{
    (void)state;
    const float x[] = {-2, -0.5f, 0, 0.5f, 2};
    float w[5];
    onr_tensor *y = act("LeakyRelu", 16, x, 5, NULL);
    tk_assert_close_f32(y, F(-0.02f, -0.005f, 0, 0.5f, 2), 5, 1e-6f, 0);
    onr_tensor_free(y);
    y = act("LeakyRelu", 6, x, 5, "alpha", 0.5, NULL);
    tk_assert_close_f32(y, F(-1, -0.25f, 0, 0.5f, 2), 5, 0, 0);
    onr_tensor_free(y);

    for (int i = 0; i < 5; i++) w[i] = x[i] < 0 ? (float)(2 * expm1(x[i])) : x[i];
    y = act("Elu", 6, x, 5, "alpha", 2.0, NULL);
    tk_assert_close_f32(y, w, 5, 1e-6f, 0);
    onr_tensor_free(y);

    const double sa = 1.67326319217681884765625, sg = 1.05070102214813232421875;
    for (int i = 0; i < 5; i++) w[i] = (float)(x[i] <= 0 ? sg * sa * expm1(x[i]) : sg * x[i]);
    y = act("Selu", 6, x, 5, NULL);
    tk_assert_close_f32(y, w, 5, 1e-6f, 0);
    onr_tensor_free(y);

    for (int i = 0; i < 5; i++) w[i] = (float)(x[i] > 0 ? x[i] : 2 * expm1(x[i] / 2));
    y = act("Celu", 12, x, 5, "alpha", 2.0, NULL);
    tk_assert_close_f32(y, w, 5, 1e-6f, 0);
    onr_tensor_free(y);

    y = act("ThresholdedRelu", 10, x, 5, "alpha", 0.4, NULL);
    tk_assert_close_f32(y, F(0, 0, 0, 0.5f, 2), 5, 0, 0);
    onr_tensor_free(y);
    y = act("ThresholdedRelu", 10, x, 5, NULL); /* alpha 1 */
    tk_assert_close_f32(y, F(0, 0, 0, 0, 2), 5, 0, 0);
    onr_tensor_free(y);

    y = act("HardSigmoid", 6, x, 5, NULL); /* 0.2x + 0.5 clamped */
    tk_assert_close_f32(y, F(0.1f, 0.4f, 0.5f, 0.6f, 0.9f), 5, 1e-6f, 0);
    onr_tensor_free(y);
    y = act("HardSigmoid", 6, x, 5, "alpha", 1.0, "beta", 0.0, NULL);
    tk_assert_close_f32(y, F(0, 0, 0, 0.5f, 1), 5, 0, 0);
    onr_tensor_free(y);

    const float hx[] = {-4, -3, -1, 0, 1, 3, 4};
    y = act("HardSwish", 14, hx, 7, NULL);
    tk_assert_close_f32(y, F(0, 0, -1.f / 3, 0, 2.f / 3, 3, 4), 7, 1e-6f, 1e-7f);
    onr_tensor_free(y);

    y = act("Shrink", 9, x, 5, NULL); /* lambd 0.5, bias 0 */
    tk_assert_close_f32(y, F(-2, 0, 0, 0, 2), 5, 0, 0);
    onr_tensor_free(y);
    y = act("Shrink", 9, x, 5, "lambd", 1.0, "bias", 0.5, NULL);
    tk_assert_close_f32(y, F(-1.5f, 0, 0, 0, 1.5f), 5, 0, 0);
    onr_tensor_free(y);

    /* Gelu tanh approximation */
    for (int i = 0; i < 5; i++) {
        double v = x[i];
        w[i] = (float)(0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
    }
    onr_node *n = tk_node("Gelu");
    tk_attr_string(n, "approximate", "tanh");
    onr_tensor *in[1] = {tk_f32(1, D(5), x)};
    assert_int_equal(run1(n, 20, 1, in, &y, NULL), ONR_OK);
    tk_assert_close_f32(y, w, 5, 2e-6f, 1e-7f);
    tk_free_all(1, &y);
    tk_free_all(1, in);
    tk_node_free(n);

    n = tk_node("Gelu");
    tk_attr_string(n, "approximate", "fast");
    onr_tensor *in2[1] = {tk_f32(1, D(5), x)};
    op_fails(n, 20, 1, in2, ONR_E_MODEL, "fast");
    onr_tensor *in3[2] = {tk_f32(1, D(5), x), tk_f32(1, D(5), x)};
    op_fails(tk_node("Relu"), 14, 2, in3, ONR_E_MODEL, "1 input");
}

static void test_isnan_isinf(void **state)
{
    (void)state;
    const float x[] = {1, NAN, INFINITY, -INFINITY, -0.f};
    onr_tensor *in[1] = {tk_f32(1, D(5), x)};
    onr_tensor *y = op_ok("IsNaN", 13, 1, in);
    assert_bools(y, (uint8_t[]){0, 1, 0, 0, 0}, 5);
    onr_tensor_free(y);
    onr_tensor *in2[1] = {tk_f32(1, D(5), x)};
    y = op_ok("IsInf", 10, 1, in2);
    assert_bools(y, (uint8_t[]){0, 0, 1, 1, 0}, 5);
    onr_tensor_free(y);
    onr_node *n = tk_node("IsInf");
    tk_attr_int(n, "detect_positive", 0);
    onr_tensor *in3[1] = {tk_f32(1, D(5), x)};
    assert_int_equal(run1(n, 10, 1, in3, &y, NULL), ONR_OK);
    assert_bools(y, (uint8_t[]){0, 0, 0, 1, 0}, 5);
    tk_free_all(1, &y);
    tk_free_all(1, in3);
    tk_node_free(n);
    /* double beyond the float range is finite */
    onr_tensor *in4[1] = {tk_typed(ONR_DOUBLE, 1, D(2), (double[]){1e300, -INFINITY})};
    y = op_ok("IsInf", 20, 1, in4);
    assert_bools(y, (uint8_t[]){0, 1}, 2);
    onr_tensor_free(y);
    uint16_t h[] = {0x7c00, 0x7e00, 0x3c00};
    onr_tensor *in5[1] = {tk_typed(ONR_FLOAT16, 1, D(3), h)};
    y = op_ok("IsNaN", 13, 1, in5);
    assert_bools(y, (uint8_t[]){0, 1, 0}, 3);
    onr_tensor_free(y);
}

/* ---- Clip ---------------------------------------------------------------------- */

static void test_clip(void **state)
{
    (void)state;
    const float x[] = {-3, -1, 0, 1, 3, NAN};
    /* opset 6: attributes */
    onr_tensor *y = act("Clip", 6, x, 6, "min", -1.5, "max", 2.0, NULL);
    tk_assert_close_f32(y, F(-1.5f, -1, 0, 1, 2, NAN), 6, 0, 0);
    onr_tensor_free(y);
    y = act("Clip", 10, x, 6, "max", 0.5, NULL);
    tk_assert_close_f32(y, F(-3, -1, 0, 0.5f, 0.5f, NAN), 6, 0, 0);
    onr_tensor_free(y);

    /* opset 11+: inputs, either optional */
    float lo = -0.5f, hi = 1.5f;
    onr_tensor *in[3] = {tk_f32(1, D(6), x), tk_f32(0, NULL, &lo), tk_f32(0, NULL, &hi)};
    y = op_ok("Clip", 13, 3, in);
    tk_assert_close_f32(y, F(-0.5f, -0.5f, 0, 1, 1.5f, NAN), 6, 0, 0);
    onr_tensor_free(y);
    onr_tensor *in2[3] = {tk_f32(1, D(6), x), NULL, tk_f32(0, NULL, &hi)};
    y = op_ok("Clip", 11, 3, in2);
    tk_assert_close_f32(y, F(-3, -1, 0, 1, 1.5f, NAN), 6, 0, 0);
    onr_tensor_free(y);
    onr_tensor *in3[2] = {tk_f32(1, D(6), x), tk_f32(0, NULL, &lo)};
    y = op_ok("Clip", 12, 2, in3);
    tk_assert_close_f32(y, F(-0.5f, -0.5f, 0, 1, 3, NAN), 6, 0, 0);
    onr_tensor_free(y);
    onr_tensor *in4[1] = {tk_f32(1, D(6), x)};
    y = op_ok("Clip", 13, 1, in4);
    tk_assert_close_f32(y, x, 6, 0, 0);
    onr_tensor_free(y);
    /* min > max: everything becomes max (numpy.clip) */
    onr_tensor *in5[3] = {tk_f32(1, D(6), x), tk_f32(0, NULL, &hi), tk_f32(0, NULL, &lo)};
    y = op_ok("Clip", 13, 3, in5);
    tk_assert_close_f32(y, F(-0.5f, -0.5f, -0.5f, -0.5f, -0.5f, NAN), 6, 0, 0);
    onr_tensor_free(y);

    /* integer types from opset 12 */
    int8_t xi[] = {-128, -5, 0, 5, 127}, l8 = -4;
    onr_tensor *in6[2] = {tk_typed(ONR_INT8, 1, D(5), xi), tk_typed(ONR_INT8, 0, NULL, &l8)};
    y = op_ok("Clip", 12, 2, in6);
    assert_bytes(y, ONR_INT8, (int8_t[]){-4, -4, 0, 5, 127}, 5);
    onr_tensor_free(y);
    uint64_t xu[] = {0, 5, UINT64_MAX}, hu = UINT64_MAX - 1;
    onr_tensor *in7[3] = {tk_typed(ONR_UINT64, 1, D(3), xu), NULL, tk_typed(ONR_UINT64, 0, NULL, &hu)};
    y = op_ok("Clip", 13, 3, in7);
    assert_bytes(y, ONR_UINT64, (uint64_t[]){0, 5, UINT64_MAX - 1}, 3);
    onr_tensor_free(y);
    int64_t xl[] = {INT64_MIN, 3, INT64_MAX}, ll = INT64_MIN + 1;
    onr_tensor *in8[2] = {tk_i64(1, D(3), xl), tk_i64(0, NULL, &ll)};
    y = op_ok("Clip", 13, 2, in8);
    tk_assert_eq_i64(y, (int64_t[]){INT64_MIN + 1, 3, INT64_MAX}, 3);
    onr_tensor_free(y);

    /* fp16 with bounds */
    uint16_t xh[] = {onr_float_to_half(-2), onr_float_to_half(0.5f), onr_float_to_half(9)};
    uint16_t lh = onr_float_to_half(-1), hh = onr_float_to_half(1);
    onr_tensor *in9[3] = {tk_typed(ONR_FLOAT16, 1, D(3), xh), tk_typed(ONR_FLOAT16, 0, NULL, &lh),
                          tk_typed(ONR_FLOAT16, 0, NULL, &hh)};
    y = op_ok("Clip", 13, 3, in9);
    assert_bytes(y, ONR_FLOAT16, (uint16_t[]){lh, xh[1], hh}, 3);
    onr_tensor_free(y);

    /* errors: bound not scalar, bound of another type, too many inputs at 6 */
    onr_tensor *e1[2] = {tk_f32(1, D(6), x), tk_f32(1, D(2), F(0, 1))};
    op_fails(tk_node("Clip"), 13, 2, e1, ONR_E_MODEL, "scalar");
    onr_tensor *e2[2] = {tk_f32(1, D(6), x), tk_typed(ONR_DOUBLE, 0, NULL, (double[]){0})};
    op_fails(tk_node("Clip"), 13, 2, e2, ONR_E_MODEL, "float64");
    onr_tensor *e3[2] = {tk_f32(1, D(6), x), tk_f32(0, NULL, &lo)};
    op_fails(tk_node("Clip"), 6, 2, e3, ONR_E_MODEL, "1 input");
}

/* ---- Cast ---------------------------------------------------------------------- */

static onr_tensor *cast_to(onr_tensor *x, onr_dtype to, int64_t opset)
{
    onr_node *n = tk_node("Cast");
    tk_attr_int(n, "to", to);
    onr_tensor *in[1] = {x}, *y = NULL;
    onr_err err = {0};
    if (run1(n, opset, 1, in, &y, &err) != ONR_OK) fail_msg("Cast: %s", err.msg);
    tk_node_free(n);
    return y;
}

static void test_cast_numeric(void **state)
{
    (void)state;
    const float x[] = {-2.7f, -0.5f, 0, 1.5f, 300.25f, 65504, 1e10f};
    onr_tensor *xf = tk_f32(1, D(7), x);
    onr_tensor *y = cast_to(xf, ONR_INT32, 13);
    assert_bytes(y, ONR_INT32, (int32_t[]){-2, 0, 0, 1, 300, 65504, (int32_t)10000000000LL}, 7);
    onr_tensor_free(y);
    y = cast_to(xf, ONR_INT64, 13);
    tk_assert_eq_i64(y, (int64_t[]){-2, 0, 0, 1, 300, 65504, 10000000000LL}, 7);
    onr_tensor_free(y);
    y = cast_to(xf, ONR_UINT8, 13); /* wraps through int64 like numpy */
    assert_bytes(y, ONR_UINT8, (uint8_t[]){254, 0, 0, 1, 44, 224, 0}, 7);
    onr_tensor_free(y);
    y = cast_to(xf, ONR_BOOL, 13);
    assert_bools(y, (uint8_t[]){1, 1, 0, 1, 1, 1, 1}, 7);
    onr_tensor_free(y);

    /* float <-> float16 <-> float round trip is exact for representable values */
    y = cast_to(xf, ONR_FLOAT16, 13);
    assert_int_equal(((uint16_t *)y->data)[5], 0x7bff);
    assert_int_equal(((uint16_t *)y->data)[6], 0x7c00);
    onr_tensor *back = cast_to(y, ONR_FLOAT, 13);
    tk_assert_close_f32(back, F(-2.69921875f, -0.5f, 0, 1.5f, 300.25f, 65504, INFINITY), 7, 0, 0);
    onr_tensor_free(back);
    back = cast_to(y, ONR_DOUBLE, 13);
    assert_true(((double *)back->data)[3] == 1.5);
    onr_tensor_free(back);
    back = cast_to(y, ONR_BFLOAT16, 13);
    assert_int_equal(((uint16_t *)back->data)[3], onr_float_to_bf16(1.5f));
    onr_tensor_free(back);
    onr_tensor_free(y);
    y = cast_to(xf, ONR_BFLOAT16, 13);
    back = cast_to(y, ONR_FLOAT, 13);
    assert_true(((float *)back->data)[3] == 1.5f && ((float *)back->data)[4] == 300.f);
    onr_tensor_free(back);
    onr_tensor_free(y);
    onr_tensor_free(xf);

    /* integers */
    onr_tensor *xi = tk_i64(1, D(4), (int64_t[]){-1, 300, INT64_MAX, 16777217});
    y = cast_to(xi, ONR_UINT8, 13);
    assert_bytes(y, ONR_UINT8, (uint8_t[]){255, 44, 255, 1}, 4);
    onr_tensor_free(y);
    y = cast_to(xi, ONR_FLOAT, 13);
    tk_assert_close_f32(y, F(-1, 300, 9.223372e18f, 16777216), 4, 0, 0);
    onr_tensor_free(y);
    y = cast_to(xi, ONR_UINT64, 13);
    assert_bytes(y, ONR_UINT64, (uint64_t[]){UINT64_MAX, 300, INT64_MAX, 16777217}, 4);
    onr_tensor *z = cast_to(y, ONR_DOUBLE, 13);
    assert_true(((double *)z->data)[0] == 18446744073709551615.0);
    onr_tensor_free(z);
    z = cast_to(y, ONR_INT64, 13);
    tk_assert_eq_i64(z, (int64_t[]){-1, 300, INT64_MAX, 16777217}, 4);
    onr_tensor_free(z);
    onr_tensor_free(y);
    onr_tensor_free(xi);

    /* NaN and out-of-range floats to integers are defined, not UB */
    onr_tensor *xd = tk_typed(ONR_DOUBLE, 1, D(3), (double[]){NAN, 1e30, -1e30});
    y = cast_to(xd, ONR_INT64, 13);
    tk_assert_eq_i64(y, (int64_t[]){0, INT64_MAX, INT64_MIN}, 3);
    onr_tensor_free(y);
    y = cast_to(xd, ONR_UINT64, 13);
    assert_bytes(y, ONR_UINT64, (uint64_t[]){0, UINT64_MAX, (uint64_t)INT64_MIN}, 3);
    onr_tensor_free(y);
    onr_tensor_free(xd);

    onr_tensor *xb = tk_bool(1, D(2), (uint8_t[]){1, 0});
    y = cast_to(xb, ONR_FLOAT, 13);
    tk_assert_close_f32(y, F(1, 0), 2, 0, 0);
    onr_tensor_free(y);
    y = cast_to(xb, ONR_INT32, 6);
    assert_bytes(y, ONR_INT32, (int32_t[]){1, 0}, 2);
    onr_tensor_free(y);
    onr_tensor_free(xb);

    /* large cast, parallel, same as serial */
    onr_tensor *r = tk_rand_f32(2, D(300, 257), 3);
    onr_node *n = tk_node("Cast");
    tk_attr_int(n, "to", ONR_FLOAT16);
    onr_tensor *in[1] = {r}, *o1, *o4;
    assert_int_equal(tk_run(n, 19, 1, in, 1, &o1, 1, NULL), ONR_OK);
    assert_int_equal(tk_run(n, 19, 1, in, 1, &o4, 4, NULL), ONR_OK);
    assert_memory_equal(o1->data, o4->data, (size_t)o1->numel * 2);
    for (int64_t i = 0; i < r->numel; i += 101)
        assert_int_equal(((uint16_t *)o1->data)[i], onr_float_to_half(((float *)r->data)[i]));
    tk_free_all(1, &o1);
    tk_free_all(1, &o4);
    tk_node_free(n);
    onr_tensor_free(r);
}

static onr_tensor *str_tensor(int n, const char *const *s)
{
    onr_tensor *t = onr_tensor_new(ONR_STRING, 1, D(n));
    assert_non_null(t);
    for (int i = 0; i < n; i++) {
        free(((char **)t->data)[i]);
        ((char **)t->data)[i] = onr_strdup(s[i]);
    }
    return t;
}

static void test_cast_string(void **state)
{
    (void)state;
    const char *in[] = {"3.14", "-1e-5", "INF", "-inf", "NaN", "+Inf", "100.5", "abc"};
    onr_tensor *s = str_tensor(8, in);
    onr_tensor *y = cast_to(s, ONR_FLOAT, 13);
    tk_assert_close_f32(y, F(3.14f, -1e-5f, INFINITY, -INFINITY, NAN, INFINITY, 100.5f, 0), 8, 0, 0);
    onr_tensor_free(y);
    y = cast_to(s, ONR_INT32, 13);
    assert_int_equal(((int32_t *)y->data)[0], 3);
    assert_int_equal(((int32_t *)y->data)[6], 100);
    onr_tensor_free(y);
    onr_tensor_free(s);

    const float x[] = {0.039187793f, 1, -0.5f, 1e-5f, 1.5e20f, 123456.78f, NAN, -INFINITY};
    const char *want[] = {"0.039187793", "1.0", "-0.5", "1e-05", "1.5e+20", "123456.78", "nan", "-inf"};
    onr_tensor *xf = tk_f32(1, D(8), x);
    y = cast_to(xf, ONR_STRING, 13);
    assert_int_equal(y->dtype, ONR_STRING);
    for (int i = 0; i < 8; i++) assert_string_equal(((char **)y->data)[i], want[i]);
    /* and back */
    onr_tensor *back = cast_to(y, ONR_FLOAT, 13);
    tk_assert_close_f32(back, x, 8, 0, 0);
    onr_tensor_free(back);
    /* string to string copies */
    back = cast_to(y, ONR_STRING, 13);
    assert_string_equal(((char **)back->data)[4], "1.5e+20");
    onr_tensor_free(back);
    onr_tensor_free(y);
    onr_tensor_free(xf);

    onr_tensor *xi = tk_i64(1, D(2), (int64_t[]){-42, INT64_MAX});
    y = cast_to(xi, ONR_STRING, 13);
    assert_string_equal(((char **)y->data)[0], "-42");
    assert_string_equal(((char **)y->data)[1], "9223372036854775807");
    onr_tensor_free(y);
    onr_tensor_free(xi);

    onr_tensor *xd = tk_typed(ONR_DOUBLE, 1, D(2), (double[]){0.1, 1e16});
    y = cast_to(xd, ONR_STRING, 13);
    assert_string_equal(((char **)y->data)[0], "0.1");
    assert_string_equal(((char **)y->data)[1], "1e+16");
    onr_tensor_free(y);
    onr_tensor_free(xd);
}

static void test_castlike_and_errors(void **state)
{
    (void)state;
    onr_tensor *in[2] = {tk_f32(1, D(3), F(1.9f, -1.9f, 7)), tk_i64(1, D(1), NULL)};
    onr_tensor *y = op_ok("CastLike", 15, 2, in);
    tk_assert_eq_i64(y, (int64_t[]){1, -1, 7}, 3);
    onr_tensor_free(y);
    onr_tensor *in2[2] = {tk_i32(1, D(2), (int32_t[]){3, 0}), tk_typed(ONR_FLOAT16, 0, NULL, (uint16_t[]){0})};
    y = op_ok("CastLike", 21, 2, in2);
    assert_bytes(y, ONR_FLOAT16, (uint16_t[]){onr_float_to_half(3), 0}, 2);
    onr_tensor_free(y);

    onr_tensor *e1[1] = {tk_f32(1, D(1), F(1))};
    op_fails(tk_node("Cast"), 13, 1, e1, ONR_E_MODEL, "to");
    onr_node *n = tk_node("Cast");
    tk_attr_int(n, "to", 24); /* float8e8m0: a Cast target from opset 24 */
    onr_tensor *e2[1] = {tk_f32(1, D(1), F(1))};
    op_fails(n, 23, 1, e2, ONR_E_MODEL, "float8e8m0");
    n = tk_node("Cast");
    tk_attr_int(n, "to", 99);
    onr_tensor *e3[1] = {tk_f32(1, D(1), F(1))};
    op_fails(n, 13, 1, e3, ONR_E_MODEL, "99");
    onr_tensor *e4[1] = {tk_f32(1, D(1), F(1))};
    op_fails(tk_node("CastLike"), 15, 1, e4, ONR_E_MODEL, "2 inputs");
}

/* Before opset 7: B broadcasts to A only with broadcast=1, from `axis`. */
static void test_legacy_broadcast(void **state)
{
    (void)state;
    float a[24], want[24];
    for (int i = 0; i < 24; i++) a[i] = (float)i;
    for (int i = 0; i < 24; i++) want[i] = a[i] + 100.f * (float)((i / 4) % 3 + 1);
    onr_node *n = tk_node("Add");
    tk_attr_int(n, "broadcast", 1);
    tk_attr_int(n, "axis", 1);
    onr_tensor *in[2] = {tk_f32(3, D(2, 3, 4), a), tk_f32(1, D(3), F(100, 200, 300))}, *y;
    assert_int_equal(run1(n, 6, 2, in, &y, NULL), ONR_OK);
    tk_assert_shape(y, 3, D(2, 3, 4));
    tk_assert_close_f32(y, want, 24, 0, 0);
    tk_free_all(1, &y);
    tk_free_all(2, in);
    tk_node_free(n);

    /* default axis: trailing dims; a single value anywhere */
    n = tk_node("Mul");
    tk_attr_int(n, "broadcast", 1);
    onr_tensor *in2[2] = {tk_f32(2, D(2, 2), F(1, 2, 3, 4)), tk_f32(1, D(2), F(10, 100))};
    assert_int_equal(run1(n, 1, 2, in2, &y, NULL), ONR_OK);
    tk_assert_close_f32(y, F(10, 200, 30, 400), 4, 0, 0);
    tk_free_all(1, &y);
    tk_free_all(2, in2);
    onr_tensor *in3[2] = {tk_f32(2, D(2, 2), F(1, 2, 3, 4)), tk_f32(1, D(1), F(3))};
    assert_int_equal(run1(n, 6, 2, in3, &y, NULL), ONR_OK);
    tk_assert_close_f32(y, F(3, 6, 9, 12), 4, 0, 0);
    tk_free_all(1, &y);
    tk_free_all(2, in3);
    tk_node_free(n);

    /* without the attribute, shapes must be equal; B never grows A */
    onr_tensor *e1[2] = {tk_f32(2, D(2, 2), NULL), tk_f32(1, D(2), NULL)};
    op_fails(tk_node("Sub"), 6, 2, e1, ONR_E_MODEL, "broadcast attribute");
    n = tk_node("Add");
    tk_attr_int(n, "broadcast", 1);
    onr_tensor *e2[2] = {tk_f32(1, D(2), NULL), tk_f32(2, D(2, 2), NULL)};
    op_fails(n, 6, 2, e2, ONR_E_MODEL, "does not fit");

    /* PRelu-6: a [C] slope runs along axis 1 */
    onr_tensor *in5[2] = {tk_f32(3, D(1, 2, 2), F(-1, -2, -3, 4)), tk_f32(1, D(2), F(10, 100))};
    y = op_ok("PRelu", 6, 2, in5);
    tk_assert_close_f32(y, F(-10, -20, -300, 4), 4, 0, 0);
    onr_tensor_free(y);

    /* Cast-1 names its type */
    n = tk_node("Cast");
    tk_attr_string(n, "to", "INT32");
    onr_tensor *in4[1] = {tk_f32(1, D(2), F(2.5f, -1.5f))};
    assert_int_equal(run1(n, 1, 1, in4, &y, NULL), ONR_OK);
    assert_bytes(y, ONR_INT32, (int32_t[]){2, -1}, 2);
    tk_free_all(1, &y);
    tk_free_all(1, in4);
    tk_node_free(n);
}

/* ---- in place (ONR_OP_INPLACE) ------------------------------------------------ *
 *
 * A plan may hand an in-place operator an output buffer that is one of its
 * inputs' buffers (same byte size, value dead after the step). onr_exec_node
 * always allocates its outputs, so these tests drive the step sequence of
 * exec.h themselves: create and reshape with a fresh output tensor, then
 * point the output at input `alias`'s data and run. The result must be
 * bit-identical to the run into a separate buffer.
 */

/* Random values in [lo, hi) of type dt (float types and int32/bool). */
static onr_tensor *rand_typed(onr_dtype dt, int rank, const int64_t *dims, uint32_t seed,
                              float lo, float hi)
{
    onr_tensor *f = tk_rand_f32(rank, dims, seed);
    onr_tensor *t = tk_typed(dt, rank, dims, NULL);
    for (int64_t i = 0; i < t->numel; i++) {
        float v = lo + (((float *)f->data)[i] + 1.f) * 0.5f * (hi - lo);
        if (dt == ONR_BOOL) v = v > 0;
        onr_set_f64(t, i, v);
    }
    onr_tensor_free(f);
    return t;
}

/* The step sequence with out[0] written over in[alias]; returns a copy of
 * the result. The output must have in[alias]'s byte size, as the planner
 * requires. */
static onr_tensor *run_aliased(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int alias,
                               int nthreads)
{
    onr_err err = {0};
    n->opset = opset;
    n->n_in = n_in;
    n->n_out = 1;
    const onr_op *op = onr_op_find(n->domain, n->op_type, opset);
    assert_non_null(op);
    if (!(op->impl->flags & ONR_OP_INPLACE)) fail_msg("%s is not flagged in place", n->op_type);
    onr_step s;
    onr_tensor out = {0};
    assert_int_equal(onr_step_init(&s, n, op, n_in, 1, &err), ONR_OK);
    s.opset = opset;
    for (int k = 0; k < n_in; k++) s.in[k] = in[k];
    s.out[0] = &out;
    if (onr_step_create(&s, nthreads, &err) || onr_step_reshape(&s, nthreads, NULL, &err))
        fail_msg("%s: %s", n->op_type, err.msg);
    size_t ob = onr_tensor_nbytes(&out), ib = onr_tensor_nbytes(in[alias]);
    if (ob != ib) fail_msg("%s: output has %zu bytes, input %d has %zu", n->op_type, ob, alias, ib);
    out.data = in[alias]->data;
    out.owns = 0;
    void *scratch = s.scratch ? malloc(s.scratch) : NULL;
    if (onr_step_run(&s, scratch, nthreads, &err)) fail_msg("%s: %s", n->op_type, err.msg);
    free(scratch);
    onr_step_destroy(&s);
    onr_tensor *res = onr_tensor_clone(&out);
    assert_non_null(res);
    return res;
}

/* Run node n (freed here) on inputs (freed here) into a new buffer, then
 * over input alias; both results must be the same bits. */
static void check_aliased(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int alias,
                          int nthreads)
{
    onr_tensor *ref = NULL;
    onr_err err = {0};
    if (tk_run(n, opset, n_in, in, 1, &ref, nthreads, &err))
        fail_msg("%s: %s", n->op_type, err.msg);
    onr_tensor *got = run_aliased(n, opset, n_in, in, alias, nthreads);
    assert_int_equal(got->dtype, ref->dtype);
    tk_assert_shape(got, ref->rank, ref->dims);
    if (memcmp(got->data, ref->data, onr_tensor_nbytes(ref)) != 0) {
        for (int64_t i = 0; i < ref->numel; i++)
            if (onr_get_f64(got, i) != onr_get_f64(ref, i) &&
                !(isnan(onr_get_f64(got, i)) && isnan(onr_get_f64(ref, i))))
                fail_msg("%s over input %d: element %lld is %g, not %g", n->op_type, alias,
                         (long long)i, onr_get_f64(got, i), onr_get_f64(ref, i));
        fail_msg("%s over input %d: bytes differ", n->op_type, alias);
    }
    onr_tensor_free(got);
    onr_tensor_free(ref);
    tk_free_all(n_in, in);
    tk_node_free(n);
}

/* Binary op on two inputs of type dt, the output over input alias. */
static void alias_bin(const char *op, onr_dtype dt, int ra, const int64_t *da, int rb,
                      const int64_t *db, int alias, int nthreads)
{
    onr_tensor *in[2] = {rand_typed(dt, ra, da, 1, -2, 2), rand_typed(dt, rb, db, 2, -2, 2)};
    check_aliased(tk_node(op), 14, 2, in, alias, nthreads);
}

static void test_inplace_binary(void **state)
{
    (void)state;
    static const onr_dtype types[] = {ONR_FLOAT, ONR_FLOAT16};
    for (int t = 0; t < 2; t++) {
        onr_dtype dt = types[t];
        /* same shape, over either input; 3 x 300 spans several fp16 chunks */
        alias_bin("Add", dt, 2, D(3, 300), 2, D(3, 300), 0, 1);
        alias_bin("Sub", dt, 2, D(3, 300), 2, D(3, 300), 1, 1);
        alias_bin("Div", dt, 1, D(7), 1, D(7), 1, 1);
        /* broadcast: the other input is a row, a column, a scalar */
        alias_bin("Mul", dt, 3, D(2, 3, 301), 1, D(301), 0, 1);
        alias_bin("Sub", dt, 2, D(5, 1), 2, D(5, 260), 1, 1);
        alias_bin("Max", dt, 2, D(4, 70), 0, NULL, 0, 1);
        alias_bin("Min", dt, 2, D(1, 70), 3, D(3, 2, 70), 1, 1);
        alias_bin("PRelu", dt, 4, D(2, 3, 4, 5), 3, D(3, 1, 1), 0, 1);
        alias_bin("Pow", dt, 2, D(3, 100), 0, NULL, 0, 1);
        /* above the parallel threshold: every thread's slice in place */
        alias_bin("Add", dt, 2, D(64, 1024), 1, D(1024), 0, 4);
        alias_bin("Sub", dt, 2, D(64, 1), 2, D(64, 1024), 1, 4);
    }
    /* comparisons: a bool output over a 1-byte input */
    onr_tensor *in[2] = {rand_typed(ONR_BOOL, 1, D(40), 3, -1, 1),
                         rand_typed(ONR_BOOL, 2, D(1, 40), 4, -1, 1)};
    check_aliased(tk_node("Xor"), 14, 2, in, 0, 1);

    /* legacy broadcast (opset 6): B along axis 1 */
    onr_node *n = tk_node("Add");
    tk_attr_int(n, "broadcast", 1);
    tk_attr_int(n, "axis", 1);
    onr_tensor *in2[2] = {tk_rand_f32(3, D(2, 3, 4), 5), tk_rand_f32(1, D(3), 6)};
    check_aliased(n, 6, 2, in2, 0, 1);

    /* Where: the output over X, and over a bool cond when X and Y are bool */
    onr_tensor *in3[3] = {rand_typed(ONR_BOOL, 2, D(4, 33), 7, -1, 1), tk_rand_f32(2, D(4, 33), 8),
                          tk_rand_f32(0, NULL, 9)};
    check_aliased(tk_node("Where"), 16, 3, in3, 1, 1);
    onr_tensor *in4[3] = {rand_typed(ONR_BOOL, 2, D(4, 33), 7, -1, 1),
                          rand_typed(ONR_BOOL, 1, D(33), 8, -1, 1),
                          rand_typed(ONR_BOOL, 2, D(4, 33), 9, -1, 1)};
    check_aliased(tk_node("Where"), 16, 3, in4, 0, 1);
}

/* An input with the output's byte size but another element size is a
 * broadcast input: run must copy it aside before writing over it. */
static void test_inplace_wider_input(void **state)
{
    (void)state;
    /* float32 [1,8] (32 bytes) against a bool [4,8] output (32 bytes) */
    onr_tensor *in[2] = {tk_rand_f32(2, D(1, 8), 1), tk_rand_f32(2, D(4, 8), 2)};
    check_aliased(tk_node("Less"), 13, 2, in, 0, 1);
    onr_tensor *in2[2] = {rand_typed(ONR_FLOAT16, 2, D(4, 1), 3, -1, 1),
                          rand_typed(ONR_FLOAT16, 2, D(4, 2), 4, -1, 1)};
    check_aliased(tk_node("Equal"), 13, 2, in2, 0, 1);
    /* a float64 exponent [1,4] (32 bytes) of a float32 base [2,4] */
    onr_tensor *in3[2] = {rand_typed(ONR_FLOAT, 2, D(2, 4), 5, 0.5f, 2),
                          rand_typed(ONR_DOUBLE, 2, D(1, 4), 6, -2, 2)};
    check_aliased(tk_node("Pow"), 15, 2, in3, 1, 1);
}

static void test_inplace_variadic(void **state)
{
    (void)state;
    static const onr_dtype types[] = {ONR_FLOAT, ONR_FLOAT16};
    static const char *const ops[] = {"Sum", "Mean", "Max", "Min"};
    for (int t = 0; t < 2; t++) {
        for (int o = 0; o < 4; o++) {
            /* over the first input, and over one folded after the first pass */
            for (int alias = 0; alias < 3; alias += 2) {
                onr_tensor *in[3] = {rand_typed(types[t], 2, D(3, 290), 1, -2, 2),
                                     rand_typed(types[t], 1, D(290), 2, -2, 2),
                                     rand_typed(types[t], 2, D(3, 290), 3, -2, 2)};
                check_aliased(tk_node(ops[o]), 13, 3, in, alias, 1);
            }
        }
        onr_tensor *in[1] = {rand_typed(types[t], 1, D(10), 4, -2, 2)};
        check_aliased(tk_node("Sum"), 13, 1, in, 0, 1);
    }
}

static void test_inplace_unary(void **state)
{
    (void)state;
    static const onr_dtype types[] = {ONR_FLOAT, ONR_FLOAT16, ONR_BFLOAT16};
    static const char *const ops[] = {"Relu", "Sigmoid", "Exp", "Tanh", "Gelu", "Softplus",
                                      "Neg", "Abs", "HardSwish", "Erf"};
    for (int t = 0; t < 3; t++) {
        for (int o = 0; o < (int)(sizeof ops / sizeof *ops); o++) {
            onr_tensor *in[1] = {rand_typed(types[t], 2, D(5, 211), (uint32_t)o, -4, 4)};
            check_aliased(tk_node(ops[o]), 20, 1, in, 0, 1);
        }
        onr_node *n = tk_node("LeakyRelu");
        tk_attr_float(n, "alpha", 0.3f);
        onr_tensor *in[1] = {rand_typed(types[t], 1, D(1000), 11, -4, 4)};
        check_aliased(n, 16, 1, in, 0, 1);

        /* Clip-11: bounds are inputs, read before the output is written */
        onr_tensor *in2[3] = {rand_typed(types[t], 2, D(3, 300), 12, -4, 4),
                              rand_typed(types[t], 0, NULL, 13, -1, -0.5f),
                              rand_typed(types[t], 0, NULL, 14, 0.5f, 1)};
        check_aliased(tk_node("Clip"), 13, 3, in2, 0, 1);
        onr_tensor *in3[2] = {rand_typed(types[t], 1, D(1), 15, -4, 4),
                              rand_typed(types[t], 1, D(1), 16, -1, 1)};
        check_aliased(tk_node("Clip"), 13, 2, in3, 1, 1);
    }
    /* above the parallel threshold */
    onr_tensor *in[1] = {tk_rand_f32(2, D(64, 1024), 17)};
    check_aliased(tk_node("Sigmoid"), 13, 1, in, 0, 4);
    /* integers through the float64 kernel, and Not */
    onr_tensor *in2[1] = {rand_typed(ONR_INT32, 1, D(600), 18, -3, 3)};
    check_aliased(tk_node("Erf"), 13, 1, in2, 0, 1);
    onr_tensor *in3[1] = {rand_typed(ONR_BOOL, 1, D(50), 19, -1, 1)};
    check_aliased(tk_node("Not"), 13, 1, in3, 0, 1);
}

static void test_inplace_flags(void **state)
{
    (void)state;
    static const char *const yes[] = {"Add", "Pow", "Mod", "Equal", "And", "BitShift", "PRelu",
                                      "Where", "Sum", "Mean", "Max", "Relu", "Gelu", "Clip",
                                      "Not"};
    static const char *const no[] = {"Cast", "CastLike", "IsNaN", "IsInf"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (!(onr_op_find("", yes[i], 21)->impl->flags & ONR_OP_INPLACE))
            fail_msg("%s should be in place", yes[i]);
    assert_true(onr_op_find("", "Clip", 6)->impl->flags & ONR_OP_INPLACE);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (onr_op_find("", no[i], 21)->impl->flags & ONR_OP_INPLACE)
            fail_msg("%s should not be in place", no[i]);
}

static void test_registry_ranges(void **state)
{
    (void)state;
    /* Clip's two forms are separate entries */
    const onr_op *c6 = onr_op_find("", "Clip", 6), *c11 = onr_op_find("", "Clip", 11);
    assert_non_null(c6);
    assert_non_null(c11);
    assert_ptr_not_equal(c6->impl, c11->impl);
    assert_ptr_equal(onr_op_find("", "Clip", 10)->impl, c6->impl);
    assert_non_null(onr_op_find("", "Add", 6));
    assert_null(onr_op_find("", "Mod", 9));
    assert_non_null(onr_op_find("ai.onnx", "Gelu", 20));
    assert_null(onr_op_find("", "Gelu", 19));
    assert_non_null(onr_op_find("", "CastLike", 25));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_inner_broadcast),
        cmocka_unit_test(test_mul_two_sided_broadcast),
        cmocka_unit_test(test_scalar_operands),
        cmocka_unit_test(test_zero_size),
        cmocka_unit_test(test_broadcast_errors),
        cmocka_unit_test(test_broadcast_vs_reference),
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_int_arith),
        cmocka_unit_test(test_mod),
        cmocka_unit_test(test_pow),
        cmocka_unit_test(test_half_types),
        cmocka_unit_test(test_variadic),
        cmocka_unit_test(test_compare_logic),
        cmocka_unit_test(test_bitshift),
        cmocka_unit_test(test_prelu_where),
        cmocka_unit_test(test_unary_math),
        cmocka_unit_test(test_fast_math_accuracy),
        cmocka_unit_test(test_unary_int),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_isnan_isinf),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_cast_numeric),
        cmocka_unit_test(test_cast_string),
        cmocka_unit_test(test_castlike_and_errors),
        cmocka_unit_test(test_legacy_broadcast),
        cmocka_unit_test(test_inplace_binary),
        cmocka_unit_test(test_inplace_wider_input),
        cmocka_unit_test(test_inplace_variadic),
        cmocka_unit_test(test_inplace_unary),
        cmocka_unit_test(test_inplace_flags),
        cmocka_unit_test(test_registry_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
