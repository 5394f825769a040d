//! Cluster health, member by member (`rampart-db status`, the lab's readiness).

use std::collections::BTreeMap;

use crate::client::{Consensus, Retry};
use crate::config::{ClientConfig, Member};
use crate::Result;

/// What one member says about itself.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// etcd's id of the member (hexadecimal, as etcdctl prints it).
    pub id: String,
    /// The member it follows as raft leader, by name (`None`: it has no leader).
    pub leader: Option<String>,
    pub raft_term: u64,
    pub raft_index: u64,
    pub version: String,
    pub db_size_bytes: i64,
    /// Alarms and errors the member reports (e.g. "NOSPACE").
    pub errors: Vec<String>,
}

/// One member's health.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberHealth {
    pub name: String,
    pub url: String,
    /// Its status, or why it could not be asked.
    pub status: std::result::Result<MemberStatus, String>,
}

impl MemberHealth {
    /// Reachable, with a leader and no errors.
    pub fn healthy(&self) -> bool {
        matches!(&self.status, Ok(s) if s.leader.is_some() && s.errors.is_empty())
    }
}

/// The cluster as its members see it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterHealth {
    pub members: Vec<MemberHealth>,
    /// The raft leader the most members follow, by name.
    pub leader: Option<String>,
    /// Whether a linearizable read through the whole cluster succeeded: a quorum is up
    /// and agrees on a leader, so writes and lease renewals can succeed.
    pub quorum: bool,
    /// Why the quorum read failed, if it did.
    pub quorum_error: Option<String>,
}

impl ClusterHealth {
    /// A quorum, and every member healthy.
    pub fn all_healthy(&self) -> bool {
        self.quorum && self.members.iter().all(MemberHealth::healthy)
    }
}

/// Asks every member of `config` for its status (each over its own connection, within
/// the request timeout), then reads one key linearizably through all of them to prove a
/// quorum. Never fails: what could not be asked is in the result.
pub async fn cluster_health(config: &ClientConfig) -> ClusterHealth {
    // Concurrently: one member's timeout must not delay the others'.
    let asks: Vec<_> = config
        .members
        .iter()
        .map(|member| {
            let (config, member) = (config.clone(), member.clone());
            tokio::spawn(async move { member_status(&config, &member).await })
        })
        .collect();
    let mut statuses = Vec::with_capacity(asks.len());
    for ask in asks {
        statuses.push(ask.await.unwrap_or_else(|e| {
            Err(crate::ConsensusError::Request {
                op: "member status".into(),
                detail: e.to_string(),
            })
        }));
    }
    // etcd's member ids → names, from any member that answered.
    let names: BTreeMap<u64, String> = statuses
        .iter()
        .flat_map(|s| s.as_ref().ok())
        .flat_map(|(_, _, list)| list.iter().cloned())
        .collect();
    let mut votes: BTreeMap<String, usize> = BTreeMap::new();
    let members: Vec<MemberHealth> = config
        .members
        .iter()
        .zip(statuses)
        .map(|(member, status)| MemberHealth {
            name: member.name.clone(),
            url: member.url.clone(),
            status: status
                .map(|(mut status, leader_id, _)| {
                    status.leader = (leader_id != 0).then(|| {
                        names
                            .get(&leader_id)
                            .cloned()
                            .unwrap_or_else(|| format!("{leader_id:x}"))
                    });
                    if let Some(leader) = &status.leader {
                        *votes.entry(leader.clone()).or_default() += 1;
                    }
                    status
                })
                .map_err(|e| e.to_string()),
        })
        .collect();
    let leader = votes
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(name, _)| name);
    let quorum_read = async {
        let etcd = Consensus::connect(config).await?;
        etcd.get("/rampart/health").await
    };
    let (quorum, quorum_error) = match quorum_read.await {
        Ok(_) => (true, None),
        Err(e) => (false, Some(e.to_string())),
    };
    ClusterHealth {
        members,
        leader,
        quorum,
        quorum_error,
    }
}

/// Hands etcd's raft leadership to the member named `to` (etcd's `MoveLeader`, sent to
/// the current leader, which alone may transfer it); nothing to do if `to` leads already.
/// The lab uses it to choose which member survives a fault as the leader.
pub async fn move_leader(config: &ClientConfig, to: &str) -> Result<()> {
    let health = cluster_health(config).await;
    let request = |detail: String| crate::ConsensusError::Request {
        op: format!("move the raft leadership to {to}"),
        detail,
    };
    let leader = health
        .leader
        .ok_or_else(|| request("no member knows a leader".into()))?;
    if leader == to {
        return Ok(());
    }
    let target = health
        .members
        .iter()
        .find(|m| m.name == to)
        .and_then(|m| m.status.as_ref().ok())
        .and_then(|s| u64::from_str_radix(&s.id, 16).ok())
        .ok_or_else(|| request(format!("{to} is not a member that answers")))?;
    let leader_member = config
        .members
        .iter()
        .find(|m| m.name == leader)
        .ok_or_else(|| {
            request(format!(
                "the leader {leader} is not in the client's members"
            ))
        })?;
    let etcd = Consensus::connect(&config.only(leader_member)).await?;
    etcd.call(
        format!("move the raft leadership from {leader} to {to}"),
        Retry::Always,
        |mut c| async move { c.move_leader(target).await },
    )
    .await
    .map(|_| ())
}

/// One member's status, its leader's id, and the member list it knows (id, name).
async fn member_status(
    config: &ClientConfig,
    member: &Member,
) -> Result<(MemberStatus, u64, Vec<(u64, String)>)> {
    let one = config.only(member);
    let etcd = Consensus::connect(&one).await?;
    // Status is served by the member itself, leader or not.
    let status = etcd
        .call(
            format!("status of {}", member.name),
            Retry::Always,
            |mut c| async move { c.status().await },
        )
        .await?;
    let list = etcd
        .call(
            format!("member list from {}", member.name),
            Retry::Always,
            |mut c| async move { c.member_list().await },
        )
        .await
        .map(|l| {
            l.members()
                .iter()
                .map(|m| (m.id(), m.name().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let id = status.header().map_or(0, |h| h.member_id());
    Ok((
        MemberStatus {
            id: format!("{id:x}"),
            leader: None,
            raft_term: status.raft_term(),
            raft_index: status.raft_index(),
            version: status.version().to_string(),
            db_size_bytes: status.db_size(),
            errors: status.errors().to_vec(),
        },
        status.leader(),
        list,
    ))
}
