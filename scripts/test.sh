#!/usr/bin/env bash
# The whole rampart test suite: Rust format, lints and tests, then the Nix checks
# (syntax, deadnix, formatter, evaluation tests, offline flake evaluation), then the rendered
# files against the daemons' own checks, and the monitoring configuration through promtool
# and amtool.
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
