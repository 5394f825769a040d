//! The verdict of a `reach` run: one record per probe, and how it prints.
//!
//! # JSON (`reach … --json`)
//!
//! One JSON document on stdout. Every object in it has a `type` field, so a consumer can
//! tell records apart without knowing where they sit; new record types and new optional
//! fields may appear, existing ones keep their meaning.
//!
//! ```json
//! { "type": "report", "version": 1, "command": "check", "vantage": "web2",
//!   "checks": [
//!     { "type": "check", "check": "ports", "target": "web1", "probe": "3306/mysql",
//!       "status": "pass", "expected": "open", "observed": "open", "reason": "syn-ack",
//!       "seconds": 0.0004 } ],
//!   "summary": { "type": "summary", "checks": 1, "passed": 1, "failed": 0,
//!                "skipped": 0, "info": 0, "seconds": 0.01 } }
//! ```
//!
//! `report`: `version` (this schema, `1`), `command` (`check`, `ports`, `https`, `files`),
//! `vantage` (the `--from` host, or absent for ad-hoc commands), `checks`, `summary`.
//!
//! `check` (always present): `check` — the group, one of `ports`, `sweep`, `listeners`,
//! `ruleset`, `tls`, `https`, `haproxy`, `prometheus`, `alerts`, `replication`,
//! `certificates`, `files`; `target` — what it is
//! about (a topology host name, an address, a URL's host, a web root); `probe` — the exact
//! thing probed (`443/https`, `tls1.0`, `certificate rampart.test`, `server web/web1`, …);
//! `status` — `pass` (as declared), `fail` (not as declared), `skip` (cannot apply from
//! this vantage; `reason` says why) or `info` (listed only, never a failure: firing alerts
//! when no alert expectation was given); `expected` and `observed` — short words
//! (`open`, `filtered`, `refused`, `UP`, `301 → https://…`); optional `reason` (nmap's
//! vocabulary for ports: `syn-ack`, `conn-refused`, `no-response`, `host-unreach`, …; an
//! error message otherwise); optional `seconds` (probe latency); for certificates optional
//! `not_after` (Unix seconds), `days_left`, `purpose` and `path`; for content integrity
//! optional `missing`, `changed`, `unexpected` (counts); optional `kind` (`undeclared-port`,
//! `undeclared-listener`, `firewall-drift`, `tls-profile`, `unreadable`: what a ✘ line is
//! about); for `tls` lines `service` (the topology service) and `profile` (the TLS profile).
//!
//! `summary`: counts per status and the wall time of the whole run.

use std::fmt::Write as _;

use serde::Serialize;

use rampart_cli::table;

/// The outcome of one probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As declared.
    Pass,
    /// Not as declared.
    Fail,
    /// Does not apply from this vantage (for example dropped by design).
    Skip,
    /// Listed for the reader, never a failure.
    Info,
}

impl Status {
    fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✔",
            Status::Fail => "✘",
            Status::Skip => "–",
            Status::Info => "·",
        }
    }

    /// `Pass` when `ok`, else `Fail`.
    pub fn of(ok: bool) -> Status {
        if ok {
            Status::Pass
        } else {
            Status::Fail
        }
    }
}

/// Counts of web-root files against a manifest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FileCounts {
    pub missing: usize,
    pub changed: usize,
    pub unexpected: usize,
}

/// One probe and its verdict. See the module docs for the JSON form.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    #[serde(rename = "type")]
    pub record: &'static str,
    pub check: String,
    pub target: String,
    pub probe: String,
    pub status: Status,
    pub expected: String,
    pub observed: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub files: Option<FileCounts>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortCounts>,
    /// What a ✘ line is, for the textfile's security families (docs/contracts.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// For `tls` lines: the endpoint's topology service and the profile judged against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// What a line is about, where the textfile counts it in a family of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A port that accepts a connection from the vantage without being declared for it.
    UndeclaredPort,
    /// A listening socket on an address or port the topology does not declare.
    UndeclaredListener,
    /// A table, chain, rule or object of the live ruleset that differs from the rendered one.
    FirewallDrift,
    /// Something a TLS endpoint accepts (or presents) outside its profile.
    TlsProfile,
    /// The group could not look (sockets or ruleset unreadable): no count can be given.
    Unreadable,
}

/// Counts of a host's swept ports by state (the sweep's summary line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortCounts {
    pub open: usize,
    pub closed: usize,
    pub filtered: usize,
}

impl Check {
    /// A check of `group` about `target`; `probe` names exactly what was probed.
    pub fn new(group: &str, target: &str, probe: impl Into<String>) -> Check {
        Check {
            record: "check",
            check: group.to_string(),
            target: target.to_string(),
            probe: probe.into(),
            status: Status::Skip,
            expected: String::new(),
            observed: String::new(),
            reason: None,
            seconds: None,
            not_after: None,
            days_left: None,
            purpose: None,
            path: None,
            files: None,
            ports: None,
            kind: None,
            service: None,
            profile: None,
        }
    }

    /// Marks what the line is about (see [`Kind`]).
    pub fn with_kind(mut self, kind: Kind) -> Check {
        self.kind = Some(kind);
        self
    }

    /// Sets expected and observed, and passes when `ok`.
    pub fn judged(
        mut self,
        ok: bool,
        expected: impl Into<String>,
        observed: impl Into<String>,
    ) -> Check {
        self.status = Status::of(ok);
        self.expected = expected.into();
        self.observed = observed.into();
        self
    }

    /// Skipped, with the reason.
    pub fn skipped(mut self, reason: impl Into<String>) -> Check {
        self.status = Status::Skip;
        self.reason = Some(reason.into());
        self
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Check {
        self.reason = Some(reason.into());
        self
    }

    pub fn with_seconds(mut self, seconds: f64) -> Check {
        self.seconds = Some(seconds);
        self
    }

    pub fn with_status(mut self, status: Status) -> Check {
        self.status = status;
        self
    }
}

/// Counts per status and the wall time of the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    #[serde(rename = "type")]
    pub record: &'static str,
    pub checks: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub info: usize,
    pub seconds: f64,
}

/// Everything one `reach` command found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    #[serde(rename = "type")]
    pub record: &'static str,
    pub version: u32,
    pub command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vantage: Option<String>,
    pub checks: Vec<Check>,
    pub summary: Summary,
}

impl Report {
    /// A report over `checks`, which took `seconds` in all.
    pub fn new(command: &str, vantage: Option<&str>, checks: Vec<Check>, seconds: f64) -> Report {
        let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
        let summary = Summary {
            record: "summary",
            checks: checks.len(),
            passed: count(Status::Pass),
            failed: count(Status::Fail),
            skipped: count(Status::Skip),
            info: count(Status::Info),
            seconds,
        };
        Report {
            record: "report",
            version: 1,
            command: command.to_string(),
            vantage: vantage.map(str::to_string),
            checks,
            summary,
        }
    }

    /// Did any probe find something not as declared?
    pub fn has_failures(&self) -> bool {
        self.summary.failed > 0
    }

    /// The JSON document (see the module docs).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            // Serialising plain strings and numbers cannot fail; keep the contract anyway.
            format!("{{\"type\":\"error\",\"message\":{:?}}}", e.to_string())
        })
    }

    /// The human table: grouped by target (in order of first appearance), one row per
    /// probe with ✔/✘, then a one-line summary.
    pub fn to_table(&self) -> String {
        let mut targets: Vec<&str> = Vec::new();
        for c in &self.checks {
            if !targets.contains(&c.target.as_str()) {
                targets.push(&c.target);
            }
        }
        let mut rows = Vec::new();
        for target in targets {
            let mut first = true;
            for c in self.checks.iter().filter(|c| c.target == target) {
                let observed = match &c.reason {
                    Some(r) if c.observed.is_empty() => r.clone(),
                    Some(r) => format!("{} ({r})", c.observed),
                    None => c.observed.clone(),
                };
                rows.push(vec![
                    if first {
                        target.to_string()
                    } else {
                        String::new()
                    },
                    c.status.mark().to_string(),
                    c.check.clone(),
                    c.probe.clone(),
                    observed,
                    c.expected.clone(),
                ]);
                first = false;
            }
        }
        let mut out = table::render(
            &["TARGET", "", "CHECK", "PROBE", "OBSERVED", "EXPECTED"],
            &rows,
        );
        let s = &self.summary;
        let verdict = if s.failed > 0 {
            "NOT as declared"
        } else {
            "all as declared"
        };
        let from = self
            .vantage
            .as_deref()
            .map(|v| format!(" from {v}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "reach {}{from}: {verdict}: {} checks, {} ✔, {} ✘, {} skipped, {} info in {:.2}s",
            self.command, s.checks, s.passed, s.failed, s.skipped, s.info, s.seconds
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let checks = vec![
            Check::new("ports", "lb", "443/https")
                .judged(true, "open", "open")
                .with_reason("syn-ack"),
            Check::new("ports", "lb", "22/ssh")
                .judged(false, "closed|filtered", "open")
                .with_reason("syn-ack"),
            Check::new("prometheus", "lb", "api").skipped("dropped by policy"),
        ];
        Report::new("check", Some("outside"), checks, 0.5)
    }

    #[test]
    fn every_json_record_has_a_type() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(v["type"], "report");
        assert_eq!(v["summary"]["type"], "summary");
        assert_eq!(v["summary"]["failed"], 1);
        for c in v["checks"].as_array().unwrap() {
            assert_eq!(c["type"], "check");
        }
        assert_eq!(v["checks"][2]["status"], "skip");
    }

    #[test]
    fn the_table_groups_by_target_and_ends_with_a_verdict() {
        let text = sample().to_table();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("lb "), "{text}");
        assert!(lines[2].starts_with("   "), "{text}");
        assert!(lines[2].contains("✘"), "{text}");
        assert!(
            lines
                .last()
                .unwrap()
                .starts_with("reach check from outside: NOT as declared: 3 checks, 1 ✔, 1 ✘"),
            "{text}"
        );
    }
}
