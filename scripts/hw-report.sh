#!/usr/bin/env bash
# `make hw-report`: regenerates docs/HARDWARE.md and its SVG plots (docs/img/hw_*.svg) with the
# hardware model. The presets configs/hw/{zcu104,zcu102}.yaml are its input, edited by hand (each
# field a {value, source} mapping in the layout `m3vit hw --dump-hw` writes), not an output.
#   bash scripts/hw-report.sh BUILD_DIR [extra m3vit hw options, e.g. --trace out/trace.safetensors]
# The fixed-point check runs on Edge-MoE's model (ViT-T, 128x256, 129 tokens), which the emulation
# handles in seconds; pass --weights W (an export of a trained model) to measure it on real weights.
#
# Optional: the fixed-point encoder against fp32 on a trained model (the per-task metric change on
# the synthetic validation scenes), appended to docs/HARDWARE.md as section 10:
#   HW_FX_WEIGHTS=out/tiny/model.safetensors \
#   HW_FX_TRAIN_CMD="m3vit train --config configs/tiny_synthetic.yaml --steps 250 --threads 1 --seed 0" \
#   bash scripts/hw-report.sh BUILD_DIR
# HW_FX_CONFIG (default configs/tiny_synthetic.yaml) must be the config the export was trained with;
# HW_FX_IMAGES (default 64, the whole set) validation scenes, HW_FX_IMAGE_SEED (default 1, the config's
# data.synthetic_seed, so the scenes are the trainer's validation set), HW_FX_THREADS (default 1).
# Without HW_FX_WEIGHTS the section says how to produce it.
set -euo pipefail

build="${1:?usage: hw-report.sh BUILD_DIR [m3vit hw options]}"
shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
m3vit="$build/m3vit"
[[ -x "$m3vit" ]] || m3vit="$root/$build/m3vit"
[[ -x "$m3vit" ]] || { echo "hw-report: no m3vit binary in $build (run make build first)" >&2; exit 2; }
m3vit="$(cd "$(dirname "$m3vit")" && pwd)/$(basename "$m3vit")"

fx_weights="${HW_FX_WEIGHTS:-}"
fx_config="${HW_FX_CONFIG:-configs/tiny_synthetic.yaml}"
fx_images="${HW_FX_IMAGES:-64}"
fx_image_seed="${HW_FX_IMAGE_SEED:-1}"
fx_threads="${HW_FX_THREADS:-1}"
fx_train_cmd="${HW_FX_TRAIN_CMD:-}"
if [[ -n "$fx_weights" ]]; then
  [[ -f "$fx_weights" ]] || { echo "hw-report: HW_FX_WEIGHTS: no file $fx_weights" >&2; exit 2; }
  fx_weights="$(cd "$(dirname "$fx_weights")" && pwd)/$(basename "$fx_weights")"
  command -v jq >/dev/null || { echo "hw-report: HW_FX_WEIGHTS needs jq to read the results" >&2; exit 2; }
fi

cd "$root"
mkdir -p docs/img
"$m3vit" hw --config configs/cityscapes_vitt_moe16.yaml --hw zcu102 --fx-images 2 --synthetic 2 --fx-metrics 4 \
  --report docs/HARDWARE.md --img-dir docs/img "$@"

# Section 10: the trained-weights comparison (or how to run it).
section="$(mktemp)"
trap 'rm -f "$section" "${section}".*' EXIT
{
  echo
  echo "## 10. Fixed-point encoder on trained weights"
  echo
  if [[ -z "$fx_weights" ]]; then
    echo "Not run: this needs a trained export. Train one and pass it to this script:"
    echo
    echo '```'
    echo "m3vit train --config configs/tiny_synthetic.yaml --steps 250 --threads 1 --seed 0 --out out/tiny"
    echo "HW_FX_WEIGHTS=out/tiny/model.safetensors HW_FX_TRAIN_CMD=\"m3vit train ... (as above)\" \\"
    echo "  bash scripts/hw-report.sh BUILD_DIR"
    echo '```'
    echo
    echo "which runs \`m3vit hw --config configs/tiny_synthetic.yaml --weights W --fixed-point --fx-metrics N --image-seed 1\`"
    echo "with wrap-around and with saturation."
  fi
} >"$section"

if [[ -n "$fx_weights" ]]; then
  for mode in wrap saturate; do
    extra=()
    [[ "$mode" == saturate ]] && extra=(--saturate)
    echo "hw-report: fixed point on $fx_weights ($mode), $fx_images validation scenes"
    "$m3vit" hw --config "$fx_config" --hw zcu102 --strategy reordered --weights "$fx_weights" --threads "$fx_threads" \
      --fixed-point --fx-images "$fx_images" --synthetic "$fx_images" --image-seed "$fx_image_seed" \
      --fx-metrics "$fx_images" ${extra[@]+"${extra[@]}"} --json "$section.$mode.json" >"$section.$mode.log"
  done
  # jq has no printf: fix(d) = d decimals, sci = 2 significant digits in e-notation.
  jq_fmt='def fix(d): (. * pow(10; d) | round) as $n | ($n | if . < 0 then -. else . end) as $a
            | (if $n < 0 then "-" else "" end) + ($a / pow(10; d) | floor | tostring)
              + (if d > 0 then "." + ("0000000000" + ($a % pow(10; d) | tostring) | .[-d:]) else "" end);
          def sci: if . == 0 then "0" else (fabs | log10 | floor) as $e0
            | ($e0 + (if (fabs / pow(10; $e0)) >= 9.95 then 1 else 0 end)) as $e
            | (. / pow(10; $e) | fix(1)) + "e" + ($e | tostring) end;
          '
  shown_weights="$fx_weights"
  [[ "$fx_weights" == "$root"/* ]] && shown_weights="${fx_weights#"$root"/}"
  {
    echo "Weights \`$shown_weights\` (config \`$fx_config\`), trained with"
    echo
    echo '```'
    echo "${fx_train_cmd:-(training command not given: set HW_FX_TRAIN_CMD)}"
    echo '```'
    echo
    echo "Measured with \`m3vit hw --config $fx_config --weights W --fixed-point --fx-images $fx_images --synthetic $fx_images"
    echo "--image-seed $fx_image_seed --fx-metrics $fx_images [--saturate]\`: the first $fx_images scenes of the synthetic validation"
    echo "split (scene seed $fx_image_seed, the trainer's validation set), every task's own routers for the metrics and"
    echo "the first task's routers for the encoder error. The heads run in fp32 on either encoder's tokens."
    echo
    echo "### Encoder error"
    echo
    echo "| overflow | images | MSE | reference mean square | relative MSE | max \\|error\\| | routing agreement | overflow events (kernels) | weight conversion overflows |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for mode in wrap saturate; do
      jq -r "$jq_fmt"'.fixed_point[0] as $r
        | ([$r.overflows_per_layer[] | to_entries[] | select(.key != "layer") | .value] | add) as $ov
        | "| \($r.overflow_mode) | \($r.images) | \($r.mse | sci) | \($r.reference_mean_square | fix(3)) | \($r.relative_mse | sci) | \($r.max_abs_error | fix(3)) | \($r.routing_agreement * 100 | fix(2))% | \($ov) | \($r.conversion_overflows) |"' \
        "$section.$mode.json"
    done
    echo
    echo "### Per-task metric change"
    echo
    echo "| task | metric | images | fp32 | fixed point (wrap) | change | fixed point (saturate) | change |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    jq -r --slurpfile s "$section.saturate.json" "$jq_fmt"'
      def sgn: if . >= 0 then "+" + fix(4) else fix(4) end;
      .fixed_point_metrics as $w | ($s[0].fixed_point_metrics) as $t
      | range(0; $w | length) as $i | $w[$i] as $m | $t[$i] as $n
      | "| \($m.task) | \($m.metric) | \($m.images) | \($m.fp32 | fix(4)) | \($m.fixed_point | fix(4)) | \($m.fixed_point - $m.fp32 | sgn) | \($n.fixed_point | fix(4)) | \($n.fixed_point - $n.fp32 | sgn) |"' \
      "$section.wrap.json"
    echo
    echo "Edge is not scored (the authors leave it out of Δm). mIoU is a fraction, the normals' mean angle in"
    echo "degrees (lower is better), depth RMSE in metres (lower is better)."
  } >>"$section"
fi
cat "$section" >>docs/HARDWARE.md
echo "hw-report: wrote docs/HARDWARE.md, docs/img/hw_*.svg"
