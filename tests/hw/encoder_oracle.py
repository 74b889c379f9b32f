#!/usr/bin/python3
"""The encoder of the PyTorch reference model (tests/oracle/m3vit_ref.py, float64) on the encoder
weights the hardware path uses, for tests/hw/test_ref_encoder_oracle.cpp.

Usage: /usr/bin/python3 tests/hw/encoder_oracle.py WEIGHTS INPUT OUT TASK
  WEIGHTS  safetensors with the authors' backbone keys and __metadata__["m3vit_config"]
  INPUT    safetensors with "images" [1, 3, H, W], already normalised
  OUT      written: "out" [N, d] float32 (last block), "topk_idx{j}" int32 [N, k] per MoE layer
Only the backbone is evaluated, so the file needs no head or TAM tensors.
"""

import json
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "oracle"))
import m3vit_ref as ref  # noqa: E402
import safetensors_np as st  # noqa: E402


def main():
    weights, inp, out, task = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    tensors, meta = st.load(weights)
    cfg = ref.Config(json.loads(meta["m3vit_config"]))
    P = {k: torch.from_numpy(v.astype(np.float64)) for k, v in tensors.items()}
    x = torch.from_numpy(st.load(inp)[0]["images"].astype(np.float64))
    trace = {"logits": [], "probs": [], "idx": [], "w": [], "block": []}
    with torch.no_grad():
        y, _ = ref.backbone(x, P, cfg, task, training=False, trace=trace)
    result = {"out": y[0].numpy().astype(np.float32)}
    for j, idx in enumerate(trace["idx"]):
        result[f"topk_idx{j}"] = idx.numpy().astype(np.int32)
    st.save(out, result)


if __name__ == "__main__":
    main()
