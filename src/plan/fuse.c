/*
 * fuse.c - the helpers fusion passes share (fuse.h): matching against the
 * working copy with a consumer index that may be stale within a sweep, and
 * emitting a fused node that records what it replaced.
 */
#include "plan/fuse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

onr_status onr_fuse_sweep(onr_edit *e, onr_fuse_match_fn fn, void *ctx, onr_err *err)
{
    for (;;) {
        onr_status st = onr_edit_index(e, err);
        if (st) return st;
        int fused = 0, n = e->g->n_nodes;
        for (int i = 0; i < n; i++) {
            if (e->dead[i]) continue;
            int r = fn(e, i, ctx, err);
            if (r < 0) return err && err->code ? err->code : ONR_E_ARG;
            fused |= r > 0;
        }
        if (!fused) return ONR_OK;
    }
}

int onr_fuse_producer(const onr_edit *e, int v)
{
    if (v < 0 || v >= e->g->n_values) return -1;
    int p = e->g->values[v].producer;
    return p >= 0 && p < e->g->n_nodes && !e->dead[p] ? p : -1;
}

int onr_fuse_is(const onr_edit *e, int i, const char *op_type)
{
    if (i < 0 || i >= e->g->n_nodes || e->dead[i]) return 0;
    const onr_node *n = &e->g->nodes[i];
    return n->domain[0] == 0 && strcmp(n->op_type, op_type) == 0;
}

int onr_fuse_src(const onr_edit *e, int v, const char *op_type)
{
    int p = onr_fuse_producer(e, v);
    return p >= 0 && onr_fuse_is(e, p, op_type) ? p : -1;
}

/* The indexed consumers of v, or NULL when v's consumers are unknown: v is
 * newer than the index, or one of its indexed consumers was removed since
 * (a fusion this sweep rewired them). */
static const int *uses(const onr_edit *e, int v, int *n)
{
    if (v < 0 || v >= e->cons_n_values || !e->cons_start) return NULL;
    const int *c = e->cons + e->cons_start[v];
    *n = e->cons_start[v + 1] - e->cons_start[v];
    for (int k = 0; k < *n; k++)
        if (c[k] >= e->cons_n_nodes || e->dead[c[k]]) return NULL;
    return c;
}

int onr_fuse_n_uses(const onr_edit *e, int v)
{
    int n = 0;
    return uses(e, v, &n) ? n : -1;
}

int onr_fuse_sole_consumer(const onr_edit *e, int v)
{
    int n = 0;
    const int *c = uses(e, v, &n);
    if (!c || n == 0 || e->g->values[v].is_output || onr_edit_is_output(e, v)) return -1;
    for (int k = 1; k < n; k++)
        if (c[k] != c[0]) return -1;
    return c[0];
}

const onr_tensor *onr_fuse_const(const onr_edit *e, int v)
{
    if (v < 0 || v >= e->g->n_values) return NULL;
    onr_tensor *t = e->g->values[v].konst;
    if (t && t->lazy) { /* a lazy weight (ir.h): its data is read now */
        onr_err tmp = {0};
        if (onr_tensor_materialize(t, &tmp)) return NULL; /* no memory: no fusion */
    }
    return t && t->data ? t : NULL;
}

const onr_tensor *onr_fuse_const_desc(const onr_edit *e, int v)
{
    if (v < 0 || v >= e->g->n_values) return NULL;
    const onr_tensor *t = e->g->values[v].konst;
    return t && (t->data || t->lazy) ? t : NULL;
}

const void *onr_fuse_const_bytes(const onr_edit *e, int v)
{
    const onr_tensor *t = onr_fuse_const_desc(e, v);
    return t ? (t->data ? t->data : t->lazy) : NULL;
}

int onr_fuse_is_const(const onr_edit *e, int v) { return onr_fuse_const_desc(e, v) != NULL; }

static int numeric(onr_dtype dt)
{
    return dt != ONR_UNDEFINED && dt != ONR_STRING && dt < 32 && (ONR_TYPES_NUM >> dt & 1u);
}

int onr_fuse_const_scalar(const onr_edit *e, int v, double *x)
{
    const onr_tensor *t = onr_fuse_const(e, v);
    if (!t || t->numel != 1 || !numeric(t->dtype)) return 0;
    *x = onr_get_f64(t, 0);
    return 1;
}

int onr_fuse_const_all(const onr_edit *e, int v, double x, double tol)
{
    const onr_tensor *t = onr_fuse_const(e, v);
    if (!t || t->numel < 1 || !numeric(t->dtype)) return 0;
    for (int64_t i = 0; i < t->numel; i++) {
        double y = onr_get_f64(t, i);
        if (!(fabs(y - x) <= tol)) return 0;
    }
    return 1;
}

int onr_fuse_shape(const onr_edit *e, int v, int64_t *dims)
{
    if (v < 0 || v >= e->g->n_values) return -1;
    const onr_value *val = &e->g->values[v];
    if (val->konst) {
        memcpy(dims, val->konst->dims, sizeof(int64_t) * (size_t)val->konst->rank);
        return val->konst->rank;
    }
    if (val->rank < 0) return -1;
    memcpy(dims, val->dims, sizeof(int64_t) * (size_t)val->rank);
    return val->rank;
}

int onr_fuse_dim_eq(const onr_edit *e, int u, int du, int v, int dv)
{
    int64_t a[ONR_MAX_RANK], b[ONR_MAX_RANK];
    int ru = onr_fuse_shape(e, u, a), rv = onr_fuse_shape(e, v, b);
    if (du < 0 || du >= ru || dv < 0 || dv >= rv) return 0;
    if (a[du] >= 0 || b[dv] >= 0) return a[du] == b[dv];
    const char *x = e->g->values[u].dim_names[du], *y = e->g->values[v].dim_names[dv];
    return x && y && strcmp(x, y) == 0;
}

onr_dtype onr_fuse_dtype(const onr_edit *e, int v)
{
    if (v < 0 || v >= e->g->n_values) return ONR_UNDEFINED;
    const onr_value *val = &e->g->values[v];
    return val->konst ? val->konst->dtype : val->dtype;
}

int onr_fuse_other_slot(const onr_node *n, int v)
{
    if (n->n_in != 2) return -1;
    if (n->inputs[0] == v && n->inputs[1] != v) return 1;
    if (n->inputs[1] == v && n->inputs[0] != v) return 0;
    return -1;
}

int onr_fuse_closed(const onr_edit *e, const int *nodes, int n, const int *keep, int n_keep)
{
    for (int a = 0; a < n; a++) {
        if (nodes[a] < 0 || nodes[a] >= e->g->n_nodes || e->dead[nodes[a]]) return 0;
        for (int b = 0; b < a; b++)
            if (nodes[b] == nodes[a]) return 0;
    }
    for (int a = 0; a < n; a++) {
        const onr_node *nd = &e->g->nodes[nodes[a]];
        for (int o = 0; o < nd->n_out; o++) {
            int v = nd->outputs[o], kept = 0;
            if (v < 0) continue;
            for (int k = 0; k < n_keep && !kept; k++) kept = keep[k] == v;
            if (kept) continue;
            int cnt = 0;
            const int *c = uses(e, v, &cnt);
            if (!c || e->g->values[v].is_output || onr_edit_is_output(e, v)) return 0;
            for (int k = 0; k < cnt; k++) {
                int in_set = 0;
                for (int b = 0; b < n && !in_set; b++) in_set = nodes[b] == c[k];
                if (!in_set) return 0;
            }
        }
    }
    return 1;
}

/* "Op 'name'" of node i, or its fused_from list when it was itself fused. */
static size_t describe(const onr_node *n, char *buf, size_t len)
{
    if (n->fused_from) return (size_t)snprintf(buf, len, "%s", n->fused_from);
    return (size_t)snprintf(buf, len, "%s '%s'", n->op_type, n->name);
}

static onr_status record(onr_edit *e, int node, const int *replaced, int n_replaced, onr_err *err)
{
    size_t total = 1;
    int count = 0;
    for (int k = 0; k < n_replaced; k++) {
        const onr_node *r = &e->g->nodes[replaced[k]];
        total += describe(r, NULL, 0) + 2;
        count += r->n_fused ? r->n_fused : 1;
    }
    char *s = malloc(total);
    if (!s) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    size_t o = 0;
    s[0] = 0;
    for (int k = 0; k < n_replaced; k++) {
        if (k) o += (size_t)snprintf(s + o, total - o, ", ");
        o += describe(&e->g->nodes[replaced[k]], s + o, total - o);
    }
    onr_node *n = &e->g->nodes[node];
    free(n->fused_from);
    n->fused_from = s;
    n->n_fused = count;
    return ONR_OK;
}

int onr_fuse_emit(onr_edit *e, const char *op_type, const char *domain, int64_t opset,
                  int n_in, const int *inputs, int n_out, const int *outputs,
                  const int *replaced, int n_replaced, onr_err *err)
{
    const onr_op *op = onr_op_find(domain ? domain : "", op_type, opset);
    if (!op) {
        onr_seterr(err, ONR_E_UNSUPPORTED, "fusion made %s (domain '%s', opset %lld), which has no kernel",
                   op_type, domain && *domain ? domain : "ai.onnx", (long long)opset);
        return -1;
    }
    /* named after the pattern's last node: errors then point at the model */
    char name[256];
    snprintf(name, sizeof name, "%s", n_replaced ? e->g->nodes[replaced[n_replaced - 1]].name : op_type);
    int i = onr_edit_add_node(e, op_type, domain, name, n_in, inputs, n_out, outputs, err);
    if (i < 0) return -1;
    e->g->nodes[i].opset = opset;
    e->g->nodes[i].op = op;
    if (record(e, i, replaced, n_replaced, err)) return -1;
    for (int k = 0; k < n_replaced; k++) onr_edit_remove_node(e, replaced[k]);
    /* the outputs keep their producer: remove_node cleared only the old ones */
    for (int o = 0; o < n_out; o++)
        if (outputs[o] >= 0) e->g->values[outputs[o]].producer = i;
    return i;
}

static int add_named(onr_edit *e, const char *hint, const char *suffix, onr_err *err)
{
    char name[300];
    snprintf(name, sizeof name, "%s/%s_%d", hint ? hint : "", suffix, e->g->n_values);
    return onr_edit_add_value(e, name, err);
}

int onr_fuse_add_const(onr_edit *e, const char *hint, onr_tensor *t, onr_err *err)
{
    int v = add_named(e, hint, "fused_const", err);
    if (v < 0) {
        onr_tensor_free(t);
        return -1;
    }
    onr_edit_set_konst(e, v, t);
    onr_value *val = &e->g->values[v];
    val->dtype = t->dtype;
    val->rank = t->rank;
    memcpy(val->dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
    return v;
}

int onr_fuse_add_value(onr_edit *e, const char *hint, onr_err *err)
{
    return add_named(e, hint, "fused", err);
}

void onr_fuse_set_meta(onr_edit *e, int v, onr_dtype dt, int rank, const int64_t *dims)
{
    onr_value *val = &e->g->values[v];
    val->dtype = dt;
    val->rank = rank;
    for (int i = 0; i < rank; i++) val->dims[i] = dims[i];
}

int onr_fuse_add_reshape(onr_edit *e, const char *name, int x, const int64_t *shape, int rank, int out,
                         onr_err *err)
{
    const onr_op *op = onr_op_find("", "Reshape", 14);
    if (!op) return onr_seterr(err, ONR_E_UNSUPPORTED, "fusion: no Reshape kernel"), -1;
    const int64_t n = rank;
    onr_tensor *t = onr_tensor_new(ONR_INT64, 1, &n);
    if (!t) return onr_seterr(err, ONR_E_NOMEM, "out of memory"), -1;
    for (int i = 0; i < rank; i++) ((int64_t *)t->data)[i] = shape[i];
    int sv = onr_fuse_add_const(e, name, t, err);
    if (sv < 0) return -1;
    if (out < 0) {
        if ((out = onr_fuse_add_value(e, name, err)) < 0) return -1;
        onr_fuse_set_meta(e, out, ONR_FLOAT, rank, shape);
    }
    const int ins[2] = {x, sv};
    int i = onr_edit_add_node(e, "Reshape", "", name, 2, ins, 1, &out, err);
    if (i < 0) return -1;
    e->g->nodes[i].opset = 14;
    e->g->nodes[i].op = op;
    return out;
}
