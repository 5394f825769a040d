# lib/tests/render.nix: the `lib.render` / `lib.rendered` interface (docs/contracts.md,
# "Renderers"): which host gets which files, settings as an attrset or per host, the
# topology as an attrset or a file, and what is refused.
let
  inherit (builtins) attrNames mapAttrs;
  support = import ./support/render.nix;
  inherit (support) lib shipped grep evaluates;

  pathsOf = rendered: mapAttrs (_: files: attrNames files) rendered;
  daemonPaths = ["haproxy/haproxy.cfg" "mariadb/bootstrap.sql" "mariadb/rampart.cnf" "nftables/ruleset.nft" "nginx/rampart.conf"];
  # Only this branch's renderers: part B's (monitoring) join when present.
  ours = builtins.filter (path: builtins.elem path daemonPaths);
in {
  testRenderedFilesPerHost = {
    expr = mapAttrs (_: ours) (pathsOf lib.rendered);
    expected = {
      lb = ["haproxy/haproxy.cfg" "nftables/ruleset.nft"];
      web1 = ["mariadb/bootstrap.sql" "mariadb/rampart.cnf" "nftables/ruleset.nft" "nginx/rampart.conf"];
      web2 = ["mariadb/bootstrap.sql" "mariadb/rampart.cnf" "nftables/ruleset.nft" "nginx/rampart.conf"];
    };
  };
  testFourWebFilesPerHost = {
    expr = mapAttrs (_: ours) (pathsOf support.renderFourWeb);
    expected = {
      lb = ["haproxy/haproxy.cfg" "nftables/ruleset.nft"];
      web1 = ["mariadb/bootstrap.sql" "mariadb/rampart.cnf" "nftables/ruleset.nft" "nginx/rampart.conf"];
      web2 = ["mariadb/bootstrap.sql" "mariadb/rampart.cnf" "nftables/ruleset.nft" "nginx/rampart.conf"];
      web3 = ["nftables/ruleset.nft" "nginx/rampart.conf"];
      web4 = ["nftables/ruleset.nft" "nginx/rampart.conf"];
    };
  };
  testTopologyFromFile = {
    expr = lib.render {topology = ../../hosts/topology.json;} == lib.rendered;
    expected = true;
  };
  testDefaultSettingsAreLibSettings = {
    expr =
      lib.render {
        topology = shipped;
        settings = lib.settings;
      }
      == lib.rendered;
    expected = true;
  };
  testSettingsPerHost = {
    # The lab gives every host its own directories.
    expr = let
      rendered = lib.render {
        topology = shipped;
        settings = host: {pkiDir = "/lab/${host}/pki";};
      };
    in [
      (grep " *ssl_certificate .*" rendered.web2."nginx/rampart.conf")
      (grep " *bind [0-9.]*:443 .*" rendered.lb."haproxy/haproxy.cfg")
    ];
    expected = [
      ["  ssl_certificate /lab/web2/pki/backend.pem;"]
      ["  bind 10.42.0.10:443 ssl crt /lab/lb/pki/https.pem alpn h2,http/1.1"]
    ];
  };
  testPartialSettingsMergeRecursively = {
    expr = let
      rendered = lib.render {
        topology = shipped;
        settings.haproxy.healthCheck.interval = "1s";
      };
    in
      grep " *default-server check inter 1s fastinter 500ms downinter 1s fall 2 rise 2 .*" rendered.lb."haproxy/haproxy.cfg" != [];
    expected = true;
  };
  testInvalidTopologyThrows = {
    expr = evaluates (lib.render {topology = shipped // {version = 2;};});
    expected = false;
  };
  testSettingsNotAttrsetThrows = {
    expr = evaluates (lib.render {
      topology = shipped;
      settings = "/lab";
    });
    expected = false;
  };
  testBadSettingThrowsWhenItsFileIsRead = {
    # Laziness: a bad HAProxy setting does not stop the web hosts' files.
    expr = let
      rendered = lib.render {
        topology = shipped;
        settings.haproxy.retries = -1;
      };
    in [(evaluates rendered.web1) (evaluates rendered.lb)];
    expected = [true false];
  };
  testEveryFileNamesTopologyAndRenderer = {
    expr = builtins.concatMap (host:
      builtins.filter (path: grep ".*rendered by rampart from hosts/topology.json[.]" lib.rendered.${host}.${path} == [])
      (ours (attrNames lib.rendered.${host}))) (attrNames lib.rendered);
    expected = [];
  };
  testRenderersExposed = {
    expr = builtins.all (name: lib.renderers ? ${name}) ["haproxy" "mariadb" "nftables" "nginx"];
    expected = true;
  };
}
