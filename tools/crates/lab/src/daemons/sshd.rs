//! OpenSSH on every host (the topology's `ssh` service).

use std::path::PathBuf;
use std::process::Command;

use rampart_topology::{Host, Topology};

use super::{command, placement, port, program, rendered, socket, Daemon};
use crate::process::Signal;
use crate::render::HostDirs;
use crate::{io, run, LabError, Ready, Result};

/// OpenSSH on a host, so that the topology's `ssh` service answers where the policy opens
/// it, with the rendered `ssh/sshd_config` (the values NixOS's services.openssh gets). The
/// host key is made per lab where that file says.
pub fn sshd(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    let address = socket(host.address, port(topology, "ssh")?);
    let config = rendered(dirs, "ssh/sshd_config")?;
    let text = std::fs::read_to_string(&config).map_err(io(&config))?;
    let key = text
        .lines()
        .find_map(|line| line.strip_prefix("HostKey "))
        .map(PathBuf::from)
        .ok_or_else(|| {
            LabError::Invalid(format!(
                "{} has no HostKey; check lib/render/sshd.nix",
                config.display()
            ))
        })?;
    if !key.exists() {
        if let Some(parent) = key.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        run(Command::new(program("ssh-keygen", "openssh-client")?)
            .args(["-q", "-t", "ed25519", "-N", "", "-C", &host.name, "-f"])
            .arg(&key))?;
    }
    // sshd's privilege separation directory is compiled in; Debian's unit creates it.
    std::fs::create_dir_all("/run/sshd").map_err(io("/run/sshd"))?;
    let sshd = program("sshd", "openssh-server")?;
    run(Command::new(&sshd).arg("-t").arg("-f").arg(&config))?;
    Ok(Daemon {
        // Supervised, as nixpkgs' sshd unit restarts.
        spec: command("sshd", &host.name, &sshd, dirs, placement("sshd", dirs))?
            .supervised(Signal::SIGTERM, None),
        ready: Ready::Port(address),
    })
}
