#!/usr/bin/env bash
# Installs what m3vit needs from Debian 12's archive, and nothing else.
# Idempotent: packages already present are left alone; apt runs only if one is missing.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  libtorch-dev
  # c10d's ProcessGroupGloo (data-parallel training, train/distributed.cpp) needs its headers and library.
  libgloo-dev
  # Without OpenBLAS, torch's fp32 matmul falls back to reference BLAS (~6 GFLOP/s).
  # Only the -openmp variant: the pthread one wins the alternative and ignores set_num_threads.
  libopenblas0-openmp libopenblas-openmp-dev
  libdnnl-dev
  nlohmann-json3-dev libcli11-dev libyaml-cpp-dev jq
  libstb-dev
  libmatio-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # `make fuzz` (libFuzzer is part of clang's runtime libraries) and `make test-sanitize` (gcc's).
  clang libclang-rt-dev libomp-dev
  # The parity oracle runs on Debian's interpreter (/usr/bin/python3).
  python3 python3-torch python3-numpy python3-scipy python3-onnx
  # ONNX Runtime (a benchmark peer) comes from npm; the image's nodejs package carries npm.
  nodejs
  # The Python module on the runtime (python/) and its tests and example.
  pybind11-dev python3-pybind11 python3-pytest python3-matplotlib
  # `m3vit serve` (serve/) and the headless browser that tests its page.
  libcpp-httplib-dev chromium
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
