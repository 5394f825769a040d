//! The daemons the lab runs, started on loopback for the tools' own tests.
//!
//! The lab's hosts start their daemons from `lib.daemons` in namespaces
//! ([`crate::daemons`]); a test of one tool needs one or two of the same programs on
//! 127.0.0.x with settings of its own (a port it picked, a test CA). This is the one place
//! that starts them: the program looked up as the lab looks it up ([`program`]), MariaDB's
//! data directory made by the lab's own install command, output to a log file beside the
//! test's files, readiness awaited with a deadline, and the process killed when the
//! handle is dropped — also when the test panics. With the `local-etcd` feature,
//! [`etcd::TestCluster`] runs a whole etcd cluster on loopback.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemons::{mariadb_install_command, program};
use crate::process::log_tail;
use crate::{command_line, io, run, LabError, Result};

#[cfg(feature = "local-etcd")]
pub mod etcd;

/// How long a loopback daemon may take to become ready (a loaded CI machine included).
const READY_LIMIT: Duration = Duration::from_secs(60);

/// What shows that a daemon started on loopback serves.
#[derive(Clone, Debug)]
pub enum LocalReady {
    /// It accepts TCP connections on this address.
    Port(SocketAddr),
    /// Its log contains this text (Prometheus: "Server is ready to receive web requests").
    Logged(String),
    /// It accepts connections on this Unix socket (reachable from any network namespace).
    Socket(PathBuf),
}

/// A daemon running on loopback; dropped, it is killed and reaped.
#[derive(Debug)]
pub struct LocalDaemon {
    what: String,
    child: Child,
    log: PathBuf,
}

impl LocalDaemon {
    /// Starts `program` (looked up like the lab's daemons; `package` names the Debian
    /// package to install when it is missing) with `args` and `env`, its output in
    /// `log`, and waits until `ready`.
    pub fn start(
        program_name: &str,
        package: &str,
        args: &[String],
        env: &[(String, String)],
        log: &Path,
        ready: LocalReady,
    ) -> Result<LocalDaemon> {
        let path = program(program_name, package)?;
        let mut cmd = Command::new(&path);
        cmd.args(args).envs(env.iter().cloned());
        Self::spawn(cmd, format!("{program_name} on loopback"), log, ready)
    }

    /// [`LocalDaemon::start`] inside network namespace `namespace` (made by the caller, as
    /// the lab's hosts are): `ip netns exec` execs the program, so the pid is the daemon's.
    pub fn start_in(
        namespace: &str,
        program_name: &str,
        package: &str,
        args: &[String],
        log: &Path,
        ready: LocalReady,
    ) -> Result<LocalDaemon> {
        let path = program(program_name, package)?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", namespace]).arg(&path).args(args);
        Self::spawn(cmd, format!("{program_name} in {namespace}"), log, ready)
    }

    fn spawn(mut cmd: Command, what: String, log: &Path, ready: LocalReady) -> Result<LocalDaemon> {
        let out = std::fs::File::create(log).map_err(io(log))?;
        let err = out.try_clone().map_err(io(log))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().map_err(|source| LabError::Spawn {
            program: command_line(&cmd),
            source,
        })?;
        let mut daemon = LocalDaemon {
            what,
            child,
            log: log.to_path_buf(),
        };
        daemon.wait(&ready)?;
        Ok(daemon)
    }

    fn wait(&mut self, ready: &LocalReady) -> Result<()> {
        let start = Instant::now();
        loop {
            let served = match ready {
                LocalReady::Port(address) => {
                    TcpStream::connect_timeout(address, Duration::from_millis(250)).is_ok()
                }
                LocalReady::Logged(text) => std::fs::read_to_string(&self.log)
                    .map(|log| log.contains(text.as_str()))
                    .unwrap_or(false),
                LocalReady::Socket(path) => std::os::unix::net::UnixStream::connect(path).is_ok(),
            };
            if served {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(LabError::Exited {
                    what: self.what.clone(),
                    status: status.to_string(),
                    log: self.log.clone(),
                    tail: log_tail(&self.log, 20),
                });
            }
            if start.elapsed() > READY_LIMIT {
                return Err(LabError::NotReady {
                    what: self.what.clone(),
                    expectation: match ready {
                        LocalReady::Port(address) => format!("connections on {address}"),
                        LocalReady::Logged(text) => format!("{text:?} in its log"),
                        LocalReady::Socket(path) => format!("connections on {}", path.display()),
                    },
                    waited: start.elapsed(),
                    log: self.log.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LocalDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The files a TLS-speaking MariaDB serves with.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What a test's MariaDB on loopback is.
#[derive(Clone, Debug)]
pub struct LocalMariadbSpec {
    /// Names its files under the test's directory.
    pub name: String,
    pub server_id: u32,
    pub address: SocketAddr,
    pub tls: Option<TlsFiles>,
    /// More `--option=value` arguments (semi-sync, read-only, …).
    pub extra: Vec<String>,
}

/// A MariaDB server on loopback with a data directory of its own.
#[derive(Debug)]
pub struct LocalMariadb {
    pub address: SocketAddr,
    pub socket: PathBuf,
    /// Held for its Drop: the server runs as long as this value lives.
    _daemon: LocalDaemon,
}

impl LocalMariadb {
    /// Makes a data directory under `dir` with the lab's install command (once) and
    /// starts `mariadbd` on it, with binary logs and GTIDs as the rendered configuration
    /// has them, answering on `spec.address` and on a socket for root.
    pub fn start(dir: &Path, spec: &LocalMariadbSpec) -> Result<LocalMariadb> {
        let datadir = dir.join(&spec.name);
        let tmpdir = dir.join(format!("{}-tmp", spec.name));
        for path in [&datadir, &tmpdir] {
            std::fs::create_dir_all(path).map_err(io(path))?;
        }
        if !datadir.join("mysql").is_dir() {
            run(&mut mariadb_install_command(&datadir, &tmpdir)?)?;
        }
        let socket = dir.join(format!("{}.sock", spec.name));
        let file = |suffix: &str| {
            dir.join(format!("{}.{suffix}", spec.name))
                .display()
                .to_string()
        };
        let mut args = vec![
            "--no-defaults".to_string(),
            format!("--datadir={}", datadir.display()),
            format!("--tmpdir={}", tmpdir.display()),
            format!("--socket={}", socket.display()),
            format!("--pid-file={}", file("pid")),
            format!("--log-error={}", file("err")),
            format!("--port={}", spec.address.port()),
            format!("--bind-address={}", spec.address.ip()),
            format!("--server-id={}", spec.server_id),
            "--log-bin=binlog".to_string(),
            "--user=root".to_string(),
            "--skip-name-resolve".to_string(),
            "--innodb-buffer-pool-size=16M".to_string(),
        ];
        if let Some(tls) = &spec.tls {
            args.push(format!("--ssl-ca={}", tls.ca.display()));
            args.push(format!("--ssl-cert={}", tls.cert.display()));
            args.push(format!("--ssl-key={}", tls.key.display()));
        }
        args.extend(spec.extra.iter().cloned());
        let log = dir.join(format!("{}.out", spec.name));
        let daemon = LocalDaemon::start(
            "mariadbd",
            "mariadb-server",
            &args,
            &[],
            &log,
            LocalReady::Port(spec.address),
        )?;
        Ok(LocalMariadb {
            address: spec.address,
            socket,
            _daemon: daemon,
        })
    }

    /// The `mariadb` client as root over the socket.
    pub fn client(&self) -> Command {
        let mut cmd = Command::new("mariadb");
        cmd.arg("--no-defaults")
            .arg(format!("--socket={}", self.socket.display()))
            .args(["-uroot", "--batch", "--skip-column-names"]);
        cmd
    }

    /// Runs SQL as root; its output (tab-separated, no column names).
    pub fn sql(&self, statement: &str) -> Result<String> {
        run(self.client().arg("-e").arg(statement))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_that_dies_at_start_up_is_an_error_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such.cfg");
        let err = LocalDaemon::start(
            "haproxy",
            "haproxy",
            &["-db".into(), "-f".into(), missing.display().to_string()],
            &[],
            &dir.path().join("haproxy.log"),
            LocalReady::Port("127.0.0.1:1".parse().unwrap()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("haproxy on loopback exited during start-up"),
            "{err}"
        );
        assert!(
            err.contains("no-such.cfg"),
            "the log's tail names the file: {err}"
        );
    }
}
