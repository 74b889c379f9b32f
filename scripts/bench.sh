#!/usr/bin/env bash
# `make bench`: runs the benchmarks (bench/) and writes docs/BENCHMARKS.md.
#
#   scripts/bench.sh BUILD_DIR [OUT_MD]
#
# Every section is one function that prints Markdown; a failing section becomes a note in the report
# instead of stopping the others. Other parts of the project add sections without editing this file:
# every scripts/bench.d/*.sh is run as `bash script BUILD_DIR` and its stdout appended (in name order).
# Scratch files (synthetic exports, the ONNX model, a short training run for the "trained weights"
# cases, npm's onnxruntime-node) live under BUILD_DIR/bench-data and are reused by later runs; the
# memory section's exports of the paper config are written afresh and removed.
# Settings: M3VIT_BENCH_THREADS (default 2), M3VIT_BENCH_REPS (default 3),
# M3VIT_BENCH_LATENCY_REPS (default 7: the single-task latency table, whose bf16 / fp32 ratios carry
# goals; this shared machine's neighbours move single runs by 10-20%), OMP_WAIT_POLICY (default passive),
# M3VIT_TRAINED_MODEL (an export to use as the trained model instead of training one),
# M3VIT_LONG_TRAINED_MODEL (the same for the model trained at least 20 minutes).
set -euo pipefail

build=$(cd "${1:?usage: scripts/bench.sh BUILD_DIR [OUT_MD]}" && pwd)
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${2:-$src/docs/BENCHMARKS.md}
threads=${M3VIT_BENCH_THREADS:-2}
# Idle OpenMP threads sleep instead of spinning (as `make demo` runs): on a 2-core machine a spinning
# thread takes a core from the weight ring's reader thread and from libtorch's own pool.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
reps=${M3VIT_BENCH_REPS:-3}
latency_reps=${M3VIT_BENCH_LATENCY_REPS:-7}
data="$build/bench-data"
mkdir -p "$data"
cd "$src"

log() { echo "bench: $*" >&2; }

# ---- sections -----------------------------------------------------------------------------------

section_header() {
  local cpu mem
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
  cat <<MD
# Benchmarks

Written by \`scripts/bench.sh\` (\`make bench\`) on $(date -u '+%Y-%m-%d %H:%M UTC'), commit
$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown). Do not edit by hand.

| machine | |
|---|---|
| CPU | $cpu |
| hardware threads | $(nproc) |
| memory | $mem |
| threads used | $threads (OpenMP for the runtime, \`at::set_num_threads\` for libtorch) |
| OPENBLAS_CORETYPE | ${OPENBLAS_CORETYPE:-(unset)} |
| OPENBLAS_L2_SIZE | ${OPENBLAS_L2_SIZE:-(unset)} |
| OMP_WAIT_POLICY | $OMP_WAIT_POLICY |
| load average at start | $(cut -d' ' -f1-3 /proc/loadavg) |

$("$build/bench/bench_latency" --peak-table --threads "$threads")
FLOPs are counted as 2 × the multiply-adds of core/flops.h: matmuls and convolutions, only the k
experts a token is routed to; elementwise work is not counted. Latencies are wall clock (no perf).
Where the machine was shared with other work while measuring, single runs vary; every comparison
below is measured side by side in one process with repetitions interleaved, so its ratio is the
robust number.

MD
}

section_latency() {
  "$build/bench/bench_latency" --threads "$threads" --reps "$latency_reps" --scratch "$data"
}

section_moe_dense() {
  local trained
  trained=$(trained_model || true)
  "$build/bench/runtime_moe_vs_dense" --threads "$threads" --reps 30 --scratch "$data" ${trained:+--trained "$trained"}
}

# The memory benchmark runs on what users run: the files `m3vit export` writes for the shipped paper
# config, E = 16 as shipped and the other E with --moe-experts (random weights from the seed: memory
# does not depend on their values). Written afresh each time (a few seconds each; the format may have
# changed since the last run), removed afterwards (E = 128 is 1.1 GB).
section_memory() {
  local cfg=configs/pascal_vits_moe16.yaml E models=() rc=0
  for E in 8 16 64 128; do
    local m="$data/memory_E$E.safetensors"
    if [[ $E -eq 16 ]]; then
      "$build/m3vit" export --config "$cfg" --out "$m" >&2 || return 1
    else
      "$build/m3vit" export --config "$cfg" --moe-experts "$E" --out "$m" >&2 || return 1
    fi
    models+=("$m")
  done
  # int8: the E = 16 export calibrated as a user would (2 synthetic scenes), where the CPU has VNNI.
  local int8=()
  if grep -q avx512_vnni /proc/cpuinfo; then
    "$build/m3vit" calibrate --model "$data/memory_E16.safetensors" --synthetic 2 \
      --out "$data/memory_E16_int8.safetensors" >&2 || return 1
    int8=(--int8 "$data/memory_E16_int8.safetensors")
  fi
  "$build/bench/runtime_memory" --config "$cfg" --threads "$threads" \
    --models "$(IFS=,; echo "${models[*]}")" "${int8[@]}" || rc=$?
  rm -f "${models[@]}" "$data/memory_E16_int8.safetensors"
  return $rc
}

section_onnx() {
  ensure_onnxruntime
  "$build/bench/runtime_onnx_peer" --threads "$threads" --reps "$reps" --scratch "$data" \
    --node-modules "$data/onnx/node_modules" --source-dir "$src"
}

section_task_switch() {
  "$build/bench/runtime_task_switch" --threads "$threads" --rounds "$reps" --scratch "$data"
}

section_bf16() {
  local trained long
  trained=$(trained_model || true)
  long=$(long_trained_model || true)
  "$build/bench/runtime_bf16_accuracy" --threads "$threads" ${trained:+--model "$trained"} ${long:+--long-model "$long"}
}

section_extensions() {
  local s
  for s in "$src"/scripts/bench.d/*.sh; do
    [[ -e "$s" ]] || continue
    log "section from $s"
    bash "$s" "$build"
  done
}

# ---- building blocks ------------------------------------------------------------------------------

# npm's onnxruntime-node into BUILD/bench-data/onnx (git-ignored with the build folder). The package's
# install script would fetch CUDA binaries and fail; the CPU binaries ship inside it, so it is skipped.
ensure_onnxruntime() {
  if [[ ! -d "$data/onnx/node_modules/onnxruntime-node" ]]; then
    log "installing onnxruntime-node into $data/onnx"
    mkdir -p "$data/onnx"
    (cd "$data/onnx" && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund onnxruntime-node >&2)
  fi
}

# A model trained on the synthetic data (configs/tiny_synthetic.yaml, 120 steps of 8 images) for the cases that
# need trained routers: printed path of its export, trained once and kept in BUILD/bench-data.
trained_model() {
  if [[ -n "${M3VIT_TRAINED_MODEL:-}" ]]; then
    echo "$M3VIT_TRAINED_MODEL"
    return 0
  fi
  local dir="$data/train-tiny"
  if [[ ! -f "$dir/best_model.safetensors" ]]; then
    log "training configs/tiny_synthetic.yaml for 120 steps (once; kept in $dir)"
    "$build/m3vit" train --config "$src/configs/tiny_synthetic.yaml" --steps 120 --eval-every 0 \
      --out "$dir" --overwrite --no-progress --threads "$threads" >&2 || return 1
  fi
  [[ -f "$dir/best_model.safetensors" ]] && echo "$dir/best_model.safetensors"
}

# A model trained for at least 20 minutes (configs/pascal_routing_synthetic.yaml: the paper's routing
# shape, 1,025 tokens, E16 top-4, 600 steps: 2.5-3.2 s a step on 2 Zen 4 cores, 25-32 min) for the accuracy
# of reduced precision on routers that have learnt something: printed path of its export, trained once
# and kept in BUILD/bench-data (again when the kept run ended at another step). The accuracy report reads
# the training time from the run's train_log.jsonl.
long_steps=600
long_trained_model() {
  if [[ -n "${M3VIT_LONG_TRAINED_MODEL:-}" ]]; then
    echo "$M3VIT_LONG_TRAINED_MODEL"
    return 0
  fi
  local dir="$data/train-long"
  if [[ ! -f "$dir/best_model.safetensors" ]] ||
     ! tail -n 1 "$dir/train_log.jsonl" 2>/dev/null | grep -q "\"step\":$long_steps,"; then
    log "training configs/pascal_routing_synthetic.yaml for $long_steps steps (over 20 min, once; kept in $dir)"
    "$build/m3vit" train --config "$src/configs/pascal_routing_synthetic.yaml" --steps $long_steps --seed 0 \
      --out "$dir" --overwrite --no-progress --threads "$threads" >&2 || return 1
  fi
  [[ -f "$dir/best_model.safetensors" ]] && echo "$dir/best_model.safetensors"
}

# Runs one section; its failure is reported in the document, not fatal.
run_section() {
  local name=$1 fn=$2 t0 rc=0 body
  log "$name ..."
  t0=$(date +%s)
  body=$("$fn" 2>"$data/$fn.log") || rc=$?
  if [[ $rc -ne 0 ]]; then
    printf '## %s\n\nThis section failed (exit %d); the end of its log:\n\n```\n%s\n```\n\n' \
      "$name" "$rc" "$(tail -n 20 "$data/$fn.log")"
  else
    printf '%s\n\n' "$body"
  fi
  log "$name done in $(( $(date +%s) - t0 )) s"
}

# ---- the report ---------------------------------------------------------------------------------

tmp=$(mktemp "$out.tmp.XXXXXX")
trap 'rm -f "$tmp"' EXIT
{
  section_header
  run_section "Single-task latency" section_latency
  run_section "MoE layer vs dense MLP" section_moe_dense
  run_section "Memory" section_memory
  run_section "ONNX Runtime" section_onnx
  run_section "Task switching" section_task_switch
  run_section "bf16 accuracy" section_bf16
  run_section "Other sections" section_extensions
} >"$tmp"
mv "$tmp" "$out"
trap - EXIT
log "wrote $out"
