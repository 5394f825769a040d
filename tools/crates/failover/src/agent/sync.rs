//! The leader keeps the recorded sync set true, and carries out planned switchovers.
//!
//! A replica is *in sync* when it holds every write the leader acknowledged. MariaDB's
//! semi-synchronous replication (AFTER_SYNC, with a timeout the agent sets effectively
//! infinite and `wait_no_slave` on) makes each commit wait for the replica's
//! acknowledgement; so once the replica has received everything up to the position at
//! which the waiting began, it stays in sync for as long as the waiting goes on. The order
//! of every change is what makes the record safe:
//!
//! - **into the set**: switch the waiting on first, then record the replica only once it
//!   has received everything up to where the waiting began;
//! - **out of the set** (policy `available`, after writes waited [`Timing::sync_grace`]):
//!   record the replica out of sync first, and only then let writes go on without it. If
//!   etcd cannot be written, writes keep waiting — and the leader, which cannot reach etcd
//!   either, loses its lease and is replaced by that very replica, which has every write.
//!
//! [`Timing::sync_grace`]: crate::Timing::sync_grace

use std::time::{Duration, Instant};

use rampart_database::gtid::GtidPos;
use rampart_database::{HostState, Session};

use super::{Agent, Phase};
use crate::gate::Opening;
use crate::record::{self, ClusterState, Member, View};
use crate::store::{Change, Condition};
use crate::Policy;

/// How fresh a replica's member record must be to vouch for its position.
const FRESH: Duration = Duration::from_secs(3);
/// How long a switchover may pause writes waiting for the target to catch up.
const HANDOVER_LIMIT: Duration = Duration::from_secs(10);

/// What the leader remembers about the semi-sync waiting it switched on.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    /// The binlog position when the waiting was (last known to be) switched on.
    pub enabled_at: Option<GtidPos>,
    /// Since when commits have been waiting for an acknowledgement without a break.
    pub waiting_since: Option<Instant>,
}

fn parse(text: Option<&str>) -> Option<GtidPos> {
    GtidPos::parse(text?).ok()
}

impl Agent {
    pub(super) fn manage_sync(&mut self, view: &View, state: &HostState) {
        let Some((cluster_state, state_rev)) = view.state.clone() else {
            return;
        };
        let me = self.cfg.host.clone();
        let my_address = self.address_of(&me).map(|a| a.to_string());
        let replicas: Vec<String> = self
            .cfg
            .cluster
            .hosts
            .iter()
            .filter(|h| h.name != me)
            .map(|h| h.name.clone())
            .collect();
        let waiting = state.semi_sync.master_enabled && state.semi_sync.master_wait_sessions > 0;
        let waited = {
            let tracker = &mut self.lead.as_mut().expect("leading").sync;
            if waiting {
                tracker
                    .waiting_since
                    .get_or_insert_with(Instant::now)
                    .elapsed()
            } else {
                tracker.waiting_since = None;
                Duration::ZERO
            }
        };
        let stalled = self.cfg.policy == Policy::Available && waited >= self.cfg.timing.sync_grace;

        let in_sync: Vec<String> = cluster_state.sync.clone();
        if !in_sync.is_empty() {
            if !state.semi_sync.master_enabled || !state.semi_sync.master_on {
                // Recorded in sync but not protected: switch the waiting (back) on.
                self.semi_sync(true, state);
            }
            if stalled {
                let reason = format!(
                    "{} did not acknowledge writes for {:.1}s; writes go on without it (policy available)",
                    in_sync.join(", "),
                    waited.as_secs_f64()
                );
                if self.write_sync(&cluster_state, state_rev, Vec::new(), &reason) {
                    self.semi_sync(false, state);
                    self.log(format!("sync set now empty: {reason}"));
                }
            }
            return;
        }

        // Nobody in sync.
        if stalled {
            // Waiting for a replica that is not in sync protects nothing recorded.
            self.semi_sync(false, state);
            return self.log(format!(
                "writes waited {:.1}s for a replica that is not in sync; not waiting (policy available)",
                waited.as_secs_f64()
            ));
        }
        let fresh = |m: &&Member| {
            record::now_ms().saturating_sub(m.updated_ms)
                < u64::try_from(FRESH.as_millis()).unwrap_or(u64::MAX)
        };
        for replica in replicas {
            let Some(member) = view.member(&replica).filter(fresh) else {
                continue;
            };
            let streaming = member.source == my_address
                && member.io_running.as_deref() == Some("Yes")
                && member.sql_running == Some(true);
            let Some(received) = parse(member.received.as_deref()).filter(|_| streaming) else {
                continue;
            };
            if !state.semi_sync.master_enabled {
                // Only a replica that has caught up is waited for: waiting for one far
                // behind would stall every write until it catches up.
                if received.includes(&state.binlog_pos) {
                    self.semi_sync(true, state);
                }
                continue;
            }
            let enabled_at = {
                let tracker = &mut self.lead.as_mut().expect("leading").sync;
                tracker
                    .enabled_at
                    .get_or_insert_with(|| state.binlog_pos.clone())
                    .clone()
            };
            if state.semi_sync.master_on && received.includes(&enabled_at) {
                let reason = format!(
                    "{replica} received everything up to {enabled_at} and acknowledges every write since"
                );
                if self.write_sync(&cluster_state, state_rev, vec![replica.clone()], &reason) {
                    self.log(format!("{replica} is in sync: {reason}"));
                }
                return;
            }
        }
    }

    /// Switches the leader's waiting for acknowledgements on or off.
    fn semi_sync(&mut self, on: bool, state: &HostState) {
        let statement = format!(
            "SET GLOBAL rpl_semi_sync_master_enabled = {}",
            if on { "ON" } else { "OFF" }
        );
        match self.local_exec(&statement) {
            Ok(()) => {
                let tracker = &mut self.lead.as_mut().expect("leading").sync;
                // The position *after* switching on: everything later waits.
                tracker.enabled_at = on.then(|| state.binlog_pos.clone());
                if on {
                    if let Ok(now) = self.local_state() {
                        self.lead.as_mut().expect("leading").sync.enabled_at = Some(now.binlog_pos);
                    }
                }
            }
            Err(e) => self.log(format!("`{statement}` failed: {e}")),
        }
    }

    /// Records a new sync set, conditional on still leading and on the state read.
    fn write_sync(
        &mut self,
        current: &ClusterState,
        rev: i64,
        sync: Vec<String>,
        reason: &str,
    ) -> bool {
        let key_rev = self.lead.as_ref().expect("leading").key_rev;
        let keys = &self.cfg.keys;
        let next = ClusterState {
            sync,
            reason: reason.to_string(),
            changed_ms: record::now_ms(),
            ..current.clone()
        };
        match self.store.transaction(
            &[
                Condition::ModRevision(keys.leader(), key_rev),
                Condition::ModRevision(keys.state(), rev),
            ],
            &[Change::Put {
                key: keys.state(),
                value: record::encode(&next),
                lease: None,
            }],
        ) {
            Ok(Some(_)) => true,
            Ok(None) => false,
            Err(e) => {
                self.log(format!("cannot record the sync set ({reason}): {e}"));
                false
            }
        }
    }

    /// A planned switchover to a replica in sync: pause writes, let the target receive
    /// everything, then give back the lead; the target, in sync, takes it.
    pub(super) fn switchover(&mut self, view: &View, state: &HostState) {
        let Some((request, request_rev)) = view.switchover.clone() else {
            return self.resume_writes("the switchover request was withdrawn");
        };
        let keys = self.cfg.keys.clone();
        if request.to == self.cfg.host {
            let _ = self.store.transaction(
                &[Condition::ModRevision(keys.switchover(), request_rev)],
                &[Change::Delete(keys.switchover())],
            );
            return;
        }
        if !view.sync_set().contains(&request.to) {
            self.message = Some(format!(
                "switchover to {} waits: it is not in sync yet (sync set: {})",
                request.to,
                view.sync_set().join(", ")
            ));
            return;
        }
        let paused = {
            let lead = self.lead.as_mut().expect("leading");
            *lead.handing_over.get_or_insert_with(Instant::now)
        };
        if !state.read_only {
            if let Err(e) = self.local_exec("SET GLOBAL read_only = 1") {
                return self.resume_writes(&format!("cannot pause writes: {e}"));
            }
            self.log(format!("switchover to {}: writes paused", request.to));
            return;
        }
        // Read-only now: the binlog position is final (commits still waiting for their
        // acknowledgement are in it already).
        let target = match self.cfg.cluster.host(&request.to) {
            Ok(h) => h.clone(),
            Err(e) => return self.resume_writes(&e.to_string()),
        };
        let caught_up = Session::open(&target, self.cfg.cluster.port, &self.cfg.access)
            .and_then(|mut s| s.wait_applied(&state.binlog_pos, Duration::from_millis(200)))
            .unwrap_or(false);
        if !caught_up {
            if paused.elapsed() > HANDOVER_LIMIT {
                let _ = self.store.transaction(
                    &[Condition::ModRevision(keys.switchover(), request_rev)],
                    &[Change::Delete(keys.switchover())],
                );
                return self.resume_writes(&format!(
                    "switchover to {} abandoned: it did not apply {} within {HANDOVER_LIMIT:?}",
                    request.to, state.binlog_pos
                ));
            }
            return;
        }
        let lead = self.lead.take().expect("leading");
        self.set_gate(Opening::Closed);
        let (cluster_state, state_rev) = view.state.clone().expect("a leader has a state");
        let next = ClusterState {
            sync: vec![request.to.clone()],
            reason: format!("switchover from {} to {}", self.cfg.host, request.to),
            changed_ms: record::now_ms(),
            ..cluster_state
        };
        let handed = self.store.transaction(
            &[
                Condition::ModRevision(keys.leader(), lead.key_rev),
                Condition::ModRevision(keys.state(), state_rev),
            ],
            &[
                Change::Delete(keys.leader()),
                Change::Put {
                    key: keys.state(),
                    value: record::encode(&next),
                    lease: None,
                },
                Change::Delete(keys.switchover()),
            ],
        );
        match handed {
            Ok(Some(_)) => {
                let _ = self.store.revoke(lead.lease);
                self.role = "replica";
                self.log(format!(
                    "switchover: handed the lead of term {} to {} after {:.2}s of paused writes",
                    lead.term,
                    request.to,
                    paused.elapsed().as_secs_f64()
                ));
            }
            _ => {
                // Still the leader: take the lead back up and write again.
                self.lead = Some(lead);
                self.resume_writes("switchover: the handover could not be recorded");
            }
        }
    }

    fn resume_writes(&mut self, why: &str) {
        let Some(lead) = self.lead.as_mut() else {
            return;
        };
        if lead.handing_over.take().is_some() && matches!(lead.phase, Phase::Writable) {
            let _ = self.local_exec("SET GLOBAL read_only = 0");
            self.log(format!("{why}; writes resumed"));
        }
        self.message = Some(why.to_string());
    }
}
