#!/usr/bin/env bash
# The whole rampart test suite: Rust format, lints and tests, then the Nix checks
# (syntax, deadnix, formatter, evaluation tests, offline flake evaluation), the rendered
# files against the daemons' own checks (haproxy, nginx, nft, mariadbd, promtool, amtool),
# the NixOS modules through nixpkgs' module system (when its library is given), then the
# lab: the hosts as network namespaces on Debian's daemons, and the end-to-end scenarios
# of `infralab test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
source scripts/nix-env.sh
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n== %s\n' "$*"; }

step "nix checks"
bash scripts/nix-checks.sh
step "daemon checks (rendered files against haproxy, nginx, nft, mariadbd)"
bash scripts/daemon-checks.sh
step "module harness"
# Evaluates the NixOS modules with nixpkgs' library when RAMPART_NIXPKGS_LIB names one;
# prints "skipped: …" otherwise (CI has no nixpkgs).
bash scripts/module-harness.sh
step "monitoring checks (promtool, amtool)"
bash scripts/monitoring-checks.sh
step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
step "cargo nextest"
# nextest ends with one summary line for the whole workspace (cargo test would end on a
# doc-test block of "0 passed").
cargo nextest run --workspace --no-fail-fast --status-level fail --final-status-level fail

step "lab: infralab up, infralab test, infralab down"
# A state directory and namespace prefix of its own, so the suite never replaces a lab
# that `scripts/main.sh` left running; the trap takes it down whatever happens (on stderr,
# so that the scenarios' closing line stays the last line on stdout).
cargo build --quiet --workspace --bins
lab=(--topology hosts/topology.json --state target/lab-test --prefix rl-test.)
trap './target/debug/infralab down "${lab[@]}" >&2 || true' EXIT
./target/debug/infralab up "${lab[@]}"
./target/debug/infralab test "${lab[@]}"
