# modules/roles.nix: the concerns a host's roles call for, switched on.
#
# lib/roles.nix says which `rampart.*` switch each role of hosts/topology.json calls for
# (and which every host has); this module turns on, with mkDefault, those of this host
# (`rampart.hostName`). So a host is configured by its name alone, and a host may still
# switch a concern off (`rampart.app.enable = false;` to serve its own application).
#
# Only the concerns whose module is imported are touched, so this module also works beside
# a subset of the rampart modules; modules/default.nix, which imports all of them, asserts
# that the table names no switch that does not exist.
{
  config,
  lib,
  options,
  ...
}: let
  helpers = import ./lib.nix {inherit config lib;};
  inherit (helpers.rampartLib) roles;

  declared = concern: lib.hasAttrByPath concern.option options.rampart;
  # No host (an invalid topology, an unknown name): nothing is switched on, and
  # modules/topology.nix's assertion says why.
  onThisHost = concern: helpers.host != null && roles.runs helpers.host concern;
in {
  imports = [./topology.nix];

  config.rampart =
    lib.mkMerge (map (concern: lib.setAttrByPath concern.option (lib.mkIf (onThisHost concern) (lib.mkDefault true)))
      (lib.filter declared roles.concerns));
}
