# hosts/common.nix: what every rampart host runs, whatever its roles.
#
# The firewall, the monitoring agents (node exporter, the exporters of the concerns the host
# runs, the `reach` textfile timer), the resource limits and the etcd member belong
# everywhere; the host files add only their own concerns.
{lib, ...}: {
  rampart = {
    firewall.enable = true;
    monitoring.enable = true;
    resources.enable = true;
    # Every host is an etcd member (the load balancer as the tie-breaker).
    etcd.enable = true;
  };

  # Administrators deploy over SSH (the topology opens port 22 to adminNetworks only).
  # Keys, not passwords: the hosts face the internet.
  services.openssh = {
    enable = true;
    settings = {
      PasswordAuthentication = false;
      KbdInteractiveAuthentication = false;
      PermitRootLogin = lib.mkDefault "prohibit-password";
    };
  };

  # The release whose defaults the state on disk (MariaDB's data directory, Prometheus'
  # TSDB) was created with; see the NixOS manual before changing it.
  system.stateVersion = "25.05";
}
