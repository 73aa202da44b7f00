/*
 * plan.h - the executable plan: the planned graph (a working copy after the
 * passes), a flat array of steps in topological order, one runtime tensor
 * per value, and the memory plan. src/plan builds it; src/exec runs it.
 */
#ifndef ONR_PLAN_H
#define ONR_PLAN_H

#include "exec/exec.h"
#include "ir/edit.h"
#include "plan/memplan.h"

typedef struct onr_plan {
    onr_model *model;
    onr_edit *edit;   /* the planned graph */
    onr_graph *graph; /* edit->g */
    onr_tensor *rt;   /* one runtime tensor per value of graph */
    int n_steps;
    int steps_unfused; /* steps the plan would have without the fusions */
    onr_step *steps;
    onr_memplan mem;
    void *scratch;
    size_t scratch_cap;
    int nthreads;
    /* profiling: when on, each run records every step's start and duration */
    int profiling;
    double *prof_start_ms, *prof_ms;
    /* per value, set by the caller for one run: the caller's tensor a graph
     * output is written into instead of an owned buffer (NULL: none) */
    const onr_tensor *const *out_bind;
} onr_plan;

typedef struct onr_plan_opts {
    int nthreads;
    int fuse; /* run the fusion passes */
} onr_plan_opts;

/* Copy the graph, resolve ops (all unsupported ones reported at once), run
 * the passes, create every step (weights packed once, originals released
 * when only packed forms are read), reshape the steps whose shapes are
 * static and lay out their memory. Takes no ownership of m. */
onr_status onr_plan_build(onr_model *m, const onr_plan_opts *o, onr_plan **out, onr_err *err);
void onr_plan_free(onr_plan *p);

/* Make the shared scratch buffer at least `bytes` (grows only). */
onr_status onr_plan_reserve_scratch(onr_plan *p, size_t bytes, onr_err *err);

/* Run every step (src/exec/run.c). Graph inputs must be bound first. */
onr_status onr_plan_run(onr_plan *p, onr_err *err);

/* Plan facts for the API and tools. */
int onr_plan_step_count(const onr_plan *p);
int onr_plan_unfused_step_count(const onr_plan *p);
const onr_node *onr_plan_step_node(const onr_plan *p, int i);
/* "arena +OFFSET", "view", "in place", "owned", per output o of step i */
const char *onr_plan_step_memory(const onr_plan *p, int i, int o, char *buf, size_t len);
/* Arena bytes the current layout uses, and the sum of the activations it holds. */
void onr_plan_memory(const onr_plan *p, size_t *arena_bytes, size_t *activation_bytes);
const onr_graph *onr_plan_graph(const onr_plan *p);
/* The runtime tensor of graph input i (bind) / graph output i (read). */
onr_tensor *onr_plan_input(onr_plan *p, int i);
onr_tensor *onr_plan_output(onr_plan *p, int i);
/* Profiling. */
void onr_plan_set_profiling(onr_plan *p, int on);
double onr_plan_step_ms(const onr_plan *p, int i, double *start_ms);

#endif
