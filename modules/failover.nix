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
  self =
    if helpers.host == null
    then ""
    else helpers.host.name;
  pki = file: "${config.rampart.pkiDir}/${file}";
  etcdPort = helpers.servicePort "etcdClient";
  # What `rampart-db` needs to find this deployment, for the agent and for operators (the
  # wrapper of database.nix exports the same).
  environment =
    # Its secret files, by the variables lib/secrets.nix gives `rampart-db`.
    cfg.secretVariables
    // {
      RAMPART_TOPOLOGY = "${pkgs.writeText "topology.json" (builtins.toJSON helpers.topo)}";
      RAMPART_DB_CA = pki "ca.pem";
      # mysqld reads its certificates from its credentials directory (LoadCredential=), so
      # that is where CHANGE MASTER TO points a rejoining host.
      RAMPART_DB_REPLICA_PKI_DIR = helpers.credentialsDir "mysql";
      RAMPART_ETCD_ENDPOINTS = lib.concatStringsSep "," cfg.etcd.endpoints;
      RAMPART_ETCD_CA = cfg.etcd.caFile;
      RAMPART_ETCD_CERT = cfg.etcd.certFile;
      RAMPART_ETCD_KEY = cfg.etcd.keyFile;
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
    etcd = {
      endpoints = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = map (h: "https://${h.address}:${toString etcdPort}") helpers.topo.hosts;
        defaultText = lib.literalMD "`https://<address>:<etcdClient port>` of every topology host";
        description = "Client URLs of the etcd members; requests go to any that answers.";
      };
      caFile = lib.mkOption {
        type = lib.types.str;
        default = pki "ca.pem";
        defaultText = lib.literalExpression "\"\${config.rampart.pkiDir}/ca.pem\"";
        description = "The CA that issued the etcd members' certificates.";
      };
      certFile = lib.mkOption {
        type = lib.types.str;
        default = pki "etcd-client.pem";
        defaultText = lib.literalExpression "\"\${config.rampart.pkiDir}/etcd-client.pem\"";
        description = "This host's etcd client certificate (certtool issues one per database host).";
      };
      keyFile = lib.mkOption {
        type = lib.types.str;
        default = pki "etcd-client.key";
        defaultText = lib.literalExpression "\"\${config.rampart.pkiDir}/etcd-client.key\"";
        description = "Its key: a runtime path, never in the store (certtool writes it next to the certificate).";
      };
    };
  };

  config = lib.mkIf (db.enable && cfg.agent) {
    assertions = [
      {
        assertion = helpers.topo.services ? etcdClient;
        message = "rampart.database.failover.agent: the topology has no service \"etcdClient\" (expected etcd's client port, docs/topology.md); add it to hosts/topology.json, or set rampart.database.failover.agent = false (then this host never becomes writable)";
      }
      (helpers.runtimePath "rampart.database.failover.etcd.keyFile" cfg.etcd.keyFile "${config.rampart.pkiDir}/etcd-client.key")
    ];

    systemd.services.rampart-db-agent = {
      description = "rampart: failover agent of this database host (leader lease in etcd, writer gate)";
      wantedBy = ["multi-user.target"];
      after = ["mysql.service" "network-online.target" "etcd.service" "nftables.service"];
      wants = ["network-online.target"];
      inherit environment;
      serviceConfig =
        helpers.hardening
        // {
          ExecStart = lib.escapeShellArgs ([
              "${cfg.package}/bin/rampart-db"
              "agent"
              "--host"
              self
              "--socket"
              "/run/mysqld/mysqld.sock"
              "--policy"
              cfg.policy
              "--lease-ttl"
              (toString cfg.leaseTtl)
              "--nft"
              "${pkgs.nftables}/bin/nft"
            ]
            ++ lib.optionals config.rampart.monitoring.enable [
              "--metrics"
              "${config.rampart.monitoring.textfileDirectory}/rampart-failover.prom"
            ]);
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
  };
}
