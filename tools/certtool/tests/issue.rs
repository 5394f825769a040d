//! `certtool init-ca` and `certtool issue` on the shipped topology: what they write is
//! accepted by `openssl verify` and by `certtool verify`, reruns keep what is valid, and
//! names outside the CA's constraints are refused.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run, verify_json};

fn topology() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../hosts/topology.json")
        .display()
        .to_string()
}

/// init-ca + issue into a temporary directory; returns (dir, ca dir, out dir).
fn issued(key_type: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let out = dir.path().join("out");
    let (topology, ca_s, out_s) = (
        topology(),
        ca.display().to_string(),
        out.display().to_string(),
    );
    for command in [
        ["init-ca", "--out", ca_s.as_str()].as_slice(),
        ["issue", "--ca", ca_s.as_str(), "--out", out_s.as_str()].as_slice(),
    ] {
        let mut args = command.to_vec();
        args.extend(["--topology", topology.as_str(), "--key-type", key_type]);
        let (code, _, err) = run(&args, &[]);
        assert_eq!(code, 0, "{command:?}: {err}");
    }
    (dir, ca, out)
}

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap()
}

fn openssl_verify(out: &Path, extra: &[&str], cert: &str) -> (bool, String) {
    let output = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(out.join("ca.pem"))
        .args(extra)
        .arg(out.join(cert))
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// Every issued certificate passes `openssl verify` for its purpose and every name.
fn assert_openssl_accepts(out: &Path) {
    let manifest = manifest(out);
    let entries = manifest["certificates"].as_array().unwrap();
    assert_eq!(entries.len(), 16, "one certificate per TLS link");
    for entry in entries {
        let cert = entry["cert"].as_str().unwrap();
        // etcd's server and peer certificates serve and dial with the same certificate.
        let (purposes, wrong): (&[&str], Option<&str>) = match entry["eku"].as_str().unwrap() {
            "serverAuth" => (&["sslserver"], Some("sslclient")),
            "clientAuth" => (&["sslclient"], Some("sslserver")),
            "serverAuth+clientAuth" => (&["sslserver", "sslclient"], None),
            other => panic!("unexpected eku {other}"),
        };
        for purpose in purposes {
            for name in entry["names"].as_array().unwrap() {
                let name = name.as_str().unwrap();
                let flag = if name.parse::<std::net::IpAddr>().is_ok() {
                    "-verify_ip"
                } else {
                    "-verify_hostname"
                };
                let (ok, text) = openssl_verify(out, &["-purpose", purpose, flag, name], cert);
                assert!(ok, "openssl rejects {cert} for {purpose} {name}: {text}");
            }
        }
        // And the wrong purpose is refused, so the EKU is really there (and only it).
        if let Some(wrong) = wrong {
            let (ok, _) = openssl_verify(out, &["-purpose", wrong], cert);
            assert!(!ok, "openssl accepts {cert} for {wrong}");
        }
    }
}

#[test]
fn issued_certificates_pass_openssl_and_certtool_verify() {
    let (_dir, ca, out) = issued("p256");
    assert_openssl_accepts(&out);
    // Keys are 0600; the manifest names runtime paths of docs/contracts.md.
    let m = manifest(&out);
    assert_eq!(m["type"], "manifest");
    assert_eq!(m["runtimeDir"], "/var/lib/rampart/pki");
    for entry in m["certificates"].as_array().unwrap() {
        let key = out.join(entry["key"].as_str().unwrap());
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
        let stem = entry["purpose"].as_str().unwrap();
        assert_eq!(
            entry["runtimeKey"],
            format!("/var/lib/rampart/pki/{stem}.key")
        );
        assert_eq!(
            entry["serial"].as_str().unwrap().len(),
            40,
            "a 20-octet random serial"
        );
    }
    let mode = std::fs::metadata(ca.join("ca.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // certtool agrees, from the directory with the topology, and from the manifest alone.
    let out_s = out.display().to_string();
    let (code, report) = verify_json(&["--topology", &topology(), "--ca", &out_s, &out_s], &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["summary"]["certificates"], 17);
    assert_eq!(report["summary"]["warnings"], 0, "{report}");
    let roles: Vec<&str> = report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles.iter().filter(|r| **r == "ca").count(), 1);
    assert!(roles.contains(&"replication-client"), "{roles:?}");
    let manifest_path = out.join("manifest.json").display().to_string();
    let (code, report) = verify_json(&[&manifest_path], &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["summary"]["certificates"], 17);
}

#[test]
fn rsa_keys_come_from_the_aws_lc_rs_backend() {
    let (_dir, _ca, out) = issued("rsa2048");
    let (_, text, _) = run(
        &[
            "inspect",
            "--json",
            out.join("web1/backend.pem").to_str().unwrap(),
        ],
        &[],
    );
    let inspected: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(inspected[0]["key"], "RSA 2048");
    assert_eq!(
        inspected[0]["signatureAlgorithm"],
        "sha256WithRSAEncryption"
    );
    assert_openssl_accepts(&out);
}

#[test]
fn a_rerun_keeps_valid_certificates_and_renew_within_reissues_with_the_same_key() {
    let (_dir, ca, out) = issued("p256");
    let key_before = std::fs::read(out.join("web1/backend.key")).unwrap();
    let serial_before = manifest(&out)["certificates"][2]["serial"].clone();
    let args = |extra: &[&str]| {
        let mut a = vec![
            "issue".to_string(),
            "--topology".into(),
            topology(),
            "--ca".into(),
            ca.display().to_string(),
            "--out".into(),
            out.display().to_string(),
            "--json".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let actions = |a: Vec<String>| -> Vec<String> {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let (code, text, err) = run(&refs, &[]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["action"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(actions(args(&[])), vec!["kept"; 16]);
    assert_eq!(manifest(&out)["certificates"][2]["serial"], serial_before);
    // 90-day certificates all expire within 100 days.
    assert_eq!(
        actions(args(&["--renew-within", "100d"])),
        vec!["reissued"; 16]
    );
    assert_ne!(manifest(&out)["certificates"][2]["serial"], serial_before);
    assert_eq!(
        std::fs::read(out.join("web1/backend.key")).unwrap(),
        key_before,
        "a renewal keeps the key"
    );
    // A deleted key is replaced by a new one, and only that certificate changes.
    std::fs::remove_file(out.join("web2/mysql.key")).unwrap();
    let after = actions(args(&[]));
    assert_eq!(
        after.iter().filter(|a| *a == "issued").count(),
        1,
        "{after:?}"
    );
    assert_openssl_accepts(&out);
}

#[test]
fn init_ca_never_replaces_an_existing_ca() {
    let (_dir, ca, _out) = issued("p256");
    let before = std::fs::read(ca.join("ca.key")).unwrap();
    let (code, _, err) = run(
        &[
            "init-ca",
            "--topology",
            &topology(),
            "--out",
            ca.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("ca.pem already exists"), "{err}");
    assert_eq!(std::fs::read(ca.join("ca.key")).unwrap(), before);
}

#[test]
fn names_outside_the_ca_constraints_are_refused() {
    let (dir, ca, _out) = issued("p256");
    // The same topology with another domain: its host names fall outside the CA.
    let mut t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(topology()).unwrap()).unwrap();
    t["domain"] = "corp.example".into();
    let other = dir.path().join("other.json");
    std::fs::write(&other, t.to_string()).unwrap();
    let out2 = dir.path().join("out2");
    let (code, _, err) = run(
        &[
            "issue",
            "--topology",
            other.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
            "--out",
            out2.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("refusing to issue names outside the CA's name constraints"),
        "{err}"
    );
    assert!(
        err.contains("web1.corp.example (host web1, purpose backend)"),
        "{err}"
    );
    assert!(!out2.exists(), "nothing is written");
}

#[test]
fn the_ca_carries_the_constraints_and_a_random_serial() {
    let (_dir, ca, _out) = issued("p384");
    let (code, text, _) = run(
        &["inspect", "--json", ca.join("ca.pem").to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ca = &v[0];
    assert_eq!(ca["type"], "inspection");
    assert_eq!(ca["isCa"], true);
    assert_eq!(ca["pathLen"], 0);
    assert_eq!(ca["key"], "EC P-384");
    assert_eq!(ca["serial"].as_str().unwrap().len(), 40);
    assert_eq!(
        ca["nameConstraints"],
        "rampart.internal, rampart.test, www.rampart.test, 10.42.0.0/255.255.255.0"
    );
    let (code, text, _) = run(&["inspect", ca["path"].as_str().unwrap()], &[]);
    assert_eq!(code, 0);
    assert!(
        text.contains("CA                  yes, pathlen 0"),
        "{text}"
    );
}

#[test]
fn a_ca_about_to_expire_issues_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca").display().to_string();
    let out = dir.path().join("out");
    let (code, _, err) = run(
        &[
            "init-ca",
            "--topology",
            &topology(),
            "--out",
            &ca,
            "--validity",
            "1h",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(
        &[
            "issue",
            "--topology",
            &topology(),
            "--ca",
            &ca,
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("the CA expires at") && err.contains("certtool init-ca"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn a_host_pki_directory_is_recognised_through_the_topology() {
    // The lab's layout: one host's files plus ca.pem in a flat directory.
    let (dir, _ca, out) = issued("p256");
    let pki = dir.path().join("web2-pki");
    std::fs::create_dir(&pki).unwrap();
    for entry in std::fs::read_dir(out.join("web2")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), pki.join(entry.file_name())).unwrap();
    }
    std::fs::copy(out.join("ca.pem"), pki.join("ca.pem")).unwrap();
    let pki_s = pki.display().to_string();
    let ca = pki.join("ca.pem").display().to_string();
    let (code, report) = verify_json(&["--topology", &topology(), "--ca", &ca, &pki_s], &[]);
    assert_eq!(code, 0, "{report}");
    let mut seen: Vec<String> = report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}:{}",
                c["role"].as_str().unwrap(),
                c["host"].as_str().unwrap_or("-")
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "backend:web2",
            "ca:-",
            "etcd-client:web2",
            "etcd-peer:web2",
            "etcd-server:web2",
            "mysql:web2",
            "replication-client:web2"
        ]
    );
    // In a directory named after a host, the host is that one: web1's certificate
    // under web2/ does not cover web2's names.
    let strict = dir.path().join("lab/web2");
    std::fs::create_dir_all(&strict).unwrap();
    for file in ["backend.pem", "backend.key"] {
        std::fs::copy(out.join("web1").join(file), strict.join(file)).unwrap();
    }
    let strict_s = strict.display().to_string();
    let (code, report) = verify_json(&["--topology", &topology(), "--ca", &ca, &strict_s], &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(common::errors(&report), ["backend.pem:san"]);
}
