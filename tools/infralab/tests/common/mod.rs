//! Running `infralab` as a user does, from the repository root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn infralab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_infralab"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}
