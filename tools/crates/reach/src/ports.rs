//! Port policy: every (host, port) the vantage should or should not reach, probed at once.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::report::{Check, Status};
use rampart_probe::tcp::{self, PortProbe, PortState};
use rampart_topology::{Expectation, Topology};

use super::vantage::Vantage;

/// What an ad-hoc `reach ports` argument (`PORT[=STATE]`) expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Nothing: the state is listed, never judged.
    Any,
    State(PortState),
    /// `closed` or `filtered`: what "must not be reachable" accepts.
    Blocked,
}

impl Expect {
    fn words(self) -> &'static str {
        match self {
            Expect::Any => "",
            Expect::State(s) => s.name(),
            Expect::Blocked => "closed|filtered",
        }
    }

    fn judge(self, state: PortState) -> Status {
        match self {
            Expect::Any => Status::Info,
            Expect::State(s) => Status::of(s == state),
            Expect::Blocked => Status::of(state != PortState::Open),
        }
    }
}

/// A parsed `PORT[=STATE]` argument of `reach ports`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortArg {
    pub port: u16,
    pub expect: Expect,
}

impl std::str::FromStr for PortArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (port, state) = match s.split_once('=') {
            Some((p, st)) => (p, Some(st)),
            None => (s, None),
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("port \"{port}\" is not a TCP port (expected 1..65535)"))?;
        let expect = match state {
            None => Expect::Any,
            Some("open") => Expect::State(PortState::Open),
            Some("closed") => Expect::State(PortState::Closed),
            Some("filtered") => Expect::State(PortState::Filtered),
            Some("blocked") => Expect::Blocked,
            Some(other) => {
                return Err(format!(
                "state \"{other}\" is unknown (expected one of: open, closed, filtered, blocked)"
            ))
            }
        };
        Ok(PortArg { port, expect })
    }
}

fn port_check(target: &str, probe_name: String, expect: Expect, p: &PortProbe) -> Check {
    let mut check = Check::new("ports", target, probe_name)
        .with_status(expect.judge(p.state))
        .with_reason(p.reason.clone())
        .with_seconds(p.seconds);
    check.expected = expect.words().to_string();
    check.observed = p.state.name().to_string();
    check
}

fn expectation_check(e: &Expectation, p: &PortProbe) -> Check {
    let expect = if e.allowed {
        Expect::State(PortState::Open)
    } else {
        Expect::Blocked
    };
    port_check(&e.host, format!("{}/{}", e.port, e.service), expect, p)
}

/// Probes the whole policy matrix of the vantage; one check per (host, port).
pub async fn policy(topology: &Topology, vantage: &Vantage<'_>, timeout: Duration) -> Vec<Check> {
    let expectations = topology.expectations(vantage.source());
    let targets: Vec<SocketAddr> = expectations
        .iter()
        .map(|e| SocketAddr::from((e.address, e.port)))
        .collect();
    let probes = tcp::probe_all(&targets, vantage.source_ip(), timeout).await;
    expectations
        .iter()
        .zip(&probes)
        .map(|(e, p)| expectation_check(e, p))
        .collect()
}

/// The policy matrix judged on a sweep's answers instead of probes of its own.
pub fn policy_from_sweep(
    topology: &Topology,
    vantage: &Vantage<'_>,
    result: &rampart_probe::sweep::Sweep,
) -> Vec<Check> {
    topology
        .expectations(vantage.source())
        .iter()
        .filter_map(|e| {
            let p = crate::sweep::probe_of(result, e.address, e.port)?;
            Some(expectation_check(e, &p))
        })
        .collect()
}

/// `reach ports HOST PORT[=STATE]...`: probes the given ports of one address.
pub async fn adhoc(
    target: &str,
    address: IpAddr,
    ports: &[PortArg],
    source: Option<IpAddr>,
    timeout: Duration,
) -> Vec<Check> {
    let addrs: Vec<SocketAddr> = ports
        .iter()
        .map(|p| SocketAddr::new(address, p.port))
        .collect();
    let probes = tcp::probe_all(&addrs, source, timeout).await;
    ports
        .iter()
        .zip(&probes)
        .map(|(arg, p)| port_check(target, arg.port.to_string(), arg.expect, p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_arguments_name_their_expectation() {
        assert_eq!(
            "443=open".parse::<PortArg>().unwrap(),
            PortArg {
                port: 443,
                expect: Expect::State(PortState::Open)
            }
        );
        assert_eq!("22".parse::<PortArg>().unwrap().expect, Expect::Any);
        assert_eq!(
            "22=blocked".parse::<PortArg>().unwrap().expect,
            Expect::Blocked
        );
        assert_eq!(
            "0".parse::<PortArg>().unwrap_err(),
            "port \"0\" is not a TCP port (expected 1..65535)"
        );
        assert_eq!(
            "80=shut".parse::<PortArg>().unwrap_err(),
            "state \"shut\" is unknown (expected one of: open, closed, filtered, blocked)"
        );
    }

    #[test]
    fn must_not_be_reachable_accepts_closed_and_filtered_but_says_which() {
        assert_eq!(Expect::Blocked.judge(PortState::Closed), Status::Pass);
        assert_eq!(Expect::Blocked.judge(PortState::Filtered), Status::Pass);
        assert_eq!(Expect::Blocked.judge(PortState::Open), Status::Fail);
        assert_eq!(Expect::Any.judge(PortState::Open), Status::Info);
    }
}
