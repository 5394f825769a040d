//! The vantage host's own listening sockets against the topology: every socket reachable
//! from another host must be a service the topology declares for this host, bound to
//! this host's address — whatever the firewall hides.
//!
//! Loopback-only sockets (the application behind nginx, stub_status) are not exposure and
//! are listed in one line. Every other socket is one line: ✔ when it is a declared
//! service on the host's address, ✘ when its port is not declared, when it is bound to
//! every address (`0.0.0.0`/`::`) while the topology declares one, or to an address
//! that is not the host's. A declared service nothing listens for is ✘ too.

use crate::report::{Check, Kind, Status};
use rampart_probe::sockets::{Listener, Transport};
use rampart_topology::{Host, Topology};

/// One check per listener (and per silent declared service) of `host`.
pub fn judge(topology: &Topology, host: &Host, listeners: &[Listener]) -> Vec<Check> {
    let declared = topology.services_on(host);
    let service_on = |port: u16| declared.iter().find(|(_, p)| *p == port).map(|(s, _)| *s);
    let mut out = Vec::new();
    let mut loopback = Vec::new();
    for l in listeners {
        if l.is_loopback() {
            loopback.push(format!("{} {}", l, l.owners_text()));
            continue;
        }
        let port = l.address.port();
        let service = service_on(port).filter(|_| l.transport == Transport::Tcp);
        let owners = l.owners_text();
        let probe = match service {
            Some(s) => format!("{}/{s}", l),
            None => l.to_string(),
        };
        let check = Check::new("listeners", &host.name, probe);
        let expected = format!("{}:{port}", host.address);
        out.push(match service {
            None => check
                .judged(false, "no listener (not declared)", "listening")
                .with_reason(format!(
                    "{owners}; no {} service of {} in hosts/topology.json uses port {port}: stop it, bind it to loopback, or declare the service",
                    l.transport.name(),
                    host.name
                ))
                .with_kind(Kind::UndeclaredListener),
            Some(_) if l.is_wildcard() => check
                .judged(false, expected, format!("{}", l.address))
                .with_reason(format!(
                    "{owners}; bound to every address while the topology declares only {} for {}: bind it to {} (its listen-address setting)",
                    host.address, host.name, host.address
                ))
                .with_kind(Kind::UndeclaredListener),
            Some(_) if l.address.ip() != std::net::IpAddr::V4(host.address) => check
                .judged(false, expected, format!("{}", l.address))
                .with_reason(format!(
                    "{owners}; {} is not {}'s address in hosts/topology.json",
                    l.address.ip(),
                    host.name
                ))
                .with_kind(Kind::UndeclaredListener),
            Some(_) => check
                .judged(true, expected, format!("{}", l.address))
                .with_reason(owners),
        });
    }
    for (service, port) in &declared {
        let listening = listeners.iter().any(|l| {
            l.transport == Transport::Tcp && l.address.port() == *port && !l.is_loopback()
        });
        if !listening {
            out.push(
                Check::new("listeners", &host.name, format!("tcp/{port}/{service}"))
                    .judged(false, format!("{}:{port}", host.address), "nothing listens")
                    .with_reason(format!(
                        "the topology declares {service} on {}, but no socket listens on port {port}: is its daemon running?",
                        host.name
                    )),
            );
        }
    }
    if !loopback.is_empty() {
        let mut c = Check::new("listeners", &host.name, "loopback only")
            .with_status(Status::Info)
            .with_reason("not reachable from other hosts");
        c.observed = loopback.join("; ");
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_probe::sockets::Owner;

    fn listener(address: &str, name: &str) -> Listener {
        Listener {
            transport: Transport::Tcp,
            address: address.parse().unwrap(),
            owners: vec![Owner {
                pid: 42,
                name: name.into(),
            }],
        }
    }

    fn shipped() -> Topology {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../hosts/topology.json");
        Topology::load(&path).unwrap()
    }

    #[test]
    fn declared_on_the_host_address_passes_everything_else_is_named() {
        let t = shipped();
        let web2 = t.host("web2").unwrap();
        let mut all: Vec<Listener> = t
            .services_on(web2)
            .iter()
            .map(|(_, p)| listener(&format!("10.42.0.12:{p}"), "d"))
            .collect();
        all[0] = listener("0.0.0.0:22", "sshd");
        all.push(listener("0.0.0.0:5555", "python3"));
        all.push(listener("127.0.0.1:8080", "rampart-app"));
        let checks = judge(&t, web2, &all);
        let failed: Vec<(String, String)> = checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| (c.probe.clone(), c.reason.clone().unwrap_or_default()))
            .collect();
        assert_eq!(failed.len(), 2, "{failed:#?}");
        assert!(checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .all(|c| c.kind == Some(Kind::UndeclaredListener)));
        assert_eq!(failed[0].0, "tcp/0.0.0.0:22/ssh");
        assert!(failed[0].1.starts_with("sshd (pid 42); bound to every address while the topology declares only 10.42.0.12 for web2"), "{}", failed[0].1);
        assert_eq!(failed[1].0, "tcp/0.0.0.0:5555");
        assert!(
            failed[1]
                .1
                .starts_with("python3 (pid 42); no tcp service of web2"),
            "{}",
            failed[1].1
        );
        let info = checks.iter().find(|c| c.status == Status::Info).unwrap();
        assert_eq!(info.observed, "tcp/127.0.0.1:8080 rampart-app (pid 42)");
    }

    #[test]
    fn a_declared_service_without_a_listener_is_a_finding() {
        let t = shipped();
        let web1 = t.host("web1").unwrap();
        let checks = judge(&t, web1, &[]);
        assert_eq!(checks.len(), t.services_on(web1).len());
        // Silence is not an undeclared listener.
        assert!(checks.iter().all(|c| c.kind.is_none()));
        assert!(checks
            .iter()
            .all(|c| c.status == Status::Fail && c.observed == "nothing listens"));
    }
}
