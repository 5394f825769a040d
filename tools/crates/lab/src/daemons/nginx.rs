//! nginx on a web host, on its rendered main configuration.

use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_topology::{Host, Topology};

use super::{command, placement, port, program, rendered, socket, Daemon};
use crate::process::Signal;
use crate::render::HostDirs;
use crate::{io, run, LabError, Ready, Result};

/// The rendered main `nginx.conf` with its http-level file replaced by `include` (the
/// benchmark's variant, or the rendered `rampart.conf` to switch back).
pub fn nginx_main_conf_including(dirs: &HostDirs, include: &Path) -> Result<String> {
    let main = rendered(dirs, "nginx/nginx.conf")?;
    let text = std::fs::read_to_string(&main).map_err(io(&main))?;
    let mut found = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if line.starts_with("  include ") && line.ends_with(';') {
                found = true;
                format!("  include {};", include.display())
            } else {
                line.to_string()
            }
        })
        .collect();
    if !found {
        return Err(LabError::Invalid(format!(
            "{} has no `  include …;` line for the http-level file; check lib/render/nginx.nix",
            main.display()
        )));
    }
    Ok(lines.join("\n") + "\n")
}

/// The directories nginx writes to (temp files, pid), the temp ones owned by the user its
/// workers run as (the rendered `user`); returns the main file.
pub fn prepare_nginx(dirs: &HostDirs) -> Result<PathBuf> {
    rendered(dirs, "nginx/rampart.conf")?;
    let main = rendered(dirs, "nginx/nginx.conf")?;
    let text = std::fs::read_to_string(&main).map_err(io(&main))?;
    let user = text
        .lines()
        .find_map(|line| line.strip_prefix("user "))
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| {
            LabError::Invalid(format!(
                "{} names no user; check lib/render/nginx.nix",
                main.display()
            ))
        })?;
    let account = nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .ok_or_else(|| LabError::Invalid(format!("no user {user:?} on this machine for nginx's workers (lib/settings.nix nginx.user; the lab's is root)")))?;
    for name in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        let dir = dirs.data.join("nginx").join(name);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        std::os::unix::fs::chown(&dir, Some(account.uid.as_raw()), Some(account.gid.as_raw()))
            .map_err(io(&dir))?;
    }
    let run = dirs.run.join("nginx");
    std::fs::create_dir_all(&run).map_err(io(&run))?;
    Ok(main)
}

/// Prepares nginx's directories and runs `nginx -t` in `namespace` (it binds the listen
/// addresses to test them); returns the arguments nginx runs with (`lib.daemons` plus
/// paths).
pub fn check_nginx(dirs: &HostDirs, host: &str, namespace: &str) -> Result<Vec<String>> {
    prepare_nginx(dirs)?;
    let nginx = program("nginx", "nginx")?;
    let spec = command("nginx", host, &nginx, dirs, placement("nginx", dirs))?;
    run(Command::new("ip")
        .args(["netns", "exec", namespace, &nginx])
        .args(&spec.args)
        .arg("-t")
        .arg("-q"))?;
    Ok(spec.args)
}

/// nginx on a web host, ready when the backend TLS port answers, after `nginx -t`.
/// Supervised (restarted when it dies, as `Restart=always` on NixOS); stopping it sends
/// SIGQUIT, nginx's graceful shutdown, which finishes the requests in flight.
pub fn nginx(topology: &Topology, host: &Host, dirs: &HostDirs, namespace: &str) -> Result<Daemon> {
    check_nginx(dirs, &host.name, namespace)?;
    let nginx = program("nginx", "nginx")?;
    Ok(Daemon {
        spec: command("nginx", &host.name, &nginx, dirs, placement("nginx", dirs))?
            .supervised(Signal::SIGQUIT, None),
        ready: Ready::Port(socket(host.address, port(topology, "backendHttps")?)),
    })
}
