/*
 * pass_fold.c - static shape inference and constant folding, node by node
 * in topological order (see passes.h).
 *
 * A value's shape is trusted only when it is a constant, a graph input with
 * a static declared shape (checked when inputs are bound), or derived here
 * from such values by an operator's reshape; value_info declarations of
 * intermediate values are never trusted. Derived shapes are written to the
 * working copy's values.
 */
#include <stdlib.h>
#include <string.h>

#include "exec/exec.h"
#include "plan/passes.h"

/* Random operators are never folded, by name as well as by ONR_OP_NOFOLD. */
static int never_fold(const onr_node *n)
{
    static const char *const names[] = {"RandomNormal", "RandomUniform", "RandomNormalLike",
                                        "RandomUniformLike", "Multinomial", "Bernoulli", NULL};
    if (n->op && (n->op->impl->flags & ONR_OP_NOFOLD)) return 1;
    for (int i = 0; names[i]; i++)
        if (strcmp(n->op_type, names[i]) == 0) return 1;
    return 0;
}

/* The static view of value v as a tensor (shape; data when constant). */
static int value_meta(const onr_value *v, int known, onr_tensor *meta)
{
    if (v->konst) {
        *meta = *v->konst;
        meta->owns = 0;
        meta->name = NULL;
        return 1;
    }
    if (!known || v->dtype == ONR_UNDEFINED || v->rank < 0) return 0;
    memset(meta, 0, sizeof *meta);
    onr_err tmp = {0};
    return onr_tensor_set_shape(meta, v->dtype, v->rank, v->dims, &tmp) == ONR_OK;
}

typedef struct fold_ws { /* per-node work arrays, sized for the widest node */
    onr_tensor *meta_in, *meta_out;
    onr_tensor **in, **out, **res;
    uint8_t *in_const;
} fold_ws;

/* Evaluate node n whose inputs are in ws->in (all constant, or a Shape/Size
 * whose input shape is static); its outputs become constants. */
static int fold_node(onr_edit *e, const onr_node *n, fold_ws *ws, int all_const, int nthreads,
                     onr_err *err)
{
    int st = ONR_OK;
    for (int o = 0; o < n->n_out; o++) {
        ws->res[o] = NULL;
        if (n->outputs[o] >= 0 && !(ws->res[o] = calloc(1, sizeof(onr_tensor)))) {
            st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
            goto fail;
        }
    }
    for (int k = 0; k < n->n_in; k++) ws->in_const[k] = ws->in[k] && all_const;
    st = onr_exec_node(n, n->op, n->opset, ws->in, n->n_in, ws->in_const, ws->res, n->n_out,
                       nthreads, NULL, err);
    if (st) {
        onr_err_node(err, n);
        goto fail;
    }
    for (int o = 0; o < n->n_out; o++) {
        if (!ws->res[o]) continue;
        if (!ws->res[o]->owns && ws->res[o]->numel) { /* a view of its input: own a copy */
            onr_tensor *c = onr_tensor_clone(ws->res[o]);
            if (!c) {
                st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
                goto fail;
            }
            free(ws->res[o]);
            ws->res[o] = c;
        }
        onr_edit_set_konst(e, n->outputs[o], ws->res[o]);
        ws->res[o] = NULL;
    }
    return ONR_OK;
fail:
    for (int o = 0; o < n->n_out; o++) onr_tensor_free(ws->res[o]);
    return st;
}

/* Infer node i's output shapes; fold it when it can be. */
static int visit(onr_edit *e, int i, uint8_t *known, fold_ws *ws, int nthreads, onr_err *err)
{
    onr_graph *g = e->g;
    const onr_node *n = &g->nodes[i];
    int all_const = 1;
    /* outputs known only by running (control flow): nothing to infer */
    if (n->op && (n->op->impl->flags & ONR_OP_DYNAMIC_OUT)) return ONR_OK;
    for (int k = 0; k < n->n_in; k++) {
        ws->in[k] = NULL;
        if (n->inputs[k] < 0) continue;
        const onr_value *v = &g->values[n->inputs[k]];
        if (!value_meta(v, known[n->inputs[k]], &ws->meta_in[k])) return ONR_OK;
        ws->in[k] = &ws->meta_in[k];
        if (!v->konst) all_const = 0;
    }
    for (int o = 0; o < n->n_out; o++) {
        memset(&ws->meta_out[o], 0, sizeof ws->meta_out[o]);
        ws->out[o] = n->outputs[o] >= 0 ? &ws->meta_out[o] : NULL;
    }
    /* shapes only: create sees no constants, so nothing is packed here */
    onr_step tmp;
    int st = onr_step_init(&tmp, n, n->op, n->n_in, n->n_out, err);
    if (st) return st;
    for (int k = 0; k < n->n_in; k++) tmp.in[k] = ws->in[k];
    for (int o = 0; o < n->n_out; o++) tmp.out[o] = ws->out[o];
    st = onr_step_create(&tmp, nthreads, err);
    if (!st) st = onr_step_reshape(&tmp, nthreads, NULL, err);
    onr_step_destroy(&tmp);
    if (st == ONR_SHAPE_DEFER) return ONR_OK;
    if (st) {
        onr_err_node(err, n);
        return st;
    }
    /* a string output's payload: at most its inputs' longest strings put
     * together, plus a number's text, per element (copies of one long
     * string would otherwise pass the folding limit unseen) */
    size_t per_str = 32;
    for (int k = 0; k < n->n_in; k++) {
        const onr_tensor *t = ws->in[k];
        if (!t || t->kind || t->dtype != ONR_STRING || !t->data) continue;
        size_t longest = 0;
        for (int64_t j = 0; j < t->numel; j++) {
            const char *str = ((char *const *)t->data)[j];
            size_t l = str ? strlen(str) : 0;
            if (l > longest) longest = l;
        }
        per_str += longest;
    }
    size_t bytes = 0;
    for (int o = 0; o < n->n_out; o++) {
        if (!ws->out[o]) continue;
        onr_value *v = &g->values[n->outputs[o]];
        v->dtype = ws->out[o]->dtype;
        v->rank = ws->out[o]->rank;
        memcpy(v->dims, ws->out[o]->dims, sizeof(int64_t) * (size_t)v->rank);
        known[n->outputs[o]] = 1;
        bytes += (size_t)ws->out[o]->numel * (onr_dtype_size(ws->out[o]->dtype) + 1);
        if (ws->out[o]->dtype == ONR_STRING)
            bytes = (size_t)ws->out[o]->numel > (SIZE_MAX - bytes) / per_str
                        ? SIZE_MAX
                        : bytes + (size_t)ws->out[o]->numel * per_str;
    }
    int shape_only = !*n->domain &&
                     (strcmp(n->op_type, "Shape") == 0 || strcmp(n->op_type, "Size") == 0);
    if (!(all_const || shape_only) || never_fold(n) || bytes > ONR_FOLD_MAX_BYTES)
        return ONR_OK;
    for (int k = 0; all_const && k < n->n_in; k++) { /* a lazy weight is copied now (ir.h) */
        onr_tensor *t = n->inputs[k] >= 0 ? g->values[n->inputs[k]].konst : NULL;
        if (!t || !t->lazy) continue;
        if ((st = onr_tensor_materialize(t, err))) return st;
        ws->meta_in[k].data = t->data;
        ws->meta_in[k].lazy = NULL;
    }
    if ((st = fold_node(e, n, ws, all_const, nthreads, err))) return st;
    onr_edit_remove_node(e, i);
    return ONR_OK;
}

onr_status onr_pass_fold(onr_edit *e, int nthreads, onr_err *err)
{
    onr_graph *g = e->g;
    int wide = 1;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].n_in > wide) wide = g->nodes[i].n_in;
        if (g->nodes[i].n_out > wide) wide = g->nodes[i].n_out;
    }
    fold_ws ws = {0};
    uint8_t *known = calloc((size_t)g->n_values + 1, 1);
    ws.meta_in = calloc((size_t)wide, sizeof *ws.meta_in);
    ws.meta_out = calloc((size_t)wide, sizeof *ws.meta_out);
    ws.in = calloc((size_t)wide, sizeof *ws.in);
    ws.out = calloc((size_t)wide, sizeof *ws.out);
    ws.res = calloc((size_t)wide, sizeof *ws.res);
    ws.in_const = calloc((size_t)wide, 1);
    int st = ONR_OK;
    if (!known || !ws.meta_in || !ws.meta_out || !ws.in || !ws.out || !ws.res || !ws.in_const) {
        st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        const onr_value *v = &g->values[g->inputs[i]];
        int stat = v->dtype != ONR_UNDEFINED && v->rank >= 0 && !v->kind;
        for (int d = 0; d < v->rank && stat; d++) stat = v->dims[d] >= 0;
        known[g->inputs[i]] = (uint8_t)stat;
    }
    for (int i = 0; i < g->n_nodes && !st; i++)
        if (!e->dead[i]) st = visit(e, i, known, &ws, nthreads, err);
done:
    free(known), free(ws.meta_in), free(ws.meta_out), free(ws.in), free(ws.out), free(ws.res);
    free(ws.in_const);
    return st;
}
