"""MeanVarianceNormalization and LRN beyond the ONNX 1.12 suite's two
default cases: other axes (negative, a single one, all), other ranks,
float64 and float16, and LRN with even and large sizes. Expected values
follow the specification in float64:
    MVN: Y = (X - mean) / (sqrt(E[X^2] - E[X]^2) + 1e-9) over `axes`
    LRN: Y = X / (bias + alpha / size * sum of squares over the channel
         window [c - floor((size-1)/2), c + ceil((size-1)/2)])^beta
    /usr/bin/python3 tools/spec_cases/localnorm.py
"""
import math

import numpy as np
from onnx import helper

from common import rng, write_case


def mvn(x, axes):
    v = x.astype(np.float64)
    m = v.mean(axis=tuple(axes), keepdims=True)
    var = (v * v).mean(axis=tuple(axes), keepdims=True) - m * m
    return ((v - m) / (np.sqrt(np.maximum(var, 0)) + 1e-9)).astype(x.dtype)


def lrn(x, size, alpha=1e-4, beta=0.75, bias=1.0):
    v = x.astype(np.float64)
    sq = np.zeros_like(v)
    C = v.shape[1]
    lo, hi = math.floor((size - 1) / 2), math.ceil((size - 1) / 2)
    for c in range(C):
        a, b = max(0, c - lo), min(C - 1, c + hi)
        sq[:, c] = (v[:, a:b + 1] ** 2).sum(axis=1)
    return (v / (bias + alpha / size * sq) ** beta).astype(x.dtype)


def mvn_case(name, x, axes=None, opset=13):
    attrs = {} if axes is None else {"axes": axes}
    node = helper.make_node("MeanVarianceNormalization", ["x"], ["y"], **attrs)
    write_case(name, node, [("x", x)], [("y", mvn(x, axes if axes is not None else [0, 2, 3]))], opset)


def lrn_case(name, x, size, opset=13, **kw):
    node = helper.make_node("LRN", ["x"], ["y"], size=size, **kw)
    write_case(name, node, [("x", x)], [("y", lrn(x, size, **kw))], opset)


def main():
    r = rng(13)
    x4 = r.standard_normal((2, 3, 4, 5)).astype(np.float32) * 2 + 1
    mvn_case("mvn_axes_1_2", x4, [1, 2])
    mvn_case("mvn_negative_axes", x4, [-1, -2])
    mvn_case("mvn_all_axes", x4, [0, 1, 2, 3])
    mvn_case("mvn_last_axis_3d", r.standard_normal((3, 4, 6)).astype(np.float32), [2])
    mvn_case("mvn_double_default", r.standard_normal((2, 2, 3, 3)), None)
    mvn_case("mvn_float16", (r.standard_normal((2, 3, 2, 4))).astype(np.float16), [0, 2, 3])
    mvn_case("mvn_opset9_default", x4, None, opset=9)
    lrn_case("lrn_size4_even", x4, 4, alpha=0.001, beta=0.5, bias=2.0)
    lrn_case("lrn_size1", x4, 1)
    lrn_case("lrn_size_over_channels", x4, 9, alpha=0.01)
    lrn_case("lrn_3d_double", r.standard_normal((2, 5, 7)), 3, alpha=0.02, beta=0.9)
    lrn_case("lrn_5d_float16", r.standard_normal((1, 4, 2, 2, 3)).astype(np.float16), 3, alpha=0.05)
    lrn_case("lrn_opset1_2d", r.standard_normal((3, 6)).astype(np.float32), 5, opset=1, alpha=0.1)


if __name__ == "__main__":
    main()
