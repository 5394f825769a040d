//! `certtool init-ca` and `certtool issue`: the rampart CA and every certificate the
//! topology needs (docs/contracts.md, "Certificates").
//!
//! rcgen builds the certificates; its defaults are never used where they are wrong for a
//! CA: the serial is random (rcgen derives one from the public key, which repeats across
//! reissues with the same key), the validity is explicit (rcgen's default is 1975–4096).
//! RSA keys come from rcgen's aws-lc-rs backend (ring cannot generate RSA).
//!
//! Key files are created with `O_EXCL` and mode 0600, so an existing key is never
//! silently overwritten: a renewal keeps the key; delete a `.key` file to rotate it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use super::checks::{self, constraints_of};
use super::load::{self, LoadError};
use super::manifest::{Entry, Manifest, RUNTIME_DIR};
use super::{format_instant, planned, KeyType, Planned, SanName};
use rampart_topology::Topology;

/// Why `init-ca` or `issue` could not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// A file `init-ca` would create exists already.
    #[error("certtool: {} already exists; remove it or choose another --out", path.display())]
    Exists { path: PathBuf },
    /// Writing a file or directory failed.
    #[error("certtool: cannot write {} ({source})", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The CA certificate or key could not be read.
    #[error("certtool: the CA cannot be loaded: {0}")]
    Ca(#[from] LoadError),
    /// The CA key does not suit the CA certificate.
    #[error("certtool: {}: {detail}", path.display())]
    CaKey { path: PathBuf, detail: String },
    /// rcgen refused to build a certificate or key.
    #[error("certtool: cannot generate {what} ({detail})")]
    Generate { what: String, detail: String },
    /// A name the topology needs lies outside the CA's name constraints.
    #[error("certtool: refusing to issue names outside the CA's name constraints (permitted: {permitted}):\n  - {}\nadd them to the topology's domain or publicNames and create a new CA with `certtool init-ca`", problems.join("\n  - "))]
    OutsideNameConstraints {
        permitted: String,
        problems: Vec<String>,
    },
    /// The CA is expired, or expires before a certificate could be of any use.
    #[error("certtool: the CA expires at {not_after} (checked at {now}); create a new one with `certtool init-ca` and reissue")]
    CaExpiring { not_after: String, now: String },
    /// Some certificates could not be issued; the others were.
    #[error("certtool: {} certificate(s) could not be issued:\n  - {}", problems.len(), problems.join("\n  - "))]
    Incomplete { problems: Vec<String> },
}

fn generate_err(what: &str) -> impl FnOnce(rcgen::Error) -> IssueError + '_ {
    move |e| IssueError::Generate {
        what: what.to_string(),
        detail: e.to_string(),
    }
}

/// A random positive serial of 20 octets (158 random bits; RFC 5280 allows up to 20).
pub fn random_serial() -> Result<SerialNumber, IssueError> {
    let mut bytes = [0u8; 20];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| IssueError::Generate {
        what: "a serial number".into(),
        detail: "the system random generator failed".into(),
    })?;
    // Clear the sign bit (a serial is positive) and set the next one, so the DER
    // encoding is always exactly 20 octets.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Generates a key pair of the given type.
pub fn generate_key(key_type: KeyType) -> Result<KeyPair, IssueError> {
    let err = generate_err("a key pair");
    match key_type {
        KeyType::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyType::Rsa2048 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        }
        KeyType::Rsa3072 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072)
        }
    }
    .map_err(err)
}

/// Writes a private key: a new file only (`O_EXCL`), mode 0600 from the start.
pub fn write_key(path: &Path, pem: &str) -> Result<(), IssueError> {
    let write_err = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            IssueError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            IssueError::Write {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_err)?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(write_err)
}

/// Writes a public file (certificate, manifest) through a temporary file and a rename,
/// so a reader never sees half of it.
pub fn write_public(path: &Path, text: &str) -> Result<(), IssueError> {
    let write_err = |source| IssueError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp~");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(write_err)?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(write_err)?;
    fs::rename(&tmp, path).map_err(write_err)
}

fn create_dir(path: &Path) -> Result<(), IssueError> {
    fs::create_dir_all(path).map_err(|source| IssueError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Settings of `init-ca`.
#[derive(Clone, Debug)]
pub struct CaOptions {
    pub key_type: KeyType,
    pub validity: Duration,
    pub now: OffsetDateTime,
}

/// What `init-ca` wrote.
#[derive(Clone, Debug)]
pub struct CaSummary {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub subject: String,
    pub not_after: OffsetDateTime,
    pub permitted: Vec<String>,
}

/// The CA's name constraints: the internal domain, the public names and the host network.
pub fn ca_name_constraints(topology: &Topology) -> NameConstraints {
    let mut permitted = vec![GeneralSubtree::DnsName(topology.domain.clone())];
    permitted.extend(
        topology
            .public_names
            .iter()
            .map(|n| GeneralSubtree::DnsName(n.clone())),
    );
    permitted.push(GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix(
        topology.network.address().octets(),
        topology.network.prefix(),
    )));
    NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: Vec::new(),
    }
}

/// `certtool init-ca`: a new CA key and self-signed certificate in `out`.
pub fn init_ca(
    topology: &Topology,
    out: &Path,
    options: &CaOptions,
) -> Result<CaSummary, IssueError> {
    create_dir(out)?;
    let cert_path = out.join("ca.pem");
    let key_path = out.join("ca.key");
    for path in [&cert_path, &key_path] {
        if fs::symlink_metadata(path).is_ok() {
            return Err(IssueError::Exists { path: path.clone() });
        }
    }
    let key = generate_key(options.key_type)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, topology.name.clone());
    dn.push(DnType::CommonName, format!("{} CA", topology.name));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints = Some(ca_name_constraints(topology));
    params.serial_number = Some(random_serial()?);
    // A few minutes back: a host whose clock lags slightly still accepts the CA.
    params.not_before = options.now - Duration::minutes(5);
    params.not_after = options.now + options.validity;
    let cert = params
        .self_signed(&key)
        .map_err(generate_err("the CA certificate"))?;
    write_key(&key_path, &key.serialize_pem())?;
    write_public(&cert_path, &cert.pem())?;
    let mut permitted = vec![topology.domain.clone()];
    permitted.extend(topology.public_names.iter().cloned());
    permitted.push(topology.network.to_string());
    Ok(CaSummary {
        cert: cert_path,
        key: key_path,
        subject: format!("O={}, CN={} CA", topology.name, topology.name),
        not_after: params.not_after,
        permitted,
    })
}

/// Settings of `issue`.
#[derive(Clone, Debug)]
pub struct IssueOptions {
    pub key_type: KeyType,
    pub validity: Duration,
    /// Reissue certificates that expire within this span.
    pub renew_within: Duration,
    pub now: OffsetDateTime,
}

/// What happened to one planned certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A new certificate with a new key.
    Issued,
    /// A new certificate for the existing key, and why.
    Reissued(String),
    /// The existing certificate is valid and was kept.
    Kept,
}

/// One line of `issue`'s report.
#[derive(Clone, Debug)]
pub struct Issued {
    pub planned: Planned,
    pub action: Action,
    pub entry: Entry,
}

/// The CA `issue` signs with.
struct Ca {
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    not_after: OffsetDateTime,
    constraints: Option<checks::Constraints>,
    pem: String,
}

fn load_ca(dir: &Path) -> Result<Ca, IssueError> {
    let cert_path = dir.join("ca.pem");
    let key_path = dir.join("ca.key");
    let der = load::certificates(&cert_path)?
        .into_iter()
        .next()
        .ok_or_else(|| LoadError::NoCertificate {
            path: cert_path.clone(),
            found: "nothing".into(),
        })?;
    let key_bytes = load::read_small(&key_path)?;
    let loaded = load::parse_private_key(&key_path, &key_bytes)?;
    let (_, parsed) =
        x509_parser::parse_x509_certificate(&der).map_err(|e| LoadError::BadCertificate {
            path: cert_path.clone(),
            index: 1,
            detail: e.to_string(),
        })?;
    if loaded.spki != parsed.public_key().raw {
        return Err(IssueError::CaKey {
            path: key_path,
            detail: format!(
                "the key does not belong to {} (its public key differs); give the CA's own key",
                cert_path.display()
            ),
        });
    }
    if !parsed.is_ca() {
        return Err(IssueError::CaKey {
            path: cert_path,
            detail: "not a CA certificate (basicConstraints CA:TRUE missing); create one with `certtool init-ca`".into(),
        });
    }
    let key_pem = String::from_utf8_lossy(&key_bytes).into_owned();
    let key = KeyPair::from_pem(&key_pem).map_err(|e| IssueError::CaKey {
        path: key_path.clone(),
        detail: format!("rcgen cannot sign with this key ({e}); expected an ECDSA P-256/P-384 or RSA PKCS#8 key"),
    })?;
    let not_after = checks::not_after(&parsed);
    let constraints = constraints_of(&parsed);
    let issuer = Issuer::from_ca_cert_der(&der, key).map_err(generate_err("the CA issuer"))?;
    let pem = fs::read_to_string(&cert_path).map_err(|source| LoadError::Read {
        path: cert_path.clone(),
        source,
    })?;
    Ok(Ca {
        der,
        issuer,
        not_after,
        constraints,
        pem,
    })
}

fn leaf_params(
    planned: &Planned,
    options: &IssueOptions,
    ca_not_after: OffsetDateTime,
) -> Result<CertificateParams, IssueError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, planned.names[0].to_string());
    params.distinguished_name = dn;
    params.subject_alt_names = planned
        .names
        .iter()
        .map(|name| match name {
            SanName::Dns(dns) => dns
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(generate_err("a DNS SAN")),
            SanName::Ip(ip) => Ok(SanType::IpAddress(*ip)),
        })
        .collect::<Result<_, _>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let eku = planned.purpose.eku();
    params.extended_key_usages = [
        (eku.server(), ExtendedKeyUsagePurpose::ServerAuth),
        (eku.client(), ExtendedKeyUsagePurpose::ClientAuth),
    ]
    .into_iter()
    .filter_map(|(wanted, usage)| wanted.then_some(usage))
    .collect();
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial()?);
    params.not_before = options.now - Duration::minutes(5);
    // Never outlive the CA: a leaf valid past its CA would fail `ca-outlives-leaf`.
    params.not_after = (options.now + options.validity).min(ca_not_after);
    Ok(params)
}

/// Why an existing certificate must be reissued, or `None` to keep it.
fn reissue_reason(
    cert_path: &Path,
    key_spki: &[u8],
    planned: &Planned,
    ca: &Ca,
    options: &IssueOptions,
) -> Option<String> {
    let der = match load::certificates(cert_path) {
        Ok(certs) => certs.into_iter().next()?,
        Err(e) => return Some(format!("the existing certificate is unusable: {e}")),
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return Some("the existing certificate does not parse".into());
    };
    if cert.public_key().raw != key_spki {
        return Some("the certificate does not match the key".into());
    }
    if cert.issuer().as_raw() != x509_subject_raw(&ca.der).as_slice() {
        return Some("issued by another CA".into());
    }
    let mut sig_ok = checks::Findings::default();
    super::verify::chain_to(&der, &ca.der, &[], options.now, &mut sig_ok);
    if !sig_ok.0.is_empty() {
        return Some("it does not chain to the CA".into());
    }
    let mut have = checks::san_names(&cert);
    let mut want = planned.names.clone();
    have.sort();
    want.sort();
    if have != want {
        return Some("its names differ from the topology's".into());
    }
    let mut eku = checks::Findings::default();
    checks::eku(&cert, Some(planned.purpose.eku()), &mut eku);
    if !eku.0.is_empty() {
        return Some("its extended key usage differs".into());
    }
    let until = checks::not_after(&cert);
    if until - options.now < options.renew_within {
        return Some(format!("it expires at {}", format_instant(until)));
    }
    if checks::not_before(&cert) > options.now {
        return Some("it is not valid yet".into());
    }
    None
}

fn x509_subject_raw(der: &[u8]) -> Vec<u8> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c.subject().as_raw().to_vec())
        .unwrap_or_default()
}

/// Issues (or keeps) one planned certificate.
fn issue_one(
    planned: &Planned,
    ca: &Ca,
    out: &Path,
    options: &IssueOptions,
) -> Result<Issued, IssueError> {
    let host_dir = out.join(&planned.host);
    create_dir(&host_dir)?;
    let stem = planned.purpose.stem();
    let cert_path = host_dir.join(format!("{stem}.pem"));
    let key_path = host_dir.join(format!("{stem}.key"));
    let existing_key = fs::symlink_metadata(&key_path).is_ok();
    let (key, action) = if existing_key {
        let bytes = load::read_small(&key_path)?;
        let loaded = load::parse_private_key(&key_path, &bytes)?;
        let reason = if fs::symlink_metadata(&cert_path).is_ok() {
            reissue_reason(&cert_path, &loaded.spki, planned, ca, options)
        } else {
            Some("the certificate is missing".into())
        };
        let Some(reason) = reason else {
            let der = load::certificates(&cert_path)?.remove(0);
            return Ok(Issued {
                planned: planned.clone(),
                action: Action::Kept,
                entry: entry_for(planned, &der),
            });
        };
        let key =
            KeyPair::from_pem(&String::from_utf8_lossy(&bytes)).map_err(|e| IssueError::CaKey {
                path: key_path.clone(),
                detail: format!(
                    "the existing key cannot sign ({e}); delete it to have a new one generated"
                ),
            })?;
        (key, Action::Reissued(reason))
    } else {
        let key = generate_key(options.key_type)?;
        write_key(&key_path, &key.serialize_pem())?;
        (key, Action::Issued)
    };
    let params = leaf_params(planned, options, ca.not_after)?;
    let cert = params
        .signed_by(&key, &ca.issuer)
        .map_err(generate_err("a leaf certificate"))?;
    write_public(&cert_path, &cert.pem())?;
    Ok(Issued {
        planned: planned.clone(),
        action,
        entry: entry_for(planned, cert.der()),
    })
}

fn entry_for(planned: &Planned, der: &[u8]) -> Entry {
    let (not_after, serial) = match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => (
            format_instant(checks::not_after(&c)),
            checks::hex(c.raw_serial()),
        ),
        Err(_) => (String::new(), String::new()),
    };
    let stem = planned.purpose.stem();
    Entry {
        kind: "certificate".into(),
        host: planned.host.clone(),
        purpose: stem.into(),
        eku: planned.purpose.eku().name().into(),
        names: planned.names.iter().map(|n| n.to_string()).collect(),
        not_after,
        serial,
        cert: format!("{}/{stem}.pem", planned.host),
        key: format!("{}/{stem}.key", planned.host),
        runtime_cert: format!("{RUNTIME_DIR}/{stem}.pem"),
        runtime_key: format!("{RUNTIME_DIR}/{stem}.key"),
    }
}

/// Every planned name outside the CA's name constraints, as messages.
pub fn names_outside(plan: &[Planned], constraints: &checks::Constraints) -> Vec<String> {
    plan.iter()
        .flat_map(|p| {
            p.names
                .iter()
                .filter(|n| !constraints.permits(n))
                .map(move |n| format!("{} (host {}, purpose {})", n, p.host, p.purpose))
        })
        .collect()
}

/// `certtool issue`: every certificate the topology needs, signed by the CA in `ca_dir`,
/// written under `out` with `ca.pem` and `manifest.json`.
pub fn issue(
    topology: &Topology,
    ca_dir: &Path,
    out: &Path,
    options: &IssueOptions,
) -> Result<Vec<Issued>, IssueError> {
    let ca = load_ca(ca_dir)?;
    if ca.not_after - options.now < Duration::days(1) {
        return Err(IssueError::CaExpiring {
            not_after: format_instant(ca.not_after),
            now: format_instant(options.now),
        });
    }
    let plan = planned(topology);
    if let Some(constraints) = &ca.constraints {
        let problems = names_outside(&plan, constraints);
        if !problems.is_empty() {
            return Err(IssueError::OutsideNameConstraints {
                permitted: constraints.describe(),
                problems,
            });
        }
    }
    create_dir(out)?;
    let _ = fs::set_permissions(out, fs::Permissions::from_mode(0o755));
    let mut issued = Vec::new();
    let mut problems = Vec::new();
    for p in &plan {
        match issue_one(p, &ca, out, options) {
            Ok(done) => issued.push(done),
            Err(e) => problems.push(format!("{}/{}: {e}", p.host, p.purpose)),
        }
    }
    write_public(&out.join("ca.pem"), &ca.pem)?;
    let manifest = Manifest::new(issued.iter().map(|i| i.entry.clone()).collect());
    write_public(&out.join("manifest.json"), &manifest.to_json())?;
    if !problems.is_empty() {
        return Err(IssueError::Incomplete { problems });
    }
    Ok(issued)
}
