# lib/topology/policy.nix: what the reachability policy means. Which hosts a rule's
# selectors name, where its traffic may come from, and what each host must accept (the
# nftables renderer's input). The Rust counterpart is tools/crates/topology/src/policy.rs;
# tools/crates/topology/tests/policy_parity.rs checks that both draw the same conclusions.
let
  inherit (builtins) any concatMap elem filter sort;
  inherit (import ../util.nix) unique;
  inherit (import ./schema.nix) isCidrSelector roleOf;
  inherit (import ./query.nix) hasRole hostByName servicePort;
in rec {
  /*
  The hosts a list of policy selectors names: host names, `role:<role>` and `*`. Source-only
  selectors (`internet`, `admin`, CIDRs) name no host and are ignored. Topology order, each
  host once.

  # Inputs

  `topo`
  : a validated topology

  `selectors`
  : a policy rule's `to` or `from`

  # Type

  ```
  selectHosts :: topology -> [ string ] -> [ host ]
  ```

  # Examples

  ```nix
  map (h: h.name) (selectHosts topo [ "role:databaseReplica" "web1" "role:web" ])
  => [ "web1" "web2" ]
  ```
  */
  selectHosts = topo: selectors:
    filter (
      host:
        any (
          sel:
            sel
            == "*"
            || sel == host.name
            || (roleOf sel != null && hasRole host (roleOf sel))
        )
        selectors
    )
    topo.hosts;

  /*
  Where a policy rule's traffic may come from: `any` when `from` has `internet`, else the
  source networks, each once, in selector order (`admin` expands to adminNetworks, a host
  to `<address>/32`, a CIDR stays as written).

  # Inputs

  `topo`
  : a validated topology

  `rule`
  : an element of `topo.policy` (only `from` is read)

  # Type

  ```
  sourcesOf :: topology -> { from :: [ string ]; ... } -> { any :: bool; cidrs :: [ string ]; }
  ```

  # Examples

  ```nix
  sourcesOf topo { service = "prometheus"; to = [ "role:monitoring" ]; from = [ "role:monitoring" "admin" ]; }
  => { any = false; cidrs = [ "10.42.0.10/32" "10.42.0.64/28" ]; }
  ```
  */
  sourcesOf = topo: rule: {
    any = elem "internet" rule.from;
    cidrs = unique (concatMap (
        sel:
          if sel == "internet"
          then []
          else if sel == "admin"
          then topo.adminNetworks
          else if isCidrSelector sel
          then [sel]
          else map (host: "${host.address}/32") (selectHosts topo [sel])
      )
      rule.from);
  };

  /*
  What a host must accept: one entry per policy rule whose `to` selects it, sorted by port
  then service. Ports of a host that no entry names are dropped (docs/topology.md).

  # Inputs

  `topo`
  : a validated topology

  `hostName`
  : the name of one of `topo.hosts`; throws if there is none

  # Type

  ```
  inboundRules :: topology -> string -> [ { service :: string; port :: int; sources :: { any :: bool; cidrs :: [ string ]; }; } ]
  ```

  # Examples

  ```nix
  map (r: r.port) (inboundRules topo "web2")
  => [ 22 3306 8443 9100 9104 9113 ]
  ```
  */
  inboundRules = topo: hostName: let
    host = hostByName topo hostName;
    rules = filter (rule: elem host (selectHosts topo rule.to)) topo.policy;
    entry = rule: {
      inherit (rule) service;
      port = servicePort topo rule.service;
      sources = sourcesOf topo rule;
    };
  in
    sort (a: b: a.port < b.port || (a.port == b.port && a.service < b.service)) (map entry rules);
}
