//! The services' own verdicts: HAProxy's backend health, Prometheus' targets and alerts,
//! and replication as the replica's mysqld exporter reports it.

use std::time::{Duration, Instant};

use crate::report::{Check, Status};
use rampart_probe::haproxy::{self, StatsSource};
use rampart_probe::http;
use rampart_probe::prometheus;

/// Every backend server UP with a passing health check. Returns the checks and the
/// names of the healthy servers (what rotation must reach).
pub async fn haproxy(
    target: &str,
    source: &StatsSource,
    timeout: Duration,
) -> (Vec<Check>, Option<Vec<String>>) {
    let started = Instant::now();
    match haproxy::fetch(source, timeout).await {
        Err(e) => (
            vec![Check::new("haproxy", target, "stats")
                .judged(false, "stats CSV", "no stats")
                .with_reason(e)],
            None,
        ),
        Ok(servers) if servers.is_empty() => (
            vec![Check::new("haproxy", target, "stats")
                .judged(false, "at least one backend server", "none")
                .with_reason(source.describe())],
            Some(Vec::new()),
        ),
        Ok(servers) => {
            let seconds = started.elapsed().as_secs_f64();
            // Rotation is judged on the servers with their own checks (GETs go to `web`).
            let healthy = servers
                .iter()
                .filter(|s| s.healthy() && s.tracked.is_empty())
                .map(|s| s.server.clone())
                .collect();
            let checks = servers
                .iter()
                .map(|s| {
                    let observed = if s.check_status.is_empty() {
                        s.status.clone()
                    } else {
                        format!("{} {}", s.status, s.check_status)
                    };
                    // A tracking server has no check of its own: the tracked one's row
                    // judges that.
                    let expected = if s.tracked.is_empty() {
                        "UP L*OK".to_string()
                    } else {
                        format!("UP (tracks {})", s.tracked)
                    };
                    Check::new(
                        "haproxy",
                        target,
                        format!("server {}/{}", s.backend, s.server),
                    )
                    .judged(s.healthy(), expected, observed)
                    .with_seconds(seconds)
                })
                .collect();
            (checks, Some(healthy))
        }
    }
}

/// Every active scrape target up.
pub async fn prometheus_targets(target: &str, base: &str, timeout: Duration) -> Vec<Check> {
    let started = Instant::now();
    match prometheus::targets(base, timeout).await {
        Err(e) => vec![Check::new("prometheus", target, "targets")
            .judged(false, "API answer", "no answer")
            .with_reason(e)],
        Ok(targets) if targets.is_empty() => vec![Check::new("prometheus", target, "targets")
            .judged(false, "at least one target", "none")],
        Ok(targets) => {
            let seconds = started.elapsed().as_secs_f64();
            targets
                .into_iter()
                .map(|t| {
                    let c = Check::new(
                        "prometheus",
                        target,
                        format!("target {} {}", t.job, t.instance),
                    )
                    .judged(t.health == "up", "up", t.health.clone())
                    .with_seconds(seconds);
                    if t.last_error.is_empty() {
                        c
                    } else {
                        c.with_reason(t.last_error)
                    }
                })
                .collect()
        }
    }
}

/// What the alert checks expect.
#[derive(Clone, Debug, Default)]
pub struct AlertExpectations {
    /// Alerts that must be firing.
    pub firing: Vec<String>,
    /// No alert may be firing (except those in `firing`).
    pub none_else: bool,
}

/// Lists pending and firing alerts, judged against the expectations.
pub async fn alerts(
    target: &str,
    base: &str,
    expect: &AlertExpectations,
    timeout: Duration,
) -> Vec<Check> {
    let alerts = match prometheus::alerts(base, timeout).await {
        Err(e) => {
            return vec![Check::new("alerts", target, "alerts")
                .judged(false, "API answer", "no answer")
                .with_reason(e)]
        }
        Ok(a) => a,
    };
    let mut out = Vec::new();
    for name in &expect.firing {
        let firing = alerts
            .iter()
            .any(|a| &a.name == name && a.state == "firing");
        let state = alerts
            .iter()
            .find(|a| &a.name == name)
            .map_or("inactive", |a| a.state.as_str());
        out.push(
            Check::new("alerts", target, format!("alert {name}")).judged(firing, "firing", state),
        );
    }
    for a in alerts.iter().filter(|a| !expect.firing.contains(&a.name)) {
        let labels: Vec<String> = a
            .labels
            .iter()
            .filter(|(k, _)| *k != "alertname")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let status = if expect.none_else && a.state == "firing" {
            Status::Fail
        } else {
            Status::Info
        };
        let mut c = Check::new("alerts", target, format!("alert {}", a.name)).with_status(status);
        c.expected = if expect.none_else {
            "not firing".into()
        } else {
            String::new()
        };
        c.observed = a.state.clone();
        if !labels.is_empty() {
            c.reason = Some(labels.join(" "));
        }
        out.push(c);
    }
    if out.is_empty() {
        let mut c = Check::new("alerts", target, "alerts").with_status(if expect.none_else {
            Status::Pass
        } else {
            Status::Info
        });
        c.observed = "none firing".into();
        c.expected = if expect.none_else {
            "none firing".into()
        } else {
            String::new()
        };
        out.push(c);
    }
    out
}

/// Replication of one replica, from its mysqld exporter's `mysql_slave_status_*`.
///
/// Why the exporter and not a query: the exporter already holds a MariaDB login (the
/// `exporter-db-password` secret) and the policy lets the monitoring host reach it, while
/// MariaDB's own port admits only the database hosts; reach needs no database
/// credentials, runs where the alerts are evaluated, and judges the very numbers the
/// `Replication*` alerts fire on. Its slave-status collector turns `Yes`/`No` columns into
/// 1/0, so `Slave_IO_Running`, `Slave_SQL_Running`, `Master_SSL_Allowed` and
/// `Seconds_Behind_Master` are all there.
pub async fn replication(target: &str, url: &str, max_lag: f64, timeout: Duration) -> Vec<Check> {
    let started = Instant::now();
    let check = |probe: &str| Check::new("replication", target, probe);
    let response = match http::get_url(url, timeout).await {
        Ok(r) if r.status == 200 => r,
        Ok(r) => {
            return vec![check("exporter")
                .judged(false, "200", r.status.to_string())
                .with_reason(url)]
        }
        Err(e) => {
            return vec![check("exporter")
                .judged(false, "metrics", "no answer")
                .with_reason(e)]
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let samples = prometheus::parse_text(&response.text());
    let value = |name: &str| samples.iter().find(|s| s.name == name).map(|s| s.value);
    if value("mysql_up") != Some(1.0) {
        return vec![check("exporter")
            .judged(false, "mysql_up 1", format!("{:?}", value("mysql_up")))
            .with_reason("the exporter cannot query MariaDB")];
    }
    let Some(io) = value("mysql_slave_status_slave_io_running") else {
        return vec![check("replica")
            .judged(false, "a replica", "no slave status")
            .with_reason(
                "mysql_slave_status_* missing: replication is not configured on this host",
            )];
    };
    let yes = |v: Option<f64>| if v == Some(1.0) { "Yes" } else { "No" };
    let sql = value("mysql_slave_status_slave_sql_running");
    let ssl = value("mysql_slave_status_master_ssl_allowed");
    let verify = value("mysql_slave_status_master_ssl_verify_server_cert");
    let lag = value("mysql_slave_status_seconds_behind_master");
    let tls_observed = format!("MASTER_SSL={} VERIFY_SERVER_CERT={}", yes(ssl), yes(verify));
    let lag_check = match lag {
        Some(l) if l >= 0.0 => {
            check("lag").judged(l <= max_lag, format!("≤ {max_lag}s"), format!("{l}s"))
        }
        // NULL (the SQL thread stopped) is exported as -1 or left out.
        _ => check("lag").judged(false, format!("≤ {max_lag}s"), "unknown"),
    };
    vec![
        check("io thread").judged(io == 1.0, "Yes", yes(Some(io))),
        check("sql thread").judged(sql == Some(1.0), "Yes", yes(sql)),
        check("tls").judged(
            ssl == Some(1.0) && verify == Some(1.0),
            "MASTER_SSL=Yes VERIFY_SERVER_CERT=Yes",
            tls_observed,
        ),
        lag_check,
    ]
    .into_iter()
    .map(|c| c.with_seconds(seconds))
    .collect()
}
