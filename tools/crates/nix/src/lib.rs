//! Calling Nix from the tools, with the settings every rampart script uses.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The project's Nix settings (`scripts/nix.conf`), the one place they are written.
pub const NIX_CONF: &str = include_str!("../../../../scripts/nix.conf");

/// A `nix` command with the project's settings, run from the flake's directory.
pub fn command(flake_dir: &Path) -> Command {
    let mut cmd = Command::new("nix");
    cmd.env("NIX_CONFIG", NIX_CONF).current_dir(flake_dir);
    cmd
}

/// Why evaluating something with Nix failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NixError {
    #[error(
        "nix: cannot run `nix` ({0}); install Debian's nix-bin (the README's set-up commands do)"
    )]
    Spawn(std::io::Error),
    #[error("nix: evaluating {attribute} in {} failed:\n{stderr}", flake.display())]
    Eval {
        flake: PathBuf,
        attribute: String,
        stderr: String,
    },
    #[error("nix: {attribute} did not evaluate to the expected JSON: {source}")]
    Decode {
        attribute: String,
        source: serde_json::Error,
    },
}

/// `nix-instantiate --eval --strict --json -E <expression>`: pure Nix, no flake (e.g.
/// `import ./lib { }` from a test), with the project's settings.
pub fn instantiate_json<T: serde::de::DeserializeOwned>(expression: &str) -> Result<T, NixError> {
    let output = Command::new("nix-instantiate")
        .env("NIX_CONFIG", NIX_CONF)
        .args(["--eval", "--strict", "--json", "-E", expression])
        .output()
        .map_err(NixError::Spawn)?;
    if !output.status.success() {
        return Err(NixError::Eval {
            flake: PathBuf::from("-E"),
            attribute: expression.chars().take(80).collect(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    serde_json::from_slice(&output.stdout).map_err(|source| NixError::Decode {
        attribute: expression.chars().take(80).collect(),
        source,
    })
}

/// `nix eval --json <flake>#<attribute>` with optional extra arguments (e.g. `--apply`).
/// The value is decoded from stdout only; Nix's warnings go on to this process's stderr.
pub fn eval_json<T: serde::de::DeserializeOwned>(
    flake_dir: &Path,
    attribute: &str,
    extra: &[&str],
) -> Result<T, NixError> {
    let output = command(flake_dir)
        .args(["eval", "--json"])
        .arg(format!(".#{attribute}"))
        .args(extra)
        .output()
        .map_err(NixError::Spawn)?;
    if !output.status.success() {
        return Err(NixError::Eval {
            flake: flake_dir.to_path_buf(),
            attribute: attribute.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    // The result is stdout alone; what Nix said on stderr (warnings) is log, passed on.
    if !output.stderr.is_empty() {
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
    }
    serde_json::from_slice(&output.stdout).map_err(|source| NixError::Decode {
        attribute: attribute.to_string(),
        source,
    })
}
