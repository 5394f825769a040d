# modules/firewall.nix: the host firewall (rampart.firewall).
#
# One nftables table per host, rendered from the topology's policy by lib/render/nftables.nix:
# input drops by default, and a port opens only to the sources a policy rule names. The
# same text runs in the lab, so what the lab proved is what NixOS loads.
{
  config,
  lib,
  ...
}: let
  cfg = config.rampart.firewall;
  helpers = import ./lib.nix {inherit config lib;};
  table = helpers.render helpers.renderers.nftables.table {};
in {
  imports = [./topology.nix];

  options.rampart.firewall = {
    enable = lib.mkEnableOption "the rampart firewall: a default-deny nftables table generated from the topology's policy";
  };

  config = lib.mkIf cfg.enable {
    networking.nftables.enable = true;
    # The rampart table is the whole firewall. NixOS's own firewall would add a second
    # default-drop input chain (table inet nixos-fw) that every allowed packet must also
    # pass, so a port the topology opens would stay closed there.
    networking.firewall.enable = false;

    networking.nftables.tables.${table.name} = {
      inherit (table) family content;
    };
  };
}
