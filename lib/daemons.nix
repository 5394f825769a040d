/*
lib/daemons.nix: how each daemon of a host is started, as the one attribute that both the
NixOS modules and the lab read: its arguments, environment and main configuration.

Per daemon the host runs (by its concerns, lib/roles.nix):

- `unit`: the NixOS systemd unit that runs it.
- `nixos`: the values the module sets, by option path (`"services.haproxy" = { config = …; }`):
  the main configuration and listen address in nixpkgs' own options.
- `args`: arguments passed on NixOS (the unit's ExecStart, or nixpkgs' `extraFlags`) and
  in the lab alike.
- `labArgs`: arguments only the lab passes, because on NixOS nixpkgs' module passes their
  equivalent from `nixos` (a listen flag, foreground mode); each says why.
- `files`: the rendered files (lib/render) the lab starts it with, which hold the same
  text or values as `nixos`.
- `environment`: variables set on both.
- `labEnvironment`: variables only the lab sets, because on NixOS nixpkgs' module derives
  the same ones from `nixos` (etcd: its options become the unit's `ETCD_*` variables).
- `fileEnvironment`: variables whose value is where one of its rendered `files` lives: the
  file's store path on NixOS, the host's copy in the lab (MariaDB: `OPENSSL_CONF`).

Beyond these, each side adds only where files live: absolute paths (`-c /…`, `--x=/…`),
nothing else. tools/rampart/src/lab/daemons.rs (`lab_start_is_the_nix_attribute`) and the
module harness (checks/harness/parity.nix) fail when either side differs from this.

# Inputs

`{ topology, settings, host, concerns ? <from the host's roles> }` as in lib/secrets.nix.

# Type

```
daemons :: { … } -> { <daemon> = { unit; nixos; args; labArgs; files; environment; labEnvironment; fileEnvironment; }; }
```

# Examples

```nix
(daemons { topology = lib.shippedTopology; settings = { }; host = "web2"; }).app.args
=> [ "--listen" "127.0.0.1:8080" "--host-name" "web2" … "--db-replica" "10.42.0.12:3306" ]
```
*/
let
  inherit (builtins) concatStringsSep filter;
  util = import ./util.nix;
  topologyLib = import ./topology.nix;
  roles = import ./roles.nix;
  common = import ./render/common.nix;
  inherit (import ./render) renderers;

  isDatabaseHost = h: topologyLib.hasRole h "databasePrimary" || topologyLib.hasRole h "databaseReplica";

  daemon = attrs:
    {
      nixos = {};
      args = [];
      labArgs = [];
      files = [];
      environment = {};
      labEnvironment = {};
      fileEnvironment = {};
    }
    // attrs;
in
  {
    topology,
    settings,
    host,
    concerns ? null,
  }: let
    self = common.resolveHost topology host;
    s = common.mergeSettings settings;
    on =
      if concerns == null
      then roles.runsByName self
      else concerns;
    render = renderer: renderer {inherit topology settings host;};
    port = topologyLib.servicePort topology;
    listen = service: {
      address = self.address;
      port = port service;
    };
    address = l: "${l.address}:${toString l.port}";
    endpoint = h: "${h.address}:${toString (port "mysql")}";
    databaseHosts = filter isDatabaseHost topology.hosts;
    # The command-line flags a renderer writes for its daemon (`<name>/flags.json`).
    flags = name: builtins.fromJSON (render renderers.${name})."${name}/flags.json";

    # An exporter: nixpkgs' exporters.nix passes `--web.listen-address` from these.
    exporter = name: service: extra: let
      l = listen service;
    in
      daemon ({
          unit = "prometheus-${name}-exporter";
          nixos."services.prometheus.exporters.${name}" = {
            listenAddress = l.address;
            inherit (l) port;
          };
          labArgs = ["--web.listen-address=${address l}"];
        }
        // extra);
  in
    util.optionalAttrs on.app {
      app = daemon {
        unit = "rampart-app";
        args =
          [
            "--listen"
            "127.0.0.1:${toString s.app.port}"
            "--host-name"
            self.name
            # Every database host: the application writes to the one whose read_only is 0
            # (docs/failover.md), so a promotion changes nothing here.
            "--db-probe"
            (concatStringsSep "," (map endpoint databaseHosts))
            "--db-name"
            s.mariadb.database
            "--db-user"
            s.mariadb.appUser
            "--db-password-file"
            "${s.secretsDir}/app-db-password"
            "--db-ca"
            "${s.pkiDir}/ca.pem"
          ]
          # Reads go to this host's own database, whichever role it has now: a promotion
          # changes no file, so a rule by role would be wrong after the first failover.
          ++ util.optionals (isDatabaseHost self) ["--db-replica" (endpoint self)];
      };
    }
    // util.optionalAttrs on.web {
      nginx = daemon {
        unit = "nginx";
        nixos."services.nginx" = let
          main = render renderers.nginx.main;
        in {
          appendConfig = main.main;
          inherit (main) user;
          eventsConfig = main.events;
          commonHttpConfig = main.http;
          group = main.user;
          appendHttpConfig = (render renderers.nginx)."nginx/rampart.conf";
        };
        # Errors before nginx.conf is read go to stderr too (the lab's log of nginx); on
        # NixOS, nixpkgs' nginx.conf says `error_log stderr` as well.
        labArgs = ["-e" "stderr"];
        files = ["nginx/nginx.conf" "nginx/rampart.conf"];
      };
    }
    // util.optionalAttrs on.database {
      mariadb = daemon {
        unit = "mysql";
        nixos."services.mysql".settings = render renderers.mariadb.settings;
        # The lab's state directory belongs to root; on NixOS mysqld runs as `mysql`.
        labArgs = ["--user=root"];
        files = ["mariadb/rampart.cnf" "mariadb/openssl.cnf"];
        # The TLS profile's key-exchange groups, which no MariaDB option sets: OpenSSL
        # reads them from this file (lib/render/mariadb.nix).
        fileEnvironment.OPENSSL_CONF = "mariadb/openssl.cnf";
      };
    }
    // util.optionalAttrs on.database {
      # The failover agent (docs/failover.md): where its files live (the MariaDB socket,
      # the topology, the replication certificate as mysqld reads it, node exporter's
      # textfile) is each side's; everything else is here.
      failover-agent = daemon {
        unit = "rampart-db-agent";
        args = [
          "agent"
          "--host"
          self.name
          "--policy"
          s.failover.policy
          "--lease-ttl"
          (toString s.failover.leaseTtl)
          "--etcd"
          (concatStringsSep "," (map (h: "https://${h.address}:${toString (port "etcdClient")}") topology.hosts))
          "--etcd-ca"
          "${s.pkiDir}/ca.pem"
          "--etcd-cert"
          "${s.pkiDir}/etcd-client.pem"
          "--etcd-key"
          "${s.pkiDir}/etcd-client.key"
          "--ca"
          "${s.pkiDir}/ca.pem"
          "--password-file"
          "${s.secretsDir}/failover-db-password"
          "--replication-password-file"
          "${s.secretsDir}/replication-password"
        ];
      };
    }
    // util.optionalAttrs on.etcd {
      etcd = daemon {
        unit = "etcd";
        # nixpkgs' module turns these options into the unit's ETCD_* variables; etcd
        # takes no argument.
        nixos."services.etcd" = render renderers.etcd.serviceOptions;
        # The lab sets those variables itself: lib/tests/render-etcd.nix applies nixpkgs'
        # formula to the options above and gets exactly these (etcd/etcd.env holds them
        # as text).
        labEnvironment = render renderers.etcd.environment;
      };
    }
    // util.optionalAttrs on.loadBalancer {
      haproxy = daemon {
        unit = "haproxy";
        nixos."services.haproxy".config = (render renderers.haproxy)."haproxy/haproxy.cfg";
        # Master-worker in the foreground; nixpkgs runs it master-worker as a systemd notify
        # service (-Ws). SIGUSR2 to the master reloads it without refusing a connection.
        labArgs = ["-W" "-db"];
        files = ["haproxy/haproxy.cfg"];
      };
    }
    // util.optionalAttrs (on.ssh && topology.services ? ssh) {
      sshd = daemon {
        unit = "sshd";
        nixos."services.openssh" = render renderers.sshd.settings;
        # Foreground, logging to stderr; nixpkgs' unit runs `sshd -D` under systemd.
        labArgs = ["-D" "-e"];
        files = ["ssh/sshd_config"];
      };
    }
    // util.optionalAttrs on.monitoring (
      {
        node-exporter = exporter "node" "nodeExporter" {};
      }
      // util.optionalAttrs on.web {
        nginx-exporter = exporter "nginx" "nginxExporter" {
          nixos."services.prometheus.exporters.nginx" = let
            l = listen "nginxExporter";
          in {
            listenAddress = l.address;
            inherit (l) port;
            scrapeUri = "http://127.0.0.1:${toString s.nginx.stubStatusPort}/stub_status";
          };
          # Debian 12 ships exporter 0.10 (single-dash flags; 1.x, in nixpkgs, takes
          # --nginx.scrape-uri from scrapeUri). It starts with nginx and would exit if
          # stub_status did not answer at once; systemd restarts it on NixOS.
          labArgs = [
            "-web.listen-address=${address (listen "nginxExporter")}"
            "-nginx.scrape-uri=http://127.0.0.1:${toString s.nginx.stubStatusPort}/stub_status"
            "-nginx.retries=50"
            "-nginx.retry-interval=200ms"
          ];
        };
      }
      // util.optionalAttrs on.database {
        mysqld-exporter = exporter "mysqld" "mysqldExporter" {};
      }
    )
    // util.optionalAttrs on."monitoring.server" {
      prometheus = daemon {
        unit = "prometheus";
        nixos."services.prometheus" = let
          l = listen "prometheus";
        in {
          listenAddress = l.address;
          inherit (l) port;
          configText = (render renderers.prometheus)."prometheus/prometheus.yml";
        };
        # --web.external-url: the links of its pages and every alert's generatorURL.
        args = flags "prometheus";
        # nixpkgs passes --web.listen-address from listenAddress and port.
        labArgs = ["--web.listen-address=${address (listen "prometheus")}"];
        # The runbook is one of its console templates (--web.console.templates, a path).
        files = ["prometheus/prometheus.yml" "prometheus/rules.yml" "prometheus/consoles/runbook.html"];
      };
      alertmanager = daemon {
        unit = "alertmanager";
        nixos."services.prometheus.alertmanager" = let
          l = listen "alertmanager";
        in {
          listenAddress = l.address;
          inherit (l) port;
          configText = (render renderers.alertmanager)."alertmanager/alertmanager.yml";
        };
        # A single Alertmanager: no gossip port (9094) listening on every address.
        args = ["--cluster.listen-address="] ++ flags "alertmanager";
        labArgs = ["--web.listen-address=${address (listen "alertmanager")}"];
        files = ["alertmanager/alertmanager.yml"];
      };
      # Prometheus' probes of the public endpoint and of each backend (lib/render/probes.nix).
      blackbox-exporter = exporter "blackbox" "blackboxExporter" {
        files = ["blackbox/blackbox.yml"];
      };
    }
