//! etcd, the consensus store of the failover agents (docs/etcd.md), proven by its faults:
//! the cluster over TLS, who may talk to it, what one and two lost members do, and the
//! alerts each loss fires.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rampart_consensus::{
    ClusterHealth, ConsensusError, CLIENT_SERVICE, METRICS_SERVICE, PEER_SERVICE,
};
use rampart_lab::process::{self, Signal};
use rampart_lab::{daemons, netns};
use rampart_topology::{Host, Role};

use super::alerts::wait_quiet;
use super::ctx::now_ms;
use super::{Ctx, Proof};
use crate::bringup::issue;

/// The key the scenarios write (nothing else uses it).
const KEY: &str = "/rampart/lab/etcd-scenario";
const MEMBER_DOWN: &str = "EtcdMemberDown";
const NO_QUORUM: &str = "EtcdNoQuorum";
/// A restarted member rejoins, and the cluster elects a leader, well within this.
const HEAL_LIMIT: Duration = Duration::from_secs(30);
/// How long writes may stay refused after one member went (an election, if it led).
const ONE_LOST_LIMIT: Duration = Duration::from_secs(10);
/// From a dropped SYN to "not reachable": the lab's veths answer in microseconds.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long an alert may take from cause to webhook (as in the alerts scenarios).
const DELIVERY_LIMIT: Duration = Duration::from_secs(40);

/// The host the scenarios ask etcd from: the first database host (it holds an
/// `etcd-client` certificate, as its failover agent would).
pub(super) fn asker(ctx: &Ctx) -> Result<Host> {
    ctx.lab.topology.database_hosts().next().cloned().context(
        "the topology has no database host, whose etcd-client certificate the scenario needs",
    )
}

fn healthy(ctx: &Ctx, asker: &Host) -> Result<ClusterHealth> {
    Ok(daemons::wait_etcd_healthy(
        &ctx.lab.namespace(&asker.name),
        &ctx.lab.topology,
        &ctx.lab.host_dirs(&asker.name).pki,
        HEAL_LIMIT,
    )?)
}

/// Writes `value` to [`KEY`] from `asker`: the revision, or etcd's refusal.
fn put(ctx: &Ctx, asker: &Host, value: String) -> Result<Result<i64, ConsensusError>> {
    let config =
        daemons::etcd_client_config(&ctx.lab.topology, &ctx.lab.host_dirs(&asker.name).pki)?;
    Ok(daemons::with_etcd(
        &ctx.lab.namespace(&asker.name),
        config,
        move |etcd| async move { etcd.put(KEY, value, None).await },
    )?)
}

/// Reads [`KEY`] from `asker`.
fn get(ctx: &Ctx, asker: &Host) -> Result<Result<Option<String>, ConsensusError>> {
    let config =
        daemons::etcd_client_config(&ctx.lab.topology, &ctx.lab.host_dirs(&asker.name).pki)?;
    Ok(daemons::with_etcd(
        &ctx.lab.namespace(&asker.name),
        config,
        |etcd| async move {
            Ok(etcd
                .get(KEY)
                .await?
                .and_then(|kv| kv.value_str().map(str::to_string)))
        },
    )?)
}

/// Writes until one is acknowledged, for at most `limit`; returns how long it took.
fn write_within(ctx: &Ctx, asker: &Host, value: &str, limit: Duration) -> Result<Duration> {
    let start = Instant::now();
    loop {
        match put(ctx, asker, value.to_string())? {
            Ok(_) => return Ok(start.elapsed()),
            // An election (the stopped member led) refuses writes for a moment.
            Err(_) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => bail!(
                "no write acknowledged within {:.0} s: {e}",
                limit.as_secs_f64()
            ),
        }
    }
}

/// Stops a member cleanly (SIGTERM: a leader hands its leadership over first).
fn stop(ctx: &mut Ctx, host: &str) -> Result<()> {
    ensure!(
        ctx.lab.stop("etcd", host)?,
        "the lab's record has no running etcd on {host}"
    );
    Ok(())
}

/// Kills a member as a crash would (SIGKILL: a leader just vanishes, the others must
/// notice and elect), then forgets it.
fn crash(ctx: &mut Ctx, host: &str) -> Result<()> {
    let record = ctx
        .lab
        .record()
        .processes
        .iter()
        .find(|p| p.name == "etcd" && p.node == host)
        .cloned()
        .with_context(|| format!("the lab's record has no running etcd on {host}"))?;
    process::signal(record.pid, Signal::SIGKILL)?;
    let start = Instant::now();
    while process::is_alive(&record) {
        ensure!(
            start.elapsed() < Duration::from_secs(5),
            "etcd on {host} (pid {}) survived SIGKILL for 5 s",
            record.pid
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    ctx.lab.stop("etcd", host)?;
    Ok(())
}

fn start(ctx: &mut Ctx, host: &Host) -> Result<()> {
    let member = daemons::etcd(&ctx.lab.topology, host, &ctx.lab.host_dirs(&host.name))?;
    ctx.lab
        .start(&member.spec, &member.ready, Duration::from_secs(20))?;
    Ok(())
}

/// curl from `node` to a member's `/version` over TLS, with the client certificate in
/// `cert` (`None`: without one); whether etcd answered.
fn version_over_tls(
    ctx: &Ctx,
    node: &str,
    url: &str,
    ca: &Path,
    cert: Option<(&Path, &Path)>,
) -> Result<bool> {
    let ca = ca.display().to_string();
    let mut args = vec!["-sS", "--max-time", "5", "--cacert", &ca];
    let files = cert.map(|(c, k)| (c.display().to_string(), k.display().to_string()));
    if let Some((c, k)) = &files {
        args.extend(["--cert", c, "--key", k]);
    }
    args.push(url);
    let out = ctx.exec(node, "curl", &args)?;
    Ok(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("etcdserver"))
}

/// Every (vantage, member, port) probe whose answer differs from the policy's.
fn port_surprises(ctx: &Ctx) -> Result<(usize, Vec<String>)> {
    let t = &ctx.lab.topology;
    let ports: Vec<(&str, u16)> = [CLIENT_SERVICE, PEER_SERVICE, METRICS_SERVICE]
        .iter()
        .map(|s| Ok((*s, ctx.port(s)?)))
        .collect::<Result<_>>()?;
    let monitoring: Vec<&str> = t
        .hosts_with_role(Role::Monitoring)
        .map(|h| h.name.as_str())
        .collect();
    // Non-members (outside, admin) reach nothing; a member reaches the client and peer
    // ports of the others, and the metrics port only when it is the monitoring host.
    let mut vantages: Vec<String> = vec!["outside".into()];
    if t.lab.as_ref().is_some_and(|l| l.admin.is_some()) {
        vantages.push("admin".into());
    }
    vantages.extend(t.hosts.iter().map(|h| h.name.clone()));
    let mut probes = Vec::new();
    for vantage in &vantages {
        for member in t.hosts.iter().filter(|h| h.name != *vantage) {
            for (service, port) in &ports {
                let member_vantage = t.host(vantage).is_some();
                let expected = member_vantage
                    && (*service != METRICS_SERVICE || monitoring.contains(&vantage.as_str()));
                probes.push((
                    vantage.clone(),
                    member.name.clone(),
                    *service,
                    SocketAddr::from((member.address, *port)),
                    expected,
                ));
            }
        }
    }
    let results: Vec<Result<(String, bool)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = probes
            .iter()
            .map(|(vantage, member, service, address, expected)| {
                let ns = ctx.lab.namespace(vantage);
                scope.spawn(move || -> Result<(String, bool)> {
                    let open = netns::can_connect(&ns, *address, PROBE_TIMEOUT)?;
                    Ok((
                        format!(
                            "{vantage} → {member} {service} ({address}): {} (expected {})",
                            if open { "open" } else { "dropped" },
                            if *expected { "open" } else { "dropped" }
                        ),
                        open == *expected,
                    ))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut surprises = Vec::new();
    for result in results {
        let (line, as_declared) = result?;
        if !as_declared {
            surprises.push(line);
        }
    }
    Ok((probes.len(), surprises))
}

/// The cluster is healthy over TLS; clients need a certificate of the rampart CA;
/// non-members cannot reach the ports; any one member may go with writes going on; two
/// gone refuse writes until one returns, and nothing acknowledged is lost.
pub fn etcd(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let asker = asker(ctx)?;
    let members = ctx.lab.topology.hosts.clone();
    let health = healthy(ctx, &asker)?;
    ensure!(
        health.members.len() == members.len(),
        "{} members answered (expected one per host: {})",
        health.members.len(),
        members.len()
    );
    proof.note(format!(
        "asked from {} with its etcd-client certificate: {}",
        asker.name,
        daemons::describe_etcd(&health)
    ));

    // Client certificates: ours answers, none and another CA's are refused.
    let pki = ctx.lab.host_dirs(&asker.name).pki;
    let ca = pki.join("ca.pem");
    let foreign = ctx.lab.state.root().join("etcd-foreign-ca");
    let _ = std::fs::remove_dir_all(&foreign);
    issue(&ctx.lab, &foreign.join("ca"), &foreign.join("certs"), &[])?;
    let foreign_cert = foreign.join("certs").join(&asker.name);
    let client_port = ctx.port(CLIENT_SERVICE)?;
    for member in &members {
        let url = format!("https://{}:{client_port}/version", member.address);
        ensure!(
            version_over_tls(
                ctx,
                &asker.name,
                &url,
                &ca,
                Some((&pki.join("etcd-client.pem"), &pki.join("etcd-client.key")))
            )?,
            "{url} did not answer {} with its etcd-client certificate",
            asker.name
        );
        ensure!(
            !version_over_tls(ctx, &asker.name, &url, &ca, None)?,
            "{url} answered a client without a certificate"
        );
        ensure!(
            !version_over_tls(
                ctx,
                &asker.name,
                &url,
                &ca,
                Some((
                    &foreign_cert.join("etcd-client.pem"),
                    &foreign_cert.join("etcd-client.key")
                ))
            )?,
            "{url} answered a client certificate of another CA"
        );
    }
    proof.note(format!(
        "client port of every member from {}: /version answers with its etcd-client certificate; refused without one and with another CA's",
        asker.name
    ));

    let (probes, surprises) = port_surprises(ctx)?;
    ensure!(
        surprises.is_empty(),
        "etcd's ports are not as the topology declares:\n{}",
        surprises.join("\n")
    );
    proof.note(format!(
        "{probes} TCP probes of etcd's client, peer and metrics ports: members reach client and peer ports, only monitoring the metrics, outside and admin nothing"
    ));

    // Any one member may crash, the leader too.
    let mut slowest = Duration::ZERO;
    for member in &members {
        let led = healthy(ctx, &asker)?.leader.as_deref() == Some(member.name.as_str());
        crash(ctx, &member.name)?;
        let written = write_within(
            ctx,
            &asker,
            &format!("without-{}", member.name),
            ONE_LOST_LIMIT,
        );
        start(ctx, member)?;
        let took = written.with_context(|| format!("with {}'s etcd stopped", member.name))?;
        slowest = slowest.max(took);
        proof.note(format!(
            "{}'s etcd killed{}: a write acknowledged after {:.2} s",
            member.name,
            if led { " (the leader)" } else { "" },
            took.as_secs_f64()
        ));
        healthy(ctx, &asker)?;
    }

    // Two gone: no quorum. Those two are the others than the asker's own member.
    let gone: Vec<Host> = members
        .iter()
        .filter(|h| h.name != asker.name)
        .take(2)
        .cloned()
        .collect();
    let names: Vec<&str> = gone.iter().map(|h| h.name.as_str()).collect();
    let mut acknowledged = format!("without-{}", members.last().map_or("", |h| h.name.as_str()));
    // The refused write's outcome is unknown: it may wait in a member's log and commit
    // once a quorum is back.
    let mut unknown = String::new();
    for host in &gone {
        crash(ctx, &host.name)?;
    }
    let outcome = (|| -> Result<Duration> {
        let start = Instant::now();
        // A write may still reach a leader that has not noticed yet: then it counts.
        let refusal = loop {
            let value = format!("after-{}ms", start.elapsed().as_millis());
            match put(ctx, &asker, value.clone())? {
                Ok(_) if start.elapsed() < Duration::from_secs(5) => acknowledged = value,
                Ok(_) => bail!(
                    "writes still acknowledged 5 s after {} stopped",
                    names.join(" and ")
                ),
                Err(e) => {
                    unknown = value;
                    break e;
                }
            }
        };
        let refused_after = start.elapsed();
        ensure!(
            refusal.is_unavailable(),
            "the write was refused for another reason than no quorum: {refusal}"
        );
        let read = get(ctx, &asker)?;
        ensure!(
            read.as_ref().is_err_and(|e| e.is_unavailable()),
            "a linearizable read succeeded without quorum: {read:?}"
        );
        proof.note(format!(
            "{}'s etcd killed: writes and reads refused after {:.2} s ({refusal})",
            names.join(" and "),
            refused_after.as_secs_f64()
        ));
        Ok(refused_after)
    })();
    for host in &gone {
        start(ctx, host)?;
    }
    let refused = outcome?;
    let healed = Instant::now();
    let health = healthy(ctx, &asker)?;
    let value = get(ctx, &asker)?
        .context("reading the key after the cluster healed")?
        .unwrap_or_default();
    ensure!(
        value == acknowledged || value == unknown,
        "after healing the key holds {value:?} (expected the last acknowledged write {acknowledged:?}, or the refused {unknown:?} whose outcome was unknown)"
    );
    proof.note(format!(
        "both restarted: healthy again after {:.1} s (leader {}); the key holds {value:?}: {}",
        healed.elapsed().as_secs_f64(),
        health.leader.as_deref().unwrap_or("none"),
        if value == acknowledged {
            "the last acknowledged write"
        } else {
            "the refused write, applied once the quorum was back (its outcome was unknown)"
        }
    ));
    proof.summary = format!(
        "{} members over TLS; no-certificate and foreign-CA clients refused; one killed: writes within {:.2} s; two killed: refused in {:.2} s; healed",
        members.len(),
        slowest.as_secs_f64(),
        refused.as_secs_f64()
    );
    Ok(())
}

/// Stopping the tie-breaker's etcd fires EtcdMemberDown for it; stopping a second member
/// fires EtcdNoQuorum; both reach the webhook, and the cluster heals when they return.
pub fn etcd_alerts(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let asker = asker(ctx)?;
    let lb = ctx.lb.clone();
    let second = ctx
        .lab
        .topology
        .hosts
        .iter()
        .find(|h| h.name != asker.name && h.name != lb.name)
        .cloned()
        .context("the topology has no third host for the no-quorum case")?;
    healthy(ctx, &asker)?;
    wait_quiet(ctx, MEMBER_DOWN, Duration::from_secs(30))?;
    wait_quiet(ctx, NO_QUORUM, Duration::from_secs(30))?;

    let outcome = (|| -> Result<(f64, f64)> {
        let since = now_ms();
        stop(ctx, &lb.name)?;
        let down = ctx.wait_delivery(MEMBER_DOWN, since, DELIVERY_LIMIT)?;
        let host = down
            .labels
            .get("host")
            .and_then(|v| v.as_str())
            .unwrap_or("?");
        ensure!(
            host == lb.name,
            "{MEMBER_DOWN} names host {host:?} (expected {})",
            lb.name
        );
        let member_down = down.received_ms.saturating_sub(since) as f64 / 1000.0;
        proof.note(format!(
            "{}'s etcd stopped: {MEMBER_DOWN} (host={host}) at the webhook after {member_down:.1} s",
            lb.name
        ));
        let since = now_ms();
        stop(ctx, &second.name)?;
        let lost = ctx.wait_delivery(NO_QUORUM, since, DELIVERY_LIMIT)?;
        let no_quorum = lost.received_ms.saturating_sub(since) as f64 / 1000.0;
        proof.note(format!(
            "{}'s etcd stopped too: {NO_QUORUM} at the webhook after {no_quorum:.1} s",
            second.name
        ));
        Ok((member_down, no_quorum))
    })();
    // Heal whatever happened: every stopped member back, the cluster healthy again.
    for host in [&lb, &second] {
        if !ctx
            .lab
            .record()
            .processes
            .iter()
            .any(|p| p.name == "etcd" && p.node == host.name)
        {
            start(ctx, host)?;
        }
    }
    let healed = Instant::now();
    healthy(ctx, &asker)?;
    let (member_down, no_quorum) = outcome?;
    wait_quiet(ctx, NO_QUORUM, Duration::from_secs(30))?;
    wait_quiet(ctx, MEMBER_DOWN, Duration::from_secs(30))?;
    proof.note(format!(
        "both restarted: cluster healthy and both alerts inactive after {:.1} s",
        healed.elapsed().as_secs_f64()
    ));
    proof.summary = format!(
        "{MEMBER_DOWN} in {member_down:.1} s, {NO_QUORUM} in {no_quorum:.1} s at the webhook; healed"
    );
    Ok(())
}
