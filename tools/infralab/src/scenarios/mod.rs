//! `infralab test [SCENARIO...]`: end-to-end scenarios against a running lab.
//!
//! Each scenario prints one line (✔/✘, name, seconds, a summary) and its evidence below;
//! the run ends with the plain line `infralab-test: N passed, N failed`.
//!
//! JSON output (`--json`) is one document:
//!
//! ```json
//! { "type": "test", "scenarios": [
//!     { "type": "scenario", "name": "https", "passed": true, "seconds": 1.9,
//!       "summary": "…", "evidence": ["…"], "error": null } ],
//!   "summary": { "type": "summary", "passed": 7, "failed": 0, "seconds": 80.2 } }
//! ```
//!
//! `error` is the reason a scenario failed (null when it passed). New fields may be added.

mod alerts;
pub mod ctx;
mod database;
mod downtime;
mod etcd;
mod exposure;
pub mod failover;
mod matrix;
mod metrics;
mod network;
mod tls;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Result};
use serde_json::json;

pub use ctx::Ctx;

use crate::lab_args::LabArgs;
use crate::progress::Progress;

/// What a scenario proved: a one-line summary and the evidence lines under it.
pub struct Proof {
    pub summary: String,
    pub evidence: Vec<String>,
}

impl Proof {
    pub fn new(summary: impl Into<String>) -> Proof {
        Proof {
            summary: summary.into(),
            evidence: Vec::new(),
        }
    }

    pub fn note(&mut self, line: impl Into<String>) {
        self.evidence.push(line.into());
    }
}

type Scenario = fn(&mut Ctx, &mut Proof) -> Result<()>;

/// Every scenario, in the order `infralab test` runs them.
pub const SCENARIOS: &[(&str, &str, Scenario)] = &[
    // First: before any other scenario disturbs the lab, bring-up must have paged no one.
    (
        "soak",
        "bring-up and a healthy lab left alone (RAMPART_SOAK_SECONDS, default 60) deliver no notification",
        matrix::soak,
    ),
    (
        "https",
        "HTTPS through lb alternates backends; HTTP redirects; HSTS; old TLS refused",
        network::https,
    ),
    (
        "firewall",
        "the reachability matrix from outside, lb and every web host matches the topology",
        network::firewall,
    ),
    (
        "undeclared-listener",
        "a listener on a random port of a random host, admitted by a rule: the sweep from outside finds it, the host names its process and the rule",
        exposure::undeclared_listener,
    ),
    (
        "ruleset-drift",
        "a live rule added and a rendered one deleted: reach on the host names each",
        exposure::ruleset_drift,
    ),
    (
        "wildcard-bind",
        "a daemon bound to 0.0.0.0 where the topology declares one address: reach on the host names it",
        exposure::wildcard_bind,
    ),
    (
        "testssl",
        "testssl.sh finds every TLS hop (public HTTPS, nginx, MariaDB) within the Mozilla profile",
        tls::testssl,
    ),
    (
        "tls-profile",
        "a backend taking a group and a suite outside the profile: reach names both, testssl.sh sees the group",
        tls::tls_profile,
    ),
    (
        "backend-tls",
        "LB→web traffic is TLS; a backend with another CA's certificate is marked DOWN",
        network::backend_tls,
    ),
    (
        "replication",
        "a write through web1's application appears on web2; replication needs TLS",
        network::replication,
    ),
    (
        "database",
        "settings in effect on primary and replica, bootstrap idempotent, accounts need TLS and the right certificate",
        database::database,
    ),
    (
        "etcd",
        "etcd: 3 members over TLS, clients need a rampart certificate, non-members reach no port, one member lost keeps writes, two lost refuse them",
        etcd::etcd,
    ),
    (
        "metrics",
        "every rule evaluates; every metric a rule reads or the textfile contract names is served",
        metrics::metrics,
    ),
    (
        "qps-alert",
        "load above the threshold fires HaproxyHighQPS at the webhook; light load does not",
        alerts::qps_alert,
    ),
    (
        "backend-down",
        "stopping web1's nginx under load: no failed request, alert, rejoin",
        alerts::backend_down,
    ),
    (
        "cert-expiry",
        "a certificate near expiry fires ReachCertificateExpiringSoon",
        alerts::cert_expiry,
    ),
    (
        "etcd-alerts",
        "stopping lb's etcd fires EtcdMemberDown, a second member EtcdNoQuorum, at the webhook; heals",
        etcd::etcd_alerts,
    ),
    (
        "matrix",
        "each fault delivers exactly its alert (and documented consequences), then resolves",
        matrix::matrix,
    ),
    (
        "failover",
        "no human: the primary's MariaDB killed, the primary cut off from etcd, its agent killed, under concurrent writes: 0 lost, no two writers, unavailability ≤ 10 s",
        failover::failover,
    ),
    (
        "partition-then-crash",
        "issue 14's sequence: replica cut off, writes, primary killed: promotion refused naming the range; every acknowledged write kept",
        failover::partition_then_crash,
    ),
    (
        "failover-alerts",
        "the leader's agent killed fires FailoverAgentDown and FailoverLeaderChanged; the replica cut off under writes fires FailoverSyncSetEmpty",
        failover::failover_alerts,
    ),
    (
        "nginx-kill",
        "SIGKILL web1's nginx under mixed load: 0 failed GETs, failed POSTs ≤ those in flight, none applied twice; its supervisor restarts it",
        downtime::nginx_kill,
    ),
    (
        "app-kill",
        "SIGKILL web1's application under mixed load: 0 failed GETs, failed POSTs ≤ those in flight, none applied twice; restarted on its held socket",
        downtime::app_kill,
    ),
    (
        "network-cut",
        "a web host's link down under mixed load until HAProxy marks it DOWN, then back: 0 failed GETs, failed POSTs ≤ those in flight",
        downtime::network_cut,
    ),
    (
        "drain",
        "drain a web host through HAProxy's admin socket, stop it, start it, ready it under mixed load: 0 failed requests",
        downtime::drain,
    ),
    (
        "rolling-restart",
        "every daemon of both web hosts restarted one host at a time (drain, restart, ready) under mixed load: 0 failed requests",
        downtime::rolling_restart,
    ),
    (
        "haproxy-reload",
        "HAProxy reloaded with a changed configuration and back under mixed load: 0 failed requests, nothing refused",
        downtime::haproxy_reload,
    ),
];

/// The scenario names, for messages.
pub fn names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|(name, _, _)| *name).collect()
}

pub fn run(args: &LabArgs, selected: &[String], as_json: bool) -> Result<ExitCode> {
    rampart_lab::require_root("infralab test")?;
    let unknown: Vec<&String> = selected
        .iter()
        .filter(|s| !names().contains(&s.as_str()))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "unknown scenario {} (expected one of: {})",
            unknown
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            names().join(", ")
        );
    }
    let mut ctx = Ctx::open(args)?;
    let progress = Progress::new();
    let started = Instant::now();
    let mut records = Vec::new();
    let (mut passed, mut failed) = (0, 0);
    for &(name, _, scenario) in SCENARIOS {
        if !selected.is_empty() && !selected.iter().any(|s| s == name) {
            continue;
        }
        let start = Instant::now();
        let mut proof = Proof::new("");
        let outcome = scenario(&mut ctx, &mut proof);
        let took = start.elapsed();
        // From now on the webhook's deliveries are not bring-up's alone (matrix::soak).
        std::fs::write(ctx.scenarios_ran_marker(), name)?;
        let ok = outcome.is_ok();
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
        let error = outcome.err().map(|e| format!("{e:#}"));
        if !as_json {
            progress.line(if ok { "✔" } else { "✘" }, name, &proof.summary, took);
            for line in &proof.evidence {
                println!("    {line}");
            }
            if let Some(error) = &error {
                for line in error.lines() {
                    println!("    ✘ {line}");
                }
            }
        }
        records.push(json!({
            "type": "scenario", "name": name, "passed": ok, "seconds": took.as_secs_f64(),
            "summary": proof.summary, "evidence": proof.evidence, "error": error,
        }));
    }
    let seconds = started.elapsed().as_secs_f64();
    if as_json {
        let doc = json!({
            "type": "test",
            "scenarios": records,
            "summary": { "type": "summary", "passed": passed, "failed": failed, "seconds": seconds },
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("infralab-test: {passed} passed, {failed} failed");
    }
    Ok(rampart_cli::exit::from_findings(failed > 0))
}
