#!/usr/bin/env bash
# scripts/monitoring-checks.sh: the monitoring configuration, checked by the daemons' own
# tools from Debian (issue #6, "Verified here").
#
# Renders the monitoring host's files (lib/render/prometheus.nix, alertmanager.nix) for
#   shipped    hosts/topology.json, default settings
#   four-web   tests/topologies/good/four-web.json, default settings
#   lab        hosts/topology.json with the lab's settings (2s scrapes, `for:` at most 6s)
# into a temporary directory, then runs on each profile
#   promtool check config   prometheus.yml (and the rule file it names)
#   promtool check rules    rules.yml
#   amtool check-config     alertmanager.yml
# and the promtool unit tests of lib/tests/prometheus/ (every alert: healthy, just before
# and just after `for`) against the shipped rules, lab.test.yml against the lab's.
#
# Prints one line per check and closes with `monitoring-checks: N passed, M failed`;
# exit 0 when all passed, 1 when a check failed, 2 when the files could not be rendered
# or a tool is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/nix-env.sh
source scripts/nix-env.sh

for tool in promtool amtool nix; do
  if ! command -v "$tool" >/dev/null; then
    echo "monitoring-checks: $tool not found; run scripts/install.sh (Debian packages prometheus, prometheus-alertmanager, nix-bin)" >&2
    exit 2
  fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

lab_settings='{ prometheus = { scrapeInterval = "2s"; maxFor = "6s"; }; alertmanager = { groupWait = "1s"; groupInterval = "5s"; }; }'
files=(prometheus/prometheus.yml prometheus/rules.yml alertmanager/alertmanager.yml)

# render PROFILE TOPOLOGY SETTINGS: writes the profile's files under $work/PROFILE/.
render() {
  local profile=$1 topology=$2 settings=$3 file
  for file in "${files[@]}"; do
    mkdir -p "$work/$profile/$(dirname "$file")"
    if ! nix eval --raw --impure --expr \
      "(import ./lib/tests/prometheus/render.nix { topology = ./$topology; settings = $settings; }).\"$file\"" \
      >"$work/$profile/$file"; then
      echo "monitoring-checks: could not render $file for $profile (error above)" >&2
      exit 2
    fi
  done
}

passed=0
failed=0
# check NAME COMMAND...: runs the command quietly, shows its output only when it fails.
check() {
  local name=$1 output
  shift
  if output=$("$@" 2>&1); then
    passed=$((passed + 1))
    echo "ok    $name"
  else
    failed=$((failed + 1))
    echo "FAIL  $name"
    printf '%s\n' "$output" | sed 's/^/      /'
  fi
}

render shipped hosts/topology.json '{ }'
render four-web tests/topologies/good/four-web.json '{ }'
render lab hosts/topology.json "$lab_settings"

for profile in shipped four-web lab; do
  dir=$work/$profile
  check "promtool check config ($profile)" promtool check config "$dir/prometheus/prometheus.yml"
  check "promtool check rules ($profile)" promtool check rules "$dir/prometheus/rules.yml"
  check "amtool check-config ($profile)" amtool check-config "$dir/alertmanager/alertmanager.yml"
done

# The unit tests name their rule file relative to themselves: put them next to it.
tests=$work/tests
mkdir -p "$tests"
cp lib/tests/prometheus/*.test.yml "$tests/"
cp "$work/shipped/prometheus/rules.yml" "$tests/rules.yml"
cp "$work/lab/prometheus/rules.yml" "$tests/rules-lab.yml"
for test in "$tests"/*.test.yml; do
  check "promtool test rules $(basename "$test")" promtool test rules "$test"
done

echo "monitoring-checks: $passed passed, $failed failed"
((failed == 0)) || exit 1
