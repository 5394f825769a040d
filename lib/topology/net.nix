# lib/topology/net.nix: IPv4 addresses and networks, parsed exactly as the Rust side parses
# them (tools/crates/topology/src/net.rs). Addresses are integers here, so that network
# membership is arithmetic.
let
  inherit (builtins) all bitAnd concatStringsSep elemAt foldl' fromJSON genList head match stringLength;

  mod = a: b: a - (a / b) * b;
  pow2 = n: foldl' (acc: _: acc * 2) 1 (genList (_: null) n);
  maskOf = prefix: 4294967295 - (pow2 (32 - prefix) - 1);

  octet = "(0|[1-9][0-9]?[0-9]?)";
in rec {
  # parseAddress :: string -> int | null; octets are 0-255 without leading zeros. The length
  # guard keeps arbitrary input away from the regex engine.
  #
  # Example: parseAddress "10.0.0.1" => 167772161
  parseAddress = s: let
    m = match "${octet}\\.${octet}\\.${octet}\\.${octet}" s;
    octets = map fromJSON m;
  in
    if stringLength s > 15 || m == null || !(all (o: o <= 255) octets)
    then null
    else foldl' (acc: o: acc * 256 + o) 0 octets;

  # formatAddress :: int -> string, the inverse of parseAddress.
  formatAddress = n: concatStringsSep "." (map (unit: toString (mod (n / unit) 256)) [16777216 65536 256 1]);

  # parseCidr :: string -> { address; prefix; network; canonical; } | null, for
  # `<address>/<0..32>`; `network` is the address with the host bits cleared.
  parseCidr = s: let
    m = match "([0-9.]+)/(0|[1-9][0-9]?)" s;
    address = parseAddress (head m);
    prefix = fromJSON (elemAt m 1);
    network = bitAnd address (maskOf prefix);
  in
    if stringLength s > 18 || m == null || address == null || prefix > 32
    then null
    else {
      inherit address prefix network;
      canonical = "${formatAddress network}/${toString prefix}";
    };

  # inCidr :: cidr -> int -> bool; `cidr` as parseCidr returns it, the address as an integer.
  inCidr = cidr: address: bitAnd address (maskOf cidr.prefix) == cidr.network;
}
