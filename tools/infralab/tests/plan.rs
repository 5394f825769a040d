//! `infralab plan` as a user runs it.

mod common;

use common::{infralab, repo};

#[test]
fn plan_prints_hosts_and_the_matrix() {
    let out = infralab(&["plan"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("lb    10.42.0.10"), "{text}");
    // The internet reaches HTTPS on the load balancer but never a backend.
    let https = text.lines().find(|l| l.starts_with("lb      443")).unwrap();
    assert!(https.ends_with("✔        ✔"), "{https}");
    let backend = text
        .lines()
        .find(|l| l.starts_with("web1    8443"))
        .unwrap();
    assert!(
        backend.contains("✔       (self)  ·       ·        ·"),
        "{backend}"
    );
}

#[test]
fn plan_json_has_a_type_on_every_record() {
    let out = infralab(&["plan", "--json"]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["type"], "plan");
    assert_eq!(doc["hosts"].as_array().unwrap().len(), 3);
    let mysql_on_web1 = doc["reachability"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["host"] == "web1" && r["port"] == 3306)
        .unwrap();
    assert_eq!(mysql_on_web1["type"], "reachability");
    assert_eq!(mysql_on_web1["allowed"]["web2"], true);
    assert_eq!(mysql_on_web1["allowed"]["lb"], false);
    assert_eq!(mysql_on_web1["allowed"]["outside"], false);
    assert!(mysql_on_web1["allowed"].get("web1").is_none());
}

#[test]
fn a_bad_topology_exits_2_with_every_problem() {
    let dir = std::env::temp_dir().join(format!("rampart-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("hosts/topology.json")).unwrap())
            .unwrap();
    doc["policy"][3]["from"] = serde_json::json!(["web3"]);
    doc["monitoring"]["qpsThreshold"] = serde_json::json!(-1);
    std::fs::write(&path, doc.to_string()).unwrap();
    let out = infralab(&["plan", "--topology", path.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("policy[3].from: unknown host \"web3\""),
        "{err}"
    );
    assert!(
        err.contains("monitoring.qpsThreshold: -1 is not a positive number"),
        "{err}"
    );
}

#[test]
fn a_missing_topology_exits_2_naming_the_file() {
    let out = infralab(&["plan", "--topology", "/nonexistent/topology.json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("/nonexistent/topology.json"), "{err}");
    // The cause is printed once, not once by the error and again by anyhow's chain.
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}
