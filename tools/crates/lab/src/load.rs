//! Bounded HTTP load with `wrk` from inside a lab namespace, and what it reports.
//!
//! Every run has a fixed duration (`-d`) and a connection count; wrk stops by itself.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{LabError, Result};

/// One wrk run: where from, against what, how hard and how long.
#[derive(Clone, Debug)]
pub struct Load {
    pub namespace: String,
    pub url: String,
    /// Sent as the Host header (wrk has no --resolve; SNI is the URL's host).
    pub host_header: Option<String>,
    pub threads: u32,
    pub connections: u32,
    pub duration: Duration,
}

/// What wrk reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    pub requests: u64,
    pub requests_per_second: f64,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
    /// Connect, read, write and timeout errors.
    pub socket_errors: u64,
    /// Answers with a status other than 2xx or 3xx.
    pub non_2xx_3xx: u64,
}

impl LoadReport {
    /// Requests that did not get a 2xx or 3xx answer.
    pub fn failed(&self) -> u64 {
        self.socket_errors + self.non_2xx_3xx
    }
}

impl Load {
    fn command(&self) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.namespace, "wrk", "--latency"])
            .arg(format!("-t{}", self.threads))
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", self.duration.as_secs().max(1)))
            .arg("--timeout")
            .arg("5s");
        if let Some(host) = &self.host_header {
            cmd.arg("-H").arg(format!("Host: {host}"));
        }
        cmd.arg(&self.url);
        cmd
    }

    /// Starts the load in the background.
    pub fn start(&self) -> Result<Running> {
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| LabError::Spawn {
                program: "wrk".into(),
                source,
            })?;
        Ok(Running { child })
    }

    /// Runs the load to its end.
    pub fn run(&self) -> Result<LoadReport> {
        self.start()?.finish()
    }
}

/// A load in progress.
#[derive(Debug)]
pub struct Running {
    child: Child,
}

impl Running {
    /// Waits for wrk's fixed duration to end and parses its report.
    pub fn finish(self) -> Result<LoadReport> {
        let output = self
            .child
            .wait_with_output()
            .map_err(|source| LabError::Spawn {
                program: "wrk".into(),
                source,
            })?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(LabError::Command {
                command: "wrk".into(),
                status: output.status.to_string(),
                stderr: format!("{}{}", text, String::from_utf8_lossy(&output.stderr)),
            });
        }
        parse(&text).ok_or_else(|| {
            LabError::Invalid(format!(
                "wrk printed no request count; its output was:\n{text}"
            ))
        })
    }

    /// Ends the load early (SIGTERM to wrk, which then prints nothing useful).
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses wrk's text report.
pub fn parse(text: &str) -> Option<LoadReport> {
    let mut report = LoadReport::default();
    let mut saw_requests = false;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("99%") {
            report.p99_ms = duration_ms(rest.trim())?;
        } else if line.contains("requests in") {
            report.requests = line.split_whitespace().next()?.parse().ok()?;
            saw_requests = true;
        } else if let Some(rest) = line.strip_prefix("Requests/sec:") {
            report.requests_per_second = rest.trim().parse().ok()?;
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            report.non_2xx_3xx = rest.trim().parse().ok()?;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 1, write 0, timeout 2"
            report.socket_errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        }
    }
    saw_requests.then_some(report)
}

/// wrk's durations: `812.00us`, `1.25ms`, `2.00s`, `1.00m`.
fn duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => value / 1000.0,
        "ms" => value,
        "s" => value * 1000.0,
        "m" => value * 60_000.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 10s test @ https://10.42.0.10/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.12ms    2.56ms  23.78ms   90.19%
  Latency Distribution
     50%   77.00us
     99%   12.10ms
  137770 requests in 10.00s, 28.1MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  13773.34
Transfer/sec:      2.81MB
";

    #[test]
    fn the_report_gives_counts_rate_p99_and_failures() {
        let r = parse(WRK).unwrap();
        assert_eq!(r.requests, 137_770);
        assert_eq!(r.requests_per_second, 13773.34);
        assert_eq!(r.p99_ms, 12.10);
        assert_eq!(r.socket_errors, 5);
        assert_eq!(r.failed(), 12);
    }

    #[test]
    fn durations_of_every_unit() {
        assert_eq!(duration_ms("812.00us"), Some(0.812));
        assert_eq!(duration_ms("2.00s"), Some(2000.0));
        assert_eq!(duration_ms("fast"), None);
        assert!(parse("wrk: connection refused").is_none());
    }
}
