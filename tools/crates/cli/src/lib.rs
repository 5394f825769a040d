//! What every rampart binary shares at its edge: the exit codes ([`exit`]), the
//! plain-text tables of human output ([`table`]) and the deployment's runtime paths that
//! are their defaults ([`paths`]). Nothing here depends on the rest of
//! rampart, so the smallest tool can use it.

pub mod exit;
pub mod paths;
pub mod table;
