//! A bounded mixed load through the public endpoint, request by request: `GET /` and
//! `POST /visit?request=ID` over HTTPS keep-alive connections from inside a namespace,
//! each request recorded (method, id, when it was sent, how long it took, what came back).
//! A scenario counts failures from that, finds the POSTs whose outcome the client cannot
//! know, checks every POST against the database ([`check_applied`]) and takes the latency
//! p99 over the window of its fault.
//!
//! The client behaves like a careful user agent: it verifies the server against the lab
//! CA, keeps its connection open between requests, and, when a connection it *reused*
//! closes before any byte of an answer, sends a GET once more on a new connection (RFC 9110
//! §9.2.2; every browser does, and the count is reported). A POST is never sent twice.
//!
//! Every run is bounded: `duration` and `max_requests`, whichever comes first (or an
//! earlier [`Running::stop`]), and each request gives up after `timeout`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::netns::Namespace;
use crate::{LabError, Result};

/// The load: where from, against what, how much.
#[derive(Clone, Debug)]
pub struct MixedLoad {
    /// The namespace the clients run in (`outside`).
    pub namespace: String,
    /// The load balancer's HTTPS address.
    pub address: SocketAddr,
    /// The public name: SNI, certificate name and Host header.
    pub server_name: String,
    /// The CA the server's certificate must chain to.
    pub ca: PathBuf,
    /// Concurrent clients, one keep-alive connection each.
    pub clients: usize,
    /// Every `post_every`-th request is a POST, the others GETs.
    pub post_every: u64,
    pub duration: Duration,
    pub max_requests: u64,
    /// How long one request may take (above HAProxy's server timeout plus a retry).
    pub timeout: Duration,
    /// What each client waits between two requests (bounds the rate on a shared machine).
    pub pause: Duration,
    /// Request ids are `<run>-<client>-<n>`: unique per run.
    pub run: String,
}

/// GET or POST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// What came of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer with this status.
    Answered(u16),
    /// No connection (refused, TLS failed): the request was never sent.
    NotSent(String),
    /// Sent, or perhaps sent, and no complete answer: the connection closed, reset or
    /// timed out.
    NoAnswer(String),
}

/// One request as the client saw it.
#[derive(Clone, Debug)]
pub struct Sent {
    pub method: Method,
    /// The POST's request id.
    pub id: Option<String>,
    pub client: usize,
    /// When it was sent, since the load started.
    pub at: Duration,
    pub took: Duration,
    pub outcome: Outcome,
    /// A GET sent once more after its reused connection closed without an answer.
    pub resent: bool,
}

impl Sent {
    /// A 2xx or 3xx answer.
    pub fn succeeded(&self) -> bool {
        matches!(self.outcome, Outcome::Answered(status) if (200..400).contains(&status))
    }

    /// A failed POST whose outcome the client cannot know: no answer at all, or a
    /// gateway's 502/504 (the request may have reached the application).
    pub fn outcome_unknown(&self) -> bool {
        self.method == Method::Post
            && match self.outcome {
                Outcome::NoAnswer(_) => true,
                Outcome::Answered(status) => status == 502 || status == 504,
                Outcome::NotSent(_) => false,
            }
    }

    fn in_flight_at(&self, at: Duration) -> bool {
        self.at <= at && at < self.at + self.took
    }
}

/// Every request of one run.
#[derive(Clone, Debug, Default)]
pub struct Traffic {
    pub requests: Vec<Sent>,
    /// How long the run took.
    pub elapsed: Duration,
}

/// The counts a scenario prints.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    pub gets: usize,
    pub posts: usize,
    pub failed_gets: usize,
    pub failed_posts: usize,
    /// Failed POSTs whose outcome the client cannot know ([`Sent::outcome_unknown`]).
    pub unknown_posts: usize,
    pub resent_gets: usize,
    /// Requests in flight at some point of the window (sent before its end, answered after
    /// its start: those the event could touch), their latency p99 and the longest, in
    /// milliseconds.
    pub in_window: usize,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The first few failures, for the report.
    pub failures: Vec<String>,
}

impl Traffic {
    /// Counts over the whole run; latency p99 over the requests in flight at some point of
    /// `window` (offsets since the load started).
    pub fn figures(&self, window: Range<Duration>) -> Figures {
        let mut f = Figures::default();
        let mut latencies = Vec::new();
        for r in &self.requests {
            let failed = !r.succeeded();
            match r.method {
                Method::Get => {
                    f.gets += 1;
                    f.failed_gets += usize::from(failed);
                    f.resent_gets += usize::from(r.resent);
                }
                Method::Post => {
                    f.posts += 1;
                    f.failed_posts += usize::from(failed);
                    f.unknown_posts += usize::from(r.outcome_unknown());
                }
            }
            if failed && f.failures.len() < 10 {
                f.failures.push(format!(
                    "{} {} sent at {:.3} s, {:.3} s: {:?}",
                    match r.method {
                        Method::Get => "GET /",
                        Method::Post => "POST /visit",
                    },
                    r.id.as_deref().unwrap_or(""),
                    r.at.as_secs_f64(),
                    r.took.as_secs_f64(),
                    r.outcome
                ));
            }
            if r.at < window.end && r.at + r.took > window.start {
                latencies.push(r.took);
            }
        }
        f.in_window = latencies.len();
        f.p99_ms = percentile(&mut latencies, 0.99).as_secs_f64() * 1000.0;
        f.max_ms = percentile(&mut latencies, 1.0).as_secs_f64() * 1000.0;
        f
    }

    /// How many requests of `method` were in flight at `at` (since the load started):
    /// sent, not yet answered.
    pub fn in_flight(&self, at: Duration, method: Method) -> usize {
        self.requests
            .iter()
            .filter(|r| r.method == method && r.in_flight_at(at))
            .count()
    }

    /// The ids of every POST sent.
    pub fn post_ids(&self) -> impl Iterator<Item = &str> {
        self.requests.iter().filter_map(|r| r.id.as_deref())
    }
}

/// The `q`-quantile of some latencies (nearest rank; zero when there are none).
fn percentile(values: &mut [Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort_unstable();
    let rank = ((values.len() as f64) * q).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// Every POST of a run against what the database holds: `counts` maps a request id to
/// the number of visits carrying it (ids absent from the map have none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Acknowledged (2xx) and stored exactly once.
    pub acknowledged: usize,
    /// Failed at the client, yet stored once (the answer was lost on the way back).
    pub failed_but_applied: usize,
    /// Failed at the client and not stored.
    pub failed_not_applied: usize,
    /// Stored more than once: a replayed POST. Must stay empty.
    pub duplicates: Vec<(String, u64)>,
    /// Acknowledged but not stored: a lost write. Must stay empty.
    pub lost: Vec<String>,
}

impl Applied {
    /// No POST applied twice and none acknowledged without being stored.
    pub fn sound(&self) -> bool {
        self.duplicates.is_empty() && self.lost.is_empty()
    }
}

/// Checks every POST of `traffic` against `counts` ([`Applied`]).
pub fn check_applied(traffic: &Traffic, counts: &HashMap<String, u64>) -> Applied {
    let mut applied = Applied::default();
    for r in traffic.requests.iter().filter(|r| r.method == Method::Post) {
        let Some(id) = &r.id else { continue };
        let stored = counts.get(id).copied().unwrap_or(0);
        if stored > 1 {
            applied.duplicates.push((id.clone(), stored));
        }
        match (r.succeeded(), stored) {
            (true, 0) => applied.lost.push(id.clone()),
            (true, _) => applied.acknowledged += 1,
            (false, 0) => applied.failed_not_applied += 1,
            (false, _) => applied.failed_but_applied += 1,
        }
    }
    applied
}

/// A load in progress.
#[derive(Debug)]
pub struct Running {
    started: Instant,
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Result<Vec<Sent>>>>,
}

impl Running {
    /// Ends the load early: each client finishes the request it is on, then stops.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The offset since the load started (for marking the instant of a fault).
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until every client is done (the run's bounds end it) and merges their records.
    pub fn finish(self) -> Result<Traffic> {
        let mut requests = Vec::new();
        for client in self.clients {
            let sent = client
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            requests.extend(sent);
        }
        requests.sort_by_key(|r| r.at);
        Ok(Traffic {
            requests,
            elapsed: self.started.elapsed(),
        })
    }
}

impl MixedLoad {
    /// Starts the clients, each on a thread inside the namespace.
    pub fn start(&self) -> Result<Running> {
        let tls = Arc::new(client_config(self)?);
        let counter = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let deadline = started + self.duration;
        let clients = (0..self.clients)
            .map(|client| {
                let namespace = Namespace::open(&self.namespace)?;
                let (load, tls) = (self.clone(), tls.clone());
                let (counter, stop) = (counter.clone(), stop.clone());
                Ok(std::thread::spawn(move || {
                    namespace.enter()?;
                    Ok(Client {
                        load: &load,
                        tls,
                        index: client,
                        connection: None,
                    }
                    .run(started, deadline, &counter, &stop))
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Running {
            started,
            stop,
            clients,
        })
    }

    /// Runs the load to its end.
    pub fn run(&self) -> Result<Traffic> {
        self.start()?.finish()
    }
}

fn client_config(load: &MixedLoad) -> Result<ClientConfig> {
    let invalid = |problem: String| {
        LabError::Invalid(format!("traffic: CA {}: {problem}", load.ca.display()))
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&load.ca).map_err(|e| invalid(e.to_string()))? {
        roots
            .add(cert.map_err(|e| invalid(e.to_string()))?)
            .map_err(|e| invalid(e.to_string()))?;
    }
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
}

type Stream = BufReader<StreamOwned<ClientConnection, TcpStream>>;

struct Client<'a> {
    load: &'a MixedLoad,
    tls: Arc<ClientConfig>,
    index: usize,
    connection: Option<Stream>,
}

/// Why an exchange failed, and whether any byte of an answer had arrived.
struct Failure {
    answered_nothing: bool,
    reason: String,
}

impl Client<'_> {
    fn run(
        mut self,
        started: Instant,
        deadline: Instant,
        counter: &AtomicU64,
        stop: &AtomicBool,
    ) -> Vec<Sent> {
        let mut sent = Vec::new();
        let mut own = 0u64;
        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            if n >= self.load.max_requests {
                break;
            }
            let post = n % self.load.post_every.max(1) == self.load.post_every.max(1) - 1;
            let (method, id) = if post {
                own += 1;
                (
                    Method::Post,
                    Some(format!("{}-{}-{own}", self.load.run, self.index)),
                )
            } else {
                (Method::Get, None)
            };
            let at = started.elapsed();
            let begun = Instant::now();
            let (outcome, resent) = self.exchange(method, id.as_deref());
            sent.push(Sent {
                method,
                id,
                client: self.index,
                at,
                took: begun.elapsed(),
                outcome,
                resent,
            });
            std::thread::sleep(self.load.pause);
        }
        sent
    }

    /// One request; a GET whose reused connection closed without answering goes out
    /// once more on a new one.
    fn exchange(&mut self, method: Method, id: Option<&str>) -> (Outcome, bool) {
        let request = match (method, id) {
            (Method::Post, Some(id)) => format!(
                "POST /visit?request={id} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
                self.load.server_name
            ),
            _ => format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", self.load.server_name),
        };
        let mut resent = false;
        loop {
            let reused = self.connection.is_some();
            let stream = match self.connection.take() {
                Some(stream) => stream,
                None => match self.connect() {
                    Ok(stream) => stream,
                    Err(reason) => return (Outcome::NotSent(reason), resent),
                },
            };
            match exchange(stream, &request) {
                Ok((status, keep)) => {
                    self.connection = keep;
                    return (Outcome::Answered(status), resent);
                }
                Err(failure)
                    if failure.answered_nothing && reused && method == Method::Get && !resent =>
                {
                    resent = true;
                }
                Err(failure) => return (Outcome::NoAnswer(failure.reason), resent),
            }
        }
    }

    fn connect(&self) -> std::result::Result<Stream, String> {
        let tcp = TcpStream::connect_timeout(&self.load.address, self.load.timeout)
            .map_err(|e| format!("connect to {}: {e}", self.load.address))?;
        tcp.set_read_timeout(Some(self.load.timeout))
            .and_then(|()| tcp.set_write_timeout(Some(self.load.timeout)))
            .and_then(|()| tcp.set_nodelay(true))
            .map_err(|e| format!("socket options: {e}"))?;
        let name = ServerName::try_from(self.load.server_name.clone())
            .map_err(|e| format!("server name {:?}: {e}", self.load.server_name))?;
        let tls = ClientConnection::new(self.tls.clone(), name)
            .map_err(|e| format!("TLS set-up: {e}"))?;
        let mut stream = StreamOwned::new(tls, tcp);
        // The handshake now, so that a failed one counts as not sent.
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| format!("TLS handshake with {}: {e}", self.load.address))?;
        }
        Ok(BufReader::new(stream))
    }
}

/// Sends `request` and reads the answer; on success the stream back when the connection
/// stays open.
fn exchange<S: Read + Write>(
    mut stream: BufReader<S>,
    request: &str,
) -> std::result::Result<(u16, Option<BufReader<S>>), Failure> {
    let nothing = |reason: String| Failure {
        answered_nothing: true,
        reason,
    };
    let partial = |reason: String| Failure {
        answered_nothing: false,
        reason,
    };
    stream
        .get_mut()
        .write_all(request.as_bytes())
        .and_then(|()| stream.get_mut().flush())
        .map_err(|e| nothing(format!("sending: {}", describe(&e))))?;
    let mut line = String::new();
    match stream.read_line(&mut line) {
        Ok(0) => return Err(nothing("closed before answering".into())),
        Ok(_) => {}
        Err(e) => return Err(nothing(format!("waiting for the answer: {}", describe(&e)))),
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| partial(format!("not an HTTP status line: {:?}", line.trim_end())))?;
    let (mut length, mut chunked, mut close) = (None, false, line.starts_with("HTTP/1.0"));
    loop {
        line.clear();
        match stream.read_line(&mut line) {
            Ok(0) => return Err(partial("closed within the headers".into())),
            Ok(_) => {}
            Err(e) => return Err(partial(format!("reading headers: {}", describe(&e)))),
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.contains("chunked"),
            "connection" => close = value.contains("close"),
            _ => {}
        }
    }
    let body = if chunked {
        read_chunked(&mut stream)
    } else if let Some(length) = length {
        let mut body = vec![0; length];
        stream.read_exact(&mut body)
    } else {
        close = true;
        stream.read_to_end(&mut Vec::new()).map(|_| ())
    };
    body.map_err(|e| partial(format!("reading the body: {}", describe(&e))))?;
    Ok((status, (!close).then_some(stream)))
}

fn read_chunked(stream: &mut impl BufRead) -> std::io::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        stream.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| std::io::Error::other(format!("bad chunk size {:?}", line.trim())))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                line.clear();
                if stream.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(());
                }
            }
        }
        let mut chunk = vec![0; size + 2];
        stream.read_exact(&mut chunk)?;
    }
}

fn describe(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => "timed out".into(),
        std::io::ErrorKind::UnexpectedEof => "connection closed".into(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(method: Method, id: &str, at_ms: u64, took_ms: u64, outcome: Outcome) -> Sent {
        Sent {
            method,
            id: (method == Method::Post).then(|| id.to_string()),
            client: 0,
            at: Duration::from_millis(at_ms),
            took: Duration::from_millis(took_ms),
            outcome,
            resent: false,
        }
    }

    fn traffic() -> Traffic {
        Traffic {
            requests: vec![
                sent(Method::Get, "", 0, 10, Outcome::Answered(200)),
                sent(Method::Post, "r-1", 5, 20, Outcome::Answered(201)),
                sent(
                    Method::Post,
                    "r-2",
                    8,
                    30,
                    Outcome::NoAnswer("reset".into()),
                ),
                sent(Method::Post, "r-3", 9, 3, Outcome::Answered(502)),
                sent(
                    Method::Post,
                    "r-4",
                    12,
                    1,
                    Outcome::NotSent("refused".into()),
                ),
                sent(Method::Get, "", 20, 900, Outcome::Answered(200)),
            ],
            elapsed: Duration::from_secs(1),
        }
    }

    #[test]
    fn figures_count_failures_unknown_posts_and_the_window_p99() {
        let f = traffic().figures(Duration::from_millis(10)..Duration::from_millis(30));
        assert_eq!((f.gets, f.posts), (2, 4));
        assert_eq!((f.failed_gets, f.failed_posts, f.unknown_posts), (0, 3, 2));
        // Every request but the first GET (answered when the window opens) overlaps it.
        assert_eq!((f.in_window, f.p99_ms, f.max_ms), (5, 900.0, 900.0));
        assert_eq!(f.failures.len(), 3);
        assert!(
            f.failures[0].contains("sent at 0.008 s, 0.030 s"),
            "{:?}",
            f.failures
        );
    }

    #[test]
    fn in_flight_counts_requests_sent_and_not_yet_answered() {
        let t = traffic();
        let at = Duration::from_millis(10);
        assert_eq!(t.in_flight(at, Method::Post), 3);
        assert_eq!(t.in_flight(at, Method::Get), 0);
    }

    #[test]
    fn the_checker_sees_replays_and_lost_writes() {
        let t = traffic();
        let counts = |pairs: &[(&str, u64)]| {
            pairs
                .iter()
                .map(|(id, n)| (id.to_string(), *n))
                .collect::<HashMap<_, _>>()
        };
        let clean = check_applied(&t, &counts(&[("r-1", 1), ("r-2", 1)]));
        assert!(clean.sound());
        assert_eq!(
            (
                clean.acknowledged,
                clean.failed_but_applied,
                clean.failed_not_applied
            ),
            (1, 1, 2)
        );
        // A POST stored twice (replayed) and one acknowledged but missing are both seen.
        let replayed = check_applied(&t, &counts(&[("r-1", 1), ("r-3", 2)]));
        assert_eq!(replayed.duplicates, vec![("r-3".to_string(), 2)]);
        assert!(!replayed.sound());
        let lost = check_applied(&t, &counts(&[]));
        assert_eq!(lost.lost, vec!["r-1".to_string()]);
        assert!(!lost.sound());
    }

    /// Serves `answers` one per request on a loopback connection; returns the client side.
    fn server(answers: &'static [&'static str]) -> BufReader<TcpStream> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            for answer in answers {
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                let _ = conn.write_all(answer.as_bytes());
            }
        });
        BufReader::new(TcpStream::connect(address).unwrap())
    }

    #[test]
    fn answers_with_length_chunks_or_close_are_read_whole() {
        let get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let stream = server(&[
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
            "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
            "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        ]);
        let Ok((200, Some(stream))) = exchange(stream, get) else {
            panic!("the first answer keeps the connection")
        };
        let Ok((201, Some(stream))) = exchange(stream, get) else {
            panic!("the chunked answer keeps the connection")
        };
        let Ok((502, None)) = exchange(stream, get) else {
            panic!("Connection: close ends it")
        };
        // A server that closes without a byte: nothing was answered (a GET may go again).
        let Err(failure) = exchange(server(&[]), get) else {
            panic!("no answer is a failure")
        };
        assert!(failure.answered_nothing, "{}", failure.reason);
        let Err(failure) = exchange(server(&["HTTP/1.1 200 OK\r\nContent-Le"]), get) else {
            panic!("half an answer is a failure")
        };
        assert!(!failure.answered_nothing, "{}", failure.reason);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut values, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&mut [], 0.99), Duration::ZERO);
    }
}
