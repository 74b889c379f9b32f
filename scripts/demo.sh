#!/usr/bin/env bash
# `make demo`: the MAC/parameter table of the paper's PASCAL-Context model, then `m3vit demo`: a small
# M³ViT trained for about 5 minutes on the built-in synthetic scenes (2 threads), scored on every task,
# single-task inference per task, router traces, and an HTML report (out/demo/report.html).
# Usage: scripts/demo.sh BUILD_DIR [OUT_DIR] [MINUTES]
set -euo pipefail

build=${1:?usage: scripts/demo.sh BUILD_DIR [OUT_DIR] [MINUTES]}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${2:-out/demo}
minutes=${3:-5}
m3vit="$build/m3vit"
[[ -x "$m3vit" ]] || { echo "demo: $m3vit not found; build it first (make)" >&2; exit 2; }

echo "== m3vit info: M³ViT ViT-S on PASCAL-Context (paper Table 1) =="
"$m3vit" info --config "$src/configs/pascal_vits_moe16.yaml"
echo

# libgomp's threads sleep instead of spinning while they wait: with 2 torch threads on 2 cores, any
# other busy process otherwise makes every parallel region's barrier many times slower.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
echo "== m3vit demo: train, evaluate, report (about $minutes minutes of training) =="
"$m3vit" demo --config "$src/configs/tiny_synthetic.yaml" --out "$out" --minutes "$minutes" --threads 2
