//! `certtool verify`: every check of [`super::checks`] on every certificate given.
//!
//! # JSON report (`certtool verify --json`)
//!
//! One JSON document on stdout. Every object has a `type`; fields may be added, none
//! will be renamed or removed within schema version 1.
//!
//! ```json
//! { "type": "report", "version": 1, "ca": "out/ca.pem", "at": "2026-01-01T00:00:00Z",
//!   "certificates": [
//!     { "type": "certificate", "path": "out/web1/backend.pem", "subject": "CN=web1.rampart.internal",
//!       "role": "backend", "host": "web1", "notAfter": "2026-04-01T00:00:00Z",
//!       "key": "out/web1/backend.key",
//!       "findings": [ { "id": "san", "severity": "error", "message": "…" } ] } ],
//!   "loadErrors": [ { "type": "load-error", "path": "out/x.pem", "message": "…" } ],
//!   "summary": { "type": "summary", "certificates": 9, "errors": 0, "warnings": 0, "loadErrors": 0 } }
//! ```
//!
//! - `role`: `ca` (the trust anchor), `intermediate-ca`, a purpose of docs/contracts.md
//!   (`https`, `backend-client`, `backend`, `mysql`, `replication-client`, `etcd-server`,
//!   `etcd-peer`, `etcd-client`), `server`, `client` or `server+client` (from
//!   `--purpose` or the manifest's `eku`), or `leaf` (purpose unknown).
//! - `host`: the topology host the certificate belongs to, or `null`.
//! - `key`: the private key paired with it, or `null`.
//! - `findings[].id`: a check id (see [`super::checks`]); `severity`: `error`, `warning`
//!   or `info`.
//! - `loadErrors`: inputs that could not be read or parsed; any makes the exit code 2.
//!
//! Exit code: 2 when any input could not be loaded (the rest is still checked and
//! reported), else 1 when any finding is an error, else 0.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use webpki::KeyPurposeIdIter;
use x509_parser::certificate::X509Certificate;

use super::checks::{self, CheckId, Finding, Findings, Severity};
use super::load::{self, LoadError};
use super::manifest::Manifest;
use super::{format_instant, planned, Eku, Planned, Purpose, SanName};
use rampart_cli::exit;
use rampart_topology::Topology;

/// What `verify` checks, and against what.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    pub topology: Option<Topology>,
    /// The CA certificate (a directory means its `ca.pem`); else a manifest's `ca`.
    pub ca: Option<PathBuf>,
    pub paths: Vec<PathBuf>,
    /// The key of the one certificate given.
    pub key: Option<PathBuf>,
    /// Names the SAN must cover, for certificates the topology does not describe.
    pub names: Vec<SanName>,
    /// The EKU to require, for certificates the topology does not describe.
    pub purpose: Option<Eku>,
    pub at: OffsetDateTime,
    pub warn_within: Duration,
    /// The Nix store (`NIX_STORE_DIR`, default `/nix/store`) for `key-in-store`.
    pub store_dir: PathBuf,
}

/// Why `verify` could not run at all (exit 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("certtool: no CA given (expected --ca FILE, or a manifest.json naming its ca.pem); verify never falls back to system roots")]
    NoCa,
    #[error("certtool: the CA cannot be loaded: {0}")]
    Ca(LoadError),
    #[error("certtool: {}: not usable as a trust anchor ({detail})", path.display())]
    CaUnusable { path: PathBuf, detail: String },
    #[error("certtool: --key pairs a key with one certificate, but {count} were given; name one certificate, or rely on NAME.key beside NAME.pem")]
    KeyNeedsOneCertificate { count: usize },
}

/// One input that could not be loaded.
#[derive(Clone, Debug, Serialize)]
pub struct LoadProblem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub path: String,
    pub message: String,
}

impl From<&LoadError> for LoadProblem {
    fn from(e: &LoadError) -> Self {
        LoadProblem {
            kind: "load-error",
            path: e.path().display().to_string(),
            message: e.to_string(),
        }
    }
}

/// The findings about one certificate.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertReport {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub path: String,
    pub subject: String,
    pub role: String,
    pub host: Option<String>,
    pub not_after: String,
    pub key: Option<String>,
    pub findings: Vec<Finding>,
}

impl CertReport {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// Totals.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub certificates: usize,
    pub errors: usize,
    pub warnings: usize,
    pub load_errors: usize,
}

/// The whole result of `verify` (schema in the module docs).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub version: u32,
    pub ca: String,
    pub at: String,
    pub certificates: Vec<CertReport>,
    pub load_errors: Vec<LoadProblem>,
    pub summary: Summary,
}

impl Report {
    /// 2 when an input could not be loaded, 1 on error findings, else 0.
    pub fn exit_code(&self) -> ExitCode {
        if !self.load_errors.is_empty() {
            ExitCode::from(exit::CANNOT_RUN)
        } else {
            exit::from_findings(self.summary.errors > 0)
        }
    }

    /// Every finding of one id, for tests and scripts.
    pub fn findings(&self, id: CheckId) -> impl Iterator<Item = (&CertReport, &Finding)> {
        self.certificates.iter().flat_map(move |c| {
            c.findings
                .iter()
                .filter(move |f| f.id == id)
                .map(move |f| (c, f))
        })
    }

    /// The human form: a table of certificates, a table of findings, a summary line.
    pub fn render(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .certificates
            .iter()
            .map(|c| {
                let status = if c.count(Severity::Error) > 0 {
                    "✘"
                } else if c.count(Severity::Warning) > 0 {
                    "!"
                } else {
                    "✔"
                };
                vec![
                    status.to_string(),
                    c.path.clone(),
                    c.role.clone(),
                    c.host.clone().unwrap_or_else(|| "-".into()),
                    c.not_after.clone(),
                ]
            })
            .collect();
        let mut out =
            rampart_cli::table::render(&["OK", "CERTIFICATE", "ROLE", "HOST", "NOT AFTER"], &rows);
        let findings: Vec<Vec<String>> = self
            .certificates
            .iter()
            .flat_map(|c| {
                c.findings.iter().map(move |f| {
                    vec![
                        f.severity.to_string(),
                        f.id.to_string(),
                        c.path.clone(),
                        f.message.clone(),
                    ]
                })
            })
            .collect();
        if !findings.is_empty() {
            out.push('\n');
            out.push_str(&rampart_cli::table::render(
                &["SEVERITY", "CHECK", "CERTIFICATE", "MESSAGE"],
                &findings,
            ));
        }
        for problem in &self.load_errors {
            out.push_str(&format!("\nnot loaded: {}", problem.message));
        }
        if !self.load_errors.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!(
            "\n{} certificate(s) checked at {} against {}: {} error(s), {} warning(s), {} input(s) not loaded\n",
            self.summary.certificates,
            self.at,
            self.ca,
            self.summary.errors,
            self.summary.warnings,
            self.summary.load_errors
        ));
        out
    }
}

/// Accepts any EKU: the `chain` check is about signatures and constraints, `eku` is
/// about purpose, so that one defect is reported once, under its own id.
struct AnyEku;

impl webpki::ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, _: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

fn unix(t: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        t.unix_timestamp().max(0) as u64
    ))
}

fn webpki_message(e: &webpki::Error, ca_subject: &str) -> String {
    use webpki::Error as E;
    match e {
        E::UnknownIssuer => format!("not issued by the given CA \"{ca_subject}\" (no path to it); issue it with this CA or pass the right --ca"),
        E::InvalidSignatureForPublicKey => format!("its signature does not verify with the key of \"{ca_subject}\"; it was signed by another key"),
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "its signature algorithm is not accepted by rustls-webpki (see signature-algorithm)".to_string()
        }
        E::CaUsedAsEndEntity => "a CA certificate where a leaf is expected".to_string(),
        E::EndEntityUsedAsCa => "a leaf certificate on the path where a CA is expected".to_string(),
        E::PathLenConstraintViolated => "a pathLenConstraint on the way to the CA is violated (see ca-constraints)".to_string(),
        E::NameConstraintViolation => "rejected by a CA's name constraints (see name-constraints)".to_string(),
        other => format!("rustls-webpki rejects the chain ({other:?})"),
    }
}

/// `chain`: the certificate chains to `ca` (the only trust anchor), through
/// `intermediates`. See [`Anchor::check`].
pub fn chain_to(
    der: &[u8],
    ca: &[u8],
    intermediates: &[CertificateDer<'_>],
    at: OffsetDateTime,
    out: &mut Findings,
) {
    let ca = CertificateDer::from(ca);
    match Anchor::new(&ca) {
        Ok(anchor) => anchor.check(der, intermediates, at, out),
        Err(e) => out.error(
            CheckId::Chain,
            format!("the CA is not a usable trust anchor ({e:?})"),
        ),
    }
}

/// The CA as rustls-webpki's only trust anchor, prepared once for many `chain` checks.
pub struct Anchor<'a> {
    der: &'a [u8],
    trust: [TrustAnchor<'a>; 1],
    subject: String,
    /// rustls-webpki keeps no basicConstraints of a trust anchor, so the anchor's own
    /// pathLenConstraint is enforced here, on the path it found.
    path_len: Option<u32>,
}

impl<'a> Anchor<'a> {
    pub fn new(ca: &'a CertificateDer<'a>) -> Result<Anchor<'a>, webpki::Error> {
        let trust = webpki::anchor_from_trusted_cert(ca)?;
        let parsed = x509_parser::parse_x509_certificate(ca).ok();
        Ok(Anchor {
            der: ca.as_ref(),
            trust: [trust],
            subject: parsed
                .as_ref()
                .map(|(_, c)| c.subject().to_string())
                .unwrap_or_default(),
            path_len: parsed.as_ref().and_then(|(_, c)| checks::path_len(c)),
        })
    }

    /// Validity is its own check: when the chain fails only on time, it is retried at an
    /// instant inside every validity window, and reported only if that fails too.
    pub fn check(
        &self,
        der: &[u8],
        intermediates: &[CertificateDer<'_>],
        at: OffsetDateTime,
        out: &mut Findings,
    ) {
        let leaf_der = CertificateDer::from(der);
        let leaf = match webpki::EndEntityCert::try_from(&leaf_der) {
            Ok(leaf) => leaf,
            Err(e) => {
                out.error(
                    CheckId::Chain,
                    format!("rustls-webpki cannot parse it ({e:?})"),
                );
                return;
            }
        };
        let check_path = |path: &webpki::VerifiedPath<'_>| match self.path_len {
            Some(max) if path.intermediate_certificates().count() > max as usize => {
                Err(webpki::Error::PathLenConstraintViolated)
            }
            _ => Ok(()),
        };
        let verify_at = |t: OffsetDateTime| {
            leaf.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.trust,
                intermediates,
                unix(t),
                AnyEku,
                None,
                Some(&check_path),
            )
            .map(|_| ())
        };
        let result = match verify_at(at) {
            Err(webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. }) => {
                match overlap(der, self.der, intermediates) {
                    Some(t) => verify_at(t),
                    // No instant at which all are valid: the validity checks say why.
                    None => Ok(()),
                }
            }
            other => other,
        };
        if let Err(e) = result {
            out.error(CheckId::Chain, webpki_message(&e, &self.subject));
        }
    }
}

/// An instant inside the validity of every certificate given, if there is one.
fn overlap(der: &[u8], ca: &[u8], intermediates: &[CertificateDer<'_>]) -> Option<OffsetDateTime> {
    let mut from = OffsetDateTime::UNIX_EPOCH;
    let mut until = OffsetDateTime::now_utc() + Duration::days(365 * 1000);
    for d in [der, ca]
        .into_iter()
        .chain(intermediates.iter().map(|c| c.as_ref()))
    {
        let (_, c) = x509_parser::parse_x509_certificate(d).ok()?;
        from = from.max(checks::not_before(&c));
        until = until.min(checks::not_after(&c));
    }
    (from <= until).then_some(from)
}

/// A certificate to check, and what it is expected to be.
struct Subject {
    label: String,
    der: CertificateDer<'static>,
    host: Option<String>,
    purpose: Option<Purpose>,
    eku: Option<Eku>,
    expected: Option<Vec<SanName>>,
    key: Option<PathBuf>,
    anchor: bool,
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Subjects from one certificate file (each certificate in it; keys pair with the first).
fn subjects_of_file(file: &load::CertFile) -> Result<Vec<Subject>, LoadError> {
    let path = &file.path;
    let bytes = load::read_small(path)?;
    // A `*.pem` found in a directory that holds only a key is a key under another name.
    if !file.explicit && load::is_key_only_pem(&bytes) {
        return Ok(Vec::new());
    }
    let certs = load::parse_certificates(path, &bytes)?;
    let many = certs.len() > 1;
    Ok(certs
        .into_iter()
        .enumerate()
        .map(|(i, der)| Subject {
            label: if many {
                format!("{}#{}", path.display(), i + 1)
            } else {
                path.display().to_string()
            },
            der,
            host: None,
            purpose: None,
            eku: None,
            expected: None,
            key: if i == 0 {
                load::neighbour_key(path)
            } else {
                None
            },
            anchor: false,
        })
        .collect())
}

/// Fills in host, purpose and expected names for a certificate found as a plain file:
/// the file stem names the purpose, the directory (or a SAN) the host.
fn describe(subject: &mut Subject, path: &Path, plan: &[Planned], options: &VerifyOptions) {
    let purpose = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(Purpose::from_stem);
    let dir = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let found = purpose.and_then(|purpose| {
        let candidates = plan.iter().filter(|p| p.purpose == purpose);
        candidates.clone().find(|p| p.host == dir).or_else(|| {
            let sans = x509_parser::parse_x509_certificate(&subject.der)
                .map(|(_, c)| checks::san_names(&c))
                .unwrap_or_default();
            candidates
                .clone()
                .find(|p| p.names.iter().any(|n| sans.contains(n)))
        })
    });
    match found {
        Some(p) => {
            subject.host = Some(p.host.clone());
            subject.purpose = Some(p.purpose);
            subject.eku = Some(p.purpose.eku());
            subject.expected = Some(p.names.clone());
        }
        None => {
            subject.purpose = purpose;
            subject.eku = options.purpose.or(purpose.map(Purpose::eku));
            if !options.names.is_empty() {
                subject.expected = Some(options.names.clone());
            }
        }
    }
}

fn subjects_of_manifest(
    manifest_path: &Path,
    manifest: &Manifest,
    plan: &[Planned],
    errors: &mut Vec<LoadError>,
) -> Vec<(PathBuf, Subject)> {
    let mut out = Vec::new();
    for entry in &manifest.certificates {
        let path = Manifest::resolve(manifest_path, &entry.cert);
        let der = match load::certificates(&path) {
            Ok(mut certs) => certs.remove(0),
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let purpose = Purpose::from_stem(&entry.purpose);
        let from_topology = plan
            .iter()
            .find(|p| p.host == entry.host && Some(p.purpose) == purpose)
            .map(|p| p.names.clone());
        let expected = from_topology
            .unwrap_or_else(|| entry.names.iter().map(|n| SanName::parse(n)).collect());
        out.push((
            canonical(&path),
            Subject {
                label: path.display().to_string(),
                der,
                host: Some(entry.host.clone()),
                purpose,
                eku: Eku::from_name(&entry.eku).or(purpose.map(Purpose::eku)),
                expected: Some(expected),
                key: Some(Manifest::resolve(manifest_path, &entry.key)),
                anchor: false,
            },
        ));
    }
    out
}

/// Runs every check on everything `options` names.
pub fn verify(options: &VerifyOptions) -> Result<Report, VerifyError> {
    let found = load::walk(&options.paths);
    let mut errors = found.errors;
    let ca_path = match (&options.ca, found.manifests.first()) {
        (Some(ca), _) if ca.is_dir() => ca.join("ca.pem"),
        (Some(ca), _) => ca.clone(),
        (None, Some((path, manifest))) => Manifest::resolve(path, &manifest.ca),
        (None, None) => return Err(VerifyError::NoCa),
    };
    let ca_der = load::certificates(&ca_path)
        .map_err(VerifyError::Ca)?
        .remove(0);
    webpki::anchor_from_trusted_cert(&ca_der).map_err(|e| VerifyError::CaUnusable {
        path: ca_path.clone(),
        detail: format!("{e:?}"),
    })?;

    let plan = options.topology.as_ref().map(planned).unwrap_or_default();
    let mut subjects: Vec<Subject> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (path, manifest) in &found.manifests {
        for (canon, subject) in subjects_of_manifest(path, manifest, &plan, &mut errors) {
            if seen.insert(canon) {
                subjects.push(subject);
            }
        }
    }
    // Files a manifest already named are checked once, with the manifest's description.
    // Without a manifest nothing can repeat, and the canonicalisation is skipped.
    let files: Vec<&load::CertFile> = found
        .certificates
        .iter()
        .filter(|f| found.manifests.is_empty() || seen.insert(canonical(&f.path)))
        .collect();
    for (file, loaded) in files
        .iter()
        .zip(parallel_map(&files, |f| subjects_of_file(f)))
    {
        match loaded {
            Ok(loaded) => {
                for mut subject in loaded {
                    describe(&mut subject, &file.path, &plan, options);
                    subjects.push(subject);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    // The CA is checked like any certificate, once: a file given or found with the
    // CA's bytes is the CA.
    match subjects
        .iter_mut()
        .find(|s| s.der.as_ref() == ca_der.as_ref())
    {
        Some(s) => s.anchor = true,
        None => subjects.insert(
            0,
            Subject {
                label: ca_path.display().to_string(),
                der: ca_der.clone(),
                host: None,
                purpose: None,
                eku: None,
                expected: None,
                key: load::neighbour_key(&ca_path),
                anchor: true,
            },
        ),
    }
    if let Some(key) = &options.key {
        let count = subjects.iter().filter(|s| !s.anchor).count();
        if count != 1 {
            return Err(VerifyError::KeyNeedsOneCertificate { count });
        }
        if let Some(only) = subjects.iter_mut().find(|s| !s.anchor) {
            only.key = Some(key.clone());
        }
    }

    let intermediates: Vec<CertificateDer<'static>> = subjects
        .iter()
        .filter(|s| !s.anchor)
        .filter(|s| {
            x509_parser::parse_x509_certificate(&s.der)
                .map(|(_, c)| c.is_ca())
                .unwrap_or(false)
        })
        .map(|s| s.der.clone())
        .collect();
    let context = Context {
        ca: &ca_der,
        anchor: Anchor::new(&ca_der).map_err(|e| VerifyError::CaUnusable {
            path: ca_path.clone(),
            detail: format!("{e:?}"),
        })?,
        intermediates: &intermediates,
        options,
        store: std::fs::canonicalize(&options.store_dir)
            .unwrap_or_else(|_| options.store_dir.clone()),
    };
    let results = parallel_map(&subjects, |s| context.check(s));
    let mut certificates = Vec::new();
    for (report, key_error) in results {
        certificates.push(report);
        errors.extend(key_error);
    }
    let load_errors: Vec<LoadProblem> = errors.iter().map(LoadProblem::from).collect();
    let count = |sev| certificates.iter().map(|c: &CertReport| c.count(sev)).sum();
    let summary = Summary {
        kind: "summary",
        certificates: certificates.len(),
        errors: count(Severity::Error),
        warnings: count(Severity::Warning),
        load_errors: load_errors.len(),
    };
    Ok(Report {
        kind: "report",
        version: 1,
        ca: ca_path.display().to_string(),
        at: format_instant(options.at),
        certificates,
        load_errors,
        summary,
    })
}

/// Maps over the items on every core, keeping their order.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads <= 1 || items.len() < 16 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

struct Context<'a> {
    ca: &'a CertificateDer<'static>,
    anchor: Anchor<'a>,
    intermediates: &'a [CertificateDer<'static>],
    options: &'a VerifyOptions,
    /// The Nix store with symlinks resolved, once.
    store: PathBuf,
}

impl Context<'_> {
    /// The issuer of `cert` among the CA and the intermediates (by subject name).
    fn issuer_of<'c>(
        &self,
        cert: &X509Certificate<'_>,
        parsed: &'c [(CertificateDer<'static>, X509Certificate<'c>)],
    ) -> Option<&'c X509Certificate<'c>> {
        parsed
            .iter()
            .find(|(_, c)| c.subject().as_raw() == cert.issuer().as_raw())
            .map(|(_, c)| c)
    }

    fn check(&self, subject: &Subject) -> (CertReport, Option<LoadError>) {
        let mut out = Findings::default();
        let mut key_error = None;
        // Parsed once per subject; the loader already proved they parse.
        let (_, cert) = match x509_parser::parse_x509_certificate(&subject.der) {
            Ok(parsed) => parsed,
            Err(e) => {
                out.error(CheckId::Chain, format!("does not parse as X.509 ({e})"));
                return (self.report(subject, "?", "", out), None);
            }
        };
        let issuers: Vec<(CertificateDer<'static>, X509Certificate<'_>)> = std::iter::once(self.ca)
            .chain(self.intermediates)
            .filter(|d| d.as_ref() != subject.der.as_ref())
            .filter_map(|d| {
                x509_parser::parse_x509_certificate(d)
                    .ok()
                    .map(|(_, c)| (d.clone(), c))
            })
            .collect();
        let issuer = self.issuer_of(&cert, &issuers);
        let options = self.options;

        let is_ca = cert.is_ca() || subject.anchor;
        if !subject.anchor {
            if is_ca {
                out.info(
                    CheckId::Chain,
                    "an intermediate CA: checked through the certificates it issued",
                );
            } else {
                self.anchor
                    .check(&subject.der, self.intermediates, options.at, &mut out);
            }
        }
        if !is_ca {
            checks::eku(&cert, subject.eku, &mut out);
        }
        checks::validity(&cert, options.at, options.warn_within, &mut out);
        if !is_ca {
            checks::san(&cert, subject.expected.as_deref(), &mut out);
        }
        let mut key_found = false;
        match &subject.key {
            Some(key_path) => match load::private_key(key_path) {
                Ok(key) => {
                    key_found = true;
                    if key.spki != cert.public_key().raw {
                        out.error(
                            CheckId::KeyMatch,
                            format!(
                                "{} belongs to another certificate (its public key differs from this certificate's); pair the right key or reissue",
                                key_path.display()
                            ),
                        );
                    }
                }
                Err(e) => key_error = Some(e),
            },
            None if !subject.anchor => out.warning(
                CheckId::KeyMatch,
                "no private key found (looked for NAME.key and NAME-key.pem beside it); pass --key or a manifest",
            ),
            None => {}
        }
        checks::key_strength(&cert, &mut out);
        checks::signature_algorithm(&cert, &mut out);
        if is_ca {
            let above = if subject.anchor { None } else { issuer };
            checks::ca_constraints(&cert, above, &mut out);
        } else {
            checks::leaf_constraints(&cert, &mut out);
        }
        match issuer {
            Some(issuer) if !subject.anchor => {
                checks::name_constraints(&cert, issuer, &mut out);
                checks::ca_outlives_leaf(&cert, issuer, &mut out);
            }
            _ if subject.anchor && options.topology.is_some() => {
                checks::anchor_name_constraints(&cert, &mut out)
            }
            _ => {}
        }
        checks::serial(&cert, &mut out);
        if let Some(key_path) = &subject.key {
            // A key that failed to load is still a file whose mode and place matter.
            if key_found || key_path.exists() {
                checks::key_mode(key_path, &mut out);
                checks::key_in_store(key_path, &self.store, &mut out);
            }
        }
        let role = if subject.anchor {
            "ca".to_string()
        } else if is_ca {
            "intermediate-ca".to_string()
        } else if let Some(purpose) = subject.purpose {
            purpose.stem().to_string()
        } else {
            match subject.eku {
                Some(Eku::ServerAuth) => "server".into(),
                Some(Eku::ClientAuth) => "client".into(),
                Some(Eku::ServerAndClientAuth) => "server+client".into(),
                None => "leaf".into(),
            }
        };
        let subject_name = cert.subject().to_string();
        let not_after = format_instant(checks::not_after(&cert));
        let mut report = self.report(subject, &role, &subject_name, out);
        report.not_after = not_after;
        (report, key_error)
    }

    fn report(&self, subject: &Subject, role: &str, name: &str, out: Findings) -> CertReport {
        CertReport {
            kind: "certificate",
            path: subject.label.clone(),
            subject: name.to_string(),
            role: role.to_string(),
            host: subject.host.clone(),
            not_after: String::new(),
            key: subject.key.as_ref().map(|k| k.display().to_string()),
            findings: out.0,
        }
    }
}
