//! The fault → alert matrix: each fault is injected into the running lab, exactly its
//! alert (plus the consequences documented in its row) must reach the webhook, then the
//! fault is healed and the alert must resolve. And the soak: a healthy lab left alone
//! delivers no notification at all. docs/monitoring.md keeps the measured matrix.
//!
//! Faults that touch different hosts and raise differently named alerts run together, one
//! wave at a time: a wave's deliveries are judged against the union of its rows, so the
//! waves are chosen such that no row's alert could stand for another's. Every fault is
//! healed whatever happens (a failed wait, a failed injection of its neighbour), so a
//! failed row leaves the lab as it found it for the next wave and the next scenario.
//!
//! Every alert rule the lab renders has a row whose fault fires it, or a line in
//! [`NOT_FIRED`] saying why it cannot be fired here; the scenario fails otherwise. An alert
//! another branch adds (the failover agent: LeaderChanged, SyncSetEmpty, AgentDown)
//! therefore needs its row here when it lands.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rampart_lab::daemons::{self, MariadbPaths};
use rampart_lab::{monitor, process, supervise};
use rampart_topology::{Host, Role};

use super::ctx::now_ms;
use super::{exposure, tls, Ctx, Proof};

/// Longest wait for an alert to reach the webhook, and for it to resolve (a cause keeps
/// firing longer than its symptoms: up to 64 s in the lab).
const FIRE_LIMIT: Duration = Duration::from_secs(75);
const RESOLVE_LIMIT: Duration = Duration::from_secs(100);
/// How long the matrix waits after the expected alerts arrived, for anything undocumented.
const SETTLE: Duration = Duration::from_secs(6);
/// Longest wait for a quiet lab (nothing pending or firing) before a wave.
const QUIET_LIMIT: Duration = Duration::from_secs(90);

/// One row of the matrix.
struct Fault {
    name: &'static str,
    /// Alerts that must be delivered (firing, then resolved).
    expected: &'static [&'static str],
    /// Alerts the fault fires too that inhibition must keep from the webhook: firing in
    /// Prometheus while the expected ones are, never delivered.
    inhibited: &'static [&'static str],
    /// Documented consequences: may be delivered, need not be.
    allowed: &'static [&'static str],
    inject: fn(&mut Ctx) -> Result<Injected>,
}

/// What heals an injected fault.
type Injected = Box<dyn FnOnce(&mut Ctx) -> Result<()>>;

/// The faults, in waves of independent ones.
const WAVES: &[&[Fault]] = &[
    &[
        Fault {
            name: "backend nginx killed (web1)",
            expected: &["NginxDown"],
            inhibited: &["HaproxyBackendDown", "ProbeEndpointDown"],
            // reach on lb: the public endpoint's rotation no longer reaches web1.
            allowed: &["ReachCheckFailing"],
            inject: nginx_killed,
        },
        Fault {
            name: "certificate near expiry (web2's backend, 2 days)",
            expected: &["ReachCertificateExpiringSoon"],
            inhibited: &[],
            allowed: &[],
            inject: cert_near_expiry,
        },
        Fault {
            name: "replica SQL thread stopped (web2)",
            expected: &["MariadbReplicationBroken"],
            // The IO thread still acknowledges: semi-sync stays on.
            inhibited: &[],
            allowed: &[],
            inject: sql_thread_stopped,
        },
        Fault {
            // web1's nginx is down in this wave: every POST goes to web2 and fails there.
            name: "5xx burst (web2's database account loses INSERT; POSTs through lb)",
            expected: &["HaproxyBackendHigh5xxRatio"],
            inhibited: &["HaproxyHigh5xxRatio"],
            allowed: &[],
            inject: http_5xx_burst,
        },
    ],
    &[
        Fault {
            name: "app killed (web2)",
            expected: &["HaproxyBackendDown"],
            inhibited: &[],
            // reach on lb: the public endpoint answered 502 for web2's share of its
            // requests before HAProxy took web2 out.
            allowed: &["ReachCheckFailing"],
            inject: app_killed,
        },
        Fault {
            name: "replication partitioned (web2 ↛ web1, a blackhole route)",
            expected: &["MariadbReplicationBroken"],
            inhibited: &[],
            // reach on web2 can no longer reach web1's ports as its policy says it must;
            // the route cuts all of web2's traffic to web1, so the member on the side
            // without etcd's leader loses it (measured: EtcdMemberDown{web2}, and {web1}
            // in another run). Measured too: ReachUndeclaredPortOpen{web2}, lb's raw sweep
            // meeting web2's connect probes (the route moves web2's whole sweep to
            // connect), likely a TCP simultaneous open (docs/monitoring.md).
            allowed: &[
                "ReachCheckFailing",
                "EtcdMemberDown",
                "ReachUndeclaredPortOpen",
            ],
            inject: replication_partitioned,
        },
        Fault {
            name: "site file deleted (web1: index.html)",
            expected: &["ReachWebContentChanged"],
            inhibited: &[],
            // The same file fetched through the load balancer is missing too (HAProxy
            // sends every request to web1 while web2's app is out).
            allowed: &["ReachCheckFailing"],
            inject: site_file_deleted,
        },
    ],
    &[
        Fault {
            name: "QPS over threshold (wrk from outside)",
            expected: &["HaproxyHighQPS"],
            inhibited: &["HaproxyBackendHighQPS"],
            allowed: &[],
            inject: high_qps,
        },
        Fault {
            name: "site file changed (web2: css/site.css)",
            expected: &["ReachWebContentChanged"],
            inhibited: &["ReachCheckFailing"],
            allowed: &[],
            inject: site_file_changed,
        },
        Fault {
            name: "node exporter stopped (web1)",
            expected: &["PrometheusTargetDown"],
            inhibited: &[],
            allowed: &[],
            inject: node_exporter_stopped,
        },
        Fault {
            name: "etcd member stopped (lb)",
            expected: &["EtcdMemberDown"],
            inhibited: &[],
            // reach sees lb's etcd ports closed. Not beside the replication partition:
            // web2 ↛ web1 with lb's member stopped leaves etcd without a quorum.
            allowed: &["ReachCheckFailing"],
            inject: etcd_member_stopped,
        },
    ],
    &[
        Fault {
            name: "site file added (web1: extra.html)",
            expected: &["ReachWebContentChanged"],
            inhibited: &[],
            allowed: &["ReachCheckFailing"],
            inject: site_file_added,
        },
        Fault {
            name: "latency on web2 (its app stopped 1.2 s of every 1.5 s)",
            expected: &["ProbeSlow"],
            inhibited: &[],
            // reach's 1 s probes through the load balancer meet the stopped app.
            allowed: &["ReachCheckFailing"],
            inject: latency,
        },
        Fault {
            name: "reach timer stopped (lb)",
            expected: &["ReachTextfileStale"],
            inhibited: &[],
            allowed: &[],
            inject: reach_timer_stopped,
        },
        Fault {
            name: "etcd quorum lost (web1's and web2's members stopped)",
            expected: &["EtcdNoQuorum"],
            // Every member without a leader, lb's too.
            inhibited: &["EtcdMemberDown"],
            // The failover agent (docs/failover.md) cannot renew the leader's lease
            // without a quorum: it closes web1's writer gate and sets read_only, by
            // design (measured: MariadbPrimaryUnreachable; the gate's resets drop web2's
            // replication connection: MariadbReplicationBroken{web2}).
            allowed: &[
                "ReachCheckFailing",
                "MariadbPrimaryUnreachable",
                "MariadbReplicationBroken",
            ],
            inject: etcd_quorum_lost,
        },
    ],
    &[
        Fault {
            name: "every application stopped (SIGSTOP on web1 and web2)",
            expected: &["HaproxyAllBackendsDown"],
            inhibited: &["HaproxyBackendDown"],
            // The public probe and reach's rotation fail for the same reason.
            allowed: &["ReachCheckFailing"],
            inject: every_app_stopped,
        },
        Fault {
            name: "primary fenced (failover paused, read_only=1 on web1 by hand)",
            // The pause pages too: FailoverPaused's hour is 6 s in the lab profile.
            expected: &["MariadbPrimaryUnreachable", "FailoverPaused"],
            inhibited: &[],
            allowed: &[],
            inject: primary_fenced,
        },
        Fault {
            name: "queries straight to the primary (SELECT 1 in a loop on web1)",
            expected: &["MariadbHighQPS"],
            inhibited: &[],
            allowed: &[],
            inject: database_qps,
        },
        Fault {
            name: "firewall rule changed (web2: a rule admitting 192.0.2.1 inserted)",
            expected: &["ReachFirewallDrift"],
            inhibited: &[],
            // reach's ruleset check fails on web2 (muted by the drift once both fire).
            allowed: &["ReachCheckFailing"],
            inject: firewall_rule_changed,
        },
    ],
    &[
        Fault {
            name: "undeclared port opened (web2: a listener on 20111, admitted by a new rule)",
            expected: &["ReachUndeclaredPortOpen"],
            // The same port as web2's own reach sees it: a listener nobody declared, a
            // rule the rendered ruleset lacks.
            inhibited: &["ReachUndeclaredListener", "ReachFirewallDrift"],
            allowed: &["ReachCheckFailing"],
            inject: undeclared_port_opened,
        },
        Fault {
            name: "TLS profile violated (web1's nginx: X448 and ECDHE-ECDSA-AES128-SHA added)",
            expected: &["ReachTlsProfileViolation"],
            inhibited: &[],
            allowed: &["ReachCheckFailing"],
            inject: tls_profile_violated,
        },
    ],
];

/// Alert rules no fault here fires, with the reason.
const NOT_FIRED: &[(&str, &str)] = &[
    (
        "FailoverLeaderChanged",
        "needs a failover, which none of the matrix's faults causes (they leave the primary's lease alone); the failover-alerts scenario fires it by killing the leader's agent",
    ),
    (
        "FailoverAgentDown",
        "the failover-alerts scenario fires it (the leader's agent killed); in the matrix that fault would also move the leader and page FailoverLeaderChanged",
    ),
    (
        "FailoverSyncSetEmpty",
        "the failover-alerts scenario fires it (the replica cut off from the leader under writes); the matrix's replication partition writes nothing, so the agent has no acknowledgement to miss",
    ),
    (
        "MariadbReplicationLagHigh",
        "needs the replica over 30 s behind under steady writes; the lab's replication over loopback veths keeps up (promtool: lib/tests/prometheus/mariadb.test.yml)",
    ),
    (
        "PrometheusRuleEvaluationFailures",
        "only a broken rule fails to evaluate, and promtool refuses to load one (the metrics scenario proves every rule evaluates)",
    ),
    (
        "PrometheusNotificationsFailing",
        "Alertmanager down is the fault, and it is also the only way to the webhook (promtool: lib/tests/prometheus/prometheus.test.yml)",
    ),
];

/// Waits until Prometheus has nothing pending or firing.
fn quiet(ctx: &Ctx, limit: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let active = ctx.active_alerts()?;
        if active.is_empty() {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!(
                "the lab is not quiet before the next wave: {} still active after {:.0} s",
                active.join(", "),
                limit.as_secs_f64()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until the webhook has received `status` for every `names` since `since`;
/// returns when each arrived, in the order of `names`.
fn wait_all(
    ctx: &Ctx,
    names: &BTreeSet<&str>,
    status: &str,
    since: u64,
    limit: Duration,
) -> Result<Vec<(String, u64)>> {
    let start = Instant::now();
    loop {
        let got = ctx.delivered_since(since)?;
        let arrived: Vec<(String, u64)> = names
            .iter()
            .filter_map(|n| {
                got.iter()
                    .find(|a| a.name == *n && a.status == status)
                    .map(|a| (n.to_string(), a.received_ms))
            })
            .collect();
        if arrived.len() == names.len() {
            return Ok(arrived);
        }
        if start.elapsed() > limit {
            let missing: Vec<&&str> = names
                .iter()
                .filter(|n| !arrived.iter().any(|(a, _)| a == *n))
                .collect();
            bail!(
                "{} not delivered {status} within {:.0} s (Prometheus has active: {})",
                missing
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                limit.as_secs_f64(),
                ctx.active_alerts()?.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until Prometheus has every one of `names` firing.
fn wait_firing(ctx: &Ctx, names: &BTreeSet<&str>, limit: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let firing = monitor::alerts(&ctx.lab.namespace(&ctx.monitor.name), ctx.prometheus, false)?;
        let missing: Vec<&&str> = names
            .iter()
            .filter(|n| !firing.iter().any(|f| f == *n))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!(
                "{} never fired in Prometheus within {:.0} s (firing: {})",
                missing
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                limit.as_secs_f64(),
                firing.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The alert names of the rules the lab's Prometheus runs.
fn rule_names(ctx: &Ctx) -> Result<BTreeSet<String>> {
    let rules = daemons::rendered(
        &ctx.lab.host_dirs(&ctx.monitor.name),
        "prometheus/rules.yml",
    )?;
    let text = std::fs::read_to_string(&rules)
        .with_context(|| format!("cannot read {}", rules.display()))?;
    Ok(alert_names(&text))
}

/// The alert names of a rendered `prometheus/rules.yml`.
fn alert_names(rules_yml: &str) -> BTreeSet<String> {
    rules_yml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        .collect()
}

/// The alerts some row's fault fires: delivered (expected) or muted (inhibited).
fn fired_by_a_fault() -> BTreeSet<&'static str> {
    WAVES
        .iter()
        .flat_map(|w| w.iter())
        .flat_map(|f| f.expected.iter().chain(f.inhibited))
        .copied()
        .collect()
}

/// Every rule has a row or a reason; returns the rules that have neither.
fn uncovered(rules: &BTreeSet<String>) -> Vec<String> {
    let fired = fired_by_a_fault();
    let excused: BTreeSet<&str> = NOT_FIRED.iter().map(|(n, _)| *n).collect();
    rules
        .iter()
        .filter(|n| !fired.contains(n.as_str()) && !excused.contains(n.as_str()))
        .cloned()
        .collect()
}

/// One row's outcome.
struct Row {
    fault: &'static str,
    expected: String,
    fired_s: Option<f64>,
    resolved_s: Option<f64>,
    others: Vec<String>,
    /// The row's inhibited alerts, seen firing in Prometheus while never delivered.
    muted: Vec<&'static str>,
    error: Option<String>,
}

/// Injects a wave, waits for its alerts, heals it (always), waits for the resolutions.
fn run_wave(ctx: &mut Ctx, wave: &[Fault]) -> Vec<Row> {
    let since = now_ms();
    let mut heals: Vec<(usize, Injected)> = Vec::new();
    let mut errors: Vec<Option<String>> = wave.iter().map(|_| None).collect();
    for (i, fault) in wave.iter().enumerate() {
        match (fault.inject)(ctx) {
            Ok(heal) => heals.push((i, heal)),
            Err(e) => errors[i] = Some(format!("injecting: {e:#}")),
        }
    }
    let injected: Vec<usize> = heals.iter().map(|(i, _)| *i).collect();
    let expected: BTreeSet<&str> = injected
        .iter()
        .flat_map(|&i| wave[i].expected.iter().copied())
        .collect();
    let inhibited: BTreeSet<&str> = injected
        .iter()
        .flat_map(|&i| wave[i].inhibited.iter().copied())
        .collect();
    let fired = wait_all(ctx, &expected, "firing", since, FIRE_LIMIT);
    let symptoms = match &fired {
        Ok(_) => wait_firing(ctx, &inhibited, FIRE_LIMIT),
        Err(_) => Ok(()),
    };
    if fired.is_ok() {
        std::thread::sleep(SETTLE);
    }
    let healed_at = now_ms();
    for (i, heal) in heals {
        if let Err(e) = heal(ctx) {
            errors[i].get_or_insert_with(|| format!("healing: {e:#}"));
        }
    }
    resume_everything(ctx);
    let resolved = match &fired {
        Ok(_) => wait_all(ctx, &expected, "resolved", healed_at, RESOLVE_LIMIT),
        Err(_) => Ok(Vec::new()),
    };
    let delivered = ctx.delivered_since(since).unwrap_or_default();
    let documented: BTreeSet<&str> = wave
        .iter()
        .flat_map(|f| f.expected.iter().chain(f.allowed))
        .copied()
        .collect();
    let wave_error = [
        fired.as_ref().err().map(|e| format!("{e:#}")),
        symptoms.as_ref().err().map(|e| format!("{e:#}")),
        resolved.as_ref().err().map(|e| format!("{e:#}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    wave.iter()
        .enumerate()
        .map(|(i, fault)| {
            let at = |list: &Result<Vec<(String, u64)>>, from: u64| {
                list.as_ref().ok().and_then(|l| {
                    fault
                        .expected
                        .iter()
                        .map(|n| l.iter().find(|(a, _)| a == n).map(|(_, t)| *t))
                        .collect::<Option<Vec<u64>>>()
                        .and_then(|t| t.into_iter().max())
                        .map(|t| t.saturating_sub(from) as f64 / 1000.0)
                })
            };
            // Deliveries that are this row's: its expected and allowed names.
            let mine: BTreeSet<&str> = fault
                .expected
                .iter()
                .chain(fault.allowed)
                .copied()
                .collect();
            let others: Vec<String> = delivered
                .iter()
                .filter(|a| a.status == "firing" && !fault.expected.contains(&a.name.as_str()))
                .filter(|a| mine.contains(a.name.as_str()) || !documented.contains(a.name.as_str()))
                .map(|a| {
                    let host = a.labels.get("host").and_then(|h| h.as_str()).unwrap_or("");
                    format!("{}{{{host}}}", a.name)
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let undocumented: Vec<&String> = others
                .iter()
                .filter(|o| !documented.iter().any(|d| o.starts_with(&format!("{d}{{"))))
                .collect();
            let mut error = errors[i].clone();
            if error.is_none() && !wave_error.is_empty() {
                error = Some(wave_error.join("; "));
            }
            if error.is_none() && !undocumented.is_empty() {
                error = Some(format!(
                    "undocumented alerts delivered: {}",
                    undocumented
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Row {
                fault: fault.name,
                expected: fault.expected.join(", "),
                fired_s: at(&fired, since),
                resolved_s: at(&resolved, healed_at),
                others,
                muted: if fired.is_ok() && symptoms.is_ok() {
                    fault.inhibited.to_vec()
                } else {
                    Vec::new()
                },
                error,
            }
        })
        .collect()
}

/// Runs every wave; prints the matrix; fails if a row did not hold or a rule has no row.
pub fn matrix(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let uncovered = uncovered(&rule_names(ctx)?);
    let started = Instant::now();
    let mut rows = Vec::new();
    for (n, wave) in WAVES.iter().enumerate() {
        if let Err(e) = quiet(ctx, QUIET_LIMIT) {
            rows.extend(wave.iter().map(|f| Row {
                fault: f.name,
                expected: f.expected.join(", "),
                fired_s: None,
                resolved_s: None,
                others: Vec::new(),
                muted: Vec::new(),
                error: Some(format!("wave {} not run: {e:#}", n + 1)),
            }));
            continue;
        }
        rows.extend(run_wave(ctx, wave));
    }
    proof.note(
        "| fault | expected alert | s to notification | s to resolved | other alerts delivered | muted (firing, not delivered) |",
    );
    proof.note("|---|---|---|---|---|---|");
    let show = |s: Option<f64>| s.map_or("✘".to_string(), |s| format!("{s:.1}"));
    for row in &rows {
        proof.note(format!(
            "| {} | {} | {} | {} | {} | {} |",
            row.fault,
            row.expected,
            show(row.fired_s),
            show(row.resolved_s),
            match (&row.error, row.others.is_empty()) {
                (Some(e), _) => format!("✘ {e}"),
                (None, true) => "none".into(),
                (None, false) => row.others.join(", "),
            },
            if row.muted.is_empty() {
                "none".to_string()
            } else {
                row.muted.join(", ")
            }
        ));
    }
    for (alert, why) in NOT_FIRED {
        proof.note(format!(
            "| — | {alert} | — | — | not fired here: {why} | — |"
        ));
    }
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.fault)))
        .collect();
    proof.summary = format!(
        "{} of {} faults in {} waves gave exactly their alerts and resolved, in {:.0} s; {} rules listed as not fired here",
        rows.len() - failures.len(),
        rows.len(),
        WAVES.len(),
        started.elapsed().as_secs_f64(),
        NOT_FIRED.len()
    );
    ensure!(
        uncovered.is_empty(),
        "alert rules with no fault in the matrix and no reason in NOT_FIRED (tools/infralab/src/scenarios/matrix.rs): {}",
        uncovered.join(", ")
    );
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// A healthy lab left alone delivers nothing: `RAMPART_SOAK_SECONDS` (default 60; the
/// long soak of docs/monitoring.md is 600). Bring-up counts too: nothing may have been
/// delivered since the lab started.
pub fn soak(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let seconds: u64 = std::env::var("RAMPART_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    // Bring-up: everything delivered since the lab started, when no scenario has run yet
    // (alerts still pending at the end of `infralab up` count: they are awaited here).
    let untouched = !ctx.scenarios_ran_marker().exists();
    quiet(ctx, QUIET_LIMIT)?;
    let bring_up = ctx.delivered_since(0)?;
    let since = now_ms();
    std::thread::sleep(Duration::from_secs(seconds));
    let got = ctx.delivered_since(since)?;
    let names = |list: &[rampart_lab::webhook::DeliveredAlert]| {
        list.iter()
            .map(|a| {
                let host = a.labels.get("host").and_then(|h| h.as_str()).unwrap_or("");
                format!("{} {}{{{host}}}", a.status, a.name)
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if untouched {
        proof.note(format!("bring-up: {} notifications", bring_up.len()));
    } else {
        proof.note("bring-up not judged: other scenarios ran against this lab before");
    }
    proof.note(format!(
        "{seconds} s untouched: {} notifications",
        got.len()
    ));
    ensure!(
        !untouched || bring_up.is_empty(),
        "bring-up delivered: {}",
        names(&bring_up)
    );
    ensure!(got.is_empty(), "a healthy lab delivered: {}", names(&got));
    proof.summary = if untouched {
        format!("bring-up and {seconds} s of a healthy lab: 0 notifications")
    } else {
        format!("{seconds} s of a healthy lab: 0 notifications")
    };
    Ok(())
}

// ------------------------------------------------------------ faults

fn web(ctx: &Ctx, index: usize) -> Result<Host> {
    ctx.web_hosts()
        .get(index)
        .cloned()
        .context("the matrix needs two web hosts")
}

/// The pid of the daemon `name` itself on `host`: under its supervisor (issue #18) the
/// lab's record holds the supervisor's pid, and stopping or killing that one leaves the
/// daemon running (or the supervisor stopped for good); the daemon is in its status file.
fn daemon_pid(ctx: &Ctx, name: &str, host: &str) -> Result<u32> {
    let path = supervise::status_path(&ctx.lab.host_dirs(host), name);
    if !path.exists() {
        return ctx
            .lab
            .record()
            .processes
            .iter()
            .find(|p| p.name == name && p.node == host)
            .map(|p| p.pid)
            .with_context(|| format!("the lab has no {name} on {host}"));
    }
    supervise::read_status(&path)?.live_pid().with_context(|| {
        format!(
            "{name} on {host} is not running under its supervisor ({})",
            path.display()
        )
    })
}

/// SIGCONT to every process the lab recorded and every supervised daemon: whatever a
/// fault or a failed heal stopped runs again (a stopped supervisor restarts nothing).
fn resume_everything(ctx: &Ctx) {
    for p in &ctx.lab.record().processes {
        if process::is_alive(p) {
            let _ = process::signal(p.pid, process::Signal::SIGCONT);
        }
        let status = supervise::status_path(&ctx.lab.host_dirs(&p.node), &p.name);
        if let Some(pid) = supervise::read_status(&status)
            .ok()
            .and_then(|s| s.live_pid())
        {
            let _ = process::signal(pid, process::Signal::SIGCONT);
        }
    }
}

fn nginx_killed(ctx: &mut Ctx) -> Result<Injected> {
    let host = web(ctx, 0)?;
    ctx.lab.stop("nginx", &host.name)?;
    Ok(Box::new(move |ctx: &mut Ctx| {
        ctx.start_nginx(&host, Duration::from_secs(20))
    }))
}

/// The application stopped and kept down: a kill alone is healed by its supervisor (as
/// by systemd's `Restart=`) within a second and rightly pages nobody; what pages is an
/// application that stays down, which is its supervisor stopped with it. Healing starts
/// it again the way the drain scenario starts nginx: through the lab, supervised.
fn app_killed(ctx: &mut Ctx) -> Result<Injected> {
    let host = web(ctx, 1)?;
    ensure!(
        ctx.lab.stop("app", &host.name)?,
        "the application on {} was not running",
        host.name
    );
    Ok(Box::new(move |ctx: &mut Ctx| {
        ctx.start_app(&host, Duration::from_secs(20))
    }))
}

fn replica(ctx: &Ctx) -> Result<Host> {
    ctx.lab
        .topology
        .hosts_with_role(Role::DatabaseReplica)
        .next()
        .cloned()
        .context("the topology has no database replica")
}

fn primary(ctx: &Ctx) -> Result<Host> {
    ctx.lab
        .topology
        .hosts_with_role(Role::DatabasePrimary)
        .next()
        .cloned()
        .context("the topology has no database primary")
}

/// Runs `statement` as root on `host`'s MariaDB; `undo` heals it.
fn statement_undone(
    ctx: &Ctx,
    host: Host,
    statement: &str,
    undo: &'static str,
) -> Result<Injected> {
    super::database::sql(ctx, &host, statement)?;
    Ok(Box::new(move |ctx: &mut Ctx| {
        super::database::sql(ctx, &host, undo)?;
        Ok(())
    }))
}

fn sql_thread_stopped(ctx: &mut Ctx) -> Result<Injected> {
    let host = replica(ctx)?;
    statement_undone(ctx, host, "STOP SLAVE SQL_THREAD", "START SLAVE SQL_THREAD")
}

fn replication_partitioned(ctx: &mut Ctx) -> Result<Injected> {
    let host = replica(ctx)?;
    let primary = primary(ctx)?;
    // A route, not a firewall rule: the firewall stays as rendered (no drift to report).
    let route = format!("{}/32", primary.address);
    let out = ctx.exec(&host.name, "ip", &["route", "add", "blackhole", &route])?;
    ensure!(
        out.status.success(),
        "ip route add blackhole {route} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(Box::new(move |ctx: &mut Ctx| {
        ctx.exec(&host.name, "ip", &["route", "del", "blackhole", &route])?;
        // The IO thread retries on its own; make it reconnect now.
        super::database::sql(ctx, &host, "STOP SLAVE IO_THREAD; START SLAVE IO_THREAD")?;
        Ok(())
    }))
}

/// A file of `host`'s copy of the site, and the bytes it had (None: it did not exist).
fn site_file(ctx: &Ctx, host: &Host, file: &str) -> (std::path::PathBuf, Option<Vec<u8>>) {
    let path = ctx.lab.host_dirs(&host.name).site.join(file);
    let before = std::fs::read(&path).ok();
    (path, before)
}

/// Puts a site file back as it was (or removes it when it was not there).
fn restore(path: std::path::PathBuf, before: Option<Vec<u8>>) -> Injected {
    Box::new(move |_ctx: &mut Ctx| {
        match before {
            Some(bytes) => std::fs::write(&path, bytes),
            None => std::fs::remove_file(&path),
        }
        .with_context(|| format!("cannot restore {}", path.display()))
    })
}

fn site_file_deleted(ctx: &mut Ctx) -> Result<Injected> {
    let (path, before) = site_file(ctx, &web(ctx, 0)?, "index.html");
    ensure!(
        before.is_some(),
        "{} does not exist to delete",
        path.display()
    );
    std::fs::remove_file(&path).with_context(|| format!("cannot delete {}", path.display()))?;
    Ok(restore(path, before))
}

fn site_file_changed(ctx: &mut Ctx) -> Result<Injected> {
    let (path, before) = site_file(ctx, &web(ctx, 1)?, "css/site.css");
    let Some(bytes) = before.clone() else {
        bail!("{} does not exist to change", path.display());
    };
    let mut defaced = bytes;
    defaced.extend_from_slice(b"body { background: url(https://attacker.invalid/x.png); }\n");
    std::fs::write(&path, defaced).with_context(|| format!("cannot change {}", path.display()))?;
    Ok(restore(path, before))
}

fn site_file_added(ctx: &mut Ctx) -> Result<Injected> {
    let (path, before) = site_file(ctx, &web(ctx, 0)?, "extra.html");
    ensure!(before.is_none(), "{} exists already", path.display());
    std::fs::write(&path, "<p>not in the manifest</p>\n")
        .with_context(|| format!("cannot add {}", path.display()))?;
    Ok(restore(path, None))
}

/// The application on web2 stopped 800 ms of every second: a request waits up to that
/// long. (The kernel here has no netem; SIGSTOP/SIGCONT delays exactly one backend's
/// responses and leaves its sockets, health checks and the other hosts alone.)
/// The latency fault's cycle. A request arriving at a random moment waits 0.8 × 0.6 s =
/// 0.48 s on average, well over the lab's 0.25 s threshold (800/200 ms gave 0.32 s: the
/// 20 s average of ten probes crossed the threshold back and forth and ProbeSlow took up
/// to 75 s); 1.2 s stays under HAProxy's 2 s `timeout check`, so web2 stays in rotation.
const LATENCY_STOPPED: Duration = Duration::from_millis(1200);
const LATENCY_RUNNING: Duration = Duration::from_millis(300);

fn latency(ctx: &mut Ctx) -> Result<Injected> {
    let pid = daemon_pid(ctx, "app", &web(ctx, 1)?.name)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let cycler = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(150);
        while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
            let _ = process::signal(pid, process::Signal::SIGSTOP);
            std::thread::sleep(LATENCY_STOPPED);
            let _ = process::signal(pid, process::Signal::SIGCONT);
            std::thread::sleep(LATENCY_RUNNING);
        }
        let _ = process::signal(pid, process::Signal::SIGCONT);
    });
    Ok(Box::new(move |_ctx: &mut Ctx| {
        stop.store(true, Ordering::Relaxed);
        cycler
            .join()
            .map_err(|_| anyhow::anyhow!("the SIGSTOP cycler panicked"))?;
        Ok(())
    }))
}

fn cert_near_expiry(ctx: &mut Ctx) -> Result<Injected> {
    let host = web(ctx, 1)?;
    let out_dir = ctx.lab.state.root().join("near-expiry");
    let _ = std::fs::remove_dir_all(&out_dir);
    crate::bringup::issue(&ctx.lab, &ctx.pki.ca_dir, &out_dir, &["--validity", "2d"])?;
    ctx.replace_backend_certificate(&host.name, &out_dir.join(&host.name))?;
    // reach's timer picks it up at its next run.
    Ok(Box::new(move |ctx: &mut Ctx| {
        ctx.restore_backend_certificate(&host.name)?;
        Ok(())
    }))
}

fn high_qps(ctx: &mut Ctx) -> Result<Injected> {
    let running = ctx.load(4, 90)?.start()?;
    Ok(Box::new(move |_ctx: &mut Ctx| {
        running.stop();
        Ok(())
    }))
}

fn node_exporter_stopped(ctx: &mut Ctx) -> Result<Injected> {
    let host = web(ctx, 0)?;
    ctx.lab.stop("node-exporter", &host.name)?;
    Ok(Box::new(move |ctx: &mut Ctx| {
        let exporter =
            daemons::node_exporter(&ctx.lab.topology, &host, &ctx.lab.host_dirs(&host.name))?;
        ctx.lab
            .start(&exporter.spec, &exporter.ready, Duration::from_secs(20))?;
        Ok(())
    }))
}

fn reach_timer_stopped(ctx: &mut Ctx) -> Result<Injected> {
    let host = ctx.lb.clone();
    ctx.lab.stop(crate::reach::REACH_TIMER, &host.name)?;
    Ok(Box::new(move |ctx: &mut Ctx| {
        let pki = ctx.lab.pki();
        let timer = crate::reach::timer(&ctx.lab, &pki, &host.name)?;
        ctx.lab
            .start(&timer.spec, &timer.ready, Duration::from_secs(5))?;
        Ok(())
    }))
}

/// A bounded loop of POSTs from outside through the load balancer, until stopped.
fn post_loop(
    ctx: &Ctx,
    per_second: u32,
    limit: Duration,
) -> Result<(Arc<AtomicBool>, std::thread::JoinHandle<()>)> {
    let namespace = ctx.lab.namespace("outside");
    let ca = ctx.pki.ca_cert().display().to_string();
    let resolve = format!(
        "{}:{}:{}",
        ctx.public_name,
        ctx.port("https")?,
        ctx.lb.address
    );
    let url = ctx.public_url("/visit");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let gap = Duration::from_millis(1000 / u64::from(per_second.max(1)));
    let worker = std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
            let started = Instant::now();
            let _ = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &namespace,
                    "curl",
                    "-sS",
                    "-o",
                    "/dev/null",
                    "--max-time",
                    "2",
                ])
                .args(["--cacert", &ca, "--resolve", &resolve, "-X", "POST", &url])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(gap.saturating_sub(started.elapsed()));
        }
    });
    Ok((stop, worker))
}

/// Closes every connection `user`@`from` has open on `host`, so that its next ones get
/// the account's privileges as they are now (a database-level GRANT or REVOKE reaches an
/// open connection only at its next USE).
fn kill_connections(ctx: &Ctx, host: &Host, user: &str, from: &str) -> Result<()> {
    let ids = super::database::sql(
        ctx,
        host,
        &format!(
            "SELECT id FROM information_schema.processlist WHERE user = '{user}' AND host LIKE '{from}:%'"
        ),
    )?;
    for id in ids.lines().filter(|l| !l.trim().is_empty()) {
        // A connection that closed meanwhile is not an error.
        let _ = super::database::sql(ctx, host, &format!("KILL CONNECTION {}", id.trim()));
    }
    Ok(())
}

fn http_5xx_burst(ctx: &mut Ctx) -> Result<Injected> {
    let web2 = web(ctx, 1)?;
    let primary = primary(ctx)?;
    let user = app_user(ctx)?;
    let account = format!("'{user}'@'{}'", web2.address);
    let database = app_database(ctx)?;
    super::database::sql(
        ctx,
        &primary,
        &format!("REVOKE INSERT ON `{database}`.* FROM {account}"),
    )?;
    kill_connections(ctx, &primary, &user, &web2.address.to_string())?;
    let (stop, worker) = post_loop(ctx, 8, Duration::from_secs(150))?;
    Ok(Box::new(move |ctx: &mut Ctx| {
        stop.store(true, Ordering::Relaxed);
        let _ = worker.join();
        super::database::sql(
            ctx,
            &primary,
            &format!("GRANT INSERT ON `{database}`.* TO {account}"),
        )?;
        kill_connections(ctx, &primary, &user, &web2.address.to_string())?;
        Ok(())
    }))
}

/// `settings.mariadb.appUser` and `.database` as the lab rendered them.
fn app_user(ctx: &Ctx) -> Result<String> {
    setting(ctx, "appUser")
}

fn app_database(ctx: &Ctx) -> Result<String> {
    setting(ctx, "database")
}

fn setting(ctx: &Ctx, key: &str) -> Result<String> {
    let file = daemons::rendered(
        &ctx.lab.host_dirs(&primary(ctx)?.name),
        "mariadb/bootstrap.sql",
    )?;
    let text = std::fs::read_to_string(&file)?;
    // bootstrap.sql names both: `CREATE DATABASE IF NOT EXISTS `rampart`` and the app's
    // account `'rampart_app'@…` with its grants on that database.
    let grant = text
        .lines()
        .find(|l| l.starts_with("GRANT SELECT, INSERT"))
        .with_context(|| format!("{} grants the application nothing", file.display()))?;
    let database = grant.split('`').nth(1).unwrap_or_default().to_string();
    let user = grant.split('\'').nth(1).unwrap_or_default().to_string();
    let value = if key == "database" { database } else { user };
    ensure!(
        !value.is_empty(),
        "cannot read {key} from {}",
        file.display()
    );
    Ok(value)
}

/// One client sending `SELECT 1` as fast as the primary answers (a bounded stream; its
/// process group is killed to heal). mariadb-slap's `--query` runs a query once per
/// client, whatever `--number-of-queries` says: measured, 14 queries for 20000.
fn database_qps(ctx: &mut Ctx) -> Result<Injected> {
    use std::os::unix::process::CommandExt;
    let host = primary(ctx)?;
    let paths = MariadbPaths::new(&ctx.lab.host_dirs(&host.name));
    let script = format!(
        "yes 'SELECT 1;' | head -n 5000000 | exec ip netns exec {} mariadb --no-defaults -uroot --socket={} -N -B",
        ctx.lab.namespace(&host.name),
        paths.socket.display()
    );
    let child: Child = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("cannot start the query stream")?;
    Ok(Box::new(move |_ctx: &mut Ctx| {
        let mut child = child;
        let killed = process::signal_group(child.id(), process::Signal::SIGKILL);
        let _ = child.wait();
        Ok(killed?)
    }))
}

fn every_app_stopped(ctx: &mut Ctx) -> Result<Injected> {
    let pids = ctx
        .web_hosts()
        .iter()
        .map(|h| daemon_pid(ctx, "app", &h.name))
        .collect::<Result<Vec<_>>>()?;
    // Every one of them resumed, the first failure reported.
    let resume = |pids: &[u32]| -> Result<()> {
        let sent: Vec<_> = pids
            .iter()
            .map(|&pid| process::signal(pid, process::Signal::SIGCONT))
            .collect();
        sent.into_iter().collect::<std::result::Result<(), _>>()?;
        Ok(())
    };
    for (n, &pid) in pids.iter().enumerate() {
        if let Err(e) = process::signal(pid, process::Signal::SIGSTOP) {
            let _ = resume(&pids[..n]);
            return Err(e.into());
        }
    }
    Ok(Box::new(move |_ctx: &mut Ctx| resume(&pids)))
}

/// An operator fences the primary by hand during maintenance: automatic failover paused
/// first (`rampart-db pause`), else the leader's agent would make it writable again at
/// its next tick — or, with the agent stopped, the replica would take over.
fn primary_fenced(ctx: &mut Ctx) -> Result<Injected> {
    let host = primary(ctx)?;
    failover_switch(
        ctx,
        &host.name,
        &["pause", "--reason", "matrix: primary fenced"],
    )?;
    super::database::sql(ctx, &host, "SET GLOBAL read_only = 1")?;
    Ok(Box::new(move |ctx: &mut Ctx| {
        super::database::sql(ctx, &host, "SET GLOBAL read_only = 0")?;
        failover_switch(ctx, &host.name, &["resume"])
    }))
}

/// `rampart-db pause` or `resume` on a database host of the lab.
fn failover_switch(ctx: &Ctx, host: &str, args: &[&str]) -> Result<()> {
    let run = crate::failover::rampart_db(&ctx.lab, host, args)?;
    ensure!(
        run.code == 0,
        "rampart-db {} on {host} exited {}: {}{}",
        args.join(" "),
        run.code,
        run.stdout,
        run.stderr
    );
    Ok(())
}

/// An undeclared port no service of the topology uses.
const STRAY_PORT: u16 = 20111;

fn undeclared_port_opened(ctx: &mut Ctx) -> Result<Injected> {
    let host = web(ctx, 1)?.name;
    ensure!(
        ctx.lab
            .topology
            .services
            .values()
            .all(|s| s.port != STRAY_PORT),
        "port {STRAY_PORT} is declared in the topology; pick another for the matrix"
    );
    let stray = exposure::Stray::start(ctx, &host, STRAY_PORT)?;
    if let Err(e) = exposure::admit(ctx, &host, STRAY_PORT) {
        drop(stray);
        return Err(e);
    }
    Ok(Box::new(move |ctx: &mut Ctx| {
        drop(stray);
        exposure::restore_ruleset(ctx, &host)
    }))
}

fn firewall_rule_changed(ctx: &mut Ctx) -> Result<Injected> {
    let host = web(ctx, 1)?.name;
    // TEST-NET-1: no vantage of the lab has that address, so nothing new is reachable;
    // only the ruleset differs from the rendered one.
    exposure::nft(
        ctx,
        &host,
        &[
            "insert",
            "rule",
            "inet",
            "rampart",
            "input",
            "ip",
            "saddr",
            "192.0.2.1",
            "accept",
        ],
    )?;
    Ok(Box::new(move |ctx: &mut Ctx| {
        exposure::restore_ruleset(ctx, &host)
    }))
}

fn tls_profile_violated(ctx: &mut Ctx) -> Result<Injected> {
    let host = web(ctx, 0)?.name;
    let (conf, rendered, weakened) = tls::weakened_nginx(ctx, &host)?;
    if let Err(e) = tls::nginx_with(ctx, &host, &conf, &weakened, true) {
        let _ = tls::nginx_with(ctx, &host, &conf, &rendered, false);
        return Err(e);
    }
    Ok(Box::new(move |ctx: &mut Ctx| {
        tls::nginx_with(ctx, &host, &conf, &rendered, false)
    }))
}

fn etcd_stopped(ctx: &mut Ctx, hosts: Vec<Host>) -> Result<Injected> {
    for host in &hosts {
        ctx.lab.stop("etcd", &host.name)?;
    }
    Ok(Box::new(move |ctx: &mut Ctx| {
        for host in &hosts {
            let member = daemons::etcd(&ctx.lab.topology, host, &ctx.lab.host_dirs(&host.name))?;
            ctx.lab
                .start(&member.spec, &member.ready, Duration::from_secs(20))?;
        }
        Ok(())
    }))
}

fn etcd_member_stopped(ctx: &mut Ctx) -> Result<Injected> {
    let lb = ctx.lb.clone();
    etcd_stopped(ctx, vec![lb])
}

fn etcd_quorum_lost(ctx: &mut Ctx) -> Result<Injected> {
    // etcd's leadership first moves to the member that stays (lb's). When the others come
    // back, the election that follows extends every lease, so the database leader's key
    // outlives the loss and its agent resumes the lead: the harder path, which once left
    // web1's MariaDB deadlocked (docs/failover.md "The writer gate"). With the leadership
    // on a stopped member the key expires instead and the replica takes over.
    let web: Vec<Host> = ctx.web_hosts().into_iter().take(2).collect();
    // Asked from a web host: only database hosts hold an etcd client certificate.
    let asker = web
        .first()
        .context("the topology has no web host")?
        .name
        .clone();
    let config = daemons::etcd_client_config(&ctx.lab.topology, &ctx.lab.host_dirs(&asker).pki)?;
    let moving = config.clone();
    let stays = ctx.lb.name.clone();
    daemons::with_etcd(&ctx.lab.namespace(&asker), config, move |_| async move {
        rampart_consensus::move_leader(&moving, &stays).await
    })?
    .context("etcd's leadership could not be moved to the member that stays")?;
    etcd_stopped(ctx, web)
}

/// The matrix cannot drift from the rules: these run in `cargo nextest` (no lab, no root),
/// on the rules `lib.render` writes for the shipped topology, and on docs/monitoring.md.
#[cfg(test)]
mod tests {
    use super::*;
    use rampart_lab::render::{self, Profile};
    use rampart_lab::state::StateDir;
    use rampart_topology::Topology;
    use std::path::{Path, PathBuf};

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// The alert names of the monitoring host's rendered rules, per settings profile.
    fn rendered_alerts(profile: Profile) -> BTreeSet<String> {
        let path = repo().join("hosts/topology.json");
        let topology = Topology::load(&path).expect("hosts/topology.json loads");
        let json = std::fs::read_to_string(&path).expect("hosts/topology.json reads");
        let names: Vec<&str> = topology.hosts.iter().map(|h| h.name.as_str()).collect();
        let monitor = topology
            .hosts
            .iter()
            .find(|h| h.roles.contains(&Role::Monitoring))
            .expect("the shipped topology has a monitoring host");
        let state = StateDir::new(Path::new("/nonexistent/rampart-matrix-test")).unwrap();
        let settings = render::settings(&state, &names, profile, &serde_json::json!({}));
        let rendered = render::render(&repo(), &json, &settings, None).expect("lib.render");
        let rules = &rendered.files[&monitor.name]["prometheus/rules.yml"];
        let alerts = alert_names(rules);
        assert!(alerts.len() > 20, "too few alerts parsed: {alerts:?}");
        alerts
    }

    #[test]
    fn every_rendered_alert_rule_has_a_fault_or_a_reason() {
        let lab = rendered_alerts(Profile::Lab);
        assert_eq!(
            uncovered(&lab),
            Vec::<String>::new(),
            "alert rules with no fault in WAVES and no reason in NOT_FIRED \
             (tools/infralab/src/scenarios/matrix.rs): give each a fault that fires it in \
             the lab, or say why it cannot be fired here"
        );
        // The lab profile changes timings and thresholds, never which rules exist.
        assert_eq!(lab, rendered_alerts(Profile::Shipped));
    }

    #[test]
    fn the_matrix_names_only_rules_and_no_rule_twice() {
        let rules = rendered_alerts(Profile::Lab);
        let fired = fired_by_a_fault();
        let named = WAVES
            .iter()
            .flat_map(|w| w.iter())
            .flat_map(|f| f.expected.iter().chain(f.inhibited).chain(f.allowed))
            .copied()
            .chain(NOT_FIRED.iter().map(|(n, _)| *n));
        let unknown: Vec<&str> = named.filter(|n| !rules.contains(*n)).collect();
        assert!(
            unknown.is_empty(),
            "the matrix names alerts no rule has: {unknown:?}"
        );
        let both: Vec<&str> = NOT_FIRED
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| fired.contains(n))
            .collect();
        assert!(
            both.is_empty(),
            "NOT_FIRED lists alerts a fault fires (take them out): {both:?}"
        );
    }

    /// First cells of the markdown table whose header starts with `header`.
    fn first_cells(doc: &str, header: &str) -> BTreeSet<String> {
        let mut lines = doc.lines().skip_while(|l| !l.starts_with(header));
        assert!(
            lines.next().is_some(),
            "docs/monitoring.md has no table {header:?}"
        );
        lines
            .skip(1)
            .take_while(|l| l.starts_with('|'))
            .map(|l| l.split('|').nth(1).unwrap_or("").trim().to_string())
            .collect()
    }

    #[test]
    fn the_docs_keep_every_row_and_every_reason() {
        let doc = std::fs::read_to_string(repo().join("docs/monitoring.md")).unwrap();
        let faults: BTreeSet<String> = WAVES
            .iter()
            .flat_map(|w| w.iter())
            .map(|f| f.name.to_string())
            .collect();
        assert_eq!(
            first_cells(&doc, "| fault | expected alert |"),
            faults,
            "docs/monitoring.md's measured matrix must have one row per fault of WAVES \
             (paste the table `infralab test matrix` prints)"
        );
        let reasons: BTreeSet<String> = first_cells(&doc, "| alert | why it is not fired")
            .iter()
            .flat_map(|cell| cell.split(", ").map(str::to_string).collect::<Vec<_>>())
            .collect();
        let not_fired: BTreeSet<String> = NOT_FIRED.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(
            reasons, not_fired,
            "docs/monitoring.md's table of alerts not fired here must list NOT_FIRED's"
        );
    }

    #[test]
    fn alert_names_are_read_quoted_or_not() {
        let text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x\n  - alert: 'B'\n";
        assert_eq!(
            alert_names(text),
            ["A", "B"].iter().map(|s| s.to_string()).collect()
        );
    }
}
