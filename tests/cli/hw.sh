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
