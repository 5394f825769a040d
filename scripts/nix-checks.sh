#!/usr/bin/env bash
# scripts/nix-checks.sh: every check of the Nix side that runs offline, without nixpkgs.
#
#   a) every *.nix file parses            (nix-instantiate --parse)
#   b) no dead code                       (deadnix --fail)
#   c) alejandra layout                   (rampart-nixfmt --check, tools/nixfmt)
#   d) the lib/tests evaluation tests     (nix-instantiate --eval --strict --json lib/tests)
#   e) the flake's lib evaluates offline  (nix eval --json .#lib.shippedTopology.name)
#
# Files checked: tracked plus untracked-but-not-ignored *.nix, so new files count before
# `git add`. Exit 0 when everything passes, 1 at the first failing step (which says what to fix).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/nix-env.sh
source scripts/nix-env.sh

fail() {
  echo "nix-checks: $*" >&2
  exit 1
}

files=()
while IFS= read -r -d '' file; do
  # --cached also lists files deleted from the work tree but not yet from the index.
  [[ -f "$file" ]] && files+=("$file")
done < <(git ls-files -z --cached --others --exclude-standard -- '*.nix' | sort -zu)
((${#files[@]} > 0)) || fail "no *.nix files found (run from a rampart checkout)"

# a) Parse first: deadnix exits 0 on a syntax error, and the formatter's parse error is terse.
unparsable=()
for file in "${files[@]}"; do
  if ! errors=$(nix-instantiate --parse "$file" 2>&1 >/dev/null); then
    unparsable+=("$file")
    printf '%s\n' "$errors" >&2
  fi
done
if ((${#unparsable[@]} > 0)); then
  fail "${#unparsable[@]} file(s) do not parse: ${unparsable[*]}"
fi
echo "nix-parse: ${#files[@]} files parse"

# b) Dead code.
deadnix=$(command -v deadnix || true)
if [[ -z "$deadnix" && -x "$HOME/.cargo/bin/deadnix" ]]; then
  deadnix="$HOME/.cargo/bin/deadnix"
fi
[[ -n "$deadnix" ]] || fail "deadnix not found (expected on PATH or in ~/.cargo/bin); install it with: cargo install deadnix"
"$deadnix" --fail "${files[@]}" || fail "deadnix found unused code (above); remove it, or name it with a leading _ if it must stay"
echo "deadnix: no unused code"

# c) Layout. rampart-nixfmt exits 1 for unformatted files, 2 for unreadable or unparsable ones.
cargo run --quiet --release -p rampart-nixfmt -- --check "${files[@]}" ||
  fail "formatting check failed (above); run: cargo run -p rampart-nixfmt --release -- FILES"
echo "nixfmt: ${#files[@]} files formatted"

# d) Evaluation tests. The JSON is { <test file> = [ failures ]; }; all lists empty is a pass.
failures=$(nix-instantiate --eval --strict --json lib/tests) ||
  fail "lib/tests did not evaluate (error above)"
summary=$(nix eval --raw --file lib/tests/suites.nix summary)
printf '%s\n' "$summary"
if ! [[ "$failures" =~ ^\{(\"[^\"]+\":\[\],?)*\}$ ]]; then
  fail "lib/tests has failures (listed above with expected and actual values)"
fi

# e) The flake's pure lib, as the tools call it: no nixpkgs, no network.
if ! name=$(nix eval --json .#lib.shippedTopology.name); then
  untracked=$(git ls-files --others --exclude-standard -- flake.nix flake.lock lib hosts)
  if [[ -n "$untracked" ]]; then
    echo "nix-checks: flakes only see files git tracks; these are untracked:" >&2
    sed 's/^/  /' <<<"$untracked" >&2
  fi
  fail "nix eval .#lib.shippedTopology.name failed (above); git add the files the flake reads"
fi
echo "flake-eval: .#lib.shippedTopology.name = $name"
echo "nix-checks: all passed"
