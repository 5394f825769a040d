//! What every scenario needs from the running lab: clients inside namespaces, the
//! monitoring host's APIs, HAProxy's view of its servers, the webhook's deliveries.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rampart_lab::daemons::{self, MariadbPaths};
use rampart_lab::load::Load;
use rampart_lab::monitor::{self, ServerState};
use rampart_lab::webhook::{self, DeliveredAlert};
use rampart_lab::{process, Lab};
use rampart_topology::{Host, Role};

use crate::lab_args::LabArgs;
use rampart_lab::state::PkiDirs;

pub struct Ctx {
    pub lab: Lab,
    pub pki: PkiDirs,
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
        let lab = args.open()?.with_saved_record()?;
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
        let deliveries = daemons::deliveries(&lab.host_dirs(&monitor.name));
        Ok(Ctx {
            pki: lab.pki(),
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
        let socket = self
            .lab
            .host_dirs(&self.lb.name)
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
            // A HAProxy that is just starting may reset the stats socket: ask again.
            let last = match self.server(name) {
                Ok(state) if state.status == status => return Ok((state, start.elapsed())),
                Ok(state) => format!("reports server {name} as {} {}", state.status, state.check),
                Err(e) => format!("does not answer ({e:#})"),
            };
            if start.elapsed() > limit {
                bail!(
                    "HAProxy still {last} after {:.0} s (expected {status})",
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

    /// Waits until Prometheus has `alert` pending or firing, up to `limit`.
    pub fn wait_active(&self, alert: &str, limit: Duration) -> Result<()> {
        let start = Instant::now();
        while !self.active_alerts()?.iter().any(|a| a == alert) {
            if start.elapsed() > limit {
                bail!(
                    "{alert} is not active in Prometheus {:.0} s after the fault",
                    limit.as_secs_f64()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Waits until Prometheus has none of `alerts` pending or firing, up to `limit`: a
    /// scenario starts its fault from a clean slate, since an alert still firing from an
    /// earlier fault is not notified again.
    pub fn wait_quiet(&self, alerts: &[&str], limit: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let active = self.active_alerts()?;
            let still: Vec<&str> = alerts
                .iter()
                .copied()
                .filter(|a| active.iter().any(|x| x == a))
                .collect();
            if still.is_empty() {
                return Ok(());
            }
            if start.elapsed() > limit {
                bail!(
                    "{} still active in Prometheus after {:.0} s, before the fault",
                    still.join(", "),
                    limit.as_secs_f64()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The web hosts, in topology order (at least one: the topology guarantees it).
    pub fn web_hosts(&self) -> Vec<Host> {
        self.lab
            .topology
            .hosts_with_role(Role::Web)
            .cloned()
            .collect()
    }

    /// wrk from `outside` through the load balancer, with a fixed duration.
    pub fn load(&self, connections: u32, seconds: u64) -> Result<Load> {
        Ok(Load {
            namespace: self.lab.namespace("outside"),
            url: format!("https://{}:{}/", self.lb.address, self.port("https")?),
            host_header: Some(self.public_name.clone()),
            threads: 2,
            connections,
            duration: Duration::from_secs(seconds),
        })
    }

    /// Gives `host`'s nginx the backend certificate and key found in `from`, keeping the
    /// real ones aside (once) for [`Ctx::restore_backend_certificate`], and reloads nginx.
    pub fn replace_backend_certificate(&self, host: &str, from: &Path) -> Result<()> {
        let pki = self.lab.host_dirs(host).pki;
        let saved = self.saved_certificates(host);
        if !saved.join(BACKEND_FILES[0]).exists() {
            std::fs::create_dir_all(&saved)?;
            for file in BACKEND_FILES {
                std::fs::copy(pki.join(file), saved.join(file))?;
            }
        }
        for file in BACKEND_FILES {
            std::fs::copy(from.join(file), pki.join(file)).with_context(|| {
                format!("cannot install {file} from {} on {host}", from.display())
            })?;
        }
        self.reload("nginx", host)
    }

    /// Puts `host`'s real backend certificate back and reloads nginx.
    pub fn restore_backend_certificate(&self, host: &str) -> Result<()> {
        self.replace_backend_certificate(host, &self.saved_certificates(host))
    }

    fn saved_certificates(&self, host: &str) -> PathBuf {
        self.lab.state.root().join("saved-certificates").join(host)
    }

    /// Written once a scenario has run against this lab: the deliveries before it are
    /// bring-up's alone only while it is absent.
    pub fn scenarios_ran_marker(&self) -> PathBuf {
        self.lab.state.root().join("scenarios-ran")
    }

    /// Alerts Prometheus has pending or firing now.
    pub fn active_alerts(&self) -> Result<Vec<String>> {
        Ok(monitor::alerts(
            &self.lab.namespace(&self.monitor.name),
            self.prometheus,
            true,
        )?)
    }

    /// Runs SQL as root over a host's MariaDB socket; the tab-separated rows.
    pub fn sql(&self, host: &str, statement: &str) -> Result<String> {
        let out = MariadbPaths::new(&self.lab.host_dirs(host))
            .client(&self.lab.namespace(host))
            .args(["-N", "-B", "-e", statement])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "{host}: `{statement}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Sends SIGHUP to a recorded daemon (nginx reloads its configuration and certificates).
    pub fn reload(&self, name: &str, node: &str) -> Result<()> {
        Ok(self.lab.signal(name, node, process::Signal::SIGHUP)?)
    }

    /// Starts `host`'s nginx again as `infralab up` started it (a scenario stopped it),
    /// waiting up to `limit` for it to answer.
    pub fn start_nginx(&mut self, host: &Host, limit: Duration) -> Result<()> {
        let nginx = daemons::nginx(
            &self.lab.topology,
            host,
            &self.lab.host_dirs(&host.name),
            &self.lab.namespace(&host.name),
        )?;
        self.lab.start(&nginx.spec, &nginx.ready, limit)?;
        Ok(())
    }

    /// Starts `host`'s application again, supervised, as `infralab up` started it.
    pub fn start_app(&mut self, host: &Host, limit: Duration) -> Result<()> {
        let app = daemons::app(
            host,
            &self.lab.host_dirs(&host.name),
            &crate::paths::sibling("rampart-app")?,
        )?;
        self.lab.start(&app.spec, &app.ready, limit)?;
        Ok(())
    }
}

/// A web host's backend certificate files (docs/contracts.md, "Certificates").
const BACKEND_FILES: [&str; 2] = ["backend.pem", "backend.key"];

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
