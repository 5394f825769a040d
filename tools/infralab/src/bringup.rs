//! The steps of `infralab up` after the fabric: files, certificates, secrets, firewalls,
//! daemons, then the verdict of `reach` from every vantage.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rampart_lab::daemons::{self, Daemon};
use rampart_lab::render;
use rampart_lab::state::PkiDirs;
use rampart_lab::{self as lab, firewall, secrets, Lab};
use rampart_topology::{Host, Role};

use crate::paths::{flake_dir, sibling};
use crate::progress::Progress;

/// How long any one daemon may take to answer.
const READY_LIMIT: Duration = Duration::from_secs(30);

fn hosts_with(lab: &Lab, role: Role) -> Vec<Host> {
    lab.topology.hosts_with_role(role).cloned().collect()
}

/// Runs every step after the fabric; returns whether `reach` found everything as declared.
pub fn run(lab: &mut Lab, progress: &Progress) -> Result<bool> {
    let flake = flake_dir()?;
    let topology_json = std::fs::read_to_string(&lab.record().topology)
        .with_context(|| format!("cannot read {}", lab.record().topology.display()))?;

    let settings = progress.step("render configuration", || {
        let (settings, count) = render_files(lab, &flake, &topology_json, render::Profile::Lab)?;
        anyhow::Ok((
            settings,
            format!("{count} files from nix eval .#lib.render"),
        ))
    })?;

    let pki = lab.pki();
    progress.step("certificates", || {
        let n = certificates(lab, &pki)?;
        anyhow::Ok(((), format!("{n} files from certtool issue")))
    })?;

    let secrets = progress.step("secrets", || {
        let (secrets, files) = write_secrets(lab)?;
        anyhow::Ok((
            secrets,
            format!("{files} files as lib.secrets lists them, random, mode 0600"),
        ))
    })?;

    progress.step("site", || {
        let files = site(lab, &flake)?;
        anyhow::Ok((
            (),
            format!("{files} files of site/ on every web host, its manifest on every host"),
        ))
    })?;

    // Each firewall goes in before that host's daemons: turning conntrack on under open
    // connections drops their packets (a replica stalls while claiming to run).
    for host in lab.topology.hosts.clone() {
        progress.step(&format!("firewall {}", host.name), || {
            let d = lab.host_dirs(&host.name);
            let ruleset = daemons::rendered(&d, "nftables/ruleset.nft")?;
            let ns = lab.namespace(&host.name);
            firewall::check(&ns, &ruleset)?;
            firewall::load(&ns, &ruleset)?;
            anyhow::Ok(((), "nft -f nftables/ruleset.nft".to_string()))
        })?;
    }

    // Prometheus discovers its targets about 5 s after it starts: start the monitoring
    // host and every node exporter first, so that wait overlaps the database set-up.
    let t = lab.topology.clone();
    let mut early = Vec::new();
    for host in &t.hosts {
        let d = lab.host_dirs(&host.name);
        // Every host is an etcd member; the cluster forms once a majority has started.
        early.push(daemons::etcd(&t, host, &d)?);
        early.push(daemons::node_exporter(&t, host, &d)?);
        if t.services.contains_key("ssh") {
            early.push(daemons::sshd(&t, host, &d)?);
        }
        if host.has_role(Role::Monitoring) {
            early.push(daemons::webhook(&t, host, &d, &std::env::current_exe()?)?);
            early.push(daemons::alertmanager(&t, host, &d)?);
            early.push(daemons::prometheus(&t, host, &d)?);
            early.push(daemons::blackbox_exporter(&t, host, &d)?);
        }
    }
    let mut pending = launch(lab, early)?;
    etcd_healthy(lab, progress)?;
    databases(lab, progress, &secrets)?;
    failover_agents(lab, progress)?;
    pending.extend(launch(lab, services(lab, &settings, &secrets)?)?);
    wait_for(lab, progress, pending)?;
    monitoring_ready(lab, progress)?;
    backends_up(lab, progress)?;
    let healthy = crate::reach::verdicts(lab, progress, &pki)?;
    // From now on reach runs on every host as the NixOS timer runs it.
    let timers = lab
        .topology
        .hosts
        .iter()
        .map(|h| crate::reach::timer(lab, &pki, &h.name))
        .collect::<Result<Vec<_>>>()?;
    start_together(lab, progress, timers)?;
    Ok(healthy)
}

/// Renders every node's files with `profile` into its directories (created here); returns
/// the settings the lab needs and how many files were written.
pub fn render_files(
    lab: &Lab,
    flake: &Path,
    topology_json: &str,
    profile: render::Profile,
) -> Result<(LabSettings, usize)> {
    let hosts: Vec<&str> = lab.nodes.iter().map(|n| n.name.as_str()).collect();
    let settings = render::settings(&lab.state, &hosts, profile, &serde_json::json!({}));
    let rendered = render::render(flake, topology_json, &settings, haproxy_connection_cap())?;
    let mut count = 0;
    for node in &lab.nodes {
        let d = lab.host_dirs(&node.name);
        d.create()?;
        if let Some(files) = rendered.files.get(&node.name) {
            count += render::write_files(&d, files)?;
        }
    }
    Ok((LabSettings::from_defaults(&rendered.settings)?, count))
}

/// The static site as a deployment builds it: the manifest of the repository's site/ (its
/// NAR hash and each file's SHA-256, by the code `reach` checks it with, as the NixOS
/// module writes it for the store path) on every host, and a copy of the files on each web
/// host, where nginx serves them. Returns the number of files.
pub fn site(lab: &Lab, flake: &Path) -> Result<usize> {
    let source = flake.join("site");
    let built = lab.state.root().join("site.manifest");
    let files = rampart_reach::files::write_manifest(&source, &built)?;
    for host in &lab.topology.hosts {
        let d = lab.host_dirs(&host.name);
        std::fs::copy(&built, &d.site_manifest)
            .with_context(|| format!("cannot write {}", d.site_manifest.display()))?;
        if host.has_role(Role::Web) {
            copy_tree(&source, &d.site)?;
        }
    }
    Ok(files)
}

/// Replaces `to` with a copy of the directory `from` (files and directories only).
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("cannot remove {}", to.display()))?;
    }
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let entries =
        std::fs::read_dir(from).with_context(|| format!("cannot list {}", from.display()))?;
    for entry in entries {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| {
                format!(
                    "cannot copy {} to {}",
                    entry.path().display(),
                    target.display()
                )
            })?;
        }
    }
    Ok(())
}

/// Fresh random secrets, written to each host exactly as its list of `lib.secrets` (rendered
/// with its files) says, one value per name across hosts (a deployment shares them);
/// returns the values and how many files were written.
pub fn write_secrets(lab: &Lab) -> Result<(BTreeMap<String, String>, usize)> {
    let lists = lab
        .topology
        .hosts
        .iter()
        .map(|host| secrets::list(&lab.host_dirs(&host.name)))
        .collect::<Result<Vec<_>, _>>()?;
    let names: std::collections::BTreeSet<&str> = lists
        .iter()
        .flat_map(|l| l.keys().map(String::as_str))
        .collect();
    let values = secrets::generate(names.iter().copied())?;
    let mut files = 0;
    for (host, list) in lab.topology.hosts.iter().zip(&lists) {
        secrets::write(&lab.host_dirs(&host.name).secrets, &values, list)?;
        files += list.len();
    }
    Ok((values, files))
}

/// HAProxy refuses to start when it cannot have two descriptors per `maxconn` connection.
/// Where the open-file limit cannot be raised (a container), the lab caps `maxconn` to fit
/// (a lower rendered value stays).
fn haproxy_connection_cap() -> Option<u64> {
    let limit = lab::process::open_files_limit();
    (limit < 1 << 16).then(|| limit.saturating_sub(1000) / 2)
}

/// `certtool init-ca` into `ca_dir` (unless it already holds a CA), then `certtool issue`
/// for the lab's topology into `out`, with `extra` arguments (e.g. a validity).
pub fn issue(lab: &Lab, ca_dir: &Path, out: &Path, extra: &[&str]) -> Result<()> {
    let certtool = sibling("certtool")?;
    let topology = &lab.record().topology;
    if !ca_dir.join("ca.pem").exists() {
        lab::run(
            Command::new(&certtool)
                .arg("init-ca")
                .arg("--topology")
                .arg(topology)
                .arg("--out")
                .arg(ca_dir),
        )?;
    }
    lab::run(
        Command::new(&certtool)
            .arg("issue")
            .arg("--topology")
            .arg(topology)
            .arg("--ca")
            .arg(ca_dir)
            .arg("--out")
            .arg(out)
            .args(extra),
    )?;
    Ok(())
}

/// The lab's CA and certificates, then each host's files into its PKI directory.
pub fn certificates(lab: &Lab, pki: &PkiDirs) -> Result<usize> {
    issue(lab, &pki.ca_dir, &pki.out, &[])?;
    let mut copied = 0;
    for host in &lab.topology.hosts {
        let d = lab.host_dirs(&host.name);
        copied += copy_dir(&pki.out.join(&host.name), &d.pki)?;
        std::fs::copy(pki.ca_cert(), d.pki.join("ca.pem")).with_context(|| {
            format!(
                "cannot copy {} to {}",
                pki.ca_cert().display(),
                d.pki.display()
            )
        })?;
        copied += 1;
    }
    Ok(copied)
}

fn copy_dir(from: &Path, to: &Path) -> Result<usize> {
    let mut n = 0;
    let entries = std::fs::read_dir(from).with_context(|| {
        format!(
            "certtool wrote no {} (expected one directory per host)",
            from.display()
        )
    })?;
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
            n += 1;
        }
    }
    Ok(n)
}

type Pending = Vec<(lab::process::Running, lab::process::Spec, lab::Ready)>;

/// Starts daemons without waiting for them.
fn launch(lab: &mut Lab, daemons: Vec<Daemon>) -> Result<Pending> {
    let mut launched = Vec::new();
    for d in daemons {
        let running = lab.launch(&d.spec)?;
        launched.push((running, d.spec, d.ready));
    }
    Ok(launched)
}

/// Waits for launched daemons together; one line per daemon, with the time it took.
fn wait_for(lab: &Lab, progress: &Progress, pending: Pending) -> Result<()> {
    let mut failures = Vec::new();
    for (spec, ready, outcome) in lab.wait_all(pending, READY_LIMIT) {
        match outcome {
            Ok(took) => progress.line("✔", &spec.what(), &ready_detail(&ready), took),
            Err(e) => {
                progress.line("✘", &spec.what(), "", Duration::ZERO);
                failures.push(e.to_string());
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("{}", failures.join("\n"))
    }
}

/// Starts daemons together and waits for all of them.
fn start_together(lab: &mut Lab, progress: &Progress, daemons: Vec<Daemon>) -> Result<()> {
    let pending = launch(lab, daemons)?;
    wait_for(lab, progress, pending)
}

fn ready_detail(ready: &lab::Ready) -> String {
    match ready {
        lab::Ready::Port(address) => format!("answers on {address}"),
        lab::Ready::Started => "running".into(),
    }
}

fn databases(lab: &mut Lab, progress: &Progress, secrets: &BTreeMap<String, String>) -> Result<()> {
    let mut db_hosts = hosts_with(lab, Role::DatabasePrimary);
    db_hosts.extend(hosts_with(lab, Role::DatabaseReplica));
    if db_hosts.is_empty() {
        return Ok(());
    }
    progress.step("mariadb-install-db", || {
        let first = lab.host_dirs(&db_hosts[0].name);
        daemons::mariadb_install(&first)?;
        for other in &db_hosts[1..] {
            daemons::mariadb_copy_datadir(&first, &lab.host_dirs(&other.name))?;
        }
        let names: Vec<&str> = db_hosts.iter().map(|h| h.name.as_str()).collect();
        anyhow::Ok(((), format!("{} (copied to the others)", names.join(", "))))
    })?;
    let daemons = db_hosts
        .iter()
        .map(|h| daemons::mariadb(&lab.topology, h, &lab.host_dirs(&h.name)))
        .collect::<Result<Vec<_>, _>>()?;
    start_together(lab, progress, daemons)?;
    // The primary first: its accounts replicate to the replica, which must not create
    // them itself (a second CREATE USER stops the replica's SQL thread, error 1396).
    for host in &db_hosts {
        progress.step(&format!("bootstrap SQL {}", host.name), || {
            let d = lab.host_dirs(&host.name);
            daemons::mariadb_bootstrap(&lab.namespace(&host.name), &d, secrets)?;
            anyhow::Ok(((), "mariadb/bootstrap.sql, secrets substituted".to_string()))
        })?;
    }
    Ok(())
}

/// The failover agent on every database host, then a wait (bounded) until one leads and
/// is writable: every database host starts read-only, and the application writes only to
/// the leader.
fn failover_agents(lab: &mut Lab, progress: &Progress) -> Result<()> {
    let mut db_hosts = hosts_with(lab, Role::DatabasePrimary);
    db_hosts.extend(hosts_with(lab, Role::DatabaseReplica));
    if db_hosts.is_empty() {
        return Ok(());
    }
    let binary = sibling("rampart-db")?;
    let topology_path = lab.record().topology.clone();
    let agents = db_hosts
        .iter()
        .map(|h| daemons::failover_agent(&topology_path, h, &lab.host_dirs(&h.name), &binary))
        .collect::<Result<Vec<_>, _>>()?;
    start_together(lab, progress, agents)?;
    progress.step("failover: a writable leader", || {
        let (leader, took) =
            crate::failover::wait_leader(lab, &db_hosts[0].name, None, READY_LIMIT * 2)?;
        anyhow::Ok((
            (),
            format!("{leader} leads after {:.1} s", took.as_secs_f64()),
        ))
    })
}

/// The daemons that need the databases: the application, nginx, the exporters of nginx
/// and MariaDB, and HAProxy (whose health checks go through nginx to the application).
fn services(
    lab: &Lab,
    settings: &LabSettings,
    secrets: &BTreeMap<String, String>,
) -> Result<Vec<Daemon>> {
    let t = &lab.topology;
    let mut all = Vec::new();
    for host in &t.hosts {
        let d = lab.host_dirs(&host.name);
        if host.has_role(Role::Web) {
            all.push(daemons::app(host, &d, &sibling("rampart-app")?)?);
            all.push(daemons::nginx(t, host, &d, &lab.namespace(&host.name))?);
            all.push(daemons::nginx_exporter(t, host, &d)?);
        }
        if host.is_database() {
            all.push(daemons::mysqld_exporter(
                t,
                host,
                &d,
                &settings.exporter_user,
                &secrets["exporter-db-password"],
            )?);
        }
        if host.has_role(Role::LoadBalancer) {
            all.push(daemons::haproxy(t, host, &d)?);
        }
    }
    Ok(all)
}

/// The one settings value the lab itself needs (the renderers' defaults): the mysqld
/// exporter's account, for its client file.
pub struct LabSettings {
    pub exporter_user: String,
}

impl LabSettings {
    fn from_defaults(settings: &serde_json::Value) -> Result<LabSettings> {
        Ok(LabSettings {
            exporter_user: settings["mariadb"]["exporterUser"]
                .as_str()
                .context("lib.settings.mariadb.exporterUser is not a string")?
                .to_string(),
        })
    }
}

/// Waits until the etcd cluster is healthy (every member follows one leader, a quorum
/// answers over TLS with a client certificate), asked from a database host with its
/// `etcd-client` certificate: the databases' failover agents need it before they start.
fn etcd_healthy(lab: &Lab, progress: &Progress) -> Result<()> {
    let Some(asker) = lab.topology.database_hosts().next() else {
        return Ok(());
    };
    progress.step("etcd cluster healthy", || {
        let health = daemons::wait_etcd_healthy(
            &lab.namespace(&asker.name),
            &lab.topology,
            &lab.host_dirs(&asker.name).pki,
            READY_LIMIT,
        )?;
        anyhow::Ok((
            (),
            format!(
                "{} members, leader {}, asked from {} over TLS",
                health.members.len(),
                health.leader.as_deref().unwrap_or("none"),
                asker.name
            ),
        ))
    })
}

/// Waits until Prometheus has scraped every target successfully.
/// HAProxy starts beside nginx and may check a backend before it listens: such a server
/// is DOWN until `rise` checks pass again. The verdict waits for every server UP, so it
/// judges the lab, not the race of its start.
fn backends_up(lab: &Lab, progress: &Progress) -> Result<()> {
    let Some(lb) = lab.topology.hosts_with_role(Role::LoadBalancer).next() else {
        return Ok(());
    };
    let socket = lab.host_dirs(&lb.name).run.join("haproxy/stats.sock");
    progress.step("every HAProxy backend UP", || {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let servers = rampart_lab::monitor::haproxy_servers(&socket)?;
            let down: Vec<String> = servers
                .iter()
                .filter(|s| s.status != "UP")
                .map(|s| format!("{} {} {}", s.server, s.status, s.check))
                .collect();
            if !servers.is_empty() && down.is_empty() {
                return anyhow::Ok(((), format!("{} servers", servers.len())));
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "HAProxy on {} still reports servers not UP after 30 s: {}",
                    lb.name,
                    down.join(", ")
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    })
}

fn monitoring_ready(lab: &Lab, progress: &Progress) -> Result<()> {
    let Some(monitor) = lab
        .topology
        .hosts_with_role(Role::Monitoring)
        .next()
        .cloned()
    else {
        return Ok(());
    };
    let port = lab
        .topology
        .services
        .get("prometheus")
        .map(|s| s.port)
        .unwrap_or(9090);
    let address = std::net::SocketAddr::from((monitor.address, port));
    let ns = lab.namespace(&monitor.name);
    progress.step("every scrape target up", || {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (up, total, down) = rampart_lab::monitor::targets(&ns, address)?;
            if total > 0 && up == total {
                return anyhow::Ok(((), format!("{total} targets")));
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "Prometheus on {} still reports targets down after 60 s: {}",
                    monitor.name,
                    down.join(", ")
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    })
}
