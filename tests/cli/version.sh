#!/usr/bin/env bash
# `m3vit --version`: the version of include/m3vit/version.h (as generated in the build tree), the
# export format, and the features as this machine has them (bf16 and int8 from /proc/cpuinfo; Debian's
# libtorch is a CPU build); exit code 0.
# Usage: bash version.sh <path-to-m3vit> <source-dir>
set -euo pipefail
m3vit=${1:?m3vit binary}
build=$(dirname "$m3vit")
out=$("$m3vit" --version)
echo "$out"
want=$(sed -n 's/^#define M3VIT_VERSION_STRING "\(.*\)"/\1/p' "$build/include/m3vit/version.h")
[[ -n $want ]] || { echo "FAIL no version in $build/include/m3vit/version.h"; exit 1; }
fail() { echo "FAIL $*"; exit 1; }
[[ $(head -n1 <<<"$out") == "m3vit $want" ]] || fail "first line is not 'm3vit $want'"
grep -q "^export format  v1 " <<<"$out" || fail "no export format line"
if grep -q avx512_bf16 /proc/cpuinfo; then grep -q "bf16 yes" <<<"$out" || fail "bf16 not reported"
else grep -q "bf16 no" <<<"$out" || fail "bf16 reported on a CPU without AVX512-BF16"; fi
if grep -q avx512_vnni /proc/cpuinfo; then grep -q "int8 yes" <<<"$out" || fail "int8 not reported"
else grep -q "int8 no" <<<"$out" || fail "int8 reported on a CPU without AVX512-VNNI"; fi
grep -qE "^libtorch +[0-9.]+.*, CUDA (no|yes)" <<<"$out" || fail "no libtorch/CUDA line"
echo "ok   m3vit --version"
