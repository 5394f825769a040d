# lib/tests/render-nginx.nix: the backend listener (host address, backendHttps port, TLS with
# the backend certificate, the load balancer's client certificate required), the proxy to
# the application, stub_status on loopback; settings that are refused.
let
  inherit (builtins) attrNames;
  support = import ./support/render.nix;
  inherit (support) shipped fourWeb grep evaluates;
  nginx = support.lib.renderers.nginx;

  conf = topo: host: settings:
    (nginx {
      topology = topo;
      inherit host settings;
    })
    ."nginx/rampart.conf";
  web1 = conf shipped "web1" {};
  withSettings = settings: evaluates (conf shipped "web1" settings);
in {
  testListensOnHostAddressOnly = {
    expr = map (host: grep " *listen .*" (conf fourWeb host {})) ["web1" "web4"];
    expected = [
      ["  listen 10.42.0.11:8443 ssl default_server;" "  listen 127.0.0.1:8081;"]
      ["  listen 10.42.0.14:8443 ssl default_server;" "  listen 127.0.0.1:8081;"]
    ];
  };
  testMutualTls = {
    expr = grep " *ssl_(certificate|certificate_key|client_certificate|verify_client|protocols) .*" web1;
    expected = [
      "  ssl_certificate /var/lib/rampart/pki/backend.pem;"
      "  ssl_certificate_key /var/lib/rampart/pki/backend.key;"
      "  ssl_protocols TLSv1.2 TLSv1.3;"
      "  ssl_client_certificate /var/lib/rampart/pki/ca.pem;"
      "  ssl_verify_client on;"
    ];
  };
  testOnlyTheLoadBalancersCertificate = {
    expr = grep " *\"~.*" web1;
    expected = ["  \"~(^|,)CN=lb\\.rampart\\.internal(,|$)\" 1;"];
  };
  testSecurityHeaders = {
    expr = map (header: grep " *add_header ${header} .* always;" web1 != []) ["X-Content-Type-Options" "X-Frame-Options" "Referrer-Policy" "Content-Security-Policy"];
    expected = [true true true true];
  };
  testProxiesToAppPortSetting = {
    # Both upstreams: the pooled one and the one-connection-per-request one.
    expr = grep " *server 127.*" (conf shipped "web2" {app.port = 9000;});
    expected = ["  server 127.0.0.1:9000;" "  server 127.0.0.1:9000;"];
  };
  testWritesGetAConnectionOfTheirOwn = {
    expr = grep " *(proxy_pass .*|default rampart.*|GET .*|HEAD .*|OPTIONS .*|keepalive .*)" (conf shipped "web2" {});
    expected = [
      "  keepalive 32;"
      "  default rampart_app_once;"
      "  GET rampart_app;"
      "  HEAD rampart_app;"
      "  OPTIONS rampart_app;"
      "    proxy_pass http://$rampart_app_upstream;"
    ];
  };
  testStubStatusPortSetting = {
    expr = grep " *(listen 127.*|stub_status;)" (conf shipped "web2" {nginx.stubStatusPort = 9200;});
    expected = ["  listen 127.0.0.1:9200;" "    stub_status;"];
  };
  testOnlyOnWebHosts = {
    expr = nginx {
      topology = shipped;
      settings = {};
      host = "lb";
    };
    expected = {};
  };
  testWebHostsOfFourWeb = {
    expr = builtins.filter (host: support.renderFourWeb.${host} ? "nginx/rampart.conf") (attrNames support.renderFourWeb);
    expected = ["web1" "web2" "web3" "web4"];
  };

  # ------------------------------------------------------------ refused input

  testDefaultsAccepted = {
    expr = withSettings {};
    expected = true;
  };
  testStubStatusOnAppPortThrows = {
    expr = withSettings {nginx.stubStatusPort = 8080;};
    expected = false;
  };
  testAppPortOnTopologyServiceThrows = {
    # 9100 is the node exporter's, which listens on every address.
    expr = withSettings {app.port = 9100;};
    expected = false;
  };
  testPortOutOfRangeThrows = {
    expr = withSettings {nginx.stubStatusPort = 70000;};
    expected = false;
  };
  testQuoteInHeaderThrows = {
    expr = withSettings {nginx.contentSecurityPolicy = "default-src \"self\"";};
    expected = false;
  };
  testBadBodySizeThrows = {
    expr = withSettings {nginx.clientMaxBodySize = "1 MB";};
    expected = false;
  };
  testMessagePort = {
    expr = support.common.port "settings.nginx.stubStatusPort" "8o81";
    expected = ["settings.nginx.stubStatusPort is \"8o81\"; expected an integer in 1..65535"];
  };
}
