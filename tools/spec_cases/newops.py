"""Spec-derived cases for the operators the spec audit (tools/spec-audit.md)
found missing or under-typed, beyond the ONNX 1.12 suite:
    BitwiseAnd/Or/Xor (18): numpy &, |, ^ with numpy (multidirectional)
          broadcasting, every integer type the schema lists.
    BitwiseNot (18): numpy ~ per element.
    Swish (24): x * sigmoid(alpha * x) (the function body:
          Mul(X, Sigmoid(Mul(CastLike(alpha, X), X)))), computed in float64
          and rounded to the input type.
    TensorScatter (24): the specification's pseudocode, literally: present =
          copy of past; for every prefix index p before `axis` and s <
          sequence_length, present[p, w(s)] = update[p, s] with w(s) =
          write_indices[p[0]] + s, modulo max_sequence_length when mode is
          "circular".
    BitCast (26): numpy's ndarray.view for types of 8 bits and more (memory
          is little endian, as the specification requires); float8, int4,
          uint4, float4e2m1, int2, uint2 as raw bit patterns (the same bits
          in the output, 4- and 2-bit elements packed low bits first).
    DeformConv (19, 22): the specification's definition, literally, in
          float64: for each output position o and tap k of input channel c,
          p = o*strides - pads_begin + k*dilations + offset[n, og, k, :, o]
          (offset read as [N, offset_group, K, nsp, o...]), X sampled at p
          by N-linear interpolation with neighbours outside the input as 0,
          times mask[n, og, k, o] (1 without a mask) and W, plus B.
    MaxRoiPool (1, 22): the reference implementation's loops: region
          corners round(v * spatial_scale) (Python's round, half to even),
          size max(end - start + 1, 1), bin (i, j) rows [floor(i*bh),
          ceil((i+1)*bh)) from the start, clipped to the input; the bin's max,
          or 0 when clipping emptied it.
    IsNaN / IsInf (20): the float8 inputs version 20 added, given as raw bytes
          (numpy has no float8): e4m3fn NaN is S.1111.111, e4m3fnuz and
          e5m2fnuz have one NaN (0x80) and no infinity, e5m2 infinities are
          S.11111.00 and NaNs S.11111.xx (xx != 0).
    /usr/bin/python3 tools/spec_cases/newops.py
"""
import os
import shutil

import numpy as np
import onnx
from onnx import helper, numpy_helper

from common import ROOT, rng, write_case

INT_TYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def rand_int(r, shape, dt):
    info = np.iinfo(dt)
    return r.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)


def bitwise_cases():
    r = rng(18)
    ops = {"BitwiseAnd": np.bitwise_and, "BitwiseOr": np.bitwise_or,
           "BitwiseXor": np.bitwise_xor}
    for op, f in ops.items():
        for dt in INT_TYPES:
            a = rand_int(r, (3, 4, 5), dt)
            b = rand_int(r, (3, 4, 5), dt)
            write_case("%s_%s" % (op.lower(), np.dtype(dt).name), helper.make_node(op, ["a", "b"], ["c"]),
                       [("a", a), ("b", b)], [("c", f(a, b))], 18)
        # broadcast: [3,1,5] with [4,1], and a scalar
        a = rand_int(r, (3, 1, 5), np.int32)
        b = rand_int(r, (4, 1), np.int32)
        write_case("%s_bcast_int32" % op.lower(), helper.make_node(op, ["a", "b"], ["c"]),
                   [("a", a), ("b", b)], [("c", f(a, b))], 18)
        a = rand_int(r, (2, 3), np.uint8)
        b = np.array(0x5A, dtype=np.uint8)
        write_case("%s_scalar_uint8" % op.lower(), helper.make_node(op, ["a", "b"], ["c"]),
                   [("a", a), ("b", b)], [("c", f(a, b))], 24)
    for dt in INT_TYPES:
        x = rand_int(r, (3, 4, 5), dt)
        write_case("bitwisenot_%s" % np.dtype(dt).name, helper.make_node("BitwiseNot", ["x"], ["y"]),
                   [("x", x)], [("y", np.invert(x))], 18)
    x = np.array([], dtype=np.int64).reshape(0, 3)
    write_case("bitwisenot_empty_int64", helper.make_node("BitwiseNot", ["x"], ["y"]),
               [("x", x)], [("y", np.invert(x))], 18)


def swish_ref(x, alpha):
    x64 = x.astype(np.float64)
    a = np.float64(np.asarray(alpha, dtype=x.dtype))  # CastLike(alpha, X)
    return (x64 / (1.0 + np.exp(-a * x64))).astype(x.dtype)


def swish_cases():
    r = rng(24)
    x = r.standard_normal((3, 4, 5)).astype(np.float32) * 4
    write_case("swish24_default_float", helper.make_node("Swish", ["x"], ["y"]),
               [("x", x)], [("y", swish_ref(x, 1.0))], 24)
    write_case("swish24_alpha_float", helper.make_node("Swish", ["x"], ["y"], alpha=1.702),
               [("x", x)], [("y", swish_ref(x, 1.702))], 24)
    x = np.array([-100.0, -20.0, -1.0, -0.0, 0.0, 1e-8, 1.0, 20.0, 100.0, np.inf, -np.inf, np.nan],
                 dtype=np.float64)
    write_case("swish24_edges_double", helper.make_node("Swish", ["x"], ["y"], alpha=0.5),
               [("x", x)], [("y", swish_ref(x, 0.5))], 24)
    x = (r.standard_normal((2, 7)) * 3).astype(np.float16)
    write_case("swish24_float16", helper.make_node("Swish", ["x"], ["y"], alpha=2.0),
               [("x", x)], [("y", swish_ref(x, 2.0))], 24)
    # alpha not representable in float16: CastLike rounds it to 1.7021484375 first
    x = (r.standard_normal((4, 64)) * 6).astype(np.float16)
    write_case("swish24_float16_alpha", helper.make_node("Swish", ["x"], ["y"], alpha=1.702),
               [("x", x)], [("y", swish_ref(x, 1.702))], 24)


def write_raw_case(name, node, in_name, elem_type, raw, shape, out_name, out, opset):
    """A case whose input is given as raw bytes of an element type numpy lacks."""
    graph = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info(in_name, elem_type, list(shape))],
        [helper.make_tensor_value_info(out_name, onnx.TensorProto.BOOL, list(out.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="onnx-run spec_cases")
    model.ir_version = 9
    d = os.path.join(ROOT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    onnx.save(model, os.path.join(d, "model.onnx"))
    t = onnx.TensorProto()
    t.name = in_name
    t.data_type = elem_type
    t.dims.extend(shape)
    t.raw_data = bytes(raw)
    with open(os.path.join(d, "test_data_set_0", "input_0.pb"), "wb") as f:
        f.write(t.SerializeToString())
    with open(os.path.join(d, "test_data_set_0", "output_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(out, out_name).SerializeToString())


F8 = {  # name: (TensorProto type, is_nan(byte), is_inf(byte) -> +1/-1/0)
    "e4m3fn": (17, lambda b: (b & 0x7F) == 0x7F, lambda b: 0),
    "e4m3fnuz": (18, lambda b: b == 0x80, lambda b: 0),
    "e5m2": (19, lambda b: (b & 0x7C) == 0x7C and (b & 0x03) != 0,
             lambda b: (1 if b == 0x7C else -1 if b == 0xFC else 0)),
    "e5m2fnuz": (20, lambda b: b == 0x80, lambda b: 0),
}


def isnan_isinf_f8_cases():
    raw = list(range(256))  # every byte value once
    shape = (16, 16)
    for fname, (et, is_nan, is_inf) in F8.items():
        nan = np.array([is_nan(b) for b in raw], dtype=bool).reshape(shape)
        write_raw_case("isnan20_float8%s" % fname, helper.make_node("IsNaN", ["x"], ["y"]),
                       "x", et, raw, shape, "y", nan, 20)
        inf = np.array([is_inf(b) != 0 for b in raw], dtype=bool).reshape(shape)
        write_raw_case("isinf20_float8%s" % fname, helper.make_node("IsInf", ["x"], ["y"]),
                       "x", et, raw, shape, "y", inf, 20)
        neg = np.array([is_inf(b) < 0 for b in raw], dtype=bool).reshape(shape)
        write_raw_case("isinf20_neg_float8%s" % fname,
                       helper.make_node("IsInf", ["x"], ["y"], detect_positive=0),
                       "x", et, raw, shape, "y", neg, 20)


def tensorscatter_ref(past, update, write_indices, axis, mode):
    axis = axis % past.ndim
    present = past.copy()
    seq = update.shape[axis]
    maxs = past.shape[axis]
    wi = write_indices if write_indices is not None else np.zeros(past.shape[0], np.int64)
    for prefix in np.ndindex(past.shape[:axis]):
        for s in range(seq):
            w = wi[prefix[0]] + s
            if mode == "circular":
                w = w % maxs
            present[prefix + (w,)] = update[prefix + (s,)]
    return present


def tensorscatter_case(name, past, update, wi=None, axis=None, mode=None):
    attrs = {}
    if axis is not None:
        attrs["axis"] = axis
    if mode is not None:
        attrs["mode"] = mode
    ins = ["past_cache", "update"] + (["write_indices"] if wi is not None else [])
    node = helper.make_node("TensorScatter", ins, ["present_cache"], **attrs)
    y = tensorscatter_ref(past, update, wi, -2 if axis is None else axis, mode or "linear")
    inputs = [("past_cache", past), ("update", update)]
    if wi is not None:
        inputs.append(("write_indices", wi))
    write_case("tensorscatter24_" + name, node, inputs, [("present_cache", y)], 24)


def tensorscatter_cases():
    r = rng(2024)
    past = r.standard_normal((2, 3, 8, 4)).astype(np.float32)
    upd = r.standard_normal((2, 3, 3, 4)).astype(np.float32)
    tensorscatter_case("linear_default", past, upd)
    tensorscatter_case("linear_indices", past, upd, np.array([1, 5], np.int64))
    tensorscatter_case("circular_wrap", past, upd, np.array([6, 9], np.int64), mode="circular")
    tensorscatter_case("linear_full", past, r.standard_normal((2, 3, 8, 4)).astype(np.float32),
                       np.array([0, 0], np.int64))
    tensorscatter_case("empty_update", past, np.zeros((2, 3, 0, 4), np.float32),
                       np.array([7, 8], np.int64))
    # axis 1 of a 3-D cache [B, S, D], and the last axis
    past3 = r.integers(-100, 100, (3, 6, 5)).astype(np.int8)
    tensorscatter_case("axis1_int8", past3, r.integers(-100, 100, (3, 2, 5)).astype(np.int8),
                       np.array([0, 2, 4], np.int64), axis=1)
    tensorscatter_case("axis_last_circular_int64", past3.astype(np.int64),
                       r.integers(0, 9, (3, 6, 4)).astype(np.int64), np.array([3, 5, 0], np.int64),
                       axis=-1, mode="circular")
    tensorscatter_case("float16", past.astype(np.float16), upd.astype(np.float16),
                       np.array([2, 4], np.int64))
    tensorscatter_case("double_circular", past.astype(np.float64), upd.astype(np.float64),
                       np.array([7, 0], np.int64), mode="circular")
    tensorscatter_case("bool", r.integers(0, 2, (2, 5, 3)).astype(bool),
                       r.integers(0, 2, (2, 2, 3)).astype(bool), np.array([3, 1], np.int64), axis=1)
    tensorscatter_case("string", np.array([["a", "b", "c", "d"], ["e", "f", "g", "h"]], dtype=object),
                       np.array([["X", "Y"], ["Z", "W"]], dtype=object), np.array([1, 3], np.int64),
                       axis=1, mode="circular")


def raw_tensor(name, elem_type, shape, raw):
    t = onnx.TensorProto()
    t.name = name
    t.data_type = elem_type
    t.dims.extend(shape)
    t.raw_data = bytes(raw)
    return t


def write_raw_io_case(name, node, opset, inp, out):
    """inp/out: (name, elem_type, shape, raw bytes) -- for types numpy lacks."""
    graph = helper.make_graph(
        [node], name, [helper.make_tensor_value_info(inp[0], inp[1], list(inp[2]))],
        [helper.make_tensor_value_info(out[0], out[1], list(out[2]))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="onnx-run spec_cases")
    model.ir_version = 11
    d = os.path.join(ROOT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    onnx.save(model, os.path.join(d, "model.onnx"))
    for k, (fn, t) in enumerate((("input_0.pb", inp), ("output_0.pb", out))):
        with open(os.path.join(d, "test_data_set_0", fn), "wb") as f:
            f.write(raw_tensor(*t).SerializeToString())


def pack(vals, bits):
    """Elements (their low `bits` bits) packed into bytes, the first lowest."""
    per = 8 // bits
    out = bytearray((len(vals) + per - 1) // per)
    for i, v in enumerate(vals):
        out[i // per] |= (v & ((1 << bits) - 1)) << (bits * (i % per))
    return out


TP = onnx.TensorProto


def bitcast_cases():
    r = rng(26)
    views = [(np.float32, np.int32), (np.int32, np.float32), (np.uint32, np.float32),
             (np.float32, np.uint32), (np.uint16, np.float16), (np.float16, np.int16),
             (np.int64, np.float64), (np.float64, np.uint64), (np.uint64, np.int64),
             (np.uint8, np.int8), (np.int8, np.uint8), (np.int16, np.uint16)]
    for src, dst in views:
        if np.dtype(src).kind == "f":
            x = (r.standard_normal((3, 4)) * 100).astype(src)
            x.flat[0] = np.inf
            x.flat[1] = -0.0
        else:
            info = np.iinfo(src)
            x = r.integers(info.min, info.max, (3, 4), dtype=src, endpoint=True)
            if dst == np.float16 or dst == np.float32 or dst == np.float64:
                # no NaN payloads in the expected floats: the comparison is by value
                y = x.view(dst)
                x = np.where(np.isnan(y), np.zeros_like(x), x).astype(src)
        to = helper.np_dtype_to_tensor_dtype(np.dtype(dst)) if hasattr(
            helper, "np_dtype_to_tensor_dtype") else onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype(dst)]
        write_case("bitcast26_%s_to_%s" % (np.dtype(src).name, np.dtype(dst).name),
                   helper.make_node("BitCast", ["x"], ["y"], to=to),
                   [("x", x)], [("y", x.view(dst))], 26)
    x = np.array([[0, 1, 1], [0, 0, 1]], dtype=np.uint8)
    write_case("bitcast26_uint8_to_bool", helper.make_node("BitCast", ["x"], ["y"], to=TP.BOOL),
               [("x", x)], [("y", x.view(bool))], 26)
    write_case("bitcast26_bool_to_int8", helper.make_node("BitCast", ["x"], ["y"], to=TP.INT8),
               [("x", x.view(bool))], [("y", x.view(np.int8))], 26)
    # 8-bit floats: every byte, to and from uint8
    raw = bytes(range(256))
    for et, nm in ((17, "float8e4m3fn"), (19, "float8e5m2"), (24, "float8e8m0")):
        write_raw_io_case("bitcast26_uint8_to_%s" % nm,
                          helper.make_node("BitCast", ["x"], ["y"], to=et), 26,
                          ("x", TP.UINT8, (16, 16), raw), ("y", et, (16, 16), raw))
    write_raw_io_case("bitcast26_float8e4m3fnuz_to_int8",
                      helper.make_node("BitCast", ["x"], ["y"], to=TP.INT8), 26,
                      ("x", 18, (256,), raw), ("y", TP.INT8, (256,), raw))
    # 4-bit and 2-bit: all codes (odd counts leave a half-filled last byte)
    codes4 = list(range(16)) + [5, 12, 7]
    for src, dst in ((22, 21), (21, 22), (23, 22), (21, 23)):  # int4, uint4, float4e2m1
        write_raw_io_case("bitcast26_%s_to_%s" % (onnx_name(src), onnx_name(dst)),
                          helper.make_node("BitCast", ["x"], ["y"], to=dst), 26,
                          ("x", src, (len(codes4),), pack(codes4, 4)),
                          ("y", dst, (len(codes4),), pack(codes4, 4)))
    codes2 = [0, 1, 2, 3, 3, 2, 1]
    for src, dst in ((26, 25), (25, 26)):  # int2, uint2
        write_raw_io_case("bitcast26_%s_to_%s" % (onnx_name(src), onnx_name(dst)),
                          helper.make_node("BitCast", ["x"], ["y"], to=dst), 26,
                          ("x", src, (len(codes2),), pack(codes2, 2)),
                          ("y", dst, (len(codes2),), pack(codes2, 2)))


def interp(img, p):
    """N-linear interpolation of img at point p; outside neighbours are 0."""
    lo = [int(np.floor(v)) for v in p]
    val = 0.0
    for corner in np.ndindex(*([2] * len(p))):
        w = 1.0
        idx = []
        for i, c in enumerate(corner):
            fr = p[i] - lo[i]
            w *= fr if c else 1.0 - fr
            idx.append(lo[i] + c)
        if w == 0 or any(q < 0 or q >= img.shape[i] for i, q in enumerate(idx)):
            continue
        val += w * float(img[tuple(idx)])
    return val


def deform_conv_ref(x, w, offset, b=None, mask=None, strides=None, pads=None, dilations=None,
                    group=1, offset_group=1):
    N, C = x.shape[:2]
    sp = x.shape[2:]
    nsp = len(sp)
    OC = w.shape[0]
    ks = w.shape[2:]
    K = int(np.prod(ks))
    strides = strides or [1] * nsp
    dilations = dilations or [1] * nsp
    pads = pads or [0] * (2 * nsp)
    osp = [(sp[i] + pads[i] + pads[i + nsp] - dilations[i] * (ks[i] - 1) - 1) // strides[i] + 1
           for i in range(nsp)]
    off = offset.astype(np.float64).reshape(N, offset_group, K, nsp, *osp)
    m = (mask.astype(np.float64).reshape(N, offset_group, K, *osp) if mask is not None
         else np.ones((N, offset_group, K, *osp)))
    xd, wd = x.astype(np.float64), w.astype(np.float64)
    y = np.zeros((N, OC, *osp))
    cg, ocg, cpo = C // group, OC // group, C // offset_group
    for n in range(N):
        for oc in range(OC):
            g = oc // ocg
            for o in np.ndindex(*osp):
                acc = float(b[oc]) if b is not None else 0.0
                for ci in range(cg):
                    c = g * cg + ci
                    og = c // cpo
                    for kidx, k in enumerate(np.ndindex(*ks)):
                        pt = [o[i] * strides[i] - pads[i] + k[i] * dilations[i] +
                              off[(n, og, kidx, i) + o] for i in range(nsp)]
                        acc += wd[(oc, ci) + k] * m[(n, og, kidx) + o] * interp(xd[n, c], pt)
                y[(n, oc) + o] = acc
    return y.astype(x.dtype)


def deformconv_case(name, opset, x, w, offset, b=None, mask=None, **attrs):
    ins = [("X", x), ("W", w), ("offset", offset)]
    names = ["X", "W", "offset"]
    if b is not None or mask is not None:
        names.append("B" if b is not None else "")
        if b is not None:
            ins.append(("B", b))
    if mask is not None:
        names.append("mask")
        ins.append(("mask", mask))
    node = helper.make_node("DeformConv", names, ["Y"], **attrs)
    y = deform_conv_ref(x, w, offset, b, mask, attrs.get("strides"), attrs.get("pads"),
                        attrs.get("dilations"), attrs.get("group", 1), attrs.get("offset_group", 1))
    write_case("deformconv%d_%s" % (opset, name), node, ins, [("Y", y)], opset)


def deformconv_cases():
    r = rng(19)
    f = np.float32

    def offs(shape, scale=1.5, dt=f):
        return (r.uniform(-scale, scale, shape)).astype(dt)

    x = r.standard_normal((1, 2, 4, 4)).astype(f)
    w = r.standard_normal((2, 2, 2, 2)).astype(f)
    deformconv_case("2d_basic", 19, x, w, offs((1, 8, 3, 3)))
    deformconv_case("2d_zero_offset", 19, x, w, np.zeros((1, 8, 3, 3), f))  # = Conv
    x = r.standard_normal((2, 3, 5, 6)).astype(f)
    w = r.standard_normal((4, 3, 3, 3)).astype(f)
    deformconv_case("2d_mask_bias_stride_pad_dil", 22, x, w, offs((2, 18, 3, 2)),
                    r.standard_normal(4).astype(f), r.uniform(0, 1, (2, 9, 3, 2)).astype(f),
                    strides=[2, 2], pads=[1, 0, 2, 1], dilations=[1, 2])
    x = r.standard_normal((1, 4, 4, 5)).astype(np.float64)
    w = r.standard_normal((6, 2, 2, 3)).astype(np.float64)
    deformconv_case("2d_groups_double", 22, x, w, offs((1, 2 * 6 * 2, 3, 3), 2.0, np.float64),
                    r.standard_normal(6), r.uniform(0, 1, (1, 12, 3, 3)),
                    group=2, offset_group=2, kernel_shape=[2, 3])
    deformconv_case("2d_far_offsets", 19, r.standard_normal((1, 1, 3, 3)).astype(f),
                    r.standard_normal((1, 1, 2, 2)).astype(f), offs((1, 8, 2, 2), 6.0))
    x = r.standard_normal((2, 3, 7)).astype(f)
    w = r.standard_normal((2, 3, 3)).astype(f)
    deformconv_case("1d", 19, x, w, offs((2, 3, 5)), None, r.uniform(0, 1, (2, 3, 5)).astype(f))
    x = r.standard_normal((1, 2, 3, 3, 4)).astype(f)
    w = r.standard_normal((2, 2, 2, 2, 2)).astype(f)
    deformconv_case("3d", 19, x, w, offs((1, 24, 2, 2, 3)), r.standard_normal(2).astype(f))
    x = r.standard_normal((1, 2, 4, 4)).astype(np.float16)
    w = r.standard_normal((2, 2, 2, 2)).astype(np.float16)
    deformconv_case("2d_float16", 19, x, w, offs((1, 8, 3, 3), 1.5, np.float16))


def maxroipool_ref(x, rois, pooled, scale):
    R = rois.shape[0]
    N, C, H, W = x.shape
    ph, pw = pooled
    y = np.zeros((R, C, ph, pw), dtype=x.dtype)
    for r in range(R):
        b = int(rois[r, 0])
        x1, y1, x2, y2 = (int(round(float(v) * float(np.float32(scale)))) for v in rois[r, 1:])
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        bh, bw = rh / ph, rw / pw
        for c in range(C):
            for i in range(ph):
                hs = min(max(int(np.floor(i * bh)) + y1, 0), H)
                he = min(max(int(np.ceil((i + 1) * bh)) + y1, 0), H)
                for j in range(pw):
                    ws = min(max(int(np.floor(j * bw)) + x1, 0), W)
                    we = min(max(int(np.ceil((j + 1) * bw)) + x1, 0), W)
                    if he > hs and we > ws:
                        y[r, c, i, j] = x[b, c, hs:he, ws:we].max()
    return y


def maxroipool_case(name, opset, x, rois, pooled, scale=None):
    attrs = {"pooled_shape": list(pooled)}
    if scale is not None:
        attrs["spatial_scale"] = scale
    node = helper.make_node("MaxRoiPool", ["X", "rois"], ["Y"], **attrs)
    y = maxroipool_ref(x, rois, pooled, 1.0 if scale is None else scale)
    write_case("maxroipool%d_%s" % (opset, name), node, [("X", x), ("rois", rois)], [("Y", y)], opset)


def maxroipool_cases():
    r = rng(2015)
    x = r.standard_normal((2, 3, 8, 10)).astype(np.float32)
    rois = np.array([[0, 0, 0, 9, 7], [1, 2, 1, 5, 6], [0, 3, 3, 3, 3], [1, -4, -2, 3, 20],
                     [0, 12, 10, 20, 14], [1, 7.4, 0.6, 9.2, 5.5]], dtype=np.float32)
    maxroipool_case("basic", 1, x, rois, (2, 3))
    maxroipool_case("pooled_larger_than_roi", 1, x, rois, (5, 4))
    maxroipool_case("scale_half", 22, x, rois * np.array([1, 2, 2, 2, 2], np.float32), (3, 3), 0.5)
    ties = np.array([[0, 1, 3, 5, 7], [1, 3, 1, 9, 5]], dtype=np.float32)  # x*0.5 lands on .5
    maxroipool_case("round_half_even", 22, x, ties, (2, 2), 0.5)
    maxroipool_case("double", 22, x.astype(np.float64), rois.astype(np.float64), (2, 2), 1.0)
    maxroipool_case("float16", 1, x.astype(np.float16), rois.astype(np.float16), (3, 2))
    maxroipool_case("no_rois", 1, x, np.zeros((0, 5), np.float32), (2, 2))


def onnx_name(et):
    return {21: "uint4", 22: "int4", 23: "float4e2m1", 25: "uint2", 26: "int2"}[et]


if __name__ == "__main__":
    maxroipool_cases()
    deformconv_cases()
    bitcast_cases()
    tensorscatter_cases()
    bitwise_cases()
    swish_cases()
    isnan_isinf_f8_cases()
