# modules/web.nix: nginx on the web hosts (rampart.web).
#
# lib/render/nginx.nix writes the http-level blocks: the TLS backend listener on the
# `backendHttps` port that only HAProxy may use (mutual TLS with the rampart CA), security
# headers, the proxy to the application on 127.0.0.1, and stub_status on loopback for the
# exporter. nixpkgs' `services.nginx` writes the main nginx.conf around them, with the
# main configuration's own directives (workers, connections, access log, user) that the
# lab's nginx.conf has too (lib/daemons.nix). A changed configuration reloads nginx, and
# stopping it lets the requests in flight finish.
{
  config,
  lib,
  ...
}: let
  cfg = config.rampart.web;
  helpers = import ./lib.nix {inherit config lib;};

  # nginx runs as its own user: the keys reach it through LoadCredential= (see
  # load-balancer.nix), so they can stay root-owned 0600 in rampart.pkiDir.
  pkiFiles = ["ca.pem" "backend.pem" "backend.key"];
  daemon = helpers.daemon "nginx" {pkiDir = helpers.credentialsDir "nginx";};
in {
  imports = [./topology.nix ./resources.nix];

  options.rampart.web = {
    enable = lib.mkEnableOption "the rampart web tier: nginx serving the application to the load balancer over mutual TLS";
  };

  config = lib.mkIf cfg.enable {
    assertions = [(helpers.requireRole ["web" "enable"])];

    services.nginx = {
      enable = true;
      inherit (daemon.nixos."services.nginx") appendConfig eventsConfig commonHttpConfig user group appendHttpConfig;
      # No virtual hosts of nixpkgs' own: its default `localhost` one would listen on
      # port 80 of every address, which rampart's web hosts never serve.
      virtualHosts = {};
      # A changed configuration reloads nginx (SIGHUP: new workers, the old ones finish
      # their requests) instead of restarting it.
      enableReload = true;
    };

    systemd.services.nginx.serviceConfig = {
      LoadCredential = helpers.loadPki (helpers.samePki pkiFiles);
      # SIGQUIT is nginx's graceful stop: it closes its listeners (HAProxy sends new
      # requests elsewhere), finishes the requests in flight, then exits; SIGTERM, systemd's
      # default, would cut them off. Bounded: past it systemd kills what is left.
      KillSignal = "SIGQUIT";
      TimeoutStopSec = "30s";
    };

    rampart.resources.units = ["nginx"];
    rampart.daemons.nginx = daemon;
  };
}
