//! Asking the lab's Prometheus and HAProxy how things stand.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;

use super::{http, LabError, Result};

/// Scrape targets: how many are up, how many there are, and `job/instance` of those down.
pub fn targets(namespace: &str, prometheus: SocketAddr) -> Result<(usize, usize, Vec<String>)> {
    let doc = api(namespace, prometheus, "/api/v1/targets?state=active")?;
    let active = doc["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let down: Vec<String> = active
        .iter()
        .filter(|t| t["health"] != "up")
        .map(|t| {
            format!(
                "{}/{} ({})",
                t["labels"]["job"].as_str().unwrap_or("?"),
                t["labels"]["instance"].as_str().unwrap_or("?"),
                t["lastError"]
                    .as_str()
                    .filter(|e| !e.is_empty())
                    .unwrap_or(t["health"].as_str().unwrap_or("?"))
            )
        })
        .collect();
    Ok((active.len() - down.len(), active.len(), down))
}

/// The names of alerts Prometheus has in state `firing` (or `pending` too when asked).
pub fn alerts(namespace: &str, prometheus: SocketAddr, with_pending: bool) -> Result<Vec<String>> {
    let doc = api(namespace, prometheus, "/api/v1/alerts")?;
    let mut names: Vec<String> = doc["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["state"] == "firing" || (with_pending && a["state"] == "pending"))
        .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// One recording or alerting rule as Prometheus evaluates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleState {
    pub name: String,
    pub query: String,
    /// `ok`, `err` or `unknown` (not evaluated yet).
    pub health: String,
    pub last_error: String,
}

/// Every rule of every group, with the health of its last evaluation.
pub fn rules(namespace: &str, prometheus: SocketAddr) -> Result<Vec<RuleState>> {
    let doc = api(namespace, prometheus, "/api/v1/rules")?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    Ok(doc["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .map(|r| RuleState {
            name: text(&r["name"]),
            query: text(&r["query"]),
            health: text(&r["health"]),
            last_error: text(&r["lastError"]),
        })
        .collect())
}

/// Every metric name Prometheus holds a series of.
pub fn metric_names(namespace: &str, prometheus: SocketAddr) -> Result<BTreeSet<String>> {
    let doc = api(namespace, prometheus, "/api/v1/label/__name__/values")?;
    Ok(doc["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect())
}

/// The metric names a PromQL expression reads: identifiers outside label matchers,
/// strings and ranges that are neither functions, aggregations, keywords nor the label
/// lists of `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`.
pub fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    // Aggregations can be followed by `by (…)` instead of their parenthesis.
    const KEYWORDS: [&str; 21] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "Inf",
        "NaN",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let next_non_space = |mut i: usize| {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        (i, chars.get(i).copied())
    };
    let mut names = BTreeSet::new();
    let mut braces = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '{' => {
                braces += 1;
                i += 1;
            }
            '}' => {
                braces = braces.saturating_sub(1);
                i += 1;
            }
            '[' => {
                while i < chars.len() && chars[i] != ']' {
                    i += 1;
                }
                i += 1;
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let (after, next) = next_non_space(i);
                if braces > 0 || KEYWORDS.contains(&word.as_str()) {
                    continue;
                }
                if LABEL_LISTS.contains(&word.as_str()) {
                    if next == Some('(') {
                        i = after;
                        while i < chars.len() && chars[i] != ')' {
                            i += 1;
                        }
                    }
                    continue;
                }
                if next != Some('(') {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

fn api(namespace: &str, prometheus: SocketAddr, path: &str) -> Result<Value> {
    let response = http::get(namespace, prometheus, path)?;
    let doc: Value = serde_json::from_str(&response.body).map_err(|e| {
        LabError::Invalid(format!(
            "Prometheus at {prometheus} answered {path} with status {} and no JSON ({e})",
            response.status
        ))
    })?;
    if doc["status"] != "success" {
        return Err(LabError::Invalid(format!(
            "Prometheus at {prometheus} refused {path}: {}",
            doc["error"].as_str().unwrap_or("no error text")
        )));
    }
    Ok(doc)
}

/// One server of HAProxy's `show stat` (`rampart_haproxy` reads it): backend, server name,
/// status (`UP`, `DOWN`, …), last check (`L6RSP`, `L7OK`, …), sessions.
pub type ServerState = rampart_haproxy::Server;

/// Every backend server's state, from HAProxy's stats socket.
pub fn haproxy_servers(socket: &Path) -> Result<Vec<ServerState>> {
    rampart_haproxy::AdminSocket::new(socket)
        .servers()
        .map_err(|e| LabError::Invalid(e.to_string()))
}
