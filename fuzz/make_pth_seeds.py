#!/usr/bin/python3
"""Seeds for fuzz_pth: small state dicts written by torch.save (Debian's python3-torch), in the zip
format and the legacy one, with the shapes and dtypes the authors' checkpoints hold.
Usage: /usr/bin/python3 fuzz/make_pth_seeds.py OUT_DIR   (scripts/fuzz.sh runs it)
"""
import collections
import os
import sys

import torch

out = os.path.join(sys.argv[1], "pth")
os.makedirs(out, exist_ok=True)
g = torch.Generator().manual_seed(1)
sd = collections.OrderedDict()
sd["blocks.1.mlp.experts.htoh4.weight"] = torch.randn(2, 4, 3, generator=g)
sd["head.bias"] = torch.randn(3, generator=g).double()
sd["bn.num_batches_tracked"] = torch.tensor(7)
sd["mask"] = torch.tensor([True, False])
sd["half"] = torch.randn(2, 2, generator=g).half()
sd["view"] = torch.arange(12.0).reshape(3, 4)[:, 1:3]  # a strided view of a shared storage
torch.save(sd, os.path.join(out, "state_dict.pth"))
torch.save({"model": sd, "epoch": 3}, os.path.join(out, "nested.pth"))
torch.save(sd, os.path.join(out, "legacy.pth"), _use_new_zipfile_serialization=False)
