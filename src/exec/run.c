/*
 * run.c - the executor: runs a plan's steps in order. Each step is
 * reshaped only when its input shapes (or shape-input values) changed;
 * when one did, the memory plan is laid out again from that step on (and
 * kept while the shapes repeat); then the outputs get their buffers (arena,
 * view or owned) and the kernel runs. Profiling records every step's time.
 * With unchanged shapes a run allocates nothing.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ir/budget.h"
#include "plan/plan.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A view whose output is a graph output gets its own buffer: copy. */
static int copy_view(onr_tensor *y, const onr_tensor *x, onr_err *err)
{
    if (x->kind || y->kind) return onr_value_copy(y, x, err); /* a container: deep copy */
    int st = onr_tensor_alloc(y, err);
    if (st) return st;
    if (y->dtype == ONR_STRING) {
        char **d = y->data, *const *src = x->data;
        for (int64_t k = 0; k < y->numel; k++)
            if (onr_str_assign(&d[k], src[k]))
                return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    } else if (onr_tensor_nbytes(y)) {
        memcpy(y->data, x->data, onr_tensor_nbytes(y));
    }
    return ONR_OK;
}

/* A graph output the caller gave memory for: the step writes straight into
 * it, once its shape is known and agrees with the caller's tensor. */
static int bind_caller(const onr_plan *p, onr_tensor *t, const onr_tensor *dst, onr_err *err)
{
    int same = t->dtype == dst->dtype && t->rank == dst->rank;
    for (int d = 0; same && d < t->rank; d++) same = t->dims[d] == dst->dims[d];
    if (!same) {
        char b1[256], b2[256];
        return onr_seterr(err, ONR_E_INPUT, "output '%s': the caller's tensor is %s%s, the run makes %s%s",
                          p->graph->values[t - p->rt].name, onr_dtype_name(dst->dtype),
                          onr_fmt_dims(b1, sizeof b1, dst->dims, dst->rank), onr_dtype_name(t->dtype),
                          onr_fmt_dims(b2, sizeof b2, t->dims, t->rank));
    }
    if (t->owns) free(t->data);
    if (p->held) { /* the owned buffer is gone */
        int v = (int)(t - p->rt);
        onr_budget_give(p->budget, p->held[v]);
        p->held[v] = 0;
    }
    t->data = dst->data;
    t->owns = 0;
    t->cap = 0;
    return ONR_OK;
}

/* An owned buffer for graph output t (value v), counted against the
 * budget before it is allocated. */
static int alloc_owned(onr_plan *p, onr_tensor *t, int v, int view, const onr_tensor *src,
                       onr_err *err)
{
    uint64_t need = 0;
    if (!t->kind && !(view && src->kind)) {
        need = t->dtype == ONR_STRING ? (uint64_t)t->numel * sizeof(char *)
                                      : ((uint64_t)onr_tensor_nbytes(t) + 63) & ~(uint64_t)63;
        if (!need) need = 64;
        if (t->dtype != ONR_STRING && t->owns && t->data && t->cap >= need) need = 0; /* reused */
    }
    const char *name = p->graph->values[v].name;
    if (need && onr_budget_take_any(p->budget, name, need, need, err)) return ONR_E_NOMEM;
    int st = view ? copy_view(t, src, err) : (int)onr_tensor_alloc(t, err);
    if (!p->held || !need) return st;
    if (st) {
        onr_budget_give(p->budget, need);
    } else {
        onr_budget_give(p->budget, p->held[v]); /* the buffer it replaced */
        p->held[v] = need;
    }
    return st;
}

/* At open, for a plan laid out with static shapes: the owned buffers of
 * the steps' outputs (the graph outputs, mostly), allocated and touched as
 * the arena is, so that the first run finds them in place instead of
 * faulting their pages in inside its kernels (the GPT-2-like decoder's
 * logits, 12.9 MB: its last MatMul took 17-27 ms in the first run at 2
 * threads, 14.4 after). Views and the outputs of steps that size their
 * own (ONR_OP_DYNAMIC_OUT) are left to the run; a caller's tensor bound
 * later replaces the buffer (bind_caller frees it). */
int onr_plan_alloc_outputs(onr_plan *p, onr_err *err)
{
    const onr_memplan *mp = &p->mem;
    for (int i = 0; i < p->n_steps; i++) {
        onr_step *s = &p->steps[i];
        const int view = (s->op->impl->flags & ONR_OP_VIEW) != 0;
        if (s->op->impl->flags & ONR_OP_DYNAMIC_OUT) continue;
        for (int o = 0; o < s->n_out; o++) {
            onr_tensor *t = s->out[o];
            if (!t || t->kind || t->dtype == ONR_STRING || (o == 0 && view)) continue;
            int v = (int)(t - p->rt);
            if (mp->cls[v] != ONR_MEM_OWNED) continue;
            int st = alloc_owned(p, t, v, 0, NULL, err);
            if (st) return st;
            if (t->data) onr_zero_parallel(t->data, onr_tensor_nbytes(t), p->nthreads);
        }
    }
    return ONR_OK;
}

/* Buffers for step i's outputs that the memory plan does not place. */
static int bind_outputs(onr_plan *p, onr_step *s, onr_err *err)
{
    const onr_memplan *mp = &p->mem;
    int view = (s->op->impl->flags & ONR_OP_VIEW) != 0;
    for (int o = 0; o < s->n_out; o++) {
        onr_tensor *t = s->out[o];
        if (!t) continue;
        int v = (int)(t - p->rt);
        int st = ONR_OK;
        if (mp->cls[v] == ONR_MEM_VIEW) {
            t->data = s->in[0]->data;
            t->owns = 0;
            t->cap = 0;
        } else if (mp->cls[v] == ONR_MEM_OWNED && (s->op->impl->flags & ONR_OP_DYNAMIC_OUT)) {
            /* the op sizes this output itself; a caller's tensor bound to it
             * is filled by a copy when the output is published */
        } else if (mp->cls[v] == ONR_MEM_OWNED && p->out_bind && p->out_bind[v]) {
            st = bind_caller(p, t, p->out_bind[v], err);
            if (!st && o == 0 && view && onr_tensor_nbytes(t))
                memcpy(t->data, s->in[0]->data, onr_tensor_nbytes(t));
        } else if (mp->cls[v] == ONR_MEM_OWNED) {
            st = alloc_owned(p, t, v, o == 0 && view, s->in[0], err);
        }
        if (st) return st;
    }
    return ONR_OK;
}

static int run_steps(onr_plan *p, onr_err *err)
{
    onr_memplan *mp = &p->mem;
    int from = mp->valid ? p->n_steps : 0; /* first step laid out again in this run */
    if (!mp->valid) onr_memplan_restart(mp, 0);
    double t0 = p->profiling ? now_ms() : 0;
    for (int i = 0; i < p->n_steps; i++) {
        onr_step *s = &p->steps[i];
        double ts = p->profiling ? now_ms() : 0;
        int changed = 0;
        if (p->cancel && *p->cancel) {
            mp->valid = 0;
            return onr_seterr(err, ONR_E_RUNTIME, "the run was cancelled");
        }
        s->cancel = p->cancel;
        int st = onr_step_reshape(s, p->nthreads, &changed, err);
        if (st == ONR_SHAPE_DEFER)
            st = onr_seterr(err, ONR_E_RUNTIME, "output shape could not be derived from the inputs");
        if (!st && changed && i < from) {
            from = i;
            onr_memplan_restart(mp, i);
        }
        if (!st && i >= from) st = onr_memplan_place(mp, p->steps, i, p->rt, err);
        if (!st) st = bind_outputs(p, s, err);
        if (!st) st = onr_plan_reserve_scratch(p, s->scratch, err);
        if (!st) {
            /* what the kernel allocates counts as this value's */
            int v0 = s->n_out > 0 && s->out[0] ? (int)(s->out[0] - p->rt) : -1;
            onr_budget_run_name(v0 >= 0 ? p->graph->values[v0].name : s->node->name);
            st = onr_step_run(s, p->scratch, p->nthreads, err);
            onr_budget_run_name(NULL);
            if (st) onr_budget_run_explain(err);
        }
        if (i >= from) onr_memplan_release(mp, i);
        if (p->profiling) {
            p->prof_start_ms[i] = ts - t0;
            p->prof_ms[i] = now_ms() - ts;
        }
        if (st) {
            mp->valid = 0;
            onr_err_node(err, s->node);
            return st;
        }
    }
    mp->valid = 1;
    return ONR_OK;
}

onr_status onr_plan_run(onr_plan *p, onr_err *err)
{
    if (p->profiling && !p->prof_ms) {
        p->prof_ms = calloc((size_t)p->n_steps + 1, sizeof(double));
        p->prof_start_ms = calloc((size_t)p->n_steps + 1, sizeof(double));
        if (!p->prof_ms || !p->prof_start_ms)
            return onr_seterr(err, ONR_E_NOMEM, "out of memory for profiling");
    }
    /* a top-level run counts what its kernels allocate (a subgraph's run
     * shares the enclosing scope) */
    onr_budget_run scope;
    int top = onr_budget_run_begin(&scope, p->budget);
    const char *outer = onr_budget_run_name(NULL);
    onr_status st = (onr_status)run_steps(p, err);
    onr_budget_run_name(outer);
    if (top) onr_budget_run_end(&scope);
    return st;
}
