//! `infralab every`: the lab's stand-in for a systemd timer. The NixOS module runs `reach
//! check` from every host on a timer (`rampart-reach.timer`, `OnUnitActiveSec`); the lab
//! starts this loop in each host's namespace with the same reach arguments, so reach's
//! textfile metrics stay fresh there too (else ReachTextfileStale pages after ten minutes).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// How often the lab runs reach from each host (NixOS: `rampart.monitoring.reach.interval`,
/// one minute). Short, so that a fault reach detects reaches the webhook within seconds.
pub const LAB_REACH_INTERVAL: Duration = Duration::from_secs(10);

/// Runs `command` now and then every `interval` after each run started (a run that takes
/// longer delays the next one, as systemd's `OnUnitActiveSec` does); forever, until killed.
/// A run that fails is reported on stderr (the daemon's log) and the loop goes on.
pub fn every(interval: Duration, command: &[String], first_delay: Duration) -> Result<()> {
    let Some((program, args)) = command.split_first() else {
        bail!(
            "every: no command given (expected `infralab every --interval 10s -- PROGRAM ARGS…`)"
        );
    };
    std::thread::sleep(first_delay);
    loop {
        let started = Instant::now();
        // Seconds since the epoch, the unit of `rampart_reach_last_run_timestamp_seconds`.
        let started_at = crate::scenarios::ctx::now_ms() as f64 / 1000.0;
        match Command::new(program).args(args).status() {
            // reach: 0 as declared, 1 findings; both are results, not failures. One line
            // per run with its start and duration: a stale textfile is then explained by
            // the log alone (a slow run, or none).
            Ok(status) if matches!(status.code(), Some(0 | 1)) => eprintln!(
                "every: run started at {started_at:.1} took {:.2} s",
                started.elapsed().as_secs_f64()
            ),
            Ok(status) => eprintln!(
                "every: run started at {started_at:.1}: {program} exited with {status} after {:.2} s",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => eprintln!("every: cannot run {program}: {e}"),
        }
        std::thread::sleep(interval.saturating_sub(started.elapsed()));
    }
}
