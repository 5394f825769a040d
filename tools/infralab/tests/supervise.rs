//! `infralab supervise`, the lab's stand-in for systemd's `Restart=always` and socket
//! units, run as the lab runs it: a daemon SIGKILLed comes back (and the status file says
//! which pid is the daemon now), a connection made while it is dead waits in the held
//! socket's backlog and is answered by its successor, reload signals are forwarded, and
//! stopping sends the daemon its own stop signal and restarts nothing.
//!
//! The daemon is a few lines of Python (Debian's python3, scripts/install.sh) that
//! answers every connection on descriptor 3 with its pid and logs the signals it gets.
//! Everything listens on 127.0.0.1; no root, no namespace.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rampart_lab::supervise::{read_status, Status};

const DAEMON: &str = r#"
import os, signal, socket, sys, time
log = sys.argv[1]
def note(text):
    with open(log, "a") as f:
        f.write(text + "\n")
signal.signal(signal.SIGHUP, lambda *_: note("HUP"))
def quit(*_):
    note("QUIT")
    sys.exit(0)
signal.signal(signal.SIGQUIT, quit)
note("start " + os.environ.get("LISTEN_FDS", "-"))
if os.environ.get("LISTEN_FDS") == "1":
    server = socket.socket(fileno=3)
    while True:
        conn, _ = server.accept()
        conn.sendall(("%d\n" % os.getpid()).encode())
        conn.close()
while True:
    time.sleep(1)
"#;

/// A supervisor of the test daemon; SIGKILLed with its daemon on drop.
struct Supervised {
    supervisor: Child,
    status: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Supervised {
    fn start(stop_signal: &str, listen: Option<u16>) -> Supervised {
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("status.json");
        let log = dir.path().join("daemon.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_infralab"));
        command
            .args(["supervise", "--name", "test", "--stop-signal", stop_signal])
            .arg("--status")
            .arg(&status);
        if let Some(port) = listen {
            command.arg(format!("--listen=127.0.0.1:{port}"));
        }
        let supervisor = command
            .args(["--", "python3", "-c", DAEMON])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let supervised = Supervised {
            supervisor,
            status,
            log,
            _dir: dir,
        };
        supervised
            .wait_status(|s| s.starts == 1 && s.live_pid().is_some() && supervised.logged("start"));
        supervised
    }

    fn status(&self) -> Option<Status> {
        read_status(&self.status).ok()
    }

    fn logged(&self, line: &str) -> bool {
        self.count(line) > 0
    }

    /// How many log lines start with `line`.
    fn count(&self, line: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(line))
            .count()
    }

    fn wait_status(&self, done: impl Fn(&Status) -> bool) -> Status {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.status().filter(|s| done(s)) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "supervisor status after 10 s: {:?}; daemon log: {:?}",
                self.status(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal_daemon(&self, signal: &str) -> u32 {
        let pid = self.status().and_then(|s| s.live_pid()).expect("a daemon");
        signal_pid(pid, signal);
        pid
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if let Some(pid) = self.status().and_then(|s| s.live_pid()) {
            signal_pid(pid, "KILL");
        }
        let _ = self.supervisor.kill();
        let _ = self.supervisor.wait();
    }
}

fn signal_pid(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Connects and reads the answering daemon's pid.
fn answering_pid(port: u16) -> u32 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the held socket accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("the daemon answered {text:?}"))
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
        || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
}

#[test]
fn a_killed_daemon_comes_back_and_a_stopped_one_does_not() {
    let mut supervised = Supervised::start("QUIT", None);
    let first = supervised.signal_daemon("KILL");
    // Restarted, and running its own code (its signal handlers are in place).
    let status = supervised
        .wait_status(|s| s.starts == 2 && s.live_pid().is_some() && supervised.count("start") == 2);
    assert_ne!(status.pid, Some(first));
    assert_eq!(
        status
            .last_exit
            .as_deref()
            .map(|e| e.starts_with("signal 9 (SIGKILL) after")),
        Some(true),
        "{status:?}"
    );
    // Without LISTEN_FDS: the daemon got no socket.
    assert!(supervised.logged("start -"));

    // Reload signals reach the daemon, not the supervisor's own handling.
    signal_pid(supervised.supervisor.id(), "HUP");
    supervised.wait_status(|_| supervised.logged("HUP"));

    // Stopping: the daemon gets its own stop signal, exits, and stays stopped.
    let daemon = status.pid.unwrap();
    signal_pid(supervised.supervisor.id(), "TERM");
    let exit = wait_exit(&mut supervised.supervisor, Duration::from_secs(5));
    assert!(exit.success(), "{exit}");
    assert!(supervised.logged("QUIT"));
    assert!(gone(daemon), "the daemon {daemon} outlived its supervisor");
    let last = supervised.status().unwrap();
    assert_eq!((last.pid, last.starts), (None, 2), "{last:?}");
}

#[test]
fn the_held_socket_queues_connections_while_the_daemon_restarts() {
    let port = free_port();
    let supervised = Supervised::start("TERM", Some(port));
    assert!(supervised.logged("start 1"));
    let first = answering_pid(port);
    assert_eq!(supervised.status().unwrap().pid, Some(first));

    // SIGKILL; once it is gone (before that it may still accept, and die holding the
    // connection), connect at once: nothing is refused, the successor answers.
    signal_pid(first, "KILL");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(first) {
        assert!(Instant::now() < deadline, "pid {first} survived SIGKILL");
        std::thread::sleep(Duration::from_millis(1));
    }
    let second = answering_pid(port);
    assert_ne!(second, first);
    let status = supervised.wait_status(|s| s.starts == 2);
    assert_eq!(status.pid, Some(second));
}
