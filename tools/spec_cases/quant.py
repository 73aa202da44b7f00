"""QuantizeLinear / DequantizeLinear / QLinearMatMul cases for the opsets the
ONNX 1.12 suite predates (19, 21, 23, 25), computed with numpy from the
specification:
    QuantizeLinear:   y = saturate(rint(x / y_scale) + y_zero_point), the
                      division done in the precision type (the `precision`
                      attribute, else y_scale's type; at 19-22 x's type)
    DequantizeLinear: y = (x - x_zero_point) * x_scale in the output type
                      (output_dtype, else x_scale's type)
    QLinearMatMul:    y = saturate(rint((A - za) @ (B - zb) * (sa * sb / sy)) + zy)
Scales are per tensor, per axis (1-D along `axis`) or blocked (x's shape
with ceil(D / block_size) on the axis). Float8 / 4-bit cases are written by
f8cases() (numpy conversions written from the spec's bit layouts).
    /usr/bin/python3 tools/spec_cases/quant.py
"""
import numpy as np
import onnx
from onnx import TensorProto, helper

from common import rng, write_case

RANGES = {np.uint8: (0, 255), np.int8: (-128, 127), np.uint16: (0, 65535),
          np.int16: (-32768, 32767)}


def expand(p, shape, axis, block):
    """Scale/zero point broadcast to x's shape."""
    p = np.asarray(p)
    if p.size == 1:
        return np.full(shape, p.reshape(()), dtype=p.dtype)
    axis = axis % len(shape)
    if not block:
        dims = [1] * len(shape)
        dims[axis] = p.size
        return np.broadcast_to(p.reshape(dims), shape)
    return np.repeat(p, block, axis=axis).take(range(shape[axis]), axis=axis)


def quantize(x, scale, zp, out_dtype, axis=1, block=0, prec=None):
    prec = prec or scale.dtype.type
    s = expand(scale, x.shape, axis, block).astype(prec)
    q = (x.astype(prec) / s).astype(prec).astype(np.float64)
    z = expand(zp, x.shape, axis, block).astype(np.float64) if zp is not None else 0
    lo, hi = RANGES[out_dtype]
    return np.clip(np.rint(q) + z, lo, hi).astype(out_dtype)


def dequantize(x, scale, zp, out_dtype, axis=1, block=0):
    s = expand(scale, x.shape, axis, block).astype(out_dtype)
    z = expand(zp, x.shape, axis, block).astype(np.float64) if zp is not None else 0
    d = (x.astype(np.float64) - z).astype(out_dtype)
    return (d * s).astype(out_dtype)


def qnode(op, n_in, **attrs):
    names = ["x", "s", "z"][:n_in]
    return helper.make_node(op, names, ["y"], **attrs)


def q_case(name, opset, x, scale, zp, out_dtype, axis=1, block=0, prec=None, **attrs):
    if opset >= 13:
        attrs.setdefault("axis", axis)
    if block:
        attrs["block_size"] = block
    if prec is not None:
        attrs["precision"] = helper.np_dtype_to_tensor_dtype(np.dtype(prec)) \
            if hasattr(helper, "np_dtype_to_tensor_dtype") else \
            onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype(prec)]
    y = quantize(x, scale, zp, out_dtype, axis, block, prec)
    ins = [("x", x), ("s", scale)] + ([("z", zp)] if zp is not None else [])
    write_case(name, qnode("QuantizeLinear", len(ins), **attrs), ins, [("y", y)], opset)


def dq_case(name, opset, x, scale, zp, out_dtype, axis=1, block=0, **attrs):
    if opset >= 13:
        attrs.setdefault("axis", axis)
    if block:
        attrs["block_size"] = block
    y = dequantize(x, scale, zp, out_dtype, axis, block)
    ins = [("x", x), ("s", scale)] + ([("z", zp)] if zp is not None else [])
    write_case(name, qnode("DequantizeLinear", len(ins), **attrs), ins, [("y", y)], opset)


def main():
    r = rng(21)
    x = (r.standard_normal((2, 5, 6)) * 40).astype(np.float32)
    # ties and saturation in one vector
    ties = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1e6, -1e6, 70000, -40000], np.float32)

    # opset 19: float16 x with a float16 scale (the scale has x's type)
    xh = (r.standard_normal((3, 4)) * 20).astype(np.float16)
    q_case("quantizelinear_19_float16", 19, xh, np.float16(0.25), np.uint8(100), np.uint8)
    q_case("quantizelinear_19_ties_int8", 19, ties, np.float32(1), np.int8(0), np.int8)
    q_case("quantizelinear_13_int32_x", 13, np.array([-300, -7, 0, 9, 1000, 5, 15], np.int32),
           np.float32(2.5), np.int8(3), np.int8)
    # opset 21: 16-bit outputs, per axis, blocked (odd axis length, remainder block)
    q_case("quantizelinear_21_int16_ties", 21, ties, np.float32(1), np.int16(0), np.int16)
    q_case("quantizelinear_21_uint16_axis", 21, x * 100,
           np.array([0.5, 1, 2, 4, 8], np.float32), np.array([0, 10, 30000, 65535, 5], np.uint16),
           np.uint16, axis=1)
    q_case("quantizelinear_21_blocked_int8", 21, x,
           (np.abs(r.standard_normal((2, 5, 2))) + 0.1).astype(np.float32),
           r.integers(-10, 10, (2, 5, 2)).astype(np.int8), np.int8, axis=2, block=4)
    q_case("quantizelinear_21_blocked_axis1_uint8", 21, x,
           (np.abs(r.standard_normal((2, 3, 6))) + 0.1).astype(np.float32),
           r.integers(0, 255, (2, 3, 6)).astype(np.uint8), np.uint8, axis=-2, block=2)
    q_case("quantizelinear_21_output_dtype_int16", 21, x * 50, np.float32(0.5), None, np.int16,
           output_dtype=TensorProto.INT16)
    # opset 23: scale type may differ from x's; it sets the division's precision
    xp = np.array([1000.3, -1000.3, 2.6, 333.3, 77.77, -0.26], np.float32)
    q_case("quantizelinear_23_float16_scale", 23, xp, np.float16(3), None, np.int16,
           output_dtype=TensorProto.INT16)
    q_case("quantizelinear_23_precision_float", 23, xp, np.float16(3), None, np.int16,
           prec=np.float32, output_dtype=TensorProto.INT16)
    q_case("quantizelinear_25_axis_int8", 25, x, np.linspace(0.1, 2, 5).astype(np.float32),
           np.arange(-2, 3).astype(np.int8), np.int8, axis=1)

    # DequantizeLinear
    xi = r.integers(-32768, 32767, (2, 5, 6)).astype(np.int16)
    dq_case("dequantizelinear_21_int16_axis", 21, xi, np.linspace(0.01, 0.5, 5).astype(np.float32),
            np.arange(-2, 3).astype(np.int16), np.float32, axis=1)
    xu = r.integers(0, 65535, (2, 5, 6)).astype(np.uint16)
    dq_case("dequantizelinear_21_blocked_uint16", 21, xu,
            (np.abs(r.standard_normal((2, 5, 3))) + 0.01).astype(np.float32),
            r.integers(0, 65535, (2, 5, 3)).astype(np.uint16), np.float32, axis=-1, block=2)
    dq_case("dequantizelinear_19_float16_scale", 19,
            r.integers(0, 255, (3, 4)).astype(np.uint8), np.float16(0.37), np.uint8(128),
            np.float16)
    dq_case("dequantizelinear_23_output_dtype_float16", 23,
            r.integers(-128, 127, (3, 4)).astype(np.int8), np.float32(0.123), np.int8(-3),
            np.float16, output_dtype=TensorProto.FLOAT16)
    dq_case("dequantizelinear_25_int32", 25, np.array([-2**31, -5, 0, 7, 2**31 - 1], np.int32),
            np.float32(0.5), None, np.float32)

    # QLinearMatMul-21 with float16 scales: the multiplier in float16
    a = r.integers(0, 255, (2, 3, 4)).astype(np.uint8)
    b = r.integers(-128, 127, (4, 5)).astype(np.int8)
    sa, sb, sy = np.float16(0.05), np.float16(0.02), np.float16(0.3)
    za, zb, zy = np.uint8(128), np.int8(-2), np.uint8(10)
    c = np.matmul(a.astype(np.int64) - za, b.astype(np.int64) - zb)
    mult = np.float16(np.float16(sa * sb) / sy)
    y = np.clip(np.rint(c * np.float64(mult)) + zy, 0, 255).astype(np.uint8)
    node = helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"])
    write_case("qlinearmatmul_21_float16_scales", node,
               [("a", a), ("sa", sa), ("za", za), ("b", b), ("sb", sb), ("zb", zb), ("sy", sy),
                ("zy", zy)], [("y", y)], 21)


if __name__ == "__main__":
    main()
