//! `infralab check`: every rendered file of a topology through its daemon's own check, on
//! the hosts' namespaces but with no daemon running.
//!
//! The lab's fabric is built for the topology (namespaces with the hosts' addresses, so
//! that `nginx -t` can bind and `nft` has a kernel table to load into), the files are
//! rendered with the chosen settings profile, certtool issues the certificates and the
//! secrets are written, exactly as `infralab up` does. Then, per host and role:
//!
//! | check | host |
//! |---|---|
//! | `nft -c`, loaded twice (the file replaces its table), one accept rule per policy rule | every host |
//! | etcd: every rendered `ETCD_*` variable is a flag `etcd --help` lists, every file it names exists | every host |
//! | `haproxy -c` without a warning; one server per web host in each backend (`web`, `web_writes`), in topology order | load balancer |
//! | `nginx -t` with the main configuration the lab runs | web hosts |
//! | `promtool check config`, `promtool check rules`, `amtool check-config`, `blackbox_exporter --config.check` | monitoring |
//!
//! and, with `--rule-tests DIR`, `promtool test rules` on each `DIR/*.test.yml` that reads
//! the profile's rule file (`rules.yml` for `shipped`, `rules-lab.yml` for `lab`). The same
//! check functions run before every daemon start in `infralab up` (rampart-lab's
//! `daemons` and `firewall` modules). The fabric is removed at the end, also on failure.
//!
//! Prints one line per check (the failing command's output under a failed one) and closes
//! with `infralab-check: N passed, M failed`. `--json` prints one document instead:
//!
//! ```json
//! { "type": "check-run", "topology": "four-web", "profile": "shipped",
//!   "checks": [ { "type": "check", "name": "…", "passed": true, "seconds": 0.1, "output": null } ],
//!   "summary": { "type": "summary", "passed": 20, "failed": 0 } }
//! ```
//!
//! Exit codes: 0 all passed, 1 a check failed, 2 the checks could not run (bad topology,
//! rendering failed, a tool missing, not root).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use rampart_lab::daemons::{self, rendered};
use rampart_lab::render::{HostDirs, Profile};
use rampart_lab::{self as lab, control, firewall, Lab};
use rampart_topology::{Host, Role, Topology};
use serde_json::json;

use crate::bringup;
use crate::lab_args::LabArgs;
use crate::paths::flake_dir;
use crate::progress::Progress;

/// The settings the files are rendered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    /// The renderers' defaults, as a deployment gets them (only directories move).
    Shipped,
    /// The lab's tuning: 2 s scrapes and evaluations, short `for:` and group waits.
    Lab,
}

impl ProfileArg {
    fn profile(self) -> Profile {
        match self {
            ProfileArg::Shipped => Profile::Shipped,
            ProfileArg::Lab => Profile::Lab,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ProfileArg::Shipped => "shipped",
            ProfileArg::Lab => "lab",
        }
    }

    /// The rule file the promtool unit tests of this profile name.
    fn rule_file(self) -> &'static str {
        match self {
            ProfileArg::Shipped => "rules.yml",
            ProfileArg::Lab => "rules-lab.yml",
        }
    }
}

/// `infralab check`'s arguments. Its state directory and prefix are its own by default,
/// so a check never replaces a running lab.
#[derive(Args, Clone, Debug)]
pub struct CheckArgs {
    /// The topology whose files are checked.
    #[arg(long, default_value = "hosts/topology.json")]
    pub topology: PathBuf,
    /// Where the rendered files, certificates and secrets go while checking.
    #[arg(long, default_value = ".lab-check")]
    pub state: PathBuf,
    /// Namespace prefix (default `rl-check-<topology name>.`).
    #[arg(long)]
    pub prefix: Option<String>,
    /// The settings profile to render with.
    #[arg(long, value_enum, default_value = "shipped")]
    pub profile: ProfileArg,
    /// A directory of promtool unit tests (`*.test.yml`) to run against the rendered rules.
    #[arg(long, value_name = "DIR")]
    pub rule_tests: Option<PathBuf>,
    /// Print one JSON document instead of lines (schema in `check.rs`).
    #[arg(long)]
    pub json: bool,
}

/// One check's outcome.
struct Outcome {
    name: String,
    passed: bool,
    seconds: f64,
    output: Option<String>,
}

/// The checks run so far.
#[derive(Default)]
struct Checks {
    outcomes: Vec<Outcome>,
}

impl Checks {
    fn run(&mut self, name: String, check: impl FnOnce() -> Result<()>) {
        let start = Instant::now();
        let result = check();
        self.outcomes.push(Outcome {
            name,
            passed: result.is_ok(),
            seconds: start.elapsed().as_secs_f64(),
            output: result.err().map(|e| format!("{e:#}")),
        });
    }
}

pub fn run(args: &CheckArgs) -> Result<ExitCode> {
    lab::require_root("infralab check")?;
    let topology = Topology::load(&args.topology)?;
    let lab_args = LabArgs {
        topology: args.topology.clone(),
        state: args.state.clone(),
        prefix: Some(
            args.prefix
                .clone()
                .unwrap_or_else(|| format!("rl-check-{}.", topology.name)),
        ),
    };
    let mut lab = lab_args.open()?;
    if lab.exists()? {
        control::teardown(&lab.names, &lab.state)?;
    }
    lab.create_fabric()?;
    let result = prepare_and_check(&lab, args);
    // The fabric goes whatever happened; a failure to remove it is worth saying.
    if let Err(e) = lab.down() {
        eprintln!("infralab check: removing the check's namespaces failed: {e}");
    }
    let checks = result?;
    let (passed, failed) =
        checks.outcomes.iter().fold(
            (0, 0),
            |(p, f), o| if o.passed { (p + 1, f) } else { (p, f + 1) },
        );
    if args.json {
        let records: Vec<_> = checks
            .outcomes
            .iter()
            .map(|o| {
                json!({ "type": "check", "name": o.name, "passed": o.passed,
                        "seconds": o.seconds, "output": o.output })
            })
            .collect();
        let doc = json!({
            "type": "check-run", "topology": lab.topology.name, "profile": args.profile.name(),
            "checks": records,
            "summary": { "type": "summary", "passed": passed, "failed": failed },
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("infralab-check: {passed} passed, {failed} failed");
    }
    Ok(rampart_cli::exit::from_findings(failed > 0))
}

/// Renders, issues and writes what the daemons read, then runs every check.
fn prepare_and_check(lab: &Lab, args: &CheckArgs) -> Result<Checks> {
    let progress = Progress::new();
    let flake = flake_dir()?;
    let topology_json = std::fs::read_to_string(&lab.record().topology)
        .with_context(|| format!("cannot read {}", lab.record().topology.display()))?;
    let profile = args.profile;
    let label = format!("{}, {}", lab.topology.name, profile.name());
    if !args.json {
        println!(
            "infralab check: {label} (namespaces {}*)",
            lab.names.prefix()
        );
    }
    progress.step("render configuration", || {
        let (_, count) = bringup::render_files(lab, &flake, &topology_json, profile.profile())?;
        anyhow::Ok(((), format!("{count} files")))
    })?;
    progress.step("certificates", || {
        let count = bringup::certificates(lab, &lab.pki())?;
        anyhow::Ok(((), format!("{count} files from certtool issue")))
    })?;
    bringup::write_secrets(lab)?;

    let mut checks = Checks::default();
    let t = &lab.topology;
    for host in &t.hosts {
        let dirs = lab.host_dirs(&host.name);
        let ns = lab.namespace(&host.name);
        checks.run(
            format!(
                "nft -c, loaded twice, one accept rule per policy rule ({label}, {})",
                host.name
            ),
            || firewall_rules(t, host, &dirs, &ns),
        );
        checks.run(
            format!(
                "etcd: every rendered variable a flag of etcd --help, its files present ({label}, {})",
                host.name
            ),
            || Ok(daemons::check_etcd(&dirs)?),
        );
        if host.has_role(Role::LoadBalancer) {
            let config = dirs.etc.join("haproxy/haproxy.cfg");
            checks.run(
                format!("haproxy -c, no warning ({label}, {})", host.name),
                || {
                    Ok(daemons::check_haproxy(
                        &dirs,
                        &rendered(&dirs, "haproxy/haproxy.cfg")?,
                    )?)
                },
            );
            checks.run(
                format!("haproxy backend servers = web hosts ({label})"),
                || backend_servers(t, &config),
            );
        }
        if host.has_role(Role::Web) {
            checks.run(format!("nginx -t ({label}, {})", host.name), || {
                daemons::check_nginx(&dirs, &host.name, &ns)
                    .map(drop)
                    .map_err(Into::into)
            });
        }
        if host.has_role(Role::Monitoring) {
            checks.run(format!("promtool check config ({label})"), || {
                Ok(daemons::check_prometheus(&dirs)?)
            });
            checks.run(format!("promtool check rules ({label})"), || {
                Ok(daemons::check_rules(&dirs)?)
            });
            checks.run(format!("amtool check-config ({label})"), || {
                Ok(daemons::check_alertmanager(&dirs)?)
            });
            checks.run(
                format!("blackbox_exporter --config.check ({label})"),
                || Ok(daemons::check_blackbox(&dirs)?),
            );
            if let Some(dir) = &args.rule_tests {
                rule_tests(lab, &dirs, dir, profile, &mut checks)?;
            }
        }
    }
    if !args.json {
        for o in &checks.outcomes {
            progress.line(
                if o.passed { "✔" } else { "✘" },
                &o.name,
                "",
                std::time::Duration::from_secs_f64(o.seconds),
            );
            for line in o.output.iter().flat_map(|out| out.lines()) {
                println!("      {line}");
            }
        }
    }
    Ok(checks)
}

/// The ruleset passes `nft -c`, loads twice (its own `flush` makes the second load replace
/// the first), and then holds exactly one accept rule per policy rule that opens
/// something on this host (sources permitting).
fn firewall_rules(topology: &Topology, host: &Host, dirs: &HostDirs, ns: &str) -> Result<()> {
    let ruleset = rendered(dirs, "nftables/ruleset.nft")?;
    firewall::check(ns, &ruleset)?;
    firewall::load(ns, &ruleset)?;
    firewall::load(ns, &ruleset)?;
    let loaded = firewall::policy_comments(&firewall::list_table(ns)?);
    let mut expected: Vec<String> = topology
        .rules_into(host)
        .map(|(index, rule)| format!("policy[{index}] {}", rule.service))
        .collect();
    expected.sort();
    anyhow::ensure!(
        loaded == expected,
        "policy rules loaded: {loaded:?}\npolicy rules expected: {expected:?}"
    );
    Ok(())
}

/// One `server` line per web host, named after it, in topology order, in each backend
/// (`web`, and `web_writes` for requests that may change something).
fn backend_servers(topology: &Topology, config: &Path) -> Result<()> {
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read {}", config.display()))?;
    let mut backends: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("backend"), Some(name)) => backends.push((name, Vec::new())),
            (Some("server"), Some(name)) => {
                if let Some((_, servers)) = backends.last_mut() {
                    servers.push(name);
                }
            }
            _ => {}
        }
    }
    let webs: Vec<&str> = topology
        .hosts_with_role(Role::Web)
        .map(|h| h.name.as_str())
        .collect();
    let names: Vec<&str> = backends.iter().map(|(name, _)| *name).collect();
    anyhow::ensure!(
        names == ["web", "web_writes"],
        "haproxy.cfg has backends {names:?} (expected web and web_writes)"
    );
    for (backend, servers) in &backends {
        anyhow::ensure!(
            *servers == webs,
            "haproxy.cfg's backend {backend} has servers {servers:?}, the topology's web hosts are {webs:?}"
        );
    }
    Ok(())
}

/// `promtool test rules` on every unit test in `dir` that reads this profile's rule file.
/// The tests name their rule file relative to themselves, so both go to one directory.
fn rule_tests(
    lab: &Lab,
    dirs: &HostDirs,
    dir: &Path,
    profile: ProfileArg,
    checks: &mut Checks,
) -> Result<()> {
    let work = lab.state.root().join("rule-tests");
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let rules = rendered(dirs, "prometheus/rules.yml")?;
    std::fs::copy(&rules, work.join(profile.rule_file()))
        .with_context(|| format!("cannot copy {}", rules.display()))?;
    let mut tests: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the rule tests in {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.yml"))
        .collect();
    tests.sort();
    let reads_profile = |text: &str| {
        let lab_rules = text.contains(ProfileArg::Lab.rule_file());
        lab_rules == (profile == ProfileArg::Lab)
    };
    let promtool = daemons::program("promtool", "prometheus")?;
    for test in tests {
        let text = std::fs::read_to_string(&test)
            .with_context(|| format!("cannot read {}", test.display()))?;
        if !reads_profile(&text) {
            continue;
        }
        let name = test
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let copy = work.join(&name);
        std::fs::write(&copy, &text).with_context(|| format!("cannot write {}", copy.display()))?;
        checks.run(format!("promtool test rules {name}"), || {
            lab::run(Command::new(&promtool).args(["test", "rules"]).arg(&copy))?;
            Ok(())
        });
    }
    Ok(())
}
