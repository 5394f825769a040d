//! Hostile or broken input: a clear error naming the file, exit 2, never a panic
//! (`common::run` fails the test on "panicked").

mod common;

use std::path::Path;

use common::{run, Maker, Rcgen, Spec};

struct Fixture {
    dir: tempfile::TempDir,
    ca: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ca = Rcgen.make(dir.path(), "ca", &Spec::ca(), None);
    Fixture {
        ca: ca.cert.display().to_string(),
        dir,
    }
}

/// verify on one path: exit 2 and stderr naming the path and `expected` text.
fn refused(f: &Fixture, path: &Path, expected: &str) {
    let shown = path.display().to_string();
    let (code, _, err) = run(&["verify", "--ca", &f.ca, &shown], &[]);
    assert_eq!(code, 2, "{shown}: {err}");
    assert!(err.contains(&shown), "stderr does not name {shown}: {err}");
    assert!(err.contains(expected), "stderr lacks {expected:?}: {err}");
}

#[test]
fn malformed_pem_is_named() {
    let f = fixture();
    let p = f.dir.path().join("broken.pem");
    std::fs::write(&p, "-----BEGIN CERTIFICATE-----\nMIIBxTCCAWugAwIBAgIU\n").unwrap();
    refused(&f, &p, "malformed PEM (no END line");
    std::fs::write(
        &p,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    refused(&f, &p, "malformed PEM (bad base64");
}

#[test]
fn der_garbage_and_truncated_certificates_are_named() {
    let f = fixture();
    let good = std::fs::read_to_string(&f.ca).unwrap();
    let der: Vec<u8> = {
        let body: String = good.lines().filter(|l| !l.starts_with("-----")).collect();
        base64_decode(&body)
    };
    let p = f.dir.path().join("truncated.der");
    std::fs::write(&p, &der[..der.len() / 2]).unwrap();
    refused(&f, &p, "certificate 1 is not valid X.509 DER");
    let p = f.dir.path().join("garbage.crt");
    std::fs::write(&p, [0x30, 0x03, 0x02, 0x01, 0x05, 0xff, 0xfe]).unwrap();
    refused(&f, &p, "not valid X.509 DER");
    let p = f.dir.path().join("truncated.pem");
    std::fs::write(&p, &good[..good.len() * 2 / 3]).unwrap();
    refused(&f, &p, "malformed PEM");
}

#[test]
fn a_ten_megabyte_random_file_is_refused_unread() {
    let f = fixture();
    let p = f.dir.path().join("random.pem");
    let mut bytes = vec![0u8; 10 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in bytes.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(&p, bytes).unwrap();
    refused(
        &f,
        &p,
        "too large to be a certificate or key (got 10485760 bytes",
    );
}

#[test]
fn empty_directories_missing_files_and_symlink_loops_are_named() {
    let f = fixture();
    let empty = f.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    refused(&f, &empty, "no certificates found");
    refused(&f, &f.dir.path().join("missing.pem"), "cannot read");
    let looped = f.dir.path().join("loop.pem");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    refused(&f, &looped, "cannot read");
    let tree = f.dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::copy(&f.ca, tree.join("ca-copy.pem")).unwrap();
    std::os::unix::fs::symlink(&tree, tree.join("again")).unwrap();
    refused(&f, &tree, "symbolic link loop");
}

#[test]
fn a_broken_key_beside_a_good_certificate_is_a_load_error_but_the_rest_is_checked() {
    let f = fixture();
    let d = f.dir.path();
    let ca = common::Made {
        cert: d.join("ca.pem"),
        key: d.join("ca.key"),
    };
    let server = Rcgen.make(
        d,
        "server",
        &Spec::server("svc.rampart.internal"),
        Some(&ca),
    );
    std::fs::write(
        &server.key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let cert = server.cert.display().to_string();
    let (code, out, err) = run(
        &[
            "verify",
            "--json",
            "--ca",
            &f.ca,
            "--purpose",
            "server",
            "--name",
            "svc.rampart.internal",
            &cert,
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("server.key: not a usable private key"),
        "{err}"
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["summary"]["certificates"], 2,
        "the certificate is still checked"
    );
    assert_eq!(report["loadErrors"][0]["type"], "load-error");
}

#[test]
fn the_ca_must_be_given_and_readable() {
    let f = fixture();
    let (code, _, err) = run(&["verify", &f.ca], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("no CA given"), "{err}");
    assert!(err.contains("never falls back to system roots"), "{err}");
    let missing = f.dir.path().join("nope.pem").display().to_string();
    let (code, _, err) = run(&["verify", "--ca", &missing, &f.ca], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("the CA cannot be loaded") && err.contains(&missing),
        "{err}"
    );
    let junk = f.dir.path().join("junk.pem");
    std::fs::write(&junk, "hello").unwrap();
    let (code, _, err) = run(&["verify", "--ca", junk.to_str().unwrap(), &f.ca], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("junk.pem: no certificate found"), "{err}");
}

#[test]
fn bad_flag_values_list_the_valid_forms() {
    let f = fixture();
    let (code, _, err) = run(
        &["verify", "--ca", &f.ca, "--warn-within", "soon", &f.ca],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("\"soon\" is not a duration"), "{err}");
    let (code, _, err) = run(&["verify", "--ca", &f.ca, "--at", "tomorrow", &f.ca], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("not an RFC 3339 time"), "{err}");
    let (code, _, err) = run(&["init-ca", "--out", "x", "--key-type", "rsa512"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("expected one of: p256, p384, rsa2048, rsa3072"),
        "{err}"
    );
}

#[test]
fn inspect_and_audit_store_name_bad_files_too() {
    let f = fixture();
    let p = f.dir.path().join("junk.pem");
    std::fs::write(&p, "junk").unwrap();
    let (code, _, err) = run(&["inspect", p.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("junk.pem: no certificate found"), "{err}");
    let drv = f.dir.path().join("bad.drv");
    std::fs::write(&drv, "Derive([(").unwrap();
    let (code, _, err) = run(&["audit-store", drv.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.drv: not a derivation"), "{err}");
}

fn base64_decode(text: &str) -> Vec<u8> {
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = table.iter().position(|t| *t == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
