/* test_ops_gather.c - the index and fill operators (gather.c, fill_ops.c)
 * under the create/reshape/run contract: attribute errors come from create;
 * one step run again with new shape-input values (and new input shapes)
 * reshapes and gives the new result, while a value that is not a shape
 * input (Trilu's k) is read by run alone; CumSum's axis value is checked
 * at reshape when it is a constant and at run otherwise; constant inputs
 * are never consumed (nothing is prepacked); geometry kept in params
 * matches a naive reference over shapes, axes and element sizes. */
#include "kutil.h"

#include <stdlib.h>
#include <string.h>

#define N_OF(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

/* ---- one step, run several times ------------------------------------------------ */

typedef struct tstep {
    onr_step s;
    onr_tensor outs[2];
    void *scratch;
    onr_err err;
} tstep;

static void ts_open(tstep *t, onr_node *n, int64_t opset, int n_in, onr_tensor **in,
                    uint32_t const_mask, int n_out)
{
    memset(t, 0, sizeof *t);
    n->opset = opset;
    n->n_in = n_in;
    n->n_out = n_out;
    const onr_op *op = onr_op_find("", n->op_type, opset);
    assert_non_null(op);
    assert_int_equal(onr_step_init(&t->s, n, op, n_in, n_out, &t->err), ONR_OK);
    for (int k = 0; k < n_in; k++) {
        t->s.in[k] = in[k];
        t->s.in_const[k] = in[k] && (const_mask >> k & 1u);
    }
    for (int o = 0; o < n_out; o++) t->s.out[o] = &t->outs[o];
}

static int ts_create(tstep *t) { return onr_step_create(&t->s, 1, &t->err); }

/* reshape (when needed), outputs and scratch, run; *changed: reshape ran */
static int ts_run(tstep *t, int nthreads, int *changed)
{
    int st = onr_step_reshape(&t->s, nthreads, changed, &t->err);
    if (st) return st;
    for (int o = 0; o < t->s.n_out; o++)
        if ((st = onr_tensor_alloc(&t->outs[o], &t->err))) return st;
    free(t->scratch);
    t->scratch = NULL;
    if (t->s.scratch && posix_memalign(&t->scratch, 64, (t->s.scratch + 63) & ~(size_t)63))
        fail_msg("no scratch");
    return onr_step_run(&t->s, t->scratch, nthreads, &t->err);
}

static void ts_close(tstep *t)
{
    onr_step_destroy(&t->s);
    for (int o = 0; o < 2; o++) onr_tensor_clear(&t->outs[o]);
    free(t->scratch);
}

static void ts_ok(tstep *t, int st)
{
    if (st != ONR_OK) fail_msg("status %d: %s", st, t->err.msg);
}

static void expect_err(int st, const onr_err *err, onr_status code, const char *needle)
{
    if (st != (int)code) fail_msg("expected status %d, got %d (%s)", code, st, err->msg);
    if (needle && !strstr(err->msg, needle)) fail_msg("message '%s' lacks '%s'", err->msg, needle);
}

static onr_tensor *i64v(int64_t n, const int64_t *v) { return tk_i64(1, &n, v); }
static onr_tensor *i64s(int64_t v) { return tk_i64(0, NULL, &v); }

static void assert_f32_eq(const onr_tensor *t, const float *e, int64_t n)
{
    tk_assert_close_f32(t, e, n, 0, 0);
}

/* ---- attribute errors come from create ------------------------------------------ */

static void expect_create_fails(onr_node *n, int64_t opset, int n_in, onr_tensor **in,
                                onr_status code, const char *needle)
{
    tstep t;
    ts_open(&t, n, opset, n_in, in, 0, 1);
    expect_err(ts_create(&t), &t.err, code, needle);
    ts_close(&t);
    /* and a whole run reports the same */
    onr_tensor *out[1];
    onr_err err = {0};
    expect_err(tk_run(n, opset, n_in, in, 1, out, 1, &err), &err, code, needle);
    tk_free_all(1, out);
}

static void test_create_errors(void **state)
{
    (void)state;
    int64_t d[] = {2, 2};
    onr_tensor *x = tk_f32(2, d, NULL), *ind = tk_i64(2, d, NULL), *up = tk_f32(2, d, NULL);
    memset(ind->data, 0, onr_tensor_nbytes(ind));
    onr_tensor *in[] = {x, ind, up};
    onr_node *n = tk_node("GatherND");
    tk_attr_int(n, "batch_dims", -1);
    expect_create_fails(n, 13, 2, in, ONR_E_MODEL, "batch_dims -1");
    tk_node_free(n);
    n = tk_node("ScatterND");
    tk_attr_string(n, "reduction", "max");
    expect_create_fails(n, 16, 3, in, ONR_E_MODEL, "reduction 'max' is not valid at opset 16");
    tk_node_free(n);
    n = tk_node("ScatterElements");
    tk_attr_string(n, "reduction", "sum");
    expect_create_fails(n, 18, 3, in, ONR_E_MODEL, "reduction 'sum'");
    tk_node_free(n);
    n = tk_node("EyeLike");
    tk_attr_int(n, "dtype", 100);
    expect_create_fails(n, 9, 1, in, ONR_E_UNSUPPORTED, "dtype 100 is not supported");
    tk_node_free(n);
    n = tk_node("Constant");
    expect_create_fails(n, 13, 0, NULL, ONR_E_MODEL, "exactly one value attribute, has 0");
    tk_attr_int(n, "value_float", 1); /* an int under a float's name */
    expect_create_fails(n, 13, 0, NULL, ONR_E_MODEL, "'value_float' has the wrong type");
    tk_node_free(n);
    n = tk_node("ConstantOfShape");
    const float two[] = {1, 2};
    int64_t d2[] = {2};
    tk_attr_tensor(n, "value", tk_f32(1, d2, two));
    onr_tensor *sh[] = {i64v(2, d)};
    expect_create_fails(n, 9, 1, sh, ONR_E_MODEL, "one-element tensor");
    tk_node_free(n);
    tk_free_all(1, sh);
    tk_free_all(3, in);
}

/* ---- shape inputs: one step, new values -------------------------------------- */

static void test_range_rerun(void **state)
{
    (void)state;
    onr_tensor *s = i64s(0), *l = i64s(5), *dl = i64s(1);
    onr_tensor *in[] = {s, l, dl};
    onr_node *n = tk_node("Range");
    tstep t;
    ts_open(&t, n, 11, 3, in, 0, 1);
    ts_ok(&t, ts_create(&t));
    int changed;
    ts_ok(&t, ts_run(&t, 1, &changed));
    const int64_t e1[] = {0, 1, 2, 3, 4};
    tk_assert_eq_i64(&t.outs[0], e1, 5);
    ((int64_t *)l->data)[0] = 10;
    ((int64_t *)dl->data)[0] = 4;
    ts_ok(&t, ts_run(&t, 1, &changed));
    assert_true(changed);
    const int64_t e2[] = {0, 4, 8};
    tk_assert_eq_i64(&t.outs[0], e2, 3);
    /* same values: no reshape */
    ts_ok(&t, ts_run(&t, 1, &changed));
    assert_false(changed);
    tk_assert_eq_i64(&t.outs[0], e2, 3);
    ((int64_t *)dl->data)[0] = 0;
    expect_err(ts_run(&t, 1, &changed), &t.err, ONR_E_MODEL, "delta is 0");
    ts_close(&t);
    tk_node_free(n);
    tk_free_all(3, in);
}

static void test_constantofshape_rerun(void **state)
{
    (void)state;
    const int64_t s1[] = {2, 3};
    onr_tensor *shape = i64v(2, s1);
    onr_node *n = tk_node("ConstantOfShape");
    int64_t one = 1;
    const double v = -2.5;
    tk_attr_tensor(n, "value", tk_typed(ONR_DOUBLE, 1, &one, &v));
    onr_tensor *in[] = {shape};
    tstep t;
    ts_open(&t, n, 9, 1, in, 0, 1);
    ts_ok(&t, ts_create(&t));
    ts_ok(&t, ts_run(&t, 1, NULL));
    tk_assert_shape(&t.outs[0], 2, s1);
    assert_int_equal(t.outs[0].dtype, ONR_DOUBLE);
    ((int64_t *)shape->data)[0] = 4;
    ((int64_t *)shape->data)[1] = 1;
    ts_ok(&t, ts_run(&t, 1, NULL));
    const int64_t s2[] = {4, 1};
    tk_assert_shape(&t.outs[0], 2, s2);
    for (int i = 0; i < 4; i++) assert_true(((double *)t.outs[0].data)[i] == -2.5);
    ts_close(&t);
    tk_node_free(n);
    /* a string value (owned by the params, freed by destroy) */
    n = tk_node("ConstantOfShape");
    onr_tensor *sv = tk_typed(ONR_STRING, 1, &one, NULL);
    free(((char **)sv->data)[0]);
    ((char **)sv->data)[0] = onr_strdup("pad");
    tk_attr_tensor(n, "value", sv);
    onr_tensor *out[1];
    onr_err err = {0};
    assert_int_equal(tk_run(n, 9, 1, in, 1, out, 1, &err), ONR_OK);
    assert_int_equal(out[0]->numel, 4);
    for (int i = 0; i < 4; i++) assert_string_equal(((char **)out[0]->data)[i], "pad");
    tk_free_all(1, out);
    tk_node_free(n);
    tk_free_all(1, in);
}

static void test_onehot_rerun(void **state)
{
    (void)state;
    int64_t d[] = {2}, two = 2;
    const int64_t idx[] = {1, -1};
    const float vals[] = {0, 1};
    int64_t depth = 3;
    onr_tensor *in[] = {tk_i64(1, d, idx), i64s(depth), tk_f32(1, &two, vals)};
    onr_node *n = tk_node("OneHot");
    tstep t;
    ts_open(&t, n, 11, 3, in, 0, 1);
    ts_ok(&t, ts_create(&t));
    ts_ok(&t, ts_run(&t, 1, NULL));
    const float e1[] = {0, 1, 0, 0, 0, 1};
    assert_f32_eq(&t.outs[0], e1, 6);
    ((int64_t *)in[1]->data)[0] = 4;
    ts_ok(&t, ts_run(&t, 1, NULL));
    const float e2[] = {0, 1, 0, 0, 0, 0, 0, 1};
    int64_t ed[] = {2, 4};
    tk_assert_shape(&t.outs[0], 2, ed);
    assert_f32_eq(&t.outs[0], e2, 8);
    ts_close(&t);
    tk_node_free(n);
    tk_free_all(3, in);
}

static void test_compress_rerun(void **state)
{
    (void)state;
    int64_t d[] = {3, 2}, three = 3;
    const float v[] = {1, 2, 3, 4, 5, 6};
    const uint8_t c1[] = {1, 0, 1};
    onr_tensor *in[] = {tk_f32(2, d, v), tk_bool(1, &three, c1)};
    onr_node *n = tk_node("Compress");
    tk_attr_int(n, "axis", 0);
    tstep t;
    ts_open(&t, n, 11, 2, in, 0, 1);
    ts_ok(&t, ts_create(&t));
    ts_ok(&t, ts_run(&t, 1, NULL));
    const float e1[] = {1, 2, 5, 6};
    assert_f32_eq(&t.outs[0], e1, 4);
    ((uint8_t *)in[1]->data)[0] = 0;
    ((uint8_t *)in[1]->data)[1] = 1;
    ts_ok(&t, ts_run(&t, 1, NULL));
    const float e2[] = {3, 4, 5, 6};
    assert_f32_eq(&t.outs[0], e2, 4);
    ((uint8_t *)in[1]->data)[2] = 0;
    ts_ok(&t, ts_run(&t, 1, NULL));
    int64_t ed[] = {1, 2};
    tk_assert_shape(&t.outs[0], 2, ed);
    /* a condition longer than the small-value key: reshape on every run */
    int64_t big = 40;
    onr_tensor *xl = tk_f32(1, &big, NULL), *cl = tk_bool(1, &big, NULL);
    for (int i = 0; i < 40; i++) {
        ((float *)xl->data)[i] = (float)i;
        ((uint8_t *)cl->data)[i] = i % 3 == 0;
    }
    onr_node *n2 = tk_node("Compress");
    onr_tensor *in2[] = {xl, cl};
    tstep t2;
    ts_open(&t2, n2, 11, 2, in2, 0, 1);
    ts_ok(&t2, ts_create(&t2));
    ts_ok(&t2, ts_run(&t2, 1, NULL));
    assert_int_equal(t2.outs[0].numel, 14);
    ((uint8_t *)cl->data)[1] = 1;
    ((uint8_t *)cl->data)[38] = 1;
    ts_ok(&t2, ts_run(&t2, 1, NULL));
    assert_int_equal(t2.outs[0].numel, 16);
    assert_true(((float *)t2.outs[0].data)[1] == 1.f);
    assert_true(((float *)t2.outs[0].data)[15] == 39.f);
    ts_close(&t2);
    tk_node_free(n2);
    tk_free_all(2, in2);
    ts_close(&t);
    tk_node_free(n);
    tk_free_all(2, in);
}

static void test_nonzero_rerun(void **state)
{
    (void)state;
    /* 6 values (keyed on its values) and 48 (reshaped on every run) */
    const int64_t sizes[][2] = {{2, 3}, {6, 8}};
    for (int c = 0; c < 2; c++) {
        onr_tensor *x = tk_f32(2, sizes[c], NULL);
        memset(x->data, 0, onr_tensor_nbytes(x));
        float *xv = x->data;
        xv[1] = 1;
        onr_node *n = tk_node("NonZero");
        onr_tensor *in[] = {x};
        tstep t;
        ts_open(&t, n, 13, 1, in, 0, 1);
        ts_ok(&t, ts_create(&t));
        ts_ok(&t, ts_run(&t, 1, NULL));
        int64_t e1d[] = {2, 1};
        tk_assert_shape(&t.outs[0], 2, e1d);
        const int64_t e1[] = {0, 1};
        tk_assert_eq_i64(&t.outs[0], e1, 2);
        int64_t last = x->numel - 1, cols = sizes[c][1];
        xv[last] = -3;
        xv[cols] = 0.5f; /* row 1, column 0 */
        ts_ok(&t, ts_run(&t, 1, NULL));
        int64_t e2d[] = {2, 3};
        tk_assert_shape(&t.outs[0], 2, e2d);
        const int64_t e2[] = {0, 1, last / cols, 1, 0, last % cols};
        tk_assert_eq_i64(&t.outs[0], e2, 6);
        xv[1] = xv[last] = xv[cols] = 0;
        ts_ok(&t, ts_run(&t, 1, NULL));
        assert_int_equal(t.outs[0].numel, 0);
        ts_close(&t);
        tk_node_free(n);
        onr_tensor_free(x);
    }
}

/* CumSum's axis (input 1) sets the geometry, not the shape: a new value on
 * the same step recomputes it. A bad value is an error from reshape when the
 * axis is a constant, from run when it is an activation (whose buffer may
 * hold anything before its producer runs). */
static void test_cumsum_axis(void **state)
{
    (void)state;
    int64_t d[] = {2, 3};
    const float v[] = {1, 2, 3, 4, 5, 6};
    for (int half = 0; half < 2; half++) {
        onr_tensor *x = tk_f32(2, d, v);
        if (half) {
            uint16_t h[6];
            for (int i = 0; i < 6; i++) h[i] = onr_float_to_half(v[i]);
            onr_tensor_free(x);
            x = tk_typed(ONR_FLOAT16, 2, d, h);
        }
        onr_tensor *ax = i64s(0);
        onr_tensor *in[] = {x, ax};
        onr_node *n = tk_node("CumSum");
        tstep t;
        ts_open(&t, n, 14, 2, in, 0, 1);
        ts_ok(&t, ts_create(&t));
        int changed;
        ts_ok(&t, ts_run(&t, 1, &changed));
        const float e0[] = {1, 2, 3, 5, 7, 9}, e1[] = {1, 3, 6, 4, 9, 15};
        for (int i = 0; i < 6; i++) {
            float g = half ? onr_half_to_float(((uint16_t *)t.outs[0].data)[i])
                           : ((float *)t.outs[0].data)[i];
            assert_true(g == e0[i]);
        }
        ((int64_t *)ax->data)[0] = -1;
        ts_ok(&t, ts_run(&t, 1, &changed));
        assert_true(changed);
        for (int i = 0; i < 6; i++) {
            float g = half ? onr_half_to_float(((uint16_t *)t.outs[0].data)[i])
                           : ((float *)t.outs[0].data)[i];
            assert_true(g == e1[i]);
        }
        /* a bad value from an activation: reshape passes, run reports it */
        ((int64_t *)ax->data)[0] = 7;
        assert_int_equal(onr_step_reshape(&t.s, 1, NULL, &t.err), ONR_OK);
        expect_err(ts_run(&t, 1, NULL), &t.err, ONR_E_MODEL, "axis 7 is out of range for rank 2");
        /* then a good one again */
        ((int64_t *)ax->data)[0] = 1;
        ts_ok(&t, ts_run(&t, 1, NULL));
        ts_close(&t);
        /* a bad constant axis: reshape reports it */
        ((int64_t *)ax->data)[0] = -3;
        ts_open(&t, n, 14, 2, in, 2u, 1);
        ts_ok(&t, ts_create(&t));
        expect_err(onr_step_reshape(&t.s, 1, NULL, &t.err), &t.err, ONR_E_MODEL, "axis -3");
        ts_close(&t);
        onr_tensor *out[1];
        onr_err err = {0};
        expect_err(tk_run_const(n, 14, 2, in, 2u, 1, out, 1, &err), &err, ONR_E_MODEL, "axis -3");
        tk_free_all(1, out);
        expect_err(tk_run(n, 14, 2, in, 1, out, 1, &err), &err, ONR_E_MODEL, "axis -3");
        tk_free_all(1, out);
        tk_node_free(n);
        tk_free_all(2, in);
    }
}

/* Trilu's k is not a shape input: a new k on the same step changes the
 * result without a reshape. */
static void test_trilu_k_at_run(void **state)
{
    (void)state;
    int64_t d[] = {2, 2};
    const int64_t v[] = {1, 2, 3, 4};
    onr_tensor *in[] = {tk_i64(2, d, v), i64s(0)};
    onr_node *n = tk_node("Trilu");
    tk_attr_int(n, "upper", 0);
    tstep t;
    ts_open(&t, n, 14, 2, in, 0, 1);
    ts_ok(&t, ts_create(&t));
    int changed;
    ts_ok(&t, ts_run(&t, 1, &changed));
    const int64_t e0[] = {1, 0, 3, 4}, e1[] = {1, 2, 3, 4}, em1[] = {0, 0, 3, 0};
    tk_assert_eq_i64(&t.outs[0], e0, 4);
    ((int64_t *)in[1]->data)[0] = 1;
    ts_ok(&t, ts_run(&t, 1, &changed));
    assert_false(changed);
    tk_assert_eq_i64(&t.outs[0], e1, 4);
    ((int64_t *)in[1]->data)[0] = -1;
    ts_ok(&t, ts_run(&t, 1, &changed));
    tk_assert_eq_i64(&t.outs[0], em1, 4);
    ts_close(&t);
    tk_node_free(n);
    tk_free_all(2, in);
}

/* ---- the registry entries --------------------------------------------------------- */

static void test_impls(void **state)
{
    (void)state;
    const struct {
        const char *op;
        int64_t opset;
        uint32_t shape_inputs;
    } cases[] = {{"Gather", 13, 0},         {"GatherElements", 13, 0}, {"GatherND", 13, 0},
                 {"ScatterND", 18, 0},      {"Scatter", 9, 0},         {"ScatterElements", 18, 0},
                 {"NonZero", 13, 1},        {"OneHot", 11, 2},         {"Compress", 11, 2},
                 {"Constant", 13, 0},       {"ConstantOfShape", 9, 1}, {"Range", 11, 7},
                 {"Trilu", 14, 0},          {"CumSum", 14, 2},         {"EyeLike", 9, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const onr_op *op = onr_op_find("", cases[i].op, cases[i].opset);
        assert_non_null(op);
        const onr_op_impl *impl = op->impl;
        if (!impl->reshape || !impl->run)
            fail_msg("%s is not on the create/reshape/run contract", cases[i].op);
        if (impl->shape_inputs != cases[i].shape_inputs)
            fail_msg("%s: shape_inputs %#x, expected %#x", cases[i].op, impl->shape_inputs,
                     cases[i].shape_inputs);
        /* Gather may read its table in place in the mapping (ops.h) */
        assert_int_equal(impl->flags, strcmp(cases[i].op, "Gather") == 0 ? ONR_OP_LAZY_IN0 : 0);
    }
}

/* ---- constant inputs: nothing is packed, the results do not change ------------ */

static void run_both(onr_node *n, int64_t opset, int n_in, onr_tensor **in, uint32_t mask)
{
    onr_tensor *a[1], *b[1];
    onr_err err = {0};
    if (tk_run(n, opset, n_in, in, 1, a, 1, &err)) fail_msg("%s: %s", n->op_type, err.msg);
    if (tk_run_const(n, opset, n_in, in, mask, 1, b, 1, &err))
        fail_msg("%s (const): %s", n->op_type, err.msg);
    assert_int_equal(tk_last_consumed, 0);
    assert_int_equal(a[0]->dtype, b[0]->dtype);
    tk_assert_shape(b[0], a[0]->rank, a[0]->dims);
    assert_memory_equal(a[0]->data, b[0]->data, onr_tensor_nbytes(a[0]));
    tk_free_all(1, a);
    tk_free_all(1, b);
}

static void test_const_inputs(void **state)
{
    (void)state;
    int64_t d[] = {5, 4}, di[] = {3};
    onr_tensor *x = tk_rand_f32(2, d, 7);
    const int64_t idx[] = {4, -5, 2};
    onr_tensor *ind = tk_i64(1, di, idx);
    onr_tensor *in[] = {x, ind};
    onr_node *n = tk_node("Gather");
    for (uint32_t mask = 1; mask < 4; mask++) run_both(n, 13, 2, in, mask);
    tk_node_free(n);
    int64_t two = 2;
    const float vals[] = {-1, 1};
    onr_tensor *oin[] = {ind, i64s(6), tk_f32(1, &two, vals)};
    n = tk_node("OneHot");
    for (uint32_t mask = 1; mask < 8; mask++) run_both(n, 11, 3, oin, mask);
    tk_node_free(n);
    onr_tensor *rin[] = {i64s(3), i64s(-9), i64s(-2)};
    n = tk_node("Range");
    run_both(n, 11, 3, rin, 7);
    tk_node_free(n);
    onr_tensor *cin[] = {x, i64s(1)};
    n = tk_node("CumSum");
    tk_attr_int(n, "reverse", 1);
    run_both(n, 14, 2, cin, 2);
    tk_node_free(n);
    onr_tensor_free(cin[1]);
    onr_tensor_free(oin[1]);
    onr_tensor_free(oin[2]);
    tk_free_all(3, rin);
    tk_free_all(2, in);
}

/* ---- Constant: each value form --------------------------------------------------- */

static void test_constant_forms(void **state)
{
    (void)state;
    onr_tensor *out[1];
    onr_err err = {0};
    onr_node *n = tk_node("Constant");
    const float fv[] = {0.5f, -1, 3};
    tk_attr_floats(n, "value_floats", 3, fv);
    assert_int_equal(tk_run(n, 13, 0, NULL, 1, out, 1, &err), ONR_OK);
    assert_f32_eq(out[0], fv, 3);
    tk_free_all(1, out);
    tk_node_free(n);
    n = tk_node("Constant");
    tk_attr_int(n, "value_int", -7);
    assert_int_equal(tk_run(n, 13, 0, NULL, 1, out, 1, &err), ONR_OK);
    assert_int_equal(out[0]->rank, 0);
    assert_int_equal(((int64_t *)out[0]->data)[0], -7);
    tk_free_all(1, out);
    tk_node_free(n);
    n = tk_node("Constant");
    onr_attr *a;
    n->attrs = calloc(1, sizeof *n->attrs);
    n->n_attr = 1;
    a = &n->attrs[0];
    a->name = onr_strdup("value_strings");
    a->type = ONR_ATTR_STRINGS;
    a->n = 2;
    a->strings = calloc(2, sizeof(char *));
    a->strings[0] = onr_strdup("x");
    a->strings[1] = onr_strdup("yz");
    assert_int_equal(tk_run(n, 13, 0, NULL, 1, out, 1, &err), ONR_OK);
    assert_int_equal(out[0]->dtype, ONR_STRING);
    assert_int_equal(out[0]->numel, 2);
    assert_string_equal(((char **)out[0]->data)[1], "yz");
    tk_free_all(1, out);
    tk_node_free(n);
    n = tk_node("Constant");
    int64_t d[] = {2, 3};
    const int64_t iv[] = {1, 2, 3, 4, 5, 6};
    tk_attr_tensor(n, "value", tk_i64(2, d, iv));
    assert_int_equal(tk_run(n, 13, 0, NULL, 1, out, 1, &err), ONR_OK);
    tk_assert_shape(out[0], 2, d);
    tk_assert_eq_i64(out[0], iv, 6);
    tk_free_all(1, out);
    tk_node_free(n);
}

/* ---- geometry in params against naive references --------------------------------- */

static uint32_t rng_next(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Gather over every axis of several shapes, 1/2/4/8-byte elements, at 1
 * and 4 threads, the same step re-bound to each new shape. */
static void test_gather_reference(void **state)
{
    (void)state;
    const onr_dtype types[] = {ONR_UINT8, ONR_FLOAT16, ONR_FLOAT, ONR_INT64};
    const int64_t shapes[][3] = {{7, 1, 5}, {3, 4, 2}, {2, 9, 33}, {40, 30, 300}};
    uint32_t seed = 11;
    for (int ti = 0; ti < 4; ti++)
        for (int axis = -3; axis < 3; axis++) {
            onr_node *n = tk_node("Gather");
            tk_attr_int(n, "axis", axis);
            onr_tensor *x0 = tk_typed(types[ti], 3, shapes[0], NULL);
            int64_t idn[] = {2, 3};
            onr_tensor *i0 = tk_i64(2, idn, NULL);
            memset(i0->data, 0, onr_tensor_nbytes(i0));
            onr_tensor *in[] = {x0, i0};
            tstep t;
            ts_open(&t, n, 13, 2, in, 0, 1);
            ts_ok(&t, ts_create(&t));
            for (int si = 0; si < 4; si++) {
                onr_tensor *x = tk_typed(types[ti], 3, shapes[si], NULL);
                size_t esz = onr_dtype_size(types[ti]);
                unsigned char *xb = x->data;
                for (size_t b = 0; b < onr_tensor_nbytes(x); b++) xb[b] = (unsigned char)rng_next(&seed);
                int ax = axis < 0 ? axis + 3 : axis;
                int64_t D = shapes[si][ax];
                onr_tensor *ind = tk_i64(2, idn, NULL);
                for (int64_t i = 0; i < ind->numel; i++)
                    ((int64_t *)ind->data)[i] = (int64_t)(rng_next(&seed) % (uint32_t)(2 * D)) - D;
                t.s.in[0] = x;
                t.s.in[1] = ind;
                ts_ok(&t, ts_run(&t, si == 3 ? 4 : 1, NULL));
                int64_t outer = 1, inner = 1;
                for (int k = 0; k < ax; k++) outer *= shapes[si][k];
                for (int k = ax + 1; k < 3; k++) inner *= shapes[si][k];
                assert_int_equal(t.outs[0].rank, 4);
                assert_int_equal(t.outs[0].numel, outer * 6 * inner);
                const unsigned char *yb = t.outs[0].data;
                for (int64_t o = 0; o < outer; o++)
                    for (int64_t j = 0; j < 6; j++) {
                        int64_t v = ((int64_t *)ind->data)[j];
                        v = v < 0 ? v + D : v;
                        assert_memory_equal(yb + (size_t)((o * 6 + j) * inner) * esz,
                                            xb + (size_t)((o * D + v) * inner) * esz,
                                            (size_t)inner * esz);
                    }
                onr_tensor_free(x);
                onr_tensor_free(ind);
            }
            t.s.in[0] = x0;
            t.s.in[1] = i0;
            ts_close(&t);
            tk_node_free(n);
            onr_tensor_free(x0);
            onr_tensor_free(i0);
        }
}

/* GatherElements and ScatterElements (add) on 3-D data along each axis,
 * with indices smaller than data on the other axes, against loops. */
static void test_elements_reference(void **state)
{
    (void)state;
    int64_t xd[] = {3, 4, 5};
    uint32_t seed = 5;
    for (int axis = 0; axis < 3; axis++) {
        int64_t id[] = {2, 3, 4};
        id[axis] = 6; /* longer than data along the axis is fine */
        onr_tensor *x = tk_f32(3, xd, NULL), *ind = tk_i64(3, id, NULL), *u = tk_f32(3, id, NULL);
        for (int64_t i = 0; i < x->numel; i++) ((float *)x->data)[i] = (float)i;
        for (int64_t i = 0; i < ind->numel; i++) {
            ((int64_t *)ind->data)[i] =
                (int64_t)(rng_next(&seed) % (uint32_t)(2 * xd[axis])) - xd[axis];
            ((float *)u->data)[i] = (float)(i % 7) - 3;
        }
        onr_node *g = tk_node("GatherElements");
        tk_attr_int(g, "axis", axis - 3);
        onr_tensor *gin[] = {x, ind}, *gy[1];
        onr_err err = {0};
        if (tk_run(g, 13, 2, gin, 1, gy, 1, &err)) fail_msg("%s", err.msg);
        onr_node *s = tk_node("ScatterElements");
        tk_attr_int(s, "axis", axis);
        tk_attr_string(s, "reduction", "add");
        onr_tensor *sin[] = {x, ind, u}, *sy[1];
        if (tk_run(s, 16, 3, sin, 1, sy, 1, &err)) fail_msg("%s", err.msg);
        float *ref = calloc((size_t)x->numel, sizeof(float));
        memcpy(ref, x->data, onr_tensor_nbytes(x));
        int64_t c[3];
        for (c[0] = 0; c[0] < id[0]; c[0]++)
            for (c[1] = 0; c[1] < id[1]; c[1]++)
                for (c[2] = 0; c[2] < id[2]; c[2]++) {
                    int64_t q = (c[0] * id[1] + c[1]) * id[2] + c[2];
                    int64_t v = ((int64_t *)ind->data)[q];
                    int64_t xc[3] = {c[0], c[1], c[2]};
                    xc[axis] = v < 0 ? v + xd[axis] : v;
                    int64_t off = (xc[0] * xd[1] + xc[1]) * xd[2] + xc[2];
                    assert_true(((float *)gy[0]->data)[q] == ((float *)x->data)[off]);
                    ref[off] += ((float *)u->data)[q];
                }
        assert_f32_eq(sy[0], ref, x->numel);
        free(ref);
        tk_free_all(1, gy);
        tk_free_all(1, sy);
        tk_node_free(g);
        tk_node_free(s);
        onr_tensor *fr[] = {x, ind, u};
        tk_free_all(3, fr);
    }
}

/* GatherND with batch_dims 0..2 and ScatterND slices, one step re-bound
 * from one shape to the next. */
static void test_nd_reference(void **state)
{
    (void)state;
    int64_t xd[] = {2, 3, 4, 5};
    onr_tensor *x = tk_f32(4, xd, NULL);
    for (int64_t i = 0; i < x->numel; i++) ((float *)x->data)[i] = (float)i;
    for (int b = 0; b < 3; b++) {
        onr_node *n = tk_node("GatherND");
        tk_attr_int(n, "batch_dims", b);
        for (int k = 1; k <= 4 - b; k++) {
            /* indices: batch dims, then 2 tuples of k */
            int64_t id[4];
            int q = 0;
            for (int i = 0; i < b; i++) id[q++] = xd[i];
            id[q++] = 2;
            id[q++] = k;
            onr_tensor *ind = tk_i64(q, id, NULL);
            int64_t *iv = ind->data;
            for (int64_t i = 0; i < ind->numel; i++) {
                int ax = b + (int)(i % k);
                iv[i] = (i * 7 + 3) % xd[ax] - (i % 2 ? xd[ax] : 0);
            }
            onr_tensor *in[] = {x, ind}, *y[1];
            onr_err err = {0};
            if (tk_run(n, 13, 2, in, 1, y, 1, &err)) fail_msg("b %d k %d: %s", b, k, err.msg);
            int64_t batches = 1, slice = 1;
            for (int i = 0; i < b; i++) batches *= xd[i];
            for (int i = b + k; i < 4; i++) slice *= xd[i];
            assert_int_equal(y[0]->numel, batches * 2 * slice);
            for (int64_t bi = 0; bi < batches; bi++)
                for (int64_t t = 0; t < 2; t++) {
                    const int64_t *tp = iv + (bi * 2 + t) * k;
                    int64_t off = 0, stride = slice;
                    for (int j = k - 1; j >= 0; j--) {
                        int64_t v = tp[j] < 0 ? tp[j] + xd[b + j] : tp[j];
                        off += v * stride;
                        stride *= xd[b + j];
                    }
                    off += bi * stride;
                    assert_memory_equal((float *)y[0]->data + (bi * 2 + t) * slice,
                                        (float *)x->data + off, (size_t)slice * sizeof(float));
                }
            tk_free_all(1, y);
            onr_tensor_free(ind);
        }
        tk_node_free(n);
    }
    /* ScatterND of rows [1] and [-2] of a 2-D slice shape: the last one wins */
    int64_t id[] = {2, 1}, ud[] = {2, 4, 5};
    const int64_t rows[] = {1, -2};
    int64_t x3d[] = {2, 4, 5};
    onr_tensor *x3 = tk_f32(3, x3d, NULL);
    memset(x3->data, 0, onr_tensor_nbytes(x3));
    onr_tensor *u = tk_f32(3, ud, NULL);
    for (int64_t i = 0; i < u->numel; i++) ((float *)u->data)[i] = (float)(i + 1);
    onr_tensor *sin[] = {x3, tk_i64(2, id, rows), u}, *y[1];
    onr_node *n = tk_node("ScatterND");
    onr_err err = {0};
    if (tk_run(n, 13, 3, sin, 1, y, 1, &err)) fail_msg("%s", err.msg);
    for (int64_t i = 0; i < 20; i++) {
        assert_true(((float *)y[0]->data)[i] == (float)(i + 21)); /* row 0 = -2: update 1 */
        assert_true(((float *)y[0]->data)[20 + i] == (float)(i + 1));
    }
    tk_free_all(1, y);
    tk_node_free(n);
    tk_free_all(3, sin);
    onr_tensor_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_range_rerun),
        cmocka_unit_test(test_constantofshape_rerun),
        cmocka_unit_test(test_onehot_rerun),
        cmocka_unit_test(test_compress_rerun),
        cmocka_unit_test(test_nonzero_rerun),
        cmocka_unit_test(test_cumsum_axis),
        cmocka_unit_test(test_trilu_k_at_run),
        cmocka_unit_test(test_impls),
        cmocka_unit_test(test_const_inputs),
        cmocka_unit_test(test_constant_forms),
        cmocka_unit_test(test_gather_reference),
        cmocka_unit_test(test_elements_reference),
        cmocka_unit_test(test_nd_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
