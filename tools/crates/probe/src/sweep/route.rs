//! Where a frame for a target goes: the next hop from the main routing table and its
//! link-layer address from the neighbour table, both as the kernel of the process's
//! network namespace sees them (`/proc/net/route`, `/proc/net/arp`, read by procfs).
//!
//! Only what the raw engine needs: IPv4, the main table, no policy routing (a target this
//! cannot place falls back to connect probes, which the kernel routes itself).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use procfs::net::{ARPEntry, ARPFlags, RouteEntry};

/// One usable row of the main routing table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub interface: String,
    pub destination: Ipv4Addr,
    pub mask: Ipv4Addr,
    /// `None` for an on-link route.
    pub gateway: Option<Ipv4Addr>,
    pub metric: u32,
}

impl Route {
    /// The route of a kernel table row, when it is up.
    fn from_entry(e: &RouteEntry) -> Option<Route> {
        const RTF_UP: u16 = 0x1;
        const RTF_GATEWAY: u16 = 0x2;
        (e.flags & RTF_UP != 0).then(|| Route {
            interface: e.iface.clone(),
            destination: e.destination,
            mask: e.mask,
            gateway: (e.flags & RTF_GATEWAY != 0).then_some(e.gateway),
            metric: e.metrics,
        })
    }
}

/// The next hop towards `target` through `interface`: the target itself on a link
/// route, else the gateway of the longest matching route.
pub fn next_hop(routes: &[Route], interface: &str, target: Ipv4Addr) -> Option<Ipv4Addr> {
    routes
        .iter()
        .filter(|r| r.interface == interface)
        .filter(|r| u32::from(target) & u32::from(r.mask) == u32::from(r.destination))
        .max_by_key(|r| (u32::from(r.mask).count_ones(), std::cmp::Reverse(r.metric)))
        .map(|r| r.gateway.unwrap_or(target))
}

/// The link-layer address of `address` on `interface`, when the entry is complete.
fn neighbour(table: &[ARPEntry], interface: &str, address: Ipv4Addr) -> Option<[u8; 6]> {
    table
        .iter()
        .find(|e| {
            e.device == interface && e.ip_address == address && e.flags.contains(ARPFlags::COM)
        })
        .and_then(|e| e.hw_address)
}

/// The routing table of this namespace.
pub fn routes() -> Vec<Route> {
    procfs::net::route()
        .map(|t| t.iter().filter_map(Route::from_entry).collect())
        .unwrap_or_default()
}

/// The address the kernel would send from towards `target` (a UDP "connect" sends no
/// packet), bound to `source` when given.
pub fn source_towards(source: Option<Ipv4Addr>, target: Ipv4Addr) -> std::io::Result<Ipv4Addr> {
    let socket = UdpSocket::bind(SocketAddr::from((
        source.unwrap_or(Ipv4Addr::UNSPECIFIED),
        0,
    )))?;
    socket.connect(SocketAddr::from((target, 9)))?;
    match socket.local_addr()? {
        SocketAddr::V4(a) => Ok(*a.ip()),
        SocketAddr::V6(_) => Err(std::io::Error::other("IPv6 source for an IPv4 target")),
    }
}

/// The link-layer address of `hop`, resolving it when the kernel has none yet: one UDP
/// datagram to the discard port of `target` (through `hop`) makes the kernel ask, then
/// the table is read until `limit`. `None` when nobody answered.
pub fn resolve_neighbour(
    interface: &str,
    hop: Ipv4Addr,
    source: Ipv4Addr,
    target: Ipv4Addr,
    limit: Duration,
) -> Option<[u8; 6]> {
    let read = || {
        procfs::net::arp()
            .ok()
            .and_then(|t| neighbour(&t, interface, hop))
    };
    if let Some(mac) = read() {
        return Some(mac);
    }
    if let Ok(socket) = UdpSocket::bind(SocketAddr::from((source, 0))) {
        let _ = socket.send_to(b"", SocketAddr::from((target, 9)));
    }
    let started = Instant::now();
    while started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(5));
        if let Some(mac) = read() {
            return Some(mac);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(
        interface: &str,
        destination: [u8; 4],
        mask: [u8; 4],
        gateway: Option<[u8; 4]>,
    ) -> Route {
        Route {
            interface: interface.into(),
            destination: destination.into(),
            mask: mask.into(),
            gateway: gateway.map(Ipv4Addr::from),
            metric: 0,
        }
    }

    #[test]
    fn routes_pick_the_longest_prefix_and_link_routes_mean_the_target_itself() {
        let routes = [
            route("eth0", [0, 0, 0, 0], [0, 0, 0, 0], Some([10, 42, 0, 1])),
            route("eth0", [10, 42, 0, 0], [255, 255, 255, 0], None),
            route("eth1", [192, 168, 0, 0], [255, 255, 0, 0], None),
        ];
        let web1 = Ipv4Addr::new(10, 42, 0, 11);
        assert_eq!(next_hop(&routes, "eth0", web1), Some(web1));
        assert_eq!(
            next_hop(&routes, "eth0", Ipv4Addr::new(8, 8, 8, 8)),
            Some(Ipv4Addr::new(10, 42, 0, 1))
        );
        assert_eq!(next_hop(&routes, "eth1", Ipv4Addr::new(8, 8, 8, 8)), None);
    }

    #[test]
    fn this_namespace_has_a_loopback_route_table_that_parses() {
        // Every namespace has at least an empty table; reading it must not fail.
        let _ = routes();
        assert_eq!(
            source_towards(Some(Ipv4Addr::LOCALHOST), Ipv4Addr::LOCALHOST).unwrap(),
            Ipv4Addr::LOCALHOST
        );
    }
}
