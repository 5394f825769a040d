//! `infralab promote HOST` and the failover scenario's database steps: `rampart-db` run
//! inside a host's namespace with the lab's certificates, secrets and fence hook.
//!
//! rampart-db runs where it runs on a real deployment: on a database host (the promoted
//! one for `promote`, the rejoining one for `rejoin`), reaching the others over the lab's
//! network. Its fence hook applies the nft script inside the fenced host's namespace.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result};
use rampart_lab::{daemons, Lab};

use crate::lab_args::LabArgs;
use crate::paths::sibling;

/// What `rampart-db` answered: its exit code, stdout (a JSON document with `--json`) and
/// stderr.
pub struct DbRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl DbRun {
    /// The JSON report (`--json`), or why there is none.
    pub fn report(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.stdout).with_context(|| {
            format!(
                "rampart-db printed no JSON report (exit {}): {}{}",
                self.code, self.stdout, self.stderr
            )
        })
    }
}

/// Runs `rampart-db <args>` inside `on`'s namespace, logged in with `on`'s lab secrets.
pub fn rampart_db(lab: &Lab, on: &str, args: &[&str]) -> Result<DbRun> {
    let d = lab.host_dirs(on);
    let binary = sibling("rampart-db")?;
    let hook = format!("ip netns exec {} nft -f -", lab.namespace("{host}"));
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &lab.namespace(on)])
        .arg(&binary)
        .args(args)
        .arg("--topology")
        .arg(&lab.record().topology)
        .arg("--ca")
        .arg(d.pki.join("ca.pem"))
        .env("RAMPART_DB_FENCE_HOOK", hook)
        .env(
            "RAMPART_ETCD_ENDPOINTS",
            daemons::etcd_endpoints(&lab.topology)?.join(","),
        )
        // The host's etcd client certificate (certtool issues one per database host).
        .env("RAMPART_ETCD_CA", d.pki.join("ca.pem"))
        .env("RAMPART_ETCD_CERT", d.pki.join("etcd-client.pem"))
        .env("RAMPART_ETCD_KEY", d.pki.join("etcd-client.key"))
        // Each lab host has its own PKI directory; CHANGE MASTER names the rejoining
        // host's.
        .env("RAMPART_DB_REPLICA_PKI_DIR", pki_dir(lab));
    // Its secret files by the variables lib.secrets gives it, as the NixOS wrapper does.
    let list = rampart_lab::secrets::list(&d)?;
    for (variable, secret) in rampart_lab::secrets::variables(&list, "rampart-db") {
        command.env(variable, d.secrets.join(secret));
    }
    let output = command
        .output()
        .with_context(|| format!("cannot run {} in {}", binary.display(), lab.namespace(on)))?;
    Ok(DbRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Waits (bounded) until a database host leads and is writable (`want`: that host, or
/// any); returns it and how long it took. Asks `rampart-db status` inside `on`'s
/// namespace, as an operator there would.
pub fn wait_leader(
    lab: &Lab,
    on: &str,
    want: Option<&str>,
    limit: std::time::Duration,
) -> Result<(String, std::time::Duration)> {
    let started = std::time::Instant::now();
    loop {
        let run = rampart_db(lab, on, &["status", "--json"])?;
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_default();
        let failover = &report["failover"];
        if let Some(leader) = failover["leader"].as_str() {
            let writable = failover["hosts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|h| h["host"] == leader && h["role"] == "leader");
            if writable && want.is_none_or(|w| w == leader) {
                return Ok((leader.to_string(), started.elapsed()));
            }
        }
        if started.elapsed() > limit {
            anyhow::bail!(
                "no database host {} within {:.0} s; rampart-db status says: {}{}",
                want.map_or("leads".to_string(), |w| format!("named {w} leads")),
                limit.as_secs_f64(),
                run.stdout.trim(),
                run.stderr.trim()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The lab's per-host PKI directory with rampart-db's `{host}` placeholder.
fn pki_dir(lab: &Lab) -> String {
    let probe = "failover-host-placeholder";
    lab.host_dirs(probe)
        .pki
        .display()
        .to_string()
        .replace(probe, "{host}")
}

/// `infralab promote HOST`: `rampart-db promote HOST` inside HOST's namespace; its report
/// and exit code are passed through.
pub fn promote(args: &LabArgs, host: &str, accept_data_loss: bool, json: bool) -> Result<ExitCode> {
    rampart_lab::require_root("infralab promote")?;
    let lab = args.open()?.with_saved_record()?;
    let mut argv = vec!["promote", host];
    if accept_data_loss {
        argv.push("--accept-data-loss");
    }
    if json {
        argv.push("--json");
    }
    let run = rampart_db(&lab, host, &argv)?;
    print!("{}", run.stdout);
    eprint!("{}", run.stderr);
    Ok(ExitCode::from(
        u8::try_from(run.code).unwrap_or(rampart_cli::exit::CANNOT_RUN),
    ))
}
