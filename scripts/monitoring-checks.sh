#!/usr/bin/env bash
# scripts/monitoring-checks.sh: the monitoring configuration, checked by the daemons' own
# tools from Debian (issue #6, "Verified here").
#
# Renders the monitoring host's files (lib/render/prometheus.nix, alertmanager.nix) for
#   shipped    hosts/topology.json, default settings
#   four-web   tests/topologies/good/four-web.json, default settings
#   lab        hosts/topology.json with the lab's settings (2s scrapes, `for:` at most 6s)
# into a temporary directory, then runs on each profile
#   promtool check config   prometheus.yml (and the rule file it names)
#   promtool check rules    rules.yml
#   amtool check-config     alertmanager.yml
# and the promtool unit tests of lib/tests/prometheus/ (every alert: healthy, just before
# and just after `for`) against the shipped rules, lab.test.yml against the lab's.
#
# Then the metric names: Debian's daemons and exporters run on 127.0.0.1 (ports picked
# free, everything stopped on exit) and every metric the rules read must be among what
# they serve:
#   haproxy     HAProxy 2.6's built-in exporter, frontends named as the rules expect
#   nginx       nginx stub_status + prometheus-nginx-exporter
#   mysqld      a MariaDB primary and a semi-synchronous GTID replica + an exporter on each
#   prometheus  Prometheus itself, evaluating the rendered rules (no evaluation may fail)
#   node        node exporter's textfile collector reading the examples of
#               docs/contracts.md "reach textfile metrics" and "failover agent textfile
#               metrics" (they must parse, and carry the rampart_* names the rules read)
#
# Prints one line per check and closes with `monitoring-checks: N passed, M failed`;
# exit 0 when all passed, 1 when a check failed, 2 when the files could not be rendered
# or a tool is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/nix-env.sh
source scripts/nix-env.sh

for tool in promtool amtool nix prometheus haproxy nginx mariadbd mariadb mariadb-install-db curl \
  prometheus-node-exporter prometheus-nginx-exporter prometheus-mysqld-exporter; do
  if ! command -v "$tool" >/dev/null; then
    echo "monitoring-checks: $tool not found; run scripts/install.sh (it installs the Debian packages)" >&2
    exit 2
  fi
done

work=$(mktemp -d /tmp/rampart-monitoring-checks.XXXXXX)
# Checks run in subshells (their output is captured), so the daemons they start are
# recorded in a file, not a variable, for the cleanup to stop them.
pids=$work/pids
touch "$pids"
# stop_daemons: TERM, up to 5 s to exit (mariadbd shuts down cleanly), then KILL.
stop_daemons() {
  local pid tries alive
  while read -r pid; do
    kill "$pid" 2>/dev/null || true
  done <"$pids"
  for tries in $(seq 50); do
    alive=0
    while read -r pid; do
      kill -0 "$pid" 2>/dev/null && alive=1
    done <"$pids"
    ((alive)) || break
    sleep 0.1
  done
  while read -r pid; do
    kill -KILL "$pid" 2>/dev/null || true
  done <"$pids"
  : >"$pids"
}
cleanup() {
  stop_daemons
  rm -rf "$work"
}
trap cleanup EXIT

lab_settings='{ prometheus = { scrapeInterval = "2s"; maxFor = "6s"; }; alertmanager = { groupWait = "1s"; groupInterval = "5s"; }; }'
files=(prometheus/prometheus.yml prometheus/rules.yml alertmanager/alertmanager.yml)

# render PROFILE TOPOLOGY SETTINGS: writes the profile's files under $work/PROFILE/.
render() {
  local profile=$1 topology=$2 settings=$3 file
  for file in "${files[@]}"; do
    mkdir -p "$work/$profile/$(dirname "$file")"
    if ! nix eval --raw --impure --expr \
      "(import ./lib/tests/prometheus/render.nix { topology = ./$topology; settings = $settings; }).\"$file\"" \
      >"$work/$profile/$file"; then
      echo "monitoring-checks: could not render $file for $profile (error above)" >&2
      exit 2
    fi
  done
}

passed=0
failed=0
# check NAME COMMAND...: runs the command quietly, shows its output only when it fails.
check() {
  local name=$1 output
  shift
  if output=$("$@" 2>&1); then
    passed=$((passed + 1))
    echo "ok    $name"
  else
    failed=$((failed + 1))
    echo "FAIL  $name"
    printf '%s\n' "$output" | sed 's/^/      /'
  fi
}

render shipped hosts/topology.json '{ }'
render four-web tests/topologies/good/four-web.json '{ }'
render lab hosts/topology.json "$lab_settings"

for profile in shipped four-web lab; do
  dir=$work/$profile
  check "promtool check config ($profile)" promtool check config "$dir/prometheus/prometheus.yml"
  check "promtool check rules ($profile)" promtool check rules "$dir/prometheus/rules.yml"
  check "amtool check-config ($profile)" amtool check-config "$dir/alertmanager/alertmanager.yml"
done

# The unit tests name their rule file relative to themselves: put them next to it.
tests=$work/tests
mkdir -p "$tests"
cp lib/tests/prometheus/*.test.yml "$tests/"
cp "$work/shipped/prometheus/rules.yml" "$tests/rules.yml"
cp "$work/lab/prometheus/rules.yml" "$tests/rules-lab.yml"
for test in "$tests"/*.test.yml; do
  check "promtool test rules $(basename "$test")" promtool test rules "$test"
done

# ------------------------------------------------------------ metric names

# start NAME COMMAND...: runs a daemon in the background, output in $work/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 &
  echo $! >>"$pids"
}

# free_port: a loopback TCP port nothing listens on.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    ss -Hltn "sport = :$port" | grep -q . || break
  done
  echo "$port"
}

# scrape URL OUT: waits up to 10 s for the URL to answer, saves the body to OUT.
scrape() {
  local tries
  for tries in $(seq 100); do
    curl -fsS --max-time 2 "$1" -o "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no answer from $1 within 10 s" >&2
  return 1
}

# has_names SCRAPED PREFIX: every metric of the rules starting with PREFIX is in SCRAPED.
has_names() {
  local name missing=()
  for name in $(grep -oE "\\b$2[a-z0-9_]+" "$work/shipped/prometheus/rules.yml" | sort -u); do
    grep -qE "^$name(\\{| )" "$1" || missing+=("$name")
  done
  if ((${#missing[@]} > 0)); then
    echo "not served: ${missing[*]} (served: $(grep -oE "^$2[a-z0-9_]+" "$1" | sort -u | tr '\n' ' '))"
    return 1
  fi
}

# HAProxy with frontends named like the rendered haproxy.cfg's public ones (http, https),
# one backend whose server is down, and the exporter on its own frontend.
names_haproxy() {
  local dir=$work/haproxy closed metrics
  mkdir -p "$dir"
  closed=$(free_port)
  metrics=$(free_port)
  cat >"$dir/haproxy.cfg" <<CFG
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend http
  bind 127.0.0.1:$(free_port)
  default_backend web
frontend https
  bind 127.0.0.1:$(free_port)
  default_backend web
backend web
  server web1 127.0.0.1:$closed check inter 1s
frontend stats
  bind 127.0.0.1:$metrics
  http-request use-service prometheus-exporter if { path /metrics }
CFG
  start haproxy haproxy -db -f "$dir/haproxy.cfg"
  scrape "http://127.0.0.1:$metrics/metrics" "$dir/metrics" && has_names "$dir/metrics" haproxy_
}

names_nginx() {
  local dir=$work/nginx status exporter temp
  mkdir -p "$dir"
  status=$(free_port)
  exporter=$(free_port)
  for temp in client_body proxy fastcgi uwsgi scgi; do
    printf '  %s_temp_path %s;\n' "$temp" "$dir/$temp"
  done >"$dir/temp.conf"
  cat >"$dir/nginx.conf" <<CFG
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events {}
http {
  access_log off;
  include $dir/temp.conf;
  server {
    listen 127.0.0.1:$status;
    location = /stub_status { stub_status; }
  }
}
CFG
  start nginx nginx -c "$dir/nginx.conf" -e "$dir/error.log"
  scrape "http://127.0.0.1:$status/stub_status" "$dir/stub_status" || return 1
  start nginx-exporter prometheus-nginx-exporter -nginx.scrape-uri="http://127.0.0.1:$status/stub_status" \
    -web.listen-address="127.0.0.1:$exporter"
  scrape "http://127.0.0.1:$exporter/metrics" "$dir/metrics" && has_names "$dir/metrics" nginx_
}

# mariadb NAME PORT EXTRA...: a MariaDB server on 127.0.0.1:PORT from a copy of one
# installed data directory.
mariadb_server() {
  local name=$1 port=$2 tries
  shift 2
  cp -a "$work/mysql/template" "$work/mysql/$name"
  start "mariadbd-$name" mariadbd --no-defaults --user=root --datadir="$work/mysql/$name" \
    --socket="$work/mysql/$name.sock" --pid-file="$work/mysql/$name.pid" --port="$port" \
    --bind-address=127.0.0.1 --skip-name-resolve --log-bin=binlog --gtid-strict-mode=ON "$@"
  for tries in $(seq 300); do
    mariadb --no-defaults -uroot --socket="$work/mysql/$name.sock" -e 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "mariadbd $name did not start within 30 s: $(tail -5 "$work/mariadbd-$name.log")"
  return 1
}

names_mysqld() {
  local dir=$work/mysql sql primary replica tries e1 e2
  mkdir -p "$dir"
  mariadb-install-db --no-defaults --user=root --auth-root-authentication-method=normal \
    --skip-test-db --datadir="$dir/template" >"$dir/install.log" 2>&1 || {
    cat "$dir/install.log"
    return 1
  }
  primary=$(free_port)
  replica=$(free_port)
  mariadb_server primary "$primary" --server-id=1 --rpl-semi-sync-master-enabled=ON || return 1
  mariadb_server replica "$replica" --server-id=2 --read-only=ON --rpl-semi-sync-slave-enabled=ON || return 1
  sql() { mariadb --no-defaults -uroot --socket="$dir/$1.sock" -N -e "$2"; }
  sql primary "SET sql_log_bin = 0; CREATE USER repl@'127.0.0.1' IDENTIFIED BY 'repl'; GRANT REPLICATION SLAVE ON *.* TO repl@'127.0.0.1';"
  sql replica "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$primary, MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos; START SLAVE;"
  sql primary "CREATE DATABASE rampart"
  for tries in $(seq 100); do
    [[ $(sql replica "SHOW DATABASES LIKE 'rampart'") == rampart ]] && break
    sleep 0.1
  done
  e1=$(free_port)
  e2=$(free_port)
  DATA_SOURCE_NAME="root@unix($dir/primary.sock)/" start exporter-primary \
    prometheus-mysqld-exporter --web.listen-address="127.0.0.1:$e1"
  DATA_SOURCE_NAME="root@unix($dir/replica.sock)/" start exporter-replica \
    prometheus-mysqld-exporter --web.listen-address="127.0.0.1:$e2"
  scrape "http://127.0.0.1:$e1/metrics" "$dir/primary.metrics" || return 1
  scrape "http://127.0.0.1:$e2/metrics" "$dir/replica.metrics" || return 1
  cat "$dir/primary.metrics" "$dir/replica.metrics" >"$dir/metrics"
  has_names "$dir/metrics" mysql_
}

# Prometheus evaluating the rendered rules every second, with an Alertmanager that does
# not answer (so the notification counters exist).
names_prometheus() {
  local dir=$work/prometheus port tries
  mkdir -p "$dir"
  port=$(free_port)
  cp "$work/shipped/prometheus/rules.yml" "$dir/rules.yml"
  cat >"$dir/prometheus.yml" <<CFG
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
  - static_configs:
    - targets: ['127.0.0.1:$(free_port)']
CFG
  start prometheus prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port"
  # The per-Alertmanager counters appear once discovery hands over the static target,
  # about 5 s after the start.
  for tries in $(seq 150); do
    scrape "http://127.0.0.1:$port/metrics" "$dir/metrics" &&
      grep -q '^prometheus_rule_group_iterations_total{.*rampart-reach"} [1-9]' "$dir/metrics" &&
      grep -q '^prometheus_notifications_alertmanagers_discovered 1$' "$dir/metrics" && break
    sleep 0.1
  done
  if grep -E '^prometheus_rule_evaluation_failures_total\{' "$dir/metrics" | grep -qv ' 0$'; then
    echo "rule evaluations failed:"
    grep -E '^prometheus_rule_evaluation_failures_total\{' "$dir/metrics" | grep -v ' 0$'
    return 1
  fi
  has_names "$dir/metrics" prometheus_
}

# The example file of docs/contracts.md, read by node exporter's textfile collector.
names_node() {
  local dir=$work/node port
  mkdir -p "$dir/textfile"
  port=$(free_port)
  sed -n '/^## reach textfile metrics/,/^## /p' docs/contracts.md |
    sed -n '/^```$/,/^```$/p' | sed '1d;$d' >"$dir/textfile/rampart-reach.prom"
  [[ -s $dir/textfile/rampart-reach.prom ]] || {
    echo "no example block found under \"## reach textfile metrics\" in docs/contracts.md"
    return 1
  }
  sed -n '/^## failover agent textfile metrics/,/^## /p' docs/contracts.md |
    sed -n '/^```$/,/^```$/p' | sed '1d;$d' >"$dir/textfile/rampart-failover.prom"
  [[ -s $dir/textfile/rampart-failover.prom ]] || {
    echo "no example block found under \"## failover agent textfile metrics\" in docs/contracts.md"
    return 1
  }
  start node-exporter prometheus-node-exporter --web.listen-address="127.0.0.1:$port" \
    --collector.disable-defaults --collector.textfile --collector.textfile.directory="$dir/textfile"
  scrape "http://127.0.0.1:$port/metrics" "$dir/metrics" || return 1
  grep -q '^node_textfile_scrape_error 0$' "$dir/metrics" || {
    echo "node exporter could not read the example: $(grep -i textfile "$work/node-exporter.log" | tail -3)"
    return 1
  }
  has_names "$dir/metrics" rampart_
}

check "metric names served by HAProxy's exporter" names_haproxy
check "metric names served by the nginx exporter" names_nginx
check "metric names served by the mysqld exporter (primary and replica)" names_mysqld
check "metric names served by Prometheus, rules evaluated without failure" names_prometheus
check "reach and failover textfile examples read by node exporter, rampart_* names" names_node

echo "monitoring-checks: $passed passed, $failed failed"
((failed == 0)) || exit 1
