#!/usr/bin/env bash
# `m3vit serve` throughput and latency (docs/SERVE.md), a section of docs/BENCHMARKS.md: run by
# scripts/bench.sh as `bash serve.sh BUILD_DIR`, Markdown on stdout, progress on stderr.
#
# The paper's PASCAL-Context model (configs/pascal_vits_moe16.yaml: ViT-S, 512x512, 16 experts, seeded
# random weights; the routing, hence the work, is that of an untrained model) behind the server, loaded
# by 1, 2 and 4 concurrent clients that each send the 512x512 sample for semseg (format=npy, so no
# picture is drawn) and wait for the answer before sending the next. Against it: the CLI's
# single-image time for the same input (`m3vit run --repeat`), the floor any request pays.
# Settings: M3VIT_BENCH_THREADS (default 2), M3VIT_SERVE_REQUESTS (requests per client, default 4).
set -euo pipefail

build=$(cd "${1:?usage: serve.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
threads=${M3VIT_BENCH_THREADS:-2}
per_client=${M3VIT_SERVE_REQUESTS:-4}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
data="$build/bench-data"
mkdir -p "$data"
m3vit="$build/m3vit"
config="$src/configs/pascal_vits_moe16.yaml"
model="$data/serve-pascal_vits_moe16.safetensors"
image="$src/assets/sample_512.png"
log() { echo "bench serve: $*" >&2; }

if [[ ! -f "$model" ]]; then
  log "exporting $config (seed 0) to $model"
  "$m3vit" export --config "$config" --seed 0 --out "$model" >&2
fi

# The CLI: one model load, then the same image through the same task, --repeat times.
log "m3vit run --repeat 5"
cli=$("$m3vit" run --model "$model" --task semseg --image "$image" --threads "$threads" --repeat 5 | grep '^time')
cli_mean=$(sed -E 's/^time +([0-9.]+) ms mean.*/\1/' <<<"$cli")
cli_best=$(sed -E 's/.* ([0-9.]+) ms best.*/\1/' <<<"$cli")

# One server configuration: starts it on a free port, loads it with 1, 2 and 4 clients, stops it.
# Prints table rows: | workers x threads | clients | requests | requests/s | p50 | p99 |.
measure() {
  local workers=$1 engine_threads=$2 out port pid
  out=$(mktemp)
  "$m3vit" serve --model "$model" --port 0 --workers "$workers" --threads "$engine_threads" --queue 16 >"$out" &
  pid=$!
  for _ in $(seq 600); do grep -q 'http://' "$out" 2>/dev/null && break; sleep 0.1; done
  port=$(grep -oE 'http://[0-9.]+:[0-9]+' "$out" | head -1 | sed 's/.*://')
  [[ -n "$port" ]] || { log "the server did not start"; kill "$pid"; return 1; }
  log "server: $workers worker(s) x $engine_threads thread(s) on port $port"
  /usr/bin/python3 - "$port" "$image" "$per_client" "$workers x $engine_threads" <<'PY'
import http.client, sys, time
from concurrent.futures import ThreadPoolExecutor
port, image, per_client, label = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
body = open(image, "rb").read()

def client(n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", "/v1/predict?task=semseg&format=npy", body=body)
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status
        times.append(time.perf_counter() - t0)
    return times

client(1)  # warm-up: first-touch of the weights, oneDNN's kernels
for clients in (1, 2, 4):
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as ex:
        lat = sorted(t for ts in ex.map(client, [per_client] * clients) for t in ts)
    wall = time.perf_counter() - t0
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3  # nearest rank
    print(f"| {label} | {clients} | {len(lat)} | {len(lat) / wall:.2f} | {pct(0.50):.0f} | {pct(0.99):.0f} |", flush=True)
PY
  kill -TERM "$pid"
  wait "$pid"
  rm -f "$out"
}

rows=$(
  measure 1 "$threads"
  if [[ $threads -ge 2 ]]; then measure "$threads" 1; fi
)

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
cat <<MD
## HTTP serving (\`m3vit serve\`)

\`scripts/bench.d/serve.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'): $cpu, $(nproc) hardware threads, load
average $(cut -d' ' -f1-3 /proc/loadavg) at the end. Model: \`configs/pascal_vits_moe16.yaml\` (ViT-S,
512×512, 16 experts, top-4; seeded random weights), task semseg, the 512×512 sample as PNG, answers as
\`.npy\` logits. Each client sends a request, waits for the answer, sends the next ($per_client per
client, after one warm-up request); latency is the client's round trip, percentiles by nearest rank.

The CLI on the same image (\`m3vit run --repeat 5 --threads $threads\`, model loaded once): **$cli_mean ms**
mean, $cli_best ms best.

| workers × threads each | clients | requests | requests/s | p50 ms | p99 ms |
|---|---|---|---|---|---|
$rows

How to read it: with one worker, requests run one at a time, so requests/s stays near 1000 / the
CLI's time and the latency grows with the clients waiting in the queue. Workers with one thread each
run images side by side instead of splitting each image over the cores: on a machine whose cores one
image already keeps busy that trades each image's latency for little throughput. On a machine shared
with other work (see the load average) single numbers vary by tens of percent.
MD
