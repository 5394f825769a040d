//! What every scenario needs from the running lab: clients inside namespaces, the
//! monitoring host's APIs, HAProxy's view of its servers, the webhook's deliveries.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rampart::lab::daemons;
use rampart::lab::monitor::{self, ServerState};
use rampart::lab::webhook::{self, DeliveredAlert};
use rampart::lab::{process, Lab};
use rampart::topology::{Host, Role};

use crate::bringup::{dirs, Pki};
use crate::LabArgs;

pub struct Ctx {
    pub lab: Lab,
    pub pki: Pki,
    /// The first public name: what clients ask for.
    pub public_name: String,
    pub lb: Host,
    pub monitor: Host,
    pub prometheus: SocketAddr,
    pub deliveries: PathBuf,
}

impl Ctx {
    /// The lab recorded in the state directory; an error when there is none.
    pub fn open(args: &LabArgs) -> Result<Ctx> {
        let lab = crate::up::open(args)?.with_saved_record()?;
        if lab.record().processes.is_empty() {
            bail!(
                "no running lab in {} (got no processes in its record, expected the daemons of `infralab up`); run `infralab up` first",
                lab.state.root().display()
            );
        }
        let t = &lab.topology;
        let role = |role: Role| {
            t.hosts_with_role(role)
                .next()
                .cloned()
                .with_context(|| format!("the topology has no host with role {role}"))
        };
        let (lb, monitor) = (role(Role::LoadBalancer)?, role(Role::Monitoring)?);
        let prometheus = SocketAddr::from((monitor.address, service_port(&lab, "prometheus")?));
        let deliveries = daemons::deliveries(&dirs(&lab, &monitor.name));
        Ok(Ctx {
            pki: Pki::new(&lab),
            public_name: t.public_names[0].clone(),
            lb,
            monitor,
            prometheus,
            deliveries,
            lab,
        })
    }

    pub fn port(&self, service: &str) -> Result<u16> {
        service_port(&self.lab, service)
    }

    /// Runs a program inside a node's namespace and returns its output.
    pub fn exec(&self, node: &str, program: &str, args: &[&str]) -> Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", &self.lab.namespace(node), program])
            .args(args)
            .output()
            .with_context(|| format!("cannot run {program} in {}", self.lab.namespace(node)))
    }

    /// curl from a node, trusting only the rampart CA and resolving the public name to
    /// the load balancer.
    pub fn curl(&self, node: &str, args: &[&str]) -> Result<Output> {
        let ca = self.pki.ca_cert().display().to_string();
        let https = format!(
            "{}:{}:{}",
            self.public_name,
            self.port("https")?,
            self.lb.address
        );
        let http = format!(
            "{}:{}:{}",
            self.public_name,
            self.port("http")?,
            self.lb.address
        );
        let mut all = vec![
            "-sS",
            "--max-time",
            "5",
            "--cacert",
            &ca,
            "--resolve",
            &https,
            "--resolve",
            &http,
        ];
        all.extend_from_slice(args);
        self.exec(node, "curl", &all)
    }

    /// `https://<public name>/<path>`.
    pub fn public_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.public_name)
    }

    /// HAProxy's view of one backend server.
    pub fn server(&self, name: &str) -> Result<ServerState> {
        let socket = dirs(&self.lab, &self.lb.name)
            .run
            .join("haproxy/stats.sock");
        monitor::haproxy_servers(&socket)?
            .into_iter()
            .find(|s| s.server == name)
            .with_context(|| format!("HAProxy has no server {name:?} (expected one per web host)"))
    }

    /// Waits until HAProxy reports `name` in `status` (UP/DOWN); returns the state and
    /// how long it took.
    pub fn wait_server(
        &self,
        name: &str,
        status: &str,
        limit: Duration,
    ) -> Result<(ServerState, Duration)> {
        let start = Instant::now();
        loop {
            let state = self.server(name)?;
            if state.status == status {
                return Ok((state, start.elapsed()));
            }
            if start.elapsed() > limit {
                bail!(
                    "HAProxy still reports server {name} as {} {} after {:.0} s (expected {status})",
                    state.status,
                    state.check,
                    limit.as_secs_f64()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Alerts the webhook received since `since_ms` (milliseconds since the epoch).
    pub fn delivered_since(&self, since_ms: u64) -> Result<Vec<DeliveredAlert>> {
        Ok(webhook::delivered(&self.deliveries)?
            .into_iter()
            .filter(|a| a.received_ms >= since_ms)
            .collect())
    }

    /// Waits until the webhook receives `alert` firing (after `since_ms`), up to `limit`;
    /// returns the delivery.
    pub fn wait_delivery(
        &self,
        alert: &str,
        since_ms: u64,
        limit: Duration,
    ) -> Result<DeliveredAlert> {
        let start = Instant::now();
        loop {
            if let Some(found) = self
                .delivered_since(since_ms)?
                .into_iter()
                .find(|a| a.name == alert && a.status == "firing")
            {
                return Ok(found);
            }
            if start.elapsed() > limit {
                let firing = monitor::alerts(
                    &self.lab.namespace(&self.monitor.name),
                    self.prometheus,
                    true,
                )
                .map(|a| a.join(", "))
                .unwrap_or_else(|e| e.to_string());
                bail!(
                    "no {alert} reached the webhook within {:.0} s (Prometheus has pending or firing: {})",
                    limit.as_secs_f64(),
                    if firing.is_empty() { "none" } else { &firing }
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Alerts Prometheus has pending or firing now.
    pub fn active_alerts(&self) -> Result<Vec<String>> {
        Ok(monitor::alerts(
            &self.lab.namespace(&self.monitor.name),
            self.prometheus,
            true,
        )?)
    }

    /// Sends SIGHUP to a recorded daemon (nginx reloads its configuration and certificates).
    pub fn reload(&self, name: &str, node: &str) -> Result<()> {
        let record = self
            .lab
            .record()
            .processes
            .iter()
            .find(|p| p.name == name && p.node == node)
            .with_context(|| format!("the lab has no {name} on {node} in its record"))?;
        if !process::is_alive(record) {
            bail!(
                "{name} on {node} (pid {}) is not running; see {}",
                record.pid,
                record.log.display()
            );
        }
        process::signal(record.pid, process::Signal::SIGHUP)?;
        Ok(())
    }
}

fn service_port(lab: &Lab, service: &str) -> Result<u16> {
    lab.topology
        .services
        .get(service)
        .map(|s| s.port)
        .with_context(|| {
            format!("the topology has no service {service:?}, which the scenarios need")
        })
}

/// Now, in milliseconds since the Unix epoch (the webhook's clock).
pub fn now_ms() -> u64 {
    webhook::now_ms()
}
