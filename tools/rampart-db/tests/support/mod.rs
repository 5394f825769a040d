//! Two real MariaDB servers, primary and semi-synchronous replica, for failover tests.
//!
//! Each test runs in network namespaces of its own, one per database host of the shipped
//! topology, joined by a veth pair and holding the topology's addresses: the test binary
//! re-executes itself for just that test inside the *replica's* namespace (where
//! `rampart-db` runs when it promotes that host), and each mariadbd runs in its host's
//! namespace. So `rampart-db` runs against the shipped topology unchanged, the firewall
//! fence is real nftables in the fenced host's namespace, and no packet leaves the
//! namespaces. The outer process deletes them and kills whatever still runs in them, also
//! when the inner run panicked.
//!
//! The servers run the *rendered* MariaDB settings and bootstrap SQL (`lib.render`, with
//! paths moved under the test's directory): GTID strict mode, semi-sync AFTER_SYNC that
//! never times out on its own, TLS required, both read-only until an agent leads, the
//! replication and failover accounts. [`agents`] adds etcd and the failover agents.

#![allow(dead_code)]

pub mod agents;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use rampart_database::{Cluster, DbHost};
use rampart_lab::daemons::mariadb_install_command;
use rampart_lab::local::{LocalDaemon, LocalReady};
use rampart_topology::Topology;

const INSIDE: &str = "RAMPART_DB_TEST_NETNS";

/// Runs `body` in fresh network namespaces (see the module docs). `test` must be the
/// test function's name.
pub fn isolated(test: &str, body: impl FnOnce()) {
    if std::env::var_os(INSIDE).is_some() {
        body();
        return;
    }
    // Tests of one process (cargo test runs them on threads) need distinct namespaces.
    let tag = test
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
        % 100_000;
    let prefix = format!("rdb-{}-{tag}", std::process::id());
    let topology = Topology::load(&topology_path()).expect("shipped topology");
    let cluster = Cluster::from_topology(&topology).expect("database hosts");
    let [a, b] = cluster.hosts.as_slice() else {
        panic!("the failover tests expect two database hosts in hosts/topology.json");
    };
    let namespaces = Namespaces::create(&prefix, a, b, topology.network.prefix());
    let replica = if a.declared_primary { b } else { a };
    let status = Command::new("ip")
        .args(["netns", "exec", &namespaces.of(&replica.name)])
        .arg(std::env::current_exe().expect("test executable"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(INSIDE, &prefix)
        .status()
        .expect("run the test inside its namespace");
    assert!(
        status.success(),
        "{test} failed inside namespace {} ({status})",
        namespaces.of(&replica.name)
    );
}

/// The namespace of a database host in the current test.
pub fn netns_of(host: &str) -> String {
    let prefix = std::env::var(INSIDE).expect("running inside isolated()");
    format!("{prefix}-{host}")
}

/// The fence hook for these namespaces: nft in the fenced host's namespace.
pub fn fence_hook() -> String {
    format!("ip netns exec {} nft -f -", netns_of("{host}"))
}

/// Whether the fence table exists in `host`'s namespace.
pub fn fenced(host: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", &netns_of(host)])
        .args(["nft", "list", "table", "inet", "rampart-fence"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// One namespace per database host, joined by a veth pair; deleted, with everything
/// running in them, on drop.
struct Namespaces {
    prefix: String,
    hosts: Vec<String>,
}

impl Namespaces {
    fn create(prefix: &str, a: &DbHost, b: &DbHost, prefix_len: u8) -> Namespaces {
        let namespaces = Namespaces {
            prefix: prefix.to_string(),
            hosts: vec![a.name.clone(), b.name.clone()],
        };
        for host in &namespaces.hosts {
            // A namespace left by a crashed earlier run of this very pid is stale.
            let _ = Command::new("ip")
                .args(["netns", "del", &namespaces.of(host)])
                .output();
            run("ip", &["netns", "add", &namespaces.of(host)]);
        }
        let (na, nb) = (namespaces.of(&a.name), namespaces.of(&b.name));
        run(
            "ip",
            &[
                "-n", &na, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
                &nb,
            ],
        );
        for (ns, host) in [(&na, a), (&nb, b)] {
            let address = format!("{}/{prefix_len}", host.address);
            run("ip", &["-n", ns, "addr", "add", &address, "dev", "eth0"]);
            run("ip", &["-n", ns, "link", "set", "eth0", "up"]);
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        namespaces
    }

    fn of(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for host in &self.hosts {
            let ns = self.of(host);
            if let Ok(out) = Command::new("ip").args(["netns", "pids", &ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).output();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        }
    }
}

/// Runs a command that must succeed; returns its output.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn sh(script: &str) {
    run("sh", &["-c", script]);
}

/// The repository's shipped topology.
pub fn topology_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hosts/topology.json")
}

/// One MariaDB server of the pair.
pub struct Server {
    pub host: DbHost,
    pub dir: PathBuf,
    daemon: Option<LocalDaemon>,
}

impl Server {
    pub fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    pub fn pki(&self) -> PathBuf {
        self.dir.join("pki")
    }

    /// Starts mariadbd in its host's namespace with the rendered settings plus what a
    /// runner adds (paths), and waits (bounded) until it answers on its socket.
    pub fn start(&mut self) {
        self.start_with(&[]);
    }

    /// `start` with extra mariadbd options.
    pub fn start_with(&mut self, options: &[&str]) {
        assert!(self.daemon.is_none(), "{} already runs", self.host.name);
        let d = self.dir.display();
        let cnf = self.dir.join("my.cnf");
        std::fs::write(
            &cnf,
            format!(
                "!include {d}/rampart.cnf\n[mysqld]\ndatadir={d}/data\nsocket={d}/mysqld.sock\n\
                 pid-file={d}/mysqld.pid\nlog-error={d}/error.log\n\
                 # Concurrent tests collide on temporary table names in a shared /tmp.\n\
                 tmpdir={d}/tmp\n"
            ),
        )
        .unwrap();
        let mut args = vec![
            format!("--defaults-file={}", cnf.display()),
            // The test runs as root; mariadbd refuses that unless told.
            "--user=root".to_string(),
        ];
        args.extend(options.iter().map(|o| o.to_string()));
        // The lab's one start-up: ready when it accepts connections on its socket; an
        // early exit is an error quoting its log.
        let daemon = LocalDaemon::start_in(
            &netns_of(&self.host.name),
            "mariadbd",
            "mariadb-server",
            &args,
            &self.dir.join("mariadbd.out"),
            LocalReady::Socket(self.socket()),
        )
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}\nerror.log: {}",
                self.host.name,
                std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
            )
        });
        self.daemon = Some(daemon);
    }

    /// SIGKILL, as a crash would. (`ip netns exec` execs mariadbd: same pid.)
    pub fn kill(&mut self) {
        // Dropping the handle SIGKILLs and reaps it.
        self.daemon = None;
    }

    /// Runs SQL as root over the local socket with the `mariadb` client; stdout on success.
    pub fn sql(&self, statements: &str) -> Result<String, String> {
        let out = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "--batch", "--skip-column-names", "-e", statements])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    pub fn must(&self, statements: &str) -> String {
        self.sql(statements)
            .unwrap_or_else(|e| panic!("{}: `{statements}` failed: {e}", self.host.name))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The values of the test deployment's secrets (their placeholders come from
/// `lib.secrets`, with the rendered files).
const SECRETS: [(&str, &str); 4] = [
    ("replication-password", "repl-test-pw"),
    ("app-db-password", APP_PASSWORD),
    ("exporter-db-password", "exporter-test-pw"),
    ("failover-db-password", "failover-test-pw"),
];
pub const APP_PASSWORD: &str = "app-test-pw";
/// The application's account and database (lib/settings.nix `mariadb.*` defaults).
pub const APP_USER: &str = "rampart_app";
pub const DATABASE: &str = "rampart";

/// The rendered files of every host (`files`), with the test's paths, and each secret's
/// bootstrap placeholder (`placeholders`).
fn render(root: &Path) -> serde_json::Value {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let expr = format!(
        "let lib = import {repo}/lib {{ }}; in {{ files = lib.render {{ topology = lib.shippedTopology; \
         settings = name: {{ pkiDir = \"{root}/${{name}}/pki\"; secretsDir = \"{root}/secrets\"; \
         mariadb = {{ innodbBufferPoolSize = \"32M\"; }}; }}; }}; \
         placeholders = builtins.mapAttrs (_: s: s.placeholder) (lib.secrets.catalog {{ }}); }}",
        repo = repo.display(),
        root = root.display(),
    );
    rampart_nix::instantiate_json(&expr).unwrap_or_else(|e| panic!("rendering failed: {e}"))
}

/// The primary/replica pair on the topology's database addresses, plus the files
/// `rampart-db` needs.
pub struct Pair {
    pub root: PathBuf,
    /// etcd's client URL once [`agents::Etcd`] runs; `rampart_db` passes it on.
    pub etcd: Option<String>,
    pub cluster: Cluster,
    pub primary: Server,
    pub replica: Server,
}

impl Pair {
    /// Two servers with certificates, the rendered settings and bootstrap SQL, a
    /// `visits` table, and the replica replicating semi-synchronously; returns when
    /// semi-sync is on and the replica has applied everything.
    pub fn start() -> Pair {
        let topology = Topology::load(&topology_path()).expect("shipped topology");
        let cluster = Cluster::from_topology(&topology).expect("database hosts");
        let root = std::env::temp_dir().join(format!("rampart-db-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("secrets")).unwrap();
        for (file, value) in SECRETS {
            std::fs::write(root.join("secrets").join(file), value).unwrap();
        }
        let rendered = render(&root);
        let placeholders = &rendered["placeholders"];
        let rendered = &rendered["files"];

        let declared = |primary: bool| {
            cluster
                .hosts
                .iter()
                .find(|h| h.declared_primary == primary)
                .expect("a primary and a replica in the topology")
                .clone()
        };
        let servers: Vec<Server> = [declared(true), declared(false)]
            .into_iter()
            .map(|host| {
                let dir = root.join(&host.name);
                for sub in ["pki", "tmp", "data"] {
                    std::fs::create_dir_all(dir.join(sub)).unwrap();
                }
                let file = |path: &str| {
                    rendered[&host.name][path]
                        .as_str()
                        .unwrap_or_else(|| panic!("{} has no rendered {path}", host.name))
                        .to_string()
                };
                std::fs::write(dir.join("rampart.cnf"), file("mariadb/rampart.cnf")).unwrap();
                let mut bootstrap = file("mariadb/bootstrap.sql");
                for (file, value) in SECRETS {
                    let placeholder = placeholders[file]
                        .as_str()
                        .expect("a placeholder per secret");
                    bootstrap = bootstrap.replace(&format!("@{placeholder}@"), value);
                }
                std::fs::write(dir.join("bootstrap.sql"), bootstrap).unwrap();
                Server {
                    host,
                    dir,
                    daemon: None,
                }
            })
            .collect();
        make_pki(&root, &servers, &topology.domain);
        for server in &servers {
            let (data, tmp) = (server.dir.join("data"), server.dir.join("tmp"));
            let mut install =
                mariadb_install_command(&data, &tmp).unwrap_or_else(|e| panic!("{e}"));
            rampart_lab::run(&mut install).unwrap_or_else(|e| panic!("{e}"));
        }
        let [primary, replica]: [Server; 2] = servers.try_into().ok().unwrap();
        let mut pair = Pair {
            root,
            etcd: None,
            cluster,
            primary,
            replica,
        };
        pair.primary.start();
        pair.replica.start();
        // The rendered bootstrap: accounts on the primary (they replicate), CHANGE MASTER
        // on the replica.
        for server in [&pair.primary, &pair.replica] {
            let sql = std::fs::read_to_string(server.dir.join("bootstrap.sql")).unwrap();
            server.must(&sql);
        }
        pair.primary.must(&format!(
            "CREATE TABLE {DATABASE}.visits (seq BIGINT PRIMARY KEY, \
             at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
        ));
        pair.wait_replica_applied();
        pair
    }

    /// Waits (bounded) until the primary's semi-sync is on with one replica.
    pub fn wait_semi_sync_on(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // A commit makes the primary notice that its replica caught up.
            let _ = self.primary.sql("FLUSH LOGS");
            let status = self
                .primary
                .sql("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'")
                .unwrap_or_default();
            if status.ends_with("ON") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "semi-sync did not come on within 20 s: {status}; replica: {}",
                self.replica.sql("SHOW SLAVE STATUS\\G").unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits (bounded) until the replica applied everything in the primary's binlog.
    pub fn wait_replica_applied(&self) {
        let pos = self.primary.must("SELECT @@global.gtid_binlog_pos");
        let waited = self
            .replica
            .must(&format!("SELECT MASTER_GTID_WAIT('{pos}', 20)"));
        assert_eq!(waited, "0", "the replica did not apply {pos} within 20 s");
    }

    /// `rampart-db` with this pair's files; returns (exit code, stdout, stderr).
    pub fn rampart_db(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_rampart-db"))
            .args(args)
            .arg("--topology")
            .arg(topology_path())
            .arg("--ca")
            .arg(self.primary.pki().join("ca.pem"))
            .arg("--password-file")
            .arg(self.root.join("secrets/failover-db-password"))
            .args(self.etcd.iter().flat_map(|url| ["--etcd", url.as_str()]))
            .output()
            .expect("run rampart-db");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    /// The options `rejoin` needs for this pair's layout.
    pub fn rejoin_args(&self) -> Vec<String> {
        vec![
            "--replication-password-file".into(),
            self.root
                .join("secrets/replication-password")
                .display()
                .to_string(),
            "--replica-pki-dir".into(),
            format!("{}/{{host}}/pki", self.root.display()),
        ]
    }

    /// Sequence numbers in the visits table on a server, read over its socket.
    pub fn visits(server: &Server) -> Vec<u64> {
        server
            .must(&format!("SELECT seq FROM {DATABASE}.visits ORDER BY seq"))
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.primary.kill();
        self.replica.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// A throwaway CA and, per host, the `mysql` server and `replication-client` certificates
/// (contracts.md "Certificates"), made by openssl.
fn make_pki(root: &Path, servers: &[Server], domain: &str) {
    let ca = root.join("ca");
    std::fs::create_dir_all(&ca).unwrap();
    let c = ca.display();
    sh(&format!(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
         -keyout {c}/ca.key -out {c}/ca.pem -days 2 -subj /CN=rampart-test-ca 2>/dev/null"
    ));
    for server in servers {
        let p = server.pki();
        let p = p.display();
        let fqdn = format!("{}.{domain}", server.host.name);
        sh(&format!("cp {c}/ca.pem {p}/ca.pem"));
        for (stem, eku, san) in [
            (
                "mysql",
                "serverAuth",
                format!("DNS:{fqdn},IP:{}", server.host.address),
            ),
            ("replication-client", "clientAuth", format!("DNS:{fqdn}")),
        ] {
            std::fs::write(
                root.join("ext.cnf"),
                format!(
                    "subjectAltName={san}\nextendedKeyUsage={eku}\nbasicConstraints=CA:FALSE\n"
                ),
            )
            .unwrap();
            sh(&format!(
                "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                 -keyout {p}/{stem}.key -out {p}/{stem}.csr -subj /CN={fqdn} 2>/dev/null && \
                 openssl x509 -req -in {p}/{stem}.csr -CA {c}/ca.pem -CAkey {c}/ca.key \
                 -CAcreateserial -days 2 -extfile {r}/ext.cnf -out {p}/{stem}.pem 2>/dev/null",
                r = root.display()
            ));
        }
    }
}

/// What the writer saw: acknowledged sequence numbers with the time of each ack.
#[derive(Default)]
pub struct WriteLog {
    pub acked: Vec<(u64, Instant)>,
    pub errors: Vec<String>,
}

/// A bounded write load the way the application does it: find the primary with the
/// read_only probe, insert one sequence number per autocommit statement, and look for
/// the primary again after any failure.
pub struct Writer {
    stop: Arc<AtomicBool>,
    pub log: Arc<Mutex<WriteLog>>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    /// At most `max` writes and `limit` of time, whatever happens.
    pub fn start(cluster: &Cluster, ca: PathBuf, max: u64, limit: Duration) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(WriteLog::default()));
        let hosts = cluster.hosts.clone();
        let (stop2, log2) = (stop.clone(), log.clone());
        let handle = std::thread::spawn(move || {
            let deadline = Instant::now() + limit;
            let mut conn: Option<mysql::Conn> = None;
            let mut seq = 1;
            while seq <= max && Instant::now() < deadline && !stop2.load(Ordering::Relaxed) {
                let Some(c) = conn.as_mut() else {
                    conn = find_primary(&hosts, &ca);
                    if conn.is_none() {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    continue;
                };
                let insert = format!("INSERT INTO {DATABASE}.visits (seq) VALUES (?)");
                match c.exec_drop(insert, (seq,)) {
                    Ok(()) => log2.lock().unwrap().acked.push((seq, Instant::now())),
                    Err(e) => {
                        log2.lock().unwrap().errors.push(format!("seq {seq}: {e}"));
                        conn = None;
                    }
                }
                // Not acknowledged means unknown, never retried: a retry could not tell
                // "committed before the crash" from "never arrived".
                seq += 1;
            }
        });
        Writer {
            stop,
            log,
            handle: Some(handle),
        }
    }

    pub fn acked(&self) -> usize {
        self.log.lock().unwrap().acked.len()
    }

    /// Waits (bounded) until at least `n` writes were acknowledged.
    pub fn wait_acked(&self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.acked() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} writes acknowledged within {limit:?}; errors: {:?}",
                self.acked(),
                self.log
                    .lock()
                    .unwrap()
                    .errors
                    .iter()
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stop(mut self) -> WriteLog {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("writer thread");
        }
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The read_only probe: the one host that answers `@@global.read_only = 0`.
pub fn find_primary(hosts: &[DbHost], ca: &Path) -> Option<mysql::Conn> {
    let mut writable = Vec::new();
    for host in hosts {
        if let Some(mut conn) = app_conn(host.address, ca) {
            if matches!(
                conn.query_first::<u8, _>("SELECT @@global.read_only"),
                Ok(Some(0))
            ) {
                writable.push(conn);
            }
        }
    }
    // Two writable hosts is split brain: write to neither.
    (writable.len() == 1).then(|| writable.pop().unwrap())
}

fn app_conn(address: Ipv4Addr, ca: &Path) -> Option<mysql::Conn> {
    let opts = mysql::OptsBuilder::new()
        .ip_or_hostname(Some(address.to_string()))
        .tcp_port(3306)
        .user(Some(APP_USER))
        .pass(Some(APP_PASSWORD))
        .prefer_socket(false)
        .ssl_opts(mysql::SslOpts::default().with_root_cert_path(Some(ca.to_path_buf())))
        .tcp_connect_timeout(Some(Duration::from_millis(500)))
        .read_timeout(Some(Duration::from_secs(5)))
        .write_timeout(Some(Duration::from_secs(5)));
    mysql::Conn::new(opts).ok()
}
