//! rampart-app against a real MariaDB (Debian's `mariadbd`), over TLS verified against a
//! CA made in the test: visits written and read back, idempotent writes, the primary
//! moved by rewriting its file, a server from another CA refused, and the counters.
//!
//! Everything listens on 127.0.0.1 on free ports; the server, the applications and the
//! temporary directory are removed by Drop guards, also when an assertion fails.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rampart_lab::local::{LocalMariadb, LocalMariadbSpec, TlsFiles};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use tempfile::TempDir;

const APP_PASSWORD: &str = "app-password-for-tests";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A CA and, when asked, a server certificate for 127.0.0.1 signed by it, as PEM files.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

fn make_pki(dir: &Path, name: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();

    let pki = Pki {
        ca: dir.join(format!("{name}-ca.pem")),
        server_cert: dir.join(format!("{name}-mysql.pem")),
        server_key: dir.join(format!("{name}-mysql.key")),
    };
    std::fs::write(&pki.ca, ca.pem()).unwrap();
    std::fs::write(&pki.server_cert, cert.pem()).unwrap();
    std::fs::write(&pki.server_key, key.serialize_pem()).unwrap();
    pki
}

/// A running `mariadbd` on a temporary data directory, TLS required, started by the lab's
/// loopback start-up (`rampart_lab::local`: its install command, its log, killed on
/// drop).
struct MariaDb {
    server: LocalMariadb,
    port: u16,
}

impl MariaDb {
    fn start(dir: &Path, pki: &Pki) -> MariaDb {
        let port = free_port();
        let spec = LocalMariadbSpec {
            name: "mysqld".into(),
            server_id: 1,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            tls: Some(TlsFiles {
                ca: pki.ca.clone(),
                cert: pki.server_cert.clone(),
                key: pki.server_key.clone(),
            }),
            extra: vec!["--require-secure-transport=ON".into()],
        };
        let server = LocalMariadb::start(dir, &spec).unwrap_or_else(|e| panic!("{e}"));
        MariaDb { server, port }
    }

    /// Runs SQL as root over the Unix socket; tab-separated rows without headers.
    fn sql(&self, sql: &str) -> String {
        self.server
            .sql(sql)
            .unwrap_or_else(|e| panic!("SQL {sql:?} failed: {e}"))
    }
}

/// A running `rampart-app`; killed on drop.
struct AppProcess {
    child: Child,
    port: u16,
}

impl AppProcess {
    fn start(args: &[String]) -> AppProcess {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_rampart-app"))
            .arg(format!("--listen=127.0.0.1:{port}"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rampart-app starts");
        let mut app = AppProcess { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = app.child.try_wait() {
                panic!("rampart-app exited early ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "rampart-app not listening after 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        app
    }

    fn request(&self, method: &str, path: &str) -> (u16, String) {
        AppClient { port: self.port }.request(method, path)
    }

    fn json(&self, method: &str, path: &str) -> (u16, serde_json::Value) {
        AppClient { port: self.port }.json(method, path)
    }
}

/// Requests to an application on a loopback port (whoever started it).
struct AppClient {
    port: u16,
}

impl AppClient {
    /// One HTTP/1.1 request; the status and the body.
    fn request(&self, method: &str, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status code");
        (status, body.to_owned())
    }

    fn json(&self, method: &str, path: &str) -> (u16, serde_json::Value) {
        let (status, body) = self.request(method, path);
        let value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}: {body:?}"));
        (status, value)
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TLS-only MariaDB with the application's database and user, and the user's password
/// written to a secret file as `password_text`.
fn app_database(dir: &Path, password_text: &str) -> (Pki, MariaDb, PathBuf) {
    let pki = make_pki(dir, "rampart");
    let db = MariaDb::start(dir, &pki);
    db.sql(&format!(
        "CREATE DATABASE rampart; \
         CREATE USER 'rampart_app'@'127.0.0.1' IDENTIFIED BY '{APP_PASSWORD}' REQUIRE SSL; \
         GRANT SELECT, INSERT, CREATE ON rampart.* TO 'rampart_app'@'127.0.0.1';"
    ));
    let password_file = dir.join("app-db-password");
    std::fs::write(&password_file, password_text).unwrap();
    (pki, db, password_file)
}

/// The value of one series in a Prometheus text exposition.
fn sample(metrics: &str, series: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn visits_over_verified_tls_with_a_movable_primary() {
    let dir = TempDir::new().unwrap();
    // The secret file ends with a newline, as editors write it; the app must trim it.
    let (pki, db, password_file) = app_database(dir.path(), &format!("{APP_PASSWORD}\n"));
    let primary_file = dir.path().join("db-primary");
    let primary = format!("127.0.0.1:{}", db.port);
    std::fs::write(&primary_file, &primary).unwrap();

    let common = |ca: &Path| {
        vec![
            "--host-name=web1".to_owned(),
            format!("--db-password-file={}", password_file.display()),
            format!("--db-ca={}", ca.display()),
        ]
    };
    let mut args = common(&pki.ca);
    args.push(format!("--db-primary-file={}", primary_file.display()));
    // The same server stands in for the local replica: reads are answered there.
    args.push(format!("--db-replica={primary}"));
    let app = AppProcess::start(&args);

    // Which host served the request, as text and as JSON.
    assert_eq!(
        app.request("GET", "/"),
        (200, "rampart: served by web1\n".to_owned())
    );
    assert_eq!(
        app.json("GET", "/?format=json"),
        (200, serde_json::json!({"type": "hello", "host": "web1"}))
    );
    assert_eq!(app.json("GET", "/?format=xml").0, 400);
    assert_eq!(app.request("GET", "/healthz"), (200, "ok\n".to_owned()));

    // A visit under a client's number is written once; the retry changes nothing.
    let (status, visit) = app.json("POST", "/visit?seq=42");
    assert_eq!(status, 201, "{visit}");
    assert_eq!(
        (visit["type"].as_str(), visit["seq"].as_u64()),
        (Some("visit"), Some(42))
    );
    assert_eq!(
        (visit["servedBy"].as_str(), visit["created"].as_bool()),
        (Some("web1"), Some(true))
    );
    assert_eq!(visit["source"], "primary");
    let (status, again) = app.json("GET", "/visit?seq=42");
    assert_eq!(
        (status, again["created"].as_bool()),
        (200, Some(false)),
        "{again}"
    );
    // Without a number, the next free one.
    let (status, next) = app.json("POST", "/visit");
    assert_eq!((status, next["seq"].as_u64()), (201, Some(43)), "{next}");
    // Bad numbers and GET writes without a number are refused with the reason.
    let (status, refused) = app.json("GET", "/visit");
    assert_eq!(status, 400);
    assert!(
        refused["error"].as_str().unwrap().contains("needs ?seq=N"),
        "{refused}"
    );
    assert_eq!(app.json("POST", "/visit?seq=abc").0, 400);
    assert_eq!(app.json("GET", "/visits/0").0, 400);

    // Read back from the replica; a visit nobody wrote is 404 after asking the primary too.
    let (status, read) = app.json("GET", "/visits/42");
    assert_eq!(status, 200, "{read}");
    assert_eq!(
        (
            read["seq"].as_u64(),
            read["servedBy"].as_str(),
            read["source"].as_str()
        ),
        (Some(42), Some("web1"), Some("replica"))
    );
    assert!(read["visitedAt"].as_str().unwrap().ends_with('Z'), "{read}");
    assert_eq!(app.json("GET", "/visits/999").0, 404);

    // The rows are in MariaDB, and the application's connections used TLS.
    assert_eq!(
        db.sql("SELECT seq, served_by FROM rampart.visits ORDER BY seq"),
        "42\tweb1\n43\tweb1\n"
    );
    let tls_accepts: u64 = db
        .sql("SHOW GLOBAL STATUS LIKE 'Ssl_accepts'")
        .split('\t')
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(tls_accepts > 0, "no TLS handshake on the server");

    // The primary moves (a promotion rewrites the file): the next write follows at once.
    let dead = format!("127.0.0.1:{}", free_port());
    std::fs::write(&primary_file, format!("{dead}\n")).unwrap();
    let (status, failed) = app.json("POST", "/visit?seq=50");
    assert_eq!(status, 503, "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains(&format!("primary {dead}")),
        "{failed}"
    );
    std::fs::write(&primary_file, &primary).unwrap();
    assert_eq!(app.json("POST", "/visit?seq=50").0, 201);

    // The counters saw all of it.
    let (status, metrics) = app.request("GET", "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        sample(
            &metrics,
            "rampart_app_requests_total{route=\"/visit\",code=\"201\"}"
        ),
        Some(3),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "rampart_app_requests_total{route=\"/visit\",code=\"503\"}"
        ),
        Some(1),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "rampart_app_requests_total{route=\"/visits/{seq}\",code=\"404\"}"
        ),
        Some(1),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "rampart_app_errors_total{route=\"/visit\"}"),
        Some(1),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "rampart_app_errors_total{route=\"/\"}"),
        Some(0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "rampart_app_database_errors_total{server=\"primary\"}"
        ),
        Some(1),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "rampart_app_database_errors_total{server=\"replica\"}"
        ),
        Some(0),
        "{metrics}"
    );
    assert_eq!(app.json("GET", "/nowhere").0, 404);
    let metrics = app.request("GET", "/metrics").1;
    assert_eq!(
        sample(
            &metrics,
            "rampart_app_requests_total{route=\"other\",code=\"404\"}"
        ),
        Some(1),
        "{metrics}"
    );

    // An application trusting another CA refuses this server: nothing is written.
    let other = make_pki(dir.path(), "other");
    let mut args = common(&other.ca);
    args.push(format!("--db-primary={primary}"));
    let distrusting = AppProcess::start(&args);
    let (status, refused) = distrusting.json("POST", "/visit?seq=60");
    assert_eq!(status, 503, "{refused}");
    let message = refused["error"].as_str().unwrap();
    assert!(message.contains("certificate"), "{message}");
    assert_eq!(
        db.sql("SELECT COUNT(*) FROM rampart.visits WHERE seq = 60"),
        "0\n"
    );
}

#[test]
fn stops_cleanly_on_sigterm_and_refuses_a_bad_ca_file() {
    let dir = TempDir::new().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rampart-app"))
        .args(["--host-name=web1", "--db-primary=127.0.0.1:1"])
        .arg(format!("--db-ca={}", ca.display()))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("holds no PEM certificate"), "{stderr}");

    let pki = make_pki(dir.path(), "rampart");
    let mut app = AppProcess::start(&[
        "--host-name=web2".to_owned(),
        "--db-primary=127.0.0.1:1".to_owned(),
        format!("--db-ca={}", pki.ca.display()),
    ]);
    assert_eq!(app.request("GET", "/").0, 200);
    let status = Command::new("kill")
        .args(["-TERM", &app.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = app.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "rampart-app still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0));
}

/// Issue #9: with `--db-probe` the primary is the one host whose read_only is 0.
#[test]
fn finds_the_primary_by_its_read_only_flag() {
    let dir = TempDir::new().unwrap();
    let (pki, db, password_file) = app_database(dir.path(), APP_PASSWORD);
    let live = format!("127.0.0.1:{}", db.port);
    let dead = format!("127.0.0.1:{}", free_port());
    let app = |probe: String| {
        AppProcess::start(&[
            "--host-name=web1".to_owned(),
            format!("--db-password-file={}", password_file.display()),
            format!("--db-ca={}", pki.ca.display()),
            format!("--db-probe={probe}"),
        ])
    };
    let count = |seq: u64| {
        db.sql(&format!(
            "SELECT COUNT(*) FROM rampart.visits WHERE seq = {seq}"
        ))
    };

    // A host that does not answer is skipped; the writable one takes the write.
    let probing = app(format!("{dead},{live}"));
    let (status, visit) = probing.json("POST", "/visit?seq=1");
    assert_eq!(status, 201, "{visit}");

    // Fenced (read_only = 1, as promotion does to a reachable old primary): the write
    // fails, the new probe finds no writable host, and nothing is written anywhere.
    db.sql("SET GLOBAL read_only = 1");
    let (status, refused) = probing.json("POST", "/visit?seq=2");
    assert_eq!(status, 503, "{refused}");
    let message = refused["error"].as_str().unwrap();
    assert!(
        message.contains("no database host is writable"),
        "{message}"
    );
    assert!(message.contains(&format!("{live}: read-only")), "{message}");
    assert_eq!(count(2), "0\n");

    // Writable again (a promotion): the next write asks again and lands.
    db.sql("SET GLOBAL read_only = 0");
    let (status, visit) = probing.json("POST", "/visit?seq=3");
    assert_eq!(status, 201, "{visit}");
    assert_eq!(count(3), "1\n");

    // Two writable hosts are split brain: the application writes to neither.
    let split = app(format!("{live},{live}"));
    let (status, refused) = split.json("POST", "/visit?seq=4");
    assert_eq!(status, 503, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("are all writable"),
        "{refused}"
    );
    assert_eq!(count(4), "0\n");
}

/// Request ids on POST /visit are stored with the visit and never deduplicated, so the
/// lab's checker can see a replayed POST; a table made before request ids gets the column.
#[test]
fn request_ids_are_recorded_and_a_replay_shows() {
    let dir = TempDir::new().unwrap();
    let (pki, db, password_file) = app_database(dir.path(), APP_PASSWORD);
    // A visits table as an older version made it, with a row, and the ALTER grant the
    // rendered bootstrap SQL gives.
    db.sql(
        "CREATE TABLE rampart.visits (seq BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, \
         served_by VARCHAR(63) NOT NULL, \
         visited_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB; \
         INSERT INTO rampart.visits (served_by) VALUES ('web0'); \
         GRANT ALTER ON rampart.* TO 'rampart_app'@'127.0.0.1';",
    );
    let app = AppProcess::start(&[
        "--host-name=web1".to_owned(),
        format!("--db-password-file={}", password_file.display()),
        format!("--db-ca={}", pki.ca.display()),
        format!("--db-primary=127.0.0.1:{}", db.port),
    ]);
    let (status, first) = app.json("POST", "/visit?request=run-1.a_b");
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["requestId"], "run-1.a_b", "{first}");
    // The same id again is a second visit: the application does not hide a replay.
    let (status, second) = app.json("POST", "/visit?request=run-1.a_b");
    assert_eq!(status, 201, "{second}");
    assert_ne!(first["seq"], second["seq"]);
    assert_eq!(
        db.sql("SELECT COUNT(*) FROM rampart.visits WHERE request_id = 'run-1.a_b'"),
        "2\n"
    );
    // Without an id the column stays empty; the old row is untouched.
    let (status, plain) = app.json("POST", "/visit");
    assert_eq!(status, 201, "{plain}");
    assert!(plain.get("requestId").is_none(), "{plain}");
    assert_eq!(
        db.sql("SELECT served_by, request_id IS NULL FROM rampart.visits WHERE seq = 1"),
        "web0\t1\n"
    );
    let (status, refused) = app.json("POST", "/visit?request=a%20b");
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .starts_with("request is \"a b\""),
        "{refused}"
    );
    let (status, read) = app.json("GET", &format!("/visits/{}", first["seq"]));
    assert_eq!((status, &read["requestId"]), (200, &first["requestId"]));
}

/// A process killed when dropped, also when an assertion fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `port` takes connections (the first one starts a socket-activated program).
fn wait_listening(child: &mut Child, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("exited before listening ({status})");
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on {port} after 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Socket activation as systemd does it (`systemd-socket-activate` sets LISTEN_FDS and
/// LISTEN_PID): the application serves on the socket it was handed, and refuses one that
/// listens elsewhere than --listen.
#[test]
fn serves_on_a_socket_handed_over_by_systemd() {
    let dir = TempDir::new().unwrap();
    let pki = make_pki(dir.path(), "rampart");
    let port = free_port();
    let log = dir.path().join("app.log");
    let activate = |listen: u16| {
        let mut command = Command::new("systemd-socket-activate");
        command
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(env!("CARGO_BIN_EXE_rampart-app"))
            .arg(format!("--listen=127.0.0.1:{listen}"))
            .args(["--host-name=web1", "--db-primary=127.0.0.1:1"])
            .arg(format!("--db-ca={}", pki.ca.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        command
    };
    let mut child = Killed(
        activate(port)
            .spawn()
            .expect("systemd-socket-activate (Debian's systemd package) runs"),
    );
    wait_listening(&mut child.0, port);
    // systemd-socket-activate accepts nothing itself: the application serves the socket
    // from the first connection on.
    let app = AppClient { port };
    assert_eq!(app.request("GET", "/healthz"), (200, "ok\n".to_owned()));
    drop(child);
    let started = std::fs::read_to_string(&log).unwrap();
    assert!(
        started.contains("socket from the supervisor (LISTEN_FDS)"),
        "{started}"
    );

    let elsewhere = free_port();
    let mut child = Killed(activate(elsewhere).spawn().unwrap());
    // The application starts on the first connection and refuses the socket.
    wait_listening(&mut child.0, port);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "rampart-app kept running");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(2));
    let refused = std::fs::read_to_string(&log).unwrap();
    assert!(
        refused.contains(&format!(
            "listens on 127.0.0.1:{port}, but --listen is 127.0.0.1:{elsewhere}"
        )),
        "{refused}"
    );
}
