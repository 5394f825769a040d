# lib/tests/prometheus/render.nix: the monitoring host's files (prometheus.yml, rules.yml,
# alertmanager.yml) for a topology file and settings, for scripts/monitoring-checks.sh.
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
  topologyLib = import ../../topology.nix;
  topo = topologyLib.fromFile topology;
  args = {
    topology = topo;
    inherit settings;
    host = builtins.head (topologyLib.hostsWithRole topo "monitoring");
  };
in
  import ../../render/prometheus.nix args // import ../../render/alertmanager.nix args
