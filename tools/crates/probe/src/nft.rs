//! nftables rulesets as the kernel holds them: the live one of this namespace, and a
//! rendered file loaded into a scratch namespace so that both come out of the same `nft`
//! in the same normal form (sets merged into ranges, `{ x }` written `x`, …) and can be
//! compared rule by rule.
//!
//! Each ruleset is read twice: `nft -j list ruleset` for the structure that is compared,
//! and `nft -a list ruleset` for the text of each rule (by handle) that reports show.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// One rule: where it is, what it does, and how nft prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub family: String,
    pub table: String,
    pub chain: String,
    /// The rule's expressions and comment, as canonical JSON: what is compared.
    pub body: String,
    /// `nft list ruleset`'s line for it (without the handle).
    pub text: String,
    pub expr: Value,
}

/// One chain, with the parts of its declaration that change what it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub family: String,
    pub table: String,
    pub name: String,
    /// `type filter hook input priority 0; policy drop` for a base chain, empty otherwise.
    pub declaration: String,
    pub hook: Option<String>,
    pub policy: Option<String>,
}

/// A ruleset: tables, chains in order, rules in order, and every other object (sets,
/// maps, counters, …) as canonical JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub tables: Vec<(String, String)>,
    pub chains: Vec<Chain>,
    pub rules: Vec<Rule>,
    /// (family, table, kind and name) → canonical JSON of named sets, maps and objects.
    pub objects: BTreeMap<(String, String, String), String>,
}

/// Why a ruleset could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {problem}")]
pub struct NftError {
    pub what: String,
    pub problem: String,
}

fn run(what: &str, command: &mut Command) -> Result<String, NftError> {
    let out = command.output().map_err(|e| NftError {
        what: what.to_string(),
        problem: format!("cannot run {:?} ({e})", command.get_program()),
    })?;
    if !out.status.success() {
        return Err(NftError {
            what: what.to_string(),
            problem: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    String::from_utf8(out.stdout).map_err(|e| NftError {
        what: what.to_string(),
        problem: e.to_string(),
    })
}

/// The live ruleset of this network namespace (`nft` needs CAP_NET_ADMIN).
pub fn live() -> Result<Ruleset, NftError> {
    let json = run(
        "nft -j list ruleset",
        Command::new("nft").args(["-j", "list", "ruleset"]),
    )?;
    let text = run(
        "nft -a list ruleset",
        Command::new("nft").args(["-a", "list", "ruleset"]),
    )?;
    parse(&json, &text).map_err(|problem| NftError {
        what: "nft -j list ruleset".into(),
        problem,
    })
}

/// `file` as the kernel would hold it: loaded with `nft -f` into a fresh, empty network
/// namespace (`unshare --net`, needs CAP_SYS_ADMIN) and listed there.
pub fn rendered(file: &Path) -> Result<Ruleset, NftError> {
    let what = format!("the rendered ruleset {}", file.display());
    let list = |format: &str| {
        run(
            &what,
            Command::new("unshare")
                .args(["--net", "--", "/bin/sh", "-ec"])
                .arg(format!("nft -f \"$0\"; exec nft {format} list ruleset"))
                .arg(file),
        )
    };
    let json = list("-j")?;
    let text = list("-a")?;
    parse(&json, &text).map_err(|problem| NftError { what, problem })
}

/// `nft -a list ruleset` text: (family, table, handle) → the line without its handle.
fn lines_by_handle(text: &str) -> BTreeMap<(String, String, u64), String> {
    let mut out = BTreeMap::new();
    let mut table: Option<(String, String)> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("table ") {
            let mut words = rest.split_whitespace();
            if let (Some(family), Some(name)) = (words.next(), words.next()) {
                table = Some((family.to_string(), name.to_string()));
            }
            continue;
        }
        let (Some((family, name)), Some((body, handle))) =
            (&table, trimmed.rsplit_once(" # handle "))
        else {
            continue;
        };
        if let Ok(handle) = handle.trim().parse::<u64>() {
            out.insert(
                (family.clone(), name.clone(), handle),
                body.trim().to_string(),
            );
        }
    }
    out
}

fn field(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Parses `nft -j list ruleset` (with the `-a` text for rule lines).
pub fn parse(json: &str, text: &str) -> Result<Ruleset, String> {
    let doc: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let items = doc["nftables"].as_array().ok_or("no \"nftables\" array")?;
    let lines = lines_by_handle(text);
    let mut set = Ruleset::default();
    for item in items {
        let Some((kind, v)) = item.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let (family, table) = (field(v, "family"), field(v, "table"));
        match kind.as_str() {
            "metainfo" => {}
            "table" => set.tables.push((family, field(v, "name"))),
            "chain" => {
                let hook = v.get("hook").and_then(Value::as_str).map(str::to_string);
                let policy = v.get("policy").and_then(Value::as_str).map(str::to_string);
                let declaration = match &hook {
                    Some(h) => format!(
                        "type {} hook {h} priority {}; policy {}",
                        field(v, "type"),
                        field(v, "prio"),
                        policy.as_deref().unwrap_or("accept")
                    ),
                    None => String::new(),
                };
                set.chains.push(Chain {
                    family,
                    table,
                    name: field(v, "name"),
                    declaration,
                    hook,
                    policy,
                });
            }
            "rule" => {
                let handle = v["handle"].as_u64().unwrap_or_default();
                let body = serde_json::json!({ "expr": v["expr"], "comment": v["comment"] });
                let text = lines
                    .get(&(family.clone(), table.clone(), handle))
                    .cloned()
                    .unwrap_or_else(|| v["expr"].to_string());
                set.rules.push(Rule {
                    chain: field(v, "chain"),
                    body: body.to_string(),
                    text,
                    expr: v["expr"].clone(),
                    family,
                    table,
                });
            }
            other => {
                // Named sets, maps, counters, quotas, …: compared whole, handle aside.
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    o.remove("handle");
                }
                set.objects.insert(
                    (family, table, format!("{other} {}", field(&v, "name"))),
                    v.to_string(),
                );
            }
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
      {"table": {"family": "inet", "name": "rampart", "handle": 2}},
      {"chain": {"family": "inet", "table": "rampart", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
      {"rule": {"family": "inet", "table": "rampart", "chain": "input", "handle": 4, "comment": "loopback", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"accept": null}]}},
      {"set": {"family": "inet", "table": "rampart", "name": "admins", "handle": 9, "type": "ipv4_addr"}}]}"#;
    const TEXT: &str = "table inet rampart { # handle 2\n\tchain input { # handle 1\n\t\ttype filter hook input priority filter; policy drop;\n\t\tiifname \"lo\" accept comment \"loopback\" # handle 4\n\t}\n}\n";

    #[test]
    fn rules_carry_their_text_and_objects_lose_their_handles() {
        let set = parse(JSON, TEXT).unwrap();
        assert_eq!(set.tables, [("inet".to_string(), "rampart".to_string())]);
        assert_eq!(
            set.chains[0].declaration,
            "type filter hook input priority 0; policy drop"
        );
        assert_eq!(
            set.rules[0].text,
            "iifname \"lo\" accept comment \"loopback\""
        );
        assert_eq!(set.rules[0].chain, "input");
        let (key, value) = set.objects.iter().next().unwrap();
        assert_eq!(key.2, "set admins");
        assert!(!value.contains("handle"), "{value}");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse("not json", "").is_err());
        assert!(parse("{}", "").is_err());
    }
}
