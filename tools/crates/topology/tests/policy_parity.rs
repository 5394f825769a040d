//! The reachability policy is implemented twice: in Rust (`Topology::services_on` and
//! `Topology::allows`, which `reach` and the lab check the firewall against) and in Nix
//! (`inboundRules`, which the nftables renderer turns into the firewall). Both must draw the
//! same conclusions: for every valid fixture topology and the shipped one, every host, every
//! service opened on it and every vantage, the same "allowed" or "denied".
//!
//! Only valid topologies are compared: the policy of an invalid one is not defined. Rust
//! cannot build a `Topology` from it, the Nix queries assume `validate` passed, and
//! `topology_parity.rs` already shows that both sides reject the same documents.

mod topology_fixtures;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;

use rampart_topology::{Selector, Source, Topology};
use serde_json::Value;

use topology_fixtures::{good, nix_eval, shipped};

/// `{ <host> = { "<service>:<port>" = { <vantage> = allowed; }; }; }`
type Verdicts = BTreeMap<String, BTreeMap<String, BTreeMap<String, bool>>>;

/// Every valid topology by name: the good fixtures and `shipped` (hosts/topology.json).
fn topologies() -> BTreeMap<String, Value> {
    let mut all = good();
    all.insert("shipped".into(), shipped());
    all
}

/// Where traffic is tried from: `internet`, every host and lab client, and for every
/// network the policy can name (network.cidr, adminNetworks, CIDR sources) its first and
/// last address and the addresses just outside it.
fn vantages(t: &Topology) -> Vec<String> {
    let mut networks = vec![t.network];
    networks.extend(&t.admin_networks);
    for rule in &t.policy {
        for selector in &rule.from {
            if let Selector::Network(net) = selector {
                networks.push(*net);
            }
        }
    }
    let mut addresses: Vec<Ipv4Addr> = t.hosts.iter().map(|h| h.address).collect();
    if let Some(lab) = &t.lab {
        addresses.push(lab.outside);
        addresses.extend(lab.admin);
    }
    for net in networks {
        let first = u32::from(net.address());
        let last = first | u32::MAX.checked_shr(u32::from(net.prefix())).unwrap_or(0);
        let edges = [
            first.checked_sub(1),
            Some(first),
            Some(last),
            last.checked_add(1),
        ];
        addresses.extend(edges.into_iter().flatten().map(Ipv4Addr::from));
    }
    addresses.sort();
    addresses.dedup();
    std::iter::once("internet".to_string())
        .chain(addresses.iter().map(Ipv4Addr::to_string))
        .collect()
}

fn source(vantage: &str) -> Source {
    match vantage {
        "internet" => Source::Internet,
        address => Source::Address(address.parse().expect("vantages are addresses")),
    }
}

fn rust_verdicts(t: &Topology, vantages: &[String]) -> Verdicts {
    let mut table = Verdicts::new();
    for host in &t.hosts {
        let services = table.entry(host.name.clone()).or_default();
        for (service, port) in t.services_on(host) {
            let verdicts = vantages
                .iter()
                .map(|v| (v.clone(), t.allows(source(v), host, service)))
                .collect();
            services.insert(format!("{service}:{port}"), verdicts);
        }
    }
    table
}

/// The Nix side's table for every topology, from one `nix-instantiate`.
fn nix_verdicts(vantages: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Verdicts> {
    let vantages = serde_json::to_string(vantages).unwrap();
    let value = nix_eval(&format!(
        "let\n  verdicts = import (repo + \"/lib/tests/support/policy-verdicts.nix\");\n  \
         shipped = builtins.fromJSON (builtins.readFile (repo + \"/hosts/topology.json\"));\n  \
         vantages = builtins.fromJSON {vantages:?};\nin\n  \
         builtins.mapAttrs (name: topo: verdicts topo vantages.${{name}}) (fixtures.good // {{inherit shipped;}})"
    ));
    serde_json::from_value(value).expect("the Nix side returns a verdict table")
}

/// The table as rows `<vantage> -> <host> <service>:<port>` with their verdict.
fn rows(table: &Verdicts) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for (host, services) in table {
        for (service, verdicts) in services {
            for (vantage, allowed) in verdicts {
                out.insert(format!("{vantage} -> {host} {service}"), *allowed);
            }
        }
    }
    out
}

#[test]
fn rust_and_nix_agree_on_who_may_reach_what() {
    let mut models = BTreeMap::new();
    let mut vantages_of = BTreeMap::new();
    for (name, document) in topologies() {
        let t = Topology::from_json_str(&document.to_string(), Path::new(&name))
            .unwrap_or_else(|e| panic!("{e}"));
        vantages_of.insert(name.clone(), vantages(&t));
        models.insert(name, t);
    }
    let from_nix = nix_verdicts(&vantages_of);
    assert_eq!(
        from_nix.keys().collect::<Vec<_>>(),
        models.keys().collect::<Vec<_>>(),
        "both sides see the same topologies"
    );

    let mut disagreements = Vec::new();
    let mut compared = 0;
    for (name, t) in &models {
        let rust = rows(&rust_verdicts(t, &vantages_of[name]));
        let nix = rows(&from_nix[name]);
        let every_row: BTreeSet<&String> = rust.keys().chain(nix.keys()).collect();
        for row in every_row {
            let (r, n) = (rust.get(row), nix.get(row));
            if r != n {
                disagreements.push(format!("{name}: {row}: rust {r:?}, nix {n:?}"));
            }
        }
        // A table that allows nothing, or everything, would agree too easily.
        let allowed = rust.values().filter(|a| **a).count();
        assert!(
            allowed > 0 && allowed < rust.len(),
            "{name}: {allowed} of {} verdicts allowed",
            rust.len()
        );
        compared += rust.len();
        println!(
            "{name}: {} hosts, {} vantages, {} verdicts ({allowed} allowed)",
            t.hosts.len(),
            vantages_of[name].len(),
            rust.len()
        );
    }
    assert!(
        disagreements.is_empty(),
        "{} of {compared} verdicts differ:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    println!("{compared} verdicts over {} topologies agree", models.len());
}
