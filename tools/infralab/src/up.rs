//! `infralab up`, `down` and `status`.

use std::process::ExitCode;

use anyhow::Result;
use rampart_cli::table;
use rampart_lab::names::Names;
use rampart_lab::state::StateDir;
use rampart_lab::{self as lab, control, netns, process};

use crate::bringup;
use crate::lab_args::LabArgs;
use crate::progress::Progress;

pub fn up(args: &LabArgs, fabric_only: bool) -> Result<ExitCode> {
    lab::require_root("infralab up")?;
    let mut lab = args.open()?;
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
            Ok(rampart_cli::exit::from_findings(!healthy))
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
        _ => args.names(None)?,
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

/// `infralab status`. JSON output (`--json`) is one document:
///
/// ```json
/// { "type": "status", "prefix": "rl-rampart.", "state": "/…/.lab-state",
///   "nodes": [ { "type": "node", "name": "lb", "address": "10.42.0.10",
///                "namespace": "rl-rampart.lb", "present": true } ],
///   "processes": [ { "type": "process", "node": "lb", "name": "haproxy", "pid": 4242,
///                    "alive": true, "log": "/…/nodes/lb/log/haproxy.log" } ] }
/// ```
///
/// `nodes` is empty when there is no lab. New fields may be added.
pub fn status(args: &LabArgs, as_json: bool) -> Result<ExitCode> {
    let lab = args.open()?.with_saved_record()?;
    let record = lab.record();
    let exists = !record.namespaces.is_empty() || lab.exists()?;
    let present = netns::list()?;
    let nodes: Vec<(String, String, String, bool)> = lab
        .nodes
        .iter()
        .filter(|_| exists)
        .map(|n| {
            let ns = lab.namespace(&n.name);
            let here = present.contains(&ns);
            (n.name.clone(), n.address.to_string(), ns, here)
        })
        .collect();
    let processes: Vec<(&rampart_lab::state::ProcessRecord, bool)> = record
        .processes
        .iter()
        .map(|p| (p, process::is_alive(p)))
        .collect();
    let broken = nodes.iter().filter(|n| !n.3).count() + processes.iter().filter(|p| !p.1).count();
    if as_json {
        let doc = serde_json::json!({
            "type": "status",
            "prefix": lab.names.prefix(),
            "state": lab.state.root().display().to_string(),
            "nodes": nodes.iter().map(|(name, address, ns, here)| serde_json::json!({
                "type": "node", "name": name, "address": address, "namespace": ns, "present": here,
            })).collect::<Vec<_>>(),
            "processes": processes.iter().map(|(p, alive)| serde_json::json!({
                "type": "process", "node": p.node, "name": p.name, "pid": p.pid, "alive": alive,
                "log": p.log.display().to_string(),
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(rampart_cli::exit::from_findings(!exists || broken > 0));
    }
    if !exists {
        println!(
            "infralab: no lab {}* (state {})",
            lab.names.prefix(),
            lab.state.root().display()
        );
        return Ok(ExitCode::from(rampart_cli::exit::FINDINGS));
    }
    let ns_rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|(name, address, ns, here)| {
            let mark = if *here { "✔" } else { "✘ missing" };
            vec![name.clone(), address.clone(), ns.clone(), mark.to_string()]
        })
        .collect();
    print!(
        "{}",
        table::render(&["NODE", "ADDRESS", "NAMESPACE", "STATE"], &ns_rows)
    );
    if !processes.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = processes
            .iter()
            .map(|(p, alive)| {
                vec![
                    p.node.clone(),
                    p.name.clone(),
                    p.pid.to_string(),
                    if *alive { "✔ running" } else { "✘ gone" }.to_string(),
                    p.log.display().to_string(),
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(&["NODE", "PROCESS", "PID", "STATE", "LOG"], &rows)
        );
    }
    Ok(rampart_cli::exit::from_findings(broken > 0))
}
