#!/usr/bin/env bash
# Installs everything rampart's commands need on a fresh Debian 12 machine, as root.
# Safe to run again: it installs only what is missing.
set -euo pipefail

# Debian's real daemons are what the lab runs; nix-bin evaluates the pure-Nix renderers.
apt_packages=(
  nix-bin
  # mariadb-backup: the fault suite rebuilds a host left diverged from its leader's copy
  haproxy nginx mariadb-server mariadb-client mariadb-backup
  prometheus prometheus-alertmanager prometheus-node-exporter prometheus-blackbox-exporter
  prometheus-nginx-exporter prometheus-mysqld-exporter
  nftables iproute2 tcpdump openssl curl ca-certificates openssh-server
  # etcd: the consensus store (a member on every lab host) and etcdctl for operators;
  # protoc builds the etcd-client crate's gRPC code (rampart-consensus); its protos import
  # Google's well-known types (google/protobuf/descriptor.proto, struct.proto), which
  # Debian ships in libprotobuf-dev, not with protoc (a fresh root's build failed there).
  etcd-server etcd-client protobuf-compiler libprotobuf-dev
  wrk nmap hyperfine jq
  python3
  # systemd-socket-activate: the application's socket-activation test
  systemd
  # Flakes read a git checkout through git; cargo links with cc, and aws-lc-sys compiles C.
  git gcc libc6-dev
  # /etc/protocols and /etc/services: nft resolves `ipv6-icmp` there. A minimal Debian
  # (debootstrap minbase, container images) lacks them.
  netbase
  # reach's TLS probes link Debian's libssl (the openssl crate); testssl.sh is the
  # independent scanner of the lab's TLS profile scenarios.
  libssl-dev pkg-config testssl.sh
)
deadnix_version=1.3.1

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install: apt packages: ${missing[*]}"
  apt-get update -qq
  # Package scripts must not start the daemons on the machine itself: the lab starts its
  # own copies inside network namespaces.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null; then
  echo "install: cargo is missing; this machine kind ships a Rust toolchain (rustup)" >&2
  exit 2
fi
rustup component add clippy rustfmt >/dev/null 2>&1 || true
if ! deadnix --version 2>/dev/null | grep -q "$deadnix_version"; then
  echo "install: deadnix $deadnix_version (crates.io)"
  cargo install --locked --version "$deadnix_version" deadnix
fi
