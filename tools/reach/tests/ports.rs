//! Port states and the port policy, against real listeners and nftables rules in network
//! namespaces this test creates: a listener is open, `reject with tcp reset` is closed,
//! `drop` is filtered.

mod support;

use std::time::{Duration, Instant};

use rampart_topology::{Source, Topology};
use serde_json::Value;
use support::*;

fn checks(stdout: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(v["type"], "report");
    v["checks"].as_array().unwrap().clone()
}

#[test]
fn open_closed_and_filtered_with_nmap_reasons_in_about_one_timeout() {
    let target = Netns::new("pt");
    let vantage = Netns::new("pv");
    link(
        &target,
        &["10.200.0.1/24".into()],
        &vantage,
        &["10.200.0.2/24".into()],
    );
    target.nft(
        "table inet t { chain input { type filter hook input priority 0; policy accept;
           tcp dport 7002 reject with tcp reset
           tcp dport 7003 drop
         }
       }",
    );
    let _open = listener(&target, "10.200.0.1", 7001);

    let started = Instant::now();
    let (code, stdout, stderr) = outcome(vantage.command(reach()).args([
        "ports",
        "10.200.0.1",
        "7001=open",
        "7002=closed",
        "7003=filtered",
        "7004=blocked",
        "--timeout",
        "500ms",
        "--json",
    ]));
    let took = started.elapsed();
    assert_eq!(code, 0, "{stdout}{stderr}");
    let found: Vec<(String, String)> = checks(&stdout)
        .iter()
        .map(|c| {
            (
                c["observed"].as_str().unwrap().to_string(),
                c["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("open", "syn-ack"),
        ("closed", "conn-refused"),
        ("filtered", "no-response"),
        ("closed", "conn-refused"),
    ];
    assert_eq!(
        found,
        expected.map(|(a, b)| (a.to_string(), b.to_string())),
        "{stdout}"
    );
    // Probes run concurrently: the filtered one costs one timeout, not one per port.
    assert!(took < Duration::from_millis(1500), "took {took:?}");

    // A wrong expectation is a finding (exit 1), shown in the table with ✘.
    let (code, stdout, _) = outcome(vantage.command(reach()).args([
        "ports",
        "10.200.0.1",
        "7001=filtered",
        "--timeout",
        "500ms",
    ]));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains('✘'), "{stdout}");
}

#[test]
fn an_unresolvable_host_cannot_run() {
    let (code, _, stderr) =
        outcome(std::process::Command::new(reach()).args(["ports", "no-such-host.invalid", "80"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("reach: cannot resolve \"no-such-host.invalid\""),
        "{stderr}"
    );
}

/// Builds the shipped topology's hosts as addresses of one target namespace, with an
/// nftables ruleset that follows the policy for `outside` (allowed: accept, everything
/// else: drop), except that it rejects web1's ssh with a reset and wrongly opens web2's
/// mysql. The check must pass every port but web2's mysql, and call web1's ssh closed.
#[test]
fn the_policy_check_from_outside_reports_closed_filtered_and_a_wrong_open_port() {
    let topology = Topology::load(&topology_path()).unwrap();
    let lab = topology.lab.clone().unwrap();
    let prefix = topology.network.prefix();
    let target = Netns::new("ct");
    let vantage = Netns::new("cv");
    let host_addrs: Vec<String> = topology
        .hosts
        .iter()
        .map(|h| format!("{}/{prefix}", h.address))
        .collect();
    link(
        &target,
        &host_addrs,
        &vantage,
        &[format!("{}/{prefix}", lab.outside)],
    );
    let web1 = topology.host("web1").unwrap();
    let web2 = topology.host("web2").unwrap();
    let ssh = topology.services["ssh"].port;
    let mysql = topology.services["mysql"].port;
    let mut rules = String::from(
        "table inet t { chain input { type filter hook input priority 0; policy drop;\n\
         ct state established,related accept\n iif lo accept\n",
    );
    rules.push_str(&format!(
        " ip daddr {} tcp dport {ssh} reject with tcp reset\n",
        web1.address
    ));
    rules.push_str(&format!(
        " ip daddr {} tcp dport {mysql} accept\n",
        web2.address
    ));
    let mut listeners = vec![listener(&target, &web2.address.to_string(), mysql)];
    for e in topology.expectations(Source::Address(lab.outside)) {
        if e.allowed {
            rules.push_str(&format!(
                " ip daddr {} tcp dport {} accept\n",
                e.address, e.port
            ));
            listeners.push(listener(&target, &e.address.to_string(), e.port));
        }
    }
    rules.push_str("}\n}\n");
    target.nft(&rules);

    let started = Instant::now();
    let (code, stdout, stderr) = outcome(
        vantage
            .command(reach())
            .arg("check")
            .arg("--topology")
            .arg(topology_path())
            .args([
                "--from",
                "outside",
                "--only",
                "ports",
                "--timeout",
                "500ms",
                "--json",
            ]),
    );
    let took = started.elapsed();
    assert_eq!(code, 1, "{stdout}{stderr}");
    let checks = checks(&stdout);
    assert_eq!(
        checks.len(),
        topology.expectations(Source::Address(lab.outside)).len()
    );
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| format!("{} {} {}", c["target"], c["probe"], c["observed"]))
        .collect();
    assert_eq!(failed, [format!("\"web2\" \"{mysql}/mysql\" \"open\"")]);
    let web1_ssh = checks
        .iter()
        .find(|c| c["target"] == "web1" && c["probe"] == format!("{ssh}/ssh"))
        .unwrap();
    assert_eq!(web1_ssh["status"], "pass");
    assert_eq!(web1_ssh["observed"], "closed");
    assert_eq!(web1_ssh["expected"], "closed|filtered");
    let filtered = checks
        .iter()
        .filter(|c| c["observed"] == "filtered")
        .count();
    assert!(filtered > 10, "{stdout}");
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    drop(listeners);

    // The same command from a vantage whose address this namespace does not have.
    let (code, _, stderr) = outcome(
        vantage
            .command(reach())
            .arg("check")
            .arg("--topology")
            .arg(topology_path())
            .args(["--from", "web1", "--only", "ports"]),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "reach: vantage web1 has address {}, which is not an address of this machine",
            web1.address
        )),
        "{stderr}"
    );
}

#[test]
fn an_unknown_vantage_cannot_run() {
    let (code, _, stderr) = outcome(
        std::process::Command::new(reach())
            .arg("check")
            .arg("--topology")
            .arg(topology_path())
            .args(["--from", "web9"]),
    );
    assert_eq!(code, 2);
    assert_eq!(
        stderr.trim(),
        "reach: unknown vantage \"web9\" for --from (expected one of: lb, web1, web2, outside, admin)"
    );
}

#[test]
fn a_missing_topology_cannot_run_and_certificates_without_a_pki_directory_are_skipped() {
    let (code, _, stderr) = outcome(std::process::Command::new(reach()).args([
        "check",
        "--topology",
        "/nonexistent/topology.json",
        "--from",
        "lb",
    ]));
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("topology: cannot read /nonexistent/topology.json"),
        "{stderr}"
    );

    // On loopback every host address is local; this machine has no rampart PKI.
    let dir = tempdir("nopki");
    let topology = loopback::topology(&dir, &[]);
    let (code, stdout, stderr) = outcome(
        std::process::Command::new(reach())
            .arg("check")
            .arg("--topology")
            .arg(&topology)
            .args(["--from", "web1", "--only", "certificates", "--json"]),
    );
    let checks = checks(&stdout);
    if std::path::Path::new("/var/lib/rampart/pki").is_dir() {
        // A machine that does hold a rampart PKI gets its files checked instead.
        assert_ne!(checks[0]["status"], "skip", "{stdout}");
        return;
    }
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0]["status"], "skip");
    assert_eq!(
        checks[0]["reason"],
        "no PKI directory at /var/lib/rampart/pki; pass --pki-dir DIR"
    );
}
