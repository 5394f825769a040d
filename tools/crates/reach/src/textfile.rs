//! The textfile for node_exporter's textfile collector, exactly as docs/contracts.md
//! ("reach textfile metrics") defines it: families, labels, order and atomic write.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::report::{Kind, Report, Status};

/// Groups that go into `rampart_check_success` (alerts are Prometheus' own verdict and
/// would feed back into themselves).
const TEXTFILE_GROUPS: [&str; 11] = [
    "ports",
    "sweep",
    "listeners",
    "ruleset",
    "tls",
    "https",
    "haproxy",
    "prometheus",
    "replication",
    "certificates",
    "files",
];

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// Renders the textfile for a `reach check` report finished at `now` (Unix seconds).
pub fn render(report: &Report, now: i64) -> String {
    // (check, target) → (all passed, longest probe)
    let mut groups: BTreeMap<(String, String), (bool, f64)> = BTreeMap::new();
    for c in &report.checks {
        if !TEXTFILE_GROUPS.contains(&c.check.as_str())
            || matches!(c.status, Status::Skip | Status::Info)
        {
            continue;
        }
        let entry = groups
            .entry((c.check.clone(), c.target.clone()))
            .or_insert((true, 0.0));
        entry.0 &= c.status == Status::Pass;
        entry.1 = entry.1.max(c.seconds.unwrap_or(0.0));
    }
    let mut out = String::new();
    family(
        &mut out,
        "rampart_reach_last_run_timestamp_seconds",
        "Unix time at which the last reach run finished.",
    );
    let _ = writeln!(out, "rampart_reach_last_run_timestamp_seconds {now}");
    family(
        &mut out,
        "rampart_check_success",
        "Whether a reach check against a target was as declared (1) or not (0).",
    );
    for ((check, target), (ok, _)) in &groups {
        let _ = writeln!(
            out,
            "rampart_check_success{{check=\"{}\",target=\"{}\"}} {}",
            escape(check),
            escape(target),
            u8::from(*ok)
        );
    }
    family(
        &mut out,
        "rampart_check_duration_seconds",
        "Wall time of a reach check against a target.",
    );
    for ((check, target), (_, seconds)) in &groups {
        let _ = writeln!(
            out,
            "rampart_check_duration_seconds{{check=\"{}\",target=\"{}\"}} {seconds}",
            escape(check),
            escape(target)
        );
    }
    family(
        &mut out,
        "rampart_cert_expiry_timestamp_seconds",
        "notAfter of a certificate file, as Unix time.",
    );
    let mut certs: Vec<(String, String, i64)> = report
        .checks
        .iter()
        .filter(|c| c.check == "certificates")
        .filter_map(|c| Some((c.path.clone()?, c.purpose.clone()?, c.not_after?)))
        .collect();
    certs.sort();
    for (path, purpose, not_after) in certs {
        let _ = writeln!(
            out,
            "rampart_cert_expiry_timestamp_seconds{{path=\"{}\",purpose=\"{}\"}} {not_after}",
            escape(&path),
            escape(&purpose)
        );
    }
    family(
        &mut out,
        "rampart_web_files",
        "Files of a web root that are missing, changed or unexpected against its manifest.",
    );
    let mut roots: Vec<(String, crate::report::FileCounts)> = report
        .checks
        .iter()
        .filter(|c| c.check == "files")
        .filter_map(|c| Some((c.target.clone(), c.files?)))
        .collect();
    roots.sort_by(|a, b| a.0.cmp(&b.0));
    for (root, counts) in roots {
        for (state, n) in [
            ("changed", counts.changed),
            ("missing", counts.missing),
            ("unexpected", counts.unexpected),
        ] {
            let _ = writeln!(
                out,
                "rampart_web_files{{root=\"{}\",state=\"{state}\"}} {n}",
                escape(&root)
            );
        }
    }
    findings(&mut out, report, &groups);
    swept_ports(&mut out, report);
    security(&mut out, report);
    out
}

/// `rampart_reach_findings` (per check and target, 0 included) and
/// `rampart_reach_finding` (one series per failed probe, naming it).
fn findings(out: &mut String, report: &Report, groups: &BTreeMap<(String, String), (bool, f64)>) {
    let failed: Vec<&crate::report::Check> = report
        .checks
        .iter()
        .filter(|c| TEXTFILE_GROUPS.contains(&c.check.as_str()) && c.status == Status::Fail)
        .collect();
    family(
        out,
        "rampart_reach_findings",
        "Probes of a reach check against a target that were not as declared.",
    );
    for (check, target) in groups.keys() {
        let n = failed
            .iter()
            .filter(|c| c.check == *check && c.target == *target)
            .count();
        let _ = writeln!(
            out,
            "rampart_reach_findings{{check=\"{}\",target=\"{}\"}} {n}",
            escape(check),
            escape(target)
        );
    }
    family(
        out,
        "rampart_reach_finding",
        "One probe that was not as declared (always 1; the probe label names it).",
    );
    let mut lines: Vec<(&str, &str, &str)> = failed
        .iter()
        .map(|c| (c.check.as_str(), c.target.as_str(), c.probe.as_str()))
        .collect();
    lines.sort();
    lines.dedup();
    for (check, target, probe) in lines {
        let _ = writeln!(
            out,
            "rampart_reach_finding{{check=\"{}\",probe=\"{}\",target=\"{}\"}} 1",
            escape(check),
            escape(probe),
            escape(target)
        );
    }
}

/// `rampart_reach_swept_ports`: a swept host's ports by state.
fn swept_ports(out: &mut String, report: &Report) {
    family(
        out,
        "rampart_reach_swept_ports",
        "TCP ports of a host the sweep found open, closed or filtered from this host.",
    );
    let mut hosts: Vec<(&str, crate::report::PortCounts)> = report
        .checks
        .iter()
        .filter(|c| c.check == "sweep")
        .filter_map(|c| Some((c.target.as_str(), c.ports?)))
        .collect();
    hosts.sort_by(|a, b| a.0.cmp(b.0));
    for (target, counts) in hosts {
        for (state, n) in [
            ("closed", counts.closed),
            ("filtered", counts.filtered),
            ("open", counts.open),
        ] {
            let _ = writeln!(
                out,
                "rampart_reach_swept_ports{{state=\"{state}\",target=\"{}\"}} {n}",
                escape(target)
            );
        }
    }
}

/// The security families (issue #15) the `reach-security` alerts read: undeclared ports
/// per swept host, undeclared listeners and ruleset drift on the `--from` host (only when
/// its group could look), profile violations per TLS endpoint; `0` included.
fn security(out: &mut String, report: &Report) {
    let counted = |group: &str, kind: Kind, target: &str| {
        report
            .checks
            .iter()
            .filter(|c| c.check == group && c.target == target && c.kind == Some(kind))
            .count()
    };
    family(
        out,
        "rampart_undeclared_open_ports",
        "TCP ports of a host that accept a connection from this host without being declared for it.",
    );
    let mut swept: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.check == "sweep" && c.ports.is_some())
        .map(|c| c.target.as_str())
        .collect();
    swept.sort();
    swept.dedup();
    for target in swept {
        let n = counted("sweep", Kind::UndeclaredPort, target);
        let _ = writeln!(
            out,
            "rampart_undeclared_open_ports{{target=\"{}\"}} {n}",
            escape(target)
        );
    }
    // One unlabelled series each, about the `--from` host itself.
    for (group, kind, name, help) in [
        (
            "listeners",
            Kind::UndeclaredListener,
            "rampart_undeclared_listeners",
            "Listening sockets of this host on an address or port the topology does not declare for it.",
        ),
        (
            "ruleset",
            Kind::FirewallDrift,
            "rampart_firewall_drift_rules",
            "Tables, chains, rules and objects of the live nftables ruleset that differ from the rendered one.",
        ),
    ] {
        family(out, name, help);
        let rows: Vec<&crate::report::Check> = report
            .checks
            .iter()
            .filter(|c| c.check == group && c.status != Status::Skip)
            .collect();
        if rows.is_empty() || rows.iter().any(|c| c.kind == Some(Kind::Unreadable)) {
            continue;
        }
        let n = rows.iter().filter(|c| c.kind == Some(kind)).count();
        let _ = writeln!(out, "{name} {n}");
    }
    family(
        out,
        "rampart_tls_profile_violations",
        "What a TLS endpoint accepts or presents outside its TLS profile, as probed from this host.",
    );
    let mut endpoints: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
    for c in &report.checks {
        let (Some(service), Some(profile)) = (&c.service, &c.profile) else {
            continue;
        };
        if c.check != "tls" || c.status == Status::Skip {
            continue;
        }
        *endpoints
            .entry((c.target.as_str(), service.as_str(), profile.as_str()))
            .or_default() += usize::from(c.kind == Some(Kind::TlsProfile));
    }
    for ((target, service, profile), n) in endpoints {
        let _ = writeln!(
            out,
            "rampart_tls_profile_violations{{profile=\"{}\",service=\"{}\",target=\"{}\"}} {n}",
            escape(profile),
            escape(service),
            escape(target)
        );
    }
}

/// Writes `text` to `path` through `PATH.tmp.<pid>` and a rename, so a reader never sees
/// half a file.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Check, FileCounts};

    #[test]
    fn families_series_and_escaping_follow_the_contract() {
        let mut cert = Check::new("certificates", "web1", "backend").judged(true, "valid", "valid");
        cert.path = Some("/var/lib/rampart/pki/backend.pem".into());
        cert.purpose = Some("backend".into());
        cert.not_after = Some(1_791_536_000);
        let mut files = Check::new("files", "/srv/www", "manifest").judged(false, "", "");
        files.files = Some(FileCounts {
            missing: 0,
            changed: 1,
            unexpected: 0,
        });
        let mut sweep_summary =
            Check::new("sweep", "web2", "tcp 1-65535").with_status(Status::Info);
        sweep_summary.ports = Some(crate::report::PortCounts {
            open: 1,
            closed: 0,
            filtered: 65534,
        });
        let checks = vec![
            Check::new("ports", "lb", "443/https")
                .judged(true, "open", "open")
                .with_seconds(0.25),
            Check::new("ports", "lb", "22/ssh")
                .judged(false, "closed|filtered", "open")
                .with_seconds(0.5),
            Check::new("ports", "we\"ird", "1").judged(true, "open", "open"),
            Check::new("alerts", "lb", "alert X").judged(false, "", ""),
            Check::new("prometheus", "lb", "api").skipped("dropped"),
            cert,
            files,
            sweep_summary,
            Check::new("sweep", "web2", "5555/tcp")
                .judged(false, "closed|filtered", "open")
                .with_kind(Kind::UndeclaredPort),
        ];
        let report = Report::new("check", Some("web1"), checks, 1.0);
        let text = render(&report, 1_760_000_000);
        let expected = "\
# HELP rampart_reach_last_run_timestamp_seconds Unix time at which the last reach run finished.
# TYPE rampart_reach_last_run_timestamp_seconds gauge
rampart_reach_last_run_timestamp_seconds 1760000000
# HELP rampart_check_success Whether a reach check against a target was as declared (1) or not (0).
# TYPE rampart_check_success gauge
rampart_check_success{check=\"certificates\",target=\"web1\"} 1
rampart_check_success{check=\"files\",target=\"/srv/www\"} 0
rampart_check_success{check=\"ports\",target=\"lb\"} 0
rampart_check_success{check=\"ports\",target=\"we\\\"ird\"} 1
rampart_check_success{check=\"sweep\",target=\"web2\"} 0
# HELP rampart_check_duration_seconds Wall time of a reach check against a target.
# TYPE rampart_check_duration_seconds gauge
rampart_check_duration_seconds{check=\"certificates\",target=\"web1\"} 0
rampart_check_duration_seconds{check=\"files\",target=\"/srv/www\"} 0
rampart_check_duration_seconds{check=\"ports\",target=\"lb\"} 0.5
rampart_check_duration_seconds{check=\"ports\",target=\"we\\\"ird\"} 0
rampart_check_duration_seconds{check=\"sweep\",target=\"web2\"} 0
# HELP rampart_cert_expiry_timestamp_seconds notAfter of a certificate file, as Unix time.
# TYPE rampart_cert_expiry_timestamp_seconds gauge
rampart_cert_expiry_timestamp_seconds{path=\"/var/lib/rampart/pki/backend.pem\",purpose=\"backend\"} 1791536000
# HELP rampart_web_files Files of a web root that are missing, changed or unexpected against its manifest.
# TYPE rampart_web_files gauge
rampart_web_files{root=\"/srv/www\",state=\"changed\"} 1
rampart_web_files{root=\"/srv/www\",state=\"missing\"} 0
rampart_web_files{root=\"/srv/www\",state=\"unexpected\"} 0
# HELP rampart_reach_findings Probes of a reach check against a target that were not as declared.
# TYPE rampart_reach_findings gauge
rampart_reach_findings{check=\"certificates\",target=\"web1\"} 0
rampart_reach_findings{check=\"files\",target=\"/srv/www\"} 1
rampart_reach_findings{check=\"ports\",target=\"lb\"} 1
rampart_reach_findings{check=\"ports\",target=\"we\\\"ird\"} 0
rampart_reach_findings{check=\"sweep\",target=\"web2\"} 1
# HELP rampart_reach_finding One probe that was not as declared (always 1; the probe label names it).
# TYPE rampart_reach_finding gauge
rampart_reach_finding{check=\"files\",probe=\"manifest\",target=\"/srv/www\"} 1
rampart_reach_finding{check=\"ports\",probe=\"22/ssh\",target=\"lb\"} 1
rampart_reach_finding{check=\"sweep\",probe=\"5555/tcp\",target=\"web2\"} 1
# HELP rampart_reach_swept_ports TCP ports of a host the sweep found open, closed or filtered from this host.
# TYPE rampart_reach_swept_ports gauge
rampart_reach_swept_ports{state=\"closed\",target=\"web2\"} 0
rampart_reach_swept_ports{state=\"filtered\",target=\"web2\"} 65534
rampart_reach_swept_ports{state=\"open\",target=\"web2\"} 1
# HELP rampart_undeclared_open_ports TCP ports of a host that accept a connection from this host without being declared for it.
# TYPE rampart_undeclared_open_ports gauge
rampart_undeclared_open_ports{target=\"web2\"} 1
# HELP rampart_undeclared_listeners Listening sockets of this host on an address or port the topology does not declare for it.
# TYPE rampart_undeclared_listeners gauge
# HELP rampart_firewall_drift_rules Tables, chains, rules and objects of the live nftables ruleset that differ from the rendered one.
# TYPE rampart_firewall_drift_rules gauge
# HELP rampart_tls_profile_violations What a TLS endpoint accepts or presents outside its TLS profile, as probed from this host.
# TYPE rampart_tls_profile_violations gauge
";
        assert_eq!(text, expected);
    }

    /// The series of the security families, from the lines of a run on web1.
    fn security_series(checks: Vec<Check>) -> Vec<String> {
        let report = Report::new("check", Some("web1"), checks, 1.0);
        let text = render(&report, 1_760_000_000);
        let start = text.find("# HELP rampart_undeclared_open_ports").unwrap();
        text[start..]
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    }

    fn tls(target: &str, service: &str, probe: &str, status: Status) -> Check {
        let mut c = Check::new("tls", target, probe).with_status(status);
        c.service = Some(service.into());
        c.profile = Some("intermediate".into());
        if status == Status::Fail {
            c = c.with_kind(Kind::TlsProfile);
        }
        c
    }

    #[test]
    fn security_families_count_each_kind_of_finding_zero_included() {
        let mut lb = Check::new("sweep", "lb", "tcp 1-65535").with_status(Status::Pass);
        lb.ports = Some(crate::report::PortCounts::default());
        let mut web2 = Check::new("sweep", "web2", "tcp 1-65535").with_status(Status::Info);
        web2.ports = Some(crate::report::PortCounts::default());
        let undeclared = |probe: &str| {
            Check::new("sweep", "web2", probe)
                .judged(false, "closed|filtered", "open")
                .with_kind(Kind::UndeclaredPort)
        };
        let series = security_series(vec![
            lb,
            web2,
            undeclared("5555/tcp"),
            undeclared("6666/tcp"),
            Check::new("listeners", "web1", "tcp/0.0.0.0:3306/mysql")
                .judged(false, "", "")
                .with_kind(Kind::UndeclaredListener),
            // A declared service nothing listens for is a failure, not an undeclared listener.
            Check::new("listeners", "web1", "tcp/443/backendHttps").judged(false, "", ""),
            Check::new("ruleset", "web1", "inet rampart input: live rule")
                .judged(false, "", "")
                .with_kind(Kind::FirewallDrift),
            Check::new("ruleset", "web1", "udp exposure").judged(false, "", ""),
            tls("lb", "https", "443/https tls1.2", Status::Pass),
            tls("lb", "https", "443/https group X448", Status::Fail),
            tls("lb", "https", "443/https group secp521r1", Status::Fail),
            // Waived: listed, not counted.
            tls(
                "web1",
                "etcdClient",
                "2379/etcdClient group P-521",
                Status::Info,
            ),
            tls("web1", "mysql", "3306/mysql tls", Status::Skip),
        ]);
        assert_eq!(
            series,
            [
                "rampart_undeclared_open_ports{target=\"lb\"} 0",
                "rampart_undeclared_open_ports{target=\"web2\"} 2",
                "rampart_undeclared_listeners 1",
                "rampart_firewall_drift_rules 1",
                "rampart_tls_profile_violations{profile=\"intermediate\",service=\"https\",target=\"lb\"} 2",
                "rampart_tls_profile_violations{profile=\"intermediate\",service=\"etcdClient\",target=\"web1\"} 0",
            ]
        );
    }

    #[test]
    fn a_group_that_could_not_look_writes_no_count() {
        let series = security_series(vec![
            Check::new("listeners", "web1", "sockets")
                .judged(false, "the socket tables", "unreadable")
                .with_kind(Kind::Unreadable),
            Check::new("ruleset", "web1", "ruleset").skipped("no rendered ruleset"),
        ]);
        assert!(series.is_empty(), "{series:?}");
    }
}
