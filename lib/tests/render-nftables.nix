# lib/tests/render-nftables.nix: every policy rule appears in exactly the right hosts'
# tables, with the right sources; the table's fixed parts (policies, state, loopback, ICMP).
#
# The expectations come from lib/topology.nix (`inboundRules`, `selectHosts`), not from the
# renderer, for the shipped and the four-web topology.
let
  inherit (builtins) attrNames concatStringsSep elemAt filter genList length listToAttrs map sort;
  support = import ./support/render.nix;
  inherit (support) topology shipped fourWeb grep capture evaluates;
  nftables = support.lib.renderers.nftables;

  ruleset = topo: host:
    (nftables {
      topology = topo;
      settings = {};
      inherit host;
    })
    ."nftables/ruleset.nft";

  # The accept rules of the policy, as "tcp dport <port> [ip saddr { … }] accept", sorted.
  policyLines = text:
    sort builtins.lessThan (map (line: builtins.head (capture " *(tcp dport .* accept) comment \"policy[[][0-9]+[]] [A-Za-z0-9]+\"" line))
      (grep ".*comment \"policy[[][0-9]+[]].*" text));

  expectedLines = topo: host:
    sort builtins.lessThan (map (rule:
      if rule.sources.any
      then "tcp dport ${toString rule.port} accept"
      else "tcp dport ${toString rule.port} ip saddr { ${concatStringsSep ", " rule.sources.cidrs} } accept")
    (topology.inboundRules topo host));

  # For policy rule i, the hosts whose table carries it.
  hostsCarrying = topo: i:
    filter (host: grep ".*comment \"policy[[]${toString i}[]] .*" (ruleset topo host) != []) (map (h: h.name) topo.hosts);

  perHost = label: topo:
    listToAttrs (map (host: {
        name = "testRulesMatchInboundRules-${label}-${host.name}";
        value = {
          expr = policyLines (ruleset topo host.name);
          expected = expectedLines topo host.name;
        };
      })
      topo.hosts);

  perRule = label: topo:
    listToAttrs (genList (i: {
      name = "testPolicyRuleOnExactlyItsHosts-${label}-${toString i}";
      value = {
        expr = hostsCarrying topo i;
        expected = map (h: h.name) (topology.selectHosts topo (elemAt topo.policy i).to);
      };
    }) (length topo.policy));

  web1 = ruleset shipped "web1";
  tableOf = host:
    nftables.table {
      topology = shipped;
      settings = {};
      inherit host;
    };
in
  perHost "shipped" shipped
  // perHost "fourWeb" fourWeb
  // perRule "shipped" shipped
  // perRule "fourWeb" fourWeb
  // {
    testChainPolicies = {
      expr = grep " *type filter hook .*" web1;
      expected = [
        "    type filter hook input priority filter; policy drop;"
        "    type filter hook forward priority filter; policy drop;"
        "    type filter hook output priority filter; policy accept;"
      ];
    };
    testStateAndLoopbackBeforePolicy = {
      expr = map (line: builtins.head (capture " *(.*) comment .*" line)) (grep " *(ct state|iifname).*" web1);
      expected = ["ct state established,related accept" "ct state invalid drop" "iifname \"lo\" accept"];
    };
    testIcmpEchoIsRateLimited = {
      expr = map (line: capture ".*(limit rate [0-9]+/second).*" line != null) (grep ".*echo-request.*" web1);
      expected = [true true];
    };
    testNoRejectAnywhere = {
      # Comments aside: "drop, not reject" is said there.
      expr = grep " *[^ #].*reject.*" web1;
      expected = [];
    };
    testWebHostClosedToOutside = {
      # Nothing on a web host accepts any source: every policy rule there is restricted.
      expr = grep "tcp dport [0-9]+ accept .*" web1;
      expected = [];
    };
    testLoadBalancerOpenToInternet = {
      expr = map (line: builtins.head (capture " *(tcp dport [0-9]+ accept) .*" line)) (grep " *tcp dport [0-9]+ accept .*" (ruleset shipped "lb"));
      expected = ["tcp dport 80 accept" "tcp dport 443 accept"];
    };
    testTableForNixos = {
      expr = let
        t = tableOf "web2";
      in {
        inherit (t) family name;
        wrapped = grep "table .*" t.content;
      };
      expected = {
        family = "inet";
        name = "rampart";
        wrapped = [];
      };
    };
    testRulesetIsTableAroundContent = {
      # The file ends with the NixOS table body inside `table inet rampart { }`, indented.
      expr = let
        tail = "table inet rampart {\n" + support.util.indent "  " (tableOf "lb").content + "}\n";
        text = ruleset shipped "lb";
        length = builtins.stringLength;
      in
        builtins.substring (length text - length tail) (length tail) text == tail;
      expected = true;
    };
    testUnmatchedSourceOpensNothing = {
      # A rule whose only source is a role no host has opens nothing, and says so.
      expr = let
        topo =
          shipped
          // {
            policy = [
              {
                service = "ssh";
                to = ["*"];
                from = ["role:web"];
              }
            ];
            hosts = filter (h: !(topology.hasRole h "web")) shipped.hosts;
          };
      in
        grep ".*(tcp dport|nothing is opened).*" (ruleset topo "lb");
      expected = ["    # (no host matches the sources: nothing is opened)"];
    };
    testUnknownHostThrows = {
      expr = evaluates (ruleset shipped "web9");
      expected = false;
    };
    testHostsByNameOrAttrset = {
      expr = ruleset shipped (builtins.elemAt shipped.hosts 1) == web1;
      expected = true;
    };
    testNamesOfAllHosts = {
      expr = attrNames support.renderFourWeb;
      expected = ["lb" "web1" "web2" "web3" "web4"];
    };
  }
