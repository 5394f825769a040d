//! The lab's supervisor: what systemd's `Restart=always` (and, for the application, its
//! socket unit) does on NixOS, for a daemon the lab runs without systemd.
//!
//! `infralab supervise` runs inside the daemon's namespace, in place of the daemon, and is
//! what the lab records (`lab.json`), so `infralab down` and [`crate::Lab::stop`] end it
//! like any daemon. It starts the daemon as its child and
//!
//! - restarts it whenever it exits, after a back-off that starts at
//!   [`FIRST_DELAY`] and doubles up to [`MAX_DELAY`] while the daemon keeps dying within
//!   [`STABLE_AFTER`] of its start (systemd: `RestartSec=`, `RestartSteps=`,
//!   `RestartMaxDelaySec=`);
//! - forwards SIGHUP, SIGUSR1 and SIGUSR2 (nginx reloads on SIGHUP);
//! - on SIGTERM or SIGINT sends the daemon its own stop signal (SIGQUIT makes nginx finish
//!   its requests; the application drains on SIGTERM), waits up to the stop timeout, then
//!   SIGKILLs it, and exits without restarting;
//! - with `--listen`, holds the daemon's listening TCP socket itself and hands it over as
//!   file descriptor 3 with `LISTEN_FDS=1` (systemd's socket activation): while the
//!   daemon restarts, connections wait in the socket's backlog instead of being refused.
//!
//! Its status file (JSON, [`Status`], rewritten after every change) tells the scenarios
//! which pid is the daemon and how often it was started:
//!
//! ```json
//! { "type": "supervised", "name": "app", "supervisor": 4242, "pid": 4250,
//!   "startTime": 123456, "starts": 2, "lastExit": "signal 9 (SIGKILL) after 3.2 s" }
//! ```

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use signal_hook::iterator::Signals;

pub use crate::process::Supervision;
use crate::process::{start_time, Spec};
use crate::render::HostDirs;
use crate::{io, LabError, Result};

/// The first restart waits this long (systemd's `RestartSec=`).
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest wait between restarts of a daemon that keeps dying.
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// A daemon that ran this long before exiting is restarted after [`FIRST_DELAY`] again.
pub const STABLE_AFTER: Duration = Duration::from_secs(10);
/// How long a stopping daemon may take before SIGKILL: under the 5 s [`crate::process`]
/// gives the supervisor itself, so the supervisor always outlives its daemon.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(4);

/// The file descriptor a socket-activated daemon finds its socket at (`SD_LISTEN_FDS_START`).
const LISTEN_FD: i32 = 3;

/// What the supervisor runs, as `infralab supervise` parses it.
#[derive(Clone, Debug)]
pub struct Config {
    pub name: String,
    pub status: PathBuf,
    pub stop_signal: Signal,
    pub listen: Option<SocketAddr>,
    pub program: String,
    pub args: Vec<String>,
}

/// The supervisor's status file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type", rename = "supervised")]
pub struct Status {
    pub name: String,
    /// The supervisor's own pid.
    pub supervisor: u32,
    /// The daemon's pid, while it runs.
    pub pid: Option<u32>,
    /// Its start time in clock ticks since boot (`/proc/<pid>/stat`), against pid reuse.
    pub start_time: Option<u64>,
    /// How many times the daemon was started (1 before any restart).
    pub starts: u32,
    /// What stops it gracefully (`SIGQUIT`, `SIGTERM`): sent to the daemon itself, it
    /// restarts it, as `systemctl restart` does ([`restart`]).
    pub stop_signal: String,
    /// How the daemon last ended, when it did.
    pub last_exit: Option<String>,
}

impl Status {
    /// The daemon's pid if it is still the process the supervisor started.
    pub fn live_pid(&self) -> Option<u32> {
        let (pid, started) = (self.pid?, self.start_time?);
        (start_time(pid) == Some(started)).then_some(pid)
    }
}

/// Where the supervisor of `name` writes its status: `<run>/supervise/<name>.json`.
pub fn status_path(dirs: &HostDirs, name: &str) -> PathBuf {
    dirs.run.join("supervise").join(format!("{name}.json"))
}

/// Reads a status file.
pub fn read_status(path: &Path) -> Result<Status> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        LabError::Invalid(format!(
            "{} is not a supervisor status ({e}); is `infralab supervise` running?",
            path.display()
        ))
    })
}

/// How [`restart`] went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restarted {
    pub old_pid: u32,
    pub new_pid: u32,
    /// From the stop signal to the new process running.
    pub took: Duration,
}

/// Restarts a supervised daemon the way `systemctl restart` does: its graceful stop
/// signal to the daemon itself, and the supervisor starts it again at once (it ran long
/// enough not to be backed off; a held socket stays open meanwhile). Returns when the new
/// process runs, or an error after `limit`.
pub fn restart(dirs: &HostDirs, name: &str, limit: Duration) -> Result<Restarted> {
    let path = status_path(dirs, name);
    let before = read_status(&path)?;
    let old_pid = before.live_pid().ok_or_else(|| {
        LabError::Invalid(format!(
            "{name} is not running under its supervisor (status {}: {:?})",
            path.display(),
            before.last_exit
        ))
    })?;
    let signal = parse_signal(&before.stop_signal).map_err(LabError::Invalid)?;
    let start = Instant::now();
    send(old_pid, signal);
    let new_pid = wait_started(dirs, name, before.starts, limit)
        .map_err(|e| LabError::Invalid(format!("after {signal}: {e}")))?;
    Ok(Restarted {
        old_pid,
        new_pid,
        took: start.elapsed(),
    })
}

/// Waits (up to `limit`) until the supervisor of `name` has started it more than
/// `starts` times and the new process runs; returns its pid.
pub fn wait_started(dirs: &HostDirs, name: &str, starts: u32, limit: Duration) -> Result<u32> {
    let path = status_path(dirs, name);
    let start = Instant::now();
    loop {
        let now = read_status(&path)?;
        if now.starts > starts {
            if let Some(pid) = now.live_pid() {
                return Ok(pid);
            }
        }
        if start.elapsed() >= limit {
            return Err(LabError::Invalid(format!(
                "{name} was not started again within {:.0} s (status {}: {:?})",
                limit.as_secs_f64(),
                path.display(),
                now.last_exit
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The command line that runs `spec` under the supervisor `supervisor` (the infralab
/// binary): `infralab supervise --name … --status … --stop-signal … [--listen …] -- PROGRAM ARGS`.
pub fn wrap(spec: &Spec, how: &Supervision, supervisor: &Path, dirs: &HostDirs) -> Spec {
    let mut wrapped = Spec::new(&spec.name, &spec.node, &supervisor.display().to_string()).args([
        "supervise".to_string(),
        "--name".into(),
        spec.name.clone(),
        "--status".into(),
        status_path(dirs, &spec.name).display().to_string(),
        "--stop-signal".into(),
        how.stop_signal.as_str().to_string(),
    ]);
    if let Some(listen) = how.listen {
        wrapped = wrapped.args(["--listen".to_string(), listen.to_string()]);
    }
    wrapped = wrapped
        .arg("--")
        .arg(spec.program.clone())
        .args(spec.args.clone());
    wrapped.env = spec.env.clone();
    wrapped
}

/// Parses a signal name as `--stop-signal` takes it: `TERM`, `SIGQUIT`, …
pub fn parse_signal(text: &str) -> std::result::Result<Signal, String> {
    let name = if text.starts_with("SIG") {
        text.to_string()
    } else {
        format!("SIG{text}")
    };
    name.parse::<Signal>()
        .map_err(|_| format!("{text:?} is not a signal name (expected TERM, QUIT, INT, …)"))
}

/// Runs the supervisor until it is told to stop (SIGTERM or SIGINT); returns then.
pub fn run(config: &Config) -> Result<()> {
    let mut supervisor = Supervisor::new(config)?;
    supervisor.run()
}

/// How often the supervisor looks at its signals and its daemon.
const TICK: Duration = Duration::from_millis(50);

struct Supervisor<'a> {
    config: &'a Config,
    /// Caught, not blocked: a blocked mask would be inherited by the daemon, while caught
    /// signals return to their defaults in it at `exec`.
    signals: Signals,
    /// The handed-over listening socket, at descriptor 3 and inheritable.
    _socket: Option<OwnedFd>,
    status: Status,
    stopping: bool,
}

impl<'a> Supervisor<'a> {
    fn new(config: &'a Config) -> Result<Supervisor<'a>> {
        // Descriptor 3 first, before anything else can take it.
        let socket = config.listen.map(listen_at_fd3).transpose()?;
        let signals = Signals::new(
            [
                Signal::SIGTERM,
                Signal::SIGINT,
                Signal::SIGHUP,
                Signal::SIGUSR1,
                Signal::SIGUSR2,
            ]
            .map(|signal| signal as i32),
        )
        .map_err(|e| LabError::Invalid(format!("supervise: cannot catch signals: {e}")))?;
        Ok(Supervisor {
            config,
            signals,
            _socket: socket,
            status: Status {
                name: config.name.clone(),
                supervisor: std::process::id(),
                pid: None,
                start_time: None,
                starts: 0,
                stop_signal: config.stop_signal.as_str().to_string(),
                last_exit: None,
            },
            stopping: false,
        })
    }

    fn run(&mut self) -> Result<()> {
        let mut delay = FIRST_DELAY;
        while !self.stopping {
            let mut child = self.start()?;
            let started = Instant::now();
            let status = self.wait_child(&mut child)?;
            let ran = started.elapsed();
            let exit = describe(status, ran);
            self.status.pid = None;
            self.status.start_time = None;
            self.status.last_exit = Some(exit.clone());
            self.save()?;
            if self.stopping {
                eprintln!("infralab supervise: {} stopped: {exit}", self.config.name);
                break;
            }
            delay = if ran >= STABLE_AFTER {
                FIRST_DELAY
            } else {
                delay
            };
            eprintln!(
                "infralab supervise: {} exited: {exit}; restarting in {:.1} s",
                self.config.name,
                delay.as_secs_f64()
            );
            // A stop request during the back-off ends the supervisor without a restart.
            self.pause(delay)?;
            delay = (delay * 2).min(MAX_DELAY);
        }
        self.save()
    }

    fn start(&mut self) -> Result<Child> {
        let mut command = Command::new(&self.config.program);
        command.args(&self.config.args);
        if self.config.listen.is_some() {
            command.env("LISTEN_FDS", "1");
        }
        let child = command.spawn().map_err(|source| LabError::Spawn {
            program: self.config.program.clone(),
            source,
        })?;
        self.status.starts += 1;
        self.status.pid = Some(child.id());
        self.status.start_time = start_time(child.id());
        self.save()?;
        Ok(child)
    }

    /// Waits until the daemon exits, handling signals meanwhile.
    fn wait_child(&mut self, child: &mut Child) -> Result<ExitStatus> {
        let mut kill_at: Option<Instant> = None;
        loop {
            for signal in self.pending(TICK) {
                match signal {
                    Signal::SIGTERM | Signal::SIGINT if !self.stopping => {
                        self.stopping = true;
                        send(child.id(), self.config.stop_signal);
                        kill_at = Some(Instant::now() + STOP_TIMEOUT);
                    }
                    Signal::SIGHUP | Signal::SIGUSR1 | Signal::SIGUSR2 => send(child.id(), signal),
                    _ => {}
                }
            }
            if let Some(status) = child
                .try_wait()
                .map_err(io(format!("/proc/{}", child.id())))?
            {
                return Ok(status);
            }
            if kill_at.is_some_and(|at| Instant::now() >= at) {
                send(child.id(), Signal::SIGKILL);
                kill_at = None;
            }
        }
    }

    /// Sleeps `delay`, or less when told to stop.
    fn pause(&mut self, delay: Duration) -> Result<()> {
        let until = Instant::now() + delay;
        while !self.stopping {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            for signal in self.pending(left.min(TICK)) {
                if matches!(signal, Signal::SIGTERM | Signal::SIGINT) {
                    self.stopping = true;
                }
            }
        }
        Ok(())
    }

    /// The signals that arrived, after waiting `pause` for more.
    fn pending(&mut self, pause: Duration) -> Vec<Signal> {
        std::thread::sleep(pause);
        self.signals
            .pending()
            .filter_map(|signal| Signal::try_from(signal).ok())
            .collect()
    }

    fn save(&self) -> Result<()> {
        let path = &self.config.status;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&self.status).expect("a status always serializes");
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))
    }
}

/// Binds `address` and leaves the socket at descriptor 3 without close-on-exec, where a
/// socket-activated daemon looks for it. Descriptor 3 must be free: the supervisor holds
/// nothing else yet, so the first file it opens lands there and is replaced by the socket.
fn listen_at_fd3(address: SocketAddr) -> Result<OwnedFd> {
    let mut placeholder: OwnedFd = std::fs::File::open("/dev/null")
        .map_err(io("/dev/null"))?
        .into();
    if placeholder.as_raw_fd() != LISTEN_FD {
        return Err(LabError::Invalid(format!(
            "supervise: descriptor {LISTEN_FD} is taken (an inherited file?), so the socket for {address} cannot be handed over there"
        )));
    }
    let listener = TcpListener::bind(address)
        .map_err(|e| LabError::Invalid(format!("supervise: cannot listen on {address}: {e}")))?;
    // dup2 clears close-on-exec on the new descriptor: the daemon inherits it.
    nix::unistd::dup2(listener.as_fd(), &mut placeholder).map_err(|e| {
        LabError::Invalid(format!(
            "supervise: cannot move the socket to descriptor {LISTEN_FD}: {e}"
        ))
    })?;
    Ok(placeholder)
}

fn send(pid: u32, signal: Signal) {
    // The daemon may have exited already; its exit is collected by the caller.
    let _ = kill(Pid::from_raw(pid as i32), signal);
}

/// `exit code 1 after 2.0 s`, `signal 9 (SIGKILL) after 3.2 s`.
fn describe(status: ExitStatus, ran: Duration) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(name) => format!("signal {signal} ({name})"),
            Err(_) => format!("signal {signal}"),
        },
        (None, None) => status.to_string(),
    };
    format!("{how} after {:.1} s", ran.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateDir;

    #[test]
    fn signals_parse_with_or_without_the_prefix() {
        assert_eq!(parse_signal("QUIT"), Ok(Signal::SIGQUIT));
        assert_eq!(parse_signal("SIGTERM"), Ok(Signal::SIGTERM));
        assert!(parse_signal("NOPE").unwrap_err().contains("not a signal"));
    }

    #[test]
    fn the_wrapped_command_runs_the_daemon_after_the_separator() {
        let state = StateDir::new(Path::new("/lab")).unwrap();
        let dirs = HostDirs::new(&state, "web1");
        let spec = Spec::new("app", "web1", "/bin/app")
            .args(["--listen", "127.0.0.1:8080"])
            .env("K", "v");
        let how = Supervision {
            stop_signal: Signal::SIGTERM,
            listen: Some("127.0.0.1:8080".parse().unwrap()),
        };
        let wrapped = wrap(&spec, &how, Path::new("/bin/infralab"), &dirs);
        assert_eq!(wrapped.program, "/bin/infralab");
        assert_eq!(
            (wrapped.name.as_str(), wrapped.node.as_str()),
            ("app", "web1")
        );
        assert_eq!(
            wrapped.args.join(" "),
            "supervise --name app --status /lab/nodes/web1/run/supervise/app.json --stop-signal SIGTERM --listen 127.0.0.1:8080 -- /bin/app --listen 127.0.0.1:8080"
        );
        assert_eq!(wrapped.env, spec.env);
    }

    #[test]
    fn exits_are_described_with_code_or_signal() {
        use std::os::unix::process::ExitStatusExt;
        let second = Duration::from_millis(3200);
        assert_eq!(
            describe(ExitStatus::from_raw(9), second),
            "signal 9 (SIGKILL) after 3.2 s"
        );
        assert_eq!(
            describe(ExitStatus::from_raw(1 << 8), second),
            "exit code 1 after 3.2 s"
        );
    }
}
