//! `reach check` from inside the lab: the verdict of the tool users run, from every
//! vantage (`outside`, `admin` and each host), each in its own namespace.

use std::process::{Command, Output};
use std::time::Instant;

use anyhow::{Context, Result};
use rampart_lab::Lab;

use crate::paths::sibling;
use crate::progress::Progress;
use rampart_lab::state::PkiDirs;

/// The arguments of one `reach check` run from `node`.
pub fn check_args(lab: &Lab, pki: &PkiDirs, node: &str, only: &[&str], json: bool) -> Vec<String> {
    let mut args = vec![
        "check".to_string(),
        "--topology".into(),
        lab.record().topology.display().to_string(),
        "--from".into(),
        node.to_string(),
        "--ca".into(),
        pki.ca_cert().display().to_string(),
    ];
    if lab.topology.host(node).is_some() {
        let d = lab.host_dirs(node);
        args.extend([
            // What the host's firewall should be: the file the lab loaded with `nft -f`.
            "--ruleset".to_string(),
            d.etc.join("nftables/ruleset.nft").display().to_string(),
            "--pki-dir".to_string(),
            d.pki.display().to_string(),
            "--prom-textfile".into(),
            textfile(lab, node).display().to_string(),
        ]);
    }
    if !only.is_empty() {
        args.push("--only".into());
        args.push(only.join(","));
    }
    if json {
        args.push("--json".into());
    }
    args
}

/// Where reach run on topology host `node` writes its node-exporter textfile.
pub fn textfile(lab: &Lab, node: &str) -> std::path::PathBuf {
    lab.host_dirs(node).textfile.join("rampart-reach.prom")
}

/// Runs `reach` with `args` inside `node`'s namespace.
pub fn run_reach(lab: &Lab, node: &str, args: &[String]) -> Result<Output> {
    let reach = sibling("reach")?;
    Command::new("ip")
        .args(["netns", "exec", &lab.namespace(node)])
        .arg(&reach)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {} in {}", reach.display(), lab.namespace(node)))
}

/// `reach check` from every vantage at once, tables printed in vantage order; true when
/// all were as declared.
pub fn verdicts(lab: &Lab, progress: &Progress, pki: &PkiDirs) -> Result<bool> {
    let runs: Vec<(String, Result<Output>, std::time::Duration)> = std::thread::scope(|scope| {
        let jobs: Vec<_> = lab
            .nodes
            .iter()
            .map(|node| {
                scope.spawn(move || {
                    let start = Instant::now();
                    let out = run_reach(
                        lab,
                        &node.name,
                        &check_args(lab, pki, &node.name, &[], false),
                    );
                    (node.name.clone(), out, start.elapsed())
                })
            })
            .collect();
        jobs.into_iter()
            .map(|j| j.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut all_ok = true;
    for (node, out, took) in runs {
        let out = out?;
        let ok = out.status.success();
        all_ok &= ok;
        let code = out
            .status
            .code()
            .map_or("signal".to_string(), |c| c.to_string());
        progress.line(
            if ok { "✔" } else { "✘" },
            &format!("reach check --from {node}"),
            &format!("exit {code}"),
            took,
        );
        print_indented(&out.stdout);
        print_indented(&out.stderr);
    }
    Ok(all_ok)
}

fn print_indented(bytes: &[u8]) {
    for line in String::from_utf8_lossy(bytes).lines() {
        println!("    {line}");
    }
}
