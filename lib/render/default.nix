# lib/render/default.nix: every daemon's configuration for every host, from the topology.
#
# Each renderer is `lib/render/<name>.nix`, a function
#   { topology, settings, host } -> { "<path relative to the host's file set>" = text; }
# that returns an empty set for a host it does not apply to (docs/contracts.md,
# "Renderers"). `render` calls all of them for every host and merges their files; the
# NixOS modules call the same functions (`renderers`), so both deploy the same text.
#
# Inputs of `render`:
#   topology  a topology attrset (validated here; throws listing every problem) or a path
#             to a JSON file
#   settings  an attrset merged over lib/settings.nix, or a function from host name to one
#             (the lab gives every host its own directories)
#
# Type: render :: { topology; settings ? attrs | (string -> attrs) } -> { <host> = { <path> = string; }; }
#
# Example:
#   (render { topology = ../../hosts/topology.json; }).lb."haproxy/haproxy.cfg"
#   => "# haproxy.cfg for lb, rendered by rampart from hosts/topology.json …"
let
  inherit (builtins) attrNames filter foldl' isFunction isAttrs listToAttrs pathExists;
  topologyLib = import ../topology.nix;
  common = import ./common.nix;

  # Part B's renderers (monitoring host) join when their files exist, so either branch
  # evaluates on its own.
  optionalRenderer = name:
    if pathExists (./. + "/${name}.nix")
    then {${name} = import (./. + "/${name}.nix");}
    else {};

  renderers =
    {
      etcd = import ./etcd.nix;
      haproxy = import ./haproxy.nix;
      mariadb = import ./mariadb.nix;
      nftables = import ./nftables.nix;
      nginx = import ./nginx.nix;
      sshd = import ./sshd.nix;
    }
    // optionalRenderer "prometheus"
    // optionalRenderer "alertmanager";

  loadTopology = topology:
    if isAttrs topology
    then let
      problems = topologyLib.validate topology;
    in
      common.orThrow "render" (map (problem: "topology is not valid: ${problem}") problems) topology
    else topologyLib.fromFile topology;

  # The union of every renderer's files for one host; two renderers must never write the
  # same path.
  renderHost = topology: settings: host:
    foldl' (files: name: let
      new = renderers.${name} {inherit topology settings host;};
      clashes = filter (path: files ? ${path}) (attrNames new);
    in
      common.orThrow "render" (map (path: "renderers disagree on ${path} for host ${host.name} (${name} writes it too); give each file one renderer") clashes)
      (files // new)) {} (attrNames renderers);

  render = {
    topology,
    settings ? {},
  }: let
    topo = loadTopology topology;
    settingsFor = host:
      common.mergeSettings (
        if isFunction settings
        then settings host.name
        else settings
      );
  in
    listToAttrs (map (host: {
        inherit (host) name;
        value = renderHost topo (settingsFor host) host;
      })
      topo.hosts);
in {
  inherit render renderers;
}
