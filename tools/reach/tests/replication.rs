//! Replication over TLS between two real MariaDB servers on loopback, seen the way
//! `reach check` sees it: through the replica's real mysqld exporter.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::tls::{free_port, Pki};
use support::*;

struct Db {
    socket: PathBuf,
    _proc: Proc,
}

/// Initialises a datadir and starts `mariadbd` on `address:port` with TLS.
fn mariadb(
    dir: &Path,
    name: &str,
    id: u32,
    address: &str,
    port: u16,
    pki: &Pki,
    leaf: &tls::Leaf,
) -> Db {
    let datadir = dir.join(name);
    run(Command::new("mariadb-install-db")
        .arg("--no-defaults")
        .arg(format!("--datadir={}", datadir.display()))
        .args([
            "--user=root",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        ]));
    let socket = dir.join(format!("{name}.sock"));
    let mut cmd = Command::new("mariadbd");
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", datadir.display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!(
            "--pid-file={}",
            dir.join(format!("{name}.pid")).display()
        ))
        .arg(format!(
            "--log-error={}",
            dir.join(format!("{name}.err")).display()
        ))
        .arg(format!("--port={port}"))
        .arg(format!("--bind-address={address}"))
        .arg(format!("--server-id={id}"))
        .arg("--log-bin=binlog")
        .arg("--user=root")
        .arg("--skip-name-resolve")
        .arg("--innodb-buffer-pool-size=16M")
        .arg(format!("--ssl-ca={}", pki.ca().display()))
        .arg(format!("--ssl-cert={}", leaf.cert.display()))
        .arg(format!("--ssl-key={}", leaf.key.display()));
    let proc = Proc::spawn_until_port(cmd, &format!("{address}:{port}"));
    Db {
        socket,
        _proc: proc,
    }
}

fn sql(db: &Db, statement: &str) {
    run(Command::new("mariadb")
        .arg("--no-defaults")
        .arg(format!("--socket={}", db.socket.display()))
        .args(["-u", "root", "-e", statement]));
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
    let mut exporter = Command::new("prometheus-mysqld-exporter");
    exporter
        .arg(format!(
            "--web.listen-address={replica_addr}:{exporter_port}"
        ))
        .env(
            "DATA_SOURCE_NAME",
            format!("root@unix({})/", replica.socket.display()),
        );
    let _exporter = Proc::spawn_until_port(exporter, &format!("{replica_addr}:{exporter_port}"));

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
