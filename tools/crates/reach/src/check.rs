//! `reach check`: what the topology implies from one vantage, every group at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::report::{Check, Kind, Report};
use rampart_probe::haproxy::StatsSource;
use rampart_probe::tls::TlsSetup;
use rampart_topology::{Host, Role, Topology};

use super::https::{self, Endpoint, Limits};
use super::profile::Profile;
use super::services::{self, AlertExpectations};
use super::sweep::{self, SweepSettings};
use super::vantage::Vantage;
use super::{block_on, certs, files, ports, Group, ReachError};

/// `settings.pkiDir`'s default (docs/contracts.md, "Certificates").
pub const DEFAULT_PKI_DIR: &str = rampart_cli::paths::PKI_DIR;

/// Options of `reach check`.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// `--from`: a topology host, `outside` or `admin`.
    pub from: String,
    /// Per-probe timeout; every probe runs concurrently, so a matrix costs about one.
    pub timeout: Duration,
    /// `--only`: run just these groups (all when empty).
    pub only: Vec<Group>,
    /// The rampart CA; default `<pki_dir>/ca.pem`.
    pub ca: Option<PathBuf>,
    /// Client identity for mTLS backends; default the `backend-client` files of the PKI
    /// directory when the vantage is the load balancer and they are readable.
    pub client: Option<(PathBuf, PathBuf)>,
    /// The vantage host's PKI directory (docs/contracts.md); `None`: the default
    /// [`DEFAULT_PKI_DIR`], whose absence skips the certificate checks instead of
    /// failing them.
    pub pki_dir: Option<PathBuf>,
    /// HAProxy stats: a socket path or a URL; default the stats page on the load
    /// balancer's `haproxyExporter` port.
    pub haproxy_stats: Option<String>,
    /// Prometheus' base URL; default the monitoring host's `prometheus` port.
    pub prometheus: Option<String>,
    /// The replica's mysqld exporter metrics URL; default its `mysqldExporter` port.
    pub mysqld_exporter: Option<String>,
    pub alerts: AlertExpectations,
    /// (web root, manifest) pairs to check.
    pub web_roots: Vec<(PathBuf, PathBuf)>,
    /// Requests of the rotation check.
    pub requests: usize,
    /// Replication lag above this fails (seconds).
    pub max_lag: f64,
    /// Served certificates with fewer days left fail.
    pub min_days: i64,
    /// How the `sweep` group sweeps.
    pub sweep: SweepSettings,
    /// The rendered nftables ruleset of the vantage host (`nftables/ruleset.nft`), for the
    /// `ruleset` group; `None`: that group is skipped.
    pub ruleset: Option<PathBuf>,
    /// The TLS profile of the `tls` group (lib/tls-profiles.json): `intermediate`, `modern`.
    pub tls_profile: String,
}

impl CheckOptions {
    /// Defaults for everything but the vantage.
    pub fn new(from: &str) -> CheckOptions {
        CheckOptions {
            from: from.to_string(),
            timeout: Duration::from_secs(1),
            only: Vec::new(),
            ca: None,
            client: None,
            pki_dir: None,
            haproxy_stats: None,
            prometheus: None,
            mysqld_exporter: None,
            alerts: AlertExpectations::default(),
            web_roots: Vec::new(),
            requests: 0,
            max_lag: 30.0,
            min_days: 14,
            sweep: SweepSettings::new(Duration::from_secs(1)),
            ruleset: None,
            tls_profile: "intermediate".into(),
        }
    }

    fn pki_dir(&self) -> PathBuf {
        self.pki_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PKI_DIR))
    }

    fn wants(&self, group: Group) -> bool {
        self.only.is_empty() || self.only.contains(&group)
    }
}

/// May the vantage reach `service` on `host` (by policy, or because it is that host)?
fn reaches(topology: &Topology, vantage: &Vantage, host: &Host, service: &str) -> bool {
    vantage.is(host) || topology.allows(vantage.source(), host, service)
}

fn not_reachable(
    group: Group,
    topology: &Topology,
    vantage: &Vantage,
    host: &Host,
    service: &str,
) -> Check {
    let port = topology.services.get(service).map_or(0, |s| s.port);
    Check::new(group.name(), &host.name, service).skipped(format!(
        "{port}/{service} on {} is not reachable from {} by policy",
        host.name, vantage.name
    ))
}

fn port(topology: &Topology, service: &str) -> u16 {
    topology.services.get(service).map_or(0, |s| s.port)
}

/// The HTTPS endpoints this vantage may reach: the load balancer's public entry, and
/// backends where the policy lets the vantage in.
fn endpoints(
    topology: &Topology,
    vantage: &Vantage,
    options: &CheckOptions,
) -> (Vec<Endpoint>, Vec<Check>) {
    let mut eps = Vec::new();
    let mut skipped = Vec::new();
    for lb in topology.hosts_with_role(Role::LoadBalancer) {
        if !reaches(topology, vantage, lb, "https") {
            skipped.push(not_reachable(Group::Https, topology, vantage, lb, "https"));
            continue;
        }
        let mut names = topology.public_names.clone();
        names.push(topology.fqdn(lb));
        let web: Vec<String> = topology
            .hosts_with_role(Role::Web)
            .map(|h| h.name.clone())
            .collect();
        let requests = if options.requests > 0 {
            options.requests
        } else {
            4 * web.len().max(1)
        };
        eps.push(Endpoint {
            target: lb.name.clone(),
            address: lb.address.into(),
            port: port(topology, "https"),
            names,
            path: "/".into(),
            redirect_port: reaches(topology, vantage, lb, "http").then(|| port(topology, "http")),
            hsts: true,
            rotation: Some((web, requests)),
        });
    }
    for web in topology.hosts_with_role(Role::Web) {
        if !reaches(topology, vantage, web, "backendHttps") {
            skipped.push(not_reachable(
                Group::Https,
                topology,
                vantage,
                web,
                "backendHttps",
            ));
            continue;
        }
        eps.push(Endpoint {
            target: web.name.clone(),
            address: web.address.into(),
            port: port(topology, "backendHttps"),
            names: vec![topology.fqdn(web), web.address.to_string()],
            path: "/".into(),
            redirect_port: None,
            hsts: false,
            rotation: None,
        });
    }
    (eps, skipped)
}

fn readable(path: &Path) -> bool {
    std::fs::File::open(path).is_ok()
}

fn tls_setup(vantage: &Vantage, options: &CheckOptions) -> Result<TlsSetup, ReachError> {
    let ca = options
        .ca
        .clone()
        .unwrap_or_else(|| options.pki_dir().join("ca.pem"));
    if options.ca.is_none() && !ca.exists() {
        return Err(ReachError::Input {
            what: "CA",
            path: ca,
            problem: "does not exist (no --ca given, so the PKI directory's ca.pem is used)".into(),
            hint: "pass the rampart CA with --ca FILE, or --only without https",
        });
    }
    let client = options.client.clone().or_else(|| {
        let is_lb = vantage.host.is_some_and(|h| h.has_role(Role::LoadBalancer));
        let cert = options.pki_dir().join("backend-client.pem");
        let key = options.pki_dir().join("backend-client.key");
        (is_lb && readable(&cert) && readable(&key)).then_some((cert, key))
    });
    super::tls_setup(&ca, client.as_ref())
}

/// The checks of a group that looks at the vantage host itself; skipped (with the
/// reason) when the vantage is not a topology host.
fn on_host(
    group: Group,
    vantage: &Vantage,
    checks: impl FnOnce(&Host) -> Vec<Check>,
) -> Vec<Check> {
    match vantage.host {
        Some(host) => checks(host),
        None => vec![
            Check::new(group.name(), &vantage.name, group.name()).skipped(format!(
                "{} is not a topology host: run reach on a host (--from <host>) to check its {}",
                vantage.name,
                group.name()
            )),
        ],
    }
}

/// The `ruleset` group: the live ruleset against the rendered file.
fn ruleset_checks(host: &Host, rendered: Option<&Path>) -> Vec<Check> {
    use rampart_probe::nft;
    let Some(path) = rendered else {
        return vec![Check::new("ruleset", &host.name, "ruleset").skipped(
            "no rendered ruleset to compare with: pass --ruleset <the host's rendered nftables/ruleset.nft>",
        )];
    };
    let unreadable = |e: nft::NftError| {
        vec![Check::new("ruleset", &host.name, "ruleset")
            .judged(false, "readable", "unreadable")
            .with_reason(format!(
                "{e} (reading rulesets needs root: nft and unshare)"
            ))
            .with_kind(Kind::Unreadable)]
    };
    let rendered = match nft::rendered(path) {
        Ok(r) => r,
        Err(e) => return unreadable(e),
    };
    match nft::live() {
        Ok(live) => super::ruleset::judge(&host.name, &live, &rendered, path),
        Err(e) => unreadable(e),
    }
}

/// Runs every wanted group; the order of the report is the order of the groups.
pub fn run(topology: &Topology, options: &CheckOptions) -> Result<Report, ReachError> {
    let started = Instant::now();
    let vantage = Vantage::resolve(topology, &options.from)?;
    vantage.ensure_local()?;
    let (endpoints, mut https_skipped) = if options.wants(Group::Https) {
        endpoints(topology, &vantage, options)
    } else {
        (Vec::new(), Vec::new())
    };
    let tls = if endpoints.is_empty() {
        None
    } else {
        Some(tls_setup(&vantage, options)?)
    };
    let profile = if options.wants(Group::Tls) {
        Some(Profile::named(&options.tls_profile)?)
    } else {
        None
    };
    // The tls group verifies chains when the CA is readable, and says so when it is not.
    let anchors = options
        .ca
        .clone()
        .or_else(|| Some(options.pki_dir().join("ca.pem")))
        .and_then(|ca| std::fs::read(ca).ok());
    // Manifests are input: a malformed one stops the run before anything is probed.
    let mut file_checks = Vec::new();
    if options.wants(Group::Files) {
        for (root, manifest) in &options.web_roots {
            file_checks.extend(files::check(root, manifest)?);
        }
    }
    let timeout = options.timeout;
    let limits = Limits {
        timeout,
        min_days: options.min_days,
    };

    // Two phases. First every light group at once (a few requests each, some timed:
    // rotation, HSTS); then the heavy ones, the sweep (on threads of its own, or a runtime
    // of its own for connect probes) beside the TLS profile scans, so their packets and
    // handshakes never delay the light groups' answers past their timeout. When the sweep
    // runs, the policy matrix is read from its answers instead of being probed twice.
    let sweep_hosts = sweep::targets(topology, &vantage);
    let sweeping = options.wants(Group::Sweep);
    let checks = block_on(async {
        let mut out = Vec::new();
        let lb = topology.hosts_with_role(Role::LoadBalancer).next();
        let monitoring = topology.hosts_with_role(Role::Monitoring).next();

        let ports_fut = async {
            if options.wants(Group::Ports) && !sweeping {
                ports::policy(topology, &vantage, timeout).await
            } else {
                Vec::new()
            }
        };
        // HAProxy before HTTPS (its healthy servers are what rotation must reach), both
        // alongside the other groups.
        let lb_fut = async {
            let mut haproxy_checks = Vec::new();
            let mut healthy: Option<Vec<String>> = None;
            if options.wants(Group::Haproxy) {
                if let Some(lb) = lb {
                    let source = match &options.haproxy_stats {
                        Some(s) => Some(StatsSource::parse(s)),
                        None => reaches(topology, &vantage, lb, "haproxyExporter").then(|| {
                            StatsSource::Url(format!(
                                "http://{}:{}/stats;csv",
                                lb.address,
                                port(topology, "haproxyExporter")
                            ))
                        }),
                    };
                    match source {
                        Some(source) => {
                            let (checks, h) = services::haproxy(&lb.name, &source, timeout).await;
                            haproxy_checks = checks;
                            healthy = h;
                        }
                        None => haproxy_checks.push(not_reachable(
                            Group::Haproxy,
                            topology,
                            &vantage,
                            lb,
                            "haproxyExporter",
                        )),
                    }
                }
            }

            let mut out = Vec::new();
            if let Some(tls) = &tls {
                for mut ep in endpoints.clone() {
                    if let (Some(h), Some((backends, _))) = (&healthy, ep.rotation.as_mut()) {
                        backends.retain(|b| h.contains(b));
                    }
                    out.push(ep);
                }
                let results =
                    super::join_all(out.iter().map(|ep| https::endpoint(tls, ep, limits))).await;
                return (haproxy_checks, results.into_iter().flatten().collect());
            }
            (haproxy_checks, Vec::new())
        };
        let prometheus_base = |mon: &Host| {
            options.prometheus.clone().unwrap_or_else(|| {
                format!("http://{}:{}", mon.address, port(topology, "prometheus"))
            })
        };
        let prometheus_fut = async {
            let mut out = Vec::new();
            let Some(mon) = monitoring else { return out };
            let may =
                options.prometheus.is_some() || reaches(topology, &vantage, mon, "prometheus");
            let base = prometheus_base(mon);
            if options.wants(Group::Prometheus) {
                if may {
                    out.extend(services::prometheus_targets(&mon.name, &base, timeout).await);
                } else {
                    out.push(not_reachable(
                        Group::Prometheus,
                        topology,
                        &vantage,
                        mon,
                        "prometheus",
                    ));
                }
            }
            if options.wants(Group::Alerts) {
                if may {
                    out.extend(services::alerts(&mon.name, &base, &options.alerts, timeout).await);
                } else {
                    out.push(not_reachable(
                        Group::Alerts,
                        topology,
                        &vantage,
                        mon,
                        "prometheus",
                    ));
                }
            }
            out
        };
        let replication_fut = async {
            let mut out = Vec::new();
            if !options.wants(Group::Replication) {
                return out;
            }
            for replica in topology.hosts_with_role(Role::DatabaseReplica) {
                let url = match &options.mysqld_exporter {
                    Some(u) => Some(u.clone()),
                    None => reaches(topology, &vantage, replica, "mysqldExporter").then(|| {
                        format!(
                            "http://{}:{}/metrics",
                            replica.address,
                            port(topology, "mysqldExporter")
                        )
                    }),
                };
                match url {
                    Some(url) => out.extend(
                        services::replication(&replica.name, &url, options.max_lag, timeout).await,
                    ),
                    None => out.push(not_reachable(
                        Group::Replication,
                        topology,
                        &vantage,
                        replica,
                        "mysqldExporter",
                    )),
                }
            }
            out
        };
        let (ports_checks, (haproxy_checks, https_checks), prometheus_checks, replication_checks) =
            tokio::join!(ports_fut, lb_fut, prometheus_fut, replication_fut);
        out.extend(ports_checks);
        out.extend(https_checks);
        out.append(&mut https_skipped);
        out.extend(haproxy_checks);
        out.extend(prometheus_checks);
        out.extend(replication_checks);
        out
    })?;
    let (swept, tls_checks) = std::thread::scope(|scope| {
        let sweeper =
            sweeping.then(|| scope.spawn(|| sweep::run(&sweep_hosts, &vantage, &options.sweep)));
        let tls_checks = block_on(async {
            match &profile {
                Some(p) => {
                    super::tls::check(topology, &vantage, p, anchors.as_deref(), timeout).await
                }
                None => Vec::new(),
            }
        });
        let swept = sweeper.map(|handle| {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        (swept, tls_checks)
    });
    let mut checks = checks;
    // TLS lines before the HTTPS ones of the same host (the order the report reads best).
    checks.splice(0..0, tls_checks?);
    if let Some(swept) = swept {
        let swept = swept?;
        let mut from_sweep = Vec::new();
        if options.wants(Group::Ports) {
            from_sweep.extend(ports::policy_from_sweep(topology, &vantage, &swept));
        }
        from_sweep.extend(sweep::judge(
            topology,
            &vantage,
            &sweep_hosts,
            &swept,
            options.wants(Group::Ports),
        ));
        // Port lines first, as when the policy is probed on its own.
        from_sweep.append(&mut checks);
        checks = from_sweep;
    }
    if options.wants(Group::Listeners) {
        checks.extend(on_host(Group::Listeners, &vantage, |host| {
            match rampart_probe::sockets::listeners() {
                Ok(listeners) => super::listeners::judge(topology, host, &listeners),
                Err(e) => vec![Check::new("listeners", &host.name, "sockets")
                    .judged(false, "the socket tables", "unreadable")
                    .with_reason(e.to_string())
                    .with_kind(Kind::Unreadable)],
            }
        }));
    }
    if options.wants(Group::Ruleset) {
        checks.extend(on_host(Group::Ruleset, &vantage, |host| {
            ruleset_checks(host, options.ruleset.as_deref())
        }));
    }
    if options.wants(Group::Certificates) {
        match vantage.host {
            Some(host) if options.pki_dir.is_none() && !Path::new(DEFAULT_PKI_DIR).is_dir() => {
                checks.push(
                    Check::new("certificates", &host.name, "pki").skipped(format!(
                        "no PKI directory at {DEFAULT_PKI_DIR}; pass --pki-dir DIR"
                    )),
                )
            }
            Some(host) => checks.extend(certs::check(host, &options.pki_dir())),
            None => checks.push(
                Check::new("certificates", &vantage.name, "pki").skipped(format!(
                    "{} is not a topology host and holds no rampart certificates",
                    vantage.name
                )),
            ),
        }
    }
    checks.extend(file_checks);
    // Grouped by host in topology order (stable: groups keep their order within a host);
    // web roots and other targets come last.
    checks.sort_by_key(|c| {
        topology
            .hosts
            .iter()
            .position(|h| h.name == c.target)
            .unwrap_or(usize::MAX)
    });
    Ok(Report::new(
        "check",
        Some(&vantage.name),
        checks,
        started.elapsed().as_secs_f64(),
    ))
}
