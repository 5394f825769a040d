//! `reach https` against real TLS servers on loopback: certificates made in the test
//! (good, expired, wrong SAN), with and without HSTS, a plain-HTTP redirect, backend
//! rotation, and `openssl s_server` speaking TLS 1.0 to prove the TLS profile catches it.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::tls::{free_port, server, Answer, Pki};
use support::*;

fn pages(hsts: bool) -> Answer {
    Answer::Pages {
        bodies: vec!["served by web1\n".into(), "served by web2\n".into()],
        hsts,
    }
}

fn run_https(args: &[String]) -> (i32, Value, String) {
    let (code, stdout, stderr) =
        outcome(Command::new(reach()).arg("https").args(args).arg("--json"));
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (code, report, stderr + &stdout)
}

fn rows(report: &Value) -> Vec<(String, String, String)> {
    probe_rows(report)
}

fn status_of(report: &Value, probe: &str) -> String {
    rows(report)
        .into_iter()
        .find(|(p, _, _)| p == probe)
        .unwrap_or_else(|| panic!("no probe {probe} in {report}"))
        .1
}

fn reason_of(report: &Value, probe: &str) -> String {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["probe"] == probe)
        .and_then(|c| c["reason"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_good_endpoint_passes_every_check() {
    let pki = Pki::new();
    let leaf = pki.leaf("good", &["localhost", "127.0.0.1"], false);
    let tls = server(Some(&leaf), pages(true));
    let redirect = server(
        None,
        Answer::Redirect {
            status: 301,
            location: format!("https://localhost:{}/", tls.addr.port()),
        },
    );
    let (code, report, out) = run_https(&[
        format!("https://localhost:{}/", tls.addr.port()),
        "--ca".into(),
        pki.ca().display().to_string(),
        "--address".into(),
        "127.0.0.1".into(),
        "--name".into(),
        "127.0.0.1".into(),
        "--http-port".into(),
        redirect.addr.port().to_string(),
        "--backend".into(),
        "web1".into(),
        "--backend".into(),
        "web2".into(),
        "--requests".into(),
        "4".into(),
    ]);
    assert_eq!(code, 0, "{out}");
    let probes: Vec<String> = rows(&report).into_iter().map(|r| r.0).collect();
    let tls = |what: &str| format!("{}/https {what}", tls.addr.port());
    assert_eq!(
        probes,
        [
            "certificate localhost".to_string(),
            "expiry".into(),
            "certificate 127.0.0.1".into(),
            format!("redirect :{}", redirect.addr.port()),
            "hsts".into(),
            "rotation ×4".into(),
            tls("protocols"),
            tls("suites TLSv1.2"),
            tls("suites TLSv1.3"),
            tls("groups"),
            tls("certificate"),
            tls("chain"),
        ]
    );
    assert!(rows(&report).iter().all(|r| r.1 == "pass"), "{out}");
    // rustls speaks TLS 1.2 and 1.3 with the groups of the profile (X25519, P-256, P-384).
    assert_eq!(rows(&report)[6].2, "TLSv1.2, TLSv1.3", "{out}");
    assert_eq!(rows(&report)[9].2, "X25519, prime256v1, secp384r1", "{out}");
    let expiry = &report["checks"][1];
    assert!(expiry["days_left"].as_i64().unwrap() > 60, "{expiry}");
}

#[test]
fn expired_wrong_name_missing_hsts_and_a_missing_backend_are_findings() {
    let pki = Pki::new();
    let expired = pki.leaf("expired", &["localhost"], true);
    let wrong = pki.leaf("wrong", &["other.test"], false);
    let expired_server = server(Some(&expired), pages(true));
    let wrong_server = server(Some(&wrong), pages(false));
    let common = |port: u16| {
        vec![
            format!("https://localhost:{port}/"),
            "--ca".to_string(),
            pki.ca().display().to_string(),
            "--address".into(),
            "127.0.0.1".into(),
            "--no-redirect".into(),
        ]
    };

    let (code, report, out) = run_https(&common(expired_server.addr.port()));
    assert_eq!(code, 1, "{out}");
    assert_eq!(status_of(&report, "certificate localhost"), "fail");
    assert!(
        reason_of(&report, "certificate localhost").contains("expired"),
        "{out}"
    );
    assert_eq!(status_of(&report, "expiry"), "fail");
    // Everything behind the bad certificate is still checked and reported.
    let port = expired_server.addr.port();
    assert_eq!(
        status_of(&report, &format!("{port}/https protocols")),
        "pass"
    );
    assert_eq!(status_of(&report, &format!("{port}/https chain")), "fail");
    assert_eq!(status_of(&report, "hsts"), "pass");

    let mut args = common(wrong_server.addr.port());
    args.extend([
        "--backend".into(),
        "web3".into(),
        "--requests".into(),
        "2".into(),
    ]);
    let (code, report, out) = run_https(&args);
    assert_eq!(code, 1, "{out}");
    assert_eq!(status_of(&report, "certificate localhost"), "fail");
    assert!(
        reason_of(&report, "certificate localhost").contains("not valid for name"),
        "{out}"
    );
    assert_eq!(status_of(&report, "expiry"), "pass");
    assert_eq!(status_of(&report, "hsts"), "fail");
    assert_eq!(status_of(&report, "rotation ×2"), "fail");
}

#[test]
fn a_server_that_speaks_tls_1_0_is_caught() {
    let pki = Pki::new();
    let leaf = pki.leaf("old", &["localhost"], false);
    let port = free_port();
    let mut cmd = Command::new("openssl");
    cmd.args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-tls1"])
        .args(["-cipher", "DEFAULT:@SECLEVEL=0"])
        .arg("-cert")
        .arg(&leaf.cert)
        .arg("-key")
        .arg(&leaf.key);
    let _old = Proc::spawn_until(cmd, "ACCEPT", Duration::from_secs(5));
    let (code, report, out) = run_https(&[
        format!("https://localhost:{port}/"),
        "--ca".into(),
        pki.ca().display().to_string(),
        "--address".into(),
        "127.0.0.1".into(),
        "--no-redirect".into(),
        "--no-hsts".into(),
    ]);
    assert_eq!(code, 1, "{out}");
    let row = |what: &str| {
        rows(&report)
            .into_iter()
            .find(|r| r.0 == format!("{port}/https {what}"))
            .unwrap_or_else(|| panic!("no {what}: {out}"))
    };
    assert_eq!(
        row("protocol TLSv1"),
        (
            format!("{port}/https protocol TLSv1"),
            "fail".into(),
            "accepted".into()
        )
    );
    // `-tls1` means only TLS 1.0: the profile's versions are refused.
    assert_eq!(row("protocol TLSv1.2").2, "refused");
    assert_eq!(row("protocol TLSv1.3").2, "refused");
}

#[test]
fn an_unusable_ca_or_url_cannot_run() {
    let dir = tempdir("badca");
    let ca = dir.path.join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let (code, _, out) = run_https(&[
        "https://localhost:1/".into(),
        "--ca".into(),
        ca.display().to_string(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with(&format!(
            "reach: certificate file {} cannot be used: malformed PEM",
            ca.display()
        )),
        "{out}"
    );
    let (code, _, out) = run_https(&[
        "http://localhost/".into(),
        "--ca".into(),
        ca.display().to_string(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with("reach: URL \"http://localhost/\" is not valid"),
        "{out}"
    );
}

/// `reach check` derives the HTTPS endpoints from the topology: from `outside`, the load
/// balancer's public names (and its own name) with redirect, HSTS and rotation over every
/// web host; the backends are dropped by design and skipped.
#[test]
fn check_from_outside_covers_the_public_entry_and_skips_the_backends() {
    let dir = tempdir("checkhttps");
    let (https_port, http_port) = (free_port(), free_port());
    let topology = loopback::topology(&dir, &[("https", https_port), ("http", http_port)]);
    let t = rampart_topology::Topology::load(&topology).unwrap();
    let lb = loopback::address(0);
    let pki = Pki::new();
    let mut names: Vec<String> = t.public_names.clone();
    names.push(format!("lb.{}", t.domain));
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let leaf = pki.leaf("https", &name_refs, false);
    let _tls = support::tls::server_at(&format!("{lb}:{https_port}"), Some(&leaf), pages(true));
    let _redirect = support::tls::server_at(
        &format!("{lb}:{http_port}"),
        None,
        Answer::Redirect {
            status: 308,
            location: format!("https://{}/", names[0]),
        },
    );
    let (code, stdout, stderr) = outcome(
        Command::new(reach())
            .arg("check")
            .arg("--topology")
            .arg(&topology)
            .args(["--from", "outside", "--only", "https", "--json", "--ca"])
            .arg(pki.ca()),
    );
    assert_eq!(code, 0, "{stderr}{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let rows = rows(&report);
    for name in &names {
        assert!(
            rows.contains(&(
                format!("certificate {name}"),
                "pass".into(),
                "verified".into()
            )),
            "{stdout}"
        );
    }
    assert!(
        rows.contains(&(
            format!("redirect :{http_port}"),
            "pass".into(),
            format!("308 → https://{}/", names[0])
        )),
        "{stdout}"
    );
    assert!(
        rows.iter()
            .any(|r| r.0 == "rotation ×8" && r.1 == "pass" && r.2 == "web1, web2"),
        "{stdout}"
    );
    let skipped: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "skip")
        .map(|c| c["target"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["web1", "web2"]);
}
