# checks/hosts.nix: the host files and the role table against hosts/topology.json, with
# builtins only.
#
# The part of the module checks that needs no nixpkgs, so CI runs it everywhere. Which
# concerns a host runs is written once, in lib/roles.nix, and follows from the host's roles
# (modules/roles.nix); this check keeps it that way:
#   - the table names only roles the topology knows, and every role calls for a concern
#     (a new role with no concern would otherwise run nothing, silently);
#   - every optional hosts/<name>.nix names a topology host;
#   - no host file (nor hosts/common.nix, which every host imports) switches a concern on:
#     the roles do that. Switching one off (`rampart.app.enable = false;`) is a host's
#     own decision and allowed.
# The module harness (checks/harness) then evaluates the hosts with nixpkgs' module system.
#
#   nix-instantiate --eval --strict --json checks/hosts.nix   => [ problem ] ([] is a pass)
let
  inherit (builtins) attrNames concatMap concatStringsSep elem filter foldl' isAttrs isFunction listToAttrs map match readDir;
  rampartLib = import ../lib {};
  topology = rampartLib.shippedTopology;
  inherit (rampartLib) roles;

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

  switchedOn = rampart: concern: let
    at =
      foldl' (value: key:
        if isAttrs value
        then value.${key} or null
        else null)
      rampart
      concern.option;
  in
    at == true;

  tableProblems =
    concatMap (concern:
      map (role: "lib/roles.nix: ${roles.name concern} names the role \"${role}\", which hosts/topology.json does not know (expected one of: ${concatStringsSep ", " rampartLib.topology.roles})")
      (filter (role: !(elem role rampartLib.topology.roles)) (
        if concern.roles == null
        then []
        else concern.roles
      )))
    roles.concerns
    ++ map (role: "lib/roles.nix: no concern for the role \"${role}\" (expected at least one switch that the role calls for); add its row to the table")
    (filter (role: !(builtins.any (concern: concern.roles != null && elem role concern.roles) roles.concerns)) rampartLib.topology.roles);

  # A file's switches that are on (the roles switch concerns on, never a host file), each
  # with `advice concern`.
  switchesOn = file: advice:
    map (concern: "${file}: ${roles.name concern} is set to true; ${advice concern}")
    (filter (switchedOn (rampartOf (../. + "/${file}"))) roles.concerns);

  byName = listToAttrs (map (h: {
      inherit (h) name;
      value = h;
    })
    topology.hosts);
in
  tableProblems
  ++ map (name: "hosts/${name}.nix: no host \"${name}\" in hosts/topology.json (expected one of: ${concatStringsSep ", " hostNames}); rename or remove the file") (filter (name: !(byName ? ${name})) hostFiles)
  ++ switchesOn "hosts/common.nix" (_: "remove it: every host's concerns follow from its roles (lib/roles.nix)")
  ++ concatMap (name:
    switchesOn "hosts/${name}.nix" (concern:
      if roles.runs byName.${name} concern
      then "remove it: ${name}'s roles switch it on already (lib/roles.nix)"
      else "remove it, or give ${name} the role ${concatStringsSep " or " concern.roles} in hosts/topology.json: the concern runs only where lib/roles.nix says"))
  (filter (name: byName ? ${name}) hostFiles)
