//! The certificate contract (docs/contracts.md, "Certificates"): which certificate files
//! each host holds, by its roles, and the key usage each must carry. certtool issues and
//! verifies exactly this set (`rampart_pki::planned`); reach checks the same files on a
//! host; the NixOS modules and the lab give daemons the same names.

use std::fmt;

use crate::{Host, Role};

/// What a leaf certificate is for: the extended key usage it must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Eku {
    /// `serverAuth` (1.3.6.1.5.5.7.3.1): presented by a TLS server.
    ServerAuth,
    /// `clientAuth` (1.3.6.1.5.5.7.3.2): presented by a TLS client (mTLS).
    ClientAuth,
    /// Both: presented by a daemon that is server and client on the same link with the
    /// same certificate (etcd's peers dial each other; etcd 3.4's gRPC gateway dials its
    /// own client port with the server certificate).
    ServerAndClientAuth,
}

impl Eku {
    pub const ALL: [Eku; 3] = [Eku::ServerAuth, Eku::ClientAuth, Eku::ServerAndClientAuth];

    /// The name used in the manifest and in messages (`serverAuth`, `clientAuth`,
    /// `serverAuth+clientAuth`).
    pub fn name(self) -> &'static str {
        match self {
            Eku::ServerAuth => "serverAuth",
            Eku::ClientAuth => "clientAuth",
            Eku::ServerAndClientAuth => "serverAuth+clientAuth",
        }
    }

    pub fn from_name(name: &str) -> Option<Eku> {
        Eku::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Whether the certificate must carry `serverAuth`.
    pub fn server(self) -> bool {
        matches!(self, Eku::ServerAuth | Eku::ServerAndClientAuth)
    }

    /// Whether the certificate must carry `clientAuth`.
    pub fn client(self) -> bool {
        matches!(self, Eku::ClientAuth | Eku::ServerAndClientAuth)
    }
}

impl fmt::Display for Eku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One TLS link's certificate, as named in docs/contracts.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Purpose {
    /// The load balancer's public HTTPS certificate.
    Https,
    /// HAProxy's client identity towards nginx (LB→backend mTLS).
    BackendClient,
    /// nginx's backend listener that HAProxy re-encrypts to.
    Backend,
    /// MariaDB's server certificate.
    Mysql,
    /// The replica's client certificate for replication.
    ReplicationClient,
    /// etcd's client port (every host is a member).
    EtcdServer,
    /// etcd's peer port: members dial each other with it and serve with it.
    EtcdPeer,
    /// The failover agent's identity towards etcd (database hosts).
    EtcdClient,
}

impl Purpose {
    pub const ALL: [Purpose; 8] = [
        Purpose::Https,
        Purpose::BackendClient,
        Purpose::Backend,
        Purpose::Mysql,
        Purpose::ReplicationClient,
        Purpose::EtcdServer,
        Purpose::EtcdPeer,
        Purpose::EtcdClient,
    ];

    /// The file stem on hosts (`<pkiDir>/<stem>.pem|key`), also the manifest's `purpose`.
    pub fn stem(self) -> &'static str {
        match self {
            Purpose::Https => "https",
            Purpose::BackendClient => "backend-client",
            Purpose::Backend => "backend",
            Purpose::Mysql => "mysql",
            Purpose::ReplicationClient => "replication-client",
            Purpose::EtcdServer => "etcd-server",
            Purpose::EtcdPeer => "etcd-peer",
            Purpose::EtcdClient => "etcd-client",
        }
    }

    pub fn from_stem(stem: &str) -> Option<Purpose> {
        Purpose::ALL.into_iter().find(|p| p.stem() == stem)
    }

    pub fn eku(self) -> Eku {
        match self {
            Purpose::Https | Purpose::Backend | Purpose::Mysql => Eku::ServerAuth,
            Purpose::BackendClient | Purpose::ReplicationClient | Purpose::EtcdClient => {
                Eku::ClientAuth
            }
            Purpose::EtcdServer | Purpose::EtcdPeer => Eku::ServerAndClientAuth,
        }
    }

    /// The roles whose hosts get this certificate; `None`: every host (etcd has a member
    /// on each).
    pub fn roles(self) -> Option<&'static [Role]> {
        match self {
            Purpose::Https | Purpose::BackendClient => Some(&[Role::LoadBalancer]),
            Purpose::Backend => Some(&[Role::Web]),
            Purpose::Mysql | Purpose::ReplicationClient | Purpose::EtcdClient => {
                Some(&[Role::DatabasePrimary, Role::DatabaseReplica])
            }
            Purpose::EtcdServer | Purpose::EtcdPeer => None,
        }
    }

    /// Whether `host` gets this certificate.
    pub fn on_host(self, host: &Host) -> bool {
        self.roles()
            .is_none_or(|roles| roles.iter().any(|r| host.has_role(*r)))
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.stem())
    }
}
