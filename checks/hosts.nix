# checks/hosts.nix: the host files against hosts/topology.json, with builtins only.
#
# The part of the module checks that needs no nixpkgs, so CI runs it everywhere: every
# topology host has hosts/<name>.nix and every such file names a topology host; each host
# file (with what it imports) enables exactly the concerns its roles call for. The module
# harness (checks/harness) then evaluates the same hosts with nixpkgs' module system.
#
#   nix-instantiate --eval --strict --json checks/hosts.nix   => [ problem ] ([] is a pass)
let
  inherit (builtins) attrNames concatMap elem filter foldl' isAttrs isFunction listToAttrs map match readDir;
  topology = (import ../lib {}).shippedTopology;
  topologyLib = import ../lib/topology.nix;

  # Files of hosts/ that are not a host: the builder, the shared part, the placeholder.
  support = ["default.nix" "common.nix" "hardware-placeholder.nix"];
  hostFiles = map (file: builtins.head (match "(.*)\\.nix" file)) (filter (file:
    match ".*\\.nix" file != null && !(elem file support))
  (attrNames (readDir ../hosts)));
  hostNames = map (h: h.name) topology.hosts;

  # The `rampart` definitions of a host file and everything it imports, merged shallowly
  # per concern (later imports win, as the module system would for these plain values).
  rampartOf = file: let
    value = import file;
    # Module arguments are never needed for `imports` and `rampart` in a host file.
    unavailable = name: throw "checks/hosts.nix: ${toString file} uses the module argument `${name}` in its imports or rampart settings; keep those plain values";
    module =
      if isFunction value
      then
        value {
          lib = unavailable "lib";
          config = unavailable "config";
          pkgs = unavailable "pkgs";
        }
      else value;
    imported = foldl' (acc: path: acc // rampartOf path) {} (module.imports or []);
    own = module.rampart or {};
  in
    foldl' (acc: concern:
      acc
      // {
        ${concern} =
          (acc.${concern} or {})
          // (
            if isAttrs own.${concern}
            then own.${concern}
            else {}
          );
      })
    imported (attrNames own);

  enabled = rampart: path: let
    at =
      foldl' (value: key:
        if isAttrs value
        then value.${key} or null
        else null)
      rampart
      path;
  in
    at == true;

  # Each concern a role calls for, as the option that enables it.
  concerns = [
    {
      option = ["loadBalancer" "enable"];
      roles = ["loadBalancer"];
    }
    {
      option = ["web" "enable"];
      roles = ["web"];
    }
    {
      option = ["app" "enable"];
      roles = ["web"];
    }
    {
      option = ["database" "enable"];
      roles = ["databasePrimary" "databaseReplica"];
    }
    {
      option = ["monitoring" "server" "enable"];
      roles = ["monitoring"];
    }
  ];
  everywhere = [["firewall" "enable"] ["monitoring" "enable"] ["resources" "enable"] ["etcd" "enable"]];

  show = path: "rampart.${builtins.concatStringsSep "." path}";
  problemsOf = host: let
    rampart = rampartOf (../hosts + "/${host.name}.nix");
    hasAny = roles: builtins.any (role: topologyLib.hasRole host role) roles;
  in
    concatMap (c: let
      on = enabled rampart c.option;
      wanted = hasAny c.roles;
    in
      if on && !wanted
      then ["hosts/${host.name}.nix: ${show c.option} is true, but ${host.name} has no role ${builtins.concatStringsSep " or " c.roles} in hosts/topology.json; remove it there"]
      else if wanted && !on
      then ["hosts/${host.name}.nix: ${host.name} has role ${builtins.concatStringsSep " or " c.roles} in hosts/topology.json, but ${show c.option} is not true; enable it"]
      else [])
    concerns
    ++ concatMap (path:
      if enabled rampart path
      then []
      else ["hosts/${host.name}.nix: ${show path} is not true (every host needs it; hosts/common.nix sets it)"])
    everywhere;

  byName = listToAttrs (map (h: {
      inherit (h) name;
      value = h;
    })
    topology.hosts);
in
  map (name: "hosts/${name}.nix: no host \"${name}\" in hosts/topology.json (expected one of: ${builtins.concatStringsSep ", " hostNames}); rename or remove the file") (filter (name: !(byName ? ${name})) hostFiles)
  ++ concatMap (host:
    if elem host.name hostFiles
    then problemsOf host
    else ["hosts/${host.name}.nix: missing; every host of hosts/topology.json needs one (copy a host with the same roles)"])
  topology.hosts
