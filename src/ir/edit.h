/*
 * edit.h - the planner's working copy of a graph and the helpers passes use
 * to edit it: consumer lists, removing nodes, rewiring a value's uses,
 * adding values and nodes.
 *
 * The copy shares the loaded graph's strings, attributes and constant
 * tensors (read-only) and owns only what passes add: new values, new nodes
 * and the constants folding computes. The loaded graph is never modified,
 * so the API keeps reporting the model as loaded.
 */
#ifndef ONR_EDIT_H
#define ONR_EDIT_H

#include "ir/ir.h"

typedef struct onr_edit {
    const onr_graph *src; /* the loaded graph */
    onr_graph *g;         /* the working copy */
    int cap_nodes;
    uint8_t *val_owned;   /* per value: bit 0 name, bit 1 konst owned by the copy */
    uint8_t *node_owned;  /* per node: ONR_NODE_* bits (0: the loaded node's) */
    uint8_t *dead;        /* per node: removed, dropped by onr_edit_compact */
    /* consumers of each value: node indices, a node listed once per input
     * slot that reads the value; rebuilt by onr_edit_index */
    int *cons_start, *cons;
    int cons_valid;
    /* nodes and values there were when the lists were last built: a stale
     * index still describes those (fusion passes read it so, see fuse.h) */
    int cons_n_nodes, cons_n_values;
    uint8_t *out_mark; /* per value (cons_n_values of them): a graph output */
} onr_edit;

/* val_owned bits; ONR_OWN_DIMS: the value's dim_names strings were set by a
 * pass (onr_edit_set_dim_names) and belong to the copy */
enum { ONR_OWN_NAME = 1, ONR_OWN_KONST = 2, ONR_OWN_DIMS = 4 };
/* node_owned bits: a node a pass added owns its strings and attributes;
 * a copy of a node (onr_edit_copy_node) owns its strings and shares the
 * attributes of the node it copies, read-only */
enum { ONR_NODE_OWNED = 1, ONR_NODE_SHARED_ATTRS = 2 };

/* Copy g (values, nodes, inputs, outputs) for editing. */
onr_status onr_edit_open(const onr_graph *g, onr_edit **out, onr_err *err);
void onr_edit_free(onr_edit *e);

/* Consumer lists (rebuilt when stale). */
onr_status onr_edit_index(onr_edit *e, onr_err *err);
int onr_edit_n_consumers(const onr_edit *e, int v);
const int *onr_edit_consumers(const onr_edit *e, int v);
/* Whether v is a graph output (from the index when it covers v). */
int onr_edit_is_output(const onr_edit *e, int v);
/* Whether a value is read by any live node or is a graph output. */
int onr_edit_value_used(const onr_edit *e, int v);

/* Mark node i removed (its outputs lose their producer). */
void onr_edit_remove_node(onr_edit *e, int i);
/* Every use of value `from` (node inputs and graph outputs) reads `to` instead. */
void onr_edit_replace_uses(onr_edit *e, int from, int to);
/* Set v's constant to t (taking ownership of t). */
void onr_edit_set_konst(onr_edit *e, int v, onr_tensor *t);
/* Set v's inferred shape: dtype, rank, dims (-1: symbolic) and the names of
 * its symbolic dims (names[d] copied, NULL: unnamed; names may be NULL).
 * Replaces what v had (declared names stay with the loaded graph). */
onr_status onr_edit_set_shape(onr_edit *e, int v, onr_dtype dt, int rank, const int64_t *dims,
                              const char *const *names, onr_err *err);
/* Append a value named `name` (copied); returns its index or -1. */
int onr_edit_add_value(onr_edit *e, const char *name, onr_err *err);
/* Append a node (strings copied, no attributes yet); returns its index or -1.
 * inputs/outputs are value indices (-1 = omitted). The node is placed at the
 * end; onr_edit_sort restores topological order. */
int onr_edit_add_node(onr_edit *e, const char *op_type, const char *domain, const char *name,
                      int n_in, const int *inputs, int n_out, const int *outputs,
                      onr_err *err);
/* Append a copy of node src (op type, domain, opset and attributes, which
 * stay shared with src) named `name` (copied), reading inputs and writing
 * outputs (src's counts of each; -1 = omitted). Returns its index or -1. */
int onr_edit_copy_node(onr_edit *e, int src, const char *name, const int *inputs,
                       const int *outputs, onr_err *err);
/* Attributes of a node a pass added (replacing one of the same name);
 * refused on a loaded node, which is shared with the loaded graph, and
 * on a copy, whose attributes are. */
onr_status onr_edit_set_attr_int(onr_edit *e, int node, const char *name, int64_t v, onr_err *err);
onr_status onr_edit_set_attr_float(onr_edit *e, int node, const char *name, float v, onr_err *err);
onr_status onr_edit_set_attr_string(onr_edit *e, int node, const char *name, const char *v,
                                    onr_err *err);
onr_status onr_edit_set_attr_ints(onr_edit *e, int node, const char *name, const int64_t *v,
                                  size_t n, onr_err *err);
onr_status onr_edit_set_attr_floats(onr_edit *e, int node, const char *name, const float *v,
                                    size_t n, onr_err *err);
/* Drop removed nodes and sort the rest topologically (Kahn, stable by index);
 * fails on a cycle naming a node on it. */
onr_status onr_edit_compact(onr_edit *e, onr_err *err);

#endif
