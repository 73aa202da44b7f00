"""Spec-derived cases for Det (11, 22), LRN (1, 13) and
MeanVarianceNormalization (9, 13) beyond the ONNX 1.12 suite's float32
cases: the newest opsets, double and float16, Det of singular and batched
matrices, LRN with even and odd sizes and non-default attributes, MVN with
other axes. Expected outputs from numpy, from each specification:
    Det:  numpy.linalg.det per matrix.
    LRN:  Y = X / (bias + alpha/size * sum of X^2 over channels
          [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to [0, C-1])^beta.
    MVN:  (X - mean) / (sqrt(E[X^2] - mean^2) + 1e-9) over axes.
    CumProd (26): numpy.cumprod along axis; exclusive shifts in a 1,
          reverse flips before and after (the specification's examples).
    /usr/bin/python3 tools/spec_cases/misc.py
"""
import math

import numpy as np
from onnx import helper

from common import rng, write_case


def det_case(name, x, opset):
    y = np.linalg.det(x.astype(np.float64)).astype(x.dtype)
    write_case("det%d_%s" % (opset, name), helper.make_node("Det", ["x"], ["y"]),
               [("x", x)], [("y", np.asarray(y))], opset)


def lrn_ref(x, size, alpha, beta, bias):
    x64 = x.astype(np.float64)
    C = x.shape[1]
    sq = np.zeros_like(x64)
    lo, hi = (size - 1) // 2, int(math.ceil((size - 1) / 2))
    for c in range(C):
        a, b = max(0, c - lo), min(C - 1, c + hi)
        sq[:, c] = (x64[:, a:b + 1] ** 2).sum(axis=1)
    return (x64 / (bias + alpha / size * sq) ** beta).astype(x.dtype)


def lrn_case(name, x, opset, size, **attrs):
    alpha, beta, bias = attrs.get("alpha", 1e-4), attrs.get("beta", 0.75), attrs.get("bias", 1.0)
    node = helper.make_node("LRN", ["x"], ["y"], size=size, **attrs)
    y = lrn_ref(x, size, np.float32(alpha), np.float32(beta), np.float32(bias))
    write_case("lrn%d_%s" % (opset, name), node, [("x", x)], [("y", y)], opset)


def mvn_case(name, x, opset, axes=None):
    attrs = {} if axes is None else {"axes": axes}
    ax = tuple(axes if axes is not None else (0, 2, 3))
    x64 = x.astype(np.float64)
    m = x64.mean(axis=ax, keepdims=True)
    sd = np.sqrt((x64 ** 2).mean(axis=ax, keepdims=True) - m ** 2)
    y = ((x64 - m) / (sd + np.float32(1e-9))).astype(x.dtype)
    node = helper.make_node("MeanVarianceNormalization", ["x"], ["y"], **attrs)
    write_case("mvn%d_%s" % (opset, name), node, [("x", x)], [("y", y)], opset)


def cumprod_ref(x, axis, exclusive, reverse):
    xa = x.astype(np.float64) if x.dtype.kind == "f" else x
    if reverse:
        xa = np.flip(xa, axis)
    if exclusive:
        one = np.ones_like(np.take(xa, [0], axis=axis))
        xa = np.concatenate([one, np.take(xa, range(xa.shape[axis] - 1), axis=axis)], axis=axis)
    y = np.cumprod(xa, axis=axis)
    if reverse:
        y = np.flip(y, axis)
    return y.astype(x.dtype)


def cumprod_case(name, x, axis, exclusive=0, reverse=0, axis_dtype=np.int64):
    node = helper.make_node("CumProd", ["x", "axis"], ["y"], exclusive=exclusive,
                            reverse=reverse)
    y = cumprod_ref(x, axis % x.ndim, exclusive, reverse)
    write_case("cumprod26_" + name, node, [("x", x), ("axis", np.array(axis, axis_dtype))],
               [("y", y)], 26)


def main():
    r = rng(22)
    det_case("batched", r.standard_normal((2, 3, 4, 4)).astype(np.float32), 22)
    det_case("double", r.standard_normal((3, 5, 5)), 11)
    det_case("float16", r.standard_normal((2, 3, 3)).astype(np.float16), 22)
    sing = r.standard_normal((2, 3, 3)).astype(np.float32)
    sing[0, 2] = sing[0, 0] * 2  # rank 2
    sing[1] = 0
    det_case("singular", sing, 11)
    det_case("pivoting", np.array([[0, 1, 2], [3, 0, 1], [4, 5, 0]], np.float32), 11)
    x = r.standard_normal((2, 6, 3, 2)).astype(np.float32) * 3
    lrn_case("even_size", x, 13, 4, alpha=0.01, beta=0.5, bias=2.0)
    lrn_case("odd_size_opset1", x, 1, 3)
    lrn_case("size1_double", x.astype(np.float64), 13, 1, alpha=0.5)
    lrn_case("size_gt_c_float16", x.astype(np.float16), 13, 9, alpha=0.1)
    lrn_case("rank3", r.standard_normal((2, 5, 7)).astype(np.float32), 13, 5, alpha=0.2)
    x = r.standard_normal((2, 3, 4, 5)).astype(np.float32) * 2 + 1
    mvn_case("default_axes_opset9", x, 9)
    mvn_case("axes_1_negative", x, 13, [1, -1])
    mvn_case("axes_all_double", x.astype(np.float64), 13, [0, 1, 2, 3])
    mvn_case("rank3_float16", x[0].astype(np.float16), 13, [2])
    cp = r.uniform(0.5, 1.5, (3, 4, 5)).astype(np.float32)
    cumprod_case("axis0", cp, 0)
    cumprod_case("axis1_exclusive", cp, 1, exclusive=1)
    cumprod_case("axis_neg1_reverse", cp, -1, reverse=1, axis_dtype=np.int32)
    cumprod_case("exclusive_reverse", cp, 2, exclusive=1, reverse=1)
    cumprod_case("spec_example", np.array([1, 2, 3], np.float32), 0)
    cumprod_case("spec_example_excl_rev", np.array([1, 2, 3], np.float32), 0, 1, 1)
    cumprod_case("double", cp.astype(np.float64), 1, reverse=1)
    cumprod_case("float16", cp.astype(np.float16), 1)
    for dt in (np.int32, np.int64, np.uint32, np.uint64):
        xi = r.integers(1, 4, (2, 6)).astype(dt)
        cumprod_case(np.dtype(dt).name, xi, 1, exclusive=1)
    cumprod_case("int32_wraps", np.full((40,), 3, np.int32), 0)


if __name__ == "__main__":
    main()
