//! `rampart-app`: the application server behind nginx on every web host.
//!
//! Exit codes: 0 after a clean shutdown (SIGTERM or Ctrl-C), 2 when it could not start
//! (bad arguments, unreadable CA certificate, address in use); see `rampart_cli::exit`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use rampart_app::db::{Database, DatabaseConfig};
use rampart_app::http::{router, App};
use rampart_app::listen;
use rampart_app::primary::{Endpoint, PrimaryLocator};

/// Answers which host served the request and records visits in MariaDB (writes on the
/// primary, reads on the local replica), with request and error counters at /metrics.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on; nginx proxies to it, so it stays on loopback. A socket handed
    /// over by the supervisor (socket activation, LISTEN_FDS) must listen here.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// This host's name as in hosts/topology.json: answered by GET / and stored with
    /// every visit.
    #[arg(long, visible_alias = "host", value_parser = parse_host_name)]
    host_name: String,

    /// The primary database as ADDRESS:PORT, when it never moves.
    #[arg(long, value_name = "ADDRESS:PORT", value_parser = |s: &str| Endpoint::parse(s, "--db-primary"),
          required_unless_present_any = ["db_primary_file", "db_probe"],
          conflicts_with_all = ["db_primary_file", "db_probe"])]
    db_primary: Option<Endpoint>,

    /// A runtime file holding the primary's ADDRESS:PORT, read again before every write:
    /// a promotion rewrites it and the next write goes to the new primary.
    #[arg(long, value_name = "FILE", conflicts_with = "db_probe")]
    db_primary_file: Option<PathBuf>,

    /// Every database host as ADDRESS:PORT (repeat, or separate with commas): the primary
    /// is the one whose `@@global.read_only` is 0, asked on the first write and after any
    /// failed one, so a promotion needs nothing else (docs/failover.md).
    #[arg(long, value_name = "ADDRESS:PORT", value_delimiter = ',',
          value_parser = |s: &str| Endpoint::parse(s, "--db-probe"))]
    db_probe: Vec<Endpoint>,

    /// A replica to read from (normally this host's own), as ADDRESS:PORT; reads it lacks
    /// fall back to the primary.
    #[arg(long, value_name = "ADDRESS:PORT", value_parser = |s: &str| Endpoint::parse(s, "--db-replica"))]
    db_replica: Option<Endpoint>,

    /// The database holding the visits table.
    #[arg(long, default_value = "rampart")]
    db_name: String,

    /// The application's MariaDB user.
    #[arg(long, default_value = "rampart_app")]
    db_user: String,

    /// The file holding that user's password (the app-db-password secret).
    #[arg(
        long,
        visible_alias = "password-file",
        value_name = "FILE",
        default_value = "/run/secrets/rampart/app-db-password"
    )]
    db_password_file: PathBuf,

    /// The rampart CA certificate (PEM); the database's certificate must chain to it.
    #[arg(
        long,
        visible_alias = "ca",
        value_name = "FILE",
        default_value = rampart_cli::paths::CA_CERT
    )]
    db_ca: PathBuf,

    /// Seconds to wait for a database connection before answering 503.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, value_parser = parse_timeout)]
    db_timeout: f64,

    /// Seconds a write may take in all before answering 503 with its outcome unknown (a
    /// hung or fenced primary answers nothing).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = parse_timeout)]
    db_write_timeout: f64,
}

fn parse_host_name(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 63
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a host name (expected lowercase letters, digits and \"-\", starting with a letter, as in hosts/topology.json)"))
    }
}

fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds <= 600.0 => Ok(seconds),
        _ => Err(format!(
            "{text:?} is not a timeout (expected seconds, more than 0 and at most 600)"
        )),
    }
}

fn main() -> ExitCode {
    match exec() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("rampart-app: {error:#}");
            ExitCode::from(rampart_cli::exit::CANNOT_RUN)
        }
    }
}

fn exec() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // Both rustls providers may be compiled in when the whole workspace is built together;
    // say which one TLS to the database uses. An error means one is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let ca = std::fs::read_to_string(&cli.db_ca).with_context(|| {
        format!(
            "cannot read the CA certificate --db-ca {}",
            cli.db_ca.display()
        )
    })?;
    anyhow::ensure!(
        ca.contains("-----BEGIN CERTIFICATE-----"),
        "--db-ca {} holds no PEM certificate (expected the rampart CA, ca.pem)",
        cli.db_ca.display()
    );
    let primary = match (cli.db_primary, cli.db_primary_file) {
        (Some(endpoint), _) => PrimaryLocator::Fixed(endpoint),
        (None, Some(path)) => PrimaryLocator::File(path),
        // clap requires one of the three.
        (None, None) => PrimaryLocator::Probe(cli.db_probe),
    };
    let config = DatabaseConfig {
        name: cli.db_name,
        user: cli.db_user,
        password_file: cli.db_password_file,
        ca_file: cli.db_ca,
        connect_timeout: Duration::from_secs_f64(cli.db_timeout),
        write_timeout: Duration::from_secs_f64(cli.db_write_timeout),
    };
    let app = Arc::new(App::new(
        cli.host_name,
        Database::new(config, primary, cli.db_replica),
    ));

    // Before the runtime's threads exist: it edits the environment.
    let (listener, origin) = listen::listener(cli.listen)?;
    listener
        .set_nonblocking(true)
        .context("cannot make the listening socket non-blocking")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)
            .context("cannot use the listening socket")?;
        eprintln!(
            "rampart-app: serving {} on http://{} ({})",
            app.host_name,
            cli.listen,
            origin.describe()
        );
        axum::serve(listener, router(app.clone()))
            .with_graceful_shutdown(shutdown())
            .await
            .context("serving HTTP failed")?;
        app.database.disconnect().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGTERM (systemd, the lab) or Ctrl-C. axum then stops accepting and
/// finishes the requests in flight; with socket activation the next process accepts what
/// arrives meanwhile.
async fn shutdown() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            // Without a SIGTERM handler, Ctrl-C still works.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn primary_flag_or_file_is_required_but_not_both() {
        let base = ["rampart-app", "--host-name", "web1"];
        assert!(Cli::try_parse_from(base).is_err());
        assert!(
            Cli::try_parse_from([&base[..], &["--db-primary", "10.42.0.11:3306"]].concat()).is_ok()
        );
        assert!(Cli::try_parse_from(
            [&base[..], &["--db-primary-file", "/run/rampart/primary"]].concat()
        )
        .is_ok());
        assert!(Cli::try_parse_from(
            [
                &base[..],
                &[
                    "--db-primary",
                    "10.42.0.11:3306",
                    "--db-primary-file",
                    "/run/rampart/primary"
                ]
            ]
            .concat()
        )
        .is_err());
    }

    #[test]
    fn short_aliases_name_the_same_settings() {
        let cli = Cli::try_parse_from([
            "rampart-app",
            "--host",
            "web2",
            "--db-primary",
            "10.42.0.11:3306",
            "--password-file",
            "/run/pw",
            "--ca",
            "/pki/ca.pem",
        ])
        .unwrap();
        assert_eq!(cli.host_name, "web2");
        assert_eq!(cli.db_password_file, PathBuf::from("/run/pw"));
        assert_eq!(cli.db_ca, PathBuf::from("/pki/ca.pem"));
    }

    #[test]
    fn bad_values_name_the_flag() {
        let error =
            Cli::try_parse_from(["rampart-app", "--host-name", "Web1", "--db-primary", "x:1"])
                .err()
                .unwrap()
                .to_string();
        assert!(error.contains("not a host name"), "{error}");
        let error = Cli::try_parse_from([
            "rampart-app",
            "--host-name",
            "web1",
            "--db-primary",
            "10.42.0.11",
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(
            error.contains("--db-primary: \"10.42.0.11\" is not a database endpoint"),
            "{error}"
        );
        let error = Cli::try_parse_from([
            "rampart-app",
            "--host-name",
            "web1",
            "--db-primary",
            "h:1",
            "--db-timeout",
            "0",
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(error.contains("is not a timeout"), "{error}");
    }
}
