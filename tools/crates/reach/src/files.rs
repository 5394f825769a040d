//! Web content integrity: a web root against a manifest of SHA-256 sums.
//!
//! The manifest is `sha256sum`'s own format, so `sha256sum -c` can read it too: one line
//! per file, 64 lowercase hex digits, two spaces (or space and `*`), then the path
//! relative to the root with `/` separators. Blank lines and `#` comments are ignored.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::report::{Check, FileCounts, Status};

use super::ReachError;

fn manifest_error(path: &Path, problem: String) -> ReachError {
    ReachError::Input {
        what: "manifest",
        path: path.to_path_buf(),
        problem,
        hint: "write one with `reach files --write-manifest FILE ROOT` (lines of `<sha256>  <relative path>`)",
    }
}

/// Reads a manifest: relative path → hex digest.
pub fn read_manifest(path: &Path) -> Result<BTreeMap<String, String>, ReachError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| manifest_error(path, format!("cannot read it ({e})")))?;
    let mut entries = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
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
        if entries
            .insert(file.to_string(), sum.to_ascii_lowercase())
            .is_some()
        {
            problems.push(format!("line {n}: {file:?} is listed twice"));
        }
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(manifest_error(path, problems.join("; ")))
    }
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

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Every regular file under `root`, as sorted relative `/`-paths. Symlinked directories
/// are not followed (no loops); a symlink to a file counts as that file.
pub fn walk(root: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let rel_child = rel.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(rel_child);
            } else if kind.is_file() || (kind.is_symlink() && entry.path().is_file()) {
                let parts: Vec<String> = rel_child
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn root_error(root: &Path, e: std::io::Error) -> ReachError {
    ReachError::Input {
        what: "web root",
        path: root.to_path_buf(),
        problem: format!("cannot list it ({e})"),
        hint: "pass the directory the web server serves",
    }
}

/// `reach files --write-manifest FILE ROOT`: writes the manifest atomically; returns the
/// number of entries.
pub fn write_manifest(root: &Path, manifest: &Path) -> Result<usize, ReachError> {
    let files = walk(root).map_err(|e| root_error(root, e))?;
    let mut text = String::new();
    for f in &files {
        let sum = sha256_file(&root.join(f)).map_err(|e| root_error(root, e))?;
        text.push_str(&format!("{sum}  {f}\n"));
    }
    super::textfile::write_atomically(manifest, &text).map_err(|e| ReachError::Input {
        what: "manifest",
        path: manifest.to_path_buf(),
        problem: format!("cannot write it ({e})"),
        hint: "choose a writable path",
    })?;
    Ok(files.len())
}

/// Compares a root with its manifest: one failing check per missing, changed or
/// unexpected file, then a `manifest` check with the counts.
pub fn check(root: &Path, manifest: &Path) -> Result<Vec<Check>, ReachError> {
    let started = std::time::Instant::now();
    let expected = read_manifest(manifest)?;
    let present = walk(root).map_err(|e| root_error(root, e))?;
    let target = root.display().to_string();
    let mut counts = FileCounts::default();
    let mut out = Vec::new();
    for (file, sum) in &expected {
        if !present.contains(file) {
            counts.missing += 1;
            out.push(
                Check::new("files", &target, file.clone()).judged(false, "present", "missing"),
            );
            continue;
        }
        match sha256_file(&root.join(file)) {
            Ok(actual) if &actual == sum => {}
            Ok(actual) => {
                counts.changed += 1;
                out.push(
                    Check::new("files", &target, file.clone())
                        .judged(false, "unchanged", "changed")
                        .with_reason(format!("sha256 {actual}, manifest {sum}")),
                );
            }
            Err(e) => {
                counts.changed += 1;
                out.push(
                    Check::new("files", &target, file.clone())
                        .judged(false, "unchanged", "unreadable")
                        .with_reason(e.to_string()),
                );
            }
        }
    }
    for file in present.iter().filter(|f| !expected.contains_key(*f)) {
        counts.unexpected += 1;
        out.push(Check::new("files", &target, file.clone()).judged(false, "absent", "unexpected"));
    }
    let clean = counts == FileCounts::default();
    let mut summary = Check::new("files", &target, "manifest")
        .with_status(Status::of(clean))
        .with_seconds(started.elapsed().as_secs_f64())
        .with_reason(manifest.display().to_string());
    summary.expected = format!("{} files as listed", expected.len());
    summary.observed = format!(
        "{} missing, {} changed, {} unexpected",
        counts.missing, counts.changed, counts.unexpected
    );
    summary.files = Some(counts);
    out.push(summary);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("reach-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("root/css")).unwrap();
        d
    }

    #[test]
    fn missing_changed_and_unexpected_files_are_counted() {
        let d = dir("count");
        let root = d.join("root");
        std::fs::write(root.join("index.html"), "hello").unwrap();
        std::fs::write(root.join("css/site.css"), "body{}").unwrap();
        std::fs::write(root.join("gone.txt"), "x").unwrap();
        let manifest = d.join("manifest.sha256");
        assert_eq!(write_manifest(&root, &manifest).unwrap(), 3);
        // `sha256sum` agrees on the digest of "hello".
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(
            text.contains(
                "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824  index.html"
            ),
            "{text}"
        );
        assert!(check(&root, &manifest)
            .unwrap()
            .iter()
            .all(|c| c.status == Status::Pass));

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
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_malformed_manifest_names_every_bad_line() {
        let d = dir("bad");
        let manifest = d.join("bad.sha256");
        std::fs::write(
            &manifest,
            format!(
                "# comment\nnot a line\n{}  ../etc/passwd\n{}  ok.txt\n",
                "a".repeat(64),
                "b".repeat(64)
            ),
        )
        .unwrap();
        let err = read_manifest(&manifest).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "reach: manifest {} cannot be used: line 2: got \"not a line\"",
                manifest.display()
            )),
            "{err}"
        );
        assert!(
            err.contains("line 3: path \"../etc/passwd\" must be relative"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
