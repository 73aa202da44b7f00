#!/usr/bin/python3
"""Export PyTorch models to ONNX test cases for onnx-run.

Writes, per model, the ONNX backend test-case layout:

    OUT/<case>/model.onnx
    OUT/<case>/test_data_set_0/input_K.pb    (TensorProto, name = graph input)
    OUT/<case>/test_data_set_0/output_K.pb   (PyTorch's output, name = graph output)

Usage (system python: PyTorch 1.13, torchvision 0.14, onnx 1.12):

    /usr/bin/python3 tools/export_models.py --size tiny --out testdata
    /usr/bin/python3 tools/export_models.py --size full --out models
    /usr/bin/python3 tools/export_models.py --size tiny --out testdata --models resnet18,bert13
    /usr/bin/python3 tools/export_models.py --list
    /usr/bin/python3 tools/export_models.py --size tiny --out /tmp/dyn --models gpt_dyn,vit13_dyn,resnet18_dyn

efficientnet_b0, regnet_y_400mf, convnext_t (full size only) and unet (a tiny
variant too) are the further CNNs of tools/bench; not exported by default.

Keys ending in _dyn export with dynamic axes (symbolic batch, and sequence
for the text models) and write a second data set (test_data_set_1) at batch 2
and, where the sequence is dynamic, 3 tokens shorter; only tiny_bert_dynamic
is committed (the others are exported on request).

Weights are random (nothing can be downloaded) but made "realistic": zero-init
biases / heads / class tokens are re-drawn, norm affine parameters are
perturbed, BatchNorm running statistics are calibrated on random batches, and
classifier heads are rescaled so the logits have std ~1.  Everything is seeded
per model, and PyTorch runs single-threaded, so the same command gives the same
files.  Each exported graph is checked with onnx.checker and, unless
--no-verify, evaluated by a small NumPy reference interpreter (below) against
PyTorch's outputs.  `models/` (full size) is not meant to be committed.
"""

import argparse
import collections
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import onnx
from onnx import numpy_helper

# ---------------------------------------------------------------------------
# helpers for "realistic" random weights
# ---------------------------------------------------------------------------


def redraw_tiny_biases(model, thresh=1e-4):
    """Biases that init left at (nearly) zero get PyTorch's default Linear/Conv
    bias distribution U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.bias is not None:
            if m.bias.detach().abs().max() < thresh:
                fan_in = m.weight[0].numel()
                b = 1.0 / math.sqrt(fan_in)
                with torch.no_grad():
                    m.bias.uniform_(-b, b)


def perturb_norms(model, wstd=0.1, bstd=0.1):
    """gamma = 1 + N(0, wstd), beta = N(0, bstd): a kernel that ignores the
    affine part of a norm gets caught by the tests."""
    for m in model.modules():
        if isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
            with torch.no_grad():
                if m.weight is not None:
                    m.weight.copy_(1.0 + wstd * torch.randn_like(m.weight))
                if m.bias is not None:
                    m.bias.copy_(bstd * torch.randn_like(m.bias))


def calibrate_batchnorm(model, make_batch, n_batches=4):
    """Cumulative running mean/var over random batches (momentum=None)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(n_batches):
            model(make_batch())
    model.eval()


def rescale_head(model, head, inputs, target_std=1.0):
    """Scale the final Linear so the model's output has std ~target_std."""
    model.eval()
    with torch.no_grad():
        y = model(*inputs)
        s = float(y.std())
        if s > 0:
            head.weight.mul_(target_std / s)
            head.bias.mul_(target_std / s)


# ---------------------------------------------------------------------------
# CNNs (torchvision)
# ---------------------------------------------------------------------------


def _slim_resnet(block, layers, widths, num_classes):
    import torchvision.models as tvm

    class SlimResNet(tvm.ResNet):
        """torchvision ResNet (same forward, same _make_layer) with narrow widths."""

        def __init__(self):
            nn.Module.__init__(self)
            self._norm_layer = nn.BatchNorm2d
            self.inplanes = widths[0]
            self.dilation = 1
            self.groups = 1
            self.base_width = 64
            self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(self.inplanes)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.layer1 = self._make_layer(block, widths[0], layers[0])
            self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
            self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
            self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(widths[3] * block.expansion, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    return SlimResNet()


def build_resnet(size, depth):
    import torchvision.models as tvm
    from torchvision.models.resnet import BasicBlock, Bottleneck

    if size == "full":
        model = {18: tvm.resnet18, 50: tvm.resnet50}[depth](weights=None)
        hw = 224
    else:
        if depth == 18:
            model = _slim_resnet(BasicBlock, [2, 2, 2, 2], (8, 16, 24, 32), 10)
        else:
            model = _slim_resnet(Bottleneck, [3, 4, 6, 3], (4, 8, 12, 16), 10)
        hw = 64
    return _finish_cnn(model, hw, model.fc)


def build_mobilenet_v2(size):
    import torchvision.models as tvm
    from torchvision.ops.misc import Conv2dNormActivation

    if size == "full":
        model = tvm.mobilenet_v2(weights=None)
        hw = 224
    else:
        setting = [
            # t, c, n, s  (all block kinds: t=1 without expand conv, residual n>1)
            [1, 16, 1, 1],
            [6, 24, 2, 2],
            [6, 32, 2, 2],
            [6, 64, 2, 2],
            [6, 96, 1, 1],
            [6, 160, 1, 2],
            [6, 320, 1, 1],
        ]
        model = tvm.MobileNetV2(num_classes=10, width_mult=0.25, inverted_residual_setting=setting)
        # the 1280-wide last conv dominates the size: make it 64 wide
        last_in = model.features[-1][0].in_channels
        model.features[-1] = Conv2dNormActivation(
            last_in, 64, kernel_size=1, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6
        )
        model.last_channel = 64
        model.classifier[1] = nn.Linear(64, 10)
        nn.init.kaiming_normal_(model.features[-1][0].weight, mode="fan_out")
        hw = 64
    return _finish_cnn(model, hw, model.classifier[1])


def _finish_cnn(model, hw, head):
    perturb_norms(model)
    redraw_tiny_biases(model)
    calibrate_batchnorm(model, lambda: torch.randn(8, 3, hw, hw), n_batches=4)
    x = torch.randn(1, 3, hw, hw)
    rescale_head(model, head, (x,))
    return model, {"input": x}, ["logits"]


def build_efficientnet_b0(size):
    """torchvision EfficientNet-B0 (SiLU, squeeze-excitation with Sigmoid,
    depthwise 3x3 / 5x5), 224x224. Full size only."""
    import torchvision.models as tvm

    _full_only("efficientnet_b0", size)
    model = tvm.efficientnet_b0(weights=None)
    return _finish_cnn(model, 224, model.classifier[1])


def build_regnet(size):
    """torchvision RegNetY-400MF (grouped 3x3 convolutions, squeeze-excitation),
    224x224. Full size only."""
    import torchvision.models as tvm

    _full_only("regnet_y_400mf", size)
    model = tvm.regnet_y_400mf(weights=None)
    return _finish_cnn(model, 224, model.fc)


def build_convnext_t(size):
    """torchvision ConvNeXt-T (depthwise 7x7, LayerNorm over channels, GELU,
    layer scale), 224x224. Full size only. The layer scales, initialised at
    1e-6 (which would leave every block an identity), are re-drawn in
    [0.1, 0.5]."""
    import torchvision.models as tvm

    _full_only("convnext_t", size)
    model = tvm.convnext_tiny(weights=None)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_scale"):
                p.uniform_(0.1, 0.5)
    return _finish_cnn(model, 224, model.classifier[2])


class UNet(nn.Module):
    """The UNet of Ronneberger et al. (two 3x3 conv + BatchNorm + ReLU per
    level, 2x2 max-pool down, 2x2 stride-2 ConvTranspose up, skip
    concatenations), 4 levels, base width w, padded convolutions."""

    def __init__(self, w=32, cin=3, classes=2):
        super().__init__()

        def block(a, b):
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True),
                                 nn.Conv2d(b, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True))

        ws = [w, 2 * w, 4 * w, 8 * w, 16 * w]
        self.down = nn.ModuleList([block(cin, ws[0])] + [block(ws[i], ws[i + 1]) for i in range(4)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(ws[i + 1], ws[i], 2, stride=2) for i in reversed(range(4))])
        self.dec = nn.ModuleList([block(2 * ws[i], ws[i]) for i in reversed(range(4))])
        self.head = nn.Conv2d(ws[0], classes, 1)

    def forward(self, x):
        skips = []
        for i, d in enumerate(self.down):
            x = d(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([skips.pop(), up(x)], 1))
        return self.head(x)


def build_unet(size):
    """UNet, base width 32, 1x3x256x256 (full) or width 4 at 32x32 (tiny)."""
    model = UNet(32) if size == "full" else UNet(4)
    return _finish_cnn(model, 256 if size == "full" else 32, model.head)


def _full_only(name, size):
    if size != "full":
        raise SystemExit("%s: full size only (--size full)" % name)


# ---------------------------------------------------------------------------
# ViT (torchvision)
# ---------------------------------------------------------------------------


def build_vit(size):
    import torchvision.models as tvm

    if size == "full":
        model = tvm.vit_b_16(weights=None)
        hw = 224
    else:
        model = tvm.VisionTransformer(
            image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10
        )
        hw = 32
    hidden = model.hidden_dim
    with torch.no_grad():
        model.class_token.normal_(0.0, 1.0)  # zero-init in torchvision
        head = model.heads.head  # zero-init weight and bias in torchvision
        head.weight.normal_(0.0, 1.0 / math.sqrt(hidden))
    perturb_norms(model)
    redraw_tiny_biases(model)  # head bias (0) and MLP biases (std 1e-6)
    model.eval()
    x = torch.randn(1, 3, hw, hw)
    rescale_head(model, head, (x,))
    return model, {"input": x}, ["logits"]


# ---------------------------------------------------------------------------
# BERT encoder (plain torch, HF-BertModel-like)
# ---------------------------------------------------------------------------


class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab"], c["hidden"])
        self.position_embeddings = nn.Embedding(c["max_pos"], c["hidden"])
        self.token_type_embeddings = nn.Embedding(2, c["hidden"])
        self.LayerNorm = nn.LayerNorm(c["hidden"], eps=1e-12)
        self.register_buffer("position_ids", torch.arange(c["max_pos"]).unsqueeze(0), persistent=False)

    def forward(self, input_ids, token_type_ids):
        seq = input_ids.size(1)
        pos = self.position_ids[:, :seq]
        e = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        e = e + self.position_embeddings(pos)
        return self.LayerNorm(e)


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden"]
        self.heads = c["heads"]
        self.head_dim = h // c["heads"]
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.attn_out = nn.Linear(h, h)
        self.attn_ln = nn.LayerNorm(h, eps=1e-12)
        self.intermediate = nn.Linear(h, c["ffn"])
        self.act = nn.GELU()  # erf form
        self.output = nn.Linear(c["ffn"], h)
        self.out_ln = nn.LayerNorm(h, eps=1e-12)

    def _split(self, x):
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x, ext_mask):
        b, s, h = x.shape
        q = self._split(self.query(x))
        k = self._split(self.key(x))
        v = self._split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        scores = scores + ext_mask
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous().view(b, s, h)
        x = self.attn_ln(self.attn_out(ctx) + x)
        y = self.output(self.act(self.intermediate(x)))
        return self.out_ln(y + x)


class Bert(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = BertEmbeddings(c)
        self.layers = nn.ModuleList([BertLayer(c) for _ in range(c["layers"])])
        self.pooler = nn.Linear(c["hidden"], c["hidden"])

    def forward(self, input_ids, attention_mask, token_type_ids):
        ext = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * -10000.0
        x = self.embeddings(input_ids, token_type_ids)
        for layer in self.layers:
            x = layer(x, ext)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return x, pooled


def init_transformer(model, hidden, n_layers=None, proj_names=()):
    """GPT/BERT-style init: N(0, 0.02) at hidden 768, scaled as 1/sqrt(hidden)
    for other widths so activations stay O(1); small random biases; perturbed
    LayerNorms.  Residual output projections (GPT-2) scaled by 1/sqrt(2L)."""
    std = 0.02 * math.sqrt(768.0 / hidden)
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            s = std
            if n_layers and name.split(".")[-1] in proj_names:
                s = std / math.sqrt(2 * n_layers)
            with torch.no_grad():
                m.weight.normal_(0.0, s)
                if getattr(m, "bias", None) is not None:
                    m.bias.normal_(0.0, 0.02)
    perturb_norms(model)


BERT_CFG = {
    "tiny": dict(vocab=128, hidden=32, layers=2, heads=2, ffn=64, max_pos=64, seq=16),
    "full": dict(vocab=30522, hidden=768, layers=12, heads=12, ffn=3072, max_pos=512, seq=128),
}


def build_bert(size):
    c = BERT_CFG[size]
    model = Bert(c)
    init_transformer(model, c["hidden"])
    model.eval()
    s = c["seq"]
    ids = torch.randint(0, c["vocab"], (1, s), dtype=torch.int64)
    valid = s - s // 4  # last quarter is padding
    mask = torch.zeros(1, s, dtype=torch.int64)
    mask[:, :valid] = 1
    ids[:, valid:] = 0  # [PAD]
    tt = torch.zeros(1, s, dtype=torch.int64)
    tt[:, valid // 2 : valid] = 1  # sentence B
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt}
    return model, inputs, ["last_hidden_state", "pooler_output"]


# ---------------------------------------------------------------------------
# GPT-2-style decoder (plain torch)
# ---------------------------------------------------------------------------


def gelu_new(x):
    # GPT-2's tanh approximation, written as HF/nanoGPT do
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPTBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden"]
        self.heads = c["heads"]
        self.ln_1 = nn.LayerNorm(h, eps=1e-5)
        self.c_attn = nn.Linear(h, 3 * h)
        self.attn_proj = nn.Linear(h, h)
        self.ln_2 = nn.LayerNorm(h, eps=1e-5)
        self.c_fc = nn.Linear(h, 4 * h)
        self.mlp_proj = nn.Linear(4 * h, h)
        n = c["n_ctx"]
        self.register_buffer("bias", torch.tril(torch.ones(n, n)).view(1, 1, n, n), persistent=False)

    def attn(self, x):
        b, t, h = x.shape
        d = h // self.heads
        q, k, v = self.c_attn(x).split(h, dim=2)
        q = q.view(b, t, self.heads, d).transpose(1, 2)
        k = k.view(b, t, self.heads, d).transpose(1, 2)
        v = v.view(b, t, self.heads, d).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d))
        att = att.masked_fill(self.bias[:, :, :t, :t] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, h)
        return self.attn_proj(y)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp_proj(gelu_new(self.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.wte = nn.Embedding(c["vocab"], c["hidden"])
        self.wpe = nn.Embedding(c["n_ctx"], c["hidden"])
        self.blocks = nn.ModuleList([GPTBlock(c) for _ in range(c["layers"])])
        self.ln_f = nn.LayerNorm(c["hidden"], eps=1e-5)
        self.lm_head = nn.Linear(c["hidden"], c["vocab"], bias=False)
        self.register_buffer("pos", torch.arange(c["n_ctx"]).unsqueeze(0), persistent=False)

    def forward(self, input_ids):
        t = input_ids.size(1)
        x = self.wte(input_ids) + self.wpe(self.pos[:, :t])
        for blk in self.blocks:
            x = blk(x)
        return self.lm_head(self.ln_f(x))


GPT_CFG = {
    "tiny": dict(vocab=128, hidden=32, layers=2, heads=2, n_ctx=32, seq=16),
    "full": dict(vocab=50257, hidden=768, layers=12, heads=12, n_ctx=1024, seq=64),
}


def build_gpt(size):
    c = GPT_CFG[size]
    model = GPT(c)
    init_transformer(model, c["hidden"], n_layers=c["layers"], proj_names=("attn_proj", "mlp_proj"))
    model.lm_head.weight = model.wte.weight  # tied LM head, as GPT-2
    model.eval()
    ids = torch.randint(0, c["vocab"], (1, c["seq"]), dtype=torch.int64)
    return model, {"input_ids": ids}, ["logits"]


# ---------------------------------------------------------------------------
# recurrent models: 2-layer bidirectional LSTM and GRU (batch_first), and a
# 2-layer ReLU RNN, each with a linear head; the exporter turns each layer
# into one ONNX LSTM / GRU / RNN node (W, R, B as initializers)
# ---------------------------------------------------------------------------

RNN_CFG = {
    "tiny": {"feat": 8, "hidden": 12, "batch": 2, "seq": 5, "out": 4},
    "full": {"feat": 80, "hidden": 256, "batch": 4, "seq": 100, "out": 32},
}


class RecurrentNet(nn.Module):
    def __init__(self, kind, c):
        super().__init__()
        self.kind = kind
        if kind == "rnn":
            self.rnn = nn.RNN(c["feat"], c["hidden"], num_layers=2, nonlinearity="relu", batch_first=True)
            width = c["hidden"]
        else:
            cls = nn.LSTM if kind == "lstm" else nn.GRU
            self.rnn = cls(c["feat"], c["hidden"], num_layers=2, batch_first=True, bidirectional=True)
            width = 2 * c["hidden"]
        self.head = nn.Linear(width, c["out"])

    def forward(self, x, h0=None):
        if self.kind == "lstm":
            y, (h, cell) = self.rnn(x)
            return self.head(y), h, cell
        y, h = self.rnn(x, h0)
        return self.head(y), h


def build_recurrent(kind, size):
    c = RNN_CFG[size]
    model = RecurrentNet(kind, c)
    model.eval()
    inputs = {"x": torch.randn(c["batch"], c["seq"], c["feat"])}
    if kind == "gru":  # an initial state as a graph input: (layers*directions, batch, hidden)
        inputs["h0"] = torch.randn(4, c["batch"], c["hidden"]) * 0.5
    outs = ["logits", "h_n"] + (["c_n"] if kind == "lstm" else [])
    return model, inputs, outs


# ---------------------------------------------------------------------------
# the model table
# ---------------------------------------------------------------------------

# key: (builder, opset, tiny case name, full case name)
MODELS = collections.OrderedDict(
    [
        ("resnet18", (lambda s: build_resnet(s, 18), 13, "tiny_resnet18", "resnet18")),
        ("resnet18_op17", (lambda s: build_resnet(s, 18), 17, "tiny_resnet18_op17", "resnet18_op17")),
        ("resnet50", (lambda s: build_resnet(s, 50), 13, "tiny_resnet50", "resnet50")),
        ("mobilenet_v2", (build_mobilenet_v2, 13, "tiny_mobilenet_v2", "mobilenet_v2")),
        ("vit13", (build_vit, 13, "tiny_vit", "vit_b_16_op13")),
        ("vit17", (build_vit, 17, "tiny_vit_op17", "vit_b_16_op17")),
        ("bert13", (build_bert, 13, "tiny_bert_op13", "bert_base_op13")),
        ("bert17", (build_bert, 17, "tiny_bert_op17", "bert_base_op17")),
        ("gpt", (build_gpt, 13, "tiny_gpt", "gpt2_small")),
        ("gpt17", (build_gpt, 17, "tiny_gpt_op17", "gpt2_small_op17")),
        ("bert_fn", (build_bert, 15, "tiny_bert_functions", "bert_base_functions")),
        ("lstm", (lambda s: build_recurrent("lstm", s), 14, "tiny_lstm", "lstm_2x256_bidir")),
        ("gru", (lambda s: build_recurrent("gru", s), 17, "tiny_gru", "gru_2x256_bidir")),
        ("rnn", (lambda s: build_recurrent("rnn", s), 13, "tiny_rnn", "rnn_2x256_relu")),
        # the CNNs of tools/bench beyond the three above (full size; unet also tiny)
        ("efficientnet_b0", (build_efficientnet_b0, 13, None, "efficientnet_b0")),
        ("regnet_y_400mf", (build_regnet, 13, None, "regnet_y_400mf")),
        ("convnext_t", (build_convnext_t, 17, None, "convnext_t_op17")),
        ("unet", (build_unet, 13, "tiny_unet_convt", "unet")),
        # dynamic axes (symbolic batch / sequence), as deployed models are
        # exported: the same weights as the static cases
        ("bert13_dyn", (build_bert, 13, "tiny_bert_dynamic", "bert_base_dynamic")),
        ("gpt_dyn", (build_gpt, 13, "tiny_gpt_dynamic", "gpt2_small_dynamic")),
        ("vit13_dyn", (build_vit, 13, "tiny_vit_dynamic", "vit_b_16_dynamic")),
        ("resnet18_dyn", (lambda s: build_resnet(s, 18), 13, "tiny_resnet18_dynamic", "resnet18_dynamic")),
    ]
)
# extra torch.onnx.export arguments per key: bert_fn exports every encoder
# layer as a model-local function (ModelProto.functions), as
# export_modules_as_functions and newer exporters do
_BS = {0: "batch", 1: "seq"}
EXPORT_KWARGS = {
    "bert_fn": {"export_modules_as_functions": {BertLayer}},
    "bert13_dyn": {"dynamic_axes": {"input_ids": _BS, "attention_mask": _BS, "token_type_ids": _BS,
                                    "last_hidden_state": _BS, "pooler_output": {0: "batch"}}},
    "gpt_dyn": {"dynamic_axes": {"input_ids": _BS, "logits": _BS}},
    "vit13_dyn": {"dynamic_axes": {"input": {0: "batch"}, "logits": {0: "batch"}}},
    "resnet18_dyn": {"dynamic_axes": {"input": {0: "batch"}, "logits": {0: "batch"}}},
}
# dynamic variants not committed (only tiny_bert_dynamic is, as the test of
# symbolic shape inference); exported with --models KEY
OPTIONAL_TINY = {"gpt_dyn", "vit13_dyn", "resnet18_dyn", "efficientnet_b0", "regnet_y_400mf", "convnext_t", "unet"}
# defaults: every tiny case (they are small); full sizes without the optional op17 resnet/gpt
DEFAULT = {
    "tiny": [k for k in MODELS if k not in OPTIONAL_TINY],
    "full": ["resnet18", "resnet50", "mobilenet_v2", "vit13", "vit17", "bert13", "bert17", "gpt"],
}

# stable seed per model key (independent of which other models are exported)
SEEDS = {k: 1000 + i for i, k in enumerate(MODELS)}
SEEDS["resnet18_op17"] = SEEDS["resnet18"]  # same weights as resnet18
SEEDS["vit17"] = SEEDS["vit13"]
SEEDS["bert17"] = SEEDS["bert13"]
SEEDS["gpt17"] = SEEDS["gpt"]
SEEDS["bert_fn"] = SEEDS["bert13"]
SEEDS["bert13_dyn"] = SEEDS["bert13"]
SEEDS["gpt_dyn"] = SEEDS["gpt"]
SEEDS["vit13_dyn"] = SEEDS["vit13"]
SEEDS["resnet18_dyn"] = SEEDS["resnet18"]


# ---------------------------------------------------------------------------
# NumPy reference interpreter (independent check of the exported graph)
# ---------------------------------------------------------------------------


def _attr(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _conv(x, w, b, a):
    n, c, hh, ww = x.shape
    m, cg, kh, kw = w.shape
    g = a.get("group", 1)
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    assert a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (hh + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (ww + pl + pr - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, m, oh, ow), np.float64)
    mg = m // g
    for gi in range(g):
        xg = xp[:, gi * cg : (gi + 1) * cg]
        wg = w[gi * mg : (gi + 1) * mg].astype(np.float64)
        for i in range(kh):
            for j in range(kw):
                patch = xg[:, :, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw]
                out[:, gi * mg : (gi + 1) * mg] += np.einsum("nchw,mc->nmhw", patch, wg[:, :, i, j])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def _conv_transpose(x, w, b, a):
    """ConvTranspose as the UNet uses it: 2-D, group 1, no pads, dilation 1."""
    assert a.get("group", 1) == 1 and not any(a.get("pads", [0])) and not any(a.get("output_padding", [0]))
    assert all(d == 1 for d in a.get("dilations", [1, 1])) and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
    n, c, hh, ww = x.shape
    _, m, kh, kw = w.shape
    sh, sw = a.get("strides", [1, 1])
    out = np.zeros((n, m, (hh - 1) * sh + kh, (ww - 1) * sw + kw), np.float64)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i : i + (hh - 1) * sh + 1 : sh, j : j + (ww - 1) * sw + 1 : sw] += np.einsum(
                "nchw,cm->nmhw", x.astype(np.float64), w[:, :, i, j].astype(np.float64))
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def _maxpool(x, a):
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    assert a.get("ceil_mode", 0) == 0 and a.get("dilations", [1, 1]) == [1, 1]
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=-np.inf)
    n, c, hh, ww = x.shape
    oh = (hh + pt + pb - kh) // sh + 1
    ow = (ww + pl + pr - kw) // sw + 1
    out = np.full((n, c, oh, ow), -np.inf)
    for i in range(kh):
        for j in range(kw):
            out = np.maximum(out, xp[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw])
    return out


def _slice(x, starts, ends, axes=None, steps=None):
    axes = list(range(len(starts))) if axes is None else [int(a) % x.ndim for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    sl = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        dim = x.shape[ax]
        s, e, st = int(s), int(e), int(st)
        e = max(min(e, dim), -dim - 1) if e < 0 else min(e, dim)
        sl[ax] = slice(s, e, st)
    return x[tuple(sl)]


def _recurrent(op, ins, a):
    """RNN / GRU / LSTM by the float64 loop over the spec equations in
    tools/spec_cases/rnn.py (so PyTorch also checks that reference)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "spec_cases"))
    import rnn as spec_rnn

    ins = ins + [None] * (8 - len(ins))
    dec = lambda v: v.decode() if isinstance(v, bytes) else v
    kw = {}
    if "activations" in a:
        kw["acts"] = [dec(v) for v in a["activations"]]
    for k, name in (("activation_alpha", "alphas"), ("activation_beta", "betas")):
        if k in a:
            kw[name] = list(a[k])
    if "clip" in a:
        kw["clip"] = a["clip"]
    if op == "GRU":
        kw["lbr"] = a.get("linear_before_reset", 0)
    if op == "LSTM":
        kw["input_forget"] = a.get("input_forget", 0)
    Y, Yh, Yc = spec_rnn.reference(op, ins[0], ins[1], ins[2], ins[3], ins[4], ins[5],
                                   ins[6] if op == "LSTM" else None, ins[7] if op == "LSTM" else None,
                                   direction=dec(a.get("direction", "forward")), layout=a.get("layout", 0),
                                   **kw)
    return [Y, Yh, Yc]


def run_reference(model, feeds):
    """Evaluate an ONNX graph with NumPy (float64 accumulation)."""
    g = model.graph
    env = {}
    for t in g.initializer:
        env[t.name] = numpy_helper.to_array(t)
    env.update(feeds)

    def f(x):
        return x.astype(np.float64) if x.dtype == np.float32 else x

    for node in g.node:
        op = node.op_type
        a = _attr(node)
        ins = [env[i] if i else None for i in node.input]
        x = ins[0] if ins else None
        if op == "Constant":
            r = numpy_helper.to_array(a["value"])
        elif op == "Conv":
            r = _conv(f(x), ins[1], ins[2] if len(ins) > 2 else None, a)
        elif op == "ConvTranspose":
            r = _conv_transpose(x, ins[1], ins[2] if len(ins) > 2 else None, a)
        elif op == "MaxPool":
            r = _maxpool(x, a)
        elif op == "GlobalAveragePool":
            r = x.mean(axis=(2, 3), keepdims=True)
        elif op == "Relu":
            r = np.maximum(x, 0)
        elif op == "Clip":
            lo = ins[1] if len(ins) > 1 and ins[1] is not None else -np.inf
            hi = ins[2] if len(ins) > 2 and ins[2] is not None else np.inf
            r = np.clip(x, lo, hi)
        elif op == "Flatten":
            ax = a.get("axis", 1)
            r = x.reshape(int(np.prod(x.shape[:ax])), -1)
        elif op == "Gemm":
            A = ins[0].T if a.get("transA", 0) else ins[0]
            B = ins[1].T if a.get("transB", 0) else ins[1]
            r = a.get("alpha", 1.0) * (f(A) @ f(B))
            if len(ins) > 2 and ins[2] is not None:
                r = r + a.get("beta", 1.0) * ins[2]
        elif op == "MatMul":
            r = np.matmul(f(ins[0]), f(ins[1]))
        elif op in ("Add", "Sub", "Mul", "Div", "Pow"):
            fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power}[op]
            r = fn(ins[0], ins[1])
            if op == "Div" and np.issubdtype(ins[0].dtype, np.integer):
                r = np.trunc(r).astype(ins[0].dtype)
        elif op == "Equal":
            r = np.equal(ins[0], ins[1])
        elif op == "Not":
            r = np.logical_not(x)
        elif op == "Where":
            r = np.where(ins[0], ins[1], ins[2])
        elif op in ("Sqrt", "Tanh", "Erf", "Exp", "Neg", "Reciprocal", "Sigmoid"):
            import math as _m

            r = {
                "Sqrt": np.sqrt,
                "Tanh": np.tanh,
                "Exp": np.exp,
                "Neg": np.negative,
                "Reciprocal": np.reciprocal,
                "Sigmoid": lambda v: 1 / (1 + np.exp(-v)),
                "Erf": np.vectorize(_m.erf, otypes=[np.float64]),
            }[op](f(x))
        elif op == "Softmax":
            ax = a.get("axis", -1)
            e = np.exp(x - x.max(axis=ax, keepdims=True))
            r = e / e.sum(axis=ax, keepdims=True)
        elif op == "ReduceMean":
            axes = a.get("axes")
            axes = tuple(axes) if axes is not None else None
            r = f(x).mean(axis=axes, keepdims=bool(a.get("keepdims", 1)))
        elif op == "LayerNormalization":
            ax = a.get("axis", -1) % x.ndim
            axes = tuple(range(ax, x.ndim))
            xx = f(x)
            mu = xx.mean(axis=axes, keepdims=True)
            var = ((xx - mu) ** 2).mean(axis=axes, keepdims=True)
            r = (xx - mu) / np.sqrt(var + a.get("epsilon", 1e-5)) * ins[1]
            if len(ins) > 2 and ins[2] is not None:
                r = r + ins[2]
        elif op == "Gather":
            r = np.take(x, ins[1].astype(np.int64), axis=a.get("axis", 0))
        elif op == "Reshape":
            shape = [x.shape[i] if s == 0 else s for i, s in enumerate(ins[1])]
            r = x.reshape(shape)
        elif op == "Transpose":
            r = np.transpose(x, a.get("perm"))
        elif op == "Unsqueeze":
            r = x
            for ax in sorted(int(v) % (x.ndim + len(ins[1])) for v in ins[1]):
                r = np.expand_dims(r, ax)
        elif op == "Squeeze":
            r = np.squeeze(x, axis=tuple(int(v) for v in ins[1])) if len(ins) > 1 else np.squeeze(x)
        elif op == "Concat":
            r = np.concatenate(ins, axis=a["axis"])
        elif op == "Slice":
            r = _slice(x, ins[1], ins[2], ins[3] if len(ins) > 3 else None, ins[4] if len(ins) > 4 else None)
        elif op == "Split":
            ax = a.get("axis", 0)
            sizes = ins[1] if len(ins) > 1 and ins[1] is not None else a.get("split")
            if sizes is None:
                sizes = [x.shape[ax] // len(node.output)] * len(node.output)
            r = np.split(x, np.cumsum(sizes)[:-1], axis=ax)
        elif op == "Shape":
            r = np.array(x.shape, np.int64)
        elif op == "ConstantOfShape":
            v = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
            r = np.full(tuple(int(d) for d in x), v.reshape(-1)[0], v.dtype)
        elif op == "Expand":
            r = x * np.ones(tuple(int(v) for v in ins[1]), x.dtype)
        elif op == "Cast":
            to = onnx.helper.tensor_dtype_to_np_dtype(a["to"]) if hasattr(onnx.helper, "tensor_dtype_to_np_dtype") \
                else onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]]
            r = x.astype(np.float64) if to == np.float32 else x.astype(to)
        elif op == "Identity":
            r = x
        elif op in ("LSTM", "GRU", "RNN"):
            r = _recurrent(op, ins, a)
        else:
            raise NotImplementedError("reference: op %s" % op)
        outs = r if isinstance(r, list) else [r]
        for name, v in zip(node.output, outs):
            env[name] = np.asarray(v)
    return [env[o.name] for o in g.output]


# ---------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------


def save_tensor(arr, name, path):
    t = numpy_helper.from_array(arr, name)
    with open(path, "wb") as fp:
        fp.write(t.SerializeToString())


def export_one(key, size, outdir, verify):
    build, opset, tiny_name, full_name = MODELS[key]
    case = tiny_name if size == "tiny" else full_name
    torch.manual_seed(SEEDS[key])
    t0 = time.time()
    model, inputs, out_names = build(size)
    model.eval()
    in_names = list(inputs)
    args = tuple(inputs[n] for n in in_names)

    # reference outputs; with grad enabled and parameters requiring grad so
    # nn.MultiheadAttention takes the same (decomposed) path as the tracer
    for p in model.parameters():
        p.requires_grad_(True)
    with torch.enable_grad():
        ref = model(*args)
    ref = [r.detach().numpy() for r in (ref if isinstance(ref, (tuple, list)) else (ref,))]

    cdir = os.path.join(outdir, case)
    ddir = os.path.join(cdir, "test_data_set_0")
    os.makedirs(ddir, exist_ok=True)
    for old in os.listdir(ddir):
        os.remove(os.path.join(ddir, old))
    mpath = os.path.join(cdir, "model.onnx")
    torch.onnx.export(
        model,
        args,
        mpath,
        export_params=True,
        opset_version=opset,
        do_constant_folding=True,
        input_names=in_names,
        output_names=out_names,
        training=torch.onnx.TrainingMode.EVAL,
        **EXPORT_KWARGS.get(key, {}),
    )
    onnx.checker.check_model(mpath)
    m = onnx.load(mpath)
    graph_in = [i.name for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
    graph_out = [o.name for o in m.graph.output]
    assert graph_in == in_names, (graph_in, in_names)
    if m.functions and graph_out != out_names:
        # torch 1.13 names an output made by a function call after the call
        print("   note: exporter named the outputs %s (asked for %s)" % (graph_out, out_names))
        out_names = graph_out
    assert graph_out == out_names, (graph_out, out_names)
    for k, n in enumerate(in_names):
        save_tensor(inputs[n].numpy(), n, os.path.join(ddir, "input_%d.pb" % k))
    for k, (n, r) in enumerate(zip(out_names, ref)):
        save_tensor(r, n, os.path.join(ddir, "output_%d.pb" % k))
    dyn = EXPORT_KWARGS.get(key, {}).get("dynamic_axes")
    if dyn:
        # a second data set at another batch (2) and, where the sequence is
        # dynamic, a shorter sequence: the graph must not have baked the
        # traced shapes in
        alt = {}
        for n in in_names:
            x = torch.cat([inputs[n], inputs[n].flip(-1)], 0)
            if 1 in dyn.get(n, {}):
                x = x[:, : x.shape[1] - 3]
            alt[n] = x.contiguous()
        with torch.enable_grad():
            ref2 = model(*(alt[n] for n in in_names))
        ref2 = [r.detach().numpy() for r in (ref2 if isinstance(ref2, (tuple, list)) else (ref2,))]
        ddir1 = os.path.join(cdir, "test_data_set_1")
        os.makedirs(ddir1, exist_ok=True)
        for k, n in enumerate(in_names):
            save_tensor(alt[n].numpy(), n, os.path.join(ddir1, "input_%d.pb" % k))
        for k, (n, r) in enumerate(zip(out_names, ref2)):
            save_tensor(r, n, os.path.join(ddir1, "output_%d.pb" % k))

    hist = collections.Counter(n.op_type for n in m.graph.node)
    opsets = ",".join("%s:%d" % (o.domain or "ai.onnx", o.version) for o in m.opset_import)
    nparams = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
    size_b = os.path.getsize(mpath)
    print("== %s (%s, opset %s) model.onnx %.2f MB, %d initializers / %.2fM params, %d nodes, %.1fs"
          % (case, key, opsets, size_b / 1e6, len(m.graph.initializer), nparams / 1e6, len(m.graph.node),
             time.time() - t0))
    print("   ops: " + " ".join("%s:%d" % kv for kv in sorted(hist.items())))
    for n, r in zip(out_names, ref):
        print("   out %s %s mean %.4f std %.4f absmax %.4f" % (n, list(r.shape), r.mean(), r.std(), np.abs(r).max()))
    if m.functions:
        print("   %d model-local functions: %s (not checked by the NumPy reference)"
              % (len(m.functions), ", ".join(f.name for f in m.functions)))
    if verify and not m.functions:
        t1 = time.time()
        got = run_reference(m, {n: inputs[n].numpy() for n in in_names})
        for n, r, gv in zip(out_names, ref, got):
            err = np.abs(gv - r)
            rel = float((err / (np.abs(r) + 1e-6)).max())
            # the reference accumulates in float64: whether PyTorch's float32
            # outputs meet `onnx-run test` tolerances (rtol 1e-3, atol 1e-7)
            # against it tells how tight a float32 engine can be held
            print("   verify %s vs float64 reference: max abs err %.3g, max rel err %.3g, "
                  "allclose(rtol 1e-3, atol 1e-7)=%s, (1e-3, 1e-5)=%s (%.1fs)"
                  % (n, err.max(), rel, np.allclose(r, gv, rtol=1e-3, atol=1e-7),
                     np.allclose(r, gv, rtol=1e-3, atol=1e-5), time.time() - t1))
            if not np.allclose(gv, r, rtol=1e-2, atol=1e-3):
                raise RuntimeError("%s: exported graph disagrees with PyTorch on %s" % (case, n))
    sys.stdout.flush()
    return case


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["tiny", "full"], default="tiny")
    ap.add_argument("--out", default=None, help="output folder (default: testdata for tiny, models for full)")
    ap.add_argument("--models", default=None,
                    help="comma-separated keys; default: all for tiny, %s for full; 'all' for every key"
                    % ",".join(DEFAULT["full"]))
    ap.add_argument("--no-verify", action="store_true", help="skip the NumPy reference check of each graph")
    ap.add_argument("--list", action="store_true", help="list model keys and case names")
    args = ap.parse_args()

    if args.list:
        for k, (_, opset, tn, fn) in MODELS.items():
            print("%-14s opset %2d  tiny: %-20s full: %s%s"
                  % (k, opset, tn, fn, "" if k in DEFAULT["full"] else "  (full: not by default)"))
        return 0
    keys = DEFAULT[args.size] if not args.models else (list(MODELS) if args.models == "all" else args.models.split(","))
    for k in keys:
        if k not in MODELS:
            ap.error("unknown model %r (known: %s)" % (k, ", ".join(MODELS)))
    out = args.out or ("testdata" if args.size == "tiny" else "models")

    import warnings

    warnings.filterwarnings("ignore")  # tracer warnings about shape asserts etc.
    torch.set_num_threads(1)  # deterministic calibration / reference outputs
    print("torch %s, onnx %s, size %s -> %s" % (torch.__version__, onnx.__version__, args.size, out))
    done = []
    for k in keys:
        done.append(export_one(k, args.size, out, not args.no_verify))
    print("exported: " + " ".join(done))
    return 0


if __name__ == "__main__":
    sys.exit(main())
