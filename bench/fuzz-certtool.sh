#!/usr/bin/env bash
# A short cargo-fuzz run over certtool's loading path (tools/certtool/fuzz, target
# `load`). Needs a nightly toolchain and cargo-fuzz; not part of CI.
#   bash bench/fuzz-certtool.sh [SECONDS=60]
set -euo pipefail
cd "$(dirname "$0")/../tools/certtool/fuzz"
seconds=${1:-60}
export PATH="$HOME/.cargo/bin:$PATH"
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain (rustup toolchain install nightly); cargo fuzz needs one" >&2
  exit 2
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# Seed the corpus with real certificates and keys so libFuzzer starts from valid DER/PEM.
mkdir -p corpus/load
if [ -z "$(ls -A corpus/load)" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/k.pem" \
    -subj /CN=seed -days 30 -addext "subjectAltName=DNS:seed.example" -out "$tmp/c.pem" 2>/dev/null
  cp "$tmp/c.pem" corpus/load/cert.pem
  cp "$tmp/k.pem" corpus/load/key.pem
  openssl x509 -in "$tmp/c.pem" -outform DER -out corpus/load/cert.der
fi
# -rss_limit_mb: the loader refuses files over 1 MiB, so memory stays small.
cargo +nightly fuzz run load -- -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048
