#!/usr/bin/env bash
# `m3vit export` leaves out the training-only tensors (the TAM) unless --with-training-weights, and
# says so in the metadata: the tensor lists of both files (no tam_model* without the flag, all of them
# with it, nothing else different); infer, run, eval and hw load the inference export, and `m3vit run`
# and `m3vit infer` give the same logits hash with and without the training weights; a load that needs
# the TAM (re-exporting it with the flag: a full checkpoint) fails with one error naming the file and
# the TAM, exit 2, no output; the exports written by training keep the TAM.
# Usage: bash export_training_weights.sh <path-to-m3vit> <source-dir>
set -euo pipefail
m3vit=${1:?m3vit binary}
src=${2:?source dir}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL $*"; exit 1; }
cfg="$src/configs/tiny_test.yaml"  # TAM on (levels 1 and 2), 3 tasks
img="$src/assets/sample.png"
inf="$tmp/inference.safetensors"
full="$tmp/full.safetensors"

hash_of() { sed -n 's/.*hash \([0-9a-f]*\).*/\1/p' "$1"; }

"$m3vit" export --config "$cfg" --seed 3 --out "$inf" >"$tmp/export.txt"
grep -q "training-only TAM left out" "$tmp/export.txt" || fail "export did not say the TAM was left out: $(cat "$tmp/export.txt")"
"$m3vit" export --config "$cfg" --seed 3 --with-training-weights --out "$full" >/dev/null

# 1. The tensor lists and the metadata.
$py - "$inf" "$full" <<'PYEOF'
import json, struct, sys
def header(p):
    with open(p, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    return h.pop("__metadata__"), h
mi, ti = header(sys.argv[1])
mf, tf = header(sys.argv[2])
tam_i = [k for k in ti if k.startswith("tam_model")]
tam_f = [k for k in tf if k.startswith("tam_model")]
assert not tam_i, f"inference export holds {tam_i[:3]}"
assert tam_f, "the export with training weights holds no TAM"
assert set(tf) - set(ti) == set(tam_f), sorted(set(tf) - set(ti) - set(tam_f))[:3]
assert set(ti) <= set(tf)
for k in ti:
    assert ti[k]["shape"] == tf[k]["shape"], k
assert mi["training_weights"] == "omitted", mi.get("training_weights")
assert mf["training_weights"] == "included", mf.get("training_weights")
assert json.loads(mi["m3vit_config"]) == json.loads(mf["m3vit_config"])  # the same model, TAM included
print(f"ok   tensors: {len(ti)} without, {len(tf)} with the training weights ({len(tam_f)} TAM tensors)")
PYEOF
[[ $(stat -c %s "$inf") -lt $(stat -c %s "$full") ]] || fail "the inference export is not smaller"

# 2. Every inference path loads the smaller file; the logits do not depend on the TAM being there.
for f in "$inf" "$full"; do
  n=$(basename "$f" .safetensors)
  "$m3vit" infer --config "$cfg" --weights "$f" --task depth --image "$img" --resize --threads 1 >"$tmp/infer_$n.txt" ||
    fail "infer on $n"
  "$m3vit" run --model "$f" --task depth --image "$img" --resize --threads 1 >"$tmp/run_$n.txt" || fail "run on $n"
  "$m3vit" run --model "$f" --task depth --image "$img" --resize --threads 1 --experts stream --layers stream \
    >"$tmp/stream_$n.txt" || fail "run (streamed) on $n"
done
h=$(hash_of "$tmp/infer_inference.txt")
[[ -n "$h" && "$h" == "$(hash_of "$tmp/infer_full.txt")" ]] || fail "infer hashes differ with and without the TAM"
echo "ok   infer: hash $h with and without the training weights"
h=$(hash_of "$tmp/run_inference.txt")
[[ -n "$h" && "$h" == "$(hash_of "$tmp/run_full.txt")" ]] || fail "run hashes differ with and without the TAM"
[[ "$h" == "$(hash_of "$tmp/stream_inference.txt")" && "$h" == "$(hash_of "$tmp/stream_full.txt")" ]] ||
  fail "streamed run hashes differ"
echo "ok   run: hash $h with and without the training weights, resident and streamed"
"$m3vit" eval --config "$cfg" --weights "$inf" --threads 1 --json "$tmp/eval.json" --no-progress >/dev/null ||
  fail "eval on the inference export"
"$m3vit" eval --config "$cfg" --weights "$full" --threads 1 --json "$tmp/eval_full.json" --no-progress >/dev/null ||
  fail "eval on the full export"
$py -c "import json,sys; a=json.load(open('$tmp/eval.json'))['tasks']; b=json.load(open('$tmp/eval_full.json'))['tasks']; sys.exit(a != b)" ||
  fail "eval metrics differ with and without the TAM"
echo "ok   eval: the same metrics"
"$m3vit" hw --config "$cfg" --hw zcu104 --weights "$inf" --threads 1 --json "$tmp/hw.json" >/dev/null 2>&1 ||
  fail "hw on the inference export"
"$m3vit" hw --config "$cfg" --hw zcu104 --weights "$inf" --threads 1 --fixed-point >/dev/null 2>&1 ||
  fail "hw --fixed-point on the inference export"
echo "ok   hw"

# 3. A load that needs the TAM: one error naming the file and the TAM, exit 2, nothing written.
rc=0
"$m3vit" export --config "$cfg" --weights "$inf" --with-training-weights --out "$tmp/again.safetensors" \
  >/dev/null 2>"$tmp/err.txt" || rc=$?
[[ $rc -eq 2 ]] || fail "exit code $rc (want 2) re-exporting the inference export with training weights"
[[ $(wc -l <"$tmp/err.txt") -eq 1 ]] || fail "more than one error line: $(cat "$tmp/err.txt")"
grep -q "inference.safetensors" "$tmp/err.txt" && grep -q "TAM" "$tmp/err.txt" && grep -q -- "--with-training-weights" "$tmp/err.txt" ||
  fail "the error names neither the file nor the TAM: $(cat "$tmp/err.txt")"
[[ ! -e "$tmp/again.safetensors" ]] || fail "output written despite the error"
echo "ok   error: $(cat "$tmp/err.txt")"
# Without the flag the inference export re-exports (and the full one too, leaving the TAM out).
"$m3vit" export --config "$cfg" --weights "$inf" --out "$tmp/again.safetensors" >/dev/null || fail "re-export"
"$m3vit" export --config "$cfg" --weights "$full" --with-training-weights --out "$tmp/again_full.safetensors" >/dev/null ||
  fail "re-export with training weights"
cmp -s "$full" "$tmp/again_full.safetensors" || fail "re-exporting the full export changed it"
# A config without a TAM has no training-only tensor: its export loads for anything.
"$m3vit" export --config "$src/configs/tiny_synthetic.yaml" --out "$tmp/syn.safetensors" >/dev/null
"$m3vit" export --config "$src/configs/tiny_synthetic.yaml" --weights "$tmp/syn.safetensors" --with-training-weights \
  --out "$tmp/syn2.safetensors" >/dev/null || fail "a config without a TAM"
echo "ok   re-exports"

# 4. The exports a training run writes keep the TAM.
"$m3vit" train --config "$cfg" --steps 1 --threads 1 --out "$tmp/run" --no-progress >"$tmp/train.txt" 2>&1 ||
  { cat "$tmp/train.txt"; fail "train"; }
$py - "$tmp/run/model.safetensors" "$tmp/run/best_model.safetensors" <<'PYEOF'
import json, struct, sys
for p in sys.argv[1:]:
    with open(p, "rb") as f:
        h = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    assert h["__metadata__"]["training_weights"] == "included", p
    assert any(k.startswith("tam_model") for k in h), f"{p} has no TAM"
print("ok   training's exports keep the TAM")
PYEOF
echo "all export training-weights checks passed"
