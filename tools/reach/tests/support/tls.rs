//! A throwaway CA made in the test, and real TLS / HTTP servers on loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::TempDir;

/// A CA and a directory holding `ca.pem` and the leaves issued so far.
pub struct Pki {
    pub dir: TempDir,
    issuer: Issuer<'static, KeyPair>,
}

/// A leaf certificate's files.
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = super::tempdir("pki");
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "reach test CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.path.join("ca.pem"), cert.pem()).unwrap();
        Pki {
            dir,
            issuer: Issuer::new(params, key),
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path.join("ca.pem")
    }

    /// Issues a server certificate for `names`; `expired` puts notAfter in the past.
    pub fn leaf(&self, stem: &str, names: &[&str], expired: bool) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, stem);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        } else {
            // 90 days, as certtool issues them: within every TLS profile's lifespan.
            let now = time::OffsetDateTime::now_utc();
            params.not_before = now - time::Duration::days(1);
            params.not_after = now + time::Duration::days(89);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let leaf = Leaf {
            cert: self.dir.path.join(format!("{stem}.pem")),
            key: self.dir.path.join(format!("{stem}.key")),
        };
        std::fs::write(&leaf.cert, cert.pem()).unwrap();
        std::fs::write(&leaf.key, key.serialize_pem()).unwrap();
        leaf
    }
}

/// What a test server answers to every request.
#[derive(Clone)]
pub enum Answer {
    /// 200 with one of these bodies in turn (round robin), with or without HSTS.
    Pages { bodies: Vec<String>, hsts: bool },
    /// A redirect to this location.
    Redirect { status: u16, location: String },
}

impl Answer {
    fn response(&self, n: usize) -> String {
        match self {
            Answer::Pages { bodies, hsts } => {
                let body = &bodies[n % bodies.len()];
                let hsts = if *hsts {
                    "Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n"
                } else {
                    ""
                };
                format!(
                    "HTTP/1.1 200 OK\r\n{hsts}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            }
            Answer::Redirect { status, location } => format!(
                "HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        }
    }
}

/// A server on 127.0.0.1 (TLS when given a leaf), stopped and joined on drop.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn tls_acceptor(leaf: &Leaf) -> tokio_rustls::TlsAcceptor {
    use rustls_pki_types::pem::PemObject;
    let chain = rustls_pki_types::CertificateDer::pem_file_iter(&leaf.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&leaf.key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

async fn serve<S>(mut stream: S, answer: &Answer, n: usize)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(k) => request.extend_from_slice(&buf[..k]),
        }
    }
    let _ = stream.write_all(answer.response(n).as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Starts a server on a free loopback port answering `answer`, over TLS with `leaf`
/// when given.
pub fn server(leaf: Option<&Leaf>, answer: Answer) -> Server {
    server_at("127.0.0.1:0", leaf, answer)
}

/// The same on a given address.
pub fn server_at(bind: &str, leaf: Option<&Leaf>, answer: Answer) -> Server {
    let std_listener = TcpListener::bind(bind).unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let acceptor = leaf.map(tls_acceptor);
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            let count = Arc::new(AtomicUsize::new(0));
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else { continue };
                        let n = count.fetch_add(1, Ordering::Relaxed);
                        let answer = answer.clone();
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            match acceptor {
                                Some(acc) => {
                                    if let Ok(tls) = acc.accept(tcp).await {
                                        serve(tls, &answer, n).await;
                                    }
                                }
                                None => serve(tcp, &answer, n).await,
                            }
                        });
                    }
                }
            }
        });
    });
    Server {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// A free loopback port (bound and released; tests use it right away).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends a raw request and returns the raw answer (for checking a server by hand).
pub fn raw_get(addr: SocketAddr) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
