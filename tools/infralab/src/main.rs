//! `infralab`: the rampart hosts as network namespaces on one machine, running the
//! rendered configuration on Debian's real daemons.
//!
//! Exit codes: 0 all as declared, 1 a check or scenario failed, 2 could not run
//! (see `rampart_cli::exit`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::lab_args::LabArgs;

mod bench;
mod bringup;
mod chaos;
mod check;
mod drain;
mod failover;
mod lab_args;
mod paths;
mod plan;
mod progress;
mod reach;
mod scenarios;
mod timer;
mod up;

#[derive(Parser)]
#[command(version, about, long_about = None, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the topology and print hosts, roles and the allowed-reachability matrix.
    Plan {
        /// The topology to read.
        #[arg(long, default_value = "hosts/topology.json")]
        topology: PathBuf,
        /// Print one JSON document instead of tables (schema in `plan.rs`).
        #[arg(long)]
        json: bool,
    },
    /// Check every rendered file of a topology with its daemon's own check (nft -c,
    /// haproxy -c, nginx -t, promtool, amtool) and run the promtool rule tests, on the
    /// hosts' namespaces with no daemon running. Exit 0 all passed, 1 a check failed.
    Check(check::CheckArgs),
    /// Build the lab: namespaces, rendered configuration, certificates, firewalls and every
    /// daemon; wait until all answer, then print `reach check` from each vantage. An
    /// existing lab with the same prefix is taken down first, so running it twice is safe.
    Up {
        #[command(flatten)]
        lab: LabArgs,
        /// Only the namespaces and links, no daemons (for debugging the fabric).
        #[arg(long)]
        fabric_only: bool,
    },
    /// Remove every namespace, process and state file of the lab, also after a crash: what
    /// the record lists plus every namespace with the lab's prefix.
    Down {
        #[command(flatten)]
        lab: LabArgs,
    },
    /// Show the lab's namespaces and processes; exit 1 if there is no lab or a recorded
    /// namespace or process is gone.
    Status {
        #[command(flatten)]
        lab: LabArgs,
        /// Print one JSON document (schema: rustdoc of `up::status`).
        #[arg(long)]
        json: bool,
    },
    /// Run end-to-end scenarios against the running lab (all when none is named):
    /// https, firewall, backend-tls, replication, qps-alert, backend-down, cert-expiry,
    /// failover.
    /// Exit 1 if any failed.
    Test {
        #[command(flatten)]
        lab: LabArgs,
        /// Scenarios to run, by name.
        #[arg(value_name = "SCENARIO")]
        scenarios: Vec<String>,
        /// Print one JSON document instead of lines (schema in `scenarios/mod.rs`).
        #[arg(long)]
        json: bool,
    },
    /// Let a database host of the running lab take the lead: `rampart-db promote HOST`
    /// inside its namespace, with the same rules (docs/failover.md): refused while another
    /// host leads, and for a host outside the sync set, naming the writes it would lose.
    /// Exit 0 promoted, 1 refused or failed, 2 could not run.
    Promote {
        #[command(flatten)]
        lab: LabArgs,
        /// The database host to promote.
        host: String,
        /// Promote a host that is not in the sync set, losing what it lacks.
        #[arg(long)]
        accept_data_loss: bool,
        /// Print rampart-db's JSON report (schema: `rampart_database::report`).
        #[arg(long)]
        json: bool,
    },
    /// Rebuild a database host of the running lab from the leader's copy (mariadb-backup),
    /// what docs/failover.md "Rebuilding a replica" tells an operator to do with a host
    /// left diverged: its agent and MariaDB stopped, its data kept aside as `mysql.diverged`,
    /// the copy started at the leader's GTID position, the agent started to rejoin it.
    /// Refused for the leader. Exit 0 rebuilt and back in sync, 2 refused or failed (the
    /// error names the step).
    Rebuild {
        #[command(flatten)]
        lab: LabArgs,
        /// The database host to rebuild.
        host: String,
    },
    /// The long fault suite (issue #14): RUNS randomized faults of the database tier under
    /// concurrent writes through the public endpoint, each followed by heal, convergence
    /// and a history check; prints a table (faults by kind, acknowledged writes, lost,
    /// two-writer windows, write unavailability median/max). Exit 1 if anything was lost,
    /// two servers took writes, a run failed, or unavailability exceeded 10 s.
    Chaos {
        #[command(flatten)]
        lab: LabArgs,
        /// How many runs.
        #[arg(long, default_value_t = 50)]
        runs: u32,
        /// Seed of the fault draw (the same seed, the same faults).
        #[arg(long, default_value_t = 14)]
        seed: u64,
        /// Draw only this fault kind (repeatable; e.g. `partition-primary`): to measure
        /// one fault's figures. Default: all eight.
        #[arg(long = "fault", value_name = "KIND")]
        faults: Vec<String>,
        /// Print one JSON document (schema in `chaos/long.rs`).
        #[arg(long)]
        json: bool,
    },
    /// Take a web host out of HAProxy's rotation without failing a request: no new
    /// requests, then wait until its sessions have ended (what `rampart-lb drain` does on
    /// a NixOS load balancer). Exit 0 drained, 1 sessions remained, 2 could not run.
    Drain {
        #[command(flatten)]
        lab: LabArgs,
        /// The web host.
        host: String,
        /// Seconds to wait for its sessions to end.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        wait: u64,
    },
    /// Put a drained web host back once HAProxy's health check passes on it (what
    /// `rampart-lb ready` does). Exit 0 readmitted, 1 the check did not pass, 2 could not
    /// run.
    Ready {
        #[command(flatten)]
        lab: LabArgs,
        /// The web host.
        host: String,
        /// Seconds to wait for the health check to pass.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        wait: u64,
    },
    /// Measure HTTPS throughput and p99 latency from outside through the load balancer,
    /// re-encrypting to the backends (shipped) and with plain backends, on the running lab;
    /// print the ratio. bench/lab.sh runs it.
    Bench {
        #[command(flatten)]
        lab: LabArgs,
        /// Seconds of load per variant (wrk -d).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent connections (wrk -c).
        #[arg(long, default_value_t = 32)]
        connections: u32,
        /// Print one JSON document (schema in `bench.rs`).
        #[arg(long)]
        json: bool,
    },
    /// Run a command every INTERVAL until killed: the lab's stand-in for the NixOS timer
    /// that runs `reach check` on every host (runs inside the lab).
    #[command(hide = true)]
    Every {
        /// Time between the starts of two runs (e.g. `10s`).
        #[arg(long, value_parser = rampart_reach_duration)]
        interval: std::time::Duration,
        /// Wait this long before the first run.
        #[arg(long, value_parser = rampart_reach_duration, default_value = "0.01s")]
        first_delay: std::time::Duration,
        /// The program and its arguments.
        #[arg(trailing_var_arg = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Supervise a daemon inside the lab: restart it when it exits, forward reload
    /// signals, stop it gracefully, optionally hold its listening socket (rustdoc of
    /// `rampart_lab::supervise`). The lab starts supervised daemons through it.
    #[command(hide = true)]
    Supervise {
        /// The daemon's name, for messages and the status file.
        #[arg(long)]
        name: String,
        /// The status file to keep up to date.
        #[arg(long)]
        status: PathBuf,
        /// What stopping sends the daemon.
        #[arg(long, default_value = "TERM", value_parser = rampart_lab::supervise::parse_signal)]
        stop_signal: rampart_lab::process::Signal,
        /// A TCP address to listen on and hand over as descriptor 3 (LISTEN_FDS=1).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// The daemon and its arguments, after `--`.
        #[arg(required = true, last = true)]
        command: Vec<String>,
    },
    /// Serve the alert webhook: record every POST as one JSON line (runs inside the lab).
    #[command(hide = true)]
    Webhook {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// File to append deliveries to.
        #[arg(long)]
        out: PathBuf,
    },
}

fn exec(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Plan { topology, json } => plan::run(&topology, json),
        Command::Check(args) => check::run(&args),
        Command::Up { lab, fabric_only } => up::up(&lab, fabric_only),
        Command::Down { lab } => up::down(&lab),
        Command::Status { lab, json } => up::status(&lab, json),
        Command::Bench {
            lab,
            seconds,
            connections,
            json,
        } => bench::run(&lab, seconds, connections, json),
        Command::Test {
            lab,
            scenarios,
            json,
        } => scenarios::run(&lab, &scenarios, json),
        Command::Chaos {
            lab,
            runs,
            seed,
            faults,
            json,
        } => chaos::chaos(&lab, runs, seed, &faults, json),
        Command::Promote {
            lab,
            host,
            accept_data_loss,
            json,
        } => failover::promote(&lab, &host, accept_data_loss, json),
        Command::Rebuild { lab, host } => chaos::rebuild_command(&lab, &host),
        Command::Every {
            interval,
            first_delay,
            command,
        } => {
            timer::every(interval, &command, first_delay)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Drain { lab, host, wait } => {
            drain::run(&lab, &host, false, std::time::Duration::from_secs(wait))
        }
        Command::Ready { lab, host, wait } => {
            drain::run(&lab, &host, true, std::time::Duration::from_secs(wait))
        }
        Command::Supervise {
            name,
            status,
            stop_signal,
            listen,
            mut command,
        } => {
            let program = command.remove(0);
            rampart_lab::supervise::run(&rampart_lab::supervise::Config {
                name,
                status,
                stop_signal,
                listen,
                program,
                args: command,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Webhook { listen, out } => {
            let listener = std::net::TcpListener::bind(listen)
                .map_err(|e| anyhow::anyhow!("webhook: cannot listen on {listen}: {e}"))?;
            rampart_lab::webhook::serve(listener, &out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Durations as reach's flags take them (`10s`, `500ms`).
fn rampart_reach_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("\"{text}\" is not a duration (expected e.g. 10s or 500ms)");
    let (number, scale) = match text.strip_suffix("ms") {
        Some(ms) => (ms, 1e-3),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(value * scale))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match exec(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("infralab: {err:#}");
            ExitCode::from(rampart_cli::exit::CANNOT_RUN)
        }
    }
}
