//! Where `reach check` runs from: a topology host, or the lab's `outside`/`admin` clients.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use rampart_topology::{Host, Source, Topology};

use super::ReachError;

/// The resolved `--from`: its name, the address probes leave from, and the host when the
/// vantage is one of the topology's.
#[derive(Clone, Debug)]
pub struct Vantage<'t> {
    pub name: String,
    /// `None` only for `outside` in a topology without a `lab` section: any internet
    /// address, so probes leave from whatever address the machine picks.
    pub address: Option<Ipv4Addr>,
    pub host: Option<&'t Host>,
}

impl<'t> Vantage<'t> {
    /// Resolves `--from NAME` against the topology.
    pub fn resolve(topology: &'t Topology, name: &str) -> Result<Vantage<'t>, ReachError> {
        if let Some(host) = topology.host(name) {
            return Ok(Vantage {
                name: name.to_string(),
                address: Some(host.address),
                host: Some(host),
            });
        }
        let lab = topology.lab.as_ref();
        let address = match name {
            "outside" => lab.map(|l| l.outside),
            "admin" => Some(
                lab.and_then(|l| l.admin)
                    .ok_or(ReachError::NoAdminVantage)?,
            ),
            _ => {
                let mut expected = topology.host_names().join(", ");
                expected.push_str(", outside, admin");
                return Err(ReachError::UnknownVantage {
                    got: name.to_string(),
                    expected,
                });
            }
        };
        Ok(Vantage {
            name: name.to_string(),
            address,
            host: None,
        })
    }

    /// The policy's view of this vantage.
    pub fn source(&self) -> Source {
        match self.address {
            Some(a) => Source::Address(a),
            None => Source::Internet,
        }
    }

    pub fn source_ip(&self) -> Option<IpAddr> {
        self.address.map(IpAddr::V4)
    }

    /// Fails unless the vantage's address is configured on this machine: a policy check
    /// from the wrong place would judge the wrong firewall rules.
    pub fn ensure_local(&self) -> Result<(), ReachError> {
        let Some(address) = self.address else {
            return Ok(());
        };
        // Binding needs no packet and fails with EADDRNOTAVAIL for a foreign address.
        UdpSocket::bind(SocketAddr::from((address, 0)))
            .map(drop)
            .map_err(|source| ReachError::VantageNotLocal {
                vantage: self.name.clone(),
                address,
                source,
            })
    }

    /// Is this vantage the host itself (its traffic to itself never crosses the firewall)?
    pub fn is(&self, host: &Host) -> bool {
        self.host.is_some_and(|h| h.name == host.name)
    }
}
