#!/usr/bin/env bash
# certtool verify (all checks) against openssl verify, over one CA and N P-256 leaves
# made by openssl, timed by hyperfine in the same run. Goal (issue #4): at least 5x
# faster than batch openssl. Not part of CI; run it by hand:
#   bash bench/certtool-vs-openssl.sh [N=1000] [RUNS=5]
# The certificates are kept in bench/out/ and reused while N stays the same.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
runs=${2:-5}
out=bench/out/certtool-vs-openssl
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
for tool in openssl hyperfine; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing; run scripts/install.sh" >&2; exit 2; }
done

cargo build --release --quiet -p certtool
certtool=$CARGO_TARGET_DIR/release/certtool

make_set() {
  rm -rf "$out"
  mkdir -p "$out/leaves"
  echo "bench: making a CA and $n P-256 leaves with openssl"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$out/ca.key" -subj "/CN=bench CA" -days 365 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$out/ca.pem"
  printf '%s\n' \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" \
    > "$out/leaf.ext"
  seq 1 "$n" | xargs -P "$(nproc)" -I{} bash -c 'make_leaf "$@"' _ {} "$out"
}
make_leaf() {
  local i=$1 dir=$2
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/leaves/leaf$i.key" -subj "/CN=leaf$i.bench.internal" 2>/dev/null |
    openssl x509 -req -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -days 90 -sha256 \
      -set_serial "0x$(openssl rand -hex 16)" \
      -extfile <(cat "$dir/leaf.ext"; echo "subjectAltName=DNS:leaf$i.bench.internal") \
      -out "$dir/leaves/leaf$i.pem" 2>/dev/null
  chmod 600 "$dir/leaves/leaf$i.key"
}
export -f make_leaf
# No leaves directory yet (first run) counts as none made.
have=$( (find "$out/leaves" -name '*.pem' 2>/dev/null || true) | wc -l)
[ "$have" -eq "$n" ] && [ -f "$out/ca.pem" ] || make_set

# Both tools must accept the set before their times mean anything.
"$certtool" verify --ca "$out/ca.pem" --purpose server "$out/leaves" > "$out/certtool.txt"
openssl verify -CAfile "$out/ca.pem" "$out"/leaves/*.pem > "$out/openssl.txt"
echo "bench: certtool: $(tail -1 "$out/certtool.txt")"
echo "bench: openssl: $(grep -c ': OK$' "$out/openssl.txt") of $n OK"

hyperfine --style basic --warmup 1 --runs "$runs" --export-csv "$out/times.csv" \
  -n certtool "$certtool verify --ca $out/ca.pem --purpose server $out/leaves" \
  -n openssl-batch "openssl verify -CAfile $out/ca.pem $out/leaves/*.pem" \
  -n openssl-per-cert "for f in $out/leaves/*.pem; do openssl verify -CAfile $out/ca.pem \$f >/dev/null; done"

# Wall-clock ratios are the goal; CPU time (user + system) is printed too, because on a
# shared machine the wall clock also measures the neighbours.
awk -F, -v n="$n" '
  NR > 1 { mean[$1] = $2; cpu[$1] = $5 + $6 }
  END {
    c = mean["certtool"]; b = mean["openssl-batch"]; p = mean["openssl-per-cert"]
    printf "\n%d certificates: certtool %.1f ms, openssl batch %.1f ms, openssl per certificate %.1f ms\n", n, c * 1000, b * 1000, p * 1000
    printf "certtool vs openssl verify (batch):              %.1fx faster (goal: at least 5x)\n", b / c
    printf "certtool vs one openssl process per certificate: %.1fx faster\n", p / c
    printf "CPU time: certtool %.1f ms, openssl batch %.1f ms (%.1fx less), per certificate %.1f ms (%.1fx less)\n", cpu["certtool"] * 1000, cpu["openssl-batch"] * 1000, cpu["openssl-batch"] / cpu["certtool"], cpu["openssl-per-cert"] * 1000, cpu["openssl-per-cert"] / cpu["certtool"]
  }' "$out/times.csv"
