"""Spec-derived cases for NegativeLogLikelihoodLoss (opset 22, the newest,
which the ONNX 1.12 suite lacks) and for float16 / double inputs of both
losses (the suite has float32 only). Expected outputs come from numpy,
straight from the operators' definitions:

    NLL:  loss[n, d] = -input[n, target[n, d], d] * weight[target[n, d]],
          0 (weight 0) where target == ignore_index; mean = sum(loss) /
          sum(picked weights).
    SCE:  the same on log_prob = log_softmax(scores, axis=1), which is the
          optional second output.

Computed in float64 and rounded to the case's type.
    /usr/bin/python3 tools/spec_cases/loss.py
"""
import numpy as np
from onnx import helper

from common import rng, write_case


def nll_ref(x, t, w, reduction, ii):
    x = x.astype(np.float64)
    N, C = x.shape[:2]
    xs = x.reshape(N, C, -1)
    ts = t.reshape(N, -1)
    loss = np.zeros(ts.shape)
    wt = np.zeros(ts.shape)
    for n in range(N):
        for d in range(ts.shape[1]):
            c = int(ts[n, d])
            if ii is not None and c == ii:
                continue
            wc = 1.0 if w is None else float(w[c])
            loss[n, d] = -xs[n, c, d] * wc
            wt[n, d] = wc
    if reduction == "none":
        return loss.reshape(t.shape)
    if reduction == "sum":
        return np.array(loss.sum())
    return np.array(loss.sum() / wt.sum())


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def case(name, op, opset, x, t, w, reduction, ii, log_prob=False):
    attrs = {"reduction": reduction}
    if ii is not None:
        attrs["ignore_index"] = ii
    ins = [("x", x), ("t", t)] + ([("w", w)] if w is not None else [])
    outs_names = ["y"] + (["lp"] if log_prob else [])
    node = helper.make_node(op, [n for n, _ in ins], outs_names, **attrs)
    if op == "SoftmaxCrossEntropyLoss":
        lp = log_softmax(x)
        y = nll_ref(lp, t, w, reduction, ii)
        outs = [("y", y.astype(x.dtype))] + ([("lp", lp.astype(x.dtype))] if log_prob else [])
    else:
        outs = [("y", nll_ref(x, t, w, reduction, ii).astype(x.dtype))]
    write_case(name, node, ins, outs, opset)


def main():
    r = rng(2012)
    x = r.standard_normal((3, 5, 2, 3)).astype(np.float32)
    t = r.integers(0, 5, (3, 2, 3)).astype(np.int64)
    t[0, 1, 2] = t[2, 0, 0] = -1
    w = r.uniform(0.2, 1.5, 5).astype(np.float32)
    for red in ("none", "sum", "mean"):
        case("nllloss22_NCd1d2_weight_neg_ii_%s" % red, "NegativeLogLikelihoodLoss", 22,
             x, t, w, red, -1)
    case("nllloss22_NC_int32_no_weight", "NegativeLogLikelihoodLoss", 22,
         x[:, :, 0, 0].copy(), t[:, 0, 0].clip(0).astype(np.int32), None, "mean", None)
    case("nllloss12_NCd1d2_double_weight_ii_sum", "NegativeLogLikelihoodLoss", 12,
         x.astype(np.float64), t.clip(0), w.astype(np.float64), "sum", 3)
    xh = (r.standard_normal((4, 3, 5)) * 2).astype(np.float16)
    th = r.integers(0, 3, (4, 5)).astype(np.int64)
    case("nllloss22_NCd1_float16_weight_mean", "NegativeLogLikelihoodLoss", 22,
         xh, th, r.uniform(0.5, 1.5, 3).astype(np.float16), "mean", None)
    case("nllloss13_NCd1_float16_none", "NegativeLogLikelihoodLoss", 13, xh, th, None,
         "none", None)
    case("sce13_NCd1_float16_weight_ii_mean_log_prob", "SoftmaxCrossEntropyLoss", 13,
         xh, th, r.uniform(0.5, 1.5, 3).astype(np.float16), "mean", 2, log_prob=True)
    case("sce12_NCd1d2_double_none_log_prob", "SoftmaxCrossEntropyLoss", 12,
         x.astype(np.float64) * 10, t.clip(0), None, "none", None, log_prob=True)
    case("sce13_NC_large_scores_sum", "SoftmaxCrossEntropyLoss", 13,
         (x[:, :, 0, 0] * 300).astype(np.float32), t[:, 0, 0].clip(0), None, "sum", None)


if __name__ == "__main__":
    main()
