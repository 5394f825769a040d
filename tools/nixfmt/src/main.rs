//! `rampart-nixfmt`: format Nix files in the alejandra style, or check that they are.
//!
//! It links the alejandra library crate (pinned in `Cargo.toml`) instead of shelling out to an
//! `alejandra` binary, so `scripts/nix-checks.sh` needs nothing but cargo. The flake's
//! `formatter` is nixpkgs' alejandra; both must agree on style, which is why the version is
//! pinned exactly.
//!
//! Exit codes (see [`exit`]): 0 all files formatted (or rewritten), 1 `--check` found files that
//! are not formatted, 2 a file could not be read, parsed or written. A bad file is reported and
//! the others are still processed; the exit code remembers the worst outcome.

use std::panic;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::Parser;

/// The exit codes, in one place.
mod exit {
    /// Every file is formatted (or was rewritten).
    pub const OK: u8 = 0;
    /// `--check` found at least one file that is not formatted.
    pub const UNFORMATTED: u8 = 1;
    /// A file could not be read, parsed or written (clap uses 2 for usage errors too).
    pub const ERROR: u8 = 2;
}

/// Format Nix files in place in the alejandra style, or check them with --check.
#[derive(Debug, Parser)]
#[command(name = "rampart-nixfmt", version, about)]
struct Args {
    /// Do not write anything; list the files that are not formatted and exit 1 if there are any.
    #[arg(long)]
    check: bool,

    /// The Nix files to format or check.
    #[arg(required = true, value_name = "FILES")]
    files: Vec<PathBuf>,
}

/// What happened to one file.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The file already has the alejandra layout.
    Formatted,
    /// The file differs from its formatted version; `hint` says where.
    Unformatted { hint: String },
}

fn main() -> ExitCode {
    let args = Args::parse();
    ExitCode::from(exec(&args))
}

/// Runs over every file and returns the exit code.
fn exec(args: &Args) -> u8 {
    let mut unformatted = 0usize;
    let mut failed = false;
    for path in &args.files {
        match process(path, args.check) {
            Ok(Outcome::Formatted) => {}
            Ok(Outcome::Unformatted { hint }) => {
                unformatted += 1;
                if args.check {
                    println!("{}: not formatted; {hint}", path.display());
                } else {
                    println!("{}: reformatted", path.display());
                }
            }
            Err(err) => {
                failed = true;
                eprintln!("rampart-nixfmt: {err:#}");
            }
        }
    }
    if failed {
        exit::ERROR
    } else if args.check && unformatted > 0 {
        println!(
            "rampart-nixfmt: {unformatted} file(s) not formatted; run `cargo run -p rampart-nixfmt -- FILES` (or `nix fmt`) to fix"
        );
        exit::UNFORMATTED
    } else {
        exit::OK
    }
}

/// Checks or rewrites one file.
fn process(path: &Path, check: bool) -> Result<Outcome> {
    let before = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let after = format_source(path, &before)?;
    if before == after {
        return Ok(Outcome::Formatted);
    }
    if !check {
        std::fs::write(path, &after)
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    Ok(Outcome::Unformatted {
        hint: difference_hint(&before, &after),
    })
}

/// Returns the alejandra layout of `source`, or an error naming `path` if it does not parse.
fn format_source(path: &Path, source: &str) -> Result<String> {
    let name = path.display().to_string();
    let input = source.to_owned();
    // alejandra unwraps internally; a panic on odd input must become exit 2 for this file,
    // not abort the whole run.
    let (status, after) = panic::catch_unwind(|| alejandra::format::in_memory(name, input))
        .map_err(|_| anyhow!("{}: the formatter panicked on this file", path.display()))?;
    match status {
        alejandra::format::Status::Changed(_) => Ok(after),
        alejandra::format::Status::Error(reason) => Err(anyhow!(
            "{}: not valid Nix (got: {reason}; expected a file that parses)",
            path.display()
        )),
    }
}

/// A one-line pointer to the first line that formatting would change.
fn difference_hint(before: &str, after: &str) -> String {
    let mut old = before.lines();
    let mut new = after.lines();
    let mut line = 1usize;
    loop {
        match (old.next(), new.next()) {
            (Some(a), Some(b)) if a == b => line += 1,
            (Some(a), Some(b)) => {
                return format!("line {line} is {:?}, expected {:?}", a.trim(), b.trim())
            }
            (Some(_), None) | (None, Some(_)) => {
                return format!("line {line}: the line count differs after formatting")
            }
            // Only the final newline differs.
            (None, None) => return format!("line {line}: expected a single trailing newline"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_source_is_unchanged() {
        let source = "{\n  a = 1;\n  b = [1 2];\n}\n";
        assert_eq!(format_source(Path::new("x.nix"), source).unwrap(), source);
    }

    #[test]
    fn unformatted_source_is_rewritten() {
        let after = format_source(Path::new("x.nix"), "{a=1;}").unwrap();
        assert_eq!(after, "{a = 1;}\n");
    }

    #[test]
    fn parse_error_names_the_file() {
        let err = format_source(Path::new("broken.nix"), "{ a = ; }").unwrap_err();
        assert!(
            err.to_string().starts_with("broken.nix: not valid Nix"),
            "{err}"
        );
    }

    #[test]
    fn hint_points_at_first_changed_line() {
        assert_eq!(
            difference_hint("x\n{a=1;}\n", "x\n{a = 1;}\n"),
            r#"line 2 is "{a=1;}", expected "{a = 1;}""#
        );
        assert_eq!(
            difference_hint("x", "x\n"),
            "line 2: expected a single trailing newline"
        );
    }

    #[test]
    fn check_flag_and_files_parse() {
        let args = Args::try_parse_from(["rampart-nixfmt", "--check", "a.nix", "b.nix"]).unwrap();
        assert!(args.check);
        assert_eq!(args.files.len(), 2);
        assert!(Args::try_parse_from(["rampart-nixfmt"]).is_err());
    }
}
