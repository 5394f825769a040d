# checks/three-vm.nix: the design on real NixOS machines (checks.x86_64-linux.three-vm).
#
# Nodes: every host of hosts/topology.json, built exactly as nixosConfigurations builds it
# (hosts/default.nix: the rampart modules, by the host's roles; only the hardware is the
# test's), plus
# `client` at the topology's lab.outside address (an internet user: HTTP and HTTPS only)
# and `admin` at lab.admin (SSH and the monitoring UIs). All sit on one virtual network
# at their topology addresses, because the firewall's rules name those addresses.
#
# The CA and every certificate are made in the test script with the packaged certtool and
# copied into the machines; keys and passwords never enter the Nix store. Subtests are
# named by concern (docs: STYLE.md section 6); every allowed path has a refused twin with a
# short connect timeout, and the packaged `reach` gives the verdicts.
#
# Needs KVM and a binary cache (five VMs, nixpkgs' closure): run it with
#   nix build .#checks.x86_64-linux.three-vm -L
# on such a machine. It does not run in this repository's CI.
{
  pkgs,
  self,
}: let
  inherit (pkgs) lib;
  topo = self.lib.shippedTopology;
  t = self.lib.topology;
  tools = self.packages.${pkgs.stdenv.hostPlatform.system};
  hosts = import ../hosts;

  one = role: builtins.head (t.hostsWithRole topo role);
  lb = one "loadBalancer";
  monitoring = one "monitoring";
  primary = one "databasePrimary";
  replica = one "databaseReplica";
  webHosts = t.hostsWithRole topo "web";
  port = t.servicePort topo;
  publicName = builtins.head topo.publicNames;
  prefixLength = lib.toInt (lib.last (lib.splitString "/" topo.network.cidr));

  # Where Alertmanager delivers: the test's webhook sink listens there.
  receiver = let
    parts = builtins.match "http://([^:/]+):([0-9]+)(/.*)?" topo.monitoring.alertReceiver.webhookUrl;
  in
    if parts == null
    then throw "checks/three-vm.nix: monitoring.alertReceiver.webhookUrl is ${builtins.toJSON topo.monitoring.alertReceiver.webhookUrl}; expected http://<address>:<port>/… for the test's webhook sink"
    else {
      address = builtins.elemAt parts 0;
      port = lib.toInt (builtins.elemAt parts 1);
    };
  sinkHost =
    lib.findFirst (h: h.address == receiver.address)
    (throw "checks/three-vm.nix: the alert receiver ${receiver.address} is no host of the topology; the test runs its webhook sink on a topology host")
    topo.hosts;

  topologyFile = pkgs.writeText "topology.json" (builtins.toJSON topo);
  inherit (self.lib.settings) pkiDir secretsDir;

  # Every machine on VLAN 1 at its topology address. The driver would number the nodes
  # 192.168.1.<n>; mkForce replaces that, since the firewall's rules name the topology's
  # addresses (and /etc/hosts follows primaryIPAddress).
  onNetwork = address: {
    virtualisation.vlans = [1];
    networking.interfaces.eth1.ipv4.addresses = lib.mkForce [{inherit address prefixLength;}];
    networking.primaryIPAddress = lib.mkForce address;
  };

  # Test-only tuning: 2 s scrapes and every `for:` capped at 10 s, so alerts reach the sink
  # in seconds (the lab's values), and health checks every second.
  fast = {
    rampart.settings = {
      prometheus = {
        scrapeInterval = "2s";
        maxFor = "10s";
      };
      alertmanager = {
        groupWait = "1s";
        groupInterval = "5s";
      };
      haproxy.healthCheck.interval = "1s";
    };
    rampart.resources.memoryBudget = 1024;
  };

  hostNode = host: {
    imports = [
      self.nixosModules.default
      (hosts.host host.name)
      (onNetwork host.address)
      fast
      (lib.optionalAttrs (host.name == sinkHost.name) sink)
    ];
    virtualisation.memorySize = 1536;
    virtualisation.cores = 2;
    environment.systemPackages = [pkgs.curl pkgs.jq tools.reach];
  };

  sink = {
    systemd.services.alert-sink = {
      description = "three-vm test: record Alertmanager's webhook notifications";
      wantedBy = ["multi-user.target"];
      after = ["network-online.target"];
      wants = ["network-online.target"];
      serviceConfig = {
        ExecStart = "${pkgs.python3}/bin/python3 ${./alert-sink.py} --address ${receiver.address} --port ${toString receiver.port} --out /var/lib/alert-sink/alerts.jsonl";
        StateDirectory = "alert-sink";
        DynamicUser = true;
      };
    };
  };

  clientNode = address: {
    imports = [(onNetwork address)];
    environment.systemPackages = [pkgs.curl pkgs.wrk pkgs.jq tools.reach];
    environment.etc."rampart/topology.json".source = topologyFile;
    # The public names resolve to the load balancer, as DNS would make them.
    networking.hosts.${lb.address} = topo.publicNames;
  };
in
  pkgs.testers.runNixOSTest {
    name = "rampart-three-vm";

    nodes =
      builtins.listToAttrs (map (host: {
          inherit (host) name;
          value = hostNode host;
        })
        topo.hosts)
      // {client = clientNode topo.lab.outside;}
      // lib.optionalAttrs (topo.lab ? admin) {admin = clientNode topo.lab.admin;};

    # The script is checks/three-vm.py; everything it needs to know comes from the topology
    # and the nodes' configurations, as JSON, so no name, address or port is written twice.
    testScript = {nodes, ...}: let
      node = name: nodes.${name};
      params = {
        inherit pkiDir secretsDir publicName;
        topology = "${topologyFile}";
        certtool = "${tools.certtool}/bin/certtool";
        roles = {
          lb = lb.name;
          monitoring = monitoring.name;
          primary = primary.name;
          replica = replica.name;
          sink = sinkHost.name;
        };
        servers = map (h: h.name) topo.hosts;
        webs = map (h: h.name) webHosts;
        # reach's vantage name => the node standing there
        clients = {outside = "client";} // lib.optionalAttrs (topo.lab ? admin) {admin = "admin";};
        addresses = lib.listToAttrs (map (h: lib.nameValuePair h.name h.address) topo.hosts);
        fqdns = lib.listToAttrs (map (h: lib.nameValuePair h.name (t.fqdn topo h)) topo.hosts);
        ports = {
          http = port "http";
          https = port "https";
          backendHttps = port "backendHttps";
          mysql = port "mysql";
          ssh = port "ssh";
          haproxyExporter = port "haproxyExporter";
          etcdClient = port "etcdClient";
          prometheus = (node monitoring.name).services.prometheus.port;
          alertmanager = (node monitoring.name).services.prometheus.alertmanager.port;
          app = (node primary.name).rampart.app.port;
        };
        # What each server restarts once its keys and secrets are in place: its daemons
        # (the timer runs reach by itself) and the database bootstrap. etcd is started on
        # every server first, together: a member is ready only once a quorum is.
        units = lib.listToAttrs (map (h:
          lib.nameValuePair h.name (lib.unique (lib.subtractLists ["rampart-reach" "etcd"] (node h.name).rampart.resources.units
              ++ lib.optional (node h.name).rampart.database.enable "rampart-database-bootstrap")))
        topo.hosts);
        # The secret files each server needs (lib/secrets.nix, for its enabled concerns).
        secrets = lib.listToAttrs (map (h: lib.nameValuePair h.name (lib.attrNames (node h.name).rampart.secrets)) topo.hosts);
        replicationUser = self.lib.settings.mariadb.replicationUser;
        sinkFile = "/var/lib/alert-sink/alerts.jsonl";
      };
    in
      ''
        import json
        params = json.loads(${builtins.toJSON (builtins.toJSON params)})
      ''
      + builtins.readFile ./three-vm.py;
  }
