# lib/tests/prometheus/render.nix: the monitoring host's files (prometheus.yml, rules.yml,
# alertmanager.yml) for a topology file and settings, through `lib.render` as the lab and
# the modules get them; for scripts/monitoring-checks.sh.
#
# Type: { topology :: path; settings :: attrs } -> { "<relative path>" = string; }
#
# Example:
#   nix eval --raw --impure --expr \
#     '(import ./lib/tests/prometheus/render.nix { topology = ./hosts/topology.json; })."prometheus/rules.yml"'
{
  topology,
  settings ? {},
}: let
  lib = import ../.. {};
  monitoring = builtins.head (lib.topology.hostsWithRole (lib.topology.fromFile topology) "monitoring");
in
  (lib.render {inherit topology settings;}).${monitoring.name}
