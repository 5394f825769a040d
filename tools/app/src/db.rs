//! The visit log in MariaDB: writes on the primary, reads on the replica when it has them.
//!
//! Every connection uses TLS verified against the rampart CA only (no built-in roots) and
//! checks the server's certificate against the host we connect to (its address or name,
//! both in the `mysql` certificate, docs/contracts.md). One connection pool per server;
//! a pool whose server failed is dropped, so the next request connects afresh (and reads
//! the password file again).
//!
//! The table is created by the application on the primary when it is missing, so a new
//! deployment needs no migration step; the application's user needs `SELECT`, `INSERT`
//! and `CREATE` on its database.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Pool, PoolConstraints, PoolOpts, SslOpts};

use crate::lock;
use crate::primary::{self, Endpoint, LocateError, PrimaryLocator, ProbeAnswer, ProbeError};
use crate::requests::{self, RequestId};

/// Which server an operation went to; the `server` label of the error counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// The current primary (writes, and reads the replica could not answer).
    Primary,
    /// The local replica (reads).
    Replica,
}

impl Server {
    /// The label value: `primary` or `replica`.
    pub fn label(self) -> &'static str {
        match self {
            Server::Primary => "primary",
            Server::Replica => "replica",
        }
    }
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// How to reach and log in to the database; everything but the servers.
#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// The database (schema) holding the `visits` table.
    pub name: String,
    /// The application's MariaDB user.
    pub user: String,
    /// The runtime file holding its password (never the password itself).
    pub password_file: PathBuf,
    /// The rampart CA certificate (PEM) every server certificate must chain to.
    pub ca_file: PathBuf,
    /// How long a connection may take before the server counts as unreachable.
    pub connect_timeout: Duration,
    /// How long a write may take in all. A primary that hangs (paused, or fenced while a
    /// commit waits for its replica) answers nothing; after this the write's outcome is
    /// unknown and the client hears so (issue #14).
    pub write_timeout: Duration,
}

/// Why a database operation failed. Each message names the server and says what to check.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The primary's location is unknown.
    #[error("database: {0}")]
    Locate(#[from] LocateError),
    /// The read_only probe found no single writable host.
    #[error("database: {0}")]
    Probe(#[from] ProbeError),
    /// The password file could not be read.
    #[error("database: cannot read the password file {path}: {source}; provide the app-db-password secret there")]
    Password {
        /// The password file.
        path: PathBuf,
        /// What reading it gave.
        source: io::Error,
    },
    /// No connection within the timeout.
    #[error("database: {server} {endpoint} did not answer within {timeout:?}; check that it runs and that the firewall lets this host reach it")]
    Timeout {
        /// Which server.
        server: Server,
        /// Where.
        endpoint: Endpoint,
        /// The connect timeout.
        timeout: Duration,
    },
    /// A write did not complete in time: it may or may not have been committed.
    #[error("database: the write to the primary did not complete within {timeout:?}; its outcome is unknown (the primary may be hung or fenced)")]
    WriteTimeout {
        /// The write timeout.
        timeout: Duration,
    },
    /// The server (or the TLS handshake with it) failed.
    #[error("database: {server} {endpoint}: {source}")]
    Server {
        /// Which server.
        server: Server,
        /// Where.
        endpoint: Endpoint,
        /// The driver's error (TLS verification, authentication, SQL, I/O …).
        source: mysql_async::Error,
    },
}

impl DbError {
    /// The server the error came from, for the error counter.
    pub fn server(&self) -> Server {
        match self {
            DbError::Server { server, .. } | DbError::Timeout { server, .. } => *server,
            DbError::Locate(_)
            | DbError::Probe(_)
            | DbError::Password { .. }
            | DbError::WriteTimeout { .. } => Server::Primary,
        }
    }
}

/// A visit as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Visit {
    /// Its number: given by the client, or the next free one.
    pub seq: u64,
    /// The host that recorded it.
    pub served_by: String,
    /// When it was recorded (UTC, RFC 3339 with microseconds).
    pub visited_at: String,
    /// The server that committed this write, when this request wrote it: what a history
    /// checker needs to see that no two servers took writes at once (issue #14).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed: Option<Committed>,
    /// The client's request id, when the write carried one ([`crate::requests`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Which server committed a write: its `server_id` and the write's GTID.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Committed {
    /// `@@server_id` of the primary that committed it.
    pub server_id: u32,
    /// `@@last_gtid` of the session right after the commit (`domain-server-seq`).
    pub gtid: String,
}

/// The server and GTID of the write this session just committed.
async fn committed_by(conn: &mut Conn) -> Result<Option<Committed>, mysql_async::Error> {
    let row: Option<(u32, String)> = conn.query_first("SELECT @@server_id, @@last_gtid").await?;
    Ok(row.map(|(server_id, gtid)| Committed { server_id, gtid }))
}

/// How long the read_only probe waits for the other candidates once one answered writable
/// (see [`Database::primary`]).
const PROBE_GRACE: Duration = Duration::from_millis(500);

/// How often a write that found no writable primary asks again (within its write timeout).
const PROBE_AGAIN: Duration = Duration::from_millis(250);

/// The database as the application uses it.
pub struct Database {
    config: DatabaseConfig,
    primary: PrimaryLocator,
    replica: Option<Endpoint>,
    pools: Mutex<HashMap<Endpoint, PoolEntry>>,
    /// The probe's last answer ([`PrimaryLocator::Probe`]); cleared when a write fails.
    probed: Mutex<Option<Endpoint>>,
}

struct PoolEntry {
    pool: Pool,
    /// Whether the `visits` table is known to exist on this server.
    schema_ready: bool,
}

fn create_table() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS visits (
    seq BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    served_by VARCHAR(63) NOT NULL,
    visited_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    {}
) ENGINE=InnoDB",
        requests::COLUMN_DEFINITION
    )
}
const TABLE_EXISTS: &str =
    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'visits'";
const SELECT_VISIT: &str = "SELECT seq, served_by, DATE_FORMAT(visited_at, '%Y-%m-%dT%H:%i:%s.%fZ'), request_id FROM visits WHERE seq = ?";

impl Database {
    /// A database with a primary (located per write) and an optional replica for reads.
    /// Connects lazily: the application serves `GET /` even while no server answers.
    pub fn new(config: DatabaseConfig, primary: PrimaryLocator, replica: Option<Endpoint>) -> Self {
        Database {
            config,
            primary,
            replica,
            pools: Mutex::new(HashMap::new()),
            probed: Mutex::new(None),
        }
    }

    /// Where writes go now. With a probe, the last answer unless `again`; a new probe
    /// asks every candidate `SELECT @@global.read_only` (docs/contracts.md "Failover").
    async fn primary(&self, again: bool) -> Result<Endpoint, DbError> {
        if let Some(endpoint) = self.primary.locate()? {
            return Ok(endpoint);
        }
        let candidates: &[Endpoint] = match &self.primary {
            PrimaryLocator::Probe(candidates) => candidates,
            _ => &[],
        };
        if !again {
            if let Some(known) = lock(&self.probed).clone() {
                return Ok(known);
            }
        }
        // Every candidate at once, and no longer than PROBE_GRACE past the first writable
        // answer: a lost primary that drops packets would otherwise hold every probe for a
        // whole connect timeout after the new primary answered (partition-primary's write
        // unavailability reached 10.5 s). A live host answers within milliseconds; one that
        // has not answered by then counts as unreachable, as it would for a write.
        //
        // A host that answered read-only may be the one taking over: while a first answer
        // is still missing (a silent old primary holds the probe up to the connect
        // timeout), it is asked again every PROBE_AGAIN, so that its promotion is seen at
        // once rather than at the next probe (up to 2.5 s later, measured).
        let ask = |index: usize, first: bool| {
            let candidate = &candidates[index];
            async move {
                if !first {
                    tokio::time::sleep(PROBE_AGAIN).await;
                }
                // Bounded: a pooled connection to a host cut off would wait for TCP to give up.
                let timeout = self.config.connect_timeout;
                let answer = tokio::time::timeout(timeout, self.read_only(candidate))
                    .await
                    .unwrap_or_else(|_| {
                        Err(DbError::Timeout {
                            server: Server::Primary,
                            endpoint: candidate.clone(),
                            timeout,
                        })
                    });
                (index, first, answer)
            }
        };
        let mut pending: FuturesUnordered<_> = (0..candidates.len())
            .map(|index| ask(index, true))
            .collect();
        let mut first_answers_missing = candidates.len();
        let mut asked: Vec<Option<Result<bool, DbError>>> =
            candidates.iter().map(|_| None).collect();
        let mut grace_ends: Option<tokio::time::Instant> = None;
        loop {
            let next = match grace_ends {
                None => pending.next().await,
                Some(deadline) => tokio::time::timeout_at(deadline, pending.next())
                    .await
                    .unwrap_or(None),
            };
            let Some((index, first, answer)) = next else {
                break;
            };
            if first {
                first_answers_missing -= 1;
            }
            let read_only = matches!(answer, Ok(true));
            if matches!(answer, Ok(false)) && grace_ends.is_none() {
                grace_ends = Some(tokio::time::Instant::now() + PROBE_GRACE);
            }
            asked[index] = Some(answer);
            if read_only && grace_ends.is_none() && first_answers_missing > 0 {
                pending.push(ask(index, false));
            }
        }
        drop(pending);
        let mut answers = Vec::with_capacity(candidates.len());
        for (candidate, asked) in candidates.iter().zip(asked) {
            let answer = match asked {
                Some(Ok(true)) => ProbeAnswer::ReadOnly,
                Some(Ok(false)) => ProbeAnswer::Writable,
                Some(Err(error)) => {
                    self.forget(candidate);
                    ProbeAnswer::Unreachable(error.to_string())
                }
                None => {
                    self.forget(candidate);
                    ProbeAnswer::Unreachable(format!(
                        "no answer within {} ms of a writable host's",
                        PROBE_GRACE.as_millis()
                    ))
                }
            };
            answers.push((candidate.clone(), answer));
        }
        let chosen = primary::choose(answers);
        *lock(&self.probed) = chosen.as_ref().ok().cloned();
        Ok(chosen?)
    }

    /// `SELECT @@global.read_only` on one candidate (any user may ask).
    async fn read_only(&self, endpoint: &Endpoint) -> Result<bool, DbError> {
        let mut conn = self.connect(endpoint, Server::Primary).await?;
        let flag: Option<u8> = conn
            .query_first("SELECT @@global.read_only")
            .await
            .map_err(|source| DbError::Server {
                server: Server::Primary,
                endpoint: endpoint.clone(),
                source,
            })?;
        Ok(flag != Some(0))
    }

    /// Records a visit on the primary. With `seq`, the write is idempotent: a visit
    /// already stored under that number is left as it is (`created` is then false), so
    /// a client may retry a write whose answer it lost. `request` is stored with it as
    /// given (never deduplicated, [`crate::requests`]).
    pub async fn record_visit(
        &self,
        seq: Option<u64>,
        request: Option<&RequestId>,
        served_by: &str,
    ) -> Result<(Visit, bool), DbError> {
        let timeout = self.config.write_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = || DbError::WriteTimeout { timeout };
        let mut endpoint = self.primary_for_write(false, deadline).await?;
        // One retry, only when the primary moved while this write was failing: the
        // failover case. A primary that is simply down fails fast instead.
        let mut retried = false;
        loop {
            let attempt = tokio::time::timeout_at(
                deadline,
                self.record_on(&endpoint, seq, request, served_by),
            )
            .await;
            let error = match attempt {
                Ok(Ok(done)) => return Ok(done),
                Ok(Err(error)) => error,
                Err(_) => timed_out(),
            };
            // Failed or silent (a primary cut off drops packets: its pooled connections
            // hang): the next write asks afresh instead of waiting on it again.
            self.forget(&endpoint);
            lock(&self.probed).take();
            if retried {
                return Err(error);
            }
            // No writable host: that answer says more than the write's own error.
            let now = self.primary_for_write(true, deadline).await?;
            if now == endpoint {
                return Err(error);
            }
            retried = true;
            endpoint = now;
        }
    }

    /// The primary for a write: [`Database::primary`], asked again every [`PROBE_AGAIN`]
    /// while no candidate answers writable, until `deadline`. In a failover the new
    /// primary becomes writable seconds after the old one went silent; a write that waits
    /// for it succeeds, where answering 503 at once sent the client away and back
    /// (partition-primary's unavailability, docs/failover.md). At the deadline the last
    /// probe's answer is the error: nothing was sent, so the outcome is known.
    async fn primary_for_write(
        &self,
        again: bool,
        deadline: tokio::time::Instant,
    ) -> Result<Endpoint, DbError> {
        let mut again = again;
        let mut last = None;
        loop {
            let Ok(found) = tokio::time::timeout_at(deadline, self.primary(again)).await else {
                return Err(last.unwrap_or(DbError::WriteTimeout {
                    timeout: self.config.write_timeout,
                }));
            };
            match found {
                Err(DbError::Probe(e)) if tokio::time::Instant::now() + PROBE_AGAIN < deadline => {
                    last = Some(DbError::Probe(e));
                    tokio::time::sleep(PROBE_AGAIN).await;
                    again = true;
                }
                found => return found,
            }
        }
    }

    async fn record_on(
        &self,
        endpoint: &Endpoint,
        seq: Option<u64>,
        request: Option<&RequestId>,
        served_by: &str,
    ) -> Result<(Visit, bool), DbError> {
        let mut conn = self.connect(endpoint, Server::Primary).await?;
        let failed = |source| DbError::Server {
            server: Server::Primary,
            endpoint: endpoint.clone(),
            source,
        };
        if !self.schema_ready(endpoint) {
            let exists: Option<u64> = conn.query_first(TABLE_EXISTS).await.map_err(failed)?;
            if exists != Some(1) {
                conn.query_drop(create_table()).await.map_err(failed)?;
            }
            // A table made before request ids existed gets the column once.
            let column: Option<u64> = conn
                .query_first(requests::COLUMN_EXISTS)
                .await
                .map_err(failed)?;
            if column != Some(1) {
                conn.query_drop(requests::ADD_COLUMN)
                    .await
                    .map_err(failed)?;
            }
            self.mark_schema_ready(endpoint);
        }
        let (seq, created) = match seq {
            Some(seq) => {
                // A duplicate key (1062) is the retry of a write that already landed; plain
                // INSERT keeps the grant at INSERT (ON DUPLICATE KEY UPDATE needs UPDATE).
                let insert = conn
                    .exec_drop(
                        "INSERT INTO visits (seq, served_by, request_id) VALUES (?, ?, ?)",
                        (seq, served_by, request.map(RequestId::as_str)),
                    )
                    .await;
                match insert {
                    Ok(()) => (seq, true),
                    Err(mysql_async::Error::Server(e)) if e.code == 1062 => (seq, false),
                    Err(source) => return Err(failed(source)),
                }
            }
            None => {
                conn.exec_drop(
                    "INSERT INTO visits (served_by, request_id) VALUES (?, ?)",
                    (served_by, request.map(RequestId::as_str)),
                )
                .await
                .map_err(failed)?;
                let seq = conn.last_insert_id().ok_or_else(|| {
                    failed(mysql_async::Error::Other(
                        "INSERT returned no insert id".into(),
                    ))
                })?;
                (seq, true)
            }
        };
        let committed = if created {
            committed_by(&mut conn).await.map_err(failed)?
        } else {
            None
        };
        let visit = select_visit(&mut conn, seq).await.map_err(failed)?;
        let visit = visit.map(|v| Visit { committed, ..v });
        let visit = visit.ok_or_else(|| {
            failed(mysql_async::Error::Other(
                format!("visit {seq} vanished after its INSERT").into(),
            ))
        })?;
        Ok((visit, created))
    }

    /// Reads a visit: from the replica when there is one and it has the visit (it may lag
    /// behind the primary), else from the primary. Returns which server answered; a
    /// replica error is returned alongside so that it can be counted.
    pub async fn read_visit(
        &self,
        seq: u64,
    ) -> Result<(Option<Visit>, Server, Option<DbError>), DbError> {
        let mut replica_error = None;
        if let Some(replica) = &self.replica {
            match self.read_on(replica, Server::Replica, seq).await {
                Ok(Some(visit)) => return Ok((Some(visit), Server::Replica, None)),
                Ok(None) => {}
                Err(error) => {
                    self.forget(replica);
                    replica_error = Some(error);
                }
            }
        }
        let primary = self.primary(false).await?;
        match self.read_on(&primary, Server::Primary, seq).await {
            Ok(visit) => Ok((visit, Server::Primary, replica_error)),
            Err(error) => {
                self.forget(&primary);
                Err(error)
            }
        }
    }

    async fn read_on(
        &self,
        endpoint: &Endpoint,
        server: Server,
        seq: u64,
    ) -> Result<Option<Visit>, DbError> {
        let mut conn = self.connect(endpoint, server).await?;
        match select_visit(&mut conn, seq).await {
            Ok(visit) => Ok(visit),
            // A fresh primary whose table the first write has not created yet.
            Err(mysql_async::Error::Server(e)) if e.code == 1146 => Ok(None),
            Err(source) => Err(DbError::Server {
                server,
                endpoint: endpoint.clone(),
                source,
            }),
        }
    }

    /// Closes every pool (on shutdown).
    pub async fn disconnect(&self) {
        let pools: Vec<Pool> = lock(&self.pools)
            .drain()
            .map(|(_, entry)| entry.pool)
            .collect();
        for pool in pools {
            // A server that is gone cannot be told goodbye; nothing else to do.
            let _ = pool.disconnect().await;
        }
    }

    async fn connect(&self, endpoint: &Endpoint, server: Server) -> Result<Conn, DbError> {
        let pool = self.pool(endpoint)?;
        match tokio::time::timeout(self.config.connect_timeout, pool.get_conn()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(source)) => Err(DbError::Server {
                server,
                endpoint: endpoint.clone(),
                source,
            }),
            Err(_) => Err(DbError::Timeout {
                server,
                endpoint: endpoint.clone(),
                timeout: self.config.connect_timeout,
            }),
        }
    }

    fn pool(&self, endpoint: &Endpoint) -> Result<Pool, DbError> {
        if let Some(entry) = lock(&self.pools).get(endpoint) {
            return Ok(entry.pool.clone());
        }
        let password = read_password(&self.config.password_file)?;
        let ssl = SslOpts::default()
            .with_root_certs(vec![self.config.ca_file.clone().into()])
            .with_disable_built_in_roots(true);
        let constraints = PoolConstraints::new(0, 16).expect("0 <= 16 is a valid pool size");
        let opts = OptsBuilder::default()
            .ip_or_hostname(endpoint.host.clone())
            .tcp_port(endpoint.port)
            .user(Some(self.config.user.clone()))
            .pass(Some(password))
            .db_name(Some(self.config.name.clone()))
            .ssl_opts(Some(ssl))
            // Never switch to a Unix socket behind our back: the connection must stay TLS.
            .prefer_socket(false)
            .pool_opts(PoolOpts::default().with_constraints(constraints))
            .init(vec!["SET time_zone = '+00:00'"]);
        let pool = Pool::new(opts);
        lock(&self.pools).insert(
            endpoint.clone(),
            PoolEntry {
                pool: pool.clone(),
                schema_ready: false,
            },
        );
        Ok(pool)
    }

    fn forget(&self, endpoint: &Endpoint) {
        if let Some(entry) = lock(&self.pools).remove(endpoint) {
            // Disconnecting waits for connections in use; let it finish in the background.
            tokio::spawn(async move {
                let _ = entry.pool.disconnect().await;
            });
        }
    }

    fn schema_ready(&self, endpoint: &Endpoint) -> bool {
        lock(&self.pools)
            .get(endpoint)
            .is_some_and(|entry| entry.schema_ready)
    }

    fn mark_schema_ready(&self, endpoint: &Endpoint) {
        if let Some(entry) = lock(&self.pools).get_mut(endpoint) {
            entry.schema_ready = true;
        }
    }
}

async fn select_visit(conn: &mut Conn, seq: u64) -> Result<Option<Visit>, mysql_async::Error> {
    let row: Option<(u64, String, String, Option<String>)> =
        conn.exec_first(SELECT_VISIT, (seq,)).await?;
    Ok(row.map(|(seq, served_by, visited_at, request_id)| Visit {
        seq,
        served_by,
        visited_at,
        committed: None,
        request_id,
    }))
}

/// The password: the file's content without one trailing newline (secret files may or
/// may not end with one, docs/contracts.md).
fn read_password(path: &PathBuf) -> Result<String, DbError> {
    let text = std::fs::read_to_string(path).map_err(|source| DbError::Password {
        path: path.clone(),
        source,
    })?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text.strip_suffix('\r').unwrap_or(text).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_loses_one_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app-db-password");
        for (content, expected) in [
            ("s3cret", "s3cret"),
            ("s3cret\n", "s3cret"),
            ("s3cret\r\n", "s3cret"),
            (" s \n\n", " s \n"),
        ] {
            std::fs::write(&path, content).unwrap();
            assert_eq!(read_password(&path).unwrap(), expected);
        }
    }

    #[test]
    fn unreadable_password_names_the_file() {
        let error = read_password(&PathBuf::from("/nonexistent/app-db-password")).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("/nonexistent/app-db-password"),
            "{message}"
        );
        assert!(message.contains("app-db-password secret"), "{message}");
    }
}
