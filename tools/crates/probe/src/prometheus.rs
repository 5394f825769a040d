//! Prometheus' HTTP API (`/api/v1/targets`, `/api/v1/alerts`) and the text exposition
//! format of exporters.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::http;

/// One active scrape target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub job: String,
    pub instance: String,
    /// `up`, `down` or `unknown` (not scraped yet).
    pub health: String,
    pub last_error: String,
}

/// One alert Prometheus knows about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub name: String,
    /// `firing` or `pending`.
    pub state: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetsData {
    active_targets: Vec<RawTarget>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTarget {
    labels: BTreeMap<String, String>,
    health: String,
    #[serde(default)]
    last_error: String,
}

#[derive(Deserialize)]
struct AlertsData {
    alerts: Vec<RawAlert>,
}

#[derive(Deserialize)]
struct RawAlert {
    labels: BTreeMap<String, String>,
    state: String,
}

async fn api<T: for<'de> Deserialize<'de>>(
    base: &str,
    path: &str,
    timeout: Duration,
) -> Result<T, String> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let r = http::get_url(&url, timeout).await?;
    let envelope: Envelope<T> = serde_json::from_slice(&r.body).map_err(|e| {
        format!(
            "{url}: not a Prometheus API answer (status {}, {e})",
            r.status
        )
    })?;
    match (envelope.status.as_str(), envelope.data) {
        ("success", Some(data)) => Ok(data),
        _ => Err(format!(
            "{url}: Prometheus said {} ({})",
            envelope.status,
            envelope.error.unwrap_or_default()
        )),
    }
}

/// Every active target and its health.
pub async fn targets(base: &str, timeout: Duration) -> Result<Vec<Target>, String> {
    let data: TargetsData = api(base, "/api/v1/targets?state=active", timeout).await?;
    Ok(data
        .active_targets
        .into_iter()
        .map(|t| Target {
            job: t.labels.get("job").cloned().unwrap_or_default(),
            instance: t.labels.get("instance").cloned().unwrap_or_default(),
            health: t.health,
            last_error: t.last_error,
        })
        .collect())
}

/// Every pending or firing alert.
pub async fn alerts(base: &str, timeout: Duration) -> Result<Vec<Alert>, String> {
    let data: AlertsData = api(base, "/api/v1/alerts", timeout).await?;
    Ok(data
        .alerts
        .into_iter()
        .map(|a| Alert {
            name: a.labels.get("alertname").cloned().unwrap_or_default(),
            state: a.state,
            labels: a.labels,
        })
        .collect())
}

/// One sample of the text exposition format.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the text exposition format (comments skipped, label values unescaped).
pub fn parse_text(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let end;
        loop {
            // label name
            let start = chars.peek()?.0;
            while chars.peek().is_some_and(|&(_, c)| c != '=' && c != '}') {
                chars.next();
            }
            let (i, c) = chars.next()?;
            if c == '}' {
                end = i;
                break;
            }
            let key = body[start..i]
                .trim()
                .trim_start_matches(',')
                .trim()
                .to_string();
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break,
                    c => value.push(c),
                }
            }
            labels.insert(key, value);
            if chars.peek().is_some_and(|&(_, c)| c == ',') {
                chars.next();
            }
            if let Some(&(i, '}')) = chars.peek() {
                end = i;
                break;
            }
        }
        &body[end + 1..]
    } else {
        rest
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_lines_with_and_without_labels() {
        let text = "# HELP x y\n\
                    mysql_up 1\n\
                    mysql_slave_status_seconds_behind_master{channel_name=\"\",connection_name=\"\",master_host=\"10.0.0.1\",master_uuid=\"\"} 3\n\
                    weird{a=\"q\\\"uote,}\"} 2.5e0\n\
                    broken{a=1} 3\n";
        let samples = parse_text(text);
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].name, "mysql_up");
        assert_eq!(samples[1].labels["master_host"], "10.0.0.1");
        assert_eq!(samples[1].value, 3.0);
        assert_eq!(samples[2].labels["a"], "q\"uote,}");
        assert_eq!(samples[2].value, 2.5);
    }

    #[test]
    fn truncated_or_garbled_lines_are_skipped_not_panicked_on() {
        for bad in [
            "{",
            "x{",
            "x{a",
            "x{a=",
            "x{a=\"",
            "x{a=\"v",
            "x{a=\"v\"",
            "x{a=\"v\",",
            "x{}",
            "x{} ",
            "x 1e999999",
            "x nan?",
            "é{é=\"é\"} 1",
            "x{a=\"\\",
        ] {
            let parsed = parse_text(bad);
            assert!(
                parsed.iter().all(|s| s.name == "x" || s.name == "é"),
                "{bad}"
            );
        }
        assert_eq!(parse_text("x{} 3")[0].value, 3.0);
    }
}
