# modules/load-balancer.nix: HAProxy on the load balancer (rampart.loadBalancer).
#
# lib/render/haproxy.nix writes the whole haproxy.cfg: TLS termination on the `https`
# service port with HSTS, the redirect on `http`, backends re-encrypted to every web host's
# nginx and verified against the rampart CA (mTLS with the backend-client certificate), the
# built-in Prometheus exporter and a stats socket for `reach`. This module hands that text
# to nixpkgs' `services.haproxy` and gives the daemon its keys. A changed configuration
# reloads HAProxy (no connection refused), and `rampart-lb` drains a web host through the
# admin socket for a planned removal (docs/runbook.md).
{
  config,
  lib,
  pkgs,
  ...
}: let
  cfg = config.rampart.loadBalancer;
  helpers = import ./lib.nix {inherit config lib;};

  # HAProxy runs as its own user under ProtectSystem=strict; the keys reach it through
  # LoadCredential= (copied by systemd as root, readable by the unit only), so they can
  # stay root-owned 0600 in rampart.pkiDir. HAProxy looks for a certificate's key as
  # `<certificate>.key`, so each key gets that name in the credentials directory.
  pkiFiles =
    helpers.samePki ["ca.pem" "https.pem" "backend-client.pem"]
    // {
      "https.pem.key" = "https.key";
      "backend-client.pem.key" = "backend-client.key";
    };
  overrides = {pkiDir = helpers.credentialsDir "haproxy";};
  daemon = helpers.daemon "haproxy" overrides;
  socketDir = "${(helpers.settings overrides).runDir}/haproxy";

  # rampart-lb on the admin socket this configuration renders.
  rampartLb = pkgs.writeShellScriptBin "rampart-lb" ''
    exec ${cfg.drain.package}/bin/rampart-lb --socket ${lib.escapeShellArg "${socketDir}/stats.sock"} "$@"
  '';
in {
  imports = [./topology.nix ./resources.nix];

  options.rampart.loadBalancer = {
    enable = lib.mkEnableOption "the rampart load balancer: HAProxy terminating HTTPS and re-encrypting to the web hosts";

    drain.package = lib.mkOption {
      type = lib.types.package;
      description = "The package with `rampart-lb` (drain a web host until its sessions end, ready it once its health check passes, status), installed with the admin socket preset; the rampart flake's `nixosModules` set it to the flake's own.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [(helpers.requireRole ["loadBalancer" "enable"])];

    services.haproxy = {
      enable = true;
      inherit (daemon.nixos."services.haproxy") config;
    };

    # A changed configuration or package reloads HAProxy instead of restarting it: nixpkgs'
    # ExecReload checks the file and sends SIGUSR2 to the master, whose new workers take
    # the listening sockets over while the old ones finish their connections (bounded by
    # hard-stop-after). A restart would refuse connections while HAProxy is down, and a
    # configuration change alters the unit (ExecStartPre names the file), so reloadTriggers
    # alone would still restart it.
    systemd.services.haproxy.reloadIfChanged = true;

    environment.systemPackages = [rampartLb];

    systemd.services.haproxy.serviceConfig = {
      LoadCredential = helpers.loadPki pkiFiles;
      # The stats socket for `reach` lives outside HAProxy's RuntimeDirectory (which the
      # master process uses for its own socket): the one write path strict mode must allow.
      ReadWritePaths = [socketDir];
    };

    # Group-readable, so `reach` (root) and the haproxy user can use the stats socket.
    systemd.tmpfiles.rules = ["d ${socketDir} 0750 ${config.services.haproxy.user} ${config.services.haproxy.group} - -"];

    rampart.resources.units = ["haproxy"];
    rampart.daemons.haproxy = daemon;
  };
}
