#!/usr/bin/env bash
# Citations a reader of the repository alone can follow (docs/ARCHITECTURE.md, "Comments cite ..."):
#   1. no source or doc cites a document that is not in the repository;
#   2. every quirk number a source names ("quirk Q6", "(Q13)") has its section "### Q6." in
#      docs/AUTHORS_CODE.md;
#   3. every m3vit path a "Where:" line of docs/AUTHORS_CODE.md names exists.
# Usage: citations.sh SOURCE_DIR
set -u
cd "$1" || exit 2
fail=0
doc=docs/AUTHORS_CODE.md
self=tests/arch/citations.sh
src_globs=(--include=*.h --include=*.cpp --include=*.py --include=*.sh --include=*.yaml --include=*.yml
           --include=*.txt --include=*.cmake --include=Makefile --include=*.md --include=*.html --include=*.js)

# Not sources: build folders, git, npm packages, and out/ (git-ignored run outputs such as `make demo`'s
# report, whose embedded base64 pictures can spell a quirk number by chance).
skip_dirs=(--exclude-dir='build*' --exclude-dir=.git --exclude-dir=node_modules --exclude-dir=out)

# 1. Documents outside the repository: the team's spec and notes, by the names comments once used.
outside='spec §|m3vit-spec|platform-notes|anchors\.md|style\.md'
while IFS= read -r hit; do
  case "$hit" in "$self":*) continue ;; esac
  echo "FAIL $hit: cites a document outside the repository"
  fail=1
done < <(grep -rnE "$outside" "${src_globs[@]}" "${skip_dirs[@]}" . |
         sed 's#^\./##')

# 2. Quirk numbers in the sources (docs/ prose is left out: AUTHORS_CODE.md is where they are defined).
while IFS= read -r hit; do
  file=${hit%%:*}
  q=${hit##*:}
  grep -qE "^### ${q}\." "$doc" || { echo "FAIL $file cites $q, which $doc does not define"; fail=1; }
done < <(grep -rnoE '\bQ[0-9]{1,2}\b' "${src_globs[@]}" --exclude=*.md "${skip_dirs[@]}" --exclude-dir=docs . |
           sed 's#^\./##' | awk -F: '{print $1":"$3}' | sort -u)

# 3. Our paths on the "Where:" lines (backticked, starting with a folder of this repository).
while IFS= read -r p; do
  [ -e "$p" ] || { echo "FAIL $doc names $p, which does not exist"; fail=1; }
done < <(grep -E '^- \*\*Where:\*\*' "$doc" | grep -oE '`[a-z_]+/[^`: ]+`' | tr -d '`' | sort -u |
         while read -r p; do [ -d "${p%%/*}" ] && echo "$p"; done)

[ $fail -eq 0 ] && echo "citations: every reference resolves inside the repository"
exit $fail
