"""Gelu-20 cases (the ONNX 1.12 suite predates Gelu): both approximations,
float, double and float16, computed with numpy from the specification:
    none: y = 0.5 * x * (1 + erf(x / sqrt(2)))
    tanh: y = 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
evaluated in float64 and rounded to the input type. Mirrors the cases of
onnx's backend suite (test_gelu_default_1/2, test_gelu_tanh_1/2) plus a
tail and a float16 / float64 case.
    /usr/bin/python3 tools/spec_cases/gelu.py
"""
import math

import numpy as np
from onnx import helper

from common import rng, write_case

_erf = np.vectorize(math.erf)


def gelu(x, approximate):
    v = x.astype(np.float64)
    if approximate == "tanh":
        y = 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))
    else:
        y = 0.5 * v * (1 + _erf(v / math.sqrt(2)))
    return y.astype(x.dtype)


def case(name, x, approximate=None):
    attrs = {} if approximate is None else {"approximate": approximate}
    node = helper.make_node("Gelu", ["x"], ["y"], **attrs)
    write_case(name, node, [("x", x)], [("y", gelu(x, approximate or "none"))], 20)


def main():
    r = rng(20)
    x1 = np.array([-1, 0, 1], dtype=np.float32)
    x2 = r.standard_normal((3, 4, 5)).astype(np.float32)
    case("gelu_default_1", x1)
    case("gelu_default_2", x2)
    case("gelu_none_explicit", x2, "none")
    case("gelu_tanh_1", x1, "tanh")
    case("gelu_tanh_2", x2, "tanh")
    # moderate tails: results down to ~1e-6, well above the runner's atol
    tail = np.linspace(-4.5, 4.5, 37).astype(np.float32)
    case("gelu_default_tail", tail)
    case("gelu_tanh_tail", tail, "tanh")
    case("gelu_default_double", r.standard_normal((2, 7)).astype(np.float64) * 3)
    case("gelu_tanh_double", r.standard_normal((2, 7)).astype(np.float64) * 3, "tanh")
    case("gelu_default_float16", (r.standard_normal((4, 5)) * 3).astype(np.float16))
    case("gelu_tanh_float16", (r.standard_normal((4, 5)) * 3).astype(np.float16), "tanh")


if __name__ == "__main__":
    main()
