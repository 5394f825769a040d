//! `manifest.json`: what `certtool issue` wrote and where each file goes on its host.
//!
//! The format is fixed in docs/contracts.md ("Certificates"):
//!
//! ```json
//! { "type": "manifest", "version": 1, "ca": "ca.pem", "runtimeDir": "/var/lib/rampart/pki",
//!   "certificates": [
//!     { "type": "certificate", "host": "web1", "purpose": "backend", "eku": "serverAuth",
//!       "names": ["web1.rampart.internal", "10.42.0.11"], "notAfter": "2027-02-22T12:00:00Z",
//!       "serial": "4a…", "cert": "web1/backend.pem", "key": "web1/backend.key",
//!       "runtimeCert": "/var/lib/rampart/pki/backend.pem",
//!       "runtimeKey": "/var/lib/rampart/pki/backend.key" } ] }
//! ```
//!
//! `cert`, `key` and `ca` are relative to the manifest's directory; runtime paths are
//! absolute. `serial` (lower-case hex) is an addition to the contract's example.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::read::{read_small, LoadError};

/// The manifest's schema version.
pub const VERSION: u32 = 1;

/// The runtime PKI directory on every host (`settings.pkiDir`'s default).
pub const RUNTIME_DIR: &str = rampart_cli::paths::PKI_DIR;

/// The whole manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    /// Always `"manifest"`.
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    /// The CA certificate, relative to the manifest.
    pub ca: String,
    pub runtime_dir: String,
    pub certificates: Vec<Entry>,
}

/// One issued certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    /// Always `"certificate"`.
    #[serde(rename = "type")]
    pub kind: String,
    pub host: String,
    /// The file stem of docs/contracts.md: `https`, `backend`, `mysql`, ….
    pub purpose: String,
    /// `serverAuth` or `clientAuth`.
    pub eku: String,
    /// SAN entries (DNS names and IP addresses), in certificate order.
    pub names: Vec<String>,
    /// RFC 3339, UTC.
    pub not_after: String,
    /// Serial number, lower-case hex.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serial: String,
    pub cert: String,
    pub key: String,
    pub runtime_cert: String,
    pub runtime_key: String,
}

impl Manifest {
    pub fn new(certificates: Vec<Entry>) -> Manifest {
        Manifest {
            kind: "manifest".to_string(),
            version: VERSION,
            ca: "ca.pem".to_string(),
            runtime_dir: RUNTIME_DIR.to_string(),
            certificates,
        }
    }

    /// Reads and checks a manifest.
    pub fn load(path: &Path) -> Result<Manifest, LoadError> {
        let bytes = read_small(path)?;
        let bad = |detail: String| LoadError::Manifest {
            path: path.to_path_buf(),
            detail,
        };
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if manifest.kind != "manifest" {
            return Err(bad(format!(
                "type is {:?}, expected \"manifest\"",
                manifest.kind
            )));
        }
        if manifest.version != VERSION {
            return Err(bad(format!(
                "version is {}, expected {VERSION}",
                manifest.version
            )));
        }
        let mut problems = Vec::new();
        for (i, entry) in manifest.certificates.iter().enumerate() {
            for (field, value) in [("cert", &entry.cert), ("key", &entry.key)] {
                if value.is_empty() || Path::new(value).is_absolute() || value.contains("..") {
                    problems.push(format!(
                        "certificates[{i}].{field} is {value:?}, expected a path inside the manifest's directory"
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(bad(problems.join("; ")));
        }
        Ok(manifest)
    }

    /// Resolves a manifest-relative path.
    pub fn resolve(manifest_path: &Path, relative: &str) -> PathBuf {
        manifest_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(relative)
    }

    /// Every secret path the manifest knows: runtime and issued key paths.
    pub fn secret_paths(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .certificates
            .iter()
            .flat_map(|e| [e.runtime_key.clone()])
            .filter(|p| !p.is_empty())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_round_trips_and_rejects_escaping_paths() {
        let dir = tempfile::tempdir().unwrap();
        let entry = Entry {
            kind: "certificate".into(),
            host: "web1".into(),
            purpose: "backend".into(),
            eku: "serverAuth".into(),
            names: vec!["web1.example.internal".into()],
            not_after: "2027-02-22T12:00:00Z".into(),
            serial: "01".into(),
            cert: "web1/backend.pem".into(),
            key: "../backend.key".into(),
            runtime_cert: "/var/lib/rampart/pki/backend.pem".into(),
            runtime_key: "/var/lib/rampart/pki/backend.key".into(),
        };
        let path = dir.path().join("manifest.json");
        std::fs::write(&path, Manifest::new(vec![entry.clone()]).to_json()).unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("certificates[0].key is \"../backend.key\""),
            "{err}"
        );
        let ok = Entry {
            key: "web1/backend.key".into(),
            ..entry
        };
        let manifest = Manifest::new(vec![ok]);
        std::fs::write(&path, manifest.to_json()).unwrap();
        assert_eq!(Manifest::load(&path).unwrap(), manifest);
        assert_eq!(
            manifest.secret_paths(),
            ["/var/lib/rampart/pki/backend.key"]
        );
    }
}
