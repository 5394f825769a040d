//! The full sweep against nftables in network namespaces this test creates: a listener
//! is found among 65,535 ports, a reset port is closed, the rest filtered; no half-open
//! connection stays on the target and no conntrack entry on a firewalled vantage (raw
//! probes); unprivileged, the same answers through connect probes.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const TARGET: &str = "10.201.0.1";
const VANTAGE: &str = "10.201.0.9";

/// A target behind a default-drop firewall (7001 open, 7002 reset) and a vantage whose
/// own firewall tracks connections, as a topology host's does.
fn fabric(tag: &str) -> (Netns, Netns, Proc) {
    let target = Netns::new(&format!("{tag}t"));
    let vantage = Netns::new(&format!("{tag}v"));
    link(
        &target,
        &[format!("{TARGET}/24")],
        &vantage,
        &[format!("{VANTAGE}/24")],
    );
    target.nft(
        "table inet t { chain input { type filter hook input priority 0; policy drop;
           ct state established,related accept
           ct state invalid drop
           iif lo accept
           tcp dport 7001 accept
           tcp dport 7002 reject with tcp reset
         }
       }",
    );
    vantage.nft(
        "table inet v { chain input { type filter hook input priority 0; policy drop;
           ct state established,related accept
           ct state invalid drop
           iif lo accept
         }
       }",
    );
    let listener = listener(&target, TARGET, 7001);
    (target, vantage, listener)
}

fn sweep(vantage: &Netns, extra: &[&str], unprivileged: bool) -> (Value, Duration, String) {
    let mut cmd = vantage.command(if unprivileged { "setpriv" } else { "env" });
    if unprivileged {
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    }
    cmd.arg(reach())
        .args([
            "sweep",
            TARGET,
            "--source",
            VANTAGE,
            "--timeout",
            "500ms",
            "--json",
        ])
        .args(extra);
    let started = Instant::now();
    let (code, stdout, stderr) = outcome(&mut cmd);
    let took = started.elapsed();
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    (report, took, stdout)
}

/// (summary observed, summary reason, open ports listed).
fn verdict(report: &Value) -> (String, String, Vec<String>) {
    let checks = report["checks"].as_array().unwrap();
    let summary = &checks[0];
    let open = checks[1..]
        .iter()
        .map(|c| c["probe"].as_str().unwrap().to_string())
        .collect();
    (
        summary["observed"].as_str().unwrap().to_string(),
        summary["reason"].as_str().unwrap().to_string(),
        open,
    )
}

fn count(ns: &Netns, path: &str) -> u64 {
    let out = run(ns.command("cat").arg(path));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn raw_probes_find_the_listener_among_every_port_and_leave_nothing_behind() {
    let (target, vantage, _listener) = fabric("sw");
    let (report, took, out) = sweep(&vantage, &[], false);
    let (observed, reason, open) = verdict(&report);
    assert_eq!(observed, "1 open, 1 closed, 65533 filtered", "{out}");
    assert_eq!(open, ["7001"], "{out}");
    assert!(reason.starts_with("raw SYN (AF_PACKET), "), "{reason}");
    // Two rounds (one retry), each one timeout after its last probe: well under nmap's
    // 13 s for one tuned host.
    assert!(took < Duration::from_secs(8), "took {took:?}");
    // Every SYN-ACK got a RST: nothing half-open on the target.
    let half_open = run(target.command("ss").args(["-Htan", "state", "syn-recv"]));
    assert!(half_open.stdout.is_empty(), "{:?}", half_open);
    // Frames never crossed the vantage's netfilter hooks: its conntrack table holds none
    // of the 131,070 probes.
    let tracked = count(&vantage, "/proc/sys/net/netfilter/nf_conntrack_count");
    assert!(tracked < 10, "{tracked} conntrack entries on the vantage");
}

#[test]
fn unprivileged_the_sweep_falls_back_to_connect_probes_with_the_same_answers() {
    let (_target, vantage, _listener) = fabric("sc");
    let (report, _, out) = sweep(&vantage, &["--ports", "6990-7010"], true);
    let (observed, reason, open) = verdict(&report);
    assert_eq!(observed, "1 open, 1 closed, 19 filtered", "{out}");
    assert_eq!(open, ["7001"], "{out}");
    assert!(
        reason.starts_with("connect, ") && reason.contains("raw probes unavailable"),
        "{reason}"
    );
    // Asked for explicitly where it cannot run, raw is an error (exit 2), not a fallback.
    let (code, _, stderr) = outcome(
        vantage
            .command("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(reach())
            .args(["sweep", TARGET, "--ports", "7001", "--sweep-method", "raw"]),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("raw SYN sweep unavailable"), "{stderr}");
}

#[test]
fn a_bad_port_range_cannot_run() {
    let (code, _, stderr) =
        outcome(Command::new(reach()).args(["sweep", "127.0.0.1", "--ports", "9-2"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("\"9-2\" is not a port range"), "{stderr}");
}
