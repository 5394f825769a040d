//! What failover keeps in etcd: the keys and their JSON values (a contract: docs/failover.md
//! "What etcd holds").
//!
//! | key | value | lease | written by |
//! |---|---|---|---|
//! | `<prefix>leader` | [`Leader`] | the leader's | the agent that takes the lead (create-if-absent) |
//! | `<prefix>state` | [`ClusterState`]: term, leader, sync set | none | the leader (compare-and-swap) |
//! | `<prefix>position` | [`Position`]: the leader's binlog position | none | the leader, every few ticks |
//! | `<prefix>members/<host>` | [`Member`]: what each agent sees | that agent's | each agent, every tick |
//! | `<prefix>switchover` | [`Switchover`]: a planned handover | none | `rampart-db switchover` |
//! | `<prefix>pause` | [`Pause`]: automatic failover off for maintenance | none | `rampart-db pause` / `resume` |
//!
//! The prefix is `/rampart/db/` unless configured otherwise.

use serde::{Deserialize, Serialize};

use crate::store::Snapshot;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "/rampart/db/";

/// The keys under one prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    pub prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        let mut prefix = prefix.to_string();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Keys { prefix }
    }
    pub fn leader(&self) -> String {
        format!("{}leader", self.prefix)
    }
    pub fn state(&self) -> String {
        format!("{}state", self.prefix)
    }
    pub fn position(&self) -> String {
        format!("{}position", self.prefix)
    }
    pub fn switchover(&self) -> String {
        format!("{}switchover", self.prefix)
    }
    pub fn pause(&self) -> String {
        format!("{}pause", self.prefix)
    }
    pub fn members(&self) -> String {
        format!("{}members/", self.prefix)
    }
    pub fn member(&self, host: &str) -> String {
        format!("{}members/{host}", self.prefix)
    }
}

/// The holder of the leader key: the one host allowed to be writable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Leader {
    pub host: String,
    pub term: u64,
}

/// The cluster's durable state: who led last, in which term, and which replicas are known
/// to hold every write that leader acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterState {
    /// Grows by one with every new leader.
    pub term: u64,
    /// The leader of this term (it may be down: then the leader key is gone).
    pub leader: String,
    /// Replicas that hold every write the leader acknowledged in this term; only these
    /// may take the lead when it is lost.
    pub sync: Vec<String>,
    /// Why the state last changed, for `status` and the logs.
    pub reason: String,
    /// When (milliseconds since the epoch).
    pub changed_ms: u64,
}

/// The leader's binlog position as last reported: what a promotion of a host that is not
/// in sync would lose is named from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    pub host: String,
    pub term: u64,
    pub gtid_binlog_pos: String,
    pub at_ms: u64,
}

/// One agent's view of its own host, published every tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub host: String,
    /// `leader`, `promoting`, `replica`, `fenced`, `diverged` or `down`.
    pub role: String,
    /// Its MariaDB answered the last health check.
    pub healthy: bool,
    pub read_only: Option<bool>,
    pub server_id: Option<String>,
    pub gtid_binlog_pos: String,
    pub gtid_current_pos: String,
    /// What it received from its source (`Gtid_IO_Pos`), replicas only.
    pub received: Option<String>,
    /// The address it replicates from.
    pub source: Option<String>,
    pub io_running: Option<String>,
    pub sql_running: Option<bool>,
    pub seconds_behind: Option<u64>,
    /// Whether the leader's writes wait for a replica (`rpl_semi_sync_master_enabled`).
    pub semi_sync_master: Option<bool>,
    /// What needs a human, or what it waits for.
    pub message: Option<String>,
    pub updated_ms: u64,
}

/// A planned switchover asked for by `rampart-db switchover --to HOST`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Switchover {
    pub to: String,
    pub requested_ms: u64,
}

/// Maintenance mode, asked for by `rampart-db pause` (Patroni's `pause`): no agent takes
/// the lead or forces `read_only`, so an operator may fence, restart or repair a server
/// by hand. The leader keeps renewing its lease and its writer gate while healthy: the
/// pause turns automation off, never the fencing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pause {
    pub reason: String,
    pub paused_ms: u64,
}

/// A key's JSON value, or why it is not one.
pub fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "etcd key {key} holds {:?}, not the JSON failover writes ({e}); delete it with etcdctl if it is stray",
            String::from_utf8_lossy(bytes)
        )
    })
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("failover records serialize")
}

/// Everything under the prefix, decoded; undecodable keys are listed as problems.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub revision: i64,
    /// The leader key, with its mod revision and lease.
    pub leader: Option<(Leader, i64, i64)>,
    /// The state key with its mod revision.
    pub state: Option<(ClusterState, i64)>,
    pub position: Option<Position>,
    pub members: Vec<Member>,
    pub switchover: Option<(Switchover, i64)>,
    pub pause: Option<Pause>,
    pub problems: Vec<String>,
}

impl View {
    pub fn from_snapshot(keys: &Keys, snapshot: &Snapshot) -> View {
        let mut view = View {
            revision: snapshot.revision,
            ..View::default()
        };
        for entry in &snapshot.entries {
            let key = entry.key.as_str();
            let mut problem = |e: String| view.problems.push(e);
            if key == keys.leader() {
                match decode::<Leader>(key, &entry.value) {
                    Ok(l) => view.leader = Some((l, entry.mod_revision, entry.lease)),
                    Err(e) => problem(e),
                }
            } else if key == keys.state() {
                match decode::<ClusterState>(key, &entry.value) {
                    Ok(s) => view.state = Some((s, entry.mod_revision)),
                    Err(e) => problem(e),
                }
            } else if key == keys.position() {
                match decode::<Position>(key, &entry.value) {
                    Ok(p) => view.position = Some(p),
                    Err(e) => problem(e),
                }
            } else if key == keys.switchover() {
                match decode::<Switchover>(key, &entry.value) {
                    Ok(s) => view.switchover = Some((s, entry.mod_revision)),
                    Err(e) => problem(e),
                }
            } else if key == keys.pause() {
                match decode::<Pause>(key, &entry.value) {
                    Ok(p) => view.pause = Some(p),
                    Err(e) => problem(e),
                }
            } else if key.starts_with(&keys.members()) {
                match decode::<Member>(key, &entry.value) {
                    Ok(m) => view.members.push(m),
                    Err(e) => problem(e),
                }
            }
        }
        view
    }

    pub fn member(&self, host: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.host == host)
    }

    pub fn term(&self) -> u64 {
        self.state.as_ref().map_or(0, |(s, _)| s.term)
    }

    pub fn leader_host(&self) -> Option<&str> {
        self.leader.as_ref().map(|(l, _, _)| l.host.as_str())
    }

    pub fn sync_set(&self) -> &[String] {
        self.state.as_ref().map_or(&[], |(s, _)| s.sync.as_slice())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Entry;

    #[test]
    fn a_snapshot_decodes_into_a_view_and_names_stray_keys() {
        let keys = Keys::new("/t");
        let entry = |key: String, value: Vec<u8>, rev: i64| Entry {
            key,
            value,
            create_revision: rev,
            mod_revision: rev,
            lease: 7,
        };
        let snapshot = Snapshot {
            revision: 9,
            entries: vec![
                entry(
                    keys.leader(),
                    encode(&Leader {
                        host: "web1".into(),
                        term: 3,
                    }),
                    5,
                ),
                entry(
                    keys.state(),
                    encode(&ClusterState {
                        term: 3,
                        leader: "web1".into(),
                        sync: vec!["web2".into()],
                        reason: "test".into(),
                        changed_ms: 1,
                    }),
                    6,
                ),
                entry(keys.member("web2"), b"not json".to_vec(), 8),
            ],
        };
        let view = View::from_snapshot(&keys, &snapshot);
        assert_eq!(keys.leader(), "/t/leader");
        assert_eq!(view.leader_host(), Some("web1"));
        assert_eq!(view.leader.as_ref().unwrap().1, 5);
        assert_eq!(view.term(), 3);
        assert_eq!(view.sync_set(), ["web2".to_string()]);
        assert_eq!(view.problems.len(), 1);
        assert!(
            view.problems[0].contains("/t/members/web2"),
            "{:?}",
            view.problems
        );
    }
}
