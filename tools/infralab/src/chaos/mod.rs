//! The fault suite (issue #14): concurrent clients write through the public endpoint while
//! one fault hits the database tier; then heal, converge, read the final state and check
//! the history ([`check`]). `infralab test chaos` runs a short fixed schedule;
//! `infralab chaos --runs N --seed S` a long randomized one and prints a table.

pub mod check;
mod clients;
mod long;
mod rebuild;

pub use long::chaos;
pub use rebuild::rebuild_command;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rampart_lab::daemons::{self, MariadbPaths};
use rampart_lab::process::{self, Signal};
use rampart_lab::Ready;
use rampart_topology::Host;

use crate::failover::{rampart_db, wait_leader};
use crate::paths::sibling;
use crate::scenarios::ctx::Ctx;
use check::Verdict;

/// The faults the suite draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL of the primary's mariadbd.
    KillPrimaryMariadb,
    /// SIGSTOP of the primary's mariadbd for longer than the lease, then SIGCONT.
    PausePrimaryMariadb,
    /// SIGKILL of the primary's failover agent.
    KillPrimaryAgent,
    /// The primary cut off from every other host (clients included).
    PartitionPrimary,
    /// The primary cut off from the replica only.
    PartitionPrimaryFromReplica,
    /// The primary cut off from etcd's majority; clients still reach it.
    PartitionPrimaryFromEtcd,
    /// SIGKILL of the etcd member on the load balancer.
    KillLbEtcd,
    /// The replica's mariadbd restarted (cleanly) under load.
    RestartReplica,
}

pub const FAULTS: [Fault; 8] = [
    Fault::KillPrimaryMariadb,
    Fault::PausePrimaryMariadb,
    Fault::KillPrimaryAgent,
    Fault::PartitionPrimary,
    Fault::PartitionPrimaryFromReplica,
    Fault::PartitionPrimaryFromEtcd,
    Fault::KillLbEtcd,
    Fault::RestartReplica,
];

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::KillPrimaryMariadb => "kill-primary-mariadb",
            Fault::PausePrimaryMariadb => "pause-primary-mariadb",
            Fault::KillPrimaryAgent => "kill-primary-agent",
            Fault::PartitionPrimary => "partition-primary",
            Fault::PartitionPrimaryFromReplica => "partition-primary-from-replica",
            Fault::PartitionPrimaryFromEtcd => "partition-primary-from-etcd",
            Fault::KillLbEtcd => "kill-lb-etcd",
            Fault::RestartReplica => "restart-replica",
        }
    }

    /// Whether the fault takes the primary away (its write unavailability is the figure
    /// the issue targets, ≤ 10 s).
    pub fn loses_primary(self) -> bool {
        matches!(
            self,
            Fault::KillPrimaryMariadb
                | Fault::PausePrimaryMariadb
                | Fault::KillPrimaryAgent
                | Fault::PartitionPrimary
                | Fault::PartitionPrimaryFromEtcd
        )
    }
}

/// What one run measured.
pub struct RunReport {
    pub primary_before: String,
    pub primary_after: String,
    pub verdict: Verdict,
    pub seconds: f64,
}

/// Settings of a run.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub clients: u64,
    /// Writes before the fault.
    pub warmup: Duration,
    /// How long the fault lasts before it is healed.
    pub fault_for: Duration,
    /// Writes after convergence.
    pub cooldown: Duration,
}

impl Default for Shape {
    fn default() -> Shape {
        Shape {
            clients: 4,
            warmup: Duration::from_secs(2),
            fault_for: Duration::from_secs(9),
            cooldown: Duration::from_secs(2),
        }
    }
}

fn db_hosts(ctx: &Ctx) -> Vec<Host> {
    let t = &ctx.lab.topology;
    t.database_hosts().cloned().collect()
}

/// One run: load, fault, heal, converge, check.
pub fn run(ctx: &mut Ctx, fault: Fault, shape: Shape, base: u64) -> Result<RunReport> {
    let started = Instant::now();
    let hosts = db_hosts(ctx);
    let observer = hosts[0].name.clone();
    let (primary, _) = wait_leader(&ctx.lab, &observer, None, Duration::from_secs(30))?;
    let replica = hosts
        .iter()
        .find(|h| h.name != primary)
        .map(|h| h.name.clone())
        .context("a second database host")?;
    let epoch = Instant::now();
    let stop = AtomicBool::new(false);
    let (ops, fault_at) = {
        let shared: &Ctx = ctx;
        std::thread::scope(|scope| -> Result<_> {
            let load = scope.spawn(|| clients::run(shared, shape.clients, base, epoch, &stop));
            let outcome = (|| -> Result<f64> {
                std::thread::sleep(shape.warmup);
                let at = epoch.elapsed().as_secs_f64();
                inject(shared, fault, &primary, &replica, shape.fault_for)?;
                Ok(at)
            })();
            let healed = heal(shared);
            let converged = healed.and_then(|()| converge(shared, Duration::from_secs(90)));
            if converged.is_ok() {
                std::thread::sleep(shape.cooldown);
            }
            stop.store(true, Ordering::Relaxed);
            let ops = load
                .join()
                .map_err(|_| anyhow::anyhow!("the client load panicked"))?;
            let at = outcome?;
            converged?;
            Ok((ops, at))
        })?
    };
    ctx.lab = ctx.lab.reloaded()?;
    let (primary_after, _) = wait_leader(&ctx.lab, &observer, None, Duration::from_secs(30))?;
    let other = hosts
        .iter()
        .find(|h| h.name != primary_after)
        .map(|h| h.name.clone())
        .unwrap_or_default();
    let stored = final_state(ctx, &primary_after, &other, base, shape.clients)?;
    let verdict = check::check(&ops, &stored, Some(fault_at));
    Ok(RunReport {
        primary_before: primary,
        primary_after,
        verdict,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// This run's values once both hosts agree on them: read on the leader, waited for on
/// the other host, read there, while the leader's binlog position stays the same. (An
/// application may still finish a write whose client gave up, between the two reads.)
fn final_state(
    ctx: &Ctx,
    leader: &str,
    other: &str,
    base: u64,
    clients: u64,
) -> Result<BTreeSet<u64>> {
    let mut last = String::new();
    for _ in 0..10 {
        let position = sql(ctx, leader, "SELECT @@global.gtid_binlog_pos")?;
        let stored = stored_values(ctx, leader, base, clients)?;
        let waited = sql(
            ctx,
            other,
            &format!("SELECT MASTER_GTID_WAIT('{position}', 60)"),
        )?;
        ensure!(
            waited == "0",
            "{other} did not apply {leader}'s {position} within 60 s after convergence"
        );
        let replicated = stored_values(ctx, other, base, clients)?;
        let still = sql(ctx, leader, "SELECT @@global.gtid_binlog_pos")?;
        if still == position && replicated == stored {
            return Ok(stored);
        }
        last = format!(
            "{other} holds {} of this run's values and {leader} {} (leader at {position}, then {still})",
            replicated.len(),
            stored.len()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    bail!("after convergence the hosts disagree: {last}")
}

/// This run's values stored on a host (over its socket, as root).
fn stored_values(ctx: &Ctx, host: &str, base: u64, clients: u64) -> Result<BTreeSet<u64>> {
    let statement = format!(
        "SELECT seq FROM rampart.visits WHERE seq >= {base} AND seq < {}",
        base + clients * 1_000_000
    );
    sql(ctx, host, &statement)?
        .lines()
        .map(|l| {
            l.parse()
                .with_context(|| format!("{host}: not a value: {l:?}"))
        })
        .collect()
}

/// SQL as root over a host's socket; tab-separated rows.
pub fn sql(ctx: &Ctx, host: &str, statement: &str) -> Result<String> {
    let out = MariadbPaths::new(&ctx.lab.host_dirs(host))
        .client(&ctx.lab.namespace(host))
        .args(["-N", "-B", "-e", statement])
        .output()?;
    ensure!(
        out.status.success(),
        "{host}: `{statement}` failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The pid of a lab daemon as recorded now (the fault suite restarts daemons).
fn pid_of(ctx: &Ctx, name: &str, node: &str) -> Result<u32> {
    ctx.lab
        .reloaded()?
        .record()
        .processes
        .iter()
        .find(|p| p.name == name && p.node == node)
        .map(|p| p.pid)
        .with_context(|| format!("the lab has no {name} on {node} in its record"))
}

/// SIGKILL to a lab daemon, as a crash would do.
pub fn kill(ctx: &Ctx, name: &str, node: &str) -> Result<()> {
    signal(ctx, name, node, Signal::SIGKILL)
}

fn signal(ctx: &Ctx, name: &str, node: &str, signal: Signal) -> Result<()> {
    process::signal(pid_of(ctx, name, node)?, signal)?;
    Ok(())
}

/// The nft table that cuts a host off, in its namespace.
const CHAOS_TABLE: &str = "rampart-chaos";

/// Cuts a host off with nft rules (`input` and `output`, each a list of `rule;`) in a
/// table of the fault suite's own, removed by [`heal`].
pub fn nft_table(ctx: &Ctx, host: &str, input: &str, output: &str) -> Result<()> {
    let script = format!(
        "table inet {CHAOS_TABLE}\ndelete table inet {CHAOS_TABLE}\n\
         table inet {CHAOS_TABLE} {{\n\
         \tchain input {{ type filter hook input priority -300; policy accept; {input} }}\n\
         \tchain output {{ type filter hook output priority -300; policy accept; {output} }}\n}}\n"
    );
    nft(ctx, host, &script)
}

fn nft(ctx: &Ctx, host: &str, script: &str) -> Result<()> {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ctx.lab.namespace(host), "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "nft in {host}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

fn address(ctx: &Ctx, host: &str) -> Result<String> {
    ctx.lab
        .topology
        .hosts
        .iter()
        .find(|h| h.name == host)
        .map(|h| h.address.to_string())
        .with_context(|| format!("no host {host}"))
}

/// Injects `fault` and lets it last `lasting`.
fn inject(ctx: &Ctx, fault: Fault, primary: &str, replica: &str, lasting: Duration) -> Result<()> {
    let etcd_ports = {
        let t = &ctx.lab.topology;
        let port = |s: &str| t.services.get(s).map(|s| s.port).unwrap_or(0);
        format!("{{ {}, {} }}", port("etcdClient"), port("etcdPeer"))
    };
    match fault {
        Fault::KillPrimaryMariadb => signal(ctx, "mariadb", primary, Signal::SIGKILL)?,
        Fault::PausePrimaryMariadb => {
            signal(ctx, "mariadb", primary, Signal::SIGSTOP)?;
            std::thread::sleep(lasting);
            signal(ctx, "mariadb", primary, Signal::SIGCONT)?;
            return Ok(());
        }
        Fault::KillPrimaryAgent => signal(ctx, "failover-agent", primary, Signal::SIGKILL)?,
        Fault::PartitionPrimary => nft_table(
            ctx,
            primary,
            "iifname != \"lo\" drop;",
            "oifname != \"lo\" drop;",
        )?,
        Fault::PartitionPrimaryFromReplica => {
            let r = address(ctx, replica)?;
            nft_table(ctx, primary, &format!("ip saddr {r} drop;"), &format!("ip daddr {r} drop;"))?
        }
        Fault::PartitionPrimaryFromEtcd => nft_table(
            ctx,
            primary,
            &format!("iifname != \"lo\" tcp dport {etcd_ports} drop; iifname != \"lo\" tcp sport {etcd_ports} drop;"),
            &format!("oifname != \"lo\" tcp dport {etcd_ports} drop; oifname != \"lo\" tcp sport {etcd_ports} drop;"),
        )?,
        Fault::KillLbEtcd => signal(ctx, "etcd", &ctx.lb.name, Signal::SIGKILL)?,
        Fault::RestartReplica => {
            signal(ctx, "mariadb", replica, Signal::SIGTERM)?;
        }
    }
    std::thread::sleep(lasting);
    Ok(())
}

/// How long a host may stay diverged after its crash restart before it is rebuilt.
const REBUILD_AFTER: Duration = Duration::from_secs(10);

/// Undoes every fault: partitions lifted, paused servers continued, dead daemons started
/// again, a diverged host restarted so that crash recovery drops its unacknowledged tail.
pub fn heal(ctx: &Ctx) -> Result<()> {
    for host in &ctx.lab.topology.hosts {
        nft(
            ctx,
            &host.name,
            &format!("table inet {CHAOS_TABLE}\ndelete table inet {CHAOS_TABLE}\n"),
        )?;
    }
    for host in db_hosts(ctx) {
        if let Ok(pid) = pid_of(ctx, "mariadb", &host.name) {
            let _ = process::signal(pid, Signal::SIGCONT);
        }
    }
    // Restart what died (the record keeps dead processes until they are replaced).
    let dead: Vec<(String, String)> = ctx
        .lab
        .reloaded()?
        .record()
        .processes
        .iter()
        .filter(|p| ["mariadb", "failover-agent", "etcd"].contains(&p.name.as_str()))
        .filter(|p| !process::is_alive(p))
        .map(|p| (p.name.clone(), p.node.clone()))
        .collect();
    for (name, node) in dead {
        restart(ctx, &name, &node)?;
    }
    Ok(())
}

/// Starts a lab daemon again with its spec (a restarted mariadbd runs the rendered
/// `init_rpl_role=SLAVE`: crash recovery drops a tail no replica acknowledged).
pub fn restart(ctx: &Ctx, name: &str, node: &str) -> Result<()> {
    let host = ctx
        .lab
        .topology
        .hosts
        .iter()
        .find(|h| h.name == node)
        .cloned()
        .with_context(|| format!("no host {node}"))?;
    let d = ctx.lab.host_dirs(node);
    let t = &ctx.lab.topology;
    let daemon = match name {
        "mariadb" => daemons::mariadb(t, &host, &d)?,
        "etcd" => daemons::etcd(t, &host, &d)?,
        "failover-agent" => daemons::failover_agent(
            &ctx.lab.record().topology,
            &host,
            &d,
            &sibling("rampart-db")?,
        )?,
        other => bail!("the fault suite does not restart {other}"),
    };
    // Another handle on the same lab: its record on disk gains the new process.
    let mut lab = ctx.lab.reloaded()?;
    let ready = if name == "mariadb" {
        Ready::Started
    } else {
        daemon.ready.clone()
    };
    lab.start(&daemon.spec, &ready, Duration::from_secs(30))
        .with_context(|| format!("restarting {name} on {node}"))?;
    Ok(())
}

/// Waits (bounded) until one host leads, writable, with the other in the sync set and
/// replicating. A host left diverged is restarted once (crash recovery drops a tail that
/// was prepared but not committed); still diverged [`REBUILD_AFTER`] later — it
/// *committed* a transaction the leader never received — it is rebuilt from the leader's
/// copy ([`rebuild`]), as docs/failover.md tells an operator to.
pub fn converge(ctx: &Ctx, limit: Duration) -> Result<()> {
    let observer = db_hosts(ctx)[0].name.clone();
    let started = Instant::now();
    let mut restarted_diverged: Option<Instant> = None;
    let mut rebuilt = false;
    loop {
        let run = rampart_db(&ctx.lab, &observer, &["status", "--json"])?;
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_default();
        let failover = &report["failover"];
        let hosts = failover["hosts"].as_array().cloned().unwrap_or_default();
        let leader = failover["leader"].as_str().unwrap_or_default();
        let synced = failover["sync"].as_array().is_some_and(|s| !s.is_empty());
        let all_fine = !leader.is_empty()
            && synced
            && hosts
                .iter()
                .all(|h| h["role"] == "leader" || h["role"] == "replica");
        if all_fine {
            return Ok(());
        }
        if let Some(diverged) = hosts.iter().find(|h| h["role"] == "diverged") {
            let host = diverged["host"].as_str().unwrap_or_default().to_string();
            match restarted_diverged {
                None if !host.is_empty() => {
                    // A paused primary's commits that no replica acknowledged are in its
                    // binlog, prepared but not committed: a crash restart drops them.
                    signal(ctx, "mariadb", &host, Signal::SIGKILL)?;
                    std::thread::sleep(Duration::from_millis(300));
                    restart(ctx, "mariadb", &host)?;
                    restarted_diverged = Some(Instant::now());
                }
                Some(at) if !rebuilt && !leader.is_empty() && at.elapsed() > REBUILD_AFTER => {
                    let why = diverged["message"].as_str().unwrap_or_default().to_string();
                    let position = rebuild::rebuild(ctx, &host, leader)
                        .with_context(|| format!("rebuilding {host} from {leader}"))?;
                    eprintln!(
                        "infralab chaos: {host} stayed diverged after a crash restart ({why}); \
                         rebuilt from {leader}'s copy at {position}"
                    );
                    rebuilt = true;
                }
                _ => {}
            }
        }
        if started.elapsed() > limit {
            bail!(
                "the cluster did not converge within {:.0} s (a leader, the other host in sync): {}",
                limit.as_secs_f64(),
                serde_json::to_string(failover).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}
