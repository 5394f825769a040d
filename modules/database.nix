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
  helpers = import ./lib.nix {inherit config lib;};

  # mysqld runs as its own user: keys reach it through LoadCredential= (see
  # load-balancer.nix). Both roles get the replication client certificate: either may be
  # the replica after a failover.
  pkiFiles = ["ca.pem" "mysql.pem" "mysql.key" "replication-client.pem" "replication-client.key"];
  overrides = {pkiDir = helpers.credentialsDir "mysql";};
  settings = helpers.settings overrides;
  rendered = helpers.render helpers.renderers.mariadb overrides;
  daemon = helpers.daemon "mariadb" overrides;

  marker = "${settings.stateDir}/mariadb-bootstrap.done";

  # Each secret's file, by the name lib/secrets.nix gives it; the list decides which of
  # them a unit or command on this host reads.
  secretFiles = {
    "replication-password" = cfg.replicationPasswordFile;
    "app-db-password" = cfg.appPasswordFile;
    "exporter-db-password" = cfg.exporterPasswordFile;
    "failover-db-password" = cfg.failoverPasswordFile;
  };
  # The bootstrap's secrets, each filling its placeholder in mariadb/bootstrap.sql.
  bootstrapSecrets = helpers.rampartLib.secrets.readBy helpers.secrets "rampart-database-bootstrap";
  # rampart-db's: each file named by the variable the list gives it.
  failoverVariables = lib.listToAttrs (lib.concatMap (secret:
    map (reader: lib.nameValuePair reader.variable secretFiles.${secret})
    (lib.filter (reader: reader.name == "rampart-db") helpers.secrets.${secret}.readers))
  (helpers.rampartLib.secrets.readBy helpers.secrets "rampart-db"));

  bootstrapSql = pkgs.writeText "rampart-bootstrap.sql" rendered."mariadb/bootstrap.sql";
  bootstrap = pkgs.writeShellScript "rampart-database-bootstrap" ''
    set -euo pipefail
    sql=$(<${bootstrapSql})
    ${lib.concatMapStrings (credential: ''
        value=$(<"$CREDENTIALS_DIRECTORY/${credential}")
        # Inside a single-quoted SQL string: escape backslashes, then quotes.
        value=''${value//\\/\\\\}
        value=''${value//\'/\\\'}
        sql=''${sql//@${helpers.secrets.${credential}.placeholder}@/"$value"}
      '')
      bootstrapSecrets}
    # The filled-in SQL exists only in this pipe: never on disk, never in the journal.
    printf '%s\n' "$sql" | ${cfg.package}/bin/mariadb --user=root --batch
    touch ${marker}
  '';
  # Failover (docs/failover.md). rampart-db runs here as root, with this deployment's
  # topology, CA and secrets; promotion changes no file, so the same wrapper serves either
  # role.
  self =
    if helpers.host == null
    then ""
    else helpers.host.name;
  nft = "${pkgs.nftables}/bin/nft";
  # The fence rule rampart-db wrote for this host, kept so that it comes back on boot
  # before MariaDB does: a demoted primary must not take writes after a reboot either.
  fenceFile = "${settings.stateDir}/fence.nft";
  # The fence hook (contracts.md "Failover"): applies the nft script on its stdin to this
  # host. Database hosts cannot log in to each other (the topology admits SSH only from
  # the admin networks), so another host's fence is applied on that host: an operator
  # runs `rampart-db fence <host>` there.
  fenceHook = pkgs.writeShellScript "rampart-db-fence-hook" ''
    set -eu
    if [ "$1" != ${lib.escapeShellArg self} ]; then
      echo "rampart-db-fence-hook: ${self} cannot change the firewall of $1; run \`rampart-db fence $1\` on $1" >&2
      exit 1
    fi
    case "$2" in
      fence)
        umask 077
        cat >${fenceFile}.new
        ${nft} -f ${fenceFile}.new
        mv ${fenceFile}.new ${fenceFile}
        ;;
      lift)
        ${nft} -f -
        rm -f ${fenceFile}
        ;;
    esac
  '';
  rampartDb = pkgs.writeShellScriptBin "rampart-db" ''
    ${lib.concatStrings (lib.mapAttrsToList (name: value: "export ${name}=${lib.escapeShellArg value}\n") cfg.failover.environment)}
    export RAMPART_DB_FENCE_HOOK=${lib.escapeShellArg cfg.failover.fenceHook}
    exec ${cfg.failover.package}/bin/rampart-db "$@"
  '';
in {
  imports = [./topology.nix ./resources.nix ./failover.nix];

  options.rampart.database = {
    enable = lib.mkEnableOption "the rampart database: MariaDB primary or replica (by the host's role), replicating over TLS with GTIDs";

    package = lib.mkPackageOption pkgs "mariadb" {};

    replicationPasswordFile = helpers.secretFileOption "replication-password" "File holding the replication account's password, read at run time by the bootstrap on both roles. Not a store path: the store is world-readable.";
    appPasswordFile = helpers.secretFileOption "app-db-password" "File holding the application account's password, read by the primary's bootstrap (the application reads {option}`rampart.app.databasePasswordFile`).";
    exporterPasswordFile = helpers.secretFileOption "exporter-db-password" "File holding the mysqld exporter account's password, read by the primary's bootstrap and by the exporter on every database host.";
    failoverPasswordFile = helpers.secretFileOption "failover-db-password" "File holding the password of `rampart_failover`, the account `rampart-db` logs in with on every database host; read by the primary's bootstrap and by `rampart-db`.";

    failover = {
      package = lib.mkOption {
        type = lib.types.package;
        description = "The package with `rampart-db` (status, promote, fence, rejoin); the rampart flake's `nixosModules` set it to the flake's own.";
      };
      secretVariables = lib.mkOption {
        type = lib.types.attrsOf lib.types.str;
        default = failoverVariables;
        readOnly = true;
        internal = true;
        description = "The variables `rampart-db` finds its secret files in (lib/secrets.nix), as its wrapper exports them.";
      };
      fenceHook = lib.mkOption {
        type = lib.types.str;
        default = "${fenceHook} {host} {action}";
        defaultText = lib.literalExpression "\"\${rampart-db-fence-hook} {host} {action}\"";
        example = "ssh -o BatchMode=yes root@{address} rampart-db-fence-hook {host} {action}";
        description = ''
          Shell command that applies the nft script on its stdin (the firewall fence of
          docs/failover.md) to host `{host}` (`{address}`, `{port}`, `{action}`: `fence` or
          `lift`). The default applies it to this host only and asks for the others to be
          fenced on their own host (`rampart-db fence HOST` there), because the topology
          lets no database host log in to another.
        '';
      };
    };
  };

  config = lib.mkIf cfg.enable {
    assertions =
      [(helpers.requireRole ["database" "enable"])]
      ++ lib.mapAttrsToList (name: file: helpers.runtimePath "rampart.database.${name}" file "${config.rampart.secretsDir}/…") {
        inherit (cfg) replicationPasswordFile appPasswordFile exporterPasswordFile failoverPasswordFile;
      };

    services.mysql = {
      enable = true;
      inherit (cfg) package;
      inherit (daemon.nixos."services.mysql") settings;
    };

    systemd.services.mysql.serviceConfig.LoadCredential = helpers.loadPki (helpers.samePki pkiFiles);
    # Variables naming a rendered file (lib/daemons.nix fileEnvironment: OPENSSL_CONF, the
    # TLS profile's groups): the file goes to the store, it holds no secret.
    systemd.services.mysql.environment = lib.mapAttrs (_: file: "${pkgs.writeText "rampart-${baseNameOf file}" rendered.${file}}") daemon.fileEnvironment;

    # Traversable by all: the node exporter reads its textfile directory below it, and the
    # PKI directory keeps itself 0700.
    systemd.tmpfiles.rules = ["d ${settings.stateDir} 0755 root root - -"];

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
        helpers.hardening
        // {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = bootstrap;
          LoadCredential = helpers.loadSecrets "rampart-database-bootstrap" secretFiles;
          ReadWritePaths = [settings.stateDir];
          RestrictAddressFamilies = ["AF_UNIX"];
        };
    };

    # `rampart-db status`, `promote`, `fence`, `rejoin` as root, with this deployment's paths.
    environment.systemPackages = [rampartDb];

    # A fenced host stays fenced across reboots: the rule comes back before MariaDB starts
    # (the fence hook keeps it in ${fenceFile}; `rampart-db rejoin` removes it).
    systemd.services.rampart-db-fence = {
      description = "rampart: keep this demoted database host fenced (MariaDB port rejected) after a reboot";
      wantedBy = ["mysql.service"];
      before = ["mysql.service"];
      after = ["nftables.service"];
      unitConfig.ConditionPathExists = fenceFile;
      serviceConfig =
        helpers.hardening
        // {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = "${nft} -f ${fenceFile}";
          # Changing the ruleset needs CAP_NET_ADMIN and a netlink socket, nothing else.
          CapabilityBoundingSet = ["CAP_NET_ADMIN"];
          RestrictAddressFamilies = ["AF_NETLINK"];
        };
    };

    rampart.resources.units = ["mysql"];
    rampart.daemons.mariadb = daemon;
  };
}
