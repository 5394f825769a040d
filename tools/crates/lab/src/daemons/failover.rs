//! Failover (issue #14): an etcd member on every host and the failover agent
//! (`rampart-db agent`) on every database host.

use std::path::Path;

use rampart_topology::{Host, Role, Topology};

use super::{port, program, Daemon, MariadbPaths};
use crate::process::Spec;
use crate::render::HostDirs;
use crate::{Ready, Result};

/// The client URLs of every etcd member (one per host), for the agents and `rampart-db`.
pub fn etcd_endpoints(topology: &Topology) -> Result<Vec<String>> {
    let client = port(topology, "etcdClient")?;
    Ok(topology
        .hosts
        .iter()
        .map(|h| format!("http://{}:{client}", h.address))
        .collect())
}

/// One member of the lab's etcd cluster on `host`, every host a member (lb the
/// tie-breaker).
///
/// Plain HTTP on the topology's etcd ports, between the lab's namespaces only: a stand-in
/// until the rendered etcd configuration (TLS with certtool's certificates) lands; the
/// agent takes https endpoints and client certificates already.
pub fn etcd_member(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    let (client, peer) = (port(topology, "etcdClient")?, port(topology, "etcdPeer")?);
    let cluster: Vec<String> = topology
        .hosts
        .iter()
        .map(|h| format!("{}=http://{}:{peer}", h.name, h.address))
        .collect();
    let client_url = format!("http://{}:{client}", host.address);
    let peer_url = format!("http://{}:{peer}", host.address);
    let etcd = program("etcd", "etcd-server")?;
    Ok(Daemon {
        spec: Spec::new("etcd", &host.name, &etcd).args([
            "--name".to_string(),
            host.name.clone(),
            "--data-dir".into(),
            dirs.data.join("etcd").display().to_string(),
            "--listen-client-urls".into(),
            client_url.clone(),
            "--advertise-client-urls".into(),
            client_url,
            "--listen-peer-urls".into(),
            peer_url.clone(),
            "--initial-advertise-peer-urls".into(),
            peer_url,
            "--initial-cluster".into(),
            cluster.join(","),
            "--listen-metrics-urls".into(),
            format!("http://{}:{}", host.address, port(topology, "etcdMetrics")?),
            "--initial-cluster-state".into(),
            "new".into(),
            "--initial-cluster-token".into(),
            format!("rampart-lab-{}", topology.name),
        ]),
        ready: Ready::Port(super::socket(host.address, client)),
    })
}

/// The failover agent of a database host: `rampart-db agent` with the host's files, its
/// MariaDB socket, every etcd member, and its metrics in node exporter's textfile
/// directory.
pub fn failover_agent(
    topology: &Topology,
    topology_path: &Path,
    host: &Host,
    dirs: &HostDirs,
    binary: &Path,
) -> Result<Daemon> {
    debug_assert!(host.has_role(Role::DatabasePrimary) || host.has_role(Role::DatabaseReplica));
    let endpoints = etcd_endpoints(topology)?;
    let spec = Spec::new("failover-agent", &host.name, &binary.display().to_string()).args([
        "agent".to_string(),
        "--host".into(),
        host.name.clone(),
        "--socket".into(),
        MariadbPaths::new(dirs).socket.display().to_string(),
        "--topology".into(),
        topology_path.display().to_string(),
        "--ca".into(),
        dirs.pki.join("ca.pem").display().to_string(),
        "--password-file".into(),
        dirs.secrets
            .join("failover-db-password")
            .display()
            .to_string(),
        "--replication-password-file".into(),
        dirs.secrets
            .join("replication-password")
            .display()
            .to_string(),
        "--replica-pki-dir".into(),
        dirs.pki.display().to_string(),
        "--metrics".into(),
        dirs.textfile
            .join("rampart-failover.prom")
            .display()
            .to_string(),
        "--etcd".into(),
        endpoints.join(","),
    ]);
    Ok(Daemon {
        spec,
        ready: Ready::Started,
    })
}
