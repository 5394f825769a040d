# modules/app.nix: the application server behind nginx (rampart.app).
#
# rampart ships a small application (`rampart-app`, tools/app): it answers which host
# served a request, records visits in MariaDB (writes to whichever database host is
# writable, reads from the local database) and counts its requests and errors. nginx proxies to 127.0.0.1 on
# `rampart.app.port`; users who bring their own application disable this one and listen
# on that port instead.
{
  config,
  lib,
  ...
}: let
  cfg = config.rampart.app;
  helpers = import ./lib.nix {inherit config lib;};
  inherit (helpers) topology topo;
  databaseHosts = builtins.filter (h: topology.hasRole h "databasePrimary" || topology.hasRole h "databaseReplica") topo.hosts;

  # The command line of lib/daemons.nix (the lab runs the same), reading its secret and the
  # CA from the unit's credentials directory (LoadCredential= below).
  daemon = helpers.daemon "app" (lib.genAttrs ["pkiDir" "secretsDir"] (_: helpers.credentialsDir "rampart-app"));
in {
  imports = [./topology.nix ./resources.nix];

  options.rampart.app = {
    enable = lib.mkEnableOption "the rampart application server on 127.0.0.1, behind nginx";

    package = lib.mkOption {
      type = lib.types.package;
      description = "The application package (binary `rampart-app`); the rampart flake's `nixosModules` set it to the flake's own.";
    };

    port = lib.mkOption {
      type = lib.types.port;
      default = helpers.rampartLib.settings.app.port;
      defaultText = lib.literalMD "`app.port` of {file}`lib/settings.nix` (8080)";
      description = ''
        Loopback port the application listens on and nginx proxies to (the renderers'
        `settings.app.port`). To serve your own application instead, disable this one and
        listen on this port.
      '';
    };

    databasePasswordFile = helpers.secretFileOption "app-db-password" "File holding the application's database password, read at run time (never a store path).";

    extraArgs = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [];
      description = "Further arguments to `rampart-app`.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      (helpers.requireRole ["app" "enable"])
      {
        assertion = helpers.host == null || databaseHosts != [];
        message = "rampart.app.enable: rampart.topology has no database host (got none, expected a host with role \"databasePrimary\" or \"databaseReplica\"); the application writes its visits to whichever of them is writable, so give database hosts those roles";
      }
      (helpers.runtimePath "rampart.app.databasePasswordFile" cfg.databasePasswordFile "${config.rampart.secretsDir}/app-db-password")
    ];

    # nginx's upstream (lib/render/nginx.nix) follows the port.
    rampart.settings.app.port = cfg.port;

    systemd.services.rampart-app = {
      description = "rampart application server";
      wantedBy = ["multi-user.target"];
      after = ["network-online.target"];
      wants = ["network-online.target"];
      inherit (daemon) environment;
      # No state, no privileges: a user that exists only while the unit runs.
      serviceConfig =
        helpers.hardening
        // {
          DynamicUser = true;
          ExecStart = "${cfg.package}/bin/rampart-app ${lib.escapeShellArgs (daemon.args ++ cfg.extraArgs)}";
          LoadCredential =
            helpers.loadSecrets "rampart-app" {"app-db-password" = cfg.databasePasswordFile;}
            ++ helpers.loadPki (helpers.samePki ["ca.pem"]);
          Restart = "always";
          RestartSec = "2s";
        };
    };

    rampart.resources.units = ["rampart-app"];
    rampart.daemons.app = daemon;
  };
}
