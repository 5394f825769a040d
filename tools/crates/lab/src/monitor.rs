//! Asking the lab's Prometheus and HAProxy how things stand.

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
    fn show_stat_keeps_servers_only() {
        let csv = "# pxname,svname,qcur,status,check_status\nweb,FRONTEND,,OPEN,\nweb,web1,0,UP,L7OK\nweb,web2,0,DOWN,* L6RSP\nweb,BACKEND,0,UP,\n";
        let servers = parse_stat(csv);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1].status, "DOWN");
        assert_eq!(servers[1].check, "L6RSP");
    }
}
