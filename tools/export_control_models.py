#!/usr/bin/python3
"""Export small PyTorch models with control flow (torch.jit.script) to ONNX
test cases for onnx-run: Loop, If and Loop-carried values as PyTorch 1.13
exports them. Writes the backend test-case layout under OUT/<case>/ with
PyTorch's outputs as the expected ones (tests/models.cmake runs every
testdata/<case>/ at 1 and 2 threads).

    /usr/bin/python3 tools/export_control_models.py --out testdata
    /usr/bin/python3 tools/export_control_models.py --size full --out models

With --size full only the larger Scan GRU is written (tools/check-models
runs it); the tiny cases are for ctest.

Kept apart from tools/export_models.py: these models need scripting, and
that script's NumPy reference interpreter has no control flow.
"""
import argparse
import os
import shutil

import numpy as np
import torch
import torch.nn as nn
from onnx import helper, numpy_helper, TensorProto
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


def scan_gru_model(gru: nn.GRU, opset: int = 16) -> onnx.ModelProto:
    """A bidirectional, single-layer nn.GRU written as two ONNX Scans.

    PyTorch 1.13 has no Scan symbolic (its RNNs export as GRU/LSTM and its
    loops as Loop), so this graph is built by hand from the module's own
    weights; the expected outputs are still PyTorch's (nn.GRU), so the case
    checks Scan (both directions, a loop-carried state, scan outputs, outer
    scope weights read inside the body) against a real implementation.

    X [T, B, I], h0 [2, B, H] -> Y [T, B, 2H] (forward | reverse), hn [2, B, H].
    """
    H = gru.hidden_size
    inits = []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))
        return name

    def body(d):
        """h' = (1 - z) * n + z * h with r, z, n from x W_ih^T + b_ih and h W_hh^T + b_hh;
        the weights are outer-scope values (initializers of the main graph)."""
        wi, wh, bi, bh = ("W_ih_%d" % d, "W_hh_%d" % d, "b_ih_%d" % d, "b_hh_%d" % d)
        n = []

        def node(op, ins, outs, **kw):
            n.append(helper.make_node(op, ins, outs, **kw))

        node("MatMul", ["x_t", wi + "_T"], ["gi0"])
        node("Add", ["gi0", bi], ["gi"])
        node("MatMul", ["h", wh + "_T"], ["gh0"])
        node("Add", ["gh0", bh], ["gh"])
        node("Split", ["gi", "split3"], ["gi_r", "gi_z", "gi_n"], axis=1)
        node("Split", ["gh", "split3"], ["gh_r", "gh_z", "gh_n"], axis=1)
        node("Add", ["gi_r", "gh_r"], ["r0"])
        node("Sigmoid", ["r0"], ["r"])
        node("Add", ["gi_z", "gh_z"], ["z0"])
        node("Sigmoid", ["z0"], ["z"])
        node("Mul", ["r", "gh_n"], ["rn"])
        node("Add", ["gi_n", "rn"], ["n0"])
        node("Tanh", ["n0"], ["nn"])
        node("Sub", ["h", "nn"], ["hmn"])       # z*h + (1-z)*n = n + z*(h - n)
        node("Mul", ["z", "hmn"], ["zh"])
        node("Add", ["nn", "zh"], ["h_new"])
        node("Identity", ["h_new"], ["y_t"])
        f = TensorProto.FLOAT
        return helper.make_graph(
            n, "gru_body_%d" % d,
            [helper.make_tensor_value_info("h", f, ["B", H]),
             helper.make_tensor_value_info("x_t", f, ["B", gru.input_size])],
            [helper.make_tensor_value_info("h_new", f, ["B", H]),
             helper.make_tensor_value_info("y_t", f, ["B", H])])

    nodes = []
    inits.append(numpy_helper.from_array(np.array([H, H, H], np.int64), "split3"))
    for d, sfx in ((0, ""), (1, "_reverse")):
        w_ih = getattr(gru, "weight_ih_l0" + sfx).detach().numpy()
        w_hh = getattr(gru, "weight_hh_l0" + sfx).detach().numpy()
        const("W_ih_%d_T" % d, w_ih.T)
        const("W_hh_%d_T" % d, w_hh.T)
        const("b_ih_%d" % d, getattr(gru, "bias_ih_l0" + sfx).detach().numpy())
        const("b_hh_%d" % d, getattr(gru, "bias_hh_l0" + sfx).detach().numpy())
        nodes.append(helper.make_node("Gather", ["h0", "dir_%d" % d], ["h0_%d" % d], axis=0))
        inits.append(numpy_helper.from_array(np.array(d, np.int64), "dir_%d" % d))
        nodes.append(helper.make_node(
            "Scan", ["h0_%d" % d, "X"], ["hn_%d" % d, "Y_%d" % d], body=body(d),
            num_scan_inputs=1, scan_input_directions=[d], scan_output_directions=[d]))
        nodes.append(helper.make_node("Unsqueeze", ["hn_%d" % d, "axis0"], ["hn_%d_u" % d]))
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "axis0"))
    nodes.append(helper.make_node("Concat", ["Y_0", "Y_1"], ["Y"], axis=2))
    nodes.append(helper.make_node("Concat", ["hn_0_u", "hn_1_u"], ["hn"], axis=0))
    f = TensorProto.FLOAT
    g = helper.make_graph(
        nodes, "scan_gru",
        [helper.make_tensor_value_info("X", f, ["T", "B", gru.input_size]),
         helper.make_tensor_value_info("h0", f, [2, "B", H])],
        [helper.make_tensor_value_info("Y", f, ["T", "B", 2 * H]),
         helper.make_tensor_value_info("hn", f, [2, "B", H])],
        initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="onnx-run tools/export_control_models.py")
    onnx.checker.check_model(m, full_check=True)
    return m


def export_scan_gru(name, size, outdir, opset):
    """Write the Scan GRU case with nn.GRU's outputs (two data sets, the
    second of another length and batch: T and B are dynamic)."""
    dims = dict(tiny=(5, 7, [(6, 2), (3, 1)]), full=(64, 256, [(96, 8), (40, 3)]))[size]
    i_sz, h_sz, shapes = dims
    torch.manual_seed(5)
    gru = nn.GRU(i_sz, h_sz, bidirectional=True).eval()
    d = os.path.join(outdir, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    onnx.save(scan_gru_model(gru, opset), os.path.join(d, "model.onnx"))
    g = torch.Generator().manual_seed(6)
    for k, (t, b) in enumerate(shapes):
        x = torch.randn(t, b, i_sz, generator=g)
        h0 = torch.randn(2, b, h_sz, generator=g) * 0.5
        with torch.no_grad():
            y, hn = gru(x, h0)
        sd = os.path.join(d, "test_data_set_%d" % k)
        os.makedirs(sd)
        save(x.numpy(), "X", os.path.join(sd, "input_0.pb"))
        save(h0.numpy(), "h0", os.path.join(sd, "input_1.pb"))
        save(y.numpy(), "Y", os.path.join(sd, "output_0.pb"))
        save(hn.numpy(), "hn", os.path.join(sd, "output_1.pb"))
    print("wrote", d)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata")
    ap.add_argument("--size", choices=["tiny", "full"], default="tiny")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.size == "full":
        export_scan_gru("scan_gru", "full", a.out, 16)
        return
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
    export_scan_gru("tiny_scan_gru", "tiny", a.out, 16)


if __name__ == "__main__":
    main()
