"""Cast and QuantizeLinear / DequantizeLinear cases for the 8-, 4- and 2-bit
element types (float8e4m3fn/e4m3fnuz/e5m2/e5m2fnuz, uint4/int4, float4e2m1,
uint2/int2), which onnx 1.12 and numpy lack. Their values are computed
here from the specification's definitions, by brute force rather than by
the bit arithmetic onnx-run uses:
  - decode: every bit pattern of a format is enumerated into its value
    (sign, exponent with the format's bias, subnormals at exponent 0, the
    NaN / inf patterns the spec lists);
  - encode: the nearest finite value among all patterns, a tie going to the
    pattern with an even mantissa; beyond the largest finite value (or from
    inf) the result is that value when saturating, else inf (e5m2) or NaN;
    float4e2m1 always saturates and maps NaN to +6, -0 to +0;
  - integers: round half to even, then clamp.
Tensors are written by hand (TensorProto with data_type and raw_data, 4-bit
values packed two to a byte, 2-bit four, first element in the low bits),
the models with IR version 13.
    /usr/bin/python3 tools/spec_cases/quant_lowp.py
"""
import math
import os
import shutil

import numpy as np
import onnx
from onnx import helper

from common import ROOT, rng

E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ, UINT4, INT4, FLOAT4, E8M0, UINT2, INT2 = range(17, 27)
# (mantissa bits, exponent bits, bias, fnuz, has_inf)
FMT = {E4M3FN: (3, 4, 7, False, False), E4M3FNUZ: (3, 4, 8, True, False),
       E5M2: (2, 5, 15, False, True), E5M2FNUZ: (2, 5, 16, True, False),
       FLOAT4: (1, 2, 1, False, False)}
IRANGE = {UINT4: (0, 15), INT4: (-8, 7), UINT2: (0, 3), INT2: (-2, 1)}
BITS = {UINT4: 4, INT4: 4, FLOAT4: 4, UINT2: 2, INT2: 2}


def decode(dt, code):
    m, e, bias, fnuz, has_inf = FMT[dt]
    nb = 1 + e + m
    sign = (code >> (nb - 1)) & 1
    ex = (code >> m) & ((1 << e) - 1)
    man = code & ((1 << m) - 1)
    if fnuz and code == 0x80:
        return math.nan
    if dt == E4M3FN and (code & 0x7F) == 0x7F:
        return math.nan
    if has_inf and ex == (1 << e) - 1:
        return math.nan if man else (-math.inf if sign else math.inf)
    v = (1 + man / (1 << m)) * 2.0 ** (ex - bias) if ex else man / (1 << m) * 2.0 ** (1 - bias)
    return -v if sign else v


def table(dt):
    nb = 1 + FMT[dt][1] + FMT[dt][0]
    return [(c, decode(dt, c)) for c in range(1 << nb)]


def encode(dt, v, saturate=True):
    m, e, bias, fnuz, has_inf = FMT[dt]
    four = dt == FLOAT4
    nb = 1 + e + m
    finite = [(c, x) for c, x in table(dt) if math.isfinite(x)]
    vmax = max(x for _, x in finite)
    if math.isnan(v):
        return 0x7 if four else (0x80 if fnuz else (0x7F | (0x80 if math.copysign(1, v) < 0 else 0)))
    neg = v < 0 if four else math.copysign(1, v) < 0
    a = abs(v)
    pos = [(c, x) for c, x in finite if x >= 0 and not (c >> (nb - 1))]
    if math.isinf(a):
        code = None
    else:
        best = min(abs(x - a) for _, x in pos)
        cands = [c for c, x in pos if abs(x - a) == best]
        code = [c for c in cands if c & 1 == 0][0] if len(cands) > 1 else cands[0]
        # beyond the largest value: a value nearer the next (missing) step
        step = [x for _, x in pos]
        top = max(step)
        ulp = top - sorted(step)[-2]
        if a > top and a - top >= ulp / 2 and not (a - top == ulp / 2 and code & 1 == 0):
            code = None
    if code is None:
        if saturate or four:
            code = [c for c, x in pos if x == vmax][0]
        elif has_inf:
            code = 0x7C
        else:
            return 0x80 if fnuz else (0x7F | (0x80 if neg else 0))
    if code == 0 and fnuz:
        return 0
    return code | ((1 << (nb - 1)) if neg else 0)


def to_int(dt, v):
    lo, hi = IRANGE[dt]
    if math.isnan(v):
        return 0
    return int(min(max(np.rint(v), lo), hi))


def convert(dt, values, saturate=True):
    """Unpacked bytes (int4/int2 as their two's-complement nibble values)."""
    if dt in IRANGE:
        return [to_int(dt, float(v)) for v in values]
    return [encode(dt, float(v), saturate) for v in values]


def value_of(dt, code):
    if dt in IRANGE:
        return float(code)
    return decode(dt, code)


def lowp_tensor(name, dt, shape, elems):
    t = onnx.TensorProto()
    t.name = name
    t.data_type = dt
    t.dims.extend(shape)
    b = [(int(x) & 0xFF) for x in elems]
    if dt in BITS:
        bits = BITS[dt]
        per = 8 // bits
        out = bytearray((len(b) * bits + 7) // 8)
        for i, x in enumerate(b):
            out[i // per] |= (x & ((1 << bits) - 1)) << ((i % per) * bits)
        t.raw_data = bytes(out)
    else:
        t.raw_data = bytes(b)
    return t


def np_tensor(name, arr):
    return onnx.numpy_helper.from_array(arr, name)


def write(name, node, ins, outs, opset):
    """ins/outs: lists of TensorProto (name, type and shape taken from them)."""
    def vi(t):
        return helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
    graph = helper.make_graph([node], name, [vi(t) for t in ins], [vi(t) for t in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="onnx-run spec_cases")
    model.ir_version = 13
    d = os.path.join(ROOT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    onnx.save(model, os.path.join(d, "model.onnx"))
    for kind, ts in (("input", ins), ("output", outs)):
        for k, t in enumerate(ts):
            with open(os.path.join(d, "test_data_set_0", "%s_%d.pb" % (kind, k)), "wb") as f:
                f.write(t.SerializeToString())


NAMES = {E4M3FN: "float8e4m3fn", E4M3FNUZ: "float8e4m3fnuz", E5M2: "float8e5m2",
         E5M2FNUZ: "float8e5m2fnuz", UINT4: "uint4", INT4: "int4", FLOAT4: "float4e2m1",
         UINT2: "uint2", INT2: "int2"}
SINCE = {E4M3FN: 19, E4M3FNUZ: 19, E5M2: 19, E5M2FNUZ: 19, UINT4: 21, INT4: 21, FLOAT4: 23,
         UINT2: 25, INT2: 25}


def cast_cases(x):
    for dt in NAMES:
        for sat in ((1, 0) if dt in (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ) else (1,)):
            opset = SINCE[dt]
            y = convert(dt, x, bool(sat))
            attrs = {"to": dt}
            if dt < UINT4:
                attrs["saturate"] = sat
            node = helper.make_node("Cast", ["x"], ["y"], **attrs)
            write("cast_float_to_%s%s" % (NAMES[dt], "" if sat else "_nosat"), node,
                  [np_tensor("x", x)], [lowp_tensor("y", dt, x.shape, y)], opset)
        # and back to float32 (every pattern of the float types)
        codes = list(range(256 if dt < UINT4 else 16)) if dt not in IRANGE else \
            list(range(IRANGE[dt][0], IRANGE[dt][1] + 1))
        back = np.array([value_of(dt, c & 0xFF if dt in IRANGE else c) if dt not in IRANGE
                         else float(c) for c in codes], np.float32)
        node = helper.make_node("Cast", ["x"], ["y"], to=1)
        write("cast_%s_to_float" % NAMES[dt], node,
              [lowp_tensor("x", dt, [len(codes)], codes)], [np_tensor("y", back)], SINCE[dt])


def quant_cases(r):
    x = (r.standard_normal((2, 3, 5)) * 6).astype(np.float32)
    x.flat[:6] = [0.5, -0.5, 1.5, 2.5, 1000, -1000]
    for dt in NAMES:
        opset = max(SINCE[dt], 21)
        scale = np.float32(0.5)
        q = (x / scale).astype(np.float32).astype(np.float64)
        if dt in IRANGE:
            lo, hi = IRANGE[dt]
            zp = 1 if lo < 0 else 2
            y = [int(min(max(np.rint(v) + zp, lo), hi)) for v in q.flat]
        else:
            zp = 0
            y = [encode(dt, v) for v in q.flat]
        node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1)
        write("quantizelinear_%s" % NAMES[dt], node,
              [np_tensor("x", x), np_tensor("s", np.array(scale)),
               lowp_tensor("z", dt, [], [zp if dt in IRANGE else 0])],
              [lowp_tensor("y", dt, x.shape, y)], opset)
        # DequantizeLinear of those, per axis 1 (scales [3]) with an odd count
        sc = np.array([0.25, 0.5, 2.0], np.float32)
        zq = [zp, 0, zp] if dt in IRANGE else [0, 0, 0]
        vals = np.array([value_of(dt, c) for c in y], np.float64).reshape(x.shape)
        ys = np.empty(x.shape, np.float32)
        for c in range(3):
            ys[:, c, :] = ((vals[:, c, :] - zq[c]).astype(np.float32) * sc[c]).astype(np.float32)
        node = helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=1)
        write("dequantizelinear_%s_axis" % NAMES[dt], node,
              [lowp_tensor("x", dt, x.shape, y), np_tensor("s", sc), lowp_tensor("z", dt, [3], zq)],
              [np_tensor("y", ys)], opset)
    # blocked int4 with an odd axis length (packed tensors of odd element counts)
    xb = (r.standard_normal((3, 7)) * 5).astype(np.float32)
    sb = (np.abs(r.standard_normal((3, 3))) + 0.2).astype(np.float32)
    zb = r.integers(-3, 3, (3, 3))
    full_s = np.repeat(sb, 3, axis=1)[:, :7]
    full_z = np.repeat(zb, 3, axis=1)[:, :7]
    qb = (xb / full_s).astype(np.float32).astype(np.float64)
    yb = [int(min(max(np.rint(v) + z, -8), 7)) for v, z in zip(qb.flat, full_z.flat)]
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1, block_size=3)
    write("quantizelinear_int4_blocked_odd", node,
          [np_tensor("x", xb), np_tensor("s", sb), lowp_tensor("z", INT4, [3, 3], zb.flat)],
          [lowp_tensor("y", INT4, [3, 7], yb)], 21)
    # float8 without saturation: out of range values become NaN / inf
    big = np.array([1e6, -1e6, 449, 470, np.inf, -np.inf, np.nan, 3.3], np.float32)
    for dt in (E4M3FN, E5M2):
        y = [encode(dt, float(v), False) for v in big]
        node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], saturate=0)
        write("quantizelinear_%s_nosat" % NAMES[dt], node,
              [np_tensor("x", big), np_tensor("s", np.array(np.float32(1))),
               lowp_tensor("z", dt, [], [0])], [lowp_tensor("y", dt, [8], y)], 19)


def main():
    r = rng(8)
    x = np.concatenate([
        np.array([0, -0.0, 1, -1, 0.5, 1.0625, 1.1875, 2.5, 3.5, 5, 7, 448, 449, 464, 465, 480,
                  500, 240, 250, 57344, 61440, 70000, 1e-3, 2 ** -10, 2 ** -9 * 1.5, -2 ** -17,
                  np.inf, -np.inf, np.nan, 0.25, 0.75, -0.25, 1.25, 1.75, 2.9, -6.5, 15.5, -8.5],
                 np.float32),
        (r.standard_normal(20) * 40).astype(np.float32)])
    cast_cases(x)
    quant_cases(r)


if __name__ == "__main__":
    main()
