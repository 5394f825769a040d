# lib/render/probes.nix: what the monitoring host probes with the blackbox exporter, as
# data for lib/render/blackbox.nix (the exporter's modules) and lib/render/prometheus.nix
# (the scrape job that asks for each probe).
#
# Two kinds of probe, each a blackbox module of the same name:
#   public   the load balancer's public HTTPS endpoint, as a user's browser asks for it: the
#            first public name (SNI and Host), verified against the rampart CA, no redirect;
#            `host` = the load balancer
#   backend  each web host's nginx on `backendHttps`, as HAProxy reaches it: mutual TLS with
#            the load balancer's `backend-client` certificate, verified by address; only
#            when the monitoring host is a load balancer (it holds that certificate);
#            `host` = the web host
#
# Type: { topology } -> { monitoring :: host; probes :: [ { probe; module; host; target; } ]; }
{topology}: let
  topologyLib = import ../topology.nix;
  inherit (topologyLib) hostsWithRole hasRole servicePort;
  monitoring = builtins.head (hostsWithRole topology "monitoring");
  url = host: service: "https://${host.address}:${toString (servicePort topology service)}/";
in {
  inherit monitoring;
  probes =
    map (lb: {
      probe = "public";
      module = "public";
      host = lb.name;
      target = url lb "https";
    }) (hostsWithRole topology "loadBalancer")
    ++ (
      if hasRole monitoring "loadBalancer"
      then
        map (web: {
          probe = "backend";
          module = "backend";
          host = web.name;
          target = url web "backendHttps";
        }) (hostsWithRole topology "web")
      else []
    );
}
