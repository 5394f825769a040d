//! The connect engine: non-blocking `connect()` calls, as many in flight as the open-file
//! limit allows. Needs no privilege.
//!
//! Each probe is a socket bound to the source address with `IP_BIND_ADDRESS_NO_PORT`
//! (the kernel picks the port at connect time, per destination, so 200,000 probes do not
//! exhaust the ephemeral range), and an established connection is closed with a RST
//! (`SO_LINGER` 0): the target never keeps it, and no TIME_WAIT stays here.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::task::JoinSet;

use super::{Answer, HostPorts, SweepOptions};

/// File descriptors left for everything else the process does.
const SPARE_DESCRIPTORS: u64 = 256;

/// Raises the soft open-file limit to the hard one (allowed to anyone) and returns how
/// many probes may be in flight at once.
fn window() -> usize {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (mut soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024));
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        soft = hard;
    }
    soft.saturating_sub(SPARE_DESCRIPTORS).clamp(64, 1 << 16) as usize
}

fn classify(error: &io::Error) -> Answer {
    match error.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => Answer::Refused,
        io::ErrorKind::HostUnreachable => Answer::HostUnreachable,
        io::ErrorKind::NetworkUnreachable => Answer::NetUnreachable,
        io::ErrorKind::PermissionDenied => Answer::AdminProhibited,
        io::ErrorKind::TimedOut => Answer::Silence,
        _ => Answer::Error,
    }
}

async fn probe(target: SocketAddr, source: Option<Ipv4Addr>, timeout: Duration) -> Answer {
    let socket = match open(source) {
        Ok(s) => s,
        Err(_) => return Answer::Error,
    };
    match tokio::time::timeout(timeout, socket.connect(target)).await {
        Err(_elapsed) => Answer::Silence,
        Ok(Ok(stream)) => {
            // Dropped with a RST: the target frees the connection at once.
            let _ = stream.set_zero_linger();
            Answer::SynAck
        }
        Ok(Err(e)) => classify(&e),
    }
}

fn open(source: Option<Ipv4Addr>) -> io::Result<tokio::net::TcpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    if let Some(source) = source {
        nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::IpBindAddressNoPort,
            &true,
        )
        .map_err(io::Error::from)?;
        socket.bind(&SocketAddr::from((source, 0)).into())?;
    }
    Ok(tokio::net::TcpSocket::from_std_stream(socket.into()))
}

/// Sweeps `targets` with connect probes on a runtime of its own.
pub fn sweep(targets: &[Ipv4Addr], options: &SweepOptions) -> io::Result<(Vec<HostPorts>, u64)> {
    let mut hosts: Vec<HostPorts> = targets
        .iter()
        .map(|&t| HostPorts::new(t, options.ports.clone()))
        .collect();
    let window = window();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut sent = 0u64;
    runtime.block_on(async {
        for _round in 0..=options.retries {
            // Port-major order spreads the load over the targets.
            let todo: Vec<(usize, u16)> = options
                .ports
                .clone()
                .flat_map(|p| (0..hosts.len()).map(move |h| (h, p)))
                .filter(|&(h, p)| !hosts[h].answer(p).is_final())
                .collect();
            if todo.is_empty() {
                break;
            }
            sent += todo.len() as u64;
            let mut set = JoinSet::new();
            let mut next = todo.into_iter();
            loop {
                while set.len() < window {
                    let Some((h, p)) = next.next() else { break };
                    let target = SocketAddr::from((hosts[h].address, p));
                    let (source, timeout) = (options.source, options.timeout);
                    set.spawn(async move { (h, p, probe(target, source, timeout).await) });
                }
                match set.join_next().await {
                    Some(Ok((h, p, answer))) => hosts[h].set(p, answer),
                    Some(Err(_)) => {}
                    None => break,
                }
            }
        }
    });
    Ok((hosts, sent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::PortState;

    #[test]
    fn a_loopback_sweep_finds_the_listener_and_resets_elsewhere() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().port();
        let options = SweepOptions {
            source: Some(Ipv4Addr::LOCALHOST),
            timeout: Duration::from_millis(500),
            retries: 0,
            ports: open.saturating_sub(50)..=open.saturating_add(50),
            method: super::super::Method::Connect,
            max_rate: None,
        };
        let (hosts, sent) = sweep(&[Ipv4Addr::LOCALHOST], &options).unwrap();
        assert_eq!(sent, options.ports.clone().count() as u64);
        let found: Vec<u16> = hosts[0].in_state(PortState::Open).collect();
        assert!(found.contains(&open), "{found:?}");
        assert_eq!(hosts[0].answer(open).reason(), "syn-ack");
        // Loopback answers every other port with a reset: nothing is filtered.
        let (_, closed, filtered) = hosts[0].counts();
        assert_eq!(filtered, 0);
        assert!(closed >= 90, "{closed}");
    }
}
