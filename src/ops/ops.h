/*
 * ops.h - the operator contract, the registry and the helpers every
 * operator file shares.
 *
 * An operator is a lifecycle of four functions (XNNPACK's, in short):
 *
 *   create  - once per step, at plan time. The only function that sees the
 *             node: it reads and validates the attributes into the op's typed
 *             params struct (impl.params_size bytes, zeroed by the executor)
 *             and prepacks constant inputs (weights), keyed on the constants
 *             only. An input create packed and that run never reads again is
 *             marked with onr_create_consume() so the planner can drop the
 *             original when nothing else reads it.
 *   reshape - when the input shapes change (and, for inputs listed in
 *             impl.shape_inputs, their values): output dtypes and dims,
 *             geometry, kernel variant, scratch bytes, stored in params.
 *             Shape inference at load calls the same function with the data
 *             of constant inputs only; a reshape that needs a value it does
 *             not have returns ONR_SHAPE_DEFER (not an error).
 *   run     - computes into the output buffers it is given, from params,
 *             typed tensors and scratch. It never sees a node, never reads an
 *             attribute, never allocates.
 *   destroy - frees what create allocated inside params (may be NULL).
 *
 * One session may run from several threads at once: each concurrent run
 * uses its own plan instance (onr_plan_instance), with its own steps and
 * params. An instance runs create again for each step, except a step whose
 * create consumed a constant (onr_create_consume: the original may be gone):
 * that step's params are copied bytewise from what create left, so the
 * buffers create allocated (packed weights) are shared read-only by every
 * instance and freed once. An op that consumes therefore keeps what
 * reshape computes in plain fields of params (never allocates or frees
 * there), and run never writes through a pointer create set. An op whose
 * create-time state is more than bytes to copy (the sub-plans of If, Loop,
 * Scan, SequenceMap) has a clone hook instead: the instance's params are
 * made from the template's, sharing what create packed. Nothing an
 * op does may touch mutable global state (test-only switches aside).
 *
 * Operators are listed once in ops.def; adding one touches its own file and
 * one line there.
 */
#ifndef ONR_OPS_H
#define ONR_OPS_H

#include "ir/ir.h"
#include "gemm/team.h"

/* A row's `until` for "to the newest opset": onr_op_find still refuses an
 * opset past the newest the specification defines for the domain
 * (onr_opset_newest), so a row never claims a version nobody has written. */
#define ONR_OPSET_MAX 1000
/* The newest opset of each standard domain the ONNX specification defines
 * (ONNX 1.21): ai.onnx 26, ai.onnx.ml 5, ai.onnx.preview.training 1. */
#define ONR_OPSET_ONNX_NEWEST 26
#define ONR_OPSET_ML_NEWEST 5
#define ONR_OPSET_TRAINING_NEWEST 1
/* Returned by a reshape fn that needs input data not known yet. */
#define ONR_SHAPE_DEFER (-1)

/* What create sees: the node and its constant inputs. */
typedef struct onr_create_ctx {
    const onr_node *node;
    int64_t opset;
    int n_in, n_out;
    /* konst[i]: input i when it is a constant (initializer or folded) whose
     * data never changes, else NULL (activations, omitted inputs) */
    const onr_tensor *const *konst;
    int nthreads;
    onr_err *err;
    uint32_t consumed; /* set through onr_create_consume() */
    int no_fuse;       /* the plan runs without fusions: so do the subgraphs it plans */
    struct onr_budget *budget; /* the session's memory budget (NULL: none) */
    uint64_t held;             /* bytes create took from it (onr_create_hold) */
    /* output 0's shape as the planner inferred it, when every dim is known
     * (out0_rank -1 otherwise): a hint for what to prepare (reshape still
     * decides from the real shapes) */
    int out0_rank;
    const int64_t *out0_dims;
    /* input 0's shape and type as the planner inferred them, the same way
     * (in0_rank -1: not known) */
    int in0_rank;
    const int64_t *in0_dims;
    onr_dtype in0_dtype;
    /* the hints above are the shapes every run will have: the plan is a
     * top-level one whose graph inputs all have static shapes (checked when
     * they are bound), so each inferred shape is the only one its value can
     * take. create may then leave out what only other shapes would read
     * (and consume a constant only they would), as long as reshape refuses
     * other shapes with an error should it ever see one. */
    int fixed_shapes;
} onr_create_ctx;

/* create: count `bytes` that create is about to allocate and keep (packed
 * or transformed weights) against the session's memory budget, BEFORE
 * allocating them; `what` says what they are ("packed weights"). Refuses
 * (ONR_E_NOMEM, naming the node's output and the bytes) when they would
 * pass the limit; the step gives them back when it is destroyed. */
int onr_create_hold(onr_create_ctx *c, const char *what, uint64_t bytes);

/* What reshape and run see. */
typedef struct onr_kctx {

    void *params;  /* the op's params; reshape may update them, run only reads */
    int64_t opset;
    int n_in;
    /* in[i] == NULL for an omitted input; the arrays a step hands over have
     * at least 8 entries, NULL past n_in (and past n_out below), so reading
     * in[1] of a one-input node gives NULL, never memory past the array */
    onr_tensor *const *in;
    int n_out;
    /* out[i] == NULL for an omitted output; out[0] is never NULL unless
     * the op is ONR_OP_OPT_OUT0 (onr_step_create refuses the node) */
    onr_tensor *const *out;
    void *scratch;          /* run: scratch_size bytes, 64-byte aligned (never NULL) */
    size_t scratch_size;
    int nthreads;
    onr_err *err;
    /* the run's cancel flag (onr_session_cancel, an atomic set from any
     * thread or a signal handler), NULL outside a plan: ops
     * that loop on data (Loop) check it every iteration */
    const _Atomic int *cancel;
} onr_kctx;

/* Whether the run has been cancelled: a kernel whose work the data can make
 * long polls it per row (or block) and stops early with "the run was
 * cancelled". */
static inline int onr_cancelled(const onr_kctx *ctx) { return ctx->cancel && *ctx->cancel; }

typedef int (*onr_create_fn)(onr_create_ctx *c, void *params);
typedef int (*onr_reshape_fn)(onr_kctx *ctx, size_t *scratch_bytes);
typedef int (*onr_run_fn)(const onr_kctx *ctx);
typedef void (*onr_destroy_fn)(void *params);
/* Make dst (zeroed params) another plan instance's copy of src, the params
 * of the template's step: the create-time state that runs only read
 * (packed weights, a subgraph's plan) is shared or made an instance of
 * (onr_plan_instance), the run-time state is dst's own. src's step may be
 * running meanwhile: read only what create wrote. destroy frees dst. */
typedef int (*onr_clone_fn)(void *dst, const void *src, onr_err *err);

/* Flags of a registry entry. */
enum {
    /* output 0 is input 0's data under another shape (Reshape, Squeeze, ...):
     * run is not called, the executor aliases the buffer */
    ONR_OP_VIEW = 1u << 0,
    /* output 0 may be written over an input of the same byte size whose
     * value dies at this step: element i of the output depends only on
     * element i of such an input (elementwise ops) */
    ONR_OP_INPLACE = 1u << 1,
    /* never evaluated at load even when every input is constant (random ops) */
    ONR_OP_NOFOLD = 1u << 2,
    /* the outputs' shapes are only known once run has computed them
     * (control flow: If's branch, Loop's and Scan's outputs). The memory
     * plan gives every output of such a step its own buffer
     * (ONR_MEM_OWNED), the executor allocates nothing for them before run,
     * and run sets each output's shape and buffer through onr_out_resize /
     * onr_out_grow -- the one exception to "run never allocates" (buffers
     * keep their capacity, so runs at repeated shapes allocate nothing).
     * reshape only validates; shape inference at load skips such steps and
     * the planner lays out their readers at the first run. */
    ONR_OP_DYNAMIC_OUT = 1u << 3,
    /* never a step: a planner pass replaces every node of the op with
     * other nodes before operators are resolved (Gradient, expanded by
     * plan/pass_gradient.c); the row has no functions, it claims the
     * opsets the pass handles and is listed like any other */
    ONR_OP_EXPANDED = 1u << 4,
    /* output 0 is optional in the specification (RNN, GRU, LSTM: Y). Every
     * other op's output 0 is required: onr_step_create refuses a node that
     * omits it (no output, or output 0 named ""), so no kernel is handed a
     * missing output 0. Later outputs are each op's to check. */
    ONR_OP_OPT_OUT0 = 1u << 5,
    /* create may be handed input 1 as a lazy float32 constant (ir.h: data
     * NULL, its bytes at ->lazy in the model's mapping, misaligned for
     * float): it reads it only with memcpy or unaligned loads, to pack it,
     * and consumes what it packed. The planner copies a lazy weight just
     * before create in every other case, and this one after create if
     * create left it unconsumed: weights packed straight from the mapping
     * are never copied (fresh memory is what load pays for most). */
    ONR_OP_LAZY_B = 1u << 6,
    /* run may be handed input 0 as a constant left in the model's mapping
     * (its data there, misaligned for its type: a lazy weight, ir.h, that
     * only such ops read, as their input 0, and no graph output): it reads
     * input 0 only with memcpy, and create never reads its data. An
     * embedding table that Gather reads a few rows of each run is then
     * never copied at load (GPT-2's 154 MB, BERT-base's 94 MB). */
    ONR_OP_LAZY_IN0 = 1u << 7,
};

typedef struct onr_op_impl {
    onr_create_fn create;   /* may be NULL: nothing to read or pack */
    onr_reshape_fn reshape;
    onr_run_fn run;         /* NULL only for ONR_OP_VIEW ops */
    onr_destroy_fn destroy; /* may be NULL */
    onr_clone_fn clone;     /* may be NULL: instances run create again (or
                               share consumed weights bytewise, see above) */
    size_t params_size;     /* bytes of the params struct (0: none) */
    uint32_t types;         /* bitmask (1u << dtype) of the main input types handled */
    unsigned flags;
    uint32_t shape_inputs;  /* bit i: reshape reads input i's values (Reshape's shape, ...) */
    /* may be NULL: with the step's params after reshape, the one input
     * output 0 may be written over (as ONR_OP_INPLACE allows any, for that
     * input only, and only when no other input of the step reads its
     * block), or -1; run then finds out[0]'s data equal to that input's
     * (FusedConv's residual, on the GEMM paths) */
    int (*inplace_input)(const void *params);
} onr_op_impl;

typedef struct onr_op {
    const char *domain; /* "" for ai.onnx */
    const char *name;
    int since, until;   /* opset range, inclusive */
    const onr_op_impl *impl;
} onr_op;

/* The fuzz harness only: unseeded random ops (RandomNormal, Bernoulli, ...
 * without a seed attribute) draw from this key and a count of their runs
 * instead of the clock, so a fixed-seed fuzz run is the same in every
 * process. 0 restores the clock. */
void onr_random_fix_unseeded(uint64_t key);

/* Registry lookup; NULL when no entry covers (domain, name, opset). */
const onr_op *onr_op_find(const char *domain, const char *name, int64_t opset);
/* Whether a row can be used (what onr_op_find returns): it has a kernel,
 * is a view op, or is an op the planner expands. */
int onr_op_runnable(const onr_op *op);
/* The newest opset the specification defines for a standard domain ("" or
 * "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training"); 0 for any other
 * domain (onnx-run's own, vendors': their rows alone decide). */
int onr_opset_newest(const char *domain);
/* Whole table, for `info --ops`. */
const onr_op *onr_op_table(int *count);

/* Declarations of every operator implementation, from ops.def. */
#define OP(domain, name, since, until, sym) extern const onr_op_impl onr_impl_##sym;
#include "ops/ops.def"
#undef OP

/* ---- type masks ---------------------------------------------------------- */
#define ONR_T(dt) (1u << (dt))
#define ONR_TYPES_FLOAT (ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_FLOAT16) | ONR_T(ONR_BFLOAT16))
#define ONR_TYPES_SINT (ONR_T(ONR_INT8) | ONR_T(ONR_INT16) | ONR_T(ONR_INT32) | ONR_T(ONR_INT64))
#define ONR_TYPES_UINT (ONR_T(ONR_UINT8) | ONR_T(ONR_UINT16) | ONR_T(ONR_UINT32) | ONR_T(ONR_UINT64))
#define ONR_TYPES_INT (ONR_TYPES_SINT | ONR_TYPES_UINT)
#define ONR_TYPES_NUM (ONR_TYPES_FLOAT | ONR_TYPES_INT)
#define ONR_TYPES_ALL (ONR_TYPES_NUM | ONR_T(ONR_BOOL) | ONR_T(ONR_STRING))

/* ---- helpers for create -------------------------------------------------- */

/* Mark constant input i as packed into params: run will not read its data. */
static inline void onr_create_consume(onr_create_ctx *c, int i)
{
    if (i >= 0 && i < 32) c->consumed |= 1u << i;
}
/* Constant input i, or NULL when it is not constant or omitted. */
static inline const onr_tensor *onr_create_const(const onr_create_ctx *c, int i)
{
    return c->konst && i >= 0 && i < c->n_in ? c->konst[i] : NULL;
}

/* ---- helpers for reshape ------------------------------------------------- */

/* Set output i's dtype and dims (checked against size limits). */
int onr_set_out(onr_kctx *ctx, int i, onr_dtype dt, int rank, const int64_t *dims);
/* Same shape and type as input j. */
int onr_set_out_like(onr_kctx *ctx, int i, int j);
/* Multidirectional (numpy) broadcast of the shapes of inputs [0..n); writes
 * the result to dims/rank or fails naming the clashing dims. */
int onr_broadcast_shape(onr_kctx *ctx, int n, const onr_tensor *const *ts, int64_t *dims,
                        int *rank);
/* Normalize a possibly negative axis against rank; error when out of range. */
int onr_norm_axis(onr_err *err, int64_t axis, int rank, int *out);
/* Require input i present with one of `types`; message names the input. */
int onr_check_input(onr_kctx *ctx, int i, uint32_t types);
/* Read an int64/int32 1-D input (its data must be known) into vals (max n). */
int onr_read_ints(onr_kctx *ctx, int i, int64_t *vals, int max, int *count);
/* Scalar-ish read of input i as double (first element) for any numeric type. */
int onr_read_scalar(onr_kctx *ctx, int i, double *v);

/* ---- helpers for run of ONR_OP_DYNAMIC_OUT ops ----------------------------- */

/* Set output i's dtype and dims and give it a buffer of that size (its
 * capacity is reused when large enough; contents are not kept). */
int onr_out_resize(const onr_kctx *ctx, int i, onr_dtype dt, int rank, const int64_t *dims);
/* Make output i's buffer hold at least `bytes`, keeping its first `keep`
 * bytes; grows geometrically so appending row by row stays linear. The
 * shape is not changed (set it with onr_tensor_set_shape once known). */
int onr_out_grow(const onr_kctx *ctx, int i, size_t bytes, size_t keep);

/* Element i of an array of type dt as double (bool as 0/1). */
double onr_load_f64(onr_dtype dt, const void *p, int64_t i);
/* Element i of any numeric tensor as double / store a double into any. */
double onr_get_f64(const onr_tensor *t, int64_t i);
void onr_set_f64(onr_tensor *t, int64_t i, double v);
/* A float-to-integer conversion defined for every double (a plain cast of
 * inf, NaN or an out-of-range value is undefined behaviour): v truncated
 * toward zero and clamped to [lo, hi] (to [0, hi]); NaN gives 0. Use it for
 * any float a model controls (attributes, inputs, computed coordinates). */
int64_t onr_f64_to_i64_sat(double v, int64_t lo, int64_t hi);
uint64_t onr_f64_to_u64_sat(double v, uint64_t hi);

/* v rounded to the precision of float type dt (what storing it in a dt
 * tensor keeps); other types: v unchanged. */
double onr_round_to(onr_dtype dt, double v);

/* Row-major strides of a shape (in elements). */
void onr_strides(const int64_t *dims, int rank, int64_t *strides);
/* Strides of an input of shape (dims, rank) broadcast to (odims, orank):
 * 0 along broadcast axes. */
void onr_bcast_strides(const int64_t *dims, int rank, const int64_t *odims, int orank,
                       int64_t *strides);

/* Minimum work (elements x cost) below which kernels stay serial. */
#define ONR_PAR_MIN 32768

/* fn(ctx, i) for i in [0, n): on nt threads (a static schedule; one
 * thread while the process is backed off, gemm/team.h) when par and
 * nt > 1, else inline on the calling thread. libgomp ends even a
 * region whose if() clause is false (a team of one) with a futex wake, a
 * system call (1.5 us a region on the project's VMs, 35-100 a run of a
 * small CNN at one thread), so loops that often run serially go through
 * this instead of `#pragma omp parallel for if (...)`. */
typedef void (*onr_par_fn)(void *ctx, int64_t i);
void onr_par_for(int64_t n, int nt, int par, onr_par_fn fn, void *ctx);

#define ONR_UNUSED(x) ((void)(x))

#endif
