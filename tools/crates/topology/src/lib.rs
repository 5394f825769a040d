//! The typed model of `hosts/topology.json`.
//!
//! Loading runs two passes, exactly like `lib/topology.nix`: a structural pass (unknown,
//! missing and mistyped fields) and, when that is clean, a semantic pass (names,
//! addresses, roles, ports, policy). Every problem is reported, each as one line
//! `<field path>: <what is wrong>`; docs/topology.md lists the messages. The tests in
//! `tests/topology_parity.rs` hold both implementations to the same fixtures.

pub mod certificates;
pub mod net;
mod policy;
mod raw;
mod schema;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub use policy::{Expectation, Source};

use crate::net::{parse_ipv4, Ipv4Net};
use raw::RawTopology;

/// What a host does. A host may have several roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    DatabasePrimary,
    DatabaseReplica,
    LoadBalancer,
    Monitoring,
    Web,
}

impl Role {
    /// All roles, in the sorted order used in messages.
    pub const ALL: [Role; 5] = [
        Role::DatabasePrimary,
        Role::DatabaseReplica,
        Role::LoadBalancer,
        Role::Monitoring,
        Role::Web,
    ];

    /// The name used in topology.json and in `role:<name>` selectors.
    pub fn name(self) -> &'static str {
        match self {
            Role::DatabasePrimary => "databasePrimary",
            Role::DatabaseReplica => "databaseReplica",
            Role::LoadBalancer => "loadBalancer",
            Role::Monitoring => "monitoring",
            Role::Web => "web",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    fn names() -> Vec<&'static str> {
        Role::ALL.iter().map(|r| r.name()).collect()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One machine of the infrastructure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub address: Ipv4Addr,
    pub roles: Vec<Role>,
}

impl Host {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Runs MariaDB: the declared primary or a replica (which one writes is the failover
    /// agents' business, not the topology's).
    pub fn is_database(&self) -> bool {
        self.has_role(Role::DatabasePrimary) || self.has_role(Role::DatabaseReplica)
    }
}

/// A TCP service, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub port: u16,
    pub description: Option<String>,
}

/// Which hosts a rule applies to (`to`), or which hosts it admits (`from`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    Host(String),
    Role(Role),
    /// `*`: every host of the topology.
    AllHosts,
    /// `internet`: any address at all (only in `from`).
    Internet,
    /// `admin`: the topology's admin networks (only in `from`).
    Admin,
    /// A literal network (only in `from`).
    Network(Ipv4Net),
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Host(name) => f.write_str(name),
            Selector::Role(role) => write!(f, "role:{role}"),
            Selector::AllHosts => f.write_str("*"),
            Selector::Internet => f.write_str("internet"),
            Selector::Admin => f.write_str("admin"),
            Selector::Network(net) => write!(f, "{net}"),
        }
    }
}

/// One reachability rule: `from` may reach `service` on the hosts `to` selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub service: String,
    pub to: Vec<Selector>,
    pub from: Vec<Selector>,
}

/// Where Alertmanager delivers notifications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertReceiver {
    pub name: String,
    pub webhook_url: String,
}

/// Addresses of the lab's client namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lab {
    pub outside: Ipv4Addr,
    pub admin: Option<Ipv4Addr>,
}

/// A validated topology. Constructed only through [`Topology::load`] or
/// [`Topology::from_json_str`], so every value in it has passed validation.
#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    pub name: String,
    pub domain: String,
    pub network: Ipv4Net,
    pub admin_networks: Vec<Ipv4Net>,
    pub public_names: Vec<String>,
    pub hosts: Vec<Host>,
    pub services: BTreeMap<String, Service>,
    pub policy: Vec<Rule>,
    pub qps_threshold: f64,
    pub alert_receiver: AlertReceiver,
    pub lab: Option<Lab>,
}

/// Why a topology could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// The file could not be read at all. The I/O error is part of the message rather
    /// than a `source`, so that `anyhow`'s cause chain does not print it twice.
    #[error("topology: cannot read {}: {cause}", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The file is not JSON.
    #[error("topology: {} is not valid JSON (line {line}, column {column}): {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The JSON does not describe a valid topology; one message per problem.
    #[error("topology: {} is not a valid topology:\n  - {}", path.display(), problems.join("\n  - "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

impl TopologyError {
    /// The individual validation problems (empty for read and JSON errors).
    pub fn problems(&self) -> &[String] {
        match self {
            TopologyError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

/// Every structural or semantic problem of a JSON document, or none.
///
/// This is the exact counterpart of `validate` in `lib/topology.nix`.
pub fn problems(document: &serde_json::Value) -> Vec<String> {
    let structural = schema::check(document);
    if !structural.is_empty() {
        return structural;
    }
    match serde_json::from_value::<RawTopology>(document.clone()) {
        Ok(raw) => validate::check(&raw),
        // The structural pass admits only documents serde accepts; this is a bug guard.
        Err(e) => vec![format!("topology: {e}")],
    }
}

impl Topology {
    /// Reads and validates a topology file.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|cause| TopologyError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        Topology::from_json_str(&text, path)
    }

    /// Validates topology JSON; `origin` only names the source in errors.
    pub fn from_json_str(text: &str, origin: &Path) -> Result<Topology, TopologyError> {
        let document: serde_json::Value =
            serde_json::from_str(text).map_err(|e| TopologyError::Json {
                path: origin.to_path_buf(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })?;
        let invalid = |problems| TopologyError::Invalid {
            path: origin.to_path_buf(),
            problems,
        };
        let found = problems(&document);
        if !found.is_empty() {
            return Err(invalid(found));
        }
        let raw: RawTopology =
            serde_json::from_value(document).map_err(|e| invalid(vec![e.to_string()]))?;
        Topology::from_raw(raw).map_err(|p| invalid(vec![p]))
    }

    /// Converts a validated raw topology; fails only if the two passes disagree.
    fn from_raw(raw: RawTopology) -> Result<Topology, String> {
        let bug = |what: &str| {
            format!("topology: internal error: {what} passed validation but does not parse")
        };
        let address = |text: &str| parse_ipv4(text).ok_or_else(|| bug(text));
        let net = |text: &str| Ipv4Net::parse_strict(text).map_err(|_| bug(text));
        let selector = |text: &str| -> Result<Selector, String> {
            Ok(match text {
                "*" => Selector::AllHosts,
                "internet" => Selector::Internet,
                "admin" => Selector::Admin,
                _ if text.starts_with(|c: char| c.is_ascii_digit()) => {
                    Selector::Network(net(text)?)
                }
                _ => match text.strip_prefix("role:") {
                    Some(role) => Selector::Role(Role::from_name(role).ok_or_else(|| bug(text))?),
                    None => Selector::Host(text.to_string()),
                },
            })
        };
        let selectors = |list: &[String]| {
            list.iter()
                .map(|s| selector(s))
                .collect::<Result<Vec<_>, _>>()
        };
        let hosts = raw
            .hosts
            .iter()
            .map(|h| {
                let mut roles = h
                    .roles
                    .iter()
                    .map(|r| Role::from_name(r).ok_or_else(|| bug(r)))
                    .collect::<Result<Vec<_>, _>>()?;
                roles.sort();
                roles.dedup();
                Ok(Host {
                    name: h.name.clone(),
                    address: address(&h.address)?,
                    roles,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let services = raw
            .services
            .iter()
            .map(|(name, s)| {
                let port = u16::try_from(s.port).map_err(|_| bug(name))?;
                let service = Service {
                    name: name.clone(),
                    port,
                    description: s.description.clone(),
                };
                Ok((name.clone(), service))
            })
            .collect::<Result<BTreeMap<_, _>, String>>()?;
        let policy = raw
            .policy
            .iter()
            .map(|r| {
                Ok(Rule {
                    service: r.service.clone(),
                    to: selectors(&r.to)?,
                    from: selectors(&r.from)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let lab = match &raw.lab {
            None => None,
            Some(lab) => Some(Lab {
                outside: address(&lab.outside)?,
                admin: lab.admin.as_deref().map(address).transpose()?,
            }),
        };
        Ok(Topology {
            name: raw.name,
            domain: raw.domain,
            network: net(&raw.network.cidr)?,
            admin_networks: raw
                .admin_networks
                .iter()
                .map(|c| net(c))
                .collect::<Result<_, _>>()?,
            public_names: raw.public_names,
            hosts,
            services,
            policy,
            qps_threshold: raw.monitoring.qps_threshold.as_f64().unwrap_or_default(),
            alert_receiver: AlertReceiver {
                name: raw.monitoring.alert_receiver.name,
                webhook_url: raw.monitoring.alert_receiver.webhook_url,
            },
            lab,
        })
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The hosts that run MariaDB ([`Host::is_database`]), in topology order.
    pub fn database_hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(|h| h.is_database())
    }

    /// Hosts with a role, in topology order.
    pub fn hosts_with_role(&self, role: Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |h| h.has_role(role))
    }

    /// `<host>.<domain>`, the name in every internal certificate.
    pub fn fqdn(&self, host: &Host) -> String {
        format!("{}.{}", host.name, self.domain)
    }

    /// The host names, for messages that list the valid choices.
    pub fn host_names(&self) -> Vec<&str> {
        self.hosts.iter().map(|h| h.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Topology {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../hosts/topology.json");
        Topology::load(&path).expect("shipped topology is valid")
    }

    #[test]
    fn shipped_topology_loads_with_typed_values() {
        let t = shipped();
        assert_eq!(t.host_names(), ["lb", "web1", "web2"]);
        let lb = t.host("lb").unwrap();
        assert_eq!(lb.roles, [Role::LoadBalancer, Role::Monitoring]);
        assert_eq!(t.services["backendHttps"].port, 8443);
        assert_eq!(t.fqdn(lb), "lb.rampart.internal");
        assert_eq!(t.hosts_with_role(Role::Web).count(), 2);
        assert!(t.qps_threshold > 0.0);
    }

    #[test]
    fn not_json_names_line_and_column() {
        let err =
            Topology::from_json_str("{\n  \"version\": 1,,\n}", Path::new("t.json")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("topology: t.json is not valid JSON (line 2"),
            "{text}"
        );
    }

    #[test]
    fn a_non_object_is_a_structural_problem() {
        assert_eq!(
            problems(&serde_json::json!([1, 2])),
            ["topology: expected object, got array"]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut doc: serde_json::Value =
            serde_json::from_str(include_str!("../../../../hosts/topology.json")).unwrap();
        doc["version"] = 3.into();
        doc["hosts"][1]["address"] = "10.42.0.300".into();
        doc["services"]["https"]["port"] = 0.into();
        let found = problems(&doc);
        assert_eq!(
            found,
            [
                "version: unsupported version 3 (expected 1)",
                "hosts[1].address: \"10.42.0.300\" is not an IPv4 address",
                "services.https.port: 0 is out of range (expected 1..65535)",
            ]
        );
    }
}
