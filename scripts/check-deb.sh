#!/usr/bin/env bash
# CI check of the Debian packages (docs/LIBRARY.md): builds them (make deb), checks each one's
# Depends were filled in from Debian's packages (libtorch only for m3vit-tools), installs the three
# with apt on this Debian 12 machine, then uses them as a user would: `m3vit --version` from /usr/bin
# and examples/embed built with find_package against /usr, its picture equal to `m3vit run`'s.
# Finally removes them again. Needs root (or sudo). Usage: check-deb.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build}" && pwd)
src=$(pwd)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
fail() { echo "check-deb: FAIL $*"; exit 1; }
tmp=$(mktemp -d)
cleanup() {
  $SUDO apt-get purge -y -qq python3-m3vit m3vit-tools libm3vit-dev libm3vit0 >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

rm -rf "$build/packages"
make deb BUILD="$build" >/dev/null
shopt -s nullglob
debs=("$build"/packages/*.deb)
[[ ${#debs[@]} -eq 4 ]] || fail "expected 4 packages, got: ${debs[*]:-none}"
for d in "${debs[@]}"; do
  name=$(dpkg-deb -f "$d" Package)
  deps=$(dpkg-deb -f "$d" Depends)
  echo "check-deb: $(basename "$d"): Depends: $deps"
  case $name in
    libm3vit0) [[ $deps == *libdnnl* && $deps == *libstb* && $deps != *libtorch* ]] || fail "$name Depends" ;;
    libm3vit-dev) [[ $deps == *libm3vit0* && $deps == *libdnnl-dev* ]] || fail "$name Depends" ;;
    m3vit-tools) [[ $deps == *libtorch* ]] || fail "$name Depends" ;;
    python3-m3vit) [[ $deps == *libm3vit0* && $deps == *python3-numpy* ]] || fail "$name Depends" ;;
    *) fail "unexpected package $name" ;;
  esac
done

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -qq "${debs[@]}" >/dev/null
# m3vit is torch-free; the libtorch subcommands run in the companion (docs/CLI.md "Two programs").
[[ -x /usr/libexec/m3vit/m3vit-torch ]] || fail "m3vit-tools has no /usr/libexec/m3vit/m3vit-torch"
if ldd /usr/bin/m3vit | grep -E "libtorch|libc10"; then fail "/usr/bin/m3vit links libtorch"; fi
version=$(/usr/bin/m3vit --version | head -n1)
echo "check-deb: /usr/bin/m3vit --version: $version"
[[ $version == "m3vit $(dpkg-deb -f "${debs[0]}" Version | sed 's/-[0-9]*$//')" ]] || fail "version: $version"

model="$tmp/model.safetensors"
/usr/bin/m3vit export --config "$src/configs/tiny_synthetic.yaml" --seed 5 --out "$model" >/dev/null
/usr/bin/m3vit run --model "$model" --task semseg --image "$src/assets/sample.png" --out "$tmp/cli.png" >/dev/null
cmake -S "$src/examples/embed" -B "$tmp/embed" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/embed" -j2 >/dev/null
for p in embed_cpp embed_c; do
  "$tmp/embed/$p" "$model" semseg "$src/assets/sample.png" "$tmp/$p.png"
  cmp -s "$tmp/$p.png" "$tmp/cli.png" || fail "$p's picture differs from m3vit run's"
done
# (/lib is /usr/lib on Debian 12's merged /usr, and ld.so may name either.)
line=$(ldd "$tmp/embed/embed_c" | grep libm3vit || true)
[[ $line =~ libm3vit\.so\.0\ =\>\ (/usr)?/lib/libm3vit\.so\.0 ]] || fail "embed_c does not load the packaged libm3vit: $line"
# The Python module from the package, on Debian's interpreter, outside the source tree.
(cd "$tmp" && /usr/bin/python3 -c "
import sys, numpy as np, m3vit
rt = m3vit.Runtime(sys.argv[1])
y = rt.run(np.zeros((3,) + tuple(rt.input_size), np.float32), 'semseg')
print('check-deb: python module', m3vit.__version__, 'from', m3vit.__file__, 'logits', y.shape)" "$model") ||
  fail "import m3vit from python3-m3vit"
echo "check-deb: ok (4 packages installed with apt, examples built against /usr, the Python module imported)"
