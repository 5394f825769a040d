//! `certtool inspect`: the fields of each certificate in a file, for humans or JSON.

use std::path::Path;

use serde::Serialize;

use super::checks;
use super::format_instant;
use super::load::{self, LoadError};

/// `certtool inspect`: the fields of each certificate in a file, for humans or JSON.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    /// Always `"inspection"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub path: String,
    /// 1-based position in the file.
    pub index: usize,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub key: String,
    pub signature_algorithm: String,
    pub is_ca: bool,
    pub path_len: Option<u32>,
    pub key_usage: Option<String>,
    pub extended_key_usage: Vec<String>,
    pub names: Vec<String>,
    /// Permitted name-constraint subtrees (CA certificates).
    pub name_constraints: Option<String>,
    pub subject_key_id: Option<String>,
    pub authority_key_id: Option<String>,
    pub sha256: String,
}

/// Reads a certificate file and describes every certificate in it.
pub fn inspect(path: &Path) -> Result<Vec<Inspection>, LoadError> {
    let certs = load::certificates(path)?;
    let mut out = Vec::new();
    for (i, der) in certs.iter().enumerate() {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| LoadError::BadCertificate {
                path: path.to_path_buf(),
                index: i + 1,
                detail: e.to_string(),
            })?;
        let eku = match cert.extended_key_usage() {
            Ok(Some(ext)) => checks::eku_names(ext.value),
            _ => Vec::new(),
        };
        let ski = cert
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                    Some(checks::hex(k.0))
                }
                _ => None,
            });
        let aki = cert
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                    a.key_identifier.as_ref().map(|k| checks::hex(k.0))
                }
                _ => None,
            });
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
        out.push(Inspection {
            kind: "inspection",
            path: path.display().to_string(),
            index: i + 1,
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: checks::hex(cert.raw_serial()),
            not_before: format_instant(checks::not_before(&cert)),
            not_after: format_instant(checks::not_after(&cert)),
            key: checks::key_description(&cert),
            signature_algorithm: checks::signature_name(
                &cert.signature_algorithm.algorithm.to_id_string(),
            ),
            is_ca: cert.is_ca(),
            path_len: checks::path_len(&cert),
            key_usage: cert.key_usage().ok().flatten().map(|k| k.value.to_string()),
            extended_key_usage: eku,
            names: checks::san_names(&cert)
                .iter()
                .map(|n| n.to_string())
                .collect(),
            name_constraints: checks::constraints_of(&cert).map(|c| c.describe()),
            subject_key_id: ski,
            authority_key_id: aki,
            sha256: checks::hex(digest.as_ref()),
        });
    }
    Ok(out)
}

impl Inspection {
    /// `field: value` lines for humans.
    pub fn render(&self) -> String {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        let rows = [
            ("subject", self.subject.clone()),
            ("issuer", self.issuer.clone()),
            ("serial", self.serial.clone()),
            ("not before", self.not_before.clone()),
            ("not after", self.not_after.clone()),
            ("key", self.key.clone()),
            ("signature", self.signature_algorithm.clone()),
            (
                "CA",
                match (self.is_ca, self.path_len) {
                    (true, Some(n)) => format!("yes, pathlen {n}"),
                    (true, None) => "yes, no pathlen".into(),
                    (false, _) => "no".into(),
                },
            ),
            ("key usage", opt(&self.key_usage)),
            ("extended key usage", list(&self.extended_key_usage)),
            ("names (SAN)", list(&self.names)),
            ("name constraints", opt(&self.name_constraints)),
            ("subject key id", opt(&self.subject_key_id)),
            ("authority key id", opt(&self.authority_key_id)),
            ("sha256", self.sha256.clone()),
        ];
        let mut out = format!("{} (certificate {})\n", self.path, self.index);
        for (k, v) in rows {
            out.push_str(&format!("  {k:<20}{v}\n"));
        }
        out
    }
}
