//! # MariaDB operations of failover (issues #9, #14)
//!
//! What `rampart-db` does to the databases themselves, as a library so that the failover
//! agent (`rampart_failover`) and the lab run the very same steps. Who may be the primary
//! is decided in etcd by the agents, never here.
//!
//! - [`Failover::status`]: every database host's role, GTID positions, replication threads
//!   and semi-sync state, with findings (not exactly one writable host, broken replication,
//!   semi-sync waiting switched off).
//! - [`history_problems`] and [`change_master`]: whether a host may replicate from a new
//!   primary (its history a prefix of the primary's), and how.
//! - [`Failover::rejoin`]: lift the fence of a former primary, make it read-only, check that
//!   its history is a prefix of the new primary's, and replicate from the new primary with
//!   GTID auto-position (`MASTER_USE_GTID=slave_pos`) over verified TLS.
//! - [`Failover::fence`]: an operator's fence of a host (`read_only=1` when it answers, the
//!   [`fence`] firewall rule through a hook in any case).
//!
//! Why no data is lost: MariaDB's semi-synchronous replication with
//! `rpl_semi_sync_master_wait_point=AFTER_SYNC` acknowledges a commit to the client only
//! after the replica has written it to its relay log, and the agent records in etcd
//! whether that waiting is on (docs/failover.md).
//!
//! The client is the pure-Rust `mysql` crate (blackbeam/rust-mysql-simple, with rustls):
//! typed values and errors instead of parsing the `mariadb` CLI's text, connect/read
//! timeouts per session, no password on a command line or in the environment, and no
//! dependency on the client package being on the `PATH` of a systemd unit.

mod conn;
pub mod fence;
pub mod gtid;
mod ops;
pub mod report;

use std::path::PathBuf;
use std::time::Duration;

pub use conn::{
    read_secret, Access, Cluster, DbHost, HostState, ReplicaStatus, SemiSync, Session, TextRow,
    MYSQL_SERVICE,
};
pub use ops::{change_master, history_problems, Failover, CONNECT_RETRY_SECONDS};

/// The MariaDB account rampart-db logs in with (contracts.md "Failover").
pub const ADMIN_USER: &str = "rampart_failover";
/// Its password's file name in the secrets directory.
pub const ADMIN_PASSWORD_SECRET: &str = "failover-db-password";
/// The replication account a rejoined host uses (contracts.md "Failover").
pub const REPLICATION_USER: &str = "rampart_repl";
/// Its password's file name in the secrets directory (contracts.md "Secrets").
pub const REPLICATION_PASSWORD_SECRET: &str = "replication-password";

/// The privileges of [`ADMIN_USER`], the least that status, promote, fence and rejoin
/// need on MariaDB 10.11: `READ_ONLY ADMIN` to set `read_only`, `REPLICATION SLAVE
/// ADMIN` for `STOP`/`RESET`/`CHANGE MASTER`/`START SLAVE` and `gtid_slave_pos`,
/// `REPLICA MONITOR` for `SHOW SLAVE STATUS`, `BINLOG MONITOR` for the binlog position,
/// `RELOAD` for `RESET SLAVE ALL` (it deletes relay logs). It holds no data privilege: it
/// never reads or writes application rows.
pub const ADMIN_GRANTS: &str =
    "READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, REPLICA MONITOR, BINLOG MONITOR, RELOAD";

/// Everything a failover operation needs besides the topology.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How rampart-db itself logs in to each database host.
    pub access: Access,
    pub replication_user: String,
    pub replication_password_file: PathBuf,
    /// The PKI directory *on the rejoining host* (`{host}` is replaced by its name): the
    /// `MASTER_SSL_CA/CERT/KEY` paths of `CHANGE MASTER` are read by that host's server.
    pub replica_pki_dir: String,
    /// Applies and lifts the firewall fence; `None` leaves fencing to `read_only` alone
    /// (reported as a warning on every promotion).
    pub hook: Option<fence::Hook>,
    /// How long promotion waits for the candidate to apply what it received, and rejoin
    /// for the rejoined host to catch up.
    pub catch_up_timeout: Duration,
}

/// Why a failover operation could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The topology has no usable database pair.
    #[error("rampart-db: {0}")]
    Topology(String),
    #[error("rampart-db: {name:?} is not a database host (expected one of: {}); database hosts have role databasePrimary or databaseReplica in topology.json", known.join(", "))]
    UnknownHost { name: String, known: Vec<String> },
    #[error("rampart-db: cannot read secret {}: {source}; create it (one value, mode 0600) or pass another path", path.display())]
    Secret {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("rampart-db: cannot connect to {host} ({address}): {message}; check that MariaDB runs there, that this host may reach it, and the CA and password")]
    Connect {
        host: String,
        address: String,
        message: String,
    },
    #[error("rampart-db: {host}: `{statement}` failed: {message}")]
    Query {
        host: String,
        statement: String,
        message: String,
    },
    #[error("rampart-db: {host}: unexpected {what} (got {got}, expected {expected})")]
    Unexpected {
        host: String,
        what: String,
        got: String,
        expected: String,
    },
    /// Arguments that name an impossible operation.
    #[error("rampart-db: {0}")]
    Usage(String),
}
