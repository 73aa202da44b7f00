"""LayerNormalization-17 cases the ONNX 1.12 suite lacks (it has float32 X
with B and every output only): double and float16 X (statistics in float32,
stash_type 1), no B, Scale/B of lower rank than the normalized shape, Y
alone. (stash_type is float or bfloat16 by the type constraint U; numpy has
no bfloat16, so no case for 16.)

Expected outputs follow the specification's function body: X is cast to
the stash type, Mean = ReduceMean(X), D = X - Mean, Var = ReduceMean(D*D),
InvStdDev = 1/sqrt(Var + epsilon), Normalized = D * InvStdDev cast back to
X's type, Y = Normalized * Scale + B in X's type (numpy broadcasting).
"""
import numpy as np
from onnx import helper

from common import rng, write_case

STASH = {1: np.float32}


def layernorm(x, scale, b, axis, eps, stash):
    u = STASH[stash]
    xu = x.astype(u)
    axis = axis + x.ndim if axis < 0 else axis
    axes = tuple(range(axis, x.ndim))  # empty for axis = rank: each element alone
    mean = xu.mean(axis=axes, keepdims=True, dtype=u).astype(u)
    d = xu - mean
    var = (d * d).mean(axis=axes, keepdims=True, dtype=u).astype(u)
    inv = (u(1) / np.sqrt(var + u(eps))).astype(u)
    norm = (d * inv).astype(x.dtype)
    y = norm * scale
    if b is not None:
        y = y + b
    return y.astype(x.dtype), mean, inv


def case(name, x, scale, b, axis=-1, eps=1e-5, stash=None, outputs=3):
    attrs = {"axis": axis, "epsilon": eps}
    if stash is not None:
        attrs["stash_type"] = stash
    y, mean, inv = layernorm(x, scale, b, axis, eps, stash or 1)
    ins = [("X", x), ("Scale", scale)] + ([("B", b)] if b is not None else [])
    outs = [("Y", y), ("Mean", mean), ("InvStdDev", inv)][:outputs]
    node = helper.make_node("LayerNormalization", [n for n, _ in ins], [n for n, _ in outs],
                            **attrs)
    write_case(name, node, ins, outs, 17)


def main():
    r = rng(17)
    x = r.standard_normal((2, 3, 5)) * 2 + 1
    case("layernorm_double_axis1", x, r.standard_normal((3, 5)), r.standard_normal((3, 5)),
         axis=1)
    xf = (r.standard_normal((3, 4, 6)) * 3 + 2).astype(np.float32)
    case("layernorm_float_no_bias_axis_neg2", xf,
         r.standard_normal((4, 6)).astype(np.float32), None, axis=-2)
    # Scale over the last normalized axis only, B over both ([6] and [4, 1])
    case("layernorm_float_scale_broadcast", xf, r.standard_normal(6).astype(np.float32),
         r.standard_normal((4, 1)).astype(np.float32), axis=1, eps=1e-3)
    case("layernorm_float_y_only", xf, r.standard_normal(6).astype(np.float32),
         r.standard_normal(6).astype(np.float32), outputs=1)
    # axis = rank (the schema allows [-r, r]): Y = B, Mean = X, InvStdDev = 1/sqrt(eps)
    case("layernorm_float_axis_rank", xf[:2, :2], np.array(1.5, np.float32),
         np.array(0.25, np.float32), axis=3, eps=1e-2)
    xh = (r.standard_normal((4, 8)) * 2 + 1).astype(np.float16)
    case("layernorm_float16", xh, r.standard_normal(8).astype(np.float16),
         r.standard_normal(8).astype(np.float16), axis=-1)
    case("layernorm_float16_axis0_no_bias", xh,
         (r.standard_normal((4, 8)) * 0.5 + 1).astype(np.float16), None, axis=0)


if __name__ == "__main__":
    main()
