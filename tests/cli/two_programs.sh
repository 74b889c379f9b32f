#!/usr/bin/env bash
# `m3vit` is torch-free and hands the libtorch subcommands to `m3vit-torch` (cli/torch_companion.h,
# docs/CLI.md "Two programs"): the front links no libtorch and `m3vit run` never maps it; a libtorch
# subcommand through the front gives what m3vit-torch gives; without the companion, a libtorch
# subcommand fails with one line naming m3vit-torch and where it was looked for (exit 2), while
# `run` still works and --version still answers.
# Usage: bash two_programs.sh <path-to-m3vit> <source-dir>
set -euo pipefail
m3vit=${1:?m3vit binary}
src=${2:?source dir}
build=$(dirname "$m3vit")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL $*"; exit 1; }

# 1. The front links no libtorch; the companion does.
[[ -x "$build/m3vit-torch" ]] || fail "no m3vit-torch next to $m3vit"
if ldd "$m3vit" | grep -E "libtorch|libc10"; then fail "m3vit links libtorch"; fi
# grep without -q: with pipefail, grep -q leaving early would SIGPIPE ldd and fail the pipeline.
ldd "$build/m3vit-torch" | grep libtorch_cpu >/dev/null || fail "m3vit-torch does not link libtorch"
echo "ok   m3vit links no libtorch, m3vit-torch does"

# 2. A libtorch subcommand through the front = the companion's own answer.
"$m3vit" info --config "$src/configs/tiny_test.yaml" >"$tmp/front.txt"
"$build/m3vit-torch" info --config "$src/configs/tiny_test.yaml" >"$tmp/direct.txt"
cmp -s "$tmp/front.txt" "$tmp/direct.txt" || fail "m3vit info differs from m3vit-torch info"
"$m3vit" export --config "$src/configs/tiny_test.yaml" --seed 3 --out "$tmp/m.safetensors" >/dev/null

# 3. `m3vit run` maps no libtorch while it runs (/proc/PID/maps of a run kept busy by --repeat).
"$m3vit" run --model "$tmp/m.safetensors" --task semseg --image "$src/assets/sample.png" --resize --repeat 100000 \
  >/dev/null 2>&1 &
pid=$!
sleep 0.5  # libraries are mapped before main; the run is still repeating
maps=$(cat /proc/$pid/maps 2>/dev/null || true)
kill $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
[[ -n "$maps" ]] || fail "m3vit run ended before its maps could be read"
if grep -E "libtorch|libc10" <<<"$maps"; then fail "m3vit run mapped libtorch"; fi
echo "ok   m3vit run maps no libtorch; m3vit info through the front equals m3vit-torch's"

# 4. Without the companion: libtorch subcommands fail naming it, run and --version still work.
mkdir "$tmp/alone"
cp "$m3vit" "$tmp/alone/m3vit"
rc=0
"$tmp/alone/m3vit" info --config "$src/configs/tiny_test.yaml" >"$tmp/out.txt" 2>"$tmp/err.txt" || rc=$?
[[ $rc -eq 2 ]] || fail "missing companion: exit $rc, want 2"
[[ $(wc -l <"$tmp/err.txt") -eq 1 ]] || fail "missing companion: not one line: $(cat "$tmp/err.txt")"
grep -q "m3vit-torch" "$tmp/err.txt" && grep -q "$tmp/alone/m3vit-torch" "$tmp/err.txt" ||
  fail "missing companion: error does not name m3vit-torch and where: $(cat "$tmp/err.txt")"
[[ ! -s "$tmp/out.txt" ]] || fail "missing companion: wrote to stdout"
"$tmp/alone/m3vit" --version | grep "^m3vit " >/dev/null || fail "--version without the companion"
"$tmp/alone/m3vit" run --model "$tmp/m.safetensors" --task semseg --image "$src/assets/sample.png" --resize \
  --out "$tmp/p.png" >/dev/null 2>&1 || fail "run without the companion"
[[ -s "$tmp/p.png" ]] || fail "run without the companion wrote no picture"
echo "ok   without m3vit-torch: one error naming it (exit 2); run and --version work"
