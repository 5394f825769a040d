//! The writer gate: the kernel, not the agent, stops a leader's writes when its lease
//! lapses.
//!
//! A table `inet rampart-gate` on every database host rejects TCP connections to
//! MariaDB's port — new and established alike, with a reset so that clients fail at once
//! and look for the new primary — unless the port is an element of its set `open`:
//!
//! - a replica's agent adds the element without a timeout: reads and replication flow;
//! - the leader's agent adds it with a timeout that ends at [`crate::Timing::gate_deadline`]
//!   of its latest lease renewal, and renews it with the lease. If the agent dies, hangs
//!   or loses etcd, the element expires in the kernel and the gate closes before etcd can
//!   expire the lease — so no other host can have been made writable while this one still
//!   accepts a write;
//! - a fenced host (it lost the lead, or its history diverged) has no element.
//!
//! Whatever the element, a TCP reset from a peer passes: it ends a connection and carries
//! no write. The gate answers a cut-off replica in the server's stead, so a dropped reset
//! left the server holding the replica's binlog dump; when the replica came back, MariaDB
//! 10.11 deadlocked killing that stale dump (`kill_zombie_dump_threads` waiting in
//! `Ack_receiver::remove_slave`, every new connection queued behind it: measured after
//! an etcd quorum loss, docs/failover.md "The writer gate").
//!
//! The agent reaches its own MariaDB over the local socket, which the gate does not
//! touch. Each change is one `nft -f -` transaction (flush the set, add the element), so
//! the set is never briefly empty on a renewal. The table is separate from the operator's
//! fence (`inet rampart-fence`, [`rampart_database::fence`]): either one closes the port.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The nftables table of the gate (a contract: docs/failover.md).
pub const TABLE: &str = "rampart-gate";

/// Why the gate could not be changed.
#[derive(Debug, thiserror::Error)]
#[error("writer gate: `{command}` failed: {message}")]
pub struct GateError {
    pub command: String,
    pub message: String,
}

/// The gate of MariaDB's port on this host.
#[derive(Clone, Debug)]
pub struct Gate {
    /// The nft program (`nft`, or a wrapper that enters the host's namespace).
    pub nft: Vec<String>,
    pub port: u16,
}

/// What the gate lets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opening {
    /// Nothing: the port rejects every connection.
    Closed,
    /// Everything, until this long from now (a leader's lease).
    Until(Duration),
    /// Everything, without end (a replica).
    Open,
}

impl Gate {
    /// The table with its set, closed: installed once when the agent starts. Replacing
    /// it closes the gate, which is the safe state of a starting agent.
    pub fn install_script(&self) -> String {
        let port = self.port;
        format!(
            "table inet {TABLE}\n\
             delete table inet {TABLE}\n\
             table inet {TABLE} {{\n\
             \t# rampart-db agent: MariaDB's port is open only while this host may serve it\n\
             \t# (docs/failover.md \"The writer gate\"). A leader's element times out with its lease.\n\
             \tset open {{ type inet_service; flags timeout; }}\n\
             \tchain input {{\n\
             \t\ttype filter hook input priority filter - 10; policy accept;\n\
             \t\ttcp dport {port} tcp dport @open accept\n\
             \t\t# A peer's reset always passes: it ends a connection and carries no write.\n\
             \t\ttcp dport {port} tcp flags & rst == rst accept\n\
             \t\ttcp dport {port} reject with tcp reset comment \"rampart-db agent: not the leader, or its lease lapsed\"\n\
             \t}}\n\
             }}\n"
        )
    }

    /// The script that sets the gate to `opening` in one transaction.
    pub fn script(&self, opening: Opening) -> String {
        let flush = format!("flush set inet {TABLE} open\n");
        match opening {
            Opening::Closed => flush,
            Opening::Open => format!("{flush}add element inet {TABLE} open {{ {} }}\n", self.port),
            Opening::Until(left) => format!(
                "{flush}add element inet {TABLE} open {{ {} timeout {}ms }}\n",
                self.port,
                left.as_millis().max(1)
            ),
        }
    }

    pub fn install(&self) -> Result<(), GateError> {
        self.apply(&self.install_script())
    }

    pub fn set(&self, opening: Opening) -> Result<(), GateError> {
        self.apply(&self.script(opening))
    }

    fn apply(&self, script: &str) -> Result<(), GateError> {
        let command = format!("{} -f -", self.nft.join(" "));
        let failed = |message: String| GateError {
            command: command.clone(),
            message,
        };
        let (program, args) = self
            .nft
            .split_first()
            .ok_or_else(|| failed("no nft program configured".into()))?;
        let mut child = Command::new(program)
            .args(args)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(script.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| failed(e.to_string()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(failed(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        Gate {
            nft: vec!["nft".into()],
            port: 3306,
        }
    }

    #[test]
    fn scripts_flush_and_set_the_element_in_one_transaction() {
        let g = gate();
        assert_eq!(
            g.script(Opening::Closed),
            "flush set inet rampart-gate open\n"
        );
        assert_eq!(
            g.script(Opening::Until(Duration::from_millis(3750))),
            "flush set inet rampart-gate open\nadd element inet rampart-gate open { 3306 timeout 3750ms }\n"
        );
        assert!(g.script(Opening::Open).ends_with("open { 3306 }\n"));
        let install = g.install_script();
        assert!(install.contains("tcp dport 3306 reject with tcp reset"));
        let rst = install
            .find("tcp flags & rst == rst accept")
            .expect("resets pass");
        let reject = install
            .find("reject with tcp reset")
            .expect("the gate rejects");
        assert!(
            rst < reject,
            "a reset is accepted before the reject rule sees it"
        );
        assert!(install.contains("flags timeout"));
    }
}
