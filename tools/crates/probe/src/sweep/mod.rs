//! The full TCP sweep: every port of every target host, classified open / closed /
//! filtered, as fast as the network and one timeout allow.
//!
//! Two engines, one result:
//!
//! - [`raw`] (the default when the process may open an `AF_PACKET` socket, i.e. has
//!   `CAP_NET_RAW`): SYN probes written as Ethernet frames straight onto the vantage's
//!   interface, answers read from the same interface through an in-kernel filter. A
//!   probe costs one `sendto`, so ~200,000 probes go out in well under a second, and no
//!   socket, no file descriptor and no connection-tracking entry is created for it on the
//!   vantage (the frames never pass the vantage's netfilter hooks). Every SYN-ACK is
//!   answered with a RST at once, so no target keeps a half-open connection.
//! - [`connect`] (the fallback, unprivileged): non-blocking `connect()` calls, as many in
//!   flight as the open-file limit allows, each closed with a RST (`SO_LINGER` 0) the
//!   moment it is established. Slower (the file-descriptor window, not the packet rate,
//!   bounds it) and, on a vantage whose own firewall tracks connections, each probe
//!   leaves a conntrack entry behind for the kernel to expire.
//!
//! Filtered ports (the default-deny firewalls drop) can only be told from slow ones by
//! waiting, so both engines share one deadline per round: every probe of the round goes
//! out, then the engine waits `timeout` after the last one. Ports still silent get
//! `retries` more rounds (nmap's `--max-retries`), which catches a probe or answer lost
//! in a burst. A sweep therefore costs about `(retries + 1) × (send time + timeout)`.

pub mod connect;
pub mod raw;
mod route;

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use crate::tcp::PortState;

/// Which engine to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Raw SYN probes when allowed, else connect probes.
    Auto,
    Raw,
    Connect,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Method::Auto),
            "raw" | "syn" => Ok(Method::Raw),
            "connect" => Ok(Method::Connect),
            _ => Err(format!(
                "sweep method \"{s}\" is unknown (expected one of: auto, raw, connect)"
            )),
        }
    }
}

/// The engine that actually ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Raw,
    Connect,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Raw => "raw SYN (AF_PACKET)",
            Engine::Connect => "connect",
        }
    }
}

/// What to sweep and how.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// The address probes leave from (the vantage's); `None`: whatever the kernel picks.
    pub source: Option<Ipv4Addr>,
    /// How long a round waits after its last probe for the answers.
    pub timeout: Duration,
    /// Extra rounds for ports that stayed silent.
    pub retries: u32,
    pub ports: RangeInclusive<u16>,
    pub method: Method,
    /// Raw engine only: at most this many probes per second (`None`: as fast as it can).
    pub max_rate: Option<u32>,
}

impl SweepOptions {
    /// Every TCP port, one retry, the given timeout.
    pub fn full(source: Option<Ipv4Addr>, timeout: Duration) -> SweepOptions {
        SweepOptions {
            source,
            timeout,
            retries: 1,
            ports: 1..=65535,
            method: Method::Auto,
            max_rate: None,
        }
    }
}

/// What one port answered, compactly (a sweep holds 65,535 of them per host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Answer {
    /// Nothing came back: dropped somewhere (filtered).
    Silence = 0,
    SynAck = 1,
    /// A RST to the raw SYN (closed).
    Reset = 2,
    /// `ECONNREFUSED` to a connect (closed).
    Refused = 3,
    HostUnreachable = 4,
    NetUnreachable = 5,
    AdminProhibited = 6,
    PortUnreachable = 7,
    /// A local error (connect engine only), e.g. no route.
    Error = 8,
}

impl Answer {
    pub(crate) fn from_u8(v: u8) -> Answer {
        match v {
            1 => Answer::SynAck,
            2 => Answer::Reset,
            3 => Answer::Refused,
            4 => Answer::HostUnreachable,
            5 => Answer::NetUnreachable,
            6 => Answer::AdminProhibited,
            7 => Answer::PortUnreachable,
            8 => Answer::Error,
            _ => Answer::Silence,
        }
    }

    pub fn state(self) -> PortState {
        match self {
            Answer::SynAck => PortState::Open,
            Answer::Reset | Answer::Refused => PortState::Closed,
            _ => PortState::Filtered,
        }
    }

    /// nmap's reason word.
    pub fn reason(self) -> &'static str {
        match self {
            Answer::Silence => "no-response",
            Answer::SynAck => "syn-ack",
            Answer::Reset => "reset",
            Answer::Refused => "conn-refused",
            Answer::HostUnreachable => "host-unreach",
            Answer::NetUnreachable => "net-unreach",
            Answer::AdminProhibited => "admin-prohibited",
            Answer::PortUnreachable => "port-unreach",
            Answer::Error => "error",
        }
    }

    /// A definitive answer (no point in asking again).
    pub(crate) fn is_final(self) -> bool {
        self != Answer::Silence
    }
}

/// Every swept port of one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPorts {
    pub address: Ipv4Addr,
    /// `answers[port]`; index 0 and ports outside the sweep stay `Silence`.
    answers: Vec<u8>,
    ports: RangeInclusive<u16>,
}

impl HostPorts {
    fn new(address: Ipv4Addr, ports: RangeInclusive<u16>) -> HostPorts {
        HostPorts {
            address,
            answers: vec![0; 65536],
            ports,
        }
    }

    pub fn answer(&self, port: u16) -> Answer {
        Answer::from_u8(self.answers[usize::from(port)])
    }

    pub(crate) fn set(&mut self, port: u16, answer: Answer) {
        self.answers[usize::from(port)] = answer as u8;
    }

    /// The swept port range.
    pub fn ports(&self) -> RangeInclusive<u16> {
        self.ports.clone()
    }

    /// Ports in `state`, ascending.
    pub fn in_state(&self, state: PortState) -> impl Iterator<Item = u16> + '_ {
        self.ports
            .clone()
            .filter(move |&p| self.answer(p).state() == state)
    }

    /// (open, closed, filtered) counts.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for p in self.ports.clone() {
            match self.answer(p).state() {
                PortState::Open => counts.0 += 1,
                PortState::Closed => counts.1 += 1,
                PortState::Filtered => counts.2 += 1,
            }
        }
        counts
    }
}

/// The result of a sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub engine: Engine,
    /// Why the raw engine was not used, when `Method::Auto` fell back.
    pub fallback: Option<String>,
    pub hosts: Vec<HostPorts>,
    /// Probes sent, retries included.
    pub probes: u64,
    pub seconds: f64,
}

/// Why a sweep could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// `Method::Raw` was asked for and is not possible here.
    #[error("raw SYN sweep unavailable: {0}")]
    RawUnavailable(String),
    #[error("sweep: {0}")]
    Io(#[from] std::io::Error),
}

/// Sweeps `targets` (blocking: the raw engine runs on threads of its own, the connect
/// engine on a runtime of its own).
pub fn sweep(targets: &[Ipv4Addr], options: &SweepOptions) -> Result<Sweep, SweepError> {
    let started = Instant::now();
    let fallback = match options.method {
        Method::Connect => None,
        Method::Raw | Method::Auto => match raw::sweep(targets, options) {
            Ok((hosts, probes)) => {
                return Ok(Sweep {
                    engine: Engine::Raw,
                    fallback: None,
                    hosts,
                    probes,
                    seconds: started.elapsed().as_secs_f64(),
                })
            }
            Err(raw::Unavailable(why)) if options.method == Method::Auto => Some(why),
            Err(raw::Unavailable(why)) => return Err(SweepError::RawUnavailable(why)),
        },
    };
    let (hosts, probes) = connect::sweep(targets, options)?;
    Ok(Sweep {
        engine: Engine::Connect,
        fallback,
        hosts,
        probes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip_and_map_to_nmap_states() {
        for v in 0..=8u8 {
            assert_eq!(Answer::from_u8(v) as u8, v);
        }
        assert_eq!(Answer::SynAck.state(), PortState::Open);
        assert_eq!(Answer::Reset.state(), PortState::Closed);
        assert_eq!(Answer::AdminProhibited.state(), PortState::Filtered);
        assert_eq!(Answer::Silence.reason(), "no-response");
    }

    #[test]
    fn host_ports_count_only_the_swept_range() {
        let mut h = HostPorts::new(Ipv4Addr::LOCALHOST, 10..=20);
        h.set(12, Answer::SynAck);
        h.set(13, Answer::Reset);
        h.set(30, Answer::SynAck); // outside the range: never counted
        assert_eq!(h.counts(), (1, 1, 9));
        assert_eq!(h.in_state(PortState::Open).collect::<Vec<_>>(), [12]);
    }

    #[test]
    fn methods_parse_with_a_helpful_error() {
        assert_eq!("raw".parse::<Method>(), Ok(Method::Raw));
        assert_eq!(
            "fast".parse::<Method>().unwrap_err(),
            "sweep method \"fast\" is unknown (expected one of: auto, raw, connect)"
        );
    }
}
