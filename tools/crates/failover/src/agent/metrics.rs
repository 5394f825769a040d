//! `rampart_failover_*` metrics, written for node exporter's textfile collector.
//!
//! | metric | meaning |
//! |---|---|
//! | `rampart_failover_agent_heartbeat_timestamp_seconds` | when the agent last finished a tick (an agent that stops writes no more: `FailoverAgentDown`) |
//! | `rampart_failover_etcd_reachable` | 1 if the last read of etcd succeeded |
//! | `rampart_failover_mariadb_healthy` | 1 if the local MariaDB answered the last health check |
//! | `rampart_failover_leader` | 1 on the host whose agent holds the lead and is writable |
//! | `rampart_failover_term` | the cluster's term as last read (`FailoverLeaderChanged`) |
//! | `rampart_failover_sync_replicas` | on the leader only: replicas recorded in sync (`FailoverSyncSetEmpty`) |
//! | `rampart_failover_paused` | 1 while automatic failover is paused (`rampart-db pause`; `FailoverPaused`) |

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rampart_database::HostState;

use super::{Agent, Phase, Unhealthy};
use crate::record::View;

/// Node exporter reads the file on every scrape; once a second is plenty.
const EVERY: Duration = Duration::from_secs(1);

impl Agent {
    pub(super) fn write_metrics(
        &mut self,
        view: Option<&View>,
        health: &Result<HostState, Unhealthy>,
    ) {
        let Some(path) = self.cfg.metrics.clone() else {
            return;
        };
        if self.metrics_written.is_some_and(|at| at.elapsed() < EVERY) {
            return;
        }
        let leading = self
            .lead
            .as_ref()
            .is_some_and(|l| matches!(l.phase, Phase::Writable));
        let mut out = String::new();
        let mut metric = |name: &str, help: &str, value: f64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {value}");
        };
        metric(
            "rampart_failover_agent_heartbeat_timestamp_seconds",
            "When the failover agent last finished a tick (Unix seconds).",
            record_seconds(),
        );
        metric(
            "rampart_failover_etcd_reachable",
            "1 if the failover agent's last read of etcd succeeded.",
            f64::from(u8::from(view.is_some())),
        );
        metric(
            "rampart_failover_mariadb_healthy",
            "1 if the local MariaDB answered the agent's last health check.",
            f64::from(u8::from(health.is_ok())),
        );
        metric(
            "rampart_failover_leader",
            "1 if this host holds the database lead and takes writes.",
            f64::from(u8::from(leading)),
        );
        if let Some(view) = view {
            metric(
                "rampart_failover_term",
                "The failover term: grows by one with every new leader.",
                view.term() as f64,
            );
            metric(
                "rampart_failover_paused",
                "1 while automatic failover is paused for maintenance (rampart-db pause).",
                f64::from(u8::from(view.pause.is_some())),
            );
            if leading {
                metric(
                    "rampart_failover_sync_replicas",
                    "Replicas recorded in sync with the leader (holding every acknowledged write).",
                    view.sync_set().len() as f64,
                );
            }
        }
        // Written aside and renamed: the collector never reads half a file.
        let tmp = path.with_extension("prom.tmp");
        let written = std::fs::write(&tmp, out).and_then(|()| std::fs::rename(&tmp, &path));
        match written {
            Ok(()) => self.metrics_written = Some(Instant::now()),
            Err(e) => self.log(format!("cannot write metrics to {}: {e}", path.display())),
        }
    }
}

fn record_seconds() -> f64 {
    crate::record::now_ms() as f64 / 1000.0
}
