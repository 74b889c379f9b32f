#!/usr/bin/env bash
# Expert-parallel training (docs/TRAINING.md, "Expert parallel"): configs/tiny_test.yaml's 4 experts
# sharded over processes on loopback, tokens exchanged by all-to-all.
#  1. `--nproc 2 --expert-parallel --batch-stats global` (2 experts per process) and `--nproc 4` (1 each)
#     end with the weights of the one-process run of the same global batch, within 1e-5 (why not 0
#     and why lr 0.001: tests/cli/train_distributed.sh);
#  2. every rank wrote its shard in the authors' per-rank layout: rank 1 only its experts, E/N of them,
#     and beside it their optimizer state; checkpoint.safetensors holds no expert; the shard folder
#     imports (m3vit export --weights <run>/shards) to the run's model.safetensors exactly;
#  3. an expert-parallel checkpoint resumes from its shards in one process and with 4 processes (N
#     divides E), and ends where the one-process run ends; a shard left in shards/next/ by a run stopped
#     after the commit is used; a shard of another step is refused, naming it;
#  4. 3 processes do not divide 4 experts: refused before anything starts, naming both numbers;
#  5. the train log counts the all-to-all bytes;
#  6. the task-conditioned gate (one backward pass per task) in 2 processes matches 1 process;
#  7. SIGKILL of rank 1 mid-run: rank 0 stops with an error naming rank 1 instead of waiting for its
#     tokens, and --resume continues from the last sharded checkpoint;
#  8. ranks that receive no token (every router zeroed: all tokens choose experts 0 and 1, held by ranks
#     0 and 1 of 4) still join every exchange, forward and backward: the run ends, as one process does.
# usage: bash train_expert_parallel.sh <path-to-m3vit> <source-dir>
set -euo pipefail
M3VIT=$1
SRC=$2
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
PY=/usr/bin/python3
CMP="$SRC/tests/tools/compare_weights.py"
FLAGS=(--threads 1 --no-progress --lr 0.001 --eval-every 0)
COMMON=(--config "$SRC/configs/tiny_test.yaml" "${FLAGS[@]}")
fail() { echo "FAIL: $*"; exit 1; }
run() {  # run <name> <args...>: a training run whose output is shown only when it fails
  local name=$1
  shift
  "$M3VIT" train "${COMMON[@]}" "$@" >"$TMP/$name.log" 2>&1 || { cat "$TMP/$name.log"; fail "$name: m3vit train $*"; }
}

# 1. One process against 2 and 4 processes holding 2 and 1 experts each.
run one --steps 4 --out "$TMP/one"
run ep2 --steps 4 --out "$TMP/ep2" --nproc 2 --expert-parallel --batch-stats global
grep -q 'rank 1 of 2: .*experts 2..3 of each MoE layer' "$TMP/ep2/rank1.log" || fail "rank 1 does not hold experts 2..3"
$PY "$CMP" "$TMP/one/model.safetensors" "$TMP/ep2/model.safetensors" --atol 1e-5 ||
  fail "2 processes (expert parallel) differ from 1 process"
# The config key instead of the flag (train: is tiny_test.yaml's last section).
{ cat "$SRC/configs/tiny_test.yaml"; echo "  expert_parallel: true"; } >"$TMP/ep.yaml"
"$M3VIT" train --config "$TMP/ep.yaml" "${FLAGS[@]}" --steps 4 --out "$TMP/ep4" --nproc 4 --batch-stats global \
  >"$TMP/ep4.log" 2>&1 || { cat "$TMP/ep4.log"; fail "4 processes with train.expert_parallel: true"; }
grep -q 'rank 3 of 4: .*experts 3..3 of each MoE layer' "$TMP/ep4/rank3.log" || fail "train.expert_parallel: true did not shard"
$PY "$CMP" "$TMP/one/model.safetensors" "$TMP/ep4/model.safetensors" --atol 1e-5 ||
  fail "4 processes (expert parallel, one expert each) differ from 1 process"

# 2. The shards: the authors' layout, merged on import.
[ -f "$TMP/ep2/shards/0.safetensors" ] && [ -f "$TMP/ep2/shards/1.safetensors" ] || fail "no shards/{0,1}.safetensors"
$PY - "$TMP/ep2/shards" <<'PYEOF' || fail "the shards are not in the authors' per-rank layout"
import json, struct, sys
def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return {k: v for k, v in json.loads(f.read(n)).items() if k != "__metadata__"}
h0, h1 = header(sys.argv[1] + "/0.safetensors"), header(sys.argv[1] + "/1.safetensors")
experts = [k for k in h0 if ".mlp.experts." in k]
assert experts and any(".attn." in k for k in h0), "rank 0's shard holds every tensor"
assert sorted(h1) == sorted(experts), f"rank 1's shard holds exactly the expert tensors: {sorted(h1)}"
for k in experts:
    assert h0[k]["shape"][0] == 2 and h1[k]["shape"] == h0[k]["shape"], (k, h0[k], h1[k])
# The checkpoint leaves the experts and their optimizer state to the shards (Adam's step counts stay).
ck = header(sys.argv[1] + "/../checkpoint.safetensors")
assert not [k for k in ck if ".mlp.experts." in k and ck[k]["shape"]], "checkpoint.safetensors holds experts"
o1 = header(sys.argv[1] + "/1.optimizer.safetensors")
assert o1 and all(".mlp.experts." in k and v["shape"][0] == 2 for k, v in o1.items()), o1
assert sorted(o1) == sorted(header(sys.argv[1] + "/0.optimizer.safetensors")), "the ranks' optimizer shards differ in keys"
PYEOF
"$M3VIT" export --config "$SRC/configs/tiny_test.yaml" --weights "$TMP/ep2/shards" --with-training-weights \
  --out "$TMP/merged.safetensors" >"$TMP/merge.log" 2>&1 || { cat "$TMP/merge.log"; fail "export from the shard folder"; }
$PY "$CMP" "$TMP/ep2/model.safetensors" "$TMP/merged.safetensors" --atol 0 ||
  fail "the merged shards differ from the run's model.safetensors"
# eval reads a sharded checkpoint's experts from its shards: the same scores as the gathered export.
for w in checkpoint model; do
  "$M3VIT" eval --config "$SRC/configs/tiny_test.yaml" --weights "$TMP/ep2/$w.safetensors" --threads 1 --no-progress \
    --max-images 4 --json "$TMP/eval_$w.json" >"$TMP/eval_$w.log" 2>&1 || { cat "$TMP/eval_$w.log"; fail "eval --weights $w.safetensors"; }
done
$PY - "$TMP/eval_checkpoint.json" "$TMP/eval_model.json" <<'PYEOF' || fail "eval of the sharded checkpoint differs from eval of model.safetensors"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert a.get("tasks") and a["tasks"] == b["tasks"], (a.get("tasks"), b.get("tasks"))
PYEOF

# 3. An expert-parallel checkpoint continued in one process, and by 4 expert-parallel processes.
run half --steps 2 --out "$TMP/half" --nproc 2 --expert-parallel --batch-stats global
cp -r "$TMP/half" "$TMP/half4"
run resume1 --steps 4 --out "$TMP/half" --resume --allow-changes
grep -q 'resuming .* at step 2' "$TMP/resume1.log" || fail "the 1-process resume did not start at step 2"
$PY "$CMP" "$TMP/one/model.safetensors" "$TMP/half/model.safetensors" --atol 1e-5 ||
  fail "2 expert-parallel processes then 1 differ from 1 process throughout"
# Stopped after the commit, before rank 1 moved its pair into place: read from shards/next/.
mkdir -p "$TMP/half4/shards/next"
mv "$TMP/half4/shards/1.safetensors" "$TMP/half4/shards/1.optimizer.safetensors" "$TMP/half4/shards/next/"
cp -r "$TMP/half4" "$TMP/stale"
run resume4 --steps 4 --out "$TMP/half4" --resume --allow-changes --nproc 4 --expert-parallel --batch-stats global
$PY "$CMP" "$TMP/one/model.safetensors" "$TMP/half4/model.safetensors" --atol 1e-5 ||
  fail "2 then 4 expert-parallel processes differ from 1 process throughout"
[ -f "$TMP/half4/shards/3.safetensors" ] && [ ! -e "$TMP/half4/shards/next/1.safetensors" ] || fail "the 4-process run's shards are not in place"
# A shard of another step (step 4's, beside a step-2 checkpoint): refused, naming the file; nothing changes.
cp "$TMP/ep2/shards/1.optimizer.safetensors" "$TMP/stale/shards/next/1.optimizer.safetensors"
cp "$TMP/stale/checkpoint.safetensors" "$TMP/stale.ckpt"
rc=0
"$M3VIT" train "${COMMON[@]}" --steps 4 --out "$TMP/stale" --resume --allow-changes >"$TMP/stale.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a shard of another step was accepted"
grep -q "shards/next/1.optimizer.safetensors is of step 4" "$TMP/stale.log" || { cat "$TMP/stale.log"; fail "the error does not name the stale shard"; }
cmp -s "$TMP/stale.ckpt" "$TMP/stale/checkpoint.safetensors" || fail "a refused resume changed the checkpoint"

# 4. N must divide E.
rc=0
"$M3VIT" train "${COMMON[@]}" --steps 2 --out "$TMP/three" --nproc 3 --expert-parallel >"$TMP/three.log" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || { cat "$TMP/three.log"; fail "3 processes for 4 experts gave exit code $rc, not 2"; }
grep -q '3 processes do not divide the 4 experts' "$TMP/three.log" || { cat "$TMP/three.log"; fail "the error does not name both numbers"; }
[ ! -e "$TMP/three" ] || fail "a refused run left an output folder"

# 5. The all-to-all bytes in the log.
grep '"type":"train"' "$TMP/ep2/train_log.jsonl" | tail -1 | $PY -c '
import json, sys
j = json.loads(sys.stdin.read())
# Per MoE pass 7 tokens x 2 choices of 32 floats go out and come back, about half to the other rank.
assert j["a2a_bytes"] > 0 and j["processes"] == 2, j
' || fail "the train log lacks a2a_bytes"

# 6. The task-conditioned gate: tasks one by one, a backward pass (and its all-to-alls) per task
#    (without the TAM, which one_by_one cannot train).
sed -e 's/^  gate: multi .*/  gate: task_cond/' -e 's/^  tam: true .*/  tam: false/' "$SRC/configs/tiny_test.yaml" >"$TMP/cond.yaml"
grep -q "^  gate: task_cond" "$TMP/cond.yaml" && grep -q "^  tam: false" "$TMP/cond.yaml"
COND=(--config "$TMP/cond.yaml" "${FLAGS[@]}" --steps 4)
"$M3VIT" train "${COND[@]}" --out "$TMP/cond1" >"$TMP/cond1.log" 2>&1 || { cat "$TMP/cond1.log"; fail "task_cond, 1 process"; }
"$M3VIT" train "${COND[@]}" --out "$TMP/cond2" --nproc 2 --expert-parallel --batch-stats global >"$TMP/cond2.log" 2>&1 ||
  { cat "$TMP/cond2.log"; fail "task_cond, 2 expert-parallel processes"; }
$PY "$CMP" "$TMP/cond1/model.safetensors" "$TMP/cond2/model.safetensors" --atol 1e-5 ||
  fail "the task-conditioned gate in 2 expert-parallel processes differs from 1 process"

# 7. A rank killed while the others wait for its tokens.
source "$SRC/tests/cli/lib/train_run.sh"
"$M3VIT" train "${COMMON[@]}" --steps 3000 --checkpoint-every 5 --out "$TMP/kill" --nproc 2 --expert-parallel \
  >"$TMP/kill.out" 2>"$TMP/kill.err" &
launcher=$!
wait_for_log_lines "$TMP/kill/train_log.jsonl" 12 || { cat "$TMP/kill.err"; fail "the run did not reach step 12"; }
rank1=$(rank_pid "$launcher" 1)
[ -n "$rank1" ] || fail "no process with RANK=1 under the launcher"
kill -KILL "$rank1"
rc=0
timeout 120 tail --pid="$launcher" -f /dev/null || fail "the launcher still runs 120 s after rank 1 was killed"
wait "$launcher" || rc=$?
[ "$rc" -ne 0 ] || fail "the run reported success after rank 1 was killed"
grep -q 'rank 0: .*rank 1 stopped' "$TMP/kill.err" || { cat "$TMP/kill.err"; fail "rank 0's error does not name rank 1"; }
# --resume continues from the last sharded checkpoint.
[ -f "$TMP/kill/checkpoint.safetensors" ] && [ -f "$TMP/kill/shards/1.optimizer.safetensors" ] || fail "no checkpoint before the kill"
run killresume --steps 25 --checkpoint-every 5 --out "$TMP/kill" --nproc 2 --expert-parallel --resume --allow-changes
grep -q 'resuming .* at step [1-9][0-9]*' "$TMP/killresume.log" || fail "--resume after the kill did not start from a checkpoint"

# 8. Ranks without tokens: every router zeroed in a one-process checkpoint, then 4 expert-parallel
#    processes and 1 process continue it; they must end alike (a rank skipping the exchange's backward
#    pass would leave the others waiting until --dist-timeout).
run zero --steps 1 --out "$TMP/zero" --batch-stats global
$PY - "$TMP/zero/checkpoint.safetensors" <<'PYEOF' || fail "cannot zero the routers"
import json, struct, sys
with open(sys.argv[1], "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
    gates = [(k, v) for k, v in h.items() if k.startswith("model/") and k.endswith(".w_gate")]
    assert gates, "no router in the checkpoint"
    for k, v in gates:
        a, b = v["data_offsets"]
        f.seek(8 + n + a)
        f.write(bytes(b - a))  # fp32 zeros
PYEOF
cp -r "$TMP/zero" "$TMP/zero4"
run zero1 --steps 3 --out "$TMP/zero" --resume --allow-changes --batch-stats global
timeout 300 "$M3VIT" train "${COMMON[@]}" --steps 3 --out "$TMP/zero4" --resume --allow-changes --nproc 4 \
  --expert-parallel --batch-stats global --dist-timeout 120 >"$TMP/zero4.log" 2>&1 ||
  { cat "$TMP/zero4.log"; fail "4 expert-parallel processes, 2 of them without tokens, did not finish"; }
$PY "$CMP" "$TMP/zero/model.safetensors" "$TMP/zero4/model.safetensors" --atol 1e-5 ||
  fail "ranks without tokens: 4 expert-parallel processes differ from 1 process"
echo "OK"
