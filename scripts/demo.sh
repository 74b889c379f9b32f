#!/usr/bin/env bash
# Demo without training: the MAC/parameter table of the paper's PASCAL-Context model, then
# single-task inference of every task of the tiny synthetic model on the bundled sample image,
# with seeded random weights. One PNG (and the raw logits as .npy) per task under out/demo/.
# Usage: scripts/demo.sh BUILD_DIR [OUT_DIR]
set -euo pipefail

build=${1:?usage: scripts/demo.sh BUILD_DIR [OUT_DIR]}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${2:-out/demo}
m3vit="$build/m3vit"
[[ -x "$m3vit" ]] || { echo "demo: $m3vit not found; build it first (make)" >&2; exit 2; }
mkdir -p "$out"

echo "== m3vit info: M³ViT ViT-S on PASCAL-Context (paper Table 1) =="
"$m3vit" info --config "$src/configs/pascal_vits_moe16.yaml"

config="$src/configs/tiny_synthetic.yaml"
# The six tasks of configs/tiny_synthetic.yaml, in task order.
for task in semseg human_parts sal normals edge depth; do
  echo
  echo "== m3vit infer: $task =="
  "$m3vit" infer --config "$config" --task "$task" --image "$src/assets/sample.png" --seed 0 \
    --out "$out/$task.png" --save-logits "$out/$task.npy"
done
echo
echo "demo: pictures in $out/: $(cd "$out" && ls *.png | tr '\n' ' ')"
echo "demo: the weights are random (seed 0): the pictures show the pipeline, not a trained model."
