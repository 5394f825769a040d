# modules/monitoring.nix: monitoring agents on every host, and the monitoring server
# (rampart.monitoring).
#
# Agents (`enable`): the node exporter (with a textfile directory), the nginx exporter where
# rampart.web runs, the mysqld exporter where rampart.database runs, and a timer that runs
# `reach check` from this host and leaves its verdict for the node exporter. Every exporter
# listens on the host's topology address and port; the firewall admits the monitoring host
# only.
#
# Server (`server.enable`, on the host with role monitoring): Prometheus and Alertmanager
# with the files of lib/render/prometheus.nix and lib/render/alertmanager.nix, handed to
# nixpkgs as `configText`, so nixpkgs' build-time promtool/amtool checks run on them.
{
  config,
  lib,
  pkgs,
  ...
}: let
  cfg = config.rampart.monitoring;
  helpers = import ./lib.nix {inherit config lib;};
  settings = helpers.settings {};
  # The concerns this host runs decide which exporters it needs; `or false` keeps this
  # module usable without web.nix or database.nix imported.
  webEnabled = config.rampart.web.enable or false;
  databaseEnabled = config.rampart.database.enable or false;

  topologyFile = pkgs.writeText "topology.json" (builtins.toJSON config.rampart.topology);

  # The mysqld exporter's client configuration holds a password, so it is written at run
  # time from the secret file (never the store) and handed to nixpkgs' exporter module,
  # which passes it to the exporter through LoadCredential=.
  exporterCnfDir = "rampart-mysqld-exporter";
  exporterCnf = "/run/${exporterCnfDir}/client.cnf";
  writeExporterCnf = pkgs.writeShellScript "rampart-mysqld-exporter-config" ''
    set -euo pipefail
    umask 077
    password=$(<"$CREDENTIALS_DIRECTORY/exporter-db-password")
    # A double-quoted option value: escape backslashes, then quotes.
    password=''${password//\\/\\\\}
    password=''${password//\"/\\\"}
    printf '[client]\nuser=%s\npassword="%s"\nsocket=/run/mysqld/mysqld.sock\n' \
      ${lib.escapeShellArg settings.mariadb.exporterUser} "$password" > ${exporterCnf}.tmp
    mv ${exporterCnf}.tmp ${exporterCnf}
  '';

  # Prometheus reads its rules from the store: rendered once for their text, then the
  # configuration is rendered with that file's path (nixpkgs' promtool check follows it).
  rulesFile = pkgs.writeText "rules.yml" (helpers.render helpers.renderers.prometheus {})."prometheus/rules.yml";

  # lib/daemons.nix: listen addresses, flags and configuration, as the lab runs them too.
  daemons =
    lib.genAttrs (lib.optional cfg.enable "node-exporter" ++ lib.optional (cfg.enable && webEnabled) "nginx-exporter" ++ lib.optional (cfg.enable && databaseEnabled) "mysqld-exporter" ++ lib.optionals cfg.server.enable ["alertmanager"]) (name: helpers.daemon name {})
    // lib.optionalAttrs cfg.server.enable {prometheus = helpers.daemon "prometheus" {prometheus.rulesFile = "${rulesFile}";};};
  nixos = name: daemons.${name}.nixos;
  alertmanagerYml = (nixos "alertmanager")."services.prometheus.alertmanager".configText;

  pki = file: "${config.rampart.pkiDir}/${file}";
  rulesetFile = pkgs.writeText "rampart-ruleset.nft" (helpers.render helpers.renderers.nftables {})."nftables/ruleset.nft";
  reachArgs =
    [
      "check"
      "--topology"
      "${topologyFile}"
      "--from"
      config.rampart.hostName
      "--pki-dir"
      config.rampart.pkiDir
      "--prom-textfile"
      "${cfg.textfileDirectory}/rampart-reach.prom"
    ]
    # From the load balancer, the backends' HTTPS is checked too, and nginx requires the
    # load balancer's client certificate.
    ++ lib.optionals (helpers.hasRole "loadBalancer") ["--client-cert" (pki "backend-client.pem") "--client-key" (pki "backend-client.key")]
    # The TLS profile this deployment renders, for the `tls` group.
    ++ ["--tls-profile" settings.tls.profile]
    # The rendered firewall, for the `ruleset` group (the live one must be exactly it).
    ++ lib.optionals (config.rampart.firewall.enable or false) ["--ruleset" "${rulesetFile}"]
    ++ lib.concatLists (lib.mapAttrsToList (root: manifest: ["--web-root" root "--manifest" manifest]) cfg.reach.webRoots)
    ++ cfg.reach.extraArgs;
in {
  imports = [./topology.nix ./resources.nix];

  options.rampart.monitoring = {
    enable = lib.mkEnableOption "the rampart monitoring agents on this host: node exporter, the nginx/mysqld exporters of the concerns it runs, and the reach textfile timer";

    textfileDirectory = lib.mkOption {
      type = lib.types.str;
      default = "/var/lib/rampart/textfile";
      description = "Directory the node exporter's textfile collector reads; `reach` writes `rampart-reach.prom` there.";
    };

    reach = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = "Whether to run `reach check` from this host on a timer and export its verdict (per-check success, certificate expiry) through the node exporter.";
      };

      package = lib.mkOption {
        type = lib.types.package;
        description = "The `reach` package; the rampart flake's `nixosModules` set it to the flake's own.";
      };

      interval = lib.mkOption {
        type = lib.types.str;
        default = "1min";
        example = "5min";
        description = "How often `reach` runs (a systemd time span). The ReachTextfileStale alert fires when its last run is older than the rules allow (10 minutes by default).";
      };

      webRoots = lib.mkOption {
        type = lib.types.attrsOf lib.types.str;
        default = {};
        example = {"/var/www/rampart" = "/etc/rampart/web-manifest.sha256";};
        description = ''
          Web roots whose files `reach` compares with a SHA-256 manifest (`reach files
          --write-manifest` writes one): missing, changed and unexpected files become the
          `rampart_web_files` metric and the ReachWebContentChanged alert.
        '';
      };

      extraArgs = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [];
        example = ["--timeout" "2s"];
        description = "Further arguments to `reach check`.";
      };
    };

    server = {
      enable = lib.mkEnableOption "the rampart monitoring server: Prometheus with rampart's scrape jobs and alert rules, and Alertmanager routing to the topology's receiver";

      retentionTime = lib.mkOption {
        type = lib.types.str;
        default = "15d";
        description = "How long Prometheus keeps samples.";
      };
    };
  };

  config = lib.mkMerge [
    (lib.mkIf cfg.enable {
      services.prometheus.exporters.node = {
        enable = true;
        inherit ((nixos "node-exporter")."services.prometheus.exporters.node") listenAddress port;
        extraFlags = ["--collector.textfile.directory=${cfg.textfileDirectory}"] ++ daemons.node-exporter.args;
      };

      services.prometheus.exporters.nginx = lib.mkIf webEnabled {
        enable = true;
        inherit ((nixos "nginx-exporter")."services.prometheus.exporters.nginx") listenAddress port scrapeUri;
        extraFlags = daemons.nginx-exporter.args;
      };

      services.prometheus.exporters.mysqld = lib.mkIf databaseEnabled {
        enable = true;
        inherit ((nixos "mysqld-exporter")."services.prometheus.exporters.mysqld") listenAddress port;
        configFile = exporterCnf;
        extraFlags = daemons.mysqld-exporter.args;
      };

      systemd.services.rampart-mysqld-exporter-config = lib.mkIf databaseEnabled {
        description = "rampart: the mysqld exporter's client configuration, from the secret file";
        before = ["prometheus-mysqld-exporter.service"];
        requiredBy = ["prometheus-mysqld-exporter.service"];
        serviceConfig =
          helpers.hardening
          // {
            Type = "oneshot";
            RemainAfterExit = true;
            ExecStart = writeExporterCnf;
            LoadCredential = helpers.loadSecrets "rampart-mysqld-exporter-config" {"exporter-db-password" = config.rampart.database.exporterPasswordFile;};
            RuntimeDirectory = exporterCnfDir;
            RuntimeDirectoryMode = "0700";
            RestrictAddressFamilies = ["AF_UNIX"];
          };
      };

      # Readable by the node exporter's user, writable by root (reach) only.
      systemd.tmpfiles.rules = ["d ${cfg.textfileDirectory} 0755 root root - -"];

      systemd.services.rampart-reach = lib.mkIf cfg.reach.enable {
        description = "rampart: check this host against the topology (reach), for the node exporter";
        after = ["network-online.target"];
        wants = ["network-online.target"];
        serviceConfig =
          helpers.hardening
          // {
            Type = "oneshot";
            ExecStart = "${cfg.reach.package}/bin/reach ${lib.escapeShellArgs reachArgs}";
            # 1 means "checked, and something is not as declared": that is the metrics'
            # news, not a failure of the unit. 2 (could not run) stays a failure.
            SuccessExitStatus = [1];
            # Root to read the PKI directory; it writes nothing but its textfile.
            ReadWritePaths = [cfg.textfileDirectory];
            UMask = "0022";
            # What reach's host checks need (docs/reach.md): the sweep's raw SYN probes
            # (AF_PACKET, CAP_NET_RAW; without them it falls back to connect probes, which
            # fill this host's conntrack table), the live ruleset (nft: netlink,
            # CAP_NET_ADMIN), the rendered one loaded in a scratch network namespace
            # (unshare: CAP_SYS_ADMIN), and the processes behind listening sockets
            # (/proc/<pid>/fd of every user: CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH).
            CapabilityBoundingSet = ["CAP_NET_RAW" "CAP_NET_ADMIN" "CAP_SYS_ADMIN" "CAP_SYS_PTRACE" "CAP_DAC_READ_SEARCH"];
            RestrictAddressFamilies = ["AF_INET" "AF_INET6" "AF_UNIX" "AF_NETLINK" "AF_PACKET"];
            RestrictNamespaces = ["net"];
          };
        path = [pkgs.nftables pkgs.util-linux];
      };

      systemd.timers.rampart-reach = lib.mkIf cfg.reach.enable {
        description = "rampart: run reach every ${cfg.reach.interval}";
        wantedBy = ["timers.target"];
        timerConfig = {
          OnBootSec = "1min";
          OnUnitActiveSec = cfg.reach.interval;
          # Spread the hosts' probes apart a little.
          RandomizedDelaySec = "10s";
        };
      };

      environment.etc."rampart/topology.json".source = topologyFile;
      environment.systemPackages = lib.optional cfg.reach.enable cfg.reach.package;

      rampart.daemons = builtins.removeAttrs daemons ["prometheus" "alertmanager"];

      rampart.resources.units =
        ["prometheus-node-exporter"]
        ++ lib.optional webEnabled "prometheus-nginx-exporter"
        ++ lib.optional databaseEnabled "prometheus-mysqld-exporter"
        ++ lib.optional cfg.reach.enable "rampart-reach";
    })

    (lib.mkIf cfg.server.enable {
      assertions = [
        (helpers.requireRole ["monitoring" "server" "enable"])
        {
          # nixpkgs runs envsubst over alertmanager.yml before Alertmanager reads it. (No
          # host, no rendering: topology.nix's assertion says why.)
          assertion = helpers.host == null || !(lib.hasInfix "$" alertmanagerYml);
          message = "rampart.monitoring.server: the rendered alertmanager.yml contains \"$\", which nixpkgs' envsubst step would replace (got a \"$\" in lib/render/alertmanager.nix's output, expected none); remove it from settings.alertmanager";
        }
      ];

      services.prometheus = {
        enable = true;
        inherit ((nixos "prometheus")."services.prometheus") listenAddress port configText;
        extraFlags = daemons.prometheus.args;
        inherit (cfg.server) retentionTime;
      };

      services.prometheus.alertmanager = {
        enable = true;
        inherit ((nixos "alertmanager")."services.prometheus.alertmanager") listenAddress port configText;
        extraFlags = daemons.alertmanager.args;
      };

      rampart.resources.units = ["prometheus" "alertmanager"];
      rampart.daemons = {inherit (daemons) prometheus alertmanager;};
    })
  ];
}
