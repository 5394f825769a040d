//! `reach` as the monitoring agent: certificate files, web content integrity and the
//! node_exporter textfile (names per docs/contracts.md), checked with promtool.

mod support;

use std::process::Command;

use serde_json::Value;
use support::tls::Pki;
use support::*;

#[test]
fn files_reports_missing_changed_and_unexpected_and_rejects_a_bad_manifest() {
    let dir = tempdir("files");
    let root = dir.path.join("www");
    std::fs::create_dir_all(root.join("img")).unwrap();
    std::fs::write(root.join("index.html"), "<h1>rampart</h1>").unwrap();
    std::fs::write(root.join("img/logo.svg"), "<svg/>").unwrap();
    let manifest = dir.path.join("www.sha256");
    let (code, _, err) = outcome(
        Command::new(reach())
            .arg("files")
            .arg(&root)
            .arg("--write-manifest")
            .arg(&manifest),
    );
    assert_eq!(code, 0, "{err}");
    // The manifest is sha256sum's format: sha256sum itself verifies the tree.
    run(Command::new("sha256sum")
        .arg("--check")
        .arg("--quiet")
        .arg(&manifest)
        .current_dir(&root));

    let files = |extra: &[&str]| {
        outcome(
            Command::new(reach())
                .arg("files")
                .arg(&root)
                .arg("--manifest")
                .arg(&manifest)
                .args(extra),
        )
    };
    let (code, out, _) = files(&[]);
    assert_eq!(code, 0, "{out}");

    std::fs::write(root.join("index.html"), "<h1>defaced</h1>").unwrap();
    std::fs::remove_file(root.join("img/logo.svg")).unwrap();
    std::fs::write(root.join("shell.php"), "<?php").unwrap();
    let (code, out, _) = files(&["--json"]);
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let summary = v["checks"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(summary["probe"], "manifest");
    assert_eq!(
        (
            &summary["missing"],
            &summary["changed"],
            &summary["unexpected"]
        ),
        (&Value::from(1), &Value::from(1), &Value::from(1))
    );

    std::fs::write(&manifest, "deadbeef index.html\n").unwrap();
    let (code, _, err) = files(&[]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with(&format!(
            "reach: manifest {} cannot be used: line 1: got \"deadbeef index.html\"",
            manifest.display()
        )),
        "{err}"
    );
}

#[test]
fn the_textfile_carries_certificates_files_and_check_results() {
    let dir = tempdir("agent");
    let topology = loopback::topology(&dir, &[]);
    // web1's PKI directory: the CA, a good backend certificate, an expired mysql
    // certificate, and no replication-client certificate at all.
    let pki = Pki::new();
    let pki_dir = dir.path.join("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
    std::fs::copy(pki.ca(), pki_dir.join("ca.pem")).unwrap();
    let backend = pki.leaf("backend", &["web1.rampart.internal"], false);
    std::fs::copy(&backend.cert, pki_dir.join("backend.pem")).unwrap();
    let mysql = pki.leaf("mysql", &["web1.rampart.internal"], true);
    std::fs::copy(&mysql.cert, pki_dir.join("mysql.pem")).unwrap();
    let root = dir.path.join("www");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.html"), "ok").unwrap();
    let manifest = dir.path.join("www.sha256");
    run(Command::new(reach())
        .arg("files")
        .arg(&root)
        .arg("--write-manifest")
        .arg(&manifest));
    std::fs::write(root.join("extra.html"), "new").unwrap();

    let textfile = dir.path.join("rampart-reach.prom");
    let (code, out, err) = outcome(
        Command::new(reach())
            .arg("check")
            .arg("--topology")
            .arg(&topology)
            .args([
                "--from",
                "web1",
                "--only",
                "certificates,files",
                "--pki-dir",
            ])
            .arg(&pki_dir)
            .arg("--web-root")
            .arg(&root)
            .arg("--manifest")
            .arg(&manifest)
            .arg("--prom-textfile")
            .arg(&textfile),
    );
    assert_eq!(code, 1, "{out}{err}");
    let text = std::fs::read_to_string(&textfile).unwrap();
    let series: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let root_label = root.display().to_string();
    let pki_label = pki_dir.display().to_string();
    let expect = [
        "rampart_check_success{check=\"certificates\",target=\"web1\"} 0".to_string(),
        format!("rampart_check_success{{check=\"files\",target=\"{root_label}\"}} 0"),
        format!("rampart_web_files{{root=\"{root_label}\",state=\"unexpected\"}} 1"),
        format!("rampart_web_files{{root=\"{root_label}\",state=\"missing\"}} 0"),
    ];
    for e in &expect {
        assert!(series.contains(&e.as_str()), "missing {e} in\n{text}");
    }
    let certs: Vec<&str> = series
        .iter()
        .filter(|s| s.starts_with("rampart_cert_expiry_timestamp_seconds"))
        .copied()
        .collect();
    // ca, backend and mysql parse; the missing replication-client file has no series.
    assert_eq!(certs.len(), 3, "{text}");
    assert!(
        certs[0].starts_with(&format!(
            "rampart_cert_expiry_timestamp_seconds{{path=\"{pki_label}/backend.pem\",purpose=\"backend\"}} "
        )),
        "{text}"
    );
    assert!(!dir
        .path
        .join(format!("rampart-reach.prom.tmp.{}", std::process::id()))
        .exists());
    // node_exporter's format rules, checked by Prometheus' own linter.
    let lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&textfile).unwrap())
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
}
