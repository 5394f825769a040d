//! The history checker of the fault suite: what clients saw, against what the database
//! holds at the end (Jepsen-style).
//!
//! Each client operation writes one unique value and records when it was invoked, when it
//! completed and its result: `ok` (acknowledged, with the server id and GTID that
//! committed it), `failed` (an HTTP error: the application said it did not, or may not,
//! have written) or `unknown` (no answer). The checks:
//!
//! - **lost**: an acknowledged value missing from the final state;
//! - **invented**: a value in the final state that no client sent;
//! - **two writers**: an acknowledged write that was *invoked after* another acknowledged
//!   write *completed*, yet committed with a lower GTID sequence number — a server
//!   accepted it although another had already taken over (under GTID strict mode one
//!   history numbers its transactions in order) — or two acknowledged writes with the same
//!   sequence number from different servers (two histories);
//! - **unavailability**: the longest stretch without any acknowledged write from the
//!   fault's injection on (a primary cut off from etcd still takes writes until its gate
//!   closes; the outage is the gap that follows).

use std::collections::{BTreeMap, BTreeSet};

/// What one client operation saw.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Acknowledged; with the server id and GTID sequence number that committed it, when
    /// this attempt wrote it (an idempotent retry that found its value written has none).
    Ok {
        committed: Option<(u32, u64)>,
    },
    Failed(String),
    Unknown(String),
}

/// One client operation; times in seconds since the run started.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub value: u64,
    pub invoke: f64,
    pub complete: f64,
    pub outcome: Outcome,
}

/// A stretch in which a server took writes after another had taken over.
#[derive(Clone, Debug, PartialEq)]
pub struct TwoWriters {
    /// The write that should not have been accepted.
    pub value: u64,
    pub server_id: u32,
    pub gtid_seq: u64,
    /// The write that completed before it was invoked, with a higher sequence number.
    pub earlier_value: u64,
    pub earlier_server_id: u32,
    pub earlier_gtid_seq: u64,
}

/// The verdict on one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    pub ops: usize,
    pub acked: usize,
    pub failed: usize,
    pub unknown: usize,
    pub lost: Vec<u64>,
    pub invented: Vec<u64>,
    pub two_writers: Vec<TwoWriters>,
    /// The longest time without an acknowledged write from the fault's injection on
    /// (`None`: nothing was acknowledged after it).
    pub unavailable: Option<f64>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.lost.is_empty() && self.invented.is_empty() && self.two_writers.is_empty()
    }

    /// Separate episodes: consecutive violations by the same server count once.
    pub fn two_writer_windows(&self) -> usize {
        let mut windows = 0;
        let mut last: Option<u32> = None;
        for v in &self.two_writers {
            if last != Some(v.server_id) {
                windows += 1;
            }
            last = Some(v.server_id);
        }
        windows
    }

    pub fn summary(&self) -> String {
        format!(
            "{} writes: {} acked, {} failed, {} unknown; {} lost, {} invented, {} two-writer windows{}",
            self.ops,
            self.acked,
            self.failed,
            self.unknown,
            self.lost.len(),
            self.invented.len(),
            self.two_writer_windows(),
            self.unavailable
                .map(|s| format!("; writes unavailable {s:.2} s"))
                .unwrap_or_default()
        )
    }
}

/// Checks a history against the final state (`stored`: every value of this run found in
/// the database) for a fault injected at `fault_at` seconds.
pub fn check(ops: &[Op], stored: &BTreeSet<u64>, fault_at: Option<f64>) -> Verdict {
    let mut verdict = Verdict {
        ops: ops.len(),
        ..Verdict::default()
    };
    let sent: BTreeSet<u64> = ops.iter().map(|o| o.value).collect();
    let mut acked: Vec<&Op> = Vec::new();
    for op in ops {
        match &op.outcome {
            Outcome::Ok { .. } => acked.push(op),
            Outcome::Failed(_) => verdict.failed += 1,
            Outcome::Unknown(_) => verdict.unknown += 1,
        }
    }
    verdict.acked = acked.len();
    verdict.lost = acked
        .iter()
        .map(|o| o.value)
        .filter(|v| !stored.contains(v))
        .collect();
    verdict.invented = stored.difference(&sent).copied().collect();

    let seq = |o: &Op| match o.outcome {
        Outcome::Ok { committed: Some(c) } => c,
        _ => unreachable!("committed only"),
    };
    let committed: Vec<&Op> = acked
        .iter()
        .copied()
        .filter(|o| matches!(o.outcome, Outcome::Ok { committed: Some(_) }))
        .collect();
    let mut all_by_complete: Vec<&Op> = acked.clone();
    all_by_complete.sort_by(|a, b| a.complete.total_cmp(&b.complete));
    let acked = committed;
    // Real-time order: an op invoked after another completed must come later in the one
    // history. Sweep by invocation, keeping the completed write with the highest sequence.
    let mut by_complete: Vec<&Op> = acked.clone();
    by_complete.sort_by(|a, b| a.complete.total_cmp(&b.complete));
    let mut by_invoke: Vec<&Op> = acked.clone();
    by_invoke.sort_by(|a, b| a.invoke.total_cmp(&b.invoke));
    let mut highest: Option<&Op> = None;
    let mut next = 0;
    for op in by_invoke {
        while next < by_complete.len() && by_complete[next].complete < op.invoke {
            let candidate = by_complete[next];
            if highest.is_none_or(|h| seq(candidate).1 > seq(h).1) {
                highest = Some(candidate);
            }
            next += 1;
        }
        if let Some(h) = highest {
            let ((server, s), (h_server, h_s)) = (seq(op), seq(h));
            if s < h_s {
                verdict.two_writers.push(TwoWriters {
                    value: op.value,
                    server_id: server,
                    gtid_seq: s,
                    earlier_value: h.value,
                    earlier_server_id: h_server,
                    earlier_gtid_seq: h_s,
                });
            }
        }
    }
    // Two acknowledged writes with one sequence number: two histories.
    let mut seen: BTreeMap<u64, &Op> = BTreeMap::new();
    for op in &acked {
        let (server, s) = seq(op);
        if let Some(other) = seen.get(&s) {
            if seq(other).0 != server {
                verdict.two_writers.push(TwoWriters {
                    value: op.value,
                    server_id: server,
                    gtid_seq: s,
                    earlier_value: other.value,
                    earlier_server_id: seq(other).0,
                    earlier_gtid_seq: s,
                });
            }
        } else {
            seen.insert(s, op);
        }
    }
    verdict.two_writers.sort_by_key(|v| v.gtid_seq);

    // The longest stretch without an acknowledgement, from the fault on.
    verdict.unavailable = fault_at.and_then(|at| {
        let completions: Vec<f64> = all_by_complete
            .iter()
            .map(|o| o.complete)
            .filter(|c| *c > at)
            .collect();
        let mut previous = at;
        let mut longest: Option<f64> = None;
        for c in completions {
            longest = Some(longest.unwrap_or(0.0).max(c - previous));
            previous = c;
        }
        longest
    });
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(value: u64, invoke: f64, complete: f64, server_id: u32, gtid_seq: u64) -> Op {
        Op {
            value,
            invoke,
            complete,
            outcome: Outcome::Ok {
                committed: Some((server_id, gtid_seq)),
            },
        }
    }

    fn history() -> Vec<Op> {
        vec![
            ok(1, 0.0, 0.1, 2, 10),
            ok(2, 0.1, 0.2, 2, 11),
            Op {
                value: 3,
                invoke: 0.2,
                complete: 5.2,
                outcome: Outcome::Unknown("timeout".into()),
            },
            Op {
                value: 4,
                invoke: 0.3,
                complete: 0.4,
                outcome: Outcome::Failed("HTTP 503".into()),
            },
            ok(5, 2.0, 2.1, 3, 12),
            ok(6, 2.2, 2.3, 3, 13),
        ]
    }

    #[test]
    fn a_clean_history_passes() {
        let stored: BTreeSet<u64> = [1, 2, 3, 5, 6].into();
        let v = check(&history(), &stored, Some(0.25));
        assert!(v.passed(), "{v:?}");
        assert_eq!((v.acked, v.failed, v.unknown), (4, 1, 1));
        // The fault at 0.25 s; no acknowledgement until 2.1 s, then 2.3 s.
        assert!((v.unavailable.unwrap() - 1.85).abs() < 1e-9);
    }

    #[test]
    fn a_planted_lost_write_is_caught() {
        // Acknowledged value 5 is missing from the final state.
        let stored: BTreeSet<u64> = [1, 2, 3, 6].into();
        let v = check(&history(), &stored, None);
        assert_eq!(v.lost, vec![5]);
        assert!(!v.passed());
    }

    #[test]
    fn an_invented_row_is_caught() {
        let stored: BTreeSet<u64> = [1, 2, 5, 6, 99].into();
        let v = check(&history(), &stored, None);
        assert_eq!(v.invented, vec![99]);
        assert!(!v.passed());
    }

    #[test]
    fn a_stale_writer_after_a_takeover_is_caught() {
        // Server 2 acknowledges value 7 (sequence 12, from its own old history) although
        // server 3's write with sequence 13 had completed before 7 was sent.
        let mut ops = history();
        ops.push(ok(7, 2.4, 2.5, 2, 12));
        let stored: BTreeSet<u64> = [1, 2, 5, 6, 7].into();
        let v = check(&ops, &stored, None);
        assert_eq!(v.two_writer_windows(), 1, "{v:?}");
        assert!(v
            .two_writers
            .iter()
            .any(|w| w.value == 7 && w.earlier_value == 6));
        assert!(!v.passed());
    }

    #[test]
    fn concurrent_writes_in_either_order_are_fine() {
        // Overlapping operations may commit in any order.
        let ops = vec![ok(1, 0.0, 1.0, 2, 11), ok(2, 0.5, 0.6, 2, 10)];
        let v = check(&ops, &[1, 2].into(), None);
        assert!(v.passed(), "{v:?}");
    }
}
