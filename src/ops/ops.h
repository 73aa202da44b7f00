/*
 * ops.h - the operator interface: kernel context, registry entries and the
 * helpers every operator file shares.
 *
 * An operator is three functions over an onr_kctx:
 *   shape   - derive each output's dtype and dims from the inputs. Input data
 *             is available (non-NULL) only when it is known: constants at load
 *             time, everything at run time. A shape fn that needs data it
 *             does not have returns ONR_SHAPE_DEFER (not an error).
 *   prepare - optional, called once shapes are known and again when they
 *             change: choose a variant, prepack constant weights into
 *             ctx->state, and report the scratch bytes run needs.
 *   run     - compute into ctx->out[i]->data (already allocated to the shape
 *             the shape fn set) using ctx->scratch; never allocates.
 * Operators are listed once in ops.def; adding one touches its own file and
 * one line there.
 */
#ifndef ONR_OPS_H
#define ONR_OPS_H

#include "ir/ir.h"

#define ONR_OPSET_MAX 1000
/* Returned by a shape fn that needs input data not known yet. */
#define ONR_SHAPE_DEFER (-1)

typedef struct onr_kctx {
    const onr_node *node;
    int64_t opset;
    int n_in;
    onr_tensor *const *in; /* in[i] == NULL for an omitted optional input */
    const uint8_t *in_const; /* in_const[i] != 0: input i is a constant (initializer or
                                folded) whose data never changes; NULL = none known */
    int n_out;
    onr_tensor *const *out; /* out[i] == NULL for an omitted optional output */
    void *state;            /* owned by the op, set by prepare */
    void *scratch;          /* scratch_size bytes, 64-byte aligned */
    size_t scratch_size;
    int nthreads;
    onr_err *err;
} onr_kctx;

typedef int (*onr_shape_fn)(onr_kctx *ctx);
typedef int (*onr_prepare_fn)(onr_kctx *ctx, size_t *scratch_bytes);
typedef int (*onr_run_fn)(onr_kctx *ctx);
typedef void (*onr_free_fn)(void *state);

/* Flags of a registry entry. */
enum {
    ONR_OP_VIEW = 1u << 0, /* output 0 shares input 0's data (Reshape, Squeeze, ...) */
};

typedef struct onr_op_impl {
    onr_shape_fn shape;
    onr_prepare_fn prepare; /* may be NULL */
    onr_run_fn run;
    onr_free_fn free_state; /* may be NULL */
    uint32_t types;         /* bitmask (1u << dtype) of the main input types handled */
    unsigned flags;
} onr_op_impl;

typedef struct onr_op {
    const char *domain; /* "" for ai.onnx */
    const char *name;
    int since, until;   /* opset range, inclusive */
    const onr_op_impl *impl;
} onr_op;

/* Registry lookup; NULL when no entry covers (domain, name, opset). */
const onr_op *onr_op_find(const char *domain, const char *name, int64_t opset);
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

/* ---- helpers for shape fns --------------------------------------------- */

/* Set output i's dtype and dims (checked against size limits). */
int onr_set_out(onr_kctx *ctx, int i, onr_dtype dt, int rank, const int64_t *dims);
/* Same shape and type as input j. */
int onr_set_out_like(onr_kctx *ctx, int i, int j);
/* Multidirectional (numpy) broadcast of the shapes of inputs [0..n); writes
 * the result to dims/rank or fails naming the clashing dims. */
int onr_broadcast_shape(onr_kctx *ctx, int n, const onr_tensor *const *ts, int64_t *dims,
                        int *rank);
/* Normalize a possibly negative axis against rank; error when out of range. */
int onr_norm_axis(onr_kctx *ctx, int64_t axis, int rank, int *out);
/* Require input i present with one of `types`; message names the input. */
int onr_check_input(onr_kctx *ctx, int i, uint32_t types);
/* Read an int64/int32 1-D input (its data must be known) into vals (max n). */
int onr_read_ints(onr_kctx *ctx, int i, int64_t *vals, int max, int *count);
/* Scalar-ish read of input i as double (first element) for any numeric type. */
int onr_read_scalar(onr_kctx *ctx, int i, double *v);

/* Element i of an array of type dt as double (bool as 0/1). */
double onr_load_f64(onr_dtype dt, const void *p, int64_t i);
/* Element i of any numeric tensor as double / store a double into any. */
double onr_get_f64(const onr_tensor *t, int64_t i);
void onr_set_f64(onr_tensor *t, int64_t i, double v);

/* Row-major strides of a shape (in elements). */
void onr_strides(const int64_t *dims, int rank, int64_t *strides);
/* Strides of an input of shape (dims, rank) broadcast to (odims, orank):
 * 0 along broadcast axes. */
void onr_bcast_strides(const int64_t *dims, int rank, const int64_t *odims, int orank,
                       int64_t *strides);

/* Minimum work (elements x cost) below which kernels stay serial. */
#define ONR_PAR_MIN 32768

#define ONR_UNUSED(x) ((void)(x))

#endif
