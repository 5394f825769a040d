# modules/failover.nix: the failover agent on a database host (rampart.database.failover).
#
# `rampart-db agent` (docs/failover.md) holds the leader lease in etcd while this host's
# MariaDB is healthy, makes the leader writable and every other host read-only, keeps the
# sync set in etcd true, and fences this host through the writer gate (nftables table
# `inet rampart-gate`) that the kernel closes before the lease can expire. It runs with
# the database concern: a database host without its agent never becomes writable (every
# host starts read-only, lib/render/mariadb.nix).
{
  config,
  lib,
  pkgs,
  ...
}: let
  cfg = config.rampart.database.failover;
  db = config.rampart.database;
  helpers = import ./lib.nix {inherit config lib;};
  # The command line of lib/daemons.nix (the lab runs the same); this module adds where
  # files live only.
  daemon = helpers.daemon "failover-agent" {failover = {inherit (cfg) policy leaseTtl;};};
  # The value after `flag` in the attribute's arguments: the operator's wrapper talks to
  # the same etcd with the same files as the agent.
  argAfter = flag: let
    i = lib.lists.findFirstIndex (arg: arg == flag) null daemon.args;
  in
    lib.elemAt daemon.args (i + 1);
  topologyFile = pkgs.writeText "topology.json" (builtins.toJSON helpers.topo);
  # mysqld reads its certificates from its credentials directory (LoadCredential=), so
  # that is where CHANGE MASTER TO points a rejoining host.
  replicaPkiDir = helpers.credentialsDir "mysql";
  placement =
    [
      "--socket"
      "/run/mysqld/mysqld.sock"
      "--topology"
      "${topologyFile}"
      "--replica-pki-dir"
      replicaPkiDir
    ]
    ++ lib.optionals config.rampart.monitoring.enable [
      "--metrics"
      "${config.rampart.monitoring.textfileDirectory}/rampart-failover.prom"
    ];
  # What `rampart-db` needs to find this deployment, for operators (database.nix's wrapper).
  environment =
    # Its secret files, by the variables lib/secrets.nix gives `rampart-db`.
    cfg.secretVariables
    // {
      RAMPART_TOPOLOGY = "${topologyFile}";
      RAMPART_DB_CA = argAfter "--ca";
      RAMPART_DB_REPLICA_PKI_DIR = replicaPkiDir;
      RAMPART_ETCD_ENDPOINTS = argAfter "--etcd";
      RAMPART_ETCD_CA = argAfter "--etcd-ca";
      RAMPART_ETCD_CERT = argAfter "--etcd-cert";
      RAMPART_ETCD_KEY = argAfter "--etcd-key";
    };
in {
  options.rampart.database.failover = {
    agent = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "Whether to run the failover agent (`rampart-db agent`) with the database. Without it this host never becomes writable: every database host starts read-only and only the agent holding the leader lease makes its host writable.";
    };
    policy = lib.mkOption {
      type = lib.types.enum ["available" "strict"];
      default = "available";
      description = ''
        What the leader does when its sync replica stops acknowledging writes.
        `available` (Patroni's default): after 2 s of waiting it records the replica out of
        sync in etcd, then writes go on without it; that replica is not promoted until it has
        caught up. `strict`: writes wait for the replica however long. Neither loses an
        acknowledged write; docs/failover.md lists the faults each survives. Set the same on
        every database host.
      '';
    };
    leaseTtl = lib.mkOption {
      type = lib.types.ints.between 2 60;
      default = 5;
      description = "The leader lease's TTL in seconds. The writer gate closes TTL/5 before the lease can expire; a lost leader is replaced about one TTL after its last renewal. Keep it at least three times etcd's election timeout.";
    };
    environment = lib.mkOption {
      type = lib.types.attrsOf lib.types.str;
      readOnly = true;
      default = environment;
      defaultText = lib.literalMD "the deployment's topology, CA, secrets and etcd endpoints";
      description = "The environment `rampart-db` runs with on this host (the agent's unit and the operator's wrapper).";
    };
  };

  config = lib.mkIf (db.enable && cfg.agent) {
    assertions = [
      {
        assertion = helpers.topo.services ? etcdClient;
        message = "rampart.database.failover.agent: the topology has no service \"etcdClient\" (expected etcd's client port, docs/topology.md); add it to hosts/topology.json, or set rampart.database.failover.agent = false (then this host never becomes writable)";
      }
    ];

    systemd.services.${daemon.unit} = {
      description = "rampart: failover agent of this database host (leader lease in etcd, writer gate)";
      wantedBy = ["multi-user.target"];
      after = ["mysql.service" "network-online.target" "etcd.service" "nftables.service"];
      wants = ["network-online.target"];
      # The writer gate is nftables.
      path = [pkgs.nftables];
      inherit (daemon) environment;
      serviceConfig =
        helpers.hardening
        // {
          ExecStart = "${cfg.package}/bin/rampart-db ${lib.escapeShellArgs (placement ++ daemon.args)}";
          # Root: MariaDB's root account authenticates by the local socket's peer, and the
          # writer gate is nftables; nothing else of root's is needed.
          CapabilityBoundingSet = ["CAP_NET_ADMIN"];
          AmbientCapabilities = ["CAP_NET_ADMIN"];
          # The local socket (MariaDB), TCP (etcd, the other database hosts), netlink (nft).
          RestrictAddressFamilies = ["AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK"];
          ReadWritePaths = lib.optionals config.rampart.monitoring.enable [config.rampart.monitoring.textfileDirectory];
          # A stopped agent closes nothing by itself (its gate element times out), so come
          # back quickly.
          Restart = "always";
          RestartSec = "1s";
          # SIGTERM: the agent gives its lead back before it exits.
          TimeoutStopSec = "10s";
        };
    };

    rampart.daemons.failover-agent = daemon;
  };
}
