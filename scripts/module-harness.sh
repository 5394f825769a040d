#!/usr/bin/env bash
# scripts/module-harness.sh: evaluate the NixOS modules with nixpkgs' module system.
#
# checks/harness evaluates each host of hosts/topology.json as the flake builds it, against
# the nixpkgs 26.05 options rampart sets (checks/harness/nixpkgs-options.nix). This script
# runs it for every host (no failed assertion, every value type-checks), checks every
# unit's secrets against the host's list (checks/harness/secrets.nix) and every daemon
# against lib/daemons.nix, the attribute the lab runs too (checks/harness/parity.nix),
# then negative cases that must fail with a known message (a secret in the store, an
# unknown host, a misspelt option, a wrong type, a concern on a host without its role, a
# unit setting that conflicts with nixpkgs' own, a secret off the list, a daemon set up
# differently from the lab).
#
# First, with builtins only, the host files against the topology's roles (checks/hosts.nix)
# and the modules' secrets against lib/secrets.nix (checks/secrets.nix).
# The rest needs nixpkgs' library, which is never committed here: set RAMPART_NIXPKGS_LIB
# to a directory holding `lib/` (nix-community/nixpkgs.lib). Without it the script prints
# "skipped: no nixpkgs lib (set RAMPART_NIXPKGS_LIB)" and exits 0, so CI can run it anyway.
# Exit 0 when every case passes, 1 when one fails, 2 when it cannot run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/nix-env.sh
source scripts/nix-env.sh

work=$(mktemp -d /tmp/rampart-module-harness.XXXXXX)
trap 'rm -rf "$work"' EXIT

# eval_json ARGS...: `nix-instantiate --eval --strict --json ARGS`; exits as Nix did.
# The result is Nix's stdout, saved in $work/result and read only after Nix succeeded (a
# strict evaluation that fails leaves half a document there). Nix's stderr is a log, never
# data: it arrives as internal-json records; every message but the error is passed on to
# this script's stderr as Nix would print it (warnings, traces), and the error that ended a
# failed evaluation is saved as its plain message in $work/error (the record's raw_msg), for
# the cases that expect one. So no warning can ever be read as a result. (Nix's hint to
# rerun with --show-trace is dropped: the harness's own FAIL lines say what failed.)
eval_json() {
  local status=0
  : >"$work/error"
  nix-instantiate --log-format internal-json --eval --strict --json "$@" \
    >"$work/result" 2>"$work/log" || status=$?
  grep -v '^@nix ' "$work/log" >&2 || true
  sed -n 's/^@nix //p' "$work/log" | jq -r 'select(.action == "msg" and (has("raw_msg") | not)) | .msg
    | select(test("^\\(use .--show-trace") | not)' >&2
  sed -n 's/^@nix //p' "$work/log" | jq -r 'select(.action == "msg" and has("raw_msg")) | .raw_msg' >"$work/error"
  return "$status"
}

# show_error: the saved error of the last failed evaluation, indented, for a FAIL line.
show_error() {
  sed 's/^/      /' "$work/error"
}

# Without nixpkgs: the host files against the topology's roles (checks/hosts.nix).
if ! eval_json checks/hosts.nix; then
  echo "module-harness: checks/hosts.nix did not evaluate:" >&2
  show_error >&2
  exit 1
elif ! jq -e '. == []' "$work/result" >/dev/null; then
  echo "module-harness: the host files disagree with hosts/topology.json:" >&2
  jq -r '.[] | "  " + .' "$work/result" >&2
  exit 1
fi
echo "module-harness: host files match the topology's roles"

# Without nixpkgs too: the modules' secrets against lib/secrets.nix (checks/secrets.nix).
if ! eval_json checks/secrets.nix; then
  echo "module-harness: checks/secrets.nix did not evaluate:" >&2
  show_error >&2
  exit 1
elif ! jq -e '. == []' "$work/result" >/dev/null; then
  echo "module-harness: the modules' secrets disagree with lib/secrets.nix:" >&2
  jq -r '.[] | "  " + .' "$work/result" >&2
  exit 1
fi
echo "module-harness: the modules load exactly the secrets of lib/secrets.nix, the bootstrap SQL fills exactly its placeholders"

lib_dir=${RAMPART_NIXPKGS_LIB:-}
if [[ -z "$lib_dir" ]]; then
  echo "module-harness: skipped: no nixpkgs lib (set RAMPART_NIXPKGS_LIB)"
  exit 0
fi
if [[ ! -f "$lib_dir/lib/default.nix" ]]; then
  echo "module-harness: RAMPART_NIXPKGS_LIB=$lib_dir has no lib/default.nix (expected the directory that holds nixpkgs' lib/, e.g. a nix-community/nixpkgs.lib checkout)" >&2
  exit 2
fi

passed=0
failed=0
pass() {
  passed=$((passed + 1))
  echo "  ✔ $*"
}
fail() {
  failed=$((failed + 1))
  echo "  ✘ $*"
}

# harness HOST [MODULE-EXPRESSION]: checks/harness for one host (eval_json: the result in
# $work/result, a failed evaluation's error in $work/error).
harness() {
  eval_json checks/harness \
    --arg nixpkgsLib "$lib_dir" --argstr host "$1" --arg modules "[ (${2:-{ \}}) ]"
}

hosts=$(jq -r '.hosts[].name' hosts/topology.json)

echo "module-harness: hosts"
for host in $hosts; do
  if ! harness "$host"; then
    fail "$host: evaluation failed:"
    show_error
  elif jq -e '.failedAssertions == [] and .evaluated' "$work/result" >/dev/null; then
    pass "$host: evaluates, no failed assertion; $(jq -r '.enabled | join(", ")' "$work/result")"
    jq -r '.warnings[] | "      warning: " + .' "$work/result"
  else
    fail "$host: $(cat "$work/result")"
  fi
done

# problems CHECK HOST [MODULE-EXPRESSION]: the problems checks/harness/CHECK.nix finds on
# HOST (with MODULE), as JSON.
problems() {
  nix-instantiate --eval --strict --json "checks/harness/$1.nix" \
    --arg nixpkgsLib "$lib_dir" --argstr host "$2" --arg modules "[ (${3:-{ \}}) ]"
}
# no_problems CHECK WHAT: every host passes checks/harness/CHECK.nix.
no_problems() {
  local host out
  for host in $hosts; do
    if ! out=$(problems "$1" "$host"); then
      fail "$host: checks/harness/$1.nix did not evaluate (error above)"
    elif [[ "$out" == "[]" ]]; then
      pass "$host: $2"
    else
      fail "$host: $out"
    fi
  done
}
# expect_problem CHECK NAME HOST MODULE TEXT: with MODULE, CHECK must report TEXT.
expect_problem() {
  local out
  if ! out=$(problems "$1" "$3" "$4"); then
    fail "$2: checks/harness/$1.nix did not evaluate (error above)"
  elif [[ "$out" == *"$5"* ]]; then
    pass "$2"
  else
    fail "$2: expected a problem with: $5; got: $out"
  fi
}

echo "module-harness: every unit's secrets against the host's list (lib/secrets.nix)"
no_problems secrets "every LoadCredential/EnvironmentFile/secret path is on the list, every listed secret is read"
expect_problem secrets "a unit loading a secret the list does not give it" web2 \
  '{ systemd.services.rampart-database-bootstrap.serviceConfig.LoadCredential = [ "failover-db-password:/run/secrets/rampart/failover-db-password" ]; }' \
  'rampart-database-bootstrap.service loads the secret failover-db-password, but lib/secrets.nix names its readers as rampart-db'
expect_problem secrets "a unit loading a secret that is on no list" lb \
  '{ systemd.services.haproxy.serviceConfig.LoadCredential = [ "stats-password:/run/secrets/rampart/stats-password" ]; }' \
  'haproxy.service loads the credential stats-password (/run/secrets/rampart/stats-password), which lib/secrets.nix does not list for lb'
expect_problem secrets "an EnvironmentFile outside the list" web1 \
  '{ systemd.services.rampart-app.serviceConfig.EnvironmentFile = "/run/secrets/rampart/app.env"; }' \
  'rampart-app.service has EnvironmentFile=/run/secrets/rampart/app.env'
expect_problem secrets "a listed secret that its reader does not load" web1 \
  '{ lib, ... }: { systemd.services.rampart-app.serviceConfig.LoadCredential = lib.mkForce [ ]; }' \
  'lib/secrets.nix lists rampart-app.service as a reader of app-db-password, but the unit does not load it'
expect_problem secrets "a secret file named directly" web1 \
  '{ systemd.services.rampart-app.environment.DB_PASSWORD_FILE = "/run/secrets/rampart/app-db-password"; }' \
  'rampart-app.service names a file in /run/secrets/rampart directly'

echo "module-harness: every daemon as lib/daemons.nix gives it (the lab runs the same)"
no_problems parity "arguments, main configuration and environment of every daemon from lib/daemons.nix"
expect_problem parity "an exporter flag only NixOS passes" web1 \
  '{ services.prometheus.exporters.node.extraFlags = [ "--collector.systemd" ]; }' \
  'services.prometheus.exporters.node.extraFlags has [\"--collector.systemd\"] besides paths'
expect_problem parity "nginx main configuration only NixOS has" web2 \
  '{ services.nginx.eventsConfig = "multi_accept on;"; }' \
  'services.nginx.eventsConfig is'
expect_problem parity "an sshd setting only NixOS has" lb \
  '{ lib, ... }: { services.openssh.settings.PermitRootLogin = lib.mkForce "no"; }' \
  'services.openssh.settings is {\"KbdInteractiveAuthentication\":false,\"PasswordAuthentication\":false,\"PermitRootLogin\":\"no\"'
expect_problem parity "an etcd flag only NixOS sets" lb \
  '{ services.etcd.extraConf.SNAPSHOT_COUNT = "5000"; }' \
  'services.etcd.extraConf is'
expect_problem parity "an application argument only NixOS passes" web1 \
  '{ lib, ... }: { systemd.services.rampart-app.serviceConfig.ExecStart = lib.mkForce "/bin/rampart-app --db-timeout 9"; }' \
  'rampart-app.service runs \"/bin/rampart-app --db-timeout 9\"'

echo "module-harness: each module file alone (nixosModules.<name>)"
if ! eval_json checks/harness/single-modules.nix --arg nixpkgsLib "$lib_dir"; then
  fail "checks/harness/single-modules.nix did not evaluate:"
  show_error
else
  # One record per file: {"evaluated":…,"failedAssertions":[…],"file":"…"}.
  while IFS= read -r record; do
    file=$(jq -r .file <<<"$record")
    if jq -e '.evaluated and .failedAssertions == []' <<<"$record" >/dev/null; then
      pass "modules/$file"
    else
      fail "modules/$file: $record"
    fi
  done < <(jq -c '.[]' "$work/result")
fi

# expect NAME HOST MODULE KIND TEXT: evaluating HOST with MODULE must fail, with TEXT in a
# failed assertion (KIND=assertion, matched in the result's JSON, where a quote is \") or in
# the message of the error that stopped the evaluation (KIND=error, plain text).
expect() {
  local name=$1 host=$2 module=$3 kind=$4 text=$5
  if harness "$host" "$module"; then
    if [[ $kind == assertion ]] && jq -c .failedAssertions "$work/result" | grep -qF -- "$text"; then
      pass "$name"
    else
      fail "$name: expected ${kind} with: $text; got: $(cat "$work/result")"
    fi
  elif [[ $kind == error ]] && grep -qF -- "$text" "$work/error"; then
    pass "$name"
  else
    fail "$name: expected ${kind} with: $text; got the error:"
    show_error
  fi
}

echo "module-harness: negative cases"
expect "a secret in the store is refused" web1 \
  '{ rampart.database.replicationPasswordFile = "/nix/store/00000000000000000000000000000000-replication-password"; }' \
  assertion 'rampart.database.replicationPasswordFile: a secret must not be in the Nix store'
expect "a relative secret path is refused" web2 \
  '{ rampart.app.databasePasswordFile = "secrets/app-db-password"; }' \
  assertion 'rampart.app.databasePasswordFile: not an absolute path'
expect "a PKI directory in the store is refused" lb \
  '{ rampart.pkiDir = "/nix/store/00000000000000000000000000000000-pki"; }' \
  assertion 'rampart.pkiDir: a secret must not be in the Nix store'
expect "an unknown host is named" web1 \
  '{ rampart.hostName = "web3"; }' \
  assertion 'rampart.hostName: not a host of rampart.topology (got \"web3\", expected one of: lb, web1, web2)'
expect "a concern on a host without its role" web1 \
  '{ rampart.loadBalancer.enable = true; }' \
  assertion 'rampart.loadBalancer.enable: host \"web1\" has no role \"loadBalancer\" in rampart.topology'
expect "memory shares over 100%" lb \
  '{ rampart.resources.services.haproxy.memoryShare = 95; }' \
  assertion 'rampart.resources.services: the memory shares of the units on lb add up to'
expect "an invalid topology" lb \
  '{ rampart.topology = (builtins.fromJSON (builtins.readFile ./hosts/topology.json)) // { version = 2; }; }' \
  assertion 'rampart.topology: version: unsupported version 2 (expected 1)'
expect "a misspelt rampart option" lb \
  '{ rampart.firewall.enabel = true; }' \
  error "The option \`rampart.firewall.enabel' does not exist"
expect "a misspelt nixpkgs option" lb \
  '{ services.haproxy.confg = ""; }' \
  error "The option \`services.haproxy.confg' does not exist"
expect "a unit setting that nixpkgs sets differently" lb \
  '{ systemd.services.haproxy.serviceConfig.RuntimeDirectory = "rampart-haproxy"; }' \
  error "systemd.services.haproxy.serviceConfig.RuntimeDirectory' has conflicting definition values"
expect "a value of the wrong type" web1 \
  '{ rampart.resources.memoryBudget = "2G"; }' \
  error "rampart.resources.memoryBudget' is not of type"

echo "module-harness: the three-VM test script"
# checks/three-vm.nix, fed the hosts evaluated above: its script must generate and, with the
# driver's names aside, be valid Python.
script=$work/three-vm.py
if ! eval_json checks/harness/three-vm-script.nix --arg nixpkgsLib "$lib_dir"; then
  fail "checks/three-vm.nix: the test script does not generate:"
  show_error
elif ! jq -j . "$work/result" >"$script"; then
  fail "checks/three-vm.nix: the generated script could not be written"
elif ! errors=$(python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' "$script" 2>&1); then
  fail "checks/three-vm.nix: the generated script is not valid Python: $errors"
else
  pass "checks/three-vm.nix: the test script generates ($(wc -l <"$script") lines) and parses as Python"
fi

echo "module-harness: $passed passed, $failed failed"
((failed == 0))
