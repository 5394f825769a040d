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

/// One server of HAProxy's `show stat`: proxy, server name and status (`UP`, `DOWN`, …)
/// with the last check's status (`L6RSP`, `L7OK`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerState {
    pub proxy: String,
    pub server: String,
    pub status: String,
    pub check: String,
}

/// Every backend server's state, from HAProxy's stats socket.
pub fn haproxy_servers(socket: &Path) -> Result<Vec<ServerState>> {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|e| {
        LabError::Invalid(format!(
            "cannot connect to HAProxy's stats socket {} ({e}); is haproxy running?",
            socket.display()
        ))
    })?;
    stream
        .write_all(b"show stat\n")
        .and_then(|()| {
            let mut text = String::new();
            stream.read_to_string(&mut text).map(|_| text)
        })
        .map_err(|e| LabError::Invalid(format!("HAProxy stats socket {}: {e}", socket.display())))
        .map(|text| parse_stat(&text))
}

fn parse_stat(csv: &str) -> Vec<ServerState> {
    let mut lines = csv.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let col = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(px), Some(sv), Some(st), Some(ck)) = (
        col("pxname"),
        col("svname"),
        col("status"),
        col("check_status"),
    ) else {
        return Vec::new();
    };
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > ck && f[sv] != "FRONTEND" && f[sv] != "BACKEND")
        .map(|f| ServerState {
            proxy: f[px].to_string(),
            server: f[sv].to_string(),
            status: f[st].to_string(),
            check: f[ck].trim_start_matches('*').trim().to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_leave_out_functions_labels_keywords_and_strings() {
        let expr = r#"sum by (host, proxy) (rate(haproxy_frontend_http_requests_total{proxy=~"http|https", code="5xx"}[8s]))
            / on (host) group_left (role) max without (instance) (node_uname_info offset 5m) > bool 0.05
            or absent(mysql_global_variables_read_only == 0) unless up{job='x'} and 1e3 < rampart:rate5m"#;
        let names: Vec<String> = promql_metric_names(expr).into_iter().collect();
        assert_eq!(
            names,
            [
                "haproxy_frontend_http_requests_total",
                "mysql_global_variables_read_only",
                "node_uname_info",
                "rampart:rate5m",
                "up"
            ]
        );
    }

    #[test]
    fn show_stat_keeps_servers_only() {
        let csv = "# pxname,svname,qcur,status,check_status\nweb,FRONTEND,,OPEN,\nweb,web1,0,UP,L7OK\nweb,web2,0,DOWN,* L6RSP\nweb,BACKEND,0,UP,\n";
        let servers = parse_stat(csv);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1].status, "DOWN");
        assert_eq!(servers[1].check, "L6RSP");
    }
}
