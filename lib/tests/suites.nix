# lib/tests/suites.nix: finds every lib/tests/<name>.nix test file (an attrset of
# `test… = { expr; expected; }` cases) with readDir, so a new file needs no registration,
# and runs each with ./run.nix.
#
# Type: { failures :: { <name> = [ { name; expected; result; } ]; }; summary :: string; }
#
# Examples, from the repository root:
#   nix-instantiate --eval --strict --json lib/tests        # default.nix = failures
#   => {"topology":[]}                                      # every list empty: all passed
#   nix eval --raw --file lib/tests/suites.nix summary
#   => each failure, then "nix-eval: N passed, M failed"
let
  inherit (builtins) attrNames concatMap concatStringsSep filter foldl' length listToAttrs match readDir stringLength substring toJSON;

  run = import ./run.nix;
  # The runner and its drivers are not test files.
  notTests = ["default.nix" "run.nix" "suites.nix"];
  entries = readDir ./.;
  isTestFile = name: entries.${name} == "regular" && match ".*\\.nix" name != null && !(builtins.elem name notTests);
  isCase = name: substring 0 4 name == "test";

  suites = map (file: let
    cases = import (./. + "/${file}");
  in {
    name = substring 0 (stringLength file - 4) file;
    total = length (filter isCase (attrNames cases));
    failures = run cases;
  }) (filter isTestFile (attrNames entries));

  total = foldl' (n: suite: n + suite.total) 0 suites;
  failed = foldl' (n: suite: n + length suite.failures) 0 suites;
  describe = suite:
    map (failure: ''
      FAIL ${suite.name}.${failure.name}
        expected: ${toJSON failure.expected}
        result:   ${toJSON failure.result}
    '')
    suite.failures;
in {
  failures = listToAttrs (map (suite: {
      inherit (suite) name;
      value = suite.failures;
    })
    suites);

  summary = concatStringsSep "" (concatMap describe suites) + "nix-eval: ${toString (total - failed)} passed, ${toString failed} failed\n";
}
