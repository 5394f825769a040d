//! `rampart-db`: status, promotion, fencing and rejoin of rampart's MariaDB hosts.
//!
//! A binary of its own, not a subcommand of `certtool` or `reach`: it logs in to the
//! databases with an administrative account and runs as a systemd unit on the database
//! hosts, while the other tools stay free of credentials. The logic lives in
//! `rampart_database`; see docs/failover.md for the procedure.
//!
//! Exit codes: 0 done (or already so), 1 findings: status found problems, or promotion or
//! rejoin was refused or failed, 2 could not run (bad arguments, unreadable topology or
//! secret, candidate unreachable). See `rampart_cli::exit`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use rampart_database::{self as db, fence::Hook, Access, Cluster, Failover, Settings};
use rampart_topology::Topology;

#[derive(Parser)]
#[command(version, about, long_about = None, arg_required_else_help = true)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

/// Where the hosts are and how to log in to them.
#[derive(Args)]
struct Common {
    /// The topology naming the database hosts (roles databasePrimary, databaseReplica).
    #[arg(
        long,
        global = true,
        env = "RAMPART_TOPOLOGY",
        default_value = "hosts/topology.json"
    )]
    topology: PathBuf,
    /// The rampart CA certificate every MariaDB server certificate is verified against.
    #[arg(
        long,
        global = true,
        env = "RAMPART_DB_CA",
        default_value = rampart_cli::paths::CA_CERT
    )]
    ca: PathBuf,
    /// The MariaDB account to log in with (privileges: see docs/failover.md).
    #[arg(long, global = true, env = "RAMPART_DB_USER", default_value = db::ADMIN_USER)]
    user: String,
    /// File holding that account's password (a runtime secret, never in the Nix store).
    #[arg(
        long,
        global = true,
        env = "RAMPART_DB_PASSWORD_FILE",
        default_value = "/run/secrets/rampart/failover-db-password"
    )]
    password_file: PathBuf,
    /// Seconds a host may take to accept a connection before it counts as unreachable.
    #[arg(long, global = true, default_value_t = 3.0, value_parser = seconds)]
    connect_timeout: f64,
    /// Print one JSON document instead of tables (schema: `rampart_database::report`).
    #[arg(long, global = true)]
    json: bool,
}

/// How to fence and how long to wait.
#[derive(Args)]
struct Fencing {
    /// Shell command that applies an nft script (on its stdin) to a host: `{host}`,
    /// `{address}`, `{port}` and `{action}` (fence, lift) are replaced. Without it only
    /// `read_only` fences, and every promotion warns.
    #[arg(long, env = "RAMPART_DB_FENCE_HOOK")]
    fence_hook: Option<String>,
    /// Seconds to wait for a replica to apply what it received (promote) or to catch up
    /// with the primary (rejoin).
    #[arg(long, default_value_t = 30.0, value_parser = seconds)]
    timeout: f64,
}

#[derive(Subcommand)]
enum Command {
    /// Show every database host's role, GTID positions, replication and semi-sync state.
    /// Exit 1 unless exactly one host is writable and every other replicates from it.
    Status,
    /// Make HOST the primary: fence the others, wait until HOST applied everything it
    /// received, stop replication, make it writable. Refuses (exit 1) when that would
    /// lose transactions it can see, unless --force.
    Promote {
        /// The database host to promote.
        host: String,
        /// Promote even if transactions the old primary has are missing on HOST.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        fencing: Fencing,
    },
    /// Make HOST (a former primary) a read-only replica of the new primary with GTID
    /// auto-position, after checking that its history is a prefix of the primary's.
    Rejoin {
        /// The database host to turn into a replica.
        host: String,
        /// The current primary it replicates from.
        #[arg(long)]
        primary: String,
        /// The replication account on the primary.
        #[arg(long, default_value = db::REPLICATION_USER)]
        replication_user: String,
        /// File holding the replication account's password.
        #[arg(
            long,
            env = "RAMPART_DB_REPLICATION_PASSWORD_FILE",
            default_value = "/run/secrets/rampart/replication-password"
        )]
        replication_password_file: PathBuf,
        /// The PKI directory on HOST (its MariaDB reads the replication client
        /// certificate there); `{host}` is replaced by HOST.
        #[arg(
            long,
            env = "RAMPART_DB_REPLICA_PKI_DIR",
            default_value = rampart_cli::paths::PKI_DIR
        )]
        replica_pki_dir: String,
        #[command(flatten)]
        fencing: Fencing,
    },
    /// Fence HOST: read_only=1 if it answers, and the firewall fence through the hook.
    Fence {
        /// The database host to fence.
        host: String,
        #[command(flatten)]
        fencing: Fencing,
    },
}

fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => Ok(s),
        _ => Err(format!("got {text:?}, expected seconds in (0, 3600]")),
    }
}

fn exec(cli: Cli) -> Result<ExitCode> {
    let common = &cli.common;
    let topology = Topology::load(&common.topology)?;
    let cluster = Cluster::from_topology(&topology)?;
    let password = db::read_secret(&common.password_file)?;
    let access = Access {
        ca: common.ca.clone(),
        user: common.user.clone(),
        password,
        connect_timeout: Duration::from_secs_f64(common.connect_timeout),
        io_timeout: Duration::from_secs(10),
    };
    let mut settings = Settings {
        access,
        replication_user: db::REPLICATION_USER.to_string(),
        replication_password_file: PathBuf::new(),
        replica_pki_dir: String::new(),
        hook: None,
        catch_up_timeout: Duration::from_secs(30),
    };
    let fencing = |f: &Fencing, settings: &mut Settings| {
        settings.hook = f.fence_hook.clone().map(Hook::new);
        settings.catch_up_timeout = Duration::from_secs_f64(f.timeout);
    };
    let report = match &cli.command {
        Command::Status => {
            let report = Failover {
                cluster: &cluster,
                settings: &settings,
            }
            .status();
            print(common.json, &report, report.to_text())?;
            return Ok(rampart_cli::exit::from_findings(
                !report.findings.is_empty(),
            ));
        }
        Command::Promote {
            host,
            force,
            fencing: f,
        } => {
            fencing(f, &mut settings);
            failover(&cluster, &settings).promote(host, *force)
        }
        Command::Rejoin {
            host,
            primary,
            replication_user,
            replication_password_file,
            replica_pki_dir,
            fencing: f,
        } => {
            fencing(f, &mut settings);
            settings.replication_user = replication_user.clone();
            settings.replication_password_file = replication_password_file.clone();
            settings.replica_pki_dir = replica_pki_dir.clone();
            failover(&cluster, &settings).rejoin(host, primary)
        }
        Command::Fence { host, fencing: f } => {
            fencing(f, &mut settings);
            failover(&cluster, &settings).fence(host)
        }
    }?;
    print(common.json, &report, report.to_text())?;
    Ok(rampart_cli::exit::from_findings(
        !report.outcome.is_success(),
    ))
}

fn failover<'a>(cluster: &'a Cluster, settings: &'a Settings) -> Failover<'a> {
    Failover { cluster, settings }
}

fn print(json: bool, report: &impl serde::Serialize, text: String) -> Result<()> {
    if json {
        let line = serde_json::to_string(report).context("encoding the report as JSON")?;
        println!("{line}");
    } else {
        print!("{text}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match exec(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{err:#}");
            ExitCode::from(rampart_cli::exit::CANNOT_RUN)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn timeouts_must_be_positive_seconds() {
        assert_eq!(seconds("2.5"), Ok(2.5));
        for bad in ["0", "-1", "x", "inf", "7200"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }

    /// Every argument of `cmd` and its subcommands: (environment variable, default).
    fn env_defaults(cmd: &clap::Command) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = cmd
            .get_arguments()
            .filter_map(|arg| {
                let env = arg.get_env()?.to_string_lossy().into_owned();
                let default = arg
                    .get_default_values()
                    .first()?
                    .to_string_lossy()
                    .into_owned();
                Some((env, default))
            })
            .collect();
        for sub in cmd.get_subcommands() {
            out.extend(env_defaults(sub));
        }
        out
    }

    /// The secret files rampart-db reads by default are where lib/secrets.nix says, under
    /// the variables it names (the NixOS wrapper exports those): one list, not two.
    #[test]
    fn secret_defaults_are_the_lists() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let expr = format!(
            "let lib = import {}/lib {{ }}; in {{ dir = lib.settings.secretsDir; \
             readers = lib.secrets.forHost {{ topology = lib.shippedTopology; \
               host = builtins.head (lib.topology.hostsWithRole lib.shippedTopology \"databasePrimary\"); }}; }}",
            repo.display()
        );
        let doc: serde_json::Value = rampart_nix::instantiate_json(&expr).unwrap();
        let dir = doc["dir"].as_str().unwrap();
        let mut wanted = Vec::new();
        for (secret, entry) in doc["readers"].as_object().unwrap() {
            for reader in entry["readers"].as_array().unwrap() {
                if reader["name"] == "rampart-db" {
                    let variable = reader["variable"].as_str().unwrap().to_string();
                    wanted.push((variable, format!("{dir}/{secret}")));
                }
            }
        }
        assert_eq!(wanted.len(), 2, "{doc}");
        let ours = env_defaults(&Cli::command());
        for pair in &wanted {
            assert!(
                ours.contains(pair),
                "rampart-db has no argument {pair:?}; its defaults: {ours:?}"
            );
        }
    }

    #[test]
    fn rejoin_needs_the_new_primary() {
        let err = Cli::try_parse_from(["rampart-db", "rejoin", "web1"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--primary"), "{err}");
    }
}
