#!/bin/sh
# Runs `det preview-search` over every experiment config (a file with a
# top-level `searcher:`) of Determined's examples at one git ref of a
# Determined checkout; prints each refusal's first errors and the counts.
#   check-examples.sh DETERMINED_GIT_DIR REF [DET_BINARY]
# e.g. check-examples.sh ~/src/determined 0.26.0 build/bin/det
set -eu
repo=$1 ref=$2 det=${3:-det}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
list=$(git -C "$repo" ls-tree -r --name-only "$ref" examples | grep -E '\.ya?ml$' || true)
pass=0 fail=0
for f in $list; do
  git -C "$repo" show "$ref:$f" > "$tmp/c.yaml"
  grep -qE '^searcher:' "$tmp/c.yaml" || continue
  if out=$("$det" preview-search "$tmp/c.yaml" 2>&1); then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "REFUSED $f: $(echo "$out" | grep -m2 'line ' | tr '\n' ' ')"
  fi
done
echo "$ref: $pass accepted, $fail refused"
