# lib/render/alertmanager.nix: Alertmanager's configuration for the monitoring host, from
# hosts/topology.json.
#
# Inputs (docs/contracts.md, "Renderers"):
#   topology  a validated topology; reads `monitoring.alertReceiver` ({ name, webhookUrl })
#   settings  the renderers' settings; this file reads `settings.alertmanager`, merged over
#             `defaults` below
#   host      an element of `topology.hosts` or its name
#
# Type: { topology, settings, host } -> { "alertmanager/alertmanager.yml" = string; }
#       (an empty set for every host but the one with role "monitoring")
#
# Example:
#   (import ./alertmanager.nix { topology = lib.shippedTopology; settings = { }; host = "lb"; })
#     ."alertmanager/alertmanager.yml"
#   => "# alertmanager/alertmanager.yml for lb (10.42.0.10), rendered by rampart …"
#
# Every alert goes to the one receiver the topology names, as a webhook, grouped by name and
# host (the host where the problem is: lib/render/prometheus-alerts.nix). Inhibition keeps
# one problem to one notification (the rules below say which alert explains which): a
# critical alert mutes the warning of the same name on the same host, a host monitoring
# cannot reach mutes everything else about it, a dead nginx or a backend out of rotation
# mutes its probes and reach's view of it, no backend at all mutes every single-backend
# and public-endpoint alert, and a specific finding mutes the generic one.
let
  inherit (builtins) all isList isString;
  util = import ../util.nix;
  topologyLib = import ../topology.nix;
  duration = import ../duration.nix;
  yaml = import ../yaml.nix;
  common = import ./common.nix;
  inherit (common) show;

  defaults = {
    # Wait for more alerts of a new group before the first notification. Short, because
    # the rules' `for:` already absorbed the blips; the lab uses 1s.
    groupWait = "10s";
    # Wait before notifying about alerts added to a group that was already notified.
    groupInterval = "1m";
    # Resend a notification for alerts that are still firing.
    repeatInterval = "4h";
    # An alert that Prometheus stops sending is resolved after this long.
    resolveTimeout = "5m";
    # One notification per alert name and host: different problems never hide each other.
    groupBy = ["alertname" "host"];
    # Tell the receiver when an alert resolves, too.
    sendResolved = true;
    # The URL Alertmanager is reached at (`--web.external-url`, the links in its
    # notifications); null: http://<monitoring host's address>:<alertmanager port>/.
    externalUrl = null;
  };

  section = import ./daemon-settings.nix "alertmanager" defaults;

  problemsOf = _topology: settings: let
    inherit (section settings) cfg;
    durationProblem = name:
      util.optional (!(duration.isValid cfg.${name}))
      "settings.alertmanager.${name} is ${show cfg.${name}}; expected a duration such as \"10s\" or \"5m\"";
  in
    (section settings).problems
    ++ durationProblem "groupWait"
    ++ durationProblem "groupInterval"
    ++ durationProblem "repeatInterval"
    ++ durationProblem "resolveTimeout"
    ++ util.optional (!(isList cfg.groupBy && cfg.groupBy != [] && all (label: isString label && builtins.match "[a-zA-Z_][a-zA-Z0-9_]*" label != null) cfg.groupBy))
    "settings.alertmanager.groupBy is ${show cfg.groupBy}; expected a non-empty list of label names such as [ \"alertname\" \"host\" ]"
    ++ common.bool "settings.alertmanager.sendResolved" cfg.sendResolved
    ++ util.optional (cfg.externalUrl != null && !(isString cfg.externalUrl && builtins.match "https?://[^ ]*/" cfg.externalUrl != null))
    "settings.alertmanager.externalUrl is ${show cfg.externalUrl}; expected an http:// or https:// URL ending in \"/\", or null for the default";

  # Which alerts explain which (lib/render/inhibitions.nix).
  inhibitions = import ./inhibitions.nix;

  files = topology: settings: self: let
    inherit (section settings) cfg;
    receiver = topology.monitoring.alertReceiver;
    config = {
      global.resolve_timeout = cfg.resolveTimeout;
      route = {
        receiver = receiver.name;
        group_by = cfg.groupBy;
        group_wait = cfg.groupWait;
        group_interval = cfg.groupInterval;
        repeat_interval = cfg.repeatInterval;
      };
      receivers = [
        {
          inherit (receiver) name;
          webhook_configs = [
            {
              url = receiver.webhookUrl;
              send_resolved = cfg.sendResolved;
            }
          ];
        }
      ];
      inhibit_rules =
        map (rule: {
          source_matchers = rule.source;
          target_matchers = rule.target;
          inherit (rule) equal;
        })
        inhibitions;
    };
    monitoring = builtins.head (topologyLib.hostsWithRole topology "monitoring");
    externalUrl =
      if cfg.externalUrl == null
      then "http://${monitoring.address}:${toString topology.services.alertmanager.port}/"
      else cfg.externalUrl;
  in {
    # Command-line flags every runner adds (the NixOS module and the lab).
    "alertmanager/flags.json" = builtins.toJSON ["--web.external-url=${externalUrl}"];
    "alertmanager/alertmanager.yml" =
      common.header {
        what = "alertmanager/alertmanager.yml";
        host = self;
        renderer = "alertmanager";
      }
      + yaml.toYAML {keyOrder = ["global" "route" "receivers" "inhibit_rules" "name" "receiver" "group_by" "group_wait" "group_interval" "repeat_interval" "url" "source_matchers" "target_matchers"];} config;
  };
in
  common.renderer {
    component = "alertmanager";
    appliesTo = host: topologyLib.hasRole host "monitoring";
    problems = problemsOf;
    inherit files;
  }
