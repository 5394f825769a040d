//! The lab's network fabric as `infralab up --fabric-only` and `infralab down` build and
//! remove it. Each test uses its own namespace prefix and state directory, so it never
//! meets a running lab or another test; a guard takes everything down even on failure.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rampart_lab::netns;

mod common;

use common::infralab;

/// A lab of this test's own; dropping it removes whatever is left.
struct TestLab {
    prefix: String,
    state: PathBuf,
}

impl TestLab {
    fn new(tag: &str) -> TestLab {
        let prefix = format!("rlt-{tag}{}.", std::process::id());
        let state = std::env::temp_dir().join(format!("rampart-lab-{tag}-{}", std::process::id()));
        TestLab { prefix, state }
    }

    fn run(&self, command: &str, extra: &[&str]) -> Output {
        let mut args = vec![command, "--prefix", &self.prefix, "--state"];
        args.push(self.state.to_str().unwrap());
        args.extend(extra);
        infralab(&args)
    }

    fn namespaces(&self) -> Vec<String> {
        netns::list()
            .unwrap()
            .into_iter()
            .filter(|ns| ns.starts_with(&self.prefix))
            .collect()
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = self.run("down", &[]);
        for ns in self.namespaces() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

fn up(lab: &TestLab) {
    let out = lab.run("up", &["--fabric-only"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn up_gives_every_node_its_address_and_hosts_reach_each_other() {
    let lab = TestLab::new("fab");
    up(&lab);
    let mut expected: Vec<String> = ["_bridge", "lb", "web1", "web2", "outside", "admin"]
        .iter()
        .map(|n| format!("{}{n}", lab.prefix))
        .collect();
    expected.sort();
    assert_eq!(lab.namespaces(), expected);

    let addr = Command::new("ip")
        .args([
            "-n",
            &format!("{}web1", lab.prefix),
            "-4",
            "-o",
            "addr",
            "show",
            "eth0",
        ])
        .output()
        .unwrap();
    let addr = String::from_utf8(addr.stdout).unwrap();
    assert!(addr.contains("10.42.0.11/24"), "{addr}");

    // A listener inside web1 answers a client inside lb, across the bridge.
    let web1: SocketAddr = (Ipv4Addr::new(10, 42, 0, 11), 18080).into();
    let listener: TcpListener = netns::run_in(&format!("{}web1", lab.prefix), move || {
        TcpListener::bind(web1)
    })
    .unwrap()
    .unwrap();
    let lb = format!("{}lb", lab.prefix);
    assert!(netns::can_connect(&lb, web1, Duration::from_secs(2)).unwrap());
    drop(listener);
    // The machine's own namespace has no route to the lab.
    assert!(!Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("10.42.0."))
        .unwrap());

    let status = lab.run("status", &[]);
    assert!(status.status.success());
    assert!(String::from_utf8_lossy(&status.stdout).contains("web2"));
    let status = lab.run("status", &["--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(doc["type"], "status");
    let nodes = doc["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 5);
    assert!(nodes
        .iter()
        .all(|n| n["type"] == "node" && n["present"] == true));

    let down = lab.run("down", &[]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(lab.namespaces().is_empty());
    assert!(!lab.state.exists());
    // No lab is a finding for status, not an error.
    assert_eq!(lab.run("status", &["--json"]).status.code(), Some(1));
}

#[test]
fn down_after_a_crash_removes_namespaces_and_their_processes() {
    let lab = TestLab::new("crash");
    up(&lab);
    // A process the record does not know about, as if `up` died right after starting it,
    // and the record itself lost.
    let mut stray = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("{}web2", lab.prefix),
            "sleep",
            "600",
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    std::fs::remove_file(lab.state.join("lab.json")).unwrap();

    let down = lab.run("down", &[]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let text = String::from_utf8_lossy(&down.stdout);
    assert!(
        text.contains("removed 6 namespaces and 1 processes"),
        "{text}"
    );
    assert!(lab.namespaces().is_empty());
    let status = stray.wait().unwrap();
    assert!(!status.success(), "the stray process was ended by a signal");
}

#[test]
fn up_twice_replaces_the_first_lab() {
    let lab = TestLab::new("twice");
    up(&lab);
    up(&lab);
    assert_eq!(lab.namespaces().len(), 6);
}

#[test]
fn a_bad_prefix_is_refused_before_anything_is_made() {
    let out = infralab(&[
        "up",
        "--fabric-only",
        "--prefix",
        "rlt-nodot",
        "--state",
        "/nonexistent/x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--prefix \"rlt-nodot\" is not usable"),
        "{err}"
    );
}

#[test]
fn test_without_a_lab_or_with_an_unknown_scenario_cannot_run() {
    let lab = TestLab::new("nolab");
    let out = lab.run("test", &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run `infralab up` first"), "{err}");

    let out = lab.run("test", &["https", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    // Every valid name is listed, the seven among them.
    assert!(
        err.contains("unknown scenario \"nosuch\" (expected one of: soak, https, "),
        "{err}"
    );
    for name in [
        "firewall",
        "backend-tls",
        "replication",
        "qps-alert",
        "backend-down",
        "cert-expiry",
    ] {
        assert!(err.contains(name), "{err}");
    }
}
