//! What rampart-db reports, for people (tables) and for programs (`--json`).
//!
//! # JSON format
//!
//! `--json` prints exactly one JSON document on stdout. Every object in it has a `type`
//! field; field names are camelCase; GTID positions are MariaDB text (`"0-1-42,1-2-7"`,
//! `""` for none). New fields may be added; existing ones keep their meaning.
//!
//! - `status` (`rampart-db status`): `hosts` (array of `host`), `findings` (array of
//!   strings, empty when all is well).
//! - `host`: `host`, `address`, `reachable`, `error` (why it is unreachable, or null),
//!   `role` (`"primary"`: writable; `"replica"`: read-only and replicating; `"fenced"`:
//!   read-only and not replicating; `"unknown"`: unreachable), `readOnly`, `serverId`,
//!   `gtidBinlogPos`, `gtidSlavePos`, `gtidCurrentPos`, `semiSync` (a `semiSync`), and
//!   `replication` (a `replication`, or null when none is configured).
//! - `semiSync`: `masterEnabled`, `masterOn` (false while a primary has fallen back to
//!   asynchronous replication), `masterClients`, `slaveEnabled`, `slaveOn`.
//! - `replication`: `source` (the `Master_Host` address), `ioRunning` (`"Yes"`, `"No"`,
//!   `"Connecting"`), `sqlRunning`, `received` (`Gtid_IO_Pos`), `secondsBehind` (null when
//!   unknown), `lastIoError`, `lastSqlError`.
//! - `operation` (`promote`, `switchover`, `rejoin`, `fence`): `operation` (the command), `host`,
//!   `primary` (rejoin: the new primary, else null), `outcome` (`"done"`, `"unchanged"`: it
//!   already was as asked, `"refused"`: nothing lost, nothing changed, see `reason`,
//!   `"failed"`: see `reason` and the steps for what was changed), `forced`, `reason`
//!   (null unless refused or failed), `steps` (array of `step`), `warnings` (strings),
//!   `positions` (object: name → GTID position, e.g. `received`, `applied`, `source`),
//!   `seconds` (wall time of the whole operation).
//! - `step`: `step` (what was done), `host`, `ok`, `detail`, `seconds`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::conn::HostState;
use rampart_cli::table;

/// `rampart-db status`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename = "status", rename_all = "camelCase")]
pub struct StatusReport {
    pub hosts: Vec<HostReport>,
    pub findings: Vec<String>,
}

/// One database host as `status` saw it.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename = "host", rename_all = "camelCase")]
pub struct HostReport {
    pub host: String,
    pub address: String,
    pub reachable: bool,
    pub error: Option<String>,
    pub role: Role,
    pub read_only: Option<bool>,
    pub server_id: Option<String>,
    pub gtid_binlog_pos: String,
    pub gtid_slave_pos: String,
    pub gtid_current_pos: String,
    pub semi_sync: Option<SemiSyncReport>,
    pub replication: Option<ReplicationReport>,
}

/// A host's part, as seen from its own state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    Primary,
    Replica,
    Fenced,
    Unknown,
}

impl Role {
    pub fn of(state: &HostState) -> Role {
        match (state.read_only, &state.replica) {
            (false, _) => Role::Primary,
            (true, Some(_)) => Role::Replica,
            (true, None) => Role::Fenced,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
            Role::Fenced => "fenced",
            Role::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename = "semiSync", rename_all = "camelCase")]
pub struct SemiSyncReport {
    pub master_enabled: bool,
    pub master_on: bool,
    pub master_clients: u32,
    pub slave_enabled: bool,
    pub slave_on: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename = "replication", rename_all = "camelCase")]
pub struct ReplicationReport {
    pub source: String,
    pub io_running: String,
    pub sql_running: bool,
    pub received: String,
    pub seconds_behind: Option<u64>,
    pub last_io_error: String,
    pub last_sql_error: String,
}

impl HostReport {
    pub fn reachable(host: &str, address: String, state: &HostState) -> HostReport {
        HostReport {
            host: host.to_string(),
            address,
            reachable: true,
            error: None,
            role: Role::of(state),
            read_only: Some(state.read_only),
            server_id: Some(state.server_id.clone()),
            gtid_binlog_pos: state.binlog_pos.to_string(),
            gtid_slave_pos: state.slave_pos.to_string(),
            gtid_current_pos: state.current_pos.to_string(),
            semi_sync: Some(SemiSyncReport {
                master_enabled: state.semi_sync.master_enabled,
                master_on: state.semi_sync.master_on,
                master_clients: state.semi_sync.master_clients,
                slave_enabled: state.semi_sync.slave_enabled,
                slave_on: state.semi_sync.slave_on,
            }),
            replication: state.replica.as_ref().map(|r| ReplicationReport {
                source: r.source.clone(),
                io_running: r.io_running.clone(),
                sql_running: r.sql_running,
                received: r.received.to_string(),
                seconds_behind: r.seconds_behind,
                last_io_error: r.last_io_error.clone(),
                last_sql_error: r.last_sql_error.clone(),
            }),
        }
    }

    pub fn unreachable(host: &str, address: String, error: String) -> HostReport {
        HostReport {
            host: host.to_string(),
            address,
            reachable: false,
            error: Some(error),
            role: Role::Unknown,
            read_only: None,
            server_id: None,
            gtid_binlog_pos: String::new(),
            gtid_slave_pos: String::new(),
            gtid_current_pos: String::new(),
            semi_sync: None,
            replication: None,
        }
    }
}

impl StatusReport {
    /// The human form: one table row per host, then the findings.
    pub fn to_text(&self) -> String {
        let yes_no = |b: bool| if b { "on" } else { "off" }.to_string();
        let rows: Vec<Vec<String>> = self
            .hosts
            .iter()
            .map(|h| {
                let semi = h.semi_sync.as_ref().map_or("-".to_string(), |s| {
                    if h.role == Role::Primary {
                        format!(
                            "master {} ({} clients)",
                            yes_no(s.master_on),
                            s.master_clients
                        )
                    } else {
                        format!("slave {}", yes_no(s.slave_on))
                    }
                });
                let replication = h.replication.as_ref().map_or("-".to_string(), |r| {
                    format!(
                        "from {} io={} sql={} behind={}",
                        r.source,
                        r.io_running,
                        if r.sql_running { "Yes" } else { "No" },
                        r.seconds_behind
                            .map_or("?".to_string(), |s| format!("{s}s"))
                    )
                });
                vec![
                    h.host.clone(),
                    h.address.clone(),
                    h.role.name().to_string(),
                    if h.reachable {
                        h.gtid_current_pos.clone()
                    } else {
                        h.error.clone().unwrap_or_default()
                    },
                    semi,
                    replication,
                ]
            })
            .collect();
        let mut out = table::render(
            &[
                "HOST",
                "ADDRESS",
                "ROLE",
                "GTID",
                "SEMI-SYNC",
                "REPLICATION",
            ],
            &rows,
        );
        append_list(&mut out, "findings", &self.findings);
        if self.findings.is_empty() {
            out.push_str("ok: one writable primary, every replica replicating, semi-sync on\n");
        }
        out
    }
}

/// The outcome of `promote`, `rejoin` or `fence`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Done,
    Unchanged,
    Refused,
    Failed,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Unchanged => "unchanged",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }

    /// Done and unchanged are what was asked for; refusal and failure are findings.
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Done | Outcome::Unchanged)
    }
}

/// One thing an operation did (or tried).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename = "step", rename_all = "camelCase")]
pub struct Step {
    pub step: String,
    pub host: String,
    pub ok: bool,
    pub detail: String,
    pub seconds: f64,
}

/// `promote`, `rejoin` or `fence`: what was done, in order, and how it ended.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename = "operation", rename_all = "camelCase")]
pub struct OperationReport {
    pub operation: String,
    pub host: String,
    pub primary: Option<String>,
    pub outcome: Outcome,
    pub forced: bool,
    pub reason: Option<String>,
    pub steps: Vec<Step>,
    pub warnings: Vec<String>,
    pub positions: BTreeMap<String, String>,
    pub seconds: f64,
}

impl OperationReport {
    pub fn new(operation: &str, host: &str) -> OperationReport {
        OperationReport {
            operation: operation.to_string(),
            host: host.to_string(),
            primary: None,
            outcome: Outcome::Done,
            forced: false,
            reason: None,
            steps: Vec::new(),
            warnings: Vec::new(),
            positions: BTreeMap::new(),
            seconds: 0.0,
        }
    }

    /// The human form: the steps as a table, then outcome, reason and warnings.
    pub fn to_text(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .steps
            .iter()
            .map(|s| {
                vec![
                    if s.ok { "✔" } else { "✘" }.to_string(),
                    format!("{:.2}s", s.seconds),
                    s.host.clone(),
                    s.step.clone(),
                    s.detail.clone(),
                ]
            })
            .collect();
        let mut out = table::render(&["OK", "TIME", "HOST", "STEP", "DETAIL"], &rows);
        for (name, pos) in &self.positions {
            let shown = if pos.is_empty() { "(none)" } else { pos };
            let _ = writeln!(out, "gtid {name}: {shown}");
        }
        append_list(&mut out, "warnings", &self.warnings);
        let _ = write!(
            out,
            "{} {}: {} in {:.2}s",
            self.operation,
            self.host,
            self.outcome.name(),
            self.seconds
        );
        if let Some(reason) = &self.reason {
            let _ = write!(out, ": {reason}");
        }
        out.push('\n');
        out
    }
}

fn append_list(out: &mut String, title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}:");
    for item in items {
        let _ = writeln!(out, "  - {item}");
    }
}
