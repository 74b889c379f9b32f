#!/usr/bin/env bash
# Bad numbers through `m3vit train` (docs/TRAINING.md, "Bad numbers"): a learning rate far too high
# stops the run with exit code 2 and one line naming the step, the task(s) and the checkpoint to resume
# from; the checkpoint is byte-identical; --resume with the lr of before finishes. A checkpoint with a
# NaN in one tensor is refused on --resume, naming the file and the tensor. The other injected cases
# (NaN data, NaN gradient, a task without labels) are in tests/train/test_bad_numbers.cpp.
# usage: bash test_train_bad_numbers.sh <path-to-m3vit> <source-dir>
set -euo pipefail
M3VIT=$1
SRC=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

CFG="$SRC/tests/train/configs/tiny_train.yaml"  # 4 steps per epoch, checkpoints at epoch ends
sed 's/^  lr: 0.01$/  lr: 1.0e8/' "$CFG" >"$TMP/hot.yaml"
grep -q '^  lr: 1.0e8$' "$TMP/hot.yaml"
COMMON=(--threads 1 --eval-every 0 --no-progress --out "$TMP/run")
fail() { echo "FAIL: $*"; exit 1; }

# 1. A good run of 4 steps (one epoch; its checkpoint is at step 4).
"$M3VIT" train --config "$CFG" --steps 4 "${COMMON[@]}" >/dev/null 2>&1 || fail "the good run failed"
sum4=$(sha256sum <"$TMP/run/checkpoint.safetensors")
model4=$(sha256sum <"$TMP/run/model.safetensors")

# 2. Continued to 8 steps with lr 1e8: the weights overflow before the step-8 checkpoint.
rc=0
"$M3VIT" train --config "$TMP/hot.yaml" --steps 8 "${COMMON[@]}" --resume --allow-changes >/dev/null 2>"$TMP/hot.err" || rc=$?
[ "$rc" -eq 2 ] || { cat "$TMP/hot.err"; fail "lr 1e8: exit code $rc, expected 2"; }
[ "$(grep -c 'm3vit: error' "$TMP/hot.err")" -eq 1 ] || { cat "$TMP/hot.err"; fail "expected one error line"; }
line=$(tail -n 1 "$TMP/hot.err")
grep -qE '^m3vit: error: step [5-8], tasks? [a-z_, ]+: .* is not finite \(' <<<"$line" ||
  fail "the error does not name the step and the task: $line"
grep -qF "the last good one is $TMP/run/checkpoint.safetensors (step 4): fix the cause, then continue with --resume" <<<"$line" ||
  fail "the error does not name the checkpoint to resume from: $line"
[ "$(sha256sum <"$TMP/run/checkpoint.safetensors")" = "$sum4" ] || fail "the step-4 checkpoint changed"
[ "$(sha256sum <"$TMP/run/model.safetensors")" = "$model4" ] || fail "a model was exported after the failure"
# The log ends with the step before the bad one (the bad step is not logged).
bad=$(echo "$line" | sed -E 's/^m3vit: error: step ([0-9]+),.*/\1/')
grep -q "\"step\":$((bad - 1))," <<<"$(tail -n 1 "$TMP/run/train_log.jsonl")" || fail "the log does not end at step $((bad - 1))"

# 3. Without --allow-changes the changed lr is refused (exit 2, the key named).
rc=0
"$M3VIT" train --config "$TMP/hot.yaml" --steps 8 "${COMMON[@]}" --resume >/dev/null 2>"$TMP/refused.err" || rc=$?
[ "$rc" -eq 2 ] && grep -q 'lr: 0.01 -> 100000000.0' "$TMP/refused.err" || { cat "$TMP/refused.err"; fail "changed lr not refused"; }

# 4. --resume with the lr of before continues from step 4 and finishes.
"$M3VIT" train --config "$CFG" --steps 8 "${COMMON[@]}" --resume --allow-changes >"$TMP/resume.out" 2>"$TMP/resume.err" ||
  { cat "$TMP/resume.err"; fail "the resumed run failed"; }
grep -q 'resuming .* at step 4 ' "$TMP/resume.err" || { cat "$TMP/resume.err"; fail "did not resume at step 4"; }
grep -q 'trained 8 steps' "$TMP/resume.out" || { cat "$TMP/resume.out"; fail "the resumed run did not reach step 8"; }

# 5. One NaN in one tensor of the checkpoint: --resume refuses it, naming the file and the tensor.
cp "$TMP/run/checkpoint.safetensors" "$TMP/good.safetensors"
tensor=$(/usr/bin/python3 - "$TMP/run/checkpoint.safetensors" <<'EOF'
import json, struct, sys
path = sys.argv[1]
with open(path, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    name = next(k for k, v in header.items() if k.startswith("model/") and v["dtype"] == "F32")
    f.seek(8 + n + header[name]["data_offsets"][0])
    f.write(struct.pack("<f", float("nan")))
print(name)
EOF
)
rc=0
"$M3VIT" train --config "$CFG" --steps 12 "${COMMON[@]}" --resume --allow-changes >/dev/null 2>"$TMP/corrupt.err" || rc=$?
[ "$rc" -eq 2 ] || { cat "$TMP/corrupt.err"; fail "corrupt checkpoint: exit code $rc, expected 2"; }
grep -qF "m3vit: error: $TMP/run/checkpoint.safetensors: tensor '$tensor' holds NaN or Inf (1 NaN, 0 Inf of " "$TMP/corrupt.err" ||
  { cat "$TMP/corrupt.err"; fail "the refusal does not name the file and the tensor $tensor"; }
echo "ok: lr 1e8 stops with the step, task and checkpoint named, resume finishes; a NaN checkpoint is refused"
