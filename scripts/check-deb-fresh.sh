#!/usr/bin/env bash
# The Debian packages on a fresh Debian 12 (docs/LIBRARY.md): a minimal bookworm made by debootstrap
# from Debian's archive, the packages of `make deb` installed into it with `apt install ./...deb`
# (apt pulls every dependency from the archive), then, inside it: `m3vit --version`, an export and
# `m3vit run` (the tools), and the C example compiled with gcc and pkg-config against the installed
# library, its picture equal to `m3vit run`'s. Needs root and Debian's archive (about 350 packages
# are downloaded); CI runs it after check-deb.sh. FRESH=DIR reuses (and keeps) a root made earlier,
# for quick reruns; without it a new one is made under /var/tmp and removed at the end.
# Usage: check-deb-fresh.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build}" && pwd)
src=$(pwd)
[ "$(id -u)" -eq 0 ] || { echo "check-deb-fresh: run as root (debootstrap, chroot)"; exit 2; }
if [ -n "${FRESH:-}" ]; then
  root=$FRESH
  cleanup() { umount "$root/proc" 2>/dev/null || true; }
else
  root=$(mktemp -d /var/tmp/m3vit-fresh-XXXXXX)
  # Remove the root only once nothing is mounted inside it (ours: proc; a failed debootstrap's: sys...).
  cleanup() {
    for m in proc sys dev/pts; do umount "$root/$m" 2>/dev/null || true; done
    grep -q " $root/" /proc/mounts || rm -rf "$root"
  }
fi
trap cleanup EXIT
start=$(date +%s)
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
[ -x "$root/usr/bin/apt-get" ] ||
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$root.debootstrap.log" 2>&1 ||
  { tail -20 "$root.debootstrap.log"; exit 1; }
rm -f "$root.debootstrap.log"
echo "check-deb-fresh: bookworm minbase in $root ($(( $(date +%s) - start )) s)"
ls "$build"/packages/*.deb >/dev/null 2>&1 || make deb BUILD="$build" >/dev/null

rm -rf "$root/work" && mkdir -p "$root/work"
cp "$build"/packages/*.deb "$src/assets/sample.png" "$src/configs/tiny_synthetic.yaml" "$src/examples/embed/embed.c" "$root/work/"
mount --bind /proc "$root/proc"
chroot "$root" /bin/bash -euo pipefail -c '
  export DEBIAN_FRONTEND=noninteractive
  cd /work
  apt-get update -qq
  start=$(dpkg-query -W -f="\${binary:Package}\n" | wc -l)
  apt-get install -y -qq --no-install-recommends ./*.deb gcc libc6-dev >/dev/null
  echo "check-deb-fresh: apt installed $(( $(dpkg-query -W -f="\${binary:Package}\n" | wc -l) - start )) packages"
  m3vit --version
  m3vit export --config tiny_synthetic.yaml --seed 5 --out model.safetensors >/dev/null
  m3vit run --model model.safetensors --task semseg --image sample.png --out cli.png | sed -n 2p
  gcc -O2 -o embed_c embed.c $(pkg-config --cflags --libs m3vit)
  ./embed_c model.safetensors semseg sample.png embed.png
  cmp embed.png cli.png
  /usr/bin/python3 -c "import m3vit; rt = m3vit.Runtime(\"model.safetensors\"); print(\"check-deb-fresh: python m3vit\", m3vit.__version__, rt.tasks)"
'
echo "check-deb-fresh: ok ($(( $(date +%s) - start )) s)"
