# lib/roles.nix: which rampart concern each topology role calls for, written once.
#
# modules/roles.nix enables every concern a host's roles call for (mkDefault, so a host may
# still switch one off); each concern module asserts it runs only where its roles are
# (`requireRole` in modules/lib.nix); checks/hosts.nix holds the host files to the same
# table. A concern is one `rampart.*` switch; `roles = null` means every host runs it,
# whatever its roles.
#
# Type: { concerns :: [ { option :: [ string ]; roles :: null or [ role ]; } ];
#         name :: concern -> string; byOption :: [ string ] -> concern;
#         runs :: host -> concern -> bool; enabledOn :: host -> [ concern ];
#         runsByName :: host -> { <concern key> = bool; }; key :: concern -> string; }
let
  inherit (builtins) any concatStringsSep filter head listToAttrs;
  inherit (import ./topology.nix) hasRole;

  concerns = [
    # Every host: its default-deny firewall, the monitoring agents (node exporter, the
    # exporters of the concerns it runs, the reach timer), the per-service limits and its
    # etcd member (the load balancer is the tie-breaker of the database hosts' consensus).
    {
      option = ["firewall" "enable"];
      roles = null;
    }
    {
      option = ["monitoring" "enable"];
      roles = null;
    }
    {
      option = ["resources" "enable"];
      roles = null;
    }
    # SSH for administrators, on the topology address only.
    {
      option = ["ssh" "enable"];
      roles = null;
    }
    {
      option = ["etcd" "enable"];
      roles = null;
    }
    {
      option = ["loadBalancer" "enable"];
      roles = ["loadBalancer"];
    }
    # A web host serves the application behind its nginx.
    {
      option = ["web" "enable"];
      roles = ["web"];
    }
    {
      option = ["app" "enable"];
      roles = ["web"];
    }
    # One module for either database role: the topology says which one a host has.
    {
      option = ["database" "enable"];
      roles = ["databasePrimary" "databaseReplica"];
    }
    {
      option = ["monitoring" "server" "enable"];
      roles = ["monitoring"];
    }
  ];

  name = concern: "rampart.${concatStringsSep "." concern.option}";
  key = concern: concatStringsSep "." (filter (part: part != "enable") concern.option);

  byOption = option: let
    found = filter (concern: concern.option == option) concerns;
  in
    if found == []
    then throw "lib/roles.nix: no concern ${name {inherit option;}} in the table (expected one of: ${concatStringsSep ", " (map name concerns)})"
    else head found;

  runs = host: concern: concern.roles == null || any (hasRole host) concern.roles;
in {
  inherit concerns name byOption runs;

  # The concerns a host of the topology runs, in table order.
  enabledOn = host: filter (runs host) concerns;

  # Whether `host` runs each concern, by its option path without `enable`:
  # `(runsByName web2).database` => true. lib/secrets.nix and lib/daemons.nix take this
  # form (the modules give it from their enable switches).
  runsByName = host:
    listToAttrs (map (concern: {
        name = key concern;
        value = runs host concern;
      })
      concerns);

  # A concern's key in `runsByName`: "app", "monitoring.server".
  inherit key;
}
