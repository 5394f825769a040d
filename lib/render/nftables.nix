/*
lib/render/nftables.nix: the host firewall, one `inet rampart` table per host.

Input policy drop: a port is open only when a rule of the topology's `policy` names this
host in `to`, and only to the sources in its `from`. Forwarding is dropped (no host routes);
output is accepted (replies ride the established state, and the daemons' own connections
are checked where they arrive).

# Inputs

`{ topology, settings, host }`
: a validated topology, the settings (unused: the firewall has no tunables), and the host
  (an element of `topology.hosts` or its name)

# Type

```
nftables :: { topology; settings; host; } -> { "nftables/ruleset.nft" = string; }
nftables.table :: { topology; settings; host; } -> { family = "inet"; name = "rampart"; content :: string; }
```

`table` is what NixOS's `networking.nftables.tables.<name>` takes: the table's body without
the `table inet rampart { … }` wrapper (the module adds it, and replaces it atomically).

# Examples

```nix
(nftables { inherit topology settings; host = "web1"; })."nftables/ruleset.nft"
=> "# nftables ruleset for web1 … table inet rampart { chain input { … tcp dport 8443 ip saddr { 10.42.0.10/32 } accept … } }"
```
*/
let
  inherit (builtins) concatStringsSep elem elemAt filter genList length sort;
  util = import ../util.nix;
  common = import ./common.nix;
  topologyLib = import ../topology.nix;
  inherit (util) concatLines indent;

  # Every policy rule that opens a port on `host`, with its index for the comments, sorted
  # like topology.inboundRules (port, then service), then by rule index.
  rulesFor = topology: host: let
    indexed = genList (i: {
      index = i;
      rule = elemAt topology.policy i;
    }) (length topology.policy);
    applies = entry: elem host (topologyLib.selectHosts topology entry.rule.to);
    entry = {
      index,
      rule,
    }: {
      inherit index;
      inherit (rule) service from;
      port = topologyLib.servicePort topology rule.service;
      sources = topologyLib.sourcesOf topology rule;
    };
    before = a: b:
      a.port
      < b.port
      || (a.port == b.port && (a.service < b.service || (a.service == b.service && a.index < b.index)));
  in
    sort before (map entry (filter applies indexed));

  # One accept rule per policy rule, as lines of the input chain. nft comments are limited
  # to 128 bytes, so the full description (sources as the topology writes them) goes in a
  # `#` line above.
  policyRule = rule: let
    label = "policy[${toString rule.index}] ${rule.service}";
    description = "  # ${label}: tcp/${toString rule.port} from ${concatStringsSep ", " rule.from}";
  in
    if rule.sources.any
    then [description "  tcp dport ${toString rule.port} accept comment \"${label}\""]
    else if rule.sources.cidrs == []
    then [description "  # (no host matches the sources: nothing is opened)"]
    else [
      description
      "  tcp dport ${toString rule.port} ip saddr { ${concatStringsSep ", " rule.sources.cidrs} } accept comment \"${label}\""
    ];

  table = {
    topology,
    host,
    ...
  }: let
    rules = rulesFor topology (common.resolveHost topology host);
  in {
    family = "inet";
    name = "rampart";
    content = concatLines ([
        "chain input {"
        "  type filter hook input priority filter; policy drop;"
        ""
        "  # Replies to connections this host opened or accepted; invalid packets belong to none."
        "  ct state established,related accept comment \"established/related\""
        "  ct state invalid drop comment \"invalid\""
        "  iifname \"lo\" accept comment \"loopback\""
        ""
        "  # ICMP essentials, rate-limited so they cannot be used to flood: ping, and errors that"
        "  # are not already related to a connection (path MTU discovery needs packet-too-big)."
        "  # IPv6 neighbour discovery is not limited, only accepted from the link (hop limit"
        "  # 255, RFC 4861): without it IPv6 stops working (RFC 4890, section 4.4.1)."
        "  ip protocol icmp icmp type { echo-request } limit rate 10/second burst 20 packets accept comment \"icmp echo, limited\""
        "  ip protocol icmp icmp type { destination-unreachable, time-exceeded, parameter-problem } limit rate 100/second accept comment \"icmp errors\""
        "  meta l4proto ipv6-icmp icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } ip6 hoplimit 255 accept comment \"icmpv6 neighbour discovery\""
        "  meta l4proto ipv6-icmp icmpv6 type { echo-request } limit rate 10/second burst 20 packets accept comment \"icmpv6 echo, limited\""
        "  meta l4proto ipv6-icmp icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } limit rate 100/second accept comment \"icmpv6 errors\""
        ""
        "  # hosts/topology.json policy, one rule each; everything else meets the drop policy"
        "  # (drop, not reject: outsiders learn nothing about closed ports)."
      ]
      ++ builtins.concatMap policyRule rules
      ++ [
        "}"
        ""
        "# No host routes for another: nothing is forwarded."
        "chain forward {"
        "  type filter hook forward priority filter; policy drop;"
        "}"
        ""
        "chain output {"
        "  type filter hook output priority filter; policy accept;"
        "}"
      ]);
  };

  render = args: let
    self = common.resolveHost args.topology args.host;
    t = table args;
  in {
    "nftables/ruleset.nft" =
      concatLines [
        "# nftables ruleset for ${self.name} (${self.address}), rendered by rampart from hosts/topology.json."
        "# Do not edit: change the topology and render again (lib/render/nftables.nix)."
        "#"
        "# Load with `nft -f`: the first two commands make loading atomic and repeatable (the old"
        "# table, if any, is replaced in the same transaction)."
        "table ${t.family} ${t.name} {}"
        "delete table ${t.family} ${t.name}"
        ""
        "table ${t.family} ${t.name} {"
      ]
      + indent "  " t.content
      + "}\n";
  };
in {
  __functor = _: render;
  inherit table;
}
