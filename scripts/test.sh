#!/usr/bin/env bash
# The whole rampart test suite: Rust format, lints and tests, then the Nix checks
# (syntax, deadnix, formatter, evaluation tests, offline flake evaluation), the rendered
# files against the daemons' own checks, the monitoring configuration through promtool and
# amtool, and the NixOS modules through nixpkgs' module system (when its library is given).
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
