/*
 * ops_info.c - the public view of the operator registry, for tools that list
 * what this build supports (`onnx-run info --ops`, the README's table).
 */
#include "onnxrun.h"
#include "ops/ops.h"

int onr_op_count(void)
{
    int n, k = 0;
    const onr_op *t = onr_op_table(&n);
    for (int i = 0; i < n; i++) k += onr_op_runnable(&t[i]);
    return k;
}

const char *onr_op_info(int i, const char **domain, int *since, int *until)
{
    int n;
    const onr_op *t = onr_op_table(&n);
    for (int r = 0; r < n && i >= 0; r++) {
        if (!onr_op_runnable(&t[r])) continue;
        if (i-- > 0) continue;
        if (domain) *domain = t[r].domain;
        if (since) *since = t[r].since;
        if (until) *until = t[r].until >= ONR_OPSET_MAX ? -1 : t[r].until;
        return t[r].name;
    }
    return NULL;
}
