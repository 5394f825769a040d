# hosts/hardware-placeholder.nix: stands in for a host's hardware configuration.
#
# Replace it, per host, before deploying: on each machine run
#   nixos-generate-config --show-hardware-config > hosts/hardware/<name>.nix
# (<name> as in hosts/topology.json), add the boot loader your machine uses, name the
# interface on the topology's network (rampart.interface = "ens3"; it then gets the
# topology's address), and `git add` the file: hosts/default.nix uses it instead of this one.
#
# This file only lets the configuration evaluate (a root file system and a boot loader
# target are mandatory in NixOS); a system built from it would not boot your machine, so it
# says so on every build.
{config, ...}: {
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
  boot.loader.grub.devices = ["nodev"];

  warnings = [
    "${config.networking.hostName}: no hosts/hardware/${config.networking.hostName}.nix, so hosts/hardware-placeholder.nix describes this machine; generate the real one with nixos-generate-config (see that file)"
  ];
}
