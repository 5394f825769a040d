//! `infralab bench`: HTTPS throughput and p99 latency from `outside` through the load
//! balancer, (a) re-encrypting to the backends as shipped, then (b) with plain backends,
//! in the same run on the same lab; the ratio a/b prices re-encryption.
//!
//! JSON output (`--json`) is one document:
//!
//! ```json
//! { "type": "bench", "seconds": 10, "connections": 32,
//!   "runs": [ { "type": "run", "variant": "reencrypt", "requests": 180000,
//!               "requestsPerSecond": 18000.0, "p99Ms": 4.1, "failed": 0 } ],
//!   "ratio": 0.9 }
//! ```

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use rampart_lab::load::{Load, LoadReport};
use rampart_lab::{daemons, variant};
use rampart_topology::Role;
use serde_json::json;

use crate::lab_args::LabArgs;
use crate::scenarios::ctx::Ctx;

const READY: Duration = Duration::from_secs(30);

fn measure(ctx: &Ctx, seconds: u64, connections: u32) -> Result<LoadReport> {
    let load = ctx.load(connections, seconds)?;
    // One second first: TLS sessions and backend connections exist before the count starts.
    Load {
        duration: Duration::from_secs(1),
        ..load.clone()
    }
    .run()?;
    Ok(load.run()?)
}

/// Switches every web host's nginx and the load balancer's HAProxy to plain backends
/// (`plain = true`) or back to the rendered files, and waits until every server is UP.
fn switch(ctx: &mut Ctx, plain: bool) -> Result<()> {
    let web: Vec<_> = ctx
        .lab
        .topology
        .hosts_with_role(Role::Web)
        .cloned()
        .collect();
    for host in &web {
        let d = ctx.lab.host_dirs(&host.name);
        let rendered = d.etc.join("nginx/rampart.conf");
        let include = if plain {
            let text = std::fs::read_to_string(&rendered)?;
            let variant = d.etc.join("nginx/rampart-plain.conf");
            std::fs::write(&variant, variant::nginx_plain_backend(&text)?)?;
            variant
        } else {
            rendered
        };
        let main = d.etc.join("nginx/nginx.conf");
        std::fs::write(&main, daemons::nginx_main_conf_including(&d, &include)?)?;
        ctx.reload("nginx", &host.name)?;
    }
    let lb = ctx.lb.clone();
    let d = ctx.lab.host_dirs(&lb.name);
    let config = if plain {
        let text = std::fs::read_to_string(daemons::rendered(&d, "haproxy/haproxy.cfg")?)?;
        let variant = d.etc.join("haproxy/haproxy-plain.cfg");
        std::fs::write(&variant, variant::haproxy_plain_backends(&text)?)?;
        variant
    } else {
        daemons::rendered(&d, "haproxy/haproxy.cfg")?
    };
    let haproxy = daemons::haproxy_with(&ctx.lab.topology, &lb, &d, &config)?;
    ctx.lab.stop("haproxy", &lb.name)?;
    ctx.lab.start(&haproxy.spec, &haproxy.ready, READY)?;
    for host in &web {
        ctx.wait_server(&host.name, "UP", READY).with_context(|| {
            format!(
                "after switching to {} backends",
                if plain { "plain" } else { "TLS" }
            )
        })?;
    }
    Ok(())
}

pub fn run(args: &LabArgs, seconds: u64, connections: u32, as_json: bool) -> Result<ExitCode> {
    rampart_lab::require_root("infralab bench")?;
    let mut ctx = Ctx::open(args)?;
    for host in ctx
        .lab
        .topology
        .hosts_with_role(Role::Web)
        .map(|h| h.name.clone())
        .collect::<Vec<_>>()
    {
        ctx.wait_server(&host, "UP", READY)?;
    }
    let reencrypt = measure(&ctx, seconds, connections)?;
    switch(&mut ctx, true)?;
    let plain = measure(&ctx, seconds, connections);
    // The shipped configuration comes back whatever the measurement did.
    let restored = switch(&mut ctx, false);
    let plain = plain?;
    restored?;
    let ratio = reencrypt.requests_per_second / plain.requests_per_second.max(f64::MIN_POSITIVE);
    let run = |variant: &str, r: &LoadReport| {
        json!({"type": "run", "variant": variant, "requests": r.requests,
               "requestsPerSecond": r.requests_per_second, "p99Ms": r.p99_ms, "failed": r.failed()})
    };
    if as_json {
        let doc = json!({
            "type": "bench", "seconds": seconds, "connections": connections,
            "runs": [run("reencrypt", &reencrypt), run("plain", &plain)],
            "ratio": ratio,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "wrk -t2 -c{connections} -d{seconds}s https://{}/ from outside, through {}:",
            ctx.public_name, ctx.lb.name
        );
        for (name, r) in [
            ("(a) re-encrypting to backends (shipped)", &reencrypt),
            ("(b) plain HTTP to backends", &plain),
        ] {
            println!(
                "  {name:<42} {:>9.0} req/s   p99 {:>7.2} ms   {} failed",
                r.requests_per_second,
                r.p99_ms,
                r.failed()
            );
        }
        println!("  ratio a/b: {ratio:.2} (goal ≥ 0.85)");
    }
    Ok(ExitCode::SUCCESS)
}
