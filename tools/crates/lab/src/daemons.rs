//! How the lab runs each of Debian's daemons on a host's rendered files, without systemd.
//!
//! Every daemon runs in the foreground, with every path it writes (pid, logs, temp files,
//! data) under the host's directories ([`HostDirs`]). The rendered files are used as they
//! are; where Debian's daemon needs a file the renderers leave to the deployment (nginx's
//! main `nginx.conf`, the mysqld exporter's client file), the lab writes a small one that
//! only sets paths. Each daemon's own check mode runs on the files before it starts, the
//! way the NixOS modules check before a start.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_topology::{Host, Topology};

use super::process::Spec;
use super::render::HostDirs;
use super::{io, run, LabError, Ready, Result};

/// A daemon of one host: what to start and how it shows it is ready.
#[derive(Clone, Debug)]
pub struct Daemon {
    pub spec: Spec,
    pub ready: Ready,
}

/// The absolute path of a program, looked up in PATH and the sbin directories (root's
/// PATH in CI may lack them).
pub fn program(name: &str, package: &str) -> Result<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
    for dir in dirs.filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if candidate.is_file() {
            return Ok(candidate.display().to_string());
        }
    }
    Err(LabError::Invalid(format!(
        "{name} is not installed (expected it in PATH or /usr/sbin); install Debian's {package} (scripts/install.sh does)"
    )))
}

/// A rendered file of a host, which must exist.
pub fn rendered(dirs: &HostDirs, relative: &str) -> Result<PathBuf> {
    let path = dirs.etc.join(relative);
    if path.is_file() {
        Ok(path)
    } else {
        Err(LabError::Invalid(format!(
            "lib.render gave no {relative} for {} (expected it for this host's roles); check the renderer",
            dirs.root.display()
        )))
    }
}

fn port(topology: &Topology, service: &str) -> Result<u16> {
    topology
        .services
        .get(service)
        .map(|s| s.port)
        .ok_or_else(|| {
            LabError::Invalid(format!(
                "the topology has no service {service:?}, which the lab needs; add services.{service}"
            ))
        })
}

fn socket(address: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::from((address, port))
}

/// The application (`rampart-app`, tools/app) on a web host, on loopback behind nginx:
/// writes go to the primary, reads to this host's own database when it has one.
pub fn app(
    topology: &Topology,
    host: &Host,
    dirs: &HostDirs,
    binary: &Path,
    app_port: u16,
) -> Result<Daemon> {
    use rampart_topology::Role;
    let mysql = port(topology, "mysql")?;
    // Every database host: the application writes to the one whose read_only is 0 (the
    // read_only probe, docs/failover.md), so `infralab promote` needs nothing else.
    let candidates: Vec<String> = topology
        .hosts
        .iter()
        .filter(|h| h.has_role(Role::DatabasePrimary) || h.has_role(Role::DatabaseReplica))
        .map(|h| socket(h.address, mysql).to_string())
        .collect();
    if candidates.is_empty() {
        return Err(LabError::Invalid(
            "no host has role \"databasePrimary\" or \"databaseReplica\"; the application needs a database to write to"
                .into(),
        ));
    }
    let listen = socket(Ipv4Addr::LOCALHOST, app_port);
    let mut spec = Spec::new("app", &host.name, &binary.display().to_string()).args([
        "--listen".to_string(),
        listen.to_string(),
        "--host-name".into(),
        host.name.clone(),
        "--db-probe".into(),
        candidates.join(","),
        "--db-password-file".into(),
        dirs.secrets.join("app-db-password").display().to_string(),
        "--db-ca".into(),
        dirs.pki.join("ca.pem").display().to_string(),
    ]);
    if host.has_role(rampart_topology::Role::DatabaseReplica) {
        spec = spec.args([
            "--db-replica".to_string(),
            socket(host.address, mysql).to_string(),
        ]);
    }
    Ok(Daemon {
        spec,
        ready: Ready::Port(listen),
    })
}

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
/// host's namespace: it binds the listen addresses to test them.
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
        spec: Spec::new("nginx", &host.name, &nginx).args(args),
        ready: Ready::Port(socket(host.address, port(topology, "backendHttps")?)),
    })
}

/// MariaDB's data directory, socket and pid file of a host.
pub struct MariadbPaths {
    pub datadir: PathBuf,
    /// Per host: two servers sharing /tmp collide on temporary table names.
    pub tmpdir: PathBuf,
    pub socket: PathBuf,
    pub pid: PathBuf,
    pub config: PathBuf,
}

impl MariadbPaths {
    pub fn new(dirs: &HostDirs) -> MariadbPaths {
        MariadbPaths {
            datadir: dirs.data.join("mysql"),
            tmpdir: dirs.data.join("mysql-tmp"),
            socket: dirs.run.join("mysqld/mysqld.sock"),
            pid: dirs.run.join("mysqld/mysqld.pid"),
            config: dirs.etc.join("mariadb/rampart.cnf"),
        }
    }

    /// The `mariadb` client as root over the socket, inside the host's namespace.
    pub fn client(&self, namespace: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            namespace,
            "mariadb",
            "--no-defaults",
            "-uroot",
        ])
        .arg(format!("--socket={}", self.socket.display()));
        cmd
    }
}

/// Initialises a host's MariaDB data directory (once; `mariadb-install-db` is not run
/// again on an existing one).
pub fn mariadb_install(dirs: &HostDirs) -> Result<()> {
    let paths = MariadbPaths::new(dirs);
    rendered(dirs, "mariadb/rampart.cnf")?;
    for dir in [&paths.datadir, &paths.tmpdir, &dirs.run.join("mysqld")] {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    if paths.datadir.join("mysql").is_dir() {
        return Ok(());
    }
    let install = program("mariadb-install-db", "mariadb-server")?;
    run(Command::new(install)
        .arg("--no-defaults")
        // Root runs the lab and owns the state directory; mariadbd refuses to guess.
        .arg("--user=root")
        .arg(format!("--datadir={}", paths.datadir.display()))
        .arg(format!("--tmpdir={}", paths.tmpdir.display()))
        .arg("--auth-root-authentication-method=socket")
        .arg("--skip-test-db"))?;
    Ok(())
}

/// Gives `to` a copy of the freshly initialised data directory of `from`: cheaper than a
/// second `mariadb-install-db` on a busy machine, and the result is the same (no server
/// identity lives in a fresh data directory; `server_id` comes from rampart.cnf).
pub fn mariadb_copy_datadir(from: &HostDirs, to: &HostDirs) -> Result<()> {
    let (source, target) = (MariadbPaths::new(from), MariadbPaths::new(to));
    for dir in [&target.tmpdir, &to.run.join("mysqld")] {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    if target.datadir.join("mysql").is_dir() {
        return Ok(());
    }
    run(Command::new("cp")
        .arg("-a")
        .arg(&source.datadir)
        .arg(&target.datadir))?;
    Ok(())
}

/// mariadbd on a database host, with the rendered settings and the lab's paths.
pub fn mariadb(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    let paths = MariadbPaths::new(dirs);
    let mariadbd = program("mariadbd", "mariadb-server")?;
    // --defaults-file first: only the rendered file is read, never /etc/mysql.
    let args = vec![
        format!("--defaults-file={}", paths.config.display()),
        "--user=root".into(),
        format!("--datadir={}", paths.datadir.display()),
        format!("--tmpdir={}", paths.tmpdir.display()),
        format!("--socket={}", paths.socket.display()),
        format!("--pid-file={}", paths.pid.display()),
        format!(
            "--log-error={}",
            dirs.log.join("mariadb-error.log").display()
        ),
    ];
    Ok(Daemon {
        spec: Spec::new("mariadb", &host.name, &mariadbd).args(args),
        ready: Ready::Port(socket(host.address, port(topology, "mysql")?)),
    })
}

/// Pipes the rendered bootstrap SQL, with secrets substituted, to the host's MariaDB.
pub fn mariadb_bootstrap(
    namespace: &str,
    dirs: &HostDirs,
    secrets: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    use std::io::Write;
    let template_path = rendered(dirs, "mariadb/bootstrap.sql")?;
    let template = std::fs::read_to_string(&template_path).map_err(io(&template_path))?;
    let sql = super::secrets::substitute(&template, secrets)?;
    let mut cmd = MariadbPaths::new(dirs).client(namespace);
    let line = super::command_line(&cmd);
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| LabError::Spawn {
            program: "mariadb".into(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // The SQL holds passwords: it goes through the pipe only, never to a file.
        let _ = stdin.write_all(sql.as_bytes());
    }
    let output = child.wait_with_output().map_err(io(&template_path))?;
    if output.status.success() {
        return Ok(());
    }
    Err(LabError::Command {
        command: format!("{line} < {}", template_path.display()),
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

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
        // -D: foreground; -e: log to stderr (the lab's log file).
        spec: Spec::new("sshd", &host.name, &sshd).args([
            "-D".to_string(),
            "-e".into(),
            "-f".into(),
            config.display().to_string(),
        ]),
        ready: Ready::Port(address),
    })
}

/// Debian's node exporter, with the textfile directory reach writes to.
pub fn node_exporter(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    let address = socket(host.address, port(topology, "nodeExporter")?);
    let exporter = program("prometheus-node-exporter", "prometheus-node-exporter")?;
    Ok(Daemon {
        spec: Spec::new("node-exporter", &host.name, &exporter).args([
            format!("--web.listen-address={address}"),
            format!("--collector.textfile.directory={}", dirs.textfile.display()),
        ]),
        ready: Ready::Port(address),
    })
}

/// Debian's nginx exporter, reading the loopback stub_status page.
pub fn nginx_exporter(topology: &Topology, host: &Host, stub_status_port: u16) -> Result<Daemon> {
    let address = socket(host.address, port(topology, "nginxExporter")?);
    let exporter = program("prometheus-nginx-exporter", "prometheus-nginx-exporter")?;
    Ok(Daemon {
        spec: Spec::new("nginx-exporter", &host.name, &exporter).args([
            format!("-web.listen-address={address}"),
            format!("-nginx.scrape-uri=http://127.0.0.1:{stub_status_port}/stub_status"),
            // It starts with nginx and exits if stub_status does not answer at once.
            "-nginx.retries=50".into(),
            "-nginx.retry-interval=200ms".into(),
        ]),
        ready: Ready::Port(address),
    })
}

/// Debian's mysqld exporter; its password goes into a client file in `secretsDir`.
pub fn mysqld_exporter(
    topology: &Topology,
    host: &Host,
    dirs: &HostDirs,
    user: &str,
    password: &str,
) -> Result<Daemon> {
    let address = socket(host.address, port(topology, "mysqldExporter")?);
    let cnf = dirs.secrets.join("mysqld-exporter.cnf");
    let socket_path = MariadbPaths::new(dirs).socket;
    super::secrets::write_private(
        &cnf,
        &format!(
            "[client]\nuser={user}\npassword={password}\nsocket={}\n",
            socket_path.display()
        ),
    )?;
    let exporter = program("prometheus-mysqld-exporter", "prometheus-mysqld-exporter")?;
    Ok(Daemon {
        spec: Spec::new("mysqld-exporter", &host.name, &exporter).args([
            format!("--web.listen-address={address}"),
            format!("--config.my-cnf={}", cnf.display()),
        ]),
        ready: Ready::Port(address),
    })
}

/// HAProxy on the load balancer, checked with `haproxy -c` first.
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
    link_haproxy_keys(&dirs.pki)?;
    run(Command::new(&haproxy)
        .arg("-c")
        .arg("-q")
        .arg("-f")
        .arg(config))?;
    Ok(Daemon {
        // -db: foreground, no daemon mode.
        spec: Spec::new("haproxy", &host.name, &haproxy).args([
            "-db".to_string(),
            "-f".into(),
            config.display().to_string(),
        ]),
        ready: Ready::Port(socket(host.address, port(topology, "https")?)),
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

/// Prometheus on the monitoring host, checked with `promtool check config` first.
pub fn prometheus(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    let config = rendered(dirs, "prometheus/prometheus.yml")?;
    let address = socket(host.address, port(topology, "prometheus")?);
    run(Command::new(program("promtool", "prometheus")?)
        .args(["check", "config"])
        .arg(&config))?;
    let prometheus = program("prometheus", "prometheus")?;
    Ok(Daemon {
        spec: Spec::new("prometheus", &host.name, &prometheus).args([
            format!("--config.file={}", config.display()),
            format!(
                "--storage.tsdb.path={}",
                dirs.data.join("prometheus").display()
            ),
            format!("--web.listen-address={address}"),
            "--web.enable-lifecycle".into(),
        ]),
        ready: Ready::Port(address),
    })
}

/// Alertmanager on the monitoring host: no cluster, its own storage.
pub fn alertmanager(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    let config = rendered(dirs, "alertmanager/alertmanager.yml")?;
    let address = socket(host.address, port(topology, "alertmanager")?);
    run(Command::new(program("amtool", "prometheus-alertmanager")?)
        .args(["check-config"])
        .arg(&config))?;
    let alertmanager = program("prometheus-alertmanager", "prometheus-alertmanager")?;
    Ok(Daemon {
        spec: Spec::new("alertmanager", &host.name, &alertmanager).args([
            format!("--config.file={}", config.display()),
            format!(
                "--storage.path={}",
                dirs.data.join("alertmanager").display()
            ),
            format!("--web.listen-address={address}"),
            // An empty address turns clustering off (one Alertmanager, no gossip port).
            "--cluster.listen-address=".into(),
        ]),
        ready: Ready::Port(address),
    })
}

/// Where the webhook receiver listens, from `monitoring.alertReceiver.webhookUrl`.
pub fn webhook_address(topology: &Topology) -> Result<SocketAddr> {
    let url = &topology.alert_receiver.webhook_url;
    let bad = || {
        LabError::Invalid(format!(
            "monitoring.alertReceiver.webhookUrl is {url:?} (expected http://<address>:<port>/<path> with an IPv4 address of a lab host); the lab serves the webhook there"
        ))
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let authority = rest.split('/').next().unwrap_or_default();
    authority.parse().map_err(|_| bad())
}

/// The webhook receiver (this very binary, `infralab webhook`), on the monitoring host.
pub fn webhook(
    topology: &Topology,
    host: &Host,
    dirs: &HostDirs,
    infralab: &Path,
) -> Result<Daemon> {
    let address = webhook_address(topology)?;
    Ok(Daemon {
        spec: Spec::new("webhook", &host.name, &infralab.display().to_string()).args([
            "webhook".to_string(),
            "--listen".into(),
            address.to_string(),
            "--out".into(),
            deliveries(dirs).display().to_string(),
        ]),
        ready: Ready::Port(address),
    })
}

/// The file the webhook receiver appends deliveries to.
pub fn deliveries(dirs: &HostDirs) -> PathBuf {
    dirs.data.join("webhook-deliveries.jsonl")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateDir;

    #[test]
    fn nginx_writes_nothing_outside_the_state_dir() {
        let state = StateDir::new(Path::new("/lab")).unwrap();
        let dirs = HostDirs::new(&state, "web1");
        let conf = nginx_main_conf(&dirs);
        for line in conf
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains('/'))
        {
            let ok = line.contains("/lab/nodes/web1/") || line.contains("/etc/nginx/mime.types");
            assert!(ok, "{line}");
        }
        assert!(conf.contains("include /lab/nodes/web1/etc/nginx/rampart.conf;"));
        assert!(conf.contains("scgi_temp_path"));
    }

    #[test]
    fn the_webhook_listens_where_the_topology_says() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../hosts/topology.json");
        let mut t = Topology::load(&path).unwrap();
        assert_eq!(webhook_address(&t).unwrap().to_string(), "10.42.0.10:9099");
        t.alert_receiver.webhook_url = "https://alerts.example/x".into();
        let err = webhook_address(&t).unwrap_err().to_string();
        assert!(
            err.contains("webhookUrl is \"https://alerts.example/x\""),
            "{err}"
        );
    }
}
