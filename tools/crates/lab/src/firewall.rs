//! A host's rendered nftables ruleset inside its namespace: checked, then loaded, the
//! way the NixOS firewall module checks before it applies.

use std::path::Path;
use std::process::Command;

use crate::{run, Result};

fn nft(namespace: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", namespace, "nft"]);
    cmd
}

/// `nft -c -f RULESET` in `namespace`: parses and checks without changing anything.
pub fn check(namespace: &str, ruleset: &Path) -> Result<()> {
    run(nft(namespace).args(["-c", "-f"]).arg(ruleset)).map(drop)
}

/// `nft -f RULESET` in `namespace`. The rendered file flushes its own table first, so
/// loading it again replaces the rules instead of adding to them.
pub fn load(namespace: &str, ruleset: &Path) -> Result<()> {
    run(nft(namespace).arg("-f").arg(ruleset)).map(drop)
}

/// The text of `table inet rampart` as the kernel holds it.
pub fn list_table(namespace: &str) -> Result<String> {
    run(nft(namespace).args(["list", "table", "inet", "rampart"]))
}

/// The `policy[<index>] <service>` comments of the accept rules in `listed`, sorted.
pub fn policy_comments(listed: &str) -> Vec<String> {
    let mut found: Vec<String> = listed
        .split("comment \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|c| c.starts_with("policy["))
        .map(str::to_string)
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_comments_are_read_from_a_listing() {
        let listed = "table inet rampart {\n chain input {\n  tcp dport 22 ip saddr { 10.0.0.0/8 } accept comment \"policy[3] ssh\"\n  iifname \"lo\" accept comment \"loopback\"\n  tcp dport 443 accept comment \"policy[0] https\"\n }\n}\n";
        assert_eq!(
            policy_comments(listed),
            ["policy[0] https", "policy[3] ssh"]
        );
    }
}
