#!/usr/bin/env bash
# `m3vit serve` over real HTTP on loopback (ctest serve_http; docs/SERVE.md "Tests"): exports the tiny
# synthetic model, then serve_test.py starts servers on free ports and checks every endpoint, every
# bad input, concurrent clients, /metrics, SIGTERM/SIGINT and the page in headless Chromium, all
# against what `m3vit run` gives for the same input.
# Usage: serve.sh M3VIT_BINARY SOURCE_DIR
set -euo pipefail
m3vit=$(realpath "${1:?usage: serve.sh M3VIT_BINARY SOURCE_DIR}")
src=$(cd "${2:?usage: serve.sh M3VIT_BINARY SOURCE_DIR}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/m3vit-serve-test-XXXXXX")
trap 'rm -rf "$work"' EXIT

"$m3vit" export --config "$src/configs/tiny_synthetic.yaml" --seed 5 --out "$work/model.safetensors" >/dev/null
# Debian's interpreter: numpy is there (the `python3` first on some PATHs lacks it).
/usr/bin/python3 "$src/tests/serve/serve_test.py" "$m3vit" "$work" "$src"
