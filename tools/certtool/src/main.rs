//! `certtool`: issue and verify every certificate of a rampart infrastructure, and audit
//! the Nix store for leaked keys. The logic lives in `rampart_pki`; this file parses
//! arguments and prints.
//!
//! Exit codes: 0 all as declared, 1 problems found, 2 could not run (see `rampart_cli::exit`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use rampart_pki::issue::{self, Action, CaOptions, IssueOptions};
use rampart_pki::manifest::Manifest;
use rampart_pki::store_audit::{self, AuditOptions};
use rampart_pki::verify::{self, VerifyOptions};
use rampart_pki::{format_instant, parse_duration, parse_instant, Eku, KeyType, SanName};
use rampart_topology::Topology;

#[derive(Parser)]
#[command(version, about, long_about = None, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The purpose `--purpose` requires of certificates the topology does not describe.
#[derive(Clone, Copy, ValueEnum)]
enum PurposeArg {
    /// extendedKeyUsage serverAuth.
    Server,
    /// extendedKeyUsage clientAuth.
    Client,
}

#[derive(Subcommand)]
enum Command {
    /// Create the rampart CA (ca.pem, ca.key) with name constraints from the topology.
    InitCa {
        /// Directory to write ca.pem and ca.key (0600) into; existing files are never replaced.
        #[arg(long)]
        out: PathBuf,
        /// The topology whose domain, public names and network become the name constraints.
        #[arg(long, default_value = "hosts/topology.json")]
        topology: PathBuf,
        /// Key algorithm: p256, p384, rsa2048 or rsa3072.
        #[arg(long, default_value = "p256")]
        key_type: KeyType,
        /// How long the CA is valid (e.g. 5y, 1825d).
        #[arg(long, default_value = "5y", value_parser = parse_duration)]
        validity: time::Duration,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Issue every certificate the topology needs; keep the valid ones, write manifest.json.
    Issue {
        /// The topology to issue for.
        #[arg(long, default_value = "hosts/topology.json")]
        topology: PathBuf,
        /// Directory holding the CA's ca.pem and ca.key (from `init-ca`).
        #[arg(long)]
        ca: PathBuf,
        /// Output directory: <host>/<purpose>.pem|key, ca.pem, manifest.json.
        #[arg(long)]
        out: PathBuf,
        /// Key algorithm for new keys: p256, p384, rsa2048 or rsa3072.
        #[arg(long, default_value = "p256")]
        key_type: KeyType,
        /// How long new certificates are valid (capped at the CA's expiry).
        #[arg(long, default_value = "90d", value_parser = parse_duration)]
        validity: time::Duration,
        /// Reissue certificates that expire within this span (their key is kept).
        #[arg(long, default_value = "30d", value_parser = parse_duration)]
        renew_within: time::Duration,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run every check on certificates (files, directories or a manifest.json); exit 1 on errors.
    Verify {
        /// Certificates, directories of them, or a manifest.json.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The topology that says which names and purposes each certificate needs.
        #[arg(long)]
        topology: Option<PathBuf>,
        /// The CA certificate, the only trust anchor (a directory means its ca.pem).
        /// Default: the `ca` of a manifest given. System roots are never used.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// The private key of the single certificate given (default: NAME.key or
        /// NAME-key.pem beside NAME.pem, or the manifest).
        #[arg(long)]
        key: Option<PathBuf>,
        /// A DNS name or IP address the SAN must cover, for certificates the topology does
        /// not describe (repeatable).
        #[arg(long = "name", value_name = "NAME")]
        names: Vec<String>,
        /// The EKU to require of certificates the topology does not describe.
        #[arg(long, value_enum)]
        purpose: Option<PurposeArg>,
        /// Check at this instant instead of now (RFC 3339, e.g. 2030-01-01T00:00:00Z).
        #[arg(long, value_parser = parse_instant)]
        at: Option<time::OffsetDateTime>,
        /// Warn about certificates expiring within this span.
        #[arg(long, default_value = "30d", value_parser = parse_duration)]
        warn_within: time::Duration,
        /// Print one JSON document (schema: rustdoc of `rampart_pki::verify`).
        #[arg(long)]
        json: bool,
    },
    /// Print the fields of a certificate for humans, or as JSON.
    Inspect {
        /// A PEM or DER certificate file.
        file: PathBuf,
        /// Print a JSON array of inspections.
        #[arg(long)]
        json: bool,
    },
    /// Walk .drv files or store paths and report private keys that reached the Nix store.
    AuditStore {
        /// .drv files (e.g. a NixOS toplevel derivation) or store paths.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// A certtool manifest: its issued key files' paths and names count as secrets too.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Print one JSON document (schema: rustdoc of `rampart_pki::store_audit`).
        #[arg(long)]
        json: bool,
    },
}

fn load_topology(path: &Path) -> Result<Topology> {
    Ok(Topology::load(path)?)
}

/// The Nix store directory, as Nix itself reads it.
fn store_dir() -> String {
    std::env::var("NIX_STORE_DIR").unwrap_or_else(|_| "/nix/store".to_string())
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn exec(cli: Cli) -> Result<ExitCode> {
    let now = time::OffsetDateTime::now_utc();
    match cli.command {
        Command::InitCa {
            out,
            topology,
            key_type,
            validity,
            json,
        } => {
            let topology = load_topology(&topology)?;
            let options = CaOptions {
                key_type,
                validity,
                now,
            };
            let ca = issue::init_ca(&topology, &out, &options)?;
            if json {
                print_json(&serde_json::json!({
                    "type": "ca",
                    "cert": ca.cert, "key": ca.key, "subject": ca.subject,
                    "notAfter": format_instant(ca.not_after), "permitted": ca.permitted,
                }))?;
            } else {
                println!(
                    "wrote {} and {} (0600): \"{}\", valid until {}, names limited to {}",
                    ca.cert.display(),
                    ca.key.display(),
                    ca.subject,
                    format_instant(ca.not_after),
                    ca.permitted.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Issue {
            topology,
            ca,
            out,
            key_type,
            validity,
            renew_within,
            json,
        } => {
            let topology = load_topology(&topology)?;
            let options = IssueOptions {
                key_type,
                validity,
                renew_within,
                now,
            };
            let issued = issue::issue(&topology, &ca, &out, &options)?;
            let action = |a: &Action| match a {
                Action::Issued => ("issued".to_string(), String::new()),
                Action::Reissued(why) => ("reissued".to_string(), why.clone()),
                Action::Kept => ("kept".to_string(), String::new()),
            };
            if json {
                let records: Vec<_> = issued
                    .iter()
                    .map(|i| {
                        let (what, why) = action(&i.action);
                        serde_json::json!({
                            "type": "issued", "host": i.entry.host, "purpose": i.entry.purpose,
                            "action": what, "reason": why, "notAfter": i.entry.not_after,
                            "names": i.entry.names, "cert": i.entry.cert, "key": i.entry.key,
                        })
                    })
                    .collect();
                print_json(&serde_json::json!({
                    "type": "issue", "manifest": out.join("manifest.json"), "certificates": records,
                }))?;
            } else {
                let rows: Vec<Vec<String>> = issued
                    .iter()
                    .map(|i| {
                        let (what, why) = action(&i.action);
                        vec![
                            i.entry.host.clone(),
                            i.entry.purpose.clone(),
                            if why.is_empty() {
                                what
                            } else {
                                format!("{what} ({why})")
                            },
                            i.entry.not_after.clone(),
                            i.entry.names.join(", "),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    rampart_cli::table::render(
                        &["HOST", "PURPOSE", "ACTION", "NOT AFTER", "NAMES"],
                        &rows
                    )
                );
                println!("manifest: {}", out.join("manifest.json").display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            paths,
            topology,
            ca,
            key,
            names,
            purpose,
            at,
            warn_within,
            json,
        } => {
            let topology = topology.map(|t| load_topology(&t)).transpose()?;
            let options = VerifyOptions {
                topology,
                ca,
                paths,
                key,
                names: names.iter().map(|n| SanName::parse(n)).collect(),
                purpose: purpose.map(|p| match p {
                    PurposeArg::Server => Eku::ServerAuth,
                    PurposeArg::Client => Eku::ClientAuth,
                }),
                at: at.unwrap_or(now),
                warn_within,
                store_dir: PathBuf::from(store_dir()),
            };
            let report = verify::verify(&options)?;
            if json {
                print_json(&report)?;
            } else {
                print!("{}", report.render());
            }
            for problem in &report.load_errors {
                eprintln!("certtool: {}", problem.message);
            }
            Ok(report.exit_code())
        }
        Command::Inspect { file, json } => {
            let inspections = rampart_pki::inspect::inspect(&file)?;
            if json {
                print_json(&inspections)?;
            } else {
                for i in &inspections {
                    print!("{}", i.render());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::AuditStore {
            paths,
            manifest,
            json,
        } => {
            let (secret_paths, secret_names) = match &manifest {
                Some(path) => {
                    let m = Manifest::load(path)?;
                    let issued: Vec<PathBuf> = m
                        .certificates
                        .iter()
                        .map(|e| Manifest::resolve(path, &e.key))
                        .collect();
                    let paths = issued
                        .iter()
                        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
                        .map(|p| p.display().to_string())
                        .collect();
                    let names = issued
                        .iter()
                        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                        .collect();
                    (paths, names)
                }
                None => (Vec::new(), Vec::new()),
            };
            let report = store_audit::audit(&AuditOptions {
                roots: paths,
                store_dir: store_dir(),
                secret_paths,
                secret_names,
            });
            if json {
                print_json(&report)?;
            } else {
                print!("{}", report.render());
            }
            for e in &report.errors {
                eprintln!("certtool: {}", e.message);
            }
            Ok(report.exit_code())
        }
    }
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
