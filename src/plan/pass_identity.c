/*
 * pass_identity.c - removes Identity and inference-mode Dropout.
 */
#include <string.h>

#include "ops/ops.h"
#include "plan/passes.h"

static int is_graph_output(const onr_graph *g, int v)
{
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v) return 1;
    return 0;
}

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

onr_status onr_pass_identity(onr_edit *e, onr_err *err)
{
    onr_graph *g = e->g;
    int st = onr_edit_index(e, err);
    if (st) return st;
    for (int i = 0; i < g->n_nodes; i++) {
        if (e->dead[i]) continue;
        const onr_node *n = &g->nodes[i];
        if (*n->domain || n->n_in < 1 || n->inputs[0] < 0 || n->n_out < 1 || n->outputs[0] < 0)
            continue;
        int id = strcmp(n->op_type, "Identity") == 0;
        if (!id && strcmp(n->op_type, "Dropout") == 0) id = dropout_is_identity(e, n);
        if (!id) continue;
        int x = n->inputs[0], y = n->outputs[0];
        if (is_graph_output(g, y)) continue; /* the output keeps its name */
        onr_edit_replace_uses(e, y, x);
        onr_edit_remove_node(e, i);
        if ((st = onr_edit_index(e, err))) return st;
    }
    return ONR_OK;
}
