//! Exit codes shared by every rampart tool.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | everything checked is as declared |
//! | 1 | the check ran and found problems (findings, mismatches, failed scenarios) |
//! | 2 | the check could not run: bad arguments, unreadable or invalid input, unusable trust anchor |
//!
//! 2 is also what clap uses for usage errors, so a typo and an unreadable file look alike
//! to scripts: both mean "nothing was checked".

use std::process::ExitCode;

/// Everything was as declared.
pub const OK: u8 = 0;
/// The tool ran and found problems.
pub const FINDINGS: u8 = 1;
/// The tool could not run.
pub const CANNOT_RUN: u8 = 2;

/// The process exit code for a run that found (or did not find) problems.
pub fn from_findings(found_problems: bool) -> ExitCode {
    ExitCode::from(if found_problems { FINDINGS } else { OK })
}
