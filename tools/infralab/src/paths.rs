//! Where infralab finds what it runs: the flake that renders the files and the rampart
//! tools built next to it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The repository whose flake renders the files: the nearest directory up from the
/// current one that has a flake.nix.
pub fn flake_dir() -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    cwd.ancestors()
        .find(|d| d.join("flake.nix").is_file())
        .map(Path::to_path_buf)
        .with_context(|| {
            format!(
                "no flake.nix in {} or above (expected a rampart checkout); run infralab from the repository",
                cwd.display()
            )
        })
}

/// A rampart tool built next to this binary (`certtool`, `reach`).
pub fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the infralab binary")?;
    let path = exe.with_file_name(name);
    if path.is_file() {
        return Ok(path);
    }
    bail!(
        "{name} not found next to infralab (expected {}); build the workspace: cargo build --release --workspace",
        path.display()
    )
}
