# lib/tests/support/policy-verdicts.nix: who may reach what, as the Nix side's policy says.
# For every host, every service some rule opens there (inboundRules, what the nftables
# renderer is given) and, for each vantage, whether traffic from it is accepted: "internet"
# (an address that is none of ours) by a rule open to the internet, an address by a rule
# open to the internet or to a network holding it.
# tools/crates/topology/tests/policy_parity.rs computes the same table from the Rust model
# and compares.
#
# Type: verdicts :: topology -> [ string ] -> { <host> = { "<service>:<port>" = { <vantage> = bool; }; }; }
let
  inherit (builtins) any filter listToAttrs map;
  inherit (import ../../topology.nix) inboundRules;
  inherit (import ../../topology/net.nix) parseAddress parseCidr inCidr;

  admits = sources: vantage:
    sources.any
    || (vantage != "internet" && any (cidr: inCidr (parseCidr cidr) (parseAddress vantage)) sources.cidrs);

  attrsOf = names: f:
    listToAttrs (map (name: {
        inherit name;
        value = f name;
      })
      names);
in
  topo: vantages:
    attrsOf (map (host: host.name) topo.hosts) (hostName: let
      rules = inboundRules topo hostName;
      # Several rules may open one service on a host: each admits its own sources.
      rulesFor = key: filter (rule: "${rule.service}:${toString rule.port}" == key) rules;
    in
      attrsOf (map (rule: "${rule.service}:${toString rule.port}") rules) (key:
        attrsOf vantages (vantage: any (rule: admits rule.sources vantage) (rulesFor key))))
