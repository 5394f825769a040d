# lib/render/prometheus.nix: Prometheus' configuration and alerting rules for the
# monitoring host, from hosts/topology.json.
#
# Inputs (docs/contracts.md, "Renderers"):
#   topology  a validated topology
#   settings  the renderers' settings; this file reads `settings.prometheus`, merged over
#             `defaults` below (a caller names only what it changes)
#   host      an element of `topology.hosts` or its name
#
# Type: { topology, settings, host } -> { "prometheus/prometheus.yml" = string;
#                                        "prometheus/rules.yml" = string; }
#       (an empty set for every host but the one with role "monitoring")
#
# Example:
#   (import ./prometheus.nix { topology = lib.shippedTopology; settings = { }; host = "lb"; })
#     ."prometheus/prometheus.yml"
#   => "# prometheus/prometheus.yml for lb (10.42.0.10), rendered by rampart from hosts/topology.json. …"
#
# Scrape jobs, one static target per host with a `host` label (= the topology's host
# name, which every alert prints): `node` on every host (it also serves `reach`'s
# textfile metrics, docs/contracts.md), `nginx` on web hosts, `mysqld` on database hosts,
# `haproxy` (the built-in exporter, path /metrics) on the load balancer, `etcd` on every
# host (each is a member; its plain-HTTP metrics listener, lib/render/etcd.nix), and Prometheus and
# Alertmanager themselves on the monitoring host, so that the monitoring is watched too.
let
  inherit (builtins) attrNames concatMap concatStringsSep elem filter isAttrs isFloat isInt isString listToAttrs;
  util = import ../util.nix;
  topologyLib = import ../topology.nix;
  duration = import ../duration.nix;
  yaml = import ../yaml.nix;
  common = import ./common.nix;
  inherit (common) show;

  defaults = {
    # How often every target is scraped and every rule evaluated. The lab uses 2s so that
    # an alert reaches its webhook within seconds.
    scrapeInterval = "15s";
    # null: the same as scrapeInterval.
    evaluationInterval = null;
    # The window of every rate()/increase() in the rules; null: four scrape intervals, the
    # fewest that keep one missed scrape from turning a rate into a gap.
    rateWindow = null;
    # Where prometheus.yml finds the rules: relative paths are resolved against the
    # directory of prometheus.yml (the lab writes both files side by side); the NixOS
    # module gives an absolute path.
    rulesFile = "rules.yml";
    # Every alert's runbook_url is this plus `#<alert name in lower case>`.
    runbookUrl = "${(builtins.fromTOML (builtins.readFile ../../Cargo.toml)).workspace.package.repository}/blob/main/docs/runbook.md";
    # Per alert name: `enable` (false drops the rule) and `for` (replaces its default),
    # e.g. { HaproxyHighQPS.for = "1m"; NginxDown.enable = false; }.
    alerts = {};
    # An upper bound on every alert's `for` (null: none). The lab uses "6s" so that its
    # scenarios finish in seconds; production keeps each alert's own slack.
    maxFor = null;
    # HAProxy frontends whose requests are the site's load (a regular expression over the
    # `proxy` label): the public ones, not the exporter's own.
    haproxyFrontends = "http|https";
    # Requests/s per web host above which HaproxyBackendHighQPS fires; null: its even share
    # of monitoring.qpsThreshold (the threshold divided by the number of web hosts).
    backendQpsThreshold = null;
    # Queries/s per database server above which MariadbHighQPS fires; null: ten times
    # monitoring.qpsThreshold.
    databaseQpsThreshold = null;
    # HaproxyHigh5xxRatio: the ratio of 5xx responses that fires, and the request rate
    # below which the ratio is not judged.
    http5xxRatio = 0.05;
    http5xxMinRequestRate = 1;
    # MariadbReplicationLagHigh: seconds behind the primary.
    replicationLagSeconds = 30;
    # ReachCertificateExpiringSoon: days left before notAfter (warning, critical).
    certExpiryWarningDays = 14;
    certExpiryCriticalDays = 3;
    # ReachTextfileStale: how old reach's last run may be.
    reachStaleAfter = "10m";
  };

  isNumber = v: isInt v || isFloat v;

  section = import ./daemon-settings.nix "prometheus" defaults;

  # The alert groups for a topology and merged settings (only names are read when
  # checking `alerts`, so the derived values may stay unevaluated there).
  groupsOf = topology: cfg:
    import ./prometheus-alerts.nix {
      inherit topology;
      cfg =
        cfg
        // {
          rateWindow =
            if cfg.rateWindow == null
            then duration.format (4 * duration.parse cfg.scrapeInterval)
            else cfg.rateWindow;
          reachStaleAfterSeconds = duration.parse cfg.reachStaleAfter / 1000;
        };
    };

  # ------------------------------------------------------------ validation

  durationProblem = name: value:
    util.optional (!(duration.isValid value))
    "settings.prometheus.${name} is ${show value}; expected a duration such as \"15s\" or \"2m\"";
  optionalDuration = name: value:
    if value == null
    then []
    else durationProblem name value;
  positive = name: value:
    util.optional (!(isNumber value && value > 0))
    "settings.prometheus.${name} is ${show value}; expected a positive number";
  optionalPositive = name: value:
    if value == null
    then []
    else positive name value;

  # Alert names do not depend on the topology's tiers or the settings' values.
  knownAlerts = topology: util.unique (concatMap (group: map (a: a.alert) group.alerts) (groupsOf topology defaults));

  alertProblems = topology: cfg:
    if !(isAttrs cfg.alerts)
    then ["settings.prometheus.alerts is ${show cfg.alerts}; expected an attribute set of alert names, such as { NginxDown.enable = false; }"]
    else
      concatMap (name: let
        entry = cfg.alerts.${name};
        known = knownAlerts topology;
      in
        if !(elem name known)
        then ["settings.prometheus.alerts names an unknown alert \"${name}\" (expected one of: ${concatStringsSep ", " known})"]
        else if !(isAttrs entry)
        then ["settings.prometheus.alerts.${name} is ${show entry}; expected an attribute set { enable?; for?; }"]
        else
          concatMap (key:
            if key == "enable"
            then common.bool "settings.prometheus.alerts.${name}.enable" entry.enable
            else if key == "for"
            then durationProblem "alerts.${name}.for" entry.for
            else ["settings.prometheus.alerts.${name} has an unknown key \"${key}\" (expected enable or for)"])
          (attrNames entry)) (attrNames cfg.alerts);

  problemsOf = topology: settings: let
    inherit (section settings) cfg;
  in
    common.requireServices topology ["nodeExporter" "nginxExporter" "mysqldExporter" "haproxyExporter" "etcdMetrics" "prometheus" "alertmanager"]
    ++ (section settings).problems
    ++ durationProblem "scrapeInterval" cfg.scrapeInterval
    ++ optionalDuration "evaluationInterval" cfg.evaluationInterval
    ++ optionalDuration "rateWindow" cfg.rateWindow
    ++ optionalDuration "maxFor" cfg.maxFor
    ++ durationProblem "reachStaleAfter" cfg.reachStaleAfter
    ++ util.optional (!(isString cfg.rulesFile && cfg.rulesFile != "")) "settings.prometheus.rulesFile is ${show cfg.rulesFile}; expected a path (relative to prometheus.yml, or absolute)"
    ++ util.optional (!(isString cfg.runbookUrl && builtins.match "https?://[^ ]*" cfg.runbookUrl != null)) "settings.prometheus.runbookUrl is ${show cfg.runbookUrl}; expected an http:// or https:// URL"
    # The value goes inside a double-quoted PromQL matcher.
    ++ util.optional (!(isString cfg.haproxyFrontends && cfg.haproxyFrontends != "" && builtins.match ".*[\"\\].*" cfg.haproxyFrontends == null)) "settings.prometheus.haproxyFrontends is ${show cfg.haproxyFrontends}; expected a regular expression over frontend names, without quotes or backslashes"
    ++ optionalPositive "backendQpsThreshold" cfg.backendQpsThreshold
    ++ optionalPositive "databaseQpsThreshold" cfg.databaseQpsThreshold
    ++ positive "http5xxRatio" cfg.http5xxRatio
    ++ util.optional (!(isNumber cfg.http5xxMinRequestRate && cfg.http5xxMinRequestRate >= 0)) "settings.prometheus.http5xxMinRequestRate is ${show cfg.http5xxMinRequestRate}; expected a number of at least 0"
    ++ positive "replicationLagSeconds" cfg.replicationLagSeconds
    ++ positive "certExpiryWarningDays" cfg.certExpiryWarningDays
    ++ positive "certExpiryCriticalDays" cfg.certExpiryCriticalDays
    ++ alertProblems topology cfg;

  # ------------------------------------------------------------ prometheus.yml

  configFile = topology: cfg: let
    monitoring = builtins.head (topologyLib.hostsWithRole topology "monitoring");
    withRole = topologyLib.hostsWithRole topology;
    databaseHosts = filter (h: topologyLib.hasRole h "databasePrimary" || topologyLib.hasRole h "databaseReplica") topology.hosts;
    target = service: h: {
      targets = ["${h.address}:${toString topology.services.${service}.port}"];
      labels.host = h.name;
    };
    job = name: service: hosts: extra:
      util.optional (hosts != []) ({
          job_name = name;
          static_configs = map (target service) hosts;
        }
        // extra);
  in {
    global = {
      scrape_interval = cfg.scrapeInterval;
      evaluation_interval =
        if cfg.evaluationInterval == null
        then cfg.scrapeInterval
        else cfg.evaluationInterval;
    };
    rule_files = [cfg.rulesFile];
    alerting.alertmanagers = [
      {
        static_configs = [
          {targets = ["${monitoring.address}:${toString topology.services.alertmanager.port}"];}
        ];
      }
    ];
    scrape_configs =
      job "node" "nodeExporter" topology.hosts {}
      ++ job "nginx" "nginxExporter" (withRole "web") {}
      ++ job "mysqld" "mysqldExporter" databaseHosts {}
      ++ job "haproxy" "haproxyExporter" (withRole "loadBalancer") {metrics_path = "/metrics";}
      ++ job "etcd" "etcdMetrics" topology.hosts {}
      ++ job "prometheus" "prometheus" [monitoring] {}
      ++ job "alertmanager" "alertmanager" [monitoring] {};
  };

  # ------------------------------------------------------------ rules.yml

  rulesFile = topology: cfg: let
    minMs = a: b:
      if a < b
      then a
      else b;
    forOf = a: let
      chosen = cfg.alerts.${a.alert}.for or a.for;
    in
      if cfg.maxFor == null
      then chosen
      else duration.format (minMs (duration.parse chosen) (duration.parse cfg.maxFor));
    enabled = a: cfg.alerts.${a.alert}.enable or true;
    rule = a: {
      inherit (a) alert expr;
      for = forOf a;
      labels.severity = a.severity;
      annotations = {
        inherit (a) summary description;
        runbook_url = "${cfg.runbookUrl}#${util.toLower a.alert}";
      };
    };
  in {
    groups =
      filter (group: group.rules != [])
      (map (group: {
          name = "rampart-${group.name}";
          rules = map rule (filter enabled group.alerts);
        })
        (filter (group: group.when) (groupsOf topology cfg)));
  };

  write = yaml.toYAML {
    keyOrder = ["global" "rule_files" "alerting" "job_name" "metrics_path" "static_configs" "targets" "name" "alert" "expr" "for" "labels" "summary" "description"];
  };

  files = topology: settings: self: let
    inherit (section settings) cfg;
    header = what:
      common.header {
        inherit what;
        host = self;
        renderer = "prometheus";
      };
  in
    listToAttrs [
      {
        name = "prometheus/prometheus.yml";
        value = header "prometheus/prometheus.yml" + write (configFile topology cfg);
      }
      {
        name = "prometheus/rules.yml";
        value = header "prometheus/rules.yml" + "# Runbook: ${cfg.runbookUrl}\n" + write (rulesFile topology cfg);
      }
    ];
in
  common.renderer {
    component = "prometheus";
    appliesTo = host: topologyLib.hasRole host "monitoring";
    problems = problemsOf;
    inherit files;
  }
