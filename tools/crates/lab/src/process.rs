//! Starting daemons inside the lab's namespaces, and stopping them.
//!
//! A daemon runs in the foreground under `ip netns exec <namespace>`, which enters the
//! namespace and then `exec`s the daemon, so the pid the lab records is the daemon's own.
//! Its stdout and stderr go to `<state>/nodes/<node>/log/<name>.log`. It gets a process
//! group of its own so that Ctrl-C on `infralab up` does not take the lab down with it.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;
use nix::sys::signal::{kill, killpg};
use nix::unistd::Pid;

use super::names::Names;
use super::state::{ProcessRecord, StateDir};
use super::{io, LabError, Result};

/// How a daemon is supervised: part of its [`Spec`] (run by [`crate::supervise`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Supervision {
    /// What stopping sends the daemon (its graceful stop).
    pub stop_signal: Signal,
    /// A listening socket the supervisor holds and hands over (socket activation).
    pub listen: Option<SocketAddr>,
}

/// What to start, where.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Unique per node: `nginx`, `mariadb`, `node-exporter`, …
    pub name: String,
    pub node: String,
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Restarted when it exits, as systemd's `Restart=always` does on NixOS
    /// ([`crate::supervise`]); `None` runs it bare.
    pub supervision: Option<Supervision>,
}

impl Spec {
    pub fn new(name: &str, node: &str, program: &str) -> Spec {
        Spec {
            name: name.to_string(),
            node: node.to_string(),
            program: program.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            supervision: None,
        }
    }

    /// Runs under the lab's supervisor: restarted when it exits, stopped with
    /// `stop_signal`, and handed its listening socket `listen` when given.
    pub fn supervised(mut self, stop_signal: Signal, listen: Option<std::net::SocketAddr>) -> Spec {
        self.supervision = Some(Supervision {
            stop_signal,
            listen,
        });
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Spec {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Spec {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Spec {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// `<name> on <node>`, for messages.
    pub fn what(&self) -> String {
        format!("{} on {}", self.name, self.node)
    }
}

/// A daemon the current process started: its record and, to learn its exit status, its
/// child handle.
#[derive(Debug)]
pub struct Running {
    pub record: ProcessRecord,
    child: Child,
}

impl Running {
    /// An error if the daemon has already exited, with the end of its log.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(LabError::Exited {
                what: format!("{} on {}", self.record.name, self.record.node),
                status: status.to_string(),
                log: self.record.log.clone(),
                tail: log_tail(&self.record.log, 15),
            }),
            Err(e) => Err(io(format!("/proc/{}", self.record.pid))(e)),
        }
    }
}

/// Open files a daemon may have: HAProxy sizes its limit from `maxconn` (2 per connection
/// plus spares) and refuses to start below it.
const OPEN_FILES: u64 = 1 << 17;

/// Raises this process's open-file limit, which the daemons inherit (systemd would set
/// `LimitNOFILE`). Lowering is never done; failing to raise is left to the daemon to report.
fn raise_open_files() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < OPEN_FILES {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, OPEN_FILES, hard.max(OPEN_FILES));
        }
    }
}

/// The hard open-file limit the daemons can get (a container may forbid raising it).
pub fn open_files_limit() -> u64 {
    raise_open_files();
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard)
        .unwrap_or(OPEN_FILES)
}

/// Starts `spec` inside its node's namespace.
pub fn spawn(names: &Names, state: &StateDir, spec: &Spec) -> Result<Running> {
    raise_open_files();
    let log = state
        .node_dir(&spec.node, "log")?
        .join(format!("{}.log", spec.name));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(io(&log))?;
    let err = file.try_clone().map_err(io(&log))?;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &names.namespace(&spec.node), &spec.program])
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .process_group(0);
    let child = cmd.spawn().map_err(|source| LabError::Spawn {
        program: "ip".into(),
        source,
    })?;
    let pid = child.id();
    Ok(Running {
        record: ProcessRecord {
            name: spec.name.clone(),
            node: spec.node.clone(),
            pid,
            start_time: start_time(pid).unwrap_or_default(),
            log,
        },
        child,
    })
}

/// The start time of a live (non-zombie) process, in clock ticks since boot.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // `rest` starts at field 3 (state); field 22 is the start time.
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

/// The live processes whose parent is `pid` (nginx's workers under its master).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    // Field 4, after the parenthesised command name (which may hold spaces).
                    let rest = &stat[stat.rfind(')')? + 2..];
                    rest.split(' ').nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Is the recorded process still the one the lab started, and alive?
pub fn is_alive(record: &ProcessRecord) -> bool {
    start_time(record.pid).is_some_and(|t| t == record.start_time)
}

/// Stops one recorded process (if it is still the one the lab started).
pub fn terminate(record: &ProcessRecord) -> bool {
    is_alive(record) && terminate_all(&[record.pid]) == 1
}

/// Sends a signal to a process (nginx reloads on SIGHUP).
pub fn signal(pid: u32, signal: Signal) -> Result<()> {
    kill(Pid::from_raw(pid as i32), signal)
        .map_err(|e| LabError::Invalid(format!("cannot send {signal} to pid {pid}: {e}")))
}

/// `signal` to every process of the process group `pgid` (a child spawned with
/// `process_group(0)` leads one: its pid). Not `kill -KILL -PGID`: procps' kill reads
/// `-PGID` without a `--` before it as something else, exits 0 and signals nobody
/// (measured: the matrix's query stream ran on for minutes).
pub fn signal_group(pgid: u32, signal: Signal) -> Result<()> {
    killpg(Pid::from_raw(pgid as i32), signal).map_err(|e| {
        LabError::Invalid(format!("cannot send {signal} to process group {pgid}: {e}"))
    })
}

/// SIGTERM, up to 5 s for the processes to go, then SIGKILL. Returns how many were alive.
pub fn terminate_all(pids: &[u32]) -> usize {
    let alive: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|&p| start_time(p).is_some())
        .collect();
    for &pid in &alive {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    }
    for (signal, grace) in [
        (Some(Signal::SIGKILL), Duration::from_secs(5)),
        (None, Duration::from_secs(2)),
    ] {
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && alive.iter().any(|&p| start_time(p).is_some()) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(signal) = signal {
            for &pid in alive.iter().filter(|&&p| start_time(p).is_some()) {
                let _ = kill(Pid::from_raw(pid as i32), signal);
            }
        }
    }
    alive.len()
}

/// The last `lines` lines of a log file (or a note that it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..]
                .iter()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(e) => format!("    (log unreadable: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_group_ends_the_leader_and_the_processes_it_started() {
        // A shell leading its own group with a grandchild, as the matrix's query stream.
        let mut leader = Command::new("sh")
            .args(["-c", "sleep 300 & echo $!; wait"])
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("sh runs");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(leader.stdout.take().expect("piped")),
            &mut line,
        )
        .expect("sh prints the grandchild's pid");
        let grandchild: u32 = line.trim().parse().expect("a pid");
        assert!(start_time(grandchild).is_some(), "the grandchild runs");

        signal_group(leader.id(), Signal::SIGKILL).expect("the group exists");
        let status = leader.wait().expect("the leader is reaped");
        assert!(
            !status.success(),
            "the leader was killed, not ended: {status}"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        // The grandchild is reparented and reaped by init; gone from /proc or a zombie.
        while Instant::now() < deadline && alive_not_zombie(grandchild) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !alive_not_zombie(grandchild),
            "the grandchild {grandchild} outlived its group's SIGKILL"
        );
    }

    #[test]
    fn signal_group_names_a_group_that_does_not_exist() {
        // A group whose only process has ended and been reaped.
        let mut gone = Command::new("true")
            .process_group(0)
            .spawn()
            .expect("true runs");
        gone.wait().expect("true is reaped");
        let pgid = gone.id();
        let err = signal_group(pgid, Signal::SIGTERM).unwrap_err();
        assert!(
            err.to_string().contains(&format!("process group {pgid}")),
            "{err}"
        );
    }

    fn alive_not_zombie(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim().to_string()))
            .is_some_and(|rest| !rest.starts_with('Z'))
    }
}
