#!/usr/bin/env bash
# scripts/daemon-checks.sh: the rendered files pass the daemons' own checks (Debian's
# haproxy, nginx, nft and mariadbd), for the shipped topology and for
# tests/topologies/good/four-web.json.
#
# Every file comes from `lib.render` with all paths under a temporary directory; throwaway
# certificates (openssl, subject CN=<host>.<domain>, the SANs of docs/contracts.md) stand in
# for certtool's. One function per daemon:
#
#   check_haproxy    haproxy -c -f haproxy.cfg, no warnings             (load balancer)
#   check_nginx      nginx -t inside a minimal main nginx.conf           (every web host)
#   check_nftables   nft -c, then loaded twice, in a scratch netns       (every host)
#   check_mariadb    the primary and the replica as real mariadbd on loopback addresses:
#                    bootstrap SQL applied, replication over verified TLS with GTID and
#                    semi-sync, accounts refuse connections without TLS or certificate
#
# Network safety: nft runs inside a network namespace this script creates and deletes;
# MariaDB listens on 127.0.0.0/8 only (a copy of the topology with loopback addresses).
# Everything is removed on exit, also on failure.
#
# Ends with the line `daemon-checks: N passed, M failed`. Exit 0 when all passed, 1 when a
# check failed, 2 when the checks could not run (a tool missing, rendering failed).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/nix-env.sh
source scripts/nix-env.sh

repo=$(pwd)
work=$(mktemp -d /tmp/rampart-daemon-checks.XXXXXX)
netns="rampart-dc-$$"
pids=()
passed=0
failed=0

cleanup() {
  stop_started
  ip netns delete "$netns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Could not run: said on the script's own stderr (fd 3), also from inside a check whose
# output goes to its log.
exec 3>&2
cannot_run() {
  echo "daemon-checks: $*" >&3
  exit 2
}

for tool in nix-instantiate jq openssl haproxy nginx nft ip mariadbd mariadb mariadb-install-db mariadb-admin ss; do
  command -v "$tool" >/dev/null || cannot_run "$tool not found; run scripts/install.sh (it installs the Debian packages)"
done

# check NAME COMMAND...: runs the command with its output in a log; prints `ok NAME (time)`,
# or `FAIL NAME (time)` and the log.
check() {
  local name=$1 log start seconds
  shift
  log="$work/log.$((passed + failed))"
  start=$EPOCHREALTIME
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    echo "ok   $name (${seconds}s)"
  else
    failed=$((failed + 1))
    seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    echo "FAIL $name (${seconds}s)"
    sed 's/^/     /' "$log"
  fi
}

# ---------------------------------------------------------------- rendering and PKI

# render LABEL TOPOLOGY_FILE: writes every host's files to $work/LABEL/<host>/<path>, with
# settings that put each host's pkiDir, secretsDir, runDir and stateDir under
# $work/LABEL/<host>, and give the i-th host its own loopback ports (application 18000+i,
# stub_status 19000+i) so that every web host's nginx can run in the one scratch namespace.
render() {
  local label=$1 topology=$2 root="$work/$1" json host path
  mkdir -p "$root"
  json="$root/rendered.json"
  nix-instantiate --eval --strict --json \
    --argstr root "$root" --arg topology "$topology" \
    -E '{ root, topology }:
      let
        hosts = (builtins.fromJSON (builtins.readFile topology)).hosts;
        index = builtins.listToAttrs (builtins.genList (i: {
          name = (builtins.elemAt hosts i).name;
          value = i;
        }) (builtins.length hosts));
      in
      (import ./lib { }).render {
        inherit topology;
        settings = host: {
          pkiDir = "${root}/${host}/pki";
          secretsDir = "${root}/${host}/secrets";
          runDir = "${root}/${host}/run";
          stateDir = "${root}/${host}/state";
          app.port = 18000 + index.${host};
          nginx.stubStatusPort = 19000 + index.${host};
        };
      }' >"$json" || cannot_run "lib.render failed for $topology (error above)"
  while IFS=$'\t' read -r host path; do
    mkdir -p "$(dirname "$root/$host/$path")" "$root/$host/run/haproxy" "$root/$host/state"
    jq -j --arg h "$host" --arg p "$path" '.[$h][$p]' "$json" >"$root/$host/$path"
  done < <(jq -r 'to_entries[] | .key as $h | .value | keys[] | [$h, .] | @tsv' "$json")
}

# leaf CA_DIR PKI_DIR FQDN STEM EKU SAN: one certificate and key, issued by the CA.
leaf() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -CA "$1/ca.pem" -CAkey "$1/ca.key" -subj "/CN=$3" \
    -keyout "$2/$4.key" -out "$2/$4.pem" \
    -addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=critical,digitalSignature" \
    -addext "extendedKeyUsage=$5" -addext "subjectAltName=$6" 2>/dev/null
}

# make_pki LABEL TOPOLOGY_FILE: a throwaway CA and every host's certificates, by role, as
# certtool would issue them (docs/contracts.md, "Certificates"), plus the secrets.
make_pki() {
  local root="$work/$1" topology=$2 domain lb_names host address roles pki fqdn
  local ca="$root/ca"
  mkdir -p "$ca"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=rampart daemon-checks CA" -keyout "$ca/ca.key" -out "$ca/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  domain=$(jq -r .domain "$topology")
  lb_names=$(jq -r '[.publicNames[] | "DNS:" + .] | join(",")' "$topology")
  while IFS=$'\t' read -r host address roles; do
    pki="$root/$host/pki"
    fqdn="$host.$domain"
    mkdir -p "$pki" "$root/$host/secrets"
    cp "$ca/ca.pem" "$pki/ca.pem"
    case " $roles " in *" loadBalancer "*)
      leaf "$ca" "$pki" "$fqdn" https serverAuth "$lb_names,DNS:$fqdn"
      leaf "$ca" "$pki" "$fqdn" backend-client clientAuth "DNS:$fqdn"
      # HAProxy 2.6 reads the key of `crt X.pem` from X.pem.key (contracts.md).
      ln -s https.key "$pki/https.pem.key"
      ln -s backend-client.key "$pki/backend-client.pem.key"
      ;;
    esac
    case " $roles " in *" web "*)
      leaf "$ca" "$pki" "$fqdn" backend serverAuth "DNS:$fqdn,IP:$address"
      ;;
    esac
    case " $roles " in *" databasePrimary "* | *" databaseReplica "*)
      leaf "$ca" "$pki" "$fqdn" mysql serverAuth "DNS:$fqdn,IP:$address"
      leaf "$ca" "$pki" "$fqdn" replication-client clientAuth "DNS:$fqdn"
      ;;
    esac
  done < <(jq -r '.hosts[] | [.name, .address, (.roles | join(" "))] | @tsv' "$topology")
  # One value per secret, the same on every host (a deployment shares them).
  local secret value
  for secret in replication-password app-db-password exporter-db-password failover-db-password; do
    value=$(openssl rand -hex 16)
    for host in $(jq -r '.hosts[].name' "$topology"); do
      printf '%s' "$value" >"$root/$host/secrets/$secret"
    done
  done
}

# hosts_with_role TOPOLOGY_FILE ROLE
hosts_with_role() {
  jq -r --arg role "$2" '.hosts[] | select(.roles | index($role)) | .name' "$1"
}

# ---------------------------------------------------------------- haproxy

haproxy_check() {
  local output
  output=$(haproxy -c -f "$1" 2>&1) || {
    printf '%s\n' "$output"
    return 1
  }
  printf '%s\n' "$output"
  # A warning is a configuration mistake the daemon tolerates; we do not.
  ! grep -q '\[WARNING\]' <<<"$output"
}

check_haproxy() { # LABEL TOPOLOGY_FILE
  local root="$work/$1" host servers webs
  for host in $(hosts_with_role "$2" loadBalancer); do
    check "haproxy -c ($1, $host)" haproxy_check "$root/$host/haproxy/haproxy.cfg"
    # One server per web host in each backend (web, web_writes), in topology order.
    for backend in web web_writes; do
      servers=$(awk -v b="$backend" '$1 == "backend" { in_b = ($2 == b) } in_b && $1 == "server" { print $2 }' "$root/$host/haproxy/haproxy.cfg" | paste -sd' ')
      webs=$(hosts_with_role "$2" web | paste -sd' ')
      check "haproxy $backend servers = web hosts ($1: $webs)" test "$servers" = "$webs"
    done
  done
}

# ---------------------------------------------------------------- nginx

# nginx_main_conf HOST_DIR HOST: the main configuration a runner provides (pid, logs and
# temp paths under HOST_DIR/nginx-main), including the rendered file, plus a stand-in for
# the application on its loopback port that answers with the host's name. Prints the dir.
nginx_main_conf() {
  local dir=$1/nginx-main app_port
  # Every upstream names the same port: the first one says it.
  app_port=$(awk '$1 == "server" && $2 ~ /^127\.0\.0\.1:/ { sub(/;$/, "", $2); sub(/.*:/, "", $2); print $2; exit }' "$1/nginx/rampart.conf")
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<EOF
pid $dir/nginx.pid;
error_log $dir/error.log;
events {}
http {
  access_log off;
  client_body_temp_path $dir/tmp/client_body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  include $1/nginx/rampart.conf;
  server {
    listen 127.0.0.1:$app_port;
    location / {
      return 200 "$2\n";
    }
  }
}
EOF
  echo "$dir"
}

nginx_check() { # HOST_DIR HOST ADDRESS
  local dir
  dir=$(nginx_main_conf "$1" "$2")
  # nginx -t binds the listening sockets: the host's address exists only in the scratch
  # namespace.
  ip -n "$netns" addr replace "$3/32" dev lo
  ip netns exec "$netns" nginx -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" || {
    cat "$dir/error.log"
    return 1
  }
}

check_nginx() { # LABEL TOPOLOGY_FILE
  local host address
  for host in $(hosts_with_role "$2" web); do
    address=$(jq -r --arg h "$host" '.hosts[] | select(.name == $h) | .address' "$2")
    check "nginx -t ($1, $host)" nginx_check "$work/$1/$host" "$host" "$address"
  done
}

# ---------------------------------------------------------------- nftables

nft_check() { # RULESET TOPOLOGY_FILE HOST
  local in_ns=(ip netns exec "$netns")
  "${in_ns[@]}" nft -c -f "$1"
  # Loading twice proves the file replaces its table instead of adding to it.
  "${in_ns[@]}" nft -f "$1"
  "${in_ns[@]}" nft -f "$1"
  local listed expected got
  listed=$("${in_ns[@]}" nft list table inet rampart)
  "${in_ns[@]}" nft delete table inet rampart
  # Exactly one accept rule per policy rule whose `to` names this host.
  expected=$(jq -r --arg h "$3" '
    [.hosts[] | select(.name == $h)][0] as $host
    | [.policy | to_entries[]
       | select(any(.value.to[]; . == "*" or . == $host.name
                    or (startswith("role:") and (.[5:] as $r | $host.roles | index($r)))))
       | "policy[\(.key)] \(.value.service)"] | sort | join(",")' "$2")
  got=$(grep -o 'comment "policy\[[0-9]*\] [A-Za-z0-9]*"' <<<"$listed" | sed 's/^comment "//; s/"$//' | sort | paste -sd, -)
  [[ "$got" == "$expected" ]] || {
    echo "policy rules loaded: $got"
    echo "policy rules expected: $expected"
    return 1
  }
}

check_nftables() { # LABEL TOPOLOGY_FILE
  local host
  for host in $(jq -r '.hosts[].name' "$2"); do
    check "nft -c, load twice ($1, $host)" nft_check "$work/$1/$host/nftables/ruleset.nft" "$2" "$host"
  done
}

# ---------------------------------------------------------------- the HTTPS path, running

# The rendered HAProxy and nginx running together in the scratch namespace (every host
# address on its loopback, no firewall): what `-c`/`-t` cannot see, such as the names and
# certificates each side checks.

in_ns() {
  ip netns exec "$netns" "$@"
}

# wait_for TRIES COMMAND...: retries every 0.1 s.
wait_for() {
  local tries=$1 i
  shift
  for ((i = 0; i < tries; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  "$@"
}

tcp_open() { # ADDRESS PORT
  in_ns bash -c "exec 3<>/dev/tcp/$1/$2"
}

# start_https_path LABEL TOPOLOGY_FILE: every web host's nginx, then HAProxy.
start_https_path() {
  local root="$work/$1" host address dir lb
  while IFS=$'\t' read -r host address; do
    ip -n "$netns" addr replace "$address/32" dev lo
    dir=$(nginx_main_conf "$root/$host" "$host")
    # `ip netns exec` becomes the daemon, so $! is the daemon's pid (not a subshell's).
    ip netns exec "$netns" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' &
    pids+=($!)
    wait_for 50 tcp_open "$address" "$(jq -r '.services.backendHttps.port' "$2")" || {
      cat "$dir/error.log"
      return 1
    }
  done < <(jq -r '.hosts[] | select(.roles | index("web")) | [.name, .address] | @tsv' "$2")
  lb=$(hosts_with_role "$2" loadBalancer)
  ip -n "$netns" addr replace "$(address_of "$2" "$lb")/32" dev lo
  ip netns exec "$netns" haproxy -f "$root/$lb/haproxy/haproxy.cfg" >"$root/$lb/haproxy.log" 2>&1 &
  pids+=($!)
  wait_for 50 test -S "$root/$lb/run/haproxy/stats.sock" || {
    cat "$root/$lb/haproxy.log"
    return 1
  }
}

address_of() { # TOPOLOGY_FILE HOST
  jq -r --arg h "$2" '.hosts[] | select(.name == $h) | .address' "$1"
}

# backends_up STATS_URL N: all N servers of backend `web` UP after a passed layer-7 check.
backends_up() {
  local csv
  csv=$(in_ns curl -sS --max-time 2 "$1;csv")
  [[ $(awk -F, '$1 == "web" && $2 != "BACKEND" && $18 == "UP" && $37 == "L7OK"' <<<"$csv" | wc -l) == "$2" ]] || {
    awk -F, '$1 == "web" { print $2, $18, $37 }' <<<"$csv"
    return 1
  }
}

# https_round_robin LABEL TOPOLOGY_FILE: 2N requests through the load balancer are served by
# every web host twice, in topology order; HSTS on every answer.
https_round_robin() {
  local root="$work/$1" lb name address port served expected headers i
  lb=$(hosts_with_role "$2" loadBalancer)
  name=$(jq -r '.publicNames[0]' "$2")
  address=$(address_of "$2" "$lb")
  port=$(jq -r '.services.https.port' "$2")
  served=()
  for ((i = 0; i < 2 * $(hosts_with_role "$2" web | wc -l); i++)); do
    headers="$root/headers.$i"
    served+=("$(in_ns curl -sS --max-time 5 --cacert "$root/$lb/pki/ca.pem" --resolve "$name:$port:$address" \
      -D "$headers" "https://$name:$port/")")
    grep -qi '^strict-transport-security: max-age=[0-9]\{8,\}' "$headers" || {
      echo "no HSTS of a year or more in:"
      cat "$headers"
      return 1
    }
  done
  expected=$(hosts_with_role "$2" web)
  expect_equal "hosts that served the requests" "$(printf '%s\n' "${served[@]}" | sort | uniq -c | awk '{ print $1 }' | sort -u)" 2
  expect_equal "hosts that served" "$(printf '%s\n' "${served[@]}" | sort -u)" "$(sort <<<"$expected")"
}

# http_redirects TOPOLOGY_FILE: plain HTTP answers 301 to the same URL over HTTPS.
http_redirects() {
  local lb name address status
  lb=$(hosts_with_role "$1" loadBalancer)
  name=$(jq -r '.publicNames[0]' "$1")
  address=$(address_of "$1" "$lb")
  status=$(in_ns curl -sS --max-time 5 --resolve "$name:80:$address" -o /dev/null \
    -w '%{http_code} %{redirect_url}' "http://$name/some/path?q=1")
  expect_equal "answer to plain HTTP" "$status" "301 https://$name/some/path?q=1"
}

# old_tls_refused TOPOLOGY_FILE: TLS 1.1 is refused even by a client that would accept it;
# TLS 1.2 is accepted.
old_tls_refused() {
  local lb address
  lb=$(hosts_with_role "$1" loadBalancer)
  address=$(address_of "$1" "$lb")
  if in_ns openssl s_client -connect "$address:443" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null >/dev/null 2>&1; then
    echo "a TLS 1.1 handshake succeeded"
    return 1
  fi
  in_ns openssl s_client -connect "$address:443" -tls1_2 </dev/null >/dev/null 2>&1
}

# backend_mtls LABEL TOPOLOGY_FILE: nginx's backend listener serves the load balancer's
# client certificate only: none is refused, another rampart certificate gets 403.
backend_mtls() {
  local root="$work/$1" lb web address fqdn port url status
  lb=$(hosts_with_role "$2" loadBalancer)
  web=$(hosts_with_role "$2" web | head -1)
  address=$(address_of "$2" "$web")
  fqdn="$web.$(jq -r .domain "$2")"
  port=$(jq -r '.services.backendHttps.port' "$2")
  url="https://$fqdn:$port/"
  local client=(in_ns curl -sS --max-time 5 -o /dev/null -w '%{http_code}' --cacert "$root/$web/pki/ca.pem" --resolve "$fqdn:$port:$address")
  status=$("${client[@]}" "$url" 2>/dev/null || true)
  [[ "$status" != 200 ]] || {
    echo "answered 200 without a client certificate"
    return 1
  }
  if [[ -f "$root/$web/pki/replication-client.pem" ]]; then
    status=$("${client[@]}" --cert "$root/$web/pki/replication-client.pem" --key "$root/$web/pki/replication-client.key" "$url")
    expect_equal "answer to another host's client certificate" "$status" 403
  fi
  status=$("${client[@]}" --cert "$root/$lb/pki/backend-client.pem" --key "$root/$lb/pki/backend-client.key" "$url")
  expect_equal "answer to the load balancer's client certificate" "$status" 200
}

# exporter_answers TOPOLOGY_FILE: the Prometheus exporter answers on the load balancer's
# address (the scrape comes from the monitoring host; here, from the same address).
exporter_answers() {
  local lb address port
  lb=$(hosts_with_role "$1" loadBalancer)
  address=$(address_of "$1" "$lb")
  port=$(jq -r '.services.haproxyExporter.port' "$1")
  local metrics
  metrics=$(in_ns curl -sS --max-time 5 --interface "$address" "http://$address:$port/metrics")
  grep -q '^haproxy_process_' <<<"$metrics"
}

check_https_path() { # LABEL TOPOLOGY_FILE
  local lb address port webs
  lb=$(hosts_with_role "$2" loadBalancer)
  address=$(address_of "$2" "$lb")
  port=$(jq -r '.services.haproxyExporter.port' "$2")
  webs=$(hosts_with_role "$2" web | wc -l)
  check "haproxy and nginx start with the rendered files ($1)" start_https_path "$1" "$2"
  check "all $webs backends UP over verified mutual TLS ($1)" wait_for 60 backends_up "http://$address:$port/stats" "$webs"
  check "HTTPS round robin over every web host, HSTS ($1)" https_round_robin "$1" "$2"
  check "HTTP redirects to HTTPS ($1)" http_redirects "$2"
  check "TLS 1.1 refused, TLS 1.2 accepted ($1)" old_tls_refused "$2"
  check "backend listener requires the load balancer's certificate ($1)" backend_mtls "$1" "$2"
  check "HAProxy's Prometheus exporter answers ($1)" exporter_answers "$2"
  stop_started
}

# stop_started: ends every daemon started so far (they would hold the next run's ports).
stop_started() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
  done
  pids=()
}

# ---------------------------------------------------------------- MariaDB

# free_port: a TCP port nothing listens on, from a random start.
free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 20000))
    if [[ -z "$(ss -Htln "sport = :$port")" ]]; then
      echo "$port"
      return 0
    fi
  done
  cannot_run "no free TCP port found"
}

# start_mariadb HOST_DIR: mariadbd with the rendered settings, plus what the runner adds.
start_mariadb() {
  local dir=$1
  mkdir -p "$dir/run"
  # One fresh system database, copied for every server: installing takes seconds.
  if [[ ! -d "$work/mariadb-template" ]]; then
    mariadb-install-db --no-defaults --user=root --datadir="$work/mariadb-template" \
      --auth-root-authentication-method=socket --skip-test-db >"$work/mariadb-install.log" 2>&1 ||
      cannot_run "mariadb-install-db failed: $(tail -5 "$work/mariadb-install.log")"
  fi
  cp -a "$work/mariadb-template" "$dir/data"
  cat >"$dir/my.cnf" <<EOF
!include $dir/mariadb/rampart.cnf
[mysqld]
user = root
datadir = $dir/data
socket = $dir/run/mysqld.sock
pid-file = $dir/run/mysqld.pid
log-error = $dir/mysqld.err
EOF
  mariadbd --defaults-file="$dir/my.cnf" &
  pids+=($!)
  local i
  for i in $(seq 1 100); do
    mariadb-admin --socket="$dir/run/mysqld.sock" ping >/dev/null 2>&1 && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "mariadbd did not come up (log follows)"
  cat "$dir/mysqld.err"
  return 1
}

# sql HOST_DIR STATEMENTS: as root over the socket, tab-separated, no headers.
sql() {
  mariadb --socket="$1/run/mysqld.sock" -N -B -e "$2"
}

# bootstrap HOST_DIR: the rendered SQL with the placeholders replaced in a pipe.
bootstrap() {
  local s=$1/secrets
  sed -e "s/@REPLICATION_PASSWORD@/$(cat "$s/replication-password")/g" \
    -e "s/@APP_DB_PASSWORD@/$(cat "$s/app-db-password")/g" \
    -e "s/@EXPORTER_DB_PASSWORD@/$(cat "$s/exporter-db-password")/g" \
    -e "s/@FAILOVER_DB_PASSWORD@/$(cat "$s/failover-db-password")/g" \
    "$1/mariadb/bootstrap.sql" | mariadb --socket="$1/run/mysqld.sock"
}

expect_equal() { # WHAT GOT EXPECTED
  [[ "$2" == "$3" ]] || {
    echo "$1: got \"$2\", expected \"$3\""
    return 1
  }
}

# expect_refused DESCRIPTION CLIENT-ARGS...: the client must fail to log in.
expect_refused() {
  local what=$1 output
  shift
  if output=$(mariadb "$@" -N -B -e 'SELECT 1' 2>&1); then
    echo "$what: logged in, expected to be refused"
    return 1
  fi
  echo "$what: refused as expected: $output"
}

primary_settings() { # DIR
  expect_equal "server settings" \
    "$(sql "$1" 'SELECT @@have_ssl, @@require_secure_transport, @@log_bin, @@binlog_format, @@gtid_strict_mode, @@read_only, @@rpl_semi_sync_master_enabled, @@rpl_semi_sync_master_wait_point')" \
    $'YES\t1\t1\tROW\t1\t0\t1\tAFTER_SYNC'
}

replica_settings() { # DIR
  # Semi-sync master on the replica too: it may be promoted (docs/failover.md).
  expect_equal "server settings" \
    "$(sql "$1" 'SELECT @@have_ssl, @@require_secure_transport, @@read_only, @@rpl_semi_sync_slave_enabled, @@rpl_semi_sync_master_enabled')" \
    $'YES\t1\t1\t1\t1'
}

# replica_running DIR: both replication threads run, over TLS, within 10 s.
replica_running() {
  local status i
  for i in $(seq 1 100); do
    status=$(mariadb --socket="$1/run/mysqld.sock" -e 'SHOW SLAVE STATUS\G')
    if grep -q 'Slave_IO_Running: Yes' <<<"$status" && grep -q 'Slave_SQL_Running: Yes' <<<"$status"; then
      grep -q 'Master_SSL_Allowed: Yes' <<<"$status" && grep -q 'Master_SSL_Verify_Server_Cert: Yes' <<<"$status" &&
        grep -q 'Using_Gtid: Slave_Pos' <<<"$status" && return 0
      break
    fi
    sleep 0.1
  done
  printf '%s\n' "$status"
  return 1
}

# replicates PRIMARY_DIR REPLICA_DIR: a write on the primary, acknowledged semi-synchronously,
# is on the replica.
replicates() {
  sql "$1" "CREATE TABLE rampart.visits (seq INT PRIMARY KEY); INSERT INTO rampart.visits VALUES (1), (2), (3);"
  expect_equal "semi-sync on the primary" \
    "$(sql "$1" "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('RPL_SEMI_SYNC_MASTER_STATUS', 'RPL_SEMI_SYNC_MASTER_CLIENTS') ORDER BY VARIABLE_NAME" | paste -sd' ')" \
    "1 ON"
  local i
  for i in $(seq 1 50); do
    [[ "$(sql "$2" 'SELECT COUNT(*) FROM rampart.visits' 2>/dev/null)" == 3 ]] && return 0
    sleep 0.1
  done
  echo "the rows written on the primary did not reach the replica"
  return 1
}

# accounts PRIMARY_DIR REPLICA_DIR PORT PRIMARY_ADDRESS: the bootstrap accounts admit TLS
# clients with the right credentials only. Clients connect from 127.0.0.1, the replica's
# address in the loopback topology, so they use the replica host's accounts.
accounts() {
  local p=$1 r=$2 port=$3 address=$4
  local tcp=(--host="$address" --port="$port")
  local tls=(--ssl --ssl-ca="$r/pki/ca.pem" --ssl-verify-server-cert)
  local repl app
  repl=$(cat "$r/secrets/replication-password")
  app=$(cat "$r/secrets/app-db-password")
  expect_refused "app without TLS" "${tcp[@]}" --skip-ssl -u rampart_app -p"$app"
  mariadb "${tcp[@]}" "${tls[@]}" -u rampart_app -p"$app" -N -B -e 'SELECT COUNT(*) FROM rampart.visits' >/dev/null
  expect_refused "replication without TLS" "${tcp[@]}" --skip-ssl -u rampart_repl -p"$repl"
  expect_refused "replication with TLS but no client certificate" "${tcp[@]}" "${tls[@]}" -u rampart_repl -p"$repl"
  expect_refused "replication with another host's client certificate" "${tcp[@]}" "${tls[@]}" \
    --ssl-cert="$p/pki/replication-client.pem" --ssl-key="$p/pki/replication-client.key" -u rampart_repl -p"$repl"
  mariadb "${tcp[@]}" "${tls[@]}" --ssl-cert="$r/pki/replication-client.pem" --ssl-key="$r/pki/replication-client.key" \
    -u rampart_repl -p"$repl" -N -B -e 'SELECT 1' >/dev/null
  local exporter
  exporter=$(cat "$p/secrets/exporter-db-password")
  mariadb --socket="$p/run/mysqld.sock" -u rampart_exporter -p"$exporter" -N -B -e 'SHOW SLAVE STATUS' >/dev/null
}

# check_mariadb LABEL TOPOLOGY_FILE: the topology's primary and first replica, moved to
# loopback: the primary on 127.42.0.<n>, the replica on 127.0.0.1 (the source address of
# every loopback connection, so its accounts match), MariaDB on a free port.
check_mariadb() {
  local label="$1-loopback" topology="$work/$1-loopback.json" port primary replica address
  port=$(free_port)
  jq --argjson port "$port" '
    .network.cidr = "127.0.0.0/8"
    | del(.lab)
    | (first(.hosts[] | select(.roles | index("databaseReplica"))) | .name) as $replica
    | .hosts |= [to_entries[] | .value + {address: (if .value.name == $replica then "127.0.0.1" else "127.42.0.\(.key + 10)" end)}]
    | .services.mysql.port = $port' "$2" >"$topology"
  primary=$(hosts_with_role "$topology" databasePrimary | head -1)
  replica=$(hosts_with_role "$topology" databaseReplica | head -1)
  address=$(jq -r --arg h "$primary" '.hosts[] | select(.name == $h) | .address' "$topology")
  render "$label" "$topology"
  make_pki "$label" "$topology"
  local p="$work/$label/$primary" r="$work/$label/$replica"

  check "mariadbd starts with the rendered settings ($1, $primary, primary)" start_mariadb "$p"
  check "bootstrap SQL applies ($1, $primary)" bootstrap "$p"
  check "bootstrap SQL applies again ($1, $primary)" bootstrap "$p"
  check "primary settings in effect ($1, $primary)" primary_settings "$p"
  check "mariadbd starts with the rendered settings ($1, $replica, replica)" start_mariadb "$r"
  check "bootstrap SQL applies ($1, $replica)" bootstrap "$r"
  check "replica settings in effect ($1, $replica)" replica_settings "$r"
  check "replication runs over verified TLS with GTID ($1)" replica_running "$r"
  check "a write on the primary reaches the replica, semi-sync on ($1)" replicates "$p" "$r"
  check "accounts: TLS and the right client certificate required ($1)" accounts "$p" "$r" "$port" "$address"
}

# ---------------------------------------------------------------- main

# The scratch namespace for nft and nginx: nothing is sent from or to it.
ip netns add "$netns" || cannot_run "cannot create network namespace $netns (root needed)"
ip -n "$netns" link set lo up

shipped="$repo/hosts/topology.json"
four_web="$repo/tests/topologies/good/four-web.json"
for topology in shipped:"$shipped" four-web:"$four_web"; do
  label=${topology%%:*}
  file=${topology#*:}
  render "$label" "$file"
  make_pki "$label" "$file"
  check_haproxy "$label" "$file"
  check_nginx "$label" "$file"
  check_nftables "$label" "$file"
  check_https_path "$label" "$file"
done
check_mariadb shipped "$shipped"

echo "daemon-checks: $passed passed, $failed failed"
((failed == 0))
