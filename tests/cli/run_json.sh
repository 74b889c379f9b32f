#!/usr/bin/env bash
# `m3vit run --json`: stdout is exactly one JSON object (task, precision, experts, layers, threads,
# ms_median, ms_best, stages_ms, vmhwm_mb) and nothing else, the text goes to stderr; ms_best <=
# ms_median; in one run the stages add up to at most the total; without --repeat it is one run; with a
# folder run it is one clear error (exit 2).
# Usage: bash run_json.sh <path-to-m3vit> <source-dir>
set -euo pipefail
m3vit=${1:?m3vit binary}
src=${2:?source dir}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL $*"; exit 1; }
img="$src/assets/sample.png"
model="$tmp/model.safetensors"

"$m3vit" export --config "$src/configs/tiny_synthetic.yaml" --seed 5 --out "$model" >/dev/null

check() {  # check <out.json> <task> <experts> <layers> <threads> <runs>
  $py -c '
import json, sys
out, task, experts, layers, threads, runs = sys.argv[1:7]
text = open(out).read()
j = json.loads(text)  # the whole of stdout: fails on anything before or after the object
assert text.count("\n") == 1 and text.endswith("}\n"), repr(text[:200])
keys = {"task", "precision", "experts", "layers", "threads", "ms_median", "ms_best", "stages_ms", "vmhwm_mb"}
assert set(j) == keys, sorted(set(j) ^ keys)
assert set(j["stages_ms"]) == {"embed", "attention", "mlp", "moe", "head"}, j["stages_ms"]
assert (j["task"], j["precision"], j["experts"], j["layers"], j["threads"]) == (task, "fp32", experts, layers, int(threads)), j
assert 0 < j["ms_best"] <= j["ms_median"], j
s = sum(j["stages_ms"].values())
assert all(v >= 0 for v in j["stages_ms"].values()), j["stages_ms"]
# The stages are parts of a run: in one run they add up to at most its total (the rest is the
# input copy, the final resize and thread wake-ups, which grow on a loaded machine). Over several
# runs the medians of the parts and of the totals come from different runs: only > 0 is certain.
assert s > 0, j["stages_ms"]
if runs == "1":
    assert s <= j["ms_median"] + 0.01, (s, j["ms_median"])
assert j["vmhwm_mb"] > 1, j["vmhwm_mb"]
print("ok   %s %s/%s: median %.2f ms, best %.2f, stages %.2f, VmHWM %.0f MB" % (task, experts, layers, j["ms_median"], j["ms_best"], s, j["vmhwm_mb"]))
' "$@"
}

"$m3vit" run --model "$model" --task semseg --image "$img" --threads 2 --repeat 5 --json >"$tmp/a.json" 2>"$tmp/a.err"
check "$tmp/a.json" semseg resident resident 2 5 || fail "resident --repeat 5"
grep -q "^time .* best of 5" "$tmp/a.err" || fail "the text did not go to stderr: $(cat "$tmp/a.err")"
"$m3vit" run --model "$model" --task depth --image "$img" --threads 1 --repeat 3 --experts stream --layers stream \
  --json --out "$tmp/d.png" >"$tmp/b.json" 2>"$tmp/b.err"
check "$tmp/b.json" depth stream stream 1 3 || fail "streamed"
[[ -s "$tmp/d.png" ]] || fail "--json with --out wrote no picture"
grep -q "^wrote .*d.png" "$tmp/b.err" || fail "'wrote' line not on stderr"
# Without --repeat: one run (median = best).
"$m3vit" run --model "$model" --task sal --image "$img" --threads 1 --json >"$tmp/c.json" 2>/dev/null
check "$tmp/c.json" sal resident resident 1 1 || fail "one run"
$py -c "import json,sys; j=json.load(open('$tmp/c.json')); sys.exit(j['ms_best'] != j['ms_median'])" ||
  fail "without --repeat the median is not the one run"
grep -q "best of 1" <("$m3vit" run --model "$model" --task sal --image "$img" --threads 1 --json 2>&1 >/dev/null) ||
  fail "without --repeat it is not one run"

# Folder mode: one clear error, exit 2, nothing on stdout, no output folder.
for args in "--task semseg --images $src/assets --out-dir $tmp/o" "--task semseg,depth --image $img --out-dir $tmp/o"; do
  rc=0
  # shellcheck disable=SC2086
  "$m3vit" run --model "$model" $args --json >"$tmp/o.txt" 2>"$tmp/o.err" || rc=$?
  [[ $rc -eq 2 ]] || fail "exit $rc (want 2) for --json with $args"
  grep -q -- "--json" "$tmp/o.err" || fail "the error does not name --json: $(cat "$tmp/o.err")"
  [[ ! -s "$tmp/o.txt" && ! -e "$tmp/o" ]] || fail "output despite the error"
  echo "ok   error: $(cat "$tmp/o.err")"
done
echo "all run --json checks passed"
