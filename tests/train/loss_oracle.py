"""Oracle for tests/train/test_losses.cpp: the authors' losses (loss_functions.py) written with torch.nn.functional
primitives (cross_entropy, binary_cross_entropy_with_logits, boolean indexing), which differ from the
C++ implementation's primitives, plus their input gradients by autograd.

usage: loss_oracle.py inputs.safetensors outputs.safetensors
inputs:  <case>.x (prediction), <case>.y (label) for the cases ce, ce_void, edge, sal, normals, depth
outputs: <case>.loss (scalar, float64) and <case>.grad (d loss / d x)
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import safetensors_np  # noqa: E402


def ce(x, y):
    # mean over non-ignored pixels; label [B,1,H,W] -> [B,H,W]
    return F.cross_entropy(x, y[:, 0].long(), ignore_index=255)


def balanced_bce(x, y, w):
    t = (y >= 0.5).double()
    per = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    if w is None:
        w = (1 - t).sum() / t.numel()  # fraction of negatives over the whole batch
    return (w * (per * t).sum() + (1 - w) * (per * (1 - t)).sum()) / t.numel()


def normals(x, y):
    unit = x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + 1e-12)
    m = y != 255
    return (unit[m] - y[m]).abs().sum() / max(int(m.sum()), 1e-6)


def depth(x, y):
    m = y != 255
    return (x[m] - y[m]).abs().mean()


CASES = {
    "ce": ce,
    "ce_void": ce,
    "edge": lambda x, y: balanced_bce(x, y, 0.95),
    "sal": lambda x, y: balanced_bce(x, y, None),
    "normals": normals,
    "depth": depth,
}


def main():
    inp, _ = safetensors_np.load(sys.argv[1])
    out = {}
    for name, fn in CASES.items():
        if name + ".x" not in inp:
            continue
        x = torch.tensor(inp[name + ".x"], dtype=torch.float64, requires_grad=True)
        y = torch.tensor(inp[name + ".y"], dtype=torch.float64)
        loss = fn(x, y)
        if torch.isfinite(loss):
            loss.backward()
            grad = x.grad.numpy()
        else:
            grad = np.zeros_like(inp[name + ".x"], dtype=np.float64)
        out[name + ".loss"] = np.array(loss.item(), dtype=np.float64)
        out[name + ".grad"] = grad.astype(np.float64)
    safetensors_np.save(sys.argv[2], out)


if __name__ == "__main__":
    main()
