#!/usr/bin/env bash
# CLI checks of `m3vit hw` and `m3vit trace` on the tiny test model: results, JSON, traces from the
# model, and one clear error with exit code 2 for each bad input (no partial output files).
#   bash tests/cli/hw.sh <path-to-m3vit> <source-dir>
set -uo pipefail
m3vit="$1"
src="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cfg="$src/configs/tiny_test.yaml"
fail=0

expect_ok() {  # name, command...
  local name="$1"; shift
  if ! "$@" >"$tmp/out" 2>"$tmp/err"; then
    echo "FAIL $name: exit $? ($(head -c 400 "$tmp/err"))"; fail=1
  fi
}
expect_err() {  # name, pattern, command...
  local name="$1" pat="$2"; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [[ $rc -ne 2 ]]; then echo "FAIL $name: exit $rc, expected 2"; fail=1; return; fi
  if ! grep -q -- "$pat" "$tmp/err"; then echo "FAIL $name: stderr lacks '$pat': $(head -c 400 "$tmp/err")"; fail=1; fi
}

# Results for all three strategies with a synthetic trace, and JSON.
expect_ok "hw synthetic" "$m3vit" hw --config "$cfg" --hw zcu104 --json "$tmp/r.json"
for s in all_on_chip cache reordered; do grep -q "^$s" "$tmp/out" || { echo "FAIL hw synthetic: no $s row"; fail=1; }; done
python3 -c "import json,sys; d=json.load(open('$tmp/r.json')); assert len(d['results'])==3, d.keys(); \
assert all(r['latency_ms']>0 for r in d['results'])" || { echo "FAIL hw json"; fail=1; }

# A trace from the model on synthetic scenes, then the hardware model on it.
expect_ok "trace" "$m3vit" trace --config "$cfg" --task semseg --synthetic 2 --out "$tmp/t.safetensors"
expect_ok "hw --trace" "$m3vit" hw --config "$cfg" --hw zcu102 --trace "$tmp/t.safetensors" --strategy cache
grep -q "model tiny_test" "$tmp/out" || { echo "FAIL hw --trace: routing source not printed"; fail=1; }

# A YAML accelerator, the sweep and the fixed-point check.
printf 'base: zcu104\nclock_mhz: 150\n' >"$tmp/hw.yaml"
expect_ok "hw yaml+sweep" "$m3vit" hw --config "$cfg" --hw "$tmp/hw.yaml" --sweep --svg-dir "$tmp" --strategy reordered
[[ -s "$tmp/memory_vs_experts.svg" ]] || { echo "FAIL sweep: no SVG"; fail=1; }
expect_ok "hw fixed point" "$m3vit" hw --config "$cfg" --fixed-point --synthetic 1 --fx-images 1 --fx-metrics 1 --strategy reordered
grep -q "MSE" "$tmp/out" || { echo "FAIL fixed point: no MSE"; fail=1; }
grep -q "mean angle" "$tmp/out" || { echo "FAIL fixed point: no per-task metric"; fail=1; }
# The hardware path's fp32 reference is the libtorch model: float rounding only.
diff=$(sed -n 's/.*libtorch model: max |difference| \([0-9.e+-]*\).*/\1/p' "$tmp/out")
python3 -c "import sys; d=float('$diff'); sys.exit(0 if d < 1e-4 else 1)" || { echo "FAIL reference vs model: $diff"; fail=1; }

# `--json -`: the JSON object alone on stdout (text on stderr), with the strategy comparison and the
# resources of every strategy. The ratios are recomputed here from the results themselves; the
# zcu104 board's 624 BRAM18 and 1,728 DSP48E2 are the XCZU7EV's (product selection guide).
pascal="$src/configs/pascal_vits_moe16.yaml"
expect_ok "hw --json -" "$m3vit" hw --config "$pascal" --hw zcu104 --json -
python3 - "$tmp/out" <<'PY' || { echo "FAIL hw --json -: $(head -c 300 "$tmp/out")"; fail=1; }
import json, sys
d = json.load(open(sys.argv[1]))
r = {x["strategy"]: x for x in d["results"]}
c = d["comparison"]["reordered_vs_cache"]
close = lambda a, b: abs(a - b) <= 1e-9 * abs(b)
assert close(c["speedup"], r["cache"]["latency_ms"] / r["reordered"]["latency_ms"]), c
assert close(c["energy_ratio"], r["cache"]["energy_j"] / r["reordered"]["energy_j"]), c
assert close(c["dram_ratio"], r["cache"]["dram_bytes"] / r["reordered"]["dram_bytes"]), c
for x in d["results"]:
    res = x["resources"]
    assert res["board_resources"]["dsp"] == 1728 and res["board_resources"]["bram18"] == 624, res
    assert sum(u["dsp"] for u in res["units"]) == res["total"]["dsp"] > 0, res["total"]
    assert res["short_by"]["bram18"] == max(0, res["total"]["bram18"] - 624), res
    assert res["fits"] == (res["memory_fits"] and all(v == 0 for v in res["short_by"].values())), res
PY
grep -q "FPGA resources" "$tmp/err" || { echo "FAIL hw --json -: the text did not go to stderr"; fail=1; }

# The report with a trained router's trace of the paper's routing shape (random weights here: the
# path is what is checked). Its speed-up in the report's range sentence must be the one
# `m3vit hw --trace` gives for the same trace on the paper model.
expect_ok "trace paper shape" "$m3vit" trace --config "$src/configs/pascal_routing_synthetic.yaml" --task semseg \
  --synthetic 1 --out "$tmp/p.safetensors"
speedup=$("$m3vit" hw --config "$pascal" --hw zcu104 --trace "$tmp/p.safetensors" --json - 2>/dev/null |
  python3 -c "import json,sys; print('%.2f' % json.load(sys.stdin)['comparison']['reordered_vs_cache']['speedup'])")
mkdir -p "$tmp/img"
# A router of another shape (tiny_test) is reported on its own model beside the range.
own=$("$m3vit" hw --config "$cfg" --hw zcu104 --trace "$tmp/t.safetensors" --json - 2>/dev/null |
  python3 -c "import json,sys; print('%.2f' % json.load(sys.stdin)['comparison']['reordered_vs_cache']['speedup'])")
expect_ok "hw report trained" "$m3vit" hw --config "$src/configs/cityscapes_vitt_moe16.yaml" --hw zcu102 \
  --report "$tmp/H.md" --img-dir "$tmp/img" --trained-trace "$tmp/p.safetensors" --trained-note "a test router" \
  --trained-trace "$tmp/t.safetensors" --trained-note "a router of another shape"
grep -q "trained: pascal_routing_synthetic ${speedup}x" "$tmp/H.md" ||
  { echo "FAIL hw report trained: no 'trained: pascal_routing_synthetic ${speedup}x'"; fail=1; }
grep -q "on their own models (section 7): tiny_test ${own}x on \`zcu104\`" "$tmp/H.md" ||
  { echo "FAIL hw report trained: no 'tiny_test ${own}x' beside the range"; fail=1; }
grep -q "^## 9. FPGA resources" "$tmp/H.md" || { echo "FAIL hw report: no resources section"; fail=1; }
expect_err "trained note count" "one --trained-note per --trained-trace" "$m3vit" hw --config "$cfg" \
  --report "$tmp/H2.md" --img-dir "$tmp/img" --trained-trace "$tmp/p.safetensors" --trained-note a --trained-note b
[[ ! -e "$tmp/H2.md" ]] || { echo "FAIL trained note count: report written"; fail=1; }

# The widths and Edge-MoE's order of operations reach the encoder, and the measured ranges the JSON.
expect_ok "hw fx format" "$m3vit" hw --config "$cfg" --fixed-point --synthetic 1 --fx-images 1 --strategy reordered \
  --fx-format a16w16 --fx-arith edge_moe --json -
python3 - "$tmp/out" <<'PY' || { echo "FAIL hw fx format: $(head -c 300 "$tmp/out")"; fail=1; }
import json, sys
r = json.load(open(sys.argv[1]))["fixed_point"][0]
assert r["format"] == "a16w16" and r["arith"] == "edge_moe", r
m = max(r["activation_max_abs"].values())
assert m > 0 and 2 ** (r["activation_integer_bits_needed"] - 2) <= m < 2 ** (r["activation_integer_bits_needed"] - 1), r
PY
expect_err "bad fx format" "a8w8" "$m3vit" hw --config "$cfg" --fixed-point --synthetic 1 --fx-format a8w8

# Bad inputs: one error line naming the culprit, exit 2, nothing written.
expect_err "unknown board" "zcu999" "$m3vit" hw --config "$cfg" --hw zcu999
printf 'base: zcu104\nclok: 1\n' >"$tmp/bad.yaml"
expect_err "bad yaml key" "clok" "$m3vit" hw --config "$cfg" --hw "$tmp/bad.yaml"
expect_err "missing trace" "nope.safetensors" "$m3vit" hw --config "$cfg" --trace "$tmp/nope.safetensors"
head -c 100 "$tmp/t.safetensors" >"$tmp/cut.safetensors"
expect_err "corrupt trace" "cut.safetensors" "$m3vit" hw --config "$cfg" --trace "$tmp/cut.safetensors"
expect_err "trace of another model" "does not fit" "$m3vit" hw --config "$src/configs/cityscapes_vitt_moe16.yaml" --trace "$tmp/t.safetensors"
expect_err "unknown task" "nosuchtask" "$m3vit" trace --config "$cfg" --task nosuchtask --synthetic 1 --out "$tmp/x.safetensors"
[[ ! -e "$tmp/x.safetensors" ]] || { echo "FAIL unknown task: output written"; fail=1; }
expect_err "bad strategy" "strategy" "$m3vit" hw --config "$cfg" --strategy fastest
expect_err "json into missing folder" "does not exist" "$m3vit" hw --config "$cfg" --json "$tmp/no/dir/r.json"

exit $fail
