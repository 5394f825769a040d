//! `rampart-db rejoin HOST --primary NEW`: a former primary becomes a replica of the new
//! one, if its history is a prefix of the new primary's.

use std::time::{Duration, Instant};

use super::{nonempty, shown, Failover, Live, Steps};
use std::net::Ipv4Addr;

use crate::conn::{read_secret, DbHost, HostState, Session};
use crate::fence::Action;
use crate::report::{OperationReport, Outcome};
use crate::DbError;

impl Failover<'_> {
    /// Makes `name` a replica of `primary` again (a former primary after a failover).
    pub fn rejoin(&self, name: &str, primary: &str) -> Result<OperationReport, DbError> {
        let started = Instant::now();
        let host = self.cluster.host(name)?.clone();
        let source = self.cluster.host(primary)?.clone();
        if host.name == source.name {
            return Err(DbError::Usage(format!(
                "rejoin: {name} cannot replicate from itself (got --primary {primary}); name \
                 the new primary"
            )));
        }
        let password = read_secret(&self.settings.replication_password_file)?;
        let mut primary_live = self.live(&source)?;
        let mut report = OperationReport::new("rejoin", name);
        report.primary = Some(source.name.clone());
        if primary_live.state.read_only {
            report.outcome = Outcome::Refused;
            report.reason = Some(format!(
                "{primary} is not a primary (read_only=1); promote it first with \
                 `rampart-db promote {primary}`"
            ));
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
        self.rejoin_steps(&host, &mut primary_live, &password, &mut report);
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    fn rejoin_steps(
        &self,
        host: &DbHost,
        primary: &mut Live,
        password: &str,
        report: &mut OperationReport,
    ) {
        let name = host.name.clone();
        let mut steps = Steps { report };
        // The fence rejects us too; the window until read_only=1 is one round trip, and
        // the application only looks for a primary after a write failed on the current one.
        let has_hook = self.settings.hook.is_some();
        if has_hook {
            self.firewall(&mut steps, host, Action::Lift);
        }
        let session = steps.run("connect", &name, || {
            let mut session = self.open(host).map_err(|e| e.to_string())?;
            session
                .exec("SET GLOBAL read_only = 1")
                .map_err(|e| e.to_string())?;
            Ok((session, "connected; read_only=1".to_string()))
        });
        let Ok(mut session) = session else {
            if has_hook {
                self.fence_firewall(&mut steps, host);
            }
            report.outcome = Outcome::Failed;
            report.reason = Some(format!(
                "{name} did not answer; start its MariaDB and run rejoin again (its fence \
                 stays up)"
            ));
            return;
        };
        let refence = |report: &mut OperationReport, reason: String| {
            let mut steps = Steps { report };
            if has_hook {
                self.fence_firewall(&mut steps, host);
            }
            report.reason = Some(reason);
        };
        let state = match session.state() {
            Ok(s) => s,
            Err(e) => {
                report.outcome = Outcome::Failed;
                refence(report, e.to_string());
                return;
            }
        };
        let theirs = primary.state.binlog_pos.clone();
        report
            .positions
            .insert(format!("{name} before"), state.current_pos.to_string());
        report
            .positions
            .insert(format!("{} binlog", primary.host.name), theirs.to_string());

        // Its history must be a prefix of the new primary's: anything it has that the
        // primary lacks was never acknowledged (semi-sync) and must not be replayed.
        if let Some(reason) = history_problems(&name, &state, &primary.host.name, &primary.state) {
            report.outcome = Outcome::Refused;
            refence(report, reason);
            return;
        }

        let pki = self.settings.replica_pki_dir.replace("{host}", &name);
        let change_master = change_master(
            primary.host.address,
            self.cluster.port,
            &self.settings.replication_user,
            password,
            &pki,
        );
        let position = state.current_pos.to_string();
        let mut steps = Steps { report };
        let configured = steps.run("replicate from new primary", &name, || {
            let run = |session: &mut Session, statement: &str| {
                session.exec(statement).map_err(|e| e.to_string())
            };
            run(&mut session, "STOP SLAVE")?;
            run(&mut session, "RESET SLAVE ALL")?;
            // A former primary's own writes are in its binlog, not in gtid_slave_pos:
            // start replicating after them.
            run(
                &mut session,
                &format!("SET GLOBAL gtid_slave_pos = '{position}'"),
            )?;
            run(&mut session, &change_master)?;
            run(&mut session, "START SLAVE")?;
            Ok((
                (),
                format!(
                    "from {} with MASTER_USE_GTID=slave_pos after {}",
                    self.address(&primary.host),
                    shown(&state.current_pos)
                ),
            ))
        });
        if let Err(e) = configured {
            report.outcome = Outcome::Failed;
            refence(
                report,
                format!("{name}: configuring replication failed: {e}"),
            );
            return;
        }

        let target = primary
            .session
            .state()
            .map(|s| s.binlog_pos)
            .unwrap_or(theirs);
        let timeout = self.settings.catch_up_timeout;
        let caught_up = steps.run("catch up", &name, || {
            let deadline = Instant::now() + timeout;
            let (done, now) = loop {
                let slice = timeout.min(Duration::from_secs(1));
                let done = session
                    .wait_applied(&target, slice)
                    .map_err(|e| e.to_string())?;
                let now = session.state().map_err(|e| e.to_string())?;
                // A replication error (e.g. 1236, history not in the primary's binlog)
                // does not heal by waiting: report it at once.
                let stopped = now.replica.as_ref().is_some_and(|r| {
                    (r.io_running == "No" && !r.last_io_error.is_empty())
                        || (!r.sql_running && !r.last_sql_error.is_empty())
                });
                // Applied is not enough: the IO thread must be connected too ("Preparing"
                // or "Connecting" right after START SLAVE).
                let running = now
                    .replica
                    .as_ref()
                    .is_some_and(|r| r.io_running == "Yes" && r.sql_running);
                if (done && running) || stopped || Instant::now() >= deadline {
                    break (done, now);
                }
                if done {
                    // MASTER_GTID_WAIT returns at once once applied: do not spin.
                    std::thread::sleep(Duration::from_millis(100));
                }
            };
            let replica = now
                .replica
                .ok_or_else(|| "replication is not configured after START SLAVE".to_string())?;
            if !done || replica.io_running != "Yes" || !replica.sql_running {
                return Err(format!(
                    "not replicating (IO thread {}, SQL thread {}, applied {}, primary at \
                     {}){}{}",
                    replica.io_running,
                    if replica.sql_running { "Yes" } else { "No" },
                    shown(&now.current_pos),
                    shown(&target),
                    nonempty(" last IO error: ", &replica.last_io_error),
                    nonempty(" last SQL error: ", &replica.last_sql_error),
                ));
            }
            Ok((
                now.current_pos,
                format!("applied everything up to {}", shown(&target)),
            ))
        });
        match caught_up {
            Ok(applied) => {
                report
                    .positions
                    .insert(format!("{name} after"), applied.to_string());
                report.outcome = Outcome::Done;
            }
            Err(e) => {
                report.outcome = Outcome::Failed;
                report.reason = Some(format!(
                    "{name} does not replicate from {}: {e}; it stays read-only",
                    primary.host.name
                ));
                return;
            }
        }
        // Semi-sync resumes on its own once the replica's IO thread acknowledges.
        match primary.session.state() {
            Ok(s) if s.semi_sync.master_on && s.semi_sync.master_clients > 0 => {}
            Ok(s) => report.warnings.push(format!(
                "{} has not switched semi-sync back on yet (Rpl_semi_sync_master_status {}, \
                 {} clients); it does on the next acknowledged write — check `rampart-db status`",
                primary.host.name,
                if s.semi_sync.master_on { "ON" } else { "OFF" },
                s.semi_sync.master_clients
            )),
            Err(e) => report.warnings.push(e.to_string()),
        }
    }
}

/// Why `host` (in `state`) cannot replicate from `primary` as it is: the transactions it
/// holds that the primary never received, or where their histories went apart. `None`
/// when its history is a prefix of the primary's.
///
/// Three checks: no GTID ahead of the primary in any domain; no sequence number written
/// by another server than on the primary; nothing written by `host` beyond what the
/// primary applied from it (its `gtid_slave_pos`: a crashed primary's unacknowledged tail).
pub fn history_problems(
    host: &str,
    state: &HostState,
    primary: &str,
    primary_state: &HostState,
) -> Option<String> {
    let theirs = &primary_state.binlog_pos;
    let extra = primary_state.current_pos.missing(&state.current_pos);
    let diverged = state.current_pos.diverged(theirs);
    let primary_server = primary_state.server_id.parse().unwrap_or(0);
    let unreceived = state
        .current_pos
        .unreceived(primary_server, &primary_state.slave_pos);
    if extra.is_empty() && diverged.is_empty() && unreceived.is_empty() {
        return None;
    }
    let p = primary;
    let mut proof: Vec<String> = extra
        .iter()
        .chain(&unreceived)
        .map(|g| format!("{g} (not on {p})"))
        .collect();
    proof.extend(
        diverged
            .iter()
            .map(|(ours, theirs)| format!("{ours} where {p} has {theirs}")),
    );
    proof.dedup();
    Some(format!(
        "{host} has transactions {p} never received: {}; {p} applied {host}'s writes up to \
         {}. Under semi-sync AFTER_SYNC no client was told they committed, but replicating \
         now would diverge. A crashed primary must first start with --init-rpl-role=SLAVE, \
         whose crash recovery drops such a tail; once it committed them, rebuild {host} \
         from a copy of {p}. {host} stays read-only and fenced",
        proof.join(", "),
        shown(&primary_state.slave_pos),
    ))
}

/// Seconds a replica waits before it connects again after a failed attempt, as the
/// rendered bootstrap SQL sets it (lib/render/mariadb.nix); a test holds both equal.
/// MariaDB's default, 60 s (what `CHANGE MASTER` after `RESET SLAVE ALL` falls back to),
/// kept a rejoined host 70 s away from its new primary when its first connection was
/// refused: the fault suite's run did not converge within 90 s.
pub const CONNECT_RETRY_SECONDS: u32 = 5;

/// `CHANGE MASTER TO` the primary at `address:port` over verified TLS, with the
/// replication client certificate in `pki_dir` (on the replica), GTID auto-position and
/// [`CONNECT_RETRY_SECONDS`].
pub fn change_master(
    address: Ipv4Addr,
    port: u16,
    user: &str,
    password: &str,
    pki_dir: &str,
) -> String {
    let quote = |s: &str| mysql::Value::from(s).as_sql(false);
    format!(
        "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={port}, MASTER_USER={}, \
         MASTER_SSL=1, MASTER_SSL_CA={}, MASTER_SSL_CERT={}, MASTER_SSL_KEY={}, \
         MASTER_SSL_VERIFY_SERVER_CERT=1, MASTER_USE_GTID=slave_pos, \
         MASTER_CONNECT_RETRY={CONNECT_RETRY_SECONDS}, MASTER_PASSWORD={}",
        quote(&address.to_string()),
        quote(user),
        quote(&format!("{pki_dir}/ca.pem")),
        quote(&format!("{pki_dir}/replication-client.pem")),
        quote(&format!("{pki_dir}/replication-client.key")),
        quote(password),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_retries_as_soon_as_the_rendered_bootstrap() {
        let renderer = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../lib/render/mariadb.nix"
        );
        let text = std::fs::read_to_string(renderer).expect("lib/render/mariadb.nix");
        let rendered = format!("\"MASTER_CONNECT_RETRY = {CONNECT_RETRY_SECONDS};\"");
        assert!(
            text.contains(&rendered),
            "{renderer} does not say {rendered}; change both"
        );
        let sql = change_master([10, 0, 0, 1].into(), 3306, "repl", "pw", "/pki");
        assert!(sql.contains(&format!("MASTER_CONNECT_RETRY={CONNECT_RETRY_SECONDS},")));
    }
}
