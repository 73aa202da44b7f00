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

/* Gradient nodes (ai.onnx.preview.training, opset 1) are replaced by the
 * forward sub-graph they differentiate (copied where their inputs differ
 * from the named tensors), a seed of ones and backward nodes: standard
 * operators plus SumToShape (org.onnxrun); see pass_gradient.c. Runs on
 * the loaded graph's copy before operators are resolved and before any
 * other pass (folding would turn the weights' sub-graph into constants).
 * Refuses, naming the Gradient node, an operator on the path with no
 * gradient, a value y depends on that is neither in xs, zs nor constant,
 * names that are not values of the graph, and second-order gradients. */
onr_status onr_pass_gradient(onr_edit *e, onr_err *err);
/* Identity, Dropout in inference mode, and a SumToShape whose input has
 * the output's static shape are removed: their consumers read the input
 * instead (kept when the output is a graph output). */
onr_status onr_pass_identity(onr_edit *e, onr_err *err);
/* Static shape inference in topological order with each operator's
 * reshape; nodes whose inputs are all constant, and Shape/Size of a value
 * whose shape is static, are evaluated with the real kernel and become
 * constants. Chains such as Shape -> Gather -> Unsqueeze -> Concat ->
 * Reshape fold away when the shapes are static. */
onr_status onr_pass_fold(onr_edit *e, int nthreads, onr_err *err);
/* Nodes none of whose outputs is read (or is a graph output) are removed. */
onr_status onr_pass_dce(onr_edit *e, onr_err *err);
/* Symbolic shape inference (pass_shapes.c): the values static inference
 * left without a shape because of symbolic graph-input dims get their rank,
 * type and dims (-1 where symbolic) by probing: the graph is walked twice
 * with distinct values for the symbols, small shape computations (Shape ->
 * Gather -> Concat ...) evaluated with the real kernels; dims that differ
 * between the runs are symbolic and named when recognized ("batch",
 * "batch*seq", "seq+1"), so equal names mean equal dims. Folds nothing,
 * never fails on what a probe cannot shape (left unknown). */
onr_status onr_pass_shapes(onr_edit *e, int nthreads, onr_err *err);

/* Convolution fusions (fuse_conv.c): BatchNormalization after a Conv or
 * ConvTranspose folded into its weights and bias, constant per-channel Adds
 * folded into the bias, and float32 Conv + residual Add + activation
 * (Relu, Clip, Sigmoid, SiLU, HardSigmoid, HardSwish, LeakyRelu) made one
 * FusedConv (org.onnxrun). */
onr_status onr_pass_fuse_conv(onr_edit *e, onr_err *err);
/* Fusions (fuse_norm.c): a decomposed LayerNorm (ReduceMean, Sub, Pow,
 * ReduceMean, Add eps, Sqrt, Div or Reciprocal+Mul, optional Mul gamma and
 * Add beta) becomes LayerNormalization-17; Add -> LayerNormalization over
 * the last axis becomes SkipLayerNormalization (org.onnxrun), absorbing a
 * bias Add before it. */
onr_status onr_pass_fuse_layernorm(onr_edit *e, onr_err *err);
onr_status onr_pass_fuse_skip_layernorm(onr_edit *e, onr_err *err);
onr_status onr_pass_fuse_channel_layernorm(onr_edit *e, onr_err *err);
/* RMS normalization chains (Pow/ReduceMean/Add/Sqrt/Reciprocal/Mul/Mul,
 * with HF llama's Casts) -> RMSNormalization (opset 23); fuse_rmsnorm.c. */
onr_status onr_pass_fuse_rmsnorm(onr_edit *e, onr_err *err);
/* HF llama's apply_rotary_pos_emb (q * cos + rotate_half(q) * sin) with
 * cos/sin from constant caches -> RotaryEmbedding (opset 23); fuse_rotary.c. */
onr_status onr_pass_fuse_rotary(onr_edit *e, onr_err *err);
/* Attention subgraphs (Q.K^T, scale, mask, Softmax, .V, with the head
 * split and merge around them) become ai.onnx Attention (opset 23); see
 * fuse_attention.c for the patterns. Does nothing without the kernel. */
onr_status onr_pass_fuse_attention(onr_edit *e, onr_err *err);

/* GELU written with Erf or Tanh and arithmetic (BERT, ViT, GPT-2 exports)
 * becomes Gelu (opset 20, approximate "none" or "tanh"); fuse_gelu.c. */
onr_status onr_pass_fuse_gelu(onr_edit *e, onr_err *err);
/* MatMul (+ per-column bias Add) (+ Relu/Gelu/Sigmoid/Clip), and Gemm +
 * activation, become FusedMatMul (org.onnxrun) with the bias and the
 * activation in the GEMM epilogue; fuse_gemm.c. */
onr_status onr_pass_fuse_gemm(onr_edit *e, onr_err *err);
/* An Attention whose Q, K and V are three projections of one input, or the
 * three parts of one Split on the last axis, reads them packed in one
 * tensor (org.onnxrun Attention, qkv_sizes): the projections become one
 * FusedMatMul; fuse_qkv.c. Runs after fuse_gemm. */
onr_status onr_pass_fuse_qkv(onr_edit *e, onr_err *err);

/* What the pipeline did (for `info --plan`). */
typedef struct onr_pass_stats {
    int nodes_unfused; /* live nodes after folding and DCE, before the fusions */
} onr_pass_stats;

/* The pipeline: fold, identity, DCE, then (when o->fuse) symbolic shapes
 * and the fusions, and a final topological compaction. Nodes must have
 * their registry entries. stats may be NULL. */
onr_status onr_passes_run(onr_edit *e, const onr_pass_opts *o, onr_pass_stats *stats,
                          onr_err *err);

/* Folded constants larger than this stay steps (they would cost memory). */
#define ONR_FOLD_MAX_BYTES (64u << 20)

#endif
