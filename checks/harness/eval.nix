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
        # As nixosConfigurations do: the flake's module set, the host, its hardware.
        (import ./flake-outputs.nix {inherit lib;}).nixosModules.default
        (hosts.host host)
        (hosts.hardware host)
        {_module.args.pkgs = pkgs;}
      ]
      ++ modules;
  }
