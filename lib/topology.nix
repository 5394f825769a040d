# lib/topology.nix: read, validate and query hosts/topology.json.
#
# docs/topology.md is the contract: every validation message is specified there word for
# word, and the Rust side (tools/crates/topology) prints the same ones for the same input
# (tests/topologies/bad/ holds one fixture per message) and draws the same conclusions from
# the policy. Builtins only: this is evaluated without nixpkgs, by the tests and by
# `nix eval .#lib` on a machine with no binary cache.
#
# The parts, in lib/topology/ (each mirrors a file of the Rust side):
# - schema.nix    fields and types (the structural pass), role names, selector forms
# - net.nix       IPv4 addresses and CIDRs
# - validate.nix  `validate`: the structural pass, then the semantic pass
# - query.nix     hosts by name or role, internal DNS names, service ports
# - policy.nix    which hosts a rule selects, its sources, what each host must accept
#
# The queries assume a topology that passed `validate`: read it with `fromFile`.
let
  inherit (builtins) concatStringsSep fromJSON readFile;
  inherit (import ./topology/validate.nix) validate;

  /*
  Read a topology file, validate it, and return it unchanged; throw listing every problem.

  # Inputs

  `path`
  : a JSON file, normally `../hosts/topology.json`

  # Type

  ```
  fromFile :: path -> topology
  ```

  # Examples

  ```nix
  (fromFile ../hosts/topology.json).name
  => "rampart"
  ```
  */
  fromFile = path: let
    topo = fromJSON (readFile path);
    problems = validate topo;
  in
    if problems == []
    then topo
    else
      throw ''
        rampart.lib.topology: ${toString path} is not a valid topology:
          - ${concatStringsSep "\n  - " problems}'';
in {
  inherit validate fromFile;
  inherit (import ./topology/schema.nix) roles;
  inherit (import ./topology/query.nix) hasRole hostsWithRole hostByName fqdn servicePort;
  inherit (import ./topology/policy.nix) selectHosts sourcesOf inboundRules;
}
