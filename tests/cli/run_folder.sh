#!/usr/bin/env bash
# `m3vit run` on a folder: one model load, several tasks, every picture and logits file equal byte
# for byte to what the single-image command writes for that image and task (the oracle, itself
# checked against libtorch by runtime_run.sh); an unreadable or wrong-size image is reported by name
# and skipped, the run ends with a summary and exit code 1; --list, --task all, --resize, streaming;
# mistakes in the options exit 2 with one line.
# Usage: bash run_folder.sh <path-to-m3vit> <source-dir>
set -euo pipefail
m3vit=${1:?m3vit binary}
src=${2:?source dir}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL $*"; exit 1; }
model="$tmp/model.safetensors"
"$m3vit" export --config "$src/configs/tiny_synthetic.yaml" --seed 5 --out "$model" >/dev/null

# A folder: two good pictures, one of the wrong size, one that is not a picture, one text file.
mkdir "$tmp/in"
cp "$src/assets/sample.png" "$tmp/in/a.png"
$py - "$src/assets/sample.png" "$tmp/in" <<'PYEOF'
import sys, matplotlib
matplotlib.use("Agg")
import matplotlib.image as mpimg, numpy as np
img = mpimg.imread(sys.argv[1])[:, :, :3]
mpimg.imsave(sys.argv[2] + "/b.png", np.ascontiguousarray(img[::-1]))    # a different picture, same size
mpimg.imsave(sys.argv[2] + "/small.png", np.ascontiguousarray(img[:48, :64]))  # 64x48: the wrong size
PYEOF
echo "not a picture" >"$tmp/in/broken.jpg"
echo "ignored" >"$tmp/in/notes.txt"

# 1. Two tasks over the folder: exit 1, the two bad files named, outputs for a and b only.
rc=0
"$m3vit" run --model "$model" --task semseg,normals --images "$tmp/in" --out-dir "$tmp/out" --save-logits \
  >"$tmp/run.txt" 2>"$tmp/err.txt" || rc=$?
cat "$tmp/run.txt"
[[ $rc -eq 1 ]] || fail "exit code $rc, want 1 (two images failed): $(cat "$tmp/err.txt")"
grep -q "skipped $tmp/in/broken.jpg" "$tmp/err.txt" || fail "broken.jpg not reported: $(cat "$tmp/err.txt")"
grep -q "skipped $tmp/in/small.png: image $tmp/in/small.png is 64x48 but model tiny_synthetic takes 96x96" "$tmp/err.txt" ||
  fail "small.png not reported: $(cat "$tmp/err.txt")"
grep -q "images   2 of 4 written" "$tmp/run.txt" || fail "summary"
grep -q "failed   2:" "$tmp/run.txt" || fail "failed list"
grep -q "img/s" "$tmp/err.txt" || fail "no progress line with a rate"
[[ $(ls "$tmp/out" | wc -l) -eq 8 ]] || fail "expected 8 outputs, got: $(ls "$tmp/out")"
for img in a b; do
  for task in semseg normals; do
    "$m3vit" run --model "$model" --task $task --image "$tmp/in/$img.png" --out "$tmp/one.png" --save-logits "$tmp/one.npy" >/dev/null
    cmp -s "$tmp/one.png" "$tmp/out/${img}_$task.png" || fail "${img}_$task.png differs from the single-image run"
    cmp -s "$tmp/one.npy" "$tmp/out/${img}_$task.npy" || fail "${img}_$task.npy differs from the single-image run"
  done
done
echo "ok   folder, two tasks: 2 images written (equal to single runs), 2 reported and skipped, exit 1"

# 2. The same with every weight streamed: the same bytes.
"$m3vit" run --model "$model" --task semseg,normals --images "$tmp/in" --out-dir "$tmp/stream" --save-logits \
  --experts stream --layers stream >/dev/null 2>&1 || true
for f in a_semseg.png a_normals.npy b_normals.png b_semseg.npy; do
  cmp -s "$tmp/out/$f" "$tmp/stream/$f" || fail "streamed $f differs"
done
echo "ok   streamed weights: the same files"

# 3. A list file (relative paths, a comment), every task, --resize: exit 0, 6 pictures per image.
printf '# two images\nin/a.png\n\nin/small.png\n' >"$tmp/list.txt"
"$m3vit" run --model "$model" --task all --list "$tmp/list.txt" --out-dir "$tmp/all" --resize >/dev/null 2>"$tmp/err.txt" ||
  fail "list run: $(cat "$tmp/err.txt")"
[[ $(ls "$tmp/all" | wc -l) -eq 12 ]] || fail "expected 12 pictures, got: $(ls "$tmp/all")"
"$m3vit" run --model "$model" --task depth --image "$tmp/in/small.png" --resize --out "$tmp/one.png" >/dev/null
cmp -s "$tmp/one.png" "$tmp/all/small_depth.png" || fail "resized small_depth.png differs from the single-image run"
echo "ok   --list, --task all, --resize"

# 4. Mistakes: exit 2, one line.
expect_error() {  # expect_error "fragment" args...
  local frag=$1 rc=0
  shift
  "$m3vit" run --model "$model" "$@" >/dev/null 2>"$tmp/err.txt" || rc=$?
  [[ $rc -eq 2 ]] || fail "exit code $rc (want 2) for: $*"
  grep -q -- "$frag" "$tmp/err.txt" || fail "error for '$*' lacks '$frag': $(cat "$tmp/err.txt")"
  echo "ok   error: $(tail -n1 "$tmp/err.txt")"
}
expect_error "--images $tmp/nope: not a folder" --task semseg --images "$tmp/nope" --out-dir "$tmp/x"
expect_error "--out-dir is needed" --task semseg,depth --image "$tmp/in/a.png"
expect_error "names 'semseg' twice" --task semseg,semseg --images "$tmp/in" --out-dir "$tmp/x"
expect_error "unknown task 'segm'" --task segm,depth --images "$tmp/in" --out-dir "$tmp/x"
expect_error "--out names one picture" --task semseg --images "$tmp/in" --out-dir "$tmp/x" --out "$tmp/p.png"
expect_error "takes no file name" --task semseg --images "$tmp/in" --out-dir "$tmp/x" --save-logits "$tmp/l.npy"
expect_error "exactly one of --images, --list and --image" --task semseg --images "$tmp/in" --list "$tmp/list.txt" --out-dir "$tmp/x"
