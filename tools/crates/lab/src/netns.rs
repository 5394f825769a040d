//! Entering the lab's network namespaces from Rust.
//!
//! Network namespaces are per thread: a fresh thread joins the namespace with `setns(2)`,
//! does its work (a TCP probe, an HTTP request) and ends, so the caller never leaves the
//! machine's own namespace.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;

use super::{io, LabError, Result};

/// Where `ip netns add` puts named namespaces.
const NETNS_DIR: &str = "/run/netns";

/// The names of all named network namespaces on the machine, sorted.
pub fn list() -> Result<Vec<String>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(NETNS_DIR)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(NETNS_DIR))?;
        out.push(entry.file_name().to_string_lossy().into_owned());
    }
    out.sort();
    Ok(out)
}

/// Does the named namespace exist?
pub fn exists(name: &str) -> bool {
    Path::new(NETNS_DIR).join(name).exists()
}

/// An open handle on a named namespace, for threads to enter ([`Namespace::enter`]).
#[derive(Debug)]
pub struct Namespace {
    name: String,
    file: File,
}

impl Namespace {
    /// Opens namespace `name`; an error names it when it does not exist.
    pub fn open(name: &str) -> Result<Namespace> {
        let path = Path::new(NETNS_DIR).join(name);
        let file = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => LabError::NoNamespace {
                name: name.to_string(),
            },
            _ => io(&path)(e),
        })?;
        Ok(Namespace {
            name: name.to_string(),
            file,
        })
    }

    /// Moves the calling thread into the namespace: call it on a thread of its own.
    pub fn enter(&self) -> Result<()> {
        nix::sched::setns(&self.file, CloneFlags::CLONE_NEWNET).map_err(|source| LabError::Enter {
            name: self.name.clone(),
            source,
        })
    }
}

/// Runs `work` on a new thread inside namespace `name` and returns its result.
pub fn run_in<T, F>(name: &str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let namespace = Namespace::open(name)?;
    std::thread::spawn(move || {
        namespace.enter()?;
        Ok(work())
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Can a TCP connection to `address` be opened from inside namespace `name`?
pub fn can_connect(name: &str, address: SocketAddr, timeout: Duration) -> Result<bool> {
    run_in(name, move || {
        TcpStream::connect_timeout(&address, timeout).is_ok()
    })
}

/// Waits until `address` accepts TCP connections from inside `name`, or `limit` passes.
/// `alive` is asked between attempts and stops the wait early when it returns an error
/// (the daemon died). Returns how long it took.
pub fn wait_for_port(
    name: &str,
    address: SocketAddr,
    limit: Duration,
    mut alive: impl FnMut() -> Result<()>,
) -> Result<Option<Duration>> {
    let start = Instant::now();
    let path = Path::new(NETNS_DIR).join(name);
    let file = File::open(&path).map_err(|_| LabError::NoNamespace {
        name: name.to_string(),
    })?;
    let owned = name.to_string();
    // One thread stays in the namespace for the whole wait; the liveness check runs here.
    let (tx, rx) = std::sync::mpsc::channel::<bool>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let prober = std::thread::spawn(move || -> Result<()> {
        nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).map_err(|source| LabError::Enter {
            name: owned,
            source,
        })?;
        loop {
            let ok = TcpStream::connect_timeout(&address, Duration::from_millis(250)).is_ok();
            if tx.send(ok).is_err() || ok {
                return Ok(());
            }
            if done_rx.recv_timeout(Duration::from_millis(50)).is_ok() {
                return Ok(());
            }
        }
    });
    let outcome = loop {
        match rx.recv_timeout(Duration::from_millis(300)) {
            Ok(true) => break Ok(Some(start.elapsed())),
            Ok(false) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break Ok(None),
        }
        if let Err(e) = alive() {
            break Err(e);
        }
        if start.elapsed() >= limit {
            break Ok(None);
        }
    };
    let _ = done_tx.send(());
    drop(rx);
    match prober.join() {
        Ok(Err(e)) => Err(e),
        _ => outcome,
    }
}
