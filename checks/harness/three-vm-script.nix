# checks/harness/three-vm-script.nix: the three-VM test's script, generated without
# nixpkgs, so a mistake in checks/three-vm.nix shows here and not only on a KVM machine.
#
# The flake's `checks.x86_64-linux.three-vm` (./flake-outputs.nix: runNixOSTest returns
# its arguments) gets as `nodes` the hosts evaluated by ./eval.nix, so the ports, units
# and settings its script reads are the modules' real values. The result is the Python
# script.
#
#   nix-instantiate --eval --strict checks/harness/three-vm-script.nix --arg nixpkgsLib DIR
{nixpkgsLib}: let
  lib = import (/. + "${toString nixpkgsLib}/lib");
  flake = import ./flake-outputs.nix {inherit lib;};
  test = flake.checks.x86_64-linux.three-vm;
  nodes = lib.genAttrs (map (h: h.name) flake.lib.shippedTopology.hosts) (host: (import ./eval.nix {inherit lib host;}).config);
in
  test.testScript {inherit nodes;}
