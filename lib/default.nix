# lib/: the pure half of rampart. Everything here is plain Nix on builtins only (no nixpkgs),
# so it evaluates offline and without a binary cache: `nix eval .#lib…`, the tests in
# lib/tests, and the Rust tools all read the infrastructure through it.
#
# - topology: validation (docs/topology.md) and queries over hosts/topology.json
# - shippedTopology: hosts/topology.json itself, validated (evaluation throws if it is not)
# - settings: the renderers' default settings (lib/settings.nix)
# - render { topology, settings ? { } }: every host's files, `{ <host> = { <path> = text; }; }`
# - rendered: `render` for the shipped topology with the default settings
# - renderers: the per-daemon renderers (lib/render/<name>.nix) for the NixOS modules
# - roles: which rampart concern each role calls for (lib/roles.nix)
# - secrets: the runtime secrets each host needs, who reads each, what it holds
# - daemons: how each daemon starts (arguments, environment, main configuration), for the
#   NixOS modules and the lab alike
#
# A function with defaulted arguments, so later outputs can be added here without changing
# any caller: `import ./lib { }`.
{}: let
  topology = import ./topology.nix;
  shippedTopology = topology.fromFile ../hosts/topology.json;
  inherit (import ./render) render renderers;
in {
  inherit topology shippedTopology render renderers;
  settings = import ./settings.nix;
  roles = import ./roles.nix;
  secrets = import ./secrets.nix;
  daemons = import ./daemons.nix;
  rendered = render {topology = shippedTopology;};
}
