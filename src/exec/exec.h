/*
 * exec.h - running operators: one node on its own (tests, constant folding)
 * and a whole plan (the executor).
 */
#ifndef ONR_EXEC_H
#define ONR_EXEC_H

#include "ops/ops.h"

/* Run one node: shape, prepare, allocate outputs (or alias them for view
 * ops), run, release state. out[i] are caller-provided tensors that receive
 * shape and owned data (out[i] may be NULL for omitted optional outputs). */
onr_status onr_exec_node(const onr_node *node, const onr_op *op, int64_t opset,
                         onr_tensor *const *in, int n_in, onr_tensor *const *out, int n_out,
                         int nthreads, onr_err *err);

/* Prefix err with "node 'name' (Op, opset N): ". */
void onr_err_node(onr_err *err, const onr_node *node);

#endif
