/*
lib/render/nginx.nix: a web host's nginx configuration (http-level blocks).

One TLS server on the host's address and `backendHttps` port, with the `backend`
certificate, that only the load balancer may use (the firewall admits only it, and nginx
requires its `backend-client` certificate, issued by the rampart CA to `<lb>.<domain>`);
it adds security headers and proxies to the application on 127.0.0.1:`settings.app.port`
(GET, HEAD and OPTIONS over pooled keep-alive connections, anything else over a
connection of its own).
A second server on 127.0.0.1:`settings.nginx.stubStatusPort` answers `/stub_status` for the
nginx exporter.

The text goes inside `http { }`. Around it, the main configuration's own blocks (`main`:
workers, connections, access log, user) are the same everywhere: the NixOS module hands them
to services.nginx (appendConfig, eventsConfig, commonHttpConfig, user), and
`nginx/nginx.conf` puts them in a whole main file, with pid and temp paths under the
settings' directories, for a host that is not NixOS (the lab).

# Inputs

`{ topology, settings, host }`
: a validated topology, settings (lib/settings.nix; `nginx.*`, `app.port`, `pkiDir`) and the
  host (an element of `topology.hosts` or its name)

# Type

```
nginx :: { topology; settings; host; } -> { "nginx/rampart.conf" = string; "nginx/nginx.conf" = string; } (or { } off web hosts)
nginx.main :: { topology; settings; host; } -> { main; events; http :: string (directives); user :: string; } (or { })
```

# Examples

```nix
(nginx { inherit topology; settings = { }; host = "web1"; })."nginx/rampart.conf"
=> "# nginx/rampart.conf for web1 (10.42.0.11), … listen 10.42.0.11:8443 ssl default_server; …"
```
*/
let
  inherit (builtins) attrNames concatStringsSep filter replaceStrings;
  util = import ../util.nix;
  common = import ./common.nix;
  topologyLib = import ../topology.nix;
  inherit (util) concatLines concatMapStrings optionalString;

  problemsOf = topology: s: let
    n = s.nginx;
    name = key: "settings.nginx.${key}";
    # A loopback port must not be one a topology service may bind on every address.
    clash = setting: value:
      map (service: "${setting} is ${toString value}, which services.${service} uses; choose another loopback port")
      (filter (service: topology.services.${service}.port == value) (attrNames topology.services));
  in
    common.requireServices topology ["backendHttps"]
    ++ common.directories s
    ++ common.tlsProfile s
    ++ common.port (name "stubStatusPort") s.nginx.stubStatusPort
    ++ common.port "settings.app.port" s.app.port
    ++ common.intAtLeast 1 (name "upstreamKeepalive") s.nginx.upstreamKeepalive
    ++ common.size (name "clientMaxBodySize") s.nginx.clientMaxBodySize
    ++ common.quotable (name "contentSecurityPolicy") s.nginx.contentSecurityPolicy
    ++ common.quotable (name "referrerPolicy") s.nginx.referrerPolicy
    ++ util.optional (!(n.workerProcesses == "auto" || (builtins.isInt n.workerProcesses && n.workerProcesses >= 1)))
    "${name "workerProcesses"} is ${common.show n.workerProcesses}; expected \"auto\" or a positive integer"
    ++ common.intAtLeast 1 (name "workerConnections") n.workerConnections
    ++ util.optionals (n.accessLog != null) (common.absolutePath (name "accessLog") n.accessLog)
    ++ util.optional (!(builtins.isString n.user && builtins.match "[a-z_][a-z0-9_-]{0,31}" n.user != null))
    "${name "user"} is ${common.show n.user}; expected a system user name such as \"nginx\""
    ++ util.optional (s.nginx.stubStatusPort == s.app.port)
    "${name "stubStatusPort"} and settings.app.port are both ${toString s.app.port}; give them different loopback ports"
    ++ clash (name "stubStatusPort") s.nginx.stubStatusPort
    ++ clash "settings.app.port" s.app.port;

  files = topology: s: self: let
    n = s.nginx;
    pki = file: "${s.pkiDir}/${file}";
    fqdn = topologyLib.fqdn topology;
    t = common.tls s;
    # HAProxy's identity; a regular expression, so its dots are escaped.
    clientNames = map (lb: replaceStrings ["."] ["\\."] (fqdn lb)) (topologyLib.hostsWithRole topology "loadBalancer");

    text =
      common.header {
        what = "nginx/rampart.conf";
        host = self;
        renderer = "nginx";
      }
      + concatLines [
        "#"
        "# http-level blocks: include this file inside `http { }` of the main nginx.conf."
        ""
        "# The rampart CA also issues client certificates for replication: only the load"
        "# balancer's may use the backend listener."
        "map $ssl_client_s_dn $rampart_backend_client {"
        "  default 0;"
      ]
      + concatMapStrings (name: "  \"~(^|,)CN=${name}(,|$)\" 1;\n") clientNames
      + concatLines [
        "}"
        ""
        "upstream rampart_app {"
        "  server 127.0.0.1:${toString s.app.port};"
        "  # Idle keep-alive connections to the application, reused across requests."
        "  keepalive ${toString n.upstreamKeepalive};"
        "}"
        ""
        "# Requests that may change something get a connection of their own: one reused from"
        "# the pool may be closing (the application restarting) just as the request goes out,"
        "# and nginx cannot resend it. A new connection is accepted by the application or"
        "# waits in its socket's backlog for the next process (socket activation)."
        "upstream rampart_app_once {"
        "  server 127.0.0.1:${toString s.app.port};"
        "}"
        ""
        "map $request_method $rampart_app_upstream {"
        "  default rampart_app_once;"
        "  GET rampart_app;"
        "  HEAD rampart_app;"
        "  OPTIONS rampart_app;"
        "}"
        ""
        "# The backend listener: TLS only, for HAProxy only."
        "server {"
        "  listen ${self.address}:${toString (topologyLib.servicePort topology "backendHttps")} ssl default_server;"
        "  server_name ${fqdn self};"
        "  server_tokens off;"
        ""
        "  ssl_certificate ${pki "backend.pem"};"
        "  ssl_certificate_key ${pki "backend.key"};"
        "  # Mozilla \"${t.profile}\" TLS (settings.tls.profile; no DHE: no DH parameters)."
        "  ssl_protocols ${concatStringsSep " " t.versions};"
      ]
      + optionalString (t.ciphers12 != "") "  ssl_ciphers ${t.ciphers12};\n"
      + concatLines [
        "  ssl_conf_command Ciphersuites ${t.ciphersuites13};"
        "  ssl_ecdh_curve ${t.groups};"
        "  ssl_prefer_server_ciphers off;"
        "  # HAProxy resumes TLS sessions when it opens new connections: keep them here."
        "  ssl_session_cache shared:rampart_backend:10m;"
        "  ssl_session_timeout 1h;"
        "  ssl_session_tickets off;"
        ""
        "  # Mutual TLS: a client certificate issued by the rampart CA itself, for the load"
        "  # balancer's name; anything else is refused before a request is read."
        "  ssl_client_certificate ${pki "ca.pem"};"
        "  ssl_verify_client on;"
        "  ssl_verify_depth 1;"
        "  if ($rampart_backend_client = 0) {"
        "    return 403;"
        "  }"
        ""
        "  client_max_body_size ${n.clientMaxBodySize};"
        ""
        "  # Security headers on every response, errors included. HSTS is HAProxy's: it"
        "  # terminates the public TLS."
        "  add_header X-Content-Type-Options \"nosniff\" always;"
        "  add_header X-Frame-Options \"DENY\" always;"
        "  add_header Referrer-Policy \"${n.referrerPolicy}\" always;"
        "  add_header Content-Security-Policy \"${n.contentSecurityPolicy}\" always;"
        ""
        "  location / {"
        "    proxy_pass http://$rampart_app_upstream;"
        "    # HTTP/1.1 without `Connection: close`, so the upstream keep-alive works."
        "    proxy_http_version 1.1;"
        "    proxy_set_header Connection \"\";"
        "    proxy_set_header Host $host;"
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"
        "    proxy_set_header X-Forwarded-Proto https;"
        "  }"
        "}"
        ""
        "# stub_status for the nginx exporter, on loopback only."
        "server {"
        "  listen 127.0.0.1:${toString n.stubStatusPort};"
        "  server_tokens off;"
        "  access_log off;"
        "  location = /stub_status {"
        "    stub_status;"
        "  }"
        "  location / {"
        "    return 404;"
        "  }"
        "}"
      ];
  in {
    "nginx/rampart.conf" = text;
    "nginx/nginx.conf" = mainFile s self;
  };

  # The main configuration's own directives, by the block they go in.
  main = s: let
    n = s.nginx;
  in {
    main = concatLines [
      "worker_processes ${toString n.workerProcesses};"
      "worker_rlimit_nofile ${toString (2 * n.workerConnections)};"
    ];
    events = concatLines ["worker_connections ${toString n.workerConnections};"];
    http = concatLines [
      (
        if n.accessLog == null
        then "access_log off;"
        else "access_log ${n.accessLog} combined buffer=64k flush=5s;"
      )
    ];
    inherit (n) user;
  };

  # nginx.conf for a host that is not NixOS: the blocks of `main`, every path nginx writes
  # under the settings' directories, errors to stderr (as on NixOS: the journal there, the
  # daemon's log in the lab).
  mainFile = s: self: let
    blocks = main s;
    temp = name: "  ${name}_temp_path ${s.stateDir}/nginx/${name};";
  in
    common.header {
      what = "nginx/nginx.conf";
      host = self;
      renderer = "nginx";
    }
    + concatLines [
      "#"
      "# The main configuration on a host that is not NixOS (there services.nginx writes it around"
      "# the same directives). Start nginx with `-e stderr -c <this file>`."
      "daemon off;"
      "user ${blocks.user} ${blocks.user};"
      "pid ${s.runDir}/nginx/nginx.pid;"
      "error_log stderr;"
    ]
    + blocks.main
    + "events {\n"
    + util.indent "  " blocks.events
    + "}\nhttp {\n"
    + util.indent "  " blocks.http
    + concatLines (map temp ["client_body" "proxy" "fastcgi" "uwsgi" "scgi"])
    + concatLines [
      "  # Relative to this file's directory."
      "  include rampart.conf;"
      "}"
    ];

  render = common.renderer {
    component = "nginx";
    appliesTo = self: topologyLib.hasRole self "web";
    problems = problemsOf;
    inherit files;
  };
in {
  __functor = _: render;
  main = common.renderer {
    component = "nginx";
    appliesTo = self: topologyLib.hasRole self "web";
    problems = problemsOf;
    files = _: s: _: main s;
  };
}
