//! The full TCP sweep judged against the topology: every port of every other host, from
//! the vantage; an open port the policy does not open to this vantage is a finding.
//!
//! The `ports` group (the policy matrix) and the `sweep` group split the 65,535 ports of
//! a host between them: `ports` has one line per declared service, `sweep` one summary
//! line per host plus one line per open port that is not declared there. When both run,
//! the sweep's answers serve both, so no port is probed twice.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::report::{Check, Kind, Status};
pub use rampart_probe::sweep::Method;
use rampart_probe::sweep::{self, Sweep, SweepOptions};
use rampart_probe::tcp::{PortProbe, PortState};
use rampart_topology::{Host, Topology};

use super::vantage::Vantage;
use super::ReachError;

/// How the sweep runs (`reach check --sweep-*`, `reach sweep`).
#[derive(Clone, Debug)]
pub struct SweepSettings {
    pub method: Method,
    /// Wait after each round's last probe.
    pub timeout: Duration,
    pub retries: u32,
    /// Raw engine: probes per second at most.
    pub max_rate: Option<u32>,
}

impl SweepSettings {
    pub fn new(timeout: Duration) -> SweepSettings {
        SweepSettings {
            method: Method::Auto,
            timeout,
            retries: 1,
            max_rate: None,
        }
    }

    fn options(&self, source: Option<Ipv4Addr>) -> SweepOptions {
        SweepOptions {
            method: self.method,
            retries: self.retries,
            max_rate: self.max_rate,
            ..SweepOptions::full(source, self.timeout)
        }
    }
}

/// The hosts a vantage sweeps: every host but itself (its own ports are the `listeners`
/// group's: its traffic to itself never crosses a firewall).
pub fn targets<'t>(topology: &'t Topology, vantage: &Vantage) -> Vec<&'t Host> {
    topology.hosts.iter().filter(|h| !vantage.is(h)).collect()
}

/// Runs the sweep of `hosts` from the vantage (blocking).
pub fn run(
    hosts: &[&Host],
    vantage: &Vantage,
    settings: &SweepSettings,
) -> Result<Sweep, ReachError> {
    let addresses: Vec<Ipv4Addr> = hosts.iter().map(|h| h.address).collect();
    sweep::sweep(&addresses, &settings.options(vantage.address)).map_err(|e| ReachError::Sweep {
        problem: e.to_string(),
    })
}

/// The answer for `address:port`, in the vocabulary of a single port probe.
pub fn probe_of(result: &Sweep, address: Ipv4Addr, port: u16) -> Option<PortProbe> {
    let host = result.hosts.iter().find(|h| h.address == address)?;
    let answer = host.answer(port);
    Some(PortProbe {
        state: answer.state(),
        reason: answer.reason().to_string(),
        seconds: result.seconds,
    })
}

fn how(result: &Sweep) -> String {
    let mut text = format!(
        "{}, {} probes in {:.1} s",
        result.engine.name(),
        result.probes,
        result.seconds
    );
    if let Some(why) = &result.fallback {
        text.push_str(&format!("; raw probes unavailable: {why}"));
    }
    text
}

fn list(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `sweep` group's checks: per host a summary and one ✘ per open port that the
/// policy does not open to the vantage. With `skip_declared`, declared services are left
/// to the `ports` group.
pub fn judge(
    topology: &Topology,
    vantage: &Vantage,
    hosts: &[&Host],
    result: &Sweep,
    skip_declared: bool,
) -> Vec<Check> {
    let source = vantage.source();
    let mut out = Vec::new();
    for host in hosts {
        let Some(ports) = result.hosts.iter().find(|p| p.address == host.address) else {
            continue;
        };
        let declared: Vec<(&str, u16)> = topology.services_on(host);
        let service_on = |port: u16| declared.iter().find(|(_, p)| *p == port).map(|(s, _)| *s);
        let range = ports.ports();
        let (open, closed, filtered) = ports.counts();
        let mut findings = Vec::new();
        let mut expected_open = Vec::new();
        for port in ports.in_state(PortState::Open) {
            match service_on(port) {
                Some(service) if topology.allows(source, host, service) => {
                    expected_open.push(port)
                }
                Some(_) if skip_declared => {}
                Some(service) => findings.push(
                    Check::new("sweep", &host.name, format!("{port}/{service}"))
                        .judged(false, "closed|filtered", "open")
                        .with_reason(format!(
                            "syn-ack; the policy does not open {service} on {} to {}: fix the firewall (lib/render/nftables.nix renders it from hosts/topology.json)",
                            host.name, vantage.name
                        ))
                        .with_kind(Kind::UndeclaredPort),
                ),
                None => findings.push(
                    Check::new("sweep", &host.name, format!("{port}/tcp"))
                        .judged(false, "closed|filtered (not declared)", "open")
                        .with_reason(format!(
                            "syn-ack; no service of {} in hosts/topology.json uses port {port}: find the process with `reach check --from {} --only listeners` on {}, stop it and remove the rule that admits it, or declare the service",
                            host.name, host.name, host.name
                        ))
                        .with_kind(Kind::UndeclaredPort),
                ),
            }
        }
        let summary = Check::new(
            "sweep",
            &host.name,
            format!("tcp {}-{}", range.start(), range.end()),
        )
        .with_status(if findings.is_empty() {
            Status::Pass
        } else {
            // The findings below carry the failure; the summary only counts.
            Status::Info
        })
        .with_reason(how(result))
        .with_seconds(result.seconds);
        let mut summary = summary;
        summary.ports = Some(crate::report::PortCounts {
            open,
            closed,
            filtered,
        });
        summary.expected = "open only where the policy allows".into();
        summary.observed = format!(
            "{open} open{}, {closed} closed, {filtered} filtered",
            if expected_open.is_empty() {
                String::new()
            } else {
                format!(" ({} allowed)", list(&expected_open))
            }
        );
        out.push(summary);
        out.extend(findings);
    }
    out
}

/// `reach sweep`: every port of the given addresses, listed, never judged.
pub fn adhoc(targets: &[(String, Ipv4Addr)], result: &Sweep) -> Vec<Check> {
    let mut out = Vec::new();
    for (name, address) in targets {
        let Some(ports) = result.hosts.iter().find(|p| p.address == *address) else {
            continue;
        };
        let range = ports.ports();
        let (open, closed, filtered) = ports.counts();
        let mut summary = Check::new(
            "sweep",
            name,
            format!("tcp {}-{}", range.start(), range.end()),
        )
        .with_status(Status::Info)
        .with_reason(how(result))
        .with_seconds(result.seconds);
        summary.observed = format!("{open} open, {closed} closed, {filtered} filtered");
        out.push(summary);
        for port in ports.in_state(PortState::Open) {
            let mut c = Check::new("sweep", name, port.to_string())
                .with_status(Status::Info)
                .with_reason(ports.answer(port).reason());
            c.observed = "open".into();
            out.push(c);
        }
    }
    out
}
