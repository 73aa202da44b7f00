/*
 * pass_dce.c - dead-code elimination: one pass in reverse topological
 * order, counting the live readers of every value.
 */
#include <stdlib.h>

#include "plan/passes.h"

onr_status onr_pass_dce(onr_edit *e, onr_err *err)
{
    onr_graph *g = e->g;
    int *uses = calloc((size_t)g->n_values + 1, sizeof *uses);
    if (!uses) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    for (int i = 0; i < g->n_outputs; i++) uses[g->outputs[i]]++;
    for (int i = 0; i < g->n_nodes; i++) {
        if (e->dead[i]) continue;
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].inputs[k] >= 0) uses[g->nodes[i].inputs[k]]++;
    }
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        if (e->dead[i]) continue;
        const onr_node *n = &g->nodes[i];
        int live = 0;
        for (int o = 0; o < n->n_out && !live; o++) live = n->outputs[o] >= 0 && uses[n->outputs[o]];
        if (live) continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->inputs[k] >= 0) uses[n->inputs[k]]--;
        onr_edit_remove_node(e, i);
    }
    free(uses);
    return ONR_OK;
}
