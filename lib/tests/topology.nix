# lib/tests/topology.nix: validation against the shared fixtures, and the query helpers.
#
# Every tests/topologies/bad/<case>.patch.json, applied to the base topology, must give
# exactly the one message in <case>.expected (the Rust side checks the same files); every
# good topology and hosts/topology.json must give none. Fixtures are found with readDir
# (support/topology-fixtures.nix), so adding a fixture adds a test.
let
  inherit (builtins) attrNames concatMap filter fromJSON listToAttrs map readFile tryEval deepSeq;
  topology = import ../topology.nix;
  inherit (topology) validate;
  fixtures = import ./support/topology-fixtures.nix;
  verdicts = import ./support/policy-verdicts.nix;

  readJSON = path: fromJSON (readFile path);
  casesOf = prefix: set: f:
    listToAttrs (map (name: {
      name = "${prefix}-${name}";
      value = f set.${name};
    }) (attrNames set));

  badCases = casesOf "testBad" fixtures.bad (case: {
    expr = validate case.topology;
    expected = [case.expected];
  });
  goodCases = casesOf "testGood" fixtures.good (topo: {
    expr = validate topo;
    expected = [];
  });

  shipped = readJSON ../../hosts/topology.json;
  # "<host> <service>:<port>" for everything `vantage` may reach, sorted.
  allowedFrom = topo: vantage: let
    table = verdicts topo [vantage];
  in
    concatMap (host: map (service: "${host} ${service}") (filter (service: table.${host}.${service}.${vantage}) (attrNames table.${host}))) (attrNames table);
  fourWeb = fixtures.good.four-web;
  names = map (host: host.name);
  # Whether evaluating `value` completely succeeds (throw/assert are caught).
  evaluates = value: (tryEval (deepSeq value true)).success;

  monitoringOnly = ["10.42.0.10/32"];
  adminNet = ["10.42.0.64/28"];
  # Every host is an etcd member; client and peer ports are open between members only.
  etcdMembers = ["10.42.0.10/32" "10.42.0.11/32" "10.42.0.12/32"];
  rule = service: port: any: cidrs: {
    inherit service port;
    sources = {inherit any cidrs;};
  };
in
  badCases
  // goodCases
  // {
    testShippedIsValid = {
      expr = validate shipped;
      expected = [];
    };

    # ------------------------------------------------------------ validate never throws

    testNotAnObject = {
      expr = map validate [[] "topology" null 1 1.5 true];
      expected = map (type: ["topology: expected object, got ${type}"]) ["array" "string" "null" "integer" "number" "boolean"];
    };
    testEmptyObject = {
      expr = validate {};
      expected = map (field: "topology: missing field \"${field}\"") ["version" "name" "domain" "network" "adminNetworks" "publicNames" "hosts" "services" "policy" "monitoring"];
    };
    testStructuralOrder = {
      # Nested problems in field order, the object's own unknown fields (sorted) last.
      expr = validate (shipped
        // {
          zzz = 1;
          aaa = 2;
          version = "1";
          hosts = ["lb" {name = 1;}];
          services = {http = {port = 80.5;};};
          monitoring = {qpsThreshold = 1.5;};
        });
      expected = [
        "version: expected integer, got string"
        "hosts[0]: expected object, got string"
        "hosts[1].name: expected string, got integer"
        "hosts[1]: missing field \"address\""
        "hosts[1]: missing field \"roles\""
        "services.http.port: expected integer, got number"
        "monitoring: missing field \"alertReceiver\""
        "topology: unknown field \"aaa\" (expected one of: adminNetworks, domain, hosts, lab, monitoring, name, network, policy, publicNames, services, version)"
        "topology: unknown field \"zzz\" (expected one of: adminNetworks, domain, hosts, lab, monitoring, name, network, policy, publicNames, services, version)"
      ];
    };
    testWeirdValuesNeverThrow = {
      expr = map (topo: evaluates (validate topo)) [
        (shipped // {hosts = [];})
        (shipped // {services = {};})
        (shipped
          // {
            policy = [
              {
                service = "";
                to = ["role:" "" "0" "*"];
                from = ["1.2.3.4/0" "999.1.1.1/8" "internet"];
              }
            ];
          })
        (shipped // {network.cidr = "";})
        (shipped // {domain = "";})
        (shipped
          // {
            hosts = [
              {
                name = "";
                address = "";
                roles = [""];
              }
            ];
          })
        (shipped // {lab = {outside = "x";};})
        (shipped // {lab = null;})
      ];
      expected = [true true true true true true true true];
    };
    testFloatThreshold = {
      expr = map (v: validate (shipped // {monitoring = shipped.monitoring // {qpsThreshold = v;};})) [0.5 (-0.5)];
      expected = [[] ["monitoring.qpsThreshold: -0.5 is not a positive number"]];
    };
    testPolicyCidrHostBits = {
      expr = validate (shipped // {policy = [(builtins.elemAt shipped.policy 4 // {from = ["10.42.0.65/28" "0.0.0.0/0"];})];});
      expected = [''policy[0].from: "10.42.0.65/28" has host bits set (expected "10.42.0.64/28")''];
    };
    testLabOrderAndAdminSameAsOutside = {
      expr = validate (shipped
        // {
          lab = {
            outside = "10.42.0.66";
            admin = "10.42.0.66";
          };
        });
      expected = [
        "lab.outside: 10.42.0.66 must not be in adminNetworks"
        "lab.admin: duplicate address \"10.42.0.66\" (also lab.outside)"
      ];
    };
    testRoleCountsWaitForSoundRoles = {
      # A misspelt role is reported once, not again as a missing load balancer.
      expr = validate (shipped // {hosts = [(builtins.head shipped.hosts // {roles = ["loadbalancer" "monitoring"];})] ++ builtins.tail shipped.hosts;});
      expected = [''hosts[0].roles[0]: unknown role "loadbalancer" (expected one of: databasePrimary, databaseReplica, loadBalancer, monitoring, web)''];
    };
    testEmptyTo = {
      expr = validate (shipped
        // {
          policy = [
            {
              service = "ssh";
              to = [];
              from = ["admin"];
            }
          ];
        });
      expected = ["policy[0].to: must name at least one target"];
    };

    # ------------------------------------------------------------ fromFile

    testFromFileShipped = {
      expr = (topology.fromFile ../../hosts/topology.json).name;
      expected = "rampart";
    };
    testFromFileBadThrows = {
      # A JSON Patch is valid JSON but not a topology.
      expr = evaluates (topology.fromFile ../../tests/topologies/bad/bad-version.patch.json);
      expected = false;
    };

    # ------------------------------------------------------------ query helpers

    testHostsWithRole = {
      expr = map (role: names (topology.hostsWithRole shipped role)) ["web" "monitoring" "databaseReplica"];
      expected = [["web1" "web2"] ["lb"] ["web2"]];
    };
    testFourWebHosts = {
      expr = names (topology.hostsWithRole fourWeb "web");
      expected = ["web1" "web2" "web3" "web4"];
    };
    testHasRole = {
      expr = map (host: topology.hasRole host "web") shipped.hosts;
      expected = [false true true];
    };
    testHostByName = {
      expr = (topology.hostByName shipped "web2").address;
      expected = "10.42.0.12";
    };
    testHostByNameUnknownThrows = {
      expr = evaluates (topology.hostByName shipped "web3");
      expected = false;
    };
    testFqdn = {
      expr = [(topology.fqdn shipped "web1") (topology.fqdn shipped (builtins.head shipped.hosts))];
      expected = ["web1.rampart.internal" "lb.rampart.internal"];
    };
    testSelectHostsStar = {
      expr = names (topology.selectHosts shipped ["*"]);
      expected = ["lb" "web1" "web2"];
    };
    testSelectHostsRolesDedupedInTopologyOrder = {
      expr = names (topology.selectHosts shipped ["role:databaseReplica" "web1" "role:web" "admin" "10.0.0.0/8"]);
      expected = ["web1" "web2"];
    };
    testSelectHostsUnmatchedRole = {
      # A role no host has selects nothing (and is valid, docs/topology.md).
      expr = topology.selectHosts (shipped // {hosts = [(builtins.head shipped.hosts)];}) ["role:web"];
      expected = [];
    };
    testSourcesOfInternet = {
      expr = topology.sourcesOf shipped {from = ["internet"];};
      expected = {
        any = true;
        cidrs = [];
      };
    };
    testSourcesOfAdminHostsAndCidr = {
      expr = topology.sourcesOf shipped {from = ["role:monitoring" "admin" "10.9.0.0/16" "lb" "role:web"];};
      expected = {
        any = false;
        cidrs = ["10.42.0.10/32" "10.42.0.64/28" "10.9.0.0/16" "10.42.0.11/32" "10.42.0.12/32"];
      };
    };
    testServicePort = {
      expr = [(topology.servicePort shipped "https") (evaluates (topology.servicePort shipped "gopher"))];
      expected = [443 false];
    };
    testInboundRulesLb = {
      expr = topology.inboundRules shipped "lb";
      expected = [
        (rule "ssh" 22 false adminNet)
        (rule "http" 80 true [])
        (rule "https" 443 true [])
        (rule "etcdClient" 2379 false etcdMembers)
        (rule "etcdPeer" 2380 false etcdMembers)
        (rule "etcdMetrics" 2381 false monitoringOnly)
        (rule "haproxyExporter" 8405 false monitoringOnly)
        (rule "prometheus" 9090 false (monitoringOnly ++ adminNet))
        (rule "alertmanager" 9093 false (monitoringOnly ++ adminNet))
        (rule "alertWebhook" 9099 false monitoringOnly)
        (rule "nodeExporter" 9100 false monitoringOnly)
      ];
    };
    testInboundRulesWeb1 = {
      expr = topology.inboundRules shipped "web1";
      expected = [
        (rule "ssh" 22 false adminNet)
        (rule "etcdClient" 2379 false etcdMembers)
        (rule "etcdPeer" 2380 false etcdMembers)
        (rule "etcdMetrics" 2381 false monitoringOnly)
        (rule "mysql" 3306 false ["10.42.0.11/32" "10.42.0.12/32"])
        (rule "backendHttps" 8443 false ["10.42.0.10/32"])
        (rule "nodeExporter" 9100 false monitoringOnly)
        (rule "mysqldExporter" 9104 false monitoringOnly)
        (rule "nginxExporter" 9113 false monitoringOnly)
      ];
    };
    testInboundRulesWeb2SameAsWeb1 = {
      expr = topology.inboundRules shipped "web2";
      expected = topology.inboundRules shipped "web1";
    };
    testInboundRulesFourWebDatabaseOnlyOnDatabaseHosts = {
      expr = map (name: map (r: r.service) (topology.inboundRules fourWeb name)) ["web3" "web4"];
      expected = map (_: ["ssh" "etcdClient" "etcdPeer" "etcdMetrics" "backendHttps" "nodeExporter" "nginxExporter"]) [1 2];
    };

    # ------------------------------------------------------------ policy verdicts
    # support/policy-verdicts.nix, which the Rust policy parity test compares with the Rust
    # model on every fixture; these are the Rust model's own unit-test expectations.

    testVerdictsInternetReachesOnlyTheLoadBalancerWebPorts = {
      expr = allowedFrom shipped "internet";
      expected = ["lb http:80" "lb https:443"];
    };
    testVerdictsAdminReachesSshEverywhereAndTheMonitoringUis = {
      expr = allowedFrom shipped "10.42.0.66";
      expected = ["lb alertmanager:9093" "lb http:80" "lb https:443" "lb prometheus:9090" "lb ssh:22" "web1 ssh:22" "web2 ssh:22"];
    };
    testVerdictsReplicaReachesThePrimaryDatabase = {
      # web2 asking about itself is in the table too (the Rust side's `allows` answers it).
      expr = allowedFrom shipped "10.42.0.12";
      expected = ["lb etcdClient:2379" "lb etcdPeer:2380" "lb http:80" "lb https:443" "web1 etcdClient:2379" "web1 etcdPeer:2380" "web1 mysql:3306" "web2 etcdClient:2379" "web2 etcdPeer:2380" "web2 mysql:3306"];
    };
  }
