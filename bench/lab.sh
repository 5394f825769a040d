#!/usr/bin/env bash
# bench/lab.sh: the lab's figures, on a lab of its own (state target/lab-bench, namespaces
# rl-bench.*), taken down at the end whatever happens.
#
#   1. bring-up: time from `infralab up` to every service answering, every target scraped
#      and `reach` run from every vantage (the last line of `infralab up`)
#   2. scenario times: `infralab test`, one line per scenario with its seconds
#   3. HTTPS throughput and p99 from `outside` through lb, (a) re-encrypting to the
#      backends (shipped) and (b) plain backends, same run; ratio a/b (goal ≥ 0.85)
#
# Usage: bash bench/lab.sh [SECONDS_PER_VARIANT [CONNECTIONS]]   (defaults 10, 32)
# Every load is wrk with a fixed duration against addresses inside the lab's namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --quiet --workspace --bins
infralab=./target/release/infralab
lab=(--topology hosts/topology.json --state target/lab-bench --prefix rl-bench.)
trap '$infralab down "${lab[@]}" >&2 || true' EXIT

echo "== bring-up"
$infralab up "${lab[@]}" >target/lab-bench-up.log || {
  cat target/lab-bench-up.log
  exit 1
}
# The steps with their times, without reach's tables.
grep -Ev '^    ' target/lab-bench-up.log

echo
echo "== scenarios"
$infralab test "${lab[@]}" | grep -Ev '^    ' || true

echo
echo "== HTTPS throughput: re-encrypting vs plain backends"
$infralab bench "${lab[@]}" --seconds "$seconds" --connections "$connections"
