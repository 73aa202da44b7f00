/*
 * kutil.h - helpers for kernel unit tests: build a node with attributes,
 * make tensors from literals, run one operator through the registry, and
 * compare results.
 */
#ifndef ONR_KUTIL_H
#define ONR_KUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "exec/exec.h"
#include "ops/ops.h"

/* A node of op_type in the default domain; add attributes, then run it. */
onr_node *tk_node(const char *op_type);
void tk_node_free(onr_node *n);
void tk_attr_int(onr_node *n, const char *name, int64_t v);
void tk_attr_float(onr_node *n, const char *name, float v);
void tk_attr_string(onr_node *n, const char *name, const char *v);
void tk_attr_ints(onr_node *n, const char *name, int count, const int64_t *v);
void tk_attr_floats(onr_node *n, const char *name, int count, const float *v);
/* Takes ownership of t. */
void tk_attr_tensor(onr_node *n, const char *name, onr_tensor *t);

/* Tensors from literal values (copied). rank 0 = scalar (dims may be NULL). */
onr_tensor *tk_f32(int rank, const int64_t *dims, const float *vals);
onr_tensor *tk_i64(int rank, const int64_t *dims, const int64_t *vals);
onr_tensor *tk_i32(int rank, const int64_t *dims, const int32_t *vals);
onr_tensor *tk_bool(int rank, const int64_t *dims, const uint8_t *vals);
onr_tensor *tk_typed(onr_dtype dt, int rank, const int64_t *dims, const void *vals);
/* Deterministic pseudo-random floats in [-1, 1). */
onr_tensor *tk_rand_f32(int rank, const int64_t *dims, uint32_t seed);

/* Run n at opset with inputs (NULL entries = omitted). Fills out[0..n_out)
 * with new tensors (caller frees with tk_free_all). Returns the status; on
 * failure the message is in err (if err != NULL). */
onr_status tk_run(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int n_out,
                  onr_tensor **out, int nthreads, onr_err *err);
/* The same with the inputs whose bit is set in const_mask given as constants
 * (weights): create sees them and may prepack them, as in a model. */
onr_status tk_run_const(onr_node *n, int64_t opset, int n_in, onr_tensor **in,
                        uint32_t const_mask, int n_out, onr_tensor **out, int nthreads,
                        onr_err *err);
/* The inputs the last tk_run/tk_run_const's create packed (consumed). */
extern uint32_t tk_last_consumed;
void tk_free_all(int n, onr_tensor **ts);
/* Run a one-output node and expect success (fails the test with the
 * engine's message otherwise); the caller frees the result. */
onr_tensor *tk_run1(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int nthreads);
/* Run n (at most 8 outputs) and expect status `code` with a message
 * containing `needle` (any message when NULL); frees whatever was made. */
void tk_expect_fail(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int n_out,
                    onr_status code, const char *needle);

/* Assertions: shape equal and every element within atol + rtol*|expected|. */
void tk_assert_shape(const onr_tensor *t, int rank, const int64_t *dims);
void tk_assert_close_f32(const onr_tensor *t, const float *expected, int64_t n, float rtol,
                         float atol);
void tk_assert_eq_i64(const onr_tensor *t, const int64_t *expected, int64_t n);

/* ---- fusions: fused vs unfused ------------------------------------------ */

/* What tk_fuse_check saw. */
typedef struct tk_fuse_report {
    int steps_fused, steps_unfused; /* plan lengths with and without fusion */
    int n_op;      /* steps of the fused plan whose op type is `op` */
    int n_fused;   /* of those, steps a fusion made (not loaded as such) */
    int replaced;  /* loaded nodes those fused steps stand for, in all */
} tk_fuse_report;

/* Open the serialized model twice (fusion on and off), run both on the
 * inputs (bound positionally to the graph inputs) with nthreads, and check
 * every output: same dtype and shape, float elements within atol +
 * rtol*|unfused| (NaN where NaN), others equal. Fills *r, counting steps
 * of op type `op` (any domain; NULL counts nothing). Fails the test on any
 * load/run error or difference. */
void tk_fuse_check(const void *model, size_t len, int n_in, onr_tensor *const *in,
                   const char *op, float rtol, float atol, int nthreads, tk_fuse_report *r);
/* Steps of a session's plan whose op type is op. */
int tk_count_steps(const struct onr_session *s, const char *op);

/* Sweeps that run each op in a child process (test_op_arity.c,
 * test_op_attrs_hostile.c). In the child: the default signal actions
 * (cmocka's handlers would report a crash as a test of their own), stdout
 * to /dev/null, and SIGALRM after alarm_s seconds (a hang ends like a
 * crash). In the parent: one line for a child that ended with wait status
 * ws, appended to report (cap bytes, *used so far): the op, how it ended
 * and where. Returns whether the child failed. */
void tk_child_setup(unsigned alarm_s);
int tk_child_report(char *report, size_t cap, size_t *used, const char *domain, const char *op,
                    int since, int ws, const char *where);
/* The end of such a sweep: the count line, then the report and a failure
 * when any child failed. */
void tk_child_finish(int tried, const char *what, int bad, const char *report);

#endif
