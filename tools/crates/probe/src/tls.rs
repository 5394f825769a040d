//! TLS probes with rustls: one handshake per question, verified against the rampart CA
//! only (never the system roots).
//!
//! A handshake whose certificate does not verify is still completed: the verifier records
//! webpki's verdict (expired, unknown issuer, not valid for the name, …) and lets the
//! handshake go on, so one run can report the chain problem *and* everything behind it
//! (versions, redirect, HSTS) instead of stopping at the first problem. Signatures are
//! still checked, so a completed handshake proves possession of the certificate's key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Why a CA or client identity cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{}: {problem}", path.display())]
    Pem { path: PathBuf, problem: String },
}

fn pem_error(path: &Path, problem: impl Into<String>) -> TlsSetupError {
    TlsSetupError::Pem {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Reads every certificate of a PEM file; at least one is required.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, format!("cannot read ({e})")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, format!("malformed PEM ({e})")))?;
    if certs.is_empty() {
        return Err(pem_error(
            path,
            "no CERTIFICATE block (got none, expected at least one)",
        ));
    }
    Ok(certs)
}

/// The trust anchor and (for mTLS backends) the client identity of TLS probes.
#[derive(Clone, Debug)]
pub struct TlsSetup {
    verifier: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
    client: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
}

impl TlsSetup {
    /// Trusts exactly the certificates in `ca` (PEM); presents `client` (cert, key) when
    /// a server asks for one.
    pub fn load(ca: &Path, client: Option<(&Path, &Path)>) -> Result<TlsSetup, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in read_certs(ca)? {
            roots
                .add(cert)
                .map_err(|e| pem_error(ca, format!("not a usable CA certificate ({e})")))?;
        }
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| pem_error(ca, format!("not a usable trust anchor ({e})")))?;
        let client = match client {
            None => None,
            Some((cert, key)) => {
                let chain = read_certs(cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| pem_error(key, format!("no usable private key ({e})")))?;
                Some((chain, Arc::new(key)))
            }
        };
        Ok(TlsSetup {
            verifier,
            provider,
            client,
        })
    }

    fn config(&self, recorder: Arc<Recorder>) -> Result<ClientConfig, String> {
        let builder = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(recorder);
        match &self.client {
            None => Ok(builder.with_no_client_auth()),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| format!("client certificate: {e}")),
        }
    }
}

/// What the server's certificate looked like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// notAfter as Unix seconds.
    pub not_after: i64,
    pub subject: String,
}

/// Reads notAfter and the subject of a DER certificate.
pub fn leaf_info(der: &[u8]) -> Result<Leaf, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("not an X.509 certificate ({e})"))?;
    Ok(Leaf {
        not_after: cert.validity().not_after.timestamp(),
        subject: cert.subject().to_string(),
    })
}

/// A completed handshake.
#[derive(Clone, Debug)]
pub struct Handshake {
    /// `TLSv1_2`, `TLSv1_3`.
    pub version: String,
    /// webpki's verdict on chain and name; `None` when the certificate verified.
    pub verify_error: Option<String>,
    pub leaf: Option<Leaf>,
    pub seconds: f64,
}

#[derive(Debug)]
struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Option<(Vec<u8>, Option<String>)>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .err()
            .map(|e| e.to_string());
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some((end_entity.to_vec(), verdict));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Connects to `address`, handshakes for `name` (a DNS name, sent as SNI, or an IP
/// address, checked against IP SANs) with TLS 1.2 or 1.3, all within `timeout`.
pub async fn connect(
    setup: &TlsSetup,
    address: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Result<(TlsStream<TcpStream>, Handshake), String> {
    let started = Instant::now();
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|_| format!("{name:?} is not a DNS name or IP address"))?;
    let recorder = Arc::new(Recorder {
        inner: setup.verifier.clone(),
        seen: Mutex::new(None),
    });
    let config = setup.config(recorder.clone())?;
    let connector = TlsConnector::from(Arc::new(config));
    let attempt = async {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| format!("cannot connect to {address}: {e}"))?;
        connector
            .connect(server_name, tcp)
            .await
            .map_err(|e| format!("handshake failed: {e}"))
    };
    let stream = tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| format!("no TLS answer from {address} within {timeout:?}"))??;
    let version = stream
        .get_ref()
        .1
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_default();
    let seen = recorder.seen.lock().ok().and_then(|mut s| s.take());
    let (leaf, verify_error) = match seen {
        Some((der, verdict)) => (leaf_info(&der).ok(), verdict),
        None => (None, Some("the server sent no certificate".to_string())),
    };
    Ok((
        stream,
        Handshake {
            version,
            verify_error,
            leaf,
            seconds: started.elapsed().as_secs_f64(),
        },
    ))
}
