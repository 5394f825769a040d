# hosts/common.nix: what every rampart host runs besides the rampart concerns, which the
# host's roles switch on (lib/roles.nix; the firewall, SSH for administrators, monitoring
# agents, resource limits and the etcd member everywhere).
{lib, ...}: {
  # The release whose defaults the state on disk (MariaDB's data directory, Prometheus'
  # TSDB) was created with: the flake's pin for a new host. A host first installed under
  # an earlier release keeps that one (set it in hosts/hardware/<name>.nix); see the NixOS
  # manual before changing it.
  system.stateVersion = lib.mkDefault "26.05";
}
