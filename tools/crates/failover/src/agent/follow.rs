//! The agent while another host leads, or nobody does.

use std::time::{Duration, Instant};

use rampart_database::{self as db, HostState, Session};

use super::{Agent, Unhealthy};
use crate::gate::Opening;
use crate::record::View;

/// How often a diverged host checks again whether it can rejoin (someone may have
/// rebuilt it, or restarted it so that crash recovery dropped its unacknowledged tail).
const DIVERGED_RECHECK: Duration = Duration::from_secs(5);

impl Agent {
    /// Another host leads: stay read-only and replicate from it.
    pub(super) fn follow(
        &mut self,
        view: &View,
        health: &Result<HostState, Unhealthy>,
        leader: &str,
    ) {
        let Ok(state) = health else {
            self.role = "down";
            return;
        };
        if !state.read_only {
            self.set_gate(Opening::Closed);
            // A commit waiting for an acknowledgement blocks `read_only = 1` until it ends;
            // the gate keeps clients out meanwhile, and a rejoin releases the commit.
            if state.semi_sync.master_wait_sessions == 0 {
                self.make_read_only(&format!("{leader} leads"));
            }
        }
        if let Some((_, since)) = &self.diverged {
            if since.elapsed() < DIVERGED_RECHECK {
                self.set_gate(Opening::Closed);
                return;
            }
        }
        let Some(leader_address) = self.address_of(leader) else {
            return self.log(format!(
                "the leader key names {leader}, which is not a database host of the topology"
            ));
        };
        let replicating = state
            .replica
            .as_ref()
            .is_some_and(|r| r.source == leader_address.to_string());
        if !replicating {
            return self.rejoin(view, state, leader);
        }
        let replica = state.replica.as_ref().expect("checked above");
        if state.semi_sync.master_enabled {
            // Left on by an earlier lead; see `rejoin` for why turning it off is safe here.
            if let Err(e) = self.local_exec("SET GLOBAL rpl_semi_sync_master_enabled = OFF") {
                self.log(format!(
                    "cannot switch semi-sync waiting off on a replica: {e}"
                ));
            }
        }
        if self.io_stopped && replica.io_running == "No" {
            // Stopped by this agent when it took a lead it then gave back.
            self.io_stopped = self.local_exec("START SLAVE").is_err();
        }
        self.diverged = None;
        self.role = "replica";
        self.message = (!replica.last_io_error.is_empty() || !replica.last_sql_error.is_empty())
            .then(|| {
                format!(
                    "replication: {} {}",
                    replica.last_io_error, replica.last_sql_error
                )
            });
        self.set_gate(Opening::Open);
    }

    /// Makes this host a replica of `leader` if its history is a prefix of the leader's.
    fn rejoin(&mut self, view: &View, state: &HostState, leader: &str) {
        let _ = view;
        let Ok(leader_host) = self.cfg.cluster.host(leader).cloned() else {
            return;
        };
        let mut theirs = match Session::open(&leader_host, self.cfg.cluster.port, &self.cfg.access)
            .and_then(|mut s| s.state().map(|state| (s, state)))
        {
            Ok((_, theirs)) => theirs,
            Err(e) => {
                self.message = Some(format!("waiting to rejoin {leader}: {e}"));
                return self.log(format!("cannot rejoin {leader} yet: {e}"));
            }
        };
        if theirs.read_only {
            self.message = Some(format!("waiting for {leader} to become writable"));
            return;
        }
        // A former leader's unacknowledged tail, or a split history: never merged.
        theirs.server_id = theirs.server_id.trim().to_string();
        if let Some(reason) = db::history_problems(&self.cfg.host, state, leader, &theirs) {
            self.set_gate(Opening::Closed);
            self.role = "diverged";
            self.message = Some(reason.clone());
            self.diverged = Some((reason.clone(), Instant::now()));
            return self.log(reason);
        }
        let password = match db::read_secret(&self.cfg.replication_password_file) {
            Ok(p) => p,
            Err(e) => return self.log(e.to_string()),
        };
        let change_master = db::change_master(
            leader_host.address,
            self.cfg.cluster.port,
            &self.cfg.replication_user,
            &password,
            &self.cfg.replica_pki_dir,
        );
        let position = state.current_pos.to_string();
        for statement in [
            // A replica must not wait for replicas of its own: with log_slave_updates its
            // SQL thread would wait forever for acknowledgements. Any commit of a former
            // leader still waiting is one the leader holds (the history check passed), so
            // releasing it is right.
            "SET GLOBAL rpl_semi_sync_master_enabled = OFF".to_string(),
            "SET GLOBAL read_only = 1".to_string(),
            "STOP SLAVE".to_string(),
            "RESET SLAVE ALL".to_string(),
            // A former primary's own writes are in its binlog, not in gtid_slave_pos:
            // replicate from after them.
            format!("SET GLOBAL gtid_slave_pos = '{position}'"),
            change_master,
            "START SLAVE".to_string(),
        ] {
            if let Err(e) = self.local_exec(&statement) {
                self.message = Some(format!("rejoining {leader}: {e}"));
                return self.log(format!("rejoining {leader} failed: {e}"));
            }
        }
        self.diverged = None;
        self.role = "replica";
        self.message = None;
        self.set_gate(Opening::Open);
        self.log(format!(
            "rejoined: replicating from {leader} after {}",
            if position.is_empty() {
                "nothing"
            } else {
                &position
            }
        ));
    }

    /// Nobody leads: take the lead if this host may.
    pub(super) fn vacant(&mut self, view: &View, health: &Result<HostState, Unhealthy>) {
        let me = self.cfg.host.clone();
        let Ok(state) = health else {
            self.role = "down";
            return;
        };
        if !state.read_only {
            self.set_gate(Opening::Closed);
            self.make_read_only("nobody leads");
        }
        let eligible = match &view.state {
            None => self.me().declared_primary.then(|| {
                (
                    1,
                    0,
                    "initialising the cluster (declared primary)".to_string(),
                )
            }),
            Some((s, rev)) if s.sync.contains(&me) => Some((
                s.term + 1,
                *rev,
                format!("{} left the lead; {me} was in sync", s.leader),
            )),
            Some((s, rev)) if s.leader == me && s.sync.is_empty() => Some((
                s.term + 1,
                *rev,
                format!("{me} led term {} and no replica was in sync", s.term),
            )),
            Some(_) => None,
        };
        match eligible {
            Some((_, _, reason)) if view.pause.is_some() => {
                self.message = Some(format!(
                    "no leader, and automatic failover is paused (`rampart-db resume`); {me} would take the lead: {reason}"
                ));
            }
            Some((term, rev, reason)) => {
                if self.diverged.is_some() {
                    return;
                }
                self.acquire(view, term, rev, reason)
            }
            None => {
                let (leader, sync) = view
                    .state
                    .as_ref()
                    .map(|(s, _)| (s.leader.clone(), s.sync.join(", ")))
                    .unwrap_or_default();
                self.message =
                    Some(format!(
                    "no leader; only {} may take over (in sync with {leader}); this host is not",
                    if sync.is_empty() { leader.clone() } else { sync }
                ));
                if self.role != "diverged" {
                    self.role = "replica";
                }
            }
        }
    }
}
