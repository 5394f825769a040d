//! The failover scenarios (issue #14), on the agents and etcd, with no human in the loop.
//!
//! - `failover`: the fault suite's short schedule ([`crate::chaos`]): concurrent clients
//!   write through the public endpoint while the primary's mariadbd is killed, the primary
//!   is cut off from etcd's majority (clients still reach it), and the primary's agent is
//!   killed; after each: heal, converge, check the history (0 lost, 0 invented, no two
//!   writers) and the write unavailability. The checker proves it is not vacuous: the
//!   first run's real history, with one acknowledged value removed from the final state,
//!   must report exactly that value lost. A planned switchover puts the declared primary
//!   back in the lead.
//! - `partition-then-crash`: the sequence at the top of issue 14 — the replica cut off
//!   from the primary's MariaDB, writes, SIGKILL of the primary, promotion of the replica.
//!   The replica is not in the sync set, so promotion is refused, naming what it would
//!   lose; when the primary comes back it leads again with every acknowledged write.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use rampart_topology::{Host, Role};

use super::{Ctx, Proof};
use crate::chaos::{self, check, Fault, Shape};
use crate::failover::{rampart_db, wait_leader};

/// The short schedule CI runs (the long one is `infralab chaos`).
const SHORT: [Fault; 3] = [
    Fault::KillPrimaryMariadb,
    Fault::PartitionPrimaryFromEtcd,
    Fault::KillPrimaryAgent,
];

/// Write unavailability after a primary loss that the suite accepts (issue 14's target).
pub const UNAVAILABLE_TARGET: f64 = 10.0;

fn declared(ctx: &Ctx, role: Role) -> Result<String> {
    ctx.lab
        .topology
        .hosts_with_role(role)
        .next()
        .map(|h| h.name.clone())
        .with_context(|| format!("the topology has no host with role {role}"))
}

/// A base for this run's values, far above the application's own counter.
pub fn base_value() -> u64 {
    1_000_000_000_000 + (super::ctx::now_ms() % 1_000_000) * 10_000_000
}

pub fn failover(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let mut worst: f64 = 0.0;
    let (mut acked, mut runs) = (0, 0);
    for (i, fault) in SHORT.into_iter().enumerate() {
        let base = base_value() + (i as u64) * 100_000_000;
        let report = chaos::run(ctx, fault, Shape::default(), base)?;
        let v = &report.verdict;
        proof.note(format!(
            "{}: {} → {}; {}",
            fault.name(),
            report.primary_before,
            report.primary_after,
            v.summary()
        ));
        ensure!(
            v.passed(),
            "{}: lost {:?}, invented {:?}, two writers {:?}",
            fault.name(),
            v.lost,
            v.invented,
            v.two_writers
        );
        let unavailable = v
            .unavailable
            .context("no write was acknowledged after the fault")?;
        ensure!(
            unavailable <= UNAVAILABLE_TARGET,
            "{}: writes were unavailable for {unavailable:.2} s (target ≤ {UNAVAILABLE_TARGET} s)",
            fault.name()
        );
        worst = worst.max(unavailable);
        acked += v.acked;
        runs += 1;
        if i == 0 {
            proof.note(planted_loss_is_caught(ctx, base)?);
        }
    }
    if let Some(back) = declared_primary_back(ctx)? {
        proof.note(back);
    }
    proof.summary = format!(
        "{runs} faults, {acked} acknowledged writes, 0 lost, 0 two-writer windows; writes unavailable ≤ {worst:.2} s"
    );
    Ok(())
}

/// The declared roles back after a scenario's faults, by a planned switchover (no loss, a
/// short pause): later scenarios find the lab as `infralab up` left it. What it did, if
/// anything.
fn declared_primary_back(ctx: &Ctx) -> Result<Option<String>> {
    let primary = declared(ctx, Role::DatabasePrimary)?;
    let observer = declared(ctx, Role::DatabaseReplica)?;
    let (leader, _) = wait_leader(&ctx.lab, &observer, None, Duration::from_secs(30))?;
    if leader == primary {
        return Ok(None);
    }
    let run = rampart_db(
        &ctx.lab,
        &observer,
        &["switchover", "--to", &primary, "--json"],
    )?;
    let report = run.report()?;
    ensure!(
        run.code == 0,
        "switchover back to {primary} failed: {}",
        report["reason"]
    );
    Ok(Some(format!(
        "switchover {leader} → {primary}: {:.2} s",
        report["seconds"].as_f64().unwrap_or(0.0)
    )))
}

/// The checker on this run's real history, with one acknowledged value removed from the
/// final state: it must report exactly that value lost.
fn planted_loss_is_caught(ctx: &Ctx, base: u64) -> Result<String> {
    let (leader, _) = wait_leader(
        &ctx.lab,
        &declared(ctx, Role::DatabaseReplica)?,
        None,
        Duration::from_secs(30),
    )?;
    let stored: BTreeSet<u64> = chaos::sql(
        ctx,
        &leader,
        &format!(
            "SELECT seq FROM rampart.visits WHERE seq >= {base} AND seq < {}",
            base + 100_000_000
        ),
    )?
    .lines()
    .filter_map(|l| l.parse().ok())
    .collect();
    let planted = *stored.iter().next().context("the run stored nothing")?;
    let ops: Vec<check::Op> = stored
        .iter()
        .map(|&value| check::Op {
            value,
            invoke: 0.0,
            complete: 0.0,
            outcome: check::Outcome::Ok { committed: None },
        })
        .collect();
    let mut without = stored.clone();
    without.remove(&planted);
    let verdict = check::check(&ops, &without, None);
    ensure!(
        verdict.lost == vec![planted],
        "the checker missed a planted lost write: removed {planted}, it reported lost {:?}",
        verdict.lost
    );
    Ok(format!(
        "checker self-test: {} stored values with {planted} removed → reported lost exactly [{planted}]",
        stored.len()
    ))
}

/// The database host that is not `leader`: its replica.
fn other_database_host<'a>(ctx: &'a Ctx, leader: &str) -> Result<&'a Host> {
    ctx.lab
        .topology
        .database_hosts()
        .find(|h| h.name != leader)
        .with_context(|| format!("the topology has no database host besides {leader}"))
}

pub fn partition_then_crash(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    // From a healthy cluster: a leader with its replica recorded in sync.
    chaos::converge(ctx, Duration::from_secs(60))?;
    let replica = declared(ctx, Role::DatabaseReplica)?;
    let (primary, _) = wait_leader(&ctx.lab, &replica, None, Duration::from_secs(30))?;
    let replica = other_database_host(ctx, &primary)?.name.clone();
    let primary_address = ctx
        .lab
        .topology
        .host(&primary)
        .map(|h| h.address)
        .context("the primary's address")?;
    let mysql = ctx.port("mysql")?;
    // 1. The replica's traffic to the primary's MariaDB is dropped.
    chaos::nft_table(
        ctx,
        &replica,
        "",
        &format!("ip daddr {primary_address} tcp dport {mysql} drop;"),
    )?;
    // 2. Writes through the load balancer.
    let base = base_value();
    let url = ctx.public_url("/visit");
    let mut acked = Vec::new();
    let mut first_ack = None;
    let started = Instant::now();
    for value in base..base + 40 {
        let t = Instant::now();
        let out = ctx.curl(
            "outside",
            &[
                "-X",
                "POST",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("{url}?seq={value}"),
            ],
        )?;
        let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if code == "201" || code == "200" {
            first_ack.get_or_insert(t.elapsed());
            acked.push(value);
        }
    }
    let status = rampart_db(&ctx.lab, &primary, &["status", "--json"])?;
    let sync = serde_json::from_str::<serde_json::Value>(&status.stdout).unwrap_or_default()
        ["failover"]["sync"]
        .clone();
    proof.note(format!(
        "replica cut off from {primary}'s MariaDB: {} of 40 writes acknowledged in {:.1} s (the first after {:.2} s: writes waited for the replica until the leader recorded it out of sync; writes through {replica}'s application cannot reach {primary} and fail); sync set now {sync}",
        acked.len(),
        started.elapsed().as_secs_f64(),
        first_ack.unwrap_or_default().as_secs_f64()
    ));
    ensure!(
        !acked.is_empty(),
        "no write was acknowledged during the partition"
    );
    ensure!(
        sync.as_array().is_some_and(|s| s.is_empty()),
        "the leader did not record its replica out of sync: {sync}"
    );
    // 3. The primary crashes; promotion of the replica is asked for.
    chaos::kill(ctx, "mariadb", &primary)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let run = rampart_db(
            &ctx.lab,
            &replica,
            &["promote", &replica, "--json", "--timeout", "5"],
        )?;
        let report = run.report()?;
        if report["outcome"] == "refused"
            && report["reason"]
                .as_str()
                .is_some_and(|r| r.contains("not in the sync set"))
        {
            break report;
        }
        ensure!(
            Instant::now() < deadline,
            "promotion of {replica} was not refused as expected: {report}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let reason = refused["reason"].as_str().unwrap_or_default().to_string();
    proof.note(format!("rampart-db promote {replica}: refused — {reason}"));
    ensure!(
        reason.contains("at least 0-"),
        "the refusal names no GTID range: {reason}"
    );
    // The replica must not have become writable behind anyone's back.
    let read_only = chaos::sql(ctx, &replica, "SELECT @@global.read_only")?;
    ensure!(
        read_only == "1",
        "{replica} is writable although promotion was refused"
    );
    // Heal: the replica reaches the primary again, the primary restarts and leads again.
    chaos::heal(ctx)?;
    chaos::converge(ctx, Duration::from_secs(90))?;
    ctx.lab = ctx.lab.reloaded()?;
    let (leader, _) = wait_leader(&ctx.lab, &replica, None, Duration::from_secs(30))?;
    let stored: BTreeSet<u64> = chaos::sql(
        ctx,
        &leader,
        &format!(
            "SELECT seq FROM rampart.visits WHERE seq >= {base} AND seq < {}",
            base + 40
        ),
    )?
    .lines()
    .filter_map(|l| l.parse().ok())
    .collect();
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|v| !stored.contains(v))
        .collect();
    ensure!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    proof.summary = format!(
        "refused to promote {replica} (not in sync; it names the range it would lose); {primary} came back and leads with all {} acknowledged writes, 0 lost",
        acked.len()
    );
    ensure!(
        leader == primary,
        "{leader} leads, expected {primary} (the only host with every acknowledged write)"
    );
    Ok(())
}

/// How long a failover alert may take from its fault to the webhook.
const ALERT_LIMIT: Duration = Duration::from_secs(60);

/// Each failover alert, fired by its fault and delivered to the webhook: the leader's
/// agent killed fires FailoverAgentDown and, as the replica takes over,
/// FailoverLeaderChanged; the replica cut off from the leader under writes fires
/// FailoverSyncSetEmpty.
pub fn failover_alerts(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    chaos::converge(ctx, Duration::from_secs(60))?;
    let observer = declared(ctx, Role::DatabaseReplica)?;
    let (leader, _) = wait_leader(&ctx.lab, &observer, None, Duration::from_secs(30))?;
    // An alert still firing from an earlier fault swallows this one's notification
    // (measured: partition-then-crash's takeover 2 s earlier kept FailoverLeaderChanged
    // firing, and the takeover caused here was never notified).
    ctx.wait_quiet(&["FailoverAgentDown", "FailoverLeaderChanged"], ALERT_LIMIT)?;
    let since = super::ctx::now_ms();
    let started = Instant::now();
    chaos::kill(ctx, "failover-agent", &leader)?;
    // Healed whatever the outcome: the scenarios after this one need both agents.
    let fired = ["FailoverAgentDown", "FailoverLeaderChanged"]
        .into_iter()
        .try_for_each(|alert| -> Result<()> {
            let delivered = ctx.wait_delivery(alert, since, ALERT_LIMIT)?;
            proof.note(format!(
                "{leader}'s agent killed: {alert} at the webhook after {:.1} s ({})",
                started.elapsed().as_secs_f64(),
                delivered.labels.get("host").cloned().unwrap_or_default()
            ));
            Ok(())
        });
    chaos::heal(ctx)?;
    chaos::converge(ctx, Duration::from_secs(90))?;
    ctx.lab = ctx.lab.reloaded()?;
    fired?;
    ctx.wait_quiet(&["FailoverSyncSetEmpty"], ALERT_LIMIT)?;

    // The replica stops acknowledging while writes arrive: the leader records it out of
    // sync (policy available) and writes go on.
    let (leader, _) = wait_leader(&ctx.lab, &observer, None, Duration::from_secs(30))?;
    let replica = other_database_host(ctx, &leader)?.address.to_string();
    let since = super::ctx::now_ms();
    let started = Instant::now();
    chaos::nft_table(
        ctx,
        &leader,
        &format!("ip saddr {replica} drop;"),
        &format!("ip daddr {replica} drop;"),
    )?;
    let url = ctx.public_url("/visit");
    let base = base_value();
    let mut delivered = None;
    for value in base..base + 200 {
        let _ = ctx.curl(
            "outside",
            &[
                "-X",
                "POST",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                &format!("{url}?seq={value}"),
            ],
        );
        if let Some(found) = ctx
            .delivered_since(since)?
            .into_iter()
            .find(|a| a.name == "FailoverSyncSetEmpty" && a.status == "firing")
        {
            delivered = Some(found);
            break;
        }
        if started.elapsed() > ALERT_LIMIT {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    chaos::heal(ctx)?;
    chaos::converge(ctx, Duration::from_secs(90))?;
    ctx.lab = ctx.lab.reloaded()?;
    let delivered = delivered
        .context("FailoverSyncSetEmpty did not reach the webhook while the replica was cut off")?;
    proof.note(format!(
        "replica cut off from {leader} under writes: FailoverSyncSetEmpty at the webhook after {seconds:.1} s ({})",
        delivered.labels.get("host").cloned().unwrap_or_default()
    ));
    if let Some(back) = declared_primary_back(ctx)? {
        proof.note(back);
    }
    proof.summary = "FailoverAgentDown, FailoverLeaderChanged and FailoverSyncSetEmpty each fired by its fault and delivered".into();
    Ok(())
}
