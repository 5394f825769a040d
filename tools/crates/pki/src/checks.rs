//! The checks of `certtool verify`, each with a stable id.
//!
//! Every check runs on every certificate; a check that does not apply to a certificate's
//! role (say `leaf-constraints` on the CA) stays silent. A finding is `{id, severity,
//! message}`; `error` findings make `verify` exit 1, `warning` and `info` do not.
//!
//! | id | meaning |
//! |---|---|
//! | `chain` | the certificate chains to the given CA (rustls-webpki, the CA as the only trust anchor, never system roots) |
//! | `eku` | the extended key usage fits the purpose: `serverAuth` for servers, `clientAuth` for clients |
//! | `validity.expired` | the certificate's notAfter is before the checked instant (`--at`, default now) |
//! | `validity.not-yet-valid` | the certificate's notBefore is after the checked instant |
//! | `validity.expires-soon` | the certificate expires within `--warn-within` (default 30d) of the checked instant (warning) |
//! | `san` | the subject alternative names cover every name the topology (or `--name`) expects for it |
//! | `key-match` | the private key belongs to the certificate (same SubjectPublicKeyInfo) |
//! | `key-strength` | RSA keys have at least 2048 bits; EC keys are P-256 or P-384; nothing else |
//! | `signature-algorithm` | the signature uses SHA-256 or better with RSA/ECDSA, or Ed25519: no MD5, no SHA-1 |
//! | `ca-constraints` | a CA has basicConstraints CA:TRUE (critical), keyUsage keyCertSign, and its issuer's pathlen allows it |
//! | `leaf-constraints` | a leaf is not a CA: no CA:TRUE, no keyCertSign or cRLSign |
//! | `name-constraints` | the names in a certificate lie inside its issuer's name constraints; a CA without any gets a warning |
//! | `ca-outlives-leaf` | the issuing CA stays valid at least as long as the certificate |
//! | `serial` | the serial number is positive and at most 20 octets (RFC 5280 4.1.2.2) |
//! | `key-mode` | the key file's mode is 0600 (or 0400), or 0640/0440 when root owns it |
//! | `key-in-store` | the key file is not under the Nix store, after resolving symlinks |

use std::fmt;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, NameConstraints};
use x509_parser::public_key::PublicKey;

use super::{format_instant, Eku, SanName};

/// A check's stable id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckId {
    Chain,
    Eku,
    ValidityExpired,
    ValidityNotYetValid,
    ValidityExpiresSoon,
    San,
    KeyMatch,
    KeyStrength,
    SignatureAlgorithm,
    CaConstraints,
    LeafConstraints,
    NameConstraints,
    CaOutlivesLeaf,
    Serial,
    KeyMode,
    KeyInStore,
}

impl CheckId {
    pub const ALL: [CheckId; 16] = [
        CheckId::Chain,
        CheckId::Eku,
        CheckId::ValidityExpired,
        CheckId::ValidityNotYetValid,
        CheckId::ValidityExpiresSoon,
        CheckId::San,
        CheckId::KeyMatch,
        CheckId::KeyStrength,
        CheckId::SignatureAlgorithm,
        CheckId::CaConstraints,
        CheckId::LeafConstraints,
        CheckId::NameConstraints,
        CheckId::CaOutlivesLeaf,
        CheckId::Serial,
        CheckId::KeyMode,
        CheckId::KeyInStore,
    ];

    /// The id printed in reports and matched by scripts.
    pub fn id(self) -> &'static str {
        match self {
            CheckId::Chain => "chain",
            CheckId::Eku => "eku",
            CheckId::ValidityExpired => "validity.expired",
            CheckId::ValidityNotYetValid => "validity.not-yet-valid",
            CheckId::ValidityExpiresSoon => "validity.expires-soon",
            CheckId::San => "san",
            CheckId::KeyMatch => "key-match",
            CheckId::KeyStrength => "key-strength",
            CheckId::SignatureAlgorithm => "signature-algorithm",
            CheckId::CaConstraints => "ca-constraints",
            CheckId::LeafConstraints => "leaf-constraints",
            CheckId::NameConstraints => "name-constraints",
            CheckId::CaOutlivesLeaf => "ca-outlives-leaf",
            CheckId::Serial => "serial",
            CheckId::KeyMode => "key-mode",
            CheckId::KeyInStore => "key-in-store",
        }
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for CheckId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

/// How bad a finding is. Only `error` fails `verify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// One problem (or note) about one certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub id: CheckId,
    pub severity: Severity,
    pub message: String,
}

/// Collects findings.
#[derive(Default)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    pub fn error(&mut self, id: CheckId, message: impl Into<String>) {
        self.push(id, Severity::Error, message);
    }
    pub fn warning(&mut self, id: CheckId, message: impl Into<String>) {
        self.push(id, Severity::Warning, message);
    }
    pub fn info(&mut self, id: CheckId, message: impl Into<String>) {
        self.push(id, Severity::Info, message);
    }
    fn push(&mut self, id: CheckId, severity: Severity, message: impl Into<String>) {
        self.0.push(Finding {
            id,
            severity,
            message: message.into(),
        });
    }
}

/// Time as x509-parser stores it, converted for comparisons and messages.
pub fn not_before(cert: &X509Certificate<'_>) -> OffsetDateTime {
    from_unix(cert.validity().not_before.timestamp())
}

pub fn not_after(cert: &X509Certificate<'_>) -> OffsetDateTime {
    from_unix(cert.validity().not_after.timestamp())
}

fn from_unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `validity.expired`, `validity.not-yet-valid`, `validity.expires-soon`.
pub fn validity(
    cert: &X509Certificate<'_>,
    at: OffsetDateTime,
    warn_within: time::Duration,
    out: &mut Findings,
) {
    let (from, until) = (not_before(cert), not_after(cert));
    if at > until {
        out.error(
            CheckId::ValidityExpired,
            format!(
                "expired at {} (checked at {}); renew it (`certtool issue` reissues expired certificates)",
                format_instant(until),
                format_instant(at)
            ),
        );
    } else if until - at < warn_within {
        out.warning(
            CheckId::ValidityExpiresSoon,
            format!(
                "expires at {}, within {} days of {}; renew it (`certtool issue --renew-within …`)",
                format_instant(until),
                warn_within.whole_days(),
                format_instant(at)
            ),
        );
    }
    if at < from {
        out.error(
            CheckId::ValidityNotYetValid,
            format!(
                "not valid before {} (checked at {}); check the issuing machine's clock",
                format_instant(from),
                format_instant(at)
            ),
        );
    }
}

/// The SAN entries of a certificate (DNS names lower-cased, IP addresses parsed).
pub fn san_names(cert: &X509Certificate<'_>) -> Vec<SanName> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(SanName::Dns(dns.to_ascii_lowercase())),
            GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(SanName::Ip),
            _ => None,
        })
        .collect()
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `san`: every expected name is covered (a wildcard covers one label).
pub fn san(cert: &X509Certificate<'_>, expected: Option<&[SanName]>, out: &mut Findings) {
    let present = san_names(cert);
    let Some(expected) = expected else {
        out.info(
            CheckId::San,
            format!(
                "no expected names known (SAN: {}); pass --topology, a manifest, or --name",
                if present.is_empty() {
                    "none".to_string()
                } else {
                    join(&present)
                }
            ),
        );
        return;
    };
    let missing: Vec<&SanName> = expected
        .iter()
        .filter(|want| !present.iter().any(|have| san_covers(have, want)))
        .collect();
    if !missing.is_empty() {
        out.error(
            CheckId::San,
            format!(
                "SAN does not cover {} (got {}, expected {}); reissue it with the topology's names",
                join(&missing),
                if present.is_empty() {
                    "no SAN".to_string()
                } else {
                    join(&present)
                },
                join(expected)
            ),
        );
    }
    let extra: Vec<&SanName> = present
        .iter()
        .filter(|have| !expected.contains(have))
        .collect();
    if !extra.is_empty() {
        out.warning(
            CheckId::San,
            format!("SAN also covers {}, which nothing expects", join(&extra)),
        );
    }
}

fn san_covers(have: &SanName, want: &SanName) -> bool {
    match (have, want) {
        (SanName::Dns(h), SanName::Dns(w)) => {
            h == w
                || h.strip_prefix("*.")
                    .is_some_and(|suffix| w.split_once('.').is_some_and(|(_, rest)| rest == suffix))
        }
        (SanName::Ip(h), SanName::Ip(w)) => h == w,
        _ => false,
    }
}

/// The usages of an extendedKeyUsage extension, by their usual names (OIDs otherwise).
pub fn eku_names(eku: &x509_parser::extensions::ExtendedKeyUsage<'_>) -> Vec<String> {
    let mut names: Vec<String> = [
        (eku.server_auth, "serverAuth"),
        (eku.client_auth, "clientAuth"),
        (eku.any, "anyExtendedKeyUsage"),
        (eku.code_signing, "codeSigning"),
        (eku.email_protection, "emailProtection"),
        (eku.time_stamping, "timeStamping"),
        (eku.ocsp_signing, "OCSPSigning"),
    ]
    .into_iter()
    .filter(|(flag, _)| *flag)
    .map(|(_, name)| name.to_string())
    .collect();
    names.extend(eku.other.iter().map(|oid| oid.to_id_string()));
    names
}

/// `eku`: the purpose's EKU is present (the extension is required for rampart's leaves).
pub fn eku(cert: &X509Certificate<'_>, required: Option<Eku>, out: &mut Findings) {
    let ext = match cert.extended_key_usage() {
        Ok(ext) => ext,
        Err(e) => {
            out.error(
                CheckId::Eku,
                format!("extendedKeyUsage does not parse ({e})"),
            );
            return;
        }
    };
    let Some(required) = required else {
        out.info(
            CheckId::Eku,
            "purpose unknown; pass --purpose server|client, --topology or a manifest",
        );
        return;
    };
    let Some(ext) = ext else {
        out.error(
            CheckId::Eku,
            format!(
                "no extendedKeyUsage extension (expected {required}); reissue it with its purpose"
            ),
        );
        return;
    };
    let eku = ext.value;
    let have = eku_names(eku);
    let ok = (!required.server() || eku.server_auth) && (!required.client() || eku.client_auth);
    let wanted = usize::from(required.server()) + usize::from(required.client());
    let got = if have.is_empty() {
        "none".to_string()
    } else {
        have.join(", ")
    };
    if !ok {
        out.error(
            CheckId::Eku,
            format!("wrong extended key usage (got {got}, expected {required}); reissue it for its purpose"),
        );
    } else if have.len() > wanted {
        out.warning(
            CheckId::Eku,
            format!("extended key usage broader than needed (got {got}, expected only {required})"),
        );
    }
}

const ALLOWED_SIGNATURES: [(&str, &str); 8] = [
    ("1.2.840.113549.1.1.11", "sha256WithRSAEncryption"),
    ("1.2.840.113549.1.1.12", "sha384WithRSAEncryption"),
    ("1.2.840.113549.1.1.13", "sha512WithRSAEncryption"),
    ("1.2.840.113549.1.1.10", "RSASSA-PSS"),
    ("1.2.840.10045.4.3.2", "ecdsa-with-SHA256"),
    ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384"),
    ("1.2.840.10045.4.3.4", "ecdsa-with-SHA512"),
    ("1.3.101.112", "Ed25519"),
];

const WEAK_SIGNATURES: [(&str, &str); 7] = [
    ("1.2.840.113549.1.1.2", "md2WithRSAEncryption"),
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption"),
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption"),
    ("1.3.14.3.2.29", "sha1WithRSASignature"),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1"),
    ("1.2.840.10040.4.3", "dsa-with-SHA1"),
    ("1.2.840.113549.1.1.14", "sha224WithRSAEncryption"),
];

/// The readable name of a signature algorithm OID.
pub fn signature_name(oid: &str) -> String {
    ALLOWED_SIGNATURES
        .iter()
        .chain(&WEAK_SIGNATURES)
        .find(|(o, _)| *o == oid)
        .map(|(_, name)| name.to_string())
        .unwrap_or_else(|| oid.to_string())
}

/// `signature-algorithm`: SHA-256 or better, never MD5 or SHA-1.
pub fn signature_algorithm(cert: &X509Certificate<'_>, out: &mut Findings) {
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    if ALLOWED_SIGNATURES.iter().any(|(o, _)| *o == oid) {
        return;
    }
    out.error(
        CheckId::SignatureAlgorithm,
        format!(
            "weak or unknown signature algorithm (got {}, expected SHA-256 or better with RSA or ECDSA, or Ed25519); reissue it",
            signature_name(&oid)
        ),
    );
}

const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// A short description of the public key, for tables and `inspect`.
pub fn key_description(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                OID_P256 => "EC P-256".to_string(),
                OID_P384 => "EC P-384".to_string(),
                "1.3.132.0.35" => "EC P-521".to_string(),
                other => format!("EC curve {other}"),
            }
        }
        _ => match spki.algorithm.algorithm.to_id_string().as_str() {
            "1.3.101.112" => "Ed25519".to_string(),
            other => format!("algorithm {other}"),
        },
    }
}

/// `key-strength`: RSA ≥ 2048 bits, EC P-256 or P-384.
pub fn key_strength(cert: &X509Certificate<'_>, out: &mut Findings) {
    let spki = cert.public_key();
    let what = key_description(cert);
    let ok = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => rsa.key_size() >= 2048,
        Ok(PublicKey::EC(_)) => what == "EC P-256" || what == "EC P-384",
        _ => false,
    };
    if !ok {
        out.error(
            CheckId::KeyStrength,
            format!("weak or unsupported key (got {what}, expected RSA ≥ 2048, EC P-256 or EC P-384); reissue it with a new key"),
        );
    }
}

/// `serial`: positive, at most 20 octets; short serials are a warning (not random enough).
pub fn serial(cert: &X509Certificate<'_>, out: &mut Findings) {
    let raw = cert.raw_serial();
    if raw.is_empty() || raw.iter().all(|b| *b == 0) {
        out.error(
            CheckId::Serial,
            "serial number is zero (expected a positive random number)",
        );
        return;
    }
    if raw[0] & 0x80 != 0 {
        out.error(
            CheckId::Serial,
            format!(
                "serial number is negative (got 0x{}, expected a positive number)",
                hex(raw)
            ),
        );
    }
    if raw.len() > 20 {
        out.error(
            CheckId::Serial,
            format!(
                "serial number is {} octets long (expected at most 20)",
                raw.len()
            ),
        );
    } else if raw.len() < 8 {
        out.warning(
            CheckId::Serial,
            format!(
                "serial number has only {} octets (expected at least 8 random octets)",
                raw.len()
            ),
        );
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `pathLenConstraint` of a CA, `None` when absent or not a CA.
pub fn path_len(cert: &X509Certificate<'_>) -> Option<u32> {
    cert.basic_constraints()
        .ok()
        .flatten()
        .filter(|bc| bc.value.ca)
        .and_then(|bc| bc.value.path_len_constraint)
}

/// `ca-constraints` for a CA certificate. `issuer` is the CA above it, if it is not the
/// trust anchor itself.
pub fn ca_constraints(
    cert: &X509Certificate<'_>,
    issuer: Option<&X509Certificate<'_>>,
    out: &mut Findings,
) {
    match cert.basic_constraints() {
        Err(e) => out.error(
            CheckId::CaConstraints,
            format!("basicConstraints does not parse ({e})"),
        ),
        Ok(None) => out.error(
            CheckId::CaConstraints,
            "no basicConstraints (expected critical CA:TRUE); it cannot act as a CA",
        ),
        Ok(Some(bc)) => {
            if !bc.value.ca {
                out.error(
                    CheckId::CaConstraints,
                    "basicConstraints says CA:FALSE (expected CA:TRUE); it cannot act as a CA",
                );
            }
            if !bc.critical {
                out.error(
                    CheckId::CaConstraints,
                    "basicConstraints is not critical (expected critical, RFC 5280 4.2.1.9)",
                );
            }
            if bc.value.ca && bc.value.path_len_constraint.is_none() && issuer.is_none() {
                out.warning(
                    CheckId::CaConstraints,
                    "no pathLenConstraint: the CA may sign sub-CAs (rampart's CA uses pathlen 0)",
                );
            }
        }
    }
    match cert.key_usage() {
        Err(e) => out.error(
            CheckId::CaConstraints,
            format!("keyUsage does not parse ({e})"),
        ),
        Ok(None) => out.error(
            CheckId::CaConstraints,
            "no keyUsage (expected critical keyCertSign, cRLSign)",
        ),
        Ok(Some(ku)) => {
            if !ku.value.key_cert_sign() {
                out.error(
                    CheckId::CaConstraints,
                    format!("keyUsage lacks keyCertSign (got {}, expected keyCertSign, cRLSign); it may not sign certificates", ku.value),
                );
            }
            if !ku.critical {
                out.warning(
                    CheckId::CaConstraints,
                    "keyUsage is not critical (expected critical)",
                );
            }
        }
    }
    if let Some(issuer) = issuer {
        if path_len(issuer) == Some(0) {
            out.error(
                CheckId::CaConstraints,
                format!(
                    "pathlen violated: issued by \"{}\", whose pathLenConstraint 0 forbids sub-CAs",
                    issuer.subject()
                ),
            );
        }
    }
}

/// `leaf-constraints` for an end-entity certificate.
pub fn leaf_constraints(cert: &X509Certificate<'_>, out: &mut Findings) {
    if let Ok(Some(bc)) = cert.basic_constraints() {
        if bc.value.ca {
            out.error(
                CheckId::LeafConstraints,
                "basicConstraints CA:TRUE on a leaf (expected CA:FALSE); it could sign certificates",
            );
        }
    }
    if let Ok(Some(ku)) = cert.key_usage() {
        if ku.value.key_cert_sign() || ku.value.crl_sign() {
            out.error(
                CheckId::LeafConstraints,
                format!(
                    "keyUsage of a leaf includes CA usages (got {}, expected digitalSignature)",
                    ku.value
                ),
            );
        }
    }
}

/// The names a CA's name constraints permit and exclude, as parsed subtrees.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Constraints {
    pub permitted_dns: Vec<String>,
    pub excluded_dns: Vec<String>,
    pub permitted_ip: Vec<(IpAddr, IpAddr)>,
    pub excluded_ip: Vec<(IpAddr, IpAddr)>,
}

/// The CA's name constraints, `None` when it has none.
pub fn constraints_of(ca: &X509Certificate<'_>) -> Option<Constraints> {
    let ext: NameConstraints<'_> = ca.name_constraints().ok().flatten()?.value.clone();
    let mut c = Constraints::default();
    let take = |subtrees: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>,
                dns: &mut Vec<String>,
                ip: &mut Vec<(IpAddr, IpAddr)>| {
        for subtree in subtrees.iter().flatten() {
            match &subtree.base {
                GeneralName::DNSName(name) => dns.push(name.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) if bytes.len() == 8 || bytes.len() == 32 => {
                    let half = bytes.len() / 2;
                    if let (Some(addr), Some(mask)) =
                        (ip_from_bytes(&bytes[..half]), ip_from_bytes(&bytes[half..]))
                    {
                        ip.push((addr, mask));
                    }
                }
                _ => {}
            }
        }
    };
    let (mut pd, mut pi, mut ed, mut ei) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    take(&ext.permitted_subtrees, &mut pd, &mut pi);
    take(&ext.excluded_subtrees, &mut ed, &mut ei);
    c.permitted_dns = pd;
    c.permitted_ip = pi;
    c.excluded_dns = ed;
    c.excluded_ip = ei;
    Some(c)
}

fn dns_in_subtree(name: &str, subtree: &str) -> bool {
    let name = name.trim_start_matches("*.");
    match subtree.strip_prefix('.') {
        Some(suffix) => name.ends_with(&format!(".{suffix}")),
        None => name == subtree || name.ends_with(&format!(".{subtree}")),
    }
}

fn ip_in_subtree(ip: &IpAddr, (net, mask): &(IpAddr, IpAddr)) -> bool {
    match (ip, net, mask) {
        (IpAddr::V4(ip), IpAddr::V4(net), IpAddr::V4(mask)) => {
            u32::from(*ip) & u32::from(*mask) == u32::from(*net) & u32::from(*mask)
        }
        (IpAddr::V6(ip), IpAddr::V6(net), IpAddr::V6(mask)) => {
            u128::from(*ip) & u128::from(*mask) == u128::from(*net) & u128::from(*mask)
        }
        _ => false,
    }
}

impl Constraints {
    /// Whether the constraints permit a name (RFC 5280 4.2.1.10: a name type without
    /// permitted subtrees is unconstrained).
    pub fn permits(&self, name: &SanName) -> bool {
        match name {
            SanName::Dns(dns) => {
                (self.permitted_dns.is_empty()
                    || self.permitted_dns.iter().any(|s| dns_in_subtree(dns, s)))
                    && !self.excluded_dns.iter().any(|s| dns_in_subtree(dns, s))
            }
            SanName::Ip(ip) => {
                let family: Vec<_> = self
                    .permitted_ip
                    .iter()
                    .filter(|(net, _)| net.is_ipv4() == ip.is_ipv4())
                    .collect();
                (self.permitted_ip.is_empty() || family.iter().any(|s| ip_in_subtree(ip, s)))
                    && !self.excluded_ip.iter().any(|s| ip_in_subtree(ip, s))
            }
        }
    }

    /// The permitted subtrees, for messages.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.permitted_dns.clone();
        parts.extend(
            self.permitted_ip
                .iter()
                .map(|(net, mask)| format!("{net}/{mask}")),
        );
        if parts.is_empty() {
            "no permitted subtrees".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// `name-constraints` for a certificate issued by `issuer`.
pub fn name_constraints(
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    out: &mut Findings,
) {
    let Some(constraints) = constraints_of(issuer) else {
        return;
    };
    let outside: Vec<SanName> = san_names(cert)
        .into_iter()
        .filter(|n| !constraints.permits(n))
        .collect();
    if !outside.is_empty() {
        out.error(
            CheckId::NameConstraints,
            format!(
                "{} outside the issuer's name constraints (permitted: {}); TLS clients will reject it",
                join(&outside),
                constraints.describe()
            ),
        );
    }
}

/// `name-constraints` on the trust anchor itself: warn when it has none.
pub fn anchor_name_constraints(ca: &X509Certificate<'_>, out: &mut Findings) {
    if constraints_of(ca).is_none() {
        out.warning(
            CheckId::NameConstraints,
            "the CA has no name constraints: a stolen CA key can sign any name (certtool init-ca adds them)",
        );
    }
}

/// `ca-outlives-leaf`.
pub fn ca_outlives_leaf(
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    out: &mut Findings,
) {
    let (leaf, ca) = (not_after(cert), not_after(issuer));
    if ca < leaf {
        out.error(
            CheckId::CaOutlivesLeaf,
            format!(
                "the issuing CA expires at {}, before this certificate ({}); renew the CA or shorten the certificate",
                format_instant(ca),
                format_instant(leaf)
            ),
        );
    }
}

/// `key-mode`: 0600/0400, or 0640/0440 when root owns the file.
pub fn key_mode(key: &Path, out: &mut Findings) {
    let meta = match std::fs::metadata(key) {
        Ok(meta) => meta,
        Err(e) => {
            out.error(
                CheckId::KeyMode,
                format!("cannot stat {} ({e})", key.display()),
            );
            return;
        }
    };
    let mode = meta.mode() & 0o7777;
    let owner_only = matches!(mode, 0o600 | 0o400);
    let root_group = matches!(mode, 0o640 | 0o440) && meta.uid() == 0;
    if !(owner_only || root_group) {
        out.error(
            CheckId::KeyMode,
            format!(
                "{} has mode {mode:04o} and owner uid {} (expected 0600, or 0640 owned by root); run chmod 600 {}",
                key.display(),
                meta.uid(),
                key.display()
            ),
        );
    }
}

/// `key-in-store`: the key, symlinks resolved, must not be under the Nix store
/// (`store_dir`, itself with symlinks resolved).
pub fn key_in_store(key: &Path, store_dir: &Path, out: &mut Findings) {
    let resolved = std::fs::canonicalize(key).unwrap_or_else(|_| key.to_path_buf());
    if resolved.starts_with(store_dir) || key.starts_with(store_dir) {
        out.error(
            CheckId::KeyInStore,
            format!(
                "{} resolves to {}, inside the Nix store {} (world-readable); keep keys in the PKI directory and pass paths as strings",
                key.display(),
                resolved.display(),
                store_dir.display()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_subtrees_follow_rfc_5280() {
        assert!(dns_in_subtree("web1.rampart.internal", "rampart.internal"));
        assert!(dns_in_subtree("rampart.internal", "rampart.internal"));
        assert!(!dns_in_subtree("evilrampart.internal", "rampart.internal"));
        assert!(!dns_in_subtree("rampart.internal", ".rampart.internal"));
        assert!(dns_in_subtree("a.rampart.internal", ".rampart.internal"));
    }

    #[test]
    fn ip_constraints_apply_per_family() {
        let c = Constraints {
            permitted_ip: vec![(
                "10.42.0.0".parse().unwrap(),
                "255.255.255.0".parse().unwrap(),
            )],
            ..Constraints::default()
        };
        assert!(c.permits(&SanName::parse("10.42.0.11")));
        assert!(!c.permits(&SanName::parse("10.43.0.11")));
        assert!(c.permits(&SanName::parse("anything.example")));
    }

    /// The EKU findings for a certificate carrying `usages`, checked against `required`.
    fn eku_findings(
        usages: Vec<rcgen::ExtendedKeyUsagePurpose>,
        required: Eku,
    ) -> Vec<(Severity, String)> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["a.rampart.internal".into()]).unwrap();
        params.extended_key_usages = usages;
        let der = params.self_signed(&key).unwrap().der().to_vec();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let mut out = Findings::default();
        eku(&cert, Some(required), &mut out);
        out.0.into_iter().map(|f| (f.severity, f.message)).collect()
    }

    #[test]
    fn a_server_and_client_purpose_needs_both_usages_and_nothing_more() {
        use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, CodeSigning, ServerAuth};
        let both = Eku::ServerAndClientAuth;
        assert_eq!(eku_findings(vec![ServerAuth, ClientAuth], both), []);
        let missing = eku_findings(vec![ServerAuth], both);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].0, Severity::Error);
        assert!(
            missing[0].1.contains("expected serverAuth+clientAuth"),
            "{missing:?}"
        );
        let broader = eku_findings(vec![ServerAuth, ClientAuth, CodeSigning], both);
        assert_eq!(broader.len(), 1, "{broader:?}");
        assert_eq!(broader[0].0, Severity::Warning);
        // A plain server certificate that can also be a client is broader than needed.
        let server = eku_findings(vec![ServerAuth, ClientAuth], Eku::ServerAuth);
        assert_eq!(server[0].0, Severity::Warning, "{server:?}");
    }

    #[test]
    fn every_id_is_distinct_and_listed() {
        let mut ids: Vec<&str> = CheckId::ALL.iter().map(|c| c.id()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CheckId::ALL.len());
    }
}
