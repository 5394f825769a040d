//! A TLS client that offers exactly what it is told — one protocol version, one cipher
//! suite, one key-exchange group — and reports what the server chose. Built on OpenSSL
//! (Debian's libssl, through the `openssl` crate): rustls cannot offer a single group or
//! suite, nor speak TLS 1.0/1.1 at all.
//!
//! What a server *accepts* is decided by its ServerHello, not by the end of the
//! handshake: a server that requires a client certificate still chose our version, suite
//! and group before it asked for one. So an outcome is `accepted` as soon as the client
//! got past the ServerHello (OpenSSL records the chosen suite then), even when the
//! handshake later fails; the server's certificate chain is kept whenever it arrived.
//! Certificates are not verified here (the caller judges the chain), so that every
//! question is asked whatever the certificate.
//!
//! MariaDB speaks TLS only after its plaintext greeting: [`Starttls::Mysql`] reads the
//! greeting, checks that the server offers SSL, and sends the SSL request packet first
//! (what `openssl s_client -starttls mysql` and `testssl.sh -t mysql` do).

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::ssl::{Ssl, SslContext, SslMethod, SslVerifyMode, SslVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

/// A protocol version to offer alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl Version {
    pub const ALL: [Version; 4] = [
        Version::Tls10,
        Version::Tls11,
        Version::Tls12,
        Version::Tls13,
    ];

    /// The name OpenSSL, nginx, MariaDB and Mozilla's profiles use (`TLSv1.2`).
    pub fn name(self) -> &'static str {
        match self {
            Version::Tls10 => "TLSv1",
            Version::Tls11 => "TLSv1.1",
            Version::Tls12 => "TLSv1.2",
            Version::Tls13 => "TLSv1.3",
        }
    }

    pub fn from_name(name: &str) -> Option<Version> {
        Version::ALL
            .into_iter()
            .find(|v| v.name() == name || (name == "TLSv1.0" && *v == Version::Tls10))
    }

    fn openssl(self) -> SslVersion {
        match self {
            Version::Tls10 => SslVersion::TLS1,
            Version::Tls11 => SslVersion::TLS1_1,
            Version::Tls12 => SslVersion::TLS1_2,
            Version::Tls13 => SslVersion::TLS1_3,
        }
    }
}

/// How TLS starts on the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Starttls {
    /// TLS from the first byte.
    None,
    /// After MariaDB/MySQL's greeting and an SSL request packet.
    Mysql,
}

/// Every TLS 1.3 suite OpenSSL implements.
pub const TLS13_SUITES: [&str; 5] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_CCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
];

/// Key-exchange groups to ask about, by OpenSSL's names; [`supported_groups`] keeps the
/// ones this libssl can offer.
pub const GROUPS: [&str; 22] = [
    "X25519",
    "X448",
    "prime256v1",
    "secp384r1",
    "secp521r1",
    "ffdhe2048",
    "ffdhe3072",
    "ffdhe4096",
    "ffdhe6144",
    "ffdhe8192",
    "brainpoolP256r1",
    "brainpoolP384r1",
    "brainpoolP512r1",
    "secp256k1",
    "secp224r1",
    "secp224k1",
    "secp192k1",
    "prime192v1",
    "secp160r1",
    "secp160r2",
    "secp160k1",
    "sect571r1",
];

/// The groups of [`GROUPS`] this libssl can offer under `version` (finite-field groups
/// only under TLS 1.3, where they are negotiated; brainpool and the small curves only
/// under TLS 1.2, which has them).
pub fn supported_groups(version: Version) -> Vec<&'static str> {
    GROUPS
        .into_iter()
        .filter(|g| {
            let ffdhe = g.starts_with("ffdhe");
            if version == Version::Tls13 {
                // OpenSSL 3.0 offers only these under TLS 1.3.
                matches!(
                    *g,
                    "X25519" | "X448" | "prime256v1" | "secp384r1" | "secp521r1"
                ) || ffdhe
            } else {
                !ffdhe
            }
        })
        .filter(|g| {
            SslContext::builder(SslMethod::tls_client())
                .map(|mut b| {
                    b.set_security_level(0);
                    b.set_groups_list(g).is_ok()
                })
                .unwrap_or(false)
        })
        .collect()
}

/// What to offer.
#[derive(Clone, Debug, Default)]
pub struct Offer {
    /// Offer only this version (`None`: TLS 1.0 to 1.3).
    pub version: Option<Version>,
    /// TLS ≤ 1.2 suites, an OpenSSL cipher string (`None`: all of them).
    pub ciphers: Option<String>,
    /// TLS 1.3 suites, `:`-separated (`None`: all of them).
    pub suites: Option<String>,
    /// Groups, `:`-separated (`None`: every supported one).
    pub groups: Option<String>,
}

/// What the server chose.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The server answered with a ServerHello that picked from our offer.
    pub accepted: bool,
    pub version: Option<String>,
    /// OpenSSL's name of the suite.
    pub cipher: Option<String>,
    /// The key-exchange group (`X25519`, `prime256v1`, `ffdhe2048`, `DH 2048`).
    pub group: Option<String>,
    /// The server's chain as sent, leaf first, DER.
    pub chain: Vec<Vec<u8>>,
    /// Why the handshake did not finish (accepted or not).
    pub error: Option<String>,
}

/// What answers on a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Speaks {
    /// TLS from the first byte.
    Tls,
    /// MariaDB/MySQL offering SSL.
    MysqlTls,
    /// MariaDB/MySQL without SSL, or refusing this client before TLS (the reason).
    MysqlPlain(String),
    /// Something else (the reason: what came back).
    Other(String),
}

/// The server's greeting as far as TLS is concerned.
#[derive(Debug, PartialEq, Eq)]
enum Greeting {
    /// Protocol 10 with these capability flags (lower 16 bits).
    Handshake { capabilities: u16 },
    /// An error packet instead (host not allowed, too many connections).
    Error(String),
}

/// The MySQL protocol's SSL capability flag.
const CLIENT_SSL: u16 = 0x0800;

/// Parses a MySQL greeting packet (header included); `None` when it is not one.
fn parse_greeting(packet: &[u8]) -> Option<Greeting> {
    let payload = packet.get(4..)?;
    match payload.first()? {
        0xff => {
            let message = payload.get(3..).unwrap_or_default();
            let message = String::from_utf8_lossy(message);
            Some(Greeting::Error(
                message.trim_start_matches('#').trim().to_string(),
            ))
        }
        10 => {
            // version string, NUL; connection id (4); auth data (8); filler (1); caps (2)
            let nul = payload[1..].iter().position(|&b| b == 0)? + 1;
            let at = nul + 1 + 4 + 8 + 1;
            let caps = payload.get(at..at + 2)?;
            Some(Greeting::Handshake {
                capabilities: u16::from_le_bytes([caps[0], caps[1]]),
            })
        }
        _ => None,
    }
}

/// The SSL request packet (sequence 1) that switches the connection to TLS.
fn ssl_request() -> [u8; 36] {
    const CLIENT_LONG_PASSWORD: u32 = 0x1;
    const CLIENT_PROTOCOL_41: u32 = 0x200;
    const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
    let flags = CLIENT_LONG_PASSWORD
        | CLIENT_PROTOCOL_41
        | CLIENT_SECURE_CONNECTION
        | u32::from(CLIENT_SSL);
    let mut packet = [0u8; 36];
    packet[..4].copy_from_slice(&[32, 0, 0, 1]);
    packet[4..8].copy_from_slice(&flags.to_le_bytes());
    packet[8..12].copy_from_slice(&(16u32 << 20).to_le_bytes());
    packet[12] = 45; // utf8mb4
    packet
}

/// Reads one MySQL packet (up to a few kilobytes), header included.
async fn read_packet(tcp: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut header = [0u8; 4];
    tcp.read_exact(&mut header).await?;
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    if len > 16 * 1024 {
        return Err(std::io::Error::other(format!(
            "a {len}-byte first packet is no MySQL greeting"
        )));
    }
    let mut packet = header.to_vec();
    packet.resize(4 + len, 0);
    tcp.read_exact(&mut packet[4..]).await?;
    Ok(packet)
}

/// Connects and gets the connection to the point where the ClientHello goes out.
async fn open(address: SocketAddr, starttls: Starttls) -> Result<TcpStream, String> {
    let mut tcp = TcpStream::connect(address)
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    if starttls == Starttls::Mysql {
        let packet = read_packet(&mut tcp)
            .await
            .map_err(|e| format!("no MySQL greeting from {address}: {e}"))?;
        match parse_greeting(&packet) {
            Some(Greeting::Handshake { capabilities }) if capabilities & CLIENT_SSL != 0 => {
                tcp.write_all(&ssl_request())
                    .await
                    .map_err(|e| format!("cannot send the SSL request: {e}"))?;
            }
            Some(Greeting::Handshake { .. }) => {
                return Err(format!(
                    "{address} does not offer SSL in its MySQL greeting"
                ))
            }
            Some(Greeting::Error(message)) => {
                return Err(format!("{address} refused before TLS: {message}"))
            }
            None => return Err(format!("{address} sent no MySQL greeting")),
        }
    }
    Ok(tcp)
}

/// What answers on `address`: TLS, MariaDB (with or without SSL), or something else.
/// A server that speaks first gets `greeting` to do so; otherwise a ClientHello is sent.
pub async fn detect(address: SocketAddr, sni: Option<&str>, timeout: Duration) -> Speaks {
    let greeting = timeout.min(Duration::from_millis(300));
    let first = async {
        let mut tcp = TcpStream::connect(address)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        match tokio::time::timeout(greeting, read_packet(&mut tcp)).await {
            // Silence: a client-first protocol, maybe TLS.
            Err(_) => Ok(None),
            Ok(Ok(packet)) => Ok(Some(parse_greeting(&packet))),
            Ok(Err(e)) => Err(format!("the server spoke first, and not MySQL: {e}")),
        }
    };
    match tokio::time::timeout(timeout + greeting, first).await {
        Err(_) => Speaks::Other("no answer".into()),
        Ok(Err(e)) => Speaks::Other(e),
        Ok(Ok(Some(Some(Greeting::Handshake { capabilities })))) => {
            if capabilities & CLIENT_SSL != 0 {
                Speaks::MysqlTls
            } else {
                Speaks::MysqlPlain("the MySQL greeting offers no SSL".into())
            }
        }
        Ok(Ok(Some(Some(Greeting::Error(message))))) => {
            Speaks::MysqlPlain(format!("refused before TLS: {message}"))
        }
        Ok(Ok(Some(None))) => Speaks::Other("the server spoke first, not MySQL".into()),
        Ok(Ok(None)) => {
            let outcome = handshake(address, sni, Starttls::None, &Offer::default(), timeout).await;
            match outcome {
                Ok(o) if o.accepted => Speaks::Tls,
                Ok(o) => Speaks::Other(o.error.unwrap_or_else(|| "no ServerHello".into())),
                Err(e) => Speaks::Other(e),
            }
        }
    }
}

fn context(offer: &Offer) -> Result<SslContext, String> {
    let local =
        |what: &str, e: openssl::error::ErrorStack| format!("local OpenSSL refused {what}: {e}");
    let mut b = SslContext::builder(SslMethod::tls_client()).map_err(|e| local("a context", e))?;
    // Offer whatever is asked, however weak: the point is to see whether the server takes it.
    b.set_security_level(0);
    b.set_verify(SslVerifyMode::NONE);
    let (min, max) = match offer.version {
        Some(v) => (v, v),
        None => (Version::Tls10, Version::Tls13),
    };
    b.set_min_proto_version(Some(min.openssl()))
        .map_err(|e| local("the version", e))?;
    b.set_max_proto_version(Some(max.openssl()))
        .map_err(|e| local("the version", e))?;
    b.set_cipher_list(offer.ciphers.as_deref().unwrap_or("ALL:COMPLEMENTOFALL"))
        .map_err(|e| local("the cipher list", e))?;
    let all_suites = TLS13_SUITES.join(":");
    b.set_ciphersuites(offer.suites.as_deref().unwrap_or(&all_suites))
        .map_err(|e| local("the TLS 1.3 suites", e))?;
    let groups = match &offer.groups {
        Some(g) => g.clone(),
        None => {
            let mut all = supported_groups(Version::Tls13);
            for g in supported_groups(Version::Tls12) {
                if !all.contains(&g) {
                    all.push(g);
                }
            }
            all.join(":")
        }
    };
    b.set_groups_list(&groups)
        .map_err(|e| local("the groups", e))?;
    Ok(b.build())
}

/// The name of a server's ephemeral key.
fn group_name(key: &PKey<Public>) -> String {
    match key.id() {
        Id::X25519 => "X25519".into(),
        Id::X448 => "X448".into(),
        Id::EC => key
            .ec_key()
            .ok()
            .and_then(|k| k.group().curve_name())
            .and_then(|nid: Nid| nid.short_name().ok().map(str::to_string))
            .unwrap_or_else(|| "EC (unnamed curve)".into()),
        Id::DH => format!("ffdhe{}", key.bits()),
        other => format!("key type {}", other.as_raw()),
    }
}

/// One handshake offering `offer`; `Err` only when no TLS could start (no connection,
/// no MySQL SSL, a local OpenSSL that refuses the offer).
pub async fn handshake(
    address: SocketAddr,
    sni: Option<&str>,
    starttls: Starttls,
    offer: &Offer,
    timeout: Duration,
) -> Result<Outcome, String> {
    let context = context(offer)?;
    let attempt = async {
        let tcp = open(address, starttls).await?;
        let mut ssl = Ssl::new(&context).map_err(|e| e.to_string())?;
        if let Some(name) = sni.filter(|n| n.parse::<std::net::IpAddr>().is_err()) {
            ssl.set_hostname(name).map_err(|e| e.to_string())?;
        }
        let mut stream = SslStream::new(ssl, Counted::new(tcp)).map_err(|e| e.to_string())?;
        let result = Pin::new(&mut stream).connect().await;
        if let Err(e) = &result {
            // A refusal is the server's TLS alert. A connection closed or reset before
            // the server sent a byte of TLS is a daemon going away (measured: an etcd
            // member stopping mid-scan read as "TLSv1.2 refused", a profile violation).
            if stream.get_ref().received == 0 {
                return Err(format!(
                    "{address} closed the connection without a TLS answer ({e})"
                ));
            }
        }
        let ssl = stream.ssl();
        let cipher = ssl.current_cipher().map(|c| c.name().to_string());
        Ok(Outcome {
            accepted: result.is_ok() || cipher.is_some(),
            version: cipher.as_ref().map(|_| ssl.version_str().to_string()),
            cipher,
            group: ssl.peer_tmp_key().ok().map(|k| group_name(&k)),
            chain: ssl
                .peer_cert_chain()
                .map(|chain| chain.iter().filter_map(|c| c.to_der().ok()).collect())
                .unwrap_or_default(),
            error: result.err().map(|e| {
                e.ssl_error()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| e.to_string())
            }),
        })
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| format!("no TLS answer from {address} within {timeout:?}"))?
}

/// A TCP stream that counts the bytes the server sent during the handshake.
struct Counted {
    inner: TcpStream,
    received: usize,
}

impl Counted {
    fn new(inner: TcpStream) -> Counted {
        Counted { inner, received: 0 }
    }
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &poll {
            self.received += buf.filled().len() - before;
        }
        poll
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What a served certificate is, as TLS profiles judge it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// `ecdsa`, `rsa`, `ed25519`, … (Mozilla's `certificate_types` words).
    pub key_type: String,
    /// The curve of an ECDSA key (`prime256v1`).
    pub curve: Option<String>,
    /// The size of an RSA key.
    pub rsa_bits: Option<u32>,
    /// The leaf's signature algorithm (`ecdsa-with-SHA256`, `sha256WithRSAEncryption`).
    pub signature: String,
    /// notAfter − notBefore.
    pub lifespan_days: i64,
    /// The chain against the trust anchors and the name: `Err(why)` when it fails.
    pub verified: Result<(), String>,
}

/// Judges nothing, describes everything: the leaf of `chain` (DER, leaf first), and
/// whether it chains to one of `anchors` (PEM) for `name` (a DNS name or an address).
pub fn inspect(chain: &[Vec<u8>], anchors: &[u8], name: &str) -> Result<Certificate, String> {
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::verify::X509VerifyParam;
    use openssl::x509::{X509StoreContext, X509};

    let leaf_der = chain.first().ok_or("the server sent no certificate")?;
    let leaf = X509::from_der(leaf_der).map_err(|e| format!("the leaf does not parse: {e}"))?;
    let key = leaf
        .public_key()
        .map_err(|e| format!("the leaf's key does not parse: {e}"))?;
    let (key_type, curve, rsa_bits) = match key.id() {
        Id::EC => (
            "ecdsa",
            key.ec_key()
                .ok()
                .and_then(|k| k.group().curve_name())
                .and_then(|n| n.short_name().ok().map(str::to_string)),
            None,
        ),
        Id::RSA => ("rsa", None, Some(key.bits())),
        Id::ED25519 => ("ed25519", None, None),
        Id::ED448 => ("ed448", None, None),
        Id::DSA => ("dsa", None, None),
        _ => ("unknown", None, None),
    };
    let signature = leaf
        .signature_algorithm()
        .object()
        .nid()
        .long_name()
        .unwrap_or("unknown")
        .to_string();
    let lifespan_days = leaf
        .not_before()
        .diff(leaf.not_after())
        .map(|d| i64::from(d.days))
        .unwrap_or_default();

    let verified = (|| -> Result<(), String> {
        let mut store = X509StoreBuilder::new().map_err(|e| e.to_string())?;
        let roots =
            X509::stack_from_pem(anchors).map_err(|e| format!("the CA does not parse: {e}"))?;
        if roots.is_empty() {
            return Err("no CA certificate to verify against".into());
        }
        for root in roots {
            store.add_cert(root).map_err(|e| e.to_string())?;
        }
        let mut param = X509VerifyParam::new().map_err(|e| e.to_string())?;
        match name.parse::<std::net::IpAddr>() {
            Ok(ip) => param.set_ip(ip),
            Err(_) => param.set_host(name),
        }
        .map_err(|e| e.to_string())?;
        store.set_param(&param).map_err(|e| e.to_string())?;
        let store = store.build();
        let mut rest = Stack::new().map_err(|e| e.to_string())?;
        for der in &chain[1..] {
            if let Ok(c) = X509::from_der(der) {
                rest.push(c).map_err(|e| e.to_string())?;
            }
        }
        let mut context = X509StoreContext::new().map_err(|e| e.to_string())?;
        let (ok, error) = context
            .init(&store, &leaf, &rest, |c| Ok((c.verify_cert()?, c.error())))
            .map_err(|e| e.to_string())?;
        if ok {
            Ok(())
        } else {
            Err(format!("{} (for {name})", error.error_string()))
        }
    })();
    Ok(Certificate {
        key_type: key_type.to_string(),
        curve,
        rsa_bits,
        signature,
        lifespan_days,
        verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_parse_as_handshake_error_or_nothing() {
        // A MariaDB 10.11 greeting, truncated after the capability flags.
        let mut greeting = vec![0, 0, 0, 0, 10];
        greeting.extend_from_slice(b"5.5.5-10.11.6-MariaDB\0");
        greeting.extend_from_slice(&[1, 0, 0, 0]); // connection id
        greeting.extend_from_slice(b"abcdefgh\0"); // auth data + filler
        greeting.extend_from_slice(&0xf7feu16.to_le_bytes());
        assert_eq!(
            parse_greeting(&greeting),
            Some(Greeting::Handshake {
                capabilities: 0xf7fe
            })
        );
        let mut refused = vec![0, 0, 0, 0, 0xff, 0x6a, 0x04];
        refused.extend_from_slice(b"Host '10.42.0.10' is not allowed");
        assert_eq!(
            parse_greeting(&refused),
            Some(Greeting::Error("Host '10.42.0.10' is not allowed".into()))
        );
        assert_eq!(parse_greeting(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_greeting(&[1, 0]), None);
    }

    #[test]
    fn the_ssl_request_is_a_32_byte_packet_asking_for_ssl() {
        let p = ssl_request();
        assert_eq!(&p[..4], &[32, 0, 0, 1]);
        let flags = u32::from_le_bytes([p[4], p[5], p[6], p[7]]);
        assert_ne!(flags & u32::from(CLIENT_SSL), 0);
    }

    #[test]
    fn this_libssl_offers_the_profile_groups_under_both_versions() {
        for v in [Version::Tls12, Version::Tls13] {
            let groups = supported_groups(v);
            for g in ["X25519", "prime256v1", "secp384r1", "X448", "secp521r1"] {
                assert!(groups.contains(&g), "{g} under {v:?}: {groups:?}");
            }
        }
        assert!(supported_groups(Version::Tls13).contains(&"ffdhe2048"));
        assert!(!supported_groups(Version::Tls12).contains(&"ffdhe2048"));
        assert_eq!(Version::from_name("TLSv1.2"), Some(Version::Tls12));
        assert_eq!(Version::from_name("TLSv1.0"), Some(Version::Tls10));
    }
}

#[cfg(test)]
mod server_tests {
    //! Against Debian's `openssl s_server`, on loopback.
    use super::*;
    use std::process::{Child, Command, Stdio};

    struct Server {
        child: Child,
        dir: std::path::PathBuf,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// `openssl s_server` with a fresh P-256 certificate and `args`, on a free port.
    fn server(tag: &str, args: &[&str]) -> (Server, SocketAddr) {
        let dir = std::env::temp_dir().join(format!("handshake-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "2", "-subj", "/CN=probe.test"])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args([
                "s_server",
                "-quiet",
                "-accept",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("-cert")
            .arg(dir.join("cert.pem"))
            .arg("-key")
            .arg(dir.join("key.pem"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        for _ in 0..100 {
            if std::net::TcpStream::connect(address).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (Server { child, dir }, address)
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn one_group_or_suite_is_accepted_or_refused_and_a_required_client_certificate_does_not_hide_it(
    ) {
        // TLS 1.2 only, P-256 and P-384 only, and a client certificate required.
        let (openssl_server, address) = server(
            "groups",
            &["-tls1_2", "-groups", "prime256v1:secp384r1", "-Verify", "1"],
        );
        let t = Duration::from_secs(5);
        rt().block_on(async {
            let offer = |version, groups: &str| Offer {
                version: Some(version),
                groups: Some(groups.into()),
                ..Offer::default()
            };
            let p256 = handshake(
                address,
                None,
                Starttls::None,
                &offer(Version::Tls12, "prime256v1"),
                t,
            )
            .await
            .unwrap();
            assert!(p256.accepted, "{p256:?}");
            assert_eq!(p256.group.as_deref(), Some("prime256v1"));
            assert_eq!(p256.version.as_deref(), Some("TLSv1.2"));
            assert!(
                p256.error.is_some(),
                "no client certificate: the handshake fails after the ServerHello"
            );
            assert_eq!(p256.chain.len(), 1);
            let ca = std::fs::read(openssl_server.dir.join("cert.pem")).unwrap();
            let cert = inspect(&p256.chain, &ca, "probe.test").unwrap();
            assert_eq!(
                (
                    cert.key_type.as_str(),
                    cert.curve.as_deref(),
                    cert.signature.as_str()
                ),
                ("ecdsa", Some("prime256v1"), "ecdsa-with-SHA256")
            );
            assert_eq!(cert.lifespan_days, 2);
            assert_eq!(cert.verified, Ok(()));
            let wrong = inspect(&p256.chain, &ca, "other.test").unwrap();
            assert!(wrong.verified.unwrap_err().contains("hostname mismatch"));
            let x448 = handshake(
                address,
                None,
                Starttls::None,
                &offer(Version::Tls12, "X448"),
                t,
            )
            .await
            .unwrap();
            assert!(!x448.accepted, "{x448:?}");
            let tls13 = handshake(
                address,
                None,
                Starttls::None,
                &offer(Version::Tls13, "prime256v1"),
                t,
            )
            .await
            .unwrap();
            assert!(!tls13.accepted, "{tls13:?}");
            let cbc = Offer {
                version: Some(Version::Tls12),
                ciphers: Some("ECDHE-ECDSA-AES128-SHA".into()),
                ..Offer::default()
            };
            let cbc = handshake(address, None, Starttls::None, &cbc, t)
                .await
                .unwrap();
            assert!(cbc.accepted, "s_server takes CBC by default: {cbc:?}");
            assert_eq!(cbc.cipher.as_deref(), Some("ECDHE-ECDSA-AES128-SHA"));
            assert_eq!(detect(address, None, t).await, Speaks::Tls);
        });
    }

    #[test]
    fn old_versions_are_offered_for_real() {
        let (_server, address) = server("old", &["-tls1", "-cipher", "ALL:@SECLEVEL=0"]);
        rt().block_on(async {
            let offer = Offer {
                version: Some(Version::Tls10),
                ..Offer::default()
            };
            let o = handshake(
                address,
                None,
                Starttls::None,
                &offer,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
            assert!(o.accepted, "{o:?}");
            assert_eq!(o.version.as_deref(), Some("TLSv1"));
        });
    }

    /// A listener that reads the ClientHello, then answers each connection with `reply`
    /// (nothing: it closes) and closes.
    fn answering(reply: &'static [u8]) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                use std::io::{Read, Write};
                let mut stream = stream;
                let mut buf = [0u8; 2048];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(reply);
            }
        });
        address
    }

    fn offer_tls12(address: SocketAddr) -> Result<Outcome, String> {
        let offer = Offer {
            version: Some(Version::Tls12),
            ..Offer::default()
        };
        rt().block_on(handshake(
            address,
            None,
            Starttls::None,
            &offer,
            Duration::from_secs(2),
        ))
    }

    #[test]
    fn a_connection_closed_without_a_tls_byte_is_no_answer_not_a_refusal() {
        let err = offer_tls12(answering(b"")).unwrap_err();
        assert!(err.contains("without a TLS answer"), "{err}");
    }

    #[test]
    fn a_tls_alert_is_a_refusal() {
        // A fatal protocol_version alert (TLS 1.2 record), as a server refusing the version.
        let outcome = offer_tls12(answering(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46])).unwrap();
        assert!(!outcome.accepted, "{outcome:?}");
        assert!(outcome.error.is_some(), "{outcome:?}");
    }

    #[test]
    fn a_plain_listener_is_not_tls() {
        let address = answering(b"HTTP/1.0 400 Bad Request\r\n\r\n");
        let speaks = rt().block_on(detect(address, None, Duration::from_secs(2)));
        assert!(matches!(speaks, Speaks::Other(_)), "{speaks:?}");
    }
}
