#!/usr/bin/env bash
# `make hw-report`: regenerates docs/HARDWARE.md and its SVG plots (docs/img/hw_*.svg) with the
# hardware model. The presets configs/hw/{zcu104,zcu102}.yaml are its input, edited by hand (each
# field a {value, source} mapping in the layout `m3vit hw --dump-hw` writes), not an output.
#   bash scripts/hw-report.sh BUILD_DIR [extra m3vit hw options, e.g. --trace out/trace.safetensors]
# The fixed-point check runs on Edge-MoE's model (ViT-T, 128x256, 129 tokens), which the emulation
# handles in seconds; pass --weights W (an export of a trained model) to measure it on real weights.
#
# Optional: the fixed-point encoder against fp32 on a trained model (the per-task metric change on
# the synthetic validation scenes), appended to docs/HARDWARE.md as section 11:
#   HW_FX_WEIGHTS=out/tiny/model.safetensors \
#   HW_FX_TRAIN_CMD="m3vit train --config configs/tiny_synthetic.yaml --steps 250 --threads 1 --seed 0" \
#   bash scripts/hw-report.sh BUILD_DIR
# HW_FX_CONFIG (default configs/tiny_synthetic.yaml) must be the config the export was trained with;
# HW_FX_IMAGES (default 64, the whole set) validation scenes, HW_FX_IMAGE_SEED (default 1, the config's
# data.synthetic_seed, so the scenes are the trainer's validation set), HW_FX_THREADS (default 1).
# Without HW_FX_WEIGHTS the section says how to produce it. With it, the section also compares the
# stored widths (a32w16, a16w16, a32w8, a16w8) and Edge-MoE's exact order of operations.
#
# Optional: trained routers for sections 1, 2 and 7 (the headline ratio under trained routing). The
# HW_FX_WEIGHTS model is traced, and so is a model of the paper's routing shape (1,025 tokens, 16
# experts, top-4; configs/pascal_routing_synthetic.yaml) trained by:
#   HW_ROUTING_WEIGHTS=out/prs/model.safetensors \
#   HW_ROUTING_TRAIN_CMD="m3vit train --config configs/pascal_routing_synthetic.yaml --steps 360 --threads 2 --seed 0" \
# HW_ROUTING_CONFIG (default configs/pascal_routing_synthetic.yaml) must be the config it was trained with.
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
# An existing file's absolute path (the script changes directory), or an error naming VAR.
absolute_file() {  # VAR PATH
  [[ -f "$2" ]] || { echo "hw-report: $1: no file $2" >&2; exit 2; }
  echo "$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
}
if [[ -n "$fx_weights" ]]; then
  fx_weights="$(absolute_file HW_FX_WEIGHTS "$fx_weights")"
  command -v jq >/dev/null || { echo "hw-report: HW_FX_WEIGHTS needs jq to read the results" >&2; exit 2; }
fi

routing_weights="${HW_ROUTING_WEIGHTS:-}"
routing_config="${HW_ROUTING_CONFIG:-configs/pascal_routing_synthetic.yaml}"
routing_train_cmd="${HW_ROUTING_TRAIN_CMD:-}"
[[ -n "$routing_weights" ]] && routing_weights="$(absolute_file HW_ROUTING_WEIGHTS "$routing_weights")"

cd "$root"
mkdir -p docs/img
section="$(mktemp)"
traces="$(mktemp -d)"
trap 'rm -rf "$section" "${section}".* "$traces"' EXIT

# Trained routers: trace each trained model's first task on 4 validation scenes.
trained=()
trace_trained() {  # CONFIG WEIGHTS TRAIN_CMD
  local out="$traces/$(basename "$1" .yaml).safetensors" task
  task="$("$m3vit" info --config "$1" | awk '$1 == "tasks" && !t { sub(/\(.*/, "", $2); t = $2 } END { print t }')"
  [[ -n "$task" ]] || { echo "hw-report: no tasks in $1" >&2; exit 2; }
  echo "hw-report: tracing $2 (task $task)"
  "$m3vit" trace --config "$1" --weights "$2" --task "$task" --synthetic 4 --image-seed 1 --threads "$fx_threads" \
    --out "$out" >/dev/null
  trained+=(--trained-trace "$out" --trained-note "Config \`$1\`, trained with \`${3:-(training command not given)}\`; traced with \`m3vit trace --config $1 --weights W --task $task --synthetic 4 --image-seed 1\` (4 of the trainer's validation scenes).")
}
[[ -n "$routing_weights" ]] && trace_trained "$routing_config" "$routing_weights" "$routing_train_cmd"
[[ -n "$fx_weights" ]] && trace_trained "$fx_config" "$fx_weights" "$fx_train_cmd"

"$m3vit" hw --config configs/cityscapes_vitt_moe16.yaml --hw zcu102 --fx-images 2 --synthetic 2 --fx-metrics 4 \
  --report docs/HARDWARE.md --img-dir docs/img ${trained[@]+"${trained[@]}"} "$@"

# Section 11: the trained-weights comparison (or how to run it).
{
  echo
  echo "## 11. Fixed-point encoder on trained weights"
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
    echo "with wrap-around and with saturation, at each stored width (--fx-format) and with Edge-MoE's order of operations (--fx-arith edge_moe)."
  fi
} >"$section"

if [[ -n "$fx_weights" ]]; then
  # One run per variant: NAME, then its m3vit hw options. The first is the preset's widths (Edge-MoE's
  # A32/W16) with our order of operations and the vendor default overflow (wrap-around).
  variants=(
    "a32w16 wrap|--fx-format a32w16"
    "a32w16 saturate|--fx-format a32w16 --saturate"
    "a32w16 wrap, Edge-MoE's arithmetic|--fx-format a32w16 --fx-arith edge_moe"
    "a16w16 wrap|--fx-format a16w16"
    "a32w8 wrap|--fx-format a32w8"
    "a16w8 wrap|--fx-format a16w8"
  )
  jsons=()
  for i in "${!variants[@]}"; do
    name="${variants[$i]%%|*}"
    read -r -a opts <<<"${variants[$i]#*|}"
    echo "hw-report: fixed point on $fx_weights ($name), $fx_images validation scenes"
    "$m3vit" hw --config "$fx_config" --hw zcu102 --strategy reordered --weights "$fx_weights" --threads "$fx_threads" \
      --fixed-point --fx-images "$fx_images" --synthetic "$fx_images" --image-seed "$fx_image_seed" \
      --fx-metrics "$fx_images" "${opts[@]}" --json "$section.$i.json" >"$section.$i.log"
    jsons+=("$section.$i.json")
  done
  # jq has no printf: fix(d) = d decimals, sci = 2 significant digits in e-notation.
  jq_fmt='def fix(d): (. * pow(10; d) | round) as $n | ($n | if . < 0 then -. else . end) as $a
            | (if $n < 0 then "-" else "" end) + ($a / pow(10; d) | floor | tostring)
              + (if d > 0 then "." + ("0000000000" + ($a % pow(10; d) | tostring) | .[-d:]) else "" end);
          def sci: if . == 0 then "0" else (fabs | log10 | floor) as $e0
            | ($e0 + (if (fabs / pow(10; $e0)) >= 9.95 then 1 else 0 end)) as $e
            | (. / pow(10; $e) | fix(1)) + "e" + ($e | tostring) end;
          def sgn: if . >= 0 then "+" + fix(4) else fix(4) end;
          '
  shown_weights="$fx_weights"
  [[ "$fx_weights" == "$root"/* ]] && shown_weights="${fx_weights#"$root"/}"
  names_json="$(for v in "${variants[@]}"; do printf '%s\n' "${v%%|*}"; done | jq -R . | jq -s .)"
  {
    echo "Weights \`$shown_weights\` (config \`$fx_config\`), trained with"
    echo
    echo '```'
    echo "${fx_train_cmd:-(training command not given: set HW_FX_TRAIN_CMD)}"
    echo '```'
    echo
    echo "Measured with \`m3vit hw --config $fx_config --weights W --fixed-point --fx-images $fx_images --synthetic $fx_images"
    echo "--image-seed $fx_image_seed --fx-metrics $fx_images --fx-format F [--saturate] [--fx-arith edge_moe]\`: the first"
    echo "$fx_images scenes of the synthetic validation split (scene seed $fx_image_seed, the trainer's validation set), every"
    echo "task's own routers for the metrics and the first task's routers for the encoder error. The heads run in fp32 on"
    echo "either encoder's tokens. Stored widths: a32 = activations ap_fixed<32,10> (Edge-MoE's fm_t), a16 = <16,6>"
    echo "with a <48,24> accumulator (the DSP48E2's); w16 = linear weights <16,2> (Edge-MoE's), w8 = <8,1>. Edge-MoE's"
    echo "arithmetic follows its kernels' order of operations and truncations (HW_MODEL.md, \"The fixed-point encoder\")."
    echo
    echo "### Encoder error"
    echo
    echo "| widths, overflow | images | MSE | reference mean square | relative MSE | max \\|error\\| | routing agreement | overflow events (kernels) | weight conversion overflows |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for i in "${!variants[@]}"; do
      jq -r --arg name "${variants[$i]%%|*}" "$jq_fmt"'.fixed_point[0] as $r
        | ([$r.overflows_per_layer[] | to_entries[] | select(.key != "layer") | .value] | add) as $ov
        | "| \($name) | \($r.images) | \($r.mse | sci) | \($r.reference_mean_square | fix(3)) | \($r.relative_mse | sci) | \($r.max_abs_error | fix(3)) | \($r.routing_agreement * 100 | fix(2))% | \($ov) | \($r.conversion_overflows) |"' \
        "$section.$i.json"
    done
    echo
    jq -r "$jq_fmt"'.fixed_point[0] as $r | $r.activation_max_abs as $a
      | "Measured on the fp32 reference over the same scenes, the largest |value| of each stored activation: tokens \($a.tokens | fix(2)), LayerNorm outputs \($a.normed | fix(2)), Q/K/V \($a.qkv | fix(2)), A·V \($a.attention | fix(2)), GELU outputs \($a.hidden | fix(2)), linear outputs \($a.linear_out | fix(2)). A signed format needs \($r.activation_integer_bits_needed) integer bits (sign included) to hold them all; a16 stores <16,6> (up to 32). The largest linear, expert or router weight is \($r.weight_max_abs | fix(3)), needing \($r.weight_integer_bits_needed) integer bits; w16 has 2, w8 has 1 (up to 1)."' \
      "$section.0.json"
    echo
    echo "### Per-task metric change"
    echo
    echo "Each fixed-point column gives the metric and, in brackets, its change from fp32."
    echo
    jq -r -n --argjson names "$names_json" '
      "| task | metric | images | fp32 | " + ($names | join(" | ")) + " |",
      "|---|---|---:|---:|" + ([$names[] | "---:"] | join("|")) + "|"'
    jq -r -s --argjson names "$names_json" "$jq_fmt"'
      . as $runs | $runs[0].fixed_point_metrics as $m0
      | range(0; $m0 | length) as $t | $m0[$t] as $m
      | "| \($m.task) | \($m.metric) | \($m.images) | \($m.fp32 | fix(4)) | "
        + ([$runs[] | .fixed_point_metrics[$t] | "\(.fixed_point | fix(4)) (\(.fixed_point - .fp32 | sgn))"] | join(" | ")) + " |"' \
      "${jsons[@]}"
    echo
    echo "Edge is not scored (the authors leave it out of Δm). mIoU is a fraction, the normals' mean angle in"
    echo "degrees (lower is better), depth RMSE in metres (lower is better)."
    echo
    echo "Largest change of any task metric, relative to its fp32 value, and the routing agreement:"
    echo
    for i in "${!variants[@]}"; do
      jq -r --arg name "${variants[$i]%%|*}" "$jq_fmt"'
        ([.fixed_point_metrics[] | ((.fixed_point - .fp32) / .fp32 | fabs)] | max) as $m
        | "* \($name): \($m * 100 | fix(2))% (routing \(.fixed_point[0].routing_agreement * 100 | fix(2))%)"' "$section.$i.json"
    done
    echo
    echo "16-bit activations halve the on-chip activations and let every activation operand fit the DSP48E2's"
    echo "18-bit port, which the \`zcu104\` preset needs to fit its DSPs (section 9). 8-bit weights would halve the"
    echo "weight buffers again; the routing agreement above is what one fixed <8,1> format costs, and per-tensor"
    echo "scales, which this encoder does not model, would be the way to recover it."
  } >>"$section"
fi
cat "$section" >>docs/HARDWARE.md
echo "hw-report: wrote docs/HARDWARE.md, docs/img/hw_*.svg"
