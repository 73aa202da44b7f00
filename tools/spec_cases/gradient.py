"""Gradient (ai.onnx.preview.training, opset 1) beyond the ONNX 1.12 suite's
two scalar cases: a small MLP's loss differentiated w.r.t. its weights and
biases (initializers named in xs, the data in zs), broadcast Mul/Div with a
non-scalar y (seeded with ones), a float64 Gemm/Tanh/Pow chain, shape
operators, and a gradient evaluated at inputs other than the named tensors.
Expected values are the analytic gradients written in numpy (float64):
    /usr/bin/python3 tools/spec_cases/gradient.py
"""
import numpy as np
from onnx import helper

from common import rng, write_case

DOM = "ai.onnx.preview.training"


def grad_node(ins, outs, xs, y, zs=None):
    attrs = dict(xs=xs, y=y)
    if zs:
        attrs["zs"] = zs
    return helper.make_node("Gradient", ins, outs, name="grad", domain=DOM, **attrs)


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def mlp():
    """loss = -mean(T * log(softmax(relu(x W1 + b1) W2 + b2)))"""
    q = rng(7)
    x = q.standard_normal((4, 3)).astype(np.float32)
    t = np.eye(3, dtype=np.float32)[[0, 2, 1, 2]]
    w1 = (0.5 * q.standard_normal((3, 5))).astype(np.float32)
    b1 = (0.1 * q.standard_normal(5)).astype(np.float32)
    w2 = (0.5 * q.standard_normal((5, 3))).astype(np.float32)
    b2 = (0.1 * q.standard_normal(3)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["z0"]),
        helper.make_node("Add", ["z0", "B1"], ["z1"]),
        helper.make_node("Relu", ["z1"], ["h"]),
        helper.make_node("MatMul", ["h", "W2"], ["z2"]),
        helper.make_node("Add", ["z2", "B2"], ["z3"]),
        helper.make_node("Softmax", ["z3"], ["p"], axis=-1),
        helper.make_node("Log", ["p"], ["logp"]),
        helper.make_node("Mul", ["logp", "t"], ["tl"]),
        helper.make_node("ReduceMean", ["tl"], ["m"], keepdims=0),
        helper.make_node("Neg", ["m"], ["loss"]),
        grad_node(["W1", "B1", "W2", "B2", "x", "t"], ["dW1", "dB1", "dW2", "dB2"],
                  ["W1", "B1", "W2", "B2"], "loss", zs=["x", "t"]),
    ]
    X, T = x.astype(np.float64), t.astype(np.float64)
    W1, B1, W2, B2 = (a.astype(np.float64) for a in (w1, b1, w2, b2))
    z1 = X @ W1 + B1
    h = np.maximum(z1, 0)
    p = softmax(h @ W2 + B2)
    loss = -np.mean(T * np.log(p))
    glogp = -T / T.size
    dz3 = glogp - p * glogp.sum(axis=-1, keepdims=True)
    dW2, dB2 = h.T @ dz3, dz3.sum(axis=0)
    dz1 = (dz3 @ W2.T) * (z1 > 0)
    dW1, dB1 = X.T @ dz1, dz1.sum(axis=0)
    f = np.float32
    write_case("gradient_mlp_softmax_ce", nodes, [("x", x), ("t", t)],
               [("loss", np.array(loss, f)), ("dW1", dW1.astype(f)), ("dB1", dB1.astype(f)),
                ("dW2", dW2.astype(f)), ("dB2", dB2.astype(f))],
               13, {DOM: 1}, initializers={"W1": w1, "B1": b1, "W2": w2, "B2": b2})


def broadcast_mul_div():
    """y = a * b / c with b [3,1] and c [4] broadcast against a [2,3,4]"""
    q = rng(8)
    a = q.standard_normal((2, 3, 4)).astype(np.float32)
    b = q.standard_normal((3, 1)).astype(np.float32)
    c = (1 + q.random(4)).astype(np.float32)
    nodes = [helper.make_node("Mul", ["a", "b"], ["ab"]),
             helper.make_node("Div", ["ab", "c"], ["y"]),
             grad_node(["a", "b", "c"], ["da", "db", "dc"], ["a", "b", "c"], "y")]
    A, B, C = (v.astype(np.float64) for v in (a, b, c))
    y = A * B / C
    da = np.broadcast_to(B / C, a.shape)
    db = (A / C).sum(axis=(0, 2))[:, None]
    dc = (-A * B / C ** 2).sum(axis=(0, 1))
    f = np.float32
    write_case("gradient_broadcast_mul_div", nodes, [("a", a), ("b", b), ("c", c)],
               [("y", y.astype(f)), ("da", da.astype(f)), ("db", db.astype(f)),
                ("dc", dc.astype(f))], 13, {DOM: 1})


def gemm_tanh_pow_double():
    """y = sum_j tanh(0.5 A^T B^T + 2 C)^3 (a [2] vector: seeded with ones)"""
    q = rng(9)
    a = 0.5 * q.standard_normal((3, 2))
    b = 0.5 * q.standard_normal((4, 3))
    c = 0.2 * q.standard_normal(4)
    nodes = [helper.make_node("Gemm", ["a", "b", "c"], ["g"], transA=1, transB=1, alpha=0.5, beta=2.0),
             helper.make_node("Tanh", ["g"], ["t"]),
             helper.make_node("Pow", ["t", "three"], ["p"]),
             helper.make_node("ReduceSum", ["p", "axes"], ["y"], keepdims=0),
             grad_node(["a", "b", "c"], ["da", "db", "dc"], ["a", "b", "c"], "y")]
    g = 0.5 * a.T @ b.T + 2 * c
    t = np.tanh(g)
    y = (t ** 3).sum(axis=1)
    dg = 3 * t ** 2 * (1 - t ** 2)
    da = (0.5 * dg @ b).T
    db = (0.5 * a @ dg).T
    dc = 2 * dg.sum(axis=0)
    write_case("gradient_gemm_tanh_pow_double", nodes, [("a", a), ("b", b), ("c", c)],
               [("y", y), ("da", da), ("db", db), ("dc", dc)], 13, {DOM: 1},
               initializers={"three": np.array(3.0), "axes": np.array([1], np.int64)})


def shape_ops():
    """y = W * Transpose(Reshape(Concat(a, b, axis=1), [4, 2]))"""
    q = rng(10)
    a = q.standard_normal((2, 3)).astype(np.float32)
    b = q.standard_normal((2, 1)).astype(np.float32)
    w = q.standard_normal((2, 4)).astype(np.float32)
    nodes = [helper.make_node("Concat", ["a", "b"], ["t"], axis=1),
             helper.make_node("Reshape", ["t", "shape"], ["r"]),
             helper.make_node("Transpose", ["r"], ["u"], perm=[1, 0]),
             helper.make_node("Mul", ["u", "w"], ["y"]),
             grad_node(["a", "b"], ["da", "db"], ["a", "b"], "y")]
    y = np.concatenate([a, b], axis=1).reshape(4, 2).T * w
    dt = w.T.reshape(2, 4)
    write_case("gradient_concat_reshape_transpose", nodes, [("a", a), ("b", b)],
               [("y", y), ("da", dt[:, :3].copy()), ("db", dt[:, 3:].copy())], 13, {DOM: 1},
               initializers={"shape": np.array([4, 2], np.int64), "w": w})


def at_other_point():
    """dy/dx of y = x * sigmoid(x), evaluated at the input x_at (y itself at x)"""
    q = rng(11)
    x = q.standard_normal(5).astype(np.float32)
    x_at = q.standard_normal(5).astype(np.float32)
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"]),
             helper.make_node("Mul", ["x", "s"], ["y"]),
             grad_node(["x_at"], ["dx"], ["x"], "y")]
    X, XA = x.astype(np.float64), x_at.astype(np.float64)
    y = X / (1 + np.exp(-X))
    s = 1 / (1 + np.exp(-XA))
    dx = s + XA * s * (1 - s)
    f = np.float32
    write_case("gradient_at_other_inputs", nodes, [("x", x), ("x_at", x_at)],
               [("y", y.astype(f)), ("dx", dx.astype(f))], 13, {DOM: 1})


def main():
    mlp()
    broadcast_mul_div()
    gemm_tanh_pow_double()
    shape_ops()
    at_other_point()


if __name__ == "__main__":
    main()
