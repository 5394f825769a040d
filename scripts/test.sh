#!/usr/bin/env bash
# The whole rampart test suite: the Nix checks (syntax, deadnix, formatter, evaluation
# tests, offline flake evaluation), the NixOS modules through nixpkgs' module system (when
# its library is given), Rust format, lints and tests, then the rendered files of every
# profile through the daemons' own checks (`infralab check`: nft, haproxy, nginx, promtool,
# amtool, the promtool rule tests), then the lab: the hosts as network namespaces on
# Debian's daemons, and the end-to-end scenarios of `infralab test`.
#
# Each step is a timed phase (scripts/phases.sh); before the closing total the suite prints
# how long each took, also when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/phases.sh

# Every step's output also goes to a log, so the suite can close with one total line.
mkdir -p target
suite_log=target/test-suite.log
exec > >(tee "$suite_log") 2>&1

# On failure: the lab down (when it is up) and the phases' times.
lab=()
finish() {
  local status=$?
  if ((${#lab[@]} > 0)); then
    ./target/debug/infralab down "${lab[@]}" >&2 || true
  fi
  phases_done "$status"
}
trap finish EXIT

phase "install"
bash scripts/install.sh
source scripts/nix-env.sh
export PATH="$HOME/.cargo/bin:$PATH"

phase "nix checks"
bash scripts/nix-checks.sh
phase "module harness"
# Evaluates the NixOS modules with nixpkgs' library when RAMPART_NIXPKGS_LIB names one;
# prints "skipped: …" otherwise (CI has no nixpkgs).
bash scripts/module-harness.sh
phase "cargo fmt"
cargo fmt --all --check
phase "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
phase "cargo nextest"
# nextest ends with one summary line for the whole workspace (cargo test would end on a
# doc-test block of "0 passed").
cargo nextest run --workspace --no-fail-fast --status-level fail --final-status-level fail

phase "infralab check" "every rendered file through its daemon's own check"
cargo build --workspace --bins
# The shipped and the lab settings with the promtool rule tests of each, and a topology
# with four web hosts. Each check builds its own namespaces and removes them.
checks=(--state target/lab-check --prefix "rl-check-$(pwd | cksum | cut -d' ' -f1).")
./target/debug/infralab check "${checks[@]}" --topology hosts/topology.json --profile shipped --rule-tests lib/tests/prometheus
./target/debug/infralab check "${checks[@]}" --topology hosts/topology.json --profile lab --rule-tests lib/tests/prometheus
./target/debug/infralab check "${checks[@]}" --topology tests/topologies/good/four-web.json --profile shipped

phase "lab" "infralab up, infralab test, infralab down"
# A state directory and namespace prefix of its own, so the suite never replaces a lab
# that `scripts/main.sh` left running, nor another checkout's suite on the same machine
# (the prefix names this checkout; a rerun here still cleans up after a killed run). The
# trap takes it down when a step fails; on success it is taken down in order below.
checkout=$(pwd | cksum | cut -d' ' -f1)
lab=(--topology hosts/topology.json --state target/lab-test --prefix "rl-test-$checkout.")
./target/debug/infralab up "${lab[@]}"
./target/debug/infralab test "${lab[@]}"
./target/debug/infralab down "${lab[@]}"
lab=()

trap - EXIT
phases_done 0
# Reached only when every step passed (set -e), so nothing failed. The total counts the
# Nix evaluation tests, the Rust tests, the daemons' checks and the scenarios.
total=$(grep -aoE '^(nix-eval|infralab-check|infralab-test): [0-9]+ passed|[0-9]+ tests run: [0-9]+ passed' "$suite_log" |
  grep -oE '[0-9]+ passed' | awk '{ n += $1 } END { print n + 0 }')
echo "rampart: $total passed, 0 failed"
