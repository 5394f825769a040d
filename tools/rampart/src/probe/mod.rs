//! Network probes used by `reach`: each speaks one protocol to one endpoint and reports
//! what it saw. They never panic on what a peer sends; judging against the topology is
//! the job of [`crate::reach`].
//!
//! - [`tcp`]: TCP connect probes with nmap's open/closed/filtered vocabulary.

pub mod tcp;
