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
    /* cancel: a run stops before its next step (and a Loop before its next
     * iteration) once *cancel is non-zero; points at cancel_flag, or for a
     * subgraph's plan at the enclosing run's flag */
    _Atomic int cancel_flag;
    const _Atomic int *cancel;
    /* a subgraph's plan: per outer-scope name it was built for, the value
     * of its graph that stands for it (-1 when nothing reads it) */
    int n_outer;
    int *outer_v;
    int no_fuse; /* built without the fusion passes (subgraphs follow) */
    /* a top-level plan whose graph inputs all have static shapes: every
     * inferred shape is the one its value has in every run (create's
     * fixed_shapes) */
    int fixed_shapes;
    /* per value, set by the caller for one run: the caller's tensor a graph
     * output is written into instead of an owned buffer (NULL: none) */
    const onr_tensor *const *out_bind;
    /* an instance (onr_plan_instance): the plan whose graph, constants and
     * packed weights it shares, and which must outlive it; NULL otherwise */
    const struct onr_plan *tmpl;
    /* the session's memory budget (NULL: none; a subgraph's plan counts
     * against the enclosing run's), and per value the bytes of its owned
     * buffer taken from it (graph outputs), plus the weights' bytes */
    struct onr_budget *budget;
    uint64_t *held;
    uint64_t weights_held;
} onr_plan;

typedef struct onr_plan_opts {
    int nthreads;
    int fuse; /* run the fusion passes */
    /* memory budget (may be NULL): the weights, arena, scratch and owned
     * buffers count against it; with static shapes the whole layout is
     * checked before anything is allocated (src/ir/budget.h) */
    struct onr_budget *budget;
} onr_plan_opts;

/* Copy the graph, resolve ops (all unsupported ones reported at once), run
 * the passes, create every step (weights packed once, originals released
 * when only packed forms are read), reshape the steps whose shapes are
 * static and lay out their memory. Takes no ownership of m. */
/* Lazy weights (ir.h) copied into the buffer of a weight released before
 * them, since the process started (for tests). */
size_t onr_plan_spares_reused(void);
/* How many lazy weights plans left in the mapping for ONR_OP_LAZY_IN0
 * readers (ops.h), never copied, in this process. */
size_t onr_plan_kept_in_mapping(void);

onr_status onr_plan_build(onr_model *m, const onr_plan_opts *o, onr_plan **out, onr_err *err);
void onr_plan_free(onr_plan *p);
/* Another instance of plan t, for a run concurrent with t's (src/plan/
 * instance.c): its own runtime tensors, steps, memory plan, arena, scratch,
 * cancel flag and profiling, over t's graph and constants. Steps whose
 * create consumed a constant share t's packed weights (onr_step_create_like);
 * the others are created again. Building it only reads t, so it may run
 * while t runs; t must outlive it. */
onr_status onr_plan_instance(const onr_plan *t, onr_plan **out, onr_err *err);
/* Shared by plan.c and instance.c: runtime tensors before any run (known[v]:
 * v's shape is known), and the static reshape and layout. */
void onr_plan_init_runtime(onr_plan *p, uint8_t *known);
int onr_plan_prepare_static(onr_plan *p, uint8_t *known, onr_err *err);
/* The owned buffers of the steps' outputs, allocated and touched at open
 * (run.c; after a static layout). */
int onr_plan_alloc_outputs(onr_plan *p, onr_err *err);

/* ---- subgraphs (control flow; src/plan/subplan.c) ------------------------
 * A node with graph attributes (If, Loop, Scan, SequenceMap) reads the
 * outer-scope values its subgraphs refer to at any depth. The planner
 * appends them to the node as implicit inputs, after the declared ones and
 * in the order onr_node_outer_names gives, so liveness, dead-code
 * elimination and the memory plan keep them alive; the op's create plans
 * each subgraph with onr_plan_build_sub and binds the outer values to the
 * tensors it finds in ctx->in[] each run (no copy). */

/* The outer-scope names node n's subgraphs read (any depth), each once, in
 * a fixed order. *names is one malloc'd array (free it); the strings belong
 * to the graphs. */
onr_status onr_node_outer_names(const onr_node *n, const char ***names, int *count, onr_err *err);
/* Append every subgraph node's outer names to its inputs (values added to
 * e's graph, marked is_outer, where e is itself a subgraph). */
onr_status onr_plan_link_subgraphs(onr_edit *e, onr_err *err);
/* Plan subgraph g (no model: every node carries its opset). names[j] are
 * its outer names (onr_node_outer_names); konst[j] (konst may be NULL) the
 * outer value when it is a constant, which the subgraph may fold and pack.
 * The declared shapes of g's inputs are not trusted (loop-carried values
 * change shape); weights are never released (the enclosing plan owns them). */
onr_status onr_plan_build_sub(const onr_graph *g, const onr_plan_opts *o, int n_outer,
                              const char *const *names, const onr_tensor *const *konst,
                              onr_plan **out, onr_err *err);
/* Bind t to graph input i / outer name j of p for the next run: a view of
 * t's data (no copy), which must stay valid through the run. */
void onr_plan_bind_input(onr_plan *p, int i, const onr_tensor *t);
void onr_plan_bind_outer(onr_plan *p, int j, const onr_tensor *t);

/* Make the shared scratch buffer at least `bytes` (grows only). */
onr_status onr_plan_reserve_scratch(onr_plan *p, size_t bytes, onr_err *err);

/* Run every step (src/exec/run.c). Graph inputs must be bound first. */
onr_status onr_plan_run(onr_plan *p, onr_err *err);

/* Graph output i's owned buffer changed hands (the session gave it to the
 * caller): it no longer counts against the plan's budget. */
void onr_plan_output_released(onr_plan *p, int i);

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
/* Raise (1) or clear (0) the cancel flag: a run in progress stops before
 * its next step or Loop/Scan iteration with ONR_E_RUNTIME. Safe to call
 * from another thread or a signal handler. */
void onr_plan_set_cancel(onr_plan *p, int on);
/* Profiling. */
void onr_plan_set_profiling(onr_plan *p, int on);
double onr_plan_step_ms(const onr_plan *p, int i, double *start_ms);

#endif
