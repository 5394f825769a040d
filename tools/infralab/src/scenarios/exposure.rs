//! Scenarios about the attack surface `reach` must see: an undeclared listener on some
//! port of some host, a live firewall rule that is not the rendered one, a daemon bound
//! to every address where the topology declares one. Each injects its defect, proves
//! `reach` exits 1 with a line that names it, and puts the host back as it was (the
//! rendered ruleset, the lab's own daemon), on failure too.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use rampart_lab::daemons;
use serde_json::Value;

use super::{Ctx, Proof};

/// `reach check --only GROUPS --json` from `vantage`: exit code and report.
pub fn reach(ctx: &Ctx, vantage: &str, only: &[&str]) -> Result<(i32, Value)> {
    let args = crate::reach::check_args(&ctx.lab, &ctx.pki, vantage, only, true);
    let out = crate::reach::run_reach(&ctx.lab, vantage, &args)?;
    let doc: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "reach --json from {vantage} printed no JSON: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    Ok((out.status.code().unwrap_or(-1), doc))
}

/// Every failed check of a report, as `target check probe: observed, expected E (reason)`.
pub fn failures(doc: &Value) -> Vec<String> {
    doc["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == "fail")
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            format!(
                "{} {} {}: {}, expected {} ({})",
                s("target"),
                s("check"),
                s("probe"),
                s("observed"),
                s("expected"),
                s("reason")
            )
        })
        .collect()
}

/// The one failed line that contains every one of `needles`; an error listing all
/// failures when none or several do.
pub fn line_naming(doc: &Value, needles: &[&str]) -> Result<String> {
    let all = failures(doc);
    let found: Vec<&String> = all
        .iter()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        _ => bail!(
            "expected one failed line naming {needles:?}, got {}: {all:#?}",
            found.len()
        ),
    }
}

/// How many failed lines of a report are of `kind` (the JSON's `kind`) about `target`.
pub fn count_kind(doc: &Value, kind: &str, target: &str) -> usize {
    doc["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == "fail" && c["kind"] == kind && c["target"] == target)
        .count()
}

/// The value of `series` (name and labels exactly as reach writes them, docs/contracts.md)
/// in the textfile reach wrote on `host`.
pub fn textfile_value(ctx: &Ctx, host: &str, series: &str) -> Result<usize> {
    let path = crate::reach::textfile(&ctx.lab, host);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read reach's textfile {}", path.display()))?;
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .with_context(|| format!("{} has no series {series}", path.display()))?;
    value
        .trim()
        .parse()
        .with_context(|| format!("{series} in {}: {value:?} is not a count", path.display()))
}

/// The textfile of `host` must say `series` = the number of `kind` lines about `target`
/// in `doc` (the run that wrote it), and that is at least one.
pub fn textfile_counts(
    ctx: &Ctx,
    host: &str,
    series: &str,
    doc: &Value,
    kind: &str,
    target: &str,
) -> Result<String> {
    let lines = count_kind(doc, kind, target);
    let value = textfile_value(ctx, host, series)?;
    ensure!(
        lines >= 1 && value == lines,
        "{host}'s textfile has {series} {value}, the report {lines} {kind} line(s) about {target}"
    );
    Ok(format!("{series} {value}"))
}

/// Reach from `vantage` must exit 0 for `only` (the host is back as declared).
pub fn clean(ctx: &Ctx, vantage: &str, only: &[&str]) -> Result<()> {
    let (code, doc) = reach(ctx, vantage, only)?;
    ensure!(
        code == 0,
        "after the clean-up, reach from {vantage} (--only {}) still exits {code}: {:#?}",
        only.join(","),
        failures(&doc)
    );
    Ok(())
}

/// `nft ARGS…` in `host`'s namespace.
fn nft(ctx: &Ctx, host: &str, args: &[&str]) -> Result<String> {
    let out = ctx.exec(host, "nft", args)?;
    ensure!(
        out.status.success(),
        "nft {} on {host}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Inserts `tcp dport PORT accept` at the head of `host`'s input chain: anyone may connect.
fn admit(ctx: &Ctx, host: &str, port: u16) -> Result<()> {
    let port = port.to_string();
    let rule = [
        "insert", "rule", "inet", "rampart", "input", "tcp", "dport", &port, "accept",
    ];
    nft(ctx, host, &rule).map(drop)
}

/// Puts back `host`'s rendered ruleset (atomic: the file replaces the whole table).
fn restore_ruleset(ctx: &Ctx, host: &str) -> Result<()> {
    let file = ctx.lab.host_dirs(host).etc.join("nftables/ruleset.nft");
    nft(ctx, host, &["-f", &file.display().to_string()]).map(drop)
}

/// A number that differs between runs (no randomness crate needed for a choice).
fn varying() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
        .unwrap_or(7)
}

/// A TCP listener on every address of `host` at `port`, owned by python3, ended on drop.
struct Stray(Child);

impl Stray {
    fn start(ctx: &Ctx, host: &str, port: u16) -> Result<Stray> {
        // Bounded: it exits by itself after two minutes if the scenario dies unkillably.
        let program = format!(
            "import socket, time\n\
             s = socket.socket()\n\
             s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('0.0.0.0', {port}))\n\
             s.listen(16)\n\
             print('listening', flush=True)\n\
             time.sleep(120)\n"
        );
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ctx.lab.namespace(host),
                "python3",
                "-c",
                &program,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start python3 for the stray listener")?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("python3 has no stdout")?;
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        let stray = Stray(child);
        ensure!(
            line.starts_with("listening"),
            "the stray listener on {host}:{port} did not start"
        );
        Ok(stray)
    }
}

impl Drop for Stray {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A listener on a port no service of the topology uses, on a host picked at random,
/// admitted by a firewall rule: the full sweep from outside finds it, and the host's own
/// reach names the process and the rule.
pub fn undeclared_listener(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let t = &ctx.lab.topology;
    let n = varying();
    let host = t.hosts[(n as usize) % t.hosts.len()].clone();
    let declared: Vec<u16> = t.services.values().map(|s| s.port).collect();
    let mut port = 20000 + (n % 40000) as u16;
    while declared.contains(&port) {
        port += 1;
    }
    // Only a topology host writes a textfile: the sweep's family is read on another one.
    let neighbour = t
        .hosts
        .iter()
        .find(|h| h.name != host.name)
        .map(|h| h.name.clone())
        .context("the topology has one host only")?;
    let stray = Stray::start(ctx, &host.name, port)?;
    let rule = format!("tcp dport {port} accept");
    let injected = (|| -> Result<()> {
        admit(ctx, &host.name, port)?;
        proof.note(format!(
            "{}: python3 listening on 0.0.0.0:{port}, `{rule}` inserted into inet rampart input",
            host.name
        ));
        let started = Instant::now();
        let (code, outside) = reach(ctx, "outside", &["sweep"])?;
        ensure!(
            code == 1,
            "reach --from outside --only sweep exited {code} (expected 1)"
        );
        let line = line_naming(
            &outside,
            &[&host.name, "sweep", &format!("{port}/tcp"), "open"],
        )?;
        proof.note(format!(
            "reach --from outside --only sweep: exit 1 in {:.1} s, {line}",
            started.elapsed().as_secs_f64()
        ));
        let (code, local) = reach(ctx, &host.name, &["listeners", "ruleset"])?;
        ensure!(
            code == 1,
            "reach --from {} --only listeners,ruleset exited {code} (expected 1)",
            host.name
        );
        let listener = line_naming(
            &local,
            &["listeners", &format!("0.0.0.0:{port}"), "python3"],
        )?;
        let drift = line_naming(&local, &["ruleset", &rule])?;
        proof.note(format!("reach --from {}: {listener}", host.name));
        proof.note(format!("reach --from {}: {drift}", host.name));
        let listeners = textfile_counts(
            ctx,
            &host.name,
            "rampart_undeclared_listeners",
            &local,
            "undeclared-listener",
            &host.name,
        )?;
        let rules = textfile_counts(
            ctx,
            &host.name,
            "rampart_firewall_drift_rules",
            &local,
            "firewall-drift",
            &host.name,
        )?;
        proof.note(format!("{}'s textfile: {listeners}, {rules}", host.name));
        let (code, swept) = reach(ctx, &neighbour, &["sweep"])?;
        ensure!(
            code == 1,
            "reach --from {neighbour} --only sweep exited {code} (expected 1)"
        );
        let ports = textfile_counts(
            ctx,
            &neighbour,
            &format!("rampart_undeclared_open_ports{{target=\"{}\"}}", host.name),
            &swept,
            "undeclared-port",
            &host.name,
        )?;
        proof.note(format!("{neighbour}'s textfile after its sweep: {ports}"));
        Ok(())
    })();
    drop(stray);
    let restored = restore_ruleset(ctx, &host.name);
    injected?;
    restored?;
    clean(ctx, &host.name, &["listeners", "ruleset"])?;
    for series in [
        "rampart_undeclared_listeners",
        "rampart_firewall_drift_rules",
    ] {
        let value = textfile_value(ctx, &host.name, series)?;
        ensure!(
            value == 0,
            "after the clean-up, {} still writes {series} {value}",
            host.name
        );
    }
    proof.note(format!(
        "listener stopped, rendered ruleset reloaded: {} as declared again (its textfile counts 0)",
        host.name
    ));
    proof.summary = format!(
        "{}:{port} found from outside and named on the host (python3, rule)",
        host.name
    );
    Ok(())
}

/// On web1, a live rule that opens the node exporter to everyone and a rendered rule that
/// went missing (ssh): reach on the host names both, rule by rule.
pub fn ruleset_drift(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let host = ctx.web_hosts()[0].name.clone();
    let node_exporter = ctx.port("nodeExporter")?;
    let injected = (|| -> Result<()> {
        admit(ctx, &host, node_exporter)?;
        let listing = nft(
            ctx,
            &host,
            &["-a", "list", "chain", "inet", "rampart", "input"],
        )?;
        let ssh = listing
            .lines()
            .find(|l| l.contains("ssh\""))
            .and_then(|l| l.rsplit_once("# handle "))
            .map(|(rule, handle)| (rule.trim().to_string(), handle.trim().to_string()))
            .context("web1's input chain has no ssh rule to remove")?;
        nft(
            ctx,
            &host,
            &[
                "delete", "rule", "inet", "rampart", "input", "handle", &ssh.1,
            ],
        )?;
        proof.note(format!(
            "{host}: inserted `tcp dport {node_exporter} accept`, deleted `{}`",
            ssh.0
        ));
        let (code, doc) = reach(ctx, &host, &["ruleset"])?;
        ensure!(
            code == 1,
            "reach --from {host} --only ruleset exited {code} (expected 1)"
        );
        let extra = line_naming(
            &doc,
            &["live rule", &format!("tcp dport {node_exporter} accept")],
        )?;
        let missing = line_naming(&doc, &["rendered rule", "missing", &ssh.0])?;
        proof.note(format!(
            "reach --from {host} --only ruleset: exit 1; {extra}"
        ));
        proof.note(format!("reach --from {host} --only ruleset: {missing}"));
        let rules = textfile_counts(
            ctx,
            &host,
            "rampart_firewall_drift_rules",
            &doc,
            "firewall-drift",
            &host,
        )?;
        proof.note(format!("{host}'s textfile: {rules}"));
        Ok(())
    })();
    let restored = restore_ruleset(ctx, &host);
    injected?;
    restored?;
    clean(ctx, &host, &["ruleset"])?;
    let value = textfile_value(ctx, &host, "rampart_firewall_drift_rules")?;
    ensure!(
        value == 0,
        "after the reload, {host} still writes rampart_firewall_drift_rules {value}"
    );
    proof.note(format!(
        "rendered ruleset reloaded: {host}'s ruleset as rendered again (drift 0 in its textfile)"
    ));
    proof.summary = "an added and a deleted rule, each named; clean after reload".into();
    Ok(())
}

/// web2's node exporter restarted on 0.0.0.0 (the topology declares web2's own address):
/// the firewall hides nothing new, yet reach on the host names the bind and the process.
pub fn wildcard_bind(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let web2 = ctx.web_hosts().last().cloned().context("no web host")?;
    let port = ctx.port("nodeExporter")?;
    let dirs = ctx.lab.host_dirs(&web2.name);
    let daemon = daemons::node_exporter(&ctx.lab.topology, &web2, &dirs)?;
    let wildcard = format!("--web.listen-address=0.0.0.0:{port}");
    let mut spec = daemon.spec.clone();
    for arg in spec.args.iter_mut() {
        if arg.starts_with("--web.listen-address=") {
            *arg = wildcard.clone();
        }
    }
    ctx.lab.stop("node-exporter", &web2.name)?;
    let injected = (|| -> Result<()> {
        ctx.lab
            .start(&spec, &daemon.ready, Duration::from_secs(20))?;
        proof.note(format!(
            "{}: node exporter restarted with {wildcard}",
            web2.name
        ));
        let (code, doc) = reach(ctx, &web2.name, &["listeners"])?;
        ensure!(
            code == 1,
            "reach --from {} --only listeners exited {code} (expected 1)",
            web2.name
        );
        // Go listens on [::]:port for 0.0.0.0 (dual stack): either is every address.
        let line = line_naming(
            &doc,
            &[
                &format!(":{port}/nodeExporter"),
                "prometheus-node",
                "every address",
            ],
        )?;
        proof.note(format!(
            "reach --from {} --only listeners: exit 1; {line}",
            web2.name
        ));
        let listeners = textfile_counts(
            ctx,
            &web2.name,
            "rampart_undeclared_listeners",
            &doc,
            "undeclared-listener",
            &web2.name,
        )?;
        proof.note(format!("{}'s textfile: {listeners}", web2.name));
        Ok(())
    })();
    let _ = ctx.lab.stop("node-exporter", &web2.name);
    let restored = ctx
        .lab
        .start(&daemon.spec, &daemon.ready, Duration::from_secs(20));
    injected?;
    restored?;
    clean(ctx, &web2.name, &["listeners"])?;
    let value = textfile_value(ctx, &web2.name, "rampart_undeclared_listeners")?;
    ensure!(
        value == 0,
        "after the restart, {} still writes rampart_undeclared_listeners {value}",
        web2.name
    );
    proof.note(format!(
        "the lab's node exporter back on {}:{port}: as declared again (its textfile counts 0)",
        web2.address
    ));
    proof.summary = format!("0.0.0.0:{port} named with its process; clean after restart");
    Ok(())
}
