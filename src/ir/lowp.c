/*
 * lowp.c - the 8-, 4- and 2-bit element types: values of their bit
 * patterns, conversion from double with the specification's rounding and
 * saturation rules, and the packed form files use.
 *
 * In memory each element is one byte (onnxrun.h): float8 and float4 hold
 * their bit pattern, int4/int2 the sign-extended value as int8, uint4/uint2
 * the value as uint8. Files pack 4-bit elements two to a byte and 2-bit ones
 * four, the first element in the least significant bits.
 *
 * The float formats, as the ONNX specification defines them:
 *   float8e4m3fn    bias 7,  max 448,   NaN S.1111.111, no inf
 *   float8e4m3fnuz  bias 8,  max 240,   NaN 0x80 only, no inf, no -0
 *   float8e5m2      bias 15, max 57344, IEEE: inf S.11111.00, NaN S.11111.xx
 *   float8e5m2fnuz  bias 16, max 57344, NaN 0x80 only, no inf, no -0
 *   float4e2m1      bias 1,  max 6,     no NaN, no inf
 *   float8e8m0      2^(e - 127), 0xFF NaN, no sign, no zero (onr_f64_to_e8m0)
 * Conversion rounds to nearest, ties to even, at the format's precision
 * (subnormals included). A result beyond the largest finite value, or an
 * infinite input, becomes that largest value when saturating, otherwise
 * infinity (float8e5m2) or NaN (the formats without infinity). float4e2m1
 * always saturates and maps NaN to +6, -0 to +0, as the reference does.
 */
#include <math.h>
#include <string.h>

#include "ir/ir.h"

typedef struct f8fmt {
    int mbits, bias;
    double max;
    int fnuz;    /* NaN is 0x80, no negative zero */
    int has_inf; /* float8e5m2 */
    uint8_t nan; /* NaN pattern (sign added for the fn/IEEE formats) */
} f8fmt;

static const f8fmt *fmt_of(onr_dtype dt)
{
    static const f8fmt e4m3fn = {3, 7, 448.0, 0, 0, 0x7F};
    static const f8fmt e4m3fnuz = {3, 8, 240.0, 1, 0, 0x80};
    static const f8fmt e5m2 = {2, 15, 57344.0, 0, 1, 0x7F};
    static const f8fmt e5m2fnuz = {2, 16, 57344.0, 1, 0, 0x80};
    static const f8fmt e2m1 = {1, 1, 6.0, 0, 0, 0};
    switch (dt) {
    case ONR_FLOAT8E4M3FN: return &e4m3fn;
    case ONR_FLOAT8E4M3FNUZ: return &e4m3fnuz;
    case ONR_FLOAT8E5M2: return &e5m2;
    case ONR_FLOAT8E5M2FNUZ: return &e5m2fnuz;
    case ONR_FLOAT4E2M1: return &e2m1;
    default: return NULL;
    }
}

int onr_dtype_is_lowp(onr_dtype dt) { return dt >= ONR_FLOAT8E4M3FN && dt <= ONR_INT2; }

int onr_dtype_bits(onr_dtype dt)
{
    switch (dt) {
    case ONR_UINT4:
    case ONR_INT4:
    case ONR_FLOAT4E2M1: return 4;
    case ONR_UINT2:
    case ONR_INT2: return 2;
    default: return (int)onr_dtype_size(dt) * 8;
    }
}

double onr_lowp_to_f64(onr_dtype dt, uint8_t v)
{
    switch (dt) {
    case ONR_INT4:
    case ONR_INT2: return (int8_t)v;
    case ONR_UINT4:
    case ONR_UINT2: return v;
    case ONR_FLOAT8E8M0: return v == 0xFF ? NAN : ldexp(1.0, (int)v - 127);
    default: break;
    }
    const f8fmt *f = fmt_of(dt);
    if (!f) return 0;
    int ebits = dt == ONR_FLOAT4E2M1 ? 2 : 7 - f->mbits;
    int nb = 1 + ebits + f->mbits;
    int sign = (v >> (nb - 1)) & 1;
    int e = (v >> f->mbits) & ((1 << ebits) - 1), m = v & ((1 << f->mbits) - 1);
    if (f->fnuz && v == 0x80) return NAN;
    if (dt == ONR_FLOAT8E4M3FN && (v & 0x7F) == 0x7F) return NAN;
    if (f->has_inf && e == (1 << ebits) - 1) return m ? NAN : sign ? -INFINITY : INFINITY;
    double r = e ? ldexp(1.0 + ldexp(m, -f->mbits), e - f->bias)
                 : ldexp((double)m, 1 - f->bias - f->mbits);
    return sign ? -r : r;
}

/* |v| (finite, > 0) rounded to nearest even at format f's precision, with an
 * unbounded exponent. */
static double round_fmt(const f8fmt *f, double a)
{
    int ex;
    frexp(a, &ex); /* a = fr * 2^ex, fr in [0.5, 1): unbiased exponent ex - 1 */
    int u = ex - 1, emin = 1 - f->bias;
    int qexp = (u < emin ? emin : u) - f->mbits; /* quantum 2^qexp */
    return ldexp(nearbyint(ldexp(a, -qexp)), qexp);
}

/* The bit pattern of a representable magnitude r >= 0 (no sign). */
static uint8_t encode_fmt(const f8fmt *f, double r)
{
    if (r == 0) return 0;
    int ex;
    frexp(r, &ex);
    int u = ex - 1, emin = 1 - f->bias;
    if (u < emin) return (uint8_t)ldexp(r, f->bias - 1 + f->mbits); /* subnormal: e = 0 */
    int m = (int)(ldexp(r, -u) * (1 << f->mbits)) - (1 << f->mbits);
    return (uint8_t)(((u + f->bias) << f->mbits) | m);
}

static uint8_t to_float_fmt(onr_dtype dt, double v, int saturate)
{
    const f8fmt *f = fmt_of(dt);
    int four = dt == ONR_FLOAT4E2M1;
    uint8_t sbit = four ? 0x8 : 0x80;
    if (isnan(v)) return four ? 0x7 : f->fnuz ? 0x80 : (uint8_t)(f->nan | (signbit(v) ? 0x80 : 0));
    int neg = four ? v < 0 : signbit(v) != 0;
    double a = fabs(v), r = isinf(a) ? INFINITY : round_fmt(f, a);
    uint8_t bits;
    if (r > f->max) {
        if (saturate || four) bits = encode_fmt(f, f->max);
        else if (f->has_inf) bits = 0x7C;
        else return f->fnuz ? 0x80 : (uint8_t)(f->nan | (neg ? 0x80 : 0));
    } else {
        bits = encode_fmt(f, r);
    }
    if (bits == 0 && f->fnuz) return 0; /* no negative zero */
    return neg ? (uint8_t)(bits | sbit) : bits;
}

uint8_t onr_f64_to_lowp(onr_dtype dt, double v, int saturate)
{
    double lo, hi;
    switch (dt) {
    case ONR_INT4: lo = -8, hi = 7; break;
    case ONR_UINT4: lo = 0, hi = 15; break;
    case ONR_INT2: lo = -2, hi = 1; break;
    case ONR_UINT2: lo = 0, hi = 3; break;
    case ONR_FLOAT8E8M0: return onr_f64_to_e8m0(v, saturate, ONR_E8M0_UP);
    default: return to_float_fmt(dt, v, saturate);
    }
    /* integers: round half to even and saturate (NaN gives 0) */
    if (isnan(v)) return 0;
    v = nearbyint(v);
    v = v < lo ? lo : v > hi ? hi : v;
    return (uint8_t)(int8_t)v;
}

/* float8e8m0 from Cast-24: the value goes through float32 first and its
 * sign is dropped (the specification leaves negative inputs undefined; the
 * magnitude is what its reference conversion uses). For a float32
 * 2^(e-127) * (1 + m / 2^23) the result is e (down), e + 1 when m != 0
 * (up), or e + 1 when m >= 2^22, the fraction being at least one half
 * (nearest, ties up). The specification's table gives the ends: NaN is NaN;
 * infinity, and a result past 2^127, is 2^127 (0xFE) when saturating, else
 * NaN; zero and magnitudes below 2^-127 are 2^-127 (0x00) when saturating,
 * else NaN. Float32 subnormals in [2^-127, 2^-126) round like the normal
 * numbers, with their fraction taken from the value (so 2^-127 stays
 * 2^-127 under up). */
uint8_t onr_f64_to_e8m0(double v, int saturate, int round_mode)
{
    float f = (float)v;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    bits &= 0x7FFFFFFFu;
    uint32_t b = bits >> 23, m = bits & 0x7FFFFFu;
    if (b == 0xFF) return m || !saturate ? 0xFF : 0xFE; /* NaN, infinity */
    if (b == 0) {                                      /* zero, subnormal */
        if (m < 0x400000u) return saturate ? 0x00 : 0xFF; /* below 2^-127 */
        m = (m - 0x400000u) << 1;                          /* 2^-127 * (1 + m / 2^23) */
    }
    uint32_t e = b;
    if (round_mode == ONR_E8M0_UP) e += m != 0;
    else if (round_mode == ONR_E8M0_NEAREST) e += m >= 0x400000u;
    if (e > 254) return saturate ? 0xFE : 0xFF;
    return (uint8_t)e;
}

size_t onr_lowp_packed_bytes(onr_dtype dt, int64_t n)
{
    int bits = onr_dtype_bits(dt);
    return (size_t)((n * bits + 7) / 8);
}

void onr_lowp_unpack(onr_dtype dt, const uint8_t *src, int64_t n, uint8_t *dst)
{
    int bits = onr_dtype_bits(dt), per = 8 / bits, sign = dt == ONR_INT4 || dt == ONR_INT2;
    uint8_t mask = (uint8_t)((1 << bits) - 1);
    for (int64_t i = 0; i < n; i++) {
        uint8_t v = (uint8_t)((src[i / per] >> ((i % per) * bits)) & mask);
        if (sign && (v >> (bits - 1))) v |= (uint8_t)~mask; /* sign-extend */
        dst[i] = v;
    }
}

void onr_lowp_pack(onr_dtype dt, const uint8_t *src, int64_t n, uint8_t *dst)
{
    int bits = onr_dtype_bits(dt), per = 8 / bits;
    uint8_t mask = (uint8_t)((1 << bits) - 1);
    size_t nb = onr_lowp_packed_bytes(dt, n);
    for (size_t i = 0; i < nb; i++) dst[i] = 0;
    for (int64_t i = 0; i < n; i++)
        dst[i / per] |= (uint8_t)((src[i] & mask) << ((i % per) * bits));
}
