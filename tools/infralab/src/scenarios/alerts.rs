//! Scenarios that end at the webhook: the QPS alert, a dead backend, an expiring
//! certificate. Every load is wrk with a fixed duration from `outside`.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use super::ctx::now_ms;
use super::{Ctx, Proof};
use crate::bringup::issue;

const HIGH_QPS: &str = "HaproxyHighQPS";
const BACKEND_DOWN: &str = "HaproxyBackendDown";
const NGINX_DOWN: &str = "NginxDown";
const CERT_EXPIRING: &str = "ReachCertificateExpiringSoon";

/// How long an alert may take from cause to webhook before the scenario fails (the goal
/// is under 15 s: 2 s scrapes and evaluations, `for:` capped at 6 s).
const DELIVERY_LIMIT: Duration = Duration::from_secs(40);

/// The light phase of qps-alert: the 8 s rate window plus the 6 s `for:` cap, and a spare
/// evaluation.
const LIGHT: Duration = Duration::from_secs(16);

/// Waits until Prometheus no longer has `alert` pending or firing (left over from an
/// earlier load), so that a quiet phase starts quiet.
pub(super) fn wait_quiet(ctx: &Ctx, alert: &str, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while ctx.active_alerts()?.iter().any(|a| a == alert) {
        ensure!(
            start.elapsed() < limit,
            "{alert} is still active {:.0} s after the last load",
            limit.as_secs_f64()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

/// Light load (well under the threshold) for longer than the rule's `for:` fires nothing;
/// then load far above it fires HaproxyHighQPS at the webhook.
pub fn qps_alert(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let threshold = ctx.lab.topology.qps_threshold;
    wait_quiet(ctx, HIGH_QPS, Duration::from_secs(30))?;

    // Light: one request every 250 ms (4/s) for longer than the rate window and `for:`
    // together, so a rule that fired on it would have fired by the end.
    let quiet_start = now_ms();
    let url = ctx.public_url("/");
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < LIGHT {
        let out = ctx.curl("outside", &["--fail", "-o", "/dev/null", &url])?;
        ensure!(
            out.status.success(),
            "GET {url} failed during the light load"
        );
        sent += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let active = ctx.active_alerts()?;
    ensure!(
        !active.iter().any(|a| a == HIGH_QPS),
        "{HIGH_QPS} is active under light load ({sent} requests in {} s)",
        LIGHT.as_secs()
    );
    let delivered = ctx.delivered_since(quiet_start)?;
    ensure!(
        !delivered.iter().any(|a| a.name == HIGH_QPS),
        "{HIGH_QPS} reached the webhook under light load"
    );
    proof.note(format!(
        "light load: {sent} requests in {} s ({:.1}/s, threshold {threshold}/s): {HIGH_QPS} neither pending nor delivered",
        LIGHT.as_secs(),
        sent as f64 / LIGHT.as_secs_f64()
    ));

    // Heavy: wrk for up to 25 s; it is stopped as soon as the alert arrives.
    let heavy = ctx.load(8, 25)?;
    let load_start = now_ms();
    let running = heavy.start()?;
    let delivery = ctx.wait_delivery(HIGH_QPS, load_start, DELIVERY_LIMIT);
    running.stop();
    let alert = delivery?;
    let seconds = (alert.received_ms.saturating_sub(load_start)) as f64 / 1000.0;
    proof.note(format!("wrk -t2 -c8 from outside: {HIGH_QPS} delivered to the webhook {seconds:.1} s after the load started (goal < 15 s)"));
    proof.summary =
        format!("{HIGH_QPS} at the webhook {seconds:.1} s after load start; none under light load");
    Ok(())
}

/// Under steady load, web1's nginx stops: the site keeps answering from the other web
/// hosts, HaproxyBackendDown reaches the webhook, and nginx rejoins when restarted.
pub fn backend_down(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let web1 = ctx.web_hosts()[0].clone();
    ctx.wait_server(&web1.name, "UP", Duration::from_secs(20))?;
    let steady = ctx.load(8, 10)?;
    let running = steady.start()?;
    // Two seconds of normal service first, so the load is steady when web1 goes.
    std::thread::sleep(Duration::from_secs(2));
    let stopped_at = now_ms();
    let stopped = ctx.lab.stop("nginx", &web1.name);
    let report = running.finish();
    stopped?;
    let report = report?;
    proof.note(format!(
        "wrk -t2 -c8 for 10 s from outside, web1's nginx stopped at 2 s: {} requests, {} failed (goal 0): {} socket errors, {} answers other than 2xx/3xx",
        report.requests,
        report.failed(),
        report.socket_errors,
        report.non_2xx_3xx
    ));
    let outcome = alert_and_rejoin(ctx, proof, &web1, stopped_at);
    ensure!(report.requests > 0, "no request succeeded under load");
    // GETs only: nginx's graceful stop finishes what it has, and HAProxy sends again what
    // it could not (refused connections, pooled connections closed under it).
    ensure!(
        report.failed() == 0,
        "{} of {} requests failed while web1's nginx stopped (goal 0)",
        report.failed(),
        report.requests
    );
    let (seconds, took) = outcome?;
    proof.summary = format!(
        "{} failed of {} requests; alert in {seconds:.1} s; rejoined in {:.1} s",
        report.failed(),
        report.requests,
        took.as_secs_f64()
    );
    Ok(())
}

/// NginxDown for `web1` at the webhook, HaproxyBackendDown firing in Prometheus but muted,
/// nothing else delivered; then nginx started again and web1 UP: the seconds to the alert
/// and the time to rejoin. nginx is started again even when a check fails, so that later
/// scenarios find web1 serving.
fn alert_and_rejoin(
    ctx: &mut Ctx,
    proof: &mut Proof,
    web1: &rampart_topology::Host,
    stopped_at: u64,
) -> Result<(f64, Duration)> {
    // The cause pages; what it explains (HAProxy's view, the probe, reach's view of web1)
    // is muted by Alertmanager's inhibition rules.
    let checked = (|| -> Result<f64> {
        let alert = ctx.wait_delivery(NGINX_DOWN, stopped_at, DELIVERY_LIMIT)?;
        let seconds = (alert.received_ms.saturating_sub(stopped_at)) as f64 / 1000.0;
        let host = alert
            .labels
            .get("host")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string();
        ensure!(
            host == web1.name,
            "{NGINX_DOWN} names host {host:?} (expected {})",
            web1.name
        );
        ctx.wait_active(BACKEND_DOWN, Duration::from_secs(20))?;
        std::thread::sleep(Duration::from_secs(3));
        let delivered: Vec<String> = ctx
            .delivered_since(stopped_at)?
            .into_iter()
            // This scenario's own load is above the QPS threshold.
            .filter(|a| a.status == "firing" && a.name != NGINX_DOWN && a.name != HIGH_QPS)
            .map(|a| a.name)
            .collect();
        ensure!(
            delivered.is_empty(),
            "besides {NGINX_DOWN}, the webhook got {} (expected them muted by the inhibition rules)",
            delivered.join(", ")
        );
        proof.note(format!(
            "{NGINX_DOWN} for {host} at the webhook {seconds:.1} s after nginx stopped; {BACKEND_DOWN} fires in Prometheus and is muted (inhibited), nothing else delivered"
        ));
        Ok(seconds)
    })();
    ctx.start_nginx(web1, Duration::from_secs(20))?;
    let seconds = checked?;
    let (state, took) = ctx.wait_server(&web1.name, "UP", Duration::from_secs(20))?;
    proof.note(format!(
        "nginx restarted: web1 UP ({}) again after {:.1} s",
        state.check,
        took.as_secs_f64()
    ));
    Ok((seconds, took))
}

/// A backend certificate valid for two more days, reported by `reach` through node
/// exporter's textfile collector, fires ReachCertificateExpiringSoon.
pub fn cert_expiry(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let host = ctx.web_hosts().last().cloned().context("no web host")?;
    let state = ctx.lab.state.root().to_path_buf();
    let out_dir = state.join("near-expiry");
    let _ = std::fs::remove_dir_all(&out_dir);
    // The lab's own CA, a two-day validity: the certificate still verifies everywhere.
    issue(&ctx.lab, &ctx.pki.ca_dir, &out_dir, &["--validity", "2d"])?;
    ctx.replace_backend_certificate(&host.name, &out_dir.join(&host.name))?;
    let outcome = (|| -> Result<f64> {
        let since = now_ms();
        let args =
            crate::reach::check_args(&ctx.lab, &ctx.pki, &host.name, &["certificates"], false);
        let out = crate::reach::run_reach(&ctx.lab, &host.name, &args)?;
        proof.note(format!(
            "{}'s backend.pem replaced by one valid for 2 days; reach check --only certificates --prom-textfile: exit {}",
            host.name,
            out.status.code().unwrap_or(-1)
        ));
        let alert = ctx.wait_delivery(CERT_EXPIRING, since, DELIVERY_LIMIT)?;
        let labels: Vec<String> = ["severity", "host", "purpose"]
            .iter()
            .filter_map(|k| {
                alert
                    .labels
                    .get(*k)
                    .and_then(|v| v.as_str())
                    .map(|v| format!("{k}={v}"))
            })
            .collect();
        let seconds = alert.received_ms.saturating_sub(since) as f64 / 1000.0;
        proof.note(format!(
            "{CERT_EXPIRING} ({}) at the webhook {seconds:.1} s after reach wrote its metrics",
            labels.join(", ")
        ));
        Ok(seconds)
    })();
    // The real certificate goes back, and reach reports it, whatever happened.
    ctx.restore_backend_certificate(&host.name)?;
    let args = crate::reach::check_args(&ctx.lab, &ctx.pki, &host.name, &["certificates"], false);
    crate::reach::run_reach(&ctx.lab, &host.name, &args)?;
    let seconds = outcome?;
    proof.summary = format!(
        "{CERT_EXPIRING} at the webhook {seconds:.1} s after reach saw a 2-day certificate"
    );
    Ok(())
}
