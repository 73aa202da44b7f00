/* test_ops_ml.c - the ai.onnx.ml operators: hand-checked values, the
 * attribute checks of create (inconsistent lengths, ids out of range, cycles
 * and over-deep trees refused without a hang), and thread-count independence
 * of the tree ensembles. Numeric coverage against numpy lives in
 * testdata/spec/ml_* (tools/spec_cases/ml.py). */
#include "kutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define ML "ai.onnx.ml"

static onr_node *ml_node(const char *op)
{
    onr_node *n = tk_node(op);
    free(n->domain);
    n->domain = onr_strdup(ML);
    return n;
}

static void attr_strings(onr_node *n, const char *name, int count, const char *const *v)
{
    n->attrs = realloc(n->attrs, (size_t)(n->n_attr + 1) * sizeof *n->attrs);
    assert_non_null(n->attrs);
    onr_attr *a = &n->attrs[n->n_attr++];
    memset(a, 0, sizeof *a);
    a->name = onr_strdup(name);
    a->type = ONR_ATTR_STRINGS;
    a->n = (size_t)count;
    a->strings = calloc((size_t)(count ? count : 1), sizeof *a->strings);
    for (int i = 0; i < count; i++) a->strings[i] = onr_strdup(v[i]);
}

static onr_tensor *str_tensor(int rank, const int64_t *dims, const char *const *v)
{
    onr_tensor *t = onr_tensor_new(ONR_STRING, rank, dims);
    assert_non_null(t);
    for (int64_t i = 0; i < t->numel; i++) assert_int_equal(onr_str_assign(&((char **)t->data)[i], v[i]), 0);
    return t;
}

static void expect_fail(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int n_out,
                        const char *needle)
{
    onr_tensor *out[4] = {0};
    onr_err err = {0};
    onr_status st = tk_run(n, opset, n_in, in, n_out, out, 1, &err);
    if (st == ONR_OK) fail_msg("%s: expected an error with '%s'", n->op_type, needle);
    if (needle && !strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    tk_free_all(n_out, out);
}

static onr_tensor *run1(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int nthreads)
{
    onr_tensor *out[1];
    onr_err err = {0};
    if (tk_run(n, opset, n_in, in, 1, out, nthreads, &err) != ONR_OK)
        fail_msg("%s failed: %s", n->op_type, err.msg);
    return out[0];
}

/* ---- tree ensembles, versions 1 / 3 ------------------------------------------------ */

/* A v1 regressor over nn nodes of tree 0 with node ids 0..nn-1. */
static onr_node *tree_reg(int nn, const char *const *modes, const int64_t *feat, const float *vals,
                          const int64_t *t, const int64_t *f, int nw, const int64_t *wnodes,
                          const float *w)
{
    onr_node *n = ml_node("TreeEnsembleRegressor");
    int64_t *ids = calloc((size_t)nn + 1, sizeof *ids), *tids = calloc((size_t)nn + 1, sizeof *tids);
    int64_t *wt = calloc((size_t)nw + 1, sizeof *wt), *wid = calloc((size_t)nw + 1, sizeof *wid);
    for (int i = 0; i < nn; i++) ids[i] = i;
    tk_attr_ints(n, "nodes_nodeids", nn, ids);
    tk_attr_ints(n, "nodes_treeids", nn, tids);
    tk_attr_ints(n, "nodes_featureids", nn, feat);
    attr_strings(n, "nodes_modes", nn, modes);
    tk_attr_floats(n, "nodes_values", nn, vals);
    tk_attr_ints(n, "nodes_truenodeids", nn, t);
    tk_attr_ints(n, "nodes_falsenodeids", nn, f);
    tk_attr_ints(n, "target_nodeids", nw, wnodes);
    tk_attr_ints(n, "target_treeids", nw, wt);
    tk_attr_ints(n, "target_ids", nw, wid);
    tk_attr_floats(n, "target_weights", nw, w);
    tk_attr_int(n, "n_targets", 1);
    free(ids), free(tids), free(wt), free(wid);
    return n;
}

static const char *M3[] = {"BRANCH_LEQ", "LEAF", "LEAF"};
static const int64_t F3[] = {0, 0, 0}, T3[] = {1, 0, 0}, FA3[] = {2, 0, 0}, W3N[] = {1, 2};
static const float V3[] = {0.5f, 0, 0}, W3[] = {1.0f, 2.0f};

static void test_tree_reg_values_and_nan(void **state)
{
    (void)state;
    int64_t d[2] = {4, 1};
    float xv[] = {0.2f, 0.7f, NAN, 0.5f};
    onr_node *n = tree_reg(3, M3, F3, V3, T3, FA3, 2, W3N, W3);
    onr_tensor *in[1] = {tk_f32(2, d, xv)};
    onr_tensor *y = run1(n, 1, 1, in, 1);
    float want[] = {1, 2, 2, 1}; /* NaN: false branch when tracks_true is absent */
    tk_assert_close_f32(y, want, 4, 0, 0);
    onr_tensor_free(y);
    tk_node_free(n);
    /* missing_value_tracks_true sends NaN to the true branch */
    n = tree_reg(3, M3, F3, V3, T3, FA3, 2, W3N, W3);
    int64_t mv[] = {1, 0, 0};
    tk_attr_ints(n, "nodes_missing_value_tracks_true", 3, mv);
    tk_attr_floats(n, "base_values", 1, (float[]){10});
    y = run1(n, 3, 1, in, 1);
    float want2[] = {11, 12, 11, 11};
    tk_assert_close_f32(y, want2, 4, 0, 0);
    onr_tensor_free(y);
    tk_node_free(n);
    tk_free_all(1, in);
}

static void test_tree_reg_bad_attrs(void **state)
{
    (void)state;
    int64_t d[2] = {1, 1};
    onr_tensor *in[1] = {tk_f32(2, d, (float[]){0})};
    /* nodes_featureids shorter than nodes_nodeids */
    onr_node *n = tree_reg(3, M3, F3, V3, T3, FA3, 2, W3N, W3);
    for (int i = 0; i < n->n_attr; i++)
        if (strcmp(n->attrs[i].name, "nodes_featureids") == 0) n->attrs[i].n = 2;
    expect_fail(n, 1, 1, in, 1, "nodes_featureids");
    tk_node_free(n);
    /* a child id that is no node of the tree */
    int64_t tbad[] = {7, 0, 0};
    n = tree_reg(3, M3, F3, V3, tbad, FA3, 2, W3N, W3);
    expect_fail(n, 1, 1, in, 1, "not a node of tree");
    tk_node_free(n);
    /* a vote on a missing node */
    int64_t wbad[] = {1, 9};
    n = tree_reg(3, M3, F3, V3, T3, FA3, 2, wbad, W3);
    expect_fail(n, 1, 1, in, 1, "target_nodeids");
    tk_node_free(n);
    /* target id out of range */
    n = tree_reg(3, M3, F3, V3, T3, FA3, 2, W3N, W3);
    for (int i = 0; i < n->n_attr; i++)
        if (strcmp(n->attrs[i].name, "target_ids") == 0) n->attrs[i].ints[1] = 1;
    expect_fail(n, 1, 1, in, 1, "out of range");
    tk_node_free(n);
    /* unknown mode */
    const char *mbad[] = {"BRANCH_XX", "LEAF", "LEAF"};
    n = tree_reg(3, mbad, F3, V3, T3, FA3, 2, W3N, W3);
    expect_fail(n, 1, 1, in, 1, "nodes_modes[0]");
    tk_node_free(n);
    /* negative feature */
    int64_t fbad[] = {-1, 0, 0};
    n = tree_reg(3, M3, fbad, V3, T3, FA3, 2, W3N, W3);
    expect_fail(n, 1, 1, in, 1, "nodes_featureids[0]");
    tk_node_free(n);
    /* feature beyond X's columns: a reshape error */
    int64_t fbig[] = {3, 0, 0};
    n = tree_reg(3, M3, fbig, V3, T3, FA3, 2, W3N, W3);
    expect_fail(n, 1, 1, in, 1, "feature 3");
    tk_node_free(n);
    /* aggregate / post transform names */
    n = tree_reg(3, M3, F3, V3, T3, FA3, 2, W3N, W3);
    tk_attr_string(n, "aggregate_function", "MEDIAN");
    expect_fail(n, 1, 1, in, 1, "aggregate_function");
    tk_node_free(n);
    n = tree_reg(3, M3, F3, V3, T3, FA3, 2, W3N, W3);
    tk_attr_string(n, "post_transform", "TANH");
    expect_fail(n, 1, 1, in, 1, "post_transform");
    tk_node_free(n);
    /* base_values of the wrong length */
    n = tree_reg(3, M3, F3, V3, T3, FA3, 2, W3N, W3);
    for (int i = 0; i < n->n_attr; i++)
        if (strcmp(n->attrs[i].name, "n_targets") == 0) n->attrs[i].i = 3;
    tk_attr_floats(n, "base_values", 2, (float[]){1, 2});
    expect_fail(n, 1, 1, in, 1, "base_values");
    tk_node_free(n);
    tk_free_all(1, in);
}

static void test_tree_duplicate_and_cycle(void **state)
{
    (void)state;
    int64_t d[2] = {1, 1};
    onr_tensor *in[1] = {tk_f32(2, d, (float[]){0})};
    /* duplicate node id */
    onr_node *n = tree_reg(3, M3, F3, V3, T3, FA3, 2, W3N, W3);
    for (int i = 0; i < n->n_attr; i++)
        if (strcmp(n->attrs[i].name, "nodes_nodeids") == 0) n->attrs[i].ints[2] = 1;
    expect_fail(n, 1, 1, in, 1, "twice");
    tk_node_free(n);
    /* cycle: 0 -> 1 -> 0 */
    const char *mc[] = {"BRANCH_LEQ", "BRANCH_LEQ", "LEAF"};
    int64_t tc[] = {1, 0, 0}, fc[] = {2, 2, 0}, wn[] = {2};
    n = tree_reg(3, mc, F3, V3, tc, fc, 1, wn, W3);
    expect_fail(n, 1, 1, in, 1, "cycle");
    tk_node_free(n);
    /* self loop */
    int64_t ts[] = {0, 0, 0};
    n = tree_reg(3, M3, F3, V3, ts, FA3, 2, W3N, W3);
    expect_fail(n, 1, 1, in, 1, "cycle");
    tk_node_free(n);
    tk_free_all(1, in);
}

/* A chain of 40000 branch nodes: refused (too deep) quickly, no recursion. */
static void test_tree_too_deep(void **state)
{
    (void)state;
    enum { NN = 40001 };
    const char **modes = malloc(NN * sizeof *modes);
    int64_t *feat = calloc(NN, sizeof *feat), *t = calloc(NN, sizeof *t), *f = calloc(NN, sizeof *f);
    float *v = calloc(NN, sizeof *v);
    for (int i = 0; i < NN; i++) {
        modes[i] = i == NN - 1 ? "LEAF" : "BRANCH_LEQ";
        t[i] = i + 1 < NN ? i + 1 : 0;
        f[i] = NN - 1;
    }
    int64_t wn[] = {NN - 1};
    onr_node *n = tree_reg(NN, modes, feat, v, t, f, 1, wn, W3);
    int64_t d[2] = {1, 1};
    onr_tensor *in[1] = {tk_f32(2, d, (float[]){0})};
    expect_fail(n, 1, 1, in, 1, "deeper than");
    tk_node_free(n);
    /* the same chain closed into a ring: a cycle, found without a walk */
    t[NN - 2] = 0;
    modes[NN - 1] = "LEAF";
    n = tree_reg(NN, modes, feat, v, t, f, 1, wn, W3);
    expect_fail(n, 1, 1, in, 1, "cycle");
    tk_node_free(n);
    tk_free_all(1, in);
    free(modes), free(feat), free(t), free(f), free(v);
}

/* A random forest (v1 regressor, 3 targets): 1, 2 and 3 threads give the
 * same bits. */
static void test_tree_threads_identical(void **state)
{
    (void)state;
    enum { TREES = 20, DEPTH = 6, PER = (1 << (DEPTH + 1)) - 1, NN = TREES * PER, F = 8 };
    const char **modes = malloc(NN * sizeof *modes);
    int64_t *ids = malloc(NN * sizeof *ids), *tids = malloc(NN * sizeof *tids);
    int64_t *feat = calloc(NN, sizeof *feat), *t = calloc(NN, sizeof *t), *f = calloc(NN, sizeof *f);
    float *v = calloc(NN, sizeof *v);
    int64_t *wn = malloc(NN * 3 * sizeof *wn), *wt = malloc(NN * 3 * sizeof *wt),
            *wi = malloc(NN * 3 * sizeof *wi);
    float *w = malloc(NN * 3 * sizeof *w);
    int nw = 0;
    uint32_t s = 12345;
    for (int tr = 0; tr < TREES; tr++)
        for (int k = 0; k < PER; k++) {
            int i = tr * PER + k;
            ids[i] = k, tids[i] = tr;
            s = s * 1664525u + 1013904223u;
            if (2 * k + 1 < PER) {
                modes[i] = "BRANCH_LT";
                feat[i] = (int64_t)(s >> 8) % F;
                v[i] = (float)((int)(s >> 16) % 200 - 100) / 100.0f;
                t[i] = 2 * k + 1, f[i] = 2 * k + 2;
            } else {
                modes[i] = "LEAF";
                for (int c = 0; c < 3; c++) {
                    s = s * 1664525u + 1013904223u;
                    wn[nw] = k, wt[nw] = tr, wi[nw] = c;
                    w[nw++] = (float)((int)(s >> 12) % 1000) / 997.0f;
                }
            }
        }
    onr_node *n = ml_node("TreeEnsembleRegressor");
    tk_attr_ints(n, "nodes_nodeids", NN, ids);
    tk_attr_ints(n, "nodes_treeids", NN, tids);
    tk_attr_ints(n, "nodes_featureids", NN, feat);
    attr_strings(n, "nodes_modes", NN, modes);
    tk_attr_floats(n, "nodes_values", NN, v);
    tk_attr_ints(n, "nodes_truenodeids", NN, t);
    tk_attr_ints(n, "nodes_falsenodeids", NN, f);
    tk_attr_ints(n, "target_nodeids", nw, wn);
    tk_attr_ints(n, "target_treeids", nw, wt);
    tk_attr_ints(n, "target_ids", nw, wi);
    tk_attr_floats(n, "target_weights", nw, w);
    tk_attr_int(n, "n_targets", 3);
    tk_attr_string(n, "aggregate_function", "AVERAGE");
    int64_t d[2] = {3001, F};
    onr_tensor *in[1] = {tk_rand_f32(2, d, 7)};
    onr_tensor *y1 = run1(n, 3, 1, in, 1);
    for (int nt = 2; nt <= 3; nt++) {
        onr_tensor *y = run1(n, 3, 1, in, nt);
        assert_int_equal(y->numel, y1->numel);
        assert_memory_equal(y->data, y1->data, (size_t)y1->numel * sizeof(float));
        onr_tensor_free(y);
    }
    onr_tensor_free(y1);
    tk_node_free(n);
    tk_free_all(1, in);
    free(modes), free(ids), free(tids), free(feat), free(t), free(f), free(v);
    free(wn), free(wt), free(wi), free(w);
}

static void test_tree_classifier(void **state)
{
    (void)state;
    /* one tree, three string classes: leaf 1 votes class 2, leaf 2 class 0 */
    onr_node *n = ml_node("TreeEnsembleClassifier");
    int64_t ids[] = {0, 1, 2}, tids[] = {0, 0, 0}, cn[] = {1, 2}, ct[] = {0, 0}, ci[] = {2, 0};
    tk_attr_ints(n, "nodes_nodeids", 3, ids);
    tk_attr_ints(n, "nodes_treeids", 3, tids);
    tk_attr_ints(n, "nodes_featureids", 3, F3);
    attr_strings(n, "nodes_modes", 3, M3);
    tk_attr_floats(n, "nodes_values", 3, V3);
    tk_attr_ints(n, "nodes_truenodeids", 3, T3);
    tk_attr_ints(n, "nodes_falsenodeids", 3, FA3);
    tk_attr_ints(n, "class_nodeids", 2, cn);
    tk_attr_ints(n, "class_treeids", 2, ct);
    tk_attr_ints(n, "class_ids", 2, ci);
    tk_attr_floats(n, "class_weights", 2, (float[]){0.75f, 0.5f});
    const char *labels[] = {"cat", "dog", "emu"};
    attr_strings(n, "classlabels_strings", 3, labels);
    int64_t d[2] = {2, 1};
    onr_tensor *in[1] = {tk_f32(2, d, (float[]){0.1f, 0.9f})};
    onr_tensor *out[2];
    onr_err err = {0};
    assert_int_equal(tk_run(n, 1, 1, in, 2, out, 1, &err), ONR_OK);
    assert_int_equal(out[0]->dtype, ONR_STRING);
    assert_string_equal(((char **)out[0]->data)[0], "emu");
    assert_string_equal(((char **)out[0]->data)[1], "cat");
    float z[] = {0, 0, 0.75f, 0.5f, 0, 0};
    tk_assert_close_f32(out[1], z, 6, 0, 0);
    tk_free_all(2, out);
    /* a class id out of range */
    for (int i = 0; i < n->n_attr; i++)
        if (strcmp(n->attrs[i].name, "class_ids") == 0) n->attrs[i].ints[0] = 3;
    expect_fail(n, 1, 1, in, 2, "class_ids[0] = 3");
    tk_node_free(n);
    /* no labels at all */
    n = ml_node("TreeEnsembleClassifier");
    tk_attr_ints(n, "nodes_nodeids", 3, ids);
    expect_fail(n, 1, 1, in, 2, "classlabels");
    tk_node_free(n);
    tk_free_all(1, in);
}

/* ---- TreeEnsemble 5 ------------------------------------------------------------------ */

/* node 0: x0 in {1, 3} ? node 1 : leaf 2; node 1: x0 <= 2 ? leaf 0 : leaf 1 */
static onr_node *te5_node(void)
{
    onr_node *n = ml_node("TreeEnsemble");
    int64_t d2[1] = {2}, d3[1] = {3};
    tk_attr_tensor(n, "nodes_splits", tk_f32(1, d2, (float[]){0, 2}));
    tk_attr_tensor(n, "nodes_modes", tk_typed(ONR_UINT8, 1, d2, (uint8_t[]){6, 0}));
    tk_attr_ints(n, "nodes_featureids", 2, (int64_t[]){0, 0});
    tk_attr_ints(n, "nodes_truenodeids", 2, (int64_t[]){1, 0});
    tk_attr_ints(n, "nodes_falsenodeids", 2, (int64_t[]){2, 1});
    tk_attr_ints(n, "nodes_trueleafs", 2, (int64_t[]){0, 1});
    tk_attr_ints(n, "nodes_falseleafs", 2, (int64_t[]){1, 1});
    tk_attr_ints(n, "tree_roots", 1, (int64_t[]){0});
    tk_attr_ints(n, "leaf_targetids", 3, (int64_t[]){0, 0, 0});
    tk_attr_tensor(n, "leaf_weights", tk_f32(1, d3, (float[]){10, 20, 30}));
    tk_attr_tensor(n, "membership_values", tk_f32(1, d3, (float[]){3, 1, NAN}));
    tk_attr_int(n, "n_targets", 1);
    return n;
}

static void set_ints(onr_node *n, const char *name, int k, int64_t v)
{
    for (int i = 0; i < n->n_attr; i++)
        if (strcmp(n->attrs[i].name, name) == 0) n->attrs[i].ints[k] = v;
}

static void test_tree_ensemble5(void **state)
{
    (void)state;
    int64_t d[2] = {5, 1};
    onr_tensor *in[1] = {tk_f32(2, d, (float[]){1, 3, 2, 0, NAN})};
    onr_node *n = te5_node();
    onr_tensor *y = run1(n, 5, 1, in, 1);
    float want[] = {10, 20, 30, 30, 30};
    tk_assert_close_f32(y, want, 5, 0, 0);
    onr_tensor_free(y);
    tk_node_free(n);
    /* the registry: TreeEnsemble is ml opset 5 on, the old ones until 4 */
    assert_null(onr_op_find(ML, "TreeEnsemble", 4));
    assert_non_null(onr_op_find(ML, "TreeEnsemble", 5));
    assert_null(onr_op_find(ML, "TreeEnsembleRegressor", 5));
    assert_non_null(onr_op_find(ML, "TreeEnsembleClassifier", 4));

    struct { const char *attr; int k; int64_t v; const char *msg; } bad[] = {
        {"tree_roots", 0, 2, "tree_roots[0]"},
        {"nodes_truenodeids", 1, 3, "nodes_truenodeids[1]"},
        {"nodes_falsenodeids", 0, 5, "nodes_falsenodeids[0]"},
        {"nodes_trueleafs", 0, 2, "nodes_trueleafs[0]"},
        {"leaf_targetids", 2, 1, "leaf_targetids[2]"},
        {"nodes_featureids", 1, -4, "nodes_featureids[1]"},
    };
    for (int i = 0; i < N_OF(bad); i++) {
        n = te5_node();
        set_ints(n, bad[i].attr, bad[i].k, bad[i].v);
        expect_fail(n, 5, 1, in, 1, bad[i].msg);
        tk_node_free(n);
    }
    /* a cycle: node 1's true branch back to node 0 */
    n = te5_node();
    set_ints(n, "nodes_trueleafs", 1, 0);
    expect_fail(n, 5, 1, in, 1, "cycle");
    tk_node_free(n);
    /* inconsistent lengths */
    n = te5_node();
    for (int i = 0; i < n->n_attr; i++)
        if (strcmp(n->attrs[i].name, "nodes_falseleafs") == 0) n->attrs[i].n = 1;
    expect_fail(n, 5, 1, in, 1, "nodes_falseleafs");
    tk_node_free(n);
    /* a bad enum */
    n = te5_node();
    tk_attr_int(n, "aggregate_function", 7);
    expect_fail(n, 5, 1, in, 1, "aggregate_function");
    tk_node_free(n);
    /* X's type must be the splits' type */
    n = te5_node();
    onr_tensor *xd[1] = {tk_typed(ONR_DOUBLE, 2, d, (double[]){1, 2, 3, 4, 5})};
    expect_fail(n, 5, 1, xd, 1, "nodes_splits");
    tk_node_free(n);
    tk_free_all(1, xd);
    /* BRANCH_MEMBER without membership_values */
    n = te5_node();
    for (int i = 0; i < n->n_attr; i++)
        if (strcmp(n->attrs[i].name, "membership_values") == 0) {
            free(n->attrs[i].name);
            n->attrs[i].name = onr_strdup("unused_attr");
        }
    expect_fail(n, 5, 1, in, 1, "membership_values");
    tk_node_free(n);
    tk_free_all(1, in);
}

/* ---- linear models and post transforms ---------------------------------------------- */

static void test_linear(void **state)
{
    (void)state;
    onr_node *n = ml_node("LinearRegressor");
    tk_attr_floats(n, "coefficients", 4, (float[]){1, 2, 3, 4});
    tk_attr_floats(n, "intercepts", 2, (float[]){0.5f, -1});
    tk_attr_int(n, "targets", 2);
    int64_t d[2] = {1, 2};
    onr_tensor *in[1] = {tk_f32(2, d, (float[]){1, 1})};
    onr_tensor *y = run1(n, 1, 1, in, 1);
    tk_assert_close_f32(y, (float[]){3.5f, 6}, 2, 0, 0);
    onr_tensor_free(y);
    tk_node_free(n);
    /* coefficients per target must match X's features */
    n = ml_node("LinearRegressor");
    tk_attr_floats(n, "coefficients", 3, (float[]){1, 2, 3});
    expect_fail(n, 1, 1, in, 1, "features");
    tk_node_free(n);
    n = ml_node("LinearRegressor");
    tk_attr_floats(n, "coefficients", 3, (float[]){1, 2, 3});
    tk_attr_int(n, "targets", 2);
    expect_fail(n, 1, 1, in, 1, "multiple of targets");
    tk_node_free(n);
    /* classifier: PROBIT(0.5) = 0, LOGISTIC(0) = 0.5, SOFTMAX_ZERO of zeros */
    const char *pts[] = {"PROBIT", "LOGISTIC", "SOFTMAX_ZERO"};
    float want[][2] = {{0, 0}, {0.5f, 0.5f}, {0.5f, 0.5f}};
    for (int k = 0; k < 3; k++) {
        n = ml_node("LinearClassifier");
        tk_attr_floats(n, "coefficients", 4, (float[]){0, 0, 0, 0});
        tk_attr_floats(n, "intercepts", 2, k == 0 ? (float[]){0.5f, 0.5f} : (float[]){0, 0});
        tk_attr_ints(n, "classlabels_ints", 2, (int64_t[]){4, 9});
        tk_attr_string(n, "post_transform", pts[k]);
        onr_tensor *out[2];
        onr_err err = {0};
        assert_int_equal(tk_run(n, 1, 1, in, 2, out, 1, &err), ONR_OK);
        tk_assert_close_f32(out[1], want[k], 2, 1e-6f, 1e-6f);
        tk_assert_eq_i64(out[0], (int64_t[]){4}, 1); /* ties: the first class */
        tk_free_all(2, out);
        tk_node_free(n);
    }
    n = ml_node("LinearClassifier");
    tk_attr_floats(n, "coefficients", 3, (float[]){1, 2, 3});
    tk_attr_ints(n, "classlabels_ints", 2, (int64_t[]){4, 9});
    expect_fail(n, 1, 1, in, 2, "coefficients");
    tk_node_free(n);
    n = ml_node("LinearClassifier");
    tk_attr_ints(n, "classlabels_ints", 2, (int64_t[]){4, 9});
    expect_fail(n, 1, 1, in, 2, "coefficients is required");
    tk_node_free(n);
    tk_free_all(1, in);
}


/* ---- LabelEncoder and the feature transforms ------------------------------------------ */

static void test_label_encoder(void **state)
{
    (void)state;
    int64_t d[1] = {3};
    const char *xs[] = {"b", "zz", "a"};
    onr_tensor *in[1] = {str_tensor(1, d, xs)};
    /* v2: a repeated key maps to its first value */
    onr_node *n = ml_node("LabelEncoder");
    const char *keys[] = {"a", "b", "a"};
    attr_strings(n, "keys_strings", 3, keys);
    tk_attr_ints(n, "values_int64s", 3, (int64_t[]){1, 2, 3});
    onr_tensor *y = run1(n, 2, 1, in, 1);
    tk_assert_eq_i64(y, (int64_t[]){2, -1, 1}, 3);
    onr_tensor_free(y);
    /* v4: the last one */
    y = run1(n, 4, 1, in, 1);
    tk_assert_eq_i64(y, (int64_t[]){2, -1, 3}, 3);
    onr_tensor_free(y);
    tk_node_free(n);
    /* lengths differ */
    n = ml_node("LabelEncoder");
    attr_strings(n, "keys_strings", 3, keys);
    tk_attr_ints(n, "values_int64s", 2, (int64_t[]){1, 2});
    expect_fail(n, 2, 1, in, 1, "values_int64s has 2");
    tk_node_free(n);
    /* two keys_* */
    n = ml_node("LabelEncoder");
    attr_strings(n, "keys_strings", 3, keys);
    tk_attr_ints(n, "keys_int64s", 3, (int64_t[]){1, 2, 3});
    tk_attr_ints(n, "values_int64s", 3, (int64_t[]){1, 2, 3});
    expect_fail(n, 2, 1, in, 1, "both given");
    tk_node_free(n);
    /* no values_* */
    n = ml_node("LabelEncoder");
    attr_strings(n, "keys_strings", 3, keys);
    expect_fail(n, 2, 1, in, 1, "values_*");
    tk_node_free(n);
    /* X's type must be the keys' */
    n = ml_node("LabelEncoder");
    tk_attr_ints(n, "keys_int64s", 1, (int64_t[]){1});
    tk_attr_ints(n, "values_int64s", 1, (int64_t[]){1});
    expect_fail(n, 2, 1, in, 1, "keys are int64");
    tk_node_free(n);
    /* v4 default_tensor of the wrong type */
    n = ml_node("LabelEncoder");
    attr_strings(n, "keys_strings", 3, keys);
    tk_attr_ints(n, "values_int64s", 3, (int64_t[]){1, 2, 3});
    int64_t d1[1] = {1};
    tk_attr_tensor(n, "default_tensor", tk_f32(1, d1, (float[]){1}));
    expect_fail(n, 4, 1, in, 1, "default_tensor");
    tk_node_free(n);
    /* tensors are a version 4 form: version 2 does not see keys_tensor */
    n = ml_node("LabelEncoder");
    tk_attr_tensor(n, "keys_tensor", tk_i64(1, d1, (int64_t[]){1}));
    tk_attr_ints(n, "values_int64s", 1, (int64_t[]){1});
    expect_fail(n, 2, 1, in, 1, "keys_*");
    tk_node_free(n);
    tk_free_all(1, in);
}

static void test_feature_ops_errors(void **state)
{
    (void)state;
    int64_t d[2] = {2, 3};
    onr_tensor *in[2] = {tk_f32(2, d, (float[]){1, 2, 3, 4, 5, 6}), NULL};
    /* ArrayFeatureExtractor: an index past the last axis is a run error */
    onr_node *n = ml_node("ArrayFeatureExtractor");
    int64_t di[1] = {2};
    in[1] = tk_i64(1, di, (int64_t[]){0, 3});
    expect_fail(n, 1, 2, in, 1, "index 3 is out of range");
    onr_tensor_free(in[1]);
    in[1] = tk_i64(1, di, (int64_t[]){-1, 0});
    expect_fail(n, 1, 2, in, 1, "index -1");
    onr_tensor_free(in[1]);
    in[1] = NULL;
    tk_node_free(n);
    /* OneHotEncoder: zeros = 0 refuses an unknown category */
    n = ml_node("OneHotEncoder");
    tk_attr_ints(n, "cats_int64s", 2, (int64_t[]){1, 2});
    tk_attr_int(n, "zeros", 0);
    expect_fail(n, 1, 1, in, 1, "not a category");
    tk_node_free(n);
    n = ml_node("OneHotEncoder");
    expect_fail(n, 1, 1, in, 1, "cats_int64s or cats_strings");
    tk_node_free(n);
    /* FeatureVectorizer: one inputdimensions value per input */
    n = ml_node("FeatureVectorizer");
    tk_attr_ints(n, "inputdimensions", 2, (int64_t[]){3, 1});
    expect_fail(n, 1, 1, in, 1, "inputdimensions");
    tk_node_free(n);
    /* Imputer: value count and type */
    n = ml_node("Imputer");
    tk_attr_floats(n, "imputed_value_floats", 2, (float[]){1, 2});
    expect_fail(n, 1, 1, in, 1, "2 imputed values for 3 features");
    tk_node_free(n);
    n = ml_node("Imputer");
    tk_attr_ints(n, "imputed_value_int64s", 1, (int64_t[]){1});
    expect_fail(n, 1, 1, in, 1, "imputed values are int64s");
    tk_node_free(n);
    /* Scaler / Normalizer */
    n = ml_node("Scaler");
    tk_attr_floats(n, "scale", 2, (float[]){1, 2});
    expect_fail(n, 1, 1, in, 1, "scale has 2 values");
    tk_node_free(n);
    n = ml_node("Normalizer");
    tk_attr_string(n, "norm", "L3");
    expect_fail(n, 1, 1, in, 1, "norm");
    tk_node_free(n);
    /* CategoryMapper: pairs of equal length */
    n = ml_node("CategoryMapper");
    tk_attr_ints(n, "cats_int64s", 2, (int64_t[]){1, 2});
    expect_fail(n, 1, 1, in, 1, "differ in length");
    tk_node_free(n);
    tk_free_all(1, in);
}

/* ---- SVMs --------------------------------------------------------------------------------- */

static void test_svm(void **state)
{
    (void)state;
    /* regressor, linear kernel over 2 support vectors: 2*<x,(1,0)> - <x,(0,1)> + 0.5 */
    onr_node *n = ml_node("SVMRegressor");
    tk_attr_floats(n, "support_vectors", 4, (float[]){1, 0, 0, 1});
    tk_attr_floats(n, "coefficients", 2, (float[]){2, -1});
    tk_attr_floats(n, "rho", 1, (float[]){0.5f});
    tk_attr_int(n, "n_supports", 2);
    int64_t d[2] = {2, 2};
    onr_tensor *in[1] = {tk_f32(2, d, (float[]){1, 1, 3, -2})};
    onr_tensor *y = run1(n, 1, 1, in, 1);
    tk_assert_close_f32(y, (float[]){1.5f, 8.5f}, 2, 0, 0);
    onr_tensor_free(y);
    tk_node_free(n);
    /* support vectors not a multiple of n_supports */
    n = ml_node("SVMRegressor");
    tk_attr_floats(n, "support_vectors", 3, (float[]){1, 0, 0});
    tk_attr_floats(n, "coefficients", 2, (float[]){2, -1});
    tk_attr_floats(n, "rho", 1, (float[]){0.5f});
    tk_attr_int(n, "n_supports", 2);
    expect_fail(n, 1, 1, in, 1, "support_vectors");
    tk_node_free(n);
    /* classifier: coefficients must be (classes - 1) x vectors */
    n = ml_node("SVMClassifier");
    tk_attr_ints(n, "classlabels_ints", 3, (int64_t[]){0, 1, 2});
    tk_attr_ints(n, "vectors_per_class", 3, (int64_t[]){1, 1, 1});
    tk_attr_floats(n, "support_vectors", 6, (float[]){1, 0, 0, 1, 1, 1});
    tk_attr_floats(n, "coefficients", 5, (float[]){1, 1, 1, 1, 1});
    tk_attr_floats(n, "rho", 3, (float[]){0, 0, 0});
    expect_fail(n, 1, 1, in, 2, "(classes - 1) x vectors");
    tk_node_free(n);
    n = ml_node("SVMClassifier");
    tk_attr_ints(n, "classlabels_ints", 3, (int64_t[]){0, 1, 2});
    tk_attr_ints(n, "vectors_per_class", 2, (int64_t[]){1, 1});
    tk_attr_floats(n, "rho", 1, (float[]){0});
    expect_fail(n, 1, 1, in, 2, "vectors_per_class has 2 values");
    tk_node_free(n);
    n = ml_node("SVMClassifier");
    tk_attr_ints(n, "classlabels_ints", 2, (int64_t[]){0, 1});
    tk_attr_floats(n, "coefficients", 4, (float[]){1, 0, 0, 1});
    tk_attr_floats(n, "rho", 1, (float[]){0});
    tk_attr_string(n, "kernel_type", "CUBIC");
    expect_fail(n, 1, 1, in, 2, "kernel_type");
    tk_node_free(n);
    /* one-vs-one over 3 classes, 1 and 2 threads give the same bits */
    n = ml_node("SVMClassifier");
    tk_attr_ints(n, "classlabels_ints", 3, (int64_t[]){5, 6, 7});
    tk_attr_ints(n, "vectors_per_class", 3, (int64_t[]){2, 1, 1});
    tk_attr_floats(n, "support_vectors", 8, (float[]){1, 0, 0.5f, 0.5f, 0, 1, -1, -1});
    tk_attr_floats(n, "coefficients", 8, (float[]){1, -0.5f, 0.25f, -1, 0.75f, 1, -1, 0.5f});
    tk_attr_floats(n, "rho", 3, (float[]){0.1f, -0.2f, 0.3f});
    tk_attr_floats(n, "prob_a", 3, (float[]){-1, -2, -1.5f});
    tk_attr_floats(n, "prob_b", 3, (float[]){0.1f, 0, -0.1f});
    tk_attr_string(n, "kernel_type", "RBF");
    tk_attr_floats(n, "kernel_params", 3, (float[]){0.5f, 0, 0});
    int64_t db[2] = {4999, 2};
    onr_tensor *big[1] = {tk_rand_f32(2, db, 3)};
    onr_tensor *o1[2], *o2[2];
    onr_err err = {0};
    assert_int_equal(tk_run(n, 1, 1, big, 2, o1, 1, &err), ONR_OK);
    assert_int_equal(tk_run(n, 1, 1, big, 2, o2, 2, &err), ONR_OK);
    assert_memory_equal(o1[0]->data, o2[0]->data, 4999 * sizeof(int64_t));
    assert_memory_equal(o1[1]->data, o2[1]->data, 4999 * 3 * sizeof(float));
    /* probabilities sum to 1 */
    for (int i = 0; i < 4999; i++) {
        const float *z = (const float *)o1[1]->data + i * 3;
        assert_true(fabsf(z[0] + z[1] + z[2] - 1) < 1e-4f);
    }
    tk_free_all(2, o1);
    tk_free_all(2, o2);
    tk_free_all(1, big);
    tk_node_free(n);
    tk_free_all(1, in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_reg_values_and_nan),
        cmocka_unit_test(test_tree_reg_bad_attrs),
        cmocka_unit_test(test_tree_duplicate_and_cycle),
        cmocka_unit_test(test_tree_too_deep),
        cmocka_unit_test(test_tree_threads_identical),
        cmocka_unit_test(test_tree_classifier),
        cmocka_unit_test(test_tree_ensemble5),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_label_encoder),
        cmocka_unit_test(test_feature_ops_errors),
        cmocka_unit_test(test_svm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
