# modules/app.nix: the application server behind nginx (rampart.app).
#
# rampart ships a small application (`rampart-app`, tools/app): it answers which host
# served a request, records visits in MariaDB (writes to whichever database host is
# writable, reads from the local database) and counts its requests and errors. nginx proxies to 127.0.0.1 on
# `rampart.app.port`; users who bring their own application disable this one and listen
# on that port instead.
#
# Zero-downtime restarts: systemd holds the listening socket (`rampart-app.socket`, socket
# activation), so while the application restarts — a crash, a new package — connections
# wait in the socket's backlog instead of being refused; on SIGTERM the application stops
# accepting and finishes the requests in flight. A crash restarts it after 100 ms, backing
# off to 10 s while it keeps crashing, and never gives up (no start rate limit: a give-up
# would also close the socket).
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

    systemd.sockets.rampart-app = {
      description = "rampart application server: its listening socket";
      wantedBy = ["sockets.target"];
      listenStreams = ["127.0.0.1:${toString cfg.port}"];
    };

    systemd.services.rampart-app = {
      description = "rampart application server";
      wantedBy = ["multi-user.target"];
      after = ["network-online.target" "rampart-app.socket"];
      wants = ["network-online.target"];
      requires = ["rampart-app.socket"];
      # Restarted in one step when its unit changes (systemctl restart): stopping it first
      # would make switch-to-configuration stop its socket too, refusing connections.
      stopIfChanged = false;
      # Never rate-limited: the back-off below spaces the restarts, and a unit that hit the
      # start limit would take its socket down with it.
      unitConfig.StartLimitIntervalSec = 0;
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
          # 100 ms, then longer while it keeps failing, up to 10 s (systemd ≥ 254).
          RestartSec = "100ms";
          RestartSteps = 5;
          RestartMaxDelaySec = "10s";
          # SIGTERM drains the requests in flight; past this systemd kills it.
          TimeoutStopSec = "30s";
        };
    };

    rampart.resources.units = ["rampart-app"];
    rampart.daemons.app = daemon;
  };
}
