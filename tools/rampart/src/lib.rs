//! # rampart
//!
//! The shared library of rampart's tools (`certtool`, `reach`, `infralab`). The binaries
//! only parse arguments and print; everything they decide is decided here, so that it can
//! be tested without a process and reused between tools.
//!
//! - [`topology`]: the typed model of `hosts/topology.json`, its validation (the same
//!   messages as `lib/topology.nix`) and what its reachability policy means.
//! - [`net`]: IPv4 addresses and networks, parsed as strictly as the Nix side does.
//! - [`exit`]: the exit codes every tool shares.
//! - [`nix`]: how the tools call Nix, with the project's one set of Nix settings.
//! - [`table`]: plain-text tables for human output.
//! - `db` (feature `db`): status, promotion, fencing and rejoin of the MariaDB pair.
//! - [`lab`]: the network-namespace lab behind `infralab`.
//! - [`probe`]: network probes (TCP, TLS, HTTP, HAProxy, Prometheus, …) used by `reach`.
//! - [`reach`]: the checks of the `reach` tool, judged against the topology.
//! - [`report`]: the report of a `reach` run, as a table or JSON.
//! - [`pki`]: certtool's logic: issuing the CA and every certificate, verifying them,
//!   auditing the Nix store for leaked keys.

#[cfg(feature = "db")]
pub mod db;
pub mod exit;
pub mod lab;
pub mod net;
pub mod nix;
pub mod pki;
pub mod probe;
pub mod reach;
pub mod report;
pub mod table;
pub mod topology;
