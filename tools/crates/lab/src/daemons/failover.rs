//! The failover agent (`rampart-db agent`, issue #14) on every database host, from
//! `lib.daemons`; etcd itself is [`super::etcd`].

use std::path::Path;

use rampart_topology::{Host, Topology};

use super::{command, port, Daemon, MariadbPaths};
use crate::render::HostDirs;
use crate::{Ready, Result};

/// The client URLs of every etcd member (one per host), for `rampart-db` run by hand.
pub fn etcd_endpoints(topology: &Topology) -> Result<Vec<String>> {
    let client = port(topology, rampart_consensus::CLIENT_SERVICE)?;
    Ok(topology
        .hosts
        .iter()
        .map(|h| format!("https://{}:{client}", h.address))
        .collect())
}

/// The failover agent of a database host: `rampart-db agent` with the arguments of
/// `lib.daemons`; the lab adds where files live: the host's MariaDB socket, the topology,
/// its PKI directory (mysqld reads the replication certificate there) and node
/// exporter's textfile.
pub fn failover_agent(
    topology_path: &Path,
    host: &Host,
    dirs: &HostDirs,
    binary: &Path,
) -> Result<Daemon> {
    let placement = vec![
        "--socket".to_string(),
        MariadbPaths::new(dirs).socket.display().to_string(),
        "--topology".into(),
        topology_path.display().to_string(),
        "--replica-pki-dir".into(),
        dirs.pki.display().to_string(),
        "--metrics".into(),
        dirs.textfile
            .join("rampart-failover.prom")
            .display()
            .to_string(),
    ];
    let spec = command(
        "failover-agent",
        &host.name,
        &binary.display().to_string(),
        dirs,
        placement,
    )?;
    Ok(Daemon {
        spec,
        ready: Ready::Started,
    })
}
