//! `reach`: one verdict on whether the running infrastructure matches the topology.
//!
//! The binary only parses arguments; each command here takes typed options, probes
//! concurrently on a single-threaded tokio runtime, and returns a [`Report`]. Problems
//! found while probing are checks that fail; problems that keep a command from running
//! at all (bad topology, unknown vantage, unusable CA, malformed manifest) are
//! [`ReachError`]s, which the binary turns into exit code 2.
//!
//! - [`vantage`]: resolving `--from` and making sure the process runs there.
//! - [`ports`]: the port policy matrix and ad-hoc `reach ports`.
//! - [`sweep`]: every port of every other host, judged against the policy.
//! - [`check`]: `reach check`, every group from one vantage.
//! - [`listeners`]: the vantage host's own listening sockets against its declared services.
//! - [`ruleset`]: the live nftables ruleset against the rendered one, and UDP exposure.
//! - [`tls`]: the TLS profile (protocols, suites, groups, certificate) of every TLS endpoint.
//! - [`profile`]: Mozilla's TLS profiles, from lib/tls-profiles.json.
//! - [`https`]: TLS, redirect, HSTS and rotation checks of one endpoint.
//! - [`services`]: HAProxy backends, Prometheus targets and alerts, replication.
//! - [`certs`]: the vantage host's certificate files.
//! - [`files`]: web content against a SHA-256 manifest.
//! - [`textfile`]: the node_exporter textfile (docs/contracts.md).
//! - [`report`]: the report of a run, as a table or JSON.

pub mod certs;
pub mod check;
pub mod files;
pub mod https;
pub mod listeners;
pub mod ports;
pub mod profile;
pub mod report;
pub mod ruleset;
pub mod services;
pub mod sweep;
pub mod textfile;
pub mod tls;
pub mod vantage;

pub use check::CheckOptions;
pub use services::AlertExpectations;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::report::Report;
use rampart_topology::Topology;

/// Why a `reach` command could not run (exit code 2). Findings are never errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReachError {
    #[error("reach: unknown vantage \"{got}\" for --from (expected one of: {expected})")]
    UnknownVantage { got: String, expected: String },
    #[error(
        "reach: unknown TLS profile \"{got}\" for --tls-profile (expected one of: {expected})"
    )]
    UnknownProfile { got: String, expected: String },
    #[error("reach: --from admin needs the topology's lab.admin address (got none); add \"lab\": {{ \"admin\": … }} to the topology or use another vantage")]
    NoAdminVantage,
    #[error("reach: vantage {vantage} has address {address}, which is not an address of this machine ({source}); run reach where {vantage} is, e.g. `ip netns exec <{vantage}'s namespace> reach check --from {vantage} …`")]
    VantageNotLocal {
        vantage: String,
        address: Ipv4Addr,
        source: std::io::Error,
    },
    #[error("reach: cannot resolve {host:?} ({source}); pass an IP address or a name this machine resolves")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("reach: {what} {} cannot be used: {problem}; {hint}", path.display())]
    Input {
        what: &'static str,
        path: PathBuf,
        problem: String,
        hint: &'static str,
    },
    #[error("reach: {what} {got:?} is not valid (expected {expected})")]
    Argument {
        what: &'static str,
        got: String,
        expected: &'static str,
    },
    #[error("reach: cannot start the probe runtime: {0}")]
    Runtime(std::io::Error),
    #[error("reach: the port sweep cannot run: {problem}; run reach as root (raw probes) or pass --sweep-method connect")]
    Sweep { problem: String },
}

/// Parses `--timeout` values: `1s`, `500ms`, `1.5s`, or plain seconds (`2`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("\"{text}\" is not a duration (expected e.g. 1s, 500ms, 1.5s)");
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value <= 0.0 || value * scale > 3600.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(value * scale))
}

/// Awaits futures concurrently on the current task, keeping their order.
pub(crate) async fn join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, fut) in results.iter_mut().zip(pinned.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// Runs a future to completion on a fresh single-threaded runtime.
fn block_on<F: Future>(future: F) -> Result<F::Output, ReachError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ReachError::Runtime)?;
    Ok(runtime.block_on(future))
}

/// The groups of checks `reach check` runs; `--only` selects some.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Ports,
    Sweep,
    Listeners,
    Ruleset,
    Tls,
    Https,
    Haproxy,
    Prometheus,
    Alerts,
    Replication,
    Certificates,
    Files,
}

impl Group {
    pub const ALL: [Group; 12] = [
        Group::Ports,
        Group::Sweep,
        Group::Listeners,
        Group::Ruleset,
        Group::Tls,
        Group::Https,
        Group::Haproxy,
        Group::Prometheus,
        Group::Alerts,
        Group::Replication,
        Group::Certificates,
        Group::Files,
    ];

    /// The name in `--only`, in reports and in the textfile's `check` label.
    pub fn name(self) -> &'static str {
        match self {
            Group::Ports => "ports",
            Group::Sweep => "sweep",
            Group::Listeners => "listeners",
            Group::Ruleset => "ruleset",
            Group::Tls => "tls",
            Group::Https => "https",
            Group::Haproxy => "haproxy",
            Group::Prometheus => "prometheus",
            Group::Alerts => "alerts",
            Group::Replication => "replication",
            Group::Certificates => "certificates",
            Group::Files => "files",
        }
    }
}

impl std::str::FromStr for Group {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Group::ALL
            .into_iter()
            .find(|g| g.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Group::ALL.iter().map(|g| g.name()).collect();
                format!(
                    "unknown check group \"{s}\" (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// `reach check`: every check the topology implies from the vantage.
pub fn check(topology: &Topology, options: &CheckOptions) -> Result<Report, ReachError> {
    check::run(topology, options)
}

/// Options of `reach ports`.
#[derive(Clone, Debug)]
pub struct PortsOptions {
    pub host: String,
    pub ports: Vec<ports::PortArg>,
    /// Leave from this local address (as `--from` does in `reach check`).
    pub source: Option<IpAddr>,
    pub timeout: Duration,
}

/// `reach ports HOST PORT[=STATE]...`.
pub fn ports(options: &PortsOptions) -> Result<Report, ReachError> {
    let started = Instant::now();
    let checks = block_on(async {
        let address = resolve(&options.host).await?;
        Ok::<_, ReachError>(
            ports::adhoc(
                &options.host,
                address,
                &options.ports,
                options.source,
                options.timeout,
            )
            .await,
        )
    })??;
    Ok(Report::new(
        "ports",
        None,
        checks,
        started.elapsed().as_secs_f64(),
    ))
}

/// Options of `reach sweep`.
#[derive(Clone, Debug)]
pub struct SweepCommandOptions {
    pub hosts: Vec<String>,
    /// Leave from this local address.
    pub source: Option<Ipv4Addr>,
    pub ports: std::ops::RangeInclusive<u16>,
    pub settings: sweep::SweepSettings,
}

/// `reach sweep HOST...`: every port of each host, listed (open ports one per line).
pub fn sweep(options: &SweepCommandOptions) -> Result<Report, ReachError> {
    let started = Instant::now();
    let targets = block_on(async {
        let mut out = Vec::new();
        for host in &options.hosts {
            match resolve(host).await? {
                IpAddr::V4(a) => out.push((host.clone(), a)),
                IpAddr::V6(_) => {
                    return Err(ReachError::Argument {
                        what: "host",
                        got: host.clone(),
                        expected: "an IPv4 address or a name with one (the sweep is IPv4 only)",
                    })
                }
            }
        }
        Ok(out)
    })??;
    let addresses: Vec<Ipv4Addr> = targets.iter().map(|(_, a)| *a).collect();
    let s = &options.settings;
    let sweep_options = rampart_probe::sweep::SweepOptions {
        source: options.source,
        timeout: s.timeout,
        retries: s.retries,
        ports: options.ports.clone(),
        method: s.method,
        max_rate: s.max_rate,
    };
    let result =
        rampart_probe::sweep::sweep(&addresses, &sweep_options).map_err(|e| ReachError::Sweep {
            problem: e.to_string(),
        })?;
    Ok(Report::new(
        "sweep",
        None,
        sweep::adhoc(&targets, &result),
        started.elapsed().as_secs_f64(),
    ))
}

/// Parses a port range: `1-65535`, `8000-9000`, or one port.
pub fn parse_port_range(text: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let bad = || format!("\"{text}\" is not a port range (expected e.g. 1-65535 or 443)");
    let port = |t: &str| {
        t.trim()
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(bad)
    };
    let (low, high) = match text.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(text)?, port(text)?),
    };
    if low > high {
        return Err(bad());
    }
    Ok(low..=high)
}

/// Options of `reach https URL`.
#[derive(Clone, Debug)]
pub struct HttpsOptions {
    pub url: String,
    /// The rampart CA (PEM), the only trust anchor.
    pub ca: PathBuf,
    /// Client certificate and key for servers that ask for one (mTLS backends).
    pub client: Option<(PathBuf, PathBuf)>,
    /// Connect here instead of resolving the URL's host (like curl's `--resolve`).
    pub address: Option<IpAddr>,
    /// More names the certificate must be valid for.
    pub names: Vec<String>,
    /// Plain-HTTP port that must redirect (`None`: not checked).
    pub redirect_port: Option<u16>,
    pub hsts: bool,
    /// Backends every rotation must reach (empty: rotation not checked).
    pub backends: Vec<String>,
    pub requests: usize,
    pub timeout: Duration,
    pub min_days: i64,
    /// The TLS profile the endpoint is judged by (lib/tls-profiles.json).
    pub tls_profile: String,
}

/// Loads the CA and optional client identity, or says which file is unusable.
pub fn tls_setup(
    ca: &std::path::Path,
    client: Option<&(PathBuf, PathBuf)>,
) -> Result<rampart_probe::tls::TlsSetup, ReachError> {
    let client = client.map(|(c, k)| (c.as_path(), k.as_path()));
    rampart_probe::tls::TlsSetup::load(ca, client).map_err(|e| match e {
        rampart_probe::tls::TlsSetupError::Pem { path, problem } => ReachError::Input {
            what: "certificate file",
            path,
            problem,
            hint: "pass the rampart CA with --ca (PEM, e.g. certtool's DIR/ca.pem) and a PEM certificate and PKCS#8 key for the client",
        },
    })
}

/// `reach https URL --ca FILE`: the HTTPS checks of one endpoint.
pub fn https(options: &HttpsOptions) -> Result<Report, ReachError> {
    let started = Instant::now();
    let (tls, host, port, path) =
        rampart_probe::http::split_url(&options.url).ok_or_else(|| ReachError::Argument {
            what: "URL",
            got: options.url.clone(),
            expected: "https://HOST[:PORT][/PATH]",
        })?;
    if !tls {
        return Err(ReachError::Argument {
            what: "URL",
            got: options.url.clone(),
            expected: "an https:// URL; the http:// side is checked with --http-port",
        });
    }
    let setup = tls_setup(&options.ca, options.client.as_ref())?;
    let profile = profile::Profile::named(&options.tls_profile)?;
    let anchors = std::fs::read(&options.ca).ok();
    let checks = block_on(async {
        let address = match options.address {
            Some(a) => a,
            None => resolve(&host).await?,
        };
        let mut names = vec![host.clone()];
        names.extend(options.names.iter().cloned());
        let endpoint = https::Endpoint {
            target: host.clone(),
            address,
            port,
            names,
            path,
            redirect_port: options.redirect_port,
            hsts: options.hsts,
            rotation: (!options.backends.is_empty())
                .then(|| (options.backends.clone(), options.requests)),
        };
        let limits = https::Limits {
            timeout: options.timeout,
            min_days: options.min_days,
        };
        let limit = tls::run_limit();
        let tls_endpoint = tls::Endpoint {
            host: host.clone(),
            service: "https".into(),
            address: std::net::SocketAddr::new(address, port),
            name: host.clone(),
        };
        let (mut checks, profile_checks) = tokio::join!(
            https::endpoint(&setup, &endpoint, limits),
            tls::endpoint(
                &tls_endpoint,
                rampart_probe::handshake::Starttls::None,
                &profile,
                anchors.as_deref(),
                options.timeout,
                &limit,
            )
        );
        checks.extend(profile_checks);
        Ok::<_, ReachError>(checks)
    })??;
    Ok(Report::new(
        "https",
        None,
        checks,
        started.elapsed().as_secs_f64(),
    ))
}

/// Writes the node_exporter textfile of a `reach check` report (docs/contracts.md).
pub fn write_textfile(report: &Report, path: &std::path::Path) -> Result<(), ReachError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    textfile::write_atomically(path, &textfile::render(report, now)).map_err(|e| {
        ReachError::Input {
            what: "textfile",
            path: path.to_path_buf(),
            problem: format!("cannot write it ({e})"),
            hint: "point --prom-textfile into node_exporter's writable textfile directory",
        }
    })
}

/// `reach files --manifest FILE ROOT`.
pub fn files(root: &std::path::Path, manifest: &std::path::Path) -> Result<Report, ReachError> {
    let started = Instant::now();
    let checks = files::check(root, manifest)?;
    Ok(Report::new(
        "files",
        None,
        checks,
        started.elapsed().as_secs_f64(),
    ))
}

/// `reach files --write-manifest FILE ROOT`.
pub fn write_manifest(
    root: &std::path::Path,
    manifest: &std::path::Path,
) -> Result<Report, ReachError> {
    let started = Instant::now();
    let n = files::write_manifest(root, manifest)?;
    let mut c = crate::report::Check::new("files", &root.display().to_string(), "write-manifest")
        .judged(true, "", format!("{n} files"))
        .with_reason(manifest.display().to_string());
    c.status = crate::report::Status::Info;
    Ok(Report::new(
        "files",
        None,
        vec![c],
        started.elapsed().as_secs_f64(),
    ))
}

/// The first address of a host name (or the address itself).
async fn resolve(host: &str) -> Result<IpAddr, ReachError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    let not_found = || std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    tokio::net::lookup_host((host, 0))
        .await
        .and_then(|mut addrs| addrs.next().ok_or_else(not_found))
        .map(|a| a.ip())
        .map_err(|source| ReachError::Resolve {
            host: host.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::vantage::Vantage;
    use super::*;

    #[test]
    fn durations_take_seconds_and_milliseconds() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(
            parse_duration("soon"),
            Err("\"soon\" is not a duration (expected e.g. 1s, 500ms, 1.5s)".into())
        );
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn an_unknown_vantage_lists_the_valid_ones() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../hosts/topology.json");
        let t = Topology::load(&path).unwrap();
        let err = Vantage::resolve(&t, "web3").unwrap_err();
        assert_eq!(
            err.to_string(),
            "reach: unknown vantage \"web3\" for --from (expected one of: lb, web1, web2, outside, admin)"
        );
    }
}
