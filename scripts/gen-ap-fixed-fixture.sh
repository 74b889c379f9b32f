#!/usr/bin/env bash
# Regenerates tests/hw/fixtures/ap_fixed_cases.txt, the vendor's ap_fixed results that
# tests/hw/test_ap_fixed_fixture.cpp checks ap_fx against, from the public Xilinx arbitrary-precision
# headers (repository Xilinx/HLS_arbitrary_Precision_Types, the fixture was made at commit 200a9ae).
# The headers are not part of this repository; give the folder that holds ap_fixed.h:
#
#   git clone https://github.com/Xilinx/HLS_arbitrary_Precision_Types /tmp/hls-ap
#   bash scripts/gen-ap-fixed-fixture.sh /tmp/hls-ap/include
#
# The cases are seeded (tests/hw/fixtures/ap_fixed_gen.cpp), so the same headers give the same file.
set -euo pipefail

inc="${1:?usage: gen-ap-fixed-fixture.sh AP_INCLUDE_DIR (the folder with ap_fixed.h)}"
[[ -f "$inc/ap_fixed.h" ]] || { echo "gen-ap-fixed-fixture: no ap_fixed.h in $inc" >&2; exit 2; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"${CXX:-g++}" -std=c++17 -O1 -I"$inc" "$root/tests/hw/fixtures/ap_fixed_gen.cpp" -o "$tmp/ap_fixed_gen"
"$tmp/ap_fixed_gen" >"$tmp/cases.txt"
mv "$tmp/cases.txt" "$root/tests/hw/fixtures/ap_fixed_cases.txt"
echo "gen-ap-fixed-fixture: wrote tests/hw/fixtures/ap_fixed_cases.txt ($(grep -vc '^#' "$root/tests/hw/fixtures/ap_fixed_cases.txt") cases)"
