//! The agent while its host holds (or takes, or gives back) the leader key.

use std::time::{Duration, Instant};

use rampart_database::gtid::GtidPos;
use rampart_database::HostState;

use super::{short, sync, Agent, Lead, Phase, Unhealthy};
use crate::gate::Opening;
use crate::record::{self, ClusterState, Leader, Position, View};
use crate::store::{Change, Condition};
use crate::Policy;

/// How often the leader looks where etcd's raft leader is.
const RAFT_CHECK: Duration = Duration::from_secs(5);

impl Agent {
    /// Takes the leader key: `term` is the new term, `state_rev` the state key's revision
    /// it was decided on (0: the cluster is being initialised).
    pub(super) fn acquire(&mut self, view: &View, term: u64, state_rev: i64, reason: String) {
        let sent = Instant::now();
        let lease = match self.store.grant(self.cfg.timing.ttl) {
            Ok(lease) => lease,
            Err(e) => return self.log(format!("cannot take the lead: {e}")),
        };
        let keys = &self.cfg.keys;
        let state_condition = if state_rev == 0 {
            Condition::Absent(keys.state())
        } else {
            Condition::ModRevision(keys.state(), state_rev)
        };
        let me = self.cfg.host.clone();
        let state = ClusterState {
            term,
            leader: me.clone(),
            sync: Vec::new(),
            reason: reason.clone(),
            changed_ms: record::now_ms(),
        };
        let taken = self.store.transaction(
            &[Condition::Absent(keys.leader()), state_condition],
            &[
                Change::Put {
                    key: keys.leader(),
                    value: record::encode(&Leader {
                        host: me.clone(),
                        term,
                    }),
                    lease: Some(lease),
                },
                Change::Put {
                    key: keys.state(),
                    value: record::encode(&state),
                    lease: None,
                },
            ],
        );
        let key_rev = match taken {
            Ok(Some(rev)) => rev,
            Ok(None) => {
                let _ = self.store.revoke(lease);
                return self.log("another host took the lead first".into());
            }
            Err(e) => {
                let _ = self.store.revoke(lease);
                return self.log(format!("cannot take the lead: {e}"));
            }
        };
        // Nothing more arrives from the old leader (its gate is closed); what is in the
        // relay log now is everything, and it must be applied before any new write.
        self.io_stopped = self.local_exec("STOP SLAVE IO_THREAD").is_ok();
        let need = match self.local_state() {
            Ok(s) => s
                .replica
                .map_or(s.current_pos.clone(), |r| r.received.union(&s.current_pos)),
            Err(_) => GtidPos::default(),
        };
        self.log(format!(
            "took the lead, term {term} ({reason}); applying everything received up to {need}"
        ));
        self.lead = Some(Lead {
            lease,
            term,
            key_rev,
            renewed: sent,
            phase: Phase::CatchingUp {
                need,
                since: Instant::now(),
            },
            sync: sync::Tracker::default(),
            position_published: None,
            handing_over: None,
            raft_checked: None,
        });
        let _ = view;
        self.role = "promoting";
    }

    /// The leader key names this host but the agent does not hold it (the agent
    /// restarted): keep it if the lease still renews and MariaDB is healthy, else give
    /// it back.
    pub(super) fn resume(
        &mut self,
        view: &View,
        health: &Result<HostState, Unhealthy>,
        leader: &Leader,
        key_rev: i64,
        lease: i64,
    ) {
        let sent = Instant::now();
        let renewed = health.is_ok() && matches!(self.store.keep_alive(lease), Ok(ttl) if ttl > 0);
        if !renewed {
            let _ = self.store.transaction(
                &[Condition::ModRevision(self.cfg.keys.leader(), key_rev)],
                &[Change::Delete(self.cfg.keys.leader())],
            );
            let _ = self.store.revoke(lease);
            return self.log(format!(
                "gave back the lead of term {} that an earlier run held: {}",
                leader.term,
                match health {
                    Err(u) => u.message.clone(),
                    Ok(_) => "its lease no longer renews".into(),
                }
            ));
        }
        let current = health
            .as_ref()
            .map(|s| s.current_pos.clone())
            .unwrap_or_default();
        self.log(format!("resumed the lead of term {}", leader.term));
        self.lead = Some(Lead {
            lease,
            term: leader.term,
            key_rev,
            renewed: sent,
            phase: Phase::CatchingUp {
                need: current,
                since: Instant::now(),
            },
            sync: sync::Tracker::default(),
            position_published: None,
            handing_over: None,
            raft_checked: None,
        });
        let _ = view;
    }

    /// A tick while leading.
    pub(super) fn lead_tick(&mut self, view: &View, health: &Result<HostState, Unhealthy>) {
        let lead = self.lead.as_ref().expect("leading");
        let (lease, key_rev) = (lead.lease, lead.key_rev);
        let still_ours = view.leader.as_ref().is_some_and(|(l, rev, l_lease)| {
            l.host == self.cfg.host && *l_lease == lease && *rev == key_rev
        });
        if !still_ours {
            return self.lost_lead(&format!(
                "the leader key is no longer ours (now {})",
                view.leader_host().unwrap_or("nobody")
            ));
        }
        let state = match health {
            Ok(state) => {
                self.failures = 0;
                state.clone()
            }
            Err(u) => {
                self.failures += if u.down {
                    self.cfg.timing.unhealthy_checks
                } else {
                    1
                };
                if self.failures >= self.cfg.timing.unhealthy_checks {
                    return self.step_down(&format!("MariaDB is unhealthy: {}", u.message));
                }
                // No renewal while unhealthy: the gate closes at its deadline by itself.
                return self.log(format!(
                    "MariaDB failed a health check ({}/{}): {}; not renewing the lease",
                    self.failures, self.cfg.timing.unhealthy_checks, u.message
                ));
            }
        };
        let sent = Instant::now();
        match self.store.keep_alive(lease) {
            Ok(ttl) if ttl > 0 => {
                if let Some(lead) = self.lead.as_mut() {
                    lead.renewed = sent;
                }
            }
            Ok(_) => return self.lost_lead("the lease expired"),
            Err(e) => {
                let lead = self.lead.as_ref().expect("leading");
                if Instant::now() >= self.cfg.timing.gate_deadline(lead.renewed) {
                    return self.lost_lead(&format!("no lease renewal in time: {e}"));
                }
                return self.log(format!("lease renewal failed: {e}"));
            }
        }
        let phase_writable = matches!(self.lead.as_ref().map(|l| &l.phase), Some(Phase::Writable));
        if !phase_writable {
            return self.catch_up(view, &state);
        }
        if self.lead.as_ref().is_some_and(|l| l.handing_over.is_some()) {
            // Paused for a switchover: the gate follows the lease, writes stay off.
            self.open_gate_for_lease();
            return self.switchover(view, &state);
        }
        self.open_gate_for_lease();
        // Paused: an operator may have set read_only on purpose; the lease and the gate
        // go on, the sync set stays true, and nothing else is decided for them.
        if state.read_only && view.pause.is_none() {
            if let Err(e) = self.local_exec("SET GLOBAL read_only = 0") {
                self.log(format!("cannot make MariaDB writable: {e}"));
            }
        }
        self.role = "leader";
        self.manage_sync(view, &state);
        self.publish_position(&state);
        self.keep_raft_leadership_away();
        if view.switchover.is_some() && view.pause.is_none() {
            self.switchover(view, &state);
        }
    }

    /// Keeps etcd's raft leadership off the database leader's host. Cut off together, they
    /// cost an election before the lease can expire, and the new etcd leader extends every
    /// lease by a full TTL (etcd's lessor on promotion): a second or more on top of the
    /// lease in `infralab chaos --fault partition-primary`, whenever the draw put both on
    /// one host. Handed to a member on no database host (lb, the tie-breaker); checked
    /// every [`RAFT_CHECK`], two status requests.
    pub(super) fn keep_raft_leadership_away(&mut self) {
        let due = self
            .lead
            .as_ref()
            .is_some_and(|l| l.raft_checked.is_none_or(|t| t.elapsed() >= RAFT_CHECK));
        if !due {
            return;
        }
        if let Some(lead) = self.lead.as_mut() {
            lead.raft_checked = Some(Instant::now());
        }
        let host_of = |url: &str| -> String {
            let rest = url.split_once("://").map_or(url, |(_, r)| r);
            rest.rsplit_once(':').map_or(rest, |(h, _)| h).to_string()
        };
        let databases: Vec<String> = self
            .cfg
            .cluster
            .hosts
            .iter()
            .map(|h| h.address.to_string())
            .collect();
        let me = self.me().address.to_string();
        let urls = self.store.endpoint_urls();
        let mine = urls.iter().find(|u| host_of(u) == me).cloned();
        let away = urls
            .iter()
            .find(|u| !databases.contains(&host_of(u)))
            .cloned();
        let (Some(mine), Some(away)) = (mine, away) else {
            return;
        };
        match self.store.hand_raft_leadership(&mine, &away) {
            Ok(true) => self.log(format!(
                "handed etcd's raft leadership from this host's member to {away}: cut off together, they would cost an election before the lease could expire"
            )),
            Ok(false) => {}
            Err(e) => self.log(format!(
                "could not hand etcd's raft leadership to {away}: {e}"
            )),
        }
    }

    /// The gate open until the deadline of the latest renewal.
    fn open_gate_for_lease(&mut self) {
        let renewed = self.lead.as_ref().expect("leading").renewed;
        let left = self
            .cfg
            .timing
            .gate_deadline(renewed)
            .saturating_duration_since(Instant::now());
        self.set_gate(Opening::Until(left));
    }

    /// A new leader applies its relay log, then stops replicating and becomes writable.
    fn catch_up(&mut self, view: &View, state: &HostState) {
        let Some(Lead {
            phase: Phase::CatchingUp { need, since },
            ..
        }) = self.lead.as_ref()
        else {
            return;
        };
        let (need, since) = (need.clone(), *since);
        let applied = state.current_pos.includes(&need)
            || self.local.as_mut().is_some_and(|s| {
                s.wait_applied(&need, short(self.cfg.timing.tick))
                    .unwrap_or(false)
            });
        if !applied {
            if since.elapsed() > self.cfg.timing.catch_up {
                return self.step_down(&format!(
                    "could not apply the relay log up to {need} within {:?} (applied {})",
                    self.cfg.timing.catch_up, state.current_pos
                ));
            }
            self.message = Some(format!("applying the relay log up to {need}"));
            return;
        }
        let sync_known = !view.sync_set().is_empty();
        let semi_sync = self.cfg.policy == Policy::Strict || sync_known;
        let statements = [
            "STOP SLAVE".to_string(),
            "RESET SLAVE ALL".to_string(),
            // MariaDB must never stop waiting for the replica on its own: the agent
            // decides (the rendered settings say the same; this holds whatever they say).
            format!(
                "SET GLOBAL rpl_semi_sync_master_timeout = {}",
                crate::SEMI_SYNC_TIMEOUT_MS
            ),
            "SET GLOBAL rpl_semi_sync_master_wait_no_slave = ON".to_string(),
            format!(
                "SET GLOBAL rpl_semi_sync_master_enabled = {}",
                if semi_sync { "ON" } else { "OFF" }
            ),
        ];
        for statement in &statements {
            if let Err(e) = self.local_exec(statement) {
                self.message = Some(format!("becoming writable: {e}"));
                return self.log(format!("becoming writable: `{statement}` failed: {e}"));
            }
        }
        self.open_gate_for_lease();
        if let Err(e) = self.local_exec("SET GLOBAL read_only = 0") {
            return self.log(format!("cannot make MariaDB writable: {e}"));
        }
        let took = since.elapsed();
        let term = self.lead.as_ref().map_or(0, |l| l.term);
        if let Some(lead) = self.lead.as_mut() {
            lead.phase = Phase::Writable;
            if semi_sync {
                lead.sync.enabled_at = Some(state.binlog_pos.clone());
            }
        }
        self.role = "leader";
        self.message = None;
        self.diverged = None;
        self.log(format!(
            "writable as the leader of term {term} after {:.2}s; semi-sync {} (policy {})",
            took.as_secs_f64(),
            if semi_sync {
                "on"
            } else {
                "off until the replica is in sync"
            },
            self.cfg.policy.name()
        ));
    }

    /// Publishes the leader's binlog position whenever it moved: a promotion outside the
    /// sync set names what it would lose from it.
    fn publish_position(&mut self, state: &HostState) {
        let Some(lead) = self.lead.as_ref() else {
            return;
        };
        if lead.position_published.as_ref() == Some(&state.binlog_pos) {
            return;
        }
        let position = Position {
            host: self.cfg.host.clone(),
            term: lead.term,
            gtid_binlog_pos: state.binlog_pos.to_string(),
            at_ms: record::now_ms(),
        };
        let key_rev = lead.key_rev;
        let keys = &self.cfg.keys;
        let written = self.store.transaction(
            &[Condition::ModRevision(keys.leader(), key_rev)],
            &[Change::Put {
                key: keys.position(),
                value: record::encode(&position),
                lease: None,
            }],
        );
        if let (Ok(Some(_)), Some(lead)) = (written, self.lead.as_mut()) {
            lead.position_published = Some(state.binlog_pos.clone());
        }
    }

    /// Gives the lead up on purpose: gate closed and read-only first, then the key.
    pub(super) fn step_down(&mut self, why: &str) {
        let Some(lead) = self.lead.take() else { return };
        self.set_gate(Opening::Closed);
        self.make_read_only(why);
        let keys = &self.cfg.keys;
        let released = self.store.transaction(
            &[Condition::ModRevision(keys.leader(), lead.key_rev)],
            &[Change::Delete(keys.leader())],
        );
        let _ = self.store.revoke(lead.lease);
        self.role = "fenced";
        self.failures = 0;
        self.message = Some(format!("stepped down: {why}"));
        self.log(format!(
            "stepped down from term {} ({why}); writer gate closed{}",
            lead.term,
            match released {
                Ok(Some(_)) => ", leader key released",
                _ => "; the leader key goes with its lease",
            }
        ));
    }

    /// The lead is gone whatever we do (lease expired or taken): fence and forget it.
    pub(super) fn lost_lead(&mut self, why: &str) {
        let Some(lead) = self.lead.take() else { return };
        self.set_gate(Opening::Closed);
        self.make_read_only(why);
        self.role = "fenced";
        self.message = Some(format!("lost the lead: {why}"));
        self.log(format!(
            "lost the lead of term {}: {why}; writer gate closed, read-only",
            lead.term
        ));
    }
}
