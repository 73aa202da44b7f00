/*
 * exec.c - runs single nodes; the plan executor builds on onr_exec_node's
 * pieces (shape -> prepare -> allocate -> run).
 */
#include "exec/exec.h"

#include <stdlib.h>
#include <string.h>

void onr_err_node(onr_err *err, const onr_node *node)
{
    onr_err_prefix(err, "node '%s' (%s%s%s, opset %lld): ", node->name ? node->name : "",
                   node->domain && *node->domain ? node->domain : "",
                   node->domain && *node->domain ? "." : "", node->op_type,
                   (long long)node->opset);
}

onr_status onr_exec_node(const onr_node *node, const onr_op *op, int64_t opset,
                         onr_tensor *const *in, int n_in, onr_tensor *const *out, int n_out,
                         int nthreads, onr_err *err)
{
    onr_kctx ctx = {.node = node, .opset = opset, .n_in = n_in, .in = in, .n_out = n_out,
                    .out = out, .nthreads = nthreads > 0 ? nthreads : 1, .err = err};
    const onr_op_impl *impl = op->impl;
    int st = impl->shape(&ctx);
    if (st == ONR_SHAPE_DEFER)
        return onr_seterr(err, ONR_E_RUNTIME, "output shape depends on an input not yet known");
    if (st) return (onr_status)st;
    size_t scratch = 0;
    if (impl->prepare && (st = impl->prepare(&ctx, &scratch)) != ONR_OK) goto done;
    for (int i = 0; i < n_out; i++) {
        if (!out[i]) continue;
        if (i == 0 && (impl->flags & ONR_OP_VIEW)) {
            if (out[i]->owns) free(out[i]->data);
            out[i]->data = in[0]->data;
            out[i]->owns = 0;
            out[i]->cap = 0;
        } else if ((st = onr_tensor_alloc(out[i], err)) != ONR_OK) {
            goto done;
        }
    }
    if (scratch) {
        if (posix_memalign(&ctx.scratch, 64, (scratch + 63) & ~(size_t)63) != 0) {
            ctx.scratch = NULL;
            st = onr_seterr(err, ONR_E_NOMEM, "out of memory for %zu bytes of scratch", scratch);
            goto done;
        }
        ctx.scratch_size = scratch;
    }
    st = impl->run(&ctx);
done:
    free(ctx.scratch);
    if (impl->free_state && ctx.state) impl->free_state(ctx.state);
    return (onr_status)st;
}
