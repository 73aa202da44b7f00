/*
 * ml.h - what the ai.onnx.ml operator files (ml.c, ml-tree.c,
 * ml-linear.c) share: the score post transforms, attribute readers and
 * the classifier label output.
 */
#ifndef ONR_OPS_ML_H
#define ONR_OPS_ML_H

#include "ops/ops.h"

/* post_transform, in the order of TreeEnsemble-5's integer encoding. */
enum { ML_PT_NONE, ML_PT_SOFTMAX, ML_PT_LOGISTIC, ML_PT_SOFTMAX_ZERO, ML_PT_PROBIT };

/* The post_transform string attribute (default NONE) into *pt; error
 * naming the attribute when it is not one of the five names. */
int ml_post_transform_attr(onr_create_ctx *c, int *pt);

/* Apply post transform pt to one row of n scores, in place, as the ONNX
 * reference implementation does: SOFTMAX over the row (max subtracted),
 * LOGISTIC per element (1/(1+e^-|v|), mirrored for v < 0), SOFTMAX_ZERO
 * (softmax leaving zero scores at zero; 0.5 everywhere when all are
 * zero), PROBIT per element (sqrt(2) * erfinv(2v - 1) with Winitzki's
 * approximation of erfinv, as the reference and onnxruntime use). */
void ml_post_transform(int pt, double *v, int64_t n);

/* Real-valued list attribute: `name` (FLOATS) or, when given,
 * `name`_as_tensor (a float or double TENSOR). *out is a new array (NULL
 * when absent), *n its length, *present whether either was given.
 * The error names the attribute. */
int ml_attr_reals(onr_create_ctx *c, const char *name, int with_tensor, double **out,
                  int64_t *n, int *present);
/* INTS attribute: pointer into the node (NULL, *n = 0 when absent). */
const int64_t *ml_attr_ints(onr_create_ctx *c, const char *name, int64_t *n);
/* STRINGS attribute: pointer into the node (NULL, *n = 0 when absent). */
char *const *ml_attr_strings(onr_create_ctx *c, const char *name, int64_t *n);

/* Class labels of a classifier: int64 (ints) or strings (strs, owned). */
typedef struct ml_labels {
    int64_t n;
    int is_string;
    int64_t *ints;
    char **strs;
} ml_labels;
/* Read the labels from attribute ints_name or strs_name (at most one may
 * be given; neither gives n = 0, int64). */
int ml_labels_read(onr_create_ctx *c, const char *ints_name, const char *strs_name, ml_labels *l);
void ml_labels_free(ml_labels *l);
/* Write label k of l (or `fallback` for the int / "" for strings when
 * k < 0) into element i of the label output y. */
int ml_label_store(const onr_kctx *ctx, const ml_labels *l, onr_tensor *y, int64_t i, int64_t k,
                   int64_t fallback);

/* Input X as a matrix: [N, C] (rank 2) or [C] (rank 1, one row); error
 * otherwise. */
int ml_input_matrix(onr_kctx *ctx, int i, int64_t *rows, int64_t *cols);

#endif
