//! MariaDB on a database host: install, bootstrap, the server itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_topology::{Host, Topology};

use super::{command, placement};
use super::{port, program, rendered, socket, Daemon};
use crate::render::HostDirs;
use crate::{io, run, LabError, Ready, Result};

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
    run(&mut mariadb_install_command(&paths.datadir, &paths.tmpdir)?)?;
    Ok(())
}

/// `mariadb-install-db` for a fresh data directory: the one way the lab's hosts and the
/// tools' tests on loopback ([`crate::local`]) make one.
pub fn mariadb_install_command(datadir: &Path, tmpdir: &Path) -> Result<Command> {
    let install = program("mariadb-install-db", "mariadb-server")?;
    let mut cmd = Command::new(install);
    cmd.arg("--no-defaults")
        // Root runs the lab and owns the state directory; mariadbd refuses to guess.
        .arg("--user=root")
        .arg(format!("--datadir={}", datadir.display()))
        .arg(format!("--tmpdir={}", tmpdir.display()))
        .arg("--auth-root-authentication-method=socket")
        .arg("--skip-test-db");
    Ok(cmd)
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
    secrets: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    use std::io::Write;
    let template_path = rendered(dirs, "mariadb/bootstrap.sql")?;
    let template = std::fs::read_to_string(&template_path).map_err(io(&template_path))?;
    let sql = crate::secrets::substitute(&template, secrets, &crate::secrets::list(dirs)?)?;
    let mut cmd = MariadbPaths::new(dirs).client(namespace);
    let line = crate::command_line(&cmd);
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
