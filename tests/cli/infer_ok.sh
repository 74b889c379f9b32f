#!/usr/bin/env bash
# `m3vit infer` that works: PNG + .npy outputs of the right shape, the same logits from --image and
# from --input-npy holding the image normalised by numpy (an independent implementation of the
# preprocessing), the same hash for the same seed, and exported weights reproducing random ones.
# Usage: bash infer_ok.sh <path-to-m3vit> <source-dir>
set -euo pipefail
m3vit=${1:?m3vit binary}
src=${2:?source dir}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cfg="$src/configs/tiny_synthetic.yaml"
img="$src/assets/sample.png"

hash_of() { sed -n 's/.*hash \([0-9a-f]*\).*/\1/p' "$1"; }

# 1. Image in, picture and logits out.
"$m3vit" infer --config "$cfg" --task semseg --image "$img" --seed 3 --threads 2 \
  --out "$tmp/semseg.png" --save-logits "$tmp/semseg.npy" >"$tmp/run1.txt"
cat "$tmp/run1.txt"
[[ -s "$tmp/semseg.png" && -s "$tmp/semseg.npy" ]]
[[ -z "$(ls "$tmp" | grep '\.tmp')" ]] || { echo "FAIL temporary files left: $(ls "$tmp")"; exit 1; }

# 2. Shapes: logits [1, 8, 96, 96] float32, finite; picture 96x96 RGB.
$py - "$tmp" <<'PYEOF'
import struct, sys, numpy as np
d = sys.argv[1]
x = np.load(d + "/semseg.npy")
assert x.shape == (1, 8, 96, 96), x.shape
assert x.dtype == np.float32, x.dtype
assert np.isfinite(x).all()
png = open(d + "/semseg.png", "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n"
w, h, depth, color = struct.unpack(">IIBB", png[16:26])
assert (w, h, depth, color) == (96, 96, 8, 2), (w, h, depth, color)
print("ok   shapes: logits", x.shape, "png", w, "x", h, "RGB")
PYEOF

# 3. Same seed, same hash; another seed, another hash.
"$m3vit" infer --config "$cfg" --task semseg --image "$img" --seed 3 >"$tmp/run2.txt"
"$m3vit" infer --config "$cfg" --task semseg --image "$img" --seed 4 >"$tmp/run3.txt"
[[ "$(hash_of "$tmp/run1.txt")" == "$(hash_of "$tmp/run2.txt")" ]] || { echo "FAIL same seed, different hash"; exit 1; }
[[ "$(hash_of "$tmp/run1.txt")" != "$(hash_of "$tmp/run3.txt")" ]] || { echo "FAIL different seeds, same hash"; exit 1; }
echo "ok   hash $(hash_of "$tmp/run1.txt") is reproducible"

# 4. Preprocessing: decode the PNG and normalise with numpy, run through --input-npy.
$py - "$img" "$tmp/input.npy" <<'PYEOF'
import sys, zlib, struct, numpy as np
data = open(sys.argv[1], "rb").read()
pos, idat, w, h = 8, b"", 0, 0
while pos < len(data):
    n, tag = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if tag == b"IHDR":
        w, h, depth, color = struct.unpack(">IIBB", body[:10])
        assert depth == 8 and color == 2, "sample.png is 8-bit RGB"
    elif tag == b"IDAT":
        idat += body
    pos += 12 + n
raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
assert (raw[:, 0] == 0).all(), "scripts/make_sample_image.py writes filter type 0"
rgb = raw[:, 1:].reshape(h, w, 3).astype(np.float32) / np.float32(255)
mean = np.array([0.485, 0.456, 0.406], np.float32)
std = np.array([0.229, 0.224, 0.225], np.float32)
np.save(sys.argv[2], ((rgb - mean) / std).transpose(2, 0, 1).copy())
PYEOF
"$m3vit" infer --config "$cfg" --task semseg --input-npy "$tmp/input.npy" --seed 3 \
  --save-logits "$tmp/from_npy.npy" >"$tmp/run4.txt"
$py - "$tmp" <<'PYEOF'
import sys, numpy as np
d = sys.argv[1]
a, b = np.load(d + "/semseg.npy"), np.load(d + "/from_npy.npy")
err = float(np.abs(a - b).max())
# Both paths normalise in float32; the only difference is the rounding of (x/255 - mean)/std.
assert err < 1e-4, err
print("ok   --image and numpy-normalised --input-npy agree, max |diff| = %.2e" % err)
PYEOF

# 5. Each picture kind (palette: step 1; sigmoid heat map, normals, min-max heat map) is written;
#    --resize accepts another size.
for task in sal normals depth; do
  "$m3vit" infer --config "$cfg" --task "$task" --image "$img" --out "$tmp/$task.png" >/dev/null
  [[ -s "$tmp/$task.png" ]]
done
"$m3vit" infer --config "$cfg" --task depth --image "$src/assets/sample_512.png" --resize \
  --save-logits "$tmp/resized.npy" >/dev/null
$py -c "import numpy as np, sys; assert np.load(sys.argv[1]).shape == (1, 1, 96, 96)" "$tmp/resized.npy"
echo "ok   pictures of every kind, --resize"

# 6. Exported random weights reproduce the random model bit for bit.
"$m3vit" export --config "$cfg" --seed 3 --out "$tmp/model.safetensors" >/dev/null
"$m3vit" infer --config "$cfg" --task semseg --image "$img" --weights "$tmp/model.safetensors" >"$tmp/run5.txt"
[[ "$(hash_of "$tmp/run1.txt")" == "$(hash_of "$tmp/run5.txt")" ]] || { echo "FAIL exported weights give another hash"; cat "$tmp/run5.txt"; exit 1; }
echo "ok   export -> infer --weights reproduces hash $(hash_of "$tmp/run5.txt")"
# ... and an export is refused under a config that differs in a way no tensor shape shows.
if "$m3vit" infer --config "$cfg" --moe-top-k 3 --task semseg --image "$img" --weights "$tmp/model.safetensors" \
  >/dev/null 2>"$tmp/err"; then
  echo "FAIL top-k mismatch accepted"; exit 1
fi
grep -q "moe_top_k 2 vs 3" "$tmp/err" || { echo "FAIL: $(cat "$tmp/err")"; exit 1; }
echo "ok   config mismatch refused: $(cat "$tmp/err")"
echo "all infer checks passed"
