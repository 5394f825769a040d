//! `rampart-db fence HOST`, and the firewall half of promotion and rejoin.

use std::time::Instant;

use super::{set_read_only, Failover, Steps};
use crate::conn::DbHost;
use crate::fence::Action;
use crate::report::{OperationReport, Outcome};
use crate::DbError;

impl Failover<'_> {
    /// Fences `name`: `read_only=1` if it answers, and the firewall fence through the hook.
    pub fn fence(&self, name: &str) -> Result<OperationReport, DbError> {
        let started = Instant::now();
        let host = self.cluster.host(name)?.clone();
        let mut report = OperationReport::new("fence", name);
        let mut steps = Steps {
            report: &mut report,
        };
        let read_only = match self.open(&host) {
            Ok(mut session) => set_read_only(&mut steps, &mut session, true, "writes refused"),
            Err(e) => steps.run("read_only=1", name, || Err(e.to_string())),
        };
        let firewall = self.fence_firewall(&mut steps, &host);
        report.outcome = match (read_only.is_ok(), firewall) {
            (true, true) => Outcome::Done,
            (false, true) => {
                report.warnings.push(format!(
                    "{name} did not answer, so it is fenced by the firewall only: if its \
                     MariaDB comes back it is writable behind the fence"
                ));
                Outcome::Done
            }
            (true, false) => {
                report.reason = Some(format!(
                    "{name} is read-only but not firewall-fenced; configure --fence-hook"
                ));
                Outcome::Failed
            }
            (false, false) => {
                report.reason = Some(format!(
                    "{name} is neither read-only (it did not answer) nor firewall-fenced"
                ));
                Outcome::Failed
            }
        };
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Runs the fence hook for `host`; false (with a failed step) if there is none or it
    /// failed.
    pub(super) fn fence_firewall(&self, steps: &mut Steps<'_>, host: &DbHost) -> bool {
        self.firewall(steps, host, Action::Fence)
    }

    pub(super) fn firewall(&self, steps: &mut Steps<'_>, host: &DbHost, action: Action) -> bool {
        let name = match action {
            Action::Fence => "firewall fence",
            Action::Lift => "lift firewall fence",
        };
        steps
            .run(name, &host.name, || {
                let hook = self.settings.hook.as_ref().ok_or_else(|| {
                    "no fence hook configured (--fence-hook); skipped".to_string()
                })?;
                hook.run(action, &host.name, host.address, self.cluster.port)
                    .map_err(|e| e.to_string())?;
                Ok((
                    (),
                    match action {
                        Action::Fence => format!(
                            "table inet {} rejects {}",
                            crate::fence::TABLE,
                            self.address(host)
                        ),
                        Action::Lift => format!("table inet {} removed", crate::fence::TABLE),
                    },
                ))
            })
            .is_ok()
    }
}
