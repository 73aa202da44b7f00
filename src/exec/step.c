/*
 * step.c - one operator instance through its lifecycle: create once,
 * reshape when its input shapes (or the values of its shape inputs)
 * change, run. Whole plans, constant folding and the kernel tests all use
 * these functions, so a kernel test exercises the same prepacking a model
 * does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/exec.h"
#include "gemm/gemm.h"
#include "ir/budget.h"

/* Shape inputs with at most this many values are keyed on their values;
 * larger ones (NonZero's data, ...) make the step reshape on every run. */
#define KEY_MAX_VALUES 16

void onr_err_node(onr_err *err, const onr_node *node)
{
    onr_err_prefix(err, "node '%s' (%s%s%s, opset %lld): ", node->name ? node->name : "",
                   node->domain && *node->domain ? node->domain : "",
                   node->domain && *node->domain ? "." : "", node->op_type,
                   (long long)node->opset);
}

static int shape_input(const onr_op_impl *impl, int k)
{
    return k < 32 && (impl->shape_inputs >> k & 1u);
}

enum { ONR_STEP_MIN_SLOTS = 8 };

onr_status onr_step_init(onr_step *s, const onr_node *node, const onr_op *op, int n_in,
                         int n_out, onr_err *err)
{
    memset(s, 0, sizeof *s);
    s->op = op;
    s->out0_rank = -1; /* no static shape hint unless the planner sets one */
    s->in0_rank = -1;
    s->node = node;
    s->opset = node->opset;
    s->n_in = n_in;
    s->n_out = n_out;
    int vals = 0;
    for (int k = 0; k < n_in; k++)
        if (shape_input(op->impl, k)) vals += 1 + KEY_MAX_VALUES;
    s->key_len = n_in * (2 + ONR_MAX_RANK) + vals;
    /* at least ONR_STEP_MIN_SLOTS entries, the ones past n_in / n_out NULL:
     * a kernel that reads in[1] of a node given one input (before checking
     * n_in) reads a missing input, not past the array */
    size_t ni = (size_t)(n_in > ONR_STEP_MIN_SLOTS ? n_in : ONR_STEP_MIN_SLOTS) + 1;
    size_t no = (size_t)(n_out > ONR_STEP_MIN_SLOTS ? n_out : ONR_STEP_MIN_SLOTS) + 1;
    s->in = calloc(ni, sizeof *s->in);
    s->out = calloc(no, sizeof *s->out);
    s->in_const = calloc(ni, 1);
    s->key = calloc(2 * (size_t)s->key_len + 1, sizeof *s->key); /* last key, then a work copy */
    if (op->impl->params_size) s->params = calloc(1, op->impl->params_size);
    if (!s->in || !s->out || !s->in_const || !s->key || (op->impl->params_size && !s->params)) {
        onr_step_destroy(s);
        return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    }
    return ONR_OK;
}

onr_status onr_step_create(onr_step *s, int nthreads, onr_err *err)
{
    const onr_op_impl *impl = s->op->impl;
    if (!(impl->flags & ONR_OP_OPT_OUT0) && (s->n_out < 1 || !s->out[0]))
        return onr_seterr(err, ONR_E_MODEL, "output 0 is required, but the node %s",
                          s->n_out < 1 ? "has no outputs" : "omits it (its name is \"\")");
    s->created = 1;
    if (!impl->create) return ONR_OK;
    const onr_tensor **konst = calloc((size_t)s->n_in + 1, sizeof *konst);
    if (!konst) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    for (int k = 0; k < s->n_in; k++)
        if (s->in[k] && s->in_const[k]) konst[k] = s->in[k];
    onr_create_ctx c = {.node = s->node, .opset = s->opset, .n_in = s->n_in, .n_out = s->n_out,
                        .konst = konst, .nthreads = nthreads, .err = err,
                        .no_fuse = s->no_fuse, .budget = s->budget,
                        .out0_rank = s->out0_rank, .out0_dims = s->out0_dims,
                        .in0_rank = s->in0_rank, .in0_dims = s->in0_dims,
                        .in0_dtype = s->in0_dtype, .fixed_shapes = s->fixed_shapes};
    onr_attr_check_state outer = onr_attr_check_begin(); /* a wrong-typed attribute is an error, never a default */
    int st = impl->create(&c, s->params);
    onr_err bad = {0};
    if (onr_attr_check_end(&bad, outer)) { /* the first cause, before what followed from it */
        *err = bad;
        st = bad.code;
    }
    free(konst);
    s->held = c.held; /* given back by destroy, which follows a failed create too */
    s->consumed = c.consumed;
    /* the packed state other plan instances start from (onr_step_create_like) */
    if (!st && s->consumed && impl->params_size) {
        if (!(s->params0 = malloc(impl->params_size)))
            return onr_seterr(err, ONR_E_NOMEM, "out of memory");
        memcpy(s->params0, s->params, impl->params_size);
    }
    return (onr_status)st;
}

int onr_create_hold(onr_create_ctx *c, const char *what, uint64_t bytes)
{
    if (!c->budget || bytes == 0) return ONR_OK;
    char subject[96];
    snprintf(subject, sizeof subject, "its %s", what ? what : "buffers"); /* the caller prefixes the node */
    int st = onr_budget_take_as(c->budget, subject, bytes, c->err);
    if (!st) c->held += bytes;
    return st;
}

onr_status onr_step_create_like(onr_step *dst, const onr_step *src, int nthreads, onr_err *err)
{
    const onr_op_impl *impl = src->op->impl;
    dst->out0_rank = src->out0_rank; /* create's hint, as the template had it */
    memcpy(dst->out0_dims, src->out0_dims, sizeof dst->out0_dims);
    dst->in0_rank = src->in0_rank;
    memcpy(dst->in0_dims, src->in0_dims, sizeof dst->in0_dims);
    dst->in0_dtype = src->in0_dtype;
    dst->fixed_shapes = src->fixed_shapes;
    if (impl->clone && src->created) { /* made from the template's params (ops.h) */
        dst->created = 1;
        dst->consumed = src->consumed;
        return (onr_status)impl->clone(dst->params, src->params, err);
    }
    if (!src->consumed) return onr_step_create(dst, nthreads, err);
    /* src's constants were packed and may be released: share the packed
     * state. The ops that consume keep reshape's results in plain fields
     * and never allocate outside create (see ops.h). */
    dst->created = 1;
    dst->shared_params = 1;
    dst->consumed = src->consumed;
    if (src->op->impl->params_size) memcpy(dst->params, src->params0, src->op->impl->params_size);
    return ONR_OK;
}

/* Write the step's current key into key[]; 1 when a shape input is too
 * large to key on its values. */
static int make_key(const onr_step *s, int64_t *key)
{
    const onr_op_impl *impl = s->op->impl;
    int j = 0, big = 0;
    for (int k = 0; k < s->n_in; k++) {
        const onr_tensor *t = s->in[k];
        key[j++] = t ? (int64_t)t->dtype | (int64_t)t->kind << 8 : -1;
        key[j++] = t ? t->rank : -1;
        for (int d = 0; d < ONR_MAX_RANK; d++) key[j++] = t && d < t->rank ? t->dims[d] : 0;
    }
    for (int k = 0; k < s->n_in; k++) {
        if (!shape_input(impl, k)) continue;
        const onr_tensor *t = s->in[k];
        int64_t n = t && t->data && !s->in_const[k] ? t->numel : 0;
        if (n > KEY_MAX_VALUES || (t && t->dtype == ONR_STRING)) {
            big = 1;
            n = 0;
        }
        key[j++] = n;
        for (int64_t i = 0; i < KEY_MAX_VALUES; i++) {
            double v = i < n ? onr_get_f64(t, i) : 0;
            int64_t bits;
            memcpy(&bits, &v, sizeof bits);
            key[j++] = bits;
        }
    }
    return big;
}

int onr_step_reshape(onr_step *s, int nthreads, int *changed, onr_err *err)
{
    const onr_op_impl *impl = s->op->impl;
    if (changed) *changed = 0;
    int64_t *key = s->key + s->key_len;
    int big = make_key(s, key);
    int diff = !s->shaped || big || s->always_reshape ||
               memcmp(key, s->key, sizeof(int64_t) * (size_t)s->key_len) != 0;
    if (!diff) return ONR_OK;
    onr_kctx ctx = {.params = s->params, .opset = s->opset, .n_in = s->n_in, .in = s->in,
                    .n_out = s->n_out, .out = s->out, .nthreads = nthreads, .err = err};
    size_t scratch = 0;
    s->n_reshape++;
    int st = impl->reshape(&ctx, &scratch);
    if (!st) s->scratch = scratch;
    if (st) {
        s->shaped = 0;
        return st;
    }
    memcpy(s->key, key, sizeof(int64_t) * (size_t)s->key_len);
    s->always_reshape = big;
    s->shaped = 1;
    if (changed) *changed = diff;
    return ONR_OK;
}

onr_status onr_step_run(onr_step *s, void *scratch, int nthreads, onr_err *err)
{
    /* A step that asked for no scratch still gets a valid pointer: kernels
     * carve scratch by sizes that may all be 0 (an empty batch), and
     * NULL + 0 is undefined in C (clang's UBSan reports it). Nothing is
     * ever written to it. */
    static _Alignas(64) unsigned char no_scratch[64];
    const onr_op_impl *impl = s->op->impl;
    if (!impl->run) return ONR_OK; /* a view: the executor aliased the buffer */
    onr_kctx ctx = {.params = s->params, .opset = s->opset, .n_in = s->n_in, .in = s->in,
                    .n_out = s->n_out, .out = s->out,
                    .scratch = s->scratch ? scratch : no_scratch,
                    .scratch_size = s->scratch, .nthreads = nthreads, .err = err,
                    .cancel = s->cancel};
    /* kernels may stop early once the run is cancelled (onr_cancelled,
     * and every SGEMM at its next block): their outputs are then partial,
     * so the step fails */
    const _Atomic int *outer = onr_sgemm_set_cancel(s->cancel);
    int st = impl->run(&ctx);
    onr_sgemm_set_cancel(outer);
    if (!st && onr_cancelled(&ctx)) st = onr_seterr(err, ONR_E_RUNTIME, "the run was cancelled");
    return (onr_status)st;
}

void onr_step_destroy(onr_step *s)
{
    if (!s->op) return;
    const onr_op_impl *impl = s->op->impl;
    if (s->params) {
        if (impl->destroy && s->created && !s->shared_params) impl->destroy(s->params);
        free(s->params);
    }
    if (!s->shared_params) onr_budget_give(s->budget, s->held);
    free(s->params0);
    free(s->in), free(s->out), free(s->in_const), free(s->key);
    memset(s, 0, sizeof *s);
}
