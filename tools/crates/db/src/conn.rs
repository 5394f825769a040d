//! Connections to the database hosts and what failover reads from them.
//!
//! Every connection is TLS, verified against the rampart CA (the server certificate's SAN
//! holds the host address, which is what we connect to), with the failover user's
//! password read from a runtime secret file. Timeouts are short and explicit: a host that
//! does not answer within `connect_timeout` counts as unreachable, which is what a dead
//! primary looks like.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

use super::gtid::{GtidParseError, GtidPos};
use super::DbError;
use rampart_topology::{Role, Topology};

/// The database hosts of a topology and the port MariaDB listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    pub hosts: Vec<DbHost>,
    pub port: u16,
}

/// One database host: its topology name, address, and whether the topology declares it
/// the primary (the *declared* primary; after a failover the live one may differ).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbHost {
    pub name: String,
    pub address: Ipv4Addr,
    pub declared_primary: bool,
}

/// The service in topology.json whose port MariaDB listens on.
pub const MYSQL_SERVICE: &str = "mysql";

impl Cluster {
    /// The hosts with role `databasePrimary` or `databaseReplica`, in topology order.
    pub fn from_topology(topology: &Topology) -> Result<Cluster, DbError> {
        let hosts: Vec<DbHost> = topology
            .database_hosts()
            .map(|h| DbHost {
                name: h.name.clone(),
                address: h.address,
                declared_primary: h.has_role(Role::DatabasePrimary),
            })
            .collect();
        if hosts.len() < 2 {
            return Err(DbError::Topology(format!(
                "hosts: failover needs at least two database hosts (got {}, expected a \
                 databasePrimary and at least one databaseReplica); add a replica to topology.json",
                hosts.len()
            )));
        }
        let port = topology
            .services
            .get(MYSQL_SERVICE)
            .map(|s| s.port)
            .ok_or_else(|| {
                DbError::Topology(format!(
                    "services: no service named {MYSQL_SERVICE:?} (expected the MariaDB port); \
                     add services.{MYSQL_SERVICE} to topology.json"
                ))
            })?;
        Ok(Cluster { hosts, port })
    }

    /// The database host called `name`, or an error listing the valid names.
    pub fn host(&self, name: &str) -> Result<&DbHost, DbError> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| DbError::UnknownHost {
                name: name.to_string(),
                known: self.names(),
            })
    }

    /// The database host with this address, if any.
    pub fn by_address(&self, address: &str) -> Option<&DbHost> {
        self.hosts
            .iter()
            .find(|h| h.address.to_string() == address || h.name == address)
    }

    pub fn names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name.clone()).collect()
    }
}

/// How to log in to a database host.
#[derive(Clone, Debug)]
pub struct Access {
    /// The CA that issued every host's `mysql` certificate.
    pub ca: PathBuf,
    pub user: String,
    pub password: String,
    /// A host that does not complete the handshake within this is unreachable.
    pub connect_timeout: Duration,
    /// Bounds every statement except the explicit waits.
    pub io_timeout: Duration,
}

/// Reads a one-value secret file (contracts.md "Secrets"); one trailing newline is dropped.
pub fn read_secret(path: &Path) -> Result<String, DbError> {
    let text = std::fs::read_to_string(path).map_err(|source| DbError::Secret {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text)
        .to_string())
}

/// An open session on one database host.
pub struct Session {
    pub host: String,
    conn: mysql::Conn,
}

impl Session {
    /// Connects over verified TLS; any failure is [`DbError::Connect`].
    pub fn open(host: &DbHost, port: u16, access: &Access) -> Result<Session, DbError> {
        let ssl = mysql::SslOpts::default().with_root_cert_path(Some(access.ca.clone()));
        let opts = mysql::OptsBuilder::new()
            .ip_or_hostname(Some(host.address.to_string()))
            .tcp_port(port)
            .user(Some(access.user.clone()))
            .pass(Some(access.password.clone()))
            // The socket is never the host we asked for (and never TLS).
            .prefer_socket(false)
            .ssl_opts(ssl)
            .tcp_connect_timeout(Some(access.connect_timeout))
            .read_timeout(Some(access.io_timeout))
            .write_timeout(Some(access.io_timeout));
        let conn = mysql::Conn::new(opts).map_err(|e| DbError::Connect {
            host: host.name.clone(),
            address: format!("{}:{}", host.address, port),
            message: e.to_string(),
        })?;
        Ok(Session {
            host: host.name.clone(),
            conn,
        })
    }

    /// Connects as root over the local socket (`unix_socket` authentication: the caller
    /// must run as root). The failover agent reaches its own server this way: no
    /// password, and untouched by the writer gate on the TCP port.
    pub fn open_socket(host: &str, socket: &Path, timeout: Duration) -> Result<Session, DbError> {
        let opts = mysql::OptsBuilder::new()
            .socket(Some(socket.display().to_string()))
            .user(Some("root"))
            .prefer_socket(true)
            .tcp_connect_timeout(Some(timeout))
            .read_timeout(Some(timeout))
            .write_timeout(Some(timeout));
        let conn = mysql::Conn::new(opts).map_err(|e| DbError::Connect {
            host: host.to_string(),
            address: socket.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Session {
            host: host.to_string(),
            conn,
        })
    }

    /// Bounds every following statement (`MASTER_GTID_WAIT` slices stay below it).
    pub fn set_timeouts(&mut self, timeout: Duration) -> Result<(), DbError> {
        // The mysql crate applies socket timeouts per connection; reopening is the only
        // way to change them, so this is a server-side bound instead.
        self.exec(&format!(
            "SET SESSION max_statement_time = {:.3}",
            timeout.as_secs_f64()
        ))
    }

    fn query_error(&self, statement: &str, e: mysql::Error) -> DbError {
        DbError::Query {
            host: self.host.clone(),
            statement: redact(statement),
            message: e.to_string(),
        }
    }

    /// Runs a statement that returns nothing.
    pub fn exec(&mut self, statement: &str) -> Result<(), DbError> {
        self.conn
            .query_drop(statement)
            .map_err(|e| self.query_error(statement, e))
    }

    /// Every row of a query, each as column name → text (NULL as `None`).
    pub fn rows(&mut self, statement: &str) -> Result<Vec<TextRow>, DbError> {
        let rows: Vec<mysql::Row> = self
            .conn
            .query(statement)
            .map_err(|e| self.query_error(statement, e))?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let columns = row.columns_ref();
                let mut out = BTreeMap::new();
                for (i, column) in columns.iter().enumerate() {
                    out.insert(column.name_str().into_owned(), row.as_ref(i).and_then(text));
                }
                TextRow(out)
            })
            .collect())
    }

    /// The first row of a query (an error if there is none).
    pub fn row(&mut self, statement: &str) -> Result<TextRow, DbError> {
        self.rows(statement)?
            .into_iter()
            .next()
            .ok_or_else(|| DbError::Unexpected {
                host: self.host.clone(),
                what: format!("`{statement}`"),
                got: "no row".to_string(),
                expected: "one row".to_string(),
            })
    }

    /// One text value (NULL as `None`).
    pub fn value(&mut self, statement: &str) -> Result<Option<String>, DbError> {
        Ok(self.row(statement)?.0.into_values().next().flatten())
    }

    /// Everything failover decides on, read in one go.
    pub fn state(&mut self) -> Result<HostState, DbError> {
        let vars = self.row(
            "SELECT @@global.read_only AS read_only, @@server_id AS server_id, \
             @@global.gtid_binlog_pos AS binlog, @@global.gtid_slave_pos AS slave, \
             @@global.gtid_current_pos AS current, \
             @@global.rpl_semi_sync_master_enabled AS semi_master, \
             @@global.rpl_semi_sync_slave_enabled AS semi_slave, \
             @@global.rpl_semi_sync_master_timeout AS semi_timeout, \
             @@global.rpl_semi_sync_master_wait_no_slave AS semi_wait_no_slave",
        )?;
        let status: BTreeMap<String, String> = self
            .rows("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_%'")?
            .into_iter()
            .filter_map(|r| Some((r.get("Variable_name")?, r.get("Value")?)))
            .collect();
        let replica = self
            .rows("SHOW SLAVE STATUS")?
            .into_iter()
            .next()
            .map(|r| self.replica_status(&r))
            .transpose()?;
        let on = |v: Option<String>| matches!(v.as_deref(), Some("1" | "ON"));
        Ok(HostState {
            read_only: on(vars.get("read_only")),
            server_id: vars.get("server_id").unwrap_or_default(),
            binlog_pos: self.gtid(&vars, "binlog")?,
            slave_pos: self.gtid(&vars, "slave")?,
            current_pos: self.gtid(&vars, "current")?,
            semi_sync: SemiSync {
                master_enabled: on(vars.get("semi_master")),
                master_on: on(status.get("Rpl_semi_sync_master_status").cloned()),
                master_clients: status
                    .get("Rpl_semi_sync_master_clients")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                slave_enabled: on(vars.get("semi_slave")),
                slave_on: on(status.get("Rpl_semi_sync_slave_status").cloned()),
                master_wait_sessions: status
                    .get("Rpl_semi_sync_master_wait_sessions")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                master_timeout_ms: vars
                    .get("semi_timeout")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                master_wait_no_slave: on(vars.get("semi_wait_no_slave")),
            },
            replica,
        })
    }

    fn gtid(&self, row: &TextRow, column: &str) -> Result<GtidPos, DbError> {
        GtidPos::parse(&row.get(column).unwrap_or_default())
            .map_err(|e: GtidParseError| self.unexpected_gtid(column, e))
    }

    fn unexpected_gtid(&self, what: &str, e: GtidParseError) -> DbError {
        DbError::Unexpected {
            host: self.host.clone(),
            what: what.to_string(),
            got: format!("{:?}", e.text),
            expected: "a GTID position such as \"0-1-42\"".to_string(),
        }
    }

    fn replica_status(&self, row: &TextRow) -> Result<ReplicaStatus, DbError> {
        let received = GtidPos::parse(&row.get("Gtid_IO_Pos").unwrap_or_default())
            .map_err(|e| self.unexpected_gtid("Gtid_IO_Pos", e))?;
        Ok(ReplicaStatus {
            source: row.get("Master_Host").unwrap_or_default(),
            io_running: row.get("Slave_IO_Running").unwrap_or_default(),
            sql_running: row.get("Slave_SQL_Running").as_deref() == Some("Yes"),
            received,
            seconds_behind: row
                .get("Seconds_Behind_Master")
                .and_then(|v| v.parse().ok()),
            last_io_error: row.get("Last_IO_Error").unwrap_or_default(),
            last_sql_error: row.get("Last_SQL_Error").unwrap_or_default(),
        })
    }

    /// Waits (bounded) until this replica has applied `pos`; false if it did not in time.
    ///
    /// `MASTER_GTID_WAIT` is called in slices of at most a second so that no single
    /// statement outlives the session's read timeout.
    pub fn wait_applied(&mut self, pos: &GtidPos, timeout: Duration) -> Result<bool, DbError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let slice = left
                .min(Duration::from_secs(1))
                .max(Duration::from_millis(10));
            let statement = format!(
                "SELECT MASTER_GTID_WAIT('{pos}', {:.3}) AS waited",
                slice.as_secs_f64()
            );
            if self.value(&statement)?.as_deref() == Some("0") {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }
}

/// One result row as column name → text.
#[derive(Clone, Debug, Default)]
pub struct TextRow(pub BTreeMap<String, Option<String>>);

impl TextRow {
    pub fn get(&self, column: &str) -> Option<String> {
        self.0.get(column).cloned().flatten()
    }
}

fn text(value: &mysql::Value) -> Option<String> {
    match value {
        mysql::Value::NULL => None,
        mysql::Value::Bytes(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        mysql::Value::Int(i) => Some(i.to_string()),
        mysql::Value::UInt(u) => Some(u.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

/// Statements appear in error messages; a password never does.
fn redact(statement: &str) -> String {
    match statement.find("MASTER_PASSWORD") {
        Some(at) => format!("{}MASTER_PASSWORD=… (rest redacted)", &statement[..at]),
        None => statement.to_string(),
    }
}

/// What one host reports about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostState {
    pub read_only: bool,
    pub server_id: String,
    /// `@@gtid_binlog_pos`: everything in this host's binary log.
    pub binlog_pos: GtidPos,
    /// `@@gtid_slave_pos`: everything this host's replication applied.
    pub slave_pos: GtidPos,
    /// `@@gtid_current_pos`: the newer of the two per domain.
    pub current_pos: GtidPos,
    pub semi_sync: SemiSync,
    /// `SHOW SLAVE STATUS`, when replication is configured.
    pub replica: Option<ReplicaStatus>,
}

/// Semi-synchronous replication settings and status of one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemiSync {
    pub master_enabled: bool,
    /// `Rpl_semi_sync_master_status`: OFF while the primary has fallen back to async.
    pub master_on: bool,
    pub master_clients: u32,
    pub slave_enabled: bool,
    pub slave_on: bool,
    /// `Rpl_semi_sync_master_wait_sessions`: commits waiting for an acknowledgement now.
    pub master_wait_sessions: u32,
    /// `rpl_semi_sync_master_timeout` in milliseconds.
    pub master_timeout_ms: u64,
    /// `rpl_semi_sync_master_wait_no_slave`: commits wait even with no replica connected.
    pub master_wait_no_slave: bool,
}

/// The replication side of one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `Master_Host`: the address (or name) this host replicates from.
    pub source: String,
    /// `Slave_IO_Running`: `Yes`, `No` or `Connecting`.
    pub io_running: String,
    pub sql_running: bool,
    /// `Gtid_IO_Pos`: everything received into the relay log.
    pub received: GtidPos,
    pub seconds_behind: Option<u64>,
    pub last_io_error: String,
    pub last_sql_error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_error_messages() {
        assert_eq!(
            redact("CHANGE MASTER TO MASTER_HOST='a', MASTER_PASSWORD='s3cret'"),
            "CHANGE MASTER TO MASTER_HOST='a', MASTER_PASSWORD=… (rest redacted)"
        );
        assert_eq!(redact("STOP SLAVE"), "STOP SLAVE");
    }

    #[test]
    fn secrets_lose_one_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("rampart-db-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "a b\n").unwrap();
        assert_eq!(read_secret(&file).unwrap(), "a b");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(read_secret(&file).unwrap(), "x");
        let missing = read_secret(&dir.join("none")).unwrap_err().to_string();
        assert!(missing.contains("none"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
