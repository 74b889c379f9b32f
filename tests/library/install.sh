#!/usr/bin/env bash
# The library as another project gets it (docs/LIBRARY.md): `cmake --install` of the runtime and dev
# components into a temporary prefix; what lies there (and that the tools component is apart); the
# shared library links no libtorch and exports only the C API; examples/embed built three ways
# (find_package + shared, find_package + static, pkg-config + cc) writes, for two tasks, the same
# PNG bytes as `m3vit run --out`; an error from the library reaches the program's user.
# Usage: bash install.sh <build-dir> <source-dir>
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
src=$(cd "${2:?source dir}" && pwd)
m3vit="$build/m3vit"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
fail() { echo "FAIL $*"; exit 1; }

# 1. Install two components; nothing of the third.
for c in runtime dev; do cmake --install "$build" --prefix "$prefix" --component $c >/dev/null; done
version=$(sed -n 's/^#define M3VIT_VERSION_STRING "\(.*\)"/\1/p' "$build/include/m3vit/version.h")
major=${version%%.*}
for f in lib/libm3vit.so.$version lib/libm3vit.so.$major lib/libm3vit.so lib/libm3vit.a include/m3vit/m3vit.h \
         include/m3vit/m3vit.hpp include/m3vit/version.h lib/cmake/m3vit/m3vitConfig.cmake \
         lib/cmake/m3vit/m3vitConfigVersion.cmake lib/cmake/m3vit/m3vitTargets.cmake lib/pkgconfig/m3vit.pc; do
  [[ -e "$prefix/$f" ]] || fail "not installed: $f"
done
[[ ! -e "$prefix/bin/m3vit" ]] || fail "the tools component was installed with runtime+dev"
# No internal header: only the three public ones.
[[ $(find "$prefix/include" -type f | wc -l) -eq 3 ]] || fail "extra headers: $(find "$prefix/include" -type f)"
echo "ok   installed m3vit $version: runtime + dev components"

# 2. The shared library: no libtorch, and its dynamic symbols are the C API only.
so="$prefix/lib/libm3vit.so.$version"
if readelf -d "$so" | grep -E "NEEDED.*(torch|c10)"; then fail "libm3vit.so links libtorch"; fi
# (here-strings, not pipes: grep -q quits at its match, and under pipefail the writer's SIGPIPE
# would fail the check)
grep -q "SONAME.*libm3vit.so.$major" <<<"$(readelf -d "$so")" || fail "soname is not libm3vit.so.$major"
nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^m3vit_' >"$tmp/extra.txt" || true
[[ ! -s "$tmp/extra.txt" ]] || fail "libm3vit.so exports more than m3vit_*: $(head -5 "$tmp/extra.txt")"
n=$(nm -D --defined-only "$so" | grep -c ' T m3vit_')
[[ $n -ge 20 ]] || fail "only $n C API functions exported"
echo "ok   libm3vit.so: no libtorch, $n exported functions, all m3vit_*"

# 3. The oracle: the command line's pictures of one export.
model="$tmp/model.safetensors"
img="$src/assets/sample.png"
"$m3vit" export --config "$src/configs/tiny_synthetic.yaml" --seed 5 --out "$model" >/dev/null
for task in semseg normals; do
  "$m3vit" run --model "$model" --task $task --image "$img" --out "$tmp/cli_$task.png" >/dev/null
done

check_program() {  # check_program <label> <executable>
  for task in semseg normals; do
    "$2" "$model" $task "$img" "$tmp/$1_$task.png" >"$tmp/$1.txt" || fail "$1 $task: $(cat "$tmp/$1.txt")"
    cmp -s "$tmp/$1_$task.png" "$tmp/cli_$task.png" || fail "$1 $task: picture differs from m3vit run's"
  done
  echo "ok   $1: $(head -n1 "$tmp/$1.txt")"
}

# 4. find_package(m3vit), shared and static.
for kind in shared static; do
  flag=OFF; [[ $kind == static ]] && flag=ON
  cmake -S "$src/examples/embed" -B "$tmp/embed-$kind" -DCMAKE_PREFIX_PATH="$prefix" -DEMBED_STATIC=$flag \
    -DCMAKE_BUILD_TYPE=Release >"$tmp/cfg.txt" 2>&1 || { cat "$tmp/cfg.txt"; fail "configure examples/embed ($kind)"; }
  cmake --build "$tmp/embed-$kind" -j2 >"$tmp/bld.txt" 2>&1 || { cat "$tmp/bld.txt"; fail "build examples/embed ($kind)"; }
  for p in embed_cpp embed_c; do check_program "$p-$kind" "$tmp/embed-$kind/$p"; done
done
grep -q "libm3vit.so.$major => $prefix/lib" <<<"$(ldd "$tmp/embed-shared/embed_c")" || fail "embed_c (shared) does not load the installed libm3vit"
if grep -q libm3vit <<<"$(ldd "$tmp/embed-static/embed_c")"; then fail "embed_c (static) loads libm3vit.so"; fi

# 5. pkg-config, with the system's compiler and nothing from CMake.
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[[ $(pkg-config --modversion m3vit) == "$version" ]] || fail "pkg-config version"
# shellcheck disable=SC2046
cc -O2 -o "$tmp/embed_pc" "$src/examples/embed/embed.c" $(pkg-config --cflags --libs m3vit) -Wl,-rpath,"$prefix/lib"
check_program embed_c-pkgconfig "$tmp/embed_pc"

# 6. A library error reaches the program's user: exit 1 and the library's one line.
rc=0
"$tmp/embed-shared/embed_c" "$model" segm "$img" "$tmp/bad.png" 2>"$tmp/err.txt" || rc=$?
[[ $rc -eq 1 ]] && grep -q "unknown task 'segm'" "$tmp/err.txt" && [[ ! -e "$tmp/bad.png" ]] ||
  fail "bad task: rc $rc, $(cat "$tmp/err.txt")"
echo "ok   error: $(cat "$tmp/err.txt")"
