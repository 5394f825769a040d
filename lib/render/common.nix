# lib/render/common.nix: what every renderer in lib/render/ does before it writes text:
# merge the settings over lib/settings.nix, find the host, and check the parts of the
# topology and settings it reads, reporting every problem at once.
#
# A renderer reads `{ topology, settings, host }` where `settings` may be partial (the
# defaults fill the rest; merging twice changes nothing) and `host` is an element of
# `topology.hosts` or its name, so the NixOS modules can call a renderer directly.
#
# Problems are strings `<what is wrong>; <what to do>`; `orThrow` prefixes each with
# `rampart.lib.<component>: ` and throws them all, one per line.
let
  inherit (builtins) attrNames concatStringsSep filter fromJSON head isAttrs isFunction isInt isString match readFile toJSON;
  util = import ../util.nix;
  topologyLib = import ../topology.nix;
  defaults = import ../settings.nix;
  inherit (util) optional hasPrefix;

  # A value as it appears in a message: strings quoted, numbers bare.
  show = value:
    if isFunction value
    then "a function"
    else toJSON value;
in rec {
  inherit show;

  # Mozilla's server-side TLS profiles (lib/tls-profiles.json), which reach reads too.
  tlsProfiles = (fromJSON (readFile ../tls-profiles.json)).profiles;

  /*
  What every TLS endpoint renders from `settings.tls.profile`: the profile's versions,
  TLS 1.2 suites without the DHE ones (they need DH parameters, which rampart does not
  ship; a profile is an upper bound, a server may accept fewer), TLS 1.3 suites and
  key-exchange groups, in the colon-separated form OpenSSL, HAProxy, nginx and MariaDB
  take. HAProxy and nginx use them in both directions of the backend link.

  Type: tls :: settings -> { profile :: string; versions :: [ string ]; minVersion :: string;
                             ciphers12 :: string ("" when the profile has no TLS 1.2);
                             ciphersuites13 :: string; groups :: string; }

  Example: (tls { tls.profile = "modern"; }).versions => [ "TLSv1.3" ]
  */
  tls = settings: let
    p = tlsProfiles.${settings.tls.profile};
  in {
    inherit (settings.tls) profile;
    versions = p.tls_versions;
    minVersion = head p.tls_versions;
    ciphers12 = concatStringsSep ":" (filter (c: !(hasPrefix "DHE-" c)) p.ciphers);
    ciphersuites13 = concatStringsSep ":" p.ciphersuites;
    groups = concatStringsSep ":" p.tls_curves;
  };

  # The TLS profile setting every TLS renderer reads.
  tlsProfile = settings:
    optional (!(isString settings.tls.profile && tlsProfiles ? ${settings.tls.profile}))
    "settings.tls.profile is ${show settings.tls.profile}; expected one of: ${concatStringsSep ", " (attrNames tlsProfiles)}";

  /*
  The first lines of every rendered file: what it is, for which host, where it comes from.

  Type: header :: { comment ? string; what :: string; host :: host; renderer :: string; } -> string

  Example: header { what = "haproxy.cfg"; host = lb; renderer = "haproxy"; }
  => "# haproxy.cfg for lb (10.42.0.10), rendered by rampart from hosts/topology.json.\n# Do not edit: …"
  */
  header = {
    comment ? "#",
    what,
    host,
    renderer,
  }:
    util.concatLines [
      "${comment} ${what} for ${host.name} (${host.address}), rendered by rampart from hosts/topology.json."
      "${comment} Do not edit: change the topology or the settings and render again (lib/render/${renderer}.nix)."
    ];

  /*
  The settings a renderer works with: `settings` merged recursively over lib/settings.nix.

  Type: mergeSettings :: attrs -> attrs

  Example: (mergeSettings { haproxy.retries = 5; }).haproxy.maxConnections => 4096
  */
  mergeSettings = settings:
    if isAttrs settings
    then util.recursiveUpdate defaults settings
    else throw "rampart.lib.render: settings is ${show settings}; expected an attribute set (or, for lib.render, a function from host name to one)";

  /*
  A renderer from its parts: on a host it applies to, its files, once every problem the
  `problems` function finds has been ruled out (else it throws them all); elsewhere `{ }`.
  Settings are merged over the defaults and `host` may be a name, so the NixOS modules can
  call the result directly.

  Type: renderer :: { component :: string; appliesTo :: host -> bool;
                      problems :: topology -> settings -> [ string ];
                      files :: topology -> settings -> host -> attrs; }
                 -> ({ topology; settings; host; } -> attrs)

  Example: renderer { component = "haproxy"; appliesTo = h: hasRole h "loadBalancer"; … }
  */
  renderer = {
    component,
    appliesTo,
    problems,
    files,
  }: {
    topology,
    settings,
    host,
  }: let
    self = resolveHost topology host;
    merged = mergeSettings settings;
  in
    if appliesTo self
    then orThrow component (problems topology merged) (files topology merged self)
    else {};

  /*
  The host a renderer was called for, as an element of `topology.hosts`.

  Type: resolveHost :: topology -> (host | string) -> host
  */
  resolveHost = topology: host:
    if isString host
    then topologyLib.hostByName topology host
    else host;

  /*
  `value` when `problems` is empty; otherwise throws every problem, one per line, each
  prefixed with `rampart.lib.<component>: `.

  Type: orThrow :: string -> [ string ] -> a -> a

  Example: orThrow "haproxy" [ ] "text" => "text"
  */
  orThrow = component: problems: value:
    if problems == []
    then value
    else throw (concatStringsSep "\n" (map (problem: "rampart.lib.${component}: ${problem}") problems));

  # ------------------------------------------------------------ problem finders
  # Each returns a list of problem strings (empty when all is well). `name` is the
  # settings path as the user writes it, e.g. "settings.haproxy.retries".

  # The services a renderer needs must be in the topology (it does not require them).
  requireServices = topology: names:
    map (name: "topology has no service \"${name}\" (expected one of: ${concatStringsSep ", " (attrNames topology.services)}); add services.${name} to hosts/topology.json")
    (builtins.filter (name: !(topology.services ? ${name})) names);

  absolutePath = name: value:
    optional (!(isString value && hasPrefix "/" value && match ".*[[:space:]\"';{}].*" value == null))
    "${name} is ${show value}; expected an absolute path without spaces, quotes, ';' or braces";

  port = name: value:
    optional (!(isInt value && value >= 1 && value <= 65535))
    "${name} is ${show value}; expected an integer in 1..65535";

  intAtLeast = min: name: value:
    optional (!(isInt value && value >= min))
    "${name} is ${show value}; expected an integer of at least ${toString min}";

  bool = name: value:
    optional (!(builtins.isBool value))
    "${name} is ${show value}; expected true or false";

  # HAProxy and nginx time values: a number with an optional unit.
  duration = name: value:
    optional (!(isString value && match "[0-9]+(us|ms|s|m|h|d)?" value != null))
    "${name} is ${show value}; expected a duration such as \"2s\" or \"500ms\"";

  # Sizes as nginx and MariaDB write them: a number with an optional k/m/g suffix.
  size = name: value:
    optional (!(isString value && match "[0-9]+[kKmMgG]?" value != null))
    "${name} is ${show value}; expected a size such as \"128M\"";

  # Names used in SQL identifiers and accounts: no quoting needed, no injection possible.
  sqlName = name: value:
    optional (!(isString value && match "[A-Za-z_][A-Za-z0-9_]{0,31}" value != null))
    "${name} is ${show value}; expected letters, digits and \"_\" (at most 32, not starting with a digit)";

  # Free text placed inside a double-quoted string of a configuration file.
  quotable = name: value:
    optional (!(isString value && match "[^\"\\\n]*" value != null))
    "${name} is ${show value}; expected a string without double quotes, backslashes or newlines";

  # The shared directory settings every renderer may read.
  directories = settings:
    builtins.concatMap (key: absolutePath "settings.${key}" settings.${key}) ["pkiDir" "secretsDir" "runDir" "stateDir"];
}
