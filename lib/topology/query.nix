# lib/topology/query.nix: look-ups over a validated topology (hosts by name or role, their
# internal DNS names, service ports). They assume `validate` found nothing (use `fromFile`); where a
# name is unknown they throw naming the valid choices.
let
  inherit (builtins) attrNames concatStringsSep elem filter head isString;

  join = concatStringsSep ", ";
in rec {
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
}
