# lib/topology.nix: read, validate and query hosts/topology.json.
#
# docs/topology.md is the contract: every message below is specified there word for word, and
# the Rust side (tools/crates/topology) prints the same ones for the same input
# (tests/topologies/bad/ holds one fixture per message). Builtins only: this file is evaluated
# without nixpkgs, by the tests and by `nix eval .#lib` on a machine with no binary cache.
#
# The query helpers at the bottom assume a topology that passed `validate` (use `fromFile`).
let
  inherit
    (builtins)
    all
    any
    attrNames
    bitAnd
    concatLists
    concatMap
    concatStringsSep
    elem
    elemAt
    filter
    foldl'
    fromJSON
    genList
    head
    isInt
    isString
    length
    lessThan
    match
    sort
    stringLength
    substring
    typeOf
    ;

  # Small helpers that nixpkgs lib would provide.
  imap0 = f: list: genList (i: f i (elemAt list i)) (length list);
  optional = cond: x:
    if cond
    then [x]
    else [];
  optionals = cond: xs:
    if cond
    then xs
    else [];
  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;
  join = concatStringsSep ", ";
  unique = foldl' (acc: x:
    if elem x acc
    then acc
    else acc ++ [x]) [];
  # Index of the first element satisfying `pred`, or null.
  firstIndex = pred: list: let
    go = i:
      if i >= length list
      then null
      else if pred (elemAt list i)
      then i
      else go (i + 1);
  in
    go 0;
  mod = a: b: a - (a / b) * b;
  pow2 = n: foldl' (acc: _: acc * 2) 1 (genList (_: null) n);

  # Integers print as themselves; JSON floats (qpsThreshold may be one) as JSON does.
  formatNumber = v:
    if isInt v
    then toString v
    else builtins.toJSON v;

  # JSON type names used in messages; a `number` field accepts an `integer` too.
  jsonTypeNames = {
    int = "integer";
    float = "number";
    bool = "boolean";
    string = "string";
    list = "array";
    set = "object";
    "null" = "null";
  };
  jsonType = v: jsonTypeNames.${typeOf v} or (typeOf v);
  typeMatches = expected: v: let
    got = jsonType v;
  in
    got == expected || (expected == "number" && got == "integer");

  roleNames = ["databasePrimary" "databaseReplica" "loadBalancer" "monitoring" "web"];

  # ---------------------------------------------------------------- structural pass

  # The schema, with fields in the order docs/topology.md checks them.
  string = {type = "string";};
  integer = {type = "integer";};
  number = {type = "number";};
  arrayOf = items: {
    type = "array";
    inherit items;
  };
  object = fields: {
    type = "object";
    inherit fields;
  };
  # An object whose keys are names (services): values share one schema, keys visited sorted.
  mapOf = values: {
    type = "object";
    inherit values;
  };
  required = name: schema: {
    inherit name schema;
    optional = false;
  };
  optionalField = name: schema: {
    inherit name schema;
    optional = true;
  };

  schema = object [
    (required "version" integer)
    (required "name" string)
    (required "domain" string)
    (required "network" (object [(required "cidr" string)]))
    (required "adminNetworks" (arrayOf string))
    (required "publicNames" (arrayOf string))
    (required "hosts" (arrayOf (object [
      (required "name" string)
      (required "address" string)
      (required "roles" (arrayOf string))
    ])))
    (required "services" (mapOf (object [
      (required "port" integer)
      (optionalField "description" string)
    ])))
    (required "policy" (arrayOf (object [
      (required "service" string)
      (required "to" (arrayOf string))
      (required "from" (arrayOf string))
    ])))
    (required "monitoring" (object [
      (required "qpsThreshold" number)
      (required "alertReceiver" (object [
        (required "name" string)
        (required "webhookUrl" string)
      ]))
    ]))
    (optionalField "lab" (object [
      (required "outside" string)
      (optionalField "admin" string)
    ]))
  ];

  # Paths: the root is "" internally and "topology" in messages; its fields have bare names.
  showPath = path:
    if path == ""
    then "topology"
    else path;
  childPath = path: key:
    if path == ""
    then key
    else "${path}.${key}";

  check = path: schema: value:
    if !(typeMatches schema.type value)
    then ["${showPath path}: expected ${schema.type}, got ${jsonType value}"]
    else if schema ? items
    then concatLists (imap0 (i: check "${path}[${toString i}]" schema.items) value)
    else if schema ? fields
    then checkFields path schema.fields value
    else if schema ? values
    then concatMap (key: check (childPath path key) schema.values value.${key}) (attrNames value)
    else [];

  # Missing and mistyped fields (recursively) in schema order, then unknown fields sorted.
  checkFields = path: fields: value: let
    known = map (f: f.name) fields;
    expected = join (sort lessThan known);
  in
    concatMap (
      f:
        if value ? ${f.name}
        then check (childPath path f.name) f.schema value.${f.name}
        else optional (!f.optional) "${showPath path}: missing field \"${f.name}\""
    )
    fields
    ++ map (key: "${showPath path}: unknown field \"${key}\" (expected one of: ${expected})")
    (filter (key: !elem key known) (attrNames value));

  # ---------------------------------------------------------------- addresses and names

  # An IPv4 address as an integer, or null. Octets are 0-255 without leading zeros; the
  # length guard keeps arbitrary input away from the regex engine.
  octet = "(0|[1-9][0-9]?[0-9]?)";
  parseAddress = s: let
    m = match "${octet}\\.${octet}\\.${octet}\\.${octet}" s;
    octets = map fromJSON m;
  in
    if stringLength s > 15 || m == null || !(all (o: o <= 255) octets)
    then null
    else foldl' (acc: o: acc * 256 + o) 0 octets;

  formatAddress = n: concatStringsSep "." (map (unit: toString (mod (n / unit) 256)) [16777216 65536 256 1]);

  maskOf = prefix: 4294967295 - (pow2 (32 - prefix) - 1);

  # `<address>/<0..32>` as { address; prefix; network; canonical; }, or null.
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

  # A CIDR the semantic pass accepted (parses, no host bits), or null: only those are used
  # for "outside network.cidr" / adminNetworks membership, so one bad CIDR is reported once.
  usableCidr = s: let
    cidr = parseCidr s;
  in
    if cidr != null && cidr.address == cidr.network
    then cidr
    else null;

  inCidr = cidr: address: bitAnd address (maskOf cidr.prefix) == cidr.network;

  cidrMessages = path: s: let
    cidr = parseCidr s;
  in
    if cidr == null
    then ["${path}: \"${s}\" is not an IPv4 CIDR"]
    else optional (cidr.address != cidr.network) "${path}: \"${s}\" has host bits set (expected \"${cidr.canonical}\")";

  dnsLabel = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?";
  isDnsName = s:
    stringLength s
    <= 253
    && all (label: match dnsLabel label != null) (filter isString (builtins.split "\\." s));
  isHostName = s: stringLength s <= 63 && match "[a-z]([a-z0-9-]{0,61}[a-z0-9])?" s != null;
  isServiceName = s: match "[a-z][a-zA-Z0-9]*" s != null;

  # Policy selectors: which of them only make sense as a source.
  isCidrSelector = sel: match "[0-9]" (substring 0 1 sel) != null;
  isSourceOnly = sel: sel == "internet" || sel == "admin" || isCidrSelector sel;
  roleOf = sel:
    if hasPrefix "role:" sel
    then substring 5 (stringLength sel) sel
    else null;

  # ---------------------------------------------------------------- semantic pass

  semantic = topo: let
    inherit (topo) hosts;
    net = usableCidr topo.network.cidr;
    adminNets = map usableCidr topo.adminNetworks;
    # Membership is tested against the adminNetworks entries that passed their own check.
    inAdminNets = address: any (cidr: cidr != null && inCidr cidr address) adminNets;
    firstHostWith = attr: value: firstIndex (h: h.${attr} == value) hosts;
    rolesText = join roleNames;
    serviceNames = attrNames topo.services;

    hostMessages = i: host: let
      path = "hosts[${toString i}]";
      address = parseAddress host.address;
      sameName = firstHostWith "name" host.name;
      sameAddress = firstHostWith "address" host.address;
    in
      optional (!isHostName host.name) ''${path}.name: "${host.name}" is not a valid host name (expected lowercase letters, digits and "-", starting with a letter, at most 63 characters)''
      ++ optional (sameName < i) "${path}.name: duplicate host name \"${host.name}\" (also hosts[${toString sameName}])"
      ++ (
        if address == null
        then ["${path}.address: \"${host.address}\" is not an IPv4 address"]
        else
          optional (sameAddress < i) "${path}.address: duplicate address \"${host.address}\" (also hosts[${toString sameAddress}])"
          ++ optional (net != null && !inCidr net address) "${path}.address: ${host.address} is outside network.cidr ${topo.network.cidr}"
      )
      ++ roleMessages path host;

    roleMessages = path: host:
      concatLists (imap0 (k: role: optional (!elem role roleNames) "${path}.roles[${toString k}]: unknown role \"${role}\" (expected one of: ${rolesText})") host.roles)
      ++ optional (elem "databasePrimary" host.roles && elem "databaseReplica" host.roles) "${path}.roles: \"databasePrimary\" and \"databaseReplica\" cannot be on the same host";

    # Counting roles is only meaningful once every host's roles are sound: a misspelt
    # "databasePrimary" would otherwise also report a replica without primary.
    rolesSound = all (host: roleMessages "" host == []) hosts;
    namesWith = role: map (h: h.name) (filter (h: elem role h.roles) hosts);
    exactlyOne = role: let
      names = namesWith role;
      found = toString (length names) + optionalString (names != []) ": ${join names}";
    in
      optional (length names != 1) "hosts: exactly one host must have role \"${role}\" (found ${found})";
    optionalString = cond: s:
      if cond
      then s
      else "";
    primaries = namesWith "databasePrimary";
    replicas = namesWith "databaseReplica";
    roleCountMessages = optionals rolesSound (
      exactlyOne "loadBalancer"
      ++ exactlyOne "monitoring"
      ++ optional (namesWith "web" == []) "hosts: no host has role \"web\"; the web tier needs at least one"
      ++ optional (length primaries > 1) "hosts: more than one host has role \"databasePrimary\" (${join primaries})"
      ++ optional (replicas != [] && primaries == []) "hosts: role \"databaseReplica\" on ${join replicas} needs a host with role \"databasePrimary\""
      ++ optional (length replicas > 1) "hosts: more than one host has role \"databaseReplica\" (${join replicas}); failover supports exactly one: MariaDB's semi-synchronous replication acknowledges a commit once any one replica has it, so with two no single replica provably holds every acknowledged write and none could take over safely"
    );

    serviceMessages = name: let
      path = "services.${name}";
      inherit (topo.services.${name}) port;
      firstWithPort = head (filter (other: topo.services.${other}.port == port) serviceNames);
    in
      optional (!isServiceName name) "${path}: \"${name}\" is not a valid service name (expected letters and digits, starting with a lowercase letter)"
      ++ (
        if port < 1 || port > 65535
        then ["${path}.port: ${toString port} is out of range (expected 1..65535)"]
        else optional (firstWithPort != name) "${path}.port: ${toString port} is already used by services.${firstWithPort}"
      );

    selectorMessage = path: isFrom: sel: let
      role = roleOf sel;
    in
      if sel == "*"
      then []
      else if role != null
      then optional (!elem role roleNames) "${path}: unknown role \"${role}\" (expected one of: ${rolesText})"
      else if isSourceOnly sel
      then
        if !isFrom
        then [''${path}: "${sel}" is not allowed here (expected a host name, "role:<role>" or "*")'']
        else optionals (isCidrSelector sel) (cidrMessages path sel)
      else optional (firstHostWith "name" sel == null) "${path}: unknown host \"${sel}\"";

    selectorMessages = path: isFrom: noun: selectors:
      if selectors == []
      then ["${path}: must name at least one ${noun}"]
      else concatMap (selectorMessage path isFrom) selectors;

    policyMessages = i: rule: let
      path = "policy[${toString i}]";
    in
      optional (!(topo.services ? ${rule.service})) "${path}.service: unknown service \"${rule.service}\" (expected one of: ${join serviceNames})"
      ++ selectorMessages "${path}.to" false "target" rule.to
      ++ selectorMessages "${path}.from" true "source" rule.from;

    threshold = topo.monitoring.qpsThreshold;
    receiver = topo.monitoring.alertReceiver;
    url = receiver.webhookUrl;

    labMessages = field: s: let
      path = "lab.${field}";
      address = parseAddress s;
      sameHost = firstHostWith "address" s;
      also =
        if sameHost != null
        then "hosts[${toString sameHost}]"
        else if field == "admin" && s == topo.lab.outside
        then "lab.outside"
        else null;
    in
      if address == null
      then ["${path}: \"${s}\" is not an IPv4 address"]
      else
        optional (also != null) "${path}: duplicate address \"${s}\" (also ${also})"
        ++ optional (net != null && !inCidr net address) "${path}: ${s} is outside network.cidr ${topo.network.cidr}"
        ++ (
          if field == "admin"
          then optional (!inAdminNets address) "${path}: ${s} is not in adminNetworks"
          else optional (inAdminNets address) "${path}: ${s} must not be in adminNetworks"
        );
  in
    optional (topo.version != 1) "version: unsupported version ${toString topo.version} (expected 1)"
    ++ optional (!isDnsName topo.domain) "domain: \"${topo.domain}\" is not a valid DNS name"
    ++ cidrMessages "network.cidr" topo.network.cidr
    ++ concatLists (imap0 (i: cidrMessages "adminNetworks[${toString i}]") topo.adminNetworks)
    ++ (
      if topo.publicNames == []
      then ["publicNames: at least one public name is required"]
      else concatLists (imap0 (i: name: optional (!isDnsName name) "publicNames[${toString i}]: \"${name}\" is not a valid DNS name") topo.publicNames)
    )
    ++ concatLists (imap0 hostMessages hosts)
    ++ roleCountMessages
    ++ concatMap serviceMessages serviceNames
    ++ concatLists (imap0 policyMessages topo.policy)
    ++ optional (threshold <= 0) "monitoring.qpsThreshold: ${formatNumber threshold} is not a positive number"
    ++ optional (receiver.name == "") "monitoring.alertReceiver.name: must not be empty"
    ++ optional (!(hasPrefix "http://" url || hasPrefix "https://" url)) "monitoring.alertReceiver.webhookUrl: \"${url}\" must start with http:// or https://"
    ++ concatMap (field: optionals (topo ? lab && topo.lab ? ${field}) (labMessages field topo.lab.${field})) ["outside" "admin"];

  # ---------------------------------------------------------------- public interface

  /*
  Every problem of a topology, as the messages of docs/topology.md, in its order.
  The structural pass runs first; the semantic pass only if it found nothing.
  Never throws, whatever JSON value it is given.

  # Inputs

  `topo`
  : any value `builtins.fromJSON` can return

  # Type

  ```
  validate :: any -> [ string ]
  ```

  # Examples

  ```nix
  validate (builtins.fromJSON (builtins.readFile ../hosts/topology.json))
  => [ ]
  validate [ ]
  => [ "topology: expected object, got array" ]
  ```
  */
  validate = topo: let
    structural = check "" schema topo;
  in
    if structural != []
    then structural
    else semantic topo;

  /*
  Read a topology file, validate it, and return it unchanged; throw listing every problem.

  # Inputs

  `path`
  : a JSON file, normally `../hosts/topology.json`

  # Type

  ```
  fromFile :: path -> topology
  ```

  # Examples

  ```nix
  (fromFile ../hosts/topology.json).name
  => "rampart"
  ```
  */
  fromFile = path: let
    topo = fromJSON (builtins.readFile path);
    problems = validate topo;
  in
    if problems == []
    then topo
    else
      throw ''
        rampart.lib.topology: ${toString path} is not a valid topology:
          - ${concatStringsSep "\n  - " problems}'';

  /*
  Whether a host carries a role.

  # Inputs

  `host`
  : an element of `topology.hosts`

  `role`
  : one of `roles`

  # Type

  ```
  hasRole :: host -> string -> bool
  ```

  # Examples

  ```nix
  hasRole { name = "lb"; roles = [ "loadBalancer" "monitoring" ]; } "monitoring"
  => true
  ```
  */
  hasRole = host: role: elem role host.roles;

  /*
  The hosts with a role, in topology order (the order of load-balancer backends).

  # Inputs

  `topo`
  : a validated topology

  `role`
  : one of `roles`

  # Type

  ```
  hostsWithRole :: topology -> string -> [ host ]
  ```

  # Examples

  ```nix
  map (h: h.name) (hostsWithRole topo "web")
  => [ "web1" "web2" ]
  ```
  */
  hostsWithRole = topo: role: filter (host: hasRole host role) topo.hosts;

  /*
  The host with a name; throws naming the valid choices when there is none.

  # Inputs

  `topo`
  : a validated topology

  `name`
  : a host name

  # Type

  ```
  hostByName :: topology -> string -> host
  ```

  # Examples

  ```nix
  (hostByName topo "web1").address
  => "10.42.0.11"
  ```
  */
  hostByName = topo: name: let
    found = filter (host: host.name == name) topo.hosts;
  in
    if found == []
    then throw "rampart.lib.topology.hostByName: no host named \"${name}\" (expected one of: ${join (map (h: h.name) topo.hosts)})"
    else head found;

  /*
  The internal DNS name of a host, `<name>.<domain>`; takes a host or a host name.

  # Inputs

  `topo`
  : a validated topology

  `host`
  : an element of `topo.hosts`, or its name

  # Type

  ```
  fqdn :: topology -> (host | string) -> string
  ```

  # Examples

  ```nix
  fqdn topo "web1"
  => "web1.rampart.internal"
  ```
  */
  fqdn = topo: host: "${
    if isString host
    then host
    else host.name
  }.${topo.domain}";

  /*
  The hosts a list of policy selectors names: host names, `role:<role>` and `*`. Source-only
  selectors (`internet`, `admin`, CIDRs) name no host and are ignored. Topology order, each
  host once.

  # Inputs

  `topo`
  : a validated topology

  `selectors`
  : a policy rule's `to` or `from`

  # Type

  ```
  selectHosts :: topology -> [ string ] -> [ host ]
  ```

  # Examples

  ```nix
  map (h: h.name) (selectHosts topo [ "role:databaseReplica" "web1" "role:web" ])
  => [ "web1" "web2" ]
  ```
  */
  selectHosts = topo: selectors:
    filter (
      host:
        any (
          sel:
            sel
            == "*"
            || sel == host.name
            || (roleOf sel != null && hasRole host (roleOf sel))
        )
        selectors
    )
    topo.hosts;

  /*
  Where a policy rule's traffic may come from: `any` when `from` has `internet`, else the
  source networks, each once, in selector order (`admin` expands to adminNetworks, a host
  to `<address>/32`, a CIDR stays as written).

  # Inputs

  `topo`
  : a validated topology

  `rule`
  : an element of `topo.policy` (only `from` is read)

  # Type

  ```
  sourcesOf :: topology -> { from :: [ string ]; ... } -> { any :: bool; cidrs :: [ string ]; }
  ```

  # Examples

  ```nix
  sourcesOf topo { service = "prometheus"; to = [ "role:monitoring" ]; from = [ "role:monitoring" "admin" ]; }
  => { any = false; cidrs = [ "10.42.0.10/32" "10.42.0.64/28" ]; }
  ```
  */
  sourcesOf = topo: rule: {
    any = elem "internet" rule.from;
    cidrs = unique (concatMap (
        sel:
          if sel == "internet"
          then []
          else if sel == "admin"
          then topo.adminNetworks
          else if isCidrSelector sel
          then [sel]
          else map (host: "${host.address}/32") (selectHosts topo [sel])
      )
      rule.from);
  };

  /*
  The TCP port of a service; throws naming the valid choices when there is none.

  # Inputs

  `topo`
  : a validated topology

  `name`
  : a key of `topo.services`

  # Type

  ```
  servicePort :: topology -> string -> int
  ```

  # Examples

  ```nix
  servicePort topo "https"
  => 443
  ```
  */
  servicePort = topo: name:
    if topo.services ? ${name}
    then topo.services.${name}.port
    else throw "rampart.lib.topology.servicePort: unknown service \"${name}\" (expected one of: ${join (attrNames topo.services)})";

  /*
  What a host must accept: one entry per policy rule whose `to` selects it, sorted by port
  then service. Ports of a host that no entry names are dropped (docs/topology.md).

  # Inputs

  `topo`
  : a validated topology

  `hostName`
  : the name of one of `topo.hosts`; throws if there is none

  # Type

  ```
  inboundRules :: topology -> string -> [ { service :: string; port :: int; sources :: { any :: bool; cidrs :: [ string ]; }; } ]
  ```

  # Examples

  ```nix
  map (r: r.port) (inboundRules topo "web2")
  => [ 22 3306 8443 9100 9104 9113 ]
  ```
  */
  inboundRules = topo: hostName: let
    host = hostByName topo hostName;
    rules = filter (rule: elem host (selectHosts topo rule.to)) topo.policy;
    entry = rule: {
      inherit (rule) service;
      port = servicePort topo rule.service;
      sources = sourcesOf topo rule;
    };
  in
    sort (a: b: a.port < b.port || (a.port == b.port && a.service < b.service)) (map entry rules);
in {
  inherit validate fromFile hasRole hostsWithRole hostByName fqdn selectHosts sourcesOf servicePort inboundRules;

  # The valid values of `hosts[].roles`, sorted.
  roles = roleNames;
}
