//! # Automatic failover of the MariaDB pair on etcd (issue #14)
//!
//! Patroni's design for MariaDB: leadership lives in etcd, not in the databases.
//!
//! - [`agent`]: the agent on every database host (`rampart-db agent`): a leader key with
//!   a lease, kept only while the local MariaDB is healthy; the writer [`gate`] that the
//!   kernel closes before the lease can expire ([`timing`]); the sync set recorded in etcd;
//!   takeover only by a replica in that set; rejoin only of a prefix history.
//! - [`manual`]: what people run: `status` (etcd health, leader, term, sync set, lag),
//!   `switchover --to HOST`, and manual promotion that refuses to lose acknowledged
//!   writes unless told so explicitly.
//! - [`record`]: the keys and values in etcd; [`store`]: the etcd client calls.
//!
//! docs/failover.md has the design, its reasons and the faults each policy survives.

pub mod agent;
pub mod gate;
pub mod manual;
pub mod record;
pub mod store;
pub mod timing;

pub use agent::{Agent, AgentConfig};
pub use timing::Timing;

/// `rpl_semi_sync_master_timeout` the agent sets on a leader: about a year, i.e. MariaDB
/// never stops waiting for the replica on its own; the agent decides (policy).
pub const SEMI_SYNC_TIMEOUT_MS: u64 = 31_536_000_000;

/// What the leader does when its sync replica stops acknowledging writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Writes wait for the replica, however long: nothing acknowledged ever exists on one
    /// host only. Costs write availability whenever the replica is away.
    Strict,
    /// After [`Timing::sync_grace`] of waiting, the leader first records the replica out
    /// of sync in etcd, then writes go on without it; that replica is not promoted until
    /// it caught up and is recorded in sync again. Patroni's default, and ours.
    Available,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Strict => "strict",
            Policy::Available => "available",
        }
    }

    pub fn parse(text: &str) -> Result<Policy, String> {
        match text {
            "strict" => Ok(Policy::Strict),
            "available" => Ok(Policy::Available),
            other => Err(format!(
                "policy {other:?} is not known (expected \"strict\" or \"available\")"
            )),
        }
    }
}

/// Why failover could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FailoverError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Database(rampart_database::DbError),
    #[error(transparent)]
    Gate(#[from] gate::GateError),
    #[error("rampart-db: {0}")]
    Usage(String),
}
