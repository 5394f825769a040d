//! # etcd for rampart
//!
//! Database leadership lives in etcd (docs/failover.md): a member on every host of the
//! topology, `lb` as the tie-breaker, TLS with client certificates on the client and the
//! peer port. This crate is the one way rampart's Rust code talks to it — a thin, typed
//! layer over the [`etcd_client`] crate that
//!
//! - connects to **the topology's members** with the CA and a client certificate
//!   ([`ClientConfig::from_topology`]);
//! - bounds **every request by a deadline** ([`ClientConfig::request_timeout`]) and
//!   answers [`ConsensusError::Timeout`] instead of hanging when there is no quorum;
//! - offers what a leader election needs: get/put, **compare-and-swap** and general
//!   transactions ([`Consensus::create`], [`Consensus::compare_and_swap`],
//!   [`Consensus::txn`]), **leases** whose holder knows the earliest instant the lease can
//!   expire ([`Lease::valid_until`], [`KeepAlive::renew`]), and **watches**
//!   ([`Consensus::watch`]);
//! - reports **cluster health** per member ([`cluster_health`]).
//!
//! ## A leader key, the intended use
//!
//! ```no_run
//! # async fn example(config: rampart_consensus::ClientConfig) -> Result<(), rampart_consensus::ConsensusError> {
//! use std::time::Duration;
//! use rampart_consensus::{Consensus, Expect};
//!
//! let etcd = Consensus::connect(&config).await?;
//! let lease = etcd.grant_lease(Duration::from_secs(10)).await?;
//! // Take the key only if nobody holds it; it disappears with the lease.
//! let taken = etcd.create("/rampart/leader", "web1", Some(lease.id)).await?;
//! if taken.succeeded {
//!     let mut keep = etcd.keep_alive(lease.id).await?;
//!     loop {
//!         // Act as the leader only while `Instant::now() < valid_until - margin`; when
//!         // a renewal fails, stop (fence) before that instant, not after.
//!         let renewed = keep.renew().await?;
//!         tokio::time::sleep(renewed.ttl / 3).await;
//!     }
//! } else if let Some(holder) = taken.current {
//!     // Someone else leads; watch the key from the revision just read.
//!     let mut watch = etcd.watch("/rampart/leader", Some(holder.mod_revision + 1)).await?;
//!     let _changes = watch.next().await?;
//! }
//! # Ok(()) }
//! ```
//!
//! ## Time
//!
//! etcd expires a lease on its leader's clock, `ttl` after the last renewal *it
//! processed*. That renewal was processed after the client sent it, so the lease cannot
//! expire before `sent + ttl` — the [`Lease::valid_until`] this crate returns, measured
//! with [`std::time::Instant`] taken *before* the request left. A holder that stops
//! acting before `valid_until` (minus a margin for clock-rate drift and its own stop
//! time) never overlaps with a successor that took the key after the expiry. A new etcd
//! leader extends every lease by its election timeout, which only moves the real expiry
//! later. Keep lease TTLs well above the etcd election timeout (at least three times):
//! during an etcd election no renewal can succeed.
//!
//! ## Async
//!
//! Everything is `async` on tokio (the transport is tonic). A synchronous caller builds a
//! current-thread runtime (`tokio::runtime::Builder::new_current_thread().enable_all()`)
//! and `block_on`s the calls. [`Consensus`] is cheap to clone; clones share connections.
//!
//! ## Testing
//!
//! Its tests run against a real etcd cluster on loopback, which the lab crate starts
//! (`rampart_lab::local::etcd::TestCluster`, with the lab's other daemons): they live in
//! `tools/crates/lab/tests/consensus.rs`.

mod client;
mod config;
mod error;
mod health;
mod lease;
mod watch;

pub use client::{Compare, Consensus, Expect, KeyValue, Op, OpResult, Swap, Txn, TxnResult};
pub use config::{ClientConfig, Member, CLIENT_SERVICE, METRICS_SERVICE, PEER_SERVICE};
pub use error::ConsensusError;
pub use health::{cluster_health, move_leader, ClusterHealth, MemberHealth, MemberStatus};
pub use lease::{KeepAlive, Lease, LeaseId};
pub use watch::{Event, Watch, WatchBatch};

/// `Result` with this crate's error.
pub type Result<T, E = ConsensusError> = std::result::Result<T, E>;
