/*
 * plan.c - from IR to steps: op resolution, topological order, static shape
 * inference with constant folding, step layout; and the executor loop.
 *
 * Shapes are inferred at load wherever the graph inputs' dims are static;
 * nodes whose inputs are all constant (and Shape/Size of a known shape) are
 * evaluated once here with the real kernels and become constants. At run,
 * every step re-derives its output shapes from the actual inputs (cheap),
 * re-prepares only when its input shapes changed, then runs.
 */
#include "plan/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec/exec.h"

/* Nodes never evaluated at load even when their inputs are constant. */
static int never_fold(const char *op)
{
    static const char *const names[] = {"RandomNormal", "RandomUniform", "RandomNormalLike",
                                        "RandomUniformLike", "Multinomial", "Bernoulli", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(op, names[i]) == 0) return 1;
    return 0;
}

/* Folded constants larger than this stay steps (they would cost memory). */
#define ONR_FOLD_MAX_BYTES (64u << 20)

static int resolve_ops(onr_model *m, onr_err *err)
{
    onr_graph *g = m->graph;
    char list[800] = "";
    size_t used = 0;
    int missing = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        onr_node *n = &g->nodes[i];
        /* set by the loader (nodes inlined from a function keep its imports) */
        if (!n->opset) n->opset = onr_model_opset(m, n->domain);
        n->op = n->opset ? onr_op_find(n->domain, n->op_type, n->opset) : NULL;
        if (n->op) continue;
        /* list each (domain, op, opset) once */
        int seen = 0;
        for (int k = 0; k < i && !seen; k++) {
            const onr_node *o = &g->nodes[k];
            seen = !o->op && strcmp(o->op_type, n->op_type) == 0 &&
                   strcmp(o->domain, n->domain) == 0;
        }
        if (seen) continue;
        missing++;
        if (used < sizeof list - 1) {
            char one[300];
            if (n->opset)
                snprintf(one, sizeof one, "%s%s (domain '%s', opset %lld, node '%s')",
                         missing > 1 ? "; " : "", n->op_type,
                         *n->domain ? n->domain : "ai.onnx", (long long)n->opset, n->name);
            else
                snprintf(one, sizeof one,
                         "%s%s (domain '%s' is not imported by the model, node '%s')",
                         missing > 1 ? "; " : "", n->op_type, *n->domain ? n->domain : "ai.onnx",
                         n->name);
            used += (size_t)snprintf(list + used, sizeof list - used, "%s", one);
        }
    }
    if (missing)
        return onr_seterr(err, ONR_E_UNSUPPORTED, "unsupported operator%s: %s",
                          missing > 1 ? "s" : "", list);
    return ONR_OK;
}

/* Kahn's algorithm over value producers; order[] receives node indices. */
static int topo_sort(const onr_graph *g, int *order, onr_err *err)
{
    int n = g->n_nodes;
    int *indeg = calloc((size_t)n + 1, sizeof *indeg);
    int *cnt = calloc((size_t)g->n_values + 1, sizeof *cnt); /* consumers per value */
    int *start = calloc((size_t)g->n_values + 2, sizeof *start);
    if (!indeg || !cnt || !start) {
        free(indeg), free(cnt), free(start);
        return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    }
    long total = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int v = g->nodes[i].inputs[k];
            if (v >= 0 && g->values[v].producer >= 0) {
                indeg[i]++;
                cnt[v]++;
                total++;
            }
        }
    int *adj = malloc(((size_t)total + 1) * sizeof *adj);
    int *queue = malloc(((size_t)n + 1) * sizeof *queue);
    if (!adj || !queue) {
        free(indeg), free(cnt), free(start), free(adj), free(queue);
        return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    }
    for (int v = 0; v < g->n_values; v++) start[v + 1] = start[v] + cnt[v];
    memset(cnt, 0, (size_t)g->n_values * sizeof *cnt);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int v = g->nodes[i].inputs[k];
            if (v >= 0 && g->values[v].producer >= 0) adj[start[v] + cnt[v]++] = i;
        }
    int head = 0, tail = 0;
    for (int i = 0; i < n; i++)
        if (!indeg[i]) queue[tail++] = i;
    while (head < tail) {
        int i = queue[head++];
        order[head - 1] = i;
        const onr_node *nd = &g->nodes[i];
        for (int o = 0; o < nd->n_out; o++) {
            int v = nd->outputs[o];
            if (v < 0) continue;
            for (int e = start[v]; e < start[v + 1]; e++)
                if (--indeg[adj[e]] == 0) queue[tail++] = adj[e];
        }
    }
    int st = ONR_OK;
    if (tail < n) {
        int culprit = 0;
        while (culprit < n && !indeg[culprit]) culprit++;
        st = onr_seterr(err, ONR_E_MODEL,
                        "the graph has a cycle: node '%s' (%s) depends on its own output", 
                        g->nodes[culprit].name, g->nodes[culprit].op_type);
    }
    free(indeg), free(cnt), free(start), free(adj), free(queue);
    return st;
}

/* Static knowledge of a value as a tensor: constant, shape-only, or unknown. */
static int value_meta(const onr_value *v, onr_tensor *meta)
{
    if (v->konst) {
        *meta = *v->konst;
        meta->owns = 0;
        meta->name = NULL;
        return 1;
    }
    if (v->dtype == ONR_UNDEFINED || v->rank < 0) return 0;
    for (int d = 0; d < v->rank; d++)
        if (v->dims[d] < 0) return 0;
    memset(meta, 0, sizeof *meta);
    onr_err tmp = {0};
    if (onr_tensor_set_shape(meta, v->dtype, v->rank, v->dims, &tmp)) return 0;
    return 1;
}

/* Infer one node's outputs at load; fold it when its inputs are constant. */
static int infer_node(onr_plan *p, int ni, uint8_t *known, int *folded, onr_err *err)
{
    onr_graph *g = p->graph;
    onr_node *n = &g->nodes[ni];
    *folded = 0;
    onr_tensor meta_in[n->n_in > 0 ? n->n_in : 1];
    onr_tensor *in[n->n_in > 0 ? n->n_in : 1];
    onr_tensor meta_out[n->n_out > 0 ? n->n_out : 1];
    onr_tensor *out[n->n_out > 0 ? n->n_out : 1];
    int all_const = 1;
    for (int k = 0; k < n->n_in; k++) {
        in[k] = NULL;
        if (n->inputs[k] < 0) continue;
        const onr_value *v = &g->values[n->inputs[k]];
        if (!known[n->inputs[k]] || !value_meta(v, &meta_in[k]))
            return ONR_OK; /* unknown until run */
        in[k] = &meta_in[k];
        if (!v->konst) all_const = 0;
    }
    memset(meta_out, 0, sizeof meta_out);
    for (int o = 0; o < n->n_out; o++) out[o] = n->outputs[o] >= 0 ? &meta_out[o] : NULL;
    /* shapes only: create sees no constants, so nothing is packed here */
    onr_step tmp;
    int st = onr_step_init(&tmp, n, n->op, n->n_in, n->n_out, err);
    if (st) return st;
    for (int k = 0; k < n->n_in; k++) tmp.in[k] = in[k];
    for (int o = 0; o < n->n_out; o++) tmp.out[o] = out[o];
    st = onr_step_create(&tmp, p->nthreads, err);
    if (!st) st = onr_step_reshape(&tmp, p->nthreads, NULL, err);
    onr_step_destroy(&tmp);
    if (st == ONR_SHAPE_DEFER) return ONR_OK;
    if (st) {
        onr_err_node(err, n);
        return st;
    }
    for (int o = 0; o < n->n_out; o++) {
        if (!out[o]) continue;
        onr_value *v = &g->values[n->outputs[o]];
        v->dtype = out[o]->dtype;
        v->rank = out[o]->rank;
        for (int d = 0; d < v->rank; d++) v->dims[d] = out[o]->dims[d];
        known[n->outputs[o]] = 1;
    }
    int shape_only = (strcmp(n->op_type, "Shape") == 0 || strcmp(n->op_type, "Size") == 0) &&
                     !*n->domain;
    if (!(all_const || shape_only) || never_fold(n->op_type) ||
        (n->op->impl->flags & ONR_OP_NOFOLD))
        return ONR_OK;
    size_t bytes = 0;
    for (int o = 0; o < n->n_out; o++)
        if (out[o]) bytes += (size_t)out[o]->numel * (onr_dtype_size(out[o]->dtype) + 1);
    if (bytes > ONR_FOLD_MAX_BYTES) return ONR_OK;
    /* evaluate it now with the real kernel */
    onr_tensor *res[n->n_out > 0 ? n->n_out : 1];
    for (int o = 0; o < n->n_out; o++) {
        res[o] = NULL;
        if (out[o] && !(res[o] = calloc(1, sizeof(onr_tensor)))) {
            st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
            goto fail;
        }
    }
    uint8_t *in_const = calloc((size_t)n->n_in + 1, 1);
    if (!in_const) {
        st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
        goto fail;
    }
    for (int k = 0; k < n->n_in; k++) in_const[k] = in[k] && all_const;
    st = onr_exec_node(n, n->op, n->opset, in, n->n_in, in_const, res, n->n_out, p->nthreads,
                       NULL, err);
    free(in_const);
    if (st) {
        onr_err_node(err, n);
        goto fail;
    }
    for (int o = 0; o < n->n_out; o++) {
        if (!res[o]) continue;
        if (!res[o]->owns && res[o]->numel) { /* a view of its input: own a copy */
            onr_tensor *c = onr_tensor_clone(res[o]);
            if (!c) {
                st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
                goto fail;
            }
            free(res[o]);
            res[o] = c;
        }
        g->values[n->outputs[o]].konst = res[o];
        res[o] = NULL;
    }
    *folded = 1;
    return ONR_OK;
fail:
    for (int o = 0; o < n->n_out; o++) onr_tensor_free(res[o]);
    return st;
}

static int add_step(onr_plan *p, int ni, onr_err *err)
{
    onr_graph *g = p->graph;
    onr_node *n = &g->nodes[ni];
    onr_step *s = &p->steps[p->n_steps];
    int st = onr_step_init(s, n, n->op, n->n_in, n->n_out, err);
    if (st) return st;
    for (int k = 0; k < n->n_in; k++) {
        int v = n->inputs[k];
        if (v < 0) continue;
        s->in[k] = &p->rt[v];
        s->in_const[k] = g->values[v].konst != NULL;
    }
    for (int o = 0; o < n->n_out; o++)
        if (n->outputs[o] >= 0) s->out[o] = &p->rt[n->outputs[o]];
    p->n_steps++;
    if ((st = onr_step_create(s, p->nthreads, err))) onr_err_node(err, n);
    return st;
}

/* Everything a step needs before its kernel runs, for its current input
 * shapes: output shapes, the kernel's prepare (only when the input shapes
 * changed), output buffers and scratch. Inputs need shapes, not data. */
static int step_prepare(onr_plan *p, onr_step *s, onr_err *err)
{
    const onr_op_impl *impl = s->op->impl;
    int st = onr_step_reshape(s, p->nthreads, NULL, err);
    if (st == ONR_SHAPE_DEFER)
        return onr_seterr(err, ONR_E_RUNTIME, "output shape could not be derived from the inputs");
    if (st) return st;
    for (int o = 0; o < s->n_out; o++) {
        onr_tensor *t = s->out[o];
        if (!t) continue;
        if (o == 0 && (impl->flags & ONR_OP_VIEW)) {
            if (t->owns) free(t->data);
            t->data = s->in[0]->data;
            t->owns = 0;
            t->cap = 0;
        } else if ((st = onr_tensor_alloc(t, err))) {
            return st;
        }
    }
    if (s->scratch > p->scratch_cap) {
        free(p->scratch);
        p->scratch = NULL;
        p->scratch_cap = 0;
        size_t sz = (s->scratch + 63) & ~(size_t)63;
        if (posix_memalign(&p->scratch, 64, sz) != 0)
            return onr_seterr(err, ONR_E_NOMEM, "out of memory for %zu bytes of scratch", sz);
        p->scratch_cap = sz;
    }
    return ONR_OK;
}

/* Prepare at build time every step whose input shapes are already known
 * (static shapes): weights are packed and buffers allocated at open, and
 * the first run finds them ready. Steps fed by symbolic or data-dependent
 * shapes are prepared at their first run instead. */
static int prepare_static_steps(onr_plan *p, const uint8_t *known, onr_err *err)
{
    onr_graph *g = p->graph;
    for (int i = 0; i < g->n_inputs; i++) /* shapes only: the data comes with the run */
        if (known[g->inputs[i]]) value_meta(&g->values[g->inputs[i]], &p->rt[g->inputs[i]]);
    for (int i = 0; i < p->n_steps; i++) {
        onr_step *s = &p->steps[i];
        const onr_node *n = s->node;
        int ready = 1;
        for (int k = 0; k < n->n_in && ready; k++) ready = n->inputs[k] < 0 || known[n->inputs[k]];
        for (int o = 0; o < n->n_out && ready; o++) ready = n->outputs[o] < 0 || known[n->outputs[o]];
        if (!ready) continue;
        int st = step_prepare(p, s, err);
        if (st) {
            onr_err_node(err, n);
            return st;
        }
    }
    return ONR_OK;
}

onr_status onr_plan_build(onr_model *m, int nthreads, onr_plan **out, onr_err *err)
{
    *out = NULL;
    onr_graph *g = m->graph;
    int st = resolve_ops(m, err);
    if (st) return st;
    onr_plan *p = calloc(1, sizeof *p);
    int *order = malloc(((size_t)g->n_nodes + 1) * sizeof *order);
    uint8_t *known = NULL;
    if (!p || !order) {
        free(p), free(order);
        return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    }
    p->model = m;
    p->graph = g;
    p->nthreads = nthreads > 0 ? nthreads : 1;
    if ((st = topo_sort(g, order, err))) goto fail;
    p->steps = calloc((size_t)g->n_nodes + 1, sizeof *p->steps);
    p->rt = calloc((size_t)g->n_values + 1, sizeof *p->rt);
    if (!p->steps || !p->rt) {
        st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
        goto fail;
    }
    /* values whose shapes are known before any run: constants, graph inputs
     * with static shapes, and the outputs shape inference derives from them */
    known = calloc((size_t)g->n_values + 1, 1);
    if (!known) {
        st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
        goto fail;
    }
    for (int v = 0; v < g->n_values; v++) known[v] = g->values[v].konst != NULL;
    for (int i = 0; i < g->n_inputs; i++) {
        onr_tensor meta;
        known[g->inputs[i]] = (uint8_t)value_meta(&g->values[g->inputs[i]], &meta);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        int folded;
        if ((st = infer_node(p, order[i], known, &folded, err))) goto fail;
        if (folded) p->n_folded++;
    }
    /* constants are seen by the executor as views of their data */
    for (int v = 0; v < g->n_values; v++) {
        const onr_tensor *k = g->values[v].konst;
        if (!k) continue;
        p->rt[v] = *k;
        p->rt[v].owns = 0;
        p->rt[v].name = NULL;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const onr_node *n = &g->nodes[order[i]];
        int all_konst = n->n_out > 0;
        for (int o = 0; o < n->n_out; o++)
            if (n->outputs[o] >= 0 && !g->values[n->outputs[o]].konst) all_konst = 0;
        if (all_konst) continue;
        if ((st = add_step(p, order[i], err))) goto fail;
    }
    if ((st = prepare_static_steps(p, known, err))) goto fail;
    free(order);
    free(known);
    *out = p;
    return ONR_OK;
fail:
    free(order);
    free(known);
    onr_plan_free(p);
    return st;
}

static int run_step(onr_plan *p, onr_step *s, onr_err *err)
{
    int st = step_prepare(p, s, err);
    return st ? st : (int)onr_step_run(s, p->scratch, p->nthreads, err);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

onr_status onr_plan_run(onr_plan *p, onr_err *err)
{
    if (p->profiling && !p->prof_ms) {
        p->prof_ms = calloc((size_t)p->n_steps + 1, sizeof(double));
        p->prof_start_ms = calloc((size_t)p->n_steps + 1, sizeof(double));
        if (!p->prof_ms || !p->prof_start_ms)
            return onr_seterr(err, ONR_E_NOMEM, "out of memory for profiling");
    }
    double t0 = p->profiling ? now_ms() : 0;
    for (int i = 0; i < p->n_steps; i++) {
        double ts = p->profiling ? now_ms() : 0;
        int st = run_step(p, &p->steps[i], err);
        if (p->profiling) {
            p->prof_start_ms[i] = ts - t0;
            p->prof_ms[i] = now_ms() - ts;
        }
        if (st) {
            onr_err_node(err, p->steps[i].node);
            return st;
        }
    }
    return ONR_OK;
}

void onr_plan_free(onr_plan *p)
{
    if (!p) return;
    for (int i = 0; i < p->n_steps; i++) {
        onr_step_destroy(&p->steps[i]);
    }
    free(p->steps);
    free(p->prof_ms);
    free(p->prof_start_ms);
    if (p->rt && p->graph)
        for (int v = 0; v < p->graph->n_values; v++)
            if (p->rt[v].owns) onr_tensor_clear(&p->rt[v]);
    free(p->rt);
    free(p->scratch);
    free(p);
}
