# lib/render/daemon-settings.nix: one daemon's section of the settings, `settings.<name>`,
# merged over the defaults its renderer declares, with the problems every such section can
# have: not an attribute set, or a key the renderer does not know (a misspelt key would
# otherwise be ignored without a word).
#
# Type: string -> attrs -> settings -> { cfg :: attrs; problems :: [ string ]; }
#
# Example:
#   (import ./daemon-settings.nix "alertmanager" { groupWait = "10s"; } { alertmanager.groupWiat = "1s"; }).problems
#   => [ "settings.alertmanager has an unknown key \"groupWiat\" (expected one of: groupWait)" ]
name: defaults: settings: let
  inherit (builtins) attrNames concatStringsSep filter isAttrs;
  util = import ../util.nix;
  common = import ./common.nix;
  given = settings.${name} or {};
  cfg =
    if isAttrs given
    then util.recursiveUpdate defaults given
    else defaults;
in {
  inherit cfg;
  problems =
    util.optional (!(isAttrs given)) "settings.${name} is ${common.show given}; expected an attribute set"
    ++ map (key: "settings.${name} has an unknown key \"${key}\" (expected one of: ${concatStringsSep ", " (attrNames defaults)})")
    (filter (key: !(defaults ? ${key})) (attrNames cfg));
}
