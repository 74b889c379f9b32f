#!/usr/bin/python3
"""Runs the PyTorch reference model (m3vit_ref.py) on exported weights and writes every named output.

Usage (Debian's interpreter, which has torch):
  /usr/bin/python3 tests/oracle/run_oracle.py --weights W.safetensors --input X.safetensors \
      --out O.safetensors [--mode eval|train] [--task-trace] [--grad] [--dtype float64|float32]

W: a model export (docs/ARCHITECTURE.md "Model export"): the authors' state-dict keys, and
   __metadata__["m3vit_config"] = config_to_json(cfg). Bound strictly: every key, exact shapes.
X: a tensor "images" [B, in_chans, H, W] at the config's input size.
O (all F32 unless noted):
  out.{name}                      forward_all outputs; name = task, or tam_level{L}_{task} (train mode)
  task.{task}                     forward_task(images, t)
  aux_loss [1]                    train mode: Σ over every router call of forward_all of cv²(imp)+cv²(load)
  with --task-trace, from forward_task of each task:
  trace.{task}.block{i}           [B, N, d] output of block i
  trace.{task}.router_logits{j}   [B·N, E] for the j-th MoE layer (j counts MoE layers only)
  trace.{task}.router_probs{j}    [B·N, E]
  trace.{task}.topk_idx{j}        I64 [B·N, k], descending probability
  trace.{task}.topk_w{j}          [B·N, k], kept probabilities, not renormalised
  trace.{task}.head_in            [B, d, h, w] after the head's LayerNorm
  with --grad, one step of gradients of the scalar
      L = Σ_{name in forward_all} mean(out_name²) + aux   (aux as above, 0 in eval)
  grad_loss [1]                   L
  grad.{param}                    dL/dparam for every parameter (BN running statistics excluded)
Exit status 2 with one line on stderr for bad input (missing file, key or shape).
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import m3vit_ref as ref  # noqa: E402
import safetensors_np as st  # noqa: E402


def load_model(path, dtype):
    tensors, meta = st.load(path)
    if "m3vit_config" not in meta:
        raise KeyError(f"{path}: __metadata__ has no 'm3vit_config'")
    cfg = ref.Config(json.loads(meta["m3vit_config"]))
    ref.check_params(cfg, tensors, source=path)
    P = {}
    for k, v in tensors.items():
        t = torch.from_numpy(v)
        P[k] = t.to(dtype) if t.is_floating_point() else t
    return cfg, P


def load_images(path, cfg, dtype):
    tensors, _ = st.load(path)
    if "images" not in tensors:
        raise KeyError(f"{path}: no tensor 'images'")
    x = tensors["images"]
    if x.ndim != 4 or list(x.shape[1:]) != [cfg.in_chans, cfg.img_h, cfg.img_w]:
        raise ValueError(f"{path}: 'images' expected [B, {cfg.in_chans}, {cfg.img_h}, {cfg.img_w}], "
                         f"got {list(x.shape)}")
    return torch.from_numpy(x.astype(np.float64)).to(dtype)


def is_buffer(name):
    return name.endswith(("running_mean", "running_var", "num_batches_tracked"))


def grad_step(images, P, cfg, training):
    """Gradients of Σ mean(out²) + aux through forward_all: a fixed scalar of every output, so the
    backward pass of every layer (the dense MoE's, the router's softmax and top-k gather, the aux
    loss's importance term, BN on batch statistics) is compared with the C++ autograd."""
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in P.items()
              if not is_buffer(k) and v.is_floating_point()}
    Q = dict(P)
    Q.update(leaves)
    with torch.enable_grad():
        outs, aux = ref.forward_all(images, Q, cfg, training)
        loss = aux
        for y in outs.values():
            loss = loss + (y * y).mean()
        grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    res = {"grad_loss": f32(loss.detach().reshape(1))}
    for (k, v), g in zip(leaves.items(), grads):
        res[f"grad.{k}"] = f32(g if g is not None else torch.zeros_like(v))
    return res


def f32(t):
    return t.detach().to(torch.float32).contiguous().numpy()


def run(args):
    dtype = {"float64": torch.float64, "float32": torch.float32}[args.dtype]
    cfg, P = load_model(args.weights, dtype)
    images = load_images(args.input, cfg, dtype)
    training = args.mode == "train"
    out = {}
    with torch.no_grad():
        outs, aux = ref.forward_all(images, P, cfg, training)
        for name, y in outs.items():
            out[f"out.{name}"] = f32(y)
        if training:
            out["aux_loss"] = f32(aux.reshape(1))
        for t, task in enumerate(cfg.tasks):
            trace = ref.new_trace() if args.task_trace else None
            out[f"task.{task}"] = f32(ref.forward_task(images, P, cfg, t, training, trace))
            if trace is None:
                continue
            p = f"trace.{task}."
            for i, b in enumerate(trace["block"]):
                out[p + f"block{i}"] = f32(b)
            for j in range(len(trace["logits"])):
                out[p + f"router_logits{j}"] = f32(trace["logits"][j])
                out[p + f"router_probs{j}"] = f32(trace["probs"][j])
                out[p + f"topk_idx{j}"] = trace["idx"][j].to(torch.int64).contiguous().numpy()
                out[p + f"topk_w{j}"] = f32(trace["w"][j])
            out[p + "head_in"] = f32(trace["head_in"])
    if args.grad:
        out.update(grad_step(images, P, cfg, training))
    st.save(args.out, out, {"mode": args.mode, "dtype": args.dtype})


def main():
    ap = argparse.ArgumentParser(description="M³ViT PyTorch parity oracle")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", choices=("eval", "train"), default="eval")
    ap.add_argument("--task-trace", action="store_true")
    ap.add_argument("--grad", action="store_true", help="also write one step of parameter gradients")
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    args = ap.parse_args()
    try:
        run(args)
    except (OSError, KeyError, ValueError, st.SafeTensorsError, NotImplementedError) as e:
        print(f"run_oracle: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
