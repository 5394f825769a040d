# lib/tests/json-patch.nix: the RFC 6902 subset the topology fixtures are written in
# (support/json-patch.nix); the examples are RFC 6902's Appendix A where it has one.
let
  inherit (builtins) deepSeq tryEval;
  applyPatch = import ./support/json-patch.nix;
  # Whether applying a patch succeeds (its failures are throws).
  applies = doc: patch: (tryEval (deepSeq (applyPatch doc patch) true)).success;

  add = path: value: {
    op = "add";
    inherit path value;
  };
  remove = path: {
    op = "remove";
    inherit path;
  };
  replace = path: value: {
    op = "replace";
    inherit path value;
  };
in {
  testAddObjectMember = {
    # A.1
    expr = applyPatch {foo = "bar";} [(add "/baz" "qux")];
    expected = {
      baz = "qux";
      foo = "bar";
    };
  };
  testAddArrayElement = {
    # A.2
    expr = applyPatch {foo = ["bar" "baz"];} [(add "/foo/1" "qux")];
    expected = {foo = ["bar" "qux" "baz"];};
  };
  testAddAtTheEndAndPastTheEnd = {
    expr = map (path: applyPatch {a = [1 2];} [(add path 3)]) ["/a/-" "/a/2"];
    expected = [{a = [1 2 3];} {a = [1 2 3];}];
  };
  testRemoveObjectMember = {
    # A.3
    expr = applyPatch {
      baz = "qux";
      foo = "bar";
    } [(remove "/baz")];
    expected = {foo = "bar";};
  };
  testRemoveArrayElement = {
    # A.4
    expr = applyPatch {foo = ["bar" "qux" "baz"];} [(remove "/foo/1")];
    expected = {foo = ["bar" "baz"];};
  };
  testReplaceNestedValue = {
    # A.5, one level down, with an array on the way
    expr = applyPatch {hosts = [{name = "a";} {name = "b";}];} [(replace "/hosts/1/name" "c")];
    expected = {hosts = [{name = "a";} {name = "c";}];};
  };
  testOperationsApplyInOrder = {
    expr = applyPatch {a = [1];} [(add "/a/0" 0) (replace "/a/1" 9) (add "/b" {c = null;}) (remove "/b/c")];
    expected = {
      a = [0 9];
      b = {};
    };
  };
  testEscapedPointerTokens = {
    # RFC 6901: ~1 is "/", ~0 is "~", and "~01" is "~1" (not "/").
    expr = applyPatch {} [(add "/a~1b" 1) (add "/c~0d" 2) (add "/e~01" 3)];
    expected = {
      "a/b" = 1;
      "c~d" = 2;
      "e~1" = 3;
    };
  };
  testReplaceTheWholeDocument = {
    expr = applyPatch {a = 1;} [(replace "" [])];
    expected = [];
  };
  testPatchesThatDoNotApplyThrow = {
    # A.12 (a missing parent), a missing member or index, a non-index, a scalar's member,
    # an operation outside the subset, a pointer without its leading "/", the root removed.
    expr = map (operation: applies {foo = ["bar"];} [operation]) [
      (add "/baz/bat" "qux")
      (replace "/baz" 1)
      (remove "/foo/1")
      (add "/foo/2" 1)
      (replace "/foo/01" 1)
      (add "/foo/0/x" 1)
      {
        op = "move";
        from = "/foo";
        path = "/bar";
      }
      (add "foo" 1)
      (remove "")
    ];
    expected = [false false false false false false false false false];
  };
}
