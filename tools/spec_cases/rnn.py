"""RNN / GRU / LSTM cases beyond the ONNX 1.12 suite (which has 12 forward,
float32, default-activation cases): reverse and bidirectional, layout 1
(opset 14+), per-batch sequence_lens (also bidirectional and layout 1),
peepholes, clip, input_forget, GRU linear_before_reset 0 and 1, every
activation function with activation_alpha / activation_beta, initial states,
omitted and present outputs, float16 and double, bfloat16 at opset 22, and
each opset form (7, 14, 22). W and R are initializers in some cases so the
packed-weight path runs too.

Expected outputs come from a NumPy float64 loop written from the operator
equations of the specification (one batch entry and one time step at a
time, nothing shared with onnx-run), rounded once to the output type:

  RNN:  Ht = f(Xt Wi^T + Ht-1 Ri^T + Wbi + Rbi)
  GRU:  zt = f(Xt Wz^T + Ht-1 Rz^T + Wbz + Rbz)
        rt = f(Xt Wr^T + Ht-1 Rr^T + Wbr + Rbr)
        ht = g(Xt Wh^T + (rt . Ht-1) Rh^T + Rbh + Wbh)        lbr = 0
        ht = g(Xt Wh^T + rt . (Ht-1 Rh^T + Rbh) + Wbh)        lbr = 1
        Ht = (1 - zt) . ht + zt . Ht-1
  LSTM: it = f(Xt Wi^T + Ht-1 Ri^T + Pi . Ct-1 + Wbi + Rbi)
        ft = f(Xt Wf^T + Ht-1 Rf^T + Pf . Ct-1 + Wbf + Rbf)   (1 - it with input_forget)
        ct = g(Xt Wc^T + Ht-1 Rc^T + Wbc + Rbc)
        Ct = ft . Ct-1 + it . ct
        ot = f(Xt Wo^T + Ht-1 Ro^T + Po . Ct + Wbo + Rbo)
        Ht = ot . h(Ct)

clip bounds the input of every activation (each gate's, and C's before h;
C itself stays unclipped); activation_alpha /
beta are consumed in order by the activations that take them, defaults
those of the ONNX operators of the same name; a sequence of length L
updates its state for t < L (the reverse direction from t = L-1 down to 0),
Y is zero past L and Y_h / Y_c hold the state after the last update.

    /usr/bin/python3 tools/spec_cases/rnn.py
"""
import os

import numpy as np
import onnx
from onnx import helper

from common import ROOT, rng, write_case

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
NACTS = {"RNN": 1, "GRU": 2, "LSTM": 3}
DEFAULT_ACTS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}
# name -> (uses alpha, uses beta, default alpha, default beta)
ACTS = {
    "Relu": (0, 0, 0, 0), "Tanh": (0, 0, 0, 0), "Sigmoid": (0, 0, 0, 0),
    "Affine": (1, 1, 1.0, 0.0), "LeakyRelu": (1, 0, 0.01, 0), "ThresholdedRelu": (1, 0, 1.0, 0),
    "ScaledTanh": (1, 1, 1.0, 1.0), "HardSigmoid": (1, 1, 0.2, 0.5), "Elu": (1, 0, 1.0, 0),
    "Softsign": (0, 0, 0, 0), "Softplus": (0, 0, 0, 0),
}


def f32(v):
    # attribute floats are float32 in the model: use the stored value
    return float(np.float32(v))


def act(name, x, a, b):
    if name == "Relu":
        return np.maximum(x, 0)
    if name == "Tanh":
        return np.tanh(x)
    if name == "Sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "Affine":
        return a * x + b
    if name == "LeakyRelu":
        return np.where(x >= 0, x, a * x)
    if name == "ThresholdedRelu":
        return np.where(x >= a, x, 0)
    if name == "ScaledTanh":
        return a * np.tanh(b * x)
    if name == "HardSigmoid":
        return np.minimum(np.maximum(a * x + b, 0), 1)
    if name == "Elu":
        return np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0)) - 1))
    if name == "Softsign":
        return x / (1 + np.abs(x))
    if name == "Softplus":
        return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)
    raise ValueError(name)


def resolve_acts(op, ndir, names, alphas, betas):
    total = NACTS[op] * ndir
    names = names or DEFAULT_ACTS[op]
    if len(names) == NACTS[op]:
        names = names * ndir
    alphas, betas = list(alphas or []), list(betas or [])
    out = []
    for n in names:
        ua, ub, da, db = ACTS[n]
        a = f32(alphas.pop(0)) if ua and alphas else da
        b = f32(betas.pop(0)) if ub and betas else db
        out.append((n, f32(a), f32(b)))
    assert len(out) == total
    return out


def reference(op, X, W, R, B=None, seq=None, h0=None, c0=None, P=None, direction="forward",
              layout=0, acts=None, alphas=None, betas=None, clip=None, lbr=0, input_forget=0):
    """float64 NumPy evaluation of the equations above; returns Y, Y_h, Y_c."""
    ndir = 2 if direction == "bidirectional" else 1
    X = X.astype(np.float64)
    if layout:
        X = X.transpose(1, 0, 2)
        h0 = None if h0 is None else h0.transpose(1, 0, 2)
        c0 = None if c0 is None else c0.transpose(1, 0, 2)
    S, N, _ = X.shape
    H = R.shape[-1]
    W, R = W.astype(np.float64), R.astype(np.float64)
    G = GATES[op]
    B = np.zeros((ndir, 2 * G * H)) if B is None else B.astype(np.float64)
    fns = resolve_acts(op, ndir, acts, alphas, betas)
    cl = (lambda v: np.clip(v, -f32(clip), f32(clip))) if clip is not None else (lambda v: v)
    Y = np.zeros((S, ndir, N, H))
    Yh = np.zeros((ndir, N, H))
    Yc = np.zeros((ndir, N, H))
    for d in range(ndir):
        rev = direction == "reverse" or d == 1
        fa = fns[d * NACTS[op]: (d + 1) * NACTS[op]]

        def F(k, v):
            n, a, b = fa[k]
            return act(n, cl(v), a, b)

        Wd, Rd, Wb, Rb = W[d], R[d], B[d, : G * H], B[d, G * H:]
        Wg = [Wd[k * H:(k + 1) * H] for k in range(G)]
        Rg = [Rd[k * H:(k + 1) * H] for k in range(G)]
        Wbg = [Wb[k * H:(k + 1) * H] for k in range(G)]
        Rbg = [Rb[k * H:(k + 1) * H] for k in range(G)]
        for n in range(N):
            L = S if seq is None else int(seq[n])
            h = np.zeros(H) if h0 is None else h0[d, n].astype(np.float64)
            c = np.zeros(H) if c0 is None else c0[d, n].astype(np.float64)
            for t in (range(L - 1, -1, -1) if rev else range(L)):
                x = X[t, n]
                if op == "RNN":
                    h = F(0, x @ Wg[0].T + h @ Rg[0].T + Wbg[0] + Rbg[0])
                elif op == "GRU":
                    z = F(0, x @ Wg[0].T + h @ Rg[0].T + Wbg[0] + Rbg[0])
                    r = F(0, x @ Wg[1].T + h @ Rg[1].T + Wbg[1] + Rbg[1])
                    if lbr:
                        hh = F(1, x @ Wg[2].T + r * (h @ Rg[2].T + Rbg[2]) + Wbg[2])
                    else:
                        hh = F(1, x @ Wg[2].T + (r * h) @ Rg[2].T + Rbg[2] + Wbg[2])
                    h = (1 - z) * hh + z * h
                else:  # gates i, o, f, c; peepholes i, o, f
                    Pd = np.zeros(3 * H) if P is None else P[d].astype(np.float64)
                    Pi, Po, Pf = Pd[:H], Pd[H:2 * H], Pd[2 * H:]
                    i = F(0, x @ Wg[0].T + h @ Rg[0].T + Pi * c + Wbg[0] + Rbg[0])
                    if input_forget:
                        f = 1 - i
                    else:
                        f = F(0, x @ Wg[2].T + h @ Rg[2].T + Pf * c + Wbg[2] + Rbg[2])
                    cc = F(1, x @ Wg[3].T + h @ Rg[3].T + Wbg[3] + Rbg[3])
                    c = f * c + i * cc
                    o = F(0, x @ Wg[1].T + h @ Rg[1].T + Po * c + Wbg[1] + Rbg[1])
                    h = o * F(2, c)
                Y[t, d, n] = h
            Yh[d, n] = h if L > 0 else 0
            Yc[d, n] = c if L > 0 else 0
    if layout:
        Y = Y.transpose(2, 0, 1, 3)
        Yh = Yh.transpose(1, 0, 2)
        Yc = Yc.transpose(1, 0, 2)
    return Y, Yh, Yc


def to_bf16_bits(a):
    """Round float64/float32 to bfloat16 (nearest even); the bits as uint16."""
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_value(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def case(name, op, opset, S, N, I, H, dtype=np.float32, direction="forward", layout=0,
         with_B=True, seq=None, h0=False, c0=False, P=False, outputs=("Y", "Y_h", "Y_c"),
         const_w=False, seed=0, scale=0.5, **attrs):
    r = rng(seed)
    ndir = 2 if direction == "bidirectional" else 1
    G = GATES[op]
    bf16 = dtype == "bfloat16"
    np_t = np.float32 if bf16 else dtype

    def draw(*shape, s=scale):
        v = (r.standard_normal(shape) * s).astype(np_t)
        return bf16_value(to_bf16_bits(v)) if bf16 else v

    xs = (N, S, I) if layout else (S, N, I)
    hs = (N, ndir, H) if layout else (ndir, N, H)
    vals = {"X": draw(*xs, s=1.0), "W": draw(ndir, G * H, I), "R": draw(ndir, G * H, H)}
    if with_B:
        vals["B"] = draw(ndir, 2 * G * H)
    if seq is not None:
        vals["sequence_lens"] = np.array(seq, dtype=np.int32)
    if h0:
        vals["initial_h"] = draw(*hs)
    if op == "LSTM" and c0:
        vals["initial_c"] = draw(*hs)
    if op == "LSTM" and P:
        vals["P"] = draw(ndir, 3 * H)
    order = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"][: 8 if op == "LSTM" else 6]
    names = [n if n in vals else "" for n in order]
    while names and names[-1] == "":
        names.pop()
    kw = dict(attrs)
    ref_kw = {k: kw[k] for k in ("acts", "alphas", "betas", "clip", "lbr", "input_forget") if k in kw}
    node_attrs = {"hidden_size": H}
    if direction != "forward":
        node_attrs["direction"] = direction
    if layout:
        node_attrs["layout"] = layout
    if "acts" in kw:
        node_attrs["activations"] = kw["acts"]
    if "alphas" in kw:
        node_attrs["activation_alpha"] = kw["alphas"]
    if "betas" in kw:
        node_attrs["activation_beta"] = kw["betas"]
    if "clip" in kw:
        node_attrs["clip"] = kw["clip"]
    if "lbr" in kw:
        node_attrs["linear_before_reset"] = kw["lbr"]
    if "input_forget" in kw:
        node_attrs["input_forget"] = kw["input_forget"]
    Y, Yh, Yc = reference(op, vals["X"], vals["W"], vals["R"], vals.get("B"), vals.get("sequence_lens"),
                          vals.get("initial_h"), vals.get("initial_c"), vals.get("P"),
                          direction=direction, layout=layout, **ref_kw)
    all_out = {"Y": Y, "Y_h": Yh, "Y_c": Yc}
    out_order = ["Y", "Y_h", "Y_c"][: 3 if op == "LSTM" else 2]
    onames = [n if n in outputs else "" for n in out_order]
    while onames and onames[-1] == "":
        onames.pop()
    node = helper.make_node(op, names, onames, **node_attrs)

    def store(a, n):
        if n == "sequence_lens":
            return a
        return to_bf16_bits(a) if bf16 else a.astype(np_t)

    inits = {}
    ins = []
    for n in names:
        if not n:
            continue
        if const_w and n in ("W", "R", "B", "P"):
            inits[n] = store(vals[n], n)
        else:
            ins.append((n, store(vals[n], n)))
    outs = [(n, store(all_out[n], n)) for n in onames if n]
    write_case(name, node, ins, outs, opset, initializers=inits)
    if bf16:  # declare the float tensors bfloat16 (the files hold their bits as uint16)
        path = os.path.join(ROOT, name, "model.onnx")
        m = onnx.load(path)
        for v in list(m.graph.input) + list(m.graph.output):
            if v.type.tensor_type.elem_type == onnx.TensorProto.UINT16:
                v.type.tensor_type.elem_type = onnx.TensorProto.BFLOAT16
        for t in m.graph.initializer:
            if t.data_type == onnx.TensorProto.UINT16:
                t.data_type = onnx.TensorProto.BFLOAT16
        onnx.save(m, path)


def main():
    # every op: directions, opset forms, layout, sequence lengths
    for op in ("RNN", "GRU", "LSTM"):
        lo = op.lower()
        case(lo + "_reverse_op7", op, 7, 4, 2, 3, 5, direction="reverse", h0=True, c0=True, seed=1)
        case(lo + "_bidir_op14", op, 14, 4, 3, 3, 4, direction="bidirectional", seed=2, h0=True, c0=True)
        case(lo + "_bidir_seqlens_op22", op, 22, 5, 3, 2, 4, direction="bidirectional",
             seq=[5, 2, 3], seed=3, const_w=True)
        case(lo + "_layout1_bidir_seqlens", op, 22, 4, 3, 3, 2, direction="bidirectional", layout=1,
             seq=[1, 4, 3], h0=True, c0=True, seed=4)
        case(lo + "_layout1_reverse_seqlens", op, 14, 5, 2, 2, 3, direction="reverse", layout=1,
             seq=[3, 5], h0=True, seed=5, const_w=True)
        case(lo + "_seqlens_equal", op, 22, 3, 2, 2, 3, seq=[3, 3], seed=6)
        case(lo + "_no_bias_y_only", op, 22, 3, 2, 4, 3, with_B=False, outputs=("Y",), seed=7)
        case(lo + "_yh_only_const", op, 22, 6, 4, 5, 8, outputs=("Y_h",), const_w=True, seed=8)
        case(lo + "_clip", op, 22, 4, 2, 3, 4, clip=0.7, seed=9, scale=1.5,
             direction="bidirectional")
        case(lo + "_float16", op, 22, 4, 2, 3, 4, dtype=np.float16, direction="bidirectional",
             seq=[4, 2], h0=True, c0=True, seed=10)
        case(lo + "_double", op, 14, 4, 2, 3, 4, dtype=np.float64, direction="reverse", h0=True,
             c0=True, seed=11)
        case(lo + "_bfloat16", op, 22, 3, 2, 3, 4, dtype="bfloat16", seed=12, h0=True)
    # GRU: both linear_before_reset forms
    case("gru_lbr1", "GRU", 22, 4, 3, 3, 5, lbr=1, h0=True, seed=20)
    case("gru_lbr1_bidir_seqlens_const", "GRU", 14, 5, 2, 3, 4, lbr=1, direction="bidirectional",
         seq=[2, 5], const_w=True, seed=21)
    case("gru_lbr0_explicit", "GRU", 22, 4, 2, 3, 5, lbr=0, seed=22)
    # LSTM: peepholes, input_forget, both, with clip
    case("lstm_peepholes_bidir", "LSTM", 22, 4, 2, 3, 4, P=True, direction="bidirectional", h0=True,
         c0=True, seed=30)
    case("lstm_peepholes_const_seqlens", "LSTM", 14, 5, 3, 2, 3, P=True, seq=[5, 1, 3], const_w=True,
         seed=31)
    case("lstm_input_forget", "LSTM", 22, 4, 2, 3, 4, input_forget=1, seed=32, c0=True)
    case("lstm_input_forget_peep_clip", "LSTM", 22, 4, 2, 3, 4, input_forget=1, P=True, clip=0.5,
         seed=33, scale=1.5, c0=True)
    case("lstm_yc_only", "LSTM", 22, 3, 2, 3, 4, outputs=("Y_c",), seed=34, c0=True)
    # every activation, with explicit alpha/beta and with defaults
    explicit = {"Affine": ([0.7], [0.1]), "LeakyRelu": ([0.2], None), "ThresholdedRelu": ([0.3], None),
                "ScaledTanh": ([1.3], [0.6]), "HardSigmoid": ([0.3], [0.4]), "Elu": ([0.8], None)}
    for k, a in enumerate(ACTS):
        case("rnn_act_%s" % a.lower(), "RNN", 22, 4, 2, 3, 4, acts=[a], seed=40 + k)
        if a in explicit:
            al, be = explicit[a]
            kw = {"alphas": al}
            if be:
                kw["betas"] = be
            case("rnn_act_%s_alpha" % a.lower(), "RNN", 22, 4, 2, 3, 4, acts=[a], seed=60 + k, **kw)
    # alpha/beta consumed across directions and gates
    case("gru_acts_bidir_mixed", "GRU", 22, 4, 2, 3, 4, direction="bidirectional",
         acts=["HardSigmoid", "LeakyRelu", "Sigmoid", "ScaledTanh"], alphas=[0.25, 0.05, 0.9],
         betas=[0.45, 1.1], seed=80)
    case("lstm_acts_mixed", "LSTM", 22, 4, 2, 3, 4, acts=["HardSigmoid", "Softsign", "Elu"],
         alphas=[0.3, 0.7], betas=[0.6], P=True, seed=81)
    case("lstm_acts_bidir_6", "LSTM", 14, 3, 2, 3, 4, direction="bidirectional",
         acts=["Sigmoid", "Relu", "Softplus", "HardSigmoid", "Tanh", "Affine"], alphas=[0.3, 0.5],
         betas=[0.4, -0.2], seed=82)


if __name__ == "__main__":
    main()
