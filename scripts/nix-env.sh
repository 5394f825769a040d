# scripts/nix-env.sh: the Nix settings every rampart script uses. Source it, don't run it:
#   source scripts/nix-env.sh
# The settings themselves live in scripts/nix.conf, which the Rust tools embed too
# (tools/crates/nix), so a script and a tool can never disagree about them.
# shellcheck shell=bash

rampart_nix_conf="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/nix.conf"
# NIX_CONFIG adds to (and overrides) the user's nix.conf; it does not replace it.
NIX_CONFIG="$(cat "$rampart_nix_conf")${NIX_CONFIG:+
$NIX_CONFIG}"
export NIX_CONFIG
unset rampart_nix_conf
