#!/usr/bin/env bash
# `m3vit info`: the paper configs' MAC table (hand counts of docs/FLOPS.md), the authors' format with their
# command-line switches, and a bad option -> exit code 2.
# Usage: bash info.sh <path-to-m3vit> <source-dir>
set -euo pipefail
m3vit=${1:?m3vit binary}
src=${2:?source dir}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect() {  # expect FILE PATTERN
  grep -q -- "$2" "$1" || { echo "FAIL: '$2' not in output:"; cat "$1"; exit 1; }
}

"$m3vit" info --config "$src/configs/pascal_vits_moe16.yaml" >"$tmp/pascal.txt"
expect "$tmp/pascal.txt" "1025 tokens"
expect "$tmp/pascal.txt" "backbone pass  *31.787"
expect "$tmp/pascal.txt" "(a) single task: semseg  *1  *1  *83.779"
expect "$tmp/pascal.txt" "(b) all tasks, authors' forward (multi)  *5  *5"
expect "$tmp/pascal.txt" "(c) dense M-ViT baseline, single task: semseg  *1  *1  *83.742"
expect "$tmp/pascal.txt" "experts (6 layers x 16) *28385280"
echo "ok   pascal_vits_moe16"

"$m3vit" info --config "$src/configs/nyud_vits_moe16.yaml" >"$tmp/nyud.txt"
expect "$tmp/nyud.txt" "backbone pass  *39.193"
expect "$tmp/nyud.txt" "depth (1 ch)  *60.536"
echo "ok   nyud_vits_moe16"

# The authors' file as their script reads it (shared router, top-2), then with the README switches.
"$m3vit" info --config "$src/tests/fixtures/configs/authors_pascal_moe.yml" >"$tmp/a.txt"
expect "$tmp/a.txt" "the authors' format"
expect "$tmp/a.txt" "16 experts, top-2, expert hidden 768, shared router"
expect "$tmp/a.txt" "(b) all tasks, authors' forward (shared)  *1  *5"
"$m3vit" info --config "$src/tests/fixtures/configs/authors_pascal_moe.yml" --moe-top-k 4 --moe-mlp-ratio 1 \
  --multi-gate true --noise-std 0 >"$tmp/b.txt"
expect "$tmp/b.txt" "16 experts, top-4, expert hidden 384, multi router"
expect "$tmp/b.txt" "(a) single task: semseg  *1  *1  *83.779"
echo "ok   authors' format with overrides"

set +e
"$m3vit" info --config "$src/configs/tiny_test.yaml" --gate-type noisy >/dev/null 2>"$tmp/err"
rc=$?
set -e
[[ $rc -eq 2 ]] || { echo "FAIL bad --gate-type: exit code $rc"; exit 1; }
set +e
"$m3vit" info --config "$tmp/none.yaml" >/dev/null 2>"$tmp/err"
rc=$?
set -e
[[ $rc -eq 2 && $(wc -l <"$tmp/err") -eq 1 ]] || { echo "FAIL missing config: rc $rc"; cat "$tmp/err"; exit 1; }
expect "$tmp/err" "none.yaml: no such file"
echo "ok   bad options exit with code 2"
echo "all info checks passed"
