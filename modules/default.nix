# The rampart NixOS modules, one file per concern (STYLE.md section 6), options under
# `rampart.<concern>`: firewall, ssh, loadBalancer, web, database, monitoring, resources, app,
# etcd,
# plus the shared `rampart.topology`/`hostName`/`pkiDir`/`secretsDir` (topology.nix).
# roles.nix switches on the concerns this host's roles call for (lib/roles.nix), so
# importing this set on a host of the topology configures it; on a machine that is no host
# of the topology nothing is switched on. modules/lib.nix is not a module: the concerns
# share it.
{
  lib,
  options,
  ...
}: let
  inherit (import ../lib {}) roles;
in {
  imports = [
    ./topology.nix
    ./roles.nix
    ./firewall.nix
    ./load-balancer.nix
    ./web.nix
    ./database.nix
    ./monitoring.nix
    ./ssh.nix
    ./resources.nix
    ./app.nix
    ./etcd.nix
  ];

  # Every module is here, so every switch of lib/roles.nix must exist: a misspelt one
  # would otherwise be skipped by roles.nix and its concern never switched on.
  config.assertions =
    map (concern: {
      assertion = lib.hasAttrByPath concern.option options.rampart;
      message = "lib/roles.nix: ${roles.name concern} is not an option of the rampart modules (got ${builtins.toJSON concern.option}, expected the path of an `enable` option under `rampart`); fix the table";
    })
    roles.concerns;
}
