/*
 * fuse.h - what every fusion pass shares: looking at the working copy
 * (producers, consumers, constants, static shapes) and replacing a matched
 * set of nodes with one fused node that records what it replaced.
 *
 * A fusion pass (one file per pattern family, src/plan/fuse_*.c) walks the
 * nodes, matches its pattern backwards from an anchor node, checks that
 * every value inside the pattern is read only inside it (onr_fuse_closed),
 * and calls onr_fuse_emit. The fused node writes the pattern's output
 * value(s) (same value indices, so consumers need no rewiring); the
 * replaced nodes are removed; values that fed only the pattern become dead
 * and DCE/compaction drop them. A pass must leave the graph as it found it
 * when a match fails half-way (check first, edit last).
 *
 * Fused ops are standard ai.onnx operators where ONNX has one (emitted at
 * the opset that defines them, whatever the model imports) and the
 * project's domain ONR_FUSE_DOMAIN otherwise.
 */
#ifndef ONR_FUSE_H
#define ONR_FUSE_H

#include "ir/edit.h"
#include "ops/ops.h"

/* The project's operator domain, for fused ops ONNX has no operator for
 * (SkipLayerNormalization, GEMM and Conv with epilogues). Opset 1. */
#define ONR_FUSE_DOMAIN "org.onnxrun"

/* ---- driving a pass -------------------------------------------------------- */

/* A pattern matcher tried at every live node: returns 1 when it fused at
 * that node, 0 when not, -1 on error (err set). */
typedef int (*onr_fuse_match_fn)(onr_edit *e, int node, void *ctx, onr_err *err);
/* Try fn at every node, in sweeps: the consumer index is built once per
 * sweep and the helpers below answer conservatively (no sole consumer, not
 * closed) about values whose consumers changed in this sweep, so a pattern
 * that overlaps a fusion made earlier in the sweep waits for the next one.
 * Sweeps repeat while something fused; the cost is linear per sweep. */
onr_status onr_fuse_sweep(onr_edit *e, onr_fuse_match_fn fn, void *ctx, onr_err *err);

/* ---- looking ------------------------------------------------------------ */

/* The live node producing value v, or -1 (graph input, constant, none). */
int onr_fuse_producer(const onr_edit *e, int v);
/* Node i is live, in the ai.onnx domain and of type op_type. */
int onr_fuse_is(const onr_edit *e, int i, const char *op_type);
/* The producer of v when it is an ai.onnx op_type node, else -1. */
int onr_fuse_src(const onr_edit *e, int v, const char *op_type);
/* The only consumer of v (a node reading it in one or more slots), or -1
 * when v has none, several, is a graph output, or its consumers changed
 * since the index was built. */
int onr_fuse_sole_consumer(const onr_edit *e, int v);
/* The constant tensor of v with its data, or NULL (a lazy weight is copied
 * into memory here: ir.h). */
const onr_tensor *onr_fuse_const(const onr_edit *e, int v);
/* v is a constant (its data possibly still lazy): for checks that read no
 * data, so that a weight create will pack is not copied for them. */
int onr_fuse_is_const(const onr_edit *e, int v);
/* The constant tensor of v for its dtype and shape, its data not read (a
 * lazy weight stays in the mapping), or NULL when v is no constant. */
const onr_tensor *onr_fuse_const_desc(const onr_edit *e, int v);
/* The bytes of constant v: its data, or a lazy weight's place in the
 * mapping (any alignment: read it with memcpy), or NULL. */
const void *onr_fuse_const_bytes(const onr_edit *e, int v);
/* v is a constant holding one element (any rank, every dim 1) of a float
 * or integer type; its value as double. */
int onr_fuse_const_scalar(const onr_edit *e, int v, double *x);
/* v is a constant whose every element equals x within tol (any numeric
 * type, any shape with at least one element). */
int onr_fuse_const_all(const onr_edit *e, int v, double x, double tol);
/* v's shape from shape inference (static, and symbolic by probing:
 * pass_shapes.c): rank, or -1 when unknown; dims copied (a dim is -1 when
 * symbolic: never a size to compute with; its name, when known, is in
 * values[v].dim_names: compare dims with onr_fuse_dim_eq). */
int onr_fuse_shape(const onr_edit *e, int v, int64_t *dims);
/* Dim du of value u equals dim dv of value v: both static and equal, or
 * both symbolic with the same name (symbolic shape inference names them,
 * pass_shapes.c: equal names are equal dims; unnamed ones equal nothing). */
int onr_fuse_dim_eq(const onr_edit *e, int u, int du, int v, int dv);
/* v's element type (ONR_UNDEFINED when unknown). */
onr_dtype onr_fuse_dtype(const onr_edit *e, int v);
/* For a two-input node, the input slot that is not v (-1 when neither or
 * both slots read v). */
int onr_fuse_other_slot(const onr_node *n, int v);

/* Number of live consumer slots of v, or -1 when unknown (its consumers
 * changed since the index was built). */
int onr_fuse_n_uses(const onr_edit *e, int v);
/* Every output of nodes[0..n), except the values listed in keep (the
 * pattern's results), is read only by nodes of the set and is no graph
 * output; every node is live and appears once (conservative like
 * onr_fuse_sole_consumer). */
int onr_fuse_closed(const onr_edit *e, const int *nodes, int n, const int *keep, int n_keep);

/* ---- editing ------------------------------------------------------------- */

/* Add the fused node (op_type in domain at opset; the registry must have
 * it), inputs/outputs as value indices (-1: omitted), then remove
 * replaced[0..n_replaced) and record them (flattened when one was itself
 * fused) as the new node's fused_from. The node is named after the last
 * replaced node. Attributes are set afterwards with onr_edit_set_attr_*.
 * Returns the new node's index, or -1 with err set. */
int onr_fuse_emit(onr_edit *e, const char *op_type, const char *domain, int64_t opset,
                  int n_in, const int *inputs, int n_out, const int *outputs,
                  const int *replaced, int n_replaced, onr_err *err);
/* A new constant value holding t (ownership taken), named after `hint`
 * (made unique). Returns its index or -1. */
int onr_fuse_add_const(onr_edit *e, const char *hint, onr_tensor *t, onr_err *err);
/* A new value for an intermediate result of a fused node (e.g. a second
 * output), named after `hint`. Returns its index or -1. */
int onr_fuse_add_value(onr_edit *e, const char *hint, onr_err *err);
/* Set v's inferred float type/rank/dims directly (dims may hold -1). */
void onr_fuse_set_meta(onr_edit *e, int v, onr_dtype dt, int rank, const int64_t *dims);
/* A view Reshape (opset 14) of x to shape (rank dims, -1 allowed) named
 * `name`, writing out (-1: a new float value with those dims); returns the
 * output value or -1 (err set). */
int onr_fuse_add_reshape(onr_edit *e, const char *name, int x, const int64_t *shape, int rank, int out,
                         onr_err *err);

#endif
