#!/usr/bin/env bash
# scripts/nix-checks.sh: every check of the Nix side that runs offline, without nixpkgs.
#
#   0) Nix needs no system configuration  (scripts/nix.conf alone: no word on stderr)
#   a) every *.nix file parses            (nix-instantiate --parse)
#   b) no dead code                       (deadnix --fail)
#   c) alejandra layout                   (rampart-nixfmt --check, tools/nixfmt)
#   d) the lib/tests evaluation tests     (nix-instantiate --eval --strict --json lib/tests)
#   e) the flake's lib evaluates offline  (nix eval --json .#lib.shippedTopology.name)
#
# Results come from Nix's stdout and exit status only; what Nix prints on stderr is log.
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

# 0) A fresh machine has Debian's nix-bin and nothing else: no /etc/nix/nix.conf, no nixbld
# group. Nix with the project's settings and every other configuration file hidden must
# evaluate silently; a warning here (say, about a missing build group) means scripts/nix.conf
# lacks a setting that this machine's own configuration happens to supply.
no_config=$(mktemp -d)
trap 'rm -rf "$no_config"' EXIT
if ! alone=$(NIX_CONF_DIR=$no_config NIX_USER_CONF_FILES=$no_config/none \
  nix-instantiate --eval --expr '1 + 1' 2>"$no_config/stderr") || [[ "$alone" != 2 || -s "$no_config/stderr" ]]; then
  cat "$no_config/stderr" >&2
  fail "Nix with scripts/nix.conf alone (no system or user nix.conf) did not evaluate silently (above); add the missing setting to scripts/nix.conf"
fi
echo "nix-config: scripts/nix.conf alone is enough (no system or user configuration read)"

# a) Parse first: deadnix exits 0 on a syntax error, and the formatter's parse error is terse.
unparsable=()
for file in "${files[@]}"; do
  nix-instantiate --parse "$file" >/dev/null || unparsable+=("$file")
done
if ((${#unparsable[@]} > 0)); then
  fail "${#unparsable[@]} file(s) do not parse (errors above): ${unparsable[*]}"
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
jq -e 'all(.[]; . == [])' <<<"$failures" >/dev/null ||
  fail "lib/tests has failures (listed above with expected and actual values)"

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
