# modules/topology.nix: the options every rampart module shares.
#
# `rampart.topology` is hosts/topology.json; `rampart.hostName` says which of its hosts this
# machine is. Each concern module (firewall, loadBalancer, …) reads both, and the host's
# roles switch the concerns on (roles.nix), so a host is configured by its name. Secrets are never values here, only the directories that hold
# them at run time (docs/contracts.md, "Certificates" and "Secrets").
{
  config,
  lib,
  ...
}: let
  cfg = config.rampart;
  helpers = import ./lib.nix {inherit config lib;};
  problems = helpers.topology.validate cfg.topology;
  # The renderers' defaults (lib/settings.nix): the one place the runtime paths are written.
  defaults = helpers.rampartLib.settings;
in {
  options.rampart = {
    topology = lib.mkOption {
      type = lib.types.attrs;
      default = helpers.rampartLib.shippedTopology;
      defaultText = lib.literalExpression "builtins.fromJSON (builtins.readFile ./hosts/topology.json)";
      example = lib.literalExpression "builtins.fromJSON (builtins.readFile ./my-topology.json)";
      description = ''
        The infrastructure: hosts, addresses, roles, services and who may reach what, in the
        format of {file}`hosts/topology.json` (see {file}`docs/topology.md`). Every rampart
        module renders its daemon's configuration from it; give the same value to every host.
      '';
    };

    hostName = lib.mkOption {
      type = lib.types.str;
      default = config.networking.hostName;
      defaultText = lib.literalExpression "config.networking.hostName";
      example = "web1";
      description = ''
        Which host of {option}`rampart.topology` this machine is. Its roles decide which
        concerns may be enabled, and its address is where the daemons listen.
      '';
    };

    pkiDir = lib.mkOption {
      type = lib.types.str;
      default = defaults.pkiDir;
      defaultText = lib.literalExpression ''"${defaults.pkiDir}"'';
      example = "/run/secrets/rampart/pki";
      description = ''
        Directory holding this host's certificates and private keys under the fixed names of
        {file}`docs/contracts.md` (`ca.pem`, `<purpose>.pem`, `<purpose>.key`), as written by
        `certtool issue`. A runtime path: it must not be in the Nix store. Daemons receive
        the files through systemd's `LoadCredential=`, so the keys may stay `0600 root`.
      '';
    };

    secretsDir = lib.mkOption {
      type = lib.types.str;
      default = defaults.secretsDir;
      defaultText = lib.literalExpression ''"${defaults.secretsDir}"'';
      example = "/run/agenix/rampart";
      description = ''
        Directory of the runtime secrets, one value per file ({option}`rampart.secrets`
        lists the files this host needs): the sops-nix/agenix convention. The `…File`
        options of the concern modules default to files in it.
      '';
    };

    interface = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "ens3";
      description = ''
        The network interface on the topology's network. When set, it gets this host's
        address from {option}`rampart.topology` (with the prefix of `network.cidr`), the
        address every rampart daemon listens on. Leave it null to configure addresses
        yourself.
      '';
    };

    secrets = lib.mkOption {
      type = lib.types.attrsOf lib.types.anything;
      readOnly = true;
      default = helpers.secrets;
      defaultText = lib.literalMD "the list of {file}`lib/secrets.nix` for this host and its enabled concerns";
      description = ''
        The secret files this host needs in {option}`rampart.secretsDir`: per file name, what
        it holds, its bootstrap placeholder and who reads it (a unit through
        `LoadCredential=`, or `rampart-db` through an environment variable). Every unit
        loads its secrets from this list; provision exactly these files.
      '';
    };

    daemons = lib.mkOption {
      type = lib.types.attrsOf lib.types.anything;
      default = {};
      internal = true;
      description = "How each concern started its daemons: the attribute of {file}`lib/daemons.nix` it set its units from (for the parity check).";
    };

    settings = lib.mkOption {
      type = lib.types.attrsOf lib.types.anything;
      default = {};
      example = lib.literalExpression "{ prometheus.scrapeInterval = \"5s\"; haproxy.maxConnections = 5000; }";
      description = ''
        Renderer tunables, merged recursively over {file}`lib/settings.nix` (scrape
        intervals, timeouts, loopback ports, …). The paths `pkiDir` and `secretsDir` come
        from {option}`rampart.pkiDir` and {option}`rampart.secretsDir`.
      '';
    };
  };

  config.networking.interfaces = lib.mkIf (cfg.interface != null && helpers.host != null) {
    ${cfg.interface}.ipv4.addresses = [
      {
        inherit (helpers.host) address;
        prefixLength = lib.toInt (lib.last (lib.splitString "/" cfg.topology.network.cidr));
      }
    ];
  };

  config.assertions =
    map (problem: {
      assertion = false;
      message = "rampart.topology: ${problem}; fix hosts/topology.json (docs/topology.md lists every field)";
    })
    problems
    ++ lib.optionals (problems == []) [
      {
        assertion = helpers.host != null;
        message = "rampart.hostName: not a host of rampart.topology (got ${builtins.toJSON cfg.hostName}, expected one of: ${lib.concatStringsSep ", " helpers.hostNames}); set networking.hostName (or rampart.hostName) to this machine's name in hosts/topology.json";
      }
      (helpers.runtimePath "rampart.pkiDir" cfg.pkiDir defaults.pkiDir)
      (helpers.runtimePath "rampart.secretsDir" cfg.secretsDir defaults.secretsDir)
    ];
}
