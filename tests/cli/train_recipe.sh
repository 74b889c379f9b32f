#!/usr/bin/env bash
# The paper's recipe by default (docs/TRAINING.md, "The paper's recipe"): the paper configs load DeiT-S
# weights, so without that file `m3vit train` stops before anything is made (exit 2, one line naming
# the file, its URL and --from-scratch, no run folder); `--from-scratch` trains from random weights;
# `--eval-last-epochs N` validates after each of the last N epochs only.
# usage: bash train_recipe.sh <path-to-m3vit> <source-dir>
set -euo pipefail
M3VIT=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$(cd "$2" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cd "$TMP"  # the configs' relative paths (pretrained/, out/) resolve here, where nothing exists

# expect_missing_deit <file named> <run folder that must not appear> <train args...>
expect_missing_deit() {
  local file=$1 out=$2 rc=0
  shift 2
  "$M3VIT" train "$@" >"$TMP/out.txt" 2>"$TMP/err.txt" || rc=$?
  [ "$rc" -eq 2 ] || { cat "$TMP/err.txt"; fail "exit $rc (want 2) for: $*"; }
  [ "$(wc -l <"$TMP/err.txt")" -eq 1 ] || { cat "$TMP/err.txt"; fail "want one line for: $*"; }
  for p in "$file" "--from-scratch"; do
    grep -qF -- "$p" "$TMP/err.txt" || { cat "$TMP/err.txt"; fail "message without '$p' for: $*"; }
  done
  [ ! -e "$out" ] || fail "a run folder $out was made for: $*"
}

# The paper configs and their dense M-ViT baselines, as shipped: DeiT-S named with its URL; neither --out nor the default folder appears.
url=https://dl.fbaipublicfiles.com/deit/deit_small_patch16_224-cd65a155.pth
for c in pascal_vits_moe16 nyud_vits_moe16 pascal_vits_dense nyud_vits_dense; do
  expect_missing_deit pretrained/deit_small_patch16_224-cd65a155.pth "$TMP/$c" \
    --config "$SRC/configs/$c.yaml" --out "$TMP/$c" --no-progress
  grep -qF "$url" "$TMP/err.txt" || { cat "$TMP/err.txt"; fail "$c: no URL"; }
  expect_missing_deit pretrained/deit_small_patch16_224-cd65a155.pth "$TMP/out" --config "$SRC/configs/$c.yaml" --no-progress
done
[ ! -e "$TMP/pretrained" ] || fail "something made pretrained/ (nothing may download)"

# A small config with init: deit and a missing file: the same error, then --from-scratch trains it.
cfg="$TMP/tiny_deit.yaml"
cp "$SRC/configs/tiny_test.yaml" "$cfg"
printf '  init: deit\n  pretrained: missing/deit_tiny.pth\n' >>"$cfg"
expect_missing_deit missing/deit_tiny.pth "$TMP/run" --config "$cfg" --out "$TMP/run" --threads 1 --no-progress
"$M3VIT" train --config "$cfg" --out "$TMP/run" --threads 1 --steps 2 --from-scratch --no-progress \
  >"$TMP/out.txt" 2>"$TMP/err.txt" || { cat "$TMP/err.txt"; fail "--from-scratch"; }
grep -q -- "--from-scratch: random initialisation" "$TMP/err.txt" || { cat "$TMP/err.txt"; fail "--from-scratch not said"; }
[ -f "$TMP/run/model.safetensors" ] || fail "--from-scratch wrote no model"
[ "$(grep -c '"type":"train"' "$TMP/run/train_log.jsonl")" -eq 2 ] || fail "expected 2 train records"

# Validation in the last epochs only: 3 epochs of 4 steps, the last 2 validated (the last step always is).
"$M3VIT" train --config "$cfg" --out "$TMP/last" --threads 1 --epochs 3 --eval-every 0 --eval-last-epochs 2 \
  --from-scratch --no-progress >"$TMP/out.txt" 2>"$TMP/err.txt" || { cat "$TMP/err.txt"; fail "--eval-last-epochs"; }
/usr/bin/python3 - "$TMP/last/train_log.jsonl" <<'PY' || fail "validation schedule"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ev = [r["epoch"] for r in recs if r["type"] == "eval"]
assert ev == [2, 3], ev
assert max(r["step"] for r in recs) == 12
PY
echo "ok: DeiT file required (exit 2, no run folder), --from-scratch, last-epochs validation"
