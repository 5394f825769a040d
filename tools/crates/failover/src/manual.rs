//! What people run against a cluster with agents: `status`, `switchover`, `promote`,
//! `pause` and `resume`.
//!
//! None of them changes a database directly: they read and write etcd, and the agents
//! act. So a command can never make a host writable behind the leader lease's back.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rampart_cli::table;
use rampart_database::gtid::{self, GtidPos};
use rampart_database::report::{OperationReport, Outcome, Step};
use rampart_database::Cluster;
use serde::Serialize;

use crate::record::{self, ClusterState, Keys, Pause, Switchover, View};
use crate::store::{Change, Condition, Store};
use crate::FailoverError;

/// `rampart-db status`: etcd's health and what the agents publish.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename = "clusterStatus", rename_all = "camelCase")]
pub struct ClusterStatus {
    pub etcd: Vec<EtcdEndpoint>,
    pub leader: Option<String>,
    pub term: u64,
    pub sync: Vec<String>,
    /// Why the state last changed.
    pub reason: Option<String>,
    /// Set while automatic failover is paused (`rampart-db pause`).
    pub paused: Option<Pause>,
    pub hosts: Vec<HostRow>,
    pub findings: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename = "etcdEndpoint", rename_all = "camelCase")]
pub struct EtcdEndpoint {
    pub endpoint: String,
    pub healthy: bool,
    /// `member <id>, leader <id>, raft term <n>, etcd <version>`, or the error.
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename = "failoverHost", rename_all = "camelCase")]
pub struct HostRow {
    pub host: String,
    /// As its agent says (`leader`, `replica`, …), `no agent` when none publishes.
    pub role: String,
    pub in_sync: bool,
    pub gtid_current_pos: String,
    pub received: Option<String>,
    /// Transactions behind the leader (per domain, summed), when both are known.
    pub behind_transactions: Option<u64>,
    pub seconds_behind: Option<u64>,
    pub message: Option<String>,
}

/// Reads everything once.
pub fn view(store: &mut Store, keys: &Keys) -> Result<View, FailoverError> {
    Ok(View::from_snapshot(keys, &store.read_prefix(&keys.prefix)?))
}

/// Transactions in `ahead` that `behind` lacks, summed over domains.
fn distance(behind: &GtidPos, ahead: &GtidPos) -> u64 {
    behind
        .missing(ahead)
        .iter()
        .map(|g| g.seq - behind.get(g.domain).map_or(0, |b| b.seq))
        .sum()
}

pub fn status(store: &mut Store, keys: &Keys, cluster: &Cluster) -> ClusterStatus {
    let etcd: Vec<EtcdEndpoint> = store
        .health()
        .into_iter()
        .map(|h| match h.answered {
            Ok(s) => EtcdEndpoint {
                endpoint: h.endpoint,
                healthy: s.leader_id != 0,
                detail: format!(
                    "member {:x}, leader {:x}, raft term {}, etcd {}",
                    s.member_id, s.leader_id, s.raft_term, s.version
                ),
            },
            Err(e) => EtcdEndpoint {
                endpoint: h.endpoint,
                healthy: false,
                detail: e,
            },
        })
        .collect();
    let mut findings: Vec<String> = etcd
        .iter()
        .filter(|e| !e.healthy)
        .map(|e| format!("etcd member {} is unhealthy: {}", e.endpoint, e.detail))
        .collect();
    let view = match view(store, keys) {
        Ok(v) => v,
        Err(e) => {
            findings.push(format!("cannot read the failover state from etcd: {e}"));
            return ClusterStatus {
                etcd,
                leader: None,
                term: 0,
                sync: Vec::new(),
                reason: None,
                paused: None,
                hosts: Vec::new(),
                findings,
            };
        }
    };
    findings.extend(view.problems.iter().cloned());
    let leader = view.leader_host().map(str::to_string);
    let leader_pos = leader
        .as_deref()
        .and_then(|l| view.member(l))
        .and_then(|m| GtidPos::parse(&m.gtid_binlog_pos).ok());
    let hosts: Vec<HostRow> = cluster
        .hosts
        .iter()
        .map(|h| {
            let in_sync = view.sync_set().contains(&h.name);
            match view.member(&h.name) {
                Some(m) => {
                    let mine = m
                        .received
                        .as_deref()
                        .and_then(|r| GtidPos::parse(r).ok())
                        .or_else(|| GtidPos::parse(&m.gtid_current_pos).ok());
                    HostRow {
                        host: h.name.clone(),
                        role: m.role.clone(),
                        in_sync,
                        gtid_current_pos: m.gtid_current_pos.clone(),
                        received: m.received.clone(),
                        behind_transactions: match (&mine, &leader_pos) {
                            (Some(mine), Some(theirs)) => Some(distance(mine, theirs)),
                            _ => None,
                        },
                        seconds_behind: m.seconds_behind,
                        message: m.message.clone(),
                    }
                }
                None => HostRow {
                    host: h.name.clone(),
                    role: "no agent".into(),
                    in_sync,
                    gtid_current_pos: String::new(),
                    received: None,
                    behind_transactions: None,
                    seconds_behind: None,
                    message: Some(
                        "no agent publishes for this host (agent down, or the host is)".into(),
                    ),
                },
            }
        })
        .collect();
    match &leader {
        None => findings.push(match &view.state {
            None => "no leader, and the cluster was never initialised: start the agent on the declared primary".into(),
            Some((s, _)) => format!(
                "no leader: writes are refused; only {} may take over",
                if s.sync.is_empty() { s.leader.clone() } else { s.sync.join(", ") }
            ),
        }),
        Some(l) if view.sync_set().is_empty() => findings.push(format!(
            "the sync set is empty: {l} acknowledges writes no replica holds; if {l} is lost now, no replica may take over automatically"
        )),
        Some(_) => {}
    }
    for row in &hosts {
        match row.role.as_str() {
            "no agent" => findings.push(format!("{}: no failover agent publishes", row.host)),
            "down" => findings.push(format!(
                "{}: MariaDB does not answer its agent: {}",
                row.host,
                row.message.clone().unwrap_or_default()
            )),
            "diverged" => findings.push(format!(
                "{}: {}",
                row.host,
                row.message.clone().unwrap_or_default()
            )),
            _ => {}
        }
    }
    if let Some(pause) = &view.pause {
        findings.push(format!(
            "automatic failover is paused ({}), for {:.0} s: no host takes over if the leader is lost; `rampart-db resume` ends it",
            pause.reason,
            record::now_ms().saturating_sub(pause.paused_ms) as f64 / 1000.0
        ));
    }
    let state = view.state.as_ref().map(|(s, _)| s);
    ClusterStatus {
        etcd,
        leader,
        term: view.term(),
        sync: view.sync_set().to_vec(),
        reason: state.map(|s| s.reason.clone()),
        paused: view.pause.clone(),
        hosts,
        findings,
    }
}

impl ClusterStatus {
    pub fn to_text(&self) -> String {
        let etcd: Vec<Vec<String>> = self
            .etcd
            .iter()
            .map(|e| {
                vec![
                    e.endpoint.clone(),
                    if e.healthy { "healthy" } else { "UNHEALTHY" }.into(),
                    e.detail.clone(),
                ]
            })
            .collect();
        let mut out = table::render(&["ETCD", "HEALTH", "DETAIL"], &etcd);
        let _ = writeln!(
            out,
            "\nleader: {}   term: {}   sync set: {}",
            self.leader.as_deref().unwrap_or("none"),
            self.term,
            if self.sync.is_empty() {
                "empty".to_string()
            } else {
                self.sync.join(", ")
            }
        );
        if let Some(reason) = &self.reason {
            let _ = writeln!(out, "last change: {reason}");
        }
        if let Some(pause) = &self.paused {
            let _ = writeln!(out, "automatic failover: PAUSED ({})", pause.reason);
        }
        out.push('\n');
        let rows: Vec<Vec<String>> = self
            .hosts
            .iter()
            .map(|h| {
                vec![
                    h.host.clone(),
                    h.role.clone(),
                    if h.in_sync { "yes" } else { "no" }.into(),
                    if h.gtid_current_pos.is_empty() {
                        "-".into()
                    } else {
                        h.gtid_current_pos.clone()
                    },
                    match (h.behind_transactions, h.seconds_behind) {
                        (Some(t), Some(s)) => format!("{t} trx, {s}s"),
                        (Some(t), None) => format!("{t} trx"),
                        (None, Some(s)) => format!("{s}s"),
                        (None, None) => "-".into(),
                    },
                ]
            })
            .collect();
        out.push_str(&table::render(
            &["HOST", "ROLE", "IN SYNC", "GTID", "LAG"],
            &rows,
        ));
        if self.findings.is_empty() {
            out.push_str("ok: etcd healthy, one leader, a replica in sync\n");
        } else {
            out.push_str("findings:\n");
            for f in &self.findings {
                let _ = writeln!(out, "  - {f}");
            }
        }
        out
    }
}

fn step(
    report: &mut OperationReport,
    started: Instant,
    step: &str,
    host: &str,
    ok: bool,
    detail: String,
) {
    report.steps.push(Step {
        step: step.into(),
        host: host.into(),
        ok,
        detail,
        seconds: started.elapsed().as_secs_f64(),
    });
}

/// Waits (bounded) until `host` leads and is writable; the view that showed it.
fn wait_leading(store: &mut Store, keys: &Keys, host: &str, limit: Duration) -> Option<View> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(v) = view(store, keys) {
            let writable = v
                .member(host)
                .is_some_and(|m| m.role == "leader" && m.read_only == Some(false));
            if v.leader_host() == Some(host) && writable {
                return Some(v);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// `rampart-db pause --reason TEXT`: automatic failover off for maintenance
/// ([`Pause`]). The leader keeps its lease and writer gate while its MariaDB is healthy;
/// no agent takes a vacant lead or undoes an operator's `read_only`.
pub fn pause(
    store: &mut Store,
    keys: &Keys,
    reason: &str,
) -> Result<OperationReport, FailoverError> {
    let started = Instant::now();
    let mut report = OperationReport::new("pause", "cluster");
    let v = view(store, keys)?;
    report.primary = v.leader_host().map(str::to_string);
    if let Some(pause) = &v.pause {
        report.outcome = Outcome::Unchanged;
        report.reason = Some(format!(
            "automatic failover is paused already: {}",
            pause.reason
        ));
        return Ok(report);
    }
    let pause = Pause {
        reason: reason.to_string(),
        paused_ms: record::now_ms(),
    };
    store.put(&keys.pause(), record::encode(&pause), None)?;
    step(
        &mut report,
        started,
        "pause",
        "etcd",
        true,
        format!(
            "automatic failover paused ({reason}): no agent takes a vacant lead or resets read_only; `rampart-db resume` ends it"
        ),
    );
    Ok(report)
}

/// `rampart-db resume`: automatic failover on again.
pub fn resume(store: &mut Store, keys: &Keys) -> Result<OperationReport, FailoverError> {
    let started = Instant::now();
    let mut report = OperationReport::new("resume", "cluster");
    let v = view(store, keys)?;
    report.primary = v.leader_host().map(str::to_string);
    let Some(pause) = &v.pause else {
        report.outcome = Outcome::Unchanged;
        report.reason = Some("automatic failover is not paused".into());
        return Ok(report);
    };
    store.transaction(&[], &[Change::Delete(keys.pause())])?;
    step(
        &mut report,
        started,
        "resume",
        "etcd",
        true,
        format!(
            "automatic failover on again after {:.0} s paused ({})",
            record::now_ms().saturating_sub(pause.paused_ms) as f64 / 1000.0,
            pause.reason
        ),
    );
    Ok(report)
}

/// `rampart-db switchover --to HOST`: asks the leader's agent to hand over to HOST, a
/// replica in sync, and waits until HOST is writable.
pub fn switchover(
    store: &mut Store,
    keys: &Keys,
    cluster: &Cluster,
    to: &str,
    limit: Duration,
) -> Result<OperationReport, FailoverError> {
    cluster.host(to)?;
    let started = Instant::now();
    let mut report = OperationReport::new("switchover", to);
    let v = view(store, keys)?;
    let Some(leader) = v.leader_host().map(str::to_string) else {
        report.outcome = Outcome::Refused;
        report.reason = Some(
            "no host leads now: there is nothing to switch over from; see `rampart-db status`"
                .into(),
        );
        return Ok(report);
    };
    report.primary = Some(leader.clone());
    if leader == to {
        report.outcome = Outcome::Unchanged;
        report.reason = Some(format!("{to} already leads (term {})", v.term()));
        return Ok(report);
    }
    if !v.sync_set().contains(&to.to_string()) {
        report.outcome = Outcome::Refused;
        report.reason = Some(format!(
            "{to} is not in the sync set ({}): it may lack writes {leader} acknowledged; wait until `rampart-db status` shows it in sync",
            if v.sync_set().is_empty() { "empty".to_string() } else { v.sync_set().join(", ") }
        ));
        return Ok(report);
    }
    let request = Switchover {
        to: to.to_string(),
        requested_ms: record::now_ms(),
    };
    store.put(&keys.switchover(), record::encode(&request), None)?;
    step(
        &mut report,
        started,
        "request",
        &leader,
        true,
        format!("asked {leader}'s agent to hand over to {to}"),
    );
    match wait_leading(store, keys, to, limit) {
        Some(after) => {
            step(
                &mut report,
                started,
                "handed over",
                to,
                true,
                format!("{to} leads term {} and is writable", after.term()),
            );
            report.outcome = Outcome::Done;
        }
        None => {
            let _ = store.transaction(&[], &[Change::Delete(keys.switchover())]);
            let said = view(store, keys)
                .ok()
                .and_then(|v| v.member(&leader).and_then(|m| m.message.clone()))
                .unwrap_or_default();
            report.outcome = Outcome::Failed;
            report.reason = Some(format!(
                "{to} did not become the writable leader within {limit:?}; the request was withdrawn{}",
                if said.is_empty() { String::new() } else { format!("; {leader}'s agent says: {said}") }
            ));
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// `rampart-db promote HOST`: lets HOST take the lead when nobody holds it.
///
/// A host in the sync set (or the last leader, when nobody is in sync) takes the lead by
/// itself; this only waits for it. Any other host would lose what the last leader
/// acknowledged after that host's position: refused, naming those transactions, unless
/// `accept_loss`. Then HOST is recorded as in sync by the operator's decision, and its
/// agent takes over.
pub fn promote(
    store: &mut Store,
    keys: &Keys,
    cluster: &Cluster,
    host: &str,
    accept_loss: bool,
    limit: Duration,
) -> Result<OperationReport, FailoverError> {
    cluster.host(host)?;
    let started = Instant::now();
    let mut report = OperationReport::new("promote", host);
    report.forced = accept_loss;
    let v = view(store, keys)?;
    if let Some(leader) = v.leader_host() {
        report.primary = Some(leader.to_string());
        if leader == host {
            report.outcome = Outcome::Unchanged;
            report.reason = Some(format!("{host} already leads (term {})", v.term()));
        } else {
            report.outcome = Outcome::Refused;
            report.reason = Some(format!(
                "{leader} leads (term {}) and renews its lease: promoting {host} now would make two writers; a planned change is `rampart-db switchover --to {host}`",
                v.term()
            ));
        }
        return Ok(report);
    }
    let Some((state, state_rev)) = v.state.clone() else {
        report.outcome = Outcome::Refused;
        report.reason = Some("the cluster was never initialised: start the agents (the declared primary takes the first lead)".into());
        return Ok(report);
    };
    let eligible =
        state.sync.contains(&host.to_string()) || (state.leader == host && state.sync.is_empty());
    if !eligible {
        let theirs = v.position.as_ref().and_then(|p| {
            GtidPos::parse(&p.gtid_binlog_pos)
                .ok()
                .map(|pos| (p.clone(), pos))
        });
        let mine = v
            .member(host)
            .and_then(|m| GtidPos::parse(&m.gtid_current_pos).ok());
        let lost = match (&theirs, &mine) {
            (Some((p, pos)), Some(mine)) => {
                let missing = mine.missing(pos);
                if missing.is_empty() {
                    format!("nothing {} reported (it last reported {} at {}), but it may have acknowledged more before it was lost", p.host, p.gtid_binlog_pos, p.at_ms)
                } else {
                    format!(
                        "at least {} ({} transactions {}, the leader of term {}, acknowledged after {host}'s position {}; it last reported {} and may have acknowledged more before it was lost)",
                        ranges(mine, &missing),
                        distance(mine, pos),
                        p.host,
                        p.term,
                        shown(mine),
                        p.gtid_binlog_pos
                    )
                }
            }
            (None, _) => "everything the last leader acknowledged after this host's position (its position was never published)".into(),
            (_, None) => format!("an unknown amount: {host}'s agent publishes no position"),
        };
        report.positions.insert("lost".into(), lost.clone());
        if !accept_loss {
            report.outcome = Outcome::Refused;
            report.reason = Some(format!(
                "{host} is not in the sync set ({}; {} led term {}); promoting it would lose {lost}. Bring {} back instead, or pass --accept-data-loss",
                if state.sync.is_empty() { "empty".to_string() } else { state.sync.join(", ") },
                state.leader,
                state.term,
                if state.sync.is_empty() { state.leader.clone() } else { state.sync.join(" or ") },
            ));
            return Ok(report);
        }
        let next = ClusterState {
            sync: vec![host.to_string()],
            reason: format!("operator promoted {host}, accepting the loss of {lost}"),
            changed_ms: record::now_ms(),
            ..state.clone()
        };
        let written = store.transaction(
            &[
                Condition::Absent(keys.leader()),
                Condition::ModRevision(keys.state(), state_rev),
            ],
            &[Change::Put {
                key: keys.state(),
                value: record::encode(&next),
                lease: None,
            }],
        )?;
        if written.is_none() {
            report.outcome = Outcome::Failed;
            report.reason = Some("the failover state changed meanwhile (a leader appeared?); run it again after `rampart-db status`".into());
            return Ok(report);
        }
        report.warnings.push(format!("accepted data loss: {lost}"));
        step(
            &mut report,
            started,
            "record in sync",
            host,
            true,
            "by the operator's decision".into(),
        );
    }
    match wait_leading(store, keys, host, limit) {
        Some(after) => {
            step(
                &mut report,
                started,
                "took the lead",
                host,
                true,
                format!("term {}, writable", after.term()),
            );
            report.outcome = Outcome::Done;
        }
        None => {
            report.outcome = Outcome::Failed;
            let said = view(store, keys).ok().and_then(|v| {
                v.member(host)
                    .map(|m| format!("{} ({})", m.role, m.message.clone().unwrap_or_default()))
            });
            report.reason = Some(format!(
                "{host}'s agent did not take the lead within {limit:?}: {}",
                said.unwrap_or_else(|| "no agent publishes for it".into())
            ));
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// `0-1-101..250` per domain: the GTIDs after `from` up to each missing one.
fn ranges(from: &GtidPos, missing: &[gtid::Gtid]) -> String {
    missing
        .iter()
        .map(|g| {
            let first = from.get(g.domain).map_or(1, |b| b.seq + 1);
            if first == g.seq {
                g.to_string()
            } else {
                format!("{}-{}-{first}..{}", g.domain, g.server, g.seq)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn shown(pos: &GtidPos) -> String {
    if pos.is_empty() {
        "(nothing)".into()
    } else {
        pos.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(text: &str) -> GtidPos {
        GtidPos::parse(text).unwrap()
    }

    #[test]
    fn the_lost_range_is_named_per_domain() {
        let mine = pos("0-1-100");
        let theirs = pos("0-1-250,1-1-3");
        let missing = mine.missing(&theirs);
        assert_eq!(ranges(&mine, &missing), "0-1-101..250, 1-1-1..3");
        assert_eq!(distance(&mine, &theirs), 153);
        assert_eq!(
            ranges(&pos("0-1-249"), &pos("0-1-249").missing(&theirs))[..7],
            *"0-1-250"
        );
    }
}
