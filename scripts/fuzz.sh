#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer harnesses of fuzz/ with clang and -fsanitize=fuzzer,address,
# undefined (-DM3VIT_FUZZ=ON -DM3VIT_SANITIZE=address,undefined), writes the seed corpora, and runs
# every harness for FUZZ_SECONDS (docs/TESTING.md "Fuzzing").
#
#   scripts/fuzz.sh BUILD_DIR
#
# Settings: FUZZ_SECONDS (default 60) per harness, FUZZ_READERS (default: every fuzz/fuzz_*.cpp),
# JOBS (default 2) harnesses at a time.
# Each harness runs with a 10 s limit per input and 2 GiB of memory (-timeout, -rss_limit_mb,
# -malloc_limit_mb): past either is a failure, as is a crash, a sanitizer report or an exception
# other than the project's typed errors. The working corpus (BUILD_DIR/fuzz/corpus/<reader>) is kept,
# so later runs start where earlier ones stopped. An input that failed is copied to
# fuzz/regressions/<reader>/ in the source tree, where `make test` replays it from then on: commit it
# with its fix. BUILD_DIR/fuzz/summary.md gets a table of executions and coverage per reader.
set -euo pipefail

build=${1:?usage: scripts/fuzz.sh BUILD_DIR}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}
jobs=${JOBS:-2}

CC=clang CXX=clang++ cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DM3VIT_FUZZ=ON \
  -DM3VIT_SANITIZE=address,undefined -DM3VIT_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target fuzz_all -j"$jobs"
build=$(cd "$build" && pwd)
work="$build/fuzz"

# Seeds are rewritten each run: they follow the writers and the shipped configs.
rm -rf "$work/seeds"
"$build/fuzz/fuzz_make_seeds" "$src" "$work/seeds"
/usr/bin/python3 "$src/fuzz/make_pth_seeds.py" "$work/seeds"

if [[ -n ${FUZZ_READERS:-} ]]; then
  read -r -a readers <<<"$FUZZ_READERS"
else
  readers=()
  for f in "$src"/fuzz/fuzz_*.cpp; do r=$(basename "$f" .cpp); readers+=("${r#fuzz_}"); done
fi

# A UB report stops the run as a crash does (the build also has -fno-sanitize-recover).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
  local r=$1
  local corpus="$work/corpus/$r" art="$work/artifacts/$r" log="$work/logs/$r.log"
  mkdir -p "$corpus" "$art" "$work/logs" "$src/fuzz/regressions/$r"
  rm -f "$art"/*
  local rc=0
  "$work/fuzz_$r" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$art/" "$corpus" "$work/seeds/$r" "$src/fuzz/regressions/$r" \
    >"$log" 2>&1 || rc=$?
  local failed=0
  for a in "$art"/*; do
    [[ -e $a ]] || continue
    case $(basename "$a") in slow-unit-*) continue ;; esac
    cp "$a" "$src/fuzz/regressions/$r/"
    failed=1
  done
  if [[ $rc != 0 || $failed == 1 ]]; then
    echo "FAIL $r (exit $rc): see $log; inputs copied to fuzz/regressions/$r/"
    grep -m5 -E "ERROR|SUMMARY|terminate|what\(\)" "$log" || true
    return 1
  fi
  echo "ok   $r"
}
export -f run_one
export work src seconds

status=0
printf '%s\n' "${readers[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}' || status=1

# summary: executions, coverage (libFuzzer's "cov": instrumented edges reached), features, corpus
{
  echo "| reader | seconds | executions | exec/s | cov (edges) | features | corpus files | peak RSS (MB) |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for r in "${readers[@]}"; do
    log="$work/logs/$r.log"
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n1; }
    last=$(grep -E "^#[0-9]+" "$log" | tail -n1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    echo "| $r | $seconds | $(stat number_of_executed_units) | $(stat average_exec_per_sec) | $cov | $ft | $(ls "$work/corpus/$r" | wc -l) | $(stat peak_rss_mb) |"
  done
} >"$work/summary.md"
cat "$work/summary.md"
exit $status
