# lib/: the pure half of rampart. Everything here is plain Nix on builtins only (no nixpkgs),
# so it evaluates offline and without a binary cache: `nix eval .#lib…`, the tests in
# lib/tests, and the Rust tools all read the infrastructure through it.
#
# - topology: validation (docs/topology.md) and queries over hosts/topology.json
# - shippedTopology: hosts/topology.json itself, validated (evaluation throws if it is not)
#
# A function with defaulted arguments, so later outputs (renderers taking a topology) can be
# added here without changing any caller: `import ./lib { }`.
{}: let
  topology = import ./topology.nix;
in {
  inherit topology;
  shippedTopology = topology.fromFile ../hosts/topology.json;
}
