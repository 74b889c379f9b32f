"""Compares two model files tensor by tensor: the same names and shapes, every value within a bound.

  /usr/bin/python3 compare_weights.py A.safetensors B.safetensors [--atol 1e-5] [--rtol 0]

Prints the largest difference and the tensor that has it; exits 1 when a value differs by more than
atol + rtol·|b|, or when the files hold different tensors. Integer tensors (BatchNorm's
num_batches_tracked) must be equal. Used by the data-parallel tests (tests/cli/train_distributed.sh).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import safetensors_np  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("--rtol", type=float, default=0.0)
    args = ap.parse_args()
    a, _ = safetensors_np.load(args.a)
    b, _ = safetensors_np.load(args.b)
    if sorted(a) != sorted(b):
        only = sorted(set(a) ^ set(b))
        print(f"different tensors: {only[:5]}")
        return 1
    worst, worst_name, bad = 0.0, "", []
    for name in sorted(a):
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.shape != y.shape:
            bad.append(f"{name}: shape {x.shape} vs {y.shape}")
            continue
        if not np.issubdtype(x.dtype, np.floating):
            if not np.array_equal(x, y):
                bad.append(f"{name}: integers differ")
            continue
        d = np.abs(x.astype(np.float64) - y.astype(np.float64))
        if d.size and d.max() > worst:
            worst, worst_name = float(d.max()), name
        if np.any(d > args.atol + args.rtol * np.abs(y)):
            bad.append(f"{name}: max |diff| {d.max():.3g}")
    print(f"{len(a)} tensors, largest |diff| {worst:.3g} ({worst_name})")
    for line in bad[:10]:
        print("  " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
