/*
 * subplan.c - how a node with subgraphs (If, Loop, Scan, SequenceMap) sees
 * the values of the scopes around it.
 *
 * A subgraph may read any value of an enclosing graph by name, at any depth
 * (a Loop body inside an If branch reads a value of the main graph). The
 * loader marks a subgraph's direct references `is_outer`; here the names a
 * node's subgraphs need from the node's own graph are gathered (their own
 * references plus those of nested subgraphs that they do not define), and
 * the planner appends them to the node as implicit inputs. The parent's
 * passes and memory plan then see an ordinary reader; the op's create finds
 * the same list with onr_node_outer_names and binds the tensors it is handed
 * to its sub-plan each run.
 */
#include <stdlib.h>
#include <string.h>

#include "plan/plan.h"

typedef struct name_list {
    const char **v;
    int n, cap;
} name_list;

static int list_add(name_list *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i], name) == 0) return 0;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        const char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = name;
    return 0;
}

/* Whether g defines `name` itself (not as a reference to an outer value). */
static int defines(const onr_graph *g, const char *name)
{
    int v = onr_graph_find_value(g, name);
    return v >= 0 && !g->values[v].is_outer;
}

static int collect_node(const onr_node *n, name_list *l, int depth);

/* Names g reads from outside itself, at any depth. */
static int collect_graph(const onr_graph *g, name_list *l, int depth)
{
    if (depth > 64) return -2;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].is_outer && list_add(l, g->values[v].name)) return -1;
    for (int i = 0; i < g->n_nodes; i++) {
        int start = l->n;
        int st = collect_node(&g->nodes[i], l, depth + 1);
        if (st) return st;
        /* what g defines is no outer name of g */
        int w = start;
        for (int k = start; k < l->n; k++)
            if (!defines(g, l->v[k])) l->v[w++] = l->v[k];
        l->n = w;
    }
    return 0;
}

static int collect_node(const onr_node *n, name_list *l, int depth)
{
    for (int a = 0; a < n->n_attr; a++) {
        const onr_attr *at = &n->attrs[a];
        int st = 0;
        if (at->type == ONR_ATTR_GRAPH && at->g) st = collect_graph(at->g, l, depth);
        if (at->type == ONR_ATTR_GRAPHS)
            for (size_t k = 0; k < at->n && !st; k++)
                if (at->graphs[k]) st = collect_graph(at->graphs[k], l, depth);
        if (st) return st;
    }
    return 0;
}

static int has_subgraph(const onr_node *n)
{
    for (int a = 0; a < n->n_attr; a++)
        if (n->attrs[a].type == ONR_ATTR_GRAPH || n->attrs[a].type == ONR_ATTR_GRAPHS) return 1;
    return 0;
}

onr_status onr_node_outer_names(const onr_node *n, const char ***names, int *count, onr_err *err)
{
    name_list l = {0};
    *names = NULL;
    *count = 0;
    int st = collect_node(n, &l, 0);
    if (st) {
        free(l.v);
        return st == -2 ? onr_seterr(err, ONR_E_MODEL, "subgraphs nested too deep")
                        : onr_seterr(err, ONR_E_NOMEM, "out of memory");
    }
    *names = l.v;
    *count = l.n;
    return ONR_OK;
}

onr_status onr_plan_link_subgraphs(onr_edit *e, onr_err *err)
{
    int n_nodes = e->g->n_nodes;
    for (int i = 0; i < n_nodes; i++) {
        onr_node *n = &e->g->nodes[i];
        if (e->dead[i] || !has_subgraph(n)) continue;
        const char **names;
        int count;
        onr_status st = onr_node_outer_names(n, &names, &count, err);
        if (st) {
            onr_err_node(err, n);
            return st;
        }
        if (!count) {
            free(names);
            continue;
        }
        int *in = realloc(n->inputs, ((size_t)n->n_in + (size_t)count + 1) * sizeof *in);
        if (!in) {
            free(names);
            return onr_seterr(err, ONR_E_NOMEM, "out of memory");
        }
        n->inputs = in;
        for (int j = 0; j < count; j++) {
            int v = onr_graph_find_value(e->g, names[j]);
            if (v < 0) {
                if (!e->g->parent) { /* the loader resolved every name: defensive */
                    st = onr_seterr(err, ONR_E_MODEL,
                                    "a subgraph reads '%s', which no enclosing graph defines",
                                    names[j]);
                    onr_err_node(err, n);
                    free(names);
                    return st;
                }
                v = onr_edit_add_value(e, names[j], err);
                if (v < 0) {
                    free(names);
                    return err->code;
                }
                e->g->values[v].is_outer = 1;
                n = &e->g->nodes[i];
            }
            n->inputs[n->n_in + j] = v;
        }
        n->n_in += count;
        e->cons_valid = 0;
        free(names);
    }
    return ONR_OK;
}
