/*
lib/render/etcd.nix: every host's etcd member (the consensus store of docs/failover.md).

Every host of the topology is a member (`lb` is the tie-breaker: it holds no database).
Members talk TLS on both ports with client-certificate authentication: the client port
(`services.etcdClient`) with the host's `etcd-server` certificate, the peer port
(`services.etcdPeer`) with its `etcd-peer` certificate, both accepting only certificates
of the rampart CA (`<pkiDir>/ca.pem`). Metrics and `/health` are plain HTTP on their own
listener (`services.etcdMetrics`), which the firewall opens to the monitoring host only,
as for every exporter. The data directory is `<stateDir>/etcd`.

# Why environment variables

etcd reads every flag from an `ETCD_<FLAG>` variable too, and that is how nixpkgs'
`services.etcd` configures it: its typed options become `ETCD_*` variables of the unit,
`extraConf` adds any other. etcd's YAML config file would replace them all ("other command
line flags and environment variables will be ignored"), making those options dead. So the
rendering is the environment itself, in three forms from one table of flags:

- `etcd.serviceOptions`: the values for nixpkgs' `services.etcd` (lib/daemons.nix gives
  them to modules/etcd.nix);
- `etcd.environment`: the unit's environment exactly as nixpkgs writes it from those (its
  booleans are `1`, it always sets `ETCD_DISCOVERY`); lib/daemons.nix hands it to the lab
  (`labEnvironment`), which runs Debian's etcd with it and no argument. The tests apply
  nixpkgs' own formula to the options and get this environment back;
- `etcd/etcd.env`: the same as `NAME=value` lines, to read and to review (golden file).

# Timing

`settings.etcd.heartbeatIntervalMs` and `electionTimeoutMs` default to etcd's own
100/1000 ms, sized for one LAN (round trips well under a millisecond; etcd's tuning guide:
heartbeat near the round trip, election about ten heartbeats). The lab keeps them: its
members are network namespaces on one machine. Pre-vote is on, so a member that was cut
off does not depose a healthy leader when it returns. Lease TTLs of the failover agent must
stay well above the election timeout (etcd refuses TTLs below 1.5 × it).

# Inputs

`{ topology, settings, host }`
: a validated topology with the three etcd services, settings (lib/settings.nix; `etcd.*`,
  `pkiDir`, `stateDir`) and the host (an element of `topology.hosts` or its name)

# Type

```
etcd :: { topology; settings; host; } -> { "etcd/etcd.env" = string; }
etcd.environment :: { topology; settings; host; } -> { ETCD_<FLAG> = string; }
etcd.serviceOptions :: { topology; settings; host; } -> attrs (nixpkgs' services.etcd)
```

# Examples

```nix
(etcd.environment { inherit topology; settings = { }; host = "web1"; }).ETCD_INITIAL_CLUSTER
=> "lb=https://10.42.0.10:2380,web1=https://10.42.0.11:2380,web2=https://10.42.0.12:2380"
```
*/
let
  inherit (builtins) attrNames concatStringsSep filter listToAttrs map replaceStrings;
  util = import ../util.nix;
  common = import ./common.nix;
  topologyLib = import ../topology.nix;
  inherit (util) concatLines toUpper;

  services = {
    client = "etcdClient";
    peer = "etcdPeer";
    metrics = "etcdMetrics";
  };

  # The TLS 1.2 suites of common.tls.ciphers12 that Go names the same way in etcd 3.4 to
  # 3.6 (its ChaCha20 names changed between Go releases, so those are left out; TLS 1.3,
  # which Go always offers, is not configurable).
  cipherSuites = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
  ];

  problemsOf = topology: s: let
    e = s.etcd;
    name = key: "settings.etcd.${key}";
  in
    common.requireServices topology (builtins.attrValues services)
    ++ common.directories s
    ++ common.intAtLeast 10 (name "heartbeatIntervalMs") e.heartbeatIntervalMs
    ++ common.intAtLeast 1 (name "electionTimeoutMs") e.electionTimeoutMs
    ++ util.optional (builtins.isInt e.heartbeatIntervalMs && builtins.isInt e.electionTimeoutMs && e.electionTimeoutMs < 5 * e.heartbeatIntervalMs)
    "${name "electionTimeoutMs"} is ${toString e.electionTimeoutMs}; expected at least 5 × ${name "heartbeatIntervalMs"} (${toString (5 * e.heartbeatIntervalMs)}; etcd recommends 10 ×)"
    # A Go duration: etcd parses it with time.ParseDuration (no days).
    ++ util.optional (!(builtins.isString e.autoCompactionRetention && builtins.match "[1-9][0-9]*(s|m|h)" e.autoCompactionRetention != null))
    "${name "autoCompactionRetention"} is ${common.show e.autoCompactionRetention}; expected a duration in s, m or h such as \"1h\"";

  # Every flag of the member, by etcd's flag name; values as etcd reads them.
  flags = topology: s: self: let
    port = topologyLib.servicePort topology;
    url = scheme: host: service: "${scheme}://${host.address}:${toString (port service)}";
    pki = file: "${s.pkiDir}/${file}";
    # nixpkgs writes booleans with toString: "1" (and "" for false).
    on = "1";
  in {
    name = self.name;
    data-dir = "${s.stateDir}/etcd";
    discovery = "";
    listen-client-urls = url "https" self services.client;
    advertise-client-urls = url "https" self services.client;
    listen-peer-urls = url "https" self services.peer;
    initial-advertise-peer-urls = url "https" self services.peer;
    listen-metrics-urls = url "http" self services.metrics;
    initial-cluster = concatStringsSep "," (map (h: "${h.name}=${url "https" h services.peer}") topology.hosts);
    initial-cluster-state = "new";
    initial-cluster-token = topology.name;

    cert-file = pki "etcd-server.pem";
    key-file = pki "etcd-server.key";
    client-cert-auth = on;
    trusted-ca-file = pki "ca.pem";
    peer-cert-file = pki "etcd-peer.pem";
    peer-key-file = pki "etcd-peer.key";
    peer-client-cert-auth = on;
    peer-trusted-ca-file = pki "ca.pem";
    cipher-suites = concatStringsSep "," cipherSuites;

    heartbeat-interval = toString s.etcd.heartbeatIntervalMs;
    election-timeout = toString s.etcd.electionTimeoutMs;
    pre-vote = "true";
    auto-compaction-mode = "periodic";
    auto-compaction-retention = s.etcd.autoCompactionRetention;
    logger = "zap";
  };

  variable = flag: "ETCD_" + toUpper (replaceStrings ["-"] ["_"] flag);

  # The flags nixpkgs' services.etcd has a typed option for, by option name (the
  # others go to its extraConf). Source: nixos/modules/services/misc/etcd.nix.
  typedOptions = {
    name = "name";
    dataDir = "data-dir";
    discovery = "discovery";
    listenClientUrls = "listen-client-urls";
    advertiseClientUrls = "advertise-client-urls";
    listenPeerUrls = "listen-peer-urls";
    initialAdvertisePeerUrls = "initial-advertise-peer-urls";
    initialCluster = "initial-cluster";
    initialClusterState = "initial-cluster-state";
    initialClusterToken = "initial-cluster-token";
    certFile = "cert-file";
    keyFile = "key-file";
    clientCertAuth = "client-cert-auth";
    trustedCaFile = "trusted-ca-file";
    peerCertFile = "peer-cert-file";
    peerKeyFile = "peer-key-file";
    peerClientCertAuth = "peer-client-cert-auth";
    peerTrustedCaFile = "peer-trusted-ca-file";
  };
  # Its list-typed options (comma-joined into the variable) and boolean ones.
  listOptions = ["listenClientUrls" "advertiseClientUrls" "listenPeerUrls" "initialAdvertisePeerUrls" "initialCluster"];
  boolOptions = ["clientCertAuth" "peerClientCertAuth"];
  typedFlags = builtins.attrValues typedOptions;

  memberRenderer = files:
    common.renderer {
      component = "etcd";
      # Every host is a member.
      appliesTo = _: true;
      problems = problemsOf;
      inherit files;
    };

  environment = memberRenderer (topology: s: self: let
    f = flags topology s self;
  in
    listToAttrs (map (flag: {
      name = variable flag;
      value = f.${flag};
    }) (attrNames f)));

  serviceOptions = memberRenderer (topology: s: self: let
    f = flags topology s self;
    option = name: let
      value = f.${typedOptions.${name}};
    in
      if builtins.elem name listOptions
      then filter builtins.isString (builtins.split "," value)
      else if builtins.elem name boolOptions
      then value == "1"
      else value;
  in
    builtins.mapAttrs (name: _: option name) typedOptions
    // {
      extraConf = listToAttrs (map (flag: {
        name = builtins.substring 5 (-1) (variable flag);
        value = f.${flag};
      }) (filter (flag: !(builtins.elem flag typedFlags)) (attrNames f)));
    });

  render = args: let
    self = common.resolveHost args.topology args.host;
    env = environment args;
  in
    if env == {}
    then {}
    else {
      "etcd/etcd.env" =
        common.header {
          what = "etcd's environment (ETCD_<FLAG>=value, as nixpkgs' services.etcd sets it)";
          host = self;
          renderer = "etcd";
        }
        + concatLines (map (name: "${name}=${env.${name}}") (attrNames env));
    };
in {
  __functor = _: render;
  inherit environment serviceOptions services;
}
