# lib/yaml.nix: a small YAML emitter on builtins only, for the configuration files of the
# daemons that read YAML (Prometheus, its rule files, Alertmanager).
#
# JSON text would be valid YAML too, but these files are read by people during an incident;
# block style with the keys in the order the daemons' documentation uses reads far better.
# The output is deterministic and covers only what those files need: mappings, sequences,
# strings, integers, floats, booleans and null. Prometheus and Alertmanager parse it with
# Go's yaml.v2/v3 (YAML 1.1 resolution rules), so every string that YAML 1.1 could read as
# something else (`yes`, `on`, `1e3`, `0x10`, `12:30` …) is quoted.
#
# Type: toYAML :: { keyOrder ? [ string ] } -> any -> string
#
# `keyOrder` lists keys that come first, in that order, in every mapping where they occur;
# the remaining keys follow sorted. The text ends with a newline.
#
# Example:
#   toYAML { keyOrder = [ "name" ]; } { rules = [ { name = "a"; expr = "up == 0"; } ]; }
#   => ''
#     rules:
#     - name: a
#       expr: up == 0
#   ''
let
  inherit (import ./util.nix) toLower;
  inherit (builtins) attrNames concatStringsSep elem filter genList isAttrs isBool isFloat isInt isList isNull isString match replaceStrings sort split stringLength substring toJSON typeOf;

  lines = text: filter isString (split "\n" text);

  # Plain scalars: a conservative set that no YAML 1.1 parser reads as anything but a
  # string: words of letters, digits and `_./,()-` separated by single spaces, starting with
  # a letter, `_` or `/` (never an indicator), without `:`, `#` or quotes. Durations
  # (`15s`, `500ms`) are plain because Prometheus users expect them so.
  plainWord = "[A-Za-z_/]([A-Za-z0-9_./,()-]| [A-Za-z0-9_./,()-])*";
  duration = "[0-9]+(ms|s|m|h|d|w|y)";
  # YAML 1.1 booleans and nulls (yaml.v2 resolves them case-insensitively in practice).
  reserved = ["y" "yes" "n" "no" "true" "false" "on" "off" "null" "nan" "inf"];
  isPlain = s:
    (match plainWord s != null && !(elem (toLower s) reserved))
    || match duration s != null;

  # Printable single-line text (no control characters) may be single-quoted, where only
  # `'` needs escaping (doubled); everything else is taken literally.
  isPrintableLine = s: match "[^\n\r\t]*" s != null;
  singleQuoted = s: "'" + replaceStrings ["'"] ["''"] s + "'";

  # Multi-line text becomes a literal block (`|-` when it has no final newline, `|` with
  # exactly one); text a block cannot carry exactly (leading spaces on its first line,
  # several final newlines, tabs) falls back to JSON's double quotes, which YAML reads.
  endsWithNewline = s: s != "" && substring (stringLength s - 1) 1 s == "\n";
  stripFinalNewline = s:
    if endsWithNewline s
    then substring 0 (stringLength s - 1) s
    else s;
  canBeBlock = s: let
    body = stripFinalNewline s;
  in
    match "[^ \n].*" body
    != null
    && !(endsWithNewline body)
    && match "[^\t\r]*" s != null;
  block = indent: s: let
    indicator =
      if endsWithNewline s
      then "|"
      else "|-";
    body = map (line:
      if line == ""
      then ""
      else indent + line) (lines (stripFinalNewline s));
  in
    indicator + "\n" + concatStringsSep "\n" body;

  scalar = indent: value:
    if isNull value
    then "null"
    else if isBool value
    then
      (
        if value
        then "true"
        else "false"
      )
    else if isInt value || isFloat value
    then toJSON value
    else if isString value
    then
      (
        if isPlain value
        then value
        else if match ".*\n.*" value != null && canBeBlock value
        then block indent value
        else if isPrintableLine value
        then singleQuoted value
        else toJSON value
      )
    else throw "rampart.lib.yaml: cannot write a ${typeOf value} as YAML (expected a set, list, string, number, bool or null)";

  # Keys follow the same quoting rules as values; a key is never a block.
  key = k:
    if isPlain k
    then k
    else if isPrintableLine k
    then singleQuoted k
    else toJSON k;

  isEmptyCollection = v: (isAttrs v && v == {}) || (isList v && v == []);
  emptyCollection = v:
    if isAttrs v
    then "{}"
    else "[]";

  toYAML = {keyOrder ? []}: let
    orderedKeys = attrs: let
      names = attrNames attrs;
      first = filter (k: elem k names) keyOrder;
      rest = sort (a: b: a < b) (filter (k: !(elem k keyOrder)) names);
    in
      first ++ rest;

    spaces = n: concatStringsSep "" (genList (_: " ") n);

    # Each entry of a mapping at `depth` (indent of its keys) as lines of text.
    mapping = depth: attrs:
      map (k: let
        v = attrs.${k};
        prefix = spaces depth + key k + ":";
      in
        if isEmptyCollection v
        then "${prefix} ${emptyCollection v}"
        else if isAttrs v
        then prefix + "\n" + concatStringsSep "\n" (mapping (depth + 2) v)
        # Sequences under a key are not indented further (the kubectl/Prometheus docs style).
        else if isList v
        then prefix + "\n" + concatStringsSep "\n" (sequence depth v)
        else "${prefix} ${scalar (spaces (depth + 2)) v}")
      (orderedKeys attrs);

    # Items of a sequence whose dashes sit at `depth`.
    sequence = depth: list:
      map (item: let
        dash = spaces depth + "- ";
      in
        if isEmptyCollection item
        then dash + emptyCollection item
        else if isAttrs item
        # The first key shares the dash's line; the rest align under it.
        then dash + substring (depth + 2) (-1) (concatStringsSep "\n" (mapping (depth + 2) item))
        else if isList item
        then dash + substring (depth + 2) (-1) (concatStringsSep "\n" (sequence (depth + 2) item))
        else dash + scalar (spaces (depth + 2)) item)
      list;
  in
    value:
      if isEmptyCollection value
      then emptyCollection value + "\n"
      else if isAttrs value
      then concatStringsSep "\n" (mapping 0 value) + "\n"
      else if isList value
      then concatStringsSep "\n" (sequence 0 value) + "\n"
      else scalar "  " value + "\n";
in {
  inherit toYAML;
  # For tests: whether a string is written without quotes.
  inherit isPlain;
}
