//! `rampart-lb`: take a web host out of HAProxy's rotation without failing a request, and
//! put it back once it answers; on the load balancer, through HAProxy's admin socket.
//!
//! ```text
//! rampart-lb drain web1        # no new requests; returns when its sessions have ended
//! # … restart or update web1 (systemctl restart nginx rampart-app, nixos-rebuild) …
//! rampart-lb ready web1        # waits for HAProxy's health check to pass, then readmits it
//! rampart-lb status            # every backend server: state, check, sessions
//! ```
//!
//! A binary of its own, not a subcommand of `reach` or `rampart-db`: it changes HAProxy's
//! state (reach only observes, rampart-db speaks to databases), needs nothing but the admin
//! socket (no topology, no credentials), and is the one tool an operator needs on the load
//! balancer for a planned removal. The logic lives in `rampart_haproxy`, which the lab's
//! rolling-restart scenario uses too.
//!
//! Exit codes: 0 done, 1 the sessions did not end or the health check did not pass within
//! `--wait` (the server stays drained), 2 could not run (no socket, no such server,
//! HAProxy refused). See `rampart_cli::exit`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use rampart_haproxy::{self as haproxy, AdminSocket, Error};

#[derive(Parser)]
#[command(version, about, long_about = None, arg_required_else_help = true)]
struct Cli {
    /// HAProxy's admin socket (`stats socket … level admin`, rendered at
    /// <runDir>/haproxy/stats.sock).
    #[arg(long, global = true, default_value = "/run/rampart/haproxy/stats.sock")]
    socket: PathBuf,
    /// The backend holding the web hosts.
    #[arg(long, global = true, default_value = haproxy::WEB_BACKEND)]
    backend: String,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every server of the backend: state, last health check, sessions now and served.
    Status,
    /// Stop sending new requests to SERVER and wait until its sessions have ended.
    Drain {
        /// The server (a web host's name).
        server: String,
        /// Seconds to wait for its sessions to end.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        wait: u64,
    },
    /// Wait until HAProxy's health check passes on SERVER, then send it requests again.
    Ready {
        /// The server (a web host's name).
        server: String,
        /// Seconds to wait for the health check to pass.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        wait: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match exec(&cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("rampart-lb: {error:#}");
            ExitCode::from(rampart_cli::exit::CANNOT_RUN)
        }
    }
}

fn exec(cli: &Cli) -> Result<ExitCode> {
    let socket = AdminSocket::new(&cli.socket);
    let backend = cli.backend.as_str();
    let outcome = match &cli.command {
        Command::Status => {
            let servers: Vec<_> = socket
                .servers()?
                .into_iter()
                .filter(|s| s.backend == backend)
                .collect();
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&servers)?);
            } else {
                let rows: Vec<Vec<String>> = servers
                    .iter()
                    .map(|s| {
                        vec![
                            s.server.clone(),
                            s.status.clone(),
                            s.check.clone(),
                            s.sessions.to_string(),
                            s.served.to_string(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    rampart_cli::table::render(
                        &["SERVER", "STATE", "CHECK", "SESSIONS", "SERVED"],
                        &rows
                    )
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Drain { server, wait } => {
            haproxy::drain(&socket, backend, server, Duration::from_secs(*wait)).map(|d| {
                let text = format!(
                    "{backend}/{server} drained: {} sessions at the start, none after {:.1} s; stop it now, then `rampart-lb ready {server}`",
                    d.sessions_at_start,
                    d.waited_ms as f64 / 1000.0
                );
                (serde_json::to_value(d), text)
            })
        }
        Command::Ready { server, wait } => {
            haproxy::ready(&socket, backend, server, Duration::from_secs(*wait)).map(|r| {
                let text = format!(
                    "{backend}/{server} ready: health check {} after {:.1} s; it takes requests again",
                    r.check,
                    r.waited_ms as f64 / 1000.0
                );
                (serde_json::to_value(r), text)
            })
        }
    };
    match outcome {
        Ok((json, text)) => {
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&json?)?);
            } else {
                println!("{text}");
            }
            Ok(ExitCode::SUCCESS)
        }
        // The wait ended without the server being where it should: a finding.
        Err(error @ (Error::StillBusy { .. } | Error::NotHealthy { .. })) => {
            eprintln!("rampart-lb: {error}");
            Ok(rampart_cli::exit::from_findings(true))
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
