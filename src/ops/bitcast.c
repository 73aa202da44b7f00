/*
 * bitcast.c - BitCast (opset 26, its first version): the input's bits read
 * as the type `to` names, the shape unchanged.
 *
 * Both types must have the same bit width (8: int8/uint8/bool/the float8s;
 * 16, 32, 64: the integers, floats and complex64 of that width; 128:
 * complex128; 4: int4/uint4/float4e2m1; 2: int2/uint2); strings have no bit
 * pattern and are refused. Memory is little endian, as the specification
 * requires, so for types of 8 bits and more the bytes are copied as they
 * are. The 4- and 2-bit types hold one element per byte here (onnxrun.h):
 * the element's bits are the low bits of its byte, and int4/int2 keep their
 * value sign-extended, so those convert element by element.
 */
#include <string.h>

#include "ops/ops.h"

typedef struct bitcast_params {
    onr_dtype to; /* create */
} bitcast_params;

static int bc_castable(onr_dtype dt)
{
    return dt != ONR_UNDEFINED && dt != ONR_STRING && (unsigned)dt < ONR_DTYPE_COUNT &&
           onr_dtype_size(dt) > 0;
}

static int bc_create(onr_create_ctx *c, void *params)
{
    bitcast_params *p = params;
    const onr_attr *a = onr_node_attr(c->node, "to");
    if (!a) return onr_seterr(c->err, ONR_E_MODEL, "attribute 'to' is required");
    int64_t to = onr_attr_int(c->node, "to", -1);
    if (to <= 0 || to >= ONR_DTYPE_COUNT || !bc_castable((onr_dtype)to))
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'to' = %lld is not a non-string data type",
                          (long long)to);
    p->to = (onr_dtype)to;
    return ONR_OK;
}

static int bc_reshape(onr_kctx *ctx, size_t *scratch)
{
    const bitcast_params *p = ctx->params;
    *scratch = 0;
    if (ctx->n_in != 1 || !ctx->in[0] || ctx->n_out != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "expects 1 input and 1 output, got %d and %d",
                          ctx->n_in, ctx->n_out);
    const onr_tensor *x = ctx->in[0];
    if (!bc_castable(x->dtype))
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "input 0 has unsupported type %s",
                          onr_dtype_name(x->dtype));
    if (onr_dtype_bits(x->dtype) != onr_dtype_bits(p->to))
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s (%d bits) and %s (%d bits) differ in width",
                          onr_dtype_name(x->dtype), onr_dtype_bits(x->dtype),
                          onr_dtype_name(p->to), onr_dtype_bits(p->to));
    return onr_set_out(ctx, 0, p->to, x->rank, x->dims);
}

static int bc_run(const onr_kctx *ctx)
{
    const bitcast_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    int bits = onr_dtype_bits(x->dtype);
    if (bits >= 8) {
        if (y->data != x->data && x->numel > 0)
            memcpy(y->data, x->data, (size_t)x->numel * onr_dtype_size(x->dtype));
        return ONR_OK;
    }
    const uint8_t mask = (uint8_t)((1u << bits) - 1);
    const int sign = p->to == ONR_INT4 || p->to == ONR_INT2;
    const uint8_t *s = x->data;
    uint8_t *d = y->data;
    for (int64_t i = 0; i < x->numel; i++) {
        uint8_t v = s[i] & mask;
        if (sign && (v >> (bits - 1))) v |= (uint8_t)~mask; /* sign-extend */
        d[i] = v;
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_bitcast = {.create = bc_create, .reshape = bc_reshape, .run = bc_run,
                                      .params_size = sizeof(bitcast_params),
                                      .types = ~(ONR_T(ONR_UNDEFINED) | ONR_T(ONR_STRING)) &
                                               (ONR_T(ONR_DTYPE_COUNT) - 1)};
