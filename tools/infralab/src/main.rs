//! `infralab`: the rampart hosts as network namespaces on one machine, running the
//! rendered configuration on Debian's real daemons.
//!
//! Exit codes: 0 all as declared, 1 a check or scenario failed, 2 could not run
//! (see `rampart::exit`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod plan;

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
}

fn exec(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Plan { topology, json } => plan::run(&topology, json),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match exec(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("infralab: {err:#}");
            ExitCode::from(rampart::exit::CANNOT_RUN)
        }
    }
}
