#!/usr/bin/python3
"""Export PyTorch 1.13 models that need the detection, Einsum, quantization
and segmentation operators as ONNX test cases, with PyTorch's outputs:

    ssd        torchvision SSD: GeneralizedRCNNTransform (normalize, bilinear
               Resize to the fixed size), a conv backbone with several feature
               maps, SSD head, box decoding, per-class score threshold
               (Greater/NonZero/GatherND), TopK, and torchvision's
               batched_nms (an If for the empty case, NonMaxSuppression in the
               other branch) (opset 13).  tiny: a 3-map conv backbone at
               64x64; full: ssdlite320_mobilenet_v3_large.
    yolo       YOLO-style head: three scales, grid from the feature map's run
               time shape (Shape/Range/meshgrid arithmetic), sigmoid / exp
               decode with anchors and strides, concatenated across scales,
               then TopK on objectness x class score, Gather, and
               torchvision.ops.nms (NonMaxSuppression) (opset 13).
    einsum     bilinear attention written with torch.einsum:
               'bij,bjk->bik', 'bhqd,bhkd->bhqk', 'bhqk,bhkd->bhqd',
               'bn,anm,bm->ba' (three operands), 'bii->bi' (opset 13).
    seg        torchvision LR-ASPP on MobileNetV3-Large: bilinear Resize of
               the head to the input size read at run time (opset 13).
               tiny: width 0.25, reduced tail, 48x64 input; full:
               lraspp_mobilenet_v3_large at 520x520.
    deeplab    (full only) torchvision deeplabv3_mobilenet_v3_large, 520x520.

    quant      eager-mode static quantization (torch.ao.quantization,
               qnnpack: this PyTorch has no fbgemm).  PyTorch 1.13 exports
               QDQ, not QLinearConv: QuantizeLinear / DequantizeLinear (per
               tensor, and per channel with axis for the weights) around
               float Conv / Gemm / Add, int32 biases through DequantizeLinear.
               tiny: a 3-conv CNN with a quantized residual add, 10x10 input
               drawn so that no value sits near a rounding tie (PyTorch's
               integer requantization and the float QDQ graph then agree
               exactly); full (--models quant, not by default): torchvision's
               quantizable MobileNetV2, which matches PyTorch only up to
               one-step rounding differences that grow through the layers.

No PyTorch 1.13 path exports Scan: scripted loops become Loop, nn.RNN /
LSTM / GRU become RNN / LSTM / GRU (torch/onnx block-lists aten::scan, and
libtorch has no onnx::Scan symbol).

The tiny SSD and YOLO heads export with the ops listed above; the tiny SSD
has a second data set (a flat grey image) on which no score passes the
threshold, the tiny YOLO a second input size (height and width are dynamic).

Weights are random and seeded; BatchNorm statistics are calibrated on random
batches (train mode); zero-initialised heads are re-drawn so the outputs are
not vanishingly small; detection thresholds are picked from the scores of the
test input in the middle of a gap between consecutive scores, so the tiny
cases keep some boxes and suppress others, and no score or IoU sits at a
threshold (the script prints the counts and margins).  PyTorch runs single
threaded: the same command writes the same files.

Layout: OUT/<case>/model.onnx and test_data_set_0/{input,output}_K.pb (the
layout `onnx-run test` reads and tests/models.cmake runs in CI).

Usage: /usr/bin/python3 tools/export_real_models.py --out testdata
       /usr/bin/python3 tools/export_real_models.py --size full --out models
       [--models ssd,yolo,einsum,seg,deeplab,quant]
"""
import argparse
import collections
import math
import os
import shutil
import sys
import time
import warnings
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import onnx
from onnx import numpy_helper


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def perturb_and_calibrate_bn(model, make_batch, n=4):
    """gamma = 1 + N(0, 0.1), beta = N(0, 0.1), running statistics as the
    cumulative mean/var over n random batches in train mode."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        with torch.no_grad():
            m.weight.copy_(1.0 + 0.1 * torch.randn_like(m.weight))
            m.bias.copy_(0.1 * torch.randn_like(m.bias))
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(n):
            model(make_batch())
    model.eval()


def redraw_zero_biases(model, thresh=1e-6):
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.bias is not None:
            if m.bias.detach().abs().max() < thresh:
                b = 1.0 / math.sqrt(m.weight[0].numel())
                with torch.no_grad():
                    m.bias.uniform_(-b, b)


def gap_threshold(values, keep):
    """A threshold between the keep-th and keep+1-th largest of values, in the
    middle of the gap between them (so float rounding cannot move a value
    across it); returns (threshold, gap)."""
    v = np.sort(np.asarray(values, np.float64).ravel())[::-1]
    keep = max(1, min(keep, len(v) - 1))
    # the widest gap among a few ranks around keep
    best = max(range(max(1, keep - 3), min(len(v) - 1, keep + 4)), key=lambda k: v[k - 1] - v[k])
    return float((v[best - 1] + v[best]) / 2), float(v[best - 1] - v[best])


def iou_matrix(b):
    b = np.asarray(b, np.float64)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(b[:, None, :2], b[None, :, :2])
    rb = np.minimum(b[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    return inter / np.maximum(area[:, None] + area[None, :] - inter, 1e-30)


def iou_margin(boxes, labels, thr):
    """Smallest |IoU - thr| over pairs of candidate boxes of the same label."""
    m = np.inf
    for c in np.unique(labels):
        bb = boxes[labels == c]
        if len(bb) < 2:
            continue
        iou = iou_matrix(bb)
        iu = iou[np.triu_indices(len(bb), 1)]
        m = min(m, float(np.abs(iu - thr).min()))
    return m


# ---------------------------------------------------------------------------
# 1. SSD (torchvision) with batched_nms post-processing
# ---------------------------------------------------------------------------


class TinySSDBackbone(nn.Module):
    """Three feature maps (strides 4, 8, 16) of a small conv net."""

    def __init__(self, w=8):
        super().__init__()

        def cbr(ci, co, s):
            return nn.Sequential(nn.Conv2d(ci, co, 3, s, 1, bias=False), nn.BatchNorm2d(co), nn.ReLU(inplace=True))

        self.stem = nn.Sequential(cbr(3, w, 2), cbr(w, w, 2))
        self.b2 = cbr(w, 2 * w, 2)
        self.b3 = cbr(2 * w, 2 * w, 2)

    def forward(self, x):
        f1 = self.stem(x)
        f2 = self.b2(f1)
        f3 = self.b3(f2)
        return OrderedDict([("0", f1), ("1", f2), ("2", f3)])


class DetectionOutputs(nn.Module):
    """A torchvision detector on one image, returning (boxes, scores, labels)."""

    def __init__(self, det):
        super().__init__()
        self.det = det

    def forward(self, image):
        d = self.det([image])[0]
        return d["boxes"], d["scores"], d["labels"]


class BackboneAndHead(nn.Module):
    """SSD's backbone and head alone (train mode needs no targets)."""

    def __init__(self, det):
        super().__init__()
        self.backbone, self.head = det.backbone, det.head

    def forward(self, x):
        return self.head(list(self.backbone(x).values()))


def _ssd_candidates(det, image):
    """The per-class candidates SSD's postprocess sees (before the score
    threshold): boxes [A, 4], foreground scores [A, C-1]."""
    with torch.no_grad():
        images, _ = det.transform([image])
        feats = list(det.backbone(images.tensors).values())
        head = det.head(feats)
        anchors = det.anchor_generator(images, feats)
        boxes = det.box_coder.decode_single(head["bbox_regression"][0], anchors[0])
        from torchvision.ops import boxes as box_ops

        boxes = box_ops.clip_boxes_to_image(boxes, images.image_sizes[0])
        scores = F.softmax(head["cls_logits"][0], -1)[:, 1:]
    return boxes.numpy(), scores.numpy()


def build_ssd(size):
    from torchvision.models.detection.ssd import SSD
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator

    if size == "full":
        from torchvision.models.detection import ssdlite320_mobilenet_v3_large

        det = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21)
        det.detections_per_img = 1000  # so that the count NMS keeps shows
        hw, img = 320, (3, 300, 400)
        keep_cand, cls_head = 300, det.head.classification_head
    else:
        det = SSD(TinySSDBackbone(), DefaultBoxGenerator([[2], [2, 3], [2]]), (64, 64), num_classes=4,
                  topk_candidates=12, detections_per_img=100)
        hw, img = 64, (3, 48, 60)
        keep_cand, cls_head = 40, det.head.classification_head
    perturb_and_calibrate_bn(BackboneAndHead(det), lambda: torch.randn(4, 3, hw, hw))
    det.eval()
    redraw_zero_biases(det)
    image = torch.rand(*img)
    # classification logits with std ~1 so the softmax scores spread out:
    # scale the last conv of each feature map's classification branch
    with torch.no_grad():
        images, _ = det.transform([image])
        logits = det.head(list(det.backbone(images.tensors).values()))["cls_logits"]
        f = 1.0 / float(logits.std())
        for branch in cls_head.module_list:
            last = [m for m in branch.modules() if isinstance(m, nn.Conv2d)][-1]
            last.weight.mul_(f)
            last.bias.mul_(f)
    model = DetectionOutputs(det).eval()
    # a test image on which no score, top-k boundary or IoU sits within
    # float32 noise of a threshold, and no two candidates of a class (nor two
    # outputs) have scores so close that rounding could swap them
    for attempt in range(20):
        if attempt:
            image = torch.rand(*img)
        boxes, scores = _ssd_candidates(det, image)
        thr, gap = gap_threshold(scores, keep_cand)
        det.score_thresh = thr
        # the candidates after threshold and top-k, as postprocess_detections does
        cb, cs, cl, kgap = [], [], [], np.inf
        for c in range(scores.shape[1]):
            idx = np.nonzero(scores[:, c] > thr)[0]
            srt = np.sort(scores[idx, c])[::-1]
            if len(srt) > det.topk_candidates:
                kgap = min(kgap, srt[det.topk_candidates - 1] - srt[det.topk_candidates])
            idx = idx[np.argsort(-scores[idx, c], kind="stable")][: det.topk_candidates]
            kgap = min([kgap] + list(-np.diff(scores[idx, c])))
            cb.append(boxes[idx]), cs.append(scores[idx, c]), cl.append(np.full(len(idx), c + 1))
        cb, cs, cl = np.concatenate(cb), np.concatenate(cs), np.concatenate(cl)
        margin = iou_margin(cb, cl, det.nms_thresh)
        with torch.no_grad():
            out_scores = model(image)[1].numpy()
        ogap = float(np.min(-np.diff(out_scores))) if len(out_scores) > 1 else 1.0
        ok = gap > 1e-4 and margin > 1e-4 and kgap > 2e-6 and ogap > 2e-6
        print("   ssd image %d: score_thresh %.6f (score gap %.3g), %d candidates above it, %d after top-%d "
              "(smallest score gap among them %.3g), %d kept by NMS (iou %.2f, smallest |IoU - thr| %.3g, "
              "smallest gap between output scores %.3g)%s"
              % (attempt, thr, gap, int((scores > thr).sum()), len(cs), det.topk_candidates, kgap, len(out_scores),
                 det.nms_thresh, margin, ogap, "" if ok else ": too close, another image"))
        if ok:
            break
    else:
        raise RuntimeError("ssd: no test image without near ties")
    kw = {}
    if size == "tiny":
        # a second data set where no score passes the threshold: a flat grey
        # image (torchvision's batched_nms takes the If's empty branch)
        grey = torch.full(img, 0.5)
        top = float(_ssd_candidates(det, grey)[1].max())
        with torch.no_grad():
            n = model(grey)[0].shape[0]
        print("   ssd grey image: best score %.6f (threshold %.6f), %d boxes" % (top, thr, n))
        if n == 0 and thr - top > 1e-4:
            kw["extra_sets"] = [{"image": grey}]
    return model, {"image": image}, ["boxes", "scores", "labels"], kw


# ---------------------------------------------------------------------------
# 2. YOLO-style head with TopK + NMS
# ---------------------------------------------------------------------------


class YoloNet(nn.Module):
    """Backbone with three output scales (strides 8, 16, 32), one 1x1 head
    conv per scale with na anchors x (5 + nc) channels, YOLOv3-style decode
    (sigmoid xy + grid, exp wh x anchor), concat across scales, TopK on
    objectness x best class score, then NMS of the top-k boxes."""

    def __init__(self, w, nc, anchors, topk, iou, score_thr):
        super().__init__()

        def cbr(ci, co, s):
            return nn.Sequential(nn.Conv2d(ci, co, 3, s, 1, bias=False), nn.BatchNorm2d(co), nn.SiLU(inplace=True))

        self.s8 = nn.Sequential(cbr(3, w, 2), cbr(w, 2 * w, 2), cbr(2 * w, 2 * w, 2))
        self.s16 = cbr(2 * w, 4 * w, 2)
        self.s32 = cbr(4 * w, 4 * w, 2)
        self.nc, self.na = nc, len(anchors[0])
        self.heads = nn.ModuleList([nn.Conv2d(c, self.na * (5 + nc), 1) for c in (2 * w, 4 * w, 4 * w)])
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32))  # [3, na, 2] pixels
        self.strides = (8, 16, 32)
        self.topk, self.iou, self.score_thr = topk, iou, score_thr

    def decode(self, x):
        f8 = self.s8(x)
        f16 = self.s16(f8)
        f32 = self.s32(f16)
        outs = []
        for i, f in enumerate((f8, f16, f32)):
            p = self.heads[i](f)
            b, _, h, w = p.shape
            p = p.view(b, self.na, 5 + self.nc, h, w).permute(0, 1, 3, 4, 2)
            gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            grid = torch.stack((gx, gy), -1).view(1, 1, h, w, 2).float()
            xy = (torch.sigmoid(p[..., :2]) + grid) * self.strides[i]
            wh = torch.exp(p[..., 2:4]) * self.anchors[i].view(1, self.na, 1, 1, 2)
            conf = torch.sigmoid(p[..., 4:])
            outs.append(torch.cat((xy, wh, conf), -1).view(b, -1, 5 + self.nc))
        return torch.cat(outs, 1)  # [b, N, 5 + nc]: cx, cy, w, h, obj, classes

    def forward(self, x):
        pred = self.decode(x)[0]
        score, label = (pred[:, 5:] * pred[:, 4:5]).max(1)
        score, idx = score.topk(self.topk)
        p = pred[idx]
        boxes = torch.cat((p[:, :2] - p[:, 2:4] / 2, p[:, :2] + p[:, 2:4] / 2), 1)
        keep = score > self.score_thr
        boxes, score, label = boxes[keep], score[keep], label[idx][keep]
        from torchvision.ops import batched_nms

        k = batched_nms(boxes, score, label, self.iou)
        return boxes[k], score[k], label[k]


def yolo_scores(model, x):
    with torch.no_grad():
        pred = model.decode(x)[0]
    return pred, (pred[:, 5:] * pred[:, 4:5]).max(1)[0].numpy()


def yolo_stats(model, x):
    """Counts and margins of the post-processing on input x; whether no
    score or IoU is within float32 noise of a threshold or of another."""
    pred, s = yolo_scores(model, x)
    with torch.no_grad():
        order = np.argsort(-s, kind="stable")[: model.topk]
        p = pred[torch.from_numpy(order.copy())]
        boxes = torch.cat((p[:, :2] - p[:, 2:4] / 2, p[:, :2] + p[:, 2:4] / 2), 1).numpy()
        lab = (p[:, 5:] * p[:, 4:5]).max(1)[1].numpy()
        ks = s[order] > model.score_thr
        out_scores = model(x)[1].numpy()
    ss = np.sort(s)[::-1]
    tmargin = float(np.abs(ss - model.score_thr).min())
    cgap = float(np.min(-np.diff(ss[ss > model.score_thr]))) if ks.sum() > 1 else 1.0
    ogap = float(np.min(-np.diff(out_scores))) if len(out_scores) > 1 else 1.0
    imargin = iou_margin(boxes[ks], lab[ks], model.iou)
    ok = tmargin > 1e-5 and cgap > 1e-6 and ogap > 1e-6 and imargin > 1e-4
    print("   yolo %s: %d predictions, top-%d, %d above score_thr %.5f (margin %.3g, smallest gap between "
          "them %.3g), %d kept by NMS (smallest |IoU - thr| %.3g, smallest gap between output scores %.3g)%s"
          % (list(x.shape[2:]), len(s), model.topk, int(ks.sum()), model.score_thr, tmargin, cgap, len(out_scores),
             imargin, ogap, "" if ok else ": too close"))
    return ok


def build_yolo(size):
    if size == "full":
        w, nc, hw, hw2, topk = 32, 20, (416, 416), (320, 480), 1000
        anchors = [[[10, 13], [16, 30], [33, 23]], [[30, 61], [62, 45], [59, 119]],
                   [[116, 90], [156, 198], [373, 326]]]
        keep = 150
    else:
        w, nc, hw, hw2, topk = 8, 3, (64, 96), (96, 64), 40
        anchors = [[[32, 40], [48, 36]], [[56, 64], [80, 48]], [[96, 88], [120, 128]]]
        keep = 25
    model = YoloNet(w, nc, anchors, topk, 0.45, 0.0)
    perturb_and_calibrate_bn(model, lambda: torch.randn(4, 3, *hw))
    redraw_zero_biases(model)
    model.eval()
    x = torch.rand(1, 3, *hw)
    # objectness and class logits of std ~1.5, so the scores spread out
    with torch.no_grad():
        f8 = model.s8(x)
        f16 = model.s16(f8)
        for head, f in zip(model.heads, (f8, f16, model.s32(f16))):
            per = 5 + nc
            ch = torch.tensor([a * per + c for a in range(model.na) for c in range(4, per)])
            k = 1.5 / float(head(f)[:, ch].std())
            head.weight[ch] *= k
            head.bias[ch] *= k
    for attempt in range(20):
        x2 = torch.rand(1, 3, *hw2)
        if attempt:
            x = torch.rand(1, 3, *hw)
        s1, s2 = yolo_scores(model, x)[1], yolo_scores(model, x2)[1]
        # the score threshold: of the midpoints around rank `keep` of the
        # first input's top-k, the one farthest from every score of both inputs
        top = np.sort(s1)[::-1][:topk]
        mids = (top[keep - 5:keep + 5] + top[keep - 4:keep + 6]) / 2
        allsc = np.concatenate([s1, s2])
        model.score_thr = float(max(mids, key=lambda t: np.abs(allsc - t).min()))
        if yolo_stats(model, x) & yolo_stats(model, x2):
            break
    else:
        raise RuntimeError("yolo: no test inputs without near ties")
    # height and width dynamic: the grids are built at run time from the
    # feature maps' shapes (Shape, Range, meshgrid's Expand)
    return model, {"images": x}, ["boxes", "scores", "labels"], \
        {"dynamic_axes": {"images": {2: "height", 3: "width"}}, "extra_sets": [{"images": x2}]}


# ---------------------------------------------------------------------------
# 3. Einsum: bilinear attention
# ---------------------------------------------------------------------------


class EinsumAttention(nn.Module):
    def __init__(self, d, heads, nbil):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.proj = nn.Parameter(torch.randn(d, d) / math.sqrt(d))
        self.q, self.k, self.v = (nn.Parameter(torch.randn(heads, d, d // heads) / math.sqrt(d)) for _ in range(3))
        self.bil = nn.Parameter(torch.randn(nbil, d, d) / d)
        self.out = nn.Linear(d, d)

    def forward(self, x, y):
        # x: [b, t, d], y: [b, d]
        x = torch.einsum("bij,jk->bik", x, self.proj)
        gram = torch.einsum("bti,btj->bij", x, x) / x.shape[1]
        x = torch.einsum("bij,bjk->bik", x, gram.softmax(-1))
        q = torch.einsum("btd,hde->bhte", x, self.q)
        k = torch.einsum("btd,hde->bhte", x, self.k)
        v = torch.einsum("btd,hde->bhte", x, self.v)
        att = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(self.dh)
        ctx = torch.einsum("bhqk,bhkd->bhqd", att.softmax(-1), v)
        ctx = ctx.permute(0, 2, 1, 3).reshape(x.shape)
        z = self.out(ctx)
        pooled = z.mean(1)
        bil = torch.einsum("bn,anm,bm->ba", pooled, self.bil, y)
        diag = torch.einsum("bii->bi", torch.einsum("bti,btj->bij", z, z))
        return z, bil, diag


def build_einsum(size):
    b, t, d, h, nb = (2, 7, 16, 2, 5) if size == "tiny" else (8, 128, 256, 8, 64)
    model = EinsumAttention(d, h, nb).eval()
    x, y = torch.randn(b, t, d), torch.randn(b, d)
    with torch.no_grad():  # outputs of std ~1
        z = model(x, y)[0]
        model.out.weight.div_(float(z.std()))
        model.out.bias.div_(float(z.std()))
        model.bil.div_(float(model(x, y)[1].std()))
    return model, {"x": x, "y": y}, ["z", "bilinear", "diag"], {}


# ---------------------------------------------------------------------------
# 4. segmentation: LR-ASPP / DeepLabV3 on MobileNetV3 (bilinear Resize)
# ---------------------------------------------------------------------------


class SegOut(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x)["out"]


def build_seg(size, kind="lraspp"):
    import torchvision.models.segmentation as seg
    from torchvision.models.mobilenetv3 import MobileNetV3, _mobilenet_v3_conf

    if size == "full":
        fn = {"lraspp": seg.lraspp_mobilenet_v3_large, "deeplab": seg.deeplabv3_mobilenet_v3_large}[kind]
        kw = {} if kind == "lraspp" else {"aux_loss": False}
        m = fn(weights=None, weights_backbone=None, num_classes=21, **kw)
        hw = (520, 520)
    else:
        from torchvision.models.segmentation.lraspp import _lraspp_mobilenetv3

        setting, last = _mobilenet_v3_conf("mobilenet_v3_large", width_mult=0.25, reduced_tail=True, dilated=True)
        m = _lraspp_mobilenetv3(MobileNetV3(setting, last), 5)
        m.classifier.cbr[0] = nn.Conv2d(m.classifier.cbr[0].in_channels, 16, 1, bias=False)
        m.classifier.cbr[1] = nn.BatchNorm2d(16)
        m.classifier.scale[1] = nn.Conv2d(m.classifier.scale[1].in_channels, 16, 1, bias=False)
        m.classifier.high_classifier = nn.Conv2d(16, 5, 1)
        hw = (48, 64)
    model = SegOut(m)
    perturb_and_calibrate_bn(model, lambda: torch.randn(2, 3, *hw), n=3)
    redraw_zero_biases(model)
    model.eval()
    x = torch.randn(1, 3, *hw)
    return model, {"input": x}, ["out"], {}


# ---------------------------------------------------------------------------
# 5. a statically quantized CNN (torch.ao.quantization, eager mode)
# ---------------------------------------------------------------------------


class QuantCNN(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.c1 = nn.Conv2d(3, w, 3, padding=1)
        self.r1 = nn.ReLU()
        self.c2 = nn.Conv2d(w, 2 * w, 3, stride=2, padding=1)
        self.r2 = nn.ReLU()
        self.c3 = nn.Conv2d(2 * w, 2 * w, 3, padding=1)
        self.skip = nn.quantized.FloatFunctional()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * w, 10)
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.r2(self.c2(self.r1(self.c1(x))))
        x = self.skip.add(x, self.c3(x))
        x = torch.flatten(self.pool(x), 1)
        return self.dequant(self.fc(x))


def qdq_reference(model, feeds):
    """Evaluate a QDQ graph as PyTorch 1.13 exports it (QuantizeLinear,
    DequantizeLinear, Conv, Gemm, ...) in float64 by the ONNX definitions;
    returns (outputs, the smallest distance, in quanta, of a value that
    QuantizeLinear rounds to a rounding tie, over values it does not clamp)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from export_models import _attr, _conv

    env = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    env.update(feeds)
    margin = np.inf

    def per_axis(s, z, x, a):
        if s.size > 1:
            sh = [1] * x.ndim
            sh[a.get("axis", 1) % x.ndim] = -1
            return s.reshape(sh), z.reshape(sh)
        return s, z

    for node in model.graph.node:
        a, op = _attr(node), node.op_type
        ins = [env[i] if i else None for i in node.input]
        x = ins[0] if ins else None
        if op == "Constant":
            r = numpy_helper.to_array(a["value"])
        elif op == "QuantizeLinear":
            s, z = per_axis(ins[1].astype(np.float64), ins[2], x, a)
            info = np.iinfo(ins[2].dtype)
            v = x.astype(np.float64) / s + z.astype(np.float64)
            inside = (v > info.min - 0.5) & (v < info.max + 0.5)
            if inside.any():
                margin = min(margin, float(np.abs(np.abs(v - np.floor(v)) - 0.5)[inside].min()))
            r = np.clip(np.rint(v), info.min, info.max).astype(ins[2].dtype)
        elif op == "DequantizeLinear":
            s, z = per_axis(ins[1].astype(np.float64), ins[2], x, a)
            r = (x.astype(np.int64) - z.astype(np.int64)) * s
        elif op == "Conv":
            r = _conv(x.astype(np.float64), ins[1], ins[2], a)
        elif op == "Gemm":
            w = ins[1].T if a.get("transB", 0) else ins[1]
            r = x @ w + (ins[2] if len(ins) > 2 else 0)
        elif op == "Relu":
            r = np.maximum(x, 0)
        elif op == "Add":
            r = ins[0] + ins[1]
        elif op == "GlobalAveragePool":
            r = x.mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            r = x.reshape(x.shape[0], -1)
        elif op == "Cast":
            r = x.astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]])
        elif op == "ConstantOfShape":
            v = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
            r = np.full(tuple(int(d) for d in x), v.reshape(-1)[0], v.dtype)
        else:
            raise NotImplementedError("qdq_reference: op %s" % op)
        env[node.output[0]] = np.asarray(r)
    return [env[o.name] for o in model.graph.output], margin


def build_quant(size):
    """tiny: QuantCNN (per-tensor and per-channel weights, a quantized add);
    full: torchvision's quantizable MobileNetV2, BatchNorm calibrated then
    folded (fuse_model), per-channel weights.  qnnpack (this PyTorch build
    has no fbgemm), static quantization calibrated on random batches."""
    import torch.ao.quantization as tq

    torch.backends.quantized.engine = "qnnpack" if "qnnpack" in torch.backends.quantized.supported_engines \
        else "fbgemm"
    qc = tq.get_default_qconfig(torch.backends.quantized.engine)
    if size == "full":
        from torchvision.models.quantization import mobilenet_v2

        hw = 224
        m = mobilenet_v2(weights=None, quantize=False)
        perturb_and_calibrate_bn(m, lambda: torch.randn(4, 3, hw, hw), n=3)
        redraw_zero_biases(m)
        m.eval()
        with torch.no_grad():  # logits of std ~1
            k = 1.0 / float(m(torch.randn(2, 3, hw, hw)).std())
            m.classifier[1].weight.mul_(k)
            m.classifier[1].bias.mul_(k)
        m.fuse_model(is_qat=False)
        m.qconfig = tq.QConfig(activation=qc.activation, weight=tq.default_per_channel_weight_observer)
    else:
        hw = 10  # pooled over 5x5: an average of 25 integers is never a rounding tie
        m = QuantCNN(8).eval()
        m.qconfig = qc
        # c2: per-output-channel weight scales (DequantizeLinear with axis)
        m.c2.qconfig = tq.QConfig(activation=qc.activation, weight=tq.default_per_channel_weight_observer)
        tq.fuse_modules(m, [["c1", "r1"], ["c2", "r2"]], inplace=True)
    tq.prepare(m, inplace=True)
    with torch.no_grad():
        for _ in range(4):
            m(torch.randn(2, 3, hw, hw))
    tq.convert(m, inplace=True)
    x = torch.randn(1, 3, hw, hw)
    if size == "tiny":
        # PyTorch computes in integers (qnnpack), an ONNX runtime in float by
        # the QDQ graph: the two agree only where no value lands within float
        # noise of a rounding tie. Draw inputs until every value that a
        # QuantizeLinear rounds is at least 2e-4 quanta from a tie (float32
        # noise is below 1e-4 quanta at 255 quanta), and PyTorch agrees exactly.
        import io

        for attempt in range(100):
            f = io.BytesIO()
            torch.onnx.export(m, (x,), f, opset_version=13, input_names=["input"], output_names=["logits"])
            (got,), margin = qdq_reference(onnx.load_from_string(f.getvalue()), {"input": x.numpy()})
            with torch.no_grad():
                diff = float(np.abs(got - m(x).numpy()).max())
            print("   quant input %d: smallest distance to a rounding tie %.3g quanta, float64 QDQ reference vs "
                  "PyTorch max abs diff %.3g" % (attempt, margin, diff))
            if margin > 2e-4 and diff < 1e-6:
                break
            x = torch.randn(1, 3, hw, hw)
        else:
            raise RuntimeError("quant: no input away from rounding ties")
    return m, {"input": x}, ["logits"], {}


# ---------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------

# key: (builder, opset, tiny case, full case)
MODELS = OrderedDict([
    ("ssd", (build_ssd, 13, "tiny_ssd_nms", "ssdlite320_mobilenet_v3")),
    ("yolo", (build_yolo, 13, "tiny_yolo_head", "yolo_head_416")),
    ("einsum", (build_einsum, 13, "tiny_einsum_attention", "einsum_attention")),
    ("seg", (lambda s: build_seg(s, "lraspp"), 13, "tiny_lraspp", "lraspp_mobilenet_v3_520")),
    ("deeplab", (lambda s: build_seg(s, "deeplab"), 13, None, "deeplabv3_mobilenet_v3_520")),
    ("quant", (build_quant, 13, "tiny_quant_cnn", "quant_mobilenet_v2")),
])
SEEDS = {"ssd": 1301, "yolo": 1302, "einsum": 1303, "seg": 1304, "deeplab": 1305, "quant": 1306}
DEFAULT = {"tiny": ["ssd", "yolo", "einsum", "seg", "quant"], "full": ["ssd", "yolo", "einsum", "seg", "deeplab"]}


def save(arr, name, path):
    t = numpy_helper.from_array(np.ascontiguousarray(arr), name)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def op_histogram(g, hist):
    for n in g.node:
        hist[n.op_type] += 1
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                op_histogram(a.g, hist)
    return hist


def export_one(key, size, out):
    build, opset, tiny, full = MODELS[key]
    case = tiny if size == "tiny" else full
    if case is None:
        print("== %s: no %s variant" % (key, size))
        return None
    torch.manual_seed(SEEDS[key])
    t0 = time.time()
    model, inputs, out_names, kw = build(size)
    extra_sets = kw.pop("extra_sets", [])
    in_names = list(inputs)
    args = tuple(inputs[n] for n in in_names)
    with torch.no_grad():
        ref = model(*args)
    ref = ref0 = [r.numpy() for r in (ref if isinstance(ref, (tuple, list)) else (ref,))]
    d = os.path.join(out, case)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    mpath = os.path.join(d, "model.onnx")
    torch.onnx.export(model, args, mpath, opset_version=opset, input_names=in_names, output_names=out_names,
                      do_constant_folding=True, **kw)
    m = onnx.load(mpath)
    onnx.checker.check_model(m)
    for si, ins in enumerate([inputs] + extra_sets):
        sd = os.path.join(d, "test_data_set_%d" % si)
        os.makedirs(sd, exist_ok=True)
        if si:
            with torch.no_grad():
                r = model(*(ins[n] for n in in_names))
            ref = [v.numpy() for v in (r if isinstance(r, (tuple, list)) else (r,))]
        for k, n in enumerate(in_names):
            save(ins[n].numpy(), n, os.path.join(sd, "input_%d.pb" % k))
        for k, (n, r) in enumerate(zip(out_names, ref)):
            save(r, n, os.path.join(sd, "output_%d.pb" % k))
    hist = op_histogram(m.graph, collections.Counter())
    nparams = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
    print("== %s (%s, opset %d) model.onnx %.2f MB, %.3fM params, %.1fs"
          % (case, key, opset, os.path.getsize(mpath) / 1e6, nparams / 1e6, time.time() - t0))
    print("   ops (incl. subgraphs): " + " ".join("%s:%d" % kv for kv in sorted(hist.items())))
    for n, r in zip(out_names, ref0):
        print("   out %s %s %s absmax %.4g" % (n, list(r.shape), r.dtype, float(np.abs(r).max()) if r.size else 0.0))
    sys.stdout.flush()
    return case


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None)
    ap.add_argument("--size", default="tiny", choices=["tiny", "full"])
    ap.add_argument("--models", default=None)
    a = ap.parse_args()
    out = a.out or ("testdata" if a.size == "tiny" else "models")
    keys = a.models.split(",") if a.models else DEFAULT[a.size]
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    print("torch %s, onnx %s, size %s -> %s" % (torch.__version__, onnx.__version__, a.size, out))
    for k in keys:
        if k not in MODELS:
            ap.error("unknown model %r (known: %s)" % (k, ", ".join(MODELS)))
        export_one(k, a.size, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
