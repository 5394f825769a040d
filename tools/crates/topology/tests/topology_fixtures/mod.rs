//! The topologies of `tests/topologies`, as both validators see them: the base topology,
//! each fixture as the base plus a JSON Patch (RFC 6902, applied with the `json-patch`
//! crate), and each broken one's expected message. `nix_eval` runs the Nix side, which
//! builds the same documents with `lib/tests/support/topology-fixtures.nix`.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

pub fn base() -> Value {
    read_json(&repo().join("tests/topologies/base.json"))
}

/// The shipped topology, `hosts/topology.json` (not a fixture, but held to the same tests).
pub fn shipped() -> Value {
    read_json(&repo().join("hosts/topology.json"))
}

fn patched(path: &Path) -> Value {
    let patch: json_patch::Patch = serde_json::from_value(read_json(path))
        .unwrap_or_else(|e| panic!("{} is not a JSON Patch: {e}", path.display()));
    let mut document = base();
    json_patch::patch(&mut document, &patch)
        .unwrap_or_else(|e| panic!("{} does not apply to base.json: {e}", path.display()));
    document
}

/// The files of a fixture directory by name, each split at its first dot: `x.patch.json`
/// is `("x", "patch.json")`, as the Nix loader reads it.
fn files_in(dir: &str) -> Vec<(String, String, PathBuf)> {
    let dir = repo().join("tests/topologies").join(dir);
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let (name, kind) = file.split_once('.').unwrap_or((&file, ""));
            (name.to_string(), kind.to_string(), path)
        })
        .collect();
    found.sort();
    found
}

/// Every valid fixture by name: `base`, each `good/<name>.json` as it is and each
/// `good/<name>.patch.json` applied to the base.
pub fn good() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::from([("base".to_string(), base())]);
    for (name, kind, path) in files_in("good") {
        let document = match kind.as_str() {
            "json" => read_json(&path),
            "patch.json" => patched(&path),
            _ => panic!(
                "{}: expected <name>.json or <name>.patch.json",
                path.display()
            ),
        };
        assert!(
            out.insert(name.clone(), document).is_none(),
            "two good fixtures are named {name}"
        );
    }
    out
}

/// Every broken fixture by name: the patched document and the one message expected for it.
pub fn bad() -> BTreeMap<String, (Value, String)> {
    let mut patches = BTreeMap::new();
    let mut expected = BTreeMap::new();
    for (name, kind, path) in files_in("bad") {
        match kind.as_str() {
            "patch.json" => {
                patches.insert(name, patched(&path));
            }
            "expected" => {
                let text = std::fs::read_to_string(&path).unwrap();
                expected.insert(name, text.trim_end().to_string());
            }
            _ => panic!(
                "{}: expected <name>.patch.json or <name>.expected",
                path.display()
            ),
        };
    }
    let patch_names: Vec<_> = patches.keys().collect();
    let expected_names: Vec<_> = expected.keys().collect();
    assert_eq!(
        patch_names, expected_names,
        "tests/topologies/bad: every fixture needs both a .patch.json and a .expected"
    );
    patches
        .into_iter()
        .map(|(name, document)| {
            let message = expected[&name].clone();
            (name, (document, message))
        })
        .collect()
}

/// Evaluates a Nix expression, strictly, as JSON; in it `repo` is the repository (a path),
/// `topology` is `lib/topology.nix` and `fixtures` the Nix side's fixture loader.
pub fn nix_eval(body: &str) -> Value {
    let expr = format!(
        "let\n  repo = {repo};\n  topology = import (repo + \"/lib/topology.nix\");\n  \
         fixtures = import (repo + \"/lib/tests/support/topology-fixtures.nix\");\nin\n{body}",
        repo = repo().canonicalize().unwrap().display()
    );
    let output = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--expr", &expr])
        .output()
        .expect("nix-instantiate runs (Debian's nix-bin; the README's set-up installs it)");
    assert!(
        output.status.success(),
        "nix-instantiate failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("nix-instantiate --json prints JSON")
}
