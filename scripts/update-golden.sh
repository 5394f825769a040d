#!/usr/bin/env bash
# scripts/update-golden.sh: rewrite lib/tests/golden/<host>/<path> from `lib.rendered` (the
# shipped topology, default settings), the files the render-golden tests compare with, and
# the secrets table of README.md, docs/nixos.md and docs/contracts.md from lib/secrets.nix
# (lib/tests/secrets.nix compares it).
#
# Run it after changing a renderer or the secrets list on purpose, then read `git diff`: the
# diff is the change every host will see. Exit 0 when written, 2 when rendering failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/nix-env.sh
source scripts/nix-env.sh

golden=lib/tests/golden
json=$(mktemp)
trap 'rm -f "$json"' EXIT

if ! nix-instantiate --eval --strict --json -E '(import ./lib { }).rendered' >"$json"; then
  echo "update-golden: lib.rendered did not evaluate (error above); nothing was changed" >&2
  exit 2
fi

# Start empty, so a file no renderer writes any more does not linger.
rm -rf "$golden"
count=0
while IFS=$'\t' read -r host path; do
  mkdir -p "$(dirname "$golden/$host/$path")"
  jq -j --arg h "$host" --arg p "$path" '.[$h][$p]' "$json" >"$golden/$host/$path"
  count=$((count + 1))
done < <(jq -r 'to_entries[] | .key as $h | .value | keys[] | [$h, .] | @tsv' "$json")
echo "update-golden: wrote $count files under $golden"

# The secrets table: the lines between the markers replaced, the markers kept.
table=$(mktemp)
trap 'rm -f "$json" "$table"' EXIT
if ! nix-instantiate --eval --strict --json -E \
  'let lib = import ./lib { }; in lib.secrets.markdownTable { topology = lib.shippedTopology; }' |
  jq -j . >"$table"; then
  echo "update-golden: lib.secrets.markdownTable did not evaluate (error above)" >&2
  exit 2
fi
for doc in README.md docs/nixos.md docs/contracts.md; do
  awk -v table="$table" '
    /^<!-- secrets table: / { print; while ((getline line < table) > 0) print line; skip = 1; next }
    /^<!-- end of secrets table -->/ { skip = 0 }
    !skip { print }
  ' "$doc" >"$doc.new"
  mv "$doc.new" "$doc"
done
echo "update-golden: wrote the secrets table of README.md, docs/nixos.md, docs/contracts.md"
