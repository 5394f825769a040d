# hosts/default.nix: the NixOS configuration of one host of hosts/topology.json, in two
# parts, both functions of the host's name:
#
#   host "web1"      the rampart modules (which switch on what web1's roles call for,
#                    lib/roles.nix), hosts/common.nix, networking.hostName = "web1", and
#                    hosts/web1.nix when it exists (what only that host needs)
#   hardware "web1"  hosts/hardware/web1.nix (from `nixos-generate-config
#                    --show-hardware-config`) when it exists, else
#                    hosts/hardware-placeholder.nix, which evaluates but warns that it
#                    describes no real machine
#
# flake.nix (nixosConfigurations) and the module harness (checks/harness) use both, so what
# the harness checks is what `nixos-rebuild` deploys; the three-VM test uses `host` with
# its virtual machines' hardware. Names only ever come from the topology: nothing here
# names a host itself.
let
  ifExists = path: builtins.filter builtins.pathExists [path];
in {
  host = name: {
    imports =
      [
        ../modules
        ./common.nix
      ]
      ++ ifExists (./. + "/${name}.nix");

    networking.hostName = name;
  };

  hardware = name: let
    generated = ./hardware + "/${name}.nix";
  in
    if builtins.pathExists generated
    then generated
    else ./hardware-placeholder.nix;
}
