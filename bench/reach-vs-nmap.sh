#!/usr/bin/env bash
# bench/reach-vs-nmap.sh: reach against Debian's nmap from the `outside` vantage, in the
# same run, on the same namespace: open (listener), closed (reject with tcp reset) and
# filtered (drop) ports, plus one undeclared listener that the firewall admits.
#
# 1. The full sweep (issue #15): `reach check --only ports,sweep` — all 65,535 TCP ports
#    of ALL the topology's hosts, judged — against a tuned nmap SYN scan of ONE host,
#    `nmap -sS -p- -T4 --min-rate 10000 --max-retries 1`. Goal: reach is faster.
# 2. The policy matrix (issue #5): `reach check --only ports` against `nmap -sT -Pn` over
#    the same hosts and ports. Goal: < 2 s.
#
# All traffic stays inside two namespaces this script creates (target: every host
# address of the topology; vantage: the lab's `outside` address); both are removed on
# exit, also on failure. Usage: bash bench/reach-vs-nmap.sh [RUNS] (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
topology=hosts/topology.json
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --release --quiet -p reach
reach=$CARGO_TARGET_DIR/release/reach

ns="rbn$$"
target="$ns-t"
vantage="$ns-v"
pids=()
work=$(mktemp -d)
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  ip netns del "$target" 2>/dev/null || true
  ip netns del "$vantage" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# openssl s_server stops at end of input: a FIFO this shell holds open keeps its stdin
# open without a helper process.
mkfifo "$work/hold"
exec 3<>"$work/hold"

prefix=$(jq -r '.network.cidr | split("/")[1]' "$topology")
outside=$(jq -r '.lab.outside' "$topology")
mapfile -t addresses < <(jq -r '.hosts[].address' "$topology")

ip netns add "$target"
ip netns add "$vantage"
ip -n "$target" link set lo up
ip -n "$vantage" link set lo up
ip link add veth0 netns "$target" type veth peer name veth0 netns "$vantage"
for a in "${addresses[@]}"; do ip -n "$target" addr add "$a/$prefix" dev veth0; done
ip -n "$vantage" addr add "$outside/$prefix" dev veth0
ip -n "$target" link set veth0 up
ip -n "$vantage" link set veth0 up

# Everything dropped first: one reach run lists the (host, port, expected) matrix.
ip netns exec "$target" nft -f - <<'NFT'
table inet bench {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iif lo accept
  }
}
NFT
matrix=$(ip netns exec "$vantage" "$reach" check --topology "$topology" --from outside \
  --only ports --timeout 200ms --json || true)
address_of() { jq -r --arg h "$1" '.hosts[] | select(.name == $h) | .address' "$topology"; }

# Allowed ports get a listener and an accept rule; the first forbidden one a reset;
# everything else stays dropped (filtered).
rules=""
closed_done=""
ports=()
while read -r host port expected; do
  addr=$(address_of "$host")
  ports+=("$port")
  if [ "$expected" = open ]; then
    rules+="add rule inet bench input ip daddr $addr tcp dport $port accept"$'\n'
    ip netns exec "$target" openssl s_server -nocert -quiet \
      -accept "$addr:$port" <"$work/hold" >/dev/null 2>&1 &
    pids+=($!)
  elif [ -z "$closed_done" ]; then
    rules+="add rule inet bench input ip daddr $addr tcp dport $port reject with tcp reset"$'\n'
    closed_done=1
  fi
done < <(jq -r '.checks[] | "\(.target) \(.probe | split("/")[0]) \(.expected)"' <<<"$matrix")
# The undeclared service both tools must find: web1:5555, admitted by the firewall.
stray_addr=$(address_of web1)
stray_port=5555
rules+="add rule inet bench input ip daddr $stray_addr tcp dport $stray_port accept"$'\n'
ip netns exec "$target" openssl s_server -nocert -quiet \
  -accept "$stray_addr:$stray_port" <"$work/hold" >/dev/null 2>&1 &
pids+=($!)
ip netns exec "$target" nft -f - <<<"$rules"
sleep 0.5 # let the listeners bind

port_list=$(printf '%s\n' "${ports[@]}" | sort -nu | paste -sd, -)
probes=$(jq '.checks | length' <<<"$matrix")

time_ms() { # prints the wall time of "$@" in milliseconds
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>&1 || true
  end=$(date +%s%N)
  echo $(((end - start) / 1000000))
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
reach_check() { ip netns exec "$vantage" "$reach" check --topology "$topology" --from outside "$@"; }

# 1. Full sweep: reach over every host against nmap over one (web1, where the stray is).
nmap_syn=(nmap -sS -p- -T4 --min-rate 10000 --max-retries 1 -Pn -n)
echo "reach-vs-nmap (sweep): reach check --only ports,sweep over ${#addresses[@]} hosts × 65535 ports; ${nmap_syn[*]} $stray_addr (1 host); $runs runs each"
sweep_ms=()
syn_ms=()
for _ in $(seq "$runs"); do
  sweep_ms+=("$(time_ms reach_check --only ports,sweep)")
  syn_ms+=("$(time_ms ip netns exec "$vantage" "${nmap_syn[@]}" "$stray_addr")")
done
# Both must have found the stray listener: the verdict lines of the last runs.
reach_found=$({ reach_check --only ports,sweep --json || true; } | jq -r '.checks[] | select(.check == "sweep" and .status == "fail") | "\(.target):\(.probe)"' | paste -sd' ' -)
nmap_found=$(ip netns exec "$vantage" "${nmap_syn[@]}" -oG - "$stray_addr" | { grep -oE '[0-9]+/open' || true; } | paste -sd' ' -)
echo "reach found undeclared: ${reach_found:-nothing}; nmap found open on $stray_addr: ${nmap_found:-nothing}"
r=$(median "${sweep_ms[@]}")
n=$(median "${syn_ms[@]}")
echo "reach check --only ports,sweep (${#addresses[@]} hosts): median ${r} ms (runs: ${sweep_ms[*]})"
echo "nmap -sS tuned (1 host):              median ${n} ms (runs: ${syn_ms[*]})"
awk -v r="$r" -v n="$n" -v hosts="${#addresses[@]}" 'BEGIN {
  printf "ratio nmap(1 host)/reach(%d hosts): %.1fx; per host: %.1fx\n", hosts, n / r, n * hosts / r
  printf "goal: reach sweeps every host faster than nmap sweeps one: %s\n", (r < n ? "met" : "NOT met")
}'

# 2. The policy matrix alone.
echo "reach-vs-nmap (policy): ${#addresses[@]} hosts, $probes policy probes (nmap: ${#addresses[@]} hosts × ports $port_list), $runs runs each"
reach_ms=()
nmap_ms=()
for _ in $(seq "$runs"); do
  reach_ms+=("$(time_ms reach_check --only ports --timeout 1s)")
  nmap_ms+=("$(time_ms ip netns exec "$vantage" nmap -sT -Pn -n -p "$port_list" "${addresses[@]}")")
done
reach_check --only ports --timeout 1s | tail -1 || true
r=$(median "${reach_ms[@]}")
n=$(median "${nmap_ms[@]}")
echo "reach check --only ports: median ${r} ms (runs: ${reach_ms[*]})"
echo "nmap -sT -Pn:             median ${n} ms (runs: ${nmap_ms[*]})"
awk -v r="$r" -v n="$n" 'BEGIN {
  printf "ratio nmap/reach: %.1fx (reach takes %.0f%% of nmap'"'"'s wall time)\n", n / r, 100 * r / n
  printf "goal: full three-host policy check < 2000 ms: %s\n", (r < 2000 ? "met" : "NOT met")
}'
