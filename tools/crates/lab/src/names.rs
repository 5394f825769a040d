//! Names of the lab's namespaces and links.

use std::net::Ipv4Addr;

use rampart_topology::Topology;

use super::{LabError, Result};

/// The node name of the namespace that holds the bridge: host names start with a letter,
/// so no host's namespace can be called this.
const BRIDGE_NODE: &str = "_bridge";

/// The bridge inside the bridge namespace.
pub const BRIDGE: &str = "br0";

/// The interface every node sees, inside its own namespace.
pub const NODE_LINK: &str = "eth0";

/// How the lab's namespaces are called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// The default prefix for a topology: `rl-<name>.`, keeping only characters that are
    /// safe in a file name (namespaces are files under /run/netns).
    pub fn for_topology(topology: &Topology) -> Names {
        let name: String = topology
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Names {
            prefix: format!("rl-{name}."),
        }
    }

    /// An explicit prefix (tests use their own so that they never meet a running lab).
    pub fn with_prefix(prefix: &str) -> Result<Names> {
        let ok = !prefix.is_empty()
            && prefix.len() <= 40
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && prefix.ends_with('.');
        if !ok {
            return Err(LabError::Invalid(format!(
                "--prefix {prefix:?} is not usable (expected at most 40 letters, digits, \"-\", \"_\" or \".\", ending in \".\"); \
                 the dot keeps one lab's names from being a prefix of another's"
            )));
        }
        Ok(Names {
            prefix: prefix.to_string(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The namespace of a node (a topology host, `outside` or `admin`).
    pub fn namespace(&self, node: &str) -> String {
        format!("{}{node}", self.prefix)
    }

    /// The namespace holding the bridge, `<prefix>_bridge`.
    pub fn bridge_namespace(&self) -> String {
        self.namespace(BRIDGE_NODE)
    }

    /// Does a namespace name belong to this lab?
    pub fn owns(&self, namespace: &str) -> bool {
        namespace.starts_with(&self.prefix)
    }
}

/// One endpoint on the lab's bridge: a topology host or one of the lab's clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub address: Ipv4Addr,
    /// True for the topology's hosts, false for `outside` and `admin`.
    pub is_host: bool,
}

/// The lab's nodes: every host, then `outside` and, if the topology has one, `admin`.
pub fn nodes(topology: &Topology) -> Result<Vec<Node>> {
    let lab = topology.lab.as_ref().ok_or_else(|| {
        LabError::Invalid(format!(
            "topology {:?} has no \"lab\" section (expected {{ \"outside\": \"<address>\" }}); \
             add one so the lab has an internet client",
            topology.name
        ))
    })?;
    let mut out: Vec<Node> = topology
        .hosts
        .iter()
        .map(|h| Node {
            name: h.name.clone(),
            address: h.address,
            is_host: true,
        })
        .collect();
    let mut client = |name: &str, address| {
        if topology.host(name).is_some() {
            return Err(LabError::Invalid(format!(
                "host name {name:?} is reserved for the lab's client namespace; rename the host"
            )));
        }
        out.push(Node {
            name: name.to_string(),
            address,
            is_host: false,
        });
        Ok(())
    };
    client("outside", lab.outside)?;
    if let Some(admin) = lab.admin {
        client("admin", admin)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn shipped() -> Topology {
        Topology::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../hosts/topology.json"))
            .unwrap()
    }

    #[test]
    fn default_prefix_ends_with_a_dot_so_labs_never_overlap() {
        let names = Names::for_topology(&shipped());
        assert_eq!(names.namespace("web1"), "rl-rampart.web1");
        assert!(names.owns("rl-rampart._bridge"));
        assert!(!names.owns("rl-rampart-x.web1"));
        assert!(!names.owns("rlt-fabric.web1"));
    }

    #[test]
    fn a_prefix_without_the_dot_is_refused_with_the_reason() {
        let err = Names::with_prefix("rl-x").unwrap_err().to_string();
        assert!(err.contains("ending in \".\""), "{err}");
        assert!(Names::with_prefix("rlt-1234.").is_ok());
        assert!(Names::with_prefix("a/b.").is_err());
    }

    #[test]
    fn nodes_are_the_hosts_then_the_clients() {
        let nodes = nodes(&shipped()).unwrap();
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["lb", "web1", "web2", "outside", "admin"]);
        assert!(!nodes[3].is_host);
    }
}
