# modules/lib.nix: what every rampart module needs from the topology, in one place.
#
# Not a module: each module calls it with its own `config` and `lib`,
#   helpers = import ./lib.nix { inherit config lib; };
# so every module reads the topology, its host record and the renderer settings, and words
# its assertions, the same way. (Not named `rampart`: that is the option tree.)
{
  config,
  lib,
}: let
  rampartLib = import ../lib {};
  inherit (rampartLib) topology roles;

  top = config.rampart;
  topo = top.topology;
  valid = topology.validate topo == [];

  # The host record of this machine, or null when the topology is invalid or
  # rampart.hostName names none of its hosts (topology.nix asserts on both; a null host
  # silences the other modules' assertions, so those messages are the ones users see).
  host =
    if valid
    then lib.findFirst (h: h.name == top.hostName) null topo.hosts
    else null;

  hasRole = role: host != null && topology.hasRole host role;

  # The concerns this host runs, by their keys in lib/roles.nix (`app`, `monitoring.server`),
  # from their switches; `false` for a module not imported.
  concerns = lib.listToAttrs (map (concern: lib.nameValuePair (roles.key concern) (lib.attrByPath concern.option false top)) roles.concerns);

  # This host's secrets (lib/secrets.nix): the one list every unit below loads from.
  secrets =
    if host == null
    then {}
    else
      rampartLib.secrets.forHost {
        topology = topo;
        inherit host concerns;
        settings = settings {};
      };

  /*
  The settings a renderer receives: lib/settings.nix, then rampart.settings, then the paths
  of rampart.pkiDir/secretsDir, then `overrides` (a module's own, e.g. the credentials
  directory its daemon reads keys from).
  */
  settings = overrides:
    lib.foldl' lib.recursiveUpdate rampartLib.settings [
      top.settings
      {inherit (top) pkiDir secretsDir;}
      overrides
    ];
in {
  inherit rampartLib topology topo host hasRole settings concerns secrets;
  inherit (rampartLib) renderers;

  hostNames = map (h: h.name) topo.hosts;

  /*
  How daemon `name` starts on this host (lib/daemons.nix), with `overrides` over the
  settings: the module sets its nixpkgs options and unit from it, and records it in
  `rampart.daemons.<name>` for the parity check (checks/harness/parity.nix).
  */
  daemon = name: overrides: let
    all = rampartLib.daemons {
      topology = topo;
      settings = settings overrides;
      inherit host concerns;
    };
  in
    all.${name} // {settings = settings overrides;};

  /*
  LoadCredential= entries for the secrets that `unit` reads on this host, as
  lib/secrets.nix lists them, from `files` (secret name => the path its …File option
  gives). A secret the list does not give this unit is never loaded.
  */
  loadSecrets = unit: files:
    map (name: "${name}:${files.${name} or (throw "modules: ${unit} reads the secret ${name} (lib/secrets.nix) but its module gives no file for it; add its …File option to the call of loadSecrets")}")
    (rampartLib.secrets.readBy secrets unit);

  # The TCP port of a topology service (`servicePort "prometheus"` => 9090).
  servicePort = topology.servicePort topo;

  # The files a renderer (lib/render/<name>.nix) gives this host, with `overrides` over the
  # settings; `renderer` is the function itself, e.g. `renderers.nftables.table`.
  render = renderer: overrides:
    renderer {
      topology = topo;
      settings = settings overrides;
      inherit host;
    };

  /*
  An assertion that this host has one of the roles lib/roles.nix gives the concern at
  `option` (under `rampart`, e.g. [ "loadBalancer" "enable" ]), for a concern that only
  makes sense there. The message names the option, the host, its roles and where to
  enable the concern instead.
  */
  requireRole = option: let
    concern = roles.byOption option;
    wanted = concern.roles;
    hostRoles = lib.optionals (host != null) host.roles;
    candidates = lib.unique (lib.concatMap (role: map (h: h.name) (topology.hostsWithRole topo role)) wanted);
  in {
    assertion = host == null || roles.runs host concern;
    message = "${roles.name concern}: host \"${top.hostName}\" has no role ${lib.concatMapStringsSep " or " (r: "\"${r}\"") wanted} in rampart.topology (got roles: ${
      if hostRoles == []
      then "none"
      else lib.concatStringsSep ", " hostRoles
    }; expected ${lib.concatStringsSep " or " wanted}); enable it on ${
      if candidates == []
      then "a host with that role (none has it)"
      else lib.concatStringsSep ", " candidates
    } instead, or give ${top.hostName} the role in hosts/topology.json";
  };

  /*
  An assertion that `value`, the path of a secret (a key or a password file), is an absolute
  path outside the Nix store. The store is world-readable, and a string with store context
  (`"${pkgs.writeText …}"`) would copy the secret there at build time.
  */
  runtimePath = option: value: example: let
    inStore = builtins.hasContext value || lib.hasPrefix "${builtins.storeDir}/" value;
  in {
    assertion = lib.hasPrefix "/" value && !inStore;
    message =
      if inStore
      then "${option}: a secret must not be in the Nix store, which every local user can read (got ${builtins.toJSON (builtins.unsafeDiscardStringContext value)}, expected a runtime path such as \"${example}\"); deploy the file with sops-nix or agenix and set ${option} to where it lands"
      else "${option}: not an absolute path (got ${builtins.toJSON value}, expected a runtime path such as \"${example}\"); give the full path of the file on the host";
  };

  # The systemd hardening baseline of nixpkgs' exporters.nix, for the units rampart adds.
  # A unit that needs more (an address family, a write path) adds it after `//`, with why.
  hardening = {
    CapabilityBoundingSet = [""];
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    NoNewPrivileges = true;
    PrivateDevices = true;
    PrivateTmp = true;
    ProtectClock = true;
    ProtectControlGroups = true;
    ProtectHome = true;
    ProtectHostname = true;
    ProtectKernelLogs = true;
    ProtectKernelModules = true;
    ProtectKernelTunables = true;
    ProtectSystem = "strict";
    RestrictAddressFamilies = ["AF_INET" "AF_INET6"];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    SystemCallArchitectures = "native";
    UMask = "0077";
  };

  /*
  An option holding the path of a secret file, by default `<rampart.secretsDir>/<name>`
  (docs/contracts.md, "Secrets"). A string, never a Nix path (which would be copied into
  the store); check it with `runtimePath`.
  */
  secretFileOption = name: description:
    lib.mkOption {
      type = lib.types.str;
      default = "${top.secretsDir}/${name}";
      defaultText = lib.literalExpression "\"\${config.rampart.secretsDir}/${name}\"";
      inherit description;
    };

  # The directory systemd puts a unit's LoadCredential= files in, readable by the unit's
  # user only; renderers get it as pkiDir so a daemon reads its keys from there.
  credentialsDir = unit: "/run/credentials/${unit}.service";

  # LoadCredential= entries exposing files of rampart.pkiDir to a unit: `files` maps the
  # name in the credentials directory to the file's name in pkiDir.
  loadPki = files: lib.mapAttrsToList (name: file: "${name}:${top.pkiDir}/${file}") files;

  # The usual case of loadPki's argument: every file under its own name.
  samePki = names: lib.genAttrs names (name: name);
}
