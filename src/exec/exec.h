/*
 * exec.h - the executor: one step sequence (create once; reshape when the
 * input shapes change; run) shared by whole plans, constant folding and the
 * kernel unit tests, plus the plan run loop and its profiling.
 */
#ifndef ONR_EXEC_H
#define ONR_EXEC_H

#include "ops/ops.h"

/* One operator instance bound to its input and output tensors. */
typedef struct onr_step {
    const onr_op *op;
    const onr_node *node; /* create and error messages only */
    int64_t opset;
    int n_in, n_out;
    onr_tensor **in;      /* bound tensors (NULL for omitted inputs) */
    onr_tensor **out;     /* bound tensors (NULL for omitted outputs) */
    uint8_t *in_const;    /* per input: its data never changes */
    void *params;         /* the op's params (or old-contract state) */
    uint32_t consumed;    /* constant inputs create packed into params */
    size_t scratch;       /* bytes run needs, from the last reshape */
    int created;
    int shaped;           /* reshape succeeded for the inputs in key[] */
    int key_len;
    int64_t *key;         /* input dtypes, dims and shape-input values at last reshape */
    int always_reshape;   /* a shape input's values are too many to key on */
    int64_t n_reshape;    /* times reshape ran (statistics, tests) */
    const _Atomic int *cancel; /* the run's cancel flag, handed to run (may be NULL) */
    int no_fuse;          /* handed to create: subgraphs are planned without fusions */
    /* Plan instances (onr_plan_instance). A step whose create consumed a
     * constant keeps params0, a copy of its params as create left them
     * (before any reshape); another instance's step starts from that copy
     * and shares what create allocated (packed weights, read-only), so
     * shared_params is set there and destroy is not called for it. */
    void *params0;
    int shared_params;
    /* the session's budget, set before create (NULL: none), and what create
     * took from it (onr_create_hold), given back by onr_step_destroy */
    struct onr_budget *budget;
    uint64_t held;
    /* output 0's static shape from the planner's inference, for create's
     * hint (rank -1: not known) */
    int out0_rank;
    int64_t out0_dims[ONR_MAX_RANK];
    /* input 0's static shape and type, the same way (rank -1: not known),
     * and whether the step's shapes are fixed for the plan's life (create's
     * fixed_shapes) */
    int in0_rank;
    int64_t in0_dims[ONR_MAX_RANK];
    onr_dtype in0_dtype;
    int fixed_shapes;
} onr_step;

/* Allocate the step's arrays for n_in inputs and n_out outputs (bind in[],
 * out[] and in_const[] afterwards). */
onr_status onr_step_init(onr_step *s, const onr_node *node, const onr_op *op, int n_in,
                         int n_out, onr_err *err);
/* create: read attributes, pack constant inputs (their data must be bound). */
onr_status onr_step_create(onr_step *s, int nthreads, onr_err *err);
/* reshape when the inputs' dtypes/dims (or shape-input values) differ from
 * the last reshape; *changed (may be NULL) says whether it ran. Returns
 * ONR_SHAPE_DEFER when a needed input value is not known (load time). */
int onr_step_reshape(onr_step *s, int nthreads, int *changed, onr_err *err);
/* run into the bound outputs (their buffers must be in place). */
onr_status onr_step_run(onr_step *s, void *scratch, int nthreads, onr_err *err);
/* destroy params and free the arrays. */
void onr_step_destroy(onr_step *s);
/* Make dst (initialised with onr_step_init for the same node and op) a
 * created step for another plan instance: a step whose create consumed
 * constants starts from src's params as create left them (params0; what
 * create allocated is shared, read-only, and freed by src alone); an op
 * with a clone hook makes dst's params from src's (a subgraph's plan
 * becomes an instance of src's, sharing its packed weights); any other
 * step runs create again over dst's bound inputs. */
onr_status onr_step_create_like(onr_step *dst, const onr_step *src, int nthreads, onr_err *err);

/* Run one node from scratch through the same sequence: create, reshape,
 * allocate outputs (or alias them for view ops), run, destroy. in_const may
 * be NULL (no input constant). out[i] are caller-provided tensors that
 * receive shape and owned data (NULL for omitted optional outputs).
 * *consumed (may be NULL) receives the mask of inputs create packed. */
onr_status onr_exec_node(const onr_node *node, const onr_op *op, int64_t opset,
                         onr_tensor *const *in, int n_in, const uint8_t *in_const,
                         onr_tensor *const *out, int n_out, int nthreads, uint32_t *consumed,
                         onr_err *err);

/* Prefix err with "node 'name' (Op, opset N): ". */
void onr_err_node(onr_err *err, const onr_node *node);

#endif
