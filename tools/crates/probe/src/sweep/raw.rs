//! The raw engine: SYN probes as Ethernet frames on an `AF_PACKET` socket.
//!
//! One socket per interface both sends and receives. An in-kernel (classic BPF) filter
//! lets through only what can be an answer — IPv4 TCP to the sweep's source port, and
//! ICMP — and never the frames we send, so the receive queue holds answers only, however
//! fast the probes go out. Each probe's sequence number is a keyed hash of (target,
//! port): an answer counts only when it acknowledges exactly that number, so a stray or
//! late packet cannot pass for one.
//!
//! The sweep's source port is reserved by a bound (not listening) TCP socket for the
//! duration, so no connection of the vantage can use it, and the vantage kernel answers
//! a late SYN-ACK with its own RST. We RST every SYN-ACK ourselves at once as well: a
//! vantage firewall that drops packets it does not track would otherwise keep the
//! kernel's RST from ever being sent, and the target would hold a half-open connection.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::IntoRawFd;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use etherparse::{Ipv4HeaderSlice, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use pnet_datalink::{Channel, DataLinkReceiver, DataLinkSender, NetworkInterface};
use socket2::{Domain, Protocol, SockFilter, Socket, Type};

use super::route;
use super::{Answer, HostPorts, SweepOptions};

/// Why the raw engine cannot run here (the caller may fall back to connect probes).
#[derive(Debug)]
pub struct Unavailable(pub String);

fn unavailable(why: impl Into<String>) -> Unavailable {
    Unavailable(why.into())
}

/// Sweeps `targets` with raw SYN probes; returns every host's answers and the number of
/// probes sent.
pub fn sweep(
    targets: &[Ipv4Addr],
    options: &SweepOptions,
) -> Result<(Vec<HostPorts>, u64), Unavailable> {
    let mut hosts: Vec<HostPorts> = targets
        .iter()
        .map(|&t| HostPorts::new(t, options.ports.clone()))
        .collect();
    if targets.is_empty() {
        return Ok((hosts, 0));
    }
    // Group targets by the interface and source address the kernel would use.
    let interfaces = pnet_datalink::interfaces();
    let routes = route::routes();
    let mut groups: Vec<Link> = Vec::new();
    for (index, &target) in targets.iter().enumerate() {
        let source = route::source_towards(options.source, target)
            .map_err(|e| unavailable(format!("no route from this vantage to {target}: {e}")))?;
        let interface = interfaces
            .iter()
            .find(|i| i.ips.iter().any(|n| n.ip() == std::net::IpAddr::V4(source)))
            .ok_or_else(|| unavailable(format!("no interface holds the source {source}")))?;
        let mac = match interface.mac {
            Some(mac) if !interface.is_loopback() && mac.octets() != [0; 6] => mac.octets(),
            _ => {
                return Err(unavailable(format!(
                    "{} (towards {target}) has no Ethernet address",
                    interface.name
                )))
            }
        };
        let hop = route::next_hop(&routes, &interface.name, target).ok_or_else(|| {
            unavailable(format!(
                "no route to {target} through {} in the main table",
                interface.name
            ))
        })?;
        let link = match groups
            .iter_mut()
            .find(|g| g.interface.name == interface.name && g.source == source)
        {
            Some(g) => g,
            None => {
                groups.push(Link {
                    interface: interface.clone(),
                    mac,
                    source,
                    targets: Vec::new(),
                });
                groups.last_mut().expect("just pushed")
            }
        };
        link.targets.push((index, target, hop));
    }
    let mut probes = 0;
    for link in groups {
        probes += link.sweep(&mut hosts, options)?;
    }
    Ok((hosts, probes))
}

/// Targets that leave through one interface from one source address.
struct Link {
    interface: NetworkInterface,
    mac: [u8; 6],
    source: Ipv4Addr,
    /// (index into the result, target, next hop)
    targets: Vec<(usize, Ipv4Addr, Ipv4Addr)>,
}

/// A target as the sender sees it.
struct Peer {
    index: usize,
    address: Ipv4Addr,
    mac: [u8; 6],
}

/// The keyed hash that becomes a probe's sequence number.
#[derive(Clone, Copy)]
struct Cookie(u64);

impl Cookie {
    fn new() -> Cookie {
        // RandomState is seeded from the OS's randomness.
        let mut h = RandomState::new().build_hasher();
        h.write_u64(0x7265_6163_6820_7377); // "reach sw"
        Cookie(h.finish())
    }

    fn of(self, address: Ipv4Addr, port: u16) -> u32 {
        // splitmix64 of (secret, address, port): cheap, and unguessable without the secret.
        let mut x = self.0 ^ (u64::from(u32::from(address)) << 16) ^ u64::from(port);
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (x ^ (x >> 31)) as u32
    }
}

/// The classic BPF program of the receive socket: IPv4 that is not our own outgoing
/// frame, and either ICMP or unfragmented TCP to `port`.
fn answer_filter(port: u16) -> Vec<SockFilter> {
    const LD_W_ABS: u16 = 0x20;
    const LD_H_ABS: u16 = 0x28;
    const LD_B_ABS: u16 = 0x30;
    const LD_H_IND: u16 = 0x48;
    const LDX_B_MSH: u16 = 0xb1;
    const JEQ: u16 = 0x15;
    const JSET: u16 = 0x45;
    const RET: u16 = 0x06;
    // SKF_AD_OFF + SKF_AD_PKTTYPE; PACKET_OUTGOING is 4.
    const PKTTYPE: u32 = 0xffff_f004;
    vec![
        SockFilter::new(LD_W_ABS, 0, 0, PKTTYPE),    // 0
        SockFilter::new(JEQ, 11, 0, 4),              // 1: outgoing → drop
        SockFilter::new(LD_H_ABS, 0, 0, 12),         // 2: ethertype
        SockFilter::new(JEQ, 0, 9, 0x0800),          // 3: not IPv4 → drop
        SockFilter::new(LD_B_ABS, 0, 0, 23),         // 4: IP protocol
        SockFilter::new(JEQ, 6, 0, 1),               // 5: ICMP → accept
        SockFilter::new(JEQ, 0, 6, 6),               // 6: not TCP → drop
        SockFilter::new(LD_H_ABS, 0, 0, 20),         // 7: fragment offset
        SockFilter::new(JSET, 4, 0, 0x1fff),         // 8: a fragment → drop
        SockFilter::new(LDX_B_MSH, 0, 0, 14),        // 9: X = IP header length
        SockFilter::new(LD_H_IND, 0, 0, 16),         // 10: TCP destination port
        SockFilter::new(JEQ, 0, 1, u32::from(port)), // 11
        SockFilter::new(RET, 0, 0, 0x0004_0000),     // 12: accept
        SockFilter::new(RET, 0, 0, 0),               // 13: drop
    ]
}

/// Both ends of an `AF_PACKET` channel.
type Ends = (Box<dyn DataLinkSender>, Box<dyn DataLinkReceiver>);

/// The `AF_PACKET` channel on `interface`, filtered to answers to `port`.
fn open_channel(interface: &NetworkInterface, port: u16) -> Result<Ends, Unavailable> {
    // Protocol 0: nothing is queued until pnet binds it to the interface, by which time
    // the filter is in place.
    let socket = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0))).map_err(|e| {
        unavailable(format!(
            "cannot open an AF_PACKET socket ({e}); raw probes need CAP_NET_RAW (root)"
        ))
    })?;
    socket
        .attach_filter(&answer_filter(port))
        .map_err(|e| unavailable(format!("cannot attach the receive filter: {e}")))?;
    // Room for a burst of answers even if this thread is descheduled for a while;
    // beyond net.core.rmem_max only with CAP_NET_ADMIN.
    const RECEIVE_BUFFER: usize = 32 << 20;
    if nix::sys::socket::setsockopt(
        &socket,
        nix::sys::socket::sockopt::RcvBufForce,
        &RECEIVE_BUFFER,
    )
    .is_err()
    {
        let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER);
    }
    let config = pnet_datalink::Config {
        read_timeout: Some(Duration::from_millis(10)),
        promiscuous: false,
        socket_fd: Some(socket.into_raw_fd()),
        ..Default::default()
    };
    match pnet_datalink::channel(interface, config) {
        Ok(Channel::Ethernet(tx, rx)) => Ok((tx, rx)),
        Ok(_) => Err(unavailable("pnet returned a non-Ethernet channel")),
        Err(e) => Err(unavailable(format!(
            "cannot bind the AF_PACKET socket to {}: {e}",
            interface.name
        ))),
    }
}

/// Frames the engine writes.
struct Frames {
    mac: [u8; 6],
    source: Ipv4Addr,
    port: u16,
    buffer: Vec<u8>,
}

impl Frames {
    fn syn(&mut self, peer: &Peer, port: u16, seq: u32) -> &[u8] {
        self.tcp(peer, port, seq, true)
    }

    fn rst(&mut self, peer: &Peer, port: u16, seq: u32) -> &[u8] {
        self.tcp(peer, port, seq, false)
    }

    fn tcp(&mut self, peer: &Peer, port: u16, seq: u32, syn: bool) -> &[u8] {
        self.buffer.clear();
        let builder = PacketBuilder::ethernet2(self.mac, peer.mac)
            .ipv4(self.source.octets(), peer.address.octets(), 64)
            .tcp(self.port, port, seq, if syn { 1024 } else { 0 });
        let builder = if syn { builder.syn() } else { builder.rst() };
        // Writing into a Vec cannot fail.
        let _ = builder.write(&mut self.buffer, &[]);
        &self.buffer
    }
}

/// Sends one frame, waiting out a full transmit queue (ENOBUFS) briefly.
fn send(tx: &mut dyn DataLinkSender, frame: &[u8]) -> bool {
    for _ in 0..100 {
        match tx.send_to(frame, None) {
            Some(Ok(())) => return true,
            Some(Err(e)) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => {
                std::thread::sleep(Duration::from_micros(200))
            }
            _ => return false,
        }
    }
    false
}

/// What the receiver found, shared with the sender.
struct Table {
    /// `answers[target * 65536 + port]`, as [`Answer`] bytes.
    answers: Vec<AtomicU8>,
    /// Final answers so far (the sender stops waiting when every probe has one).
    settled: AtomicUsize,
}

impl Table {
    fn get(&self, target: usize, port: u16) -> Answer {
        Answer::from_u8(self.answers[target * 65536 + usize::from(port)].load(Ordering::Relaxed))
    }

    /// Records `answer` unless a better one is there (a SYN-ACK beats everything, any
    /// answer beats silence).
    fn record(&self, target: usize, port: u16, answer: Answer) {
        let slot = &self.answers[target * 65536 + usize::from(port)];
        let before = Answer::from_u8(slot.load(Ordering::Relaxed));
        if before == Answer::SynAck || (before.is_final() && answer != Answer::SynAck) {
            return;
        }
        slot.store(answer as u8, Ordering::Relaxed);
        if !before.is_final() {
            self.settled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A SYN-ACK to be reset: (target slot, port, its acknowledgement number).
type Reset = (usize, u16, u32);

impl Link {
    fn sweep(&self, hosts: &mut [HostPorts], options: &SweepOptions) -> Result<u64, Unavailable> {
        // Reserve the source port for the whole sweep.
        let reservation = Socket::new(Domain::IPV4, Type::STREAM, None)
            .and_then(|s| {
                s.bind(&SocketAddr::from((self.source, 0)).into())?;
                Ok(s)
            })
            .map_err(|e| unavailable(format!("cannot reserve a source port: {e}")))?;
        let port = reservation
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(|a| a.port())
            .ok_or_else(|| unavailable("the reserved source port has no address"))?;
        let (mut tx, mut rx) = open_channel(&self.interface, port)?;

        // Link-layer addresses of the next hops; a target whose hop does not answer ARP
        // is unreachable (what the kernel would report after its own ARP attempts).
        let mut peers = Vec::new();
        for (slot, &(index, address, hop)) in self.targets.iter().enumerate() {
            match route::resolve_neighbour(
                &self.interface.name,
                hop,
                self.source,
                address,
                options.timeout.max(Duration::from_millis(500)),
            ) {
                Some(mac) => peers.push((
                    slot,
                    Peer {
                        index,
                        address,
                        mac,
                    },
                )),
                None => {
                    for p in options.ports.clone() {
                        hosts[index].set(p, Answer::HostUnreachable);
                    }
                }
            }
        }
        let cookie = Cookie::new();
        let table = Table {
            answers: (0..self.targets.len() * 65536)
                .map(|_| AtomicU8::new(0))
                .collect(),
            settled: AtomicUsize::new(0),
        };
        let slot_of: Vec<(Ipv4Addr, usize)> = peers.iter().map(|(s, p)| (p.address, *s)).collect();
        let stop = AtomicBool::new(false);
        let (resets_tx, resets) = mpsc::channel::<Reset>();
        let mut frames = Frames {
            mac: self.mac,
            source: self.source,
            port,
            buffer: Vec::with_capacity(64),
        };
        let total = peers.len() * options.ports.clone().count();
        let mut sent = 0u64;

        std::thread::scope(|scope| {
            let receiver = scope.spawn(|| {
                let receive = Receive {
                    source: self.source,
                    port,
                    cookie,
                    slot_of: &slot_of,
                    table: &table,
                    resets: resets_tx,
                };
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(frame) = rx.next() {
                        receive.frame(frame);
                    }
                }
            });

            let peer_of = |slot: usize| peers.iter().find(|(s, _)| *s == slot).map(|(_, p)| p);
            let reset = |tx: &mut dyn DataLinkSender, frames: &mut Frames, r: Reset| {
                if let Some(peer) = peer_of(r.0) {
                    send(tx, frames.rst(peer, r.1, r.2));
                }
            };
            let started = Instant::now();
            for _round in 0..=options.retries {
                let mut sent_this_round = 0u64;
                for p in options.ports.clone() {
                    for (slot, peer) in &peers {
                        if table.get(*slot, p).is_final() {
                            continue;
                        }
                        send(tx.as_mut(), frames.syn(peer, p, cookie.of(peer.address, p)));
                        sent_this_round += 1;
                        while let Ok(r) = resets.try_recv() {
                            reset(tx.as_mut(), &mut frames, r);
                        }
                        if let Some(rate) = options.max_rate {
                            pace(started, sent + sent_this_round, rate);
                        }
                    }
                }
                sent += sent_this_round;
                if sent_this_round == 0 {
                    break;
                }
                // One shared deadline: the round's answers have `timeout` after its last
                // probe; stop early once every probe has a final answer.
                let deadline = Instant::now() + options.timeout;
                loop {
                    let now = Instant::now();
                    if now >= deadline || table.settled.load(Ordering::Relaxed) >= total {
                        break;
                    }
                    let wait = (deadline - now).min(Duration::from_millis(10));
                    if let Ok(r) = resets.recv_timeout(wait) {
                        reset(tx.as_mut(), &mut frames, r);
                    }
                }
            }
            stop.store(true, Ordering::Relaxed);
            let _ = receiver.join();
            // SYN-ACKs that arrived while the receiver stopped still get their RST.
            while let Ok(r) = resets.try_recv() {
                reset(tx.as_mut(), &mut frames, r);
            }
        });
        drop(reservation);

        for (slot, peer) in &peers {
            for p in options.ports.clone() {
                hosts[peer.index].set(p, table.get(*slot, p));
            }
        }
        Ok(sent)
    }
}

/// Sleeps as needed to keep `sent` probes since `started` at most `rate` per second.
fn pace(started: Instant, sent: u64, rate: u32) {
    let due = Duration::from_secs_f64(sent as f64 / f64::from(rate.max(1)));
    let elapsed = started.elapsed();
    if due > elapsed {
        std::thread::sleep(due - elapsed);
    }
}

/// The receiver: turns frames into answers.
struct Receive<'a> {
    source: Ipv4Addr,
    port: u16,
    cookie: Cookie,
    slot_of: &'a [(Ipv4Addr, usize)],
    table: &'a Table,
    resets: mpsc::Sender<Reset>,
}

impl Receive<'_> {
    fn slot(&self, address: Ipv4Addr) -> Option<usize> {
        self.slot_of
            .iter()
            .find(|(a, _)| *a == address)
            .map(|(_, s)| *s)
    }

    fn frame(&self, frame: &[u8]) {
        let Ok(packet) = SlicedPacket::from_ethernet(frame) else {
            return;
        };
        let Some(NetSlice::Ipv4(ip)) = &packet.net else {
            return;
        };
        if Ipv4Addr::from(ip.header().destination()) != self.source {
            return;
        }
        let from = Ipv4Addr::from(ip.header().source());
        match &packet.transport {
            Some(TransportSlice::Tcp(tcp)) => {
                let Some(slot) = self.slot(from) else { return };
                let port = tcp.source_port();
                let expected = self.cookie.of(from, port).wrapping_add(1);
                if tcp.destination_port() != self.port
                    || !tcp.ack()
                    || tcp.acknowledgment_number() != expected
                {
                    return;
                }
                if tcp.syn() && !tcp.rst() {
                    self.table.record(slot, port, Answer::SynAck);
                    let _ = self.resets.send((slot, port, expected));
                } else if tcp.rst() {
                    self.table.record(slot, port, Answer::Reset);
                }
            }
            Some(TransportSlice::Icmpv4(icmp)) if icmp.type_u8() == 3 => {
                self.unreachable(icmp.code_u8(), icmp.payload());
            }
            _ => {}
        }
    }

    /// An ICMP destination unreachable quoting one of our probes.
    fn unreachable(&self, code: u8, quoted: &[u8]) {
        let Ok(inner) = Ipv4HeaderSlice::from_slice(quoted) else {
            return;
        };
        let tcp = &quoted[inner.slice().len()..];
        if inner.protocol() != etherparse::IpNumber::TCP
            || Ipv4Addr::from(inner.source()) != self.source
            || tcp.len() < 8
        {
            return;
        }
        let to = Ipv4Addr::from(inner.destination());
        let Some(slot) = self.slot(to) else { return };
        let source_port = u16::from_be_bytes([tcp[0], tcp[1]]);
        let port = u16::from_be_bytes([tcp[2], tcp[3]]);
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        if source_port != self.port || seq != self.cookie.of(to, port) {
            return;
        }
        let answer = match code {
            0 | 6 | 11 => Answer::NetUnreachable,
            3 => Answer::PortUnreachable,
            9 | 10 | 13 => Answer::AdminProhibited,
            _ => Answer::HostUnreachable,
        };
        self.table.record(slot, port, answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_depend_on_secret_address_and_port() {
        let c = Cookie(42);
        let a = Ipv4Addr::new(10, 42, 0, 11);
        assert_ne!(c.of(a, 1), c.of(a, 2));
        assert_ne!(c.of(a, 1), c.of(Ipv4Addr::new(10, 42, 0, 12), 1));
        assert_ne!(c.of(a, 1), Cookie(43).of(a, 1));
        assert_eq!(c.of(a, 1), Cookie(42).of(a, 1));
    }

    #[test]
    fn frames_are_well_formed_syn_and_rst() {
        let mut frames = Frames {
            mac: [2, 0, 0, 0, 0, 1],
            source: Ipv4Addr::new(10, 42, 0, 200),
            port: 40000,
            buffer: Vec::new(),
        };
        let peer = Peer {
            index: 0,
            address: Ipv4Addr::new(10, 42, 0, 11),
            mac: [2, 0, 0, 0, 0, 2],
        };
        let syn = frames.syn(&peer, 443, 7).to_vec();
        let p = SlicedPacket::from_ethernet(&syn).unwrap();
        let Some(TransportSlice::Tcp(tcp)) = p.transport else {
            panic!("no TCP")
        };
        assert!(tcp.syn() && !tcp.ack() && !tcp.rst());
        assert_eq!(
            (
                tcp.source_port(),
                tcp.destination_port(),
                tcp.sequence_number()
            ),
            (40000, 443, 7)
        );
        let rst = frames.rst(&peer, 443, 8).to_vec();
        let p = SlicedPacket::from_ethernet(&rst).unwrap();
        let Some(TransportSlice::Tcp(tcp)) = p.transport else {
            panic!("no TCP")
        };
        assert!(tcp.rst() && !tcp.syn());
        assert_eq!(tcp.sequence_number(), 8);
    }
}
