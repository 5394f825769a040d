//! `rampart-db`: the failover agent of rampart's MariaDB hosts, and what operators run:
//! status, switchover, promotion, fencing and rejoin.
//!
//! A binary of its own, not a subcommand of `certtool` or `reach`: it logs in to the
//! databases with an administrative account and to etcd with a client certificate, and
//! runs as a systemd unit on the database hosts, while the other tools stay free of
//! credentials. The agent is a subcommand, not a binary of its own, because it is the same
//! program with the same settings: one package, one set of flags and secrets, and the
//! commands an operator runs read exactly what the agent writes. The logic lives in
//! `rampart_failover` (etcd) and `rampart_database` (MariaDB); see docs/failover.md.
//!
//! Exit codes: 0 done (or already so), 1 findings: status found problems, or a switchover,
//! promotion or rejoin was refused or failed, 2 could not run (bad arguments, unreadable
//! topology or secret, etcd or the candidate unreachable). See `rampart_cli::exit`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use rampart_database::{self as db, fence::Hook, Access, Cluster, Failover, Settings};
use rampart_failover::gate::Gate;
use rampart_failover::record::{Keys, DEFAULT_PREFIX};
use rampart_failover::store::{Store, StoreConfig, StoreTls};
use rampart_failover::{manual, Agent, AgentConfig, Policy, Timing};
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
    #[command(flatten)]
    etcd: Etcd,
    #[command(flatten)]
    local: Local,
}

/// Where this host's own files are (the agent, and `rejoin` for the rejoining host). Global
/// flags, so that a unit or the lab can put every path first.
#[derive(Args)]
struct Local {
    /// The local MariaDB's socket; the agent logs in as root over it (unix_socket).
    #[arg(long, global = true, default_value = "/run/mysqld/mysqld.sock")]
    socket: PathBuf,
    /// Node exporter textfile the agent writes its metrics to.
    #[arg(long, global = true)]
    metrics: Option<PathBuf>,
    /// File holding the replication account's password (a rejoining host needs it).
    #[arg(
        long,
        global = true,
        env = "RAMPART_DB_REPLICATION_PASSWORD_FILE",
        default_value = "/run/secrets/rampart/replication-password"
    )]
    replication_password_file: PathBuf,
    /// The PKI directory of the rejoining host as its MariaDB sees it (the replication
    /// client certificate); `{host}` is replaced by its name.
    #[arg(
        long,
        global = true,
        env = "RAMPART_DB_REPLICA_PKI_DIR",
        default_value = rampart_cli::paths::PKI_DIR
    )]
    replica_pki_dir: String,
}

/// Where the failover state lives.
#[derive(Args)]
struct Etcd {
    /// Client URLs of the etcd members, comma-separated (`https://10.42.0.10:2379,…`).
    #[arg(
        long = "etcd",
        global = true,
        env = "RAMPART_ETCD_ENDPOINTS",
        value_delimiter = ','
    )]
    endpoints: Vec<String>,
    /// CA certificate that issued the etcd members' certificates (https endpoints).
    #[arg(long, global = true, env = "RAMPART_ETCD_CA")]
    etcd_ca: Option<PathBuf>,
    /// Client certificate for etcd's client-certificate authentication.
    #[arg(long, global = true, env = "RAMPART_ETCD_CERT", requires = "etcd_key")]
    etcd_cert: Option<PathBuf>,
    /// Its key.
    #[arg(long, global = true, env = "RAMPART_ETCD_KEY", requires = "etcd_cert")]
    etcd_key: Option<PathBuf>,
    /// The key prefix of the failover state.
    #[arg(long, global = true, env = "RAMPART_ETCD_PREFIX", default_value = DEFAULT_PREFIX)]
    etcd_prefix: String,
}

impl Etcd {
    fn store(&self) -> Result<(Store, Keys)> {
        Ok((Store::new(self.config()?)?, Keys::new(&self.etcd_prefix)))
    }

    fn config(&self) -> Result<StoreConfig> {
        anyhow::ensure!(
            !self.endpoints.is_empty(),
            "no etcd endpoints: pass --etcd URL[,URL…] (or set RAMPART_ETCD_ENDPOINTS)"
        );
        let tls = match (&self.etcd_ca, &self.etcd_cert, &self.etcd_key) {
            (Some(ca), Some(cert), Some(key)) => Some(StoreTls {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None, None) => None,
            _ => anyhow::bail!(
                "--etcd-ca, --etcd-cert and --etcd-key go together (got only some of them)"
            ),
        };
        if tls.is_none() && self.endpoints.iter().any(|e| e.starts_with("https://")) {
            anyhow::bail!("https etcd endpoints need --etcd-ca, --etcd-cert and --etcd-key");
        }
        Ok(StoreConfig {
            endpoints: self.endpoints.clone(),
            tls,
            op_timeout: Duration::from_secs(1),
        })
    }
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
    /// Show etcd's health, the leader, the term, the sync set and each host's lag (from
    /// the agents), then every database host's own state. Exit 1 on any finding.
    Status,
    /// Run the failover agent of this database host (docs/failover.md "The agent").
    Agent(AgentArgs),
    /// Planned switchover: the leader pauses writes, HOST (a replica in the sync set)
    /// receives everything, then takes the lead. No acknowledged write is lost.
    Switchover {
        /// The replica to hand the lead to.
        #[arg(long)]
        to: String,
        /// Seconds to wait for HOST to become the writable leader.
        #[arg(long, default_value_t = 30.0, value_parser = seconds)]
        timeout: f64,
    },
    /// Maintenance mode: automatic failover off. No agent takes a vacant lead or resets
    /// an operator's read_only; the leader keeps its lease and writer gate while healthy.
    /// Ends with `resume`.
    Pause {
        /// Why, for `status` and the other operators.
        #[arg(long)]
        reason: String,
    },
    /// Automatic failover on again after `pause`.
    Resume,
    /// Let HOST take the lead while nobody holds it. A host outside the sync set would
    /// lose writes the last leader acknowledged: refused (exit 1), naming them, unless
    /// --accept-data-loss.
    Promote {
        /// The database host to promote.
        host: String,
        /// Promote a host that is not in the sync set, losing what it lacks.
        #[arg(long)]
        accept_data_loss: bool,
        /// Seconds to wait for HOST's agent to take the lead.
        #[arg(long, default_value_t = 30.0, value_parser = seconds)]
        timeout: f64,
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

/// The agent's own settings.
#[derive(Args)]
struct AgentArgs {
    /// This host's name in the topology.
    #[arg(long)]
    host: String,
    /// strict: writes wait for the sync replica however long; available: after a short
    /// wait the replica is recorded out of sync and writes go on (docs/failover.md).
    #[arg(long, default_value = "available", value_parser = Policy::parse)]
    policy: Policy,
    /// The leader lease's TTL in whole seconds; every other timing derives from it.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(2..=60))]
    lease_ttl: u64,
    /// The nft command that changes this host's firewall (it must act on this host).
    #[arg(long, default_value = "nft")]
    nft: String,
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
            let (mut store, keys) = common.etcd.store()?;
            let cluster_status = manual::status(&mut store, &keys, &cluster);
            let databases = Failover {
                cluster: &cluster,
                settings: &settings,
            }
            .status();
            let findings = !cluster_status.findings.is_empty() || !databases.findings.is_empty();
            if common.json {
                let doc = serde_json::json!({
                    "type": "status", "failover": cluster_status, "databases": databases,
                });
                println!("{}", serde_json::to_string(&doc)?);
            } else {
                print!("{}\n{}", cluster_status.to_text(), databases.to_text());
            }
            return Ok(rampart_cli::exit::from_findings(findings));
        }
        Command::Agent(args) => return run_agent(common, cluster, settings.access, args),
        Command::Switchover { to, timeout } => {
            let (mut store, keys) = common.etcd.store()?;
            manual::switchover(
                &mut store,
                &keys,
                &cluster,
                to,
                Duration::from_secs_f64(*timeout),
            )?
        }
        Command::Pause { reason } => {
            let (mut store, keys) = common.etcd.store()?;
            manual::pause(&mut store, &keys, reason)?
        }
        Command::Resume => {
            let (mut store, keys) = common.etcd.store()?;
            manual::resume(&mut store, &keys)?
        }
        Command::Promote {
            host,
            accept_data_loss,
            timeout,
        } => {
            let (mut store, keys) = common.etcd.store()?;
            manual::promote(
                &mut store,
                &keys,
                &cluster,
                host,
                *accept_data_loss,
                Duration::from_secs_f64(*timeout),
            )?
        }
        Command::Rejoin {
            host,
            primary,
            replication_user,
            fencing: f,
        } => {
            fencing(f, &mut settings);
            settings.replication_user = replication_user.clone();
            settings.replication_password_file = common.local.replication_password_file.clone();
            settings.replica_pki_dir = common.local.replica_pki_dir.clone();
            failover(&cluster, &settings).rejoin(host, primary)?
        }
        Command::Fence { host, fencing: f } => {
            fencing(f, &mut settings);
            failover(&cluster, &settings).fence(host)?
        }
    };
    print(common.json, &report, report.to_text())?;
    Ok(rampart_cli::exit::from_findings(
        !report.outcome.is_success(),
    ))
}

/// `rampart-db agent`: runs until SIGTERM or SIGINT, then gives the lead back.
fn run_agent(
    common: &Common,
    cluster: Cluster,
    access: Access,
    args: &AgentArgs,
) -> Result<ExitCode> {
    let port = cluster.port;
    let mut agent = Agent::new(AgentConfig {
        host: args.host.clone(),
        cluster,
        socket: common.local.socket.clone(),
        access,
        replication_user: db::REPLICATION_USER.to_string(),
        replication_password_file: common.local.replication_password_file.clone(),
        replica_pki_dir: common.local.replica_pki_dir.replace("{host}", &args.host),
        policy: args.policy,
        timing: Timing::from_ttl(Duration::from_secs(args.lease_ttl)),
        keys: Keys::new(&common.etcd.etcd_prefix),
        store: common.etcd.config()?,
        gate: Gate {
            nft: args.nft.split_whitespace().map(str::to_string).collect(),
            port,
        },
        metrics: common.local.metrics.clone(),
    })?;
    let stop = stop_signal()?;
    agent.run(&|| stop.load(std::sync::atomic::Ordering::Relaxed))?;
    Ok(ExitCode::SUCCESS)
}

/// A flag set by SIGTERM or SIGINT.
fn stop_signal() -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, flag.clone())
            .context("cannot install the SIGTERM handler")?;
    }
    Ok(flag)
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
