//! Prometheus exporters: node, nginx, mysqld; supervised, as `Restart=` in nixpkgs'
//! exporter units.

use rampart_topology::{Host, Topology};

use super::{port, program, socket, Daemon, MariadbPaths};
use crate::process::{Signal, Spec};
use crate::render::HostDirs;
use crate::{Ready, Result};

/// Debian's node exporter, with the textfile directory reach writes to.
pub fn node_exporter(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    let address = socket(host.address, port(topology, "nodeExporter")?);
    let exporter = program("prometheus-node-exporter", "prometheus-node-exporter")?;
    Ok(Daemon {
        spec: Spec::new("node-exporter", &host.name, &exporter)
            .args([
                format!("--web.listen-address={address}"),
                format!("--collector.textfile.directory={}", dirs.textfile.display()),
            ])
            .supervised(Signal::SIGTERM, None),
        ready: Ready::Port(address),
    })
}

/// Debian's nginx exporter, reading the loopback stub_status page.
pub fn nginx_exporter(topology: &Topology, host: &Host, stub_status_port: u16) -> Result<Daemon> {
    let address = socket(host.address, port(topology, "nginxExporter")?);
    let exporter = program("prometheus-nginx-exporter", "prometheus-nginx-exporter")?;
    Ok(Daemon {
        spec: Spec::new("nginx-exporter", &host.name, &exporter)
            .args([
                format!("-web.listen-address={address}"),
                format!("-nginx.scrape-uri=http://127.0.0.1:{stub_status_port}/stub_status"),
                // It starts with nginx and exits if stub_status does not answer at once.
                "-nginx.retries=50".into(),
                "-nginx.retry-interval=200ms".into(),
            ])
            .supervised(Signal::SIGTERM, None),
        ready: Ready::Port(address),
    })
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
    let cnf = dirs.secrets.join("mysqld-exporter.cnf");
    let socket_path = MariadbPaths::new(dirs).socket;
    crate::secrets::write_private(
        &cnf,
        &format!(
            "[client]\nuser={user}\npassword={password}\nsocket={}\n",
            socket_path.display()
        ),
    )?;
    let exporter = program("prometheus-mysqld-exporter", "prometheus-mysqld-exporter")?;
    Ok(Daemon {
        spec: Spec::new("mysqld-exporter", &host.name, &exporter)
            .args([
                format!("--web.listen-address={address}"),
                format!("--config.my-cnf={}", cnf.display()),
            ])
            .supervised(Signal::SIGTERM, None),
        ready: Ready::Port(address),
    })
}
