# lib/topology/validate.nix: every problem of a topology, as the messages of docs/topology.md
# in its order. The structural pass (./schema.nix) runs first; the semantic pass below only
# when it found nothing, so the semantic pass may assume every field has its type. The Rust
# counterpart is tools/crates/topology/src/validate.rs; tests/topologies/bad holds one
# fixture per message, checked on both sides.
let
  inherit (builtins) all any attrNames concatLists concatMap concatStringsSep elem filter head isInt isString length match stringLength;
  inherit (import ../util.nix) findFirstIndex hasPrefix imap0 optional optionalString optionals;
  inherit (import ./net.nix) parseAddress parseCidr inCidr;
  inherit (import ./schema.nix) structuralProblems roles isCidrSelector isSourceOnly roleOf;

  join = concatStringsSep ", ";
  rolesText = join roles;

  # Integers print as themselves; JSON floats (qpsThreshold may be one) as JSON does.
  formatNumber = v:
    if isInt v
    then toString v
    else builtins.toJSON v;

  # A CIDR the semantic pass accepted (parses, no host bits), or null: only those are used
  # for "outside network.cidr" / adminNetworks membership, so one bad CIDR is reported once.
  usableCidr = s: let
    cidr = parseCidr s;
  in
    if cidr != null && cidr.address == cidr.network
    then cidr
    else null;

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

  semantic = topo: let
    inherit (topo) hosts;
    net = usableCidr topo.network.cidr;
    adminNets = map usableCidr topo.adminNetworks;
    # Membership is tested against the adminNetworks entries that passed their own check.
    inAdminNets = address: any (cidr: cidr != null && inCidr cidr address) adminNets;
    firstHostWith = attr: value: findFirstIndex (h: h.${attr} == value) null hosts;
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
      concatLists (imap0 (k: role: optional (!elem role roles) "${path}.roles[${toString k}]: unknown role \"${role}\" (expected one of: ${rolesText})") host.roles)
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
      then optional (!elem role roles) "${path}: unknown role \"${role}\" (expected one of: ${rolesText})"
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
in {
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
    structural = structuralProblems topo;
  in
    if structural != []
    then structural
    else semantic topo;
}
