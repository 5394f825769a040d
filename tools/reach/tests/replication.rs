//! Replication over TLS between two real MariaDB servers on loopback, seen the way
//! `reach check` sees it: through the replica's real mysqld exporter.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rampart_lab::local::{LocalDaemon, LocalMariadb, LocalMariadbSpec, LocalReady, TlsFiles};
use serde_json::Value;
use support::tls::{free_port, Pki};
use support::*;

/// Starts `mariadbd` on `address:port` with TLS, through the lab's loopback start-up.
fn mariadb(
    dir: &Path,
    name: &str,
    id: u32,
    address: &str,
    port: u16,
    pki: &Pki,
    leaf: &tls::Leaf,
) -> LocalMariadb {
    let spec = LocalMariadbSpec {
        name: name.into(),
        server_id: id,
        address: format!("{address}:{port}").parse().unwrap(),
        tls: Some(TlsFiles {
            ca: pki.ca(),
            cert: leaf.cert.clone(),
            key: leaf.key.clone(),
        }),
        extra: vec![],
    };
    LocalMariadb::start(dir, &spec).unwrap_or_else(|e| panic!("{e}"))
}

fn sql(db: &LocalMariadb, statement: &str) {
    db.sql(statement).unwrap_or_else(|e| panic!("{e}"));
}

fn check(topology: &Path) -> (i32, Vec<(String, String, String)>, String) {
    let (code, stdout, stderr) = outcome(
        Command::new(reach())
            .arg("check")
            .arg("--topology")
            .arg(topology)
            .args(["--from", "lb", "--only", "replication", "--json"]),
    );
    let v: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    let rows = probe_rows(&v);
    (code, rows, format!("{stderr}{stdout}"))
}

#[test]
fn replication_over_tls_is_running_and_a_stopped_sql_thread_is_a_finding() {
    let dir = tempdir("replication");
    let pki = Pki::new();
    let (primary_addr, replica_addr) = (loopback::address(1), loopback::address(2));
    let primary_cert = pki.leaf("primary", &[&primary_addr], false);
    let replica_cert = pki.leaf("replica", &[&replica_addr], false);
    let (primary_port, replica_port, exporter_port) = (free_port(), free_port(), free_port());
    let topology = loopback::topology(&dir, &[("mysqldExporter", exporter_port)]);

    let primary = mariadb(
        &dir.path,
        "primary",
        1,
        &primary_addr,
        primary_port,
        &pki,
        &primary_cert,
    );
    let replica = mariadb(
        &dir.path,
        "replica",
        2,
        &replica_addr,
        replica_port,
        &pki,
        &replica_cert,
    );
    sql(
        &primary,
        "CREATE USER 'repl'@'%' IDENTIFIED BY 'test-only' REQUIRE SSL; \
         GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';",
    );
    sql(
        &replica,
        &format!(
            "CHANGE MASTER TO MASTER_HOST='{primary_addr}', MASTER_PORT={primary_port}, \
             MASTER_USER='repl', MASTER_PASSWORD='test-only', MASTER_SSL=1, \
             MASTER_SSL_CA='{}', MASTER_SSL_VERIFY_SERVER_CERT=1, MASTER_USE_GTID=slave_pos; \
             START SLAVE;",
            pki.ca().display()
        ),
    );
    let exporter_address = format!("{replica_addr}:{exporter_port}");
    let _exporter = LocalDaemon::start(
        "prometheus-mysqld-exporter",
        "prometheus-mysqld-exporter",
        &[format!("--web.listen-address={exporter_address}")],
        &[(
            "DATA_SOURCE_NAME".into(),
            format!("root@unix({})/", replica.socket.display()),
        )],
        &dir.path.join("exporter.log"),
        LocalReady::Port(exporter_address.parse().unwrap()),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let deadline = Instant::now() + Duration::from_secs(20);
    let (code, rows, out) = loop {
        let result = check(&topology);
        if result.0 == 0 || Instant::now() > deadline {
            break result;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(code, 0, "{out}");
    let probes: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(probes, ["io thread", "sql thread", "tls", "lag"]);
    assert_eq!(rows[2].2, "MASTER_SSL=Yes VERIFY_SERVER_CERT=Yes");

    sql(&replica, "STOP SLAVE SQL_THREAD;");
    let (code, rows, out) = check(&topology);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        rows[1],
        ("sql thread".into(), "fail".into(), "No".into()),
        "{out}"
    );
    assert_eq!(rows[3].1, "fail", "{out}");
}
