//! The live nftables ruleset of the vantage host against the rendered one, rule by rule,
//! and the UDP it admits.
//!
//! Both sides come out of the same `nft` (the rendered file is loaded into a scratch
//! namespace), so equal rules compare equal whatever their spelling in the file. Each
//! chain's rules are aligned in order (a longest common subsequence): a rendered rule
//! the kernel does not hold is one ✘ line, a live rule nobody rendered another, so a
//! rule edited in place shows as the two. Tables, chain declarations (hook, priority,
//! policy) and named sets and objects are compared too. The tables the database hosts'
//! tools add at run time (docs/failover.md) are listed, not failed: the rampart-db fence
//! while a demoted primary waits for `rampart-db rejoin`, and the failover agent's writer
//! gate.
//!
//! UDP is judged on the live ruleset, because a UDP sweep cannot tell a dropped datagram
//! from an unanswered one: a datagram gets in only when every input hook chain admits it
//! (a rule that accepts UDP, or a chain that accepts by policy), and the topology
//! declares no UDP service.

use std::path::Path;

use serde_json::Value;

use crate::report::{Check, Kind, Status};
use rampart_probe::nft::{Chain, Rule, Ruleset};

/// Tables the database hosts' tools add at run time, listed (with their rules), not
/// failed: `(family, table, what it is)`.
const RUNTIME_TABLES: [(&str, &str, &str); 2] = [
    // `rampart_database::fence::TABLE`
    (
        "inet",
        "rampart-fence",
        "the rampart-db fence of a demoted primary (docs/failover.md); `rampart-db rejoin` lifts it",
    ),
    // `rampart_failover::gate::TABLE`
    (
        "inet",
        "rampart-gate",
        "the failover agent's writer gate (docs/failover.md): MariaDB's port admitted only while this host holds the leader lease",
    ),
];

/// What a table the tools add at run time is, or `None` for any other table.
fn runtime_table(family: &str, table: &str) -> Option<&'static str> {
    RUNTIME_TABLES
        .iter()
        .find(|(f, t, _)| (*f, *t) == (family, table))
        .map(|(_, _, what)| *what)
}

fn is_runtime(family: &str, table: &str) -> bool {
    runtime_table(family, table).is_some()
}

/// Every check of the `ruleset` group on `target`.
pub fn judge(target: &str, live: &Ruleset, rendered: &Ruleset, rendered_path: &Path) -> Vec<Check> {
    let reload = format!(
        "reload the rendered ruleset (`nft -f {}`, or nixos-rebuild switch)",
        rendered_path.display()
    );
    let mut out = Vec::new();
    let check = |probe: String| Check::new("ruleset", target, probe);

    for (family, table) in &rendered.tables {
        if !live.tables.contains(&(family.clone(), table.clone())) {
            out.push(
                check(format!("table {family} {table}"))
                    .judged(false, "present", "absent")
                    .with_reason(format!("the host has no {family} {table} table: {reload}")),
            );
        }
    }
    for (family, table) in &live.tables {
        if rendered.tables.contains(&(family.clone(), table.clone())) {
            continue;
        }
        if let Some(what) = runtime_table(family, table) {
            let rules = live
                .rules
                .iter()
                .filter(|r| r.family == *family && r.table == *table)
                .map(|r| r.text.clone())
                .collect::<Vec<_>>();
            let mut c = check(format!("table {family} {table}"))
                .with_status(Status::Info)
                .with_reason(what);
            c.observed = rules.join("; ");
            out.push(c);
            continue;
        }
        out.push(
            check(format!("table {family} {table}"))
                .judged(false, "absent (not rendered)", "present")
                .with_reason(format!(
                    "a table nobody rendered: `nft delete table {family} {table}`, or add what it does to the topology and render again"
                )),
        );
    }

    // Chains: in either ruleset, the run-time tables aside.
    let mut chain_keys: Vec<(String, String, String)> = Vec::new();
    for c in rendered.chains.iter().chain(&live.chains) {
        let key = (c.family.clone(), c.table.clone(), c.name.clone());
        if !is_runtime(&c.family, &c.table) && !chain_keys.contains(&key) {
            chain_keys.push(key);
        }
    }
    let mut identical_rules = 0;
    for (family, table, name) in &chain_keys {
        let find = |set: &'_ Ruleset| -> Option<Chain> {
            set.chains
                .iter()
                .find(|c| c.family == *family && c.table == *table && c.name == *name)
                .cloned()
        };
        let label = format!("{family} {table} {name}");
        match (find(rendered), find(live)) {
            (Some(want), Some(got)) if want.declaration != got.declaration => out.push(
                check(format!("chain {label}"))
                    .judged(false, want.declaration, got.declaration)
                    .with_reason(format!(
                        "the chain's hook, priority or policy differs: {reload}"
                    )),
            ),
            (Some(_), None) => out.push(
                check(format!("chain {label}"))
                    .judged(false, "present", "absent")
                    .with_reason(format!("a rendered chain is missing: {reload}")),
            ),
            (None, Some(_)) => out.push(
                check(format!("chain {label}"))
                    .judged(false, "absent (not rendered)", "present")
                    .with_reason(format!("a chain nobody rendered: {reload}")),
            ),
            _ => {}
        }
        let rules = |set: &'_ Ruleset| -> Vec<Rule> {
            set.rules
                .iter()
                .filter(|r| r.family == *family && r.table == *table && r.chain == *name)
                .cloned()
                .collect()
        };
        let (want, got) = (rules(rendered), rules(live));
        for step in align(&want, &got) {
            match step {
                Step::Same => identical_rules += 1,
                Step::Missing(r) => out.push(
                    check(format!("{label}: rendered rule"))
                        .judged(false, r.text.clone(), "missing")
                        .with_reason(format!("the live chain lacks this rendered rule: {reload}")),
                ),
                Step::Extra(r) => out.push(
                    check(format!("{label}: live rule"))
                        .judged(false, "absent (not rendered)", r.text.clone())
                        .with_reason(format!(
                            "a live rule nobody rendered: remove it ({reload}), or put what it allows in hosts/topology.json and render again"
                        )),
                ),
            }
        }
    }

    for (key, want) in &rendered.objects {
        match live.objects.get(key) {
            Some(got) if got == want => {}
            Some(_) => out.push(
                check(format!("{} {} {}", key.0, key.1, key.2))
                    .judged(false, "as rendered", "different")
                    .with_reason(format!("its contents differ: {reload}")),
            ),
            None => out.push(
                check(format!("{} {} {}", key.0, key.1, key.2))
                    .judged(false, "present", "absent")
                    .with_reason(reload.clone()),
            ),
        }
    }
    for key in live.objects.keys() {
        if !rendered.objects.contains_key(key) && !is_runtime(&key.0, &key.1) {
            out.push(
                check(format!("{} {} {}", key.0, key.1, key.2))
                    .judged(false, "absent (not rendered)", "present")
                    .with_reason(reload.clone()),
            );
        }
    }

    if !out.iter().any(|c| c.status == Status::Fail) {
        let tables: Vec<String> = rendered
            .tables
            .iter()
            .map(|(f, t)| format!("{f} {t}"))
            .collect();
        out.insert(
            0,
            check(format!("table {}", tables.join(", "))).judged(
                true,
                format!("as {}", rendered_path.display()),
                format!(
                    "{} chains, {identical_rules} rules as rendered",
                    chain_keys.len()
                ),
            ),
        );
    }
    // Every ✘ so far is a difference between the two rulesets.
    let mut out: Vec<Check> = out
        .into_iter()
        .map(|c| match c.status {
            Status::Fail => c.with_kind(Kind::FirewallDrift),
            _ => c,
        })
        .collect();
    out.push(udp_exposure(target, live));
    out
}

/// One step of aligning a chain's rendered rules with its live ones.
enum Step<'a> {
    Same,
    Missing(&'a Rule),
    Extra(&'a Rule),
}

/// The longest common subsequence of the two rule lists (by rule body), as the steps
/// that turn `want` into `got`.
fn align<'a>(want: &'a [Rule], got: &'a [Rule]) -> Vec<Step<'a>> {
    let (n, m) = (want.len(), got.len());
    // lcs[i][j]: the LCS length of want[i..] and got[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if want[i].body == got[j].body {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut steps = Vec::new();
    while i < n || j < m {
        if i < n && j < m && want[i].body == got[j].body {
            steps.push(Step::Same);
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            steps.push(Step::Extra(&got[j]));
            j += 1;
        } else {
            steps.push(Step::Missing(&want[i]));
            i += 1;
        }
    }
    steps
}

/// Does a rule accept new UDP datagrams from other hosts? Judged from its matches: a
/// transport other than UDP, the loopback interface, or connection states that are not
/// new (replies) each rule that out; a rule without such a match admits UDP.
fn admits_udp(expr: &Value) -> bool {
    let Some(items) = expr.as_array() else {
        return false;
    };
    let accepts = items.iter().any(|e| e.get("accept").is_some());
    if !accepts {
        return false;
    }
    let names = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            Value::Object(o) => o
                .get("set")
                .map(|s| {
                    s.as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    };
    for item in items {
        let Some(m) = item.get("match") else { continue };
        let (left, right) = (&m["left"], &m["right"]);
        if let Some(p) = left.get("payload") {
            let protocol = p["protocol"].as_str().unwrap_or_default();
            let field = p["field"].as_str().unwrap_or_default();
            if (protocol == "ip" && field == "protocol")
                || (protocol == "ip6" && field == "nexthdr")
            {
                if !names(right).iter().any(|n| n == "udp" || n == "udplite") {
                    return false;
                }
            } else if !matches!(
                protocol,
                "ip" | "ip6" | "ether" | "vlan" | "udp" | "udplite" | ""
            ) {
                // A transport header other than UDP's (tcp, icmp, icmpv6, sctp, …).
                return false;
            }
        }
        if let Some(meta) = left.get("meta") {
            let key = meta["key"].as_str().unwrap_or_default();
            let values = names(right);
            let udp = values.iter().any(|n| n == "udp" || n == "udplite");
            let loopback = values.iter().any(|n| n == "lo");
            if (key == "l4proto" && !udp) || (matches!(key, "iifname" | "iif") && loopback) {
                return false;
            }
        }
        if left.get("ct").is_some_and(|ct| ct["key"] == "state") {
            let states = names(right);
            if !states.iter().any(|s| s == "new" || s == "untracked") {
                return false;
            }
        }
    }
    true
}

/// The `udp exposure` check: which input chains admit new UDP, and whether all do.
fn udp_exposure(target: &str, live: &Ruleset) -> Check {
    let check = Check::new("ruleset", target, "udp exposure");
    let expected = "none (the topology declares no UDP service)";
    let inputs: Vec<&Chain> = live
        .chains
        .iter()
        .filter(|c| c.hook.as_deref() == Some("input") && c.family != "arp" && c.family != "bridge")
        .collect();
    if inputs.is_empty() {
        return check
            .judged(false, expected, "every datagram: no input chain filters")
            .with_reason("the host has no nftables input chain at all: load the rendered ruleset");
    }
    let mut admitting = Vec::new();
    let mut all_admit = true;
    for c in &inputs {
        let rules: Vec<&Rule> = live
            .rules
            .iter()
            .filter(|r| r.family == c.family && r.table == c.table && r.chain == c.name)
            .filter(|r| admits_udp(&r.expr))
            .collect();
        let by_policy = c.policy.as_deref() != Some("drop");
        if rules.is_empty() && !by_policy {
            all_admit = false;
        }
        for r in rules {
            admitting.push(format!("{} {} {}: {}", c.family, c.table, c.name, r.text));
        }
    }
    if all_admit {
        let mut why = admitting.clone();
        if why.is_empty() {
            why.push("every input chain accepts by policy".into());
        }
        check
            .judged(false, expected, "admitted")
            .with_reason(format!(
                "{}: remove the rule, or declare the UDP service",
                why.join("; ")
            ))
    } else {
        let observed = if admitting.is_empty() {
            "none: no input rule admits new UDP".to_string()
        } else {
            format!(
                "none: another input chain drops what {} admits",
                admitting.join("; ")
            )
        };
        check.judged(true, expected, observed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(chain: &str, text: &str, expr: Value) -> Rule {
        Rule {
            family: "inet".into(),
            table: "rampart".into(),
            chain: chain.into(),
            body: json!({"expr": expr, "comment": null}).to_string(),
            text: text.into(),
            expr,
        }
    }

    fn input(policy: &str) -> Chain {
        Chain {
            family: "inet".into(),
            table: "rampart".into(),
            name: "input".into(),
            declaration: format!("type filter hook input priority 0; policy {policy}"),
            hook: Some("input".into()),
            policy: Some(policy.into()),
        }
    }

    fn tcp_accept(port: u16) -> Value {
        json!([{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": port}}, {"accept": null}])
    }

    fn udp_accept(port: u16) -> Value {
        json!([{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": port}}, {"accept": null}])
    }

    fn ruleset(rules: Vec<Rule>, policy: &str) -> Ruleset {
        Ruleset {
            tables: vec![("inet".into(), "rampart".into())],
            chains: vec![input(policy)],
            rules,
            objects: Default::default(),
        }
    }

    #[test]
    fn identical_rulesets_pass_in_one_line() {
        let r = ruleset(
            vec![rule("input", "tcp dport 22 accept", tcp_accept(22))],
            "drop",
        );
        let checks = judge("web1", &r, &r, Path::new("/r.nft"));
        assert_eq!(checks.len(), 2, "{checks:#?}");
        assert_eq!(checks[0].status, Status::Pass);
        assert_eq!(checks[0].observed, "1 chains, 1 rules as rendered");
        assert_eq!(checks[1].probe, "udp exposure");
        assert_eq!(checks[1].status, Status::Pass);
    }

    #[test]
    fn an_extra_a_missing_and_an_edited_rule_are_each_named() {
        let rendered = ruleset(
            vec![
                rule("input", "tcp dport 22 accept", tcp_accept(22)),
                rule("input", "tcp dport 443 accept", tcp_accept(443)),
                rule("input", "tcp dport 9100 accept", tcp_accept(9100)),
            ],
            "drop",
        );
        let live = ruleset(
            vec![
                rule("input", "tcp dport 22 accept", tcp_accept(22)),
                rule("input", "tcp dport 5555 accept", tcp_accept(5555)),
                rule("input", "tcp dport 9100 accept", tcp_accept(9100)),
                rule("input", "udp dport 53 accept", udp_accept(53)),
            ],
            "drop",
        );
        let checks = judge("web2", &live, &rendered, Path::new("/r.nft"));
        // Three rules differ; UDP exposure is a finding of its own, not drift.
        let drift = checks
            .iter()
            .filter(|c| c.kind == Some(Kind::FirewallDrift))
            .count();
        assert_eq!(drift, 3);
        let failed: Vec<(String, String, String)> = checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| (c.probe.clone(), c.expected.clone(), c.observed.clone()))
            .collect();
        assert_eq!(
            failed,
            [
                (
                    "inet rampart input: live rule".to_string(),
                    "absent (not rendered)".to_string(),
                    "tcp dport 5555 accept".to_string()
                ),
                (
                    "inet rampart input: rendered rule".into(),
                    "tcp dport 443 accept".into(),
                    "missing".into()
                ),
                (
                    "inet rampart input: live rule".into(),
                    "absent (not rendered)".into(),
                    "udp dport 53 accept".into()
                ),
                (
                    "udp exposure".into(),
                    "none (the topology declares no UDP service)".into(),
                    "admitted".into()
                ),
            ]
        );
    }

    #[test]
    fn replies_loopback_and_other_transports_do_not_admit_udp() {
        let established = json!([{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]);
        let lo = json!([{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"accept": null}]);
        let icmp = json!([{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "protocol"}}, "right": "icmp"}}, {"accept": null}]);
        let everything = json!([{"accept": null}]);
        let udp_by_l4 = json!([{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "udp"}}, {"accept": null}]);
        assert!(!admits_udp(&established));
        assert!(!admits_udp(&lo));
        assert!(!admits_udp(&icmp));
        assert!(!admits_udp(&tcp_accept(22)));
        assert!(admits_udp(&everything));
        assert!(admits_udp(&udp_by_l4));
        assert!(admits_udp(&udp_accept(53)));
    }

    #[test]
    fn a_policy_accept_chain_alone_exposes_udp_but_not_beside_a_dropping_one() {
        let open = ruleset(vec![], "accept");
        assert_eq!(udp_exposure("lb", &open).status, Status::Fail);
        let mut both = ruleset(vec![], "drop");
        let mut fence = input("accept");
        fence.table = "rampart-fence".into();
        both.chains.push(fence);
        assert_eq!(udp_exposure("lb", &both).status, Status::Pass);
        let none = Ruleset::default();
        assert_eq!(udp_exposure("lb", &none).status, Status::Fail);
    }

    #[test]
    fn the_run_time_tables_are_listed_not_failed() {
        for table in ["rampart-fence", "rampart-gate"] {
            let rendered = ruleset(vec![], "drop");
            let mut live = rendered.clone();
            live.tables.push(("inet".into(), table.into()));
            let mut gate = input("accept");
            gate.table = table.into();
            live.chains.push(gate);
            let checks = judge("web1", &live, &rendered, Path::new("/r.nft"));
            assert!(
                checks.iter().all(|c| c.status != Status::Fail),
                "{checks:#?}"
            );
            let probe = format!("table inet {table}");
            assert!(checks
                .iter()
                .any(|c| c.status == Status::Info && c.probe == probe));
        }
        let rendered = ruleset(vec![], "drop");
        let mut live = rendered.clone();
        live.tables.push(("inet".into(), "stray".into()));
        let checks = judge("web1", &live, &rendered, Path::new("/r.nft"));
        assert!(checks.iter().any(|c| c.status == Status::Fail));
    }
}
