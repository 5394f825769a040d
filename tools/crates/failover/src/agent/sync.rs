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

use std::collections::VecDeque;
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
/// How far behind the leader a replica may be for the leader to start waiting for it.
const CAUGHT_UP_WITHIN: Duration = Duration::from_secs(2);

/// What the leader remembers about the semi-sync waiting it switched on.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    /// The binlog position when the waiting was (last known to be) switched on.
    pub enabled_at: Option<GtidPos>,
    /// Since when commits have been waiting for an acknowledgement without a break.
    pub waiting_since: Option<Instant>,
    /// The leader's own recent binlog positions: what "caught up" is measured against.
    pub recent: Recent,
}

/// The binlog positions a leader had over the last [`CAUGHT_UP_WITHIN`], oldest first.
///
/// A replica's received position reaches the leader through its member record, which is
/// up to a tick (plus an etcd round trip) old when the leader reads it. Under a steady
/// write load the leader's *current* position has always moved on by then, so "received
/// everything the leader has now" is true only in a lull between writes — with clients
/// writing all the time, a caught-up replica could wait indefinitely to be waited for
/// (and so to be recorded in sync). Compared with any position the leader had recently,
/// a replica streaming in step qualifies on the next tick; one far behind still does not.
#[derive(Debug, Default)]
pub(super) struct Recent {
    /// Each position with the instant it was first seen.
    positions: VecDeque<(Instant, GtidPos)>,
}

impl Recent {
    /// Notes the leader's position at `now`, forgetting positions superseded before the window.
    pub fn note(&mut self, now: Instant, position: &GtidPos) {
        if self.positions.back().map(|(_, p)| p) != Some(position) {
            self.positions.push_back((now, position.clone()));
        }
        // A position was current until its successor appeared: keep it while that was
        // within the window. The latest is always kept.
        while self
            .positions
            .get(1)
            .is_some_and(|(next, _)| now.saturating_duration_since(*next) > CAUGHT_UP_WITHIN)
        {
            self.positions.pop_front();
        }
    }

    /// Whether `received` holds everything the leader had at some instant of the window.
    pub fn reached_by(&self, received: &GtidPos) -> bool {
        self.positions.iter().any(|(_, p)| received.includes(p))
    }
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
        let tracker = &mut self.lead.as_mut().expect("leading").sync;
        tracker.recent.note(Instant::now(), &state.binlog_pos);

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
                // behind would stall every write until it catches up. It is recorded in
                // sync only later, once it received everything from where the waiting began.
                let caught_up = self
                    .lead
                    .as_ref()
                    .expect("leading")
                    .sync
                    .recent
                    .reached_by(&received);
                if caught_up {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(text: &str) -> GtidPos {
        GtidPos::parse(text).expect("a GTID position")
    }

    /// The leader's positions under a steady load: one commit every 25 ms for `for_ms`.
    fn under_load(start: Instant, for_ms: u64) -> (Recent, Instant, u64) {
        let mut recent = Recent::default();
        let mut seq = 100;
        let mut now = start;
        for _ in 0..for_ms / 25 {
            seq += 1;
            now += Duration::from_millis(25);
            recent.note(now, &pos(&format!("0-3-{seq}")));
        }
        (recent, now, seq)
    }

    #[test]
    fn a_replica_streaming_a_tick_behind_a_busy_leader_is_caught_up() {
        let (recent, _, current) = under_load(Instant::now(), 10_000);
        // What its member record says: ten commits (250 ms, one tick) behind.
        let received = pos(&format!("0-3-{}", current - 10));
        assert!(
            !received.includes(&pos(&format!("0-3-{current}"))),
            "the leader's current position is never reached under load"
        );
        assert!(recent.reached_by(&received));
    }

    #[test]
    fn a_replica_far_behind_is_not() {
        let (recent, _, current) = under_load(Instant::now(), 10_000);
        // Five seconds of commits behind: beyond the window.
        assert!(!recent.reached_by(&pos(&format!("0-3-{}", current - 200))));
        // Nothing received in the leader's domain at all.
        assert!(!recent.reached_by(&pos("1-3-5000")));
    }

    #[test]
    fn an_idle_leader_keeps_its_one_position_however_old() {
        let start = Instant::now();
        let mut recent = Recent::default();
        recent.note(start, &pos("0-3-7"));
        recent.note(start + Duration::from_secs(60), &pos("0-3-7"));
        assert!(recent.reached_by(&pos("0-3-7")));
        assert!(!recent.reached_by(&pos("0-3-6")));
        // The position it left 3 s ago was current until then; the one before is gone.
        recent.note(start + Duration::from_secs(61), &pos("0-3-8"));
        recent.note(start + Duration::from_secs(64), &pos("0-3-9"));
        assert!(!recent.reached_by(&pos("0-3-7")));
        assert!(recent.reached_by(&pos("0-3-8")));
    }
}
