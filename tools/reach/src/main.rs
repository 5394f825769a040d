//! `reach`: one verdict on whether running infrastructure matches its topology.
//!
//! Exit codes: 0 all as declared, 1 problems found, 2 could not run (see `rampart::exit`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use rampart::reach::{self, ports::PortArg, CheckOptions, Group, PortsOptions};
use rampart::report::Report;
use rampart::topology::Topology;

#[derive(Parser)]
#[command(version, about, long_about = None, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output options shared by every command.
#[derive(clap::Args)]
struct Output {
    /// Print one JSON document instead of the table (schema: rustdoc of `rampart::report`).
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Check everything the topology declares, as seen from one vantage. Run it there,
    /// e.g. `ip netns exec <ns of web1> reach check --from web1`.
    Check {
        /// The topology to read.
        #[arg(long, default_value = "hosts/topology.json")]
        topology: PathBuf,
        /// The vantage: a topology host, or the lab's `outside` / `admin` client.
        #[arg(long, value_name = "HOST")]
        from: String,
        /// Per-probe timeout; probes run concurrently, so a whole matrix costs about one.
        #[arg(long, default_value = "1s", value_parser = reach::parse_duration)]
        timeout: Duration,
        /// Run only these groups of checks (comma-separated or repeated): ports, https,
        /// haproxy, prometheus, alerts, replication, certificates, files.
        #[arg(long, value_delimiter = ',', value_name = "GROUP")]
        only: Vec<Group>,
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
}

fn print(report: &Report, output: &Output) -> ExitCode {
    if output.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    rampart::exit::from_findings(report.has_failures())
}

fn exec(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Check {
            topology,
            from,
            timeout,
            only,
            output,
        } => {
            let topology = Topology::load(&topology)?;
            let options = CheckOptions {
                timeout,
                only,
                ..CheckOptions::new(&from)
            };
            let report = reach::check(&topology, &options)?;
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
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match exec(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{err:#}");
            ExitCode::from(rampart::exit::CANNOT_RUN)
        }
    }
}
