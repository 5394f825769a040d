# lib/tests/render-prometheus.nix: the Prometheus and Alertmanager renderers.
#
# Golden files (lib/tests/golden/lb/…) pin the exact text for the shipped topology;
# property cases check what must hold for any topology (one scrape target per host and
# exporter, tiers without hosts give no jobs or rules), how settings change the output,
# that bad settings throw, and that every alert has its runbook section and its promtool
# test. The daemons' own checks (promtool, amtool) run in `infralab check`.
let
  inherit (builtins) attrNames concatMap deepSeq elem filter fromJSON head length listToAttrs match readDir readFile split tryEval;
  topologyLib = import ../topology.nix;
  util = import ../util.nix;

  shipped = topologyLib.fromFile ../../hosts/topology.json;
  fourWeb = fromJSON (readFile ../../tests/topologies/good/four-web.json);

  prometheus = import ../render/prometheus.nix;
  alertmanager = import ../render/alertmanager.nix;
  render = renderer: topology: settings: host: renderer {inherit topology settings host;};
  promFiles = topology: settings: render prometheus topology settings "lb";
  config = topology: settings: (promFiles topology settings)."prometheus/prometheus.yml";
  rules = topology: settings: (promFiles topology settings)."prometheus/rules.yml";
  amConfig = topology: settings: (render alertmanager topology settings "lb")."alertmanager/alertmanager.yml";

  evaluates = value: (tryEval (deepSeq value true)).success;
  lines = text: filter builtins.isString (split "\n" text);
  # The captured groups of `regex` on every line that matches it.
  grep = regex: text: filter (m: m != null) (map (match regex) (lines text));

  # The `- job_name:` blocks of prometheus.yml, as { <job> = [ "<target> <host>" ]; }: every
  # target line followed by the `host:` label line of the same static config.
  jobs = text: let
    blocks = filter builtins.isString (split "\n- job_name: " text);
    jobOf = block: let
      targets = grep " *- '([0-9.]+:[0-9]+)'" block;
      hosts = grep " *host: (.*)" block;
    in {
      name = head (lines block);
      value = util.imap0 (i: t: "${head t} ${head (builtins.elemAt hosts i)}") targets;
    };
  in
    listToAttrs (map jobOf (builtins.tail blocks));

  alertNames = text: util.unique (map head (grep " *- alert: (.*)" text));
  forsOf = text: map head (grep " *for: (.*)" text);

  # topology variants
  withoutReplica =
    shipped
    // {
      hosts = map (h:
        if elem "databaseReplica" h.roles
        then h // {roles = ["web"];}
        else h)
      shipped.hosts;
    };
  withoutDatabase =
    shipped
    // {
      hosts = map (h: h // {roles = filter (r: r != "databasePrimary" && r != "databaseReplica") h.roles;}) shipped.hosts;
    };

  runbook = readFile ../../docs/runbook.md;
  runbookSections = listToAttrs (map (section: {
    name = head (lines section);
    value = section;
  }) (builtins.tail (filter builtins.isString (split "\n## " runbook))));

  promtoolDir = ./prometheus;
  promtoolTests =
    concatMap (file: lines (readFile (promtoolDir + "/${file}")))
    (filter (file: match ".*\\.test\\.yml" file != null) (attrNames (readDir promtoolDir)));
  # How many `alertname: <name>` cases the promtool tests have per alert.
  promtoolCases = name: length (filter (line: match " *alertname: ${name}" line != null) promtoolTests);
  # Cases that expect the alert to fire (an `exp_labels` under its `alertname`).
  shippedAlerts = alertNames (rules shipped {});

  # Cause → symptom pairs, "Cause>Symptom", as the alerts' `symptomOf` says them and as
  # the inhibition rules that name alerts on both sides do (a regular expression there is
  # an alternation of names). A rule from an alert to itself refines by other labels
  # (severity, probe) and pairs nothing.
  alertData = concatMap (group: group.alerts) (import ../render/prometheus-alerts.nix {
    topology = shipped;
    cfg = {};
  });
  declaredPairs = util.unique (concatMap (a: map (cause: "${cause}>${a.alert}") (a.symptomOf or [])) alertData);
  namesIn = matchers:
    concatMap (m: let
      exact = match ''alertname="([A-Za-z0-9]+)"'' m;
      alternation = match ''alertname=~"([A-Za-z0-9|]+)"'' m;
    in
      if exact != null
      then exact
      else if alternation != null
      then filter builtins.isString (split "[|]" (head alternation))
      else [])
    matchers;
  inhibitionPairs = util.unique (concatMap (rule:
    concatMap (source:
      map (target: "${source}>${target}") (filter (target: target != source) (namesIn rule.target)))
    (namesIn rule.source))
  (import ../render/inhibitions.nix));
  missingFrom = these: filter (pair: !(elem pair these));
in {
  # ------------------------------------------------------------ golden files

  testGoldenPrometheusYml = {
    expr = config shipped {};
    expected = readFile ./golden/lb/prometheus/prometheus.yml;
  };
  testGoldenRulesYml = {
    expr = rules shipped {};
    expected = readFile ./golden/lb/prometheus/rules.yml;
  };
  testGoldenAlertmanagerYml = {
    expr = amConfig shipped {};
    expected = readFile ./golden/lb/alertmanager/alertmanager.yml;
  };

  # ------------------------------------------------------------ which hosts

  testOnlyTheMonitoringHost = {
    expr = map (host: attrNames (render prometheus shipped {} host // render alertmanager shipped {} host)) ["lb" "web1" "web2"];
    expected = [["alertmanager/alertmanager.yml" "alertmanager/flags.json" "prometheus/consoles/runbook.html" "prometheus/flags.json" "prometheus/prometheus.yml" "prometheus/rules.yml"] [] []];
  };
  testHostAsAttrset = {
    expr = render prometheus shipped {} (head shipped.hosts) == promFiles shipped {};
    expected = true;
  };

  # ------------------------------------------------------------ scrape targets

  testShippedJobs = {
    expr = jobs (config shipped {});
    expected = {
      node = ["10.42.0.10:9100 lb" "10.42.0.11:9100 web1" "10.42.0.12:9100 web2"];
      nginx = ["10.42.0.11:9113 web1" "10.42.0.12:9113 web2"];
      mysqld = ["10.42.0.11:9104 web1" "10.42.0.12:9104 web2"];
      haproxy = ["10.42.0.10:8405 lb"];
      etcd = ["10.42.0.10:2381 lb" "10.42.0.11:2381 web1" "10.42.0.12:2381 web2"];
      prometheus = ["10.42.0.10:9090 lb"];
      alertmanager = ["10.42.0.10:9093 lb"];
      # URLs, not address:port (testProbeTargets).
      probe = [];
    };
  };
  testFourWebHostsGiveFourNginxTargets = {
    expr = (jobs (config fourWeb {})).nginx;
    expected = ["10.42.0.11:9113 web1" "10.42.0.12:9113 web2" "10.42.0.13:9113 web3" "10.42.0.14:9113 web4"];
  };
  testFourWebHostsNodeAndMysqld = {
    expr = let
      j = jobs (config fourWeb {});
    in [(length j.node) j.mysqld];
    expected = [5 ["10.42.0.11:9104 web1" "10.42.0.12:9104 web2"]];
  };
  testFourWebHostsShareOfThreshold = {
    expr = grep ".*haproxy_server_http_responses_total.* > ([0-9.]+), .*" (rules fourWeb {});
    expected = [["12.5"]];
  };
  testNoDatabaseNoMysqldJob = {
    expr = attrNames (jobs (config withoutDatabase {}));
    expected = ["alertmanager" "etcd" "haproxy" "nginx" "node" "probe" "prometheus"];
  };
  testHaproxyAndProbeMetricsPaths = {
    expr = grep " *metrics_path: (.*)" (config shipped {});
    expected = [["/metrics"] ["/probe"]];
  };
  testProbeTargets = {
    expr = grep " *- '(https://.*)'" (config fourWeb {});
    # The public endpoint, then every web host's backend listener.
    expected = [["https://10.42.0.10:443/"] ["https://10.42.0.11:8443/"] ["https://10.42.0.12:8443/"] ["https://10.42.0.13:8443/"] ["https://10.42.0.14:8443/"]];
  };
  testProbesAskTheBlackboxExporter = {
    expr = grep " *replacement: '(.*)'" (config shipped {});
    expected = [["10.42.0.10:9115"]];
  };
  testAlertmanagerTarget = {
    expr = grep " *- '(.*:9093)'" (config shipped {});
    # Once as Prometheus' Alertmanager, once as the alertmanager scrape job.
    expected = [["10.42.0.10:9093"] ["10.42.0.10:9093"]];
  };

  # ------------------------------------------------------------ rules per tier

  testAlertNames = {
    expr = shippedAlerts;
    expected = [
      "HaproxyHighQPS"
      "HaproxyBackendHighQPS"
      "HaproxyBackendDown"
      "HaproxyAllBackendsDown"
      "HaproxyHigh5xxRatio"
      "HaproxyBackendHigh5xxRatio"
      "NginxDown"
      "MariadbHighQPS"
      "MariadbPrimaryUnreachable"
      "MariadbReplicationBroken"
      "MariadbReplicationLagHigh"
      "FailoverLeaderChanged"
      "FailoverSyncSetEmpty"
      "FailoverPaused"
      "FailoverAgentDown"
      "EtcdMemberDown"
      "EtcdNoQuorum"
      "PrometheusTargetDown"
      "PrometheusRuleEvaluationFailures"
      "PrometheusNotificationsFailing"
      "ReachCertificateExpiringSoon"
      "ReachWebContentChanged"
      "ReachCheckFailing"
      "ReachTextfileStale"
      "ReachUndeclaredPortOpen"
      "ReachUndeclaredListener"
      "ReachFirewallDrift"
      "ReachTlsProfileViolation"
      "ProbeEndpointDown"
      "ProbeSlow"
    ];
  };
  testNoReplicaNoReplicationRules = {
    expr = filter (name: elem name ["MariadbReplicationBroken" "MariadbReplicationLagHigh" "MariadbPrimaryUnreachable"]) (alertNames (rules withoutReplica {}));
    expected = ["MariadbPrimaryUnreachable"];
  };
  testNoDatabaseNoMariadbRules = {
    expr = filter (name: match "Mariadb.*" name != null) (alertNames (rules withoutDatabase {}));
    expected = [];
  };
  testQpsThresholdFromTopology = {
    expr = grep ".*haproxy_frontend_http_requests_total.* > ([0-9.]+)'" (rules (shipped // {monitoring = shipped.monitoring // {qpsThreshold = 7.5;};}) {});
    expected = [["7.5"]];
  };
  testEveryRuleHasSeveritySummaryDescriptionRunbook = {
    expr = let
      text = rules shipped {};
      count = regex: length (grep regex text);
    in
      map count [" *- alert: .*" " *severity: (critical|warning|info)" " *summary: .*" " *description: .*" " *runbook_url: 'http://10.42.0.10:9090/consoles/runbook.html#[a-z0-9]+'"];
    expected = [33 33 33 33 33];
  };

  # ------------------------------------------------------------ settings

  testDefaultIntervals = {
    expr = grep " *(scrape|evaluation)_interval: (.*)" (config shipped {});
    expected = [["evaluation" "15s"] ["scrape" "15s"]];
  };
  testLabSettings = {
    expr = let
      settings.prometheus = {
        scrapeInterval = "2s";
        maxFor = "6s";
      };
    in [
      (grep " *(scrape|evaluation)_interval: (.*)" (config shipped settings))
      (util.unique (forsOf (rules shipped settings)))
      (util.unique (map head (grep ".*[[]([0-9a-z]+)[]].*" (rules shipped settings))))
    ];
    # Capped at 6s, a symptom 8s (four evaluations) after each cause in its chain:
    # NginxDown 6s, HaproxyBackendDown 14s, its probe 22s, HaproxyHigh5xxRatio 30s.
    # ReachWebContentChanged has no `for`; ProbeSlow's window is its own setting.
    expected = [[["evaluation" "2s"] ["scrape" "2s"]] ["6s" "14s" "30s" "22s" "0s"] ["8s" "5m"]];
  };
  testMaxForKeepsShorterFor = {
    expr = util.unique (forsOf (rules shipped {prometheus.maxFor = "1m";}));
    # Symptoms of a cause still wait one margin (four 15 s evaluations) per cause.
    expected = ["1m" "2m" "30s" "4m" "3m" "0s" "90s"];
  };
  testCausesKeepFiring = {
    # A cause keeps firing two margins longer than the longest of its symptoms; a host
    # monitoring cannot scrape outlasts every alert. Each alert's keep_firing_for:
    expr = let
      step = acc: line: let
        alert = match " *- alert: (.*)" line;
        keep = match " *keep_firing_for: (.*)" line;
      in
        if alert != null
        then acc // {current = head alert;}
        else if keep != null
        then acc // {out = acc.out // {${acc.current} = head keep;};}
        else acc;
      keeps =
        (builtins.foldl' step {
          current = "";
          out = {};
        } (lines (rules shipped {})))
        .out;
    in
      builtins.intersectAttrs {
        HaproxyHighQPS = 0;
        HaproxyBackendHigh5xxRatio = 0;
        HaproxyBackendDown = 0;
        NginxDown = 0;
        PrometheusTargetDown = 0;
        ProbeSlow = 0;
      }
      keeps;
    expected = {
      HaproxyHighQPS = "2m";
      HaproxyBackendHigh5xxRatio = "2m";
      HaproxyBackendDown = "4m";
      NginxDown = "6m";
      PrometheusTargetDown = "8m";
    };
  };
  testAlertForAndEnable = {
    expr = let
      text = rules shipped {
        prometheus.alerts = {
          HaproxyHighQPS.for = "45s";
          NginxDown.enable = false;
        };
      };
    in [(head (forsOf text)) (elem "NginxDown" (alertNames text)) (grep "- name: (rampart-nginx)" text)];
    expected = ["45s" false []];
  };
  testRulesFileAndRunbookUrl = {
    expr = let
      settings.prometheus = {
        rulesFile = "/etc/prometheus/rampart.rules.yml";
        runbookUrl = "https://runbooks.example/rampart";
      };
    in [
      (head (grep "- (/etc/.*)" (config shipped settings)))
      (head (grep " *runbook_url: '(.*)'" (rules shipped settings)))
    ];
    expected = [["/etc/prometheus/rampart.rules.yml"] ["https://runbooks.example/rampart#haproxyhighqps"]];
  };
  testAlertmanagerReceiverFromTopology = {
    expr = let
      topology =
        shipped
        // {
          monitoring =
            shipped.monitoring
            // {
              alertReceiver = {
                name = "ops";
                webhookUrl = "https://hooks.example/x";
              };
            };
        };
    in
      grep " *(receiver|- name|- url): (.*)" (amConfig topology {});
    expected = [["receiver" "ops"] ["- name" "ops"] ["- url" "'https://hooks.example/x'"]];
  };
  testAlertmanagerLabSettings = {
    expr = grep " *(group_wait|group_interval): (.*)" (amConfig shipped {
      alertmanager = {
        groupWait = "1s";
        groupInterval = "5s";
      };
    });
    expected = [["group_wait" "1s"] ["group_interval" "5s"]];
  };

  # ------------------------------------------------------------ bad settings throw

  testBadScrapeIntervalThrows = {
    expr = evaluates (config shipped {prometheus.scrapeInterval = "fast";});
    expected = false;
  };
  testCompoundDurationThrows = {
    expr = evaluates (config shipped {prometheus.maxFor = "1m30s";});
    expected = false;
  };
  testUnknownSettingThrows = {
    expr = evaluates (config shipped {prometheus.scrapeIntervall = "2s";});
    expected = false;
  };
  testUnknownAlertThrows = {
    expr = evaluates (rules shipped {prometheus.alerts.HighQPS.for = "1m";});
    expected = false;
  };
  testBadAlertKeyThrows = {
    expr = evaluates (rules shipped {prometheus.alerts.NginxDown.severity = "info";});
    expected = false;
  };
  testQuoteInFrontendsThrows = {
    expr = evaluates (rules shipped {prometheus.haproxyFrontends = "https\"} or vector(1)";});
    expected = false;
  };
  testMissingServiceThrows = {
    expr = evaluates (config (shipped // {services = removeAttrs shipped.services ["nginxExporter"];}) {});
    expected = false;
  };
  testBadAlertmanagerSettingThrows = {
    expr = map evaluates [
      (amConfig shipped {alertmanager.groupWait = 10;})
      (amConfig shipped {alertmanager.groupBy = [];})
      (amConfig shipped {alertmanager.repeatIntervall = "1h";})
    ];
    expected = [false false false];
  };

  # One graph, written twice: what each alert names as its causes, Alertmanager inhibits.
  testInhibitionsAreTheAlertsSymptomOf = {
    expr = {
      symptomOfWithoutInhibition = missingFrom inhibitionPairs declaredPairs;
      inhibitionWithoutSymptomOf = missingFrom declaredPairs inhibitionPairs;
    };
    expected = {
      symptomOfWithoutInhibition = [];
      inhibitionWithoutSymptomOf = [];
    };
  };
  testInhibitionPairsAreRead = {
    expr = builtins.all (pair: elem pair inhibitionPairs) ["NginxDown>ProbeSlow" "HaproxyAllBackendsDown>HaproxyHigh5xxRatio" "ReachWebContentChanged>ReachCheckFailing"];
    expected = true;
  };

  # ------------------------------------------------------------ runbook and promtool tests

  testEveryAlertHasARunbookSection = {
    expr = filter (name: !(runbookSections ? ${name})) shippedAlerts;
    expected = [];
  };
  testEveryRunbookSectionIsComplete = {
    expr = filter (name: let
      section = runbookSections.${name};
    in
      !(builtins.all (part: match ".*\\*\\*${part}\\.\\*\\*.*" section != null) ["Meaning" "Impact" "Diagnosis" "Mitigation"]))
    (attrNames runbookSections);
    expected = [];
  };
  testNoRunbookSectionWithoutAlert = {
    expr = filter (name: !(elem name shippedAlerts)) (attrNames runbookSections);
    expected = [];
  };
  # Healthy, just before `for` and just after: at least three cases per alert.
  testEveryAlertHasPromtoolCases = {
    expr = filter (name: promtoolCases name < 3) shippedAlerts;
    expected = [];
  };
}
