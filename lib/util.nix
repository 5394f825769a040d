# Small builtins-only helpers shared by the rampart renderers.
#
# There is no nixpkgs on the machines that build and test rampart, so the few list and
# string functions the renderers need live here, named as in nixpkgs `lib` so that readers
# recognise them. Each has the same meaning as its nixpkgs namesake.
let
  inherit (builtins) concatStringsSep filter foldl' genList length elemAt head substring;
  characters = s: genList (i: substring i 1 s) (builtins.stringLength s);
  upperAscii = characters "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  lowerAscii = characters "abcdefghijklmnopqrstuvwxyz";
in rec {
  # concatMapStrings :: (a -> string) -> [a] -> string
  concatMapStrings = f: list: concatStringsSep "" (map f list);

  # concatMapStringsSep :: string -> (a -> string) -> [a] -> string
  concatMapStringsSep = sep: f: list: concatStringsSep sep (map f list);

  # concatLines :: [string] -> string; every line ends with "\n".
  #
  # Example: concatLines [ "a" "b" ] => "a\nb\n"
  concatLines = concatMapStrings (line: line + "\n");

  # optionalString :: bool -> string -> string
  optionalString = cond: string:
    if cond
    then string
    else "";

  # optional :: bool -> a -> [a]
  optional = cond: element:
    if cond
    then [element]
    else [];

  # optionals :: bool -> [a] -> [a]
  optionals = cond: list:
    if cond
    then list
    else [];

  # optionalAttrs :: bool -> attrs -> attrs
  optionalAttrs = cond: attrs:
    if cond
    then attrs
    else {};

  # unique :: [a] -> [a]; keeps the first occurrence, in order.
  unique = foldl' (acc: x:
    if builtins.elem x acc
    then acc
    else acc ++ [x]) [];

  # imap0 :: (int -> a -> b) -> [a] -> [b]
  imap0 = f: list: genList (i: f i (elemAt list i)) (length list);

  # indent :: string -> string -> string; prefixes every non-empty line.
  #
  # Example: indent "  " "a\n\nb\n" => "  a\n\n  b\n"
  indent = prefix: text:
    concatStringsSep "\n" (map (line:
      if line == ""
      then line
      else prefix + line)
    (filter builtins.isString (builtins.split "\n" text)));

  # hasPrefix :: string -> string -> bool
  hasPrefix = prefix: string:
    builtins.substring 0 (builtins.stringLength prefix) string == prefix;

  # toLower :: string -> string; ASCII letters only (builtins has no case mapping).
  #
  # Example: toLower "HighQPS" => "highqps"
  toLower = builtins.replaceStrings upperAscii lowerAscii;

  # toUpper :: string -> string; ASCII letters only.
  #
  # Example: toUpper "data-dir" => "DATA-DIR"
  toUpper = builtins.replaceStrings lowerAscii upperAscii;

  # attrValuesSorted :: attrs -> [value]; values in sorted-name order (attrValues is too,
  # but saying so keeps the renderers' determinism visible).
  attrValuesSorted = attrs: map (name: attrs.${name}) (builtins.attrNames attrs);

  # recursiveUpdate :: attrs -> attrs -> attrs; right wins, nested sets merge.
  recursiveUpdate = lhs: rhs:
    lhs
    // builtins.mapAttrs (name: value:
      if builtins.isAttrs value && builtins.isAttrs (lhs.${name} or null)
      then recursiveUpdate lhs.${name} value
      else value)
    rhs;

  # findFirstIndex :: (a -> bool) -> b -> [a] -> int | b; the index of the first element
  # satisfying `pred`, or `default` when there is none.
  #
  # Example: findFirstIndex (x: x > 1) null [ 1 2 3 ] => 1
  findFirstIndex = pred: default: list: let
    go = i:
      if i >= length list
      then default
      else if pred (elemAt list i)
      then i
      else go (i + 1);
  in
    go 0;

  # findFirst :: (a -> bool) -> a -> [a] -> a
  findFirst = pred: default: list: let
    found = filter pred list;
  in
    if found == []
    then default
    else head found;
}
