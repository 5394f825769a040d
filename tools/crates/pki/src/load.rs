//! Reading certificates, private keys and directories of them.
//!
//! Every failure names the file and says what was found instead of what was expected;
//! nothing here panics on hostile input (truncated PEM, DER garbage, a 10 MB random file,
//! symlink loops). The property test `tools/certtool/tests/proptest_load.rs` and the fuzz
//! target `tools/certtool/fuzz` hold this module to that.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use pkcs8::der::asn1::{AnyRef, BitStringRef, ObjectIdentifier};
use pkcs8::der::{Decode, Encode};
use rustls_pki_types::pem::{self, PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::manifest::Manifest;
use super::read::MAX_DEPTH;
pub use super::read::{read_small, LoadError, MAX_FILE_BYTES};

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// The PEM section labels in a file, for messages ("got a PRIVATE KEY block").
fn pem_labels(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("-----BEGIN "))
        .filter_map(|l| l.strip_suffix("-----"))
        .map(str::to_string)
        .collect()
}

fn describe_found(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "an empty file".to_string();
    }
    let labels = pem_labels(bytes);
    if labels.is_empty() {
        if looks_like_pem(bytes) {
            return "a broken PEM header".to_string();
        }
        return format!("{} bytes that are neither PEM nor DER", bytes.len());
    }
    format!("PEM block(s) {}", labels.join(", "))
}

/// Whether a PEM file holds a private key and no certificate (a key named `*.pem`).
pub fn is_key_only_pem(bytes: &[u8]) -> bool {
    let labels = pem_labels(bytes);
    !labels.is_empty()
        && labels.iter().all(|l| l.ends_with("PRIVATE KEY"))
        && labels.iter().any(|l| l.ends_with("PRIVATE KEY"))
}

/// Parses the certificates of a PEM or DER file, checking that each is X.509.
pub fn parse_certificates(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let certs: Vec<CertificateDer<'static>> = if looks_like_pem(bytes) {
        let mut certs = Vec::new();
        for item in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(bytes) {
            match item {
                Ok((SectionKind::Certificate, der)) => certs.push(CertificateDer::from(der)),
                Ok(_) => {}
                Err(e) => {
                    return Err(LoadError::BadPem {
                        path: path.to_path_buf(),
                        detail: pem_error(&e),
                    })
                }
            }
        }
        certs
    } else if bytes.first() == Some(&0x30) {
        vec![CertificateDer::from(bytes.to_vec())]
    } else {
        Vec::new()
    };
    if certs.is_empty() {
        return Err(LoadError::NoCertificate {
            path: path.to_path_buf(),
            found: describe_found(bytes),
        });
    }
    for (i, der) in certs.iter().enumerate() {
        match x509_parser::parse_x509_certificate(der) {
            Ok(([], _)) => {}
            Ok((rest, _)) => {
                return Err(LoadError::BadCertificate {
                    path: path.to_path_buf(),
                    index: i + 1,
                    detail: format!("{} trailing bytes after the certificate", rest.len()),
                })
            }
            Err(e) => {
                return Err(LoadError::BadCertificate {
                    path: path.to_path_buf(),
                    index: i + 1,
                    detail: e.to_string(),
                })
            }
        }
    }
    Ok(certs)
}

fn pem_error(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "no END line for the section (expected {:?})",
            String::from_utf8_lossy(end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => {
            format!("bad BEGIN line {:?}", String::from_utf8_lossy(line))
        }
        pem::Error::Base64Decode(detail) => format!("bad base64: {detail}"),
        other => other.to_string(),
    }
}

/// Reads the certificates in a file.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    parse_certificates(path, &read_small(path)?)
}

/// A private key with the public key it implies.
pub struct LoadedKey {
    pub path: PathBuf,
    /// The key's SubjectPublicKeyInfo, DER, built from the private key's own fields.
    pub spki: Vec<u8>,
    /// `PKCS#8`, `PKCS#1` or `SEC1`, for messages.
    pub format: &'static str,
    pub der: PrivateKeyDer<'static>,
}

/// Reads a private key and derives its public key (for the `key-match` check).
pub fn private_key(path: &Path) -> Result<LoadedKey, LoadError> {
    parse_private_key(path, &read_small(path)?)
}

/// Parses a private key (PEM, or DER PKCS#8) and derives its public key.
pub fn parse_private_key(path: &Path, bytes: &[u8]) -> Result<LoadedKey, LoadError> {
    let bad = |found: String| LoadError::BadKey {
        path: path.to_path_buf(),
        found,
    };
    let der = if looks_like_pem(bytes) {
        PrivateKeyDer::from_pem_slice(bytes).map_err(|e| match e {
            pem::Error::NoItemsFound => bad(describe_found(bytes)),
            other => LoadError::BadPem {
                path: path.to_path_buf(),
                detail: pem_error(&other),
            },
        })?
    } else {
        PrivateKeyDer::Pkcs8(bytes.to_vec().into())
    };
    let (format, spki) = match &der {
        PrivateKeyDer::Pkcs8(k) => ("PKCS#8", spki_of_pkcs8(k.secret_pkcs8_der())),
        PrivateKeyDer::Pkcs1(k) => ("PKCS#1", spki_of_pkcs1(k.secret_pkcs1_der())),
        PrivateKeyDer::Sec1(k) => ("SEC1", spki_of_sec1(k.secret_sec1_der(), None)),
        _ => ("unknown", Err("an unsupported key format".to_string())),
    };
    let spki =
        spki.map_err(|detail| bad(format!("a {format} key that does not decode: {detail}")))?;
    Ok(LoadedKey {
        path: path.to_path_buf(),
        spki,
        format,
        der,
    })
}

fn spki_der(
    algorithm: ObjectIdentifier,
    parameters: Option<AnyRef<'_>>,
    key: &[u8],
) -> Result<Vec<u8>, String> {
    let info = pkcs8::spki::SubjectPublicKeyInfoRef {
        algorithm: pkcs8::spki::AlgorithmIdentifierRef {
            oid: algorithm,
            parameters,
        },
        subject_public_key: BitStringRef::from_bytes(key).map_err(|e| e.to_string())?,
    };
    info.to_der().map_err(|e| e.to_string())
}

fn spki_of_pkcs8(der: &[u8]) -> Result<Vec<u8>, String> {
    let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|e| e.to_string())?;
    let oid = info.algorithm.oid;
    if oid == OID_RSA {
        spki_of_pkcs1(info.private_key)
    } else if oid == OID_EC {
        let curve = info
            .algorithm
            .parameters_oid()
            .map_err(|e| format!("EC key without a named curve: {e}"))?;
        spki_of_sec1(info.private_key, Some(curve))
    } else if oid == OID_ED25519 {
        let public = match info.public_key {
            Some(public) => public.to_vec(),
            None => {
                let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(|e| format!("Ed25519 key rejected: {e}"))?;
                aws_lc_rs::signature::KeyPair::public_key(&pair)
                    .as_ref()
                    .to_vec()
            }
        };
        spki_der(OID_ED25519, None, &public)
    } else {
        Err(format!("key algorithm {oid} is not RSA, EC or Ed25519"))
    }
}

fn spki_of_pkcs1(der: &[u8]) -> Result<Vec<u8>, String> {
    let key = pkcs1::RsaPrivateKey::from_der(der).map_err(|e| e.to_string())?;
    let public = pkcs1::RsaPublicKey {
        modulus: key.modulus,
        public_exponent: key.public_exponent,
    }
    .to_der()
    .map_err(|e| e.to_string())?;
    spki_der(OID_RSA, Some(AnyRef::NULL), &public)
}

fn spki_of_sec1(der: &[u8], curve: Option<ObjectIdentifier>) -> Result<Vec<u8>, String> {
    let key = sec1::EcPrivateKey::from_der(der).map_err(|e| e.to_string())?;
    let curve = curve
        .or_else(|| key.parameters.and_then(|p| p.named_curve()))
        .ok_or("EC key without a named curve")?;
    let public = match key.public_key {
        Some(public) => public.to_vec(),
        None => {
            // The optional public key is absent: recompute it from the scalar.
            let alg = if curve == OID_P256 {
                &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING
            } else if curve == OID_P384 {
                &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING
            } else {
                return Err(format!("EC curve {curve} without an embedded public key"));
            };
            let pair = aws_lc_rs::signature::EcdsaKeyPair::from_private_key_der(alg, der)
                .map_err(|e| format!("EC key rejected: {e}"))?;
            aws_lc_rs::signature::KeyPair::public_key(&pair)
                .as_ref()
                .to_vec()
        }
    };
    spki_der(OID_EC, Some(AnyRef::from(&curve)), &public)
}

/// The conventional key files beside a certificate: `NAME.key`, then `NAME-key.pem`.
pub fn neighbour_key(cert: &Path) -> Option<PathBuf> {
    let stem = cert.file_stem()?.to_str()?;
    let dir = cert.parent()?;
    [format!("{stem}.key"), format!("{stem}-key.pem")]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| fs::symlink_metadata(p).is_ok())
}

/// What a walk over the command line's paths found.
#[derive(Default)]
pub struct Found {
    /// Certificate files, in walk order (each may hold several certificates).
    pub certificates: Vec<CertFile>,
    /// Manifests (`manifest.json`, or any file given that parses as one).
    pub manifests: Vec<(PathBuf, Manifest)>,
    pub errors: Vec<LoadError>,
}

/// A file to read certificates from.
#[derive(Clone, Debug)]
pub struct CertFile {
    pub path: PathBuf,
    /// Named on the command line (rather than found in a directory): a file that holds
    /// only a private key is then an error, not a key under another name.
    pub explicit: bool,
}

fn is_key_name(name: &str) -> bool {
    name.ends_with(".key") || name.ends_with("-key.pem")
}

fn is_cert_name(name: &str) -> bool {
    [".pem", ".crt", ".cer", ".der"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Expands files and directories into certificate files and manifests.
///
/// Files named on the command line are taken as certificates (or a manifest when they
/// are JSON); inside directories only `*.pem|crt|cer|der` and `manifest.json` count, and
/// keys (`*.key`, `*-key.pem`, PEM files holding only a private key) are left for pairing.
pub fn walk(paths: &[PathBuf]) -> Found {
    let mut found = Found::default();
    let mut visited = BTreeSet::new();
    for path in paths {
        match fs::metadata(path) {
            Err(source) => found.errors.push(LoadError::Read {
                path: path.clone(),
                source,
            }),
            Ok(meta) if meta.is_dir() => {
                let before = found.certificates.len() + found.manifests.len();
                walk_dir(path, 0, &mut visited, &mut found);
                if found.certificates.len() + found.manifests.len() == before {
                    found
                        .errors
                        .push(LoadError::EmptyDirectory { path: path.clone() });
                }
            }
            Ok(_) => {
                if path.extension().is_some_and(|e| e == "json") {
                    match Manifest::load(path) {
                        Ok(m) => found.manifests.push((path.clone(), m)),
                        Err(e) => found.errors.push(e),
                    }
                } else {
                    found.certificates.push(CertFile {
                        path: path.clone(),
                        explicit: true,
                    });
                }
            }
        }
    }
    found
}

fn walk_dir(dir: &Path, depth: usize, visited: &mut BTreeSet<PathBuf>, found: &mut Found) {
    if depth > MAX_DEPTH {
        found.errors.push(LoadError::TooDeep {
            path: dir.to_path_buf(),
        });
        return;
    }
    let canonical = match fs::canonicalize(dir) {
        Ok(c) => c,
        Err(source) => {
            found.errors.push(LoadError::Read {
                path: dir.to_path_buf(),
                source,
            });
            return;
        }
    };
    if !visited.insert(canonical.clone()) {
        found.errors.push(LoadError::SymlinkLoop {
            path: dir.to_path_buf(),
            target: canonical,
        });
        return;
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) => {
            found.errors.push(LoadError::Read {
                path: dir.to_path_buf(),
                source,
            });
            return;
        }
    };
    let mut entries: Vec<fs::DirEntry> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        // d_type answers without a stat; only symlinks need one to see what they reach.
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => match fs::metadata(&path) {
                Ok(meta) => meta.is_dir(),
                Err(source) => {
                    found.errors.push(LoadError::Read { path, source });
                    continue;
                }
            },
            Ok(t) => t.is_dir(),
            Err(source) => {
                found.errors.push(LoadError::Read { path, source });
                continue;
            }
        };
        if is_dir {
            walk_dir(&path, depth + 1, visited, found);
        } else if name == "manifest.json" {
            match Manifest::load(&path) {
                Ok(m) => found.manifests.push((path, m)),
                Err(e) => found.errors.push(e),
            }
        } else if is_cert_name(&name) && !is_key_name(&name) {
            found.certificates.push(CertFile {
                path,
                explicit: false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_names_the_file_and_what_was_found() {
        let p = Path::new("x.pem");
        let err = parse_certificates(p, b"hello").unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.pem: no certificate found (got 5 bytes that are neither PEM nor DER, expected a PEM CERTIFICATE block or one DER certificate)"
        );
        let err = parse_certificates(p, b"-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("x.pem: malformed PEM (no END line"),
            "{err}"
        );
        let err = parse_certificates(p, &[0x30, 0x82, 0x01]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("x.pem: certificate 1 is not valid X.509 DER"),
            "{err}"
        );
        let err = parse_certificates(p, b"").unwrap_err();
        assert!(err.to_string().contains("got an empty file"), "{err}");
    }

    #[test]
    fn a_key_is_not_a_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let err =
            parse_certificates(Path::new("k.pem"), key.serialize_pem().as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("got PEM block(s) PRIVATE KEY"),
            "{err}"
        );
        assert!(is_key_only_pem(key.serialize_pem().as_bytes()));
    }

    #[test]
    fn the_public_key_derived_from_a_private_key_is_the_certificates() {
        for alg in [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_RSA_SHA256,
        ] {
            let key = rcgen::KeyPair::generate_for(alg).unwrap();
            let loaded = parse_private_key(Path::new("k"), key.serialize_pem().as_bytes()).unwrap();
            assert_eq!(
                loaded.spki,
                rcgen::PublicKeyData::subject_public_key_info(&key),
                "{alg:?}"
            );
        }
    }
}
