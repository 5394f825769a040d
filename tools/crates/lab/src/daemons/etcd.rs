//! etcd on every host: the member lib/render/etcd.nix describes, run by Debian's
//! `etcd` with the rendered environment (`etcd/etcd.env`) and no argument — exactly the
//! variables nixpkgs' `services.etcd` gives its unit (lib/tests/render-etcd.nix).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use std::future::Future;

use rampart_consensus::{cluster_health, ClientConfig, ClusterHealth, Consensus, ConsensusError};
use rampart_topology::{Host, Topology};

use super::{port, program, rendered, socket, Daemon};
use crate::process::Spec;
use crate::render::HostDirs;
use crate::{io, netns, LabError, Ready, Result};

/// The `ETCD_*` variables of a host's rendered environment file, in file order.
pub fn etcd_environment(dirs: &HostDirs) -> Result<Vec<(String, String)>> {
    let path = rendered(dirs, "etcd/etcd.env")?;
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    parse_environment(&text).map_err(|line| {
        LabError::Invalid(format!(
            "{}: line {line:?} is not NAME=value (expected ETCD_<FLAG>=value); check lib/render/etcd.nix",
            path.display()
        ))
    })
}

/// `NAME=value` lines (comments and blank lines skipped), or the first line that is not.
fn parse_environment(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| match line.split_once('=') {
            Some((name, value)) if name.starts_with("ETCD_") => {
                Ok((name.to_string(), value.to_string()))
            }
            _ => Err(line.to_string()),
        })
        .collect()
}

/// The member of `host`: Debian's etcd with the rendered environment. Ready when its
/// client port accepts connections; [`wait_etcd_healthy`] then waits for the cluster.
pub fn etcd(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    let address = socket(
        host.address,
        port(topology, rampart_consensus::CLIENT_SERVICE)?,
    );
    let mut spec = Spec::new("etcd", &host.name, &program("etcd", "etcd-server")?);
    for (name, value) in etcd_environment(dirs)? {
        spec = spec.env(&name, value);
    }
    Ok(Daemon {
        spec,
        ready: Ready::Port(address),
    })
}

/// etcd has no check mode, and it only warns about a variable it does not know (a typo
/// would silently leave a flag at its default). So: every rendered `ETCD_<FLAG>` must be a
/// flag `etcd --help` lists, and every file a `*_FILE` variable names must exist. Returns
/// the environment.
pub fn check_etcd(dirs: &HostDirs) -> Result<Vec<(String, String)>> {
    let environment = etcd_environment(dirs)?;
    let etcd = program("etcd", "etcd-server")?;
    let output = Command::new(&etcd)
        .arg("--help")
        .output()
        .map_err(|source| LabError::Spawn {
            program: etcd.clone(),
            source,
        })?;
    let help = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let flags = help_flags(&help);
    let mut problems = Vec::new();
    for (name, value) in &environment {
        let flag = flag_of(name);
        if !flags.contains(&flag) {
            problems.push(format!("{name}: {etcd} has no flag --{flag}"));
        }
        if name.ends_with("_FILE") && !Path::new(value).is_file() {
            problems.push(format!("{name}: no file {value}"));
        }
    }
    if problems.is_empty() {
        Ok(environment)
    } else {
        Err(LabError::Invalid(format!(
            "{}: {}",
            dirs.etc.join("etcd/etcd.env").display(),
            problems.join("; ")
        )))
    }
}

/// The flags `etcd --help` lists (`  --data-dir '…'` ↦ `data-dir`).
fn help_flags(help: &str) -> Vec<String> {
    help.lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .filter_map(|l| l.split([' ', '=']).next())
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

/// `ETCD_DATA_DIR` ↦ `data-dir`.
fn flag_of(variable: &str) -> String {
    variable
        .trim_start_matches("ETCD_")
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// The client configuration of a host: every member, with the host's `etcd-client`
/// certificate from `pki` (a database host has one).
pub fn etcd_client_config(topology: &Topology, pki: &Path) -> Result<ClientConfig> {
    ClientConfig::from_topology(topology, pki, "etcd-client")
        .map_err(|e| LabError::Invalid(e.to_string()))
}

/// Runs the future `make` returns to completion inside `namespace`, on a thread and a
/// current-thread tokio runtime of its own.
fn block_on_in<T, F, Fut>(namespace: &str, make: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    netns::run_in(namespace, move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|runtime| runtime.block_on(make()))
    })?
    .map_err(|e| LabError::Invalid(format!("cannot start a tokio runtime: {e}")))
}

/// Runs `work` with a client of the cluster, from inside `namespace`. The outer error:
/// the namespace or the runtime; the inner one: etcd's answer, for the caller to judge
/// (`is_unavailable`).
pub fn with_etcd<T, F, Fut>(
    namespace: &str,
    config: ClientConfig,
    work: F,
) -> Result<std::result::Result<T, ConsensusError>>
where
    T: Send + 'static,
    F: FnOnce(Consensus) -> Fut + Send + 'static,
    Fut: Future<Output = std::result::Result<T, ConsensusError>>,
{
    block_on_in(namespace, move || async move {
        let etcd = Consensus::connect(&config).await?;
        work(etcd).await
    })
}

/// Asks the cluster for its health from inside `namespace`, with the client certificate
/// `<pki>/etcd-client.pem` (a database host's).
pub fn etcd_health(namespace: &str, topology: &Topology, pki: &Path) -> Result<ClusterHealth> {
    let config = etcd_client_config(topology, pki)?;
    block_on_in(
        namespace,
        move || async move { cluster_health(&config).await },
    )
}

/// Waits until every member is healthy and a quorum answers, asked from `namespace` with
/// the client certificate in `pki`; the last health seen is in the error.
pub fn wait_etcd_healthy(
    namespace: &str,
    topology: &Topology,
    pki: &Path,
    limit: Duration,
) -> Result<ClusterHealth> {
    let deadline = Instant::now() + limit;
    loop {
        let health = etcd_health(namespace, topology, pki)?;
        if health.all_healthy() {
            return Ok(health);
        }
        if Instant::now() > deadline {
            return Err(LabError::Invalid(format!(
                "etcd is not healthy after {limit:?}: {}",
                describe(&health)
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One line: each member's state, the leader, the quorum.
pub fn describe(health: &ClusterHealth) -> String {
    let members: Vec<String> = health
        .members
        .iter()
        .map(|m| match &m.status {
            Ok(s) => format!(
                "{} {} (term {})",
                m.name,
                if m.healthy() { "healthy" } else { "no leader" },
                s.raft_term
            ),
            Err(e) => format!("{} unreachable ({e})", m.name),
        })
        .collect();
    format!(
        "{}; leader {}; {}",
        members.join(", "),
        health.leader.as_deref().unwrap_or("none"),
        match &health.quorum_error {
            None => "quorum".to_string(),
            Some(e) => format!("no quorum ({e})"),
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_file_is_name_value_lines_and_nothing_else() {
        let text = "# header\n\nETCD_NAME=web1\nETCD_DISCOVERY=\nETCD_INITIAL_CLUSTER=a=https://x:2380,b=https://y:2380\n";
        assert_eq!(
            parse_environment(text).unwrap(),
            [
                ("ETCD_NAME".to_string(), "web1".to_string()),
                ("ETCD_DISCOVERY".to_string(), String::new()),
                (
                    "ETCD_INITIAL_CLUSTER".to_string(),
                    "a=https://x:2380,b=https://y:2380".to_string()
                ),
            ]
        );
        assert_eq!(
            parse_environment("ETCD_NAME=a\nname: web1\n").unwrap_err(),
            "name: web1"
        );
        assert_eq!(parse_environment("PATH=/bin\n").unwrap_err(), "PATH=/bin");
    }

    #[test]
    fn variables_map_to_the_flags_etcd_help_lists() {
        let help = "Member:\n  --name 'default'\n    Human-readable name.\n  --data-dir '${name}.etcd'\n  etcd --version\n";
        assert_eq!(help_flags(help), ["name", "data-dir"]);
        assert_eq!(
            flag_of("ETCD_INITIAL_CLUSTER_TOKEN"),
            "initial-cluster-token"
        );
    }
}
