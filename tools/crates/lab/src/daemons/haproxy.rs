//! HAProxy on the load balancer.

use std::path::Path;
use std::process::Command;

use rampart_topology::{Host, Topology};

use super::command;
use super::{port, program, rendered, socket, Daemon};
use crate::process::Signal;
use crate::render::HostDirs;
use crate::{io, Lab, LabError, Ready, Result};

/// HAProxy on the load balancer, checked with `haproxy -c` first; master-worker (`-W` in
/// `lib.daemons`), so the recorded pid is the master's ([`reload_haproxy`] reloads it).
pub fn haproxy(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    let config = rendered(dirs, "haproxy/haproxy.cfg")?;
    haproxy_with(topology, host, dirs, &config)
}

/// HAProxy with another configuration file (the benchmark's plain-backend variant).
pub fn haproxy_with(
    topology: &Topology,
    host: &Host,
    dirs: &HostDirs,
    config: &Path,
) -> Result<Daemon> {
    let haproxy = program("haproxy", "haproxy")?;
    std::fs::create_dir_all(dirs.run.join("haproxy")).map_err(io(dirs.run.join("haproxy")))?;
    check_haproxy(dirs, config)?;
    Ok(Daemon {
        spec: command(
            "haproxy",
            &host.name,
            &haproxy,
            dirs,
            vec!["-f".into(), config.display().to_string()],
        )?,
        ready: Ready::Port(socket(host.address, port(topology, "https")?)),
    })
}

/// Reloads the running HAProxy of `host` as NixOS's `ExecReload=` does: `haproxy -c` on
/// `config` (the file it runs with), then SIGUSR2 to the master, which starts new workers
/// on the listening sockets and lets the old ones finish (`hard-stop-after` bounds them).
pub fn reload_haproxy(lab: &Lab, host: &Host, config: &Path) -> Result<()> {
    check_haproxy(&lab.host_dirs(&host.name), config)?;
    lab.signal("haproxy", &host.name, Signal::SIGUSR2)
}

/// `haproxy -c`: the configuration is valid and draws no warning (a warning is a
/// mistake HAProxy tolerates; we do not). The certificates it names must be in the host's
/// PKI directory; their keys are linked where HAProxy looks for them first.
pub fn check_haproxy(dirs: &HostDirs, config: &Path) -> Result<()> {
    link_haproxy_keys(&dirs.pki)?;
    let haproxy = program("haproxy", "haproxy")?;
    let mut cmd = Command::new(&haproxy);
    cmd.arg("-c").arg("-f").arg(config);
    let output = cmd.output().map_err(|source| LabError::Spawn {
        program: haproxy.clone(),
        source,
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() && !text.contains("[WARNING]") {
        return Ok(());
    }
    Err(LabError::Command {
        command: crate::command_line(&cmd),
        status: output.status.to_string(),
        stderr: text.trim().to_string(),
    })
}

/// HAProxy 2.6 loads the key of `crt X.pem` from `X.pem.key`; the PKI directory has
/// `X.key` (docs/contracts.md), so each certificate with a key gets that link.
pub fn link_haproxy_keys(pki: &Path) -> Result<()> {
    let entries = std::fs::read_dir(pki).map_err(io(pki))?;
    for entry in entries {
        let path = entry.map_err(io(pki))?.path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".pem"))
        else {
            continue;
        };
        let key = pki.join(format!("{stem}.key"));
        let link = pki.join(format!("{stem}.pem.key"));
        if key.is_file() && !link.exists() {
            std::os::unix::fs::symlink(format!("{stem}.key"), &link).map_err(io(&link))?;
        }
    }
    Ok(())
}
