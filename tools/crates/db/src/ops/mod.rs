//! Status, promotion, fencing and rejoin: the decisions, step by step, one file per
//! operation (`status`, `fencing`, `rejoin`) over the shared pieces here.

use std::time::Instant;

use super::conn::{Cluster, DbHost, HostState, Session};
use super::gtid::GtidPos;
use super::report::{OperationReport, Step};
use super::{DbError, Settings};

mod fencing;
mod rejoin;
mod status;

pub use rejoin::{change_master, history_problems, CONNECT_RETRY_SECONDS};

/// Failover operations over one cluster with one set of settings.
pub struct Failover<'a> {
    pub cluster: &'a Cluster,
    pub settings: &'a Settings,
}

/// A host that answered, with its session and what it said.
pub(super) struct Live {
    host: DbHost,
    session: Session,
    state: HostState,
}

/// Records steps with their duration.
pub(super) struct Steps<'r> {
    report: &'r mut OperationReport,
}

impl Steps<'_> {
    /// Runs `f`, records it as a step, and passes its result on.
    fn run<T>(
        &mut self,
        step: &str,
        host: &str,
        f: impl FnOnce() -> Result<(T, String), String>,
    ) -> Result<T, String> {
        let started = Instant::now();
        let result = f();
        let (ok, detail) = match &result {
            Ok((_, detail)) => (true, detail.clone()),
            Err(e) => (false, e.clone()),
        };
        self.report.steps.push(Step {
            step: step.to_string(),
            host: host.to_string(),
            ok,
            detail,
            seconds: started.elapsed().as_secs_f64(),
        });
        result.map(|(value, _)| value)
    }
}

impl Failover<'_> {
    fn open(&self, host: &DbHost) -> Result<Session, DbError> {
        Session::open(host, self.cluster.port, &self.settings.access)
    }

    /// Connects to a host and reads its state; `Err` is the reason it is unreachable.
    fn live(&self, host: &DbHost) -> Result<Live, DbError> {
        let mut session = self.open(host)?;
        let state = session.state()?;
        Ok(Live {
            host: host.clone(),
            session,
            state,
        })
    }

    fn address(&self, host: &DbHost) -> String {
        format!("{}:{}", host.address, self.cluster.port)
    }
}

/// `SET GLOBAL read_only`, recorded as a step.
fn set_read_only(
    steps: &mut Steps<'_>,
    session: &mut Session,
    on: bool,
    detail: &str,
) -> Result<(), String> {
    let value = u8::from(on);
    let host = session.host.clone();
    steps.run(&format!("read_only={value}"), &host, || {
        session
            .exec(&format!("SET GLOBAL read_only = {value}"))
            .map_err(|e| e.to_string())?;
        Ok(((), detail.to_string()))
    })
}

fn shown(pos: &GtidPos) -> String {
    if pos.is_empty() {
        "nothing".to_string()
    } else {
        pos.to_string()
    }
}

fn nonempty(prefix: &str, text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("{prefix}{text}")
    }
}
