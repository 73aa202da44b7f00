/*
 * sortkey.h - order-preserving 64-bit keys for numeric elements, shared by
 * TopK and Unique: comparing keys as unsigned integers orders the elements
 * exactly as their values (no rounding through double, so int64 and uint64
 * keep every bit). Floats: -0 and +0 share a key; every NaN gets the largest
 * key, so NaN sorts above +inf (as numpy's sort and torch.topk place it).
 */
#ifndef ONR_SORTKEY_H
#define ONR_SORTKEY_H

#include <string.h>

#include "ops/ops.h"

static inline uint64_t onr_key_f64(double v)
{
    if (v != v) return UINT64_MAX;
    if (v == 0) v = 0; /* -0 -> +0 */
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return (b >> 63) ? ~b : b | (UINT64_C(1) << 63);
}

/* Key of element i of an array of numeric type dt (bool as 0/1). */
static inline uint64_t onr_sort_key(onr_dtype dt, const void *p, int64_t i)
{
    const uint64_t sign = UINT64_C(1) << 63;
    switch (dt) {
    case ONR_INT8: return (uint64_t)(int64_t)((const int8_t *)p)[i] ^ sign;
    case ONR_INT16: return (uint64_t)(int64_t)((const int16_t *)p)[i] ^ sign;
    case ONR_INT32: return (uint64_t)(int64_t)((const int32_t *)p)[i] ^ sign;
    case ONR_INT64: return (uint64_t)((const int64_t *)p)[i] ^ sign;
    case ONR_UINT8: case ONR_BOOL: return ((const uint8_t *)p)[i];
    case ONR_UINT16: return ((const uint16_t *)p)[i];
    case ONR_UINT32: return ((const uint32_t *)p)[i];
    case ONR_UINT64: return ((const uint64_t *)p)[i];
    default: return onr_key_f64(onr_load_f64(dt, p, i)); /* float types: exact in double */
    }
}

#endif
