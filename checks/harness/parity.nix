# checks/harness/parity.nix: what NixOS runs against lib/daemons.nix, the attribute the lab
# runs too (its half of the parity test is `lab_start_is_the_nix_attribute` in
# tools/rampart/src/lab/daemons.rs).
#
# For every daemon the host's concerns run, the module must have recorded the attribute
# (`rampart.daemons.<name>`) exactly as lib/daemons.nix gives it, and set nixpkgs from it:
# every option value of its `nixos` part equal, its `args` as the unit's ExecStart
# (rampart-app, the failover agent after its paths) or nixpkgs' `extraFlags` (beyond paths, nothing else), its `environment`
# in the unit. A module that sets a daemon up any other way fails here.
#
#   nix-instantiate --eval --strict --json checks/harness/parity.nix \
#     --arg nixpkgsLib DIR --argstr host web1 [--arg modules '[ … ]']   => [ problem ]
{
  nixpkgsLib,
  host,
  modules ? [],
}: let
  lib = import (/. + "${toString nixpkgsLib}/lib");
  inherit ((import ./eval.nix {inherit lib host modules;})) config options;
  helpers = import ../../modules/lib.nix {inherit config lib;};
  recorded = config.rampart.daemons;
  expected = helpers.rampartLib.daemons {
    topology = config.rampart.topology;
    settings = {};
    inherit host;
    inherit (helpers) concerns;
  };
  show = builtins.toJSON;

  # A place where files live: what each side may add to the attribute's arguments.
  isPath = arg: lib.hasPrefix "/" arg || builtins.match "--?[a-z.-]+=/.*" arg != null;

  problemsOf = name: let
    d = recorded.${name};
    fresh = let
      all = helpers.rampartLib.daemons {
        topology = config.rampart.topology;
        inherit (d) settings;
        inherit host;
        inherit (helpers) concerns;
      };
    in
      all.${name};
    unit = config.systemd.services.${d.unit} or {};
    at = path: key: lib.attrByPath (lib.splitString "." path ++ [key]) null config;
    hasOption = path: key: lib.hasAttrByPath (lib.splitString "." path ++ [key]) options;

    # The nixos part: every value as the module set it.
    values = lib.concatLists (lib.mapAttrsToList (path: set:
      lib.concatMap (key:
        lib.optional (at path key != set.${key})
        "${host}: ${path}.${key} is ${show (at path key)} on NixOS, but lib/daemons.nix gives ${name} ${show set.${key}} (the lab runs that); set it from the attribute")
      (lib.attrNames set))
    d.nixos);

    # The arguments: rampart-app's ExecStart is ours; nixpkgs' daemons take extraFlags.
    flagsPath = lib.findFirst (path: hasOption path "extraFlags") null (lib.attrNames d.nixos);
    args =
      if name == "app"
      then let
        want = "${config.rampart.app.package}/bin/rampart-app ${lib.escapeShellArgs (d.args ++ config.rampart.app.extraArgs)}";
      in
        lib.optional (unit.serviceConfig.ExecStart or null != want)
        "${host}: rampart-app.service runs ${show (unit.serviceConfig.ExecStart or null)}, but lib/daemons.nix gives ${show want}; build ExecStart from the attribute's args"
      else if name == "failover-agent"
      then let
        # Ours too: where its files live (paths, each after its flag), then the attribute's.
        want = lib.escapeShellArgs d.args;
        run = unit.serviceConfig.ExecStart or "";
      in
        lib.optional (!(lib.hasSuffix " ${want}" run))
        "${host}: ${d.unit}.service runs ${show run}, but lib/daemons.nix gives the arguments ${show want}; build ExecStart from the attribute's args"
      else if flagsPath != null
      then let
        flags = lib.filter (arg: !(isPath arg)) (at flagsPath "extraFlags");
      in
        lib.optional (flags != d.args)
        "${host}: ${flagsPath}.extraFlags has ${show flags} besides paths, but lib/daemons.nix gives ${name} the arguments ${show d.args}; set extraFlags from the attribute"
      else
        lib.optional (d.args != [])
        "${host}: lib/daemons.nix gives ${name} the arguments ${show d.args}, but nixpkgs' module for it takes none; move them to its main configuration";

    environment = lib.concatMap (key:
      lib.optional ((unit.environment or {}).${key} or null != d.environment.${key})
      "${host}: ${d.unit}.service has ${key}=${show ((unit.environment or {}).${key} or null)}, but lib/daemons.nix gives ${show d.environment.${key}}")
    (lib.attrNames d.environment);

    # fileEnvironment: the unit names some file for each (the lab names its own copy).
    fileEnvironment = lib.concatMap (key:
      lib.optional (!((unit.environment or {}) ? ${key}))
      "${host}: ${d.unit}.service has no ${key}, but lib/daemons.nix gives ${name} ${key} = the rendered ${d.fileEnvironment.${key}}; set it to that file")
    (lib.attrNames (d.fileEnvironment or {}));
  in
    lib.optional (builtins.removeAttrs d ["settings"] != fresh)
    "${host}: rampart.daemons.${name} is not what lib/daemons.nix gives for its settings; take it from helpers.daemon unchanged"
    ++ lib.optional (!(config.systemd.services ? ${d.unit}) && name == "app")
    "${host}: no ${d.unit}.service"
    ++ values
    ++ args
    ++ environment
    ++ fileEnvironment;
in
  map (name: "${host}: lib/daemons.nix runs ${name} here, but no module recorded it in rampart.daemons; set its unit from helpers.daemon \"${name}\"")
  (lib.filter (name: !(recorded ? ${name})) (lib.attrNames expected))
  ++ map (name: "${host}: rampart.daemons.${name} is recorded, but lib/daemons.nix runs no ${name} on ${host}")
  (lib.filter (name: !(expected ? ${name})) (lib.attrNames recorded))
  ++ lib.concatMap problemsOf (lib.attrNames recorded)
