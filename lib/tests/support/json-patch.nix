# lib/tests/support/json-patch.nix: RFC 6902 JSON Patch, the `add`, `remove` and `replace`
# operations, so that a topology fixture can be written as the base topology plus a few
# edits (tests/topologies/README.md). The Rust tests apply the same files with the
# `json-patch` crate and check that both sides build the same documents.
#
# Type: applyPatch :: json -> [ { op; path; value?; } ] -> json
#
# Example:
#   applyPatch { a = [ 1 2 ]; } [ { op = "add"; path = "/a/1"; value = 9; } { op = "remove"; path = "/a/0"; } ]
#   => { a = [ 9 2 ]; }
#
# A patch that does not apply (a missing member, an index out of range, an unknown
# operation) throws naming the operation and its path.
let
  inherit (builtins) elemAt filter foldl' fromJSON genList head isAttrs isList isString length match removeAttrs replaceStrings split substring tail toJSON typeOf;

  # RFC 6901: "" is the whole document; "/a/b~1c/0" is [ "a" "b/c" "0" ].
  parsePointer = fail: pointer:
    if pointer == ""
    then []
    else if substring 0 1 pointer != "/"
    then fail "a JSON pointer is empty or starts with \"/\""
    else map (replaceStrings ["~1" "~0"] ["/" "~"]) (tail (filter isString (split "/" pointer)));

  # Lists by index: `slice list start count`, and `list` with `middle` in place of the
  # `removed` elements at `i`.
  slice = list: start: count: genList (k: elemAt list (start + k)) count;
  splice = list: i: removed: middle: slice list 0 i ++ middle ++ slice list (i + removed) (length list - i - removed);

  # The index a token names in `list`; `pastEnd` admits one past the last element (add).
  index = fail: list: token: pastEnd: let
    i = fromJSON token;
    size = length list;
  in
    if match "0|[1-9][0-9]{0,8}" token == null
    then fail "\"${token}\" is not an array index"
    else if i > size || (i == size && !pastEnd)
    then fail "index ${token} is out of range (the array has ${toString size} elements)"
    else i;

  notContainer = fail: value: fail "a ${typeOf value} has no members";

  member = fail: container: token:
    if isAttrs container
    then container.${token} or (fail "no member \"${token}\"")
    else if isList container
    then elemAt container (index fail container token false)
    else notContainer fail container;

  # `container` with the existing member `token` set to `value`.
  withMember = fail: container: token: value:
    if isAttrs container
    then
      if container ? ${token}
      then container // {${token} = value;}
      else fail "no member \"${token}\""
    else if isList container
    then splice container (index fail container token false) 1 [value]
    else notContainer fail container;

  # The operations, on the container that holds the target and the target's last token.
  operations = {
    add = fail: container: token: value:
      if isAttrs container
      then container // {${token} = value;}
      else if isList container
      then
        splice container (
          if token == "-"
          then length container
          else index fail container token true
        )
        0 [value]
      else notContainer fail container;
    remove = fail: container: token: _:
      if isAttrs container
      then
        if container ? ${token}
        then removeAttrs container [token]
        else fail "no member \"${token}\""
      else if isList container
      then splice container (index fail container token false) 1 []
      else notContainer fail container;
    replace = withMember;
  };
in
  document: patch:
    foldl' (doc: operation: let
      fail = reason: throw "json-patch: ${toJSON operation.op or null} at ${toJSON operation.path or null}: ${reason}";
      apply = operations.${operation.op} or (fail "unsupported operation (expected add, remove or replace)");
      tokens = parsePointer fail operation.path;
      value = operation.value or null;
      # Rebuild the path from the root, applying the operation at its end.
      at = container: tokens:
        if length tokens == 1
        then apply fail container (head tokens) value
        else withMember fail container (head tokens) (at (member fail container (head tokens)) (tail tokens));
    in
      if tokens == []
      then
        if operation.op == "remove"
        then fail "cannot remove the whole document"
        else value
      else at doc tokens)
    document
    patch
