/*
 * exec.c - running a single node from scratch (constant folding, kernel
 * tests) through the step sequence of step.c.
 */
#include "exec/exec.h"

#include <stdlib.h>
#include <string.h>

onr_status onr_exec_node(const onr_node *node, const onr_op *op, int64_t opset,
                         onr_tensor *const *in, int n_in, const uint8_t *in_const,
                         onr_tensor *const *out, int n_out, int nthreads, uint32_t *consumed,
                         onr_err *err)
{
    onr_step s;
    void *scratch = NULL;
    onr_tensor *metas = NULL; /* shape-only stand-ins for the inputs create packed */
    nthreads = nthreads > 0 ? nthreads : 1;
    int st = onr_step_init(&s, node, op, n_in, n_out, err);
    if (st) return (onr_status)st;
    s.opset = opset;
    for (int k = 0; k < n_in; k++) {
        s.in[k] = in[k];
        s.in_const[k] = in_const ? in_const[k] : 0;
    }
    for (int o = 0; o < n_out; o++) s.out[o] = out[o];
    if ((st = onr_step_create(&s, nthreads, err))) goto done;
    if (consumed) *consumed = s.consumed;
    /* run must not read what create packed: show it the shape only */
    if (s.consumed) {
        if (!(metas = calloc((size_t)n_in + 1, sizeof *metas))) {
            st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
            goto done;
        }
        for (int k = 0; k < n_in && k < 32; k++) {
            if (!(s.consumed >> k & 1u) || !in[k]) continue;
            metas[k] = *in[k];
            metas[k].data = NULL;
            metas[k].owns = 0;
            s.in[k] = &metas[k];
        }
    }
    st = onr_step_reshape(&s, nthreads, NULL, err);
    if (st == ONR_SHAPE_DEFER) {
        st = onr_seterr(err, ONR_E_RUNTIME, "output shape depends on an input not yet known");
        goto done;
    }
    if (st) goto done;
    for (int i = 0; i < n_out; i++) {
        if (!out[i]) continue;
        if (i == 0 && (op->impl->flags & ONR_OP_VIEW)) {
            if (out[i]->owns) free(out[i]->data);
            out[i]->data = in[0]->data;
            out[i]->owns = 0;
            out[i]->cap = 0;
        } else if ((st = onr_tensor_alloc(out[i], err)) != ONR_OK) {
            goto done;
        }
    }
    if (s.scratch) {
        if (posix_memalign(&scratch, 64, (s.scratch + 63) & ~(size_t)63) != 0) {
            scratch = NULL;
            st = onr_seterr(err, ONR_E_NOMEM, "out of memory for %zu bytes of scratch", s.scratch);
            goto done;
        }
    }
    st = onr_step_run(&s, scratch, nthreads, err);
done:
    free(scratch);
    free(metas);
    onr_step_destroy(&s);
    return (onr_status)st;
}
