#!/usr/bin/env bash
# `m3vit run` with nothing but the torch-free parts, so that the sanitizer build (docs/TESTING.md
# "Sanitizers") runs the command's whole path: a seeded random export (m3vit_test_export), every
# task's logits against the float64 PyTorch oracle (tests/oracle/run_oracle.py) within 1e-4 of
# max |logit|, streamed experts and layers equal to resident ones bit for bit, a folder run over all
# tasks with one broken image (exit 1, the file named, the good image's outputs written), and a
# truncated model (exit 2, one line naming the file, no output).
# Usage: bash run_torch_free.sh <path-to-m3vit> <source-dir>
# torch-free
set -euo pipefail
m3vit=${1:?m3vit binary}
src=${2:?source dir}
make_export="$(dirname "$m3vit")/m3vit_test_export"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL $*"; exit 1; }
cfg="$src/configs/tiny_synthetic.yaml"
model="$tmp/model.safetensors"

"$make_export" "$cfg" 5 "$model"

# 1. Every task on one random input: runtime vs the oracle.
"$py" - "$tmp" "$src" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, sys.argv[2] + "/tests/oracle")
import safetensors_np as st
import json
tmp = sys.argv[1]
cfg = json.loads(st.load(tmp + "/model.safetensors")[1]["m3vit_config"])
x = np.random.default_rng(3).standard_normal((1, cfg["in_chans"], *cfg["img_size"])).astype(np.float32)
np.save(tmp + "/x.npy", x[0])
st.save(tmp + "/x.safetensors", {"images": x})
PYEOF
"$py" "$src/tests/oracle/run_oracle.py" --weights "$model" --input "$tmp/x.safetensors" --out "$tmp/oracle.safetensors" --dtype float64
tasks=(semseg human_parts sal normals edge depth)
for t in "${tasks[@]}"; do
  "$m3vit" run --model "$model" --task "$t" --input-npy "$tmp/x.npy" --threads 2 --save-logits "$tmp/$t.npy" >/dev/null
  "$m3vit" run --model "$model" --task "$t" --input-npy "$tmp/x.npy" --threads 2 --experts stream --layers stream \
    --save-logits "$tmp/${t}_stream.npy" >/dev/null
  cmp -s "$tmp/$t.npy" "$tmp/${t}_stream.npy" || fail "$t: streamed weights give other logits than resident ones"
done
"$py" - "$tmp" "$src" "${tasks[@]}" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, sys.argv[2] + "/tests/oracle")
import safetensors_np as st
tmp, tasks = sys.argv[1], sys.argv[3:]
want = st.load(tmp + "/oracle.safetensors")[0]
for t in tasks:
    got, ref = np.load(tmp + "/" + t + ".npy"), want["task." + t]
    assert got.shape == ref.shape, (t, got.shape, ref.shape)
    rel = np.abs(got - ref).max() / np.abs(ref).max()
    print(f"{t:12s} max|run - oracle| / max|oracle| = {rel:.2e}")
    assert rel < 1e-4, t
PYEOF

# 2. A folder with one good and one broken image, every task.
mkdir "$tmp/images"
cp "$src/assets/sample.png" "$tmp/images/good.png"
head -c 100 "$src/assets/sample.png" >"$tmp/images/broken.png"
set +e
"$m3vit" run --model "$model" --task all --images "$tmp/images" --out-dir "$tmp/out" --threads 2 >"$tmp/folder.txt" 2>&1
rc=$?
set -e
[[ $rc == 1 ]] || { cat "$tmp/folder.txt"; fail "folder with a broken image: exit $rc, want 1"; }
grep -q "broken.png" "$tmp/folder.txt" || fail "the broken image is not named"
for t in "${tasks[@]}"; do
  [[ -s "$tmp/out/good_$t.png" ]] || { ls -R "$tmp/out"; fail "no $t picture for the good image"; }
done
[[ -z $(find "$tmp/out" -name 'broken*') ]] || fail "outputs written for the broken image"

# 3. A truncated model: exit 2, one line naming the file, no output.
head -c 5000 "$model" >"$tmp/cut.safetensors"
set +e
"$m3vit" run --model "$tmp/cut.safetensors" --task semseg --input-npy "$tmp/x.npy" --save-logits "$tmp/cut.npy" 2>"$tmp/err.txt"
rc=$?
set -e
[[ $rc == 2 ]] || fail "truncated model: exit $rc, want 2"
[[ $(wc -l <"$tmp/err.txt") == 1 ]] && grep -q "cut.safetensors" "$tmp/err.txt" || { cat "$tmp/err.txt"; fail "error line"; }
[[ ! -e "$tmp/cut.npy" ]] || fail "output written for a truncated model"
echo "ok   m3vit run, torch-free"
