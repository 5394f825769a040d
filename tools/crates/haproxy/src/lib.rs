//! # rampart-haproxy
//!
//! HAProxy's runtime API over its admin socket (`stats socket … level admin`, rendered by
//! lib/render/haproxy.nix at `<runDir>/haproxy/stats.sock`), and the planned removal of a
//! backend server built on it:
//!
//! 1. [`drain`]: `set server <backend>/<server> state drain` (no new requests reach it;
//!    the ones in flight finish; servers that `track` it, like rampart's `web_writes`,
//!    inherit the drain), then wait until HAProxy counts no session and no queued request
//!    on it in any backend. The server can then be stopped without failing a request.
//! 2. (the operator or the lab restarts the server's daemons)
//! 3. [`ready`]: wait until HAProxy's own health check passes on it again, then
//!    `set server … state ready`: traffic returns only to a server that answers.
//!
//! `rampart-lb drain|ready|status` (tools/rampart-lb) runs these on the load balancer of a
//! NixOS deployment; the lab's rolling-restart scenario and `infralab drain|ready` call
//! the same functions. Every answer HAProxy gives that is not what a command expects is
//! an error carrying HAProxy's own words.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The backend lib/render/haproxy.nix puts the web hosts in, one server per host named
/// after it.
pub const WEB_BACKEND: &str = "web";

/// Why a runtime-API operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket cannot be reached.
    #[error("cannot talk to HAProxy's admin socket {}: {source}; is HAProxy running, and is this the `stats socket` of its configuration?", path.display())]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    /// HAProxy answered a command with something else than success.
    #[error("HAProxy refused `{command}`: {answer}")]
    Refused { command: String, answer: String },
    /// `show stat` did not look like HAProxy's CSV.
    #[error("HAProxy's `show stat` answer is not its CSV ({0})")]
    NotStats(String),
    /// No such server in the backend.
    #[error("HAProxy has no server {backend}/{server} (its servers: {known})")]
    NoSuchServer {
        backend: String,
        server: String,
        known: String,
    },
    /// Drained, but sessions remain after the wait.
    #[error("{backend}/{server} still has {sessions} sessions and {queued} queued requests after {:.1} s of draining; wait longer (--wait) or look at what holds them", waited.as_secs_f64())]
    StillBusy {
        backend: String,
        server: String,
        sessions: u64,
        queued: u64,
        waited: Duration,
    },
    /// The health check does not pass.
    #[error("{backend}/{server} is {status} (check {check}) after {:.1} s; it stays drained: fix it and run ready again", waited.as_secs_f64())]
    NotHealthy {
        backend: String,
        server: String,
        status: String,
        check: String,
        waited: Duration,
    },
}

/// Shorthand for results of runtime-API operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One server of a backend, as `show stat` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "type", rename = "server")]
pub struct Server {
    pub backend: String,
    pub server: String,
    /// `UP`, `DOWN`, `DRAIN`, `MAINT`, `UP 1/2` (going down), `DOWN 1/2` (going up), …
    pub status: String,
    /// The last health check: `L7OK`, `L4CON`, `L6RSP`, … (empty without checks).
    pub check: String,
    /// Sessions on the server now (`scur`).
    pub sessions: u64,
    /// Requests queued for it (`qcur`).
    pub queued: u64,
    /// Sessions it has served since HAProxy started (`stot`).
    pub served: u64,
}

impl Server {
    /// Its last health check passed.
    pub fn check_passes(&self) -> bool {
        self.check.starts_with('L') && self.check.ends_with("OK")
    }

    /// HAProxy considers it up by its checks (it may be draining).
    pub fn up_by_checks(&self) -> bool {
        self.status == "UP" || self.status.starts_with("UP ") || self.status == "DRAIN"
    }
}

/// The administrative state `set server … state` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminState {
    /// Takes traffic again.
    Ready,
    /// No new traffic; what is in flight finishes.
    Drain,
    /// No traffic and no health checks.
    Maint,
}

impl AdminState {
    fn word(self) -> &'static str {
        match self {
            AdminState::Ready => "ready",
            AdminState::Drain => "drain",
            AdminState::Maint => "maint",
        }
    }
}

/// HAProxy's admin socket.
#[derive(Clone, Debug)]
pub struct AdminSocket {
    path: PathBuf,
    timeout: Duration,
}

impl AdminSocket {
    /// The socket at `path`; each command waits up to 5 s for HAProxy's answer.
    pub fn new(path: impl Into<PathBuf>) -> AdminSocket {
        AdminSocket {
            path: path.into(),
            timeout: Duration::from_secs(5),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one command and returns HAProxy's whole answer (one connection per command:
    /// HAProxy answers and closes).
    pub fn command(&self, command: &str) -> Result<String> {
        let failed = |source| Error::Socket {
            path: self.path.clone(),
            source,
        };
        let mut stream = UnixStream::connect(&self.path).map_err(failed)?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .map_err(failed)?;
        stream
            .write_all(format!("{command}\n").as_bytes())
            .map_err(failed)?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).map_err(failed)?;
        Ok(answer)
    }

    /// Every backend server (`show stat`, without the FRONTEND and BACKEND rows).
    pub fn servers(&self) -> Result<Vec<Server>> {
        parse_stat(&self.command("show stat")?)
    }

    /// One server of `backend`.
    pub fn server(&self, backend: &str, server: &str) -> Result<Server> {
        let all = self.servers()?;
        let known = all
            .iter()
            .filter(|s| s.backend == backend)
            .map(|s| s.server.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        all.iter()
            .find(|s| s.backend == backend && s.server == server)
            .cloned()
            .ok_or_else(|| Error::NoSuchServer {
                backend: backend.into(),
                server: server.into(),
                known: if known.is_empty() {
                    "none in that backend".into()
                } else {
                    known
                },
            })
    }

    /// `set server <backend>/<server> state <state>`: HAProxy answers nothing on success.
    pub fn set_state(&self, backend: &str, server: &str, state: AdminState) -> Result<()> {
        // Refused early with the list of servers, rather than HAProxy's "No such server.".
        self.server(backend, server)?;
        let command = format!("set server {backend}/{server} state {}", state.word());
        let answer = self.command(&command)?;
        if answer.trim().is_empty() {
            Ok(())
        } else {
            Err(Error::Refused {
                command,
                answer: answer.trim().to_string(),
            })
        }
    }
}

/// The server rows of `show stat`'s CSV.
pub fn parse_stat(csv: &str) -> Result<Vec<Server>> {
    let mut lines = csv.lines();
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or_else(|| Error::NotStats("no \"# pxname,svname,…\" header".into()))?;
    let columns: Vec<&str> = header.split(',').collect();
    let column = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| Error::NotStats(format!("no column {name:?}")))
    };
    let [px, sv, status, check, scur, qcur, stot] = [
        "pxname",
        "svname",
        "status",
        "check_status",
        "scur",
        "qcur",
        "stot",
    ]
    .map(column);
    let (px, sv, status, check, scur, qcur, stot) =
        (px?, sv?, status?, check?, scur?, qcur?, stot?);
    let last = [px, sv, status, check, scur, qcur, stot]
        .into_iter()
        .max()
        .unwrap_or(0);
    let number = |fields: &[&str], at: usize| fields[at].parse::<u64>().unwrap_or(0);
    Ok(lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > last && f[sv] != "FRONTEND" && f[sv] != "BACKEND")
        .map(|f| Server {
            backend: f[px].to_string(),
            server: f[sv].to_string(),
            status: f[status].to_string(),
            // A check in progress is marked with a leading `* `.
            check: f[check].trim_start_matches('*').trim().to_string(),
            sessions: number(&f, scur),
            queued: number(&f, qcur),
            served: number(&f, stot),
        })
        .collect())
}

/// How often the waits below ask HAProxy.
const POLL: Duration = Duration::from_millis(100);

/// What [`drain`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "type", rename = "drained")]
pub struct Drained {
    pub backend: String,
    pub server: String,
    /// Sessions on the server when the drain began.
    pub sessions_at_start: u64,
    /// How long the sessions took to end, in milliseconds.
    pub waited_ms: u64,
}

/// Sessions and queued requests of `server` in every backend: servers that `track` it
/// (rampart's `web_writes`) inherit its drain, and their sessions count too.
fn load_of(socket: &AdminSocket, backend: &str, server: &str) -> Result<(u64, u64)> {
    socket.server(backend, server)?;
    Ok(socket
        .servers()?
        .iter()
        .filter(|s| s.server == server)
        .fold((0, 0), |(sessions, queued), s| {
            (sessions + s.sessions, queued + s.queued)
        }))
}

/// Puts `backend/server` in drain (servers tracking it inherit it) and waits (up to
/// `limit`) until no session and no queued request remain on it in any backend. On
/// timeout the server stays drained.
pub fn drain(
    socket: &AdminSocket,
    backend: &str,
    server: &str,
    limit: Duration,
) -> Result<Drained> {
    let start = Instant::now();
    let (before, _) = load_of(socket, backend, server)?;
    socket.set_state(backend, server, AdminState::Drain)?;
    loop {
        let (sessions, queued) = load_of(socket, backend, server)?;
        if sessions == 0 && queued == 0 {
            return Ok(Drained {
                backend: backend.into(),
                server: server.into(),
                sessions_at_start: before,
                waited_ms: start.elapsed().as_millis() as u64,
            });
        }
        if start.elapsed() >= limit {
            return Err(Error::StillBusy {
                backend: backend.into(),
                server: server.into(),
                sessions,
                queued,
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(POLL);
    }
}

/// What [`ready`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "type", rename = "ready")]
pub struct Readied {
    pub backend: String,
    pub server: String,
    /// The check that let it back in (`L7OK`).
    pub check: String,
    /// How long until the check passed, in milliseconds.
    pub waited_ms: u64,
}

/// Waits (up to `limit`) until HAProxy's health check passes on `backend/server` and
/// HAProxy counts it up, then sets it ready. On timeout it stays as it is (drained).
pub fn ready(
    socket: &AdminSocket,
    backend: &str,
    server: &str,
    limit: Duration,
) -> Result<Readied> {
    let start = Instant::now();
    loop {
        let now = socket.server(backend, server)?;
        if now.check_passes() && now.up_by_checks() {
            socket.set_state(backend, server, AdminState::Ready)?;
            return Ok(Readied {
                backend: backend.into(),
                server: server.into(),
                check: now.check,
                waited_ms: start.elapsed().as_millis() as u64,
            });
        }
        if start.elapsed() >= limit {
            return Err(Error::NotHealthy {
                backend: backend.into(),
                server: server.into(),
                status: now.status,
                check: if now.check.is_empty() {
                    "none".into()
                } else {
                    now.check
                },
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    const STAT: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,status,check_status\n\
        https,FRONTEND,,,3,9,4096,100,OPEN,\n\
        web,web1,0,0,2,5,,40,UP,L7OK\n\
        web,web2,1,1,0,4,,41,DOWN,* L4CON\n\
        web,BACKEND,0,0,2,7,,81,UP,\n";

    #[test]
    fn show_stat_gives_every_server_with_its_sessions() {
        let servers = parse_stat(STAT).unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(
            servers[0],
            Server {
                backend: "web".into(),
                server: "web1".into(),
                status: "UP".into(),
                check: "L7OK".into(),
                sessions: 2,
                queued: 0,
                served: 40,
            }
        );
        assert_eq!(servers[1].check, "L4CON");
        assert!(!servers[1].check_passes() && !servers[1].up_by_checks());
        assert!(parse_stat("garbage").is_err());
        assert!(parse_stat("# pxname,svname\n").is_err());
    }

    /// A stand-in for HAProxy's socket: answers each connection from `answer(command)`
    /// and records the commands.
    fn fake(
        dir: &Path,
        answer: impl Fn(&str, usize) -> String + Send + 'static,
    ) -> (AdminSocket, std::sync::mpsc::Receiver<String>) {
        let path = dir.join("stats.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                let mut conn = conn.unwrap();
                let mut line = Vec::new();
                let mut byte = [0u8];
                while conn.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
                    line.push(byte[0]);
                }
                let command = String::from_utf8_lossy(&line).into_owned();
                let _ = conn.write_all(answer(&command, n).as_bytes());
                if tx.send(command).is_err() {
                    return;
                }
            }
        });
        (AdminSocket::new(path), rx)
    }

    fn stat(web1_status: &str, web1_check: &str, web1_sessions: u64) -> String {
        format!(
            "# pxname,svname,qcur,scur,stot,status,check_status\nweb,web1,0,{web1_sessions},9,{web1_status},{web1_check}\nweb,web2,0,1,9,UP,L7OK\n"
        )
    }

    #[test]
    fn drain_waits_for_the_sessions_to_end() {
        let dir = tempfile::tempdir().unwrap();
        // Two sessions at first, then one, then none (each look is two `show stat`).
        let (socket, commands) = fake(dir.path(), |command, n| match command {
            "show stat" => stat("DRAIN", "L7OK", [2, 2, 2, 2, 2, 1, 1, 0][n.min(7)]),
            _ => String::new(),
        });
        let drained = drain(&socket, "web", "web1", Duration::from_secs(10)).unwrap();
        assert_eq!(drained.sessions_at_start, 2);
        let sent: Vec<String> = commands.try_iter().collect();
        assert!(
            sent.contains(&"set server web/web1 state drain".to_string()),
            "{sent:?}"
        );
    }

    #[test]
    fn ready_only_after_the_check_passes_and_errors_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let (socket, commands) = fake(dir.path(), |command, n| match command {
            "show stat" if n < 3 => stat("DOWN", "L4CON", 0),
            "show stat" => stat("DRAIN", "L7OK", 0),
            _ => String::new(),
        });
        let readied = ready(&socket, "web", "web1", Duration::from_secs(10)).unwrap();
        assert_eq!(readied.check, "L7OK");
        let sent: Vec<String> = commands.try_iter().collect();
        assert_eq!(sent.last().unwrap(), "set server web/web1 state ready");
        assert_eq!(
            sent.iter().filter(|c| c.starts_with("set ")).count(),
            1,
            "{sent:?}"
        );

        let never = tempfile::tempdir().unwrap();
        let (socket, _commands) = fake(never.path(), |_, _| stat("DOWN", "L4CON", 0));
        let error = ready(&socket, "web", "web1", Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("web/web1 is DOWN (check L4CON)"),
            "{error}"
        );
        let error = drain(&socket, "web", "web9", Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "HAProxy has no server web/web9 (its servers: web1, web2)"
        );

        let refusing = tempfile::tempdir().unwrap();
        let (socket, _commands) = fake(refusing.path(), |command, _| match command {
            "show stat" => stat("UP", "L7OK", 0),
            _ => "Permission denied\n".into(),
        });
        let error = socket
            .set_state("web", "web1", AdminState::Maint)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "HAProxy refused `set server web/web1 state maint`: Permission denied"
        );
        let missing = AdminSocket::new(refusing.path().join("nothing.sock"));
        assert!(missing
            .servers()
            .unwrap_err()
            .to_string()
            .starts_with("cannot talk to HAProxy's admin socket"));
    }
}
