//! The application server (`rampart-app`) on a web host.

use std::net::SocketAddr;
use std::path::Path;

use rampart_topology::Host;

use super::{command, Daemon};
use crate::process::Signal;
use crate::render::HostDirs;
use crate::{LabError, Ready, Result};

/// The application (`rampart-app`, tools/app) on a web host, on loopback behind nginx,
/// with the command line of `lib.daemons` (which database to read from included).
/// Supervised with its socket held by the supervisor, as `rampart-app.socket` does on
/// NixOS: a restart queues connections instead of refusing them; SIGTERM drains it.
pub fn app(host: &Host, dirs: &HostDirs, binary: &Path) -> Result<Daemon> {
    let spec = command(
        "app",
        &host.name,
        &binary.display().to_string(),
        dirs,
        Vec::new(),
    )?;
    let listen = spec
        .args
        .iter()
        .skip_while(|arg| *arg != "--listen")
        .nth(1)
        .and_then(|address| address.parse::<SocketAddr>().ok())
        .ok_or_else(|| {
            LabError::Invalid(format!(
                "lib.daemons gives the application on {} no --listen ADDRESS:PORT; fix lib/daemons.nix",
                host.name
            ))
        })?;
    Ok(Daemon {
        spec: spec.supervised(Signal::SIGTERM, Some(listen)),
        ready: Ready::Port(listen),
    })
}
