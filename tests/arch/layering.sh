#!/usr/bin/env bash
# The one-way arrows of docs/ARCHITECTURE.md, checked on the sources: each folder includes only the
# folders below it, libtorch only where the table says "torch", and hw/fx never hw/cost.
# Usage: layering.sh SOURCE_DIR
set -u
cd "$1" || exit 2

# folder -> the project folders its files may include (besides itself)
declare -A allowed=(
  [common]="common"
  [io]="common io"
  [core]="common io core"
  [model]="common io core model"
  [data]="common io core data"
  [eval]="common io core data eval"
  [runtime]="common io core runtime"
  [hw]="common io core hw"
  [train]="common io core model data eval train"
)
torch_folders="model train cli bench tests/model tests/train"
fail=0

for folder in "${!allowed[@]}"; do
  while IFS= read -r line; do
    file=${line%%:*}
    [[ ${line#*:} =~ \#include\ \"([^\"]+)\" ]] || continue
    inc=${BASH_REMATCH[1]}
    top=${inc%%/*}
    [ -d "$top" ] || continue  # a header of a library, not ours
    ok=0
    for a in ${allowed[$folder]}; do [ "$top" = "$a" ] && ok=1; done
    if [ $ok -eq 0 ]; then echo "FAIL $file includes $inc: $folder/ may include only ${allowed[$folder]}"; fail=1; fi
  done < <(grep -rHE '^#include "' "$folder" --include=*.h --include=*.cpp)
done

# libtorch only in the torch folders.
while IFS= read -r file; do
  t=0
  for f in $torch_folders; do case "$file" in "$f"/*) t=1 ;; esac; done
  [ $t -eq 1 ] || { echo "FAIL $file includes torch outside the torch folders ($torch_folders)"; fail=1; }
done < <(grep -rlE '^#include (<torch/|<ATen/|"common/pch/torch_pch.h")' --include=*.h --include=*.cpp --exclude-dir='build*' --exclude-dir=.git . | sed 's#^\./##' | grep -v '^common/pch/')

# The fixed-point model does not depend on the cost model.
if grep -rnE '^#include "hw/cost/' hw/fx; then echo "FAIL hw/fx includes hw/cost"; fail=1; fi

[ $fail -eq 0 ] && echo "layering: every include follows the arrows"
exit $fail
