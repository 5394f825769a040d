//! The database hosts as the renderers meant them: settings in effect, bootstrap SQL
//! idempotent, replication over verified TLS, and accounts that admit TLS clients with
//! the right credentials only.

use anyhow::{ensure, Context, Result};
use rampart_lab::daemons::{self, MariadbPaths};
use rampart_lab::secrets;
use rampart_topology::Host;

use super::{Ctx, Proof};

/// One query as root over the socket, tab-separated rows.
pub(super) fn sql(ctx: &Ctx, host: &Host, query: &str) -> Result<String> {
    client(ctx, host, &["-N", "-B", "-e", query])
}

/// The `mariadb` client as root over the socket with `args`; its standard output.
fn client(ctx: &Ctx, host: &Host, args: &[&str]) -> Result<String> {
    let query = args.last().copied().unwrap_or_default();
    let dirs = ctx.lab.host_dirs(&host.name);
    let out = MariadbPaths::new(&dirs)
        .client(&ctx.lab.namespace(&host.name))
        .args(args)
        .output()
        .with_context(|| format!("cannot run mariadb on {}", host.name))?;
    ensure!(
        out.status.success(),
        "{query} on {}: {}",
        host.name,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The database hosts, the writable one (`read_only=0`) first.
fn primary_and_replicas(ctx: &Ctx) -> Result<(Host, Vec<Host>)> {
    let t = &ctx.lab.topology;
    let mut primary = None;
    let mut replicas = Vec::new();
    for host in t.database_hosts() {
        if sql(ctx, host, "SELECT @@read_only")? == "0" {
            ensure!(
                primary.is_none(),
                "two writable database hosts: {} and {}",
                primary.map(|p: Host| p.name).unwrap_or_default(),
                host.name
            );
            primary = Some(host.clone());
        } else {
            replicas.push(host.clone());
        }
    }
    let primary = primary.context("no database host is writable (read_only=0)")?;
    ensure!(!replicas.is_empty(), "no replica");
    Ok((primary, replicas))
}

pub fn database(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let (primary, replicas) = primary_and_replicas(ctx)?;

    // What the primary must be: TLS only, GTID strict, row binlog, semi-sync AFTER_SYNC.
    let got = sql(
        ctx,
        &primary,
        "SELECT @@have_ssl, @@require_secure_transport, @@log_bin, @@binlog_format, \
         @@gtid_strict_mode, @@read_only, @@rpl_semi_sync_master_enabled, \
         @@rpl_semi_sync_master_wait_point",
    )?;
    ensure!(
        got == "YES\t1\t1\tROW\t1\t0\t1\tAFTER_SYNC",
        "{} settings: got {got:?}, expected TLS, GTID strict, ROW binlog, writable, semi-sync AFTER_SYNC",
        primary.name
    );
    proof.note(format!(
        "{}: TLS required, GTID strict, ROW binlog, writable, semi-sync master AFTER_SYNC",
        primary.name
    ));

    for replica in &replicas {
        // Semi-sync master off on a replica: its SQL thread would wait for acknowledgements
        // of its own; the failover agent switches it on when this host leads
        // (docs/failover.md).
        let got = sql(
            ctx,
            replica,
            "SELECT @@have_ssl, @@require_secure_transport, @@read_only, \
             @@rpl_semi_sync_slave_enabled, @@rpl_semi_sync_master_enabled",
        )?;
        ensure!(
            got == "YES\t1\t1\t1\t0",
            "{} settings: got {got:?}, expected TLS, read-only, semi-sync slave on and master off",
            replica.name
        );
        let status = client(ctx, replica, &["-e", "SHOW SLAVE STATUS\\G"])?;
        for line in [
            "Slave_IO_Running: Yes",
            "Slave_SQL_Running: Yes",
            "Master_SSL_Allowed: Yes",
            "Master_SSL_Verify_Server_Cert: Yes",
            "Using_Gtid: Slave_Pos",
        ] {
            ensure!(
                status.contains(line),
                "{}: SHOW SLAVE STATUS lacks {line:?}:\n{status}",
                replica.name
            );
        }
        proof.note(format!(
            "{}: read-only, replicating from {} over verified TLS with GTID",
            replica.name, primary.name
        ));
    }

    // The bootstrap runs at every start: applying it again changes nothing and fails not.
    let dirs = ctx.lab.host_dirs(&primary.name);
    let values = secrets::read(&dirs)?;
    daemons::mariadb_bootstrap(&ctx.lab.namespace(&primary.name), &dirs, &values)?;
    proof.note(format!(
        "bootstrap SQL applied again on {}: no error",
        primary.name
    ));

    accounts(ctx, &primary, &replicas[0], proof)?;
    proof.summary = format!(
        "{} writable, {} read-only and replicating over verified TLS; wrong logins refused",
        primary.name,
        replicas
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// From a replica's namespace to the primary's MariaDB port: the application and the
/// replication account need TLS, replication also the replica's own client certificate.
fn accounts(ctx: &Ctx, primary: &Host, replica: &Host, proof: &mut Proof) -> Result<()> {
    let port = ctx.port("mysql")?.to_string();
    let address = primary.address.to_string();
    let own = ctx.lab.host_dirs(&replica.name);
    let other = ctx.lab.host_dirs(&primary.name);
    let values = secrets::read(&own)?;
    let secret = |name: &str| {
        values
            .get(name)
            .cloned()
            .with_context(|| format!("no secret {name} on {}", replica.name))
    };
    let ca = own.pki.join("ca.pem").display().to_string();
    let pem = |dirs: &rampart_lab::render::HostDirs, stem: &str| {
        (
            dirs.pki.join(format!("{stem}.pem")).display().to_string(),
            dirs.pki.join(format!("{stem}.key")).display().to_string(),
        )
    };
    let (own_cert, own_key) = pem(&own, "replication-client");
    let (other_cert, other_key) = pem(&other, "replication-client");
    let app = format!("-p{}", secret("app-db-password")?);
    let repl = format!("-p{}", secret("replication-password")?);
    let tls = ["--ssl", "--ssl-ca", ca.as_str(), "--ssl-verify-server-cert"];
    let base = [
        "--no-defaults",
        "--host",
        address.as_str(),
        "--port",
        port.as_str(),
    ];
    let cases: [(&str, Vec<&str>, bool); 5] = [
        (
            "application without TLS",
            vec!["--skip-ssl", "-urampart_app", &app],
            false,
        ),
        (
            "application over verified TLS",
            [&tls[..], &["-urampart_app", &app]].concat(),
            true,
        ),
        (
            "replication without TLS",
            vec!["--skip-ssl", "-urampart_repl", &repl],
            false,
        ),
        (
            "replication over TLS without a client certificate",
            [&tls[..], &["-urampart_repl", &repl]].concat(),
            false,
        ),
        (
            "replication with another host's client certificate",
            [
                &tls[..],
                &[
                    "--ssl-cert",
                    &other_cert,
                    "--ssl-key",
                    &other_key,
                    "-urampart_repl",
                    &repl,
                ],
            ]
            .concat(),
            false,
        ),
    ];
    let mut run = |what: &str, args: &[&str], admitted: bool| -> Result<()> {
        let mut all: Vec<&str> = base.to_vec();
        all.extend_from_slice(args);
        all.extend_from_slice(&["-N", "-B", "-e", "SELECT 1"]);
        let out = ctx.exec(&replica.name, "mariadb", &all)?;
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        ensure!(
            out.status.success() == admitted,
            "{what} from {} to {}: expected {}, got {}",
            replica.name,
            primary.name,
            if admitted { "admitted" } else { "refused" },
            if out.status.success() {
                "admitted".to_string()
            } else {
                format!("refused ({stderr})")
            }
        );
        proof.note(format!(
            "{what}: {}",
            if admitted {
                "admitted".to_string()
            } else {
                format!("refused ({})", stderr.lines().last().unwrap_or(""))
            }
        ));
        Ok(())
    };
    for (what, args, admitted) in &cases {
        run(what, args, *admitted)?;
    }
    run(
        "replication with its own client certificate",
        &[
            &tls[..],
            &[
                "--ssl-cert",
                &own_cert,
                "--ssl-key",
                &own_key,
                "-urampart_repl",
                &repl,
            ],
        ]
        .concat(),
        true,
    )?;
    Ok(())
}
