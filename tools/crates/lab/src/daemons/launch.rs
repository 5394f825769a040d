//! Every daemon starts from `lib.daemons` (lib/daemons.nix), the attribute the NixOS units
//! are set from ([`Launch`], rendered as [`DAEMONS_FILE`]): its arguments, the lab's own
//! arguments (`labArgs`: what nixpkgs' modules pass on NixOS) and its environment come
//! from there, its main configuration from the rendered files. The lab adds only where
//! files live, under the host's directories; [`command`] refuses anything else.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{mysqld_exporter_cnf, MariadbPaths};
use crate::io;
use crate::process::Spec;
use crate::render::{HostDirs, DAEMONS_FILE};
use crate::{LabError, Result};

/// How one daemon starts: the host's entry of `lib.daemons` (lib/daemons.nix), without
/// the NixOS option values.
#[derive(Clone, Debug, serde::Deserialize, PartialEq, Eq)]
pub struct Launch {
    /// The NixOS unit that runs it.
    pub unit: String,
    /// Passed on NixOS and in the lab alike.
    pub args: Vec<String>,
    /// Passed in the lab only: on NixOS, nixpkgs' module passes their equivalent.
    #[serde(rename = "labArgs")]
    pub lab_args: Vec<String>,
    /// The rendered files it runs with.
    pub files: Vec<String>,
    pub environment: BTreeMap<String, String>,
    /// Set in the lab only: on NixOS, nixpkgs' module sets the same variables from its
    /// options (etcd's `ETCD_*`).
    #[serde(rename = "labEnvironment", default)]
    pub lab_environment: BTreeMap<String, String>,
    /// Variables whose value is where a rendered file lives (relative to the host's
    /// rendered files; a store path on NixOS).
    #[serde(rename = "fileEnvironment", default)]
    pub file_environment: BTreeMap<String, String>,
}

impl Launch {
    /// Every variable the lab sets: `environment`, then `labEnvironment`.
    pub fn lab_variables(&self) -> Vec<(String, String)> {
        self.environment
            .iter()
            .chain(&self.lab_environment)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl Launch {
    /// `fileEnvironment` with each file where the lab rendered it for the host.
    pub fn file_variables(&self, dirs: &HostDirs) -> Vec<(String, String)> {
        self.file_environment
            .iter()
            .map(|(k, file)| (k.clone(), dirs.etc.join(file).display().to_string()))
            .collect()
    }
}

/// Every daemon of a host, as rendered with its files.
pub fn launches(dirs: &HostDirs) -> Result<BTreeMap<String, Launch>> {
    let path = dirs.etc.join(DAEMONS_FILE);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    serde_json::from_str(&text).map_err(|e| {
        LabError::Invalid(format!(
            "{} is not the launch attribute lib.daemons renders ({e}); render again",
            path.display()
        ))
    })
}

/// Whether `arg` only says where a file lives: an absolute path, or `-x=/…`.
pub fn is_path(arg: &str) -> bool {
    arg.starts_with('/')
        || (arg.starts_with('-') && arg.split_once('=').is_some_and(|(_, v)| v.starts_with('/')))
}

/// The first argument of `placement` that says more than where a file lives: neither a
/// path nor a flag followed by one (`-c /…`).
pub fn not_a_path(placement: &[String]) -> Option<&str> {
    let mut args = placement.iter().peekable();
    while let Some(arg) = args.next() {
        if is_path(arg) {
            continue;
        }
        let flag_of_path =
            arg.starts_with('-') && args.peek().is_some_and(|next| next.starts_with('/'));
        if !flag_of_path {
            return Some(arg);
        }
        args.next();
    }
    None
}

/// The lab's command line for daemon `name` of a host: `placement` (where its files live,
/// nothing else), then its `labArgs` and `args` of `lib.daemons`, with its environment.
pub fn command(
    name: &str,
    host: &str,
    program: &str,
    dirs: &HostDirs,
    placement: Vec<String>,
) -> Result<Spec> {
    let mut all = launches(dirs)?;
    let launch = all.remove(name).ok_or_else(|| {
        LabError::Invalid(format!(
            "lib.daemons runs no {name} on {host} (it runs: {}); start only what its concerns call for",
            all.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let mut spec = from_launch(name, host, program, &launch, placement)?;
    for (key, value) in launch.file_variables(dirs) {
        spec = spec.env(&key, value);
    }
    Ok(spec)
}

/// [`command`] for a given launch attribute.
pub fn from_launch(
    name: &str,
    host: &str,
    program: &str,
    launch: &Launch,
    placement: Vec<String>,
) -> Result<Spec> {
    if let Some(arg) = not_a_path(&placement) {
        return Err(LabError::Invalid(format!(
            "{name} on {host}: the lab would pass {arg:?}, which says more than where a file lives; \
             everything else comes from lib/daemons.nix (args for both NixOS and the lab, labArgs for the lab only)"
        )));
    }
    let mut spec = Spec::new(name, host, program)
        .args(placement)
        .args(launch.lab_args.iter().cloned())
        .args(launch.args.iter().cloned());
    for (key, value) in launch.lab_variables() {
        spec = spec.env(&key, value);
    }
    Ok(spec)
}

/// Where each daemon's files live in the lab: the only arguments it adds to `lib.daemons`.
pub fn placement(name: &str, dirs: &HostDirs) -> Vec<String> {
    let path = |p: PathBuf| p.display().to_string();
    let etc = |relative: &str| path(dirs.etc.join(relative));
    match name {
        "nginx" => vec![
            "-p".into(),
            path(dirs.data.join("nginx")),
            "-c".into(),
            etc("nginx/nginx.conf"),
        ],
        // --defaults-file first: only the rendered file is read, never /etc/mysql.
        "mariadb" => {
            let paths = MariadbPaths::new(dirs);
            vec![
                format!("--defaults-file={}", paths.config.display()),
                format!("--datadir={}", paths.datadir.display()),
                format!("--tmpdir={}", paths.tmpdir.display()),
                format!("--socket={}", paths.socket.display()),
                format!("--pid-file={}", paths.pid.display()),
                format!(
                    "--log-error={}",
                    dirs.log.join("mariadb-error.log").display()
                ),
            ]
        }
        "haproxy" => vec!["-f".into(), etc("haproxy/haproxy.cfg")],
        "sshd" => vec!["-f".into(), etc("ssh/sshd_config")],
        "node-exporter" => vec![format!(
            "--collector.textfile.directory={}",
            dirs.textfile.display()
        )],
        "mysqld-exporter" => vec![format!(
            "--config.my-cnf={}",
            mysqld_exporter_cnf(dirs).display()
        )],
        "prometheus" => vec![
            format!("--config.file={}", etc("prometheus/prometheus.yml")),
            format!(
                "--storage.tsdb.path={}",
                dirs.data.join("prometheus").display()
            ),
            format!("--web.console.templates={}", etc("prometheus/consoles")),
        ],
        "blackbox-exporter" => vec![format!("--config.file={}", etc("blackbox/blackbox.yml"))],
        "alertmanager" => vec![
            format!("--config.file={}", etc("alertmanager/alertmanager.yml")),
            format!(
                "--storage.path={}",
                dirs.data.join("alertmanager").display()
            ),
        ],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render;
    use crate::state::StateDir;
    use rampart_topology::Topology;
    use std::path::Path;

    fn launch() -> Launch {
        Launch {
            unit: "alertmanager".into(),
            args: vec!["--cluster.listen-address=".into()],
            lab_args: vec!["--web.listen-address=10.42.0.10:9093".into()],
            files: vec!["alertmanager/alertmanager.yml".into()],
            environment: BTreeMap::from([("TZ".to_string(), "UTC".to_string())]),
            lab_environment: BTreeMap::from([("LANG".to_string(), "C".to_string())]),
            file_environment: BTreeMap::new(),
        }
    }

    #[test]
    fn the_lab_adds_where_files_live_and_nothing_else() {
        let spec = from_launch(
            "alertmanager",
            "lb",
            "/bin/am",
            &launch(),
            vec!["--config.file=/s/a.yml".into()],
        )
        .unwrap();
        assert_eq!(
            spec.args,
            [
                "--config.file=/s/a.yml",
                "--web.listen-address=10.42.0.10:9093",
                "--cluster.listen-address="
            ]
        );
        assert_eq!(
            spec.env,
            [
                ("TZ".to_string(), "UTC".to_string()),
                ("LANG".to_string(), "C".to_string())
            ]
        );
        // A flag of the lab's own is refused: it belongs in lib/daemons.nix.
        let err = from_launch(
            "alertmanager",
            "lb",
            "/bin/am",
            &launch(),
            vec!["--web.enable-lifecycle".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("\"--web.enable-lifecycle\""), "{err}");
        assert!(
            is_path("-f=/x")
                && is_path("/x")
                && !is_path("-D")
                && !is_path("--cluster.listen-address=")
        );
        let args = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(not_a_path(&args(&["-p", "/a", "-c", "/b"])), None);
        assert_eq!(not_a_path(&args(&["-c", "/b", "-D"])), Some("-D"));
        assert_eq!(not_a_path(&args(&["-D", "-c"])), Some("-D"));
    }

    /// The parity test's lab half (the NixOS half is checks/harness/parity.nix): for every
    /// host and daemon of the shipped topology, rendered by Nix as `infralab up` renders
    /// it, the command line is the attribute of `lib.daemons` plus paths under the host's
    /// state, its environment is the attribute's, and it runs on the rendered main
    /// configuration.
    #[test]
    fn lab_start_is_the_nix_attribute() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
        let topology = std::fs::read_to_string(repo.join("hosts/topology.json")).unwrap();
        let root = std::env::temp_dir().join(format!("rampart-parity-{}", std::process::id()));
        let state = StateDir::new(&root).unwrap();
        let hosts: Vec<String> = Topology::load(&repo.join("hosts/topology.json"))
            .unwrap()
            .hosts
            .iter()
            .map(|h| h.name.clone())
            .collect();
        let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let settings = render::lab_settings(&state, &names, &serde_json::json!({}));
        let rendered = render::render(&repo, &topology, &settings, None).unwrap();
        let mut checked = Vec::new();
        for host in &names {
            let dirs = HostDirs::new(&state, host);
            dirs.create().unwrap();
            render::write_files(&dirs, &rendered.files[*host]).unwrap();
            for (name, launch) in launches(&dirs).unwrap() {
                let placement = placement(&name, &dirs);
                let spec = command(&name, host, "/bin/daemon", &dirs, placement.clone()).unwrap();
                let mut want = placement.clone();
                want.extend(launch.lab_args.iter().cloned());
                want.extend(launch.args.iter().cloned());
                assert_eq!(spec.args, want, "{name} on {host}");
                let mut env = launch.lab_variables();
                env.extend(launch.file_variables(&dirs));
                assert_eq!(spec.env, env, "{name} on {host}");
                for (key, file) in launch.file_variables(&dirs) {
                    assert!(
                        Path::new(&file).is_file() && file.contains(&root.display().to_string()),
                        "{name} on {host}: {key}={file} is not a rendered file of the lab"
                    );
                }
                for arg in placement.iter().filter(|arg| is_path(arg)) {
                    assert!(
                        arg.contains(&root.display().to_string()),
                        "{name} on {host}: {arg} is outside the lab's state"
                    );
                }
                // The main configuration is the rendered one, named by a placement path.
                if let Some(main) = launch.files.first() {
                    let path = dirs.etc.join(main);
                    assert!(path.is_file(), "{name} on {host}: no rendered {main}");
                    let named = path.display().to_string();
                    assert!(
                        placement
                            .iter()
                            .any(|arg| arg == &named || arg.ends_with(&format!("={named}"))),
                        "{name} on {host}: the lab does not run {main}: {placement:?}"
                    );
                }
                checked.push(format!("{name}@{host}"));
            }
        }
        std::fs::remove_dir_all(&root).unwrap();
        // Every daemon of every host: 7 on lb, 9 on each web host (etcd everywhere, the
        // failover agent on each database host).
        assert_eq!(checked.len(), 25, "{checked:?}");
    }
}
