//! The lab's state directory and the record of everything it started.
//!
//! ```text
//! <state>/lab.json               the record (below), rewritten after every change
//! <state>/nodes/<node>/etc/      rendered configuration files of that host
//! <state>/nodes/<node>/pki/      certificates and keys (settings.pkiDir)
//! <state>/nodes/<node>/secrets/  runtime secrets (settings.secretsDir)
//! <state>/nodes/<node>/run/      pid files and sockets (settings.runDir)
//! <state>/nodes/<node>/data/     daemon data: MariaDB datadir, TSDB, … (settings.stateDir)
//! <state>/nodes/<node>/log/      one log file per process
//! ```
//!
//! The record (`lab.json`) is one JSON document:
//!
//! ```json
//! { "type": "lab", "prefix": "rl-rampart.", "topology": "/…/hosts/topology.json",
//!   "namespaces": ["rl-rampart._bridge", "rl-rampart.lb"],
//!   "processes": [ { "type": "process", "name": "haproxy", "node": "lb", "pid": 4242,
//!                    "startTime": 123456, "log": "/…/nodes/lb/log/haproxy.log" } ] }
//! ```
//!
//! `startTime` is the process's start time in clock ticks since boot (`/proc/<pid>/stat`
//! field 22): `down` signals a pid only while it still has that start time, so a pid the
//! kernel gave to someone else after a crash is never killed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{io, LabError, Result};

/// One process the lab started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type", rename = "process")]
pub struct ProcessRecord {
    /// What it is (`nginx`, `mariadb`, …), unique per node.
    pub name: String,
    /// The node (namespace suffix) it runs in.
    pub node: String,
    pub pid: u32,
    /// Clock ticks since boot when it started; guards against pid reuse.
    pub start_time: u64,
    pub log: PathBuf,
}

/// Everything the lab made, as far as `down` needs to know.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type", rename = "lab")]
pub struct Record {
    pub prefix: String,
    pub topology: PathBuf,
    pub namespaces: Vec<String>,
    pub processes: Vec<ProcessRecord>,
}

/// Where the lab keeps its certificate authority and the certificates it issued: the
/// one place that layout is written (bring-up issues there, scenarios and `reach` read it).
#[derive(Clone, Debug)]
pub struct PkiDirs {
    /// `certtool init-ca --out`: the CA's certificate and key.
    pub ca_dir: PathBuf,
    /// `certtool issue --out`: every host's certificates, `ca.pem` and `manifest.json`.
    pub out: PathBuf,
}

impl PkiDirs {
    /// The CA certificate clients trust.
    pub fn ca_cert(&self) -> PathBuf {
        self.out.join("ca.pem")
    }
}

/// The state directory of one lab.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Uses `root` (made absolute: daemons get these paths in their configuration).
    pub fn new(root: &Path) -> Result<StateDir> {
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir().map_err(io("."))?.join(root)
        };
        Ok(StateDir { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `ca/` and `certs/` under the state directory.
    pub fn pki(&self) -> PkiDirs {
        PkiDirs {
            ca_dir: self.root.join("ca"),
            out: self.root.join("certs"),
        }
    }

    /// The lab's record of namespaces and processes (`lab.json`).
    pub fn record_path(&self) -> PathBuf {
        self.root.join("lab.json")
    }

    /// `<state>/nodes/<node>`.
    pub fn node(&self, node: &str) -> PathBuf {
        self.root.join("nodes").join(node)
    }

    /// `<state>/nodes/<node>/<kind>`, created if missing.
    pub fn node_dir(&self, node: &str, kind: &str) -> Result<PathBuf> {
        let dir = self.node(node).join(kind);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(dir)
    }

    /// The record, or `None` when there is no lab here.
    pub fn load(&self) -> Result<Option<Record>> {
        let path = self.record_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| LabError::Record { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(path)(e)),
        }
    }

    /// Writes the record atomically (a crash leaves the old or the new one, never half).
    pub fn save(&self, record: &Record) -> Result<()> {
        std::fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        let path = self.record_path();
        let tmp = self.root.join("lab.json.tmp");
        let text = serde_json::to_string_pretty(record).expect("a record always serializes");
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// Removes the whole directory (what `down` does last).
    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.root) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&self.root)(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_with_a_type_on_every_object() {
        let dir = std::env::temp_dir().join(format!("rampart-state-{}", std::process::id()));
        let state = StateDir::new(&dir).unwrap();
        assert_eq!(state.load().unwrap(), None);
        let record = Record {
            prefix: "rlt.".into(),
            topology: "/t.json".into(),
            namespaces: vec!["rlt.lb".into()],
            processes: vec![ProcessRecord {
                name: "nginx".into(),
                node: "web1".into(),
                pid: 7,
                start_time: 9,
                log: "/l".into(),
            }],
        };
        state.save(&record).unwrap();
        let text = std::fs::read_to_string(state.record_path()).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["type"], "lab");
        assert_eq!(doc["processes"][0]["type"], "process");
        assert_eq!(doc["processes"][0]["startTime"], 9);
        assert_eq!(state.load().unwrap(), Some(record));
        std::fs::write(state.record_path(), "{").unwrap();
        let err = state.load().unwrap_err().to_string();
        assert!(err.contains("lab.json is unreadable"), "{err}");
        state.remove().unwrap();
        assert!(!dir.exists());
    }
}
