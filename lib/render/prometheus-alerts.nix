# lib/render/prometheus-alerts.nix: rampart's alerting rules, as data (srvos'
# default-alerts style), for lib/render/prometheus.nix to write into prometheus/rules.yml.
#
# Inputs: `topology` (validated) and `cfg`, the merged `settings.prometheus` with the
# derived `rateWindow` (a Prometheus duration) and `reachStaleAfterSeconds`. A group's
# `when` is false when the topology lacks the tier it watches (no replica: no replication
# alerts); the renderer leaves such groups out, so no rule waits on a series that cannot
# exist. Alert names can be listed without a topology's tiers (every field is lazy).
#
# Type: { topology, cfg } -> [ { name :: string; when :: bool; alerts :: [ alert ]; } ]
#   alert = { alert; severity; for; expr; summary; description; symptomOf ? [ string ]; }
#
# `symptomOf` names the alerts that explain this one: Alertmanager's inhibition rules
# (lib/render/alertmanager.nix) mute it while one of them fires on the same host. Muting
# only works when the cause fires first and resolves last, so the renderer gives a symptom
# a `for` longer than its causes' and the causes a `keep_firing_for` (prometheus.nix).
#
# Conventions (docs/runbook.md has one section per alert name):
# - Names share a first word per component: Haproxy…, Nginx…, Mariadb…, Etcd…, Prometheus…,
#   Reach… (the checks `reach` writes for node exporter, docs/contracts.md).
# - `severity`: critical = act now (page), warning = needs action (ticket), info = context.
#   One name may appear twice with different thresholds and severities.
# - `summary` is static; `description` templates only labels the expression keeps after
#   its aggregation, and `$value` through `printf`.
# - `host` is the host where the problem is, so that one host's alerts group together and
#   a host that is down mutes the rest of its alerts (alertmanager.nix): HAProxy's server
#   alerts name the web host (the load balancer moves to `lb`), reach's findings about
#   another host name that host (the vantage moves to `vantage`).
# - Metric names are those of Debian 12's exporters: HAProxy 2.6's built-in exporter
#   (`haproxy_*`), mysqld_exporter 0.14 (`mysql_*`), nginx exporter 0.11 (`nginx_*`),
#   node exporter 1.5, etcd 3.4 (`etcd_*`) and Prometheus 2.42 itself; checked against the
#   running daemons.
{
  topology,
  cfg,
}: let
  inherit (builtins) isInt length toJSON;
  topologyLib = import ../topology.nix;

  w = cfg.rateWindow;
  num = value:
    if isInt value
    then toString value
    else toJSON value;
  hostsWith = role: topologyLib.hostsWithRole topology role;
  has = role: hostsWith role != [];
  webHosts = length (hostsWith "web");

  # HAProxy's public frontends: requests through the load balancer. The exporter's own
  # frontend is left out so that monitoring never counts as load.
  publicFrontends = ''proxy=~"${cfg.haproxyFrontends}"'';

  # Per web host, the share of the site threshold it would carry if load were even.
  backendQpsThreshold =
    if cfg.backendQpsThreshold != null
    then cfg.backendQpsThreshold
    else topology.monitoring.qpsThreshold * 1.0 / webHosts;
  # Each request through the application costs at most a few queries; ten per request of
  # the site threshold means the database works harder than the web tier explains.
  databaseQpsThreshold =
    if cfg.databaseQpsThreshold != null
    then cfg.databaseQpsThreshold
    else topology.monitoring.qpsThreshold * 10;

  value2 = ''{{ $value | printf "%.2f" }}'';

  # `host` := `from`'s value (when it matches `regex`), the old `host` kept as `keep`.
  moveHost = keep: from: regex: expr: ''label_replace(label_replace(${expr}, "${keep}", "$1", "host", "(.*)"), "host", "$1", "${from}", "(${regex})")'';
  # HAProxy's servers are the web hosts: an alert about one is about that host.
  onServer = moveHost "lb" "server" ".+";
  # reach's `target` is a host name for host checks, a path or URL for others.
  hostNames = builtins.concatStringsSep "|" (map (h: h.name) topology.hosts);
  onTarget = moveHost "vantage" "target" hostNames;
  # etcd has a member on every host; a majority of them must follow a leader for any
  # write, lease renewal or failover to happen.
  etcdMembers = length topology.hosts;
  etcdQuorum = etcdMembers / 2 + 1;

  groups = [
    {
      name = "haproxy";
      alerts = [
        {
          alert = "HaproxyHighQPS";
          severity = "warning";
          for = "2m";
          expr = "sum by (host) (rate(haproxy_frontend_http_requests_total{${publicFrontends}}[${w}])) > ${num topology.monitoring.qpsThreshold}";
          summary = "Requests through the load balancer exceed the topology's threshold.";
          description = "The load balancer {{ $labels.host }} receives ${value2} requests/s, above monitoring.qpsThreshold = ${num topology.monitoring.qpsThreshold} in hosts/topology.json.";
        }
        {
          alert = "HaproxyBackendHighQPS";
          symptomOf = ["HaproxyHighQPS"];
          severity = "warning";
          for = "5m";
          expr = onServer "sum by (host, proxy, server) (rate(haproxy_server_http_responses_total[${w}])) > ${num backendQpsThreshold}";
          summary = "A web host answers more requests than its share of the threshold.";
          description = "Server {{ $labels.server }} of backend {{ $labels.proxy }} answers ${value2} requests/s, above its share ${num backendQpsThreshold}/s of the site threshold.";
        }
        {
          alert = "HaproxyBackendDown";
          symptomOf = ["NginxDown" "HaproxyAllBackendsDown"];
          severity = "warning";
          for = "1m";
          expr = onServer ''haproxy_server_status{state="DOWN"} == 1'';
          summary = "The load balancer took a web host out of rotation.";
          description = "Server {{ $labels.server }} of backend {{ $labels.proxy }} on {{ $labels.lb }} fails its health check; the other servers carry its traffic.";
        }
        {
          alert = "HaproxyAllBackendsDown";
          severity = "critical";
          for = "30s";
          expr = ''haproxy_backend_status{state="UP"} == 0'';
          summary = "No web host is in rotation: the site answers errors.";
          description = "Backend {{ $labels.proxy }} on {{ $labels.host }} has no server passing its health check.";
        }
        {
          alert = "HaproxyHigh5xxRatio";
          symptomOf = ["HaproxyBackendHigh5xxRatio" "HaproxyAllBackendsDown"];
          severity = "warning";
          for = "5m";
          # A minimum request rate keeps one failed request at night from paging as 100 %.
          expr = ''
            sum by (host) (rate(haproxy_frontend_http_responses_total{${publicFrontends},code="5xx"}[${w}]))
              / sum by (host) (rate(haproxy_frontend_http_responses_total{${publicFrontends}}[${w}]))
              > ${num cfg.http5xxRatio}
            and sum by (host) (rate(haproxy_frontend_http_responses_total{${publicFrontends}}[${w}])) >= ${num cfg.http5xxMinRequestRate}'';
          summary = "Too many requests through the load balancer end in a server error.";
          description = "On {{ $labels.host }}, a ratio of ${value2} of responses are 5xx (threshold ${num cfg.http5xxRatio}).";
        }
        {
          # The same ratio per web host, on the traffic HAProxy sent it: which host errs.
          alert = "HaproxyBackendHigh5xxRatio";
          symptomOf = ["NginxDown" "HaproxyBackendDown" "HaproxyAllBackendsDown"];
          severity = "warning";
          for = "5m";
          expr = onServer ''
            sum by (host, proxy, server) (rate(haproxy_server_http_responses_total{code="5xx"}[${w}]))
              / sum by (host, proxy, server) (rate(haproxy_server_http_responses_total[${w}]))
              > ${num cfg.http5xxRatio}
            and sum by (host, proxy, server) (rate(haproxy_server_http_responses_total[${w}])) >= ${num (cfg.http5xxMinRequestRate / webHosts)}'';
          summary = "A web host answers too many requests with a server error.";
          description = "Server {{ $labels.server }} of backend {{ $labels.proxy }} answers a ratio of ${value2} of its responses with 5xx (threshold ${num cfg.http5xxRatio}).";
        }
      ];
    }
    {
      name = "nginx";
      when = has "web";
      alerts = [
        {
          alert = "NginxDown";
          severity = "warning";
          for = "1m";
          expr = "nginx_up == 0";
          summary = "nginx does not answer its local status page.";
          description = "The nginx exporter on {{ $labels.host }} cannot read nginx's stub_status; nginx is down or misconfigured there.";
        }
      ];
    }
    {
      name = "mariadb";
      when = has "databasePrimary";
      alerts = [
        {
          alert = "MariadbHighQPS";
          severity = "warning";
          for = "5m";
          expr = "rate(mysql_global_status_queries[${w}]) > ${num databaseQpsThreshold}";
          summary = "The database runs more queries than the web traffic explains.";
          description = "MariaDB on {{ $labels.host }} runs ${value2} queries/s, above ${num databaseQpsThreshold}/s.";
        }
        {
          # read_only = 0 marks the writable server wherever it is, so the rule stays right
          # after a promotion; it also turns off when the primary is fenced or unreachable.
          # Judged only while monitoring scrapes some mysqld exporter: before the first
          # scrape (a monitoring host that starts before the databases) nothing is known,
          # and with every exporter gone PrometheusTargetDown says so.
          alert = "MariadbPrimaryUnreachable";
          severity = "critical";
          for = "30s";
          expr = ''count(up{job="mysqld"} == 1) > 0 unless on () count(mysql_global_variables_read_only == 0) > 0'';
          summary = "No writable database server answers: writes fail.";
          description = "No MariaDB server reports read_only = 0 to monitoring: the primary is down, unreachable or fenced, and no replica was promoted.";
        }
      ];
    }
    {
      name = "mariadb-replication";
      when = has "databaseReplica";
      alerts = [
        {
          alert = "MariadbReplicationBroken";
          severity = "critical";
          for = "1m";
          # Slave_IO_Running "Connecting" reads as 0 too, as does a stopped thread.
          expr = "mysql_slave_status_slave_io_running + mysql_slave_status_slave_sql_running < 2";
          summary = "A replica stopped replicating.";
          description = ''Replica {{ $labels.host }} runs {{ $value | printf "%.0f" }} of its 2 replication threads (IO, SQL) from {{ $labels.master_host }}.'';
        }
        {
          alert = "MariadbReplicationLagHigh";
          severity = "warning";
          for = "2m";
          expr = "mysql_slave_status_seconds_behind_master > ${num cfg.replicationLagSeconds}";
          summary = "A replica is far behind its primary.";
          description = "Replica {{ $labels.host }} is ${value2} s behind {{ $labels.master_host }} (threshold ${num cfg.replicationLagSeconds} s).";
        }
      ];
    }
    {
      # The failover agents (rampart-db agent) write rampart_failover_* for node exporter's
      # textfile collector on every database host (docs/contracts.md).
      name = "failover";
      when = has "databasePrimary";
      alerts = [
        {
          alert = "FailoverLeaderChanged";
          severity = "warning";
          for = "0s";
          # Fires at once, for one rate window after the change.
          expr = "max(changes(rampart_failover_term[${w}])) > 0";
          summary = "The database leader changed: writes moved to another host.";
          description = ''The failover term changed {{ $value | printf "%.0f" }} time(s) within ${w}: a new leader took the writes. Find out why the old one lost its lease (`rampart-db status`, the agents' logs).'';
        }
        {
          alert = "FailoverSyncSetEmpty";
          severity = "critical";
          for = "1m";
          expr = "rampart_failover_sync_replicas == 0";
          summary = "No replica holds every acknowledged write: the next primary loss needs a human.";
          description = "The leader {{ $labels.host }} acknowledges writes that no replica is recorded to hold; if it is lost now, no replica may take over automatically.";
        }
        {
          # Maintenance mode (`rampart-db pause`) is meant to be short: left on, the next
          # leader loss stops writes until a human acts.
          alert = "FailoverPaused";
          severity = "warning";
          for = "1h";
          expr = "max(rampart_failover_paused) == 1";
          summary = "Automatic database failover has been paused for an hour.";
          description = "`rampart-db pause` turned automatic failover off over an hour ago: if the leader is lost now, no replica takes over. `rampart-db status` says why; `rampart-db resume` ends it.";
        }
        {
          alert = "FailoverAgentDown";
          severity = "critical";
          for = "30s";
          expr = "time() - rampart_failover_agent_heartbeat_timestamp_seconds > 10";
          summary = "A failover agent stopped: its host can neither lead nor take over.";
          description = ''The failover agent on {{ $labels.host }} last reported {{ $value | printf "%.0f" }} s ago. A leader without its agent stops taking writes when its lease lapses; a replica without it cannot take over.'';
        }
      ];
    }
    {
      name = "etcd";
      when = topology.services ? etcdMetrics;
      alerts = [
        {
          # Down, unreachable from monitoring, or cut off from the leader: in each case the
          # member counts for nothing towards the quorum.
          alert = "EtcdMemberDown";
          symptomOf = ["EtcdNoQuorum"];
          severity = "warning";
          for = "1m";
          expr = ''up{job="etcd"} == 0 or etcd_server_has_leader == 0'';
          summary = "An etcd member is down or cut off from the leader.";
          description = "etcd on {{ $labels.host }} ({{ $labels.instance }}) is down, unreachable from monitoring, or follows no leader. etcd keeps its quorum with at most ${toString (etcdMembers - etcdQuorum)} of its ${toString etcdMembers} members lost, and this is one.";
        }
        {
          alert = "EtcdNoQuorum";
          severity = "critical";
          for = "30s";
          # `or vector(0)`: with every member down, no series is left to count.
          expr = "(count(etcd_server_has_leader == 1) or vector(0)) < ${toString etcdQuorum}";
          summary = "etcd has lost its quorum: no failover, no lease renewal, no write.";
          description = ''Only {{ $value | printf "%.0f" }} of the ${toString etcdMembers} etcd members follow a leader; ${toString etcdQuorum} are needed. The database primary cannot renew its leader lease and fences itself; no replica can take over until a majority is back.'';
        }
      ];
    }
    {
      name = "prometheus";
      alerts = [
        {
          # A whole host (its node exporter) gone is worse than one exporter.
          alert = "PrometheusTargetDown";
          severity = "critical";
          for = "1m";
          expr = ''up{job="node"} == 0'';
          summary = "Monitoring cannot reach a host.";
          description = "Prometheus cannot scrape the node exporter of {{ $labels.host }} ({{ $labels.instance }}); the host may be down.";
        }
        {
          alert = "PrometheusTargetDown";
          severity = "warning";
          for = "1m";
          # etcd's metrics target is EtcdMemberDown's (one fact, one alert).
          expr = ''up{job!~"node|etcd"} == 0'';
          summary = "Monitoring cannot reach an exporter.";
          description = "Prometheus cannot scrape job {{ $labels.job }} on {{ $labels.host }} ({{ $labels.instance }}).";
        }
        {
          alert = "PrometheusRuleEvaluationFailures";
          severity = "warning";
          for = "5m";
          expr = "increase(prometheus_rule_evaluation_failures_total[${w}]) > 0";
          summary = "Prometheus fails to evaluate alerting rules: alerts may be missed.";
          description = "Rule group {{ $labels.rule_group }} failed ${value2} evaluations in the last ${w}.";
        }
        {
          alert = "PrometheusNotificationsFailing";
          severity = "warning";
          for = "5m";
          expr = "increase(prometheus_notifications_errors_total[${w}]) > 0";
          summary = "Prometheus fails to send alerts to Alertmanager.";
          description = "Prometheus on {{ $labels.host }} failed ${value2} notifications to {{ $labels.alertmanager }} in the last ${w}.";
        }
      ];
    }
    {
      name = "reach";
      alerts = [
        {
          alert = "ReachCertificateExpiringSoon";
          severity = "warning";
          for = "1m";
          expr = "(rampart_cert_expiry_timestamp_seconds - time()) / 86400 < ${num cfg.certExpiryWarningDays}";
          summary = "A certificate expires soon.";
          description = "Certificate {{ $labels.path }} ({{ $labels.purpose }}) on {{ $labels.host }} expires in ${value2} days; renew it with certtool.";
        }
        {
          alert = "ReachCertificateExpiringSoon";
          severity = "critical";
          for = "1m";
          expr = "(rampart_cert_expiry_timestamp_seconds - time()) / 86400 < ${num cfg.certExpiryCriticalDays}";
          summary = "A certificate expires within days.";
          description = "Certificate {{ $labels.path }} ({{ $labels.purpose }}) on {{ $labels.host }} expires in ${value2} days; renew it with certtool now.";
        }
        {
          # Deterministic (a hash comparison), so no `for`: the first run that sees it
          # pages, within two of reach's runs of the change.
          alert = "ReachWebContentChanged";
          severity = "critical";
          for = "0s";
          expr = "rampart_web_files > 0";
          summary = "Files of a web root differ from the NAR hash recorded when the site was built.";
          description = ''{{ $value | printf "%.0f" }} file(s) of {{ $labels.root }} on {{ $labels.host }} are {{ $labels.state }}.'';
        }
        {
          alert = "ReachCheckFailing";
          symptomOf = ["NginxDown" "HaproxyBackendDown" "ReachUndeclaredPortOpen" "ReachUndeclaredListener" "ReachFirewallDrift" "ReachTlsProfileViolation" "ReachCertificateExpiringSoon" "ReachWebContentChanged"];
          severity = "warning";
          for = "5m";
          # HAProxy's servers, the scrape targets and replication have alerts of their own
          # on the same facts, read directly by Prometheus.
          expr = onTarget ''rampart_check_success{check!~"haproxy|prometheus|replication"} == 0'';
          summary = "A reach check finds the infrastructure not as declared.";
          description = "reach on {{ $labels.vantage }}: check {{ $labels.check }} against {{ $labels.target }} fails.";
        }
        {
          alert = "ReachTextfileStale";
          severity = "warning";
          for = "5m";
          expr = "time() - rampart_reach_last_run_timestamp_seconds > ${toString (cfg.reachStaleAfterSeconds)}";
          summary = "reach stopped reporting: its checks and certificate alerts are blind.";
          description = "reach last wrote its metrics on {{ $labels.host }} ${value2} s ago.";
        }
      ];
    }
    {
      # What reach's security checks find (issue #15; docs/contracts.md, "reach textfile
      # metrics"): a host's own view (listeners, live ruleset) and every vantage's view of
      # the others (the port sweep, TLS profiles).
      name = "reach-security";
      alerts = [
        {
          alert = "ReachUndeclaredPortOpen";
          severity = "critical";
          for = "1m";
          expr = onTarget "rampart_undeclared_open_ports > 0";
          summary = "A port answers that the topology does not declare.";
          description = ''{{ $value | printf "%.0f" }} undeclared TCP port(s) of {{ $labels.target }} accept connections from {{ $labels.vantage }}; `reach check --from {{ $labels.vantage }}` names them.'';
        }
        {
          alert = "ReachUndeclaredListener";
          symptomOf = ["ReachUndeclaredPortOpen"];
          severity = "warning";
          for = "1m";
          expr = "rampart_undeclared_listeners > 0";
          summary = "A process listens on an address or port the topology does not declare.";
          description = ''{{ $value | printf "%.0f" }} listening socket(s) on {{ $labels.host }} are not declared for it (the firewall may still hide them); `reach check --from {{ $labels.host }}` names the processes.'';
        }
        {
          alert = "ReachFirewallDrift";
          symptomOf = ["ReachUndeclaredPortOpen"];
          severity = "critical";
          for = "1m";
          expr = "rampart_firewall_drift_rules > 0";
          summary = "The live firewall differs from the rendered ruleset.";
          description = ''{{ $value | printf "%.0f" }} rule(s) of the live nftables ruleset on {{ $labels.host }} differ from nftables/ruleset.nft.'';
        }
        {
          alert = "ReachTlsProfileViolation";
          severity = "warning";
          for = "1m";
          expr = onTarget "rampart_tls_profile_violations > 0";
          summary = "A TLS endpoint accepts something its TLS profile forbids.";
          description = ''{{ $labels.service }} on {{ $labels.target }} has {{ $value | printf "%.0f" }} violation(s) of the {{ $labels.profile }} profile, seen from {{ $labels.vantage }}.'';
        }
      ];
    }
    {
      # The blackbox exporter on the monitoring host requests the public endpoint and each
      # backend's nginx every scrape, as a user (and HAProxy) would: reachable, and how fast.
      name = "probe";
      when = has "monitoring";
      alerts = [
        {
          alert = "ProbeEndpointDown";
          symptomOf = ["HaproxyAllBackendsDown"];
          severity = "critical";
          for = "1m";
          expr = ''probe_success{probe="public"} == 0'';
          summary = "The public endpoint does not answer: users cannot reach the site.";
          description = "The probe of {{ $labels.instance }} (through {{ $labels.host }}) fails.";
        }
        {
          alert = "ProbeEndpointDown";
          symptomOf = ["NginxDown" "HaproxyBackendDown" "HaproxyAllBackendsDown"];
          severity = "warning";
          for = "1m";
          expr = ''probe_success{probe="backend"} == 0'';
          summary = "A web host's nginx does not answer the monitoring host.";
          description = "The probe of {{ $labels.instance }} on {{ $labels.host }} fails.";
        }
        {
          alert = "ProbeSlow";
          symptomOf = ["NginxDown" "HaproxyBackendDown" "HaproxyAllBackendsDown"];
          severity = "warning";
          for = "5m";
          expr = "avg_over_time(probe_duration_seconds[${cfg.probeSlowWindow}]) > ${num cfg.probeSlowSeconds}";
          summary = "Responses are slower than the threshold.";
          description = "Requests to {{ $labels.instance }} ({{ $labels.probe }}, {{ $labels.host }}) took ${value2} s on average over ${cfg.probeSlowWindow} (threshold ${num cfg.probeSlowSeconds} s).";
        }
      ];
    }
  ];
in
  map (group: {when = true;} // group) groups
