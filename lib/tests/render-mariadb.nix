# lib/tests/render-mariadb.nix: server settings (ids, binary log, GTID, TLS, read-only
# replica, semi-sync), the same options as text and as an attrset, the bootstrap SQL
# (accounts on the primary only, CHANGE MASTER over verified TLS on the replica, no secret),
# and refused settings.
let
  inherit (builtins) attrNames concatMap filter length map;
  support = import ./support/render.nix;
  inherit (support) shipped fourWeb grep capture lines evaluates;
  mariadb = support.lib.renderers.mariadb;

  args = host: settings: {
    topology = shipped;
    inherit host settings;
  };
  files = host: mariadb (args host {});
  options = host: (mariadb.settings (args host {})).mysqld;
  primarySql = (files "web1")."mariadb/bootstrap.sql";
  replicaSql = (files "web2")."mariadb/bootstrap.sql";
  withSettings = settings: evaluates (mariadb (args "web1" {mariadb = settings;}));

  # `key = value` lines of the cnf text, as an attrset of strings.
  cnfOptions = text:
    builtins.listToAttrs (map (line: let
      m = capture "([a-z_]+) = (.*)" line;
    in {
      name = builtins.elemAt m 0;
      value = builtins.elemAt m 1;
    }) (grep "[a-z_]+ = .*" text));
  asStrings = builtins.mapAttrs (_: toString);

  # The @NAME@ placeholders of the SQL statements (comments aside), sorted, each once.
  placeholders = sql:
    builtins.sort builtins.lessThan (support.util.unique (concatMap (part:
      if builtins.isList part
      then part
      else []) (builtins.split "(@[A-Z_]+@)" (builtins.concatStringsSep "\n" (filter (line: builtins.match "--.*" line == null) (lines sql))))));
in {
  testServerIdsUniqueAndFromPosition = {
    expr = map (host: (options host).server_id) ["web1" "web2"];
    expected = [2 3];
  };
  testEveryDatabaseHostStartsReadOnly = {
    # The failover agent makes the leader writable (issue #14).
    expr = map (host: (options host).read_only) ["web1" "web2"];
    expected = ["ON" "ON"];
  };
  testReplicationSettings = {
    expr = map (key: (options "web2").${key}) ["log_bin" "binlog_format" "gtid_strict_mode" "log_slave_updates" "rpl_semi_sync_master_wait_point" "rpl_semi_sync_master_timeout" "rpl_semi_sync_slave_enabled"];
    expected = ["rampart-bin" "ROW" "ON" "ON" "AFTER_SYNC" 31536000000 "ON"];
  };
  testSemiSyncMasterOffUntilTheAgentLeads = {
    # The failover agent switches it on for the leader (issue #14).
    expr = map (host: (options host).rpl_semi_sync_master_enabled) ["web1" "web2"];
    expected = ["OFF" "OFF"];
  };
  testFailoverAccountFromEveryDatabaseHost = {
    expr = grep "CREATE OR REPLACE USER 'rampart_failover'.*" primarySql;
    expected = [
      "CREATE OR REPLACE USER 'rampart_failover'@'10.42.0.11' IDENTIFIED BY '@FAILOVER_DB_PASSWORD@' REQUIRE SSL;"
      "CREATE OR REPLACE USER 'rampart_failover'@'10.42.0.12' IDENTIFIED BY '@FAILOVER_DB_PASSWORD@' REQUIRE SSL;"
    ];
  };
  testTlsAndAddress = {
    expr = map (key: (options "web1").${key}) ["require_secure_transport" "ssl_ca" "ssl_cert" "ssl_key" "bind_address" "port"];
    expected = ["ON" "/var/lib/rampart/pki/ca.pem" "/var/lib/rampart/pki/mysql.pem" "/var/lib/rampart/pki/mysql.key" "10.42.0.11" 3306];
  };
  testTextAndAttrsetAgree = {
    expr = map (host: cnfOptions (files host)."mariadb/rampart.cnf" == asStrings (options host)) ["web1" "web2"];
    expected = [true true];
  };
  testTextHasOneMysqldGroup = {
    expr = grep "[[].*[]]" (files "web1")."mariadb/rampart.cnf";
    expected = ["[mysqld]"];
  };
  testSemiSyncTimeoutSetting = {
    expr = (mariadb.settings (args "web1" {mariadb.semiSyncTimeoutMs = 2500;})).mysqld.rpl_semi_sync_master_timeout;
    expected = 2500;
  };
  testOnlyOnDatabaseHosts = {
    expr = map (host: files host) ["lb"] ++ [(mariadb.settings (args "lb" {}))];
    expected = [{} {}];
  };
  testFourWebDatabaseHosts = {
    expr = filter (host: support.renderFourWeb.${host} ? "mariadb/bootstrap.sql") (attrNames support.renderFourWeb);
    expected = ["web1" "web2"];
  };

  # ------------------------------------------------------------ bootstrap SQL

  testReplicationAccountPerDatabaseHostWithItsCertificate = {
    expr = grep "(CREATE OR REPLACE USER 'rampart_repl'.*|  REQUIRE SUBJECT .*)" primarySql;
    expected = [
      "CREATE OR REPLACE USER 'rampart_repl'@'10.42.0.11' IDENTIFIED BY '@REPLICATION_PASSWORD@'"
      "  REQUIRE SUBJECT '/CN=web1.rampart.internal';"
      "CREATE OR REPLACE USER 'rampart_repl'@'10.42.0.12' IDENTIFIED BY '@REPLICATION_PASSWORD@'"
      "  REQUIRE SUBJECT '/CN=web2.rampart.internal';"
    ];
  };
  testAppAccountPerWebHostOverTls = {
    expr = map (line: capture ".*'rampart_app'@'([0-9.]+)'.*REQUIRE SSL;" line) (grep "CREATE .*rampart_app.*" (support.lib.render {topology = fourWeb;}).web1."mariadb/bootstrap.sql");
    expected = [["10.42.0.11"] ["10.42.0.12"] ["10.42.0.13"] ["10.42.0.14"]];
  };
  testAccountsOnlyOnPrimary = {
    # 2 replication + 1 app + 1 exporter + 2 failover (one per database host) accounts.
    expr = map (sql: length (grep "CREATE .*USER.*" sql)) [primarySql replicaSql];
    expected = [7 0];
  };
  testChangeMasterOverVerifiedTlsWithGtid = {
    expr = grep "  MASTER_(HOST|SSL|SSL_VERIFY_SERVER_CERT|USE_GTID|SSL_CERT|SSL_KEY|SSL_CA) = .*" replicaSql;
    expected = [
      "  MASTER_HOST = '10.42.0.11',"
      "  MASTER_SSL = 1,"
      "  MASTER_SSL_CA = '/var/lib/rampart/pki/ca.pem',"
      "  MASTER_SSL_CERT = '/var/lib/rampart/pki/replication-client.pem',"
      "  MASTER_SSL_KEY = '/var/lib/rampart/pki/replication-client.key',"
      "  MASTER_SSL_VERIFY_SERVER_CERT = 1,"
      "  MASTER_USE_GTID = slave_pos,"
    ];
  };
  testReplicaStartsReplication = {
    expr = grep "(START|STOP) SLAVE;" replicaSql;
    expected = ["STOP SLAVE;" "START SLAVE;"];
  };
  testNoPasswordOnlyPlaceholders = {
    # Every IDENTIFIED BY / MASTER_PASSWORD takes a placeholder, never a value.
    expr = concatMap (sql: map (line: capture ".*(IDENTIFIED BY|MASTER_PASSWORD =) '([^']*)'.*" line) (grep ".*(IDENTIFIED BY|MASTER_PASSWORD).*" sql)) [replicaSql];
    expected = [["MASTER_PASSWORD =" "@REPLICATION_PASSWORD@"]];
  };
  testPlaceholdersOutsideComments = {
    expr = map placeholders [primarySql replicaSql];
    expected = [["@APP_DB_PASSWORD@" "@EXPORTER_DB_PASSWORD@" "@FAILOVER_DB_PASSWORD@" "@REPLICATION_PASSWORD@"] ["@REPLICATION_PASSWORD@"]];
  };
  testSecretsDirNamedForTheSubstitution = {
    expr = grep "-- .*/run/secrets/rampart/.*" replicaSql != [];
    expected = true;
  };

  # ------------------------------------------------------------ refused input

  testDefaultsAccepted = {
    expr = withSettings {};
    expected = true;
  };
  testSqlInjectionInUserThrows = {
    expr = withSettings {appUser = "x'@'%' IDENTIFIED BY 'y";};
    expected = false;
  };
  testSameUserTwiceThrows = {
    expr = withSettings {appUser = "rampart_repl";};
    expected = false;
  };
  testBadBufferPoolSizeThrows = {
    expr = withSettings {innodbBufferPoolSize = 128;};
    expected = false;
  };
  testSettingsFormThrowsToo = {
    expr = evaluates (mariadb.settings (args "web1" {mariadb.semiSyncTimeoutMs = 0;}));
    expected = false;
  };
  testMessageSqlName = {
    expr = support.common.sqlName "settings.mariadb.appUser" "app-user";
    expected = ["settings.mariadb.appUser is \"app-user\"; expected letters, digits and \"_\" (at most 32, not starting with a digit)"];
  };
}
