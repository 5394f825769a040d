//! The semantic pass over a structurally sound topology. Every message and its order is
//! part of the contract with `lib/topology.nix` (docs/topology.md).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::raw::RawTopology;
use super::Role;
use crate::net::{parse_ipv4, CidrError, Ipv4Net};

pub(super) fn check(t: &RawTopology) -> Vec<String> {
    let mut out = Vec::new();
    if t.version != 1 {
        out.push(format!(
            "version: unsupported version {} (expected 1)",
            t.version
        ));
    }
    if !is_dns_name(&t.domain) {
        out.push(format!("domain: \"{}\" is not a valid DNS name", t.domain));
    }
    let network = check_cidr(&t.network.cidr, "network.cidr", &mut out);
    let admin_networks: Vec<Ipv4Net> = t
        .admin_networks
        .iter()
        .enumerate()
        .filter_map(|(i, c)| check_cidr(c, &format!("adminNetworks[{i}]"), &mut out))
        .collect();
    if t.public_names.is_empty() {
        out.push("publicNames: at least one public name is required".into());
    }
    for (i, name) in t.public_names.iter().enumerate() {
        if !is_dns_name(name) {
            out.push(format!(
                "publicNames[{i}]: \"{name}\" is not a valid DNS name"
            ));
        }
    }

    let mut addresses: Vec<(Ipv4Addr, String)> = Vec::new();
    let mut roles_sound = true;
    for (i, host) in t.hosts.iter().enumerate() {
        let at = format!("hosts[{i}]");
        if !is_host_name(&host.name) {
            out.push(format!(
                "{at}.name: \"{}\" is not a valid host name (expected lowercase letters, \
                 digits and \"-\", starting with a letter, at most 63 characters)",
                host.name
            ));
        }
        if let Some(j) = t.hosts[..i].iter().position(|h| h.name == host.name) {
            out.push(format!(
                "{at}.name: duplicate host name \"{}\" (also hosts[{j}])",
                host.name
            ));
        }
        let at_address = format!("{at}.address");
        if let Some(a) = check_address(&host.address, &at_address, network, &addresses, &mut out) {
            addresses.push((a, format!("hosts[{i}]")));
        }
        for (k, role) in host.roles.iter().enumerate() {
            if Role::from_name(role).is_none() {
                roles_sound = false;
                out.push(format!(
                    "{at}.roles[{k}]: unknown role \"{role}\" (expected one of: {})",
                    Role::names().join(", ")
                ));
            }
        }
        if host.has_role(Role::DatabasePrimary) && host.has_role(Role::DatabaseReplica) {
            roles_sound = false;
            out.push(format!(
                "{at}.roles: \"databasePrimary\" and \"databaseReplica\" cannot be on the same host"
            ));
        }
    }

    // Counting roles means something only once every host's roles are sound: a misspelt
    // "databasePrimary" would otherwise also report a replica without a primary.
    let with_role = |role: Role| -> Vec<&str> {
        t.hosts
            .iter()
            .filter(|h| h.has_role(role))
            .map(|h| h.name.as_str())
            .collect()
    };
    for role in [Role::LoadBalancer, Role::Monitoring]
        .into_iter()
        .filter(|_| roles_sound)
    {
        let names = with_role(role);
        if names.len() != 1 {
            let found = if names.is_empty() {
                "0".to_string()
            } else {
                format!("{}: {}", names.len(), names.join(", "))
            };
            out.push(format!(
                "hosts: exactly one host must have role \"{}\" (found {found})",
                role.name()
            ));
        }
    }
    if roles_sound && with_role(Role::Web).is_empty() {
        out.push("hosts: no host has role \"web\"; the web tier needs at least one".into());
    }
    let primaries = with_role(Role::DatabasePrimary);
    if roles_sound && primaries.len() > 1 {
        out.push(format!(
            "hosts: more than one host has role \"databasePrimary\" ({})",
            primaries.join(", ")
        ));
    }
    let replicas = with_role(Role::DatabaseReplica);
    if roles_sound && replicas.len() > 1 {
        out.push(format!(
            "hosts: more than one host has role \"databaseReplica\" ({}); failover supports exactly one: MariaDB's semi-synchronous replication acknowledges a commit once any one replica has it, so with two no single replica provably holds every acknowledged write and none could take over safely",
            replicas.join(", ")
        ));
    }
    if roles_sound && primaries.is_empty() && !replicas.is_empty() {
        out.push(format!(
            "hosts: role \"databaseReplica\" on {} needs a host with role \"databasePrimary\"",
            replicas.join(", ")
        ));
    }

    // BTreeMap iteration is the sorted order the Nix side gets from attrNames.
    let mut ports: BTreeMap<i64, &str> = BTreeMap::new();
    for (name, service) in &t.services {
        if !is_service_name(name) {
            out.push(format!(
                "services.{name}: \"{name}\" is not a valid service name (expected letters \
                 and digits, starting with a lowercase letter)"
            ));
        }
        if !(1..=65535).contains(&service.port) {
            out.push(format!(
                "services.{name}.port: {} is out of range (expected 1..65535)",
                service.port
            ));
        } else if let Some(first) = ports.get(&service.port) {
            out.push(format!(
                "services.{name}.port: {} is already used by services.{first}",
                service.port
            ));
        } else {
            ports.insert(service.port, name);
        }
    }

    let host_names: Vec<&str> = t.hosts.iter().map(|h| h.name.as_str()).collect();
    for (i, rule) in t.policy.iter().enumerate() {
        let at = format!("policy[{i}]");
        if !t.services.contains_key(&rule.service) {
            let names: Vec<&str> = t.services.keys().map(String::as_str).collect();
            out.push(format!(
                "{at}.service: unknown service \"{}\" (expected one of: {})",
                rule.service,
                names.join(", ")
            ));
        }
        check_selectors(&rule.to, &format!("{at}.to"), false, &host_names, &mut out);
        check_selectors(
            &rule.from,
            &format!("{at}.from"),
            true,
            &host_names,
            &mut out,
        );
    }

    let threshold = &t.monitoring.qps_threshold;
    if threshold.as_f64().is_none_or(|v| v <= 0.0) {
        out.push(format!(
            "monitoring.qpsThreshold: {threshold} is not a positive number"
        ));
    }
    let receiver = &t.monitoring.alert_receiver;
    if receiver.name.is_empty() {
        out.push("monitoring.alertReceiver.name: must not be empty".into());
    }
    if !(receiver.webhook_url.starts_with("http://")
        || receiver.webhook_url.starts_with("https://"))
    {
        out.push(format!(
            "monitoring.alertReceiver.webhookUrl: \"{}\" must start with http:// or https://",
            receiver.webhook_url
        ));
    }

    if let Some(lab) = &t.lab {
        if let Some(outside) =
            check_address(&lab.outside, "lab.outside", network, &addresses, &mut out)
        {
            if admin_networks.iter().any(|n| n.contains(outside)) {
                out.push(format!(
                    "lab.outside: {outside} must not be in adminNetworks"
                ));
            }
            addresses.push((outside, "lab.outside".into()));
        }
        if let Some(admin) = &lab.admin {
            if let Some(admin) = check_address(admin, "lab.admin", network, &addresses, &mut out) {
                if !admin_networks.iter().any(|n| n.contains(admin)) {
                    out.push(format!("lab.admin: {admin} is not in adminNetworks"));
                }
            }
        }
    }
    out
}

/// Checks one address; returns it when it parses, whatever else is wrong with it.
fn check_address(
    text: &str,
    at: &str,
    network: Option<Ipv4Net>,
    seen: &[(Ipv4Addr, String)],
    out: &mut Vec<String>,
) -> Option<Ipv4Addr> {
    let Some(address) = parse_ipv4(text) else {
        out.push(format!("{at}: \"{text}\" is not an IPv4 address"));
        return None;
    };
    if let Some((_, owner)) = seen.iter().find(|(a, _)| *a == address) {
        out.push(format!("{at}: duplicate address \"{text}\" (also {owner})"));
    }
    if let Some(network) = network {
        if !network.contains(address) {
            out.push(format!(
                "{at}: {address} is outside network.cidr {}",
                network.network()
            ));
        }
    }
    Some(address)
}

fn check_cidr(text: &str, at: &str, out: &mut Vec<String>) -> Option<Ipv4Net> {
    match Ipv4Net::parse_strict(text) {
        Ok(net) => Some(net),
        Err(CidrError::Malformed) => {
            out.push(format!("{at}: \"{text}\" is not an IPv4 CIDR"));
            None
        }
        Err(CidrError::HostBitsSet(canonical)) => {
            out.push(format!(
                "{at}: \"{text}\" has host bits set (expected \"{canonical}\")"
            ));
            None
        }
    }
}

fn check_selectors(
    selectors: &[String],
    at: &str,
    is_source: bool,
    hosts: &[&str],
    out: &mut Vec<String>,
) {
    if selectors.is_empty() {
        let what = if is_source {
            "must name at least one source"
        } else {
            "must name at least one target"
        };
        out.push(format!("{at}: {what}"));
    }
    for selector in selectors {
        if selector == "*" {
            continue;
        }
        if let Some(role) = selector.strip_prefix("role:") {
            if Role::from_name(role).is_none() {
                out.push(format!(
                    "{at}: unknown role \"{role}\" (expected one of: {})",
                    Role::names().join(", ")
                ));
            }
            continue;
        }
        let network_like = selector == "internet"
            || selector == "admin"
            || selector.starts_with(|c: char| c.is_ascii_digit());
        if network_like && !is_source {
            out.push(format!(
                "{at}: \"{selector}\" is not allowed here (expected a host name, \"role:<role>\" or \"*\")"
            ));
        } else if selector.starts_with(|c: char| c.is_ascii_digit()) {
            check_cidr(selector, at, out);
        } else if !network_like && !hosts.contains(&selector.as_str()) {
            out.push(format!("{at}: unknown host \"{selector}\""));
        }
    }
}

fn is_label(label: &str, first_is_letter: bool) -> bool {
    let bytes = label.as_bytes();
    let inner_ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= 63
                && bytes.iter().all(inner_ok)
                && (first.is_ascii_lowercase() || (!first_is_letter && first.is_ascii_digit()))
                && *last != b'-'
        }
        _ => false,
    }
}

/// `[a-z]([a-z0-9-]{0,61}[a-z0-9])?`
pub(crate) fn is_host_name(name: &str) -> bool {
    is_label(name, true)
}

/// Dot-separated `[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?` labels, at most 253 characters.
pub(crate) fn is_dns_name(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(|label| is_label(label, false))
}

/// `[a-z][a-zA-Z0-9]*`: service names become Nix attribute names and metric labels.
fn is_service_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_patterns() {
        assert!(is_host_name("web1"));
        assert!(is_host_name("a"));
        assert!(!is_host_name("1web"));
        assert!(!is_host_name("web-"));
        assert!(!is_host_name("Web_1"));
        assert!(!is_host_name(&"a".repeat(64)));
        assert!(is_dns_name("rampart.internal"));
        assert!(is_dns_name("1.example.org"));
        assert!(!is_dns_name("rampart..internal"));
        assert!(!is_dns_name("www rampart.test"));
        assert!(!is_dns_name(""));
        assert!(is_service_name("backendHttps"));
        assert!(!is_service_name("my-db"));
        assert!(!is_service_name("Https"));
    }
}
