//! TCP connect probes, in nmap's vocabulary.
//!
//! A connect probe cannot see the SYN-ACK itself, but the kernel's answer to `connect`
//! maps onto nmap's states one to one: success means a SYN-ACK came back (`open`),
//! `ECONNREFUSED` means a RST (`closed`), and silence until the timeout, or an ICMP
//! unreachable, means something in between ate the packet (`filtered`).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::TcpSocket;

/// nmap's port states, as far as a connect scan can tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortState {
    /// A listener accepted the connection (SYN-ACK).
    Open,
    /// The host answered with a reset: reachable, nothing listens (or a reject rule).
    Closed,
    /// No answer, or an ICMP unreachable: a firewall dropped the probe.
    Filtered,
}

impl PortState {
    pub fn name(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
            PortState::Filtered => "filtered",
        }
    }
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one probe saw.
#[derive(Clone, Debug, PartialEq)]
pub struct PortProbe {
    pub state: PortState,
    /// nmap's reason: `syn-ack`, `conn-refused`, `reset`, `no-response`, `host-unreach`,
    /// `net-unreach`, `admin-prohibited`, or the OS error for anything else.
    pub reason: String,
    pub seconds: f64,
}

/// Connects to `target` (from `source` when given, so the probe leaves from the vantage's
/// own address) and classifies the answer. Never fails: every outcome is a state.
pub async fn probe(target: SocketAddr, source: Option<IpAddr>, timeout: Duration) -> PortProbe {
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, connect(target, source)).await;
    let seconds = started.elapsed().as_secs_f64();
    let (state, reason) = match outcome {
        Err(_elapsed) => (PortState::Filtered, "no-response".to_string()),
        Ok(Ok(())) => (PortState::Open, "syn-ack".to_string()),
        Ok(Err(e)) => classify(&e),
    };
    PortProbe {
        state,
        reason,
        seconds,
    }
}

async fn connect(target: SocketAddr, source: Option<IpAddr>) -> io::Result<()> {
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(source) = source {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    // Dropping the stream sends a FIN right away: the probe holds no server resources.
    let _stream = socket.connect(target).await?;
    Ok(())
}

fn classify(error: &io::Error) -> (PortState, String) {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => (PortState::Closed, "conn-refused".into()),
        io::ErrorKind::ConnectionReset => (PortState::Closed, "reset".into()),
        io::ErrorKind::HostUnreachable => (PortState::Filtered, "host-unreach".into()),
        io::ErrorKind::NetworkUnreachable => (PortState::Filtered, "net-unreach".into()),
        // EACCES/EPERM: a local output rule or an ICMP admin-prohibited answer.
        io::ErrorKind::PermissionDenied => (PortState::Filtered, "admin-prohibited".into()),
        io::ErrorKind::TimedOut => (PortState::Filtered, "no-response".into()),
        _ => (PortState::Filtered, format!("error: {error}")),
    }
}

/// Probes every target at once; the whole set costs about one `timeout`.
pub async fn probe_all(
    targets: &[SocketAddr],
    source: Option<IpAddr>,
    timeout: Duration,
) -> Vec<PortProbe> {
    let mut set = tokio::task::JoinSet::new();
    for (i, &target) in targets.iter().enumerate() {
        set.spawn(async move { (i, probe(target, source, timeout).await) });
    }
    let mut results: Vec<Option<PortProbe>> = vec![None; targets.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((i, p)) = joined {
            results[i] = Some(p);
        }
    }
    results
        .into_iter()
        .map(|p| {
            p.unwrap_or(PortProbe {
                state: PortState::Filtered,
                reason: "error: probe task failed".into(),
                seconds: 0.0,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_loopback_listener_is_open_and_a_free_port_is_closed() {
        rt().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let open = listener.local_addr().unwrap();
            // A port we bound and released: nothing listens there now.
            let closed = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap()
            };
            let source = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
            let found = probe_all(&[open, closed], source, Duration::from_secs(1)).await;
            assert_eq!(found[0].state, PortState::Open);
            assert_eq!(found[0].reason, "syn-ack");
            assert_eq!(found[1].state, PortState::Closed);
            assert_eq!(found[1].reason, "conn-refused");
        });
    }

    #[test]
    fn a_source_address_that_is_not_ours_is_an_error_not_a_panic() {
        rt().block_on(async {
            let target = SocketAddr::from((Ipv4Addr::LOCALHOST, 9));
            // 192.0.2.1 (TEST-NET-1) is never configured here; bind fails before any packet.
            let p = probe(
                target,
                Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
                Duration::from_millis(200),
            )
            .await;
            assert_eq!(p.state, PortState::Filtered);
            assert!(p.reason.starts_with("error: "), "{}", p.reason);
        });
    }
}
