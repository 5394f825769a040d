# lib/render/inhibitions.nix: which alert explains which, as Alertmanager's inhibition
# rules (lib/render/alertmanager.nix writes them): while a source alert fires, matching
# target alerts (with equal values of the `equal` labels) are not sent.
#
# Type: [ { source :: [ matcher ]; target :: [ matcher ]; equal :: [ label ]; } ]
#
# The alerts say the same thing the other way round: each alert's `symptomOf`
# (lib/render/prometheus-alerts.nix) names the alerts that explain it, and the renderer
# gives a symptom a longer `for` than its causes. lib/tests/render-prometheus.nix
# (testInhibitionsAreTheAlertsSymptomOf) fails when the two disagree: every rule that
# names alerts on both sides pairs exactly the alerts some `symptomOf` pairs. Rules that
# name no alert on one side (severity, a host down) apply to every alert alike.
[
  {
    # `path` tells two certificates of one host apart; labels absent on both sides
    # count as equal, so the other alerts pair by name and host.
    source = [''severity="critical"''];
    target = [''severity="warning"''];
    equal = ["alertname" "host" "path"];
  }
  {
    # A host whose node exporter monitoring cannot scrape: everything else about it
    # (its exporters, probes, reach's view) follows from that.
    source = [''alertname="PrometheusTargetDown"'' ''job="node"''];
    target = [''host=~".+"''];
    equal = ["host"];
  }
  {
    # nginx down, or the load balancer's health check failing (the application), on a
    # web host: the probes of that host and reach's checks of it fail for that reason.
    source = [''alertname=~"NginxDown|HaproxyBackendDown"''];
    target = [''alertname=~"HaproxyBackendDown|HaproxyBackendHigh5xxRatio|ProbeEndpointDown|ProbeSlow|ReachCheckFailing"''];
    equal = ["host"];
  }
  {
    # No web host in rotation: every single-backend alert and the public probe follow.
    source = [''alertname="HaproxyAllBackendsDown"''];
    target = [''alertname=~"HaproxyBackendDown|HaproxyBackendHigh5xxRatio|HaproxyHigh5xxRatio|ProbeEndpointDown|ProbeSlow"''];
    equal = [];
  }
  {
    # The site's load explains each web host's share of it.
    source = [''alertname="HaproxyHighQPS"''];
    target = [''alertname="HaproxyBackendHighQPS"''];
    equal = [];
  }
  {
    # Errors from named web hosts explain the site's error ratio.
    source = [''alertname="HaproxyBackendHigh5xxRatio"''];
    target = [''alertname="HaproxyHigh5xxRatio"''];
    equal = [];
  }
  {
    # A slow web host makes the public endpoint slow on its share of requests.
    source = [''alertname="ProbeSlow"'' ''probe="backend"''];
    target = [''alertname="ProbeSlow"'' ''probe="public"''];
    equal = [];
  }
  {
    # etcd without a quorum: every member that follows no leader is part of that.
    source = [''alertname="EtcdNoQuorum"''];
    target = [''alertname="EtcdMemberDown"''];
    equal = [];
  }
  {
    # An exposed undeclared service is also a rule and a listener nobody declared;
    # a specific finding of reach says more than its generic check failing.
    source = [''alertname="ReachUndeclaredPortOpen"''];
    target = [''alertname=~"ReachFirewallDrift|ReachUndeclaredListener"''];
    equal = ["host"];
  }
  {
    source = [''alertname=~"ReachUndeclaredPortOpen|ReachUndeclaredListener|ReachFirewallDrift|ReachTlsProfileViolation|ReachCertificateExpiringSoon|ReachWebContentChanged"''];
    target = [''alertname="ReachCheckFailing"''];
    equal = ["host"];
  }
]
