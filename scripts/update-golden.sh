#!/usr/bin/env bash
# scripts/update-golden.sh: rewrite lib/tests/golden/<host>/<path> from `lib.rendered` (the
# shipped topology, default settings), the files the render-golden tests compare with.
#
# Run it after changing a renderer on purpose, then read `git diff lib/tests/golden`: the
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
