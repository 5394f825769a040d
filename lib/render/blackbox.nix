# lib/render/blackbox.nix: the blackbox exporter's configuration on the monitoring host.
#
# Inputs (docs/contracts.md, "Renderers"): topology, settings (`pkiDir`, and
# `settings.blackbox`, merged over `defaults` below), host.
#
# Type: { topology, settings, host } -> { "blackbox/blackbox.yml" = string; }
#       (an empty set for every host but the one with role "monitoring")
#
# One module per kind of probe of lib/render/probes.nix. Why the blackbox exporter and not
# reach: it probes at every scrape (2 s in the lab, 15 s shipped) where reach runs once a
# minute, so a latency average over a window has enough samples; its per-phase timings
# (`probe_http_duration_seconds{phase}`) say where the time went; and both Debian
# (`prometheus-blackbox-exporter`) and nixpkgs (`services.prometheus.exporters.blackbox`)
# ship it, so the lab runs the very file NixOS does.
let
  inherit (builtins) head listToAttrs;
  topologyLib = import ../topology.nix;
  yaml = import ../yaml.nix;
  common = import ./common.nix;
  util = import ../util.nix;

  defaults = {
    # Upper bound of one probe; Prometheus' scrape timeout caps it further (the exporter
    # stops half a second before the scrape would time out).
    timeout = "5s";
  };

  section = import ./daemon-settings.nix "blackbox" defaults;
  duration = import ../duration.nix;

  problemsOf = topology: settings: let
    inherit (section settings) cfg;
  in
    common.requireServices topology ["https" "backendHttps" "blackboxExporter"]
    ++ (section settings).problems
    ++ util.optional (!(duration.isValid cfg.timeout)) "settings.blackbox.timeout is ${common.show cfg.timeout}; expected a duration such as \"5s\"";

  files = topology: settings: self: let
    inherit (section settings) cfg;
    pki = file: "${settings.pkiDir}/${file}";
    http = extra:
      {
        preferred_ip_protocol = "ip4";
        ip_protocol_fallback = false;
        valid_status_codes = [200];
        follow_redirects = false;
        fail_if_not_ssl = true;
      }
      // extra;
    publicName = head topology.publicNames;
    modules = {
      public = {
        prober = "http";
        inherit (cfg) timeout;
        http = http {
          headers.Host = publicName;
          tls_config = {
            ca_file = pki "ca.pem";
            server_name = publicName;
          };
        };
      };
      backend = {
        prober = "http";
        inherit (cfg) timeout;
        http = http {
          tls_config = {
            ca_file = pki "ca.pem";
            cert_file = pki "backend-client.pem";
            key_file = pki "backend-client.key";
          };
        };
      };
    };
    used = map (p: p.module) (import ./probes.nix {inherit topology;}).probes;
  in {
    "blackbox/blackbox.yml" =
      common.header {
        what = "blackbox/blackbox.yml";
        host = self;
        renderer = "blackbox";
      }
      + yaml.toYAML {keyOrder = ["modules" "prober" "timeout" "http"];} {
        modules = listToAttrs (map (name: {
          inherit name;
          value = modules.${name};
        }) (util.unique used));
      };
  };
in
  common.renderer {
    component = "blackbox";
    appliesTo = host: topologyLib.hasRole host "monitoring";
    problems = problemsOf;
    inherit files;
  }
