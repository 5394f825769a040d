//! The arguments every lab command shares: which topology, which state directory, which
//! namespace prefix.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use rampart_lab::names::Names;
use rampart_lab::state::StateDir;
use rampart_lab::Lab;
use rampart_topology::Topology;

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

impl LabArgs {
    /// The names for a lab: `--prefix` if given, else the topology's default.
    pub fn names(&self, topology: Option<&Topology>) -> Result<Names> {
        match (&self.prefix, topology) {
            (Some(prefix), _) => Ok(Names::with_prefix(prefix)?),
            (None, Some(t)) => Ok(Names::for_topology(t)),
            (None, None) => Ok(Names::for_topology(&Topology::load(&self.topology)?)),
        }
    }

    /// Loads the topology and sets up a lab value for it (nothing is created yet).
    pub fn open(&self) -> Result<Lab> {
        let topology = Topology::load(&self.topology)?;
        let names = self.names(Some(&topology))?;
        let state = StateDir::new(&self.state)?;
        let path = std::fs::canonicalize(&self.topology)
            .with_context(|| format!("cannot resolve {}", self.topology.display()))?;
        let mut lab = Lab::new(topology, &path, state, names)?;
        // Supervised daemons run under this very binary (`infralab supervise`).
        lab.set_supervisor(std::env::current_exe().context("cannot find the infralab binary")?);
        Ok(lab)
    }
}
