/*
 * image.h - helpers private to the image-geometry operators (resize.c:
 * Resize, Upsample; grid.c: GridSample, AffineGrid; roi.c: RoiAlign;
 * crop.c: Col2Im, CenterCropPad).
 *
 * Attribute readers that check the attribute's type (a wrong-typed
 * attribute is an error naming it, not a silent default), a lookup of a
 * string attribute in a table of names valid from/until an opset, and the
 * element load/store used by the plain-C reference paths: values go through
 * double, and integer outputs are truncated toward zero and saturated to
 * the type's range (a cubic overshoot never wraps around).
 */
#ifndef ONR_OPS_IMAGE_H
#define ONR_OPS_IMAGE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ops/ops.h"

/* A name valid at opsets [since, until]. */
typedef struct img_name {
    const char *name;
    int since, until;
} img_name;

static inline int img_attr_int(onr_create_ctx *c, const char *name, int64_t def, int64_t *v)
{
    const onr_attr *a = onr_node_attr(c->node, name);
    if (!a) {
        *v = def;
        return ONR_OK;
    }
    if (a->type != ONR_ATTR_INT)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' must be an int", name);
    *v = a->i;
    return ONR_OK;
}

/* An int attribute that must be 0 or 1. */
static inline int img_attr_bool(onr_create_ctx *c, const char *name, int *v)
{
    int64_t x = 0;
    int st = img_attr_int(c, name, 0, &x);
    if (st) return st;
    if (x != 0 && x != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' must be 0 or 1, not %lld", name,
                          (long long)x);
    *v = (int)x;
    return ONR_OK;
}

static inline int img_attr_float(onr_create_ctx *c, const char *name, float def, float *v)
{
    const onr_attr *a = onr_node_attr(c->node, name);
    if (!a) {
        *v = def;
        return ONR_OK;
    }
    if (a->type != ONR_ATTR_FLOAT)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' must be a float", name);
    *v = a->f;
    return ONR_OK;
}

/* A string attribute looked up in names[0..n): *v = its index. */
static inline int img_attr_enum(onr_create_ctx *c, const char *name, const char *def,
                                const img_name *names, int n, int *v)
{
    const onr_attr *a = onr_node_attr(c->node, name);
    const char *s = def;
    if (a) {
        if (a->type != ONR_ATTR_STRING)
            return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' must be a string", name);
        s = a->s;
    }
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i].name) == 0 && c->opset >= names[i].since &&
            c->opset <= names[i].until) {
            *v = i;
            return ONR_OK;
        }
    return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' = '%s' is not valid at opset %lld",
                      name, s, (long long)c->opset);
}

/* Element i of a numeric tensor's data as double. */
static inline double img_load(onr_dtype dt, const void *p, int64_t i)
{
    switch (dt) {
    case ONR_FLOAT: return ((const float *)p)[i];
    case ONR_DOUBLE: return ((const double *)p)[i];
    default: return onr_load_f64(dt, p, i);
    }
}

/* Store v as element i: float types round, integer types truncate toward
 * zero and saturate (NaN stores 0), bool stores v != 0. */
static inline void img_store(onr_dtype dt, void *p, int64_t i, double v)
{
    double lo = 0, hi = 0;
    switch (dt) {
    case ONR_FLOAT: ((float *)p)[i] = (float)v; return;
    case ONR_DOUBLE: ((double *)p)[i] = v; return;
    case ONR_FLOAT16: ((uint16_t *)p)[i] = onr_float_to_half((float)v); return;
    case ONR_BFLOAT16: ((uint16_t *)p)[i] = onr_float_to_bf16((float)v); return;
    case ONR_BOOL: ((uint8_t *)p)[i] = v != 0; return;
    case ONR_INT8: lo = INT8_MIN, hi = INT8_MAX; break;
    case ONR_INT16: lo = INT16_MIN, hi = INT16_MAX; break;
    case ONR_INT32: lo = INT32_MIN, hi = INT32_MAX; break;
    case ONR_INT64: lo = -9223372036854775808.0, hi = 9223372036854774784.0; break;
    case ONR_UINT8: hi = UINT8_MAX; break;
    case ONR_UINT16: hi = UINT16_MAX; break;
    case ONR_UINT32: hi = UINT32_MAX; break;
    case ONR_UINT64: hi = 18446744073709549568.0; break;
    default: return;
    }
    v = v != v ? 0 : trunc(v);
    v = v < lo ? lo : v > hi ? hi : v;
    switch (dt) {
    case ONR_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
    case ONR_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
    case ONR_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case ONR_INT64: ((int64_t *)p)[i] = (int64_t)v; break;
    case ONR_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case ONR_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case ONR_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case ONR_UINT64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    default: break;
    }
}

/* Read a float-typed (float16/float/double/bfloat16) input's values into
 * vals (at most max). ONR_SHAPE_DEFER when its data is not known yet. */
static inline int img_read_floats(onr_kctx *ctx, int i, const char *what, double *vals, int max,
                                  int *count)
{
    const onr_tensor *t = ctx->in[i];
    if (!t->data && t->numel > 0) return ONR_SHAPE_DEFER;
    if (!(ONR_TYPES_FLOAT & ONR_T(t->dtype)))
        return onr_seterr(ctx->err, ONR_E_MODEL, "input '%s' must be a float tensor, not %s",
                          what, onr_dtype_name(t->dtype));
    if (t->rank > 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input '%s' must be 1-D, has rank %d", what,
                          t->rank);
    if (t->numel > max)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input '%s' has %lld values, at most %d allowed",
                          what, (long long)t->numel, max);
    for (int64_t k = 0; k < t->numel; k++) vals[k] = onr_get_f64(t, k);
    *count = (int)t->numel;
    return ONR_OK;
}

#endif
