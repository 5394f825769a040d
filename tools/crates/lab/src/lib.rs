//! The lab: rampart's hosts as Linux network namespaces on one machine, running the
//! rendered configuration on Debian's real daemons (`infralab up|down|status|test`).
//!
//! # Shape
//!
//! ```text
//!  ┌ <prefix>_bridge ─────────── bridge "br0" ────────────────────────┐
//!  │   v0        v1        v2        v3 (outside)   v4 (admin)       │
//!  └───┼─────────┼─────────┼─────────┼──────────────┼──────────────────┘
//!   eth0      eth0      eth0      eth0           eth0
//!  <prefix>lb <prefix>web1 …   <prefix>outside <prefix>admin
//! ```
//!
//! Every namespace the lab makes is called `<prefix><node>`, where the prefix defaults to
//! `rl-<topology name>.` ([`names::Names`]). The `.` cannot occur in a node name, so the
//! lab of topology `rampart` never matches another lab's (`rl-rampart-x.`) or a test's
//! namespaces. The bridge lives in a namespace of its own, so the machine's own network
//! never sees a lab address.
//!
//! # Modules
//!
//! - [`control`]: one lab as a whole ([`Lab`]): build, start, stop, tear down.
//! - [`daemons`]: how each Debian daemon runs on the rendered files, without systemd.
//! - [`http`]: a plain HTTP client inside a namespace (monitoring APIs).
//! - [`load`]: bounded HTTP load with wrk, and its report.
//! - [`traffic`]: a bounded mixed load (GET and POST with request ids) recorded request by
//!   request, and the check of every POST against the database.
//! - [`monitor`]: Prometheus targets, alerts and queries; HAProxy server states.
//! - [`names`]: namespace and interface names.
//! - [`state`]: the state directory and its record of every namespace and process, written
//!   after each change so that `down` can clean up after a crash.
//! - [`firewall`]: a host's rendered nftables ruleset, checked and loaded in its namespace.
//! - [`fabric`]: namespaces, bridge, veth pairs and addresses from the topology.
//! - [`netns`]: running a closure inside a namespace (readiness probes, clients).
//! - [`process`]: starting daemons inside namespaces, waiting for them, stopping them.
//! - [`render`]: the configuration files, from `nix eval` of the flake's `lib.render`.
//! - [`secrets`]: runtime passwords and their placeholders in the bootstrap SQL.
//! - [`supervise`]: the supervisor that restarts a daemon that exits (systemd's
//!   `Restart=always`) and holds the application's socket (socket activation).
//! - [`variant`]: the benchmark's plain-backend variant of the rendered files.
//! - [`webhook`]: the alert webhook receiver that records Alertmanager's deliveries.

pub mod control;
pub mod daemons;
pub mod fabric;
pub mod firewall;
pub mod http;
pub mod load;
pub mod local;
pub mod monitor;
pub mod names;
pub mod netns;
pub mod process;
pub mod render;
pub mod secrets;
pub mod state;
pub mod supervise;
pub mod traffic;
pub mod variant;
pub mod webhook;

pub use control::{Lab, Ready};

use std::path::PathBuf;
use std::time::Duration;

/// Why a lab operation failed. Every variant names the namespace, file or process involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// A helper command (`ip`, `nft`, `mariadb`, …) exited unsuccessfully.
    #[error("lab: `{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    /// A helper command could not be started at all.
    #[error("lab: cannot run `{program}` ({source}); install it (scripts/install.sh lists every package the lab needs)")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// Reading or writing a lab file failed.
    #[error("lab: {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The state record exists but is not what the lab writes.
    #[error("lab: state record {} is unreadable ({source}); remove it or run `infralab down --prefix PREFIX`", path.display())]
    Record {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A namespace the lab needs does not exist.
    #[error("lab: network namespace {name} does not exist (got no /run/netns/{name}); run `infralab up` first")]
    NoNamespace { name: String },
    /// Entering a namespace failed.
    #[error("lab: cannot enter network namespace {name}: {source}")]
    Enter { name: String, source: nix::Error },
    /// A service did not answer in time.
    #[error("lab: {what} did not answer within {:.1} s (expected {expectation}); see {}", waited.as_secs_f64(), log.display())]
    NotReady {
        what: String,
        expectation: String,
        waited: Duration,
        log: PathBuf,
    },
    /// A daemon exited while the lab waited for it.
    #[error("lab: {what} exited during start-up ({status}); its log {} ends with:\n{tail}", log.display())]
    Exited {
        what: String,
        status: String,
        log: PathBuf,
        tail: String,
    },
    /// Something about the lab's input is unusable.
    #[error("lab: {0}")]
    Invalid(String),
}

/// Shorthand for results of lab operations.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

/// Wraps an I/O error with the path it concerns.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LabError {
    let path = path.into();
    move |source| LabError::Io { path, source }
}

/// Runs a command to completion; a non-zero exit is an error carrying its stderr.
pub fn run(cmd: &mut std::process::Command) -> Result<String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let output = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn {
            program: program.clone(),
            source,
        })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(LabError::Command {
        command: command_line(cmd),
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

/// A command as a shell-like line, for messages.
pub fn command_line(cmd: &std::process::Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Network namespaces, nftables and the daemons' ports need root.
pub fn require_root(action: &str) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    Err(LabError::Invalid(format!(
        "{action} needs root (got uid {}, expected 0): network namespaces and nftables are root-only; run it with sudo or as root",
        nix::unistd::geteuid()
    )))
}
