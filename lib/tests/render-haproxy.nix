# lib/tests/render-haproxy.nix: N web hosts give N backend servers (in topology order, each
# verified by name against the rampart CA); the public side (TLS 1.2+, redirect, HSTS); the
# exporter restricted to the policy's sources; settings that are refused.
let
  inherit (builtins) fromJSON head map;
  support = import ./support/render.nix;
  inherit (support) shipped fourWeb grep capture evaluates;
  haproxy = support.lib.renderers.haproxy;

  cfg = topo: settings:
    (haproxy {
      topology = topo;
      inherit settings;
      host = "lb";
    })
    ."haproxy/haproxy.cfg";
  shippedCfg = cfg shipped {};
  serverNames = text: map (line: head (capture " *server ([a-z0-9-]+) .*" line)) (grep " *server .*" text);
  withHaproxy = settings: evaluates (cfg shipped {haproxy = settings;});
in {
  # Each web host once in `web` and once in `web_writes`.
  testOneServerPerWebHostShipped = {
    expr = serverNames shippedCfg;
    expected = ["web1" "web2" "web1" "web2"];
  };
  testOneServerPerWebHostFourWeb = {
    expr = serverNames (cfg fourWeb {});
    expected = ["web1" "web2" "web3" "web4" "web1" "web2" "web3" "web4"];
  };
  testServerVerifiedByNameAndSni = {
    expr = grep " *server web2 .*" shippedCfg;
    expected = [
      "  server web2 10.42.0.12:8443 sni str(web2.rampart.internal) check-sni web2.rampart.internal verifyhost web2.rampart.internal tcp-ut 2s"
      "  server web2 10.42.0.12:8443 sni str(web2.rampart.internal) verifyhost web2.rampart.internal tcp-ut 2s track web/web2"
    ];
  };
  testWritesGetAConnectionOfTheirOwn = {
    expr = grep " *(use_backend|default_backend|backend|option http-server-close|http-reuse|default-server)( .*)?" shippedCfg;
    expected = [
      "  use_backend web_writes unless METH_GET or METH_OPTIONS"
      "  default_backend web"
      "backend web"
      "  http-reuse safe"
      "  default-server check inter 2s fastinter 500ms downinter 1s fall 2 rise 2 ssl verify required ca-file /var/lib/rampart/pki/ca.pem crt /var/lib/rampart/pki/backend-client.pem alpn http/1.1 check-alpn http/1.1"
      "backend web_writes"
      "  option http-server-close"
      "  http-reuse never"
      "  default-server ssl verify required ca-file /var/lib/rampart/pki/ca.pem crt /var/lib/rampart/pki/backend-client.pem alpn http/1.1"
    ];
  };
  testBackendsOverVerifiedMutualTls = {
    expr = map (regex: grep regex shippedCfg != []) [
      " *default-server .* ssl verify required ca-file /var/lib/rampart/pki/ca.pem crt /var/lib/rampart/pki/backend-client.pem .*"
      " *ssl-server-verify required"
      " *http-reuse safe"
      " *balance roundrobin"
      " *option redispatch 1"
      " *retries 3"
      " *option httpchk"
    ];
    expected = [true true true true true true true];
  };
  testRetriesNeverReplayAWrite = {
    expr = grep " *(retry-on|http-request disable-l7-retry|option redispatch|retries) .*" shippedCfg;
    expected = [
      "  retries 3"
      "  option redispatch 1"
      "  retry-on conn-failure empty-response response-timeout 502"
      "  http-request disable-l7-retry unless METH_GET or METH_OPTIONS"
      # web_writes: only what was never sent.
      "  retries 3"
      "  option redispatch 1"
      "  retry-on conn-failure"
    ];
  };
  testReloadsRefuseNothing = {
    expr = grep " *(hard-stop-after|option idle-close-on-response|stats socket).*" (cfg shipped {haproxy.hardStopAfter = "2m";});
    expected = [
      "  stats socket /run/rampart/haproxy/stats.sock mode 600 level admin expose-fd listeners"
      "  hard-stop-after 2m"
      "  option idle-close-on-response"
    ];
  };
  testHealthCheckIntervals = {
    expr = grep " *default-server check inter 2s fastinter 250ms downinter 1s fall 2 rise 2 .*" (cfg shipped {haproxy.healthCheck.fastInterval = "250ms";}) != [];
    expected = true;
  };
  testBadHealthCheckIntervalThrows = {
    expr = withHaproxy {healthCheck.downInterval = "soon";};
    expected = false;
  };
  testTls12Minimum = {
    expr = grep " *ssl-default-(bind|server)-options .*" shippedCfg;
    expected = ["  ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets" "  ssl-default-server-options ssl-min-ver TLSv1.2"];
  };
  testHttpRedirects = {
    expr = grep " *http-request redirect .*" shippedCfg;
    expected = ["  http-request redirect scheme https code 301"];
  };
  testHstsAtLeastOneYear = {
    expr = fromJSON (head (capture ".*Strict-Transport-Security \"max-age=([0-9]+).*" shippedCfg)) >= 31536000;
    expected = true;
  };
  testHstsIncludeSubdomains = {
    expr = grep ".*Strict-Transport-Security.*" (cfg shipped {haproxy.hstsIncludeSubdomains = true;});
    expected = ["  http-after-response set-header Strict-Transport-Security \"max-age=63072000; includeSubDomains\""];
  };
  testExporterOnLbAddressForMonitoringOnly = {
    expr = grep " *(bind 10[.].*:8405|acl monitoring .*|http-request deny.*|.*prometheus-exporter.*)" shippedCfg;
    expected = [
      "  bind 10.42.0.10:8405"
      "  acl monitoring src 10.42.0.10/32"
      "  http-request deny unless monitoring"
      "  http-request use-service prometheus-exporter if { path /metrics }"
    ];
  };
  testExporterDeniedWithoutPolicy = {
    expr = grep " *http-request deny.*" (cfg (shipped // {policy = builtins.filter (r: r.service != "haproxyExporter") shipped.policy;}) {});
    expected = ["  http-request deny"];
  };
  testStatsSocketUnderRunDir = {
    expr = grep " *stats socket .*" (cfg shipped {runDir = "/lab/lb/run";});
    expected = ["  stats socket /lab/lb/run/haproxy/stats.sock mode 600 level admin expose-fd listeners"];
  };
  testPkiDirSetting = {
    expr = grep " *bind [0-9.]*:443 .*" (cfg shipped {pkiDir = "/lab/lb/pki";});
    expected = ["  bind 10.42.0.10:443 ssl crt /lab/lb/pki/https.pem alpn h2,http/1.1"];
  };
  testOnlyOnLoadBalancer = {
    expr = map (host:
      haproxy {
        topology = shipped;
        settings = {};
        inherit host;
      }) ["web1" "web2"];
    expected = [{} {}];
  };

  # ------------------------------------------------------------ refused input

  testDefaultsAccepted = {
    expr = withHaproxy {};
    expected = true;
  };
  testHstsUnderOneYearThrows = {
    expr = withHaproxy {hstsMaxAge = 86400;};
    expected = false;
  };
  testBadDurationThrows = {
    expr = withHaproxy {timeouts.connect = "5 seconds";};
    expected = false;
  };
  testBadHealthCheckPathThrows = {
    expr = withHaproxy {healthCheck.path = "healthz now";};
    expected = false;
  };
  testRelativePkiDirThrows = {
    expr = evaluates (cfg shipped {pkiDir = "pki";});
    expected = false;
  };
  testMissingServiceThrows = {
    expr = evaluates (cfg (shipped // {services = builtins.removeAttrs shipped.services ["backendHttps"];}) {});
    expected = false;
  };
  testMessageNamesSettingGotAndExpected = {
    expr = support.common.intAtLeast 31536000 "settings.haproxy.hstsMaxAge" 86400;
    expected = ["settings.haproxy.hstsMaxAge is 86400; expected an integer of at least 31536000"];
  };
  testMessageMissingService = {
    expr = support.common.requireServices {services = {http.port = 80;};} ["http" "backendHttps"];
    expected = ["topology has no service \"backendHttps\" (expected one of: http); add services.backendHttps to hosts/topology.json"];
  };
}
