/*
 * sequence.c - sequences and optionals: SequenceEmpty, SequenceConstruct,
 * SequenceInsert, SequenceAt, SequenceErase, SequenceLength (11+),
 * SplitToSequence, ConcatFromSequence (11+), Optional, OptionalHasElement,
 * OptionalGetElement (15, 18+).
 *
 * A sequence or optional is an onr_tensor of kind ONR_VALUE_SEQUENCE /
 * ONR_VALUE_OPTIONAL whose data is an array of heap values (ir.h). Values
 * are immutable and shared: an op that "modifies" a sequence makes a new
 * value over the same elements (SequenceInsert appends in place in the
 * slot block when it can, SequenceErase of the last element is a prefix),
 * and copies only the tensors it puts into a sequence (a tensor input
 * lives in the plan's arena); the outputs' shapes are known only by running, so
 * every op here is ONR_OP_DYNAMIC_OUT and run fills its outputs (allocating:
 * the one exception the flag allows). reshape checks the inputs' kinds.
 */
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

static const char *kind_name(int k)
{
    return k == ONR_VALUE_SEQUENCE ? "a sequence"
           : k == ONR_VALUE_OPTIONAL ? "an optional"
           : k == ONR_VALUE_MAP      ? "a map"
                                     : "a tensor";
}

/* Input i must be present and of `kind`. */
static int want_kind(onr_kctx *ctx, int i, int kind)
{
    const onr_tensor *t = i < ctx->n_in ? ctx->in[i] : NULL;
    if (!t) return onr_seterr(ctx->err, ONR_E_MODEL, "input %d is missing", i);
    if (t->kind != kind)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input %d is %s, expected %s", i,
                          kind_name(t->kind), kind_name(kind));
    return ONR_OK;
}

/* A new heap value copied from src (a container: sharing its slots). */
static onr_tensor *new_copy(const onr_tensor *src, onr_err *err)
{
    onr_tensor *e = calloc(1, sizeof *e);
    if (!e) {
        onr_seterr(err, ONR_E_NOMEM, "out of memory");
        return NULL;
    }
    if (onr_value_copy(e, src, err)) {
        onr_tensor_free(e);
        return NULL;
    }
    onr_seq_count_copies(1);
    return e;
}

/* new_copy(src) into slot i of container c. */
static int put_copy(onr_tensor *c, int64_t i, const onr_tensor *src, onr_err *err)
{
    onr_tensor *e = new_copy(src, err);
    if (!e) return err->code ? err->code : ONR_E_NOMEM;
    ((onr_tensor **)c->data)[i] = e;
    return ONR_OK;
}

/* A position input (int32/int64 scalar) normalized against [-n, n + extra). */
static int read_pos(const onr_kctx *ctx, int i, int64_t n, int extra, int64_t def, int64_t *pos)
{
    const onr_tensor *t = i < ctx->n_in ? ctx->in[i] : NULL;
    if (!t) {
        *pos = def;
        return ONR_OK;
    }
    if (t->kind || t->numel != 1 || (t->dtype != ONR_INT64 && t->dtype != ONR_INT32))
        return onr_seterr(ctx->err, ONR_E_MODEL, "position must be an int32/int64 scalar");
    int64_t p = onr_f64_to_i64_sat(onr_get_f64(t, 0), INT64_MIN, INT64_MAX);
    if (p < -n || p >= n + extra)
        return onr_seterr(ctx->err, ONR_E_RUNTIME,
                          "position %lld is outside [%lld, %lld] for a sequence of %lld",
                          (long long)p, (long long)-n, (long long)(n + extra - 1), (long long)n);
    *pos = p < 0 ? p + n : p;
    return ONR_OK;
}

static int no_scratch(size_t *scratch)
{
    ONR_UNUSED(scratch);
    return ONR_OK;
}

#define DYN (ONR_OP_DYNAMIC_OUT | ONR_OP_NOFOLD)

/* ---- SequenceEmpty ------------------------------------------------------------ */

typedef struct seq_empty_params {
    onr_dtype dtype;
} seq_empty_params;

static int seq_empty_create(onr_create_ctx *c, void *params)
{
    seq_empty_params *p = params;
    int64_t dt = onr_attr_int(c->node, "dtype", ONR_FLOAT);
    if (dt <= 0 || dt >= ONR_DTYPE_COUNT || dt == ONR_COMPLEX64 || dt == ONR_COMPLEX128)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'dtype' is %lld, not a supported type",
                          (long long)dt);
    p->dtype = (onr_dtype)dt;
    return ONR_OK;
}

static int seq_empty_reshape(onr_kctx *ctx, size_t *scratch) { ONR_UNUSED(ctx); return no_scratch(scratch); }

static int seq_empty_run(const onr_kctx *ctx)
{
    const seq_empty_params *p = ctx->params;
    return onr_value_container(ctx->out[0], ONR_VALUE_SEQUENCE, p->dtype, 0, ctx->err);
}

const onr_op_impl onr_impl_SequenceEmpty = {.create = seq_empty_create,
    .reshape = seq_empty_reshape, .run = seq_empty_run, .params_size = sizeof(seq_empty_params),
    .types = ONR_TYPES_ALL, .flags = DYN};

/* ---- SequenceConstruct --------------------------------------------------------- */

static int seq_construct_reshape(onr_kctx *ctx, size_t *scratch)
{
    if (ctx->n_in < 1) return onr_seterr(ctx->err, ONR_E_MODEL, "no inputs");
    for (int i = 0; i < ctx->n_in; i++) {
        int st = want_kind(ctx, i, ONR_VALUE_TENSOR);
        if (st) return st;
        if (ctx->in[i]->dtype != ctx->in[0]->dtype)
            return onr_seterr(ctx->err, ONR_E_MODEL, "input %d is %s, input 0 %s", i,
                              onr_dtype_name(ctx->in[i]->dtype), onr_dtype_name(ctx->in[0]->dtype));
    }
    return no_scratch(scratch);
}

static int seq_construct_run(const onr_kctx *ctx)
{
    onr_tensor *y = ctx->out[0];
    int st = onr_value_container(y, ONR_VALUE_SEQUENCE, ctx->in[0]->dtype, ctx->n_in, ctx->err);
    for (int i = 0; i < ctx->n_in && !st; i++) st = put_copy(y, i, ctx->in[i], ctx->err);
    return st;
}

const onr_op_impl onr_impl_SequenceConstruct = {.reshape = seq_construct_reshape,
    .run = seq_construct_run, .types = ONR_TYPES_ALL, .flags = DYN};

/* ---- SequenceInsert, SequenceErase ----------------------------------------------- */

static int seq_insert_reshape(onr_kctx *ctx, size_t *scratch)
{
    int st = want_kind(ctx, 0, ONR_VALUE_SEQUENCE);
    if (!st) st = want_kind(ctx, 1, ONR_VALUE_TENSOR);
    if (st) return st;
    const onr_tensor *s = ctx->in[0];
    if (s->numel > 0 && s->data && onr_value_item(s, 0)->kind != ONR_VALUE_TENSOR)
        return onr_seterr(ctx->err, ONR_E_MODEL, "inserting a tensor into a sequence of %ss",
                          kind_name(onr_value_item(s, 0)->kind) + 2);
    if (s->dtype != ONR_UNDEFINED && s->dtype != ctx->in[1]->dtype)
        return onr_seterr(ctx->err, ONR_E_MODEL, "inserting %s into a sequence of %s",
                          onr_dtype_name(ctx->in[1]->dtype), onr_dtype_name(s->dtype));
    return no_scratch(scratch);
}

static int seq_insert_run(const onr_kctx *ctx)
{
    const onr_tensor *s = ctx->in[0];
    int64_t n = s->numel, pos = n;
    if (n > 0 && onr_value_item(s, 0)->kind != ONR_VALUE_TENSOR) /* contents are not in the step's key */
        return onr_seterr(ctx->err, ONR_E_MODEL, "inserting a tensor into a sequence of %ss",
                          kind_name(onr_value_item(s, 0)->kind) + 2);
    int st = read_pos(ctx, 2, n, 1, n, &pos);
    if (st) return st;
    onr_tensor *e = new_copy(ctx->in[1], ctx->err);
    if (!e) return ctx->err->code ? ctx->err->code : ONR_E_NOMEM;
    return onr_seq_insert(ctx->out[0], s, pos, e, ctx->err);
}

const onr_op_impl onr_impl_SequenceInsert = {.reshape = seq_insert_reshape,
    .run = seq_insert_run, .types = ONR_TYPES_ALL, .flags = DYN};

static int seq_in0_reshape(onr_kctx *ctx, size_t *scratch)
{
    int st = want_kind(ctx, 0, ONR_VALUE_SEQUENCE);
    return st ? st : no_scratch(scratch);
}

static int seq_erase_run(const onr_kctx *ctx)
{
    const onr_tensor *s = ctx->in[0];
    int64_t n = s->numel, pos = n - 1;
    if (n == 0) return onr_seterr(ctx->err, ONR_E_RUNTIME, "erasing from an empty sequence");
    int st = read_pos(ctx, 1, n, 0, n - 1, &pos);
    if (st) return st;
    return onr_seq_erase(ctx->out[0], s, pos, ctx->err);
}

const onr_op_impl onr_impl_SequenceErase = {.reshape = seq_in0_reshape, .run = seq_erase_run,
    .types = ONR_TYPES_ALL, .flags = DYN};

/* ---- SequenceAt, SequenceLength ---------------------------------------------------- */

static int seq_at_run(const onr_kctx *ctx)
{
    const onr_tensor *s = ctx->in[0];
    int64_t pos = 0;
    if (ctx->n_in < 2 || !ctx->in[1])
        return onr_seterr(ctx->err, ONR_E_MODEL, "input 1 (position) is missing");
    int st = read_pos(ctx, 1, s->numel, 0, 0, &pos);
    if (st) return st;
    return onr_value_copy(ctx->out[0], onr_value_item(s, pos), ctx->err);
}

const onr_op_impl onr_impl_SequenceAt = {.reshape = seq_in0_reshape, .run = seq_at_run,
    .types = ONR_TYPES_ALL, .flags = DYN};

static int seq_length_run(const onr_kctx *ctx)
{
    int st = onr_out_resize(ctx, 0, ONR_INT64, 0, NULL);
    if (!st) *(int64_t *)ctx->out[0]->data = ctx->in[0]->numel;
    return st;
}

const onr_op_impl onr_impl_SequenceLength = {.reshape = seq_in0_reshape, .run = seq_length_run,
    .types = ONR_TYPES_ALL, .flags = DYN};

/* ---- SplitToSequence ------------------------------------------------------------------ */

typedef struct split_seq_params {
    int64_t axis;
    int keepdims;
} split_seq_params;

static int split_seq_create(onr_create_ctx *c, void *params)
{
    split_seq_params *p = params;
    p->axis = onr_attr_int(c->node, "axis", 0);
    int64_t k = onr_attr_int(c->node, "keepdims", 1);
    if (k != 0 && k != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'keepdims' is %lld, not 0 or 1",
                          (long long)k);
    p->keepdims = (int)k;
    return ONR_OK;
}

static int split_seq_reshape(onr_kctx *ctx, size_t *scratch)
{
    int st = want_kind(ctx, 0, ONR_VALUE_TENSOR);
    if (st) return st;
    const onr_tensor *sp = ctx->n_in > 1 ? ctx->in[1] : NULL;
    if (sp && (sp->kind || sp->rank > 1 || (sp->dtype != ONR_INT64 && sp->dtype != ONR_INT32)))
        return onr_seterr(ctx->err, ONR_E_MODEL, "split must be an int32/int64 scalar or 1-D");
    int ax;
    const split_seq_params *p = ctx->params;
    if ((st = onr_norm_axis(ctx->err, p->axis, ctx->in[0]->rank, &ax))) return st;
    return no_scratch(scratch);
}

static int split_seq_run(const onr_kctx *ctx)
{
    const split_seq_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    const onr_tensor *sp = ctx->n_in > 1 ? ctx->in[1] : NULL;
    int ax, st = onr_norm_axis(ctx->err, p->axis, x->rank, &ax);
    if (st) return st;
    int64_t len = x->dims[ax], n, chunk = 1;
    int squeeze = 0;
    if (!sp) {
        n = len;
        squeeze = !p->keepdims;
    } else if (sp->rank == 0) {
        chunk = onr_f64_to_i64_sat(onr_get_f64(sp, 0), INT64_MIN, INT64_MAX);
        if (chunk <= 0)
            return onr_seterr(ctx->err, ONR_E_RUNTIME, "split is %lld, not positive",
                              (long long)chunk);
        n = len / chunk + (len % chunk != 0); /* chunk may be near INT64_MAX */
    } else {
        n = sp->numel;
        int64_t sum = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = onr_f64_to_i64_sat(onr_get_f64(sp, i), INT64_MIN, INT64_MAX);
            if (v < 0) return onr_seterr(ctx->err, ONR_E_RUNTIME, "split[%lld] is negative", (long long)i);
            if (v > len - sum) /* checked before adding: the sum cannot overflow */
                return onr_seterr(ctx->err, ONR_E_RUNTIME,
                                  "split sums to more than %lld (the axis) at split[%lld]",
                                  (long long)len, (long long)i);
            sum += v;
        }
        if (sum != len)
            return onr_seterr(ctx->err, ONR_E_RUNTIME,
                              "split sums to %lld, the axis has %lld", (long long)sum, (long long)len);
    }
    onr_tensor *y = ctx->out[0];
    if ((st = onr_value_container(y, ONR_VALUE_SEQUENCE, x->dtype, n, ctx->err))) return st;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < ax; d++) outer *= x->dims[d];
    for (int d = ax + 1; d < x->rank; d++) inner *= x->dims[d];
    size_t es = x->dtype == ONR_STRING ? sizeof(char *) : onr_dtype_size(x->dtype);
    int64_t start = 0;
    for (int64_t i = 0; i < n && !st; i++) {
        int64_t size = !sp ? 1 : sp->rank == 0 ? (chunk <= len - start ? chunk : len - start)
                                               : onr_f64_to_i64_sat(onr_get_f64(sp, i), 0, len);
        onr_tensor *e = calloc(1, sizeof *e);
        if (!e) return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory");
        ((onr_tensor **)y->data)[i] = e;
        int64_t dims[ONR_MAX_RANK];
        int r = 0;
        for (int d = 0; d < x->rank; d++) {
            if (d == ax && squeeze) continue;
            dims[r++] = d == ax ? size : x->dims[d];
        }
        if ((st = onr_tensor_set_shape(e, x->dtype, r, dims, ctx->err)) ||
            (st = onr_tensor_alloc(e, ctx->err)))
            return st;
        for (int64_t o = 0; o < outer; o++) {
            const char *src = (const char *)x->data + (size_t)((o * len + start) * inner) * es;
            char *dst = (char *)e->data + (size_t)(o * size * inner) * es;
            if (x->dtype == ONR_STRING) {
                for (int64_t k = 0; k < size * inner && !st; k++) {
                    char *c = onr_strdup(((char *const *)src)[k]);
                    if (!c) st = onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory");
                    else free(((char **)dst)[k]), ((char **)dst)[k] = c;
                }
            } else if (size > 0 && inner > 0) {
                memcpy(dst, src, (size_t)(size * inner) * es);
            }
        }
        start += size;
    }
    return st;
}

const onr_op_impl onr_impl_SplitToSequence = {.create = split_seq_create,
    .reshape = split_seq_reshape, .run = split_seq_run, .params_size = sizeof(split_seq_params),
    .types = ONR_TYPES_ALL, .flags = DYN};

/* ---- ConcatFromSequence -------------------------------------------------------------- */

typedef struct concat_seq_params {
    int64_t axis;
    int new_axis;
} concat_seq_params;

static int concat_seq_create(onr_create_ctx *c, void *params)
{
    concat_seq_params *p = params;
    const onr_attr *a = onr_node_attr(c->node, "axis");
    if (!a || a->type != ONR_ATTR_INT)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'axis' (int) is required");
    p->axis = a->i;
    int64_t na = onr_attr_int(c->node, "new_axis", 0);
    if (na != 0 && na != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'new_axis' is %lld, not 0 or 1",
                          (long long)na);
    p->new_axis = (int)na;
    return ONR_OK;
}

static int concat_seq_run(const onr_kctx *ctx)
{
    const concat_seq_params *p = ctx->params;
    const onr_tensor *s = ctx->in[0];
    int64_t n = s->numel;
    if (n == 0)
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "concatenating an empty sequence");
    const onr_tensor *e0 = onr_value_item(s, 0);
    int r = e0->rank, ax;
    int st = onr_norm_axis(ctx->err, p->axis, r + p->new_axis, &ax);
    if (st) return st;
    if (!p->new_axis && r == 0)
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "cannot concatenate scalars (new_axis is 0)");
    int64_t dims[ONR_MAX_RANK], total = 0;
    for (int64_t i = 0; i < n; i++) {
        const onr_tensor *e = onr_value_item(s, i);
        int ok = e->kind == ONR_VALUE_TENSOR && e->dtype == e0->dtype && e->rank == r;
        for (int d = 0; d < r && ok; d++) ok = p->new_axis || d == ax ? 1 : e->dims[d] == e0->dims[d];
        for (int d = 0; d < r && ok && p->new_axis; d++) ok = e->dims[d] == e0->dims[d];
        if (!ok) {
            char a[128], b[128];
            return onr_seterr(ctx->err, ONR_E_RUNTIME,
                              "element %lld (%s %s) does not fit element 0 (%s %s) along axis %d", 
                              (long long)i, onr_dtype_name(e->dtype),
                              onr_fmt_dims(a, sizeof a, e->dims, e->rank),
                              onr_dtype_name(e0->dtype), onr_fmt_dims(b, sizeof b, e0->dims, r),
                              ax);
        }
        total += p->new_axis ? 1 : e->dims[ax];
    }
    int orank = r + p->new_axis;
    if (orank > ONR_MAX_RANK)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "result rank passes %d", ONR_MAX_RANK);
    if (!p->new_axis)
        for (int d = 0; d < r; d++) dims[d] = d == ax ? total : e0->dims[d];
    else
        for (int d = 0, k = 0; d < orank; d++) dims[d] = d == ax ? total : e0->dims[k++];
    if ((st = onr_out_resize(ctx, 0, e0->dtype, orank, dims))) return st;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < ax; d++) outer *= dims[d];
    for (int d = ax + 1; d < orank; d++) inner *= dims[d];
    size_t es = e0->dtype == ONR_STRING ? sizeof(char *) : onr_dtype_size(e0->dtype);
    char *y = ctx->out[0]->data;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        const onr_tensor *e = onr_value_item(s, i);
        int64_t w = p->new_axis ? 1 : e->dims[ax];
        for (int64_t o = 0; o < outer && w > 0 && inner > 0; o++) {
            char *dst = y + (size_t)((o * total + at) * inner) * es;
            const char *src = (const char *)e->data + (size_t)(o * w * inner) * es;
            if (e0->dtype == ONR_STRING) {
                for (int64_t k = 0; k < w * inner; k++) {
                    char *c = onr_strdup(((char *const *)src)[k]);
                    if (!c) return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory");
                    free(((char **)dst)[k]);
                    ((char **)dst)[k] = c;
                }
            } else {
                memcpy(dst, src, (size_t)(w * inner) * es);
            }
        }
        at += w;
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_ConcatFromSequence = {.create = concat_seq_create,
    .reshape = seq_in0_reshape, .run = concat_seq_run, .params_size = sizeof(concat_seq_params),
    .types = ONR_TYPES_ALL, .flags = DYN};

/* ---- Optional, OptionalHasElement, OptionalGetElement ---------------------------------- */

typedef struct optional_params {
    onr_dtype dtype; /* from the 'type' attribute when there is no input */
} optional_params;

static int optional_create(onr_create_ctx *c, void *params)
{
    optional_params *p = params;
    ONR_UNUSED(c);
    p->dtype = ONR_UNDEFINED; /* the loader keeps the 'type' attribute as a bare type */
    return ONR_OK;
}

static int optional_reshape(onr_kctx *ctx, size_t *scratch)
{
    const onr_tensor *x = ctx->n_in > 0 ? ctx->in[0] : NULL;
    if (x && x->kind == ONR_VALUE_OPTIONAL)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input 0 is an optional, not its element");
    return no_scratch(scratch);
}

static int optional_run(const onr_kctx *ctx)
{
    const optional_params *p = ctx->params;
    const onr_tensor *x = ctx->n_in > 0 ? ctx->in[0] : NULL;
    onr_tensor *y = ctx->out[0];
    int st = onr_value_container(y, ONR_VALUE_OPTIONAL, x ? x->dtype : p->dtype, x ? 1 : 0,
                                 ctx->err);
    if (!st && x) st = put_copy(y, 0, x, ctx->err);
    return st;
}

const onr_op_impl onr_impl_Optional = {.create = optional_create, .reshape = optional_reshape,
    .run = optional_run, .params_size = sizeof(optional_params), .types = ONR_TYPES_ALL,
    .flags = DYN};

/* Opset 18 accepts a tensor or a sequence too (present), and no input. */
static int opt_any_reshape(onr_kctx *ctx, size_t *scratch) { ONR_UNUSED(ctx); return no_scratch(scratch); }

static int opt_has_run(const onr_kctx *ctx)
{
    const onr_tensor *x = ctx->n_in > 0 ? ctx->in[0] : NULL;
    int has = x && (x->kind != ONR_VALUE_OPTIONAL || (x->numel > 0 && onr_value_item(x, 0)));
    int st = onr_out_resize(ctx, 0, ONR_BOOL, 0, NULL);
    if (!st) *(uint8_t *)ctx->out[0]->data = (uint8_t)has;
    return st;
}

const onr_op_impl onr_impl_OptionalHasElement = {.reshape = opt_any_reshape,
    .run = opt_has_run, .types = ONR_TYPES_ALL, .flags = DYN};

static int opt_get_run(const onr_kctx *ctx)
{
    const onr_tensor *x = ctx->n_in > 0 ? ctx->in[0] : NULL;
    if (!x) return onr_seterr(ctx->err, ONR_E_MODEL, "input 0 is missing");
    if (x->kind != ONR_VALUE_OPTIONAL) return onr_value_copy(ctx->out[0], x, ctx->err);
    if (x->numel == 0 || !onr_value_item(x, 0))
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "the optional input is empty");
    return onr_value_copy(ctx->out[0], onr_value_item(x, 0), ctx->err);
}

const onr_op_impl onr_impl_OptionalGetElement = {.reshape = opt_any_reshape,
    .run = opt_get_run, .types = ONR_TYPES_ALL, .flags = DYN};
