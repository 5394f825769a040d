//! `rampart-db status` without etcd: every database host's state and what is wrong with it.

use super::{nonempty, Failover};
use crate::conn::{DbHost, HostState};
use crate::report::{HostReport, StatusReport};

impl Failover<'_> {
    /// Every database host's state, and what is wrong with the pair.
    pub fn status(&self) -> StatusReport {
        let mut hosts = Vec::new();
        let mut states = Vec::new();
        let mut findings = Vec::new();
        for host in &self.cluster.hosts {
            match self.live(host) {
                Ok(live) => {
                    hosts.push(HostReport::reachable(
                        &host.name,
                        self.address(host),
                        &live.state,
                    ));
                    states.push((host, live.state));
                }
                Err(e) => {
                    findings.push(format!("{}: unreachable: {e}", host.name));
                    hosts.push(HostReport::unreachable(
                        &host.name,
                        self.address(host),
                        e.to_string(),
                    ));
                }
            }
        }
        let writable: Vec<&(&DbHost, HostState)> =
            states.iter().filter(|(_, s)| !s.read_only).collect();
        match writable.as_slice() {
            [] => findings.push(
                "no writable database host: the application cannot write; promote one with \
                 `rampart-db promote HOST`"
                    .to_string(),
            ),
            [(primary, state)] => {
                if !state.semi_sync.master_enabled {
                    findings.push(format!(
                        "{}: rpl_semi_sync_master_enabled is OFF (expected ON); acknowledged \
                         writes may be lost on failover; fix the MariaDB settings",
                        primary.name
                    ));
                } else if !state.semi_sync.master_on {
                    findings.push(format!(
                        "{}: semi-sync has fallen back to asynchronous replication \
                         (Rpl_semi_sync_master_status OFF, {} semi-sync replicas); a failover \
                         now may lose acknowledged writes; repair the replica's connection",
                        primary.name, state.semi_sync.master_clients
                    ));
                }
                for (host, state) in states.iter().filter(|(h, _)| h.name != primary.name) {
                    findings.extend(replica_findings(host, state, primary));
                }
            }
            many => findings.push(format!(
                "more than one writable database host ({}): split brain; fence all but one \
                 with `rampart-db fence HOST`",
                many.iter()
                    .map(|(h, _)| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
        StatusReport { hosts, findings }
    }
}

/// The findings for a host that should be replicating from `primary`.
fn replica_findings(host: &DbHost, state: &HostState, primary: &DbHost) -> Vec<String> {
    let name = &host.name;
    let Some(replica) = &state.replica else {
        return vec![format!(
            "{name}: read-only but not replicating; run `rampart-db rejoin {name} --primary {}`",
            primary.name
        )];
    };
    let mut findings = Vec::new();
    if replica.source != primary.address.to_string() && replica.source != primary.name {
        findings.push(format!(
            "{name}: replicates from {} (expected the primary {} at {}); run `rampart-db \
             rejoin {name} --primary {}`",
            replica.source, primary.name, primary.address, primary.name
        ));
    }
    if replica.io_running != "Yes" || !replica.sql_running {
        findings.push(format!(
            "{name}: replication is broken (IO thread {}, SQL thread {}){}{}",
            replica.io_running,
            if replica.sql_running { "Yes" } else { "No" },
            nonempty("; last IO error: ", &replica.last_io_error),
            nonempty("; last SQL error: ", &replica.last_sql_error),
        ));
    }
    if !state.semi_sync.slave_enabled {
        findings.push(format!(
            "{name}: rpl_semi_sync_slave_enabled is OFF (expected ON); the primary cannot \
             wait for it; fix the MariaDB settings"
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtid::GtidPos;
    use crate::{ReplicaStatus, SemiSync};
    use std::net::Ipv4Addr;

    fn host(name: &str, last: u8) -> DbHost {
        DbHost {
            name: name.into(),
            address: Ipv4Addr::new(10, 0, 0, last),
            declared_primary: false,
        }
    }

    fn replica_state(source: &str, io: &str, sql: bool) -> HostState {
        HostState {
            read_only: true,
            server_id: "2".into(),
            binlog_pos: GtidPos::default(),
            slave_pos: GtidPos::default(),
            current_pos: GtidPos::default(),
            semi_sync: SemiSync {
                master_enabled: true,
                master_on: false,
                master_clients: 0,
                slave_enabled: true,
                slave_on: true,
                master_wait_sessions: 0,
                master_timeout_ms: 0,
                master_wait_no_slave: true,
            },
            replica: Some(ReplicaStatus {
                source: source.into(),
                io_running: io.into(),
                sql_running: sql,
                received: GtidPos::default(),
                seconds_behind: Some(0),
                last_io_error: String::new(),
                last_sql_error: String::new(),
            }),
        }
    }

    #[test]
    fn a_healthy_replica_has_no_findings() {
        let state = replica_state("10.0.0.1", "Yes", true);
        assert!(replica_findings(&host("b", 2), &state, &host("a", 1)).is_empty());
    }

    #[test]
    fn broken_or_misdirected_replication_is_named() {
        let state = replica_state("10.0.0.9", "Connecting", false);
        let findings = replica_findings(&host("b", 2), &state, &host("a", 1));
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert!(findings[0].contains("replicates from 10.0.0.9 (expected the primary a"));
        assert!(findings[1].contains("IO thread Connecting, SQL thread No"));
    }

    #[test]
    fn a_read_only_host_without_replication_is_told_to_rejoin() {
        let mut state = replica_state("", "No", false);
        state.replica = None;
        let findings = replica_findings(&host("b", 2), &state, &host("a", 1));
        assert_eq!(
            findings,
            vec!["b: read-only but not replicating; run `rampart-db rejoin b --primary a`"]
        );
    }
}
