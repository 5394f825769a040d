//! One lab as a whole: its names, state directory and record, kept in step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart_topology::Topology;

use super::names::{self, Names, Node};
use super::process::{self, Running, Spec};
use super::render::HostDirs;
use super::state::{PkiDirs, Record, StateDir};
use super::{fabric, netns, supervise, LabError, Result};

/// A lab being built or inspected. Every namespace and process it makes is written to the
/// record before the next step, so `down` finds it even after a crash.
#[derive(Debug)]
pub struct Lab {
    pub names: Names,
    pub state: StateDir,
    pub topology: Topology,
    pub nodes: Vec<Node>,
    record: Record,
    /// The program that supervises daemons whose spec asks for it (`infralab supervise`).
    supervisor: Option<PathBuf>,
}

/// How a daemon shows that it is ready.
#[derive(Clone, Debug)]
pub enum Ready {
    /// It accepts TCP connections on this address, from inside its own namespace.
    Port(SocketAddr),
    /// It is running: nothing to probe (a daemon restarted in a state where it does not
    /// serve yet, e.g. a fenced database).
    Started,
}

/// What `Lab::down` removed.
#[derive(Debug, Default)]
pub struct Teardown {
    pub processes: usize,
    pub namespaces: Vec<String>,
}

impl Lab {
    /// The directories of one node (`<state>/nodes/<node>/…`).
    pub fn host_dirs(&self, node: &str) -> HostDirs {
        HostDirs::new(&self.state, node)
    }

    /// The lab's CA and issued certificates.
    pub fn pki(&self) -> PkiDirs {
        self.state.pki()
    }

    /// A lab for `topology` (read from `topology_path`) in `state`, named by `names`.
    pub fn new(
        topology: Topology,
        topology_path: &Path,
        state: StateDir,
        names: Names,
    ) -> Result<Lab> {
        let nodes = names::nodes(&topology)?;
        let record = Record {
            prefix: names.prefix().to_string(),
            topology: topology_path.to_path_buf(),
            namespaces: Vec::new(),
            processes: Vec::new(),
        };
        Ok(Lab {
            names,
            state,
            topology,
            nodes,
            record,
            supervisor: None,
        })
    }

    /// The same lab with the record found on disk (for `status`, `test`, `down`).
    pub fn with_saved_record(mut self) -> Result<Lab> {
        if let Some(saved) = self.state.load()? {
            if saved.prefix != self.names.prefix() {
                return Err(LabError::Invalid(format!(
                    "the lab in {} uses prefix {:?} (got --prefix {:?}); pass --prefix {:?} or another --state",
                    self.state.root().display(),
                    saved.prefix,
                    self.names.prefix(),
                    saved.prefix
                )));
            }
            self.record = saved;
        }
        Ok(self)
    }

    /// The same lab with its record as saved on disk now: another handle may have
    /// started or stopped daemons since this one read it.
    pub fn reloaded(&self) -> Result<Lab> {
        let mut lab = Lab::new(
            self.topology.clone(),
            &self.record.topology,
            self.state.clone(),
            self.names.clone(),
        )?
        .with_saved_record()?;
        // The same lab: its supervised daemons restart under the same supervisor.
        lab.supervisor = self.supervisor.clone();
        Ok(lab)
    }

    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Is there anything of this lab on the machine (a record or a namespace)?
    pub fn exists(&self) -> Result<bool> {
        Ok(
            self.state.record_path().exists()
                || netns::list()?.iter().any(|ns| self.names.owns(ns)),
        )
    }

    /// Creates the namespaces, bridge and links.
    pub fn create_fabric(&mut self) -> Result<()> {
        self.state.save(&self.record)?;
        let (names, topology, nodes) = (self.names.clone(), &self.topology, &self.nodes);
        let record = &mut self.record;
        let state = &self.state;
        fabric::up(&names, topology, nodes, |ns| {
            record.namespaces.push(ns.to_string());
            state.save(record)
        })
    }

    /// The namespace of a node.
    pub fn namespace(&self, node: &str) -> String {
        self.names.namespace(node)
    }

    /// The program that runs supervised daemons ([`crate::supervise`]): infralab itself.
    pub fn set_supervisor(&mut self, program: PathBuf) {
        self.supervisor = Some(program);
    }

    /// Starts a daemon and records it, without waiting. A supervised daemon starts under
    /// the supervisor, which is what the record holds.
    pub fn launch(&mut self, spec: &Spec) -> Result<Running> {
        let wrapped;
        let spec = match (&spec.supervision, &self.supervisor) {
            (None, _) => spec,
            (Some(how), Some(supervisor)) => {
                wrapped = supervise::wrap(spec, how, supervisor, &self.host_dirs(&spec.node));
                &wrapped
            }
            (Some(_), None) => {
                return Err(LabError::Invalid(format!(
                    "{} is to run supervised, but this lab has no supervisor program (Lab::set_supervisor)",
                    spec.what()
                )))
            }
        };
        let running = process::spawn(&self.names, &self.state, spec)?;
        self.record
            .processes
            .retain(|p| !(p.name == spec.name && p.node == spec.node));
        self.record.processes.push(running.record.clone());
        self.state.save(&self.record)?;
        Ok(running)
    }

    /// Starts a daemon, records it, and waits (up to `limit`) until it is ready.
    pub fn start(&mut self, spec: &Spec, ready: &Ready, limit: Duration) -> Result<Running> {
        let mut running = self.launch(spec)?;
        self.wait_ready(&mut running, spec, ready, limit)?;
        Ok(running)
    }

    /// Waits for several launched daemons at once; each result comes with how long that
    /// daemon took, in the order given.
    pub fn wait_all(
        &self,
        launched: Vec<(Running, Spec, Ready)>,
        limit: Duration,
    ) -> Vec<(Spec, Ready, Result<Duration>)> {
        let start = std::time::Instant::now();
        std::thread::scope(|scope| {
            let handles: Vec<_> = launched
                .into_iter()
                .map(|(mut running, spec, ready)| {
                    scope.spawn(move || {
                        let outcome = self
                            .wait_ready(&mut running, &spec, &ready, limit)
                            .map(|()| start.elapsed());
                        (spec, ready, outcome)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }

    /// Waits until a started daemon is ready.
    pub fn wait_ready(
        &self,
        running: &mut Running,
        spec: &Spec,
        ready: &Ready,
        limit: Duration,
    ) -> Result<()> {
        match ready {
            Ready::Started => running.check_alive(),
            Ready::Port(address) => {
                let waited =
                    netns::wait_for_port(&self.namespace(&spec.node), *address, limit, || {
                        running.check_alive()
                    })?;
                match waited {
                    Some(_) => Ok(()),
                    None => Err(LabError::NotReady {
                        what: spec.what(),
                        expectation: format!("TCP connections on {address}"),
                        waited: limit,
                        log: running.record.log.clone(),
                    }),
                }
            }
        }
    }

    /// Sends `signal` to a recorded daemon that still runs (a supervised one's supervisor
    /// forwards reload signals to it).
    pub fn signal(&self, name: &str, node: &str, signal: process::Signal) -> Result<()> {
        let record = self
            .record
            .processes
            .iter()
            .find(|p| p.name == name && p.node == node)
            .ok_or_else(|| {
                LabError::Invalid(format!("the lab has no {name} on {node} in its record"))
            })?;
        if !process::is_alive(record) {
            return Err(LabError::Invalid(format!(
                "{name} on {node} (pid {}) is not running; see {}",
                record.pid,
                record.log.display()
            )));
        }
        process::signal(record.pid, signal)
    }

    /// Stops one recorded daemon (for scenarios that kill a service) and forgets it.
    pub fn stop(&mut self, name: &str, node: &str) -> Result<bool> {
        let Some(pos) = self
            .record
            .processes
            .iter()
            .position(|p| p.name == name && p.node == node)
        else {
            return Ok(false);
        };
        let stopped = process::terminate(&self.record.processes[pos]);
        self.record.processes.remove(pos);
        self.state.save(&self.record)?;
        Ok(stopped)
    }

    /// Ends every recorded process, removes every namespace with the lab's prefix, and
    /// deletes the state directory. Safe on a half-built or crashed lab.
    pub fn down(&mut self) -> Result<Teardown> {
        self.state.save(&self.record)?;
        self.record.processes.clear();
        self.record.namespaces.clear();
        teardown(&self.names, &self.state)
    }
}

/// `down` without a topology: what the record in `state` lists, plus every namespace with
/// the prefix of `names`. A record with another prefix is refused, not half-cleaned.
pub fn teardown(names: &Names, state: &StateDir) -> Result<Teardown> {
    let record = state.load()?.unwrap_or_default();
    if !record.prefix.is_empty() && record.prefix != names.prefix() {
        return Err(LabError::Invalid(format!(
            "the lab in {} uses prefix {:?} (got {:?}); pass --prefix {:?}",
            state.root().display(),
            record.prefix,
            names.prefix(),
            record.prefix
        )));
    }
    let mut teardown = Teardown::default();
    for p in &record.processes {
        if process::terminate(p) {
            teardown.processes += 1;
        }
    }
    let removed = fabric::down(names, &record.namespaces)?;
    teardown.processes += removed.processes;
    teardown.namespaces = removed.namespaces;
    state.remove()?;
    Ok(teardown)
}
