//! Is TLS 1.0 or 1.1 refused? rustls cannot speak them, so this sends a minimal
//! hand-made ClientHello offering exactly one old version and reads the first record
//! of the answer: a ServerHello means the server accepted, an alert (or a closed
//! connection) means it refused.
//!
//! The hello offers the CBC suites that TLS 1.0/1.1 servers actually pick (ECDHE, DHE
//! and RSA key exchange with AES-CBC/3DES and SHA-1), SNI, the curves and point formats
//! ECDHE needs and the renegotiation-info extension, so a server that *would* speak the
//! old version has what it needs to say so. The handshake is never finished.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The two versions this probe asks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OldVersion {
    Tls10,
    Tls11,
}

impl OldVersion {
    fn wire(self) -> [u8; 2] {
        match self {
            OldVersion::Tls10 => [3, 1],
            OldVersion::Tls11 => [3, 2],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OldVersion::Tls10 => "tls1.0",
            OldVersion::Tls11 => "tls1.1",
        }
    }
}

/// What the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A ServerHello choosing this wire version (`[3, 1]` = TLS 1.0).
    ServerHello([u8; 2]),
    /// A TLS alert (`description` per RFC 5246 §7.2, e.g. 70 = protocol_version).
    Alert { level: u8, description: u8 },
    /// The server closed or reset the connection without a word.
    Closed,
    /// Nothing came back within the timeout.
    Silence,
    /// Something that is not TLS.
    Garbage(String),
}

impl Answer {
    /// Did the server agree to the old version?
    pub fn accepted(&self, version: OldVersion) -> bool {
        matches!(self, Answer::ServerHello(v) if v[0] == 3 && v[1] <= version.wire()[1])
    }

    pub fn describe(&self) -> String {
        match self {
            Answer::ServerHello([3, 0]) => "ServerHello SSL 3.0".into(),
            Answer::ServerHello([3, minor]) => format!("ServerHello TLS 1.{}", minor - 1),
            Answer::ServerHello(v) => format!("ServerHello version {:02x}{:02x}", v[0], v[1]),
            Answer::Alert { description, .. } => {
                format!("alert {} ({description})", alert_name(*description))
            }
            Answer::Closed => "connection closed".into(),
            Answer::Silence => "no answer".into(),
            Answer::Garbage(what) => format!("not TLS: {what}"),
        }
    }
}

fn alert_name(description: u8) -> &'static str {
    match description {
        0 => "close_notify",
        10 => "unexpected_message",
        40 => "handshake_failure",
        47 => "illegal_parameter",
        50 => "decode_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        109 => "missing_extension",
        112 => "unrecognized_name",
        _ => "alert",
    }
}

const SUITES: [u16; 9] = [
    0xc009, 0xc00a, // ECDHE-ECDSA-AES128/256-SHA
    0xc013, 0xc014, // ECDHE-RSA-AES128/256-SHA
    0x0033, 0x0039, // DHE-RSA-AES128/256-SHA
    0x002f, 0x0035, // AES128/256-SHA
    0x000a, // DES-CBC3-SHA
];

fn push_u16(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u16).to_be_bytes());
}

/// The ClientHello record offering `version`; `sni` is left out when it is an address.
pub fn client_hello(version: OldVersion, sni: Option<&str>) -> Vec<u8> {
    let mut exts = Vec::new();
    if let Some(name) = sni {
        let mut list = vec![0u8]; // host_name
        push_u16(&mut list, name.len());
        list.extend_from_slice(name.as_bytes());
        exts.extend_from_slice(&[0x00, 0x00]);
        push_u16(&mut exts, list.len() + 2);
        push_u16(&mut exts, list.len());
        exts.extend_from_slice(&list);
    }
    // supported_groups: x25519, secp256r1, secp384r1
    exts.extend_from_slice(&[
        0x00, 0x0a, 0x00, 0x08, 0x00, 0x06, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18,
    ]);
    // ec_point_formats: uncompressed
    exts.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    // renegotiation_info: empty
    exts.extend_from_slice(&[0xff, 0x01, 0x00, 0x01, 0x00]);

    let mut body = Vec::new();
    body.extend_from_slice(&version.wire());
    body.extend_from_slice(&random());
    body.push(0); // no session id
    push_u16(&mut body, SUITES.len() * 2);
    for s in SUITES {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null only
    push_u16(&mut body, exts.len());
    body.extend_from_slice(&exts);

    let mut handshake = vec![1u8]; // client_hello
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);

    // Record version 3.1 for the hello, as real clients send, whatever they offer inside.
    let mut record = vec![0x16, 3, 1];
    push_u16(&mut record, handshake.len());
    record.extend_from_slice(&handshake);
    record
}

/// 32 bytes that differ between hellos; the handshake is never finished, so they need
/// not be secret.
fn random() -> [u8; 32] {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut out = [0u8; 32];
    let mut x = nanos as u64 ^ 0x9e37_79b9_7f4a_7c15;
    for chunk in out.chunks_mut(8) {
        // xorshift64: cheap spreading of the clock bits.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Classifies the first bytes of the server's answer.
pub fn classify(answer: &[u8]) -> Answer {
    if answer.is_empty() {
        return Answer::Closed;
    }
    if answer.len() < 5 {
        return Answer::Garbage(format!("{} bytes", answer.len()));
    }
    let (kind, payload) = (answer[0], &answer[5..]);
    match kind {
        0x15 if payload.len() >= 2 => Answer::Alert {
            level: payload[0],
            description: payload[1],
        },
        // handshake record: type 2 = server_hello, then a 3-byte length, then the version
        0x16 if payload.len() >= 6 && payload[0] == 2 => {
            Answer::ServerHello([payload[4], payload[5]])
        }
        _ => {
            let head: Vec<String> = answer.iter().take(8).map(|b| format!("{b:02x}")).collect();
            Answer::Garbage(format!("starts with {}", head.join(" ")))
        }
    }
}

/// Sends the hello to `address` and classifies the answer; `Err` when no connection.
pub async fn probe(
    address: SocketAddr,
    sni: Option<&str>,
    version: OldVersion,
    timeout: Duration,
) -> Result<Answer, String> {
    let hello = client_hello(version, sni);
    let exchange = async {
        let mut tcp = TcpStream::connect(address)
            .await
            .map_err(|e| format!("cannot connect to {address}: {e}"))?;
        tcp.write_all(&hello)
            .await
            .map_err(|e| format!("cannot send the hello: {e}"))?;
        let mut buf = [0u8; 16];
        let mut read = 0;
        // A record header plus the first bytes of the message is enough to decide.
        while read < 11 {
            match tcp.read(&mut buf[read..]).await {
                Ok(0) => break,
                Ok(n) => read += n,
                // A reset after an alert still leaves the alert in what we read.
                Err(_) => break,
            }
        }
        Ok(classify(&buf[..read]))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Ok(Answer::Silence),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hello_is_well_framed() {
        let hello = client_hello(OldVersion::Tls11, Some("rampart.test"));
        assert_eq!(&hello[..3], &[0x16, 3, 1]);
        let record_len = u16::from_be_bytes([hello[3], hello[4]]) as usize;
        assert_eq!(hello.len(), 5 + record_len);
        assert_eq!(hello[5], 1);
        let hs_len = u32::from_be_bytes([0, hello[6], hello[7], hello[8]]) as usize;
        assert_eq!(record_len, 4 + hs_len);
        assert_eq!(&hello[9..11], &[3, 2]);
        let text = String::from_utf8_lossy(&hello);
        assert!(text.contains("rampart.test"));
    }

    #[test]
    fn answers_are_classified_without_panicking() {
        assert_eq!(
            classify(&[0x15, 3, 1, 0, 2, 2, 70]),
            Answer::Alert {
                level: 2,
                description: 70
            }
        );
        let hello = [0x16, 3, 1, 0, 0x31, 2, 0, 0, 0x2d, 3, 1];
        assert_eq!(classify(&hello), Answer::ServerHello([3, 1]));
        assert!(classify(&hello).accepted(OldVersion::Tls10));
        // Answering a 1.1 hello with 1.0 is accepting an old version too.
        assert!(classify(&hello).accepted(OldVersion::Tls11));
        assert_eq!(classify(&[]), Answer::Closed);
        assert!(matches!(classify(b"HTTP/1.1 400"), Answer::Garbage(_)));
        assert!(matches!(classify(&[0x16, 3]), Answer::Garbage(_)));
        assert_eq!(
            Answer::Alert {
                level: 2,
                description: 70
            }
            .describe(),
            "alert protocol_version (70)"
        );
    }
}
