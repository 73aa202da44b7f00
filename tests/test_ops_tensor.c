/* test_ops_tensor.c - the tensor-manipulation operators: hand-checked cases
 * for each op and opset form, negative axes, zero-size dims, int64 / bool /
 * fp16 / string elements, the strided-copy paths against a naive reference
 * at several thread counts, shape fns that must defer on unknown values,
 * error cases (whose messages must name the offending values), and the
 * create / reshape / run contract: attribute errors from create, the
 * shape_inputs of each op, and steps reused across shapes and values. */
#include "kutil.h"

#include <stdlib.h>
#include <string.h>

#define N_OF(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

/* ---- helpers --------------------------------------------------------------- */

static void run_n(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int n_out,
                  onr_tensor **out, int nthreads)
{
    onr_err err = {0};
    onr_status st = tk_run(n, opset, n_in, in, n_out, out, nthreads, &err);
    if (st != ONR_OK) fail_msg("%s (opset %lld) failed: %s", n->op_type, (long long)opset, err.msg);
}

static onr_tensor *run1(onr_node *n, int64_t opset, int n_in, onr_tensor **in)
{
    onr_tensor *out[1];
    run_n(n, opset, n_in, in, 1, out, 1);
    return out[0];
}

static void expect_fail(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int n_out,
                        onr_status code, const char *needle)
{
    onr_tensor *out[8];
    onr_err err = {0};
    onr_status st = tk_run(n, opset, n_in, in, n_out, out, 1, &err);
    if (st != code)
        fail_msg("%s: expected status %d, got %d (%s)", n->op_type, code, st, err.msg);
    if (needle && !strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    tk_free_all(n_out, out);
}

/* Call only create and reshape, as shape inference at load does, with the
 * given inputs (data may be NULL). */
static int shape_only(onr_node *n, int64_t opset, int n_in, onr_tensor **in)
{
    onr_tensor outs[2];
    memset(outs, 0, sizeof outs);
    onr_err err = {0};
    n->opset = opset;
    n->n_in = n_in;
    n->n_out = 1;
    const onr_op *op = onr_op_find("", n->op_type, opset);
    assert_non_null(op);
    onr_step s;
    assert_int_equal(onr_step_init(&s, n, op, n_in, 1, &err), ONR_OK);
    for (int k = 0; k < n_in; k++) s.in[k] = in[k];
    s.out[0] = &outs[0];
    int st = onr_step_create(&s, 1, &err);
    if (!st) st = onr_step_reshape(&s, 1, NULL, &err);
    onr_step_destroy(&s);
    return st;
}

/* A tensor with a shape but no data: a value not known until run time. */
static onr_tensor unknown_i64(int rank, const int64_t *dims)
{
    onr_tensor t;
    memset(&t, 0, sizeof t);
    onr_err err = {0};
    assert_int_equal(onr_tensor_set_shape(&t, ONR_INT64, rank, dims, &err), ONR_OK);
    return t;
}

static onr_tensor *i64v(int64_t n, const int64_t *v)
{
    return tk_i64(1, &n, v);
}

static onr_tensor *i64s(int64_t v)
{
    return tk_i64(0, NULL, &v);
}

/* 0, 1, 2, ... as float */
static onr_tensor *iota_f32(int rank, const int64_t *dims)
{
    onr_tensor *t = tk_f32(rank, dims, NULL);
    for (int64_t i = 0; i < t->numel; i++) ((float *)t->data)[i] = (float)i;
    return t;
}

static onr_tensor *mk_str(int rank, const int64_t *dims, const char *const *vals)
{
    onr_tensor *t = tk_typed(ONR_STRING, rank, dims, NULL);
    char **s = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        free(s[i]);
        s[i] = onr_strdup(vals[i]);
    }
    return t;
}

static void assert_str(const onr_tensor *t, const char *const *e, int64_t n)
{
    assert_int_equal(t->dtype, ONR_STRING);
    assert_int_equal(t->numel, n);
    for (int64_t i = 0; i < n; i++) assert_string_equal(((char **)t->data)[i], e[i]);
}

static void assert_bytes(const onr_tensor *t, onr_dtype dt, const void *e, int64_t n)
{
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->numel, n);
    assert_memory_equal(t->data, e, (size_t)n * onr_dtype_size(dt));
}

static void assert_f32(const onr_tensor *t, const float *e, int64_t n)
{
    tk_assert_close_f32(t, e, n, 0, 0);
}

/* ---- Reshape --------------------------------------------------------------- */

static void test_reshape(void **state)
{
    (void)state;
    int64_t d[] = {2, 3, 4};
    onr_tensor *x = iota_f32(3, d);
    /* 0 copies, -1 infers; output is a view of the input */
    const int64_t shp[] = {0, -1, 2};
    onr_node *n = tk_node("Reshape");
    onr_tensor *in[] = {x, i64v(3, shp)};
    onr_tensor *y = run1(n, 13, 2, in);
    int64_t e[] = {2, 6, 2};
    tk_assert_shape(y, 3, e);
    assert_ptr_equal(y->data, x->data);
    onr_tensor_free(y);
    /* allowzero=1 at opset 14: 0 is a real zero dim */
    tk_attr_int(n, "allowzero", 1);
    int64_t zd[] = {0, 3, 4};
    onr_tensor *z = tk_f32(3, zd, NULL);
    const int64_t zs[] = {3, 4, 0};
    onr_tensor *in2[] = {z, i64v(3, zs)};
    y = run1(n, 14, 2, in2);
    int64_t ez[] = {3, 4, 0};
    tk_assert_shape(y, 3, ez);
    onr_tensor_free(y);
    /* allowzero with both 0 and -1 is invalid */
    const int64_t bad[] = {0, -1};
    onr_tensor *in3[] = {z, i64v(2, bad)};
    expect_fail(n, 14, 2, in3, 1, ONR_E_MODEL, "allowzero");
    tk_node_free(n);
    /* allowzero ignored before opset 14: 0 copies dim 0 */
    n = tk_node("Reshape");
    tk_attr_int(n, "allowzero", 1);
    const int64_t cp[] = {0, 12};
    onr_tensor *in4[] = {x, i64v(2, cp)};
    y = run1(n, 13, 2, in4);
    int64_t ec[] = {2, 12};
    tk_assert_shape(y, 2, ec);
    onr_tensor_free(y);
    tk_node_free(n);
    /* opset 1-4: the shape is an attribute */
    n = tk_node("Reshape");
    const int64_t a[] = {4, -1};
    tk_attr_ints(n, "shape", 2, a);
    onr_tensor *in5[] = {x};
    y = run1(n, 4, 1, in5);
    int64_t ea[] = {4, 6};
    tk_assert_shape(y, 2, ea);
    onr_tensor_free(y);
    tk_node_free(n);
    /* scalar: empty shape */
    int64_t one = 1;
    onr_tensor *s1 = tk_f32(1, &one, NULL);
    n = tk_node("Reshape");
    onr_tensor *in6[] = {s1, tk_i64(1, (int64_t[]){0}, NULL)};
    y = run1(n, 13, 2, in6);
    assert_int_equal(y->rank, 0);
    onr_tensor_free(y);
    tk_free_all(2, in6);
    tk_node_free(n);
    tk_free_all(1, &in[1]);
    tk_free_all(1, &in2[1]);
    tk_free_all(1, &in3[1]);
    tk_free_all(1, &in4[1]);
    onr_tensor_free(z);
    onr_tensor_free(x);
}

static void test_reshape_errors(void **state)
{
    (void)state;
    int64_t d[] = {2, 3};
    onr_tensor *x = tk_f32(2, d, NULL);
    onr_node *n = tk_node("Reshape");
    const int64_t two[] = {-1, -1}, cnt[] = {4, 2}, neg[] = {-2, 3}, far[] = {2, 3, 0};
    const int64_t *bad[] = {two, cnt, neg, far};
    const char *msg[] = {"more than one -1", "[2,3]", "invalid dim -2", "copies dim 2"};
    int lens[] = {2, 2, 2, 3};
    for (int i = 0; i < 4; i++) {
        onr_tensor *in[] = {x, i64v(lens[i], bad[i])};
        expect_fail(n, 13, 2, in, 1, ONR_E_MODEL, msg[i]);
        onr_tensor_free(in[1]);
    }
    /* unknown shape values: the shape fn defers instead of failing */
    int64_t two_d = 2;
    onr_tensor u = unknown_i64(1, &two_d);
    onr_tensor *in[] = {x, &u};
    assert_int_equal(shape_only(n, 13, 2, in), ONR_SHAPE_DEFER);
    /* an int32 shape is not allowed */
    int32_t s32[] = {6};
    int64_t one = 1;
    onr_tensor *in2[] = {x, tk_i32(1, &one, s32)};
    expect_fail(n, 13, 2, in2, 1, ONR_E_UNSUPPORTED, "int32");
    onr_tensor_free(in2[1]);
    tk_node_free(n);
    onr_tensor_free(x);
}

/* ---- Flatten, Squeeze, Unsqueeze, Identity, Dropout -------------------------- */

static void test_flatten(void **state)
{
    (void)state;
    int64_t d[] = {2, 3, 4, 5};
    onr_tensor *x = tk_f32(4, d, NULL);
    const struct {
        int64_t axis;
        int64_t opset;
        int64_t e0, e1;
    } cases[] = {{0, 9, 1, 120}, {1, 9, 2, 60}, {4, 9, 120, 1}, {-1, 11, 24, 5}, {-4, 13, 1, 120}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        onr_node *n = tk_node("Flatten");
        tk_attr_int(n, "axis", cases[i].axis);
        onr_tensor *in[] = {x};
        onr_tensor *y = run1(n, cases[i].opset, 1, in);
        int64_t e[] = {cases[i].e0, cases[i].e1};
        tk_assert_shape(y, 2, e);
        onr_tensor_free(y);
        tk_node_free(n);
    }
    onr_node *n = tk_node("Flatten"); /* default axis 1 */
    onr_tensor *in[] = {x};
    onr_tensor *y = run1(n, 13, 1, in);
    int64_t e[] = {2, 60};
    tk_assert_shape(y, 2, e);
    onr_tensor_free(y);
    tk_attr_int(n, "axis", 5);
    expect_fail(n, 13, 1, in, 1, ONR_E_MODEL, "axis 5");
    tk_node_free(n);
    onr_tensor_free(x);
}

static void test_squeeze_unsqueeze(void **state)
{
    (void)state;
    int64_t d[] = {1, 3, 1, 2};
    onr_tensor *x = iota_f32(4, d);
    /* no axes: all 1-dims go */
    onr_node *n = tk_node("Squeeze");
    onr_tensor *in[] = {x};
    onr_tensor *y = run1(n, 13, 1, in);
    int64_t e[] = {3, 2};
    tk_assert_shape(y, 2, e);
    assert_ptr_equal(y->data, x->data);
    onr_tensor_free(y);
    tk_node_free(n);
    /* attribute form with a negative axis (opset 11) */
    n = tk_node("Squeeze");
    const int64_t ax[] = {-2};
    tk_attr_ints(n, "axes", 1, ax);
    y = run1(n, 11, 1, in);
    int64_t e2[] = {1, 3, 2};
    tk_assert_shape(y, 3, e2);
    onr_tensor_free(y);
    tk_node_free(n);
    /* input form (opset 13); squeezing a non-1 dim fails */
    n = tk_node("Squeeze");
    const int64_t ax0[] = {0}, ax1[] = {1};
    onr_tensor *in2[] = {x, i64v(1, ax0)};
    y = run1(n, 13, 2, in2);
    int64_t e3[] = {3, 1, 2};
    tk_assert_shape(y, 3, e3);
    onr_tensor_free(y);
    onr_tensor *in3[] = {x, i64v(1, ax1)};
    expect_fail(n, 13, 2, in3, 1, ONR_E_MODEL, "cannot squeeze axis 1 of shape [1,3,1,2]");
    tk_node_free(n);
    onr_tensor_free(in2[1]);
    onr_tensor_free(in3[1]);
    /* Unsqueeze: unsorted and negative axes index the output */
    n = tk_node("Unsqueeze");
    int64_t d2[] = {3, 4};
    onr_tensor *x2 = tk_f32(2, d2, NULL);
    const int64_t ua[] = {3, 0, -1};
    onr_tensor *in4[] = {x2, i64v(3, ua)};
    y = run1(n, 13, 2, in4);
    int64_t e4[] = {1, 3, 4, 1, 1};
    tk_assert_shape(y, 5, e4);
    onr_tensor_free(y);
    const int64_t dup[] = {1, -3};
    onr_tensor *in5[] = {x2, i64v(2, dup)};
    expect_fail(n, 13, 2, in5, 1, ONR_E_MODEL, "repeats axis 1");
    tk_node_free(n);
    n = tk_node("Unsqueeze");
    const int64_t ua1[] = {1};
    tk_attr_ints(n, "axes", 1, ua1);
    onr_tensor *in6[] = {x2};
    y = run1(n, 1, 1, in6);
    int64_t e6[] = {3, 1, 4};
    tk_assert_shape(y, 3, e6);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("Unsqueeze"); /* axes required */
    expect_fail(n, 13, 1, in6, 1, ONR_E_MODEL, "axes");
    tk_node_free(n);
    onr_tensor_free(in4[1]);
    onr_tensor_free(in5[1]);
    onr_tensor_free(x2);
    onr_tensor_free(x);
}

static void test_identity_dropout(void **state)
{
    (void)state;
    int64_t d[] = {2, 2};
    const float v[] = {1, -2, 3, -4};
    onr_tensor *x = tk_f32(2, d, v);
    onr_node *n = tk_node("Identity");
    onr_tensor *in[] = {x};
    onr_tensor *y = run1(n, 16, 1, in);
    assert_f32(y, v, 4);
    onr_tensor_free(y);
    tk_node_free(n);
    /* Dropout 13: output = input, mask all true */
    n = tk_node("Dropout");
    onr_tensor *out[2];
    run_n(n, 13, 1, in, 2, out, 1);
    assert_f32(out[0], v, 4);
    const uint8_t ones[] = {1, 1, 1, 1};
    assert_bytes(out[1], ONR_BOOL, ones, 4);
    tk_free_all(2, out);
    /* Dropout 7: the mask has the input's type */
    run_n(n, 7, 1, in, 2, out, 1);
    const float fones[] = {1, 1, 1, 1};
    assert_f32(out[1], fones, 4);
    tk_free_all(2, out);
    /* training mode: ratio 0 is the identity; another ratio drops elements
     * and scales the rest (random.c, statistics in test_ops_random.c) */
    float r0 = 0.f, r5 = 0.5f;
    uint8_t t = 1;
    onr_tensor *in2[] = {x, tk_f32(0, NULL, &r0), tk_bool(0, NULL, &t)};
    run_n(n, 12, 3, in2, 2, out, 1);
    assert_f32(out[0], v, 4);
    tk_free_all(2, out);
    onr_tensor *in3[] = {x, tk_f32(0, NULL, &r5), tk_bool(0, NULL, &t)};
    run_n(n, 12, 3, in3, 2, out, 1);
    for (int i = 0; i < 4; i++) {
        int keep = ((const uint8_t *)out[1]->data)[i];
        assert_true(((const float *)out[0]->data)[i] == (keep ? 2 * v[i] : 0.f));
    }
    tk_free_all(2, out);
    tk_free_all(2, &in2[1]);
    tk_free_all(2, &in3[1]);
    tk_node_free(n);
    onr_tensor_free(x);
}

/* ---- Shape, Size ------------------------------------------------------------ */

static void test_shape_size(void **state)
{
    (void)state;
    int64_t d[] = {3, 4, 5};
    onr_tensor *x = tk_f32(3, d, NULL);
    onr_node *n = tk_node("Shape");
    onr_tensor *in[] = {x};
    onr_tensor *y = run1(n, 13, 1, in);
    tk_assert_eq_i64(y, d, 3);
    onr_tensor_free(y);
    tk_node_free(n);
    const struct {
        int has_s, has_e;
        int64_t s, e, n;
        int64_t v[3];
    } cases[] = {{1, 0, 1, 0, 2, {4, 5}},      {0, 1, 0, -1, 2, {3, 4}}, {1, 1, -2, -1, 1, {4}},
                 {1, 1, -10, 10, 3, {3, 4, 5}}, {1, 1, 2, 1, 0, {0}}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        n = tk_node("Shape");
        if (cases[i].has_s) tk_attr_int(n, "start", cases[i].s);
        if (cases[i].has_e) tk_attr_int(n, "end", cases[i].e);
        y = run1(n, 15, 1, in);
        tk_assert_eq_i64(y, cases[i].v, cases[i].n);
        onr_tensor_free(y);
        tk_node_free(n);
    }
    /* Shape never reads data: works on a tensor known only by its shape */
    onr_tensor u = unknown_i64(3, d);
    n = tk_node("Shape");
    assert_int_equal(shape_only(n, 15, 1, (onr_tensor *[]){&u}), ONR_OK);
    tk_node_free(n);
    n = tk_node("Size");
    y = run1(n, 13, 1, in);
    assert_int_equal(y->rank, 0);
    assert_int_equal(((int64_t *)y->data)[0], 60);
    onr_tensor_free(y);
    tk_node_free(n);
    onr_tensor_free(x);
}

/* ---- Transpose and the strided-copy engine ----------------------------------- */

/* Naive transpose of a tensor of esz-byte elements. */
static void ref_transpose(const onr_tensor *x, const int *perm, void *dst)
{
    int r = x->rank;
    int64_t istr[ONR_MAX_RANK], od[ONR_MAX_RANK], idx[ONR_MAX_RANK] = {0};
    size_t esz = onr_dtype_size(x->dtype);
    onr_strides(x->dims, r, istr);
    for (int i = 0; i < r; i++) od[i] = x->dims[perm[i]];
    for (int64_t q = 0; q < x->numel; q++) {
        int64_t rem = q, src = 0;
        for (int i = r - 1; i >= 0; i--) {
            idx[i] = rem % od[i];
            rem /= od[i];
            src += idx[i] * istr[perm[i]];
        }
        memcpy((char *)dst + q * esz, (const char *)x->data + src * esz, esz);
    }
}

static onr_tensor *rand_typed(onr_dtype dt, int rank, const int64_t *dims, uint32_t seed)
{
    onr_tensor *t = tk_typed(dt, rank, dims, NULL);
    uint8_t *p = t->data;
    uint32_t s = seed * 2654435761u + 7;
    for (size_t i = 0; i < onr_tensor_nbytes(t); i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (uint8_t)(s >> 24);
    }
    return t;
}

static void check_transpose(onr_dtype dt, int rank, const int64_t *dims, const int *perm,
                            int nthreads)
{
    onr_tensor *x = rand_typed(dt, rank, dims, (uint32_t)(rank * 31 + perm[0]));
    onr_node *n = tk_node("Transpose");
    int64_t p64[ONR_MAX_RANK];
    for (int i = 0; i < rank; i++) p64[i] = perm[i];
    tk_attr_ints(n, "perm", rank, p64);
    onr_tensor *in[] = {x}, *out[1];
    run_n(n, 13, 1, in, 1, out, nthreads);
    void *ref = malloc(onr_tensor_nbytes(x) + 1);
    ref_transpose(x, perm, ref);
    assert_int_equal(out[0]->numel, x->numel);
    assert_memory_equal(out[0]->data, ref, onr_tensor_nbytes(x));
    free(ref);
    tk_free_all(1, out);
    tk_node_free(n);
    onr_tensor_free(x);
}

static void test_transpose(void **state)
{
    (void)state;
    /* default perm reverses */
    int64_t d[] = {2, 3};
    const float v[] = {1, 2, 3, 4, 5, 6}, e[] = {1, 4, 2, 5, 3, 6};
    onr_tensor *x = tk_f32(2, d, v);
    onr_node *n = tk_node("Transpose");
    onr_tensor *in[] = {x};
    onr_tensor *y = run1(n, 1, 1, in);
    int64_t ed[] = {3, 2};
    tk_assert_shape(y, 2, ed);
    assert_f32(y, e, 6);
    onr_tensor_free(y);
    tk_node_free(n);
    onr_tensor_free(x);
    /* every element size and every kind of inner loop against the reference */
    const onr_dtype types[] = {ONR_FLOAT, ONR_FLOAT16, ONR_INT64, ONR_BOOL};
    const int64_t d4[] = {2, 5, 3, 7};
    const int perms[][4] = {{0, 2, 1, 3}, {0, 1, 3, 2}, {3, 2, 1, 0}, {1, 3, 0, 2},
                            {2, 0, 3, 1}, {0, 1, 2, 3}};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t p = 0; p < sizeof perms / sizeof perms[0]; p++)
            check_transpose(types[t], 4, d4, perms[p], 1);
    /* big enough to go parallel and to use 32x32 tiles with ragged edges */
    const int64_t big[] = {4, 67, 12, 45}, big2[] = {300, 211};
    const int p_bshd[] = {0, 2, 1, 3}, p_last[] = {0, 3, 2, 1}, p2[] = {1, 0};
    for (int nt = 1; nt <= 4; nt += 3) {
        check_transpose(ONR_FLOAT, 4, big, p_bshd, nt);
        check_transpose(ONR_FLOAT, 4, big, p_last, nt);
        check_transpose(ONR_DOUBLE, 2, big2, p2, nt);
        check_transpose(ONR_UINT8, 2, big2, p2, nt);
    }
    /* 4-byte tiles in 4x4 register blocks (sc_tile4): NCHW <-> NHWC with
     * every residue of both tiled sides mod 4 and across the 16-wide
     * column blocks, float32 and int32 bits, 1 and 3 threads */
    const int64_t chans[] = {4, 5, 6, 7, 16, 17, 33}, hws[][2] = {{3, 5}, {4, 4}, {6, 11}, {1, 19}};
    const int p_nhwc[] = {0, 2, 3, 1}, p_nchw[] = {0, 3, 1, 2};
    for (size_t ci = 0; ci < sizeof chans / sizeof chans[0]; ci++)
        for (size_t hi = 0; hi < sizeof hws / sizeof hws[0]; hi++)
            for (int nt = 1; nt <= 3; nt += 2) {
                const int64_t nchw[] = {2, chans[ci], hws[hi][0], hws[hi][1]};
                const int64_t nhwc[] = {2, hws[hi][0], hws[hi][1], chans[ci]};
                check_transpose(ONR_FLOAT, 4, nchw, p_nhwc, nt);
                check_transpose(ONR_INT32, 4, nhwc, p_nchw, nt);
            }
    /* size-1 and zero-size dims */
    const int64_t d1[] = {1, 4, 1, 3}, d0[] = {2, 0, 3};
    const int p1[] = {3, 2, 1, 0}, p0[] = {2, 0, 1};
    check_transpose(ONR_INT32, 4, d1, p1, 1);
    const int64_t ones[] = {1, 1, 1, 1, 1, 1};
    const int p6[] = {0, 1, 4, 2, 5, 3};
    check_transpose(ONR_FLOAT, 6, ones, p6, 1); /* everything coalesces away */
    check_transpose(ONR_FLOAT, 0, NULL, p6, 1); /* scalar */
    check_transpose(ONR_INT32, 3, d0, p0, 1);
}

static void test_transpose_errors(void **state)
{
    (void)state;
    int64_t d[] = {2, 3, 4};
    onr_tensor *x = tk_f32(3, d, NULL);
    onr_tensor *in[] = {x};
    const int64_t dup[] = {0, 0, 1}, shortp[] = {1, 0}, range[] = {0, 1, 3};
    const int64_t *bad[] = {dup, shortp, range};
    int lens[] = {3, 2, 3};
    for (int i = 0; i < 3; i++) {
        onr_node *n = tk_node("Transpose");
        tk_attr_ints(n, "perm", lens[i], bad[i]);
        expect_fail(n, 13, 1, in, 1, ONR_E_MODEL, "not a permutation of the axes of [2,3,4]");
        tk_node_free(n);
    }
    onr_tensor_free(x);
}

static void test_strings(void **state)
{
    (void)state;
    int64_t d[] = {2, 2};
    const char *v[] = {"a", "bb", "ccc", ""};
    onr_tensor *x = mk_str(2, d, v);
    onr_node *n = tk_node("Transpose");
    onr_tensor *in[] = {x};
    onr_tensor *y = run1(n, 13, 1, in);
    const char *e[] = {"a", "ccc", "bb", ""};
    assert_str(y, e, 4);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("Concat");
    tk_attr_int(n, "axis", 1);
    onr_tensor *in2[] = {x, x};
    y = run1(n, 13, 2, in2);
    const char *e2[] = {"a", "bb", "a", "bb", "ccc", "", "ccc", ""};
    assert_str(y, e2, 8);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("Gather");
    const int64_t idx[] = {1, -1, 0};
    onr_tensor *in3[] = {x, i64v(3, idx)};
    y = run1(n, 13, 2, in3);
    const char *e3[] = {"ccc", "", "ccc", "", "a", "bb"};
    assert_str(y, e3, 6);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("Slice");
    const int64_t st[] = {1}, en[] = {-100}, ax[] = {1}, sp[] = {-1};
    onr_tensor *in4[] = {x, i64v(1, st), i64v(1, en), i64v(1, ax), i64v(1, sp)};
    y = run1(n, 13, 5, in4);
    const char *e4[] = {"bb", "a", "", "ccc"};
    assert_str(y, e4, 4);
    onr_tensor_free(y);
    tk_node_free(n);
    tk_free_all(4, &in4[1]);
    /* Pad with a string constant */
    n = tk_node("Pad");
    const int64_t pp[] = {0, 1, 0, 0};
    const char *cv[] = {"-"};
    onr_tensor *in5[] = {x, i64v(4, pp), mk_str(0, NULL, cv)};
    y = run1(n, 13, 3, in5);
    const char *e5[] = {"-", "a", "bb", "-", "ccc", ""};
    assert_str(y, e5, 6);
    onr_tensor_free(y);
    tk_node_free(n);
    tk_free_all(2, &in5[1]);
    onr_tensor_free(in3[1]);
    onr_tensor_free(x);
}

/* ---- Concat, Split ------------------------------------------------------------ */

static void test_concat(void **state)
{
    (void)state;
    int64_t da[] = {2, 2}, db[] = {2, 1}, dz[] = {2, 0};
    const int64_t a[] = {1, 2, 3, 4}, b[] = {5, 6};
    onr_tensor *xa = tk_i64(2, da, a), *xb = tk_i64(2, db, b), *xz = tk_i64(2, dz, NULL);
    onr_node *n = tk_node("Concat");
    tk_attr_int(n, "axis", -1);
    onr_tensor *in[] = {xa, xz, xb};
    onr_tensor *y = run1(n, 13, 3, in);
    const int64_t e[] = {1, 2, 5, 3, 4, 6};
    int64_t ed[] = {2, 3};
    tk_assert_shape(y, 2, ed);
    tk_assert_eq_i64(y, e, 6);
    onr_tensor_free(y);
    tk_node_free(n);
    /* axis 0 */
    n = tk_node("Concat");
    tk_attr_int(n, "axis", 0);
    onr_tensor *in2[] = {xa, xa};
    y = run1(n, 4, 2, in2);
    const int64_t e2[] = {1, 2, 3, 4, 1, 2, 3, 4};
    tk_assert_eq_i64(y, e2, 8);
    onr_tensor_free(y);
    /* dims must agree off the axis */
    onr_tensor *in3[] = {xa, xb};
    expect_fail(n, 13, 2, in3, 1, ONR_E_MODEL, "input 1 has shape [2,1], incompatible with input 0 [2,2]");
    tk_node_free(n);
    /* axis is required from opset 4; Concat-1 defaulted to 1 */
    n = tk_node("Concat");
    expect_fail(n, 13, 2, in2, 1, ONR_E_MODEL, "axis");
    y = run1(n, 1, 2, in2);
    int64_t e4[] = {2, 4};
    tk_assert_shape(y, 2, e4);
    onr_tensor_free(y);
    tk_node_free(n);
    /* types must agree */
    n = tk_node("Concat");
    tk_attr_int(n, "axis", 0);
    onr_tensor *xf = tk_f32(2, da, NULL);
    onr_tensor *in5[] = {xa, xf};
    expect_fail(n, 13, 2, in5, 1, ONR_E_MODEL, "float32");
    tk_node_free(n);
    onr_tensor_free(xf);
    /* large enough to go parallel: same result at 1 and 4 threads */
    int64_t dl[] = {64, 300, 5};
    onr_tensor *l1 = tk_rand_f32(3, dl, 1), *l2 = tk_rand_f32(3, dl, 2), *out1[1], *out4[1];
    n = tk_node("Concat");
    tk_attr_int(n, "axis", 1);
    onr_tensor *in6[] = {l1, l2};
    run_n(n, 13, 2, in6, 1, out1, 1);
    run_n(n, 13, 2, in6, 1, out4, 4);
    assert_memory_equal(out1[0]->data, out4[0]->data, onr_tensor_nbytes(out1[0]));
    assert_memory_equal(out1[0]->data, l1->data, 300 * 5 * 4);
    assert_memory_equal((float *)out1[0]->data + 1500, l2->data, 300 * 5 * 4);
    tk_free_all(1, out1);
    tk_free_all(1, out4);
    tk_node_free(n);
    onr_tensor_free(l1);
    onr_tensor_free(l2);
    onr_tensor_free(xa);
    onr_tensor_free(xb);
    onr_tensor_free(xz);
}

static void test_split(void **state)
{
    (void)state;
    int64_t d[] = {2, 6};
    onr_tensor *x = iota_f32(2, d);
    onr_tensor *out[4];
    /* opset 11: split attribute, negative axis */
    onr_node *n = tk_node("Split");
    tk_attr_int(n, "axis", -1);
    const int64_t sp[] = {1, 2, 3};
    tk_attr_ints(n, "split", 3, sp);
    onr_tensor *in[] = {x};
    run_n(n, 11, 1, in, 3, out, 1);
    const float e0[] = {0, 6}, e1[] = {1, 2, 7, 8}, e2[] = {3, 4, 5, 9, 10, 11};
    assert_f32(out[0], e0, 2);
    assert_f32(out[1], e1, 4);
    assert_f32(out[2], e2, 6);
    int64_t d2[] = {2, 3};
    tk_assert_shape(out[2], 2, d2);
    tk_free_all(3, out);
    tk_node_free(n);
    /* opset 13: split input; zero-size parts are fine */
    n = tk_node("Split");
    tk_attr_int(n, "axis", 1);
    const int64_t sp13[] = {0, 6, 0};
    onr_tensor *in13[] = {x, i64v(3, sp13)};
    run_n(n, 13, 2, in13, 3, out, 1);
    assert_int_equal(out[0]->numel, 0);
    assert_int_equal(out[2]->numel, 0);
    assert_memory_equal(out[1]->data, x->data, 48);
    tk_free_all(3, out);
    /* no split: equal parts, which must divide at opset 13 */
    run_n(n, 13, 1, in, 3, out, 1);
    const float q1[] = {2, 3, 8, 9};
    assert_f32(out[1], q1, 4);
    tk_free_all(3, out);
    expect_fail(n, 13, 1, in, 4, ONR_E_MODEL, "does not split evenly");
    /* sum must match */
    const int64_t bad[] = {1, 2, 2};
    onr_tensor *inb[] = {x, i64v(3, bad)};
    expect_fail(n, 13, 2, inb, 3, ONR_E_MODEL, "sum to 5");
    tk_node_free(n);
    /* opset 18: num_outputs, the last chunk smaller (6 = 2 + 2 + 2 ... 7 = 2+2+2+1) */
    int64_t d7[] = {7};
    onr_tensor *x7 = iota_f32(1, d7);
    n = tk_node("Split");
    tk_attr_int(n, "num_outputs", 4);
    onr_tensor *in18[] = {x7};
    run_n(n, 18, 1, in18, 4, out, 1);
    const float l3[] = {6};
    assert_int_equal(out[0]->numel, 2);
    assert_f32(out[3], l3, 1);
    tk_free_all(4, out);
    expect_fail(n, 18, 1, in18, 3, ONR_E_MODEL, "num_outputs is 4");
    tk_node_free(n);
    onr_tensor_free(x7);
    onr_tensor_free(in13[1]);
    onr_tensor_free(inb[1]);
    onr_tensor_free(x);
}

/* ---- Slice -------------------------------------------------------------------- */

static onr_tensor *slice13(onr_tensor *x, int k, const int64_t *s, const int64_t *e,
                           const int64_t *ax, const int64_t *st)
{
    onr_node *n = tk_node("Slice");
    onr_tensor *in[] = {x, i64v(k, s), i64v(k, e), ax ? i64v(k, ax) : NULL, st ? i64v(k, st) : NULL};
    onr_tensor *y = run1(n, 13, st ? 5 : ax ? 4 : 3, in);
    tk_free_all(4, &in[1]);
    tk_node_free(n);
    return y;
}

static void test_slice(void **state)
{
    (void)state;
    int64_t d[] = {3, 4};
    onr_tensor *x = iota_f32(2, d);
    /* plain ranges; starts/ends beyond the dims clamp */
    const int64_t s1[] = {1, -3}, e1[] = {1000, -1};
    onr_tensor *y = slice13(x, 2, s1, e1, NULL, NULL);
    const float r1[] = {5, 6, 9, 10};
    int64_t d1[] = {2, 2};
    tk_assert_shape(y, 2, d1);
    assert_f32(y, r1, 4);
    onr_tensor_free(y);
    /* negative steps with INT64_MIN / INT64_MAX ends, negative axes */
    const int64_t s2[] = {INT64_MAX, -1}, e2[] = {INT64_MIN, INT64_MIN}, a2[] = {-1, 0},
                  st2[] = {-2, -1};
    y = slice13(x, 2, s2, e2, a2, st2);
    const float r2[] = {11, 9, 7, 5, 3, 1};
    int64_t d2[] = {3, 2};
    tk_assert_shape(y, 2, d2);
    assert_f32(y, r2, 6);
    onr_tensor_free(y);
    /* step larger than the dim; start out of bounds gives an empty axis */
    const int64_t s3[] = {0, 5}, e3[] = {3, 10}, st3[] = {INT64_MAX, 1}, a3[] = {0, 1};
    y = slice13(x, 2, s3, e3, a3, st3);
    int64_t d3[] = {1, 0};
    tk_assert_shape(y, 2, d3);
    onr_tensor_free(y);
    /* end before start with a positive step: empty */
    const int64_t s4[] = {2}, e4[] = {1};
    y = slice13(x, 1, s4, e4, NULL, NULL);
    int64_t d4[] = {0, 4};
    tk_assert_shape(y, 2, d4);
    onr_tensor_free(y);
    /* opset 1-9: attributes */
    onr_node *n = tk_node("Slice");
    const int64_t as[] = {1}, ae[] = {3}, aa[] = {1};
    tk_attr_ints(n, "starts", 1, as);
    tk_attr_ints(n, "ends", 1, ae);
    tk_attr_ints(n, "axes", 1, aa);
    onr_tensor *in[] = {x};
    y = run1(n, 9, 1, in);
    const float r5[] = {1, 2, 5, 6, 9, 10};
    assert_f32(y, r5, 6);
    onr_tensor_free(y);
    tk_node_free(n);
    /* int32 parameters */
    n = tk_node("Slice");
    int64_t one = 1;
    int32_t s6 = -1, e6 = -5, st6 = -1;
    onr_tensor *in6[] = {x, tk_i32(1, &one, &s6), tk_i32(1, &one, &e6), NULL, tk_i32(1, &one, &st6)};
    y = run1(n, 11, 5, in6);
    const float r6[] = {8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3};
    assert_f32(y, r6, 12);
    onr_tensor_free(y);
    tk_free_all(4, &in6[1]);
    tk_node_free(n);
    onr_tensor_free(x);
}

static void test_slice_errors(void **state)
{
    (void)state;
    int64_t d[] = {3, 4};
    onr_tensor *x = tk_f32(2, d, NULL);
    onr_node *n = tk_node("Slice");
    const int64_t z[] = {0, 0}, e[] = {1, 1}, rep[] = {1, -1}, st0[] = {1, 0}, ax3[] = {0, 2};
    onr_tensor *in1[] = {x, i64v(2, z), i64v(2, e), i64v(2, rep)};
    expect_fail(n, 13, 4, in1, 1, ONR_E_MODEL, "repeats axis 1");
    onr_tensor *in2[] = {x, i64v(2, z), i64v(2, e), NULL, i64v(2, st0)};
    expect_fail(n, 13, 5, in2, 1, ONR_E_MODEL, "step of axis 1 is 0");
    onr_tensor *in3[] = {x, i64v(2, z), i64v(2, e), i64v(2, ax3)};
    expect_fail(n, 13, 4, in3, 1, ONR_E_MODEL, "out of range for rank 2");
    onr_tensor *in4[] = {x, i64v(2, z), i64v(1, e)};
    expect_fail(n, 13, 3, in4, 1, ONR_E_MODEL, "differ in length");
    /* unknown starts: defer */
    int64_t two = 2;
    onr_tensor u = unknown_i64(1, &two);
    onr_tensor *in5[] = {x, &u, in4[1]};
    assert_int_equal(shape_only(n, 13, 3, in5), ONR_SHAPE_DEFER);
    tk_free_all(3, &in1[1]);
    tk_free_all(1, &in2[1]);
    tk_free_all(1, &in2[2]);
    tk_free_all(1, &in2[4]);
    tk_free_all(3, &in3[1]);
    tk_free_all(2, &in4[1]);
    tk_node_free(n);
    onr_tensor_free(x);
}

/* ---- Gather family ---------------------------------------------------------- */

static void test_gather(void **state)
{
    (void)state;
    int64_t d[] = {3, 2};
    const float v[] = {1, 2, 3, 4, 5, 6};
    onr_tensor *x = tk_f32(2, d, v);
    /* axis 0 with 2-D indices, negative index */
    onr_node *n = tk_node("Gather");
    int64_t di[] = {2, 2};
    const int64_t idx[] = {0, 1, -1, 1};
    onr_tensor *in[] = {x, tk_i64(2, di, idx)};
    onr_tensor *y = run1(n, 13, 2, in);
    int64_t ed[] = {2, 2, 2};
    tk_assert_shape(y, 3, ed);
    const float e[] = {1, 2, 3, 4, 5, 6, 3, 4};
    assert_f32(y, e, 8);
    onr_tensor_free(y);
    tk_node_free(n);
    /* axis 1 (negative), int32 scalar index: the axis disappears */
    n = tk_node("Gather");
    tk_attr_int(n, "axis", -1);
    int32_t one = 1;
    onr_tensor *in2[] = {x, tk_i32(0, NULL, &one)};
    y = run1(n, 11, 2, in2);
    int64_t ed2[] = {3};
    tk_assert_shape(y, 1, ed2);
    const float e2[] = {2, 4, 6};
    assert_f32(y, e2, 3);
    onr_tensor_free(y);
    /* out of range: error at run time naming the index */
    int32_t bad = 2;
    onr_tensor *in3[] = {x, tk_i32(0, NULL, &bad)};
    expect_fail(n, 13, 2, in3, 1, ONR_E_MODEL, "index 2");
    int32_t bad2 = -3;
    onr_tensor *in4[] = {x, tk_i32(0, NULL, &bad2)};
    expect_fail(n, 13, 2, in4, 1, ONR_E_MODEL, "index -3");
    tk_node_free(n);
    /* fp16 embedding rows, parallel path identical to serial */
    int64_t de[] = {50, 64}, dix[] = {4, 300};
    onr_tensor *emb = rand_typed(ONR_FLOAT16, 2, de, 3);
    onr_tensor *ind = tk_i64(2, dix, NULL);
    for (int64_t i = 0; i < ind->numel; i++) ((int64_t *)ind->data)[i] = (i * 7) % 50 - 25;
    n = tk_node("Gather");
    onr_tensor *in5[] = {emb, ind}, *o1[1], *o4[1];
    run_n(n, 13, 2, in5, 1, o1, 1);
    run_n(n, 13, 2, in5, 1, o4, 4);
    assert_memory_equal(o1[0]->data, o4[0]->data, onr_tensor_nbytes(o1[0]));
    int64_t row = ((int64_t *)ind->data)[5];
    row = row < 0 ? row + 50 : row;
    assert_memory_equal((uint16_t *)o1[0]->data + 5 * 64, (uint16_t *)emb->data + row * 64, 128);
    tk_free_all(1, o1);
    tk_free_all(1, o4);
    tk_node_free(n);
    onr_tensor_free(emb);
    onr_tensor_free(ind);
    onr_tensor_free(in[1]);
    onr_tensor_free(in2[1]);
    onr_tensor_free(in3[1]);
    onr_tensor_free(in4[1]);
    onr_tensor_free(x);
}

static void test_gather_elements_nd(void **state)
{
    (void)state;
    int64_t d[] = {2, 2};
    const float v[] = {1, 2, 3, 4};
    onr_tensor *x = tk_f32(2, d, v);
    onr_node *n = tk_node("GatherElements");
    tk_attr_int(n, "axis", 1);
    const int64_t idx[] = {0, 0, 1, -2};
    onr_tensor *in[] = {x, tk_i64(2, d, idx)};
    onr_tensor *y = run1(n, 13, 2, in);
    const float e[] = {1, 1, 4, 3};
    assert_f32(y, e, 4);
    onr_tensor_free(y);
    const int64_t bad[] = {0, 2, 0, 0};
    onr_tensor *in2[] = {x, tk_i64(2, d, bad)};
    expect_fail(n, 13, 2, in2, 1, ONR_E_MODEL, "index 2");
    int64_t dbig[] = {3, 1};
    onr_tensor *in3[] = {x, tk_i64(2, dbig, NULL)};
    tk_node_free(n);
    n = tk_node("GatherElements"); /* axis 0: indices dim 1 may not exceed data */
    tk_attr_int(n, "axis", 1);
    expect_fail(n, 13, 2, in3, 1, ONR_E_MODEL, "exceed data");
    tk_node_free(n);
    /* GatherND, batch_dims 0 and 1 */
    n = tk_node("GatherND");
    const int64_t nd[] = {1, 0, 0, 1};
    onr_tensor *in4[] = {x, tk_i64(2, d, nd)};
    y = run1(n, 11, 2, in4);
    const float e4[] = {3, 2};
    assert_f32(y, e4, 2);
    onr_tensor_free(y);
    int64_t d1[] = {2, 1};
    const int64_t rows[] = {1, -2};
    onr_tensor *in5[] = {x, tk_i64(2, d1, rows)};
    y = run1(n, 11, 2, in5);
    const float e5[] = {3, 4, 1, 2};
    int64_t ed5[] = {2, 2};
    tk_assert_shape(y, 2, ed5);
    assert_f32(y, e5, 4);
    onr_tensor_free(y);
    tk_attr_int(n, "batch_dims", 1);
    const int64_t bi[] = {1, 0};
    onr_tensor *in6[] = {x, tk_i64(2, d1, bi)};
    y = run1(n, 12, 2, in6);
    const float e6[] = {2, 3};
    int64_t ed6[] = {2};
    tk_assert_shape(y, 1, ed6);
    assert_f32(y, e6, 2);
    onr_tensor_free(y);
    const int64_t bbad[] = {1, 2};
    onr_tensor *in7[] = {x, tk_i64(2, d1, bbad)};
    expect_fail(n, 12, 2, in7, 1, ONR_E_MODEL, "index 2 is out of range for axis 1");
    tk_node_free(n);
    onr_tensor *ins[] = {in[1], in2[1], in3[1], in4[1], in5[1], in6[1], in7[1]};
    tk_free_all(7, ins);
    onr_tensor_free(x);
}

static void test_scatter(void **state)
{
    (void)state;
    int64_t d[] = {4};
    const float v[] = {1, 2, 3, 4};
    onr_tensor *x = tk_f32(1, d, v);
    int64_t di[] = {3, 1};
    const int64_t idx[] = {1, -1, 1};
    const float u[] = {10, 20, 30};
    int64_t du[] = {3};
    onr_tensor *ind = tk_i64(2, di, idx), *up = tk_f32(1, du, u);
    onr_tensor *in[] = {x, ind, up};
    /* ScatterND: none (last write wins), add, mul, max */
    const char *reds[] = {"none", "add", "mul", "max", "min"};
    const float ex[][4] = {{1, 30, 3, 20}, {1, 42, 3, 24}, {1, 600, 3, 80}, {1, 30, 3, 20},
                           {1, 2, 3, 4}};
    for (int r = 0; r < 5; r++) {
        onr_node *n = tk_node("ScatterND");
        tk_attr_string(n, "reduction", reds[r]);
        onr_tensor *y = run1(n, 18, 3, in);
        assert_f32(y, ex[r], 4);
        onr_tensor_free(y);
        if (r >= 3) expect_fail(n, 16, 3, in, 1, ONR_E_MODEL, "not valid at opset 16");
        tk_node_free(n);
    }
    /* slices: k < rank */
    int64_t d2[] = {2, 2}, di2[] = {1, 1}, du2[] = {1, 2};
    const float v2[] = {1, 2, 3, 4}, u2[] = {9, 8};
    const int64_t i2[] = {1};
    onr_tensor *in2[] = {tk_f32(2, d2, v2), tk_i64(2, di2, i2), tk_f32(2, du2, u2)};
    onr_node *n = tk_node("ScatterND");
    onr_tensor *y = run1(n, 11, 3, in2);
    const float e2[] = {1, 2, 9, 8};
    assert_f32(y, e2, 4);
    onr_tensor_free(y);
    /* updates of the wrong shape; index out of range */
    onr_tensor *in3[] = {in2[0], in2[1], up};
    expect_fail(n, 11, 3, in3, 1, ONR_E_MODEL, "do not fit");
    const int64_t i4[] = {2};
    onr_tensor *in4[] = {in2[0], tk_i64(2, di2, i4), in2[2]};
    expect_fail(n, 11, 3, in4, 1, ONR_E_MODEL, "index 2");
    tk_node_free(n);
    /* ScatterElements with axis, negative index, add reduction; Scatter-9 */
    int64_t d5[] = {2, 3}, di5[] = {2, 1};
    const float v5[] = {0, 0, 0, 0, 0, 0}, u5[] = {1, 2};
    const int64_t i5[] = {2, -3};
    onr_tensor *in5[] = {tk_f32(2, d5, v5), tk_i64(2, di5, i5), tk_f32(2, di5, u5)};
    n = tk_node("ScatterElements");
    tk_attr_int(n, "axis", 1);
    y = run1(n, 13, 3, in5);
    const float e5[] = {0, 0, 1, 2, 0, 0};
    assert_f32(y, e5, 6);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("Scatter");
    tk_attr_int(n, "axis", -1);
    y = run1(n, 9, 3, in5);
    assert_f32(y, e5, 6);
    onr_tensor_free(y);
    tk_node_free(n);
    const int64_t dupi[] = {1, 1};
    int64_t d12[] = {1, 2};
    const float u12[] = {5, 7};
    onr_tensor *in6[] = {in5[0], tk_i64(2, d12, dupi), tk_f32(2, d12, u12)};
    n = tk_node("ScatterElements");
    tk_attr_int(n, "axis", 1);
    tk_attr_string(n, "reduction", "add");
    y = run1(n, 16, 3, in6);
    const float e6[] = {0, 12, 0, 0, 0, 0};
    assert_f32(y, e6, 6);
    onr_tensor_free(y);
    /* bfloat16 data: add in float, round on store */
    tk_node_free(n);
    int64_t d2b[] = {2};
    const uint16_t vb[] = {0x3f80, 0x4000}, ub[] = {0x3f80, 0x3f80}; /* [1, 2], [1, 1] */
    const int64_t ib[] = {1, 1};
    onr_tensor *inb[] = {tk_typed(ONR_BFLOAT16, 1, d2b, vb), tk_i64(1, d2b, ib),
                         tk_typed(ONR_BFLOAT16, 1, d2b, ub)};
    n = tk_node("ScatterElements");
    tk_attr_string(n, "reduction", "add");
    y = run1(n, 16, 3, inb);
    const uint16_t eb[] = {0x3f80, 0x4080}; /* [1, 4] */
    assert_bytes(y, ONR_BFLOAT16, eb, 2);
    onr_tensor_free(y);
    tk_free_all(3, inb);
    /* int64 data with mul */
    tk_node_free(n);
    int64_t d7[] = {3};
    const int64_t v7[] = {2, 3, 4}, i7[] = {0, 0, 2}, u7[] = {5, 7, -1};
    onr_tensor *in7[] = {tk_i64(1, d7, v7), tk_i64(1, d7, i7), tk_i64(1, d7, u7)};
    n = tk_node("ScatterElements");
    tk_attr_string(n, "reduction", "mul");
    y = run1(n, 18, 3, in7);
    const int64_t e7[] = {70, 3, -4};
    tk_assert_eq_i64(y, e7, 3);
    onr_tensor_free(y);
    tk_node_free(n);
    tk_free_all(3, in7);
    tk_free_all(2, &in6[1]);
    tk_free_all(3, in5);
    onr_tensor_free(in4[1]);
    tk_free_all(3, in2);
    onr_tensor_free(ind);
    onr_tensor_free(up);
    onr_tensor_free(x);
}

/* ---- Expand, Tile -------------------------------------------------------------- */

static void test_expand_tile(void **state)
{
    (void)state;
    int64_t d[] = {3, 1};
    const float v[] = {1, 2, 3};
    onr_tensor *x = tk_f32(2, d, v);
    /* bidirectional: [3,1] with [2,1,2] -> [2,3,2] */
    const int64_t s[] = {2, 1, 2};
    onr_node *n = tk_node("Expand");
    onr_tensor *in[] = {x, i64v(3, s)};
    onr_tensor *y = run1(n, 13, 2, in);
    int64_t ed[] = {2, 3, 2};
    tk_assert_shape(y, 3, ed);
    const float e[] = {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3};
    assert_f32(y, e, 12);
    onr_tensor_free(y);
    const int64_t bad[] = {2, 2};
    onr_tensor *in2[] = {x, i64v(2, bad)};
    expect_fail(n, 13, 2, in2, 1, ONR_E_MODEL, "cannot expand [3,1] to shape [2,2]");
    tk_node_free(n);
    /* Tile */
    n = tk_node("Tile");
    const int64_t r[] = {2, 3};
    onr_tensor *in3[] = {x, i64v(2, r)};
    y = run1(n, 13, 2, in3);
    int64_t et[] = {6, 3};
    tk_assert_shape(y, 2, et);
    const float e3[] = {1, 1, 1, 2, 2, 2, 3, 3, 3, 1, 1, 1, 2, 2, 2, 3, 3, 3};
    assert_f32(y, e3, 18);
    onr_tensor_free(y);
    const int64_t z[] = {0, 1}, neg[] = {1, -1}, shortr[] = {2};
    onr_tensor *in4[] = {x, i64v(2, z)};
    y = run1(n, 6, 2, in4);
    int64_t ez[] = {0, 1};
    tk_assert_shape(y, 2, ez);
    onr_tensor_free(y);
    onr_tensor *in5[] = {x, i64v(2, neg)};
    expect_fail(n, 13, 2, in5, 1, ONR_E_MODEL, "negative");
    onr_tensor *in6[] = {x, i64v(1, shortr)};
    expect_fail(n, 13, 2, in6, 1, ONR_E_MODEL, "1 values for rank 2");
    /* Tile-1: tiles and axis inputs */
    onr_tensor *in7[] = {x, i64s(2), i64s(-1)};
    y = run1(n, 1, 3, in7);
    const float e7[] = {1, 1, 2, 2, 3, 3};
    int64_t ed7[] = {3, 2};
    tk_assert_shape(y, 2, ed7);
    assert_f32(y, e7, 6);
    onr_tensor_free(y);
    tk_node_free(n);
    /* int64 data, a bigger tile at 4 threads matches 1 thread */
    int64_t dl[] = {7, 33};
    onr_tensor *xl = rand_typed(ONR_INT64, 2, dl, 9);
    const int64_t rl[] = {40, 5};
    onr_tensor *in8[] = {xl, i64v(2, rl)}, *o1[1], *o4[1];
    n = tk_node("Tile");
    run_n(n, 13, 2, in8, 1, o1, 1);
    run_n(n, 13, 2, in8, 1, o4, 4);
    assert_memory_equal(o1[0]->data, o4[0]->data, onr_tensor_nbytes(o1[0]));
    /* element (i, j) = x[i % 7, j % 33] */
    const int64_t *px = xl->data, *py = o1[0]->data;
    for (int64_t i = 0; i < 280; i += 13)
        for (int64_t j = 0; j < 165; j += 7) assert_int_equal(py[i * 165 + j], px[(i % 7) * 33 + j % 33]);
    tk_free_all(1, o1);
    tk_free_all(1, o4);
    tk_node_free(n);
    onr_tensor *frees[] = {in[1], in2[1], in3[1], in4[1], in5[1], in6[1], in7[1], in7[2], in8[1], xl, x};
    tk_free_all(N_OF(frees), frees);
}

/* ---- Range, ConstantOfShape, Constant ---------------------------------------- */

static void test_range(void **state)
{
    (void)state;
    onr_node *n = tk_node("Range");
    float fs = 1, fl = 5, fd = 1.5f;
    onr_tensor *in[] = {tk_f32(0, NULL, &fs), tk_f32(0, NULL, &fl), tk_f32(0, NULL, &fd)};
    onr_tensor *y = run1(n, 11, 3, in);
    const float e[] = {1, 2.5f, 4};
    assert_f32(y, e, 3);
    onr_tensor_free(y);
    tk_free_all(3, in);
    int32_t is = 10, il = 4, id = -3;
    onr_tensor *in2[] = {tk_i32(0, NULL, &is), tk_i32(0, NULL, &il), tk_i32(0, NULL, &id)};
    y = run1(n, 11, 3, in2);
    const int32_t e2[] = {10, 7};
    assert_bytes(y, ONR_INT32, e2, 2);
    onr_tensor_free(y);
    tk_free_all(3, in2);
    /* int64 near the limits: exact count, no overflow */
    onr_tensor *in3[] = {i64s(INT64_MAX - 10), i64s(INT64_MAX), i64s(4)};
    y = run1(n, 11, 3, in3);
    const int64_t e3[] = {INT64_MAX - 10, INT64_MAX - 6, INT64_MAX - 2};
    tk_assert_eq_i64(y, e3, 3);
    onr_tensor_free(y);
    tk_free_all(3, in3);
    /* empty, delta 0, absurd sizes */
    onr_tensor *in4[] = {i64s(5), i64s(1), i64s(1)};
    y = run1(n, 11, 3, in4);
    assert_int_equal(y->numel, 0);
    onr_tensor_free(y);
    tk_free_all(3, in4);
    onr_tensor *in5[] = {i64s(0), i64s(5), i64s(0)};
    expect_fail(n, 11, 3, in5, 1, ONR_E_MODEL, "delta is 0");
    tk_free_all(3, in5);
    onr_tensor *in6[] = {i64s(INT64_MIN), i64s(INT64_MAX), i64s(1)};
    expect_fail(n, 11, 3, in6, 1, ONR_E_NOMEM, NULL);
    tk_free_all(3, in6);
    float inf = 1e30f, small = 1e-30f, z = 0;
    onr_tensor *in7[] = {tk_f32(0, NULL, &z), tk_f32(0, NULL, &inf), tk_f32(0, NULL, &small)};
    expect_fail(n, 11, 3, in7, 1, ONR_E_MODEL, "no valid length");
    tk_free_all(3, in7);
    /* mixed types */
    onr_tensor *in8[] = {i64s(0), tk_f32(0, NULL, &fl), i64s(1)};
    expect_fail(n, 11, 3, in8, 1, ONR_E_MODEL, "input 1 is float32");
    tk_free_all(3, in8);
    tk_node_free(n);
}

static void test_constants(void **state)
{
    (void)state;
    /* ConstantOfShape: default float 0; int32 value; empty shape = scalar */
    onr_node *n = tk_node("ConstantOfShape");
    const int64_t s[] = {2, 3};
    onr_tensor *in[] = {i64v(2, s)};
    onr_tensor *y = run1(n, 9, 1, in);
    const float z[6] = {0};
    assert_f32(y, z, 6);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("ConstantOfShape");
    int32_t seven = 7;
    int64_t one = 1;
    tk_attr_tensor(n, "value", tk_i32(1, &one, &seven));
    y = run1(n, 9, 1, in);
    const int32_t e7[] = {7, 7, 7, 7, 7, 7};
    assert_bytes(y, ONR_INT32, e7, 6);
    onr_tensor_free(y);
    onr_tensor *in2[] = {tk_i64(1, (int64_t[]){0}, NULL)};
    y = run1(n, 9, 1, in2);
    assert_int_equal(y->rank, 0);
    assert_int_equal(((int32_t *)y->data)[0], 7);
    onr_tensor_free(y);
    const int64_t neg[] = {2, -1};
    onr_tensor *in3[] = {i64v(2, neg)};
    expect_fail(n, 9, 1, in3, 1, ONR_E_MODEL, "negative");
    tk_node_free(n);
    tk_free_all(1, in);
    tk_free_all(1, in2);
    tk_free_all(1, in3);
    /* Constant: each attribute form */
    n = tk_node("Constant");
    tk_attr_float(n, "value_float", 2.5f);
    y = run1(n, 13, 0, NULL);
    assert_int_equal(y->rank, 0);
    assert_true(((float *)y->data)[0] == 2.5f);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("Constant");
    const int64_t iv[] = {4, -5, 6};
    tk_attr_ints(n, "value_ints", 3, iv);
    y = run1(n, 13, 0, NULL);
    tk_assert_eq_i64(y, iv, 3);
    onr_tensor_free(y);
    tk_attr_int(n, "value_int", 1); /* two value attributes: invalid */
    expect_fail(n, 13, 0, NULL, 1, ONR_E_MODEL, "exactly one");
    tk_node_free(n);
    n = tk_node("Constant");
    tk_attr_string(n, "value_string", "hello");
    y = run1(n, 12, 0, NULL);
    const char *hs[] = {"hello"};
    assert_str(y, hs, 1);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("Constant");
    int64_t d[] = {2};
    const uint16_t h[] = {0x3c00, 0xc000}; /* fp16 1, -2 */
    tk_attr_tensor(n, "value", tk_typed(ONR_FLOAT16, 1, d, h));
    y = run1(n, 9, 0, NULL);
    assert_bytes(y, ONR_FLOAT16, h, 2);
    onr_tensor_free(y);
    tk_node_free(n);
}

/* ---- Trilu, Pad ------------------------------------------------------------------ */

static void test_trilu(void **state)
{
    (void)state;
    int64_t d[] = {2, 3, 4};
    onr_tensor *x = tk_i64(3, d, NULL);
    for (int64_t i = 0; i < 24; i++) ((int64_t *)x->data)[i] = i + 1;
    struct {
        int upper;
        int64_t k;
        int64_t row0[4], row2[4];
    } cases[] = {{1, 0, {1, 2, 3, 4}, {0, 0, 11, 12}},  {1, 1, {0, 2, 3, 4}, {0, 0, 0, 12}},
                 {1, -1, {1, 2, 3, 4}, {0, 10, 11, 12}}, {0, 0, {1, 0, 0, 0}, {9, 10, 11, 0}},
                 {0, -2, {0, 0, 0, 0}, {9, 0, 0, 0}},   {0, 100, {1, 2, 3, 4}, {9, 10, 11, 12}},
                 {1, -100, {1, 2, 3, 4}, {9, 10, 11, 12}}, {1, 100, {0, 0, 0, 0}, {0, 0, 0, 0}}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        onr_node *n = tk_node("Trilu");
        tk_attr_int(n, "upper", cases[c].upper);
        onr_tensor *in[] = {x, i64s(cases[c].k)};
        onr_tensor *y = run1(n, 14, 2, in);
        const int64_t *p = y->data;
        for (int b = 0; b < 2; b++)
            for (int j = 0; j < 4; j++) {
                int64_t off = b * 12;
                int64_t e0 = cases[c].row0[j] ? cases[c].row0[j] + off : 0;
                int64_t e2 = cases[c].row2[j] ? cases[c].row2[j] + off : 0;
                assert_int_equal(p[off + j], e0);
                assert_int_equal(p[off + 8 + j], e2);
            }
        onr_tensor_free(y);
        onr_tensor_free(in[1]);
        tk_node_free(n);
    }
    onr_node *n = tk_node("Trilu");
    int64_t d1[] = {4};
    onr_tensor *v = tk_f32(1, d1, NULL);
    onr_tensor *in[] = {v};
    expect_fail(n, 14, 1, in, 1, ONR_E_MODEL, "rank >= 2");
    tk_node_free(n);
    onr_tensor_free(v);
    onr_tensor_free(x);
}

static void test_pad(void **state)
{
    (void)state;
    int64_t d[] = {2, 3};
    const float v[] = {1, 2, 3, 4, 5, 6};
    onr_tensor *x = tk_f32(2, d, v);
    /* opset 2: attributes, constant value */
    onr_node *n = tk_node("Pad");
    const int64_t p[] = {1, 0, 0, 2};
    tk_attr_ints(n, "pads", 4, p);
    tk_attr_float(n, "value", 9);
    onr_tensor *in[] = {x};
    onr_tensor *y = run1(n, 2, 1, in);
    int64_t ed[] = {3, 5};
    tk_assert_shape(y, 2, ed);
    const float e[] = {9, 9, 9, 9, 9, 1, 2, 3, 9, 9, 4, 5, 6, 9, 9};
    assert_f32(y, e, 15);
    onr_tensor_free(y);
    tk_node_free(n);
    /* opset 11: reflect / edge on the last axis, inputs */
    const int64_t p2[] = {0, 2, 0, 2};
    const char *modes[] = {"reflect", "edge", "wrap", "constant"};
    const float ex[][14] = {{3, 2, 1, 2, 3, 2, 1, 6, 5, 4, 5, 6, 5, 4},
                            {1, 1, 1, 2, 3, 3, 3, 4, 4, 4, 5, 6, 6, 6},
                            {2, 3, 1, 2, 3, 1, 2, 5, 6, 4, 5, 6, 4, 5},
                            {7, 7, 1, 2, 3, 7, 7, 7, 7, 4, 5, 6, 7, 7}};
    float seven = 7;
    for (int m = 0; m < 4; m++) {
        n = tk_node("Pad");
        tk_attr_string(n, "mode", modes[m]);
        onr_tensor *in2[] = {x, i64v(4, p2), tk_f32(0, NULL, &seven)};
        y = run1(n, 19, 3, in2);
        int64_t ed2[] = {2, 7};
        tk_assert_shape(y, 2, ed2);
        assert_f32(y, ex[m], 14);
        onr_tensor_free(y);
        if (m == 2) expect_fail(n, 18, 3, in2, 1, ONR_E_MODEL, "'wrap' is not valid at opset 18");
        tk_free_all(2, &in2[1]);
        tk_node_free(n);
    }
    /* reflect on the outer axis with a negative pad (crop) on the inner one */
    n = tk_node("Pad");
    tk_attr_string(n, "mode", "reflect");
    const int64_t p3[] = {1, -1, 0, 0};
    onr_tensor *in3[] = {x, i64v(4, p3)};
    y = run1(n, 13, 2, in3);
    const float e3[] = {5, 6, 2, 3, 5, 6};
    int64_t ed3[] = {3, 2};
    tk_assert_shape(y, 2, ed3);
    assert_f32(y, e3, 6);
    onr_tensor_free(y);
    tk_node_free(n);
    /* opset 18 axes input (negative) */
    n = tk_node("Pad");
    const int64_t p4[] = {1, 1}, ax[] = {-1};
    onr_tensor *in4[] = {x, i64v(2, p4), NULL, i64v(1, ax)};
    y = run1(n, 18, 4, in4);
    const float e4[] = {0, 1, 2, 3, 0, 0, 4, 5, 6, 0};
    assert_f32(y, e4, 10);
    onr_tensor_free(y);
    /* errors: pads length, mode, cropping more than the dim */
    onr_tensor *in5[] = {x, i64v(2, p4)};
    expect_fail(n, 13, 2, in5, 1, ONR_E_MODEL, "pads has 2 values for 2 axes");
    const int64_t p6[] = {0, -4, 0, 0};
    onr_tensor *in6[] = {x, i64v(4, p6)};
    expect_fail(n, 13, 2, in6, 1, ONR_E_MODEL, "invalid for dim 1 of [2,3]");
    tk_node_free(n);
    n = tk_node("Pad");
    tk_attr_string(n, "mode", "mirror");
    expect_fail(n, 13, 2, in3, 1, ONR_E_MODEL, "mirror");
    tk_node_free(n);
    /* int64 and bool pad, big rows at 4 threads */
    int64_t dl[] = {40, 1000};
    onr_tensor *xl = rand_typed(ONR_BOOL, 2, dl, 4);
    const int64_t pl[] = {2, 3, 1, 5};
    onr_tensor *in7[] = {xl, i64v(4, pl)}, *o1[1], *o4[1];
    n = tk_node("Pad");
    tk_attr_string(n, "mode", "edge");
    run_n(n, 13, 2, in7, 1, o1, 1);
    run_n(n, 13, 2, in7, 1, o4, 4);
    assert_memory_equal(o1[0]->data, o4[0]->data, onr_tensor_nbytes(o1[0]));
    const uint8_t *pb = o1[0]->data, *px = xl->data;
    assert_int_equal(pb[0], px[0]);                       /* corner = edge */
    assert_int_equal(pb[5 * 1008 + 3 + 10], px[3 * 1000 + 10]);
    assert_int_equal(pb[42 * 1008 + 1007], px[39 * 1000 + 999]);
    tk_free_all(1, o1);
    tk_free_all(1, o4);
    tk_node_free(n);
    onr_tensor *frees[] = {in3[1], in4[1], in4[3], in5[1], in6[1], in7[1], xl, x};
    tk_free_all(N_OF(frees), frees);
}

/* ---- NonZero, OneHot, CumSum, ReverseSequence --------------------------------- */

static void test_nonzero(void **state)
{
    (void)state;
    int64_t d[] = {2, 3};
    const float v[] = {1, 0, -0.f, 3, 0, 2};
    onr_tensor *x = tk_f32(2, d, v);
    onr_node *n = tk_node("NonZero");
    onr_tensor *in[] = {x};
    onr_tensor *y = run1(n, 13, 1, in);
    int64_t ed[] = {2, 3};
    tk_assert_shape(y, 2, ed);
    const int64_t e[] = {0, 1, 1, 0, 0, 2};
    tk_assert_eq_i64(y, e, 6);
    onr_tensor_free(y);
    /* unknown data: defer */
    onr_tensor u = unknown_i64(2, d);
    assert_int_equal(shape_only(n, 13, 1, (onr_tensor *[]){&u}), ONR_SHAPE_DEFER);
    /* bool scalar */
    uint8_t t = 1;
    onr_tensor *in2[] = {tk_bool(0, NULL, &t)};
    y = run1(n, 9, 1, in2);
    int64_t ed2[] = {1, 1};
    tk_assert_shape(y, 2, ed2);
    onr_tensor_free(y);
    tk_free_all(1, in2);
    tk_node_free(n);
    onr_tensor_free(x);
}

static void test_onehot(void **state)
{
    (void)state;
    int64_t d[] = {3};
    const int64_t idx[] = {0, -1, 5};
    const float vals[] = {0, 1};
    int64_t two = 2;
    float depth = 3.7f; /* non-integer depth truncates */
    onr_tensor *in[] = {tk_i64(1, d, idx), tk_f32(0, NULL, &depth), tk_f32(1, &two, vals)};
    onr_node *n = tk_node("OneHot");
    onr_tensor *y = run1(n, 11, 3, in);
    int64_t ed[] = {3, 3};
    tk_assert_shape(y, 2, ed);
    const float e[] = {1, 0, 0, 0, 0, 1, 0, 0, 0};
    assert_f32(y, e, 9);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("OneHot");
    tk_attr_int(n, "axis", 0);
    y = run1(n, 9, 3, in);
    const float e0[] = {1, 0, 0, 0, 0, 0, 0, 1, 0};
    assert_f32(y, e0, 9);
    onr_tensor_free(y);
    onr_tensor *in2[] = {in[0], in[1], tk_f32(1, d, NULL)};
    expect_fail(n, 11, 3, in2, 1, ONR_E_MODEL, "[off, on]");
    tk_node_free(n);
    onr_tensor_free(in2[2]);
    tk_free_all(3, in);
}

static void test_cumsum(void **state)
{
    (void)state;
    int64_t d[] = {2, 3};
    const float v[] = {1, 2, 3, 4, 5, 6};
    onr_tensor *x = tk_f32(2, d, v);
    const struct {
        int64_t axis;
        int excl, rev;
        float e[6];
    } cases[] = {{1, 0, 0, {1, 3, 6, 4, 9, 15}}, {1, 1, 0, {0, 1, 3, 0, 4, 9}},
                 {-1, 0, 1, {6, 5, 3, 15, 11, 6}}, {-1, 1, 1, {5, 3, 0, 11, 6, 0}},
                 {0, 0, 0, {1, 2, 3, 5, 7, 9}},   {0, 1, 1, {4, 5, 6, 0, 0, 0}}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        onr_node *n = tk_node("CumSum");
        tk_attr_int(n, "exclusive", cases[c].excl);
        tk_attr_int(n, "reverse", cases[c].rev);
        int32_t ax = (int32_t)cases[c].axis;
        onr_tensor *in[] = {x, tk_i32(0, NULL, &ax)};
        onr_tensor *y = run1(n, 14, 2, in);
        assert_f32(y, cases[c].e, 6);
        onr_tensor_free(y);
        /* fp16 gives the same (exact) sums */
        uint16_t h[6];
        for (int i = 0; i < 6; i++) h[i] = onr_float_to_half(v[i]);
        onr_tensor *xh = tk_typed(ONR_FLOAT16, 2, d, h);
        onr_tensor *inh[] = {xh, in[1]};
        y = run1(n, 14, 2, inh);
        for (int i = 0; i < 6; i++)
            assert_true(onr_half_to_float(((uint16_t *)y->data)[i]) == cases[c].e[i]);
        onr_tensor_free(y);
        onr_tensor_free(xh);
        onr_tensor_free(in[1]);
        tk_node_free(n);
    }
    /* int64 */
    onr_node *n = tk_node("CumSum");
    const int64_t iv[] = {INT64_MAX, 1, -5};
    int64_t d3[] = {3};
    onr_tensor *in[] = {tk_i64(1, d3, iv), i64s(0)};
    onr_tensor *y = run1(n, 11, 2, in);
    const int64_t ie[] = {INT64_MAX, INT64_MIN, INT64_MAX - 4}; /* wraps */
    tk_assert_eq_i64(y, ie, 3);
    onr_tensor_free(y);
    tk_free_all(2, in);
    onr_tensor *in2[] = {x, i64s(2)};
    expect_fail(n, 14, 2, in2, 1, ONR_E_MODEL, "axis 2");
    onr_tensor_free(in2[1]);
    tk_node_free(n);
    onr_tensor_free(x);
}

static void test_reverse_sequence(void **state)
{
    (void)state;
    int64_t d[] = {4, 2}; /* [time, batch] */
    const float v[] = {0, 4, 1, 5, 2, 6, 3, 7};
    onr_tensor *x = tk_f32(2, d, v);
    const int64_t lens[] = {3, 1};
    onr_node *n = tk_node("ReverseSequence");
    int64_t two = 2;
    onr_tensor *in[] = {x, tk_i64(1, &two, lens)};
    onr_tensor *y = run1(n, 10, 2, in);
    const float e[] = {2, 4, 1, 5, 0, 6, 3, 7};
    assert_f32(y, e, 8);
    onr_tensor_free(y);
    tk_node_free(n);
    /* [batch, time] */
    n = tk_node("ReverseSequence");
    tk_attr_int(n, "batch_axis", 0);
    tk_attr_int(n, "time_axis", 1);
    int64_t d2[] = {2, 4};
    const float v2[] = {0, 1, 2, 3, 4, 5, 6, 7};
    onr_tensor *x2 = tk_f32(2, d2, v2);
    onr_tensor *in2[] = {x2, in[1]};
    y = run1(n, 10, 2, in2);
    const float e2[] = {2, 1, 0, 3, 4, 5, 6, 7};
    assert_f32(y, e2, 8);
    onr_tensor_free(y);
    const int64_t bad[] = {5, 1};
    onr_tensor *in3[] = {x2, tk_i64(1, &two, bad)};
    expect_fail(n, 10, 2, in3, 1, ONR_E_MODEL, "sequence_lens[0] = 5");
    tk_node_free(n);
    onr_tensor *frees[] = {in[1], in3[1], x2, x};
    tk_free_all(4, frees);
}

/* ---- DepthToSpace, SpaceToDepth, Compress, EyeLike ---------------------------- */

static void test_depth_space(void **state)
{
    (void)state;
    int64_t d[] = {2, 8, 2, 3};
    onr_tensor *x = iota_f32(4, d);
    const float dcr[] = {0,  12, 1,  13, 2,  14, 24, 36, 25, 37, 26, 38, 3,  15, 4,  16,
                         5,  17, 27, 39, 28, 40, 29, 41, 6,  18, 7,  19, 8,  20, 30, 42,
                         31, 43, 32, 44, 9,  21, 10, 22, 11, 23, 33, 45, 34, 46, 35, 47};
    const float crd[] = {0,  6,  1,  7,  2,  8,  12, 18, 13, 19, 14, 20, 3,  9,  4,  10,
                         5,  11, 15, 21, 16, 22, 17, 23, 24, 30, 25, 31, 26, 32, 36, 42,
                         37, 43, 38, 44, 27, 33, 28, 34, 29, 35, 39, 45, 40, 46, 41, 47};
    const char *modes[] = {"DCR", "CRD"};
    const float *exp_[] = {dcr, crd};
    for (int m = 0; m < 2; m++) {
        onr_node *n = tk_node("DepthToSpace");
        tk_attr_int(n, "blocksize", 2);
        tk_attr_string(n, "mode", modes[m]);
        onr_tensor *in[] = {x};
        onr_tensor *y = run1(n, 13, 1, in);
        int64_t ed[] = {2, 2, 4, 6};
        tk_assert_shape(y, 4, ed);
        float e[96];
        for (int i = 0; i < 96; i++) e[i] = exp_[m][i % 48] + (i >= 48 ? 48 : 0);
        assert_f32(y, e, 96);
        if (m == 0) { /* SpaceToDepth undoes DCR */
            onr_node *s2d = tk_node("SpaceToDepth");
            tk_attr_int(s2d, "blocksize", 2);
            onr_tensor *in2[] = {y};
            onr_tensor *z = run1(s2d, 13, 1, in2);
            tk_assert_shape(z, 4, d);
            assert_memory_equal(z->data, x->data, 96 * 4);
            onr_tensor_free(z);
            tk_node_free(s2d);
        } else {
            expect_fail(n, 10, 1, in, 1, ONR_E_MODEL, "mode 'CRD'");
        }
        onr_tensor_free(y);
        tk_node_free(n);
    }
    onr_node *n = tk_node("DepthToSpace");
    tk_attr_int(n, "blocksize", 3);
    onr_tensor *in[] = {x};
    expect_fail(n, 13, 1, in, 1, ONR_E_MODEL, "blocksize^2 = 9");
    tk_node_free(n);
    onr_tensor_free(x);
}

static void test_compress_eyelike(void **state)
{
    (void)state;
    int64_t d[] = {3, 2};
    const float v[] = {1, 2, 3, 4, 5, 6};
    onr_tensor *x = tk_f32(2, d, v);
    int64_t two = 2, four = 4;
    const uint8_t c[] = {0, 1}, cl[] = {1, 0, 0, 1};
    onr_node *n = tk_node("Compress");
    tk_attr_int(n, "axis", 0);
    onr_tensor *in[] = {x, tk_bool(1, &two, c)};
    onr_tensor *y = run1(n, 11, 2, in);
    const float e[] = {3, 4};
    int64_t ed[] = {1, 2};
    tk_assert_shape(y, 2, ed);
    assert_f32(y, e, 2);
    onr_tensor_free(y);
    onr_tensor *in2[] = {x, tk_bool(1, &four, cl)};
    expect_fail(n, 11, 2, in2, 1, ONR_E_MODEL, "index 3 beyond the axis size 3");
    tk_node_free(n);
    n = tk_node("Compress"); /* no axis: the flattened input */
    y = run1(n, 11, 2, in2);
    const float e2[] = {1, 4};
    assert_f32(y, e2, 2);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("EyeLike");
    tk_attr_int(n, "k", -1);
    tk_attr_int(n, "dtype", ONR_INT64);
    onr_tensor *in3[] = {x};
    y = run1(n, 9, 1, in3);
    const int64_t e3[] = {0, 0, 1, 0, 0, 1};
    tk_assert_eq_i64(y, e3, 6);
    onr_tensor_free(y);
    tk_node_free(n);
    onr_tensor *frees[] = {in[1], in2[1], x};
    tk_free_all(3, frees);
}

/* ---- hostile sizes: clean errors, never huge allocations -------------------- */

static void test_hostile_sizes(void **state)
{
    (void)state;
    int64_t d[] = {2};
    onr_tensor *x = tk_f32(1, d, NULL);
    onr_node *n = tk_node("Expand");
    const int64_t big[] = {1ll << 40, 1ll << 40, 2};
    onr_tensor *in[] = {x, i64v(3, big)};
    expect_fail(n, 13, 2, in, 1, ONR_E_NOMEM, "too large");
    tk_node_free(n);
    n = tk_node("Tile");
    const int64_t reps[] = {INT64_MAX};
    onr_tensor *in2[] = {x, i64v(1, reps)};
    expect_fail(n, 13, 2, in2, 1, ONR_E_NOMEM, NULL);
    tk_node_free(n);
    n = tk_node("ConstantOfShape");
    const int64_t huge[] = {1ll << 62};
    onr_tensor *in3[] = {i64v(1, huge)};
    expect_fail(n, 9, 1, in3, 1, ONR_E_NOMEM, "too large");
    tk_node_free(n);
    n = tk_node("Pad");
    const int64_t pads[] = {0, 1ll << 60};
    onr_tensor *in4[] = {x, i64v(2, pads)};
    expect_fail(n, 13, 2, in4, 1, ONR_E_MODEL, "invalid");
    tk_node_free(n);
    n = tk_node("OneHot");
    int64_t k = 1000;
    float depth = 1e15f;
    const float vals[] = {0, 1};
    int64_t two = 2;
    onr_tensor *in5[] = {tk_i64(1, &k, NULL), tk_f32(0, NULL, &depth), tk_f32(1, &two, vals)};
    expect_fail(n, 11, 3, in5, 1, ONR_E_NOMEM, "too large");
    tk_node_free(n);
    n = tk_node("Reshape");
    tk_attr_int(n, "allowzero", 1);
    const int64_t rs[] = {INT64_MAX, INT64_MAX, 0};
    onr_tensor *in6[] = {x, i64v(3, rs)};
    expect_fail(n, 14, 2, in6, 1, ONR_E_MODEL, "cannot reshape");
    tk_node_free(n);
    onr_tensor *frees[] = {in[1], in2[1], in3[0], in4[1], in5[0], in5[1], in5[2], in6[1], x};
    tk_free_all(N_OF(frees), frees);
}

/* Empty tensors may have huge dims beside the zero: every op must still
 * give an empty result without overflowing (UBSan checks this build). */
static void test_empty_huge_dims(void **state)
{
    (void)state;
    int64_t d[] = {1ll << 40, 0, 1ll << 40, 4};
    onr_tensor *x = tk_f32(4, d, NULL);
    const char *ops[] = {"Transpose", "Flatten", "Identity", "Squeeze", "Shape", "Size",
                         "Concat",    "Split",   "Trilu",    "NonZero", "Dropout", "CumSum"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        onr_node *n = tk_node(ops[i]);
        if (strcmp(ops[i], "Concat") == 0) tk_attr_int(n, "axis", 2);
        if (strcmp(ops[i], "Split") == 0) tk_attr_int(n, "axis", 3);
        if (strcmp(ops[i], "Flatten") == 0) tk_attr_int(n, "axis", 2);
        onr_tensor *ax = i64s(2);
        onr_tensor *in[] = {x, x}, *out[2];
        if (strcmp(ops[i], "CumSum") == 0) in[1] = ax;
        int n_in = (strcmp(ops[i], "Concat") == 0 || strcmp(ops[i], "CumSum") == 0) ? 2 : 1;
        int n_out = strcmp(ops[i], "Split") == 0 ? 2 : 1;
        onr_err err = {0};
        onr_status st = tk_run(n, 14, n_in, in, n_out, out, 2, &err);
        /* a clean error (e.g. the concatenated axis overflows) is fine too */
        if (st != ONR_OK && st != ONR_E_NOMEM && st != ONR_E_MODEL)
            fail_msg("%s: %s", ops[i], err.msg);
        tk_free_all(n_out, out);
        onr_tensor_free(ax);
        tk_node_free(n);
    }
    struct {
        const char *op;
        int64_t v[8];
        int nv;
    } vin[] = {{"Slice", {0}, 1}, {"Tile", {1, 1, 1, 2}, 4}, {"Expand", {1, 1, 1, 4}, 4},
               {"Pad", {0, 0, 0, 1, 0, 0, 0, 1}, 8}, {"Reshape", {-1, 4}, 2}, {"Gather", {0}, 1}};
    for (size_t i = 0; i < sizeof vin / sizeof vin[0]; i++) {
        onr_node *n = tk_node(vin[i].op);
        int64_t big[8] = {0};
        memcpy(big, vin[i].v, sizeof vin[i].v);
        onr_tensor *p = i64v(vin[i].nv, big), *out[1];
        onr_tensor *in[] = {x, p, p};
        onr_err err = {0};
        int n_in = strcmp(vin[i].op, "Slice") == 0 ? 3 : 2;
        onr_status st = tk_run(n, 13, n_in, in, 1, out, 2, &err);
        if (st != ONR_OK && st != ONR_E_NOMEM && st != ONR_E_MODEL)
            fail_msg("%s: %s", vin[i].op, err.msg);
        tk_free_all(1, out);
        onr_tensor_free(p);
        tk_node_free(n);
    }
    onr_tensor_free(x);
}

/* ---- the create / reshape / run contract --------------------------------------- */

/* Only create, with no input bound (output 0 bound: a node must have one):
 * attribute errors must come from there. */
static void expect_create_fail(onr_node *n, int64_t opset, int n_in, int n_out, onr_status code,
                               const char *needle)
{
    n->opset = opset;
    n->n_in = n_in;
    n->n_out = n_out;
    const onr_op *op = onr_op_find("", n->op_type, opset);
    assert_non_null(op);
    onr_err err = {0};
    onr_step s;
    assert_int_equal(onr_step_init(&s, n, op, n_in, n_out, &err), ONR_OK);
    onr_tensor y = {0};
    if (n_out > 0) s.out[0] = &y;
    onr_status st = onr_step_create(&s, 1, &err);
    onr_step_destroy(&s);
    if (st != code)
        fail_msg("%s create: expected status %d, got %d (%s)", n->op_type, code, st, err.msg);
    if (needle && !strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static void test_create_errors(void **state)
{
    (void)state;
    onr_node *n = tk_node("Reshape");
    tk_attr_int(n, "allowzero", 2);
    expect_create_fail(n, 14, 2, 1, ONR_E_MODEL, "'allowzero' is 2");
    tk_node_free(n);
    n = tk_node("Reshape"); /* opset < 5: the shape attribute */
    expect_create_fail(n, 4, 1, 1, ONR_E_MODEL, "attribute 'shape' is missing");
    tk_node_free(n);
    n = tk_node("Transpose");
    int64_t p13[13];
    for (int i = 0; i < 13; i++) p13[i] = i;
    tk_attr_ints(n, "perm", 13, p13);
    expect_create_fail(n, 13, 1, 1, ONR_E_MODEL, "perm has 13 values");
    tk_node_free(n);
    n = tk_node("Concat");
    expect_create_fail(n, 13, 2, 1, ONR_E_MODEL, "attribute 'axis' is missing");
    tk_attr_int(n, "axis", 0);
    expect_create_fail(n, 13, 0, 1, ONR_E_MODEL, "at least one input");
    tk_node_free(n);
    n = tk_node("Split");
    const int64_t sp[] = {1, 2}, spn[] = {-1, 2, 3};
    tk_attr_ints(n, "split", 2, sp);
    expect_create_fail(n, 11, 1, 3, ONR_E_MODEL, "split has 2 values for 3 outputs");
    tk_node_free(n);
    n = tk_node("Split");
    tk_attr_ints(n, "split", 3, spn);
    expect_create_fail(n, 11, 1, 3, ONR_E_MODEL, "split value -1 is invalid");
    tk_node_free(n);
    n = tk_node("Split");
    tk_attr_int(n, "num_outputs", 4);
    expect_create_fail(n, 18, 1, 3, ONR_E_MODEL, "num_outputs is 4");
    tk_node_free(n);
    n = tk_node("Slice"); /* opset < 10: attributes */
    const int64_t st[] = {0, 1}, en[] = {2};
    tk_attr_ints(n, "starts", 2, st);
    expect_create_fail(n, 9, 1, 1, ONR_E_MODEL, "starts and ends are required");
    tk_attr_ints(n, "ends", 1, en);
    expect_create_fail(n, 9, 1, 1, ONR_E_MODEL, "differ in length");
    tk_node_free(n);
    n = tk_node("Pad");
    tk_attr_string(n, "mode", "wrap");
    expect_create_fail(n, 18, 2, 1, ONR_E_MODEL, "'wrap' is not valid at opset 18");
    tk_node_free(n);
    n = tk_node("Pad");
    expect_create_fail(n, 2, 1, 1, ONR_E_MODEL, "attribute 'pads' is missing");
    expect_create_fail(n, 1, 1, 1, ONR_E_MODEL, "attribute 'paddings' is missing");
    tk_node_free(n);
    n = tk_node("Squeeze");
    int64_t ax13[13] = {0};
    tk_attr_ints(n, "axes", 13, ax13);
    expect_create_fail(n, 11, 1, 1, ONR_E_MODEL, "axes has 13 values");
    tk_node_free(n);
    n = tk_node("Unsqueeze");
    expect_create_fail(n, 11, 1, 1, ONR_E_MODEL, "axes are required");
    tk_node_free(n);
    n = tk_node("Flatten");
    tk_attr_int(n, "axis", 1000);
    expect_create_fail(n, 13, 1, 1, ONR_E_MODEL, "axis 1000");
    tk_node_free(n);
    n = tk_node("Dropout");
    tk_attr_float(n, "ratio", 1.5f);
    expect_create_fail(n, 10, 1, 2, ONR_E_MODEL, "'ratio' is 1.5");
    tk_node_free(n);
    n = tk_node("ReverseSequence");
    tk_attr_int(n, "batch_axis", 2);
    expect_create_fail(n, 10, 2, 1, ONR_E_MODEL, "batch_axis 2 / time_axis 0 are invalid");
    tk_node_free(n);
    const char *d2s[] = {"DepthToSpace", "SpaceToDepth"};
    for (int i = 0; i < 2; i++) {
        n = tk_node(d2s[i]);
        expect_create_fail(n, 13, 1, 1, ONR_E_MODEL, "blocksize 0 is invalid");
        tk_attr_int(n, "blocksize", 2);
        if (i == 0) {
            tk_attr_string(n, "mode", "XYZ");
            expect_create_fail(n, 13, 1, 1, ONR_E_MODEL, "mode 'XYZ' is not valid");
        } else {
            expect_create_fail(n, 13, 1, 1, ONR_OK, NULL);
        }
        tk_node_free(n);
    }
}

/* Every converted op: the contract's entry points, the inputs whose values
 * reshape reads, the flags. */
static void test_contract_registry(void **state)
{
    (void)state;
    const uint32_t b1 = 1u << 1, b2 = 1u << 2, b3 = 1u << 3, b4 = 1u << 4;
    const struct {
        const char *op;
        int64_t opset;
        uint32_t shape_inputs;
        unsigned flags;
    } cases[] = {{"Reshape", 14, b1, ONR_OP_VIEW},   {"Flatten", 13, 0, ONR_OP_VIEW},
                 {"Squeeze", 13, b1, ONR_OP_VIEW},   {"Unsqueeze", 13, b1, ONR_OP_VIEW},
                 {"Identity", 16, 0, ONR_OP_VIEW},   {"Dropout", 11, 0, ONR_OP_VIEW},
                 {"Dropout", 13, 0, ONR_OP_NOFOLD | ONR_OP_INPLACE},
                 {"Shape", 15, 0, 0},                {"Size", 13, 0, 0},
                 {"Transpose", 13, 0, 0},            {"Concat", 13, 0, 0},
                 {"Split", 13, b1, 0},               {"Slice", 13, b1 | b2 | b3 | b4, 0},
                 {"Expand", 13, b1, 0},              {"Tile", 13, b1 | b2, 0},
                 {"Pad", 18, b1 | b3, 0},            {"ReverseSequence", 10, 0, 0},
                 {"DepthToSpace", 13, 0, 0},         {"SpaceToDepth", 13, 0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const onr_op *op = onr_op_find("", cases[i].op, cases[i].opset);
        assert_non_null(op);
        const onr_op_impl *im = op->impl;
        if (!im->reshape) fail_msg("%s has no reshape", cases[i].op);
        if (im->shape_inputs != cases[i].shape_inputs || im->flags != cases[i].flags)
            fail_msg("%s: shape_inputs 0x%x flags 0x%x, expected 0x%x 0x%x", cases[i].op,
                     im->shape_inputs, im->flags, cases[i].shape_inputs, cases[i].flags);
    }
}

/* One step driven the way a plan drives it: create once, then for each set
 * of inputs reshape (which the executor skips when no input shape and no
 * shape-input value changed), bind the outputs and run. Each result must
 * equal a fresh run of the same inputs, so geometry that reshape left stale
 * or that run takes from anywhere but params and tensors shows up.
 * changed[c]: whether reshape should run for set c. */
#define SEQ_IN 5
static void check_step_sequence(onr_node *n, int64_t opset, int n_in, int n_out, int n_sets,
                                onr_tensor *sets[][SEQ_IN], const int *changed, int nthreads)
{
    const onr_op *op = onr_op_find("", n->op_type, opset);
    assert_non_null(op);
    n->opset = opset;
    n->n_in = n_in;
    n->n_out = n_out;
    int view = (op->impl->flags & ONR_OP_VIEW) != 0;
    onr_err err = {0};
    onr_step s;
    onr_tensor outs[4];
    memset(outs, 0, sizeof outs);
    assert_true(n_out <= 4 && n_in <= SEQ_IN);
    assert_int_equal(onr_step_init(&s, n, op, n_in, n_out, &err), ONR_OK);
    for (int o = 0; o < n_out; o++) s.out[o] = &outs[o];
    for (int k = 0; k < n_in; k++) s.in[k] = sets[0][k];
    if (onr_step_create(&s, nthreads, &err)) fail_msg("%s create: %s", n->op_type, err.msg);
    for (int c = 0; c < n_sets; c++) {
        for (int k = 0; k < n_in; k++) s.in[k] = sets[c][k];
        int ch = -1;
        if (onr_step_reshape(&s, nthreads, &ch, &err))
            fail_msg("%s set %d reshape: %s", n->op_type, c, err.msg);
        if (ch != changed[c])
            fail_msg("%s set %d: reshape %s", n->op_type, c, ch ? "ran" : "was skipped");
        for (int o = 0; o < n_out; o++) {
            if (o == 0 && view) {
                outs[0].data = s.in[0]->data;
                outs[0].owns = 0;
                outs[0].cap = 0;
            } else {
                assert_int_equal(onr_tensor_alloc(&outs[o], &err), ONR_OK);
            }
        }
        void *scratch = NULL;
        if (s.scratch)
            assert_int_equal(posix_memalign(&scratch, 64, (s.scratch + 63) & ~(size_t)63), 0);
        if (onr_step_run(&s, scratch, nthreads, &err))
            fail_msg("%s set %d run: %s", n->op_type, c, err.msg);
        free(scratch);
        onr_tensor *ref[4];
        run_n(n, opset, n_in, sets[c], n_out, ref, 1);
        for (int o = 0; o < n_out; o++) {
            assert_int_equal(outs[o].dtype, ref[o]->dtype);
            tk_assert_shape(&outs[o], ref[o]->rank, ref[o]->dims);
            if (onr_tensor_nbytes(ref[o]))
                assert_memory_equal(outs[o].data, ref[o]->data, onr_tensor_nbytes(ref[o]));
        }
        tk_free_all(n_out, ref);
    }
    if (view) outs[0].data = NULL;
    for (int o = 0; o < n_out; o++) onr_tensor_clear(&outs[o]);
    onr_step_destroy(&s);
}

static void test_step_sequences(void **state)
{
    (void)state;
    const int64_t da[] = {2, 3, 4, 5}, db[] = {3, 1, 4, 2}, d2[] = {4, 6}, d2b[] = {4, 3},
                  d3[] = {3, 4};
    onr_tensor *a1 = tk_rand_f32(4, da, 1), *a2 = tk_rand_f32(4, da, 2), *b = tk_rand_f32(4, db, 3);
    onr_tensor *m1 = tk_rand_f32(2, d2, 4), *m2 = tk_rand_f32(2, d2, 5);
    onr_tensor *m3 = tk_rand_f32(2, d2b, 6);
    onr_tensor *q = tk_rand_f32(2, d3, 7);
    const int same[] = {1, 0, 1, 1}, vals[] = {1, 1, 0, 1};
    /* Transpose: new data with the same shape skips reshape */
    onr_node *n = tk_node("Transpose");
    const int64_t perm[] = {0, 2, 3, 1};
    tk_attr_ints(n, "perm", 4, perm);
    onr_tensor *tr[][SEQ_IN] = {{a1}, {a2}, {b}, {a1}};
    for (int nt = 1; nt <= 3; nt += 2) check_step_sequence(n, 13, 1, 1, 4, tr, same, nt);
    tk_node_free(n);
    /* Slice: new start/end values re-run reshape, equal values in new tensors do not */
    const int64_t s1[] = {1}, e1[] = {3}, x1[] = {1}, s2[] = {0}, e2[] = {-1}, x2[] = {0};
    onr_tensor *ps1 = i64v(1, s1), *pe1 = i64v(1, e1), *px1 = i64v(1, x1), *ps2 = i64v(1, s2),
               *pe2 = i64v(1, e2), *px2 = i64v(1, x2), *ps2b = i64v(1, s2);
    onr_tensor *sl[][SEQ_IN] = {{m1, ps1, pe1, px1}, {m1, ps2, pe2, px2}, {m2, ps2b, pe2, px2},
                                {m3, ps1, pe1, px1}};
    n = tk_node("Slice");
    check_step_sequence(n, 13, 4, 1, 4, sl, vals, 1);
    tk_node_free(n);
    /* Pad: the constant is read by run, the pads by reshape */
    const int64_t pa[] = {1, 0, 0, 2}, pb[] = {0, 1, 2, 0};
    float c5 = 5, c7 = 7;
    onr_tensor *pp1 = i64v(4, pa), *pp2 = i64v(4, pb), *k5 = tk_f32(0, NULL, &c5),
               *k7 = tk_f32(0, NULL, &c7);
    onr_tensor *pd[][SEQ_IN] = {{q, pp1, k5}, {q, pp1, k7}, {q, pp2, k7}, {m1, pp2, k5}};
    const int pad_ch[] = {1, 0, 1, 1};
    n = tk_node("Pad");
    check_step_sequence(n, 13, 3, 1, 4, pd, pad_ch, 1);
    tk_node_free(n);
    n = tk_node("Pad");
    tk_attr_string(n, "mode", "reflect");
    onr_tensor *pr[][SEQ_IN] = {{m1, pp1}, {m2, pp1}, {q, pp1}, {q, pp2}};
    check_step_sequence(n, 13, 2, 1, 4, pr, same, 1);
    tk_node_free(n);
    /* Tile, Expand */
    const int64_t r1[] = {2, 1}, r2[] = {1, 3}, sh1[] = {2, 1, 6}, sh2[] = {4, 1};
    onr_tensor *pr1 = i64v(2, r1), *pr2 = i64v(2, r2), *psh1 = i64v(3, sh1), *psh2 = i64v(2, sh2);
    onr_tensor *ti[][SEQ_IN] = {{m1, pr1}, {m1, pr2}, {m2, pr2}, {q, pr2}};
    n = tk_node("Tile");
    check_step_sequence(n, 13, 2, 1, 4, ti, vals, 1);
    tk_node_free(n);
    onr_tensor *ex[][SEQ_IN] = {{m1, psh1}, {m1, psh2}, {m2, psh2}, {m3, psh2}};
    n = tk_node("Expand");
    check_step_sequence(n, 13, 2, 1, 4, ex, vals, 1);
    tk_node_free(n);
    /* Split (2 outputs), Concat */
    const int64_t sa[] = {1, 5}, sb[] = {3, 3}, sc[] = {1, 2};
    onr_tensor *psa = i64v(2, sa), *psb = i64v(2, sb), *psc = i64v(2, sc);
    onr_tensor *sp[][SEQ_IN] = {{m1, psa}, {m1, psb}, {m2, psb}, {m3, psc}};
    n = tk_node("Split");
    tk_attr_int(n, "axis", 1);
    check_step_sequence(n, 13, 2, 2, 4, sp, vals, 1);
    tk_node_free(n);
    onr_tensor *cc[][SEQ_IN] = {{m1, m3, m2}, {m2, m3, m1}, {m3, m1, m3}, {m1, m3, m2}};
    n = tk_node("Concat");
    tk_attr_int(n, "axis", 1);
    const int cc_ch[] = {1, 0, 1, 1};
    check_step_sequence(n, 13, 3, 1, 4, cc, cc_ch, 1);
    tk_node_free(n);
    /* views: Reshape, Squeeze, Unsqueeze, Flatten; Dropout with its mask */
    const int64_t rs1[] = {3, -1}, rs2[] = {-1, 3}, zero[] = {0}, two[] = {2};
    onr_tensor *prs1 = i64v(2, rs1), *prs2 = i64v(2, rs2), *pz = i64v(1, zero), *p2 = i64v(1, two);
    onr_tensor *rsh[][SEQ_IN] = {{m1, prs1}, {m1, prs2}, {m2, prs2}, {m3, prs1}};
    n = tk_node("Reshape");
    check_step_sequence(n, 14, 2, 1, 4, rsh, vals, 1);
    tk_node_free(n);
    const int64_t dq[] = {1, 4, 1}, dq2[] = {1, 2, 1};
    onr_tensor *sq1 = tk_rand_f32(3, dq, 8), *sq2 = tk_rand_f32(3, dq2, 9);
    onr_tensor *sqz[][SEQ_IN] = {{sq1, pz}, {sq1, p2}, {sq1, p2}, {sq2, pz}};
    const int sq_ch[] = {1, 1, 0, 1};
    n = tk_node("Squeeze");
    check_step_sequence(n, 13, 2, 1, 4, sqz, sq_ch, 1);
    tk_node_free(n);
    onr_tensor *usq[][SEQ_IN] = {{m1, pz}, {m1, p2}, {m2, p2}, {q, p2}};
    n = tk_node("Unsqueeze");
    check_step_sequence(n, 13, 2, 1, 4, usq, vals, 1);
    tk_node_free(n);
    onr_tensor *one[][SEQ_IN] = {{a1}, {a2}, {b}, {m1}};
    const char *plain[] = {"Flatten", "Identity", "Shape", "Size"};
    for (int i = 0; i < 4; i++) {
        n = tk_node(plain[i]);
        if (i == 2) tk_attr_int(n, "start", 1);
        check_step_sequence(n, 15, 1, 1, 4, one, same, 1);
        tk_node_free(n);
    }
    n = tk_node("Dropout");
    check_step_sequence(n, 13, 1, 2, 4, one, same, 1);
    tk_node_free(n);
    /* DepthToSpace; ReverseSequence reads sequence_lens in run */
    const int64_t dd[] = {1, 8, 2, 3}, dd2[] = {2, 4, 3, 2};
    onr_tensor *ds1 = tk_rand_f32(4, dd, 10), *ds2 = tk_rand_f32(4, dd2, 11);
    onr_tensor *dsp[][SEQ_IN] = {{ds1}, {ds1}, {ds2}, {ds1}};
    n = tk_node("DepthToSpace");
    tk_attr_int(n, "blocksize", 2);
    tk_attr_string(n, "mode", "CRD");
    check_step_sequence(n, 13, 1, 1, 4, dsp, same, 1);
    tk_node_free(n);
    const int64_t l1[] = {3, 1, 2, 4, 1, 2}, l2[] = {1, 4, 4, 0, 2, 3};
    onr_tensor *pl1 = i64v(6, l1), *pl2 = i64v(6, l2);
    onr_tensor *rv[][SEQ_IN] = {{m1, pl1}, {m1, pl2}, {m2, pl2}, {m2, pl1}};
    const int rv_ch[] = {1, 0, 0, 0};
    n = tk_node("ReverseSequence");
    check_step_sequence(n, 10, 2, 1, 4, rv, rv_ch, 1);
    tk_node_free(n);
    onr_tensor *frees[] = {a1,   a2,   b,    m1,   m2,   m3,   q,    ps1,  pe1,  px1,  ps2,
                           pe2,  px2,  ps2b, pp1,  pp2,  k5,   k7,   pr1,  pr2,  psh1, psh2,
                           psa,  psb,  psc,  prs1, prs2, pz,   p2,   sq1,  sq2,  ds1,  ds2,
                           pl1,  pl2};
    tk_free_all(N_OF(frees), frees);
}

/* Opset rules decided in create; Shape and Size never read their input's
 * data; Dropout without its mask only aliases. */
static void test_contract_opsets(void **state)
{
    (void)state;
    int64_t d[] = {2, 3, 4};
    onr_tensor u = unknown_i64(3, d);
    onr_tensor *in[] = {&u};
    /* start is ignored before opset 15 */
    onr_node *n = tk_node("Shape");
    tk_attr_int(n, "start", 1);
    onr_tensor *y = run1(n, 13, 1, in);
    tk_assert_eq_i64(y, d, 3);
    onr_tensor_free(y);
    y = run1(n, 15, 1, in);
    tk_assert_eq_i64(y, d + 1, 2);
    onr_tensor_free(y);
    tk_node_free(n);
    n = tk_node("Size");
    y = run1(n, 13, 1, in);
    assert_int_equal(((int64_t *)y->data)[0], 24);
    onr_tensor_free(y);
    tk_node_free(n);
    /* Dropout: a view before opset 12; from 12 (ratio and training_mode
     * inputs) a copy when not training (models lose it in the identity pass) */
    onr_tensor *x = tk_rand_f32(3, d, 3);
    n = tk_node("Dropout");
    onr_tensor *in1[] = {x};
    y = run1(n, 11, 1, in1);
    assert_ptr_equal(y->data, x->data);
    onr_tensor_free(y);
    y = run1(n, 13, 1, in1);
    assert_memory_equal(y->data, x->data, onr_tensor_nbytes(x));
    onr_tensor_free(y);
    float r5 = 0.5f;
    uint8_t f = 0;
    onr_tensor *in2[] = {x, tk_f32(0, NULL, &r5), tk_bool(0, NULL, &f)}, *out[2];
    run_n(n, 12, 3, in2, 2, out, 1);
    assert_memory_equal(out[0]->data, x->data, onr_tensor_nbytes(x));
    tk_free_all(2, out);
    tk_free_all(2, &in2[1]);
    tk_node_free(n);
    /* Squeeze's axes attribute is ignored from opset 13 (the input counts) */
    int64_t d1[] = {1, 3, 1};
    onr_tensor *x1 = tk_f32(3, d1, NULL);
    n = tk_node("Squeeze");
    const int64_t ax[] = {0};
    tk_attr_ints(n, "axes", 1, ax);
    onr_tensor *in3[] = {x1};
    y = run1(n, 11, 1, in3);
    int64_t e11[] = {3, 1}, e13[] = {3};
    tk_assert_shape(y, 2, e11);
    onr_tensor_free(y);
    y = run1(n, 13, 1, in3);
    tk_assert_shape(y, 1, e13);
    onr_tensor_free(y);
    tk_node_free(n);
    /* Split at opset 1 prefers a non-empty split input to the attribute */
    int64_t d6[] = {6};
    onr_tensor *x6 = iota_f32(1, d6);
    n = tk_node("Split");
    const int64_t sa[] = {3, 3}, si[] = {2, 4};
    tk_attr_ints(n, "split", 2, sa);
    onr_tensor *in4[] = {x6, i64v(2, si)}, *o2[2];
    run_n(n, 1, 2, in4, 2, o2, 1);
    assert_int_equal(o2[0]->numel, 2);
    tk_free_all(2, o2);
    run_n(n, 1, 1, in4, 2, o2, 1);
    assert_int_equal(o2[0]->numel, 3);
    tk_free_all(2, o2);
    expect_fail(n, 1, 1, in4, 3, ONR_E_MODEL, "split has 2 values for 3 outputs");
    tk_node_free(n);
    onr_tensor_free(in4[1]);
    onr_tensor_free(x6);
    onr_tensor_free(x1);
    onr_tensor_free(x);
    onr_tensor_clear(&u);
}

/* ---- registry coverage --------------------------------------------------------- */

static void test_registry(void **state)
{
    (void)state;
    const struct {
        const char *op;
        int64_t opset;
        int found;
    } cases[] = {{"Reshape", 1, 1},   {"Reshape", 25, 1},  {"Expand", 7, 0},       {"Expand", 8, 1},
                 {"Scatter", 10, 1},  {"Scatter", 11, 0},  {"ScatterElements", 10, 0},
                 {"Trilu", 13, 0},    {"Trilu", 14, 1},    {"Range", 11, 1},       {"Pad", 19, 1},
                 {"Split", 18, 1},    {"Dropout", 22, 1},  {"ConstantOfShape", 8, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const onr_op *op = onr_op_find("", cases[i].op, cases[i].opset);
        if ((op != NULL) != cases[i].found)
            fail_msg("%s at opset %lld: expected %s", cases[i].op, (long long)cases[i].opset,
                     cases[i].found ? "a kernel" : "none");
    }
    assert_true(onr_op_find("", "Reshape", 13)->impl->flags & ONR_OP_VIEW);
    assert_false(onr_op_find("", "Transpose", 13)->impl->flags & ONR_OP_VIEW);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reshape),
        cmocka_unit_test(test_reshape_errors),
        cmocka_unit_test(test_flatten),
        cmocka_unit_test(test_squeeze_unsqueeze),
        cmocka_unit_test(test_identity_dropout),
        cmocka_unit_test(test_shape_size),
        cmocka_unit_test(test_transpose),
        cmocka_unit_test(test_transpose_errors),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_slice_errors),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_gather_elements_nd),
        cmocka_unit_test(test_scatter),
        cmocka_unit_test(test_expand_tile),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_constants),
        cmocka_unit_test(test_trilu),
        cmocka_unit_test(test_pad),
        cmocka_unit_test(test_nonzero),
        cmocka_unit_test(test_onehot),
        cmocka_unit_test(test_cumsum),
        cmocka_unit_test(test_reverse_sequence),
        cmocka_unit_test(test_depth_space),
        cmocka_unit_test(test_compress_eyelike),
        cmocka_unit_test(test_hostile_sizes),
        cmocka_unit_test(test_empty_huge_dims),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_contract_registry),
        cmocka_unit_test(test_step_sequences),
        cmocka_unit_test(test_contract_opsets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
