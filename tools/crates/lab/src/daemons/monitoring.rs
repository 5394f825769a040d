//! Prometheus, Alertmanager and the alert webhook on the monitoring host.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_topology::{Host, Topology};

use super::{command, placement};
use super::{port, program, rendered, socket, Daemon};
use crate::process::Spec;
use crate::render::HostDirs;
use crate::{run, LabError, Ready, Result};

/// `promtool check config` on the rendered prometheus.yml (which also checks the rule
/// files it names).
pub fn check_prometheus(dirs: &HostDirs) -> Result<()> {
    let config = rendered(dirs, "prometheus/prometheus.yml")?;
    run(Command::new(program("promtool", "prometheus")?)
        .args(["check", "config"])
        .arg(&config))
    .map(drop)
}

/// `promtool check rules` on the rendered rules.yml.
pub fn check_rules(dirs: &HostDirs) -> Result<()> {
    let rules = rendered(dirs, "prometheus/rules.yml")?;
    run(Command::new(program("promtool", "prometheus")?)
        .args(["check", "rules"])
        .arg(&rules))
    .map(drop)
}

/// `amtool check-config` on the rendered alertmanager.yml.
pub fn check_alertmanager(dirs: &HostDirs) -> Result<()> {
    let config = rendered(dirs, "alertmanager/alertmanager.yml")?;
    run(Command::new(program("amtool", "prometheus-alertmanager")?)
        .args(["check-config"])
        .arg(&config))
    .map(drop)
}

/// Prometheus on the monitoring host, checked with `promtool check config` first.
pub fn prometheus(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    rendered(dirs, "prometheus/prometheus.yml")?;
    let address = socket(host.address, port(topology, "prometheus")?);
    check_prometheus(dirs)?;
    let prometheus = program("prometheus", "prometheus")?;
    Ok(Daemon {
        spec: command(
            "prometheus",
            &host.name,
            &prometheus,
            dirs,
            placement("prometheus", dirs),
        )?,
        ready: Ready::Port(address),
    })
}

/// Alertmanager on the monitoring host: no cluster, its own storage.
pub fn alertmanager(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    rendered(dirs, "alertmanager/alertmanager.yml")?;
    let address = socket(host.address, port(topology, "alertmanager")?);
    check_alertmanager(dirs)?;
    let alertmanager = program("prometheus-alertmanager", "prometheus-alertmanager")?;
    Ok(Daemon {
        spec: command(
            "alertmanager",
            &host.name,
            &alertmanager,
            dirs,
            placement("alertmanager", dirs),
        )?,
        ready: Ready::Port(address),
    })
}

/// Where the webhook receiver listens, from `monitoring.alertReceiver.webhookUrl`.
pub fn webhook_address(topology: &Topology) -> Result<SocketAddr> {
    let url = &topology.alert_receiver.webhook_url;
    let bad = || {
        LabError::Invalid(format!(
            "monitoring.alertReceiver.webhookUrl is {url:?} (expected http://<address>:<port>/<path> with an IPv4 address of a lab host); the lab serves the webhook there"
        ))
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let authority = rest.split('/').next().unwrap_or_default();
    authority.parse().map_err(|_| bad())
}

/// The webhook receiver (this very binary, `infralab webhook`), on the monitoring host.
pub fn webhook(
    topology: &Topology,
    host: &Host,
    dirs: &HostDirs,
    infralab: &Path,
) -> Result<Daemon> {
    let address = webhook_address(topology)?;
    Ok(Daemon {
        spec: Spec::new("webhook", &host.name, &infralab.display().to_string()).args([
            "webhook".to_string(),
            "--listen".into(),
            address.to_string(),
            "--out".into(),
            deliveries(dirs).display().to_string(),
        ]),
        ready: Ready::Port(address),
    })
}

/// The file the webhook receiver appends deliveries to.
pub fn deliveries(dirs: &HostDirs) -> PathBuf {
    dirs.data.join("webhook-deliveries.jsonl")
}
