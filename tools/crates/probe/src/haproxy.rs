//! HAProxy's own view of its backends: the stats CSV (`show stat`), read over the stats
//! socket or from the stats page (`<uri>;csv`).

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::http;

/// Where the stats come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatsSource {
    /// `http://host:port/stats;csv`
    Url(String),
    /// HAProxy's stats socket (`stats socket … level …`).
    Socket(PathBuf),
}

impl StatsSource {
    /// A path (starts with `/`) is a socket; anything else a URL.
    pub fn parse(text: &str) -> StatsSource {
        if text.starts_with('/') {
            StatsSource::Socket(PathBuf::from(text))
        } else {
            StatsSource::Url(text.to_string())
        }
    }

    pub fn describe(&self) -> String {
        match self {
            StatsSource::Url(u) => u.clone(),
            StatsSource::Socket(p) => p.display().to_string(),
        }
    }
}

/// One server line of a backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub backend: String,
    pub server: String,
    /// `UP`, `DOWN`, `MAINT`, `UP 1/3` (going down), `no check`, …
    pub status: String,
    /// `L4OK`, `L6OK`, `L7OK`, `L4CON`, `L7STS`, … (empty without health checks).
    pub check_status: String,
    /// The server whose health this one follows (`track web/web1`; empty when it has its
    /// own checks). rampart's `web_writes` servers track those of `web`.
    pub tracked: String,
}

impl Server {
    /// UP with a passing health check (a server without checks is never "healthy"); a
    /// tracking server is UP (its check is the tracked server's, on that one's own row).
    pub fn healthy(&self) -> bool {
        if !self.tracked.is_empty() {
            return self.status == "UP";
        }
        // "* L7OK": HAProxy marks a check that is running right now with "* "; the
        // result shown is still the last one's.
        let last = self
            .check_status
            .strip_prefix("* ")
            .unwrap_or(&self.check_status);
        self.status == "UP" && last.starts_with('L') && last.ends_with("OK")
    }
}

/// Parses the CSV of `show stat`: every server row (not FRONTEND/BACKEND aggregates).
pub fn parse(csv: &str) -> Result<Vec<Server>, String> {
    let mut lines = csv.lines();
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or_else(|| {
            "not HAProxy stats CSV (expected a first line \"# pxname,svname,…\")".to_string()
        })?;
    let columns: Vec<&str> = header.split(',').collect();
    let col = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("stats CSV has no column {name:?}"))
    };
    let (px, sv, status, check) = (
        col("pxname")?,
        col("svname")?,
        col("status")?,
        col("check_status")?,
    );
    // Absent from stats pages of HAProxy older than rampart's; no column, no tracking.
    let tracked = columns.iter().position(|c| *c == "tracked");
    let mut servers = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or_default().to_string();
        let name = field(sv);
        if name == "FRONTEND" || name == "BACKEND" {
            continue;
        }
        servers.push(Server {
            backend: field(px),
            server: name,
            status: field(status),
            check_status: field(check),
            tracked: tracked.map(field).unwrap_or_default(),
        });
    }
    Ok(servers)
}

/// Reads the stats from the socket or the URL.
pub async fn fetch(source: &StatsSource, timeout: Duration) -> Result<Vec<Server>, String> {
    let text = match source {
        StatsSource::Url(url) => {
            let r = http::get_url(url, timeout).await?;
            if r.status != 200 {
                return Err(format!("{url} answered {}", r.status));
            }
            r.text()
        }
        StatsSource::Socket(path) => {
            let exchange = async {
                let mut s = tokio::net::UnixStream::connect(path).await?;
                s.write_all(b"show stat\n").await?;
                let mut out = String::new();
                s.read_to_string(&mut out).await?;
                Ok::<_, std::io::Error>(out)
            };
            tokio::time::timeout(timeout, exchange)
                .await
                .map_err(|_| format!("no answer on {} within {timeout:?}", path.display()))?
                .map_err(|e| format!("cannot use the stats socket {}: {e}", path.display()))?
        }
    };
    parse(&text).map_err(|e| format!("{}: {e}", source.describe()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_read_by_column_name() {
        let csv = "# pxname,svname,qcur,status,check_status,weight,tracked\n\
                   web,FRONTEND,,OPEN,,,\n\
                   web,web1,0,UP,L7OK,1,\n\
                   web,web2,0,DOWN,L4CON,1,\n\
                   web,web3,0,no check,,1,\n\
                   web,web4,0,UP,* L7OK,1,\n\
                   web,BACKEND,0,UP,,2,\n\
                   web_writes,web1,0,UP,,1,web/web1\n\
                   web_writes,web2,0,DOWN,,1,web/web2\n";
        let servers = parse(csv).unwrap();
        let healthy: Vec<(&str, bool)> = servers
            .iter()
            .map(|s| (s.server.as_str(), s.healthy()))
            .collect();
        assert_eq!(
            healthy,
            [
                ("web1", true),
                ("web2", false),
                ("web3", false),
                ("web4", true),
                // Tracking servers: UP is enough, the check is the tracked one's.
                ("web1", true),
                ("web2", false)
            ]
        );
        assert!(parse("<html>").is_err());
        assert_eq!(
            parse("# pxname,svname\n").unwrap_err(),
            "stats CSV has no column \"status\""
        );
    }
}
