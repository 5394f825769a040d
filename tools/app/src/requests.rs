//! Client request ids on writes: `POST /visit?request=ID` stores `ID` with the visit.
//!
//! The id lets whoever sent a write find out afterwards whether it was applied, and how
//! often, when the answer was lost (a proxy or a backend died while it was in flight):
//! `SELECT COUNT(*) FROM visits WHERE request_id = ?` says 0 (never applied), 1 (applied
//! once) or more (replayed). The lab's zero-downtime scenarios check every POST this way.
//!
//! The application deliberately does **not** deduplicate by request id: a load balancer
//! or proxy that replayed a POST must show up as two visits with the same id, not be
//! hidden by the database. Writes that must be idempotent use `?seq=N` instead.

use std::fmt;

/// The most characters a request id may have (the column is `VARCHAR(64)`).
pub const MAX_LEN: usize = 64;

/// A client's request id: 1 to 64 ASCII letters, digits, `.`, `_` or `-` (safe in a URL,
/// a log line and a column without escaping).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// Checks `text`; the error says what a request id may hold.
    pub fn parse(text: &str) -> Result<RequestId, String> {
        let valid = !text.is_empty()
            && text.len() <= MAX_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(RequestId(text.to_owned()))
        } else {
            Err(format!(
                "request is {text:?}; expected 1 to {MAX_LEN} letters, digits, \".\", \"_\" or \"-\""
            ))
        }
    }

    /// The id as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The column and its index, as `CREATE TABLE visits` declares them.
pub(crate) const COLUMN_DEFINITION: &str =
    "request_id VARCHAR(64) NULL,\n    KEY request_id (request_id)";

/// Whether a `visits` table made by an older version lacks the column (1 when present).
pub(crate) const COLUMN_EXISTS: &str = "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'visits' AND column_name = 'request_id'";

/// Adds the column to such a table (the application's grant includes ALTER).
pub(crate) const ADD_COLUMN: &str = "ALTER TABLE visits ADD COLUMN IF NOT EXISTS request_id VARCHAR(64) NULL, ADD INDEX IF NOT EXISTS request_id (request_id)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_url_safe_words() {
        for good in [
            "a",
            "z1700000000000-3-17",
            "run.1_A-b",
            &"x".repeat(MAX_LEN),
        ] {
            assert_eq!(RequestId::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "a b", "a/b", "é", "a;DROP", &"x".repeat(MAX_LEN + 1)] {
            let error = RequestId::parse(bad).unwrap_err();
            assert!(error.starts_with("request is "), "{error}");
        }
    }
}
