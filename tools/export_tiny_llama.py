#!/usr/bin/python3
"""Export a tiny llama-style decoder to testdata/tiny_llama (ONNX test-case
layout: model.onnx + test_data_set_0 with PyTorch's outputs).

The module is written here after HF transformers' LlamaModel of the 4.3x
releases (what the TorchScript exporter of PyTorch 1.13 sees): RMSNorm with
the float32 Casts, rotary embeddings from cos/sin caches built as
cat(freqs, freqs) and gathered by position_ids, rotate_half with slices,
causal attention left as MatMul/Softmax, SwiGLU MLP. Weights are random and
seeded; 2 layers, hidden 32, 4 heads of 8, vocab 64, 8 tokens; static shapes.
It exercises the RMSNormalization and RotaryEmbedding fusions on a real
export.

    /usr/bin/python3 tools/export_tiny_llama.py [--out testdata]
"""
import argparse
import math
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

HIDDEN, HEADS, LAYERS, INTER, VOCAB, MAX_POS, SEQ = 32, 4, 2, 64, 64, 32, 8


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(1 + 0.1 * torch.randn(d))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.to(torch.float32)
        var = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(var + self.eps)
        return self.weight * x.to(dtype)


class Rotary(nn.Module):
    def __init__(self, dim, max_pos=MAX_POS, base=10000.0):
        super().__init__()
        inv = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        t = torch.arange(max_pos).float()
        freqs = torch.einsum("i,j->ij", t, inv)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos_cached", emb.cos()[None, None, :, :], persistent=False)
        self.register_buffer("sin_cached", emb.sin()[None, None, :, :], persistent=False)

    def forward(self, seq_len):
        return self.cos_cached[:, :, :seq_len, ...], self.sin_cached[:, :, :seq_len, ...]


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, position_ids):
    cos = cos.squeeze(1).squeeze(0)  # [seq, dim]
    sin = sin.squeeze(1).squeeze(0)
    cos = cos[position_ids].unsqueeze(1)  # [bs, 1, seq, dim]
    sin = sin[position_ids].unsqueeze(1)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.hd = HIDDEN // HEADS
        self.q_proj = nn.Linear(HIDDEN, HIDDEN, bias=False)
        self.k_proj = nn.Linear(HIDDEN, HIDDEN, bias=False)
        self.v_proj = nn.Linear(HIDDEN, HIDDEN, bias=False)
        self.o_proj = nn.Linear(HIDDEN, HIDDEN, bias=False)
        self.rotary = Rotary(self.hd)

    def forward(self, h, position_ids, mask):
        b, s, _ = h.shape
        q = self.q_proj(h).view(b, s, HEADS, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(b, s, HEADS, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(b, s, HEADS, self.hd).transpose(1, 2)
        cos, sin = self.rotary(s)
        q, k = apply_rotary_pos_emb(q, k, cos, sin, position_ids)
        w = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.hd) + mask
        w = nn.functional.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        o = torch.matmul(w, v).transpose(1, 2).reshape(b, s, HIDDEN)
        return self.o_proj(o)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate_proj = nn.Linear(HIDDEN, INTER, bias=False)
        self.up_proj = nn.Linear(HIDDEN, INTER, bias=False)
        self.down_proj = nn.Linear(INTER, HIDDEN, bias=False)

    def forward(self, x):
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_layernorm = RMSNorm(HIDDEN)
        self.self_attn = Attention()
        self.post_attention_layernorm = RMSNorm(HIDDEN)
        self.mlp = MLP()

    def forward(self, h, position_ids, mask):
        h = h + self.self_attn(self.input_layernorm(h), position_ids, mask)
        return h + self.mlp(self.post_attention_layernorm(h))


class TinyLlama(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, HIDDEN)
        self.layers = nn.ModuleList([Block() for _ in range(LAYERS)])
        self.norm = RMSNorm(HIDDEN)
        self.lm_head = nn.Linear(HIDDEN, VOCAB, bias=False)
        m = torch.full((SEQ, SEQ), torch.finfo(torch.float32).min).triu(1)
        self.register_buffer("mask", m[None, None], persistent=False)

    def forward(self, input_ids, position_ids):
        h = self.embed_tokens(input_ids)
        for layer in self.layers:
            h = layer(h, position_ids, self.mask)
        return self.lm_head(self.norm(h))


def save_tensor(arr, name, path):
    with open(path, "wb") as fp:
        fp.write(numpy_helper.from_array(arr, name).SerializeToString())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata"))
    args = ap.parse_args()
    torch.manual_seed(1234)
    torch.set_num_threads(1)
    model = TinyLlama().eval()
    input_ids = torch.randint(0, VOCAB, (1, SEQ), dtype=torch.int64)
    position_ids = torch.arange(SEQ, dtype=torch.int64)[None]
    with torch.no_grad():
        ref = model(input_ids, position_ids).numpy()
    cdir = os.path.join(args.out, "tiny_llama")
    ddir = os.path.join(cdir, "test_data_set_0")
    os.makedirs(ddir, exist_ok=True)
    for old in os.listdir(ddir):
        os.remove(os.path.join(ddir, old))
    mpath = os.path.join(cdir, "model.onnx")
    torch.onnx.export(model, (input_ids, position_ids), mpath, export_params=True, opset_version=17,
                      do_constant_folding=True, input_names=["input_ids", "position_ids"],
                      output_names=["logits"])
    onnx.checker.check_model(mpath)
    save_tensor(input_ids.numpy(), "input_ids", os.path.join(ddir, "input_0.pb"))
    save_tensor(position_ids.numpy(), "position_ids", os.path.join(ddir, "input_1.pb"))
    save_tensor(ref, "logits", os.path.join(ddir, "output_0.pb"))
    m = onnx.load(mpath)
    hist = {}
    for n in m.graph.node:
        hist[n.op_type] = hist.get(n.op_type, 0) + 1
    print("tiny_llama: %d bytes, %d nodes: %s" % (os.path.getsize(mpath), len(m.graph.node),
                                                  " ".join("%s:%d" % kv for kv in sorted(hist.items()))))
    print("logits %s mean %.4f std %.4f" % (list(ref.shape), ref.mean(), ref.std()))


if __name__ == "__main__":
    main()
