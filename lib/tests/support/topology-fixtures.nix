# lib/tests/support/topology-fixtures.nix: the topologies of tests/topologies as values, for
# lib/tests/topology.nix and for the Rust parity tests (which evaluate this file and compare
# with what they build themselves). tests/topologies/README.md describes the layout.
#
# Type: {
#   base :: topology;                                           # base.json
#   good :: { <name> = topology; };                             # base, good/*.json, good/*.patch.json
#   bad :: { <name> = { topology; expected :: string; }; };     # bad/*.patch.json, bad/*.expected
# }
let
  inherit (builtins) attrNames filter fromJSON head intersectAttrs listToAttrs match readDir readFile stringLength substring;
  applyPatch = import ./json-patch.nix;

  dir = ../../../tests/topologies;
  readJSON = path: fromJSON (readFile path);
  base = readJSON (dir + "/base.json");
  patched = path: applyPatch base (readJSON path);

  # { <name> = f <name> <path>; } for the files <name><suffix> of `subdir`. Names have no
  # dot, so "x.patch.json" is a patch named "x", never a document named "x.patch".
  byName = subdir: suffix: f: let
    entries = readDir (dir + "/${subdir}");
    nameOf = file: match "([^.]+)${suffix}" file;
    files = filter (file: entries.${file} == "regular" && nameOf file != null) (attrNames entries);
  in
    listToAttrs (map (file: rec {
        name = head (nameOf file);
        value = f name (dir + "/${subdir}/${file}");
      })
      files);

  # Union of fixture sets whose names must not collide.
  disjoint = a: b:
    if intersectAttrs a b == {}
    then a // b
    else throw "tests/topologies/good: two fixtures named ${toString (attrNames (intersectAttrs a b))}";

  withoutTrailingNewline = s:
    if s != "" && substring (stringLength s - 1) 1 s == "\n"
    then substring 0 (stringLength s - 1) s
    else s;
in {
  inherit base;
  good = disjoint {inherit base;} (disjoint (byName "good" "\\.json" (_: readJSON)) (byName "good" "\\.patch\\.json" (_: patched)));
  bad = byName "bad" "\\.patch\\.json" (name: path: {
    topology = patched path;
    expected = withoutTrailingNewline (readFile (dir + "/bad/${name}.expected"));
  });
}
