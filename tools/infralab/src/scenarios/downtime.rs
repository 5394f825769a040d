//! Zero failed requests when a web host dies, restarts or is reconfigured (issue #18).
//!
//! Every scenario here runs the same bounded mixed load through the public endpoint
//! ([`rampart_lab::traffic`]: clients in `outside`, one request in four a POST carrying a
//! unique request id), waits until it is steady, injects its event, waits until the system
//! is whole again, lets the load run a little longer and stops it. Then it prints, and
//! checks:
//!
//! - failed GETs: 0, always (HAProxy retries them on another server);
//! - failed POSTs: 0 for planned events (drain, rolling restart, HAProxy reload); for
//!   unplanned ones (SIGKILL, network cut) at most the POSTs in flight at the instant of
//!   the event, and how many of those the client cannot know the outcome of;
//! - every POST against the primary database by its request id: none stored twice (HAProxy
//!   or nginx replayed nothing), none acknowledged but missing;
//! - the latency p99 (and the longest) of the requests in flight at some point between the
//!   event and the recovery.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rampart_lab::daemons;
use rampart_lab::names::NODE_LINK;
use rampart_lab::netns;
use rampart_lab::process::{self, Signal};
use rampart_lab::supervise;
use rampart_lab::traffic::{check_applied, Method, MixedLoad, Running};
use rampart_topology::{Host, Role};

use super::ctx::now_ms;
use super::{Ctx, Proof};

/// Concurrent clients, each on one keep-alive connection.
const CLIENTS: usize = 8;
/// One request in this many is a POST.
const POST_EVERY: u64 = 4;
/// The bounds of every load, whatever happens: requests and seconds.
const MAX_REQUESTS: u64 = 200_000;
const MAX_LOAD: Duration = Duration::from_secs(60);
/// A request may wait for HAProxy's `timeout server` (30 s) and a retry elsewhere.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(45);
/// Between two requests of a client: keeps the load a load, not a flood, on a shared
/// machine.
const PAUSE: Duration = Duration::from_millis(2);
/// Normal service before the event, and after the recovery.
const STEADY: Duration = Duration::from_millis(1500);
/// How long anything may take to come back.
const RECOVERY: Duration = Duration::from_secs(30);

/// Planned events fail nothing; unplanned ones may fail POSTs that were in flight.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Planned,
    Unplanned,
}

/// When the event hit and when everything was whole again, since the load started.
struct Window {
    at: Duration,
    until: Duration,
}

/// Runs the load around `event` and checks and prints the figures (module docs).
fn under_load(
    ctx: &mut Ctx,
    proof: &mut Proof,
    name: &str,
    kind: Kind,
    event: impl FnOnce(&mut Ctx, &mut Proof, &Running) -> Result<Window>,
) -> Result<()> {
    let web: Vec<String> = ctx.web_hosts().into_iter().map(|h| h.name).collect();
    for host in &web {
        ctx.wait_server(host, "UP", RECOVERY)?;
    }
    let run = format!("{name}-{}", now_ms());
    let load = MixedLoad {
        namespace: ctx.lab.namespace("outside"),
        address: std::net::SocketAddr::from((ctx.lb.address, ctx.port("https")?)),
        server_name: ctx.public_name.clone(),
        ca: ctx.pki.ca_cert(),
        clients: CLIENTS,
        post_every: POST_EVERY,
        duration: MAX_LOAD,
        max_requests: MAX_REQUESTS,
        timeout: REQUEST_TIMEOUT,
        pause: PAUSE,
        run: run.clone(),
    };
    let running = load.start()?;
    std::thread::sleep(STEADY);
    let window = event(ctx, proof, &running);
    if window.is_ok() {
        std::thread::sleep(STEADY);
    }
    running.stop();
    let traffic = running.finish()?;
    let window = window?;

    let f = traffic.figures(window.at..window.until);
    let in_flight = traffic.in_flight(window.at, Method::Post);
    let counts = stored_request_ids(ctx, &run)?;
    let applied = check_applied(&traffic, &counts);
    proof.note(format!(
        "mixed load: {CLIENTS} clients from outside, 1 POST in {POST_EVERY}, {:.1} s: {} GET /, {} POST /visit (request ids {run}-…)",
        traffic.elapsed.as_secs_f64(),
        f.gets,
        f.posts
    ));
    proof.note(format!(
        "GET: {} failed (goal 0); {} sent again by the client after its keep-alive connection closed unanswered",
        f.failed_gets, f.resent_gets
    ));
    proof.note(format!(
        "POST: {} failed (goal {}), {} of them with an outcome unknown to the client; {} in flight at the event",
        f.failed_posts,
        match kind {
            Kind::Planned => "0".to_string(),
            Kind::Unplanned => format!("≤ {in_flight}, the POSTs in flight"),
        },
        f.unknown_posts,
        in_flight
    ));
    proof.note(format!(
        "database (primary, by request id): {} acknowledged and stored once, {} failed but stored, {} failed and not stored; stored twice: {}, acknowledged but missing: {}",
        applied.acknowledged,
        applied.failed_but_applied,
        applied.failed_not_applied,
        applied.duplicates.len(),
        applied.lost.len()
    ));
    proof.note(format!(
        "latency during the event ({:.2} s → {:.2} s, {} requests): p99 {:.1} ms, longest {:.1} ms",
        window.at.as_secs_f64(),
        window.until.as_secs_f64(),
        f.in_window,
        f.p99_ms,
        f.max_ms
    ));
    for failure in &f.failures {
        proof.note(format!("failed: {failure}"));
    }
    proof.summary = format!(
        "GET {}/{} failed, POST {}/{} failed ({} unknown, {} in flight), {} applied twice, p99 {:.0} ms (max {:.0})",
        f.failed_gets,
        f.gets,
        f.failed_posts,
        f.posts,
        f.unknown_posts,
        in_flight,
        applied.duplicates.len(),
        f.p99_ms,
        f.max_ms
    );
    ensure!(
        f.gets > 0 && f.posts > 0,
        "the load sent {} GETs and {} POSTs (expected both)",
        f.gets,
        f.posts
    );
    ensure!(
        applied.duplicates.is_empty(),
        "POSTs stored more than once (replayed): {:?}",
        applied.duplicates.iter().take(10).collect::<Vec<_>>()
    );
    ensure!(
        applied.lost.is_empty(),
        "POSTs acknowledged but not stored: {:?}",
        applied.lost.iter().take(10).collect::<Vec<_>>()
    );
    ensure!(f.failed_gets == 0, "{} GETs failed (goal 0)", f.failed_gets);
    match kind {
        Kind::Planned => ensure!(
            f.failed_posts == 0,
            "{} POSTs failed during a planned event (goal 0)",
            f.failed_posts
        ),
        Kind::Unplanned => ensure!(
            f.failed_posts <= in_flight,
            "{} POSTs failed, more than the {in_flight} in flight at the event",
            f.failed_posts
        ),
    }
    Ok(())
}

/// How many visits carry each request id of run `run`, on the database host that leads
/// now (where the writes went; the declared primary may be a replica by now).
fn stored_request_ids(ctx: &Ctx, run: &str) -> Result<HashMap<String, u64>> {
    let primary = database_leader(ctx)?.context("the topology has no database host")?;
    let rows = ctx.sql(
        &primary,
        &format!(
            "SELECT request_id, COUNT(*) FROM rampart.visits WHERE request_id LIKE '{run}-%' GROUP BY request_id"
        ),
    )?;
    rows.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (id, count) = line
                .split_once('\t')
                .with_context(|| format!("{primary}: not `id<TAB>count`: {line:?}"))?;
            Ok((id.to_string(), count.parse()?))
        })
        .collect()
}

/// Sessions HAProxy has sent `host` since it started.
fn served(ctx: &Ctx, host: &str) -> Result<u64> {
    Ok(crate::drain::admin_socket(&ctx.lab)?
        .server(rampart_haproxy::WEB_BACKEND, host)?
        .served)
}

/// The first web host: where the faults hit.
fn first_web(ctx: &Ctx) -> Host {
    ctx.web_hosts()[0].clone()
}

/// Waits until the supervisor has started `name` again after `starts` starts, its port
/// answers (when it has one here) and HAProxy counts `host` UP; notes how long each took.
fn wait_back(
    ctx: &Ctx,
    proof: &mut Proof,
    host: &Host,
    name: &str,
    starts: u32,
    killed: Instant,
) -> Result<()> {
    let dirs = ctx.lab.host_dirs(&host.name);
    let pid = supervise::wait_started(&dirs, name, starts, RECOVERY)?;
    let restarted = killed.elapsed();
    if name == "nginx" {
        let address = std::net::SocketAddr::from((host.address, ctx.port("backendHttps")?));
        netns::wait_for_port(&ctx.lab.namespace(&host.name), address, RECOVERY, || Ok(()))?
            .with_context(|| format!("the restarted nginx does not answer on {address}"))?;
    }
    let (state, _) = ctx.wait_server(&host.name, "UP", RECOVERY)?;
    proof.note(format!(
        "its supervisor started it again (pid {pid}) after {:.2} s; HAProxy: {} UP ({}) {:.2} s after the kill",
        restarted.as_secs_f64(),
        host.name,
        state.check,
        killed.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// SIGKILL to web1's nginx, master and workers, as a crash or the OOM killer would.
pub fn nginx_kill(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    under_load(
        ctx,
        proof,
        "nginx-kill",
        Kind::Unplanned,
        |ctx, proof, running| {
            let host = first_web(ctx);
            let dirs = ctx.lab.host_dirs(&host.name);
            let status = supervise::read_status(&supervise::status_path(&dirs, "nginx"))?;
            let master = status
                .live_pid()
                .with_context(|| format!("{}'s nginx is not running", host.name))?;
            let workers = process::children(master);
            let at = running.now();
            let killed = Instant::now();
            for pid in std::iter::once(master).chain(workers.iter().copied()) {
                // A worker may be gone already: its master's death ends it.
                let _ = process::signal(pid, Signal::SIGKILL);
            }
            proof.note(format!(
                "SIGKILL to {}'s nginx master (pid {master}) and its {} workers at {:.3} s",
                host.name,
                workers.len(),
                at.as_secs_f64()
            ));
            wait_back(ctx, proof, &host, "nginx", status.starts, killed)?;
            Ok(Window {
                at,
                until: running.now(),
            })
        },
    )
}

/// SIGKILL to web1's application while nginx stays up.
pub fn app_kill(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    under_load(
        ctx,
        proof,
        "app-kill",
        Kind::Unplanned,
        |ctx, proof, running| {
            let host = first_web(ctx);
            let dirs = ctx.lab.host_dirs(&host.name);
            let status = supervise::read_status(&supervise::status_path(&dirs, "app"))?;
            let pid = status
                .live_pid()
                .with_context(|| format!("{}'s application is not running", host.name))?;
            let at = running.now();
            let killed = Instant::now();
            process::signal(pid, Signal::SIGKILL)?;
            proof.note(format!(
            "SIGKILL to {}'s rampart-app (pid {pid}) at {:.3} s; its supervisor keeps the listening socket",
            host.name,
            at.as_secs_f64()
        ));
            wait_back(ctx, proof, &host, "app", status.starts, killed)?;
            Ok(Window {
                at,
                until: running.now(),
            })
        },
    )
}

/// A web host's network cut (its link down: nothing in or out, nothing answered), until
/// HAProxy marks it DOWN; then the link comes back and the host rejoins. The host chosen
/// is one without the database primary: losing the primary is the failover's business
/// (docs/failover.md), not the web tier's.
pub fn network_cut(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    under_load(
        ctx,
        proof,
        "network-cut",
        Kind::Unplanned,
        |ctx, proof, running| {
            let web = ctx.web_hosts();
            let leader = database_leader(ctx)?;
            let host = web
                .iter()
                .find(|h| Some(&h.name) != leader.as_ref())
                .unwrap_or(&web[web.len() - 1])
                .clone();
            let namespace = ctx.lab.namespace(&host.name);
            let link = |state: &str| -> Result<()> {
                rampart_lab::run(
                    Command::new("ip").args(["-n", &namespace, "link", "set", NODE_LINK, state]),
                )?;
                Ok(())
            };
            link("down")?;
            // After the command: the cut is in effect from here on.
            let at = running.now();
            let down = ctx.wait_server(&host.name, "DOWN", RECOVERY);
            // The link comes back whatever happened.
            let restored = link("up");
            let (state, took) = down?;
            restored?;
            proof.note(format!(
            "{}'s {NODE_LINK} down at {:.3} s: HAProxy marked it DOWN ({}) after {:.2} s; link up again",
            host.name,
            at.as_secs_f64(),
            state.check,
            took.as_secs_f64()
        ));
            let (state, took) = ctx.wait_server(&host.name, "UP", RECOVERY)?;
            proof.note(format!(
                "{} UP again ({}) {:.2} s after the link came back",
                host.name,
                state.check,
                took.as_secs_f64()
            ));
            Ok(Window {
                at,
                until: running.now(),
            })
        },
    )
}

/// The planned removal of a web host: drain it (no new requests, wait until its sessions
/// end), stop its nginx, keep it out while the load goes on, start it, and put it back
/// once HAProxy's health check passes: `infralab drain`/`ready`, `rampart-lb` on NixOS.
pub fn drain(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    under_load(ctx, proof, "drain", Kind::Planned, |ctx, proof, running| {
        let host = ctx.web_hosts().last().cloned().context("no web host")?;
        let at = running.now();
        let drained = crate::drain::drain(&ctx.lab, &host.name, RECOVERY)?;
        let served_before = served(ctx, &host.name)?;
        ctx.lab.stop("nginx", &host.name)?;
        proof.note(format!(
            "{} drained at {:.2} s ({} sessions, none after {:.2} s), then its nginx stopped",
            host.name,
            at.as_secs_f64(),
            drained.sessions_at_start,
            drained.waited_ms as f64 / 1000.0
        ));
        std::thread::sleep(STEADY);
        ctx.start_nginx(&host, RECOVERY)?;
        let unserved = served(ctx, &host.name)? == served_before;
        let readied = crate::drain::ready(&ctx.lab, &host.name, RECOVERY)?;
        proof.note(format!(
            "nginx started again; {} ready ({}) {:.2} s later; while out it served {}",
            host.name,
            readied.check,
            readied.waited_ms as f64 / 1000.0,
            if unserved { "nothing" } else { "requests" }
        ));
        ensure!(
            unserved,
            "HAProxy sent {} sessions while it was drained",
            host.name
        );
        Ok(Window {
            at,
            until: running.now(),
        })
    })
}

/// Every daemon of both web hosts restarted, one host after the other: drain, restart
/// each daemon (its graceful stop, its supervisor starting it again; the etcd member and
/// the replica's MariaDB by hand), wait until HAProxy's health check passes, ready.
pub fn rolling_restart(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    under_load(
        ctx,
        proof,
        "rolling-restart",
        Kind::Planned,
        |ctx, proof, running| {
            let at = running.now();
            for host in ctx.web_hosts() {
                let restarted = restart_host(ctx, &host);
                // A host left drained would serve nothing in later scenarios.
                let readied = crate::drain::ready(&ctx.lab, &host.name, RECOVERY);
                let line = restarted?;
                let readied = readied?;
                proof.note(format!(
                    "{line}; ready ({}) after {:.2} s",
                    readied.check,
                    readied.waited_ms as f64 / 1000.0
                ));
            }
            Ok(Window {
                at,
                until: running.now(),
            })
        },
    )
}

/// The database host that leads now (the failover agents' view, `rampart-db status`), not
/// the topology's declared primary: the failover scenarios move the lead. `None` when the
/// topology has no database host.
fn database_leader(ctx: &Ctx) -> Result<Option<String>> {
    let Some(observer) = ctx.lab.topology.database_hosts().next() else {
        return Ok(None);
    };
    let (leader, _) = crate::failover::wait_leader(&ctx.lab, &observer.name, None, RECOVERY)?;
    Ok(Some(leader))
}

/// Drains `host` and restarts every daemon on it; one line saying what took how long.
fn restart_host(ctx: &mut Ctx, host: &Host) -> Result<String> {
    let drained = crate::drain::drain(&ctx.lab, &host.name, RECOVERY)?;
    let dirs = ctx.lab.host_dirs(&host.name);
    let mut done = vec![format!(
        "{}: drained ({} sessions, none after {:.2} s)",
        host.name,
        drained.sessions_at_start,
        drained.waited_ms as f64 / 1000.0
    )];
    let supervised: Vec<String> = ctx
        .lab
        .record()
        .processes
        .iter()
        .filter(|p| p.node == host.name && supervise::status_path(&dirs, &p.name).exists())
        .map(|p| p.name.clone())
        .collect();
    // The serving path first, then the rest.
    let mut order = supervised.clone();
    order.sort_by_key(|name| match name.as_str() {
        "nginx" => 0,
        "app" => 1,
        _ => 2,
    });
    for name in &order {
        let restarted = supervise::restart(&dirs, name, RECOVERY)?;
        done.push(format!("{name} {:.2} s", restarted.took.as_secs_f64()));
    }
    // etcd is not supervised (its scenarios stop members and keep them down): stopped
    // gracefully and started by hand, and the next daemon waits for a healthy cluster, so
    // two members are never out at once.
    if ctx
        .lab
        .record()
        .processes
        .iter()
        .any(|p| p.node == host.name && p.name == "etcd")
    {
        let started = Instant::now();
        ctx.lab.stop("etcd", &host.name)?;
        let member = daemons::etcd(&ctx.lab.topology, host, &dirs)?;
        ctx.lab.start(&member.spec, &member.ready, RECOVERY)?;
        let asker = super::etcd::asker(ctx)?.name;
        daemons::wait_etcd_healthy(
            &ctx.lab.namespace(&asker),
            &ctx.lab.topology,
            &ctx.lab.host_dirs(&asker).pki,
            RECOVERY,
        )?;
        done.push(format!(
            "etcd {:.2} s (cluster healthy again)",
            started.elapsed().as_secs_f64()
        ));
    }
    let database_host =
        host.has_role(Role::DatabaseReplica) || host.has_role(Role::DatabasePrimary);
    // The roles as they are now: an earlier scenario's failover may have moved the lead.
    let leads = database_leader(ctx)?.as_ref() == Some(&host.name);
    if database_host && !leads {
        let started = Instant::now();
        ctx.lab.stop("mariadb", &host.name)?;
        let mariadb = daemons::mariadb(&ctx.lab.topology, host, &dirs)?;
        ctx.lab.start(&mariadb.spec, &mariadb.ready, RECOVERY)?;
        done.push(format!(
            "mariadb (replica) {:.2} s",
            started.elapsed().as_secs_f64()
        ));
    } else if leads {
        done.push(
            "mariadb (primary) not restarted: that is a switchover (docs/failover.md)".into(),
        );
    }
    Ok(done.join(", "))
}

/// HAProxy reloaded with a changed configuration (a response header added), then with the
/// original one, as NixOS's `ExecReload=` does it: `haproxy -c`, SIGUSR2 to the master.
pub fn haproxy_reload(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    under_load(
        ctx,
        proof,
        "haproxy-reload",
        Kind::Planned,
        |ctx, proof, running| {
            let lb = ctx.lb.clone();
            let config = daemons::rendered(&ctx.lab.host_dirs(&lb.name), "haproxy/haproxy.cfg")?;
            let original = std::fs::read_to_string(&config)?;
            let marker = format!("reload-{}", now_ms());
            let changed = with_header(&original, &marker)?;
            let at = running.now();
            std::fs::write(&config, changed)?;
            let reloaded = reload_and_see(ctx, &lb, &config, Some(&marker));
            // The rendered file goes back, and HAProxy with it, whatever happened.
            std::fs::write(&config, &original)?;
            let restored = reload_and_see(ctx, &lb, &config, None);
            let (first, second) = (reloaded?, restored?);
            proof.note(format!(
            "reload with `X-Rampart-Config: {marker}` added at {:.2} s: new worker pid {} serving it after {:.2} s",
            at.as_secs_f64(),
            first.0,
            first.1.as_secs_f64()
        ));
            proof.note(format!(
                "reload with the rendered file again: worker pid {}, header gone after {:.2} s",
                second.0,
                second.1.as_secs_f64()
            ));
            Ok(Window {
                at,
                until: running.now(),
            })
        },
    )
}

/// The configuration with one more response header in the public frontend.
fn with_header(config: &str, marker: &str) -> Result<String> {
    let anchor = "  http-after-response set-header Strict-Transport-Security";
    ensure!(
        config.lines().filter(|l| l.starts_with(anchor)).count() == 1,
        "haproxy.cfg has no single `{anchor} …` line to add a header after; the renderer changed"
    );
    Ok(config
        .lines()
        .flat_map(|line| {
            let extra = line
                .starts_with(anchor)
                .then(|| format!("  http-after-response set-header X-Rampart-Config {marker}"));
            std::iter::once(line.to_string()).chain(extra)
        })
        .map(|line| line + "\n")
        .collect())
}

/// Reloads HAProxy and waits until a new worker answers on the admin socket and the
/// public endpoint shows `header` (or no X-Rampart-Config when `None`); the worker's pid
/// and how long it took.
fn reload_and_see(
    ctx: &Ctx,
    lb: &Host,
    config: &std::path::Path,
    header: Option<&str>,
) -> Result<(u32, Duration)> {
    let socket = crate::drain::admin_socket(&ctx.lab)?;
    let worker = || -> Result<u32> {
        let info = socket.command("show info")?;
        info.lines()
            .find_map(|l| l.strip_prefix("Pid: "))
            .and_then(|pid| pid.trim().parse().ok())
            .context("HAProxy's `show info` has no Pid")
    };
    let before = worker()?;
    let start = Instant::now();
    daemons::reload_haproxy(&ctx.lab, lb, config)?;
    loop {
        let now = worker().unwrap_or(before);
        if now != before {
            let out = ctx.curl(
                "outside",
                &["-o", "/dev/null", "-D", "-", &ctx.public_url("/")],
            )?;
            let headers = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
            let seen = headers
                .lines()
                .find_map(|l| l.strip_prefix("x-rampart-config:"))
                .map(|v| v.trim().to_string());
            if seen.as_deref() == header.map(str::to_ascii_lowercase).as_deref() {
                return Ok((now, start.elapsed()));
            }
        }
        if start.elapsed() > RECOVERY {
            bail!(
                "HAProxy did not serve the reloaded configuration within {:.0} s (worker pid {now}, was {before})",
                RECOVERY.as_secs_f64()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reload_adds_one_header_after_hsts() {
        let config = "frontend https\n  http-after-response set-header Strict-Transport-Security \"max-age=1\"\n  default_backend web\n";
        assert_eq!(
            with_header(config, "reload-1").unwrap(),
            "frontend https\n  http-after-response set-header Strict-Transport-Security \"max-age=1\"\n  http-after-response set-header X-Rampart-Config reload-1\n  default_backend web\n"
        );
        assert!(with_header("frontend https\n", "x").is_err());
    }
}
