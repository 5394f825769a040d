//! Concurrent clients writing unique values through the public HTTPS endpoint.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::check::{Op, Outcome};
use crate::scenarios::ctx::Ctx;

/// Bounds of one client's load, whatever happens.
pub const MAX_WRITES_PER_CLIENT: u64 = 20_000;
pub const MAX_LOAD: Duration = Duration::from_secs(600);

/// Runs `clients` writers until `stop`; each value is `base + client * 1_000_000 + i`.
/// Every operation is recorded, also the failed and unknown ones.
pub fn run(ctx: &Ctx, clients: u64, base: u64, epoch: Instant, stop: &AtomicBool) -> Vec<Op> {
    let ops = Mutex::new(Vec::new());
    let url = ctx.public_url("/visit");
    std::thread::scope(|scope| {
        for client in 0..clients {
            let (ops, url) = (&ops, &url);
            scope.spawn(move || {
                let started = Instant::now();
                for i in 0..MAX_WRITES_PER_CLIENT {
                    if stop.load(Ordering::Relaxed) || started.elapsed() > MAX_LOAD {
                        break;
                    }
                    let value = base + client * 1_000_000 + i;
                    let op = write(ctx, url, value, epoch);
                    let failed = !matches!(op.outcome, Outcome::Ok { .. });
                    ops.lock().unwrap_or_else(|p| p.into_inner()).push(op);
                    if failed {
                        // Do not spin while no primary takes writes.
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            });
        }
    });
    ops.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// One `POST /visit?seq=VALUE`.
fn write(ctx: &Ctx, url: &str, value: u64, epoch: Instant) -> Op {
    let invoke = epoch.elapsed().as_secs_f64();
    let target = format!("{url}?seq={value}");
    // The application gives up after 5 s (its write timeout); HAProxy and TLS add little.
    let out = ctx.curl(
        "outside",
        &[
            "-X",
            "POST",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code}",
            &target,
        ],
    );
    let complete = epoch.elapsed().as_secs_f64();
    let outcome = match out {
        Err(e) => Outcome::Unknown(format!("{e:#}")),
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
            match code.trim() {
                "200" | "201" => parse_ack(body).unwrap_or_else(Outcome::Unknown),
                "000" | "" => {
                    Outcome::Unknown(String::from_utf8_lossy(&out.stderr).trim().to_string())
                }
                other => Outcome::Failed(format!("HTTP {other}")),
            }
        }
    };
    Op {
        value,
        invoke,
        complete,
        outcome,
    }
}

/// The server and GTID sequence number of an acknowledged write.
fn parse_ack(body: &str) -> Result<Outcome, String> {
    let json: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("unreadable answer ({e}): {body}"))?;
    let committed = &json["committed"];
    let server_id = committed["serverId"].as_u64();
    let gtid = committed["gtid"].as_str().unwrap_or_default();
    let seq = gtid.rsplit('-').next().and_then(|s| s.parse().ok());
    let committed = match (server_id, seq) {
        (Some(server_id), Some(gtid_seq)) => {
            Some((u32::try_from(server_id).unwrap_or(u32::MAX), gtid_seq))
        }
        // A retry that found its value already written (the write is idempotent): it is
        // acknowledged, but no server vouches for this attempt.
        _ if json["created"] == false => None,
        _ => return Err(format!("acknowledged without a committing server: {body}")),
    };
    Ok(Outcome::Ok { committed })
}
