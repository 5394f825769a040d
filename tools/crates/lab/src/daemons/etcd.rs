//! etcd on every host: the member lib/render/etcd.nix describes, run by Debian's
//! `etcd` from `lib.daemons` with no argument and the environment nixpkgs' `services.etcd`
//! gives its unit (its `labEnvironment`; lib/tests/render-etcd.nix proves them equal).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use std::future::Future;

use rampart_consensus::{cluster_health, ClientConfig, ClusterHealth, Consensus, ConsensusError};
use rampart_topology::{Host, Topology};

use super::{command, launches, placement, port, program, socket, Daemon};
use crate::render::HostDirs;
use crate::{netns, LabError, Ready, Result};

/// The member of `host`: Debian's etcd from `lib.daemons` (no argument, the environment
/// nixpkgs' unit gets), checked first ([`check_etcd`]). Ready when its client port
/// accepts connections; [`wait_etcd_healthy`] then waits for the cluster.
pub fn etcd(topology: &Topology, host: &Host, dirs: &HostDirs) -> Result<Daemon> {
    let address = socket(
        host.address,
        port(topology, rampart_consensus::CLIENT_SERVICE)?,
    );
    check_etcd(dirs)?;
    let etcd = program("etcd", "etcd-server")?;
    Ok(Daemon {
        spec: command("etcd", &host.name, &etcd, dirs, placement("etcd", dirs))?,
        ready: Ready::Port(address),
    })
}

/// etcd has no check mode, and it only warns about a variable it does not know (a typo
/// would silently leave a flag at its default). So: every `ETCD_<FLAG>` the lab starts it
/// with (`lib.daemons`) must be a flag `etcd --help` lists, and every file a `*_FILE`
/// variable names must exist.
pub fn check_etcd(dirs: &HostDirs) -> Result<()> {
    let environment = launches(dirs)?
        .remove("etcd")
        .map(|launch| launch.lab_variables())
        .ok_or_else(|| {
            LabError::Invalid(format!(
                "lib.daemons runs no etcd on {}; every host is a member",
                dirs.root.display()
            ))
        })?;
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
        Ok(())
    } else {
        Err(LabError::Invalid(format!(
            "etcd's environment in {}: {}",
            dirs.etc.join(crate::render::DAEMONS_FILE).display(),
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
    fn variables_map_to_the_flags_etcd_help_lists() {
        let help = "Member:\n  --name 'default'\n    Human-readable name.\n  --data-dir '${name}.etcd'\n  etcd --version\n";
        assert_eq!(help_flags(help), ["name", "data-dir"]);
        assert_eq!(
            flag_of("ETCD_INITIAL_CLUSTER_TOKEN"),
            "initial-cluster-token"
        );
    }
}
