//! `reach check` run on a host (`--from web2` inside a namespace holding web2's address):
//! its listening sockets against its declared services, and its live nftables ruleset
//! against the rendered file, with drift injected by the test.

mod support;

use serde_json::Value;
use support::*;

/// A stand-in for the rendered ruleset (the test needs no Nix): what reach compares the
/// live one with, loaded the same way.
const RENDERED: &str = "table inet rampart {}
delete table inet rampart
table inet rampart {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept comment \"established/related\"
    iifname \"lo\" accept comment \"loopback\"
    tcp dport 22 ip saddr 10.42.0.64/28 accept comment \"policy[4] ssh\"
  }
}
";

fn check(ns: &Netns, ruleset: &std::path::Path, only: &str) -> (i32, Value, String) {
    let (code, stdout, stderr) = outcome(
        ns.command(reach())
            .arg("check")
            .arg("--topology")
            .arg(topology_path())
            .args(["--from", "web2", "--only", only, "--json", "--ruleset"])
            .arg(ruleset),
    );
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (code, report, stdout + &stderr)
}

fn failed(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == "fail")
        .map(|c| {
            (
                c["probe"].as_str().unwrap_or_default().to_string(),
                format!("{} {}", c["observed"], c["reason"]),
            )
        })
        .collect()
}

#[test]
fn the_host_names_an_undeclared_listener_a_wildcard_bind_and_every_drifted_rule() {
    // web2's address on the namespace's loopback: enough to be web2 here.
    let ns = Netns::new("oh");
    run(ns
        .command("ip")
        .args(["addr", "add", "10.42.0.12/32", "dev", "lo"]));
    let dir = tempdir("onhost");
    let rendered = dir.path.join("ruleset.nft");
    std::fs::write(&rendered, RENDERED).unwrap();
    ns.nft(RENDERED);
    // ssh declared on web2's address; something on every address at 5555.
    let _ssh = listener(&ns, "10.42.0.12", 22);
    let _stray = listener(&ns, "0.0.0.0", 5555);

    let (code, report, out) = check(&ns, &rendered, "listeners,ruleset");
    assert_eq!(code, 1, "{out}");
    let found = failed(&report);
    let line = |probe: &str| {
        found
            .iter()
            .find(|(p, _)| p == probe)
            .unwrap_or_else(|| panic!("no failed {probe}: {found:#?}"))
            .1
            .clone()
    };
    assert!(line("tcp/0.0.0.0:5555").contains("openssl (pid "), "{out}");
    // The declared services nothing listens for are named too (this is no real web2).
    assert!(line("tcp/3306/mysql").contains("nothing listens"), "{out}");
    assert!(!found.iter().any(|(p, _)| p.contains(":22")), "{out}");
    assert!(
        !found
            .iter()
            .any(|(p, _)| p.contains("ruleset") || p.contains("rule")),
        "{out}"
    );

    // Drift: one rule added, one removed.
    run(ns.command("nft").args([
        "insert", "rule", "inet", "rampart", "input", "tcp", "dport", "5555", "accept",
    ]));
    let listing = run(ns
        .command("nft")
        .args(["-a", "list", "chain", "inet", "rampart", "input"]));
    let handle = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .find(|l| l.contains("policy[4] ssh"))
        .and_then(|l| l.rsplit_once("# handle "))
        .map(|(_, h)| h.trim().to_string())
        .unwrap();
    run(ns.command("nft").args([
        "delete", "rule", "inet", "rampart", "input", "handle", &handle,
    ]));
    let (code, report, out) = check(&ns, &rendered, "ruleset");
    assert_eq!(code, 1, "{out}");
    let drift = failed(&report);
    assert_eq!(drift.len(), 2, "{drift:#?}");
    assert_eq!(drift[0].0, "inet rampart input: live rule", "{out}");
    assert!(drift[0].1.contains("tcp dport 5555 accept"), "{out}");
    assert_eq!(drift[1].0, "inet rampart input: rendered rule", "{out}");
    let missing = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["probe"] == "inet rampart input: rendered rule")
        .unwrap();
    assert!(
        missing["expected"]
            .as_str()
            .unwrap()
            .contains("policy[4] ssh"),
        "{out}"
    );

    // A UDP accept rule shows as exposure, judged on the live ruleset alone.
    run(ns.command("nft").args([
        "insert", "rule", "inet", "rampart", "input", "udp", "dport", "53", "accept",
    ]));
    let (_, report, out) = check(&ns, &rendered, "ruleset");
    let udp = failed(&report);
    assert!(
        udp.iter()
            .any(|(p, why)| p == "udp exposure" && why.contains("udp dport 53 accept")),
        "{out}"
    );
}

#[test]
fn without_a_rendered_ruleset_the_group_is_skipped_and_off_host_neither_applies() {
    let ns = Netns::new("os");
    for address in ["10.42.0.12/32", "10.42.0.200/32"] {
        run(ns.command("ip").args(["addr", "add", address, "dev", "lo"]));
    }
    let skipped = |from: &str, only: &str| {
        let (code, stdout, stderr) = outcome(
            ns.command(reach())
                .arg("check")
                .arg("--topology")
                .arg(topology_path())
                .args(["--from", from, "--only", only, "--json"]),
        );
        assert_eq!(code, 0, "{stdout}{stderr}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        probe_rows(&report)
            .into_iter()
            .map(|r| (r.0, r.1))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        skipped("outside", "listeners,ruleset"),
        [
            ("listeners".to_string(), "skip".to_string()),
            ("ruleset".into(), "skip".into())
        ]
    );
    assert_eq!(
        skipped("web2", "ruleset"),
        [("ruleset".to_string(), "skip".to_string())]
    );
}
