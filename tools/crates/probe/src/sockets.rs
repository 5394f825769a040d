//! The listening sockets of this network namespace and the processes that hold them,
//! from the kernel's own tables (`/proc/net/{tcp,tcp6,udp,udp6}`, `/proc/<pid>/fd`, read by
//! procfs) — what is bound, whatever a firewall lets through.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use procfs::net::{TcpState, UdpState};

/// The transport of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// A process holding a socket.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owner {
    pub pid: i32,
    /// The process name (`comm`).
    pub name: String,
}

/// A listening TCP socket or an unconnected, bound UDP socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub transport: Transport,
    pub address: SocketAddr,
    /// Empty when no process could be read (not root, or it exited meanwhile).
    pub owners: Vec<Owner>,
}

impl Listener {
    /// `nginx (pid 12, 13)`, `2 processes`, or `process unknown`.
    pub fn owners_text(&self) -> String {
        let mut by_name: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for o in &self.owners {
            by_name.entry(&o.name).or_default().push(o.pid);
        }
        if by_name.is_empty() {
            return "process unknown (run as root to name it)".into();
        }
        by_name
            .into_iter()
            .map(|(name, pids)| {
                let pids: Vec<String> = pids.iter().map(i32::to_string).collect();
                format!("{name} (pid {})", pids.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Bound to every address (`0.0.0.0` or `::`).
    pub fn is_wildcard(&self) -> bool {
        self.address.ip().is_unspecified()
    }

    /// Reachable from this host only.
    pub fn is_loopback(&self) -> bool {
        match self.address.ip() {
            std::net::IpAddr::V4(a) => a.is_loopback(),
            std::net::IpAddr::V6(a) => {
                a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.transport.name(), self.address)
    }
}

/// Why the socket tables could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the socket table {table}: {problem}")]
pub struct SocketsError {
    pub table: &'static str,
    pub problem: String,
}

/// Every listener of this namespace, sorted by transport, port, address; sockets that
/// share an address (SO_REUSEPORT, forked workers) are one listener with all owners.
pub fn listeners() -> Result<Vec<Listener>, SocketsError> {
    let fail = |table: &'static str| {
        move |e: procfs::ProcError| SocketsError {
            table,
            problem: e.to_string(),
        }
    };
    let mut found: Vec<(Transport, SocketAddr, u64)> = Vec::new();
    // IPv6 tables are optional: a kernel without IPv6 has none.
    for entries in [
        procfs::net::tcp().map_err(fail("/proc/net/tcp"))?,
        procfs::net::tcp6().unwrap_or_default(),
    ] {
        found.extend(
            entries
                .into_iter()
                .filter(|e| e.state == TcpState::Listen)
                .map(|e| (Transport::Tcp, e.local_address, e.inode)),
        );
    }
    for entries in [
        procfs::net::udp().map_err(fail("/proc/net/udp"))?,
        procfs::net::udp6().unwrap_or_default(),
    ] {
        found.extend(
            entries
                .into_iter()
                // Unconnected (state 7): a socket that receives from anyone.
                .filter(|e| e.state == UdpState::Close && e.remote_address.port() == 0)
                .map(|e| (Transport::Udp, e.local_address, e.inode)),
        );
    }
    let owners = socket_owners();
    let mut merged: BTreeMap<(Transport, u16, SocketAddr), Vec<Owner>> = BTreeMap::new();
    for (transport, address, inode) in found {
        let entry = merged
            .entry((transport, address.port(), address))
            .or_default();
        for o in owners.get(&inode).into_iter().flatten() {
            if !entry.contains(o) {
                entry.push(o.clone());
            }
        }
    }
    Ok(merged
        .into_iter()
        .map(|((transport, _, address), mut owners)| {
            owners.sort();
            Listener {
                transport,
                address,
                owners,
            }
        })
        .collect())
}

/// Socket inode → the processes with a descriptor for it (those we may read).
fn socket_owners() -> BTreeMap<u64, Vec<Owner>> {
    let mut out: BTreeMap<u64, Vec<Owner>> = BTreeMap::new();
    let Ok(processes) = procfs::process::all_processes() else {
        return out;
    };
    for process in processes.flatten() {
        let Ok(fds) = process.fd() else { continue };
        let name = process
            .stat()
            .map(|s| s.comm)
            .unwrap_or_else(|_| "?".into());
        for fd in fds.flatten() {
            if let procfs::process::FDTarget::Socket(inode) = fd.target {
                out.entry(inode).or_default().push(Owner {
                    pid: process.pid,
                    name: name.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_of_this_process_is_found_with_its_owner() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let all = listeners().unwrap();
        let me = std::process::id() as i32;
        for (transport, address) in [
            (Transport::Tcp, tcp.local_addr().unwrap()),
            (Transport::Udp, udp.local_addr().unwrap()),
        ] {
            let l = all
                .iter()
                .find(|l| l.transport == transport && l.address == address)
                .unwrap_or_else(|| panic!("{address} not listed: {all:?}"));
            assert!(l.is_loopback() && !l.is_wildcard());
            assert!(l.owners.iter().any(|o| o.pid == me), "{l:?}");
        }
        // A connected UDP socket is a client, not a listener.
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(udp.local_addr().unwrap()).unwrap();
        let client_addr = client.local_addr().unwrap();
        assert!(!listeners()
            .unwrap()
            .iter()
            .any(|l| l.address == client_addr));
    }

    #[test]
    fn owners_read_as_names_with_pids() {
        let l = Listener {
            transport: Transport::Tcp,
            address: "0.0.0.0:5555".parse().unwrap(),
            owners: vec![
                Owner {
                    pid: 7,
                    name: "nginx".into(),
                },
                Owner {
                    pid: 8,
                    name: "nginx".into(),
                },
            ],
        };
        assert_eq!(l.owners_text(), "nginx (pid 7, 8)");
        assert_eq!(l.to_string(), "tcp/0.0.0.0:5555");
        assert!(l.is_wildcard());
    }
}
