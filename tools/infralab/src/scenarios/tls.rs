//! Scenarios about the TLS profile (settings.tls.profile, lib/tls-profiles.json): an
//! independent scanner, Debian's testssl.sh, finds every TLS hop within it; a backend
//! made to accept a group and a suite outside it is caught by reach and by testssl.sh.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rampart_reach::profile::Profile;
use serde_json::Value;

use super::exposure::{clean, line_naming, reach, textfile_counts, textfile_value};
use super::{Ctx, Proof};

/// The profile the lab renders with (its settings leave `tls.profile` at the default).
const LAB_PROFILE: &str = "intermediate";
/// The longest a testssl.sh run may take (each takes under a minute on an idle lab).
const TESTSSL_DEADLINE: Duration = Duration::from_secs(240);

/// One testssl.sh run: from `node`, these options, against `target`; its JSON findings.
struct Testssl {
    node: String,
    options: Vec<String>,
    target: String,
    json: PathBuf,
}

impl Testssl {
    fn new(ctx: &Ctx, node: &str, tag: &str, options: &[&str], target: String) -> Testssl {
        Testssl {
            node: node.to_string(),
            options: options.iter().map(|s| s.to_string()).collect(),
            target,
            json: ctx.lab.state.root().join(format!("testssl-{tag}.json")),
        }
    }

    fn command(&self, ctx: &Ctx) -> Command {
        let _ = std::fs::remove_file(&self.json);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ctx.lab.namespace(&self.node), "testssl"])
            .args([
                "--quiet",
                "--color",
                "0",
                "--warnings",
                "off",
                "--openssl-timeout",
                "5",
            ])
            .arg("--jsonfile")
            .arg(&self.json)
            .args(&self.options)
            .arg(&self.target);
        cmd
    }

    /// The findings by id, once the run has ended.
    fn findings(&self) -> Result<Vec<(String, String)>> {
        let text = std::fs::read_to_string(&self.json)
            .with_context(|| format!("testssl wrote no {}", self.json.display()))?;
        let _ = std::fs::remove_file(&self.json);
        let doc: Value = serde_json::from_str(&text)
            .with_context(|| format!("testssl's JSON for {} does not parse", self.target))?;
        Ok(doc
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
                (s("id"), s("finding"))
            })
            .collect())
    }

    fn describe(&self) -> String {
        format!(
            "testssl {} {} (from {})",
            self.options.join(" "),
            self.target,
            self.node
        )
    }
}

/// Testssl.sh runs under way, killed (with their process groups) when dropped.
struct Running(Vec<std::process::Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if let Ok(None) = child.try_wait() {
                // testssl is a shell script with openssl children: end the whole group.
                let _ = rampart_lab::process::signal_group(
                    child.id(),
                    rampart_lab::process::Signal::SIGKILL,
                );
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// Runs several testssl.sh at once (each mostly waits on the network), each within
/// [`TESTSSL_DEADLINE`]; their findings in order.
fn run_all(ctx: &Ctx, runs: &[Testssl]) -> Result<Vec<Vec<(String, String)>>> {
    use std::os::unix::process::CommandExt as _;
    let mut running = Running(Vec::new());
    for run in runs {
        let stderr = std::fs::File::create(run.json.with_extension("stderr"))?;
        let child = run
            .command(ctx)
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("cannot start testssl (Debian package testssl.sh)")?;
        running.0.push(child);
    }
    let started = Instant::now();
    let mut statuses = vec![None; runs.len()];
    while statuses.iter().any(Option::is_none) {
        for (status, child) in statuses.iter_mut().zip(&mut running.0) {
            if status.is_none() {
                *status = child.try_wait()?;
            }
        }
        if started.elapsed() > TESTSSL_DEADLINE {
            let late: Vec<String> = runs
                .iter()
                .zip(&statuses)
                .filter(|(_, s)| s.is_none())
                .map(|(r, _)| r.describe())
                .collect();
            bail!(
                "testssl did not finish within {} s (killed): {}",
                TESTSSL_DEADLINE.as_secs(),
                late.join("; ")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut out = Vec::new();
    for (run, status) in runs.iter().zip(statuses) {
        // testssl's exit status also counts warnings (a connection the load refused during
        // an unrelated check); what is judged is its JSON, which must name every finding
        // `judge` reads (a missing one is a problem there).
        let stderr_path = run.json.with_extension("stderr");
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let _ = std::fs::remove_file(&stderr_path);
        let findings = run.findings().with_context(|| {
            format!(
                "{} ended with {} and no findings: {}",
                run.describe(),
                status.map_or("no status".to_string(), |s| s.to_string()),
                stderr.trim()
            )
        })?;
        out.push(findings);
    }
    Ok(out)
}

fn finding<'a>(findings: &'a [(String, String)], ids: &[&str]) -> Option<&'a str> {
    findings
        .iter()
        .find(|(id, _)| ids.contains(&id.as_str()))
        .map(|(_, f)| f.as_str())
}

/// testssl.sh's verdict against the profile: every problem, and what was seen.
fn judge(findings: &[(String, String)], profile: &Profile) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    // Protocols: testssl's ids and the profile's names.
    let mut offered = Vec::new();
    for (id, name) in [
        ("SSLv2", "SSLv2"),
        ("SSLv3", "SSLv3"),
        ("TLS1", "TLSv1"),
        ("TLS1_1", "TLSv1.1"),
        ("TLS1_2", "TLSv1.2"),
        ("TLS1_3", "TLSv1.3"),
    ] {
        let Some(f) = finding(findings, &[id]) else {
            problems.push(format!("testssl reported nothing for {id}"));
            continue;
        };
        let is_offered = f.starts_with("offered");
        let wanted = profile.tls_versions.iter().any(|v| v == name);
        if is_offered {
            offered.push(name);
        }
        if is_offered != wanted {
            problems.push(format!(
                "{name}: testssl says {f:?} ({})",
                profile.says(&profile.tls_versions)
            ));
        }
    }
    seen.push(format!("protocols offered: {}", offered.join(", ")));
    // Suites, when they were listed (-E): testssl's line names the OpenSSL suite 4th.
    let suites: Vec<&str> = findings
        .iter()
        .filter(|(id, _)| id.starts_with("cipher-tls") || id.starts_with("cipher-ssl"))
        .filter_map(|(_, f)| f.split_whitespace().nth(3))
        .collect();
    if !suites.is_empty() {
        for s in &suites {
            if !profile
                .ciphers
                .iter()
                .chain(&profile.ciphersuites)
                .any(|p| p == s)
            {
                problems.push(format!("suite {s} is offered and not in {}", profile.name));
            }
        }
        seen.push(format!("suites: {}", suites.join(", ")));
    }
    match finding(findings, &["PFS_ECDHE_curves", "FS_ECDHE_curves"]) {
        Some(curves) => {
            for c in curves.split_whitespace() {
                if !profile.tls_curves.iter().any(|p| p == c) {
                    problems.push(format!(
                        "group {c} is offered and not in {}",
                        profile.says(&profile.tls_curves)
                    ));
                }
            }
            seen.push(format!("groups: {curves}"));
        }
        None => problems.push("testssl listed no ECDHE curves".into()),
    }
    if let Some(key) = finding(findings, &["cert_keySize"]) {
        let kind = match key.split_whitespace().next() {
            Some("EC") => "ecdsa",
            Some("RSA") => "rsa",
            _ => "other",
        };
        if !profile.certificate_types.iter().any(|t| t == kind) {
            problems.push(format!(
                "certificate key {key} ({})",
                profile.says(&profile.certificate_types)
            ));
        }
        seen.push(format!("certificate key: {key}"));
    }
    if let Some(chain) = finding(findings, &["cert_chain_of_trust"]) {
        if !chain.starts_with("passed") {
            problems.push(format!("chain of trust: {chain}"));
        }
        seen.push(format!("chain of trust: {chain}"));
    }
    (problems, seen)
}

/// testssl.sh against every TLS hop at once: the public endpoint from outside in full
/// (protocols, every suite, groups, certificate and chain against the rampart CA), a
/// backend's nginx from the load balancer and the primary's MariaDB (STARTTLS) from the
/// replica (protocols and groups). Every one within the lab's profile.
pub fn testssl(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let profile = Profile::named(LAB_PROFILE)?;
    let t = ctx.lab.topology.clone();
    let web = ctx.web_hosts();
    let last = web.last().context("no web host")?;
    let ca = ctx.pki.ca_cert().display().to_string();
    let public = format!("https://{}/", ctx.public_name);
    let lb_address = ctx.lb.address.to_string();
    let mut runs = vec![
        Testssl::new(
            ctx,
            "outside",
            "public",
            &["-p", "-E", "-f", "-S", "--add-ca", &ca, "--ip", &lb_address],
            public,
        ),
        Testssl::new(
            ctx,
            &ctx.lb.name,
            "backend",
            &["-p", "-f"],
            format!("{}:{}", last.address, ctx.port("backendHttps")?),
        ),
    ];
    if let (Some(primary), Some(replica)) = (
        t.hosts_with_role(rampart_topology::Role::DatabasePrimary)
            .next(),
        t.hosts_with_role(rampart_topology::Role::DatabaseReplica)
            .next(),
    ) {
        runs.push(Testssl::new(
            ctx,
            &replica.name,
            "mysql",
            &["-t", "mysql", "-p", "-f"],
            format!("{}:{}", primary.address, ctx.port("mysql")?),
        ));
    }
    let started = Instant::now();
    let results = run_all(ctx, &runs)?;
    let mut problems = Vec::new();
    for (run, findings) in runs.iter().zip(&results) {
        let (bad, seen) = judge(findings, &profile);
        proof.note(format!("{}: {}", run.describe(), seen.join("; ")));
        problems.extend(bad.into_iter().map(|p| format!("{}: {p}", run.target)));
    }
    ensure!(
        problems.is_empty(),
        "testssl.sh found the profile broken:\n{}",
        problems.join("\n")
    );
    proof.summary = format!(
        "{} TLS hops within Mozilla {} per testssl.sh in {:.0} s",
        runs.len(),
        profile.name,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A suite and a group outside every profile of lib/tls-profiles.json.
pub(super) const WEAK_SUITE: &str = "ECDHE-ECDSA-AES128-SHA";
pub(super) const WEAK_GROUP: &str = "X448";

/// `host`'s nginx/rampart.conf with [`WEAK_GROUP`] added to its groups and [`WEAK_SUITE`]
/// first in its TLS 1.2 suites: (path, rendered text, weakened text).
pub(super) fn weakened_nginx(ctx: &Ctx, host: &str) -> Result<(PathBuf, String, String)> {
    let conf = ctx.lab.host_dirs(host).etc.join("nginx/rampart.conf");
    let rendered = std::fs::read_to_string(&conf)
        .with_context(|| format!("cannot read {}", conf.display()))?;
    let mut changed = 0;
    let weakened: String = rendered
        .lines()
        .map(|line| {
            let t = line.trim_start();
            if let Some(rest) = t.strip_prefix("ssl_ecdh_curve ") {
                changed += 1;
                format!(
                    "  ssl_ecdh_curve {}:{WEAK_GROUP};",
                    rest.trim_end_matches(';')
                )
            } else if let Some(rest) = t.strip_prefix("ssl_ciphers ") {
                changed += 1;
                format!("  ssl_ciphers {WEAK_SUITE}:{}", rest)
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    ensure!(
        changed == 2,
        "{} has no ssl_ecdh_curve and ssl_ciphers lines to weaken",
        conf.display()
    );
    Ok((conf, rendered, weakened))
}

/// Writes `text` as `host`'s nginx configuration, reloads nginx and waits until its
/// backend address takes X448 (`weak`) or refuses it again.
pub(super) fn nginx_with(ctx: &Ctx, host: &str, conf: &Path, text: &str, weak: bool) -> Result<()> {
    let port = ctx.port("backendHttps")?;
    let address = ctx
        .lab
        .topology
        .host(host)
        .map(|h| format!("{}:{port}", h.address))
        .with_context(|| format!("{host} is not a topology host"))?;
    std::fs::write(conf, text).with_context(|| format!("cannot write {}", conf.display()))?;
    ctx.reload("nginx", host)?;
    wait_x448(ctx, &address, weak)
}

/// Whether `address` (from the load balancer) accepts TLS 1.3 with only X448 offered.
fn accepts_x448(ctx: &Ctx, address: &str) -> Result<bool> {
    let out = ctx.exec(
        &ctx.lb.name,
        "timeout",
        &[
            "5", "openssl", "s_client", "-connect", address, "-tls1_3", "-groups", "X448",
        ],
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).contains("Server Temp Key: X448"))
}

/// Waits until `address` does (or does not) take X448: nginx reloads in the background.
fn wait_x448(ctx: &Ctx, address: &str, want: bool) -> Result<()> {
    let started = Instant::now();
    while accepts_x448(ctx, address)? != want {
        if started.elapsed() > Duration::from_secs(15) {
            bail!(
                "{address} still {} X448 15 s after the reload",
                if want { "refuses" } else { "takes" }
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// The textfile series of `host`'s nginx (the `backendHttps` service) under the lab's profile.
fn violations_series(host: &str) -> String {
    format!(
        "rampart_tls_profile_violations{{profile=\"{LAB_PROFILE}\",service=\"backendHttps\",target=\"{host}\"}}"
    )
}

/// web1's nginx reloaded with X448 added to its groups and a CBC suite to its TLS 1.2
/// list: reach from the load balancer names both, testssl.sh confirms the group; the
/// rendered file back, reach finds the profile kept again.
pub fn tls_profile(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let web1 = ctx.web_hosts()[0].clone();
    let port = ctx.port("backendHttps")?;
    let address = format!("{}:{port}", web1.address);
    let (cbc, group) = (WEAK_SUITE, WEAK_GROUP);
    let (conf, rendered, weakened) = weakened_nginx(ctx, &web1.name)?;

    let injected = (|| -> Result<()> {
        nginx_with(ctx, &web1.name, &conf, &weakened, true)?;
        proof.note(format!(
            "{}'s nginx reloaded with {group} among its groups and {cbc} first in ssl_ciphers",
            web1.name
        ));
        let started = Instant::now();
        let testssl = Testssl::new(ctx, &ctx.lb.name, "weakened", &["-f"], address.clone());
        let (code, doc) = reach(ctx, &ctx.lb.name, &["tls"])?;
        ensure!(
            code == 1,
            "reach --from {} --only tls exited {code} (expected 1)",
            ctx.lb.name
        );
        let group_line = line_naming(
            &doc,
            &[&web1.name, &format!("{port}/backendHttps group {group}")],
        )?;
        let suite_line = line_naming(&doc, &[&web1.name, &format!("suite TLSv1.2 {cbc}")])?;
        proof.note(format!(
            "reach --from lb --only tls: exit 1 in {:.1} s; {group_line}",
            started.elapsed().as_secs_f64()
        ));
        proof.note(format!("reach --from lb --only tls: {suite_line}"));
        let violations = textfile_counts(
            ctx,
            &ctx.lb.name,
            &violations_series(&web1.name),
            &doc,
            "tls-profile",
            &web1.name,
        )?;
        proof.note(format!("{}'s textfile: {violations}", ctx.lb.name));
        let findings = run_all(ctx, std::slice::from_ref(&testssl))?.remove(0);
        let curves =
            finding(&findings, &["PFS_ECDHE_curves", "FS_ECDHE_curves"]).unwrap_or_default();
        ensure!(
            curves.split_whitespace().any(|c| c == group),
            "testssl -f on {address} lists {curves:?}, not {group}"
        );
        proof.note(format!(
            "{}: curves {curves} (testssl sees {group} too)",
            testssl.describe()
        ));
        Ok(())
    })();
    let restored = nginx_with(ctx, &web1.name, &conf, &rendered, false);
    injected?;
    restored?;
    clean(ctx, &ctx.lb.name, &["tls"])?;
    let series = violations_series(&web1.name);
    let value = textfile_value(ctx, &ctx.lb.name, &series)?;
    ensure!(
        value == 0,
        "after the clean-up, {} still writes {series} {value}",
        ctx.lb.name
    );
    proof.note(
        "the rendered nginx/rampart.conf back: every TLS hop from lb within the profile again (violations 0 in lb's textfile)",
    );
    proof.summary =
        format!("{group} and {cbc} on {address} named by reach, {group} confirmed by testssl.sh");
    Ok(())
}
