# lib/tests: the failures of every test file, `{ <file> = [ { name; expected; result; } ]; }`.
# All lists empty means every case passed:
#   nix-instantiate --eval --strict --json lib/tests
# scripts/nix-checks.sh prints the readable form (`summary` in ./suites.nix).
(import ./suites.nix).failures
