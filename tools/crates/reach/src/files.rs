//! Web content integrity: a web root against the manifest recorded when it was built.
//!
//! The manifest holds the root's NAR hash — the SHA-256 of its Nix archive serialisation,
//! which Nix records as a store path's `narHash` and `nix hash path` prints — and every
//! regular file's SHA-256 in `sha256sum`'s format, so that a difference is named file by
//! file (and `sha256sum -c` reads the manifest too; it skips `#` lines):
//!
//! ```text
//! # nar-hash sha256-<base64>
//! <64 hex digits>  index.html
//! <64 hex digits>  css/site.css
//! ```
//!
//! The NAR covers what a file list does not (executable bits, symbolic links, empty
//! directories). Both come from one pass over the root: nix-nar's encoder serialises it,
//! the stream is hashed as it is read, and nix-nar's decoder hands each file's contents to
//! a hash of its own. The NixOS module writes the manifest when it builds the site (the
//! root is then a store path, and the NAR hash is Nix's own); the lab writes it from the
//! same files with the same code.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path};
use std::rc::Rc;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::report::{Check, FileCounts, Status};

use super::ReachError;

/// The prefix of the manifest line that records the NAR hash.
const NAR_HASH_LINE: &str = "# nar-hash ";

/// A web root as recorded: its NAR hash and its regular files' SHA-256 digests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// `sha256-<base64>`, as `nix hash path` prints it (SRI).
    pub nar_hash: String,
    /// Relative `/`-path → lowercase hex SHA-256.
    pub files: BTreeMap<String, String>,
}

impl Manifest {
    /// The manifest's text (see the module documentation).
    pub fn render(&self, root: &Path) -> String {
        let mut text = format!(
            "# The web root {} as built: its NAR hash (what `nix hash path` prints),\n\
             # then each regular file's SHA-256 (`sha256sum -c` reads these lines).\n\
             {NAR_HASH_LINE}{}\n",
            root.display(),
            self.nar_hash
        );
        for (file, sum) in &self.files {
            text.push_str(&format!("{sum}  {file}\n"));
        }
        text
    }
}

fn manifest_error(path: &Path, problem: String) -> ReachError {
    ReachError::Input {
        what: "manifest",
        path: path.to_path_buf(),
        problem,
        hint: "write one with `reach files --write-manifest FILE ROOT` (a `# nar-hash sha256-…` line, then lines of `<sha256>  <relative path>`)",
    }
}

/// Reads a manifest.
pub fn read_manifest(path: &Path) -> Result<Manifest, ReachError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| manifest_error(path, format!("cannot read it ({e})")))?;
    let mut files = BTreeMap::new();
    let mut nar_hash = None;
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(hash) = line.strip_prefix(NAR_HASH_LINE) {
            if !is_sri_sha256(hash.trim()) {
                problems.push(format!(
                    "line {n}: got NAR hash {:?}, expected sha256-<44 base64 characters>",
                    truncate(hash)
                ));
            } else if nar_hash.replace(hash.trim().to_string()).is_some() {
                problems.push(format!("line {n}: a second NAR hash"));
            }
            continue;
        }
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = line
            .split_once("  ")
            .or_else(|| line.split_once(" *"))
            .filter(|(sum, _)| sum.len() == 64 && sum.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some((sum, file)) = parsed else {
            problems.push(format!(
                "line {n}: got {:?}, expected \"<64 hex digits>  <relative path>\"",
                truncate(line)
            ));
            continue;
        };
        if !is_relative_inside(file) {
            problems.push(format!(
                "line {n}: path {file:?} must be relative and stay inside the root"
            ));
            continue;
        }
        if files
            .insert(file.to_string(), sum.to_ascii_lowercase())
            .is_some()
        {
            problems.push(format!("line {n}: {file:?} is listed twice"));
        }
    }
    let Some(nar_hash) = nar_hash else {
        problems.push(
            "no `# nar-hash sha256-…` line (a manifest from before NAR hashes; write it again)"
                .into(),
        );
        return Err(manifest_error(path, problems.join("; ")));
    };
    if problems.is_empty() {
        Ok(Manifest { nar_hash, files })
    } else {
        Err(manifest_error(path, problems.join("; ")))
    }
}

fn is_sri_sha256(hash: &str) -> bool {
    hash.strip_prefix("sha256-").is_some_and(|b64| {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .is_ok_and(|digest| digest.len() == 32)
    })
}

fn truncate(line: &str) -> String {
    line.chars().take(80).collect()
}

fn is_relative_inside(file: &str) -> bool {
    !file.is_empty()
        && Path::new(file)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a root could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    #[error("it does not exist")]
    Missing,
    #[error("it is not a directory")]
    NotADirectory,
    #[error("cannot serialise it as a NAR ({0})")]
    Nar(String),
}

/// The encoder's bytes, hashed as they are read.
struct Tee {
    encoder: nix_nar::Encoder,
    hasher: Sha256,
}

/// A reader of the shared [`Tee`], so that whatever the decoder left unread can be drained
/// (and hashed) after it is done.
struct Shared(Rc<RefCell<Tee>>);

impl Read for Shared {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut tee = self.0.borrow_mut();
        let n = tee.encoder.read(buf)?;
        tee.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Lists a web root in one pass: its NAR hash and every regular file's SHA-256.
/// Symbolic links to directories are not followed (the NAR records the link).
pub fn listing(root: &Path) -> Result<Manifest, ListingError> {
    let nar = |e: &dyn std::fmt::Display| ListingError::Nar(e.to_string());
    let meta = std::fs::metadata(root).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ListingError::Missing,
        _ => nar(&e),
    })?;
    if !meta.is_dir() {
        return Err(ListingError::NotADirectory);
    }
    // A root given as a symbolic link (/var/www → a store path) is the directory it names.
    let root = std::fs::canonicalize(root).map_err(|e| nar(&e))?;
    let tee = Rc::new(RefCell::new(Tee {
        encoder: nix_nar::Encoder::new(&root).map_err(|e| nar(&e))?,
        hasher: Sha256::new(),
    }));
    let mut files = BTreeMap::new();
    {
        let decoder = nix_nar::Decoder::new(std::io::BufReader::with_capacity(
            64 << 10,
            Shared(Rc::clone(&tee)),
        ))
        .map_err(|e| nar(&e))?;
        for entry in decoder.entries().map_err(|e| nar(&e))? {
            let entry = entry.map_err(|e| nar(&e))?;
            if let (Some(path), nix_nar::Content::File { mut data, .. }) =
                (entry.path, entry.content)
            {
                let mut hasher = Sha256::new();
                std::io::copy(&mut data, &mut hasher).map_err(|e| nar(&e))?;
                files.insert(path.to_string(), hex(&hasher.finalize()));
            }
        }
    }
    let mut rest = Shared(Rc::clone(&tee));
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(|e| nar(&e))?;
    let digest = tee.borrow_mut().hasher.clone().finalize();
    Ok(Manifest {
        nar_hash: format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        ),
        files,
    })
}

fn root_error(root: &Path, e: ListingError) -> ReachError {
    ReachError::Input {
        what: "web root",
        path: root.to_path_buf(),
        problem: format!("cannot list it: {e}"),
        hint: "pass the directory the web server serves",
    }
}

/// `reach files --write-manifest FILE ROOT`: writes the manifest atomically; returns the
/// number of files listed.
pub fn write_manifest(root: &Path, manifest: &Path) -> Result<usize, ReachError> {
    let listed = listing(root).map_err(|e| root_error(root, e))?;
    super::textfile::write_atomically(manifest, &listed.render(root)).map_err(|e| {
        ReachError::Input {
            what: "manifest",
            path: manifest.to_path_buf(),
            problem: format!("cannot write it ({e})"),
            hint: "choose a writable path",
        }
    })?;
    Ok(listed.files.len())
}

/// What differs between the files recorded and those found, one failing check per file.
pub fn compare(
    target: &str,
    expected: &BTreeMap<String, String>,
    found: &BTreeMap<String, String>,
) -> (FileCounts, Vec<Check>) {
    let mut counts = FileCounts::default();
    let mut out = Vec::new();
    for (file, sum) in expected {
        match found.get(file) {
            None => {
                counts.missing += 1;
                out.push(
                    Check::new("files", target, file.clone()).judged(false, "present", "missing"),
                );
            }
            Some(actual) if actual != sum => {
                counts.changed += 1;
                out.push(
                    Check::new("files", target, file.clone())
                        .judged(false, "unchanged", "changed")
                        .with_reason(format!("sha256 {actual}, manifest {sum}")),
                );
            }
            Some(_) => {}
        }
    }
    for file in found.keys().filter(|f| !expected.contains_key(*f)) {
        counts.unexpected += 1;
        out.push(Check::new("files", target, file.clone()).judged(false, "absent", "unexpected"));
    }
    (counts, out)
}

/// The closing check of a root or site: its counts, failing when any is not zero.
pub fn summary(
    target: &str,
    listed: usize,
    counts: FileCounts,
    seconds: f64,
    reason: String,
) -> Check {
    let clean = counts == FileCounts::default();
    let mut summary = Check::new("files", target, "manifest")
        .with_status(Status::of(clean))
        .with_seconds(seconds)
        .with_reason(reason);
    summary.expected = format!("{listed} files as listed");
    summary.observed = format!(
        "{} missing, {} changed, {} unexpected",
        counts.missing, counts.changed, counts.unexpected
    );
    summary.files = Some(counts);
    summary
}

/// Compares a root with its manifest: equal NAR hashes settle it; otherwise one failing
/// check per missing, changed or unexpected file (or, when no file differs, one for what
/// only the NAR records), then a `manifest` check with the counts. A root that is gone has
/// every file missing.
pub fn check(root: &Path, manifest: &Path) -> Result<Vec<Check>, ReachError> {
    let started = std::time::Instant::now();
    let expected = read_manifest(manifest)?;
    let target = root.display().to_string();
    let (mut counts, mut out, reason, nar_differs) = match listing(root) {
        Ok(found) if found.nar_hash == expected.nar_hash => (
            FileCounts::default(),
            Vec::new(),
            format!("NAR hash {} as in {}", found.nar_hash, manifest.display()),
            false,
        ),
        Ok(found) => {
            let (counts, out) = compare(&target, &expected.files, &found.files);
            let reason = format!(
                "NAR hash {}, {} records {}",
                found.nar_hash,
                manifest.display(),
                expected.nar_hash
            );
            (counts, out, reason, true)
        }
        Err(ListingError::Missing) => {
            let (counts, out) = compare(&target, &expected.files, &BTreeMap::new());
            (counts, out, format!("{target} does not exist"), true)
        }
        Err(e) => {
            let check = Check::new("files", &target, "(root)")
                .judged(false, "a directory of files", "unreadable")
                .with_reason(e.to_string());
            (FileCounts::default(), vec![check], e.to_string(), true)
        }
    };
    if nar_differs && counts == FileCounts::default() {
        // The NAR differs but no file does: an executable bit, a symbolic link, an empty
        // directory, or a root that cannot be read at all.
        counts.changed = 1;
        if out.is_empty() {
            out.push(
                Check::new("files", &target, "(nar)")
                    .judged(false, "NAR as recorded", "changed")
                    .with_reason(format!(
                        "{reason}: an executable bit, symbolic link or empty directory differs"
                    )),
            );
        }
    }
    out.push(summary(
        &target,
        expected.files.len(),
        counts,
        started.elapsed().as_secs_f64(),
        reason,
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn site() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("css")).unwrap();
        std::fs::write(root.join("index.html"), "hello").unwrap();
        std::fs::write(root.join("css/site.css"), "body{}").unwrap();
        std::fs::write(root.join("gone.txt"), "x").unwrap();
        d
    }

    /// Nix 2.8's own tools, when this machine has them (scripts/install.sh installs them).
    fn nix_tool(name: &str) -> Option<Command> {
        Command::new(name)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|_| Command::new(name))
    }

    #[test]
    fn the_nar_hash_is_the_one_nix_computes() {
        let d = site();
        let root = d.path().join("root");
        std::fs::create_dir(root.join("empty")).unwrap();
        std::os::unix::fs::symlink("index.html", root.join("home.html")).unwrap();
        let mut script = std::fs::File::create(root.join("run.sh")).unwrap();
        std::io::Write::write_all(&mut script, b"#!/bin/sh\n").unwrap();
        drop(script);
        std::fs::set_permissions(
            root.join("run.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let ours = listing(&root).unwrap();
        // Regular files only; the link and the empty directory are in the NAR alone.
        assert_eq!(
            ours.files.keys().collect::<Vec<_>>(),
            ["css/site.css", "gone.txt", "index.html", "run.sh"]
        );
        assert_eq!(
            ours.files["index.html"],
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let (Some(mut nix_hash), Some(mut nix_store)) =
            (nix_tool("nix-hash"), nix_tool("nix-store"))
        else {
            panic!("nix-hash and nix-store are needed (Debian's nix-bin; scripts/install.sh installs it)");
        };
        // nix-hash's default is the NAR serialisation's hash (hex).
        let out = nix_hash
            .args(["--type", "sha256"])
            .arg(&root)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let nix_hex = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let ours_hex = hex(&base64::engine::general_purpose::STANDARD
            .decode(ours.nar_hash.strip_prefix("sha256-").unwrap())
            .unwrap());
        assert_eq!(ours_hex, nix_hex);
        // And the bytes: nix-store --dump is the NAR itself.
        let dump = nix_store.arg("--dump").arg(&root).output().unwrap();
        assert!(dump.status.success(), "{dump:?}");
        let mut ours_nar = Vec::new();
        nix_nar::Encoder::new(&root)
            .unwrap()
            .read_to_end(&mut ours_nar)
            .unwrap();
        assert!(ours_nar == dump.stdout, "the NARs differ");
    }

    #[test]
    fn missing_changed_and_unexpected_files_are_counted() {
        let d = site();
        let root = d.path().join("root");
        let manifest = d.path().join("site.manifest");
        assert_eq!(write_manifest(&root, &manifest).unwrap(), 3);
        // `sha256sum` agrees on the digest of "hello", after the NAR hash line.
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(text.contains(&format!("{NAR_HASH_LINE}sha256-")), "{text}");
        assert!(
            text.contains(
                "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824  index.html"
            ),
            "{text}"
        );
        let clean = check(&root, &manifest).unwrap();
        assert!(clean.iter().all(|c| c.status == Status::Pass), "{clean:?}");

        std::fs::write(root.join("index.html"), "defaced").unwrap();
        std::fs::remove_file(root.join("gone.txt")).unwrap();
        std::fs::write(root.join("css/evil.js"), "x").unwrap();
        let checks = check(&root, &manifest).unwrap();
        let summary = checks.last().unwrap();
        assert_eq!(
            summary.files,
            Some(FileCounts {
                missing: 1,
                changed: 1,
                unexpected: 1
            })
        );
        assert_eq!(summary.status, Status::Fail);
        let probes: Vec<(&str, &str)> = checks
            .iter()
            .map(|c| (c.probe.as_str(), c.observed.as_str()))
            .collect();
        assert_eq!(
            &probes[..3],
            [
                ("gone.txt", "missing"),
                ("index.html", "changed"),
                ("css/evil.js", "unexpected")
            ]
        );
    }

    #[test]
    fn what_only_the_nar_records_is_a_change_and_a_gone_root_misses_every_file() {
        let d = site();
        let root = d.path().join("root");
        let manifest = d.path().join("site.manifest");
        write_manifest(&root, &manifest).unwrap();
        std::fs::set_permissions(
            root.join("gone.txt"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let checks = check(&root, &manifest).unwrap();
        assert_eq!(checks[0].probe, "(nar)", "{checks:?}");
        assert_eq!(
            checks.last().unwrap().files,
            Some(FileCounts {
                changed: 1,
                ..FileCounts::default()
            })
        );

        std::fs::remove_dir_all(&root).unwrap();
        let checks = check(&root, &manifest).unwrap();
        assert_eq!(
            checks.last().unwrap().files,
            Some(FileCounts {
                missing: 3,
                ..FileCounts::default()
            })
        );
    }

    #[test]
    fn a_malformed_manifest_names_every_bad_line() {
        let d = tempfile::tempdir().unwrap();
        let manifest = d.path().join("bad.manifest");
        std::fs::write(
            &manifest,
            format!(
                "# comment\n# nar-hash sha256-short\nnot a line\n{}  ../etc/passwd\n{}  ok.txt\n",
                "a".repeat(64),
                "b".repeat(64)
            ),
        )
        .unwrap();
        let err = read_manifest(&manifest).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "reach: manifest {} cannot be used: line 2: got NAR hash \"sha256-short\"",
                manifest.display()
            )),
            "{err}"
        );
        assert!(err.contains("line 3: got \"not a line\""), "{err}");
        assert!(
            err.contains("line 4: path \"../etc/passwd\" must be relative"),
            "{err}"
        );
        assert!(err.contains("no `# nar-hash sha256-…` line"), "{err}");
    }
}
