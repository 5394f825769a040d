//! The lab's runtime secrets: random passwords written to each host's `secretsDir`
//! (docs/contracts.md, "Secrets"), exactly the files of that host's list in `lib.secrets`
//! (rendered as [`SECRETS_FILE`]), and the substitution of the placeholders the list names
//! in rendered SQL just before it is piped to `mariadb`, never to disk.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::render::{HostDirs, SECRETS_FILE};
use super::{io, LabError, Result};

/// A host's list: secret file name => what `lib.secrets.forHost` says of it.
pub type List = BTreeMap<String, Secret>;

/// One secret of a host's list.
#[derive(Clone, Debug, serde::Deserialize, PartialEq, Eq)]
pub struct Secret {
    /// What it holds, for people.
    pub holds: String,
    /// `@<placeholder>@` in the bootstrap SQL is replaced by its value.
    pub placeholder: String,
    /// Who reads it on the host.
    pub readers: Vec<Reader>,
}

/// A unit (through `LoadCredential=`) or a command (through `variable`) that reads a secret.
#[derive(Clone, Debug, serde::Deserialize, PartialEq, Eq)]
pub struct Reader {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub variable: Option<String>,
}

/// The host's list, as rendered with its files.
pub fn list(dirs: &HostDirs) -> Result<List> {
    let path = dirs.etc.join(SECRETS_FILE);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    serde_json::from_str(&text).map_err(|e| {
        LabError::Invalid(format!(
            "{} is not the secrets list lib.secrets renders ({e}); render again",
            path.display()
        ))
    })
}

/// The variables `command` finds its secret files in, with the files' names.
pub fn variables<'a>(list: &'a List, command: &str) -> Vec<(&'a str, &'a str)> {
    list.iter()
        .flat_map(|(name, secret)| {
            secret
                .readers
                .iter()
                .filter(move |r| r.name == command)
                .filter_map(move |r| r.variable.as_deref().map(|v| (v, name.as_str())))
        })
        .collect()
}

/// Fresh random values for `names`: 24 bytes from the kernel each, hex-encoded (no
/// character needs quoting in SQL or a my.cnf).
pub fn generate<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<BTreeMap<String, String>> {
    let mut urandom = std::fs::File::open("/dev/urandom").map_err(io("/dev/urandom"))?;
    let mut out = BTreeMap::new();
    for name in names {
        let mut bytes = [0u8; 24];
        urandom.read_exact(&mut bytes).map_err(io("/dev/urandom"))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        out.insert(name.to_string(), hex);
    }
    Ok(out)
}

/// Writes the secrets of `list` to `dir/<name>` with mode 0600, from `values`.
pub fn write(dir: &Path, values: &BTreeMap<String, String>, list: &List) -> Result<()> {
    for name in list.keys() {
        let value = values.get(name).ok_or_else(|| {
            LabError::Invalid(format!("no value was generated for the secret {name}"))
        })?;
        write_private(&dir.join(name), value)?;
    }
    Ok(())
}

/// Writes a file readable by its owner only (created that way, never world-readable).
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    file.write_all(text.as_bytes()).map_err(io(path))
}

/// Reads a host's secrets back from its `secretsDir`: the files of its list (trailing
/// newlines ignored).
pub fn read(dirs: &HostDirs) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for name in list(dirs)?.keys() {
        let path = dirs.secrets.join(name);
        let value = std::fs::read_to_string(&path).map_err(io(&path))?;
        out.insert(name.clone(), value.trim_end_matches('\n').to_string());
    }
    Ok(out)
}

/// Replaces every `@…@` placeholder of `list` with its secret. A placeholder left in the
/// text is an error, so a secret missing from the list is never sent as text.
pub fn substitute(
    template: &str,
    values: &BTreeMap<String, String>,
    list: &List,
) -> Result<String> {
    let mut text = template.to_string();
    for (name, secret) in list {
        if let Some(value) = values.get(name) {
            text = text.replace(&format!("@{}@", secret.placeholder), value);
        }
    }
    let leftover = text.match_indices('@').find_map(|(at, _)| {
        let rest = &text[at + 1..];
        let len = rest
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .unwrap_or(rest.len());
        (len > 0 && rest[len..].starts_with('@')).then(|| &rest[..len])
    });
    if let Some(name) = leftover {
        let known: Vec<String> = list
            .values()
            .map(|s| format!("@{}@", s.placeholder))
            .collect();
        return Err(LabError::Invalid(format!(
            "bootstrap SQL has the placeholder @{name}@, which no secret of this host's list fills (it has: {}); add its reader to lib/secrets.nix",
            known.join(", ")
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(placeholder: &str, reader: &str, variable: Option<&str>) -> Secret {
        Secret {
            holds: String::new(),
            placeholder: placeholder.into(),
            readers: vec![Reader {
                name: reader.into(),
                kind: if variable.is_some() {
                    "command"
                } else {
                    "unit"
                }
                .into(),
                variable: variable.map(Into::into),
            }],
        }
    }

    fn sample() -> List {
        BTreeMap::from([
            (
                "app-db-password".to_string(),
                secret("APP_DB_PASSWORD", "rampart-app", None),
            ),
            (
                "failover-db-password".to_string(),
                secret(
                    "FAILOVER_DB_PASSWORD",
                    "rampart-db",
                    Some("RAMPART_DB_PASSWORD_FILE"),
                ),
            ),
        ])
    }

    #[test]
    fn placeholders_of_the_list_are_filled_and_others_refused() {
        let list = sample();
        let values = generate(list.keys().map(String::as_str)).unwrap();
        assert_eq!(values["app-db-password"].len(), 48);
        let sql = "'app'@'10.42.0.%' IDENTIFIED BY '@APP_DB_PASSWORD@'; -- user@host";
        let done = substitute(sql, &values, &list).unwrap();
        assert!(done.contains(&values["app-db-password"]));
        // A placeholder whose secret the host's list lacks is never sent as text.
        let err = substitute("'@REPLICATION_PASSWORD@'", &values, &list)
            .unwrap_err()
            .to_string();
        assert!(err.contains("@REPLICATION_PASSWORD@"), "{err}");
    }

    #[test]
    fn commands_find_their_files_by_the_lists_variables() {
        assert_eq!(
            variables(&sample(), "rampart-db"),
            [("RAMPART_DB_PASSWORD_FILE", "failover-db-password")]
        );
    }

    #[test]
    fn exactly_the_listed_secrets_are_written_owner_only_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let root = std::env::temp_dir().join(format!("rampart-secrets-{}", std::process::id()));
        let state = crate::state::StateDir::new(&root).unwrap();
        let dirs = HostDirs::new(&state, "web1");
        dirs.create().unwrap();
        let wanted = sample();
        let text = r#"{"app-db-password":{"holds":"x","placeholder":"APP_DB_PASSWORD","readers":[{"kind":"unit","name":"rampart-app","why":"…"}]},
                       "failover-db-password":{"holds":"y","placeholder":"FAILOVER_DB_PASSWORD","readers":[{"kind":"command","name":"rampart-db","variable":"RAMPART_DB_PASSWORD_FILE","why":"…"}]}}"#;
        std::fs::create_dir_all(dirs.etc.join("rampart")).unwrap();
        std::fs::write(dirs.etc.join(SECRETS_FILE), text).unwrap();
        assert_eq!(
            list(&dirs).unwrap().keys().collect::<Vec<_>>(),
            wanted.keys().collect::<Vec<_>>()
        );
        let mut values = generate([
            "app-db-password",
            "failover-db-password",
            "replication-password",
        ])
        .unwrap();
        write(&dirs.secrets, &values, &wanted).unwrap();
        let mode = std::fs::metadata(dirs.secrets.join("app-db-password"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dirs.secrets.join("replication-password").exists());
        values.remove("replication-password");
        assert_eq!(read(&dirs).unwrap(), values);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
