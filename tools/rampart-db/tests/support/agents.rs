//! A real etcd and the failover agents (`rampart-db agent`), each in its host's namespace.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rampart_failover::record::{Keys, View, DEFAULT_PREFIX};
use rampart_failover::store::{Store, StoreConfig};
use rampart_lab::local::{LocalDaemon, LocalReady};

use super::{netns_of, topology_path, Pair};

/// Ports of the test's etcd (not the topology's: the tests do not need its firewall).
const CLIENT_PORT: u16 = 23790;
const PEER_PORT: u16 = 23800;
/// A short lease keeps the tests short: the gate closes 2.4 s after the last renewal.
pub const LEASE_TTL: u64 = 3;

/// One etcd member (Debian's etcd-server) in a host's namespace.
pub struct Etcd {
    pub url: String,
    daemon: Option<LocalDaemon>,
}

impl Etcd {
    /// Starts etcd on `host`'s address and waits (bounded) until it answers.
    pub fn start(root: &Path, host: &rampart_database::DbHost) -> Etcd {
        let dir = root.join("etcd");
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("http://{}:{CLIENT_PORT}", host.address);
        let peer = format!("http://127.0.0.1:{PEER_PORT}");
        let args: Vec<String> = [
            "--name",
            "test",
            "--data-dir",
            &dir.join("data").display().to_string(),
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster",
            &format!("test={peer}"),
        ]
        .map(String::from)
        .to_vec();
        // The lab's one start-up (Debian's etcd-server), in the host's namespace.
        let daemon = LocalDaemon::start_in(
            &netns_of(&host.name),
            "etcd",
            "etcd-server",
            &args,
            &dir.join("etcd.log"),
            LocalReady::Logged("ready to serve client requests".into()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let etcd = Etcd {
            url,
            daemon: Some(daemon),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while etcd.view().is_err() {
            assert!(
                Instant::now() < deadline,
                "etcd did not answer within 20 s; see {}",
                dir.join("etcd.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        etcd
    }

    /// Everything failover keeps in etcd, read now.
    pub fn view(&self) -> Result<View, String> {
        let mut store = Store::new(StoreConfig {
            endpoints: vec![self.url.clone()],
            tls: None,
            op_timeout: Duration::from_secs(1),
        })
        .map_err(|e| e.to_string())?;
        let keys = Keys::new(DEFAULT_PREFIX);
        let snapshot = store.read_prefix(&keys.prefix).map_err(|e| e.to_string())?;
        Ok(View::from_snapshot(&keys, &snapshot))
    }

    /// Waits (bounded) until `check` holds for the view; returns it.
    pub fn wait(&self, what: &str, limit: Duration, check: impl Fn(&View) -> bool) -> View {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(view) = self.view() {
                if check(&view) {
                    return view;
                }
                assert!(
                    Instant::now() < deadline,
                    "{what} did not happen within {limit:?}: leader {:?}, term {}, sync {:?}, members {:#?}",
                    view.leader_host(),
                    view.term(),
                    view.sync_set(),
                    view.members
                );
            }
            assert!(Instant::now() < deadline, "{what}: etcd does not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `host` leads, writable, with `sync` recorded in sync.
    pub fn wait_leader(&self, host: &str, sync: &[&str], limit: Duration) -> View {
        self.wait(
            &format!("{host} leading with sync set {sync:?}"),
            limit,
            |v| {
                v.leader_host() == Some(host)
                    && v.member(host).is_some_and(|m| m.role == "leader")
                    && v.sync_set() == sync
            },
        )
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // Dropping the handle SIGKILLs and reaps it.
        self.daemon = None;
    }
}

/// The agents of the pair's hosts.
pub struct Agents {
    children: Vec<(String, Child)>,
    dir: PathBuf,
}

impl Agents {
    pub fn new(pair: &Pair) -> Agents {
        let dir = pair.root.join("agents");
        std::fs::create_dir_all(&dir).unwrap();
        Agents {
            children: Vec::new(),
            dir,
        }
    }

    /// Starts `host`'s agent in its namespace (logs in `<root>/agents/<host>.log`).
    pub fn start(&mut self, pair: &Pair, host: &str, extra: &[&str]) {
        let server = [&pair.primary, &pair.replica]
            .into_iter()
            .find(|s| s.host.name == host)
            .expect("a database host of the pair");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{host}.log")))
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &netns_of(host)])
            .arg(env!("CARGO_BIN_EXE_rampart-db"))
            .args(["agent", "--host", host])
            .arg("--socket")
            .arg(server.socket())
            .args(["--lease-ttl", &LEASE_TTL.to_string()])
            .arg("--topology")
            .arg(topology_path())
            .arg("--ca")
            .arg(server.pki().join("ca.pem"))
            .arg("--password-file")
            .arg(pair.root.join("secrets/failover-db-password"))
            .arg("--replication-password-file")
            .arg(pair.root.join("secrets/replication-password"))
            .arg("--replica-pki-dir")
            .arg(server.pki())
            .arg("--metrics")
            .arg(self.dir.join(format!("{host}.prom")))
            .args(["--etcd", pair.etcd.as_deref().expect("etcd started")])
            .args(extra)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start rampart-db agent");
        self.children.push((host.to_string(), child));
    }

    /// SIGKILL: the agent dies without a word, as a crash would.
    pub fn kill(&mut self, host: &str) {
        if let Some(pos) = self.children.iter().position(|(h, _)| h == host) {
            let (_, mut child) = self.children.remove(pos);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The agent's log so far.
    pub fn log(&self, host: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{host}.log"))).unwrap_or_default()
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        for (host, mut child) in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!("--- agent {host} ---\n{}", self.log(&host));
            }
        }
    }
}
