//! Test fabric: network namespaces joined by veth, nftables rules, and processes, each
//! removed by a Drop guard so a failing assertion leaves nothing behind.
//!
//! Traffic stays inside namespaces this test creates (or on loopback); names start with
//! `rch<tag><pid>` so parallel tests and a crashed earlier run cannot collide.

#![allow(dead_code)]

pub mod loopback;
pub mod tls;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// A network namespace, deleted (with every process still inside) on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("rch{tag}{}", std::process::id());
        // A leftover from a crashed run with the same pid would make `add` fail.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// `ip netns exec <ns> program args…`
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Loads an nftables ruleset into this namespace.
    pub fn nft(&self, ruleset: &str) {
        let dir = tempdir("nft");
        let file = dir.path.join("rules.nft");
        std::fs::write(&file, ruleset).unwrap();
        run(self.command("nft").arg("-f").arg(&file));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill what still runs inside, then remove the namespace itself.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Joins two namespaces with a veth pair; `a_addrs` and `b_addrs` are `addr/prefix`.
pub fn link(a: &Netns, a_addrs: &[String], b: &Netns, b_addrs: &[String]) {
    ip(&[
        "link", "add", "veth0", "netns", &a.name, "type", "veth", "peer", "name", "veth0", "netns",
        &b.name,
    ]);
    for (ns, addrs) in [(a, a_addrs), (b, b_addrs)] {
        for addr in addrs {
            ip(&["-n", &ns.name, "addr", "add", addr, "dev", "veth0"]);
        }
        ip(&["-n", &ns.name, "link", "set", "veth0", "up"]);
    }
}

/// A child process, killed on drop. Its stdin stays open while it runs: `openssl
/// s_server` shuts down when its stdin reaches end of file.
pub struct Proc {
    pub child: Child,
    _stdin: Option<std::process::ChildStdin>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Spawns `cmd` and waits until a line of its stdout or stderr contains `ready`.
    pub fn spawn_until(mut cmd: Command, ready: &str, timeout: Duration) -> Proc {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let (tx, rx) = mpsc::channel::<String>();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let stdin = child.stdin.take();
        let proc = Proc {
            child,
            _stdin: stdin,
        };
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(ready) => return proc,
                Ok(line) => seen.push(line),
                Err(_) => {
                    panic!("{cmd:?} did not print {ready:?} in {timeout:?}; it said: {seen:#?}")
                }
            }
        }
    }
}

impl Proc {
    /// Spawns `cmd` and waits until `addr` accepts TCP connections.
    pub fn spawn_until_port(mut cmd: Command, addr: &str) -> Proc {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdin = child.stdin.take();
        let mut proc = Proc {
            child,
            _stdin: stdin,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = proc.child.try_wait() {
                panic!("{cmd:?} exited with {status} before listening on {addr}");
            }
            assert!(
                Instant::now() < deadline,
                "{cmd:?} did not listen on {addr} in 10s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        proc
    }
}

/// A plain TCP listener (`openssl s_server -nocert` accepts TCP; no TLS is needed to
/// answer a SYN) in `ns` on `addr:port`.
pub fn listener(ns: &Netns, addr: &str, port: u16) -> Proc {
    let mut cmd = ns.command("openssl");
    cmd.args(["s_server", "-nocert", "-accept", &format!("{addr}:{port}")]);
    Proc::spawn_until(cmd, "ACCEPT", Duration::from_secs(5))
}

/// A temporary directory, removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

pub fn tempdir(tag: &str) -> TempDir {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "reach-test-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).unwrap();
    TempDir { path }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The `reach` binary under test.
pub fn reach() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_reach"))
}

/// The shipped topology.
pub fn topology_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hosts/topology.json")
}

/// Runs a command and returns (exit code, stdout, stderr) without asserting success.
pub fn outcome(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// (probe, status, observed) of every check of a JSON report, for readable assertions.
pub fn probe_rows(report: &serde_json::Value) -> Vec<(String, String, String)> {
    let field = |c: &serde_json::Value, k: &str| c[k].as_str().unwrap_or_default().to_string();
    report["checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| (field(c, "probe"), field(c, "status"), field(c, "observed")))
                .collect()
        })
        .unwrap_or_default()
}
