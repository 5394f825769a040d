# checks/harness/eval.nix: one host of hosts/topology.json through nixpkgs' module system,
# as the flake builds it (hosts/default.nix: its modules and hardware), against the
# declarations of ./nixpkgs-options.nix, what nixpkgs itself sets on the units rampart
# extends (./nixpkgs-units.nix) and the fake packages of ./stub-pkgs.nix.
#
# Type: { lib; host :: string; modules ? [ module ]; } -> evalModules result
{
  # nixpkgs' library.
  lib,
  # A host of hosts/topology.json.
  host,
  # More modules, e.g. a negative case's wrong definition.
  modules ? [],
}: let
  pkgs = import ./stub-pkgs.nix;
  hosts = import ../../hosts;
in
  lib.evalModules {
    modules =
      [
        ./nixpkgs-options.nix
        ./nixpkgs-units.nix
        (hosts.host host)
        (hosts.hardware host)
        {_module.args.pkgs = pkgs;}
        # As the flake's nixosModules do with its own packages.
        {
          rampart.app.package = pkgs.rampart-app;
          rampart.monitoring.reach.package = pkgs.reach;
        }
      ]
      ++ modules;
  }
