//! The firewall fence: a demoted primary stops accepting database connections.
//!
//! `read_only=1` fences a primary that still answers. A primary that does not answer
//! (crashed, hung, cut off) may come back writable, so promotion also installs a
//! firewall rule on it: a dedicated nftables table `inet rampart-fence` that rejects
//! every TCP connection to its MariaDB port. It lives in its own table so that neither
//! the host's `inet rampart` ruleset nor a firewall reload removes it by accident, and
//! so that lifting it is one `delete table`.
//!
//! rampart-db does not assume where it runs relative to the fenced host, so the rule is
//! applied by a *hook*: a shell command template that receives the nft script on stdin.
//! The lab runs it in the host's network namespace (`ip netns exec <ns-of-{host}> nft -f -`),
//! a NixOS host runs it through its `rampart-db-fence` unit, a single host simply `nft -f -`.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// The nftables table that holds the fence (a contract: docs/failover.md).
pub const TABLE: &str = "rampart-fence";

/// The nft script that fences `address:port` on the host that runs it.
///
/// Applying it twice is harmless: the table is created empty, deleted and written anew.
pub fn ruleset(host: &str, address: Ipv4Addr, port: u16) -> String {
    format!(
        "# rampart-db fence for {host}: it was demoted, its MariaDB must take no writes.\n\
         # Lift it with `rampart-db rejoin {host} --primary <new primary>`.\n\
         table inet {TABLE}\n\
         delete table inet {TABLE}\n\
         table inet {TABLE} {{\n\
         \tchain input {{\n\
         \t\t# Before the host's own filter chains: a fence must win over any accept.\n\
         \t\ttype filter hook input priority filter - 10; policy accept;\n\
         \t\t# reject, not drop: clients (the application) fail at once and look for the\n\
         \t\t# new primary instead of waiting out a connect timeout; established\n\
         \t\t# sessions are reset too, so a pooled connection cannot commit either.\n\
         \t\tip daddr {address} tcp dport {port} reject with tcp reset comment \"rampart-db fence: {host} is demoted\"\n\
         \t}}\n\
         }}\n"
    )
}

/// The nft script that lifts the fence (harmless when there is none).
pub fn lift_ruleset() -> String {
    format!("table inet {TABLE}\ndelete table inet {TABLE}\n")
}

/// Whether a hook call puts the fence up or takes it down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Fence,
    Lift,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Fence => "fence",
            Action::Lift => "lift",
        }
    }
}

/// A fence hook failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FenceError {
    #[error("fence: cannot run the fence hook `{command}` for {host}: {source}")]
    Spawn {
        host: String,
        command: String,
        source: std::io::Error,
    },
    #[error("fence: the fence hook `{command}` for {host} failed (got {status}, expected exit 0): {stderr}")]
    Failed {
        host: String,
        command: String,
        status: String,
        stderr: String,
    },
}

/// The command that applies nft scripts to a host.
///
/// The template is run by `sh -c`; `{host}`, `{address}`, `{port}` and `{action}` are
/// replaced first (all come from a validated topology: names, dotted quads and numbers,
/// nothing a shell would interpret). The script arrives on stdin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    pub template: String,
}

impl Hook {
    pub fn new(template: impl Into<String>) -> Hook {
        Hook {
            template: template.into(),
        }
    }

    /// The command line for one host and action.
    pub fn command(&self, action: Action, host: &str, address: Ipv4Addr, port: u16) -> String {
        self.template
            .replace("{host}", host)
            .replace("{address}", &address.to_string())
            .replace("{port}", &port.to_string())
            .replace("{action}", action.name())
    }

    /// Fences or lifts the fence on `host`.
    pub fn run(
        &self,
        action: Action,
        host: &str,
        address: Ipv4Addr,
        port: u16,
    ) -> Result<(), FenceError> {
        let command = self.command(action, host, address, port);
        let script = match action {
            Action::Fence => ruleset(host, address, port),
            Action::Lift => lift_ruleset(),
        };
        let spawn_error = |source| FenceError::Spawn {
            host: host.to_string(),
            command: command.clone(),
            source,
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        if let Some(mut stdin) = child.stdin.take() {
            // A hook that ignores stdin closes it early; its exit status is what counts.
            let _ = stdin.write_all(script.as_bytes());
        }
        let output = child.wait_with_output().map_err(spawn_error)?;
        if output.status.success() {
            Ok(())
        } else {
            Err(FenceError::Failed {
                host: host.to_string(),
                command,
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_rejects_the_mariadb_port_of_the_fenced_address_only() {
        let text = ruleset("web1", Ipv4Addr::new(10, 42, 0, 11), 3306);
        assert!(text.contains("ip daddr 10.42.0.11 tcp dport 3306 reject with tcp reset"));
        assert!(text.contains("table inet rampart-fence {"));
        // Idempotent: the script empties the table before writing it.
        assert!(text.contains("delete table inet rampart-fence\n"));
    }

    #[test]
    fn hook_placeholders_are_replaced() {
        let hook = Hook::new("ip netns exec lab-{host} nft -f - # {action} {address}:{port}");
        assert_eq!(
            hook.command(Action::Lift, "web1", Ipv4Addr::new(10, 0, 0, 1), 3306),
            "ip netns exec lab-web1 nft -f - # lift 10.0.0.1:3306"
        );
    }

    #[test]
    fn hook_receives_the_script_and_reports_failure() {
        let dir = std::env::temp_dir().join(format!("rampart-fence-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("script.nft");
        let hook = Hook::new(format!("cat > {}", out.display()));
        hook.run(Action::Fence, "web1", Ipv4Addr::new(10, 0, 0, 1), 3306)
            .unwrap();
        let written = std::fs::read_to_string(&out).unwrap();
        assert_eq!(written, ruleset("web1", Ipv4Addr::new(10, 0, 0, 1), 3306));

        let failing = Hook::new("echo nope >&2; exit 3");
        let err = failing
            .run(Action::Lift, "web2", Ipv4Addr::new(10, 0, 0, 2), 3306)
            .unwrap_err()
            .to_string();
        assert!(err.contains("for web2 failed"), "{err}");
        assert!(err.contains("nope"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
