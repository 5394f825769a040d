//! Why a call to etcd failed.

use std::path::PathBuf;
use std::time::Duration;

use crate::LeaseId;

/// Why a call to etcd failed. Every message starts with `etcd:` and names what was
/// attempted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsensusError {
    /// The topology declares no such service (hosts/topology.json `services`).
    #[error("etcd: the topology has no service \"{service}\"; declare it in hosts/topology.json (docs/topology.md)")]
    MissingService { service: &'static str },

    /// A certificate, key or CA file could not be read.
    #[error("etcd: cannot read {} ({source})", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The client could not be set up (bad URL, unusable certificate or key).
    #[error("etcd: cannot connect to {urls}: {detail}")]
    Connect { urls: String, detail: String },

    /// No answer within the deadline: no member reachable, or no quorum (a member without
    /// a leader refuses at once with [`ConsensusError::Unavailable`] instead).
    #[error("etcd: {op} got no answer within {after:?} from {urls} (members down or unreachable, or no quorum)")]
    Timeout {
        op: String,
        after: Duration,
        urls: String,
    },

    /// The cluster answered that it cannot serve now: no leader, a request timed out
    /// inside etcd, a member shutting down, a connection refused.
    #[error("etcd: {op} failed: the cluster is unavailable ({detail})")]
    Unavailable { op: String, detail: String },

    /// The lease is gone: expired, or revoked. Whatever was attached to it is deleted.
    #[error("etcd: lease {lease} has expired or was revoked")]
    LeaseExpired { lease: LeaseId },

    /// A watch asked for history etcd has compacted away; read the current state and
    /// watch again from its revision.
    #[error("etcd: watch on {key} from revision {requested}: history before revision {compacted} is compacted; read the key again and watch from there")]
    Compacted {
        key: String,
        requested: i64,
        compacted: i64,
    },

    /// etcd ended a watch or a lease stream, or cancelled a watch.
    #[error("etcd: {what} ended: {reason}")]
    StreamEnded { what: String, reason: String },

    /// Any other refusal, with etcd's message (e.g. a request too large, permission
    /// denied, an invalid argument).
    #[error("etcd: {op} failed: {detail}")]
    Request { op: String, detail: String },
}

impl ConsensusError {
    /// Whether the failure says nothing about the data, only that etcd could not be asked
    /// (timeout, unavailable, connection): the caller cannot know the cluster's state and
    /// must behave as if it lost it (a leader fences itself).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            ConsensusError::Timeout { .. }
                | ConsensusError::Unavailable { .. }
                | ConsensusError::Connect { .. }
                | ConsensusError::StreamEnded { .. }
        )
    }

    /// Classifies an [`etcd_client::Error`] of operation `op`.
    pub(crate) fn from_etcd(op: &str, urls: &str, error: etcd_client::Error) -> ConsensusError {
        use etcd_client::Error as E;
        use tonic::Code;
        match error {
            // The codes etcd answers when it cannot serve now (etcdserver: no leader,
            // request timed out, leader changed, too many requests, server stopped),
            // against those about the request itself.
            E::GRpcStatus(status) => match status.code() {
                Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Aborted
                | Code::Cancelled
                | Code::ResourceExhausted
                | Code::Unknown => ConsensusError::Unavailable {
                    op: op.to_string(),
                    detail: status.message().to_string(),
                },
                _ => ConsensusError::Request {
                    op: op.to_string(),
                    detail: status.message().to_string(),
                },
            },
            E::TransportError(e) => ConsensusError::Unavailable {
                op: op.to_string(),
                detail: format!("{e} ({urls})"),
            },
            E::IoError(e) => ConsensusError::Unavailable {
                op: op.to_string(),
                detail: format!("{e} ({urls})"),
            },
            E::InvalidUri(e) => ConsensusError::Connect {
                urls: urls.to_string(),
                detail: e.to_string(),
            },
            E::LeaseKeepAliveError(e) | E::WatchError(e) => ConsensusError::StreamEnded {
                what: op.to_string(),
                reason: e,
            },
            other => ConsensusError::Request {
                op: op.to_string(),
                detail: other.to_string(),
            },
        }
    }
}
