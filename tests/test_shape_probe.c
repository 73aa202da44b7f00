/*
 * test_shape_probe.c - symbolic shape inference (src/plan/pass_shapes.c):
 * values below symbolic graph-input dims get their rank, type and dims (-1
 * where symbolic) with names that say which symbolic dims are equal
 * ("N", "N*S", "2*S", "S-1"); a Reshape whose shape comes from a Shape ->
 * Gather -> Unsqueeze -> Concat chain is shaped; a data-dependent op
 * (NonZero) stops inference without error; anonymous dims are symbols of
 * their own; folding is unchanged (the same constants, the same nodes);
 * a fusion that needs ranks fires on a dynamic-batch model; and the
 * dynamic-axes tiny BERT export (testdata/tiny_bert_dynamic) fuses its
 * attention and layer norms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kutil.h"
#include "pbw.h"

#include "ir/edit.h"
#include "load/load.h"
#include "onnxrun.h"
#include "plan/passes.h"

enum { F32 = 1, I64 = 7 };

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- helpers --------------------------------------------------------------- */

static onr_model *load_graph(pbw *g, int64_t opset)
{
    pbw m = pbw_model(g, 8, opset);
    onr_model *model = NULL;
    onr_err err = {0};
    onr_status st = onr_load_buffer(m.b, m.n, NULL, &model, &err);
    free(m.b);
    if (st) fail_msg("load failed (%s): %s", onr_status_name(st), err.msg);
    return model;
}

/* The working copy, nodes resolved (plan.c's resolve_ops), folded and
 * cleaned as the pipeline does before the fusions. */
static onr_edit *open_folded(const onr_model *m)
{
    onr_edit *e = NULL;
    onr_err err = {0};
    if (onr_edit_open(m->graph, &e, &err)) fail_msg("onr_edit_open: %s", err.msg);
    for (int i = 0; i < e->g->n_nodes; i++) {
        onr_node *n = &e->g->nodes[i];
        if (!n->opset) n->opset = onr_model_opset(m, n->domain);
        n->op = onr_op_find(n->domain, n->op_type, n->opset);
        if (!n->op) fail_msg("no operator for %s", n->op_type);
    }
    if (onr_edit_compact(e, &err) || onr_pass_fold(e, 1, &err) || onr_pass_identity(e, &err) ||
        onr_pass_dce(e, &err))
        fail_msg("passes: %s", err.msg);
    return e;
}

static void run_shapes(onr_edit *e)
{
    onr_err err = {0};
    onr_status st = onr_pass_shapes(e, 1, &err);
    if (st) fail_msg("onr_pass_shapes: %s", err.msg);
}

static int val(const onr_graph *g, const char *name)
{
    for (int v = 0; v < g->n_values; v++)
        if (strcmp(g->values[v].name, name) == 0) return v;
    fail_msg("no value %s", name);
    return -1;
}

/* Value `name` has type dt, rank and dims (-1 symbolic), symbolic dims
 * named names[d] (NULL: unnamed; names may be NULL when none is symbolic). */
static void expect(const onr_edit *e, const char *name, onr_dtype dt, int rank,
                   const int64_t *dims, const char *const *names)
{
    const onr_value *v = &e->g->values[val(e->g, name)];
    if (v->dtype != dt || v->rank != rank)
        fail_msg("%s: dtype %d rank %d, expected %d %d", name, v->dtype, v->rank, dt, rank);
    for (int d = 0; d < rank; d++) {
        if (v->dims[d] != dims[d])
            fail_msg("%s: dim %d is %lld, expected %lld", name, d, (long long)v->dims[d],
                     (long long)dims[d]);
        if (dims[d] >= 0) continue;
        const char *want = names ? names[d] : NULL, *got = v->dim_names[d];
        if (!want != !got || (want && strcmp(want, got) != 0))
            fail_msg("%s: dim %d named %s, expected %s", name, d, got ? got : "(none)",
                     want ? want : "(none)");
    }
}

static void init_i64(pbw *g, const char *name, int rank, const int64_t *dims, const int64_t *v,
                     size_t n)
{
    pbw_init_i64(g, name, rank, dims, v, n);
}

/* ---- the graphs ------------------------------------------------------------ */

/* x float [N,S,8] (names, or static [3,5,8] when !sym):
 *   z  = MatMul(Relu(x), W[8,4])                      [N,S,4]
 *   f  = Reshape(z, [-1,4])                           [N*S,4]
 *   h  = Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)),
 *                          Unsqueeze(Gather(Shape(x), 1)), [2,4]))  [N,S,2,4]
 *   sl = Slice(x, [1], [big], [1])                    [N,S-1,8]
 *   cc = Concat(x, x, axis 1)                         [N,2*S,8]
 *   cl = Slice(tab [8,4], [0], [S], [0])             [min(S,8),4]
 *   t  = Transpose(NonZero(x))                        unknown (data-dependent)
 */
static pbw probe_graph(int sym)
{
    pbw g = {0};
    pbw_str(&g, 2, "probe");
    float w[32];
    for (int i = 0; i < 32; i++) w[i] = (float)(i % 7) * 0.25f - 0.5f;
    pbw_init_f32(&g, "W", 2, (const int64_t[]){8, 4}, w, 32);
    init_i64(&g, "shp", 1, (const int64_t[]){2}, (const int64_t[]){-1, 4}, 2);
    init_i64(&g, "i0", 0, NULL, (const int64_t[]){0}, 1);
    init_i64(&g, "i1", 0, NULL, (const int64_t[]){1}, 1);
    init_i64(&g, "ax0", 1, (const int64_t[]){1}, (const int64_t[]){0}, 1);
    init_i64(&g, "c24", 1, (const int64_t[]){2}, (const int64_t[]){2, 4}, 2);
    init_i64(&g, "one", 1, (const int64_t[]){1}, (const int64_t[]){1}, 1);
    init_i64(&g, "big", 1, (const int64_t[]){1}, (const int64_t[]){1 << 30}, 1);
    pbw_node(&g, "Relu", "relu", NAMES("x"), NAMES("r"), NULL);
    pbw_node(&g, "MatMul", "mm", NAMES("r", "W"), NAMES("z"), NULL);
    pbw_node(&g, "Reshape", "flat", NAMES("z", "shp"), NAMES("f"), NULL);
    pbw_node(&g, "Shape", "shape", NAMES("x"), NAMES("sh"), NULL);
    pbw_node(&g, "Gather", "g0", NAMES("sh", "i0"), NAMES("b"), NULL);
    pbw_node(&g, "Gather", "g1", NAMES("sh", "i1"), NAMES("s"), NULL);
    pbw_node(&g, "Unsqueeze", "u0", NAMES("b", "ax0"), NAMES("ub"), NULL);
    pbw_node(&g, "Unsqueeze", "u1", NAMES("s", "ax0"), NAMES("us"), NULL);
    pbw a = {0};
    pbw_attr_int(&a, "axis", 0);
    pbw_node(&g, "Concat", "cat", NAMES("ub", "us", "c24"), NAMES("cat"), &a);
    pbw_node(&g, "Reshape", "heads", NAMES("x", "cat"), NAMES("h"), NULL);
    pbw_node(&g, "Slice", "slice", NAMES("x", "one", "big", "one"), NAMES("sl"), NULL);
    a = (pbw){0};
    pbw_attr_int(&a, "axis", 1);
    pbw_node(&g, "Concat", "cat2", NAMES("x", "x"), NAMES("cc"), &a);
    /* a table of 8 rows sliced by the sequence length: min(S, 8) */
    float tab[32] = {0};
    pbw_init_f32(&g, "tab", 2, (const int64_t[]){8, 4}, tab, 32);
    init_i64(&g, "zero1", 1, (const int64_t[]){1}, (const int64_t[]){0}, 1);
    pbw_node(&g, "Slice", "clamp", NAMES("tab", "zero1", "us", "zero1"), NAMES("cl"), NULL);
    pbw_node(&g, "NonZero", "nz", NAMES("x"), NAMES("nzi"), NULL);
    pbw_node(&g, "Transpose", "tr", NAMES("nzi"), NAMES("t"), NULL);
    const int64_t xs[3] = {3, 5, 8}, xd[3] = {-1, -1, 8};
    if (sym) pbw_value_info_named(&g, 11, "x", F32, 3, xd, NAMES("N", "S", NULL));
    else pbw_value_info(&g, 11, "x", F32, 3, xs);
    const char *outs[] = {"f", "h", "sl", "cc", "t", "sh", "cl"};
    for (int i = 0; i < 7; i++) pbw_value_info(&g, 12, outs[i], F32, -1, NULL);
    return g;
}

/* ---- tests -------------------------------------------------------------------- */

static void test_shapes_and_names(void **state)
{
    (void)state;
    pbw g = probe_graph(1);
    onr_model *m = load_graph(&g, 13);
    onr_edit *e = open_folded(m);
    /* static inference stops below the symbolic dims */
    assert_int_equal(e->g->values[val(e->g, "z")].rank, -1);
    assert_int_equal(e->g->values[val(e->g, "h")].rank, -1);
    run_shapes(e);
    const char *ns8[] = {"N", "S", NULL};
    expect(e, "r", ONR_FLOAT, 3, (const int64_t[]){-1, -1, 8}, ns8);
    expect(e, "z", ONR_FLOAT, 3, (const int64_t[]){-1, -1, 4}, ns8);
    expect(e, "f", ONR_FLOAT, 2, (const int64_t[]){-1, 4}, NAMES("N*S"));
    /* the shape chain: small int64 tensors evaluated under the probes */
    expect(e, "sh", ONR_INT64, 1, (const int64_t[]){3}, NULL);
    expect(e, "b", ONR_INT64, 0, NULL, NULL);
    expect(e, "cat", ONR_INT64, 1, (const int64_t[]){4}, NULL);
    expect(e, "h", ONR_FLOAT, 4, (const int64_t[]){-1, -1, 2, 4}, ns8);
    expect(e, "sl", ONR_FLOAT, 3, (const int64_t[]){-1, -1, 8}, NAMES("N", "S-1"));
    expect(e, "cc", ONR_FLOAT, 3, (const int64_t[]){-1, -1, 8}, NAMES("N", "2*S"));
    /* a clamp of S: symbolic (the smallest probes are below 8), unnamed */
    expect(e, "cl", ONR_FLOAT, 2, (const int64_t[]){-1, 4}, NULL);
    /* data-dependent: NonZero's count is not a shape; nothing below it */
    assert_int_equal(e->g->values[val(e->g, "t")].rank, -1);
    /* no probe value became a constant */
    for (int v = 0; v < e->g->n_values; v++) {
        const onr_value *x = &e->g->values[v];
        if (x->konst || x->is_input) continue;
        for (int d = 0; d < x->rank; d++)
            if (x->dims[d] > 4 && x->dims[d] != 8)
                fail_msg("%s: dim %d is %lld (a probe leaked?)", x->name, d,
                         (long long)x->dims[d]);
    }
    onr_edit_free(e);
    onr_model_free(m);
}

/* Folding is exactly what it is without the pass: the same constants (the
 * same tensors), the same live nodes; with static inputs nothing changes. */
static void test_folding_unchanged(void **state)
{
    (void)state;
    for (int sym = 0; sym < 2; sym++) {
        pbw g = probe_graph(sym);
        onr_model *m = load_graph(&g, 13);
        onr_edit *e = open_folded(m);
        int nv = e->g->n_values, nn = e->g->n_nodes;
        const onr_tensor **k = calloc((size_t)nv, sizeof *k);
        uint8_t *dead = malloc((size_t)nn);
        onr_value *before = malloc((size_t)nv * sizeof *before);
        assert_non_null(k);
        assert_non_null(dead);
        assert_non_null(before);
        for (int v = 0; v < nv; v++) k[v] = e->g->values[v].konst;
        memcpy(dead, e->dead, (size_t)nn);
        memcpy(before, e->g->values, (size_t)nv * sizeof *before);
        run_shapes(e);
        assert_int_equal(e->g->n_values, nv);
        assert_int_equal(e->g->n_nodes, nn);
        assert_memory_equal(dead, e->dead, (size_t)nn);
        for (int v = 0; v < nv; v++) {
            if (e->g->values[v].konst != k[v]) fail_msg("value %s: constant changed", before[v].name);
            if (before[v].rank >= 0 && e->g->values[v].rank != before[v].rank)
                fail_msg("value %s: rank changed", before[v].name);
        }
        if (!sym) /* static: nothing to do, nothing touched */
            for (int v = 0; v < nv; v++)
                if (memcmp(&before[v], &e->g->values[v], sizeof before[v]) != 0)
                    fail_msg("static model: value %s changed", before[v].name);
        /* in the static model the Shape chain folded away */
        if (!sym) assert_non_null(e->g->values[val(e->g, "cat")].konst);
        else assert_null(e->g->values[val(e->g, "cat")].konst);
        free(k), free(dead), free(before);
        onr_edit_free(e);
        onr_model_free(m);
    }
}

/* Anonymous symbolic dims are symbols of their own: x [?,8] + y [?,8]
 * cannot be shown to agree (the Add stays unshaped, no error), while
 * Relu(x) keeps x's own symbol. */
static void test_anonymous_dims(void **state)
{
    (void)state;
    pbw g = {0};
    pbw_str(&g, 2, "anon");
    const int64_t d[2] = {-1, 8};
    pbw_value_info_named(&g, 11, "x", F32, 2, d, NULL);
    pbw_value_info_named(&g, 11, "y", F32, 2, d, NULL);
    pbw_node(&g, "Relu", "relu", NAMES("x"), NAMES("r"), NULL);
    pbw_node(&g, "Add", "add", NAMES("r", "y"), NAMES("s"), NULL);
    pbw_value_info(&g, 12, "s", F32, -1, NULL);
    onr_model *m = load_graph(&g, 13);
    onr_edit *e = open_folded(m);
    run_shapes(e);
    expect(e, "r", ONR_FLOAT, 2, d, NAMES("?x[0]", NULL));
    assert_int_equal(e->g->values[val(e->g, "s")].rank, -1);
    onr_edit_free(e);
    onr_model_free(m);
}

/* What probes cannot shape is left alone without error: a Reshape to a
 * static shape that fits only one batch (x [N,8] -> [4,16], N = 8) is
 * refused under every probe, and a graph with more symbols than the pass
 * takes (70 inputs of their own batch) is not probed at all; the plans
 * still run. */
static void test_unshapeable(void **state)
{
    (void)state;
    pbw g = {0};
    pbw_str(&g, 2, "fixed");
    init_i64(&g, "shp", 1, (const int64_t[]){2}, (const int64_t[]){4, 16}, 2);
    pbw_node(&g, "Reshape", "rs", NAMES("x", "shp"), NAMES("r"), NULL);
    pbw_node(&g, "Relu", "relu", NAMES("r"), NAMES("y"), NULL);
    pbw_value_info_named(&g, 11, "x", F32, 2, (const int64_t[]){-1, 8}, NAMES("N", NULL));
    pbw_value_info(&g, 12, "y", F32, -1, NULL);
    pbw model = pbw_model(&g, 8, 13);
    onr_model *m = NULL;
    onr_err err = {0};
    if (onr_load_buffer(model.b, model.n, NULL, &m, &err)) fail_msg("load: %s", err.msg);
    onr_edit *e = open_folded(m);
    run_shapes(e);
    assert_int_equal(e->g->values[val(e->g, "r")].rank, -1);
    assert_int_equal(e->g->values[val(e->g, "y")].rank, -1);
    onr_edit_free(e);
    onr_model_free(m);
    onr_tensor *x = tk_rand_f32(2, (const int64_t[]){8, 8}, 5u);
    tk_fuse_report r;
    tk_fuse_check(model.b, model.n, 1, &x, NULL, 1e-4f, 1e-5f, 1, &r);
    onr_tensor_free(x);
    free(model.b);

    enum { NIN = 70 };
    g = (pbw){0};
    pbw_str(&g, 2, "many");
    char names[NIN][16], dims[NIN][16];
    for (int i = 0; i < NIN; i++) {
        snprintf(names[i], sizeof names[i], "x%d", i);
        snprintf(dims[i], sizeof dims[i], "n%d", i);
        const char *nm[2] = {dims[i], NULL};
        pbw_value_info_named(&g, 11, names[i], F32, 2, (const int64_t[]){-1, 4}, nm);
    }
    pbw_node(&g, "Relu", "relu", NAMES("x0"), NAMES("y"), NULL);
    pbw_value_info(&g, 12, "y", F32, -1, NULL);
    m = load_graph(&g, 13);
    e = open_folded(m);
    run_shapes(e);
    assert_int_equal(e->g->values[val(e->g, "y")].rank, -1); /* not probed */
    onr_edit_free(e);
    onr_model_free(m);
}

/* A decomposed LayerNorm over axes [2] (positive: the pass needs x's rank)
 * on x [N,S,8]: fused only with symbolic shapes, outputs equal. */
static void test_fusion_dynamic_batch(void **state)
{
    (void)state;
    pbw g = {0};
    pbw_str(&g, 2, "ln");
    pbw a = {0};
    pbw_attr_ints(&a, "axes", (const int64_t[]){2}, 1);
    pbw_node(&g, "ReduceMean", "rm", NAMES("x"), NAMES("m"), &a);
    pbw_node(&g, "Sub", "sub", NAMES("x", "m"), NAMES("d"), NULL);
    const float two = 2.0f, eps = 1e-5f;
    pbw_init_f32(&g, "two", 0, NULL, &two, 1);
    pbw_init_f32(&g, "eps", 0, NULL, &eps, 1);
    float gam[8], bet[8];
    for (int i = 0; i < 8; i++) gam[i] = 1.0f + 0.1f * (float)i, bet[i] = 0.05f * (float)(i - 3);
    pbw_init_f32(&g, "gamma", 1, (const int64_t[]){8}, gam, 8);
    pbw_init_f32(&g, "beta", 1, (const int64_t[]){8}, bet, 8);
    pbw_node(&g, "Pow", "pow", NAMES("d", "two"), NAMES("p"), NULL);
    a = (pbw){0};
    pbw_attr_ints(&a, "axes", (const int64_t[]){2}, 1);
    pbw_node(&g, "ReduceMean", "rm2", NAMES("p"), NAMES("var"), &a);
    pbw_node(&g, "Add", "add_eps", NAMES("var", "eps"), NAMES("ve"), NULL);
    pbw_node(&g, "Sqrt", "sqrt", NAMES("ve"), NAMES("sd"), NULL);
    pbw_node(&g, "Div", "div", NAMES("d", "sd"), NAMES("nrm"), NULL);
    pbw_node(&g, "Mul", "mul_g", NAMES("nrm", "gamma"), NAMES("ng"), NULL);
    pbw_node(&g, "Add", "add_b", NAMES("ng", "beta"), NAMES("y"), NULL);
    pbw_value_info_named(&g, 11, "x", F32, 3, (const int64_t[]){-1, -1, 8},
                         NAMES("N", "S", NULL));
    pbw_value_info(&g, 12, "y", F32, -1, NULL);
    pbw model = pbw_model(&g, 8, 13);
    for (int n = 1; n <= 3; n += 2) {
        onr_tensor *x = tk_rand_f32(3, (const int64_t[]){n, 5, 8}, 40u + (uint32_t)n);
        tk_fuse_report r;
        tk_fuse_check(model.b, model.n, 1, &x, "LayerNormalization", 1e-4f, 1e-5f, 1, &r);
        assert_int_equal(r.n_op, 1);
        assert_int_equal(r.n_fused, 1);
        assert_int_equal(r.replaced, 9);
        assert_int_equal(r.steps_fused, 1);
        onr_tensor_free(x);
    }
    free(model.b);
}

/* Causal attention with a dynamic batch and sequence, as torch exports
 * GPT's masked_fill(bias[:, :, :t, :t] == 0, -inf): the constant triangle
 * sliced by the run-time length (a Shape chain) becomes is_causal (fill
 * -inf or float32's lowest). With a triangle that is not causal (upper)
 * nothing fuses. */
static pbw causal_graph(int lower, int finite)
{
    pbw g = {0};
    pbw_str(&g, 2, "causal");
    float tri[32 * 32];
    for (int i = 0; i < 32; i++)
        for (int j = 0; j < 32; j++) tri[i * 32 + j] = lower ? (j <= i) : (j >= i);
    pbw_init_f32(&g, "T", 4, (const int64_t[]){1, 1, 32, 32}, tri, 32 * 32);
    init_i64(&g, "split", 1, (const int64_t[]){4}, (const int64_t[]){0, 0, 2, 4}, 4);
    init_i64(&g, "merge", 1, (const int64_t[]){3}, (const int64_t[]){0, 0, 8}, 3);
    init_i64(&g, "i1", 0, NULL, (const int64_t[]){1}, 1);
    init_i64(&g, "ax0", 1, (const int64_t[]){1}, (const int64_t[]){0}, 1);
    init_i64(&g, "zz", 1, (const int64_t[]){2}, (const int64_t[]){0, 0}, 2);
    init_i64(&g, "ax23", 1, (const int64_t[]){2}, (const int64_t[]){2, 3}, 2);
    const float half = 0.5f, zero = 0.0f, ninf = finite ? -3.4e38f : -1.0f / 0.0f;
    pbw_init_f32(&g, "half", 0, NULL, &half, 1);
    pbw_init_f32(&g, "zero", 0, NULL, &zero, 1);
    pbw_init_f32(&g, "ninf", 0, NULL, &ninf, 1);
    const char *sides[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        char r[8], t[8];
        snprintf(r, sizeof r, "%sr", sides[i]);
        snprintf(t, sizeof t, "%st", sides[i]);
        pbw_node(&g, "Reshape", r, NAMES("x", "split"), NAMES(r), NULL);
        pbw a = {0};
        pbw_attr_ints(&a, "perm", i == 1 ? (const int64_t[]){0, 2, 3, 1} : (const int64_t[]){0, 2, 1, 3},
                      4);
        pbw_node(&g, "Transpose", t, NAMES(r), NAMES(t), &a);
    }
    pbw_node(&g, "MatMul", "qk", NAMES("qt", "kt"), NAMES("sc"), NULL);
    pbw_node(&g, "Mul", "scale", NAMES("sc", "half"), NAMES("ss"), NULL);
    pbw_node(&g, "Shape", "shape", NAMES("x"), NAMES("sh"), NULL);
    pbw_node(&g, "Gather", "gs", NAMES("sh", "i1"), NAMES("s"), NULL);
    pbw_node(&g, "Unsqueeze", "us", NAMES("s", "ax0"), NAMES("s1"), NULL);
    pbw a = {0};
    pbw_attr_int(&a, "axis", 0);
    pbw_node(&g, "Concat", "ends", NAMES("s1", "s1"), NAMES("ends"), &a);
    pbw_node(&g, "Slice", "tri", NAMES("T", "zz", "ends", "ax23"), NAMES("tb"), NULL);
    pbw_node(&g, "Equal", "eq", NAMES("tb", "zero"), NAMES("masked"), NULL);
    pbw_node(&g, "Where", "where", NAMES("masked", "ninf", "ss"), NAMES("sm"), NULL);
    a = (pbw){0};
    pbw_attr_int(&a, "axis", -1);
    pbw_node(&g, "Softmax", "softmax", NAMES("sm"), NAMES("p"), &a);
    pbw_node(&g, "MatMul", "pv", NAMES("p", "vt"), NAMES("o4"), NULL);
    a = (pbw){0};
    pbw_attr_ints(&a, "perm", (const int64_t[]){0, 2, 1, 3}, 4);
    pbw_node(&g, "Transpose", "ot", NAMES("o4"), NAMES("ot"), &a);
    pbw_node(&g, "Reshape", "om", NAMES("ot", "merge"), NAMES("y"), NULL);
    pbw_value_info_named(&g, 11, "x", F32, 3, (const int64_t[]){-1, -1, 8},
                         NAMES("B", "S", NULL));
    pbw_value_info(&g, 12, "y", F32, -1, NULL);
    return pbw_model(&g, 8, 13);
}

static void test_causal_dynamic(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) { /* upper; lower with -inf; lower with finfo.min (HF) */
        int lower = k > 0;
        pbw model = causal_graph(lower, k == 2);
        onr_tensor *x = tk_rand_f32(3, (const int64_t[]){2, 5, 8}, 77u);
        tk_fuse_report r;
        tk_fuse_check(model.b, model.n, 1, &x, "Attention", 1e-4f, 1e-5f, 1, &r);
        assert_int_equal(r.n_op, lower);
        assert_int_equal(r.n_fused, lower);
        if (lower) assert_int_equal(r.steps_fused, 1); /* the mask chain is dead */
        onr_tensor_free(x);
        free(model.b);
    }
}

/* torch.nn.MultiheadAttention's sequence-first heads (ViT) with a
 * symbolic batch: x [5,B,8] -> Reshape [5,B*2,4] -> Transpose [1,0,2], the
 * merge back to [5*B,8]: Attention with Transposes around it. */
static void test_sequence_first_dynamic(void **state)
{
    (void)state;
    pbw g = {0};
    pbw_str(&g, 2, "mha");
    init_i64(&g, "split", 1, (const int64_t[]){3}, (const int64_t[]){5, -1, 4}, 3);
    init_i64(&g, "merge", 1, (const int64_t[]){2}, (const int64_t[]){-1, 8}, 2);
    const float half = 0.5f;
    pbw_init_f32(&g, "half", 0, NULL, &half, 1);
    const char *sides[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        char r[8], t[8];
        snprintf(r, sizeof r, "%sr", sides[i]);
        snprintf(t, sizeof t, "%st", sides[i]);
        pbw_node(&g, "Reshape", r, NAMES("x", "split"), NAMES(r), NULL);
        pbw a = {0};
        pbw_attr_ints(&a, "perm", i == 1 ? (const int64_t[]){1, 2, 0} : (const int64_t[]){1, 0, 2}, 3);
        pbw_node(&g, "Transpose", t, NAMES(r), NAMES(t), &a);
    }
    pbw_node(&g, "Mul", "scale", NAMES("qt", "half"), NAMES("qs"), NULL);
    pbw_node(&g, "MatMul", "qk", NAMES("qs", "kt"), NAMES("sc"), NULL);
    pbw a = {0};
    pbw_attr_int(&a, "axis", -1);
    pbw_node(&g, "Softmax", "softmax", NAMES("sc"), NAMES("p"), &a);
    pbw_node(&g, "MatMul", "pv", NAMES("p", "vt"), NAMES("o"), NULL);
    a = (pbw){0};
    pbw_attr_ints(&a, "perm", (const int64_t[]){1, 0, 2}, 3);
    pbw_node(&g, "Transpose", "ot", NAMES("o"), NAMES("ot"), &a);
    pbw_node(&g, "Reshape", "om", NAMES("ot", "merge"), NAMES("y"), NULL);
    pbw_value_info_named(&g, 11, "x", F32, 3, (const int64_t[]){5, -1, 8}, NAMES(NULL, "B", NULL));
    pbw_value_info(&g, 12, "y", F32, -1, NULL);
    pbw model = pbw_model(&g, 8, 13);
    for (int b = 1; b <= 3; b += 2) {
        onr_tensor *x = tk_rand_f32(3, (const int64_t[]){5, b, 8}, 90u + (uint32_t)b);
        tk_fuse_report r;
        tk_fuse_check(model.b, model.n, 1, &x, "Attention", 1e-4f, 1e-5f, 1, &r);
        assert_int_equal(r.n_op, 1);
        assert_int_equal(r.n_fused, 1);
        onr_tensor_free(x);
    }
    free(model.b);
}

/* A Linear and a residual with a dynamic batch and sequence: the residual
 * joins FusedMatMul when its dims have the product's names, not when its
 * batch has another name (it might broadcast). */
static void test_gemm_residual_dynamic(void **state)
{
    (void)state;
    for (int same = 0; same < 2; same++) {
        pbw g = {0};
        pbw_str(&g, 2, "linear");
        float w[64], b[8];
        for (int i = 0; i < 64; i++) w[i] = (float)((i * 7) % 11) * 0.1f - 0.5f;
        for (int i = 0; i < 8; i++) b[i] = 0.1f * (float)i;
        pbw_init_f32(&g, "W", 2, (const int64_t[]){8, 8}, w, 64);
        pbw_init_f32(&g, "b", 1, (const int64_t[]){8}, b, 8);
        pbw_node(&g, "MatMul", "mm", NAMES("x", "W"), NAMES("m"), NULL);
        pbw_node(&g, "Add", "bias", NAMES("m", "b"), NAMES("mb"), NULL);
        pbw_node(&g, "Add", "res", NAMES("mb", "r"), NAMES("y"), NULL);
        const int64_t d[3] = {-1, -1, 8};
        pbw_value_info_named(&g, 11, "x", F32, 3, d, NAMES("N", "S", NULL));
        pbw_value_info_named(&g, 11, "r", F32, 3, d, same ? NAMES("N", "S", NULL) : NAMES("M", "S", NULL));
        pbw_value_info(&g, 12, "y", F32, -1, NULL);
        pbw model = pbw_model(&g, 8, 13);
        onr_tensor *in[2] = {tk_rand_f32(3, (const int64_t[]){2, 3, 8}, 61u),
                             tk_rand_f32(3, (const int64_t[]){2, 3, 8}, 62u)};
        tk_fuse_report r;
        tk_fuse_check(model.b, model.n, 2, in, "FusedMatMul", 1e-4f, 1e-5f, 1, &r);
        assert_int_equal(r.n_fused, 1);
        assert_int_equal(r.replaced, same ? 3 : 2);
        tk_free_all(2, in);
        free(model.b);
    }
}

/* The dynamic-axes tiny BERT (batch and sequence symbolic): attention,
 * layer norm and skip layer norm fuse as in the static export. Outputs
 * against PyTorch's are checked by the model_tiny_bert_dynamic tests. */
static void test_tiny_bert_dynamic(void **state)
{
    (void)state;
    const char *src = getenv("ONR_SOURCE_DIR");
    if (!src) skip();
    char path[1024];
    snprintf(path, sizeof path, "%s/testdata/tiny_bert_dynamic/model.onnx", src);
    onr_session *s = NULL;
    if (onr_session_open(path, NULL, &s)) fail_msg("%s: %s", path, onr_session_errmsg(s));
    assert_int_equal(tk_count_steps(s, "Attention"), 2);
    assert_int_equal(tk_count_steps(s, "LayerNormalization"), 1);
    assert_int_equal(tk_count_steps(s, "SkipLayerNormalization"), 4);
    assert_int_equal(tk_count_steps(s, "Softmax"), 0);
    assert_int_equal(tk_count_steps(s, "ReduceMean"), 0);
    onr_session_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_and_names),
        cmocka_unit_test(test_folding_unchanged),
        cmocka_unit_test(test_anonymous_dims),
        cmocka_unit_test(test_unshapeable),
        cmocka_unit_test(test_fusion_dynamic_batch),
        cmocka_unit_test(test_causal_dynamic),
        cmocka_unit_test(test_sequence_first_dynamic),
        cmocka_unit_test(test_gemm_residual_dynamic),
        cmocka_unit_test(test_tiny_bert_dynamic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
