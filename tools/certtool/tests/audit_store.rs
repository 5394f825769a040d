//! `certtool audit-store` on real derivations: `nix-instantiate` (Debian's Nix, offline)
//! writes `.drv` files into the store; one pulls a key in with `builtins.toFile`, one
//! carries it in its environment, one only depends on a leaky derivation, one is clean.

mod common;

use std::path::Path;
use std::process::Command;

use common::run;

/// `nix-instantiate FILE -A ATTR`, returning the `.drv` path.
fn instantiate(file: &Path, attr: &str) -> String {
    let out = Command::new("nix-instantiate")
        .arg(file)
        .args(["-A", attr])
        .output()
        .expect("nix-instantiate runs (Debian package nix-bin, scripts/install.sh)");
    assert!(
        out.status.success(),
        "nix-instantiate -A {attr} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(path.ends_with(".drv"), "{path}");
    path
}

fn audit(args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["audit-store", "--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run(&all, &[]);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    (code, json)
}

#[test]
fn a_key_pulled_in_with_to_file_is_flagged_and_a_clean_derivation_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    // The issued key file whose path a careless module might interpolate.
    let issued_key = dir.path().join("out/web1/backend.key");
    std::fs::create_dir_all(issued_key.parent().unwrap()).unwrap();
    std::fs::write(&issued_key, &key).unwrap();
    let manifest = serde_json::json!({
        "type": "manifest", "version": 1, "ca": "ca.pem", "runtimeDir": "/var/lib/rampart/pki",
        "certificates": [{
            "type": "certificate", "host": "web1", "purpose": "backend", "eku": "serverAuth",
            "names": ["web1.rampart.internal"], "notAfter": "2027-01-01T00:00:00Z",
            "cert": "web1/backend.pem", "key": "web1/backend.key",
            "runtimeCert": "/var/lib/rampart/pki/backend.pem", "runtimeKey": "/var/lib/rampart/pki/backend.key"
        }]
    });
    let manifest_path = dir.path().join("out/manifest.json");
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let nix = format!(
        r#"
let
  mk = name: attrs: derivation ({{ inherit name; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; }} // attrs);
  leakedKey = builtins.toFile "leaked.key" ''{key}'';
in rec {{
  # The key's text becomes a world-readable store path, an input source.
  leaky = mk "leaky" {{ args = [ "-c" "cp ${{leakedKey}} $out" ]; }};
  # The key's text sits in the environment of the derivation.
  inEnv = mk "in-env" {{ secret = ''{key}''; }};
  # Clean itself, but built on top of a leaky derivation.
  system = mk "system" {{ args = [ "-c" "echo ${{leaky}} > $out" ]; }};
  # Points at the runtime path only: what modules are meant to do.
  clean = mk "clean" {{ keyFile = "/var/lib/rampart/pki/backend.key"; note = builtins.toFile "note.txt" "no secrets here"; }};
  # Names the issued key file itself: it was read at evaluation time, or will be.
  issuedPath = mk "issued-path" {{ keyFile = "{issued}"; }};
}}
"#,
        issued = issued_key.display()
    );
    let file = dir.path().join("derivations.nix");
    std::fs::write(&file, nix).unwrap();

    let leaky = instantiate(&file, "leaky");
    let (code, report) = audit(&[&leaky]);
    assert_eq!(code, 1, "{report}");
    let finding = &report["findings"][0];
    assert_eq!(finding["type"], "finding");
    assert_eq!(finding["derivation"], leaky);
    assert!(
        finding["location"]
            .as_str()
            .unwrap()
            .ends_with("-leaked.key"),
        "{finding}"
    );
    assert_eq!(finding["what"], "PEM PRIVATE KEY block");

    let in_env = instantiate(&file, "inEnv");
    let (code, report) = audit(&[&in_env]);
    assert_eq!(code, 1);
    assert_eq!(report["findings"][0]["location"], "env secret", "{report}");

    // The walk follows input derivations: the leak two levels down is found.
    let system = instantiate(&file, "system");
    let (code, report) = audit(&[&system]);
    assert_eq!(code, 1);
    assert_eq!(report["derivations"], 2, "{report}");
    assert_eq!(report["findings"][0]["derivation"], leaky);

    let clean = instantiate(&file, "clean");
    let (code, report) = audit(&["--manifest", manifest_path.to_str().unwrap(), &clean]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["findings"].as_array().unwrap().len(), 0);
    assert_eq!(report["sources"], 1);

    let issued = instantiate(&file, "issuedPath");
    let (code, report) = audit(&["--manifest", manifest_path.to_str().unwrap(), &issued]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report["findings"][0]["what"]
            .as_str()
            .unwrap()
            .starts_with("the issued key path "),
        "{report}"
    );

    // Human output names the derivation too.
    let (code, text, _) = run(&["audit-store", &leaky, &clean], &[]);
    assert_eq!(code, 1);
    assert!(
        text.contains(&leaky) && text.contains("1 secret(s) found"),
        "{text}"
    );
}
