/*
 * plan.h - the executable plan: a flat array of steps in topological order,
 * built from the IR after op resolution, static shape inference and
 * constant folding; and its executor.
 */
#ifndef ONR_PLAN_H
#define ONR_PLAN_H

#include "exec/exec.h"

typedef struct onr_plan {
    onr_model *model;
    onr_graph *graph;
    onr_tensor *rt; /* one runtime tensor per graph value */
    int n_steps;
    onr_step *steps;
    int n_folded; /* nodes evaluated at load time */
    void *scratch;
    size_t scratch_cap;
    int nthreads;
    /* profiling: when on, each run records every step's start and duration */
    int profiling;
    double *prof_start_ms, *prof_ms;
} onr_plan;

/* Resolve ops (all unsupported ones reported at once), sort, infer static
 * shapes, fold constants, and lay out the steps. Takes no ownership of m. */
onr_status onr_plan_build(onr_model *m, int nthreads, onr_plan **out, onr_err *err);
/* Run every step. Graph inputs must already be bound in rt[]. */
onr_status onr_plan_run(onr_plan *p, onr_err *err);
void onr_plan_free(onr_plan *p);

#endif
