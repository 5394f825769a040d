# checks/harness/three-vm-script.nix: the three-VM test's script, generated without
# nixpkgs, so a mistake in checks/three-vm.nix shows here and not only on a KVM machine.
#
# checks/three-vm.nix gets a `pkgs` whose runNixOSTest returns its arguments, and its
# testScript gets as `nodes` the hosts evaluated by ./eval.nix: the ports, units and
# settings it reads are the modules' real values. The result is the Python script.
#
#   nix-instantiate --eval --strict checks/harness/three-vm-script.nix --arg nixpkgsLib DIR
{nixpkgsLib}: let
  lib = import (/. + "${toString nixpkgsLib}/lib");
  stub = import ./stub-pkgs.nix;
  rampartLib = import ../../lib {};
  system = "x86_64-linux";

  pkgs =
    stub
    // {
      inherit lib;
      stdenv.hostPlatform.system = system;
      testers.runNixOSTest = test: test;
    };
  self = {
    lib = rampartLib;
    nixosModules.default = {};
    packages.${system} = {inherit (stub) reach certtool rampart-app;};
  };

  test = import ../three-vm.nix {inherit pkgs self;};
  nodes = lib.genAttrs (map (h: h.name) rampartLib.shippedTopology.hosts) (host: (import ./eval.nix {inherit lib host;}).config);
in
  test.testScript {inherit nodes;}
