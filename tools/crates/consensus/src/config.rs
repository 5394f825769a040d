//! Where the members are and who we are to them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart_topology::Topology;

use crate::{ConsensusError, Result};

/// The topology service of etcd's client port (gRPC over TLS with client certificates).
pub const CLIENT_SERVICE: &str = "etcdClient";
/// The topology service of etcd's peer port (raft between members).
pub const PEER_SERVICE: &str = "etcdPeer";
/// The topology service of etcd's plain-HTTP metrics and health listener.
pub const METRICS_SERVICE: &str = "etcdMetrics";

/// One etcd member: its name (the topology host's, which is also its etcd `--name`) and
/// its client URL.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    pub name: String,
    /// `https://<address>:<port>`.
    pub url: String,
}

/// How to reach the cluster: every member's client URL, the CA that signed their
/// certificates, this client's certificate and key (PEM files, read at connect time), and
/// the deadlines.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub members: Vec<Member>,
    /// The rampart CA (`<pkiDir>/ca.pem`): the only issuer whose server certificates are
    /// accepted; the members' names are checked against their IP addresses.
    pub ca: PathBuf,
    /// This client's certificate (`<pkiDir>/etcd-client.pem` on a database host).
    pub cert: PathBuf,
    /// Its private key (`<pkiDir>/etcd-client.key`).
    pub key: PathBuf,
    /// Longest wait for a TCP + TLS connection to one member.
    pub connect_timeout: Duration,
    /// Longest wait for any single call (a get, a put, a transaction, one lease
    /// renewal), retries on other members included. Past it the call returns
    /// [`ConsensusError::Timeout`]; etcd may still apply a write that timed out (the
    /// outcome is unknown, as with any timeout).
    pub request_timeout: Duration,
    /// Longest wait for one member's answer within a call, before trying the next: what
    /// a paused or partitioned member costs. Also the HTTP/2 ping interval and timeout
    /// that find a dead connection between calls.
    pub attempt_timeout: Duration,
}

impl ClientConfig {
    /// Default [`ClientConfig::connect_timeout`].
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
    /// Default [`ClientConfig::request_timeout`]: above etcd's election timeout, so a
    /// request survives a leader change, and far below any lease TTL.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
    /// Default [`ClientConfig::attempt_timeout`]: a healthy member answers in
    /// milliseconds; a third of the request timeout leaves room for two more members.
    pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

    /// Every host of the topology as a member (`https://<address>:<etcdClient port>`),
    /// with `<pki_dir>/ca.pem` and the client identity `<pki_dir>/<stem>.pem|.key`
    /// (`stem` is `etcd-client` on the database hosts, docs/contracts.md
    /// "Certificates").
    pub fn from_topology(topology: &Topology, pki_dir: &Path, stem: &str) -> Result<ClientConfig> {
        let port = topology
            .services
            .get(CLIENT_SERVICE)
            .map(|s| s.port)
            .ok_or(ConsensusError::MissingService {
                service: CLIENT_SERVICE,
            })?;
        let members = topology
            .hosts
            .iter()
            .map(|host| Member {
                name: host.name.clone(),
                url: format!("https://{}:{port}", host.address),
            })
            .collect();
        Ok(ClientConfig {
            members,
            ca: pki_dir.join("ca.pem"),
            cert: pki_dir.join(format!("{stem}.pem")),
            key: pki_dir.join(format!("{stem}.key")),
            connect_timeout: Self::CONNECT_TIMEOUT,
            request_timeout: Self::REQUEST_TIMEOUT,
            attempt_timeout: Self::ATTEMPT_TIMEOUT,
        })
    }

    /// The same identity and deadlines, talking to `member` only (for per-member health).
    pub fn only(&self, member: &Member) -> ClientConfig {
        ClientConfig {
            members: vec![member.clone()],
            ..self.clone()
        }
    }

    /// The members' URLs, comma-separated (for messages).
    pub fn urls(&self) -> String {
        self.members
            .iter()
            .map(|m| m.url.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Topology {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../hosts/topology.json");
        Topology::load(&path).unwrap()
    }

    #[test]
    fn every_host_is_a_member_at_its_address() {
        let topology = shipped();
        let Some(service) = topology.services.get(CLIENT_SERVICE) else {
            // Before hosts/topology.json declares etcd, the error names the service.
            let e =
                ClientConfig::from_topology(&topology, Path::new("/p"), "etcd-client").unwrap_err();
            assert!(e.to_string().contains("etcdClient"), "{e}");
            return;
        };
        let config =
            ClientConfig::from_topology(&topology, Path::new("/p"), "etcd-client").unwrap();
        assert_eq!(config.members.len(), topology.hosts.len());
        for (member, host) in config.members.iter().zip(&topology.hosts) {
            assert_eq!(member.name, host.name);
            assert_eq!(
                member.url,
                format!("https://{}:{}", host.address, service.port)
            );
        }
        assert_eq!(config.cert, Path::new("/p/etcd-client.pem"));
        assert_eq!(config.key, Path::new("/p/etcd-client.key"));
        assert_eq!(config.ca, Path::new("/p/ca.pem"));
        let one = config.only(&config.members[1]);
        assert_eq!(one.members, [config.members[1].clone()]);
    }
}
