//! What every rampart binary shares at its edge: the exit codes ([`exit`]) and the
//! plain-text tables of human output ([`table`]). Nothing here depends on the rest of
//! rampart, so the smallest tool can use it.

pub mod exit;
pub mod table;
