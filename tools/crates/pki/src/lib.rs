//! rampart's PKI: issue every certificate the topology needs, verify certificates and keys
//! before a deploy, and audit the Nix store for leaked secrets.
//!
//! - [`issue`]: `certtool init-ca` and `certtool issue` (rcgen; RSA through aws-lc-rs).
//! - [`verify`]: `certtool verify`, every check on every certificate ([`checks`] lists
//!   the stable check ids).
//! - [`inspect`]: `certtool inspect`, the fields of each certificate in a file.
//! - [`load`]: reading certificates, keys and directories, with an error per bad file.
//! - [`read`]: one small file read safely, and [`read::LoadError`], why loading failed.
//! - [`manifest`]: the `manifest.json` that `issue` writes (docs/contracts.md).
//! - [`store_audit`]: `certtool audit-store`, a walk over `.drv` files (nix-derivation).
//!
//! The certificate set is fixed by docs/contracts.md ("Certificates"); [`planned`]
//! derives it from a topology, so `issue` and `verify` agree on names and purposes.

pub mod checks;
pub mod inspect;
pub mod issue;
pub mod load;
pub mod manifest;
pub mod read;
pub mod store_audit;
pub mod verify;

use std::fmt;
use std::net::IpAddr;

use rampart_topology::Topology;

pub use rampart_topology::certificates::{Eku, Purpose};

/// A subject alternative name: a DNS name or an IP address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SanName {
    Dns(String),
    Ip(IpAddr),
}

impl SanName {
    /// An IP address when the text parses as one, otherwise a (lower-cased) DNS name.
    pub fn parse(text: &str) -> SanName {
        match text.parse::<IpAddr>() {
            Ok(ip) => SanName::Ip(ip),
            Err(_) => SanName::Dns(text.trim_end_matches('.').to_ascii_lowercase()),
        }
    }
}

impl fmt::Display for SanName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SanName::Dns(name) => f.write_str(name),
            SanName::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// One certificate the topology needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub host: String,
    pub purpose: Purpose,
    /// The SAN entries, in order; the first is also the common name.
    pub names: Vec<SanName>,
}

/// Every certificate the topology needs, host by host in topology order, purposes in the
/// order of docs/contracts.md.
pub fn planned(topology: &Topology) -> Vec<Planned> {
    let mut out = Vec::new();
    for host in &topology.hosts {
        let fqdn = SanName::Dns(topology.fqdn(host));
        let address = SanName::Ip(IpAddr::V4(host.address));
        for purpose in Purpose::ALL {
            if !purpose.on_host(host) {
                continue;
            }
            let names = match purpose {
                Purpose::Https => {
                    let mut names: Vec<SanName> = topology
                        .public_names
                        .iter()
                        .map(|n| SanName::parse(n))
                        .collect();
                    names.push(fqdn.clone());
                    names
                }
                Purpose::BackendClient | Purpose::ReplicationClient | Purpose::EtcdClient => {
                    vec![fqdn.clone()]
                }
                Purpose::Backend | Purpose::Mysql | Purpose::EtcdServer | Purpose::EtcdPeer => {
                    vec![fqdn.clone(), address.clone()]
                }
            };
            out.push(Planned {
                host: host.name.clone(),
                purpose,
                names,
            });
        }
    }
    out
}

/// The key algorithms rampart issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    P256,
    P384,
    Rsa2048,
    Rsa3072,
}

impl KeyType {
    pub const ALL: [KeyType; 4] = [
        KeyType::P256,
        KeyType::P384,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
    ];

    pub fn name(self) -> &'static str {
        match self {
            KeyType::P256 => "p256",
            KeyType::P384 => "p384",
            KeyType::Rsa2048 => "rsa2048",
            KeyType::Rsa3072 => "rsa3072",
        }
    }
}

impl std::str::FromStr for KeyType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyType::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!("unknown key type {s:?} (expected one of: p256, p384, rsa2048, rsa3072)")
            })
    }
}

/// Parses a duration such as `90d`, `30d`, `5y`, `12h`, `45m` or `10s` (a year is 365 days).
pub fn parse_duration(text: &str) -> Result<time::Duration, String> {
    let bad = || {
        format!(
            "{text:?} is not a duration (expected a number and one of s, m, h, d, w, y; e.g. 30d)"
        )
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(seconds)
        .filter(|s| *s <= 1000 * 365 * 86_400)
        .map(time::Duration::seconds)
        .ok_or_else(bad)
}

/// Parses an RFC 3339 instant such as `2030-01-01T00:00:00Z`.
pub fn parse_instant(text: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|e| {
        format!("{text:?} is not an RFC 3339 time ({e}; expected e.g. 2030-01-01T00:00:00Z)")
    })
}

/// Formats an instant as RFC 3339 in UTC, seconds precision (`2027-02-22T12:00:00Z`).
pub fn format_instant(t: time::OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn durations_take_a_unit_and_reject_junk() {
        assert_eq!(parse_duration("30d"), Ok(time::Duration::days(30)));
        assert_eq!(parse_duration("5y"), Ok(time::Duration::days(5 * 365)));
        assert_eq!(parse_duration("12h"), Ok(time::Duration::hours(12)));
        for bad in ["", "d", "30", "30x", "-3d", "99999999999999y"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_shipped_topology_needs_one_certificate_per_tls_link() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../hosts/topology.json");
        let topology = Topology::load(&path).unwrap();
        let plan: Vec<String> = planned(&topology)
            .iter()
            .map(|p| format!("{}/{}", p.host, p.purpose))
            .collect();
        assert_eq!(
            plan,
            [
                "lb/https",
                "lb/backend-client",
                "lb/etcd-server",
                "lb/etcd-peer",
                "web1/backend",
                "web1/mysql",
                "web1/replication-client",
                "web1/etcd-server",
                "web1/etcd-peer",
                "web1/etcd-client",
                "web2/backend",
                "web2/mysql",
                "web2/replication-client",
                "web2/etcd-server",
                "web2/etcd-peer",
                "web2/etcd-client",
            ]
        );
        let https = &planned(&topology)[0];
        assert_eq!(
            https.names.last(),
            Some(&SanName::Dns("lb.rampart.internal".into()))
        );
    }
}
