//! `reach check` against Debian's real HAProxy and Prometheus on loopback: stats parsing
//! (over the stats page and the stats socket), scrape targets, alerts and expectations.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use rampart_lab::local::{LocalDaemon, LocalReady};
use serde_json::Value;
use support::tls::{free_port, server, Answer};
use support::*;

fn check(topology: &std::path::Path, args: &[&str]) -> (i32, Value, String) {
    let (code, stdout, stderr) = outcome(
        Command::new(reach())
            .arg("check")
            .arg("--topology")
            .arg(topology)
            .args(args)
            .arg("--json"),
    );
    let v = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (code, v, format!("{stderr}{stdout}"))
}

fn by_probe(report: &Value) -> Vec<(String, String, String)> {
    probe_rows(report)
}

/// Polls until `done` holds for the report (bounded: daemons need a moment to check).
fn eventually(
    topology: &std::path::Path,
    args: &[&str],
    done: impl Fn(&Value) -> bool,
) -> (i32, Value, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let result = check(topology, args);
        if done(&result.1) || Instant::now() > deadline {
            return result;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn haproxy_stats_show_every_backend_server_over_page_and_socket() {
    let dir = tempdir("haproxy");
    let stats_port = free_port();
    let topology = loopback::topology(&dir, &[("haproxyExporter", stats_port)]);
    // web1 answers; web2's port has nothing behind it.
    let web1 = server(
        None,
        Answer::Pages {
            bodies: vec!["web1".into()],
            hsts: false,
        },
    );
    let dead = free_port();
    let socket = dir.path.join("stats.sock");
    let config = format!(
        "global\n  stats socket {sock} mode 600 level admin\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         frontend stats\n  bind {lb}:{stats_port}\n  stats enable\n  stats uri /stats\n\
         backend web\n  balance roundrobin\n  default-server check inter 100ms fall 1 rise 1\n\
           server web1 {web1}\n  server web2 {web2}:{dead}\n",
        sock = socket.display(),
        lb = loopback::address(0),
        web1 = web1.addr,
        web2 = loopback::address(2),
    );
    let cfg = dir.path.join("haproxy.cfg");
    std::fs::write(&cfg, config).unwrap();
    let stats_address = format!("{}:{stats_port}", loopback::address(0));
    let _haproxy = LocalDaemon::start(
        "haproxy",
        "haproxy",
        &["-db".into(), "-f".into(), cfg.display().to_string()],
        &[],
        &dir.path.join("haproxy.log"),
        LocalReady::Port(stats_address.parse().unwrap()),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let settled = |r: &Value| {
        by_probe(r)
            .iter()
            .any(|(p, _, o)| p == "server web/web2" && o.starts_with("DOWN"))
    };
    let (code, report, out) =
        eventually(&topology, &["--from", "lb", "--only", "haproxy"], settled);
    assert_eq!(code, 1, "{out}");
    let rows = by_probe(&report);
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0].0, "server web/web1");
    assert_eq!(rows[0].1, "pass", "{out}");
    assert_eq!(rows[0].2, "UP L4OK");
    assert_eq!(
        (rows[1].1.as_str(), rows[1].2.as_str()),
        ("fail", "DOWN L4CON"),
        "{out}"
    );

    // The same verdict over the stats socket.
    let sock = socket.display().to_string();
    let (code, report, out) = check(
        &topology,
        &[
            "--from",
            "lb",
            "--only",
            "haproxy",
            "--haproxy-stats",
            &sock,
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(by_probe(&report), rows);

    // From outside, the stats page is dropped by design: skipped, not failed.
    let (code, report, out) = check(&topology, &["--from", "outside", "--only", "haproxy"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(report["checks"][0]["status"], "skip");
    assert!(
        report["checks"][0]["reason"]
            .as_str()
            .unwrap()
            .ends_with("is not reachable from outside by policy"),
        "{out}"
    );
}

#[test]
fn prometheus_targets_and_alerts_with_expectations() {
    let dir = tempdir("prometheus");
    let port = free_port();
    let topology = loopback::topology(&dir, &[("prometheus", port)]);
    let lb = loopback::address(0);
    let dead = free_port();
    std::fs::write(
        dir.path.join("rules.yml"),
        "groups:\n- name: test\n  rules:\n  - alert: AlwaysFiring\n    expr: vector(1)\n",
    )
    .unwrap();
    std::fs::write(
        dir.path.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files: [rules.yml]\n\
             scrape_configs:\n\
             - job_name: self\n  static_configs: [{{targets: ['{lb}:{port}']}}]\n\
             - job_name: dead\n  static_configs: [{{targets: ['{lb}:{dead}']}}]\n"
        ),
    )
    .unwrap();
    let _prometheus = LocalDaemon::start(
        "prometheus",
        "prometheus",
        &[
            format!(
                "--config.file={}",
                dir.path.join("prometheus.yml").display()
            ),
            format!("--storage.tsdb.path={}", dir.path.join("data").display()),
            format!("--web.listen-address={lb}:{port}"),
        ],
        &[],
        &dir.path.join("prometheus.log"),
        LocalReady::Logged("Server is ready to receive web requests".into()),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let args = [
        "--from",
        "lb",
        "--only",
        "prometheus,alerts",
        "--expect-alert",
        "AlwaysFiring",
    ];
    let settled = |r: &Value| {
        let rows = by_probe(r);
        rows.iter()
            .any(|(p, s, _)| p == "alert AlwaysFiring" && s == "pass")
            && rows
                .iter()
                .filter(|(p, _, _)| p.starts_with("target "))
                .count()
                == 2
            && rows.iter().all(|(_, _, o)| o != "unknown")
    };
    let (code, report, out) = eventually(&topology, &args, settled);
    assert_eq!(code, 1, "{out}");
    let rows = by_probe(&report);
    let self_target = format!("target self {lb}:{port}");
    let dead_target = format!("target dead {lb}:{dead}");
    assert!(
        rows.contains(&(self_target, "pass".into(), "up".into())),
        "{out}"
    );
    assert!(
        rows.contains(&(dead_target, "fail".into(), "down".into())),
        "{out}"
    );
    assert!(
        rows.contains(&("alert AlwaysFiring".into(), "pass".into(), "firing".into())),
        "{out}"
    );

    // Without expectations a firing alert is listed, not judged; with --expect-no-alert
    // it is a finding.
    let (_, report, out) = check(&topology, &["--from", "lb", "--only", "alerts"]);
    assert_eq!(
        by_probe(&report),
        [("alert AlwaysFiring".into(), "info".into(), "firing".into())],
        "{out}"
    );
    let (code, report, out) = check(
        &topology,
        &["--from", "lb", "--only", "alerts", "--expect-no-alert"],
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(by_probe(&report)[0].1, "fail");
    // An expected alert that does not fire is a finding too.
    let (code, report, out) = check(
        &topology,
        &["--from", "lb", "--only", "alerts", "--expect-alert", "Nope"],
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        by_probe(&report)[0],
        ("alert Nope".into(), "fail".into(), "inactive".into())
    );

    // web1 may not reach Prometheus: skipped with the reason.
    let (code, report, out) = check(&topology, &["--from", "web1", "--only", "prometheus"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(report["checks"][0]["status"], "skip", "{out}");
}
