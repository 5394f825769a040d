//! How the lab runs each of Debian's daemons on a host's rendered files, without systemd.
//!
//! Every daemon starts from `lib.daemons`, the attribute the NixOS units are set from
//! ([`Launch`], rendered as [`DAEMONS_FILE`]): its arguments, the lab's own arguments
//! (`labArgs`: what nixpkgs' modules pass on NixOS) and its environment come from there, its
//! main configuration from the rendered files. The lab adds only where files live, under
//! the host's directories ([`HostDirs`]); [`command`] refuses anything else. Each daemon's
//! own check mode runs on the files before it starts, the way the NixOS modules check
//! before a start.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::topology::{Host, Topology};

use super::process::Spec;
use super::render::{HostDirs, DAEMONS_FILE};
use super::{io, run, LabError, Ready, Result};

/// How one daemon starts: the host's entry of `lib.daemons` (lib/daemons.nix), without
/// the NixOS option values.
#[derive(Clone, Debug, serde::Deserialize, PartialEq, Eq)]
pub struct Launch {
    /// The NixOS unit that runs it.
    pub unit: String,
    /// Passed on NixOS and in the lab alike.
    pub args: Vec<String>,
    /// Passed in the lab only: on NixOS, nixpkgs' module passes their equivalent.
    #[serde(rename = "labArgs")]
    pub lab_args: Vec<String>,
    /// The rendered files it runs with.
    pub files: Vec<String>,
    pub environment: BTreeMap<String, String>,
}

/// Every daemon of a host, as rendered with its files.
pub fn launches(dirs: &HostDirs) -> Result<BTreeMap<String, Launch>> {
    let path = dirs.etc.join(DAEMONS_FILE);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    serde_json::from_str(&text).map_err(|e| {
        LabError::Invalid(format!(
            "{} is not the launch attribute lib.daemons renders ({e}); render again",
            path.display()
        ))
    })
}

/// Whether `arg` only says where a file lives: an absolute path, or `-x=/…`.
pub fn is_path(arg: &str) -> bool {
    arg.starts_with('/')
        || (arg.starts_with('-') && arg.split_once('=').is_some_and(|(_, v)| v.starts_with('/')))
}

/// The first argument of `placement` that says more than where a file lives: neither a
/// path nor a flag followed by one (`-c /…`).
pub fn not_a_path(placement: &[String]) -> Option<&str> {
    let mut args = placement.iter().peekable();
    while let Some(arg) = args.next() {
        if is_path(arg) {
            continue;
        }
        let flag_of_path =
            arg.starts_with('-') && args.peek().is_some_and(|next| next.starts_with('/'));
        if !flag_of_path {
            return Some(arg);
        }
        args.next();
    }
    None
}

/// The lab's command line for daemon `name` of a host: `placement` (where its files live,
/// nothing else), then its `labArgs` and `args` of `lib.daemons`, with its environment.
pub fn command(
    name: &str,
    host: &str,
    program: &str,
    dirs: &HostDirs,
    placement: Vec<String>,
) -> Result<Spec> {
    let mut all = launches(dirs)?;
    let launch = all.remove(name).ok_or_else(|| {
        LabError::Invalid(format!(
            "lib.daemons runs no {name} on {host} (it runs: {}); start only what its concerns call for",
            all.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    from_launch(name, host, program, &launch, placement)
}

/// [`command`] for a given launch attribute.
pub fn from_launch(
    name: &str,
    host: &str,
    program: &str,
    launch: &Launch,
    placement: Vec<String>,
) -> Result<Spec> {
    if let Some(arg) = not_a_path(&placement) {
        return Err(LabError::Invalid(format!(
            "{name} on {host}: the lab would pass {arg:?}, which says more than where a file lives; \
             everything else comes from lib/daemons.nix (args for both NixOS and the lab, labArgs for the lab only)"
        )));
    }
    let mut spec = Spec::new(name, host, program)
        .args(placement)
        .args(launch.lab_args.iter().cloned())
        .args(launch.args.iter().cloned());
    for (key, value) in &launch.environment {
        spec = spec.env(key, value.clone());
    }
    Ok(spec)
}

/// Where each daemon's files live in the lab: the only arguments it adds to `lib.daemons`.
pub fn placement(name: &str, dirs: &HostDirs) -> Vec<String> {
    let path = |p: PathBuf| p.display().to_string();
    let etc = |relative: &str| path(dirs.etc.join(relative));
    match name {
        "nginx" => vec![
            "-p".into(),
            path(dirs.data.join("nginx")),
            "-c".into(),
            etc("nginx/nginx.conf"),
        ],
        // --defaults-file first: only the rendered file is read, never /etc/mysql.
        "mariadb" => {
            let paths = MariadbPaths::new(dirs);
            vec![
                format!("--defaults-file={}", paths.config.display()),
                format!("--datadir={}", paths.datadir.display()),
                format!("--tmpdir={}", paths.tmpdir.display()),
                format!("--socket={}", paths.socket.display()),
                format!("--pid-file={}", paths.pid.display()),
                format!(
                    "--log-error={}",
                    dirs.log.join("mariadb-error.log").display()
                ),
            ]
        }
        "haproxy" => vec!["-f".into(), etc("haproxy/haproxy.cfg")],
        "sshd" => vec!["-f".into(), etc("ssh/sshd_config")],
        "node-exporter" => vec![format!(
            "--collector.textfile.directory={}",
            dirs.textfile.display()
        )],
        "mysqld-exporter" => vec![format!(
            "--config.my-cnf={}",
            mysqld_exporter_cnf(dirs).display()
        )],
        "prometheus" => vec![
            format!("--config.file={}", etc("prometheus/prometheus.yml")),
            format!(
                "--storage.tsdb.path={}",
                dirs.data.join("prometheus").display()
            ),
        ],
        "alertmanager" => vec![
            format!("--config.file={}", etc("alertmanager/alertmanager.yml")),
            format!(
                "--storage.path={}",
                dirs.data.join("alertmanager").display()
            ),
        ],
        _ => Vec::new(),
    }
}

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

/// The application (`rampart-app`, tools/app) on a web host, on loopback behind nginx,
/// with the command line of `lib.daemons` (which database to read from included).
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
        spec,
        ready: Ready::Port(listen),
    })
}

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
        .ok_or_else(|| LabError::Invalid(format!("no user {user:?} on this machine for nginx's workers (lib/settings.nix nginx.user, the lab's www-data)")))?;
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

/// nginx on a web host, ready when the backend TLS port answers. `nginx -t` runs in the
/// host's namespace: it binds the listen addresses to test them.
pub fn nginx(topology: &Topology, host: &Host, dirs: &HostDirs, namespace: &str) -> Result<Daemon> {
    prepare_nginx(dirs)?;
    let nginx = program("nginx", "nginx")?;
    let spec = command("nginx", &host.name, &nginx, dirs, placement("nginx", dirs))?;
    run(Command::new("ip")
        .args(["netns", "exec", namespace, &nginx])
        .args(&spec.args)
        .arg("-t")
        .arg("-q"))?;
    Ok(Daemon {
        spec,
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
    let mariadbd = program("mariadbd", "mariadb-server")?;
    Ok(Daemon {
        spec: command(
            "mariadb",
            &host.name,
            &mariadbd,
            dirs,
            placement("mariadb", dirs),
        )?,
        ready: Ready::Port(socket(host.address, port(topology, "mysql")?)),
    })
}

/// Pipes the rendered bootstrap SQL, with secrets substituted, to the host's MariaDB.
pub fn mariadb_bootstrap(
    namespace: &str,
    dirs: &HostDirs,
    secrets: &BTreeMap<String, String>,
) -> Result<()> {
    use std::io::Write;
    let template_path = rendered(dirs, "mariadb/bootstrap.sql")?;
    let template = std::fs::read_to_string(&template_path).map_err(io(&template_path))?;
    let sql = super::secrets::substitute(&template, secrets, &super::secrets::list(dirs)?)?;
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
        spec: command("sshd", &host.name, &sshd, dirs, placement("sshd", dirs))?,
        ready: Ready::Port(address),
    })
}

/// Debian's node exporter, with the textfile directory reach writes to.
pub fn node_exporter(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    let address = socket(host.address, port(topology, "nodeExporter")?);
    let exporter = program("prometheus-node-exporter", "prometheus-node-exporter")?;
    Ok(Daemon {
        spec: command(
            "node-exporter",
            &host.name,
            &exporter,
            dirs,
            placement("node-exporter", dirs),
        )?,
        ready: Ready::Port(address),
    })
}

/// Debian's nginx exporter, reading the loopback stub_status page.
pub fn nginx_exporter(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    let address = socket(host.address, port(topology, "nginxExporter")?);
    let exporter = program("prometheus-nginx-exporter", "prometheus-nginx-exporter")?;
    Ok(Daemon {
        spec: command(
            "nginx-exporter",
            &host.name,
            &exporter,
            dirs,
            placement("nginx-exporter", dirs),
        )?,
        ready: Ready::Port(address),
    })
}

/// The mysqld exporter's client file: it holds a password, so it lives in `secretsDir`.
fn mysqld_exporter_cnf(dirs: &HostDirs) -> PathBuf {
    dirs.secrets.join("mysqld-exporter.cnf")
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
    let socket_path = MariadbPaths::new(dirs).socket;
    super::secrets::write_private(
        &mysqld_exporter_cnf(dirs),
        &format!(
            "[client]\nuser={user}\npassword={password}\nsocket={}\n",
            socket_path.display()
        ),
    )?;
    let exporter = program("prometheus-mysqld-exporter", "prometheus-mysqld-exporter")?;
    Ok(Daemon {
        spec: command(
            "mysqld-exporter",
            &host.name,
            &exporter,
            dirs,
            placement("mysqld-exporter", dirs),
        )?,
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
        spec: command(
            "prometheus",
            &host.name,
            &prometheus,
            dirs,
            placement("prometheus", dirs),
        )?,
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
        spec: command(
            "alertmanager",
            &host.name,
            &alertmanager,
            dirs,
            placement("alertmanager", dirs),
        )?,
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
    use crate::lab::render;
    use crate::lab::state::StateDir;

    fn launch() -> Launch {
        Launch {
            unit: "alertmanager".into(),
            args: vec!["--cluster.listen-address=".into()],
            lab_args: vec!["--web.listen-address=10.42.0.10:9093".into()],
            files: vec!["alertmanager/alertmanager.yml".into()],
            environment: BTreeMap::from([("TZ".to_string(), "UTC".to_string())]),
        }
    }

    #[test]
    fn the_lab_adds_where_files_live_and_nothing_else() {
        let spec = from_launch(
            "alertmanager",
            "lb",
            "/bin/am",
            &launch(),
            vec!["--config.file=/s/a.yml".into()],
        )
        .unwrap();
        assert_eq!(
            spec.args,
            [
                "--config.file=/s/a.yml",
                "--web.listen-address=10.42.0.10:9093",
                "--cluster.listen-address="
            ]
        );
        assert_eq!(spec.env, [("TZ".to_string(), "UTC".to_string())]);
        // A flag of the lab's own is refused: it belongs in lib/daemons.nix.
        let err = from_launch(
            "alertmanager",
            "lb",
            "/bin/am",
            &launch(),
            vec!["--web.enable-lifecycle".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("\"--web.enable-lifecycle\""), "{err}");
        assert!(
            is_path("-f=/x")
                && is_path("/x")
                && !is_path("-D")
                && !is_path("--cluster.listen-address=")
        );
        let args = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(not_a_path(&args(&["-p", "/a", "-c", "/b"])), None);
        assert_eq!(not_a_path(&args(&["-c", "/b", "-D"])), Some("-D"));
        assert_eq!(not_a_path(&args(&["-D", "-c"])), Some("-D"));
    }

    /// The parity test's lab half (the NixOS half is checks/harness/parity.nix): for every
    /// host and daemon of the shipped topology, rendered by Nix as `infralab up` renders
    /// it, the command line is the attribute of `lib.daemons` plus paths under the host's
    /// state, its environment is the attribute's, and it runs on the rendered main
    /// configuration.
    #[test]
    fn lab_start_is_the_nix_attribute() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let topology = std::fs::read_to_string(repo.join("hosts/topology.json")).unwrap();
        let root = std::env::temp_dir().join(format!("rampart-parity-{}", std::process::id()));
        let state = StateDir::new(&root).unwrap();
        let hosts: Vec<String> = Topology::load(&repo.join("hosts/topology.json"))
            .unwrap()
            .hosts
            .iter()
            .map(|h| h.name.clone())
            .collect();
        let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let settings = render::lab_settings(&state, &names, &serde_json::json!({}));
        let rendered = render::render(&repo, &topology, &settings, None).unwrap();
        let mut checked = Vec::new();
        for host in &names {
            let dirs = HostDirs::new(&state, host);
            dirs.create().unwrap();
            render::write_files(&dirs, &rendered.files[*host]).unwrap();
            for (name, launch) in launches(&dirs).unwrap() {
                let placement = placement(&name, &dirs);
                let spec = command(&name, host, "/bin/daemon", &dirs, placement.clone()).unwrap();
                let mut want = placement.clone();
                want.extend(launch.lab_args.iter().cloned());
                want.extend(launch.args.iter().cloned());
                assert_eq!(spec.args, want, "{name} on {host}");
                let env: Vec<_> = launch.environment.clone().into_iter().collect();
                assert_eq!(spec.env, env, "{name} on {host}");
                for arg in placement.iter().filter(|arg| is_path(arg)) {
                    assert!(
                        arg.contains(&root.display().to_string()),
                        "{name} on {host}: {arg} is outside the lab's state"
                    );
                }
                // The main configuration is the rendered one, named by a placement path.
                if let Some(main) = launch.files.first() {
                    let path = dirs.etc.join(main);
                    assert!(path.is_file(), "{name} on {host}: no rendered {main}");
                    let named = path.display().to_string();
                    assert!(
                        placement
                            .iter()
                            .any(|arg| arg == &named || arg.ends_with(&format!("={named}"))),
                        "{name} on {host}: the lab does not run {main}: {placement:?}"
                    );
                }
                checked.push(format!("{name}@{host}"));
            }
        }
        std::fs::remove_dir_all(&root).unwrap();
        // Every daemon of every host: 5 on lb, 7 on each web host.
        assert_eq!(checked.len(), 19, "{checked:?}");
    }

    #[test]
    fn the_webhook_listens_where_the_topology_says() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hosts/topology.json");
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
