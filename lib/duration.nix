# lib/duration.nix: Prometheus durations (`15s`, `2m`, `500ms`) on builtins only.
#
# The monitoring renderers derive some durations from others (a `rate()` window of four
# scrape intervals, `for:` capped for the lab), so they need them as numbers and back.
# One unit per value, as every duration in rampart's settings is written; Prometheus
# itself also accepts compound forms (`1h30m`), which `parse` rejects with a message
# saying so.
#
# Type:
#   parse :: string -> int            milliseconds; throws on anything else
#   isValid :: any -> bool
#   format :: int -> string           milliseconds as the largest exact unit
#
# Example:
#   parse "2m" => 120000
#   format 8000 => "8s"
let
  inherit (builtins) elemAt fromJSON isString match toJSON;

  unitMs = {
    ms = 1;
    s = 1000;
    m = 60000;
    h = 3600000;
    d = 86400000;
    w = 604800000;
  };

  parts = value:
    if isString value
    then match "(0|[1-9][0-9]{0,8})(ms|s|m|h|d|w)" value
    else null;

  mod = a: b: a - (a / b) * b;
in {
  isValid = value: parts value != null;

  parse = value: let
    m = parts value;
  in
    if m == null
    then throw "rampart.lib.duration: ${toJSON value} is not a duration (expected a whole number and one unit of ms, s, m, h, d, w, such as \"15s\")"
    else fromJSON (elemAt m 0) * unitMs.${elemAt m 1};

  format = ms: let
    unit =
      if ms == 0
      then "s"
      else if mod ms unitMs.w == 0
      then "w"
      else if mod ms unitMs.d == 0
      then "d"
      else if mod ms unitMs.h == 0
      then "h"
      else if mod ms unitMs.m == 0
      then "m"
      else if mod ms unitMs.s == 0
      then "s"
      else "ms";
  in "${toString (ms / unitMs.${unit})}${unit}";
}
