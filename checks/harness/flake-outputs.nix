# checks/harness/flake-outputs.nix: the rampart flake's outputs, without fetching nixpkgs.
#
# flake.nix's `outputs` is called with a `nixpkgs` that has only the library (the harness's)
# and the fake packages of ./stub-pkgs.nix, whose `testers.runNixOSTest` returns its
# arguments; the flake's own `packages` are fakes too. So the harness evaluates
# `nixosModules` and `checks` exactly as the flake defines them (package defaults
# included) while nothing is built or downloaded.
#
# Type: { lib } -> flake outputs
{lib}: let
  stub = import ./stub-pkgs.nix;
  outputs = (import ../../flake.nix).outputs {
    inherit self;
    nixpkgs = {
      inherit lib;
      legacyPackages.${stub.stdenv.hostPlatform.system} =
        stub
        // {
          inherit lib;
          testers.runNixOSTest = test: test;
        };
    };
  };
  self =
    outputs
    // {
      packages.${stub.stdenv.hostPlatform.system} = {inherit (stub) reach certtool rampart-app rampart-db rampart-lb;};
    };
in
  self
