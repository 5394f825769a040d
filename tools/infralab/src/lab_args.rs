//! The arguments every lab command shares: which topology, which state directory, which
//! namespace prefix.

use std::path::PathBuf;

use clap::Args;

/// Where the lab is: which topology, which state directory, which namespace prefix.
#[derive(Args, Clone, Debug)]
pub struct LabArgs {
    /// The topology to build the lab from.
    #[arg(long, default_value = "hosts/topology.json")]
    pub topology: PathBuf,
    /// The lab's state directory: rendered files, certificates, secrets, logs, data, and
    /// the record of every namespace and process (`lab.json`).
    #[arg(long, default_value = ".lab-state")]
    pub state: PathBuf,
    /// Namespace name prefix (default `rl-<topology name>.`); must end in ".". Tests use
    /// their own so that they never touch a running lab.
    #[arg(long)]
    pub prefix: Option<String>,
}
