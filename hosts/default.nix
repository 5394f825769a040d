# hosts/default.nix: the NixOS configuration of one host of hosts/topology.json.
#
#   import ./hosts "web1"  =>  a module: the rampart modules, hosts/web1.nix, the host's
#                              hardware configuration and networking.hostName = "web1"
#
# flake.nix (nixosConfigurations) and the module harness (checks/harness) both build hosts
# through this function, so what the harness checks is what `nixos-rebuild` deploys. The
# name is only ever a topology host name: nothing here names a host itself.
#
# Hardware is the user's: hosts/hardware/<name>.nix (from `nixos-generate-config
# --show-hardware-config`) when it exists, else hosts/hardware-placeholder.nix, which
# evaluates but warns that it describes no real machine.
name: let
  hardware = ./hardware + "/${name}.nix";
in {
  imports = [
    ../modules
    (./. + "/${name}.nix")
    (
      if builtins.pathExists hardware
      then hardware
      else ./hardware-placeholder.nix
    )
  ];

  networking.hostName = name;
}
