#!/usr/bin/env bash
# int8 against fp32 and bf16 (docs/RUNTIME.md "int8"), a section of docs/BENCHMARKS.md: run by
# scripts/bench.sh as `bash int8.sh BUILD_DIR`, Markdown on stdout, progress on stderr.
# bench/runtime_int8 on the paper's PASCAL-Context config (seeded random weights, calibrated on 2
# synthetic images): the three precisions side by side in one process, runs interleaved. Then the
# accuracy of int8 on the trained models scripts/bench.sh trains for the bf16 section
# (BUILD/bench-data/train-tiny and train-long, or M3VIT_TRAINED_MODEL / M3VIT_LONG_TRAINED_MODEL):
# bench/runtime_bf16_accuracy --precision int8.
# Settings: M3VIT_BENCH_THREADS (default 2), M3VIT_BENCH_REPS (default 9).
set -euo pipefail

build=$(cd "${1:?usage: int8.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
threads=${M3VIT_BENCH_THREADS:-2}
reps=${M3VIT_BENCH_REPS:-9}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
data="$build/bench-data"
mkdir -p "$data"
if ! grep -q avx512_vnni /proc/cpuinfo; then
  echo "## int8"
  echo
  echo "Not measured: this CPU has no AVX512-VNNI (int8 mode is refused there)."
  exit 0
fi
echo "bench int8: pascal_vits_moe16, $threads threads, $reps interleaved runs" >&2
cd "$src"
"$build/bench/runtime_int8" --config "$src/configs/pascal_vits_moe16.yaml" --threads "$threads" --reps "$reps" \
  --scratch "$data"
trained=${M3VIT_TRAINED_MODEL:-$data/train-tiny/best_model.safetensors}
long=${M3VIT_LONG_TRAINED_MODEL:-$data/train-long/best_model.safetensors}
[[ -f "$trained" ]] || trained=""
[[ -f "$long" ]] || long=""
echo
"$build/bench/runtime_bf16_accuracy" --precision int8 --threads "$threads" ${trained:+--model "$trained"} \
  ${long:+--long-model "$long"}
