/*
 * edit.c - the planner's working copy of a graph; see edit.h.
 */
#include "ir/edit.h"

#include <stdlib.h>
#include <string.h>

static onr_status nomem(onr_err *err) { return onr_seterr(err, ONR_E_NOMEM, "out of memory"); }
/* For functions that return an index: -1 with the message set. */
static int nomem_index(onr_err *err)
{
    nomem(err);
    return -1;
}

static int *int_dup(const int *a, int n)
{
    int *c = malloc(((size_t)n + 1) * sizeof *c);
    if (c && n) memcpy(c, a, (size_t)n * sizeof *c);
    return c;
}

/* Strings and attributes of a node a pass added (only scalar, list and
 * string attributes: what onr_edit_set_attr_* makes); a copy's attributes
 * are the copied node's. */
static void free_owned_node(onr_node *n, uint8_t owned)
{
    free(n->name), free(n->op_type), free(n->domain), free(n->fused_from);
    if (owned & ONR_NODE_SHARED_ATTRS) return;
    for (int a = 0; a < n->n_attr; a++) {
        free(n->attrs[a].name);
        free(n->attrs[a].s);
        free(n->attrs[a].ints);
        free(n->attrs[a].floats);
    }
    free(n->attrs);
}

onr_status onr_edit_open(const onr_graph *src, onr_edit **out, onr_err *err)
{
    *out = NULL;
    onr_edit *e = calloc(1, sizeof *e);
    onr_graph *g = e ? calloc(1, sizeof *g) : NULL;
    if (!e || !g) {
        free(e);
        return nomem(err);
    }
    e->src = src;
    e->g = g;
    *g = *src;
    g->values = NULL, g->nodes = NULL, g->inputs = NULL, g->outputs = NULL;
    g->n_values = g->n_nodes = 0;
    g->cap_values = src->n_values + 1;
    e->cap_nodes = src->n_nodes + 1;
    g->values = malloc((size_t)g->cap_values * sizeof *g->values);
    g->nodes = calloc((size_t)e->cap_nodes, sizeof *g->nodes);
    e->val_owned = calloc((size_t)g->cap_values, 1);
    e->node_owned = calloc((size_t)e->cap_nodes, 1);
    e->dead = calloc((size_t)e->cap_nodes, 1);
    g->inputs = int_dup(src->inputs, src->n_inputs);
    g->outputs = int_dup(src->outputs, src->n_outputs);
    if (!g->values || !g->nodes || !e->val_owned || !e->node_owned || !e->dead || !g->inputs ||
        !g->outputs) {
        onr_edit_free(e);
        return nomem(err);
    }
    memcpy(g->values, src->values, (size_t)src->n_values * sizeof *g->values);
    g->n_values = src->n_values;
    for (int i = 0; i < src->n_nodes; i++) {
        onr_node *n = &g->nodes[i];
        *n = src->nodes[i];
        n->inputs = int_dup(src->nodes[i].inputs, n->n_in);
        n->outputs = int_dup(src->nodes[i].outputs, n->n_out);
        g->n_nodes = i + 1;
        if (!n->inputs || !n->outputs) {
            onr_edit_free(e);
            return nomem(err);
        }
    }
    *out = e;
    return ONR_OK;
}

void onr_edit_free(onr_edit *e)
{
    if (!e) return;
    onr_graph *g = e->g;
    if (g) {
        for (int v = 0; v < g->n_values; v++) {
            if (e->val_owned[v] & ONR_OWN_NAME) free(g->values[v].name);
            if (e->val_owned[v] & ONR_OWN_KONST) onr_tensor_free(g->values[v].konst);
            if (e->val_owned[v] & ONR_OWN_DIMS)
                for (int d = 0; d < ONR_MAX_RANK; d++) free(g->values[v].dim_names[d]);
        }
        for (int i = 0; i < g->n_nodes; i++) {
            onr_node *n = &g->nodes[i];
            free(n->inputs);
            free(n->outputs);
            if (e->node_owned[i]) free_owned_node(n, e->node_owned[i]);
        }
        free(g->values), free(g->nodes), free(g->inputs), free(g->outputs);
        free(g);
    }
    free(e->val_owned), free(e->node_owned), free(e->dead);
    free(e->cons_start), free(e->cons), free(e->out_mark);
    free(e);
}

onr_status onr_edit_index(onr_edit *e, onr_err *err)
{
    if (e->cons_valid) return ONR_OK;
    onr_graph *g = e->g;
    free(e->cons_start), free(e->cons), free(e->out_mark);
    e->cons = NULL;
    e->cons_n_nodes = e->cons_n_values = 0;
    e->cons_start = calloc((size_t)g->n_values + 2, sizeof *e->cons_start);
    e->out_mark = calloc((size_t)g->n_values + 1, 1);
    if (!e->cons_start || !e->out_mark) return nomem(err);
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] >= 0) e->out_mark[g->outputs[i]] = 1;
    size_t total = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (e->dead[i]) continue;
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].inputs[k] >= 0) {
                e->cons_start[g->nodes[i].inputs[k] + 2]++;
                total++;
            }
    }
    for (int v = 0; v < g->n_values; v++) e->cons_start[v + 2] += e->cons_start[v + 1];
    e->cons = malloc((total + 1) * sizeof *e->cons);
    if (!e->cons) return nomem(err);
    /* cons_start[v + 1] is the fill cursor for v; afterwards it is v+1's start */
    for (int i = 0; i < g->n_nodes; i++) {
        if (e->dead[i]) continue;
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int v = g->nodes[i].inputs[k];
            if (v >= 0) e->cons[e->cons_start[v + 1]++] = i;
        }
    }
    e->cons_valid = 1;
    e->cons_n_nodes = g->n_nodes;
    e->cons_n_values = g->n_values;
    return ONR_OK;
}

int onr_edit_n_consumers(const onr_edit *e, int v)
{
    return e->cons_valid ? e->cons_start[v + 1] - e->cons_start[v] : 0;
}

const int *onr_edit_consumers(const onr_edit *e, int v)
{
    return e->cons + e->cons_start[v];
}

int onr_edit_is_output(const onr_edit *e, int v)
{
    if (e->out_mark && v >= 0 && v < e->cons_n_values) return e->out_mark[v];
    for (int i = 0; i < e->g->n_outputs; i++)
        if (e->g->outputs[i] == v) return 1;
    return 0;
}

int onr_edit_value_used(const onr_edit *e, int v)
{
    const onr_graph *g = e->g;
    if (onr_edit_is_output(e, v)) return 1;
    if (e->cons_valid) return onr_edit_n_consumers(e, v) > 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (e->dead[i]) continue;
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].inputs[k] == v) return 1;
    }
    return 0;
}

void onr_edit_remove_node(onr_edit *e, int i)
{
    onr_node *n = &e->g->nodes[i];
    e->dead[i] = 1;
    for (int o = 0; o < n->n_out; o++)
        if (n->outputs[o] >= 0 && e->g->values[n->outputs[o]].producer == i)
            e->g->values[n->outputs[o]].producer = -1;
    e->cons_valid = 0;
}

void onr_edit_replace_uses(onr_edit *e, int from, int to)
{
    onr_graph *g = e->g;
    for (int i = 0; i < g->n_nodes; i++) {
        if (e->dead[i]) continue;
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].inputs[k] == from) g->nodes[i].inputs[k] = to;
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == from) g->outputs[i] = to;
    e->cons_valid = 0;
    /* readers moved between values: even a stale index no longer describes them */
    e->cons_n_nodes = e->cons_n_values = 0;
}

void onr_edit_set_konst(onr_edit *e, int v, onr_tensor *t)
{
    if (e->val_owned[v] & ONR_OWN_KONST) onr_tensor_free(e->g->values[v].konst);
    e->g->values[v].konst = t;
    e->val_owned[v] |= ONR_OWN_KONST;
}

onr_status onr_edit_set_shape(onr_edit *e, int v, onr_dtype dt, int rank, const int64_t *dims,
                              const char *const *names, onr_err *err)
{
    if (v < 0 || v >= e->g->n_values || rank < 0 || rank > ONR_MAX_RANK)
        return onr_seterr(err, ONR_E_ARG, "onr_edit_set_shape: bad value %d or rank %d", v, rank);
    char *nn[ONR_MAX_RANK] = {0};
    for (int d = 0; d < rank; d++) {
        if (!names || !names[d]) continue;
        if (!(nn[d] = onr_strdup(names[d]))) {
            for (int k = 0; k < d; k++) free(nn[k]);
            return nomem(err);
        }
    }
    onr_value *val = &e->g->values[v];
    if (e->val_owned[v] & ONR_OWN_DIMS)
        for (int d = 0; d < ONR_MAX_RANK; d++) free(val->dim_names[d]);
    val->dtype = dt;
    val->rank = rank;
    for (int d = 0; d < ONR_MAX_RANK; d++) {
        val->dims[d] = d < rank ? dims[d] : 0;
        val->dim_names[d] = nn[d];
    }
    e->val_owned[v] |= ONR_OWN_DIMS;
    return ONR_OK;
}

int onr_edit_add_value(onr_edit *e, const char *name, onr_err *err)
{
    onr_graph *g = e->g;
    if (g->n_values == g->cap_values) {
        int cap = g->cap_values * 2 + 8;
        onr_value *nv = realloc(g->values, (size_t)cap * sizeof *nv);
        if (!nv) return nomem_index(err);
        g->values = nv;
        uint8_t *no = realloc(e->val_owned, (size_t)cap);
        if (!no) return nomem_index(err);
        memset(no + g->cap_values, 0, (size_t)(cap - g->cap_values));
        e->val_owned = no;
        g->cap_values = cap;
    }
    onr_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->rank = -1;
    v->producer = -1;
    if (!(v->name = onr_strdup(name ? name : ""))) return nomem_index(err);
    e->val_owned[g->n_values] = ONR_OWN_NAME;
    e->cons_valid = 0;
    return g->n_values++;
}

int onr_edit_add_node(onr_edit *e, const char *op_type, const char *domain, const char *name,
                      int n_in, const int *inputs, int n_out, const int *outputs, onr_err *err)
{
    onr_graph *g = e->g;
    if (g->n_nodes == e->cap_nodes) {
        int cap = e->cap_nodes * 2 + 8;
        onr_node *nn = realloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn) return nomem_index(err);
        g->nodes = nn;
        uint8_t *a = realloc(e->node_owned, (size_t)cap), *b = a ? realloc(e->dead, (size_t)cap) : NULL;
        if (a) e->node_owned = a;
        if (b) e->dead = b;
        if (!a || !b) return nomem_index(err);
        memset(e->node_owned + e->cap_nodes, 0, (size_t)(cap - e->cap_nodes));
        memset(e->dead + e->cap_nodes, 0, (size_t)(cap - e->cap_nodes));
        e->cap_nodes = cap;
    }
    int i = g->n_nodes;
    onr_node *n = &g->nodes[i];
    memset(n, 0, sizeof *n);
    n->name = onr_strdup(name ? name : "");
    n->op_type = onr_strdup(op_type);
    n->domain = onr_strdup(domain ? domain : "");
    n->inputs = int_dup(inputs, n_in);
    n->outputs = int_dup(outputs, n_out);
    e->node_owned[i] = ONR_NODE_OWNED;
    e->dead[i] = 0;
    g->n_nodes++;
    if (!n->name || !n->op_type || !n->domain || !n->inputs || !n->outputs)
        return nomem_index(err);
    n->n_in = n_in;
    n->n_out = n_out;
    for (int o = 0; o < n_out; o++)
        if (outputs[o] >= 0) g->values[outputs[o]].producer = i;
    e->cons_valid = 0;
    return i;
}

int onr_edit_copy_node(onr_edit *e, int src, const char *name, const int *inputs,
                       const int *outputs, onr_err *err)
{
    const onr_node s = e->g->nodes[src]; /* adding may move the nodes */
    int i = onr_edit_add_node(e, s.op_type, s.domain, name, s.n_in, inputs, s.n_out, outputs, err);
    if (i < 0) return -1;
    onr_node *n = &e->g->nodes[i];
    n->opset = s.opset;
    n->attrs = s.attrs;
    n->n_attr = s.n_attr;
    e->node_owned[i] = ONR_NODE_OWNED | ONR_NODE_SHARED_ATTRS;
    return i;
}

onr_status onr_edit_compact(onr_edit *e, onr_err *err)
{
    onr_graph *g = e->g;
    int n = g->n_nodes, st = ONR_OK;
    /* producers from the live nodes */
    for (int v = 0; v < g->n_values; v++) g->values[v].producer = -1;
    for (int i = 0; i < n; i++) {
        if (e->dead[i]) continue;
        for (int o = 0; o < g->nodes[i].n_out; o++)
            if (g->nodes[i].outputs[o] >= 0) g->values[g->nodes[i].outputs[o]].producer = i;
    }
    if ((st = onr_edit_index(e, err))) return st;
    int *indeg = calloc((size_t)n + 1, sizeof *indeg), *order = malloc(((size_t)n + 1) * sizeof *order);
    onr_node *nodes = malloc(((size_t)n + 1) * sizeof *nodes);
    uint8_t *owned = malloc((size_t)n + 1);
    if (!indeg || !order || !nodes || !owned) {
        st = nomem(err);
        goto done;
    }
    int live = 0;
    for (int i = 0; i < n; i++) {
        if (e->dead[i]) continue;
        live++;
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int v = g->nodes[i].inputs[k];
            if (v >= 0 && g->values[v].producer >= 0) indeg[i]++;
        }
    }
    /* Kahn's algorithm, first-in first-out from the loaded order */
    int head = 0, tail = 0;
    for (int i = 0; i < n; i++)
        if (!e->dead[i] && !indeg[i]) order[tail++] = i;
    while (head < tail) {
        int i = order[head++];
        const onr_node *nd = &g->nodes[i];
        for (int o = 0; o < nd->n_out; o++) {
            int v = nd->outputs[o];
            if (v < 0 || g->values[v].producer != i) continue;
            const int *c = onr_edit_consumers(e, v);
            for (int j = 0; j < onr_edit_n_consumers(e, v); j++)
                if (--indeg[c[j]] == 0) order[tail++] = c[j];
        }
    }
    if (tail < live) {
        /* walk back through pending producers from a stuck node until one
         * repeats: that node is on a cycle */
        int culprit = 0;
        while (culprit < n && (e->dead[culprit] || !indeg[culprit])) culprit++;
        memset(owned, 0, (size_t)n + 1); /* reused as "visited" */
        while (culprit < n && !owned[culprit]) {
            owned[culprit] = 1;
            int next = -1;
            const onr_node *nd = &g->nodes[culprit];
            for (int k = 0; k < nd->n_in && next < 0; k++) {
                int v = nd->inputs[k];
                if (v >= 0 && g->values[v].producer >= 0 && indeg[g->values[v].producer] > 0)
                    next = g->values[v].producer;
            }
            if (next < 0) break;
            culprit = next;
        }
        st = onr_seterr(err, ONR_E_MODEL,
                        "the graph has a cycle: node '%s' (%s) depends on its own output",
                        g->nodes[culprit].name, g->nodes[culprit].op_type);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (!e->dead[i]) continue;
        free(g->nodes[i].inputs), free(g->nodes[i].outputs);
        if (e->node_owned[i]) free_owned_node(&g->nodes[i], e->node_owned[i]);
    }
    for (int j = 0; j < live; j++) {
        nodes[j] = g->nodes[order[j]];
        owned[j] = e->node_owned[order[j]];
    }
    memcpy(g->nodes, nodes, (size_t)live * sizeof *nodes);
    memcpy(e->node_owned, owned, (size_t)live);
    memset(e->dead, 0, (size_t)e->cap_nodes);
    g->n_nodes = live;
    e->cons_n_nodes = e->cons_n_values = 0; /* node indices moved: nothing stale is usable */
    for (int v = 0; v < g->n_values; v++) g->values[v].producer = -1;
    for (int i = 0; i < live; i++)
        for (int o = 0; o < g->nodes[i].n_out; o++)
            if (g->nodes[i].outputs[o] >= 0) g->values[g->nodes[i].outputs[o]].producer = i;
    e->cons_valid = 0;
done:
    free(indeg), free(order), free(nodes), free(owned);
    return st;
}

/* The attribute `name` of an added node, created empty (or cleared) for
 * the setter to fill; NULL when out of memory or the node was loaded. */
static onr_attr *attr_slot(onr_edit *e, int node, const char *name, onr_attr_type type,
                           onr_status *st, onr_err *err)
{
    onr_node *n = &e->g->nodes[node];
    if (!e->node_owned[node] || (e->node_owned[node] & ONR_NODE_SHARED_ATTRS)) {
        *st = onr_seterr(err, ONR_E_ARG, "attribute '%s' set on node '%s', %s", name, n->name,
                         e->node_owned[node] ? "a copy sharing another node's attributes"
                                             : "which a pass did not add");
        return NULL;
    }
    onr_attr *a = NULL;
    for (int k = 0; k < n->n_attr && !a; k++)
        if (strcmp(n->attrs[k].name, name) == 0) a = &n->attrs[k];
    if (a) {
        free(a->s), free(a->ints), free(a->floats);
        char *keep = a->name;
        memset(a, 0, sizeof *a);
        a->name = keep;
    } else {
        onr_attr *na = realloc(n->attrs, (size_t)(n->n_attr + 1) * sizeof *na);
        if (!na) {
            *st = nomem(err);
            return NULL;
        }
        n->attrs = na;
        a = &n->attrs[n->n_attr];
        memset(a, 0, sizeof *a);
        if (!(a->name = onr_strdup(name))) {
            *st = nomem(err);
            return NULL;
        }
        n->n_attr++;
    }
    a->type = type;
    return a;
}

onr_status onr_edit_set_attr_int(onr_edit *e, int node, const char *name, int64_t v, onr_err *err)
{
    onr_status st = ONR_OK;
    onr_attr *a = attr_slot(e, node, name, ONR_ATTR_INT, &st, err);
    if (!a) return st;
    a->i = v;
    return ONR_OK;
}

onr_status onr_edit_set_attr_float(onr_edit *e, int node, const char *name, float v, onr_err *err)
{
    onr_status st = ONR_OK;
    onr_attr *a = attr_slot(e, node, name, ONR_ATTR_FLOAT, &st, err);
    if (!a) return st;
    a->f = v;
    return ONR_OK;
}

onr_status onr_edit_set_attr_string(onr_edit *e, int node, const char *name, const char *v,
                                    onr_err *err)
{
    onr_status st = ONR_OK;
    onr_attr *a = attr_slot(e, node, name, ONR_ATTR_STRING, &st, err);
    if (!a) return st;
    if (!(a->s = onr_strdup(v))) return nomem(err);
    a->slen = strlen(v);
    return ONR_OK;
}

onr_status onr_edit_set_attr_ints(onr_edit *e, int node, const char *name, const int64_t *v,
                                  size_t n, onr_err *err)
{
    onr_status st = ONR_OK;
    onr_attr *a = attr_slot(e, node, name, ONR_ATTR_INTS, &st, err);
    if (!a) return st;
    if (!(a->ints = malloc((n ? n : 1) * sizeof *a->ints))) return nomem(err);
    if (n) memcpy(a->ints, v, n * sizeof *v);
    a->n = n;
    return ONR_OK;
}

onr_status onr_edit_set_attr_floats(onr_edit *e, int node, const char *name, const float *v,
                                    size_t n, onr_err *err)
{
    onr_status st = ONR_OK;
    onr_attr *a = attr_slot(e, node, name, ONR_ATTR_FLOATS, &st, err);
    if (!a) return st;
    if (!(a->floats = malloc((n ? n : 1) * sizeof *a->floats))) return nomem(err);
    if (n) memcpy(a->floats, v, n * sizeof *v);
    a->n = n;
    return ONR_OK;
}
