/*
 * quant.h - private helpers of the quantization family (quant.c, qgemm.c):
 * the integer ranges of the quantized types, round-half-to-even with
 * saturation, and the shape rules of a scale / zero-point pair.
 */
#ifndef ONR_OPS_QUANT_H
#define ONR_OPS_QUANT_H

#include <math.h>

#include "ops/ops.h"

/* The quantized types (QuantizeLinear's outputs, DequantizeLinear's inputs). */
#define ONR_TYPES_QINT                                                                         \
    (ONR_T(ONR_UINT8) | ONR_T(ONR_INT8) | ONR_T(ONR_UINT16) | ONR_T(ONR_INT16))
#define ONR_TYPES_F8                                                                           \
    (ONR_T(ONR_FLOAT8E4M3FN) | ONR_T(ONR_FLOAT8E4M3FNUZ) | ONR_T(ONR_FLOAT8E5M2) |              \
     ONR_T(ONR_FLOAT8E5M2FNUZ))
#define ONR_TYPES_Q4 (ONR_T(ONR_UINT4) | ONR_T(ONR_INT4))
#define ONR_TYPES_Q2 (ONR_T(ONR_UINT2) | ONR_T(ONR_INT2))

/* [lo, hi] of an integer quantized type; 0 when dt is not one. */
static inline int onr_q_range(onr_dtype dt, double *lo, double *hi)
{
    switch (dt) {
    case ONR_UINT8: *lo = 0, *hi = 255; return 1;
    case ONR_INT8: *lo = -128, *hi = 127; return 1;
    case ONR_UINT16: *lo = 0, *hi = 65535; return 1;
    case ONR_INT16: *lo = -32768, *hi = 32767; return 1;
    case ONR_INT32: *lo = -2147483648.0, *hi = 2147483647.0; return 1;
    case ONR_UINT4: *lo = 0, *hi = 15; return 1;
    case ONR_INT4: *lo = -8, *hi = 7; return 1;
    case ONR_UINT2: *lo = 0, *hi = 3; return 1;
    case ONR_INT2: *lo = -2, *hi = 1; return 1;
    default: *lo = *hi = 0; return 0;
    }
}

/* round(v) + zp, rounded half to even and clamped to [lo, hi]: the integer
 * QuantizeLinear stores. NaN gives lo (the specification leaves it open;
 * the reference implementation's int32 conversion lands there too). */
static inline double onr_q_int(double v, double zp, double lo, double hi)
{
    if (v != v) return lo;
    v = nearbyint(v) + zp; /* the default rounding mode: half to even */
    return v < lo ? lo : v > hi ? hi : v;
}

#endif
