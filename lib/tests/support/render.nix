# lib/tests/support/render.nix: what the lib/tests/render-*.nix files share (not a test file:
# suites.nix reads only lib/tests/*.nix).
let
  inherit (builtins) deepSeq filter isString match split tryEval;
  lib = import ../../default.nix {};
in rec {
  inherit lib;
  inherit (lib) topology;
  common = import ../../render/common.nix;
  util = import ../../util.nix;

  shipped = lib.shippedTopology;
  fourWeb = lib.topology.fromFile ../../../tests/topologies/good/four-web.json;

  # Every host's files for a topology, with default or given settings.
  renderShipped = lib.rendered;
  renderFourWeb = lib.render {topology = fourWeb;};

  # Whether evaluating `value` completely succeeds (a renderer's `throw` is caught).
  evaluates = value: (tryEval (deepSeq value true)).success;

  # The lines of a text, without the newlines.
  lines = text: filter isString (split "\n" text);

  # The lines of a text that match a POSIX regular expression (whole line).
  grep = regex: text: filter (line: match regex line != null) (lines text);

  # The capture groups of the first line matching `regex`, or null.
  capture = regex: text: let
    found = filter (m: m != null) (map (match regex) (lines text));
  in
    if found == []
    then null
    else builtins.head found;
}
