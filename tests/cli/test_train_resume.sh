#!/usr/bin/env bash
# `m3vit train --resume` after SIGKILL is exact: a run killed mid-epoch (after a checkpoint was
# written) and resumed ends with byte-identical weights to a run never interrupted. Also: SIGTERM
# writes a checkpoint and exits with 143, and that run resumes exactly too.
# usage: bash test_train_resume.sh <path-to-m3vit> <source-dir>
set -euo pipefail
M3VIT=$1
SRC=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# tests/train/configs/tiny_train.yaml with 48 training images: 12 batches of 4 per epoch, so the
# checkpoints of every 3 steps (3, 6, 9) fall inside the first epoch and the run crosses into the
# second one after the resume.
sed 's/synthetic_train_images: 16/synthetic_train_images: 48/' "$SRC/tests/train/configs/tiny_train.yaml" >"$TMP/cfg.yaml"
grep -q 'synthetic_train_images: 48' "$TMP/cfg.yaml"
COMMON=(--config "$TMP/cfg.yaml" --steps 40 --threads 1 --checkpoint-every 3 --eval-every 0 --no-progress)

source "$SRC/tests/cli/lib/train_run.sh"

# 1. The uninterrupted run.
"$M3VIT" train "${COMMON[@]}" --out "$TMP/full" >/dev/null 2>&1
[ -f "$TMP/full/model.safetensors" ] || { echo "FAIL: uninterrupted run wrote no model"; exit 1; }

# 2. SIGKILL once 7 steps are logged (so the checkpoint of step 6 exists), then --resume.
"$M3VIT" train "${COMMON[@]}" --out "$TMP/killed" >/dev/null 2>&1 &
pid=$!
wait_for_log_lines "$TMP/killed/train_log.jsonl" 7 || true  # judged below: the run must not have finished
kill -KILL "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
if [ -f "$TMP/killed/model.safetensors" ]; then
  echo "FAIL: the run finished before it could be killed (too fast?)"
  exit 1
fi
[ -f "$TMP/killed/checkpoint.safetensors" ] || { echo "FAIL: no checkpoint before the kill"; exit 1; }
"$M3VIT" train "${COMMON[@]}" --out "$TMP/killed" --resume >"$TMP/resume.out" 2>"$TMP/resume.err"
grep -qE 'resuming .* at step [0-9]+ \(epoch [0-9]+, batch [1-9]' "$TMP/resume.err" || {
  echo "FAIL: expected a mid-epoch resume, got:"
  cat "$TMP/resume.err"
  exit 1
}
if ! cmp -s "$TMP/full/model.safetensors" "$TMP/killed/model.safetensors"; then
  echo "FAIL: weights after SIGKILL + resume differ from the uninterrupted run"
  exit 1
fi

# 3. SIGTERM: checkpoint at the next step boundary, exit code 143, exact resume.
"$M3VIT" train "${COMMON[@]}" --out "$TMP/term" >/dev/null 2>"$TMP/term.err" &
pid=$!
wait_for_log_lines "$TMP/term/train_log.jsonl" 2 || true
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 143 ] || { echo "FAIL: SIGTERM exit code $rc, expected 143"; cat "$TMP/term.err"; exit 1; }
grep -q 'stopped by signal 15' "$TMP/term.err" || { echo "FAIL: no stop message"; cat "$TMP/term.err"; exit 1; }
"$M3VIT" train "${COMMON[@]}" --out "$TMP/term" --resume >/dev/null 2>&1
cmp -s "$TMP/full/model.safetensors" "$TMP/term/model.safetensors" || {
  echo "FAIL: weights after SIGTERM + resume differ from the uninterrupted run"
  exit 1
}

# 4. Without --resume an existing run is not overwritten (exit 2, message names the folder).
rc=0
"$M3VIT" train "${COMMON[@]}" --out "$TMP/full" >/dev/null 2>"$TMP/again.err" || rc=$?
[ "$rc" -eq 2 ] && grep -q -- '--resume' "$TMP/again.err" || { echo "FAIL: reran over an existing run (rc $rc)"; exit 1; }
echo "ok: SIGKILL and SIGTERM resumes are byte-identical to the uninterrupted run"
