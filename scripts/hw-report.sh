#!/usr/bin/env bash
# `make hw-report`: regenerates docs/HARDWARE.md and its SVG plots (docs/img/hw_*.svg) with the
# hardware model, and configs/hw/{zcu104,zcu102}.yaml from the presets.
#   bash scripts/hw-report.sh BUILD_DIR [extra m3vit hw options, e.g. --trace out/trace.safetensors]
# The fixed-point check runs on Edge-MoE's model (ViT-T, 128x256, 129 tokens), which the emulation
# handles in seconds; pass --weights W (an export of a trained model) to measure it on real weights.
set -euo pipefail

build="${1:?usage: hw-report.sh BUILD_DIR [m3vit hw options]}"
shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
m3vit="$build/m3vit"
[[ -x "$m3vit" ]] || m3vit="$root/$build/m3vit"
[[ -x "$m3vit" ]] || { echo "hw-report: no m3vit binary in $build (run make build first)" >&2; exit 2; }

cd "$root"
mkdir -p docs/img configs/hw
"$m3vit" hw --config configs/cityscapes_vitt_moe16.yaml --hw zcu102 --strategy reordered --dump-hw configs/hw/zcu102.yaml >/dev/null
"$m3vit" hw --config configs/cityscapes_vitt_moe16.yaml --hw zcu104 --strategy reordered --dump-hw configs/hw/zcu104.yaml >/dev/null
"$m3vit" hw --config configs/cityscapes_vitt_moe16.yaml --hw zcu102 --fx-images 2 --synthetic 2 --fx-metrics 4 \
  --report docs/HARDWARE.md --img-dir docs/img "$@"
echo "hw-report: wrote docs/HARDWARE.md, docs/img/hw_*.svg, configs/hw/zcu104.yaml, configs/hw/zcu102.yaml"
