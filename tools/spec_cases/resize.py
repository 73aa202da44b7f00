"""Spec cases for Resize (opsets 10, 18, 19) and Upsample (7, 9): what the
ONNX 1.12 suite does not cover (antialias, axes, keep_aspect_ratio_policy,
half_pixel_symmetric, opset 10's rules, N-D and other element types).

Expected outputs come from the operator's text, axis by axis: along each
resized axis an [out, in] weight matrix W holds, for every output position
o, the weights of the input positions it reads, and Y = X contracted with
each axis's W in turn. Per axis (in = input length, scale, and
length_resized L = in * scale before flooring):

  x_original by coordinate_transformation_mode
    half_pixel            (o + 0.5) / scale - 0.5
    half_pixel_symmetric  in/2 * (1 - out/L) + (o + 0.5) / scale - 0.5
    pytorch_half_pixel    L > 1 ? (o + 0.5) / scale - 0.5 : 0
    align_corners         L > 1 ? o * (in - 1) / (L - 1) : 0
    asymmetric            o / scale
    tf_crop_and_resize    L > 1 ? s*(in-1) + o*(e-s)*(in-1)/(L-1) : (s+e)/2*(in-1);
                          outside [0, in-1] -> extrapolation_value
  nearest: the input index by nearest_mode, clamped to [0, in-1]
           (opset 10 and Upsample: floor when scale >= 1, else ceil)
  linear / cubic: input j gets kernel((j - x) * s), s = min(scale, 1) with
           antialias else 1; kernel = 1 - |d| (linear) or Keys' cubic with
           cubic_coeff_a; indices outside the input read the nearest edge
           (or get weight 0 with exclude_outside); weights are divided by
           their sum with antialias or exclude_outside.
  output size: floor(in * scale) in float32 arithmetic; with sizes,
           scale = size / in, or with keep_aspect_ratio_policy the min
           (not_larger) / max (not_smaller) over the axes, and
           out = round_half_up(scale * in).

Run: /usr/bin/python3 tools/spec_cases/resize.py
"""
import math

import numpy as np
from onnx import helper

from common import rng, write_case


def cubic(d, A):
    d = abs(d)
    if d <= 1:
        return (A + 2) * d ** 3 - (A + 3) * d ** 2 + 1
    if d < 2:
        return A * d ** 3 - 5 * A * d ** 2 + 8 * A * d - 4 * A
    return 0.0


def x_original(ctm, o, n, scale, L, out, roi=(0.0, 1.0)):
    if ctm == "tf_half_pixel_for_nn":  # opsets 11, 12
        return (o + 0.5) / scale
    if ctm == "half_pixel":
        return (o + 0.5) / scale - 0.5
    if ctm == "half_pixel_symmetric":
        return n / 2 * (1 - out / L) + (o + 0.5) / scale - 0.5
    if ctm == "pytorch_half_pixel":
        return (o + 0.5) / scale - 0.5 if L > 1 else 0.0
    if ctm == "align_corners":
        return o * (n - 1) / (L - 1) if L > 1 else 0.0
    if ctm == "asymmetric":
        return o / scale
    if ctm == "tf_crop_and_resize":
        s, e = roi
        return s * (n - 1) + o * (e - s) * (n - 1) / (L - 1) if L > 1 else (s + e) / 2 * (n - 1)
    raise ValueError(ctm)


def nearest_index(mode, x, scale):
    f = math.floor(x)
    if mode == "round_prefer_floor":
        return f if x - f <= 0.5 else f + 1
    if mode == "round_prefer_ceil":
        return f if x - f < 0.5 else f + 1
    if mode == "floor":
        return f
    if mode == "ceil":
        return math.ceil(x)
    if mode == "simple":  # opset 10, Upsample
        return f if scale >= 1 else math.ceil(x)
    raise ValueError(mode)


def axis_weights(n, out, scale, L, a):
    """[out, n] weights and the [out] outside mask of one axis."""
    W = np.zeros((out, n))
    outside = np.zeros(out, bool)
    for o in range(out):
        if n == out and scale == 1 and a["ctm"] not in ("tf_crop_and_resize", "tf_half_pixel_for_nn"):
            W[o, o] = 1
            continue
        x = x_original(a["ctm"], o, n, scale, L, out, a.get("roi_axis", (0.0, 1.0)))
        if a["ctm"] == "tf_crop_and_resize" and (x < 0 or x > n - 1):
            outside[o] = True
            continue
        if a["mode"] == "nearest":
            W[o, min(max(nearest_index(a["nearest_mode"], x, scale), 0), n - 1)] = 1
            continue
        s = min(scale, 1.0) if a["antialias"] else 1.0
        support = (1.0 if a["mode"] == "linear" else 2.0) / s
        w = np.zeros(n)
        for j in range(math.floor(x - support), math.ceil(x + support) + 1):
            d = (j - x) * s
            v = max(0.0, 1 - abs(d)) if a["mode"] == "linear" else cubic(d, a["cubic_coeff_a"])
            if a["exclude_outside"] and (j < 0 or j >= n):
                v = 0.0
            w[min(max(j, 0), n - 1)] += v
        if a["antialias"] or a["exclude_outside"]:
            w /= w.sum()
        W[o] = w
    return W, outside


def resize_ref(X, scales=None, sizes=None, roi=None, axes=None, mode="nearest",
               ctm="half_pixel", nearest_mode="round_prefer_floor", cubic_coeff_a=-0.75,
               exclude_outside=0, extrapolation_value=0.0, antialias=0,
               keep_aspect_ratio_policy="stretch"):
    r = X.ndim
    axes = list(range(r)) if axes is None else [a % r for a in axes]
    K = len(axes)
    out = list(X.shape)
    sc = [1.0] * r
    if sizes is not None:
        ratios = [sizes[k] / X.shape[d] for k, d in enumerate(axes)]
        if keep_aspect_ratio_policy == "stretch":
            for k, d in enumerate(axes):
                sc[d], out[d] = ratios[k], int(sizes[k])
        else:
            s = min(ratios) if keep_aspect_ratio_policy == "not_larger" else max(ratios)
            for d in axes:
                sc[d], out[d] = s, int(math.floor(s * X.shape[d] + 0.5))
        L = [sc[d] * X.shape[d] for d in range(r)]
    else:
        L = [float(n) for n in X.shape]
        for k, d in enumerate(axes):
            ext = (roi[K + k] - roi[k]) if ctm == "tf_crop_and_resize" else 1.0
            sc[d] = float(scales[k])
            out[d] = int(np.floor(np.float32(X.shape[d]) * np.float32(ext) * np.float32(scales[k])))
            L[d] = X.shape[d] * ext * float(scales[k])
    attrs = dict(mode=mode, ctm=ctm, nearest_mode=nearest_mode, cubic_coeff_a=cubic_coeff_a,
                 exclude_outside=exclude_outside, antialias=antialias)
    Y = X.astype(np.float64)
    mask = np.zeros(out, bool)
    for d in range(r):
        a = dict(attrs)
        if roi is not None and d in axes:
            k = axes.index(d)
            a["roi_axis"] = (float(roi[k]), float(roi[K + k]))
        if d not in axes:
            a["ctm"] = "half_pixel"  # not resized: identity
        W, outside = axis_weights(X.shape[d], out[d], sc[d], L[d], a)
        Y = np.moveaxis(np.tensordot(W, np.moveaxis(Y, d, 0), axes=1), 0, d)
        shape = [1] * r
        shape[d] = out[d]
        mask = mask | outside.reshape(shape)
    Y = np.where(mask, extrapolation_value, Y)
    if np.issubdtype(X.dtype, np.integer):
        info = np.iinfo(X.dtype)
        Y = np.clip(np.trunc(Y), info.min, info.max)
    return Y.astype(X.dtype)


def case(name, opset, X, scales=None, sizes=None, roi=None, axes=None, const=True, **attrs):
    """One Resize case; omitted inputs get an empty name (opset 11+)."""
    names = ["X", "roi" if roi is not None else "", "scales" if scales is not None else "",
             "sizes" if sizes is not None else ""]
    while names and names[-1] == "":
        names.pop()
    onnx_attrs = {k: v for k, v in attrs.items()}
    if "ctm" in onnx_attrs:
        onnx_attrs["coordinate_transformation_mode"] = onnx_attrs.pop("ctm")
    if axes is not None:
        onnx_attrs["axes"] = axes
    node = helper.make_node("Resize", names, ["Y"], **onnx_attrs)
    # the reference sees the float32 values the model holds
    scales = None if scales is None else np.array(scales, np.float32)
    roi = None if roi is None else np.array(roi, np.float32)
    Y = resize_ref(X, scales=scales, sizes=sizes, roi=roi, axes=axes, **attrs)
    extra = {}
    if roi is not None:
        extra["roi"] = np.array(roi, np.float32)
    if scales is not None:
        extra["scales"] = np.array(scales, np.float32)
    if sizes is not None:
        extra["sizes"] = np.array(sizes, np.int64)
    inputs = [("X", X)]
    inits = None
    if const:
        inits = extra
    else:
        inputs += list(extra.items())
    write_case(name, node, inputs, [("Y", Y)], opset, initializers=inits)


def main():
    g = rng(12)
    f32 = lambda *s: g.standard_normal(s).astype(np.float32)

    # opset 19: half_pixel_symmetric differs from half_pixel when in*scale is fractional
    case("resize_19_half_pixel_symmetric_down_linear", 19, f32(1, 2, 5, 7),
         scales=[1, 1, 0.7, 0.45], mode="linear", ctm="half_pixel_symmetric")
    case("resize_19_half_pixel_symmetric_up_cubic", 19, f32(1, 1, 3, 4),
         scales=[1, 1, 2.3, 1.6], mode="cubic", ctm="half_pixel_symmetric")
    case("resize_19_half_pixel_symmetric_nearest_ceil", 19, f32(2, 5, 6),
         scales=[1, 1.7, 0.6], mode="nearest", ctm="half_pixel_symmetric",
         nearest_mode="ceil")
    # opset 18: antialias
    case("resize_18_antialias_linear_sizes", 18, f32(1, 2, 8, 11), sizes=[1, 2, 3, 5],
         mode="linear", antialias=1)
    case("resize_18_antialias_cubic_scales", 18, f32(1, 1, 9, 10), scales=[1, 1, 0.4, 0.35],
         mode="cubic", antialias=1)
    case("resize_18_antialias_cubic_exclude_outside", 18, f32(1, 1, 7, 7),
         scales=[1, 1, 0.5, 0.3], mode="cubic", antialias=1, exclude_outside=1,
         cubic_coeff_a=-0.5)
    case("resize_18_antialias_linear_up_is_plain", 18, f32(1, 1, 3, 4),
         scales=[1, 1, 1.5, 2.5], mode="linear", antialias=1)
    # opset 18: axes
    case("resize_18_axes_scales_nearest", 18, f32(1, 2, 3, 4), scales=[2.0, 1.5], axes=[2, 3],
         mode="nearest")
    case("resize_18_axes_negative_sizes_linear", 18, f32(2, 3, 5, 6), sizes=[4, 9],
         axes=[-1, 2], mode="linear", const=False)
    case("resize_18_axes_tf_crop_extrapolation", 18, f32(1, 1, 6, 6), sizes=[4, 5],
         roi=[0.3, -0.2, 0.9, 0.7], axes=[2, 3], mode="linear", ctm="tf_crop_and_resize",
         extrapolation_value=7.5)
    case("resize_18_tf_crop_scales_nearest", 18, f32(1, 1, 8, 8), scales=[1, 1, 0.75, 1.25],
         roi=[0, 0, 0.2, 0.1, 1, 1, 0.8, 0.9], mode="nearest", ctm="tf_crop_and_resize",
         extrapolation_value=-1.0)
    # opset 18: keep_aspect_ratio_policy
    case("resize_18_not_larger_linear", 18, f32(1, 1, 4, 6), sizes=[7, 7], axes=[2, 3],
         mode="linear", keep_aspect_ratio_policy="not_larger")
    case("resize_18_not_smaller_nearest", 18, f32(1, 1, 4, 6), sizes=[7, 7], axes=[2, 3],
         mode="nearest", keep_aspect_ratio_policy="not_smaller")
    case("resize_19_not_larger_cubic_all_axes", 19, f32(1, 3, 5, 8), sizes=[1, 3, 20, 20],
         mode="cubic", keep_aspect_ratio_policy="not_larger", ctm="half_pixel_symmetric")
    # N-D and other coordinate modes
    case("resize_13_trilinear_5d", 13, f32(1, 2, 3, 4, 5), scales=[1, 1, 1.5, 0.75, 2.0],
         mode="linear", ctm="align_corners")
    case("resize_13_linear_first_axes", 13, f32(3, 4, 2), sizes=[5, 2, 2], mode="linear")
    case("resize_13_cubic_pytorch_half_pixel_to_one", 13, f32(1, 1, 5, 6),
         sizes=[1, 1, 1, 3], mode="cubic", ctm="pytorch_half_pixel")
    case("resize_13_nearest_prefer_ceil_asymmetric_down", 13, f32(1, 1, 7, 9),
         scales=[1, 1, 0.5, 0.4], mode="nearest", ctm="asymmetric",
         nearest_mode="round_prefer_ceil")
    # element types
    case("resize_13_nearest_uint8", 13, g.integers(0, 255, (1, 3, 4, 5)).astype(np.uint8),
         scales=[1, 1, 1.5, 0.8], mode="nearest")
    case("resize_13_nearest_int64_sizes", 13, g.integers(-9, 9, (2, 3, 3)).astype(np.int64),
         sizes=[2, 5, 7], mode="nearest", nearest_mode="floor", ctm="align_corners")
    case("resize_13_cubic_double", 13, g.standard_normal((1, 1, 4, 5)),
         scales=[1, 1, 1.75, 0.6], mode="cubic")
    case("resize_13_linear_float16", 13, f32(1, 2, 4, 4).astype(np.float16),
         scales=[1, 1, 2, 1.5], mode="linear")
    case("resize_13_linear_int32_saturate_trunc", 13,
         np.array([[[[-7, 100], [2147483000, -2147483000]]]], np.int32),
         scales=[1, 1, 1.5, 2.0], mode="linear", ctm="asymmetric")
    case("resize_19_empty_axis", 19, np.zeros((0, 3, 4), np.float32), scales=[1, 2, 0.5],
         mode="linear")

    # opset 10: scales is input 1; asymmetric, nearest by floor up / ceil down
    X = np.arange(1, 9, dtype=np.float32).reshape(1, 1, 2, 4)
    for nm, sc, mode in (("resize_10_downsample_nearest", [1, 1, 0.6, 0.6], "nearest"),
                         ("resize_10_upsample_nearest", [1, 1, 2, 3], "nearest"),
                         ("resize_10_downsample_linear", [1, 1, 0.6, 0.6], "linear"),
                         ("resize_10_upsample_linear", [1, 1, 2, 1.5], "linear")):
        node = helper.make_node("Resize", ["X", "scales"], ["Y"], mode=mode)
        Y = resize_ref(X, scales=sc, mode=mode, ctm="asymmetric", nearest_mode="simple")
        write_case(nm, node, [("X", X)], [("Y", Y)], 10,
                   initializers={"scales": np.array(sc, np.float32)})
    # Upsample 7 (attribute) and 9 (input)
    X = f32(1, 2, 3, 3)
    for mode in ("nearest", "linear"):
        sc = [1.0, 1.0, 2.0, 1.5]
        Y = resize_ref(X, scales=np.array(sc, np.float32), mode=mode, ctm="asymmetric",
                       nearest_mode="simple")
        node = helper.make_node("Upsample", ["X"], ["Y"], mode=mode, scales=sc)
        write_case("upsample_7_%s" % mode, node, [("X", X)], [("Y", Y)], 7)
        node = helper.make_node("Upsample", ["X", "scales"], ["Y"], mode=mode)
        write_case("upsample_9_%s" % mode, node, [("X", X), ("scales", np.array(sc, np.float32))],
                   [("Y", Y)], 9)


    # opset 11: roi and scales are required inputs (empty when unused)
    X = f32(1, 1, 4, 6)
    sz = np.array([1, 1, 7, 3], np.int64)
    node = helper.make_node("Resize", ["X", "roi", "scales", "sizes"], ["Y"], mode="linear",
                            coordinate_transformation_mode="tf_half_pixel_for_nn")
    Y = resize_ref(X, sizes=sz, mode="linear", ctm="tf_half_pixel_for_nn")
    write_case("resize_11_linear_tf_half_pixel_for_nn_sizes", node, [("X", X)], [("Y", Y)], 11,
               initializers={"roi": np.zeros(0, np.float32), "scales": np.zeros(0, np.float32),
                             "sizes": sz})
    sc = np.array([1, 1, 1.5, 0.5], np.float32)
    node = helper.make_node("Resize", ["X", "roi", "scales"], ["Y"], mode="cubic",
                            coordinate_transformation_mode="asymmetric", cubic_coeff_a=-0.5)
    Y = resize_ref(X, scales=sc, mode="cubic", ctm="asymmetric", cubic_coeff_a=-0.5)
    write_case("resize_11_cubic_asymmetric_roi_ignored", node, [("X", X)], [("Y", Y)], 11,
               initializers={"roi": np.array([0, 0, 0.5, 0.5, 1, 1, 0.7, 0.7], np.float32),
                             "scales": sc})
    # bool (nearest) and int8 (cubic overshoot saturates)
    case("resize_19_nearest_bool", 19, g.integers(0, 2, (2, 3, 3)).astype(bool),
         scales=[1, 2, 1.5], mode="nearest", nearest_mode="round_prefer_ceil")
    case("resize_19_cubic_int8_saturate", 19,
         np.array([[[-128, 127, -128, 127], [127, -128, 127, -128]]], np.int8),
         scales=[1, 1.5, 1.75], mode="cubic")

if __name__ == "__main__":
    main()
