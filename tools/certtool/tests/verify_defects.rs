//! Each defect of issue #4, made once by rcgen and once by the openssl CLI, must be
//! reported under its check id, and nothing else may fail; a good set must pass.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{verify_json, KeyKind, Made, Maker, Openssl, Rcgen, Spec};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Defect {
    None,
    Rsa1024,
    Sha1,
    PathLen,
    CaWithoutKeyCertSign,
    ExpiredCa,
    WrongEku,
    SanMismatch,
    KeyMismatch,
    KeyMode0644,
    KeyInStore,
    NotYetValid,
    CaExpiresBeforeLeaf,
    OutsideNameConstraints,
}

const NAME: &str = "svc.rampart.internal";

/// Builds a CA and a server certificate with one defect and runs `certtool verify` on it.
fn check(maker: &dyn Maker, defect: Defect) -> (i32, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut ca_spec = Spec::ca();
    match defect {
        Defect::CaWithoutKeyCertSign => ca_spec.key_cert_sign = false,
        Defect::ExpiredCa => (ca_spec.from_days, ca_spec.until_days) = (-400, -1),
        Defect::CaExpiresBeforeLeaf => ca_spec.until_days = 30,
        Defect::OutsideNameConstraints => ca_spec.permitted_dns = vec!["rampart.internal".into()],
        _ => {}
    }
    let ca = maker.make(d, "ca", &ca_spec, None);

    let mut name = NAME.to_string();
    let mut leaf = Spec::server(NAME);
    match defect {
        Defect::Rsa1024 => leaf.key = KeyKind::Rsa1024,
        Defect::Sha1 => leaf.sha1 = true,
        Defect::WrongEku => leaf.eku = Some("clientAuth"),
        Defect::SanMismatch => leaf.sans = vec!["other.rampart.internal".into()],
        Defect::NotYetValid => leaf.from_days = 1,
        Defect::ExpiredCa => (leaf.from_days, leaf.until_days) = (-10, 30),
        Defect::OutsideNameConstraints => {
            name = "svc.example.org".into();
            leaf.sans = vec![name.clone()];
        }
        _ => {}
    }
    let mut paths = Vec::new();
    let issuer: Made = if defect == Defect::PathLen {
        // A sub-CA under a CA whose pathlen is 0.
        // A day shorter than its issuer: made later (seconds, on a busy machine), an
        // equally long one would outlive the root and add a finding this test is not about.
        let sub = Spec {
            ca: Some(None),
            until_days: Spec::ca().until_days - 1,
            ..Spec::ca()
        };
        let made = maker.make(d, "intermediate", &sub, Some(&ca));
        paths.push(made.cert.display().to_string());
        made
    } else {
        ca.clone()
    };
    let server = maker.make(d, "server", &leaf, Some(&issuer));
    let mut envs: Vec<(String, String)> = Vec::new();
    match defect {
        Defect::KeyMismatch => {
            let other = maker.make(d, "other", &Spec::server(NAME), Some(&ca));
            std::fs::rename(&other.key, &server.key).unwrap();
            std::fs::remove_file(&other.cert).unwrap();
        }
        Defect::KeyMode0644 => {
            std::fs::set_permissions(&server.key, std::fs::Permissions::from_mode(0o644)).unwrap()
        }
        Defect::KeyInStore => {
            // A store-like directory: the key lives there, a symlink points at it.
            let store = d.join("nix/store");
            std::fs::create_dir_all(&store).unwrap();
            let inside = store.join("0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-server.key");
            std::fs::rename(&server.key, &inside).unwrap();
            std::os::unix::fs::symlink(&inside, &server.key).unwrap();
            envs.push(("NIX_STORE_DIR".into(), store.display().to_string()));
        }
        _ => {}
    }
    paths.push(server.cert.display().to_string());
    let ca_path = ca.cert.display().to_string();
    let mut args = vec!["--ca", &ca_path, "--purpose", "server", "--name", &name];
    args.extend(paths.iter().map(String::as_str));
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (code, report) = verify_json(&args, &envs);
    assert_eq!(report["type"], "report");
    (code, common::errors(&report))
}

fn expect(maker: &dyn Maker, defect: Defect, expected: &[&str]) {
    let (code, errors) = check(maker, defect);
    assert_eq!(errors, expected, "{defect:?} made by {}", maker.label());
    let want = if expected.is_empty() { 0 } else { 1 };
    assert_eq!(
        code,
        want,
        "{defect:?} made by {}: exit code",
        maker.label()
    );
}

macro_rules! defect_tests {
    ($($name:ident: $defect:expr => [$($id:expr),*];)*) => {
        mod rcgen_made {
            use super::*;
            $(#[test] fn $name() {
                if $defect == Defect::Sha1 {
                    // rcgen cannot sign with SHA-1 at all; the openssl twin covers it.
                    return;
                }
                expect(&Rcgen, $defect, &[$($id),*]);
            })*
        }
        mod openssl_made {
            use super::*;
            $(#[test] fn $name() { expect(&Openssl, $defect, &[$($id),*]); })*
        }
    };
}

defect_tests! {
    a_good_set_passes: Defect::None => [];
    rsa_1024_key: Defect::Rsa1024 => ["server.pem:key-strength"];
    sha1_signature: Defect::Sha1 => ["server.pem:chain", "server.pem:signature-algorithm"];
    pathlen_violated: Defect::PathLen => ["intermediate.pem:ca-constraints", "server.pem:chain"];
    ca_without_key_cert_sign: Defect::CaWithoutKeyCertSign => ["ca.pem:ca-constraints"];
    expired_ca_over_a_valid_leaf: Defect::ExpiredCa => ["ca.pem:validity.expired", "server.pem:ca-outlives-leaf"];
    wrong_eku: Defect::WrongEku => ["server.pem:eku"];
    san_mismatch: Defect::SanMismatch => ["server.pem:san"];
    key_of_another_certificate: Defect::KeyMismatch => ["server.pem:key-match"];
    key_mode_0644: Defect::KeyMode0644 => ["server.pem:key-mode"];
    key_under_a_store_like_path: Defect::KeyInStore => ["server.pem:key-in-store"];
    not_yet_valid: Defect::NotYetValid => ["server.pem:validity.not-yet-valid"];
    ca_expiring_before_leaf: Defect::CaExpiresBeforeLeaf => ["server.pem:ca-outlives-leaf"];
    name_outside_the_ca_constraints: Defect::OutsideNameConstraints => ["server.pem:chain", "server.pem:name-constraints"];
}

#[test]
fn all_findings_are_reported_at_once_with_their_severity() {
    // One certificate with three defects: all three come back in one run.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Rcgen.make(d, "ca", &Spec::ca(), None);
    let leaf = Spec {
        eku: Some("clientAuth"),
        sans: vec!["wrong.rampart.internal".into()],
        until_days: 10,
        ..Spec::server(NAME)
    };
    let server = Rcgen.make(d, "server", &leaf, Some(&ca));
    std::fs::set_permissions(&server.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, report) = verify_json(
        &[
            "--ca",
            &ca.cert.display().to_string(),
            "--purpose",
            "server",
            "--name",
            NAME,
            &server.cert.display().to_string(),
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert_eq!(
        common::errors(&report),
        ["server.pem:eku", "server.pem:key-mode", "server.pem:san"]
    );
    let soon: Vec<_> = common::findings(&report)
        .into_iter()
        .filter(|(_, id, sev)| id == "validity.expires-soon" && sev == "warning")
        .collect();
    assert_eq!(soon.len(), 1, "{report}");
    assert_eq!(report["summary"]["errors"], 3);
    for cert in report["certificates"].as_array().unwrap() {
        assert_eq!(cert["type"], "certificate");
        for key in ["path", "subject", "role", "findings"] {
            assert!(!cert[key].is_null(), "{key} missing in {cert}");
        }
    }
}

#[test]
fn the_key_flag_pairs_a_key_kept_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Rcgen.make(d, "ca", &Spec::ca(), None);
    let server = Rcgen.make(d, "server", &Spec::server(NAME), Some(&ca));
    let elsewhere = d.join("keys");
    std::fs::create_dir(&elsewhere).unwrap();
    let moved = elsewhere.join("svc-private.pem");
    std::fs::rename(&server.key, &moved).unwrap();
    let ca_path = ca.cert.display().to_string();
    let cert = server.cert.display().to_string();
    let base = [
        "--ca",
        ca_path.as_str(),
        "--purpose",
        "server",
        "--name",
        NAME,
        cert.as_str(),
    ];
    let (code, report) = verify_json(&base, &[]);
    assert_eq!(code, 0, "a missing key is a warning");
    assert!(common::findings(&report)
        .iter()
        .any(|(_, id, sev)| id == "key-match" && sev == "warning"));
    let moved = moved.display().to_string();
    let mut with_key = base.to_vec();
    with_key.extend(["--key", moved.as_str()]);
    let (code, report) = verify_json(&with_key, &[]);
    assert_eq!(code, 0, "{report}");
    assert!(common::findings(&report)
        .iter()
        .all(|(_, id, _)| id != "key-match"));
    assert!(Path::new(&moved).exists());
}

#[test]
fn at_and_warn_within_move_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Rcgen.make(d, "ca", &Spec::ca(), None);
    let server = Rcgen.make(d, "server", &Spec::server(NAME), Some(&ca));
    let run = |extra: [&str; 2]| {
        let (ca, cert) = (
            ca.cert.display().to_string(),
            server.cert.display().to_string(),
        );
        let mut args = vec![
            "--ca",
            ca.as_str(),
            "--name",
            NAME,
            "--purpose",
            "server",
            cert.as_str(),
        ];
        args.extend(extra);
        verify_json(&args, &[])
    };
    let (code, report) = run(["--at", "2099-01-01T00:00:00Z"]);
    assert_eq!(code, 1);
    assert_eq!(
        common::errors(&report),
        ["ca.pem:validity.expired", "server.pem:validity.expired"]
    );
    let (code, report) = run(["--warn-within", "400d"]);
    assert_eq!(code, 0);
    let soon = common::findings(&report)
        .into_iter()
        .filter(|(_, id, _)| id == "validity.expires-soon")
        .count();
    assert_eq!(soon, 2, "the CA and the leaf both expire within 400 days");
}
