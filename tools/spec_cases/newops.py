"""Spec-derived cases for the operators the spec audit (tools/spec-audit.md)
found missing or under-typed, beyond the ONNX 1.12 suite:
    BitwiseAnd/Or/Xor (18): numpy &, |, ^ with numpy (multidirectional)
          broadcasting, every integer type the schema lists.
    BitwiseNot (18): numpy ~ per element.
    Swish (24): x * sigmoid(alpha * x) (the function body:
          Mul(X, Sigmoid(Mul(CastLike(alpha, X), X)))), computed in float64
          and rounded to the input type.
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


if __name__ == "__main__":
    bitwise_cases()
    swish_cases()
    isnan_isinf_f8_cases()
