//! Database endpoints and where the primary is.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A database server as `HOST:PORT`: an IPv4 address or DNS name (the name its TLS
/// certificate must carry) and a TCP port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Address or name; also the name TLS verifies the server's certificate against.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Why a text is not an `ADDRESS:PORT` endpoint.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{origin}: {got:?} is not a database endpoint (expected ADDRESS:PORT, such as \"192.0.2.10:3306\")")]
pub struct EndpointError {
    /// Where the text came from: a flag or a file.
    pub origin: String,
    /// The text as given.
    pub got: String,
}

impl Endpoint {
    /// Parses `HOST:PORT`; `origin` names the flag or file in the error.
    pub fn parse(text: &str, origin: &str) -> Result<Endpoint, EndpointError> {
        let error = || EndpointError {
            origin: origin.to_owned(),
            got: text.to_owned(),
        };
        let (host, port) = text.trim().rsplit_once(':').ok_or_else(error)?;
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        let port: u16 = port.parse().map_err(|_| error())?;
        if !host_ok || port == 0 {
            return Err(error());
        }
        Ok(Endpoint {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Why the primary could not be located.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    /// The primary file could not be read.
    #[error("primary: cannot read {path}: {source}; write the primary's ADDRESS:PORT there (or pass --db-primary)")]
    Unreadable {
        /// The primary file.
        path: PathBuf,
        /// What reading it gave.
        source: io::Error,
    },
    /// The primary file holds no endpoint, or a malformed one.
    #[error("primary: {0}")]
    Malformed(#[from] EndpointError),
}

/// Where writes go: the one answer to "where is the primary".
#[derive(Clone, Debug)]
pub enum PrimaryLocator {
    /// Always the same server (`--db-primary`).
    Fixed(Endpoint),
    /// The endpoint written in a runtime file (`--db-primary-file`): its first line that is
    /// neither empty nor a `#` comment. A promotion rewrites the file; the application reads
    /// it before every write, so the next write goes to the new primary.
    File(PathBuf),
    /// Every database host (`--db-probe`): the primary is the one whose
    /// `SELECT @@global.read_only` answers 0 (docs/failover.md). The application asks on
    /// its first write and again after any failed one; fencing keeps at most one host
    /// writable, and the application writes nowhere while none or several are.
    Probe(Vec<Endpoint>),
}

impl PrimaryLocator {
    /// Where the primary is now, or `None` when only asking the candidates can tell
    /// ([`PrimaryLocator::Probe`], which the database does: it holds the connections).
    ///
    /// Reading a small file per write costs microseconds against a network round trip to
    /// the database, and needs no signal, watcher or restart when the primary moves.
    pub fn locate(&self) -> Result<Option<Endpoint>, LocateError> {
        match self {
            PrimaryLocator::Fixed(endpoint) => Ok(Some(endpoint.clone())),
            PrimaryLocator::File(path) => read_endpoint_file(path).map(Some),
            PrimaryLocator::Probe(_) => Ok(None),
        }
    }
}

/// What one candidate answered to the read_only probe.
#[derive(Debug)]
pub enum ProbeAnswer {
    /// `@@global.read_only` is 0: it takes writes.
    Writable,
    /// `@@global.read_only` is 1: a replica, or a fenced former primary.
    ReadOnly,
    /// It did not answer (the reason, for the error message).
    Unreachable(String),
}

/// Why the read_only probe found no single primary.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    /// No candidate is writable: the primary is down or fenced and none was promoted yet.
    #[error("primary: no database host is writable ({}); a promotion (rampart-db promote) makes one so", .answers.join("; "))]
    NoneWritable {
        /// `ENDPOINT: answer` for every candidate.
        answers: Vec<String>,
    },
    /// Several candidates are writable: split brain. Writing to either could diverge.
    #[error("primary: {} are all writable (expected exactly one); writing nowhere until all but one are fenced (rampart-db fence)", .writable.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and "))]
    SeveralWritable {
        /// The writable candidates.
        writable: Vec<Endpoint>,
    },
}

/// The primary among the probe's answers: the one writable candidate, or why there is none.
pub fn choose(answers: Vec<(Endpoint, ProbeAnswer)>) -> Result<Endpoint, ProbeError> {
    let writable: Vec<Endpoint> = answers
        .iter()
        .filter(|(_, answer)| matches!(answer, ProbeAnswer::Writable))
        .map(|(endpoint, _)| endpoint.clone())
        .collect();
    match writable.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ProbeError::NoneWritable {
            answers: answers
                .iter()
                .map(|(endpoint, answer)| match answer {
                    ProbeAnswer::Writable => format!("{endpoint}: writable"),
                    ProbeAnswer::ReadOnly => format!("{endpoint}: read-only"),
                    ProbeAnswer::Unreachable(why) => format!("{endpoint}: {why}"),
                })
                .collect(),
        }),
        _ => Err(ProbeError::SeveralWritable { writable }),
    }
}

fn read_endpoint_file(path: &Path) -> Result<Endpoint, LocateError> {
    let text = std::fs::read_to_string(path).map_err(|source| LocateError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .unwrap_or("");
    Ok(Endpoint::parse(line, &path.display().to_string())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_address_and_name() {
        assert_eq!(
            Endpoint::parse("10.42.0.11:3306", "flag").unwrap(),
            Endpoint {
                host: "10.42.0.11".into(),
                port: 3306
            }
        );
        assert_eq!(
            Endpoint::parse(" web1.rampart.internal:3307\n", "flag")
                .unwrap()
                .to_string(),
            "web1.rampart.internal:3307"
        );
    }

    #[test]
    fn rejects_malformed_endpoints() {
        for bad in [
            "",
            "10.42.0.11",
            ":3306",
            "host:0",
            "host:65536",
            "host:x",
            "a b:1",
            "h:3306:1",
        ] {
            let error = Endpoint::parse(bad, "--db-primary").unwrap_err();
            assert_eq!(error.got, bad);
            assert!(error.to_string().starts_with("--db-primary: "), "{error}");
        }
    }

    fn at(text: &str) -> Endpoint {
        Endpoint::parse(text, "test").unwrap()
    }

    #[test]
    fn probe_chooses_the_one_writable_host() {
        let answers = vec![
            (
                at("10.42.0.11:3306"),
                ProbeAnswer::Unreachable("refused".into()),
            ),
            (at("10.42.0.12:3306"), ProbeAnswer::Writable),
        ];
        assert_eq!(choose(answers).unwrap(), at("10.42.0.12:3306"));
        assert_eq!(
            PrimaryLocator::Probe(vec![at("10.42.0.11:3306")])
                .locate()
                .unwrap(),
            None
        );
    }

    #[test]
    fn probe_writes_nowhere_without_exactly_one_writable_host() {
        let none = choose(vec![
            (
                at("10.42.0.11:3306"),
                ProbeAnswer::Unreachable("refused".into()),
            ),
            (at("10.42.0.12:3306"), ProbeAnswer::ReadOnly),
        ])
        .unwrap_err();
        assert_eq!(
            none.to_string(),
            "primary: no database host is writable (10.42.0.11:3306: refused; \
             10.42.0.12:3306: read-only); a promotion (rampart-db promote) makes one so"
        );
        let split = choose(vec![
            (at("10.42.0.11:3306"), ProbeAnswer::Writable),
            (at("10.42.0.12:3306"), ProbeAnswer::Writable),
        ])
        .unwrap_err();
        assert!(
            split
                .to_string()
                .starts_with("primary: 10.42.0.11:3306 and 10.42.0.12:3306 are all writable"),
            "{split}"
        );
    }

    #[test]
    fn file_is_read_again_on_every_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("primary");
        let locator = PrimaryLocator::File(path.clone());
        assert!(matches!(
            locator.locate(),
            Err(LocateError::Unreadable { .. })
        ));
        std::fs::write(&path, "# written by the promotion\n\n10.42.0.11:3306\n").unwrap();
        assert_eq!(
            locator.locate().unwrap().unwrap().to_string(),
            "10.42.0.11:3306"
        );
        std::fs::write(&path, "10.42.0.12:3306").unwrap();
        assert_eq!(
            locator.locate().unwrap().unwrap().to_string(),
            "10.42.0.12:3306"
        );
        std::fs::write(&path, "\n").unwrap();
        let error = locator.locate().unwrap_err().to_string();
        assert!(error.contains("is not a database endpoint"), "{error}");
    }
}
