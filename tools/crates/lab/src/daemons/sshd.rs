//! OpenSSH on every host (the topology's `ssh` service).

use std::process::Command;

use rampart_topology::{Host, Topology};

use super::{port, program, socket, Daemon};
use crate::process::{Signal, Spec};
use crate::render::HostDirs;
use crate::{io, run, Ready, Result};

/// OpenSSH on a host, so that the topology's `ssh` service answers where the policy opens
/// it (no renderer writes an sshd configuration: NixOS's own module does that). Keys only,
/// no root login; the host key is made per lab and kept in the secrets directory.
pub fn sshd(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    let address = socket(host.address, port(topology, "ssh")?);
    let key = dirs.secrets.join("ssh_host_ed25519_key");
    if !key.exists() {
        run(Command::new(program("ssh-keygen", "openssh-client")?)
            .args(["-q", "-t", "ed25519", "-N", "", "-C", &host.name, "-f"])
            .arg(&key))?;
    }
    // sshd's privilege separation directory is compiled in; Debian's unit creates it.
    std::fs::create_dir_all("/run/sshd").map_err(io("/run/sshd"))?;
    let config = dirs.etc.join("ssh/sshd_config");
    std::fs::create_dir_all(dirs.etc.join("ssh")).map_err(io(dirs.etc.join("ssh")))?;
    let text = format!(
        "# sshd_config written by infralab for {name}: only the topology's ssh service.\n\
         ListenAddress {address}\n\
         HostKey {key}\n\
         PidFile {run}/sshd.pid\n\
         PermitRootLogin no\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n",
        name = host.name,
        key = key.display(),
        run = dirs.run.display(),
    );
    std::fs::write(&config, text).map_err(io(&config))?;
    let sshd = program("sshd", "openssh-server")?;
    run(Command::new(&sshd).arg("-t").arg("-f").arg(&config))?;
    Ok(Daemon {
        // -D: foreground; -e: log to stderr (the lab's log file). Supervised, as
        // nixpkgs' sshd unit restarts.
        spec: Spec::new("sshd", &host.name, &sshd)
            .args([
                "-D".to_string(),
                "-e".into(),
                "-f".into(),
                config.display().to_string(),
            ])
            .supervised(Signal::SIGTERM, None),
        ready: Ready::Port(address),
    })
}
