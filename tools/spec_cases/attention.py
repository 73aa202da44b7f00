"""Spec cases for Attention (ai.onnx opsets 23 and 24).

Expected outputs come from a direct numpy transcription of the operator's
specification (function body and reference semantics):

    scores = (Q * sqrt(scale)) @ (K * sqrt(scale))^T    scale default 1/sqrt(head_size)
    scores = softcap * tanh(scores / softcap)           if softcap > 0 (before the mask)
    scores = scores + bias                               mask / causal / padding, -inf = masked
    P = softmax(scores, -1);  Y = P @ V
    qk_matmul_output by qk_matmul_output_mode: 0 matmul, 1 softcap, 2 + bias, 3 softmax

K/V heads are repeated for grouped-query attention (query head h uses kv head
h // (q_heads / kv_heads)); 3-D inputs are [B, S, heads * size]; past_key /
past_value are concatenated before the new keys; causal keeps keys
j <= i + past_length; opset 24's nonpad_kv_seqlen masks keys from
nonpad_kv_seqlen[b] on, and its attn_mask may be shorter than the keys
(padded with masked keys).

Run: /usr/bin/python3 tools/spec_cases/attention.py
"""
import numpy as np
from onnx import helper

from common import rng, write_case


def to4(x, heads):
    b, s, hid = x.shape
    return x.reshape(b, s, heads, hid // heads).transpose(0, 2, 1, 3)


def attention(Q, K, V, mask=None, past_k=None, past_v=None, nonpad=None, scale=None,
              causal=0, qh=None, kvh=None, softcap=0.0, mode=0, short_mask_ok=False):
    three = Q.ndim == 3
    if three:
        Q, K, V = to4(Q, qh), to4(K, kvh), to4(V, kvh)
    dt = Q.dtype
    Qd, Kd, Vd = Q.astype(np.float64), K.astype(np.float64), V.astype(np.float64)
    if scale is None:
        scale = 1.0 / np.sqrt(Q.shape[3])
    P = 0
    if past_k is not None:
        P = past_k.shape[2]
        Kd = np.concatenate([past_k.astype(np.float64), Kd], axis=2)
        Vd = np.concatenate([past_v.astype(np.float64), Vd], axis=2)
    present_k = np.concatenate([past_k, K], axis=2) if past_k is not None else K
    present_v = np.concatenate([past_v, V], axis=2) if past_v is not None else V
    B, Hq, Sq, _ = Q.shape
    T = Kd.shape[2]
    g = Hq // Kd.shape[1]
    Kd = np.repeat(Kd, g, axis=1)
    Vd = np.repeat(Vd, g, axis=1)
    bias = np.zeros((B, Hq, Sq, T))
    if mask is not None:
        m = mask
        if m.dtype == np.bool_:
            m = np.where(m, 0.0, -np.inf)
        m = m.astype(np.float64)
        if m.shape[-1] < T:
            assert short_mask_ok
            pad = [(0, 0)] * (m.ndim - 1) + [(0, T - m.shape[-1])]
            m = np.pad(m, pad, constant_values=-np.inf)
        bias = bias + m
    if causal:
        i = np.arange(Sq)[:, None]
        j = np.arange(T)[None, :]
        bias = bias + np.where(j <= i + P, 0.0, -np.inf)
    if nonpad is not None:
        j = np.arange(T)[None, :]
        bias = bias + np.where(j < nonpad[:, None], 0.0, -np.inf)[:, None, None, :]
    s0 = np.matmul(Qd * np.sqrt(scale), np.swapaxes(Kd * np.sqrt(scale), 2, 3))
    s1 = softcap * np.tanh(s0 / softcap) if softcap > 0 else s0
    s2 = s1 + bias
    with np.errstate(invalid="ignore"):
        mx = np.max(s2, axis=-1, keepdims=True)
        e = np.exp(s2 - mx)
        p = e / np.sum(e, axis=-1, keepdims=True)
    Y = np.matmul(p, Vd)
    if three:
        Y = Y.transpose(0, 2, 1, 3).reshape(B, Sq, -1)
    qk = [s0, s1, s2, p][mode]
    return Y.astype(dt), present_k, present_v, qk.astype(dt)


def node(inputs, outputs, **attrs):
    return helper.make_node("Attention", inputs, outputs, **attrs)


def f32(r, *shape):
    return r.standard_normal(shape).astype(np.float32)


def main():
    r = rng(23)

    # 4-D, plain
    Q, K, V = f32(r, 2, 3, 4, 8), f32(r, 2, 3, 6, 8), f32(r, 2, 3, 6, 8)
    Y = attention(Q, K, V)[0]
    write_case("attention_4d_basic", node(["Q", "K", "V"], ["Y"]),
               [("Q", Q), ("K", K), ("V", V)], [("Y", Y)], 23)

    # 3-D, grouped-query (6 q heads, 2 kv heads), scale, V head size 5
    Q, K, V = f32(r, 2, 4, 6 * 4), f32(r, 2, 7, 2 * 4), f32(r, 2, 7, 2 * 5)
    Y = attention(Q, K, V, scale=0.3, qh=6, kvh=2)[0]
    write_case("attention_3d_gqa_scale",
               node(["Q", "K", "V"], ["Y"], q_num_heads=6, kv_num_heads=2, scale=0.3),
               [("Q", Q), ("K", K), ("V", V)], [("Y", Y)], 23)

    # 3-D, additive float mask [B, 1, 1, T] (BERT form), default scale
    Q, K, V = f32(r, 2, 5, 4 * 8), f32(r, 2, 5, 4 * 8), f32(r, 2, 5, 4 * 8)
    M = np.zeros((2, 1, 1, 5), np.float32)
    M[1, 0, 0, 3:] = -10000.0
    Y = attention(Q, K, V, mask=M, qh=4, kvh=4)[0]
    write_case("attention_3d_mask_bert",
               node(["Q", "K", "V", "M"], ["Y"], q_num_heads=4, kv_num_heads=4),
               [("Q", Q), ("K", K), ("V", V), ("M", M)], [("Y", Y)], 23)

    # 4-D, bool mask [Sq, T] and is_causal together
    Q, K, V = f32(r, 1, 2, 5, 4), f32(r, 1, 2, 5, 4), f32(r, 1, 2, 5, 4)
    M = r.random((5, 5)) > 0.3
    M[:, 0] = True
    Y = attention(Q, K, V, mask=M, causal=1)[0]
    write_case("attention_4d_bool_mask_causal",
               node(["Q", "K", "V", "M"], ["Y"], is_causal=1),
               [("Q", Q), ("K", K), ("V", V), ("M", M)], [("Y", Y)], 23)

    # causal with S_q > S_kv (no past): top-left alignment
    Q, K, V = f32(r, 1, 2, 6, 4), f32(r, 1, 2, 3, 4), f32(r, 1, 2, 3, 4)
    Y = attention(Q, K, V, causal=1)[0]
    write_case("attention_4d_causal_sq_gt_skv", node(["Q", "K", "V"], ["Y"], is_causal=1),
               [("Q", Q), ("K", K), ("V", V)], [("Y", Y)], 23)

    # causal with a past: 3 new queries, 4 past keys, present outputs, GQA 4/2
    Q, K, V = f32(r, 1, 4, 3, 4), f32(r, 1, 2, 3, 4), f32(r, 1, 2, 3, 6)
    PK, PV = f32(r, 1, 2, 4, 4), f32(r, 1, 2, 4, 6)
    Y, pk, pv, _ = attention(Q, K, V, past_k=PK, past_v=PV, causal=1)
    write_case("attention_4d_causal_past_gqa",
               node(["Q", "K", "V", "", "PK", "PV"], ["Y", "present_key", "present_value"],
                    is_causal=1),
               [("Q", Q), ("K", K), ("V", V), ("PK", PK), ("PV", PV)],
               [("Y", Y), ("present_key", pk), ("present_value", pv)], 23)

    # 3-D inputs with a past (present is 4-D), float mask [B, Hq, Sq, T]
    Q, K, V = f32(r, 2, 2, 2 * 4), f32(r, 2, 2, 2 * 4), f32(r, 2, 2, 2 * 4)
    PK, PV = f32(r, 2, 2, 3, 4), f32(r, 2, 2, 3, 4)
    M = f32(r, 2, 2, 2, 5)
    Y, pk, pv, _ = attention(Q, K, V, mask=M, past_k=PK, past_v=PV, qh=2, kvh=2)
    write_case("attention_3d_past_mask4d",
               node(["Q", "K", "V", "M", "PK", "PV"], ["Y", "present_key", "present_value"],
                    q_num_heads=2, kv_num_heads=2),
               [("Q", Q), ("K", K), ("V", V), ("M", M), ("PK", PK), ("PV", PV)],
               [("Y", Y), ("present_key", pk), ("present_value", pv)], 23)

    # softcap and every qk_matmul_output_mode
    Q, K, V = f32(r, 1, 2, 3, 4) * 3, f32(r, 1, 2, 4, 4), f32(r, 1, 2, 4, 4)
    M = f32(r, 3, 4)
    for mode in range(4):
        Y, _, _, qk = attention(Q, K, V, mask=M, softcap=1.5, mode=mode)
        write_case("attention_softcap_qk_mode%d" % mode,
                   node(["Q", "K", "V", "M"], ["Y", "", "", "qk"], softcap=1.5,
                        qk_matmul_output_mode=mode),
                   [("Q", Q), ("K", K), ("V", V), ("M", M)], [("Y", Y), ("qk", qk)], 23)

    # opset 24: nonpad_kv_seqlen and a mask shorter than the keys
    Q, K, V = f32(r, 2, 2, 3, 4), f32(r, 2, 2, 8, 4), f32(r, 2, 2, 8, 4)
    M = f32(r, 2, 1, 3, 6)
    NP = np.array([8, 4], np.int64)
    Y = attention(Q, K, V, mask=M, nonpad=NP, short_mask_ok=True)[0]
    write_case("attention_op24_nonpad_short_mask",
               node(["Q", "K", "V", "M", "", "", "NP"], ["Y"]),
               [("Q", Q), ("K", K), ("V", V), ("M", M), ("NP", NP)], [("Y", Y)], 24)

    # float16
    Q, K, V = (f32(r, 1, 2, 3, 4).astype(np.float16), f32(r, 1, 2, 5, 4).astype(np.float16),
               f32(r, 1, 2, 5, 4).astype(np.float16))
    Y = attention(Q, K, V, causal=1)[0]
    write_case("attention_4d_float16_causal", node(["Q", "K", "V"], ["Y"], is_causal=1),
               [("Q", Q), ("K", K), ("V", V)], [("Y", Y)], 23)


if __name__ == "__main__":
    main()
