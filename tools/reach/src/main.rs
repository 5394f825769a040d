//! `reach`: one verdict on whether running infrastructure matches its topology.
//!
//! Exit codes: 0 all as declared, 1 problems found, 2 could not run (see `rampart_cli::exit`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use rampart_reach::report::Report;
use rampart_reach::sweep::SweepSettings;
use rampart_reach::{
    self as reach, ports::PortArg, AlertExpectations, CheckOptions, Group, HttpsOptions,
    PortsOptions, SweepCommandOptions,
};
use rampart_topology::Topology;

#[derive(Parser)]
#[command(version, about, long_about = None, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `reach check`'s arguments.
#[derive(clap::Args)]
struct CheckArgs {
    /// The topology to read.
    #[arg(long, default_value = "hosts/topology.json")]
    topology: PathBuf,
    /// The vantage: a topology host, or the lab's `outside` / `admin` client.
    #[arg(long, value_name = "HOST")]
    from: String,
    /// Per-probe timeout; probes run concurrently, so a whole matrix costs about one.
    #[arg(long, default_value = "1s", value_parser = reach::parse_duration)]
    timeout: Duration,
    /// Run only these groups of checks (comma-separated or repeated): ports, sweep,
    /// listeners, ruleset, tls, https, haproxy, prometheus, alerts, replication,
    /// certificates, files.
    #[arg(long, value_delimiter = ',', value_name = "GROUP")]
    only: Vec<Group>,
    /// The rampart CA (PEM), the only trust anchor [default: PKI_DIR/ca.pem].
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// This host's PKI directory (certificate files per docs/contracts.md)
    /// [default: /var/lib/rampart/pki; when that is absent, certificates are skipped].
    #[arg(long, value_name = "DIR")]
    pki_dir: Option<PathBuf>,
    /// HAProxy stats: the stats socket (a path) or the CSV URL
    /// [default: http://<lb>:<haproxyExporter port>/stats;csv].
    #[arg(long, value_name = "SOCKET|URL")]
    haproxy_stats: Option<String>,
    /// Prometheus' base URL [default: http://<monitoring host>:<prometheus port>].
    #[arg(long, value_name = "URL")]
    prometheus: Option<String>,
    /// The replica's mysqld exporter metrics URL
    /// [default: http://<replica>:<mysqldExporter port>/metrics].
    #[arg(long, value_name = "URL")]
    mysqld_exporter: Option<String>,
    /// An alert that must be firing (repeatable).
    #[arg(long = "expect-alert", value_name = "NAME")]
    expect_alerts: Vec<String>,
    /// No alert (other than --expect-alert ones) may be firing.
    #[arg(long)]
    expect_no_alert: bool,
    /// A web root to check against --manifest (repeatable, paired in order).
    #[arg(long = "web-root", value_name = "DIR", requires = "manifests")]
    web_roots: Vec<PathBuf>,
    /// The SHA-256 manifest of the matching --web-root.
    #[arg(long = "manifest", value_name = "FILE")]
    manifests: Vec<PathBuf>,
    /// Requests of the rotation check [default: 4 per web host].
    #[arg(long, value_name = "N")]
    requests: Option<usize>,
    /// Replication lag above this many seconds fails.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    max_lag: f64,
    /// Also write the results for node_exporter's textfile collector (atomically).
    #[arg(long, value_name = "PATH")]
    prom_textfile: Option<PathBuf>,
    /// The host's rendered nftables ruleset (lib.render's `nftables/ruleset.nft`): the
    /// `ruleset` group compares the live one with it, rule by rule.
    #[arg(long, value_name = "FILE")]
    ruleset: Option<PathBuf>,
    /// The Mozilla TLS profile (lib/tls-profiles.json) every TLS endpoint is judged by:
    /// intermediate or modern; the deployment's settings.tls.profile.
    #[arg(long, default_value = "intermediate", value_name = "PROFILE")]
    tls_profile: String,
    #[command(flatten)]
    sweep: SweepArgs,
    #[command(flatten)]
    trust: Trust,
    #[command(flatten)]
    output: Output,
}

/// How the port sweep runs.
#[derive(clap::Args)]
struct SweepArgs {
    /// raw: SYN probes on an AF_PACKET socket (needs CAP_NET_RAW); connect: plain
    /// connects (unprivileged, slower); auto: raw when allowed, else connect.
    #[arg(long, default_value = "auto", value_name = "auto|raw|connect")]
    sweep_method: reach::sweep::Method,
    /// How long each round waits for answers after its last probe [default: --timeout].
    #[arg(long, value_parser = reach::parse_duration, value_name = "DURATION")]
    sweep_timeout: Option<Duration>,
    /// Extra rounds for ports that stayed silent (nmap's --max-retries).
    #[arg(long, default_value_t = 1, value_name = "N")]
    sweep_retries: u32,
    /// Raw probes per second at most [default: as fast as the link takes them].
    #[arg(long, value_name = "PPS")]
    sweep_rate: Option<u32>,
}

impl SweepArgs {
    fn settings(&self, timeout: Duration) -> SweepSettings {
        SweepSettings {
            method: self.sweep_method,
            timeout: self.sweep_timeout.unwrap_or(timeout),
            retries: self.sweep_retries,
            max_rate: self.sweep_rate,
        }
    }
}

/// Output options shared by every command.
#[derive(clap::Args)]
struct Output {
    /// Print one JSON document instead of the table (schema: rustdoc of `rampart_reach::report`).
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Check everything the topology declares, as seen from one vantage. Run it there,
    /// e.g. `ip netns exec <ns of web1> reach check --from web1`.
    Check(Box<CheckArgs>),
    /// Compare a web root with a manifest of SHA-256 sums: missing, changed and
    /// unexpected files. With --write-manifest, write the manifest instead.
    Files {
        /// The web root.
        root: PathBuf,
        /// The manifest to check against.
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "write_manifest",
            conflicts_with = "write_manifest"
        )]
        manifest: Option<PathBuf>,
        /// Write the manifest of ROOT to FILE (sha256sum format).
        #[arg(long, value_name = "FILE")]
        write_manifest: Option<PathBuf>,
        #[command(flatten)]
        output: Output,
    },
    /// Probe TCP ports of one host: open (syn-ack), closed (reset) or filtered (no answer).
    /// `PORT=STATE` (open, closed, filtered, blocked = closed or filtered) also judges it.
    Ports {
        /// Host name or address to probe.
        host: String,
        /// Ports, each optionally with the expected state: `443`, `443=open`, `22=blocked`.
        #[arg(required = true, value_name = "PORT[=STATE]")]
        ports: Vec<PortArg>,
        /// Send probes from this local address.
        #[arg(long, value_name = "ADDRESS")]
        source: Option<IpAddr>,
        /// Per-probe timeout.
        #[arg(long, default_value = "1s", value_parser = reach::parse_duration)]
        timeout: Duration,
        #[command(flatten)]
        output: Output,
    },
    /// Sweep every TCP port of some hosts: open (syn-ack), closed (reset) or filtered
    /// (no answer), open ports listed one per line. Nothing is judged (exit 0).
    Sweep {
        /// Host names or IPv4 addresses.
        #[arg(required = true, value_name = "HOST")]
        hosts: Vec<String>,
        /// Send probes from this local address.
        #[arg(long, value_name = "ADDRESS")]
        source: Option<std::net::Ipv4Addr>,
        /// The ports to sweep.
        #[arg(long, default_value = "1-65535", value_parser = reach::parse_port_range, value_name = "LOW-HIGH")]
        ports: std::ops::RangeInclusive<u16>,
        /// How long each round waits for answers after its last probe.
        #[arg(long, default_value = "1s", value_parser = reach::parse_duration)]
        timeout: Duration,
        #[command(flatten)]
        sweep: SweepArgs,
        #[command(flatten)]
        output: Output,
    },
    /// Check one HTTPS endpoint: chain against the rampart CA only, SAN, days to expiry,
    /// HTTP→HTTPS redirect, HSTS, rotation, and its TLS profile (protocols, suites,
    /// groups, certificate).
    Https {
        /// The endpoint, `https://HOST[:PORT][/PATH]`.
        url: String,
        /// The rampart CA (PEM): the only trust anchor, never the system roots.
        #[arg(long, value_name = "FILE")]
        ca: PathBuf,
        /// Connect to this address instead of resolving HOST.
        #[arg(long, value_name = "ADDRESS")]
        address: Option<IpAddr>,
        /// Another name the certificate must be valid for (repeatable).
        #[arg(long = "name", value_name = "NAME")]
        names: Vec<String>,
        /// Plain-HTTP port that must answer 301/308 to https.
        #[arg(
            long,
            default_value_t = 80,
            value_name = "PORT",
            conflicts_with = "no_redirect"
        )]
        http_port: u16,
        /// Do not check the HTTP→HTTPS redirect.
        #[arg(long)]
        no_redirect: bool,
        /// Do not require HSTS.
        #[arg(long)]
        no_hsts: bool,
        /// A backend that must answer within --requests requests (repeatable); the
        /// response body names the backend that served it.
        #[arg(long = "backend", value_name = "NAME")]
        backends: Vec<String>,
        /// Requests for the rotation check.
        #[arg(long, default_value_t = 8, value_name = "N")]
        requests: usize,
        /// The Mozilla TLS profile (lib/tls-profiles.json) the endpoint is judged by.
        #[arg(long, default_value = "intermediate", value_name = "PROFILE")]
        tls_profile: String,
        #[command(flatten)]
        trust: Trust,
        /// Per-probe timeout.
        #[arg(long, default_value = "1s", value_parser = reach::parse_duration)]
        timeout: Duration,
        #[command(flatten)]
        output: Output,
    },
}

/// Where TLS trust comes from.
#[derive(clap::Args)]
struct Trust {
    /// Client certificate (PEM) to present to servers that require one (mTLS backends).
    #[arg(long, value_name = "FILE", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// The client certificate's private key (PKCS#8 PEM).
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// A certificate with fewer days left fails the expiry check.
    #[arg(long, default_value_t = 14, value_name = "DAYS")]
    min_days: i64,
}

impl Trust {
    fn client(&self) -> Option<(PathBuf, PathBuf)> {
        self.client_cert.clone().zip(self.client_key.clone())
    }
}

fn print(report: &Report, output: &Output) -> ExitCode {
    if output.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    rampart_cli::exit::from_findings(report.has_failures())
}

fn exec(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Check(args) => {
            let CheckArgs {
                topology,
                from,
                timeout,
                only,
                ca,
                pki_dir,
                haproxy_stats,
                prometheus,
                mysqld_exporter,
                expect_alerts,
                expect_no_alert,
                web_roots,
                manifests,
                requests,
                max_lag,
                prom_textfile,
                ruleset,
                tls_profile,
                sweep,
                trust,
                output,
            } = *args;
            if web_roots.len() != manifests.len() {
                anyhow::bail!(
                    "reach: --web-root and --manifest come in pairs (got {} roots, {} manifests)",
                    web_roots.len(),
                    manifests.len()
                );
            }
            let topology = Topology::load(&topology)?;
            let options = CheckOptions {
                timeout,
                only,
                ca,
                client: trust.client(),
                pki_dir,
                haproxy_stats,
                prometheus,
                mysqld_exporter,
                alerts: AlertExpectations {
                    firing: expect_alerts,
                    none_else: expect_no_alert,
                },
                web_roots: web_roots.into_iter().zip(manifests).collect(),
                requests: requests.unwrap_or(0),
                max_lag,
                min_days: trust.min_days,
                sweep: sweep.settings(timeout),
                ruleset,
                tls_profile,
                ..CheckOptions::new(&from)
            };
            let report = reach::check(&topology, &options)?;
            if let Some(path) = prom_textfile {
                reach::write_textfile(&report, &path)?;
            }
            Ok(print(&report, &output))
        }
        Command::Files {
            root,
            manifest,
            write_manifest,
            output,
        } => {
            let report = match (write_manifest, manifest) {
                (Some(out), _) => reach::write_manifest(&root, &out)?,
                (None, Some(manifest)) => reach::files(&root, &manifest)?,
                (None, None) => {
                    anyhow::bail!("reach files: give --manifest FILE or --write-manifest FILE")
                }
            };
            Ok(print(&report, &output))
        }
        Command::Ports {
            host,
            ports,
            source,
            timeout,
            output,
        } => {
            let options = PortsOptions {
                host,
                ports,
                source,
                timeout,
            };
            let report = reach::ports(&options)?;
            Ok(print(&report, &output))
        }
        Command::Sweep {
            hosts,
            source,
            ports,
            timeout,
            sweep,
            output,
        } => {
            let options = SweepCommandOptions {
                hosts,
                source,
                ports,
                settings: sweep.settings(timeout),
            };
            Ok(print(&reach::sweep(&options)?, &output))
        }
        Command::Https {
            url,
            ca,
            address,
            names,
            http_port,
            no_redirect,
            no_hsts,
            backends,
            requests,
            tls_profile,
            trust,
            timeout,
            output,
        } => {
            let options = HttpsOptions {
                url,
                ca,
                client: trust.client(),
                address,
                names,
                redirect_port: (!no_redirect).then_some(http_port),
                hsts: !no_hsts,
                backends,
                requests,
                timeout,
                min_days: trust.min_days,
                tls_profile,
            };
            let report = reach::https(&options)?;
            Ok(print(&report, &output))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match exec(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{err:#}");
            ExitCode::from(rampart_cli::exit::CANNOT_RUN)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
