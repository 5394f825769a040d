# lib/tests/daemons.nix: lib/daemons.nix, the one attribute the NixOS modules and the lab
# start every daemon from: the application's command line, and the rendered files the lab
# runs holding exactly the main configuration NixOS gets.
let
  inherit (builtins) all attrNames concatStringsSep elem filter isInt;
  support = import ./support/render.nix;
  inherit (support) lib shipped fourWeb lines;
  daemons = topology: host:
    lib.daemons {
      inherit topology host;
      settings = {};
    };
  files = lib.rendered;
  web1 = daemons shipped "web1";
  has = text: line: elem line (lines text);
  replicaArgs = args: filter (arg: arg == "--db-replica") args;
in {
  testEveryHostRunsWhatItsConcernsCallFor = {
    expr = map (host: attrNames (daemons shipped host)) ["lb" "web1" "web2"];
    expected = [
      ["alertmanager" "blackbox-exporter" "etcd" "haproxy" "node-exporter" "prometheus" "sshd"]
      ["app" "etcd" "failover-agent" "mariadb" "mysqld-exporter" "nginx" "nginx-exporter" "node-exporter" "sshd"]
      ["app" "etcd" "failover-agent" "mariadb" "mysqld-exporter" "nginx" "nginx-exporter" "node-exporter" "sshd"]
    ];
  };
  # One rule: every host with a database reads from it, whatever its role today.
  testTheApplicationReadsTheLocalDatabaseOnEveryDatabaseHost = {
    expr = map (host: let
      args = (daemons shipped host).app.args;
    in
      builtins.elemAt args (builtins.length args - 1))
    ["web1" "web2"];
    expected = ["10.42.0.11:3306" "10.42.0.12:3306"];
  };
  testNoLocalReadsWithoutALocalDatabase = {
    expr = map (host: replicaArgs (daemons fourWeb host).app.args) ["web3" "web4"];
    expected = [[] []];
  };
  testTheApplicationsSecretAndCaComeFromTheSettings = {
    expr =
      filter (arg: support.util.hasPrefix "/" arg)
      (lib.daemons {
        topology = shipped;
        host = "web2";
        settings = {
          secretsDir = "/s";
          pkiDir = "/p";
        };
      })
      .app
      .args;
    expected = ["/s/app-db-password" "/p/ca.pem"];
  };
  # nginx.conf (the lab) holds the directives services.nginx gets (NixOS).
  testNginxMainFileHoldsTheNixosDirectives = let
    n = web1.nginx.nixos."services.nginx";
  in {
    expr = all (line: has files.web1."nginx/nginx.conf" line || has files.web1."nginx/nginx.conf" "  ${line}") (filter (l: l != "") (lines (n.appendConfig + n.eventsConfig + n.commonHttpConfig)) ++ ["user ${n.user} ${n.group};"]);
    expected = true;
  };
  testNginxMainConfiguration = {
    expr = web1.nginx.nixos."services.nginx".appendConfig + web1.nginx.nixos."services.nginx".eventsConfig;
    expected = "worker_processes auto;\nworker_rlimit_nofile 8192;\nworker_connections 4096;\n";
  };
  testNginxAccessLogOff = {
    expr =
      (lib.daemons {
        topology = shipped;
        host = "web1";
        settings.nginx.accessLog = null;
      })
      .nginx
      .nixos
      ."services.nginx"
      .commonHttpConfig;
    expected = "access_log off;\n";
  };
  # sshd_config (the lab) says what services.openssh gets (NixOS).
  testSshdFileHoldsTheNixosSettings = let
    o = (daemons shipped "lb").sshd.nixos."services.openssh";
  in {
    expr = map (key: has files.lb."ssh/sshd_config" (lib.renderers.sshd.line key o.settings.${key})) (attrNames o.settings) ++ [(has files.lb."ssh/sshd_config" "ListenAddress 10.42.0.10:22")];
    expected = [true true true true true true];
  };
  testSshdOnTheManagementAddressOnly = {
    expr = (daemons shipped "web2").sshd.nixos."services.openssh".listenAddresses;
    expected = [
      {
        addr = "10.42.0.12";
        port = 22;
      }
    ];
  };
  # rampart.cnf (the lab) holds the settings services.mysql gets (NixOS).
  testMariadbFileHoldsTheNixosSettings = let
    mysqld = web1.mariadb.nixos."services.mysql".settings.mysqld;
    show = v:
      if isInt v
      then toString v
      else v;
  in {
    expr = filter (key: !(has files.web1."mariadb/rampart.cnf" "${key} = ${show mysqld.${key}}")) (attrNames mysqld);
    expected = [];
  };
  testExportersListenWhereNixosDoes = {
    expr = map (name: let
      d = web1.${name};
      o = d.nixos."services.prometheus.exporters.${builtins.head (builtins.match "prometheus-(.*)-exporter" d.unit)}";
    in
      builtins.any (arg: support.util.hasPrefix "-" arg && builtins.match "--?web.listen-address=${o.listenAddress}:${toString o.port}" arg != null) d.labArgs)
    ["node-exporter" "nginx-exporter" "mysqld-exporter"];
    expected = [true true true];
  };
  testMariadbReadsTheProfileGroupsThroughOpensslConf = {
    expr = let
      m = web1.mariadb;
    in [m.fileEnvironment (builtins.elem m.fileEnvironment.OPENSSL_CONF m.files)];
    expected = [{OPENSSL_CONF = "mariadb/openssl.cnf";} true];
  };
  testNoEnvironmentAnywhere = {
    expr = concatStringsSep "," (filter (name: web1.${name}.environment != {}) (attrNames web1));
    expected = "";
  };
  # etcd takes no argument: nixpkgs' options become its environment on NixOS, and the lab
  # sets that same environment (lib/tests/render-etcd.nix compares the two).
  testEtcdStartsFromItsEnvironmentOnly = {
    expr = let
      etcd = (daemons shipped "lb").etcd;
    in [etcd.unit etcd.args etcd.labArgs etcd.environment etcd.labEnvironment.ETCD_NAME (etcd.nixos."services.etcd".name)];
    expected = ["etcd" [] [] {} "lb" "lb"];
  };
}
