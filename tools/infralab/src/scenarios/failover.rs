//! The `failover` scenario (issue #9): no acknowledged write is lost with the primary.
//!
//! A bounded write load goes through the application (HTTPS from `outside`, through the
//! load balancer, to whichever web host, whose application writes to the database host
//! its read_only probe finds writable), each write carrying a sequence number. The
//! primary's mariadbd is SIGKILLed, `rampart-db promote` runs on the replica, and the
//! load goes on. Every write acknowledged before the kill must be on the new primary; the
//! seconds without an acknowledged write are reported. The old primary then restarts as a
//! demoted primary must (`--init-rpl-role=SLAVE`), `rampart-db rejoin` makes it a replica,
//! and both must hold the same rows. Last, a planned switchover (the old primary
//! reachable) puts the roles back as the topology declares them.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rampart_lab::daemons;
use rampart_lab::process::{self, Signal};
use rampart_lab::Ready;
use rampart_topology::{Host, Role};

use super::{Ctx, Proof};
use crate::failover::rampart_db;

/// Upper bounds of the write load, whatever happens.
const MAX_WRITES: u64 = 5_000;
const MAX_LOAD: Duration = Duration::from_secs(120);

/// Acknowledged writes: sequence number and when the answer arrived.
#[derive(Default)]
struct Acks {
    acked: Vec<(u64, Instant)>,
    last_error: Option<String>,
}

pub fn failover(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let t = &ctx.lab.topology;
    let role = |role: Role| -> Result<Host> {
        t.hosts_with_role(role)
            .next()
            .cloned()
            .with_context(|| format!("the topology has no host with role {role}"))
    };
    let (primary, replica) = (role(Role::DatabasePrimary)?, role(Role::DatabaseReplica)?);

    let status = rampart_db(&ctx.lab, &replica.name, &["status", "--json"])?;
    ensure!(
        status.code == 0,
        "the database pair is not healthy before the failover: {}",
        status.stdout.trim()
    );

    // Sequence numbers of this run, far above the application's own counter.
    let base = 1_000_000_000 + (super::ctx::now_ms() % 1_000_000) * 1_000;
    let acks = Mutex::new(Acks::default());
    let stop = AtomicBool::new(false);
    let url = ctx.public_url("/visit");
    let shared: &Ctx = ctx;
    let (killed, promoted, promote_report) = std::thread::scope(|scope| -> Result<_> {
        let writer = scope.spawn(|| write_load(shared, &url, base, &acks, &stop));
        let outcome = (|| -> Result<_> {
            wait_acked(&acks, 150, Duration::from_secs(60))?;
            // The crash: writes are in flight.
            kill_mariadb(shared, &primary.name)?;
            let killed = Instant::now();
            let run = rampart_db(
                &shared.lab,
                &replica.name,
                &["promote", &replica.name, "--json"],
            )?;
            let promoted = Instant::now();
            let report = run.report()?;
            ensure!(
                run.code == 0 && report["outcome"] == "done",
                "rampart-db promote {} did not promote (exit {}): {}",
                replica.name,
                run.code,
                report["reason"]
            );
            let before = count(&acks);
            wait_acked(&acks, before + 100, Duration::from_secs(60))?;
            Ok((killed, promoted, report))
        })();
        stop.store(true, Ordering::Relaxed);
        let written = writer
            .join()
            .map_err(|_| anyhow::anyhow!("the write load panicked"))?;
        let outcome = outcome?;
        written?;
        Ok(outcome)
    })?;

    let acks = acks.into_inner().unwrap_or_else(|p| p.into_inner());
    let before_kill: BTreeSet<u64> = acks
        .acked
        .iter()
        .filter(|(_, at)| *at <= killed)
        .map(|(seq, _)| *seq)
        .collect();
    let first_after = acks
        .acked
        .iter()
        .map(|(_, at)| *at)
        .find(|at| *at > killed)
        .context("no write was acknowledged after the kill")?;
    let unavailable = first_after.duration_since(killed).as_secs_f64();
    let on_new: BTreeSet<u64> = seqs(ctx, &replica.name, base)?;
    let lost: Vec<u64> = before_kill.difference(&on_new).copied().collect();
    proof.note(format!(
        "{} writes acknowledged before SIGKILL of {}'s mariadbd; {} on {} after promotion",
        before_kill.len(),
        primary.name,
        before_kill.len() - lost.len(),
        replica.name
    ));
    proof.note(format!(
        "rampart-db promote {} took {:.2} s: {}",
        replica.name,
        promoted.duration_since(killed).as_secs_f64(),
        steps(&promote_report)
    ));
    ensure!(
        lost.is_empty(),
        "{} acknowledged writes are not on the new primary {}: {:?}",
        lost.len(),
        replica.name,
        lost.iter().take(20).collect::<Vec<_>>()
    );
    let all: BTreeSet<u64> = acks.acked.iter().map(|(seq, _)| *seq).collect();
    let missing_later: Vec<u64> = all.difference(&on_new).copied().collect();
    ensure!(
        missing_later.is_empty(),
        "writes acknowledged after the promotion are missing on {}: {:?}",
        replica.name,
        missing_later
    );

    // The old primary comes back demoted and rejoins.
    restart_demoted(ctx, &primary)?;
    let rejoined = rampart_db(
        &ctx.lab,
        &primary.name,
        &[
            "rejoin",
            &primary.name,
            "--primary",
            &replica.name,
            "--json",
        ],
    )?;
    ensure!(
        rejoined.code == 0,
        "rampart-db rejoin {} --primary {} failed (exit {}): {}",
        primary.name,
        replica.name,
        rejoined.code,
        rejoined.report()?["reason"]
    );
    let (a, b) = (checksum(ctx, &primary.name)?, checksum(ctx, &replica.name)?);
    ensure!(
        a == b,
        "after rejoin the hosts disagree: {} has {a}, {} has {b}",
        primary.name,
        replica.name
    );
    proof.note(format!(
        "rejoin {} --primary {}: both hold {a}",
        primary.name, replica.name
    ));

    // A planned switchover back to the declared roles: nothing to lose, nothing lost.
    let back = rampart_db(
        &ctx.lab,
        &primary.name,
        &["promote", &primary.name, "--json"],
    )?;
    ensure!(
        back.code == 0,
        "switching back: rampart-db promote {} failed: {}",
        primary.name,
        back.report()?["reason"]
    );
    let again = rampart_db(
        &ctx.lab,
        &replica.name,
        &[
            "rejoin",
            &replica.name,
            "--primary",
            &primary.name,
            "--json",
        ],
    )?;
    ensure!(
        again.code == 0,
        "switching back: rampart-db rejoin {} failed: {}",
        replica.name,
        again.report()?["reason"]
    );
    proof.note(format!(
        "planned switchover back: promote {} ({:.2} s), rejoin {}",
        primary.name,
        back.report()?["seconds"].as_f64().unwrap_or(0.0),
        replica.name
    ));
    proof.summary = format!(
        "{} acknowledged writes, 0 lost; writes unavailable for {unavailable:.2} s; rejoined, both agree",
        before_kill.len()
    );
    Ok(())
}

/// POSTs `/visit?seq=N` through the load balancer until stopped or bounded; records each
/// acknowledged number. A failed write is never retried under the same number: its
/// outcome is unknown, and only acknowledged writes are promised.
fn write_load(
    ctx: &Ctx,
    url: &str,
    base: u64,
    acks: &Mutex<Acks>,
    stop: &AtomicBool,
) -> Result<()> {
    let started = Instant::now();
    for seq in base..base + MAX_WRITES {
        if stop.load(Ordering::Relaxed) || started.elapsed() > MAX_LOAD {
            break;
        }
        let target = format!("{url}?seq={seq}");
        let out = ctx.curl(
            "outside",
            &[
                "-X",
                "POST",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &target,
            ],
        )?;
        let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut acks = acks.lock().unwrap_or_else(|p| p.into_inner());
        if code == "201" || code == "200" {
            acks.acked.push((seq, Instant::now()));
        } else {
            acks.last_error = Some(format!("seq {seq}: HTTP {code}"));
            drop(acks);
            // Do not spin while no primary takes writes.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

fn count(acks: &Mutex<Acks>) -> usize {
    acks.lock().unwrap_or_else(|p| p.into_inner()).acked.len()
}

fn wait_acked(acks: &Mutex<Acks>, n: usize, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while count(acks) < n {
        if start.elapsed() > limit {
            let last = acks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .last_error
                .clone()
                .unwrap_or_default();
            bail!(
                "only {} of {n} writes acknowledged within {:.0} s (last failure: {last})",
                count(acks),
                limit.as_secs_f64()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// SIGKILL to a host's mariadbd, as a crash would do.
fn kill_mariadb(ctx: &Ctx, host: &str) -> Result<()> {
    let record = ctx
        .lab
        .record()
        .processes
        .iter()
        .find(|p| p.name == "mariadb" && p.node == host)
        .with_context(|| format!("the lab has no mariadb on {host} in its record"))?;
    process::signal(record.pid, Signal::SIGKILL)?;
    Ok(())
}

/// Starts the killed mariadbd again as a demoted primary: `--init-rpl-role=SLAVE` makes
/// its crash recovery drop a binlog tail the replica never acknowledged (docs/failover.md).
fn restart_demoted(ctx: &mut Ctx, host: &Host) -> Result<()> {
    ctx.lab.stop("mariadb", &host.name)?;
    let d = ctx.lab.host_dirs(&host.name);
    let daemon = daemons::mariadb(&ctx.lab.topology, host, &d)?;
    let spec = daemon.spec.arg("--init-rpl-role=SLAVE");
    // Not ready by its TCP port: the fence rejects that, which is the point. The socket
    // answers once recovery is done.
    ctx.lab
        .start(&spec, &Ready::Started, Duration::from_secs(1))
        .with_context(|| format!("restarting {}'s mariadbd", host.name))?;
    let start = Instant::now();
    while let Err(e) = sql(ctx, &host.name, "SELECT 1") {
        if start.elapsed() > Duration::from_secs(60) {
            bail!(
                "{}'s mariadbd did not answer on its socket within 60 s after the restart: {e:#}",
                host.name
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Runs SQL as root over a host's socket; the tab-separated rows.
fn sql(ctx: &Ctx, host: &str, statement: &str) -> Result<String> {
    ctx.sql(host, statement)
}

/// This run's sequence numbers stored on a host.
fn seqs(ctx: &Ctx, host: &str, base: u64) -> Result<BTreeSet<u64>> {
    sql(
        ctx,
        host,
        &format!("SELECT seq FROM rampart.visits WHERE seq >= {base}"),
    )?
    .lines()
    .map(|l| {
        l.parse()
            .with_context(|| format!("{host}: not a sequence number: {l:?}"))
    })
    .collect()
}

/// Row count and checksum of the visits table on a host.
fn checksum(ctx: &Ctx, host: &str) -> Result<String> {
    let rows = sql(ctx, host, "SELECT COUNT(*) FROM rampart.visits")?;
    let sum = sql(ctx, host, "CHECKSUM TABLE rampart.visits")?;
    let sum = sum.split('\t').nth(1).unwrap_or("?").to_string();
    Ok(format!("{rows} rows, checksum {sum}"))
}

/// The steps of a rampart-db report, one line.
fn steps(report: &serde_json::Value) -> String {
    report["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    format!(
                        "{}{} {}",
                        if s["ok"] == true { "" } else { "✘" },
                        s["step"].as_str().unwrap_or("?"),
                        s["host"].as_str().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
