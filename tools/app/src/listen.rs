//! Where the application listens: the socket its supervisor hands over (socket activation,
//! `LISTEN_FDS`: systemd's `rampart-app.socket`, the lab's `infralab supervise --listen`),
//! else one it binds to `--listen` itself.
//!
//! With socket activation the listening socket belongs to the supervisor and outlives the
//! process: while the application restarts (a crash, a deployment), new connections wait
//! in the kernel's backlog and the next process accepts them, so nginx never meets a
//! refused connection and no request fails for the restart. On SIGTERM the application
//! stops accepting, finishes the requests in flight (axum's graceful shutdown) and exits;
//! whatever arrives meanwhile waits for its successor.
//!
//! The protocol is systemd's (`sd_listen_fds(3)`): `LISTEN_FDS=1`, the socket at file
//! descriptor 3, and `LISTEN_PID` naming this process when set (the `listenfd` crate
//! also accepts it unset, which is how a supervisor that cannot know the pid before
//! `exec` passes it).

use std::io;
use std::net::{SocketAddr, TcpListener};

/// Where the listening socket came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Handed over by the supervisor (socket activation).
    Inherited,
    /// Bound by the application to `--listen`.
    Bound,
}

impl Origin {
    /// For the start-up line: `socket from the supervisor` or `bound`.
    pub fn describe(self) -> &'static str {
        match self {
            Origin::Inherited => "socket from the supervisor (LISTEN_FDS)",
            Origin::Bound => "bound by rampart-app",
        }
    }
}

/// Why there is no listening socket.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// LISTEN_FDS was set but descriptor 3 is not a TCP listener.
    #[error("the socket handed over in LISTEN_FDS is not a listening TCP socket ({0}); check the socket unit's ListenStream=")]
    NotTcp(io::Error),
    /// The handed-over socket listens somewhere else than `--listen` says.
    #[error("the socket handed over in LISTEN_FDS listens on {inherited}, but --listen is {expected}; make the socket unit and --listen agree (nginx proxies to --listen)")]
    Elsewhere {
        /// Where the inherited socket listens.
        inherited: SocketAddr,
        /// `--listen`.
        expected: SocketAddr,
    },
    /// Binding `--listen` failed.
    #[error("cannot listen on --listen {address}: {source}")]
    Bind {
        /// `--listen`.
        address: SocketAddr,
        /// What bind gave.
        source: io::Error,
    },
}

/// The listening socket: the inherited one when the environment hands one over (it must
/// listen on `listen`), else a new one bound to `listen`. Call it before any thread
/// starts: it removes `LISTEN_FDS` and `LISTEN_PID` from the environment, so that
/// nothing the application starts inherits them.
pub fn listener(listen: SocketAddr) -> Result<(TcpListener, Origin), ListenError> {
    let mut handed = listenfd::ListenFd::from_env();
    if let Some(inherited) = handed.take_tcp_listener(0).map_err(ListenError::NotTcp)? {
        let address = inherited.local_addr().map_err(ListenError::NotTcp)?;
        if address != listen {
            return Err(ListenError::Elsewhere {
                inherited: address,
                expected: listen,
            });
        }
        return Ok((inherited, Origin::Inherited));
    }
    TcpListener::bind(listen)
        .map(|bound| (bound, Origin::Bound))
        .map_err(|source| ListenError::Bind {
            address: listen,
            source,
        })
}
