/*
 * instance.c - more instances of a plan, so that one session can run from
 * several threads at once. An instance has everything a run changes: the
 * runtime tensors, the steps (reshape state, params), the memory plan and
 * its arena, scratch, the cancel flag and profiling. It shares what runs
 * only read: the planned graph, its constants, and the packed weights of
 * the steps whose create consumed a constant (onr_step_create_like).
 */
#include <stdlib.h>
#include <string.h>

#include "plan/plan.h"

onr_status onr_plan_instance(const onr_plan *t, onr_plan **out, onr_err *err)
{
    *out = NULL;
    onr_plan *p = calloc(1, sizeof *p);
    if (!p) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    p->tmpl = t;
    p->model = t->model;
    p->edit = t->edit;
    p->graph = t->graph;
    p->cancel = &p->cancel_flag;
    p->nthreads = t->nthreads;
    p->no_fuse = t->no_fuse;
    p->steps_unfused = t->steps_unfused;
    const onr_graph *g = p->graph;
    uint8_t *known = NULL;
    int st = ONR_OK;
    p->n_outer = t->n_outer;
    p->outer_v = malloc(((size_t)t->n_outer + 1) * sizeof *p->outer_v);
    p->steps = calloc((size_t)t->n_steps + 1, sizeof *p->steps);
    p->rt = calloc((size_t)g->n_values + 1, sizeof *p->rt);
    known = calloc((size_t)g->n_values + 1, 1);
    if (!p->outer_v || !p->steps || !p->rt || !known) {
        st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
        goto fail;
    }
    if (t->n_outer) memcpy(p->outer_v, t->outer_v, (size_t)t->n_outer * sizeof *p->outer_v);
    onr_plan_init_runtime(p, known);
    for (int i = 0; i < t->n_steps && !st; i++) {
        const onr_step *ts = &t->steps[i];
        onr_step *s = &p->steps[i];
        if ((st = onr_step_init(s, ts->node, ts->op, ts->n_in, ts->n_out, err))) break;
        p->n_steps++;
        s->no_fuse = ts->no_fuse;
        s->budget = ts->budget; /* a create that is not shared holds its own */
        for (int k = 0; k < ts->n_in; k++) {
            if (!ts->in[k]) continue;
            s->in[k] = &p->rt[ts->in[k] - t->rt];
            s->in_const[k] = ts->in_const[k];
        }
        for (int o = 0; o < ts->n_out; o++)
            if (ts->out[o]) s->out[o] = &p->rt[ts->out[o] - t->rt];
        if ((st = onr_step_create_like(s, ts, p->nthreads, err))) onr_err_node(err, s->node);
    }
    if (st) goto fail;
    if (t->budget) { /* the session's budget counts every instance's arena and outputs;
                      * the weights are the template's, counted once */
        p->budget = t->budget;
        if (!(p->held = calloc((size_t)g->n_values + 1, sizeof *p->held))) {
            st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
            goto fail;
        }
    }
    if ((st = onr_memplan_init(&p->mem, g, p->steps, p->n_steps, p->rt, err))) goto fail;
    p->mem.budget = p->budget;
    if ((st = onr_plan_prepare_static(p, known, err))) goto fail;
    free(known);
    *out = p;
    return ONR_OK;
fail:
    free(known);
    onr_plan_free(p);
    return (onr_status)st;
}
