//! The same broken topologies go to the Rust model and to `lib/topology.nix`; both must
//! reject each with exactly the message in its `.expected` file, and accept the good ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_topology::{problems, Topology};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// (fixture name, JSON path, expected message) for every file in tests/topologies/bad.
fn bad_fixtures() -> Vec<(String, PathBuf, String)> {
    let dir = repo().join("tests/topologies/bad");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tests/topologies/bad exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            let expected = std::fs::read_to_string(path.with_extension("expected"))
                .unwrap_or_else(|_| panic!("{name}.expected is missing"));
            out.push((name, path, expected.trim_end().to_string()));
        }
    }
    out.sort();
    out
}

fn good_fixtures() -> Vec<PathBuf> {
    let mut out = vec![repo().join("hosts/topology.json")];
    for entry in std::fs::read_dir(repo().join("tests/topologies/good")).unwrap() {
        out.push(entry.unwrap().path());
    }
    out
}

#[test]
fn at_least_ten_distinct_defects_are_covered() {
    assert!(bad_fixtures().len() >= 10);
}

#[test]
fn rust_rejects_each_bad_topology_with_its_message() {
    let mut wrong = Vec::new();
    for (name, path, expected) in bad_fixtures() {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let got = problems(&doc);
        if got != [expected.clone()] {
            wrong.push(format!(
                "{name}:\n  expected [{expected}]\n  got      {got:?}"
            ));
        }
        let err = Topology::load(&path).expect_err(&name);
        assert_eq!(
            err.problems(),
            got.as_slice(),
            "{name}: load and problems() disagree"
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn rust_accepts_the_good_topologies() {
    for path in good_fixtures() {
        if let Err(e) = Topology::load(&path) {
            panic!("{}: {e}", path.display());
        }
    }
}

/// One `nix-instantiate` call validates every fixture on the Nix side.
fn nix_problems(paths: &[PathBuf]) -> BTreeMap<String, Vec<String>> {
    let entries: String = paths
        .iter()
        .map(|p| {
            format!(
                "  {:?} = t.validate (builtins.fromJSON (builtins.readFile {}));\n",
                p.display().to_string(),
                p.display()
            )
        })
        .collect();
    let expr = format!(
        "let t = import {}/lib/topology.nix; in {{\n{entries}}}",
        repo().display()
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
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn nix_rejects_each_bad_topology_with_the_same_message() {
    let fixtures = bad_fixtures();
    let paths: Vec<PathBuf> = fixtures.iter().map(|(_, p, _)| p.clone()).collect();
    let from_nix = nix_problems(&paths);
    let mut wrong = Vec::new();
    for (name, path, expected) in fixtures {
        let got = &from_nix[&path.display().to_string()];
        if *got != [expected.clone()] {
            wrong.push(format!(
                "{name}:\n  expected [{expected}]\n  nix gave {got:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn nix_accepts_the_good_topologies() {
    let paths = good_fixtures();
    for (path, found) in nix_problems(&paths) {
        assert!(found.is_empty(), "{path}: {found:?}");
    }
}
