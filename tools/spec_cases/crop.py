"""Spec cases for RoiAlign (opsets 10, 16, 22), Col2Im (18) and
CenterCropPad (18), from the operators' text.

RoiAlign: region (x1, y1, x2, y2) * spatial_scale, shifted by -0.5 with
half_pixel (opset 16's default; opset 10 behaves as output_half_pixel, which
also makes the region at least 1x1); bins of roi / output size; per bin a
grid of sampling_ratio (or ceil(roi / output) when 0) samples per side at
bin start + (i + 0.5) * bin / grid; a sample with y < -1, y > H, x < -1 or
x > W gives 0, otherwise it is clamped to the input (to the last row/column
beyond H-1 / W-1) and read bilinearly; avg averages the samples, max takes
per sample the largest weighted corner and then the largest sample.

Col2Im: column (c * prod(block) + k, l) adds into pixel
l * stride - pad_begin + k * dilation of channel c (PyTorch's fold, which
the generator checks against for 2-D).

CenterCropPad: each listed axis cropped to (or zero-padded to) the size,
the window / input starting at floor(difference / 2).

Run: /usr/bin/python3 tools/spec_cases/crop.py
"""
import itertools
import math

import numpy as np
from onnx import helper

from common import rng, write_case

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None


def bilinear(img, y, x):
    H, W = img.shape
    if y < -1.0 or y > H or x < -1.0 or x > W:
        return [0.0] * 4, [0] * 4
    y, x = max(y, 0.0), max(x, 0.0)
    yl, xl = int(y), int(x)
    if yl >= H - 1:
        yh = yl = H - 1
        y = float(yl)
    else:
        yh = yl + 1
    if xl >= W - 1:
        xh = xl = W - 1
        x = float(xl)
    else:
        xh = xl + 1
    ly, lx = y - yl, x - xl
    hy, hx = 1 - ly, 1 - lx
    return [hy * hx, hy * lx, ly * hx, ly * lx], [img[yl, xl], img[yl, xh], img[yh, xl], img[yh, xh]]


def roi_align_ref(X, rois, bidx, mode="avg", oh=1, ow=1, sampling_ratio=0, spatial_scale=1.0,
                  half_pixel=True):
    R, C = rois.shape[0], X.shape[1]
    Y = np.zeros((R, C, oh, ow))
    off = 0.5 if half_pixel else 0.0
    for n in range(R):
        x1, y1, x2, y2 = [float(v) * spatial_scale - off for v in rois[n]]
        rw, rh = x2 - x1, y2 - y1
        if not half_pixel:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / oh, rw / ow
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(rh / oh)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(rw / ow)
        count = max(gh * gw, 1)
        for c in range(C):
            img = X[bidx[n], c].astype(np.float64)
            for ph, pw in itertools.product(range(oh), range(ow)):
                vals = []
                for iy, ix in itertools.product(range(gh), range(gw)):
                    y = y1 + ph * bh + (iy + 0.5) * bh / gh
                    x = x1 + pw * bw + (ix + 0.5) * bw / gw
                    w, v = bilinear(img, y, x)
                    if mode == "avg":
                        vals.append(sum(a * b for a, b in zip(w, v)))
                    else:
                        vals.append(max(a * b for a, b in zip(w, v)))
                if mode == "avg":
                    Y[n, c, ph, pw] = sum(vals) / count
                else:
                    Y[n, c, ph, pw] = max(vals) if vals else 0.0
    return Y


def col2im_ref(x, image, block, dil, pads, strides):
    r = len(image)
    N, CP, L = x.shape
    P = int(np.prod(block))
    C = CP // P
    nblk = [(image[d] + pads[d] + pads[r + d] - (dil[d] * (block[d] - 1) + 1)) // strides[d] + 1
            for d in range(r)]
    assert L == np.prod(nblk)
    Y = np.zeros((N, C) + tuple(image))
    for k, kk in enumerate(itertools.product(*[range(b) for b in block])):
        for l, ll in enumerate(itertools.product(*[range(b) for b in nblk])):
            pos = [ll[d] * strides[d] - pads[d] + kk[d] * dil[d] for d in range(r)]
            if all(0 <= pos[d] < image[d] for d in range(r)):
                for c in range(C):
                    Y[(slice(None), c) + tuple(pos)] += x[:, c * P + k, l]
    if torch is not None and r == 2:
        T = F.fold(torch.from_numpy(x.astype(np.float64)), tuple(image), tuple(block),
                   dilation=tuple(dil), padding=(pads[0], pads[1]), stride=tuple(strides)).numpy()
        if pads[0] == pads[2] and pads[1] == pads[3]:
            assert np.allclose(T, Y), np.abs(T - Y).max()
    return Y


def center_crop_pad_ref(x, shape, axes=None):
    axes = list(range(x.ndim)) if axes is None else [a % x.ndim for a in axes]
    out_shape = list(x.shape)
    for a, s in zip(axes, shape):
        out_shape[a] = s
    Y = np.zeros(out_shape, x.dtype) if x.dtype != object else np.full(out_shape, "", object)
    src, dst = [slice(None)] * x.ndim, [slice(None)] * x.ndim
    for a, s in zip(axes, shape):
        n = x.shape[a]
        if s <= n:
            st = (n - s) // 2
            src[a], dst[a] = slice(st, st + s), slice(0, s)
        else:
            st = (s - n) // 2
            src[a], dst[a] = slice(0, n), slice(st, st + n)
    Y[tuple(dst)] = x[tuple(src)]
    return Y


def main():
    g = rng(18)
    X = g.standard_normal((2, 3, 9, 11)).astype(np.float32)
    rois = np.array([[0.5, 1.0, 6.3, 7.9], [2, 2, 2.4, 2.2], [-3, -2, 4, 5], [7, 3, 30, 12]],
                    np.float32)
    bidx = np.array([0, 1, 1, 0], np.int64)
    for name, opset, kw in (
            ("roialign_10_avg", 10, dict(mode="avg", oh=3, ow=2, half_pixel=False)),
            ("roialign_10_max_sampling2", 10, dict(mode="max", oh=2, ow=3, sampling_ratio=2,
                                                   half_pixel=False)),
            ("roialign_16_max_half_pixel", 16, dict(mode="max", oh=3, ow=3, spatial_scale=0.75)),
            ("roialign_16_avg_output_half_pixel", 16, dict(mode="avg", oh=4, ow=2, half_pixel=False,
                                                           spatial_scale=1.5)),
            ("roialign_22_avg_double", 22, dict(mode="avg", oh=2, ow=2, sampling_ratio=3))):
        dt = np.float64 if "double" in name else np.float32
        Y = roi_align_ref(X.astype(dt), rois.astype(dt), bidx, **kw)
        attrs = dict(mode=kw["mode"], output_height=kw["oh"], output_width=kw["ow"],
                     sampling_ratio=kw.get("sampling_ratio", 0),
                     spatial_scale=kw.get("spatial_scale", 1.0))
        if opset >= 16:
            attrs["coordinate_transformation_mode"] = ("half_pixel" if kw.get("half_pixel", True)
                                                       else "output_half_pixel")
        node = helper.make_node("RoiAlign", ["X", "rois", "batch_indices"], ["Y"], **attrs)
        write_case(name, node, [("X", X.astype(dt)), ("rois", rois.astype(dt)),
                                ("batch_indices", bidx)], [("Y", Y.astype(dt))], opset)

    for name, shape, block, dil, pads, strides in (
            ("col2im_18_2d", (5, 6), (2, 3), (1, 1), (0, 0, 0, 0), (1, 1)),
            ("col2im_18_2d_strides_dilations_pads", (7, 8), (2, 2), (2, 1), (1, 2, 1, 2), (2, 3)),
            ("col2im_18_2d_asymmetric_pads", (6, 5), (3, 2), (1, 2), (0, 1, 2, 0), (1, 2)),
            ("col2im_18_3d", (4, 3, 5), (2, 1, 2), (1, 1, 2), (0, 1, 0, 1, 0, 1), (2, 1, 1)),
            ("col2im_18_1d", (9,), (3,), (2,), (1, 0), (2,))):
        r = len(shape)
        nblk = [(shape[d] + pads[d] + pads[r + d] - (dil[d] * (block[d] - 1) + 1)) // strides[d] + 1
                for d in range(r)]
        x = g.standard_normal((2, 2 * int(np.prod(block)), int(np.prod(nblk)))).astype(np.float32)
        Y = col2im_ref(x, shape, block, dil, pads, strides).astype(np.float32)
        node = helper.make_node("Col2Im", ["input", "image_shape", "block_shape"], ["Y"],
                                dilations=list(dil), pads=list(pads), strides=list(strides))
        write_case(name, node, [("input", x)], [("Y", Y)], 18,
                   initializers={"image_shape": np.array(shape, np.int64),
                                 "block_shape": np.array(block, np.int64)})
    x = g.integers(-50, 50, (1, 4, 6)).astype(np.int32)
    node = helper.make_node("Col2Im", ["input", "image_shape", "block_shape"], ["Y"])
    write_case("col2im_18_int32_defaults", node, [("input", x)],
               [("Y", col2im_ref(x, (3, 4), (2, 2), (1, 1), (0, 0, 0, 0), (1, 1)).astype(np.int32))],
               18, initializers={"image_shape": np.array([3, 4], np.int64),
                                 "block_shape": np.array([2, 2], np.int64)})

    x = g.standard_normal((3, 5, 8)).astype(np.float32)
    for name, shape, axes in (("center_crop_pad_18_crop_and_pad", [4, 7, 5], None),
                              ("center_crop_pad_18_axes_pad_odd", [8, 3], [1, 2]),
                              ("center_crop_pad_18_axes_negative", [10], [-2])):
        attrs = {} if axes is None else {"axes": axes}
        node = helper.make_node("CenterCropPad", ["x", "shape"], ["y"], **attrs)
        write_case(name, node, [("x", x), ("shape", np.array(shape, np.int64))],
                   [("y", center_crop_pad_ref(x, shape, axes))], 18)
    xi = g.integers(0, 255, (6, 3)).astype(np.uint8)
    node = helper.make_node("CenterCropPad", ["x", "shape"], ["y"])
    write_case("center_crop_pad_18_uint8", node, [("x", xi)],
               [("y", center_crop_pad_ref(xi, [3, 6]))], 18,
               initializers={"shape": np.array([3, 6], np.int64)})


    # float16 (computed from the float16 values in double)
    Xh, rh = X.astype(np.float16), rois.astype(np.float16)
    Y = roi_align_ref(Xh, rh, bidx, mode="avg", oh=2, ow=3, sampling_ratio=2)
    node = helper.make_node("RoiAlign", ["X", "rois", "batch_indices"], ["Y"], output_height=2,
                            output_width=3, sampling_ratio=2)
    write_case("roialign_16_avg_float16", node, [("X", Xh), ("rois", rh), ("batch_indices", bidx)],
               [("Y", Y.astype(np.float16))], 16)

if __name__ == "__main__":
    main()
