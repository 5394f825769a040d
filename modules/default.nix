# The rampart NixOS modules, one file per concern (STYLE.md section 6), options under
# `rampart.<concern>`: firewall, loadBalancer, web, database, monitoring, resources, app, etcd,
# plus the shared `rampart.topology`/`hostName`/`pkiDir`/`secretsDir` (topology.nix).
# Every concern is off until a host file enables it, so importing this set changes nothing
# by itself. modules/lib.nix is not a module: the concerns share it.
{
  imports = [
    ./topology.nix
    ./firewall.nix
    ./load-balancer.nix
    ./web.nix
    ./database.nix
    ./monitoring.nix
    ./resources.nix
    ./app.nix
    ./etcd.nix
  ];
}
