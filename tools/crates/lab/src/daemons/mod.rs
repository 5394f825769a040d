//! How the lab runs each of Debian's daemons on a host's rendered files, without systemd.
//!
//! Every daemon runs in the foreground, from `lib.daemons` (the attribute the NixOS units
//! are set from, [`launch`]) on the rendered files, with every path it writes (pid, logs,
//! temp files, data) under the host's directories ([`HostDirs`]). Each daemon's own check
//! mode runs on the files before it starts, the way the NixOS modules check before a
//! start.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use rampart_topology::Topology;

use crate::process::Spec;
use crate::render::HostDirs;
use crate::{LabError, Ready, Result};

// One file per daemon; callers use the functions from here (`daemons::nginx(…)`).
mod app;
mod etcd;
mod exporters;
mod failover;
mod haproxy;
mod launch;
mod mariadb;
mod monitoring;
mod nginx;
mod sshd;

pub use app::app;
pub use etcd::{
    check_etcd, describe as describe_etcd, etcd, etcd_client_config, etcd_health,
    wait_etcd_healthy, with_etcd,
};
use exporters::mysqld_exporter_cnf;
pub use exporters::{mysqld_exporter, nginx_exporter, node_exporter};
pub use failover::{etcd_endpoints, failover_agent};
pub use haproxy::{check_haproxy, haproxy, haproxy_with, link_haproxy_keys, reload_haproxy};
pub use launch::{command, from_launch, is_path, launches, not_a_path, placement, Launch};
pub use mariadb::{
    mariadb, mariadb_bootstrap, mariadb_copy_datadir, mariadb_install, mariadb_install_command,
    MariadbPaths,
};
pub use monitoring::{
    alertmanager, blackbox_exporter, check_alertmanager, check_blackbox, check_prometheus,
    check_rules, deliveries, prometheus, webhook, webhook_address,
};
pub use nginx::{check_nginx, nginx, nginx_main_conf_including, prepare_nginx};
pub use sshd::sshd;

/// A daemon of one host: what to start and how it shows it is ready.
#[derive(Clone, Debug)]
pub struct Daemon {
    pub spec: Spec,
    pub ready: Ready,
}

/// The absolute path of a program, looked up in PATH and the sbin directories (root's
/// PATH in CI may lack them).
pub fn program(name: &str, package: &str) -> Result<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
    for dir in dirs.filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if candidate.is_file() {
            return Ok(candidate.display().to_string());
        }
    }
    Err(LabError::Invalid(format!(
        "{name} is not installed (expected it in PATH or /usr/sbin); install Debian's {package} (scripts/install.sh does)"
    )))
}

/// A rendered file of a host, which must exist.
pub fn rendered(dirs: &HostDirs, relative: &str) -> Result<PathBuf> {
    let path = dirs.etc.join(relative);
    if path.is_file() {
        Ok(path)
    } else {
        Err(LabError::Invalid(format!(
            "lib.render gave no {relative} for {} (expected it for this host's roles); check the renderer",
            dirs.root.display()
        )))
    }
}

fn port(topology: &Topology, service: &str) -> Result<u16> {
    topology
        .services
        .get(service)
        .map(|s| s.port)
        .ok_or_else(|| {
            LabError::Invalid(format!(
                "the topology has no service {service:?}, which the lab needs; add services.{service}"
            ))
        })
}

fn socket(address: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::from((address, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_listens_where_the_topology_says() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../hosts/topology.json");
        let mut t = Topology::load(&path).unwrap();
        assert_eq!(webhook_address(&t).unwrap().to_string(), "10.42.0.10:9099");
        t.alert_receiver.webhook_url = "https://alerts.example/x".into();
        let err = webhook_address(&t).unwrap_err().to_string();
        assert!(
            err.contains("webhookUrl is \"https://alerts.example/x\""),
            "{err}"
        );
    }
}
