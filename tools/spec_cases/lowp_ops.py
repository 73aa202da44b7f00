"""Data-movement and shape operators, Constant/ConstantOfShape and Cast to
and from float8e8m0 for the 8-, 4- and 2-bit element types, at the opsets
whose schemas list them (float8 from 19 for Reshape, Shape, Size,
Identity, Constant; 20 for ConstantOfShape; 21 for Flatten, Squeeze,
Unsqueeze, Transpose, Pad; int4/uint4 21, float4e2m1 23, float8e8m0 24,
int2/uint2 25).

Elements are handled as their bit patterns ("codes": the byte of a float8,
the nibble of a 4-bit type, the 2 bits of a 2-bit one). The expected
outputs are computed with numpy on arrays of codes -- np.transpose,
np.reshape, np.pad, ... -- and the files are packed with numpy here
(4-bit elements two to a byte, 2-bit ones four, first element in the low
bits, an odd count leaving the last byte's high bits zero), independently
of onnx-run's loader. Shapes have odd element counts on purpose, and Pad
crops with negative pads so that a copied row starts in the middle of a
packed byte. Cast values for the other formats come from quant_lowp.py's
brute-force encoder; float8e8m0 is computed here from its definition
(see e8m0()).
    /usr/bin/python3 tools/spec_cases/lowp_ops.py
"""
import math
import os
import shutil

import numpy as np
import onnx
from onnx import helper, numpy_helper

from common import ROOT, rng
from quant_lowp import FMT, IRANGE, decode, encode

E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ, UINT4, INT4, FLOAT4, E8M0, UINT2, INT2 = range(17, 27)
NAMES = {E4M3FN: "float8e4m3fn", E4M3FNUZ: "float8e4m3fnuz", E5M2: "float8e5m2",
         E5M2FNUZ: "float8e5m2fnuz", UINT4: "uint4", INT4: "int4", FLOAT4: "float4e2m1",
         E8M0: "float8e8m0", UINT2: "uint2", INT2: "int2"}
BITS = {UINT4: 4, INT4: 4, FLOAT4: 4, UINT2: 2, INT2: 2}
FLOAT8 = (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ)


def since(dt, float8_since):
    return {UINT4: 21, INT4: 21, FLOAT4: 23, E8M0: 24, UINT2: 25, INT2: 25}.get(dt, float8_since)


def bits(dt):
    return BITS.get(dt, 8)


def pack(codes, dt):
    """Codes (any shape) to the packed bytes of a file, row-major."""
    b = bits(dt)
    c = np.asarray(codes).astype(np.int64).ravel() & ((1 << b) - 1)
    c = c.astype(np.uint8)
    if b == 8:
        return c.tobytes()
    per = 8 // b
    c = np.concatenate([c, np.zeros((-len(c)) % per, np.uint8)]).reshape(-1, per)
    shifted = c << (np.arange(per, dtype=np.uint8) * b)
    return np.bitwise_or.reduce(shifted, axis=1).astype(np.uint8).tobytes()


def tensor(name, dt, codes):
    """A TensorProto of type dt holding an ndarray of codes."""
    codes = np.asarray(codes)
    t = onnx.TensorProto()
    t.name = name
    t.data_type = dt
    t.dims.extend(codes.shape)
    t.raw_data = pack(codes, dt)
    return t


def np_tensor(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def random_codes(r, dt, shape):
    return r.integers(0, 1 << bits(dt), size=shape).astype(np.int64)


def write(name, nodes, ins, outs, opset, inits=()):
    """ins/outs/inits: TensorProtos (graph inputs take name, type and shape
    from them)."""
    def vi(t):
        return helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
    nodes = nodes if isinstance(nodes, list) else [nodes]
    graph = helper.make_graph(nodes, name, [vi(t) for t in ins], [vi(t) for t in outs],
                              initializer=list(inits))
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


# ---- data movement -----------------------------------------------------------

def transpose_cases(r):
    cases = [(INT4, (3, 5), None), (UINT4, (2, 3, 5), (1, 2, 0)), (FLOAT4, (3, 5), None),
             (E8M0, (4, 3), None), (INT2, (3, 5, 3), (2, 0, 1)), (UINT2, (7, 3), (1, 0)),
             (E4M3FN, (3, 4, 5), (2, 1, 0)), (E4M3FNUZ, (5, 3), None),
             (E5M2, (1, 3, 5), (0, 2, 1)), (E5M2FNUZ, (3, 1, 3), (1, 2, 0))]
    for dt, shape, perm in cases:
        x = random_codes(r, dt, shape)
        y = np.transpose(x, perm)
        attrs = {"perm": list(perm)} if perm else {}
        node = helper.make_node("Transpose", ["x"], ["y"], **attrs)
        write("transpose_%d_%s_%s" % (since(dt, 21), NAMES[dt], "x".join(map(str, shape))),
              node, [tensor("x", dt, x)], [tensor("y", dt, y)], since(dt, 21))


def view_cases(r):
    # Reshape (float8 from 19), with a -1 and a 0
    for dt, shape, req in [(E5M2, (2, 6), (3, -1)), (INT4, (15,), (5, 3)),
                           (UINT2, (3, 5), (0, -1, 1)), (FLOAT4, (3, 3), (9,)),
                           (E8M0, (2, 2, 2), (4, 2))]:
        x = random_codes(r, dt, shape)
        want = list(req)
        for i, v in enumerate(want):
            if v == 0:
                want[i] = shape[i]
        y = x.reshape(want)
        node = helper.make_node("Reshape", ["x", "s"], ["y"])
        opset = since(dt, 19)
        write("reshape_%d_%s" % (opset, NAMES[dt]), node,
              [tensor("x", dt, x), np_tensor("s", np.array(req, np.int64))],
              [tensor("y", dt, y)], opset)
    # Flatten, Squeeze, Unsqueeze (21)
    for dt, shape, axis in [(UINT4, (2, 3, 3), 2), (INT2, (3, 1, 5), -1),
                            (E4M3FNUZ, (3, 5), 0)]:
        x = random_codes(r, dt, shape)
        a = axis if axis >= 0 else axis + len(shape)
        y = x.reshape(int(np.prod(shape[:a])), -1)
        node = helper.make_node("Flatten", ["x"], ["y"], axis=axis)
        write("flatten_%d_%s" % (since(dt, 21), NAMES[dt]), node,
              [tensor("x", dt, x)], [tensor("y", dt, y)], since(dt, 21))
    for dt, shape, axes in [(INT4, (1, 3, 1, 5), [0, 2]), (E8M0, (3, 1), None),
                            (UINT2, (1, 7), [-2])]:
        x = random_codes(r, dt, shape)
        y = np.squeeze(x, tuple(axes) if axes else None)
        ins = [tensor("x", dt, x)]
        node = helper.make_node("Squeeze", ["x", "a"] if axes else ["x"], ["y"])
        if axes:
            ins.append(np_tensor("a", np.array(axes, np.int64)))
        write("squeeze_%d_%s" % (since(dt, 21), NAMES[dt]), node, ins,
              [tensor("y", dt, y)], since(dt, 21))
    for dt, shape, axes in [(FLOAT4, (3, 5), [0, -1]), (INT2, (5,), [1]),
                            (E5M2, (3, 3), [1])]:
        x = random_codes(r, dt, shape)
        y = x
        out_rank = len(shape) + len(axes)
        for a in sorted(a if a >= 0 else a + out_rank for a in axes):
            y = np.expand_dims(y, a)
        node = helper.make_node("Unsqueeze", ["x", "a"], ["y"])
        write("unsqueeze_%d_%s" % (since(dt, 21), NAMES[dt]), node,
              [tensor("x", dt, x), np_tensor("a", np.array(axes, np.int64))],
              [tensor("y", dt, y)], since(dt, 21))
    # Identity, Shape, Size (19)
    for dt, shape in [(INT2, (7,)), (E8M0, (3, 3)), (E4M3FN, (5,)), (UINT4, (3, 3))]:
        x = random_codes(r, dt, shape)
        node = helper.make_node("Identity", ["x"], ["y"])
        write("identity_%d_%s" % (since(dt, 19), NAMES[dt]), node,
              [tensor("x", dt, x)], [tensor("y", dt, x)], since(dt, 19))
    for dt, shape, start in [(INT4, (3, 5), None), (UINT2, (2, 3, 5), 1),
                             (E5M2FNUZ, (3, 1), None)]:
        x = random_codes(r, dt, shape)
        attrs = {"start": start} if start is not None else {}
        node = helper.make_node("Shape", ["x"], ["y"], **attrs)
        write("shape_%d_%s" % (since(dt, 19), NAMES[dt]), node, [tensor("x", dt, x)],
              [np_tensor("y", np.array(shape[start or 0:], np.int64))], since(dt, 19))
    for dt, shape in [(FLOAT4, (3, 5)), (INT2, (3, 3)), (E8M0, (2, 0))]:
        x = random_codes(r, dt, shape)
        node = helper.make_node("Size", ["x"], ["y"])
        write("size_%d_%s" % (since(dt, 19), NAMES[dt]), node, [tensor("x", dt, x)],
              [np_tensor("y", np.array(int(np.prod(shape)), np.int64))], since(dt, 19))


def pad_cases(r):
    # (type, shape, pads, mode, constant code or None, axes or None)
    cases = [(INT4, (3, 5), [1, -1, 0, 2], "constant", -3 & 0xF, None),
             (UINT4, (3, 5), [0, 2, 1, 1], "edge", None, None),
             (FLOAT4, (3, 5), [1, 3, 1, 2], "reflect", None, None),
             (E8M0, (3, 3), [2, 1, 1, 2], "wrap", None, None),
             (INT2, (3, 3), [2, -1], "constant", None, [1]),
             (UINT2, (5, 3), [0, 1, -1, 2], "constant", 2, None),
             (E4M3FN, (3, 5), [0, 1, 0, 2], "constant", 0xB8, None),
             (E5M2FNUZ, (2, 3), [1, 0, 0, 1], "edge", None, None)]
    for dt, shape, pads, mode, cval, axes in cases:
        x = random_codes(r, dt, shape)
        rank = len(shape)
        ax = axes if axes else list(range(rank))
        na = len(ax)
        before, after = [0] * rank, [0] * rank
        for i, a in enumerate(ax):
            before[a], after[a] = pads[i], pads[na + i]
        # negative pads crop first, then numpy pads what is left
        crop = tuple(slice(max(-b, 0), shape[k] - max(-a, 0))
                     for k, (b, a) in enumerate(zip(before, after)))
        width = [(max(b, 0), max(a, 0)) for b, a in zip(before, after)]
        kw = {"constant_values": cval or 0} if mode == "constant" else {}
        y = np.pad(x[crop], width, mode={"wrap": "wrap", "edge": "edge", "reflect": "reflect",
                                          "constant": "constant"}[mode], **kw)
        ins = [tensor("x", dt, x), np_tensor("p", np.array(pads, np.int64))]
        names = ["x", "p"]
        if cval is not None:
            ins.append(tensor("c", dt, np.array(cval)))
            names.append("c")
        if axes:
            if cval is None:
                names.append("")
            ins.append(np_tensor("a", np.array(axes, np.int64)))
            names.append("a")
        node = helper.make_node("Pad", names, ["y"], mode=mode)
        opset = since(dt, 21)
        write("pad_%d_%s_%s" % (opset, NAMES[dt], mode), node, ins, [tensor("y", dt, y)],
              opset)


def constant_cases(r):
    for dt, shape in [(INT4, (5,)), (E4M3FNUZ, (2, 3)), (E8M0, (3,)), (UINT2, (3, 3)),
                      (FLOAT4, (1, 5))]:
        v = random_codes(r, dt, shape)
        node = helper.make_node("Constant", [], ["y"], value=tensor("v", dt, v))
        write("constant_%d_%s" % (since(dt, 19), NAMES[dt]), node, [], [tensor("y", dt, v)],
              since(dt, 19))
    for dt, code, shape in [(INT4, -5 & 0xF, (3, 3)), (E5M2, 0x3D, (2, 3)),
                            (INT2, -2 & 3, (2, 5)), (E8M0, 130, (3,)), (FLOAT4, 0xB, (1, 3))]:
        node = helper.make_node("ConstantOfShape", ["s"], ["y"],
                                value=tensor("v", dt, np.array([code])))
        write("constantofshape_%d_%s" % (since(dt, 20), NAMES[dt]), node,
              [np_tensor("s", np.array(shape, np.int64))],
              [tensor("y", dt, np.full(shape, code))], since(dt, 20))


def chain_case(r):
    """int4 through Transpose -> Reshape -> Pad (cropping one element) ->
    Flatten, from an initializer with an odd count."""
    x = random_codes(r, INT4, (3, 5))
    t = np.transpose(x)                     # 5x3
    s = t.reshape(3, 5)
    p = np.pad(s[:, 1:], [(0, 0), (0, 1)], constant_values=0)  # crop the first column
    y = p.reshape(1, -1)
    nodes = [helper.make_node("Transpose", ["w"], ["t"]),
             helper.make_node("Reshape", ["t", "s"], ["u"]),
             helper.make_node("Pad", ["u", "p"], ["v"]),
             helper.make_node("Flatten", ["v"], ["y"], axis=0)]
    write("lowp_chain_21_int4", nodes, [], [tensor("y", INT4, y)], 21,
          inits=[tensor("w", INT4, x), np_tensor("s", np.array([3, 5], np.int64)),
                 np_tensor("p", np.array([0, -1, 0, 1], np.int64))])


# ---- Cast -----------------------------------------------------------------------

def e8m0(x, saturate=True, round_mode="up"):
    """float8e8m0 codes of x by the definition: through float32, sign
    dropped, the power of two 2^k <= |x| < 2^(k+1) kept (down), or the next
    one when |x| is above 2^k (up) or at least 1.5 * 2^k (nearest, ties
    up). NaN gives NaN; infinity and results past 2^127 give 2^127 when
    saturating (NaN otherwise); zero and magnitudes under 2^-127 give
    2^-127 when saturating (NaN otherwise)."""
    out = []
    for v in np.asarray(x, np.float32).ravel():
        a = abs(float(v))
        if math.isnan(a):
            out.append(0xFF)
            continue
        if math.isinf(a):
            out.append(0xFE if saturate else 0xFF)
            continue
        if a < 2.0 ** -127:
            out.append(0x00 if saturate else 0xFF)
            continue
        fr, ex = math.frexp(a)              # a = fr * 2^ex, fr in [0.5, 1)
        k = ex - 1                          # 2^k <= a < 2^(k+1)
        up = {"down": False, "up": a > 2.0 ** k, "nearest": a >= 1.5 * 2.0 ** k}[round_mode]
        e = k + up + 127
        out.append(e if e <= 254 else (0xFE if saturate else 0xFF))
    return np.array(out, np.int64).reshape(np.shape(x))


def e8m0_value(c):
    return math.nan if c == 0xFF else 2.0 ** (c - 127)


def cast_e8m0_cases():
    x = np.array([0.0, 1.0, 1.125, 1.25, 1.5, 1.75, 3.0, 0.124, 0.25, 4.0, 6.0, 7.0, 1e-3,
                  2.0 ** 126 * 1.5, 2.0 ** 127, 2.0 ** 127 * 1.25, 3.4e38, np.inf, -np.inf,
                  np.nan, -4.0, -3.0, 2.0 ** -127, 2.0 ** -127 * 1.25, 2.0 ** -127 * 1.5,
                  2.0 ** -128, 2.0 ** -126, 1e-45, 5.0, 12.0], np.float32)
    for mode in ("up", "down", "nearest"):
        for sat in (1, 0):
            attrs = {"to": E8M0}
            if mode != "up":
                attrs["round_mode"] = mode
            if not sat:
                attrs["saturate"] = 0
            node = helper.make_node("Cast", ["x"], ["y"], **attrs)
            write("cast_24_float_to_float8e8m0_%s%s" % (mode, "" if sat else "_nosat"), node,
                  [np_tensor("x", x)], [tensor("y", E8M0, e8m0(x, bool(sat), mode))], 24)
    # CastLike with round_mode, from float16 and double
    for src, mode in ((np.float16, "nearest"), (np.float64, "down")):
        xs = x.astype(src)
        node = helper.make_node("CastLike", ["x", "like"], ["y"], round_mode=mode)
        write("castlike_24_%s_to_float8e8m0_%s" % (np.dtype(src).name, mode), node,
              [np_tensor("x", xs), tensor("like", E8M0, np.array([127]))],
              [tensor("y", E8M0, e8m0(xs.astype(np.float32), True, mode))], 24)
    # strings parse, then round (up)
    s = np.array(["1.5", "3", "0.1", "1e-30", "-8", "NaN", "INF"], dtype=object)
    node = helper.make_node("Cast", ["x"], ["y"], to=E8M0)
    write("cast_24_string_to_float8e8m0", node, [np_tensor("x", s)],
          [tensor("y", E8M0, e8m0(np.array([float(v) for v in s], np.float32)))], 24)
    # every pattern back to float32, float16 and double
    codes = np.arange(256)
    vals = np.array([e8m0_value(c) for c in codes])
    for dt, name in ((np.float32, "float"), (np.float16, "float16"), (np.float64, "double")):
        node = helper.make_node("Cast", ["x"], ["y"], to=helper.np_dtype_to_tensor_dtype(
            np.dtype(dt)) if hasattr(helper, "np_dtype_to_tensor_dtype")
            else onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype(dt)])
        write("cast_24_float8e8m0_to_%s" % name, node, [tensor("x", E8M0, codes)],
              [np_tensor("y", vals.astype(dt))], 24)


def code_value(dt, c):
    if dt in IRANGE:
        lo, hi = IRANGE[dt]
        v = int(c)
        return float(v - (1 << bits(dt)) if lo < 0 and v > hi else v)
    if dt == E8M0:
        return e8m0_value(c)
    return decode(dt, c)


def to_code(dt, v):
    if dt in IRANGE:
        lo, hi = IRANGE[dt]
        return 0 if math.isnan(v) else int(min(max(np.rint(v), lo), hi)) & ((1 << bits(dt)) - 1)
    if dt == E8M0:
        return int(e8m0(np.array([v]))[0])
    return encode(dt, v, True)


def cast_lowp_cases():
    """Between the low-precision types: every pattern of the source."""
    pairs = [(INT4, E4M3FN), (E5M2, INT4), (FLOAT4, INT2), (UINT2, FLOAT4),
             (E4M3FN, E5M2), (E8M0, E4M3FN), (UINT4, E8M0), (E5M2FNUZ, UINT4),
             (FLOAT4, E4M3FNUZ), (INT2, E5M2FNUZ)]
    for s, d in pairs:
        codes = np.arange(1 << bits(s))
        y = np.array([to_code(d, code_value(s, c)) for c in codes])
        opset = max(since(s, 19), since(d, 19))
        node = helper.make_node("Cast", ["x"], ["y"], to=d)
        write("cast_%d_%s_to_%s" % (opset, NAMES[s], NAMES[d]), node,
              [tensor("x", s, codes)], [tensor("y", d, y)], opset)
    # CastLike between two of them
    codes = np.arange(16)
    y = np.array([to_code(INT2, code_value(INT4, c)) for c in codes])
    node = helper.make_node("CastLike", ["x", "like"], ["y"])
    write("castlike_25_int4_to_int2", node,
          [tensor("x", INT4, codes), tensor("like", INT2, np.array([1]))],
          [tensor("y", INT2, y)], 25)


def empty_cases():
    """Zero elements of a packed type: no bytes in the file, the shape kept."""
    x = np.zeros((0, 3), np.int64)
    node = helper.make_node("Identity", ["x"], ["y"])
    write("identity_25_int2_empty", node, [tensor("x", INT2, x)], [tensor("y", INT2, x)], 25)
    node = helper.make_node("Size", ["x"], ["y"])
    write("size_21_uint4_empty", node, [tensor("x", UINT4, x)],
          [np_tensor("y", np.array(0, np.int64))], 21)
    node = helper.make_node("Transpose", ["x"], ["y"])
    write("transpose_23_float4e2m1_empty", node, [tensor("x", FLOAT4, x)],
          [tensor("y", FLOAT4, x.T)], 23)


def main():
    r = rng(2412)
    transpose_cases(r)
    view_cases(r)
    pad_cases(r)
    constant_cases(r)
    chain_case(r)
    cast_e8m0_cases()
    cast_lowp_cases()
    empty_cases()
    assert FMT  # quant_lowp's formats back the float8/float4 encoder


if __name__ == "__main__":
    main()
