//! Two real MariaDB servers, primary and semi-synchronous replica, for failover tests.
//!
//! Each test runs in a network namespace of its own: the test binary re-executes itself
//! inside `ip netns exec` for just that test. In there the database hosts' topology
//! addresses live on the namespace's loopback, so `rampart-db` runs against the shipped
//! topology unchanged, its firewall fence is real nftables, and no packet leaves the
//! namespace. The outer process deletes the namespace and kills whatever still runs in
//! it, also when the inner run panicked.
//!
//! The MariaDB settings below are the ones failover relies on (docs/failover.md): GTID
//! strict mode, `log_slave_updates`, semi-sync on both hosts with `AFTER_SYNC`, TLS
//! required, the replica read-only.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use rampart::db::{self, Cluster, DbHost};
use rampart::topology::Topology;

const INSIDE: &str = "RAMPART_DB_TEST_NETNS";
/// Semi-sync timeout of the test servers: short, so a primary without replica (right
/// after promotion) stalls its first commit only briefly.
pub const SEMI_SYNC_TIMEOUT_MS: u64 = 1000;
pub const ADMIN_PASSWORD: &str = "failover-test-pw";
pub const REPLICATION_PASSWORD: &str = "replication-test-pw";
pub const APP_PASSWORD: &str = "app-test-pw";

/// Runs `body` in a fresh network namespace (see the module docs). `test` must be the
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
    let ns = Netns::create(&format!("rdb-{}-{tag}", std::process::id()));
    let status = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(std::env::current_exe().expect("test executable"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(INSIDE, &ns.name)
        .status()
        .expect("run the test inside its namespace");
    assert!(
        status.success(),
        "{test} failed inside namespace {} ({status})",
        ns.name
    );
}

/// A network namespace that is deleted, with everything running in it, on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn create(name: &str) -> Netns {
        // A namespace left by a crashed earlier run of this very pid is stale.
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        run("ip", &["netns", "add", name]);
        let ns = Netns {
            name: name.to_string(),
        };
        run(
            "ip",
            &["netns", "exec", name, "ip", "link", "set", "lo", "up"],
        );
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).output();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
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
    pub server_id: u32,
    child: Option<Child>,
}

impl Server {
    pub fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    pub fn pki(&self) -> PathBuf {
        self.dir.join("pki")
    }

    fn config(&self, read_only: bool) -> String {
        let d = self.dir.display();
        let pki = self.pki();
        let pki = pki.display();
        format!(
            "[mysqld]\n\
             datadir={d}/data\n\
             socket={d}/mysqld.sock\n\
             pid-file={d}/mysqld.pid\n\
             log-error={d}/error.log\n\
             tmpdir={d}/tmp\n\
             bind-address={address}\n\
             port=3306\n\
             skip-name-resolve\n\
             server-id={id}\n\
             log-bin={d}/data/binlog\n\
             relay-log={d}/data/relay\n\
             binlog_format=ROW\n\
             log_slave_updates=ON\n\
             gtid_strict_mode=ON\n\
             read_only={ro}\n\
             ssl_ca={pki}/ca.pem\n\
             ssl_cert={pki}/mysql.pem\n\
             ssl_key={pki}/mysql.key\n\
             require_secure_transport=ON\n\
             rpl_semi_sync_master_enabled=ON\n\
             rpl_semi_sync_slave_enabled=ON\n\
             rpl_semi_sync_master_wait_point=AFTER_SYNC\n\
             rpl_semi_sync_master_timeout={SEMI_SYNC_TIMEOUT_MS}\n\
             innodb_buffer_pool_size=32M\n\
             innodb_log_file_size=16M\n",
            address = self.host.address,
            id = self.server_id,
            ro = if read_only { "ON" } else { "OFF" },
        )
    }

    /// Starts mariadbd and waits (bounded) until it answers on its socket.
    pub fn start(&mut self, read_only: bool) {
        assert!(self.child.is_none(), "{} already runs", self.host.name);
        let cnf = self.dir.join("my.cnf");
        std::fs::write(&cnf, self.config(read_only)).unwrap();
        let log = std::fs::File::create(self.dir.join("mariadbd.out")).unwrap();
        let child = Command::new("mariadbd")
            .arg(format!("--defaults-file={}", cnf.display()))
            // The test runs as root; mariadbd refuses that unless told.
            .arg("--user=root")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.sql("SELECT 1").is_err() {
            assert!(
                Instant::now() < deadline,
                "{} did not answer within 30 s; see {}/error.log",
                self.host.name,
                self.dir.display()
            );
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "mariadbd of {} exited ({status}): {}",
                    self.host.name,
                    std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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

/// The primary/replica pair on the topology's database addresses, plus the files
/// `rampart-db` needs.
pub struct Pair {
    pub root: PathBuf,
    pub cluster: Cluster,
    pub primary: Server,
    pub replica: Server,
}

impl Pair {
    /// Two servers with certificates, users, the `app.visits` table, and the replica
    /// replicating semi-synchronously; returns when semi-sync is on.
    pub fn start() -> Pair {
        let topology = Topology::load(&topology_path()).expect("shipped topology");
        let cluster = Cluster::from_topology(&topology).expect("database hosts");
        let root = std::env::temp_dir().join(format!("rampart-db-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("secrets")).unwrap();
        std::fs::write(root.join("secrets/failover-db-password"), ADMIN_PASSWORD).unwrap();
        std::fs::write(
            root.join("secrets/replication-password"),
            REPLICATION_PASSWORD,
        )
        .unwrap();

        let declared = |primary: bool| {
            cluster
                .hosts
                .iter()
                .find(|h| h.declared_primary == primary)
                .expect("a primary and a replica in the topology")
                .clone()
        };
        let mut servers = [declared(true), declared(false)]
            .into_iter()
            .enumerate()
            .map(|(i, host)| {
                // The address exists only on this test's namespace loopback.
                run(
                    "ip",
                    &["addr", "add", &format!("{}/32", host.address), "dev", "lo"],
                );
                let dir = root.join(&host.name);
                std::fs::create_dir_all(dir.join("pki")).unwrap();
                std::fs::create_dir_all(dir.join("tmp")).unwrap();
                Server {
                    host,
                    dir,
                    server_id: i as u32 + 1,
                    child: None,
                }
            })
            .collect::<Vec<_>>();
        make_pki(&root, &servers, &topology.domain);
        for server in &servers {
            let out = Command::new("mariadb-install-db")
                .arg("--no-defaults")
                .arg(format!("--datadir={}/data", server.dir.display()))
                // Concurrent bootstraps collide on temporary table names in a shared /tmp.
                .arg(format!("--tmpdir={}/tmp", server.dir.display()))
                .args([
                    "--user=root",
                    "--auth-root-authentication-method=socket",
                    "--skip-test-db",
                    "--innodb-log-file-size=16M",
                ])
                .output()
                .expect("mariadb-install-db");
            assert!(
                out.status.success(),
                "mariadb-install-db: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let replica = servers.pop().unwrap();
        let primary = servers.pop().unwrap();
        let mut pair = Pair {
            root,
            cluster,
            primary,
            replica,
        };
        pair.primary.start(false);
        pair.replica.start(true);

        // Users exist only on the primary and reach the replica through replication.
        let admin_grants = db::ADMIN_GRANTS;
        pair.primary.must(&format!(
            "CREATE USER '{repl}'@'%' IDENTIFIED BY '{REPLICATION_PASSWORD}' REQUIRE X509;
             GRANT REPLICATION SLAVE ON *.* TO '{repl}'@'%';
             CREATE USER '{admin}'@'%' IDENTIFIED BY '{ADMIN_PASSWORD}' REQUIRE SSL;
             GRANT {admin_grants} ON *.* TO '{admin}'@'%';
             CREATE DATABASE app;
             CREATE TABLE app.visits (seq BIGINT PRIMARY KEY, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
             CREATE USER 'app'@'%' IDENTIFIED BY '{APP_PASSWORD}' REQUIRE SSL;
             GRANT SELECT, INSERT ON app.* TO 'app'@'%';",
            repl = db::REPLICATION_USER,
            admin = db::ADMIN_USER,
        ));
        let rpki = pair.replica.pki();
        let rpki = rpki.display();
        pair.replica.must(&format!(
            "CHANGE MASTER TO MASTER_HOST='{}', MASTER_PORT=3306, MASTER_USER='{}',
               MASTER_PASSWORD='{REPLICATION_PASSWORD}', MASTER_SSL=1,
               MASTER_SSL_CA='{rpki}/ca.pem', MASTER_SSL_CERT='{rpki}/replication-client.pem',
               MASTER_SSL_KEY='{rpki}/replication-client.key',
               MASTER_SSL_VERIFY_SERVER_CERT=1, MASTER_USE_GTID=slave_pos;
             START SLAVE;",
            pair.primary.host.address,
            db::REPLICATION_USER
        ));
        pair.wait_semi_sync_on();
        pair.wait_replica_applied();
        pair
    }

    /// Waits (bounded) until the replica applied everything in the primary's binlog.
    pub fn wait_replica_applied(&self) {
        let pos = self.primary.must("SELECT @@global.gtid_binlog_pos");
        let waited = self
            .replica
            .must(&format!("SELECT MASTER_GTID_WAIT('{pos}', 20)"));
        assert_eq!(waited, "0", "the replica did not apply {pos} within 20 s");
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

    /// Sequence numbers in `app.visits` on a server, read over its socket.
    pub fn visits(server: &Server) -> Vec<u64> {
        server
            .must("SELECT seq FROM app.visits ORDER BY seq")
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
                match c.exec_drop("INSERT INTO app.visits (seq) VALUES (?)", (seq,)) {
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
        .user(Some("app"))
        .pass(Some(APP_PASSWORD))
        .prefer_socket(false)
        .ssl_opts(mysql::SslOpts::default().with_root_cert_path(Some(ca.to_path_buf())))
        .tcp_connect_timeout(Some(Duration::from_millis(500)))
        .read_timeout(Some(Duration::from_secs(5)))
        .write_timeout(Some(Duration::from_secs(5)));
    mysql::Conn::new(opts).ok()
}
