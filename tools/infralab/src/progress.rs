//! The step-by-step display of `infralab up` and `infralab test`: one line per step with
//! ✔ or ✘ and how long it took.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Prints steps as they finish. On a terminal, the running step is shown first and then
/// replaced by its result.
pub struct Progress {
    started: Instant,
    live: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            started: Instant::now(),
            live: std::io::stdout().is_terminal(),
        }
    }

    /// Time since the display started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Runs one step and prints its line; the step's detail text follows its name.
    pub fn step<T, E>(
        &self,
        name: &str,
        work: impl FnOnce() -> Result<(T, String), E>,
    ) -> Result<T, E> {
        if self.live {
            print!("  ⋯ {name}");
            let _ = std::io::stdout().flush();
        }
        let start = Instant::now();
        let outcome = work();
        let took = start.elapsed();
        let (mark, detail) = match &outcome {
            Ok((_, detail)) => ("✔", detail.as_str()),
            Err(_) => ("✘", ""),
        };
        self.line(mark, name, detail, took);
        outcome.map(|(value, _)| value)
    }

    /// Prints a finished line.
    pub fn line(&self, mark: &str, name: &str, detail: &str, took: Duration) {
        let clear = if self.live { "\r\x1b[K" } else { "" };
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!("  {detail}")
        };
        println!(
            "{clear}{mark} {name:<28} {:>6.2} s{detail}",
            took.as_secs_f64()
        );
    }
}
