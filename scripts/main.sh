#!/usr/bin/env bash
# rampart's main job: install what is needed, build the tools, validate the topology and
# print the plan (hosts, roles, who may reach what).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
source scripts/nix-env.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --quiet --workspace
# The flake's pure output is what every host is built from; evaluating it proves the
# topology passes the Nix-side validation too.
nix eval --raw .#lib.shippedTopology.name >/dev/null
./target/release/infralab plan --topology hosts/topology.json
