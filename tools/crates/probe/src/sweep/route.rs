//! Where a frame for a target goes: the next hop from the main routing table
//! (`/proc/net/route`) and its link-layer address from the neighbour table
//! (`/proc/net/arp`), both as the kernel of the process's network namespace sees them.
//!
//! Only what the raw engine needs: IPv4, the main table, no policy routing (a target this
//! cannot place falls back to connect probes, which the kernel routes itself).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// One row of the main routing table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub interface: String,
    pub destination: Ipv4Addr,
    pub mask: Ipv4Addr,
    /// `None` for an on-link route.
    pub gateway: Option<Ipv4Addr>,
    pub metric: u32,
}

/// The kernel prints addresses as the hex of their in-memory (network order) bytes.
fn hex_address(text: &str) -> Option<Ipv4Addr> {
    u32::from_str_radix(text, 16)
        .ok()
        .map(|v| Ipv4Addr::from(v.to_ne_bytes()))
}

/// Parses `/proc/net/route`; rows that are not up or do not parse are left out.
pub fn parse_routes(text: &str) -> Vec<Route> {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let flags = u32::from_str_radix(f[3], 16).ok()?;
            if flags & RTF_UP == 0 {
                return None;
            }
            let gateway = hex_address(f[2])?;
            Some(Route {
                interface: f[0].to_string(),
                destination: hex_address(f[1])?,
                mask: hex_address(f[7])?,
                gateway: (flags & RTF_GATEWAY != 0).then_some(gateway),
                metric: f[6].parse().ok()?,
            })
        })
        .collect()
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

/// The link-layer address of `address` on `interface` in `/proc/net/arp`, when the
/// entry is complete.
pub fn parse_neighbour(text: &str, interface: &str, address: Ipv4Addr) -> Option<[u8; 6]> {
    const ATF_COM: u32 = 0x2;
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[5] != interface || f[0].parse::<Ipv4Addr>().ok()? != address {
            return None;
        }
        let flags = u32::from_str_radix(f[2].trim_start_matches("0x"), 16).ok()?;
        if flags & ATF_COM == 0 {
            return None;
        }
        let mut mac = [0u8; 6];
        let mut parts = f[3].split(':');
        for byte in &mut mac {
            *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
        }
        Some(mac)
    })
}

/// The routing table of this namespace.
pub fn routes() -> Vec<Route> {
    std::fs::read_to_string("/proc/net/route")
        .map(|t| parse_routes(&t))
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
        std::fs::read_to_string("/proc/net/arp")
            .ok()
            .and_then(|t| parse_neighbour(&t, interface, hop))
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

    // Little-endian hex, as the kernel prints it on x86 (and every little-endian host).
    #[cfg(target_endian = "little")]
    #[test]
    fn routes_pick_the_longest_prefix_and_link_routes_mean_the_target_itself() {
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t01002A0A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            eth0\t00002A0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
            eth0\t00002B0A\t00000000\t0000\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let routes = parse_routes(table);
        assert_eq!(routes.len(), 3, "the route that is not up is left out");
        let web1 = Ipv4Addr::new(10, 42, 0, 11);
        assert_eq!(next_hop(&routes, "eth0", web1), Some(web1));
        assert_eq!(
            next_hop(&routes, "eth0", Ipv4Addr::new(8, 8, 8, 8)),
            Some(Ipv4Addr::new(10, 42, 0, 1))
        );
        assert_eq!(next_hop(&routes, "eth1", Ipv4Addr::new(8, 8, 8, 8)), None);
    }

    #[test]
    fn neighbours_are_used_only_when_complete() {
        let table =
            "IP address       HW type     Flags       HW address            Mask     Device\n\
            10.42.0.11       0x1         0x2         0a:1b:2c:3d:4e:5f     *        eth0\n\
            10.42.0.12       0x1         0x0         00:00:00:00:00:00     *        eth0\n";
        let web1 = Ipv4Addr::new(10, 42, 0, 11);
        assert_eq!(
            parse_neighbour(table, "eth0", web1),
            Some([0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f])
        );
        assert_eq!(parse_neighbour(table, "eth1", web1), None);
        assert_eq!(
            parse_neighbour(table, "eth0", Ipv4Addr::new(10, 42, 0, 12)),
            None
        );
    }
}
