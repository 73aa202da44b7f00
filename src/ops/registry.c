/*
 * registry.c - the operator table, generated from ops.def, and its lookup.
 */
#include <string.h>

#include "ops/ops.h"

static const onr_op op_table[] = {
#define OP(domain, name, since, until, sym) {domain, name, since, until, &onr_impl_##sym},
#include "ops/ops.def"
#undef OP
    {NULL, NULL, 0, 0, NULL}};

static int is_onnx_domain(const char *d) { return !d || !*d || strcmp(d, "ai.onnx") == 0; }

int onr_opset_newest(const char *domain)
{
    if (is_onnx_domain(domain)) return ONR_OPSET_ONNX_NEWEST;
    if (strcmp(domain, "ai.onnx.ml") == 0) return ONR_OPSET_ML_NEWEST;
    if (strcmp(domain, "ai.onnx.preview.training") == 0) return ONR_OPSET_TRAINING_NEWEST;
    return 0;
}

int onr_op_runnable(const onr_op *op)
{
    return op->impl && (op->impl->run || (op->impl->flags & (ONR_OP_VIEW | ONR_OP_EXPANDED)));
}

const onr_op *onr_op_find(const char *domain, const char *name, int64_t opset)
{
    /* an opset the specification does not define yet: its operators'
     * semantics are unknown, so nothing runs there (rows end at
     * ONR_OPSET_MAX meaning "to the newest") */
    int newest = onr_opset_newest(domain);
    if (newest > 0 && opset > newest) return NULL;
    for (const onr_op *op = op_table; op->name; op++) {
        int same_domain = is_onnx_domain(domain) ? is_onnx_domain(op->domain)
                                                 : (domain && strcmp(domain, op->domain) == 0);
        if (same_domain && strcmp(op->name, name) == 0 && opset >= op->since &&
            opset <= op->until && onr_op_runnable(op))
            return op;
    }
    return NULL;
}

const onr_op *onr_op_table(int *count)
{
    *count = (int)(sizeof op_table / sizeof op_table[0]) - 1;
    return op_table;
}
