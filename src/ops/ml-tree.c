/*
 * ml-tree.c - the tree ensembles of ai.onnx.ml: TreeEnsembleRegressor and
 * TreeEnsembleClassifier (ml opsets 1-4: version 1, and version 3 with the
 * *_as_tensor double attributes; deprecated from 5) and TreeEnsemble (ml
 * opset 5: nodes_* / leaf_* arrays, BRANCH_MEMBER sets, integer enums).
 *
 * create compiles every form into one forest: branch nodes with resolved
 * child references (a node index, or ~leaf for a leaf), leaves with a list
 * of (target, weight) votes, one root reference per tree. It refuses what
 * could make a walk misbehave: arrays of different lengths, node ids that
 * name no node of the tree, cycles, trees deeper than ML_TREE_MAX_DEPTH,
 * target/class ids out of range. Checks are iterative (an explicit
 * stack), so a hostile model cannot exhaust the C stack.
 *
 * run walks each row through the trees in a fixed order (ascending tree
 * id for versions 1/3, tree_roots order for 5) and adds the votes of each
 * leaf in attribute order, in double; rows are split among threads, so
 * the result does not depend on the thread count.
 *
 * NaN features: versions 1/3 follow nodes_missing_value_tracks_true alone
 * (the reference's leaf_index_tree); version 5 takes the true branch when
 * it is set and otherwise compares (so BRANCH_NEQ is true for NaN), as
 * the reference TreeEnsemble does.
 * MIN / MAX: a target no leaf voted for gets 0 before base values (the
 * reference leaves the float extreme there; onnxruntime gives 0).
 */
#include <math.h>
#include <stdio.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ml.h"

#define ML_TREE_MAX_DEPTH 16384

enum { TM_LEQ, TM_LT, TM_GTE, TM_GT, TM_EQ, TM_NEQ, TM_MEMBER, TM_LEAF };
enum { AGG_AVERAGE, AGG_SUM, AGG_MIN, AGG_MAX };

typedef struct ml_tnode {
    double value;
    int32_t feature;
    uint8_t mode, nan_true;
    int32_t child[2];        /* true, false: node index >= 0, or ~leaf */
    int64_t set_off, set_len; /* BRANCH_MEMBER: sorted values in sets[] */
} ml_tnode;

typedef struct ml_forest {
    int32_t n_nodes, n_leaves, n_trees;
    ml_tnode *nodes;
    int32_t *roots;   /* per tree: node index or ~leaf */
    int64_t *leaf_off; /* votes of leaf l: [leaf_off[l], leaf_off[l+1]) */
    int32_t *w_target;
    double *w_value;
    double *sets;
    int64_t n_targets;
    int agg, pt, nan_v5;
    int64_t n_features; /* 1 + the largest feature a reachable branch reads */
    double *base;
    int64_t n_base;
} ml_forest;

static void forest_free(ml_forest *f)
{
    free(f->nodes), free(f->roots), free(f->leaf_off), free(f->w_target), free(f->w_value);
    free(f->sets), free(f->base);
}

/* Walk the trees from their roots: refuse cycles and over-deep trees and
 * find the features read. Iterative DFS with a stack of (node, next child). */
static int forest_check(onr_err *err, ml_forest *f)
{
    int32_t n = f->n_nodes;
    uint8_t *color = calloc((size_t)n + 1, 1);
    int32_t *depth = calloc((size_t)n + 1, sizeof *depth);
    struct fr { int32_t v, k; } *st = malloc(((size_t)n + 1) * sizeof *st);
    int rc = ONR_OK;
    if (!color || !depth || !st) {
        rc = onr_seterr(err, ONR_E_NOMEM, "out of memory checking the trees");
        goto out;
    }
    f->n_features = 0;
    for (int32_t t = 0; t < f->n_trees && rc == ONR_OK; t++) {
        int32_t r = f->roots[t];
        if (r < 0 || color[r] == 2) continue;
        int32_t sp = 0;
        st[sp++] = (struct fr){r, 0};
        color[r] = 1;
        while (sp > 0) {
            struct fr *top = &st[sp - 1];
            const ml_tnode *nd = &f->nodes[top->v];
            if (top->k < 2) {
                int32_t ch = nd->child[top->k++];
                if (ch < 0 || color[ch] == 2) continue;
                if (color[ch] == 1) {
                    rc = onr_seterr(err, ONR_E_MODEL,
                                    "tree %d has a cycle: node index %d leads back to node index %d",
                                    (int)t, (int)top->v, (int)ch);
                    break;
                }
                color[ch] = 1;
                st[sp++] = (struct fr){ch, 0};
                continue;
            }
            int32_t d = 0;
            for (int k = 0; k < 2; k++)
                if (nd->child[k] >= 0 && depth[nd->child[k]] > d) d = depth[nd->child[k]];
            depth[top->v] = d + 1;
            if (d + 1 > ML_TREE_MAX_DEPTH) {
                rc = onr_seterr(err, ONR_E_UNSUPPORTED, "tree %d is deeper than %d levels", (int)t,
                                ML_TREE_MAX_DEPTH);
                break;
            }
            if (nd->feature + (int64_t)1 > f->n_features) f->n_features = nd->feature + (int64_t)1;
            color[top->v] = 2;
            sp--;
        }
    }
out:
    free(color), free(depth), free(st);
    return rc;
}

static int mode_from_string(const char *s)
{
    static const char *names[] = {"BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT",
                                  "BRANCH_EQ",  "BRANCH_NEQ", NULL, "LEAF"};
    for (int i = 0; i < 8; i++)
        if (names[i] && strcmp(s, names[i]) == 0) return i;
    return -1;
}

/* ---- versions 1 and 3: (tree id, node id) addressed nodes --------------------- */

typedef struct tkey { int64_t tree, node; int32_t idx; } tkey;

static int tkey_cmp(const void *a, const void *b)
{
    const tkey *x = a, *y = b;
    if (x->tree != y->tree) return x->tree < y->tree ? -1 : 1;
    if (x->node != y->node) return x->node < y->node ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int32_t tkey_find(const tkey *keys, int32_t n, int64_t tree, int64_t node)
{
    int32_t lo = 0, hi = n;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        const tkey *k = &keys[mid];
        if (k->tree < tree || (k->tree == tree && k->node < node))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && keys[lo].tree == tree && keys[lo].node == node ? keys[lo].idx : -1;
}

/* Read the v1/v3 attributes; vote attributes are <p>ids, <p>nodeids,
 * <p>treeids, <p>weights with p "class_" or "target_"; n_out targets. */
static int forest_v13(onr_create_ctx *c, ml_forest *f, const char *p, int64_t n_out)
{
    int wt = c->opset >= 3;
    int64_t n, nt, nf, nmo, ntr, nfa, nmv, nw_ids, nw_nodes, nw_trees, nw, nv, nh;
    const int64_t *nodeids = ml_attr_ints(c, "nodes_nodeids", &n);
    const int64_t *treeids = ml_attr_ints(c, "nodes_treeids", &nt);
    const int64_t *featids = ml_attr_ints(c, "nodes_featureids", &nf);
    char *const *modes = ml_attr_strings(c, "nodes_modes", &nmo);
    const int64_t *trues = ml_attr_ints(c, "nodes_truenodeids", &ntr);
    const int64_t *falses = ml_attr_ints(c, "nodes_falsenodeids", &nfa);
    const int64_t *mvt = ml_attr_ints(c, "nodes_missing_value_tracks_true", &nmv);
    char an[4][40];
    snprintf(an[0], sizeof an[0], "%sids", p);
    snprintf(an[1], sizeof an[1], "%snodeids", p);
    snprintf(an[2], sizeof an[2], "%streeids", p);
    snprintf(an[3], sizeof an[3], "%sweights", p);
    const int64_t *w_ids = ml_attr_ints(c, an[0], &nw_ids);
    const int64_t *w_nodes = ml_attr_ints(c, an[1], &nw_nodes);
    const int64_t *w_trees = ml_attr_ints(c, an[2], &nw_trees);
    double *values = NULL, *weights = NULL, *hit = NULL;
    tkey *keys = NULL;
    int32_t *leaf_of = NULL;
    int64_t *cnt = NULL;
    int rc;
    if ((rc = ml_attr_reals(c, "nodes_values", wt, &values, &nv, NULL)) ||
        (rc = ml_attr_reals(c, an[3], wt, &weights, &nw, NULL)) ||
        (rc = ml_attr_reals(c, "nodes_hitrates", wt, &hit, &nh, NULL)))
        goto out;
    struct { const char *name; int64_t len; int optional; } lens[] = {
        {"nodes_treeids", nt, 0},      {"nodes_featureids", nf, 0},   {"nodes_modes", nmo, 0},
        {"nodes_truenodeids", ntr, 0}, {"nodes_falsenodeids", nfa, 0}, {"nodes_values", nv, 0},
        {"nodes_missing_value_tracks_true", nmv, 1}, {"nodes_hitrates", nh, 1}};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        if (lens[i].len != n && !(lens[i].optional && lens[i].len == 0)) {
            rc = onr_seterr(c->err, ONR_E_MODEL,
                            "attribute %s has %lld elements but nodes_nodeids has %lld",
                            lens[i].name, (long long)lens[i].len, (long long)n);
            goto out;
        }
    if (nw_nodes != nw_ids || nw_trees != nw_ids || nw != nw_ids) {
        rc = onr_seterr(c->err, ONR_E_MODEL,
                        "attributes %s, %s, %s and %s have different lengths (%lld, %lld, %lld, %lld)",
                        an[0], an[1], an[2], an[3], (long long)nw_ids, (long long)nw_nodes,
                        (long long)nw_trees, (long long)nw);
        goto out;
    }
    if (n >= INT32_MAX / 2 || nw_ids >= INT32_MAX / 2) {
        rc = onr_seterr(c->err, ONR_E_UNSUPPORTED, "too many tree nodes or votes");
        goto out;
    }
    f->n_nodes = (int32_t)n;
    keys = malloc(((size_t)n + 1) * sizeof *keys);
    leaf_of = malloc(((size_t)n + 1) * sizeof *leaf_of);
    f->nodes = calloc((size_t)n + 1, sizeof *f->nodes);
    f->roots = malloc(((size_t)n + 1) * sizeof *f->roots);
    if (!keys || !leaf_of || !f->nodes || !f->roots) goto nomem;
    for (int32_t i = 0; i < (int32_t)n; i++) {
        keys[i] = (tkey){treeids[i], nodeids[i], i};
        int m = mode_from_string(modes[i] ? modes[i] : "");
        if (m < 0) {
            rc = onr_seterr(c->err, ONR_E_MODEL, "nodes_modes[%d] is '%s', not a node mode", (int)i,
                            modes[i] ? modes[i] : "");
            goto out;
        }
        f->nodes[i].mode = (uint8_t)m;
        f->nodes[i].value = values[i];
        f->nodes[i].nan_true = nmv && mvt[i] != 0;
        if (m == TM_LEAF) {
            leaf_of[i] = f->n_leaves++;
        } else {
            leaf_of[i] = -1;
            if (featids[i] < 0 || featids[i] >= INT32_MAX) {
                rc = onr_seterr(c->err, ONR_E_MODEL, "nodes_featureids[%d] = %lld is out of range",
                                (int)i, (long long)featids[i]);
                goto out;
            }
            f->nodes[i].feature = (int32_t)featids[i];
        }
    }
    qsort(keys, (size_t)n, sizeof *keys, tkey_cmp);
    for (int32_t i = 0; i < (int32_t)n; i++) {
        if (i > 0 && keys[i].tree == keys[i - 1].tree && keys[i].node == keys[i - 1].node) {
            rc = onr_seterr(c->err, ONR_E_MODEL, "tree %lld has node id %lld twice",
                            (long long)keys[i].tree, (long long)keys[i].node);
            goto out;
        }
        if (i == 0 || keys[i].tree != keys[i - 1].tree) f->roots[f->n_trees++] = keys[i].idx;
        else if (keys[i].idx < f->roots[f->n_trees - 1]) f->roots[f->n_trees - 1] = keys[i].idx;
    }
    for (int32_t t = 0; t < f->n_trees; t++)
        if (leaf_of[f->roots[t]] >= 0) f->roots[t] = ~leaf_of[f->roots[t]];
    for (int32_t i = 0; i < (int32_t)n; i++) {
        if (f->nodes[i].mode == TM_LEAF) continue;
        for (int k = 0; k < 2; k++) {
            int64_t id = k == 0 ? trues[i] : falses[i];
            int32_t j = tkey_find(keys, (int32_t)n, treeids[i], id);
            if (j < 0) {
                rc = onr_seterr(c->err, ONR_E_MODEL, "%s[%d] = %lld is not a node of tree %lld",
                                k == 0 ? "nodes_truenodeids" : "nodes_falsenodeids", (int)i,
                                (long long)id, (long long)treeids[i]);
                goto out;
            }
            f->nodes[i].child[k] = leaf_of[j] >= 0 ? ~leaf_of[j] : j;
        }
    }
    /* votes, grouped by leaf in attribute order */
    f->leaf_off = calloc((size_t)f->n_leaves + 2, sizeof *f->leaf_off);
    cnt = calloc((size_t)f->n_leaves + 1, sizeof *cnt);
    f->w_target = malloc(((size_t)nw_ids + 1) * sizeof *f->w_target);
    f->w_value = malloc(((size_t)nw_ids + 1) * sizeof *f->w_value);
    if (!f->leaf_off || !cnt || !f->w_target || !f->w_value) goto nomem;
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t k = 0; k < nw_ids; k++) {
            int32_t j = tkey_find(keys, (int32_t)n, w_trees[k], w_nodes[k]);
            if (j < 0) {
                rc = onr_seterr(c->err, ONR_E_MODEL, "%s[%lld] = %lld is not a node of tree %lld",
                                an[1], (long long)k, (long long)w_nodes[k], (long long)w_trees[k]);
                goto out;
            }
            if (w_ids[k] < 0 || w_ids[k] >= n_out) {
                rc = onr_seterr(c->err, ONR_E_MODEL, "%s[%lld] = %lld is out of range [0, %lld)",
                                an[0], (long long)k, (long long)w_ids[k], (long long)n_out);
                goto out;
            }
            if (leaf_of[j] < 0) continue; /* a vote on a branch node is never reached */
            if (pass == 0) {
                f->leaf_off[leaf_of[j] + 1]++;
            } else {
                int64_t at = f->leaf_off[leaf_of[j]] + cnt[leaf_of[j]]++;
                f->w_target[at] = (int32_t)w_ids[k];
                f->w_value[at] = weights[k];
            }
        }
        if (pass == 0)
            for (int32_t l = 0; l < f->n_leaves; l++) f->leaf_off[l + 1] += f->leaf_off[l];
    }
    f->nan_v5 = 0;
    rc = forest_check(c->err, f);
    goto out;
nomem:
    rc = onr_seterr(c->err, ONR_E_NOMEM, "out of memory for the tree ensemble");
out:
    free(values), free(weights), free(hit), free(keys), free(leaf_of), free(cnt);
    return rc;
}

/* aggregate_function (string, default SUM) and base_values of v1/v3. */
static int forest_common_v13(onr_create_ctx *c, ml_forest *f, int64_t n_out, int with_agg)
{
    int rc;
    f->agg = AGG_SUM;
    if (with_agg) {
        const char *a = onr_attr_string(c->node, "aggregate_function", "SUM");
        if (strcmp(a, "SUM") == 0) f->agg = AGG_SUM;
        else if (strcmp(a, "AVERAGE") == 0) f->agg = AGG_AVERAGE;
        else if (strcmp(a, "MIN") == 0) f->agg = AGG_MIN;
        else if (strcmp(a, "MAX") == 0) f->agg = AGG_MAX;
        else
            return onr_seterr(c->err, ONR_E_MODEL,
                              "attribute aggregate_function is '%s', not SUM, AVERAGE, MIN or MAX", a);
    }
    if ((rc = ml_post_transform_attr(c, &f->pt))) return rc;
    if ((rc = ml_attr_reals(c, "base_values", c->opset >= 3, &f->base, &f->n_base, NULL))) return rc;
    if (f->n_base != 0 && f->n_base != 1 && f->n_base != n_out)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute base_values has %lld values, not %lld",
                          (long long)f->n_base, (long long)n_out);
    return ONR_OK;
}

/* ---- evaluation --------------------------------------------------------------- */

static int member_of(const double *s, int64_t n, double x)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (s[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && s[lo] == x;
}

static int go_true(const ml_forest *f, const ml_tnode *nd, double x)
{
    if (isnan(x)) {
        if (nd->nan_true) return 1;
        if (!f->nan_v5) return 0;
    }
    switch (nd->mode) {
    case TM_LEQ: return x <= nd->value;
    case TM_LT: return x < nd->value;
    case TM_GTE: return x >= nd->value;
    case TM_GT: return x > nd->value;
    case TM_EQ: return x == nd->value;
    case TM_NEQ: return x != nd->value;
    default: return member_of(f->sets + nd->set_off, nd->set_len, x);
    }
}

/* Element j of row i of X as the trees compare it: integers go through
 * float first (as the reference and onnxruntime compare them). */
static void load_row(const onr_tensor *x, int64_t i, int64_t cols, int64_t n, double *row)
{
    int is_int = x->dtype == ONR_INT64 || x->dtype == ONR_INT32;
    for (int64_t j = 0; j < n; j++) {
        double v = onr_get_f64(x, i * cols + j);
        row[j] = is_int ? (double)(float)v : v;
    }
}

/* Votes of all trees for one row into acc[n_targets] (aggregated, no base). */
static void forest_eval(const ml_forest *f, const double *row, double *acc, double *has)
{
    for (int64_t k = 0; k < f->n_targets; k++) acc[k] = 0, has[k] = 0;
    for (int32_t t = 0; t < f->n_trees; t++) {
        int32_t ref = f->roots[t];
        while (ref >= 0) {
            const ml_tnode *nd = &f->nodes[ref];
            ref = nd->child[go_true(f, nd, row[nd->feature]) ? 0 : 1];
        }
        int32_t l = ~ref;
        for (int64_t k = f->leaf_off[l]; k < f->leaf_off[l + 1]; k++) {
            int32_t tg = f->w_target[k];
            double w = f->w_value[k];
            switch (f->agg) {
            case AGG_MIN: acc[tg] = has[tg] && acc[tg] < w ? acc[tg] : w; break;
            case AGG_MAX: acc[tg] = has[tg] && acc[tg] > w ? acc[tg] : w; break;
            default: acc[tg] += w; break;
            }
            has[tg] = 1;
        }
    }
    if (f->agg == AGG_AVERAGE && f->n_trees > 0)
        for (int64_t k = 0; k < f->n_targets; k++) acc[k] /= f->n_trees;
}

/* Rows are worth splitting among threads when the walks add up to more
 * than ONR_PAR_MIN (a walk counted as 16 steps). */
static int forest_par(const ml_forest *f, int64_t rows)
{
    return rows > 1 && rows * ((int64_t)f->n_trees * 16 + f->n_targets) > ONR_PAR_MIN;
}

static int forest_reshape_x(onr_kctx *ctx, const ml_forest *f, int64_t *rows, int64_t *cols)
{
    int rc = ml_input_matrix(ctx, 0, rows, cols);
    if (rc) return rc;
    if (f->n_features > *cols)
        return onr_seterr(ctx->err, ONR_E_INPUT,
                          "the trees read feature %lld but X has %lld features",
                          (long long)f->n_features - 1, (long long)*cols);
    return ONR_OK;
}

/* ---- TreeEnsembleRegressor (1, 3) ---------------------------------------------- */

typedef struct ter_params {
    ml_forest f;
    int64_t rows, cols;
} ter_params;

static void ter_destroy(void *params) { forest_free(&((ter_params *)params)->f); }

static int ter_create(onr_create_ctx *c, void *params)
{
    ter_params *P = params;
    int64_t n_targets = onr_attr_int(c->node, "n_targets", 0), nids;
    const int64_t *ids = ml_attr_ints(c, "target_ids", &nids);
    if (!onr_node_attr(c->node, "n_targets")) /* not given: what the votes use */
        for (int64_t k = 0; k < nids; k++) n_targets = ids[k] + 1 > n_targets ? ids[k] + 1 : n_targets;
    if (n_targets < 1 || n_targets > (1 << 24))
        return onr_seterr(c->err, ONR_E_MODEL, "attribute n_targets = %lld is out of range",
                          (long long)n_targets);
    P->f.n_targets = n_targets;
    int rc = forest_common_v13(c, &P->f, n_targets, 1);
    return rc ? rc : forest_v13(c, &P->f, "target_", n_targets);
}

static int ter_reshape(onr_kctx *ctx, size_t *scratch)
{
    ter_params *P = ctx->params;
    int rc = forest_reshape_x(ctx, &P->f, &P->rows, &P->cols);
    if (rc) return rc;
    *scratch = (size_t)ctx->nthreads * ((size_t)P->f.n_features + 2 * (size_t)P->f.n_targets) *
               sizeof(double);
    int64_t d[2] = {P->rows, P->f.n_targets};
    return onr_set_out(ctx, 0, ONR_FLOAT, 2, d);
}

static int ter_run(const onr_kctx *ctx)
{
    const ter_params *P = ctx->params;
    const ml_forest *f = &P->f;
    const onr_tensor *x = ctx->in[0];
    float *y = ctx->out[0]->data;
    int nt = ctx->nthreads > 0 ? ctx->nthreads : 1;
    size_t per = (size_t)f->n_features + 2 * (size_t)f->n_targets;
#pragma omp parallel for num_threads(onr_team(nt)) if (nt > 1 && forest_par(f, P->rows)) schedule(static)
    for (int64_t i = 0; i < P->rows; i++) {
        double *row = (double *)ctx->scratch + (size_t)omp_get_thread_num() * per;
        double *acc = row + f->n_features, *has = acc + f->n_targets;
        load_row(x, i, P->cols, f->n_features, row);
        forest_eval(f, row, acc, has);
        for (int64_t k = 0; k < f->n_targets; k++)
            acc[k] += f->n_base == 0 ? 0 : f->base[f->n_base == 1 ? 0 : k];
        ml_post_transform(f->pt, acc, f->n_targets);
        for (int64_t k = 0; k < f->n_targets; k++) y[i * f->n_targets + k] = (float)acc[k];
    }
    return ONR_OK;
}

#define T_TREE_IN (ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_INT64) | ONR_T(ONR_INT32))

const onr_op_impl onr_impl_ml_tree_regressor = {
    .create = ter_create, .reshape = ter_reshape, .run = ter_run, .destroy = ter_destroy,
    .params_size = sizeof(ter_params), .types = T_TREE_IN};

/* ---- TreeEnsembleClassifier (1, 3) ---------------------------------------------- */

/* Binary case (every vote for one class id, at most two labels), as the
 * reference: the score s of that class becomes column 1, column 0 is 1 - s
 * (NONE, PROBIT) or -s (others); with a single label the scores still get
 * two columns, and the int label is labels[0] (which must be 1) when column
 * 1 wins, else 0. The reference copies column 0 into column 1, which is
 * the voted column only when the votes are for class 0; here the voted
 * column is taken whichever it is. */
typedef struct tec_params {
    ml_forest f;
    ml_labels labels;
    int binary;      /* the binary case above */
    int32_t bin_cls; /* the one class id voted for */
    int64_t n_scores; /* columns of Z */
    int64_t rows, cols;
} tec_params;

static void tec_destroy(void *params)
{
    tec_params *P = params;
    forest_free(&P->f);
    ml_labels_free(&P->labels);
}

static int tec_create(onr_create_ctx *c, void *params)
{
    tec_params *P = params;
    int rc = ml_labels_read(c, "classlabels_int64s", "classlabels_strings", &P->labels);
    if (rc) return rc;
    int64_t nc = P->labels.n, nids;
    if (nc < 1)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "one of classlabels_int64s or classlabels_strings must be given");
    P->f.n_targets = nc;
    if ((rc = forest_common_v13(c, &P->f, nc, 0)) || (rc = forest_v13(c, &P->f, "class_", nc)))
        return rc;
    const int64_t *ids = ml_attr_ints(c, "class_ids", &nids);
    int same = nids > 0;
    for (int64_t k = 1; k < nids; k++) same &= ids[k] == ids[0];
    P->binary = same && nc <= 2;
    P->bin_cls = same ? (int32_t)ids[0] : 0;
    P->n_scores = P->binary ? 2 : nc;
    if (P->binary && nc == 1) {
        if (P->labels.is_string)
            return onr_seterr(c->err, ONR_E_UNSUPPORTED,
                              "a single string class label with binary votes is not defined");
        if (P->labels.ints[0] != 1)
            return onr_seterr(c->err, ONR_E_UNSUPPORTED,
                              "a single int class label must be 1 (it is %lld)",
                              (long long)P->labels.ints[0]);
    }
    return ONR_OK;
}

static int tec_reshape(onr_kctx *ctx, size_t *scratch)
{
    tec_params *P = ctx->params;
    int rc = forest_reshape_x(ctx, &P->f, &P->rows, &P->cols);
    if (rc) return rc;
    *scratch = (size_t)ctx->nthreads *
               ((size_t)P->f.n_features + 2 * (size_t)P->f.n_targets + 2) * sizeof(double);
    int64_t d[2] = {P->rows, P->n_scores};
    if ((rc = onr_set_out(ctx, 0, P->labels.is_string ? ONR_STRING : ONR_INT64, 1, d))) return rc;
    return ctx->n_out > 1 && ctx->out[1] ? onr_set_out(ctx, 1, ONR_FLOAT, 2, d) : ONR_OK;
}

static int tec_run(const onr_kctx *ctx)
{
    const tec_params *P = ctx->params;
    const ml_forest *f = &P->f;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *ylab = ctx->out[0];
    float *z = ctx->n_out > 1 && ctx->out[1] ? ctx->out[1]->data : NULL;
    int nt = ctx->nthreads > 0 ? ctx->nthreads : 1;
    if (P->labels.is_string) nt = 1; /* string labels allocate: keep it simple */
    size_t per = (size_t)f->n_features + 2 * (size_t)f->n_targets + 2;
    int fail = 0;
    int64_t ns = P->n_scores;
#pragma omp parallel for num_threads(onr_team(nt)) if (nt > 1 && forest_par(f, P->rows)) schedule(static)
    for (int64_t i = 0; i < P->rows; i++) {
        double *row = (double *)ctx->scratch + (size_t)omp_get_thread_num() * per;
        double *acc = row + f->n_features, *has = acc + f->n_targets + 2;
        load_row(x, i, P->cols, f->n_features, row);
        forest_eval(f, row, acc, has);
        for (int64_t k = 0; k < f->n_targets; k++)
            acc[k] += f->n_base == 0 ? 0 : f->base[f->n_base == 1 ? 0 : k];
        if (P->binary) {
            double s = acc[P->bin_cls];
            acc[1] = s;
            acc[0] = f->pt == ML_PT_NONE || f->pt == ML_PT_PROBIT ? 1 - s : -s;
        }
        ml_post_transform(f->pt, acc, ns);
        int64_t best = 0;
        for (int64_t k = 1; k < ns; k++)
            if (acc[k] > acc[best]) best = k;
        if (z)
            for (int64_t k = 0; k < ns; k++) z[i * ns + k] = (float)acc[k];
        int64_t lab = P->binary && P->labels.n == 1 ? (best == 1 ? 0 : -1) : best;
        if (ml_label_store(ctx, &P->labels, ylab, i, lab, 0)) fail = 1;
    }
    return fail ? ONR_E_NOMEM : ONR_OK;
}

const onr_op_impl onr_impl_ml_tree_classifier = {
    .create = tec_create, .reshape = tec_reshape, .run = tec_run, .destroy = tec_destroy,
    .params_size = sizeof(tec_params), .types = T_TREE_IN};

/* ---- TreeEnsemble (5) ------------------------------------------------------------- */

typedef struct te5_params {
    ml_forest f;
    onr_dtype dtype; /* of nodes_splits and leaf_weights: X's type */
    int64_t rows, cols;
} te5_params;

static void te5_destroy(void *params) { forest_free(&((te5_params *)params)->f); }

static const onr_tensor *te5_tensor(onr_create_ctx *c, const char *name, int required, int *rc)
{
    const onr_attr *a = onr_attr_get(c->node, name, ONR_ATTR_TENSOR);
    *rc = ONR_OK;
    if (!a || !a->t) {
        if (required) *rc = onr_seterr(c->err, ONR_E_MODEL, "attribute %s (a tensor) is required", name);
        return NULL;
    }
    if (a->t->numel && !a->t->data) {
        *rc = onr_seterr(c->err, ONR_E_MODEL, "attribute %s has no data", name);
        return NULL;
    }
    return a->t;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int te5_create(onr_create_ctx *c, void *params)
{
    te5_params *P = params;
    ml_forest *f = &P->f;
    int rc;
    const onr_tensor *splits = te5_tensor(c, "nodes_splits", 1, &rc);
    if (rc) return rc;
    const onr_tensor *modes = te5_tensor(c, "nodes_modes", 1, &rc);
    if (rc) return rc;
    const onr_tensor *lw = te5_tensor(c, "leaf_weights", 1, &rc);
    if (rc) return rc;
    const onr_tensor *hit = te5_tensor(c, "nodes_hitrates", 0, &rc);
    if (rc) return rc;
    const onr_tensor *mem = te5_tensor(c, "membership_values", 0, &rc);
    if (rc) return rc;
    onr_dtype dt = splits->dtype;
    if (dt != ONR_FLOAT && dt != ONR_DOUBLE && dt != ONR_FLOAT16)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute nodes_splits must be float, double or float16");
    if (lw->dtype != dt || (mem && mem->dtype != dt))
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attributes leaf_weights and membership_values must have nodes_splits' type %s",
                          onr_dtype_name(dt));
    if (modes->dtype != ONR_UINT8)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute nodes_modes must be a uint8 tensor");
    P->dtype = dt;
    int64_t n = splits->numel, L = lw->numel, nf, ntr, nfa, ntl, nfl, nmv, nroots, nlt;
    const int64_t *feat = ml_attr_ints(c, "nodes_featureids", &nf);
    const int64_t *tru = ml_attr_ints(c, "nodes_truenodeids", &ntr);
    const int64_t *fal = ml_attr_ints(c, "nodes_falsenodeids", &nfa);
    const int64_t *tl = ml_attr_ints(c, "nodes_trueleafs", &ntl);
    const int64_t *fl = ml_attr_ints(c, "nodes_falseleafs", &nfl);
    const int64_t *mvt = ml_attr_ints(c, "nodes_missing_value_tracks_true", &nmv);
    const int64_t *roots = ml_attr_ints(c, "tree_roots", &nroots);
    const int64_t *lt = ml_attr_ints(c, "leaf_targetids", &nlt);
    struct { const char *name; int64_t len; int optional; } lens[] = {
        {"nodes_featureids", nf, 0},  {"nodes_truenodeids", ntr, 0},
        {"nodes_falsenodeids", nfa, 0}, {"nodes_trueleafs", ntl, 0},
        {"nodes_falseleafs", nfl, 0}, {"nodes_modes", modes->numel, 0},
        {"nodes_missing_value_tracks_true", nmv, 1}, {"nodes_hitrates", hit ? hit->numel : 0, 1}};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        if (lens[i].len != n && !(lens[i].optional && lens[i].len == 0))
            return onr_seterr(c->err, ONR_E_MODEL,
                              "attribute %s has %lld elements but nodes_splits has %lld",
                              lens[i].name, (long long)lens[i].len, (long long)n);
    if (nlt != L)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attribute leaf_targetids has %lld elements but leaf_weights has %lld",
                          (long long)nlt, (long long)L);
    if (n >= INT32_MAX / 2 || L >= INT32_MAX / 2 || nroots >= INT32_MAX / 2)
        return onr_seterr(c->err, ONR_E_UNSUPPORTED, "too many tree nodes or leaves");
    int64_t n_targets = onr_attr_int(c->node, "n_targets", 0);
    if (!onr_node_attr(c->node, "n_targets"))
        for (int64_t k = 0; k < L; k++) n_targets = lt[k] + 1 > n_targets ? lt[k] + 1 : n_targets;
    if (n_targets < 1 || n_targets > (1 << 24))
        return onr_seterr(c->err, ONR_E_MODEL, "attribute n_targets = %lld is out of range",
                          (long long)n_targets);
    f->n_targets = n_targets;
    int64_t agg = onr_attr_int(c->node, "aggregate_function", 1);
    int64_t pt = onr_attr_int(c->node, "post_transform", 0);
    if (agg < 0 || agg > 3)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute aggregate_function = %lld is not 0..3",
                          (long long)agg);
    if (pt < 0 || pt > 4)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute post_transform = %lld is not 0..4",
                          (long long)pt);
    f->agg = (int)agg, f->pt = (int)pt, f->nan_v5 = 1;
    f->n_nodes = (int32_t)n, f->n_leaves = (int32_t)L, f->n_trees = (int32_t)nroots;
    f->nodes = calloc((size_t)n + 1, sizeof *f->nodes);
    f->roots = malloc(((size_t)nroots + 1) * sizeof *f->roots);
    f->leaf_off = malloc(((size_t)L + 1) * sizeof *f->leaf_off);
    f->w_target = malloc(((size_t)L + 1) * sizeof *f->w_target);
    f->w_value = malloc(((size_t)L + 1) * sizeof *f->w_value);
    f->sets = malloc(((size_t)(mem ? mem->numel : 0) + 1) * sizeof *f->sets);
    if (!f->nodes || !f->roots || !f->leaf_off || !f->w_target || !f->w_value || !f->sets)
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory for the tree ensemble");
    for (int64_t l = 0; l < L; l++) {
        if (lt[l] < 0 || lt[l] >= n_targets)
            return onr_seterr(c->err, ONR_E_MODEL, "leaf_targetids[%lld] = %lld is out of range [0, %lld)",
                              (long long)l, (long long)lt[l], (long long)n_targets);
        f->leaf_off[l] = l;
        f->w_target[l] = (int32_t)lt[l];
        f->w_value[l] = onr_get_f64(lw, l);
    }
    f->leaf_off[L] = L;
    int64_t mpos = 0, nsets = 0;
    const uint8_t *md = modes->data;
    for (int64_t i = 0; i < n; i++) {
        ml_tnode *nd = &f->nodes[i];
        if (md[i] > TM_MEMBER)
            return onr_seterr(c->err, ONR_E_MODEL, "nodes_modes[%lld] = %d is not 0..6", (long long)i,
                              md[i]);
        nd->mode = md[i];
        nd->value = onr_get_f64(splits, i);
        nd->nan_true = nmv && mvt[i] != 0;
        if (feat[i] < 0 || feat[i] >= INT32_MAX)
            return onr_seterr(c->err, ONR_E_MODEL, "nodes_featureids[%lld] = %lld is out of range",
                              (long long)i, (long long)feat[i]);
        nd->feature = (int32_t)feat[i];
        for (int k = 0; k < 2; k++) {
            int64_t leaf = k == 0 ? tl[i] : fl[i], id = k == 0 ? tru[i] : fal[i];
            const char *lname = k == 0 ? "nodes_trueleafs" : "nodes_falseleafs";
            const char *iname = k == 0 ? "nodes_truenodeids" : "nodes_falsenodeids";
            if (leaf != 0 && leaf != 1)
                return onr_seterr(c->err, ONR_E_MODEL, "%s[%lld] = %lld is not 0 or 1", lname,
                                  (long long)i, (long long)leaf);
            if (id < 0 || id >= (leaf ? L : n))
                return onr_seterr(c->err, ONR_E_MODEL, "%s[%lld] = %lld is out of range [0, %lld) (%s)",
                                  iname, (long long)i, (long long)id, (long long)(leaf ? L : n),
                                  leaf ? "a leaf" : "a node");
            nd->child[k] = leaf ? ~(int32_t)id : (int32_t)id;
        }
        if (nd->mode == TM_MEMBER) {
            if (!mem)
                return onr_seterr(c->err, ONR_E_MODEL,
                                  "node %lld is BRANCH_MEMBER but membership_values is not given",
                                  (long long)i);
            if (mpos >= mem->numel)
                return onr_seterr(c->err, ONR_E_MODEL,
                                  "membership_values has fewer sets than BRANCH_MEMBER nodes");
            nd->set_off = mpos;
            int64_t k = mpos;
            while (k < mem->numel && !isnan(onr_get_f64(mem, k))) {
                f->sets[k] = onr_get_f64(mem, k);
                k++;
            }
            nd->set_len = k - mpos;
            qsort(f->sets + mpos, (size_t)nd->set_len, sizeof(double), dbl_cmp);
            mpos = k < mem->numel ? k + 1 : k;
            nsets++;
        }
    }
    if (mem && mpos < mem->numel)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "membership_values has more sets than the %lld BRANCH_MEMBER nodes",
                          (long long)nsets);
    for (int64_t t = 0; t < nroots; t++) {
        if (roots[t] < 0 || roots[t] >= n)
            return onr_seterr(c->err, ONR_E_MODEL, "tree_roots[%lld] = %lld is out of range [0, %lld)",
                              (long long)t, (long long)roots[t], (long long)n);
        f->roots[t] = (int32_t)roots[t];
    }
    return forest_check(c->err, f);
}

static int te5_reshape(onr_kctx *ctx, size_t *scratch)
{
    te5_params *P = ctx->params;
    if (ctx->in[0]->dtype != P->dtype)
        return onr_seterr(ctx->err, ONR_E_INPUT, "X is %s but nodes_splits is %s",
                          onr_dtype_name(ctx->in[0]->dtype), onr_dtype_name(P->dtype));
    if (ctx->in[0]->rank != 2)
        return onr_seterr(ctx->err, ONR_E_INPUT, "X must be [N, F], not rank %d", ctx->in[0]->rank);
    int rc = forest_reshape_x(ctx, &P->f, &P->rows, &P->cols);
    if (rc) return rc;
    *scratch = (size_t)ctx->nthreads * ((size_t)P->f.n_features + 2 * (size_t)P->f.n_targets) *
               sizeof(double);
    int64_t d[2] = {P->rows, P->f.n_targets};
    return onr_set_out(ctx, 0, P->dtype, 2, d);
}

static int te5_run(const onr_kctx *ctx)
{
    const te5_params *P = ctx->params;
    const ml_forest *f = &P->f;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    int nt = ctx->nthreads > 0 ? ctx->nthreads : 1;
    size_t per = (size_t)f->n_features + 2 * (size_t)f->n_targets;
#pragma omp parallel for num_threads(onr_team(nt)) if (nt > 1 && forest_par(f, P->rows)) schedule(static)
    for (int64_t i = 0; i < P->rows; i++) {
        double *row = (double *)ctx->scratch + (size_t)omp_get_thread_num() * per;
        double *acc = row + f->n_features, *has = acc + f->n_targets;
        load_row(x, i, P->cols, f->n_features, row);
        forest_eval(f, row, acc, has);
        ml_post_transform(f->pt, acc, f->n_targets);
        for (int64_t k = 0; k < f->n_targets; k++) onr_set_f64(y, i * f->n_targets + k, acc[k]);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_ml_tree_ensemble = {
    .create = te5_create, .reshape = te5_reshape, .run = te5_run, .destroy = te5_destroy,
    .params_size = sizeof(te5_params),
    .types = ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_FLOAT16)};
