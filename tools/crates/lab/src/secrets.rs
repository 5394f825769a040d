//! The lab's runtime secrets: random passwords written to every host's `secretsDir`
//! (docs/contracts.md, "Secrets"), and the substitution of their placeholders in rendered
//! SQL just before it is piped to `mariadb`, never to disk.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{io, LabError, Result};

/// The secret files of the contract, and the placeholder each one fills.
pub const SECRETS: [(&str, &str); 4] = [
    ("replication-password", "@REPLICATION_PASSWORD@"),
    ("app-db-password", "@APP_DB_PASSWORD@"),
    ("exporter-db-password", "@EXPORTER_DB_PASSWORD@"),
    // rampart-db's account (docs/failover.md): `infralab promote` logs in with it.
    ("failover-db-password", "@FAILOVER_DB_PASSWORD@"),
];

/// Fresh random values for every secret: 24 bytes from the kernel, hex-encoded (no
/// character needs quoting in SQL or a my.cnf).
pub fn generate() -> Result<BTreeMap<String, String>> {
    let mut urandom = std::fs::File::open("/dev/urandom").map_err(io("/dev/urandom"))?;
    let mut out = BTreeMap::new();
    for (name, _) in SECRETS {
        let mut bytes = [0u8; 24];
        urandom.read_exact(&mut bytes).map_err(io("/dev/urandom"))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        out.insert(name.to_string(), hex);
    }
    Ok(out)
}

/// Writes each secret to `dir/<name>` with mode 0600.
pub fn write(dir: &Path, secrets: &BTreeMap<String, String>) -> Result<()> {
    for (name, value) in secrets {
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

/// Reads the secrets back from a host's `secretsDir` (trailing newlines ignored).
pub fn read(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (name, _) in SECRETS {
        let path = dir.join(name);
        let value = std::fs::read_to_string(&path).map_err(io(&path))?;
        out.insert(name.to_string(), value.trim_end_matches('\n').to_string());
    }
    Ok(out)
}

/// Replaces every `@…@` placeholder of the contract with its secret. An unknown
/// placeholder left in the text is an error, so a renamed secret is never sent as text.
pub fn substitute(template: &str, secrets: &BTreeMap<String, String>) -> Result<String> {
    let mut text = template.to_string();
    for (name, placeholder) in SECRETS {
        if let Some(value) = secrets.get(name) {
            text = text.replace(placeholder, value);
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
        let known: Vec<&str> = SECRETS.iter().map(|(_, p)| *p).collect();
        return Err(LabError::Invalid(format!(
            "bootstrap SQL has the placeholder @{name}@ (expected one of: {}); add it to docs/contracts.md \"Secrets\" and to the lab",
            known.join(", ")
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_unknown_ones_refused() {
        let secrets = generate().unwrap();
        assert_eq!(secrets["app-db-password"].len(), 48);
        let sql = "'app'@'10.42.0.%' IDENTIFIED BY '@APP_DB_PASSWORD@'; -- user@host";
        let done = substitute(sql, &secrets).unwrap();
        assert!(done.contains(&secrets["app-db-password"]));
        let err = substitute("'@ROOT_PASSWORD@'", &secrets)
            .unwrap_err()
            .to_string();
        assert!(err.contains("@ROOT_PASSWORD@"), "{err}");
    }

    #[test]
    fn secrets_are_written_owner_only_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("rampart-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secrets = generate().unwrap();
        write(&dir, &secrets).unwrap();
        let mode = std::fs::metadata(dir.join("replication-password"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(read(&dir).unwrap(), secrets);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
