//! Status, promotion, fencing and rejoin: the decisions, step by step.

use std::time::{Duration, Instant};

use super::conn::{read_secret, Cluster, DbHost, HostState, Session};
use super::fence::Action;
use super::gtid::{self, GtidPos};
use super::report::{HostReport, OperationReport, Outcome, StatusReport, Step};
use super::{DbError, Settings};

/// Failover operations over one cluster with one set of settings.
pub struct Failover<'a> {
    pub cluster: &'a Cluster,
    pub settings: &'a Settings,
}

/// A host that answered, with its session and what it said.
struct Live {
    host: DbHost,
    session: Session,
    state: HostState,
}

/// Records steps with their duration.
struct Steps<'r> {
    report: &'r mut OperationReport,
}

impl Steps<'_> {
    /// Runs `f`, records it as a step, and passes its result on.
    fn run<T>(
        &mut self,
        step: &str,
        host: &str,
        f: impl FnOnce() -> Result<(T, String), String>,
    ) -> Result<T, String> {
        let started = Instant::now();
        let result = f();
        let (ok, detail) = match &result {
            Ok((_, detail)) => (true, detail.clone()),
            Err(e) => (false, e.clone()),
        };
        self.report.steps.push(Step {
            step: step.to_string(),
            host: host.to_string(),
            ok,
            detail,
            seconds: started.elapsed().as_secs_f64(),
        });
        result.map(|(value, _)| value)
    }
}

impl Failover<'_> {
    fn open(&self, host: &DbHost) -> Result<Session, DbError> {
        Session::open(host, self.cluster.port, &self.settings.access)
    }

    /// Connects to a host and reads its state; `Err` is the reason it is unreachable.
    fn live(&self, host: &DbHost) -> Result<Live, DbError> {
        let mut session = self.open(host)?;
        let state = session.state()?;
        Ok(Live {
            host: host.clone(),
            session,
            state,
        })
    }

    fn address(&self, host: &DbHost) -> String {
        format!("{}:{}", host.address, self.cluster.port)
    }

    /// Every database host's state, and what is wrong with the pair.
    pub fn status(&self) -> StatusReport {
        let mut hosts = Vec::new();
        let mut states = Vec::new();
        let mut findings = Vec::new();
        for host in &self.cluster.hosts {
            match self.live(host) {
                Ok(live) => {
                    hosts.push(HostReport::reachable(
                        &host.name,
                        self.address(host),
                        &live.state,
                    ));
                    states.push((host, live.state));
                }
                Err(e) => {
                    findings.push(format!("{}: unreachable: {e}", host.name));
                    hosts.push(HostReport::unreachable(
                        &host.name,
                        self.address(host),
                        e.to_string(),
                    ));
                }
            }
        }
        let writable: Vec<&(&DbHost, HostState)> =
            states.iter().filter(|(_, s)| !s.read_only).collect();
        match writable.as_slice() {
            [] => findings.push(
                "no writable database host: the application cannot write; promote one with \
                 `rampart-db promote HOST`"
                    .to_string(),
            ),
            [(primary, state)] => {
                if !state.semi_sync.master_enabled {
                    findings.push(format!(
                        "{}: rpl_semi_sync_master_enabled is OFF (expected ON); acknowledged \
                         writes may be lost on failover; fix the MariaDB settings",
                        primary.name
                    ));
                } else if !state.semi_sync.master_on {
                    findings.push(format!(
                        "{}: semi-sync has fallen back to asynchronous replication \
                         (Rpl_semi_sync_master_status OFF, {} semi-sync replicas); a failover \
                         now may lose acknowledged writes; repair the replica's connection",
                        primary.name, state.semi_sync.master_clients
                    ));
                }
                for (host, state) in states.iter().filter(|(h, _)| h.name != primary.name) {
                    findings.extend(replica_findings(host, state, primary));
                }
            }
            many => findings.push(format!(
                "more than one writable database host ({}): split brain; fence all but one \
                 with `rampart-db fence HOST`",
                many.iter()
                    .map(|(h, _)| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
        StatusReport { hosts, findings }
    }

    /// Fences `name`: `read_only=1` if it answers, and the firewall fence through the hook.
    pub fn fence(&self, name: &str) -> Result<OperationReport, DbError> {
        let started = Instant::now();
        let host = self.cluster.host(name)?.clone();
        let mut report = OperationReport::new("fence", name);
        let mut steps = Steps {
            report: &mut report,
        };
        let read_only = match self.open(&host) {
            Ok(mut session) => set_read_only(&mut steps, &mut session, true, "writes refused"),
            Err(e) => steps.run("read_only=1", name, || Err(e.to_string())),
        };
        let firewall = self.fence_firewall(&mut steps, &host);
        report.outcome = match (read_only.is_ok(), firewall) {
            (true, true) => Outcome::Done,
            (false, true) => {
                report.warnings.push(format!(
                    "{name} did not answer, so it is fenced by the firewall only: if its \
                     MariaDB comes back it is writable behind the fence"
                ));
                Outcome::Done
            }
            (true, false) => {
                report.reason = Some(format!(
                    "{name} is read-only but not firewall-fenced; configure --fence-hook"
                ));
                Outcome::Failed
            }
            (false, false) => {
                report.reason = Some(format!(
                    "{name} is neither read-only (it did not answer) nor firewall-fenced"
                ));
                Outcome::Failed
            }
        };
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Runs the fence hook for `host`; false (with a failed step) if there is none or it
    /// failed.
    fn fence_firewall(&self, steps: &mut Steps<'_>, host: &DbHost) -> bool {
        self.firewall(steps, host, Action::Fence)
    }

    fn firewall(&self, steps: &mut Steps<'_>, host: &DbHost, action: Action) -> bool {
        let name = match action {
            Action::Fence => "firewall fence",
            Action::Lift => "lift firewall fence",
        };
        steps
            .run(name, &host.name, || {
                let hook = self.settings.hook.as_ref().ok_or_else(|| {
                    "no fence hook configured (--fence-hook); skipped".to_string()
                })?;
                hook.run(action, &host.name, host.address, self.cluster.port)
                    .map_err(|e| e.to_string())?;
                Ok((
                    (),
                    match action {
                        Action::Fence => format!(
                            "table inet {} rejects {}",
                            super::fence::TABLE,
                            self.address(host)
                        ),
                        Action::Lift => format!("table inet {} removed", super::fence::TABLE),
                    },
                ))
            })
            .is_ok()
    }

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
        replica: &super::ReplicaStatus,
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
        let extra = primary.state.current_pos.missing(&state.current_pos);
        let diverged = state.current_pos.diverged(&theirs);
        let primary_server = primary.state.server_id.parse().unwrap_or(0);
        let unreceived = state
            .current_pos
            .unreceived(primary_server, &primary.state.slave_pos);
        if !extra.is_empty() || !diverged.is_empty() || !unreceived.is_empty() {
            let p = &primary.host.name;
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
            report.outcome = Outcome::Refused;
            refence(
                report,
                format!(
                    "{name} has transactions {p} never received: {}; {p} applied {name}'s \
                     writes up to {}. Under semi-sync AFTER_SYNC no client was told they \
                     committed, but replicating now would diverge. A crashed primary must \
                     first start with --init-rpl-role=SLAVE, whose crash recovery drops such \
                     a tail; once it committed them, rebuild {name} from a copy of {p}. \
                     {name} stays read-only and fenced",
                    proof.join(", "),
                    shown(&primary.state.slave_pos),
                ),
            );
            return;
        }

        let pki = self.settings.replica_pki_dir.replace("{host}", &name);
        let quote = |s: &str| mysql::Value::from(s).as_sql(false);
        let change_master = format!(
            "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={}, MASTER_USER={}, \
             MASTER_SSL=1, MASTER_SSL_CA={}, MASTER_SSL_CERT={}, MASTER_SSL_KEY={}, \
             MASTER_SSL_VERIFY_SERVER_CERT=1, MASTER_USE_GTID=slave_pos, MASTER_PASSWORD={}",
            quote(&primary.host.address.to_string()),
            self.cluster.port,
            quote(&self.settings.replication_user),
            quote(&format!("{pki}/ca.pem")),
            quote(&format!("{pki}/replication-client.pem")),
            quote(&format!("{pki}/replication-client.key")),
            quote(password),
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

/// `SET GLOBAL read_only`, recorded as a step.
fn set_read_only(
    steps: &mut Steps<'_>,
    session: &mut Session,
    on: bool,
    detail: &str,
) -> Result<(), String> {
    let value = u8::from(on);
    let host = session.host.clone();
    steps.run(&format!("read_only={value}"), &host, || {
        session
            .exec(&format!("SET GLOBAL read_only = {value}"))
            .map_err(|e| e.to_string())?;
        Ok(((), detail.to_string()))
    })
}

/// The findings for a host that should be replicating from `primary`.
fn replica_findings(host: &DbHost, state: &HostState, primary: &DbHost) -> Vec<String> {
    let name = &host.name;
    let Some(replica) = &state.replica else {
        return vec![format!(
            "{name}: read-only but not replicating; run `rampart-db rejoin {name} --primary {}`",
            primary.name
        )];
    };
    let mut findings = Vec::new();
    if replica.source != primary.address.to_string() && replica.source != primary.name {
        findings.push(format!(
            "{name}: replicates from {} (expected the primary {} at {}); run `rampart-db \
             rejoin {name} --primary {}`",
            replica.source, primary.name, primary.address, primary.name
        ));
    }
    if replica.io_running != "Yes" || !replica.sql_running {
        findings.push(format!(
            "{name}: replication is broken (IO thread {}, SQL thread {}){}{}",
            replica.io_running,
            if replica.sql_running { "Yes" } else { "No" },
            nonempty("; last IO error: ", &replica.last_io_error),
            nonempty("; last SQL error: ", &replica.last_sql_error),
        ));
    }
    if !state.semi_sync.slave_enabled {
        findings.push(format!(
            "{name}: rpl_semi_sync_slave_enabled is OFF (expected ON); the primary cannot \
             wait for it; fix the MariaDB settings"
        ));
    }
    findings
}

fn shown(pos: &GtidPos) -> String {
    if pos.is_empty() {
        "nothing".to_string()
    } else {
        pos.to_string()
    }
}

fn nonempty(prefix: &str, text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("{prefix}{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ReplicaStatus, SemiSync};
    use std::net::Ipv4Addr;

    fn host(name: &str, last: u8) -> DbHost {
        DbHost {
            name: name.into(),
            address: Ipv4Addr::new(10, 0, 0, last),
            declared_primary: false,
        }
    }

    fn replica_state(source: &str, io: &str, sql: bool) -> HostState {
        HostState {
            read_only: true,
            server_id: "2".into(),
            binlog_pos: GtidPos::default(),
            slave_pos: GtidPos::default(),
            current_pos: GtidPos::default(),
            semi_sync: SemiSync {
                master_enabled: true,
                master_on: false,
                master_clients: 0,
                slave_enabled: true,
                slave_on: true,
            },
            replica: Some(ReplicaStatus {
                source: source.into(),
                io_running: io.into(),
                sql_running: sql,
                received: GtidPos::default(),
                seconds_behind: Some(0),
                last_io_error: String::new(),
                last_sql_error: String::new(),
            }),
        }
    }

    #[test]
    fn a_healthy_replica_has_no_findings() {
        let state = replica_state("10.0.0.1", "Yes", true);
        assert!(replica_findings(&host("b", 2), &state, &host("a", 1)).is_empty());
    }

    #[test]
    fn broken_or_misdirected_replication_is_named() {
        let state = replica_state("10.0.0.9", "Connecting", false);
        let findings = replica_findings(&host("b", 2), &state, &host("a", 1));
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert!(findings[0].contains("replicates from 10.0.0.9 (expected the primary a"));
        assert!(findings[1].contains("IO thread Connecting, SQL thread No"));
    }

    #[test]
    fn a_read_only_host_without_replication_is_told_to_rejoin() {
        let mut state = replica_state("", "No", false);
        state.replica = None;
        let findings = replica_findings(&host("b", 2), &state, &host("a", 1));
        assert_eq!(
            findings,
            vec!["b: read-only but not replicating; run `rampart-db rejoin b --primary a`"]
        );
    }
}
