# modules/database.nix: MariaDB primary or replica (rampart.database).
#
# lib/render/mariadb.nix gives the server settings (binary log, GTID strict mode, TLS only,
# semi-synchronous replication, read-only replica) as the attrset nixpkgs'
# `services.mysql.settings` takes, and the bootstrap SQL: accounts on the primary,
# `CHANGE MASTER TO … MASTER_SSL=1 …` on the replica. The SQL holds placeholders, never a
# password; `rampart-database-bootstrap` fills them from the secret files in a pipe, once.
# nixpkgs' `services.mysql.replication` is not used: no TLS, no GTID, and its password
# lands in the world-readable store.
{
  config,
  lib,
  pkgs,
  ...
}: let
  cfg = config.rampart.database;
  rampart = import ./lib.nix {inherit config lib;};

  isPrimary = rampart.hasRole "databasePrimary";
  # mysqld runs as its own user: keys reach it through LoadCredential= (see
  # load-balancer.nix). Both roles get the replication client certificate: either may be
  # the replica after a failover.
  pkiFiles = ["ca.pem" "mysql.pem" "mysql.key" "replication-client.pem" "replication-client.key"];
  overrides = {pkiDir = rampart.credentialsDir "mysql";};
  settings = rampart.settings overrides;
  rendered = rampart.render rampart.renderers.mariadb overrides;

  marker = "${settings.stateDir}/mariadb-bootstrap.done";

  # Placeholder in mariadb/bootstrap.sql => the credential (LoadCredential= name) holding
  # its value. The replica's SQL needs the replication password only.
  placeholders =
    {REPLICATION_PASSWORD = "replication-password";}
    // lib.optionalAttrs isPrimary {
      APP_DB_PASSWORD = "app-db-password";
      EXPORTER_DB_PASSWORD = "exporter-db-password";
    };
  secretFiles =
    {"replication-password" = cfg.replicationPasswordFile;}
    // lib.optionalAttrs isPrimary {
      "app-db-password" = cfg.appPasswordFile;
      "exporter-db-password" = cfg.exporterPasswordFile;
    };

  bootstrapSql = pkgs.writeText "rampart-bootstrap.sql" rendered."mariadb/bootstrap.sql";
  bootstrap = pkgs.writeShellScript "rampart-database-bootstrap" ''
    set -euo pipefail
    sql=$(<${bootstrapSql})
    ${lib.concatStrings (lib.mapAttrsToList (placeholder: credential: ''
        value=$(<"$CREDENTIALS_DIRECTORY/${credential}")
        # Inside a single-quoted SQL string: escape backslashes, then quotes.
        value=''${value//\\/\\\\}
        value=''${value//\'/\\\'}
        sql=''${sql//@${placeholder}@/"$value"}
      '')
      placeholders)}
    # The filled-in SQL exists only in this pipe: never on disk, never in the journal.
    printf '%s\n' "$sql" | ${cfg.package}/bin/mariadb --user=root --batch
    touch ${marker}
  '';
in {
  imports = [./topology.nix ./resources.nix];

  options.rampart.database = {
    enable = lib.mkEnableOption "the rampart database: MariaDB primary or replica (by the host's role), replicating over TLS with GTIDs";

    package = lib.mkPackageOption pkgs "mariadb" {};

    replicationPasswordFile = lib.mkOption {
      type = lib.types.str;
      default = "${config.rampart.secretsDir}/replication-password";
      defaultText = lib.literalExpression "\"\${config.rampart.secretsDir}/replication-password\"";
      description = ''
        File holding the replication account's password (one line), read at run time by the
        bootstrap on both roles. Not a store path: the store is world-readable.
      '';
    };

    appPasswordFile = lib.mkOption {
      type = lib.types.str;
      default = "${config.rampart.secretsDir}/app-db-password";
      defaultText = lib.literalExpression "\"\${config.rampart.secretsDir}/app-db-password\"";
      description = "File holding the application account's password, read by the primary's bootstrap (and by {option}`rampart.app.databasePasswordFile` on the web hosts).";
    };

    exporterPasswordFile = lib.mkOption {
      type = lib.types.str;
      default = "${config.rampart.secretsDir}/exporter-db-password";
      defaultText = lib.literalExpression "\"\${config.rampart.secretsDir}/exporter-db-password\"";
      description = "File holding the mysqld exporter account's password, read by the primary's bootstrap and by the exporter on every database host.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions =
      [(rampart.requireRole "rampart.database.enable" ["databasePrimary" "databaseReplica"])]
      ++ lib.mapAttrsToList (name: file: rampart.runtimePath "rampart.database.${name}" file "${config.rampart.secretsDir}/…") {
        inherit (cfg) replicationPasswordFile appPasswordFile exporterPasswordFile;
      };

    services.mysql = {
      enable = true;
      inherit (cfg) package;
      settings = rampart.renderers.mariadb.settings {
        topology = rampart.topo;
        inherit settings;
        inherit (rampart) host;
      };
    };

    systemd.services.mysql.serviceConfig.LoadCredential = rampart.loadPki (rampart.samePki pkiFiles);

    systemd.tmpfiles.rules = ["d ${settings.stateDir} 0750 root root - -"];

    # Once per data directory: the primary's accounts replicate, and a second
    # CHANGE MASTER TO on a promoted replica would undo the promotion. Delete the marker
    # to run it again (it replaces the accounts, which rotates their passwords).
    systemd.services.rampart-database-bootstrap = {
      description = "rampart: create the database accounts (primary) or start replication (replica)";
      after = ["mysql.service"];
      requires = ["mysql.service"];
      wantedBy = ["multi-user.target"];
      unitConfig.ConditionPathExists = "!${marker}";
      # Root, because MariaDB's root account authenticates by the local socket's peer;
      # otherwise the baseline, with the socket as its only address family.
      serviceConfig =
        rampart.hardening
        // {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = bootstrap;
          LoadCredential = lib.mapAttrsToList (name: file: "${name}:${file}") secretFiles;
          ReadWritePaths = [settings.stateDir];
          RestrictAddressFamilies = ["AF_UNIX"];
        };
    };

    rampart.resources.units = ["mysql"];
  };
}
