//! The shipped topology moved onto loopback: the same hosts, roles and policy, with
//! addresses in 127.0.0.0/24 (every one of them local, so any host can be the vantage
//! without a namespace) and the service ports a test chooses.

use std::path::PathBuf;

use serde_json::Value;

use super::{topology_path, TempDir};

/// Writes the loopback topology into `dir`; `ports` overrides service ports by name.
pub fn topology(dir: &TempDir, ports: &[(&str, u16)]) -> PathBuf {
    let text = std::fs::read_to_string(topology_path()).unwrap();
    let mut t: Value = serde_json::from_str(&text).unwrap();
    t["network"]["cidr"] = "127.0.0.0/24".into();
    t["adminNetworks"] = serde_json::json!(["127.0.0.64/28"]);
    for (i, host) in t["hosts"].as_array_mut().unwrap().iter_mut().enumerate() {
        host["address"] = format!("127.0.0.{}", 10 + i).into();
    }
    t["lab"] = serde_json::json!({ "outside": "127.0.0.200", "admin": "127.0.0.66" });
    for (service, port) in ports {
        t["services"][service]["port"] = (*port).into();
    }
    let path = dir.path.join("topology.json");
    std::fs::write(&path, serde_json::to_string_pretty(&t).unwrap()).unwrap();
    path
}

/// The loopback address of the n-th host of the shipped topology.
pub fn address(n: usize) -> String {
    format!("127.0.0.{}", 10 + n)
}
