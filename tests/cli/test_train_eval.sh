#!/usr/bin/env bash
# `m3vit train` + `m3vit eval` end to end on the tiny training config: outputs, the JSON file and the
# per-image predictions, references for Δm, and one clear error (exit 2, nothing written) for each kind
# of bad input.
# usage: bash test_train_eval.sh <path-to-m3vit> <source-dir>
set -euo pipefail
M3VIT=$1
SRC=$2
CFG="$SRC/tests/train/configs/tiny_train.yaml"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$M3VIT" train --config "$CFG" --steps 3 --threads 1 --out "$TMP/run" --no-progress >"$TMP/train.out" 2>&1 ||
  { cat "$TMP/train.out"; fail "train"; }
for f in checkpoint.safetensors model.safetensors best_model.safetensors train_log.jsonl eval.json; do
  [ -f "$TMP/run/$f" ] || fail "train wrote no $f"
done
[ "$(grep -c '"type":"train"' "$TMP/run/train_log.jsonl")" -eq 3 ] || fail "expected 3 train records"
grep -q 'semseg' "$TMP/train.out" || fail "no metric table after training"

# eval of the export and of the training checkpoint give the same numbers.
"$M3VIT" eval --config "$CFG" --weights "$TMP/run/model.safetensors" --json "$TMP/a.json" --png-dir "$TMP/pred" \
  --reference semseg=0.5,depth=2 --no-progress >"$TMP/eval.out" || fail "eval"
"$M3VIT" eval --config "$CFG" --weights "$TMP/run/checkpoint.safetensors" --json "$TMP/b.json" --no-progress >/dev/null ||
  fail "eval of a checkpoint"
/usr/bin/python3 - "$TMP/a.json" "$TMP/b.json" <<'EOF' || fail "eval JSON"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["images"] == 4, a["images"]
assert set(a["tasks"]) == {"semseg", "normals", "depth"}, a["tasks"]
assert a["references"] == {"semseg": 0.5, "depth": 2.0}, a["references"]
# Δm = 100/2 · ((mIoU − 0.5)/0.5 − (rmse − 2)/2)
want = 50 * ((a["tasks"]["semseg"]["mIoU"] - 0.5) / 0.5 - (a["tasks"]["depth"]["rmse"] - 2) / 2)
assert abs(a["delta_m"] - want) < 1e-9, (a["delta_m"], want)
assert b["delta_m"] is None  # synthetic data: no default references
for t in ("semseg", "normals", "depth"):
    assert a["tasks"][t] == b["tasks"][t], t
EOF
grep -q 'Δm' "$TMP/eval.out" || fail "no Δm line"
[ "$(ls "$TMP/pred/semseg" | wc -l)" -eq 4 ] || fail "expected 4 semseg PNGs"
[ "$(ls "$TMP/pred/depth"/*.mat | wc -l)" -eq 4 ] || fail "expected 4 depth .mat files"

# --task restricts the evaluation.
"$M3VIT" eval --config "$CFG" --weights "$TMP/run/model.safetensors" --task depth --json "$TMP/c.json" --no-progress >/dev/null
/usr/bin/python3 -c "import json,sys; assert list(json.load(open(sys.argv[1]))['tasks']) == ['depth']" "$TMP/c.json" ||
  fail "--task depth"

# Bad input: exit 2, one line naming the problem, no result file.
expect_error() {  # expect_error <pattern> <args...>
  local pat=$1
  shift
  local rc=0
  "$M3VIT" "$@" >"$TMP/err.out" 2>"$TMP/err.txt" || rc=$?
  [ "$rc" -eq 2 ] || fail "exit $rc (want 2) for: $*"
  grep -q -- "$pat" "$TMP/err.txt" || { cat "$TMP/err.txt"; fail "message without '$pat' for: $*"; }
}
expect_error "no such file" eval --config "$CFG" --weights "$TMP/missing.safetensors" --json "$TMP/x.json"
expect_error "segmentation" eval --config "$CFG" --weights "$TMP/run/model.safetensors" --task segmentation --json "$TMP/x.json"
head -c 1000 "$TMP/run/model.safetensors" >"$TMP/cut.safetensors"
expect_error "cut.safetensors" eval --config "$CFG" --weights "$TMP/cut.safetensors" --json "$TMP/x.json"
expect_error "another model config" eval --config "$CFG" --moe-top-k 1 --weights "$TMP/run/checkpoint.safetensors" --json "$TMP/x.json"
expect_error "reference" eval --config "$CFG" --weights "$TMP/run/model.safetensors" --reference semseg=abc --json "$TMP/x.json"
[ ! -e "$TMP/x.json" ] || fail "a failed eval wrote its JSON file"
sed 's/lr: 0.01/lr: -1/' "$CFG" >"$TMP/badlr.yaml"
expect_error "train.lr" train --config "$TMP/badlr.yaml" --steps 1 --out "$TMP/bad"
echo "ok: train + eval outputs and errors"
