//! MariaDB GTID positions (`domain-server-seq,…`) and the comparisons failover needs.
//!
//! A MariaDB GTID is `<domain id>-<server id>-<sequence number>`; a *position* such as
//! `@@gtid_binlog_pos` holds the last GTID of each replication domain. Under
//! `gtid_strict_mode` (which rampart's MariaDB settings enable) sequence numbers only grow
//! within a domain, whichever server wrote them, so "has host A applied everything host B
//! has?" is a per-domain comparison of sequence numbers. Two positions with the same
//! sequence number in a domain but different server ids mean the histories diverged.

use std::collections::BTreeMap;
use std::fmt;

/// One GTID: the last transaction of a replication domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

/// A GTID position: at most one GTID per domain, kept sorted by domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GtidPos(BTreeMap<u32, Gtid>);

/// A GTID position text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gtid: {text:?} is not a GTID position (expected comma-separated domain-server-seq, e.g. \"0-1-42\")")]
pub struct GtidParseError {
    pub text: String,
}

impl GtidPos {
    /// Parses `@@gtid_*_pos` text; the empty string is the empty position.
    pub fn parse(text: &str) -> Result<GtidPos, GtidParseError> {
        let err = || GtidParseError {
            text: text.to_string(),
        };
        let mut pos = BTreeMap::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let mut parts = item.split('-');
            let (Some(d), Some(s), Some(q), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(err());
            };
            let gtid = Gtid {
                domain: d.parse().map_err(|_| err())?,
                server: s.parse().map_err(|_| err())?,
                seq: q.parse().map_err(|_| err())?,
            };
            // A position lists each domain once; a repeat means this is not a position.
            if pos.insert(gtid.domain, gtid).is_some() {
                return Err(err());
            }
        }
        Ok(GtidPos(pos))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, domain: u32) -> Option<Gtid> {
        self.0.get(&domain).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = Gtid> + '_ {
        self.0.values().copied()
    }

    /// The GTIDs of `other` this position has not reached: per domain, where `other`'s
    /// sequence number is higher (or the domain is missing here).
    pub fn missing(&self, other: &GtidPos) -> Vec<Gtid> {
        other
            .iter()
            .filter(|theirs| {
                self.get(theirs.domain)
                    .is_none_or(|ours| ours.seq < theirs.seq)
            })
            .collect()
    }

    /// Whether this position has reached everything `other` has.
    pub fn includes(&self, other: &GtidPos) -> bool {
        self.missing(other).is_empty()
    }

    /// Per domain, the newer of the two GTIDs: everything either position has reached.
    pub fn union(&self, other: &GtidPos) -> GtidPos {
        let mut out = self.0.clone();
        for theirs in other.iter() {
            out.entry(theirs.domain)
                .and_modify(|ours| {
                    if theirs.seq > ours.seq {
                        *ours = theirs;
                    }
                })
                .or_insert(theirs);
        }
        GtidPos(out)
    }

    /// This position's GTIDs written by a server other than `primary_server` beyond what
    /// the primary applied through replication (`primary_applied`, its `gtid_slave_pos`):
    /// transactions the primary never received, although their sequence numbers may be
    /// lower than its own latest (it went on writing after a failover).
    pub fn unreceived(&self, primary_server: u32, primary_applied: &GtidPos) -> Vec<Gtid> {
        self.iter()
            .filter(|ours| ours.server != primary_server)
            .filter(|ours| {
                primary_applied
                    .get(ours.domain)
                    .is_none_or(|applied| applied.seq < ours.seq)
            })
            .collect()
    }

    /// GTIDs that prove this history and `other` went apart: the same sequence number in
    /// a domain written by different servers, each paired with the other side's GTID.
    pub fn diverged(&self, other: &GtidPos) -> Vec<(Gtid, Gtid)> {
        self.iter()
            .filter_map(|ours| {
                let theirs = other.get(ours.domain)?;
                (theirs.seq == ours.seq && theirs.server != ours.server).then_some((ours, theirs))
            })
            .collect()
    }
}

impl fmt::Display for GtidPos {
    /// The MariaDB text form (`0-1-42,1-2-7`); the empty position is the empty string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, gtid) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{gtid}")?;
        }
        Ok(())
    }
}

/// Writes a list of GTIDs for messages: `0-1-42, 1-2-7`, or `nothing` when empty.
pub fn list(gtids: &[Gtid]) -> String {
    if gtids.is_empty() {
        return "nothing".to_string();
    }
    gtids
        .iter()
        .map(Gtid::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(text: &str) -> GtidPos {
        GtidPos::parse(text).unwrap()
    }

    #[test]
    fn parses_and_prints_mariadb_positions() {
        assert_eq!(pos("").to_string(), "");
        assert_eq!(pos("1-2-7, 0-1-42").to_string(), "0-1-42,1-2-7");
        assert!(pos("").is_empty());
    }

    #[test]
    fn rejects_text_that_is_not_a_position() {
        for bad in ["0-1", "0-1-2-3", "a-1-2", "0-1-x", "0-1-2,0-2-3", "-1-2"] {
            let err = GtidPos::parse(bad).unwrap_err();
            assert_eq!(err.text, bad);
            assert!(err.to_string().starts_with("gtid: "), "{err}");
        }
    }

    #[test]
    fn missing_compares_sequence_numbers_per_domain() {
        let replica = pos("0-1-90");
        let primary = pos("0-1-100,1-1-3");
        assert_eq!(list(&replica.missing(&primary)), "0-1-100, 1-1-3");
        assert!(!replica.includes(&primary));
        assert!(primary.includes(&replica));
        // Strict mode: a later sequence number written by another server still counts.
        assert!(pos("0-2-101").includes(&pos("0-1-100")));
        assert_eq!(list(&[]), "nothing");
    }

    #[test]
    fn union_keeps_the_newest_gtid_of_each_domain() {
        assert_eq!(
            pos("0-1-90,2-1-1").union(&pos("0-1-100,1-1-3")).to_string(),
            "0-1-100,1-1-3,2-1-1"
        );
    }

    #[test]
    fn unreceived_finds_a_tail_the_new_primary_never_got() {
        // web1 (server 2) wrote 0-2-317 as it crashed; web2 (server 3) had applied up to
        // 0-2-316 and wrote 0-3-317.. after its promotion.
        let old_primary = pos("0-2-317");
        let applied_by_new = pos("0-2-316");
        assert_eq!(list(&old_primary.unreceived(3, &applied_by_new)), "0-2-317");
        assert!(pos("0-2-316").unreceived(3, &applied_by_new).is_empty());
        // What came from the new primary itself is checked by sequence numbers instead.
        assert!(pos("0-3-400").unreceived(3, &applied_by_new).is_empty());
        assert_eq!(list(&pos("1-2-5").unreceived(3, &applied_by_new)), "1-2-5");
    }

    #[test]
    fn diverged_finds_the_same_sequence_number_from_two_servers() {
        let old_primary = pos("0-1-105");
        let new_primary = pos("0-2-105");
        assert_eq!(
            old_primary.diverged(&new_primary),
            vec![(
                Gtid {
                    domain: 0,
                    server: 1,
                    seq: 105
                },
                Gtid {
                    domain: 0,
                    server: 2,
                    seq: 105
                }
            )]
        );
        assert!(pos("0-1-104").diverged(&new_primary).is_empty());
    }
}
