#!/usr/bin/python3
"""Export small PyTorch models with control flow (torch.jit.script) to ONNX
test cases for onnx-run: Loop, If and Loop-carried values as PyTorch 1.13
exports them. Writes the backend test-case layout under OUT/<case>/ with
PyTorch's outputs as the expected ones (tests/models.cmake runs every
testdata/<case>/ at 1 and 2 threads).

    /usr/bin/python3 tools/export_control_models.py --out testdata

Kept apart from tools/export_models.py: these models need scripting, and
that script's NumPy reference interpreter has no control flow.
"""
import argparse
import os
import shutil

import numpy as np
import torch
import torch.nn as nn
from onnx import numpy_helper
import onnx


class GreedyDecoder(nn.Module):
    """Greedy decoding: a scripted for-loop (ONNX Loop) whose body embeds the
    last token, updates a tanh-RNN state, picks the argmax and leaves early
    (an If on the token, then `break`: the Loop's condition) at EOS."""

    def __init__(self, vocab: int = 16, hidden: int = 12, max_len: int = 8, eos: int = 0):
        super().__init__()
        self.emb = nn.Embedding(vocab, hidden)
        self.cell = nn.Linear(2 * hidden, hidden)
        self.head = nn.Linear(hidden, vocab)
        self.max_len = max_len
        self.eos = eos

    def forward(self, h0: torch.Tensor, bos: torch.Tensor):
        h = h0
        tok = bos
        toks = torch.zeros([0], dtype=torch.long)
        scores = torch.zeros([0], dtype=torch.float)
        for _ in range(self.max_len):
            e = self.emb(tok)
            h = torch.tanh(self.cell(torch.cat([e, h], 1)))
            logits = self.head(h)
            best = torch.max(logits, 1)
            tok = best[1]
            toks = torch.cat([toks, tok])
            scores = torch.cat([scores, best[0]])
            if bool(tok[0] == self.eos):
                break
        return toks, scores, h


class DataDependentIf(nn.Module):
    """A forward whose branch depends on the data: If with outputs of
    different shapes in the two branches."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 4)
        self.b = nn.Linear(6, 8)

    def forward(self, x: torch.Tensor):
        if bool(x.sum() > 0):
            y = torch.relu(self.a(x))
        else:
            y = torch.sigmoid(self.b(x)) * 2.0
        return y


class EmbeddingBagMean(nn.Module):
    """nn.EmbeddingBag with offsets: PyTorch exports the bags as a Loop over
    the offsets (Slice, Gather and ReduceMean in the body, a scan output)."""

    def __init__(self):
        super().__init__()
        self.eb = nn.EmbeddingBag(20, 6, mode="mean")
        self.proj = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor, offsets: torch.Tensor):
        return self.proj(self.eb(x, offsets))


def save(arr, name, path):
    t = numpy_helper.from_array(arr, name)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def export(name, module, inputs, in_names, out_names, opset, outdir, data_sets, script=True,
           dynamic_axes=None):
    torch.manual_seed(0)
    scripted = torch.jit.script(module) if script else module
    d = os.path.join(outdir, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    path = os.path.join(d, "model.onnx")
    torch.onnx.export(scripted, inputs, path, input_names=in_names, output_names=out_names,
                      opset_version=opset, dynamic_axes=dynamic_axes)
    onnx.checker.check_model(onnx.load(path))
    for k, ins in enumerate(data_sets):
        sd = os.path.join(d, "test_data_set_%d" % k)
        os.makedirs(sd)
        with torch.no_grad():
            outs = scripted(*ins)
        if not isinstance(outs, tuple):
            outs = (outs,)
        for i, (n, t) in enumerate(zip(in_names, ins)):
            save(t.numpy(), n, os.path.join(sd, "input_%d.pb" % i))
        for i, (n, t) in enumerate(zip(out_names, outs)):
            save(t.detach().numpy(), n, os.path.join(sd, "output_%d.pb" % i))
    print("wrote", d)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata")
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(1)
    dec = GreedyDecoder().eval()
    g = torch.Generator().manual_seed(2)
    sets = []
    for k in range(3):
        h0 = torch.randn(1, 12, generator=g)
        sets.append((h0, torch.tensor([k + 1], dtype=torch.long)))
    export("tiny_greedy_decoder_loop", dec, sets[0], ["h0", "bos"], ["tokens", "scores", "h"],
           13, a.out, sets)
    torch.manual_seed(3)
    m = DataDependentIf().eval()
    x = torch.randn(2, 6, generator=g)
    export("tiny_data_dependent_if", m, (x,), ["x"], ["y"], 16, a.out,
           [(x.abs(),), (-x.abs(),)])
    torch.manual_seed(4)
    eb = EmbeddingBagMean().eval()
    ids = torch.tensor([1, 2, 4, 5, 4, 3, 2, 9, 19, 0], dtype=torch.long)
    off = torch.tensor([0, 3, 4, 8], dtype=torch.long)
    ids2 = torch.tensor([7, 7, 1, 0, 13, 2], dtype=torch.long)
    off2 = torch.tensor([0, 1, 5], dtype=torch.long)
    export("tiny_embedding_bag_loop", eb, (ids, off), ["ids", "offsets"], ["y"], 13, a.out,
           [(ids, off), (ids2, off2)], script=False,
           dynamic_axes={"ids": {0: "n"}, "offsets": {0: "bags"}, "y": {0: "bags"}})


if __name__ == "__main__":
    main()
