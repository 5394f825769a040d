//! Prometheus exporters: node, nginx, mysqld; supervised, as `Restart=` in nixpkgs'
//! exporter units.

use std::path::PathBuf;

use rampart_topology::{Host, Topology};

use super::{command, placement, port, program, socket, Daemon, MariadbPaths};
use crate::process::Signal;
use crate::render::HostDirs;
use crate::{Ready, Result};

/// Debian's node exporter, with the textfile directory reach writes to.
pub fn node_exporter(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    let address = socket(host.address, port(topology, "nodeExporter")?);
    let exporter = program("prometheus-node-exporter", "prometheus-node-exporter")?;
    Ok(Daemon {
        spec: command(
            "node-exporter",
            &host.name,
            &exporter,
            dirs,
            placement("node-exporter", dirs),
        )?
        .supervised(Signal::SIGTERM, None),
        ready: Ready::Port(address),
    })
}

/// Debian's nginx exporter, reading the loopback stub_status page.
pub fn nginx_exporter(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    let address = socket(host.address, port(topology, "nginxExporter")?);
    let exporter = program("prometheus-nginx-exporter", "prometheus-nginx-exporter")?;
    Ok(Daemon {
        spec: command(
            "nginx-exporter",
            &host.name,
            &exporter,
            dirs,
            placement("nginx-exporter", dirs),
        )?
        .supervised(Signal::SIGTERM, None),
        ready: Ready::Port(address),
    })
}

/// The mysqld exporter's client file: it holds a password, so it lives in `secretsDir`.
pub(super) fn mysqld_exporter_cnf(dirs: &HostDirs) -> PathBuf {
    dirs.secrets.join("mysqld-exporter.cnf")
}

/// Debian's mysqld exporter; its password goes into a client file in `secretsDir`.
pub fn mysqld_exporter(
    topology: &Topology,
    host: &Host,
    dirs: &HostDirs,
    user: &str,
    password: &str,
) -> Result<Daemon> {
    let address = socket(host.address, port(topology, "mysqldExporter")?);
    let socket_path = MariadbPaths::new(dirs).socket;
    crate::secrets::write_private(
        &mysqld_exporter_cnf(dirs),
        &format!(
            "[client]\nuser={user}\npassword={password}\nsocket={}\n",
            socket_path.display()
        ),
    )?;
    let exporter = program("prometheus-mysqld-exporter", "prometheus-mysqld-exporter")?;
    Ok(Daemon {
        spec: command(
            "mysqld-exporter",
            &host.name,
            &exporter,
            dirs,
            placement("mysqld-exporter", dirs),
        )?
        .supervised(Signal::SIGTERM, None),
        ready: Ready::Port(address),
    })
}
