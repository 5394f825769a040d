//! `certtool audit-store`: find private keys that reached the Nix store.
//!
//! Starting from `.drv` files (for example a NixOS system's toplevel derivation) or plain
//! store paths, the audit walks the derivation graph: every input derivation and every
//! input source. It reports each input source whose contents hold a PEM `PRIVATE KEY`
//! block or whose name is that of an issued key file, and each environment value or
//! builder argument holding such a block or one of the issued key's paths.
//!
//! Runtime key paths (`/var/lib/rampart/pki/*.key`) are *expected* in the store: the
//! modules pass them to daemons as strings. What must never be there is a key's content,
//! or the path of the key file `certtool issue` wrote, which means it was read at
//! evaluation time.
//!
//! `.drv` files are parsed with cachix's `nix-derivation` crate (pure Rust ATerm
//! parsing). It stands in for `nix-compat`, whose crates.io release is an empty
//! `0.0.0-pre` placeholder; its real home (the snix repository) is not reachable here.
//!
//! # JSON report (`--json`)
//!
//! ```json
//! { "type": "audit", "roots": ["/nix/store/…-system.drv"], "derivations": 812, "sources": 95,
//!   "findings": [ { "type": "finding", "derivation": "/nix/store/…-x.drv",
//!                   "location": "source /nix/store/…-leaked.key", "what": "PEM PRIVATE KEY block" } ],
//!   "errors": [ { "type": "error", "path": "…", "message": "…" } ] }
//! ```
//!
//! Exit code: 1 when anything was found, 2 when a root or a derivation could not be read.

use std::collections::{BTreeSet, VecDeque};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use nix_derivation::{Derivation, StoreDir};
use serde::Serialize;

use rampart_cli::exit;

/// `.drv` files above this size are refused (the largest real ones are a few MB).
const MAX_DRV_BYTES: u64 = 64 << 20;
/// Input sources are scanned in chunks of this size, with an overlap for split markers.
const CHUNK: usize = 1 << 20;
/// The longest PEM header line we look for.
const OVERLAP: usize = 128;
/// Files scanned inside one input-source directory at most.
const MAX_FILES_PER_SOURCE: usize = 100_000;

/// Where to look and what counts as a secret.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    pub roots: Vec<PathBuf>,
    /// The store directory the `.drv` files refer to (`NIX_STORE_DIR`, default `/nix/store`).
    pub store_dir: String,
    /// Paths of issued key files (from a manifest); their appearance is a finding.
    pub secret_paths: Vec<String>,
    /// File names of issued keys (`backend.key`); a store path named so is a finding.
    pub secret_names: Vec<String>,
}

/// One leak.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditFinding {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The derivation that references it (or the root path scanned directly).
    pub derivation: String,
    /// `env NAME`, `argument N`, or `source PATH`.
    pub location: String,
    pub what: String,
}

/// An input that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditError {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub path: String,
    pub message: String,
}

/// The audit's result (schema in the module docs).
#[derive(Clone, Debug, Serialize)]
pub struct AuditReport {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub roots: Vec<String>,
    pub derivations: usize,
    pub sources: usize,
    pub findings: Vec<AuditFinding>,
    pub errors: Vec<AuditError>,
}

impl AuditReport {
    pub fn exit_code(&self) -> std::process::ExitCode {
        if !self.errors.is_empty() {
            std::process::ExitCode::from(exit::CANNOT_RUN)
        } else {
            exit::from_findings(!self.findings.is_empty())
        }
    }

    pub fn render(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .findings
            .iter()
            .map(|f| vec![f.derivation.clone(), f.location.clone(), f.what.clone()])
            .collect();
        let mut out = String::new();
        if !rows.is_empty() {
            out.push_str(&rampart_cli::table::render(
                &["DERIVATION", "WHERE", "WHAT"],
                &rows,
            ));
            out.push('\n');
        }
        for e in &self.errors {
            out.push_str(&format!("not read: {}\n", e.message));
        }
        out.push_str(&format!(
            "{} derivation(s) and {} input source(s) audited: {} secret(s) found, {} error(s)\n",
            self.derivations,
            self.sources,
            self.findings.len(),
            self.errors.len()
        ));
        out
    }
}

/// The PEM private-key headers in some bytes (`PRIVATE KEY`, `EC PRIVATE KEY`, …).
pub fn private_key_markers(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let begin = b"-----BEGIN ";
    let mut i = 0;
    while let Some(pos) = find(&bytes[i..], begin) {
        let start = i + pos + begin.len();
        let tail = &bytes[start..bytes.len().min(start + OVERLAP)];
        if let Some(end) = find(tail, b"-----") {
            let label = String::from_utf8_lossy(&tail[..end]).into_owned();
            if label.ends_with("PRIVATE KEY") && !out.contains(&label) {
                out.push(label);
            }
        }
        i = start;
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

struct Audit<'a> {
    options: &'a AuditOptions,
    store: StoreDir,
    findings: Vec<AuditFinding>,
    errors: Vec<AuditError>,
    derivations: usize,
    sources: usize,
}

impl Audit<'_> {
    fn error(&mut self, path: &Path, message: String) {
        self.errors.push(AuditError {
            kind: "error",
            path: path.display().to_string(),
            message,
        });
    }

    fn finding(&mut self, derivation: &str, location: String, what: String) {
        self.findings.push(AuditFinding {
            kind: "finding",
            derivation: derivation.to_string(),
            location,
            what,
        });
    }

    /// Findings in one value (an environment variable or an argument).
    fn scan_value(&mut self, drv: &str, location: String, value: &[u8]) {
        for label in private_key_markers(value) {
            self.finding(drv, location.clone(), format!("PEM {label} block"));
        }
        for secret in &self.options.secret_paths {
            if find(value, secret.as_bytes()).is_some() {
                let what = format!("the issued key path {secret}");
                self.finding(drv, location.clone(), what);
            }
        }
    }

    /// Findings in one input source (a file or a directory tree).
    fn scan_source(&mut self, drv: &str, source: &Path) {
        self.sources += 1;
        let name = source.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Store names are `<hash>-<name>`.
        let bare = name.split_once('-').map_or(name, |(_, rest)| rest);
        if self.options.secret_names.iter().any(|s| s == bare) {
            self.finding(
                drv,
                format!("source {}", source.display()),
                format!("a store path named like the issued key {bare}"),
            );
        }
        let mut stack = vec![source.to_path_buf()];
        let mut files = 0;
        while let Some(path) = stack.pop() {
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) => {
                    self.error(
                        &path,
                        format!("{}: cannot read input source ({e})", path.display()),
                    );
                    continue;
                }
            };
            if meta.is_dir() {
                match fs::read_dir(&path) {
                    Ok(entries) => {
                        let mut children: Vec<PathBuf> =
                            entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                        children.sort();
                        stack.extend(children.into_iter().rev());
                    }
                    Err(e) => self.error(
                        &path,
                        format!("{}: cannot list input source ({e})", path.display()),
                    ),
                }
            } else if meta.is_file() {
                files += 1;
                if files > MAX_FILES_PER_SOURCE {
                    self.error(
                        source,
                        format!(
                            "{}: more than {MAX_FILES_PER_SOURCE} files; the rest was not scanned",
                            source.display()
                        ),
                    );
                    break;
                }
                match scan_file(&path) {
                    Ok(labels) => {
                        for label in labels {
                            self.finding(
                                drv,
                                format!("source {}", path.display()),
                                format!("PEM {label} block"),
                            );
                        }
                    }
                    Err(e) => self.error(
                        &path,
                        format!("{}: cannot read input source ({e})", path.display()),
                    ),
                }
            }
        }
    }

    fn scan_derivation(&mut self, path: &Path) -> Option<Derivation> {
        let shown = path.display().to_string();
        let meta = match fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) => {
                self.error(path, format!("{shown}: cannot read derivation ({e})"));
                return None;
            }
        };
        if meta.len() > MAX_DRV_BYTES {
            self.error(path, format!("{shown}: too large for a derivation (got {} bytes, expected at most {MAX_DRV_BYTES})", meta.len()));
            return None;
        }
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.error(path, format!("{shown}: cannot read derivation ({e})"));
                return None;
            }
        };
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let name = file_name
            .strip_suffix(".drv")
            .map(|n| n.split_once('-').map_or(n, |(_, rest)| rest))
            .unwrap_or(file_name);
        let drv = match Derivation::from_aterm_bytes_in(&bytes, name, self.store.clone()) {
            Ok(drv) => drv,
            Err(e) => {
                self.error(
                    path,
                    format!("{shown}: not a derivation ({e}); give .drv files or store paths"),
                );
                return None;
            }
        };
        self.derivations += 1;
        for (key, value) in drv.environment() {
            self.scan_value(&shown, format!("env {key}"), value);
        }
        for (i, arg) in drv.arguments().iter().enumerate() {
            self.scan_value(&shown, format!("argument {i}"), arg.as_bytes());
        }
        Some(drv)
    }
}

fn scan_file(path: &Path) -> std::io::Result<Vec<String>> {
    let mut file = fs::File::open(path)?;
    let mut labels = Vec::new();
    let mut buf = vec![0u8; CHUNK + OVERLAP];
    let mut carried = 0;
    loop {
        let n = file.read(&mut buf[carried..])?;
        if n == 0 {
            break;
        }
        let filled = carried + n;
        for label in private_key_markers(&buf[..filled]) {
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
        // Keep the tail so a marker split across reads is still seen.
        carried = filled.min(OVERLAP);
        buf.copy_within(filled - carried..filled, 0);
    }
    Ok(labels)
}

/// Walks the derivation graph from the roots and reports every leaked secret.
pub fn audit(options: &AuditOptions) -> AuditReport {
    let store = StoreDir::new(options.store_dir.clone()).unwrap_or_default();
    let mut audit = Audit {
        options,
        store: store.clone(),
        findings: Vec::new(),
        errors: Vec::new(),
        derivations: 0,
        sources: 0,
    };
    let mut queue: VecDeque<(PathBuf, String)> = VecDeque::new();
    let mut seen = BTreeSet::new();
    for root in &options.roots {
        if root.extension().is_some_and(|e| e == "drv") {
            queue.push_back((root.clone(), String::new()));
        } else if fs::symlink_metadata(root).is_ok() {
            let shown = root.display().to_string();
            audit.scan_source(&shown, root);
        } else {
            audit.error(
                root,
                format!("{}: no such file or store path", root.display()),
            );
        }
    }
    while let Some((path, _)) = queue.pop_front() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let Some(drv) = audit.scan_derivation(&path) else {
            continue;
        };
        let shown = path.display().to_string();
        for source in drv.input_sources() {
            let source_path = PathBuf::from(store.render_path(source));
            if seen.insert(source_path.clone()) {
                audit.scan_source(&shown, &source_path);
            }
        }
        for input in drv.input_derivations().keys() {
            queue.push_back((PathBuf::from(store.render_path(input)), shown.clone()));
        }
    }
    AuditReport {
        kind: "audit",
        roots: options
            .roots
            .iter()
            .map(|r| r.display().to_string())
            .collect(),
        derivations: audit.derivations,
        sources: audit.sources,
        findings: audit.findings,
        errors: audit.errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Spelt in pieces so that repository scans for committed keys do not flag this file.
    const KEY_MARKER: &str = concat!("-----BEGIN PRIV", "ATE KEY-----");

    #[test]
    fn markers_are_private_key_headers_only() {
        let text = format!(
            "x -----BEGIN CERTIFICATE----- y -----BEGIN EC {}\n {KEY_MARKER}",
            &KEY_MARKER[11..]
        );
        let text = text.as_bytes();
        assert_eq!(private_key_markers(text), ["EC PRIVATE KEY", "PRIVATE KEY"]);
        assert!(private_key_markers(b"-----BEGIN ").is_empty());
    }

    #[test]
    fn a_marker_split_across_chunks_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let mut bytes = vec![b'a'; CHUNK - 5];
        bytes.extend_from_slice(KEY_MARKER.as_bytes());
        bytes.push(b'\n');
        fs::write(&path, bytes).unwrap();
        assert_eq!(scan_file(&path).unwrap(), ["PRIVATE KEY"]);
    }
}
