#!/usr/bin/env bash
# `m3vit run` (the libtorch-free runtime): for every task of an exported tiny model its logits equal
# `m3vit infer`'s (the libtorch model) within 1e-4 of max |logit|; streamed experts give the same
# hash as resident ones; a picture of the image's size is written; bad input gives exit code 2, one
# line naming the fault, and no output file.
# Usage: bash runtime_run.sh <path-to-m3vit> <source-dir>
set -euo pipefail
m3vit=${1:?m3vit binary}
src=${2:?source dir}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cfg="$src/configs/tiny_synthetic.yaml"
img="$src/assets/sample.png"
model="$tmp/model.safetensors"

hash_of() { sed -n 's/.*hash \([0-9a-f]*\).*/\1/p' "$1"; }
fail() { echo "FAIL $*"; exit 1; }

"$m3vit" export --config "$cfg" --seed 5 --out "$model" >/dev/null

# 1. Every task: runtime logits vs libtorch logits on the same export and image.
for task in semseg human_parts sal normals edge depth; do
  "$m3vit" run --model "$model" --task "$task" --image "$img" --threads 2 \
    --save-logits "$tmp/run_$task.npy" --out "$tmp/run_$task.png" >"$tmp/run_$task.txt"
  "$m3vit" infer --config "$cfg" --weights "$model" --task "$task" --image "$img" --threads 2 \
    --save-logits "$tmp/infer_$task.npy" >/dev/null
done
cat "$tmp/run_semseg.txt"
$py - "$tmp" <<'PYEOF'
import struct, sys, numpy as np
d = sys.argv[1]
for task in ["semseg", "human_parts", "sal", "normals", "edge", "depth"]:
    a = np.load(f"{d}/run_{task}.npy"); b = np.load(f"{d}/infer_{task}.npy")
    assert a.shape == b.shape and a.dtype == np.float32, (task, a.shape, b.shape, a.dtype)
    rel = np.abs(a - b).max() / np.abs(b).max()
    print(f"ok   {task:12s} runtime vs libtorch: max|diff| / max|logit| = {rel:.2e}")
    assert rel <= 1e-4, f"{task}: runtime and libtorch logits differ by {rel}"
    png = open(f"{d}/run_{task}.png", "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (96, 96)
PYEOF

# 2. Streamed weights: the same logits, bit for bit (same kernels, weights packed by the reader), with
# the default two buffers and with a budget for more; experts alone, and everything (--layers stream).
for layers in resident stream; do
  for budget in "" 4M; do
    "$m3vit" run --model "$model" --task semseg --image "$img" --experts stream --layers $layers \
      ${budget:+--memory-budget $budget} >"$tmp/stream.txt"
    cat "$tmp/stream.txt"
    [[ "$(hash_of "$tmp/stream.txt")" == "$(hash_of "$tmp/run_semseg.txt")" ]] ||
      fail "stream (layers $layers, budget $budget) and resident hashes differ"
    grep -q "weight loads streamed" "$tmp/stream.txt" || fail "stream mode did not report its loads"
  done
done
# Direct head convs: the same function within fp32 rounding (compared through the saved logits).
"$m3vit" run --model "$model" --task semseg --image "$img" --conv direct --save-logits "$tmp/direct.npy" >/dev/null
$py -c "import numpy as np, sys; a=np.load('$tmp/direct.npy'); b=np.load('$tmp/run_semseg.npy'); r=abs(a-b).max()/abs(b).max(); print(f'ok   direct vs Winograd convs: {r:.1e}'); sys.exit(int(r > 1e-5))"

# 3. bf16 runs where the CPU has AVX512-BF16 and changes the logits (it is not silently fp32).
if grep -q avx512_bf16 /proc/cpuinfo; then
  "$m3vit" run --model "$model" --task semseg --image "$img" --precision bf16 --save-logits "$tmp/bf16.npy" >"$tmp/bf16.txt"
  [[ "$(hash_of "$tmp/bf16.txt")" != "$(hash_of "$tmp/run_semseg.txt")" ]] || fail "bf16 gave the fp32 hash"
  echo "ok   bf16 runs"
  # --conv winograd-f2: the bf16 head's Winograd F(2×2) instead of F(4×4) (this model's conv_1..3
  # maps are in whole 4×4 tiles). Both within 3e-2 of max |fp32 logit| (tests/runtime
  # Bf16Mode.WithinItsToleranceOfFp32), and not the same numbers (the option took effect).
  "$m3vit" run --model "$model" --task semseg --image "$img" --precision bf16 --conv winograd-f2 \
    --save-logits "$tmp/bf16_f2.npy" >"$tmp/bf16_f2.txt"
  [[ "$(hash_of "$tmp/bf16_f2.txt")" != "$(hash_of "$tmp/bf16.txt")" ]] || fail "winograd-f2 gave the F(4x4) hash"
  $py - "$tmp" <<'PYEOF'
import sys, numpy as np
t = sys.argv[1]
f = np.load(f"{t}/run_semseg.npy").astype(np.float64)
for name in ("bf16", "bf16_f2"):
    r = np.abs(np.load(f"{t}/{name}.npy") - f).max() / np.abs(f).max()
    print(f"ok   {name} vs fp32: {r:.1e}" if r <= 3e-2 else f"FAIL {name} vs fp32: {r:.1e} > 3e-2")
    if r > 3e-2:
        sys.exit(1)
PYEOF
fi

# 4. Bad input: exit code 2, one error line naming the fault, no output written.
expect_error() {  # expect_error "fragment" args...
  local frag=$1 rc=0
  shift
  "$m3vit" run "$@" --out "$tmp/bad.png" >"$tmp/out.txt" 2>"$tmp/err.txt" || rc=$?
  [[ $rc -eq 2 ]] || fail "exit code $rc (want 2) for: $*"
  grep -q -- "$frag" "$tmp/err.txt" || fail "error for '$*' lacks '$frag': $(cat "$tmp/err.txt")"
  [[ ! -e "$tmp/bad.png" ]] || fail "output written despite the error: $*"
  echo "ok   error: $(head -n1 "$tmp/err.txt")"
}
expect_error "nope.safetensors" --model "$tmp/nope.safetensors" --task semseg --image "$img"
expect_error "unknown task 'segm'" --model "$model" --task segm --image "$img"
expect_error "excludes" --model "$model" --task semseg --image "$img" --input-npy "$tmp/x.npy"
head -c 100 "$model" >"$tmp/cut.safetensors"
expect_error "cut.safetensors" --model "$tmp/cut.safetensors" --task semseg --image "$img"
expect_error "memory budget" --model "$model" --task semseg --image "$img" --experts stream --memory-budget 1K
"$py" - "$tmp" <<'PYEOF'
import sys, zlib, struct
# A 64x48 RGB PNG written by hand: the wrong size for the model without --resize.
w, h = 64, 48
raw = b"".join(b"\x00" + b"\x80" * (3 * w) for _ in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(sys.argv[1] + "/small.png", "wb").write(png)
PYEOF
expect_error "pass --resize" --model "$model" --task semseg --image "$tmp/small.png"
echo "PASS runtime_run"
