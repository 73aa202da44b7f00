"""Spec-derived cases for NonMaxSuppression (opsets 10 and 11) beyond the
nine of the ONNX 1.12 suite: random boxes over several batches and
classes, both box formats, no score_threshold input, no inputs after
scores (nothing selected), tied scores (the lower box index first),
max_output_boxes_per_class larger than the box count, opset 10.
The expected rows come from a direct numpy transcription of the
specification's greedy selection (highest score first; a box is dropped
when its IOU with a selected box of its class exceeds iou_threshold).
    /usr/bin/python3 tools/spec_cases/nms.py
"""
import numpy as np
from onnx import helper

from common import rng, write_case


def corners(b, center):
    if center:
        return (b[1] - b[3] / 2, b[0] - b[2] / 2, b[1] + b[3] / 2, b[0] + b[2] / 2)
    return (min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3]))


def iou(a, b, center):
    ay0, ax0, ay1, ax1 = corners(a, center)
    by0, bx0, by1, bx1 = corners(b, center)
    iw = min(ax1, bx1) - max(ax0, bx0)
    ih = min(ay1, by1) - max(ay0, by0)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    aa = (ax1 - ax0) * (ay1 - ay0)
    ab = (bx1 - bx0) * (by1 - by0)
    uni = aa + ab - inter
    if aa <= 0 or ab <= 0 or uni <= 0:
        return 0.0
    return inter / uni


def ref(boxes, scores, max_out, iou_thr, score_thr, center):
    rows = []
    B, C, N = scores.shape
    for b in range(B):
        for c in range(C):
            s = scores[b, c]
            cand = [i for i in range(N) if score_thr is None or s[i] > score_thr]
            cand.sort(key=lambda i: (-float(s[i]), i))
            sel = []
            for i in cand:
                if len(sel) >= max_out:
                    break
                if all(iou(boxes[b, j], boxes[b, i], center) <= iou_thr for j in sel):
                    sel.append(i)
                    rows.append((b, c, i))
    return np.array(rows, np.int64).reshape(-1, 3)


def case(name, boxes, scores, max_out, iou_thr, score_thr, center=0, opset=11):
    ins = [("boxes", boxes), ("scores", scores)]
    names = ["boxes", "scores"]
    if max_out is not None:
        ins.append(("max_out", np.array([max_out], np.int64)))
        names.append("max_out")
        if iou_thr is not None:
            ins.append(("iou", np.array([iou_thr], np.float32)))
            names.append("iou")
            if score_thr is not None:
                ins.append(("score", np.array([score_thr], np.float32)))
                names.append("score")
    node = helper.make_node("NonMaxSuppression", names, ["sel"], center_point_box=center)
    f32 = np.float32
    y = ref(boxes, scores, max_out or 0, f32(iou_thr or 0), None if score_thr is None
            else f32(score_thr), center)
    write_case("nms%d_%s" % (opset, name), node, ins, [("sel", y)], opset)


def random_boxes(r, B, N, center):
    if center:
        xy = r.uniform(0, 10, (B, N, 2))
        wh = r.uniform(0.5, 4, (B, N, 2))
        return np.concatenate([xy, wh], axis=2).astype(np.float32)
    p = r.uniform(0, 10, (B, N, 2))
    q = p + r.uniform(-4, 4, (B, N, 2))  # either diagonal
    return np.stack([p[..., 0], p[..., 1], q[..., 0], q[..., 1]], axis=2).astype(np.float32)


def main():
    r = rng(10)
    for center in (0, 1):
        bx = random_boxes(r, 2, 40, center)
        sc = r.uniform(0, 1, (2, 3, 40)).astype(np.float32)
        case("random_center%d" % center, bx, sc, 7, 0.3, 0.2, center)
        case("random_center%d_no_score_thr" % center, bx, sc, 100, 0.5, None, center)
    bx = random_boxes(r, 1, 12, 0)
    sc = np.round(r.uniform(0, 1, (1, 2, 12)) * 3).astype(np.float32) / 3  # many ties
    case("ties", bx, sc, 12, 0.1, None)
    case("no_max_out", bx, sc, None, None, None)
    case("iou_zero", bx, sc, 5, 0.0, 0.0)
    case("opset10", bx, sc, 4, 0.4, 0.3, opset=10)


if __name__ == "__main__":
    main()
