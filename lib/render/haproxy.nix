/*
lib/render/haproxy.nix: the load balancer's haproxy.cfg.

HTTPS for every `publicNames` entry on the `https` port (the `settings.tls.profile` TLS
profile, HSTS), a redirect on the
`http` port, and one backend server per `web` host in topology order, reached over TLS on
the `backendHttps` port: the backend's certificate is verified against the rampart CA and
its name, and HAProxy presents the `backend-client` certificate (nginx requires it).
Requests that may change something (all but GET, HEAD, OPTIONS) go through a second
backend, `web_writes`, over the same servers but a new connection each, so that a dying
backend never swallows one (see its comment). The
built-in Prometheus exporter and the stats page listen on the `haproxyExporter` port of the
load balancer's address; the stats socket `<runDir>/haproxy/stats.sock` is for `reach`.

HAProxy 2.6 finds a certificate's private key only as `<certificate>.key`, so the runner
links `<pkiDir>/https.pem.key` to `https.key` and `<pkiDir>/backend-client.pem.key` to
`backend-client.key` (docs/contracts.md, "Certificates").

# Inputs

`{ topology, settings, host }`
: a validated topology, settings (lib/settings.nix; `haproxy.*`, `pkiDir`, `runDir`) and the
  host (an element of `topology.hosts` or its name)

# Type

```
haproxy :: { topology; settings; host; } -> { "haproxy/haproxy.cfg" = string; } (or { } off the load balancer)
```

# Examples

```nix
(haproxy { inherit topology; settings = { }; host = "lb"; })."haproxy/haproxy.cfg"
=> "# haproxy.cfg for lb (10.42.0.10), rendered by rampart … server web2 10.42.0.12:8443 …"
haproxy { inherit topology; settings = { }; host = "web1"; }
=> { }
```
*/
let
  inherit (builtins) concatStringsSep filter head;
  util = import ../util.nix;
  common = import ./common.nix;
  topologyLib = import ../topology.nix;
  inherit (util) concatLines concatMapStrings optionalString;

  # Problems in what this renderer reads, all of them.
  problemsOf = topology: s: let
    h = s.haproxy;
    name = key: "settings.haproxy.${key}";
  in
    common.requireServices topology ["http" "https" "backendHttps" "haproxyExporter"]
    ++ common.directories s
    ++ common.tlsProfile s
    ++ common.intAtLeast 1 (name "maxConnections") h.maxConnections
    ++ common.intAtLeast 31536000 (name "hstsMaxAge") h.hstsMaxAge
    ++ common.bool (name "hstsIncludeSubdomains") h.hstsIncludeSubdomains
    ++ util.optional (!(builtins.isString h.healthCheck.path && builtins.match "/[^[:space:]\"]*" h.healthCheck.path != null))
    "${name "healthCheck.path"} is ${common.show h.healthCheck.path}; expected an absolute URL path such as \"/healthz\""
    ++ common.duration (name "healthCheck.interval") h.healthCheck.interval
    ++ common.duration (name "healthCheck.fastInterval") h.healthCheck.fastInterval
    ++ common.duration (name "healthCheck.downInterval") h.healthCheck.downInterval
    ++ common.duration (name "hardStopAfter") h.hardStopAfter
    ++ common.duration (name "backendUserTimeout") h.backendUserTimeout
    ++ common.intAtLeast 1 (name "healthCheck.fall") h.healthCheck.fall
    ++ common.intAtLeast 1 (name "healthCheck.rise") h.healthCheck.rise
    ++ common.intAtLeast 0 (name "retries") h.retries
    ++ builtins.concatMap (key: common.duration (name "timeouts.${key}") h.timeouts.${key})
    ["connect" "client" "server" "httpRequest" "httpKeepAlive" "queue" "check"];

  files = topology: s: self: let
    h = s.haproxy;
    port = topologyLib.servicePort topology;
    pki = file: "${s.pkiDir}/${file}";
    webHosts = topologyLib.hostsWithRole topology "web";

    # Who may scrape the exporter: the policy's sources for haproxyExporter on this host.
    exporterRules = filter (rule: rule.service == "haproxyExporter") (topologyLib.inboundRules topology self.name);
    exporterOpen = builtins.any (rule: rule.sources.any) exporterRules;
    exporterSources = util.unique (builtins.concatMap (rule: rule.sources.cidrs) exporterRules);

    hsts = "max-age=${toString h.hstsMaxAge}${optionalString h.hstsIncludeSubdomains "; includeSubDomains"}";

    # The profile's suites for one side ("bind": clients, "server": backends); a TLS 1.3
    # only profile has no TLS 1.2 list.
    t = common.tls s;
    tlsLines = side:
      [
        "  # Mozilla \"${t.profile}\" TLS towards ${
          if side == "bind"
          then "clients"
          else "the backends"
        }: ${concatStringsSep ", " t.versions} (no DHE: no DH parameters)."
      ]
      ++ util.optional (t.ciphers12 != "") "  ssl-default-${side}-ciphers ${t.ciphers12}"
      ++ ["  ssl-default-${side}-ciphersuites ${t.ciphersuites13}"];

    # Backends: TLS verified against the rampart CA and the server's name; HAProxy presents
    # its client certificate, which nginx requires.
    backendTls = "ssl verify required ca-file ${pki "ca.pem"} crt ${pki "backend-client.pem"} alpn http/1.1";
    # A connection to a backend cut off dies after this much silence (settings.nix says why).
    # On every server line: HAProxy 2.6 does not pass `tcp-ut` on from `default-server`
    # (no TCP_USER_TIMEOUT on the sockets; seen with strace).
    deadAfter = "tcp-ut ${h.backendUserTimeout}";

    # One server per web host; in `web_writes` it follows the health of its twin in `web`.
    server = backend: web: let
      fqdn = topologyLib.fqdn topology web;
    in
      if backend == "web"
      then "  server ${web.name} ${web.address}:${toString (port "backendHttps")} sni str(${fqdn}) check-sni ${fqdn} verifyhost ${fqdn} ${deadAfter}\n"
      else "  server ${web.name} ${web.address}:${toString (port "backendHttps")} sni str(${fqdn}) verifyhost ${fqdn} ${deadAfter} track web/${web.name}\n";

    text =
      common.header {
        what = "haproxy.cfg";
        host = self;
        renderer = "haproxy";
      }
      + concatLines [
        "#"
        "# Files read at start (runtime paths, never in the Nix store):"
        "#   ${pki "https.pem"} (+ .key)  certificate for ${concatStringsSep ", " topology.publicNames}"
        "#   ${pki "backend-client.pem"} (+ .key)  HAProxy's client certificate towards nginx (mTLS)"
        "#   ${pki "ca.pem"}  the rampart CA, the only trust anchor for backends"
        "# HAProxy 2.6 reads the key of `crt X.pem` from `X.pem.key`: the runner links"
        "# https.pem.key -> https.key and backend-client.pem.key -> backend-client.key."
        ""
        "global"
        "  # Errors and server state changes only: per-request logs would cost throughput, and"
        "  # the Prometheus exporter counts requests."
        "  log stderr format raw local0 notice"
        "  maxconn ${toString h.maxConnections}"
      ]
      # Mozilla's TLS profile (settings.tls.profile, lib/tls-profiles.json), towards clients
      # and towards backends.
      + concatLines (tlsLines "bind" ++ ["  # Key-exchange groups: OpenSSL's default adds X448, P-521 and finite-field groups." "  ssl-default-bind-curves ${t.groups}"])
      + concatLines [
        "  # No session tickets: their key would be shared by every connection until restart."
        "  ssl-default-bind-options ssl-min-ver ${t.minVersion} no-tls-tickets"
      ]
      + concatLines (tlsLines "server")
      + concatLines [
        "  ssl-default-server-options ssl-min-ver ${t.minVersion}"
        "  # A backend whose certificate does not verify is never used (the default, stated)."
        "  ssl-server-verify required"
        "  # For `reach` (server states) and operators; admin level for `rampart-lb drain` and"
        "  # `ready` (a planned removal of a web host), expose-fd so a reload started with -x"
        "  # takes the listening sockets over without refusing clients (the master of -W/-Ws"
        "  # hands them over itself)."
        "  stats socket ${s.runDir}/haproxy/stats.sock mode 600 level admin expose-fd listeners"
        "  stats timeout 30s"
        "  # A reload leaves the old process serving its connections until they end; past this"
        "  # it closes what is left."
        "  hard-stop-after ${h.hardStopAfter}"
        ""
        "defaults"
        "  mode http"
        "  log global"
        "  option dontlognull"
        "  # During a reload the old process answers the next request of an idle client"
        "  # connection with `Connection: close` instead of closing it under the client, who"
        "  # may be sending a request that must not be retried (a POST) at that moment."
        "  option idle-close-on-response"
        "  timeout connect ${h.timeouts.connect}"
        "  timeout client ${h.timeouts.client}"
        "  timeout server ${h.timeouts.server}"
        "  timeout http-request ${h.timeouts.httpRequest}"
        "  timeout http-keep-alive ${h.timeouts.httpKeepAlive}"
        "  timeout queue ${h.timeouts.queue}"
        "  timeout check ${h.timeouts.check}"
        ""
        "frontend http"
        "  bind ${self.address}:${toString (port "http")}"
        "  # Plain HTTP only ever answers with a permanent redirect to the same URL over HTTPS."
        "  http-request redirect scheme https code 301"
        ""
        "frontend https"
        "  # The host's own address, as the topology declares it (reach's listeners check fails a"
        "  # wildcard bind): a public address in front of it reaches it by NAT."
        "  bind ${self.address}:${toString (port "https")} ssl crt ${pki "https.pem"} alpn h2,http/1.1"
        "  option forwardfor"
        "  http-request set-header X-Forwarded-Proto https"
        "  # after-response: also on HAProxy's own answers (503 while every backend is down)."
        "  http-after-response set-header Strict-Transport-Security \"${hsts}\""
        "  # Requests that may change something go over a connection of their own (below)."
        "  use_backend web_writes unless METH_GET or METH_OPTIONS"
        "  default_backend web"
        ""
        "backend web"
        "  balance roundrobin"
        "  # Share idle TLS connections to the backends between client requests: a handshake"
        "  # per request costs more than the request (1.3k instead of 18k requests/s here)."
        "  http-reuse safe"
        "  # A dead backend costs no client request. A request that could not be sent (no"
        "  # connection, failed TLS handshake) is sent again, whatever its method; each retry"
        "  # goes to another server. A request that was sent and got no answer, no answer in"
        "  # time, or 502 from nginx (the application died under it) is sent again only when"
        "  # it is GET, HEAD or OPTIONS: anything else may have changed something, and HAProxy"
        "  # itself would replay it (retry-on does not look at the method)."
        "  retries ${toString h.retries}"
        "  option redispatch 1"
        "  retry-on conn-failure empty-response response-timeout 502"
        "  http-request disable-l7-retry unless METH_GET or METH_OPTIONS"
        "  # The check goes through nginx to the application, over the same verified TLS."
        "  option httpchk"
        "  http-check send meth GET uri ${h.healthCheck.path} ver HTTP/1.1 hdr Host ${head topology.publicNames}"
        "  http-check expect status 200"
        "  # A server whose state is changing (one failed check while UP, one passed while"
        "  # DOWN) is checked every fastinter, a DOWN one every downinter."
        "  default-server check inter ${h.healthCheck.interval} fastinter ${h.healthCheck.fastInterval} downinter ${h.healthCheck.downInterval} fall ${toString h.healthCheck.fall} rise ${toString h.healthCheck.rise} ${backendTls} check-alpn http/1.1"
      ]
      + concatMapStrings (server "web") webHosts
      + concatLines [
        ""
        "# Everything but GET, HEAD and OPTIONS: the same servers, each request on a connection"
        "# HAProxy has just opened. Sent on a pooled connection, a write could meet a backend"
        "# that died a moment ago and be lost with an unknown outcome (it must not be retried);"
        "# on a new connection a dead backend refuses the connection or the TLS handshake, and"
        "# the write goes to another server unsent. Health, drain and maintenance follow the"
        "# servers of `web` (track)."
        "backend web_writes"
        "  balance roundrobin"
        "  option http-server-close"
        "  http-reuse never"
        "  retries ${toString h.retries}"
        "  option redispatch 1"
        "  retry-on conn-failure"
        "  default-server ${backendTls}"
      ]
      + concatMapStrings (server "web_writes") webHosts
      + concatLines [
        ""
        "# Prometheus exporter (/metrics) and stats page (/stats) on the load balancer's own"
        "# address; the firewall admits only the monitoring host, and the ACL repeats it."
        "frontend stats"
        "  bind ${self.address}:${toString (port "haproxyExporter")}"
        "  no log"
      ]
      + (
        if exporterOpen
        then ""
        else if exporterSources == []
        then concatLines ["  # No policy rule admits any source to haproxyExporter." "  http-request deny"]
        else
          concatLines [
            "  acl monitoring src ${concatStringsSep " " exporterSources}"
            "  http-request deny unless monitoring"
          ]
      )
      + concatLines [
        "  http-request use-service prometheus-exporter if { path /metrics }"
        "  stats enable"
        "  stats uri /stats"
        "  stats refresh 10s"
      ];
  in {"haproxy/haproxy.cfg" = text;};
in
  common.renderer {
    component = "haproxy";
    appliesTo = self: topologyLib.hasRole self "loadBalancer";
    problems = problemsOf;
    inherit files;
  }
