//! What the alert rules read is what the lab serves: every rule evaluates without error,
//! and every metric name a rule's expression reads, and every name of the reach textfile
//! contract (docs/contracts.md), has series in Prometheus, scraped from Debian's real
//! exporters, HAProxy's built-in one, Prometheus itself and node exporter's textfile
//! collector reading what `reach` wrote.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use rampart_lab::monitor;

use super::{Ctx, Proof};

/// Names Prometheus makes up itself: present only while an alert is active.
const SYNTHETIC: [&str; 2] = ["ALERTS", "ALERTS_FOR_STATE"];

/// The `rampart_*` names in the "reach textfile metrics" section of docs/contracts.md.
fn contract_names(flake: &Path) -> Result<BTreeSet<String>> {
    let path = flake.join("docs/contracts.md");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("reach textfile metrics"))
        .with_context(|| {
            format!(
                "{} has no section \"## reach textfile metrics\"",
                path.display()
            )
        })?;
    Ok(section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            w.starts_with("rampart_") && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(str::to_string)
        .collect())
}

/// The metric families declared (`# TYPE name …`) in the reach textfile of every host.
fn textfile_families(ctx: &Ctx) -> Result<BTreeSet<String>> {
    let mut common: Option<BTreeSet<String>> = None;
    for host in &ctx.lab.topology.hosts {
        let path = ctx
            .lab
            .host_dirs(&host.name)
            .textfile
            .join("rampart-reach.prom");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read reach's textfile {}", path.display()))?;
        let families: BTreeSet<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
        common = Some(match common {
            None => families,
            Some(c) => c.intersection(&families).cloned().collect(),
        });
    }
    Ok(common.unwrap_or_default())
}

pub fn metrics(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let ns = ctx.lab.namespace(&ctx.monitor.name);
    let rules = monitor::rules(&ns, ctx.prometheus)?;
    ensure!(!rules.is_empty(), "Prometheus has no rules loaded");
    let failing: Vec<String> = rules
        .iter()
        .filter(|r| r.health == "err")
        .map(|r| format!("{}: {}", r.name, r.last_error))
        .collect();
    ensure!(
        failing.is_empty(),
        "rule evaluations failed:\n{}",
        failing.join("\n")
    );
    proof.note(format!("{} rules, none failing to evaluate", rules.len()));

    let served = monitor::metric_names(&ns, ctx.prometheus)?;
    // A textfile family with no series (e.g. `rampart_web_files` on a host without a web
    // root) reaches Prometheus as no name at all; reach still wrote its HELP/TYPE lines.
    let declared = textfile_families(ctx)?;
    let mut read: BTreeSet<String> = rules
        .iter()
        .flat_map(|r| monitor::promql_metric_names(&r.query))
        .filter(|n| !SYNTHETIC.contains(&n.as_str()))
        .collect();
    let missing: Vec<&String> = read.iter().filter(|n| !served.contains(*n)).collect();
    let (empty, missing): (Vec<&String>, Vec<&String>) =
        missing.into_iter().partition(|n| declared.contains(*n));
    if !empty.is_empty() {
        proof.note(format!(
            "written by reach without series on every host: {}",
            empty
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    ensure!(
        missing.is_empty(),
        "the rules read metrics no target serves: {}",
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    proof.note(format!(
        "{} metric names read by the rules: {} with series in Prometheus (of {} names there)",
        read.len(),
        read.len() - empty.len(),
        served.len()
    ));

    let contract = contract_names(&crate::paths::flake_dir()?)?;
    ensure!(
        !contract.is_empty(),
        "docs/contracts.md names no rampart_* metric"
    );
    let absent: Vec<&String> = contract
        .iter()
        .filter(|n| !served.contains(*n) && !declared.contains(*n))
        .collect();
    ensure!(
        absent.is_empty(),
        "docs/contracts.md names textfile metrics node exporter does not serve from reach's file: {}",
        absent.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    );
    proof.note(format!(
        "{} reach textfile metrics of docs/contracts.md, all served by node exporter",
        contract.len()
    ));
    read.extend(contract);
    proof.summary = format!(
        "{} rules evaluate; {} metric names read or promised, none missing",
        rules.len(),
        read.len()
    );
    Ok(())
}
