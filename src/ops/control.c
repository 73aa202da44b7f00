/*
 * control.c - control flow: If (1-21+), Loop (1-21+) and Scan (8, 9-21+) on
 * tensors.
 *
 * A subgraph is a sub-plan held in the op's params: create plans each
 * graph attribute once with the same planner as the model
 * (onr_plan_build_sub: folding, DCE, fusions, memory plan), so a body's
 * steps keep their packed weights and its arena across iterations and runs.
 * The outer-scope values a subgraph reads (at any depth) arrive as implicit
 * inputs after the declared ones (see plan.h); run binds them to the
 * sub-plan once per run, without copying. Another plan instance of the
 * enclosing plan (a session run from several threads) gets an instance of
 * each sub-plan through the clone hook: the body's packed weights are
 * made once, whatever the number of instances.
 *
 * Outputs are only known once the subgraph has run, so the ops are
 * ONR_OP_DYNAMIC_OUT: each output is its own buffer and run sets its shape.
 * Values a subgraph produces are handed over by swapping buffers, not
 * copied, wherever the sub-plan owns them: loop-carried values rotate
 * between two buffers per value and the body's output, so a loop whose
 * shapes repeat allocates nothing per iteration. Scan outputs of Loop grow
 * geometrically (linear in the iteration count); Scan's are written in
 * place once the first iteration gives their shape.
 *
 * Errors inside a subgraph name its path: "node 'loop' (Loop, opset 16):
 * body (iteration 3) / node 'add' (Add, opset 14): ...".
 */
#include <stdlib.h>
#include <string.h>

#include "plan/plan.h"

/* ---- shared pieces ---------------------------------------------------------- */

/* Copy n elements (strings duplicated, the old ones freed). */
static int elem_copy(void *dst, const void *src, int64_t n, onr_dtype dt, onr_err *err)
{
    if (dt != ONR_STRING) {
        size_t b = (size_t)n * onr_dtype_size(dt);
        if (b) memmove(dst, src, b);
        return ONR_OK;
    }
    char **d = dst;
    char *const *s = src;
    for (int64_t i = 0; i < n; i++) {
        char *c = onr_strdup(s[i] ? s[i] : "");
        if (!c) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
        free(d[i]);
        d[i] = c;
    }
    return ONR_OK;
}

/* dst becomes an owned copy of src (a tensor or a container). */
static int tensor_copy(onr_tensor *dst, const onr_tensor *src, onr_err *err)
{
    return onr_value_copy(dst, src, err);
}

/* dst takes src's value by exchanging buffers: dst gets src's shape and
 * buffer, src keeps its shape (its owner reallocates only when the buffer it
 * gets back is too small: onr_tensor_alloc reuses capacity). Strings, whose
 * buffers are counted by element, are copied. */
static int tensor_move(onr_tensor *dst, onr_tensor *src, onr_err *err)
{
    if (src->owns && (src->kind || dst->kind)) { /* containers: exchange whole values */
        if (!dst->owns) dst->data = NULL, dst->cap = 0;
        onr_tensor t = *dst;
        char *nd = dst->name, *ns = src->name;
        uint32_t rd = dst->refs, rs = src->refs; /* each object's own owners */
        *dst = *src;
        *src = t;
        dst->name = nd, dst->refs = rd;
        src->name = ns, src->refs = rs;
        return ONR_OK;
    }
    if (!src->owns || src->dtype == ONR_STRING || dst->dtype == ONR_STRING)
        return tensor_copy(dst, src, err);
    if (!dst->owns) dst->data = NULL, dst->cap = 0;
    void *data = dst->data;
    size_t cap = dst->cap;
    uint8_t owns = dst->owns;
    int st = onr_tensor_set_shape(dst, src->dtype, src->rank, src->dims, err);
    if (st) return st;
    dst->data = src->data;
    dst->cap = src->cap;
    dst->owns = 1;
    src->data = data;
    src->cap = cap;
    src->owns = owns;
    return ONR_OK;
}

/* Whether output i of sub-plan p is the same value as an earlier output. */
static int dup_output(const onr_plan *p, int i)
{
    const onr_graph *g = onr_plan_graph(p);
    for (int j = 0; j < i; j++)
        if (g->outputs[j] == g->outputs[i]) return 1;
    return 0;
}

/* dst takes output i of sub-plan p: its buffer when p owns it, else a copy. */
static int take_output(onr_tensor *dst, onr_plan *p, int i, onr_err *err)
{
    onr_tensor *src = onr_plan_output(p, i);
    if (src->dtype == ONR_UNDEFINED && !src->kind)
        return onr_seterr(err, ONR_E_RUNTIME, "subgraph output %d was not computed", i);
    if (!dup_output(p, i)) return tensor_move(dst, src, err);
    return tensor_copy(dst, src, err);
}

/* The graph attribute `name` of the node, planned; NULL with an error. */
static onr_status plan_graph_attr(onr_create_ctx *c, const char *name, int n_decl,
                                  const onr_graph **graph, onr_plan **out)
{
    *out = NULL;
    const onr_attr *a = onr_node_attr(c->node, name);
    if (!a || a->type != ONR_ATTR_GRAPH || !a->g)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' (a graph) is %s", name,
                          a ? "not a graph" : "missing");
    const char **names;
    int n_outer;
    onr_status st = onr_node_outer_names(c->node, &names, &n_outer, c->err);
    if (st) return st;
    if (n_decl + n_outer != c->n_in) {
        free(names);
        return onr_seterr(c->err, ONR_E_MODEL,
                          "the node has %d inputs, expected %d declared and %d outer-scope ones",
                          c->n_in, n_decl, n_outer);
    }
    onr_plan_opts po = {.nthreads = c->nthreads, .fuse = !c->no_fuse};
    const onr_tensor *const *konst = c->konst ? c->konst + n_decl : NULL;
    st = onr_plan_build_sub(a->g, &po, n_outer, names, konst, out, c->err);
    free(names);
    if (st) onr_err_prefix(c->err, "%s / ", name);
    *graph = a->g;
    return st;
}

static void bind_outer(onr_plan *p, const onr_kctx *ctx, int n_decl)
{
    for (int j = 0; j < p->n_outer; j++)
        if (ctx->in[n_decl + j]) onr_plan_bind_outer(p, j, ctx->in[n_decl + j]);
}

/* Run sub-plan p under the run's cancel flag; errors get the path prefix. */
static int run_sub(onr_plan *p, const onr_kctx *ctx, const char *label, int64_t iter)
{
    p->cancel = ctx->cancel ? ctx->cancel : &p->cancel_flag;
    int st = onr_plan_run(p, ctx->err);
    if (st) {
        if (iter >= 0) onr_err_prefix(ctx->err, "%s (iteration %lld) / ", label, (long long)iter);
        else onr_err_prefix(ctx->err, "%s / ", label);
    }
    return st;
}

/* A one-element boolean (or numeric) tensor's truth. */
static int read_flag(const onr_tensor *t, const char *what, int *v, onr_err *err)
{
    if (!t || t->numel != 1 || !t->data || t->dtype == ONR_STRING)
        return onr_seterr(err, ONR_E_RUNTIME, "%s must be a tensor of one element", what);
    *v = onr_load_f64(t->dtype, t->data, 0) != 0;
    return ONR_OK;
}

/* Loop-carried values: two buffers per value that the current value and
 * the next alternate between (plus the body output's own buffer, swapped
 * in), so no iteration allocates once the shapes repeat. */
typedef struct carry {
    int n;
    onr_tensor *buf;         /* 2n */
    const onr_tensor **cur;  /* n: current value (an input, or one of buf) */
    const onr_tensor **next; /* n: work */
} carry;

static int carry_init(carry *c, int n)
{
    c->n = n;
    c->buf = calloc(2 * (size_t)n + 1, sizeof *c->buf);
    c->cur = calloc((size_t)n + 1, sizeof *c->cur);
    c->next = calloc((size_t)n + 1, sizeof *c->next);
    return c->buf && c->cur && c->next ? 0 : -1;
}

static void carry_free(carry *c)
{
    if (c->buf)
        for (int k = 0; k < 2 * c->n; k++) onr_tensor_clear(&c->buf[k]);
    free(c->buf), free(c->cur), free(c->next);
    memset(c, 0, sizeof *c);
}

/* Outputs [first, first + n) of the body become the current values. */
static int carry_advance(carry *c, onr_plan *body, int first, onr_err *err)
{
    for (int k = 0; k < c->n; k++) {
        onr_tensor *nx = c->cur[k] == &c->buf[2 * k] ? &c->buf[2 * k + 1] : &c->buf[2 * k];
        int st = take_output(nx, body, first + k, err);
        if (st) return st;
        c->next[k] = nx;
    }
    for (int k = 0; k < c->n; k++) c->cur[k] = c->next[k];
    return ONR_OK;
}

/* Output o receives carried value k (its buffer when it is one of ours). */
static int carry_emit(carry *c, int k, onr_tensor *out, onr_err *err)
{
    if (!out) return ONR_OK;
    const onr_tensor *v = c->cur[k];
    if (v == &c->buf[2 * k] || v == &c->buf[2 * k + 1]) return tensor_move(out, (onr_tensor *)v, err);
    return tensor_copy(out, v, err);
}

/* ---- If ------------------------------------------------------------------------ */

typedef struct if_params {
    onr_plan *branch[2]; /* then, else */
    const onr_graph *graph[2];
} if_params;

static int if_create(onr_create_ctx *c, void *params)
{
    if_params *p = params;
    static const char *const names[2] = {"then_branch", "else_branch"};
    for (int b = 0; b < 2; b++) {
        int st = plan_graph_attr(c, names[b], 1, &p->graph[b], &p->branch[b]);
        if (st) return st;
        if (p->graph[b]->n_outputs != c->n_out)
            return onr_seterr(c->err, ONR_E_MODEL, "%s has %d outputs, the node %d", names[b],
                              p->graph[b]->n_outputs, c->n_out);
    }
    return ONR_OK;
}

static void if_destroy(void *params)
{
    if_params *p = params;
    for (int b = 0; b < 2; b++) onr_plan_free(p->branch[b]);
}

/* Another plan instance's If: instances of the branches' plans. */
static int if_clone(void *dst, const void *src, onr_err *err)
{
    if_params *d = dst;
    const if_params *s = src;
    for (int b = 0; b < 2; b++) {
        d->graph[b] = s->graph[b];
        int st = onr_plan_instance(s->branch[b], &d->branch[b], err);
        if (st) return st;
    }
    return ONR_OK;
}

static int if_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    const onr_tensor *c = ctx->in[0];
    if (!c || c->numel != 1 || c->dtype == ONR_STRING)
        return onr_seterr(ctx->err, ONR_E_MODEL, "cond must be a tensor of one element");
    return ONR_OK;
}

static int if_run(const onr_kctx *ctx)
{
    if_params *p = ctx->params;
    int cond = 0;
    int st = read_flag(ctx->in[0], "cond", &cond, ctx->err);
    if (st) return st;
    int b = cond ? 0 : 1;
    onr_plan *sp = p->branch[b];
    bind_outer(sp, ctx, 1);
    if ((st = run_sub(sp, ctx, b ? "else_branch" : "then_branch", -1))) return st;
    for (int o = 0; o < ctx->n_out && !st; o++)
        if (ctx->out[o]) st = take_output(ctx->out[o], sp, o, ctx->err);
    return st;
}

const onr_op_impl onr_impl_If = {.create = if_create, .reshape = if_reshape, .run = if_run,
    .destroy = if_destroy, .clone = if_clone, .params_size = sizeof(if_params), .types = ONR_TYPES_ALL,
    .flags = ONR_OP_DYNAMIC_OUT | ONR_OP_NOFOLD};

/* ---- Loop ----------------------------------------------------------------------- */

/* An output's shape when no iteration ran: from the body's declaration. */
typedef struct decl_shape {
    onr_dtype dtype;
    int rank;
    int64_t dims[ONR_MAX_RANK];
} decl_shape;

static void declared_shape(const onr_graph *g, int out, decl_shape *d)
{
    const onr_value *v = &g->values[g->outputs[out]];
    d->dtype = v->dtype != ONR_UNDEFINED ? v->dtype : ONR_FLOAT;
    d->rank = v->rank > 0 && v->rank < ONR_MAX_RANK ? v->rank : 0;
    for (int k = 0; k < d->rank; k++) d->dims[k] = v->dims[k] > 0 ? v->dims[k] : 0;
}

typedef struct loop_params {
    onr_plan *body;
    const onr_graph *graph;
    int n_decl, n_carried, n_scan;
    carry c;
    int64_t iter_val;
    uint8_t cond_val;
    onr_tensor iter_t, cond_t; /* views of iter_val / cond_val bound to the body */
    decl_shape *scan_decl;     /* per scan output */
    onr_tensor *row_shape;     /* per scan output: the first iteration's shape */
} loop_params;

static int loop_create(onr_create_ctx *c, void *params)
{
    loop_params *p = params;
    const char **names;
    int n_outer;
    int st = onr_node_outer_names(c->node, &names, &n_outer, c->err);
    if (st) return st;
    free(names);
    p->n_decl = c->n_in - n_outer;
    if (p->n_decl < 2)
        return onr_seterr(c->err, ONR_E_MODEL, "Loop needs inputs M and cond (either may be \"\")");
    p->n_carried = p->n_decl - 2;
    if ((st = plan_graph_attr(c, "body", p->n_decl, &p->graph, &p->body))) return st;
    const onr_graph *g = p->graph;
    if (g->n_inputs != 2 + p->n_carried)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "body has %d inputs, expected 2 + %d loop-carried values", g->n_inputs,
                          p->n_carried);
    p->n_scan = g->n_outputs - 1 - p->n_carried;
    if (p->n_scan < 0 || c->n_out != p->n_carried + p->n_scan)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "body has %d outputs and the node %d, for %d loop-carried values "
                          "(the body returns cond, the carried values, then the scan outputs)",
                          g->n_outputs, c->n_out, p->n_carried);
    if (carry_init(&p->c, p->n_carried)) return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
    p->scan_decl = calloc((size_t)p->n_scan + 1, sizeof *p->scan_decl);
    p->row_shape = calloc((size_t)p->n_scan + 1, sizeof *p->row_shape);
    if (!p->scan_decl || !p->row_shape) return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
    for (int s = 0; s < p->n_scan; s++) declared_shape(g, 1 + p->n_carried + s, &p->scan_decl[s]);
    return ONR_OK;
}

static void loop_destroy(void *params)
{
    loop_params *p = params;
    onr_plan_free(p->body);
    carry_free(&p->c);
    free(p->scan_decl);
    free(p->row_shape);
}

/* Another plan instance's Loop: an instance of the body's plan (its packed
 * weights shared), its own carried buffers. */
static int loop_clone(void *dst, const void *src, onr_err *err)
{
    loop_params *d = dst;
    const loop_params *s = src;
    d->graph = s->graph;
    d->n_decl = s->n_decl, d->n_carried = s->n_carried, d->n_scan = s->n_scan;
    int st = onr_plan_instance(s->body, &d->body, err);
    if (st) return st;
    d->scan_decl = calloc((size_t)d->n_scan + 1, sizeof *d->scan_decl);
    d->row_shape = calloc((size_t)d->n_scan + 1, sizeof *d->row_shape);
    if (carry_init(&d->c, d->n_carried) || !d->scan_decl || !d->row_shape)
        return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    if (d->n_scan) memcpy(d->scan_decl, s->scan_decl, (size_t)d->n_scan * sizeof *d->scan_decl);
    return ONR_OK;
}

static int loop_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    loop_params *p = ctx->params;
    const onr_tensor *m = ctx->in[0], *c = ctx->in[1];
    if (m && (m->numel != 1 || (m->dtype != ONR_INT64 && m->dtype != ONR_INT32)))
        return onr_seterr(ctx->err, ONR_E_MODEL, "M must be an int64 tensor of one element");
    if (c && (c->numel != 1 || c->dtype == ONR_STRING))
        return onr_seterr(ctx->err, ONR_E_MODEL, "cond must be a bool tensor of one element");
    for (int k = 0; k < p->n_carried; k++)
        if (!ctx->in[2 + k])
            return onr_seterr(ctx->err, ONR_E_MODEL, "loop-carried input %d is missing", k);
    return ONR_OK;
}

/* Append the body's scan output s (this iteration's value) as row `row` of
 * Loop output o; *shape holds the row shape seen first. */
static int loop_append(const onr_kctx *ctx, onr_plan *body, int bo, int o, int64_t row,
                       onr_tensor *shape)
{
    const onr_tensor *v = onr_plan_output(body, bo);
    onr_tensor *out = ctx->out[o];
    if (!out) return ONR_OK;
    if (v->dtype == ONR_UNDEFINED && !v->kind)
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "body output %d was not computed", bo);
    if (v->kind)
        return onr_seterr(ctx->err, ONR_E_MODEL, "scan output %d is not a tensor", o);
    if (row == 0) {
        *shape = *v;
        if (v->rank >= ONR_MAX_RANK)
            return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                              "scan output %d has rank %d: stacked it would pass %d", o - 0,
                              v->rank, ONR_MAX_RANK);
        if (out->dtype == ONR_STRING || v->dtype == ONR_STRING) {
            int64_t zero = 0;
            int st = onr_out_resize(ctx, o, v->dtype, 1, &zero);
            if (st) return st;
        }
        out->dtype = v->dtype;
        out->numel = 0;
    } else if (v->dtype != shape->dtype || v->rank != shape->rank ||
               memcmp(v->dims, shape->dims, sizeof(int64_t) * (size_t)v->rank) != 0) {
        char a[128], b[128];
        return onr_seterr(ctx->err, ONR_E_RUNTIME,
                          "scan output %d is %s %s at iteration %lld but was %s %s before", o,
                          onr_dtype_name(v->dtype), onr_fmt_dims(a, sizeof a, v->dims, v->rank),
                          (long long)row, onr_dtype_name(shape->dtype),
                          onr_fmt_dims(b, sizeof b, shape->dims, shape->rank));
    }
    size_t es = v->dtype == ONR_STRING ? sizeof(char *) : onr_dtype_size(v->dtype);
    size_t rowb = (size_t)v->numel * es;
    uint64_t need = (uint64_t)(row + 1) * rowb;
    if (rowb && need / rowb != (uint64_t)(row + 1))
        return onr_seterr(ctx->err, ONR_E_NOMEM, "scan output %d overflows", o);
    int st = onr_out_grow(ctx, o, (size_t)need, (size_t)row * rowb);
    if (st) return st;
    st = elem_copy((char *)out->data + (size_t)row * rowb, v->data, v->numel, v->dtype, ctx->err);
    out->numel = (row + 1) * v->numel; /* strings: what clear frees */
    return st;
}

static int loop_run(const onr_kctx *ctx)
{
    loop_params *p = ctx->params;
    onr_plan *body = p->body;
    int64_t max_iter = -1;
    int cond = 1, st;
    const int use_cond = ctx->in[1] != NULL;
    if (ctx->in[0]) {
        /* read exactly: exporters write INT64_MAX for "no limit", which a
         * double cannot hold */
        const onr_tensor *m = ctx->in[0];
        max_iter = m->dtype == ONR_INT64 ? *(const int64_t *)m->data : *(const int32_t *)m->data;
        if (max_iter < 0) max_iter = 0;
    }
    if (use_cond && (st = read_flag(ctx->in[1], "cond", &cond, ctx->err))) return st;
    bind_outer(body, ctx, p->n_decl);
    for (int k = 0; k < p->n_carried; k++) p->c.cur[k] = ctx->in[2 + k];
    int64_t zero_dims[1] = {0};
    onr_tensor_set_shape(&p->iter_t, ONR_INT64, 0, zero_dims, ctx->err);
    onr_tensor_set_shape(&p->cond_t, ONR_BOOL, 0, zero_dims, ctx->err);
    p->iter_t.data = &p->iter_val;
    p->cond_t.data = &p->cond_val;
    onr_tensor *shapes = p->row_shape;
    int64_t i = 0;
    st = ONR_OK;
    while ((max_iter < 0 || i < max_iter) && (!use_cond || cond)) {
        if (onr_cancelled(ctx)) {
            st = onr_seterr(ctx->err, ONR_E_RUNTIME, "the run was cancelled (Loop iteration %lld)",
                            (long long)i);
            break;
        }
        p->iter_val = i;
        p->cond_val = (uint8_t)cond;
        onr_plan_bind_input(body, 0, &p->iter_t);
        onr_plan_bind_input(body, 1, &p->cond_t);
        for (int k = 0; k < p->n_carried; k++) onr_plan_bind_input(body, 2 + k, p->c.cur[k]);
        if ((st = run_sub(body, ctx, "body", i))) break;
        if (use_cond &&
            (st = read_flag(onr_plan_output(body, 0), "the body's cond output", &cond, ctx->err)))
            break;
        /* scan outputs first: carry_advance may take the body's buffers */
        for (int s = 0; s < p->n_scan && !st; s++)
            st = loop_append(ctx, body, 1 + p->n_carried + s, p->n_carried + s, i, &shapes[s]);
        if (!st) st = carry_advance(&p->c, body, 1, ctx->err);
        if (st) break;
        i++;
    }
    for (int s = 0; s < p->n_scan && !st; s++) {
        int o = p->n_carried + s;
        onr_tensor *out = ctx->out[o];
        if (!out) continue;
        int64_t dims[ONR_MAX_RANK];
        if (i == 0) { /* no iteration: [0, declared dims] */
            const decl_shape *d = &p->scan_decl[s];
            dims[0] = 0;
            for (int k = 0; k < d->rank; k++) dims[1 + k] = d->dims[k];
            st = onr_out_resize(ctx, o, d->dtype, 1 + d->rank, dims);
            continue;
        }
        dims[0] = i;
        memcpy(dims + 1, shapes[s].dims, sizeof(int64_t) * (size_t)shapes[s].rank);
        int64_t numel = out->numel;
        st = onr_tensor_set_shape(out, shapes[s].dtype, 1 + shapes[s].rank, dims, ctx->err);
        if (st) out->numel = numel;
    }
    for (int k = 0; k < p->n_carried && !st; k++)
        st = carry_emit(&p->c, k, ctx->out[k], ctx->err);
    return st;
}

const onr_op_impl onr_impl_Loop = {.create = loop_create, .reshape = loop_reshape,
    .run = loop_run, .destroy = loop_destroy, .clone = loop_clone, .params_size = sizeof(loop_params),
    .types = ONR_TYPES_ALL, .flags = ONR_OP_DYNAMIC_OUT | ONR_OP_NOFOLD};

/* ---- Scan ------------------------------------------------------------------------ */

/* Scan-8 takes an optional sequence_lens and a batch axis 0 on every input
 * and output; Scan-9+ has no batch and per-input/output scan axes. Here a
 * Scan-9 is a batch of one without the batch axis. */
typedef struct scan_params {
    onr_plan *body;
    const onr_graph *graph;
    int batched; /* opset 8 */
    int n_decl, n_state, n_scan_in, n_scan_out;
    int64_t *in_axis, *in_dir, *out_axis, *out_dir; /* as given (axes may be negative) */
    carry c;
    onr_tensor *slice;  /* per scan input: this iteration's slice (a view or a gathered copy) */
    onr_tensor *state0; /* per state (batched): the batch's initial state, a view */
    onr_tensor *seen;   /* per scan output: the first iteration's shape */
    decl_shape *out_decl;
} scan_params;

static int scan_ints(onr_create_ctx *c, const char *name, int n, int64_t def, int64_t **out)
{
    size_t cnt = 0;
    const int64_t *v = onr_attr_ints(c->node, name, &cnt);
    *out = malloc(((size_t)n + 1) * sizeof **out);
    if (!*out) return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
    if (v && cnt != (size_t)n)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' has %zu values, expected %d", name,
                          cnt, n);
    for (int k = 0; k < n; k++) {
        (*out)[k] = v ? v[k] : def;
        if (strstr(name, "direction") && (*out)[k] != 0 && (*out)[k] != 1)
            return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s'[%d] is %lld, not 0 or 1",
                              name, k, (long long)(*out)[k]);
    }
    return ONR_OK;
}

static int scan_create(onr_create_ctx *c, void *params)
{
    scan_params *p = params;
    const char **names;
    int n_outer;
    int st = onr_node_outer_names(c->node, &names, &n_outer, c->err);
    if (st) return st;
    free(names);
    p->batched = c->opset < 9;
    p->n_decl = c->n_in - n_outer;
    const onr_attr *ns = onr_node_attr(c->node, "num_scan_inputs");
    if (!ns || ns->type != ONR_ATTR_INT)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'num_scan_inputs' (int) is required");
    int n_vals = p->n_decl - p->batched; /* Scan-8: sequence_lens first */
    if (ns->i < 1 || ns->i > n_vals)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attribute 'num_scan_inputs' is %lld, the node has %d state and scan "
                          "inputs",
                          (long long)ns->i, n_vals);
    p->n_scan_in = (int)ns->i;
    p->n_state = n_vals - p->n_scan_in;
    if ((st = plan_graph_attr(c, "body", p->n_decl, &p->graph, &p->body))) return st;
    const onr_graph *g = p->graph;
    if (g->n_inputs != n_vals)
        return onr_seterr(c->err, ONR_E_MODEL, "body has %d inputs, the node %d state and scan inputs",
                          g->n_inputs, n_vals);
    p->n_scan_out = g->n_outputs - p->n_state;
    if (p->n_scan_out < 0 || c->n_out != g->n_outputs)
        return onr_seterr(c->err, ONR_E_MODEL, "body has %d outputs, the node %d", g->n_outputs,
                          c->n_out);
    if ((st = scan_ints(c, p->batched ? "directions" : "scan_input_directions", p->n_scan_in, 0,
                        &p->in_dir)) ||
        (st = scan_ints(c, "scan_input_axes", p->n_scan_in, 0, &p->in_axis)) ||
        (st = scan_ints(c, "scan_output_directions", p->n_scan_out, 0, &p->out_dir)) ||
        (st = scan_ints(c, "scan_output_axes", p->n_scan_out, 0, &p->out_axis)))
        return st;
    if (p->batched)
        for (int k = 0; k < p->n_scan_in; k++) p->in_axis[k] = 0;
    if (p->batched)
        for (int k = 0; k < p->n_scan_out; k++) p->out_axis[k] = 0, p->out_dir[k] = 0;
    if (carry_init(&p->c, p->n_state)) return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
    p->slice = calloc((size_t)p->n_scan_in + 1, sizeof *p->slice);
    p->state0 = calloc((size_t)p->n_state + 1, sizeof *p->state0);
    p->seen = calloc((size_t)p->n_scan_out + 1, sizeof *p->seen);
    p->out_decl = calloc((size_t)p->n_scan_out + 1, sizeof *p->out_decl);
    if (!p->slice || !p->state0 || !p->seen || !p->out_decl)
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
    for (int s = 0; s < p->n_scan_out; s++) declared_shape(g, p->n_state + s, &p->out_decl[s]);
    return ONR_OK;
}

static void scan_destroy(void *params)
{
    scan_params *p = params;
    onr_plan_free(p->body);
    carry_free(&p->c);
    if (p->slice)
        for (int k = 0; k < p->n_scan_in; k++) onr_tensor_clear(&p->slice[k]);
    free(p->slice), free(p->state0), free(p->seen), free(p->out_decl);
    free(p->in_axis), free(p->in_dir), free(p->out_axis), free(p->out_dir);
}

static int64_t *ints_dup(const int64_t *v, int n)
{
    int64_t *d = malloc(((size_t)n + 1) * sizeof *d);
    if (d && n) memcpy(d, v, (size_t)n * sizeof *d);
    return d;
}

/* Another plan instance's Scan: an instance of the body's plan, its own
 * state buffers and slices. */
static int scan_clone(void *dst, const void *src, onr_err *err)
{
    scan_params *d = dst;
    const scan_params *s = src;
    d->graph = s->graph;
    d->batched = s->batched;
    d->n_decl = s->n_decl, d->n_state = s->n_state;
    d->n_scan_in = s->n_scan_in, d->n_scan_out = s->n_scan_out;
    int st = onr_plan_instance(s->body, &d->body, err);
    if (st) return st;
    d->in_axis = ints_dup(s->in_axis, d->n_scan_in);
    d->in_dir = ints_dup(s->in_dir, d->n_scan_in);
    d->out_axis = ints_dup(s->out_axis, d->n_scan_out);
    d->out_dir = ints_dup(s->out_dir, d->n_scan_out);
    d->slice = calloc((size_t)d->n_scan_in + 1, sizeof *d->slice);
    d->state0 = calloc((size_t)d->n_state + 1, sizeof *d->state0);
    d->seen = calloc((size_t)d->n_scan_out + 1, sizeof *d->seen);
    d->out_decl = calloc((size_t)d->n_scan_out + 1, sizeof *d->out_decl);
    if (carry_init(&d->c, d->n_state) || !d->in_axis || !d->in_dir || !d->out_axis ||
        !d->out_dir || !d->slice || !d->state0 || !d->seen || !d->out_decl)
        return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    if (d->n_scan_out)
        memcpy(d->out_decl, s->out_decl, (size_t)d->n_scan_out * sizeof *d->out_decl);
    return ONR_OK;
}

/* Input k of the state/scan values (after Scan-8's sequence_lens). */
static const onr_tensor *scan_in(const onr_kctx *ctx, const scan_params *p, int k)
{
    return ctx->in[p->batched + k];
}

static int scan_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    scan_params *p = ctx->params;
    int64_t len = -1, batch = -1;
    for (int k = 0; k < p->n_state + p->n_scan_in; k++) {
        const onr_tensor *t = scan_in(ctx, p, k);
        if (!t) return onr_seterr(ctx->err, ONR_E_MODEL, "input %d is missing", p->batched + k);
        if (p->batched) {
            if (t->rank < 1 + (k >= p->n_state))
                return onr_seterr(ctx->err, ONR_E_MODEL, "input %d has no batch axis",
                                  p->batched + k);
            if (batch >= 0 && t->dims[0] != batch)
                return onr_seterr(ctx->err, ONR_E_MODEL,
                                  "input %d has batch %lld, another input %lld", p->batched + k,
                                  (long long)t->dims[0], (long long)batch);
            batch = t->dims[0];
        }
        if (k < p->n_state) continue;
        int j = k - p->n_state, r = t->rank - p->batched, ax;
        int st = onr_norm_axis(ctx->err, p->in_axis[j], r, &ax);
        if (st) {
            onr_err_prefix(ctx->err, "scan_input_axes[%d]: ", j);
            return st;
        }
        int64_t l = t->dims[p->batched + ax];
        if (len >= 0 && l != len)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "scan input %d has %lld steps along its scan axis, scan input 0 "
                              "has %lld",
                              j, (long long)l, (long long)len);
        len = l;
    }
    const onr_tensor *sl = p->batched ? ctx->in[0] : NULL;
    if (sl && (sl->dtype != ONR_INT64 || sl->rank != 1 || sl->dims[0] != batch))
        return onr_seterr(ctx->err, ONR_E_MODEL, "sequence_lens must be int64 [batch = %lld]",
                          (long long)batch);
    return ONR_OK;
}

/* Slice `pos` of tensor t (dims after the batch offset `base` elements:
 * rank r, dims d) along axis ax into dst: a view when contiguous, else a
 * gathered copy in dst's own buffer. */
static int take_slice(onr_tensor *dst, const onr_tensor *t, int64_t base, int r,
                      const int64_t *d, int ax, int64_t pos, onr_err *err)
{
    int64_t sd[ONR_MAX_RANK];
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < ax; k++) outer *= d[k], sd[k] = d[k];
    for (int k = ax + 1; k < r; k++) inner *= d[k], sd[k - 1] = d[k];
    size_t es = t->dtype == ONR_STRING ? sizeof(char *) : onr_dtype_size(t->dtype);
    const char *src = (const char *)t->data + (size_t)base * es;
    if (outer == 1) { /* contiguous: a view */
        if (dst->owns) onr_tensor_clear(dst);
        int st = onr_tensor_set_shape(dst, t->dtype, r - 1, sd, err);
        dst->data = (void *)(src + (size_t)(pos * inner) * es);
        dst->owns = 0;
        dst->cap = 0;
        return st;
    }
    if (!dst->owns) dst->data = NULL, dst->cap = 0;
    if (dst->dtype == ONR_STRING || t->dtype == ONR_STRING) onr_tensor_clear(dst);
    int st = onr_tensor_set_shape(dst, t->dtype, r - 1, sd, err);
    if (!st) st = onr_tensor_alloc(dst, err);
    for (int64_t o = 0; o < outer && !st; o++)
        st = elem_copy((char *)dst->data + (size_t)(o * inner) * es,
                       src + (size_t)((o * d[ax] + pos) * inner) * es, inner, t->dtype, err);
    return st;
}

/* Write scan output value v as slice `pos` of out (len slices along axis ax,
 * after `base` elements); the first call of a run sizes out. */
static int put_slice(const onr_kctx *ctx, scan_params *p, int s, const onr_tensor *v,
                     int64_t batch, int64_t b, int64_t len, int64_t pos)
{
    int o = p->n_state + s;
    onr_tensor *out = ctx->out[o];
    if (!out) return ONR_OK;
    onr_tensor *seen = &p->seen[s];
    int r = v->rank, ax;
    int st = onr_norm_axis(ctx->err, p->out_axis[s], r + 1, &ax);
    if (st) {
        onr_err_prefix(ctx->err, "scan_output_axes[%d]: ", s);
        return st;
    }
    if (seen->dtype == ONR_UNDEFINED) { /* the run's first value: size the output */
        if (r + 1 + p->batched > ONR_MAX_RANK)
            return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "scan output %d would pass rank %d", s,
                              ONR_MAX_RANK);
        *seen = *v;
        int64_t dims[ONR_MAX_RANK];
        int n = 0;
        if (p->batched) dims[n++] = batch;
        for (int k = 0; k <= r; k++) dims[n++] = k == ax ? len : v->dims[k < ax ? k : k - 1];
        if ((st = onr_out_resize(ctx, o, v->dtype, n, dims))) return st;
        if (v->dtype != ONR_STRING && out->numel) /* rows a short sequence leaves are zero */
            memset(out->data, 0, onr_tensor_nbytes(out));
    } else if (v->dtype != seen->dtype || v->rank != seen->rank ||
               memcmp(v->dims, seen->dims, sizeof(int64_t) * (size_t)r) != 0) {
        char a[128], c[128];
        return onr_seterr(ctx->err, ONR_E_RUNTIME,
                          "scan output %d is %s %s at step %lld but was %s %s before", s,
                          onr_dtype_name(v->dtype), onr_fmt_dims(a, sizeof a, v->dims, r),
                          (long long)pos, onr_dtype_name(seen->dtype),
                          onr_fmt_dims(c, sizeof c, seen->dims, seen->rank));
    }
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < ax; k++) outer *= v->dims[k];
    for (int k = ax; k < r; k++) inner *= v->dims[k];
    size_t es = v->dtype == ONR_STRING ? sizeof(char *) : onr_dtype_size(v->dtype);
    char *dst = (char *)out->data + (size_t)(b * len * v->numel) * es;
    for (int64_t q = 0; q < outer && !st; q++)
        st = elem_copy(dst + (size_t)((q * len + pos) * inner) * es,
                       (const char *)v->data + (size_t)(q * inner) * es, inner, v->dtype,
                       ctx->err);
    return st;
}

static int scan_run(const onr_kctx *ctx)
{
    scan_params *p = ctx->params;
    onr_plan *body = p->body;
    int st = ONR_OK;
    bind_outer(body, ctx, p->n_decl);
    for (int s = 0; s < p->n_scan_out; s++) p->seen[s].dtype = ONR_UNDEFINED;
    int64_t batch = 1, len = 0;
    if (p->batched) batch = scan_in(ctx, p, 0)->dims[0];
    int ax0 = 0;
    if (p->n_scan_in) {
        const onr_tensor *t = scan_in(ctx, p, p->n_state);
        onr_norm_axis(ctx->err, p->in_axis[0], t->rank - p->batched, &ax0);
        len = t->dims[p->batched + ax0];
    }
    const int64_t *seq_lens = p->batched && ctx->in[0] ? ctx->in[0]->data : NULL;
    for (int64_t b = 0; b < batch && !st; b++) {
        int64_t n_steps = len;
        if (seq_lens) {
            if (seq_lens[b] < 0 || seq_lens[b] > len)
                return onr_seterr(ctx->err, ONR_E_RUNTIME,
                                  "sequence_lens[%lld] is %lld, outside [0, %lld]", (long long)b,
                                  (long long)seq_lens[b], (long long)len);
            n_steps = seq_lens[b];
        }
        for (int k = 0; k < p->n_state; k++) {
            const onr_tensor *t = scan_in(ctx, p, k);
            if (!p->batched) {
                p->c.cur[k] = t;
                continue;
            }
            onr_tensor *s0 = &p->state0[k];
            st = onr_tensor_set_shape(s0, t->dtype, t->rank - 1, t->dims + 1, ctx->err);
            size_t es = t->dtype == ONR_STRING ? sizeof(char *) : onr_dtype_size(t->dtype);
            s0->data = (char *)t->data + (size_t)(b * s0->numel) * es;
            p->c.cur[k] = s0;
        }
        for (int64_t step = 0; step < n_steps && !st; step++) {
            if (onr_cancelled(ctx)) return onr_seterr(ctx->err, ONR_E_RUNTIME, "the run was cancelled");
            for (int j = 0; j < p->n_scan_in && !st; j++) {
                const onr_tensor *t = scan_in(ctx, p, p->n_state + j);
                int r = t->rank - p->batched, ax;
                onr_norm_axis(ctx->err, p->in_axis[j], r, &ax);
                int64_t pos = p->in_dir[j] ? n_steps - 1 - step : step;
                int64_t per_b = 1;
                for (int k = 0; k < r; k++) per_b *= t->dims[p->batched + k];
                st = take_slice(&p->slice[j], t, b * per_b, r, t->dims + p->batched, ax, pos,
                                ctx->err);
            }
            for (int k = 0; k < p->n_state; k++) onr_plan_bind_input(body, k, p->c.cur[k]);
            for (int j = 0; j < p->n_scan_in; j++)
                onr_plan_bind_input(body, p->n_state + j, &p->slice[j]);
            if (!st) st = run_sub(body, ctx, "body", step);
            for (int s = 0; s < p->n_scan_out && !st; s++) {
                int64_t pos = p->out_dir[s] ? n_steps - 1 - step : step;
                const onr_tensor *v = onr_plan_output(body, p->n_state + s);
                if (v->dtype == ONR_UNDEFINED)
                    st = onr_seterr(ctx->err, ONR_E_RUNTIME, "body output %d was not computed",
                                    p->n_state + s);
                else st = put_slice(ctx, p, s, v, batch, b, len, pos);
            }
            if (!st) st = carry_advance(&p->c, body, 0, ctx->err);
        }
        /* final state: Scan-9+ hands it over; Scan-8 stacks the batches */
        for (int k = 0; k < p->n_state && !st; k++) {
            onr_tensor *out = ctx->out[k];
            if (!out) continue;
            if (!p->batched) {
                st = carry_emit(&p->c, k, out, ctx->err);
                continue;
            }
            const onr_tensor *v = p->c.cur[k];
            if (b == 0) {
                int64_t dims[ONR_MAX_RANK];
                dims[0] = batch;
                memcpy(dims + 1, v->dims, sizeof(int64_t) * (size_t)v->rank);
                if (v->rank + 1 > ONR_MAX_RANK)
                    st = onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "state %d passes rank %d", k,
                                    ONR_MAX_RANK);
                if (!st) st = onr_out_resize(ctx, k, v->dtype, v->rank + 1, dims);
            } else if (v->numel * batch != out->numel || v->dtype != out->dtype) {
                st = onr_seterr(ctx->err, ONR_E_RUNTIME,
                                "state %d changes shape between batch entries", k);
            }
            size_t es = v->dtype == ONR_STRING ? sizeof(char *) : onr_dtype_size(v->dtype);
            if (!st)
                st = elem_copy((char *)out->data + (size_t)(b * v->numel) * es, v->data, v->numel,
                               v->dtype, ctx->err);
        }
    }
    if (st) return st;
    /* scan outputs no step wrote: [(batch,) 0 steps, declared dims] */
    for (int s = 0; s < p->n_scan_out && !st; s++) {
        if (p->seen[s].dtype != ONR_UNDEFINED) continue;
        const decl_shape *d = &p->out_decl[s];
        int64_t dims[ONR_MAX_RANK];
        int n = 0;
        if (p->batched) dims[n++] = batch;
        int ax = 0;
        onr_norm_axis(ctx->err, p->out_axis[s], d->rank + 1, &ax);
        for (int k = 0; k <= d->rank && n < ONR_MAX_RANK; k++)
            dims[n++] = k == ax ? 0 : d->dims[k < ax ? k : k - 1];
        st = onr_out_resize(ctx, p->n_state + s, d->dtype, n, dims);
    }
    if (batch == 0)
        for (int k = 0; k < p->n_state && !st; k++)
            if (ctx->out[k]) st = tensor_copy(ctx->out[k], scan_in(ctx, p, k), ctx->err);
    return st;
}

const onr_op_impl onr_impl_Scan = {.create = scan_create, .reshape = scan_reshape,
    .run = scan_run, .destroy = scan_destroy, .clone = scan_clone, .params_size = sizeof(scan_params),
    .types = ONR_TYPES_ALL, .flags = ONR_OP_DYNAMIC_OUT | ONR_OP_NOFOLD};

/* ---- SequenceMap (17+) ----------------------------------------------------------------
 * body(input_sequence[i], additional inputs (element i of a sequence, a
 * tensor as it is)...) for every i; output k is the sequence of the body's
 * output k. */

typedef struct seqmap_params {
    onr_plan *body;
    const onr_graph *graph;
    int n_decl;
} seqmap_params;

static int seqmap_create(onr_create_ctx *c, void *params)
{
    seqmap_params *p = params;
    const char **names;
    int n_outer;
    int st = onr_node_outer_names(c->node, &names, &n_outer, c->err);
    if (st) return st;
    free(names);
    p->n_decl = c->n_in - n_outer;
    if (p->n_decl < 1) return onr_seterr(c->err, ONR_E_MODEL, "SequenceMap needs input_sequence");
    if ((st = plan_graph_attr(c, "body", p->n_decl, &p->graph, &p->body))) return st;
    if (p->graph->n_inputs != p->n_decl || p->graph->n_outputs != c->n_out)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "body has %d inputs and %d outputs, the node %d and %d",
                          p->graph->n_inputs, p->graph->n_outputs, p->n_decl, c->n_out);
    return ONR_OK;
}

static void seqmap_destroy(void *params)
{
    seqmap_params *p = params;
    onr_plan_free(p->body);
}

static int seqmap_clone(void *dst, const void *src, onr_err *err)
{
    seqmap_params *d = dst;
    const seqmap_params *s = src;
    d->graph = s->graph;
    d->n_decl = s->n_decl;
    return onr_plan_instance(s->body, &d->body, err);
}

static int seqmap_reshape(onr_kctx *ctx, size_t *scratch)
{
    ONR_UNUSED(scratch);
    seqmap_params *p = ctx->params;
    const onr_tensor *s = ctx->in[0];
    if (!s || s->kind != ONR_VALUE_SEQUENCE)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input 0 is not a sequence");
    for (int j = 1; j < p->n_decl; j++) {
        const onr_tensor *a = ctx->in[j];
        if (!a) return onr_seterr(ctx->err, ONR_E_MODEL, "input %d is missing", j);
        if (a->kind == ONR_VALUE_SEQUENCE && a->numel != s->numel)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "input %d is a sequence of %lld, input_sequence has %lld", j,
                              (long long)a->numel, (long long)s->numel);
        if (a->kind == ONR_VALUE_OPTIONAL)
            return onr_seterr(ctx->err, ONR_E_MODEL, "input %d is an optional", j);
    }
    return ONR_OK;
}

static int seqmap_run(const onr_kctx *ctx)
{
    seqmap_params *p = ctx->params;
    onr_plan *body = p->body;
    const onr_tensor *s = ctx->in[0];
    int64_t n = s->numel;
    int st = ONR_OK;
    for (int k = 0; k < ctx->n_out && !st; k++)
        if (ctx->out[k])
            st = onr_value_container(ctx->out[k], ONR_VALUE_SEQUENCE, ONR_UNDEFINED, n, ctx->err);
    if (st) return st;
    bind_outer(body, ctx, p->n_decl);
    for (int64_t i = 0; i < n && !st; i++) {
        if (onr_cancelled(ctx)) return onr_seterr(ctx->err, ONR_E_RUNTIME, "the run was cancelled");
        for (int j = 0; j < p->n_decl; j++) {
            const onr_tensor *a = ctx->in[j];
            onr_plan_bind_input(body, j, a->kind == ONR_VALUE_SEQUENCE ? onr_value_item(a, i) : a);
        }
        if ((st = run_sub(body, ctx, "body", i))) break;
        for (int k = 0; k < ctx->n_out && !st; k++) {
            onr_tensor *y = ctx->out[k];
            if (!y) continue;
            onr_tensor *e = calloc(1, sizeof *e);
            if (!e) return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory");
            ((onr_tensor **)y->data)[i] = e;
            if ((st = take_output(e, body, k, ctx->err))) break;
            if (e->kind)
                st = onr_seterr(ctx->err, ONR_E_MODEL, "body output %d is not a tensor", k);
            else if (i == 0)
                y->dtype = e->dtype;
            else if (e->dtype != y->dtype)
                st = onr_seterr(ctx->err, ONR_E_RUNTIME,
                                "body output %d is %s at iteration %lld, %s before", k,
                                onr_dtype_name(e->dtype), (long long)i, onr_dtype_name(y->dtype));
        }
    }
    return st;
}

const onr_op_impl onr_impl_SequenceMap = {.create = seqmap_create, .reshape = seqmap_reshape,
    .run = seqmap_run, .destroy = seqmap_destroy, .clone = seqmap_clone, .params_size = sizeof(seqmap_params),
    .types = ONR_TYPES_ALL, .flags = ONR_OP_DYNAMIC_OUT | ONR_OP_NOFOLD};
