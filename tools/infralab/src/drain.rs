//! `infralab drain HOST` and `infralab ready HOST`: the planned removal of a web host from
//! the running lab's HAProxy, through its admin socket, with the very functions
//! `rampart-lb drain|ready` runs on a NixOS load balancer (`rampart_haproxy`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rampart_haproxy::{self as haproxy, AdminSocket, Drained, Readied, WEB_BACKEND};
use rampart_lab::Lab;
use rampart_topology::Role;

use crate::lab_args::LabArgs;

/// The admin socket of the lab's load balancer.
pub fn admin_socket(lab: &Lab) -> Result<AdminSocket> {
    let lb = lab
        .topology
        .hosts_with_role(Role::LoadBalancer)
        .next()
        .context("the topology has no host with role loadBalancer")?;
    Ok(AdminSocket::new(
        lab.host_dirs(&lb.name).run.join("haproxy/stats.sock"),
    ))
}

fn web_host(lab: &Lab, host: &str) -> Result<()> {
    let web: Vec<&str> = lab
        .topology
        .hosts_with_role(Role::Web)
        .map(|h| h.name.as_str())
        .collect();
    if !web.contains(&host) {
        bail!(
            "{host:?} is not a web host of the lab (expected one of: {})",
            web.join(", ")
        );
    }
    Ok(())
}

/// Drains `host` and waits up to `wait` for its sessions to end.
pub fn drain(lab: &Lab, host: &str, wait: Duration) -> Result<Drained> {
    web_host(lab, host)?;
    Ok(haproxy::drain(
        &admin_socket(lab)?,
        WEB_BACKEND,
        host,
        wait,
    )?)
}

/// Waits up to `wait` for `host`'s health check to pass, then readmits it.
pub fn ready(lab: &Lab, host: &str, wait: Duration) -> Result<Readied> {
    web_host(lab, host)?;
    Ok(haproxy::ready(
        &admin_socket(lab)?,
        WEB_BACKEND,
        host,
        wait,
    )?)
}

/// `infralab drain|ready HOST`: exit 0 done, 1 the wait ended first, 2 could not run.
pub fn run(args: &LabArgs, host: &str, back: bool, wait: Duration) -> Result<ExitCode> {
    let lab = args.open()?.with_saved_record()?;
    let outcome = if back {
        ready(&lab, host, wait).map(|r| {
            format!(
                "{host} ready: health check {} after {:.1} s; HAProxy sends it requests again",
                r.check,
                r.waited_ms as f64 / 1000.0
            )
        })
    } else {
        drain(&lab, host, wait).map(|d| {
            format!(
                "{host} drained: {} sessions at the start, none after {:.1} s; its daemons can stop now (`infralab ready {host}` readmits it)",
                d.sessions_at_start,
                d.waited_ms as f64 / 1000.0
            )
        })
    };
    match outcome {
        Ok(line) => {
            println!("infralab: {line}");
            Ok(ExitCode::SUCCESS)
        }
        Err(error)
            if matches!(
                error.downcast_ref::<haproxy::Error>(),
                Some(haproxy::Error::StillBusy { .. } | haproxy::Error::NotHealthy { .. })
            ) =>
        {
            eprintln!("infralab: {error:#}");
            Ok(rampart_cli::exit::from_findings(true))
        }
        Err(error) => Err(error),
    }
}
