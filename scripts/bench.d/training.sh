#!/usr/bin/env bash
# Training speed (docs/TRAINING.md), a section of docs/BENCHMARKS.md: run by scripts/bench.sh as
# `bash training.sh BUILD_DIR`, Markdown on stdout, progress on stderr.
#
# What is measured, with `m3vit train` as a user runs it (images/s from the train log, the first
# steps left out as warm-up):
#  - M³ViT and the dense M-ViT (--dense) on configs/tiny_synthetic.yaml, 1 process × 2 threads and
#    2 data-parallel processes × 1 thread (--nproc 2), and M³ViT with 2 expert-parallel processes
#    (--expert-parallel), with the bytes each process handed to all-reduce and all-to-all per step and
#    the share of the step it waited in collectives;
#  - the paper's model (configs/pascal_vits_moe16.yaml, ViT-S at 512×512, 16 experts, five tasks) and
#    its M-ViT for a few steps of batch 2 on synthetic scenes of that size, from random weights;
#  - from those: the time to train the paper's PASCAL run (100 epochs of 4,998 images) on 1, 8 and 64
#    hosts like this one, at a stated link bandwidth.
# Settings: M3VIT_BENCH_THREADS (default 2), M3VIT_TRAIN_BENCH_STEPS (tiny runs, default 24),
# M3VIT_LINK_GBITS (default 10).
set -euo pipefail

build=$(cd "${1:?usage: training.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
threads=${M3VIT_BENCH_THREADS:-2}
steps=${M3VIT_TRAIN_BENCH_STEPS:-24}
link_gbits=${M3VIT_LINK_GBITS:-10}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
data="$build/bench-data/training"
rm -rf "$data"
mkdir -p "$data"
m3vit="$build/m3vit"
log() { echo "bench training: $*" >&2; }

# One run; its folder is $data/$1. Later arguments go to `m3vit train`.
run() {
  local name=$1
  shift
  log "$name: m3vit train $*"
  "$m3vit" train --no-progress --eval-every 0 --out "$data/$name" "$@" >"$data/$name.log" 2>&1 ||
    { tail -20 "$data/$name.log" >&2; return 1; }
}

tiny=(--config "$src/configs/tiny_synthetic.yaml" --steps "$steps")
run tiny_moe_1x2 "${tiny[@]}" --threads "$threads"
run tiny_dense_1x2 "${tiny[@]}" --threads "$threads" --dense
run tiny_moe_2x1 "${tiny[@]}" --threads 1 --nproc 2
run tiny_dense_2x1 "${tiny[@]}" --threads 1 --nproc 2 --dense
run tiny_moe_2x1_ep "${tiny[@]}" --threads 1 --nproc 2 --expert-parallel

# The paper's model on synthetic scenes of its size (PASCAL-Context is not in the build).
paper="$data/pascal_vits_moe16_synthetic.yaml"
sed -e 's/^  dataset: pascal .*/  dataset: synthetic\n  synthetic_train_images: 8\n  synthetic_val_images: 2/' \
  -e 's/^  batch_size: 16 .*/  batch_size: 2/' -e 's/^  val_batch_size: .*/  val_batch_size: 2/' \
  "$src/configs/pascal_vits_moe16.yaml" >"$paper"
grep -q 'dataset: synthetic' "$paper"
run paper_moe --config "$paper" --from-scratch --steps 3 --threads "$threads"
run paper_dense --config "$paper" --from-scratch --steps 3 --threads "$threads" --dense

/usr/bin/python3 - "$data" "$threads" "$link_gbits" "${OPENBLAS_CORETYPE:-unset}" <<'EOF'
import json, os, sys

data, threads, link_gbits, coretype = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]

def records(name):
    with open(os.path.join(data, name, "train_log.jsonl")) as f:
        return [j for j in map(json.loads, f) if j.get("type") == "train"]

def speed(name, skip):
    """images/s after the first `skip` steps, and per step: all-reduce bytes, all-to-all bytes,
    seconds waited, seconds."""
    r = records(name)
    a, b = r[skip - 1], r[-1]
    steps = b["step"] - a["step"]
    dt = b["time_s"] - a["time_s"]
    ips = (b["images"] - a["images"]) / dt
    comm = (b.get("comm_bytes", 0) - a.get("comm_bytes", 0)) / steps
    a2a = (b.get("a2a_bytes", 0) - a.get("a2a_bytes", 0)) / steps
    wait = (b.get("comm_wait_s", 0) - a.get("comm_wait_s", 0)) / steps
    return ips, comm, a2a, wait, dt / steps

print("## Training\n")
print(f"`m3vit train` as a user runs it; images/s after the warm-up steps, from the train log. "
      f"Machine: {os.cpu_count()} hardware threads, OPENBLAS_CORETYPE={coretype}. "
      "Data parallel: `--nproc 2` on this host (c10d, Gloo over loopback), each process 1 thread, "
      "the authors' per-process batch statistics; expert parallel: the same with `--expert-parallel` "
      "(each process holds half of every MoE layer's experts, tokens travel by all-to-all).\n")
print("| model | processes × threads | images/s | vs 1 × 2 | all-reduce bytes / step / process | "
      "all-to-all bytes / step / process | waiting in collectives |")
print("|---|---|---|---|---|---|---|")
tiny = {}
runs = (("moe", "M³ViT tiny_synthetic", (("1 × " + str(threads), "tiny_moe_1x2"), ("2 × 1", "tiny_moe_2x1"),
                                         ("2 × 1, expert parallel", "tiny_moe_2x1_ep"))),
        ("dense", "M-ViT tiny_synthetic", (("1 × " + str(threads), "tiny_dense_1x2"), ("2 × 1", "tiny_dense_2x1"))))
for model, label, layouts in runs:
    base = None
    for layout, name in layouts:
        ips, comm, a2a, wait, step_s = speed(name, 4)
        base = base or ips
        tiny[(model, layout)] = ips
        if not comm:
            print(f"| {label} | {layout} | {ips:.1f} | 1.00× | – | – | – |")
            continue
        a2a_text = f"{a2a / 1e6:.2f} MB" if a2a else "–"
        print(f"| {label} | {layout} | {ips:.1f} | {ips / base:.2f}× | {comm / 1e6:.2f} MB | {a2a_text} | "
              f"{100 * wait / step_s:.0f}% of the step |")
moe1, dense1 = tiny[("moe", "1 × " + str(threads))], tiny[("dense", "1 × " + str(threads))]
print(f"\nM³ViT trains at {moe1 / dense1:.2f}× the dense M-ViT's images/s on tiny_synthetic: the multi-gate "
      "M³ViT makes one backbone pass per task after the shared prefix, the M-ViT one for all. The goal, 0.85× "
      "per backbone pass of equal MACs, is measured per pass in \"Where a training step goes\" below.\n")

pm, _, _, _, pm_step = speed("paper_moe", 1)
pd, _, _, _, _ = speed("paper_dense", 1)
print("| the paper's model, 512×512, batch 2, random weights | images/s | s / image |")
print("|---|---|---|")
print(f"| M³ViT (pascal_vits_moe16, 16 experts, 5 tasks) | {pm:.3f} | {1 / pm:.1f} |")
print(f"| M-ViT (its dense baseline) | {pd:.3f} | {1 / pd:.1f} |")

# Projection: the paper's PASCAL run is 100 epochs of PASCAL-Context's 4,998 training images at a
# global batch of 16. Each host computes its share of every global batch at the speed measured
# above; a step then all-reduces the gradients (ring: 2(N-1)/N of the gradient bytes per host) over
# the stated link, not overlapped with the compute (an upper bound). Gradient bytes: the export's
# size (fp32 weights, the TAM included; the few buffers in it are not sent, so slightly more).
grad_bytes = os.path.getsize(os.path.join(data, "paper_moe", "model.safetensors"))
images = 100 * 4998
link = link_gbits * 1e9 / 8
print(f"\nProjection for the paper's PASCAL run (100 epochs × 4,998 images) on hosts like this one: "
      f"compute at the measured {1 / pm:.1f} s per image per host, gradients of {grad_bytes / 1e6:.0f} MB "
      f"all-reduced each step over a {link_gbits:g} Gbit/s link (ring all-reduce, not overlapped: an upper bound). "
      "From 16 hosts on, the global batch grows with the hosts (one image each), as large-batch training does.\n")
print("| hosts | global batch | steps | compute / step | all-reduce / step | total |")
print("|---|---|---|---|---|---|")
for hosts in (1, 8, 64):
    batch = max(16, hosts)
    steps = images / batch
    compute = batch / hosts / pm
    comm = 0 if hosts == 1 else 2 * (hosts - 1) / hosts * grad_bytes / link
    total = steps * (compute + comm)
    print(f"| {hosts} | {batch} | {steps:,.0f} | {compute:.1f} s | {comm:.2f} s | {total / 86400:.1f} days |")
print()
EOF

# Where a step goes (bench/train_step_profile.cpp): the demo model, the paper's routing shape
# (1,025 tokens, 16 experts, top-4) at a sixth of the width, and the paper's model itself at 512×512
# (batch 1; about 4 minutes, most of it the three multi-task steps; 5 repetitions of the 2-second
# passes, because 3 let one slow round move the ratio by 0.15).
log "train_step_profile"
"$build/bench/train_step_profile" --config "$src/configs/tiny_synthetic.yaml" --threads "$threads" --batch 8
"$build/bench/train_step_profile" --config "$src/configs/pascal_routing_synthetic.yaml" --threads "$threads" --batch 2 --reps 5
"$build/bench/train_step_profile" --config "$src/configs/pascal_vits_moe16.yaml" --threads "$threads" --batch 1 --reps 5
