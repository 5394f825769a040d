//! The failover agent (`rampart-db agent`): one per database host, a loop of ticks.
//!
//! Each tick it checks its own MariaDB over the local socket, reads everything failover
//! keeps in etcd at one revision, acts on what it sees, and publishes what it saw. What it
//! does depends on who holds the leader key (docs/failover.md "The agent"):
//!
//! - **this host** ([`lead`]): renew the lease only while MariaDB is healthy, and move the
//!   writer gate's deadline with each renewal; a new leader first applies everything it
//!   received, then becomes writable. It keeps the sync set true ([`sync`]) and carries
//!   out a planned switchover.
//! - **another host** ([`follow`]): stay read-only and replicate from it; a former leader
//!   rejoins only if its history is a prefix of the leader's, else it stays fenced and
//!   says why.
//! - **nobody**: take the key (create-if-absent, compare-and-swap on the state) if this
//!   host may: it is in the recorded sync set, or it led last and nobody is in sync, or
//!   the cluster was never initialised and it is the topology's declared primary.
//!
//! The agent never makes its host writable without holding the lease, and the kernel
//! closes the writer gate before the lease can expire ([`crate::gate`], [`crate::Timing`]).

mod follow;
mod lead;
mod metrics;
mod sync;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rampart_database::gtid::GtidPos;
use rampart_database::{Access, Cluster, DbError, HostState, Session};

use crate::gate::{Gate, Opening};
use crate::record::{self, Keys, Member, View};
use crate::store::{Store, StoreConfig};
use crate::timing::Timing;
use crate::Policy;

/// Everything the agent needs to know, fixed for its lifetime.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// This host's name in the topology.
    pub host: String,
    /// Every database host.
    pub cluster: Cluster,
    /// The local MariaDB's socket (root over `unix_socket`).
    pub socket: PathBuf,
    /// How to log in to the other database hosts (the leader, when rejoining).
    pub access: Access,
    pub replication_user: String,
    pub replication_password_file: PathBuf,
    /// This host's PKI directory as its MariaDB sees it (replication client certificate).
    pub replica_pki_dir: String,
    pub policy: Policy,
    pub timing: Timing,
    pub keys: Keys,
    pub store: StoreConfig,
    pub gate: Gate,
    /// Node exporter's textfile to write `rampart_failover_*` metrics to.
    pub metrics: Option<PathBuf>,
}

/// The agent's hold on the lead.
#[derive(Debug)]
struct Lead {
    lease: i64,
    term: u64,
    /// The leader key's mod revision: every change made as leader is conditional on it.
    key_rev: i64,
    /// When the latest successful renewal was *sent*.
    renewed: Instant,
    phase: Phase,
    sync: sync::Tracker,
    /// The binlog position last published.
    position_published: Option<GtidPos>,
    /// A switchover in progress: the writes paused at this moment.
    handing_over: Option<Instant>,
    /// When it last checked where etcd's raft leader is ([`Agent::keep_raft_leadership_away`]).
    raft_checked: Option<Instant>,
}

#[derive(Debug)]
enum Phase {
    /// Applying what it received before it takes writes.
    CatchingUp {
        need: GtidPos,
        since: Instant,
    },
    Writable,
}

/// Why the local MariaDB failed its health check.
#[derive(Debug)]
struct Unhealthy {
    /// It is gone (socket missing, connection refused), not merely slow.
    down: bool,
    message: String,
}

/// The failover agent of one host.
pub struct Agent {
    cfg: AgentConfig,
    store: Store,
    local: Option<Session>,
    member_lease: Option<i64>,
    lead: Option<Lead>,
    /// Failed health checks in a row.
    failures: u32,
    /// The gate as last set, so that a replica does not run nft on every tick.
    gate: Option<Opening>,
    /// Why this host is fenced and not replicating, when it needs a human.
    diverged: Option<(String, Instant)>,
    /// The agent stopped the replication IO thread itself (taking the lead) and restarts
    /// it when another host leads after all. Replication an operator stopped stays so.
    io_stopped: bool,
    role: &'static str,
    message: Option<String>,
    last_log: Option<String>,
    metrics_written: Option<Instant>,
}

impl Agent {
    pub fn new(cfg: AgentConfig) -> Result<Agent, crate::FailoverError> {
        cfg.cluster.host(&cfg.host)?;
        let store = Store::new(cfg.store.clone())?;
        Ok(Agent {
            cfg,
            store,
            local: None,
            member_lease: None,
            lead: None,
            failures: 0,
            gate: None,
            diverged: None,
            io_stopped: false,
            role: "starting",
            message: None,
            last_log: None,
            metrics_written: None,
        })
    }

    /// Runs until `stop` says so. The gate starts closed: a starting agent knows nothing.
    pub fn run(&mut self, stop: &dyn Fn() -> bool) -> Result<(), crate::FailoverError> {
        self.cfg.gate.install()?;
        self.gate = Some(Opening::Closed);
        self.log(format!(
            "started: policy {}, lease TTL {:?}, writer gate closes {:?} before the lease can expire; etcd {}",
            self.cfg.policy.name(),
            self.cfg.timing.ttl,
            self.cfg.timing.fence_margin,
            self.store.endpoints()
        ));
        while !stop() {
            let started = Instant::now();
            self.tick();
            let left = self.cfg.timing.tick.saturating_sub(started.elapsed());
            std::thread::sleep(left);
        }
        self.shutdown();
        Ok(())
    }

    /// One round: look, act, publish.
    pub fn tick(&mut self) {
        let health = self.check_local();
        let view = match self.store.read_prefix(&self.cfg.keys.prefix) {
            Ok(snapshot) => View::from_snapshot(&self.cfg.keys, &snapshot),
            Err(e) => {
                self.etcd_unreachable(&e.to_string(), &health);
                self.write_metrics(None, &health);
                return;
            }
        };
        for problem in &view.problems {
            self.log(problem.clone());
        }
        if self.lead.is_some() {
            self.lead_tick(&view, &health);
        } else {
            match view.leader.clone() {
                Some((leader, key_rev, lease)) if leader.host == self.cfg.host => {
                    self.resume(&view, &health, &leader, key_rev, lease)
                }
                Some((leader, _, _)) => self.follow(&view, &health, &leader.host),
                None => self.vacant(&view, &health),
            }
        }
        self.publish(&health);
        self.write_metrics(Some(&view), &health);
    }

    /// Gives the lead back on a clean stop (SIGTERM): the replica takes over at once
    /// instead of after the TTL.
    fn shutdown(&mut self) {
        if self.lead.is_some() {
            self.step_down("the agent is stopping");
        }
        if let Some(lease) = self.member_lease.take() {
            let _ = self.store.revoke(lease);
        }
    }

    fn me(&self) -> &rampart_database::DbHost {
        self.cfg
            .cluster
            .host(&self.cfg.host)
            .expect("checked in Agent::new")
    }

    fn address_of(&self, host: &str) -> Option<Ipv4Addr> {
        self.cfg.cluster.host(host).ok().map(|h| h.address)
    }

    /// The local server's state over a new connection to its socket.
    ///
    /// New each tick, because a server that answers an old session may accept no one
    /// else: after an etcd quorum loss MariaDB deadlocked with every new connection queued
    /// (then "Too many connections") while the agent's long-lived session still answered —
    /// and the leader renewed its lease for 216 s over a database nobody could use
    /// (docs/failover.md). A connection over the socket costs about a millisecond.
    fn check_local(&mut self) -> Result<HostState, Unhealthy> {
        let timeout = self.cfg.timing.health_timeout;
        self.local = None;
        if !self.cfg.socket.exists() {
            return Err(Unhealthy {
                down: true,
                message: format!("no MariaDB socket at {}", self.cfg.socket.display()),
            });
        }
        match Session::open_socket(&self.cfg.host, &self.cfg.socket, timeout)
            .and_then(|mut s| s.set_timeouts(timeout * 2).map(|()| s))
        {
            Ok(session) => self.local = Some(session),
            Err(e) => {
                let text = e.to_string();
                return Err(Unhealthy {
                    down: text.contains("refused") || text.contains("No such file"),
                    message: text,
                });
            }
        }
        let session = self.local.as_mut().expect("connected above");
        match session.state() {
            Ok(state) => Ok(state),
            Err(e) => {
                self.local = None;
                Err(Unhealthy {
                    down: false,
                    message: e.to_string(),
                })
            }
        }
    }

    /// The local session, reconnecting if an earlier statement dropped it.
    fn local_session(&mut self) -> Result<&mut Session, String> {
        if self.local.is_none() {
            let session = Session::open_socket(
                &self.cfg.host,
                &self.cfg.socket,
                self.cfg.timing.health_timeout,
            )
            .and_then(|mut s| {
                // The server gives up on a statement the agent gave up on, instead of
                // piling them up (a `read_only = 1` waits for every running commit).
                s.set_timeouts(self.cfg.timing.health_timeout * 2)?;
                Ok(s)
            })
            .map_err(|e| format!("the local MariaDB does not answer: {e}"))?;
            self.local = Some(session);
        }
        Ok(self.local.as_mut().expect("connected above"))
    }

    /// Runs a statement on the local server; the error as text.
    fn local_exec(&mut self, statement: &str) -> Result<(), String> {
        let session = self.local_session()?;
        let result = session.exec(statement).map_err(|e| e.to_string());
        if result.is_err() {
            self.local = None;
        }
        result
    }

    fn local_state(&mut self) -> Result<HostState, String> {
        let session = self.local_session()?;
        let result = session.state().map_err(|e| e.to_string());
        if result.is_err() {
            self.local = None;
        }
        result
    }

    /// Sets the writer gate (nft runs only when it changes, or for a leader's deadline).
    fn set_gate(&mut self, opening: Opening) {
        let unchanged = self.gate == Some(opening) && !matches!(opening, Opening::Until(_));
        if unchanged {
            return;
        }
        match self.cfg.gate.set(opening) {
            Ok(()) => self.gate = Some(opening),
            Err(e) => {
                self.gate = None;
                self.log(e.to_string());
            }
        }
    }

    /// Read-only, best effort (a hung server cannot be told; the gate holds anyway).
    fn make_read_only(&mut self, why: &str) {
        if let Err(e) = self.local_exec("SET GLOBAL read_only = 1") {
            self.log(format!(
                "could not set read_only=1 ({why}): {e}; the writer gate keeps clients out"
            ));
        }
    }

    /// etcd cannot be read: a leader keeps its lead only until the gate's deadline.
    fn etcd_unreachable(&mut self, error: &str, health: &Result<HostState, Unhealthy>) {
        self.message = Some(format!("etcd unreachable: {error}"));
        let Some(lead) = &self.lead else {
            self.log(format!("etcd unreachable: {error}"));
            return;
        };
        let deadline = self.cfg.timing.gate_deadline(lead.renewed);
        if Instant::now() >= deadline {
            self.lost_lead(&format!(
                "no lease renewal since {:.1}s (etcd unreachable: {error})",
                lead.renewed.elapsed().as_secs_f64()
            ));
        } else {
            self.log(format!(
                "etcd unreachable ({error}); the writer gate closes in {:.1}s unless a renewal succeeds",
                deadline.saturating_duration_since(Instant::now()).as_secs_f64()
            ));
            let _ = health;
        }
    }

    /// Publishes this host's member record under the agent's own lease.
    fn publish(&mut self, health: &Result<HostState, Unhealthy>) {
        let lease = match self.member_lease {
            Some(lease) => match self.store.keep_alive(lease) {
                Ok(ttl) if ttl > 0 => Some(lease),
                _ => None,
            },
            None => None,
        };
        let lease = match lease {
            Some(lease) => lease,
            None => match self.store.grant(self.cfg.timing.ttl) {
                Ok(lease) => lease,
                Err(_) => {
                    self.member_lease = None;
                    return;
                }
            },
        };
        self.member_lease = Some(lease);
        let member = self.member_record(health);
        let key = self.cfg.keys.member(&self.cfg.host);
        if self
            .store
            .put(&key, record::encode(&member), Some(lease))
            .is_err()
        {
            self.member_lease = None;
        }
    }

    fn member_record(&self, health: &Result<HostState, Unhealthy>) -> Member {
        let (healthy, state) = match health {
            Ok(state) => (true, Some(state)),
            Err(_) => (false, None),
        };
        let replica = state.and_then(|s| s.replica.as_ref());
        Member {
            host: self.cfg.host.clone(),
            role: if healthy { self.role } else { "down" }.to_string(),
            healthy,
            read_only: state.map(|s| s.read_only),
            server_id: state.map(|s| s.server_id.clone()),
            gtid_binlog_pos: state.map_or(String::new(), |s| s.binlog_pos.to_string()),
            gtid_current_pos: state.map_or(String::new(), |s| s.current_pos.to_string()),
            received: replica.map(|r| r.received.to_string()),
            source: replica.map(|r| r.source.clone()),
            io_running: replica.map(|r| r.io_running.clone()),
            sql_running: replica.map(|r| r.sql_running),
            seconds_behind: replica.and_then(|r| r.seconds_behind),
            semi_sync_master: state.map(|s| s.semi_sync.master_enabled),
            message: match health {
                Err(u) => Some(u.message.clone()),
                Ok(_) => self.message.clone(),
            },
            updated_ms: record::now_ms(),
        }
    }

    /// One line on stderr (the journal, or the lab's log), not repeated tick after tick.
    fn log(&mut self, line: String) {
        if self.last_log.as_deref() == Some(line.as_str()) {
            return;
        }
        let ms = record::now_ms();
        eprintln!(
            "{}.{:03} rampart-db agent {}: {line}",
            ms / 1000,
            ms % 1000,
            self.cfg.host
        );
        self.last_log = Some(line);
    }
}

/// A wait that MariaDB bounds itself, for use inside one tick.
fn short(d: Duration) -> Duration {
    d.min(Duration::from_millis(200))
}

impl From<DbError> for crate::FailoverError {
    fn from(e: DbError) -> Self {
        crate::FailoverError::Database(e)
    }
}
