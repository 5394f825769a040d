# lib/tests/render-etcd.nix: every host an etcd member with TLS and client certificates on
# both ports, its own address only, the initial cluster from the topology; the NixOS
# options give nixpkgs' unit exactly the environment the lab runs; refused settings.
let
  inherit (builtins) attrNames concatStringsSep filter listToAttrs map;
  support = import ./support/render.nix;
  inherit (support) shipped fourWeb grep capture evaluates;
  etcd = support.lib.renderers.etcd;

  args = host: settings: {
    topology = shipped;
    inherit host settings;
  };
  env = host: etcd.environment (args host {});
  file = host: (etcd (args host {}))."etcd/etcd.env";
  withSettings = settings: evaluates (etcd.environment (args "web1" {etcd = settings;}));

  # The environment nixpkgs' services.etcd gives its unit for these option values:
  # nixos/modules/services/misc/etcd.nix of NixOS/nixpkgs (nixos-26.05), its
  # `systemd.services.etcd.environment`, with the options rampart leaves at their
  # defaults filled in as that module declares them.
  nixpkgsEnvironment = options: let
    cfg =
      {
        discovery = "";
        peerCertFile = cfg.certFile;
        peerKeyFile = cfg.keyFile;
        peerTrustedCaFile = cfg.trustedCaFile;
        extraConf = {};
      }
      // options;
    nonNull = attrs:
      listToAttrs (map (name: {
        inherit name;
        value = attrs.${name};
      }) (filter (name: attrs.${name} != null) (attrNames attrs)));
  in
    nonNull {
      ETCD_ADVERTISE_CLIENT_URLS = concatStringsSep "," cfg.advertiseClientUrls;
      ETCD_CERT_FILE = cfg.certFile;
      ETCD_CLIENT_CERT_AUTH = toString cfg.clientCertAuth;
      ETCD_DATA_DIR = cfg.dataDir;
      ETCD_DISCOVERY = cfg.discovery;
      ETCD_INITIAL_ADVERTISE_PEER_URLS = concatStringsSep "," cfg.initialAdvertisePeerUrls;
      ETCD_KEY_FILE = cfg.keyFile;
      ETCD_LISTEN_CLIENT_URLS = concatStringsSep "," cfg.listenClientUrls;
      ETCD_LISTEN_PEER_URLS = concatStringsSep "," cfg.listenPeerUrls;
      ETCD_NAME = cfg.name;
      ETCD_PEER_CERT_FILE = cfg.peerCertFile;
      ETCD_PEER_CLIENT_CERT_AUTH = toString cfg.peerClientCertAuth;
      ETCD_PEER_KEY_FILE = cfg.peerKeyFile;
      ETCD_PEER_TRUSTED_CA_FILE = cfg.peerTrustedCaFile;
      ETCD_TRUSTED_CA_FILE = cfg.trustedCaFile;
    }
    // (
      if cfg.discovery == ""
      then {
        ETCD_INITIAL_CLUSTER = concatStringsSep "," cfg.initialCluster;
        ETCD_INITIAL_CLUSTER_STATE = cfg.initialClusterState;
        ETCD_INITIAL_CLUSTER_TOKEN = cfg.initialClusterToken;
      }
      else {}
    )
    // listToAttrs (map (name: {
      name = "ETCD_${name}";
      value = cfg.extraConf.${name};
    }) (attrNames cfg.extraConf));

  # `NAME=value` lines of the environment file, as an attrset.
  fileEnvironment = text:
    listToAttrs (map (line: let
      m = capture "([A-Z_]+)=(.*)" line;
    in {
      name = builtins.elemAt m 0;
      value = builtins.elemAt m 1;
    }) (grep "[A-Z_]+=.*" text));

  hosts = map (h: h.name) shipped.hosts;
in {
  testEveryHostIsAMember = {
    expr = filter (host: support.renderShipped.${host} ? "etcd/etcd.env") hosts;
    expected = hosts;
  };
  testInitialClusterIsEveryHostsPeerUrl = {
    expr = map (host: (env host).ETCD_INITIAL_CLUSTER) hosts;
    expected = map (_: "lb=https://10.42.0.10:2380,web1=https://10.42.0.11:2380,web2=https://10.42.0.12:2380") hosts;
  };
  testScaleOutTopologyHasAMemberPerHost = {
    expr = builtins.length (filter (x: x != "") (builtins.split ","
      (etcd.environment {
        topology = fourWeb;
        settings = {};
        host = "web4";
      })
      .ETCD_INITIAL_CLUSTER));
    expected = builtins.length fourWeb.hosts * 2 - 1;
  };
  testListensOnItsOwnAddressOnly = {
    expr = map (key: (env "web2").${key}) ["ETCD_NAME" "ETCD_LISTEN_CLIENT_URLS" "ETCD_ADVERTISE_CLIENT_URLS" "ETCD_LISTEN_PEER_URLS" "ETCD_INITIAL_ADVERTISE_PEER_URLS" "ETCD_LISTEN_METRICS_URLS"];
    expected = ["web2" "https://10.42.0.12:2379" "https://10.42.0.12:2379" "https://10.42.0.12:2380" "https://10.42.0.12:2380" "http://10.42.0.12:2381"];
  };
  testTlsWithClientCertificatesOnBothPorts = {
    expr = map (key: (env "lb").${key}) ["ETCD_CERT_FILE" "ETCD_KEY_FILE" "ETCD_TRUSTED_CA_FILE" "ETCD_CLIENT_CERT_AUTH" "ETCD_PEER_CERT_FILE" "ETCD_PEER_KEY_FILE" "ETCD_PEER_TRUSTED_CA_FILE" "ETCD_PEER_CLIENT_CERT_AUTH"];
    expected = [
      "/var/lib/rampart/pki/etcd-server.pem"
      "/var/lib/rampart/pki/etcd-server.key"
      "/var/lib/rampart/pki/ca.pem"
      "1"
      "/var/lib/rampart/pki/etcd-peer.pem"
      "/var/lib/rampart/pki/etcd-peer.key"
      "/var/lib/rampart/pki/ca.pem"
      "1"
    ];
  };
  testNoPlainClientOrPeerUrl = {
    # Only the metrics listener is plain HTTP.
    expr = filter (key: builtins.match "ETCD_.*_URLS" key != null && builtins.match "http://.*" (env "web1").${key} != null) (attrNames (env "web1"));
    expected = ["ETCD_LISTEN_METRICS_URLS"];
  };
  testTimingAndDataDirFromSettings = {
    expr = let
      e = etcd.environment (args "web1" {
        stateDir = "/srv/state";
        etcd = {
          heartbeatIntervalMs = 250;
          electionTimeoutMs = 2500;
        };
      });
    in [e.ETCD_HEARTBEAT_INTERVAL e.ETCD_ELECTION_TIMEOUT e.ETCD_DATA_DIR e.ETCD_PRE_VOTE];
    expected = ["250" "2500" "/srv/state/etcd" "true"];
  };
  testClusterTokenIsTheDeploymentName = {
    expr = (env "web1").ETCD_INITIAL_CLUSTER_TOKEN;
    expected = shipped.name;
  };

  # The parity of NixOS and the lab: nixpkgs' formula over the options modules/etcd.nix
  # sets gives the environment file's variables, one for one.
  testNixosUnitEnvironmentIsTheRenderedOne = {
    expr = map (host: nixpkgsEnvironment (etcd.serviceOptions (args host {}))) hosts;
    expected = map env hosts;
  };
  testEnvironmentFileHoldsTheEnvironment = {
    expr = map (host: fileEnvironment (file host)) hosts;
    expected = map env hosts;
  };
  testTypedOptionsAreTyped = {
    expr = let
      o = etcd.serviceOptions (args "lb" {});
    in [o.clientCertAuth o.peerClientCertAuth o.initialCluster o.listenClientUrls (o.extraConf ? NAME)];
    expected = [true true ["lb=https://10.42.0.10:2380" "web1=https://10.42.0.11:2380" "web2=https://10.42.0.12:2380"] ["https://10.42.0.10:2379"] false];
  };

  testRefusesAnElectionTimeoutBelowFiveHeartbeats = {
    expr = withSettings {
      heartbeatIntervalMs = 200;
      electionTimeoutMs = 500;
    };
    expected = false;
  };
  testRefusesARetentionGoCannotParse = {
    expr = map (retention: withSettings {autoCompactionRetention = retention;}) ["1d" "" 1 "30m"];
    expected = [false false false true];
  };
  testRefusesATopologyWithoutEtcd = {
    expr = evaluates (etcd.environment {
      topology = shipped // {services = removeAttrs shipped.services ["etcdPeer"];};
      settings = {};
      host = "web1";
    });
    expected = false;
  };
}
