"""ai.onnx.preview.training optimizers beyond the ONNX 1.12 suite's cases:
float64 tensors and rate, T > 0 (Adam's bias correction, Adagrad's decay,
Momentum's beta), non-default epsilon and norm_coefficient_post, several
tensors at once. Expected values follow the operator text in float64:
    /usr/bin/python3 tools/spec_cases/training.py
"""
import numpy as np
from onnx import helper

from common import rng, write_case

DOM = "ai.onnx.preview.training"


def adagrad(r, t, x, g, h, decay, eps, norm):
    r_ = r / (1 + t * decay)
    g = norm * x + g
    h = h + g * g
    return x - r_ * g / (np.sqrt(h) + eps), h


def adam(r, t, x, g, v, h, alpha, beta, eps, norm, post):
    g = norm * x + g
    v = alpha * v + (1 - alpha) * g
    h = beta * h + (1 - beta) * g * g
    r_ = r * np.sqrt(1 - beta ** t) / (1 - alpha ** t) if t > 0 else r
    return (1 - post) * (x - r_ * v / (np.sqrt(h) + eps)), v, h


def momentum(r, t, x, g, v, alpha, beta, norm, nesterov):
    g = norm * x + g
    b = beta if t > 0 else 1
    v = alpha * v + b * g
    return (x - r * (g + alpha * v) if nesterov else x - r * v), v


def case(name, op, attrs, groups_in, groups_out, r, t, dt):
    n = len(groups_in[0])
    names_in = ["R", "T"] + ["%s%d" % (k, i) for k in "XGVH"[:len(groups_in)] for i in range(n)]
    names_out = ["%s%d_new" % (k, i) for k in "XVH"[:len(groups_out)] for i in range(n)]
    if op in ("Adagrad", "Momentum"):
        names_in = ["R", "T"] + ["%s%d" % (k, i) for k in ("X", "G", "S") for i in range(n)]
        names_out = ["%s%d_new" % (k, i) for k in ("X", "S") for i in range(n)]
    ins = [np.array(r, dtype=dt), np.array(t, dtype=np.int64)] + [a.astype(dt) for grp in groups_in for a in grp]
    outs = [a.astype(dt) for grp in groups_out for a in grp]
    node = helper.make_node(op, names_in, names_out, domain=DOM, **attrs)
    write_case(name, node, list(zip(names_in, ins)), list(zip(names_out, outs)), 17, {DOM: 1})


def main():
    q = rng(1)
    X = [q.standard_normal((3,)), q.standard_normal((2, 2))]
    G = [q.standard_normal((3,)), q.standard_normal((2, 2))]
    V = [q.standard_normal((3,)), q.standard_normal((2, 2))]
    H = [np.abs(q.standard_normal((3,))), np.abs(q.standard_normal((2, 2)))]
    for dt, tag in ((np.float64, "double"), (np.float32, "float")):
        res = [adagrad(0.2, 3, x, g, h, 0.1, 1e-4, 0.01) for x, g, h in zip(X, G, H)]
        case("adagrad_decay_t3_" + tag, "Adagrad", dict(decay_factor=0.1, epsilon=1e-4, norm_coefficient=0.01),
             [X, G, H], [[a for a, _ in res], [b for _, b in res]], 0.2, 3, dt)
        res = [adam(0.05, 4, x, g, v, h, 0.9, 0.99, 1e-3, 0.02, 0.1) for x, g, v, h in zip(X, G, V, H)]
        case("adam_bias_correction_t4_" + tag, "Adam",
             dict(alpha=0.9, beta=0.99, epsilon=1e-3, norm_coefficient=0.02, norm_coefficient_post=0.1),
             [X, G, V, H], [[a for a, _, _ in res], [b for _, b, _ in res], [c for _, _, c in res]],
             0.05, 4, dt)
        for nest in (0, 1):
            res = [momentum(0.1, 2, x, g, v, 0.8, 0.5, 0.03, nest) for x, g, v in zip(X, G, V)]
            case("momentum_%s_t2_%s" % ("nesterov" if nest else "standard", tag), "Momentum",
                 dict(alpha=0.8, beta=0.5, norm_coefficient=0.03, mode="nesterov" if nest else "standard"),
                 [X, G, V], [[a for a, _ in res], [b for _, b in res]], 0.1, 2, dt)


if __name__ == "__main__":
    main()
