//! The application server (`rampart-app`) on a web host.

use std::net::Ipv4Addr;
use std::path::Path;

use rampart_topology::{Host, Topology};

use super::{port, socket, Daemon};
use crate::process::{Signal, Spec};
use crate::render::HostDirs;
use crate::{LabError, Ready, Result};

/// The application (`rampart-app`, tools/app) on a web host, on loopback behind nginx:
/// writes go to the primary, reads to this host's own database when it has one.
/// Supervised with its socket held by the supervisor, as `rampart-app.socket` does on
/// NixOS: a restart queues connections instead of refusing them; SIGTERM drains it.
pub fn app(
    topology: &Topology,
    host: &Host,
    dirs: &HostDirs,
    binary: &Path,
    app_port: u16,
) -> Result<Daemon> {
    use rampart_topology::Role;
    let mysql = port(topology, "mysql")?;
    // Every database host: the application writes to the one whose read_only is 0 (the
    // read_only probe, docs/failover.md), so `infralab promote` needs nothing else.
    let candidates: Vec<String> = topology
        .hosts
        .iter()
        .filter(|h| h.has_role(Role::DatabasePrimary) || h.has_role(Role::DatabaseReplica))
        .map(|h| socket(h.address, mysql).to_string())
        .collect();
    if candidates.is_empty() {
        return Err(LabError::Invalid(
            "no host has role \"databasePrimary\" or \"databaseReplica\"; the application needs a database to write to"
                .into(),
        ));
    }
    let listen = socket(Ipv4Addr::LOCALHOST, app_port);
    let mut spec = Spec::new("app", &host.name, &binary.display().to_string()).args([
        "--listen".to_string(),
        listen.to_string(),
        "--host-name".into(),
        host.name.clone(),
        "--db-probe".into(),
        candidates.join(","),
        "--db-password-file".into(),
        dirs.secrets.join("app-db-password").display().to_string(),
        "--db-ca".into(),
        dirs.pki.join("ca.pem").display().to_string(),
    ]);
    if host.has_role(rampart_topology::Role::DatabaseReplica) {
        spec = spec.args([
            "--db-replica".to_string(),
            socket(host.address, mysql).to_string(),
        ]);
    }
    Ok(Daemon {
        spec: spec.supervised(Signal::SIGTERM, Some(listen)),
        ready: Ready::Port(listen),
    })
}
