/*
 * plan.c - from IR to an executable plan: a working copy of the graph,
 * Gradient nodes expanded, op resolution, the pass pipeline (passes.h),
 * one step per remaining node (created once: attributes read, weights
 * packed), static reshape, weight release and the memory plan
 * (memplan.h). Running it is src/exec's job.
 */
#include "plan/plan.h"

#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ir/budget.h"
#include "plan/passes.h"

/* Unknown (domain, op type) pairs seen so far, so each is listed once: a
 * hash set of node indices (a scan of the earlier nodes was quadratic in a
 * model of many unknown ops). */
typedef struct op_seen {
    int *slots; /* node index + 1 */
    size_t cap;
} op_seen;

static uint64_t op_hash(const onr_node *n)
{
    return onr_hash_str(n->op_type) ^ onr_hash_str(n->domain) * 0x9E3779B97F4A7C15ull;
}

/* 1 when a node of n's (domain, op) was added before; else adds n, returns 0. */
static int op_seen_add(op_seen *s, const onr_graph *g, int idx)
{
    const onr_node *n = &g->nodes[idx];
    size_t i = op_hash(n) & (s->cap - 1);
    for (; s->slots[i]; i = (i + 1) & (s->cap - 1)) {
        const onr_node *o = &g->nodes[s->slots[i] - 1];
        if (strcmp(o->op_type, n->op_type) == 0 && strcmp(o->domain, n->domain) == 0) return 1;
    }
    s->slots[i] = idx + 1;
    return 0;
}

static int resolve_ops(const onr_model *m, onr_graph *g, onr_err *err)
{
    char list[800] = "";
    size_t used = 0;
    int missing = 0;
    op_seen seen = {NULL, 16};
    while (seen.cap < 2 * (size_t)g->n_nodes) seen.cap *= 2;
    for (int i = 0; i < g->n_nodes; i++) {
        onr_node *n = &g->nodes[i];
        /* set by the loader (nodes inlined from a function keep its imports) */
        if (!n->opset && m) n->opset = onr_model_opset(m, n->domain);
        n->op = n->opset ? onr_op_find(n->domain, n->op_type, n->opset) : NULL;
        if (n->op) continue;
        /* list each (domain, op) once */
        if (!seen.slots && !(seen.slots = calloc(seen.cap, sizeof *seen.slots)))
            return onr_seterr(err, ONR_E_NOMEM, "out of memory");
        if (op_seen_add(&seen, g, i)) continue;
        missing++;
        if (used < sizeof list - 1) {
            char one[300];
            int newest = onr_opset_newest(n->domain);
            if (n->opset && newest > 0 && n->opset > newest)
                snprintf(one, sizeof one,
                         "%s%s (domain '%s', opset %lld, node '%s': the newest opset the ONNX "
                         "specification defines for the domain is %d)",
                         missing > 1 ? "; " : "", n->op_type, *n->domain ? n->domain : "ai.onnx",
                         (long long)n->opset, n->name, newest);
            else if (n->opset)
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
    free(seen.slots);
    if (missing)
        return onr_seterr(err, ONR_E_UNSUPPORTED, "unsupported operator%s: %s%s",
                          missing > 1 ? "s" : "", list,
                          used >= sizeof list - 1 ? " ... (more not listed)" : "");
    return ONR_OK;
}

/* Runtime tensors before any run: constants as views of their data, graph
 * inputs with static shapes as shapes. known[v]: v's shape is known. */
void onr_plan_init_runtime(onr_plan *p, uint8_t *known)
{
    const onr_graph *g = p->graph;
    for (int v = 0; v < g->n_values; v++) {
        const onr_tensor *k = g->values[v].konst;
        if (!k) continue;
        p->rt[v] = *k;
        p->rt[v].owns = 0;
        p->rt[v].cap = 0;
        p->rt[v].name = NULL;
        known[v] = 1;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        const onr_value *val = &g->values[v];
        int stat = val->dtype != ONR_UNDEFINED && val->rank >= 0 && !val->kind;
        for (int d = 0; d < val->rank && stat; d++) stat = val->dims[d] >= 0;
        onr_err tmp = {0};
        if (stat && !onr_tensor_set_shape(&p->rt[v], val->dtype, val->rank, val->dims, &tmp))
            known[v] = 1;
    }
}

/* A tensor value whose inferred shape is all known. */
static int value_static(const onr_value *v)
{
    int known = v->rank >= 0 && v->rank <= ONR_MAX_RANK && !v->kind;
    for (int d = 0; known && d < v->rank; d++) known = v->dims[d] >= 0;
    return known;
}

static int add_step(onr_plan *p, const onr_node *n, onr_err *err)
{
    onr_step *s = &p->steps[p->n_steps];
    int st = onr_step_init(s, n, n->op, n->n_in, n->n_out, err);
    if (st) return st;
    p->n_steps++;
    s->no_fuse = p->no_fuse;
    s->budget = p->budget;
    for (int k = 0; k < n->n_in; k++) {
        int v = n->inputs[k];
        if (v < 0) continue;
        s->in[k] = &p->rt[v];
        s->in_const[k] = p->graph->values[v].konst != NULL;
    }
    for (int o = 0; o < n->n_out; o++)
        if (n->outputs[o] >= 0) s->out[o] = &p->rt[n->outputs[o]];
    if (n->n_out > 0 && n->outputs[0] >= 0) { /* create's hint: the inferred static shape */
        const onr_value *ov = &p->graph->values[n->outputs[0]];
        if (value_static(ov)) {
            s->out0_rank = ov->rank;
            memcpy(s->out0_dims, ov->dims, sizeof(int64_t) * (size_t)ov->rank);
        }
    }
    if (n->n_in > 0 && n->inputs[0] >= 0) { /* and input 0's */
        const onr_value *iv = &p->graph->values[n->inputs[0]];
        if (value_static(iv) && iv->dtype != ONR_UNDEFINED) {
            s->in0_rank = iv->rank;
            s->in0_dtype = iv->dtype;
            memcpy(s->in0_dims, iv->dims, sizeof(int64_t) * (size_t)iv->rank);
        }
    }
    s->fixed_shapes = p->fixed_shapes && s->out0_rank >= 0 && s->in0_rank >= 0;
    if ((st = onr_step_create(s, p->nthreads, err))) onr_err_node(err, n);
    return st;
}

static atomic_size_t g_spares_reused, g_kept_in_mapping;
size_t onr_plan_kept_in_mapping(void)
{
    return atomic_load_explicit(&g_kept_in_mapping, memory_order_relaxed);
}
size_t onr_plan_spares_reused(void)
{
    return atomic_load_explicit(&g_spares_reused, memory_order_relaxed);
}

#define RELEASE_SPARES 4
#define SPARE_MIN ((size_t)1 << 20)

/* Weight release: a constant that every reader packed at create (and that
 * is no graph output) is released as soon as its last reader is created,
 * so the originals and the packed forms are never all in memory at once. */
typedef struct release_ctx {
    int *total;  /* per value: input slots reading it (graph outputs: never released) */
    int *left;   /* per value: of those, slots whose step is not created yet */
    int *packed; /* per value: slots whose create consumed it */
    /* buffers of released weights, reused by the next lazy weights copied
     * (ir.h): memory the process touches for the first time costs the most
     * at load (the kernel zeroes it, a hypervisor may back it), and the
     * copies of weights that are packed live one create each */
    struct spare { void *p; size_t cap; } spare[RELEASE_SPARES];
    int lazy_left; /* lazy weights not copied yet: no spare is kept once none is */
} release_ctx;

static void spares_free(release_ctx *r)
{
    for (int i = 0; i < RELEASE_SPARES; i++) free(r->spare[i].p);
    memset(r->spare, 0, sizeof r->spare);
}

static void release_free(release_ctx *r)
{
    free(r->total), free(r->left), free(r->packed);
    spares_free(r);
}

/* Keep t's buffer as a spare (the largest RELEASE_SPARES kept). */
static void spare_keep(release_ctx *r, onr_tensor *t)
{
    if (r->lazy_left <= 0 || !t->owns || !t->data || t->kind || t->dtype == ONR_STRING ||
        t->cap < SPARE_MIN || (uintptr_t)t->data % 64)
        return;
    int j = 0;
    for (int i = 1; i < RELEASE_SPARES; i++)
        if (r->spare[i].cap < r->spare[j].cap) j = i;
    if (r->spare[j].cap >= t->cap) return; /* released with the tensor */
    free(r->spare[j].p);
    r->spare[j].p = t->data, r->spare[j].cap = t->cap;
    t->data = NULL, t->owns = 0, t->cap = 0;
}

/* Constant v's data in memory (a lazy weight copied now, into a spare
 * buffer at most 4 times its size when there is one), and its runtime view
 * pointing at it. */
static int materialize(onr_plan *p, release_ctx *r, int v, onr_err *err)
{
    onr_tensor *t = p->graph->values[v].konst;
    if (!t || !t->lazy) return ONR_OK;
    size_t need = ((size_t)onr_tensor_nbytes(t) + 63) & ~(size_t)63;
    int best = -1;
    for (int i = 0; r && i < RELEASE_SPARES; i++)
        if (r->spare[i].cap >= need && r->spare[i].cap / 4 <= need &&
            (best < 0 || r->spare[i].cap < r->spare[best].cap))
            best = i;
    if (best >= 0) { /* onr_tensor_alloc keeps an owned buffer that is big enough */
        t->data = r->spare[best].p, t->cap = r->spare[best].cap, t->owns = 1;
        r->spare[best].p = NULL, r->spare[best].cap = 0;
        atomic_fetch_add_explicit(&g_spares_reused, 1, memory_order_relaxed);
    }
    int st = onr_tensor_materialize(t, err);
    if (st) {
        onr_err_prefix(err, "weight '%s': ", p->graph->values[v].name);
        return st;
    }
    p->rt[v].data = t->data;
    p->rt[v].lazy = NULL;
    if (r && --r->lazy_left <= 0) spares_free(r); /* nothing left to reuse them */
    return ONR_OK;
}

/* Constant v is a float32 weight still lazy in the mapping. */
static int lazy_f32(const onr_plan *p, int v)
{
    const onr_tensor *t = p->graph->values[v].konst;
    return t && t->lazy && t->dtype == ONR_FLOAT;
}

static int release_init(onr_plan *p, release_ctx *r)
{
    const onr_graph *g = p->graph;
    size_t n = (size_t)g->n_values + 1;
    r->total = calloc(n, sizeof *r->total);
    r->left = calloc(n, sizeof *r->left);
    r->packed = calloc(n, sizeof *r->packed);
    if (!r->total || !r->left || !r->packed) return -1;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].inputs[k] >= 0) r->total[g->nodes[i].inputs[k]]++;
    memcpy(r->left, r->total, n * sizeof *r->left);
    for (int v = 0; v < g->n_values; v++) r->lazy_left += g->values[v].konst && g->values[v].konst->lazy;
    for (int i = 0; i < g->n_outputs; i++) r->total[g->outputs[i]] = -1;
    return 0;
}

/* Drop constant v's data (it stays described: dtype and shape). */
static void release_value(onr_plan *p, int v)
{
    onr_tensor *t = p->graph->values[v].konst;
    if (t && t->lazy) { /* never copied */
        onr_model_release_data(p->model, t);
        p->rt[v].lazy = NULL;
        return;
    }
    if (!t || !t->data || t->dtype == ONR_STRING) return;
    if (p->edit->val_owned[v] & ONR_OWN_KONST) { /* folded or made by a fusion */
        if (t->owns) free(t->data);
        t->data = NULL;
        t->owns = 0;
        t->cap = 0;
    } else {
        onr_model_release_data(p->model, t);
    }
    p->rt[v].data = NULL;
}

static void release_after_create(onr_plan *p, release_ctx *r, const onr_step *s)
{
    for (int k = 0; k < s->n_in; k++) {
        if (!s->in[k]) continue;
        int v = (int)(s->in[k] - p->rt);
        if (k < 32 && (s->consumed >> k & 1u)) r->packed[v]++;
        if (--r->left[v] > 0 || r->packed[v] != r->total[v]) continue;
        if (p->graph->values[v].konst) spare_keep(r, p->graph->values[v].konst);
        release_value(p, v);
    }
}

/* Lazy weights that only ONR_OP_LAZY_IN0 ops read, each as its input 0,
 * and that are no graph output, stay in the mapping (ops.h): their data
 * points there, misaligned, and they are never copied. in_place (one byte
 * per value) marks them. Their pages are populated at open with the other
 * weights read in place (clean pages of the file, which the kernel may
 * take back): those readers read a few rows a run, but each row's first
 * read faulted its page in inside a run, from the disk where the file was
 * no longer cached (the GPT-2-like decoder's token embedding, 154 MB: its
 * Gather took 31 ms in the first run after the caches were dropped, 4.8
 * with the file cached, 1.6 populated, 0.015 in later runs). */
static void keep_in_mapping(onr_plan *p, release_ctx *r, uint8_t *in_place)
{
    const onr_graph *g = p->graph;
    int *readers = calloc((size_t)g->n_values + 1, sizeof *readers);
    if (!readers) return; /* copied as any other: correct, only larger */
    for (int v = 0; v < g->n_values; v++) {
        const onr_tensor *t = g->values[v].konst;
        in_place[v] = t && t->lazy && !t->data && !t->kind && t->dtype != ONR_STRING;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const onr_node *n = &g->nodes[i];
        const int ok = n->op && (n->op->impl->flags & ONR_OP_LAZY_IN0) != 0;
        for (int k = 0; k < n->n_in; k++) {
            int v = n->inputs[k];
            if (v < 0) continue;
            if (k != 0 || !ok) in_place[v] = 0;
            else readers[v]++;
        }
    }
    for (int i = 0; i < g->n_outputs; i++) in_place[g->outputs[i]] = 0;
    for (int v = 0; v < g->n_values; v++) {
        if (!in_place[v] || !readers[v]) {
            in_place[v] = 0;
            continue;
        }
        onr_tensor *t = g->values[v].konst;
        t->data = (void *)t->lazy; /* the model keeps the mapping: it still counts it */
        t->lazy = NULL;
        t->owns = 0;
        p->rt[v].data = t->data;
        p->rt[v].lazy = NULL;
        if (r) r->lazy_left--;
        atomic_fetch_add_explicit(&g_kept_in_mapping, 1, memory_order_relaxed);
    }
    free(readers);
}

/* Constants no step reads at all (the originals of weights a fusion
 * rewrote, e.g. a conv's weights after BatchNormalization folding) are
 * released before any step is created. */
static void release_unread(onr_plan *p, release_ctx *r)
{
    for (int v = 0; v < p->graph->n_values; v++) {
        if (r->total[v] != 0) continue;
        const onr_tensor *t = p->graph->values[v].konst;
        if (t && t->lazy) r->lazy_left--; /* never copied */
        release_value(p, v);
    }
}

onr_status onr_plan_reserve_scratch(onr_plan *p, size_t bytes, onr_err *err)
{
    if (bytes <= p->scratch_cap) return ONR_OK;
    size_t sz = (bytes + 63) & ~(size_t)63;
    void *s = NULL;
    onr_status st = onr_budget_take_any(p->budget, NULL, sz, sz, err);
    if (st) return st;
    if (posix_memalign(&s, 64, sz) != 0) {
        onr_budget_give(p->budget, sz);
        return onr_seterr(err, ONR_E_NOMEM, "out of memory for %zu bytes of scratch", sz);
    }
    free(p->scratch);
    onr_budget_give(p->budget, p->scratch_cap);
    p->scratch = s;
    p->scratch_cap = sz;
    return ONR_OK;
}

/* Bytes of the owned buffer a value of t's shape gets (onr_tensor_alloc). */
static uint64_t owned_bytes(const onr_tensor *t)
{
    if (t->kind) return 0;
    if (t->dtype == ONR_STRING) return (uint64_t)t->numel * sizeof(char *);
    uint64_t n = ((uint64_t)onr_tensor_nbytes(t) + 63) & ~(uint64_t)63;
    return n ? n : 64;
}

/* With static shapes, before anything is allocated: a layout without
 * memory (the arena's peak) and the owned outputs' bytes, step by step,
 * against the budget; the first value that would pass it is named. Then
 * the arena is allocated once at its peak. */
static int check_budget(onr_plan *p, onr_err *err)
{
    onr_memplan *mp = &p->mem;
    const onr_graph *g = p->graph;
    uint64_t owned = 0;
    int st = ONR_OK;
    mp->dry = 1;
    onr_memplan_restart(mp, 0);
    for (int i = 0; i < p->n_steps && !st; i++) {
        onr_step *s = &p->steps[i];
        size_t before = mp->arena_peak;
        if ((st = onr_memplan_place(mp, p->steps, i, p->rt, err))) break;
        for (int o = 0; o < s->n_out && !st; o++) {
            if (!s->out[o]) continue;
            int v = (int)(s->out[o] - p->rt);
            if (mp->cls[v] == ONR_MEM_OWNED) {
                uint64_t b = owned_bytes(s->out[o]);
                st = onr_budget_check(p->budget, g->values[v].name, b, mp->arena_peak + owned, err);
                owned += b;
            } else if (mp->cls[v] == ONR_MEM_ARENA && mp->arena_peak > before && !mp->inplace[v]) {
                /* the arena grows to its new peak for v */
                uint64_t b = mp->size[v], grow = mp->arena_peak > mp->arena_cap
                                                     ? mp->arena_peak - mp->arena_cap : 0;
                st = onr_budget_check(p->budget, g->values[v].name, b,
                                      (grow > b ? grow - b : 0) + owned, err);
                before = mp->arena_peak;
            }
        }
        onr_memplan_release(mp, i);
    }
    mp->dry = 0;
    if (!st) st = onr_memplan_reserve(mp, mp->arena_peak, p->rt, err);
    return st;
}

/* Take the weights the model holds in memory (copied out of the file, or
 * folded) from the budget, each by name. */
static int take_weights(onr_plan *p, onr_err *err)
{
    const onr_graph *g = p->graph;
    for (int v = 0; v < g->n_values; v++) {
        const onr_tensor *t = g->values[v].konst;
        if (!t || !t->owns || !t->data || t->kind) continue;
        uint64_t b = onr_tensor_nbytes(t);
        if (t->dtype == ONR_STRING) {
            b = (uint64_t)t->numel * sizeof(char *);
            for (int64_t k = 0; k < t->numel; k++)
                b += ((char **)t->data)[k] ? strlen(((char **)t->data)[k]) + 1 : 0;
        }
        int st = onr_budget_take(p->budget, g->values[v].name, b, b, err);
        if (st) return st;
        p->weights_held += b;
    }
    return ONR_OK;
}

/* With static shapes, every step is reshaped and the memory laid out now:
 * the first run finds everything in place. Steps fed by symbolic or
 * data-dependent shapes wait for their first run. */
int onr_plan_prepare_static(onr_plan *p, uint8_t *known, onr_err *err)
{
    int all = 1;
    size_t scratch = 0;
    for (int i = 0; i < p->n_steps; i++) {
        onr_step *s = &p->steps[i];
        int ready = 1;
        for (int k = 0; k < s->n_in && ready; k++)
            ready = !s->in[k] || known[s->in[k] - p->rt];
        if (!ready) {
            all = 0;
            continue;
        }
        int st = onr_step_reshape(s, p->nthreads, NULL, err);
        if (st == ONR_SHAPE_DEFER) {
            all = 0;
            continue;
        }
        if (st) {
            onr_err_node(err, s->node);
            return st;
        }
        if (s->op->impl->flags & ONR_OP_DYNAMIC_OUT) {
            all = 0; /* its readers are laid out at the first run */
            continue;
        }
        for (int o = 0; o < s->n_out; o++)
            if (s->out[o]) known[s->out[o] - p->rt] = 1;
        if (s->scratch > scratch) scratch = s->scratch;
    }
    int st = onr_plan_reserve_scratch(p, scratch, err);
    if (st || !all) return st;
    if ((st = check_budget(p, err))) return st;
    onr_memplan_restart(&p->mem, 0);
    for (int i = 0; i < p->n_steps; i++) {
        if ((st = onr_memplan_place(&p->mem, p->steps, i, p->rt, err))) return st;
        onr_memplan_release(&p->mem, i);
    }
    p->mem.valid = 1;
    /* touch the arena and scratch now, at open: their pages would
     * otherwise fault in one by one inside the first run's kernels */
    if (p->mem.arena) onr_zero_parallel(p->mem.arena, p->mem.arena_cap, p->nthreads);
    if (p->scratch) onr_zero_parallel(p->scratch, p->scratch_cap, p->nthreads);
    return onr_plan_alloc_outputs(p, err);
}

/* A subgraph's plan: outer names and their constants. */
typedef struct sub_spec {
    int n_outer;
    const char *const *names;
    const onr_tensor *const *konst;
} sub_spec;

/* Before the passes, in a subgraph's working copy: each outer name's value
 * (constants set, so the subgraph folds and packs with them), and graph
 * inputs whose declared shapes are forgotten (the runtime binds them). */
static int prepare_sub(onr_plan *p, const sub_spec *sub, onr_err *err)
{
    onr_graph *g = p->graph;
    p->n_outer = sub->n_outer;
    p->outer_v = malloc(((size_t)sub->n_outer + 1) * sizeof *p->outer_v);
    if (!p->outer_v) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    for (int j = 0; j < sub->n_outer; j++) {
        int v = onr_graph_find_value(g, sub->names[j]);
        p->outer_v[j] = v >= 0 && g->values[v].is_outer ? v : -1;
        if (p->outer_v[j] >= 0 && sub->konst && sub->konst[j]) {
            onr_value *val = &g->values[v];
            val->konst = (onr_tensor *)sub->konst[j]; /* borrowed: never freed here */
            val->dtype = val->konst->dtype;
            val->rank = val->konst->rank;
            memcpy(val->dims, val->konst->dims, sizeof(int64_t) * (size_t)val->rank);
        }
    }
    for (int i = 0; i < g->n_inputs; i++) g->values[g->inputs[i]].rank = -1;
    return ONR_OK;
}

static onr_status plan_build(onr_model *m, const onr_graph *src, const onr_plan_opts *o,
                             const sub_spec *sub, onr_plan **out, onr_err *err)
{
    *out = NULL;
    onr_plan *p = calloc(1, sizeof *p);
    if (!p) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    uint8_t *known = NULL, *in_place = NULL;
    p->model = m;
    p->cancel = &p->cancel_flag;
    p->nthreads = o && o->nthreads > 0 ? o->nthreads : 1;
    p->no_fuse = o && !o->fuse;
    p->budget = o && !sub ? o->budget : NULL;
    int st = onr_edit_open(src, &p->edit, err);
    if (st) goto fail;
    p->graph = p->edit->g;
    if ((st = onr_plan_link_subgraphs(p->edit, err))) goto fail;
    p->graph = p->edit->g;
    if (sub && (st = prepare_sub(p, sub, err))) goto fail;
    if ((st = onr_pass_gradient(p->edit, err))) goto fail; /* adds nodes to resolve */
    if ((st = resolve_ops(m, p->graph, err))) goto fail;
    onr_pass_opts po = {.fuse = o ? o->fuse : 1, .nthreads = p->nthreads};
    onr_pass_stats ps = {0};
    if ((st = onr_passes_run(p->edit, &po, &ps, err))) goto fail;
    p->steps_unfused = ps.nodes_unfused;
    onr_graph *g = p->graph;
    p->steps = calloc((size_t)g->n_nodes + 1, sizeof *p->steps);
    p->rt = calloc((size_t)g->n_values + 1, sizeof *p->rt);
    known = calloc((size_t)g->n_values + 1, 1);
    if (!p->steps || !p->rt || !known) {
        st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
        goto fail;
    }
    onr_plan_init_runtime(p, known);
    release_ctx rel = {0};
    /* without the counts the originals stay: correct, only larger; a
     * subgraph's constants stay (its plan may be rebuilt, and outer ones
     * belong to the enclosing plan) */
    int releasing = !sub && release_init(p, &rel) == 0;
    p->fixed_shapes = !sub;
    for (int i = 0; i < g->n_inputs && p->fixed_shapes; i++)
        p->fixed_shapes = value_static(&g->values[g->inputs[i]]) &&
                          g->values[g->inputs[i]].dtype != ONR_UNDEFINED;
    if (!sub && (in_place = calloc((size_t)g->n_values + 1, 1)))
        keep_in_mapping(p, releasing ? &rel : NULL, in_place);
    if (releasing) release_unread(p, &rel);
    for (int i = 0; i < g->n_nodes && !st; i++) {
        /* create reads its constants (and packs what it consumes): a lazy
         * one is copied now, just before, so it can go right after */
        const int lazy_b = g->nodes[i].op && (g->nodes[i].op->impl->flags & ONR_OP_LAZY_B) != 0;
        for (int k = 0; k < g->nodes[i].n_in && !st; k++)
            if (g->nodes[i].inputs[k] >= 0 && !(lazy_b && k == 1 && lazy_f32(p, g->nodes[i].inputs[k])))
                st = materialize(p, releasing ? &rel : NULL, g->nodes[i].inputs[k], err);
        if (!st) st = add_step(p, &g->nodes[i], err);
        /* a lazy B that create did not pack is copied now, as for any other op */
        if (!st && lazy_b && g->nodes[i].n_in > 1 && g->nodes[i].inputs[1] >= 0 &&
            !(p->steps[p->n_steps - 1].consumed & 2u))
            st = materialize(p, releasing ? &rel : NULL, g->nodes[i].inputs[1], err);
        if (!st && releasing) release_after_create(p, &rel, &p->steps[p->n_steps - 1]);
    }
    /* what is still lazy is read when the plan runs (or is an output) */
    for (int v = 0; v < g->n_values && !st; v++) st = materialize(p, NULL, v, err);
    release_free(&rel);
    if (st) goto fail;
    if (p->budget) {
        if (!(p->held = calloc((size_t)g->n_values + 1, sizeof *p->held))) {
            st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
            goto fail;
        }
        if ((st = take_weights(p, err))) goto fail;
    }
    if ((st = onr_memplan_init(&p->mem, g, p->steps, p->n_steps, p->rt, err))) goto fail;
    p->mem.budget = p->budget;
    if ((st = onr_plan_prepare_static(p, known, err))) goto fail;
    if (!sub) /* the weights the kernels read in place, those left in the mapping
                 too (the loader let their pages go) */
        for (int v = 0; v < g->n_values; v++) {
            const onr_tensor *t = g->values[v].konst;
            if (t && t->data && !t->owns && !t->kind && t->dtype != ONR_STRING)
                onr_pages_populate(t->data, onr_tensor_nbytes(t));
        }
    free(in_place);
    free(known);
    *out = p;
    return ONR_OK;
fail:
    free(in_place);
    free(known);
    onr_plan_free(p);
    return st;
}

onr_status onr_plan_build(onr_model *m, const onr_plan_opts *o, onr_plan **out, onr_err *err)
{
    return plan_build(m, m->graph, o, NULL, out, err);
}

onr_status onr_plan_build_sub(const onr_graph *g, const onr_plan_opts *o, int n_outer,
                              const char *const *names, const onr_tensor *const *konst,
                              onr_plan **out, onr_err *err)
{
    sub_spec sub = {.n_outer = n_outer, .names = names, .konst = konst};
    return plan_build(NULL, g, o, &sub, out, err);
}

void onr_plan_bind_input(onr_plan *p, int i, const onr_tensor *t)
{
    onr_tensor *rt = &p->rt[p->graph->inputs[i]];
    *rt = *t;
    rt->owns = 0;
    rt->cap = 0;
    rt->name = NULL;
}

void onr_plan_bind_outer(onr_plan *p, int j, const onr_tensor *t)
{
    int v = p->outer_v[j];
    if (v < 0 || p->graph->values[v].konst) return; /* unread, or a constant in place */
    onr_tensor *rt = &p->rt[v];
    *rt = *t;
    rt->owns = 0;
    rt->cap = 0;
    rt->name = NULL;
}

void onr_plan_free(onr_plan *p)
{
    if (!p) return;
    for (int i = 0; i < p->n_steps; i++) onr_step_destroy(&p->steps[i]);
    free(p->steps);
    free(p->prof_ms);
    free(p->prof_start_ms);
    if (p->rt && p->graph)
        for (int v = 0; v < p->graph->n_values; v++)
            if (p->rt[v].owns) onr_tensor_clear(&p->rt[v]);
    free(p->rt);
    onr_memplan_free(&p->mem);
    free(p->scratch);
    if (p->budget) {
        uint64_t held = p->weights_held + p->scratch_cap;
        for (int v = 0; p->held && v < p->graph->n_values; v++) held += p->held[v];
        onr_budget_give(p->budget, held);
    }
    free(p->held);
    free(p->outer_v);
    if (!p->tmpl) onr_edit_free(p->edit); /* an instance shares its template's */
    free(p);
}

void onr_plan_output_released(onr_plan *p, int i)
{
    int v = p->graph->outputs[i];
    if (!p->held || !p->held[v]) return;
    onr_budget_give(p->budget, p->held[v]);
    p->held[v] = 0;
}

int onr_plan_step_count(const onr_plan *p) { return p->n_steps; }
int onr_plan_unfused_step_count(const onr_plan *p) { return p->steps_unfused; }
const onr_node *onr_plan_step_node(const onr_plan *p, int i) { return p->steps[i].node; }
const onr_graph *onr_plan_graph(const onr_plan *p) { return p->graph; }
onr_tensor *onr_plan_input(onr_plan *p, int i) { return &p->rt[p->graph->inputs[i]]; }
onr_tensor *onr_plan_output(onr_plan *p, int i) { return &p->rt[p->graph->outputs[i]]; }

const char *onr_plan_step_memory(const onr_plan *p, int i, int o, char *buf, size_t len)
{
    const onr_step *s = &p->steps[i];
    const onr_memplan *mp = &p->mem;
    if (o >= s->n_out || !s->out[o]) return "";
    int v = (int)(s->out[o] - p->rt);
    switch (mp->cls[v]) {
    case ONR_MEM_VIEW: return "view";
    case ONR_MEM_OWNED: return "owned";
    case ONR_MEM_ARENA:
        if (!mp->valid && !mp->arena) return "arena (laid out at run)";
        if (mp->inplace[v]) {
            snprintf(buf, len, "in place +%zu", mp->off[mp->root[v]]);
            return buf;
        }
        snprintf(buf, len, "arena +%zu", mp->off[v]);
        return buf;
    default: return "";
    }
}

void onr_plan_memory(const onr_plan *p, size_t *arena_bytes, size_t *activation_bytes)
{
    *arena_bytes = p->mem.arena_peak;
    *activation_bytes = p->mem.total_bytes;
}

void onr_plan_set_cancel(onr_plan *p, int on) { p->cancel_flag = on != 0; }

void onr_plan_set_profiling(onr_plan *p, int on) { p->profiling = on != 0; }

double onr_plan_step_ms(const onr_plan *p, int i, double *start_ms)
{
    if (start_ms) *start_ms = 0;
    if (i < 0 || i >= p->n_steps || !p->prof_ms) return 0;
    if (start_ms) *start_ms = p->prof_start_ms[i];
    return p->prof_ms[i];
}
