#!/usr/bin/env bash
# rampart's main job: install what is needed, build the tools, validate the topology, print
# the plan (hosts, roles, who may reach what), then bring the lab up: the three hosts as
# network namespaces running the rendered configuration on Debian's daemons, ending with
# `reach check` from every vantage (the health verdict). Safe to run twice: `infralab up`
# replaces a lab it finds. `./target/release/infralab down` removes it.
#
# Each phase (install, build, plan, lab up, status) is announced and timed; the last lines
# say how long each took. A first build on a fresh machine takes minutes: cargo shows which
# crate it is compiling.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/phases.sh
trap 'phases_done $?' EXIT

phase "install"
bash scripts/install.sh
source scripts/nix-env.sh
export PATH="$HOME/.cargo/bin:$PATH"

phase "build"
cargo build --release --workspace

phase "plan"
# The flake's pure output is what every host is built from; evaluating it proves the
# topology passes the Nix-side validation too.
nix eval --raw .#lib.shippedTopology.name >/dev/null
./target/release/infralab plan --topology hosts/topology.json

phase "lab up"
./target/release/infralab up --topology hosts/topology.json

phase "status"
./target/release/infralab status --topology hosts/topology.json
