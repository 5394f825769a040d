# lib/tests/render-tls.nix: one setting, settings.tls.profile, gives HAProxy, nginx and MariaDB
# the protocol floor, suites and key-exchange groups of a Mozilla profile in
# lib/tls-profiles.json (the file reach judges them by); an unknown profile is refused.
let
  inherit (builtins) concatStringsSep fromJSON readFile;
  support = import ./support/render.nix;
  inherit (support) shipped grep evaluates;
  profiles = (fromJSON (readFile ../tls-profiles.json)).profiles;

  render = settings:
    support.lib.render {
      topology = shipped;
      inherit settings;
    };
  intermediate = render {};
  modern = render {tls.profile = "modern";};
  haproxy = r: r.lb."haproxy/haproxy.cfg";
  nginx = r: r.web1."nginx/rampart.conf";
  mariadb = r: r.web1."mariadb/rampart.cnf";
  openssl = r: r.web2."mariadb/openssl.cnf";
  groups = concatStringsSep ":" profiles.intermediate.tls_curves;
in {
  testEveryDaemonRendersTheProfileGroups = {
    expr = [
      (grep " *ssl-default-bind-curves .*" (haproxy intermediate))
      (grep " *ssl_ecdh_curve .*" (nginx intermediate))
      (grep "Groups = .*" (openssl intermediate))
    ];
    expected = [
      ["  ssl-default-bind-curves ${groups}"]
      ["  ssl_ecdh_curve ${groups};"]
      ["Groups = ${groups}"]
    ];
  };
  testIntermediateIsTls12AndUpWithoutDhe = {
    expr = [
      (grep " *ssl-default-bind-options .*" (haproxy intermediate))
      (grep " *ssl_protocols .*" (nginx intermediate))
      (grep "tls_version = .*" (mariadb intermediate))
      (grep "(.*[ :=])?DHE-.*" (haproxy intermediate + nginx intermediate + mariadb intermediate))
    ];
    expected = [
      ["  ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets"]
      ["  ssl_protocols TLSv1.2 TLSv1.3;"]
      ["tls_version = TLSv1.2,TLSv1.3"]
      []
    ];
  };
  testMariadbTakesBothSuiteListsInOneSetting = {
    expr = grep "ssl_cipher = .*" (mariadb intermediate);
    expected = ["ssl_cipher = ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"];
  };
  testModernIsTls13OnlyWithNoTls12Suites = {
    expr = [
      (grep " *ssl-default-(bind|server)-options .*" (haproxy modern))
      (grep " *ssl-default-(bind|server)-ciphers .*" (haproxy modern))
      (grep " *ssl_(protocols|ciphers) .*" (nginx modern))
      (grep "(tls_version|ssl_cipher) = .*" (mariadb modern))
    ];
    expected = [
      ["  ssl-default-bind-options ssl-min-ver TLSv1.3 no-tls-tickets" "  ssl-default-server-options ssl-min-ver TLSv1.3"]
      []
      ["  ssl_protocols TLSv1.3;"]
      ["tls_version = TLSv1.3" "ssl_cipher = TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"]
    ];
  };
  testHaproxyBindsTheHostAddressOnly = {
    expr = grep " *bind .*" (haproxy intermediate);
    expected = [
      "  bind 10.42.0.10:80"
      "  bind 10.42.0.10:443 ssl crt /var/lib/rampart/pki/https.pem alpn h2,http/1.1"
      "  bind 10.42.0.10:8405"
    ];
  };
  testUnknownProfileIsRefusedByEveryTlsRenderer = {
    expr = map (f: evaluates (f (render {tls.profile = "old";}))) [haproxy nginx mariadb];
    expected = [false false false];
  };
  testUnknownProfileMessageListsTheProfiles = {
    expr = support.common.tlsProfile {tls.profile = "old";};
    expected = ["settings.tls.profile is \"old\"; expected one of: intermediate, modern"];
  };
}
