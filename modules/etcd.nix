# modules/etcd.nix: this host's etcd member (rampart.etcd).
#
# etcd holds the database leadership (docs/failover.md) and has a member on every host of
# the topology. lib/daemons.nix gives the member's whole configuration (lib/render/etcd.nix)
# as the values of nixpkgs' `services.etcd` (its typed options plus `extraConf`): TLS with
# client certificates on the client and the peer port, the initial cluster from the
# topology, the metrics listener, raft timing from the settings. The lab runs Debian's etcd
# with the environment these options produce (lib/tests/render-etcd.nix checks the two
# agree). The firewall opens the ports as the topology's policy says (firewall.nix).
{
  config,
  lib,
  pkgs,
  ...
}: let
  cfg = config.rampart.etcd;
  helpers = import ./lib.nix {inherit config lib;};

  # etcd runs as its own user (nixpkgs' unit: User=etcd): its keys reach it through
  # LoadCredential=, so they stay root-owned 0600 in rampart.pkiDir.
  pkiFiles = ["ca.pem" "etcd-server.pem" "etcd-server.key" "etcd-peer.pem" "etcd-peer.key"];
  daemon = helpers.daemon "etcd" {pkiDir = helpers.credentialsDir "etcd";};
in {
  imports = [./topology.nix ./resources.nix];

  options.rampart.etcd = {
    enable = lib.mkEnableOption "this host's etcd member (every host of the topology is one), with TLS and client certificates on both ports";

    package = lib.mkPackageOption pkgs "etcd" {};
  };

  config = lib.mkIf cfg.enable {
    # Named one by one, so that the option names are known without evaluating the host's
    # rendering (NixOS needs them even where the concern is off); the parity check
    # (checks/harness/parity.nix) fails if one the renderer gives is missing here.
    services.etcd = {
      enable = true;
      inherit (cfg) package;
      inherit
        (daemon.nixos."services.etcd")
        name
        dataDir
        discovery
        listenClientUrls
        advertiseClientUrls
        listenPeerUrls
        initialAdvertisePeerUrls
        initialCluster
        initialClusterState
        initialClusterToken
        certFile
        keyFile
        clientCertAuth
        trustedCaFile
        peerCertFile
        peerKeyFile
        peerClientCertAuth
        peerTrustedCaFile
        extraConf
        ;
    };

    # The certificates are read when etcd starts; a renewed certificate takes effect with a
    # restart of the unit (certtool keeps the key, so the members go on trusting each other).
    systemd.services.etcd.serviceConfig.LoadCredential = helpers.loadPki (helpers.samePki pkiFiles);

    rampart.resources.units = ["etcd"];
    rampart.daemons.etcd = daemon;
  };
}
