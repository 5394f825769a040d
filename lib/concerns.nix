# lib/concerns.nix: which rampart concerns a host runs, from its roles in the topology.
#
# A concern is one NixOS module of modules/ (`rampart.<concern>.enable`) and, in the lab, the
# daemons of that module. The table below is the default both follow; the secrets list
# (lib/secrets.nix) and the launch descriptions (lib/daemons.nix) are derived from it, so a
# host provisioned from the docs needs exactly what its concerns read.
#
# Type: { table :: { <concern> = [ role ]; }; of :: host -> { <concern> = bool; }; }
#
# Example: (of web2).database => true (role databaseReplica)
let
  inherit (builtins) any attrNames listToAttrs;
  topologyLib = import ./topology.nix;
in rec {
  # Concern => the roles that call for it; [ ] means every host.
  table = {
    firewall = [];
    resources = [];
    ssh = [];
    # The agents: node exporter, the exporters of the host's other concerns, reach.
    monitoring = [];
    "monitoring.server" = ["monitoring"];
    loadBalancer = ["loadBalancer"];
    web = ["web"];
    app = ["web"];
    database = ["databasePrimary" "databaseReplica"];
  };

  # Which concerns `host` runs by default.
  of = host:
    listToAttrs (map (concern: {
        name = concern;
        value = table.${concern} == [] || any (topologyLib.hasRole host) table.${concern};
      })
      (attrNames table));
}
