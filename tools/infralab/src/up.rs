//! `infralab up`, `down` and `status`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use rampart::lab::names::Names;
use rampart::lab::state::StateDir;
use rampart::lab::{self, control, netns, process, Lab};
use rampart::table;
use rampart::topology::Topology;

use crate::bringup;
use crate::progress::Progress;
use crate::LabArgs;

/// The names for a lab: `--prefix` if given, else the topology's default.
fn names(args: &LabArgs, topology: Option<&Topology>) -> Result<Names> {
    match (&args.prefix, topology) {
        (Some(prefix), _) => Ok(Names::with_prefix(prefix)?),
        (None, Some(t)) => Ok(Names::for_topology(t)),
        (None, None) => Ok(Names::for_topology(&Topology::load(&args.topology)?)),
    }
}

/// Loads the topology and sets up a lab value for it (nothing is created yet).
pub fn open(args: &LabArgs) -> Result<Lab> {
    let topology = Topology::load(&args.topology)?;
    let names = names(args, Some(&topology))?;
    let state = StateDir::new(&args.state)?;
    let path = std::fs::canonicalize(&args.topology)
        .with_context(|| format!("cannot resolve {}", args.topology.display()))?;
    Ok(Lab::new(topology, &path, state, names)?)
}

pub fn up(args: &LabArgs, fabric_only: bool) -> Result<ExitCode> {
    lab::require_root("infralab up")?;
    let mut lab = open(args)?;
    let progress = Progress::new();
    println!(
        "infralab: building lab {} (namespaces {}*, state {})",
        lab.topology.name,
        lab.names.prefix(),
        lab.state.root().display()
    );
    if lab.exists()? {
        progress.step("remove the previous lab", || {
            let gone = control::teardown(&lab.names, &lab.state)?;
            anyhow::Ok((
                (),
                format!(
                    "{} namespaces, {} processes",
                    gone.namespaces.len(),
                    gone.processes
                ),
            ))
        })?;
    }
    let built = progress.step("namespaces and links", || {
        lab.create_fabric()?;
        let nodes: Vec<String> = lab
            .nodes
            .iter()
            .map(|n| format!("{} {}", n.name, n.address))
            .collect();
        anyhow::Ok(((), nodes.join(", ")))
    });
    if let Err(e) = built {
        // Leave nothing half-made behind; the error says what went wrong.
        let _ = lab.down();
        return Err(e);
    }
    if fabric_only {
        println!(
            "infralab: fabric ready in {:.2} s",
            progress.elapsed().as_secs_f64()
        );
        return Ok(ExitCode::SUCCESS);
    }
    match bringup::run(&mut lab, &progress) {
        Ok(healthy) => {
            println!(
                "infralab: lab {} is up in {:.1} s; `infralab test` runs the scenarios, `infralab down` removes it",
                lab.topology.name,
                progress.elapsed().as_secs_f64()
            );
            Ok(rampart::exit::from_findings(!healthy))
        }
        Err(e) => {
            println!(
                "infralab: bring-up failed; the lab stays for inspection (`infralab status`, logs under {}); `infralab down` removes it",
                lab.state.root().display()
            );
            Err(e)
        }
    }
}

pub fn down(args: &LabArgs) -> Result<ExitCode> {
    lab::require_root("infralab down")?;
    let state = StateDir::new(&args.state)?;
    // The record names its own prefix; without one the topology gives the default.
    let names = match (&args.prefix, state.load()?) {
        (None, Some(record)) if !record.prefix.is_empty() => Names::with_prefix(&record.prefix)?,
        _ => names(args, None)?,
    };
    let started = std::time::Instant::now();
    let gone = control::teardown(&names, &state)?;
    println!(
        "infralab: removed {} namespaces and {} processes of {}* in {:.2} s",
        gone.namespaces.len(),
        gone.processes,
        names.prefix(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn status(args: &LabArgs) -> Result<ExitCode> {
    let lab = open(args)?.with_saved_record()?;
    let record = lab.record();
    if record.namespaces.is_empty() && !lab.exists()? {
        println!(
            "infralab: no lab {}* (state {})",
            lab.names.prefix(),
            lab.state.root().display()
        );
        return Ok(ExitCode::from(rampart::exit::FINDINGS));
    }
    let present = netns::list()?;
    let ns_rows: Vec<Vec<String>> = lab
        .nodes
        .iter()
        .map(|n| {
            let ns = lab.namespace(&n.name);
            let mark = if present.contains(&ns) {
                "✔"
            } else {
                "✘ missing"
            };
            vec![n.name.clone(), n.address.to_string(), ns, mark.to_string()]
        })
        .collect();
    print!(
        "{}",
        table::render(&["NODE", "ADDRESS", "NAMESPACE", "STATE"], &ns_rows)
    );
    let mut dead = ns_rows.iter().filter(|r| r[3] != "✔").count();
    if !record.processes.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = record
            .processes
            .iter()
            .map(|p| {
                let alive = process::is_alive(p);
                dead += usize::from(!alive);
                vec![
                    p.node.clone(),
                    p.name.clone(),
                    p.pid.to_string(),
                    if alive { "✔ running" } else { "✘ gone" }.to_string(),
                    p.log.display().to_string(),
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(&["NODE", "PROCESS", "PID", "STATE", "LOG"], &rows)
        );
    }
    Ok(rampart::exit::from_findings(dead > 0))
}
