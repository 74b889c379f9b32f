#!/usr/bin/env bash
# The one-way arrows of docs/ARCHITECTURE.md, checked on the sources: each folder includes only the
# folders below it, libtorch only where the table says "torch", hw/fx never hw/cost, the runtime's
# files only those below them, and each config section is read by its one owner.
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
  [api]="common io core runtime api"
  [python]="python"
  [serve]="common io core runtime serve"
  [hw]="common io core hw"
  [train]="common io core model data eval train"
  # the readers its harnesses feed; never the torch folders (docs/TESTING.md "Fuzzing")
  [fuzz]="common io core data hw runtime fuzz"
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

# Inside runtime/: ops/ is the bottom; the weight stores and the file below the layers that ask them;
# engine.h at the top, included by nothing else of the runtime.
while IFS= read -r line; do
  echo "FAIL $line: runtime/ops may include only runtime/ops"; fail=1
done < <(grep -rHE '^#include "runtime/' runtime/ops | grep -v '#include "runtime/ops/')
stores="runtime/expert_store runtime/dense_store runtime/head_store runtime/weight_stream runtime/options runtime/model_file runtime/run_record"
for s in $stores; do
  while IFS= read -r line; do
    echo "FAIL $line: a weight store or the model file includes a layer above it"; fail=1
  done < <(grep -HE '^#include "runtime/(backbone|pup_head|moe_layer|task_switch|engine)\.h"' "$s".h "$s".cpp 2>/dev/null)
done
while IFS= read -r line; do
  echo "FAIL $line: runtime/engine.h is the top of the runtime"; fail=1
done < <(grep -rHE '^#include "runtime/engine\.h"' runtime | grep -v '^runtime/engine\.cpp:')

# The public headers (include/m3vit) stand alone: they include only each other and the standard
# library. Their API is for programs outside: only api/ (which implements it), its tests, the
# Python module (python/) and the examples use m3vit.h / m3vit.hpp; version.h may be read anywhere.
while IFS= read -r line; do
  echo "FAIL $line: a public header includes a project header"; fail=1
done < <(grep -rHE '^#include "' include | grep -vE '#include "m3vit/')
while IFS= read -r line; do
  echo "FAIL $line: only api/, tests/api, python/ and examples/ use the public API"; fail=1
done < <(grep -rHE '^#include [<"]m3vit/m3vit\.hp?p?[>"]' --include=*.h --include=*.hpp --include=*.cpp --include=*.c \
           --exclude-dir='build*' --exclude-dir=.git . | sed 's#^\./##' | grep -vE '^(api|tests/api|examples|include|python)/')

# Each config section has one reader: train: in train/, data: in data/ (core/ reads only data.dataset,
# the label set that fixes the heads' channels).
while IFS= read -r line; do
  echo "FAIL $line: the train: section is read only by train/"; fail=1
done < <(grep -rnE '\["train"\]' --include=*.h --include=*.cpp common io core model data eval runtime hw cli)
while IFS= read -r line; do
  echo "FAIL $line: the data: section is read only by data/"; fail=1
done < <(grep -rnE '\["data"\]' --include=*.h --include=*.cpp common io core model eval runtime hw train cli |
         grep -vE '^core/config_yaml\.cpp:[0-9]+: +f\.dataset = parse_dataset\(c, root\["data"\]\);')

[ $fail -eq 0 ] && echo "layering: every include follows the arrows"
exit $fail
