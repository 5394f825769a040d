//! A real etcd cluster for tests: one member per host of the shipped topology, on
//! loopback addresses of their own, with certificates issued by rampart's PKI code.
//!
//! Each [`TestCluster`] moves the shipped topology to a /24 of `127.0.0.0/8` picked from
//! the process id (so concurrent test processes never share an address: nextest runs
//! every test in its own process), declares etcd's services if the topology does not
//! yet, issues the topology's certificates with `rampart_pki::issue` (the CA's name
//! constraints then admit those addresses), and runs Debian's `etcd` binary for every
//! host with TLS and client-certificate authentication on both ports (without the peer
//! SAN-to-source-address check, which loopback cannot satisfy). Members can be
//! killed, paused, resumed and restarted; dropping the cluster kills what still runs and
//! deletes its directory.
//!
//! ```no_run
//! # async fn example() {
//! use rampart_consensus::Consensus;
//! use rampart_lab::local::etcd::TestCluster;
//! let mut cluster = TestCluster::start().expect("etcd cluster");
//! let etcd = Consensus::connect(&cluster.client_config("web1")).await.unwrap();
//! etcd.put("/k", "v", None).await.unwrap();
//! cluster.kill("lb"); // two of three: still a quorum
//! # }
//! ```

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rampart_topology::Topology;
use serde_json::{json, Value};

use rampart_consensus::{
    cluster_health, ClientConfig, ClusterHealth, CLIENT_SERVICE, METRICS_SERVICE, PEER_SERVICE,
};

/// How long [`TestCluster::start`] waits for every member to be healthy.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// etcd's timing in tests: its defaults, which suit a LAN.
pub const HEARTBEAT_MS: u64 = 100;
pub const ELECTION_MS: u64 = 1000;

struct TestMember {
    name: String,
    address: Ipv4Addr,
    pki: PathBuf,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// Three (or as many as the topology has hosts) running etcd members.
pub struct TestCluster {
    dir: tempfile::TempDir,
    topology: Topology,
    members: Vec<TestMember>,
}

impl TestCluster {
    /// Starts every member and waits until the cluster is healthy.
    pub fn start() -> Result<TestCluster, String> {
        let dir = tempfile::Builder::new()
            .prefix("rampart-etcd-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let topology = loopback_topology(dir.path())?;
        issue_certificates(&topology, dir.path())?;
        let members = topology
            .hosts
            .iter()
            .map(|host| {
                let root = dir.path().join(&host.name);
                TestMember {
                    name: host.name.clone(),
                    address: host.address,
                    pki: root.join("pki"),
                    data: root.join("data"),
                    log: root.join("etcd.log"),
                    child: None,
                }
            })
            .collect();
        let mut cluster = TestCluster {
            dir,
            topology,
            members,
        };
        for member in &mut cluster.members {
            copy_pki(&cluster.dir.path().join("issued"), member)?;
        }
        let names: Vec<String> = cluster.members.iter().map(|m| m.name.clone()).collect();
        for name in &names {
            cluster.spawn(name)?;
        }
        cluster.wait_healthy(START_TIMEOUT)?;
        Ok(cluster)
    }

    /// The topology the members run (the shipped one on loopback addresses).
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The PKI directory of `host` (`ca.pem`, its certificates and keys).
    pub fn pki_dir(&self, host: &str) -> PathBuf {
        self.member(host).pki.clone()
    }

    /// A client of every member with `host`'s `etcd-client` identity (a database host's).
    pub fn client_config(&self, host: &str) -> ClientConfig {
        self.client_config_as(host, "etcd-client")
    }

    /// A client of every member with the certificate `<stem>` of `host` (e.g. an
    /// `etcd-server` certificate, or one that etcd should refuse).
    pub fn client_config_as(&self, host: &str, stem: &str) -> ClientConfig {
        let mut config = ClientConfig::from_topology(&self.topology, &self.pki_dir(host), stem)
            .expect("the test topology declares etcd's client port");
        config.request_timeout = Duration::from_secs(2);
        config
    }

    /// The log file of `host`'s etcd (for failure messages).
    pub fn log(&self, host: &str) -> String {
        std::fs::read_to_string(&self.member(host).log).unwrap_or_default()
    }

    /// Kills `host`'s etcd (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self, host: &str) {
        if let Some(mut child) = self.member_mut(host).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Pauses `host`'s etcd (SIGSTOP): its sockets stay open, it answers nothing.
    pub fn pause(&mut self, host: &str) {
        self.signal(host, Signal::SIGSTOP);
    }

    /// Resumes a paused member (SIGCONT).
    pub fn resume(&mut self, host: &str) {
        self.signal(host, Signal::SIGCONT);
    }

    /// Starts `host`'s etcd again on its data directory (after [`TestCluster::kill`]).
    pub fn restart(&mut self, host: &str) -> Result<(), String> {
        self.kill(host);
        self.spawn(host)
    }

    /// Waits until every running member is healthy and a quorum answers.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<ClusterHealth, String> {
        let config = self.client_config(self.database_host());
        let deadline = Instant::now() + timeout;
        loop {
            let health = block_on(cluster_health(&config));
            let running: Vec<&str> = self
                .members
                .iter()
                .filter(|m| m.child.is_some())
                .map(|m| m.name.as_str())
                .collect();
            let ok = health.quorum
                && health
                    .members
                    .iter()
                    .filter(|m| running.contains(&m.name.as_str()))
                    .all(|m| m.healthy());
            if ok {
                return Ok(health);
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .members
                    .iter()
                    .map(|m| format!("--- {} ---\n{}", m.name, tail(&self.log(&m.name), 30)))
                    .collect();
                return Err(format!(
                    "the etcd test cluster is not healthy after {timeout:?}: {health:?}\n{}",
                    logs.join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A host whose `etcd-client` certificate exists (the first database host).
    pub fn database_host(&self) -> &str {
        let pki = self.dir.path().join("issued");
        self.members
            .iter()
            .map(|m| m.name.as_str())
            .find(|name| pki.join(name).join("etcd-client.pem").exists())
            .expect("the topology has a database host")
    }

    fn member(&self, host: &str) -> &TestMember {
        self.members
            .iter()
            .find(|m| m.name == host)
            .unwrap_or_else(|| panic!("no etcd member {host} in the test cluster"))
    }

    fn member_mut(&mut self, host: &str) -> &mut TestMember {
        self.members
            .iter_mut()
            .find(|m| m.name == host)
            .unwrap_or_else(|| panic!("no etcd member {host} in the test cluster"))
    }

    fn signal(&mut self, host: &str, signal: Signal) {
        if let Some(child) = &self.member(host).child {
            let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
            kill(pid, signal).unwrap_or_else(|e| panic!("{signal} to etcd of {host}: {e}"));
        }
    }

    fn spawn(&mut self, host: &str) -> Result<(), String> {
        let port = |service: &str| self.topology.services[service].port;
        let (client, peer, metrics) = (
            port(CLIENT_SERVICE),
            port(PEER_SERVICE),
            port(METRICS_SERVICE),
        );
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=https://{}:{peer}", m.name, m.address))
            .collect();
        let initial = initial.join(",");
        let member = self.member_mut(host);
        let pki = |file: &str| member.pki.join(file).display().to_string();
        let log = std::fs::File::create(&member.log)
            .map_err(|e| format!("cannot create {}: {e}", member.log.display()))?;
        let a = member.address;
        let args = [
            format!("--name={}", member.name),
            format!("--data-dir={}", member.data.display()),
            format!("--listen-client-urls=https://{a}:{client}"),
            format!("--advertise-client-urls=https://{a}:{client}"),
            format!("--listen-peer-urls=https://{a}:{peer}"),
            format!("--initial-advertise-peer-urls=https://{a}:{peer}"),
            format!("--listen-metrics-urls=http://{a}:{metrics}"),
            format!("--initial-cluster={initial}"),
            "--initial-cluster-state=new".into(),
            "--initial-cluster-token=rampart-test".into(),
            format!("--cert-file={}", pki("etcd-server.pem")),
            format!("--key-file={}", pki("etcd-server.key")),
            "--client-cert-auth=true".into(),
            format!("--trusted-ca-file={}", pki("ca.pem")),
            format!("--peer-cert-file={}", pki("etcd-peer.pem")),
            format!("--peer-key-file={}", pki("etcd-peer.key")),
            "--peer-client-cert-auth=true".into(),
            format!("--peer-trusted-ca-file={}", pki("ca.pem")),
            format!("--heartbeat-interval={HEARTBEAT_MS}"),
            format!("--election-timeout={ELECTION_MS}"),
            "--pre-vote=true".into(),
            // On loopback every member dials its peers from 127.0.0.1, not from its own
            // address, so etcd's check of a peer certificate's IP SAN against the
            // connection's source would refuse them all. The lab (one network namespace
            // per host) keeps the check on and proves it.
            "--experimental-peer-skip-client-san-verification=true".into(),
            "--logger=zap".into(),
            "--log-outputs=stderr".into(),
        ];
        let stderr = log
            .try_clone()
            .map_err(|e| format!("cannot reopen {}: {e}", member.log.display()))?;
        // Found the way every lab daemon is (PATH and the sbin directories).
        let etcd = crate::daemons::program("etcd", "etcd-server").map_err(|e| e.to_string())?;
        let child = Command::new(&etcd)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {etcd} ({e}); install Debian's etcd-server (scripts/install.sh)"
                )
            })?;
        member.child = Some(child);
        Ok(())
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(mut child) = member.child.take() {
                // A paused member must wake up to die cleanly; SIGKILL works either way.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Runs `future` to completion on a runtime of its own, on a thread of its own, so the
/// blocking helpers work from synchronous tests and from inside `#[tokio::test]` alike.
fn block_on<F: std::future::Future + Send>(future: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime")
                    .block_on(future)
            })
            .join()
            .expect("the health check thread")
    })
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A /24 of 127.0.0.0/8 (never 127.0.0.0/24) whose member addresses have etcd's ports
/// free: picked from the process id, then probed, so that concurrent test processes (of
/// this checkout or another) do not meet on the same addresses.
fn loopback_prefix(last_octets: &[u8], ports: &[u16]) -> (u8, u8) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(16);
    let mut candidate = (0, 0);
    for _ in 0..64 {
        let n = seed.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919));
        let n = n % (254 * 256);
        candidate = ((1 + n / 256) as u8, (n % 256) as u8);
        let (a, b) = candidate;
        let free = last_octets.iter().all(|&last| {
            ports.iter().all(|&port| {
                std::net::TcpListener::bind((Ipv4Addr::new(127, a, b, last), port)).is_ok()
            })
        });
        if free {
            break;
        }
    }
    candidate
}

/// The shipped topology with every address moved into a fresh loopback /24, and etcd's
/// services declared if it has none yet; written to `dir/topology.json` and loaded.
fn loopback_topology(dir: &Path) -> Result<Topology, String> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../hosts/topology.json");
    let text = std::fs::read_to_string(&shipped)
        .map_err(|e| format!("cannot read {}: {e}", shipped.display()))?;
    let mut document: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", shipped.display()))?;
    let services = document["services"]
        .as_object_mut()
        .ok_or("the shipped topology has no services")?;
    for (name, port) in [
        (CLIENT_SERVICE, 2379),
        (PEER_SERVICE, 2380),
        (METRICS_SERVICE, 2381),
    ] {
        services
            .entry(name)
            .or_insert_with(|| json!({ "port": port }));
    }
    let ports: Vec<u16> = [CLIENT_SERVICE, PEER_SERVICE, METRICS_SERVICE]
        .iter()
        .filter_map(|s| document["services"][s]["port"].as_u64()?.try_into().ok())
        .collect();
    let last_octets: Vec<u8> = document["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["address"].as_str()?.rsplit('.').next()?.parse().ok())
        .collect();
    let (a, b) = loopback_prefix(&last_octets, &ports);
    let moved = |address: &str| -> String {
        let last = address.rsplit('.').next().unwrap_or("1");
        format!("127.{a}.{b}.{last}")
    };
    document["network"]["cidr"] = json!(format!("127.{a}.{b}.0/24"));
    if let Some(networks) = document["adminNetworks"].as_array_mut() {
        for network in networks {
            let text = network.as_str().unwrap_or_default().to_string();
            let (address, prefix) = text.split_once('/').unwrap_or((&text, "32"));
            *network = json!(format!("{}/{prefix}", moved(address)));
        }
    }
    for host in document["hosts"].as_array_mut().into_iter().flatten() {
        let address = host["address"].as_str().unwrap_or_default().to_string();
        host["address"] = json!(moved(&address));
    }
    if let Some(lab) = document["lab"].as_object_mut() {
        for address in lab.values_mut() {
            let text = address.as_str().unwrap_or_default().to_string();
            *address = json!(moved(&text));
        }
    }
    let path = dir.join("topology.json");
    let text = serde_json::to_string_pretty(&document).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Topology::load(&path).map_err(|e| e.to_string())
}

/// `certtool init-ca` and `certtool issue` for the topology, under `dir/ca` and
/// `dir/issued` (as `<host>/<stem>.pem|.key` and `ca.pem`). A second call on another
/// directory makes a second, unrelated CA: a client or member the cluster must refuse.
pub fn issue_certificates(topology: &Topology, dir: &Path) -> Result<(), String> {
    use rampart_pki::issue::{init_ca, issue, CaOptions, IssueOptions};
    use rampart_pki::KeyType;
    let now = time::OffsetDateTime::now_utc();
    let ca = dir.join("ca");
    init_ca(
        topology,
        &ca,
        &CaOptions {
            key_type: KeyType::P256,
            validity: time::Duration::days(3),
            now,
        },
    )
    .map_err(|e| e.to_string())?;
    issue(
        topology,
        &ca,
        &dir.join("issued"),
        &IssueOptions {
            key_type: KeyType::P256,
            validity: time::Duration::days(2),
            renew_within: time::Duration::hours(1),
            now,
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// The lab's layout: the host's certificates and keys plus `ca.pem` in one directory.
fn copy_pki(issued: &Path, member: &TestMember) -> Result<(), String> {
    std::fs::create_dir_all(&member.pki).map_err(|e| e.to_string())?;
    let mut files: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    files.insert(issued.join("ca.pem"), member.pki.join("ca.pem"));
    let own = issued.join(&member.name);
    for entry in std::fs::read_dir(&own).map_err(|e| format!("{}: {e}", own.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        files.insert(entry.path(), member.pki.join(entry.file_name()));
    }
    for (from, to) in files {
        std::fs::copy(&from, &to)
            .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    }
    Ok(())
}
