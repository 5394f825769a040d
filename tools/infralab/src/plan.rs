//! `infralab plan`: what the lab would build, straight from the topology.
//!
//! JSON output (`--json`) is one document:
//!
//! ```json
//! { "type": "plan", "topology": "hosts/topology.json", "name": "rampart",
//!   "hosts": [ { "type": "host", "name": "lb", "address": "10.42.0.10", "roles": ["loadBalancer"] } ],
//!   "vantages": [ { "type": "vantage", "name": "outside", "address": "10.42.0.200" } ],
//!   "reachability": [ { "type": "reachability", "host": "lb", "address": "10.42.0.10",
//!                       "service": "https", "port": 443, "allowed": { "outside": true, "web1": true } } ] }
//! ```
//!
//! `vantages` are the topology's hosts, then the lab's `outside` and `admin` clients when
//! the topology has them, else a generic `internet`. A host is not a vantage for its own
//! services (that traffic never leaves loopback). New fields may be added.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use rampart_cli::table;
use rampart_topology::{Source, Topology};
use serde_json::json;

/// One (host, service) pair and, per vantage, whether it may connect (None: itself).
struct Row<'t> {
    host: &'t rampart_topology::Host,
    service: &'t str,
    port: u16,
    verdicts: Vec<Option<bool>>,
}

struct Vantage {
    name: String,
    source: Source,
}

fn vantages(t: &Topology) -> Vec<Vantage> {
    let mut out: Vec<Vantage> = t
        .hosts
        .iter()
        .map(|h| Vantage {
            name: h.name.clone(),
            source: Source::Address(h.address),
        })
        .collect();
    match &t.lab {
        Some(lab) => {
            out.push(Vantage {
                name: "outside".into(),
                source: Source::Address(lab.outside),
            });
            if let Some(admin) = lab.admin {
                out.push(Vantage {
                    name: "admin".into(),
                    source: Source::Address(admin),
                });
            }
        }
        None => out.push(Vantage {
            name: "internet".into(),
            source: Source::Internet,
        }),
    }
    out
}

pub fn run(path: &Path, as_json: bool) -> Result<ExitCode> {
    let t = Topology::load(path)?;
    let vantages = vantages(&t);
    let mut matrix: Vec<Row> = Vec::new();
    for host in &t.hosts {
        for (service, port) in t.services_on(host) {
            let verdicts = vantages
                .iter()
                .map(|v| {
                    (v.source != Source::Address(host.address))
                        .then(|| t.allows(v.source, host, service))
                })
                .collect();
            matrix.push(Row {
                host,
                service,
                port,
                verdicts,
            });
        }
    }

    if as_json {
        let hosts: Vec<_> = t
            .hosts
            .iter()
            .map(|h| json!({"type": "host", "name": h.name, "address": h.address.to_string(), "roles": h.roles.iter().map(|r| r.name()).collect::<Vec<_>>()}))
            .collect();
        let vantage_json: Vec<_> = vantages
            .iter()
            .map(|v| match v.source {
                Source::Address(a) => {
                    json!({"type": "vantage", "name": v.name, "address": a.to_string()})
                }
                Source::Internet => json!({"type": "vantage", "name": v.name, "address": null}),
            })
            .collect();
        let reachability: Vec<_> = matrix
            .iter()
            .map(|row| {
                let allowed: BTreeMap<&str, bool> = vantages
                    .iter()
                    .zip(&row.verdicts)
                    .filter_map(|(v, verdict)| verdict.map(|ok| (v.name.as_str(), ok)))
                    .collect();
                json!({"type": "reachability", "host": row.host.name, "address": row.host.address.to_string(), "service": row.service, "port": row.port, "allowed": allowed})
            })
            .collect();
        let doc = json!({
            "type": "plan",
            "topology": path.display().to_string(),
            "name": t.name,
            "hosts": hosts,
            "vantages": vantage_json,
            "reachability": reachability,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }

    println!("Topology {} ({}): valid.\n", t.name, path.display());
    let host_rows: Vec<Vec<String>> = t
        .hosts
        .iter()
        .map(|h| {
            let roles: Vec<&str> = h.roles.iter().map(|r| r.name()).collect();
            vec![
                h.name.clone(),
                h.address.to_string(),
                t.fqdn(h),
                roles.join(", "),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(&["HOST", "ADDRESS", "NAME", "ROLES"], &host_rows)
    );
    println!();
    let mut header = vec!["TARGET", "PORT", "SERVICE"];
    header.extend(vantages.iter().map(|v| v.name.as_str()));
    let rows: Vec<Vec<String>> = matrix
        .iter()
        .map(|r| {
            let mut row = vec![
                r.host.name.clone(),
                r.port.to_string(),
                r.service.to_string(),
            ];
            row.extend(r.verdicts.iter().map(|v| match v {
                Some(true) => "✔".to_string(),
                Some(false) => "·".to_string(),
                None => "(self)".to_string(),
            }));
            row
        })
        .collect();
    print!("{}", table::render(&header, &rows));
    println!("\n✔ allowed  · dropped by the firewall  (self) loopback, never filtered");
    Ok(ExitCode::SUCCESS)
}
