//! Rebuilding a host whose history diverged from its leader's (docs/failover.md
//! "Rebuilding a replica"): what an operator does by hand, done by the fault suite so that
//! a long run can go on after the agent rightly refused to merge a tail no client was told
//! of. The copy is the leader's, taken with `mariadb-backup`; the host's old data
//! directory is kept beside it (`mysql.diverged`) for inspection.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rampart_lab::daemons::MariadbPaths;

use super::{converge, db_hosts, kill, pid_of, restart, sql};
use crate::failover::wait_leader;
use crate::lab_args::LabArgs;
use crate::scenarios::ctx::Ctx;

/// `infralab rebuild HOST`: [`rebuild`] from the current leader, then wait until the
/// cluster has converged (a leader, the other host in sync and replicating).
pub fn rebuild_command(args: &LabArgs, host: &str) -> Result<std::process::ExitCode> {
    rampart_lab::require_root("infralab rebuild")?;
    let ctx = Ctx::open(args)?;
    ensure!(
        db_hosts(&ctx).iter().any(|h| h.name == host),
        "infralab rebuild: {host} is not a database host of the lab"
    );
    let observer = db_hosts(&ctx)[0].name.clone();
    let (leader, _) = wait_leader(&ctx.lab, &observer, None, Duration::from_secs(10))
        .context("infralab rebuild: no leader to copy from")?;
    ensure!(
        leader != host,
        "infralab rebuild: {host} leads; rebuild a replica or a diverged host, not the leader"
    );
    let position = rebuild(&ctx, host, &leader)?;
    println!("{host}: rebuilt from {leader}'s copy at {position}; waiting for it to rejoin");
    converge(&ctx, Duration::from_secs(60))?;
    println!("{host}: replicating from {leader} and in its sync set");
    Ok(std::process::ExitCode::SUCCESS)
}

/// How long the rebuilt server may take to answer on its socket.
const START_LIMIT: Duration = Duration::from_secs(30);

/// Replaces `host`'s data with a copy of `leader`'s and starts it as a replica-to-be at
/// the copy's GTID position; its agent, restarted last, rejoins it. Returns the position.
pub fn rebuild(ctx: &Ctx, host: &str, leader: &str) -> Result<String> {
    // The agent first: it must not rejoin the copy before its position is set.
    for daemon in ["failover-agent", "mariadb"] {
        // Either may be dead already (the fault, or the crash restart before this).
        if let Ok(pid) = pid_of(ctx, daemon, host) {
            let _ = kill(ctx, daemon, host);
            let started = Instant::now();
            while Path::new(&format!("/proc/{pid}")).exists() {
                if started.elapsed() > START_LIMIT {
                    bail!("{host}'s {daemon} (pid {pid}) survived SIGKILL for {START_LIMIT:?}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let mine = MariadbPaths::new(&ctx.lab.host_dirs(host));
    let theirs = MariadbPaths::new(&ctx.lab.host_dirs(leader));
    let copy = mine.datadir.with_extension("rebuild");
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(&copy).with_context(|| format!("creating {}", copy.display()))?;
    backup(&[
        &format!("--defaults-file={}", theirs.config.display()),
        "--backup",
        "--user=root",
        &format!("--socket={}", theirs.socket.display()),
        &format!("--datadir={}", theirs.datadir.display()),
        &format!("--target-dir={}", copy.display()),
    ])
    .with_context(|| format!("copying {leader}'s data"))?;
    backup(&["--prepare", &format!("--target-dir={}", copy.display())])
        .with_context(|| format!("preparing the copy of {leader}'s data"))?;
    let position = copied_position(&copy)?;
    let aside = mine.datadir.with_extension("diverged");
    let _ = std::fs::remove_dir_all(&aside);
    std::fs::rename(&mine.datadir, &aside)
        .with_context(|| format!("moving {} aside", mine.datadir.display()))?;
    std::fs::rename(&copy, &mine.datadir)
        .with_context(|| format!("moving the copy to {}", mine.datadir.display()))?;
    restart(ctx, "mariadb", host)?;
    let started = Instant::now();
    while sql(ctx, host, "SELECT 1").is_err() {
        if started.elapsed() > START_LIMIT {
            bail!("{host}'s MariaDB did not answer within {START_LIMIT:?} on the rebuilt data");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    // The copy has the leader's rows but no binlog: replicate from where the copy ends.
    sql(
        ctx,
        host,
        &format!("SET GLOBAL gtid_slave_pos = '{position}'"),
    )?;
    restart(ctx, "failover-agent", host)?;
    Ok(position)
}

fn backup(args: &[&str]) -> Result<()> {
    let out = Command::new("mariadb-backup")
        .args(args)
        .output()
        .context("running mariadb-backup (Debian package mariadb-backup, scripts/install.sh)")?;
    ensure!(
        out.status.success(),
        "`mariadb-backup {}` failed: {}",
        args.join(" "),
        tail(&String::from_utf8_lossy(&out.stderr))
    );
    Ok(())
}

/// The GTID position the copy ends at, as mariadb-backup recorded it.
fn copied_position(copy: &Path) -> Result<String> {
    for name in ["mariadb_backup_binlog_info", "xtrabackup_binlog_info"] {
        let path = copy.join(name);
        if let Ok(text) = std::fs::read_to_string(&path) {
            // `binlog-file <TAB> offset <TAB> gtid-position`
            let position = text.split_whitespace().nth(2).unwrap_or_default();
            ensure!(
                !position.is_empty(),
                "{} names no GTID position: {text:?}",
                path.display()
            );
            return Ok(position.to_string());
        }
    }
    bail!(
        "the copy in {} has no binlog position file from mariadb-backup",
        copy.display()
    )
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}
