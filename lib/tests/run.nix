# lib/tests/run.nix: the test runner, a builtins-only stand-in for nixpkgs' `lib.debug.runTests`.
#
# Inputs: an attrset of cases `{ testFoo = { expr; expected; }; }`; names not starting with
# "test" are ignored (as in nixpkgs), so a file can keep helpers next to its cases.
#
# Type: run :: { <name> = { expr; expected; }; } -> [ { name; expected; result; } ]
#
# Example:
#   import ./run.nix { testOne = { expr = 1 + 1; expected = 2; }; }
#   => [ ]
#
# The empty list means every case passed. Failure cases use `builtins.tryEval`, which catches
# `throw` and `assert` (not every evaluation error), so expected failures must be throws.
tests:
builtins.concatMap (
  name: let
    case = tests.${name};
  in
    if case.expr == case.expected
    then []
    else [
      {
        inherit name;
        inherit (case) expected;
        result = case.expr;
      }
    ]
) (builtins.filter (name: builtins.substring 0 4 name == "test") (builtins.attrNames tests))
