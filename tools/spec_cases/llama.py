"""Spec cases for RMSNormalization and RotaryEmbedding (ai.onnx opset 23).

Expected outputs come from numpy straight from the operators' definitions
(the opset-23 function bodies): RMSNormalization casts X to stash_type,
takes x / sqrt(mean(x^2 over [axis, rank)) + epsilon), casts back to X's
type and multiplies by scale; RotaryEmbedding rotates the first
rotary_embedding_dim values of each head as halves or interleaved pairs by
the cos/sin rows picked by position_ids (or the 3-D caches as they are).

    /usr/bin/python3 tools/spec_cases/llama.py
"""
import numpy as np
from onnx import helper

from common import rng, write_case

OPSET = 23


def rms_ref(x, scale, axis=-1, eps=1e-5, stash=np.float32):
    axis = axis % x.ndim
    xu = x.astype(stash)
    ms = np.mean(xu * xu, axis=tuple(range(axis, x.ndim)), keepdims=True)
    norm = (xu / np.sqrt(ms + stash(np.float32(eps)))).astype(x.dtype)
    return (norm * scale).astype(scale.dtype)


def rms_cases():
    r = rng(1)
    x = r.standard_normal((2, 3, 8)).astype(np.float32)
    s = r.standard_normal((8,)).astype(np.float32)
    write_case("rms_norm_default", helper.make_node("RMSNormalization", ["X", "scale"], ["Y"]),
               [("X", x), ("scale", s)], [("Y", rms_ref(x, s))], OPSET)

    s2 = r.standard_normal((3, 8)).astype(np.float32)
    node = helper.make_node("RMSNormalization", ["X", "scale"], ["Y"], axis=1, epsilon=1e-3)
    write_case("rms_norm_axis1", node, [("X", x), ("scale", s2)],
               [("Y", rms_ref(x, s2, axis=1, eps=1e-3))], OPSET)

    s3 = r.standard_normal((2, 1, 8)).astype(np.float32)  # varies along a leading dim
    node = helper.make_node("RMSNormalization", ["X", "scale"], ["Y"], axis=-1)
    write_case("rms_norm_scale_bcast", node, [("X", x), ("scale", s3)],
               [("Y", rms_ref(x, s3))], OPSET)

    xd = r.standard_normal((4, 5)).astype(np.float64)
    sd = r.standard_normal((5,)).astype(np.float64)
    node = helper.make_node("RMSNormalization", ["X", "scale"], ["Y"], stash_type=11)
    write_case("rms_norm_double", node, [("X", xd), ("scale", sd)],
               [("Y", rms_ref(xd, sd, stash=np.float64))], OPSET)

    xh = r.standard_normal((3, 16)).astype(np.float16)
    sh = r.standard_normal((16,)).astype(np.float16)
    node = helper.make_node("RMSNormalization", ["X", "scale"], ["Y"])
    write_case("rms_norm_fp16", node, [("X", xh), ("scale", sh)], [("Y", rms_ref(xh, sh))], OPSET)


def rot_ref(x, cos, sin, pos=None, interleaved=0, rd=0, num_heads=0):
    shape = x.shape
    if x.ndim == 4:
        x = np.transpose(x, (0, 2, 1, 3))
    else:
        x = x.reshape(x.shape[0], x.shape[1], num_heads, -1)
    d = x.shape[3]
    rd = rd or d
    if pos is not None:
        cos, sin = cos[pos], sin[pos]
    cos = np.expand_dims(cos[..., :rd // 2], 2)
    sin = np.expand_dims(sin[..., :rd // 2], 2)
    xr, xn = x[..., :rd], x[..., rd:]
    if interleaved:
        x1, x2 = xr[..., 0::2], xr[..., 1::2]
    else:
        x1, x2 = xr[..., :rd // 2], xr[..., rd // 2:]
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    if interleaved:
        xr = np.stack((real, imag), axis=-1).reshape(xr.shape)
    else:
        xr = np.concatenate((real, imag), axis=-1)
    y = np.concatenate((xr, xn), axis=-1)
    if len(shape) == 4:
        return np.transpose(y, (0, 2, 1, 3)).astype(np.float32)
    return y.reshape(shape).astype(np.float32)


def rot_cases():
    r = rng(2)
    b, h, s, d, p = 2, 3, 4, 8, 10
    x4 = r.standard_normal((b, h, s, d)).astype(np.float32)
    ang = r.uniform(0, 6.28, (p, d // 2))
    cos, sin = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
    pos = r.integers(0, p, (b, s)).astype(np.int64)
    ins = ["X", "cos_cache", "sin_cache", "position_ids"]
    for il in (0, 1):
        node = helper.make_node("RotaryEmbedding", ins, ["Y"], interleaved=il)
        write_case("rotary_4d_pos%s" % ("_interleaved" if il else ""), node,
                   [("X", x4), ("cos_cache", cos), ("sin_cache", sin), ("position_ids", pos)],
                   [("Y", rot_ref(x4, cos, sin, pos, interleaved=il))], OPSET)

    x3 = r.standard_normal((b, s, h * d)).astype(np.float32)
    node = helper.make_node("RotaryEmbedding", ins, ["Y"], num_heads=h)
    write_case("rotary_3d_num_heads", node,
               [("X", x3), ("cos_cache", cos), ("sin_cache", sin), ("position_ids", pos)],
               [("Y", rot_ref(x3, cos, sin, pos, num_heads=h))], OPSET)

    rd = 4
    cp, sp = cos[:, :rd // 2].copy(), sin[:, :rd // 2].copy()
    for il in (0, 1):
        node = helper.make_node("RotaryEmbedding", ins, ["Y"], rotary_embedding_dim=rd, interleaved=il)
        write_case("rotary_partial%s" % ("_interleaved" if il else ""), node,
                   [("X", x4), ("cos_cache", cp), ("sin_cache", sp), ("position_ids", pos)],
                   [("Y", rot_ref(x4, cp, sp, pos, interleaved=il, rd=rd))], OPSET)

    ang3 = r.uniform(0, 6.28, (b, s, d // 2))
    c3, s3 = np.cos(ang3).astype(np.float32), np.sin(ang3).astype(np.float32)
    node = helper.make_node("RotaryEmbedding", ins[:3], ["Y"])
    write_case("rotary_no_pos", node, [("X", x4), ("cos_cache", c3), ("sin_cache", s3)],
               [("Y", rot_ref(x4, c3, s3))], OPSET)


if __name__ == "__main__":
    rms_cases()
    rot_cases()
