/*
 * passes.h - the planner's graph passes. Each is a small function over the
 * working copy (ir/edit.h), in its own file, testable alone; the pipeline
 * runs them in a fixed order.
 */
#ifndef ONR_PASSES_H
#define ONR_PASSES_H

#include "ir/edit.h"

typedef struct onr_pass_opts {
    int fuse;     /* run the fusion passes */
    int nthreads; /* for kernels evaluated while folding */
} onr_pass_opts;

/* Identity, and Dropout in inference mode, are removed: their consumers
 * read the input instead (kept when the output is a graph output). */
onr_status onr_pass_identity(onr_edit *e, onr_err *err);
/* Static shape inference in topological order with each operator's
 * reshape; nodes whose inputs are all constant, and Shape/Size of a value
 * whose shape is static, are evaluated with the real kernel and become
 * constants. Chains such as Shape -> Gather -> Unsqueeze -> Concat ->
 * Reshape fold away when the shapes are static. */
onr_status onr_pass_fold(onr_edit *e, int nthreads, onr_err *err);
/* Nodes none of whose outputs is read (or is a graph output) are removed. */
onr_status onr_pass_dce(onr_edit *e, onr_err *err);

/* GELU written with Erf or Tanh and arithmetic (BERT, ViT, GPT-2 exports)
 * becomes Gelu (opset 20, approximate "none" or "tanh"); fuse_gelu.c. */
onr_status onr_pass_fuse_gelu(onr_edit *e, onr_err *err);
/* MatMul (+ per-column bias Add) (+ Relu/Gelu/Sigmoid/Clip), and Gemm +
 * activation, become FusedMatMul (org.onnxrun) with the bias and the
 * activation in the GEMM epilogue; fuse_gemm.c. */
onr_status onr_pass_fuse_gemm(onr_edit *e, onr_err *err);

/* The pipeline: fold, identity, DCE, then (when o->fuse) the fusions, and a
 * final topological compaction. Nodes must have their registry entries. */
onr_status onr_passes_run(onr_edit *e, const onr_pass_opts *o, onr_err *err);

/* Folded constants larger than this stay steps (they would cost memory). */
#define ONR_FOLD_MAX_BYTES (64u << 20)

#endif
