//! `reach`: one verdict on whether running infrastructure matches its topology.
//!
//! Exit codes: 0 all as declared, 1 problems found, 2 could not run (see `rampart::exit`).

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    ExitCode::SUCCESS
}
