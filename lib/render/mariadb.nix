/*
lib/render/mariadb.nix: MariaDB server settings and bootstrap SQL for the database hosts.

Settings (`mariadb/rampart.cnf`, and the same as an attrset for NixOS's
`services.mysql.settings`): server-id from the host's position in the topology, a binary
log in row format with GTID strict mode, TLS with the host's `mysql` certificate and no
connection without it (the `settings.tls.profile` protocols and suites; its key-exchange
groups in `mariadb/openssl.cnf`, which mariadbd reads through OPENSSL_CONF), the host's
address only, semi-synchronous replication that waits
after sync, and a read-only replica.

Bootstrap SQL (`mariadb/bootstrap.sql`), run once as root over the local socket after the
first start: on the primary the database and every account (they replicate; creating them
on the replica too would stop its SQL thread, error 1396), on the replica `CHANGE MASTER TO`
over verified TLS with the replication client certificate and GTID positioning. It holds no
password: each `@<placeholder>@` is replaced from `<secretsDir>/<secret>` in a pipe at run
time, as lib/secrets.nix names them (docs/contracts.md, "Secrets").

nixpkgs' `services.mysql.replication` is not used: it has no TLS, no GTID, and puts the
password in the store.

# Inputs

`{ topology, settings, host }`
: a validated topology, settings (lib/settings.nix; `mariadb.*`, `pkiDir`) and the host (an
  element of `topology.hosts` or its name)

# Type

```
mariadb :: { topology; settings; host; } -> { "mariadb/rampart.cnf" = string; "mariadb/openssl.cnf" = string; "mariadb/bootstrap.sql" = string; } (or { })
mariadb.settings :: { topology; settings; host; } -> { mysqld = { <option> = string | int; }; } (or { })
```

# Examples

```nix
(mariadb.settings { inherit topology; settings = { }; host = "web2"; }).mysqld.read_only
=> "ON"
mariadb { inherit topology; settings = { }; host = "lb"; }
=> { }
```
*/
let
  inherit (builtins) concatStringsSep filter head isInt;
  util = import ../util.nix;
  common = import ./common.nix;
  topologyLib = import ../topology.nix;
  secretsLib = import ../secrets.nix;
  inherit (util) concatLines concatMapStrings imap0 findFirst;

  # `@<placeholder>@` of a secret (lib/secrets.nix): its value replaces it at run time.
  placeholder = s: secret: "@${(secretsLib.catalog s).${secret}.placeholder}@";

  onOff = flag:
    if flag
    then "ON"
    else "OFF";

  option = key: value: why: {inherit key value why;};

  isDatabaseHost = host: topologyLib.hasRole host "databasePrimary" || topologyLib.hasRole host "databaseReplica";

  problemsOf = topology: s: let
    m = s.mariadb;
    name = key: "settings.mariadb.${key}";
  in
    common.requireServices topology ["mysql"]
    ++ common.directories s
    ++ common.tlsProfile s
    ++ builtins.concatMap (key: common.sqlName (name key) m.${key}) ["database" "appUser" "exporterUser" "replicationUser" "failoverUser"]
    ++ util.optional (util.unique [m.appUser m.exporterUser m.replicationUser m.failoverUser] != [m.appUser m.exporterUser m.replicationUser m.failoverUser])
    "${name "appUser"}, ${name "exporterUser"}, ${name "replicationUser"} and ${name "failoverUser"} are ${common.show [m.appUser m.exporterUser m.replicationUser m.failoverUser]}; expected four different names"
    ++ common.intAtLeast 1 (name "semiSyncTimeoutMs") m.semiSyncTimeoutMs
    ++ common.bool (name "semiSyncWaitNoReplica") m.semiSyncWaitNoReplica
    ++ common.intAtLeast 1 (name "replicaNetTimeout") m.replicaNetTimeout
    ++ common.intAtLeast 0 (name "binlogExpireDays") m.binlogExpireDays
    ++ common.intAtLeast 1 (name "maxConnections") m.maxConnections
    ++ common.size (name "innodbBufferPoolSize") m.innodbBufferPoolSize;

  # The server options as { key; value; why; } in file order; `why` becomes the comment.
  options = topology: s: self: let
    m = s.mariadb;
    t = common.tls s;
    pki = file: "${s.pkiDir}/${file}";
    primary = topologyLib.hasRole self "databasePrimary";
    # Unique among the topology's hosts and stable while hosts are only appended.
    serverId =
      1
      + head (filter (i: i != null) (imap0 (i: h:
        if h.name == self.name
        then i
        else null)
      topology.hosts));
  in
    [
      (option "server_id" serverId "the host's position in hosts/topology.json, plus one: unique per host")
      (option "report_host" (topologyLib.fqdn topology self) "how the primary lists this host among its replicas")
      (option "bind_address" self.address "the host's own address: the firewall admits the database hosts only")
      (option "port" (topologyLib.servicePort topology "mysql") "")
      (option "skip_name_resolve" "ON" "accounts name addresses: no DNS lookup on connect")
      (option "local_infile" "OFF" "clients cannot make the server read their files")
      (option "character_set_server" "utf8mb4" "")
      (option "max_connections" m.maxConnections "")
      (option "innodb_buffer_pool_size" m.innodbBufferPoolSize "")

      (option "require_secure_transport" "ON" "TLS for every TCP connection (the local socket counts as secure)")
      (option "ssl_ca" (pki "ca.pem") "the rampart CA: the only issuer of client certificates accepted")
      (option "ssl_cert" (pki "mysql.pem") "")
      (option "ssl_key" (pki "mysql.key") "")
      (option "tls_version" (concatStringsSep "," t.versions) "Mozilla \"${t.profile}\" TLS (settings.tls.profile); its groups are in mariadb/openssl.cnf (OPENSSL_CONF)")
      (option "ssl_cipher" (concatStringsSep ":" (filter (x: x != "") [t.ciphers12 t.ciphersuites13])) "the suites HAProxy and nginx use too: TLS 1.2 ciphers and TLS 1.3 suites in one list")

      (option "log_bin" "rampart-bin" "binary log in the data directory; fixed names, so they survive a host rename")
      (option "relay_log" "rampart-relay" "")
      (option "binlog_format" "ROW" "row events replay exactly, whatever the statement did")
      (option "log_slave_updates" "ON" "a replica logs what it applies, so it can become the primary")
      (option "gtid_strict_mode" "ON" "refuse out-of-order or duplicate transactions instead of diverging")
      (option "sync_binlog" 1 "an acknowledged commit is on disk: no acknowledged write lost on a crash")
      (option "innodb_flush_log_at_trx_commit" 3 "3, not 1: with the binlog on, 1 leaves the engine commit unsynced (recovery would commit it from the binlog), and the crash recovery of init_rpl_role=SLAVE drops such a transaction; 3 syncs it before the client's OK, so that recovery only drops what nobody was told (issue #14)")
      (option "expire_logs_days" m.binlogExpireDays "")
      (option "relay_log_recovery" "ON" "after a crash, fetch the relay log again instead of trusting it")
      (option "slave_net_timeout" m.replicaNetTimeout "seconds of silence before the replica reconnects (heartbeats come at half of it)")

      (option "rpl_semi_sync_slave_enabled" "ON" "acknowledge to a semi-synchronous primary (also after a failover)")
      (option "rpl_semi_sync_slave_kill_conn_timeout" 1 "seconds STOP SLAVE tries to reach the primary to end its dump thread: a new leader stops replicating from a primary that may be cut off (the default 5 s cost partition takeovers about 1.5 s)")
      (option "rpl_semi_sync_master_wait_point" "AFTER_SYNC" "the client's OK waits until the replica has the transaction: none acknowledged is lost with the primary")
      (option "rpl_semi_sync_master_timeout" m.semiSyncTimeoutMs "milliseconds: effectively never fall back to asynchronous on its own; the failover agent decides (policy)")
      (option "rpl_semi_sync_master_wait_no_slave" (onOff m.semiSyncWaitNoReplica) "commits wait even while no replica is connected: no silent fallback")
    ]
    ++ failoverOptions primary;

  # The failover agent (rampart-db agent, docs/failover.md) decides who writes: every
  # database host starts read-only, without waiting for a replica, as a replica in crash
  # recovery; the agent of the host holding the leader lease switches both on.
  failoverOptions = primary: [
    (option "rpl_semi_sync_master_enabled" "OFF" "the agent switches it on while this host leads and a replica is (or must be) in sync")
    (option "read_only" "ON" "the agent makes the leader writable${
      if primary
      then " (this declared primary takes the first lead)"
      else ""
    }")
    (option "init_rpl_role" "SLAVE" "crash recovery drops a binlog tail no replica acknowledged (MDEV-33465): a restarted server rejoins as a replica")
  ];

  # Both forms of this renderer: the same host filter and checks.
  databaseRenderer = files:
    common.renderer {
      component = "mariadb";
      appliesTo = isDatabaseHost;
      problems = problemsOf;
      inherit files;
    };

  settingsOf = databaseRenderer (topology: s: self: {
    mysqld = builtins.listToAttrs (map (o: {
      name = o.key;
      inherit (o) value;
    }) (options topology s self));
  });

  showValue = value:
    if isInt value
    then toString value
    else value;

  cnf = topology: s: self:
    common.header {
      what = "mariadb/rampart.cnf";
      host = self;
      renderer = "mariadb";
    }
    + concatLines [
      "#"
      "# Server settings only: the runner adds datadir, socket and pid-file (the NixOS module,"
      "# or the lab on the command line)."
      ""
      "[mysqld]"
    ]
    + concatMapStrings (o:
      (
        if o.why == ""
        then ""
        else "# ${o.why}\n"
      )
      + "${o.key} = ${showValue o.value}\n") (options topology s self);

  # The primary's accounts. One replication account per database host, from its address,
  # with its own client certificate: either may be the replica after a failover.
  primarySql = topology: s: let
    m = s.mariadb;
    password = placeholder s;
    account = user: host: "'${user}'@'${host}'";
    databaseHosts = filter isDatabaseHost topology.hosts;
    webHosts = topologyLib.hostsWithRole topology "web";
    replicationAccount = h: let
      a = account m.replicationUser h.address;
    in [
      "CREATE OR REPLACE USER ${a} IDENTIFIED BY '${password "replication-password"}'"
      "  REQUIRE SUBJECT '/CN=${topologyLib.fqdn topology h}';"
      "GRANT REPLICATION SLAVE ON *.* TO ${a};"
    ];
    appAccount = h: let
      a = account m.appUser h.address;
    in [
      "CREATE OR REPLACE USER ${a} IDENTIFIED BY '${password "app-db-password"}' REQUIRE SSL;"
      "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX ON `${m.database}`.* TO ${a};"
    ];
    exporter = account m.exporterUser "localhost";
    # rampart-db (docs/failover.md) runs on a database host and logs in to every database
    # host; its privileges are exactly what status, promote, fence and rejoin need
    # (`rampart_database::ADMIN_GRANTS`), no data privilege.
    failoverAccount = h: let
      a = account m.failoverUser h.address;
    in [
      "CREATE OR REPLACE USER ${a} IDENTIFIED BY '${password "failover-db-password"}' REQUIRE SSL;"
      "GRANT READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, REPLICA MONITOR, BINLOG MONITOR, RELOAD ON *.* TO ${a};"
    ];
  in
    concatLines ([
        "-- Accounts are created here only: they replicate to the replica. Running this again"
        "-- replaces them, which also rotates their passwords."
        ""
        "CREATE DATABASE IF NOT EXISTS `${m.database}` CHARACTER SET utf8mb4;"
        ""
        "-- Replication: TLS with the replica host's own client certificate, from its address."
      ]
      ++ builtins.concatMap replicationAccount databaseHosts
      ++ [
        ""
        "-- The application writes here from every web host, over TLS."
      ]
      ++ builtins.concatMap appAccount webHosts
      ++ [
        ""
        "-- The mysqld exporter: local socket only, read-only server status, few connections."
        "CREATE OR REPLACE USER ${exporter} IDENTIFIED BY '${password "exporter-db-password"}' WITH MAX_USER_CONNECTIONS 3;"
        "GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* TO ${exporter};"
        ""
        "-- Failover (rampart-db): from every database host, over TLS."
      ]
      ++ builtins.concatMap failoverAccount databaseHosts);

  replicaSql = topology: s: let
    primary = findFirst (h: topologyLib.hasRole h "databasePrimary") null topology.hosts;
    pki = file: "${s.pkiDir}/${file}";
  in
    concatLines [
      "-- Replicate from ${primary.name} over TLS: its certificate is verified against the rampart CA"
      "-- and its address, this host presents its replication client certificate, and GTIDs"
      "-- position the stream (no binlog file names to copy). Running this again is harmless."
      "STOP SLAVE;"
      "CHANGE MASTER TO"
      ("  "
        + concatStringsSep ",\n  " [
          "MASTER_HOST = '${primary.address}'"
          "MASTER_PORT = ${toString (topologyLib.servicePort topology "mysql")}"
          "MASTER_USER = '${s.mariadb.replicationUser}'"
          "MASTER_PASSWORD = '${placeholder s "replication-password"}'"
          "MASTER_SSL = 1"
          "MASTER_SSL_CA = '${pki "ca.pem"}'"
          "MASTER_SSL_CERT = '${pki "replication-client.pem"}'"
          "MASTER_SSL_KEY = '${pki "replication-client.key"}'"
          "MASTER_SSL_VERIFY_SERVER_CERT = 1"
          "MASTER_USE_GTID = slave_pos"
          # The failover agent's CHANGE MASTER says the same (rampart_database::CONNECT_RETRY_SECONDS).
          "MASTER_CONNECT_RETRY = 5;"
        ])
      "START SLAVE;"
    ];

  bootstrap = topology: s: self: let
    # The secrets the bootstrap of this host reads: exactly the placeholders in its SQL.
    secrets = secretsLib.forHost {
      inherit topology;
      host = self;
      settings = s;
      concerns.database = true;
    };
    filled = secretsLib.readBy secrets "rampart-database-bootstrap";
  in
    common.header {
      comment = "--";
      what = "mariadb/bootstrap.sql";
      host = self;
      renderer = "mariadb";
    }
    + concatLines [
      "--"
      "-- Run once after the first start, as root over the local socket. Placeholders are"
      "-- replaced at run time, in a pipe (never written to disk), from ${s.secretsDir}/"
      "-- (escape \\ and ' in the values):"
    ]
    + concatMapStrings (secret: "--   ${placeholder s secret} from ${secret}\n") filled
    + "\n"
    + (
      if topologyLib.hasRole self "databasePrimary"
      then primarySql topology s
      else replicaSql topology s
    );

  # MariaDB has no setting for TLS key-exchange groups; OpenSSL takes them from its
  # configuration file, which the runner points mariadbd at with OPENSSL_CONF.
  opensslCnf = _topology: s: self: let
    t = common.tls s;
  in
    common.header {
      what = "mariadb/openssl.cnf";
      host = self;
      renderer = "mariadb";
    }
    + concatLines [
      "#"
      "# OpenSSL configuration for mariadbd (OPENSSL_CONF=<this file>): the key-exchange groups"
      "# of Mozilla's \"${t.profile}\" profile (settings.tls.profile), which MariaDB has no"
      "# option for. Without it OpenSSL also accepts X448, P-521 and finite-field groups."
      "openssl_conf = rampart_openssl"
      ""
      "[rampart_openssl]"
      "ssl_conf = rampart_ssl"
      ""
      "[rampart_ssl]"
      "system_default = rampart_tls"
      ""
      "[rampart_tls]"
      "Groups = ${t.groups}"
    ];

  render = databaseRenderer (topology: s: self: {
    "mariadb/rampart.cnf" = cnf topology s self;
    "mariadb/openssl.cnf" = opensslCnf topology s self;
    "mariadb/bootstrap.sql" = bootstrap topology s self;
  });
in {
  __functor = _: render;
  settings = settingsOf;
}
