#!/usr/bin/env bash
# `m3vit infer` on bad input: exit code 2, exactly one line on stderr naming the fault, nothing on
# the output paths (no partial file, no temporary left behind).
# Usage: bash infer_errors.sh <path-to-m3vit> <source-dir>
set -uo pipefail
m3vit=${1:?m3vit binary}
src=${2:?source dir}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cfg="$src/configs/tiny_synthetic.yaml"
img="$src/assets/sample.png"
fails=0

# expect_error NAME PATTERN ARGS...: rc 2, one stderr line matching PATTERN, no file in $tmp/out.
expect_error() {
  local name=$1 pattern=$2
  shift 2
  rm -rf "$tmp/out" && mkdir -p "$tmp/out"
  "$m3vit" infer "$@" --out "$tmp/out/pred.png" --save-logits "$tmp/out/logits.npy" >"$tmp/stdout" 2>"$tmp/stderr"
  local rc=$?
  local lines
  lines=$(wc -l <"$tmp/stderr")
  if [[ $rc -ne 2 ]]; then
    echo "FAIL $name: exit code $rc, want 2"; cat "$tmp/stderr"; fails=$((fails + 1)); return
  fi
  if [[ $lines -ne 1 ]]; then
    echo "FAIL $name: $lines stderr lines, want 1"; cat "$tmp/stderr"; fails=$((fails + 1)); return
  fi
  if ! grep -q -- "$pattern" "$tmp/stderr"; then
    echo "FAIL $name: stderr lacks '$pattern': $(cat "$tmp/stderr")"; fails=$((fails + 1)); return
  fi
  if [[ -n "$(ls -A "$tmp/out")" ]]; then
    echo "FAIL $name: output left behind: $(ls -A "$tmp/out")"; fails=$((fails + 1)); return
  fi
  echo "ok   $name: $(cat "$tmp/stderr")"
}

# Fixtures: a 4-channel input, a wrong-size input, a corrupt PNG, corrupt weights.
$py - "$tmp" <<'PYEOF'
import sys, numpy as np
d = sys.argv[1]
np.save(d + "/four_channels.npy", np.zeros((1, 4, 96, 96), np.float32))
np.save(d + "/small.npy", np.zeros((3, 64, 96), np.float32))
np.save(d + "/tiny_input.npy", np.zeros((3, 32, 48), np.float32))
np.save(d + "/ints.npy", np.zeros((3, 96, 96), np.int32))
nan = np.zeros((3, 96, 96), np.float32); nan[1, 2, 3] = np.nan
np.save(d + "/nan.npy", nan)
open(d + "/corrupt.png", "wb").write(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
open(d + "/garbage.safetensors", "wb").write(b"\xff" * 64)
open(d + "/not_npy.npy", "wb").write(b"hello")
PYEOF

expect_error "unknown task" "unknown task 'sky'" --config "$cfg" --task sky --image "$img"
expect_error "wrong image size" "is 512x512 but model tiny_synthetic takes 96x96" \
  --config "$cfg" --task semseg --image "$src/assets/sample_512.png"
expect_error "wrong channel count" "has 4 channels" --config "$cfg" --task depth --input-npy "$tmp/four_channels.npy"
expect_error "wrong npy size" "is 96x64" --config "$cfg" --task depth --input-npy "$tmp/small.npy"
expect_error "integer npy" "expected float32" --config "$cfg" --task depth --input-npy "$tmp/ints.npy"
expect_error "NaN in npy" "NaN" --config "$cfg" --task depth --input-npy "$tmp/nan.npy"
expect_error "corrupt npy" "not_npy.npy" --config "$cfg" --task depth --input-npy "$tmp/not_npy.npy"
expect_error "corrupt image" "corrupt.png" --config "$cfg" --task sal --image "$tmp/corrupt.png"
expect_error "missing image" "nowhere.png: no such file" --config "$cfg" --task sal --image "$tmp/nowhere.png"
expect_error "missing weights" "missing.safetensors: no such file" \
  --config "$cfg" --task edge --image "$img" --weights "$tmp/missing.safetensors"
expect_error "corrupt weights" "garbage.safetensors" \
  --config "$cfg" --task edge --image "$img" --weights "$tmp/garbage.safetensors"
expect_error "missing config" "no_such.yaml" --config "$tmp/no_such.yaml" --task semseg --image "$img"
expect_error "bad override" "moe_top_k 9" --config "$cfg" --moe-top-k 9 --task semseg --image "$img"
expect_error "both inputs" "exactly one of" --config "$cfg" --task semseg
# An output folder that does not exist: refused before the model runs, nothing written.
if "$m3vit" infer --config "$cfg" --task semseg --image "$img" --out "$tmp/nodir/x.png" >/dev/null 2>"$tmp/stderr"; then
  echo "FAIL missing output folder accepted"; fails=$((fails + 1))
elif [[ $(wc -l <"$tmp/stderr") -ne 1 ]] || ! grep -q "nodir does not exist" "$tmp/stderr" || [[ -e "$tmp/nodir" ]]; then
  echo "FAIL missing output folder: $(cat "$tmp/stderr")"; fails=$((fails + 1))
else
  echo "ok   missing output folder: $(cat "$tmp/stderr")"
fi

# Weights of another model: an export of tiny_test cannot be loaded into tiny_synthetic.
if "$m3vit" export --config "$src/configs/tiny_test.yaml" --out "$tmp/tiny_test.safetensors" >/dev/null 2>"$tmp/err"; then
  expect_error "weights of another model" "tiny_test.safetensors" \
    --config "$cfg" --task semseg --image "$img" --weights "$tmp/tiny_test.safetensors"
  # A truncated export (a download cut short).
  head -c 3000 "$tmp/tiny_test.safetensors" >"$tmp/truncated.safetensors"
  expect_error "truncated weights" "truncated.safetensors" --config "$src/configs/tiny_test.yaml" \
    --task depth --input-npy "$tmp/tiny_input.npy" --weights "$tmp/truncated.safetensors"
else
  echo "FAIL export for the weights fixtures: $(cat "$tmp/err")"; fails=$((fails + 1))
fi

if [[ $fails -ne 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "all infer error cases passed"
