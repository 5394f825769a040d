# hosts/lb.nix: the host with roles loadBalancer and monitoring in hosts/topology.json.
# HAProxy in front of the web hosts; Prometheus and Alertmanager watching all of them.
{
  imports = [./common.nix];

  rampart = {
    loadBalancer.enable = true;
    monitoring.server.enable = true;
  };
}
