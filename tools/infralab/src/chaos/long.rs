//! `infralab chaos --runs N --seed S`: the long, randomized fault suite and its table.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Result;
use rampart_cli::table;

use super::{run, Fault, Shape, FAULTS};
use crate::lab_args::LabArgs;
use crate::scenarios::ctx::Ctx;
use crate::scenarios::failover::{base_value, UNAVAILABLE_TARGET};

/// splitmix64: the same seed draws the same faults in the same order.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Per fault kind: runs, acknowledged writes, lost, two-writer windows, unavailability.
#[derive(Default)]
struct Tally {
    runs: usize,
    errors: usize,
    acked: usize,
    lost: usize,
    windows: usize,
    unavailable: Vec<f64>,
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

/// The fault kinds named, in [`FAULTS`] order; an unknown name is an error listing them.
fn fault_kinds(only: &[String]) -> Result<Vec<Fault>> {
    for name in only {
        if !FAULTS.iter().any(|f| f.name() == name) {
            let known: Vec<&str> = FAULTS.iter().map(|f| f.name()).collect();
            anyhow::bail!(
                "infralab chaos: no fault kind `{name}`; the kinds are {}",
                known.join(", ")
            );
        }
    }
    Ok(FAULTS
        .into_iter()
        .filter(|f| only.is_empty() || only.iter().any(|n| n == f.name()))
        .collect())
}

fn seconds(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| format!("{s:.2} s"))
}

/// `only`: the fault kinds to draw from, by name (empty: all of [`FAULTS`]).
pub fn chaos(
    args: &LabArgs,
    runs: u32,
    seed: u64,
    only: &[String],
    json: bool,
) -> Result<ExitCode> {
    let kinds = fault_kinds(only)?;
    rampart_lab::require_root("infralab chaos")?;
    let mut ctx = Ctx::open(args)?;
    let mut draw = Draw(seed);
    let mut tallies: BTreeMap<Fault, Tally> = BTreeMap::new();
    let mut records = Vec::new();
    for i in 0..runs {
        let fault = kinds[usize::try_from(draw.next() % kinds.len() as u64).unwrap_or(0)];
        let base = base_value() + u64::from(i) * 100_000_000;
        let tally = tallies.entry(fault).or_default();
        tally.runs += 1;
        match run(&mut ctx, fault, Shape::default(), base) {
            Ok(report) => {
                let v = &report.verdict;
                tally.acked += v.acked;
                tally.lost += v.lost.len();
                tally.windows += v.two_writer_windows();
                if let (true, Some(s)) = (fault.loses_primary(), v.unavailable) {
                    tally.unavailable.push(s);
                }
                if !json {
                    println!(
                        "run {:>3}/{runs}  {:<31} {} → {}  {}  ({:.0} s)",
                        i + 1,
                        fault.name(),
                        report.primary_before,
                        report.primary_after,
                        v.summary(),
                        report.seconds
                    );
                }
                records.push(serde_json::json!({
                    "type": "chaosRun", "run": i + 1, "fault": fault.name(),
                    "primaryBefore": report.primary_before, "primaryAfter": report.primary_after,
                    "ops": v.ops, "acked": v.acked, "failed": v.failed, "unknown": v.unknown,
                    "lost": v.lost, "invented": v.invented, "twoWriterWindows": v.two_writer_windows(),
                    "unavailableSeconds": v.unavailable, "seconds": report.seconds, "error": null,
                }));
            }
            Err(e) => {
                tally.errors += 1;
                if !json {
                    println!("run {:>3}/{runs}  {:<31} ✘ {e:#}", i + 1, fault.name());
                }
                // The next run starts from a healed, converged cluster, or not at all.
                let recovered = super::heal(&ctx)
                    .and_then(|()| super::converge(&ctx, std::time::Duration::from_secs(120)))
                    .and_then(|()| {
                        ctx.lab = ctx.lab.reloaded()?;
                        Ok(())
                    });
                if let Err(e) = recovered {
                    println!(
                        "the cluster did not recover after run {}: {e:#}; stopping",
                        i + 1
                    );
                    records.push(serde_json::json!({
                        "type": "chaosRun", "run": i + 1, "fault": fault.name(), "error": format!("{e:#}"),
                    }));
                    break;
                }
                records.push(serde_json::json!({
                    "type": "chaosRun", "run": i + 1, "fault": fault.name(), "error": format!("{e:#}"),
                }));
            }
        }
    }
    let mut total = Tally::default();
    let mut rows = Vec::new();
    for (fault, t) in &tallies {
        rows.push(vec![
            fault.name().to_string(),
            t.runs.to_string(),
            t.errors.to_string(),
            t.acked.to_string(),
            t.lost.to_string(),
            t.windows.to_string(),
            seconds(median(&t.unavailable)),
            seconds(t.unavailable.iter().copied().reduce(f64::max)),
        ]);
        total.runs += t.runs;
        total.errors += t.errors;
        total.acked += t.acked;
        total.lost += t.lost;
        total.windows += t.windows;
        total.unavailable.extend(&t.unavailable);
    }
    let (med, max) = (
        median(&total.unavailable),
        total.unavailable.iter().copied().reduce(f64::max),
    );
    rows.push(vec![
        "all".into(),
        total.runs.to_string(),
        total.errors.to_string(),
        total.acked.to_string(),
        total.lost.to_string(),
        total.windows.to_string(),
        seconds(med),
        seconds(max),
    ]);
    let failed = total.lost > 0
        || total.windows > 0
        || total.errors > 0
        || max.is_some_and(|m| m > UNAVAILABLE_TARGET);
    if json {
        let doc = serde_json::json!({
            "type": "chaos", "seed": seed, "runs": records,
            "summary": { "type": "chaosSummary", "runs": total.runs, "errors": total.errors,
                "acked": total.acked, "lost": total.lost, "twoWriterWindows": total.windows,
                "unavailableMedianSeconds": med, "unavailableMaxSeconds": max },
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("\nseed {seed}; unavailability: writes after a primary loss, from the fault to the first acknowledged write");
        print!(
            "{}",
            table::render(
                &[
                    "FAULT",
                    "RUNS",
                    "ERRORS",
                    "ACKED",
                    "LOST",
                    "TWO-WRITER WINDOWS",
                    "UNAVAIL. MEDIAN",
                    "UNAVAIL. MAX"
                ],
                &rows
            )
        );
        println!(
            "infralab-chaos: {} passed, {} failed",
            total.runs - total.errors,
            total.errors
        );
    }
    Ok(rampart_cli::exit::from_findings(failed))
}
