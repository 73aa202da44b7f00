/*
 * test_gradient.c - Gradient (ai.onnx.preview.training, opset 1), which the
 * planner expands into standard nodes (src/plan/pass_gradient.c), and
 * SumToShape (org.onnxrun), the operator that expansion adds.
 *
 * Each backward rule is checked on a small model built with pbw.h whose
 * outputs are y and the Gradient's outputs: the gradients must match
 * central finite differences of sum(y) (a non-scalar y is seeded with
 * ones), computed here in double by running the model at perturbed inputs
 * (the forward kernels are judged by the conformance suites; models are
 * float64 unless the case is about another type). Closed forms check the
 * semantics finite differences cannot see: inputs that differ from the
 * named tensors, an intermediate value in xs, y in xs. Errors are checked
 * by their messages.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kutil.h"
#include "pbw.h"

enum { F32 = 1, I64 = 7, F16 = 10, F64 = 11 };
#define GRAD "ai.onnx.preview.training"
#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- building models -------------------------------------------------------- */

static void input(pbw *g, const char *name, int dt, int rank, const int64_t *dims)
{
    pbw_value_info(g, 11, name, dt, rank, dims);
}

static void output(pbw *g, const char *name, int dt) { pbw_value_info(g, 12, name, dt, -1, NULL); }

static void init_f64(pbw *g, const char *name, int rank, const int64_t *dims, const double *v,
                     size_t n)
{
    pbw t = {0};
    pbw_tensor_head(&t, name, F64, rank, dims);
    pbw_bytes(&t, 9, v, n * sizeof *v);
    pbw_msg(g, 5, &t);
}

static void init_i64(pbw *g, const char *name, int n, const int64_t *v)
{
    const int64_t d = n;
    pbw_init_i64(g, name, 1, &d, v, (size_t)n);
}

static int count(const char *const *l)
{
    int n = 0;
    while (l && l[n]) n++;
    return n;
}

/* A Gradient node named `name` with inputs ins (the values at which to
 * differentiate), outputs outs, xs, zs (may be NULL) and y. */
static void gradient(pbw *g, const char *name, const char *const *ins, const char *const *outs,
                     const char *const *xs, const char *const *zs, const char *y)
{
    pbw a = {0};
    pbw_attr_strings(&a, "xs", xs, (size_t)count(xs));
    if (zs) pbw_attr_strings(&a, "zs", zs, (size_t)count(zs));
    pbw_attr_string(&a, "y", y);
    pbw_node_in(g, 1, "Gradient", GRAD, name, ins, outs, &a);
}

/* The model around graph g (consumed), importing ai.onnx `opset` and the
 * training domain. */
static pbw model(pbw *g, int64_t opset)
{
    const char *const dom[2] = {"", GRAD};
    const int64_t ver[2] = {opset, 1};
    return pbw_model_opsets(g, 8, 2, dom, ver);
}

/* The common case: graph g (consumed) computes y from one input x of type
 * dt and shape (rank, dims); a Gradient of y w.r.t. x is added, with y
 * and dx the outputs. */
static pbw dy_dx_model(pbw *g, int dt, int rank, const int64_t *dims, int64_t opset)
{
    gradient(g, "g", NAMES("x"), NAMES("dx"), NAMES("x"), NULL, "y");
    input(g, "x", dt, rank, dims);
    output(g, "y", dt), output(g, "dx", dt);
    return model(g, opset);
}

/* ---- running ------------------------------------------------------------------ */

/* A runtime input: its shape and values (bound positionally). */
typedef struct tin {
    int rank;
    int64_t dims[4];
    const double *v;
} tin;

static int64_t tin_numel(const tin *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->rank; d++) n *= t->dims[d];
    return n;
}

static onr_session *open_model(const pbw *m)
{
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(m->b, m->n, NULL, &s);
    if (st) fail_msg("open failed (%s): %s", onr_status_name(st), onr_session_errmsg(s));
    return s;
}

/* Run s on inputs in[0..n) (values vals[k], type dt). */
static void run(onr_session *s, onr_dtype dt, int n, const tin *in, double *const *vals)
{
    onr_tensor *t[8];
    for (int k = 0; k < n; k++) {
        t[k] = onr_tensor_new(dt, in[k].rank, in[k].dims);
        assert_non_null(t[k]);
        for (int64_t i = 0; i < tin_numel(&in[k]); i++) onr_set_f64(t[k], i, vals[k][i]);
    }
    onr_status st = onr_session_run(s, n, NULL, (const onr_tensor *const *)t);
    for (int k = 0; k < n; k++) onr_tensor_free(t[k]);
    if (st) fail_msg("run failed (%s): %s", onr_status_name(st), onr_session_errmsg(s));
}

static double out_sum(const onr_session *s, int i)
{
    const onr_tensor *y = onr_session_output(s, i);
    double sum = 0;
    for (int64_t k = 0; k < y->numel; k++) sum += onr_get_f64(y, k);
    return sum;
}

/* Check a model whose outputs are y, then the gradients of sum(y) w.r.t.
 * inputs xi[0..n_x): each element against a central difference with step
 * h, within tol * (1 + |fd|). Gradient outputs must have their input's
 * shape and type. */
static void check_fd(const pbw *m, onr_dtype dt, int n_in, const tin *in, int n_x, const int *xi,
                     double h, double tol)
{
    onr_session *s = open_model(m);
    double *vals[8];
    for (int k = 0; k < n_in; k++) {
        vals[k] = malloc((size_t)tin_numel(&in[k]) * sizeof(double));
        memcpy(vals[k], in[k].v, (size_t)tin_numel(&in[k]) * sizeof(double));
    }
    run(s, dt, n_in, in, vals);
    double *grads[8];
    for (int j = 0; j < n_x; j++) {
        const tin *x = &in[xi[j]];
        const onr_tensor *g = onr_session_output(s, 1 + j);
        assert_non_null(g);
        assert_int_equal(g->dtype, dt);
        tk_assert_shape(g, x->rank, x->dims);
        grads[j] = malloc((size_t)tin_numel(x) * sizeof(double));
        for (int64_t i = 0; i < tin_numel(x); i++) grads[j][i] = onr_get_f64(g, i);
    }
    for (int j = 0; j < n_x; j++) {
        double *v = vals[xi[j]];
        for (int64_t i = 0; i < tin_numel(&in[xi[j]]); i++) {
            double keep = v[i];
            v[i] = keep + h;
            run(s, dt, n_in, in, vals);
            double up = out_sum(s, 0);
            v[i] = keep - h;
            run(s, dt, n_in, in, vals);
            double down = out_sum(s, 0);
            v[i] = keep;
            double fd = (up - down) / (2 * h);
            if (fabs(grads[j][i] - fd) > tol * (1 + fabs(fd)))
                fail_msg("gradient %d element %lld: %.9g, finite differences give %.9g", j,
                         (long long)i, grads[j][i], fd);
        }
    }
    for (int j = 0; j < n_x; j++) free(grads[j]);
    for (int k = 0; k < n_in; k++) free(vals[k]);
    onr_session_free(s);
}

/* float64 models: step and tolerance */
#define H64 1e-6
#define TOL64 1e-6

/* Run once and return output i's values (caller frees); n set to its count. */
static double *run_values(const pbw *m, onr_dtype dt, int n_in, const tin *in, int i, int64_t *n)
{
    onr_session *s = open_model(m);
    double *vals[8];
    for (int k = 0; k < n_in; k++) vals[k] = (double *)in[k].v;
    run(s, dt, n_in, in, vals);
    const onr_tensor *t = onr_session_output(s, i);
    double *r = malloc((size_t)t->numel * sizeof *r + 1);
    for (int64_t k = 0; k < t->numel; k++) r[k] = onr_get_f64(t, k);
    *n = t->numel;
    onr_session_free(s);
    return r;
}

static void expect_values(const pbw *m, int n_in, const tin *in, int i, int64_t n,
                          const double *want, double tol)
{
    int64_t got_n;
    double *got = run_values(m, ONR_DOUBLE, n_in, in, i, &got_n);
    assert_int_equal(got_n, n);
    for (int64_t k = 0; k < n; k++)
        if (fabs(got[k] - want[k]) > tol)
            fail_msg("output %d element %lld: %.9g, expected %.9g", i, (long long)k, got[k], want[k]);
    free(got);
}

/* Opening the model fails with `code` and a message containing needle. */
static void expect_refused(pbw *m, onr_status code, const char *needle)
{
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(m->b, m->n, NULL, &s);
    const char *msg = s ? onr_session_errmsg(s) : "";
    if (st == ONR_OK) fail_msg("opened; expected an error mentioning '%s'", needle);
    if (!strstr(msg, needle)) fail_msg("message '%s' lacks '%s'", msg, needle);
    if (st != code)
        fail_msg("status %s, expected %s (%s)", onr_status_name(st), onr_status_name(code), msg);
    onr_session_free(s);
    free(m->b);
}

/* A model y = op(a, b) (a binary operator at opset 13) with y and its
 * gradients w.r.t. a and b as outputs, at shapes da and db. */
static pbw binary_model(const char *op, int ra, const int64_t *da, int rb, const int64_t *db)
{
    pbw g = {0};
    pbw_node(&g, op, "op", NAMES("a", "b"), NAMES("y"), NULL);
    gradient(&g, "g", NAMES("a", "b"), NAMES("da", "db"), NAMES("a", "b"), NULL, "y");
    input(&g, "a", F64, ra, da);
    input(&g, "b", F64, rb, db);
    output(&g, "y", F64), output(&g, "da", F64), output(&g, "db", F64);
    return model(&g, 13);
}

static const double V24[24] = {0.3,  -1.2, 0.7,  1.9,  -0.4, 0.25, 1.1, -0.8, 0.55, -1.6, 0.9,  0.15,
                               -0.6, 1.3,  -0.2, 0.45, 1.7,  -1.1, 0.6, 0.35, -0.9, 1.25, -0.3, 0.8};
static const double P24[24] = {0.3, 1.2, 0.7, 1.9, 0.4, 0.25, 1.1, 0.8, 0.55, 1.6, 0.9, 0.15,
                               0.6, 1.3, 0.2, 0.45, 1.7, 1.1, 0.6, 0.35, 0.9, 1.25, 0.3, 0.8};
static const int XI2[2] = {0, 1}, XI3[3] = {0, 1, 2}, XI1[1] = {0};

/* n deterministic values in [-1, 1) away from 0 */
static void fill(double *v, int n, int seed)
{
    for (int i = 0; i < n; i++) v[i] = sin(1.7 * (i + 1) + seed) * 0.8 + (i % 2 ? 0.2 : -0.2);
}

/* ---- elementwise rules ---------------------------------------------------------- */

/* Add, Sub, Mul, Div with broadcasting in either operand and a non-scalar y */
static void test_binary_broadcast(void **state)
{
    (void)state;
    const char *ops[4] = {"Add", "Sub", "Mul", "Div"};
    const int64_t d23[2] = {2, 3}, d3[1] = {3}, d21[2] = {2, 1}, d13[2] = {1, 3}, d223[3] = {2, 2, 3};
    for (int o = 0; o < 4; o++) {
        const double *bv = strcmp(ops[o], "Div") == 0 ? P24 + 5 : V24 + 5;
        struct { int ra; const int64_t *da; int rb; const int64_t *db; } sh[4] = {
            {2, d23, 2, d23}, {2, d23, 1, d3}, {2, d21, 2, d13}, {1, d3, 3, d223}};
        for (int c = 0; c < 4; c++) {
            pbw m = binary_model(ops[o], sh[c].ra, sh[c].da, sh[c].rb, sh[c].db);
            tin in[2] = {{sh[c].ra, {0}, V24}, {sh[c].rb, {0}, bv}};
            memcpy(in[0].dims, sh[c].da, sizeof(int64_t) * (size_t)sh[c].ra);
            memcpy(in[1].dims, sh[c].db, sizeof(int64_t) * (size_t)sh[c].rb);
            check_fd(&m, ONR_DOUBLE, 2, in, 2, XI2, H64, TOL64);
            free(m.b);
        }
    }
}

/* SumToShape stays only where an operand was broadcast (static shapes):
 * the others are copies, removed by the planner */
static void test_sum_to_shape_removed(void **state)
{
    (void)state;
    const int64_t d23[2] = {2, 3}, d3[1] = {3}, dn3[2] = {-1, 3};
    struct { const int64_t *da, *db; int rb, want; } c[3] = {
        {d23, d23, 2, 0}, {d23, d3, 1, 1}, {dn3, dn3, 2, 2}};
    for (int k = 0; k < 3; k++) {
        pbw m = binary_model("Add", 2, c[k].da, c[k].rb, c[k].db);
        onr_session *s = open_model(&m);
        assert_int_equal(tk_count_steps(s, "SumToShape"), c[k].want);
        onr_session_free(s);
        free(m.b);
    }
}

/* y = op(x) for each unary rule, at values away from the kinks */
static void test_unary(void **state)
{
    (void)state;
    const char *ops[] = {"Neg", "Identity", "Sqrt", "Exp", "Log", "Relu", "Sigmoid", "Tanh", "Abs"};
    const int64_t d[2] = {2, 3};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        int positive = strcmp(ops[o], "Sqrt") == 0 || strcmp(ops[o], "Log") == 0;
        pbw g = {0};
        pbw_node(&g, ops[o], "op", NAMES("x"), NAMES("y"), NULL);
        pbw m = dy_dx_model(&g, F64, 2, d, 13);
        tin in[1] = {{2, {2, 3}, positive ? P24 : V24}};
        check_fd(&m, ONR_DOUBLE, 1, in, 1, XI1, H64, TOL64);
        free(m.b);
    }
}

/* Sum of three broadcast operands; a value read twice (x * x + x); an xs
 * y does not depend on gets zeros */
static void test_sum_and_accumulation(void **state)
{
    (void)state;
    const int64_t d23[2] = {2, 3}, d3[1] = {3}, d1[1] = {1};
    pbw g = {0};
    pbw_node(&g, "Sum", "s", NAMES("a", "b", "c"), NAMES("t"), NULL);
    pbw_node(&g, "Mul", "m", NAMES("t", "t"), NAMES("y"), NULL);
    gradient(&g, "g", NAMES("a", "b", "c"), NAMES("da", "db", "dc"), NAMES("a", "b", "c"), NULL, "y");
    input(&g, "a", F64, 2, d23), input(&g, "b", F64, 1, d3), input(&g, "c", F64, 1, d1);
    output(&g, "y", F64), output(&g, "da", F64), output(&g, "db", F64), output(&g, "dc", F64);
    pbw m = model(&g, 13);
    tin in[3] = {{2, {2, 3}, V24}, {1, {3}, V24 + 6}, {1, {1}, V24 + 9}};
    check_fd(&m, ONR_DOUBLE, 3, in, 3, XI3, H64, TOL64);
    free(m.b);

    /* y = x * x + x: dy/dx = 2x + 1 (x read three times); u unused: zeros */
    g = (pbw){0};
    pbw_node(&g, "Mul", "m", NAMES("x", "x"), NAMES("sq"), NULL);
    pbw_node(&g, "Add", "a", NAMES("sq", "x"), NAMES("y"), NULL);
    gradient(&g, "g", NAMES("x", "u"), NAMES("dx", "du"), NAMES("x", "u"), NULL, "y");
    input(&g, "x", F64, 1, d3), input(&g, "u", F64, 2, d23);
    output(&g, "y", F64), output(&g, "dx", F64), output(&g, "du", F64);
    m = model(&g, 13);
    tin in2[2] = {{1, {3}, V24}, {2, {2, 3}, V24}};
    const double want[3] = {2 * V24[0] + 1, 2 * V24[1] + 1, 2 * V24[2] + 1}, zeros[6] = {0};
    expect_values(&m, 2, in2, 1, 3, want, 1e-12);
    expect_values(&m, 2, in2, 2, 6, zeros, 0);
    check_fd(&m, ONR_DOUBLE, 2, in2, 2, XI2, H64, TOL64);
    free(m.b);
}

/* Pow with an exponent that is an input (both gradients), a float64
 * constant and an int64 constant (a's gradient only) */
static void test_pow(void **state)
{
    (void)state;
    const int64_t d23[2] = {2, 3}, d3[1] = {3};
    pbw m = binary_model("Pow", 2, d23, 1, d3);
    tin in[2] = {{2, {2, 3}, P24}, {1, {3}, V24 + 3}};
    check_fd(&m, ONR_DOUBLE, 2, in, 2, XI2, H64, TOL64);
    free(m.b);
    for (int ints = 0; ints < 2; ints++) {
        pbw g = {0};
        const double p = 3;
        const int64_t pi = 3;
        if (ints) init_i64(&g, "p", 1, &pi);
        else init_f64(&g, "p", 0, NULL, &p, 1);
        pbw_node(&g, "Pow", "pw", NAMES("x", "p"), NAMES("y"), NULL);
        m = dy_dx_model(&g, F64, 2, d23, 15);
        tin in1[1] = {{2, {2, 3}, V24}};
        check_fd(&m, ONR_DOUBLE, 1, in1, 1, XI1, H64, TOL64);
        free(m.b);
    }
}

/* ---- linear algebra --------------------------------------------------------------- */

static void test_matmul(void **state)
{
    (void)state;
    const int64_t d23[2] = {2, 3}, d34[2] = {3, 4}, d223[3] = {2, 2, 3}, d234[3] = {2, 3, 4},
                  d3[1] = {3}, d1234[4] = {1, 2, 3, 4}, d2134[4] = {2, 1, 3, 4}, d43[2] = {4, 3};
    struct { int ra; const int64_t *da; int rb; const int64_t *db; } sh[] = {
        {2, d23, 2, d34},   /* 2-D */
        {3, d223, 2, d34},  /* batched A, B broadcast */
        {2, d23, 3, d234},  /* A broadcast */
        {3, d223, 3, d234}, /* same batch */
        {3, d223, 4, d2134}, /* batch dims broadcast both ways: [2] vs [2,1] */
        {1, d3, 2, d34},    /* 1-D A */
        {2, d23, 1, d3},    /* 1-D B */
        {1, d3, 1, d3},     /* dot product */
        {4, d1234, 2, d43},
    };
    for (size_t c = 0; c < sizeof sh / sizeof sh[0]; c++) {
        pbw m = binary_model("MatMul", sh[c].ra, sh[c].da, sh[c].rb, sh[c].db);
        double va[24], vb[24];
        fill(va, 24, (int)c), fill(vb, 24, 10 + (int)c);
        tin in[2] = {{sh[c].ra, {0}, va}, {sh[c].rb, {0}, vb}};
        memcpy(in[0].dims, sh[c].da, sizeof(int64_t) * (size_t)sh[c].ra);
        memcpy(in[1].dims, sh[c].db, sizeof(int64_t) * (size_t)sh[c].rb);
        check_fd(&m, ONR_DOUBLE, 2, in, 2, XI2, H64, TOL64);
        free(m.b);
    }
}

/* Gemm, every transA/transB, alpha and beta, C of shape [N], [M,1] and [] */
static void test_gemm(void **state)
{
    (void)state;
    const int64_t dc[3][2] = {{4}, {2, 1}, {0}};
    const int rc[3] = {1, 2, 0};
    for (int t = 0; t < 8; t++) {
        int ta = t & 1, tb = t >> 1 & 1, ci = t % 3;
        int64_t da[2] = {ta ? 3 : 2, ta ? 2 : 3}, db[2] = {tb ? 4 : 3, tb ? 3 : 4};
        pbw g = {0}, a = {0};
        pbw_attr_int(&a, "transA", ta);
        pbw_attr_int(&a, "transB", tb);
        if (t & 4) {
            pbw_attr_float(&a, "alpha", 0.5f);
            pbw_attr_float(&a, "beta", -2.f);
        }
        pbw_node(&g, "Gemm", "gm", NAMES("a", "b", "c"), NAMES("y"), &a);
        gradient(&g, "g", NAMES("a", "b", "c"), NAMES("da", "db", "dc"), NAMES("a", "b", "c"), NULL,
                 "y");
        input(&g, "a", F64, 2, da), input(&g, "b", F64, 2, db), input(&g, "c", F64, rc[ci], dc[ci]);
        output(&g, "y", F64), output(&g, "da", F64), output(&g, "db", F64), output(&g, "dc", F64);
        pbw m = model(&g, 13);
        tin in[3] = {{2, {da[0], da[1]}, V24}, {2, {db[0], db[1]}, V24 + 6}, {rc[ci], {0}, V24 + 3}};
        memcpy(in[2].dims, dc[ci], sizeof dc[ci]);
        check_fd(&m, ONR_DOUBLE, 3, in, 3, XI3, H64, TOL64);
        free(m.b);
    }
}

/* ---- shape operators ------------------------------------------------------------------- */

/* y = w * f(x) (w a constant, so that each position of the result counts
 * differently) for f = Transpose (with and without perm), Reshape,
 * Flatten, Squeeze, Unsqueeze; and a Reshape whose shape comes from
 * Shape() of an active value (an integer path: no gradient through it) */
static void test_shape_ops(void **state)
{
    (void)state;
    const int64_t d234[3] = {2, 3, 4};
    double w[24];
    for (int i = 0; i < 24; i++) w[i] = 0.5 + 0.1 * i;
    for (int c = 0; c < 7; c++) {
        pbw g = {0}, a = {0};
        int64_t wd[4] = {0};
        int wr = 0;
        switch (c) {
        case 0: {
            const int64_t perm[3] = {1, 2, 0};
            pbw_attr_ints(&a, "perm", perm, 3);
            pbw_node(&g, "Transpose", "t", NAMES("x"), NAMES("f"), &a);
            wr = 3, wd[0] = 3, wd[1] = 4, wd[2] = 2;
            break;
        }
        case 1:
            pbw_node(&g, "Transpose", "t", NAMES("x"), NAMES("f"), NULL);
            wr = 3, wd[0] = 4, wd[1] = 3, wd[2] = 2;
            break;
        case 2: {
            const int64_t shp[2] = {6, -1};
            init_i64(&g, "shp", 2, shp);
            pbw_node(&g, "Reshape", "r", NAMES("x", "shp"), NAMES("f"), NULL);
            wr = 2, wd[0] = 6, wd[1] = 4;
            break;
        }
        case 3:
            pbw_attr_int(&a, "axis", 2);
            pbw_node(&g, "Flatten", "fl", NAMES("x"), NAMES("f"), &a);
            wr = 2, wd[0] = 6, wd[1] = 4;
            break;
        case 4: {
            const int64_t ax[2] = {0, 3};
            init_i64(&g, "ax", 2, ax);
            pbw_node(&g, "Unsqueeze", "u", NAMES("x", "ax"), NAMES("u1"), NULL);
            const int64_t ax0[1] = {0};
            init_i64(&g, "ax0", 1, ax0);
            pbw_node(&g, "Squeeze", "s", NAMES("u1", "ax0"), NAMES("f"), NULL);
            wr = 4, wd[0] = 2, wd[1] = 3, wd[2] = 1, wd[3] = 4;
            break;
        }
        case 5: /* Reshape to Shape(Transpose(x)): the shape path carries nothing */
            pbw_node(&g, "Transpose", "t", NAMES("x"), NAMES("xt"), NULL);
            pbw_node(&g, "Shape", "sh", NAMES("xt"), NAMES("shp"), NULL);
            pbw_node(&g, "Mul", "sq", NAMES("x", "x"), NAMES("x2"), NULL);
            pbw_node(&g, "Reshape", "r", NAMES("x2", "shp"), NAMES("f"), NULL);
            wr = 3, wd[0] = 4, wd[1] = 3, wd[2] = 2;
            break;
        default: /* an integer detour: Cast to int64 and back adds no gradient */
            pbw_attr_int(&a, "to", I64);
            pbw_node(&g, "Cast", "ci", NAMES("x"), NAMES("xi"), &a);
            a = (pbw){0};
            pbw_attr_int(&a, "to", F64);
            pbw_node(&g, "Cast", "cd", NAMES("xi"), NAMES("xd"), &a);
            pbw_node(&g, "Add", "ad", NAMES("x", "xd"), NAMES("f"), NULL);
            wr = 3, wd[0] = 2, wd[1] = 3, wd[2] = 4;
            break;
        }
        init_f64(&g, "w", wr, wd, w, 24);
        pbw_node(&g, "Mul", "mw", NAMES("f", "w"), NAMES("y"), NULL);
        pbw m = dy_dx_model(&g, F64, 3, d234, 13);
        tin in[1] = {{3, {2, 3, 4}, V24}};
        if (c == 6) {
            /* finite differences would see the integer steps of the detour:
             * the gradient is w exactly */
            expect_values(&m, 1, in, 1, 24, w, 0);
        } else {
            check_fd(&m, ONR_DOUBLE, 1, in, 1, XI1, H64, TOL64);
        }
        free(m.b);
    }
}

/* ReduceSum and ReduceMean: axes as attribute (ReduceSum-11, ReduceMean-13)
 * or input (ReduceSum-13, ReduceMean-18), keepdims 0 and 1, all axes */
static void test_reduce(void **state)
{
    (void)state;
    const int64_t d234[3] = {2, 3, 4};
    double w[24];
    for (int i = 0; i < 24; i++) w[i] = 1.0 - 0.07 * i;
    for (int c = 0; c < 16; c++) {
        int mean = c & 1, keep = c >> 1 & 1, as_input = c >> 2 & 1, all = c >> 3 & 1;
        const char *op = mean ? "ReduceMean" : "ReduceSum";
        int64_t opset = as_input ? (mean ? 18 : 13) : (mean ? 13 : 11);
        const int64_t axes[2] = {0, -1};
        pbw g = {0}, a = {0};
        pbw_attr_int(&a, "keepdims", keep);
        if (!all && !as_input) pbw_attr_ints(&a, "axes", axes, 2);
        if (!all && as_input) init_i64(&g, "axes", 2, axes);
        pbw_node(&g, op, "r", all || !as_input ? NAMES("x") : NAMES("x", "axes"), NAMES("s"), &a);
        /* y = s * s: the reduction's gradient is not uniform */
        pbw_node(&g, "Mul", "m", NAMES("s", "s"), NAMES("y"), NULL);
        pbw m = dy_dx_model(&g, F64, 3, d234, opset);
        tin in[1] = {{3, {2, 3, 4}, w}};
        check_fd(&m, ONR_DOUBLE, 1, in, 1, XI1, H64, TOL64);
        free(m.b);
    }
}

/* Softmax-13 along an axis and Softmax-11 (coerced to 2-D at axis), y
 * weighted (the sum of a softmax is constant) */
static void test_softmax(void **state)
{
    (void)state;
    const int64_t d234[3] = {2, 3, 4};
    double w[24];
    for (int i = 0; i < 24; i++) w[i] = 0.3 * ((i * 7) % 5) - 0.4;
    const int64_t opsets[4] = {13, 13, 11, 11}, axes[4] = {1, -1, 1, 0};
    for (int c = 0; c < 4; c++) {
        pbw g = {0}, a = {0};
        pbw_attr_int(&a, "axis", axes[c]);
        pbw_node(&g, "Softmax", "sm", NAMES("x"), NAMES("p"), &a);
        init_f64(&g, "w", 3, d234, w, 24);
        pbw_node(&g, "Mul", "m", NAMES("p", "w"), NAMES("y"), NULL);
        pbw m = dy_dx_model(&g, F64, 3, d234, opsets[c]);
        tin in[1] = {{3, {2, 3, 4}, V24}};
        check_fd(&m, ONR_DOUBLE, 1, in, 1, XI1, H64, TOL64);
        free(m.b);
    }
}

/* Concat along axis 1 and -1, three inputs of different widths */
static void test_concat(void **state)
{
    (void)state;
    const int64_t da[2] = {2, 1}, db[2] = {2, 3}, dc[2] = {2, 2}, dy[2] = {2, 6};
    double w[12];
    for (int i = 0; i < 12; i++) w[i] = 0.2 * i - 1;
    for (int c = 0; c < 2; c++) {
        pbw g = {0}, a = {0};
        pbw_attr_int(&a, "axis", c ? -1 : 1);
        pbw_node(&g, "Concat", "cc", NAMES("a", "b", "c"), NAMES("t"), &a);
        init_f64(&g, "w", 2, dy, w, 12);
        pbw_node(&g, "Mul", "m", NAMES("t", "w"), NAMES("y"), NULL);
        gradient(&g, "g", NAMES("a", "b", "c"), NAMES("da", "db", "dc"), NAMES("a", "b", "c"), NULL,
                 "y");
        input(&g, "a", F64, 2, da), input(&g, "b", F64, 2, db), input(&g, "c", F64, 2, dc);
        output(&g, "y", F64), output(&g, "da", F64), output(&g, "db", F64), output(&g, "dc", F64);
        pbw m = model(&g, 13);
        tin in[3] = {{2, {2, 1}, V24}, {2, {2, 3}, V24 + 2}, {2, {2, 2}, V24 + 8}};
        check_fd(&m, ONR_DOUBLE, 3, in, 3, XI3, H64, TOL64);
        free(m.b);
    }
}

/* A Constant node and an initializer on the path (no gradient for them),
 * and Cast between float types: a float32 model computing in float64 */
static void test_constant_and_cast(void **state)
{
    (void)state;
    const int64_t d3[1] = {3};
    pbw g = {0}, a = {0}, t = {0};
    const double cv[3] = {2, -1, 0.5};
    pbw_tensor_head(&t, NULL, F64, 1, d3);
    pbw_bytes(&t, 9, cv, sizeof cv);
    pbw_attr_tensor(&a, "value", &t);
    pbw_node(&g, "Constant", "k", NULL, NAMES("c"), &a);
    a = (pbw){0};
    pbw_attr_int(&a, "to", F64);
    pbw_node(&g, "Cast", "up", NAMES("x"), NAMES("xd"), &a);
    pbw_node(&g, "Mul", "m1", NAMES("xd", "c"), NAMES("t"), NULL);
    pbw_node(&g, "Mul", "m2", NAMES("t", "xd"), NAMES("t2"), NULL);
    a = (pbw){0};
    pbw_attr_int(&a, "to", F32);
    pbw_node(&g, "Cast", "down", NAMES("t2"), NAMES("y"), &a);
    pbw m = dy_dx_model(&g, F32, 1, d3, 13);
    /* y = c x^2: dx = 2 c x, in float32 (x's type) */
    tin in[1] = {{1, {3}, V24}};
    check_fd(&m, ONR_FLOAT, 1, in, 1, XI1, 1e-2, 1e-3);
    int64_t n;
    double *got = run_values(&m, ONR_FLOAT, 1, in, 1, &n);
    for (int i = 0; i < 3; i++) assert_true(fabs(got[i] - 2 * cv[i] * (float)V24[i]) < 1e-6);
    free(got);
    free(m.b);
}

/* float16 and float32: the expansion's constants take the types given */
static void test_float_types(void **state)
{
    (void)state;
    const int dts[2] = {F16, F32};
    const onr_dtype odt[2] = {ONR_FLOAT16, ONR_FLOAT};
    const int64_t d23[2] = {2, 3}, d3[1] = {3};
    for (int k = 0; k < 2; k++) {
        pbw g = {0};
        pbw_node(&g, "Mul", "m", NAMES("a", "b"), NAMES("t"), NULL);
        pbw_node(&g, "Sigmoid", "s", NAMES("t"), NAMES("y"), NULL);
        gradient(&g, "g", NAMES("a", "b"), NAMES("da", "db"), NAMES("a", "b"), NULL, "y");
        input(&g, "a", dts[k], 2, d23), input(&g, "b", dts[k], 1, d3);
        output(&g, "y", dts[k]), output(&g, "da", dts[k]), output(&g, "db", dts[k]);
        pbw m = model(&g, 13);
        tin in[2] = {{2, {2, 3}, V24}, {1, {3}, V24 + 3}};
        /* against the closed form in double, from the values as stored */
        onr_session *s = open_model(&m);
        double *vals[2] = {(double *)V24, (double *)V24 + 3};
        run(s, odt[k], 2, in, vals);
        const onr_tensor *da = onr_session_output(s, 1), *db = onr_session_output(s, 2);
        assert_int_equal(da->dtype, odt[k]);
        tk_assert_shape(db, 1, d3);
        double wb[3] = {0};
        for (int i = 0; i < 6; i++) {
            double av = onr_round_to(odt[k], V24[i]), bv = onr_round_to(odt[k], V24[3 + i % 3]);
            double sg = 1 / (1 + exp(-av * bv)), dt = sg * (1 - sg);
            double tol = k ? 1e-6 : 4e-3;
            assert_true(fabs(onr_get_f64(da, i) - dt * bv) < tol);
            wb[i % 3] += dt * av;
        }
        for (int i = 0; i < 3; i++) assert_true(fabs(onr_get_f64(db, i) - wb[i]) < (k ? 1e-6 : 8e-3));
        onr_session_free(s);
        free(m.b);
    }
}

/* A small MLP: MatMul, Add, Relu, Gemm, Tanh, Softmax, ReduceMean loss;
 * gradients w.r.t. the weights (initializers named in xs) and the input */
static void test_mlp(void **state)
{
    (void)state;
    const int64_t dx[2] = {2, 3}, dw1[2] = {3, 4}, db1[1] = {4}, dw2[2] = {4, 3};
    double w1[12], b1[4], w2[12];
    for (int i = 0; i < 12; i++) w1[i] = 0.3 * sin(i + 1.0), w2[i] = 0.4 * cos(i + 0.5);
    for (int i = 0; i < 4; i++) b1[i] = 0.1 * i - 0.15;
    pbw g = {0}, a = {0};
    init_f64(&g, "W1", 2, dw1, w1, 12);
    init_f64(&g, "B1", 1, db1, b1, 4);
    init_f64(&g, "W2", 2, dw2, w2, 12);
    pbw_node(&g, "MatMul", "mm1", NAMES("x", "W1"), NAMES("h0"), NULL);
    pbw_node(&g, "Add", "bias", NAMES("h0", "B1"), NAMES("h1"), NULL);
    pbw_node(&g, "Relu", "relu", NAMES("h1"), NAMES("h2"), NULL);
    pbw_node(&g, "Gemm", "gm", NAMES("h2", "W2"), NAMES("z"), NULL);
    pbw_node(&g, "Tanh", "th", NAMES("z"), NAMES("zt"), NULL);
    pbw_attr_int(&a, "axis", -1);
    pbw_node(&g, "Softmax", "sm", NAMES("zt"), NAMES("p"), &a);
    pbw_node(&g, "Mul", "sq", NAMES("p", "p"), NAMES("p2"), NULL);
    a = (pbw){0};
    pbw_attr_int(&a, "keepdims", 0);
    pbw_node(&g, "ReduceMean", "loss", NAMES("p2"), NAMES("y"), &a);
    gradient(&g, "g", NAMES("x", "W1", "B1", "W2"), NAMES("dx", "dW1", "dB1", "dW2"),
             NAMES("x", "W1", "B1", "W2"), NULL, "y");
    input(&g, "x", F64, 2, dx);
    output(&g, "y", F64), output(&g, "dx", F64), output(&g, "dW1", F64), output(&g, "dB1", F64),
        output(&g, "dW2", F64);
    pbw m1 = model(&g, 13);
    tin in[1] = {{2, {2, 3}, V24}};
    check_fd(&m1, ONR_DOUBLE, 1, in, 1, XI1, H64, TOL64);
    /* the weights' gradients: finite differences over the same model with
     * the weights as graph inputs (zs: x), then the initializers' gradients
     * above must be those */
    g = (pbw){0}, a = (pbw){0};
    pbw_node(&g, "MatMul", "mm1", NAMES("x", "W1"), NAMES("h0"), NULL);
    pbw_node(&g, "Add", "bias", NAMES("h0", "B1"), NAMES("h1"), NULL);
    pbw_node(&g, "Relu", "relu", NAMES("h1"), NAMES("h2"), NULL);
    pbw_node(&g, "Gemm", "gm", NAMES("h2", "W2"), NAMES("z"), NULL);
    pbw_node(&g, "Tanh", "th", NAMES("z"), NAMES("zt"), NULL);
    pbw_attr_int(&a, "axis", -1);
    pbw_node(&g, "Softmax", "sm", NAMES("zt"), NAMES("p"), &a);
    pbw_node(&g, "Mul", "sq", NAMES("p", "p"), NAMES("p2"), NULL);
    a = (pbw){0};
    pbw_attr_int(&a, "keepdims", 0);
    pbw_node(&g, "ReduceMean", "loss", NAMES("p2"), NAMES("y"), &a);
    gradient(&g, "g", NAMES("W1", "B1", "W2", "x"), NAMES("dW1", "dB1", "dW2"),
             NAMES("W1", "B1", "W2"), NAMES("x"), "y");
    input(&g, "x", F64, 2, dx), input(&g, "W1", F64, 2, dw1), input(&g, "B1", F64, 1, db1),
        input(&g, "W2", F64, 2, dw2);
    output(&g, "y", F64), output(&g, "dW1", F64), output(&g, "dB1", F64), output(&g, "dW2", F64);
    pbw m = model(&g, 13);
    tin in4[4] = {{2, {2, 3}, V24}, {2, {3, 4}, w1}, {1, {4}, b1}, {2, {4, 3}, w2}};
    const int xi[3] = {1, 2, 3};
    check_fd(&m, ONR_DOUBLE, 4, in4, 3, xi, H64, TOL64);
    for (int k = 0; k < 3; k++) {
        int64_t n;
        double *want = run_values(&m, ONR_DOUBLE, 4, in4, 1 + k, &n);
        expect_values(&m1, 1, in, 2 + k, n, want, 1e-14);
        free(want);
    }
    free(m.b), free(m1.b);
}

/* ---- semantics ---------------------------------------------------------------------- */

/* The Gradient's inputs differ from the named tensors: the forward
 * sub-graph is evaluated at them (copied), the original stays as it is */
static void test_inputs_differ(void **state)
{
    (void)state;
    const int64_t d3[1] = {3};
    /* y = x exp(x), evaluated at x1: (1 + x1) exp(x1) */
    pbw g = {0};
    pbw_node(&g, "Exp", "e", NAMES("x"), NAMES("ex"), NULL);
    pbw_node(&g, "Mul", "m", NAMES("x", "ex"), NAMES("y"), NULL);
    gradient(&g, "g", NAMES("x1"), NAMES("dx"), NAMES("x"), NULL, "y");
    input(&g, "x", F64, 1, d3), input(&g, "x1", F64, 1, d3);
    output(&g, "y", F64), output(&g, "dx", F64);
    pbw m = model(&g, 13);
    tin in[2] = {{1, {3}, V24}, {1, {3}, V24 + 3}};
    double want[3], wy[3];
    for (int i = 0; i < 3; i++) {
        want[i] = (1 + V24[3 + i]) * exp(V24[3 + i]);
        wy[i] = V24[i] * exp(V24[i]);
    }
    expect_values(&m, 2, in, 1, 3, want, 1e-12);
    expect_values(&m, 2, in, 0, 3, wy, 1e-12); /* y itself at x */
    free(m.b);

    /* y = x * z + z with zs: dy/dx at (x, z1) is z1; x given as itself */
    g = (pbw){0};
    pbw_node(&g, "Mul", "m", NAMES("x", "z"), NAMES("t"), NULL);
    pbw_node(&g, "Add", "a", NAMES("t", "z"), NAMES("y"), NULL);
    gradient(&g, "g", NAMES("x", "z1"), NAMES("dx"), NAMES("x"), NAMES("z"), "y");
    input(&g, "x", F64, 1, d3), input(&g, "z", F64, 1, d3), input(&g, "z1", F64, 1, d3);
    output(&g, "y", F64), output(&g, "dx", F64);
    m = model(&g, 13);
    tin in3[3] = {{1, {3}, V24}, {1, {3}, V24 + 3}, {1, {3}, V24 + 6}};
    expect_values(&m, 3, in3, 1, 3, V24 + 6, 1e-15);
    free(m.b);

    /* swapped: Gradient(b, a) with xs [a, b] for y = a^2 b: outputs are
     * 2ab and a^2 at a := b, b := a */
    g = (pbw){0};
    pbw_node(&g, "Mul", "m1", NAMES("a", "a"), NAMES("a2"), NULL);
    pbw_node(&g, "Mul", "m2", NAMES("a2", "b"), NAMES("y"), NULL);
    gradient(&g, "g", NAMES("b", "a"), NAMES("da", "db"), NAMES("a", "b"), NULL, "y");
    input(&g, "a", F64, 1, d3), input(&g, "b", F64, 1, d3);
    output(&g, "y", F64), output(&g, "da", F64), output(&g, "db", F64);
    m = model(&g, 13);
    double wa[3], wb[3];
    for (int i = 0; i < 3; i++) {
        double av = V24[3 + i], bv = V24[i]; /* a := b's value, b := a's */
        wa[i] = 2 * av * bv;
        wb[i] = av * av;
    }
    expect_values(&m, 2, in, 1, 3, wa, 1e-12);
    expect_values(&m, 2, in, 2, 3, wb, 1e-12);
    free(m.b);
}

/* An intermediate value in xs: the trace stops there (h = x*x, y = h*x:
 * dy/dh = x, dy/dx = h, not 3x^2); y in xs: ones of y's shape, and the
 * trace is empty, so the other gradients are zeros */
static void test_intermediate_and_y_in_xs(void **state)
{
    (void)state;
    const int64_t d3[1] = {3};
    pbw g = {0};
    pbw_node(&g, "Mul", "m1", NAMES("x", "x"), NAMES("h"), NULL);
    pbw_node(&g, "Mul", "m2", NAMES("h", "x"), NAMES("y"), NULL);
    gradient(&g, "g", NAMES("h", "x"), NAMES("dh", "dx"), NAMES("h", "x"), NULL, "y");
    input(&g, "x", F64, 1, d3);
    output(&g, "y", F64), output(&g, "dh", F64), output(&g, "dx", F64);
    pbw m = model(&g, 13);
    tin in[1] = {{1, {3}, V24}};
    double h[3];
    for (int i = 0; i < 3; i++) h[i] = V24[i] * V24[i];
    expect_values(&m, 1, in, 1, 3, V24, 1e-15);
    expect_values(&m, 1, in, 2, 3, h, 1e-15);
    free(m.b);

    g = (pbw){0};
    pbw_node(&g, "Mul", "m1", NAMES("x", "x"), NAMES("y"), NULL);
    gradient(&g, "g", NAMES("y", "x"), NAMES("dy", "dx"), NAMES("y", "x"), NULL, "y");
    input(&g, "x", F64, 1, d3);
    output(&g, "y", F64), output(&g, "dy", F64), output(&g, "dx", F64);
    m = model(&g, 13);
    const double ones[3] = {1, 1, 1}, zeros[3] = {0};
    expect_values(&m, 1, in, 1, 3, ones, 0);
    expect_values(&m, 1, in, 2, 3, zeros, 0);
    free(m.b);
}

/* Two Gradient nodes of one graph, one of them with an omitted output */
static void test_two_gradients(void **state)
{
    (void)state;
    const int64_t d3[1] = {3};
    pbw g = {0};
    pbw_node(&g, "Mul", "m", NAMES("a", "b"), NAMES("y"), NULL);
    pbw_node(&g, "Exp", "e", NAMES("y"), NAMES("y2"), NULL);
    gradient(&g, "g1", NAMES("a", "b"), NAMES("", "db"), NAMES("a", "b"), NULL, "y");
    gradient(&g, "g2", NAMES("a", "b"), NAMES("da2"), NAMES("a"), NAMES("b"), "y2");
    input(&g, "a", F64, 1, d3), input(&g, "b", F64, 1, d3);
    output(&g, "db", F64), output(&g, "da2", F64);
    pbw m = model(&g, 13);
    tin in[2] = {{1, {3}, V24}, {1, {3}, V24 + 3}};
    double w2[3];
    for (int i = 0; i < 3; i++) w2[i] = V24[3 + i] * exp(V24[i] * V24[3 + i]);
    expect_values(&m, 2, in, 0, 3, V24, 1e-15);
    expect_values(&m, 2, in, 1, 3, w2, 1e-12);
    free(m.b);
}

/* A Gradient inside an If branch refers to that body's values (x is the
 * outer graph's input, named in xs from inside) */
static void test_in_subgraph(void **state)
{
    (void)state;
    const int64_t d3[1] = {3};
    pbw then = {0}, els = {0}, a = {0}, g = {0};
    pbw_node(&then, "Mul", "tm", NAMES("x", "x"), NAMES("ty"), NULL);
    gradient(&then, "tg", NAMES("x"), NAMES("tdx"), NAMES("x"), NULL, "ty");
    pbw_str(&then, 2, "then");
    output(&then, "tdx", F64);
    pbw_node(&els, "Identity", "ei", NAMES("x"), NAMES("ex"), NULL);
    pbw_str(&els, 2, "else");
    output(&els, "ex", F64);
    pbw_attr_graph(&a, "then_branch", &then);
    pbw_attr_graph(&a, "else_branch", &els);
    pbw_node(&g, "If", "if", NAMES("c"), NAMES("r"), &a);
    input(&g, "c", 9, 0, NULL), input(&g, "x", F64, 1, d3);
    output(&g, "r", F64);
    pbw m = model(&g, 13);
    onr_session *s = open_model(&m);
    const uint8_t yes = 1;
    onr_tensor *c = tk_bool(0, NULL, &yes), *x = tk_typed(ONR_DOUBLE, 1, d3, V24);
    const onr_tensor *in[2] = {c, x};
    assert_int_equal(onr_session_run(s, 2, NULL, in), ONR_OK);
    const onr_tensor *r = onr_session_output(s, 0);
    for (int i = 0; i < 3; i++) assert_true(fabs(onr_get_f64(r, i) - 2 * V24[i]) < 1e-15);
    tk_free_all(1, &c), tk_free_all(1, &x);
    onr_session_free(s);
    free(m.b);
}

/* ---- errors ------------------------------------------------------------------------------ */

static void test_errors(void **state)
{
    (void)state;
    const int64_t d3[1] = {3};
    /* an operator on the path with no gradient */
    pbw g = {0}, a = {0};
    pbw_node(&g, "Sin", "s1", NAMES("x"), NAMES("t"), NULL);
    pbw_node(&g, "Mul", "m", NAMES("t", "x"), NAMES("y"), NULL);
    gradient(&g, "g", NAMES("x"), NAMES("dx"), NAMES("x"), NULL, "y");
    input(&g, "x", F64, 1, d3);
    output(&g, "dx", F64);
    pbw m = model(&g, 13);
    expect_refused(&m, ONR_E_UNSUPPORTED, "Gradient 'g': no gradient for operator 'Sin' (node 's1')");

    /* ... but the same operator off the active path is fine: Sin of zs */
    g = (pbw){0};
    pbw_node(&g, "Sin", "s1", NAMES("z"), NAMES("t"), NULL);
    pbw_node(&g, "Mul", "m", NAMES("t", "x"), NAMES("y"), NULL);
    gradient(&g, "g", NAMES("x", "z"), NAMES("dx"), NAMES("x"), NAMES("z"), "y");
    input(&g, "x", F64, 1, d3), input(&g, "z", F64, 1, d3);
    output(&g, "dx", F64);
    m = model(&g, 13);
    tin in[2] = {{1, {3}, V24}, {1, {3}, V24 + 3}};
    double want[3];
    for (int i = 0; i < 3; i++) want[i] = sin(V24[3 + i]);
    expect_values(&m, 2, in, 0, 3, want, 1e-12);
    free(m.b);

    /* a dependency that is neither in xs nor zs nor constant */
    g = (pbw){0};
    pbw_node(&g, "Mul", "m", NAMES("x", "q"), NAMES("y"), NULL);
    gradient(&g, "g", NAMES("x"), NAMES("dx"), NAMES("x"), NULL, "y");
    input(&g, "x", F64, 1, d3), input(&g, "q", F64, 1, d3);
    output(&g, "dx", F64);
    m = model(&g, 13);
    expect_refused(&m, ONR_E_MODEL,
                   "Gradient 'g': y 'y' depends on 'q', which is neither in xs nor zs nor a constant");

    /* y and xs that are not values of the graph */
    g = (pbw){0};
    pbw_node(&g, "Mul", "m", NAMES("x", "x"), NAMES("y"), NULL);
    gradient(&g, "g", NAMES("x"), NAMES("dx"), NAMES("x"), NULL, "nope");
    input(&g, "x", F64, 1, d3);
    output(&g, "dx", F64);
    m = model(&g, 13);
    expect_refused(&m, ONR_E_MODEL, "Gradient 'g': y 'nope' is not a value of the graph");
    g = (pbw){0};
    pbw_node(&g, "Mul", "m", NAMES("x", "x"), NAMES("y"), NULL);
    gradient(&g, "g", NAMES("x", "x"), NAMES("dx"), NAMES("x", "ghost"), NULL, "y");
    input(&g, "x", F64, 1, d3);
    output(&g, "dx", F64);
    m = model(&g, 13);
    expect_refused(&m, ONR_E_MODEL, "Gradient 'g': xs[1] 'ghost' is not a value of the graph");

    /* inputs that do not match xs and zs; a missing y attribute */
    g = (pbw){0};
    pbw_node(&g, "Mul", "m", NAMES("x", "x"), NAMES("y"), NULL);
    gradient(&g, "g", NAMES("x", "x"), NAMES("dx"), NAMES("x"), NULL, "y");
    input(&g, "x", F64, 1, d3);
    output(&g, "dx", F64);
    m = model(&g, 13);
    expect_refused(&m, ONR_E_MODEL, "Gradient 'g': has 2 inputs and 1 outputs; xs and zs make 1 inputs");
    g = (pbw){0}, a = (pbw){0};
    pbw_node(&g, "Mul", "m", NAMES("x", "x"), NAMES("y"), NULL);
    pbw_attr_strings(&a, "xs", NAMES("x"), 1);
    pbw_node_in(&g, 1, "Gradient", GRAD, "g", NAMES("x"), NAMES("dx"), &a);
    input(&g, "x", F64, 1, d3);
    output(&g, "dx", F64);
    m = model(&g, 13);
    expect_refused(&m, ONR_E_MODEL, "Gradient 'g': attribute y (string) is required");

    /* second order: y depends on another Gradient's output */
    g = (pbw){0};
    pbw_node(&g, "Mul", "m", NAMES("x", "x"), NAMES("y"), NULL);
    gradient(&g, "g1", NAMES("x"), NAMES("dx"), NAMES("x"), NULL, "y");
    gradient(&g, "g2", NAMES("x"), NAMES("ddx"), NAMES("x"), NULL, "dx");
    input(&g, "x", F64, 1, d3);
    output(&g, "ddx", F64);
    m = model(&g, 13);
    expect_refused(&m, ONR_E_UNSUPPORTED, "second-order gradients are not supported");
}

/* ---- SumToShape ------------------------------------------------------------------------------ */

static onr_node *sts_node(void)
{
    onr_node *n = tk_node("SumToShape");
    free(n->domain);
    n->domain = onr_strdup("org.onnxrun");
    return n;
}

static void test_sum_to_shape(void **state)
{
    (void)state;
    const int64_t dg[3] = {2, 3, 2}, d31[2] = {3, 1}, d2[1] = {2}, d132[3] = {1, 3, 2};
    float gv[12];
    for (int i = 0; i < 12; i++) gv[i] = (float)(i + 1);
    onr_tensor *g = tk_f32(3, dg, gv);
    onr_node *n = sts_node();
    /* [2,3,2] -> [3,1]: sum over axis 0 and the last */
    onr_tensor *like = tk_f32(2, d31, NULL), *in[2] = {g, like};
    onr_tensor *y = tk_run1(n, 1, 2, in, 1);
    tk_assert_shape(y, 2, d31);
    const float w31[3] = {1 + 2 + 7 + 8, 3 + 4 + 9 + 10, 5 + 6 + 11 + 12};
    tk_assert_close_f32(y, w31, 3, 0, 0);
    tk_free_all(1, &y), tk_free_all(1, &like);
    /* -> [2]: over the leading axes */
    like = tk_f32(1, d2, NULL), in[1] = like;
    y = tk_run1(n, 1, 2, in, 1);
    const float w2[2] = {36, 42};
    tk_assert_close_f32(y, w2, 2, 0, 0);
    tk_free_all(1, &y), tk_free_all(1, &like);
    /* -> [] (a scalar): everything */
    like = tk_f32(0, NULL, NULL), in[1] = like;
    y = tk_run1(n, 1, 2, in, 1);
    const float w0 = 78;
    tk_assert_shape(y, 0, NULL);
    tk_assert_close_f32(y, &w0, 1, 0, 0);
    tk_free_all(1, &y), tk_free_all(1, &like);
    /* the same element count: a copy (like's type does not matter) */
    const int64_t z[6] = {0}, d32[2] = {3, 2};
    onr_tensor *g2 = tk_f32(3, d132, gv), *like2 = tk_i64(2, d32, z);
    in[0] = g2, in[1] = like2;
    y = tk_run1(n, 1, 2, in, 1);
    tk_assert_shape(y, 2, d32);
    tk_assert_close_f32(y, gv, 6, 0, 0);
    tk_free_all(1, &y), tk_free_all(1, &g2), tk_free_all(1, &like2);
    /* float64 and float16 keep their type */
    double gd[12];
    for (int i = 0; i < 12; i++) gd[i] = 0.1 * i;
    onr_tensor *g64 = tk_typed(ONR_DOUBLE, 3, dg, gd);
    like = tk_f32(1, d2, NULL);
    in[0] = g64, in[1] = like;
    y = tk_run1(n, 1, 2, in, 1);
    assert_int_equal(y->dtype, ONR_DOUBLE);
    assert_true(fabs(onr_get_f64(y, 0) - 0.1 * (0 + 2 + 4 + 6 + 8 + 10)) < 1e-12);
    tk_free_all(1, &y), tk_free_all(1, &g64);
    uint16_t gh[12];
    for (int i = 0; i < 12; i++) gh[i] = onr_float_to_half(0.5f * (float)i);
    onr_tensor *g16 = tk_typed(ONR_FLOAT16, 3, dg, gh);
    in[0] = g16;
    y = tk_run1(n, 1, 2, in, 1);
    assert_int_equal(y->dtype, ONR_FLOAT16);
    assert_true(fabs(onr_get_f64(y, 1) - 0.5 * (1 + 3 + 5 + 7 + 9 + 11)) < 1e-3);
    tk_free_all(1, &y), tk_free_all(1, &g16), tk_free_all(1, &like);
    /* a shape that does not broadcast to G's, and integer G */
    const int64_t d4[1] = {4};
    like = tk_f32(1, d4, NULL), in[0] = g, in[1] = like;
    tk_expect_fail(n, 1, 2, in, 1, ONR_E_MODEL, "cannot be summed to shape [4]");
    tk_free_all(1, &like);
    const int64_t d23[2] = {2, 3};
    onr_tensor *big = tk_f32(4, (const int64_t[]){1, 2, 3, 2}, NULL);
    in[1] = big;
    tk_expect_fail(n, 1, 2, in, 1, ONR_E_MODEL, "does not broadcast");
    tk_free_all(1, &big);
    onr_tensor *gi = tk_i64(2, d23, (const int64_t[]){1, 2, 3, 4, 5, 6}), *l2 = tk_f32(1, d2, NULL);
    in[0] = gi, in[1] = l2;
    tk_expect_fail(n, 1, 2, in, 1, ONR_E_UNSUPPORTED, "unsupported type");
    tk_free_all(1, &gi), tk_free_all(1, &l2);
    tk_free_all(1, &g);
    tk_node_free(n);
}

/* Gradient and SumToShape are listed by the registry */
static void test_listed(void **state)
{
    (void)state;
    int found = 0;
    for (int i = 0; i < onr_op_count(); i++) {
        const char *dom;
        int since, until;
        const char *op = onr_op_info(i, &dom, &since, &until);
        if (strcmp(op, "Gradient") == 0 && strcmp(dom, GRAD) == 0 && since == 1 && until == 1)
            found |= 1;
        if (strcmp(op, "SumToShape") == 0 && strcmp(dom, "org.onnxrun") == 0) found |= 2;
    }
    assert_int_equal(found, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_broadcast),
        cmocka_unit_test(test_sum_to_shape_removed),
        cmocka_unit_test(test_unary),
        cmocka_unit_test(test_sum_and_accumulation),
        cmocka_unit_test(test_pow),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_shape_ops),
        cmocka_unit_test(test_reduce),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_constant_and_cast),
        cmocka_unit_test(test_float_types),
        cmocka_unit_test(test_mlp),
        cmocka_unit_test(test_inputs_differ),
        cmocka_unit_test(test_intermediate_and_y_in_xs),
        cmocka_unit_test(test_two_gradients),
        cmocka_unit_test(test_in_subgraph),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_sum_to_shape),
        cmocka_unit_test(test_listed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
