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

#[cfg(feature = "db")]
pub mod db;
pub mod exit;
pub mod net;
pub mod nix;
pub mod table;
pub mod topology;
