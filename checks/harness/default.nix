# checks/harness: evaluate a rampart host with nixpkgs' module system, without nixpkgs.
#
# `lib.evalModules` from nixpkgs' own library (never committed here: pass its directory)
# over the host as the flake builds it plus ./nixpkgs-options.nix, the declarations of
# exactly the nixpkgs options rampart sets, with their 26.05 types (./eval.nix). So a
# misspelt option, a value of the wrong type and a failing assertion all surface here.
#
#   nix-instantiate --eval --strict --json checks/harness \
#     --arg nixpkgsLib /path/to/nixpkgs.lib --argstr host lb [--arg modules '[ … ]']
#
# Result: { host; failedAssertions = [ message ]; warnings = [ message ];
#           evaluated :: bool (every defined option's value forced; false when an assertion
#           failed, as NixOS stops there too);
#           enabled = [ "services.haproxy" … ] (the nixpkgs services switched on) }
# scripts/module-harness.sh runs it for every host and for the negative cases.
{
  # The directory that holds nixpkgs' `lib/` (nix-community/nixpkgs.lib).
  nixpkgsLib,
  # A host of hosts/topology.json.
  host,
  # More modules, e.g. a negative case's wrong definition.
  modules ? [],
}: let
  lib = import (/. + "${toString nixpkgsLib}/lib");
  eval = import ./eval.nix {inherit lib host modules;};
  verdict = import ./verdict.nix {inherit lib;} eval;
  inherit (verdict) failedAssertions;
in {
  inherit host failedAssertions;
  inherit (verdict) evaluated;
  inherit (eval.config) warnings;
  enabled = lib.optionals (failedAssertions == []) (map (opt: lib.concatStringsSep "." (lib.init opt.loc)) (lib.filter (opt:
    lib.last opt.loc == "enable" && lib.head opt.loc != "rampart" && opt.value == true)
  verdict.defined));
}
