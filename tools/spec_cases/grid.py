"""Spec cases for GridSample (opsets 20 and 22: N-D, the linear/cubic mode
names, other element types) and AffineGrid (opset 20).

GridSample, from the operator text: for every output point, grid[n, o...]
holds normalized coordinates in reverse axis order (the first is along the
last axis of X). Per spatial axis of size d:
  x = (g + 1) / 2 * (d - 1)          with align_corners
  x = ((g + 1) * d - 1) / 2          without
  nearest rounds x (half to even; half away from zero with 3 spatial axes);
  outside [lo, hi] = [0, d-1] (align_corners) or [-0.5, d-0.5], x is
  clamped to [0, d-1] (border) or reflected into [lo, hi] (reflection);
  taps: nearest 1, linear floor(x) + {0, 1} with weights 1-t, t, cubic
  floor(x) + {-1..2} with Keys' kernel (A = -0.75); a tap outside the input
  reads 0 (zeros), the nearest edge (border) or its reflection (reflection).
The value is the sum over the product of the per-axis taps. Where PyTorch
has the same operation (4-D and 5-D linear/nearest, 4-D cubic,
affine_grid), the generator checks the numpy result against it.

AffineGrid: grid[n, (d,) h, w] = theta[n] @ (x_w, y_h, (z_d,) 1) with the
normalized pixel centres (2i + 1) / L - 1, or -1 + 2i / (L - 1) with
align_corners (0 for a length-1 axis).

Run: /usr/bin/python3 tools/spec_cases/grid.py
"""
import itertools
import math

import numpy as np
from onnx import helper

from common import rng, write_case

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the cross-check is optional
    torch = None


def reflect(x, lo, hi):
    rng_ = hi - lo
    if x < lo:
        dx = lo - x
        n = math.floor(dx / rng_)
        r = dx - n * rng_
        return lo + r if n % 2 == 0 else hi - r
    if x > hi:
        dx = x - hi
        n = math.floor(dx / rng_)
        r = dx - n * rng_
        return hi - r if n % 2 == 0 else lo + r
    return x


def keys(d, A=-0.75):
    d = abs(d)
    if d <= 1:
        return (A + 2) * d ** 3 - (A + 3) * d ** 2 + 1
    if d < 2:
        return A * d ** 3 - 5 * A * d ** 2 + 8 * A * d - 4 * A
    return 0.0


def axis_taps(g, d, mode, pad, align, three_d):
    lo, hi = (0.0, d - 1.0) if align else (-0.5, d - 0.5)
    x = (g + 1) / 2 * (d - 1) if align else ((g + 1) * d - 1) / 2
    if mode == "nearest":
        x = (math.floor(x + 0.5) if x >= 0 else math.ceil(x - 0.5)) if three_d else float(np.rint(x))
    if x < lo or x > hi:
        if pad == "border":
            x = min(max(x, 0.0), d - 1.0)
        elif pad == "reflection":
            x = reflect(x, lo, hi)
    if mode == "nearest":
        taps = [(int(x), 1.0)]
    elif mode == "linear":
        f = math.floor(x)
        taps = [(f, 1 - (x - f)), (f + 1, x - f)]
    else:
        f = math.floor(x)
        taps = [(f + k, keys(x - f - k)) for k in (-1, 0, 1, 2)]
    out = []
    for i, w in taps:
        if i < 0 or i >= d:
            if pad == "zeros":
                i = None
            elif pad == "border":
                i = min(max(i, 0), d - 1)
            else:
                i = min(max(int(reflect(float(i), lo, hi)), 0), d - 1)
        out.append((i, w))
    return out


def grid_sample_ref(X, grid, mode, pad, align):
    r = X.ndim - 2
    N, C = X.shape[:2]
    out_sp = grid.shape[1:-1]
    Y = np.zeros((N, C) + out_sp)
    Xd = X.astype(np.float64)
    for n in range(N):
        for o in np.ndindex(*out_sp):
            g = grid[n][o].astype(np.float64)[::-1]
            taps = [axis_taps(g[k], X.shape[2 + k], mode, pad, align, r == 3) for k in range(r)]
            acc = np.zeros(C)
            for combo in itertools.product(*taps):
                if any(i is None for i, _ in combo):
                    continue
                w = np.prod([w for _, w in combo])
                acc += w * Xd[(n, slice(None)) + tuple(i for i, _ in combo)]
            Y[(n, slice(None)) + o] = acc
    return Y


def torch_check(X, grid, mode, pad, align, Y):
    if torch is None or X.ndim not in (4, 5) or (mode == "cubic" and X.ndim == 5):
        return
    tmode = {"linear": "bilinear", "cubic": "bicubic", "nearest": "nearest"}[mode]
    T = F.grid_sample(torch.from_numpy(X.astype(np.float64)), torch.from_numpy(grid.astype(np.float64)),
                      mode=tmode, padding_mode=pad, align_corners=bool(align)).numpy()
    assert np.allclose(T, Y, atol=1e-9), (mode, pad, align, np.abs(T - Y).max())


def gs_case(name, opset, X, grid, mode, pad, align):
    Y = grid_sample_ref(X, grid, mode, pad, align)
    torch_check(X, grid, mode, pad, align, Y)
    if np.issubdtype(X.dtype, np.integer):
        info = np.iinfo(X.dtype)
        Y = np.clip(np.trunc(Y), info.min, info.max)
    if opset < 20:  # opset 16's names
        mode = {"linear": "bilinear", "cubic": "bicubic"}.get(mode, mode)
    node = helper.make_node("GridSample", ["X", "grid"], ["Y"], mode=mode, padding_mode=pad,
                            align_corners=align)
    write_case(name, node, [("X", X), ("grid", grid)], [("Y", Y.astype(X.dtype))], opset)


def affine_base(L, align):
    if L <= 1:
        return np.zeros(L)
    i = np.arange(L)
    return -1 + 2.0 * i / (L - 1) if align else (2.0 * i + 1) / L - 1


def affine_grid_ref(theta, size, align):
    r = len(size) - 2
    sp = size[2:]
    axes = [affine_base(L, align) for L in sp]  # D, H, W order
    mesh = np.meshgrid(*axes, indexing="ij")
    base = np.stack([m for m in mesh[::-1]] + [np.ones(sp)], axis=-1)  # (x, y[, z], 1)
    out = np.einsum("nkj,...j->n...k", theta.astype(np.float64), base)
    if torch is not None:
        T = F.affine_grid(torch.from_numpy(theta.astype(np.float64)), list(size),
                          align_corners=bool(align)).numpy()
        assert np.allclose(T, out, atol=1e-9), np.abs(T - out).max()
    assert out.shape == (size[0],) + tuple(sp) + (r,)
    return out


def main():
    g = rng(20)
    u = lambda lo, hi, *s: g.uniform(lo, hi, s).astype(np.float32)
    x5 = g.standard_normal((1, 2, 3, 4, 5)).astype(np.float32)
    grid5 = u(-1.3, 1.3, 1, 2, 3, 4, 3)
    gs_case("gridsample_20_linear_5d_zeros", 20, x5, grid5, "linear", "zeros", 0)
    gs_case("gridsample_20_linear_5d_reflection_align", 20, x5, grid5, "linear", "reflection", 1)
    gs_case("gridsample_20_nearest_5d_border", 20, x5, grid5, "nearest", "border", 0)
    gs_case("gridsample_20_cubic_5d_border", 20, x5, grid5, "cubic", "border", 1)
    x4 = g.standard_normal((2, 3, 5, 6)).astype(np.float32)
    grid4 = u(-1.4, 1.4, 2, 4, 7, 2)
    gs_case("gridsample_20_cubic_4d_reflection", 20, x4, grid4, "cubic", "reflection", 0)
    gs_case("gridsample_20_cubic_4d_zeros_align", 20, x4, grid4, "cubic", "zeros", 1)
    gs_case("gridsample_20_nearest_4d_reflection", 20, x4, grid4, "nearest", "reflection", 0)
    x3 = g.standard_normal((2, 2, 7)).astype(np.float32)
    grid3 = u(-1.5, 1.5, 2, 9, 1)
    gs_case("gridsample_20_linear_3d_reflection", 20, x3, grid3, "linear", "reflection", 0)
    gs_case("gridsample_20_cubic_3d_border", 20, x3, grid3, "cubic", "border", 1)
    gs_case("gridsample_22_linear_double", 22, x4.astype(np.float64), grid4.astype(np.float64),
            "linear", "border", 0)
    gs_case("gridsample_22_linear_float16", 22, x4.astype(np.float16), grid4.astype(np.float16),
            "linear", "zeros", 1)
    gs_case("gridsample_16_nearest_int32", 16, g.integers(-1000, 1000, (1, 2, 4, 4)).astype(np.int32),
            u(-1.2, 1.2, 1, 3, 3, 2), "nearest", "zeros", 0)
    gs_case("gridsample_16_bilinear_uint8", 16, g.integers(0, 255, (1, 1, 4, 5)).astype(np.uint8),
            u(-1, 1, 1, 3, 3, 2), "linear", "border", 1)

    for align in (0, 1):
        theta = g.standard_normal((2, 2, 3)).astype(np.float32)
        size = np.array([2, 3, 4, 5], np.int64)
        out = affine_grid_ref(theta, tuple(size), align).astype(np.float32)
        node = helper.make_node("AffineGrid", ["theta", "size"], ["grid"], align_corners=align)
        write_case("affine_grid_20_2d_align%d" % align, node, [("theta", theta)], [("grid", out)],
                   20, initializers={"size": size})
        theta = g.standard_normal((1, 3, 4)).astype(np.float64)
        size = np.array([1, 2, 3, 1, 4], np.int64)
        out = affine_grid_ref(theta, tuple(size), align)
        write_case("affine_grid_20_3d_align%d" % align, node, [("theta", theta), ("size", size)],
                   [("grid", out)], 20)


    theta = g.standard_normal((1, 2, 3)).astype(np.float16)
    size = np.array([1, 2, 3, 5], np.int64)
    out = affine_grid_ref(theta, tuple(size), 0).astype(np.float16)
    node = helper.make_node("AffineGrid", ["theta", "size"], ["grid"])
    write_case("affine_grid_20_2d_float16", node, [("theta", theta)], [("grid", out)], 20,
               initializers={"size": size})

if __name__ == "__main__":
    main()
