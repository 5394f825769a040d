//! `rampart-db promote HOST`: fence the others, wait until HOST applied what it has to,
//! make it writable; refuse when that would lose transactions it can see.

use std::time::Instant;

use super::{set_read_only, shown, Failover, Live, Steps};
use crate::conn::DbHost;
use crate::fence::Action;
use crate::gtid::{self, GtidPos};
use crate::report::{OperationReport, Outcome};
use crate::DbError;

impl Failover<'_> {
    /// Promotes `name` to primary. `Err` only when it cannot start (unknown or unreachable
    /// candidate); everything after that is in the report.
    pub fn promote(&self, name: &str, force: bool) -> Result<OperationReport, DbError> {
        let started = Instant::now();
        let host = self.cluster.host(name)?.clone();
        let mut candidate = self.live(&host)?;
        let mut report = OperationReport::new("promote", name);
        report.forced = force;
        self.promote_steps(&mut candidate, force, &mut report);
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    fn promote_steps(&self, candidate: &mut Live, force: bool, report: &mut OperationReport) {
        let name = candidate.host.name.clone();
        let Some(replica) = candidate.state.replica.clone() else {
            if !candidate.state.read_only {
                report.outcome = Outcome::Unchanged;
                report.reason = Some(format!("{name} already is the primary (read_only=0)"));
                return;
            }
            if !force {
                report.outcome = Outcome::Refused;
                report.reason = Some(format!(
                    "{name} is read-only and replicates from nobody, so it may lack the \
                     primary's latest writes (it has {}); rejoin it first, or pass --force",
                    shown(&candidate.state.current_pos)
                ));
                return;
            }
            report
                .warnings
                .push(format!("forced: {name} replicated from nobody"));
            self.make_writable(candidate, report);
            return;
        };
        report
            .positions
            .insert("received".into(), replica.received.to_string());
        if !candidate.state.semi_sync.master_enabled {
            report.warnings.push(format!(
                "{name} has rpl_semi_sync_master_enabled OFF: as primary it will not wait for \
                 its replica; set it ON on every database host (docs/failover.md)"
            ));
        }
        if !candidate.state.semi_sync.slave_on {
            report.warnings.push(format!(
                "{name} was not a semi-synchronous replica (Rpl_semi_sync_slave_status OFF): \
                 writes the old primary acknowledged asynchronously may be missing"
            ));
        }

        // Who else answers? A reachable old primary tells us exactly what it has.
        let mut others: Vec<Live> = Vec::new();
        for host in self.cluster.hosts.iter().filter(|h| h.name != name) {
            match self.live(host) {
                Ok(live) => others.push(live),
                Err(e) => report.warnings.push(format!(
                    "{} did not answer ({e}); promoting on what {name} received",
                    host.name
                )),
            }
        }
        let needed = |others: &[Live], received: &GtidPos| {
            others
                .iter()
                .fold(received.clone(), |pos, o| pos.union(&o.state.binlog_pos))
        };

        // Refuse before touching anything when the candidate cannot catch up by itself.
        let need = needed(&others, &replica.received);
        let missing = candidate.state.current_pos.missing(&need);
        let stalled = !replica.sql_running
            || (!replica.received.includes(&need) && replica.io_running != "Yes");
        if !missing.is_empty() && stalled && !force {
            report.outcome = Outcome::Refused;
            report.reason = Some(self.loss_reason(candidate, &need, &missing, &others, &replica));
            self.record_positions(report, candidate, &others);
            return;
        }

        // Fence every other database host.
        let mut made_read_only: Vec<String> = Vec::new();
        let mut fenced: Vec<DbHost> = Vec::new();
        {
            let mut steps = Steps { report };
            for other in others.iter_mut() {
                let was_writable = !other.state.read_only;
                let ok = set_read_only(&mut steps, &mut other.session, true, "writes refused");
                if ok.is_ok() && was_writable {
                    made_read_only.push(other.host.name.clone());
                }
            }
            for host in self.cluster.hosts.iter().filter(|h| h.name != name) {
                if self.fence_firewall(&mut steps, host) {
                    fenced.push(host.clone());
                }
            }
        }
        for host in self.cluster.hosts.iter().filter(|h| h.name != name) {
            let answered = others.iter().any(|o| o.host.name == host.name);
            if !answered && !fenced.iter().any(|f| f.name == host.name) {
                report.warnings.push(format!(
                    "{} is not fenced at all (it did not answer and the firewall fence was not \
                     applied): if its MariaDB comes back it accepts writes; fence it with \
                     `rampart-db fence {}` as soon as it can be reached",
                    host.name, host.name
                ));
            }
        }

        // With the others read-only, their binlog positions are final.
        for other in others.iter_mut() {
            if let Ok(state) = other.session.state() {
                other.state = state;
            }
        }
        let received_now = candidate
            .session
            .state()
            .ok()
            .and_then(|s| s.replica)
            .map_or(replica.received.clone(), |r| r.received);
        let need = needed(&others, &received_now);
        report.positions.insert("needed".into(), need.to_string());

        let timeout = self.settings.catch_up_timeout;
        let caught_up = Steps { report }.run("apply relay log", &name, || {
            let done = candidate
                .session
                .wait_applied(&need, timeout)
                .map_err(|e| e.to_string())?;
            if done {
                Ok((true, format!("applied everything up to {}", shown(&need))))
            } else {
                Err(format!(
                    "not caught up with {} after {:.0}s",
                    shown(&need),
                    timeout.as_secs_f64()
                ))
            }
        });
        if let Ok(state) = candidate.session.state() {
            candidate.state = state;
        }
        self.record_positions(report, candidate, &others);
        if caught_up.is_err() {
            let missing = candidate.state.current_pos.missing(&need);
            let reason = self.loss_reason(candidate, &need, &missing, &others, &replica);
            if !force {
                report.outcome = Outcome::Refused;
                report.reason = Some(format!("{reason}; the fence was lifted again"));
                self.unfence(report, &mut others, &made_read_only, &fenced);
                return;
            }
            report.warnings.push(format!("forced: {reason}"));
        }
        self.make_writable(candidate, report);
    }

    /// Why promoting now would lose transactions, naming the positions.
    fn loss_reason(
        &self,
        candidate: &Live,
        need: &GtidPos,
        missing: &[gtid::Gtid],
        others: &[Live],
        replica: &crate::ReplicaStatus,
    ) -> String {
        let name = &candidate.host.name;
        let who = if others.is_empty() {
            "it received".to_string()
        } else {
            format!(
                "{} has",
                others
                    .iter()
                    .map(|o| o.host.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" and ")
            )
        };
        let threads = format!(
            "IO thread {}, SQL thread {}",
            replica.io_running,
            if replica.sql_running {
                "running"
            } else {
                "stopped"
            }
        );
        format!(
            "{name} has applied {} but {who} {} (missing {}; {threads}); promoting would \
             lose those transactions; start its replication (START SLAVE) and retry, or pass \
             --force to accept the loss",
            shown(&candidate.state.current_pos),
            shown(need),
            gtid::list(missing)
        )
    }

    fn record_positions(&self, report: &mut OperationReport, candidate: &Live, others: &[Live]) {
        report
            .positions
            .insert("applied".into(), candidate.state.current_pos.to_string());
        for other in others {
            report.positions.insert(
                format!("{} binlog", other.host.name),
                other.state.binlog_pos.to_string(),
            );
        }
    }

    /// Undoes the fence of a refused promotion: the old primary serves again.
    fn unfence(
        &self,
        report: &mut OperationReport,
        others: &mut [Live],
        made_read_only: &[String],
        fenced: &[DbHost],
    ) {
        let mut steps = Steps { report };
        for host in fenced {
            self.firewall(&mut steps, host, Action::Lift);
        }
        for other in others
            .iter_mut()
            .filter(|o| made_read_only.contains(&o.host.name))
        {
            let _ = set_read_only(
                &mut steps,
                &mut other.session,
                false,
                "writable again (promotion refused)",
            );
        }
    }

    /// STOP SLAVE, RESET SLAVE ALL, read_only=0.
    fn make_writable(&self, candidate: &mut Live, report: &mut OperationReport) {
        let name = candidate.host.name.clone();
        let mut steps = Steps { report };
        for (step, statement, detail) in [
            (
                "stop replication",
                "STOP SLAVE",
                "replication threads stopped",
            ),
            (
                "forget the source",
                "RESET SLAVE ALL",
                "replication configuration removed",
            ),
            (
                "read_only=0",
                "SET GLOBAL read_only = 0",
                "writable: the application finds it by its read_only probe",
            ),
        ] {
            let result = steps.run(step, &name, || {
                candidate
                    .session
                    .exec(statement)
                    .map_err(|e| e.to_string())?;
                Ok(((), detail.to_string()))
            });
            if let Err(e) = result {
                report.outcome = Outcome::Failed;
                report.reason = Some(format!("{name}: {step} failed: {e}"));
                return;
            }
        }
        if let Ok(state) = candidate.session.state() {
            report
                .positions
                .insert("applied".into(), state.current_pos.to_string());
        }
        report.outcome = Outcome::Done;
    }
}
