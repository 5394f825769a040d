//! nginx on a web host: the main configuration around the rendered site file.

use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_topology::{Host, Topology};

use super::{port, program, rendered, socket, Daemon};
use crate::process::{Signal, Spec};
use crate::render::HostDirs;
use crate::{io, run, Ready, Result};

/// The main `nginx.conf` around the rendered `nginx/rampart.conf`: paths only.
pub fn nginx_main_conf(dirs: &HostDirs) -> String {
    nginx_main_conf_including(dirs, &dirs.etc.join("nginx/rampart.conf"))
}

/// The main `nginx.conf` around another http-level file (the benchmark's variant).
pub fn nginx_main_conf_including(dirs: &HostDirs, include: &Path) -> String {
    let temp = dirs.data.join("nginx");
    let t = |name: &str| temp.join(name).display().to_string();
    format!(
        "# nginx.conf written by infralab around the rendered nginx/rampart.conf: every path\n\
         # nginx writes is under the lab's state directory.\n\
         daemon off;\n\
         # Workers run as root: the state directory belongs to root and the lab is throwaway.\n\
         user root root;\n\
         # One worker per core, as nixpkgs' nginx module does: nginx terminates backend TLS.\n\
         worker_processes auto;\n\
         pid {run}/nginx.pid;\n\
         error_log {log}/nginx-error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n\
         \x20 include /etc/nginx/mime.types;\n\
         \x20 access_log off;\n\
         \x20 client_body_temp_path {body};\n\
         \x20 proxy_temp_path {proxy};\n\
         \x20 fastcgi_temp_path {fastcgi};\n\
         \x20 uwsgi_temp_path {uwsgi};\n\
         \x20 scgi_temp_path {scgi};\n\
         \x20 include {rendered};\n\
         }}\n",
        run = dirs.run.display(),
        log = dirs.log.display(),
        body = t("client_body"),
        proxy = t("proxy"),
        fastcgi = t("fastcgi"),
        uwsgi = t("uwsgi"),
        scgi = t("scgi"),
        rendered = include.display(),
    )
}

/// Writes nginx's main configuration and temp directories; returns the main file.
pub fn prepare_nginx(dirs: &HostDirs) -> Result<PathBuf> {
    rendered(dirs, "nginx/rampart.conf")?;
    for name in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        let dir = dirs.data.join("nginx").join(name);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    }
    let main = dirs.etc.join("nginx/nginx.conf");
    std::fs::write(&main, nginx_main_conf(dirs)).map_err(io(&main))?;
    Ok(main)
}

/// nginx's arguments: prefix, error log before the configuration is read, main file.
pub fn nginx_args(dirs: &HostDirs, main: &Path) -> Vec<String> {
    vec![
        "-p".into(),
        dirs.data.join("nginx").display().to_string(),
        "-e".into(),
        dirs.log.join("nginx-error.log").display().to_string(),
        "-c".into(),
        main.display().to_string(),
    ]
}

/// nginx on a web host, ready when the backend TLS port answers. `nginx -t` runs in the
/// host's namespace: it binds the listen addresses to test them. Supervised (restarted
/// when it dies, as `Restart=always` on NixOS); stopping it sends SIGQUIT, nginx's
/// graceful shutdown, which finishes the requests in flight.
pub fn nginx(topology: &Topology, host: &Host, dirs: &HostDirs, namespace: &str) -> Result<Daemon> {
    let main = prepare_nginx(dirs)?;
    let nginx = program("nginx", "nginx")?;
    let args = nginx_args(dirs, &main);
    run(Command::new("ip")
        .args(["netns", "exec", namespace, &nginx])
        .args(&args)
        .arg("-t")
        .arg("-q"))?;
    Ok(Daemon {
        spec: Spec::new("nginx", &host.name, &nginx)
            .args(args)
            .supervised(Signal::SIGQUIT, None),
        ready: Ready::Port(socket(host.address, port(topology, "backendHttps")?)),
    })
}
