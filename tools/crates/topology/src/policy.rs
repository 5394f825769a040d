//! What the reachability policy means: which (host, service) pairs exist, and which
//! sources may reach each. The nftables renderer draws the same conclusions in Nix.

use std::net::Ipv4Addr;

use super::{Host, Rule, Selector, Topology};

/// Where traffic comes from when asking what it may reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Any address on the internet that is not one of ours.
    Internet,
    /// A specific address (a host of the topology, a lab client, an admin workstation).
    Address(Ipv4Addr),
}

/// One (target host, service) pair and whether a given source may reach it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Expectation {
    pub host: String,
    pub address: Ipv4Addr,
    pub service: String,
    pub port: u16,
    pub allowed: bool,
}

impl Topology {
    fn selects(&self, selector: &Selector, host: &Host) -> bool {
        match selector {
            Selector::Host(name) => host.name == *name,
            Selector::Role(role) => host.has_role(*role),
            Selector::AllHosts => true,
            Selector::Internet | Selector::Admin | Selector::Network(_) => false,
        }
    }

    fn admits(&self, selector: &Selector, source: Source) -> bool {
        let Source::Address(address) = source else {
            return *selector == Selector::Internet;
        };
        match selector {
            Selector::Internet => true,
            Selector::Admin => self.admin_networks.iter().any(|n| n.contains(address)),
            Selector::Network(net) => net.contains(address),
            host_selector => self
                .hosts
                .iter()
                .any(|h| h.address == address && self.selects(host_selector, h)),
        }
    }

    /// The policy rules that open something on `host`, with their index in `policy` (the
    /// firewall renderer names each accept rule `policy[<index>] <service>`).
    pub fn rules_into<'a>(&'a self, host: &'a Host) -> impl Iterator<Item = (usize, &'a Rule)> {
        self.policy
            .iter()
            .enumerate()
            .filter(move |(_, rule)| rule.to.iter().any(|s| self.selects(s, host)))
    }

    /// The services that run on a host: every service some rule opens there, by port.
    pub fn services_on(&self, host: &Host) -> Vec<(&str, u16)> {
        let mut found: Vec<(&str, u16)> = self
            .policy
            .iter()
            .filter(|rule| rule.to.iter().any(|s| self.selects(s, host)))
            .filter_map(|rule| {
                let service = self.services.get(&rule.service)?;
                Some((service.name.as_str(), service.port))
            })
            .collect();
        found.sort_by_key(|&(name, port)| (port, name));
        found.dedup();
        found
    }

    /// May `source` reach `service` on `host`? Several rules for one service add up.
    pub fn allows(&self, source: Source, host: &Host, service: &str) -> bool {
        self.policy.iter().any(|rule| {
            rule.service == service
                && rule.to.iter().any(|s| self.selects(s, host))
                && rule.from.iter().any(|s| self.admits(s, source))
        })
    }

    /// Every (host, service) pair of the topology with the verdict for `source`, in
    /// topology order then port order. A host asking about itself is left out: its own
    /// traffic stays on loopback, which no firewall rule restricts.
    pub fn expectations(&self, source: Source) -> Vec<Expectation> {
        self.hosts
            .iter()
            .filter(|host| source != Source::Address(host.address))
            .flat_map(|host| {
                self.services_on(host)
                    .into_iter()
                    .map(move |(service, port)| Expectation {
                        host: host.name.clone(),
                        address: host.address,
                        service: service.to_string(),
                        port,
                        allowed: self.allows(source, host, service),
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn shipped() -> Topology {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../hosts/topology.json");
        Topology::load(&path).unwrap()
    }

    fn allowed(t: &Topology, source: Source) -> Vec<String> {
        t.expectations(source)
            .into_iter()
            .filter(|e| e.allowed)
            .map(|e| format!("{}:{}", e.host, e.port))
            .collect()
    }

    #[test]
    fn the_internet_reaches_only_the_load_balancer_web_ports() {
        let t = shipped();
        assert_eq!(allowed(&t, Source::Internet), ["lb:80", "lb:443"]);
        let outside = t.lab.as_ref().unwrap().outside;
        assert_eq!(allowed(&t, Source::Address(outside)), ["lb:80", "lb:443"]);
    }

    #[test]
    fn the_load_balancer_reaches_backends_exporters_and_etcd_but_not_the_database() {
        let t = shipped();
        let lb = t.host("lb").unwrap().address;
        assert_eq!(
            allowed(&t, Source::Address(lb)),
            [
                "web1:2379",
                "web1:2380",
                "web1:2381",
                "web1:8443",
                "web1:9100",
                "web1:9104",
                "web1:9113",
                "web2:2379",
                "web2:2380",
                "web2:2381",
                "web2:8443",
                "web2:9100",
                "web2:9104",
                "web2:9113"
            ]
        );
    }

    #[test]
    fn database_hosts_reach_each_other_on_3306_and_every_etcd_member() {
        let t = shipped();
        let web2 = t.host("web2").unwrap().address;
        assert_eq!(
            allowed(&t, Source::Address(web2)),
            [
                "lb:80",
                "lb:443",
                "lb:2379",
                "lb:2380",
                "web1:2379",
                "web1:2380",
                "web1:3306"
            ]
        );
    }

    #[test]
    fn admins_reach_ssh_everywhere_and_the_monitoring_uis() {
        let t = shipped();
        let admin = t.lab.as_ref().unwrap().admin.unwrap();
        assert_eq!(
            allowed(&t, Source::Address(admin)),
            ["lb:22", "lb:80", "lb:443", "lb:9090", "lb:9093", "web1:22", "web2:22"]
        );
    }

    #[test]
    fn every_service_on_a_host_is_listed_once() {
        let t = shipped();
        let web1 = t.host("web1").unwrap();
        let ports: Vec<u16> = t.services_on(web1).iter().map(|&(_, p)| p).collect();
        assert_eq!(ports, [22, 2379, 2380, 2381, 3306, 8443, 9100, 9104, 9113]);
    }
}
