//! Network probes used by `reach`: each speaks one protocol to one endpoint and reports
//! what it saw. They never panic on what a peer sends; judging against the topology is
//! the job of the `rampart-reach` crate.
//!
//! - [`tcp`]: TCP connect probes with nmap's open/closed/filtered vocabulary.
//! - [`sockets`]: this namespace's listening sockets and the processes holding them.
//! - [`sweep`]: every port of every host: raw SYN probes, or connect probes unprivileged.
//! - [`handshake`]: OpenSSL handshakes offering one version, suite or group (STARTTLS for MySQL).
//! - [`tls`]: rustls handshakes verified against the rampart CA only.
//! - [`nft`]: the live nftables ruleset, and a rendered one as the kernel would hold it.
//! - [`http`]: a minimal HTTP/1.1 client for the few questions reach asks.
//! - [`haproxy`]: HAProxy's stats CSV over the stats socket or page.
//! - [`prometheus`]: Prometheus' targets and alerts API, and the exposition format.

pub mod handshake;
pub mod haproxy;
pub mod http;
pub mod nft;
pub mod prometheus;
pub mod sockets;
pub mod sweep;
pub mod tcp;
pub mod tls;
