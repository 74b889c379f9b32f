#!/usr/bin/env bash
# Training-quality benchmark: M³ViT and the dense M-ViT baseline at initialisation and after the demo's
# training budget on the synthetic scenes (bench/train_quality.cpp). Writes docs/RESULTS.md and
# out/train-quality/results.json. Takes about 2 x the budget (default 5 minutes each).
#   scripts/train-quality.sh BUILD_DIR [MINUTES]
# M3VIT_TRAIN_QUALITY_STEPS=N trains exactly N steps instead of a time budget (reproduces a report).
set -euo pipefail
build=$(cd "${1:?usage: scripts/train-quality.sh BUILD_DIR [MINUTES]}" && pwd)
minutes=${2:-5}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$build/bench/train_quality"
[[ -x "$bin" ]] || { echo "train-quality: $bin not found; build it first (make)" >&2; exit 2; }
cd "$src"
# libgomp's threads sleep instead of spinning when they wait: with 2 torch threads on 2 cores, any other
# busy process otherwise makes the spinning barriers many times slower.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
budget=(--minutes "$minutes")
[[ -n "${M3VIT_TRAIN_QUALITY_STEPS:-}" ]] && budget=(--steps "$M3VIT_TRAIN_QUALITY_STEPS")
"$bin" --config configs/tiny_synthetic.yaml "${budget[@]}" --threads 2 --out out/train-quality --md docs/RESULTS.md
echo "train-quality: wrote docs/RESULTS.md and out/train-quality/results.json" >&2
