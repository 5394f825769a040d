//! The lab's network: one namespace per node, joined by a bridge in a namespace of its own.

use std::process::Command;

use rampart_topology::Topology;

use super::names::{Names, Node, BRIDGE, NODE_LINK};
use super::{netns, process, run, Result};

fn ip(args: &[&str]) -> Result<String> {
    run(Command::new("ip").args(args))
}

/// Creates the bridge namespace and one namespace per node, each with its topology address
/// on `eth0` and loopback up. `created` is called with each namespace right after it exists,
/// before anything else can fail, so the caller can record it for `down`.
pub fn up(
    names: &Names,
    topology: &Topology,
    nodes: &[Node],
    mut created: impl FnMut(&str) -> Result<()>,
) -> Result<()> {
    let prefix_len = topology.network.prefix().to_string();
    let bridge_ns = names.bridge_namespace();
    ip(&["netns", "add", &bridge_ns])?;
    created(&bridge_ns)?;
    ip(&[
        "-n", &bridge_ns, "link", "add", "name", BRIDGE, "type", "bridge",
    ])?;
    ip(&["-n", &bridge_ns, "link", "set", BRIDGE, "up"])?;
    for (i, node) in nodes.iter().enumerate() {
        let ns = names.namespace(&node.name);
        ip(&["netns", "add", &ns])?;
        created(&ns)?;
        // The bridge side is named by index: interface names are limited to 15 bytes.
        let port = format!("v{i}");
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n", &bridge_ns, "link", "add", "name", &port, "type", "veth", "peer", "name",
            NODE_LINK, "netns", &ns,
        ])?;
        ip(&[
            "-n", &bridge_ns, "link", "set", &port, "master", BRIDGE, "up",
        ])?;
        let cidr = format!("{}/{prefix_len}", node.address);
        ip(&["-n", &ns, "addr", "add", &cidr, "dev", NODE_LINK])?;
        ip(&["-n", &ns, "link", "set", NODE_LINK, "up"])?;
    }
    Ok(())
}

/// The bridge-side interface of a node (for captures on one node's link).
pub fn bridge_port(nodes: &[Node], node: &str) -> Option<String> {
    nodes
        .iter()
        .position(|n| n.name == node)
        .map(|i| format!("v{i}"))
}

/// What `down` removed.
#[derive(Debug, Default)]
pub struct Removed {
    pub namespaces: Vec<String>,
    pub processes: usize,
}

/// Removes every namespace in `recorded` and every namespace with the lab's prefix, after
/// ending every process still inside it. Namespaces of other labs or tests are never
/// touched: they do not carry this prefix.
pub fn down(names: &Names, recorded: &[String]) -> Result<Removed> {
    let mut doomed: Vec<String> = recorded
        .iter()
        .filter(|ns| names.owns(ns))
        .cloned()
        .collect();
    doomed.extend(netns::list()?.into_iter().filter(|ns| names.owns(ns)));
    doomed.sort();
    doomed.dedup();
    let mut removed = Removed::default();
    for ns in doomed {
        if !netns::exists(&ns) {
            continue;
        }
        let pids = ip(&["netns", "pids", &ns])?;
        let pids: Vec<u32> = pids.lines().filter_map(|l| l.trim().parse().ok()).collect();
        removed.processes += process::terminate_all(&pids);
        ip(&["netns", "del", &ns])?;
        removed.namespaces.push(ns);
    }
    Ok(removed)
}
