//! The rendered configuration, asked from Nix exactly as the NixOS modules get it.
//!
//! One `nix eval --json .#lib --apply '…'` returns every host's files from `lib.render`,
//! plus two files of the lab's own from the same evaluation: `rampart/secrets.json` (the
//! host's list of `lib.secrets`: which secret files it needs, who reads them) and
//! `rampart/daemons.json` (`lib.daemons`: how each daemon starts, the attribute the NixOS
//! units are set from), and the renderers' default settings (`lib.settings`, for the few
//! values the lab needs too). The topology
//! goes into the expression as JSON text (so evaluation stays pure: no path outside the
//! flake is read) and the settings are a function of the host name, which puts every
//! directory of a host under `<state>/nodes/<host>/` and shortens the monitoring
//! intervals to 2 s so that alerts arrive within seconds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::state::StateDir;
use super::{io, LabError, Result};
use rampart_nix as nix;

/// `{ <host> = { "<relative path>" = "<text>"; }; }`, as `lib.render` returns it.
pub type Files = BTreeMap<String, BTreeMap<String, String>>;

/// What the lab asks Nix for.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Rendered {
    /// Every host's files.
    pub files: Files,
    /// `lib.settings`: the renderers' defaults.
    pub settings: serde_json::Value,
}

/// A host's list of `lib.secrets`, under its `etc` directory.
pub const SECRETS_FILE: &str = "rampart/secrets.json";
/// A host's `lib.daemons` (without the NixOS option values), under its `etc` directory.
pub const DAEMONS_FILE: &str = "rampart/daemons.json";

/// Directories of one host, as the lab passes them in `settings`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostDirs {
    /// `<state>/nodes/<host>`.
    pub root: PathBuf,
    pub etc: PathBuf,
    pub pki: PathBuf,
    pub secrets: PathBuf,
    pub run: PathBuf,
    pub data: PathBuf,
    pub log: PathBuf,
    /// node exporter's textfile collector directory (reach writes its metrics there).
    pub textfile: PathBuf,
    /// The static site nginx serves (a copy of the repository's site/), web hosts only.
    pub site: PathBuf,
    /// The site's manifest (NAR hash and each file's SHA-256), written when it is copied.
    pub site_manifest: PathBuf,
}

impl HostDirs {
    pub fn new(state: &StateDir, host: &str) -> HostDirs {
        let root = state.node(host);
        HostDirs {
            etc: root.join("etc"),
            pki: root.join("pki"),
            secrets: root.join("secrets"),
            run: root.join("run"),
            data: root.join("data"),
            log: root.join("log"),
            textfile: root.join("data/textfile"),
            site: root.join("site"),
            site_manifest: root.join("etc/site.manifest"),
            root,
        }
    }

    /// Creates every directory (keys and secrets readable by root only).
    pub fn create(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for dir in [
            &self.etc,
            &self.pki,
            &self.secrets,
            &self.run,
            &self.data,
            &self.log,
            &self.textfile,
        ] {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        for private in [&self.pki, &self.secrets] {
            std::fs::set_permissions(private, std::fs::Permissions::from_mode(0o700))
                .map_err(io(private))?;
        }
        Ok(())
    }
}

/// A string as a Nix string literal.
pub fn nix_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What each host's settings must say so that every file a daemon reads or writes is
/// under `<state>/nodes/<host>/`: its PKI, secrets, run and state directories, and the
/// static site's copy.
pub fn dir_settings(state: &StateDir, host: &str) -> Value {
    let dirs = HostDirs::new(state, host);
    let path = |p: &Path| Value::String(p.display().to_string());
    json!({
        "pkiDir": path(&dirs.pki),
        "secretsDir": path(&dirs.secrets),
        "runDir": path(&dirs.run),
        "stateDir": path(&dirs.data),
        // nginx's workers run as root in the lab (NixOS: the unprivileged `nginx`): they
        // serve the site copied into the state directory, which may sit where no other user
        // may enter — a checkout under /root on a fresh machine, where Debian's www-data got
        // 403 for every file (clean root, 2026-12-04). The access log among the host's logs.
        "nginx": {
            "user": "root",
            "accessLog": path(&dirs.log.join("nginx-access.log")),
            "site": { "root": path(&dirs.site) },
        },
    })
}

/// How much of the lab's tuning the rendered files get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// The renderers' defaults, as a deployment gets them; only the directories move.
    Shipped,
    /// Seconds, not minutes, from a symptom to the webhook: the lab profile of
    /// docs/contracts.md: 2 s scrapes and evaluations, every `for:` capped at 6 s, a 20 s
    /// latency window, notifications sent at once.
    Lab,
}

/// The settings of every host: each host's directories under `<state>/nodes/<host>/`, the
/// profile's tunables, then `overrides` merged over them (recursively: a caller changes
/// one tunable without restating the rest).
pub fn settings(state: &StateDir, hosts: &[&str], profile: Profile, overrides: &Value) -> Value {
    let mut all = serde_json::Map::new();
    for host in hosts {
        let mut settings = dir_settings(state, host);
        if profile == Profile::Lab {
            merge(
                &mut settings,
                &json!({
                    // reach runs every 10 s in the lab (infralab's timer), and one run
                    // took up to 22 s under the matrix's load beside a second lab on two
                    // cores (measured; at 30 s, web1's textfile went stale in the clean
                    // root's matrix): 45 s and the 6 s `for` fire only for a run of over
                    // 41 s, and a stopped timer still pages within the matrix's 75 s.
                    // MariadbHighQPS at a rate one client reaches easily on this machine.
                    "prometheus": { "scrapeInterval": "2s", "evaluationInterval": "2s", "maxFor": "6s", "probeSlowWindow": "20s", "probeSlowSeconds": 0.25, "reachStaleAfter": "45s", "databaseQpsThreshold": 200 },
                    "alertmanager": { "groupWait": "1s", "groupInterval": "5s" },
                }),
            );
        }
        merge(&mut settings, overrides);
        all.insert(host.to_string(), settings);
    }
    Value::Object(all)
}

/// [`settings`] with the lab profile: what `infralab up` renders.
pub fn lab_settings(state: &StateDir, hosts: &[&str], overrides: &Value) -> Value {
    settings(state, hosts, Profile::Lab, overrides)
}

/// Merges `over` into `base`: objects key by key, anything else replaced.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                merge(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// The `--apply` expression on `lib`: `lib.render` with the topology and the per-host
/// settings given as JSON text, each host's [`SECRETS_FILE`] and [`DAEMONS_FILE`] among its
/// files, plus `lib.settings`. With `max_connections`, HAProxy's
/// `maxConnections` is at most that (the renderers' default when it is lower).
pub fn apply_expression(
    topology_json: &str,
    settings: &Value,
    max_connections: Option<u64>,
) -> String {
    let cap = match max_connections {
        None => String::new(),
        Some(cap) => format!(
            " // {{ haproxy = (s.haproxy or {{ }}) // {{ maxConnections = \
               let d = lib.settings.haproxy.maxConnections; in if d < {cap} then d else {cap}; }}; }}"
        ),
    };
    format!(
        "lib: let topology = builtins.fromJSON {topology}; \
           settings = name: let s = (builtins.fromJSON {settings}).${{name}}; in s{cap}; \
           files = lib.render {{ inherit topology settings; }}; \
           own = host: {{ \
             \"{SECRETS_FILE}\" = builtins.toJSON (lib.secrets.forHost {{ inherit topology host; settings = settings host.name; }}); \
             \"{DAEMONS_FILE}\" = builtins.toJSON (builtins.mapAttrs (_: d: removeAttrs d [\"nixos\"]) \
               (lib.daemons {{ inherit topology host; settings = settings host.name; }})); }}; \
         in {{ settings = lib.settings; \
           files = builtins.mapAttrs (name: f: f // own (lib.topology.hostByName topology name)) files; }}",
        topology = nix_string(topology_json),
        settings = nix_string(&settings.to_string()),
    )
}

/// Evaluates the flake in `flake_dir` and returns every host's files.
pub fn render(
    flake_dir: &Path,
    topology_json: &str,
    settings: &Value,
    max_connections: Option<u64>,
) -> Result<Rendered> {
    let expression = apply_expression(topology_json, settings, max_connections);
    nix::eval_json(flake_dir, "lib", &["--apply", &expression])
        .map_err(|e| LabError::Invalid(e.to_string()))
}

/// Writes one host's files under its `etc` directory; returns how many.
pub fn write_files(dirs: &HostDirs, files: &BTreeMap<String, String>) -> Result<usize> {
    for (relative, text) in files {
        if relative.starts_with('/') || relative.split('/').any(|part| part == "..") {
            return Err(LabError::Invalid(format!(
                "lib.render returned the file path {relative:?} (expected a relative path without \"..\"); fix the renderer"
            )));
        }
        let path = dirs.etc.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix_strings_escape_quotes_backslashes_and_interpolation() {
        assert_eq!(nix_string(r#"a"b\c${d}$e"#), r#""a\"b\\c\${d}$e""#);
        assert_eq!(nix_string("x\ny"), r#""x\ny""#);
    }

    #[test]
    fn every_directory_is_under_the_state_dir_and_overrides_merge_deeply() {
        let state = StateDir::new(Path::new("/s")).unwrap();
        let overrides =
            json!({"haproxy": {"maxConnections": 4000}, "prometheus": {"scrapeInterval": "1s"}});
        let settings = lab_settings(&state, &["web1"], &overrides);
        let web1 = &settings["web1"];
        assert_eq!(web1["pkiDir"], "/s/nodes/web1/pki");
        assert_eq!(web1["haproxy"]["maxConnections"], 4000);
        assert_eq!(web1["prometheus"]["scrapeInterval"], "1s");
        assert_eq!(web1["prometheus"]["evaluationInterval"], "2s");
        let e = apply_expression("{}", &settings, Some(9500));
        assert!(e.contains("if d < 9500 then d else 9500"), "{e}");
        assert!(
            e.starts_with("lib: let topology = builtins.fromJSON"),
            "{e}"
        );
        assert!(e.contains("rampart/secrets.json"), "{e}");
        assert!(e.contains("(builtins.fromJSON \"{\\\"web1\\\":"), "{e}");
    }
}
