# hosts/common.nix: what every rampart host runs, whatever its roles.
#
# The firewall, SSH for administrators (keys only, on the topology address, which the
# topology opens to adminNetworks only), the monitoring agents (node exporter, the exporters
# of the concerns the host runs, the `reach` textfile timer) and the resource limits belong
# everywhere; the host files add only their own concerns.
{
  rampart = {
    firewall.enable = true;
    ssh.enable = true;
    monitoring.enable = true;
    resources.enable = true;
  };

  # The release whose defaults the state on disk (MariaDB's data directory, Prometheus'
  # TSDB) was created with; see the NixOS manual before changing it.
  system.stateVersion = "25.05";
}
