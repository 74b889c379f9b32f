#!/usr/bin/python3
"""Exports one task of a model export to ONNX, for the ONNX Runtime peer benchmark.

Usage (Debian's interpreter, which has torch and onnx):
  /usr/bin/python3 bench/onnx/export_onnx.py --weights M.safetensors --task semseg --out model.onnx [--moe sparse|dense]

The graph is our PyTorch oracle (tests/oracle/m3vit_ref.py: forward_task = one backbone pass with
the task's routers, then that task's head), traced with torch.onnx.export in float32. Three pieces
of the oracle are swapped for traceable equivalents of the same function (and the conv padding is
taken as a Python int):
  - top-k: the oracle sorts with numpy (a stable argsort, constant under tracing) -> torch.topk;
  - bilinear resizing: the oracle multiplies by interpolation matrices -> F.interpolate(bilinear,
    align_corners=False), i.e. the ONNX Resize op a deployer's graph would hold;
  - the MoE layer (--moe sparse, default): the oracle evaluates every expert on every token; here
    each expert runs on the tokens routed to it (NonZero + Gather, then a scatter-add), so ONNX
    Runtime does the same multiply-adds as the runtime. --moe dense keeps the oracle's dense form
    (E/k times the expert work).
Input "images" [1, 3, H, W] float32, output "out" [1, C, H, W].
"""

import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "oracle"))
import m3vit_ref as ref  # noqa: E402
import safetensors_np as st  # noqa: E402


def conv_traceable(x, P, prefix, stride=1, padding=None):
    w = P[prefix + ".weight"]
    pad = int(w.shape[-1]) // 2 if padding is None else padding  # a Python int, not a traced size
    return F.conv2d(x, w, P[prefix + ".bias"], stride=stride, padding=pad)


def topk_traceable(p, k):
    values, idx = torch.topk(p, k, dim=1)
    return idx, values


def resize_traceable(x, h, w):
    if x.shape[-2] == h and x.shape[-1] == w:
        return x
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)


def moe_sparse(x, x_gate, P, prefix, w_gate, cfg, training):
    """out = Σ_j w_j·expert_{idx_j}(x), one expert at a time over the tokens routed to it."""
    r = ref.route(x_gate, w_gate, cfg.k, training, cfg.noise_std)
    p = prefix + "mlp.experts."
    W1, b1 = P[p + "htoh4.weight"], P[p + "htoh4.bias"]
    W2, b2 = P[p + "h4toh.weight"], P[p + "h4toh.bias"]
    out = torch.zeros_like(x)
    for e in range(cfg.E):
        we = (r["w"] * (r["idx"] == e).to(x.dtype)).sum(dim=1)  # [n] gate weight, 0 if not routed
        sel = torch.nonzero(we > 0).squeeze(1)                 # token queue of expert e
        h = ref.gelu(x[sel] @ W1[e].t() + b1[e])
        y = (h @ W2[e].t() + b2[e]) * we[sel].unsqueeze(1)
        out = out.index_add(0, sel, y)
    return out, r


class ForwardTask(torch.nn.Module):
    def __init__(self, P, cfg, task):
        super().__init__()
        self.cfg, self.task = cfg, task
        self.names = sorted(P)
        for i, k in enumerate(self.names):  # registered so that ONNX stores them as initializers
            self.register_buffer(f"p{i}", P[k])

    def forward(self, images):
        P = {k: getattr(self, f"p{i}") for i, k in enumerate(self.names)}
        return ref.forward_task(images, P, self.cfg, self.task)


def main():
    ap = argparse.ArgumentParser(description="export one task of an M³ViT model to ONNX")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--task", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--moe", choices=("sparse", "dense"), default="sparse")
    a = ap.parse_args()
    tensors, meta = st.load(a.weights)
    cfg = ref.Config(json.loads(meta["m3vit_config"]))
    if a.task not in cfg.tasks:
        sys.exit(f"export_onnx: unknown task '{a.task}' (model has {', '.join(cfg.tasks)})")
    P = {k: torch.from_numpy(v).to(torch.float32) for k, v in tensors.items() if v.dtype.kind == "f"}
    ref.topk_desc = topk_traceable
    ref.conv = conv_traceable
    ref.resize_bilinear = resize_traceable
    if a.moe == "sparse":
        ref.moe_layer = moe_sparse
    model = ForwardTask(P, cfg, cfg.tasks.index(a.task)).eval()
    x = torch.randn(1, 3, cfg.img_h, cfg.img_w)
    with torch.no_grad():
        torch.onnx.export(model, (x,), a.out, input_names=["images"], output_names=["out"], opset_version=17,
                          do_constant_folding=True)
    print(f"wrote {a.out} ({os.path.getsize(a.out) / 1e6:.1f} MB, moe {a.moe})")


if __name__ == "__main__":
    main()
