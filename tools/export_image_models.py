#!/usr/bin/python3
"""Export small PyTorch models that need the image-geometry operators
(Resize, GridSample) as ONNX test cases, with PyTorch's outputs:

    tiny_unet        UNet: max-pool encoder, decoder upsampling by
                     bilinear (half_pixel) and nearest interpolation,
                     skip concatenations (Resize with scales, opset 13)
    tiny_fpn         FPN-style top-down path: each coarser map resized to
                     the next map's size read at run time
                     (Shape/Slice/Concat -> Resize sizes), bilinear with
                     align_corners and bicubic heads (opset 13)
    tiny_stn         spatial transformer: a localization net predicts an
                     affine theta, the sampling grid is theta x a base
                     grid, GridSample reads the input (bilinear, zeros,
                     and nearest/border) (opset 16)

Layout: OUT/<case>/model.onnx and test_data_set_0/{input,output}_K.pb, the
layout `onnx-run test` reads and tests/models.cmake runs in CI (rtol 1e-3,
atol 1e-4, 1 and 2 threads). Weights are random and seeded, BatchNorm
statistics calibrated on random batches, PyTorch single-threaded: the same
command writes the same files.

Usage: /usr/bin/python3 tools/export_image_models.py --out testdata
       [--size tiny|full]   (full: 1x3x256x256 inputs and wider layers,
       for tools/check-models; not committed)
"""
import argparse
import os
import shutil

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper


def cbr(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class UNet(nn.Module):
    def __init__(self, w, classes=3):
        super().__init__()
        self.e1, self.e2, self.e3 = cbr(3, w), cbr(w, 2 * w), cbr(2 * w, 4 * w)
        self.d2, self.d1 = cbr(6 * w, 2 * w), cbr(3 * w, w)
        self.head = nn.Conv2d(w, classes, 1)

    def forward(self, x):
        e1 = self.e1(x)
        e2 = self.e2(F.max_pool2d(e1, 2))
        e3 = self.e3(F.max_pool2d(e2, 2))
        u2 = F.interpolate(e3, scale_factor=2.0, mode="bilinear", align_corners=False)
        d2 = self.d2(torch.cat([u2, e2], 1))
        u1 = F.interpolate(d2, scale_factor=2.0, mode="nearest")
        return self.head(self.d1(torch.cat([u1, e1], 1)))


class FPN(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.c1, self.c2, self.c3 = cbr(3, w), cbr(w, w), cbr(w, w)
        self.l1, self.l2, self.l3 = nn.Conv2d(w, w, 1), nn.Conv2d(w, w, 1), nn.Conv2d(w, w, 1)
        self.head = nn.Conv2d(w, 2, 3, padding=1)

    def forward(self, x):
        c1 = self.c1(x)
        c2 = self.c2(F.max_pool2d(c1, 3, stride=2, padding=1))  # odd sizes: 15 -> 8 -> 4
        c3 = self.c3(F.max_pool2d(c2, 3, stride=2, padding=1))
        p3 = self.l3(c3)
        p2 = self.l2(c2) + F.interpolate(p3, size=c2.shape[-2:], mode="bilinear", align_corners=True)
        p1 = self.l1(c1) + F.interpolate(p2, size=c1.shape[-2:], mode="bicubic", align_corners=False)
        return self.head(p1)


class STN(nn.Module):
    def __init__(self, w, hw):
        super().__init__()
        self.loc = nn.Sequential(cbr(3, w), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(w, 6))
        with torch.no_grad():  # near the identity transform, with some rotation/shift
            self.loc[-1].weight.mul_(0.3)
            self.loc[-1].bias.copy_(torch.tensor([0.9, 0.2, 0.1, -0.25, 1.1, -0.05]))
        h, w_ = hw
        ys = (2 * torch.arange(h, dtype=torch.float32) + 1) / h - 1
        xs = (2 * torch.arange(w_, dtype=torch.float32) + 1) / w_ - 1
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        self.register_buffer("base", torch.stack([gx, gy, torch.ones_like(gx)], -1).reshape(1, h * w_, 3))
        self.hw = hw
        self.conv = cbr(3, 4)

    def forward(self, x):
        theta = self.loc(x).reshape(-1, 2, 3)
        grid = torch.matmul(self.base, theta.transpose(1, 2)).reshape(-1, self.hw[0], self.hw[1], 2)
        a = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        b = F.grid_sample(self.conv(x), grid * 1.2, mode="nearest", padding_mode="border",
                          align_corners=True)
        return a, b


def calibrate(model, shape, n=4):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
            m.reset_running_stats()
            with torch.no_grad():
                m.weight.add_(torch.randn_like(m.weight) * 0.1)
                m.bias.add_(torch.randn_like(m.bias) * 0.1)
    model.train()
    with torch.no_grad():
        for _ in range(n):
            model(torch.randn(*shape))
    model.eval()


def save(arr, name, path):
    t = numpy_helper.from_array(np.ascontiguousarray(arr), name)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def export(model, name, shape, opset, out, outputs):
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    x = torch.randn(*shape)
    with torch.no_grad():
        y = model(x)
    ys = y if isinstance(y, tuple) else (y,)
    torch.onnx.export(model, (x,), os.path.join(d, "model.onnx"), opset_version=opset,
                      input_names=["input"], output_names=outputs, do_constant_folding=True)
    save(x.numpy(), "input", os.path.join(d, "test_data_set_0", "input_0.pb"))
    for k, (n, v) in enumerate(zip(outputs, ys)):
        save(v.numpy(), n, os.path.join(d, "test_data_set_0", "output_%d.pb" % k))
    print("wrote", d)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", default="tiny", choices=["tiny", "full"])
    a = ap.parse_args()
    torch.set_num_threads(1)
    full = a.size == "full"
    pre = "" if full else "tiny_"
    torch.manual_seed(1201)
    hw = (256, 256) if full else (16, 20)
    m = UNet(32 if full else 4)
    calibrate(m, (2, 3) + hw)
    export(m, pre + "unet", (1, 3) + hw, 13, a.out, ["logits"])
    torch.manual_seed(1202)
    hw = (255, 257) if full else (15, 17)
    m = FPN(64 if full else 4)
    calibrate(m, (2, 3) + hw)
    export(m, pre + "fpn", (1, 3) + hw, 13, a.out, ["logits"])
    torch.manual_seed(1203)
    hw = (128, 128) if full else (12, 10)
    m = STN(16 if full else 4, hw)
    calibrate(m, (2, 3) + hw)
    export(m, pre + "stn", (2, 3) + hw, 16, a.out, ["warped", "warped_features"])


if __name__ == "__main__":
    main()
