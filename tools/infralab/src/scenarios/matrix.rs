//! The fault → alert matrix: each fault is injected into the running lab, exactly its
//! alert (plus the consequences documented in its row) must reach the webhook, then the
//! fault is healed and the alert must resolve. And the soak: a healthy lab left alone
//! delivers no notification at all. docs/monitoring.md keeps the measured matrix.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rampart_lab::{daemons, process};
use rampart_topology::Role;

use super::ctx::now_ms;
use super::{Ctx, Proof};
use crate::paths::sibling;

/// Longest wait for an alert to reach the webhook, and for it to resolve.
const FIRE_LIMIT: Duration = Duration::from_secs(60);
const RESOLVE_LIMIT: Duration = Duration::from_secs(60);
/// How long the matrix waits after the expected alert arrived, for anything undocumented.
const SETTLE: Duration = Duration::from_secs(6);

/// One row of the matrix.
struct Fault {
    name: &'static str,
    /// Alerts that must be delivered (firing, then resolved).
    expected: &'static [&'static str],
    /// Documented consequences: may be delivered, need not be.
    allowed: &'static [&'static str],
    inject: fn(&mut Ctx) -> Result<Injected>,
}

/// What heals an injected fault.
type Injected = Box<dyn FnOnce(&mut Ctx) -> Result<()>>;

const FAULTS: &[Fault] = &[
    Fault {
        name: "backend nginx killed (web1)",
        expected: &["NginxDown"],
        allowed: &[],
        inject: nginx_killed,
    },
    Fault {
        name: "app killed (web2)",
        expected: &["HaproxyBackendDown"],
        // reach on lb: the public endpoint answered 502 for web2's share of its requests
        // before HAProxy took web2 out.
        allowed: &["ReachCheckFailing"],
        inject: app_killed,
    },
    Fault {
        name: "replica SQL thread stopped",
        expected: &["MariadbReplicationBroken"],
        allowed: &[],
        inject: sql_thread_stopped,
    },
    Fault {
        name: "replication partitioned (web2 ↛ web1)",
        expected: &["MariadbReplicationBroken"],
        // reach on web2 can no longer reach web1's mysql port, as its policy says it must.
        allowed: &["ReachCheckFailing"],
        inject: replication_partitioned,
    },
    Fault {
        name: "latency on web2 (SIGSTOP/SIGCONT of its app)",
        expected: &["ProbeSlow"],
        allowed: &[],
        inject: latency,
    },
    Fault {
        name: "certificate near expiry (web2 backend, 2 days)",
        expected: &["ReachCertificateExpiringSoon"],
        allowed: &[],
        inject: cert_near_expiry,
    },
    Fault {
        name: "QPS over threshold (wrk from outside)",
        expected: &["HaproxyHighQPS"],
        allowed: &[],
        inject: high_qps,
    },
    Fault {
        name: "node exporter stopped (web2)",
        expected: &["PrometheusTargetDown"],
        allowed: &[],
        inject: node_exporter_stopped,
    },
];

/// Faults of the issue that the matrix cannot inject yet, with the reason.
const NOT_YET: &[(&str, &str, &str)] = &[
    (
        "site file deleted / changed / added",
        "ReachWebContentChanged",
        "the static site and its NAR-hash check are not built yet",
    ),
    (
        "5xx burst",
        "HaproxyBackendHigh5xxRatio",
        "not injected yet (planned: REVOKE INSERT from the application's account under POST load)",
    ),
    (
        "undeclared port opened",
        "ReachUndeclaredPortOpen / ReachUndeclaredListener",
        "reach's sweep and listener checks (issue #15) do not write their metrics yet",
    ),
    (
        "firewall rule changed",
        "ReachFirewallDrift",
        "reach's live-ruleset check (issue #15) does not write its metric yet",
    ),
];

/// Alerts Prometheus has firing or pending now, with their `host`.
fn quiet(ctx: &Ctx, limit: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let active = ctx.active_alerts()?;
        if active.is_empty() {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!(
                "the lab is not quiet before the next fault: {} still active after {:.0} s",
                active.join(", "),
                limit.as_secs_f64()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until the webhook has received `status` for every `names` since `since`.
fn wait_all(ctx: &Ctx, names: &[&str], status: &str, since: u64, limit: Duration) -> Result<u64> {
    let start = Instant::now();
    loop {
        let got = ctx.delivered_since(since)?;
        let last = names
            .iter()
            .map(|n| {
                got.iter()
                    .find(|a| a.name == *n && a.status == status)
                    .map(|a| a.received_ms)
            })
            .collect::<Option<Vec<u64>>>();
        if let Some(times) = last {
            return Ok(times.into_iter().max().unwrap_or(since));
        }
        if start.elapsed() > limit {
            bail!(
                "not every one of {} was delivered {status} within {:.0} s (Prometheus has active: {})",
                names.join(", "),
                limit.as_secs_f64(),
                ctx.active_alerts()?.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs every fault in turn; prints the matrix; fails if a row did not hold.
pub fn matrix(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for fault in FAULTS {
        quiet(ctx, Duration::from_secs(90))?;
        let since = now_ms();
        let outcome = (|| -> Result<(f64, f64, Vec<String>)> {
            let heal = (fault.inject)(ctx).with_context(|| format!("injecting {}", fault.name))?;
            let fired = wait_all(ctx, fault.expected, "firing", since, FIRE_LIMIT);
            if fired.is_ok() {
                std::thread::sleep(SETTLE);
            }
            let healed_at = now_ms();
            heal(ctx).with_context(|| format!("healing {}", fault.name))?;
            let fired = fired?;
            let resolved = wait_all(ctx, fault.expected, "resolved", healed_at, RESOLVE_LIMIT)?;
            let others: Vec<String> = ctx
                .delivered_since(since)?
                .into_iter()
                .filter(|a| a.status == "firing" && !fault.expected.contains(&a.name.as_str()))
                .map(|a| {
                    let host = a.labels.get("host").and_then(|h| h.as_str()).unwrap_or("");
                    format!("{}{{{host}}}", a.name)
                })
                .collect();
            Ok((
                fired.saturating_sub(since) as f64 / 1000.0,
                resolved.saturating_sub(healed_at) as f64 / 1000.0,
                others,
            ))
        })();
        match outcome {
            Ok((fire, resolve, others)) => {
                let undocumented: Vec<&String> = others
                    .iter()
                    .filter(|o| {
                        !fault
                            .allowed
                            .iter()
                            .any(|a| o.starts_with(&format!("{a}{{")))
                    })
                    .collect();
                if !undocumented.is_empty() {
                    failures.push(format!(
                        "{}: undocumented alerts delivered: {}",
                        fault.name,
                        undocumented
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                rows.push(format!(
                    "| {} | {} | {fire:.1} | {resolve:.1} | {} |",
                    fault.name,
                    fault.expected.join(", "),
                    if others.is_empty() {
                        "none".to_string()
                    } else {
                        others.join(", ")
                    }
                ));
            }
            Err(e) => {
                failures.push(format!("{}: {e:#}", fault.name));
                rows.push(format!(
                    "| {} | {} | ✘ | ✘ | {e:#} |",
                    fault.name,
                    fault.expected.join(", ")
                ));
            }
        }
    }
    proof.note(
        "| fault | expected alert | s to notification | s to resolved | other alerts delivered |",
    );
    proof.note("|---|---|---|---|---|");
    for row in &rows {
        proof.note(row.clone());
    }
    for (fault, alert, why) in NOT_YET {
        proof.note(format!("| {fault} | {alert} | — | — | not run: {why} |"));
    }
    proof.summary = format!(
        "{} of {} faults gave exactly their alert and resolved; {} not injectable yet",
        FAULTS.len() - failures.len(),
        FAULTS.len(),
        NOT_YET.len()
    );
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// A healthy lab left alone delivers nothing: `RAMPART_SOAK_SECONDS` (default 60; the
/// long soak of docs/monitoring.md is 600).
pub fn soak(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let seconds: u64 = std::env::var("RAMPART_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    quiet(ctx, Duration::from_secs(90))?;
    let since = now_ms();
    std::thread::sleep(Duration::from_secs(seconds));
    let got = ctx.delivered_since(since)?;
    let names: Vec<String> = got
        .iter()
        .map(|a| format!("{} {}", a.status, a.name))
        .collect();
    proof.note(format!(
        "{seconds} s untouched: {} notifications",
        got.len()
    ));
    ensure!(
        got.is_empty(),
        "a healthy lab delivered: {}",
        names.join(", ")
    );
    proof.summary = format!("{seconds} s of a healthy lab: 0 notifications");
    Ok(())
}

// ------------------------------------------------------------ faults

fn web(ctx: &Ctx, index: usize) -> Result<rampart_topology::Host> {
    ctx.web_hosts()
        .get(index)
        .cloned()
        .context("the matrix needs two web hosts")
}

fn nginx_killed(ctx: &mut Ctx) -> Result<Injected> {
    let host = web(ctx, 0)?;
    ctx.lab.stop("nginx", &host.name)?;
    Ok(Box::new(move |ctx: &mut Ctx| {
        let nginx = daemons::nginx(
            &ctx.lab.topology,
            &host,
            &ctx.lab.host_dirs(&host.name),
            &ctx.lab.namespace(&host.name),
        )?;
        ctx.lab
            .start(&nginx.spec, &nginx.ready, Duration::from_secs(20))?;
        Ok(())
    }))
}

fn app_killed(ctx: &mut Ctx) -> Result<Injected> {
    let host = web(ctx, 1)?;
    let record = ctx
        .lab
        .record()
        .processes
        .iter()
        .find(|p| p.name == "app" && p.node == host.name)
        .cloned()
        .context("the lab has no app on the second web host")?;
    process::signal(record.pid, process::Signal::SIGKILL)?;
    Ok(Box::new(move |ctx: &mut Ctx| {
        // A supervisor (issue #18) may have restarted it already.
        if ctx.server(&host.name)?.status == "UP" {
            return Ok(());
        }
        let app = daemons::app(
            &host,
            &ctx.lab.host_dirs(&host.name),
            &sibling("rampart-app")?,
        )?;
        ctx.lab
            .start(&app.spec, &app.ready, Duration::from_secs(20))?;
        Ok(())
    }))
}

fn replica(ctx: &Ctx) -> Result<rampart_topology::Host> {
    ctx.lab
        .topology
        .hosts_with_role(Role::DatabaseReplica)
        .next()
        .cloned()
        .context("the topology has no database replica")
}

fn sql_thread_stopped(ctx: &mut Ctx) -> Result<Injected> {
    let host = replica(ctx)?;
    super::database::sql(ctx, &host, "STOP SLAVE SQL_THREAD")?;
    Ok(Box::new(move |ctx: &mut Ctx| {
        super::database::sql(ctx, &host, "START SLAVE SQL_THREAD")?;
        Ok(())
    }))
}

fn replication_partitioned(ctx: &mut Ctx) -> Result<Injected> {
    let host = replica(ctx)?;
    let primary = ctx
        .lab
        .topology
        .hosts_with_role(Role::DatabasePrimary)
        .next()
        .cloned()
        .context("the topology has no database primary")?;
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

/// The application on web2 stopped 800 ms of every second: a request waits up to that
/// long. (The kernel here has no netem; SIGSTOP/SIGCONT delays exactly one backend's
/// responses and leaves its sockets, health checks and the other hosts alone.)
fn latency(ctx: &mut Ctx) -> Result<Injected> {
    let host = web(ctx, 1)?;
    let pid = ctx
        .lab
        .record()
        .processes
        .iter()
        .find(|p| p.name == "app" && p.node == host.name)
        .map(|p| p.pid)
        .context("the lab has no app on the second web host")?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let cycler = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
            let _ = process::signal(pid, process::Signal::SIGSTOP);
            std::thread::sleep(Duration::from_millis(800));
            let _ = process::signal(pid, process::Signal::SIGCONT);
            std::thread::sleep(Duration::from_millis(200));
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
    let running = ctx.load(4, 20)?.start()?;
    Ok(Box::new(move |_ctx: &mut Ctx| {
        running.stop();
        Ok(())
    }))
}

fn node_exporter_stopped(ctx: &mut Ctx) -> Result<Injected> {
    let host = web(ctx, 1)?;
    ctx.lab.stop("node-exporter", &host.name)?;
    Ok(Box::new(move |ctx: &mut Ctx| {
        let exporter =
            daemons::node_exporter(&ctx.lab.topology, &host, &ctx.lab.host_dirs(&host.name))?;
        ctx.lab
            .start(&exporter.spec, &exporter.ready, Duration::from_secs(20))?;
        Ok(())
    }))
}
