/*
 * cumprod.c - CumProd (opset 26, its first version).
 *
 * y[.., j, ..] = product of x[.., i, ..] for i <= j along `axis` (the
 * second input, a 0-D or one-element int32/int64 tensor); exclusive = 1
 * leaves element j out (the first output is 1), reverse = 1 runs from the
 * end. Floats multiply in double and round on store; integers multiply in
 * 64-bit unsigned arithmetic, so overflow wraps as C's unsigned types do,
 * and are truncated to their width on store.
 *
 * Types: those of CumSum-14 (uint32, uint64, int32, int64, float16, float,
 * double, bfloat16), which CumProd-26 is defined alongside. The axis is
 * read by reshape (a shape input), so a wrong one fails before run.
 */
#include <string.h>

#include "ops/ops.h"

#define CUMPROD_TYPES (ONR_T(ONR_UINT32) | ONR_T(ONR_UINT64) | ONR_T(ONR_INT32) | ONR_T(ONR_INT64) | \
                       ONR_TYPES_FLOAT)

typedef struct cumprod_params {
    int exclusive, reverse;
    int64_t outer, n, inner; /* reshape */
} cumprod_params;

static int bool_attr(onr_create_ctx *c, const char *name, int *v)
{
    const onr_attr *a = onr_node_attr(c->node, name);
    if (a && (a->type != ONR_ATTR_INT || (a->i != 0 && a->i != 1)))
        return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' must be an int 0 or 1", name);
    *v = a ? (int)a->i : 0;
    return ONR_OK;
}

static int cumprod_create(onr_create_ctx *c, void *params)
{
    cumprod_params *p = params;
    int st = bool_attr(c, "exclusive", &p->exclusive);
    return st ? st : bool_attr(c, "reverse", &p->reverse);
}

static int cumprod_reshape(onr_kctx *ctx, size_t *scratch)
{
    cumprod_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, CUMPROD_TYPES);
    if (!st) st = onr_check_input(ctx, 1, ONR_T(ONR_INT32) | ONR_T(ONR_INT64));
    if (st) return st;
    const onr_tensor *x = ctx->in[0], *a = ctx->in[1];
    if (a->numel != 1 || a->rank > 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "axis must hold one value, it holds %lld",
                          (long long)a->numel);
    if (!a->data) return ONR_SHAPE_DEFER;
    int64_t av = a->dtype == ONR_INT64 ? ((const int64_t *)a->data)[0] : ((const int32_t *)a->data)[0];
    int axis;
    if (x->rank < 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input must have rank >= 1, it is a scalar");
    if ((st = onr_norm_axis(ctx->err, av, x->rank, &axis))) return st;
    p->n = x->dims[axis];
    p->outer = p->inner = 1;
    if (x->numel > 0) {
        for (int d = 0; d < axis; d++) p->outer *= x->dims[d];
        for (int d = axis + 1; d < x->rank; d++) p->inner *= x->dims[d];
    } else {
        p->outer = 0;
    }
    return onr_set_out_like(ctx, 0, 0);
}

static uint64_t load_u64(onr_dtype dt, const void *p, int64_t i)
{
    switch (dt) {
    case ONR_INT32: return (uint64_t)(int64_t)((const int32_t *)p)[i];
    case ONR_UINT32: return ((const uint32_t *)p)[i];
    default: return ((const uint64_t *)p)[i]; /* int64 / uint64 bits */
    }
}

static void store_u64(onr_dtype dt, void *p, int64_t i, uint64_t v)
{
    if (dt == ONR_INT32 || dt == ONR_UINT32) ((uint32_t *)p)[i] = (uint32_t)v;
    else ((uint64_t *)p)[i] = v;
}

static int cumprod_run(const onr_kctx *ctx)
{
    const cumprod_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    int isint = !((ONR_TYPES_FLOAT >> x->dtype) & 1);
    int64_t lines = p->outer * p->inner;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (x->numel * 2 > ONR_PAR_MIN)
    for (int64_t l = 0; l < lines; l++) {
        int64_t base = (l / p->inner) * p->n * p->inner + l % p->inner;
        double accd = 1;
        uint64_t acci = 1;
        for (int64_t s = 0; s < p->n; s++) {
            int64_t j = p->reverse ? p->n - 1 - s : s, off = base + j * p->inner;
            if (isint) {
                uint64_t v = load_u64(x->dtype, x->data, off);
                if (!p->exclusive) acci *= v;
                store_u64(x->dtype, y->data, off, acci);
                if (p->exclusive) acci *= v;
            } else {
                double v = onr_get_f64(x, off);
                if (!p->exclusive) accd *= v;
                onr_set_f64(y, off, accd);
                if (p->exclusive) accd *= v;
            }
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_cumprod = {.create = cumprod_create, .reshape = cumprod_reshape,
    .run = cumprod_run, .params_size = sizeof(cumprod_params), .types = CUMPROD_TYPES,
    .shape_inputs = 1u << 1};
