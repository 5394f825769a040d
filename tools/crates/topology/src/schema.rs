//! The structural pass: unknown, missing and mistyped fields, with the same wording and
//! order as `lib/topology.nix` (see docs/topology.md).

use serde_json::Value;

enum Kind {
    Str,
    Int,
    Num,
    Arr(&'static Kind),
    Obj(&'static [Field]),
    /// An object whose keys are names and whose values all have one shape.
    Map(&'static Kind),
}

struct Field {
    name: &'static str,
    kind: Kind,
    required: bool,
}

const fn req(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: true,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: false,
    }
}

const STRINGS: Kind = Kind::Arr(&Kind::Str);

const HOST: &[Field] = &[
    req("name", Kind::Str),
    req("address", Kind::Str),
    req("roles", STRINGS),
];
const SERVICE: &[Field] = &[req("port", Kind::Int), opt("description", Kind::Str)];
const RULE: &[Field] = &[
    req("service", Kind::Str),
    req("to", STRINGS),
    req("from", STRINGS),
];
const RECEIVER: &[Field] = &[req("name", Kind::Str), req("webhookUrl", Kind::Str)];
const MONITORING: &[Field] = &[
    req("qpsThreshold", Kind::Num),
    req("alertReceiver", Kind::Obj(RECEIVER)),
];
const LAB: &[Field] = &[req("outside", Kind::Str), opt("admin", Kind::Str)];
const NETWORK: &[Field] = &[req("cidr", Kind::Str)];

const TOPOLOGY: &[Field] = &[
    req("version", Kind::Int),
    req("name", Kind::Str),
    req("domain", Kind::Str),
    req("network", Kind::Obj(NETWORK)),
    req("adminNetworks", STRINGS),
    req("publicNames", STRINGS),
    req("hosts", Kind::Arr(&Kind::Obj(HOST))),
    req("services", Kind::Map(&Kind::Obj(SERVICE))),
    req("policy", Kind::Arr(&Kind::Obj(RULE))),
    req("monitoring", Kind::Obj(MONITORING)),
    opt("lab", Kind::Obj(LAB)),
];

/// Every structural problem of a parsed JSON document, or none.
pub(super) fn check(document: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    check_value(document, &Kind::Obj(TOPOLOGY), "topology", &mut problems);
    problems
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Str => "string",
        Kind::Int => "integer",
        Kind::Num => "number",
        Kind::Arr(_) => "array",
        Kind::Obj(_) | Kind::Map(_) => "object",
    }
}

fn child(path: &str, key: &str) -> String {
    if path == "topology" {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn check_value(value: &Value, kind: &Kind, path: &str, problems: &mut Vec<String>) {
    let got = json_type(value);
    let fits = match kind {
        Kind::Num => got == "integer" || got == "number",
        _ => got == kind_name(kind),
    };
    if !fits {
        problems.push(format!("{path}: expected {}, got {got}", kind_name(kind)));
        return;
    }
    match (kind, value) {
        (Kind::Arr(item), Value::Array(items)) => {
            for (i, element) in items.iter().enumerate() {
                check_value(element, item, &format!("{path}[{i}]"), problems);
            }
        }
        (Kind::Obj(fields), Value::Object(map)) => {
            for field in fields.iter() {
                match map.get(field.name) {
                    Some(v) => check_value(v, &field.kind, &child(path, field.name), problems),
                    None if field.required => {
                        problems.push(format!("{path}: missing field \"{}\"", field.name))
                    }
                    None => {}
                }
            }
            let mut allowed: Vec<&str> = fields.iter().map(|f| f.name).collect();
            allowed.sort_unstable();
            let mut unknown: Vec<&String> = map
                .keys()
                .filter(|k| !allowed.contains(&k.as_str()))
                .collect();
            unknown.sort();
            for key in unknown {
                problems.push(format!(
                    "{path}: unknown field \"{key}\" (expected one of: {})",
                    allowed.join(", ")
                ));
            }
        }
        (Kind::Map(item), Value::Object(map)) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                check_value(&map[key], item, &child(path, key), problems);
            }
        }
        _ => {}
    }
}
