/*
 * pass_identity.c - removes Identity, inference-mode Dropout, and
 * SumToShape (org.onnxrun) where its input already has the target shape.
 */
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "plan/passes.h"

/* Dropout acts as Identity when training_mode is absent or a constant
 * false, and its mask output is not read. */
static int dropout_is_identity(const onr_edit *e, const onr_node *n)
{
    const onr_graph *g = e->g;
    if (n->n_out > 1 && n->outputs[1] >= 0 && onr_edit_value_used(e, n->outputs[1])) return 0;
    if (n->n_in > 2 && n->inputs[2] >= 0) {
        const onr_tensor *t = g->values[n->inputs[2]].konst;
        if (!t || t->numel != 1 || !t->data || onr_load_f64(t->dtype, t->data, 0) != 0) return 0;
    }
    return 1;
}

/* SumToShape (which Gradient's expansion puts after every operand that may
 * have been broadcast) is a copy when its input's static shape is the
 * output's. */
static int sum_to_shape_is_identity(const onr_edit *e, const onr_node *n)
{
    const onr_value *x = &e->g->values[n->inputs[0]], *y = &e->g->values[n->outputs[0]];
    if (x->rank < 0 || x->rank != y->rank || x->dtype != y->dtype) return 0;
    for (int d = 0; d < x->rank; d++)
        if (x->dims[d] < 0 || x->dims[d] != y->dims[d]) return 0;
    return 1;
}

/* The value v stands for once removed nodes' outputs are replaced by their
 * inputs (chains followed, paths shortened as they are walked). */
static int resolve(int *to, int v)
{
    int r = v;
    while (to[r] != r) r = to[r];
    while (to[v] != r) {
        int next = to[v];
        to[v] = r;
        v = next;
    }
    return r;
}

/* In one sweep: every removable node is marked dead and its output mapped
 * to its input, then every reader is rewired once, so the pass stays linear
 * whatever the number of Identity nodes. Deciding from the index built
 * before any removal is exact: a Dropout's mask keeps its readers (only the
 * readers of removed outputs move, and those come later in topological
 * order), and graph outputs never change here (a removable node never
 * writes one). */
onr_status onr_pass_identity(onr_edit *e, onr_err *err)
{
    onr_graph *g = e->g;
    int st = onr_edit_index(e, err);
    if (st) return st;
    int *to = NULL, removed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (e->dead[i]) continue;
        const onr_node *n = &g->nodes[i];
        if (n->n_in < 1 || n->inputs[0] < 0 || n->n_out < 1 || n->outputs[0] < 0) continue;
        int id = 0;
        if (!*n->domain) {
            id = strcmp(n->op_type, "Identity") == 0;
            if (!id && strcmp(n->op_type, "Dropout") == 0) id = dropout_is_identity(e, n);
        } else if (strcmp(n->domain, "org.onnxrun") == 0 && strcmp(n->op_type, "SumToShape") == 0) {
            id = sum_to_shape_is_identity(e, n);
        }
        if (!id) continue;
        int x = n->inputs[0], y = n->outputs[0];
        if (onr_edit_is_output(e, y)) continue; /* the output keeps its name */
        if (!to) {
            if (!(to = malloc((size_t)g->n_values * sizeof *to)))
                return onr_seterr(err, ONR_E_NOMEM, "out of memory");
            for (int v = 0; v < g->n_values; v++) to[v] = v;
        }
        to[y] = x;
        e->dead[i] = 1;
        removed++;
    }
    if (!removed) return ONR_OK;
    for (int i = 0; i < g->n_nodes; i++) {
        if (e->dead[i]) continue;
        onr_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++)
            if (n->inputs[k] >= 0) n->inputs[k] = resolve(to, n->inputs[k]);
    }
    for (int i = 0; i < g->n_nodes; i++) /* removed nodes' outputs lose their producer */
        if (e->dead[i] && g->nodes[i].n_out > 0 && g->nodes[i].outputs[0] >= 0 &&
            to[g->nodes[i].outputs[0]] != g->nodes[i].outputs[0])
            onr_edit_remove_node(e, i);
    free(to);
    e->cons_valid = 0;
    e->cons_n_nodes = e->cons_n_values = 0;
    return ONR_OK;
}
